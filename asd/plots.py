"""The book's figures: small functions that each return a matplotlib :class:`~matplotlib.figure.Figure`.

Figures are built with :class:`matplotlib.figure.Figure` directly, not through pyplot: nothing
is shown, nothing stays open, and a chapter can glue a figure under a caption (in a notebook,
``%matplotlib inline`` lets a returned Figure display as an image; a script calls
``fig.savefig``). Arrays follow :mod:`asd.features`: spectrograms are time-first ``(frames, bins)``.
"""
from __future__ import annotations

import itertools
import textwrap
from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np
from matplotlib import rcParams
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ticker import FormatStrFormatter, Locator, MaxNLocator, NullFormatter
from sklearn.metrics import roc_curve

from asd import metrics, tables
from asd.config import DETECTORS
from asd.data import UNLABELLED

# Okabe-Ito colours, safe for colour-blind readers: normal is blue, anomalous orange (never red/green).
NORMAL, NORMAL_LIGHT, ANOMALOUS = "#0072B2", "#56B4E9", "#E69F00"
# Bar order and colours of the (split, label) groups in a counts chart.
COUNT_GROUPS = {("train", "normal"): NORMAL, ("test", "normal"): NORMAL_LIGHT, ("test", "anomaly"): ANOMALOUS}
METRICS = ("auc", "pauc")
METRIC_NAMES = {"auc": "AUC", "pauc": "pAUC"}
CHANCE = 0.5  # AUC, and McClish-standardised pAUC, of a detector that ranks clips at random


class LossHistory(Protocol):
    """What :func:`training_curves` reads (:class:`asd.train.History` has it)."""

    train_loss: list[float]
    val_loss: list[float]


# The book's text column holds about 690 px; at 100 dpi a figure at most this wide is shown at its own
# size, so its 10-pt text stays 10 pt on the page.
COLUMN_IN = 6.9


def _figure(width: float, height: float) -> Figure:
    """A constrained-layout figure, scaled down as a whole (text excepted) to the column's width."""
    scale = min(1.0, COLUMN_IN / width)
    return Figure(figsize=(width * scale, height * scale), layout="constrained")


def _legend_below(fig: Figure, axes, ncol: int | None = None) -> None:
    """One legend under the figure for every labelled artist of ``axes`` (each label once), so that
    it covers no data and the panels keep the column's width; ``ncol`` default: one row."""
    handles = _handles(axes)
    fig.legend(handles.values(), handles.keys(), frameon=False, loc="outside lower center",
               ncol=ncol or len(handles))


def _handles(axes) -> dict:
    """Every labelled artist of ``axes``, each label once, for one legend of them all."""
    return {h.get_label(): h for ax in np.ravel(axes) for h in ax.get_legend_handles_labels()[0]}


def _grid(n: int, ncols: int | None = None, panel: tuple[float, float] = (4.0, 3.0),
          **subplots) -> tuple[Figure, np.ndarray]:
    """A constrained-layout figure with ``n`` panels on a grid, and its axes as a flat array."""
    ncols = min(n, ncols or n)
    nrows = -(-n // ncols)
    fig = _figure(panel[0] * ncols, panel[1] * nrows)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, **subplots)).ravel()
    for ax in axes[n:]:
        fig.delaxes(ax)
    return fig, axes[:n]


def _offset(j: int, n: int, width: float) -> float:
    """Where bar ``j`` of ``n`` side by side, each ``width`` wide, sits from its group's centre."""
    return (j - (n - 1) / 2) * width


def _spans_a_decade(values: np.ndarray) -> bool:
    """Whether positive ``values`` span at least a factor of 10 (then a log axis reads better)."""
    values = np.asarray(values, dtype=float)
    return bool(values.size and np.all(values > 0) and values.max() >= 10 * values.min())


class _PlainLogTicks(Locator):
    """Major ticks of a log axis whose plain-number labels (0.5, 1, 2 rather than 5 x 10^-1) never
    touch: the densest of 1-2-5 steps, every decade, every second decade, ... that fits the axis's
    length when it is drawn, so a narrow panel over many decades gets fewer ticks."""

    def __call__(self) -> np.ndarray:
        return self.tick_values(*self.axis.get_view_interval())

    def tick_values(self, vmin: float, vmax: float) -> np.ndarray:
        lo, hi = sorted((vmin, vmax))
        decades = np.arange(np.floor(np.log10(lo)), np.ceil(np.log10(hi)) + 1)
        candidates = [np.outer(10.0 ** decades, (1.0, 2.0, 5.0)).ravel()]
        candidates += [10.0 ** decades[decades % step == 0] for step in range(1, len(decades) + 1)]
        inside = [c[(c >= lo) & (c <= hi)] for c in candidates]
        return next((t for t in inside if len(t) >= 2 and self._fits(t, lo, hi)), max(inside, key=len)[:1])

    def _fits(self, ticks: np.ndarray, lo: float, hi: float) -> bool:
        """Whether the labels of ``ticks`` leave a third of a character's height between neighbours."""
        axes, horizontal = self.axis.axes, self.axis.axis_name == "x"
        points = (axes.bbox.width if horizontal else axes.bbox.height) * 72 / axes.figure.dpi
        size = FontProperties(size=rcParams[f"{self.axis.axis_name}tick.labelsize"]).get_size_in_points()
        label = self.axis.get_major_formatter()
        centres = np.log(ticks / lo) / np.log(hi / lo) * points
        extents = np.array([0.6 * size * len(label(t)) if horizontal else 1.2 * size for t in ticks])
        return bool(np.all(np.diff(centres) >= (extents[:-1] + extents[1:]) / 2 + size / 3))


