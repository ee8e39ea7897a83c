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
# # From sound to vectors: log-mel features
#
# ```{admonition} In this chapter you will learn
# - how a waveform becomes log-mel frames (STFT, mel filterbank, logarithm), step by step
# - why the statistics for standardisation come from the training clips only
# - how five frames are stacked into the 640-d vectors the networks read
# ```
#
# The networks do not read waveforms. Like the DCASE 2020 baseline {cite}`koizumi2020description`
# and the report {cite}`report2021`, every clip becomes a sequence of 640-dimensional vectors
# in five steps:
#
# 1. a short-time Fourier transform ({term}`STFT`): Hann window of 1024 samples (64 ms), hop of 512
#    samples (32 ms), power spectrum; a {term}`frame` is one such 64 ms window, and frames start
#    32 ms apart;
# 2. a {term}`mel filterbank` that pools the 513 frequency bins into 128 bands, narrow at low
#    frequencies and wide at high ones;
# 3. a logarithm, `10 * log10(mel + eps)`, exactly as the DCASE 2020 baseline computes it;
# 4. {term}`standardisation` of every band with the mean and standard deviation of the *training*
#    frames (the report's step: the DCASE 2020 baseline feeds its networks unstandardised
#    log-mels);
# 5. stacking five consecutive frames into one vector of 5 x 128 = 640 numbers.
#
# This chapter does each step by hand on one clip, checks it against the package
# (`asd.features`), and compares a normal and an anomalous clip.

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
from pprint import pprint

import librosa
import numpy as np
from myst_nb import glue

import asd
import asd.book
from asd import data, experiment, features, plots, synth

cfg, src = asd.book.setup()

# %% [markdown]
# ```{admonition} Which data?
# :class: important
# The clips and statistics below come from the **{glue:text}`data`**.
# ```
#
# The feature settings are part of the configuration (`cfg.feature`), with the report's values
# as defaults:

# %%
fc = cfg.feature
pprint(fc)

# %% [markdown]
# We follow the same two test clips as in the previous chapter: the first normal and the first
# anomalous test clip of the first machine ID.

# %%
test_clips = data.list_clips(src.dev, cfg.machine, "test")
machine_id = data.unique_ids(test_clips)[0]
of_id = [c for c in test_clips if c.machine_id == machine_id]
normal = next(c for c in of_id if c.label_name == "normal")
anomaly = next(c for c in of_id if c.label_name == "anomaly")
y = data.load_wav(normal.path, fc.sample_rate)
print(normal.path.name, y.shape)

# %% [markdown]
# ## Step 1: the STFT
#
# The STFT cuts the signal into overlapping frames of `n_fft` samples, multiplies each by a
# Hann window and takes its Fourier transform. Its squared magnitude is the power in each of
# `n_fft / 2 + 1` frequency bins, from 0 Hz to the Nyquist frequency, 8 kHz.

# %%
power = np.abs(librosa.stft(y, n_fft=fc.n_fft, hop_length=fc.hop_length,
                            window="hann", center=True,
                            pad_mode=fc.pad_mode)) ** fc.power
print(f"power spectrogram: {power.shape[0]} frequency bins "
      f"x {power.shape[1]} frames")

# %% [markdown]
# **The clip's edges.** The frames are centred on multiples of the hop, so the first frame is
# centred on the first sample and half of it lies before the clip; the STFT pads the signal
# there. The report ran the DCASE 2020 baseline, whose librosa (0.6/0.7) padded by
# **reflection**, mirroring the signal at its ends; librosa 0.9 changed its default to zeros
# (`pad_mode="constant"`, librosa pull request 1382), which leaves part of an edge frame's
# window empty. `FeatureConfig.pad_mode` is `reflect`, what the report's code computed; only
# the first and last frame of each clip depend on it:

# %%
zeros = np.abs(librosa.stft(y, n_fft=fc.n_fft, hop_length=fc.hop_length,
                            window="hann", center=True,
                            pad_mode="constant")) ** fc.power
