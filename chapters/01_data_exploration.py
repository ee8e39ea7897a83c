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
# # The data
#
# ```{admonition} In this chapter you will learn
# - how DCASE 2020 Task 2 lays out its clips, and what a file name reveals
# - which machine IDs the report used, and how the evaluation set was released (unlabelled, with a later ground-truth list)
# - why the task is scored with AUC and pAUC rather than accuracy
# ```
#
# DCASE 2020 Task 2 {cite}`koizumi2020description` ships its clips in one folder per machine
# type, split into `train` (normal clips only) and `test` (normal and anomalous clips). In the
# {term}`development set` the file name says everything the task reveals about a clip: its label
# (`normal` or `anomaly`), its machine ID and an index, e.g. `test/anomaly_id_02_00000042.wav`.
# The {term}`evaluation set`'s test clips were released **unlabelled** (`test/id_01_00000000.wav`); their
# labels were published after the challenge in a ground-truth list, `eval_data_list.csv`. The
# slider clips come from the MIMII dataset {cite}`purohit2019mimii`: 10 s, one channel, 16 kHz.
#
# This chapter counts the clips per machine ID, split and label (the report's first two
# figures {cite}`report2021`), then looks at and listens to a normal and an anomalous clip.

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
import numpy as np
from IPython.display import Audio, display
from myst_nb import glue

import asd
import asd.book
from asd import data, plots, synth

cfg, src = asd.book.setup()

# %% [markdown]
# ```{admonition} Which data?
# :class: important
# Everything below comes from the **{glue:text}`data`**. {glue:text}`data_caveat`
# The synthetic stand-in has the real data's layout, names and IDs; in the `full` profile it
# also has the real clip counts, in the `quick` profile fewer clips. The
# {doc}`introduction <intro>` explains how to run the book on the real data.
# ```
#
# ## How many clips?
#
# `asd.data.list_clips` parses every file name of one split (and rejects a name that does
# not parse, naming the file); unlabelled clips take their labels from the ground-truth list
# (`asd.data.read_ground_truth`, found in or beside the eval folder by
# `asd.data.find_ground_truth`). `asd.data.counts` counts the clips per machine ID, split and
# label.

# %%
dev_clips = [clip for split in data.SPLITS
             for clip in data.list_clips(src.dev, cfg.machine, split)]
sets = {"development set": data.counts(dev_clips)}
if src.eval is not None:
    truth = data.find_ground_truth(src.eval)
    labels = data.read_ground_truth(truth, cfg.machine) if truth else None
    eval_clips = data.list_clips(src.eval, cfg.machine, "train")
    try:
        eval_clips += data.list_clips(src.eval, cfg.machine, "test",
                                      labels=labels)
    except data.DataError as err:  # unlabelled clips, no ground-truth list
        print(f"evaluation test clips not counted: {err}")
    sets["evaluation set"] = data.counts(eval_clips)
report_ids = cfg.report_ids[cfg.machine]
print(f"development IDs: {', '.join(data.unique_ids(dev_clips))}; "
      f"the report's: {', '.join(report_ids)}")

# %% tags=["hide-input", "remove-output"]
def total(counts, split=None, label=None):
    """Clips of one split and label (None: any) over every ID."""
    return sum(n for (_, s, lab), n in counts.items()
               if split in (None, s) and label in (None, lab))


dev_counts = sets["development set"]
glue("n_dev_train", total(dev_counts, "train"), display=False)
glue("n_dev_test", total(dev_counts, "test"), display=False)
glue("n_dev_test_normal", total(dev_counts, "test", "normal"), display=False)
glue("n_dev_test_anomaly", total(dev_counts, "test", "anomaly"), display=False)
glue("dev_ids", ", ".join(data.unique_ids(dev_clips)), display=False)
glue("report_ids", ", ".join(report_ids), display=False)
others = [i for i in data.unique_ids(dev_clips) if i not in report_ids]
glue("other_ids", ", ".join(others) or "none", display=False)
glue("fig_counts", plots.counts_bars(sets))
glue("counts_data", src.label if src.eval_label in (None, src.label)
     else f"{src.label} and the {src.eval_label}", display=False)

