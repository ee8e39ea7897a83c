"""Find, parse and load clips laid out as in DCASE 2020 Task 2.

Layout: ``<root>/<machine>/{train,test}/<label>_id_<NN>_<NNNNNNNN>.wav`` with ``label`` one
of ``normal`` or ``anomaly``, e.g. ``dev_data/slider/test/anomaly_id_02_00000042.wav``.
The evaluation set's test clips were released unlabelled (``eval_data/slider/test/id_01_00000000.wav``);
their labels came later in the ground-truth list ``eval_data_list.csv`` (:func:`read_ground_truth`).
Without that list such clips can still be scored, only not evaluated (label :data:`UNLABELLED`).
"""
from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import groupby, islice
from pathlib import Path

import numpy as np
import soundfile as sf

from asd.utils import and_more

SPLITS = ("train", "test")
LABELS = ("normal", "anomaly")
NAME_RE = re.compile(r"^(normal|anomaly)_id_([0-9]{2})_([0-9]+)\.(?i:wav)$")  # .WAV too, as recorders write it
UNLABELLED_RE = re.compile(r"^id_([0-9]{2})_([0-9]+)\.(?i:wav)$")
GROUND_TRUTH = "eval_data_list.csv"  # the 2020 evaluator's name for the eval set's labels
RELEASE_SETS = ("dev_data", "eval_data")  # the release's development and evaluation sets, side by side
UNLABELLED = -1  # the label of a clip whose label is not known
MAX_FLOAT_PEAK = 16.0  # beyond 24 dB over full scale a float WAV's samples are not audio scaled as such
ZEROS_SECONDS = 0.25  # a run of exact zeros this long is digital silence: a recorder's noise floor never is


class DataError(ValueError):
    """A problem with the input data; the message names the file or folder and the problem."""


@dataclass(frozen=True)
class Clip:
    """One audio clip and what its file name says about it."""

    path: Path
    split: str
    label: int  # 0 normal, 1 anomaly, UNLABELLED not known
    machine_id: str
    index: int

    @property
    def label_name(self) -> str:
        return "unlabelled" if self.label == UNLABELLED else LABELS[self.label]


def parse_name(path: Path) -> tuple[int, str, int]:
    """``(label, machine_id, index)`` from a DCASE file name; :class:`DataError` if it does not parse."""
    match = NAME_RE.match(Path(path).name)
    if match is None:
        hint = (" (an unlabelled clip: its label comes from a ground-truth list, or it is only scored)"
                if Path(path).name.startswith("id_") else "")
        raise DataError(f"{path}: name does not match '<normal|anomaly>_id_NN_NNNNNNNN.wav'{hint}")
    label, machine_id, index = match.groups()
    return LABELS.index(label), machine_id, int(index)


def release_name(name: str) -> tuple[str, int] | None:
    """The machine ID and number in a release clip's file name, labelled or not; None for another name."""
    match = UNLABELLED_RE.match(name) or NAME_RE.match(name)
    return (match.groups()[-2], int(match.groups()[-1])) if match else None


def name_order(path: Path | str) -> tuple:
    """The key that sorts file names as people read them, numbers by value: ``rec9.wav`` before
    ``rec10.wav`` (a recorder's count). Names whose numbers have equal widths (the release's,
    time stamps) keep the plain order."""
    text = str(path)
    parts = re.split(r"(\d+)", text)  # text, number, text, ...: like parts compared with like
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), text


def time_key(name: str) -> tuple:
    """Where the clip named ``name`` falls in its machine's recording order: the release's names by
    number, the label aside (``asd arrange`` numbers an ID's test clips on across labels), others
    in :func:`name_order` (a recorder's own names)."""
    named = release_name(name)
    return (0, named[1], name_order(name)) if named else (1, 0, name_order(name))


def time_order(clips: list[Clip]) -> list[int]:
    """The positions of ``clips`` in recording order, ID by ID (:func:`time_key`): the order in which
    flagged clips count as in a row. Where an ID's normal and anomalous clips share numbers (the
    DCASE release numbers each label apart), they have no common order and keep the one given."""
    order, apart = [], numbered_apart(clips)
    for mid in sorted({c.machine_id for c in clips}):
        mine = [i for i, c in enumerate(clips) if c.machine_id == mid]
        order += mine if mid in apart else sorted(mine, key=lambda i: time_key(clips[i].path.name))
    return order


