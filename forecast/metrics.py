"""Forecast accuracy metrics as plain functions of arrays.

Every point metric takes ``(y_true, y_pred)`` of one shape (any shape; NaNs in
``y_true`` are ignored) and returns a float. Interval metrics take the bounds, the
direction metrics take class probabilities. Where scikit-learn has the same metric the
tests compare the two.

>>> from forecast import metrics
>>> metrics.mae([1, 2, 3], [1, 2, 4])
0.3333333333333333
"""

from __future__ import annotations

import numpy as np

from forecast.errors import ConfigError, DataError

__all__ = [
    "mae",
    "mse",
    "rmse",
    "mape",
    "smape",
    "mase",
    "directional_accuracy",
    "pinball_loss",
    "coverage",
    "interval_width",
    "accuracy",
    "log_loss",
    "naive_scale",
    "skill",
    "paired_z",
    "coverage_z",
    "coverage_bar",
    "forecast_metrics",
    "POINT_METRICS",
]


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if t.shape != p.shape:
        raise DataError(f"y_true has shape {t.shape} but y_pred has shape {p.shape}; "
                        "pass arrays of the same shape")
    keep = np.isfinite(t)
    if not keep.any():
        raise DataError("y_true holds no finite value to score against")
    if not np.isfinite(p[keep]).all():
        raise DataError("y_pred holds NaN or infinite values where y_true is known")
    return t[keep], p[keep]


def mae(y_true, y_pred) -> float:
    """Mean absolute error."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))


def mse(y_true, y_pred) -> float:
    """Mean squared error."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.square(t - p)))


def rmse(y_true, y_pred) -> float:
    """Root mean squared error."""
    return float(np.sqrt(mse(y_true, y_pred)))


def mape(y_true, y_pred) -> float:
    """Mean absolute percentage error as a fraction (0.05 = 5 %), like scikit-learn's
    ``mean_absolute_percentage_error`` (which divides by ``max(|y|, eps)``)."""
    t, p = _pair(y_true, y_pred)
    eps = np.finfo(np.float64).eps
    return float(np.mean(np.abs(t - p) / np.maximum(np.abs(t), eps)))


def smape(y_true, y_pred) -> float:
    """Symmetric MAPE in [0, 2]: ``mean(2 |y - yhat| / (|y| + |yhat|))``; a pair of
    zeros counts as a perfect forecast."""
    t, p = _pair(y_true, y_pred)
    den = np.abs(t) + np.abs(p)
    num = 2.0 * np.abs(t - p)
    ratio = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    return float(np.mean(ratio))


def mase(y_true, y_pred, y_train, season: int = 1) -> float:
    """Mean absolute scaled error: MAE divided by the in-sample MAE of the seasonal
    naive forecast (lag `season`) on `y_train`, the series before the forecast origin."""
    if not isinstance(season, (int, np.integer)) or season < 1:
        raise ConfigError(f"season must be a positive integer, got {season!r}")
    train = np.asarray(y_train, dtype=np.float64).ravel()
    if np.isfinite(train).sum() <= season:
        raise DataError(f"y_train has {np.isfinite(train).sum()} finite values; MASE with "
                        f"season {season} needs more than {season}")
    scale = naive_scale(train, season)
    if scale == 0 or not np.isfinite(scale):
        raise DataError("the in-sample seasonal naive error of y_train is zero (a constant or "
                        "exactly periodic series); MASE is undefined, use MAE instead")
    return mae(y_true, y_pred) / scale


def naive_scale(y_train, season: int = 1) -> float:
    """In-sample MAE of the seasonal naive forecast (lag `season`) on `y_train`: the
    denominator of MASE. Pairs with a missing value are skipped; NaN when no pair is left
    (MASE then has no scale) and 0 for a constant or exactly periodic series."""
    train = np.asarray(y_train, dtype=np.float64).ravel()
    if train.size <= season:
        return float("nan")
    d = np.abs(train[season:] - train[:-season])
    d = d[np.isfinite(d)]
    return float(d.mean()) if d.size else float("nan")


def skill(score, reference) -> float:
    """Skill against a reference forecast: ``1 - score / reference`` (e.g. MAE against the
    naive forecast's MAE); 0 means as good as the reference, below 0 worse."""
    return float(1.0 - float(score) / float(reference)) if float(reference) != 0 else float("nan")


