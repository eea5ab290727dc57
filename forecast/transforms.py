"""Invertible transforms fitted on the training span only, and calendar features.

Every transform follows scikit-learn's shape of API: ``fit(X)`` returns ``self`` and
stores what it learned in attributes ending in ``_``; ``transform`` and
``inverse_transform`` are pure. ``to_dict()`` / ``from_dict()`` round-trip a fitted
transform through plain JSON values (data only, nothing executable), so model files can store it.

Arrays: ``fit`` takes ``(n_rows,)`` or ``(n_rows, n_features)`` (a DataFrame also records
``feature_names_in_``). ``transform`` / ``inverse_transform`` take ``(..., n_time,
n_features)`` so a batch of forecasts ``(B, H, F)`` works too. With ``columns=`` they act
on a subset of the fitted features (names or positions); with a single column the
feature axis may be left out, e.g. forecasts ``(B, H)`` of one target.

Time-dependent transforms (`Difference`, `LogReturns`) shorten nothing: their first
``lag`` rows are NaN. Their inverse needs ``history``: the rows just before the values,
in original units (for forecasts: the end of the input window).
"""

from __future__ import annotations

import abc
import json
import warnings
from dataclasses import replace
from typing import Any, Sequence

import numpy as np
import pandas as pd

from forecast.data import Dataset, Frequency
from forecast.errors import ConfigError, DataError, DataWarning, NotFittedError

__all__ = [
    "Transform",
    "StandardScaler",
    "RobustScaler",
    "MinMaxScaler",
    "Log",
    "Difference",
    "LogReturns",
    "Pipeline",
    "SeriesScaler",
    "transform_from_dict",
    "CALENDAR_FEATURES",
    "calendar_features",
    "default_calendar_features",
    "add_calendar_features",
    "future_calendar_features",
]

_REGISTRY: dict[str, type] = {}


