"""The detectors beyond the report (pca, idnn, idclf) on tiny WAV datasets written to tmp_path.

conftest's dataset adds a tone to anomalous clips but keeps the ID's own tone, which an ID
classifier has no reason to notice; here an anomaly *shifts* the ID's tone instead, so every
detector, the ID classifier included, has something to find. ASD_HOME is a private temporary
folder per test (conftest).
"""
from __future__ import annotations

import json
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asd import cli
from asd.config import Config, FitConfig, get_config
from asd.data import Clip
from asd.detectors import (DETECTORS, IDClassifierDetector, NetworkDetector, PCADetector, halves, id_shift,
                           level_scores, make, n_kept, network, one_recording_shift, own_id_probability)
from asd.experiment import Prepared, prepare, run
from asd.features import FrameSet, Standardiser, gather_vectors
from asd.metrics import auc_pauc
from asd.models import IDNN, build

SR = 16000
TONES = {"00": 500.0, "02": 1300.0, "04": 3100.0}  # each ID hums at its own frequency
NEW = ("pca", "idnn", "idclf")
CPU = torch.device("cpu")


def _clip(rng: np.random.Generator, hz: float, seconds: float = 1.0) -> np.ndarray:
    """A tone with its harmonics and a random phase and level over a weak noise floor."""
    t = np.arange(int(SR * seconds)) / SR
    tone = sum(np.sin(2 * np.pi * k * hz * t + rng.uniform(0, 2 * np.pi)) / k for k in (1, 2, 3))
    return (rng.uniform(0.1, 0.2) * tone + 0.01 * rng.normal(size=t.size)).astype(np.float32)


def write_shifted_tones(root: Path, ids: tuple[str, ...] = tuple(TONES), n_train: int = 6, n_test: int = 4,
                        seed: int = 0) -> Path:
    """``root/slider/{train,test}``: normal clips hum at their ID's tone, anomalies 40 % higher."""
    rng = np.random.default_rng(seed)
    for mid in ids:
        plan = [("train", "normal", TONES[mid], i) for i in range(n_train)]
        plan += [("test", "normal", TONES[mid], i) for i in range(n_test)]
        plan += [("test", "anomaly", TONES[mid] * 1.4, i) for i in range(n_test)]
        for split, label, hz, i in plan:
            folder = root / "slider" / split
            folder.mkdir(parents=True, exist_ok=True)
            sf.write(folder / f"{label}_id_{mid}_{i:08d}.wav", _clip(rng, hz), SR, subtype="PCM_16")
    return root


def tiny_config(seed: int = 0) -> Config:
    """The quick profile with budgets for a few hundred vectors."""
    cfg = get_config("quick", seed=seed)
    return replace(cfg, fit={name: FitConfig(epochs=15, batch_size=64) for name in cfg.fit})


@pytest.fixture
def prep(tmp_path: Path) -> Prepared:
    return prepare(tiny_config(), write_shifted_tones(tmp_path / "data"), progress=False)


def _fit_score(name: str, prep: Prepared, seed: int = 0) -> np.ndarray:
    detector = make(name, tiny_config(seed), prep.id_index, CPU)
    history = detector.fit(prep.train, progress=False)
    assert history.seconds > 0
    return detector.score(prep.test)


def test_new_detectors_are_registered() -> None:
    assert set(NEW) <= set(DETECTORS)


@pytest.mark.parametrize("name", NEW)
def test_detector_separates_shifted_tones(name: str, prep: Prepared) -> None:
    scores = _fit_score(name, prep)
    assert scores.shape == (len(prep.test),)
    assert np.all(np.isfinite(scores))
    auc, _ = auc_pauc(prep.test.y_true, scores)
    assert auc > 0.8


@pytest.mark.parametrize("name", NEW)
def test_detector_is_deterministic(name: str, prep: Prepared) -> None:
    np.testing.assert_array_equal(_fit_score(name, prep), _fit_score(name, prep))


def test_pca_components_are_configurable(prep: Prepared) -> None:
    cfg = tiny_config()
    small = make("pca", replace(cfg, beyond=replace(cfg.beyond, pca_components=2)), prep.id_index, CPU)
    large = make("pca", replace(cfg, beyond=replace(cfg.beyond, pca_components=64)), prep.id_index, CPU)
    for unfitted in (small.state, lambda: small.score(prep.test)):
        with pytest.raises(RuntimeError, match="fit the PCA detector first"):
            unfitted()
    small.fit(prep.train, progress=False)
    large.fit(prep.train, progress=False)
    assert small.components.shape == (2, cfg.feature.dim)
    # A larger subspace holds the smaller one, so every vector's residual can only shrink.
    assert np.all(large.score(prep.test) <= small.score(prep.test) + 1e-9)


