"""`SegRNNForecaster`: a segment-recurrent forecaster (SegRNN, Lin et al. 2023,
arXiv:2308.11200) on the hand-written recurrent kernels.

>>> from forecast.models import SegRNNForecaster
>>> model = SegRNNForecaster(lookback=720, horizon=96, segment=48, n_hidden=256,
...                          random_state=0).fit(dataset)              # doctest: +SKIP

The lookback is cut into segments of ``segment`` steps, each embedded by a linear map and
a ReLU into ``n_hidden`` values; the recurrent cell (``gru`` by default, ``lstm`` or
``rnn``) runs over the segments; every output segment is then decoded in one step of the
same cell from the encoder's final state, its input a learned position embedding joined
with a learned channel embedding, followed by dropout and a linear map back to a segment
(network: `forecast.models._segnet`). Windows are normalised by their last value
(``normalize="last"``) or their mean and standard deviation (``"instance"``, RevIN
without affine weights).

Channels: the model reads the target only (covariates are ignored). Each window carries a
channel number for the channel embedding: ``fit_windows(..., channels=)`` and
``predict_windows(..., channels=)`` pass them (the long-horizon benchmark stacks the
columns of a multivariate file as channels with shared weights); ``fit(data)`` on a frame
treats every series as channel 0 (one global model).

Training: shuffled mini-batches, Adam with optional clipping, a learning-rate schedule
(``exponential`` keeps ``lr`` for ``lr_hold`` epochs, then multiplies it by ``lr_decay``
each epoch), seeded dropout (the same ``random_state`` gives bit-identical weights and
forecasts), MSE or MAE loss, early stopping on the validation windows with the best
weights restored, conformal intervals as every model.

Seed ensemble: ``n_members=k`` trains ``k`` networks that differ only in their seeds
(initial weights, batch order, dropout), each with its own early stopping, and forecasts
their mean. The first member is the single model of the same ``random_state`` (bit for
bit); member ``m`` draws from ``numpy.random.default_rng([random_state, m])``. Averaging
cannot raise the validation loss above the members' mean (the loss is convex), and it
removes most of the seed-to-seed spread, at ``k`` times the training time.

Loss ensemble: ``loss="mse+mae"`` trains the ``n_members`` seeds once on each loss (the
first loss's members first; each member early-stopped on its own loss) and forecasts the
mean of all ``n_members * 2`` networks; the ensemble's validation loss is taken in the
first loss. With the linear blend below, each loss's members get a weight of their own
(``loss_weights_``; the linear map gets the rest), chosen on the validation windows in
the first loss. A network trained on MAE aims at the median, one on MSE at the mean, so
their errors differ more than two seeds' do; the validated weights use that where it
helps and fall back to one loss where it does not (`benchmarks/RESULTS.md`, session 11).

Rate retry: with ``lr_retry=f`` (``0 < f < 1``), a member whose best validation epoch is
its first (its loss rose right after one epoch: the rate overshoots on these data) is
trained again from the same initial weights, batch order and dropout at ``lr * f``,
within the rest of its ``max_epochs``; the run with the lower best validation loss is
kept. The choice sees the validation windows only, and a member whose loss still fell
after its first epoch is left as it was (bit for bit). ``lr_retries_`` records, per
member, what the retry did (``None`` where none ran).

Linear blend: with ``linear_blend=True`` the model also fits the NLinear model of the same
normalised training windows (ordinary least squares from the lookback to the horizon,
one map shared by every channel; `forecast.models.baselines.LinearLags`' fit) and
forecasts ``w * segrnn + (1 - w) * linear``, with the weight ``w`` in [0, 1] chosen on
the validation windows (a grid of 0.01; ties go to the larger ``w``). ``w = 1`` is the
network alone, so the blend's validation loss is never above the network's. It needs
validation windows (without them the network forecasts alone); with a loss ensemble the
weights are one per loss's members, on the same grid with a sum of at most 1
(``loss_weights_``; ``blend_weight_`` is then their sum); ``blend_weight_``,
``blend_val_loss_`` and the map (``linear_coef_``, ``linear_intercept_``) are kept in
model files. The idea is the linear "highway" of LSTNet (Lai et al. 2018), here chosen on
validation instead of trained jointly: it keeps the network's recurrent forecast for
what it models well and shrinks it towards the linear one where the network overfits.
"""