def _layout(X, k: int) -> tuple[np.ndarray, bool]:
    """`X` as float64 ``(..., n_time, k)`` and whether a feature axis was added."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 0:
        raise ConfigError("expected an array of values, got a scalar")
    if k == 1 and (X.ndim == 1 or X.shape[-1] != 1):
        return X[..., None], True
    if X.shape[-1] != k:
        raise ConfigError(
            f"expected {k} feature(s) in the last axis, got an array of shape {X.shape}; "
            "pass columns= to select the features this array holds"
        )
    return X, False


class Transform(abc.ABC):
    """Base class: subclasses set ``_params`` (constructor arguments) and ``_state``
    (learned attributes) and implement ``_fit``, ``_forward`` and ``_backward``."""

    _params: tuple[str, ...] = ()
    _state: tuple[str, ...] = ()
    history_rows = 0  # rows of history that inverse_transform needs

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        _REGISTRY[cls.__name__] = cls

    # ---- scikit-learn style -------------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {p: getattr(self, p) for p in self._params}

    def set_params(self, **params) -> "Transform":
        for k, v in params.items():
            if k not in self._params:
                raise ConfigError(f"{type(self).__name__} has no parameter {k!r}; "
                                  f"it has {list(self._params)}")
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def fit(self, X, y=None) -> "Transform":
        """Learn from `X` (the training rows only): ``(n_rows,)`` or ``(n_rows, n_features)``."""
        names = [str(c) for c in X.columns] if isinstance(X, pd.DataFrame) else None
        if isinstance(X, pd.Series):
            names = [str(X.name)] if X.name is not None else None
        A = np.asarray(X, dtype=np.float64)
        if A.ndim == 1:
            A = A[:, None]
        if A.ndim != 2 or A.shape[0] == 0:
            raise DataError(f"{type(self).__name__}.fit expects (rows, features) with at least "
                            f"one row, got shape {np.shape(X)}")
        for attr in self._state:
            if hasattr(self, attr):
                delattr(self, attr)
        self.n_features_in_ = A.shape[1]
        self.feature_names_in_ = names
        self._fit(A)
        return self

    def fit_transform(self, X, y=None) -> np.ndarray:
        return self.fit(X).transform(X)

    def transform(self, X, columns=None) -> np.ndarray:
        idx = self._columns(columns)
        A, added = _layout(X, len(idx))
        out = self._forward(A, idx)
        return out[..., 0] if added else out

    def inverse_transform(self, Z, history=None, columns=None) -> np.ndarray:
        """Back to original units. `history`: the rows before `Z` in original units, needed
        by `Difference` / `LogReturns` (shape ``(..., >= history_rows, features)``)."""
        idx = self._columns(columns)
        A, added = _layout(Z, len(idx))
        H = None
        if self.history_rows:
            if history is None:
                raise ConfigError(
                    f"{type(self).__name__}.inverse_transform needs history=: the last "
                    f"{self.history_rows} row(s) before the values, in original units"
                )
            H, _ = _layout(history, len(idx))
            if H.shape[-2] < self.history_rows:
                raise ConfigError(f"history has {H.shape[-2]} row(s); {type(self).__name__} "
                                  f"needs at least {self.history_rows}")
        out = self._backward(A, idx, H)
        return out[..., 0] if added else out

    # ---- helpers ------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "n_features_in_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit() "
                                 "on the training rows first")

    def _columns(self, columns) -> np.ndarray:
        self._check_fitted()
        if columns is None:
            return np.arange(self.n_features_in_)
        if isinstance(columns, (str, int, np.integer)):
            columns = [columns]
        idx = []
        for c in columns:
            if isinstance(c, str):
                names = self.feature_names_in_ or []
                if c not in names:
                    raise ConfigError(f"column {c!r} was not seen in fit; fitted columns are "
                                      f"{names or list(range(self.n_features_in_))}")
                idx.append(names.index(c))
            else:
                if not 0 <= int(c) < self.n_features_in_:
                    raise ConfigError(f"column {c} is out of range: fitted on "
                                      f"{self.n_features_in_} feature(s)")
                idx.append(int(c))
        return np.asarray(idx, dtype=np.int64)

    def _name(self, j: int) -> str:
        names = self.feature_names_in_
        return f"column {j} ({names[j]!r})" if names else f"column {j}"

    def _fit(self, X: np.ndarray) -> None:
        pass

    @abc.abstractmethod
    def _forward(self, X: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Implemented by every concrete subclass."""

    @abc.abstractmethod
    def _backward(self, Z: np.ndarray, idx: np.ndarray, H) -> np.ndarray:
        """Implemented by every concrete subclass."""

    # ---- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe description: type, parameters and (if fitted) learned state."""
        state = None
        if hasattr(self, "n_features_in_"):
            state = {"n_features_in_": int(self.n_features_in_),
                     "feature_names_in_": self.feature_names_in_}
            for attr in self._state:
                state[attr] = np.asarray(getattr(self, attr), dtype=np.float64).tolist()
        params = {k: list(v) if isinstance(v, tuple) else v for k, v in self.get_params().items()}
        return {"type": type(self).__name__, "version": 1, "params": params, "state": state}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Transform":
        obj = transform_from_dict(data)
        if not isinstance(obj, cls):
            raise ConfigError(f"expected a {cls.__name__} description, got {data.get('type')!r}")
        return obj

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def transform_from_dict(data: dict[str, Any]) -> Transform:
    """Rebuild any transform (or `Pipeline`) from its `to_dict()`; raises `ConfigError`
    when the description is malformed."""
    if not isinstance(data, dict) or data.get("type") not in _REGISTRY:
        kind = data.get("type") if isinstance(data, dict) else type(data).__name__
        raise ConfigError(f"unknown transform {kind!r}; known: {sorted(_REGISTRY)}")
    cls = _REGISTRY[data["type"]]
    if cls is Pipeline:
        pipe = Pipeline([transform_from_dict(s) for s in data.get("steps", [])])
        state = data.get("state")
        if state is not None:
            pipe.n_features_in_ = int(state["n_features_in_"])
            names = state.get("feature_names_in_")
            pipe.feature_names_in_ = None if names is None else [str(n) for n in names]
        return pipe
    try:
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in data["params"].items()}
        obj = cls(**params)
        state = data.get("state")
        if state is not None:
            obj.n_features_in_ = int(state["n_features_in_"])
            names = state.get("feature_names_in_")
            obj.feature_names_in_ = None if names is None else [str(n) for n in names]
            for attr in cls._state:
                value = np.asarray(state[attr], dtype=np.float64)
                if value.shape != (obj.n_features_in_,):
                    raise ValueError(f"{attr} has shape {value.shape}")
                setattr(obj, attr, value)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"malformed {data['type']} description: {exc}") from None
    return obj


