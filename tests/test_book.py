"""asd.book: the small tables the chapters display."""
from __future__ import annotations

import pytest

from asd.book import TextTable


def test_text_table_renders_as_text_and_html() -> None:
    t = TextTable(["network", "epochs", "loss"], [["baseline", 30, "223.4"], ["sequential <a>", 15, "0.3375"]],
                  caption="training")
    lines = repr(t).splitlines()
    assert lines[0] == "training" and len({len(line) for line in lines[1:]}) == 1  # aligned columns
    assert lines[2].startswith("baseline ") and lines[2].endswith(" 223.4")
    page = t._repr_html_()
    assert page.count("<tr>") == 3 and "<caption>training</caption>" in page
    assert "sequential &lt;a&gt;" in page  # cells are escaped


def test_text_table_rejects_ragged_rows() -> None:
    with pytest.raises(ValueError, match="3 cells"):
        TextTable(["a", "b", "c"], [["1", "2"]])
