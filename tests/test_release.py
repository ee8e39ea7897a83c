"""A tree shaped like the real DCASE 2020 slider release: four dev IDs, an unlabelled eval test set
with its ground-truth list, and the challenge's score files read back."""
from __future__ import annotations

import csv
import glob
import json
import os
import shutil
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from sklearn.metrics import roc_auc_score

from asd import metrics
from asd.cli import main
from asd.utils import exclusive
from asd.data import DataError, find_ground_truth, list_clips, read_ground_truth, select_ids

MODELS = ["sequential", "pca"]


def write_release(root: Path, make_dataset) -> Path:
    """``root/dev_data`` (IDs 00/02/04/06) and ``root/eval_data`` (01/03/05, test unlabelled + list)."""
    make_dataset(root / "dev_data", ids=("00", "02", "04", "06"), n_train=6, n_test_normal=3,
                 n_test_anomaly=3, seconds=1.0)
    ev = make_dataset(root / "eval_data", ids=("01", "03", "05"), n_train=6, n_test_normal=3,
                      n_test_anomaly=3, seconds=1.0, seed=1)
    lines = ["slider"]
    test = ev / "slider" / "test"
    for mid in ("01", "03", "05"):
        mine = sorted(test.glob(f"*_id_{mid}_*.wav"))
        for i, path in enumerate(np.random.default_rng(int(mid)).permutation(mine)):
            new = test / f"id_{mid}_{i:08d}.wav"
            Path(path).rename(new)
            lines.append(f"{new.name},{Path(path).name},{int(Path(path).name.startswith('anomaly'))}")
    (root / "eval_data_list.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def release(make_dataset, tmp_path_factory) -> Path:
    return write_release(tmp_path_factory.mktemp("release") / "dcase", make_dataset)


def _run(args: list[str], capsys) -> tuple[int, str, str]:
    models = [] if "--models" in args else ["--models", *MODELS]
    code = main(["run", "--epochs", "2", "--quiet", "--device", "cpu", *models, *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_report_ids_by_default_and_id_06_named(release, tmp_path, capsys):
    code, out, err = _run(["--data", str(release / "dev_data"), "--out", str(tmp_path / "r.json")], capsys)
    assert code == 0, err
    assert "ID 06 found, not in the report's set: --ids all includes it" in err
    blob = json.loads((tmp_path / "r.json").read_text())
    assert blob["ids"] == ["00", "02", "04"] and blob["ids_left_out"] == ["06"]
    assert sorted({r["id"] for r in blob["rows"]}) == ["00", "02", "04"]


def test_id_06_named_before_training(release, monkeypatch, capsys):
    def training(*args, **kwargs):
        raise KeyboardInterrupt  # a user who reads the notice and stops the run

    monkeypatch.setattr("asd.experiment.run_selection", training)
    code, _, err = _run(["--data", str(release / "dev_data")], capsys)
    assert code == 130 and "ID 06 found, not in the report's set" in err


def test_ids_all_takes_in_id_06(release, tmp_path, capsys):
    code, out, err = _run(["--data", str(release / "dev_data"), "--ids", "all", "--out", str(tmp_path / "r.json")],
                          capsys)
    assert code == 0, err
    assert "ID 06" not in err
    assert json.loads((tmp_path / "r.json").read_text())["ids"] == ["00", "02", "04", "06"]


def test_release_root_is_accepted(release, capsys):
    code, out, err = _run(["--data", str(release)], capsys)
    assert code == 0, err
    assert f"using {release / 'dev_data'}" in err


def test_eval_set_scored_with_ground_truth_and_score_files_agree(release, tmp_path, capsys):
    listing = tmp_path / "elsewhere.csv"
    listing.write_text((release / "eval_data_list.csv").read_text())
    scores_dir = tmp_path / "scores"
    code, out, err = _run(["--data", str(release / "eval_data"), "--ground-truth", str(listing),
                           "--out", str(tmp_path / "r.json"), "--scores-dir", str(scores_dir)], capsys)
    assert code == 0, err
    blob = json.loads((tmp_path / "r.json").read_text())
    assert blob["ids"] == ["01", "03", "05"] and blob["ids_left_out"] == []
    labels = read_ground_truth(listing, "slider")
    for row in blob["rows"]:  # the evaluator's way: score files + ground truth -> AUC, pAUC
        path = scores_dir / row["model"] / f"anomaly_score_slider_id_{row['id']}.csv"
        with path.open() as f:
            pairs = [(name, float(score)) for name, score in csv.reader(f)]
        assert all(name.startswith(f"id_{row['id']}_") for name, _ in pairs) and len(pairs) == 6
        assert [name for name, _ in pairs] == sorted(name for name, _ in pairs)  # file order, not by hidden label
        y_true = [labels[name] for name, _ in pairs]
        y_score = [score for _, score in pairs]
        assert roc_auc_score(y_true, y_score) == pytest.approx(row["auc"])
        assert roc_auc_score(y_true, y_score, max_fpr=0.1) == pytest.approx(row["pauc"])


def test_asd_score_takes_the_labels_of_unlabelled_clips_from_a_ground_truth_list(release, tmp_path, capsys):
    listing = release / "eval_data_list.csv"
    code, out, err = _run(["--data", str(release / "eval_data"), "--models", "pca", "--out", str(tmp_path / "r.json"),
                           "--save-models", str(tmp_path / "m")], capsys)
    assert code == 0, err
    ran = json.loads((tmp_path / "r.json").read_text())["rows"]
    test = release / "eval_data" / "slider" / "test"
    score = ["score", str(tmp_path / "m" / "pca.pt"), "--clips", str(test), "--quiet", "--device", "cpu"]
    assert main([*score, "--ground-truth", str(listing), "--out", str(tmp_path / "s.json")]) == 0
    scored = json.loads((tmp_path / "s.json").read_text())["detectors"][0]["rows"]
    assert [r["id"] for r in scored] == [r["id"] for r in ran] == ["01", "03", "05"]  # as asd run evaluated them
    np.testing.assert_allclose([(r["auc"], r["pauc"]) for r in scored], [(r["auc"], r["pauc"]) for r in ran])
    out = capsys.readouterr().out
    assert "AUC" in out and f"scored: real DCASE 2020 data ({test})\n" in out  # what was scored, not only trained on
    assert json.loads((tmp_path / "s.json").read_text())["data"] == f"real DCASE 2020 data ({test})"
    assert main([*score, "--out", str(tmp_path / "found.json")]) == 0  # the list beside the eval set, found
    assert f"asd: the clips' labels: {listing} (found beside the eval set" in capsys.readouterr().err
    assert json.loads((tmp_path / "found.json").read_text())["detectors"][0]["rows"] == scored
    (tmp_path / "few").mkdir()  # a clip the list lacks
    shutil.copy(test / "id_01_00000000.wav", tmp_path / "few" / "id_01_00000099.wav")
    assert main([*score[:3], str(tmp_path / "few"), "--ground-truth", str(listing)]) == 2
    assert "id_01_00000099.wav: not in the ground-truth list" in capsys.readouterr().err
    assert main([*score, "--ground-truth", str(tmp_path / "none.csv")]) == 2
    assert "--ground-truth " in capsys.readouterr().err


def test_a_ground_truth_list_for_labelled_clips_is_said_to_be_unused(release, capsys):
    listed = release / "eval_data_list.csv"
    with pytest.warns(UserWarning, match=f"{listed}: not used: the test clips' names carry their labels"):
        code, out, err = _run(["--data", str(release / "dev_data"), "--ground-truth", str(listed),
                               "--models", "pca"], capsys)
    assert code == 0 and "AUC" in out


def test_ground_truth_found_beside_the_eval_root(release, capsys):
    assert find_ground_truth(release / "eval_data") == release / "eval_data_list.csv"
    code, out, err = _run(["--data", str(release / "eval_data")], capsys)
    assert code == 0, err
    assert "IDs: 01 03 05" in out
    assert f"asd: the test clips' labels: {release / 'eval_data_list.csv'} (--ground-truth LIST" in err


def test_a_list_of_the_chosen_ids_alone_will_do(release, tmp_path, capsys):
    lines = (release / "eval_data_list.csv").read_text().splitlines()
    only_01 = tmp_path / "only01.csv"
    only_01.write_text("\n".join(line for line in lines if not line.startswith(("id_03", "id_05"))) + "\n")
    code, out, err = _run(["--data", str(release / "eval_data"), "--ids", "01", "--ground-truth", str(only_01),
                           "--models", "pca"], capsys)
    assert code == 0, err
    assert "IDs: 01" in out
    code, out, err = _run(["--data", str(release / "eval_data"), "--ids", "01", "03", "--ground-truth",
                           str(only_01), "--models", "pca"], capsys)
    assert code == 2 and "id_03_00000000.wav: unlabelled clip missing from the ground-truth list" in err


def test_an_id_without_test_clips_is_named_not_left_out_of_the_average(make_dataset, tmp_path, capsys):
    root = make_dataset(tmp_path / "data", ids=("00", "02"), n_train=4, n_test_normal=2, n_test_anomaly=2,
                        seconds=1.0)
    for path in (root / "slider" / "test").glob("*_id_02_*.wav"):
        path.unlink()
    code, out, err = _run(["--data", str(root), "--ids", "all", "--models", "pca"], capsys)
    assert code == 2 and "no test clips of ID(s) 02, which have training clips" in err
    code, out, err = _run(["--data", str(root), "--ids", "00", "--models", "pca"], capsys)
    assert code == 0 and "IDs: 00" in out
    for path in (root / "slider" / "train").glob("*_id_00_*.wav"):  # test clips of an ID never trained on
        path.unlink()
    for scored in ([], ["--scores-dir", str(tmp_path / "s")]):  # the same message, whether or not only scored
        code, out, err = _run(["--data", str(root), "--ids", "00", "--models", "pca", *scored], capsys)
        assert code == 2 and "test clips of ID(s) 00 have no training clips" in err
    root = make_dataset(tmp_path / "again", ids=("00", "02"), n_train=4, n_test_normal=2, n_test_anomaly=2,
                        seconds=1.0)
    for path in (root / "slider" / "test").glob("*_id_02_*.wav"):
        path.unlink()
    scores = tmp_path / "scores"  # only scored, yet evaluated: the table's average is said to be over fewer IDs
    with pytest.warns(UserWarning, match=r"no test clips of ID\(s\) 02: the AUC table and its average are over "
                                         r"ID\(s\) 00 alone"):
        code, out, err = _run(["--data", str(root), "--ids", "all", "--models", "pca", "--scores-dir", str(scores)],
                              capsys)
    assert code == 0, err


@pytest.fixture(scope="module")
def unlisted(make_dataset, tmp_path_factory) -> Path:
    """The eval set as released before its labels: unlabelled test clips, no list."""
    copy = write_release(tmp_path_factory.mktemp("unlisted") / "dcase", make_dataset)
    (copy / "eval_data_list.csv").unlink()
    return copy / "eval_data"


def test_unlabelled_clips_without_a_list_are_a_clear_error(unlisted, tmp_path, capsys):
    code, out, err = _run(["--data", str(unlisted)], capsys)
    assert code == 2 and "unlabelled test clips, e.g. id_01_00000000.wav (the eval set as released): pass " \
                         "--ground-truth LIST" in err and "--scores-dir" in err
    plant = tmp_path / "plant"  # a plant's clips to check: scoring them comes first
    shutil.copytree(unlisted, plant)
    code, out, err = _run(["--data", str(plant)], capsys)
    assert code == 2 and "unlabelled test clips, e.g. id_01_00000000.wav: score them and decide (--scores-dir " \
                         "DIR); for an AUC, give their labels (--ground-truth LIST" in err


def test_unlabelled_clips_without_a_list_are_scored_and_decided_with_scores_dir(unlisted, tmp_path, capsys):
    scores_dir = tmp_path / "scores"
    code, out, err = _run(["--data", str(unlisted), "--scores-dir", str(scores_dir),
                           "--out", str(tmp_path / "r.json")], capsys)
    assert code == 0, err
    assert "cannot be evaluated (ID 01: 6 unlabelled clips; ID 03: 6 unlabelled clips" in out
    assert "AUC/pAUC" not in out
    blob = json.loads((tmp_path / "r.json").read_text())
    assert blob["rows"] == [] and blob["decision_quantile"] == 0.9
    for model in MODELS:
        line = next(ln for ln in out.splitlines() if ln.split()[:1] == [model])
        for mid in ("01", "03", "05"):
            with (scores_dir / model / f"anomaly_score_slider_id_{mid}.csv").open() as f:
                scores = {name: float(v) for name, v in csv.reader(f)}
            with (scores_dir / model / f"decision_result_slider_id_{mid}.csv").open() as f:
                decisions = {name: int(v) for name, v in csv.reader(f)}
            assert list(decisions) == list(scores) and len(scores) == 6
            assert all(name.startswith(f"id_{mid}_") for name in scores)
            threshold = blob["thresholds"][model][mid]
            assert decisions == {name: int(v > threshold) for name, v in scores.items()}
            assert f"ID {mid}: {sum(decisions.values())}/6 (threshold {threshold:.4g})" in line


def test_saved_detectors_score_new_clips_as_the_run_did(unlisted, tmp_path, capsys):
    """Train once (asd run --save-models), then score clips later (asd score): the same score and
    decision files, and the same flags printed, without training again."""
    code, ran, err = _run(["--data", str(unlisted), "--scores-dir", str(tmp_path / "ran"),
                           "--save-models", str(tmp_path / "models")], capsys)
    assert code == 0, err
    models = [str(tmp_path / "models" / f"{m}.pt") for m in MODELS]
    code = main(["score", *models, "--clips", str(unlisted / "slider" / "test"), "--quiet", "--device", "cpu",
                 "--scores-dir", str(tmp_path / "scored"), "--out", str(tmp_path / "scored.json"),
                 "--alarm-after", "2"])
    out = capsys.readouterr()
    assert code == 0, out.err
    for model in MODELS:
        for path in sorted((tmp_path / "ran" / model).glob("*.csv")):
            assert (tmp_path / "scored" / model / path.name).read_text() == path.read_text()
        line = next(ln for ln in ran.splitlines() if ln.split()[:1] == [model])
        assert line in out.out
    assert "AUC/pAUC" not in out.out and "epoch" not in out.err
    # --out: the same scores and decisions, clip by clip, with each ID's threshold
    blob = json.loads((tmp_path / "scored.json").read_text())
    assert [d["model"] for d in blob["detectors"]] == MODELS and blob["calibration"] == "training"
    files = [c["file"] for c in blob["clips"]]
    for det in blob["detectors"]:
        folder = tmp_path / "ran" / det["model"]
        for kind, values in (("anomaly_score", det["scores"]), ("decision_result", det["decisions"])):
            written = {}
            for path in folder.glob(f"{kind}_*.csv"):
                written.update(line.split(",") for line in path.read_text().splitlines())
            assert [float(written[f]) for f in files] == values
        assert det["rows"] == [] and sorted(det["thresholds"]) == sorted({c["id"] for c in blob["clips"]})
        flagged = [v > det["thresholds"][c["id"]] for v, c in zip(det["scores"], blob["clips"])]
        assert flagged == [bool(d) for d in det["decisions"]]
        # --alarm-after 2: alarms from the decisions, in the clips' order, counted in the printed line
        clip_ids = np.array([c["id"] for c in blob["clips"]])
        assert det["alarms"] == metrics.alarms(clip_ids, det["decisions"], 2).tolist()
        printed = out.out.split(f"{det['model']} ")[1].split("alarms (2 flagged in a row): ")[1].splitlines()[0]
        for mid in ("01", "03", "05"):
            assert f"ID {mid}: {sum(a for a, i in zip(det['alarms'], clip_ids) if i == mid)}" in printed
    assert blob["alarm_after"] == 2


def test_saved_detectors_evaluate_labelled_clips_as_the_run_did(release, tmp_path, capsys):
    code, ran, err = _run(["--data", str(release), "--save-models", str(tmp_path / "m")], capsys)
    assert code == 0, err
    test = release / "dev_data" / "slider" / "test"
    clips = [str(p) for mid in ("00", "02", "04") for p in sorted(test.glob(f"*_id_{mid}_*.wav"))]
    code = main(["score", str(tmp_path / "m" / "sequential.pt"), "--clips", *clips, "--quiet", "--device", "cpu",
                 "--out", str(tmp_path / "s.json")])
    out = capsys.readouterr().out
    assert code == 0
    table = [ln for ln in ran.splitlines() if ln.split()[:1] in (["model"], ["sequential"])]
    assert len(table) == 2 and all(ln.strip() in out for ln in table)  # the same AUC/pAUC row
    blob = json.loads((tmp_path / "s.json").read_text())
    det, ids = blob["detectors"][0], np.array([c["id"] for c in blob["clips"]])
    labels = np.array([c["label"] == "anomaly" for c in blob["clips"]])
    for row in det["rows"]:
        mine = ids == row["id"]
        assert row["auc"] == pytest.approx(roc_auc_score(labels[mine], np.array(det["scores"])[mine]))
    assert sorted(r["id"] for r in det["rows"]) == ["00", "02", "04"]
    assert f"sequential, trained on real DCASE 2020 data ({release / 'dev_data'})" in out
    code = main(["score", str(tmp_path / "m" / "pca.pt"), "--clips", str(test), "--quiet", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "pca was trained on slider ID(s) 00, 02, 04, not on 06" in err
    named = err.split("leave their clips out (")[1].split(",")[0]  # one of the clips to leave out
    assert Path(named).parent == test and "_id_06_" in Path(named).name


def test_alarms_count_labelled_clips_in_recording_order_not_label_by_label(unlisted, tmp_path, capsys):
    """asd arrange numbers an ID's test clips on across labels: their numbers are their time order."""
    assert _run(["--data", str(unlisted), "--save-models", str(tmp_path / "m"), "--scores-dir", str(tmp_path)],
                capsys)[0] == 0
    sources = sorted((unlisted / "slider" / "test").glob("id_01_*.wav"))
    labels = ["normal", "normal", "anomaly", "normal", "anomaly", "normal"]  # recorded in this order
    folder = tmp_path / "labelled"
    folder.mkdir()
    for k, (label, source) in enumerate(zip(labels, sources)):
        shutil.copy(source, folder / f"{label}_id_01_{k:08d}.wav")
    score = ["score", str(tmp_path / "m" / "pca.pt"), "--quiet", "--alarm-after", "3", "--decision-quantile", "0.02"]
    assert main([*score, "--clips", str(folder), "--out", str(tmp_path / "all.json")]) == 0
    report = json.loads((tmp_path / "all.json").read_text())
    listed = [Path(c["file"]).name for c in report["clips"]]
    detector = report["detectors"][0]
    time = sorted(range(len(listed)), key=lambda i: int(listed[i][-12:-4]))  # by the number the name ends in
    decided = np.array(detector["decisions"])
    expected = np.zeros(len(listed), int)
    expected[time] = metrics.alarms(["01"] * len(time), decided[time], 3)
    assert detector["alarms"] == expected.tolist()
    assert expected.tolist() != metrics.alarms(["01"] * len(time), decided, 3).tolist(), "label order would agree"
    # --new-only after the first three clips recorded: the last three, though a normal name sorts after "anomaly"
    state = tmp_path / "runs.json"
    assert main([*score, "--clips", *(str(folder / listed[i]) for i in time[:3]), "--alarm-state", str(state)]) == 0
    capsys.readouterr()
    assert main([*score, "--clips", str(folder), "--alarm-state", str(state), "--new-only"]) == 0
    assert f"3 clips counted already in {state}: left out" in capsys.readouterr().out


def test_alarm_state_carries_runs_of_flagged_clips_from_one_score_call_to_the_next(unlisted, tmp_path, capsys):
    assert _run(["--data", str(unlisted), "--save-models", str(tmp_path / "m"), "--scores-dir", str(tmp_path)],
                capsys)[0] == 0
    clips = sorted(str(p) for p in (unlisted / "slider" / "test").glob("id_0[13]_*.wav"))
    pca = str(tmp_path / "m" / "pca.pt")
    # a low quantile flags most clips: long runs of flagged clips to cut in two
    score = ["score", pca, "--quiet", "--alarm-after", "3", "--decision-quantile", "0.02"]

    def scored(batch: list[str], out: str, *more: str) -> dict:
        assert main([*score, "--clips", *batch, "--out", str(tmp_path / out), *more]) == 0
        return json.loads((tmp_path / out).read_text())["detectors"][0]

    whole = scored(clips, "whole.json")
    state = tmp_path / "runs.json"
    cut = 4  # ID 01's 5th clip
    assert whole["decisions"][cut - 2 : cut + 1] == [1, 1, 1], "no run across the cut to carry over"
    first = scored(clips[:cut], "first.json", "--alarm-state", str(state))
    written = json.loads(state.read_text())
    assert written["alarm_after"] == 3 and written["detectors"]["pca"]["01"] == {
        "run": metrics.open_runs(["01"] * cut, first["decisions"])["01"], "last_clip": Path(clips[cut - 1]).name}
    capsys.readouterr()
    second = scored(clips[cut:], "second.json", "--alarm-state", str(state))
    # the two calls raise the alarms of the one call over all clips, in the same places
    assert first["decisions"] + second["decisions"] == whole["decisions"]
    assert first["alarms"] + second["alarms"] == whole["alarms"] and sum(whole["alarms"]) > 0
    carried = written["detectors"]["pca"]["01"]["run"]
    assert f"flagged before these: ID 01: {carried})" in capsys.readouterr().out
    assert json.loads(state.read_text())["detectors"]["pca"]["03"]["last_clip"] == Path(clips[-1]).name
    # --fail-on-alarm: exit status 1 where the call raises an alarm, 0 where it raises none
    n_alarms = sum(whole["alarms"])
    capsys.readouterr()
    assert main([*score, "--clips", *clips, "--fail-on-alarm"]) == 1
    assert f"asd: {n_alarms} alarm{'s' if n_alarms > 1 else ''} raised: exit status 1" in capsys.readouterr().err
    assert main([*score, "--clips", clips[0], "--fail-on-alarm"]) == 0  # one clip: no run of 3
    # --new-only: given every clip, a job scores those after the ones counted, as the second call did
    again = tmp_path / "again.json"
    scored(clips[:cut], "first-again.json", "--alarm-state", str(again))
    assert scored(clips, "new.json", "--alarm-state", str(again), "--new-only") == second
    assert f"{cut} clips counted already in {again}: left out" in capsys.readouterr().out
    capsys.readouterr()
    assert main([*score, "--clips", *clips, "--alarm-state", str(again), "--new-only"]) == 0
    assert capsys.readouterr().out == f"no clips after those counted in {again}: nothing to score\n"
    # a clip named before those counted but written after them (a recorder counting anew) is named
    (tmp_path / "restarted").mkdir()
    shutil.copy(clips[0], tmp_path / "restarted" / Path(clips[0]).name)
    later = again.stat().st_mtime + 60
    os.utime(tmp_path / "restarted" / Path(clips[0]).name, (later, later))
    with pytest.warns(UserWarning, match=f"{Path(clips[0]).name}: written after {again}, yet not after the clips"):
        assert main([*score, "--clips", str(tmp_path / "restarted"), "--alarm-state", str(again), "--new-only"]) == 0
    assert capsys.readouterr().out == f"no clips after those counted in {again}: nothing to score\n"
    # refused before any work: clips counted already, another run length, no --alarm-after, not a state
    (tmp_path / "junk.json").write_text('{"alarm_after": 3, "detectors": {"pca": {"01": {"run": "x"}}}}')
    (tmp_path / "text.json").write_text("not JSON")
    for args, message in ([[*score, "--clips", clips[-1], "--alarm-state", str(state)],
                           f"{Path(clips[-1]).name}: pca counted ID 03's clips up to {Path(clips[-1]).name}"],
                          [[*score[:-4], "--alarm-after", "2", "--clips", clips[-1], "--alarm-state", str(state)],
                           "counts runs for --alarm-after 3, not 2"],
                          [["score", pca, "--clips", clips[-1], "--alarm-state", str(state)],
                           "--alarm-state FILE needs --alarm-after N"],
                          [[*score, "--clips", clips[-1], "--new-only"], "--new-only needs --alarm-state FILE"],
                          [["score", pca, "--clips", clips[-1], "--fail-on-alarm"],
                           "--fail-on-alarm needs --alarm-after N"],
                          [[*score, "--clips", clips[-1], "--alarm-state", str(tmp_path / "junk.json")],
                           "not an alarm state written by asd score"],
                          [[*score, "--clips", clips[-1], "--alarm-state", str(tmp_path / "text.json")],
                           "text.json: not an alarm state written by asd score"]):
        assert main(args) == 2
        out, err = capsys.readouterr()
        assert message in err and len(err.strip().splitlines()) == 1 and out == ""
    # a call on a state file that another call is using waits for it, then reads what it wrote
    fresh, codes = tmp_path / "fresh.json", []
    with exclusive(tmp_path / ".fresh.json.lock", "held by the test"):
        waiting = threading.Thread(target=lambda: codes.append(
            main([*score, "--clips", clips[0], "--alarm-state", str(fresh)])))
        waiting.start()
        waiting.join(1.0)
        assert waiting.is_alive() and not fresh.exists()
    waiting.join()
    assert codes == [0] and fresh.exists()
    assert f"another asd score is using {fresh}: waiting for it" in capsys.readouterr().err
    # a recorder's count: rec10.wav comes after rec9.wav, not before it
    (tmp_path / "rec").mkdir()
    for name, clip in (("rec9.wav", clips[0]), ("rec10.wav", clips[1])):
        shutil.copy(clip, tmp_path / "rec" / name)
    counted = ["--id", "01", "--alarm-state", str(tmp_path / "counted.json")]
    assert main([*score, *counted, "--clips", str(tmp_path / "rec" / "rec9.wav")]) == 0
    assert main([*score, *counted, "--clips", str(tmp_path / "rec" / "rec10.wav")]) == 0
    capsys.readouterr()
    assert main([*score, *counted, "--clips", str(tmp_path / "rec" / "rec9.wav")]) == 2
    assert "rec9.wav: pca counted ID 01's clips up to rec10.wav" in capsys.readouterr().err


def test_a_long_recording_cut_into_clips_scores_as_the_clips_it_was_made_of(unlisted, tmp_path, capsys):
    assert _run(["--data", str(unlisted), "--save-models", str(tmp_path / "m"), "--scores-dir", str(tmp_path / "ran")],
                capsys)[0] == 0
    clips = sorted((unlisted / "slider" / "test").glob("id_03_*.wav"))
    (tmp_path / "rec").mkdir()
    long = tmp_path / "rec" / "press-0800.wav"
    sf.write(long, np.concatenate([sf.read(c, dtype="int16")[0] for c in clips]), 16000, subtype="PCM_16")
    pca = str(tmp_path / "m" / "pca.pt")
    # scored whole: a clip far longer than the training clips is named in a warning
    with pytest.warns(UserWarning, match=r"1 of 1 clips to score are not about 1 s long.* press-0800.wav \(6 s\)"):
        assert main(["score", pca, "--clips", str(long), "--id", "03", "--quiet"]) == 0
    assert main(["cut", str(tmp_path / "rec"), "--out", str(tmp_path / "cut"), "--seconds", "1"]) == 0
    out = capsys.readouterr().out
    assert f"{len(clips)} clips of up to 1 s written to {tmp_path / 'cut'}: press-0800_000000s.wav ... " in out
    assert f"asd score MODEL --clips {tmp_path / 'cut'} --id NN" in out
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["score", pca, "--clips", str(tmp_path / "cut"), "--id", "03", "--quiet",
                     "--scores-dir", str(tmp_path / "scored")]) == 0
    assert not [w for w in caught if "long, as the training clips are" in str(w.message)]
    ran = (tmp_path / "ran" / "pca" / "anomaly_score_slider_id_03.csv").read_text().splitlines()
    scored = (tmp_path / "scored" / "pca" / "anomaly_score_slider_id_03.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in ran] == [c.name for c in clips]
    assert [line.split(",")[1] for line in scored] == [line.split(",")[1] for line in ran]


def test_run_warns_of_clips_far_from_the_training_clips_length(make_dataset, tmp_path, capsys):
    root = make_dataset(tmp_path / "d", ids=("00",), n_train=6, n_test_normal=3, n_test_anomaly=3)
    long = root / "slider" / "test" / "anomaly_id_00_00000001.wav"
    sf.write(long, np.tile(sf.read(long, dtype="int16")[0], 3), 16000, subtype="PCM_16")
    with pytest.warns(UserWarning, match=r"1 of 6 test clips are not about 1 s long.* anomaly_id_00_00000001.wav "
                                         r"\(3 s\)"):
        assert _run(["--data", str(root), "--models", "pca"], capsys)[0] == 0


def test_score_takes_a_recorders_own_file_names_with_id(unlisted, tmp_path, capsys, figure_headers):
    assert _run(["--data", str(unlisted), "--save-models", str(tmp_path / "m"), "--scores-dir",
                 str(tmp_path / "ran")], capsys)[0] == 0
    recorder = tmp_path / "recorder"
    recorder.mkdir()
    for k, path in enumerate(sorted((unlisted / "slider" / "test").glob("id_03_*.wav"))):
        (recorder / f"press-{k:02d}.wav").symlink_to(path)
    args = ["score", str(tmp_path / "m" / "pca.pt"), "--clips", str(recorder), "--quiet",
            "--scores-dir", str(tmp_path / "own"), "--figures", str(tmp_path / "fig"), "--alarm-after", "2"]
    assert main(args) == 2 and "press-00.wav: name does not match" in capsys.readouterr().err
    assert main([*args, "--id", "03"]) == 0
    assert "ID 03: " in capsys.readouterr().out
    assert (tmp_path / "fig" / "pca_slider.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the figure file says which detector, trained on what
    flagged = "1" in [line.split(",")[1] for line in
                      (tmp_path / "own" / "pca" / "decision_result_slider_id_03.csv").read_text().splitlines()]
    assert list(figure_headers) == ["pca_slider", *["pca_slider_flagged"] * flagged]
    for header in figure_headers.values():
        assert header.startswith("pca trained on real") and str(unlisted) in header, figure_headers
    own = (tmp_path / "own" / "pca" / "anomaly_score_slider_id_03.csv").read_text().splitlines()
    ran = dict(line.split(",") for line in (tmp_path / "ran" / "pca" / "anomaly_score_slider_id_03.csv")
               .read_text().splitlines())
    assert [line.split(",")[1] for line in own] == [ran[p.resolve().name] for p in sorted(recorder.iterdir())]


def test_score_refuses_bad_input_in_one_line(unlisted, tmp_path, capsys):
    assert _run(["--data", str(unlisted), "--save-models", str(tmp_path / "m"), "--scores-dir", str(tmp_path)],
                capsys)[0] == 0
    clips = str(unlisted / "slider" / "test")
    (tmp_path / "other").mkdir()
    (tmp_path / "empty").mkdir()
    (tmp_path / ".st.json.lock").mkdir()  # a folder where the state's lock goes
    (tmp_path / "other" / "pca.pt").write_bytes((tmp_path / "m" / "pca.pt").read_bytes())
    cases = [([str(tmp_path / "m" / "pca.pt"), str(tmp_path / "other" / "pca.pt")],
              f"two pca detectors ({tmp_path / 'm' / 'pca.pt'}, {tmp_path / 'other' / 'pca.pt'}): their score files"),
             ([str(tmp_path / "m" / "nothing.pt")], "no such detector file"),
             ([str(tmp_path / "m"), str(tmp_path / "empty")], f"{tmp_path / 'empty'}: a folder without detector files"),
             ([str(tmp_path / "m" / "pca.pt"), "--out", str(tmp_path / "m" / "pca.pt")], "the results are JSON"),
             ([str(tmp_path / "m" / "pca.pt"), "--alarm-after", "3", "--alarm-state", str(tmp_path / "runs.json"),
               "--out", str(tmp_path / "runs.json")], "runs.json: the command reads that file"),
             ([str(tmp_path / "m" / "pca.pt"), "--alarm-after", "3", "--alarm-state", str(tmp_path / "st.json")],
              ".st.json.lock: the lock asd score keeps beside --alarm-state"),
             ([str(tmp_path / "m" / "pca.pt"), "--decision-quantile", "1.5"], "--decision-quantile must be between"),
             # thresholds that cannot be set: refused before any detector scores a clip or prints a table
             ([str(tmp_path / "m" / "pca.pt"), str(tmp_path / "m" / "sequential.pt"), "--calibration", "held-out"],
              "pca: no held-out decision threshold for any ID: it held out no training clips"),
             ([str(tmp_path / "m" / "pca.pt"), "--calibration", "calibration"],
              "pca: no calibration decision threshold for any ID: no calibration clips were scored with it"),
             ([str(tmp_path / "m" / "pca.pt"), "--calibration-clips",
               *sorted(glob.glob(f"{unlisted}/slider/train/normal_id_01_*"))[:2]],
              "ID 01: the calibration clips number 2; a decision threshold needs at least 3")]
    # a second detector trained on ID 01 alone: refused with calibration clips too, before the first scores
    assert _run(["--data", str(unlisted), "--ids", "01", "--models", "sequential", "--save-models",
                 str(tmp_path / "m01"), "--scores-dir", str(tmp_path / "s01")], capsys)[0] == 0
    calibration = ["--calibration-clips", str(unlisted / "slider" / "train")]
    cases += [([str(tmp_path / "m" / "pca.pt"), str(tmp_path / "m01" / "sequential.pt"), *calibration],
               "sequential was trained on slider ID(s) 01, not on 03, 05")]
    for args, message in cases:
        assert main(["score", *args, "--clips", clips, "--quiet", "--scores-dir", str(tmp_path / "never")]) == 2
        out, err = capsys.readouterr()
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert out == "" and not (tmp_path / "never").exists()
    code = main(["score", str(tmp_path / "m" / "pca.pt"), "--clips", str(tmp_path / "nowhere"), "--quiet"])
    assert code == 2 and "nowhere: no such file or folder" in capsys.readouterr().err
    # the detector after --clips, which takes every path it is given
    assert main(["score", "--clips", clips, str(tmp_path / "m" / "pca.pt")]) == 2
    assert f"{tmp_path / 'm' / 'pca.pt'} went to --clips; give the detectors first" in capsys.readouterr().err
    # the folder --save-models wrote stands for the detectors in it
    files = sorted(str(p) for p in (tmp_path / "m").glob("*.pt"))
    assert len(files) > 1
    said = []
    for models in ([str(tmp_path / "m")], files):
        assert main(["score", *models, "--clips", clips, "--quiet"]) == 0
        said.append(capsys.readouterr().out)
    assert said[0] == said[1]
    # labelled clips that give no AUC: said why, as asd run says it
    normal = sorted(glob.glob(f"{unlisted}/slider/train/normal_id_01_*"))[:3]
    assert main(["score", str(tmp_path / "m" / "pca.pt"), "--clips", *normal, "--quiet"]) == 0
    assert ("no AUC/pAUC (ID 01: 3 normal and 0 anomalous clips (AUC needs both)): scores and decisions only"
            in capsys.readouterr().out)


def test_calibration_clips_set_the_thresholds_of_run_and_score_alike(unlisted, make_dataset, tmp_path, capsys):
    later = make_dataset(tmp_path / "later", ids=("01", "03", "05"), n_train=4, seconds=1.0, seed=9)
    calibration = ["--calibration-clips", str(later / "slider" / "train")]
    code, ran, err = _run(["--data", str(unlisted), "--scores-dir", str(tmp_path / "ran"), "--out",
                           str(tmp_path / "r.json"), "--save-models", str(tmp_path / "m"), *calibration], capsys)
    assert code == 0, err
    assert "a gamma fit to the ID's calibration clips' scores" in ran
    assert ran.endswith(f"asd score {tmp_path / 'm'}/<model>.pt --clips FOLDER\n")  # the saved calibration: default
    blob = json.loads((tmp_path / "r.json").read_text())
    assert blob["calibration"] == "calibration" and set(blob["thresholds"]["pca"]) == {"01", "03", "05"}
    code = main(["score", *(str(tmp_path / "m" / f"{m}.pt") for m in MODELS), "--clips",
                 str(unlisted / "slider" / "test"), "--quiet", "--scores-dir", str(tmp_path / "scored"), *calibration])
    scored = capsys.readouterr().out
    assert code == 0
    for model in MODELS:
        for path in sorted((tmp_path / "ran" / model).glob("decision_result_*.csv")):
            assert (tmp_path / "scored" / model / path.name).read_text() == path.read_text()
        assert "ID 01: " in scored and f"(threshold {blob['thresholds'][model]['01']:.4g})" in scored
    for asked in (["--calibration", "calibration"], []):  # the calibration saved with the detector: the default
        code = main(["score", str(tmp_path / "m" / "pca.pt"), "--clips", str(unlisted / "slider" / "test"),
                     "--quiet", *asked])
        out = capsys.readouterr().out
        assert code == 0 and f"(threshold {blob['thresholds']['pca']['03']:.4g})" in out
        assert out.startswith("thresholds: from the calibration clips scored when the detectors were saved") == (not asked)
    code = main(["score", str(tmp_path / "m" / "pca.pt"), "--clips", str(unlisted / "slider" / "test"), "--quiet",
                 "--calibration", "training"])  # asked for: the training clips' thresholds
    out = capsys.readouterr().out
    assert code == 0 and f"(threshold {blob['thresholds']['pca']['03']:.4g})" not in out
    bad = [(["--calibration", "calibration"], "--calibration calibration needs --calibration-clips PATH"),
           (["--calibration", "held-out", *calibration], "drop --calibration held-out"),
           (["--calibration-clips", str(tmp_path / "nowhere")], "nowhere: no such file or folder"),
           (["--calibration-clips", str(_broken(tmp_path / "cal" / "id_01_00000000.wav"))],
            "id_01_00000000.wav: cannot read audio"),
           (["--calibration-clips", str(later / "slider" / "test")],
            "an anomalous clip cannot calibrate a threshold for normal sound"),
           (["--calibration-clips", str(make_dataset(tmp_path / "other", ids=("01", "02"), n_train=3, seconds=1.0,
                                                     test_ids=()) / "slider" / "train")],
            "calibration clips: the detectors were trained on slider ID(s) 01, 03, 05, not on 02: no threshold"),
           (["--calibration-clips", str(make_dataset(tmp_path / "few", ids=("01", "03", "05"), n_train=2,
                                                     seconds=1.0, test_ids=()) / "slider" / "train")],
            "ID 01: the calibration clips number 2; a decision threshold needs at least 3 normal clips per ID"),
           (["--calibration-clips", str(_recorded(tmp_path / "recorder" / "2026-11-27_0800.wav"))],
            "2026-11-27_0800.wav: name does not match 'id_NN_NNNNNNNN.wav' or '<normal|anomaly>_id_NN_NNNNNNNN.wav' "
            "(NN: the machine's ID)")]  # asd run has no --id to suggest
    for args, message in bad:
        code, out, err = _run(["--data", str(unlisted), "--scores-dir", str(tmp_path / "s"), *args], capsys)
        assert code == 2 and message in err and "Traceback" not in err and "epoch" not in err
    with pytest.warns(UserWarning, match="12 calibration clips are also clips to score"):
        main(["score", str(tmp_path / "m" / "pca.pt"), "--clips", str(later / "slider" / "train"), "--quiet",
              *calibration])


def _recorded(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(16000, dtype=np.float32) + 0.01, 16000)
    return path


def _broken(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not audio" * 100)
    return path


def test_normal_recordings_alone_train_and_save_detectors(make_dataset, tmp_path, capsys):
    root = make_dataset(tmp_path / "plant", ids=("00",), n_train=6, seconds=1.0, test_ids=())
    code, out, err = _run(["--data", str(root)], capsys)
    assert code == 2 and "to train only, save the detectors (--save-models DIR)" in err
    with pytest.warns(UserWarning, match="no test clips, no score files"):
        code, out, err = _run(["--data", str(root), "--save-models", str(tmp_path / "m"), "--scores-dir",
                               str(tmp_path / "s")], capsys)
    assert code == 0, err
    assert "no test clips: trained only; decision thresholds" in out and "cannot be evaluated" not in out
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["pca.pt", "sequential.pt"]
    assert not (tmp_path / "s").exists() and "written to" not in out


def test_a_labelled_id_without_anomalies_is_refused_before_training(make_dataset, tmp_path, capsys):
    root = make_dataset(tmp_path / "data", ids=("00",), n_train=6, n_test_normal=3, n_test_anomaly=0, seconds=1.0)
    code, out, err = _run(["--data", str(root)], capsys)
    assert code == 2 and "ID 00: 3 normal and 0 anomalous clips (AUC needs both)" in err
    assert "Traceback" not in err and "epoch" not in err


def test_an_id_with_too_few_training_clips_for_a_threshold_is_refused_before_training(
        make_dataset, tmp_path, capsys):
    root = make_dataset(tmp_path / "data", ids=("00", "02"), n_train=2, n_test_normal=2, n_test_anomaly=1,
                        seconds=1.0)
    scores_dir = tmp_path / "scores"
    for asked in (["--scores-dir", str(scores_dir)], ["--decision-quantile", "0.95"]):  # each needs thresholds
        code, out, err = _run(["--data", str(root), "--models", "pca", *asked], capsys)
        assert code == 2 and "ID 00: the training clips number 2; a decision threshold needs at least 3" in err
        assert "Traceback" not in err and "AUC" not in out and not scores_dir.exists()


def test_held_out_calibration_needs_held_out_clips(unlisted, tmp_path, capsys):
    args = ["--data", str(unlisted), "--scores-dir", str(tmp_path / "s"), "--calibration", "held-out"]
    code, out, err = _run(args + ["--models", "sequential"], capsys)  # 6 training clips per ID: 1 held out
    assert code == 2 and "ID 01: the clips sequential holds out number 1; a decision threshold needs at least 3" in err
    assert not (tmp_path / "s").exists() and "AUC" not in out
    code, out, err = _run(args + ["--models", "pca"], capsys)  # refused before any training
    assert code == 2 and "pca holds out no training clips: --calibration held-out needs networks only" in err
    assert "Traceback" not in err and "AUC" not in out


@pytest.mark.parametrize("quantile", ["0", "1", "1.5"])
def test_decision_quantile_out_of_range_is_a_usage_error(release, quantile, capsys):
    code, out, err = _run(["--data", str(release / "dev_data"), "--decision-quantile", quantile], capsys)
    assert code == 2 and "--decision-quantile must be between 0 and 1" in err


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda lines: lines[:1] + ["id_01_00000000.wav,normal_id_01_00000000.wav"] + lines[2:], r":2: expected"),
    (lambda lines: lines[:1] + ["id_01_00000000.wav,normal_id_01_00000000.wav,2"] + lines[2:], r":2: expected"),
    (lambda lines: lines[:1] + ["id_01_00000000.wav,anomaly_id_01_00000000.wav,0"] + lines[2:], ":2: labelled name"),
    (lambda lines: lines[1:], ":1: a clip line before any machine-type line"),
    (lambda lines: lines + [lines[1]], "listed twice"),
    (lambda lines: lines[:1] + ["id_01_00000000.wav"] + lines[2:], r":2: expected"),  # a clip's name alone
    (lambda lines: lines[:1] + [lines[1].replace(",", ";")] + lines[2:], r":2: expected"),  # a spreadsheet's ;
    (lambda lines: lines[:2] + ["garbage line"] + lines[2:], r":3: expected a machine type"),  # would hide line 4
])
def test_malformed_lists_name_file_and_line(tmp_path, mutate, message):
    lines = ["slider", "id_01_00000000.wav,normal_id_01_00000000.wav,0", "id_01_00000001.wav,anomaly_id_01_00000003.wav,1"]
    path = tmp_path / "eval_data_list.csv"
    path.write_text("\n".join(mutate(lines)) + "\n")
    with pytest.raises(DataError, match=message) as err:
        read_ground_truth(path, "slider")
    assert str(path) in str(err.value)


def test_a_list_saved_by_a_spreadsheet_reads_the_same(tmp_path):
    """A byte order mark, Windows line ends, short rows padded with commas, blank rows as commas."""
    lines = ["slider,,", "id_01_00000000.wav,normal_id_01_00000000.wav,0", ",,",
             "id_01_00000001.wav,anomaly_id_01_00000003.wav,1"]
    path = tmp_path / "eval_data_list.csv"
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8-sig", newline="")
    assert read_ground_truth(path, "slider") == {"id_01_00000000.wav": 0, "id_01_00000001.wav": 1}


@pytest.mark.parametrize("encoding", ["utf-16", "latin-1"])
def test_a_list_in_another_encoding_is_refused_in_one_line(tmp_path, encoding):
    path = tmp_path / "eval_data_list.csv"
    path.write_text("slider\nid_01_00000000.wav,normal_id_01_00000000.wav,0  # café\n", encoding=encoding)
    with pytest.raises(DataError, match="eval_data_list.csv: not UTF-8 text; save the ground-truth list as CSV"):
        read_ground_truth(path, "slider")


def test_lists_read_only_their_machine_and_check_clips_both_ways(release, tmp_path):
    lines = (release / "eval_data_list.csv").read_text().splitlines()
    other = ["fan", "id_01_00000000.wav,anomaly_id_01_00000000.wav,1"]
    path = tmp_path / "list.csv"
    path.write_text("\n".join(other + lines) + "\n")
    labels = read_ground_truth(path, "slider")
    assert len(labels) == 18 and set(labels.values()) == {0, 1}
    with pytest.raises(DataError, match="no clips of machine type 'valve'"):
        read_ground_truth(path, "valve")
    missing = dict(list(labels.items())[1:])
    with pytest.raises(DataError, match="missing from the ground-truth list"):
        list_clips(release / "eval_data", "slider", "test", labels=missing)
    with pytest.raises(DataError, match="ground-truth entries have no clip, e.g. id_09_00000000.wav"):
        list_clips(release / "eval_data", "slider", "test", labels={**labels, "id_09_00000000.wav": 0})


@pytest.mark.parametrize(("requested", "report", "want"), [
    (None, ("00", "02", "04"), ["00", "02", "04"]),
    (None, None, ["00", "02", "04", "06"]),
    (["all"], ("00", "02", "04"), ["00", "02", "04", "06"]),
    (["06", "00"], ("00", "02", "04"), ["00", "06"]),
])
def test_select_ids(requested, report, want):
    assert select_ids(["00", "02", "04", "06"], requested, report) == want


def test_select_ids_report_ids_absent_uses_all_and_unknown_is_an_error():
    assert select_ids(["01", "03", "05"], None, ("00", "02", "04")) == ["01", "03", "05"]
    with pytest.raises(DataError, match="ID\\(s\\) 07 not found; the data has 00, 02"):
        select_ids(["00", "02"], ["07"], None)
    with pytest.raises(DataError, match="'all' stands alone .*: got all 00"):
        select_ids(["00", "02"], ["all", "00"], None)


def test_a_recorders_own_files_arranged_train_a_detector_that_scores_new_ones(tmp_path, capsys):
    """asd arrange links normal recordings under release names; asd run trains on them alone
    (no test folder) and saves the detector; asd score --id flags a new faulty recording."""
    import soundfile as sf

    from conftest import SR, clip_signal

    rng = np.random.default_rng(0)
    rec = tmp_path / "recorder"
    rec.mkdir()
    for k in range(8):
        sf.write(rec / f"shift1-{k}.wav", clip_signal("03", False, 1.0, rng), SR)
    data = tmp_path / "plant"
    assert main(["arrange", str(rec), "--out", str(data), "--machine", "press", "--id", "03"]) == 0
    out = capsys.readouterr().out
    assert f"8 clips linked into {data / 'press' / 'train'}" in out and "asd run --data" in out
    sf.write(rec / "shift1-8.wav", clip_signal("03", False, 1.0, rng), SR)
    assert main(["arrange", str(rec), "--out", str(data), "--machine", "press", "--id", "03"]) == 0
    out = capsys.readouterr().out
    assert f"1 clip linked into {data / 'press' / 'train'}: normal_id_03_00000008.wav (originals" in out
    assert "8 already arranged: skipped" in out
    assert main(["run", "--data", str(data), "--machine", "press", "--models", "pca", "--quiet", "--device",
                 "cpu", "--save-models", str(tmp_path / "m")]) == 0
    assert "no test clips: trained only" in capsys.readouterr().out
    new, cal = tmp_path / "new", tmp_path / "cal"
    new.mkdir()
    cal.mkdir()
    sf.write(new / "today-ok.wav", clip_signal("03", False, 1.0, rng), SR)
    sf.write(new / "today-fault.wav", clip_signal("03", True, 1.0, rng), SR)
    for k in range(6):  # normal recordings the detector never trained on set its threshold
        sf.write(cal / f"shift2-{k}.wav", clip_signal("03", False, 1.0, rng), SR)
    assert main(["score", str(tmp_path / "m" / "pca.pt"), "--clips", str(new), "--id", "03", "--quiet",
                 "--device", "cpu", "--calibration-clips", str(cal), "--out", str(tmp_path / "s.json")]) == 0
    assert "| 2 clips, IDs 03 |" in capsys.readouterr().out
    blob = json.loads((tmp_path / "s.json").read_text())
    flags = dict(zip([c["file"] for c in blob["clips"]], blob["detectors"][0]["decisions"]))
    assert flags == {"today-fault.wav": 1, "today-ok.wav": 0}
