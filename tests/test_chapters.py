"""Structural checks on the book: chapter pairing, stripped outputs, the TOC.

These tests never execute a notebook (``pytest --nbmake chapters`` does that); one runs CI's
check of executed outputs on notebooks it writes.
They hold with zero chapters present, except the TOC test, which needs every
file that ``_toc.yml`` names to exist.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import jupytext
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "chapters"
TOC = ROOT / "_toc.yml"
CONFIG = ROOT / "_config.yml"

NOTEBOOKS = sorted(CHAPTERS.glob("*.ipynb"))
SCRIPTS = sorted(CHAPTERS.glob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _cells(path: Path) -> list[tuple[str, str]]:
    """(cell_type, source) of every cell, as jupytext reads the file."""
    nb = jupytext.read(path)
    return [(cell.cell_type, cell.source) for cell in nb.cells]


def _toc_files(node: object) -> list[str]:
    """Every ``file:``/``root:`` entry of a (possibly nested) jb-book TOC."""
    found: list[str] = []
    if isinstance(node, dict):
        for key in ("root", "file"):
            if isinstance(node.get(key), str):
                found.append(node[key])
        for value in node.values():
            if isinstance(value, (dict, list)):
                found.extend(_toc_files(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_toc_files(item))
    return found


def _toc_entries() -> list[str]:
    return _toc_files(yaml.safe_load(TOC.read_text(encoding="utf-8")))


def _global_allow_errors(metadata: dict) -> list[str]:
    """Where notebook-level metadata turns on allow_errors (myst-nb or nbmake)."""
    hits = []
    execution = metadata.get("execution") or {}
    if execution.get("allow_errors"):
        hits.append("metadata.execution.allow_errors")
    mystnb = metadata.get("mystnb") or {}
    if mystnb.get("execution_allow_errors"):
        hits.append("metadata.mystnb.execution_allow_errors")
    if (mystnb.get("execution") or {}).get("allow_errors"):
        hits.append("metadata.mystnb.execution.allow_errors")
    return hits


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=_rel)
def test_notebook_has_py_percent_twin(notebook: Path) -> None:
    twin = notebook.with_suffix(".py")
    assert twin.exists(), (
        f"{_rel(notebook)} has no py:percent twin; run `jupytext --sync {_rel(notebook)}`"
    )
    assert "# %%" in twin.read_text(encoding="utf-8"), (
        f"{_rel(twin)} is not in py:percent format (no `# %%` cell markers)"
    )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=_rel)
def test_notebook_and_twin_have_same_cells(notebook: Path) -> None:
    twin = notebook.with_suffix(".py")
    if not twin.exists():
        pytest.fail(f"{_rel(notebook)} has no .py twin")
    from_ipynb, from_py = _cells(notebook), _cells(twin)
    for index, (a, b) in enumerate(zip(from_ipynb, from_py)):
        assert a == b, (
            f"cell {index} differs between {_rel(notebook)} and {_rel(twin)}; "
            f"run `jupytext --sync` on the one you edited\n ipynb: {a!r}\n    py: {b!r}"
        )
    assert len(from_ipynb) == len(from_py), (
        f"{_rel(notebook)} has {len(from_ipynb)} cells, {_rel(twin)} has {len(from_py)}"
    )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=_rel)
def test_notebook_outputs_are_stripped(notebook: Path) -> None:
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    dirty = [
        index
        for index, cell in enumerate(nb["cells"])
        if cell["cell_type"] == "code"
        and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]
    assert not dirty, (
        f"{_rel(notebook)}: code cells {dirty} carry outputs or an execution_count; "
        "rebuild it from its twin without outputs: `jupytext --to ipynb <chapter>.py`"
    )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=_rel)
def test_notebook_does_not_allow_errors_globally(notebook: Path) -> None:
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    hits = _global_allow_errors(nb.get("metadata") or {})
    assert not hits, (
        f"{_rel(notebook)} sets {hits}; tag the one cell `raises-exception` instead"
    )


CODE_WIDTH = 79  # characters a code block shows on a desktop page before it scrolls sideways


def test_code_and_printed_lines_have_one_width() -> None:
    """CI's output check holds printed lines to the width this file holds code to."""
    script = (ROOT / ".ci" / "check_outputs.py").read_text(encoding="utf-8")
    assert f"\nWIDTH = {CODE_WIDTH}\n" in script