def _constant_warning(t: Transform, cols: np.ndarray, values: np.ndarray) -> None:
    for j in cols:
        warnings.warn(
            f"{type(t).__name__}: {t._name(int(j))} is constant in the fitted rows (every value "
            f"is {values[j]:g}); using scale 1 so nothing is divided by zero",
            DataWarning, stacklevel=4,
        )


def _check_columns(t: Transform, X: np.ndarray) -> None:
    empty = np.isnan(X).all(axis=0)
    if empty.any():
        j = int(np.flatnonzero(empty)[0])
        raise DataError(f"{type(t).__name__}.fit: {t._name(j)} has no finite value in the fitted "
                        "rows; drop the column or fit on more rows")
    if np.isinf(X).any():
        j = int(np.flatnonzero(np.isinf(X).any(axis=0))[0])
        raise DataError(f"{type(t).__name__}.fit: {t._name(j)} holds infinite values; clean "
                        "the data first")


class StandardScaler(Transform):
    """z = (x - mean_) / scale_, with the population std (``ddof=0``) by default. NaNs
    are ignored when fitting; a constant column gets scale 1 (and a `DataWarning`)."""

    _params = ("ddof",)
    _state = ("mean_", "scale_")

    def __init__(self, ddof: int = 0):
        self.ddof = ddof

    def _fit(self, X):
        _check_columns(self, X)
        self.mean_ = np.nanmean(X, axis=0)
        std = np.nanstd(X, axis=0, ddof=self.ddof) if X.shape[0] > self.ddof else np.zeros(X.shape[1])
        const = ~(std > 0)
        if const.any():
            _constant_warning(self, np.flatnonzero(const), self.mean_)
        self.scale_ = np.where(const, 1.0, std)

    def _forward(self, X, idx):
        return (X - self.mean_[idx]) / self.scale_[idx]

    def _backward(self, Z, idx, H):
        return Z * self.scale_[idx] + self.mean_[idx]


class RobustScaler(Transform):
    """z = (x - median) / (q_high - q_low), quantiles in percent (default the IQR)."""

    _params = ("quantile_range",)
    _state = ("center_", "scale_")

    def __init__(self, quantile_range: tuple[float, float] = (25.0, 75.0)):
        self.quantile_range = tuple(quantile_range)

    def _fit(self, X):
        lo, hi = self.quantile_range
        if not 0 <= lo < hi <= 100:
            raise ConfigError(f"quantile_range must satisfy 0 <= low < high <= 100, got {(lo, hi)}")
        _check_columns(self, X)
        self.center_ = np.nanmedian(X, axis=0)
        q = np.nanpercentile(X, [lo, hi], axis=0)
        spread = q[1] - q[0]
        const = ~(spread > 0)
        if const.any():
            _constant_warning(self, np.flatnonzero(const), self.center_)
        self.scale_ = np.where(const, 1.0, spread)

    def _forward(self, X, idx):
        return (X - self.center_[idx]) / self.scale_[idx]

    def _backward(self, Z, idx, H):
        return Z * self.scale_[idx] + self.center_[idx]