def _plain_log_ticks(axis) -> None:
    """Label a log ``axis`` with plain numbers at ticks spaced so that the labels do not touch."""
    axis.set_major_locator(_PlainLogTicks())
    axis.set_major_formatter(FormatStrFormatter("%g"))
    axis.set_minor_formatter(NullFormatter())


# Okabe-Ito's palette (colour-blind safe), and Tol's wine: detector i of asd.config.DETECTORS
# draws in colour i. The detectors beyond the report (PCA black, IDNN vermillion, the ID
# classifier wine) are drawn beside any of the report's four, so none takes a hue close to one
# of theirs (sky blue, spare, is near the baseline's blue).
MODEL_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#000000", "#D55E00", "#882255", "#56B4E9",
                 "#F0E442")
# ... and a marker each, for line plots where seven detectors meet: orange and vermillion, pink
# and wine, are told apart by their markers too.
MODEL_MARKERS = dict(zip(DETECTORS, "os^DvPX"))


def _overlaid_hist(ax, values: np.ndarray, edges: np.ndarray, colour: str, label: str) -> None:
    """A histogram drawn over others: translucent bars, outlined, so that where two overlap both
    stay visible rather than blending into a colour no legend shows."""
    ax.hist(values, bins=edges, alpha=0.45, color=colour, label=label)
    ax.hist(values, bins=edges, histtype="step", color=colour, lw=1.2)


def _model_colours(names: Sequence[str]) -> dict[str, str]:
    """Each detector's own colour, the same in every figure whatever else it shares it with; other
    names (a yardstick, a reference) take the palette's spare colour, then the absent detectors',
    then greys: no two names share a colour."""
    own = dict(zip(DETECTORS, MODEL_COLOURS))
    present = {own[n] for n in names if n in own}
    spare = itertools.chain([c for c in MODEL_COLOURS if c not in own.values()],
                            [c for c in own.values() if c not in present],
                            (f"{g:.2f}" for g in itertools.cycle((0.35, 0.55, 0.7, 0.25, 0.45, 0.62))))
    return {name: own[name] if name in own else next(spare) for name in names}


def counts_bars(sets: Mapping[str, Mapping[tuple[str, str, str], int]]) -> Figure:
    """Clips per machine ID, split and label, one panel per set (the report's Figs 1-2).

    ``sets`` maps a panel title (e.g. ``"dev set"``) to :func:`asd.data.counts` output:
    ``{(machine_id, split, label): n}``. Each ID gets one bar per (split, label) present, with
    its count written on top; groups other than those in :data:`COUNT_GROUPS` (e.g. unlabelled
    test clips) are drawn in grey after them.
    """
    if not sets:
        raise ValueError("no sets to plot")
    if empty := [title for title, counts in sets.items() if not counts]:
        raise ValueError(f"no clips to count in {', '.join(empty)}")
    fig, axes = _grid(len(sets), ncols=1, panel=(COLUMN_IN, 3.0))
    for ax, (title, counts) in zip(axes, sets.items()):
        ids = sorted({mid for mid, _, _ in counts})
        present = {(split, label) for _, split, label in counts}
        groups = [g for g in COUNT_GROUPS if g in present] + sorted(present - set(COUNT_GROUPS))
        width = 0.8 / len(groups)
        x = np.arange(len(ids))
        for k, (split, label) in enumerate(groups):
            heights = [counts.get((mid, split, label), 0) for mid in ids]
            bars = ax.bar(x + _offset(k, len(groups), width), heights, width,
                          label=f"{split} / {label}", color=COUNT_GROUPS.get((split, label), "0.6"))
            ax.bar_label(bars, padding=1)
        ax.set_xticks(x, [f"ID {mid}" for mid in ids])
        ax.set_ylabel("clips")
        ax.set_title(f"{title}: {sum(counts.values())} clips")
        ax.margins(y=0.12)
    _legend_below(fig, axes)
    return fig


def waveforms(signals: Mapping[str, np.ndarray], sample_rate: int) -> Figure:
    """One row per signal (title -> samples), sharing the time and amplitude axes."""
    if not signals:
        raise ValueError("no signals to plot")
    fig, axes = _grid(len(signals), ncols=1, panel=(COLUMN_IN, 1.7), sharex=True, sharey=True)
    for ax, (title, y) in zip(axes, signals.items()):
        ax.plot(np.arange(len(y)) / sample_rate, y, lw=0.4, color="0.2")
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("amplitude")
    axes[-1].set_xlabel("time (s)")
    return fig


def mel_ticks(ax, n_mels: int, sample_rate: int, labels: bool = True) -> None:
    """Ticks on ``ax``'s y axis (mel bands ``0 .. n_mels``, band ``i`` spanning ``[i, i + 1]``)
    at the bands centred nearest 500 Hz, 1, 2 and 4 kHz, labelled with those frequencies
    (librosa's Slaney mel scale, as :func:`asd.features.mel_basis`) if ``labels``."""
    import librosa

    centres = librosa.mel_frequencies(n_mels + 2, fmin=0.0, fmax=sample_rate / 2)[1:-1]
    marks = [f for f in (500, 1000, 2000, 4000) if centres[0] <= f <= centres[-1]]
    ax.set_yticks([int(np.argmin(np.abs(centres - f))) + 0.5 for f in marks],
                  [f"{f / 1000:g} kHz" if f >= 1000 else f"{f} Hz" for f in marks] if labels else [])


