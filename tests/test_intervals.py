"""Intervals per series: held-out calibration tails, scale and row order cannot change a
radius, old model files still load, coverage on long real series."""

import numpy as np
import pandas as pd
import pytest

from forecast import datasets, metrics
from forecast.backtest import BacktestConfig, backtest
from forecast.models import Drift, LinearLags, Naive, RNNForecaster, SeasonalNaive, model_from_state
from forecast.data import Frequency
from forecast.models.intervals import seasonal_ratio, volatility, year_steps


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


def test_year_steps_only_for_clock_grids_of_a_day_or_less():
    assert year_steps(Frequency("D")) == 365.25
    assert year_steps(Frequency("h")) == 8766.0
    assert year_steps(Frequency("15min")) == 35064.0
    for alias in ("B", "XNYS", "W-MON", "MS"):
        assert year_steps(Frequency(alias)) is None, alias


def _seasonal_walk(years=10, seed=0):
    """A daily random walk whose step size follows the year: ``exp(-cos)``, from 0.37
    on 1 January to 2.7 in July (a 7-fold swing, as in a continental climate's
    temperatures)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(365.25 * years))
    return np.cumsum(np.exp(-np.cos(2 * np.pi * t / 365.25)) * rng.standard_normal(len(t)))


def test_seasonal_ratio_anticipates_the_volatile_season():
    spring = int(365.25 * 9 + 91 - 4)  # volatility rising through the next weeks
    autumn = int(365.25 * 9 + 274 - 4)  # falling
    for seed in range(3):
        y = _seasonal_walk(seed=seed)
        r = seasonal_ratio(y, np.array([0, len(y)]), np.zeros(2, np.int64),
                           np.array([spring, autumn]), 20, 365.25, 7)
        assert r[0] > 1.1 and r[1] < 0.9, (seed, r)
    rng = np.random.default_rng(1)
    flat = np.cumsum(rng.standard_normal(len(y)))
    r_flat = seasonal_ratio(flat, np.array([0, len(y)]), np.zeros(2, np.int64),
                            np.array([spring, autumn]), 20, 365.25, 7)
    np.testing.assert_allclose(r_flat, 1.0, atol=0.12)


def test_seasonal_ratio_reads_only_the_past_and_needs_a_year():
    y = _seasonal_walk()
    bounds = np.array([0, len(y)])
    o = np.array([400, 1500])
    r = seasonal_ratio(y, bounds, np.zeros(2, np.int64), o, 20, 365.25, 7)
    z = y.copy()
    z[400:] = 1e6 * np.random.default_rng(2).standard_normal(len(y) - 400)
    r2 = seasonal_ratio(z, bounds, np.zeros(2, np.int64), o, 20, 365.25, 7)
    assert r2[0] == r[0]  # the first origin reads rows before 400 only
    assert r2[1] != r[1]
    np.testing.assert_array_equal(
        seasonal_ratio(y, bounds, np.zeros(3, np.int64), np.array([100, 300, 385]), 20, 365.25, 7),
        1.0)  # less than a year and a window before the origin: no cycle fits


def test_seasonal_volatility_evens_coverage_across_the_year():
    """On series whose volatility follows the year, the trailing volatility alone
    under-covers while it rises (spring) and over-covers while it falls (autumn); scaled
    by `seasonal_ratio`, the naive model's 80 % intervals cover about as often in both.
    Four years of weekly folds on each of three series."""
    from forecast.models import intervals

    cfg = BacktestConfig(horizon=7, n_folds=208, step=7, refit_every=52)
    gap, cover = {True: [], False: []}, {True: [], False: []}
    for seed in range(3):
        y = _seasonal_walk(seed=seed)
        frame = pd.DataFrame({"ds": pd.date_range("2001-01-01", periods=len(y), freq="D"),
                              "y": y})
        for on in (True, False):
            saved, intervals.SEASONAL_VOLATILITY = intervals.SEASONAL_VOLATILITY, on
            try:
                f = backtest({"naive": Naive()}, frame, cfg).forecasts
            finally:
                intervals.SEASONAL_VOLATILITY = saved
            f = f[f.model == "naive"]
            cov = (f.y >= f.yhat_lower_80) & (f.y <= f.yhat_upper_80)
            month = pd.to_datetime(f.cutoff).dt.month
            rising, falling = cov[month.isin([3, 4, 5])].mean(), cov[month.isin([9, 10, 11])].mean()
            gap[on].append(falling - rising)
            cover[on] += [rising, falling]
    off, on = np.mean(gap[False]), np.mean(gap[True])
    assert off > 0.12, gap  # the trailing volatility alone: a lopsided year
    assert abs(on) < off / 3, gap
    assert 0.74 <= min(cover[True]) and max(cover[True]) <= 0.86, cover


def test_the_model_file_records_the_volatility_period(tmp_path):
    """Daily weather calibrates with the yearly period, trading days without; a saved
    model's intervals are the fitted one's, and a file written before the period
    (no ``volatility_period``) predicts with the trailing volatility alone."""
    from forecast import io

    data = datasets.load("seattle-weather", target="temp_max")
    weather = Naive(horizon=7).fit(data)
    assert weather.calibration_["volatility_period"] == 365.25
    price = Naive(horizon=5).fit(datasets.load("aapl", target="Close"))
    assert price.calibration_["volatility_period"] is None
    back = io.load_model(io.save_model(tmp_path / "w.npz", weather, None, name="naive")).model
    pd.testing.assert_frame_equal(back.predict(), weather.predict())
    meta, arrays = weather.to_state()
    del meta["fitted"]["calibration_"]["volatility_period"]
    old = model_from_state(meta, arrays)  # from new data: the trailing volatility alone
    assert not np.allclose(old.predict(data)["yhat_upper_80"], weather.predict(data)["yhat_upper_80"])
    np.testing.assert_array_equal(weather.predict(data)["yhat_upper_80"],
                                  weather.predict()["yhat_upper_80"])


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
    # a gain within the noise of the folds is called what it may be: luck
    s["skill_z"], s["n_folds"] = [0.8, np.nan, 0.1], 12
    assert skill_verdict(s) == ("gru beats the naive forecast by 20.0% (MAE) over these 12 "
                                "folds, but that is within the noise of their per-fold "
                                "errors (z = 0.8, below 2): it may be luck; backtest more "
                                "folds before trusting it.")
    s.loc[0, "skill_z"] = 3.5
    assert skill_verdict(s) == ("gru beats the naive forecast by 20.0% (MAE) over these 12 "
                                "folds (z = 3.5 over the per-fold errors).")
    # a summary read back from a model file has None where the table had NaN
    s = s.astype(object)
    s.loc[0, "skill_z"], s["n_folds"] = None, None
    assert skill_verdict(s) == "gru beats the naive forecast by 20.0% (MAE) in this backtest."


def test_backtest_summary_weighs_each_gain_against_the_folds_noise():
    """``skill_z`` is the paired t statistic of the per-(series, fold) MAEs against the
    naive forecast's, recomputed here from the forecast rows with SciPy."""
    from scipy.stats import ttest_rel

    data = datasets.load("seattle-weather", target="temp_max")
    res = backtest({"drift": Drift(), "linear": LinearLags(lookback=60)}, data,
                   BacktestConfig(horizon=7, n_folds=30, step=7, refit_every=10))
    s = res.summary.set_index("model")
    f = res.forecasts.assign(ae=(res.forecasts["y"] - res.forecasts["yhat"]).abs())
    per = f.groupby(["model", "fold"])["ae"].mean()
    for m in ("drift", "linear", "seasonal_naive"):
        ref = ttest_rel(per.loc["naive"].to_numpy(), per.loc[m].to_numpy()).statistic
        assert s.loc[m, "skill_z"] == pytest.approx(ref, rel=1e-10)
    assert np.isnan(s.loc["naive", "skill_z"])


