"""The whole pipeline as in the DCASE 2020 baseline: features -> detector -> scores -> AUC/pAUC.

One detector per machine type is trained on all its IDs' normal training clips (as the
baseline does) and every test clip is scored; ``per_id=True`` trains one detector per ID.
The training clips are scored too: their scores set each ID's decision threshold
(:func:`asd.metrics.thresholds`), which turns test scores into normal/anomalous decisions.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from asd import metrics, synth, tables, utils
from asd.config import CALIBRATIONS, ENVIRONMENT, Config, FeatureConfig, home, setting
from asd.data import (GROUND_TRUTH, Clip, DataError, dataset_root, find_ground_truth, first_per_id, folder_wavs,
                      is_release, list_clips, read_ground_truth, durations, select_ids, time_order, unevaluable,
                      unique_ids, unlabelled_files, unlike_lengths, unlike_rates, usual_rate)
from asd.detectors import Detector, make, network
from asd.features import FrameSet, Standardiser, cache_key, extract
from asd.train import History, fit_together
from asd.utils import (PACKAGE, atomic_torch_save, atomic_write_bytes, atomic_write_json, device_name, git_commit,
                       not_a_folder, resolve_device, versions)


@dataclass(frozen=True)
class DataSource:
    """Where the book's data comes from: the real DCASE data (``$ASD_DATA``) or the synthetic stand-in."""

    dev: Path  # folder holding <machine>/train and <machine>/test
    eval: Path | None
    synthetic: bool
    label: str  # what the development set is (describe_data)
    eval_label: str | None = None  # what the eval set is; None without one


def describe_data(root: Path, profile: str | None = None) -> str:
    """What the data at ``root`` is, for every table, record and saved detector made from it: the
    synthetic stand-in (a folder written by ``asd synth``, with its generator's version and seed, and
    its hall where louder than the usual; or clips linked from one, as ``asd arrange`` links them),
    the real DCASE 2020 data (a release's ``dev_data``/``eval_data`` or their parent) or other
    real recordings; ``profile`` is added when given. A relative ``root`` is made absolute: the
    label outlives the working folder (a saved detector's, say)."""
    return _provenance(root, profile)[1]


def _provenance(root: Path, profile: str | None) -> tuple[bool, str]:
    """Whether the data at ``root`` is the synthetic stand-in, and :func:`describe_data`'s label."""
    root = Path(root).absolute()
    if made := synth.read_marker(root):  # the stand-in written by `asd synth`: synthetic wherever it is
        what = f"synthetic slider stand-in at {root} ({synth.made_by(made)}"
    elif linked := synth.linked_stand_in(root):  # its clips arranged as a plant's: synthetic all the same
        made, source = linked
        what = f"synthetic slider stand-in clips at {root}, linked from {source} ({synth.made_by(made)}"
    else:
        what = f"{'real DCASE 2020 data' if is_release(root) else 'real recordings'} ({root}"
    return made is not None, f"{what}; {profile} profile)" if profile else f"{what})"


def describe_clips(clips: list[Clip]) -> str:
    """What ``clips`` scored by saved detectors are, as :func:`describe_data` says of a data folder,
    judged from the folder that holds them all and the folders above it, links followed (clips
    that ``asd arrange`` linked are what they link to); named by the folder as given."""
    given = Path(os.path.commonpath([str(c.path.absolute().parent) for c in clips]))
    linked = Path(os.path.commonpath([str(c.path.resolve().parent) for c in clips]))
    source = f", linked from {linked}" if linked != given.resolve() else ""
    if found := synth.stand_in_above(linked):
        return f"synthetic slider stand-in clips at {given}{source} ({synth.made_by(found[0])})"
    return f"{'real DCASE 2020 data' if is_release(linked) else 'real recordings'} ({given}{source})"


def data_source(cfg: Config, progress: bool = True) -> DataSource:
    """``$ASD_DATA`` (and optionally ``$ASD_EVAL_DATA``) if set, else the synthetic data, generated on first use.

    ``$ASD_DATA`` may be a release root (``dev_data/``, ``eval_data/``): its ``dev_data``, and its
    ``eval_data`` unless ``$ASD_EVAL_DATA`` says otherwise. ``$ASD_EVAL_DATA`` without ``$ASD_DATA``
    is an error: the book would treat a real eval set as part of the synthetic stand-in."""
    if setting("data"):
        given = _folder("data")
        dev = dataset_root(given, cfg.machine)
        ev = (_folder("eval_data") if setting("eval_data")
              else given / "eval_data" if dev != given and (given / "eval_data").is_dir() else None)
        synthetic, label = _provenance(dev, cfg.profile)
        return DataSource(dev, ev, synthetic, label, describe_data(ev, cfg.profile) if ev else None)
    if setting("eval_data"):
        raise ValueError(f"ASD_EVAL_DATA is set ({setting('eval_data')}) but ASD_DATA is not: set ASD_DATA to the "
                         "same release's development set, or unset ASD_EVAL_DATA for the synthetic stand-in")
    root = synth.ensure(cfg, progress=progress)
    label = f"synthetic slider stand-in ({cfg.profile} profile, data seed {cfg.seed})"
    return DataSource(root / "dev_data", root / "eval_data", True, label, label)


def _folder(name: str) -> Path:
    """The folder a setting's environment variable names (``data``: ``$ASD_DATA``); a :class:`DataError`
    naming the variable if it is none."""
    path = Path(setting(name)).expanduser()
    if why := not_a_folder(path):
        raise DataError(f"{ENVIRONMENT[name][0]} {path}: {why}")
    return path


