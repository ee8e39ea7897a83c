"""Side-by-side timings: the plain ``DataLoader`` loop vs :func:`asd.train.fit`, librosa vs torch features.

Both training loops run in the same process, on the same frames, device, seed and number of
updates, so their ratio is a fair measure of what the fast path saves.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import replace
from functools import partial

import torch
from torch import nn
from tqdm.auto import tqdm

from asd.config import Config, FitConfig
from asd.data import Clip
from asd.experiment import Prepared
from asd.features import FrameSet, extract
from asd.models import build
from asd.train import DeviceVectors, History, drops_last, fit, mean_loss, split_clips, trainable
from asd.utils import device_name, versions


def _loader(fs: FrameSet, n_frames: int, id_index: dict[str, int], batch_size: int, seed: int,
            held_out: int) -> "torch.utils.data.DataLoader":
    """A shuffling ``DataLoader`` over materialised vectors, dropping a final batch of one as :func:`fit` does."""
    from torch.utils.data import DataLoader, TensorDataset

    data = trainable(DeviceVectors.build(fs, n_frames, id_index, torch.device("cpu")), held_out)
    dataset = TensorDataset(*data.batch(torch.arange(len(data))))
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=drops_last(len(dataset), batch_size),
                      generator=torch.Generator().manual_seed(seed))


def fit_plain(model: nn.Module, train: FrameSet, fit_cfg: FitConfig, n_frames: int, id_index: dict[str, int],
              device: torch.device, seed: int = 0, progress: bool = True, desc: str = "train (plain)") -> History:
    """The same training as :func:`asd.train.fit` with materialised vectors and a ``DataLoader``:
    the textbook loop, kept as the benchmark's reference (same clip split and validation)."""
    torch.manual_seed(seed)
    tr_idx, val_idx = split_clips(train.clip_ids, fit_cfg.validation_split, seed)
    loader = _loader(train.subset(tr_idx), n_frames, id_index, fit_cfg.batch_size, seed, len(val_idx))
    val = DeviceVectors.build(train.subset(val_idx), n_frames, id_index, device) if len(val_idx) else None
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=fit_cfg.lr)
    hist, start = History(), time.perf_counter()
    for _ in tqdm(range(fit_cfg.epochs), desc=desc, disable=not progress, unit="epoch"):
        total, seen = 0.0, 0
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            loss = model.loss(x, y).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, seen = total + loss.item() * len(x), seen + len(x)  # a dropped batch is not seen, as in fit
            hist.steps += 1
        hist.train_loss.append(total / seen)
        if val is not None:
            hist.val_loss.append(mean_loss(model, val))  # the same validation as fit's
    hist.seconds = time.perf_counter() - start
    model.eval()
    return hist


# Fewer updates than this are timed mostly by start-up (the first batches, allocations): their ratio is noise.
MIN_TIMED_STEPS = 50


def bench_training(cfg: Config, prep: Prepared, models: list[str], epochs: int,
                   device: torch.device) -> list[dict]:
    """Steps/s and seconds per epoch of both loops for each network, plus their ratio and final losses.

    :func:`asd.train.fit` runs as it does in experiments: CUDA-graph replay on a GPU, eager on the
    CPU, in ``cfg.precision``; the plain loop is the fp32 textbook loop, so under bf16 the ratio
    includes what bfloat16 saves. Raises RuntimeError where the loops made different numbers of
    updates; warns where they made fewer than :data:`MIN_TIMED_STEPS`.
    """
    rows = []
    for name in models:
        fit_cfg = replace(cfg.fit[name], epochs=epochs)
        runs = {}
        for label, loop in (("plain", fit_plain), ("asd", partial(fit, precision=cfg.precision))):
            torch.manual_seed(cfg.seed)
            model = build(name, cfg, n_ids=len(prep.unique_ids))
            hist = loop(model, prep.train, fit_cfg, cfg.feature.n_frames, prep.id_index, device,
                        seed=cfg.seed, progress=False, desc=f"{name} {label}")
            runs[label] = hist
        plain, fast = runs["plain"], runs["asd"]
        if plain.steps != fast.steps:
            raise RuntimeError(f"{name}: the plain loop made {plain.steps} updates and asd.train "
                               f"{fast.steps}; their timings are not comparable")
        if fast.steps < MIN_TIMED_STEPS:
            warnings.warn(f"{name}: {fast.steps} updates, too few to time (start-up dominates them, and the ratio "
                          f"is noise): give at least {MIN_TIMED_STEPS} with more --epochs or training clips",
                          stacklevel=2)
        rows.append({
            "model": name, "batch_size": fit_cfg.batch_size, "epochs": epochs, "steps": fast.steps,
            "plain_steps_per_s": plain.steps / plain.seconds, "asd_steps_per_s": fast.steps / fast.seconds,
            "plain_s_per_epoch": plain.seconds / epochs, "asd_s_per_epoch": fast.seconds / epochs,
            "speedup": plain.seconds / fast.seconds,
            "plain_final_loss": plain.train_loss[-1], "asd_final_loss": fast.train_loss[-1],
        })
    return rows


def bench_features(clips: list[Clip], cfg: Config, device: torch.device, max_clips: int = 64) -> dict:
    """Clips per second of log-mel extraction with librosa (CPU) and with the torch path on ``device``.

    At most ``max_clips`` clips are timed (librosa alone would take minutes on a full set), after
    one clip untimed per backend: librosa's first call compiles its numba code (seconds on a fresh
    machine), the torch path's first call sets up its FFT plans.
    """
    clips = clips[:max_clips]
    out = {"clips": len(clips)}
    for backend in ("librosa", "torch"):
        extract(clips[:1], replace(cfg.feature, backend=backend), cache_dir=None, progress=False, device=device)
        start = time.perf_counter()
        extract(clips, replace(cfg.feature, backend=backend), cache_dir=None, progress=False, device=device)
        out[f"{backend}_clips_per_s"] = len(clips) / (time.perf_counter() - start)
    return out


def format_training(rows: list[dict]) -> str:
    """A plain-text table of :func:`bench_training` rows."""
    head = f"{'model':<11}{'batch':>6}{'steps':>7}{'plain st/s':>12}{'asd st/s':>10}{'plain s/ep':>12}{'asd s/ep':>10}{'ratio':>7}"
    lines = [head]
    for r in rows:
        lines.append(f"{r['model']:<11}{r['batch_size']:>6}{r['steps']:>7}{r['plain_steps_per_s']:>12.1f}"
                     f"{r['asd_steps_per_s']:>10.1f}{r['plain_s_per_epoch']:>12.3f}{r['asd_s_per_epoch']:>10.3f}"
                     f"{r['speedup']:>7.2f}")
    return "\n".join(lines)


def device_info(device: torch.device) -> dict:
    """The device's name and the versions that decide the timings (:func:`asd.utils.versions`)."""
    return {"device": device_name(device), **versions()}
