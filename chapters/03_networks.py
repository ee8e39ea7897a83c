# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Four networks
#
# ```{admonition} In this chapter you will learn
# - what an autoencoder and a variational autoencoder learn, and why their error flags anomalies
# - how the four networks differ and how their parameter counts are checked against the report
# - which choices the report leaves open, and how the configuration makes them explicit
# ```
#
# All four networks of the report {cite}`report2021` are **{term}`autoencoders <autoencoder>`**: they squeeze each
# 640-dimensional log-mel vector through a narrow layer and try to rebuild it. Trained on
# normal vectors only, they learn to rebuild what normal sounds like; a vector unlike anything
# in training comes out worse. The {term}`anomaly score` of a clip is the **mean squared
# reconstruction error** over its vectors, exactly as in the DCASE 2020 baseline
# {cite}`koizumi2020description`.
#
# | Network | What it is | Why it was tried |
# |---|---|---|
# | Baseline | a variational autoencoder ({term}`VAE`) {cite}`kingma2014auto` | a probabilistic autoencoder, whose latent space is kept smooth by a prior |
# | BatchNorm | the VAE with {term}`batch normalisation` after every hidden layer {cite}`ioffe2015batch` | faster, steadier training |
# | Dropout | the BatchNorm VAE with {term}`dropout` after the first encoder and the first decoder layer {cite}`srivastava2014dropout` | less overfitting |
# | Sequential | the DCASE 2020 baseline autoencoder | the task organisers' reference system |
#
# The report gives each network's parameter count but not every layer; this chapter shows the
# architectures the package builds (`asd.models`), checks their parameter counts against the
# report's, and explains each choice the report leaves open. This chapter trains nothing, so
# its numbers do not depend on the data. Mind the names: the report's *Baseline* is a VAE; the
# DCASE 2020 baseline is the report's *Sequential*.

# %% tags=["remove-cell"]
# Colab, Binder or a fresh kernel: install the book's package, and myst-nb for glue.
import importlib.util
import subprocess
import sys

if not all(importlib.util.find_spec(m) for m in ("asd", "myst_nb")):
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q",
                           "asd[book] @ git+https://github.com/asd-book/"
                           "anomalous-sound-detection"])

# %% tags=["remove-output"]
# %matplotlib inline
import math
from dataclasses import replace
from pprint import pprint
from textwrap import fill

import torch
from IPython.display import display
from myst_nb import glue

import asd
import asd.book
from asd import config, models, plots
from asd.tables import TextTable

cfg, _ = asd.book.setup(data=False)

# %% [markdown]
# ## Parameter counts
#
# `asd.models.build(name, cfg)` returns a freshly initialised network, and
# `asd.models.REPORT_PARAMS` holds the report's counts. The check below fails the book's build
# if any count differs.

# %%
rows = []
for name in config.NETWORKS:
    n = models.n_params(models.build(name, cfg))
    report = models.REPORT_PARAMS[name]
    assert n == report, f"{name}: {n:,} parameters, the report has {report:,}"
    rows.append([name, f"{n:,}", f"{report:,}"])
display(TextTable(["network", "asd", "report"], rows,
                  "Trainable parameters: all four counts equal the report's"))

# %% tags=["hide-input", "remove-output"]
built = {name: models.build(name, cfg) for name in config.NETWORKS}
for name, net in built.items():
    glue(f"params_{name}", models.n_params(net), display=False)
glue("hidden", cfg.net.hidden, display=False)
glue("latent", cfg.net.latent, display=False)
glue("dropout", cfg.net.dropout, display=False)
glue("kl_weight", cfg.net.kl_weight, display=False)
glue("bottleneck", cfg.net.bottleneck, display=False)
glue("seq_hidden", cfg.net.seq_hidden, display=False)
seq_fit = config.FULL_FIT["sequential"]  # the report's, whatever the profile
glue("seq_fit", f"{seq_fit.epochs} epochs at batch size {seq_fit.batch_size}",
     display=False)
shapes, titles = {}, {}
for name, net in built.items():
    shapes[name] = models.dense_widths(net, cfg.feature.dim)
    titles[name] = f"{name}: {models.n_params(net):,} parameters"