# %% [markdown]
# ```{glue:figure} fig_counts
# :name: fig-counts
# :alt: Bar charts of the number of clips per machine ID, for training normal, test normal and test anomalous clips.
#
# Clips per machine ID, split and label in the {glue:text}`counts_data`. The report's Figs
# 1-2 show the same for the real data.
# ```
#
# The development set here has {glue:text}`n_dev_train` training clips (all normal) and
# {glue:text}`n_dev_test` test clips ({glue:text}`n_dev_test_normal` normal,
# {glue:text}`n_dev_test_anomaly` anomalous) of machine IDs {glue:text}`dev_ids`. The report
# used IDs {glue:text}`report_ids` only, and so do the following chapters by default
# (`cfg.report_ids`; also in the release: {glue:text}`other_ids`). At full scale the stand-in
# has the real release's counts, computed here from the `full` profile's configuration:

# %%
full = asd.get_config("full").synth
dev, ev = full.dev, full.eval
dev_test = [n + a for n, a in zip(dev.test_normal, dev.test_anomaly)]
eval_test = [n + a for n, a in zip(ev.test_normal, ev.test_anomaly)]


def report_only(column):
    """The entries of a per-ID column that belong to the report's IDs."""
    return [x for mid, x in zip(dev.ids, column) if mid in report_ids]


scale = {  # (IDs, training clips per ID, test clips per ID)
    "development set": (dev.ids, dev.train, dev_test),
    "evaluation set": (ev.ids, ev.train, eval_test),
    "report's IDs": (report_only(dev.ids), report_only(dev.train),
                     report_only(dev_test)),
}
for name, (ids, train, test) in scale.items():
    print(f"{name}, IDs {', '.join(ids)}:\n"
          f"  training clips {', '.join(map(str, train))} = {sum(train)}\n"
          f"  test clips     {', '.join(map(str, test))} = {sum(test)}")

# %% tags=["remove-input"]
glue("full_report_train", sum(scale["report's IDs"][1]), display=False)
glue("full_report_test", sum(scale["report's IDs"][2]), display=False)
glue("full_eval_train", sum(scale["evaluation set"][1]), display=False)
glue("full_eval_test", sum(scale["evaluation set"][2]), display=False)
# accuracy of a detector that flags every test clip, per ID at full scale
flag_all = {mid: a / (n + a) for mid, n, a in
            zip(dev.ids, dev.test_normal, dev.test_anomaly)}
most = max(flag_all, key=flag_all.get)
glue("most_imbalanced", most, display=False)
glue("least_imbalanced", min(flag_all, key=flag_all.get), display=False)
glue("flag_all", f"{flag_all[most]:.0%} of ID {most}'s test clips and "
     f"{min(flag_all.values()):.0%} of ID {min(flag_all, key=flag_all.get)}'s",
     display=False)

# %% [markdown]
# These are the real release's counts: the development set has IDs 00, 02, 04 and 06
# ({glue:text}`full_report_train` training and {glue:text}`full_report_test` test clips for the
# report's three IDs), the evaluation set IDs 01, 03 and 05 with {glue:text}`full_eval_train`
# training clips (the "additional training" record) and {glue:text}`full_eval_test` test clips
# (Zenodo record 3678171 and its companions, {cite}`dcase2020devdata`). The evaluation set's
# test clips came without labels (the list of their labels, `eval_data_list.csv`, came later).
# The stand-in's split of each ID's 278 clips into 100 normal and 178 anomalous is inferred,
# not read from that list: it is the only split whose counts can give the slider AUCs of the
# example result printed in the official evaluator's README (ID 01's is an exact fraction
# whose denominator is 100 x 178).
#
# Three things matter for what follows:
#
# - the training data holds **normal clips only**: a detector learns what normal is and
#   nothing about the faults;
# - ID 04 has less than half the training clips of IDs 00 and 02. One detector is trained on
#   all IDs of the machine type together, as in the DCASE baseline, so ID 04 weighs less in
#   its training loss;
# - the test sets are **imbalanced** and differ between IDs. A detector that calls every clip
#   anomalous, having learned nothing, is right about {glue:text}`flag_all` at the release's
#   counts: its accuracy
#   says more about the test set than about the detector. Its AUC is 0.5 on every ID. AUC
#   and pAUC do not depend on the class balance, which is one reason the task uses them
#   instead of accuracy.
#
# ## What does a slider sound like?
#
# One normal and one anomalous test clip of the same machine ID, the first of each in file
# order (no hand-picking):

