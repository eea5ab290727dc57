"""The linear start of the recurrent models (`forecast.models._linear_start`): its solve
against a plain per-step ridge reference, its choice on validation windows, and the
network it sets up (it must predict exactly the linear model before any training)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecast.models import RNNForecaster
from forecast.models._linear_start import (ALPHAS, MIN_BLOCKS, _cv_forecasts, _cv_gains, _Known,
                                           _Problem, _Stacked, blocks_z, fit_linear_start,
                                           random_walk_note, set_linear_start, window_gains)
from forecast.models._net import NetConfig, SeqNet


def _reference(C, F, Y, alpha):
    """Per step: ridge on standardised [C, F_s] (intercept unpenalised), solved directly."""
    n, S = Y.shape
    out_c, out_f = [], []
    for s in range(S):
        X = C if F is None else np.concatenate([C, F[:, s]], axis=1)
        sd = X.std(0)
        sd = np.where(sd > 1e-8, sd, 1.0)
        Xs = (X - X.mean(0)) / sd
        y = Y[:, s] - Y[:, s].mean()
        b = np.linalg.solve(Xs.T @ Xs / n + alpha * np.eye(X.shape[1]), Xs.T @ y / n)
        out_c.append(b[:C.shape[1]])
        out_f.append(b[C.shape[1]:])
    return np.stack(out_c, 1), (None if F is None else np.stack(out_f))


@pytest.mark.parametrize("with_known", [False, True])
@pytest.mark.parametrize("alpha", [1e-6, 1e-2, 1.0])
@pytest.mark.parametrize("block", [4096, 7])  # the known covariates are read in row blocks
def test_shared_block_solve_matches_a_direct_ridge_per_step(with_known, alpha, block,
                                                            monkeypatch):
    monkeypatch.setattr(_Known, "BLOCK", block)
    rng = np.random.default_rng(0)
    n, p, S, K = 300, 9, 5, 3
    C = rng.normal(size=(n, p)) @ rng.normal(size=(p, p))  # correlated columns
    F = rng.normal(size=(n, S, K)) if with_known else None
    Y = rng.normal(size=(n, S))
    prob = _Problem(C, Y)
    bc, bf = prob.solve(alpha, _Known(F, Y - Y.mean(0)) if with_known else None)
    rc, rf = _reference(C, F, Y, alpha)
    np.testing.assert_allclose(bc, rc, rtol=1e-9, atol=1e-11)
    if with_known:
        np.testing.assert_allclose(bf, rf, rtol=1e-9, atol=1e-11)


def test_the_lags_problem_cut_from_the_level_problem_is_the_same_numbers():
    """`_Problem.first` reuses the wider set's standardisation: every number must be
    the one a fresh `_Problem` on those columns gives. Its products read a strided view
    of the wider matrix; OpenBLAS gives the same bits for it here (checked on four real
    fits), but that rests on the BLAS, so the test asks for agreement to rounding."""
    rng = np.random.default_rng(3)
    n, A, S = 3000, 40, 6
    hw = rng.normal(size=(n, A)).cumsum(axis=1) * 0.1
    off = rng.normal(size=n) * 3 + 1
    Y = rng.normal(size=(n, S))
    wide = _Problem(np.concatenate([hw, off[:, None]], axis=1), Y)
    cut, fresh = wide.first(A, Y), _Problem(hw, Y)
    for name in ("cm", "cs", "Cc", "ym", "e"):
        np.testing.assert_allclose(getattr(cut, name), getattr(fresh, name), rtol=1e-12,
                                   atol=1e-12, err_msg=name)
    for alpha in ALPHAS:  # eigenvectors are defined up to sign; the solutions are not
        np.testing.assert_allclose(cut.solve(alpha)[0], fresh.solve(alpha)[0], rtol=1e-9,
                                   atol=1e-12)


def _mean_reverting(n, seed):
    """Windows whose target pulls back to a seasonal mean: needs the level and the
    calendar term, which the normalised lags alone do not carry."""
    rng = np.random.default_rng(seed)
    A, S = 6, 3
    level = rng.normal(size=n)
    season = rng.normal(size=(n, S, 1))
    hw = rng.normal(scale=0.3, size=(n, A))
    Y = (0.4 * hw[:, -1:] - 0.6 * level[:, None] + 0.8 * season[:, :, 0]
         + rng.normal(scale=0.05, size=(n, S)))
    return hw, level, season, Y


def test_the_choice_on_validation_takes_level_and_known_terms_when_they_help():
    tr, va = _mean_reverting(400, 0), _mean_reverting(200, 1)
    start = fit_linear_start(*tr, validation=va)
    assert start.level is not None and start.known is not None
    np.testing.assert_allclose(start.level, -0.6, atol=0.03)
    np.testing.assert_allclose(start.known[:, 0], 0.8, atol=0.03)
    np.testing.assert_allclose(start.lags[:, -1], 0.4, atol=0.05)
    assert start.val_mse < 0.01
    plain = fit_linear_start(*tr, validation=va, levels=(False,), knowns=(False,))
    assert plain.level is None and plain.known is None and plain.val_mse > 0.3
    # without validation windows the first option of each is taken
    first = fit_linear_start(*tr)
    assert first.level is None and first.known is None and first.val_mse is None
    assert first.alpha == ALPHAS[len(ALPHAS) // 2]


def test_the_choice_leaves_out_a_level_that_only_fits_noise():
    rng = np.random.default_rng(3)

    def walk(n):  # the target ignores the level: a random walk's next moves
        hw = rng.normal(size=(n, 6))
        return hw, rng.normal(size=n) * 5, None, rng.normal(size=(n, 2))

    start = fit_linear_start(*walk(300), validation=walk(300))
    assert start.alpha >= 0.1  # nothing to learn: the strongest shrinkage wins
    assert start.level is None or np.all(np.abs(start.level) < 0.05)


@pytest.mark.parametrize("strategy", ["direct", "recursive"])
@pytest.mark.parametrize("quantiles", [1, 3])
def test_the_network_at_its_linear_start_is_the_linear_model(strategy, quantiles):
    rng = np.random.default_rng(1)
    B, T, A, H, K = 50, 8, 5, 4, 2
    S = H if strategy == "direct" else 1
    cfg = NetConfig("gru", 1 + K, 6, 1, H, K, strategy, quantiles, quantiles // 2, A,
                    level=True, dtype="float64")
    net = SeqNet(cfg, 0)
    x = rng.normal(size=(B, T, 1 + K))
    F = rng.normal(size=(B, H, K))
    off = rng.normal(size=B)
    hw = np.concatenate([x[:, -A:, 0], off[:, None]], axis=1)
    start = fit_linear_start(x[:, -A:, 0], off, F, rng.normal(size=(B, S)),
                             validation=(x[:, -A:, 0], off, F, rng.normal(size=(B, S))),
                             levels=(True,), knowns=(True,), alphas=(1e-3,))
    set_linear_start(net.views(), start, A, quantiles, strategy)
    out = net.forward(x, F, hw, keep_cache=False)[0]
    linear = (x[:, -A:, 0] @ start.lags.T + off[:, None] * start.level
              + np.einsum("bsk,sk->bs", F[:, :S], start.known) + start.intercept)
    median = out[:, :, quantiles // 2]
    np.testing.assert_allclose(median, linear, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("strategy", ["direct", "recursive"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_silent_encoder_is_skipped_with_the_same_forecasts(strategy, cell, monkeypatch):
    """At the linear start the recurrent head weights are zero, so the encoder's state
    cannot reach a forecast: prediction skips it (`SeqNet.encoder_silent`). The
    forecasts must be the same bits as through the encoder, in one step and rolled
    out; once ``W`` moves, the encoder runs again."""
    rng = np.random.default_rng(2)
    B, T, A, H = 30, 12, 6, 5
    cfg = NetConfig(cell, 1, 7, 2, H, 0, strategy, 1, 0, A, dtype="float32")
    net = SeqNet(cfg, 3)
    x = rng.normal(size=(B, T, 1)).astype(np.float32)
    hw = x[:, -A:, 0].astype(np.float64)
    start = fit_linear_start(hw, np.zeros(B), None, rng.normal(size=(B, H if strategy == "direct" else 1)))
    set_linear_start(net.views(), start, A, 1, strategy)
    assert net.encoder_silent()
    calls = []
    real = net.enc.forward_final
    monkeypatch.setattr(net.enc, "forward_final", lambda *a, **k: calls.append(1) or real(*a, **k))
    through = net.forward(x, None, hw, keep_cache=True)[0]  # training's path runs the encoder
    assert calls
    calls.clear()
    skipped = net.forward(x, None, hw, keep_cache=False)[0]
    assert not calls
    np.testing.assert_array_equal(skipped, through)
    feed = lambda k, point: np.asarray(point, np.float32)[:, None]  # noqa: E731
    rolled = net.rollout(x, None, hw, 4, feed)
    assert not calls
    with monkeypatch.context() as m:  # the same rollout through the encoder
        m.setattr(net, "encoder_silent", lambda: False)
        np.testing.assert_array_equal(net.rollout(x, None, hw, 4, feed), rolled)
    assert calls
    net.views()["W"][0, 0] = 1e-3  # a trained head: the encoder matters again
    assert not net.encoder_silent()


def test_a_fitted_model_records_its_linear_start_and_round_trips(tmp_path):
    from forecast import datasets, io

    data = datasets.load("seattle-weather", target="temp_max")
    m = RNNForecaster(cell="gru", n_hidden=8, lookback=28, horizon=7, max_epochs=1,
                      level=True, random_state=0).fit(data)
    assert m.net_config_["level"] is True
    assert set(m.linear_start_) == {"level", "known", "alpha", "val_mse", "random_walk", "z",
                                    "z_from"}
    assert m.linear_start_["level"] is True
    # a weather series' start beats persistence by far more than noise
    assert m.linear_start_["random_walk"] is False and m.linear_start_["z"] > 4
    back = io.load_model(io.save_model(tmp_path / "m.npz", m, None, name="gru")).model
    np.testing.assert_array_equal(back.predict()["yhat"], m.predict()["yhat"])
    assert back.linear_start_ == m.linear_start_
    off = RNNForecaster(cell="gru", n_hidden=8, lookback=28, horizon=7, max_epochs=1,
                        level=False, random_state=0).fit(data)
    assert off.net_config_["level"] is False and off.linear_start_["level"] is False


def test_validation_windows_choose_but_never_fit_the_coefficients():
    tr, va = _mean_reverting(400, 0), _mean_reverting(200, 1)
    other = tuple(None if a is None else a * 100.0 for a in va)
    one = dict(levels=(True,), knowns=(True,), alphas=(1e-2,))
    a = fit_linear_start(*tr, validation=va, **one)
    b = fit_linear_start(*tr, validation=other, **one)
    for name in ("lags", "level", "known", "intercept"):
        assert getattr(a, name).tobytes() == getattr(b, name).tobytes(), name


# ---- the random walk as the null hypothesis ---------------------------------------------
def gain_z(y, pred, block):  # the gains of one run of windows, in standard errors
    return blocks_z([window_gains(y, pred)], block)


def test_gain_z_counts_standard_errors_over_blocks_of_windows():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(400, 5))
    # the zero forecast against itself: no gain at all
    assert gain_z(y, np.zeros_like(y), 5) == 0.0
    # a forecast that knows most of the truth: far above any threshold
    assert gain_z(y, 0.9 * y, 5) > 10
    # one that is worse than persistence: negative
    assert gain_z(y, y + 3.0, 5) < -10
    # by hand: block means of the per-window gain, over their standard error
    pred = 0.3 * y + rng.normal(size=y.shape)
    d = (y ** 2).mean(1) - ((y - pred) ** 2).mean(1)
    m = d.reshape(80, 5).mean(1)
    assert gain_z(y, pred, 5) == pytest.approx(m.mean() / (m.std(ddof=1) / np.sqrt(80)))
    # too few blocks to estimate a standard error
    assert gain_z(y[:5 * MIN_BLOCKS - 1], 0.9 * y[:5 * MIN_BLOCKS - 1], 5) is None


@pytest.mark.parametrize("block", [4096, 7])
def test_known_statistics_over_selected_rows_are_those_of_the_rows_alone(block, monkeypatch):
    monkeypatch.setattr(_Known, "BLOCK", block)
    rng = np.random.default_rng(2)
    n, S, K, p = 90, 4, 3, 5
    F, Y, C = rng.normal(size=(n, S, K)), rng.normal(size=(n, S)), rng.normal(size=(n, p))
    rows = rng.random(n) > 0.3
    Yr = Y[rows]
    a, b = _Known(F, Yr - Yr.mean(0), rows), _Known(F[rows], Yr - Yr.mean(0))
    for name in ("fm", "fs", "Gff", "Fy"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-12, atol=1e-14)
    Cc = C[rows] - C[rows].mean(0)
    np.testing.assert_allclose(a.cross(Cc), b.cross(Cc), rtol=1e-12, atol=1e-14)


def test_stacked_arrays_slice_like_their_concatenation():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(7, 3, 2)), rng.normal(size=(5, 3, 2))
    st, both = _Stacked([x, y]), np.concatenate([x, y])
    assert st.shape == both.shape and len(st) == 12
    for a, b in [(0, 12), (2, 9), (7, 12), (0, 3), (6, 8), (11, 20)]:
        np.testing.assert_array_equal(st[a:b], both[a:b])
        np.testing.assert_array_equal(st[a:b, :2], both[a:b, :2])


def test_blocks_z_pools_block_means_of_every_run():
    rng = np.random.default_rng(5)
    d1, d2 = rng.normal(0.3, 1, 23), rng.normal(0.3, 1, 17)
    m = np.concatenate([d1[3:].reshape(4, 5).mean(1), d2[2:].reshape(3, 5).mean(1)])
    assert blocks_z([d1, d2], 5) == pytest.approx(m.mean() / (m.std(ddof=1) / np.sqrt(7)))
    assert blocks_z([d1[:9], d2[:9]], 5) is None  # two blocks: too few
    assert blocks_z([], 5) is None


def test_cross_validated_forecasts_never_see_their_own_truths():
    """Each run is forecast by a fit on the other windows less `block` on either side:
    changing the truths inside one run and its margins leaves that run's forecasts as
    they were and moves every other run's."""
    hw, off, F, Y = _mean_reverting(300, 0)
    start = fit_linear_start(hw, off, F, Y, validation=_mean_reverting(100, 1))
    assert start.known is not None and start.level is not None
    runs = _cv_forecasts(hw, off, F, Y, start, 5, 5)
    assert [(a, b) for a, b, _ in runs] == [(0, 60), (60, 120), (120, 180), (180, 240),
                                            (240, 300)]
    Y2 = Y.copy()
    Y2[115:185] += 50.0  # run 2 and its margins of 5 windows
    runs2 = _cv_forecasts(hw, off, F, Y2, start, 5, 5)
    np.testing.assert_array_equal(runs2[2][2], runs[2][2])
    for k in (0, 1, 3, 4):
        assert not np.allclose(runs2[k][2], runs[k][2])
    gains = _cv_gains(hw, off, F, Y, start, 5, 5)
    for (a, b, p), g in zip(runs, gains):
        np.testing.assert_allclose(g, (Y[a:b] ** 2).mean(1) - ((Y[a:b] - p) ** 2).mean(1))


