"""The benchmark command in CI-sized form."""
from __future__ import annotations

import json
import math
import re

import pytest

from asd import bench
from asd.cli import main
from asd.config import get_config
from asd.experiment import prepare
from asd.train import split_clips


def test_bench_times_both_loops_on_the_same_updates(make_dataset, tmp_path, capsys):
    root = make_dataset(tmp_path / "data", ids=("00", "02"), n_train=6, seconds=1.0)
    out = tmp_path / "bench.json"
    with pytest.warns(UserWarning, match="too few to time"):  # CI-sized: a few updates
        assert main(["bench", "--data", str(root), "--models", "sequential", "batchnorm", "--epochs", "2",
                     "--device", "cpu", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "asd loop in fp32, plain loop in fp32" in printed
    assert printed.endswith(f"timings written to {out}\n")
    blob = json.loads(out.read_text())
    assert bench.format_training(blob["training"]) in printed
    assert [r["model"] for r in blob["training"]] == ["sequential", "batchnorm"]
    cfg = get_config("quick")
    train = prepare(cfg, root, progress=False).train
    for row in blob["training"]:
        # the updates, by hand: the training clips less the validation split, in batches, a final batch
        # of one dropped (BatchNorm cannot train on it)
        fit_cfg = cfg.fit[row["model"]]
        tr_idx, _ = split_clips(train.clip_ids, fit_cfg.validation_split, cfg.seed)
        n = int(train.subset(tr_idx).vector_counts(cfg.feature.n_frames).sum())
        per_epoch = math.ceil(n / fit_cfg.batch_size) - (n % fit_cfg.batch_size == 1)
        assert row["steps"] == 2 * per_epoch and row["epochs"] == 2 and row["batch_size"] == fit_cfg.batch_size
        assert row["speedup"] == pytest.approx(row["plain_s_per_epoch"] / row["asd_s_per_epoch"])
        assert row["asd_steps_per_s"] == pytest.approx(row["steps"] / (2 * row["asd_s_per_epoch"]))
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
