"""The whole pipeline as in the DCASE 2020 baseline: features -> detector -> scores -> AUC/pAUC.

One detector per machine type is trained on all its IDs' normal training clips (as the
baseline does) and every test clip is scored; ``per_id=True`` trains one detector per ID.
"""
from __future__ import annotations

import hashlib
import io
import json
import platform
import subprocess
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from asd import metrics, synth
from asd.config import Config, home, setting
from asd.data import (GROUND_TRUTH, DataError, find_ground_truth, is_unlabelled, list_clips, unique_ids,
                      read_ground_truth, select_ids)
from asd.detectors import Detector, make
from asd.features import FrameSet, Standardiser, cache_key, extract
from asd.train import History, fit_together
from asd.utils import atomic_write_bytes, device_name, resolve_device


@dataclass(frozen=True)
class DataSource:
    """Where the book's data comes from: the real DCASE data (``$ASD_DATA``) or the synthetic stand-in."""

    dev: Path  # folder holding <machine>/train and <machine>/test
    eval: Path | None
    synthetic: bool
    label: str


def data_source(cfg: Config, progress: bool = True) -> DataSource:
    """``$ASD_DATA`` (and optionally ``$ASD_EVAL_DATA``) if set, else the synthetic data, generated on first use."""
    if setting("data"):
        dev = Path(setting("data")).expanduser()
        ev = Path(setting("eval_data")).expanduser() if setting("eval_data") else None
        return DataSource(dev, ev, False, f"real DCASE 2020 data ({dev}; {cfg.profile} profile)")
    root = synth.ensure(cfg, progress=progress)
    return DataSource(root / "dev_data", root / "eval_data", True,
                      f"synthetic slider stand-in ({cfg.profile} profile, seed {cfg.seed})")


@dataclass
class Prepared:
    """Standardised training and test frames of one machine type."""

    train: FrameSet
    test: FrameSet
    standardiser: Standardiser
    unique_ids: list[str]  # the machine IDs used, sorted
    key: str  # fingerprint of the clips and the feature config
    left_out: list[str] = field(default_factory=list)  # IDs found in the data but not used

    @property
    def id_index(self) -> dict[str, int]:
        return {mid: i for i, mid in enumerate(self.unique_ids)}


@dataclass
class ModelResult:
    name: str
    rows: list[dict]
    scores: np.ndarray
    histories: dict[str, History]  # "all", or one per machine ID with per-ID training
    seconds: float
    weights: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)  # trained state per history key

    @property
    def steps(self) -> int:
        return sum(h.steps for h in self.histories.values())

    def detector(self, cfg: Config, prep: Prepared, device: torch.device | None = None,
                 group: str = "all") -> Detector:
        """The trained detector again (for ``group``: ``"all"`` or an ID with per-ID training),
        rebuilt from the stored weights, e.g. to look at its error frame by frame."""
        detector = make(self.name, cfg, prep.id_index, device or torch.device("cpu"))
        detector.load_state(self.weights[group])
        return detector