class MinMaxScaler(Transform):
    """z = low + (x - data_min_) * (high - low) / (data_max_ - data_min_); a constant column
    uses a range of 1."""

    _params = ("feature_range",)
    _state = ("data_min_", "data_max_", "scale_")

    def __init__(self, feature_range: tuple[float, float] = (0.0, 1.0)):
        self.feature_range = tuple(feature_range)

    def _fit(self, X):
        lo, hi = self.feature_range
        if not lo < hi:
            raise ConfigError(f"feature_range must be (low, high) with low < high, got {(lo, hi)}")
        _check_columns(self, X)
        self.data_min_ = np.nanmin(X, axis=0)
        self.data_max_ = np.nanmax(X, axis=0)
        span = self.data_max_ - self.data_min_
        const = ~(span > 0)
        if const.any():
            _constant_warning(self, np.flatnonzero(const), self.data_min_)
        self.scale_ = (hi - lo) / np.where(const, 1.0, span)

    def _forward(self, X, idx):
        return (X - self.data_min_[idx]) * self.scale_[idx] + self.feature_range[0]

    def _backward(self, Z, idx, H):
        return (Z - self.feature_range[0]) / self.scale_[idx] + self.data_min_[idx]


def _check_positive(t: Transform, X: np.ndarray, offset: float, idx=None) -> None:
    bad = X + offset <= 0
    if bad.any():
        flat = np.argwhere(bad)[0]
        j = int(flat[-1]) if idx is None else int(idx[flat[-1]])
        row = int(flat[-2]) if X.ndim >= 2 else int(flat[0])
        value = X[tuple(flat)]
        fix = "use offset= to shift the values" if isinstance(t, Log) else \
            "log-returns need positive prices: check the column"
        raise DataError(
            f"{type(t).__name__}: {t._name(j)} has {int(bad.sum())} value(s) <= {0.0 - offset:g} "
            f"(first at row {row}: {value:g}) where the log is undefined; {fix}, or use a "
            "scaler instead of a log transform"
        )


class Log(Transform):
    """z = log(x + offset); values must be > -offset (prices are)."""

    _params = ("offset",)

    def __init__(self, offset: float = 0.0):
        self.offset = offset

    def _fit(self, X):
        _check_positive(self, X, self.offset)

    def _forward(self, X, idx):
        _check_positive(self, X, self.offset, idx)
        return np.log(X + self.offset)

    def _backward(self, Z, idx, H):
        return np.exp(Z) - self.offset


class Difference(Transform):
    """z_t = x_t - x_{t-lag} along the time axis; the first `lag` rows are NaN."""

    _params = ("lag",)

    def __init__(self, lag: int = 1):
        self.lag = lag

    @property
    def history_rows(self) -> int:  # type: ignore[override]
        return int(self.lag)

    def _fit(self, X):
        if not isinstance(self.lag, (int, np.integer)) or self.lag < 1:
            raise ConfigError(f"lag must be a positive int, got {self.lag!r}")

    def _forward(self, X, idx):
        out = np.full_like(X, np.nan)
        lag = self.lag
        if X.shape[-2] > lag:
            out[..., lag:, :] = X[..., lag:, :] - X[..., :-lag, :]
        return out

    def _backward(self, Z, idx, H):
        lag = self.lag
        head = np.broadcast_to(H[..., -lag:, :], Z.shape[:-2] + (lag, Z.shape[-1]))
        ext = np.concatenate([head, Z], axis=-2)
        for r in range(lag):
            ext[..., r::lag, :] = np.cumsum(ext[..., r::lag, :], axis=-2)
        return ext[..., lag:, :]


class LogReturns(Transform):
    """z_t = log(x_t / x_{t-lag}) (log-returns of prices); the first `lag` rows are NaN."""

    _params = ("lag",)

    def __init__(self, lag: int = 1):
        self.lag = lag

    @property
    def history_rows(self) -> int:  # type: ignore[override]
        return int(self.lag)

    def _fit(self, X):
        Difference(self.lag)._fit(X)
        _check_positive(self, X, 0.0)

    def _forward(self, X, idx):
        _check_positive(self, X, 0.0, idx)
        return Difference(self.lag)._forward(np.log(X), idx)

    def _backward(self, Z, idx, H):
        _check_positive(self, H[..., -self.lag:, :], 0.0, idx)
        return np.exp(Difference(self.lag)._backward(Z, idx, np.log(H[..., -self.lag:, :])))


