"""Detectors: anything that fits on normal training clips and scores test clips.

Every method in the book sits behind this interface, so one experiment runner and one
AUC/pAUC table serve the report's four networks and the methods that go beyond them:
``pca`` (a classical linear baseline), ``idnn`` (interpolation DNN) and ``idclf`` (machine-ID
classifier). Beside them, two probes that need no training: loudness alone as a score
(:func:`level_scores`), and how far faults move clips off their machine ID (:func:`id_shift`).
"""
from __future__ import annotations

import time
from collections.abc import Generator
from typing import Protocol

import numpy as np
import torch
from threadpoolctl import threadpool_limits  # installed with scikit-learn

from asd.config import DETECTORS, Config
from asd.features import FrameSet, Standardiser, clip_means, gather_vectors
from asd.models import build
from asd.train import History, Queued, fit_steps, fit_together, score, vector_scores


class Detector(Protocol):
    name: str

    def fit(self, train: FrameSet, progress: bool = True) -> History: ...

    def score(self, test: FrameSet) -> np.ndarray: ...

    def vector_scores(self, test: FrameSet) -> tuple[np.ndarray, np.ndarray]: ...

    def state(self) -> dict[str, torch.Tensor]: ...

    def load_state(self, state: dict[str, torch.Tensor]) -> None: ...


class NetworkDetector:
    """A network from :mod:`asd.models` trained with :func:`asd.train.fit`, scored per clip."""

    def __init__(self, name: str, cfg: Config, id_index: dict[str, int], device: torch.device):
        self.name, self.cfg, self.id_index, self.device = name, cfg, id_index, device
        torch.manual_seed(cfg.seed)
        self.model = build(name, cfg, n_ids=len(id_index))

    def fit(self, train: FrameSet, progress: bool = True) -> History:
        return fit_together([self.fit_steps(train, progress)], self.device)[0]

    def fit_steps(self, train: FrameSet, progress: bool = True) -> Generator[Queued, None, History]:
        """The training as a :func:`asd.train.fit_steps` generator, to train with others at once."""
        return fit_steps(self.model, train, self.cfg.fit[self.name], self.cfg.feature.n_frames, self.id_index,
                         self.device, seed=self.cfg.seed, progress=progress, desc=self.name,
                         precision=self.cfg.precision)

    def score(self, test: FrameSet) -> np.ndarray:
        return score(self.model, test, self.cfg.feature.n_frames, self.id_index, self.device,
                     precision=self.cfg.precision)

    def vector_scores(self, test: FrameSet) -> tuple[np.ndarray, np.ndarray]:
        """Each vector's score, in time order, and its clip: where in a clip the network is surprised."""
        return vector_scores(self.model, test, self.cfg.feature.n_frames, self.id_index, self.device,
                             precision=self.cfg.precision)

    def state(self) -> dict[str, torch.Tensor]:
        """The trained weights and buffers, on the CPU."""
        return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)
        self.model.to(self.device).eval()


class IDClassifierDetector(NetworkDetector):
    """:class:`asd.models.IDClassifier` behind the detector interface.

    The classifier scores a clip by how unsure it is of the clip's own ID, so it must be trained
    on at least two IDs (not with per-ID training) and can only score IDs it was trained on.
    """

    def fit_steps(self, train: FrameSet, progress: bool = True) -> Generator[Queued, None, History]:
        present = sorted(set(train.clip_ids.tolist()))
        if len(present) < 2:
            raise ValueError(f"idclf needs training clips of at least 2 machine IDs, got {present} "
                             "(per-ID training leaves one)")
        self._check_known(train)
        return super().fit_steps(train, progress)

    def score(self, test: FrameSet) -> np.ndarray:
        self._check_known(test)
        return super().score(test)

    def vector_scores(self, test: FrameSet) -> tuple[np.ndarray, np.ndarray]:
        self._check_known(test)
        return super().vector_scores(test)

    def _check_known(self, fs: FrameSet) -> None:
        unknown = sorted(set(fs.clip_ids.tolist()) - set(self.id_index))
        if unknown:
            raise ValueError(f"idclf knows IDs {', '.join(self.id_index)}, not {', '.join(unknown)}")


def n_kept(spec: int | float, eigvals: np.ndarray) -> int:
    """Components to keep: ``spec`` when an int, else the fewest whose explained variance exceeds
    that fraction (as scikit-learn's ``PCA(n_components=fraction)``).

    ``eigvals`` are the covariance eigenvalues in descending order.
    """
    if isinstance(spec, int):
        return spec
    return int(np.searchsorted(np.cumsum(eigvals) / eigvals.sum(), spec, side="right")) + 1


