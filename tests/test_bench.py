"""The benchmark command in CI-sized form, and the committed full-scale records."""
from __future__ import annotations

import json
from pathlib import Path


from asd.cli import main
from asd.config import get_config

RESULTS = Path(__file__).resolve().parents[1] / "results"


def test_bench_times_both_loops_on_the_same_updates(make_dataset, tmp_path, capsys):
    root = make_dataset(tmp_path / "data", ids=("00", "02"), n_train=6, seconds=1.0)
    out = tmp_path / "bench.json"
    assert main(["bench", "--data", str(root), "--models", "sequential", "batchnorm", "--epochs", "2",
                 "--device", "cpu", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "sequential" in printed and "clips/s" in printed
    blob = json.loads(out.read_text())
    assert [r["model"] for r in blob["training"]] == ["sequential", "batchnorm"]
    for row in blob["training"]:
        assert row["steps"] > 0 and row["plain_steps_per_s"] > 0 and row["asd_steps_per_s"] > 0
        # same seed and number of updates: the two loops end at similar losses
        assert abs(row["asd_final_loss"] - row["plain_final_loss"]) < 0.25 * row["plain_final_loss"]
    assert blob["features"]["clips"] == 12
    assert blob["features"]["librosa_clips_per_s"] > 0 and blob["features"]["torch_clips_per_s"] > 0
    assert blob["device"].startswith("CPU")


def test_bench_rejects_bad_epochs(make_dataset, tmp_path, capsys):
    root = make_dataset(tmp_path / "data", ids=("00",), n_train=3, seconds=0.5)
    assert main(["bench", "--data", str(root), "--epochs", "0"]) == 2
    assert "asd: error: --epochs must be >= 1" in capsys.readouterr().err


def stale_records(folder: Path) -> list[str]:
    """Names of the ``full-*.json`` records in ``folder`` recorded with another full config (at the
    record's own precision: a bf16 record is the full config in bf16)."""
    return [p.name for p in sorted(folder.glob("full-*.json"))
            if (blob := json.loads(p.read_text()))["profile"] != "full"
            or blob["config_hash"] != get_config("full", precision=blob["config"]["precision"]).hash()]


def test_committed_full_records_match_the_full_config():
    assert stale_records(RESULTS) == [], "re-run these records or update them"


def test_a_record_of_another_config_is_caught(tmp_path):
    full, bf16 = get_config("full"), get_config("full", precision="bf16")
    record = lambda profile, cfg, precision="fp32": json.dumps(  # noqa: E731
        {"profile": profile, "config_hash": cfg.hash(), "config": {"precision": precision}})
    (tmp_path / "full-good.json").write_text(record("full", full))
    (tmp_path / "full-good-bf16.json").write_text(record("full", bf16, "bf16"))
    (tmp_path / "full-old.json").write_text(record("full", full.with_epochs(3)))
    (tmp_path / "full-quick.json").write_text(record("quick", full))
    (tmp_path / "full-wrong-bf16.json").write_text(record("full", full, "bf16"))
    assert stale_records(tmp_path) == ["full-old.json", "full-quick.json", "full-wrong-bf16.json"]