@pytest.mark.parametrize("fraction", [0.5, 0.75, 0.9, 0.99])
def test_pca_variance_fraction_keeps_what_scikit_learn_keeps(fraction: float) -> None:
    from sklearn.decomposition import PCA

    x = np.random.default_rng(0).normal(size=(500, 12)) * np.linspace(3, 0.5, 12)
    eigvals = np.linalg.eigvalsh(np.cov(x, rowvar=False))[::-1]
    assert n_kept(fraction, eigvals) == PCA(n_components=fraction, svd_solver="full").fit(x).n_components_
    # a fraction met exactly is not exceeded: one more component (eigenvalues 2, 1, 1: 2/4 = 0.5)
    assert n_kept(0.5, np.array([2.0, 1.0, 1.0])) == 2


def test_pca_subsamples_training_vectors(prep: Prepared) -> None:
    """Fitted on a seeded subsample of 100 vectors: the subspace has at most 99 dimensions (100
    centred points span no more), its centre is not the mean of all vectors, and refitting gives
    the same detector; without the cap, the centre is the mean of every training vector."""
    cfg = tiny_config()
    n_frames = cfg.feature.n_frames
    starts, _ = prep.train.vector_starts(n_frames)
    everything = gather_vectors(prep.train.frames, starts, n_frames).astype(np.float64)
    assert len(everything) > 200  # well over the cap: the full fit spans more than 99 dimensions

    def fitted(max_vectors: int):
        beyond = replace(cfg.beyond, pca_max_vectors=max_vectors, pca_components=0.99999)
        detector = make("pca", replace(cfg, beyond=beyond), prep.id_index, CPU)
        detector.fit(prep.train, progress=False)
        return detector

    sub, again, full = fitted(100), fitted(100), fitted(10**9)
    assert sub.components.shape[0] <= 99 < full.components.shape[0]
    np.testing.assert_array_equal(sub.components, again.components)
    np.testing.assert_allclose(full.mean, everything.mean(axis=0), atol=1e-9)
    assert not np.allclose(sub.mean, full.mean, atol=1e-3)


def test_idnn_reads_context_and_predicts_centre() -> None:
    n_mels, n_frames = 4, 5
    net = IDNN(n_mels, n_frames, hidden=8, bottleneck=2).eval()
    frame = torch.arange(n_frames, dtype=torch.float32).repeat_interleave(n_mels)  # frame t holds t
    context, centre = net.split(frame[None])
    assert torch.equal(centre, torch.full((1, n_mels), 2.0))
    assert torch.equal(context, torch.tensor([0.0, 1.0, 3.0, 4.0]).repeat_interleave(n_mels)[None])
    assert net(frame[None]).shape == (1, n_mels)


def test_idnn_ignores_the_centre_frame() -> None:
    torch.manual_seed(0)
    net = build("idnn", get_config("quick")).eval()
    x = torch.randn(3, net.n_mels * 5)
    changed = x.clone()
    changed[:, 2 * net.n_mels : 3 * net.n_mels] += 10.0
    assert torch.equal(net(x), net(changed))
    ids = torch.zeros(3, dtype=torch.long)
    assert torch.all(net.score(changed, ids) > net.score(x, ids))


def test_idnn_needs_a_centre_frame() -> None:
    with pytest.raises(ValueError, match="odd number of frames"):
        IDNN(n_mels=8, n_frames=4)


def test_idclf_score_is_negative_log_probability() -> None:
    torch.manual_seed(0)
    net = build("idclf", get_config("quick"), n_ids=3).eval()
    x, ids = torch.randn(16, 640), torch.randint(0, 3, (16,))
    expected = torch.nn.functional.cross_entropy(net(x), ids, reduction="none")
    torch.testing.assert_close(net.score(x, ids), expected)


def test_idclf_score_does_not_round_confident_vectors_to_zero() -> None:
    net = build("idclf", get_config("quick"), n_ids=3).eval()
    net.forward = lambda x: torch.tensor([[40.0, 0.0, 0.0]]).expand(len(x), 3)
    score = net.score(torch.zeros(2, 640), torch.zeros(2, dtype=torch.long))
    torch.testing.assert_close(score, torch.full((2,), 2 * np.exp(-40.0), dtype=torch.float32))


def test_idclf_with_one_id_raises(tmp_path: Path) -> None:
    prep = prepare(tiny_config(), write_shifted_tones(tmp_path / "one", ids=("00",)), progress=False)
    with pytest.raises(ValueError, match="at least 2 machine IDs"):
        make("idclf", tiny_config(), prep.id_index, CPU)


def test_idclf_per_id_training_raises(prep: Prepared) -> None:
    detector = make("idclf", tiny_config(), prep.id_index, CPU)
    one_id = [i for i, c in enumerate(prep.train.clips) if c.machine_id == "00"]
    with pytest.raises(ValueError, match="at least 2 machine IDs"):
        detector.fit(prep.train.subset(one_id), progress=False)