# %%
machine_id = data.unique_ids(dev_clips)[0]
test_clips = [c for c in dev_clips
              if c.split == "test" and c.machine_id == machine_id]
normal = next(c for c in test_clips if c.label_name == "normal")
anomaly = next(c for c in test_clips if c.label_name == "anomaly")
sr = cfg.feature.sample_rate
y_normal = data.load_wav(normal.path, sr)
y_anomaly = data.load_wav(anomaly.path, sr)
level = {}  # RMS level in dB relative to full scale
for kind, clip, y in (("normal", normal, y_normal),
                      ("anomalous", anomaly, y_anomaly)):
    level[kind] = 10 * np.log10(np.mean(np.square(y, dtype=float)))
    print(f"{kind + ':':<10} {clip.path.name}, {len(y) / sr:.1f} s, "
          f"level {level[kind]:.1f} dBFS")

# %% tags=["hide-input", "remove-output"]
glue("machine_id", machine_id, display=False)
# from the levels as printed, so that the text and the output agree
rise = round(level["anomalous"], 1) - round(level["normal"], 1)
glue("level_rise", f"{rise:+.1f}", display=False)
real_rises = [f"ID {mid} {db:+.1f}"
              for mid, db in synth.REAL_FAULT_RISE_DB.items()]
glue("real_rises", ", ".join(real_rises), display=False)
glue("fig_waveforms", plots.waveforms(
    {f"normal: {normal.path.name}": y_normal,
     f"anomalous: {anomaly.path.name}": y_anomaly}, sr))

# %% [markdown]
# ```{glue:figure} fig_waveforms
# :name: fig-waveforms
# :alt: Waveforms of a normal (top) and an anomalous (bottom) slider test clip over ten seconds, on one amplitude scale.
#
# Waveforms of a normal (top) and an anomalous (bottom) test clip of machine ID
# {glue:text}`machine_id`, {glue:text}`data`, on the same amplitude scale.
# ```
#
# A waveform shows how loud a clip is over time, not what it sounds like. The anomalous clip's
# level differs from the normal one's by {glue:text}`level_rise` dB (their RMS levels, printed
# above). A fault can add sound, but it need not: the one abnormal MIMII recording of each
# slider ID kept beside the project (not shipped with the book) differs in level from its ID's
# one normal recording by {glue:text}`real_rises` dB (measured once on the real 0 dB recordings; the tests measure
# it again wherever they are present), and a fault that changes a clip's level by a decibel or less
# does not stand out at this scale. Listening helps more. The two players below share one gain
# (the louder clip's peak at 90% of full scale), so a difference in level can be heard; turn the
# volume down first.
#
# The normal clip:

# %%
gain = 0.9 / max(np.abs(y_normal).max(), np.abs(y_anomaly).max())
display(Audio(gain * y_normal, rate=sr, normalize=False))

# %% [markdown]
# The anomalous clip:

# %%
display(Audio(gain * y_anomaly, rate=sr, normalize=False))

# %% [markdown]
# The difference is in the spectrum over time: which frequencies sound, and when. The next
# chapter turns each clip into the log-mel features that make it visible, and that the
# networks read.

# %% [markdown]
# ## Exercises
#
# 1. Count the test clips of ID 06 and compare its share of anomalies with the report's IDs. Which ID has the most imbalanced test set?
#
# ````{admonition} Solution
# :class: dropdown
# `data.counts(dev_clips)` holds `(id, 'test', 'anomaly')` and `(id, 'test', 'normal')`:
#
# ```python
# counts = data.counts(dev_clips)
# for mid in data.unique_ids(dev_clips):
#     a, n = counts[mid, "test", "anomaly"], counts[mid, "test", "normal"]
#     print(f"ID {mid}: {a / (a + n):.0%} of {a + n} test clips anomalous")
# ```
#
# At the release's counts (the full profile above), ID {glue:text}`most_imbalanced` has the
# most imbalanced test set and ID {glue:text}`least_imbalanced` the least; the quick
# profile's smaller sets need not keep that order.
# ````
#
# 2. Load a clip with `asd.data.load_wav` at 8 kHz (`sample_rate=8000`). What does `asd` do, and what would it cost a detector?
#
# ```{admonition} Solution
# :class: dropdown
# It resamples with a warning; everything above 4 kHz is lost, so a fault heard only in those bands goes unheard.
# ```