def spectrograms(panels: Mapping[str, np.ndarray], hop_s: float, ylabel: str = "mel band",
                 clabel: str = "dB", y_extent: tuple[float, float] | None = None,
                 shared_scale: bool = True, ncols: int | None = None, cmap: str = "magma",
                 centre: float | None = None, sample_rate: int | None = None) -> Figure:
    """Time-first matrices ``(frames, bins)`` side by side as images (the report's Figs 3-4).

    ``hop_s`` is the time between frames (seconds); ``y_extent`` the values of the first and
    last bin's edges (default: bin numbers). With ``shared_scale`` every panel uses one colour
    scale and one colour bar, so the panels compare directly; otherwise each has its own. With
    ``centre`` (e.g. 0 for standardised values and a diverging ``cmap``) every scale is symmetric
    about it, so the colour map's middle colour marks it. With ``sample_rate`` the bins are mel
    bands, labelled by their centre frequencies (:func:`mel_ticks`).
    """
    if not panels:
        raise ValueError("no matrices to plot")
    mats = {title: np.asarray(m) for title, m in panels.items()}
    if any(m.ndim != 2 for m in mats.values()):
        raise ValueError("every panel must be a 2-d (frames, bins) matrix")
    fig, axes = _grid(len(mats), ncols, panel=(4.6, 3.2), sharey=True)
    fig.get_layout_engine().set(wspace=0.06)  # room between one panel's last time label and the next one's first

    def limits(values: np.ndarray) -> tuple[float, float]:
        if centre is None:
            return float(values.min()), float(values.max())
        half = float(np.abs(values - centre).max())
        return centre - half, centre + half

    shared = limits(np.concatenate([m.ravel() for m in mats.values()])) if shared_scale else None
    for ax, (title, m) in zip(axes, mats.items()):
        lo, hi = y_extent if y_extent is not None else (0, m.shape[1])
        vmin, vmax = shared or limits(m)
        image = ax.imshow(m.T, origin="lower", aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax,
                          extent=(0, m.shape[0] * hop_s, lo, hi), interpolation="nearest")
        ax.set_title(textwrap.fill(title, 30), fontsize=10)  # a long title in two lines, not into the next
        ax.set_xlabel("time (s)")
        if not shared_scale:
            fig.colorbar(image, ax=ax, label=clabel)
    for ax in axes[:: ncols or len(mats)]:
        ax.set_ylabel(ylabel if sample_rate is None else f"{ylabel} (centre)")
    if sample_rate is not None:  # the axes share y: one call ticks them all
        mel_ticks(axes[0], next(iter(mats.values())).shape[1], sample_rate)
    if shared_scale:
        fig.colorbar(image, ax=list(axes), label=clabel)
    return fig


def mel_filterbank(basis: np.ndarray, sample_rate: int) -> Figure:
    """The mel filters over frequency (left) and each band's centre frequency (right).

    ``basis`` is :func:`asd.features.mel_basis` output, ``(n_mels, n_fft // 2 + 1)``.
    """
    basis = np.asarray(basis)
    n_mels, n_bins = basis.shape
    freqs = np.linspace(0, sample_rate / 2, n_bins)
    fig = _figure(11, 3.4)
    left, right = fig.subplots(1, 2, width_ratios=(2, 1))
    colours = [f"C{i % 10}" for i in range(n_mels)]
    for weights, colour in zip(basis, colours):
        left.plot(freqs, weights, lw=0.7, color=colour)
    left.set_xlabel("frequency (Hz)")
    left.set_ylabel("filter weight")
    left.set_title(f"{n_mels} mel filters over {n_bins} STFT bins", fontsize=10)
    centres = freqs[np.argmax(basis, axis=1)]
    right.plot(np.arange(n_mels), centres, ".", ms=3, color="0.2")
    right.set_xlabel("mel band")
    right.set_ylabel("centre frequency (Hz)")
    right.set_title("band centres", fontsize=10)
    return fig


def network_shapes(networks: Mapping[str, Sequence[tuple[int, str]]],
                   titles: Mapping[str, str] | None = None) -> Figure:
    """Each network's shape, one panel per network (:func:`asd.models.dense_widths` output): a bar
    per dense layer's output, the input first, as tall as its width and labelled with it; what acts
    on it (BN, dropout) under the bar; parallel layers (the VAE's two heads) side by side. ``titles``
    (default: the networks' labels) name the panels."""
    if not networks:
        raise ValueError("no networks to draw")
    colours = _model_colours(list(networks))
    fig, axes = _grid(len(networks), ncols=2, panel=(3.4, 2.6))
    top = max(width for columns in networks.values() for width, _ in columns)
    for ax, (name, columns) in zip(axes, networks.items()):
        slots: list[list[tuple[int, str]]] = []
        for width, note in columns:
            if note == "parallel" and slots:
                slots[-1].append((width, ""))
            else:
                slots.append([(width, note)])
        for x, slot in enumerate(slots):
            bar = 0.7 / len(slot)
            for k, (width, _) in enumerate(slot):
                xk = x + _offset(k, len(slot), bar)
                ax.bar(xk, width, bar * 0.9, bottom=-width / 2, color="0.6" if x == 0 else colours[name])
                ax.text(xk, width / 2 + 0.02 * top, str(width), ha="center", va="bottom", fontsize=8)
            role = "input" if x == 0 else "output" if x == len(slots) - 1 else "heads" if len(slot) > 1 else ""
            under = "\n".join(filter(None, [role, *slot[0][1].split("+")]))
            ax.text(x, -top / 2 - 0.04 * top, under, ha="center", va="top", fontsize=8)
        ax.set_title((titles or {}).get(name, tables.label(name)), fontsize=9)
        ax.set_xlim(-0.6, len(slots) - 0.4)
        ax.set_ylim(-0.75 * top, 0.62 * top)
        ax.set_axis_off()
    return fig


