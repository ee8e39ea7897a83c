"""Every figure function returns a Figure with the expected panels and artists, from small real inputs."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from sklearn.metrics import roc_curve

from asd import metrics, plots, reference, tables
from asd.config import DETECTORS, FeatureConfig
from asd.data import counts, list_clips
from asd.features import mel_basis
from asd.train import History

IDS = ("00", "02", "04")


def _render(fig: Figure) -> RendererAgg:
    """Draw the figure off-screen with Agg, so layout and artist errors surface in the test."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def _tick_label_boxes(axis, renderer: RendererAgg) -> list:
    """The drawn extents of an axis's labelled major ticks inside its view, in tick order."""
    lo, hi = sorted(axis.get_view_interval())
    return [label.get_window_extent(renderer) for tick, label in zip(axis.get_majorticklocs(), axis.get_ticklabels())
            if lo <= tick <= hi and label.get_text()]


def _labelled_scores(seed: int = 0, n: int = 12) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """``y_true``, ``ids`` and two models' positive scores, anomalies scoring higher on average.

    The baseline's scores span more than a factor of 10 in every ID, the sequential's less.
    """
    rng = np.random.default_rng(seed)
    ids = np.repeat(IDS, n)
    y_true = np.tile(np.r_[np.zeros(n // 2, int), np.ones(n - n // 2, int)], len(IDS))
    noise = rng.uniform(0.0, 0.1, size=len(ids))
    scores = {"baseline": np.exp(noise + 3.0 * y_true), "sequential": 1.0 + noise + 0.5 * y_true}
    return y_true, ids, scores


def test_counts_bars_one_panel_per_set_one_bar_per_id_and_group(tmp_path, make_dataset) -> None:
    root = make_dataset(tmp_path, ids=("00", "02"), n_train=3, n_test_normal=2, n_test_anomaly=1)
    clips = list_clips(root, "slider", "train") + list_clips(root, "slider", "test")
    dev = counts(clips)
    train_only = {k: v for k, v in dev.items() if k[1] == "train"}
    fig = plots.counts_bars({"dev set": dev, "eval set": train_only})
    _render(fig)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2
    assert len(fig.axes[0].patches) == 2 * 3  # 2 IDs x (train normal, test normal, test anomaly)
    assert len(fig.axes[1].patches) == 2
    assert sorted(p.get_height() for p in fig.axes[0].patches) == [1, 1, 2, 2, 3, 3]
    assert fig.axes[0].get_title() == "dev set: 12 clips"


def test_counts_bars_draws_unknown_groups_in_grey() -> None:
    fig = plots.counts_bars({"eval": {("01", "train", "normal"): 4, ("01", "test", "unlabelled"): 2}})
    heights = {p.get_height(): p.get_facecolor()[:3] for p in fig.axes[0].patches}
    assert heights[2] == pytest.approx((0.6, 0.6, 0.6))
    with pytest.raises(ValueError, match="no clips to count in eval set"):
        plots.counts_bars({"dev set": {("00", "train", "normal"): 4}, "eval set": {}})


def test_waveforms_one_row_per_signal() -> None:
    y = np.sin(np.linspace(0, 20, 1600)).astype(np.float32)
    fig = plots.waveforms({"normal": y, "anomaly": 0.5 * y}, sample_rate=16000)
    _render(fig)
    assert [ax.get_title() for ax in fig.axes] == ["normal", "anomaly"]
    assert all(len(ax.lines) == 1 for ax in fig.axes)
    np.testing.assert_array_equal(fig.axes[0].lines[0].get_ydata(), y)  # each row its own signal
    np.testing.assert_array_equal(fig.axes[1].lines[0].get_ydata(), 0.5 * y)
    np.testing.assert_allclose(fig.axes[1].lines[0].get_xdata(), np.arange(1600) / 16000)


def test_spectrograms_shared_scale_has_one_colourbar() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(20, 8)), rng.normal(size=(20, 8)) + 3
    fig = plots.spectrograms({"normal": a, "anomaly": b}, hop_s=0.032)
    _render(fig)
    assert len(fig.axes) == 3  # two images + one colour bar
    images = [im for ax in fig.axes[:2] for im in ax.images]
    assert all(isinstance(im, AxesImage) for im in images) and len(images) == 2
    assert images[0].get_clim() == images[1].get_clim() == (a.min(), b.max())
    assert images[0].get_extent() == pytest.approx((0, 20 * 0.032, 0, 8))
    # frames run along x, bins up y: the image is the transposed (frames, bins) matrix
    np.testing.assert_array_equal(images[0].get_array(), a.T)
    np.testing.assert_array_equal(images[1].get_array(), b.T)


def test_spectrograms_own_scales_have_one_colourbar_each() -> None:
    m = np.arange(30.0).reshape(10, 3)
    fig = plots.spectrograms({"one": m, "two": 2 * m, "three": 3 * m}, hop_s=1.0, y_extent=(0, 8000),
                             shared_scale=False)
    assert len(fig.axes) == 6
    assert list(fig.axes[0].images[0].get_extent()[2:]) == [0, 8000]


def test_spectrograms_centre_makes_scales_symmetric() -> None:
    m = np.linspace(-1.0, 3.0, 40).reshape(10, 4)
    shared = plots.spectrograms({"a": m, "b": m / 2}, hop_s=1.0, centre=0.0)
    assert shared.axes[0].images[0].get_clim() == (-3.0, 3.0)
    own = plots.spectrograms({"a": m, "b": m / 2}, hop_s=1.0, centre=0.0, shared_scale=False)
    assert [ax.images[0].get_clim() for ax in own.axes if ax.images] == [(-3.0, 3.0), (-1.5, 1.5)]


def test_mel_bands_are_labelled_by_their_centre_frequencies() -> None:
    import librosa

    m = np.zeros((10, 128))
    fig = plots.spectrograms({"a": m, "b": m}, hop_s=0.032, sample_rate=16000)
    ax = fig.axes[0]
    centres = librosa.mel_frequencies(130, fmin=0.0, fmax=8000)[1:-1]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["500 Hz", "1 kHz", "2 kHz", "4 kHz"] and ax.get_ylabel() == "mel band (centre)"
    for tick, hz in zip(ax.get_yticks(), (500, 1000, 2000, 4000)):  # the band whose centre is nearest
        assert abs(centres[int(tick)] - hz) == np.abs(centres - hz).min()
    errors = plots.errors_over_time({"a": (m, np.ones(6)), "b": (m, np.ones(6))}, 0.032, 5, sample_rate=16000)
    tops = [ax for ax in errors.axes if ax.images]
    assert [t.get_text() for t in tops[0].get_yticklabels()] == labels
    assert [t.get_text() for t in tops[1].get_yticklabels()] == [""] * 4  # one column of labels


def test_spectrograms_reject_non_matrices() -> None:
    with pytest.raises(ValueError, match="2-d"):
        plots.spectrograms({"bad": np.zeros(5)}, hop_s=0.1)


def test_a_note_is_a_figure_of_its_text_alone() -> None:
    fig = plots.note("only the stand-in knows its faults")
    _render(fig)
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.texts] == ["only the stand-in knows its faults"]
    assert not ax.axison and not ax.lines and not ax.images


def test_mel_filterbank_draws_every_filter() -> None:
    cfg = FeatureConfig(n_mels=16, n_fft=256)
    fig = plots.mel_filterbank(mel_basis(cfg), cfg.sample_rate)
    _render(fig)
    basis = mel_basis(cfg)
    left, right = fig.axes
    assert len(left.lines) == 16
    freqs = np.linspace(0, cfg.sample_rate / 2, basis.shape[1])
    for line, weights in zip(left.lines, basis):  # each filter's weights over the STFT bins' frequencies
        np.testing.assert_array_equal(line.get_xdata(), freqs)
        np.testing.assert_array_equal(line.get_ydata(), weights)
    np.testing.assert_array_equal(right.lines[0].get_ydata(), freqs[basis.argmax(axis=1)])  # band centres


def test_network_shapes_one_panel_per_network_one_bar_per_dense_output() -> None:
    shapes = {"baseline": [(64, ""), (40, "BN+dropout"), (4, ""), (4, "parallel"), (40, ""), (64, "")],
              "sequential": [(64, ""), (12, "BN"), (2, "BN"), (12, "BN"), (64, "")]}
    fig = plots.network_shapes(shapes, titles={"baseline": "the VAE"})
    _render(fig)
    assert len(fig.axes) == 2
    for ax, columns in zip(fig.axes, shapes.values()):
        heights = [bar.get_height() for bar in ax.patches]
        assert heights == [w for w, _ in columns]  # a bar per width, as tall as it
        assert all(bar.get_y() == -bar.get_height() / 2 for bar in ax.patches)  # centred: the network's waist
    heads = fig.axes[0].patches[2:4]
    assert abs(heads[0].get_x() - heads[1].get_x()) < 0.5  # parallel heads share one slot
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "BN\ndropout" in texts and "heads" in texts and "input" in texts
    assert [ax.get_title() for ax in fig.axes] == ["the VAE", tables.label("sequential")]
    with pytest.raises(ValueError):
        plots.network_shapes({})


def test_training_curves_one_panel_per_network() -> None:
    hists = {"baseline": History(train_loss=[3000.0, 200.0, 150.0], val_loss=[310.0, 220.0, 170.0]),
             "sequential": History(train_loss=[1.0, 0.8, 0.7]),
             "batchnorm": History(train_loss=[5.0, -1.0], val_loss=[4.0, 3.0])}
    fig = plots.training_curves(hists)
    _render(fig)
    assert len(fig.axes) == 3
    assert [len(ax.lines) for ax in fig.axes] == [2, 1, 2]
    assert fig.axes[0].get_yscale() == "log"  # spans more than a factor of 10
    assert fig.axes[1].get_yscale() == "linear"  # does not
    assert fig.axes[2].get_yscale() == "linear"  # a non-positive loss cannot go on a log axis
    ticks = fig.axes[2].get_xticks()
    assert np.all(ticks == np.round(ticks))  # whole epochs, even in a two-epoch run


@pytest.mark.parametrize("metric", ["auc", "pauc"])
def test_score_bars_with_report_ticks_and_baseline_lines(metric: str) -> None:
    y_true, ids, scores = _labelled_scores()
    rows = [r for name, s in scores.items() for r in metrics.per_id(name, "slider", ids, y_true, s)]
    tab = metrics.table(rows)
    fig = plots.score_bars(tab, metric, report=reference.REPORT, baseline=reference.DCASE2020_BASELINE)
    _render(fig)
    ax = fig.axes[0]
    assert len(fig.axes) == 1
    assert len(ax.patches) == 2 * 4  # 2 models x (3 IDs + AVG)
    k = plots.METRICS.index(metric)
    bar = ax.patches[3]
    assert bar.get_y() == plots.CHANCE  # bars grow from chance
    assert bar.get_y() + bar.get_height() == pytest.approx(tab["baseline"]["AVG"][k])
    ticks = [line for line in ax.lines if line.get_color() == "black"]
    assert len(ticks) == 2 * 4
    avg_tick = ticks[3].get_ydata()[0]
    assert avg_tick == pytest.approx(np.mean([v[k] for v in reference.REPORT["baseline"].values()]))
    dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert len(dashed) == 4  # the baseline's AVG over the table's IDs (00/02/04), not its own four
    assert dashed[3].get_ydata()[0] == pytest.approx(np.mean([reference.DCASE2020_BASELINE[i][k] for i in IDS]))
    assert ax.get_ylabel() == plots.METRIC_NAMES[metric]


def test_score_bars_average_a_reference_over_the_tables_ids_only() -> None:
    tab = {"baseline": {"00": (0.9, 0.7), "02": (0.8, 0.6), "AVG": (0.85, 0.65)},
           "pca": {"00": (0.8, 0.6), "07": (0.8, 0.6), "AVG": (0.8, 0.6)}}
    ax = plots.score_bars(tab, report=reference.REPORT, baseline=reference.DCASE2020_BASELINE).axes[0]
    ticks = [line.get_ydata()[0] for line in ax.lines if line.get_color() == "black"]
    # the report's baseline on IDs 00 and 02, and no AVG tick: the table has an ID 07 the report lacks
    assert ticks == pytest.approx([reference.REPORT["baseline"][i][0] for i in ("00", "02")])
    dashed = [line.get_ydata()[0] for line in ax.lines if line.get_linestyle() == "--"]
    assert dashed == pytest.approx([reference.DCASE2020_BASELINE[i][0] for i in ("00", "02")])


def test_score_bars_without_references_and_bad_metric() -> None:
    tab = {"pca": {"00": (0.7, 0.55), "AVG": (0.7, 0.55)}}
    fig = plots.score_bars(tab, "auc")
    assert len(fig.axes[0].patches) == 2
    assert [line.get_label() for line in fig.axes[0].lines] == ["chance (0.5)"]
    with pytest.raises(ValueError, match="metric"):
        plots.score_bars(tab, "f1")


def test_a_detector_keeps_its_colour_in_every_figure() -> None:
    """PCA beside the report's networks and PCA beside the new detectors: one colour, and no
    other detector (or a yardstick) drawn in it."""
    cells = {"00": (0.7, 0.55), "AVG": (0.7, 0.55)}

    def colours(names):
        ax = plots.score_bars({n: cells for n in names}, "auc").axes[0]
        return {n: matplotlib.colors.to_hex(ax.patches[2 * i].get_facecolor()) for i, n in enumerate(names)}

    with_networks, with_new = colours(["baseline", "sequential", "pca"]), colours(["pca", "idnn", "idclf", "level"])
    assert with_networks["pca"] == with_new["pca"]
    assert len(set(with_new.values())) == 4 and with_networks["baseline"] not in with_new.values()
    every = colours([*DETECTORS, "level", "report VAE", "DCASE baseline"])  # more names than the palette
    assert len(set(every.values())) == len(every)


def test_group_aucs_one_panel_per_grouping_bars_from_chance() -> None:
    y_true, ids, scores = _labelled_scores()
    faults = np.where(y_true == 1, np.tile(["dry", "worn"], y_true.size // 2), None)
    panels = {"fault": {m: metrics.auc_by_group(y_true, ids, s, faults) for m, s in scores.items()},
              "all": {"baseline": {"any": (0.45, 18)}}}
    fig = plots.group_aucs(panels)
    _render(fig)
    fault_ax, all_ax = fig.axes
    assert [t.get_text() for t in fault_ax.get_xticklabels()] == ["dry\n(9 clips)", "worn\n(9 clips)"]
    tops = [p.get_y() + p.get_height() for p in fault_ax.patches]
    assert tops == pytest.approx([panels["fault"][m][g][0] for m in scores for g in ("dry", "worn")])
    assert all(p.get_y() == plots.CHANCE for p in fault_ax.patches)
    assert all_ax.patches[0].get_height() == pytest.approx(-0.05) and all_ax.get_ylim()[0] < 0.45
    assert fault_ax.get_title() == "fault"
    note = plots.group_aucs({}, empty="no fault labels in this data")
    assert [t.get_text() for t in note.axes[0].texts] == ["no fault labels in this data"]
    assert "synthetic stand-in" in plots.group_aucs({}).axes[0].texts[0].get_text()


def test_roc_curves_one_row_per_id_whole_curve_and_the_pauc_range_enlarged() -> None:
    y_true, ids, scores = _labelled_scores()
    fig = plots.roc_curves(y_true, ids, scores, max_fpr=0.1)
    _render(fig)
    assert len(fig.axes) == 3 * 2
    assert all(len(ax.lines) == 1 + 2 for ax in fig.axes)  # chance diagonal + 2 models
    assert [ax.get_title() for ax in fig.axes[::2]] == ["ID 00", "ID 02", "ID 04"]
    whole, zoom = fig.axes[:2]
    assert whole.get_xlim() == (0, 1) and zoom.get_xlim() == (0, 0.1)
    sel = ids == "00"
    fpr, tpr, _ = roc_curve(y_true[sel], scores["baseline"][sel])
    np.testing.assert_allclose(zoom.lines[1].get_xdata(), fpr)  # the same curve, enlarged
    np.testing.assert_allclose(zoom.lines[1].get_ydata(), tpr)


def test_score_histograms_grid_of_models_by_ids() -> None:
    y_true, ids, scores = _labelled_scores()
    fig = plots.score_histograms(y_true, ids, scores, bins=5)
    _render(fig)
    assert len(fig.axes) == 2 * 3
    first = fig.axes[0]
    assert [ax.get_xscale() for ax in fig.axes] == ["log"] * 3 + ["linear"] * 3
    assert len(first.patches) == 2 * 5 + 2  # normal and anomalous histograms of 5 bins, each outlined
    bars = [p for p in first.patches if hasattr(p, "get_height")]  # each histogram also outlined (a polygon)
    assert sum(p.get_height() for p in bars) == 12
    assert sum(p.get_height() for p in bars[5:]) == 6  # the anomalous clips
    shared = plots.score_histograms(y_true, ids, scores, bins=5, share=True)
    _render(shared)
    for k, mid in enumerate(IDS):  # each ID's column: one axis and the same bins for both models
        column = shared.axes[k], shared.axes[3 + k]
        both = np.concatenate([scores[m][ids == mid] for m in scores])
        assert [ax.get_xlim() for ax in column] == [pytest.approx((both.min(), both.max()))] * 2
        assert [ax.get_xscale() for ax in column] == ["log"] * 2
        assert column[0].patches[0].get_x() == column[1].patches[0].get_x()
    scores["baseline"][3] = np.nan  # a broken score is named, not dropped from its panel
    with pytest.raises(ValueError, match="baseline: 1 scores are NaN or infinite"):
        plots.score_histograms(y_true, ids, scores)


@pytest.mark.parametrize("n_ids", [3, 4])
@pytest.mark.parametrize("decades", [1.5, 2.5, 4, 9])
def test_score_histograms_log_tick_labels_do_not_touch(decades: float, n_ids: int) -> None:
    """An ID classifier's scores can span many decades: each panel keeps at least two tick labels,
    and neighbouring labels stay apart, however narrow the panels."""
    ids = np.repeat(["00", "02", "04", "06"][:n_ids], 30)
    y_true = np.tile(np.r_[np.zeros(15, int), np.ones(15, int)], n_ids)
    scores = np.tile(np.geomspace(10.0 ** -decades, 1.0, 30), n_ids)
    fig = plots.score_histograms(y_true, ids, {"idclf": scores})
    renderer = _render(fig)
    for ax in fig.axes:
        assert ax.get_xscale() == "log"
        boxes = _tick_label_boxes(ax.xaxis, renderer)
        assert len(boxes) >= 2
        assert all(right.x0 - left.x1 > 2 for left, right in zip(boxes, boxes[1:]))  # pixels apart


def test_score_histograms_fall_back_to_linear_bins_for_non_positive_scores() -> None:
    y_true, ids, scores = _labelled_scores()
    fig = plots.score_histograms(y_true, ids, {"pca": np.log(scores["baseline"]) - 1.0}, bins=4)
    assert len(fig.axes) == 3
    assert all(ax.get_xscale() == "linear" for ax in fig.axes)


def test_decision_histograms_show_the_fit_and_the_threshold_of_each_id() -> None:
    rng = np.random.default_rng(0)
    train_ids = np.repeat(IDS, 40)
    train = rng.gamma(400.0, 1e-3, size=train_ids.size) * np.repeat([1.0, 1.0, 30.0], 40)
    y_true, ids, scores = _labelled_scores()
    test = scores["sequential"] * np.where(ids == "04", 30.0, 1.0) * 0.4
    test[(ids == "02") & (y_true == 1)] = 5.0  # far beyond ID 02's normal scores
    test[np.flatnonzero((ids == "00") & (y_true == 1))[:2]] = 1e-6  # two anomalies far below ID 00's
    fig = plots.decision_histograms(train_ids, train, ids, y_true, test, quantile=0.8, bins=6)
    _render(fig)
    assert len(fig.axes) == 2 * 3
    top, bottom = fig.axes[:3], fig.axes[3:]
    assert [ax.get_title() for ax in top] == ["ID 00", "ID 02", "ID 04"]
    for k, mid in enumerate(IDS):
        limit = metrics.decision_threshold(train[train_ids == mid], 0.8)
        for ax in (top[k], bottom[k]):  # the threshold, drawn at the same place above and below
            assert ax.lines[-1].get_xdata()[0] == pytest.approx(limit)
        assert len(top[k].patches) == 6 and len(top[k].lines) == 2  # training histogram, gamma density, threshold
        lo, hi = bottom[k].get_xlim()
        normal = test[(ids == mid) & (y_true == 0)]
        assert lo < min(normal.min(), limit) and hi > max(normal.max(), limit)
        below, beyond = int(np.sum(test[ids == mid] < lo)), int(np.sum(test[ids == mid] > hi))
        bars = [p for p in bottom[k].patches if hasattr(p, "get_height")]  # the outlines are polygons
        assert len(bottom[k].patches) - len(bars) == 2  # each histogram (normal, anomalous) outlined too
        drawn = sum(p.get_height() for p in bars)
        assert drawn + below + beyond == 12  # every test clip is drawn or counted beside the axis
        expected = [f"\u2190 {below} more"] * bool(below) + [f"{beyond} more \u2192"] * bool(beyond)
        assert [t.get_text() for t in bottom[k].texts] == expected
    assert bottom[1].texts and bottom[1].get_xlim()[1] < 5.0  # ID 02's anomalies lie beyond its axis
    assert bottom[0].texts[0].get_text() == "\u2190 2 more"  # ID 00's two lie below its axis
    unlabelled = plots.decision_histograms(train_ids, train, ids, np.full(ids.size, -1), test, bins=6)
    assert sum(p.get_height() for p in unlabelled.axes[3].patches if hasattr(p, "get_height")) == 12


def test_score_timeline_marks_the_clips_above_each_ids_threshold() -> None:
    rng = np.random.default_rng(1)
    ids = np.array(["00"] * 8 + ["02"] * 20)
    scores = rng.uniform(1.0, 2.0, ids.size)
    scores[[3, 12, 13]] = [40.0, 2.5, 3.0]  # ID 00's spike spans a decade: a log axis
    limits = {"00": 1.9, "02": 2.2}
    names = [f"clip-{k:02d}.wav" for k in range(ids.size)]
    fig = plots.score_timeline(names, ids, scores, limits)
    renderer = _render(fig)
    assert len(fig.axes) == 2
    for ax, mid in zip(fig.axes, ("00", "02")):
        mine = scores[ids == mid]
        below, flagged = (len(c.get_offsets()) for c in ax.collections)
        assert (below, flagged) == (int(np.sum(mine <= limits[mid])), int(np.sum(mine > limits[mid])))
        assert ax.get_title() == f"ID {mid}: {flagged} of {mine.size} flagged"
        assert ax.lines[-1].get_ydata()[0] == pytest.approx(limits[mid])
    assert fig.axes[0].get_yscale() == "log" and fig.axes[1].get_yscale() == "linear"
    boxes = _tick_label_boxes(fig.axes[0].yaxis, renderer)
    assert len(boxes) >= 2 and all(upper.y0 > lower.y1 for lower, upper in zip(boxes, boxes[1:]))
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == names[:8]  # few clips: named
    assert fig.axes[1].get_xlabel() == "clip, in order"


def test_empty_inputs_raise() -> None:
    for call in (lambda: plots.counts_bars({}), lambda: plots.waveforms({}, 16000),
                 lambda: plots.training_curves({}), lambda: plots.score_bars({}),
                 lambda: plots.roc_curves(np.zeros(2), np.zeros(2), {}),
                 lambda: plots.score_histograms(np.zeros(2), np.zeros(2), {}),
                 lambda: plots.score_timeline([], np.zeros(0), np.zeros(0), {}),
                 lambda: plots.record_spans({})):
        with pytest.raises(ValueError):
            call()


def test_functions_do_not_touch_pyplot_state() -> None:
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    plots.waveforms({"a": np.zeros(10)}, 10)
    assert plt.get_fignums() == before  # no pyplot figure was opened


def test_errors_over_time_draws_frames_errors_and_the_clip_score():
    rng = np.random.default_rng(0)
    panels = {"normal": (rng.standard_normal((40, 8)), rng.random(36)),
              "anomalous": (rng.standard_normal((30, 8)), 3 * rng.random(26))}
    fig = plots.errors_over_time(panels, hop_s=0.032, n_frames=5)
    axes = fig.axes
    assert len(axes) == 2 * 2 + 1  # frames over errors per clip, and the frames' colour bar
    assert "log-mel" in axes[-1].get_ylabel()
    error_axes = [ax for ax in axes if ax.get_xlabel() == "time (s)"]
    for ax, (_, errors) in zip(error_axes, panels.values()):
        lines = ax.get_lines()
        np.testing.assert_allclose(lines[0].get_ydata(), errors)
        # vector i spans frames i..i+4, drawn [j, j+1) x hop each: its error sits mid its centre frame, i+2
        np.testing.assert_allclose(lines[0].get_xdata(), (np.arange(len(errors)) + 2 + 0.5) * 0.032)
        assert lines[1].get_ydata()[0] == pytest.approx(errors.mean())  # the dashed clip score
    assert error_axes[0].get_ylim()[1] >= 3 * 0.9  # one shared error scale
    with pytest.raises(ValueError):
        plots.errors_over_time({}, 0.032, 5)
    # each clip's threshold, dotted, on a scale that shows it, and another name for the score
    fig = plots.errors_over_time(panels, hop_s=0.032, n_frames=5, thresholds=[0.5, 5.0], ylabel="vector score")
    error_axes = [ax for ax in fig.axes if ax.get_xlabel() == "time (s)"]
    assert [ax.get_lines()[2].get_ydata()[0] for ax in error_axes] == [0.5, 5.0]
    assert error_axes[0].get_ylim()[1] >= 5.0 and error_axes[0].get_ylabel() == "vector score"


def test_own_id_bars_draw_one_bar_per_id_and_measured_group() -> None:
    two = {"00": (0.9, 0.4), "02": (0.8, 0.6)}
    three = {"00": (1.0, 0.3, 0.5), "02": (0.9, 0.2, float("nan"))}
    real = {"00": (1.0, 0.0, float("nan")), "02": (1.0, 0.1, float("nan"))}  # no other recording: no bar
    fig = plots.own_id_bars({"a": two, "b": three, "c": real})
    _render(fig)
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.patches]
    assert [len(ax.patches) for ax in axes] == [4, 6, 4]
    normal = "normal (test clips; one-recording probe: its held-out half)"
    assert [[p.get_label() for p in ax.containers] for ax in axes] == [
        [normal, "anomalous"], [normal, "anomalous", "normal, other recordings"], [normal, "anomalous"]]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [normal, "anomalous", "normal, other recordings"]
    with pytest.raises(ValueError, match="no panels"):
        plots.own_id_bars({})
    heights = sorted(p.get_height() for p in axes[1].patches if np.isfinite(p.get_height()))
    assert heights == sorted([1.0, 0.3, 0.5, 0.9, 0.2])


def test_paired_differences_fill_resolved_orders_only() -> None:
    diffs = {"a - b": (0.02, 0.01, 0.03), "a - c": (0.005, -0.01, 0.02), "b - c": (-0.02, -0.03, -0.01)}
    fig = plots.paired_differences(diffs, "difference in average AUC")
    _render(fig)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == list(diffs)
    faces = [line.get_markerfacecolor() for line in ax.lines if line.get_marker() == "o"]
    assert [f == "white" for f in faces] == [False, True, False]
    with pytest.raises(ValueError, match="no differences"):
        plots.paired_differences({}, "x")


def _record(concurrent: bool, setup: dict | None) -> dict:
    record = {"device": "cuda", "device_name": "GPU", "config": {"precision": "fp32"}, "concurrent": concurrent,
              "features_seconds": 4.0, "seconds": {"baseline": 50.0, "sequential": 80.0}, "wall_seconds": 90.0}
    return record if setup is None else {**record, "setup_seconds": setup}


def test_record_spans_start_networks_together_or_in_turn_and_mark_the_wall_clock() -> None:
    fig = plots.record_spans({"full-gpu.json": _record(True, {"baseline": 1.0, "sequential": 2.0}),
                              "full-cpu.json": _record(False, {"baseline": 1.0, "sequential": 2.0})})
    _render(fig)
    together, in_turn = fig.axes
    spans = lambda ax: [(p.get_x(), p.get_width()) for p in ax.patches]  # noqa: E731
    assert spans(together) == [(0, 4.0), (7.0, 50.0), (7.0, 80.0)]  # both after the features and the set-ups
    assert spans(in_turn) == [(0, 4.0), (4.0, 50.0), (54.0, 80.0)]  # one after the other, set-up within
    for ax in fig.axes:
        assert [line.get_xdata()[0] for line in ax.lines] == [90.0]  # the wall clock
        assert [t.get_text() for t in ax.get_yticklabels()] == ["log-mel features", "baseline", "sequential"]
    assert together.get_title().startswith("full-gpu.json: GPU, fp32; wall clock 90 s")


def test_score_timeline_marks_each_alarm_with_a_line_at_its_clip() -> None:
    ids = np.array(["00"] * 10)
    scores = np.array([1, 3, 3, 1, 3, 3, 3, 3, 1, 3], dtype=float)  # runs of 2 and 4 above 2.0
    fig = plots.score_timeline([f"c{k}" for k in range(10)], ids, scores, {"00": 2.0}, alarm_after=2)
    ax = fig.axes[0]
    alarms = [line.get_xdata()[0] for line in ax.lines if line.get_xdata()[0] == line.get_xdata()[1]]
    assert alarms == [2, 5]  # the second clip of each run
    assert ax.get_title() == "ID 00: 7 of 10 flagged, 2 alarms"
    assert "alarm (2 flagged in a row)" in [t.get_text() for t in fig.legends[0].get_texts()]
    fig = plots.score_timeline([f"c{k}" for k in range(10)], ids, scores, {"00": 2.0}, alarm_after=5)
    assert fig.axes[0].get_title() == "ID 00: 7 of 10 flagged, 0 alarms"
    # a run carried over from clips scored before: a run of two completes a run of three
    for runs, want in ((None, [5]), ({"00": 1}, [1, 5])):
        fig = plots.score_timeline([f"c{k}" for k in range(9)], ids[1:], scores[1:], {"00": 2.0}, alarm_after=3,
                                   alarm_runs=runs)
        assert [line.get_xdata()[0] for line in fig.axes[0].lines if line.get_xdata()[0] == line.get_xdata()[1]] \
            == want


def test_hall_shift_draws_each_detector_per_hall_solid_and_dashed_thresholds() -> None:
    levels = [0.0, 6.0, 12.0]
    auc = {"pca": [0.9, 0.88, 0.85], "sequential": [0.9, 0.8, 0.6]}
    decided = {how: {name: {"false_alarms": [0.1 * k, 0.2 * k, 0.3 * k], "recall": [0.9, 0.8 / k, 0.7 / k]}
                     for name in auc}
               for how, k in (("training", 2), ("calibration", 1))}
    fig = plots.hall_shift(levels, auc, decided, nominal=0.1)
    _render(fig)
    auc_ax, alarm_ax, recall_ax, legend_ax = fig.axes
    drawn = {line.get_label(): line for line in auc_ax.lines}
    assert drawn[tables.label("sequential")].get_ydata().tolist() == auc["sequential"]
    # seven detectors' colours are told apart by their markers too
    assert drawn[tables.label("pca")].get_marker() != drawn[tables.label("sequential")].get_marker()
    assert len(set(plots.MODEL_MARKERS.values())) == len(plots.MODEL_MARKERS)
    for ax, key in ((alarm_ax, "false_alarms"), (recall_ax, "recall")):
        data = [line for line in ax.lines if len(line.get_xdata()) == len(levels)]
        assert [(line.get_linestyle(), line.get_ydata().tolist()) for line in data] == [
            ("-" if how == "training" else "--", decided[how][name][key]) for how in decided for name in auc]
        assert all(line.get_xdata().tolist() == levels for line in data)
    assert [line.get_ydata()[0] for line in alarm_ax.lines if line.get_linestyle() == ":"] == [0.1]  # nominal
    assert not legend_ax.axison  # the fourth place holds the legend only
    legend = [t.get_text() for t in legend_ax.get_legend().get_texts()]
    assert legend == [tables.label("pca"), tables.label("sequential"), "thresholds: training clips",
                      "thresholds: the hall's normal clips"]
    assert "louder hall" in plots.hall_shift(levels, {}, {}, 0.1).axes[0].texts[0].get_text()
    with pytest.raises(ValueError, match="unknown calibrations"):
        plots.hall_shift(levels, auc, {"held-out": decided["training"]}, 0.1)


def test_learning_curve_draws_each_detector_against_clips_per_id_on_a_log_axis() -> None:
    sizes = [5, 10, 20, 60]
    auc = {"pca": [0.9, 0.93, 0.94, 0.94], "sequential": [0.85, 0.9, 0.95, 0.96]}
    decided = {name: {"false_alarms": [0.9, 0.6, 0.4, 0.3], "recall": [1.0, 0.97, 0.95, 0.9 + k / 100]}
               for k, name in enumerate(auc)}
    fig = plots.learning_curve(sizes, auc, decided, nominal=0.1)
    _render(fig)
    auc_ax, alarm_ax, recall_ax = fig.axes
    for ax, values in ((auc_ax, auc), (alarm_ax, {n: d["false_alarms"] for n, d in decided.items()}),
                       (recall_ax, {n: d["recall"] for n, d in decided.items()})):
        drawn = {line.get_label(): line for line in ax.lines if len(line.get_xdata()) == len(sizes)}
        assert {label: line.get_ydata().tolist() for label, line in drawn.items()} == {
            tables.label(name): v for name, v in values.items()}
        assert ax.get_xscale() == "log" and [t.get_text() for t in ax.get_xticklabels()] == ["5", "10", "20", "60"]
    assert [line.get_ydata()[0] for line in alarm_ax.lines if line.get_linestyle() == ":"] == [0.1]
    low, high = auc_ax.get_ylim()
    assert high - low >= 0.1 and low <= 0.85 and high >= 0.96
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == [tables.label("pca"), tables.label("sequential")]
    with pytest.raises(ValueError, match="lack either"):
        plots.learning_curve(sizes, auc, {"pca": decided["pca"]}, 0.1)
