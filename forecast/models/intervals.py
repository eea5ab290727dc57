"""Prediction intervals: split-conformal radii per horizon step, and the quantile levels
that a quantile head needs for given interval levels.

Split conformal (Vovk et al.; Lei et al. 2018): on held-out windows that the model was
not trained on, the absolute errors of each horizon step are the conformity scores; the
radius for level ``a`` is their ``ceil((n + 1) a) / n`` empirical quantile, so that a new
exchangeable window is covered with probability at least ``a``. Scores are computed in
the model's scaled space (each series divided by its own scale), so one global model
calibrates series of very different size together.
"""

from __future__ import annotations

import numpy as np

from forecast.errors import ConfigError, DataError

__all__ = ["check_levels", "conformal_radii", "quantiles_for_levels", "interval_columns",
           "non_crossing"]


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
