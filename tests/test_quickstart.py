"""The interim main job (forecast demo) runs end to end on bundled data."""

import math

from typer.testing import CliRunner

from forecast import quickstart
from forecast.cli import app


def test_quickstart_trains_and_scores_against_naive():
    cfg = quickstart.QuickstartConfig(epochs=1, max_batches=20, cells=("gru",), horizon=12)
    seen = []
    results = quickstart.run(cfg, lambda cell, epoch, loss: seen.append((cell, epoch, loss)))
    assert [r.model for r in results] == ["naive", "gru"]
    assert seen and seen[0][:2] == ("gru", 1) and math.isfinite(seen[0][2])
    naive, gru = results
    assert naive.test_mse > 0 and math.isfinite(gru.test_mse)
    assert abs(gru.skill_vs_naive - (1 - gru.test_mse / naive.test_mse)) < 1e-12
    # the same seed gives the same numbers
    again = quickstart.run(cfg)
    assert again[1].test_mse == gru.test_mse


def test_cli_lists_datasets_and_has_help():
    runner = CliRunner()
    res = runner.invoke(app, ["datasets"])
    assert res.exit_code == 0
    for name in ("aapl", "goog", "etth1", "seattle-weather"):
        assert name in res.output
    res = runner.invoke(app, ["demo", "--help"])
    assert res.exit_code == 0 and "Example" in res.output


def test_cli_demo_unknown_dataset_is_one_line_error():
    res = CliRunner().invoke(app, ["demo", "--dataset", "nope"])
    assert res.exit_code == 1
    assert "nope" in res.output and "Traceback" not in res.output