ratio = (power + features.EPS) / (zeros + features.EPS)
gap_db = np.abs(10 * np.log10(ratio)).mean(axis=0)  # per frame
print("mean |reflect - zeros| per frame (dB):\n"
      f"first {gap_db[0]:.2f}, second {gap_db[1]:.2f}, "
      f"middle {gap_db[len(gap_db) // 2]:.2f}, last {gap_db[-1]:.2f}")
total_db = 10 * np.log10(power[:, 0].sum() / zeros[:, 0].sum())
louder = np.mean(zeros[:, 0] > power[:, 0])
print(f"first frame, all bins summed: reflect {total_db:+.2f} dB over zeros;\n"
      f"zeros louder in {louder:.0%} of its bins")

# %% [markdown]
# The first frame's window is half empty with zeros: summed over its bins it holds
# {glue:text}`gap_total` dB less energy, about the 3 dB of a halved energy. Bin by bin the two
# differ by {glue:text}`gap_first` dB on average, and not all one way (the zero-padded frame is
# the louder in {glue:text}`gap_louder` of the bins): a noisy spectrum's bins scatter, and a
# mirrored half and an empty one scatter differently. The last frame differs less
# ({glue:text}`gap_last` dB): the clip does not end on a hop, so its own samples fill more of
# that window.

# %% tags=["hide-input", "remove-output"]
hop_s = fc.hop_length / fc.sample_rate
glue("gap_first", f"{gap_db[0]:.1f}", display=False)
glue("gap_total", f"{total_db:.1f}", display=False)
glue("gap_louder", f"{louder:.0%}", display=False)
glue("gap_last", f"{gap_db[-1]:.1f}", display=False)
glue("n_bins", power.shape[0], display=False)
glue("n_clip_frames", power.shape[1], display=False)
power_db = 10 * np.log10(power.T + features.EPS)
glue("fig_stft", plots.spectrograms(
    {f"power spectrum (dB): {normal.path.name}": power_db}, hop_s,
    ylabel="frequency (Hz)", y_extent=(0, fc.sample_rate / 2)))

# %% [markdown]
# ```{glue:figure} fig_stft
# :name: fig-stft
# :alt: STFT power of a normal clip: frequency up to 8 kHz against time, power in decibels as colour.
#
# The STFT power of a normal clip ({glue:text}`n_bins` bins x {glue:text}`n_clip_frames`
# frames, shown in dB), {glue:text}`data`.
# ```
#
# ## Step 2: the mel filterbank
#
# Hearing resolves low frequencies finely and high frequencies coarsely; the mel scale mimics
# that. `asd.features.mel_basis` is librosa's filterbank (Slaney's mel scale, area-normalised
# triangles): 128 triangular filters, each a weighted sum of neighbouring STFT bins.

# %%
basis = features.mel_basis(fc)
mel = basis @ power
print(f"mel filterbank: {basis.shape} -> mel power: {mel.shape[0]} bands "
      f"x {mel.shape[1]} frames")

# %% tags=["hide-input", "remove-output"]
glue("fig_mel_basis", plots.mel_filterbank(basis, fc.sample_rate))

# %% [markdown]
# ```{glue:figure} fig_mel_basis
# :name: fig-mel-basis
# :alt: The 128 triangular mel filters over frequency, narrow at low and wide at high frequencies.
#
# Left: the 128 mel filters over the STFT's frequency axis (one colour per filter; each
# filter's area is normalised, so the narrow low-frequency filters are tall). Right: each
# band's centre frequency: evenly spaced up to 1 kHz, geometrically spaced above (the mel scale
# is logarithmic there).
# ```
#
# ## Step 3: the logarithm
#
# Mel power spans many orders of magnitude: on a linear scale a few loud bands hide all the
# others. The DCASE 2020 baseline takes `20.0 / power * numpy.log10(mel + eps)`, where
# `power` is the exponent of the spectrogram (2 for power, 1 for magnitude); for a power
# spectrogram that is `10 * log10(mel + eps)`, with `eps` the float64 machine epsilon so
# that silent bands stay finite. Doing it by hand gives the same numbers as the package's
# feature extraction, `asd.features.extract`, on the path training uses (`fc.backend`: the
# batched `torch.stft` path, equal to librosa within float32 rounding):

