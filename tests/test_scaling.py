"""The estimators' scaling is `forecast.transforms.SeriesScaler`, fitted on each series'
training span: the validation / calibration tail (the last ``n_val`` rows) cannot move it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecast.models import LinearLags, RNNForecaster, SegRNNForecaster

ARRAYS = ("series_loc_", "series_scale_", "cov_loc_", "cov_scale_")


def frame(n=(120, 90), seed=0):
    rng = np.random.default_rng(seed)
    parts = []
    for i, m in enumerate(n):
        t = np.arange(m)
        parts.append(pd.DataFrame({
            "unique_id": f"s{i}", "ds": pd.date_range("2021-01-01", periods=m, freq="D"),
            "y": 10 * (i + 1) + 0.05 * t + np.sin(t / 3) + 0.3 * rng.standard_normal(m),
            "x": np.cos(t / 5) + 0.1 * rng.standard_normal(m) + i}))
    return pd.concat(parts, ignore_index=True)


def models():
    common = dict(lookback=10, horizon=3, max_epochs=1, batch_size=32, random_state=0)
    return {
        "rnn": RNNForecaster(cell="gru", n_hidden=4, calendar=False, **common),
        "rnn_covariates": RNNForecaster(cell="gru", n_hidden=4, calendar=True, **common),
        "segrnn": SegRNNForecaster(segment=5, n_hidden=4, **common),
    }


def n_val(model, data):
    """Rows of each series held out from training (the validation / calibration tail)."""
    lengths = data.groupby("unique_id", sort=False).size().to_numpy()
    return (lengths * model._holdout_fraction()).astype(np.int64)


def change_tails(data, tails):
    out = data.copy()
    for (uid, rows), k in zip(out.groupby("unique_id", sort=False).groups.items(), tails):
        tail = rows[len(rows) - k:]
        out.loc[tail, "y"] = out.loc[tail, "y"] * 100.0
        out.loc[tail, "x"] = out.loc[tail, "x"] + 1e3
    return out


@pytest.mark.parametrize("name", list(models()))
def test_the_held_out_tail_cannot_change_the_scaling(name):
    data = frame()
    kw = {"covariates": ["x"]} if name == "rnn_covariates" else {}
    first = models()[name].fit(data, **kw)
    tails = n_val(first, data)
    assert (tails > 0).all()
    changed = change_tails(data, tails)
    second = models()[name].fit(changed, **kw)
    for attr in ARRAYS:
        assert getattr(second, attr).tobytes() == getattr(first, attr).tobytes(), attr
    # ... while the same change one row earlier (inside the training span) does
    third = models()[name].fit(change_tails(data, tails + 1), **kw)
    assert not np.array_equal(third.series_loc_, first.series_loc_)


def test_the_scaling_is_the_mean_and_std_of_the_training_span():
    data = frame()
    model = models()["rnn_covariates"].fit(data, covariates=["x"])
    tails = n_val(model, data)
    groups = [g for _, g in data.groupby("unique_id", sort=False)]
    train = [g.iloc[:len(g) - k] for g, k in zip(groups, tails)]
    assert model.series_loc_.tolist() == [g["y"].to_numpy().mean() for g in train]
    assert model.series_scale_.tolist() == [g["y"].to_numpy().std() for g in train]
    cov = np.concatenate([g["x"].to_numpy() for g in train])
    assert model.columns_[1] == "x"
    assert model.cov_loc_[0] == cov.mean() and model.cov_scale_[0] == cov.std()
    # calendar columns are covariates too, scaled on the same rows
    assert len(model.cov_loc_) == len(model.columns_) - 1 > 1


def test_models_that_do_not_standardise_keep_the_identity():
    model = LinearLags(lookback=10, horizon=3).fit(frame())
    assert model.series_loc_.tolist() == [0.0, 0.0] and model.series_scale_.tolist() == [1.0, 1.0]


def test_nothing_fitted_reads_the_tail_baselines_and_one_epoch_weights_included():
    # LinearLags learns from the training windows only; a one-epoch network keeps the
    # weights of that epoch whatever the validation loss, so its weights may not move either.
    # (The recurrent model's linear start is *chosen* on the validation windows, like early
    # stopping; tests/test_linear_start.py checks that its coefficients are fitted on the
    # training windows. Here it starts at zero, so that only training is compared.)
    data = frame()
    for make, attr in ((lambda: LinearLags(lookback=10, horizon=3), "coef_"),
                       (lambda: models()["rnn"].set_params(highway_init="zeros"), "enc_params_"),
                       (lambda: models()["segrnn"], "seg_params_")):
        first = make().fit(data)
        second = make().fit(change_tails(data, n_val(first, data)))
        assert getattr(second, attr).tobytes() == getattr(first, attr).tobytes(), attr
