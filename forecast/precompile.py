"""Compile the recurrent kernels ahead of their first use, several at a time.

A fresh install has an empty Numba cache, and each cell's forward and backward kernels
take tens of seconds each to compile, one after the other, on one core. `precompile`
compiles what a job is about to need in worker processes, one kernel each, so that on a
machine with two or more cores the compiles overlap; every kernel lands in Numba's
on-disk cache (``FORECAST_NUMBA_CACHE=1``, the default), which the calling process, and
every later one, then loads in a fraction of a second.

Kernels already compiled in this process, or found in the on-disk cache, are skipped, so
a warm machine pays nothing but the check. With the cache off or the kernels running as
plain Python (``FORECAST_NUMBA_DISABLE=1``) there is nothing to share between processes
and `precompile` does nothing: the kernels then compile on first use as before.
``FORECAST_PRECOMPILE=0`` turns it off too (each kernel then compiles in the calling
process on first use, one after the other).

The worker compiles through the very calls training makes (`RecurrentNet` on a tiny
batch of zeros; backward on a zero forward cache), so the cached signature is exactly
the one training asks for.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from forecast.errors import ConfigError
from forecast.kernels import cells, jit as _jit
from forecast.nn import DTYPES, RecurrentNet

__all__ = ["KERNELS", "Job", "pending", "compile_job", "precompile"]

#: The kernels each cell needs for training and prediction, by part: names in `cells`
#: (the LSTM and GRU predict with their cache-free `lstm_infer` / `gru_infer`; the RNN's
#: forward, which keeps no cache, serves both).
KERNELS = {"rnn": {"forward": "rnn_forward", "backward": "rnn_backward"},
           "gru": {"forward": "gru_forward", "backward": "gru_backward", "infer": "gru_infer"},
           "lstm": {"forward": "lstm_forward", "backward": "lstm_backward",
                    "infer": "lstm_infer"}}
ENABLED = os.environ.get("FORECAST_PRECOMPILE", "1").strip().lower() not in {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Job:
    """One kernel to compile: ``cell`` (rnn/gru/lstm), ``dtype`` and ``part``
    (``forward``, ``backward`` or, for the LSTM and GRU, ``infer``)."""

    cell: str
    dtype: str
    part: str

    @property
    def kernel(self) -> str:
        return KERNELS[self.cell][self.part]

    def __str__(self) -> str:
        return f"{self.cell} {self.part} ({self.dtype})"


def _is_ready(dispatcher, dtype: np.dtype) -> bool:
    """Compiled in this process for `dtype`, or found in Numba's on-disk cache for this
    CPU. Reading the cache index uses Numba internals; if they are not as expected the
    kernel counts as not ready (a needless compile in a worker costs time, never
    correctness)."""
    if any(np.dtype(str(sig[0].dtype)) == dtype for sig in dispatcher.signatures):
        return True
    try:
        magic = dispatcher.targetctx.codegen().magic_tuple()
        index = dispatcher._cache._cache_file._load_index()
        return any(key[1] == magic and np.dtype(str(key[0][0].dtype)) == dtype
                   for key in index)
    except Exception:  # noqa: BLE001 - another Numba's internals: compile to be safe
        return False


def pending(pairs: Iterable[tuple[str, str]]) -> list[Job]:
    """The kernels that `(cell, dtype)` pairs need and that would compile on first use
    (neither compiled in this process nor in the on-disk cache), in a stable order."""
    jobs: list[Job] = []
    for cell, dtype in dict.fromkeys(pairs):
        if cell not in KERNELS or dtype not in DTYPES:
            raise ConfigError(f"unknown kernel {cell!r}/{dtype!r}; expected a cell of "
                              f"{sorted(KERNELS)} and a dtype of {list(DTYPES)}")
        if _jit.DISABLED:
            continue
        for part, name in KERNELS[cell].items():
            if not _is_ready(getattr(cells, name), np.dtype(dtype)):
                jobs.append(Job(cell, dtype, part))
    return jobs


def compile_job(job: Job) -> str:
    """Compile `job`'s kernel in this process (and so into the on-disk cache) through
    the calls training makes, on a tiny batch of zeros. Returns ``str(job)``."""
    net = RecurrentNet(job.cell, n_input=1, n_hidden=2, n_layers=1, dtype=job.dtype)
    T, B, H, dt = 2, 2, 2, np.dtype(job.dtype)
    x, lengths = net._check_x(np.zeros((B, T, 1), dt), None)
    xt = np.ascontiguousarray(x.transpose(1, 0, 2))
    if job.part not in KERNELS.get(job.cell, {}):
        raise ConfigError(f"unknown kernel part {job.part!r} of {job.cell!r}; expected one of "
                          f"{sorted(KERNELS.get(job.cell, {}))}")
    if job.part in ("forward", "infer"):
        net._forward_tm(xt, lengths, None, keep_cache=job.part == "forward")
        return str(job)
    z = lambda *shape: np.zeros(shape, dt)  # noqa: E731
    h0 = z(1, B, H)[0]
    if job.cell == "lstm":
        layer = (xt, h0, z(1, B, H)[0], z(T, B, H), z(T, B, 4, H), z(T, B, H))
    elif job.cell == "gru":
        layer = (xt, h0, z(T, B, H), z(T, B, 4, H))
    else:
        layer = (xt, h0, z(T, B, H))
    cache = {"layers": [layer], "lengths": lengths, "n_chunks": 1}
    net._backward_tm(cache, z(T, B, H), None, need_dx=False)
    return str(job)


def precompile(pairs: Iterable[tuple[str, str]], *, processes: int | None = None,
               progress: Callable[[int, int, Job | None], None] | None = None) -> list[Job]:
    """Compile the kernels that `pairs` of ``(cell, dtype)`` need and that are not yet
    compiled or cached, `processes` at a time (default: one per core, at most one per
    kernel), in worker processes that write Numba's on-disk cache. The workers are
    fresh interpreters (``python -m forecast.precompile``), not forks or spawns of the
    caller, so a caller's script is never run again in them.

    ``progress(done, total, job)`` is called before the first compile (``job=None``) and
    after each one. Returns the jobs compiled (empty when everything was ready, or when
    the cache is off or the kernels run as plain Python). A worker that fails leaves its
    kernel to compile on first use in the caller, as it would have without this."""
    if _jit.DISABLED or not _jit.CACHE or not ENABLED:
        return []
    jobs = pending(pairs)
    if not jobs:
        return []
    n = max(1, min(len(jobs), processes or os.cpu_count() or 1))
    if progress is not None:
        progress(0, len(jobs), None)
    done = 0
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)  # the worker imports this package
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    with cf.ThreadPoolExecutor(max_workers=n) as pool:
        futures = {pool.submit(_run_worker, job, env): job for job in jobs}
        for fut in cf.as_completed(futures):
            done += 1
            fut.result()
            if progress is not None:
                progress(done, len(jobs), futures[fut])
    return jobs


def _run_worker(job: Job, env: dict) -> bool:
    """Compile `job` in a fresh interpreter; False if it failed (the kernel then
    compiles on first use in the caller, as it would have without this)."""
    cmd = [sys.executable, "-m", "forecast.precompile", job.cell, job.dtype, job.part]
    try:
        proc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=1800, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0



if __name__ == "__main__":  # a worker of `precompile`: python -m forecast.precompile CELL DTYPE PART
    compile_job(Job(*sys.argv[1:4]))