def numbered(ids: list[str]) -> dict[str, int]:
    """Machine IDs (sorted) -> 0, 1, ...: the class numbers of ID-aware detectors."""
    return {mid: i for i, mid in enumerate(ids)}


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
        return numbered(self.unique_ids)


@dataclass
class ModelResult:
    name: str
    rows: list[dict]
    scores: np.ndarray  # per test clip
    histories: dict[str, History]  # "all", or one per machine ID with per-ID training
    seconds: float
    weights: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)  # trained state per history key
    train_scores: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per training clip
    held_out: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # per training clip: not fitted on
    calibration_scores: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per calibration clip

    @property
    def steps(self) -> int:
        return sum(h.steps for h in self.histories.values())

    def detector(self, cfg: Config, id_index: dict[str, int], device: torch.device | None = None,
                 group: str = "all") -> Detector:
        """The trained detector again (for ``group``: ``"all"`` or an ID with per-ID training),
        rebuilt from the stored weights, e.g. to look at its error frame by frame (``id_index``:
        :attr:`Prepared.id_index` of its training data)."""
        detector = make(self.name, cfg, id_index, device or torch.device("cpu"))
        detector.load_state(self.weights[group])
        return detector


@dataclass
class Results:
    cfg: Config
    machine: str
    data: str
    device: str
    test: FrameSet
    train_ids: np.ndarray  # the machine ID of each training clip
    unique_ids: list[str] = field(default_factory=list)  # the machine IDs used
    left_out: list[str] = field(default_factory=list)
    models: dict[str, ModelResult] = field(default_factory=dict)
    concurrent: bool = False  # networks trained at the same time, one CUDA stream each
    features_seconds: float = 0.0  # log-mel extraction (or its cache) and standardisation
    wall_seconds: float = 0.0  # the whole run: features, training and scoring
    standardiser: Standardiser | None = None  # fitted on the training frames
    calibration_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, str))  # per calibration clip
    synthetic: dict | None = None  # the stand-in's generator record (synth.read_marker); None for other data
    clip_seconds: float | None = None  # the training clips' median length (None: a detector saved without it)
    clip_rate: int | None = None  # the sample rate most training clips were recorded at (None: saved without it)

    @property
    def id_index(self) -> dict[str, int]:
        """The training data's machine IDs, numbered as :attr:`Prepared.id_index`."""
        return numbered(sorted(set(self.train_ids.tolist())))

    @property
    def train_clips(self) -> dict[str, int]:
        """The number of training clips of each machine ID."""
        return {str(mid): int(n) for mid, n in zip(*np.unique(self.train_ids, return_counts=True))}

    @property
    def rows(self) -> list[dict]:
        """AUC/pAUC rows per model and ID; none where the test clips cannot be evaluated."""
        return [r for m in self.models.values() for r in m.rows]

    @property
    def evaluable(self) -> bool:
        """Whether every ID's test clips are labelled, normal and anomalous (AUC needs both)."""
        return not unevaluable(self.test.clips)

    def table(self) -> str:
        return tables.format_table(metrics.table(self.rows))

    def thresholds(self, name: str, quantile: float = metrics.DECISION_QUANTILE,
                   calibration: str = "training") -> dict[str, float]:
        """Model ``name``'s decision threshold per ID, from the scores of that ID's training clips
        (``calibration="training"``, the DCASE baselines' rule), of those the network held out
        from training (``"held-out"``) or of the normal clips :meth:`calibrate` scored
        (``"calibration"``); a :class:`DataError` where an ID has too few."""
        if calibration not in CALIBRATIONS:
            raise ValueError(f"calibration must be one of {', '.join(CALIBRATIONS)}, got {calibration!r}")
        model = self.models[name]
        if calibration == "calibration":
            ids, scores = self.calibration_ids, model.calibration_scores
            none = "no calibration clips were scored with it (give some: --calibration-clips)"
        else:
            use = model.held_out if calibration == "held-out" else np.ones(len(self.train_ids), bool)
            ids, scores = self.train_ids[use], model.train_scores[use]
            none = "it held out no training clips (PCA fits them all)"
        try:
            if not len(ids):
                raise ValueError(f"any ID: {none}")
            limits = metrics.thresholds(ids, scores, quantile)
            missing = [mid for mid in self.unique_ids if mid not in limits]
            if missing:
                raise ValueError(f"ID {missing[0]}: no {calibration} clips")
        except ValueError as err:
            raise DataError(f"{name}: no {calibration} decision threshold for {err}") from None
        return limits

    def auc_by_fault(self, models: list[str] | None = None) -> dict[str, dict[str, dict[str, tuple[float, int]]]]:
        """AUC of ``models`` (default all) on the anomalous test clips grouped by fault type and by
        severity (:func:`asd.synth.fault_groups`), each group against the normal clips of its ID:
        ``{grouping: {model: {group: (AUC, clips)}}}``, as :func:`asd.plots.group_aucs` draws.

        Only the synthetic stand-in knows its clips' faults; other data raises DataError.
        """
        if self.synthetic is None:
            raise DataError(f"the faults of the test clips are unknown: {self.data} is not the synthetic "
                            "stand-in, whose generator alone knows which fault each clip holds")
        groups = synth.fault_groups(synth.faults(self.test.clips, self.synthetic))
        test = self.test
        return {title: {name: metrics.auc_by_group(test.y_true, test.clip_ids, self.models[name].scores, g)
                        for name in models or self.models}
                for title, g in groups.items()}

    def decisions(self, name: str, quantile: float = metrics.DECISION_QUANTILE,
                  calibration: str = "training") -> np.ndarray:
        """Model ``name``'s decision per test clip: 1 anomalous (score above its ID's threshold), 0 normal."""
        return metrics.decide(self.test.clip_ids, self.models[name].scores,
                              self.thresholds(name, quantile, calibration))

    def alarms(self, name: str, after: int, quantile: float = metrics.DECISION_QUANTILE,
               calibration: str = "training", runs: Mapping[str, int] | None = None) -> np.ndarray:
        """Model ``name``'s alarm per test clip: 1 where ``after`` of its ID's clips in a row are
        flagged (:func:`asd.metrics.alarms` of :meth:`decisions`, the clips taken in recording order,
        :func:`asd.data.time_order`), the runs counted on from ``runs``."""
        order, raised = time_order(self.test.clips), np.zeros(len(self.test), np.int64)
        decided = self.decisions(name, quantile, calibration)
        raised[order] = metrics.alarms(self.test.clip_ids[order], decided[order], after, runs)
        return raised

    def vector_scores(self, name: str, index: int) -> np.ndarray:
        """Model ``name``'s score of each vector of test clip ``index``, in time order: where in the
        clip the detector is surprised (their mean is the clip's score)."""
        model, clip = self.models[name], self.test.subset([index])
        group = "all" if "all" in model.weights else clip.clips[0].machine_id
        return model.detector(self.cfg, self.id_index, torch.device(self.device), group).vector_scores(clip)[0]

    def decision_rows(self, quantile: float = metrics.DECISION_QUANTILE, calibration: str = "training",
                      models: list[str] | None = None) -> list[dict]:
        """Precision, recall, F1 and false-alarm rate of the decisions of ``models`` (default all), per ID."""
        if not self.evaluable:
            raise ValueError(f"the test clips cannot be evaluated: {'; '.join(unevaluable(self.test.clips))}")
        return [r for name in models or self.models for r in metrics.decision_rows(
            name, self.test.clip_ids, self.test.y_true, self.decisions(name, quantile, calibration))]

    def to_dict(self, quantile: float = metrics.DECISION_QUANTILE, calibration: str = "training") -> dict:
        return {
            "rows": self.rows,
            "machine": self.machine,
            "ids": self.unique_ids,
            "ids_left_out": self.left_out,
            "train_clips": self.train_clips,
            "data": self.data,
            "synthetic": self.synthetic,  # None: not the synthetic stand-in
            "profile": self.cfg.profile,
            "config": self.cfg.to_dict(),
            "config_hash": self.cfg.hash(),
            "device": self.device,
            "device_name": device_name(torch.device(self.device)),
            "concurrent": self.concurrent,
            "seconds": {m.name: round(m.seconds, 2) for m in self.models.values()},
            "setup_seconds": {m.name: round(sum(h.setup_seconds for h in m.histories.values()), 3)
                              for m in self.models.values()},
            "features_seconds": round(self.features_seconds, 2),
            "wall_seconds": round(self.wall_seconds, 2),
            "steps": {m.name: m.steps for m in self.models.values()},
            "decision_quantile": quantile,
            "calibration": calibration,
            "thresholds": {name: self._thresholds_or_none(name, quantile, calibration) for name in self.models},
            "versions": versions(),
            "git_commit": git_commit(),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }

    def clip_report(self, quantile: float = metrics.DECISION_QUANTILE, calibration: str = "training",
                    alarm_after: int | None = None, alarm_runs: dict[str, dict[str, int]] | None = None) -> dict:
        """Per model, the thresholds per ID and each test clip's score and decision (in the order of
        ``self.test.clips``), with ``alarm_after`` its alarm (:func:`asd.metrics.alarms` of those
        decisions, counted on from ``alarm_runs[model]``), and the AUC/pAUC rows when the clips are
        labelled: what ``asd score --out`` writes for monitoring scripts."""
        report = {}
        for name, model in self.models.items():
            report[name] = {"thresholds": self.thresholds(name, quantile, calibration),
                            "scores": model.scores.tolist(),
                            "decisions": self.decisions(name, quantile, calibration).tolist(), "rows": model.rows}
            if alarm_after is not None:
                runs = (alarm_runs or {}).get(name)
                report[name]["alarms"] = self.alarms(name, alarm_after, quantile, calibration, runs).tolist()
        return report

    def _thresholds_or_none(self, name: str, quantile: float, calibration: str) -> dict[str, float] | None:
        try:
            return self.thresholds(name, quantile, calibration)
        except DataError:
            return None

    def save(self, path: Path, quantile: float = metrics.DECISION_QUANTILE, calibration: str = "training") -> None:
        atomic_write_json(Path(path), self.to_dict(quantile, calibration))

    def write_scores(self, folder: Path, quantile: float = metrics.DECISION_QUANTILE,
                     calibration: str = "training") -> list[Path]:
        """The challenge's submission format, per model and ID: ``folder/<model>/anomaly_score_<machine>_id_<NN>.csv``
        (``file name,score`` per test clip, as the DCASE 2020 evaluator reads them; one team folder
        per model), then ``decision_result_<machine>_id_<NN>.csv`` (``file name,0|1``, 1 anomalous,
        as the DCASE 2021-2025 baselines write them)."""
        decisions = [("decision_result", name, [str(d) for d in self.decisions(name, quantile, calibration)])
                     for name in self.models]  # first: a missing threshold leaves no half-written folder
        columns = [("anomaly_score", name, [repr(float(s)) for s in model.scores])
                   for name, model in self.models.items()]
        return self._write_columns(folder, columns) + self._write_columns(folder, decisions)

    def calibrate(self, clips: list[Clip], progress: bool = True) -> None:
        """Score normal ``clips`` recorded apart from the training clips with every model, so that
        thresholds can be fitted to them (``calibration="calibration"``): clips the detectors have
        never seen, as many as one records, for every detector (PCA included)."""
        check_calibration_clips(clips, self.machine, list(self.id_index))
        self.warn_unlike(clips, "calibration clips")
        device = torch.device(self.device)
        fs = self.standardiser.transform(extract(clips, self.cfg.feature, home() / "features", progress,
                                                 f"{self.machine} calibration", device))
        for model in self.models.values():
            model.calibration_scores = _scored(model, self.cfg, self.id_index, fs, device)
        self.calibration_ids = fs.clip_ids

    def rescored(self, clips: list[Clip], progress: bool = True,
                 extracted: dict[FeatureConfig, FrameSet] | None = None) -> "Results":
        """The same trained detectors scoring other ``clips`` of their machine IDs, without training:
        a copy whose test set is ``clips``, with each detector's scores and, where the clips can be
        evaluated, its AUC/pAUC rows. The thresholds stay those of the training (or calibration)
        clips; the copy knows no faults (``synthetic`` None), as ``clips`` may come from other data.

        The frames are not cached on disk, as a monitoring system scores each clip once (cached,
        every clip scored would stay, 160 kB a ten-second clip): calls on the same ``clips`` share
        one dict as ``extracted`` (frames by feature config, filled here) to compute them once.
        """
        _check_trained_on(clips, self.machine, list(self.id_index), "the detectors were")
        self.warn_unlike(clips, "clips to score")
        feature, device = self.cfg.feature, torch.device(self.device)
        extracted = {} if extracted is None else extracted
        if feature not in extracted:
            extracted[feature] = extract(clips, feature, None, progress, f"{self.machine} clips", device)
        test, models = self.standardiser.transform(extracted[feature]), {}
        for name, model in self.models.items():
            start = time.perf_counter()
            scores = _scored(model, self.cfg, self.id_index, test, device)
            models[name] = replace(model, scores=scores, seconds=time.perf_counter() - start,
                                   rows=_rows(name, self.cfg, self.machine, test, scores))
        return replace(self, test=test, unique_ids=unique_ids(clips), models=models, synthetic=None)

    def warn_unlike(self, clips: list[Clip], what: str) -> None:
        """Warn if some of ``clips`` are far shorter or longer than the training clips, or were
        recorded at another sample rate."""
        _warn_unlike(clips, self.clip_seconds, self.clip_rate, what)

    def save_model(self, name: str, path: Path) -> None:
        """Detector ``name`` as one file, to score new clips of this machine later without training
        again (:func:`score_clips`): its config, the training standardiser, its trained weights (one
        set per ID with per-ID training) and its training clips' scores, which set the thresholds
        (and those of the calibration clips, if :meth:`calibrate` scored any)."""
        model = self.models[name]
        blob = {"format": MODEL_FORMAT, "name": name, "machine": self.machine, "data": self.data,
                "config": json.dumps(self.cfg.to_dict()),
                "mean": torch.from_numpy(self.standardiser.mean), "std": torch.from_numpy(self.standardiser.std),
                "weights": model.weights, "train_ids": self.train_ids.tolist(),
                "train_scores": torch.from_numpy(model.train_scores), "held_out": torch.from_numpy(model.held_out),
                "calibration_ids": self.calibration_ids.tolist(),
                "calibration_scores": torch.from_numpy(model.calibration_scores), "clip_seconds": self.clip_seconds,
                "clip_rate": self.clip_rate,
                "git_commit": git_commit(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        atomic_torch_save(Path(path), {**blob, "sha256": _digest(blob)})

    def _write_columns(self, folder: Path, columns: list[tuple[str, str, list[str]]]) -> list[Path]:
        paths, clip_ids = [], self.test.clip_ids
        for kind, name, values in columns:
            for mid in unique_ids(self.test.clips):
                text = io.StringIO()  # a recorder's name with a comma is quoted; release names never are
                csv.writer(text, lineterminator="\n").writerows(
                    (c.path.name, v) for c, v, i in zip(self.test.clips, values, clip_ids) if i == mid)
                path = Path(folder) / name / f"{kind}_{self.machine}_id_{mid}.csv"
                atomic_write_bytes(path, text.getvalue().encode())
                paths.append(path)
        return paths


MODEL_FORMAT = "asd-detector-1"  # the layout of a file written by Results.save_model
# What saved_results reads of it (clip_seconds and clip_rate aside: files saved before them score without)
MODEL_KEYS = ("name", "machine", "data", "config", "mean", "std", "weights", "train_ids", "train_scores", "held_out",
              "calibration_ids", "calibration_scores")


def _digest(value) -> str:
    """SHA-256 of a detector file's contents (dicts, lists, tensors, numbers, strings), key order aside."""
    h = hashlib.sha256()

    def walk(v) -> None:
        if isinstance(v, dict):
            for k in sorted(v):
                h.update(f"<{k}>".encode())
                walk(v[k])
        elif isinstance(v, (list, tuple)):
            h.update(f"[{len(v)}]".encode())
            for item in v:
                walk(item)
        elif isinstance(v, torch.Tensor):
            t = v.detach().cpu().contiguous()
            raw = t.view(torch.int16) if t.dtype == torch.bfloat16 else t  # numpy has no bfloat16
            h.update(f"{t.dtype}{tuple(t.shape)}".encode() + raw.numpy().tobytes())
        else:
            h.update(repr(v).encode())

    walk(value)
    return h.hexdigest()


def load_model(path: Path) -> dict:
    """The contents of a detector file written by :meth:`Results.save_model` (tensors only: safe to
    load), its ``path`` and its parsed config (``cfg``). One written by another asd version, or changed
    since it was written (its contents no longer match their SHA-256, saved with them), is a
    :class:`DataError`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such detector file (write one with asd run --save-models DIR)")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for files that are not its own
        raise DataError(f"{path}: not a detector file written by asd ({type(err).__name__})") from None
    if not isinstance(blob, dict) or blob.get("format") != MODEL_FORMAT:
        raise DataError(f"{path}: not a detector file of this asd version (format {MODEL_FORMAT})")
    again = "save it again with asd run --save-models DIR"
    if missing := [key for key in MODEL_KEYS if key not in blob]:
        raise DataError(f"{path}: written by another asd version (it has no {missing[0]}): {again}")
    if "sha256" in blob and _digest({k: v for k, v in blob.items() if k != "sha256"}) != blob["sha256"]:
        raise DataError(f"{path}: damaged or edited since it was written (its contents do not match their "
                        f"SHA-256): {again}")
    try:
        cfg = Config.from_dict(json.loads(blob["config"]))
    except (TypeError, ValueError, KeyError) as err:  # keys added or renamed since
        raise DataError(f"{path}: its config is not one this asd version reads ({type(err).__name__}: {err}): "
                        f"{again}") from None
    if "clip_seconds" not in blob:  # saved before asd recorded the training clips' length
        warnings.warn(f"{path}: saved without its training clips' length, by an earlier asd: the lengths of the "
                      "clips it scores are not checked (save it again with asd run --save-models to check them)",
                      stacklevel=2)
    return {**blob, "path": path, "cfg": cfg}


def saved_results(saved: dict, clips: list[Clip], device: str | None = None) -> Results:
    """A detector trained once and saved (``saved``: :func:`load_model`'s), ready to score ``clips``
    but not yet scoring them: its thresholds (:meth:`Results.thresholds`, from its stored training
    and calibration scores) can be checked before any work. A :class:`DataError` when it was not
    trained on the clips' machine IDs."""
    name, machine = saved["name"], saved["machine"]
    _check_trained_on(clips, machine, sorted(set(saved["train_ids"])), f"{saved['path']}: {name} was")
    cfg = saved["cfg"]
    std = Standardiser(saved["mean"].numpy(), saved["std"].numpy())
    model = ModelResult(name, [], np.zeros(0), {}, 0.0, saved["weights"], saved["train_scores"].numpy(),
                        saved["held_out"].numpy(), saved["calibration_scores"].numpy())
    none = FrameSet(np.zeros((0, cfg.feature.n_mels), np.float32), np.zeros(1, np.int64), [])
    return Results(cfg, machine, saved["data"], str(resolve_device(device)), none, np.array(saved["train_ids"]),
                   unique_ids(clips), models={name: model}, standardiser=std,
                   calibration_ids=np.array(saved["calibration_ids"], dtype=str),
                   clip_seconds=saved.get("clip_seconds"), clip_rate=saved.get("clip_rate"))  # older files lack them


def score_clips(saved: dict, clips: list[Clip], device: str | None = None, progress: bool = True,
                extracted: dict[FeatureConfig, FrameSet] | None = None) -> Results:
    """``clips`` scored by a detector trained once and saved (``saved``: :func:`load_model`'s).

    Their log-mel frames are standardised with the detector's training statistics; its thresholds
    (:meth:`Results.thresholds`) come from the scores saved with it (of its training clips, those it
    held out, or calibration clips), so :meth:`Results.decisions` flags clips as at training time.
    AUC/pAUC rows too where ``clips`` can be evaluated.
    ``Results.data`` names the data the detector was trained on. ``extracted`` as in
    :meth:`Results.rescored`: several detectors scoring the same ``clips`` compute their frames once.
    """
    return saved_results(saved, clips, device).rescored(clips, progress, extracted)


def check_calibration_clips(clips: list[Clip], machine: str, ids: list[str]) -> None:
    """A :class:`DataError` unless ``clips`` are normal recordings of trained ``ids`` (before any work)."""
    anomalous = [c for c in clips if c.label == 1]
    if anomalous:
        raise DataError(f"{anomalous[0].path}: an anomalous clip cannot calibrate a threshold for normal sound")
    _check_trained_on(clips, machine, ids, "calibration clips: the detectors were")


def _check_trained_on(clips: list[Clip], machine: str, ids: list[str], who: str) -> None:
    unknown = sorted(set(unique_ids(clips)) - set(ids))
    if unknown:
        first = next(c.path for c in clips if c.machine_id in unknown)
        raise DataError(f"{who} trained on {machine} ID(s) {', '.join(ids)}, not on {', '.join(unknown)}: "
                        f"no threshold for them; leave their clips out ({first}, ...)")


def _scored(model: ModelResult, cfg: Config, id_index: dict[str, int], fs: FrameSet,
            device: torch.device) -> np.ndarray:
    """The clips of ``fs`` scored by ``model``'s trained detector (with per-ID training, each clip by its ID's)."""
    scores = np.zeros(len(fs))
    for group in model.weights:
        sel = [i for i, c in enumerate(fs.clips) if group in ("all", c.machine_id)]
        if sel:
            scores[sel] = model.detector(cfg, id_index, device, group).score(fs.subset(sel))
    return scores


def _test_labels(root: Path, machine: str, ground_truth: Path | None,
                 require_labels: bool) -> tuple[dict[str, int] | None, Path | None]:
    """The labels of unlabelled test clips (the eval set as released) from ``ground_truth`` or an
    ``eval_data_list.csv`` in or beside ``root``, and the list they came from; None, None where the
    clips' names carry them."""
    if not (unlabelled := unlabelled_files(root, machine, "test")):
        if ground_truth is not None:
            warnings.warn(f"{ground_truth}: not used: the test clips' names carry their labels", stacklevel=2)
        return None, None
    ground_truth = ground_truth or find_ground_truth(root)
    if ground_truth is not None:
        return read_ground_truth(ground_truth, machine), ground_truth
    if require_labels:
        where = f"{Path(root) / machine / 'test'}: {len(unlabelled)} unlabelled test clips, e.g. {unlabelled[0].name}"
        if is_release(Path(root)):
            raise DataError(f"{where} (the eval set as released): pass --ground-truth LIST, or put {GROUND_TRUTH} "
                            f"in or beside {root}; or only score them (--scores-dir DIR)")
        raise DataError(f"{where}: score them and decide (--scores-dir DIR); for an AUC, give their labels "
                        f"(--ground-truth LIST, as the DCASE eval set's {GROUND_TRUTH})")
    return None, None


def _check_test_clips(folder: Path, train_clips: list, test_clips: list, require_labels: bool) -> None:
    """Before any work: the test clips can be evaluated (unless only scored), and each of their
    IDs has training clips."""
    if require_labels and (reasons := unevaluable(test_clips)):
        raise DataError(f"{folder}: cannot compute AUC ({'; '.join(reasons)}); "
                        "or only score the clips (--scores-dir DIR)")
    untested = sorted(set(unique_ids(train_clips)) - set(unique_ids(test_clips)))
    if require_labels and untested:  # else the average would quietly be over fewer IDs
        raise DataError(f"{folder}: no test clips of ID(s) {', '.join(untested)}, which have training clips: "
                        "leave them out (--ids) or add their test clips")
    if untested and test_clips and not unevaluable(test_clips):  # only scored, yet evaluated where it can be
        warnings.warn(f"{folder}: no test clips of ID(s) {', '.join(untested)}: the AUC table and its average "
                      f"are over ID(s) {', '.join(unique_ids(test_clips))} alone", stacklevel=3)
    missing = sorted(set(unique_ids(test_clips)) - set(unique_ids(train_clips)))
    if missing:
        raise DataError(f"{folder.parent}: test clips of ID(s) {', '.join(missing)} have no training clips")


@dataclass
class Selection:
    """The clips of one machine type that a run uses, checked before any features are extracted."""

    root: Path
    machine: str
    train: list[Clip]
    test: list[Clip]
    ids: list[str]  # the machine IDs used, sorted
    left_out: list[str]  # IDs found in the data but not used
    labels: dict[str, int] | None  # the labels of unlabelled-named test clips, from a list
    ground_truth: Path | None  # that list


def select_clips(cfg: Config, root: Path, machine: str | None = None, ids: list[str] | None = None,
                 ground_truth: Path | None = None, require_labels: bool = True,
                 max_train: int | None = None) -> Selection:
    """The train and test clips of ``root/machine`` that :func:`prepare` uses, checked.

    ``ids`` as in :func:`asd.data.select_ids`: default the report's IDs of the machine (those found).
    ``max_train`` keeps the first that many training clips of each ID by number
    (:func:`asd.data.first_per_id`): a smaller training set, tested on the same test clips.
    Unlabelled test clips (the eval set as released) take their labels from ``ground_truth``, by
    default an ``eval_data_list.csv`` in or beside ``root``. A stand-in that :func:`asd.synth.generate`
    left half-written is a :class:`DataError`. Test clips that cannot be evaluated
    (unlabelled without a list, or an ID without both normal and anomalous clips) are a
    :class:`DataError`, unless ``not require_labels``: then they are scored only (no AUC:
    :attr:`Results.evaluable` false), and a missing test folder means no test clips (train only).
    """
    machine = machine or cfg.machine
    if (half := synth.unfinished(root)) is not None:
        raise DataError(f"{half}: asd synth did not finish writing it (interrupted?): run asd synth {half} again")
    folder = Path(root) / machine / "test"
    trained_only = not folder.is_dir() or not folder_wavs(folder)  # no test clips (yet): train only
    if trained_only and require_labels and (Path(root) / machine / "train").is_dir():
        found = "no .wav clips" if folder.is_dir() else "folder not found"
        raise DataError(f"{folder}: {found} (expected <root>/<machine>/test/*.wav); "
                        "to train only, save the detectors (--save-models DIR)")
    labels, ground_truth = _test_labels(root, machine, ground_truth, require_labels)
    all_train = list_clips(root, machine, "train")
    tested = [] if trained_only else unique_ids(list_clips(root, machine, "test", unlabelled=True))
    found = sorted(set(unique_ids(all_train)) | set(tested))
    used = select_ids(found, ids, cfg.report_ids.get(machine))
    train_clips = [c for c in all_train if c.machine_id in used]
    if max_train is not None:
        train_clips = first_per_id(train_clips, max_train)
    test_ids = [mid for mid in used if mid in tested]  # labels are checked for the IDs used only
    test_clips = list_clips(root, machine, "test", test_ids, labels, not require_labels) if test_ids else []
    _check_test_clips(folder, train_clips, test_clips, require_labels)
    return Selection(Path(root), machine, train_clips, test_clips, unique_ids(train_clips),
                     [mid for mid in found if mid not in used], labels, ground_truth)


def extract_selection(cfg: Config, sel: Selection, cache_dir: Path | None = None, progress: bool = True,
                      device: torch.device | None = None) -> Prepared:
    """Log-mel frames of the selected clips, standardised with training statistics.

    The default ``torch`` feature backend batches clips through ``torch.stft`` (several times
    faster than librosa clip by clip, on the CPU too, and equal to librosa's values within
    float32 rounding)."""
    cache_dir = cache_dir if cache_dir is not None else home() / "features"
    train = extract(sel.train, cfg.feature, cache_dir, progress, f"{sel.machine} train", device)
    test = (extract(sel.test, cfg.feature, cache_dir, progress, f"{sel.machine} test", device) if sel.test
            else train.subset([]))
    std = Standardiser.fit(train.frames)
    key = cache_key(sel.train + sel.test, cfg.feature, device)
    if sel.labels is not None:  # the labels are not in the clips' names: they join the key
        key = hashlib.sha256(f"{key}|{sorted(sel.labels.items())}".encode()).hexdigest()[:24]
    return Prepared(std.transform(train), std.transform(test), std, sel.ids, key, sel.left_out)


def prepare(cfg: Config, root: Path, machine: str | None = None, ids: list[str] | None = None,
            cache_dir: Path | None = None, progress: bool = True, device: torch.device | None = None,
            ground_truth: Path | None = None, require_labels: bool = True,
            max_train: int | None = None) -> Prepared:
    """Log-mel frames of ``root/machine``'s train and test clips, standardised with training
    statistics: :func:`select_clips`, then :func:`extract_selection`."""
    sel = select_clips(cfg, root, machine, ids, ground_truth, require_labels, max_train)
    return extract_selection(cfg, sel, cache_dir, progress, device)


# The modules on the path from audio to score: a change to any of them changes results (a change
# to, say, the plots or the command line does not, and reuses cached results).
RESULT_MODULES = ("config", "data", "features", "models", "train", "detectors", "metrics", "experiment")


def results_hash(package: Path | None = None) -> str:
    """Hash of the source of :data:`RESULT_MODULES` (in ``package``, default :data:`PACKAGE`), so
    cached results never outlive a change to them."""
    return utils.source_hash(RESULT_MODULES, package or PACKAGE)


def _result_path(name: str, cfg: Config, prep: Prepared, device: torch.device, per_id: bool) -> Path:
    parts = [name, cfg.hash(), prep.key, device.type, str(per_id), results_hash(), torch.__version__, np.__version__]
    return home() / "results" / f"{name}-{hashlib.sha256('|'.join(parts).encode()).hexdigest()[:20]}.json"


def _save_result(path: Path, res: ModelResult) -> None:
    """The result as JSON, and the trained weights beside it (``.pt``); the JSON last, as the marker."""
    atomic_torch_save(path.with_suffix(".pt"), res.weights)
    blob = {"name": res.name, "rows": res.rows, "scores": res.scores.tolist(), "seconds": res.seconds,
            "histories": {k: vars(h) for k, h in res.histories.items()}, "train_scores": res.train_scores.tolist(),
            "held_out": res.held_out.tolist()}
    atomic_write_json(path, blob, indent=None)


def _load_result(path: Path) -> ModelResult:
    blob = json.loads(path.read_text())
    weights = torch.load(path.with_suffix(".pt"), map_location="cpu", weights_only=True)
    return ModelResult(blob["name"], blob["rows"], np.array(blob["scores"]),
                       {k: History(**h) for k, h in blob["histories"].items()}, blob["seconds"], weights,
                       np.array(blob["train_scores"]), np.array(blob["held_out"], dtype=bool))


def _cached(path: Path, cache: bool) -> ModelResult | None:
    return _load_result(path) if cache and path.exists() and path.with_suffix(".pt").exists() else None


def _rows(name: str, cfg: Config, machine: str, test: FrameSet, scores: np.ndarray) -> list[dict]:
    """The per-ID AUC/pAUC of ``scores`` of ``test``'s clips; none where they cannot be evaluated."""
    if unevaluable(test.clips):
        return []
    return metrics.per_id(name, machine, test.clip_ids, test.y_true, scores, cfg.max_fpr)


def _finish(name: str, cfg: Config, prep: Prepared, machine: str, scores: np.ndarray, train_scores: np.ndarray,
            held_out: np.ndarray, histories: dict[str, History], seconds: float, weights: dict, path: Path,
            cache: bool) -> ModelResult:
    """The per-ID AUC/pAUC of ``scores`` (if the test clips can be evaluated) as a :class:`ModelResult`,
    stored at ``path`` with ``cache``."""
    rows = _rows(name, cfg, machine, prep.test, scores)
    result = ModelResult(name, rows, scores, histories, seconds, weights, train_scores, held_out)
    if cache:
        _save_result(path, result)
    return result


def run_model(name: str, cfg: Config, prep: Prepared, device: torch.device, machine: str,
              per_id: bool = False, progress: bool = True, cache: bool = True) -> ModelResult:
    """Fit detector ``name`` (once, or once per ID), score the training and test clips, compute AUC/pAUC per ID.

    With ``cache``, a result is stored under ``$ASD_HOME/results`` keyed on the config, the
    clips, the device type and the package source, and reused by an identical later call.
    """
    path = _result_path(name, cfg, prep, device, per_id)
    if (cached := _cached(path, cache)) is not None:
        return cached
    start = time.perf_counter()
    groups = [[mid] for mid in prep.unique_ids] if per_id else [prep.unique_ids]
    scores, train_scores = np.zeros(len(prep.test)), np.zeros(len(prep.train))
    held_out = np.zeros(len(prep.train), bool)
    histories, weights = {}, {}
    for group in groups:
        key = group[0] if per_id else "all"
        train_sel = [i for i, c in enumerate(prep.train.clips) if c.machine_id in group]
        test_sel = [i for i, c in enumerate(prep.test.clips) if c.machine_id in group]
        detector = make(name, cfg, prep.id_index, device)
        histories[key] = detector.fit(prep.train.subset(train_sel), progress)
        scores[test_sel] = detector.score(prep.test.subset(test_sel))
        train_scores[train_sel] = detector.score(prep.train.subset(train_sel))
        held_out[np.asarray(train_sel, dtype=np.int64)[histories[key].held_out]] = True  # group's indices
        weights[key] = detector.state()
    return _finish(name, cfg, prep, machine, scores, train_scores, held_out, histories, time.perf_counter() - start,
                   weights, path, cache)


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
            todo.append((name, network(name, cfg, prep.id_index, device), path))

    def finish(i: int, history: History) -> None:
        name, detector, path = todo[i]
        start = time.perf_counter()
        scores, train_scores = detector.score(prep.test), detector.score(prep.train)
        held_out = np.zeros(len(prep.train), bool)
        held_out[history.held_out] = True
        seconds = history.seconds + time.perf_counter() - start
        results[name] = _finish(name, cfg, prep, machine, scores, train_scores, held_out, {"all": history}, seconds,
                                {"all": detector.state()}, path, cache)

    # the network with the most steps bounds the wall time: its stream goes first on the GPU
    work = [cfg.fit[name].epochs / cfg.fit[name].batch_size for name, _, _ in todo]
    priorities = [-1 if w == max(work) else 0 for w in work]
    fit_together([detector.fit_steps(prep.train, False) for _, detector, _ in todo], device, finish, priorities)
    return {name: results[name] for name in names}


def _warn_unlike(clips: list[Clip], seconds: float | None, rate: int | None, what: str) -> None:
    """Warn (at the caller's caller) if some of ``clips`` are far shorter or longer than ``seconds``,
    or were recorded at another sample rate than ``rate`` (either None: not checked)."""
    if seconds is not None and (message := unlike_lengths(clips, seconds, what)):
        warnings.warn(message, stacklevel=3)
    if rate is not None and (message := unlike_rates(clips, rate, what)):
        warnings.warn(message, stacklevel=3)


def seed_runs(cfg: Config, root: Path, models: list[str], seeds: list[int], progress: bool = True,
              **kwargs) -> list[Results]:
    """:func:`run` once per training seed on the same data and features: the seed sets the weights'
    initialisation, the validation split, the batches' order and the networks' sampling."""
    return [run(replace(cfg, seed=s), root, models, progress=False, **kwargs)
            for s in tqdm(seeds, desc="seeds", disable=not progress)]


def check_idclf(models: list[str], ids: list[str] | None = None, per_id: bool = False) -> None:
    """A :class:`DataError` if ``models`` hold the ID classifier and it cannot train: ``per_id`` (one ID
    at a time), or ``ids`` (None: not yet known) fewer than two IDs to tell apart."""
    if "idclf" not in models:
        return
    if per_id:
        raise DataError("idclf tells machine IDs apart: it cannot train per ID (--per-id; leave it out of the "
                        "models)")
    if ids is not None and len(ids) < 2:
        raise DataError(f"idclf tells machine IDs apart: it needs at least 2, the data has ID {ids[0]} "
                        "only (leave it out of the models)")


def run(cfg: Config, root: Path, models: list[str], machine: str | None = None, ids: list[str] | None = None,
        device: str | None = None, per_id: bool = False, progress: bool = True,
        data_label: str | None = None, cache: bool = True, concurrent: bool = False,
        ground_truth: Path | None = None, require_labels: bool = True, max_train: int | None = None) -> Results:
    """Train and evaluate ``models`` on ``root/machine`` and collect the per-ID results
    (``require_labels`` as in :func:`prepare`: false scores test clips that cannot be evaluated;
    ``max_train`` as in :func:`select_clips`: the first that many training clips of each ID):
    :func:`select_clips`, then :func:`run_selection`."""
    check_idclf(models, per_id=per_id)  # before any data is read
    sel = select_clips(cfg, root, machine, ids, ground_truth, require_labels, max_train)
    return run_selection(cfg, sel, models, device, per_id, progress, data_label, cache, concurrent)


def run_selection(cfg: Config, sel: Selection, models: list[str], device: str | None = None,
                  per_id: bool = False, progress: bool = True, data_label: str | None = None,
                  cache: bool = True, concurrent: bool = False) -> Results:
    """Train and evaluate ``models`` on the clips of ``sel`` (:func:`select_clips`).

    ``concurrent`` (CUDA only) trains the networks at the same time, one CUDA stream each, so that
    small networks' kernels overlap on the GPU (:func:`run_together`); PCA, and every detector
    with ``per_id``, train one after another.
    """
    check_idclf(models, sel.ids, per_id)  # before any features are extracted
    start = time.perf_counter()
    dev = resolve_device(device)
    usual, rate = float(np.median(durations(sel.train))), usual_rate(sel.train)
    for clips, what in ((sel.train, "training clips"), (sel.test, "test clips")):
        _warn_unlike(clips, usual, rate, what)
    prep = extract_selection(cfg, sel, progress=progress, device=dev)
    results = Results(cfg, sel.machine, data_label or describe_data(sel.root), str(dev), prep.test,
                      prep.train.clip_ids, prep.unique_ids, prep.left_out,
                      features_seconds=time.perf_counter() - start, standardiser=prep.standardiser,
                      synthetic=synth.read_marker(sel.root), clip_seconds=usual, clip_rate=rate)
    together = [name for name in models if name != "pca"] if concurrent and dev.type == "cuda" and not per_id else []
    results.concurrent = len(together) > 1
    trained = run_together(together, cfg, prep, dev, sel.machine, cache) if results.concurrent else {}
    for name in models:
        results.models[name] = (trained.get(name)
                                or run_model(name, cfg, prep, dev, sel.machine, per_id, progress, cache))
    results.wall_seconds = time.perf_counter() - start
    return results