glue("fig_shapes", plots.network_shapes(shapes, titles))
edge_share = []  # share of a network's parameters in its first and last layer
for net in built.values():
    dense = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    edge = sum(models.n_params(m) for m in (dense[0], dense[-1]))
    edge_share.append(edge / models.n_params(net))
# "at least": rounded down
glue("edge_share", f"{math.floor(100 * min(edge_share))}%", display=False)
small = replace(cfg, net=replace(cfg.net, latent=8))  # exercise 1's network
glue("params_latent8", f"{models.n_params(models.build('baseline', small)):,}",
     display=False)

# %% [markdown]
# ```{glue:figure} fig_shapes
# :name: fig-shapes
# :alt: The four networks drawn as bars, one per dense layer's output, as tall as its width: the VAEs narrow from 640 through 400 to two 20-wide heads and widen again; the Sequential network narrows through 128 to 8.
#
# The four networks as `asd.models` builds them (`asd.models.dense_widths` reads the widths
# off the built networks): a bar per dense layer's output, as tall as its width, the input in
# grey; under a bar, what acts on that output before the next layer (BN: batch
# normalisation). Every hidden layer also has a ReLU. The VAEs' two heads are the mean and
# log-variance of the latent Gaussian; in training the decoder reads one
# {glue:text}`latent`-dimensional sample of it, in scoring its mean.
# ```
#
# All four are hourglasses: the VAEs squeeze 640 numbers into a {glue:text}`latent`-dimensional
# code, the Sequential network into {glue:text}`bottleneck` numbers through narrower but more
# layers. At least {glue:text}`edge_share` of every network's parameters sit in just two of its
# dense layers, the first and the last, which connect the hidden layers to the 640 numbers of
# the input and the output.

# %% [markdown]
# ## Baseline: a variational autoencoder
#
# The encoder maps a vector through two hidden layers of {glue:text}`hidden` units to the mean
# $\mu$ and log-variance $\log \sigma^2$ of a {glue:text}`latent`-dimensional Gaussian; during
# training the decoder reads a sample $z = \mu + \sigma \epsilon$, $\epsilon \sim N(0, I)$, and
# rebuilds the vector through two hidden layers of {glue:text}`hidden` units. Every hidden
# layer is a linear layer followed by a ReLU. The widths follow the PyTorch VAE example (400
# hidden units, a 20-dimensional latent space) with two hidden layers per side, and reproduce
# the report's count of {glue:text}`params_baseline:,d` parameters exactly.

# %%
print(models.summary(models.build("baseline", cfg), cfg.feature.dim))

# %% [markdown]
# The code, from `asd.models` (the BatchNorm and Dropout networks are this class with
# `batchnorm=True` and a dropout rate):
#
# ```{literalinclude} ../asd/models.py
# :language: python
# :pyobject: VAE
# ```

# %% [markdown]
# ## BatchNorm: the VAE with batch normalisation
#
# The same VAE with a batch-normalisation layer between every hidden linear layer and its ReLU
# (encoder and decoder; not on the $\mu$, $\log\sigma^2$ or output layers). Batch
# normalisation {cite}`ioffe2015batch` standardises each unit over the mini-batch and learns a
# scale and a shift: it keeps the inputs of every layer in a steady range while the layers
# below change, which usually makes training faster and less sensitive to the learning rate,
# and adds a little noise that regularises. Its 4 x 400 scales and shifts add 3,200 parameters
# ({glue:text}`params_batchnorm:,d` in all; the running means and variances used at test time
# are buffers, not parameters).

# %%
print(models.summary(models.build("batchnorm", cfg), cfg.feature.dim))

# %% [markdown]
# ## Dropout: batch normalisation and dropout
#
# The BatchNorm VAE with dropout {cite}`srivastava2014dropout`: during training each unit of a
# dropout layer is zeroed with probability {glue:text}`dropout`, so no unit can rely on a few
# others, a standard defence against overfitting. The report's layer table has exactly **two**
# dropout layers, `Dropout-3` after the first encoder BatchNorm and `Dropout-10` after the first
# decoder BatchNorm (its table lists no ReLUs: they are functions there, as in the PyTorch VAE
# example), and so does `asd.models`. Dropout has no parameters, so the count is the BatchNorm
# network's, {glue:text}`params_dropout:,d`, as in the report. At scoring time dropout is off
# (`model.eval()`).
#
# For anomaly detection, regularisation cuts both ways: a network that generalises too well
# also rebuilds anomalies well, and its scores stop separating them. Whether BatchNorm and
# dropout help is therefore an empirical question; {doc}`04_training_results` measures it on
# the data at hand, and whether repeated training runs can tell the networks apart at all.