def numbered_apart(clips: list[Clip]) -> list[str]:
    """The IDs of ``clips`` whose clips share numbers (``normal_id_00_00000007.wav`` and
    ``anomaly_id_00_00000007.wav``, as the DCASE release numbers each label apart): they have no
    common time order."""
    named = [(c.machine_id, key[1]) for c in clips if (key := time_key(c.path.name))[0] == 0]
    return sorted({mid for (mid, number), n in Counter(named).items() if n > 1})


def in_order(clips: list[Clip]) -> list[Clip]:
    """``clips`` sorted by ID, label and index, the order every listing of clips gives; clips named
    without their label (``id_01_00000000.wav``) by ID and index alone, so that nothing written in
    their order (score files, say) gives away labels read from a ground-truth list."""
    named = lambda c: UNLABELLED if UNLABELLED_RE.match(c.path.name) else c.label
    return sorted(clips, key=lambda c: (c.machine_id, named(c), c.index))


def list_clips(root: Path, machine: str, split: str, ids: list[str] | None = None,
               labels: dict[str, int] | None = None, unlabelled: bool = False) -> list[Clip]:
    """Clips of ``root/machine/split`` in :func:`in_order`'s order, optionally only ``ids``.

    Unlabelled clips (``id_01_00000000.wav``) take their label from ``labels`` (file name -> 0/1,
    see :func:`read_ground_truth`); a clip of ``ids`` missing from ``labels``, or an entry of
    ``labels`` of ``ids`` with no clip, is a :class:`DataError`. Without ``labels``, they are a
    :class:`DataError` unless ``unlabelled`` allows them (label :data:`UNLABELLED`).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    folder = Path(root) / machine / split
    if not folder.is_dir():
        hint = _layout_hint(Path(root), machine, split)
        raise DataError(f"{folder}: folder not found (expected <root>/<machine>/{split}/*.wav){hint}")
    # a clip of another ID is left out; a name that is no clip's is kept, to be an error
    chosen = lambda name: ids is None or (named := release_name(name)) is None or named[0] in ids  # noqa: E731
    clips = [_clip(path, split, labels, unlabelled) for path in folder_wavs(folder) if chosen(path.name)]
    if labels is not None:
        orphans = sorted({name for name in labels if chosen(name)} - {c.path.name for c in clips})
        if orphans:
            raise DataError(f"{folder}: {len(orphans)} ground-truth entries have no clip, e.g. {orphans[0]}")
    if not clips:
        wanted = f" for IDs {', '.join(ids)}" if ids else ""
        raise DataError(f"{folder}: no .wav clips{wanted}")
    return in_order(clips)


def folder_wavs(folder: Path) -> list[Path]:
    """The ``*.wav`` files of ``folder`` (``*.WAV`` too) in :func:`name_order`, hidden ones left out
    (``._clip.wav``: the metadata macOS writes beside a file copied to a USB or network drive); a
    link to a missing file is a :class:`DataError`."""
    found = sorted((p for p in folder.iterdir() if p.suffix.lower() == ".wav" and not p.name.startswith(".")),
                   key=name_order)
    broken = [p for p in found if not p.exists()]
    if broken:
        raise DataError(f"{and_more(broken)}: link to a missing file ({broken[0].readlink()}): were the "
                        "recordings moved? give their new folder to asd arrange (same --out, --machine, "
                        "--id, --split): it points the links there")
    return [p for p in found if p.is_file()]


def _layout_hint(root: Path, machine: str, split: str) -> str:
    """Where the data may be instead: the folder above, when ``root`` is a machine's folder or one
    of its splits; the data sets holding ``machine``'s ``split``, when ``root`` is a release root;
    the machine types found, when ``root`` holds other machines."""
    if root.name in SPLITS:
        return f"; a split folder: try --data {root.parent.parent} --machine {root.parent.name}"
    if (root / "train").is_dir():
        return f"; a machine's folder: try --data {root.parent} --machine {root.name}"
    sets = [root / name for name in RELEASE_SETS if (root / name / machine / split).is_dir()]
    if sets:  # a release root whose dev_data/ lacks the split (eval_data/ alone, say)
        return f"; a release root: try --data {' or '.join(map(str, sets))}"
    types = sorted(d.name for d in root.iterdir() if (d / "train").is_dir()) if root.is_dir() else []
    return f"; machine types in {root}: {', '.join(types)} (--machine)" if types else ""


def wav_files(paths: list[Path]) -> list[Path]:
    """The WAV files of ``paths`` (files, or folders: their own ``*.wav``, ``*.WAV`` as recorders
    name them), in :func:`name_order`, each once."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = folder_wavs(path)
            if not found:
                raise DataError(f"{path}: no .wav clips")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise DataError(f"{path}: no such file or folder")
    return sorted(dict.fromkeys(files), key=name_order)


