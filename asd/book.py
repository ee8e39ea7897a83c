"""The set-up every chapter shares: configuration, seeds, the data source and its provenance."""
from __future__ import annotations

from asd.config import Config, get_config
from asd.data import is_release
from asd.experiment import DataSource, data_source
from asd.utils import seed_everything


def setup(data: bool = True) -> tuple[Config, DataSource | None]:
    """A chapter's ``(cfg, src)``.

    ``cfg`` is the profile's configuration (``$ASD_PROFILE``, default ``quick``), with every seed
    set from it; ``src`` (unless ``data=False``) is ``$ASD_DATA`` or the synthetic stand-in,
    generated on first use. With data it prints a provenance line (``data: ... | profile: ...``),
    and in a notebook also glues the names ``data``, ``profile`` and ``data_caveat``
    (:func:`caveat`) for the chapters' "Which data?" boxes.
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
        glue("data_caveat", caveat(src, cfg.profile), display=False)
    return cfg, src


def measures_the_release(src: DataSource) -> bool:
    """Whether ``src`` is the real DCASE 2020 release, the data the report's and the published
    numbers measured: only then may a chapter draw them over its own."""
    return not src.synthetic and is_release(src.dev)


def caveat(src: DataSource, profile: str) -> str:
    """What the numbers made from ``src`` may be compared with, as a sentence for the chapters."""
    if src.synthetic:
        return ("These numbers show that the pipeline works and how to read its results; they are "
                "not the report's numbers, and which method wins on them says nothing about the real "
                "slider.")
    if measures_the_release(src):
        fewer = " (this quick-profile run trains for fewer epochs than the report did)" if profile == "quick" else ""
        return f"This is the data of the report's table, so its numbers can be set beside the report's{fewer}."
    return ("These are recordings of your own, not the DCASE release: compare the methods with each "
            "other; the report's and the literature's numbers measured other machines.")
