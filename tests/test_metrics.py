"""asd.metrics: AUC/pAUC against scikit-learn and a by-hand ROC, per-ID tables, the report's averages."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import gamma
from sklearn.metrics import roc_auc_score

from asd import metrics, reference
from asd.metrics import auc_pauc, per_id, table
from asd.reference import REPORT, reference_table
from asd.tables import Table, format_table


def auc_by_hand(y: np.ndarray, s: np.ndarray) -> float:
    """Mann-Whitney: share of (anomaly, normal) pairs ranked correctly, ties counting one half."""
    pos, neg = s[y == 1][:, None], s[y == 0][None, :]
    return float(((pos > neg) + 0.5 * (pos == neg)).mean())


def pauc_by_hand(y: np.ndarray, s: np.ndarray, max_fpr: float) -> float:
    """Area under the ROC curve up to ``max_fpr`` (linear interpolation), McClish-standardised."""
    thresholds = np.unique(s)[::-1]
    tpr = np.array([0.0] + [np.mean(s[y == 1] >= t) for t in thresholds])
    fpr = np.array([0.0] + [np.mean(s[y == 0] >= t) for t in thresholds])
    area = 0.0
    for k in range(1, len(fpr)):
        x0, x1, y0, y1 = fpr[k - 1], fpr[k], tpr[k - 1], tpr[k]
        if x0 >= max_fpr:
            break
        if x1 > max_fpr:  # cut the last segment at max_fpr
            y1 = y0 + (y1 - y0) * (max_fpr - x0) / (x1 - x0)
            x1 = max_fpr
        area += (x1 - x0) * (y0 + y1) / 2
    lo, hi = max_fpr**2 / 2, max_fpr  # a random and a perfect detector
    return 0.5 * (1 + (area - lo) / (hi - lo))


def _random_case(seed: int, n: int = 200, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    y[:2] = [0, 1]
    s = rng.standard_normal(n) + 0.8 * y
    if ties:
        s = np.round(s * 2) / 2  # few distinct values: many ties across the classes
    return y, s


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("max_fpr", [0.1, 0.05, 0.3, 1.0])
def test_auc_pauc_matches_sklearn_and_by_hand(seed, ties, max_fpr):
    y, s = _random_case(seed, ties=ties)
    auc, pauc = auc_pauc(y, s, max_fpr=max_fpr)
    assert auc == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert auc == pytest.approx(auc_by_hand(y, s), abs=1e-12)
    if max_fpr < 1:
        assert pauc == pytest.approx(roc_auc_score(y, s, max_fpr=max_fpr), abs=1e-12)
        assert pauc == pytest.approx(pauc_by_hand(y, s, max_fpr), abs=1e-9)
    else:  # the whole curve: no standardisation
        assert pauc == pytest.approx(auc, abs=1e-12)


def test_auc_pauc_default_max_fpr_is_dcase():
    y, s = _random_case(5)
    assert auc_pauc(y, s)[1] == pytest.approx(pauc_by_hand(y, s, 0.1), abs=1e-9)
    assert auc_pauc(y, s)[1] != pytest.approx(auc_pauc(y, s, 0.2)[1], abs=1e-6)


def test_perfect_and_reversed_detector():
    y = np.array([0] * 10 + [1] * 5)
    s = np.arange(15.0)
    assert auc_pauc(y, s) == (1.0, 1.0)
    auc, pauc = auc_pauc(y, -s)
    assert auc == 0.0
    # nothing found before FPR 0.1: raw area 0, standardised 0.5 * (1 - 0.005 / 0.095)
    assert pauc == pytest.approx(0.5 * (1 - 0.005 / 0.095), abs=1e-12)
    assert auc_pauc(y.astype(bool), s) == (1.0, 1.0)  # boolean labels work too


def test_random_detector_pauc_near_half():
    rng = np.random.default_rng(0)
    draws = []
    for _ in range(300):
        y = np.r_[np.zeros(100, int), np.ones(100, int)]
        draws.append(auc_pauc(y, rng.standard_normal(200)))
    auc, pauc = np.mean(draws, axis=0)
    assert abs(auc - 0.5) < 0.02
    assert abs(pauc - 0.5) < 0.02  # McClish: chance is 0.5, not the raw area 0.1**2 / 2


@pytest.mark.parametrize(("y", "s", "match"), [
    ([0, 0, 0], [0.1, 0.2, 0.3], "both"),
    ([1, 1], [0.1, 0.2], "both"),
    ([0, 1, 2], [0.1, 0.2, 0.3], r"0 \(normal\) and 1 \(anomalous\) only, got \[2\]"),
    ([0, 1, -1], [0.1, 0.2, 0.3], r"only, got \[-1\]"),  # an unlabelled clip, though both classes are there
    ([0, 1, 1], [0.1, np.nan, 0.3], "NaN"),
    ([0, 1, 1], [0.1, np.inf, 0.3], "infinity"),
    ([0, 1, 1], [0.1, 0.2], "equal length"),
    ([[0, 1], [1, 0]], [[0.1, 0.2], [0.3, 0.4]], "1-d"),
])
def test_bad_inputs(y, s, match):
    with pytest.raises(ValueError, match=match):
        auc_pauc(y, s)


def _rows() -> tuple[list[dict], np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    ids = np.repeat(["02", "00", "04"], 40)
    y = np.tile(np.r_[np.zeros(25, int), np.ones(15, int)], 3)
    s = rng.standard_normal(120) + y * np.repeat([0.5, 2.0, 1.0], 40)
    return per_id("batchnorm", "slider", ids, y, s), ids, y, s


def test_per_id_rows():
    rows, ids, y, s = _rows()
    assert [r["id"] for r in rows] == ["00", "02", "04"]
    for r in rows:
        sel = ids == r["id"]
        assert set(r) == {"model", "machine", "id", "auc", "pauc"}
        assert (r["model"], r["machine"]) == ("batchnorm", "slider")
        assert r["auc"] == pytest.approx(roc_auc_score(y[sel], s[sel]), abs=1e-12)
        assert r["pauc"] == pytest.approx(roc_auc_score(y[sel], s[sel], max_fpr=0.1), abs=1e-12)
    rows_wide = per_id("batchnorm", "slider", ids, y, s, max_fpr=0.5)
    sel = ids == "00"
    assert rows_wide[0]["pauc"] == pytest.approx(roc_auc_score(y[sel], s[sel], max_fpr=0.5), abs=1e-12)
    y[ids == "04"] = 0  # an ID without anomalous clips: named, with the machine
    with pytest.raises(ValueError, match="slider ID 04: y_true needs both normal"):
        per_id("batchnorm", "slider", ids, y, s)


def test_table_average_and_format():
    rows, ids, y, s = _rows()
    other = [dict(r, model="dropout", auc=r["auc"] / 2, pauc=r["pauc"] / 3) for r in rows]
    tab = table(rows + other)
    assert list(tab) == ["batchnorm", "dropout"]
    assert list(tab["batchnorm"]) == ["00", "02", "04", "AVG"]
    for model, group in (("batchnorm", rows), ("dropout", other)):
        for r in group:
            assert tab[model][r["id"]] == (r["auc"], r["pauc"])
        assert tab[model]["AVG"][0] == pytest.approx(np.mean([r["auc"] for r in group]), abs=1e-12)
        assert tab[model]["AVG"][1] == pytest.approx(np.mean([r["pauc"] for r in group]), abs=1e-12)

    text = format_table(tab)
    lines = text.splitlines()
    assert lines[0].split() == ["model", "00", "02", "04", "AVG"]
    for model in tab:
        line = next(ln for ln in lines if ln.startswith(model))
        assert line.split()[1:] == [f"{a:.3f}/{p:.3f}" for a, p in tab[model].values()]


def test_reference_table_reproduces_report_averages():
    tab = reference_table()
    published_avg = {"baseline": (0.877, 0.695), "batchnorm": (0.894, 0.728),
                     "dropout": (0.891, 0.720), "sequential": (0.893, 0.723)}
    for model, (auc, pauc) in published_avg.items():
        got = tab[f"report {model}"]["AVG"]
        assert abs(got[0] - auc) <= 0.0005 + 1e-9 and abs(got[1] - pauc) <= 0.0005 + 1e-9
        for mid, cell in REPORT[model].items():
            assert tab[f"report {model}"][mid] == cell
    assert "DCASE 2020 baseline" in tab
    text = format_table(tab)
    assert "0.877/0.695" in next(ln for ln in text.splitlines() if ln.startswith("report baseline"))


def test_average_rank_orders_models_and_shares_ties():
    tab = metrics.table([
        {"model": "a", "id": "00", "auc": 0.9, "pauc": 0.8}, {"model": "a", "id": "02", "auc": 0.7, "pauc": 0.6},
        {"model": "b", "id": "00", "auc": 0.8, "pauc": 0.8}, {"model": "b", "id": "02", "auc": 0.6, "pauc": 0.5},
        {"model": "c", "id": "00", "auc": 0.5, "pauc": 0.5}, {"model": "c", "id": "02", "auc": 0.9, "pauc": 0.9},
    ])
    ranks = metrics.average_rank(tab)
    # columns: 00 AUC a1 b2 c3 | 00 pAUC a,b tie 1.5, c3 | 02 AUC a2 b3 c1 | 02 pAUC a2 b3 c1
    assert ranks == pytest.approx({"a": (1 + 1.5 + 2 + 2) / 4, "b": (2 + 1.5 + 3 + 3) / 4, "c": (3 + 3 + 1 + 1) / 4})
    assert sum(ranks.values()) == pytest.approx(1 + 2 + 3)
    tab["d"] = {"00": (0.9, 0.9), "AVG": (0.9, 0.9)}
    with pytest.raises(ValueError, match="same IDs to be ranked: d differ from a \\(00, 02\\)"):
        metrics.average_rank(tab)


def test_baseline_reference_over_all_four_ids_gives_the_readme_average():
    """The DCASE 2020 baseline README averages slider over 00/02/04/06: .850/.669; the report's IDs give more."""
    four = reference_table(("00", "02", "04", "06"))["DCASE 2020 baseline"]["AVG"]
    three = reference_table()["DCASE 2020 baseline"]["AVG"]
    assert (round(four[0], 3), round(four[1], 3)) == (0.850, 0.669)
    assert three[0] > four[0] and "06" not in reference_table()["DCASE 2020 baseline"]