def test_backtest_summary_tests_each_coverage_against_chance():
    """``cover_z_<level>`` is `metrics.coverage_z` over the folds, recomputed here from
    the forecast rows; the verdict names the intervals it finds off their level."""
    from forecast.report import coverage_verdict

    data = datasets.load("seattle-weather", target="temp_max")
    res = backtest({"drift": Drift()}, data,
                   BacktestConfig(horizon=7, n_folds=30, step=7, refit_every=10))
    s = res.summary.set_index("model")
    f = res.forecasts
    for lv in (80, 95):
        lo, hi = f[f"yhat_lower_{lv}"], f[f"yhat_upper_{lv}"]
        g = f.assign(hit=(f["y"] >= lo) & (f["y"] <= hi), n=1).groupby(["model", "fold"])
        per = g[["hit", "n"]].sum()
        for m in ("drift", "naive", "seasonal_naive"):
            ref = metrics.coverage_z(per.loc[m, "hit"].to_numpy(), per.loc[m, "n"].to_numpy(), lv)
            assert s.loc[m, f"cover_z_{lv}"] == pytest.approx(ref, rel=1e-12)
    t = pd.DataFrame({"model": ["gru", "naive"], "coverage_80": [0.7, 0.8],
                      "coverage_95": [0.9, 0.96], "cover_z_80": [-2.5, 0.1],
                      "cover_z_95": [-1.0, 0.4], "n_folds": [40, 40]})
    assert coverage_verdict(t) == (
        "Intervals off their level by more than chance over these 40 folds (over 2.02 "
        "standard errors): gru's 80 % covered 70% (too narrow, z = -2.50). The other "
        "intervals covered their level within chance.")
    # a standard error from a few folds is itself uncertain: Student's t sets the bar
    assert coverage_verdict(t.assign(n_folds=5)).startswith(
        "Every model's intervals covered their level within chance over these 5 folds: each "
        "coverage lies within 2.78 standard errors")
    assert "over 2 standard errors" in coverage_verdict(t.drop(columns="n_folds"))
    assert "over 2 standard errors" in coverage_verdict(t.assign(n_folds=5), z_max=2.0)
    t.loc[1, ["coverage_95", "cover_z_95"]] = [0.99, 2.2]
    assert "naive's 95 % covered 99% (too wide, z = +2.20)" in coverage_verdict(t)
    t[["cover_z_80", "cover_z_95"]] = 0.5
    assert coverage_verdict(t) == (
        "Every model's intervals covered their level within chance over these 40 folds: each "
        "coverage lies within 2.02 standard errors of 80 % and 95 % (the folds, not the "
        "steps, are the samples).")
    # a summary read back from a model file: None where the table had NaN
    t = t.astype(object)
    t[["cover_z_80", "cover_z_95"]] = None
    assert coverage_verdict(t) is None
    assert coverage_verdict(t.drop(columns=["cover_z_80", "cover_z_95"])) is None