def training_curves(histories: Mapping[str, LossHistory], log: bool = True) -> Figure:
    """Training and validation loss per epoch, one panel per network (their losses differ in scale).

    With ``log``, a panel whose losses span a factor of 10 or more gets a logarithmic y axis.
    """
    if not histories:
        raise ValueError("no training histories to plot")
    # At most two panels a row: at the book's column width their tick labels stay readable.
    fig, axes = _grid(len(histories), ncols=2, panel=(4.0, 2.9))
    for ax, (name, hist) in zip(axes, histories.items()):
        epochs = np.arange(1, len(hist.train_loss) + 1)
        marker = "o" if len(epochs) < 3 else None  # a run of an epoch or two: points, not a line
        ax.plot(epochs, hist.train_loss, label="training", color="#000000", marker=marker)
        if len(hist.val_loss):
            ax.plot(np.arange(1, len(hist.val_loss) + 1), hist.val_loss, label="validation", color="#009E73",
                    ls="--", marker=marker)
        if log and _spans_a_decade(np.asarray([*hist.train_loss, *hist.val_loss])):
            ax.set_yscale("log")
        ax.set_title(tables.label(name), fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 1.5 in a short run
        ax.legend(frameon=False)
    for ax in axes[::2]:
        ax.set_ylabel("mean loss per vector")
    return fig


def _reference_value(ref: Mapping[str, tuple[float, float]], column: str, k: int,
                     ids: Sequence[str]) -> float | None:
    """``ref[column][k]``; for ``"AVG"`` the mean over ``ids`` (the table's), None unless ``ref`` has
    them all: a reference's average over other IDs is not comparable."""
    if column != "AVG":
        return ref[column][k] if column in ref else None
    return float(np.mean([ref[i][k] for i in ids])) if ids and all(i in ref for i in ids) else None


def score_bars(table: Mapping[str, Mapping[str, tuple[float, float]]], metric: str = "auc",
               report: Mapping[str, Mapping[str, tuple[float, float]]] | None = None,
               baseline: Mapping[str, tuple[float, float]] | None = None,
               title: str | None = None) -> Figure:
    """Our AUC or pAUC per ID (and average) as bars from chance (0.5), with reference values as
    markers (Figs 5-6).

    ``table`` is :func:`asd.metrics.table` output (model -> column -> (AUC, pAUC)). ``report``
    (like :data:`asd.reference.REPORT`) puts a black tick on each bar at the report's value for the
    same network and column; ``baseline`` (like :data:`asd.reference.DCASE2020_BASELINE`) draws a
    dashed line across each column's group. A reference's ``"AVG"`` is its mean over the table's
    IDs, drawn only where it lists them all.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    if not table:
        raise ValueError("empty results table")
    k = METRICS.index(metric)
    models = list(table)
    columns = list(dict.fromkeys(c for cells in table.values() for c in cells))
    ids = [c for c in columns if c != "AVG"]
    colours = _model_colours(models)
    width = 0.8 / len(models)
    fig = _figure(max(6.0, 1.9 * len(columns) + 1.5), 4.0 + 0.2 * len(models))
    ax = fig.subplots()
    shown: list[float] = []  # every value drawn, to set the axis limits
    for j, model in enumerate(models):
        xs = np.arange(len(columns)) + _offset(j, len(models), width)
        values = np.array([table[model].get(c, (np.nan, np.nan))[k] for c in columns])
        # Bars grow from chance (0.5), not from 0: a bar's length is what the detector adds to a coin flip.
        ax.bar(xs, values - CHANCE, width, bottom=CHANCE, label=tables.label(model), color=colours[model])
        shown += values.tolist()
        ref = (report or {}).get(model)
        for x, column in zip(xs, columns):
            value = _reference_value(ref, column, k, ids) if ref else None
            if value is not None:
                # one label per tick: the legend shows each label once (_legend_below)
                ax.plot([x - width / 2, x + width / 2], [value, value], color="black", lw=2, label="report (dev set)")
                shown.append(value)
    for i, column in enumerate(columns):
        value = _reference_value(baseline, column, k, ids) if baseline else None
        if value is not None:
            ax.plot([i - 0.45, i + 0.45], [value, value], color="0.35", ls="--", lw=1.2,
                    label="DCASE 2020 baseline (dev set)")
            shown.append(value)
    ax.axhline(CHANCE, color="0.3", lw=0.8, label=f"chance ({CHANCE:g})")
    ax.set_ylim(min(CHANCE, np.nanmin(shown)) - 0.05, 1.0)
    ax.set_xticks(np.arange(len(columns)), [c if c == "AVG" else f"ID {c}" for c in columns])
    ax.set_ylabel(METRIC_NAMES[metric])
    ax.set_title(title or f"{METRIC_NAMES[metric]} per machine ID", fontsize=10)
    # Below the axes, so that the bars keep the column's width on a phone too.
    _legend_below(fig, [ax], ncol=2)
    return fig


def note(text: str) -> Figure:
    """A figure that says ``text`` instead of plotting: what a build's data cannot show."""
    fig = _figure(COLUMN_IN, 1.2)
    ax = fig.subplots()
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=10)
    return fig


def group_aucs(panels: Mapping[str, Mapping[str, Mapping[str, tuple[float, int]]]],
               empty: str = "fault types are known only for the synthetic stand-in") -> Figure:
    """AUC per group of anomalous clips, one panel per grouping (fault type, severity), bars per model.

    ``panels[title][model]`` is :func:`asd.metrics.auc_by_group` output (group -> (AUC, clips));
    each group's label gives its number of clips. Bars grow from chance (0.5), as in
    :func:`score_bars`. Without panels, the figure says ``empty`` instead (data that does not
    know its faults, as :meth:`asd.experiment.Results.auc_by_fault` refuses).
    """
    if not panels:
        return note(empty)
    models = list(dict.fromkeys(m for tab in panels.values() for m in tab))
    colours = _model_colours(models)
    width = 0.8 / len(models)
    fig, axes = _grid(len(panels), ncols=1, panel=(COLUMN_IN, 2.8))
    for ax, (title, tab) in zip(axes, panels.items()):
        groups = list(dict.fromkeys(g for cells in tab.values() for g in cells))
        clips = {g: n for cells in tab.values() for g, (_, n) in cells.items()}
        for j, model in enumerate(models):
            xs = np.arange(len(groups)) + _offset(j, len(models), width)
            values = np.array([tab.get(model, {}).get(g, (np.nan, 0))[0] for g in groups])
            ax.bar(xs, values - CHANCE, width, bottom=CHANCE, label=tables.label(model), color=colours[model])
        ax.axhline(CHANCE, color="0.3", lw=0.8, label=f"chance ({CHANCE:g})")
        ax.set_xticks(np.arange(len(groups)), [f"{g}\n({clips[g]} clips)" for g in groups])
        ax.set_ylim(min(CHANCE, np.nanmin([v for cells in tab.values() for v, _ in cells.values()])) - 0.05, 1.0)
        ax.set_ylabel(METRIC_NAMES["auc"])
        ax.set_title(title, fontsize=10)
    _legend_below(fig, axes, ncol=2)
    return fig


