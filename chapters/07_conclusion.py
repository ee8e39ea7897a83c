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
# # Conclusion
#
# ```{admonition} In this chapter you will learn
# - what the numbers of this book can and cannot say about the report
# - what differs between this re-implementation and the report
# - how to take the book to the real data and to report scale
# ```
#
# This book re-implemented the report {cite}`report2021` end to end: the DCASE 2020 log-mel
# features, the four networks with the report's parameter counts, their training with the
# report's optimiser and batch sizes (and, in the `full` profile, its epochs; the `quick` profile
# trains fewer), and the DCASE 2020 evaluation by AUC and McClish-standardised pAUC per machine
# ID {cite}`koizumi2020description`. This chapter sums
# up what the numbers say, what differs from the report, and what the synthetic stand-in can
# and cannot show.

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
from pathlib import Path

from IPython.display import display
from myst_nb import glue

import asd
import asd.book
from asd import config, metrics, records, reference
from asd.tables import Table

cfg, src = asd.book.setup()
# The run of chapter 4: from the cache in ASD_HOME, trained only if absent.
results = asd.experiment.run(cfg, src.dev, list(config.NETWORKS),
                             progress=False, data_label=src.label)
# The seed runs of chapter 4's "Is a difference real?", from the same cache.
runs = asd.experiment.seed_runs(cfg, src.dev, list(config.NETWORKS),
                                list(range(cfg.spread_seeds)), progress=False,
                                data_label=src.label)

# %% [markdown]
# ## What the numbers say
#
# This book's results, and in a separate table the report's and the DCASE 2020 baseline's on
# the real development set (the report's three IDs):

# %%
table = metrics.table(results.rows)
ref_table = reference.reference_table()
display(Table(table, f"This book: {src.label}, device {results.device}"))
display(Table(ref_table, "References (not computed here): the report "
                         "and the DCASE 2020 baseline, real development set"))

# %% tags=["hide-input"]
ranked = sorted(table, key=lambda m: table[m]["AVG"][0], reverse=True)
report_auc = {m: ref_table[f"report {m}"]["AVG"][0] for m in reference.REPORT}
report_ranked = sorted(report_auc, key=report_auc.get, reverse=True)
glue("best_model", ranked[0], display=False)
glue("best_auc", table[ranked[0]]["AVG"][0], display=False)
glue("best_pauc", table[ranked[0]]["AVG"][1], display=False)
glue("worst_model", ranked[-1], display=False)
glue("worst_auc", table[ranked[-1]]["AVG"][0], display=False)
glue("ranking", " > ".join(ranked), display=False)
seed_auc = {m: [metrics.table(r.rows)[m]["AVG"][0] for r in runs]
            for m in config.NETWORKS}
seed_ranked = sorted(seed_auc, key=lambda m: -sum(seed_auc[m]))
resolved = metrics.resolved_orders(seed_auc)
glue("n_seeds", len(runs), display=False)
glue("seed_ranking", " > ".join(seed_ranked), display=False)
glue("seed_resolved", "only " + ", ".join(f"{a} > {b}" for a, b in resolved)
     if resolved else "none of these orderings", display=False)
# the orders the seeds resolve that also hold over resamples of the test clips
y_true, test_ids = results.test.y_true, results.test.clip_ids
both = [f"{a} > {b}" for a, b in resolved if metrics.paired_bootstrap(
    y_true, test_ids, results.models[a].scores,
    results.models[b].scores)[1] > 0]
glue("both_checks", " (no order to check there)" if not resolved else
     "; of the orders the seeds resolve, " + ", ".join(both)
     + " also holds over resamples of the test clips" if both else
     "; none of the orders the seeds resolve holds over resamples of the "
     "test clips too", display=False)
