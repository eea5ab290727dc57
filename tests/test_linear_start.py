"""The linear start of the recurrent models (`forecast.models._linear_start`): its solve
against a plain per-step ridge reference, its choice on validation windows, and the
network it sets up (it must predict exactly the linear model before any training)."""

from __future__ import annotations

import numpy as np
import pytest

from forecast.models import RNNForecaster
from forecast.models._linear_start import ALPHAS, _Known, _Problem, fit_linear_start, set_linear_start
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
    assert set(m.linear_start_) == {"level", "known", "alpha", "val_mse"}
    assert m.linear_start_["level"] is True
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