# %%
logmel = 10 * np.log10(mel + features.EPS).T  # (frames, bands), as in asd
extracted = features.extract([normal], fc, progress=False).frames
assert np.abs(logmel - extracted).max() < 1e-2
print(f"log-mel: {logmel.shape[0]} frames x {logmel.shape[1]} bands, "
      f"from {logmel.min():.1f} to {logmel.max():.1f} dB;\n"
      f"matches asd.features.extract (backend {fc.backend!r}) "
      f"within {np.abs(logmel - extracted).max():.1e} dB")

# %% tags=["hide-input", "remove-output"]
glue("fig_log", plots.spectrograms(
    {"mel power (linear)": mel.T, "log-mel (dB)": logmel}, hop_s,
    clabel="", shared_scale=False, sample_rate=fc.sample_rate))

# %% [markdown]
# ```{glue:figure} fig_log
# :name: fig-log
# :alt: The mel power of one clip on a linear scale, where only the loudest bands show, and in decibels, where all bands do.
#
# The mel power of the normal clip on a linear scale (left) and in dB (right), each with its
# own colour scale, {glue:text}`data`.
# ```
#
# ## Normal and anomalous, side by side
#
# The report's Figs 3-4 compare the log-mel spectrograms of a normal and an anomalous clip.
# Here both are on one colour scale, so a colour means the same level in both.

# %%
y_anomaly = data.load_wav(anomaly.path, fc.sample_rate)
logmel_anomaly = features.logmel(y_anomaly, fc)

# %% tags=["hide-input", "remove-output"]
glue("machine_id", machine_id, display=False)
glue("fig_normal_anomaly", plots.spectrograms(
    {f"normal: {normal.path.name}": logmel,
     f"anomalous: {anomaly.path.name}": logmel_anomaly}, hop_s,
    sample_rate=fc.sample_rate))

# %% [markdown]
# ```{glue:figure} fig_normal_anomaly
# :name: fig-normal-anomaly
# :alt: Log-mel spectrograms of a normal and an anomalous clip of the same machine side by side.
#
# Log-mel spectrograms (dB) of a normal and an anomalous test clip of machine ID
# {glue:text}`machine_id`, {glue:text}`data`.
# ```
#
# A detector trained on normal clips only has to notice such differences without ever having
# seen one: energy where a normal clip has none, a missing or shifted pattern, an irregular
# rhythm.
#
# ## The stand-in's three faults
#
# The synthetic stand-in renders every clip from a seed, and a faulty clip keeps the
# surroundings of the normal clip with the same seed: its hall, and its strokes unless the
# belt is loose. Rendered from one seed, the normal clip and its three faulty twins differ by
# the fault alone; the seed also draws the fault's severity, from 0 (none) up to 1
# ({glue:text}`severity_caps`), which `asd.synth.fault_severity` reports. Each fault changes the machine's own process, as the real
# MIMII slider faults do: a damaged rail scrapes and rings at the damage, a loose belt loads
# the motor and makes the strokes irregular, a dry rail rubs louder and squeals, and every
# fault loads the drive, whose steady tones (the horizontal lines) move and change level.

# %%
severity = synth.fault_severity(machine_id, seed=0)  # same for every fault
twins = {"normal": None}  # each panel's name: the fault rendered (None: none)
twins.update({f"{fault} (severity {severity:.2f})": fault
              for fault in synth.ANOMALIES})
rendered = {name: features.logmel(synth.render_clip(machine_id, fault, seed=0),
                                  fc)
            for name, fault in twins.items()}

# %% tags=["hide-input", "remove-output"]
glue("synth_version", synth.VERSION, display=False)
caps = [f"{r.severity[1]:g} for ID {mid}" for mid, r in synth.RAILS.items()
        if r.severity[1] < 1]
