"""Baseline forecasters with the interface of every model (fit / predict / windows /
intervals / state), so that backtests and reports treat them alike.

* `Naive`: the last value, repeated (a random walk forecast).
* `SeasonalNaive(season)`: the value one season earlier.
* `Drift`: the last value plus the average step over the lookback.
* `WindowAverage(window)` (alias `Mean`): the mean of the last `window` values.
* `LinearLags`: a scikit-learn linear model on the lookback window, one output per
  horizon step; ``normalize="last"`` subtracts the window's last value first. These are
  the Linear and NLinear models of the long-horizon benchmarks (DLinear paper).
"""

from __future__ import annotations

import numpy as np

from forecast.errors import ConfigError, DataError
from forecast.models.base import check_is_fitted
from forecast.models.forecaster import Forecaster

__all__ = ["Naive", "SeasonalNaive", "Drift", "WindowAverage", "Mean", "LinearLags"]

MAX_HISTORY = 2000  # longest lookback a window-less baseline reads from a frame


def _positive_int(name, value, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a positive integer{' or None' if allow_none else ''}, "
                          f"got {value!r}")
    return int(value)


def _half_history(lengths) -> int:
    """Default window of Drift / WindowAverage on frames: half the shortest series (at
    most MAX_HISTORY), so that the other half gives windows to calibrate intervals on."""
    return int(max(2, min(MAX_HISTORY, int(lengths.min()) // 2)))


class _Baseline(Forecaster):
    """A baseline needs no training: fit only records the geometry (and calibrates the
    intervals on each series' held-out tail, like every model)."""

    _needs_training_windows = False

    def _fit_arrays(self, train, val) -> None:
        pass


class Naive(_Baseline):
    """Repeat the last observed value over the horizon."""

    def __init__(self, horizon: int = 1, levels=(80, 95)):
        self.horizon = horizon
        self.levels = levels

    def _lookback_for(self, lengths):
        return 1

    def _predict_arrays(self, X, F):
        return np.repeat(X[:, -1, :1], self.horizon_, axis=1)


class SeasonalNaive(_Baseline):
    """Repeat the last full season: step ``h`` gets the value ``season * ceil(h / season)``
    steps before it. ``season=None`` takes the data's natural season (24 for hourly,
    7 for daily, 5 for trading days)."""

    _fitted_meta = Forecaster._fitted_meta + ("season_",)

    def __init__(self, season: int | None = None, horizon: int = 1, levels=(80, 95)):
        self.season = season
        self.horizon = horizon
        self.levels = levels

    def fit(self, data, **kw):
        from forecast.models.forecaster import as_dataset

        dataset = as_dataset(data, kw.get("target"), kw.get("covariates"), kw.get("known"))
        self._season_hint = dataset.freq.season_length
        return super().fit(dataset, **kw)

    def _resolve_season(self):
        season = self.season if self.season is not None else getattr(self, "_season_hint", None)
        if season is None:
            raise ConfigError("SeasonalNaive needs season=: the data's frequency has no "
                              "natural season")
        return _positive_int("season", season)

    def _lookback_for(self, lengths):
        return self._resolve_season()

    def _fit_arrays(self, train, val):
        season = self._resolve_season()
        if train.x.shape[1] < season:
            raise DataError(f"SeasonalNaive(season={season}) needs a lookback of at least "
                            f"{season} steps, got {train.x.shape[1]}")
        self.season_ = season

    def _predict_arrays(self, X, F):
        s, L, H = self.season_, X.shape[1], self.horizon_
        h = np.arange(1, H + 1)
        idx = L - s * ((h + s - 1) // s) + h - 1  # position of y_{t+h-s*ceil(h/s)}
        return X[:, idx, 0]


class _WindowBaseline(_Baseline):
    """A baseline over the last ``window`` values (``None``: half the history, up to 2000)."""

    _min_window = 1

    def __init__(self, window: int | None = None, horizon: int = 1, levels=(80, 95)):
        self.window = window
        self.horizon = horizon
        self.levels = levels

    def _lookback_for(self, lengths):
        w = _positive_int("window", self.window, allow_none=True)
        if w is None:
            return _half_history(lengths)
        if w < self._min_window:
            raise ConfigError(f"{type(self).__name__} needs window >= {self._min_window} "
                              "to estimate a slope")
        return w


class Drift(_WindowBaseline):
    """Last value plus ``h`` times the mean step over the window (the line through the
    first and last value). ``window=None`` uses half the history (up to 2000 steps)."""

    _min_window = 2

    def _predict_arrays(self, X, F):
        y = X[:, :, 0]
        L = y.shape[1]
        slope = (y[:, -1] - y[:, 0]) / max(L - 1, 1)
        h = np.arange(1, self.horizon_ + 1)
        return y[:, -1:] + slope[:, None] * h[None, :]


class WindowAverage(_WindowBaseline):
    """The mean of the last `window` values (``None``: half the history, up to 2000)."""

    def _predict_arrays(self, X, F):
        w = X.shape[1] if self.window is None else min(int(self.window), X.shape[1])
        m = X[:, -w:, 0].mean(axis=1)
        return np.repeat(m[:, None], self.horizon_, axis=1)


class Mean(WindowAverage):
    """Alias of `WindowAverage`: the mean of the history (or of the last `window` values)."""


class LinearLags(Forecaster):
    """A linear model on the lookback window of the target, one output per horizon step.

    estimator: ``"linear"`` (ordinary least squares) or ``"ridge"`` (``alpha``), both
        scikit-learn; the learned ``coef_ (horizon, lookback)`` and ``intercept_`` are
        stored as plain arrays.
    normalize: ``"none"`` (the Linear model) or ``"last"``: subtract the window's last
        value from inputs and targets and add it back (the NLinear model).
    """

    _fitted_arrays = Forecaster._fitted_arrays + ("coef_", "intercept_")

    def __init__(self, lookback: int = 336, horizon: int = 1, normalize: str = "none",
                 estimator: str = "linear", alpha: float = 1.0, levels=(80, 95)):
        self.lookback = lookback
        self.horizon = horizon
        self.normalize = normalize
        self.estimator = estimator
        self.alpha = alpha
        self.levels = levels

    def _lookback_for(self, lengths):
        return _positive_int("lookback", self.lookback)

    def _offset(self, X):
        if self.normalize == "last":
            return X[:, -1, 0][:, None]
        return np.zeros((X.shape[0], 1))

    def _fit_arrays(self, train, val):
        from sklearn.linear_model import LinearRegression, Ridge

        if self.normalize not in ("none", "last"):
            raise ConfigError(f"normalize must be 'none' or 'last', got {self.normalize!r}")
        if self.estimator == "linear":
            est = LinearRegression()
        elif self.estimator == "ridge":
            if not self.alpha >= 0:
                raise ConfigError(f"alpha must be >= 0, got {self.alpha!r}")
            est = Ridge(alpha=float(self.alpha))
        else:
            raise ConfigError(f"estimator must be 'linear' or 'ridge', got {self.estimator!r}")
        off = self._offset(train.x)
        est.fit(train.x[:, :, 0] - off, train.y - off)
        self.coef_ = np.asarray(est.coef_, dtype=np.float64).reshape(train.y.shape[1], -1)
        self.intercept_ = np.asarray(est.intercept_, dtype=np.float64).reshape(-1)

    def _predict_arrays(self, X, F):
        check_is_fitted(self)
        off = self._offset(X)
        return (X[:, :, 0] - off) @ self.coef_.T + self.intercept_ + off


BASELINES = {"naive": Naive, "seasonal_naive": SeasonalNaive, "drift": Drift,
             "mean": WindowAverage, "linear": LinearLags}