from __future__ import annotations

import math
import time

import numpy as np

from forecast.errors import ConfigError, DataError, NumericalError
from forecast.models._segnet import SegConfig, SegNet, dropout_mask
from forecast.models._training import EpochInfo, _choice, _int
from forecast.models.base import check_is_fitted
from forecast.models.forecaster import Forecaster
from forecast.nn import CELLS

__all__ = ["SegRNNForecaster"]

NORMALIZATIONS = ("last", "instance", "none")
LOSSES = ("mse", "mae")
SCHEDULES = ("constant", "exponential", "cosine")
EVAL_BATCH = 2048


def _losses(value) -> tuple:
    """The training losses of ``loss``: one name, or names joined by ``+`` (a loss
    ensemble, see `SegRNNForecaster`)."""
    names = tuple(value.split("+")) if isinstance(value, str) else ()
    if not names or any(n not in LOSSES for n in names) or len(set(names)) < len(names):
        raise ConfigError(f"loss must be one of {', '.join(LOSSES)} or several of them joined "
                          f"by '+' (e.g. mse+mae), got {value!r}")
    return names


def _simplex_minimum(parts, linear, Y, sc, loss, quadratic):
    """Weights ``a_g >= 0`` on a 0.01 grid with ``sum(a) <= 1`` minimising the loss of
    ``sum_g a_g parts[g] + (1 - sum(a)) linear`` against ``Y`` (two parts: 5,151
    candidates, in the order of a larger network share first, then a larger first
    part; the first minimum wins). For MSE (``quadratic``) the loss of every candidate
    comes from the parts' Gram matrix, then the chosen one is scored directly."""
    assert len(parts) == 2

    def mix(w):
        return w[0] * parts[0] + w[1] * parts[1] + (1.0 - w[0] - w[1]) * linear

    cands = [(i, t - i) for t in range(100, -1, -1) for i in range(t, -1, -1)]
    W = np.array(cands, np.float64) / 100.0
    if quadratic:  # mean((sum_g a_g (P_g - L) + L - Y)^2 * sc^2): a quadratic form in a
        D = [((p - linear) * sc).ravel() for p in parts]
        r = ((linear - Y) * sc).ravel()
        n = r.size
        G = np.array([[d1 @ d2 for d2 in D] for d1 in D]) / n
        b = np.array([d @ r for d in D]) / n
        values = np.einsum("ci,ij,cj->c", W, G, W) + 2.0 * W @ b + (r @ r) / n
    else:
        values = np.array([loss(mix(w)) for w in W])
    w = W[int(np.argmin(values))]
    return w, loss(mix(w))