def _walk_windows(n, seed, A=20, S=5, drift=0.0):
    """Windows of a random walk normalised by their last value: lags, level, calendar
    terms that mean nothing and the next `S` moves."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(drift, 1.0, size=n + A + S)
    x = np.cumsum(steps)
    idx = np.arange(n)[:, None]
    win = x[idx + np.arange(A)]
    last = win[:, -1:]
    F = rng.normal(size=(n, S, 2))
    return win - last, last[:, 0], F, x[idx + A + np.arange(S)] - last


@pytest.mark.parametrize("drift", [0.0, 0.05])
def test_a_random_walk_start_is_persistence(drift):
    """On a random walk (with or without a small drift, which a ridge intercept picks up
    and a validation span may favour by chance) nothing beats persistence by two standard
    errors: the start is all zeros and says why."""
    tr, va = _walk_windows(600, 1, drift=drift), _walk_windows(300, 2, drift=drift)
    start = fit_linear_start(*tr, validation=va, null_z=2.0)
    assert start.random_walk and start.z is not None and start.z < 2.0
    assert start.z_from == "cross-validation"  # a weak validation z is checked on all windows
    assert not start.lags.any() and not start.intercept.any()
    assert start.level is None and start.known is None
    assert start.summary()["random_walk"] is True
    # without the null the ridge choice stands (and is not zero)
    free = fit_linear_start(*tr, validation=va)
    assert not free.random_walk and free.z is None and free.intercept.any()


def test_a_series_with_structure_keeps_its_start():
    tr, va = _mean_reverting(400, 0), _mean_reverting(200, 1)
    start = fit_linear_start(*tr, validation=va, null_z=2.0)
    assert not start.random_walk and start.z > 10
    assert start.z_from == "validation"  # far past twice null_z: no refits needed
    same = fit_linear_start(*tr, validation=va)
    for name in ("lags", "level", "known", "intercept"):
        assert getattr(start, name).tobytes() == getattr(same, name).tobytes(), name


def test_the_random_walk_note_says_what_was_done():
    rec = {"z": 0.5, "z_from": "cross-validation"}
    random_walk_note(rec, 2.0, True, False)
    assert rec["last_value"] is True
    assert rec["note"] == ("forecasts the last value (a random walk): no linear start beat "
                           "it by more than noise (z = 0.50 < 2, cross-validated over all "
                           "windows), so no network was trained from it")
    random_walk_note(rec, 2.0, True, True)
    assert rec["note"].endswith("; only its direction head was trained")
    random_walk_note(rec, 2.0, False, False)
    assert rec["last_value"] is False and "quantile head was trained" in rec["note"]
    rec = {"z": None}
    random_walk_note(rec, 2.0, True, False)
    assert "too few windows to test" in rec["note"]


def _price_frame(n=900, seed=0, drift=0.0003):
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(drift, 0.015, n)))
    return pd.DataFrame({"ds": pd.bdate_range("2015-01-02", periods=n), "Close": close})


def test_a_recurrent_model_on_a_random_walk_forecasts_the_last_value(tmp_path):
    """What the defaults do on a price series: the start and the trained network are
    both tested against the random walk on the validation windows; neither beats it, so
    the model forecasts the last value, records why, and the model file keeps the
    record. With ``null_z=None`` the same fit forecasts something else."""
    from forecast import io

    df = _price_frame()
    m = RNNForecaster(cell="gru", n_hidden=8, lookback=20, horizon=5, max_epochs=3,
                      random_state=0).fit(df, target="Close")
    rec = m.linear_start_
    assert rec["random_walk"] is True and rec["z"] < 2 and rec["last_value"] is True
    assert "forecasts the last value" in rec["note"]
    assert m.n_epochs_ == 0 and m.best_epoch_ == 0  # no network trained from it
    np.testing.assert_allclose(m.predict()["yhat"], df["Close"].iloc[-1], rtol=1e-6)
    back = io.load_model(io.save_model(tmp_path / "m.npz", m, None, name="gru")).model
    assert back.linear_start_ == rec
    np.testing.assert_array_equal(back.predict()["yhat"], m.predict()["yhat"])
    free = RNNForecaster(cell="gru", n_hidden=8, lookback=20, horizon=5, max_epochs=3,
                         random_state=0, null_z=None).fit(df, target="Close")
    assert free.linear_start_["random_walk"] is False
    assert np.abs(free.predict()["yhat"].to_numpy() - df["Close"].iloc[-1]).max() > 1e-3


def test_heads_that_need_training_are_trained_from_a_random_walk_start():
    """A direction head is trained while the point forecast stays the last value; a
    quantile head is trained as usual (its quantiles need it) and says so."""
    df = _price_frame()
    last = df["Close"].iloc[-1]
    d = RNNForecaster(cell="gru", n_hidden=8, lookback=20, horizon=5, max_epochs=2,
                      direction=True, random_state=0).fit(df, target="Close")
    assert d.linear_start_["random_walk"] and d.linear_start_["last_value"]
    assert d.n_epochs_ > 0 and "direction head" in d.linear_start_["note"]
    np.testing.assert_allclose(d.predict()["yhat"], last, rtol=1e-6)
    q = RNNForecaster(cell="gru", n_hidden=8, lookback=20, horizon=5, max_epochs=2,
                      loss="quantile", random_state=0).fit(df, target="Close")
    assert q.linear_start_["random_walk"] and q.linear_start_["last_value"] is False
    assert q.n_epochs_ > 0
    out = q.predict()
    assert (out["yhat_upper_80"] - out["yhat_lower_80"]).min() > 0


def test_a_warm_refit_keeps_the_record_of_its_start():
    df = _price_frame()
    m = RNNForecaster(cell="gru", n_hidden=8, lookback=20, horizon=5, max_epochs=2,
                      random_state=0, warm_start=True).fit(df.iloc[:800], target="Close")
    first = dict(m.linear_start_)
    m.fit(df, target="Close")
    assert m.linear_start_ is not None and m.linear_start_["random_walk"] is True
    assert m.linear_start_["z"] == first["z"]  # the choice of the fit it continues
    np.testing.assert_allclose(m.predict()["yhat"], df["Close"].iloc[-1], rtol=1e-6)


def test_null_z_false_turns_the_test_off_like_none():
    df = _price_frame(400)
    kw = dict(cell="gru", n_hidden=4, lookback=20, horizon=5, max_epochs=1, random_state=0)
    a = RNNForecaster(null_z=False, **kw).fit(df, target="Close")
    b = RNNForecaster(null_z=None, **kw).fit(df, target="Close")
    assert a.linear_start_["random_walk"] is False and a.linear_start_["z"] is None
    np.testing.assert_array_equal(a.predict()["yhat"], b.predict()["yhat"])


@pytest.mark.parametrize("bad", [-np.inf, np.nan, "2", True])
def test_null_z_must_be_a_finite_number_or_none(bad):
    from forecast.errors import ConfigError

    with pytest.raises(ConfigError, match="null_z"):
        RNNForecaster(cell="gru", n_hidden=4, lookback=20, horizon=5, max_epochs=1,
                      null_z=bad).fit(_price_frame(300), target="Close")


def test_a_backtest_says_which_fits_kept_the_random_walk():
    """The folds table marks each recurrent refit that forecasts the last value, and the
    sentence the CLI and the report print counts them; a model without the test (naive)
    and a weather-like series get no sentence."""
    from forecast.backtest import BacktestConfig, backtest
    from forecast.report import random_walk_sentence

    gru = RNNForecaster(cell="gru", n_hidden=4, lookback=20, horizon=5, max_epochs=2)
    res = backtest({"gru": gru}, _price_frame(900),
                   BacktestConfig(horizon=5, n_folds=8, step=5, refit_every=4))
    refits = res.folds[res.folds["refit"]]
    assert refits.set_index("model").loc["gru", "random_walk"].tolist() == [True, True]
    assert refits.set_index("model").loc["naive", "random_walk"].isna().all()
    assert random_walk_sentence(res.folds) == (
        "gru forecast the last value in 2 of 2 fit(s): no linear start beat a random walk "
        "by more than noise, so no network was trained from it (`forecast fit` says by how "
        "much).")
    t = np.arange(900)
    wave = pd.DataFrame({"ds": pd.date_range("2020-01-01", periods=900, freq="D"),
                         "Close": 10 + 3 * np.sin(2 * np.pi * t / 7)
                         + np.random.default_rng(1).normal(0, 0.2, 900)})
    res = backtest({"gru": gru}, wave, BacktestConfig(horizon=5, n_folds=8, step=5,
                                                      refit_every=4))
    assert random_walk_sentence(res.folds) is None
    assert random_walk_sentence(None) is None
