"""Compiling kernels ahead of use, in worker processes (`forecast.precompile`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from forecast import precompile as pc
from forecast.errors import ConfigError
from forecast.kernels import _jit, cells
from forecast.nn import RecurrentNet

pytestmark = pytest.mark.skipif(_jit.DISABLED, reason="kernels run as plain Python")


def _train_step(cell: str, dtype: str) -> None:
    net = RecurrentNet(cell, n_input=2, n_hidden=3, n_layers=2, dtype=dtype, seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 4, 2)).astype(dtype)
    y = rng.standard_normal((5, 1)).astype(dtype)
    net.fit_batch(x, y)
    net.forward(x)


@pytest.mark.parametrize("cell,dtype", [("rnn", "float64"), ("lstm", "float64"),
                                        ("gru", "float64"), ("gru", "float32")])
def test_compile_job_asks_for_the_signature_training_uses(cell, dtype):
    """The worker's tiny calls must compile exactly the signature training uses, or the
    cache it fills would be of no use: after a real training step, compiling the jobs
    adds no signature."""
    _train_step(cell, dtype)
    kernels = [getattr(cells, name) for name in pc.KERNELS[cell].values()]
    before = [list(k.signatures) for k in kernels]
    for part in pc.KERNELS[cell]:
        assert pc.compile_job(pc.Job(cell, dtype, part)) == f"{cell} {part} ({dtype})"
    assert [list(k.signatures) for k in kernels] == before
    assert pc.pending([(cell, dtype)]) == []  # compiled in this process: nothing to do


def test_pending_rejects_unknown_kernels():
    with pytest.raises(ConfigError, match="unknown kernel 'transformer'"):
        pc.pending([("transformer", "float32")])
    with pytest.raises(ConfigError, match="dtype"):
        pc.pending([("gru", "float16")])


def test_precompile_does_nothing_without_a_disk_cache(monkeypatch):
    monkeypatch.setattr(_jit, "CACHE", False)
    calls = []
    assert pc.precompile([("gru", "float32")], progress=lambda *a: calls.append(a)) == []
    assert calls == []


def test_precompile_fills_an_empty_cache_that_training_then_loads(tmp_path):
    """A fresh process with an empty Numba cache: both rnn kernels are pending, two
    worker processes compile them, the cache index then lists them, and a training step
    in the parent loads both from disk instead of compiling (no cache miss)."""
    script = textwrap.dedent("""
        import json
        import numpy as np
        from forecast import precompile as pc
        from forecast.kernels import cells
        from forecast.nn import RecurrentNet

        pairs = [("rnn", "float64")]
        before = [str(j) for j in pc.pending(pairs)]
        seen = []
        done = pc.precompile(pairs, processes=2, progress=lambda d, t, j: seen.append([d, t]))
        after = [str(j) for j in pc.pending(pairs)]
        net = RecurrentNet("rnn", n_input=1, n_hidden=3, dtype="float64", seed=0)
        x = np.zeros((4, 5, 1)); y = np.zeros((4, 1))
        net.fit_batch(x, y)
        stats = [getattr(cells, n).stats for n in pc.KERNELS["rnn"].values()]
        print(json.dumps({"before": before, "done": [str(j) for j in done], "after": after,
                          "seen": seen,
                          "hits": [sum(s.cache_hits.values()) for s in stats],
                          "misses": [sum(s.cache_misses.values()) for s in stats]}))
    """)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), FORECAST_NUMBA_CACHE="1")
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    jobs = ["rnn forward (float64)", "rnn backward (float64)"]
    assert got["before"] == jobs
    assert sorted(got["done"]) == sorted(jobs)
    assert got["after"] == []
    assert got["seen"] == [[0, 2], [1, 2], [2, 2]]
    assert got["hits"] == [1, 1] and got["misses"] == [0, 0]


def test_a_worker_that_cannot_start_leaves_the_kernel_to_compile_on_first_use(monkeypatch):
    job = pc.Job("gru", "float32", "forward")
    monkeypatch.setattr(pc, "pending", lambda pairs: [job])
    monkeypatch.setattr(pc.sys, "executable", "/nonexistent/python")
    seen = []
    assert pc.precompile([("gru", "float32")], progress=lambda *a: seen.append(a)) == [job]
    assert seen == [(0, 1, None), (1, 1, job)]


def test_plain_python_mode_fits_and_forecasts(tmp_path):
    """FORECAST_NUMBA_DISABLE=1 (debugging) runs the kernels as plain Python, the BLAS
    products through NumPy: a small fit and forecast work and agree with the compiled
    kernels to rounding."""
    script = textwrap.dedent("""
        import json, numpy as np, pandas as pd
        from forecast.models import RNNForecaster
        t = np.arange(120, dtype=np.float64)
        s = pd.Series(np.sin(t / 5.0), index=pd.date_range("2020-01-01", periods=120,
                      freq="D"), name="y")
        out = {}
        for cell in ("gru", "lstm", "rnn"):
            m = RNNForecaster(cell=cell, n_hidden=4, lookback=8, horizon=2, max_epochs=1,
                              batch_size=16, dtype="float64", calendar=False)
            out[cell] = m.fit(s).predict()["yhat"].tolist()
        print(json.dumps(out))
    """)
    runs = []
    for flag in ("1", "0"):
        env = dict(os.environ, FORECAST_NUMBA_DISABLE=flag)
        proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                              text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    for cell in ("gru", "lstm", "rnn"):
        np.testing.assert_allclose(runs[0][cell], runs[1][cell], rtol=1e-9, atol=1e-9)