def clips_at(paths: list[Path], machine_id: str | None = None, id_option: str | None = "--id NN") -> list[Clip]:
    """The test clips of ``paths``, WAV files or folders of them (a folder's own ``*.wav``), sorted as
    :func:`list_clips`. Names as in the release: unlabelled (``id_00_00000000.wav``, label
    :data:`UNLABELLED`) or labelled (``normal_id_00_00000000.wav``); the ID is the machine's.
    With ``machine_id``, a clip of any other name is that machine's, unlabelled, numbered in
    :func:`name_order` (a recorder's own names), and a release name of another ID is an error; a
    name error points to ``id_option``, the command's way to give ``machine_id``, if it has one."""
    files = wav_files(paths)
    twin = next((name for name, n in Counter(p.name for p in files).items() if n > 1), None)
    if twin is not None:  # score and decision files name each clip by its file name
        where = ", ".join(str(p.parent) for p in files if p.name == twin)
        raise DataError(f"two clips named {twin} (in {where}): score one folder at a time")
    clips = []
    for index, path in enumerate(files):
        if release_name(path.name):
            clips.append(_clip(path, "test", None, True))
            if machine_id is not None and clips[-1].machine_id != machine_id:
                raise DataError(f"{path}: named for ID {clips[-1].machine_id}, not {machine_id}")
        elif machine_id is not None:
            clips.append(Clip(path, "test", UNLABELLED, machine_id, index))
        else:
            option = f"; or give the ID of every clip: {id_option}" if id_option else ""
            raise DataError(f"{path}: name does not match 'id_NN_NNNNNNNN.wav' or "
                            f"'<normal|anomaly>_id_NN_NNNNNNNN.wav' (NN: the machine's ID{option})")
    return in_order(clips)


def _clip(path: Path, split: str, labels: dict[str, int] | None, unlabelled: bool) -> Clip:
    match = UNLABELLED_RE.match(path.name)
    if match and split == "train":  # training clips are normal sounds: no list labels them
        raise DataError(f"{path}: a training clip is named normal_id_NN_NNNNNNNN.wav (training clips are "
                        "normal sounds; an unlabelled clip belongs in test/)")
    if match is None or (labels is None and not unlabelled):
        label, machine_id, index = parse_name(path)
        return Clip(path, split, label, machine_id, index)
    if labels is not None and path.name not in labels:
        raise DataError(f"{path}: unlabelled clip missing from the ground-truth list")
    machine_id, index = match.groups()
    return Clip(path, split, UNLABELLED if labels is None else labels[path.name], machine_id, int(index))


def is_release(folder: Path) -> bool:
    """Whether ``folder`` is laid out as the DCASE 2020 release: a release root, one of its sets
    (``dev_data``, ``eval_data``, holding ``<machine>/train`` or ``<machine>/test``), or a machine
    or split folder in one. A plant's recordings kept under a folder of that name are not."""
    folder = Path(folder).absolute()
    holds_machines = lambda s: any((m / split).is_dir() for m in s.iterdir() for split in SPLITS)  # noqa: E731
    return any(s.name in RELEASE_SETS and s.is_dir() and holds_machines(s)
               for s in (folder / RELEASE_SETS[0], folder, folder.parent, folder.parent.parent))