@dataclass
class Results:
    cfg: Config
    machine: str
    data: str
    device: str
    test: FrameSet
    unique_ids: list[str] = field(default_factory=list)  # the machine IDs used
    left_out: list[str] = field(default_factory=list)
    models: dict[str, ModelResult] = field(default_factory=dict)
    concurrent: bool = False  # networks trained at the same time, one CUDA stream each
    features_seconds: float = 0.0  # log-mel extraction (or its cache) and standardisation
    wall_seconds: float = 0.0  # the whole run: features, training and scoring

    @property
    def rows(self) -> list[dict]:
        return [r for m in self.models.values() for r in m.rows]

    def table(self) -> str:
        return metrics.format_table(metrics.table(self.rows))

    def to_dict(self) -> dict:
        return {
            "rows": self.rows,
            "machine": self.machine,
            "ids": self.unique_ids,
            "ids_left_out": self.left_out,
            "data": self.data,
            "synthetic": synth.read_marker(Path(self.data)),  # None: not the synthetic stand-in
            "profile": self.cfg.profile,
            "config": self.cfg.to_dict(),
            "config_hash": self.cfg.hash(),
            "device": self.device,
            "device_name": device_name(torch.device(self.device)),
            "concurrent": self.concurrent,
            "seconds": {m.name: round(m.seconds, 2) for m in self.models.values()},
            "features_seconds": round(self.features_seconds, 2),
            "wall_seconds": round(self.wall_seconds, 2),
            "steps": {m.name: m.steps for m in self.models.values()},
            "versions": {"python": platform.python_version(), "torch": torch.__version__,
                         "numpy": np.__version__},
            "git_commit": _git_commit(),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }

    def save(self, path: Path) -> None:
        atomic_write_bytes(Path(path), json.dumps(self.to_dict(), indent=2).encode())

    def write_scores(self, folder: Path) -> list[Path]:
        """The challenge's submission format: ``folder/<model>/anomaly_score_<machine>_id_<NN>.csv``.

        One line ``file name,score`` per test clip, as the DCASE 2020 evaluator reads them (one
        team folder per model).
        """
        paths = []
        clip_ids = self.test.clip_ids
        for name, model in self.models.items():
            for mid in self.unique_ids:
                lines = [f"{c.path.name},{float(s)!r}" for c, s, i in zip(self.test.clips, model.scores, clip_ids)
                         if i == mid]
                path = Path(folder) / name / f"anomaly_score_{self.machine}_id_{mid}.csv"
                atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())
                paths.append(path)
        return paths


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def prepare(cfg: Config, root: Path, machine: str | None = None, ids: list[str] | None = None,
            cache_dir: Path | None = None, progress: bool = True, device: torch.device | None = None,
            ground_truth: Path | None = None) -> Prepared:
    """Log-mel frames of ``root/machine``'s train and test clips, standardised with training statistics.

    ``ids`` as in :func:`asd.data.select_ids`: default the report's IDs of the machine (those found).
    Unlabelled test clips (the eval set as released) take their labels from ``ground_truth``, by
    default an ``eval_data_list.csv`` in or beside ``root``. The default ``torch`` feature backend
    batches clips through ``torch.stft`` (several times faster than librosa clip by clip, on the
    CPU too, and equal to librosa's values within float32 rounding).
    """
    machine = machine or cfg.machine
    cache_dir = cache_dir if cache_dir is not None else home() / "features"
    labels = None
    if is_unlabelled(root, machine, "test"):
        ground_truth = ground_truth or find_ground_truth(root)
        if ground_truth is None:
            raise DataError(f"{Path(root) / machine / 'test'}: unlabelled test clips (the eval set as released): "
                            f"pass --ground-truth LIST, or put {GROUND_TRUTH} in or beside {root}")
        labels = read_ground_truth(ground_truth, machine)
    all_train, all_test = list_clips(root, machine, "train"), list_clips(root, machine, "test", labels=labels)
    found = unique_ids(all_train + all_test)
    used = select_ids(found, ids, cfg.report_ids.get(machine))
    train_clips = [c for c in all_train if c.machine_id in used]
    test_clips = [c for c in all_test if c.machine_id in used]
    train = extract(train_clips, cfg.feature, cache_dir, progress, f"{machine} train", device)
    test = extract(test_clips, cfg.feature, cache_dir, progress, f"{machine} test", device)
    missing = sorted(set(unique_ids(test_clips)) - set(unique_ids(train_clips)))
    if missing:
        raise DataError(f"{Path(root) / machine}: test clips of ID(s) {', '.join(missing)} have no training clips")
    std = Standardiser.fit(train.frames)
    key = cache_key(train_clips + test_clips, cfg.feature)
    if labels is not None:  # the labels are not in the clips' names: they join the key
        key = hashlib.sha256(f"{key}|{sorted(labels.items())}".encode()).hexdigest()[:24]
    return Prepared(std.transform(train), std.transform(test), std, unique_ids(train_clips), key,
                    [mid for mid in found if mid not in used])


# The modules on the path from audio to score: a change to any of them changes results (a change
# to, say, the plots or the command line does not, and reuses cached results).
RESULT_MODULES = ("config", "data", "features", "models", "train", "detectors", "metrics", "experiment")
PACKAGE = Path(__file__).parent


def source_hash(package: Path | None = None) -> str:
    """Hash of the source of :data:`RESULT_MODULES` (in ``package``, default :data:`PACKAGE`), so
    cached results never outlive a change to them."""
    package = package or PACKAGE
    h = hashlib.sha256()
    for name in RESULT_MODULES:
        h.update((package / f"{name}.py").read_bytes())
    return h.hexdigest()[:16]


def _result_path(name: str, cfg: Config, prep: Prepared, device: torch.device, per_id: bool) -> Path:
    parts = [name, cfg.hash(), prep.key, device.type, str(per_id), source_hash()]
    return home() / "results" / f"{name}-{hashlib.sha256('|'.join(parts).encode()).hexdigest()[:20]}.json"


def _save_result(path: Path, res: ModelResult) -> None:
    """The result as JSON, and the trained weights beside it (``.pt``); the JSON last, as the marker."""
    buffer = io.BytesIO()
    torch.save(res.weights, buffer)
    atomic_write_bytes(path.with_suffix(".pt"), buffer.getvalue())
    blob = {"name": res.name, "rows": res.rows, "scores": res.scores.tolist(), "seconds": res.seconds,
            "histories": {k: vars(h) for k, h in res.histories.items()}}
    atomic_write_bytes(path, json.dumps(blob).encode())


def _load_result(path: Path) -> ModelResult:
    blob = json.loads(path.read_text())
    weights = torch.load(path.with_suffix(".pt"), map_location="cpu", weights_only=True)
    return ModelResult(blob["name"], blob["rows"], np.array(blob["scores"]),
                       {k: History(**h) for k, h in blob["histories"].items()}, blob["seconds"], weights)


def _cached(path: Path, cache: bool) -> ModelResult | None:
    return _load_result(path) if cache and path.exists() and path.with_suffix(".pt").exists() else None


