"""`Forecaster`: the data layer every model shares (pandas in and out, windows, scaling,
conformal intervals); subclasses only learn from and predict on window arrays.

Two ways in:

* ``fit(data)`` / ``predict()``: ``data`` is a `forecast.data.Dataset`, a long frame
  (``unique_id``, ``ds``, ``y`` and covariates) or one series with a DatetimeIndex;
  forecasts come back as a frame with ``unique_id``, ``ds``, ``yhat`` and
  ``yhat_lower_80``, ``yhat_upper_80``... for each interval level.
* ``fit_windows(X, Y)`` / ``predict_windows(X)``: arrays ``X (B, lookback, F)`` whose
  column 0 is the target, ``Y (B, horizon)``, and optionally the known-future covariates
  ``X_future (B, horizon, K)``. Backtests and the long-horizon benchmark use these.
"""

from __future__ import annotations

import abc

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from forecast.data import Dataset, Frequency, load, require_length
from forecast.errors import ConfigError, DataError, NotFittedError
from forecast.models.base import BaseForecaster, check_is_fitted
from forecast.models.intervals import (
    LOCAL_FLOOR,
    calibrate_series,
    check_levels,
    conformal_radii,
    interval_columns,
    local_volatility,
    volatility,
    volatility_period,
)
from forecast.transforms import (CALENDAR_FEATURES, SeriesScaler, add_calendar_features,
                                 calendar_features)
from forecast.windows import Batch, Windows, WindowSpec

__all__ = ["Forecaster", "Design", "as_dataset"]

MAX_CALIBRATION = 500  # window-array fits: most recent windows used to calibrate
CALIBRATION_FRACTION = 0.2  # share of each series' rows held out to calibrate intervals


def volatility_window(season: int | None) -> int:
    """Steps of the local volatility before a forecast origin: two seasons, at least 20."""
    return int(max(20, 2 * (season or 0)))


def as_dataset(data, target=None, covariates=None, known=None) -> Dataset:
    """`data` as a `Dataset`: a Dataset is used as is; a DataFrame or Series goes
    through `forecast.data.load`. `known` marks covariates known in the future."""
    if isinstance(data, Dataset):
        dataset = data
    elif isinstance(data, (pd.DataFrame, pd.Series)):
        opts = {}
        if target is not None:
            opts["target"] = target
        if covariates is not None or known:
            cov = list(covariates or [])
            cov += [k for k in (known or ()) if k not in cov]
            opts["covariates"] = cov
        dataset = load(data, **opts)
    else:
        raise DataError(f"cannot fit or predict on a {type(data).__name__}; pass a Dataset, a "
                        "long DataFrame (unique_id, ds, y, covariates) or a Series with a "
                        "DatetimeIndex")
    if known:
        missing = [k for k in known if k not in dataset.covariates]
        if missing:
            raise DataError(f"known-future column(s) {missing} are not covariates of the data; "
                            f"its covariates are {list(dataset.covariates)}")
        dataset = replace(dataset, known=tuple(dict.fromkeys(dataset.known + tuple(known))))
    if len(dataset.target) != 1:
        raise DataError(f"the data has {len(dataset.target)} targets {list(dataset.target)}; "
                        "the models forecast one target: pick it with target=")
    return dataset


@dataclass
class Design:
    """Raw model columns of a dataset: values (rows, F), series bounds, ids, timestamps."""

    dataset: Dataset
    values: np.ndarray
    bounds: np.ndarray
    ids: list
    ds: pd.DatetimeIndex
    columns: tuple[str, ...]
    calendar: tuple[str, ...] = ()