class PCADetector:
    """PCA reconstruction error on the standardised stacked vectors (a classical linear baseline).

    Assumption: normal vectors lie close to a linear subspace, the span of the leading eigenvectors
    of the training covariance (``pca_components``: a number, or a fraction of the variance to
    explain); an anomaly leaves it. Fitted on at most ``pca_max_vectors`` training vectors (a
    seeded subsample) in seconds. Score: the mean squared distance of a clip's vectors from the
    subspace (per dimension, like the networks' MSE).
    """

    name = "pca"

    def __init__(self, cfg: Config):
        self.n_frames, self.seed = cfg.feature.n_frames, cfg.seed
        self.spec, self.max_vectors = cfg.beyond.pca_components, cfg.beyond.pca_max_vectors
        valid = 1 <= self.spec < cfg.feature.dim if isinstance(self.spec, int) else 0 < self.spec < 1
        if not valid:
            raise ValueError(f"pca_components must be an int in [1, {cfg.feature.dim}) or a fraction "
                             f"in (0, 1), got {self.spec!r}")
        self.mean: np.ndarray | None = None
        self.components: np.ndarray | None = None  # (n_components, dim), orthonormal rows

    def fit(self, train: FrameSet, progress: bool = True) -> History:
        start = time.perf_counter()
        starts, _ = train.vector_starts(self.n_frames)
        if len(starts) > self.max_vectors:
            rng = np.random.default_rng(self.seed)
            starts = np.sort(rng.choice(starts, size=self.max_vectors, replace=False))
        x = gather_vectors(train.frames, starts, self.n_frames).astype(np.float64)
        self.mean = x.mean(axis=0)
        x -= self.mean
        cov = x.T @ x / max(len(x) - 1, 1)
        with threadpool_limits(1, user_api="blas"):  # small eigh: threads only stall on busy cores
            eigvals, eigvecs = np.linalg.eigh(cov)
        eigvals, eigvecs = eigvals[::-1], eigvecs[:, ::-1]  # descending
        self.components = eigvecs[:, : n_kept(self.spec, eigvals)].T.copy()
        residual = x - (x @ self.components.T) @ self.components
        return History(train_loss=[float((residual**2).mean())], seconds=time.perf_counter() - start)

    def _fitted(self) -> np.ndarray:
        if self.components is None:
            raise RuntimeError("fit the PCA detector first")
        return self.components

    def state(self) -> dict[str, torch.Tensor]:
        components = self._fitted()
        return {"mean": torch.from_numpy(self.mean), "components": torch.from_numpy(components)}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        self.mean, self.components = state["mean"].numpy(), state["components"].numpy()

    def score(self, test: FrameSet) -> np.ndarray:
        return clip_means(*self.vector_scores(test), len(test))

    def vector_scores(self, test: FrameSet, batch_size: int = 65536) -> tuple[np.ndarray, np.ndarray]:
        """Each vector's squared distance from the subspace, in time order, and its clip."""
        components = self._fitted()
        starts, clip_of = test.vector_starts(self.n_frames)
        errors = np.zeros(len(starts))
        for b in range(0, len(starts), batch_size):
            x = gather_vectors(test.frames, starts[b : b + batch_size], self.n_frames) - self.mean
            residual = x - (x @ components.T) @ components
            errors[b : b + batch_size] = (residual**2).mean(axis=1)
        return errors, clip_of


def make(name: str, cfg: Config, id_index: dict[str, int], device: torch.device) -> Detector:
    """A new, unfitted detector by name."""
    return PCADetector(cfg) if name == "pca" else network(name, cfg, id_index, device)


def network(name: str, cfg: Config, id_index: dict[str, int], device: torch.device) -> NetworkDetector:
    """A new, untrained network detector by name (every detector but PCA): one that can also train
    with others at once (:meth:`NetworkDetector.fit_steps`)."""
    if name == "idclf":
        return IDClassifierDetector(name, cfg, id_index, device)
    if name in DETECTORS and name != "pca":
        return NetworkDetector(name, cfg, id_index, device)
    raise ValueError(f"unknown network {name!r}; choose from {', '.join(d for d in DETECTORS if d != 'pca')}")


def level_scores(fs: FrameSet, standardiser: Standardiser) -> np.ndarray:
    """Loudness alone as an anomaly score, a yardstick for every detector: each clip's level in dB,
    its mel power summed over the bands and averaged over its frames (``fs`` standardised by
    ``standardiser``, which gives the log-mel values back). Nothing is fitted."""
    power = (10 ** (standardiser.inverse(fs).frames.astype(np.float64) / 10)).sum(axis=1)
    return 10 * np.log10(np.add.reduceat(power, fs.offsets[:-1]) / np.diff(fs.offsets))