def paired_z(errors, reference) -> float:
    """How many standard errors the mean of ``reference - errors`` lies above zero over
    paired samples (e.g. each fold's MAE of a model and of the naive forecast): the paired
    t statistic, ``scipy.stats.ttest_rel(reference, errors).statistic``. Positive when
    `errors` are smaller. Pairs with a missing value are left out; NaN with fewer than two
    pairs, infinite (signed) when every pair differs by the same amount."""
    e, r = np.asarray(errors, np.float64), np.asarray(reference, np.float64)
    if e.shape != r.shape:
        raise DataError(f"errors have shape {e.shape} but reference has shape {r.shape}; "
                        "pass paired arrays of the same shape")
    d = (r - e).ravel()
    d = d[np.isfinite(d)]
    if d.size < 2:
        return float("nan")
    m, sd = float(d.mean()), float(d.std(ddof=1))
    if sd == 0.0:
        return float("nan") if m == 0.0 else float(np.copysign(np.inf, m))
    return m / (sd / np.sqrt(d.size))


def coverage_z(hits, counts, level: float) -> float:
    """How many standard errors a backtest's interval coverage lies from its nominal
    `level` (a percentage): `hits` and `counts` are, per unit (a fold of a series), the
    truths inside the interval and the truths scored. The steps of a fold share their
    path, so their misses come together and the fold, not the step, is the sample.

    The coverage is ``sum(hits) / sum(counts)``; its standard error is the ratio
    estimator's over the units (``sd(hits - coverage * counts)`` over the units, scaled),
    rescaled from the observed coverage ``c`` to the nominal ``p`` by
    ``sqrt(p (1 - p) / (c (1 - c)))`` (the spread a calibrated interval would have with
    the same clustering; without it a 95 % interval that covered every truth of a short
    backtest would have no spread at all), and never below the binomial
    ``sqrt(p (1 - p) / sum(counts))`` of independent steps. Positive when the intervals
    cover more than `level` (too wide), negative when less (too narrow). For a perfectly
    calibrated forecaster over 40 folds of 5 to 24 steps, |z| <= 2 holds in 94-95 % of
    backtests at 80 % and 90-93 % at 95 % (`benchmarks/coverage_spread.py`; a fold's 95 %
    coverage is skewed against its ceiling). NaN with fewer than two units."""
    h = np.asarray(hits, np.float64).ravel()
    n = np.asarray(counts, np.float64).ravel()
    if h.shape != n.shape:
        raise DataError(f"hits have shape {h.shape} but counts have shape {n.shape}; pass "
                        "one of each per fold")
    if not 0 < float(level) < 100:
        raise ConfigError(f"level is a percentage in (0, 100) such as 80, got {level!r}")
    keep = np.isfinite(h) & np.isfinite(n) & (n > 0)
    h, n = h[keep], n[keep]
    u, total = h.size, float(n.sum())
    if u < 2:
        return float("nan")
    p = float(level) / 100.0
    c = float(h.sum()) / total
    r = h - c * n
    se = np.sqrt(u / (u - 1) * float((r * r).sum())) / total
    cc = min(max(c, 0.5 / total), 1.0 - 0.5 / total)
    se = max(se * np.sqrt(p * (1 - p) / (cc * (1 - cc))), np.sqrt(p * (1 - p) / total))
    return (c - p) / se


def coverage_bar(folds) -> float:
    """How far `coverage_z` may lie from 0 before a coverage is off its level by more
    than chance: the two-sided 95 % point of Student's t with ``folds - 1`` degrees of
    freedom (2.02 for 40 folds, 2.26 for 10, 4.30 for 3: a standard error estimated from
    a few folds is itself uncertain), never below 2; 2 when `folds` is unknown."""
    try:
        f = float(folds)
    except (TypeError, ValueError):
        return 2.0
    if not np.isfinite(f) or f < 2:
        return 2.0
    from scipy.stats import t as student_t

    return max(2.0, float(student_t.ppf(0.975, f - 1)))


def forecast_metrics(y_true, y_pred, *, y_last=None, intervals=None) -> dict:
    """Every accuracy figure of one set of forecasts, as backtests, reports and batch
    summaries show them: ``mae``, ``rmse``, ``mse``, ``mape``, ``smape``, with `y_last`
    (the value at each forecast origin, broadcast) ``directional_accuracy``, and for each
    ``{level: (lower, upper)}`` of `intervals` ``coverage_<level>`` and ``width_<level>``.
    Rows where `y_true` or `y_pred` is missing are left out; NaN figures when none is
    left."""
    t0 = np.asarray(y_true, dtype=np.float64)
    t = t0.ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    if t.shape != p.shape:
        raise DataError(f"y_true has {t.size} values but y_pred has {p.size}")
    ok = np.isfinite(t) & np.isfinite(p)
    names = ["mae", "rmse", "mse", "mape", "smape"]
    if not ok.any():
        return {n: float("nan") for n in names}
    t, p = t[ok], p[ok]
    out = {n: float(POINT_METRICS[n](t, p)) for n in names}
    if y_last is not None:
        last = np.broadcast_to(np.asarray(y_last, np.float64), t0.shape).ravel()[ok]
        if np.isfinite(last).any():
            out["directional_accuracy"] = directional_accuracy(t, p, last)
    for lv, (lo, hi) in (intervals or {}).items():
        lo = np.asarray(lo, np.float64).ravel()[ok]
        hi = np.asarray(hi, np.float64).ravel()[ok]
        if np.isfinite(lo).all() and np.isfinite(hi).all():
            out[f"coverage_{float(lv):g}"] = coverage(t, lo, hi)
            out[f"width_{float(lv):g}"] = interval_width(lo, hi)
    return out


