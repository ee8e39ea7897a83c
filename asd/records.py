"""The report-scale records committed to the repository's ``results/``, read with their provenance.

``full-<device>.json`` is what ``asd run --profile full --out`` wrote (``full-<device>-bf16.json``
with ``--precision bf16``); ``bench-<device>.json`` what ``asd bench --out`` measured on the same
device.
"""
from __future__ import annotations

import json
from pathlib import Path

from asd import metrics, synth
from asd.config import get_config
from asd.tables import format_table

COMMAND = "asd run --data $ASD_DATA --profile full --device cuda --concurrent --out results/full-<device>.json"


def full_records(folder: Path) -> list[Path]:
    """The ``full-*.json`` records in ``folder``, each device's 32-bit record before its bfloat16 one."""
    return sorted(Path(folder).glob("full-*.json"), key=lambda p: (p.name.replace("-bf16", ""), "-bf16" in p.name))


def load(folder: Path) -> dict[str, dict]:
    """The full records in ``folder`` by file name, in :func:`full_records`' order."""
    return {p.name: json.loads(p.read_text()) for p in full_records(folder)}


def stale(folder: Path) -> list[str]:
    """Names of the records in ``folder`` made with another config than the full profile's (at the
    record's own precision: a bf16 record is the full config in bf16)."""
    return [name for name, record in load(folder).items() if record["profile"] != "full"
            or record["config_hash"] != get_config("full", precision=record["config"]["precision"]).hash()]


def _listed(items: list[str], width: int = 76) -> str:
    """``items`` joined by commas on indented lines of at most ``width`` characters (a book page's
    code block), an item never split."""
    lines = [""]
    for item in items:
        if lines[-1] and len(lines[-1]) + len(item) + 3 > width - 4:  # room for ", " and a closing ","
            lines[-1] += ","
            lines.append("")
        lines[-1] += f", {item}" if lines[-1] else item
    return "\n".join("    " + line for line in lines)


def _signed(x: float) -> str:
    return f"{round(x, 3) + 0.0:+.3f}"  # + 0.0: a change that rounds to zero reads +0.000, not -0.000


def _provenance(path: Path, record: dict) -> list[str]:
    made = record.get("synthetic")
    data = f"synthetic stand-in ({synth.made_by(made)})" if made else record["data"]
    if made and made["version"] != synth.VERSION:
        data += (f"\n  (the stand-in is now v{synth.VERSION}: the AUCs below are of older data than\n"
                 "  this book's; the times stand)")
    together = "at the same time" if record.get("concurrent") else "one after another"
    lines = [path.name, f"  data: {data}",
             f"  profile: {record['profile']} | precision: {record['config']['precision']}"
             f" | device: {record.get('device_name') or record['device']}",
             f"  date: {record['date'][:10]} | commit: {(record.get('git_commit') or 'unknown')[:7]}"
             f" | config hash: {record['config_hash']}",
             f"  networks trained {together}; wall time {record['wall_seconds']:.0f} s"
             f" (log-mel features {record['features_seconds']:.1f} s)",
             "  seconds (training and scoring):",
             _listed([f"{name} {seconds:.0f}" for name, seconds in record["seconds"].items()])]
    if "setup_seconds" in record:  # records since 2026-12-04
        lines += ["  set-up seconds before the first epoch (data to the device, graph capture):",
                  _listed([f"{name} {seconds:.1f}" for name, seconds in record["setup_seconds"].items()])]
    bench = path.with_name(path.name.replace("full-", "bench-", 1))
    trained = {name: steps for name, steps in record["steps"].items() if steps}  # PCA takes no steps
    timed = json.loads(bench.read_text()) if bench.exists() else {}
    rates = ({r["model"]: r["asd_steps_per_s"] for r in timed["training"]}
             if timed and timed.get("precision", "fp32") == record["config"]["precision"] else {})
    if trained and trained.keys() <= rates.keys():  # only where the bench timed every network, at this precision
        series = sum(steps / rates[name] for name, steps in trained.items())
        lines.append(f"  in series, at the steps/s of {bench.name}: about {series:.0f} s of training")
    return lines


def describe(folder: Path) -> str:
    """Every full record in ``folder``: its provenance (data, profile, precision, device, date,
    commit, config hash), wall time, each network's seconds (and set-up seconds), how long the
    networks would have trained one after another at the steps/s of the same device's bench
    record (where it timed them at the record's precision), its AUC/pAUC table and, for a
    bfloat16 record, how far each network's average AUC/pAUC moved from the 32-bit record of the
    same device."""
    found = load(folder)
    if not found:
        return (f"No full-scale record in {folder} (records are committed to the repository's results/). "
                f"To produce one (a GPU helps):\n  {COMMAND}")
    tables, parts = {}, []
    for file, record in found.items():
        tables[file] = metrics.table(record["rows"])
        lines = [*_provenance(Path(folder) / file, record), "", format_table(tables[file])]
        fp32_file = file.replace("-bf16", "")
        if record["config"]["precision"] == "bf16" and fp32_file in tables:
            bf16, fp32 = tables[file], tables[fp32_file]
            moved = [f"{net} {_signed(bf16[net]['AVG'][0] - fp32[net]['AVG'][0])}/"
                     f"{_signed(bf16[net]['AVG'][1] - fp32[net]['AVG'][1])}" for net in bf16 if net in fp32]
            lines += ["", f"  bfloat16 minus 32 bits ({fp32_file}), average AUC/pAUC:", _listed(moved)]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)
