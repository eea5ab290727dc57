"""Where the series are computed: a local pool of spawned worker processes, or a Dask
cluster. Both take a `forecast.batch.run.RunState` (its ``make_task``, ``done``,
``crashed``, ``log`` and ``progress``) and the series still to do; results come back
to the coordinator, which writes them."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from forecast.batch.config import BatchConfig
from forecast.batch.plan import SeriesItem
from forecast.batch.worker import run_series
from forecast.errors import BatchError
from forecast.nn import CELLS
from forecast.precompile import precompile

__all__ = ["Stopped", "run_local", "run_dask", "worker_count", "threads_per_worker"]


class Stopped(BaseException):
    """SIGTERM while a batch runs: stop cleanly (like Ctrl-C)."""


def threads_per_worker(config: BatchConfig, workers: int) -> int:
    if config.threads_per_worker:
        return config.threads_per_worker
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def worker_count(config: BatchConfig) -> int:
    return config.workers or max(1, os.cpu_count() or 1)


def precompile_kernels(run, todo: list[SeriesItem]) -> None:
    """Compile the recurrent kernels the series need once, several at a time, before
    the workers start (otherwise every worker compiles the same kernels at once on a
    fresh machine); nothing to do when Numba's disk cache has them."""
    pairs = [(s.model, str(dict(s.params).get("dtype", "float32")))
             for s in (item.settings for item in todo) if s.model in CELLS]

    def report(done: int, total: int, job) -> None:
        if job is None:
            run.log("compile_start", kernels=total)
        if run.progress:
            run.progress("compile", {"done": done, "total": total,
                                     "kernel": "" if job is None else str(job)})

    if precompile(pairs, progress=report):
        run.log("compile_done")


def run_local(run, todo: list[SeriesItem]) -> None:
    """A pool of `workers` spawned processes, each running `threads` Numba threads. At
    most two tasks per worker are in flight (the coordinator loads the next series while
    the workers compute). A worker that dies (killed, out of memory) fails only the
    series it ran: the series in flight at that moment are retried one at a time."""
    workers = min(worker_count(run.config), len(todo))
    threads = threads_per_worker(run.config, workers)
    precompile_kernels(run, todo)
    ctx = multiprocessing.get_context("spawn")
    queue = list(todo)
    suspects: list[SeriesItem] = []

    def new_pool():
        return ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                                   initializer=_init_worker, initargs=(os.getpid(),))

    pool = new_pool()
    inflight: dict[Any, SeriesItem] = {}
    try:
        while queue or suspects or inflight:
            isolate = bool(suspects)
            limit = 1 if isolate else 2 * workers
            while len(inflight) < limit and (suspects or (queue and not isolate)):
                item = suspects.pop(0) if suspects else queue.pop(0)
                task = run.make_task(item, threads)
                if task.dataset is None:  # nothing to compute: record the load error
                    run.done(run_series(task))
                    continue
                inflight[pool.submit(_run_in_worker, task)] = item
            if not inflight:
                continue
            finished, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
            broken = False
            for fut in finished:
                item = inflight.pop(fut)
                try:
                    res = fut.result()
                except BrokenProcessPool:
                    broken = True
                    if isolate:
                        run.crashed(item, "the worker process died while forecasting this "
                                 "series (killed or out of memory)")
                    else:
                        suspects.append(item)
                    continue
                run.done(res)
            if broken:
                for fut, item in list(inflight.items()):
                    suspects.append(item)
                inflight.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                pool = new_pool()
                suspects.sort(key=lambda it: it.index)
                run.log("worker_died", retrying=[it.uid for it in suspects])
    finally:
        _stop_pool(pool)


def _stop_pool(pool) -> None:
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:  # a worker busy with a series would finish it first: stop it now
        with contextlib.suppress(Exception):
            if p.is_alive():
                p.terminate()
    for p in procs:
        with contextlib.suppress(Exception):
            p.join(timeout=5)


def _init_worker(parent: int) -> None:
    """Runs first in each spawned worker: one BLAS thread (the kernels parallelise over
    the batch themselves), and exit when the coordinator is gone (killed with SIGKILL,
    say) instead of lingering as an orphan."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the coordinator's to handle

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(0.5)

    threading.Thread(target=watch, name="forecast-parent-watch", daemon=True).start()


def _run_in_worker(task):
    return run_series(task)


def run_dask(run, todo: list[SeriesItem]) -> None:
    """The same tasks on a Dask distributed cluster (results come back to this process,
    which writes them: the workers need no shared disk)."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise BatchError("the dask engine needs Dask: pip install 'forecast[dask]' (or "
                         "pip install 'dask[distributed]')") from None
    try:
        client = Client(run.config.scheduler, timeout=f"{run.config.scheduler_timeout}s",
                        set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise BatchError(f"cannot reach the Dask scheduler at {run.config.scheduler}: {exc}; "
                         "start it (dask scheduler) or fix --scheduler") from None
    threads = run.config.threads_per_worker or 1
    try:
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        limit = 2 * n_workers
        queue = list(todo)
        pending: dict[str, SeriesItem] = {}
        futures = None

        def submit_next() -> list:
            new = []
            while queue and len(pending) < limit:
                item = queue.pop(0)
                task = run.make_task(item, threads)
                if task.dataset is None:
                    run.done(run_series(task))
                    continue
                fut = client.submit(run_series, task, pure=False,
                                    key=f"forecast-{run.run_id}-{item.index}-{item.slug}")
                pending[fut.key] = item
                new.append(fut)
                if futures is not None:
                    futures.add(fut)
            return new

        first = submit_next()
        if not first:
            return
        futures = as_completed(first, loop=client.loop)
        for fut in futures:
            item = pending.pop(fut.key)
            try:
                res = fut.result()
            except (KeyboardInterrupt, Stopped):
                raise
            except Exception as exc:  # noqa: BLE001 - a lost worker fails its series only
                run.crashed(item, f"the Dask task failed: {type(exc).__name__}: {exc}")
            else:
                run.done(res)
            fut.release()
            submit_next()
    finally:
        client.close()
