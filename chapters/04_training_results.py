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
# # Training and results
#
# ```{admonition} In this chapter you will learn
# - how a detector is trained on normal clips only and scored per clip
# - how AUC and the McClish-standardised pAUC are computed, by hand and by scikit-learn
# - how to read ROC curves and score histograms, and what a threshold per machine means
# ```
#
# This chapter trains the four networks of {doc}`03_networks` on the normal training clips,
# scores every test clip by its mean {term}`reconstruction error`, and computes {term}`AUC`
# and {term}`pAUC` per {term}`machine ID`, as the DCASE 2020 evaluator does
# {cite}`koizumi2020description`, for the report's machine IDs; then for the development ID
# the report left out, and for the evaluation set, which the report did not use. The report's {cite}`report2021` and the DCASE 2020 baseline's
# numbers are *references*: copied from those documents (real data), not computed here.

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
import dataclasses
from pathlib import Path

import numpy as np
import torch
from IPython.display import Audio, display
from myst_nb import glue
from sklearn.metrics import auc, roc_auc_score, roc_curve

import asd
import asd.book
from asd import config, features, metrics, plots, records, reference
from asd.tables import Table, TextTable

cfg, src = asd.book.setup()

# %% [markdown]
# ## Training
#
# `asd.experiment.run` extracts and standardises the features ({doc}`02_mel_features`),
# trains each network with Adam on the stacked vectors of the training clips of the report's
# machine IDs (10% of the clips held out for validation), scores the test clips and computes
# AUC and pAUC per ID. Its results are cached in `ASD_HOME`, keyed on the configuration, the clips and the
# package's code: a second build reuses them, and any change retrains.

# %% tags=["remove-output"]
networks = list(config.NETWORKS)  # baseline, batchnorm, dropout, sequential
results = asd.experiment.run(cfg, src.dev, networks, progress=True,
                             data_label=src.label)

# %% tags=["hide-input"]
glue("device", results.device, display=False)
provenance = " | ".join([f"data: {src.label}",
                         f"IDs: {', '.join(results.unique_ids)}",
                         f"profile: {cfg.profile}",
                         f"device: {results.device}"])
print(provenance.replace(" | ", "\n"))
if results.left_out:
    print("not in the report's set, left out here: "
          f"ID {', '.join(results.left_out)}")
rows = []
for name, model in results.models.items():
    fit, hist = cfg.fit[name], model.histories["all"]
    val = f"{hist.val_loss[-1]:.4g}" if hist.val_loss else "-"
    rows.append([name, fit.epochs, fit.batch_size, f"{model.steps:,}",
                 f"{model.seconds:.1f}", f"{hist.train_loss[-1]:.4g}", val])
display(TextTable(["network", "epochs", "batch", "updates", "seconds",
                   ("final loss", "training"), ("final loss", "validation")],
                  rows, "Training. Final loss per vector: for the VAEs a "
                  "sum over its 640 elements plus the KL term, for "
                  "sequential a mean over them, so their scales differ."))

# %% [markdown]
# ```{admonition} Which data?
# :class: important
# Every number and figure in this chapter, except those labelled as references and the
# committed report-scale records (which print their own data and device), comes from
# the **{glue:text}`data`**, trained on {glue:text}`device`. {glue:text}`data_caveat`
# ```
#
# ### Training curves
#
# The loss per epoch on the training clips and on the held-out validation clips. The losses
# have different scales (the VAEs' is a sum over the 640 elements plus the KL term, the
# Sequential network's a mean), so each network has its own panel.

# %% tags=["hide-input", "remove-output"]
glue("fig_curves", plots.training_curves(
    {name: m.histories["all"] for name, m in results.models.items()}))

# %% [markdown]
# ```{glue:figure} fig_curves
# :name: fig-curves
# :alt: Training and validation loss against epoch, one panel per network.
#
# Training and validation loss per epoch, one panel per network,
# {glue:text}`data`.
# ```
#
# A validation loss that follows the training loss means the network has not memorised its
# training clips. The validation loss can even lie *below* the training loss: the training
# loss is averaged over the epoch while the network still improves, and it is computed in
# training mode (the VAEs sample their latent code, dropout drops units, batch normalisation
# uses the batch's statistics), the validation loss at the end of the epoch in evaluation
# mode.
#
# ## AUC and pAUC per machine ID
#
# `asd.metrics.table` collects the per-ID results and computes the average over the IDs;
# `asd.tables.Table` shows them with AUC and pAUC in their own columns and the best value of
# each column in bold (`asd.tables.format_table` prints the same as text, as the report does).

# %%
table = metrics.table(results.rows)
display(Table(table, f"This book: {provenance}"))

# %% [markdown]
# The references, copied from the report (development set, real data) and from the DCASE 2020
# baseline's README {cite}`dcase2020baseline` (development set, real data), on the report's IDs; their averages are
# computed from the per-ID values (the baseline README's own average also covers ID 06).
# On the synthetic stand-in they measure a different thing: compare the networks with each
# other above, and read these as what the real slider gave.

# %%
display(Table(reference.reference_table(tuple(results.unique_ids)),
              "References (not computed here): the report's table and "
              "the DCASE 2020 baseline, real development set"))

# %% tags=["hide-input", "remove-output"]
ids = [c for c in next(iter(table.values())) if c != "AVG"]
for name, cells in table.items():
    glue(f"avg_auc_{name}", cells["AVG"][0], display=False)
    glue(f"avg_pauc_{name}", cells["AVG"][1], display=False)
