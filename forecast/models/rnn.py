"""`RNNForecaster`: Elman RNN / LSTM / GRU forecasters on the hand-written kernels.

>>> from forecast.models import RNNForecaster
>>> model = RNNForecaster(cell="gru", n_hidden=32, lookback=96, horizon=24,
...                       levels=(80, 95), random_state=0).fit(dataset)   # doctest: +SKIP
>>> model.predict()            # unique_id, ds, yhat, yhat_lower_80, ... # doctest: +SKIP

Strategies: ``direct`` (one head emits every horizon step; default), ``recursive`` (a
one-step model rolled forward from a seed window, feeding its forecasts back) and
``seq2seq`` (encoder-decoder). Several series are fitted as one global model; each
series is standardised with the mean and standard deviation of its training rows (the
validation tail left out: `forecast.transforms.SeriesScaler`), then each window is
normalised (``normalize``): ``"last"`` subtracts the window's last value (as NLinear),
``"instance"`` its mean and standard deviation (as RevIN), ``"none"`` nothing.

Training: shuffled mini-batches, Adam with gradient clipping and a learning-rate
schedule, early stopping on a chronological validation split (the last
``validation_fraction`` of each series) with the best weights restored, and a
``callback(EpochInfo)`` after every epoch. The library never prints; the CLI turns the
callback into a progress bar.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd

from forecast.errors import ConfigError, NumericalError
from forecast.models._linear_start import (fit_linear_start, persistence_start,
                                           random_walk_note, set_linear_start)
from forecast.models._net import NetConfig, SeqNet
from forecast.models._training import EpochInfo, TrainConfig, _choice, _int, lr_at
from forecast.models.base import check_is_fitted
from forecast.models.forecaster import Forecaster, as_dataset
from forecast.models.intervals import quantiles_for_levels
from forecast.nn import ACTIVATIONS, CELLS
from forecast.transforms import default_calendar_features

__all__ = ["RNNForecaster", "EpochInfo", "TrainConfig", "STRATEGIES", "NORMALIZATIONS",
           "LOSSES", "SCHEDULES"]

STRATEGIES = ("direct", "recursive", "seq2seq")
NORMALIZATIONS = ("none", "last", "instance")
LOSSES = ("mse", "mae", "huber", "quantile")
SCHEDULES = ("constant", "cosine", "exponential")
EVAL_BATCH = 1024


class RNNForecaster(Forecaster):
    """A recurrent forecaster (see the module docstring).

    Architecture: ``cell`` (``rnn``, ``lstm``, ``gru``), ``n_hidden``, ``n_layers``,
    ``activation`` (Elman RNN only), ``lookback``, ``horizon``, ``strategy``,
    ``highway`` (the number of last target values in a linear shortcut; ``None``, the
    default: the whole lookback; 0: off),
    ``highway_init`` (``"ols"``: start from a ridge regression of the normalised target
    on the highway lags, with the recurrent head at zero, so training learns the residual;
    with the level and the known-future covariates too when they help on the validation
    windows, see `forecast.models._linear_start`; ``"zeros"``: start it at zero),
    ``level`` (``"auto"``: the window's level joins the highway when the validation
    windows say so; True / False: always / never),
    ``null_z`` (the random walk is the null hypothesis: with ``normalize="last"`` the
    linear start must beat persistence out of sample, cross-validated over the training
    and validation windows, by this many standard errors, else the start is persistence
    and the model forecasts the last value: no network is trained from it, except a
    quantile head (kept as trained) or a direction head (the point forecast stays the
    last value); see `forecast.models._linear_start`. None or False: off).
    Data: ``normalize``, ``calendar`` (add hour / weekday / day-of-year features as
    known-future covariates: True, the default, picks them from the frequency; False or
    a list of names), ``use_covariates``.
    Loss: ``loss`` (``mse``, ``mae``, ``huber`` with ``huber_delta``, ``quantile``: a
    pinball-loss head emitting the median and both ends of every interval level plus any
    extra ``quantiles``, never crossing). Training: ``max_epochs``, ``batch_size``,
    ``lr``, ``lr_schedule`` (``constant``, ``cosine``, ``exponential`` by ``lr_decay``
    per epoch), ``weight_decay``, ``clip_norm``, ``patience`` (epochs without a better
    validation loss before stopping), ``validation_fraction``, ``warm_start`` (a new fit
    starts from the current weights), ``dtype``, ``random_state``, ``callback``.
    Direction head (price series): ``direction=True`` adds a softmax over down / flat /
    up for the move from the last value to step ``direction_step``; moves smaller than
    ``direction_threshold`` times the median absolute training move count as flat.
    """

    _standardize = True
    _transient_params = ("callback",)
    _fitted_meta = Forecaster._fitted_meta + ("quantiles_", "net_config_", "n_epochs_",
                                              "best_epoch_", "direction_cut_", "history_loss_",
                                              "linear_start_")
    _optional_fitted = Forecaster._optional_fitted + ("linear_start_",)
    _fitted_arrays = Forecaster._fitted_arrays + ("enc_params_", "dec_params_", "head_params_")

    def __init__(self, cell: str = "gru", n_hidden: int = 32, n_layers: int = 1,
                 lookback: int = 96, horizon: int = 24, strategy: str = "direct",
                 normalize: str = "last", loss: str = "mse", quantiles=None,
                 huber_delta: float = 1.0, highway: int | None = None,
                 highway_init: str = "ols", level="auto", null_z: float | None = 2.0,
                 calendar=True,
                 use_covariates: bool = True, direction: bool = False, direction_step: int = 1,
                 direction_threshold: float = 0.25, direction_weight: float = 1.0,
                 max_epochs: int = 20, batch_size: int = 64, lr: float = 1e-3,
                 lr_schedule: str = "constant", lr_decay: float = 0.5,
                 weight_decay: float = 0.0, clip_norm: float | None = 1.0, patience: int = 3,
                 validation_fraction: float = 0.2, warm_start: bool = False,
                 activation: str = "tanh", dtype: str = "float32", levels=(80, 95),
                 random_state: int = 0, callback=None):
        self.cell = cell
        self.n_hidden = n_hidden
        self.n_layers = n_layers
        self.lookback = lookback
        self.horizon = horizon
        self.strategy = strategy
        self.normalize = normalize
        self.loss = loss
        self.quantiles = quantiles
        self.huber_delta = huber_delta
        self.highway = highway
        self.highway_init = highway_init
        self.level = level
        self.null_z = null_z
        self.calendar = calendar
        self.use_covariates = use_covariates
        self.direction = direction
        self.direction_step = direction_step
        self.direction_threshold = direction_threshold
        self.direction_weight = direction_weight
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.lr_decay = lr_decay
        self.weight_decay = weight_decay
        self.clip_norm = clip_norm
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.warm_start = warm_start
        self.activation = activation
        self.dtype = dtype
        self.levels = levels
        self.random_state = random_state
        self.callback = callback

    # ---- Forecaster hooks ----------------------------------------------------------------
    @property
    def _uses_covariates(self) -> bool:  # type: ignore[override]
        return bool(self.use_covariates)

    def _lookback_for(self, lengths):
        return _int("lookback", self.lookback)

    def _validation_fraction(self) -> float:
        f = self.validation_fraction
        if not (isinstance(f, (int, float)) and 0 <= f < 1):
            raise ConfigError(f"validation_fraction must be in [0, 1), got {f!r}")
        return float(f)

    def _calendar(self, freq) -> tuple[str, ...]:
        if self.calendar is True:
            return default_calendar_features(freq)
        if not self.calendar:
            return ()
        return tuple([self.calendar] if isinstance(self.calendar, str) else self.calendar)

    def fit(self, data, **kw) -> "RNNForecaster":
        """Fit on a Dataset or frame (see `Forecaster.fit`); with ``warm_start=True`` and a
        previous fit, training continues from the current weights."""
        self._warm = self._warm_state()
        return super().fit(data, **kw)

    def fit_windows(self, X, Y, X_future=None, *, validation=None) -> "RNNForecaster":
        self._warm = self._warm_state()
        return super().fit_windows(X, Y, X_future, validation=validation)

    def _warm_state(self):
        if self.warm_start and self.is_fitted and getattr(self, "enc_params_", None) is not None:
            return {"enc_params": self.enc_params_, "dec_params": self.dec_params_,
                    "head_params": self.head_params_, "config": self.net_config_,
                    "linear_start": getattr(self, "linear_start_", None)}
        return None

    # ---- configuration -------------------------------------------------------------------
    def _train_config(self) -> TrainConfig:
        clip = self.clip_norm
        if clip is not None and not (isinstance(clip, (int, float)) and clip > 0):
            raise ConfigError(f"clip_norm must be positive or None, got {clip!r}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"lr must be a positive number, got {self.lr!r}")
        if not (isinstance(self.lr_decay, (int, float)) and 0 < self.lr_decay <= 1):
            raise ConfigError(f"lr_decay must be in (0, 1], got {self.lr_decay!r}")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if not self.huber_delta > 0:
            raise ConfigError(f"huber_delta must be positive, got {self.huber_delta!r}")
        return TrainConfig(_int("max_epochs", self.max_epochs), _int("batch_size", self.batch_size),
                           float(self.lr), _choice("lr_schedule", self.lr_schedule, SCHEDULES),
                           float(self.lr_decay), float(self.weight_decay),
                           None if clip is None else float(clip), _int("patience", self.patience, 0),
                           _choice("loss", self.loss, LOSSES), float(self.huber_delta),
                           float(self.direction_weight))

    def _net_config(self, n_input: int, horizon: int, n_known: int,
                    level: bool = False) -> NetConfig:
        _choice("cell", self.cell, tuple(CELLS))
        _choice("strategy", self.strategy, STRATEGIES)
        _choice("normalize", self.normalize, NORMALIZATIONS)
        _choice("activation", self.activation, tuple(ACTIVATIONS))
        _choice("dtype", str(self.dtype), ("float32", "float64"))
        if self.cell != "rnn" and self.activation != "tanh":
            raise ConfigError(f"activation={self.activation!r} applies to cell='rnn' only")
        highway = self.lookback_ if self.highway is None else _int("highway", self.highway, 0)
        if highway > self.lookback_:
            raise ConfigError(f"highway={highway} is longer than the lookback {self.lookback_}")
        if self.direction:
            step = _int("direction_step", self.direction_step)
            if step > horizon:
                raise ConfigError(f"direction_step={step} is beyond the horizon {horizon}")
        q = self.quantiles_
        return NetConfig(self.cell, n_input, _int("n_hidden", self.n_hidden),
                         _int("n_layers", self.n_layers), horizon, n_known, self.strategy,
                         len(q) if q else 1, q.index(0.5) if q else 0, highway,
                         bool(level) and highway > 0, bool(self.direction), self.activation,
                         str(self.dtype))

    # ---- per-window normalisation --------------------------------------------------------
    def _norm(self, X):
        """Offsets and scales ``(B, 1)`` of each window's target (column 0)."""
        y = X[:, :, 0]
        if self.normalize == "last":
            return y[:, -1:].copy(), np.ones((len(X), 1))
        if self.normalize == "instance":
            m = y.mean(axis=1, keepdims=True)
            s = y.std(axis=1, keepdims=True)
            return m, np.where(s > 1e-5, s, 1.0)
        return np.zeros((len(X), 1)), np.ones((len(X), 1))

    def _inputs(self, X):
        off, sc = self._norm(X)
        Xn = np.array(X, dtype=np.float64)
        Xn[:, :, 0] = (Xn[:, :, 0] - off) / sc
        A = self.net_config_["highway"]
        hw = self._lags(X, off, sc, A) if A else None
        if A and self.net_config_.get("level"):
            hw = np.concatenate([hw, off], axis=1)
        return Xn, off, sc, hw

    @staticmethod
    def _lags(X, off, sc, A):
        """The last `A` target values of each window, normalised: the highway's inputs."""
        return (np.asarray(X[:, -A:, 0], np.float64) - off) / sc

    # ---- training ------------------------------------------------------------------------
    def _fit_arrays(self, train, val) -> None:
        tc = self._train_config()
        self.lookback_ = train.x.shape[1]
        if self.loss == "quantile":
            self.quantiles_ = quantiles_for_levels(self.levels, self.quantiles)
        else:
            self.quantiles_ = None
        K = 0 if train.x_future is None else train.x_future.shape[2]
        H = train.y.shape[1]
        self.net_config_ = self._net_config(train.x.shape[2], H, K).__dict__.copy()
        warm = getattr(self, "_warm", None)
        _choice("highway_init", self.highway_init, ("ols", "zeros"))
        _choice("level", self.level, ("auto", True, False))
        # a warm refit keeps the record of the start it continues from
        start = None
        self.linear_start_ = dict(warm["linear_start"]) if warm and warm.get("linear_start") \
            else None
        if self.net_config_["highway"] and self.highway_init == "ols":
            if warm is not None:  # a warm refit keeps the choice of the fit it continues
                level = bool(warm["config"].get("level"))
            else:
                start = self._linear_start(train, val)
                level = start.level is not None
        else:
            level = self.level is True
        cfg = self._net_config(train.x.shape[2], H, K, level)
        self.net_config_ = cfg.__dict__.copy()
        seed = self.random_state if self.random_state is not None else 0
        self._net = SeqNet(cfg, int(seed))
        if warm is not None and warm["config"] == self.net_config_:
            self._net.set_arrays(warm)
        if self.direction:
            step = int(self.direction_step) - 1
            moves = np.abs(train.y[:, step] - train.x[:, -1, 0])
            self.direction_cut_ = float(self.direction_threshold * np.median(moves))
        else:
            self.direction_cut_ = None
        rng = np.random.default_rng(seed)
        Xn, off, sc, hw = self._inputs(train.x)
        Yn = (train.y - off) / sc
        if start is not None:
            set_linear_start(self._net.views(), start, self.net_config_["highway"],
                             self.net_config_["n_quantiles"], self.strategy)
        best, best_epoch, bad = np.inf, 0, 0
        if val is not None:
            Xv, offv, scv, hwv = self._inputs(val.x)
            Yv = (val.y - offv) / scv
            if hw is not None and self.highway_init == "ols":  # the linear start is epoch 0
                best = self._evaluate(Xv, Yv, val.x_future, hwv,
                                      self._dir_labels(val.x, val.y), tc)
        best_arrays = self._net.get_arrays()
        history = []
        t0 = time.perf_counter()
        n = len(Xn)
        # a random-walk start holds the point forecast at the last value (`_hold`): no
        # network is trained from it unless a quantile or direction head needs training
        walk = bool((self.linear_start_ or {}).get("random_walk"))
        hold = walk and self.loss != "quantile"
        for epoch in range(0 if hold and not self.direction else tc.max_epochs):
            lr = lr_at(tc, epoch)
            order = rng.permutation(n)
            total = 0.0
            for i in range(0, n, tc.batch_size):
                k = order[i:i + tc.batch_size]
                loss, grads = self._loss_grad(Xn[k], Yn[k], _take(train.x_future, k),
                                              None if hw is None else hw[k],
                                              self._dir_labels(train.x[k], train.y[k]), tc)
                self._net.step(grads, lr, tc.weight_decay, tc.clip_norm)
                total += loss * len(k)
            train_loss = total / n
            val_loss = None
            if val is not None:
                val_loss = self._evaluate(Xv, Yv, val.x_future, hwv,
                                          self._dir_labels(val.x, val.y), tc)
            score = val_loss if val_loss is not None else train_loss
            if not np.isfinite(score):
                raise NumericalError(f"the loss is {score} at epoch {epoch + 1}: training "
                                     "diverged (lower lr or set clip_norm)")
            if score < best - 1e-12:
                best, best_epoch, bad = score, epoch + 1, 0
                best_arrays = self._net.get_arrays()
            else:
                bad += 1
            stop = val is not None and bad > tc.patience
            history.append([train_loss, val_loss])
            if self.callback is not None:
                self.callback(EpochInfo(epoch + 1, tc.max_epochs, float(train_loss),
                                        None if val_loss is None else float(val_loss),
                                        time.perf_counter() - t0, lr, best_epoch, stop))
            if stop:
                break
        self._net.set_arrays(best_arrays)
        self.n_epochs_, self.best_epoch_ = len(history), best_epoch
        self.history_loss_ = history
        if walk:
            self._hold(hold)
        self._store_net()

    def _null_z(self) -> float | None:
        z = self.null_z
        if z is None or z is False:  # False: off too (TOML batch files have no None)
            return None
        if isinstance(z, bool) or not isinstance(z, (int, float)) or not np.isfinite(z):
            raise ConfigError(f"null_z must be a finite number, or None / false to turn the "
                              f"random-walk test off, got {z!r}")
        return float(z)

    def _hold(self, hold: bool) -> None:
        """After a fit from the random-walk start: with `hold` the point head is set back to
        persistence (a direction head keeps its training); the record says what was done
        (`forecast.models._linear_start.random_walk_note`)."""
        if hold:
            A = self.net_config_["highway"]
            S = self._target_steps(np.zeros((1, self.horizon_))).shape[1]
            set_linear_start(self._net.views(), persistence_start(S, A, None, None), A,
                             self.net_config_["n_quantiles"], self.strategy)
            self.best_epoch_ = 0
        random_walk_note(self.linear_start_, self._null_z(), hold, bool(self.direction))

    def _linear_start(self, train, val):
        """Choose and fit the linear start (`forecast.models._linear_start`) on the training
        windows, scored on the validation windows; records the choice in
        ``linear_start_``."""
        levels = {"auto": (False, True), True: (True,), False: (False,)}[self.level]
        A = self.net_config_["highway"]

        def parts(batch):  # the normalised lags only, without copying the whole windows
            off, sc = self._norm(batch.x)
            return (self._lags(batch.x, off, sc, A), off[:, 0], batch.x_future,
                    self._target_steps((batch.y - off) / sc))

        tr = parts(train)
        knowns = (False,) if self.strategy == "seq2seq" else (False, True)
        null_z = self._null_z() if self.normalize == "last" else None
        start = fit_linear_start(*tr, validation=None if val is None else parts(val),
                                 levels=levels, knowns=knowns, null_z=null_z,
                                 block=train.y.shape[1])
        self.linear_start_ = start.summary()
        return start

    def _dir_labels(self, X, Y):
        if not self.direction:
            return None
        move = Y[:, int(self.direction_step) - 1] - X[:, -1, 0]
        return np.where(move > self.direction_cut_, 2, np.where(move < -self.direction_cut_, 0, 1))

    def _target_steps(self, Y):
        return Y[:, :1] if self.strategy == "recursive" else Y

    def _loss_value(self, out, Y, tc, want_grad):
        """Mean loss over windows and steps, and its gradient w.r.t. ``out (B, S, Q)``."""
        Y = self._target_steps(Y)
        if tc.loss == "quantile":
            q = np.asarray(self.quantiles_)
            diff = Y[:, :, None] - out
            value = float(np.mean(np.maximum(q * diff, (q - 1) * diff)))
            d = np.where(diff > 0, -q, 1 - q) / diff.size if want_grad else None
            return value, d
        err = out[:, :, 0] - Y
        N = err.size
        if tc.loss == "mse":
            value, d = float(np.mean(err ** 2)), 2 * err / N
        elif tc.loss == "mae":
            value, d = float(np.mean(np.abs(err))), np.sign(err) / N
        else:
            a = np.abs(err)
            dl = tc.huber_delta
            value = float(np.mean(np.where(a <= dl, 0.5 * err ** 2, dl * (a - 0.5 * dl))))
            d = np.clip(err, -dl, dl) / N
        return value, (d[:, :, None] if want_grad else None)

    @staticmethod
    def _softmax(logits):
        z = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def _loss_grad(self, X, Y, F, hw, labels, tc):
        out, logits, cache = self._net.forward(X, F, hw)
        value, dout = self._loss_value(out, Y, tc, True)
        dlogits = None
        if labels is not None:
            p = self._softmax(logits.astype(np.float64))
            B = len(labels)
            value += tc.direction_weight * float(-np.mean(np.log(p[np.arange(B), labels] + 1e-12)))
            p[np.arange(B), labels] -= 1.0
            dlogits = (tc.direction_weight * p / B).astype(out.dtype)
        return value, self._net.backward(cache, dout, dlogits)

    def _evaluate(self, X, Y, F, hw, labels, tc) -> float:
        total = 0.0
        for i in range(0, len(X), EVAL_BATCH):
            s = slice(i, i + EVAL_BATCH)
            out, logits, _ = self._net.forward(X[s], _take(F, s), None if hw is None else hw[s],
                                               keep_cache=False)
            v, _ = self._loss_value(out.astype(np.float64), Y[s], tc, False)
            if labels is not None:
                p = self._softmax(logits.astype(np.float64))
                lab = labels[s]
                v += tc.direction_weight * float(-np.mean(np.log(p[np.arange(len(lab)), lab] + 1e-12)))
            total += v * len(X[s])
        return total / len(X)

    # ---- state ---------------------------------------------------------------------------
    def _store_net(self) -> None:
        arrays = self._net.get_arrays()
        self.enc_params_ = arrays["enc_params"]
        self.head_params_ = arrays["head_params"]
        self.dec_params_ = arrays.get("dec_params")

    def _restore(self) -> None:
        cfg = NetConfig(**self.net_config_)
        self._net = SeqNet(cfg, 0)
        arrays = {"enc_params": self.enc_params_, "head_params": self.head_params_}
        if self.dec_params_ is not None:
            arrays["dec_params"] = self.dec_params_
        self._net.set_arrays(arrays)
        if self.quantiles_ is not None:
            self.quantiles_ = tuple(self.quantiles_)

    def _get_net(self) -> SeqNet:
        check_is_fitted(self)
        if getattr(self, "_net", None) is None:
            self._restore()
        return self._net

    # ---- prediction ----------------------------------------------------------------------
    def _raw_outputs(self, X, F) -> tuple[np.ndarray, np.ndarray | None]:
        """``(B, horizon, Q)`` forecasts in model space and direction logits."""
        net = self._get_net()
        Xn, off, sc, hw = self._inputs(X)
        outs, logits = [], []
        H = self.horizon_
        for i in range(0, len(X), EVAL_BATCH):
            s = slice(i, i + EVAL_BATCH)
            Fs = _take(F, s)
            if self.strategy == "recursive":
                out = net.rollout(Xn[s], Fs, None if hw is None else hw[s], H,
                                  self._feeder(Xn[s], Fs))
                lg = net.forward(Xn[s], Fs, None if hw is None else hw[s], keep_cache=False)[1]
            else:
                out, lg, _ = net.forward(Xn[s], Fs, None if hw is None else hw[s],
                                         keep_cache=False)
            outs.append(out.astype(np.float64))
            logits.append(lg)
        out = np.concatenate(outs)
        out = out * sc[:, :, None] + off[:, :, None]
        lg = np.concatenate(logits).astype(np.float64) if self.direction else None
        return out, lg

    def _feeder(self, Xn, F):
        """Next input rows for recursive generation: the forecast as the target, past-only
        covariates held at their last value, known covariates of the next step."""
        last = Xn[:, -1, :].copy()
        K = 0 if F is None else F.shape[2]

        def feed(k, point):
            row = last.copy()
            row[:, 0] = point
            if K:
                row[:, -K:] = F[:, k]
            return row
        return feed

    def _predict_arrays(self, X, F):
        out, _ = self._raw_outputs(X, F)
        return out[:, :, self.net_config_["median_index"]]

    def _quantile_intervals(self, X, F, levels):
        if self.quantiles_ is None:
            return None
        out, _ = self._raw_outputs(X, F)
        q = list(self.quantiles_)
        res = {}
        for lv in levels:
            a = round((1 - lv / 100) / 2, 10)
            res[lv] = (out[:, :, q.index(a)], out[:, :, q.index(round(1 - a, 10))])
        return res

    def predict_quantiles_windows(self, X, X_future=None) -> np.ndarray:
        """``(B, horizon, Q)`` forecasts of every quantile in ``quantiles_`` (non-crossing)."""
        X, _, F = self._check_arrays(X, None, X_future)
        if self.quantiles_ is None:
            raise ConfigError("this model has no quantile head; fit it with loss='quantile'")
        return self._raw_outputs(X, F)[0]

    def predict_direction_windows(self, X, X_future=None) -> np.ndarray:
        """``(B, 3)`` probabilities of down / flat / up for the move to ``direction_step``."""
        X, _, F = self._check_arrays(X, None, X_future)
        if not self.direction:
            raise ConfigError("this model has no direction head; fit it with direction=True")
        return self._softmax(self._raw_outputs(X, F)[1])

    def direction_labels(self, X, Y) -> np.ndarray:
        """True classes (0 down, 1 flat, 2 up) of windows, as the head was trained."""
        check_is_fitted(self)
        X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
        return self._dir_labels(X, Y)

    def predict_direction(self, data=None, *, future=None) -> pd.DataFrame:
        """Probabilities ``p_down, p_flat, p_up`` of the move from each series' last value
        to ``direction_step`` steps later, with that step's ``ds``."""
        check_is_fitted(self)
        if not self.direction:
            raise ConfigError("this model has no direction head; fit it with direction=True")
        frame = self.predict(data, levels=(), future=future)
        step = int(self.direction_step)
        first = frame.groupby("unique_id", sort=False).nth(step - 1)
        ids = list(first["unique_id"])
        if data is None:
            raw = np.asarray(self.history_)
        else:
            design = self._design(as_dataset(data, target=self.target_), fitting=False)
            raw = np.stack([design.values[b - self.lookback_:b] for b in design.bounds[1:]])
        loc, scale = self._series_params(ids)
        X = self._to_model(raw, loc, scale)
        F = None
        if self.known_:
            F = self._future_known(ids, [pd.DatetimeIndex(frame[frame.unique_id == u].ds)
                                         for u in ids], future)
        p = self._softmax(self._raw_outputs(X, F)[1])
        return pd.DataFrame({"unique_id": ids, "ds": list(first["ds"]), "p_down": p[:, 0],
                             "p_flat": p[:, 1], "p_up": p[:, 2]})


def _take(F, k):
    return None if F is None else F[k]
