"""Log-mel features, the training-set standardiser, frame stacking and an on-disk cache.

A clip becomes a ``(n_frames, n_mels)`` float32 log-mel matrix (time first). Networks see
vectors of ``n_frames`` consecutive frames concatenated frame by frame (frame-major, as in
the DCASE 2020 baseline): ``n_vectors = n_frames_clip - n_frames + 1`` per clip. Stacking is
done on the fly from per-clip frames, which takes five times less memory than stored vectors.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import librosa
import numpy as np
import torch
from tqdm.auto import tqdm

from asd.config import FeatureConfig
from asd.data import Clip, DataError, load_wav
from asd.utils import PACKAGE, atomic_write_bytes, source_hash

EPS = np.finfo(float).eps  # sys.float_info.epsilon, as in the DCASE baseline


def mel_basis(cfg: FeatureConfig) -> np.ndarray:
    """librosa's Slaney mel filterbank, shape ``(n_mels, n_fft // 2 + 1)``."""
    return librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels).astype(np.float32)


def logmel(y: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """``10 * log10(mel power + eps)`` of a mono signal in dB, shape ``(n_frames, n_mels)``, float32
    (``20 / power * log10(mel + eps)`` for a mel spectrogram of another ``cfg.power``)."""
    mel = librosa.feature.melspectrogram(
        y=y, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
        n_mels=cfg.n_mels, power=cfg.power, window="hann", center=True, pad_mode=cfg.pad_mode,
    )
    return (20.0 / cfg.power * np.log10(mel + EPS)).T.astype(np.float32)


def logmel_torch(y: torch.Tensor, cfg: FeatureConfig, basis: torch.Tensor) -> torch.Tensor:
    """Batched :func:`logmel` with ``torch.stft`` on any device: ``(B, samples) -> (B, frames, n_mels)``."""
    window = torch.hann_window(cfg.n_fft, device=y.device, dtype=y.dtype)
    spec = torch.stft(y, cfg.n_fft, cfg.hop_length, window=window, center=True,
                      pad_mode=cfg.pad_mode, return_complex=True).abs() ** cfg.power
    mel = torch.matmul(basis, spec)  # (B, n_mels, frames)
    return (20.0 / cfg.power * torch.log10(mel + EPS)).transpose(1, 2)


def stack(frames: np.ndarray, n_frames: int) -> np.ndarray:
    """Concatenate ``n_frames`` consecutive rows: ``(T, M) -> (T - n_frames + 1, M * n_frames)``."""
    n_vectors = frames.shape[0] - n_frames + 1
    if n_vectors < 1:
        raise ValueError(f"{frames.shape[0]} frames cannot make a {n_frames}-frame vector")
    return gather_vectors(frames, np.arange(n_vectors), n_frames)


def gather_vectors(frames, starts, n_frames: int):
    """The stacked vectors whose first frames are ``starts``: ``(len(starts), n_frames * n_mels)``.

    NumPy arrays or torch tensors alike (the training loop gathers its batches on the device).
    Each vector is a window of the contiguous frames read as ``n_frames * n_mels`` values from its
    first frame on, so a batch is one row gather (one kernel on a GPU).
    """
    n_windows, n_mels = max(len(frames) - n_frames + 1, 0), frames.shape[1]
    if isinstance(frames, np.ndarray):
        frames = np.ascontiguousarray(frames)
        step = frames.strides[1]
        windows = np.lib.stride_tricks.as_strided(frames, (n_windows, n_frames * n_mels), (n_mels * step, step),
                                                  writeable=False)
    else:
        windows = frames.contiguous().as_strided((n_windows, n_frames * n_mels), (n_mels, 1))
    return windows[starts]


def clip_means(vector_scores: np.ndarray, clip_of: np.ndarray, n_clips: int) -> np.ndarray:
    """Each clip's anomaly score: the mean of its vectors' scores (``clip_of``: each vector's clip)."""
    return np.bincount(clip_of, vector_scores, minlength=n_clips) / np.bincount(clip_of, minlength=n_clips)


@dataclass
class FrameSet:
    """Log-mel frames of many clips, concatenated: clip ``i`` owns ``frames[offsets[i]:offsets[i+1]]``."""

    frames: np.ndarray  # (total_frames, n_mels) float32, row-major
    offsets: np.ndarray  # (n_clips + 1,) int64
    clips: list[Clip]

    def __post_init__(self) -> None:
        # a clip's log-mel is the transpose of a (n_mels, frames) spectrogram: stored row-major,
        # a stacked vector is a window of memory (gather_vectors) and frames copy fast to a device
        self.frames = np.ascontiguousarray(self.frames)

    def __len__(self) -> int:
        return len(self.clips)

    @property
    def y_true(self) -> np.ndarray:
        return np.array([c.label for c in self.clips], dtype=np.int64)

    @property
    def clip_ids(self) -> np.ndarray:
        """Each clip's machine ID."""
        return np.array([c.machine_id for c in self.clips])

    def vector_counts(self, n_frames: int) -> np.ndarray:
        """Stacked vectors per clip: its frames less ``n_frames - 1``."""
        return np.diff(self.offsets) - n_frames + 1

    def vector_starts(self, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
        """First-frame index of every stacked vector and the clip each belongs to."""
        counts = self.vector_counts(n_frames)
        clip_of = np.repeat(np.arange(len(self.clips)), counts)
        first = np.repeat(self.offsets[:-1], counts)
        within = np.arange(len(clip_of)) - np.repeat(np.cumsum(counts) - counts, counts)
        return first + within, clip_of

    def vectors(self, n_frames: int) -> np.ndarray:
        """All stacked vectors, ``(n_vectors, n_mels * n_frames)`` (memory: 5x the frames)."""
        starts, _ = self.vector_starts(n_frames)
        return gather_vectors(self.frames, starts, n_frames)

    @classmethod
    def from_parts(cls, parts: list[np.ndarray], clips: list[Clip]) -> "FrameSet":
        """The frame set whose clip ``i`` is ``clips[i]`` with frames ``parts[i]`` (at least one part)."""
        offsets = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
        return cls(np.concatenate(parts), offsets, list(clips))

    def subset(self, index: np.ndarray | list[int]) -> "FrameSet":
        """The clips at ``index``, in that order."""
        if len(index) == 0:
            return FrameSet(self.frames[:0], np.zeros(1, np.int64), [])
        parts = [self.frames[self.offsets[i] : self.offsets[i + 1]] for i in index]
        return FrameSet.from_parts(parts, [self.clips[i] for i in index])

    def with_frames(self, frames: np.ndarray) -> "FrameSet":
        return FrameSet(frames, self.offsets, self.clips)


@dataclass(frozen=True)
class Standardiser:
    """Per-mel-bin mean and standard deviation, fitted on training frames only."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, frames: np.ndarray) -> "Standardiser":
        mean = frames.mean(axis=0, dtype=np.float64)
        std = frames.std(axis=0, dtype=np.float64)
        return cls(mean.astype(np.float32), np.maximum(std, 1e-8).astype(np.float32))

    def transform(self, fs: FrameSet) -> FrameSet:
        return fs.with_frames((fs.frames - self.mean) / self.std)

    def inverse(self, fs: FrameSet) -> FrameSet:
        """Standardised frames back in dB, as :func:`logmel` gave them."""
        return fs.with_frames(fs.frames * self.std + self.mean)


# The modules that turn a WAV into log-mel frames: a change to either invalidates cached features.
FEATURE_MODULES = ("data", "features")


def cache_key(clips: list[Clip], cfg: FeatureConfig, device: torch.device | None = None) -> str:
    """Hash of the feature config (backend and pad mode included), the source of
    :data:`FEATURE_MODULES`, the versions of the libraries that compute the features, the device
    kind for the ``torch`` backend (CPU and GPU agree only within rounding), and each clip's path,
    size and mtime."""
    kind = (device or torch.device("cpu")).type if cfg.backend == "torch" else None
    head = [asdict(cfg), source_hash(FEATURE_MODULES, PACKAGE), kind, librosa.__version__, torch.__version__]
    h = hashlib.sha256(json.dumps(head, sort_keys=True).encode())
    for c in clips:
        st = c.path.stat()
        h.update(f"{c.path.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def _signal(clip: Clip, cfg: FeatureConfig) -> np.ndarray:
    """A clip's samples, long enough for one stacked vector (``n_frames`` frames of a centred STFT)
    and for one whole STFT window (the reflection padding of a shorter clip is undefined)."""
    y = load_wav(clip.path, cfg.sample_rate)
    need = max((cfg.n_frames - 1) * cfg.hop_length, cfg.n_fft)
    if len(y) < need:
        raise DataError(f"{clip.path}: {len(y)} samples, need at least {need} ({cfg.n_frames} frames "
                        f"of hop {cfg.hop_length}, one window of {cfg.n_fft}; clip too short)")
    return y


def _frames_librosa(clips: list[Clip], cfg: FeatureConfig, bar: tqdm) -> list[np.ndarray]:
    parts = []
    for c in clips:
        parts.append(logmel(_signal(c, cfg), cfg))
        bar.update()
    return parts


def _frames_torch(clips: list[Clip], cfg: FeatureConfig, bar: tqdm, device: torch.device,
                  batch: int = 64) -> list[np.ndarray]:
    basis = torch.from_numpy(mel_basis(cfg)).to(device)
    parts = []
    chunks = [clips[i : i + batch] for i in range(0, len(clips), batch)]
    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:  # reading and decoding WAVs releases the GIL
        # at most one chunk per worker read ahead of the log-mel step: memory stays bounded on any data set
        ahead = deque(pool.submit(_signals, chunk, cfg) for chunk in chunks[:workers])
        for k, chunk in enumerate(chunks):
            signals = ahead.popleft().result()
            if k + workers < len(chunks):
                ahead.append(pool.submit(_signals, chunks[k + workers], cfg))
            parts += _logmel_chunk(signals, cfg, basis, device)
            bar.update(len(chunk))
    return parts


def _signals(chunk: list[Clip], cfg: FeatureConfig) -> list[np.ndarray]:
    return [_signal(c, cfg) for c in chunk]


def _logmel_chunk(signals: list[np.ndarray], cfg: FeatureConfig, basis: torch.Tensor,
                  device: torch.device) -> list[np.ndarray]:
    """Log-mel frames of a chunk of clips: equal lengths as one batch on ``device``, mixed lengths one by one."""
    groups = [signals] if len({len(y) for y in signals}) == 1 else [[y] for y in signals]
    return [f for g in groups for f in logmel_torch(torch.from_numpy(np.stack(g)).to(device), cfg, basis).cpu().numpy()]


def extract(clips: list[Clip], cfg: FeatureConfig, cache_dir: Path | None = None, progress: bool = True,
            desc: str = "log-mel", device: torch.device | None = None) -> FrameSet:
    """Log-mel frames of ``clips``, read from / written to ``cache_dir`` when given.

    ``cfg.backend="librosa"`` computes clip by clip on the CPU; ``"torch"`` batches clips through
    :func:`logmel_torch` on ``device`` (the same values within float32 rounding).
    """
    if not clips:
        raise DataError("no clips to extract features from")
    path = Path(cache_dir) / f"logmel-{cache_key(clips, cfg, device)}.npz" if cache_dir else None
    if path is not None and path.exists():
        with np.load(path) as z:
            return FrameSet(z["frames"], z["offsets"], list(clips))
    with tqdm(total=len(clips), desc=desc, disable=not progress, unit="clip") as bar:
        if cfg.backend == "torch":
            parts = _frames_torch(clips, cfg, bar, device or torch.device("cpu"))
        else:
            parts = _frames_librosa(clips, cfg, bar)
    fs = FrameSet.from_parts(parts, clips)
    if path is not None:
        buf = io.BytesIO()
        np.savez(buf, frames=fs.frames, offsets=fs.offsets)
        atomic_write_bytes(path, buf.getvalue())
    return fs