best_auc = max(table, key=lambda m: table[m]["AVG"][0])
best_pauc = max(table, key=lambda m: table[m]["AVG"][1])
glue("best_auc_model", best_auc, display=False)
glue("best_auc", table[best_auc]["AVG"][0], display=False)
glue("best_pauc_model", best_pauc, display=False)
glue("best_pauc", table[best_pauc]["AVG"][1], display=False)
avg_aucs = [cells["AVG"][0] for cells in table.values()]
glue("spread_auc", max(avg_aucs) - min(avg_aucs), display=False)
# Reference marks only over results on the real release: on the stand-in or
# other recordings they would measure another thing.
marks = {} if not asd.book.measures_the_release(src) else {
    "report": reference.REPORT, "baseline": reference.DCASE2020_BASELINE}
id_auc = {i: float(np.mean([table[m][i][0] for m in table])) for i in ids}
hardest = min(id_auc, key=id_auc.get)
glue("hardest_id", hardest, display=False)
glue("hardest_auc", id_auc[hardest], display=False)
# what sets the hardest ID apart in its data, before any network sees it
n_train = results.train_clips
others = ", ".join(f"{n} (ID {i})" for i, n in n_train.items() if i != hardest)
hardest_note = (f"It has {n_train[hardest]} training clips, the other IDs "
                f"{others}.")
rail = asd.synth.RAILS.get(hardest)
if results.synthetic and rail and rail.severity[1] < 1:
    hardest_note += (" And the stand-in draws its faults' severity only up "
                     f"to {rail.severity[1]:g}: its faults are milder by "
                     "design.")
if results.synthetic:  # the report's hardest ID, on the real slider
    real_hardest = min(reference.REPORT["baseline"],
                       key=lambda i: reference.REPORT["baseline"][i][0])
    hardest_note += (" In the report, on the real slider, the hardest ID is "
                     f"{real_hardest}: the stand-in does not copy the real "
                     "IDs' difficulties.")
glue("hardest_note", hardest_note, display=False)
glue("fig_auc", plots.score_bars(
    table, "auc", **marks, title=f"AUC per machine ID: {src.label}"))
glue("fig_pauc", plots.score_bars(
    table, "pauc", **marks, title=f"pAUC per machine ID: {src.label}"))

# %% [markdown]
# ```{glue:figure} fig_auc
# :name: fig-auc
# :alt: Bar chart of AUC per machine ID and on average, one bar per network.
#
# AUC per machine ID and on average: this book's networks on the {glue:text}`data` (the report's Fig. 5 shows its own).
# Bars grow from chance (0.5), so a bar's length is what a network adds to a coin flip. On the
# real DCASE release, black ticks mark the report's value for the same network and dashed
# lines the DCASE 2020 baseline; on other data (the synthetic stand-in, your own recordings)
# the figure shows no reference marks.
# ```
#
# ```{glue:figure} fig_pauc
# :name: fig-pauc
# :alt: Bar chart of pAUC per machine ID and on average, one bar per network.
#
# pAUC (false-positive rate up to 0.1, McClish-standardised: chance is 0.5) per machine ID and
# on average, {glue:text}`data`; reference marks as in
# {numref}`fig-auc` (the report's Fig. 6 shows its own).
# ```
#
# On this data, the highest average AUC is **{glue:text}`best_auc_model`**'s
# ({glue:text}`best_auc:.3f`), the highest average pAUC **{glue:text}`best_pauc_model`**'s
# ({glue:text}`best_pauc:.3f`). The four networks' average AUCs lie within
# {glue:text}`spread_auc:.3f` of each other, and machine ID {glue:text}`hardest_id` is the
# hardest (mean AUC of the four networks {glue:text}`hardest_auc:.3f`).
# {glue:text}`hardest_note` Whether a spread that
# small can rank networks at all is a question of seeds, the next section's. (The report's own
# ranking is in its table above: a measurement of the real recordings, which says nothing
# about how these networks rank here, nor these numbers about how they rank there.)
#
# (sec-seeds)=
# ## Is a difference real?
#
# The report ranks its four networks from one training run each. Another seed changes the
# weights' initialisation, the clips held out for validation, the order of the batches and
# the networks' random draws (the VAEs' samples, the dropout masks), and with them the AUC.
# Here each network is trained with {glue:text}`n_seeds` seeds on the same data and features
# (`asd.experiment.seed_runs`); the table shows the mean and the standard deviation over the
# seeds. Seed 0 is the run above, taken from the cache.

# %% tags=["remove-output"]
seeds = list(range(cfg.spread_seeds))  # 5 in the quick profile
runs = asd.experiment.seed_runs(cfg, src.dev, networks, seeds,
                                data_label=src.label)
seed_tables = [metrics.table(r.rows) for r in runs]  # one table per seed
spread = metrics.seed_spread(seed_tables)

# %%
display(Table(spread, "This book, mean ± standard deviation over "
                      f"{len(seeds)} seeds: {provenance}"))

# %% [markdown]
# Whether one network beats another is a question about their *difference*. Runs with the same
# seed share the validation split, so the differences are paired by seed;
# `asd.metrics.paired_difference` gives the mean difference of the average AUC and its 95%
# confidence interval (Student's t over the seeds). An interval that excludes zero resolves the
# order *on these test clips*; one that straddles zero does not. Two cautions. With six pairs,
# the chance that at least one interval excludes zero by luck alone is well above 5% (a
# Bonferroni correction would widen each to 99.2%). And the seeds vary only the training, not
# the test clips, so an order resolved here is an order of these networks on this test set;
# whether it holds on another test set is {ref}`sec-test-draw`'s question.

