"""The set-up every chapter shares: configuration, seeds, the data source and its provenance."""
from __future__ import annotations

import html
from collections.abc import Sequence

from asd.config import Config, get_config
from asd.experiment import DataSource, data_source
from asd.metrics import TABLE_CSS
from asd.utils import seed_everything


class TextTable:
    """A small table of formatted cells that renders as HTML in notebooks and the book (scrolling
    sideways on a narrow screen) and as aligned text elsewhere: first column left, others right."""

    def __init__(self, header: Sequence[str], rows: Sequence[Sequence[object]], caption: str = ""):
        self.header, self.caption = [str(h) for h in header], caption
        self.rows = [[str(c) for c in row] for row in rows]
        if any(len(row) != len(self.header) for row in self.rows):
            raise ValueError(f"every row needs {len(self.header)} cells, as the header")

    def __repr__(self) -> str:
        widths = [max(len(r[k]) for r in [self.header, *self.rows]) for k in range(len(self.header))]
        line = lambda r: "  ".join(c.ljust(w) if k == 0 else c.rjust(w) for k, (c, w) in enumerate(zip(r, widths)))
        return "\n".join(filter(None, [self.caption, line(self.header), *map(line, self.rows)]))

    def _repr_html_(self) -> str:
        left = ' style="text-align: left"'
        cell = lambda tag, k, c: f"<{tag}{left if k == 0 else ''}>{html.escape(c)}</{tag}>"
        head = "".join(cell("th", k, c) for k, c in enumerate(self.header))
        body = "".join("<tr>" + "".join(cell("td", k, c) for k, c in enumerate(r)) + "</tr>" for r in self.rows)
        caption = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        return (f'<style>{TABLE_CSS}</style><div style="overflow-x: auto"><table class="asd-results">'
                f"{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")


def setup(data: bool = True) -> tuple[Config, DataSource | None]:
    """A chapter's ``(cfg, src)``.

    ``cfg`` is the profile's configuration (``$ASD_PROFILE``, default ``quick``), with every seed
    set from it; ``src`` (unless ``data=False``) is ``$ASD_DATA`` or the synthetic stand-in,
    generated on first use. In a notebook the names ``data`` and ``profile`` are glued for the
    chapters' "Which data?" boxes, and a provenance line is printed.
    """
    cfg = get_config()
    seed_everything(cfg.seed)
    if not data:
        return cfg, None
    src = data_source(cfg)
    print(f"data: {src.label} | profile: {cfg.profile}")
    try:
        from IPython import get_ipython
        from myst_nb import glue
    except ImportError:  # a plain Python session: nothing to glue
        return cfg, src
    if get_ipython() is not None:
        glue("data", src.label, display=False)
        glue("profile", cfg.profile, display=False)
    return cfg, src
