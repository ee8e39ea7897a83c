"""AUC and pAUC as the DCASE 2020 evaluator computes them, per-ID result tables, decisions.

pAUC is scikit-learn's ``roc_auc_score(y_true, scores, max_fpr=0.1)``: the area under the ROC
curve for false-positive rates up to ``max_fpr``, McClish-standardised so that a random
detector scores 0.5 and a perfect one 1.0 (not the raw area, which would be at most 0.1).
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import numpy as np
from sklearn.metrics import roc_auc_score

from asd.config import DECISION_QUANTILE, MIN_GAMMA_SCORES


@contextmanager
def _named(where: str) -> Iterator[None]:
    """A ValueError raised inside, prefixed with ``where`` (``"ID 02"``): which ID could not be evaluated."""
    try:
        yield
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None


def _columns(**arrays: np.ndarray) -> None:
    """Raise unless the named arrays are 1-d and of one length, naming each array's shape."""
    shapes = [a.shape for a in arrays.values()]
    if len(set(shapes)) != 1 or len(shapes[0]) != 1:
        named = ", ".join(f"{name} {a.shape}" for name, a in arrays.items())
        raise ValueError(f"{named} must be 1-d of equal length")


def auc_pauc(y_true, scores, max_fpr: float = 0.1) -> tuple[float, float]:
    """``(AUC, pAUC)`` of anomaly ``scores`` (higher = more anomalous) against labels (1 = anomaly)."""
    y_true, scores = np.asarray(y_true), np.asarray(scores, dtype=float)
    _columns(y_true=y_true, scores=scores)
    labels = set(np.unique(y_true).tolist())
    if not labels <= {0, 1}:
        raise ValueError(f"y_true must hold 0 (normal) and 1 (anomalous) only, got {sorted(labels - {0, 1})}")
    if labels != {0, 1}:
        raise ValueError("y_true needs both normal (0) and anomalous (1) clips")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or infinity")
    return float(roc_auc_score(y_true, scores)), float(roc_auc_score(y_true, scores, max_fpr=max_fpr))


def per_id(model: str, machine: str, ids: np.ndarray, y_true: np.ndarray, scores: np.ndarray,
           max_fpr: float = 0.1) -> list[dict]:
    """One result row ``{model, machine, id, auc, pauc}`` per machine ID."""
    rows = []
    for mid in sorted(set(ids.tolist())):
        sel = ids == mid
        with _named(f"{machine} ID {mid}"):
            auc, pauc = auc_pauc(y_true[sel], scores[sel], max_fpr)
        rows.append({"model": model, "machine": machine, "id": mid, "auc": auc, "pauc": pauc})
    return rows


def auc_by_group(y_true, ids, scores, groups) -> dict[str, tuple[float, int]]:
    """AUC of each group of anomalous clips (a fault type, a severity band) against the normal clips
    of the same machine ID, averaged over the IDs that have clips of the group, and the group's
    number of clips: ``{group: (AUC, clips)}``, groups in sorted order.

    ``groups`` names each clip's group; normal clips' entries are ignored.
    """
    y_true, ids, groups = np.asarray(y_true), np.asarray(ids), np.asarray(groups, dtype=object)
    scores = np.asarray(scores, dtype=float)
    _columns(y_true=y_true, ids=ids, scores=scores, groups=groups)
    out = {}
    for group in sorted(set(groups[y_true == 1].tolist())):
        mine = (y_true == 0) | (groups == group)
        aucs = []
        for mid in sorted(set(ids[mine & (y_true == 1)].tolist())):
            sel = mine & (ids == mid)
            with _named(f"ID {mid}, {group}"):
                aucs.append(auc_pauc(y_true[sel], scores[sel])[0])
        out[group] = (float(np.mean(aucs)), int(np.sum(groups[y_true == 1] == group)))
    return out


