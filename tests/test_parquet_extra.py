"""Parquet is the ``parquet`` extra: without pyarrow, CSV works and every Parquet path is
a clear error naming the extra (simulated here by hiding pyarrow from imports)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from forecast import data
from forecast.errors import MissingExtraError
from forecast.files import parquet_available, write_table


@pytest.fixture
def no_pyarrow(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # `import pyarrow` raises ImportError
    assert not parquet_available()


def _frame(n=60):
    ds = pd.date_range("2024-01-01", periods=n, freq="D")
    return pd.DataFrame({"ds": ds, "y": np.sin(np.arange(n) / 5.0) + 10})


def test_without_the_extra_writing_parquet_is_a_clear_error(no_pyarrow, tmp_path):
    with pytest.raises(MissingExtraError, match=r"pip install 'forecast\[parquet\]'"):
        write_table(_frame(), tmp_path / "x.parquet")
    assert not list(tmp_path.iterdir())


# pandas loaded with pyarrow keeps using it, so a core install (no pyarrow) is simulated
# in a fresh interpreter that hides pyarrow before anything imports pandas
_NO_ARROW = "import sys; sys.modules['pyarrow'] = None\n"


def _cli_without_pyarrow(*args, cwd):
    code = _NO_ARROW + "from forecast.cli import app\napp(prog_name='forecast')\n"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_without_the_extra_csv_works_and_parquet_names_the_extra(tmp_path):
    _frame().to_csv(tmp_path / "d.csv", index=False)
    _frame().to_parquet(tmp_path / "d.parquet", index=False) if parquet_available() else None
    res = _cli_without_pyarrow("fit", "d.csv", "--model", "naive", "--horizon", "3", "-o",
                               "m.npz", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    res = _cli_without_pyarrow("predict", "m.npz", "-o", "f.csv", cwd=tmp_path)
    assert res.returncode == 0 and (tmp_path / "f.csv").is_file(), res.stderr
    for args in (("predict", "m.npz", "-o", "f.parquet"),
                 ("fit", "d.parquet", "--model", "naive", "-o", "m2.npz")):
        res = _cli_without_pyarrow(*args, cwd=tmp_path)
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert res.returncode == 1, res.stderr
        assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
        assert "pip install 'forecast[parquet]'" in lines[0] and "Traceback" not in res.stderr
    assert not (tmp_path / "f.parquet").exists() and not (tmp_path / "m2.npz").exists()


def test_with_the_extra_parquet_round_trips(tmp_path):
    pytest.importorskip("pyarrow")
    write_table(_frame(), tmp_path / "x.parquet")
    assert len(data.load(tmp_path / "x.parquet", target="y")) == 60