@pytest.mark.parametrize("script", SCRIPTS, ids=_rel)
def test_code_a_reader_sees_fits_the_page(script: Path) -> None:
    """Code the book shows (at once, or behind "Show code cell source") fits its code blocks."""
    wide = [f"cell {index}: {line.strip()[:60]}... ({len(line)} characters)"
            for index, cell in enumerate(jupytext.read(script).cells) if cell.cell_type == "code"
            and not {"remove-input", "remove-cell"} & set(cell.metadata.get("tags", []))
            for line in cell.source.splitlines() if len(line) > CODE_WIDTH]
    assert not wide, f"{_rel(script)}: lines wider than {CODE_WIDTH} characters:\n" + "\n".join(wide)


def test_package_code_the_book_includes_fits_the_page() -> None:
    """Each ``{literalinclude} ../asd/<module>.py`` with ``:pyobject: NAME`` shows lines that fit
    the book's code blocks, as the chapters' own code does."""
    included = [(m.group(1), m.group(2)) for script in SCRIPTS for m in re.finditer(
        r"literalinclude\} \.\./asd/(\w+)\.py\n(?:# :.*\n)*?# :pyobject: (\w+)", script.read_text())]
    assert included, "no package code included: the pattern went stale"
    wide = [f"asd.{module}.{name}: {line.strip()[:60]}... ({len(line)} characters)"
            for module, name in included
            for line in inspect.getsource(getattr(importlib.import_module(f"asd.{module}"), name)).splitlines()
            if len(line) > CODE_WIDTH]
    assert not wide, f"lines wider than {CODE_WIDTH} characters:\n" + "\n".join(wide)


def test_no_py_chapter_without_notebook() -> None:
    orphans = [_rel(p) for p in SCRIPTS if not p.with_suffix(".ipynb").exists()]
    assert not orphans, (
        f"py:percent chapters without an .ipynb twin: {orphans}; "
        "create it with `jupytext --to ipynb <file>.py` (outputs stay empty)"
    )


def _imported(script: Path) -> set[str]:
    """The top-level modules ``script`` imports."""
    found = set()
    for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level:
            found.add(node.module.split(".")[0])
    return found


def test_the_install_cell_installs_every_module_a_chapter_imports() -> None:
    # Colab runs a chapter after ``pip install asd[book]`` alone: what it imports must come with that.
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["book"]
    installed = {re.split(r"[<>=!~ \[;]", req, maxsplit=1)[0].lower() for req in wanted} | {"asd"}
    kernel = {"ipython"}  # every Jupyter kernel has it
    distributions = packages_distributions()
    missing = sorted(f"{_rel(script)}: {module}" for script in SCRIPTS for module in _imported(script)
                     if module not in sys.stdlib_module_names
                     and not {d.lower() for d in distributions.get(module, [module])} & (installed | kernel))
    assert not missing, "chapters import modules that pip install asd[book] does not bring:\n" + "\n".join(missing)


def test_book_config_does_not_allow_errors() -> None:
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    execute = config.get("execute") or {}
    assert execute.get("allow_errors", False) is False
    sphinx_config = (config.get("sphinx") or {}).get("config") or {}
    assert not sphinx_config.get("nb_execution_allow_errors", False)


def test_every_toc_entry_exists() -> None:
    missing = [
        entry
        for entry in _toc_entries()
        if not any((ROOT / f"{entry}{ext}").exists() for ext in (".md", ".ipynb"))
        and not (ROOT / entry).exists()
    ]
    assert not missing, f"_toc.yml names files that do not exist (.md or .ipynb): {missing}"