class SegRNNForecaster(Forecaster):
    """Segment-recurrent forecaster (see the module docstring).

    Architecture: ``cell``, ``segment`` (steps per segment; the last ``lookback //
    segment`` whole segments of the lookback are read, and ``ceil(horizon / segment)``
    segments are decoded and cut to the horizon), ``n_hidden``, ``channel_id`` (a learned
    channel embedding in half of the decoder input), ``dropout``, ``lookback``,
    ``horizon``, ``normalize``. Training: ``loss`` (``mse``, ``mae``, or ``mse+mae``: a loss
    ensemble, see the module docstring), ``max_epochs``,
    ``batch_size`` (windows of one channel), ``lr``, ``lr_schedule``, ``lr_decay``,
    ``lr_hold``, ``weight_decay``, ``clip_norm``, ``average`` (0: off; else the decay per
    step of an exponential moving average of the weights, which is then what validation,
    early stopping and the fitted model use), ``patience``, ``validation_fraction``,
    ``dtype``, ``random_state``, ``callback``, ``n_members`` (seed ensemble, see the
    module docstring; the callback then counts epochs over all members), ``lr_retry``
    (0: off; else the factor of the rate retry, see the module docstring),
    ``linear_blend`` (the validated blend with a linear map, see the module docstring).
    """

    _standardize = True
    _transient_params = ("callback",)
    _fitted_meta = Forecaster._fitted_meta + ("seg_config_", "n_epochs_", "best_epoch_",
                                              "history_loss_", "members_",
                                              "ensemble_val_loss_", "lr_retries_",
                                              "blend_weight_", "blend_val_loss_",
                                              "loss_weights_")
    # absent from model files written before seed ensembles (lr_retries_: before retries,
    # blend_*: before the linear blend)
    _optional_fitted = Forecaster._optional_fitted + ("members_", "ensemble_val_loss_",
                                                      "lr_retries_", "blend_weight_",
                                                      "blend_val_loss_", "loss_weights_")
    _fitted_arrays = Forecaster._fitted_arrays + ("seg_params_", "linear_coef_",
                                                  "linear_intercept_")

    def __init__(self, cell: str = "gru", segment: int = 24, n_hidden: int = 128,
                 lookback: int = 96, horizon: int = 24, channel_id: bool = True,
                 dropout: float = 0.1, normalize: str = "last", loss: str = "mse",
                 max_epochs: int = 20, batch_size: int = 64, lr: float = 1e-3,
                 lr_schedule: str = "constant", lr_decay: float = 0.8, lr_hold: int = 0,
                 weight_decay: float = 0.0, clip_norm: float | None = None,
                 average: float = 0.0, patience: int = 3,
                 validation_fraction: float = 0.2, dtype: str = "float32", levels=(80, 95),
                 random_state: int = 0, callback=None, n_members: int = 1,
                 lr_retry: float = 0.0, linear_blend: bool = True):
        self.cell = cell
        self.segment = segment
        self.n_hidden = n_hidden
        self.lookback = lookback
        self.horizon = horizon
        self.channel_id = channel_id
        self.dropout = dropout
        self.normalize = normalize
        self.loss = loss
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.lr_decay = lr_decay
        self.lr_hold = lr_hold
        self.weight_decay = weight_decay
        self.clip_norm = clip_norm
        self.average = average
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.dtype = dtype
        self.levels = levels
        self.random_state = random_state
        self.callback = callback
        self.n_members = n_members
        self.lr_retry = lr_retry
        self.linear_blend = linear_blend

    # ---- Forecaster hooks ----------------------------------------------------------------
    def _lookback_for(self, lengths):
        return _int("lookback", self.lookback)

    def _validation_fraction(self) -> float:
        f = self.validation_fraction
        if not (isinstance(f, (int, float)) and 0 <= f < 1):
            raise ConfigError(f"validation_fraction must be in [0, 1), got {f!r}")
        return float(f)

    # ---- channels ------------------------------------------------------------------------
    def fit_windows(self, X, Y, X_future=None, *, validation=None, channels=None,
                    validation_channels=None) -> "SegRNNForecaster":
        """`Forecaster.fit_windows` with the channel number of every window (int array
        ``(B,)``, default all 0) and of every validation window."""
        self._channels = {"train": channels, "val": validation_channels}
        try:
            return super().fit_windows(X, Y, X_future, validation=validation)
        finally:
            self._channels = None

    def predict_windows(self, X, X_future=None, channels=None) -> np.ndarray:
        """Point forecasts ``(B, horizon)``; `channels` as in `fit_windows`."""
        self._pred_channels = channels
        try:
            return super().predict_windows(X, X_future)
        finally:
            self._pred_channels = None

    def predict_interval_windows(self, X, X_future=None, levels=None, channels=None) -> dict:
        self._pred_channels = channels
        try:
            return super().predict_interval_windows(X, X_future, levels)
        finally:
            self._pred_channels = None

    def _check_channels(self, channels, n, n_channels=None) -> np.ndarray:
        if channels is None:
            return np.zeros(n, np.int64)
        c = np.asarray(channels)
        if c.shape != (n,) or not np.issubdtype(c.dtype, np.integer):
            raise DataError(f"channels must be integers of shape ({n},), got {c.dtype} {c.shape}")
        if n and c.min() < 0:
            raise DataError("channels must be >= 0")
        if n_channels is not None and n and c.max() >= n_channels:
            raise DataError(f"channel {int(c.max())} is beyond the {n_channels} channels the "
                            "model was fitted with")
        return np.ascontiguousarray(c, dtype=np.int64)

    # ---- configuration -------------------------------------------------------------------
    def _seg_config(self, horizon: int, n_channels: int) -> SegConfig:
        _choice("cell", self.cell, tuple(CELLS))
        _choice("normalize", self.normalize, NORMALIZATIONS)
        _losses(self.loss)
        _choice("lr_schedule", self.lr_schedule, SCHEDULES)
        _choice("dtype", str(self.dtype), ("float32", "float64"))
        w = _int("segment", self.segment)
        if w > self.lookback_:
            raise ConfigError(f"segment={w} is longer than the lookback {self.lookback_}")
        p = self.dropout
        if not (isinstance(p, (int, float)) and not isinstance(p, bool) and 0 <= p < 1):
            raise ConfigError(f"dropout must be in [0, 1), got {p!r}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"lr must be a positive number, got {self.lr!r}")
        if not (isinstance(self.lr_decay, (int, float)) and 0 < self.lr_decay <= 1):
            raise ConfigError(f"lr_decay must be in (0, 1], got {self.lr_decay!r}")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        clip = self.clip_norm
        if clip is not None and not (isinstance(clip, (int, float)) and clip > 0):
            raise ConfigError(f"clip_norm must be positive or None, got {clip!r}")
        a = self.average
        if not (isinstance(a, (int, float)) and not isinstance(a, bool) and 0 <= a < 1):
            raise ConfigError(f"average must be in [0, 1), got {a!r}")
        for name in ("max_epochs", "batch_size"):
            _int(name, getattr(self, name))
        _int("patience", self.patience, 0)
        _int("lr_hold", self.lr_hold, 0)
        f = self.lr_retry
        if not (isinstance(f, (int, float)) and not isinstance(f, bool) and 0 <= f < 1):
            raise ConfigError(f"lr_retry must be in [0, 1) (0 turns the rate retry off), "
                              f"got {f!r}")
        if not isinstance(self.linear_blend, (bool, np.bool_)):
            raise ConfigError(f"linear_blend must be true or false, got {self.linear_blend!r}")
        return SegConfig(self.cell, w, self.lookback_ // w, -(-horizon // w), horizon,
                         _int("n_hidden", self.n_hidden), n_channels, bool(self.channel_id),
                         float(p), str(self.dtype))

    def _lr(self, epoch: int, scale: float = 1.0) -> float:
        lr = float(self.lr) * scale
        if self.lr_schedule == "exponential":
            return lr * float(self.lr_decay) ** max(0, epoch - int(self.lr_hold))
        if self.lr_schedule == "cosine":
            return lr * 0.5 * (1.0 + math.cos(math.pi * epoch / int(self.max_epochs)))
        return lr

    # ---- per-window normalisation --------------------------------------------------------
    def _norm(self, X):
        """Normalised targets ``(B, L)`` and each window's offset and scale ``(B, 1)``."""
        y = np.asarray(X[:, :, 0], np.float64)
        if self.normalize == "last":
            off, sc = y[:, -1:].copy(), np.ones((len(y), 1))
        elif self.normalize == "instance":
            off = y.mean(axis=1, keepdims=True)
            s = np.sqrt(y.var(axis=1, keepdims=True) + 1e-5)
            sc = s
        else:
            off, sc = np.zeros((len(y), 1)), np.ones((len(y), 1))
        return (y - off) / sc, off, sc

    # ---- training ------------------------------------------------------------------------
    def _loss(self, yhat, Yn, sc, want_grad, kind):
        """Loss ``kind`` (``mse`` or ``mae``) in the units of the data (as RevIN: the
        forecast is denormalised first) and its gradient w.r.t. the normalised forecast;
        ``Yn`` normalised, ``sc (B, 1)``."""
        err = (yhat.astype(np.float64) - Yn) * sc
        if kind == "mse":
            value = float(np.mean(err * err))
            d = 2.0 * err * sc / err.size if want_grad else None
        else:
            value = float(np.mean(np.abs(err)))
            d = np.sign(err) * sc / err.size if want_grad else None
        return value, d

    def _fit_arrays(self, train, val) -> None:
        self.lookback_ = train.x.shape[1]
        chans = getattr(self, "_channels", None) or {}
        ch = self._check_channels(chans.get("train"), len(train))
        chv = self._check_channels(chans.get("val"), 0 if val is None else len(val))
        n_channels = int(max(ch.max(initial=0), chv.max(initial=0))) + 1
        chans["calib"] = chv if val is not None and len(val) else ch
        H = train.y.shape[1]
        cfg = self._seg_config(H, n_channels)
        k = _int("n_members", self.n_members)
        kinds = _losses(self.loss)
        self.seg_config_ = dict(cfg.__dict__)
        seed = int(self.random_state if self.random_state is not None else 0)
        Xn, off, sc = self._norm(train.x)
        Yn = (train.y - off) / sc
        valset = None
        if val is not None:
            Xv, offv, scv = self._norm(val.x)
            valset = (Xv, (val.y - offv) / scv, chv, scv)
        t0 = time.perf_counter()
        nets, members, retries = [], [], []
        max_epochs, f = int(self.max_epochs), float(self.lr_retry)
        total = k * len(kinds)  # a loss ensemble trains the k seeds once per loss
        for i in range(total):
            kind, m = kinds[i // k], i % k
            member_seed = seed if m == 0 else [seed, m]
            net, rng = self._new_member(cfg, member_seed)
            history, best_epoch = self._train_member(net, rng, cfg, Xn, Yn, sc, ch, valset,
                                                     i, total, t0, kind)
            retry = None
            left = max_epochs - len(history)
            if self._retries(valset, best_epoch, len(history)):
                # the same initial weights, batch order and dropout: only the rate differs
                net2, rng2 = self._new_member(cfg, member_seed)
                h2, b2 = self._train_member(net2, rng2, cfg, Xn, Yn, sc, ch, valset, i,
                                            total, t0, kind, scale=f, budget=left,
                                            offset=len(history))
                first_val, second_val = history[best_epoch - 1][1], h2[b2 - 1][1]
                kept = bool(second_val < first_val)
                retry = {"lr": float(self.lr) * f, "epochs": len(h2), "best_epoch": b2,
                         "val_loss": float(second_val), "first_val_loss": float(first_val),
                         "first_epochs": len(history), "kept": kept}
                if kept:
                    net, history, best_epoch = net2, h2, b2
            nets.append(net)
            retries.append(retry)
            ran = len(history) if retry is None else retry["first_epochs"] + retry["epochs"]
            members.append({"seed": member_seed, "epochs": ran,
                            "best_epoch": best_epoch, "history_loss": history})
            if len(kinds) > 1:
                members[-1]["loss"] = kind
        self._nets = nets  # the trained members (best weights) predict from here on
        self.seg_params_ = (nets[0].params.copy() if total == 1
                            else np.stack([net.params for net in nets]))
        first = members[0]
        self.n_epochs_, self.best_epoch_ = first["epochs"], first["best_epoch"]
        self.history_loss_ = first["history_loss"]
        self.ensemble_val_loss_ = None
        if total > 1:
            self.n_epochs_ = sum(mb["epochs"] for mb in members)
            if valset is not None:  # each member's best and the ensemble's validation loss
                for mb in members:  # (a member's in its own loss, the ensemble's in the first)
                    mb["val_loss"] = mb["history_loss"][mb["best_epoch"] - 1][1]
                self.ensemble_val_loss_ = self._evaluate(*valset, kinds[0])
        self.members_ = members if total > 1 else None
        self.lr_retries_ = retries
        self.blend_weight_ = self.blend_val_loss_ = self.loss_weights_ = None
        self.linear_coef_ = self.linear_intercept_ = None
        if self.linear_blend and valset is not None:
            self._fit_blend(Xn, Yn, valset, kinds[0], len(kinds))
        # seconds of the epochs, validation included (not stored in model files: it varies)
        self.train_seconds_ = round(time.perf_counter() - t0, 3)

    def _new_member(self, cfg, member_seed):
        """A member's network and its random stream (initial weights first), made the
        one ``_evaluate`` scores while it trains."""
        rng = np.random.default_rng(member_seed)
        net = SegNet(cfg, int(rng.integers(0, 2**31 - 1)))
        self._nets = [net]
        return net, rng

    def _fit_blend(self, Xn, Yn, valset, kind, n_losses) -> None:
        """The linear map of the normalised training windows, and the blend weights with
        the lowest validation loss ``kind`` (see the module docstring): one weight for the
        network, or with a loss ensemble one weight per loss's members, on a 0.01 grid."""
        from sklearn.linear_model import LinearRegression

        lin = LinearRegression().fit(Xn, Yn)
        self.linear_coef_ = np.asarray(lin.coef_, np.float64).reshape(Yn.shape[1], -1)
        self.linear_intercept_ = np.asarray(lin.intercept_, np.float64).reshape(-1)
        Xv, Yv, chv, scv = valset
        linear = self._linear(Xv)
        if n_losses == 1:
            net = self._batched_forecast(self._nets, Xv, chv)
            grid = np.round(np.linspace(1.0, 0.0, 101), 2)  # ties: the first, the larger w
            losses = [self._loss(w * net + (1.0 - w) * linear, Yv, scv, False, kind)[0]
                      for w in grid]
            i = int(np.argmin(losses))
            self.blend_weight_, self.blend_val_loss_ = float(grid[i]), float(losses[i])
            return
        parts = self._group_forecasts(self._nets, n_losses, Xv, chv)
        weights, loss = _simplex_minimum(parts, linear, Yv, scv, lambda p: self._loss(
            p, Yv, scv, False, kind)[0], kind == "mse")
        self.loss_weights_ = [float(a) for a in weights]
        self.blend_weight_ = float(round(sum(weights), 2))
        self.blend_val_loss_ = float(loss)

    def _linear(self, Xn) -> np.ndarray:
        return Xn @ self.linear_coef_.T + self.linear_intercept_

    def _retries(self, valset, best_epoch: int, epochs_run: int) -> bool:
        """Whether a member's first run is followed by a rate retry: it is on, there are
        validation windows, the best epoch was the first and two epochs of the member's
        budget are left."""
        return bool(self.lr_retry and valset is not None and best_epoch == 1
                    and int(self.max_epochs) - epochs_run >= 2)

    def _train_member(self, net, rng, cfg, Xn, Yn, sc, ch, valset, member, n_members, t0,
                      kind, scale=1.0, budget=None, offset=0):
        """Train one network in place on loss ``kind``, early-stopped on the same loss (its
        best weights restored); returns the member's history ``[[train_loss, val_loss],
        ...]`` and its best epoch. A rate retry passes
        the rate's ``scale``, its ``budget`` of epochs and the epochs already run
        (``offset``, for the callback's count)."""
        drop_rng = np.random.default_rng(rng.integers(0, 2**31 - 1))
        Xn = Xn.astype(net.dtype)
        best, best_epoch, bad = np.inf, 0, 0
        best_params = net.params.copy()
        history = []
        n = len(Xn)
        bs = int(self.batch_size)
        max_epochs, patience = int(self.max_epochs), int(self.patience)
        n_epochs = max_epochs if budget is None else int(budget)
        clip = None if self.clip_norm is None else float(self.clip_norm)
        avg = float(self.average)
        ema = net.params.copy() if avg else None
        for epoch in range(n_epochs):
            lr = self._lr(epoch, scale)
            order = rng.permutation(n)
            total = 0.0
            for i in range(0, n, bs):
                k = np.sort(order[i:i + bs])
                mask = dropout_mask(drop_rng, (len(k) * cfg.n_out, cfg.n_hidden), cfg.dropout,
                                    net.dtype)
                yhat, cache = net.forward(Xn[k], ch[k], mask, keep_cache=True)
                loss, d = self._loss(yhat, Yn[k], sc[k], True, kind)
                if not math.isfinite(loss):
                    raise NumericalError(f"the loss is {loss} at epoch {epoch + 1}: training "
                                         "diverged (lower lr or set clip_norm)")
                grads = net.backward(cache, d.astype(net.dtype))
                net.step(grads, lr, float(self.weight_decay), clip)
                if ema is not None:
                    ema *= net.dtype.type(avg)
                    ema += net.dtype.type(1.0 - avg) * net.params
                total += loss * len(k)
            train_loss = total / n
            if ema is not None:  # evaluate (and keep) the averaged weights
                current = net.params.copy()
                net.params[...] = ema
            val_loss = None if valset is None else self._evaluate(*valset, kind)
            score = val_loss if val_loss is not None else train_loss
            if not np.isfinite(score):
                raise NumericalError(f"the loss is {score} at epoch {epoch + 1}: training "
                                     "diverged (lower lr or set clip_norm)")
            if score < best - 1e-12:
                best, best_epoch, bad = score, epoch + 1, 0
                best_params = net.params.copy()
            else:
                bad += 1
            if ema is not None:
                net.params[...] = current
            stop = valset is not None and bad > patience
            history.append([train_loss, val_loss])
            if self.callback is not None:  # epochs counted over all members
                self.callback(EpochInfo(member * max_epochs + offset + epoch + 1,
                                        n_members * max_epochs, float(train_loss),
                                        None if val_loss is None else float(val_loss),
                                        time.perf_counter() - t0, lr,
                                        member * max_epochs + offset + best_epoch,
                                        stop and member + 1 == n_members
                                        and not (budget is None and self._retries(
                                            valset, best_epoch, epoch + 1))))
            if stop:
                break
        net.params[...] = best_params
        return history, best_epoch

    def _evaluate(self, Xn, Yn, ch, sc, kind) -> float:
        """Validation loss ``kind`` of the mean forecast of ``self._nets``."""
        total = 0.0
        for i in range(0, len(Xn), EVAL_BATCH):
            s = slice(i, i + EVAL_BATCH)
            yhat = self._mean_forecast(self._nets, Xn[s], ch[s])
            total += self._loss(yhat, Yn[s], sc[s], False, kind)[0] * len(Yn[s])
        return total / len(Xn)

    @classmethod
    def _batched_forecast(cls, nets, Xn, ch) -> np.ndarray:
        """`_mean_forecast` of every window, ``EVAL_BATCH`` windows at a time."""
        return np.concatenate([cls._mean_forecast(nets, Xn[i:i + EVAL_BATCH],
                                                  ch[i:i + EVAL_BATCH])
                               for i in range(0, len(Xn), EVAL_BATCH)])

    @classmethod
    def _group_forecasts(cls, nets, n_groups, Xn, ch) -> list:
        """A loss ensemble's forecasts, one per loss: the mean of that loss's members
        (`_fit_arrays` stores them loss by loss)."""
        k = len(nets) // n_groups
        return [cls._batched_forecast(nets[g * k:(g + 1) * k], Xn, ch) for g in range(n_groups)]

    @staticmethod
    def _mean_forecast(nets, Xn, ch) -> np.ndarray:
        """The members' mean normalised forecast, float64 (one member: its own)."""
        out = nets[0].forward(Xn, ch)[0].astype(np.float64)
        for net in nets[1:]:
            out += net.forward(Xn, ch)[0]
        return out / len(nets)  # exact for one member

    # ---- state / prediction --------------------------------------------------------------
    def _restore(self) -> None:
        cfg = SegConfig(**self.seg_config_)
        params = np.asarray(self.seg_params_)
        stack = params if params.ndim == 2 else params[np.newaxis]
        nets = [SegNet(cfg, 0) for _ in stack]
        if not nets or stack.shape[1:] != nets[0].params.shape:
            size = SegNet(cfg, 0).params.size
            raise ValueError(f"seg_params_ has shape {params.shape}, expected ({size},) or "
                             f"(members, {size})")
        for net, p in zip(nets, stack):
            net.params[...] = p
        self._nets = nets

    def _get_nets(self) -> list:
        check_is_fitted(self)
        if getattr(self, "_nets", None) is None:
            self._restore()
        return self._nets

    def _predict_arrays(self, X, F):
        nets = self._get_nets()
        if getattr(self, "_channels", None):  # conformal calibration inside fit_windows
            ch = self._calib_channels(self._channels.get("calib"), len(X))
        else:
            ch = self._check_channels(getattr(self, "_pred_channels", None), len(X),
                                      self.seg_config_["n_channels"])
        Xn, off, sc = self._norm(X)
        shares = getattr(self, "loss_weights_", None)
        if shares is not None:  # a loss ensemble's validated weights
            yhat = (1.0 - sum(shares)) * self._linear(Xn)
            for a, part in zip(shares, self._group_forecasts(nets, len(shares), Xn, ch)):
                yhat = yhat + a * part
            return yhat * sc + off
        yhat = self._batched_forecast(nets, Xn, ch)
        w = getattr(self, "blend_weight_", None)
        if w is not None:
            yhat = w * yhat + (1.0 - w) * self._linear(Xn)
        return yhat * sc + off

    def _calib_channels(self, raw, n) -> np.ndarray:
        """Channels of the calibration windows: `Forecaster._calibrate` takes the most
        recent ``n`` validation windows (training windows without validation)."""
        if raw is None:
            return np.zeros(n, np.int64)
        raw = np.asarray(raw, np.int64)
        return np.ascontiguousarray(raw[len(raw) - n:])

