"""The benchmark command in CI-sized form."""
from __future__ import annotations

import json
import re

import pytest

from asd import bench
from asd.cli import main


def test_bench_times_both_loops_on_the_same_updates(make_dataset, tmp_path, capsys):
    root = make_dataset(tmp_path / "data", ids=("00", "02"), n_train=6, seconds=1.0)
    out = tmp_path / "bench.json"
    with pytest.warns(UserWarning, match="too few to time"):  # CI-sized: a few updates
        assert main(["bench", "--data", str(root), "--models", "sequential", "batchnorm", "--epochs", "2",
                     "--device", "cpu", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "sequential" in printed and "clips/s" in printed
    assert "asd loop in fp32, plain loop in fp32" in printed
    assert printed.endswith(f"timings written to {out}\n")
    blob = json.loads(out.read_text())
    assert [r["model"] for r in blob["training"]] == ["sequential", "batchnorm"]
    for row in blob["training"]:
        assert row["steps"] > 0 and row["plain_steps_per_s"] > 0 and row["asd_steps_per_s"] > 0
        # same seed and number of updates: the two loops end at similar losses
        assert abs(row["asd_final_loss"] - row["plain_final_loss"]) < 0.25 * row["plain_final_loss"]
    assert blob["features"]["clips"] == 12
    assert blob["features"]["librosa_clips_per_s"] > 0 and blob["features"]["torch_clips_per_s"] > 0
    assert blob["device"].startswith("CPU")


def test_bench_reads_a_release_root_and_training_clips_alone(make_dataset, tmp_path, capsys):
    make_dataset(tmp_path / "dcase" / "dev_data", ids=("00", "02"), n_train=4, seconds=1.0, test_ids=())
    too_few = f"sequential: .* updates, too few to time .* at least {bench.MIN_TIMED_STEPS}"
    with pytest.warns(UserWarning, match=too_few):
        assert main(["bench", "--data", str(tmp_path / "dcase"), "--models", "sequential", "--epochs", "1",
                     "--device", "cpu", "--max-clips", "6"]) == 0
    printed = capsys.readouterr().out
    assert f"data: {tmp_path / 'dcase' / 'dev_data'} " in printed and "| 6 training clips" in printed


def test_bench_refuses_to_compare_loops_that_made_different_updates(make_dataset, tmp_path, monkeypatch, capsys):
    """A loop that skipped a batch would look faster: the ratio is only reported for equal work."""
    root = make_dataset(tmp_path / "data", ids=("00", "02"), n_train=4, seconds=1.0, test_ids=())
    plain = bench.fit_plain

    def one_update_short(*args, **kwargs):
        hist = plain(*args, **kwargs)
        hist.steps -= 1
        return hist

    monkeypatch.setattr(bench, "fit_plain", one_update_short)
    # a bug in asd (its traceback, status 3), not a ratio
    assert main(["bench", "--data", str(root), "--models", "sequential", "--epochs", "1", "--device", "cpu"]) == 3
    assert re.search("RuntimeError: sequential: the plain loop made .* not comparable", capsys.readouterr().err)