def directional_accuracy(y_true, y_pred, y_last) -> float:
    """Share of forecasts that move in the same direction as the truth, relative to the
    last observed value `y_last` (broadcast against the others, e.g. ``(n, 1)`` for
    ``(n, horizon)`` forecasts). A zero move counts as its own direction."""
    t, p = np.broadcast_arrays(np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64))
    last = np.broadcast_to(np.asarray(y_last, np.float64), t.shape)
    keep = np.isfinite(t) & np.isfinite(last)
    if not keep.any():
        raise DataError("no finite (y_true, y_last) pair to score")
    return float(np.mean(np.sign(t[keep] - last[keep]) == np.sign(p[keep] - last[keep])))


def pinball_loss(y_true, y_quantiles, quantiles) -> float:
    """Mean pinball (quantile) loss. ``y_quantiles`` has the shape of ``y_true`` plus a
    last axis of ``len(quantiles)``; a single quantile may be given as a float with
    ``y_quantiles`` shaped like ``y_true`` (then it equals scikit-learn's
    ``mean_pinball_loss(y_true, y_pred, alpha=q)``)."""
    q = np.atleast_1d(np.asarray(quantiles, dtype=np.float64))
    if q.ndim != 1 or np.any((q <= 0) | (q >= 1)):
        raise ConfigError(f"quantiles must be values in (0, 1), got {quantiles!r}")
    t = np.asarray(y_true, dtype=np.float64)
    yq = np.asarray(y_quantiles, dtype=np.float64)
    if np.ndim(quantiles) == 0 and yq.shape == t.shape:
        yq = yq[..., None]
    if yq.shape != t.shape + (q.size,):
        raise DataError(f"y_quantiles must have shape {t.shape + (q.size,)}, got {yq.shape}")
    keep = np.isfinite(t)
    diff = t[keep][:, None] - yq[keep]
    return float(np.mean(np.maximum(q * diff, (q - 1) * diff)))


def coverage(y_true, lower, upper) -> float:
    """Share of true values inside ``[lower, upper]``."""
    t = np.asarray(y_true, dtype=np.float64)
    lo, hi = np.asarray(lower, np.float64), np.asarray(upper, np.float64)
    if lo.shape != t.shape or hi.shape != t.shape:
        raise DataError(f"lower {lo.shape} and upper {hi.shape} must have the shape of "
                        f"y_true {t.shape}")
    keep = np.isfinite(t)
    if not keep.any():
        raise DataError("y_true holds no finite value to score against")
    return float(np.mean((t[keep] >= lo[keep]) & (t[keep] <= hi[keep])))


def interval_width(lower, upper) -> float:
    """Mean width ``upper - lower``."""
    lo, hi = np.asarray(lower, np.float64), np.asarray(upper, np.float64)
    if lo.shape != hi.shape:
        raise DataError(f"lower {lo.shape} and upper {hi.shape} must have one shape")
    return float(np.nanmean(hi - lo))


def _classes(y_true, proba) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or y.shape != (p.shape[0],):
        raise DataError(f"proba must be (n, n_classes) and y_true (n,), got {p.shape} and {y.shape}")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= p.shape[1]:
        raise DataError(f"y_true must hold integer classes in [0, {p.shape[1]})")
    return y, p


def accuracy(y_true, proba) -> float:
    """Share of samples whose most probable class is the true class."""
    y, p = _classes(y_true, proba)
    return float(np.mean(np.argmax(p, axis=1) == y))


def log_loss(y_true, proba, eps: float = 1e-15) -> float:
    """Mean negative log-probability of the true class (probabilities clipped to
    ``[eps, 1]`` and renormalised, as scikit-learn does)."""
    y, p = _classes(y_true, proba)
    p = np.clip(p, eps, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    return float(-np.mean(np.log(p[np.arange(len(y)), y])))


#: Point metrics by name, as backtests report them.
POINT_METRICS = {"mae": mae, "mse": mse, "rmse": rmse, "mape": mape, "smape": smape}
