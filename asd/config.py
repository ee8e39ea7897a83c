"""Typed configuration with the report's values as defaults, and the one place settings resolve.

Two profiles share one structure: ``full`` (the report's epochs and batch sizes, the real
DCASE 2020 slider counts; ``Config()`` is this one) and ``quick`` (fewer clips and epochs, so the
whole book runs on two CPU cores in minutes). Every setting that a command-line flag or an
environment variable can give resolves in :func:`setting`, in one order: the flag, then the
environment variable, then the default. Nothing is read at import time.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

PROFILES = ("quick", "full")
CLIP_SECONDS = 10  # the release's clips (and the stand-in's): what `asd cut` cuts recordings into

# setting name -> (environment variable, default); :func:`setting` resolves them.
ENVIRONMENT = {
    "profile": ("ASD_PROFILE", "quick"),
    "device": ("ASD_DEVICE", "auto"),
    "home": ("ASD_HOME", None),  # None: $XDG_CACHE_HOME/asd or ~/.cache/asd
    "data": ("ASD_DATA", None),  # None: the synthetic stand-in
    "eval_data": ("ASD_EVAL_DATA", None),
}


def setting(name: str, flag: str | None = None) -> str | None:
    """A setting's value: ``flag`` (a command-line value) if given, else its environment variable
    (:data:`ENVIRONMENT`) if set and not empty, else its default."""
    variable, default = ENVIRONMENT[name]
    if flag is not None:
        return flag
    return os.environ.get(variable) or default


NETWORKS = ("baseline", "batchnorm", "dropout", "sequential")  # the report's four networks
BEYOND_NETWORKS = ("idnn", "idclf")  # the networks beyond the report
DETECTORS = (*NETWORKS, "pca", *BEYOND_NETWORKS)
PAD_MODES = ("reflect", "constant")  # STFT edge padding: the report's librosa, and librosa >= 0.9's default
BACKENDS = ("torch", "librosa")  # log-mel computed in batches by torch.stft, or clip by clip by librosa


class FrozenDict(dict):
    """A dict that cannot change once made: the per-network settings inside a frozen config."""

    def _immutable(self, *args, **kwargs):
        raise TypeError("the config is immutable: make a changed copy with dataclasses.replace")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _immutable

    def __reduce__(self):  # copy, deepcopy and pickle rebuild it whole
        return FrozenDict, (dict(self),)

    def __hash__(self) -> int:  # so that a frozen config is hashable, as frozen dataclasses are
        return hash(frozenset(self.items()))


@dataclass(frozen=True)
class FeatureConfig:
    """Log-mel features as in the DCASE 2020 baseline, stacked into frame-context vectors."""

    sample_rate: int = 16000
    n_fft: int = 1024
    hop_length: int = 512
    n_mels: int = 128
    n_frames: int = 5
    power: float = 2.0
    # STFT edge padding: ``reflect`` is what the report's code (the DCASE 2020 baseline on
    # librosa 0.6/0.7) computed; librosa >= 0.9 pads with zeros (``constant``) by default.
    pad_mode: str = "reflect"
    # ``torch`` batches clips through ``torch.stft`` (on any device); ``librosa`` goes clip by clip.
    backend: str = "torch"

    def __post_init__(self) -> None:
        if self.pad_mode not in PAD_MODES:
            raise ValueError(f"pad_mode must be one of {', '.join(PAD_MODES)}, got {self.pad_mode!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")

    @property
    def dim(self) -> int:
        """Length of one stacked vector (640 for the defaults)."""
        return self.n_mels * self.n_frames


@dataclass(frozen=True)
class FitConfig:
    """Optimiser settings of one network (Adam, as in the report)."""

    epochs: int
    batch_size: int
    lr: float = 1e-3
    validation_split: float = 0.1  # the DCASE baseline's Keras ``validation_split``; 0 disables


@dataclass(frozen=True)
class NetConfig:
    """Architecture choices the report leaves open (explained in the networks chapter)."""

    hidden: int = 400
    latent: int = 20
    kl_weight: float = 1.0  # Baseline VAE loss = summed squared error + kl_weight * KL
    dropout: float = 0.2
    bottleneck: int = 8  # Sequential (DCASE baseline) bottleneck
    seq_hidden: int = 128


@dataclass(frozen=True)
class BeyondConfig:
    """Settings of the detectors that go beyond the report (PCA, IDNN, ID classifier)."""

    # An int is a number of components; a fraction in (0, 1) keeps the fewest components whose
    # explained share of the training variance exceeds it (scikit-learn's convention).
    pca_components: int | float = 0.9
    pca_max_vectors: int = 100_000  # seeded subsample of training vectors the PCA is fitted on
    idnn_hidden: int = 128
    idnn_bottleneck: int = 32
    idclf_hidden: int = 256
    idclf_dropout: float = 0.2


@dataclass(frozen=True)
class SplitCounts:
    """Clips per machine ID for one set (dev or eval)."""

    ids: tuple[str, ...]
    train: tuple[int, ...]
    test_normal: tuple[int, ...]
    test_anomaly: tuple[int, ...]

    def __post_init__(self) -> None:
        for name in ("train", "test_normal", "test_anomaly"):
            counts = getattr(self, name)
            if len(counts) != len(self.ids) or any(c < 0 for c in counts):
                raise ValueError(f"{name} {counts}: one clip count (>= 0) per ID of {self.ids} needed")


@dataclass(frozen=True)
class SynthConfig:
    """Size of the embedded synthetic slider dataset."""

    dev: SplitCounts
    eval: SplitCounts
    duration_s: float = float(CLIP_SECONDS)

    @classmethod
    def from_dict(cls, d: dict) -> "SynthConfig":
        """The config that ``asdict`` wrote (from JSON too: lists become tuples again)."""
        split = lambda s: SplitCounts(**{k: tuple(v) for k, v in s.items()})  # noqa: E731
        return cls(split(d["dev"]), split(d["eval"]), d["duration_s"])


FULL_FIT = {
    "baseline": FitConfig(epochs=100, batch_size=1000),
    "batchnorm": FitConfig(epochs=100, batch_size=512),
    "dropout": FitConfig(epochs=100, batch_size=512),
    "sequential": FitConfig(epochs=200, batch_size=256),
    "idnn": FitConfig(epochs=100, batch_size=512),
    "idclf": FitConfig(epochs=20, batch_size=512),
}
# The quick profile: the report's batch sizes, fewer epochs.
QUICK_EPOCHS = {"baseline": 30, "batchnorm": 15, "dropout": 15, "sequential": 15, "idnn": 10, "idclf": 15}
QUICK_FIT = {name: replace(fit, epochs=QUICK_EPOCHS[name]) for name, fit in FULL_FIT.items()}
# The machine IDs the report evaluated, per machine type; other IDs found are left out by default.
REPORT_IDS = {"slider": ("00", "02", "04")}
PRECISIONS = ("fp32", "bf16")
# Decisions (beyond the report, which ranks only): the DCASE 2021-2025 baselines flag a clip as
# anomalous when its score exceeds this quantile of a gamma distribution fitted to the scores of
# the normal training clips. Not part of Config: it changes no trained model or score.
DECISION_QUANTILE = 0.9
MIN_GAMMA_SCORES = 3  # the fewest normal clips per ID whose scores a gamma is fitted to
# Whose scores the gamma is fitted to: all training clips (the baselines' rule), only those a
# network held out from training (its validation clips), which it has never fitted, or normal
# calibration clips recorded apart from the training clips (``Results.calibrate``).
CALIBRATIONS = ("training", "held-out", "calibration")

FULL_SYNTH = SynthConfig(
    # The real slider dev set: IDs 00/02/04/06 (the report used 00/02/04: 2370 training clips).
    dev=SplitCounts(("00", "02", "04", "06"), (968, 968, 434, 434), (100, 100, 100, 100),
                    (356, 267, 178, 89)),
    # Eval: 2370 training and 834 test clips over IDs 01/03/05. The release's test clips are unlabelled;
    # 100 normal and 178 anomalous of each ID's 278 is the one split whose counts give the slider AUCs
    # the DCASE evaluator's README published (ID 01's 0.8836516853932583 is 15729 / (100 x 178)).
    eval=SplitCounts(("01", "03", "05"), (968, 968, 434), (100, 100, 100), (178, 178, 178)),
)
# Quick: few training clips; 50 normal test clips per ID (25 in eval), so that the pAUC's false-positive
# range up to 0.1 holds five normal clips, not one or two.
QUICK_SYNTH = SynthConfig(
    dev=SplitCounts(("00", "02", "04", "06"), (60, 60, 27, 27), (50, 50, 50, 50), (36, 27, 18, 9)),
    eval=SplitCounts(("01", "03", "05"), (30, 30, 14), (25, 25, 25), (18, 18, 18)),
)


@dataclass(frozen=True)
class Config:
    """Everything an experiment needs, grouped like the DCASE baseline's YAML."""

    profile: str = "full"
    machine: str = "slider"
    seed: int = 0
    spread_seeds: int = 3  # training seeds per network where the book measures the spread of a result
    max_fpr: float = 0.1
    precision: str = "fp32"  # "bf16": autocast to bfloat16 (weights stay fp32); the report used fp32
    report_ids: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(REPORT_IDS))
    feature: FeatureConfig = field(default_factory=FeatureConfig)
    net: NetConfig = field(default_factory=NetConfig)
    fit: dict[str, FitConfig] = field(default_factory=lambda: dict(FULL_FIT))
    synth: SynthConfig = FULL_SYNTH
    beyond: BeyondConfig = field(default_factory=BeyondConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fit", FrozenDict(self.fit))
        object.__setattr__(self, "report_ids", FrozenDict(self.report_ids))
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        """The config that :meth:`to_dict` wrote (from JSON too: lists become tuples again)."""
        return cls(**{**d, "report_ids": {k: tuple(v) for k, v in d["report_ids"].items()},
                      "feature": FeatureConfig(**d["feature"]), "net": NetConfig(**d["net"]),
                      "fit": {k: FitConfig(**v) for k, v in d["fit"].items()},
                      "synth": SynthConfig.from_dict(d["synth"]), "beyond": BeyondConfig(**d["beyond"])})

    def hash(self) -> str:
        """Short stable hash of every setting (for caches and recorded results)."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def with_epochs(self, epochs: int) -> "Config":
        """The same config with every network trained for ``epochs`` epochs."""
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        return replace(self, fit={k: replace(v, epochs=epochs) for k, v in self.fit.items()})


def get_config(profile: str | None = None, **overrides) -> Config:
    """The config of ``profile`` (resolved by :func:`setting`: ``$ASD_PROFILE``, else ``quick``), with
    field overrides."""
    given, profile = profile, setting("profile", profile)
    if profile not in PROFILES:
        source = "" if given is not None else " (from ASD_PROFILE)"
        raise ValueError(f"unknown profile {profile!r}{source}; choose one of {', '.join(PROFILES)}")
    if profile == "quick":
        base = Config(profile="quick", spread_seeds=5, fit=dict(QUICK_FIT), synth=QUICK_SYNTH)
    else:
        base = Config(profile="full")
    return replace(base, **overrides)


def home() -> Path:
    """Folder for generated data and caches: ``$ASD_HOME``, else ``$XDG_CACHE_HOME/asd`` or ``~/.cache/asd``."""
    chosen = setting("home")
    if chosen:
        return Path(chosen).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "asd"