glue("report_ranking", " > ".join(report_ranked), display=False)
best, worst = report_auc[report_ranked[0]], report_auc[report_ranked[-1]]
glue("report_best_auc", best, display=False)
glue("report_worst_auc", worst, display=False)
glue("report_spread", best - worst, display=False)
glue("baseline_auc", ref_table["DCASE 2020 baseline"]["AVG"][0], display=False)
published = reference.ID_CLASSIFIERS_AUC.values()
glue("idclf_low", f"{min(published):g}", display=False)
glue("idclf_high", f"{max(published):g}", display=False)
report_hardest = {min(cells, key=lambda i: cells[i][0])
                  for cells in reference.REPORT.values()}
assert len(report_hardest) == 1, "the report's hardest ID differs by network"
glue("report_hardest_id", report_hardest.pop(), display=False)
# in the report, pAUC < AUC everywhere
assert all(p < a for cells in reference.REPORT.values()
           for a, p in cells.values())
ids = [c for c in table[ranked[0]] if c != "AVG"]
# as chapter 4: an ID's AUC averaged over the networks
id_auc = {i: sum(table[m][i][0] for m in table) / len(table) for i in ids}
glue("hardest_id", min(id_auc, key=id_auc.get), display=False)
glue("hardest_auc", min(id_auc.values()), display=False)
if results.synthetic:  # as chapter 4: each severity third, over the networks
    thirds = results.auc_by_fault()["by severity"]
    band = {g: sum(thirds[m][g][0] for m in thirds) / len(thirds)
            for g in thirds[ranked[0]]}
    mild, severe = list(band.values())[0], list(band.values())[-1]
    faults_summary = (("What they miss is mostly the mildest faults"
                       if mild < severe else
                       "Severity does not order what they miss here")
                      + f": the mildest third of the faults reach an average "
                      f"AUC of {mild:.3f}, the severest {severe:.3f}")
else:
    faults_summary = ("Which faults they miss, this data cannot say: the "
                      "release does not label an anomalous clip's fault")
glue("faults_summary", faults_summary, display=False)
pauc_above = sum(table[m][i][1] > table[m][i][0] for m in table for i in ids)
n_pairs = len(table) * len(ids)
glue("pauc_here", f"on this book's development set it is higher in "
     f"{pauc_above} of the {n_pairs} network-ID pairs" if pauc_above else
     "so it is on this book's development set, but it need not be",
     display=False)
# the gaps between the averages as the reference table prints them (3 decimals)
report_avg = sorted(round(ref_table[f"report {m}"]["AVG"][0], 3)
                    for m in reference.REPORT)
gaps = [b - a for a, b in zip(report_avg, report_avg[1:])]
glue("report_gaps", f"{min(gaps):.3f} to {max(gaps):.3f}", display=False)
# the committed report-scale record (chapter 4's last section), 32-bit
folder = Path(asd.__file__).resolve().parents[1] / "results"
full = {name: r for name, r in records.load(folder).items()
        if r["config"]["precision"] == "fp32"}
if full:
    name, record = next(iter(full.items()))
    avg = {m: c["AVG"][0] for m, c in metrics.table(record["rows"]).items()}
    made = record.get("synthetic")
    on = (f"the synthetic stand-in, full profile, generator v{made['version']}"
          if made else record["data"])
    full_text = (
        f"The committed report-scale record {name} ({on}; one seed) ranks "
        "them " + ", ".join(f"{m} {avg[m]:.3f}" for m in
                            sorted(avg, key=avg.get, reverse=True))
        + ": a ranking of the quick profile need not hold at the report's "
        "epochs and clip counts.")
else:
    full_text = ("No report-scale record is committed (the last section of "
                 "chapter 4 says how to make one).")
glue("full_text", full_text, display=False)

