"""asd.tables: the tables the chapters display, as HTML and as text."""
from __future__ import annotations

import pytest

from asd.metrics import table
from asd.reference import REPORT
from asd.tables import Table, TextTable, format_table


def test_text_table_renders_as_text_and_html() -> None:
    t = TextTable(["network", "epochs", "loss"], [["baseline", 30, "223.4"], ["sequential <a>", 15, "0.3375"]],
                  caption="training")
    lines = repr(t).splitlines()
    assert lines[0] == "training" and len({len(line) for line in lines[1:]}) == 1  # aligned columns
    assert lines[2].startswith("baseline ") and lines[2].endswith(" 223.4")
    page = t._repr_html_()
    assert page.count("<tr>") == 3 and "sequential &lt;a&gt;" in page  # cells are escaped
    # The caption sits above the sideways-scrolling table, not inside it (where it would be cut off).
    assert page.index("<figcaption>training</figcaption>") < page.index('<div style="overflow-x: auto"><table')


def test_grouped_headers_span_their_columns_and_join_in_text() -> None:
    header = ["detector", ("ID 00", "AUC"), ("ID 00", "pAUC"), ("average", "AUC"), "clips"]
    t = TextTable(header, [["pca", "+0.005", "-0.026", "+0.001", "12"]])
    assert repr(t).splitlines()[0].split("  ")[1:] == ["ID 00 AUC", "ID 00 pAUC", "average AUC", "clips"]
    top, sub = t._repr_html_().split("<thead>")[1].split("</thead>")[0].split("</tr><tr>")
    assert '<th rowspan="2" style="text-align: left">detector</th><th colspan="2">ID 00</th>' in top
    assert '<th colspan="1">average</th><th rowspan="2">clips</th>' in top
    assert sub.startswith("<th>AUC</th><th>pAUC</th><th>AUC</th>")


def test_text_table_rejects_ragged_rows() -> None:
    with pytest.raises(ValueError, match="3 cells"):
        TextTable(["a", "b", "c"], [["1", "2"]])


def test_results_table_renders_html_with_separate_columns_and_the_best_in_bold():
    rows = [{"model": "baseline", "id": "00", "auc": 0.9, "pauc": 0.7},
            {"model": "sequential", "id": "00", "auc": 0.8, "pauc": 0.75}]
    t = Table(table(rows), "synthetic data")
    page = t._repr_html_()
    assert "<figcaption>synthetic data</figcaption>" in page
    assert page.count("<td") == 2 * 4  # AUC and pAUC of ID 00 and of the average, per model
    assert "<b>0.900</b>" in page and "<b>0.750</b>" in page and "<b>0.800</b>" not in page
    assert "baseline<br><small>the report&#x27;s VAE</small>" in page and "sequential<br><small>the DCASE 2020 baseline AE</small>" in page
    text = repr(t).splitlines()
    assert text[0] == "synthetic data" and text[1].split() == ["model", "00", "AVG"]
    assert text[3].split() == ["baseline", "0.900/0.700", "0.900/0.700"]


def test_a_table_without_averages_shows_none():
    """A published table per ID (the report's) renders without an average column to fill."""
    page = Table(REPORT, "the report")._repr_html_()
    assert page.count("<td") == len(REPORT) * 3 * 2 and "average" not in page
    assert f"<b>{max(cells['00'][0] for cells in REPORT.values()):.3f}</b>" in page
    lines = format_table(REPORT).splitlines()
    assert lines[0].split() == ["model", "00", "02", "04"] and "-" not in lines[2].split()
