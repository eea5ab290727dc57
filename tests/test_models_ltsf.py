"""The long-horizon benchmark script with the library's models (benchmarks/ltsf.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "ltsf.py"
BASE = ["--data", str(ROOT / "datasets" / "ETTh1.csv"), "--layout", "ett-hour", "--features", "S"]


def run(*args: str) -> dict:
    proc = subprocess.run([sys.executable, str(SCRIPT), *BASE, *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_nlinear_reproduces_the_published_etth1_figure():
    """LTSF-Linear paper (univariate ETTh1, lookback 336, horizon 96): NLinear MSE 0.053,
    MAE 0.177; ours is the least-squares fit of the same model."""
    result = run("--horizon", "96", "--model", "nlinear")
    assert abs(result["mse"] - 0.053) <= 0.005 and abs(result["mae"] - 0.177) <= 0.005
    assert result["settings"] == {"lookback": 336, "horizon": 96}


def test_naive_is_the_repeat_baseline():
    """DLinear paper, univariate ETTh1 horizon 96, Repeat: MSE 0.069."""
    result = run("--horizon", "96", "--model", "naive")
    assert f"{result['mse']:.3f}" == "0.069"


def test_options_reach_the_model_and_errors_are_reported():
    result = run("--horizon", "24", "--model", "gru", "--lookback", "48", "--option",
                 "max_epochs=1", "--option", "n_hidden=4", "--option", "highway=0")
    assert result["settings"]["n_hidden"] == 4 and result["settings"]["lookback"] == 48
    assert result["epochs"] == 1
    proc = subprocess.run([sys.executable, str(SCRIPT), *BASE, "--model", "gru", "--option",
                           "cell=tcn"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ")
    assert "Traceback" not in proc.stderr
