"""The estimator contract, run over every model and baseline."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from forecast.errors import ConfigError, ModelFileError, NotFittedError
from forecast.models import (
    Drift,
    LinearLags,
    Mean,
    Naive,
    RNNForecaster,
    SeasonalNaive,
    SegRNNForecaster,
    WindowAverage,
    clone,
    make_model,
    model_from_state,
)

H = 3


def series(n=160, seed=0, name="y", start="2020-01-01"):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = 10 + 0.02 * t + np.sin(2 * np.pi * t / 7) + 0.2 * rng.standard_normal(n)
    return pd.Series(y, index=pd.date_range(start, periods=n, freq="D"), name=name)


def rnn(**kw):
    base = dict(lookback=14, horizon=H, n_hidden=6, max_epochs=2, batch_size=32, random_state=3)
    return RNNForecaster(**{**base, **kw})


FACTORIES = {
    "naive": lambda: Naive(horizon=H),
    "seasonal_naive": lambda: SeasonalNaive(season=7, horizon=H),
    "drift": lambda: Drift(horizon=H),
    "window_average": lambda: WindowAverage(window=10, horizon=H),
    "mean": lambda: Mean(horizon=H),
    "linear": lambda: LinearLags(lookback=14, horizon=H),
    "nlinear": lambda: LinearLags(lookback=14, horizon=H, normalize="last", estimator="ridge"),
    "rnn": lambda: rnn(cell="rnn"),
    "lstm": lambda: rnn(cell="lstm", strategy="seq2seq"),
    "gru": lambda: rnn(cell="gru"),
    "gru_recursive": lambda: rnn(cell="gru", strategy="recursive", highway=3),
    "lstm_quantile": lambda: rnn(cell="lstm", loss="quantile"),
    "segrnn": lambda: SegRNNForecaster(lookback=14, horizon=H, segment=7, n_hidden=6,
                                       max_epochs=2, batch_size=32, random_state=3),
}
NAMES = list(FACTORIES)


@pytest.fixture(scope="module")
def data():
    return series()


@pytest.fixture(scope="module")
def fitted(data):
    return {name: make().fit(data) for name, make in FACTORIES.items()}


@pytest.mark.parametrize("name", NAMES)
def test_init_only_stores_parameters(name):
    model = FACTORIES[name]()
    assert not [a for a in vars(model) if a.endswith("_")]
    params = model.get_params()
    assert params and all(getattr(model, k) is v for k, v in params.items())
    assert model.set_params(horizon=5) is model and model.horizon == 5
    with pytest.raises(ConfigError, match="has no parameter 'nope'"):
        model.set_params(nope=1)
    assert repr(model).startswith(type(model).__name__ + "(")


@pytest.mark.parametrize("name", NAMES)
def test_predict_before_fit_raises(name, data):
    model = FACTORIES[name]()
    with pytest.raises(NotFittedError, match="not fitted yet; call fit"):
        model.predict()
    with pytest.raises(NotFittedError):
        model.predict_windows(np.zeros((1, 14, 1)))


@pytest.mark.parametrize("name", NAMES)
def test_fit_returns_self_and_predict_frame(name, fitted, data):
    model = fitted[name]
    assert model.is_fitted
    out = model.predict()
    assert list(out.columns[:3]) == ["unique_id", "ds", "yhat"]
    assert {"yhat_lower_80", "yhat_upper_80", "yhat_lower_95", "yhat_upper_95"} <= set(out)
    assert len(out) == H
    expected = pd.date_range(data.index[-1], periods=H + 1, freq="D")[1:]
    assert list(out["ds"]) == list(expected)
    assert np.isfinite(out.drop(columns=["unique_id", "ds"]).to_numpy(float)).all()
    assert (out["yhat_lower_95"] <= out["yhat_lower_80"] + 1e-9).all()
    assert (out["yhat_lower_80"] <= out["yhat"] + 1e-9).all()
    assert (out["yhat"] <= out["yhat_upper_80"] + 1e-9).all()
    assert (out["yhat_upper_80"] <= out["yhat_upper_95"] + 1e-9).all()
    # Forecasts are of the right size (within the range of the data, roughly).
    assert abs(out["yhat"].mean() - data.iloc[-20:].mean()) < 5


@pytest.mark.parametrize("name", NAMES)
def test_clone_is_unfitted_with_equal_params(name, fitted):
    c = clone(fitted[name])
    assert not c.is_fitted and type(c) is type(fitted[name])
    assert c.get_params() == fitted[name].get_params()


@pytest.mark.parametrize("name", NAMES)
def test_two_fits_are_bit_identical(name, fitted, data):
    again = FACTORIES[name]().fit(data).predict()
    pd.testing.assert_frame_equal(again, fitted[name].predict(), check_exact=True)


@pytest.mark.parametrize("name", NAMES)
def test_refit_forgets_the_previous_fit(name, data):
    other = series(n=120, seed=5, start="2021-01-01")
    model = FACTORIES[name]().fit(data).fit(other)
    fresh = FACTORIES[name]().fit(other)
    pd.testing.assert_frame_equal(model.predict(), fresh.predict(), check_exact=True)


@pytest.mark.parametrize("name", NAMES)
def test_state_round_trip_without_pickle(name, fitted):
    meta, arrays = fitted[name].to_state()
    meta = json.loads(json.dumps(meta))  # JSON-safe
    assert all(isinstance(a, np.ndarray) and a.dtype != object for a in arrays.values())
    back = model_from_state(meta, arrays)
    assert type(back) is type(fitted[name])
    pd.testing.assert_frame_equal(back.predict(), fitted[name].predict(), check_exact=True)
    unfitted_meta, unfitted_arrays = FACTORIES[name]().to_state()
    assert unfitted_meta["fitted"] is None and unfitted_arrays == {}


def test_state_errors_are_model_file_errors(fitted):
    meta, arrays = fitted["gru"].to_state()
    with pytest.raises(ModelFileError, match="unknown model type 'Bogus'"):
        model_from_state({**meta, "type": "Bogus"}, arrays)
    with pytest.raises(ModelFileError, match="version 99 is not supported"):
        model_from_state({**meta, "version": 99}, arrays)
    broken = dict(arrays)
    broken["head_params_"] = broken["head_params_"][:-1]
    with pytest.raises(ModelFileError, match="malformed RNNForecaster state"):
        model_from_state(meta, broken)


@pytest.mark.parametrize("name", NAMES)
def test_window_arrays_path(name, fitted):
    model = FACTORIES[name]()
    rng = np.random.default_rng(0)
    X = np.cumsum(rng.standard_normal((200, 14, 1)), axis=1)
    Y = X[:, -1:, 0] + 0.1 * rng.standard_normal((200, H))
    assert model.fit_windows(X, Y) is model
    out = model.predict_windows(X[:5])
    assert out.shape == (5, H) and np.isfinite(out).all()
    bounds = model.predict_interval_windows(X[:5])
    assert set(bounds) == {80.0, 95.0}
    assert all(lo.shape == (5, H) for lo, hi in bounds.values())
    with pytest.raises(NotFittedError, match="fitted on window arrays"):
        model.predict()


def test_make_model_names():
    assert make_model("nlinear").normalize == "last"
    assert make_model("lstm").cell == "lstm"
    with pytest.raises(ConfigError, match="unknown model 'transformer'"):
        make_model("transformer")
