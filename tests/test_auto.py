"""`make_model("auto")`: an inner rolling-origin backtest on the training span only picks
the model; the choice is never worse than the best baseline of that backtest; the model
file and the report record what was chosen and why."""

import numpy as np
import pandas as pd
import pytest

from forecast import io
from forecast.errors import ConfigError
from forecast.models import AutoForecaster, make_model, model_from_state


def seasonal(n=400, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = 10 + 3 * np.sin(2 * np.pi * t / 7) + 0.3 * rng.standard_normal(n)
    return pd.DataFrame({"ds": pd.date_range("2020-01-01", periods=n, freq="D"), "y": y})


FAST = dict(candidates=("naive", "seasonal_naive", "gru"), horizon=7, max_epochs=2,
            n_hidden=4, lookback=14)


def test_auto_picks_the_lowest_inner_error_and_never_a_worse_than_baseline_model():
    model = make_model("auto", **FAST).fit(seasonal())
    sel = model.selection_
    scores = sel["scores"]
    assert set(scores) == {"naive", "seasonal_naive", "gru"}
    assert scores[sel["chosen"]] == min(scores.values())
    assert scores[sel["chosen"]] <= scores[sel["best_baseline"]]
    assert sel["chosen"] in sel["reason"]
    assert scores["seasonal_naive"] < scores["naive"]  # a weekly cycle: the season wins
    fc = model.predict()
    assert len(fc) == 7 and {"yhat_lower_80", "yhat_upper_95"} <= set(fc.columns)


def test_auto_sees_only_the_training_span():
    data = seasonal()
    a = make_model("auto", **FAST).fit(data.iloc[:300])
    changed = data.copy()
    changed.loc[300:, "y"] = 1e6  # rows after the training span cannot change the choice
    b = make_model("auto", **FAST).fit(changed.iloc[:300])
    assert a.selection_ == b.selection_


def test_auto_round_trips_through_a_model_file(tmp_path):
    data = seasonal()
    model = make_model("auto", **FAST).fit(data)
    meta, arrays = model.to_state()
    again = model_from_state(meta, arrays)
    np.testing.assert_array_equal(again.predict()["yhat"], model.predict()["yhat"])
    path = io.save_model(tmp_path / "auto.npz", model, None, name="auto")
    mf = io.load_model(path)
    assert mf.model.choice_ == model.choice_
    assert mf.manifest["model"]["state"]["fitted"]["selection_"]["chosen"] == model.choice_
    np.testing.assert_array_equal(mf.model.predict()["yhat"], model.predict()["yhat"])


def test_auto_errors():
    with pytest.raises(ConfigError, match="at least one baseline"):
        AutoForecaster(candidates=("gru",), horizon=7).fit(seasonal())
    with pytest.raises(ConfigError, match="unknown candidate"):
        AutoForecaster(candidates=("naive", "transformer"), horizon=7).fit(seasonal())
    with pytest.raises(ConfigError, match="window arrays"):
        AutoForecaster(horizon=7).fit_windows(np.zeros((5, 3, 1)), np.zeros((5, 7)))


def test_cli_fit_model_auto_says_what_it_chose_and_the_report_shows_it(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from forecast.cli import app

    monkeypatch.chdir(tmp_path)
    seasonal(300).to_csv("s.csv", index=False)
    res = CliRunner().invoke(app, ["fit", "s.csv", "-t", "y", "-m", "auto", "--horizon", "7",
                                   "--epochs", "2", "--hidden", "4", "--lookback", "14",
                                   "-p", 'candidates=["naive","seasonal_naive","gru"]',
                                   "-o", "a.npz", "--report", "a.html"])
    assert res.exit_code == 0, res.output
    mf = io.load_model("a.npz")
    assert f"auto chose {mf.model.choice_}" in res.output
    page = open("a.html", encoding="utf-8").read()
    assert "chosen model" in page and mf.model.selection_["reason"].split(" ")[0] in page


def test_auto_in_a_backtest_chooses_again_at_each_refit():
    from forecast.backtest import BacktestConfig, backtest

    res = backtest({"auto": make_model("auto", **FAST)}, seasonal(),
                   BacktestConfig(horizon=7, n_folds=2, refit_every=1))
    s = res.summary.set_index("model")
    assert {"auto", "naive", "seasonal_naive"} <= set(s.index)
    assert s.loc["auto", "mae"] <= 1.5 * s.loc["seasonal_naive", "mae"]
