"""forecast.metrics, compared with scikit-learn where it has the same metric."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from forecast import metrics
from forecast.errors import ConfigError, DataError

rng = np.random.default_rng(0)
Y = rng.normal(10, 3, size=(50, 4))
P = Y + rng.normal(0, 1, size=Y.shape)


def test_point_metrics_match_sklearn():
    t, p = Y.ravel(), P.ravel()
    assert metrics.mae(Y, P) == pytest.approx(skm.mean_absolute_error(t, p), rel=1e-12)
    assert metrics.mse(Y, P) == pytest.approx(skm.mean_squared_error(t, p), rel=1e-12)
    assert metrics.rmse(Y, P) == pytest.approx(np.sqrt(skm.mean_squared_error(t, p)), rel=1e-12)
    assert metrics.mape(Y, P) == pytest.approx(skm.mean_absolute_percentage_error(t, p), rel=1e-12)


@pytest.mark.parametrize("q", [0.1, 0.5, 0.9])
def test_pinball_matches_sklearn(q):
    assert metrics.pinball_loss(Y, P, q) == pytest.approx(
        skm.mean_pinball_loss(Y.ravel(), P.ravel(), alpha=q), rel=1e-12)


def test_pinball_several_quantiles_is_the_mean_of_each():
    qs = [0.1, 0.5, 0.9]
    stacked = np.stack([P - 1, P, P + 1], axis=-1)
    expected = np.mean([skm.mean_pinball_loss(Y.ravel(), stacked[..., i].ravel(), alpha=q)
                        for i, q in enumerate(qs)])
    assert metrics.pinball_loss(Y, stacked, qs) == pytest.approx(expected, rel=1e-12)


def test_classification_metrics_match_sklearn():
    y = rng.integers(0, 3, size=40)
    proba = rng.dirichlet([1, 1, 1], size=40)
    assert metrics.accuracy(y, proba) == pytest.approx(
        skm.accuracy_score(y, proba.argmax(axis=1)))
    assert metrics.log_loss(y, proba) == pytest.approx(
        skm.log_loss(y, proba, labels=[0, 1, 2]), rel=1e-9)


def test_smape_and_mase_by_hand():
    assert metrics.smape([1.0, 0.0], [3.0, 0.0]) == pytest.approx((2 * 2 / 4 + 0) / 2)
    train = np.array([1.0, 2.0, 4.0, 7.0])  # naive in-sample errors 1, 2, 3 -> scale 2
    assert metrics.mase([8.0, 9.0], [7.0, 7.0], train) == pytest.approx(1.5 / 2)
    seasonal = np.array([1.0, 5.0, 2.0, 7.0])  # lag 2 errors 1, 2 -> scale 1.5
    assert metrics.mase([3.0], [0.0], seasonal, season=2) == pytest.approx(3 / 1.5)


def test_directional_accuracy_and_intervals():
    last = np.array([[1.0], [1.0]])
    assert metrics.directional_accuracy([[2.0, 0.0], [3.0, 1.0]], [[1.5, 0.5], [0.0, 1.0]],
                                        last) == pytest.approx(3 / 4)
    y = np.array([1.0, 2.0, 3.0, 4.0])
    assert metrics.coverage(y, y - 0.5, y + [0.5, 0.5, -0.1, 1]) == pytest.approx(0.75)
    assert metrics.interval_width([0.0, 1.0], [2.0, 2.0]) == pytest.approx(1.5)


def test_nan_truth_is_ignored():
    assert metrics.mae([1.0, np.nan, 3.0], [2.0, 100.0, 3.0]) == pytest.approx(0.5)


def test_errors():
    with pytest.raises(DataError, match=r"y_true has shape \(2,\) but y_pred has shape \(3,\)"):
        metrics.mae([1, 2], [1, 2, 3])
    with pytest.raises(DataError, match="MASE is undefined"):
        metrics.mase([1.0], [1.0], [2.0, 2.0, 2.0])
    with pytest.raises(ConfigError, match="quantiles must be values in"):
        metrics.pinball_loss([1.0], [1.0], 1.5)
    with pytest.raises(DataError, match="no finite value"):
        metrics.rmse([np.nan], [1.0])


def test_forecast_metrics_is_every_figure_from_the_metric_functions():
    t, p = Y.copy(), P.copy()
    t[0, 0] = np.nan
    p[1, 1] = np.nan
    lo, hi = p - 1.0, p + 1.0
    out = metrics.forecast_metrics(t, p, y_last=Y[:, :1] - 0.5, intervals={80: (lo, hi)})
    ok = np.isfinite(t) & np.isfinite(p)
    assert out["mae"] == pytest.approx(skm.mean_absolute_error(t[ok], p[ok]), rel=1e-12)
    assert out["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(t[ok], p[ok])), rel=1e-12)
    assert out["coverage_80"] == metrics.coverage(t[ok], lo[ok], hi[ok])
    assert out["width_80"] == pytest.approx(2.0)
    assert 0 <= out["directional_accuracy"] <= 1
    assert metrics.skill(0.9, 1.0) == pytest.approx(0.1)
    assert metrics.naive_scale([1.0, 2.0, np.nan, 5.0, 7.0], 1) == pytest.approx(1.5)


def test_backtest_and_report_tables_come_from_forecast_metrics():
    import pandas as pd

    from forecast import datasets
    from forecast.backtest import BacktestConfig, backtest
    from forecast.models import Naive
    from forecast.report import summary_from_forecasts

    res = backtest(Naive(), datasets.load("aapl"), BacktestConfig(horizon=5, n_folds=4))
    fc = res.forecasts[res.forecasts.model == "naive"]
    row = res.summary.set_index("model").loc["naive"]
    assert row["mae"] == metrics.mae(fc["y"], fc["yhat"])
    assert row["coverage_80"] == metrics.coverage(fc["y"], fc["yhat_lower_80"], fc["yhat_upper_80"])
    again = summary_from_forecasts(res.forecasts).summary.set_index("model")
    for col in ("mae", "rmse", "coverage_80", "width_95", "skill_mae"):
        assert again.loc["naive", col] == row[col]
    assert isinstance(res.by_step, pd.DataFrame) and len(res.by_step) == 2 * 5


def test_paired_z_is_scipys_paired_t_statistic():
    from scipy.stats import ttest_rel

    a, b = rng.normal(1.0, 0.3, 40), rng.normal(1.2, 0.3, 40)
    assert metrics.paired_z(a, b) == pytest.approx(ttest_rel(b, a).statistic, rel=1e-12)
    assert metrics.paired_z(b, a) == pytest.approx(-metrics.paired_z(a, b), rel=1e-12)
    # missing pairs are left out
    a2, b2 = np.append(a, np.nan), np.append(b, 5.0)
    assert metrics.paired_z(a2, b2) == pytest.approx(metrics.paired_z(a, b), rel=1e-12)
    assert np.isnan(metrics.paired_z([1.0], [2.0]))
    assert np.isnan(metrics.paired_z([1.0, 2.0], [1.0, 2.0]))
    assert metrics.paired_z([1.0, 2.0], [2.0, 3.0]) == np.inf
    with pytest.raises(DataError, match="same shape"):
        metrics.paired_z([1.0, 2.0], [1.0])