class Forecaster(BaseForecaster, abc.ABC):
    """Base class of every model: see the module docstring.

    Subclasses set ``horizon`` and ``levels`` parameters and implement
    ``_lookback_for(lengths)``, ``_fit_arrays(train, val)`` and ``_predict_arrays(X, F)``;
    ``_uses_covariates`` and ``_standardize`` say whether the model reads covariates
    and whether it works on per-series standardised values.
    """

    _uses_covariates = False
    _standardize = False
    _fitted_meta = ("target_", "columns_", "known_", "calendar_", "freq_", "ids_", "last_ds_",
                    "lookback_", "horizon_", "levels_", "n_features_", "interval_mode_",
                    "calibration_")
    _fitted_arrays = ("history_", "series_loc_", "series_scale_", "cov_loc_", "cov_scale_",
                      "conformal_radius_", "conformal_pooled_", "series_vol_", "last_vol_")
    # added after format 1 files were written: missing in old files, read as None
    _optional_fitted = ("interval_mode_", "calibration_")

    # ---- hooks ---------------------------------------------------------------------------
    @abc.abstractmethod
    def _lookback_for(self, lengths: np.ndarray) -> int:
        """Implemented by every concrete subclass."""

    def _validation_fraction(self) -> float:
        """Share of each series held out for early stopping (given to `_fit_arrays`)."""
        return 0.0

    def _holdout_fraction(self) -> float:
        """Share of each series' rows held out from fitting to calibrate the intervals
        (the validation tail when there is one)."""
        return self._validation_fraction() or CALIBRATION_FRACTION

    _needs_training_windows = True

    @abc.abstractmethod
    def _fit_arrays(self, train: Batch, val: Batch | None) -> None:
        """Implemented by every concrete subclass."""

    @abc.abstractmethod
    def _predict_arrays(self, X: np.ndarray, F: np.ndarray | None) -> np.ndarray:
        """Implemented by every concrete subclass."""

    def _quantile_intervals(self, X, F, levels) -> dict | None:
        """Intervals from a quantile head, or None to use the conformal radii."""
        return None

    def _calendar(self, freq) -> tuple[str, ...]:
        """Calendar features to add as known-future covariates, for data of `freq`."""
        return ()

    # ---- array level ---------------------------------------------------------------------
    def _check_arrays(self, X, Y=None, F=None, fitting=False):
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 3 or X.shape[0] == 0 or X.shape[1] == 0 or X.shape[2] == 0:
            raise DataError(f"X must be (windows, lookback, features) with the target in "
                            f"column 0, got shape {X.shape}")
        if not fitting:
            check_is_fitted(self)
            if X.shape[1] != self.lookback_ or X.shape[2] != self.n_features_:
                raise DataError(f"X must have shape (windows, {self.lookback_}, "
                                f"{self.n_features_}) like the training windows, got {X.shape}")
        if Y is not None:
            Y = np.asarray(Y, dtype=np.float64)
            if Y.ndim != 2 or Y.shape[0] != X.shape[0]:
                raise DataError(f"Y must be (windows, horizon) with {X.shape[0]} windows, got "
                                f"shape {Y.shape}")
        if F is not None:
            F = np.asarray(F, dtype=np.float64)
            H = Y.shape[1] if Y is not None else self.horizon_
            if F.ndim != 3 or F.shape[:2] != (X.shape[0], H):
                raise DataError(f"X_future must be (windows, {H}, known features), got {F.shape}")
            if F.shape[2] == 0:
                F = None
        return X, Y, F

    def fit_windows(self, X, Y, X_future=None, *, validation=None) -> "Forecaster":
        """Fit on window arrays (already scaled as wanted). `validation` is ``(X, Y)`` or
        ``(X, Y, X_future)`` of later windows, for early stopping and calibration. With
        ``X_future (B, horizon, K)`` the last K columns of X are those known covariates."""
        X, Y, F = self._check_arrays(X, Y, X_future, fitting=True)
        val = None
        if validation is not None:
            parts = tuple(validation) + (None,) * (3 - len(validation))
            Xv, Yv, Fv = self._check_arrays(parts[0], parts[1], parts[2], fitting=True)
            if Xv.shape[1:] != X.shape[1:] or Yv.shape[1] != Y.shape[1]:
                raise DataError("validation windows must have the shape of the training windows")
            val = Batch(Xv, Yv, np.zeros(len(Xv), np.int64), np.zeros(len(Xv), np.int64), Fv)
        self._forget()
        for name in self._fitted_meta + self._fitted_arrays:
            setattr(self, name, None)
        self.lookback_, self.horizon_ = int(X.shape[1]), int(Y.shape[1])
        self.n_features_ = int(X.shape[2])
        self.known_ = () if F is None else tuple(f"known_{i}" for i in range(F.shape[2]))
        self.levels_ = check_levels(self.levels)
        train = Batch(X, Y, np.zeros(len(X), np.int64), np.zeros(len(X), np.int64), F)
        self._fit_arrays(train, val)
        self.fitted_ = True
        self._calibrate(train, val)
        return self

    def predict_windows(self, X, X_future=None) -> np.ndarray:
        """Point forecasts ``(B, horizon)`` for window arrays shaped like the training ones."""
        X, _, F = self._check_arrays(X, None, X_future)
        self._check_future(F)
        return self._predict_arrays(X, F)

    def predict_interval_windows(self, X, X_future=None, levels=None) -> dict:
        """``{level: (lower, upper)}`` bounds ``(B, horizon)`` for window arrays."""
        X, _, F = self._check_arrays(X, None, X_future)
        self._check_future(F)
        return self._intervals(X, F, self._levels(levels))[1]

    def _check_future(self, F) -> None:
        if self.known_ and F is None:
            raise DataError(f"this model was fitted with known-future covariates "
                            f"{list(self.known_)}; pass X_future (windows, horizon, "
                            f"{len(self.known_)})")

    def _levels(self, levels) -> tuple[float, ...]:
        levels = self.levels_ if levels is None else check_levels(levels)
        missing = [lv for lv in levels if lv not in self.levels_]
        if missing:
            raise ConfigError(f"interval level(s) {missing} were not calibrated; the model "
                              f"has {list(self.levels_)}: set levels= before fit")
        return levels

    def _intervals(self, X, F, levels, radius=None) -> tuple[np.ndarray, dict]:
        """Point forecasts and ``{level: (lower, upper)}`` in model space. `radius`
        ``(B, n_levels, horizon)`` holds each window's radii in model units (from
        `_series_radius`); ``None`` uses the window-array radii ``(n_levels, horizon)``."""
        point = self._predict_arrays(X, F)
        out = {}
        if levels:
            quant = self._quantile_intervals(X, F, levels)
            if quant is not None:
                return point, quant
            if radius is None and np.ndim(self.conformal_radius_) != 2:
                raise ConfigError("this model was calibrated per series on data: forecast with "
                                  "predict() or forecast_origins(), or fit it with fit_windows()")
            for lv in levels:
                j = list(self.levels_).index(lv)
                r = self.conformal_radius_[j] if radius is None else radius[:, j]
                out[lv] = (point - r, point + r)
        return point, out

    def _calibrate(self, train: Batch, val: Batch | None) -> None:
        """Window arrays (no series): conformal radii from the most recent (up to
        MAX_CALIBRATION) validation windows, else training windows, in the windows' units."""
        self.conformal_radius_ = self.conformal_pooled_ = None
        self.series_vol_ = self.last_vol_ = None
        self.interval_mode_, self.calibration_ = None, None
        if not self.levels_:
            return
        src = val if val is not None and len(val) else train
        k = np.arange(max(0, len(src) - MAX_CALIBRATION), len(src))
        fut = None if src.x_future is None else src.x_future[k]
        pred = self._predict_arrays(src.x[k], fut)
        self.conformal_radius_ = conformal_radii(src.y[k] - pred, self.levels_)
        self.interval_mode_ = "window"
        self.calibration_ = {"method": "split-conformal", "windows": [int(len(k))],
                             "source": "validation windows" if src is val else
                             "training windows (no validation given)"}

    def _series_radius(self, ids, local, gvol_data, scale) -> np.ndarray | None:
        """Radii ``(B, n_levels, horizon)`` in model units for windows of series `ids`:
        the series' radii in units of sigma times its volatility (`local` at the origin,
        or the fitted global one; `gvol_data` for series the model was not fitted on),
        divided by the model's scale. None for files written before per-series radii."""
        if self.conformal_radius_ is None or np.ndim(self.conformal_radius_) != 3:
            return None
        pos_of = {u: i for i, u in enumerate(self.ids_ or [])}
        pos = np.array([pos_of.get(_plain(u), -1) for u in ids], np.int64)
        known = pos >= 0
        R = np.where(known[:, None, None], self.conformal_radius_[np.maximum(pos, 0)],
                     self.conformal_pooled_[None])
        gvol = np.where(known, self.series_vol_[np.maximum(pos, 0)], gvol_data)
        gvol = np.where(np.isfinite(gvol) & (gvol > 0), gvol, 1.0)
        if self.interval_mode_ == "local":
            sigma = np.maximum(np.nan_to_num(np.asarray(local, np.float64), nan=0.0),
                               LOCAL_FLOOR * gvol)
        else:
            sigma = gvol
        return R * (sigma / np.asarray(scale, np.float64))[:, None, None]

    def _volatility_window(self) -> int:
        return int((self.calibration_ or {}).get("volatility_window") or 20)

    def _local_volatility(self, y, bounds, series, origins) -> np.ndarray:
        """`local_volatility` with the window and the seasonal period the model was
        calibrated with (files written before the period have none)."""
        period = (self.calibration_ or {}).get("volatility_period")
        return local_volatility(y, bounds, series, origins, self._volatility_window(),
                                float(period) if period else None, self.horizon_)

    # ---- data level ----------------------------------------------------------------------
    def _design(self, dataset: Dataset, fitting: bool) -> Design:
        calendar = self._calendar(dataset.freq) if fitting else tuple(self.calendar_ or ())
        if calendar:
            have = [c for c in dataset.covariates if c.split("_")[0] in CALENDAR_FEATURES.values()]
            if not have:
                dataset = add_calendar_features(dataset, calendar)
        if fitting:
            past = tuple(c for c in dataset.covariates if c not in dataset.known)
            cols = dataset.target + ((past + dataset.known) if self._uses_covariates else ())
        else:
            cols = tuple(self.columns_)
            missing = [c for c in cols[1:] if c not in dataset.frame.columns]
            if missing:
                raise DataError(f"the data lacks covariate column(s) {missing} that the model "
                                f"was fitted with; it has {list(dataset.frame.columns)}")
            if dataset.target[0] != cols[0]:
                dataset = replace(dataset, frame=dataset.frame.rename(
                    columns={dataset.target[0]: cols[0]}), target=(cols[0],))
        values = dataset.values(list(cols))
        return Design(dataset, values, dataset.bounds, dataset.ids, dataset.index, tuple(cols),
                      tuple(calendar))

    def fit(self, data, *, target=None, covariates=None, known=None) -> "Forecaster":
        """Fit on `data` (see the module docstring). `target` picks the column to forecast,
        `covariates` extra input columns, `known` those of them known in the future
        (their future values are passed to `predict` as ``future=``)."""
        dataset = as_dataset(data, target, covariates, known)
        design = self._design(dataset, fitting=True)
        ds = design.dataset
        self._forget()
        cols = tuple(design.columns)
        known_idx = tuple(cols.index(k) for k in ds.known if k in cols)
        bounds, values = design.bounds, design.values
        lengths = np.diff(bounds)
        lookback = int(self._lookback_for(lengths))
        horizon = self._horizon()
        for i, uid in enumerate(design.ids):
            require_length(int(lengths[i]), lookback, horizon, f"series {uid!r}")
        frac = self._holdout_fraction()
        n_val = (lengths * frac).astype(np.int64) if frac > 0 else np.zeros_like(lengths)
        a, b = bounds[:-1], bounds[1:]
        # scaling learnt from the training span only: the held-out tail cannot move it
        self._fit_scaling(values, np.stack([a, b - n_val], 1))
        loc, scale = self.series_loc_, self.series_scale_
        model = self._to_model(values, np.repeat(loc, lengths), np.repeat(scale, lengths))
        spec = WindowSpec(lookback, horizon, 1, targets=(0,), known=known_idx)
        train_w = Windows(model, spec, bounds=bounds, span=np.stack([a, b - n_val], 1))
        if len(train_w) == 0 and self._needs_training_windows:
            raise DataError(f"no complete training window of lookback {lookback} + horizon "
                            f"{horizon} without missing values before the calibration tail "
                            f"(the last {frac:.0%} of each series); give more data or shorten "
                            "them")
        val = None
        if n_val.sum() > 0:
            val_w = Windows(model, spec, bounds=bounds, span=np.stack([b - n_val, b], 1),
                            reach_back=True)
            val = val_w.materialize() if len(val_w) else None
        train = train_w.materialize()
        self.lookback_, self.horizon_, self.n_features_ = lookback, horizon, len(cols)
        self.target_, self.columns_ = cols[0], cols
        self.known_ = tuple(cols[i] for i in known_idx)
        self.calendar_ = design.calendar
        self.freq_ = ds.freq.alias
        self.ids_ = [_plain(u) for u in design.ids]
        self.levels_ = check_levels(self.levels)
        self.last_ds_ = [design.ds[int(e) - 1].isoformat() for e in b]
        self.history_ = np.stack([values[int(e) - lookback:int(e)] for e in b])
        self._fit_arrays(train, val if self._validation_fraction() > 0 else None)
        self.fitted_ = True
        self._calibrate_series(design, train, val, n_val, ds.freq)
        return self

    def _calibrate_series(self, design: Design, train: Batch, val: Batch | None, n_val,
                          freq: Frequency) -> None:
        """Per-series conformal radii from each series' held-out tail (see
        `forecast.models.intervals.calibrate_series`)."""
        self.conformal_radius_ = self.conformal_pooled_ = None
        self.series_vol_ = self.last_vol_ = None
        self.interval_mode_, self.calibration_ = None, None
        if not self.levels_:
            return
        y = design.values[:, 0]
        bounds = design.bounds
        S = len(bounds) - 1
        window = volatility_window(freq.season_length)
        period = volatility_period(freq)
        cal, source = val, "held-out tail"
        if cal is None or len(cal) == 0:
            cal, source = train, "training windows (the series are too short for a tail)"
        if len(cal) == 0:
            raise DataError("no window to calibrate the intervals on; give the model more "
                            "data or a shorter lookback / horizon")
        origins = cal.starts + self.lookback_
        pred = np.concatenate([self._predict_arrays(cal.x[i:i + 4096], _rows(cal.x_future, i))
                               for i in range(0, len(cal), 4096)])
        scale = self.series_scale_[cal.series]
        residuals = (cal.y - pred) * scale[:, None]
        # global volatility of each series over the part it was fitted on
        fit_end = bounds[1:] - np.asarray(n_val, np.int64)
        gvol = volatility(y, bounds, np.arange(S), np.maximum(fit_end, bounds[:-1] + 2), None)
        gvol = np.where(np.isfinite(gvol) & (gvol > 0), gvol, 1.0)
        local = local_volatility(y, bounds, cal.series, origins, window, period, self.horizon_)
        calib = calibrate_series(residuals, cal.series, origins, gvol, local, S, self.levels_)
        self.conformal_radius_, self.conformal_pooled_ = calib.radius, calib.pooled
        self.series_vol_ = gvol
        last = local_volatility(y, bounds, np.arange(S), bounds[1:], window, period,
                                self.horizon_)
        self.last_vol_ = np.where(np.isfinite(last), last, gvol)
        self.interval_mode_ = calib.mode
        self.calibration_ = {"method": "split-conformal per series", "source": source,
                             "volatility": calib.mode, "volatility_window": window,
                             "volatility_period": period,
                             "windows": [int(c) for c in calib.counts],
                             "pooled": [self.ids_[i] for i in np.flatnonzero(calib.uses_pooled)]}

    def _horizon(self) -> int:
        h = self.horizon
        if isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1:
            raise ConfigError(f"horizon must be a positive integer, got {h!r}")
        return int(h)

    def _fit_scaling(self, values, spans) -> None:
        """`series_loc_`, `series_scale_`, `cov_loc_`, `cov_scale_` from the rows `spans`
        (each series' training span) with `forecast.transforms.SeriesScaler`; the identity
        when the model does not standardise."""
        S, K = len(spans), values.shape[1] - 1
        if not self._standardize:
            self.series_loc_, self.series_scale_ = np.zeros(S), np.ones(S)
            self.cov_loc_, self.cov_scale_ = np.zeros(K), np.ones(K)
            return
        sc = SeriesScaler().fit(values, spans)
        self.series_loc_, self.series_scale_ = sc.loc_, sc.scale_
        self.cov_loc_, self.cov_scale_ = sc.cov_loc_, sc.cov_scale_

    def _to_model(self, raw, loc, scale):
        """Raw values ``(..., F)`` -> model space; `loc`/`scale` broadcast over the
        leading axis (one per row or per window)."""
        out = np.array(raw, dtype=np.float64)
        shape = (-1,) + (1,) * (out.ndim - 2)
        out[..., 0] = (out[..., 0] - np.reshape(loc, shape)) / np.reshape(scale, shape)
        if out.shape[-1] > 1:
            out[..., 1:] = (out[..., 1:] - self.cov_loc_) / self.cov_scale_
        return out

    def _known_to_model(self, raw_known):
        idx = [self.columns_.index(k) - 1 for k in self.known_]
        return (np.asarray(raw_known, np.float64) - self.cov_loc_[idx]) / self.cov_scale_[idx]

    def _series_params(self, ids) -> tuple[np.ndarray, np.ndarray]:
        if not self._standardize:
            return np.zeros(len(ids)), np.ones(len(ids))
        pos = {u: i for i, u in enumerate(self.ids_)}
        unknown = [u for u in ids if _plain(u) not in pos]
        if unknown:
            raise DataError(f"series {unknown[:5]} were not in the training data; this model "
                            f"scales each series it was fitted on ({self.ids_[:5]}...): refit "
                            "it with these series")
        idx = [pos[_plain(u)] for u in ids]
        return self.series_loc_[idx], self.series_scale_[idx]

    def _require_data_fit(self) -> None:
        check_is_fitted(self)
        if self.columns_ is None:
            raise NotFittedError(f"this {type(self).__name__} was fitted on window arrays; use "
                                 "predict_windows(), or fit(data) to forecast frames")

    def forecast_origins(self, dataset: Dataset, series: np.ndarray, rows: np.ndarray,
                         levels=None) -> tuple[np.ndarray, dict]:
        """Forecasts in original units from origins inside `dataset`: window ``k`` reads
        rows ``rows[k] - lookback .. rows[k] - 1`` of series ``series[k]`` (rows count
        from the series start) and forecasts the `horizon` rows from ``rows[k]``; known
        covariates over the horizon are read from the dataset. Used by backtests to
        predict many cut-offs in one batched pass."""
        self._require_data_fit()
        levels = self._levels(levels)
        design = self._design(dataset, fitting=False)
        L, H = self.lookback_, self.horizon_
        starts = design.bounds[np.asarray(series)] + np.asarray(rows)
        X = np.stack([design.values[s - L:s] for s in starts])
        loc, scale = self._series_params([design.ids[i] for i in series])
        F = None
        if self.known_:
            kcols = [self.columns_.index(k) for k in self.known_]
            F = np.stack([design.values[s:s + H][:, kcols] for s in starts])
            if F.shape[1] != H:
                raise DataError("known covariates are missing for part of the horizon")
            F = self._known_to_model(F)
        radius = None
        if levels:
            series = np.asarray(series, np.int64)
            y = design.values[:, 0]
            local = self._local_volatility(y, design.bounds, series, starts)
            gdata = volatility(y, design.bounds, series, starts, None)
            radius = self._series_radius([design.ids[i] for i in series], local, gdata, scale)
        return self._run(self._to_model(X, loc, scale), F, loc, scale, levels, radius)

    def _run(self, X, F, loc, scale, levels, radius=None):
        if not np.isfinite(X).all():
            raise DataError("the input window holds missing values; fill the gaps (gaps='fill' "
                            "when loading) or forecast from a later point")
        point, bounds = self._intervals(X, F, levels, radius)
        back = lambda z: z * scale[:, None] + loc[:, None]  # noqa: E731
        return back(point), {lv: (back(lo), back(hi)) for lv, (lo, hi) in bounds.items()}

    def predict(self, data=None, *, horizon=None, future=None, levels=None) -> pd.DataFrame:
        """Forecast the `horizon` (default: the fitted one) steps after the end of each
        series of `data` (default: the training data). `future` is a frame with ``ds``
        (and ``unique_id``) and the known-future covariates that are not calendar
        features. Returns ``unique_id, ds, yhat`` and the interval bounds."""
        self._require_data_fit()
        levels = self._levels(levels)
        H = self.horizon_ if horizon is None else int(horizon)
        if not 1 <= H <= self.horizon_:
            raise ConfigError(f"horizon must be between 1 and {self.horizon_} (the fitted "
                              f"horizon), got {horizon!r}")
        freq = Frequency(self.freq_)
        if data is None:
            ids, raw = list(self.ids_), np.asarray(self.history_)
            last = [pd.Timestamp(t) for t in self.last_ds_]
            local = self.last_vol_
            gdata = self.series_vol_
        else:
            cal = set(calendar_features(pd.DatetimeIndex([]), self.calendar_).columns)
            cov = [c for c in self.columns_[1:] if c not in cal] or None
            design = self._design(as_dataset(data, target=self.target_, covariates=cov),
                                  fitting=False)
            freq = design.dataset.freq
            ids, last, windows = design.ids, [], []
            for i, uid in enumerate(ids):
                a, b = design.bounds[i], design.bounds[i + 1]
                require_length(int(b - a), self.lookback_, 0, f"series {uid!r}")
                windows.append(design.values[b - self.lookback_:b])
                last.append(design.ds[b - 1])
            raw = np.stack(windows)
            y, S = design.values[:, 0], np.arange(len(ids))
            local = self._local_volatility(y, design.bounds, S, design.bounds[1:])
            gdata = volatility(y, design.bounds, S, design.bounds[1:], None)
        future_idx = [freq.future(t, self.horizon_) for t in last]
        loc, scale = self._series_params(ids)
        F = self._future_known(ids, future_idx, future) if self.known_ else None
        radius = self._series_radius(ids, local, gdata, scale) if levels else None
        point, bounds = self._run(self._to_model(raw, loc, scale), F, loc, scale, levels, radius)
        rows = []
        for i, uid in enumerate(ids):
            frame = {"unique_id": uid, "ds": future_idx[i][:H], "yhat": point[i, :H]}
            for lv, (lo, hi) in bounds.items():
                lname, uname = interval_columns(lv)
                frame[lname], frame[uname] = lo[i, :H], hi[i, :H]
            rows.append(pd.DataFrame(frame))
        return pd.concat(rows, ignore_index=True)

    def _future_known(self, ids, future_idx, future) -> np.ndarray:
        cal_cols = [k for k in self.known_ if k.split("_")[0] in CALENDAR_FEATURES.values()]
        other = [k for k in self.known_ if k not in cal_cols]
        out = np.zeros((len(ids), self.horizon_, len(self.known_)))
        for i, uid in enumerate(ids):
            idx = future_idx[i]
            if cal_cols:
                cal = calendar_features(idx, self.calendar_)
                for j, k in enumerate(self.known_):
                    if k in cal_cols:
                        out[i, :, j] = cal[k].to_numpy()
            if other:
                out[i][:, [self.known_.index(k) for k in other]] = \
                    _future_values(future, uid, idx, other, len(ids) > 1)
        return self._known_to_model(out)


def _future_values(future, uid, idx, cols, multi) -> np.ndarray:
    if future is None:
        raise DataError(f"the model uses known-future covariates {cols}; pass future= a frame "
                        f"with ds{', unique_id' if multi else ''} and {cols} for the "
                        f"{len(idx)} steps to forecast")
    frame = future
    if "unique_id" in frame.columns:
        frame = frame[frame["unique_id"] == uid]
    missing = [c for c in ["ds", *cols] if c not in frame.columns]
    if missing:
        raise DataError(f"future= lacks column(s) {missing}")
    table = frame.set_index(pd.DatetimeIndex(frame["ds"]))[cols]
    got = table.reindex(idx)
    if got.isna().any().any():
        miss = idx[got.isna().any(axis=1).to_numpy()]
        raise DataError(f"future= has no {cols} values for series {uid!r} at {list(miss[:3])}"
                        f"{' ...' if len(miss) > 3 else ''}; give every step to forecast")
    return got.to_numpy(dtype=np.float64)


def _rows(F, i):
    return None if F is None else F[i:i + 4096]


def _plain(u):
    """An id as a JSON-safe value."""
    if isinstance(u, (np.integer,)):
        return int(u)
    if isinstance(u, (int, str)):
        return u
    return str(u)