def test_run_refuses_idclf_per_id_before_reading_any_data(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot train per ID"):  # the folder does not exist: nothing was read
        run(tiny_config(), tmp_path / "nowhere", ["pca", "idclf"], per_id=True, progress=False)


def test_cli_runs_new_detectors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_shifted_tones(tmp_path / "data", n_train=3, n_test=2)
    argv = ["run", "--data", str(data), "--models", *NEW, "--epochs", "2", "--quiet", "--device", "cpu",
            "--out", str(tmp_path / "r.json")]
    assert cli.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    ids = sorted({r["id"] for r in rows})
    assert sorted((r["model"], r["id"]) for r in rows) == sorted((m, i) for m in NEW for i in ids)
    assert all(np.isfinite([r["auc"], r["pauc"]]).all() for r in rows)
    for name in NEW:  # the printed table shows each detector's row of the JSON
        line = next(ln for ln in lines if ln.split()[:1] == [name])
        assert line.split()[1:1 + len(ids)] == [f"{r['auc']:.3f}/{r['pauc']:.3f}" for r in rows if r["model"] == name]


def test_cli_rejects_idclf_per_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_shifted_tones(tmp_path / "data", n_train=3, n_test=2)
    argv = ["run", "--data", str(data), "--models", "idclf", "--per-id", "--epochs", "1", "--quiet"]
    assert cli.main(argv) == 2
    assert "idclf tells machine IDs apart: it cannot train per ID (--per-id" in capsys.readouterr().err


def test_halves_cut_every_clip_in_time(prep: Prepared) -> None:
    first, second = halves(prep.test)
    assert first.clips == second.clips == prep.test.clips
    lengths = np.diff(prep.test.offsets)
    assert np.array_equal(np.diff(first.offsets), lengths // 2)
    assert np.array_equal(np.diff(first.offsets) + np.diff(second.offsets), lengths)
    k = 1  # clip 1's frames are its first half followed by its second half
    whole = prep.test.frames[prep.test.offsets[k] : prep.test.offsets[k + 1]]
    parts = [fs.frames[fs.offsets[k] : fs.offsets[k + 1]] for fs in (first, second)]
    assert np.array_equal(np.concatenate(parts), whole)


def test_id_probes_see_a_shifted_tone_leave_its_id(prep: Prepared) -> None:
    """Normal clips hum at their ID's tone, anomalies 40 % higher, a tone no ID has: both probes
    keep the normal clips on their ID. A linear probe moves an anomaly off its ID when the shift
    points towards other IDs (00 and 02 move up, towards 04), not when it points away from them all
    (04 is the highest tone and moves higher still)."""
    shift = id_shift(prep.train, prep.test)
    one = one_recording_shift(prep.test)
    assert sorted(shift) == sorted(one) == sorted(TONES)
    for mid in TONES:
        (normal, anomalous), (held, anomalous_one, other) = shift[mid], one[mid]
        assert min(normal, held, other) > 0.9, mid
        assert (max(anomalous, anomalous_one) < 0.6) == (mid != "04"), mid


def test_one_recording_probe_needs_a_normal_clip_per_id(prep: Prepared) -> None:
    only_anomalies = prep.test.subset(np.flatnonzero(prep.test.y_true == 1))
    with pytest.raises(ValueError, match="normal clip"):
        one_recording_shift(only_anomalies)


def test_id_probe_refuses_unseen_ids_and_gives_nan_for_a_missing_kind(prep: Prepared) -> None:
    two_ids = prep.train.subset(np.flatnonzero(prep.train.clip_ids != "04"))
    with pytest.raises(ValueError, match="no training clips of test ID\\(s\\) 04"):
        id_shift(two_ids, prep.test)
    normal_only = prep.test.subset(np.flatnonzero(prep.test.y_true == 0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no empty-slice warning
        shift = id_shift(prep.train, normal_only)
    assert all(normal > 0.9 and np.isnan(anomalous) for normal, anomalous in shift.values())


def test_level_scores_rank_louder_clips_higher(tmp_path: Path) -> None:
    """Loudness alone: the same hum made 3 dB louder scores 3 dB higher, above every normal clip."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "data" / "slider"
    for split, label, gain, n in (("train", "normal", 1.0, 6), ("test", "normal", 1.0, 4), ("test", "anomaly", 1.41, 4)):
        (folder / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            clip = 0.1 * np.sin(2 * np.pi * 500 * np.arange(SR) / SR) + 0.01 * rng.normal(size=SR)
            sf.write(folder / split / f"{label}_id_00_{i:08d}.wav", (gain * clip).astype(np.float32), SR)
    prep = prepare(tiny_config(), tmp_path / "data", progress=False)
    scores = level_scores(prep.test, prep.standardiser)
    assert auc_pauc(prep.test.y_true, scores) == (1.0, 1.0)
    rise = np.median(scores[prep.test.y_true == 1]) - np.median(scores[prep.test.y_true == 0])
    assert rise == pytest.approx(20 * np.log10(1.41), abs=0.1)


def _frames(lengths: list[int], ids: list[str], n_mels: int, seed: int = 0, shift: float = 0.0) -> FrameSet:
    """Random frames of clips of ``lengths`` frames, one machine ID each."""
    rng = np.random.default_rng(seed)
    parts = [(rng.standard_normal((n, n_mels)) + shift).astype(np.float32) for n in lengths]
    clips = [Clip(Path(f"normal_id_{mid}_{i:08d}.wav"), "test", 0, mid, i) for i, mid in enumerate(ids)]
    return FrameSet.from_parts(parts, clips)


def _pca(n_mels: int, components: int, max_vectors: int | None = None) -> PCADetector:
    cfg = get_config("quick")
    beyond = replace(cfg.beyond, pca_components=components,
                     **({} if max_vectors is None else {"pca_max_vectors": max_vectors}))
    return PCADetector(replace(cfg, feature=replace(cfg.feature, n_mels=n_mels, n_frames=1), beyond=beyond))


def test_pca_scores_are_sklearns_reconstruction_error():
    """Centred on the training mean, projected on the largest components, the mean squared residual
    per dimension: as scikit-learn's PCA reconstructs."""
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(0)
    scale, offset = np.linspace(5, 0.2, 8), np.linspace(-30, 30, 8)
    x = rng.standard_normal((400, 8)) * scale + offset
    test = rng.standard_normal((50, 8)) * 3 + offset
    clip = [Clip(Path("normal_id_00_00000000.wav"), "train", 0, "00", 0)]
    det = _pca(8, 3)
    det.fit(FrameSet.from_parts([x.astype(np.float32)], clip))
    ref = PCA(3).fit(x)
    want = ((test - ref.inverse_transform(ref.transform(test))) ** 2).mean(axis=1)
    np.testing.assert_allclose(det.vector_scores(FrameSet.from_parts([test.astype(np.float32)], clip))[0], want,
                               rtol=1e-3)


def test_pca_subsample_is_drawn_from_every_clip():
    clips = _frames([200, 200], ["00", "00"], 4)
    clips = clips.with_frames(clips.frames + np.repeat([[0.0], [10.0]], 200, axis=0).astype(np.float32))
    det = _pca(4, 2, max_vectors=100)
    det.fit(clips)
    assert np.all(np.abs(det.mean - 5.0) < 2.0)  # the first 100 vectors alone would centre it near 0


def test_level_scores_by_hand_on_clips_of_unequal_length():
    fs = _frames([3, 7], ["00", "00"], 4)
    std = Standardiser(np.full(4, -40.0, np.float32), np.full(4, 5.0, np.float32))
    power = (10 ** (std.inverse(fs).frames.astype(np.float64) / 10)).sum(axis=1)  # summed over bands
    want = [10 * np.log10(power[:3].mean()), 10 * np.log10(power[3:].mean())]  # averaged over each clip's frames
    np.testing.assert_allclose(level_scores(fs, std), want, rtol=1e-6)


def test_the_id_probe_standardises_with_training_statistics():
    from sklearn.linear_model import LogisticRegression

    train = _frames([30, 30], ["00", "02"], 6, seed=1)
    train = train.with_frames(train.frames + np.repeat([[0.0], [1.0]], 30, axis=0).astype(np.float32))
    test = _frames([10, 10], ["00", "02"], 6, seed=2, shift=3.0)  # its own statistics would hide the shift
    std = Standardiser.fit(train.frames)
    clf = LogisticRegression(max_iter=500).fit(std.transform(train).frames, np.repeat(["00", "02"], 30))
    p = clf.predict_proba(std.transform(test).frames)
    np.testing.assert_allclose(own_id_probability(train, test), [p[:10, 0].mean(), p[10:, 1].mean()], rtol=1e-4)


def test_make_builds_every_detector_and_network_every_network() -> None:
    cfg, ids = tiny_config(), {"00": 0, "02": 1}
    assert type(make("pca", cfg, ids, CPU)) is PCADetector
    for name in (d for d in DETECTORS if d != "pca"):
        for det in (make(name, cfg, ids, CPU), network(name, cfg, ids, CPU)):
            assert type(det) is (IDClassifierDetector if name == "idclf" else NetworkDetector)
            assert det.name == name and type(det.model) is type(build(name, cfg, n_ids=len(ids)))
            assert det.id_index == ids and det.cfg is cfg
    with pytest.raises(ValueError, match="unknown network 'pca'"):
        network("pca", cfg, ids, CPU)
    with pytest.raises(ValueError, match="unknown network 'vae'"):
        make("vae", cfg, ids, CPU)