# %% [markdown]
# ```{admonition} Which data?
# :class: important
# This chapter's results come from the **{glue:text}`data`**. {glue:text}`data_caveat`
# ```
#
# **This book's run** ({glue:text}`data`, one seed): the networks rank {glue:text}`ranking` by
# average AUC, from {glue:text}`best_auc:.3f` ({glue:text}`best_model`, pAUC
# {glue:text}`best_pauc:.3f`) to {glue:text}`worst_auc:.3f` ({glue:text}`worst_model`).
# Averaged over the {glue:text}`n_seeds` seeds of {ref}`sec-seeds` they rank
# {glue:text}`seed_ranking`, and the seeds resolve {glue:text}`seed_resolved` (a 95% interval
# of the paired difference that excludes zero, on these test clips): one seed's ranking is not
# the networks'. Whether an order would hold on another test set is a second question, which
# {ref}`sec-test-draw` answers by resampling the test clips{glue:text}`both_checks`.
# {glue:text}`full_text`
# With six pairs tested at once, the chance that some interval excludes zero by luck alone is
# well above 5% (up to $1 - 0.95^6$, about one in four). The hardest machine ID is
# {glue:text}`hardest_id` (mean AUC of the four networks {glue:text}`hardest_auc:.3f`).
# {glue:text}`faults_summary` ({numref}`fig-fault-auc`).
#
# **The report** (real data, a reference): its networks rank {glue:text}`report_ranking`, from
# {glue:text}`report_best_auc:.3f` to {glue:text}`report_worst_auc:.3f`, a spread of
# {glue:text}`report_spread:.3f`; the DCASE 2020 baseline averages
# {glue:text}`baseline_auc:.3f` on the same three IDs, and ID {glue:text}`report_hardest_id` is
# the hardest for every network.
#
# Three lessons, the first about any such comparison, the other two from the real data:
#
# - **The differences between the report's networks are small.** Each of its numbers comes
#   from one training run with one seed, and neighbours in its ranking lie
#   {glue:text}`report_gaps` AUC apart. {ref}`sec-seeds` measures how far another seed moves a
#   network's average on this book's data; a claim that batch normalisation or dropout helps
#   needs repeated runs and the confidence interval of their difference.
# - **On the real slider, the published systems that use the machine IDs score far above
#   reconstruction error.** Systems that train a classifier to tell the IDs of a machine type
#   apart, and score a clip by how unsure the classifier is of its own ID, reach average
#   slider AUCs of about {glue:text}`idclf_low` to {glue:text}`idclf_high` on the development
#   set {cite}`primus2020anomalous,liu2022anomalous`, far above every autoencoder in the report.
#   Their averages take in ID 06 too, the hardest for the DCASE baseline, which the report
#   left out: if anything, a harder set of IDs than the report's. Those systems differ in their features and networks too, so the gap is one
#   between systems, not a measured effect of the score alone. Why an autoencoder falls behind
#   is a hypothesis, not a finding of this book: it rebuilds whatever it can, the slider's
#   periodic strokes are partly predictable, and faults that change the rhythm more than the
#   spectrum may be hard to see in five frames. {doc}`05_beyond_the_report` tries such
#   detectors and tests, on this book's data, the assumption they rest on.
# - **pAUC is not a smaller AUC.** It looks only at thresholds that flag at most 10% of normal
#   clips, the low-false-alarm end where a monitoring system must work (even 10% is hundreds
#   of false alarms a day, {ref}`sec-decisions`), rescaled so that chance is 0.5.
#   In the report it is lower than AUC for every network and ID; {glue:text}`pauc_here`: a
#   detector whose top scores are all faults can do better at the low-false-alarm end than
#   over the whole ROC curve.
#
# ## What changed with respect to the report
#
# - **Choices made explicit.** The report gives parameter counts, optimiser, epochs and
#   batch sizes, but not every layer or loss detail. The package fixed them (the VAE's layer
#   widths, its summed-squared-error-plus-KL loss with weight 1, scoring from the posterior
#   mean, dropout 0.2, the batch-normalisation settings, a 10% clip-level validation split)
#   and made each one a configuration field ({doc}`03_networks`). The parameter counts equal
#   the report's, which the book checks every time it is built.
# - **pAUC stated precisely.** pAUC is scikit-learn's McClish-standardised partial area
#   {cite}`mcclish1989analyzing`, the DCASE evaluator's definition, with chance at 0.5
#   ({doc}`04_training_results`).
# - **One network for the IDs in use**, trained on their normal clips together: the report's
#   three IDs here, where the DCASE baseline trains one per machine type on all four slider
#   IDs.
# - **Reproducible and tested.** Every number in the book, except the labelled references,
#   the committed report-scale records (shown with the commit that made them) and the few
#   measurements on real recordings not shipped with it (labelled where they appear), is
#   computed when the book is built, from a seeded configuration. Every build runs every chapter, and
#   the trained results it reuses are cached on the configuration, the data and the code,
#   so a stale number cannot survive a change; the package has unit tests and the chapters
#   run in CI. A seed fixes the numbers on one machine; another (another number of CPU
#   threads, a GPU) sums in another order, trains slightly different networks and gets
#   numbers that differ as another seed's do ({ref}`sec-seeds`).
# - **The data.** By default the book runs on a synthetic stand-in, and in the `quick`
#   profile on fewer clips and epochs than the report.
#
# ## What synthetic data can and cannot show
#
# The stand-in exercises every step with data of the real shape: the file layout and names,
# the machine IDs, the clip length and sample rate, normal-only training data, imbalanced test
# sets. It catches bugs, makes the figures readable and lets the book build anywhere in
# minutes. But its sounds come from a generator with a handful of mechanisms (strokes, motor,
# friction, impacts, the drive's tones, three fault types, factory noise), so:
#
# - its difficulty is whatever the generator makes it: an AUC on it measures the generator as
#   much as the detector;
# - a ranking of networks on it need not carry over to the real slider, whose faults are more
#   varied and whose recordings differ in ways no generator reproduces;
# - it cannot confirm or refute the report's numbers. Only the real data can.
#
# ## With the real data
#
# 1. `asd download ~/dcase2020` (and `--set additional`, `--set eval` for the evaluation set);
# 2. `export ASD_DATA=~/dcase2020/dev_data ASD_PROFILE=full` (a GPU is taken automatically
#    when there is one: `ASD_DEVICE=auto`). At the report's scale the four networks train for
#    hours on a laptop's CPU and minutes on a GPU ({doc}`04_training_results` shows a recorded
#    GPU run), and the book trains them once more per seed of {ref}`sec-seeds`;
# 3. rebuild the book: every table and figure then shows the real development set at the
#    report's scale, beside the report's numbers (on a CPU, first lift the book's 30-minute
#    limit per cell, `timeout: -1` under `execute:` in `_config.yml`, and `--nbmake-timeout`
#    for `pytest --nbmake`: a full-profile training cell runs for hours there), or run
#    `asd run --data $ASD_DATA --profile full --out results/full-<device>.json` and commit the
#    record, which {doc}`04_training_results` then shows with its provenance;
# 4. look at the seed spread ({ref}`sec-seeds`, `cfg.spread_seeds` runs per network) before
#    drawing conclusions from differences between networks;
# 5. to watch a machine rather than rank a test set, lay out its normal recordings as training
#    clips and the new ones as unlabelled test clips (`~/plant/press/train/normal_id_00_00000000.wav`,
#    `~/plant/press/test/id_00_00000000.wav`; `asd arrange` does it for a recorder's own files):
#    `asd run --data ~/plant --machine press --profile full --scores-dir scores
#    --save-models models` scores them, flags those above each ID's threshold
#    ({ref}`sec-decisions`) and saves the trained detectors;
#    `asd score models/sequential.pt --clips ~/plant/incoming` then scores
#    later recordings without training again ({ref}`sec-train-once`). Measure the false-alarm rate on
#    normal recordings the detector has not seen before trusting the flags, and set the
#    thresholds from such recordings (`--calibration-clips PATH`).
#
# ## Recording your own machine
#
# What the detectors assume of the recordings, as a checklist before pointing them at a plant:
#
# - **One recording chain.** Record training clips and new clips with the same microphone, in
#   the same place, at the same gain and sample rate. `asd` resamples another rate (with a
#   warning) and keeps the first channel of a multi-channel file, but a changed chain changes
#   the scores: a 48-kHz clip scored against 16-kHz training clips scores higher for its top
#   mel bands alone, which the resampler's low-pass filter softens.
# - **Clips of about ten seconds.** A clip gets one score, the mean over all of it: a fault
#   that sounds for one second of a ten-minute recording is averaged away. Cut long recordings
#   into clips of the training clips' length (`asd cut LONG --out CLIPS`; {ref}`sec-long`
#   shows the averaging); `asd run` and `asd score` warn about clips under half or over twice
#   that length.
# - **Enough normal clips, and some kept apart.** The real slider IDs have 434 to 968 training
#   clips each; train on as many normal clips as you can, and keep dozens more, recorded on
#   other days, to set and check the thresholds (`--calibration-clips`): a threshold fitted to
#   the training clips flagged far more than its nominal 10% of new normal clips on real
#   audio ({ref}`sec-decisions`). {ref}`sec-how-many` measures what fewer clips cost the
#   ranking and the thresholds; measure your own machines' curve with `asd run --max-train N`.
# - **Faults below 8 kHz.** `asd` resamples every clip to 16 kHz, the DCASE data's rate
#   (`cfg.feature.sample_rate`): a sound above 8 kHz (a bearing's whine, say) is gone before
#   the features see it.
# - **Every operating state.** A detector knows only the normal it heard: a new speed, load or
#   product on the machine sounds new to it. Record each state the machine runs in, and expect
#   alarms when the plant changes: a few decibels more background can multiply a network's
#   false alarms ({ref}`sec-hall` measures it on the stand-in). After a change around the
#   machine, record normal clips again and refit the thresholds to them (`--calibration-clips`).
# - **Alarms over several clips.** Ten-second clips around the clock are 8,640 a day; even a
#   calibrated 1% is about 86 false alarms a day. Alarm on several consecutive flagged clips
#   (`--alarm-after N`, {ref}`sec-decisions`; `--alarm-state FILE` counts a run on from one
#   `asd score` call to the next, and `--new-only` scores only the clips recorded since),
#   and choose the quantile from the false alarms you can afford (`--decision-quantile`).