class Pipeline(Transform):
    """Transforms applied in order (e.g. ``[LogReturns(), StandardScaler()]``), inverted
    in reverse order; `history` for the inverse is given in original units."""

    def __init__(self, steps: Sequence[Transform]):
        self.steps = list(steps)
        for s in self.steps:
            if not isinstance(s, Transform):
                raise ConfigError(f"Pipeline steps must be transforms, got {type(s).__name__}")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"steps": self.steps}

    @property
    def history_rows(self) -> int:  # type: ignore[override]
        return sum(s.history_rows for s in self.steps)

    def fit(self, X, y=None) -> "Pipeline":
        names = [str(c) for c in X.columns] if isinstance(X, pd.DataFrame) else None
        A = np.asarray(X, dtype=np.float64)
        for step in self.steps:
            A = step.fit(A).transform(A)
            step.feature_names_in_ = names
        self.n_features_in_ = A.shape[1] if A.ndim == 2 else 1
        self.feature_names_in_ = names
        return self

    def _forward(self, X, idx):
        for step in self.steps:
            X = step._forward(X, idx)
        return X

    def _backward(self, Z, idx, H):
        histories = [H]
        for step in self.steps[:-1]:
            histories.append(None if H is None else step._forward(histories[-1], idx))
        for step, hist in zip(reversed(self.steps), reversed(histories)):
            if step.history_rows and hist is not None:
                hist = hist[..., -step.history_rows:, :]
                if np.isnan(hist).any():
                    raise ConfigError("history is too short for this pipeline: it needs "
                                      f"{self.history_rows} row(s) before the values")
            Z = step._backward(Z, idx, hist)
        return Z

    def to_dict(self) -> dict[str, Any]:
        out = {"type": "Pipeline", "version": 1, "steps": [s.to_dict() for s in self.steps]}
        if hasattr(self, "n_features_in_"):
            out["state"] = {"n_features_in_": int(self.n_features_in_),
                            "feature_names_in_": self.feature_names_in_}
        return out


def _loc_scale(parts) -> tuple[np.ndarray, np.ndarray]:  # finite values: mean, population std
    finite = [p[np.isfinite(p)] for p in parts]
    sd = np.array([p.std() if p.size else 0.0 for p in finite])
    return np.array([p.mean() if p.size else 0.0 for p in finite]), np.where(sd > 0, sd, 1.0)


class SeriesScaler:
    """Per-series target and shared covariate standardisation, as the estimators use it:
    ``fit(values (rows, F), spans (S, 2))`` reads only rows ``[spans[i, 0], spans[i, 1])`` of
    series ``i`` (its training span) into ``loc_``, ``scale_ (S,)`` and ``cov_loc_``,
    ``cov_scale_ (F - 1,)``: means, population stds of the finite values (scale 1 if 0 or none)."""

    def fit(self, values, spans) -> "SeriesScaler":
        V, spans = np.asarray(values, np.float64), np.asarray(spans, np.int64).reshape(-1, 2)
        if V.ndim != 2 or V.shape[1] == 0 or (spans[:, 0] > spans[:, 1]).any():
            raise DataError(f"SeriesScaler.fit: values must be (rows, features), spans (series, "
                            f"2) with start <= end; got {V.shape} and {spans.shape}")
        self.loc_, self.scale_ = _loc_scale([V[a:b, 0] for a, b in spans])
        cov = np.concatenate([V[:0, 1:]] + [V[a:b, 1:] for a, b in spans]).T
        self.cov_loc_, self.cov_scale_ = _loc_scale(list(cov))
        return self

    def transform(self, X, series) -> np.ndarray:
        """`X` ``(n, ..., F)`` in original units to scaled; `series` ``(n,)``: each row's series."""
        out, s, shape = np.array(X, np.float64), np.asarray(series, np.int64), (-1,) + (1,) * (np.ndim(X) - 2)
        out[..., 0] = (out[..., 0] - self.loc_[s].reshape(shape)) / self.scale_[s].reshape(shape)
        out[..., 1:] = (out[..., 1:] - self.cov_loc_) / self.cov_scale_
        return out

    def inverse_transform(self, Z, series) -> np.ndarray:
        """Scaled targets ``(n, ...)`` (e.g. forecasts ``(B, H)``) back to original units."""
        s, shape = np.asarray(series, np.int64), (-1,) + (1,) * (np.ndim(Z) - 1)
        return np.asarray(Z, np.float64) * self.scale_[s].reshape(shape) + self.loc_[s].reshape(shape)


