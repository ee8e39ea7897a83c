"""asd.experiment: preparation with training statistics, per-ID results, JSON, the result cache."""
from __future__ import annotations

import copy
import json
from dataclasses import replace

import numpy as np
import torch
import pytest
from sklearn.metrics import roc_auc_score

from pathlib import Path

import asd.detectors
import asd.experiment
from asd import metrics, reference, synth
from asd.config import SplitCounts, SynthConfig, get_config
from asd.data import UNLABELLED, DataError, clips_at, list_clips
from asd.detectors import NetworkDetector, PCADetector
from asd.experiment import (extract_selection, load_model, prepare, run, run_model, run_together, score_clips,
                            select_clips)
from asd.features import extract, stack


@pytest.fixture(scope="module")
def root(make_dataset, tmp_path_factory):
    """Two IDs, 8 training clips each (so a 10 % validation split leaves clips on both sides per ID)."""
    return make_dataset(tmp_path_factory.mktemp("experiment") / "data", ids=("00", "02"), n_train=8,
                        n_test_normal=4, n_test_anomaly=4, seconds=1.0)


@pytest.fixture
def cfg():
    return get_config("quick").with_epochs(2)


def test_prepare_standardises_with_training_statistics(root, cfg, _private_asd_home):
    prep = prepare(cfg, root, progress=False)
    assert prep.unique_ids == ["00", "02"] and prep.id_index == {"00": 0, "02": 1}
    raw_train = extract(list_clips(root, "slider", "train"), cfg.feature, None, progress=False)
    raw_test = extract(list_clips(root, "slider", "test"), cfg.feature, None, progress=False)
    mean = raw_train.frames.astype(np.float64).mean(axis=0)
    std = raw_train.frames.astype(np.float64).std(axis=0)
    np.testing.assert_allclose(prep.train.frames, (raw_train.frames - mean) / std, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(prep.test.frames, (raw_test.frames - mean) / std, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(prep.train.frames.mean(axis=0), 0, atol=1e-4)
    # the default feature cache lives under ASD_HOME
    cached = list((_private_asd_home / "features").glob("logmel-*.npz"))
    assert len(cached) == 2  # train and test


def test_prepare_with_ids(root, cfg):
    prep = prepare(cfg, root, ids=["02"], progress=False)
    assert prep.unique_ids == ["02"]
    assert set(prep.train.clip_ids) == set(prep.test.clip_ids) == {"02"}


def test_select_clips_checks_the_clips_before_extract_selection_reads_them(root, cfg, tmp_path, monkeypatch):
    def extract(*args, **kwargs):
        raise AssertionError("features extracted by the selection")

    with monkeypatch.context() as m:
        m.setattr("asd.experiment.extract", extract)
        sel = select_clips(cfg, root, ids=["02"])
    assert sel.ids == ["02"] and sel.left_out == ["00"] and sel.labels is None and sel.ground_truth is None
    assert sel.train == list_clips(root, "slider", "train", ["02"])
    assert sel.test == list_clips(root, "slider", "test", ["02"])
    prep = extract_selection(cfg, sel, tmp_path / "cache", progress=False)
    assert prep.unique_ids == ["02"] and prep.left_out == ["00"]
    assert len(prep.test.clip_ids) == len(sel.test)


def test_max_train_trains_on_each_ids_first_clips_and_tests_on_all(root, cfg):
    sel = select_clips(cfg, root, max_train=3)
    assert sel.train == [c for c in list_clips(root, "slider", "train") if c.index < 3]
    assert sel.test == list_clips(root, "slider", "test")
    few = run(cfg, root, ["pca"], progress=False, max_train=3)
    every = run(cfg, root, ["pca"], progress=False)
    assert few.to_dict()["train_clips"] == {"00": 3, "02": 3}
    assert every.to_dict()["train_clips"] == {"00": 8, "02": 8}
    assert few.test.clips == every.test.clips  # the same test clips, scored by another fit
    assert not np.array_equal(few.models["pca"].scores, every.models["pca"].scores)
    # the standardiser learnt the first clips' statistics only
    assert np.allclose(few.standardiser.mean, prepare(cfg, root, max_train=3, progress=False).standardiser.mean)
    assert not np.allclose(few.standardiser.mean, every.standardiser.mean)
    with pytest.raises(ValueError, match="at least 1 clip per ID"):
        select_clips(cfg, root, max_train=0)


def test_run_rows_match_sklearn_on_scores(root, cfg, tmp_path):
    res = run(cfg, root, ["sequential", "baseline"], device="cpu", progress=False)
    assert list(res.models) == ["sequential", "baseline"]
    y, ids = res.test.y_true, res.test.clip_ids
    for name, m in res.models.items():
        assert m.scores.shape == (len(res.test),) and np.all(np.isfinite(m.scores)) and np.all(m.scores > 0)
        assert [r["id"] for r in m.rows] == ["00", "02"]
        assert list(m.histories) == ["all"]
        for r in m.rows:
            sel = ids == r["id"]
            assert r["auc"] == pytest.approx(roc_auc_score(y[sel], m.scores[sel]), abs=1e-12)
            assert r["pauc"] == pytest.approx(roc_auc_score(y[sel], m.scores[sel], max_fpr=0.1), abs=1e-12)
            assert r["auc"] > 0.8  # the anomalies are loud and obvious
    out = tmp_path / "sub" / "results.json"
    res.save(out)
    blob = json.loads(out.read_text())
    assert blob["rows"] == res.rows
    assert blob["config_hash"] == cfg.hash() and blob["profile"] == "quick"
    assert blob["steps"] == {n: m.steps for n, m in res.models.items()}
    assert [p.name for p in out.parent.iterdir()] == ["results.json"]  # no temp files left
    lines = res.table().splitlines()  # the printed table shows the rows' numbers, each model on its line
    for name in res.models:
        cells = [f"{r['auc']:.3f}/{r['pauc']:.3f}" for r in res.rows if r["model"] == name]
        line = next(ln for ln in lines if ln.split()[:1] == [name])
        assert line.split()[1:1 + len(cells)] == cells


def test_run_per_id_trains_one_model_per_id(root, cfg):
    res = run(cfg, root, ["sequential"], device="cpu", per_id=True, progress=False)
    m = res.models["sequential"]
    assert list(m.histories) == ["00", "02"]
    # per ID: 8 clips, 1 held out for validation, 7 * 28 vectors, one batch of 256 per epoch
    assert all(h.steps == 2 * 1 for h in m.histories.values())
    assert np.all(m.scores > 0)


def test_run_result_cache(root, cfg, monkeypatch, _private_asd_home):
    first = run(cfg, root, ["sequential"], device="cpu", progress=False)
    assert len(list((_private_asd_home / "results").glob("sequential-*.json"))) == 1

    def boom(*args, **kwargs):
        raise AssertionError("a detector was built although the result is cached")

    monkeypatch.setattr(asd.experiment, "make", boom)
    again = run(cfg, root, ["sequential"], device="cpu", progress=False)
    assert again.rows == first.rows
    np.testing.assert_allclose(again.models["sequential"].scores, first.models["sequential"].scores)
    assert again.models["sequential"].steps == first.models["sequential"].steps
    with pytest.raises(AssertionError, match="was built"):
        run(cfg, root, ["sequential"], device="cpu", progress=False, cache=False)
    with pytest.raises(AssertionError, match="was built"):  # another config is another result
        run(cfg.with_epochs(3), root, ["sequential"], device="cpu", progress=False)


def test_run_is_reproducible_without_cache(root, cfg):
    a = run(cfg, root, ["dropout"], device="cpu", progress=False, cache=False)
    b = run(cfg, root, ["dropout"], device="cpu", progress=False, cache=False)
    np.testing.assert_array_equal(a.models["dropout"].scores, b.models["dropout"].scores)


def test_run_missing_data(tmp_path, cfg):
    with pytest.raises(DataError, match="folder not found"):
        run(cfg, tmp_path, ["sequential"], device="cpu", progress=False)


def test_test_ids_without_training_clips_are_refused(make_dataset, tmp_path, cfg):
    root = make_dataset(tmp_path / "data", ids=("00", "02"), test_ids=("00", "02", "04"), n_train=8,
                        n_test_normal=3, n_test_anomaly=3, seconds=1.0)
    for ids in (None, ["04"]):  # the ID alone too: named, not "no clips to extract"
        with pytest.raises(DataError, match="ID\\(s\\) 04 have no training clips"):
            run(cfg, root, ["sequential"], ids=ids, device="cpu", progress=False)


def test_result_cache_keys_on_the_modules_from_audio_to_score(tmp_path, monkeypatch):
    """Editing plots.py, tables.py, reference.py or cli.py keeps the key (results reused); editing models.py
    changes it."""
    import shutil

    copy = tmp_path / "asd"
    shutil.copytree(Path(asd.experiment.__file__).parent, copy)
    before = asd.experiment.results_hash(copy)
    (copy / "plots.py").write_text((copy / "plots.py").read_text() + "\n# a label edit\n")
    (copy / "cli.py").write_text((copy / "cli.py").read_text() + "\n# a help-text edit\n")
    (copy / "tables.py").write_text((copy / "tables.py").read_text() + "\n# a table-style edit\n")
    (copy / "reference.py").write_text((copy / "reference.py").read_text() + "\n# a quoted number corrected\n")
    assert asd.experiment.results_hash(copy) == before
    (copy / "models.py").write_text((copy / "models.py").read_text() + "\n# a model edit\n")
    assert asd.experiment.results_hash(copy) != before
    assert asd.experiment.results_hash() == asd.experiment.results_hash(Path(asd.experiment.__file__).parent)


def test_cached_results_survive_a_plot_edit_not_a_model_edit(root, cfg, monkeypatch, tmp_path):
    import shutil

    copy = tmp_path / "asd"
    shutil.copytree(Path(asd.experiment.__file__).parent, copy)
    monkeypatch.setattr(asd.experiment, "PACKAGE", copy)
    first = run(cfg, root, ["pca"], device="cpu", progress=False)
    (copy / "plots.py").write_text((copy / "plots.py").read_text() + "\n# a label edit\n")

    def boom(*args, **kwargs):
        raise AssertionError("a detector was built although the result is cached")

    monkeypatch.setattr(asd.experiment, "make", boom)
    assert run(cfg, root, ["pca"], device="cpu", progress=False).rows == first.rows
    (copy / "models.py").write_text((copy / "models.py").read_text() + "\n# a model edit\n")
    with pytest.raises(AssertionError, match="was built"):
        run(cfg, root, ["pca"], device="cpu", progress=False)


@pytest.mark.parametrize("name", ["sequential", "pca"])
def test_cache_keeps_the_trained_weights(root, cfg, name, monkeypatch):
    """A cached result rebuilds its trained detector, which scores the test clips as the run did."""
    first = run(cfg, root, [name], device="cpu", progress=False)
    prep = prepare(cfg, root, progress=False)
    again = run(cfg, root, [name], device="cpu", progress=False).models[name]  # from the cache
    for result in (first.models[name], again):
        restored = result.detector(cfg, prep.id_index)
        np.testing.assert_allclose(restored.score(prep.test), first.models[name].scores, rtol=1e-6)
    fresh = asd.experiment.make(name, cfg, prep.id_index, torch.device("cpu"))
    if name != "pca":  # an untrained network scores differently
        assert not np.allclose(fresh.score(prep.test), first.models[name].scores)


def test_seed_runs_train_each_seed_on_the_same_data(root, cfg) -> None:
    runs = asd.experiment.seed_runs(cfg, root, ["sequential"], [0, 1], device="cpu", progress=False, cache=False)
    assert [r.cfg.seed for r in runs] == [0, 1]
    first, second = (r.models["sequential"] for r in runs)
    assert [c.path for c in runs[0].test.clips] == [c.path for c in runs[1].test.clips]
    assert not np.allclose(first.scores, second.scores)  # another seed, another network
    again = run(cfg, root, ["sequential"], device="cpu", progress=False, cache=False)
    np.testing.assert_allclose(again.models["sequential"].scores, first.scores, rtol=1e-5)


def test_run_together_matches_run_model_and_caches(root, cfg, _private_asd_home):
    """Networks trained at once (on the CPU: interleaved epochs) give each one's own result; the
    sequential net draws no random numbers while training, so its scores are those of training alone."""
    dev = torch.device("cpu")
    prep = prepare(cfg, root, progress=False)
    together = run_together(["sequential", "dropout"], cfg, prep, dev, "slider")
    assert list(together) == ["sequential", "dropout"]
    alone = run_model("sequential", cfg, prep, dev, "slider", progress=False, cache=False)
    np.testing.assert_array_equal(together["sequential"].scores, alone.scores)
    assert together["sequential"].rows == alone.rows
    assert together["dropout"].histories["all"].steps == together["dropout"].steps > 0
    again = run_together(["dropout", "sequential"], cfg, prep, dev, "slider")  # from the cache
    assert again["dropout"].seconds == together["dropout"].seconds


def test_run_together_keeps_the_networks_that_finished(root, cfg, monkeypatch, _private_asd_home):
    """A run cut short (here: a failure after the short job) keeps the finished network's result."""
    dev = torch.device("cpu")
    cfg = replace(cfg, fit={**cfg.fit, "sequential": replace(cfg.fit["sequential"], epochs=1),
                            "baseline": replace(cfg.fit["baseline"], epochs=3)})
    prep = prepare(cfg, root, progress=False)
    real_score = asd.detectors.NetworkDetector.score

    def score(self, test):
        if self.name == "baseline":
            raise KeyboardInterrupt("stopped")
        return real_score(self, test)

    monkeypatch.setattr(asd.detectors.NetworkDetector, "score", score)
    with pytest.raises(KeyboardInterrupt):
        run_together(["baseline", "sequential"], cfg, prep, dev, "slider")
    monkeypatch.setattr(asd.experiment, "make", lambda *a, **k: pytest.fail("the finished network was retrained"))
    kept = run_together(["sequential"], cfg, prep, dev, "slider")
    assert kept["sequential"].histories["all"].steps > 0


def test_training_clips_are_scored_by_the_trained_model_and_set_the_thresholds(root, cfg):
    from asd.metrics import decision_threshold

    prep = prepare(cfg, root, progress=False)
    for per_id in (False, True):
        res = run(cfg, root, ["sequential", "pca"], device="cpu", progress=False, per_id=per_id)
        assert res.train_ids.tolist() == prep.train.clip_ids.tolist()
        for name, m in res.models.items():
            assert m.train_scores.shape == (len(prep.train),) and np.all(m.train_scores > 0)
            for group in m.weights:  # each trained model scores its own training clips again alike
                sel = [i for i, c in enumerate(prep.train.clips) if group in ("all", c.machine_id)]
                again = m.detector(cfg, prep.id_index, group=group).score(prep.train.subset(sel))
                np.testing.assert_allclose(m.train_scores[sel], again, rtol=1e-5)
            limits = res.thresholds(name)
            assert limits == {mid: decision_threshold(m.train_scores[res.train_ids == mid]) for mid in ("00", "02")}
            assert res.decisions(name).tolist() == [int(s > limits[i]) for i, s in zip(res.test.clip_ids, m.scores)]
            d, ids = res.decisions(name), res.test.clip_ids  # one flagged clip raises: each run's first
            assert res.alarms(name, 1).tolist() == [
                int(d[i] == 1 and (i == 0 or ids[i - 1] != ids[i] or d[i - 1] == 0)) for i in range(len(d))]
        cached = run(cfg, root, ["sequential", "pca"], device="cpu", progress=False, per_id=per_id)
        for name, m in res.models.items():
            np.testing.assert_array_equal(cached.models[name].train_scores, m.train_scores)
    # every anomaly in this data carries a loud tone that no training clip has
    rows = res.decision_rows()
    assert {(r["model"], r["id"]) for r in rows} == {(m, i) for m in ("sequential", "pca") for i in ("00", "02")}
    assert all(r["recall"] == 1.0 for r in rows), rows


def test_test_clips_that_cannot_be_evaluated_are_refused_before_any_work_or_only_scored(
        make_dataset, tmp_path, cfg, monkeypatch):
    root = make_dataset(tmp_path / "data", ids=("00", "02"), n_train=8, n_test_normal=3, n_test_anomaly=0,
                        seconds=1.0)
    with monkeypatch.context() as m:
        m.setattr(asd.experiment, "extract", lambda *a, **k: pytest.fail("features extracted"))
        with pytest.raises(DataError, match="ID 00: 3 normal and 0 anomalous clips \\(AUC needs both\\)"):
            run(cfg, root, ["pca"], device="cpu", progress=False)
    res = run(cfg, root, ["pca", "sequential"], device="cpu", progress=False, require_labels=False)
    assert not res.evaluable and res.rows == []
    assert all(m.scores.shape == (6,) and np.all(np.isfinite(m.scores)) for m in res.models.values())
    assert set(res.thresholds("pca")) == {"00", "02"}
    with pytest.raises(ValueError, match="cannot be evaluated: ID 00: 3 normal and 0 anomalous"):
        res.decision_rows()


def test_held_out_calibration_uses_the_validation_clips_of_each_network(make_dataset, tmp_path, cfg):
    from asd.metrics import decision_threshold
    from asd.train import split_clips

    root = make_dataset(tmp_path / "data", ids=("00", "02"), n_train=30, n_test_normal=3, n_test_anomaly=3,
                        seconds=1.0)
    prep = prepare(cfg, root, progress=False)
    _, val = split_clips(prep.train.clip_ids, cfg.fit["sequential"].validation_split, cfg.seed)
    for per_id in (False, True):
        res = run(cfg, root, ["sequential", "pca"], device="cpu", progress=False, per_id=per_id)
        seq = res.models["sequential"]
        expected = val if not per_id else np.concatenate([  # per ID, each group's own split
            np.flatnonzero(prep.train.clip_ids == mid)[split_clips(np.zeros(30), 0.1, cfg.seed)[1]]
            for mid in ("00", "02")])
        assert np.flatnonzero(seq.held_out).tolist() == sorted(expected.tolist())
        assert {mid: int(np.sum(seq.held_out & (res.train_ids == mid))) for mid in ("00", "02")} == {"00": 3, "02": 3}
        limits = res.thresholds("sequential", calibration="held-out")
        for mid in ("00", "02"):
            mine = seq.held_out & (res.train_ids == mid)
            assert limits[mid] == decision_threshold(seq.train_scores[mine])
        assert res.thresholds("sequential") != limits  # all training clips give other thresholds
        assert not res.models["pca"].held_out.any()
        with pytest.raises(DataError, match="pca: no held-out decision threshold"):
            res.thresholds("pca", calibration="held-out")
    with pytest.raises(ValueError, match="calibration must be one of"):
        res.thresholds("sequential", calibration="test")


@pytest.mark.parametrize("name,per_id", [("pca", False), ("sequential", True), ("idclf", False)])
def test_vector_scores_say_when_in_a_clip_a_detector_is_surprised(root, cfg, name, per_id):
    res = run(cfg, root, [name], device="cpu", progress=False, per_id=per_id)
    for i in (0, len(res.test) - 1):  # clips of two IDs: with per-ID training, each by its ID's network
        errors = res.vector_scores(name, i)
        assert len(errors) == res.test.vector_counts(cfg.feature.n_frames)[i]
        assert errors.mean() == pytest.approx(res.models[name].scores[i], rel=1e-5)
        if name == "sequential":  # in time order: the network's error on each stacked vector, by hand
            net = res.models[name].detector(cfg, res.id_index, group=res.test.clips[i].machine_id).model
            x = torch.from_numpy(stack(res.test.subset([i]).frames, cfg.feature.n_frames))
            with torch.no_grad():
                by_hand = ((net(x) - x) ** 2).mean(dim=1).numpy()
            np.testing.assert_allclose(errors, by_hand, rtol=1e-5)


def test_scored_clips_leave_no_frames_on_disk_and_detectors_can_share_them(
        root, cfg, tmp_path, monkeypatch, _private_asd_home):
    res = run(cfg, root, ["pca", "sequential"], device="cpu", progress=False)
    for name in res.models:
        res.save_model(name, tmp_path / f"{name}.pt")
    cached = set((_private_asd_home / "features").glob("*"))
    clips = list_clips(root, "slider", "test")
    alone = {name: score_clips(load_model(tmp_path / f"{name}.pt"), clips, "cpu", False).models[name].scores
             for name in res.models}
    assert set((_private_asd_home / "features").glob("*")) == cached  # nothing written for the scored clips
    calls = []
    monkeypatch.setattr(asd.experiment, "extract", lambda *a, **k: calls.append(1) or extract(*a, **k))
    shared = {}
    for name in res.models:
        scored = score_clips(load_model(tmp_path / f"{name}.pt"), clips, "cpu", False, extracted=shared)
        np.testing.assert_array_equal(scored.models[name].scores, alone[name])
    assert len(calls) == 1 and list(shared) == [cfg.feature]


@pytest.mark.parametrize("name,per_id", [("sequential", False), ("pca", True), ("idclf", False)])
def test_a_saved_detector_scores_clips_as_its_run_did_without_training(root, cfg, tmp_path, name, per_id,
                                                                       monkeypatch):
    res = run(cfg, root, [name], device="cpu", progress=False, per_id=per_id)
    res.save_model(name, tmp_path / f"{name}.pt")
    monkeypatch.setattr(NetworkDetector, "fit_steps", lambda *a, **k: pytest.fail("trained again"))
    monkeypatch.setattr(PCADetector, "fit", lambda *a, **k: pytest.fail("trained again"))
    clips = list_clips(root, "slider", "test")[::-1]  # any order
    again = score_clips(load_model(tmp_path / f"{name}.pt"), clips, "cpu", progress=False)
    order = [res.test.clips.index(c) for c in clips]
    np.testing.assert_allclose(again.models[name].scores, res.models[name].scores[order], rtol=1e-5)
    assert again.rows == res.rows and again.cfg == res.cfg
    for field_name in ("train_scores", "held_out"):  # what both calibrations fit thresholds to
        np.testing.assert_array_equal(getattr(again.models[name], field_name), getattr(res.models[name], field_name))
    assert again.thresholds(name, 0.8) == res.thresholds(name, 0.8)
    assert again.decisions(name, 0.8).tolist() == res.decisions(name, 0.8)[order].tolist()
    np.testing.assert_array_equal(again.standardiser.mean, res.standardiser.mean)
    # unlabelled clips of one ID only: scored and decided, not evaluated
    one = [c for c in clips if c.machine_id == "02"]
    unlabelled = score_clips(load_model(tmp_path / f"{name}.pt"), [replace(c, label=UNLABELLED) for c in one], "cpu",
                             False)
    assert unlabelled.unique_ids == ["02"] and not unlabelled.evaluable and unlabelled.rows == []
    reversed_02_first = again.models[name].scores[:len(one)]
    np.testing.assert_allclose(unlabelled.models[name].scores, reversed_02_first, rtol=1e-5)


def test_a_saved_detector_refuses_what_it_cannot_score(root, cfg, make_dataset, tmp_path):
    res = run(cfg, root, ["pca"], device="cpu", progress=False)
    res.save_model("pca", tmp_path / "pca.pt")
    other = make_dataset(tmp_path / "other", ids=("04",), n_train=1, n_test_normal=1, n_test_anomaly=1, seconds=1.0)
    with pytest.raises(DataError, match=r"pca was trained on slider ID\(s\) 00, 02, not on 04"):
        score_clips(load_model(tmp_path / "pca.pt"), list_clips(other, "slider", "test"), "cpu", False)
    with pytest.raises(DataError, match="no such detector file"):
        load_model(tmp_path / "missing.pt")
    (tmp_path / "notes.pt").write_text("not a model")
    with pytest.raises(DataError, match="notes.pt: not a detector file written by asd"):
        load_model(tmp_path / "notes.pt")
    torch.save({"weights": {}}, tmp_path / "other.pt")
    with pytest.raises(DataError, match="other.pt: not a detector file of this asd version"):
        load_model(tmp_path / "other.pt")
    # a file saved before the training clips' length was recorded: scored, with a warning that says so
    blob = torch.load(tmp_path / "pca.pt", weights_only=True)
    older = {k: v for k, v in blob.items() if k not in ("clip_seconds", "sha256")}
    torch.save(older, tmp_path / "older.pt")
    with pytest.warns(UserWarning, match="older.pt: saved without its training clips' length.* not checked"):
        saved = load_model(tmp_path / "older.pt")
    clips = list_clips(root, "slider", "test")
    assert score_clips(saved, clips, "cpu", False).models["pca"].scores == pytest.approx(
        score_clips(load_model(tmp_path / "pca.pt"), clips, "cpu", False).models["pca"].scores)
    # another version's file, or one changed since: one line each, never a traceback or quiet NaN scores
    again = "save it again with asd run --save-models"
    torch.save({k: v for k, v in blob.items() if k != "calibration_ids"}, tmp_path / "v0.pt")
    with pytest.raises(DataError, match=f"v0.pt: written by another asd version .it has no calibration_ids.: {again}"):
        load_model(tmp_path / "v0.pt")
    damaged = copy.deepcopy(blob)
    damaged["weights"]["all"]["components"].view(torch.int32)[0, :16] ^= 0x7F800000  # flipped exponent bits
    edited = {**blob, "config": blob["config"].replace('"n_mels": 128', '"n_mels": 64')}
    foreign = {k: v for k, v in edited.items() if k != "sha256"} | {
        "config": blob["config"].replace('"max_fpr"', '"fpr_max"')}  # a key renamed, no digest to catch it
    for name, changed, why in (("damaged", damaged, "damaged or edited"), ("edited", edited, "damaged or edited"),
                               ("foreign", foreign, "its config is not one this asd version reads")):
        torch.save(changed, tmp_path / f"{name}.pt")
        with pytest.raises(DataError, match=f"{name}.pt: {why}.*{again}"):
            load_model(tmp_path / f"{name}.pt")


def test_clips_recorded_at_another_rate_than_the_training_clips_are_named(make_dataset, tmp_path, cfg):
    import soundfile as sf

    root = make_dataset(tmp_path / "plant", ids=("00",), n_train=4, seconds=1.0, test_ids=())
    res = run(cfg, root, ["pca"], device="cpu", progress=False, require_labels=False)
    res.save_model("pca", tmp_path / "pca.pt")
    saved = load_model(tmp_path / "pca.pt")
    assert saved["clip_rate"] == 16000  # as the training clips were written
    (tmp_path / "new").mkdir()
    y, sr = sf.read(next((root / "slider" / "train").glob("*.wav")))
    sf.write(tmp_path / "new" / "id_00_00000000.wav", y, sr)
    sf.write(tmp_path / "new" / "id_00_00000001.wav", np.repeat(y, 3), 3 * sr)  # 48 kHz: the same sound
    with pytest.warns(UserWarning, match="clips at 48000 Hz are resampled to 16000 Hz"), \
         pytest.warns(UserWarning, match=r"1 of 2 clips to score were not recorded at 16000 Hz, as the training "
                                         r"clips were, e\.g\. id_00_00000001\.wav \(48000 Hz\)"):
        score_clips(saved, clips_at([tmp_path / "new"]), "cpu", progress=False)


def test_calibration_clips_set_every_detectors_thresholds(root, cfg, make_dataset, tmp_path):
    from asd.metrics import thresholds

    res = run(cfg, root, ["sequential", "pca"], device="cpu", progress=False)
    with pytest.raises(DataError, match="pca: no calibration decision threshold for any ID: no calibration clips"):
        res.thresholds("pca", calibration="calibration")
    # normal recordings made apart from the training clips: another draw of the same machines
    other = make_dataset(tmp_path / "later", ids=("00", "02"), n_train=5, n_test_normal=1, n_test_anomaly=1,
                         seconds=1.0, seed=7)
    normal = list_clips(other, "slider", "train")
    res.calibrate(normal, progress=False)
    assert res.calibration_ids.tolist() == ["00"] * 5 + ["02"] * 5
    for name, model in res.models.items():
        res.save_model(name, tmp_path / f"{name}.pt")
        alone = score_clips(load_model(tmp_path / f"{name}.pt"), normal, "cpu", progress=False)
        np.testing.assert_allclose(model.calibration_scores, alone.models[name].scores, rtol=1e-5)
        limits = res.thresholds(name, 0.8, "calibration")
        assert limits == thresholds(res.calibration_ids, model.calibration_scores, 0.8)
        assert limits != res.thresholds(name, 0.8)
        assert alone.thresholds(name, 0.8, "calibration") == limits  # the file carries the calibration
        alone.calibrate(normal, progress=False)  # and a saved detector calibrates alike
        assert alone.thresholds(name, 0.8, "calibration") == limits
    with pytest.raises(DataError, match="anomaly_id_00_00000000.wav: an anomalous clip cannot calibrate"):
        res.calibrate(list_clips(other, "slider", "test"), progress=False)
    third = make_dataset(tmp_path / "third", ids=("04",), n_train=3, n_test_normal=1, n_test_anomaly=1, seconds=1.0)
    with pytest.raises(DataError, match=r"the detectors were trained on slider ID\(s\) 00, 02, not on 04"):
        res.calibrate(list_clips(third, "slider", "train"), progress=False)


def test_a_run_rescores_other_clips_with_every_detector_without_training(tmp_path, cfg, monkeypatch):
    """A run's detectors score the same clips recorded in a louder hall: new scores and AUC rows, the
    training thresholds kept, no faults claimed for clips of other data, the run itself unchanged."""
    small = SynthConfig(dev=SplitCounts(("00", "02"), (6, 6), (4, 4), (4, 4)),
                        eval=SplitCounts(("01",), (1,), (1,), (1,)), duration_s=1.0)
    usual = synth.generate(tmp_path / "usual", small, seed=0, progress=False, workers=1) / "dev_data"
    loud = synth.generate(tmp_path / "loud", small, seed=0, progress=False, workers=1, hall_db=12.0) / "dev_data"
    res = run(cfg, usual, ["pca", "sequential"], device="cpu", progress=False)
    before = {name: m.scores.copy() for name, m in res.models.items()}
    monkeypatch.setattr(NetworkDetector, "fit_steps", lambda *a, **k: pytest.fail("trained again"))
    monkeypatch.setattr(PCADetector, "fit", lambda *a, **k: pytest.fail("trained again"))
    same = res.rescored(res.test.clips, progress=False)
    louder = res.rescored(list_clips(loud, "slider", "test"), progress=False)
    for name, model in res.models.items():
        np.testing.assert_allclose(same.models[name].scores, model.scores, rtol=1e-5)
        np.testing.assert_array_equal(model.scores, before[name])
        assert same.models[name].rows == model.rows
        assert louder.thresholds(name, 0.8) == res.thresholds(name, 0.8)
        assert np.all(louder.models[name].scores != model.scores)
        assert louder.models[name].rows == metrics.per_id(name, "slider", louder.test.clip_ids, louder.test.y_true,
                                                          louder.models[name].scores, cfg.max_fpr)
    assert res.synthetic is not None and louder.synthetic is None
    assert [c.path.parent for c in louder.test.clips] == [loud / "slider" / "test"] * 16
    with pytest.raises(DataError, match=r"the detectors were trained on slider ID\(s\) 00, 02, not on 04"):
        res.rescored([replace(louder.test.clips[0], machine_id="04")], progress=False)


def test_training_clips_alone_train_detectors_to_save(make_dataset, tmp_path, cfg):
    """A plant's normal recordings and no test clips yet: train, set thresholds, save, score later."""
    root = make_dataset(tmp_path / "plant", ids=("00", "02"), n_train=8, seconds=1.0, test_ids=())
    assert not (root / "slider" / "test").exists()
    with pytest.raises(DataError, match="test: folder not found .*to train only, save the detectors"):
        run(cfg, root, ["pca"], device="cpu", progress=False)
    (root / "slider" / "test").mkdir()  # made before the first clip to check: the same
    with pytest.raises(DataError, match="test: no .wav clips .*to train only, save the detectors"):
        run(cfg, root, ["pca"], device="cpu", progress=False)
    assert len(run(cfg, root, ["pca"], device="cpu", progress=False, require_labels=False).test) == 0
    (root / "slider" / "test").rmdir()
    res = run(cfg, root, ["sequential", "pca"], device="cpu", progress=False, require_labels=False)
    assert len(res.test) == 0 and res.rows == [] and not res.evaluable
    assert res.write_scores(tmp_path / "scores") == []
    later = make_dataset(tmp_path / "later", ids=("00", "02"), n_train=1, n_test_normal=2, n_test_anomaly=2,
                         seconds=1.0, seed=3)
    for name, model in res.models.items():
        assert model.scores.shape == (0,) and set(res.thresholds(name)) == {"00", "02"}
        res.save_model(name, tmp_path / f"{name}.pt")
        scored = score_clips(load_model(tmp_path / f"{name}.pt"), list_clips(later, "slider", "test"), "cpu", False)
        assert scored.thresholds(name) == res.thresholds(name)
        assert [r["auc"] for r in scored.rows] == [1.0, 1.0]  # the loud tone of every anomaly


def test_a_detector_saved_from_real_recordings_flags_a_real_slider_fault(real_dir, tmp_path):
    """Trained only on real slider ID 00 normal clips, saved, then given a real MIMII recording of
    the same machine with a fault and one without: the fault scores higher and above the threshold."""
    mimii = real_dir.parent / "slider-mimii-0db"
    if not mimii.is_dir():
        pytest.skip(f"real MIMII slider recordings not found at {mimii}")
    train = tmp_path / "plant" / "slider" / "train"
    train.mkdir(parents=True)
    for path in sorted(real_dir.glob("*.wav"))[:30]:
        (train / path.name).symlink_to(path)
    cfg = get_config("quick")
    res = run(cfg, tmp_path / "plant", ["pca"], device="cpu", progress=False, require_labels=False)
    res.save_model("pca", tmp_path / "pca.pt")
    clips = clips_at([mimii / "normal_id_00_00000000.wav", mimii / "anomaly_id_00_00000000.wav"])
    scored = score_clips(load_model(tmp_path / "pca.pt"), clips, "cpu", progress=False)
    normal, fault = scored.models["pca"].scores
    assert fault > normal and fault > scored.thresholds("pca")["00"], (normal, fault, scored.thresholds("pca"))
    assert scored.decisions("pca").tolist()[1] == 1


def test_pca_fitted_to_the_first_real_clips_flags_the_unseen_ones_as_the_book_quotes(real_dir, tmp_path):
    """The PCA row of reference.REAL_CURVE_ALARMS, measured again (PCA trains no weights: no seed)."""
    paths = sorted(real_dir.glob("*.wav"))
    if len(paths) < 75:
        pytest.skip(f"{real_dir}: 75 real clips expected, {len(paths)} found")
    train = tmp_path / "plant" / "slider" / "train"
    train.mkdir(parents=True)
    for path in paths[:60]:
        (train / path.name).symlink_to(path)
    unseen = clips_at(paths[60:75])
    flagged = {}
    for n in reference.REAL_CURVE_ALARMS["pca"]:
        res = run(get_config("quick"), tmp_path / "plant", ["pca"], device="cpu", progress=False,
                  require_labels=False, max_train=n)
        flagged[n] = int(res.rescored(unseen, progress=False).decisions("pca").sum())
    assert flagged == {n: counts[0] for n, counts in reference.REAL_CURVE_ALARMS["pca"].items()}


def test_auc_by_fault_groups_the_stand_ins_anomalies_and_refuses_other_data(root, cfg, tmp_path):
    small = SynthConfig(dev=SplitCounts(("00", "02"), (4, 4), (4, 4), (9, 9)),
                        eval=SplitCounts(("01",), (1,), (1,), (1,)), duration_s=1.0)
    data = synth.generate(tmp_path / "synth", small, seed=0, progress=False, workers=1)
    res = run(cfg, data / "dev_data", ["pca"], progress=False)
    got = res.auc_by_fault()
    found = synth.faults(res.test.clips, res.synthetic)
    assert sum(n for _, n in got["by fault type"]["pca"].values()) == 18
    for title, groups in synth.fault_groups(found).items():
        assert got[title] == {"pca": metrics.auc_by_group(res.test.y_true, res.test.clip_ids,
                                                          res.models["pca"].scores, groups)}
    with pytest.raises(DataError, match="faults of the test clips are unknown"):
        run(cfg, root, ["pca"], progress=False).auc_by_fault()


def test_the_ground_truth_list_joins_the_features_key(make_dataset, tmp_path, cfg):
    """Unlabelled clips labelled by two lists: two keys, or run() would reuse AUC rows computed
    against the other list's labels."""
    root = make_dataset(tmp_path / "d", ids=("00",), n_train=3, n_test_normal=2, n_test_anomaly=2, seconds=1.0)
    test = root / "slider" / "test"
    named = sorted(p.name for p in test.glob("*.wav"))
    for i, name in enumerate(named):
        (test / name).rename(test / f"id_00_{i:08d}.wav")
    keys = []
    for flip in (0, 1):
        lines = [f"id_00_{i:08d}.wav,{('normal', 'anomaly')[(i % 2) ^ flip]}_id_00_{i:08d}.wav,{(i % 2) ^ flip}"
                 for i in range(len(named))]
        (tmp_path / f"list{flip}.csv").write_text("slider\n" + "\n".join(lines) + "\n")
        keys.append(prepare(cfg, root, "slider", ground_truth=tmp_path / f"list{flip}.csv", progress=False).key)
    assert keys[0] != keys[1]
    sel = select_clips(cfg, root, ground_truth=tmp_path / "list1.csv")
    assert sel.ground_truth == tmp_path / "list1.csv" and sel.root == root
    assert sel.labels == {f"id_00_{i:08d}.wav": 1 - i % 2 for i in range(len(named))}
