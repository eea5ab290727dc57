"""The long-horizon benchmark protocol (forecast.ltsf and benchmarks/ltsf.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecast import ltsf
from forecast.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parent.parent
ETTH1 = ROOT / "datasets" / "ETTh1.csv"
SCRIPT = ROOT / "benchmarks" / "ltsf.py"


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_repeat_on_etth1_matches_the_dlinear_table():
    """DLinear paper, Table 2, ETTh1, horizon 96, Repeat: MSE 1.295, MAE 0.713."""
    proc = run_script("--data", str(ETTH1), "--layout", "ett-hour", "--features", "M",
                      "--target", "OT", "--lookback", "336", "--horizon", "96",
                      "--model", "repeat", "--seed", "0", "--drop-last")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(result) == {"mse", "mae", "windows", "seconds"}
    assert f"{result['mse']:.3f}" == "1.295" and f"{result['mae']:.3f}" == "0.713"
    assert result["windows"] == 2784  # floor(2785 / 32) * 32


def test_repeat_equals_a_naive_reference():
    raw = pd.read_csv(ETTH1).iloc[:, 1:].to_numpy()
    z = (raw - raw[:8640].mean(axis=0)) / raw[:8640].std(axis=0)
    L, H = 96, 24
    test = z[11520 - L:14400]
    n = len(test) - L - H + 1
    errors = np.stack([test[s + L:s + L + H] - test[s + L - 1] for s in range(n)])
    cfg = ltsf.LTSFConfig(str(ETTH1), "ett-hour", "M", "OT", L, H)
    result = ltsf.evaluate(cfg, lambda d: ltsf.repeat_last(d.test))
    assert result["windows"] == n
    assert result["mse"] == pytest.approx(np.mean(errors ** 2), rel=1e-12)
    assert result["mae"] == pytest.approx(np.mean(np.abs(errors)), rel=1e-12)


def test_features_s_uses_the_target_only():
    d = ltsf.prepare(ltsf.LTSFConfig(str(ETTH1), "ett-hour", "S", "OT", 336, 96))
    assert d.columns == ("OT",) and d.values.shape == (17420, 1)
    raw = pd.read_csv(ETTH1)["OT"].to_numpy()
    assert d.scaler.mean_[0] == pytest.approx(raw[:8640].mean())
    assert d.scaler.scale_[0] == pytest.approx(raw[:8640].std(ddof=0))


def test_ett_hour_borders_and_reach_back():
    d = ltsf.prepare(ltsf.LTSFConfig(str(ETTH1), "ett-hour", "M", "OT", 336, 96))
    assert d.split.span("train").tolist() == [[0, 8640]]
    assert d.split.span("val").tolist() == [[8640, 11520]]
    assert d.split.span("test").tolist() == [[11520, 14400]]
    assert d.test.starts[0] == 11520 - 336 and d.test.starts[-1] + 336 + 96 == 14400
    assert d.val.starts[0] == 8640 - 336 and d.train.starts[0] == 0
    assert d.train.starts[-1] + 336 + 96 == 8640
    assert len(d.test) == 2880 - 96 + 1


def test_ett_minute_layout_is_four_times_longer():
    sp = ltsf.layout_split("ett-minute", 69680)
    assert sp.span("test").tolist() == [[46080, 57600]]
    with pytest.raises(DataError, match="the ett-minute layout needs at least 57600 rows; the file has 17420"):
        ltsf.layout_split("ett-minute", 17420)


def test_custom_layout():
    n = 17420
    sp = ltsf.layout_split("custom", n)
    assert sp.span("train").tolist() == [[0, int(0.7 * n)]]
    assert sp.span("test").tolist() == [[n - int(0.2 * n), n]]
    assert sp.span("val").tolist() == [[int(0.7 * n), n - int(0.2 * n)]]


def test_benchmark_files_are_read_raw(tmp_path):
    """No missing markers, de-duplication, gap filling or re-sorting; target moved last."""
    path = tmp_path / "weather.csv"
    path.write_bytes("date,OT,p (mbar),T (\ufffdC)\n".encode("utf-8") +
                     b"2020-01-01 00:10:00,1.0,-9999,3\n"
                     b"2020-01-01 00:00:00,2.0,5,6\n"
                     b"2020-01-01 00:00:00,2.5,7,8\n"
                     b"2020-01-01 01:00:00,3.0,9,10\n")
    values, columns = ltsf.read_benchmark(path, "OT")
    assert columns == ("p (mbar)", "T (\ufffdC)", "OT")
    np.testing.assert_array_equal(values, [[-9999, 3, 1.0], [5, 6, 2.0], [7, 8, 2.5], [9, 10, 3.0]])


def test_missing_target_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match=r"target column 'TEMP' not found in ETTh1.csv; the columns are \['date', 'HUFL'"):
        ltsf.read_benchmark(ETTH1, "TEMP")


def test_bad_config():
    with pytest.raises(ConfigError, match="layout must be one of ett-hour, ett-minute, custom"):
        ltsf.LTSFConfig(str(ETTH1), layout="ett")


def test_script_reports_errors_without_traceback():
    proc = run_script("--data", str(ETTH1), "--layout", "ett-minute", "--model", "repeat")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: the ett-minute layout needs at least 57600 rows")
    assert "Traceback" not in proc.stderr
