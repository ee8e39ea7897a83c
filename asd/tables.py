"""Tables as the book shows them: results per machine ID (:class:`Table`) and small tables of
formatted cells (:class:`TextTable`), as HTML in notebooks and the book and as aligned text elsewhere.

Presentation only (with the models' labels that figures share), kept apart from :mod:`asd.metrics`:
the results cache is keyed on the modules that compute results, and a table's look is not one of them.
"""
from __future__ import annotations

import html
from collections.abc import Sequence
from itertools import groupby

# Two "baselines" meet in this book: the report's VAE and the DCASE 2020 organisers' autoencoder.
DESCRIPTIONS = {"baseline": "the report's VAE", "sequential": "the DCASE 2020 baseline AE"}
LABELS = {m: f"{m} ({d})" for m, d in DESCRIPTIONS.items()}


def label(model: str) -> str:
    """A model's name as figures show it: the two baselines can never be confused."""
    return LABELS.get(model, model)


NO_ROWS = "(no AUC/pAUC: no labelled test clips were scored)"


def _mean(value: float | tuple[float, float]) -> float:
    """A cell's value: a number, or the mean of a ``(mean, sd)`` pair (:func:`asd.metrics.seed_spread`)."""
    return value[0] if isinstance(value, tuple) else value


def _text(value: float | tuple[float, float]) -> str:
    return f"{value[0]:.3f} ± {value[1]:.3f}" if isinstance(value, tuple) else f"{value:.3f}"


def _columns(tab: dict[str, dict[str, tuple]]) -> list[str]:
    """The IDs of a table's rows in order, then ``"AVG"`` where a row has it."""
    ids = list(dict.fromkeys(c for cells in tab.values() for c in cells if c != "AVG"))
    return ids + ["AVG"] * any("AVG" in cells for cells in tab.values())


def format_table(tab: dict[str, dict[str, tuple]]) -> str:
    """A plain-text table, one row per model, ``AUC/pAUC`` per ID and the average, as in the report
    (``mean ± sd`` where the cells come from :func:`asd.metrics.seed_spread`).

    A footnote says which baseline is which where ``baseline`` or ``sequential`` is a row; a table
    without rows says so in one line.
    """
    if not tab:
        return NO_ROWS
    cols = _columns(tab)
    width = max(len(m) for m in tab) + 2
    text = {(m, c): f"{_text(cells[c][0])}/{_text(cells[c][1])}" if c in cells else "-"
            for m, cells in tab.items() for c in cols}
    w = max(14, *(len(t) + 2 for t in text.values()))
    head = f"{'model':<{width}}" + "".join(f"{c:>{w}}" for c in cols)
    lines = [head, f"{'':<{width}}" + "".join(f"{'AUC/pAUC':>{w}}" for _ in cols)]
    for model in tab:
        lines.append(f"{model:<{width}}" + "".join(text[model, c].rjust(w) for c in cols))
    notes = [f"{m}: {DESCRIPTIONS[m]}" for m in DESCRIPTIONS if m in tab]
    return "\n".join(lines + ([f"({'; '.join(notes)})"] if notes else []))


TABLE_CSS = (".asd-results { font-size: 0.9em; }"
             " .asd-results td, .asd-results th { padding: 0.15em 0.35em; text-align: right; white-space: nowrap; }"
             " .asd-results th[colspan] { text-align: center; }"
             " .asd-results tbody th { text-align: left; }"
             " .asd-results tbody th small { white-space: normal; font-weight: normal; }"
             " figure.asd-table { margin: 0 0 1em; }"
             # the text's own colour, muted by opacity: the theme's muted caption colour is light in
             # its dark mode, where it still draws a cell's output dark on a light box
             " figure.asd-table figcaption { text-align: center; font-size: 0.9em; margin-bottom: 0.3em;"
             " color: inherit; opacity: 0.8; }")


def html_table(head: str, body: str, caption: str = "") -> str:
    """A table's ``<thead>`` and ``<tbody>`` rows as the book shows them: the caption above, wrapped
    to the page's width, and the table below it scrolling sideways where the page is narrower (a
    ``<caption>`` would be as wide as the table, and cut off with it)."""
    figcaption = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return (f'<style>{TABLE_CSS}</style><figure class="asd-table">{figcaption}<div style="overflow-x: auto">'
            f'<table class="asd-results"><thead>{head}</thead><tbody>{body}</tbody></table></div></figure>')