# %% [markdown]
# ## Exercises
#
# 1. {ref}`sec-seeds` compares the networks' average AUC over seeds. Repeat it for the average pAUC: are the same orderings resolved?
#
# ```{admonition} Solution
# :class: dropdown
# `runs = asd.experiment.seed_runs(cfg, src.dev, list(asd.config.NETWORKS), list(range(cfg.spread_seeds)))` (cached after chapter 4), then `metrics.paired_difference` on `metrics.table(r.rows)[name]["AVG"][1]` for each pair, and compare the intervals with those for AUC.
# ```
#
# 2. pAUC's range is a choice, 0.1 in DCASE 2020. Compute each network's average pAUC with
#    `max_fpr` 0.05 and 0.2 instead (`asd.metrics.auc_pauc(y_true, scores, max_fpr=...)` per
#    ID, on `results.test`). Does the ranking of the networks change with the range?
#
# ```{admonition} Solution
# :class: dropdown
# For each network, average `metrics.auc_pauc(y[sel], s[sel], max_fpr=f)[1]` over the IDs
# (`sel = results.test.clip_ids == mid`, `y = results.test.y_true`,
# `s = results.models[name].scores`). A narrower range rests on fewer normal clips (of the quick
# profile's 50 normal test clips per ID, five at 0.1 and two at 0.05), so its values move in larger steps
# and the ranking is less stable; which networks trade places depends on the data and the seed.
# ```
#
# 3. Build the book at the report's scale (`ASD_PROFILE=full`; hours on a CPU, minutes on a
#    GPU) and set its ranking beside the quick profile's and the committed record's. Which
#    differences exceed chapter 4's seed spread?
#
# ```{admonition} Solution
# :class: dropdown
# The full profile trains on the release's clip counts for the report's epochs, so the
# networks fit the normal sound more closely; rankings that the seeds did not resolve in the
# quick profile need not hold, and only differences larger than the seeds' spread (measured
# again at that scale) say anything about the networks.
# ```