def test_seed_spread_is_mean_and_sd_over_runs_and_renders() -> None:
    rng = np.random.default_rng(0)
    runs = []
    for _ in range(4):
        rows = [{"model": m, "id": i, "auc": rng.uniform(0.6, 0.9), "pauc": rng.uniform(0.5, 0.7)}
                for m in ("baseline", "sequential") for i in ("00", "02")]
        runs.append(metrics.table(rows))
    spread = metrics.seed_spread(runs)
    for m in ("baseline", "sequential"):
        for c in ("00", "02", "AVG"):
            for k in (0, 1):
                values = [t[m][c][k] for t in runs]
                assert spread[m][c][k] == pytest.approx((np.mean(values), np.std(values, ddof=1)))
    text = repr(Table(spread, "five seeds"))
    assert " ± " in text and text.startswith("five seeds")
    page = Table(spread)._repr_html_()
    best = max(("baseline", "sequential"), key=lambda m: spread[m]["AVG"][0][0])
    assert f"<b>{spread[best]['AVG'][0][0]:.3f}<br><small>±{spread[best]['AVG'][0][1]:.3f}</small></b>" in page
    with pytest.raises(ValueError, match="at least 2 runs"):
        metrics.seed_spread(runs[:1])


def test_paired_difference_matches_a_paired_t_test() -> None:
    from scipy.stats import ttest_rel

    a, b = np.array([0.91, 0.92, 0.90, 0.93, 0.92]), np.array([0.90, 0.90, 0.89, 0.91, 0.92])
    mean, low, high = metrics.paired_difference(a, b)
    assert mean == pytest.approx(np.mean(a - b)) and low < mean < high
    ci = ttest_rel(a, b).confidence_interval(0.95)
    assert (low, high) == pytest.approx((ci.low, ci.high))
    assert metrics.paired_difference(a, a + 0.01)[2] < 0  # a constant shift is resolved
    with pytest.raises(ValueError, match="2 paired runs"):
        metrics.paired_difference([0.9], [0.8])