# %%
dropout_net = models.build("dropout", cfg)
print(models.summary(dropout_net, cfg.feature.dim))
rows = models.summary_rows(dropout_net, cfg.feature.dim, activations=False)
layers = tuple(name for name, _, _ in rows)
assert layers == models.REPORT_DROPOUT_LAYERS
print("without the ReLUs, the layers are the report's table, in order:")
print(fill(", ".join(layers), width=79))

# %% [markdown]
# ## Sequential: the DCASE 2020 baseline autoencoder
#
# The task organisers' baseline, a plain (not variational) autoencoder: a straight stack of
# Keras layers (built with Keras's functional API; the report calls it *Sequential*), four
# Dense-BatchNorm-ReLU blocks of {glue:text}`seq_hidden` units, a
# bottleneck block of {glue:text}`bottleneck` units, four more blocks of
# {glue:text}`seq_hidden` units and a linear output layer; loss and score are the mean
# squared error. The package keeps Keras's defaults:
# {term}`Glorot-uniform <Glorot-uniform initialisation>` weights, zero biases,
# batch-normalisation momentum 0.99 (PyTorch `momentum=0.01`) and epsilon 0.001. Its
# {glue:text}`params_sequential:,d` parameters are the report's count (the trainable ones;
# Keras's summary adds the non-trainable running statistics to its total).
#
# It does not train exactly like the original. Following the report rather than the DCASE
# code:
#
# - its inputs are log-mels **standardised** with training statistics (the DCASE baseline
#   feeds them unstandardised);
# - it trains for the report's {glue:text}`seq_fit` (the DCASE baseline: 100 epochs at 512);
# - it trains on the report's IDs 00, 02 and 04 (the DCASE baseline: every development ID,
#   06 too);
# - the validation clips are a random tenth of each ID's clips (the DCASE baseline's Keras
#   `validation_split` holds out the last tenth of the vectors, before shuffling: whole clips
#   as here, but all of the last ID's, 06, on the real development set);
# - the optimiser is PyTorch's Adam, whose epsilon is 1e-8 (Keras's: 1e-7).

# %%
print(models.summary(models.build("sequential", cfg), cfg.feature.dim))

# %% [markdown]
# The code, from `asd.models`:
#
# ```{literalinclude} ../asd/models.py
# :language: python
# :pyobject: Autoencoder
# ```

# %% [markdown]
# ## Choices the report leaves open
#
# The report names the networks, their parameter counts, the optimiser (Adam
# {cite}`kingma2015adam`, learning rate 0.001) and each network's epochs and batch size. Where
# it is silent the package had to choose. Every choice below is a field of the configuration
# (`asd.config.NetConfig`, `asd.config.FitConfig`), so it can be changed without touching the
# code.
#
# **The VAE's loss.** Per vector, the *summed* squared error over the 640 elements plus
# `kl_weight` times the {term}`Kullback-Leibler divergence <KL divergence>` of the approximate posterior
# $N(\mu, \sigma^2)$ (the encoder's distribution of a vector's code) from the prior $N(0, I)$
# (the distribution the codes are pushed towards), averaged over the batch. With `kl_weight` =
# {glue:text}`kl_weight` this is, up to a constant, the negative evidence lower bound
# ({term}`ELBO`, the lower bound on the data's log-likelihood that a VAE maximises) {cite}`kingma2014auto` of a Gaussian decoder with fixed variance ½ (a summed squared error
# without a factor ½ in front); the PyTorch VAE example also sums its reconstruction
# term over the elements. Summing rather than averaging matters: it sets the balance between
# reconstruction and KL, and a mean over the 640 elements would weigh the KL term 640 times
# more, pulling the latent code towards the prior at the expense of the reconstructions.
#
# **The VAE's score.** The score is the mean squared reconstruction error, like the other
# networks', computed from the **posterior mean**: at evaluation the decoder reads $\mu$ instead
# of a random sample, so a clip's score is deterministic. The KL term is not part of the score.