glue("severity_caps", "; ".join(caps) or "for every ID", display=False)
glue("fig_faults", plots.spectrograms(rendered, hop_s, ncols=2,
                                     sample_rate=fc.sample_rate))

# %% [markdown]
# ```{glue:figure} fig_faults
# :name: fig-faults
# :alt: Log-mel spectrograms of a synthetic normal clip and its three faulty twins: rail damage, loose belt and no grease.
#
# Log-mel spectrograms (dB, one colour scale) of a normal clip of the synthetic stand-in
# (generator version {glue:text}`synth_version`, machine ID {glue:text}`machine_id`, seed 0) and
# of its three faulty twins, whatever data the rest of the book runs on. The severity is drawn
# uniformly per clip, so the test clips' faults range from barely audible to severe.
# ```
#
# How to read it: time runs to the right, pitch upwards, and brighter is louder. In the normal
# clip the carriage's strokes are the faint vertical bands of friction noise, and the drive's
# steady tones are the thin horizontal lines below about 1.5 kHz. Compare each faulty twin
# with it: the damaged rail adds a thin bright line across every band each time the carriage
# passes the damage; the loose belt makes the strokes uneven and bends the drive's lowest
# tones as it slips; the dry rail makes every stroke's friction louder and brighter, wide
# bands reaching the top of the spectrum. In all three the drive's tones move or change level.
# At a severity near 0 each of these changes fades away: {numref}`fig-fault-auc` in chapter 4
# shows what that does to the detectors.
#
# ## Step 4: standardisation with training statistics
#
# The bands differ in level by tens of dB. Standardising each band to zero mean and unit
# standard deviation puts them on one scale, so that a reconstruction error weighs every band
# alike. The statistics come from the **training frames only**: the test clips, anomalies
# included, must not influence anything the detector learns. `asd.experiment.prepare`
# extracts the log-mel frames of the clips of the machine IDs used (the report's, by default:
# `cfg.report_ids`), caches them in `ASD_HOME`, and fits `asd.features.Standardiser` on the
# training frames.

# %%
prep = experiment.prepare(cfg, src.dev, progress=False)
standardiser = prep.standardiser
mean, std = standardiser.mean, standardiser.std  # per band, in dB
z = (logmel - mean) / std
z_anomaly = (logmel_anomaly - mean) / std
print(f"statistics from {prep.train.frames.shape[0]:,} training frames "
      f"of {len(prep.train)} clips")
print(f"band means: {mean.min():.1f} to {mean.max():.1f} dB, "
      f"standard deviations: {std.min():.2f} to {std.max():.2f} dB")
train_z = prep.train.frames  # already standardised
print("standardised training frames: largest |band mean| "
      f"{np.abs(train_z.mean(axis=0)).max():.1e},\n"
      f"band standard deviations {train_z.std(axis=0).min():.3f} "
      f"to {train_z.std(axis=0).max():.3f}")

# %% tags=["hide-input", "remove-output"]
glue("n_train_frames", prep.train.frames.shape[0], display=False)
glue("n_train_clips", len(prep.train), display=False)
glue("train_ids", ", ".join(prep.unique_ids), display=False)
glue("fig_standardised", plots.spectrograms(
    {f"normal: {normal.path.name}": z,
     f"anomalous: {anomaly.path.name}": z_anomaly},
    hop_s, clabel="standard deviations", cmap="RdBu_r", centre=0.0,
    sample_rate=fc.sample_rate))

# %% [markdown]
# ```{glue:figure} fig_standardised
# :name: fig-standardised
# :alt: Standardised log-mel spectrograms of a normal and an anomalous clip, in a diverging colour scale around zero.
#
# The same two clips after standardisation with the mean and standard deviation of the
# {glue:text}`n_train_clips` training clips' {glue:text}`n_train_frames:,d` frames: 0 (white) is
# the typical training level of a band, red is louder and blue quieter, {glue:text}`data`. The
# statistics pool the training clips of IDs {glue:text}`train_ids`, so a machine louder than the
# others sits above 0 even when it runs normally: what matters is where the two clips differ.
# ```
#
# ## Step 5: stacking five frames
#
# One frame (64 ms of sound) says little about a machine's rhythm. The DCASE 2020 baseline
# concatenates five consecutive frames, frame by frame, into one vector: frames 1-5 make the
# first vector,
# frames 2-6 the second, and so on. A clip of $T$ frames gives $T - 4$ vectors of
# $5 \times 128 = 640$ numbers; the networks reconstruct each vector, and a clip's anomaly
# score is the mean error over its vectors.

