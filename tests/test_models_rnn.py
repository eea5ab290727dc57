"""RNNForecaster behaviour: strategies, covariates, global fits, heads, training loop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecast import metrics
from forecast.errors import ConfigError, DataError
from forecast.models import Naive, RNNForecaster
from forecast.models.intervals import (
    conformal_radii,
    non_crossing,
    non_crossing_backward,
    quantiles_for_levels,
)


def sine_windows(n=600, L=24, H=6, period=12, noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n + L + H)
    y = np.sin(2 * np.pi * t / period) + noise * rng.standard_normal(t.size)
    idx = np.arange(n)[:, None] + np.arange(L + H)[None, :]
    w = y[idx]
    return w[:, :L, None], w[:, L:]


@pytest.mark.parametrize("strategy", ["direct", "recursive", "seq2seq"])
def test_every_strategy_learns_a_sine(strategy):
    X, Y = sine_windows()
    model = RNNForecaster(cell="gru", n_hidden=16, lookback=24, horizon=6, strategy=strategy,
                          normalize="none", max_epochs=25, lr=0.01, patience=25, levels=(),
                          random_state=0)
    model.fit_windows(X[:400], Y[:400], validation=(X[400:500], Y[400:500]))
    naive = Naive(horizon=6, levels=()).fit_windows(X[:400], Y[:400])
    err = metrics.mse(Y[500:], model.predict_windows(X[500:]))
    base = metrics.mse(Y[500:], naive.predict_windows(X[500:]))
    assert err < 0.2 * base, (strategy, err, base)


def test_recursive_first_step_is_the_one_step_model():
    X, Y = sine_windows(n=200)
    model = RNNForecaster(cell="lstm", n_hidden=8, lookback=24, horizon=6, strategy="recursive",
                          max_epochs=2, levels=(), random_state=1).fit_windows(X, Y)
    one = RNNForecaster(cell="lstm", n_hidden=8, lookback=24, horizon=1, strategy="recursive",
                        max_epochs=2, levels=(), random_state=1).fit_windows(X, Y[:, :1])
    np.testing.assert_allclose(model.predict_windows(X[:7])[:, 0], one.predict_windows(X[:7])[:, 0],
                               rtol=1e-6)


def daily(n=300, seed=0):
    return pd.date_range("2021-01-01", periods=n, freq="D")


def test_known_future_covariate_is_used_and_required():
    rng = np.random.default_rng(0)
    n = 400
    x = rng.standard_normal(n)
    y = 3.0 * x + 0.05 * rng.standard_normal(n)
    frame = pd.DataFrame({"ds": daily(n), "y": y, "x": x})
    kw = dict(cell="gru", n_hidden=8, lookback=10, horizon=3, max_epochs=15, lr=0.01,
              normalize="none", patience=15, random_state=0, calendar=False, highway=0)
    with_x = RNNForecaster(**kw).fit(frame.iloc[:350], known=["x"])
    without = RNNForecaster(**kw).fit(frame.iloc[:350][["ds", "y"]])
    assert with_x.known_ == ("x",)
    future = frame.iloc[350:353][["ds", "x"]]
    truth = frame["y"].iloc[350:353].to_numpy()
    err_with = metrics.mae(truth, with_x.predict(future=future)["yhat"])
    err_without = metrics.mae(truth, without.predict()["yhat"])
    assert err_with < 0.5 * err_without
    with pytest.raises(DataError, match=r"uses known-future covariates \['x'\]; pass future="):
        with_x.predict()
    with pytest.raises(DataError, match="has no \\['x'\\] values"):
        with_x.predict(future=future.iloc[:2])


def test_past_covariates_and_calendar_features():
    n = 24 * 30
    ds = pd.date_range("2022-01-01", periods=n, freq="h")
    rng = np.random.default_rng(1)
    y = np.sin(2 * np.pi * ds.hour / 24) + 0.1 * rng.standard_normal(n)
    frame = pd.DataFrame({"ds": ds, "y": y, "load": rng.standard_normal(n)})
    model = RNNForecaster(cell="rnn", n_hidden=8, lookback=24, horizon=6, max_epochs=2,
                          calendar=True, random_state=0).fit(frame, covariates=["load"])
    assert model.columns_[:2] == ("y", "load")
    assert set(model.known_) == {"hour_sin", "hour_cos", "dow_sin", "dow_cos", "doy_sin", "doy_cos"}
    out = model.predict()  # calendar values of the future are computed, no future= needed
    assert len(out) == 6 and out["ds"].iloc[0] == ds[-1] + pd.Timedelta(hours=1)
    # Recursive generation holds past-only covariates at their last value.
    rec = RNNForecaster(cell="gru", n_hidden=8, lookback=24, horizon=6, max_epochs=1,
                        strategy="recursive", calendar=True, random_state=0)
    assert len(rec.fit(frame, covariates=["load"]).predict()) == 6


def test_global_model_over_several_series_of_different_scale():
    parts = []
    for k, (uid, level) in enumerate((("a", 10.0), ("b", 1000.0), ("c", -50.0))):
        rng = np.random.default_rng(k)
        t = np.arange(200)
        y = level + (abs(level) / 10) * np.sin(2 * np.pi * t / 7) + rng.standard_normal(200)
        parts.append(pd.DataFrame({"unique_id": uid, "ds": daily(200), "y": y}))
    frame = pd.concat(parts, ignore_index=True)
    model = RNNForecaster(cell="gru", n_hidden=8, lookback=14, horizon=4, max_epochs=3,
                          random_state=0).fit(frame)
    out = model.predict()
    assert list(out["unique_id"].unique()) == ["a", "b", "c"] and len(out) == 12
    means = out.groupby("unique_id")["yhat"].mean()
    assert abs(means["a"] - 10) < 3 and abs(means["b"] - 1000) < 300 and abs(means["c"] + 50) < 15
    widths = (out["yhat_upper_80"] - out["yhat_lower_80"]).groupby(out["unique_id"]).mean()
    assert widths["b"] > 10 * widths["a"]  # intervals follow each series' scale
    # Forecast a new stretch of one series from data.
    again = model.predict(frame[frame.unique_id == "b"].iloc[:150])
    assert len(again) == 4 and again["ds"].iloc[0] == daily(200)[150]
    with pytest.raises(DataError, match=r"series \['z'\] were not in the training data"):
        model.predict(parts[0].assign(unique_id="z"))


def test_direction_head_probabilities_and_scores():
    # A price that alternates up and down: the direction is predictable from the last move.
    rng = np.random.default_rng(0)
    n = 600
    steps = np.where(np.arange(n) % 2 == 0, 1.0, -1.0) * (1 + 0.1 * rng.random(n))
    price = pd.Series(100 + np.cumsum(steps), index=pd.bdate_range("2015-01-01", periods=n))
    model = RNNForecaster(cell="gru", highway=0, calendar=False, n_hidden=8, lookback=10,
                          horizon=2, direction=True, max_epochs=15, lr=0.01, patience=15,
                          random_state=0).fit(price)
    frame = model.predict_direction()
    assert list(frame.columns) == ["unique_id", "ds", "p_down", "p_flat", "p_up"]
    assert frame[["p_down", "p_flat", "p_up"]].sum(axis=1).iloc[0] == pytest.approx(1.0)
    v = price.to_numpy()
    idx = np.arange(400, 580)[:, None] + np.arange(12)[None, :]
    X, Y = v[idx[:, :10]][:, :, None], v[idx[:, 10:]]
    loc, scale = model.series_loc_[0], model.series_scale_[0]
    Xz, Yz = (X - loc) / scale, (Y - loc) / scale
    proba = model.predict_direction_windows(Xz)
    labels = model.direction_labels(Xz, Yz)
    assert metrics.accuracy(labels, proba) > 0.9
    assert metrics.log_loss(labels, proba) < 0.5


def test_callback_and_early_stopping_restore_the_best_weights():
    X, Y = sine_windows(n=300)
    seen = []
    model = RNNForecaster(cell="gru", highway=0, n_hidden=8, lookback=24, horizon=6, normalize="none",
                          max_epochs=30, lr=0.2, clip_norm=None, patience=2, levels=(),
                          random_state=0, callback=seen.append)
    model.fit_windows(X[:200], Y[:200], validation=(X[200:], Y[200:]))
    epochs = [e.epoch for e in seen]
    assert epochs == list(range(1, len(seen) + 1)) and len(seen) == model.n_epochs_
    assert all(e.val_loss is not None and e.seconds >= 0 for e in seen)
    assert seen[-1].stopped == (len(seen) < 30)
    vals = [e.val_loss for e in seen]
    assert model.best_epoch_ == int(np.argmin(vals)) + 1
    # The restored weights are those of the best epoch: their validation MSE is the minimum.
    mse = metrics.mse(Y[200:], model.predict_windows(X[200:]))
    assert mse == pytest.approx(min(vals), rel=1e-4)


def test_warm_start_continues_from_the_previous_weights():
    X, Y = sine_windows(n=300)
    first, second = [], []
    model = RNNForecaster(cell="gru", highway=0, n_hidden=8, lookback=24, horizon=6, normalize="none",
                          max_epochs=8, lr=0.01, levels=(), random_state=0, callback=first.append)
    model.fit_windows(X, Y)
    model.set_params(warm_start=True, max_epochs=1, callback=second.append)
    model.fit_windows(X, Y)
    assert second[0].train_loss < 0.5 * first[0].train_loss


def test_quantile_head_never_crosses():
    X, Y = sine_windows(n=300, noise=0.3)
    model = RNNForecaster(cell="lstm", n_hidden=8, lookback=24, horizon=6, loss="quantile",
                          levels=(50, 80, 95), quantiles=(0.3,), max_epochs=3, random_state=0)
    model.fit_windows(X, Y)
    assert model.quantiles_ == (0.025, 0.1, 0.25, 0.3, 0.5, 0.75, 0.9, 0.975)
    extreme = np.random.default_rng(0).normal(0, 50, size=(50, 24, 1))
    q = model.predict_quantiles_windows(np.concatenate([X[:50], extreme]))
    assert (np.diff(q, axis=2) >= 0).all()
    lo, hi = model.predict_interval_windows(X[:20])[80.0]
    assert (lo <= hi).all()


def test_non_crossing_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(3, 5))
    w = rng.normal(size=(3, 5))
    m = 2
    _, slope = non_crossing(raw, m)
    grad = non_crossing_backward(w, slope, m)
    eps = 1e-6
    num = np.zeros_like(raw)
    for idx in np.ndindex(raw.shape):
        r1, r2 = raw.copy(), raw.copy()
        r1[idx] += eps
        r2[idx] -= eps
        num[idx] = ((non_crossing(r1, m)[0] * w).sum() - (non_crossing(r2, m)[0] * w).sum()) / (2 * eps)
    np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-8)


def test_conformal_radii_cover_exchangeable_errors():
    rng = np.random.default_rng(0)
    calib = rng.standard_normal((2000, 3)) * [1, 2, 3]
    radii = conformal_radii(calib, (80, 95))
    test = rng.standard_normal((20000, 3)) * [1, 2, 3]
    cover = (np.abs(test) <= radii[:, None, :]).mean(axis=1)
    np.testing.assert_allclose(cover, [[0.8] * 3, [0.95] * 3], atol=0.015)
    assert quantiles_for_levels((80, 95)) == (0.025, 0.1, 0.5, 0.9, 0.975)


def test_bad_options_raise_config_errors():
    X, Y = sine_windows(n=50)
    for kw, msg in ((dict(strategy="magic"), "strategy must be one of"),
                    (dict(loss="hinge"), "loss must be one of"),
                    (dict(normalize="zscore"), "normalize must be one of"),
                    (dict(cell="tcn"), "cell must be one of"),
                    (dict(highway=99), "highway=99 is longer than the lookback 24"),
                    (dict(lr=-1), "lr must be a positive number"),
                    (dict(levels=(120,)), "interval levels are percentages")):
        with pytest.raises(ConfigError, match=msg):
            RNNForecaster(lookback=24, horizon=6, max_epochs=1, **kw).fit_windows(X, Y)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("clip,decay", [(None, 0.0), (0.5, 0.0), (None, 1e-3), (0.5, 1e-2)])
def test_adam_kernel_is_the_numpy_update_bit_for_bit(dtype, clip, decay):
    """`SeqNet.step` runs `kernels.optim.adam_update`; it must give exactly the bits of
    the NumPy sequence it replaced (elementwise IEEE arithmetic in the same order)."""
    from forecast.models._net import NetConfig, SeqNet

    net = SeqNet(NetConfig("gru", 3, 8, 1, 4, highway=5, dtype=dtype), 0)
    ref = [p.copy() for p in net.vectors()]
    rm, rv = [np.zeros_like(p) for p in ref], [np.zeros_like(p) for p in ref]
    rng = np.random.default_rng(0)
    beta1, beta2, eps, lr = 0.9, 0.999, 1e-8, 3e-3
    for t in range(1, 6):
        grads = [(rng.standard_normal(p.shape) * 0.3).astype(dtype) for p in ref]
        norm = net.step([g.copy() for g in grads], lr, decay, clip)
        scale = clip / (norm + 1e-6) if clip and norm > clip else 1.0
        c1, c2 = 1.0 - beta1 ** t, 1.0 - beta2 ** t
        for p, g, m, v in zip(ref, grads, rm, rv):  # the former NumPy update
            g = g * scale if scale != 1.0 else g
            if decay:
                g = g + decay * p
            m *= beta1
            m += (1 - beta1) * g
            v *= beta2
            v += (1 - beta2) * g * g
            p -= (lr * (m / c1) / (np.sqrt(v / c2) + eps)).astype(p.dtype)
        for a, b in zip(net.vectors(), ref):
            np.testing.assert_array_equal(a, b)
        for a, b in zip(net._m + net._v, rm + rv):
            np.testing.assert_array_equal(a, b)