class Table:
    """A results table (:func:`asd.metrics.table` or :func:`asd.metrics.seed_spread` output) that
    renders as HTML in notebooks and the book, and as :func:`format_table` text elsewhere: AUC and
    pAUC in their own columns, the best value (or mean) of each column in bold, the average set
    apart, the two baselines labelled apart."""

    def __init__(self, cells: dict[str, dict[str, tuple[float, float]]], caption: str = ""):
        self.cells, self.caption = cells, caption

    def __repr__(self) -> str:
        return "\n".join(filter(None, [self.caption, format_table(self.cells)]))

    def _repr_html_(self) -> str:
        if not self.cells:
            return html_table("", f"<tr><td>{NO_ROWS}</td></tr>", self.caption)
        cols = _columns(self.cells)
        apart = ' style="border-left: 2px solid #888"'
        best = {(c, k): max(_mean(cells[c][k]) for cells in self.cells.values() if c in cells)
                for c in cols for k in (0, 1)}
        head = "".join(f'<th colspan="2"{apart if c == "AVG" else ""}>{"ID " + c if c != "AVG" else "average"}</th>'
                       for c in cols)
        sub = "".join(f'<th{apart if c == "AVG" and k == 0 else ""}>{("AUC", "pAUC")[k]}</th>' for c in cols for k in (0, 1))
        rows = []
        for model, cells in self.cells.items():
            tds = []
            for c in cols:
                for k in (0, 1):
                    style = apart if c == "AVG" and k == 0 else ""
                    if c not in cells:
                        tds.append(f"<td{style}>-</td>")
                        continue
                    v = cells[c][k]  # a spread shows its sd in small type under the mean
                    text = f"{v[0]:.3f}<br><small>±{v[1]:.3f}</small>" if isinstance(v, tuple) else f"{v:.3f}"
                    strong = len(self.cells) > 1 and _mean(cells[c][k]) == best[(c, k)]
                    tds.append(f"<td{style}>{'<b>' + text + '</b>' if strong else text}</td>")
            name = html.escape(model) + (f"<br><small>{html.escape(DESCRIPTIONS[model])}</small>"
                                         if model in DESCRIPTIONS else "")
            rows.append(f"<tr><th style=\"text-align: left\">{name}</th>{''.join(tds)}</tr>")
        return html_table(f'<tr><th rowspan="2">model</th>{head}</tr><tr>{sub}</tr>', "".join(rows), self.caption)


class TextTable:
    """A small table of formatted cells that renders as HTML in notebooks and the book (scrolling
    sideways on a narrow screen) and as aligned text elsewhere: first column left, others right.

    A header entry ``(group, name)`` puts ``name`` under a heading ``group`` that spans the
    neighbouring entries of the same group (``("ID 00", "AUC"), ("ID 00", "pAUC")``); as text the
    two are joined.
    """

    def __init__(self, header: Sequence[str | tuple[str, str]], rows: Sequence[Sequence[object]],
                 caption: str = ""):
        self.groups = [str(h[0]) if isinstance(h, tuple) else None for h in header]
        self.header = [str(h[1]) if isinstance(h, tuple) else str(h) for h in header]
        self.rows, self.caption = [[str(c) for c in row] for row in rows], caption
        if any(len(row) != len(self.header) for row in self.rows):
            raise ValueError(f"every row needs {len(self.header)} cells, as the header")

    def __repr__(self) -> str:
        header = [f"{g} {h}" if g else h for g, h in zip(self.groups, self.header)]
        widths = [max(len(r[k]) for r in [header, *self.rows]) for k in range(len(header))]
        line = lambda r: "  ".join(c.ljust(w) if k == 0 else c.rjust(w) for k, (c, w) in enumerate(zip(r, widths)))
        return "\n".join(filter(None, [self.caption, line(header), *map(line, self.rows)]))

    def _repr_html_(self) -> str:
        left = ' style="text-align: left"'
        cell = lambda tag, k, c, span="": f"<{tag}{span}{left if k == 0 else ''}>{html.escape(c)}</{tag}>"
        body = "".join("<tr>" + "".join(cell("td", k, c) for k, c in enumerate(r)) + "</tr>" for r in self.rows)
        if not any(self.groups):
            return html_table("<tr>" + "".join(cell("th", k, c) for k, c in enumerate(self.header)) + "</tr>",
                              body, self.caption)
        top, sub, k = [], [], 0
        for group, run in groupby(zip(self.groups, self.header), key=lambda entry: entry[0]):
            names = [name for _, name in run]
            if group is None:  # a heading of its own, both rows high
                top += [cell("th", k + j, name, ' rowspan="2"') for j, name in enumerate(names)]
            else:
                top.append(cell("th", k, group, f' colspan="{len(names)}"'))
                sub += [cell("th", k + j, name) for j, name in enumerate(names)]
            k += len(names)
        return html_table(f"<tr>{''.join(top)}</tr><tr>{''.join(sub)}</tr>", body, self.caption)