# %% tags=["hide-input", "remove-output"]
avg_auc = {name: [t[name]["AVG"][0] for t in seed_tables] for name in networks}
# each pair with the network of the higher mean over the seeds first
in_order = sorted(networks, key=lambda m: np.mean(avg_auc[m]), reverse=True)
ordered = [(a, b) for i, a in enumerate(in_order) for b in in_order[i + 1:]]
pairs = {f"{a} - {b}": metrics.paired_difference(avg_auc[a], avg_auc[b])
         for a, b in ordered}
resolved = [p for p, (_, low, high) in pairs.items() if low > 0 or high < 0]
if not resolved:
    seed_verdict = (f"the seeds resolve none of the {len(pairs)} pairwise "
                    "orderings: each could come out either way with another "
                    "seed")
else:
    rest = (": every order is resolved" if len(resolved) == len(pairs) else
            "; the others could come out either way with another seed")
    seed_verdict = (f"the seeds resolve {len(resolved)} of the {len(pairs)} "
                    f"pairwise orderings ({'; '.join(resolved)}){rest}")
sd = [spread[name]["AVG"][0][1] for name in networks]
glue("n_seeds", len(seeds), display=False)
glue("seed_sd_low", min(sd), display=False)
glue("seed_sd_high", max(sd), display=False)
glue("seed_verdict", seed_verdict, display=False)
glue("fig_pairs", plots.paired_differences(
    pairs, f"difference in average AUC, {len(seeds)} seeds "
    "(mean, 95% interval)"))

# %% [markdown]
# ```{glue:figure} fig_pairs
# :name: fig-pairs
# :alt: Mean paired differences of average AUC between pairs of networks with 95 percent intervals, and a dashed line at zero.
#
# Paired difference of the average AUC between two networks over {glue:text}`n_seeds` seeds,
# {glue:text}`data`. Each pair is written with the network of the higher mean first, so every
# mean difference is positive. Filled: the 95% interval excludes zero.
# ```
#
# On this data, a network's average AUC varies between seeds with a standard deviation of
# {glue:text}`seed_sd_low:.3f` to {glue:text}`seed_sd_high:.3f`, and
# {glue:text}`seed_verdict`. This says how far seeds alone move a result *on this data*; the
# report's own differences were measured on the real data, from one run each, and only
# repeated runs there could say which of them a seed can produce.
#
# (sec-test-draw)=
# ### Another draw of test clips
#
# The test clips are a sample too: another session with the same machines would record other
# clips and give other AUCs. `asd.metrics.paired_bootstrap` {term}`bootstraps <Bootstrap>`
# the test clips: it redraws them with replacement, within each ID its normal and its
# anomalous clips apart and the same draw for both networks, {glue:text}`n_boot` times, and
# takes the middle 95% of the difference in average AUC (seed 0's networks, whose AUCs
# {numref}`fig-auc` shows).

# %% tags=["hide-input", "remove-output"]
n_boot = 1000
y_true, test_ids = results.test.y_true, results.test.clip_ids
boot = {f"{a} - {b}": metrics.paired_bootstrap(
            y_true, test_ids, results.models[a].scores,
            results.models[b].scores, n=n_boot)
        for a, b in ordered}
boot_resolved = sum(low > 0 or high < 0 for _, low, high in boot.values())
# where one more training run's difference would fall (prediction interval)
one_run = {f"{a} - {b}": metrics.paired_difference(
               avg_auc[a], avg_auc[b], one_run=True) for a, b in ordered}
width = {kind: float(np.mean([high - low for _, low, high in d.values()]))
         for kind, d in (("seed", one_run), ("boot", boot))}
glue("n_boot", n_boot, display=False)
glue("boot_resolved", f"{boot_resolved} of {len(boot)}", display=False)
glue("boot_width", width["boot"], display=False)
glue("seed_width", width["seed"], display=False)
glue("boot_vs_seed", "wider" if width["boot"] > width["seed"] else "narrower",
     display=False)
glue("fig_boot", plots.paired_differences(
    boot, f"difference in average AUC, seed 0 ({n_boot} resamples "
    "of the test clips, 95% interval)"))

# %% [markdown]
# ```{glue:figure} fig_boot
# :name: fig-boot
# :alt: Differences of average AUC between pairs of networks on the test clips, with 95 percent bootstrap intervals, and a dashed line at zero.
#
# Difference of the average AUC between two networks of seed 0, {glue:text}`data`, with the
# 95% interval over resamples of the test clips; the pairs in {numref}`fig-pairs`'s order, set
# by the mean over the seeds, so a difference of seed 0's networks can be negative; filled: the
# interval excludes zero.
# ```
#
# The test-clip intervals are {glue:text}`boot_width:.3f` wide on average, and
# {glue:text}`boot_resolved` pairs exclude zero. They are about seed 0's networks, one
# training run each, so the seeds' measure to set beside them is not the interval of the mean
# above but where one more run's difference would fall: the {term}`prediction interval`
# (`paired_difference(..., one_run=True)`), $\sqrt{n+1}$ times wider for $n$ seeds,
# {glue:text}`seed_width:.3f` wide on average: the test clips' intervals are
# {glue:text}`boot_vs_seed` than that. The two answer different questions: the seeds, whether another
# training run would keep an order on these clips; the resamples, whether these trained
# networks would keep it on another test set of the same size. An order worth reporting
# survives both. The resamples treat clips as independent, which clips cut
# from the same long recording need not be, so if anything they understate the spread.
#
# ### Training in bfloat16
#
# `asd run --precision bf16` trains and scores under bfloat16 autocast: the matrix products run
# in 16-bit floats (float32's 8-bit exponent, a 7-bit mantissa), the weights and the
# optimiser's state stay in 32 bits. On hardware with bfloat16 units (a recent GPU, or a CPU with bfloat16 instructions) that is
# faster, but the report trained in 32 bits. Here the four networks are trained again in
# bfloat16, on the same data with the same seed as the 32-bit run above (on a CPU without
# bfloat16 instructions, emulated, it can be slower than 32 bits):

