"""asd.records: the committed full-scale records, described from real (tiny) runs' files."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from asd import metrics, records, synth
from asd.cli import main
from asd.config import get_config
from asd.tables import NO_ROWS, Table, format_table

RESULTS = Path(__file__).resolve().parents[1] / "results"


def test_committed_full_records_match_the_full_config():
    assert records.stale(RESULTS) == [], "re-run these records or update them"


def test_a_record_of_another_config_is_caught(tmp_path):
    full, bf16 = get_config("full"), get_config("full", precision="bf16")
    record = lambda profile, cfg, precision="fp32": json.dumps(  # noqa: E731
        {"profile": profile, "config_hash": cfg.hash(), "config": {"precision": precision}})
    (tmp_path / "full-good.json").write_text(record("full", full))
    (tmp_path / "full-good-bf16.json").write_text(record("full", bf16, "bf16"))
    (tmp_path / "full-old.json").write_text(record("full", full.with_epochs(3)))
    (tmp_path / "full-quick.json").write_text(record("quick", full))
    (tmp_path / "full-wrong-bf16.json").write_text(record("full", full, "bf16"))
    assert records.stale(tmp_path) == ["full-old.json", "full-quick.json", "full-wrong-bf16.json"]


def test_records_are_described_with_provenance_series_time_and_the_bf16_change(make_dataset, tmp_path):
    root = make_dataset(tmp_path / "data", ids=("00", "02"), n_train=6, seconds=1.0)
    folder = tmp_path / "results"
    run = ["run", "--data", str(root), "--models", "sequential", "batchnorm", "--epochs", "2", "--device", "cpu",
           "--quiet"]
    assert main([*run, "--out", str(folder / "full-cpu.json")]) == 0
    assert main([*run, "--precision", "bf16", "--out", str(folder / "full-cpu-bf16.json")]) == 0
    with pytest.warns(UserWarning, match="too few to time"):
        assert main(["bench", "--data", str(root), "--models", "sequential", "batchnorm", "--epochs", "1",
                     "--device", "cpu", "--out", str(folder / "bench-cpu.json")]) == 0

    text = records.describe(folder)
    fp32_part, bf16_part = text.split("\n\nfull-cpu-bf16.json\n")  # the 32-bit record first
    assert fp32_part.startswith("full-cpu.json\n") and "precision: fp32" in fp32_part
    assert "precision: bf16" in bf16_part and f"data: real recordings ({root})" in fp32_part
    fp32, bf16 = (json.loads((folder / name).read_text()) for name in ("full-cpu.json", "full-cpu-bf16.json"))
    assert f"wall time {fp32['wall_seconds']:.0f} s" in fp32_part
    assert ", ".join(f"{n} {s:.1f}" for n, s in fp32["setup_seconds"].items()) in fp32_part
    rates = {r["model"]: r["asd_steps_per_s"] for r in json.loads((folder / "bench-cpu.json").read_text())["training"]}
    series = sum(steps / rates[name] for name, steps in fp32["steps"].items())
    assert f"in series, at the steps/s of bench-cpu.json: about {series:.0f} s" in fp32_part
    assert "in series" not in bf16_part  # no bench-cpu-bf16.json
    bench = json.loads((folder / "bench-cpu.json").read_text())
    (folder / "bench-cpu.json").write_text(json.dumps({**bench, "precision": "bf16"}))
    assert "in series" not in records.describe(folder)  # bf16 steps/s do not time an fp32 record
    (folder / "bench-cpu.json").write_text(json.dumps(bench))
    assert main([*run[:4], "sequential", "batchnorm", "pca", *run[6:], "--out", str(folder / "full-cpu.json")]) == 0
    assert f"about {series:.0f} s" in records.describe(folder)  # PCA takes no steps: the estimate stands
    assert main([*run[:4], "sequential", "baseline", *run[6:], "--out", str(folder / "full-cpu.json")]) == 0
    assert "in series" not in records.describe(folder)  # the bench did not time the baseline
    assert format_table(metrics.table(fp32["rows"])) in fp32_part
    t32, t16 = metrics.table(fp32["rows"]), metrics.table(bf16["rows"])
    for name in ("sequential", "batchnorm"):
        auc, pauc = (round(t16[name]["AVG"][k] - t32[name]["AVG"][k], 3) + 0.0 for k in (0, 1))
        assert f"{name} {auc:+.3f}/{pauc:+.3f}" in bf16_part
    assert "-0.000" not in text
    assert all(len(line) <= 76 for line in text.splitlines() if line.startswith("    "))  # lists wrap


def test_an_older_stand_ins_record_says_its_aucs_are_of_older_data(tmp_path):
    record = {"rows": [{"model": "sequential", "machine": "slider", "id": "00", "auc": 0.9, "pauc": 0.8}],
              "synthetic": {"version": synth.VERSION - 1, "seed": 0}, "data": "x", "profile": "full",
              "config": {"precision": "fp32"}, "device": "cuda", "device_name": "GPU", "date": "2026-01-01T00:00:00",
              "git_commit": None, "config_hash": "abc", "concurrent": False, "wall_seconds": 10.0,
              "features_seconds": 1.0, "seconds": {"sequential": 9.0}, "steps": {"sequential": 100}}
    (tmp_path / "full-gpu.json").write_text(json.dumps(record))
    text = records.describe(tmp_path)
    assert f"generator v{synth.VERSION - 1}" in text and f"now v{synth.VERSION}" in text
    assert "commit: unknown" in text and "one after another" in text
    assert "set-up seconds" not in text  # an older record has none


def test_a_record_names_its_stand_ins_hall_as_data_labels_do(tmp_path):
    made = {"version": synth.VERSION, "seed": 2, "hall_db": 6.0}
    record = {"rows": [{"model": "pca", "machine": "slider", "id": "00", "auc": 0.9, "pauc": 0.8}],
              "synthetic": made, "data": "x", "profile": "full", "config": {"precision": "fp32"},
              "device": "cpu", "date": "2026-01-01T00:00:00", "git_commit": None, "config_hash": "abc",
              "wall_seconds": 10.0, "features_seconds": 1.0, "seconds": {"pca": 9.0}, "steps": {"pca": 0}}
    (tmp_path / "full-cpu.json").write_text(json.dumps(record))
    assert f"data: synthetic stand-in (generator v{synth.VERSION}, seed 2, hall +6 dB)\n" in records.describe(tmp_path)


def test_lists_wrap_between_items_never_inside_one():
    items = [f"network{i} +0.00{i}/-0.00{i}" for i in range(9)]
    lines = records._listed(items, width=60).splitlines()
    assert len(lines) > 1 and all(len(line) <= 60 and line.startswith("    ") for line in lines)
    assert " ".join(line.strip() for line in lines) == ", ".join(items)


def test_a_record_without_labelled_test_clips_is_described_without_a_table(tmp_path):
    record = json.loads((RESULTS / "full-h200.json").read_text())
    (tmp_path / "full-gpu.json").write_text(json.dumps({**record, "rows": []}))  # asd run --scores-dir --out
    text = records.describe(tmp_path)
    assert text.startswith("full-gpu.json\n") and text.endswith(NO_ROWS)
    assert NO_ROWS in Table({})._repr_html_()


def test_no_record_says_how_to_make_one(tmp_path):
    text = records.describe(tmp_path)
    assert text.startswith("No full-scale record") and records.COMMAND in text
