"""Training and scoring.

The fast path keeps the standardised log-mel frames on the device, shuffles vector indices
there and gathers each batch of stacked vectors with one indexing operation: no Dataset, no
per-sample collation, one host synchronisation per epoch. :func:`fit_plain` is the textbook
``TensorDataset`` + ``DataLoader`` loop, kept as the reference the benchmark compares against.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from asd.config import FitConfig
from asd.features import FrameSet


@dataclass
class History:
    """Mean training (and validation) loss per epoch, wall time and number of updates."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    steps: int = 0


@dataclass
class DeviceVectors:
    """Frames on a device plus the index of every stacked vector; batches are gathered on demand."""

    frames: torch.Tensor  # (total_frames, n_mels)
    starts: torch.Tensor  # (n_vectors,) first frame of each vector
    ids: torch.Tensor  # (n_vectors,) machine-ID index of each vector's clip
    clip_of: torch.Tensor  # (n_vectors,) clip index of each vector
    n_frames: int

    @classmethod
    def build(cls, fs: FrameSet, n_frames: int, id_index: dict[str, int], device: torch.device) -> "DeviceVectors":
        starts, clip_of = fs.vector_starts(n_frames)
        clip_ids = np.array([id_index.get(c.machine_id, -1) for c in fs.clips], dtype=np.int64)
        return cls(torch.from_numpy(fs.frames).to(device), torch.from_numpy(starts).to(device),
                   torch.from_numpy(clip_ids[clip_of]).to(device), torch.from_numpy(clip_of).to(device),
                   n_frames)

    def __len__(self) -> int:
        return len(self.starts)

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Stacked vectors ``(len(index), n_frames * n_mels)`` and their ID indices."""
        offsets = torch.arange(self.n_frames, device=self.frames.device)
        x = self.frames[self.starts[index, None] + offsets].reshape(len(index), -1)
        return x, self.ids[index]


def n_batches(n: int, batch_size: int) -> int:
    """Batches per epoch; a final batch of a single vector is dropped (BatchNorm cannot train on one)."""
    return n // batch_size if n % batch_size == 1 else -(-n // batch_size)


def split_clips(n_clips: int, validation_split: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random clip-level train/validation split (whole clips, so overlapping vectors never leak)."""
    order = np.random.default_rng(seed).permutation(n_clips)
    n_val = max(1, int(round(n_clips * validation_split))) if validation_split > 0 else 0
    if n_val >= n_clips:
        raise ValueError(f"validation_split {validation_split} leaves no training clip out of {n_clips}")
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _mean_loss(model: nn.Module, data: DeviceVectors, batch_size: int) -> float:
    model.eval()
    total = torch.zeros((), device=data.frames.device)
    with torch.no_grad():
        for b in range(0, len(data), batch_size):
            index = torch.arange(b, min(b + batch_size, len(data)), device=data.frames.device)
            total += model.loss(*data.batch(index)).sum()
    model.train()
    return total.item() / len(data)


def fit(model: nn.Module, train: FrameSet, fit_cfg: FitConfig, n_frames: int, id_index: dict[str, int],
        device: torch.device, seed: int = 0, progress: bool = True, desc: str = "train") -> History:
    """Train ``model`` with Adam on ``train``'s stacked vectors (a clip-level validation split held out).

    ``seed`` fixes the split, the shuffling and PyTorch's global generator (VAE sampling, dropout).
    """
    torch.manual_seed(seed)
    tr_idx, val_idx = split_clips(len(train), fit_cfg.validation_split, seed)
    data = DeviceVectors.build(train.subset(tr_idx), n_frames, id_index, device)
    val = DeviceVectors.build(train.subset(val_idx), n_frames, id_index, device) if len(val_idx) else None
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=fit_cfg.lr, fused=device.type == "cuda")
    gen = torch.Generator(device=device).manual_seed(seed)
    hist, start = History(), time.perf_counter()
    bar = tqdm(range(fit_cfg.epochs), desc=desc, disable=not progress, unit="epoch")
    for _ in bar:
        perm = torch.randperm(len(data), generator=gen, device=device)
        total = torch.zeros((), device=device)
        for b in range(n_batches(len(data), fit_cfg.batch_size)):
            x, ids = data.batch(perm[b * fit_cfg.batch_size : (b + 1) * fit_cfg.batch_size])
            loss = model.loss(x, ids).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * len(x)
            hist.steps += 1
        hist.train_loss.append(total.item() / len(data))
        if val is not None:
            hist.val_loss.append(_mean_loss(model, val, 4096))
        bar.set_postfix(loss=f"{hist.train_loss[-1]:.4g}")
    hist.seconds = time.perf_counter() - start
    model.eval()
    return hist


def _loader(fs: FrameSet, n_frames: int, id_index: dict[str, int], batch_size: int, shuffle: bool,
            seed: int) -> "torch.utils.data.DataLoader":
    """A ``DataLoader`` over materialised vectors, dropping a final batch of one as :func:`fit` does."""
    from torch.utils.data import DataLoader, TensorDataset

    _, clip_of = fs.vector_starts(n_frames)
    ids = np.array([id_index.get(c.machine_id, -1) for c in fs.clips], dtype=np.int64)[clip_of]
    dataset = TensorDataset(torch.from_numpy(fs.vectors(n_frames)), torch.from_numpy(ids))
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=len(dataset) % batch_size == 1,
                      generator=torch.Generator().manual_seed(seed))


def fit_plain(model: nn.Module, train: FrameSet, fit_cfg: FitConfig, n_frames: int, id_index: dict[str, int],
              device: torch.device, seed: int = 0, progress: bool = True, desc: str = "train (plain)") -> History:
    """The same training with materialised vectors and ``DataLoader``s (the reference loop)."""
    torch.manual_seed(seed)
    tr_idx, val_idx = split_clips(len(train), fit_cfg.validation_split, seed)
    loader = _loader(train.subset(tr_idx), n_frames, id_index, fit_cfg.batch_size, True, seed)
    val_loader = _loader(train.subset(val_idx), n_frames, id_index, 4096, False, seed) if len(val_idx) else None
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=fit_cfg.lr)
    hist, start = History(), time.perf_counter()
    for _ in tqdm(range(fit_cfg.epochs), desc=desc, disable=not progress, unit="epoch"):
        total = 0.0
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            loss = model.loss(x, y).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(x)
            hist.steps += 1
        hist.train_loss.append(total / len(loader.dataset))
        if val_loader is not None:
            model.eval()
            with torch.no_grad():
                val = sum(model.loss(x.to(device), y.to(device)).sum().item() for x, y in val_loader)
            hist.val_loss.append(val / len(val_loader.dataset))
            model.train()
    hist.seconds = time.perf_counter() - start
    model.eval()
    return hist


def score(model: nn.Module, fs: FrameSet, n_frames: int, id_index: dict[str, int], device: torch.device,
          batch_size: int = 8192) -> np.ndarray:
    """Anomaly score of every clip: the mean of its vectors' scores (e.g. reconstruction MSE)."""
    data = DeviceVectors.build(fs, n_frames, id_index, device)
    sums = torch.zeros(len(fs), dtype=torch.float64, device=device)
    model.to(device).eval()
    with torch.no_grad():
        for b in range(0, len(data), batch_size):
            index = torch.arange(b, min(b + batch_size, len(data)), device=device)
            sums.index_add_(0, data.clip_of[index], model.score(*data.batch(index)).double())
    counts = np.diff(fs.offsets) - n_frames + 1
    return sums.cpu().numpy() / counts