def roc_curves(y_true: np.ndarray, clip_ids: np.ndarray,
               scores: Mapping[str, np.ndarray],
               max_fpr: float = 0.1) -> Figure:
    """ROC curves, one row per machine ID and one line per model: the whole
    curve (left, the pAUC range shaded) and that range enlarged (right),
    where pAUC is decided."""
    y_true, clip_ids = np.asarray(y_true), np.asarray(clip_ids)
    if not scores:
        raise ValueError("no scores to plot")
    unique_ids = sorted(set(clip_ids.tolist()))
    colours = _model_colours(list(scores))
    fig = _figure(6.8, 3.0 * len(unique_ids))
    axes = fig.subplots(len(unique_ids), 2, squeeze=False, sharey=True)
    for (whole, zoom), mid in zip(axes, unique_ids):
        sel = clip_ids == mid
        whole.axvspan(0, max_fpr, color="0.9",
                      label=f"FPR \u2264 {max_fpr:g} (pAUC)")
        curves = {name: roc_curve(y_true[sel], np.asarray(s)[sel])[:2]
                  for name, s in scores.items()}
        for ax, right in ((whole, 1.0), (zoom, max_fpr)):
            ax.plot([0, right], [0, right], color="0.6", lw=0.8, ls=":",
                    label="chance")
            for name, (fpr, tpr) in curves.items():
                ax.plot(fpr, tpr, color=colours[name], lw=1.2,
                        label=tables.label(name))
            ax.set_xlim(0, right)
            # few, short tick labels: the two panels' end labels do not meet
            ax.set_xticks(np.linspace(0, right, 3))
            ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
            ax.set_ylim(0, 1.01)
        whole.set_title(f"ID {mid}", fontsize=10)
        zoom.set_title(f"ID {mid}: FPR \u2264 {max_fpr:g} enlarged",
                       fontsize=10)
        whole.set_ylabel("true-positive rate")
    for ax in axes[-1]:
        ax.set_xlabel("false-positive rate")
    _legend_below(fig, axes[:1, :1], ncol=2)
    return fig


def score_histograms(y_true: np.ndarray, clip_ids: np.ndarray, scores: Mapping[str, np.ndarray],
                     bins: int = 25, log: bool = True, share: bool = False) -> Figure:
    """Clip scores of normal and anomalous test clips, rows = models, columns = machine IDs.

    With ``log``, a panel whose scores span a factor of 10 or more gets bins spaced evenly on a
    logarithmic axis, which suits reconstruction errors when a few anomalies score many times
    the normal level; other panels are linear. With ``share`` (for models whose scores are in
    the same units), the panels of an ID share its bins and axis, so the rows compare.
    """
    y_true, clip_ids = np.asarray(y_true), np.asarray(clip_ids)
    if not scores:
        raise ValueError("no scores to plot")
    unique_ids = sorted(set(clip_ids.tolist()))
    fig = _figure(3.3 * len(unique_ids), 2.0 * len(scores) + 0.6)
    axes = fig.subplots(len(scores), len(unique_ids), squeeze=False)
    scores = {name: np.asarray(s, dtype=float) for name, s in scores.items()}
    for name, s in scores.items():
        if not np.all(np.isfinite(s)):
            raise ValueError(f"{name}: {int(np.sum(~np.isfinite(s)))} scores are NaN or infinite")
    for row, (name, s) in zip(axes, scores.items()):
        for ax, mid in zip(row, unique_ids):
            sel = clip_ids == mid
            span = np.concatenate([v[sel] for v in scores.values()]) if share else s[sel]
            use_log = log and _spans_a_decade(span)
            lo, hi = span.min(), span.max()
            edges = np.geomspace(lo, hi, bins + 1) if use_log else np.linspace(lo, hi + 1e-12, bins + 1)
            for label, text, colour in ((0, "normal", NORMAL), (1, "anomalous", ANOMALOUS)):
                _overlaid_hist(ax, s[sel & (y_true == label)], edges, colour, text)
            if use_log:
                ax.set_xscale("log")
                _plain_log_ticks(ax.xaxis)
            if share:
                ax.set_xlim(lo, hi)
            ax.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))  # clip counts: few ticks on a short panel
        row[0].set_ylabel(f"{name}\nclips")
    for ax, mid in zip(axes[0], unique_ids):
        ax.set_title(f"ID {mid}", fontsize=10)
    for ax in axes[-1]:
        ax.set_xlabel("anomaly score")
    _legend_below(fig, axes[:1, :1])
    return fig


