"""`AutoForecaster` (``make_model("auto")``, ``--model auto``): chooses among the
recurrent cells and the baselines by an inner rolling-origin backtest on the training
span only, then fits the winner on the whole span.

Inner backtest: the last ``inner_share`` of each series' rows is cut into ``inner_folds``
blocks; for each block every candidate is fitted on the rows before it (so it never sees
the block) and forecasts from every ``max(1, horizon // 4)``-th origin in it. The score
is the MAE of those forecasts in units of each series' in-sample one-step naive MAE
(`forecast.metrics.naive_scale`), so every series weighs alike. The candidate with the
lowest score wins; baselines are candidates, so the choice is never worse than the best
baseline of that inner backtest (ties go to the earlier, simpler candidate in
``BASELINE_FIRST`` order). What was scored, skipped and chosen, and why, is kept in
``selection_`` (stored in the model file and shown in reports).

``forecast.metrics`` is a leaf module of plain numpy functions; this model imports it so
that its scores are the same numbers every other table shows (a deliberate exception to
the layer map, which lists metrics after models).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from forecast import metrics
from forecast.errors import ConfigError, DataError
from forecast.models.base import check_is_fitted, model_from_state
from forecast.models.forecaster import Forecaster, as_dataset

__all__ = ["AutoForecaster", "DEFAULT_CANDIDATES", "BASELINE_NAMES"]

DEFAULT_CANDIDATES = ("naive", "seasonal_naive", "drift", "linear", "gru", "lstm")
BASELINE_NAMES = ("naive", "seasonal_naive", "drift", "mean", "linear", "nlinear")
RECURRENT_NAMES = ("gru", "lstm", "rnn")


class AutoForecaster(Forecaster):
    """Chooses a model per fit (see the module docstring).

    candidates: short model names (`forecast.models.MODEL_NAMES`, not ``auto``).
    inner_folds, inner_share: the inner backtest's blocks and the share of the training
        span they cover. lookback, n_hidden, max_epochs, random_state: passed to the
        candidates that take them (``None`` keeps each model's default; ``lookback`` is
        also the linear candidate's). callback: the recurrent candidates' epoch callback.
    """

    _transient_params = ("callback",)
    _fitted_meta = Forecaster._fitted_meta + ("choice_", "selection_", "inner_meta_")
    _fitted_arrays = ()

    def __init__(self, candidates=DEFAULT_CANDIDATES, horizon: int = 24, levels=(80, 95),
                 inner_folds: int = 2, inner_share: float = 0.3, lookback: int | None = None,
                 n_hidden: int | None = None, max_epochs: int | None = None,
                 random_state: int = 0, callback=None):
        self.candidates = candidates
        self.horizon = horizon
        self.levels = levels
        self.inner_folds = inner_folds
        self.inner_share = inner_share
        self.lookback = lookback
        self.n_hidden = n_hidden
        self.max_epochs = max_epochs
        self.random_state = random_state
        self.callback = callback

    # attributes of the chosen model (lookback_, ids_, calibration_, ...) read through
    def __getattr__(self, name):
        inner = self.__dict__.get("model_")
        if inner is not None and name.endswith("_") and not name.startswith("__"):
            return getattr(inner, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # ---- Forecaster hooks (the chosen model does the work) ---------------------------------
    def _lookback_for(self, lengths):
        raise ConfigError("AutoForecaster chooses its model on data; use fit(data)")

    def _fit_arrays(self, train, val):
        raise ConfigError("AutoForecaster chooses its model on data; use fit(data)")

    def _predict_arrays(self, X, F):
        return self.model_._predict_arrays(X, F)

    def fit_windows(self, X, Y, X_future=None, *, validation=None):
        raise ConfigError("AutoForecaster chooses its model by a backtest on a series; call "
                          "fit(data) with a frame or Dataset, not window arrays")

    # ---- candidates ------------------------------------------------------------------------
    def _names(self) -> tuple[str, ...]:
        from forecast.models import MODEL_NAMES

        names = (self.candidates,) if isinstance(self.candidates, str) else tuple(self.candidates)
        if not names:
            raise ConfigError("candidates is empty; give model names such as gru,naive")
        bad = [n for n in names if n not in MODEL_NAMES or n == "auto"]
        if bad:
            raise ConfigError(f"unknown candidate model(s) {bad}; choose from "
                              f"{', '.join(n for n in MODEL_NAMES if n != 'auto')}")
        if not any(n in BASELINE_NAMES for n in names):
            raise ConfigError("candidates need at least one baseline (e.g. naive), so the "
                              "choice is never worse than a baseline")
        return tuple(dict.fromkeys(names))

    def _candidate(self, name: str, levels):
        from forecast.models import MODEL_NAMES, make_model

        klass, _ = MODEL_NAMES[name]
        accepted = set(klass._param_names())
        params = {"horizon": self._horizon(), "levels": levels}
        extra = {"lookback": self.lookback, "n_hidden": self.n_hidden,
                 "max_epochs": self.max_epochs, "random_state": self.random_state,
                 "callback": self.callback}
        if name in ("linear", "nlinear") and self.lookback is None:
            extra["lookback"] = 96  # the recurrent default, so short series still fit
        params.update({k: v for k, v in extra.items() if v is not None and k in accepted})
        return make_model(name, **params)

    # ---- fit -------------------------------------------------------------------------------
    def fit(self, data, *, target=None, covariates=None, known=None) -> "AutoForecaster":
        """Score every candidate by the inner backtest, then fit the winner on `data`."""
        dataset = as_dataset(data, target, covariates, known)
        names = self._names()
        folds = self.inner_folds
        if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or folds < 1:
            raise ConfigError(f"inner_folds must be a positive integer, got {folds!r}")
        share = self.inner_share
        if not (isinstance(share, (int, float)) and 0 < share < 1):
            raise ConfigError(f"inner_share must be in (0, 1), got {share!r}")
        self._forget()
        H = self._horizon()
        scores, skipped = self._inner_backtest(dataset, names, int(folds), float(share), H)
        if not scores:
            raise DataError(f"no candidate could be fitted in the inner backtest: {skipped}")
        order = sorted(scores, key=lambda n: (scores[n], names.index(n)))
        choice = order[0]
        base = [n for n in order if n in BASELINE_NAMES]
        best_base = base[0] if base else None
        model = self._candidate(choice, self.levels)
        model.fit(dataset)
        self.model_ = model
        self.choice_ = choice
        self.inner_meta_ = None
        self.selection_ = {
            "chosen": choice,
            "metric": "MAE in units of each series' in-sample one-step naive MAE",
            "inner_folds": int(folds), "inner_share": float(share),
            "scores": {n: round(float(scores[n]), 6) for n in names if n in scores},
            "skipped": skipped, "best_baseline": best_base,
            "reason": _reason(choice, scores, best_base)}
        self.fitted_ = True
        return self

    def _inner_backtest(self, dataset, names, folds, share, H):
        b = dataset.bounds
        lengths = np.diff(b)
        span = np.maximum((lengths * share).astype(np.int64), folds * H)
        block = span // folds
        stride = max(1, H // 4)
        y = dataset.frame[dataset.target[0]].to_numpy(np.float64)
        errors = {n: [] for n in names}
        skipped = {}
        for k in range(folds):
            cut = lengths - span + k * block
            end = np.where(k == folds - 1, lengths, cut + block)
            if (cut < 2 * H).any():
                raise DataError(f"the series are too short for an inner backtest of {folds} "
                                f"blocks of horizon {H}; give more data or use a plain model")
            train = _truncate(dataset, cut)
            series, rows, scale = [], [], []
            for i in range(len(lengths)):
                r = np.arange(cut[i], min(end[i], lengths[i]) - H + 1, stride)
                series.append(np.full(len(r), i))
                rows.append(r)
                sc = metrics.naive_scale(y[b[i]:b[i] + cut[i]], 1)
                scale.append(np.full(len(r), sc if sc > 0 else 1.0))
            series, rows = np.concatenate(series), np.concatenate(rows)
            scale = np.concatenate(scale)
            if not rows.size:
                continue
            idx = (b[series] + rows)[:, None] + np.arange(H)[None, :]
            truth = y[idx] / scale[:, None]
            for name in names:
                if name in skipped:
                    continue
                try:
                    model = self._candidate(name, ())
                    model.fit(train)
                    point, _ = model.forecast_origins(dataset, series, rows, levels=())
                except (DataError, ConfigError) as exc:
                    skipped[name] = str(exc)
                    continue
                errors[name].append((truth, point / scale[:, None]))
        scores = {}
        for name, parts in errors.items():
            if name in skipped or not parts:
                continue
            t = np.concatenate([p[0] for p in parts])
            p = np.concatenate([p[1] for p in parts])
            scores[name] = metrics.forecast_metrics(t, p)["mae"]
        return scores, skipped

    # ---- forecasting: the chosen model -------------------------------------------------------
    def predict(self, data=None, **kw) -> pd.DataFrame:
        check_is_fitted(self)
        return self.model_.predict(data, **kw)

    def forecast_origins(self, dataset, series, rows, levels=None):
        check_is_fitted(self)
        return self.model_.forecast_origins(dataset, series, rows, levels)

    def predict_windows(self, X, X_future=None):
        check_is_fitted(self)
        return self.model_.predict_windows(X, X_future)

    def predict_interval_windows(self, X, X_future=None, levels=None):
        check_is_fitted(self)
        return self.model_.predict_interval_windows(X, X_future, levels)

    # ---- state -------------------------------------------------------------------------------
    def to_state(self):
        if self.is_fitted:
            self.inner_meta_, inner_arrays = self.model_.to_state()
        meta, arrays = super().to_state()
        if self.is_fitted:
            arrays.update({f"inner__{k}": v for k, v in inner_arrays.items()})
            self.inner_meta_ = None
        return meta, arrays

    def _restore_state(self, arrays) -> None:
        inner = {k[len("inner__"):]: v for k, v in arrays.items() if k.startswith("inner__")}
        self.model_ = model_from_state(self.inner_meta_, inner)
        self.inner_meta_ = None


def _truncate(dataset, cut):
    b = dataset.bounds
    parts = [dataset.frame.iloc[b[i]:b[i] + cut[i]] for i in range(len(b) - 1)]
    return replace(dataset, frame=pd.concat(parts, ignore_index=True))


def _reason(choice, scores, best_base) -> str:
    s = scores[choice]
    if choice in BASELINE_NAMES:
        others = [n for n in scores if n in RECURRENT_NAMES]
        if others:
            r = min(others, key=lambda n: scores[n])
            return (f"{choice} had the lowest inner-backtest error ({s:.4g}); the best "
                    f"recurrent model, {r}, scored {scores[r]:.4g}, so a network is not worth it "
                    "on this series")
        return f"{choice} had the lowest inner-backtest error ({s:.4g})"
    return (f"{choice} had the lowest inner-backtest error ({s:.4g}), "
            f"{(1 - s / scores[best_base]):.1%} below the best baseline, {best_base} "
            f"({scores[best_base]:.4g})" if best_base else
            f"{choice} had the lowest inner-backtest error ({s:.4g})")