# %%
vectors = features.stack(z, fc.n_frames)
print(f"{z.shape[0]} frames x {z.shape[1]} bands -> "
      f"{vectors.shape[0]} vectors x {vectors.shape[1]} numbers")
assert vectors.shape == (z.shape[0] - fc.n_frames + 1, fc.dim)
assert vectors.shape == (z.shape[0] - 4, 640)
# frame-major: the first frame's 128 bands, then the second frame's, ...
assert np.array_equal(vectors[0], z[: fc.n_frames].ravel())
n_train_vectors = len(prep.train.vector_starts(fc.n_frames)[0])
print("check passed: 640-d vectors, T - 4 of them for a clip of T frames;\n"
      f"the training set gives {n_train_vectors:,} vectors")

# %% tags=["hide-input", "remove-output"]
glue("n_vectors", vectors.shape[0], display=False)
glue("n_train_vectors", n_train_vectors, display=False)
stacked = {k: features.stack(z, k).shape for k in (3, 9)}  # exercise 1
glue("ex_stack", f"for this clip's {z.shape[0]} frames, " + " and ".join(
    f"{k} frames give {n:,} vectors of {d:,} numbers"
    for k, (n, d) in stacked.items()), display=False)
shown = vectors[:100]
fig_vectors = plots.spectrograms(
    {f"the first {len(shown)} vectors of {normal.path.name}": shown}, hop_s,
    ylabel="vector element", clabel="standard deviations",
    y_extent=(0, fc.dim), cmap="RdBu_r", centre=0.0)
for k in range(1, fc.n_frames):
    fig_vectors.axes[0].axhline(k * fc.n_mels, color="black", lw=0.8)
glue("fig_vectors", fig_vectors)

# %% [markdown]
# ```{glue:figure} fig_vectors
# :name: fig-vectors
# :alt: Stacked input vectors as columns: five 128-band frames on top of each other, each shifted by one hop.
#
# Stacked vectors, one column per vector: the five 128-band frames lie on top of each other
# (black lines), each a copy of its neighbour shifted by one hop, {glue:text}`data`.
# ```
#
# The clip gives {glue:text}`n_vectors` vectors, and the
# {glue:text}`n_train_clips` training clips give {glue:text}`n_train_vectors:,d` vectors in
# all. The networks of the next chapter hold out a tenth of each ID's training clips for
# validation (`validation_split`) and train on the rest; the standardisation above used every
# training clip, the held-out ones too.

# %% [markdown]
# ## Exercises
#
# 1. Change the number of stacked frames to 3 and to 9 (`dataclasses.replace(cfg.feature, n_frames=...)`). How long is a vector, and how many vectors does one clip give?
#
# ```{admonition} Solution
# :class: dropdown
# `n_frames * 128` numbers; a clip of T frames gives T - n_frames + 1 vectors
# (`FrameSet.vector_counts`): {glue:text}`ex_stack`.
# ```
#
# 2. Compute the log-mel of a clip with `pad_mode="constant"` and with `"reflect"`. Which frames differ, and by how much?
#
# ```{admonition} Solution
# :class: dropdown
# Compare `features.logmel(y, dataclasses.replace(fc, pad_mode="constant"))` with
# `features.logmel(y, fc)` frame by frame: only the first and the last frame differ. Zero
# padding leaves part of their window empty (half of the first frame's), so the first frame
# holds about {glue:text}`gap_total` dB less energy in all; band by band the difference
# scatters, not all one way (the zero-padded first frame is the louder in
# {glue:text}`gap_louder` of the STFT bins above), and the last frame differs less.
# ```