def normal_above(y_true, ids, scores) -> np.ndarray:
    """For each anomalous clip, the share of its ID's normal clips that score at least as high
    (0: above them all, as a perfect detector puts it; 1: below them all); NaN for normal clips."""
    y_true, ids, scores = np.asarray(y_true), np.asarray(ids), np.asarray(scores, dtype=float)
    _columns(y_true=y_true, ids=ids, scores=scores)
    out = np.full(y_true.shape, np.nan)
    for i in np.flatnonzero(y_true == 1):
        normal = scores[(ids == ids[i]) & (y_true == 0)]
        if not normal.size:
            raise ValueError(f"ID {ids[i]}: no normal clips to rank anomalous clip {i} against")
        out[i] = np.mean(normal >= scores[i])
    return out


def fit_gamma(normal_scores) -> tuple[float, float, float]:
    """``(shape, location, scale)`` of the gamma distribution with location 0 and the mean and
    variance of the non-negative ``normal_scores`` (method of moments).

    The DCASE baselines fit all three parameters by maximum likelihood (``scipy.stats.gamma.fit``);
    with scores bunched far from zero, as reconstruction errors are, that fit can put the quantile
    far beyond every score, and a score of exactly 0 makes it fail. Moments never do.
    """
    x = _gamma_scores(normal_scores)
    if np.ptp(x) == 0:
        raise ValueError(f"a gamma fit needs scores that differ, got {x.size} equal to {x[0]:g}")
    mean, var = float(x.mean()), float(x.var())
    return mean * mean / var, 0.0, var / mean