def dataset_root(root: Path, machine: str) -> Path:
    """``root``, or ``root/dev_data`` when ``root`` is a release root (``dev_data/``, ``eval_data/``)."""
    root = Path(root)
    if not (root / machine).is_dir() and (root / "dev_data" / machine).is_dir():
        return root / "dev_data"
    return root


def unlabelled_files(root: Path, machine: str, split: str = "test") -> list[Path]:
    """The unlabelled clips (``id_01_00000000.wav``, as the eval test set was released) in ``root/machine/split``."""
    folder = Path(root) / machine / split
    return [p for p in folder_wavs(folder) if UNLABELLED_RE.match(p.name)] if folder.is_dir() else []


def read_ground_truth(path: Path, machine: str) -> dict[str, int]:
    """``{file name: label}`` of ``machine`` from an ``eval_data_list.csv``.

    The format of the DCASE 2020 evaluator: a line holding only a machine type starts its
    section, then one line per clip ``file,labelled file,label`` (label 0 normal, 1 anomaly),
    e.g. ``id_01_00000000.wav,normal_id_01_00000000.wav,0``. A malformed line (a clip's name
    alone, or words that cannot name a machine type, included), a label other than 0/1 or a label
    that contradicts the labelled name is a :class:`DataError` naming file and line.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()  # a spreadsheet's "CSV UTF-8" starts with a BOM
    except OSError as err:
        raise DataError(f"{path}: cannot read the ground-truth list ({err.strerror})") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; save the ground-truth list as CSV (UTF-8)") from None
    labels: dict[str, int] = {}
    section = None
    for number, line in enumerate(lines, 1):
        fields = [f.strip() for f in line.split(",")]
        while len(fields) > 1 and not fields[-1]:  # a spreadsheet pads short rows: "slider,,"
            fields.pop()
        if fields == [""]:
            continue
        where = f"{path}:{number}"
        if len(fields) == 1 and ".wav" not in fields[0].lower():  # a clip's line is never a section's
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", fields[0]):  # a stray line would hide what follows
                raise DataError(f"{where}: expected a machine type ('slider') or a clip line "
                                f"'id_NN_NNNNNNNN.wav,<label>_id_NN_NNNNNNNN.wav,0|1', got {line!r}")
            section = fields[0]
            continue
        if section is None:
            raise DataError(f"{where}: a clip line before any machine-type line")
        if section != machine:
            continue
        if len(fields) != 3 or fields[2] not in ("0", "1") or not UNLABELLED_RE.match(fields[0]):
            raise DataError(f"{where}: expected 'id_NN_NNNNNNNN.wav,<label>_id_NN_NNNNNNNN.wav,0|1', got {line!r}")
        named = NAME_RE.match(fields[1])
        if named is None or LABELS.index(named.group(1)) != int(fields[2]):
            raise DataError(f"{where}: labelled name {fields[1]!r} does not agree with label {fields[2]}")
        if fields[0] in labels:
            raise DataError(f"{where}: {fields[0]} listed twice")
        labels[fields[0]] = int(fields[2])
    if not labels:
        raise DataError(f"{path}: no clips of machine type {machine!r}")
    return labels


def find_ground_truth(root: Path) -> Path | None:
    """``eval_data_list.csv`` in ``root`` or beside it (in its parent), if there."""
    for folder in (Path(root), Path(root).parent):
        if (folder / GROUND_TRUTH).is_file():
            return folder / GROUND_TRUTH
    return None


def unique_ids(clips: list[Clip]) -> list[str]:
    """Sorted machine IDs present in ``clips``."""
    return sorted({c.machine_id for c in clips})


def first_per_id(clips: list[Clip], n: int) -> list[Clip]:
    """The first ``n`` clips of each machine ID by their number, in the order given (the first
    recorded, where clips are numbered as recorded, as :func:`asd.recordings.arrange` numbers a recorder's files)."""
    if n < 1:
        raise ValueError(f"at least 1 clip per ID, not {n}")
    ranked = sorted(clips, key=lambda c: (c.machine_id, c.index, c.path.name))
    kept = {id(c) for _, same_id in groupby(ranked, key=lambda c: c.machine_id) for c in islice(same_id, n)}
    return [c for c in clips if id(c) in kept]


def select_ids(found: list[str], requested: list[str] | None, report: tuple[str, ...] | None) -> list[str]:
    """The machine IDs to use out of ``found``.

    ``requested``: a list of IDs, or ``["all"]`` for every ID found. ``None``: the report's IDs
    among those found, or every ID found when the machine has no report IDs or none of them is
    here (the eval set's IDs 01/03/05, say). A requested ID that is not found is a :class:`DataError`.
    """
    if requested is not None and "all" in requested and len(requested) > 1:
        raise DataError(f"'all' stands alone (every ID found), not beside others: got {' '.join(requested)}")
    if requested is not None and list(requested) != ["all"]:
        missing = sorted(set(requested) - set(found))
        if missing:
            raise DataError(f"ID(s) {', '.join(missing)} not found; the data has {', '.join(found)}")
        return sorted(set(requested))
    if requested is None and report:
        chosen = [mid for mid in found if mid in report]
        if chosen:
            return chosen
    return list(found)


def unevaluable(clips: list[Clip]) -> list[str]:
    """Why AUC cannot be computed on test ``clips``, one reason per machine ID (empty if it can):
    an ID needs normal and anomalous clips, all labelled; and there must be clips."""
    reasons = [] if clips else ["no test clips"]
    for mid in unique_ids(clips):
        n = Counter(c.label for c in clips if c.machine_id == mid)
        if n[UNLABELLED]:
            reasons.append(f"ID {mid}: {n[UNLABELLED]} unlabelled clips")
        elif not (n[0] and n[1]):
            reasons.append(f"ID {mid}: {n[0]} normal and {n[1]} anomalous clips (AUC needs both)")
    return reasons


def counts(clips: list[Clip]) -> dict[tuple[str, str, str], int]:
    """Number of clips per ``(machine_id, split, label)``."""
    return dict(sorted(Counter((c.machine_id, c.split, c.label_name) for c in clips).items()))


@contextmanager
def reading(path: Path) -> Iterator[None]:
    """Any error of soundfile's (it raises several types for broken files) as one :class:`DataError`."""
    try:
        yield
    except Exception as err:
        raise DataError(f"{path}: cannot read audio ({err})") from None


def _headers(clips: list[Clip]) -> list:
    """Each clip's audio header (read in microseconds a clip)."""
    found = []
    for clip in clips:
        with reading(clip.path):
            found.append(sf.info(clip.path))
    return found


def durations(clips: list[Clip]) -> np.ndarray:
    """Each clip's length in seconds, from its header."""
    return np.array([header.duration for header in _headers(clips)], dtype=float)


def sample_rates(clips: list[Clip]) -> np.ndarray:
    """Each clip's sample rate as recorded, from its header (before :func:`load_wav` resamples it)."""
    return np.array([header.samplerate for header in _headers(clips)], dtype=np.int64)


def usual_rate(clips: list[Clip]) -> int:
    """The sample rate most of ``clips`` were recorded at."""
    return int(Counter(sample_rates(clips).tolist()).most_common(1)[0][0])


def unlike_rates(clips: list[Clip], usual: int, what: str) -> str | None:
    """A warning, or None: which of ``clips`` (``what`` they are) were recorded at another sample
    rate than ``usual``, the training clips'. Resampled to the features' rate they still differ in
    their top bands (a lower rate has none, a higher one is filtered), so they score differently
    for that alone."""
    rates = sample_rates(clips)
    odd = np.flatnonzero(rates != usual)
    if not len(odd):
        return None
    return (f"{len(odd)} of {len(clips)} {what} were not recorded at {usual} Hz, as the training clips were, e.g. "
            f"{clips[odd[0]].path.name} ({rates[odd[0]]} Hz): resampled, they still differ in their top mel bands "
            "and score differently for that alone; record training and new clips at one rate")


def unfinished(path: Path, usual: float | None) -> str | None:
    """Why the clip at ``path`` may still be being recorded, or None: its audio cannot be read yet,
    it holds none, or it falls short of ``usual`` seconds (the training clips' length, where known)
    by more than a twentieth: a recorder writes its newest file as it goes."""
    try:
        seconds = sf.info(path).duration
    except Exception as err:  # soundfile raises several types for a file with no complete header yet
        return f"cannot be read yet ({err})"
    if seconds == 0:
        return "holds no audio yet"
    if usual and seconds < 0.95 * usual:
        return f"is {seconds:.3g} s long, the training clips {usual:.3g} s"
    return None


def unlike_lengths(clips: list[Clip], usual: float, what: str) -> str | None:
    """A warning, or None: which of ``clips`` (``what`` they are) last under half or over twice
    ``usual`` seconds, the training clips' length. A clip's score is its mean over all of it: a
    short fault in a long clip is averaged away, and a short clip scores mostly its padded edges."""
    lengths = durations(clips)
    odd = np.flatnonzero((lengths < usual / 2) | (lengths > usual * 2))
    if not len(odd):
        return None
    with np.errstate(divide="ignore"):  # an empty clip: the farthest from the usual length of all
        first = odd[np.argmax(np.abs(np.log(lengths[odd] / usual)))]
    return (f"{len(odd)} of {len(clips)} {what} are not about {usual:.3g} s long, as the training clips are "
            f"(median), e.g. {clips[first].path.name} ({lengths[first]:.3g} s): a clip's score is its mean over "
            f"all of it; cut recordings into clips of {usual:.3g} s (asd cut --seconds {max(1, round(usual))})")


def readable(path: Path) -> None:
    """A :class:`DataError` unless ``path`` has an audio header soundfile can read (a quick check)."""
    with reading(path):
        sf.info(path)


def _longest_zeros(y: np.ndarray) -> int:
    """The longest run of samples of ``y`` that are exactly zero."""
    edges = np.diff(np.concatenate([[0], (y == 0).view(np.int8), [0]]))
    return int((np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).max(initial=0))


def load_wav(path: Path, sample_rate: int = 16000) -> np.ndarray:
    """A clip as float32 mono at ``sample_rate``.

    Multi-channel files (the 8-channel MIMII originals) keep their first channel; another
    sample rate is resampled with a warning, and a stretch of digital silence (exact zeros) is
    warned about. Unreadable, empty or silent (constant) files, NaN or infinite samples and
    samples far beyond full scale raise :class:`DataError`.
    """
    with reading(path):
        y, sr = sf.read(path, dtype="float32", always_2d=True)
    if y.shape[0] == 0:
        raise DataError(f"{path}: empty audio file")
    channels, y = y.shape[1], y[:, 0]
    which = f"channel 1 of {channels} (the one used): " if channels > 1 else ""
    if channels > 1:  # no path in the message: shown once, not once per clip
        warnings.warn(f"clips of {channels} channels: the first is used", stacklevel=2)
    if not np.isfinite(y).all():
        raise DataError(f"{path}: {which}{int(np.sum(~np.isfinite(y)))} samples are NaN or infinite")
    if np.ptp(y) == 0:
        raise DataError(f"{path}: {which}silent (every sample {y[0]:g}): a disconnected microphone?")
    if (peak := float(np.abs(y).max())) > MAX_FLOAT_PEAK:
        raise DataError(f"{path}: {which}samples up to {peak:g}, where audio lies within -1..1: a float WAV "
                        "written at integer scale, or a corrupted file?")
    if (gap := _longest_zeros(y)) >= sr * ZEROS_SECONDS:
        warnings.warn(f"{path}: {which}{gap / sr:.2f} s of digital silence (exact zeros: a dropout, or padding); "
                      "its frames lie far below any recorded sound and sway what the detectors learn or score",
                      stacklevel=2)
    if sr != sample_rate:
        import librosa

        y = librosa.resample(y, orig_sr=sr, target_sr=sample_rate).astype(np.float32)
        # no path in the message: Python shows a repeated warning once, not once per clip (warned after
        # resampling: its first call imports a resampler, which resets the record of warnings shown)
        warnings.warn(f"clips at {sr} Hz are resampled to {sample_rate} Hz", stacklevel=2)
    return np.ascontiguousarray(y)