def _finish(name: str, cfg: Config, prep: Prepared, machine: str, scores: np.ndarray,
            histories: dict[str, History], seconds: float, weights: dict, path: Path, cache: bool) -> ModelResult:
    """The per-ID AUC/pAUC of ``scores`` as a :class:`ModelResult`, stored at ``path`` with ``cache``."""
    rows = metrics.per_id(name, machine, prep.test.clip_ids, prep.test.y_true, scores, cfg.max_fpr)
    result = ModelResult(name, rows, scores, histories, seconds, weights)
    if cache:
        _save_result(path, result)
    return result


def run_model(name: str, cfg: Config, prep: Prepared, device: torch.device, machine: str,
              per_id: bool = False, progress: bool = True, cache: bool = True) -> ModelResult:
    """Fit detector ``name`` (once, or once per ID), score the test clips, compute AUC/pAUC per ID.

    With ``cache``, a result is stored under ``$ASD_HOME/results`` keyed on the config, the
    clips, the device type and the package source, and reused by an identical later call.
    """
    path = _result_path(name, cfg, prep, device, per_id)
    if (cached := _cached(path, cache)) is not None:
        return cached
    start = time.perf_counter()
    groups = [[mid] for mid in prep.unique_ids] if per_id else [prep.unique_ids]
    scores = np.zeros(len(prep.test))
    histories, weights = {}, {}
    for group in groups:
        key = group[0] if per_id else "all"
        train_sel = [i for i, c in enumerate(prep.train.clips) if c.machine_id in group]
        test_sel = [i for i, c in enumerate(prep.test.clips) if c.machine_id in group]
        detector = make(name, cfg, prep.id_index, device)
        histories[key] = detector.fit(prep.train.subset(train_sel), progress)
        scores[test_sel] = detector.score(prep.test.subset(test_sel))
        weights[key] = detector.state()
    return _finish(name, cfg, prep, machine, scores, histories, time.perf_counter() - start, weights, path, cache)


def run_together(names: list[str], cfg: Config, prep: Prepared, device: torch.device, machine: str,
                 cache: bool = True) -> dict[str, ModelResult]:
    """Networks ``names`` trained at the same time (:func:`asd.train.fit_together`: one CUDA stream
    each on a GPU), each on the whole training set, then scored; cached as :func:`run_model`.

    Each network is scored and cached as soon as it finishes training, while the others train on.
    A result's ``seconds`` are its own training span plus its scoring.
    """
    results, todo = {}, []
    for name in names:
        path = _result_path(name, cfg, prep, device, False)
        if (cached := _cached(path, cache)) is not None:
            results[name] = cached
        else:
            todo.append((name, make(name, cfg, prep.id_index, device), path))

    def finish(i: int, history: History) -> None:
        name, detector, path = todo[i]
        start = time.perf_counter()
        scores = detector.score(prep.test)
        seconds = history.seconds + time.perf_counter() - start
        results[name] = _finish(name, cfg, prep, machine, scores, {"all": history}, seconds,
                                {"all": detector.state()}, path, cache)

    fit_together([detector.fit_steps(prep.train, False) for _, detector, _ in todo], device, finish)
    return {name: results[name] for name in names}


def seed_runs(cfg: Config, root: Path, models: list[str], seeds: list[int], progress: bool = True,
              **kwargs) -> list[Results]:
    """:func:`run` once per training seed on the same data and features: the seed sets the weights'
    initialisation, the validation split, the batches' order and the networks' sampling."""
    return [run(replace(cfg, seed=s), root, models, progress=False, **kwargs)
            for s in tqdm(seeds, desc="seeds", disable=not progress)]


def run(cfg: Config, root: Path, models: list[str], machine: str | None = None, ids: list[str] | None = None,
        device: str | None = None, per_id: bool = False, progress: bool = True,
        data_label: str | None = None, cache: bool = True, concurrent: bool = False,
        ground_truth: Path | None = None) -> Results:
    """Train and evaluate ``models`` on ``root/machine`` and collect the per-ID results.

    ``concurrent`` (CUDA only) trains the networks at the same time, one CUDA stream each, so that
    small networks' kernels overlap on the GPU (:func:`run_together`); PCA, and every detector
    with ``per_id``, train one after another.
    """
    start = time.perf_counter()
    machine = machine or cfg.machine
    dev = resolve_device(device)
    prep = prepare(cfg, root, machine, ids, progress=progress, device=dev, ground_truth=ground_truth)
    results = Results(cfg, machine, data_label or str(root), str(dev), prep.test, prep.unique_ids, prep.left_out,
                      features_seconds=time.perf_counter() - start)
    together = [name for name in models if name != "pca"] if concurrent and dev.type == "cuda" and not per_id else []
    results.concurrent = len(together) > 1
    trained = run_together(together, cfg, prep, dev, machine, cache) if results.concurrent else {}
    for name in models:
        results.models[name] = trained.get(name) or run_model(name, cfg, prep, dev, machine, per_id, progress, cache)
    results.wall_seconds = time.perf_counter() - start
    return results
