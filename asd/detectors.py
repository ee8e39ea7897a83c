"""Detectors: anything that fits on normal training clips and scores test clips.

Every method in the book sits behind this interface, so one experiment runner and one
AUC/pAUC table serve the report's four networks and the methods that go beyond them.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from asd.config import NETWORKS, Config
from asd.features import FrameSet
from asd.models import build, n_params
from asd.train import History, fit, score


class Detector(Protocol):
    name: str

    def fit(self, train: FrameSet, progress: bool = True) -> History: ...

    def score(self, test: FrameSet) -> np.ndarray: ...


class NetworkDetector:
    """A network from :mod:`asd.models` trained with :func:`asd.train.fit`, scored per clip."""

    def __init__(self, name: str, cfg: Config, id_index: dict[str, int], device: torch.device):
        self.name, self.cfg, self.id_index, self.device = name, cfg, id_index, device
        torch.manual_seed(cfg.seed)
        self.model = build(name, cfg, n_ids=len(id_index))

    @property
    def n_params(self) -> int:
        return n_params(self.model)

    def fit(self, train: FrameSet, progress: bool = True) -> History:
        return fit(self.model, train, self.cfg.fit[self.name], self.cfg.feature.n_frames, self.id_index,
                   self.device, seed=self.cfg.seed, progress=progress, desc=self.name)

    def score(self, test: FrameSet) -> np.ndarray:
        return score(self.model, test, self.cfg.feature.n_frames, self.id_index, self.device)


DETECTORS = NETWORKS


def make(name: str, cfg: Config, id_index: dict[str, int], device: torch.device) -> Detector:
    """A new, unfitted detector by name."""
    if name in NETWORKS:
        return NetworkDetector(name, cfg, id_index, device)
    raise ValueError(f"unknown detector {name!r}; choose from {', '.join(DETECTORS)}")
