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


def test_coverage_z_against_hand_computation():
    """Equal counts: the spread of the per-fold coverages over sqrt(folds), rescaled from
    the observed coverage to the nominal one; unequal counts: the ratio estimator."""
    rng_ = np.random.default_rng(3)
    hits = rng_.integers(3, 8, 40).astype(float)
    counts = np.full(40, 7.0)
    c = hits.sum() / counts.sum()
    se = (hits / 7).std(ddof=1) / np.sqrt(40) * np.sqrt(0.8 * 0.2 / (c * (1 - c)))
    se = max(se, np.sqrt(0.8 * 0.2 / 280))
    assert metrics.coverage_z(hits, counts, 80) == pytest.approx((c - 0.8) / se, rel=1e-12)
    counts2 = rng_.integers(5, 8, 40).astype(float)
    hits2 = np.minimum(hits, counts2)
    c2 = hits2.sum() / counts2.sum()
    r = hits2 - c2 * counts2
    se2 = np.sqrt(40 / 39 * (r ** 2).sum()) / counts2.sum()
    se2 = max(se2 * np.sqrt(0.95 * 0.05 / (c2 * (1 - c2))), np.sqrt(0.95 * 0.05 / counts2.sum()))
    assert metrics.coverage_z(hits2, counts2, 95) == pytest.approx((c2 - 0.95) / se2, rel=1e-12)
    # every fold covered alike: no spread, so the floor of independent steps holds
    assert metrics.coverage_z(np.full(40, 7.0), counts, 95) == pytest.approx(
        0.05 / np.sqrt(0.95 * 0.05 / 280), rel=1e-12)
    # folds without a scored truth are left out; too few folds give NaN
    assert metrics.coverage_z(np.append(hits, 0.0), np.append(counts, 0.0), 80) == \
        pytest.approx(metrics.coverage_z(hits, counts, 80), rel=1e-12)
    assert np.isnan(metrics.coverage_z([3.0], [7.0], 80))
    with pytest.raises(DataError, match="one of each per fold"):
        metrics.coverage_z([1.0, 2.0], [7.0], 80)
    with pytest.raises(ConfigError, match="percentage"):
        metrics.coverage_z(hits, counts, 100)


def test_coverage_z_passes_calibrated_intervals_and_flags_narrow_ones():
    """Exact intervals of the naive forecast of a Gaussian random walk, 40 folds of 7
    steps: the chance test passes them in about 95 % of backtests at 80 % (the steps of
    a fold miss together, so counting steps as samples would flag far more), and flags
    intervals 0.7 times as wide as too narrow in most."""
    rng_ = np.random.default_rng(11)
    err = np.cumsum(rng_.normal(size=(600, 40, 7)), axis=2)
    sd = np.sqrt(np.arange(1, 8))
    counts = np.full(40, 7)
    for level, zq in ((80, 1.2815515655446004), (95, 1.959963984540054)):
        hits = (np.abs(err) <= zq * sd).sum(2)
        z = np.array([metrics.coverage_z(h, counts, level) for h in hits])
        assert 0.89 <= np.mean(np.abs(z) <= 2) <= 0.99, level
        naive_z = (hits.sum(1) / 280 - level / 100) / np.sqrt(level / 100 * (1 - level / 100) / 280)
        assert np.mean(np.abs(naive_z) <= 2) < np.mean(np.abs(z) <= 2) - 0.1
        thin = (np.abs(err) <= 0.7 * zq * sd).sum(2)
        zt = np.array([metrics.coverage_z(h, counts, level) for h in thin])
        assert np.mean(zt < -2) > 0.8, level


def test_coverage_bar_is_students_t_over_the_folds():
    from scipy.stats import t

    assert metrics.coverage_bar(40) == pytest.approx(t.ppf(0.975, 39), rel=1e-12)
    assert metrics.coverage_bar(3) == pytest.approx(4.302652729911275, rel=1e-9)
    assert metrics.coverage_bar(10**6) == 2.0  # never below 2
    for unknown in (None, float("nan"), "x", 1):
        assert metrics.coverage_bar(unknown) == 2.0