def decision_histograms(train_ids: np.ndarray, train_scores: np.ndarray, test_ids: np.ndarray,
                        y_true: np.ndarray, scores: np.ndarray, quantile: float = metrics.DECISION_QUANTILE,
                        bins: int = 20) -> Figure:
    """One detector's decision threshold per machine ID (columns): top, the training clips'
    scores with the gamma distribution fitted to them and its ``quantile``; bottom, the test
    clips' scores (normal, anomalous, or unlabelled) against the same threshold.

    Each column's axis spans the normal scores (training and normal test clips) and the
    threshold, where the decision is made; how many test clips lie further right (or left: an
    anomaly scored below every normal clip) is written in the panel.
    """
    from scipy.stats import gamma

    train_ids, train_scores = np.asarray(train_ids), np.asarray(train_scores, dtype=float)
    test_ids, y_true, scores = np.asarray(test_ids), np.asarray(y_true), np.asarray(scores, dtype=float)
    unique_ids = sorted(set(test_ids.tolist()))
    fig = _figure(3.3 * len(unique_ids), 5.0)
    axes = fig.subplots(2, len(unique_ids), squeeze=False, sharex="col")
    groups = ((0, "normal test clips", NORMAL), (1, "anomalous test clips", ANOMALOUS),
              (UNLABELLED, "unlabelled test clips", "0.5"))
    for col, mid in enumerate(unique_ids):
        train, test = train_scores[train_ids == mid], test_ids == mid
        limit = metrics.decision_threshold(train, quantile)
        normal = test & (y_true == 0)
        shown = np.r_[train, scores[normal if normal.any() else test], limit]
        pad = 0.05 * np.ptp(shown)
        lo, hi = shown.min() - pad, shown.max() + pad
        edges = np.linspace(lo, hi, bins + 1)
        top, bottom = axes[:, col]
        top.hist(train, bins=edges, density=True, color="0.75", label="training clips (normal)")
        if np.ptp(train) > 0:
            xs = np.linspace(lo, hi, 200)
            top.plot(xs, gamma.pdf(xs, *metrics.fit_gamma(train)), color="black", lw=1.2, label="gamma fit")
        for label, text, colour in groups:
            values = scores[test & (y_true == label)]
            if values.size:
                _overlaid_hist(bottom, values[(values >= lo) & (values <= hi)], edges, colour, text)
        for x, side, n, text in ((0.03, "left", np.sum(scores[test] < lo), "\u2190 {} more"),
                                 (0.97, "right", np.sum(scores[test] > hi), "{} more \u2192")):
            if n:
                bottom.text(x, 0.95, text.format(int(n)), transform=bottom.transAxes, ha=side, va="top",
                            fontsize=9, bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
        for ax in (top, bottom):
            ax.axvline(limit, color="black", ls="--", lw=1.0, label=f"threshold ({quantile:g} quantile)")
        bottom.set_xlim(lo, hi)
        top.set_title(f"ID {mid}", fontsize=10)
        bottom.set_xlabel("anomaly score")
    axes[0, 0].set_ylabel("density")
    axes[1, 0].set_ylabel("test clips")
    _legend_below(fig, axes, ncol=3)
    return fig


def score_timeline(names: Sequence[str], ids: np.ndarray, scores: np.ndarray, limits: Mapping[str, float],
                   shown_names: int = 12, alarm_after: int | None = None,
                   alarm_runs: Mapping[str, int] | None = None) -> Figure:
    """Scored clips in their order (a recorder's time order), one panel per machine ID: each clip's
    score, the ID's decision threshold (dashed) and the clips above it, flagged, in the anomalous
    colour; with ``alarm_after``, a vertical line at each clip that raises an alarm
    (:func:`asd.metrics.alarms`, counted on from ``alarm_runs``: each ID's flagged clips in a row
    before these). A panel of at most ``shown_names`` clips names them on its axis."""
    ids, scores = np.asarray(ids), np.asarray(scores, dtype=float)
    if not len(scores):
        raise ValueError("no scores to plot")
    unique_ids = sorted(set(ids.tolist()))
    fig = _figure(COLUMN_IN, 1.2 + 1.8 * len(unique_ids))
    axes = fig.subplots(len(unique_ids), 1, squeeze=False)[:, 0]
    for ax, mid in zip(axes, unique_ids):
        mine = np.flatnonzero(ids == mid)
        x, y = np.arange(len(mine)), scores[mine]
        flagged = metrics.decide(ids[mine], y, limits).astype(bool)
        ax.plot(x, y, color="0.8", lw=0.8, zorder=1)
        ax.scatter(x[~flagged], y[~flagged], s=16, color=NORMAL, zorder=2, label="below the threshold")
        ax.scatter(x[flagged], y[flagged], s=22, color=ANOMALOUS, marker="D", zorder=2, label="flagged")
        ax.axhline(limits[mid], color="black", ls="--", lw=1.0, label="threshold")
        title = f"ID {mid}: {int(flagged.sum())} of {len(mine)} flagged"
        if alarm_after is not None:
            raised = np.flatnonzero(metrics.alarms(ids[mine], flagged, alarm_after, alarm_runs))
            for k, at in enumerate(raised):
                ax.axvline(at, color=ANOMALOUS, lw=1.2, alpha=0.6, zorder=0,
                           label=f"alarm ({alarm_after} flagged in a row)" if k == 0 else None)
            title += f", {len(raised)} alarm{'' if len(raised) == 1 else 's'}"
        if _spans_a_decade(np.r_[y, limits[mid]]):
            ax.set_yscale("log")
            _plain_log_ticks(ax.yaxis)
        if len(mine) <= shown_names:
            ax.set_xticks(x, [names[i] for i in mine], rotation=30, ha="right", fontsize=8)
        else:
            ax.set_xlabel("clip, in order")
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("anomaly score")
    _legend_below(fig, axes, ncol=2 if alarm_after is not None else None)
    return fig


def own_id_bars(panels: Mapping[str, Mapping[str, tuple[float, ...]]]) -> Figure:
    """Mean p(own machine ID) of normal and anomalous clips per ID, one panel per data set.

    ``panels`` maps a title to ``{machine_id: (normal, anomalous)}`` (:func:`asd.detectors.id_shift`)
    or ``(normal, anomalous, other normal recordings)`` (:func:`asd.detectors.one_recording_shift`;
    a NaN third value draws no bar); separate panels keep different data apart.
    """
    if not panels:
        raise ValueError("no panels to plot")
    groups = (("normal (test clips; one-recording probe: its held-out half)", NORMAL), ("anomalous", ANOMALOUS),
              ("normal, other recordings", NORMAL_LIGHT))
    fig, axes = _grid(len(panels), ncols=2, panel=(4.2, 3.2), sharey=True)
    for ax, (title, shift) in zip(axes, panels.items()):
        x = np.arange(len(shift))
        values = np.array([list(v) for v in shift.values()], dtype=float)  # (IDs, 2 or 3)
        shown = [k for k in range(values.shape[1]) if not np.all(np.isnan(values[:, k]))]
        width = 0.8 / len(shown)
        for j, k in enumerate(shown):
            ax.bar(x + _offset(j, len(shown), width), values[:, k], width, color=groups[k][1], label=groups[k][0])
        ax.set_xticks(x, [f"ID {mid}" for mid in shift])
        ax.set_ylim(0, 1.05)
        ax.set_title(title, fontsize=10)
    for ax in axes[::2]:  # the first column
        ax.set_ylabel("mean p(own machine ID)")
    _legend_below(fig, axes, ncol=2)
    return fig


def errors_over_time(panels: Mapping[str, tuple[np.ndarray, np.ndarray]], hop_s: float, n_frames: int,
                     sample_rate: int | None = None, thresholds: Sequence[float] | None = None,
                     ylabel: str = "vector error (MSE)") -> Figure:
    """Where a network is surprised: each clip's standardised log-mel (top) above its vectors'
    reconstruction errors over time (bottom), one column per clip, errors on one shared scale;
    with ``sample_rate``, mel bands labelled by their centre frequencies (:func:`mel_ticks`);
    with ``thresholds`` (one per clip), the decision threshold its mean is held against.

    ``panels`` maps a title to ``(frames, errors)``: ``(T, n_mels)`` frames and the ``T - n_frames + 1``
    vector errors; a vector's error is drawn at its centre frame.
    """
    if not panels:
        raise ValueError("no clips to plot")
    fig = _figure(4.6 * len(panels), 4.6)
    axes = fig.subplots(2, len(panels), squeeze=False, sharex="col", height_ratios=(3, 2))
    top = max([float(np.max(e)) for _, e in panels.values()] + list(thresholds or []))
    for k, (title, (frames, errors)) in enumerate(panels.items()):
        image = axes[0, k].imshow(frames.T, origin="lower", aspect="auto", cmap="RdBu_r", vmin=-4, vmax=4,
                                  extent=(0, len(frames) * hop_s, 0, frames.shape[1]), interpolation="nearest")
        axes[0, k].set_title(textwrap.fill(title, 30), fontsize=10)  # a long title in two lines
        centres = (np.arange(len(errors)) + n_frames / 2) * hop_s
        axes[1, k].plot(centres, errors, color="#000000", lw=0.8)
        axes[1, k].axhline(float(np.mean(errors)), color=ANOMALOUS, ls="--", lw=1.2, label="clip score (mean)")
        if thresholds is not None:
            axes[1, k].axhline(thresholds[k], color="black", ls=":", lw=1.2, label="threshold")
        axes[1, k].set_ylim(0, 1.05 * top)
        axes[1, k].set_xlabel("time (s)")
    fig.colorbar(image, ax=list(axes[0]), label="standardised\nlog-mel (sd)", shrink=0.9, ticks=range(-4, 5, 2))
    axes[0, 0].set_ylabel("mel band" if sample_rate is None else "mel band (centre)")
    for k, ax in enumerate(axes[0] if sample_rate is not None else ()):
        mel_ticks(ax, frames.shape[1], sample_rate, labels=k == 0)
    axes[1, 0].set_ylabel(ylabel)
    _legend_below(fig, axes[1:, :1])
    return fig


def paired_differences(diffs: Mapping[str, tuple[float, float, float]], xlabel: str) -> Figure:
    """Mean differences with their confidence intervals, one row per pair (e.g. from
    :func:`asd.metrics.paired_difference`); filled where the interval excludes 0 (the order is
    resolved), open where it does not."""
    if not diffs:
        raise ValueError("no differences to plot")
    fig = _figure(6.4, 0.45 * len(diffs) + 1.2)
    ax = fig.subplots()
    for y, (mean, low, high) in enumerate(diffs.values()):
        resolved = low > 0 or high < 0
        ax.errorbar(mean, y, xerr=[[mean - low], [high - mean]], fmt="o", capsize=3, color=NORMAL,
                    markerfacecolor=NORMAL if resolved else "white")
    ax.axvline(0, color="0.4", lw=1, ls="--")
    ax.set_yticks(range(len(diffs)), list(diffs))
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    return fig


def record_spans(records: Mapping[str, Mapping]) -> Figure:
    """Each report-scale record's run (:mod:`asd.records`) on one time axis, a panel per record:
    log-mel features first, then each network's training and scoring span, and the wall clock.

    Networks trained at the same time start together, after the features and every network's
    set-up (where the record times it: their seconds leave it out); networks trained one after
    another follow each other (their seconds hold their own set-up).
    """
    if not records:
        raise ValueError("no records to plot")
    names = list(dict.fromkeys(n for record in records.values() for n in record["seconds"]))
    colours = _model_colours(names)
    fig, axes = _grid(len(records), ncols=1, panel=(6.4, 0.42 * len(names) + 1.3), sharex=True)
    for ax, (file, record) in zip(axes, records.items()):
        start = record["features_seconds"]
        if record.get("concurrent"):
            start += sum(record.get("setup_seconds", {}).values())
        ax.barh(-1, record["features_seconds"], color="0.6")
        for y, name in enumerate(record["seconds"]):
            ax.barh(y, record["seconds"][name], left=start, color=colours[name])
            if not record.get("concurrent"):
                start += record["seconds"][name]
        ax.axvline(record["wall_seconds"], color="#000000", ls="--", lw=1)
        ax.set_yticks(range(-1, len(record["seconds"])), ["log-mel features", *record["seconds"]])
        ax.invert_yaxis()
        ax.set_title(f"{file}: {record.get('device_name') or record['device']}, {record['config']['precision']}; "
                     f"wall clock {record['wall_seconds']:.0f} s (dashed)", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[-1].set_xlabel("seconds since the run began")
    return fig


def hall_shift(levels: Sequence[float], auc: Mapping[str, Sequence[float]],
               decided: Mapping[str, Mapping[str, Mapping[str, Sequence[float]]]], nominal: float,
               empty: str = "only the synthetic stand-in can record its clips again in a louder hall") -> Figure:
    """Detectors trained in the usual hall scoring clips recorded in louder ones (``levels``, dB
    louder): each detector's average AUC (top left), and the share of normal clips it flags (top
    right, dotted: the ``nominal`` share) and of anomalous clips (bottom left; the legend beside
    it), with thresholds from its training clips (solid, ``decided["training"]``) and from
    normal clips of each hall (dashed, ``decided["calibration"]``): ``{calibration: {model:
    {"false_alarms" | "recall": per level}}}``. Without ``auc``, the figure says ``empty``
    instead (real data, which cannot be recorded again)."""
    if not auc:
        return note(empty)
    styles = {"training": ("-", "thresholds: training clips"),
              "calibration": ("--", "thresholds: the hall's normal clips")}
    if unknown := set(decided) - set(styles):
        raise ValueError(f"unknown calibrations {sorted(unknown)}; use {', '.join(styles)}")
    colours = _model_colours(list(auc))
    fig, grid = _grid(4, ncols=2, panel=(3.45, 2.4))
    axes, legend_ax = grid[:3], grid[3]  # three panels, and the legend in the fourth place
    for name, values in auc.items():
        axes[0].plot(levels, values, "-", marker=MODEL_MARKERS.get(name, "o"), color=colours[name], ms=4,
                     label=tables.label(name))
    axes[0].axhline(CHANCE, color="0.5", lw=1, ls=":")
    axes[0].set_title("average AUC", fontsize=10)
    for ax, key, label in ((axes[1], "false_alarms", "normal clips flagged"),
                           (axes[2], "recall", "anomalous clips flagged")):
        for calibration, by_model in decided.items():
            for name, values in by_model.items():
                ax.plot(levels, values[key], styles[calibration][0], marker=MODEL_MARKERS.get(name, "o"),
                        color=colours[name], lw=1.2, ms=4)
        ax.set_ylim(-0.03, 1.03)
        ax.set_yticks(np.linspace(0, 1, 5))
        ax.set_title(label, fontsize=10)
    axes[1].axhline(nominal, color="0.5", lw=1, ls=":")
    for calibration in decided:  # the line styles' legend entries, in a grey no detector has
        axes[2].plot([], [], styles[calibration][0], color="0.55", lw=1.2, label=styles[calibration][1])
    for ax in axes:
        ax.set_xticks(list(levels))
        ax.set_xlabel("hall louder by (dB)")
        ax.grid(alpha=0.3)
    handles = _handles(axes)
    legend_ax.axis("off")
    legend_ax.legend(handles.values(), handles.keys(), frameon=False, loc="center")
    return fig


def learning_curve(sizes: Sequence[int], auc: Mapping[str, Sequence[float]],
                   decided: Mapping[str, Mapping[str, Sequence[float]]], nominal: float) -> Figure:
    """Detectors trained on the first ``sizes`` training clips of each ID and tested on the same
    test clips: each detector's average AUC (left), and the share of normal (middle; dotted: the
    ``nominal`` share) and of anomalous test clips (right) it flags with thresholds from its
    training clips, ``decided``: ``{model: {"false_alarms" | "recall": per size}}``; clips per ID
    on a log axis. The AUC axis spans at least 0.1, so that gaps far below that stay small."""
    if unknown := set(auc) ^ set(decided):
        raise ValueError(f"detectors {sorted(unknown)} lack either an AUC or their decisions")
    colours = _model_colours(list(auc))
    fig, axes = _grid(3, panel=(2.3, 2.5), sharex=True)
    for name, values in auc.items():
        style = {"color": colours[name], "ms": 4, "marker": MODEL_MARKERS.get(name, "o"),
                 "label": tables.label(name)}
        axes[0].plot(sizes, values, "-", **style)
        for ax, key in ((axes[1], "false_alarms"), (axes[2], "recall")):
            ax.plot(sizes, decided[name][key], "-", **style)
    low, high = np.min(list(auc.values())), np.max(list(auc.values()))
    middle, half = (low + high) / 2, max(high - low, 0.1) / 2 * 1.1  # small gaps not blown up
    axes[0].set_ylim(middle - half, middle + half)
    axes[1].axhline(nominal, color="0.5", lw=1, ls=":")
    for ax, title in zip(axes, ("average AUC", "normal clips flagged", "anomalous clips flagged")):
        ax.set_title(title, fontsize=10)
        ax.set_xscale("log")
        ax.set_xticks(list(sizes))
        ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.minorticks_off()  # the sizes' own ticks only
        ax.set_xlabel("training clips per ID")
        ax.grid(alpha=0.3)
    for ax in axes[1:]:
        ax.set_ylim(-0.03, 1.03)
        ax.set_yticks(np.linspace(0, 1, 5))
    _legend_below(fig, axes)
    return fig