def own_id_probability(train: FrameSet, test: FrameSet, max_frames: int = 50_000, seed: int = 0) -> np.ndarray:
    """How much each test clip still sounds like its own machine: the mean over its frames of
    p(own machine ID) from a logistic regression fitted on the training clips' log-mel frames.

    A probe, not a detector: normal clips of a recognisable machine score near 1, and a fault that
    changes the machine's sound as a whole moves its clip off its ID (real MIMII slider faults do).
    At most ``max_frames`` training frames (a seeded subsample) are used.
    """
    from sklearn.linear_model import LogisticRegression

    unique_ids = sorted(set(train.clip_ids.tolist()))
    if len(unique_ids) < 2:
        raise ValueError(f"the ID probe needs training clips of at least 2 machine IDs, got {unique_ids}")
    if unseen := sorted(set(test.clip_ids.tolist()) - set(unique_ids)):
        raise ValueError(f"the ID probe has no training clips of test ID(s) {', '.join(unseen)}")
    frame_ids = np.repeat(train.clip_ids, np.diff(train.offsets))
    pick = np.random.default_rng(seed).permutation(len(frame_ids))[:max_frames]
    scaler = Standardiser.fit(train.frames)
    clf = LogisticRegression(max_iter=500).fit(scaler.transform(train).frames[pick], frame_ids[pick])
    proba = clf.predict_proba(scaler.transform(test).frames)
    column = {mid: k for k, mid in enumerate(clf.classes_)}
    frame_clip = np.repeat(np.arange(len(test)), np.diff(test.offsets))
    own = proba[np.arange(len(proba)), [column[m] for m in test.clip_ids[frame_clip]]]
    return clip_means(own, frame_clip, len(test))


def halves(fs: FrameSet) -> tuple[FrameSet, FrameSet]:
    """Every clip cut in time: the first halves, then the second halves (the same clips)."""
    lengths = np.diff(fs.offsets)
    first = [fs.frames[a : a + n // 2] for a, n in zip(fs.offsets[:-1], lengths)]
    second = [fs.frames[a + n // 2 : a + n] for a, n in zip(fs.offsets[:-1], lengths)]
    return FrameSet.from_parts(first, fs.clips), FrameSet.from_parts(second, fs.clips)


def _nan_mean(x: np.ndarray) -> float:
    """The mean, NaN for no values (without numpy's empty-slice warning)."""
    return float(x.mean()) if len(x) else float("nan")


def one_recording_shift(test: FrameSet) -> dict[str, tuple[float, float, float]]:
    """The ID probe trained on one recording per ID, as possible with one recording per class:
    the first half of each ID's first normal clip trains :func:`own_id_probability`.

    Per ID: mean p(own ID) of that clip's second half, of the ID's anomalous clips, and of its
    other normal clips (NaN without one). The third is the control: a new recording of the same
    healthy machine, which a probe that knows one recording may also fail to recognise.
    """
    normal = [np.flatnonzero((test.clip_ids == mid) & (test.y_true == 0)) for mid in sorted(set(test.clip_ids.tolist()))]
    if any(len(k) == 0 for k in normal):
        raise ValueError("every machine ID needs a normal clip to train the one-recording probe")
    first, second = halves(test.subset([k[0] for k in normal]))
    reference = {k[0] for k in normal}
    rest = test.subset([i for i in range(len(test)) if i not in reference])
    p_held = own_id_probability(first, second)
    p_rest, rest_ids, y_rest = own_id_probability(first, rest), rest.clip_ids, rest.y_true
    return {c.machine_id: (float(p_held[k]), _nan_mean(p_rest[(rest_ids == c.machine_id) & (y_rest == 1)]),
                           _nan_mean(p_rest[(rest_ids == c.machine_id) & (y_rest == 0)]))
            for k, c in enumerate(second.clips)}


def id_shift(train: FrameSet, test: FrameSet) -> dict[str, tuple[float, float]]:
    """Per machine ID of ``test``: the mean :func:`own_id_probability` of its normal and of its
    anomalous clips (a fault that moves clips off their ID makes the second much smaller; NaN for
    an ID without clips of one kind)."""
    p_own, clip_ids, y_true = own_id_probability(train, test), test.clip_ids, test.y_true
    return {mid: (_nan_mean(p_own[(clip_ids == mid) & (y_true == 0)]),
                  _nan_mean(p_own[(clip_ids == mid) & (y_true == 1)]))
            for mid in sorted(set(clip_ids.tolist()))}