# %% tags=["hide-input"]
bf16_results = asd.experiment.run(
    dataclasses.replace(cfg, precision="bf16"), src.dev, networks,
    progress=False, data_label=src.label)
by_precision = {"fp32": results, "bf16": bf16_results}
rows = [{**r, "model": f"{r['model']} ({precision})"}
        for precision, res in by_precision.items() for r in res.rows]
display(Table(metrics.table(sorted(rows, key=lambda r: r["model"])),
              f"This book, 32-bit and bfloat16 training: {provenance}"))
bf16_table = metrics.table(bf16_results.rows)
gap = max(abs(bf16_table[name]["AVG"][0] - table[name]["AVG"][0])
          for name in networks)
glue("bf16_gap", f"{gap:.3f}", display=False)
# each network's move against its own seed-to-seed standard deviation
within = all(abs(bf16_table[m]["AVG"][0] - table[m]["AVG"][0])
             <= 2 * spread[m]["AVG"][0][1] for m in networks)
glue("bf16_verdict",
     "about as much as another seed does (for each network, at most two of "
     "its standard deviations)" if within else
     "more than another seed does for some network (over two of its "
     "standard deviations)", display=False)
for precision, res in by_precision.items():
    seconds = sum(m.seconds for m in res.models.values())
    glue(f"{precision}_seconds", f"{seconds:.0f} s", display=False)
glue("bf16_device", asd.utils.device_name(torch.device(results.device)),
     display=False)

# %% [markdown]
# Between the precisions a network's average AUC moved by at most {glue:text}`bf16_gap`, to set
# against the seed-to-seed standard deviation of {glue:text}`seed_sd_low:.3f` to
# {glue:text}`seed_sd_high:.3f` above, so bfloat16 changes a network's average AUC
# {glue:text}`bf16_verdict`. A single ID's AUC or pAUC can move more (the table above), and so
# can a network at the report's scale ({ref}`sec-report-scale` shows the bfloat16 record's).
# Training and scoring the four networks took {glue:text}`bf16_seconds` in bfloat16 and
# {glue:text}`fp32_seconds` in 32 bits on {glue:text}`bf16_device`, each time measured when the run
# was trained (a cached run keeps its time).
#
# ## ROC curves
#
# The {term}`ROC curve` of one ID plots, for every threshold on the score, the share of anomalous
# clips flagged (true-positive rate) against the share of normal clips flagged (false-positive
# rate). AUC is the area under the whole curve; pAUC looks only at the shaded strip, where at
# most 10% of normal clips raise a false alarm, which the right-hand panels enlarge.

# %%
# one score per test clip and network
scores = {name: m.scores for name, m in results.models.items()}
y_true = results.test.y_true  # 1 = anomalous, 0 = normal
clip_ids = results.test.clip_ids  # each clip's machine ID
print(f"{len(y_true)} test clips, {y_true.sum()} anomalous")
print(f"scored by {', '.join(scores)}")

# %% tags=["hide-input", "remove-output"]
glue("fig_roc", plots.roc_curves(y_true, clip_ids, scores, cfg.max_fpr))

# %% [markdown]
# ```{glue:figure} fig_roc
# :name: fig-roc
# :alt: ROC curves per machine ID, one line per network: the whole curve with the false-positive range of pAUC shaded, and that range enlarged.
#
# ROC curves per machine ID, one line per network, {glue:text}`data`. Left: the whole curve, the
# false-positive range of pAUC shaded; right: that range enlarged, where pAUC is decided. Dotted: chance.
# ```
#
# `asd.plots.roc_curves` draws it; its heart is scikit-learn's `roc_curve`, called once per
# machine ID and network on that ID's clips:
#
# ```{literalinclude} ../asd/plots.py
# :language: python
# :pyobject: roc_curves
# ```
#
# ### How pAUC is standardised
#
# The raw area of the strip is at most 0.1 (a perfect detector) and 0.005 for a random one
# (the triangle under the diagonal). scikit-learn's `roc_auc_score(y_true, scores,
# max_fpr=0.1)`, which the DCASE 2020 evaluator calls, reports instead McClish's standardised
# partial area {cite}`mcclish1989analyzing`,
#
# $$\mathrm{pAUC} = \frac{1}{2}\left(1 + \frac{A - A_\min}{A_\max - A_\min}\right),
# \qquad A_\min = \frac{0.1^2}{2},\ A_\max = 0.1,$$
#
# which maps a random detector to 0.5 and a perfect one to 1, like AUC. This is the pAUC of
# the DCASE results, of the report and of this book. Computed by hand for one network and ID:

# %%
name, machine_id = config.NETWORKS[0], str(clip_ids[0])
sel = clip_ids == machine_id
fpr, tpr, _ = roc_curve(y_true[sel], scores[name][sel])
stop = np.searchsorted(fpr, cfg.max_fpr, side="right")
x = np.r_[fpr[:stop], cfg.max_fpr]
y = np.r_[tpr[:stop], np.interp(cfg.max_fpr, fpr, tpr)]
raw = auc(x, y)  # trapezoidal area under the clipped curve
a_min, a_max = cfg.max_fpr**2 / 2, cfg.max_fpr
pauc = 0.5 * (1 + (raw - a_min) / (a_max - a_min))
print(f"{name}, ID {machine_id}: raw partial area {raw:.4f} "
      f"-> standardised pAUC {pauc:.4f}")