def _gamma_scores(normal_scores) -> np.ndarray:
    """``normal_scores`` as a 1-d float array, a ValueError unless a gamma can describe them: at least
    :data:`MIN_GAMMA_SCORES`, finite, non-negative."""
    x = np.asarray(normal_scores, dtype=float)
    if x.ndim != 1 or x.size < MIN_GAMMA_SCORES:
        raise ValueError(f"a gamma fit needs at least {MIN_GAMMA_SCORES} scores, got {x.size}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"a gamma fit needs finite scores, got {int(np.sum(~np.isfinite(x)))} NaN or infinite")
    if np.any(x < 0):
        raise ValueError("a gamma distribution needs non-negative scores")
    return x


def decision_threshold(normal_scores, quantile: float = DECISION_QUANTILE) -> float:
    """The ``quantile`` of the gamma distribution :func:`fit_gamma` fits to ``normal_scores``; where
    the scores do not vary (a classifier sure of every training clip), their common value."""
    from scipy.stats import gamma

    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be between 0 and 1, got {quantile}")
    x = _gamma_scores(normal_scores)
    return float(x[0]) if np.ptp(x) == 0 else float(gamma.ppf(quantile, *fit_gamma(x)))


def small_fit_misses(n_scores: int, quantile: float = DECISION_QUANTILE, draws: int = 2000,
                     seed: int = 0) -> tuple[float, float]:
    """How :func:`decision_threshold` fitted to only ``n_scores`` normal scores misses, simulated on
    scores drawn from a gamma distribution itself (bunched far from zero, as reconstruction errors):
    the share of ``draws`` fits whose threshold falls below the distribution's true ``quantile``, and
    the mean share of normal scores those thresholds flag (nominal ``1 - quantile``)."""
    from scipy.stats import gamma

    truth = gamma(100.0)  # the moments fit is scale-free: only the shape matters, and little
    rng = np.random.default_rng(seed)
    limits = np.array([decision_threshold(truth.rvs(n_scores, random_state=rng), quantile) for _ in range(draws)])
    return float(np.mean(limits < truth.ppf(quantile))), float(np.mean(truth.sf(limits)))


def thresholds(ids: np.ndarray, normal_scores: np.ndarray, quantile: float = DECISION_QUANTILE) -> dict[str, float]:
    """:func:`decision_threshold` per machine ID, from the scores of that ID's normal clips."""
    ids, normal_scores = np.asarray(ids), np.asarray(normal_scores)
    out = {}
    for mid in sorted(set(ids.tolist())):
        with _named(f"ID {mid}"):
            out[mid] = decision_threshold(normal_scores[ids == mid], quantile)
    return out


def decide(ids: np.ndarray, scores: np.ndarray, limits: dict[str, float]) -> np.ndarray:
    """1 (anomalous) where a clip's score exceeds its ID's threshold in ``limits``, else 0; a score
    that is NaN is a ValueError, not a quiet 0."""
    ids, scores = np.asarray(ids).tolist(), np.asarray(scores, dtype=float)
    if len(ids) != len(scores):
        raise ValueError(f"ids and scores differ in length ({len(ids)} and {len(scores)})")
    if (bad := int(np.isnan(scores).sum())):
        raise ValueError(f"{bad} of {len(scores)} scores are NaN: no decision can be made on them")
    if unknown := sorted(set(ids) - limits.keys()):
        raise ValueError(f"no threshold for ID {', '.join(map(str, unknown))} (thresholds for: {', '.join(limits)})")
    return np.array([int(s > limits[mid]) for mid, s in zip(ids, scores)], dtype=np.int64)


def alarms(ids: np.ndarray, decisions: np.ndarray, after: int, runs: Mapping[str, int] | None = None) -> np.ndarray:
    """1 at each clip that completes a run of ``after`` flagged clips of its ID, else 0: one alarm
    per run of flagged clips at least ``after`` long, however long it lasts. The clips are taken
    in the order given (time order: :func:`asd.data.time_order`); ``after=1`` raises one alarm at
    the first clip of every run. ``runs``: each ID's flagged clips in a row just before these
    (:func:`open_runs` of the clips scored before), so that a run may span two batches of clips."""
    if after < 1:
        raise ValueError(f"after must be at least 1, got {after}")
    return (_run_lengths(ids, decisions, runs)[0] == after).astype(np.int64)


def open_runs(ids: np.ndarray, decisions: np.ndarray, runs: Mapping[str, int] | None = None) -> dict[str, int]:
    """Each ID's flagged clips in a row at the end of ``decisions`` (0 where its last clip was not
    flagged), counted on from ``runs`` as in :func:`alarms`: what the next batch of clips starts
    from. An ID of ``runs`` without clips here keeps its run."""
    return _run_lengths(ids, decisions, runs)[1]


def _run_lengths(ids: np.ndarray, decisions: np.ndarray,
                 runs: Mapping[str, int] | None) -> tuple[np.ndarray, dict[str, int]]:
    """At each clip, the flagged clips of its ID in a row up to it; and each ID's run after the last."""
    ids, decisions = np.asarray(ids), np.asarray(decisions)
    _columns(ids=ids, decisions=decisions)
    run = dict(runs or {})
    bad = {mid: n for mid, n in run.items() if isinstance(n, bool) or not isinstance(n, int) or n < 0}
    if bad:
        raise ValueError(f"runs must be counts of clips (0 or more), got {bad}")
    lengths = np.zeros(len(ids), dtype=np.int64)
    for i, (mid, flagged) in enumerate(zip(ids.tolist(), decisions.tolist())):
        run[mid] = lengths[i] = run.get(mid, 0) + 1 if flagged else 0
    return lengths, run


def alarm_rates(false_alarms: float, recall: float, after: int) -> tuple[float, float]:
    """For clips flagged independently, normal ones at the rate ``false_alarms`` and faulty ones at
    ``recall``: the expected :func:`alarms` per normal clip, ``(1 - p) p^after`` once the run is
    under way, and the expected number of faulty clips until the first alarm after a fault sets
    in, ``(1 - r^after) / ((1 - r) r^after)`` (``after`` when ``recall`` is 1; infinite when 0)."""
    p, r = false_alarms, recall
    if not (0 <= p <= 1 and 0 <= r <= 1):
        raise ValueError(f"false_alarms and recall must be rates in [0, 1], got {p} and {r}")
    if after < 1:
        raise ValueError(f"after must be at least 1, got {after}")
    per_clip = (1 - p) * p ** after
    if r == 0:
        return per_clip, float("inf")
    return per_clip, float(after if r == 1 else (1 - r ** after) / ((1 - r) * r ** after))


def decision_rows(model: str, ids: np.ndarray, y_true: np.ndarray, decisions: np.ndarray) -> list[dict]:
    """Per machine ID, how the 0/1 ``decisions`` fare against the labels: ``{model, id, precision,
    recall, f1, false_alarms}``, the last the fraction of normal clips flagged (the false-positive rate)."""
    from sklearn.metrics import precision_recall_fscore_support

    ids, y_true, decisions = np.asarray(ids), np.asarray(y_true), np.asarray(decisions)
    rows = []
    for mid in sorted(set(ids.tolist())):
        t, d = y_true[ids == mid], decisions[ids == mid]
        precision, recall, f1, _ = precision_recall_fscore_support(t, d, average="binary", zero_division=0)
        rows.append({"model": model, "id": mid, "precision": float(precision), "recall": float(recall),
                     "f1": float(f1), "false_alarms": float(d[t == 0].mean()) if np.any(t == 0) else 0.0})
    return rows


def decision_means(rows: list[dict]) -> dict[str, dict[str, float]]:
    """``{model: {"precision" | "recall" | "f1" | "false_alarms": mean over the IDs}}`` from
    :func:`decision_rows`' rows, as :func:`table` averages the AUC rows."""
    keys = ("precision", "recall", "f1", "false_alarms")
    models = dict.fromkeys(r["model"] for r in rows)
    return {m: {k: float(np.mean([r[k] for r in rows if r["model"] == m])) for k in keys} for m in models}


def table(rows: list[dict]) -> dict[str, dict[str, tuple[float, float]]]:
    """``{model: {id: (auc, pauc), ..., "AVG": (mean auc, mean pauc)}}`` from result rows."""
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for r in rows:
        out.setdefault(r["model"], {})[r["id"]] = (r["auc"], r["pauc"])
    for model, cells in out.items():
        values = np.array(list(cells.values()))
        cells["AVG"] = (float(values[:, 0].mean()), float(values[:, 1].mean()))
    return out


def seed_spread(tables: list[dict[str, dict[str, tuple[float, float]]]]) -> dict[str, dict[str, tuple]]:
    """Mean and standard deviation over runs (e.g. seeds) of every cell of :func:`table` outputs:
    ``{model: {id: ((AUC mean, AUC sd), (pAUC mean, pAUC sd))}}``, which :class:`asd.tables.Table` shows."""
    if len(tables) < 2:
        raise ValueError(f"a spread needs at least 2 runs, got {len(tables)}")
    out: dict[str, dict[str, tuple]] = {}
    for model, cells in tables[0].items():
        values = {c: np.array([t[model][c] for t in tables]) for c in cells}  # (runs, 2)
        out[model] = {c: tuple((float(v[:, k].mean()), float(v[:, k].std(ddof=1))) for k in (0, 1))
                      for c, v in values.items()}
    return out


def paired_difference(a, b, level: float = 0.95, one_run: bool = False) -> tuple[float, float, float]:
    """Mean of ``a - b`` over runs paired by seed, with its ``level`` confidence interval (Student's t):
    ``(mean, low, high)``. An interval that excludes 0 resolves the order of the two on average over runs.
    With ``one_run``, the prediction interval of the difference one further run would give instead,
    ``sqrt(runs + 1)`` times wider: whether a single new run keeps the order."""
    from scipy.stats import t

    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if d.ndim != 1 or d.size < 2:
        raise ValueError(f"need at least 2 paired runs, got {d.size}")
    spread = np.sqrt(1 + 1 / d.size) if one_run else np.sqrt(1 / d.size)
    half = float(t.ppf((1 + level) / 2, d.size - 1) * d.std(ddof=1) * spread)
    return float(d.mean()), float(d.mean()) - half, float(d.mean()) + half


def resolved_orders(runs: Mapping[str, Sequence[float]], level: float = 0.95) -> list[tuple[str, str]]:
    """``(better, worse)`` for each pair of ``runs`` (model -> its value per seed, paired by seed)
    whose :func:`paired_difference` interval excludes 0: the orders the seeds resolve; by mean, best first."""
    names = sorted(runs, key=lambda m: -float(np.mean(runs[m])))
    return [(a, b) for i, a in enumerate(names) for b in names[i + 1:]
            if paired_difference(runs[a], runs[b], level)[1] > 0]


def _rank_auc(normal: np.ndarray, anomalous: np.ndarray) -> np.ndarray:
    """AUC of each row: ``normal`` (rows, n) and ``anomalous`` (rows, m) scores, ties counting one
    half (the Mann-Whitney statistic, equal to ``roc_auc_score``)."""
    from scipy.stats import rankdata

    n, m = normal.shape[1], anomalous.shape[1]
    ranks = rankdata(np.concatenate([normal, anomalous], axis=1), axis=1)[:, n:]
    return (ranks.sum(axis=1) - m * (m + 1) / 2) / (n * m)


def paired_bootstrap(y_true, ids, a, b, n: int = 1000, level: float = 0.95,
                     seed: int = 0) -> tuple[float, float, float]:
    """Difference of the average AUC over machine IDs between scores ``a`` and ``b`` of the same
    test clips, with its ``level`` percentile interval over ``n`` bootstrap resamples of the clips:
    ``(difference on these clips, low, high)``, as :func:`paired_difference` returns.

    Each resample draws, within every ID, its normal and its anomalous clips with replacement
    (the same draw for ``a`` and ``b``), so the interval says how far another test set of the same
    size could move the difference; one that excludes 0 resolves the order beyond these clips.
    """
    y_true, ids = np.asarray(y_true), np.asarray(ids)
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    _columns(y_true=y_true, ids=ids, a=a, b=b)
    if n < 2 or not 0 < level < 1:
        raise ValueError(f"need n >= 2 resamples and 0 < level < 1, got n={n}, level={level}")
    rng = np.random.default_rng(seed)
    observed, resampled = 0.0, np.zeros(n)
    groups = sorted(set(ids.tolist()))
    for mid in groups:
        sel = ids == mid
        with _named(f"ID {mid}"):
            observed += auc_pauc(y_true[sel], a[sel])[0] - auc_pauc(y_true[sel], b[sel])[0]
        normal, anomalous = np.flatnonzero(sel & (y_true == 0)), np.flatnonzero(sel & (y_true == 1))
        i = rng.choice(normal, (n, normal.size))
        j = rng.choice(anomalous, (n, anomalous.size))
        resampled += _rank_auc(a[i], a[j]) - _rank_auc(b[i], b[j])
    low, high = np.quantile(resampled / len(groups), [(1 - level) / 2, (1 + level) / 2])
    return observed / len(groups), float(low), float(high)


def average_rank(tab: dict[str, dict[str, tuple[float, float]]]) -> dict[str, float]:
    """Mean rank of each model over every per-ID AUC and pAUC (1 = best; ties share their mean rank)."""
    from scipy.stats import rankdata

    models = list(tab)
    cols = [c for c in next(iter(tab.values())) if c != "AVG"]
    if uneven := [m for m in models if [c for c in tab[m] if c != "AVG"] != cols]:
        raise ValueError(f"models must be scored on the same IDs to be ranked: {', '.join(uneven)} differ "
                         f"from {models[0]} ({', '.join(cols)})")
    ranks = [rankdata([-tab[m][c][k] for m in models]) for c in cols for k in (0, 1)]
    return dict(zip(models, np.mean(ranks, axis=0).tolist()))