def test_one_runs_interval_holds_a_further_run_as_often_as_its_level_says() -> None:
    """The mean's interval is for the mean over the seeds; one more run's difference falls outside it far
    more often than 5%, and inside the prediction interval (one_run) 95% of the time."""
    rng = np.random.default_rng(0)
    held = {False: 0, True: 0}
    for _ in range(4000):
        a, b = rng.normal(0.90, 0.02, 6), rng.normal(0.89, 0.02, 6)  # five runs, and a sixth to predict
        for one_run in held:
            _, low, high = metrics.paired_difference(a[:5], b[:5], one_run=one_run)
            held[one_run] += low <= a[5] - b[5] <= high
    assert held[True] / 4000 == pytest.approx(0.95, abs=0.015)
    assert held[False] / 4000 < 0.75
    mean, low, high = metrics.paired_difference([0.91, 0.92, 0.90], [0.90, 0.90, 0.89], one_run=True)
    _, mean_low, mean_high = metrics.paired_difference([0.91, 0.92, 0.90], [0.90, 0.90, 0.89])
    assert (high - low) / (mean_high - mean_low) == pytest.approx(np.sqrt(4))


def _two_detectors(rng, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and two correlated detectors' scores of fresh test clips; ``a`` separates a bit better."""
    y = (rng.random(ids.size) < 0.4).astype(int)
    for mid in set(ids.tolist()):  # both classes in every ID
        y[np.flatnonzero(ids == mid)[:2]] = [0, 1]
    shared = rng.standard_normal(ids.size)
    a = shared + 0.5 * rng.standard_normal(ids.size) + 1.2 * y
    b = shared + 0.5 * rng.standard_normal(ids.size) + 1.0 * y
    return y, a, b


def test_paired_bootstrap_interval_is_as_wide_as_test_sets_vary():
    """The interval from one test set matches the spread of the difference over fresh test sets."""
    rng = np.random.default_rng(0)
    ids = np.repeat(["00", "02"], [150, 100])
    fresh = []
    for _ in range(300):
        y, a, b = _two_detectors(rng, ids)
        fresh.append(np.mean([auc_by_hand(y[ids == m], a[ids == m]) - auc_by_hand(y[ids == m], b[ids == m])
                              for m in ("00", "02")]))  # scikit-learn's AUC (checked above), faster
    y, a, b = _two_detectors(rng, ids)
    diff, low, high = metrics.paired_bootstrap(y, ids, a, b, n=2000)
    by_id = [auc_by_hand(y[ids == m], a[ids == m]) - auc_by_hand(y[ids == m], b[ids == m]) for m in ("00", "02")]
    assert diff == pytest.approx(np.mean(by_id)) and low < diff < high
    assert high - low == pytest.approx(2 * 1.96 * np.std(fresh), rel=0.3)
    assert metrics.paired_bootstrap(y, ids, a, b, n=2000) == (diff, low, high)  # seeded
    assert metrics.paired_bootstrap(y, ids, a, a) == (0.0, 0.0, 0.0)


def test_paired_bootstrap_counts_ties_as_halves_and_resolves_a_clear_gap():
    y, s = _random_case(0, n=300, ties=True)
    ids = np.array(["00"] * 300)
    coin = np.zeros(300)  # every pair tied: AUC 0.5 on any resample
    diff, low, high = metrics.paired_bootstrap(y, ids, s, coin, n=500)
    assert diff == pytest.approx(auc_by_hand(y, s) - 0.5)
    assert 0 < low < diff < high  # 0.8 standard deviations of separation beat a coin on 300 clips


@pytest.mark.parametrize(("change", "match"), [
    (lambda y, ids, a: (y, ids, a[:-1]), r"a \(39,\), b \(40,\) must be 1-d of equal length"),
    (lambda y, ids, a: (np.where(ids == "02", 0, y), ids, a), "ID 02: .*both normal"),
])
def test_paired_bootstrap_bad_inputs(change, match):
    ids = np.repeat(["00", "02"], 20)
    y, a, b = _two_detectors(np.random.default_rng(0), ids)
    y, ids, a = change(y, ids, a)
    with pytest.raises(ValueError, match=match):
        metrics.paired_bootstrap(y, ids, a, b)


@pytest.mark.parametrize(("n", "level"), [(1, 0.95), (100, 1.0), (100, 0.0)])
def test_paired_bootstrap_needs_resamples_and_a_level_inside_0_1(n, level):
    ids = np.repeat(["00", "02"], 20)
    y, a, b = _two_detectors(np.random.default_rng(0), ids)
    with pytest.raises(ValueError, match=f"got n={n}, level={level}"):
        metrics.paired_bootstrap(y, ids, a, b, n=n, level=level)


def test_auc_by_group_scores_each_fault_against_its_ids_normal_clips():
    rng = np.random.default_rng(3)
    ids = np.repeat(["00", "02"], 60)
    y = np.tile(np.r_[np.zeros(30, int), np.ones(30, int)], 2)
    groups = np.where(y == 1, np.tile(["loud", "quiet"], 60), None)
    groups[:60][(y[:60] == 1)] = "loud"  # ID 00 has no quiet fault
    s = rng.standard_normal(120) + np.where(groups == "loud", 3.0, 0.0) + 10.0 * (ids == "02")
    got = metrics.auc_by_group(y, ids, s, groups)
    assert list(got) == ["loud", "quiet"]
    expect = {g: [roc_auc_score(y[sel], s[sel]) for mid in ("00", "02")
                  if (sel := (ids == mid) & ((y == 0) | (groups == g))).sum() > 30]
              for g in ("loud", "quiet")}
    assert got["loud"] == (pytest.approx(np.mean(expect["loud"])), 45)
    assert got["quiet"] == (pytest.approx(expect["quiet"][0]), 15) and len(expect["quiet"]) == 1
    assert got["loud"][0] > 0.9 and abs(got["quiet"][0] - 0.5) < 0.25
    with pytest.raises(ValueError, match=r"groups \(119,\) must be 1-d of equal length"):
        metrics.auc_by_group(y, ids, s, groups[:-1])
    all_faulty = np.r_[y[:60], np.ones(60, int)]  # ID 02 without a normal clip
    with pytest.raises(ValueError, match="ID 02, loud: .*both normal"):
        metrics.auc_by_group(all_faulty, ids, s, np.r_[groups[:60], ["loud"] * 60])


@pytest.mark.parametrize(("shape", "scale"), [(3.0, 2.0), (400.0, 1e-3), (0.5, 1e-3)])
def test_decision_threshold_recovers_the_quantile_of_gamma_scores(shape, scale):
    """Reconstruction errors bunch far from zero (large shape); -log p(own ID) piles up near 0 (small)."""
    from scipy.stats import gamma

    x = gamma.rvs(shape, scale=scale, size=4000, random_state=0)
    for q in (0.9, 0.95):
        assert metrics.decision_threshold(x, q) == pytest.approx(gamma.ppf(q, shape, scale=scale), rel=0.05)
    # a new sample from the same distribution exceeds the 0.9 threshold about 10% of the time
    fresh = gamma.rvs(shape, scale=scale, size=4000, random_state=1)
    assert np.mean(fresh > metrics.decision_threshold(x)) == pytest.approx(0.1, abs=0.02)
    assert np.isfinite(metrics.decision_threshold(np.r_[0.0, x]))  # a score of exactly 0 is fine
    assert metrics.decision_threshold(np.zeros(5)) == 0.0  # no spread: anything above the training scores
    with pytest.raises(ValueError, match="differ"):
        metrics.fit_gamma(np.zeros(5))


def test_a_threshold_fitted_to_few_scores_leans_low():
    """Fitted to a handful of scores, the gamma's quantile falls below the true one more often than
    not and flags more than the nominal share; fitted to hundreds, it is about right."""
    below, flagged = metrics.small_fit_misses(3, 0.9, draws=1000)
    assert below > 0.6 and flagged > 0.15
    below, flagged = metrics.small_fit_misses(500, 0.9, draws=300)
    assert below == pytest.approx(0.5, abs=0.07) and flagged == pytest.approx(0.1, abs=0.005)
    assert metrics.small_fit_misses(6, 0.95, draws=500)[1] > 0.05  # other quantiles lean the same way


@pytest.mark.parametrize(("scores", "quantile", "match"), [
    ([1.0, 2.0], 0.9, "at least 3"),
    ([1.0, 2.0, np.nan, 3.0], 0.9, "finite scores, got 1 NaN"),
    ([1.0, -2.0, 3.0], 0.9, "non-negative"),
    ([1.0, 2.0, 3.0], 1.0, "between 0 and 1"),
])
def test_decision_threshold_bad_inputs(scores, quantile, match):
    with pytest.raises(ValueError, match=match):
        metrics.decision_threshold(scores, quantile)


def test_resolved_orders_are_the_pairs_a_constant_gap_separates():
    rng = np.random.default_rng(0)
    shared = rng.normal(0.9, 0.02, size=5)  # a seed's effect on every network alike
    runs = {"steady": shared + 0.03 + rng.normal(0, 0.002, 5), "base": shared,
            "noisy": shared + rng.normal(0, 0.05, 5)}
    order = metrics.resolved_orders(runs)
    # by hand: the pairs, better first by mean, whose paired t interval (scipy's) lies above 0
    from scipy.stats import ttest_rel

    by_mean = sorted(runs, key=lambda m: -np.mean(runs[m]))
    want = [(a, b) for i, a in enumerate(by_mean) for b in by_mean[i + 1:]
            if ttest_rel(runs[a], runs[b]).confidence_interval(0.95).low > 0]
    assert order == want and ("steady", "base") in order
    assert metrics.resolved_orders({"a": shared, "b": shared + rng.normal(0, 0.05, 5)}) == []


def test_thresholds_are_per_id_and_decisions_compare_with_them():
    rng = np.random.default_rng(0)
    ids = np.repeat(["00", "02"], 300)
    normal = rng.gamma(4.0, np.repeat([1.0, 10.0], 300))  # ID 02's scores are 10 times larger
    limits = metrics.thresholds(ids, normal, quantile=0.9)
    assert list(limits) == ["00", "02"]
    # each ID's own threshold: near the 0.9 quantile of the gamma its scores were drawn from
    assert limits["00"] == pytest.approx(gamma.ppf(0.9, 4.0), rel=0.1)
    assert limits["02"] == pytest.approx(gamma.ppf(0.9, 4.0, scale=10.0), rel=0.1)
    # 30 is far above ID 00's threshold (~6.7) and far below ID 02's (~67): flagged for 00 only
    test_ids, test_scores = np.array(["00", "02", "00", "02"]), np.array([30.0, 30.0, 1.0, 100.0])
    assert metrics.decide(test_ids, test_scores, limits).tolist() == [1, 0, 0, 1]
    with pytest.raises(ValueError, match="ID 04: a gamma fit needs"):
        metrics.thresholds(np.array(["00"] * 5 + ["04"] * 2), np.arange(7.0))
    with pytest.raises(ValueError, match="no threshold for ID 04"):
        metrics.decide(np.array(["00", "04"]), np.array([1.0, 2.0]), limits)
    with pytest.raises(ValueError, match=r"differ in length \(2 and 1\)"):
        metrics.decide(np.array(["00", "02"]), np.array([1.0]), limits)
    with pytest.raises(ValueError, match="1 of 2 scores are NaN"):  # not a quiet "normal"
        metrics.decide(np.array(["00", "02"]), np.array([np.nan, 2.0]), limits)


def test_decision_rows_match_sklearn_per_id():
    from sklearn.metrics import precision_recall_fscore_support

    _, ids, y, s = _rows()
    decisions = (s > 0.8).astype(int)
    rows = metrics.decision_rows("pca", ids, y, decisions)
    assert [r["id"] for r in rows] == ["00", "02", "04"]
    for r in rows:
        sel = ids == r["id"]
        p, rec, f1, _ = precision_recall_fscore_support(y[sel], decisions[sel], average="binary", zero_division=0)
        assert (r["precision"], r["recall"], r["f1"]) == pytest.approx((p, rec, f1))
        assert r["false_alarms"] == pytest.approx(np.mean(decisions[sel][y[sel] == 0]))
    nothing = metrics.decision_rows("pca", ids, y, np.zeros_like(y))
    assert all(r["f1"] == 0 and r["false_alarms"] == 0 for r in nothing)


def test_decision_means_average_each_models_rows_over_its_ids():
    _, ids, y, s = _rows()
    rows = (metrics.decision_rows("pca", ids, y, (s > 0.8).astype(int))
            + metrics.decision_rows("idnn", ids, y, (s > 0.5).astype(int)))
    means = metrics.decision_means(rows)
    assert list(means) == ["pca", "idnn"]
    for name, got in means.items():
        mine = [r for r in rows if r["model"] == name]
        assert len(mine) == 3
        assert got == {k: pytest.approx(sum(r[k] for r in mine) / 3)
                       for k in ("precision", "recall", "f1", "false_alarms")}


def test_the_real_calibration_reference_is_the_readmes_table():
    """The chapter's reference and the README's table of the same measurement say the same."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    names = {"PCA": "pca", "sequential": "sequential", "baseline VAE": "baseline"}
    rows = {}
    train, cal = reference.REAL_CALIBRATION_TRAIN, reference.REAL_CALIBRATION_CAL
    assert f"trained on the real clips 0-{train - 1}:" in " ".join(readme.split())
    for line in readme.split(f"| calibration clips {train}-{train + cal - 1} |")[1].splitlines()[2:]:
        if not line.startswith("|"):
            break
        name, *cells = [c.strip() for c in line.strip("|").split("|")]
        rows[names[name]] = tuple(None if c.startswith("-") else int(c) for c in cells)
    assert rows == reference.REAL_CALIBRATION_ALARMS
    nominal = (1 - reference.REAL_CALIBRATION_QUANTILE) * reference.REAL_CALIBRATION_CLIPS
    first, last = train + cal, train + cal + reference.REAL_CALIBRATION_CLIPS - 1
    assert (f"among the {reference.REAL_CALIBRATION_CLIPS} unseen clips {first}-{last} (nominal {nominal:g})"
            in " ".join(readme.split()))


def test_the_real_curve_reference_is_the_readmes_table():
    """The chapter's real-audio learning curve and the README's table of it say the same."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    names = {"PCA": "pca", "sequential": "sequential", "baseline VAE": "baseline"}
    sizes = (5, 10, 20, 40, 60)
    rows = {}
    for line in readme.split("| detector | 5 | 10 | 20 | 40 | 60 |")[1].splitlines()[2:5]:  # below the |---|
        name, *cells = [c.strip() for c in line.strip("|").split("|")]
        rows[names[name]] = {n: tuple(int(k) for k in cell.split(", ")) for n, cell in zip(sizes, cells)}
    assert rows == reference.REAL_CURVE_ALARMS


def test_normal_above_ranks_each_anomaly_among_its_ids_normal_clips():
    y, ids = np.array([0, 0, 0, 0, 1, 1, 0, 0, 1]), np.array(["00"] * 6 + ["02"] * 3)
    s = np.array([1.0, 2.0, 3.0, 4.0, 3.0, 9.0, 50.0, 60.0, 0.5])
    got = metrics.normal_above(y, ids, s)
    assert np.isnan(got[y == 0]).all()
    assert got[[4, 5, 8]].tolist() == [0.5, 0.0, 1.0]  # a tie counts as above: the clip is not ahead
    # AUC is one minus the mean share, where no scores tie
    rng = np.random.default_rng(1)
    y, s = (rng.random(80) < 0.4).astype(int), rng.standard_normal(80)
    ids = np.array(["00"] * 80)
    assert 1 - np.nanmean(metrics.normal_above(y, ids, s)) == pytest.approx(roc_auc_score(y, s))
    with pytest.raises(ValueError, match="ID 02: no normal clips"):
        metrics.normal_above([0, 1], ["00", "02"], [0.1, 0.2])


def test_alarms_are_raised_once_per_run_of_flagged_clips_of_an_id():
    ids = np.array(["00", "02", "00", "00", "02", "00", "00", "00", "00"])
    flags = np.array([1, 1, 1, 0, 1, 1, 1, 1, 1])
    # ID 00 in order: 1 1 0 1 1 1 1 -> after 2: alarms at its 2nd and 5th clips (runs of 2 and 4)
    assert metrics.alarms(ids, flags, 2).tolist() == [0, 0, 1, 0, 1, 0, 1, 0, 0]
    # after 1: the first clip of every run; ID 02's two flagged clips are one run
    assert metrics.alarms(ids, flags, 1).tolist() == [1, 1, 0, 0, 0, 1, 0, 0, 0]
    assert metrics.alarms(ids, flags, 5).sum() == 0  # ID 00's longest run is 4
    with pytest.raises(ValueError, match="at least 1"):
        metrics.alarms(ids, flags, 0)
    with pytest.raises(ValueError, match=r"ids \(9,\), decisions \(8,\)"):
        metrics.alarms(ids, flags[1:], 2)


def test_runs_carried_over_raise_the_alarms_of_the_clips_scored_together():
    rng = np.random.default_rng(0)
    ids = rng.choice(["00", "02"], 60)
    flags = (rng.random(60) < 0.6).astype(int)
    for after in (1, 2, 3):
        whole = metrics.alarms(ids, flags, after)
        for cut in (1, 17, 30, 59):  # the same clips scored in two batches, the runs carried over
            runs = metrics.open_runs(ids[:cut], flags[:cut])
            parts = np.r_[metrics.alarms(ids[:cut], flags[:cut], after),
                          metrics.alarms(ids[cut:], flags[cut:], after, runs)]
            assert parts.tolist() == whole.tolist()
    # by hand: ID 00 ends 0 1 1, ID 02 ends 1; an ID without clips keeps its run
    assert metrics.open_runs(["00", "02", "00", "00"], [0, 1, 1, 1], {"02": 4, "04": 2}) == {
        "00": 2, "02": 5, "04": 2}
    assert metrics.alarms(["00", "00"], [1, 1], 3, {"00": 1}).tolist() == [0, 1]
    assert metrics.alarms(["00"], [1], 3, {"00": 3}).tolist() == [0]  # its run raised its alarm before
    with pytest.raises(ValueError, match="counts of clips"):
        metrics.open_runs(["00"], [1], {"00": -1})


@pytest.mark.parametrize("after", [1, 2, 3])
def test_alarm_rates_match_alarms_on_simulated_independent_clips(after):
    rng = np.random.default_rng(after)
    p, r = 0.2, 0.6
    normal = (rng.random(400_000) < p).astype(int)
    per_clip, delay = metrics.alarm_rates(p, r, after)
    assert metrics.alarms(np.zeros(normal.size, str), normal, after).mean() == pytest.approx(per_clip, rel=0.05)
    # a fault sets in: clips until the first alarm, over many streams
    waits = []
    for _ in range(3000):
        faulty = (rng.random(200) < r).astype(int)
        waits.append(np.flatnonzero(metrics.alarms(np.zeros(200, str), faulty, after))[0] + 1)
    assert np.mean(waits) == pytest.approx(delay, rel=0.05)


def test_alarm_rates_edges():
    assert metrics.alarm_rates(0.1, 1.0, 3) == (pytest.approx(0.9e-3), 3.0)
    assert metrics.alarm_rates(0.0, 0.0, 2) == (0.0, float("inf"))
    for bad in [(1.5, 0.5, 1), (0.1, -0.1, 1), (0.1, 0.5, 0)]:
        with pytest.raises(ValueError):
            metrics.alarm_rates(*bad)


def test_fit_gamma_by_hand_uses_the_population_variance():
    shape, loc, scale = metrics.fit_gamma([1.0, 2.0, 3.0, 4.0])  # mean 2.5, variance 1.25: shape 5, scale 0.5
    assert (shape, loc, scale) == pytest.approx((5.0, 0.0, 0.5))


def test_a_score_equal_to_its_threshold_is_normal():
    """A classifier sure of every training clip scores them alike: its threshold is that score, and
    flagging clips at it would flag every normal clip."""
    ids = np.array(["00"] * 5)
    assert metrics.decide(ids, np.full(5, 0.3), metrics.thresholds(ids, np.full(5, 0.3))).tolist() == [0] * 5
    assert metrics.decide(np.array(["00"]), np.array([2.0]), {"00": 2.0}).tolist() == [0]


def test_rank_auc_matches_sklearn_with_unequal_class_sizes():
    rng = np.random.default_rng(0)
    normal, anomalous = rng.standard_normal(7), rng.standard_normal(3) + 0.5
    want = roc_auc_score(np.r_[np.zeros(7), np.ones(3)], np.r_[normal, anomalous])
    assert metrics._rank_auc(normal[None], anomalous[None])[0] == pytest.approx(want)