def test_every_chapter_is_in_the_toc() -> None:
    # only_build_toc_files: true silently drops a chapter missing from the TOC.
    listed = {Path(entry).with_suffix("").as_posix() for entry in _toc_entries()}
    chapters = [*NOTEBOOKS, *sorted(CHAPTERS.glob("*.md"))]
    unlisted = [_rel(p) for p in chapters if _rel(p.with_suffix("")) not in listed]
    assert not unlisted, f"chapters missing from _toc.yml: {unlisted}"


def _executed(cells: list[tuple], tags: dict[int, list[str]] | None = None) -> dict:
    return {"cells": [{"cell_type": "code", "source": [source], "outputs": outputs,
                       "metadata": {"tags": (tags or {}).get(k, [])}} for k, (source, outputs) in enumerate(cells)]}


def _printed(text: str) -> dict:
    return {"output_type": "stream", "name": "stdout", "text": [text]}


def test_the_output_check_finds_numpy_reprs_and_missing_figures(tmp_path: Path) -> None:
    """CI's `.ci/check_outputs.py`, run on executed notebooks written here: quiet on clean ones."""
    (tmp_path / "chapters").mkdir()
    png = {"output_type": "display_data", "data": {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"},
           "metadata": {"scrapbook": {"name": "fig_a", "mime_prefix": ""}}}
    glued = {"output_type": "display_data", "data": {"application/papermill.record/text/plain": "np.str_('00')"},
             "metadata": {"scrapbook": {"name": "machine_id", "mime_prefix": "application/papermill.record/"}}}
    printed = {"output_type": "stream", "name": "stdout", "text": ["{'auc': np.float64(0.9)}\n"]}
    notebook = tmp_path / "chapters" / "01_x.ipynb"
    check = [sys.executable, str(ROOT / ".ci" / "check_outputs.py")]

    notebook.write_text(json.dumps(_executed([('glue("fig_a", fig)', [png]), ("print(0.9)", [])])))
    proc = subprocess.run(check, cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("1 figures shown")

    notebook.write_text(json.dumps(_executed([('glue("fig_a", fig)', []), ('glue("machine_id", mid)', [glued]),
                                              ("print(row)", [printed])])))
    proc = subprocess.run(check, cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "01_x.ipynb cell 0: 0 of 1 figures as image/png" in proc.stderr
    assert "01_x.ipynb cell 1: shows \"np.str_('00')\"" in proc.stderr
    assert "01_x.ipynb cell 2: shows 'np.float64(0.9)" in proc.stderr

    wide = "x" * 80 + "\n"  # one character more than a desktop page's code block shows
    notebook.write_text(json.dumps(_executed([("print(a)", [_printed(wide)]), ("print(b)", [_printed(wide)]),
                                              ("print(c)", [_printed("x" * 79 + "\n" + wide[:40])])],
                                             tags={1: ["remove-output"]})))
    proc = subprocess.run(check, cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "01_x.ipynb cell 0: prints 80 characters" in proc.stderr
    assert "cell 1" not in proc.stderr and "cell 2" not in proc.stderr  # left out of the book; fits


def test_glossary_states_the_package_values() -> None:
    # The glossary is plain text (not executed): it must say what the package computes.
    import numpy as np

    from asd import features, models
    from asd.config import DECISION_QUANTILE, get_config

    text = " ".join((CHAPTERS / "glossary.md").read_text(encoding="utf-8").split())
    cfg = get_config("full")
    f = cfg.feature
    frames = features.logmel(np.zeros(10 * f.sample_rate, dtype=np.float32), f).shape[0]
    extra = models.n_params(models.build("batchnorm", cfg)) - models.n_params(models.build("baseline", cfg))
    for phrase in (f"{f.n_fft} samples ({1000 * f.n_fft // f.sample_rate} ms)",
                   f"every {f.hop_length} samples ({1000 * f.hop_length // f.sample_rate} ms)",
                   f"A 10-s clip has {frames} frames", f"{f.n_frames} consecutive frames", f"{f.dim}-d vector",
                   f"{f.n_mels} triangular", f"`n_fft` {f.n_fft}, hop {f.hop_length}",
                   f"its {DECISION_QUANTILE} quantile", f"has {extra:,} more than the Baseline",
                   f"at most {cfg.max_fpr}", f"would be {cfg.max_fpr ** 2 / 2:g}",
                   f"a {cfg.net.latent}-d latent code"):
        assert phrase in text, f"chapters/glossary.md no longer says {phrase!r}"


def test_the_introduction_states_the_release_counts() -> None:
    # The introduction types the real release's counts: they must be the stand-in's full profile's.
    from asd.config import get_config

    cfg = get_config("full")
    dev, ev = cfg.synth.dev, cfg.synth.eval
    report = [dev.ids.index(mid) for mid in cfg.report_ids["slider"]]
    train = [dev.train[i] for i in report]
    normal = [dev.test_normal[i] for i in report]  # the same per ID, as the text says
    anomalous = [dev.test_anomaly[i] for i in report]
    text = " ".join((CHAPTERS / "intro.md").read_text(encoding="utf-8").split())
    for phrase in (f"{', '.join(dev.ids[:-1])} and {dev.ids[-1]}",
                   f"{sum(train)} normal training clips ({train[0]}, {train[1]} and {train[2]} per ID)",
                   f"{sum(normal) + sum(anomalous)} test clips ({normal[0]} normal clips per ID "
                   f"plus {anomalous[0]}, {anomalous[1]} and {anomalous[2]} anomalous ones)",
                   f"IDs {', '.join(ev.ids[:-1])} and {ev.ids[-1]}, with {sum(ev.train)} training and "
                   f"{sum(ev.test_normal) + sum(ev.test_anomaly)} test clips"):
        assert phrase in text, f"chapters/intro.md no longer says {phrase!r}"


def _quoted(prefix: str) -> set[str]:
    """Dotted names starting with ``prefix`` that the chapters, the glossary and the README quote
    in backticks (``asd.metrics.auc_pauc``, ``cfg.net.dropout``), and the bibliography's notes."""
    texts = [*SCRIPTS, *CHAPTERS.glob("*.md"), ROOT / "README.md"]
    spans = [s for path in texts for s in re.findall(r"`[^`\n]+`", path.read_text(encoding="utf-8"))]
    spans.append((ROOT / "references.bib").read_text(encoding="utf-8"))
    return {m for span in spans for m in re.findall(rf"\b{prefix}(?:\.[A-Za-z_]\w*)+", span)}


def _exists(name: str, root: object) -> bool:
    """Whether ``name``'s attributes (submodules imported on the way) exist under ``root``."""
    parts, obj = name.split("."), root
    for k, attr in enumerate(parts[1:], 2):
        if not hasattr(obj, attr) and inspect.ismodule(obj):
            try:
                importlib.import_module(".".join(parts[:k]))  # a submodule not imported yet
            except ModuleNotFoundError:
                return False
        if not hasattr(obj, attr):
            return False
        obj = getattr(obj, attr)
    return True


def test_every_name_the_text_quotes_exists() -> None:
    """A renamed function or config field must not leave the book's prose pointing at nothing."""
    import asd
    from asd.config import get_config

    quoted = {"asd": _quoted("asd"), "cfg": _quoted("cfg")}
    assert len(quoted["asd"]) > 30 and len(quoted["cfg"]) > 5  # the scan finds the book's names
    roots = {"asd": asd, "cfg": get_config("quick")}
    missing = sorted(n for prefix, names in quoted.items() for n in names if not _exists(n, roots[prefix]))
    assert not missing, f"quoted in the text but not in asd: {missing}"
