"""The command line: ``asd run`` end to end on a tiny dataset, and clean one-line errors for bad input."""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import asd
from asd import metrics, synth
from asd.cli import EXAMPLES, _parser, main
from asd.config import NETWORKS, SplitCounts, SynthConfig
from asd.experiment import load_model


@pytest.fixture(scope="module")
def root(make_dataset, tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("cli") / "data", ids=("00", "02"), n_train=8,
                        n_test_normal=4, n_test_anomaly=4, seconds=1.0)


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("asd: error: ")
    return lines[0]


def test_run_all_networks_end_to_end(root, tmp_path, capsys):
    out = tmp_path / "results.json"
    code = main(["run", "--data", str(root), "--epochs", "2", "--quiet", "--device", "cpu", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Traceback" not in captured.err
    lines = captured.out.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.split()[:1] == ["model"])
    assert lines[head].split() == ["model", "00", "02", "AVG"]
    assert [ln.split()[0] for ln in lines[head + 2: head + 2 + len(NETWORKS)]] == list(NETWORKS)
    assert f"results written to {out}" in captured.out
    assert f"data: real recordings ({root}) | machine: slider" in captured.out  # not the stand-in: no marker

    blob = json.loads(out.read_text())
    rows = blob["rows"]
    assert {(r["model"], r["id"]) for r in rows} == {(m, i) for m in NETWORKS for i in ("00", "02")}
    assert len(rows) == len(NETWORKS) * 2
    for r in rows:
        assert set(r) == {"model", "machine", "id", "auc", "pauc"}
        assert r["machine"] == "slider"
        assert 0 <= r["pauc"] <= 1
        assert r["auc"] > 0.8, r  # far above chance on clearly separable anomalies
    # the printed table shows the same numbers as the JSON
    for m in NETWORKS:
        cells = [f"{r['auc']:.3f}/{r['pauc']:.3f}" for r in rows if r["model"] == m]
        line = next(ln for ln in lines if ln.split()[:1] == [m])
        assert line.split()[1:3] == cells
    assert blob["profile"] == "quick" and blob["device"] == "cpu"
    assert all(fc["epochs"] == 2 for fc in blob["config"]["fit"].values())
    # each network's set-up before its first epoch is timed apart from its training span
    assert set(blob["setup_seconds"]) == set(blob["seconds"]) == set(NETWORKS)
    assert all(0 <= blob["setup_seconds"][m] < blob["wall_seconds"] for m in NETWORKS)


def test_run_per_id(root, tmp_path, capsys):
    out = tmp_path / "per_id.json"
    args = ["run", "--data", str(root), "--models", "sequential", "--epochs", "3", "--quiet", "--device", "cpu"]
    assert main(args + ["--per-id", "--out", str(out)]) == 0
    per_id = json.loads(out.read_text())
    assert main(args + ["--out", str(tmp_path / "all.json")]) == 0
    joint = json.loads((tmp_path / "all.json").read_text())
    capsys.readouterr()
    assert [r["id"] for r in per_id["rows"]] == ["00", "02"]
    assert all(r["auc"] > 0.8 for r in per_id["rows"])
    # per ID: 7 training clips (1 held out) x 28 vectors = 196 -> 1 batch of 256 per epoch, for each of 2 IDs;
    # jointly: 14 clips x 28 = 392 -> 2 batches per epoch
    assert per_id["steps"] == {"sequential": 2 * 3 * 1}
    assert joint["steps"] == {"sequential": 3 * 2}


def test_run_ids_subset(root, capsys):
    assert main(["run", "--data", str(root), "--ids", "02", "--models", "sequential", "--epochs", "1",
                 "--quiet", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert next(ln for ln in out.splitlines() if ln.split()[:1] == ["model"]).split() == ["model", "02", "AVG"]


def test_ids_given_twice_add_up_and_labelled_decisions_print_their_thresholds(root, tmp_path, capsys):
    assert main(["run", "--data", str(root), "--ids", "00", "--ids", "02", "--models", "pca", "--quiet",
                 "--device", "cpu", "--scores-dir", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert next(ln for ln in out.splitlines() if ln.split()[:1] == ["model"]).split() == ["model", "00", "02", "AVG"]
    assert "clips flagged anomalous (score above the 0.9 quantile" in out and "ID 02: " in out
    for mid in ("00", "02"):  # labelled both ways: the false alarms among the flags
        rows = [line.split(",") for line in (tmp_path / "s" / "pca" / f"decision_result_slider_id_{mid}.csv")
                .read_text().splitlines()]
        flags, normal = [int(flag) for _, flag in rows], [int(flag) for name, flag in rows if name.startswith("normal_")]
        assert re.search(rf"ID {mid}: {sum(flags)}/{len(rows)} \(threshold [^)]+\), normal {sum(normal)}/{len(normal)}",
                         out), out
    score, flagged = {}, []  # the highest-scoring flagged clips, from the files written
    for mid in ("00", "02"):
        folder = tmp_path / "s" / "pca"
        read = lambda kind: csv.reader((folder / f"{kind}_slider_id_{mid}.csv").read_text().splitlines())  # noqa: E731
        score |= {n: float(v) for n, v in read("anomaly_score")}
        flagged += [n for n, d in read("decision_result") if d == "1"]
    top = sorted(flagged, key=lambda n: -score[n])
    more = f" and {len(top) - 5} more" if len(top) > 5 else ""
    assert f"highest: {', '.join(f'{n} ({score[n]:.4g})' for n in top[:5])}{more}\n" in out


def test_run_selects_the_clips_once(root, monkeypatch, capsys):
    """asd run checks the clips before training and trains on that selection: the folder is not
    listed again, so what was checked is what is trained on."""
    import asd.experiment

    calls = []
    select = asd.experiment.select_clips

    def counted(*args, **kwargs):
        calls.append(args)
        return select(*args, **kwargs)

    monkeypatch.setattr(asd.experiment, "select_clips", counted)
    assert main(["run", "--data", str(root), "--models", "pca", "--quiet", "--device", "cpu"]) == 0
    assert len(calls) == 1
    assert "pca" in capsys.readouterr().out


def test_run_max_train_says_how_many_clips_each_id_trained_on(root, tmp_path, capsys):
    out = tmp_path / "few.json"
    assert main(["run", "--data", str(root), "--models", "pca", "--max-train", "3", "--quiet", "--device", "cpu",
                 "--out", str(out)]) == 0
    assert "training clips (--max-train): ID 00 3, ID 02 3" in capsys.readouterr().out
    assert json.loads(out.read_text())["train_clips"] == {"00": 3, "02": 3}
    with pytest.raises(SystemExit):
        main(["run", "--data", str(root), "--max-train", "0"])
    assert "--max-train" in capsys.readouterr().err


def test_run_on_the_stand_in_draws_the_auc_per_fault(tmp_path, capsys, figure_headers):
    small = SynthConfig(dev=SplitCounts(("00", "02"), (3, 3), (3, 3), (6, 6)),
                        eval=SplitCounts(("01",), (1,), (1,), (1,)), duration_s=1.0)
    data = synth.generate(tmp_path / "synth", small, seed=0, progress=False, workers=1)
    figures = tmp_path / "figures"
    assert main(["run", "--data", str(data / "dev_data"), "--models", "pca", "--quiet", "--device", "cpu",
                 "--figures", str(figures)]) == 0
    assert (figures / "faults.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert figure_headers["faults"].startswith("data: synthetic slider stand-in")


def test_run_draws_what_it_learnt_and_how_its_scores_fall(root, tmp_path, capsys, figure_headers):
    figures = tmp_path / "figures"
    assert main(["run", "--data", str(root), "--models", "pca", "sequential", "--epochs", "2", "--quiet",
                 "--device", "cpu", "--figures", str(figures), "--scores-dir", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    drawn = {"training", "pca_slider", "sequential_slider", "roc", "scores", "auc"}
    # a model that flags test clips also draws the highest-scoring ones' errors over time
    flagging = {m for m in ("pca", "sequential") if any(
        line.endswith(",1") for f in (tmp_path / "s" / m).glob("decision_result_*.csv")
        for line in f.read_text().splitlines())}
    assert flagging, "no model flags a clip: nothing tests the flagged clips' figure"
    drawn |= {f"{m}_slider_flagged" for m in flagging}
    assert {p.stem for p in figures.iterdir()} == drawn
    assert all((figures / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for stem in drawn)
    assert out.count("figure written to") == len(drawn)
    # each figure file says what its numbers were measured on
    assert figure_headers == {stem: f"data: real recordings ({root})" for stem in drawn}


def test_a_run_that_only_trains_draws_its_training_curves(make_dataset, tmp_path, capsys):
    plant = make_dataset(tmp_path / "plant", ids=("00", "02"), n_train=8, seconds=1.0, test_ids=())
    figures = tmp_path / "figures"
    assert main(["run", "--data", str(plant), "--models", "sequential", "--epochs", "2", "--quiet", "--device",
                 "cpu", "--save-models", str(tmp_path / "m"), "--figures", str(figures)]) == 0
    capsys.readouterr()
    assert [p.name for p in figures.iterdir()] == ["training.png"]  # no test clips: nothing else to draw
    one_epoch, nothing = tmp_path / "one", tmp_path / "nothing"
    assert main(["run", "--data", str(plant), "--models", "sequential", "--epochs", "1", "--quiet", "--device",
                 "cpu", "--save-models", str(tmp_path / "m"), "--figures", str(one_epoch)]) == 0
    assert [p.name for p in one_epoch.iterdir()] == ["training.png"]  # one epoch: a point per curve
    with pytest.warns(UserWarning, match="--figures .*: nothing to draw"):
        assert main(["run", "--data", str(plant), "--models", "pca", "--quiet", "--save-models",
                     str(tmp_path / "m"), "--figures", str(nothing)]) == 0
    assert not nothing.exists() and (tmp_path / "m" / "pca.pt").is_file()


def test_options_a_run_would_ignore_are_shown_or_said(root, make_dataset, tmp_path, capsys):
    """Decision options on labelled data show the decisions; --concurrent on the CPU and
    --scores-dir without test clips say that they change nothing."""
    base = ["run", "--data", str(root), "--models", "pca", "--quiet", "--device", "cpu"]
    assert main(base) == 0
    assert "clips flagged anomalous" not in capsys.readouterr().out  # labelled: the AUC table is the answer
    for quantile in ("0.5", "0.9"):  # 0.9, the default, given: shown all the same
        assert main([*base, "--decision-quantile", quantile]) == 0
        assert f"clips flagged anomalous (score above the {quantile} quantile of a gamma fit" in capsys.readouterr().out
    with pytest.warns(UserWarning, match="--concurrent trains on a CUDA device only: on cpu the networks train one"):
        assert main([*base, "--concurrent"]) == 0
    plant = make_dataset(tmp_path / "plant", ids=("00",), n_train=4, seconds=1.0, test_ids=())
    with pytest.warns(UserWarning, match="--scores-dir .*: no test clips, no score files"):
        assert main(["run", "--data", str(plant), "--models", "pca", "--quiet", "--scores-dir",
                     str(tmp_path / "s")]) == 0
    assert not (tmp_path / "s").exists()


def test_main_leaves_the_warning_format_as_it_found_it(tmp_path):
    import warnings

    before = warnings.formatwarning
    assert main(["run", "--data", str(tmp_path / "nowhere"), "--quiet"]) == 2
    assert warnings.formatwarning is before


def test_unknown_model(root, capsys):
    assert main(["run", "--data", str(root), "--models", "sequential", "transformer", "--quiet"]) == 2
    assert "unknown model(s) transformer" in _error_line(capsys)


def test_unknown_id(root, capsys):
    assert main(["run", "--data", str(root), "--ids", "07", "--quiet", "--device", "cpu"]) == 2
    assert _error_line(capsys) == "asd: error: ID(s) 07 not found; the data has 00, 02"


def test_corrupt_wav_in_data(make_dataset, tmp_path, capsys):
    data = make_dataset(tmp_path / "data", ids=("00",), n_train=3, n_test_normal=1, n_test_anomaly=1, seconds=0.5)
    bad = data / "slider" / "test" / "anomaly_id_00_00000000.wav"
    bad.write_bytes(np.random.default_rng(0).bytes(2048))
    assert main(["run", "--data", str(data), "--epochs", "1", "--quiet", "--device", "cpu"]) == 2
    assert _error_line(capsys).startswith(f"asd: error: {bad}: cannot read audio (")


def test_badly_named_file_in_data(make_dataset, tmp_path, capsys):
    data = make_dataset(tmp_path / "data", ids=("00",), n_train=3, n_test_normal=1, n_test_anomaly=1, seconds=0.5)
    (data / "slider" / "train" / "take2.wav").write_bytes(b"")
    assert main(["run", "--data", str(data), "--epochs", "1", "--quiet", "--device", "cpu"]) == 2
    assert "take2.wav" in _error_line(capsys)


def test_bad_profile_is_argparse_error(root, capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", "--data", str(root), "--profile", "huge"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'huge'" in err and "Traceback" not in err


def test_bad_profile_from_the_environment(root, capsys, monkeypatch):
    monkeypatch.setenv("ASD_PROFILE", "huge")
    assert main(["run", "--data", str(root), "--quiet"]) == 2
    assert "unknown profile 'huge' (from ASD_PROFILE)" in _error_line(capsys)


@pytest.mark.parametrize("option, target, message", [
    ("--out", "afile/x.json", "is a file, not a folder"),
    ("--scores-dir", "afile", "not a folder"),
    ("--save-models", "afile/models", "is a file, not a folder"),
    ("--figures", "afile", "not a folder"),
    ("--out", "adir.json", "is a folder, not a file"),
    ("--out", "afile", "the results are JSON: give a file name ending in .json"),  # a clip's name, say: kept
])
def test_an_output_that_cannot_be_written_stops_the_run_before_it_starts(root, tmp_path, capsys, option, target,
                                                                         message):
    (tmp_path / "afile").write_text("")
    (tmp_path / "adir.json").mkdir()
    assert main(["run", "--data", str(root), "--models", "pca", option, str(tmp_path / target), "--quiet",
                 "--device", "cpu"]) == 2
    line = _error_line(capsys)
    assert line.startswith(f"asd: error: {option} ") and message in line
    assert not (tmp_path / "x.json").exists() and (tmp_path / "afile").read_text() == ""


def test_a_missing_ground_truth_list_is_an_error(root, tmp_path, capsys):
    assert main(["run", "--data", str(root), "--ground-truth", str(tmp_path / "none.csv"), "--quiet"]) == 2
    assert "none.csv: no such file" in _error_line(capsys)


def test_idclf_on_one_id_fails_before_any_work(make_dataset, tmp_path, capsys, monkeypatch):
    data = make_dataset(tmp_path / "data", ids=("00",), n_train=3, n_test_normal=1, n_test_anomaly=1, seconds=0.5)

    def extract(*args, **kwargs):
        raise AssertionError("features extracted before the check")

    monkeypatch.setattr("asd.experiment.extract", extract)
    assert main(["run", "--data", str(data), "--models", "pca", "idclf", "--quiet", "--device", "cpu",
                 "--no-cache"]) == 2
    assert "idclf tells machine IDs apart: it needs at least 2, the data has ID 00 only" in _error_line(capsys)
    assert "pca" not in capsys.readouterr().out  # nothing trained or printed


def test_bench_names_what_it_cannot_time(root, capsys):
    assert main(["bench", "--data", str(root), "--models", "pca", "--device", "cpu"]) == 2
    assert "asd bench times networks: pca is not one" in _error_line(capsys)


@pytest.mark.parametrize("args, message", [
    (["synth", "OUT", "--seed", "-1"], "argument --seed: must be at least 0, got -1"),
    (["run", "--data", "DATA", "--seed", "-1"], "argument --seed: must be at least 0, got -1"),
    (["run", "--data", "DATA", "--seed", str(2**32)], f"argument --seed: must be at most {2**32 - 1}, got {2**32}"),
    (["bench", "--max-clips", "0"], "argument --max-clips: must be at least 1, got 0"),
    (["run", "--data", "DATA", "--epochs", "0"], "argument --epochs: must be at least 1, got 0"),
    (["bench", "--epochs", "-3"], "argument --epochs: must be at least 1, got -3"),
    (["score", "M.pt", "--clips", "C", "--id", "1"], "argument --id: a machine ID is two digits (00, 01, ...), got '1"),
    (["arrange", "R", "--out", "D", "--machine", "press", "--id", "3"], "argument --id: a machine ID is two digits"),
    (["bench", "--max-clips", "two"], "argument --max-clips: invalid int value: 'two'"),
])
def test_counts_out_of_range_are_argparse_errors(args, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(args)
    err = capsys.readouterr().err
    assert info.value.code == 2 and message in err and "Traceback" not in err


@pytest.mark.parametrize("command", ["synth", "download"])
def test_a_file_where_a_folder_is_written_is_named_before_any_work(command, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    assert main([command, str(notes)]) == 2
    assert _error_line(capsys) == f"asd: error: {notes}: not a folder" and notes.read_text() == "mine"


def test_an_asd_home_that_is_a_file_is_named(root, tmp_path, capsys, monkeypatch):
    (tmp_path / "cache").write_text("")
    monkeypatch.setenv("ASD_HOME", str(tmp_path / "cache"))
    assert main(["run", "--data", str(root), "--models", "pca", "--quiet"]) == 2
    assert _error_line(capsys) == f"asd: error: ASD_HOME {tmp_path / 'cache'}: a file, not a folder"
    monkeypatch.setenv("ASD_HOME", str(tmp_path / "cache" / "sub"))  # under a file: no folder can be made
    assert main(["score", str(tmp_path / "pca.pt"), "--clips", str(root)]) == 2
    assert _error_line(capsys) == (f"asd: error: {tmp_path / 'cache' / 'sub'}: asd keeps its caches there, and cannot "
                                   "write there (Not a directory): set ASD_HOME to a folder you can write")


def test_a_machine_type_is_a_folder_name(root, tmp_path, capsys):
    """As a shell completes a folder (``slider/``) it is the machine type; a path is not one (its
    score files and figures would land in folders of their own)."""
    assert main(["run", "--data", str(root), "--machine", "slider/", "--models", "pca", "--quiet",
                 "--scores-dir", str(tmp_path / "sc")]) == 0
    assert sorted(p.name for p in (tmp_path / "sc" / "pca").iterdir())[0].startswith("anomaly_score_slider_id_")
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--data", str(root), "--machine", "../slider", "--models", "pca"])
    assert exit_.value.code == 2
    assert "a machine type is a folder name (letters, digits, _ - .), got '../slider'" in capsys.readouterr().err


def test_bad_device(root, capsys):
    assert main(["run", "--data", str(root), "--device", "tpu", "--models", "sequential", "--quiet"]) == 2
    assert "unknown device 'tpu'" in _error_line(capsys)


def test_python_m_asd_help():
    proc = subprocess.run([sys.executable, "-m", "asd", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: asd")
    commands = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert all(f"\n    {name} " in proc.stdout for name in commands)  # each command with what it does


def test_the_file_tools_start_without_pytorch():
    """`asd --help`, `asd cut`, `asd arrange` and `asd download` load neither PyTorch nor its second of start-up."""
    code = "import sys, asd.cli, asd.data, asd.download; print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "False", proc.stderr


def test_a_reader_that_stops_early_costs_no_output_files(root, tmp_path):
    """`asd run ... | head -1`: the pipe closes after one line; the run still saves what it was
    asked to, exits 0 and prints no traceback."""
    env = {**os.environ, "ASD_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen([sys.executable, "-m", "asd", "run", "--data", str(root), "--models", "pca",
                             "--quiet", "--out", str(tmp_path / "r.json"), "--save-models", str(tmp_path / "m")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # the reader has gone before the first line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err
    assert (tmp_path / "r.json").is_file() and (tmp_path / "m" / "pca.pt").is_file()


def test_an_abbreviated_option_is_an_error_not_a_guess(root, capsys):
    """`asd run --id 00` is not `--ids 00` (asd score has --id: the two must not blur)."""
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--data", str(root), "--id", "00", "--models", "pca", "--quiet"])
    assert exit_.value.code == 2 and "unrecognized arguments: --id" in capsys.readouterr().err


def test_every_option_of_every_command_says_what_it_does(capsys):
    parser = _parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    for name, command in commands.items():
        with pytest.raises(SystemExit):
            main([name, "--help"])
        shown = " ".join(capsys.readouterr().out.split())  # unwrapped
        for action in command._actions:
            assert action.help, f"asd {name} {'/'.join(action.option_strings) or action.dest} has no help"
            said = " ".join(command._get_formatter()._expand_help(action).split())  # %(default)s filled in
            assert said in shown, f"asd {name} --help does not show {said!r}"


def test_version_names_the_package_and_the_libraries_behind_its_numbers(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"asd {asd.__version__} (python ") and out.count("\n") == 1  # one line, unwrapped
    assert f"torch {torch.__version__}" in out and "librosa " in out


def test_a_bare_asd_shows_the_commands_and_where_to_start(capsys):
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: asd") and "Traceback" not in err
    commands = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert all(f"\n    {name} " in err for name in commands)  # each command with what it does
    assert "start with: asd synth" in err


def test_an_option_without_a_command_is_argparse_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--quiet"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: asd") and "Traceback" not in err


def test_a_bug_keeps_its_traceback_and_a_status_of_its_own(root, monkeypatch, capsys):
    """Only bad input becomes a one-line message; an unexpected error is a bug: its traceback, and
    status 3, which neither an alarm (1) nor bad input (2) gives; Ctrl-C is 130."""
    import asd.experiment

    def bug(*args, **kwargs):
        raise KeyError("a bug, not bad input")

    monkeypatch.setattr(asd.experiment, "run_selection", bug)
    assert main(["run", "--data", str(root), "--quiet", "--device", "cpu"]) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and "KeyError: 'a bug, not bad input'" in err and "a bug in asd" in err

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(asd.experiment, "run_selection", interrupt)
    assert main(["run", "--data", str(root), "--quiet", "--device", "cpu"]) == 130
    assert capsys.readouterr().err == "asd: interrupted\n"


def test_synth_output_is_accepted_by_run(tmp_path, capsys, monkeypatch):
    """`asd synth OUT` prints the next command, and `asd run --data OUT` (a release root) works."""
    from asd import config
    from asd.config import SplitCounts, SynthConfig

    tiny = SynthConfig(dev=SplitCounts(("00", "02"), (3, 3), (2, 2), (2, 2)),
                       eval=SplitCounts(("01", "03"), (3, 3), (2, 2), (2, 2)), duration_s=1.0)
    monkeypatch.setattr(config, "QUICK_SYNTH", tiny)
    assert main(["synth", str(tmp_path / "out"), "--profile", "quick"]) == 0
    printed = capsys.readouterr().out
    assert f"next: asd run --data {tmp_path / 'out'}" in printed
    code = main(["run", "--data", str(tmp_path / "out"), "--epochs", "1", "--quiet", "--device", "cpu",
                 "--models", "pca"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "IDs: 00 02" in out.out
    # the table says what it was measured on: the stand-in, wherever asd synth wrote it
    assert f"data: synthetic slider stand-in at {tmp_path / 'out' / 'dev_data'} (generator v" in out.out
    code = main(["run", "--data", str(tmp_path / "out" / "eval_data"), "--epochs", "1", "--quiet", "--device", "cpu",
                 "--models", "pca"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "IDs: 01 03" in out.out
    assert "data: synthetic slider stand-in at" in out.out


def test_synth_in_a_louder_hall(tmp_path, capsys, monkeypatch):
    """`asd synth --hall-db 6` writes the same clips in a louder hall and says so; out of range, one line."""
    from asd import config

    tiny = SynthConfig(dev=SplitCounts(("00",), (1,), (1,), (1,)), eval=SplitCounts(("01",), (1,), (1,), (1,)),
                       duration_s=1.0)
    monkeypatch.setattr(config, "QUICK_SYNTH", tiny)
    assert main(["synth", str(tmp_path / "usual"), "--profile", "quick"]) == 0
    assert main(["synth", str(tmp_path / "loud"), "--profile", "quick", "--hall-db", "6"]) == 0
    assert "(quick profile, seed 0, hall +6 dB) in" in capsys.readouterr().out
    assert synth.read_marker(tmp_path / "loud")["hall_db"] == 6.0
    name = "dev_data/slider/test/anomaly_id_00_00000000.wav"
    level = {hall: 10 * np.log10(np.mean(sf.read(tmp_path / hall / name)[0] ** 2)) for hall in ("usual", "loud")}
    assert 0 < level["loud"] - level["usual"] < 6
    assert main(["synth", str(tmp_path / "bad"), "--profile", "quick", "--hall-db", "25"]) == 2
    assert _error_line(capsys) == "asd: error: --hall-db: the hall can be at most 20 dB louder or quieter, got 25 dB"
    assert not (tmp_path / "bad").exists()


def test_download_rejects_an_unknown_machine(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["download", str(tmp_path), "--machine", "blender"])
    assert info.value.code == 2 and "invalid choice: 'blender'" in capsys.readouterr().err


def test_every_command_ends_its_help_with_examples_that_parse(capsys):
    commands = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert set(EXAMPLES) == set(commands)
    for name, lines in EXAMPLES.items():
        with pytest.raises(SystemExit):
            main([name, "--help"])
        shown = capsys.readouterr().out
        assert shown.rstrip().endswith(lines[-1]), name
        for line in lines:
            assert line in shown
            argv = shlex.split(line, comments=True)
            assert argv[0] == "asd" and argv[1] == name, line
            args = _parser().parse_args(argv[1:])  # argparse exits on an example that no longer parses
            assert args.command == name


def test_repeated_list_options_add_up(root, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["run", "--data", str(root), "--models", "pca", "--models", "sequential", "pca", "--epochs", "1",
                 "--quiet", "--device", "cpu", "--out", str(out)]) == 0
    assert list(dict.fromkeys(row["model"] for row in json.loads(out.read_text())["rows"])) == ["pca", "sequential"]


def test_a_detector_saved_without_enough_clips_for_thresholds_is_saved_all_the_same(make_dataset, tmp_path, capsys):
    plant = make_dataset(tmp_path / "plant", ids=("00",), n_train=2, seconds=1.0, test_ids=())
    models, out = tmp_path / "m", tmp_path / "r.json"
    with pytest.warns(UserWarning, match="asd score will need --calibration-clips"):
        assert main(["run", "--data", str(plant), "--models", "pca", "--quiet", "--save-models", str(models),
                     "--out", str(out)]) == 0  # no decisions asked: the thresholds are only shown
    printed = capsys.readouterr().out
    assert "pca: no training decision threshold for ID 00: a gamma fit needs at least 3 scores, got 2" in printed
    assert (models / "pca.pt").is_file() and json.loads(out.read_text())["thresholds"] == {"pca": None}


def test_arrange_prints_the_run_that_reads_what_it_arranged(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("new", 2), ("quiet", 3)):
        (tmp_path / "rec" / split).mkdir(parents=True)
        for i in range(n):
            sf.write(tmp_path / "rec" / split / f"take {i}.wav", 0.1 * rng.standard_normal(16000), 16000)
    data = tmp_path / "my plant"
    arrange = ["arrange", "--out", str(data), "--machine", "press", "--id", "00"]
    assert main([*arrange, str(tmp_path / "rec" / "train")]) == 0
    hint = capsys.readouterr().out.splitlines()[-1]
    assert hint == f"train on them: asd run --data '{data}' --machine press --save-models DIR"  # quoted: a space
    assert main([*arrange, str(tmp_path / "rec" / "new"), "--split", "test"]) == 2  # what are they? asked, not guessed
    assert _error_line(capsys) == ("asd: error: --split test needs --label: normal (recordings known to be normal, "
                                   "e.g. to set thresholds), anomaly (known faults) or unlabelled (recordings to check)")
    assert not (data / "press" / "test").exists()
    assert main([*arrange, str(tmp_path / "rec" / "new"), "--split", "test", "--label", "unlabelled"]) == 0
    hint = capsys.readouterr().out.splitlines()[-1]
    assert hint.startswith("score them: ")
    command = [str(tmp_path / "scores") if a == "DIR" else a for a in shlex.split(hint.split(": ", 1)[1])]
    assert command[:2] == ["asd", "run"]
    code = main([*command[1:], "--models", "pca", "--quiet", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    written = (tmp_path / "scores" / "pca" / "anomaly_score_press_id_00.csv").read_text().splitlines()
    assert sorted(line.split(",")[0] for line in written) == ["id_00_00000000.wav", "id_00_00000001.wav"]
    # normal recordings arranged as test clips: the run that sets thresholds from them, too
    assert main(["arrange", "--out", str(tmp_path / "quiet"), "--machine", "press", "--id", "00",
                 str(tmp_path / "rec" / "quiet"), "--split", "test", "--label", "normal"]) == 0
    hint = capsys.readouterr().out.splitlines()[-2]
    assert hint.startswith("set a detector's thresholds from them: ")
    command = [{"TRAINING": str(data), "DIR": str(tmp_path / "m")}.get(a, a)
               for a in shlex.split(hint.split(": ", 1)[1])]
    assert main([*command[1:], "--models", "pca", "--quiet", "--device", "cpu"]) == 0
    assert "the ID's calibration clips' scores" in capsys.readouterr().out
    assert load_model(tmp_path / "m" / "pca.pt")["calibration_scores"].shape == (3,)


def test_run_alarm_after_prints_the_alarms_its_decision_files_give(root, tmp_path, capsys):
    with pytest.warns(UserWarning, match=r"ID\(s\) 00, 02: normal and anomalous clips are numbered apart .*"
                                         "counts them label by label"):
        assert main(["run", "--data", str(root), "--models", "pca", "--quiet", "--device", "cpu",
                     "--alarm-after", "2", "--scores-dir", str(tmp_path / "s")]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "alarms (2 flagged in a row):" in ln)
    for path in sorted((tmp_path / "s" / "pca").glob("decision_result_slider_id_*.csv")):
        mid = path.stem.split("_")[-1]
        names, flags = zip(*(ln.split(",") for ln in path.read_text().splitlines()))
        raised = metrics.alarms(np.full(len(flags), mid), np.array(flags, int), 2)
        first = f" ({'first ' * int(raised.sum() > 1)}{names[np.argmax(raised)]})" if raised.any() else ""
        assert f"ID {mid}: {raised.sum()}{first}" in line.split("in a row): ")[1].split("   ")


def test_cut_prints_what_it_cut_kept_and_dropped_and_its_clips_arrange(tmp_path, capsys):
    rng = np.random.default_rng(0)
    (tmp_path / "rec").mkdir()
    sf.write(tmp_path / "rec" / "press-0800.wav", 0.1 * rng.standard_normal(int(3.2 * 16000)), 16000)
    cut = ["cut", str(tmp_path / "rec"), "--out", str(tmp_path / "clips"), "--seconds", "1"]
    assert main(cut) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (f"3 clips of up to 1 s written to {tmp_path / 'clips'}: press-0800_000000s.wav ... "
                      "press-0800_000002s.wav")
    assert out[1] == f"final piece under 0.5 s dropped from {tmp_path / 'rec' / 'press-0800.wav'}"
    assert main(cut) == 0
    assert capsys.readouterr().out.splitlines()[0] == "3 clips there already, the same audio: kept"
    # the printed next step arranges the clips, in time order, under release names
    hint = out[-1].split("next: ")[1].split(" (to train")[0]
    command = [{"DATA": str(tmp_path / "data"), "NAME": "press", "NN": "00"}.get(a, a) for a in shlex.split(hint)]
    assert main(command[1:]) == 0
    names = (tmp_path / "data" / "press" / "train_names.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in names] == [f"normal_id_00_{i:08d}.wav" for i in range(3)]
    assert [os.path.basename(line.split(",")[1]) for line in names] == [
        f"press-0800_00000{i}s.wav" for i in range(3)]


def test_run_warns_when_its_calibration_clips_are_its_training_clips(root, capsys):
    train = sorted((root / "slider" / "train").glob("*.wav"))
    with pytest.warns(UserWarning, match=rf"{len(train)} calibration clips are also training clips "
                                         rf"\(e\.g\. {train[0].name}\): thresholds fitted to them flag too few"):
        assert main(["run", "--data", str(root), "--models", "pca", "--quiet", "--device", "cpu",
                     "--calibration-clips", str(root / "slider" / "train")]) == 0


def test_score_files_quote_a_recorders_name_with_a_comma(root, tmp_path, capsys):
    assert main(["run", "--data", str(root), "--models", "pca", "--quiet", "--device", "cpu",
                 "--save-models", str(tmp_path / "m")]) == 0
    recorder = tmp_path / "recorder"
    recorder.mkdir()
    for name, clip in zip(("shift 1, take 2.wav", "plain.wav"), sorted((root / "slider" / "test").glob("*_id_00_*"))):
        shutil.copy(clip, recorder / name)
    assert main(["score", str(tmp_path / "m" / "pca.pt"), "--clips", str(recorder), "--id", "00", "--quiet",
                 "--device", "cpu", "--scores-dir", str(tmp_path / "s"), "--out", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    scores = dict(zip((Path(c["file"]).name for c in report["clips"]), report["detectors"][0]["scores"]))
    for kind in ("anomaly_score", "decision_result"):
        with open(tmp_path / "s" / "pca" / f"{kind}_slider_id_00.csv", newline="") as f:
            rows = list(csv.reader(f))
        assert sorted(name for name, _ in rows) == sorted(scores)
    with open(tmp_path / "s" / "pca" / "anomaly_score_slider_id_00.csv", newline="") as f:
        assert {name: float(value) for name, value in csv.reader(f)} == pytest.approx(scores)


def test_new_only_leaves_a_clip_still_being_recorded_for_the_next_call(root, tmp_path, capsys):
    """An hourly job may find the recorder writing its newest file: no audio yet, no header yet or
    a part of a clip. That clip is neither scored nor counted, so that the next call scores it
    whole; a short clip that is not the newest is scored, as any clip."""
    assert main(["run", "--data", str(root), "--models", "pca", "--quiet", "--save-models", str(tmp_path / "m")]) == 0
    whole = sorted((root / "slider" / "test").glob("normal_id_00_*.wav"))[:3]
    recorder, state = tmp_path / "recorder", tmp_path / "runs.json"
    recorder.mkdir()
    for i, clip in enumerate(whole[:2]):
        shutil.copy(clip, recorder / f"rec{i}.wav")
    written = whole[2].read_bytes()
    score = ["score", str(tmp_path / "m" / "pca.pt"), "--clips", str(recorder), "--id", "00", "--quiet",
             "--alarm-after", "2", "--alarm-state", str(state), "--new-only"]
    capsys.readouterr()
    part_seconds = (len(written) // 3 - 44) / 2 / 16000  # a third of the samples (16-bit mono, 44-byte header)
    for part, why in ((written[:30], "cannot be read yet"), (written[:44], "holds no audio yet"),
                      (written[: len(written) // 3], f"is {part_seconds:.3g} s long, the training clips 1 s")):
        (recorder / "rec2.wav").write_bytes(part)
        assert main(score) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"rec2.wav: the newest clip of ID 00 {why}")
        assert "left for the next call, as it may still be being recorded" in out
        assert ("a recording's short last piece, as asd cut keeps it, is scored once a later clip comes" in out) \
            == why.startswith("is ")
        assert json.loads(state.read_text())["detectors"]["pca"]["00"]["last_clip"] == "rec1.wav"
        assert "| 2 clips, IDs 00" in out or "no other clips after those counted" in out
    (recorder / "rec2.wav").write_bytes(written)  # the recorder has finished it
    assert main(score) == 0
    assert "| 1 clip, IDs 00" in capsys.readouterr().out
    assert json.loads(state.read_text())["detectors"]["pca"]["00"]["last_clip"] == "rec2.wav"
    (recorder / "rec3.wav").write_bytes(written[: len(written) // 3])  # a short clip, then a whole one after it
    shutil.copy(whole[0], recorder / "rec4.wav")
    with pytest.warns(UserWarning, match="rec3.wav"):
        assert main(score) == 0
    assert "| 2 clips, IDs 00" in capsys.readouterr().out


def test_ctrl_c_twice_ends_asd_synth_in_one_line(tmp_path):
    """Ctrl-C reaches every process of the terminal's group, asd synth's workers too: pressed
    twice while they render, the command still ends, with one line and status 130."""
    out, env = tmp_path / "syn", {**os.environ, "ASD_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from asd.cli import main; sys.exit(main())",
                             "synth", str(out)], env=env, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while not list(out.glob("dev_data/slider/*/*.wav")) and time.monotonic() < deadline:
        time.sleep(0.1)
    for _ in range(2):
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(0.5)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:  # hung: its workers too
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    assert proc.returncode in (130, -signal.SIGINT), err  # the second press may end it as it exits: 130 to a shell
    assert err.strip().splitlines()[-1] == "asd: interrupted" and "Traceback" not in err, err


def test_a_calibration_clip_too_short_stops_the_run_before_training(root, tmp_path, capsys, monkeypatch):
    cal, rng = tmp_path / "cal", np.random.default_rng(0)
    cal.mkdir()
    for mid in ("00", "02"):
        for n in range(3):
            sf.write(cal / f"id_{mid}_{n:08d}.wav", rng.normal(0, 0.1, 16000).astype("float32"), 16000)
    sf.write(cal / "id_00_00000003.wav", rng.normal(0, 0.1, 1600).astype("float32"), 16000)  # 0.1 s: a header fine
    monkeypatch.setattr("asd.experiment.run_selection",
                        lambda *a, **k: pytest.fail("trained before the clips were read"))
    assert main(["run", "--data", str(root), "--models", "pca", "--calibration-clips", str(cal), "--quiet",
                 "--device", "cpu"]) == 2
    assert "id_00_00000003.wav: 1600 samples, need at least" in _error_line(capsys)


def test_a_detector_saved_without_thresholds_says_so_on_labelled_data_too(root, tmp_path, capsys):
    """Two training clips per ID fit no gamma: saved all the same, with a warning where no flagged
    clips are printed (labelled test clips), not only an error at the first asd score."""
    with pytest.warns(UserWarning, match=r"pca.pt: saved, but pca: no training decision threshold for ID 00.*"
                                         r"asd score will need --calibration-clips"):
        assert main(["run", "--data", str(root), "--models", "pca", "--max-train", "2", "--quiet", "--device", "cpu",
                     "--save-models", str(tmp_path / "m")]) == 0
    assert (tmp_path / "m" / "pca.pt").is_file()


def test_paths_that_are_not_what_an_option_needs_are_named(root, tmp_path, capsys, monkeypatch):
    (tmp_path / "afile").write_text("")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    for args, message in ((["run", "--data", str(tmp_path / "afile")], f"--data {tmp_path / 'afile'}: not a folder"),
                          (["run", "--data", str(tmp_path / "none")], f"--data {tmp_path / 'none'}: no such folder"),
                          (["run", "--data", str(tmp_path / "loop")],
                           f"--data {tmp_path / 'loop'}: a symbolic link that leads to no folder"),
                          (["bench", "--data", str(tmp_path / "afile")], f"--data {tmp_path / 'afile'}: not a folder"),
                          (["run", "--data", str(root), "--ground-truth", str(tmp_path)], "a folder, not a file")):
        assert main([*args, "--device", "cpu"]) == 2
        assert message in _error_line(capsys)
    monkeypatch.setenv("ASD_DATA", str(tmp_path / "afile"))  # the book's and asd bench's default data
    assert main(["bench", "--device", "cpu"]) == 2
    assert f"ASD_DATA {tmp_path / 'afile'}: not a folder" in _error_line(capsys)
    monkeypatch.delenv("ASD_DATA")
    monkeypatch.setenv("ASD_EVAL_DATA", str(tmp_path))
    assert main(["bench", "--device", "cpu"]) == 2
    assert "ASD_EVAL_DATA is set" in _error_line(capsys)


def test_bench_refuses_idclf_on_one_id(make_dataset, tmp_path, capsys):
    data = make_dataset(tmp_path / "data", ids=("00",), n_train=3, n_test_normal=1, n_test_anomaly=1, seconds=0.5)
    assert main(["bench", "--data", str(data), "--models", "idclf", "--device", "cpu"]) == 2
    assert "idclf tells machine IDs apart: it needs at least 2, the data has ID 00 only" in _error_line(capsys)


@pytest.mark.parametrize("args", [["run", "--models", "pca,sequential"], ["run", "--ids", "00,02"],
                                  ["bench", "--models", "baseline,sequential"]])
def test_a_list_joined_by_commas_gets_a_hint(root, args, capsys):
    assert main([args[0], "--data", str(root), *args[1:], "--device", "cpu"]) == 2
    assert _error_line(capsys).endswith(": separate the values with spaces, not commas")
