"""The kernels give the same bits whatever vector width LLVM picks.

On a CPU with AVX-512, `forecast.kernels._jit.prefer_wide_vectors` lets Numba vectorise
with 512-bit registers (LLVM's tuning would pick 256). Every lane does the same
operations in the same order at either width and no kernel reassociates, so the
results must be bit for bit those of a process that keeps LLVM's choice
(``FORECAST_NUMBA_WIDE_VECTORS=0``). On a CPU without AVX-512 both processes compile
the same code and the check is trivially true."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from forecast.kernels import jit

ROOT = Path(__file__).resolve().parent.parent

#: builds nets of every cell (float32 and float64, two layers, ragged lengths, odd and
#: even widths: vector remainders), runs training forward, BPTT and the cache-free
#: prediction, and saves every array to the .npz named by argv[1]
CASE = r"""
import sys
import numpy as np
from forecast.nn import RecurrentNet

out = {}
for cell in ("rnn", "lstm", "gru"):
    for dtype in ("float32", "float64"):
        for H in (13, 64):
            net = RecurrentNet(cell=cell, n_input=3, n_hidden=H, n_layers=2, n_output=2,
                               activation="tanh", dtype=dtype, seed=7)
            rng = np.random.default_rng(H)
            net.params += (0.3 * rng.standard_normal(net.n_params)).astype(net.dtype)
            B, T = 40, 37
            x = rng.standard_normal((B, T, 3)).astype(dtype)
            lengths = rng.integers(1, T + 1, size=B).astype(np.int64)
            lengths[0] = T
            hs, final, cache = net.forward_sequence(x, lengths)
            dhs = rng.standard_normal(hs.shape).astype(dtype)
            dx, d0, grads = net.backward_sequence(cache, dhs)
            hp, fp, _ = net.forward_sequence(x, lengths, keep_cache=False)
            key = f"{cell}-{dtype}-{H}"
            out[key + "-hs"], out[key + "-dx"], out[key + "-hp"] = hs, dx, hp
            out[key + "-grads"] = np.asarray(grads)
            out[key + "-d0"] = np.asarray(d0[0] if isinstance(d0, tuple) else d0)
np.savez(sys.argv[1], **out)
"""


def _run(path: Path, wide: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, FORECAST_NUMBA_WIDE_VECTORS=wide,
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    if jit.WIDE_VECTOR_FEATURES is not None and env.get("NUMBA_CPU_FEATURES") == jit.WIDE_VECTOR_FEATURES:
        del env["NUMBA_CPU_FEATURES"]  # set by this process's import, not by the user
    return subprocess.run([sys.executable, "-c", CASE, str(path)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def test_wide_vectors_change_no_bits(tmp_path):
    runs = {}
    for wide in ("1", "0"):
        path = tmp_path / f"wide{wide}.npz"
        r = _run(path, wide)
        assert r.returncode == 0, r.stderr[-3000:]
        runs[wide] = dict(np.load(path))
    assert runs["1"].keys() == runs["0"].keys() and len(runs["1"]) > 50
    for key, value in runs["1"].items():
        np.testing.assert_array_equal(value, runs["0"][key], err_msg=key)


def test_wide_vectors_only_where_they_exist():
    """The setting is made only on AVX-512 hosts (and only when the user set nothing):
    the feature string then ends with the one change, ``-prefer-256-bit``."""
    import llvmlite.binding as llvm

    feats = jit.WIDE_VECTOR_FEATURES
    if feats is not None:
        assert feats.endswith(",-prefer-256-bit")
        assert llvm.get_host_cpu_features().get("avx512f")
        assert os.environ.get("NUMBA_CPU_FEATURES") == feats