# %%
vae = models.build("baseline", cfg)
x, ids = torch.randn(8, cfg.feature.dim), torch.zeros(8, dtype=torch.long)
vae.eval()
# posterior mean: the same score twice
assert torch.equal(vae.score(x, ids), vae.score(x, ids))
vae.train()
print("evaluation mode: the same scores on every call")
print("training mode: sampled, different scores on each call:",
      not torch.equal(vae.score(x, ids), vae.score(x, ids)))

# %% [markdown]
# **Dropout rate.** The report's table shows where its dropout layers are, not their rate:
# {glue:text}`dropout` here (`NetConfig.dropout`), a common choice for layers this wide.
#
# **Initialisation and batch-normalisation settings.** PyTorch's defaults in the three VAEs
# (Baseline, BatchNorm, Dropout); Keras's defaults in the Sequential network, which
# reimplements a Keras model.
#
# **Validation.** 10% of the training clips (`FitConfig.validation_split`), drawn at random
# with the seed, are held out and their loss is reported after every epoch. The split is made
# by **whole clips**: consecutive vectors of one clip share four of their five frames, so a
# split of shuffled vectors would put near-copies of training vectors into the validation set
# (the DCASE baseline's split, above, holds out whole clips too). The validation loss is only
# monitored, never used to stop training early or pick a model, so every network trains for
# its configured number of epochs.
#
# **One network per machine type.** As in the DCASE baseline, one network is trained on the
# normal clips of all the IDs in use together (by default the report's 00, 02 and 04) and
# scores every test clip;
# `asd.experiment.run(..., per_id=True)` trains one network per ID instead.
#
# **Seeds.** `asd.seed_everything(cfg.seed)` at the top of each chapter, and each network's
# initialisation and batch order are seeded from `cfg.seed`.
#
# The epochs and batch sizes of the two profiles: `full` has the report's values, `quick`
# fewer epochs so that the book builds in minutes on a laptop's CPU.

# %%
full = config.get_config("full")
quick = config.get_config("quick")
rows = []
for name in config.NETWORKS:
    f, q = full.fit[name], quick.fit[name]
    rows.append([name, f.epochs, f.batch_size, q.epochs, q.batch_size,
                 f"{f.lr:g}", f"{f.validation_split:.0%}"])
header = ["network", ("full", "epochs"), ("full", "batch"),
          ("quick", "epochs"), ("quick", "batch"), "lr", "validation"]
display(TextTable(header, rows, "Training budgets of the two profiles"))

# %% [markdown]
# ### Changing a choice
#
# The configuration is a frozen dataclass: `dataclasses.replace` makes a changed copy. A
# changed configuration has a different hash, so the results cache (keyed on it) trains
# afresh instead of returning results of the old settings. For example, a VAE with a weaker
# KL term and more dropout:

# %%
variant = replace(cfg, net=replace(cfg.net, kl_weight=0.1, dropout=0.5))
pprint(variant.net)
print(f"config hash {cfg.hash()} -> {variant.hash()}")
# asd.experiment.run(variant, src.dev, ["baseline", "dropout"])
# would train and score them

# %% [markdown]
# Architecture changes work the same way, but they move the parameter counts away from the
# report's, which the check at the top of this chapter would catch:

# %%
wider = replace(cfg, net=replace(cfg.net, hidden=512))
n_wider = models.n_params(models.build("baseline", wider))
print(f"baseline with 512 hidden units: {n_wider:,} parameters "
      f"(the report: {models.REPORT_PARAMS['baseline']:,})")

# %% [markdown]
# ## Exercises
#
# 1. Build the Baseline VAE with `latent=8`. How many parameters does it have, and which layers changed?
#
# ```{admonition} Solution
# :class: dropdown
# {glue:text}`params_latent8` (`asd.models.n_params` counts them): the two heads
# (400 x 8 + 8 each) and the first decoder layer (8 x 400 + 400) shrink, nothing else.
# ```
#
# 2. Set `kl_weight=0` in `cfg.net`. What does the VAE become, and what would you expect of its scores?
#
# ```{admonition} Solution
# :class: dropdown
# Nothing pulls the code towards the prior any more, so the encoder can shrink its variance to almost
# nothing: the VAE becomes a plain autoencoder with a 20-d bottleneck, and its scores an autoencoder's.
# ```
