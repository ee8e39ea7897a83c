"""Find, parse and load clips laid out as in DCASE 2020 Task 2.

Layout: ``<root>/<machine>/{train,test}/<label>_id_<NN>_<NNNNNNNN>.wav`` with ``label`` one
of ``normal`` or ``anomaly``, e.g. ``dev_data/slider/test/anomaly_id_02_00000042.wav``.
"""
from __future__ import annotations

import re
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

SPLITS = ("train", "test")
LABELS = ("normal", "anomaly")
NAME_RE = re.compile(r"^(normal|anomaly)_id_(\d{2})_(\d+)\.wav$")


class DataError(ValueError):
    """A problem with the input data; the message names the file or folder and the problem."""


@dataclass(frozen=True)
class Clip:
    """One audio clip and what its file name says about it."""

    path: Path
    split: str
    label: int  # 0 normal, 1 anomaly
    machine_id: str
    index: int

    @property
    def label_name(self) -> str:
        return LABELS[self.label]


def parse_name(path: Path) -> tuple[int, str, int]:
    """``(label, machine_id, index)`` from a DCASE file name; :class:`DataError` if it does not parse."""
    match = NAME_RE.match(Path(path).name)
    if match is None:
        hint = " (unlabelled eval test clips cannot be scored)" if Path(path).name.startswith("id_") else ""
        raise DataError(f"{path}: name does not match '<normal|anomaly>_id_NN_NNNNNNNN.wav'{hint}")
    label, machine_id, index = match.groups()
    return LABELS.index(label), machine_id, int(index)


def list_clips(root: Path, machine: str, split: str, ids: list[str] | None = None) -> list[Clip]:
    """Clips of ``root/machine/split`` sorted by ID, label and index, optionally only ``ids``."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    folder = Path(root) / machine / split
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found (expected <root>/<machine>/{split}/*.wav)")
    clips = []
    for path in folder.glob("*.wav"):
        label, machine_id, index = parse_name(path)
        if ids is None or machine_id in ids:
            clips.append(Clip(path, split, label, machine_id, index))
    if not clips:
        wanted = f" for IDs {', '.join(ids)}" if ids else ""
        raise DataError(f"{folder}: no .wav clips{wanted}")
    return sorted(clips, key=lambda c: (c.machine_id, c.label, c.index))


def machine_ids(clips: list[Clip]) -> list[str]:
    """Sorted machine IDs present in ``clips``."""
    return sorted({c.machine_id for c in clips})


def select_ids(found: list[str], requested: list[str] | None, report: tuple[str, ...] | None) -> list[str]:
    """The machine IDs to use out of ``found``.

    ``requested``: a list of IDs, or ``["all"]`` for every ID found. ``None``: the report's IDs
    among those found, or every ID found when the machine has no report IDs or none of them is
    here (the eval set's IDs 01/03/05, say). A requested ID that is not found is a :class:`DataError`.
    """
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


def counts(clips: list[Clip]) -> dict[tuple[str, str, str], int]:
    """Number of clips per ``(machine_id, split, label)``."""
    return dict(sorted(Counter((c.machine_id, c.split, c.label_name) for c in clips).items()))


def load_wav(path: Path, sample_rate: int = 16000) -> np.ndarray:
    """A clip as float32 mono at ``sample_rate``.

    Multi-channel files (the 8-channel MIMII originals) keep their first channel; another
    sample rate is resampled with a warning. Unreadable or empty files raise :class:`DataError`.
    """
    try:
        y, sr = sf.read(path, dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises several types for broken files
        raise DataError(f"{path}: cannot read audio ({err})") from None
    if y.shape[0] == 0:
        raise DataError(f"{path}: empty audio file")
    y = y[:, 0]
    if sr != sample_rate:
        import librosa

        warnings.warn(f"{path}: sample rate {sr} Hz, resampling to {sample_rate} Hz", stacklevel=2)
        y = librosa.resample(y, orig_sr=sr, target_sr=sample_rate).astype(np.float32)
    return np.ascontiguousarray(y)
