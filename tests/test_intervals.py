"""Intervals per series: held-out calibration tails, scale and row order cannot change a
radius, old model files still load, coverage on long real series."""

import numpy as np
import pandas as pd
import pytest

from forecast import datasets
from forecast.backtest import BacktestConfig, backtest
from forecast.models import Drift, LinearLags, Naive, RNNForecaster, SeasonalNaive, model_from_state
from forecast.models.intervals import volatility


def two_series(n=600, seed=0):
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2020-01-01", periods=n, freq="D")
    a = pd.DataFrame({"unique_id": "a", "ds": idx, "y": np.cumsum(rng.standard_normal(n))})
    b = pd.DataFrame({"unique_id": "b", "ds": idx,
                      "y": 100 * np.cumsum(rng.standard_normal(n))})
    return a, b


def radii(model, frames):
    fc = model.fit(pd.concat(frames, ignore_index=True)).predict()
    out = {}
    for uid, g in fc.groupby("unique_id"):
        out[uid] = np.stack([(g[f"yhat_upper_{lv}"] - g["yhat"]).to_numpy() for lv in (80, 95)])
    return out


@pytest.mark.parametrize("make", [lambda: Naive(horizon=3), lambda: SeasonalNaive(horizon=3),
                                  lambda: Drift(horizon=3)], ids=["naive", "seasonal", "drift"])
def test_scales_1_and_100_in_both_orders_give_the_same_radii(make):
    a, b = two_series()
    ab, ba = radii(make(), [a, b]), radii(make(), [b, a])
    for uid in "ab":
        np.testing.assert_array_equal(ab[uid], ba[uid])  # row order changes nothing
    alone = radii(make(), [a])["a"]
    np.testing.assert_array_equal(ab["a"], alone)  # nor does a series of scale 100 beside it
    ratio = ab["b"] / ab["a"]
    assert (ratio > 30).all() and (ratio < 300).all()  # each series' own scale


def test_global_models_calibrate_each_series_on_its_own_tail():
    a, b = two_series()
    lin_ab, lin_ba = radii(LinearLags(lookback=10, horizon=3), [a, b]), \
        radii(LinearLags(lookback=10, horizon=3), [b, a])
    for uid in "ab":
        np.testing.assert_allclose(lin_ab[uid], lin_ba[uid], rtol=1e-9)
    rnn = RNNForecaster(cell="gru", n_hidden=4, lookback=10, horizon=3, max_epochs=2,
                        random_state=0)
    r = radii(rnn, [a, b])
    assert ((r["b"] / r["a"]) > 30).all() and ((r["b"] / r["a"]) < 300).all()
    cal = rnn.calibration_
    assert cal["source"] == "held-out tail" and len(cal["windows"]) == 2
    assert min(cal["windows"]) >= 100 and cal["pooled"] == []


def test_baselines_calibrate_on_a_held_out_tail_not_training_residuals():
    a, _ = two_series()
    model = LinearLags(lookback=10, horizon=3).fit(a)
    assert model.calibration_["source"] == "held-out tail"
    assert model.calibration_["windows"] == [118]  # the windows forecasting the last 20 %
    # the linear fit never saw the tail: refitting on the first 80 % gives the same weights
    y = a["y"].to_numpy()
    s = np.arange(480 - 13 + 1)
    X = np.stack([y[k:k + 10] for k in s])[:, :, None]
    Y = np.stack([y[k + 10:k + 13] for k in s])
    head = LinearLags(lookback=10, horizon=3, levels=()).fit_windows(X, Y)
    np.testing.assert_allclose(model.coef_, head.coef_, rtol=1e-7, atol=1e-10)


def test_a_short_series_borrows_the_pooled_scores():
    a, b = two_series()
    short = b.iloc[:150]
    model = Naive(horizon=3).fit(pd.concat([a, short], ignore_index=True))
    assert model.calibration_["pooled"] == ["b"]
    np.testing.assert_array_equal(model.conformal_radius_[1], model.conformal_pooled_)


def test_local_volatility_reads_only_rows_before_the_origin():
    y = np.array([0.0, 1.0, 3.0, 6.0, 100.0, 0.0, 2.0, 4.0])
    bounds = np.array([0, 5, 8])
    v = volatility(y, bounds, np.array([0, 0, 1]), np.array([4, 2, 8]), window=2)
    np.testing.assert_allclose(v, [2.5, 1.0, 2.0])  # |6-3|,|3-1| ; |1-0| ; |2-0|,|4-2|
    assert np.isnan(volatility(y, bounds, np.array([1]), np.array([6]), None))[0]


def test_old_model_states_with_one_radius_still_predict():
    a, _ = two_series()
    model = Naive(horizon=3).fit(a)
    meta, arrays = model.to_state()
    for name in ("interval_mode_", "calibration_"):
        del meta["fitted"][name]
    arrays = {k: v for k, v in arrays.items() if k not in
              ("conformal_pooled_", "series_vol_", "last_vol_")}
    arrays["conformal_radius_"] = np.array([[1.0, 2.0, 3.0], [2.0, 3.0, 4.0]])
    old = model_from_state(meta, arrays)
    fc = old.predict()
    np.testing.assert_allclose(fc["yhat_upper_80"] - fc["yhat"], [1.0, 2.0, 3.0])


@pytest.mark.parametrize("name,target,horizon", [("etth1", "OT", 24), ("aapl", "Close", 5),
                                                 ("seattle-weather", "temp_max", 7)])
def test_every_baseline_covers_on_long_real_series(name, target, horizon):
    data = datasets.load(name, target=target)
    models = {"drift": Drift(), "linear": LinearLags(lookback=60)}
    res = backtest(models, data, BacktestConfig(horizon=horizon, n_folds=40, step=horizon,
                                                refit_every=10))
    for model, row in res.summary.set_index("model").iterrows():
        assert 0.74 <= row["coverage_80"] <= 0.87, (name, model, row["coverage_80"])
        assert 0.91 <= row["coverage_95"] <= 0.98, (name, model, row["coverage_95"])


def test_report_and_cli_say_plainly_when_nothing_beats_naive():
    from forecast.report import skill_verdict

    s = pd.DataFrame({"model": ["gru", "naive", "drift"], "skill_mae": [0.01, 0.0, -0.02]})
    assert skill_verdict(s).startswith("No model beats the naive forecast by more than 2%")
    s.loc[0, "skill_mae"] = 0.2
    assert skill_verdict(s) == "gru beats the naive forecast by 20.0% (MAE) in this backtest."
    # a gain that drift (the average trend alone) matches is the trend's, and said so
    s.loc[2, "skill_mae"] = 0.19
    assert skill_verdict(s) == ("gru beats the naive forecast by 20.0% (MAE), but drift alone "
                                "does so by 19.0%: the gain is the series' average trend over "
                                "this backtest, not a pattern a model found, and a trend can "
                                "turn.")
    s.loc[0, "skill_mae"] = 0.1
    assert skill_verdict(s).startswith("drift beats the naive forecast by 19.0% (MAE): the gain")
    s.loc[2, "skill_mae"] = 0.05  # drift well behind the best model: no trend caveat
    s.loc[0, "skill_mae"] = 0.2
    assert skill_verdict(s).endswith("in this backtest.")