# ---- calendar features ---------------------------------------------------------------------
#: Feature name -> column prefix. Each becomes a sine and a cosine column.
CALENDAR_FEATURES = {"hour": "hour", "dayofweek": "dow", "dayofyear": "doy"}


def default_calendar_features(freq: Frequency | str | None) -> tuple[str, ...]:
    """Hour of day for sub-daily grids, day of week for grids of a day or less, day of
    year for grids of up to a week (monthly and coarser grids get none)."""
    if freq is None:
        return tuple(CALENDAR_FEATURES)
    freq = freq if isinstance(freq, Frequency) else Frequency(freq)
    if freq.alias in ("B", "XNYS"):
        return ("dayofweek", "dayofyear")
    step = freq.step
    if step is None:
        return ("dayofyear",) if freq.alias.startswith("W") else ()
    day = pd.Timedelta(days=1)
    feats = []
    if step < day:
        feats.append("hour")
    if step <= day:
        feats.append("dayofweek")
    if step <= 7 * day:
        feats.append("dayofyear")
    return tuple(feats)


def calendar_features(index, features: Sequence[str] | None = None,
                      freq: Frequency | str | None = None) -> pd.DataFrame:
    """Sine/cosine encodings of the timestamps in `index` (known in the future, so usable as
    covariates over the forecast horizon). Columns: ``hour_sin``, ``hour_cos``,
    ``dow_sin``, ``dow_cos``, ``doy_sin``, ``doy_cos`` (those requested)."""
    idx = pd.DatetimeIndex(index)
    feats = tuple(features) if features is not None else default_calendar_features(freq)
    unknown = [f for f in feats if f not in CALENDAR_FEATURES]
    if unknown:
        raise ConfigError(f"unknown calendar feature(s) {unknown}; choose from {list(CALENDAR_FEATURES)}")
    hours = idx.hour + idx.minute / 60 + idx.second / 3600
    out = {}
    for f in feats:
        if f == "hour":
            phase = hours / 24.0
        elif f == "dayofweek":
            phase = idx.day_of_week / 7.0
        else:
            days = np.where(idx.is_leap_year, 366.0, 365.0)
            phase = (idx.day_of_year - 1 + hours / 24.0) / days
        angle = 2 * np.pi * np.asarray(phase, dtype=np.float64)
        out[f"{CALENDAR_FEATURES[f]}_sin"] = np.sin(angle)
        out[f"{CALENDAR_FEATURES[f]}_cos"] = np.cos(angle)
    return pd.DataFrame(out, index=idx)


def add_calendar_features(dataset: Dataset, features: Sequence[str] | None = None) -> Dataset:
    """A copy of `dataset` with calendar columns added as known-future covariates."""
    table = calendar_features(dataset.frame["ds"], features, dataset.freq)
    clash = [c for c in table.columns if c in dataset.frame.columns]
    if clash:
        raise DataError(f"the dataset already has column(s) {clash}; rename them first")
    frame = dataset.frame.copy()
    for c in table.columns:
        frame[c] = table[c].to_numpy()
    cols = tuple(table.columns)
    return replace(dataset, frame=frame, covariates=dataset.covariates + cols,
                   known=dataset.known + cols)


def future_calendar_features(dataset: Dataset, horizon: int, uid=None) -> pd.DataFrame:
    """The calendar columns of `dataset` (as added by `add_calendar_features`) for the
    `horizon` timestamps after its end (the next trading days for stock series)."""
    prefixes = {v: k for k, v in CALENDAR_FEATURES.items()}
    feats = [prefixes[c[:-4]] for c in dataset.known if c.endswith("_sin") and c[:-4] in prefixes]
    return calendar_features(dataset.future_index(horizon, uid), feats)