assert np.isclose(pauc, roc_auc_score(y_true[sel], scores[name][sel],
                                      max_fpr=cfg.max_fpr))
assert np.isclose(pauc, table[name][machine_id][1])
print("equal to roc_auc_score(..., max_fpr=0.1) and to the table above")
n_normal = int(np.sum(sel & (y_true == 0)))
glue("pauc_id", machine_id, display=False)
glue("pauc_normals", n_normal, display=False)
glue("pauc_inside", int(cfg.max_fpr * n_normal), display=False)
# one normal clip inside the strip passing one anomaly more: the raw area
# moves by 1 / (normal x anomalous clips), the standardised pAUC by half that
# over the strip's range
n_anomalous = int(np.sum(sel & (y_true == 1)))
glue("pauc_step", 0.5 / (n_normal * n_anomalous * (a_max - a_min)),
     display=False)

# %% [markdown]
# The strip holds few normal clips: ID {glue:text}`pauc_id` has {glue:text}`pauc_normals`
# normal test clips here, so false-positive rates up to 0.1 cover only the
# {glue:text}`pauc_inside` highest-scoring of them: the strip's area is built from that few
# steps of the curve (the enlarged panels of {numref}`fig-roc` show them), and one normal clip
# that outscores one anomaly more moves pAUC by {glue:text}`pauc_step:.4f`, a few of them by a
# visible step. Networks whose pAUCs differ by a few such steps are close to tied.

# %% [markdown]
# ## One clip scored by hand
#
# `asd.experiment.run` hides the steps from a clip to its score. Here they are for the first
# normal test clip of the hardest ID and a typical anomalous one (the median of the ID's
# anomalous clips by score), with the Sequential network (the
# DCASE 2020 baseline autoencoder) rebuilt from the trained weights that the results cache
# keeps: the clip's standardised log-mel frames, its stacked 640-d vectors, the network's
# reconstruction, the squared error of each vector, and their mean, the clip's score.

