"""Diagnostics of a fitted model on its data (what the reports' residual plots show).

The residuals of a single fit come from the most recent forecast origins of the data;
a backtest's residuals come from its own forecasts (`forecast.backtest`).
"""

from __future__ import annotations

__all__ = ["recent_residuals"]


def recent_residuals(model, dataset, n: int = 200):
    """``y - yhat`` of `model` from the last `n` forecast origins of `dataset` (the most
    recent rows, which an RNN holds out for validation): a frame with ``model``, ``ds``
    (the origin), ``step`` and ``residual``, for residual diagnostics of a single fit."""
    import numpy as np  # here, not at the top: `forecast.workflows` imports this module
    import pandas as pd  # and must stay cheap to import (`forecast --help`)

    L, H = model.lookback_, model.horizon_
    b = dataset.bounds
    length = int(b[1] - b[0])
    rows = np.arange(max(L, length - H - n + 1), length - H + 1)
    if rows.size == 0:
        return pd.DataFrame(columns=["ds", "step", "residual"])
    point, _ = model.forecast_origins(dataset, np.zeros(rows.size, np.int64), rows, levels=())
    y = dataset.frame[dataset.target[0]].to_numpy(np.float64)[b[0]:b[1]]
    truth = np.stack([y[r:r + H] for r in rows])
    ds = dataset.frame[dataset.time_col].to_numpy()[b[0]:b[1]]
    return pd.DataFrame({"ds": np.repeat(ds[rows], H), "step": np.tile(np.arange(1, H + 1),
                                                                         rows.size),
                         "residual": (truth - point).reshape(-1)})
