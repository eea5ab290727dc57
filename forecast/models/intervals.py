"""Prediction intervals: split-conformal radii per horizon step, and the quantile levels
that a quantile head needs for given interval levels.

Split conformal (Vovk et al.; Lei et al. 2018): on held-out windows that the model was
not trained on, the absolute errors of each horizon step are the conformity scores; the
radius for level ``a`` is their ``ceil((n + 1) a) / n`` empirical quantile, so that a new
exchangeable window is covered with probability at least ``a``.

Models fitted on data calibrate per series (`calibrate_series`): every series holds out
its own calibration tail (the last windows of its training span, never used to fit), its
scores are divided by a per-series volatility ``sigma`` (the mean absolute one-step
change, `volatility`) and its radii come from its own scores, so neither the row order
of the series nor their scale can change a radius. ``sigma`` is either the series'
training-span value (``"global"``) or, by default, the value over the ``window`` steps
before each forecast origin (``"local"``, floored at LOCAL_FLOOR of the global one), so
intervals widen when a price series turns volatile and narrow when it calms; given
several modes, `calibrate_series` picks the one with the better interval score on the
later half of the calibration windows. On the bundled stock and weather series the local
mode covered better than the global one or that choice (backtests of 40 folds), so it is
the default. A series with too few calibration windows uses the
scores of every series pooled (they are in scaled units, so pooling is fair).

On a clock grid of a day or less (daily, hourly: weather, energy), the local volatility
is also scaled by `seasonal_ratio`: how much more the series moved around the forecast
steps than in the trailing window, at the same time of year in the years before the
origin. A trailing window lags the season, so without it intervals were too narrow
while volatility rose (spring) and too wide while it fell (autumn). Trading-day, weekly
and monthly grids keep the trailing volatility alone.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecast.errors import ConfigError, DataError

__all__ = ["check_levels", "conformal_radii", "quantiles_for_levels", "interval_columns",
           "non_crossing", "volatility", "calibrate_series", "interval_score", "Calibration",
           "MIN_SERIES_WINDOWS", "MAX_SERIES_WINDOWS", "LOCAL_FLOOR", "seasonal_ratio",
           "year_steps", "volatility_period", "local_volatility", "SEASONAL_VOLATILITY"]

MIN_SERIES_WINDOWS = 40  # fewer held-out windows: the series uses the pooled scores
MAX_SERIES_WINDOWS = 500  # most recent held-out windows of a series used to calibrate
LOCAL_FLOOR = 0.1  # local volatility never below this share of the series' global one
SEASONAL_CYCLES = 10  # most past years `seasonal_ratio` reads
SEASONAL_CLIP = 4.0  # `seasonal_ratio` stays within [1 / SEASONAL_CLIP, SEASONAL_CLIP]
SEASONAL_VOLATILITY = True  # scale the local volatility by `seasonal_ratio` on clock grids


def check_levels(levels) -> tuple[float, ...]:
    """Interval levels as percentages in (0, 100), sorted, without duplicates."""
    if levels is None:
        return ()
    if isinstance(levels, (int, float, np.integer, np.floating)):
        levels = (levels,)
    out = []
    for lv in levels:
        if isinstance(lv, bool) or not isinstance(lv, (int, float, np.integer, np.floating)) \
                or not 0 < float(lv) < 100:
            raise ConfigError(f"interval levels are percentages in (0, 100) such as 80 or 95, "
                              f"got {lv!r}")
        out.append(float(lv))
    return tuple(sorted(set(out)))


def _label(level: float) -> str:
    return f"{level:g}".replace(".", "_")


def interval_columns(level: float) -> tuple[str, str]:
    """Column names of the bounds of `level`: ``yhat_lower_80``, ``yhat_upper_80``."""
    return f"yhat_lower_{_label(level)}", f"yhat_upper_{_label(level)}"


def conformal_radii(residuals: np.ndarray, levels) -> np.ndarray:
    """Radii ``(n_levels, horizon)`` from held-out residuals ``(n, horizon)`` (NaNs ignored,
    per step)."""
    levels = check_levels(levels)
    res = np.abs(np.asarray(residuals, dtype=np.float64))
    if res.ndim != 2:
        raise DataError(f"residuals must be (n_windows, horizon), got shape {res.shape}")
    H = res.shape[1]
    out = np.zeros((len(levels), H))
    for h in range(H):
        scores = np.sort(res[:, h][np.isfinite(res[:, h])])
        n = scores.size
        if n == 0:
            raise DataError("no held-out window to calibrate the intervals on; give the model "
                            "more data or a larger validation_fraction")
        for i, lv in enumerate(levels):
            k = int(np.ceil((n + 1) * lv / 100.0))
            out[i, h] = scores[min(k, n) - 1]
    return out


def volatility(y: np.ndarray, bounds: np.ndarray, series: np.ndarray, origins: np.ndarray,
               window: int | None) -> np.ndarray:
    """Mean absolute one-step change of `y` (rows of every series, concatenated; series
    ``i`` is rows ``bounds[i]:bounds[i+1]``) before each forecast origin: ``origins`` are
    absolute rows, the first forecast row of each window, and only rows before it are
    read. ``window`` steps (``None``: every row of the series before the origin).
    NaN where fewer than two finite values precede the origin."""
    y = np.asarray(y, dtype=np.float64)
    bounds = np.asarray(bounds, np.int64)
    series = np.asarray(series, np.int64)
    origins = np.asarray(origins, np.int64)
    out = np.full(len(origins), np.nan)
    for i in np.unique(series):  # one series at a time: its sums never see another series
        a, b = bounds[i], bounds[i + 1]
        d = np.abs(np.diff(y[a:b]))
        ok = np.isfinite(d)
        csum = np.concatenate([[0.0], np.cumsum(np.where(ok, d, 0.0))])
        ccnt = np.concatenate([[0], np.cumsum(ok)])
        k = np.flatnonzero(series == i)
        hi = np.clip(origins[k] - a - 1, 0, len(d))  # changes y[j] - y[j-1] with j < origin
        lo = np.zeros_like(hi) if window is None else np.maximum(hi - int(window), 0)
        cnt = ccnt[hi] - ccnt[lo]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[k] = np.where(cnt > 0, (csum[hi] - csum[lo]) / np.maximum(cnt, 1), np.nan)
    return out


def year_steps(freq) -> float | None:
    """Steps in a year (365.25 days) of a clock grid of at most a day (``D``, ``h``,
    ``15min``, ...), the period over which weather and other physical series change their
    volatility; None for every other grid (trading days, weeks, months), where
    `seasonal_ratio` is not used."""
    step = freq.step
    if step is None or step > pd.Timedelta(days=1) or step <= pd.Timedelta(0):
        return None
    return float(pd.Timedelta(days=365.25) / step)


def seasonal_ratio(y: np.ndarray, bounds: np.ndarray, series: np.ndarray, origins: np.ndarray,
                   window: int, period: float, horizon: int = 1,
                   max_cycles: int = SEASONAL_CYCLES, clip: float = SEASONAL_CLIP) -> np.ndarray:
    """How much more (or less) a series moved around the forecast steps than in the
    ``window`` steps before the origin, in the years before the origin: the factor that
    turns the trailing `volatility` at an origin into an estimate for the steps ahead.
    A trailing window lags a seasonal change of volatility (Melbourne's daily maxima
    swing several times as much in early summer as in winter), so intervals were too
    narrow while volatility rose and too wide while it fell.

    For cycle ``c = 1 ..`` `max_cycles` the origin's phase ``c`` years back is
    ``p = origin - round(c * period)``. The "behind" window is the ``window`` rows
    before ``p``, as `volatility` reads them; the "ahead" window has the same length,
    centred on the ``horizon`` forecast steps from ``p``, so the two centres lie as far
    apart as those of the trailing window and the forecast. Their mean absolute one-step
    changes are summed over every cycle whose windows lie wholly inside the series and
    before the origin. Returns the ratio of the two means, clipped to ``[1 / clip,
    clip]``; 1 where no cycle fits (less than a year and a window of history) or a mean
    is zero."""
    y = np.asarray(y, dtype=np.float64)
    bounds = np.asarray(bounds, np.int64)
    series = np.asarray(series, np.int64)
    origins = np.asarray(origins, np.int64)
    out = np.ones(len(origins))
    w = int(window)
    lead = int(round((int(horizon) - w) / 2))  # first row of the ahead window, from p
    for i in np.unique(series):
        a, b = bounds[i], bounds[i + 1]
        d = np.abs(np.diff(y[a:b]))  # d[j]: the change into row a + j + 1
        ok = np.isfinite(d)
        csum = np.concatenate([[0.0], np.cumsum(np.where(ok, d, 0.0))])
        ccnt = np.concatenate([[0], np.cumsum(ok)])
        k = np.flatnonzero(series == i)
        o = origins[k] - a  # rows before the origin: 0 .. o - 1, changes d[0 .. o - 2]
        ahead_s, ahead_n = np.zeros(len(k)), np.zeros(len(k))
        back_s, back_n = np.zeros(len(k)), np.zeros(len(k))
        for c in range(1, max_cycles + 1):
            p = o - int(round(c * period))
            b0, b1 = p - w - 1, p - 1  # d indices of the rows [p - w, p)
            a0, a1 = p + lead - 1, p + lead + w - 1  # of the rows [p + lead, p + lead + w)
            fits = (b0 >= 0) & (a0 >= 0) & (a1 <= o - 1) & (a1 <= len(d))
            if not fits.any():
                continue
            b0, b1, a0, a1 = (np.where(fits, v, 0) for v in (b0, b1, a0, a1))
            ahead_s += np.where(fits, csum[a1] - csum[a0], 0.0)
            ahead_n += np.where(fits, ccnt[a1] - ccnt[a0], 0)
            back_s += np.where(fits, csum[b1] - csum[b0], 0.0)
            back_n += np.where(fits, ccnt[b1] - ccnt[b0], 0)
        good = (ahead_n > 0) & (back_n > 0) & (back_s > 0) & (ahead_s > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = (ahead_s / np.maximum(ahead_n, 1)) / (back_s / np.maximum(back_n, 1))
        out[k] = np.where(good, np.clip(r, 1.0 / clip, clip), 1.0)
    return out


def volatility_period(freq) -> float | None:
    """The period of `seasonal_ratio` for a series on grid `freq` (`year_steps`), or None
    when SEASONAL_VOLATILITY is off."""
    return year_steps(freq) if SEASONAL_VOLATILITY else None


def local_volatility(y, bounds, series, origins, window: int, period: float | None,
                     horizon: int) -> np.ndarray:
    """The volatility an interval is scaled by at each origin: the mean absolute one-step
    change over the `window` steps before it, times the `seasonal_ratio` of the years
    before for the `horizon` steps ahead when `period` (steps a year) is given."""
    local = volatility(y, bounds, series, origins, window)
    if period:
        local = local * seasonal_ratio(y, bounds, series, origins, window, period, horizon)
    return local


def interval_score(y, lo, hi, level: float) -> np.ndarray:
    """Interval (Winkler) score of central intervals at `level`: width plus ``2 / alpha``
    times the distance by which the truth falls outside (lower is better)."""
    a = 1.0 - level / 100.0
    return (hi - lo) + (2.0 / a) * (np.maximum(lo - y, 0.0) + np.maximum(y - hi, 0.0))


class Calibration:
    """Result of `calibrate_series`: ``radius (n_series, n_levels, horizon)`` and
    ``pooled (n_levels, horizon)`` in units of sigma, the chosen ``mode`` and, per
    series, the number of calibration windows used (``counts``) and whether the series
    fell back to the pooled scores."""

    def __init__(self, radius, pooled, mode, counts, uses_pooled, scores):
        self.radius, self.pooled, self.mode = radius, pooled, mode
        self.counts, self.uses_pooled, self.scores = counts, uses_pooled, scores


def _radii_by_series(scores, series, n_series, levels):
    pooled = conformal_radii(scores, levels)
    radius = np.repeat(pooled[None], n_series, axis=0)
    counts = np.bincount(series, minlength=n_series)
    uses_pooled = counts < MIN_SERIES_WINDOWS
    for i in np.flatnonzero(~uses_pooled):
        radius[i] = conformal_radii(scores[series == i], levels)
    return radius, pooled, counts, uses_pooled


def calibrate_series(residuals, series, order, sigma_global, sigma_local, n_series: int,
                     levels, modes=("local",)) -> Calibration:
    """Per-series split-conformal radii from held-out `residuals (n, horizon)` in original
    units. `series (n,)` numbers each window's series, `order (n,)` sorts windows in time
    within a series (the origin row), `sigma_global (n_series,)` and `sigma_local (n,)`
    are the volatilities of the two modes. Keeps each series' most recent
    MAX_SERIES_WINDOWS windows; chooses among `modes` by the mean interval score on the
    later half of every series' windows (radii from the earlier half)."""
    levels = check_levels(levels)
    res = np.asarray(residuals, np.float64)
    series = np.asarray(series, np.int64)
    order = np.asarray(order, np.int64)
    keep = np.zeros(len(res), bool)
    late = np.zeros(len(res), bool)
    for i in range(n_series):
        idx = np.flatnonzero(series == i)
        idx = idx[np.argsort(order[idx], kind="stable")][-MAX_SERIES_WINDOWS:]
        keep[idx] = True
        late[idx[len(idx) // 2:]] = True
    sig = {"global": np.asarray(sigma_global, np.float64)[series],
           "local": np.maximum(np.nan_to_num(np.asarray(sigma_local, np.float64), nan=0.0),
                               LOCAL_FLOOR * np.asarray(sigma_global, np.float64)[series])}
    mode = modes[0]
    early = keep & ~late
    if len(modes) > 1 and early.sum() >= MIN_SERIES_WINDOWS and late.sum() >= MIN_SERIES_WINDOWS:
        best = np.inf
        for m in modes:
            s = np.abs(res) / sig[m][:, None]
            rad, _, _, _ = _radii_by_series(s[early], series[early], n_series, levels)
            score = 0.0
            for j, lv in enumerate(levels):
                r = rad[series[late], j] * sig[m][late][:, None]
                # in units of the series' global sigma, so every series weighs alike
                e = res[late] / sig["global"][late][:, None]
                rr = r / sig["global"][late][:, None]
                score += float(np.nanmean(interval_score(e, -rr, rr, lv)))
            if score < best - 1e-12:
                best, mode = score, m
    scores = np.abs(res[keep]) / sig[mode][keep][:, None]
    radius, pooled, counts, uses_pooled = _radii_by_series(scores, series[keep], n_series, levels)
    return Calibration(radius, pooled, mode, counts, uses_pooled, scores)


def quantiles_for_levels(levels, quantiles=None) -> tuple[float, ...]:
    """The quantiles a quantile head must emit: the median and both ends of every
    interval level (``80 -> 0.1, 0.9``), plus any extra `quantiles`, sorted."""
    qs = {0.5}
    for lv in check_levels(levels):
        a = (1.0 - lv / 100.0) / 2.0
        qs.update((round(a, 10), round(1.0 - a, 10)))
    for q in quantiles or ():
        if not 0 < float(q) < 1:
            raise ConfigError(f"quantiles must be values in (0, 1), got {q!r}")
        qs.add(round(float(q), 10))
    return tuple(sorted(qs))


def non_crossing(raw: np.ndarray, median_index: int) -> tuple[np.ndarray, np.ndarray]:
    """Map raw head outputs ``(..., Q)`` to quantiles that never cross: the median is
    raw, each step away from it adds (or subtracts) ``softplus(raw)``. Returns the
    quantiles and ``d quantile_j / d raw_j`` pieces needed for backpropagation (the
    softplus slopes, 1 at the median)."""
    raw = np.asarray(raw)
    Q = raw.shape[-1]
    sp = np.logaddexp(0.0, raw)  # softplus
    with np.errstate(over="ignore"):  # exp(-raw) = inf for raw << 0 gives the right 0
        slope = 1.0 / (1.0 + np.exp(-raw))  # its derivative
    out = np.empty_like(raw)
    m = median_index
    out[..., m] = raw[..., m]
    for j in range(m + 1, Q):
        out[..., j] = out[..., j - 1] + sp[..., j]
    for j in range(m - 1, -1, -1):
        out[..., j] = out[..., j + 1] - sp[..., j]
    slope[..., m] = 1.0
    return out, slope


def non_crossing_backward(dout: np.ndarray, slope: np.ndarray, median_index: int) -> np.ndarray:
    """Gradient of the raw outputs given that of the non-crossing quantiles."""
    Q = dout.shape[-1]
    m = median_index
    draw = np.empty_like(dout)
    # out_j (j > m) = raw_m + sum_{m<i<=j} sp_i: d raw_i = slope_i * sum_{j>=i} dout_j
    acc = np.zeros_like(dout[..., 0])
    for j in range(Q - 1, m, -1):
        acc = acc + dout[..., j]
        draw[..., j] = slope[..., j] * acc
    upper_total = acc
    acc = np.zeros_like(dout[..., 0])
    for j in range(0, m):
        acc = acc + dout[..., j]
        draw[..., j] = -slope[..., j] * acc
    lower_total = acc
    draw[..., m] = dout[..., m] + upper_total + lower_total
    return draw