# %%
# the standardised features, from the cache
prep = asd.experiment.prepare(cfg, src.dev, progress=False)
net = results.models["sequential"].detector(cfg, prep.id_index).model.eval()
seq_scores = results.models["sequential"].scores
anomalous = np.flatnonzero((clip_ids == hardest) & (y_true == 1))
by_score = anomalous[np.argsort(seq_scores[anomalous])]
typical = int(by_score[len(by_score) // 2])
first_normal = int(np.flatnonzero((clip_ids == hardest) & (y_true == 0))[0])
picked = {}
for i, kind in ((first_normal, "normal"), (typical, "anomalous")):
    frames = prep.test.subset([i]).frames  # (frames, 128)
    stacked = features.stack(frames, cfg.feature.n_frames)  # (vectors, 640)
    vectors = torch.from_numpy(stacked)
    with torch.no_grad():
        # one mean squared error per vector
        errors = ((net(vectors) - vectors) ** 2).mean(dim=1).numpy()
    score = errors.mean()  # the clip's anomaly score
    assert np.isclose(score, seq_scores[i], rtol=1e-5)
    clip = prep.test.clips[i].path.name
    picked[f"{kind}: {clip}"] = (frames, errors)
    print(f"{kind} clip {clip}: {len(vectors)} vectors, score {score:.4f}")
print("both scores equal the pipeline's")

# %% tags=["hide-input", "remove-output"]
hop_s = cfg.feature.hop_length / cfg.feature.sample_rate
glue("fig_errors", plots.errors_over_time(picked, hop_s, cfg.feature.n_frames,
                                          cfg.feature.sample_rate))
normal_score, anomalous_score = (e.mean() for _, e in picked.values())
glue("hand_order", "above" if anomalous_score > normal_score else "below",
     display=False)
normal_of_id = (clip_ids == hardest) & (y_true == 0)
normals = seq_scores[normal_of_id]
share = float(np.mean(normals < anomalous_score))
glue("hand_share", f"{share:.0%}", display=False)
glue("hand_n", len(normals), display=False)
glue("hand_scores", f"{anomalous_score:.4f} against {normal_score:.4f}",
     display=False)
if results.synthetic:  # the stand-in's plan knows the anomalous clip's fault
    plan = asd.synth.planned([prep.test.clips[typical]], results.synthetic)[0]
    severity = asd.synth.fault_severity(plan.machine_id, plan.seed)
    hand_fault = (f"The anomalous clip holds a {plan.anomaly} fault of "
                  f"severity {severity:.2f} (0 none, 1 the severest). ")
else:
    hand_fault = ""
glue("hand_fault", hand_fault + "The two are different recordings: much of "
     "what differs between the two panels is how any two clips of the "
     "machine differ, not the fault.", display=False)
glue("hand_verdict",
     "a threshold that flags few normal clips would catch this fault"
     if share >= 0.9 else
     "only a threshold that also flags "
     f"{1 - share:.0%} of the normal clips would catch this fault",
     display=False)

# %% [markdown]
# ```{glue:figure} fig_errors
# :name: fig-errors
# :alt: Log-mel spectrograms of a normal and an anomalous clip above their reconstruction errors over time.
#
# What the Sequential network sees: standardised log-mel frames (top, in training
# standard deviations) and each
# vector's reconstruction error over time (bottom; dashed: their mean, the clip's score) for a
# normal and an anomalous test clip of machine ID {glue:text}`hardest_id`, {glue:text}`data`.
# ```
#
# {glue:text}`hand_fault` Here the anomalous clip's score lies {glue:text}`hand_order` the
# normal clip's
# ({glue:text}`hand_scores`) and above {glue:text}`hand_share` of the {glue:text}`hand_n` normal
# test clips of its ID: {glue:text}`hand_verdict`. One pair says little; the ranking of all of
# them is what AUC measures. A clip's score averages its vectors' errors, and the average
# dilutes a fault in two ways: in time, a short fault (a click) is one peak among the clip's
# ~300 vectors; in frequency, a fault that lasts the whole clip but fills one mel band changes 5
# of a vector's 640 numbers, and the network may rebuild part of it. The exercises below try the
# maximum instead of the mean.
#
# ## Score distributions
#
# AUC summarises how well the scores of normal and anomalous clips separate; the histograms
# show it. An ideal detector puts every anomalous clip (orange) to the right of every normal
# one (blue).

# %% tags=["hide-input", "remove-output"]
# the four networks' scores are one quantity, the squared error of the same
# standardised vectors: one axis per ID, so that the rows compare
glue("fig_scores", plots.score_histograms(y_true, clip_ids, scores,
                                          share=True))
# each ID's median normal score, for one network: where its scores lie
levels = {mid: np.median(scores[best_auc][(clip_ids == mid) & (y_true == 0)])
          for mid in ids}
glue("id_levels", ", ".join(f"{v:.3f} (ID {m})" for m, v in levels.items()),
     display=False)

# %% [markdown]
# ```{glue:figure} fig_scores
# :name: fig-scores
# :alt: Histograms of the anomaly scores of normal and anomalous test clips, one row per network and one column per machine ID.
#
# Anomaly scores (mean reconstruction error; a logarithmic axis where they span a factor of
# 10 or more) of the normal and anomalous test clips,
# one row per network and one column per machine ID, {glue:text}`data`; the panels of a column
# share their axis.
# ```
#
# The scores of different IDs can lie at different levels: here the median normal score of
# {glue:text}`best_auc_model` is {glue:text}`id_levels`. The histograms' bins are too coarse
# to show differences that small; {numref}`fig-decisions` in chapter 6 draws one ID's scores
# close up. Each ID is evaluated on its own, so a difference in level does not affect its AUC;
# but one threshold for all IDs of a machine type would not work,
# and a deployed system calibrates a threshold per machine, best on normal recordings of it
# that the detector never trained on ({ref}`sec-decisions` in chapter 6 shows why).
#
# ### Which faults are missed?
#
# The release's file names say only *normal* or *anomaly*. The stand-in knows more: each
# anomalous clip's fault and its severity, drawn uniformly from 0 (none) up to 1, or less for
# some IDs ({numref}`fig-faults` in chapter 2). `results.auc_by_fault()` reads them back from the generator's plan
# (`asd.synth.faults`) and scores each group of anomalous clips against the normal clips of its
# own ID, then averages over the IDs (`asd.metrics.auc_by_group`).

# %% tags=["hide-input", "remove-output"]
if results.synthetic:
    panels = results.auc_by_fault(networks)  # severity in thirds
    mean = {title: {g: float(np.mean([tab[m][g][0] for m in networks]))
                    for g in tab[networks[0]]}
            for title, tab in panels.items()}
    kinds, bands = mean["by fault type"], list(mean["by severity"].values())
    hard, easy = min(kinds, key=kinds.get), max(kinds, key=kinds.get)
    faults_text = (
        f"Averaged over the four networks, the mildest third of the faults "
        f"reach an AUC of {bands[0]:.3f} and the severest third "
        f"{bands[-1]:.3f}; by type, {hard} is the hardest to hear "
        f"({kinds[hard]:.3f}) and {easy} the easiest ({kinds[easy]:.3f}). "
        + ("The networks miss mostly the faults that are barely there, and "
           "those hold down the AUC of the whole test set."
           if bands[0] < bands[-1] else
           "Severity does not order the AUCs here: with this few clips per "
           "group, one clip more or less moves a bar visibly."))
    fig_fault_auc = plots.group_aucs(panels)
else:
    faults_text = (
        "This build's data does not say which fault an anomalous clip holds "
        "(the real release names only normal and anomaly), so there is "
        "nothing to group: the book built on the stand-in shows the figure.")
    fig_fault_auc = plots.group_aucs({})  # says why it is empty
glue("faults_text", faults_text, display=False)
# the level a fault adds: at most MAX_RISE_DB x severity^3; severity uniform
glue("mild_rise", asd.synth.MAX_RISE_DB / 27, display=False)  # at 1/3
glue("mild_mean", asd.synth.MAX_RISE_DB / 27 / 4, display=False)  # below
glue("level_sd", asd.synth.REAL_LEVEL_SD_DB, display=False)
glue("fig_fault_auc", fig_fault_auc)

# %% [markdown]
# ```{glue:figure} fig_fault_auc
# :name: fig-fault-auc
# :alt: Bar charts of each network's AUC on the anomalous test clips grouped by fault type and by severity, bars growing from chance at 0.5.
#
# AUC of each network on one group of anomalous test clips against the normal test clips of
# the same ID, averaged over the IDs, {glue:text}`data`: by fault type (top) and by thirds of
# the fault severity (bottom). Bars grow from chance (0.5); each group names its clips.
# ```
#
# {glue:text}`faults_text` On the stand-in a fault's changes to the machine's process shrink
# with its severity, and the loudness it adds is capped at `asd.synth.MAX_RISE_DB` times the
# cube of it: for the mildest third at most {glue:text}`mild_rise:.2f` dB, and the cap
# averages {glue:text}`mild_mean:.2f` dB there, while normal clips differ in level by about
# {glue:text}`level_sd:.2f` dB among themselves (as the 75 real ID 00 training clips kept beside
# the project do, measured once: the stand-in is tuned to them). On real data the same
# question needs clips labelled by fault, which the MIMII and DCASE releases do not publish.
#
# Listen to one: the anomalous test clip that the best network ranks lowest among the normal
# clips of its ID, beside its normal twin, rendered from the same seed without the fault (on
# the stand-in only).

# %% tags=["hide-input", "remove-output"]
best_net = max(networks, key=lambda m: table[m]["AVG"][0])
if results.synthetic:
    behind = metrics.normal_above(y_true, clip_ids, scores[best_net])
    k = int(np.nanargmax(behind))  # the anomalous clip ranked lowest
    missed = results.test.clips[k]
    plan = asd.synth.planned([missed], results.synthetic)[0]
    severity = asd.synth.fault_severity(plan.machine_id, plan.seed)
    twin_text = (f"{missed.path.name}, {plan.anomaly} at severity "
                 f"{severity:.2f}: {best_net} scores it below {behind[k]:.0%} "
                 f"of ID {missed.machine_id}'s normal test clips")
    sr = cfg.feature.sample_rate
    seconds = results.synthetic["synth"]["duration_s"]  # the data's own
    pair = {"normal twin": asd.synth.render_clip(
                plan.machine_id, None, plan.seed, seconds, sr),
            f"{plan.anomaly} (severity {severity:.2f})":
                asd.data.load_wav(missed.path, sr)}
    fig_twin = plots.spectrograms(
        {name: features.logmel(y, cfg.feature) for name, y in pair.items()},
        cfg.feature.hop_length / sr, ncols=2, sample_rate=sr)
else:
    twin_text, pair = "none here", {}
    fig_twin = plots.note(
        "The release does not say which fault an anomalous clip holds,\n"
        "nor has it the clip's normal twin: this needs the stand-in.")
glue("twin_text", twin_text, display=False)
glue("fig_twin", fig_twin)

# %% [markdown]
# ```{glue:figure} fig_twin
# :name: fig-twin
# :alt: Two log-mel spectrograms side by side: the normal twin of the anomalous clip the best network ranks lowest, and that clip with its fault.
#
# The anomalous test clip the best network ranks lowest ({glue:text}`twin_text`), right,
# beside its normal twin, left: the same seed rendered without the fault. Log-mel power in
# dB, {glue:text}`data`.
# ```

# %% tags=["hide-input"]
gain = 0.9 / max((np.abs(y).max() for y in pair.values()), default=1.0)
for name, y in pair.items():  # none without the stand-in; one gain for both
    print(f"{name}:")
    display(Audio(gain * y, rate=sr, normalize=False))

# %% [markdown]
# ## The ID the report left out
#
# The release's development set has a fourth slider, ID {glue:text}`left_out`, which the
# report did not evaluate. The same networks, trained on that ID's own training clips alone
# (the report's models never heard it, and the networks above trained on three IDs together),
# score its test clips (the counts printed above its table say how far to trust it):

# %%
# On the stand-in or other recordings, the release's references measure
# another thing.
apart = ("" if asd.book.measures_the_release(src) else
         " (the real release: not comparable with the "
         + ("synthetic numbers above)" if src.synthetic else
            "numbers above, of other recordings)"))
for mid in results.left_out:
    extra = asd.experiment.run(cfg, src.dev, networks, ids=[mid],
                               progress=False, data_label=src.label)
    for (clip_id, _, label), n in asd.data.counts(extra.test.clips).items():
        print(f"ID {clip_id}: {n} {label} test clips")
    display(Table(metrics.table(extra.rows),
                  f"This book, ID {mid}: {src.label}"))
published = {m: reference.DCASE2020_BASELINE[m] for m in results.left_out}
display(Table(
    metrics.table(reference.rows_of("DCASE 2020 baseline", published)),
    "Reference (not computed here): the DCASE 2020 baseline README, "
    "real development set, one model trained on all four IDs together"
    + apart))

# %% tags=["hide-input"]
glue("left_out", ", ".join(results.left_out) or "(none)", display=False)

# %% [markdown]
# ## The evaluation set
#
# The report stopped at the development set. The challenge ranked systems on the evaluation
# set: other machines of the same type (slider IDs 01, 03 and 05), trained on their own
# "additional training" clips and tested on clips released without labels. With the
# ground-truth list found beside the data, `asd.experiment.run` scores them the same way:

# %%
if src.eval is None:
    print("no evaluation data: set ASD_EVAL_DATA to the eval_data folder")
else:
    ev = asd.experiment.run(cfg, src.eval, networks, progress=False,
                            data_label=src.eval_label)
    for (clip_id, _, label), n in asd.data.counts(ev.test.clips).items():
        print(f"ID {clip_id}: {n} {label} test clips")
    display(Table(metrics.table(ev.rows),
                  f"This book, evaluation set: {src.eval_label}"))
display(Table(
    metrics.table(reference.rows_of("evaluator example",
                                  reference.EVALUATOR_EXAMPLE)),
    "Reference (not computed here): the example result for slider in the "
    "DCASE 2020 evaluator's README (the README does not name the system), "
    "real evaluation set" + apart))

# %% tags=["hide-input"]
# the evaluation set's fewest test clips of an ID, of each kind
per_id = asd.data.counts(ev.test.clips) if src.eval is not None else {}
few = {kind: min((n for (_, _, k), n in per_id.items() if k == kind),
                 default=0) for kind in ("normal", "anomaly")}
glue("eval_normal", few["normal"], display=False)
lo, hi = int(0.1 * few["normal"]), int(np.ceil(0.1 * few["normal"]))
glue("eval_fpr_clips", f"{lo}" if lo == hi else f"{lo} or {hi}",
     display=False)
glue("eval_auc_step", 1 / few["anomaly"] if few["anomaly"] else np.nan,
     display=False)

# %% [markdown]
# Read these tables with care where an ID has few test clips (as few as
# {glue:text}`eval_normal` normal clips here): pAUC looks only at false-positive rates up to
# 0.1, which the {glue:text}`eval_fpr_clips` highest-scoring normal clips fill, so pAUC moves
# in coarse steps (it can even exceed the AUC); and one anomalous clip that drops from above
# every normal clip to below them all moves its ID's AUC by one over its number of anomalous
# clips, {glue:text}`eval_auc_step:.3f` for the ID with the fewest.

# %% [markdown]
# `asd run --data EVAL_ROOT --scores-dir DIR` also writes each network's scores in the
# challenge's submission format (`DIR/<network>/anomaly_score_slider_id_01.csv`, one line
# `file name,score` per clip), which the official DCASE 2020 evaluator {cite}`dcase2020evaluator` reads, one team folder
# per network.
#
# (sec-report-scale)=
# ## Report-scale run
#
# The quick profile trains for fewer epochs on fewer clips, so that the book builds in
# minutes. A run at the report's scale (the `full` profile: the report's epochs and batch
# sizes, the real data's clip counts) takes a GPU. Its results can be committed to the
# repository as `results/full-<device>.json`, written by
#
# ```bash
# asd run --data $ASD_DATA --profile full --device cuda --concurrent --out results/full-<device>.json
# ```
#
# On a GPU, `asd.train` replays each epoch from captured CUDA graphs, and `--concurrent` trains
# the four networks at the same time, each on a CUDA stream of its own: the longest network
# bounds the wall time. A committed record is shown below with its provenance: the data it
# came from, the profile, the device, the date and the commit of the code that produced it.
# Where `asd bench` measured the same device (`results/bench-<device>.json`), the record is
# followed by how long the networks would have trained one after another at the steps per
# second measured there. A record trained in bfloat16 (`--precision bf16`,
# `results/full-<device>-bf16.json`) is followed by how far each network's average AUC and pAUC
# moved from the 32-bit record of the same device, data and seed: what bfloat16 changes at the
# report's scale, beside the quick-profile comparison above. {glue:text}`records_data`

# %%
# the repository's results folder, beside the package
folder = Path(asd.__file__).resolve().parents[1] / "results"
print(records.describe(folder))

# %% tags=["hide-input", "remove-output"]
committed = records.load(folder)
synthetic = [name for name, r in committed.items() if r.get("synthetic")]
if synthetic == list(committed):
    records_data = ("The records' AUCs are the synthetic stand-in's, at the "
                    "report's scale: they rank the networks on that data and "
                    "are not to be read against the report's table, which "
                    "measured the real slider.")
else:
    records_data = ("Each record names its data above; the AUCs of a record "
                    "made on the real slider can be set beside the report's "
                    "table, those of one made on the synthetic stand-in ("
                    + (", ".join(synthetic) or "none here")
                    + ") cannot.")
glue("records_data", records_data, display=False)
glue("fig_records", plots.record_spans(committed))

# %% [markdown]
# ```{glue:figure} fig_records
# :name: fig-records
# :alt: Horizontal bars on a time axis, one panel per committed record: the log-mel features, then each network's training span, and a dashed line at the wall clock.
#
# The committed report-scale records on one time axis (their data is printed above): a network's
# bar spans its training and scoring; networks trained at the same time start together, after the
# features and every network's set-up, and share the GPU, so a bar is how long a network took
# beside the others, not alone (each queues its next epoch as soon as its last has run, and
# networks sharing the GPU slow one another: bars that end together mean contention, not equal
# work); the dashed line is the run's wall clock.
# ```

# %% [markdown]
# ## Exercises
#
# 1. Score a clip by the maximum instead of the mean of its vectors' errors. Which IDs gain, which lose?
#
# ````{admonition} Solution
# :class: dropdown
# `results.vector_scores(name, i)` gives the errors of test clip `i`'s vectors, in time order;
# their maximum is the new score, ranked per ID as before:
#
# ```python
# name = "sequential"
# peak = np.array([results.vector_scores(name, i).max()
#                  for i in range(len(y_true))])
# display(Table(metrics.table(metrics.per_id(
#     f"{name} (max)", cfg.machine, clip_ids, y_true, peak, cfg.max_fpr)),
#     "AUC/pAUC with the maximum"))
# ```
#
# Compare each ID with the network's row in the table above. Expect short faults (a click, a
# scrape) to gain and IDs whose normal clips hold loud events of their own to lose; which IDs
# do depends on the data, and a gain smaller than the seed spread of {ref}`sec-seeds` is none.
# ````
#
# 2. Compute the pAUC of one network and ID with `max_fpr=0.05`. Why is it not simply half the pAUC at 0.1?
#
# ```{admonition} Solution
# :class: dropdown
# McClish's standardisation maps chance to 0.5 at any `max_fpr`; the value compares the early part of the ROC curve with chance, not an area fraction.
# ```
#
# 3. Train one Sequential network per machine ID instead of one for all IDs:
#    `asd.experiment.run(cfg, src.dev, ["sequential"], per_id=True)`. Which IDs gain, and
#    what happens to ID 04, which has the fewest training clips?
#
# ```{admonition} Solution
# :class: dropdown
# A network per ID spends all its capacity on one machine's normal sound, which can sharpen its
# scores, but it learns from that ID's clips alone: ID 04's network sees fewer than half as many
# as ID 00's, and nothing of what the IDs share. Which effect wins is a question for the data:
# compare `metrics.table(r.rows)` of the two runs, and weigh a difference against the seed
# spread of {ref}`sec-seeds` before calling it.
# ```
