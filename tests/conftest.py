"""Shared fixtures: a private ASD_HOME per test, a tiny DCASE-layout dataset, the real clips.

The tiny dataset is built so that detectors must beat chance: every normal clip is noise plus
one tone whose frequency depends on the machine ID (with a little random jitter per clip), and
every anomalous clip adds a loud high-frequency tone that never occurs in training.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SR = 16000


def pytest_configure(config: pytest.Config) -> None:
    """One torch thread (override with ``ASD_TEST_THREADS``): the tests' matrices are tiny, and on a
    busy 2-core CI runner OpenMP threads that spin-wait for each other make a training step ~30x slower."""
    import torch

    torch.set_num_threads(int(os.environ.get("ASD_TEST_THREADS", "1")))


@pytest.fixture(autouse=True)
def _private_asd_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test writes caches under its own temporary ASD_HOME, never into ~/.cache."""
    from asd.config import ENVIRONMENT

    home = tmp_path_factory.mktemp("asd_home")
    # Hermetic: the profile, device and data come from the test, not from the caller's shell.
    for variable, _ in ENVIRONMENT.values():
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("ASD_HOME", str(home))
    return home


@pytest.fixture
def figure_headers(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The header (suptitle, one line) of every figure saved during the test, by file stem."""
    from matplotlib.figure import Figure

    headers, savefig = {}, Figure.savefig

    def spy(fig, path, **kwargs):
        headers[Path(path).stem] = " ".join(fig._suptitle.get_text().split())
        return savefig(fig, path, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    return headers


def clip_signal(machine_id: str, anomaly: bool, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """One synthetic clip: noise + an ID-specific tone (jittered); anomalies add a loud 5 kHz tone."""
    t = np.arange(int(round(seconds * SR))) / SR
    f0 = 300.0 + 250.0 * int(machine_id)
    f0 *= 1.0 + 0.01 * rng.uniform(-1, 1)
    y = 0.3 * (1.0 + 0.05 * rng.uniform(-1, 1)) * np.sin(2 * np.pi * f0 * t + rng.uniform(0, 2 * np.pi))
    y += 0.03 * rng.standard_normal(t.size)
    if anomaly:
        fa = 5000.0 * (1.0 + 0.02 * rng.uniform(-1, 1))
        y += 0.3 * np.sin(2 * np.pi * fa * t)
    return (y / 1.5).astype(np.float32)  # stays well inside [-1, 1] for 16-bit PCM


def write_dataset(root: Path, ids: Sequence[str] = ("00", "02"), n_train: int = 8, n_test_normal: int = 4,
                  n_test_anomaly: int = 4, seconds: float = 1.0, machine: str = "slider", seed: int = 0,
                  test_ids: Sequence[str] | None = None) -> Path:
    """Write ``<root>/<machine>/{train,test}/{normal,anomaly}_id_NN_NNNNNNNN.wav`` (16-bit, 16 kHz)."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    plan = [("train", "normal", mid, n_train) for mid in ids]
    for mid in ids if test_ids is None else test_ids:
        plan += [("test", "normal", mid, n_test_normal), ("test", "anomaly", mid, n_test_anomaly)]
    for split, label, mid, n in plan:
        folder = root / machine / split
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            y = clip_signal(mid, label == "anomaly", seconds, rng)
            sf.write(folder / f"{label}_id_{mid}_{i:08d}.wav", y, SR, subtype="PCM_16")
    return root


@pytest.fixture(scope="session")
def make_dataset() -> Callable[..., Path]:
    """Factory: ``make_dataset(tmp_path, ids=("00", "02"), n_train=8, ...)`` writes a tiny dataset, returns its root."""
    return write_dataset


SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # beside the checkout, not in it


def _clips_or_skip(path: Path, what: str) -> Path:
    if not path.is_dir() or not any(path.glob("*.wav")):
        pytest.skip(f"{what} not found at {path}")
    return path


@pytest.fixture
def real_dir() -> Path:
    """Real DCASE slider ID 00 training clips (shared/data), skipped where absent (a fresh clone)."""
    return _clips_or_skip(Path(os.environ.get("ASD_REAL_DATA", SHARED_DATA / "slider-id00-train-normal")),
                          "real slider clips")


@pytest.fixture
def mimii_dir() -> Path:
    """Real MIMII slider recordings, one normal and one abnormal per ID (shared/data), skipped where absent."""
    return _clips_or_skip(SHARED_DATA / "slider-mimii-0db", "real MIMII clips")
