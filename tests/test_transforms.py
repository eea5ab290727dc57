"""forecast.transforms: invertible, JSON-serialisable, fitted on the training span only."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn import preprocessing as skp

from forecast import data, transforms as T, windows as W
from forecast.errors import ConfigError, DataError, DataWarning, NotFittedError

RNG = np.random.default_rng(0)
X = np.exp(RNG.normal(size=(200, 3)).cumsum(axis=0) * 0.05) * [10.0, 50.0, 2.0]


def all_transforms():
    return [
        T.StandardScaler(),
        T.RobustScaler(),
        T.RobustScaler(quantile_range=(10.0, 90.0)),
        T.MinMaxScaler(),
        T.MinMaxScaler(feature_range=(-1.0, 1.0)),
        T.Log(),
        T.Log(offset=1.0),
        T.Difference(),
        T.Difference(lag=3),
        T.LogReturns(),
        T.Pipeline([T.Log(), T.Difference(), T.StandardScaler()]),
        T.Pipeline([T.LogReturns(), T.RobustScaler()]),
    ]


@pytest.mark.parametrize("sk,ours", [
    (skp.StandardScaler(), T.StandardScaler()),
    (skp.RobustScaler(), T.RobustScaler()),
    (skp.MinMaxScaler(), T.MinMaxScaler()),
    (skp.MinMaxScaler(feature_range=(-1, 1)), T.MinMaxScaler(feature_range=(-1, 1))),
])
def test_scalers_match_scikit_learn(sk, ours):
    np.testing.assert_allclose(ours.fit_transform(X), sk.fit_transform(X), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("t", all_transforms(), ids=repr)
def test_round_trip_in_original_units(t):
    Z = t.fit(X[:150]).transform(X)
    h = t.history_rows
    back = t.inverse_transform(Z[h + 5:], history=X[: h + 5] if h else None)
    np.testing.assert_allclose(back, X[h + 5:], rtol=1e-10)


@pytest.mark.parametrize("t", all_transforms(), ids=repr)
def test_to_dict_from_dict_round_trip_through_json(t):
    t.fit(pd.DataFrame(X, columns=["a", "b", "c"]))
    text = json.dumps(t.to_dict(), allow_nan=False)
    back = T.transform_from_dict(json.loads(text))
    assert type(back) is type(t) and back.to_dict() == t.to_dict()
    np.testing.assert_array_equal(back.transform(X), t.transform(X))


def test_unfitted_transform_round_trips_and_refuses_to_transform():
    t = T.transform_from_dict(T.StandardScaler(ddof=1).to_dict())
    assert t.ddof == 1
    with pytest.raises(NotFittedError, match="not fitted yet; call fit"):
        t.transform(X)


def test_from_dict_rejects_malformed_descriptions():
    with pytest.raises(ConfigError, match="unknown transform 'Pickle'"):
        T.transform_from_dict({"type": "Pickle"})
    d = T.StandardScaler().fit(X).to_dict()
    d["state"]["mean_"] = [1.0]
    with pytest.raises(ConfigError, match=r"malformed StandardScaler description: mean_ has shape \(1,\)"):
        T.transform_from_dict(d)
    with pytest.raises(ConfigError, match="expected a MinMaxScaler description"):
        T.MinMaxScaler.from_dict(T.StandardScaler().to_dict())


def test_fit_forgets_previous_fit_and_returns_self():
    t = T.StandardScaler()
    assert t.fit(X) is t
    t.fit(X[:, :1])
    assert t.n_features_in_ == 1 and t.mean_.shape == (1,)


@pytest.mark.parametrize("t", [T.StandardScaler(), T.RobustScaler(), T.MinMaxScaler()], ids=repr)
def test_constant_column_scale_one_with_warning(t):
    Xc = X.copy()
    Xc[:, 1] = 7.0
    with pytest.warns(DataWarning, match=r"column 1 is constant in the fitted rows \(every value is 7\); using scale 1"):
        t.fit(Xc)
    Z = t.transform(Xc)
    assert np.isfinite(Z).all()
    np.testing.assert_allclose(t.inverse_transform(Z), Xc)


def test_scalers_ignore_nan_rows():
    Xn = X.copy()
    Xn[5:9] = np.nan
    t = T.StandardScaler().fit(Xn)
    np.testing.assert_allclose(t.mean_, np.nanmean(Xn, axis=0))


def test_all_nan_column_is_a_data_error():
    Xn = X.copy()
    Xn[:, 2] = np.nan
    with pytest.raises(DataError, match="column 2 has no finite value in the fitted rows"):
        T.StandardScaler().fit(Xn)


def test_log_rejects_non_positive_values():
    with pytest.raises(DataError, match=r"Log: column 0 \('p'\) has 1 value\(s\) <= 0 \(first at row 2: -1\).*offset="):
        T.Log().fit(pd.DataFrame({"p": [1.0, 2.0, -1.0]}))


def test_log_returns_reject_zero_prices_after_fit():
    t = T.LogReturns().fit(X[:, :1])
    with pytest.raises(DataError, match=r"LogReturns: column 0 has 1 value\(s\) <= 0"):
        t.transform(np.array([1.0, 0.0, 2.0]))


def test_difference_first_rows_are_nan_and_values_are_differences():
    Z = T.Difference(lag=2).fit(X).transform(X)
    assert np.isnan(Z[:2]).all()
    np.testing.assert_allclose(Z[2:], X[2:] - X[:-2])


def test_inverse_needs_history():
    t = T.Difference().fit(X)
    with pytest.raises(ConfigError, match=r"needs history=: the last 1 row\(s\) before the values"):
        t.inverse_transform(X)


def test_inverse_of_a_batch_of_single_target_forecasts():
    """Forecasts (B, H) of one column come back with the end of each input window."""
    prices = X[:, 1]
    pipe = T.Pipeline([T.LogReturns(), T.StandardScaler()]).fit(pd.DataFrame(X[:150], columns=["a", "b", "c"]))
    Z = pipe.transform(X)
    L, H = 20, 5
    starts = np.array([30, 70, 120])
    z_future = np.stack([Z[s + L: s + L + H, 1] for s in starts])  # (B, H) scaled log-returns
    history = np.stack([prices[s: s + L] for s in starts])  # (B, L) prices
    back = pipe.inverse_transform(z_future, history=history, columns="b")
    np.testing.assert_allclose(back, np.stack([prices[s + L: s + L + H] for s in starts]), rtol=1e-10)


def test_columns_subset_of_a_scaler():
    t = T.StandardScaler().fit(pd.DataFrame(X, columns=["a", "b", "c"]))
    y = (X[:10, 2] - t.mean_[2]) / t.scale_[2]
    np.testing.assert_allclose(t.inverse_transform(y, columns="c"), X[:10, 2])
    np.testing.assert_allclose(t.inverse_transform(y[None, :, None], columns=[2])[0, :, 0], X[:10, 2])
    with pytest.raises(ConfigError, match=r"column 'z' was not seen in fit"):
        t.transform(y, columns="z")
    with pytest.raises(ConfigError, match=r"expected 3 feature\(s\) in the last axis"):
        t.transform(X[:, :2])


def test_get_set_params():
    t = T.RobustScaler()
    assert t.get_params() == {"quantile_range": (25.0, 75.0)}
    t.set_params(quantile_range=(5.0, 95.0))
    with pytest.raises(ConfigError, match="has no parameter 'q'"):
        t.set_params(q=1)


# ---- no leakage ---------------------------------------------------------------------------
def _frame(values: np.ndarray, ids=None) -> pd.DataFrame:
    n = len(values)
    frame = pd.DataFrame({"ds": pd.date_range("2020-01-01", periods=n, freq="h"),
                          "y": values[:, 0], "x1": values[:, 1], "x2": values[:, 2]})
    if ids is not None:
        frame.insert(0, "unique_id", ids)
    return frame


@pytest.mark.parametrize("t", all_transforms(), ids=repr)
def test_no_leakage_values_after_cutoff_never_change_the_fit(t):
    """Changing every value after the training cut-off leaves every fitted transform (and
    every training window) unchanged."""
    cut = 120
    original = _frame(X)
    changed = original.copy()
    later = np.exp(RNG.normal(size=(len(X) - cut, 3))) * 1000.0
    changed.loc[cut:, ["y", "x1", "x2"]] = later
    fits, trains = [], []
    for frame in (original, changed):
        ds = data.load(frame, target="y", covariates=["x1", "x2"])
        split = W.split_at(ds, cut, 160)
        wd = W.prepare(ds, lookback=12, horizon=4, split=split, transform=t)
        fits.append(json.dumps(wd.transform.to_dict()))
        trains.append(wd.train.materialize())
    assert fits[0] == fits[1]
    np.testing.assert_array_equal(trains[0].x, trains[1].x)
    np.testing.assert_array_equal(trains[0].y, trains[1].y)


def test_no_leakage_across_many_series():
    values = np.concatenate([X[:100], X[100:] * 3])
    ids = ["a"] * 100 + ["b"] * 100
    base = _frame(values, ids)
    base["ds"] = list(pd.date_range("2020-01-01", periods=100, freq="h")) * 2
    changed = base.copy()
    for uid in ("a", "b"):
        idx = changed.index[changed.unique_id == uid][70:]
        changed.loc[idx, ["y", "x1", "x2"]] = 1e6
    fits = []
    for frame in (base, changed):
        ds = data.load(frame, target="y", covariates="all")
        wd = W.prepare(ds, 8, 2, W.split_by_fraction(ds, val=0.1, test=0.2),
                       T.Pipeline([T.Difference(), T.StandardScaler()]))
        fits.append(wd.transform.to_dict())
    assert fits[0] == fits[1]


# ---- calendar features --------------------------------------------------------------------
def test_calendar_features_are_sine_cosine_pairs():
    idx = pd.date_range("2021-01-04", periods=48, freq="h")  # a Monday
    cal = T.calendar_features(idx, ["hour", "dayofweek", "dayofyear"])
    assert list(cal.columns) == ["hour_sin", "hour_cos", "dow_sin", "dow_cos", "doy_sin", "doy_cos"]
    np.testing.assert_allclose(cal["hour_sin"].iloc[6], 1.0)  # 06:00 is a quarter day
    np.testing.assert_allclose(cal["hour_cos"].iloc[12], -1.0)
    np.testing.assert_allclose(cal["dow_sin"].iloc[0], 0.0, atol=1e-12)  # Monday
    np.testing.assert_allclose(cal[["hour_sin", "hour_cos"]].pow(2).sum(axis=1), 1.0)


def test_default_calendar_features_follow_the_frequency():
    assert T.default_calendar_features("h") == ("hour", "dayofweek", "dayofyear")
    assert T.default_calendar_features("D") == ("dayofweek", "dayofyear")
    assert T.default_calendar_features("XNYS") == ("dayofweek", "dayofyear")
    assert T.default_calendar_features("MS") == ()


def test_calendar_features_as_known_future_covariates():
    aapl = T.add_calendar_features(data.load("aapl"))
    assert aapl.known == ("dow_sin", "dow_cos", "doy_sin", "doy_cos")
    assert aapl.covariates == aapl.known
    future = T.future_calendar_features(aapl, 3)
    assert list(future.index.strftime("%Y-%m-%d")) == ["2018-01-22", "2018-01-23", "2018-01-24"]
    assert list(future.columns) == list(aapl.known)
    wd = W.prepare(aapl, 10, 3, W.split_by_fraction(aapl, val=0.1, test=0.1))
    b = wd.test.batch([0])
    assert b.x.shape == (1, 10, 5) and b.y.shape == (1, 3) and b.x_future.shape == (1, 3, 4)


def test_unknown_calendar_feature():
    with pytest.raises(ConfigError, match=r"unknown calendar feature\(s\) \['minute'\]"):
        T.calendar_features(pd.date_range("2021-01-01", periods=3), ["minute"])


def test_transforms_are_silent_on_clean_data():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for t in all_transforms():
            t.fit(X).transform(X)


# ---- SeriesScaler: per-series scaling fitted on each series' training span ------------------
def test_series_scaler_is_mean_and_population_std_of_each_training_span():
    V = np.c_[RNG.normal(5.0, 2.0, 30), RNG.normal(-1.0, 3.0, (30, 2))]
    spans = np.array([[0, 8], [12, 25]])  # series 0 is rows 0-11, series 1 rows 12-29
    sc = T.SeriesScaler().fit(V, spans)
    assert sc.loc_.tolist() == [V[:8, 0].mean(), V[12:25, 0].mean()]
    assert sc.scale_.tolist() == [V[:8, 0].std(), V[12:25, 0].std()]
    train = np.concatenate([V[:8, 1:], V[12:25, 1:]])
    assert sc.cov_loc_.tolist() == train.mean(axis=0).tolist()
    assert sc.cov_scale_.tolist() == train.std(axis=0).tolist()
    # rows outside the spans do not matter at all
    W = V.copy()
    W[8:12] *= 100.0
    W[25:] += 1e3
    again = T.SeriesScaler().fit(W, spans)
    for name in ("loc_", "scale_", "cov_loc_", "cov_scale_"):
        assert getattr(again, name).tobytes() == getattr(sc, name).tobytes()


def test_series_scaler_ignores_nan_and_gives_scale_one_to_constant_or_empty_spans():
    V = np.array([[1.0, 2.0], [np.nan, np.nan], [3.0, 2.0], [4.0, np.nan], [4.0, np.nan],
                  [np.nan, np.nan], [9.0, 7.0]])
    sc = T.SeriesScaler().fit(V, [[0, 3], [3, 5], [5, 6]])
    np.testing.assert_array_equal(sc.loc_, [2.0, 4.0, 0.0])
    np.testing.assert_array_equal(sc.scale_, [1.0, 1.0, 1.0])  # std 1; constant; no data
    np.testing.assert_array_equal(sc.cov_loc_, [2.0])
    np.testing.assert_array_equal(sc.cov_scale_, [1.0])  # constant covariate
    empty = T.SeriesScaler().fit(np.c_[np.full(4, np.nan), np.full(4, np.nan)], [[0, 4]])
    assert (empty.loc_.tolist(), empty.scale_.tolist()) == ([0.0], [1.0])
    assert (empty.cov_loc_.tolist(), empty.cov_scale_.tolist()) == ([0.0], [1.0])


def test_series_scaler_transform_and_inverse():
    V = np.c_[np.arange(20.0) ** 1.5, np.sin(np.arange(20.0))]
    sc = T.SeriesScaler().fit(V, [[0, 8], [10, 18]])
    X = np.stack([V[2:6], V[12:16]])  # (2 windows, 4, F): one per series
    Z = sc.transform(X, [0, 1])
    np.testing.assert_allclose(Z[1, :, 0], (V[12:16, 0] - sc.loc_[1]) / sc.scale_[1])
    np.testing.assert_allclose(Z[..., 1], (X[..., 1] - sc.cov_loc_[0]) / sc.cov_scale_[0])
    np.testing.assert_allclose(sc.inverse_transform(Z[..., 0], [0, 1]), X[..., 0], rtol=1e-12)
    only_target = T.SeriesScaler().fit(V[:, :1], [[0, 20]])
    assert only_target.cov_loc_.shape == (0,)
    with pytest.raises(DataError, match="SeriesScaler"):
        T.SeriesScaler().fit(V[:, 0], [[0, 20]])