def test_the_verdict_weighs_the_best_model_against_the_best_baseline():
    """On a seasonal series beating naive says little: the verdict adds how the best
    non-baseline model compares with the best baseline (and its paired z); a backtest
    run model by model (the CLI's) finds that baseline among all of them."""
    from forecast import workflows as wf
    from forecast.report import baseline_verdict, skill_verdict

    s = pd.DataFrame({"model": ["gru", "naive", "seasonal_naive"], "mae": [1.0, 5.0, 1.1],
                      "skill_mae": [0.8, 0.0, 0.78], "best_baseline": "seasonal_naive",
                      "skill_vs_baseline": [1 - 1.0 / 1.1, -3.5, 0.0],
                      "skill_vs_baseline_z": [2.5, -9.0, np.nan], "n_folds": 40})
    assert baseline_verdict(s) == ("Against seasonal naive, the best baseline here, gru is "
                                   "9.1% better (z = 2.5).")
    assert skill_verdict(s).endswith(" Against seasonal naive, the best baseline here, gru "
                                     "is 9.1% better (z = 2.5).")
    s.loc[0, "skill_vs_baseline_z"] = 0.7
    assert baseline_verdict(s).endswith("9.1% better, within the noise of the folds (z = 0.7, "
                                        "below 2).")
    s.loc[0, "skill_vs_baseline"] = -0.04
    assert baseline_verdict(s) == ("gru is 4.0% worse (MAE) than seasonal naive, the best "
                                   "baseline here: on this series seasonal naive is the "
                                   "forecast to use.")
    s.loc[0, "skill_vs_baseline"] = -2.0
    assert baseline_verdict(s).startswith("gru's MAE is 3.0 times that of seasonal naive")
    assert baseline_verdict(s.assign(best_baseline="naive")) is None  # naive_verdict says it
    assert baseline_verdict(s.drop(columns="best_baseline")) is None

    run = wf.backtest(wf.DataSpec("seattle-weather", target="temp_max"),
                      [wf.ModelSpec("linear", lookback=30), wf.ModelSpec("seasonal_naive"),
                       wf.ModelSpec("drift")], wf.BacktestSpec(folds=6, horizon=7))
    t = run.result.summary.set_index("model")
    best = min(("naive", "seasonal_naive", "drift"), key=lambda m: t.loc[m, "mae"])
    assert (t["best_baseline"] == best).all()
    np.testing.assert_allclose(t["skill_vs_baseline"], 1 - t["mae"] / t.loc[best, "mae"])
    assert np.isnan(t.loc[best, "skill_vs_baseline_z"])
    assert np.isfinite(t.loc["linear", "skill_vs_baseline_z"])
