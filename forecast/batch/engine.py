"""The batch coordinator: plan the series, hold the lock, hand the work to an engine,
write every output atomically, keep the manifest, resume.

Output folder layout (``output`` of the batch file)::

    .lock                       flock()ed by the running batch (pid, host, run id inside)
    latest.json                 the last finished run's id
    models/<slug>.npz           the current model of each series (used by refit never/auto)
    runs/<run id>/
        manifest.json           run state and one entry per series (rewritten as they finish)
        log.jsonl               JSON-lines events
        forecasts.parquet, forecasts.csv    every series' forecast, in config order
        summary.html            one row per series, drill-down to series/<slug>/report.html
        plotly.min.js           shared by the series reports
        series/<slug>/forecast.csv, model.npz, report.html, result.json

A series is done when its ``result.json`` exists (written last, after its other files);
re-running the same run id skips done series, so a killed run resumes where it stopped
and writes each series exactly once. Only the coordinator writes files; workers compute.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from forecast.batch.config import BatchConfig, SeriesSettings, SourceSpec, slugify
from forecast.errors import BatchError, ConfigError, DataError, ForecastError, LockHeldError

__all__ = ["SeriesItem", "RunOutcome", "plan_series", "load_series", "run_batch",
           "read_status", "BatchLock", "EXIT_OK", "EXIT_PARTIAL", "EXIT_ERROR", "MANIFEST",
           "RESULT"]

EXIT_OK, EXIT_ERROR, EXIT_PARTIAL = 0, 1, 3
MANIFEST, RESULT = "manifest.json", "result.json"
MANIFEST_FORMAT = "forecast-batch-run"
_MANIFEST_EVERY = 1.0  # seconds between manifest rewrites while series finish


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ---- planning --------------------------------------------------------------------------
@dataclass
class SeriesItem:
    """One series to forecast: where it comes from and its resolved settings."""

    index: int
    uid: str
    slug: str
    source: SourceSpec
    file: str
    settings: SeriesSettings
    frame_dataset: Any = None  # long format: the whole file's Dataset (shared)
    error: str | None = None  # the source could not be read at all

    @property
    def label(self) -> str:
        return self.file if self.source.id_col is None else f"{self.file} [{self.uid}]"


def plan_series(config: BatchConfig) -> list[SeriesItem]:
    """Every series of `config` in order (sources in file order, files sorted, ids in
    order of appearance). Long-format files are read here to find their ids. Raises
    `ConfigError` for ids that clash or ``[series.ID]`` tables matching no series."""
    from forecast.workflows import load_data

    items: list[SeriesItem] = []
    for src in config.sources:
        for file in src.files:
            if src.id_col is None:
                uid = src.id or (file if src.bundled else Path(file).stem)
                items.append(SeriesItem(len(items), uid, slugify(uid), src, file,
                                        config.settings_for(src, uid)))
                continue
            base = config.settings_for(src, "\0")  # long format: file-level load options
            try:
                whole = load_data(base.data_spec(file, src.id_col))
            except ForecastError as exc:
                uid = Path(file).stem
                items.append(SeriesItem(len(items), uid, slugify(uid), src, file, base,
                                        error=f"cannot read {file}: {exc}"))
                continue
            for uid in whole.ids:
                uid = str(uid)
                items.append(SeriesItem(len(items), uid, slugify(uid), src, file,
                                        config.settings_for(src, uid), frame_dataset=whole))
    seen: dict[str, SeriesItem] = {}
    slugs: dict[str, str] = {}
    for it in items:
        if it.uid in seen:
            raise ConfigError(f"series id {it.uid!r} comes from both {seen[it.uid].label} and "
                              f"{it.label}; give one of the sources an id = \"...\" or rename "
                              "a file")
        if it.slug.lower() in slugs:
            raise ConfigError(f"series ids {slugs[it.slug.lower()]!r} and {it.uid!r} map to the "
                              "same file name; rename one")
        seen[it.uid] = it
        slugs[it.slug.lower()] = it.uid
    stray = sorted(set(config.overrides) - set(seen))
    if stray:
        import difflib

        hints = [f"{s!r}" + (f" (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(
            s, list(seen), n=1)) else "") for s in stray]
        raise ConfigError(f"[series.*] table(s) {', '.join(hints)} match no series; the "
                          f"series are {', '.join(list(seen)[:12])}"
                          + (" ..." if len(seen) > 12 else ""))
    if not items:
        raise ConfigError("the batch file's sources hold no series")
    return items


def load_series(item: SeriesItem, as_of=None):
    """The single-series `Dataset` of `item` named by its id, cut at `as_of` (rows on or
    before it). Raises `DataError` (or another `ForecastError`)."""
    from dataclasses import replace

    import pandas as pd

    from forecast.workflows import load_data

    if item.error is not None:
        raise DataError(item.error)
    if item.frame_dataset is not None:
        ds = item.frame_dataset.series(item.uid)
    else:
        ds = load_data(item.settings.data_spec(item.file))
    ds = replace(ds, name=item.uid)
    if as_of is not None:
        cut = pd.Timestamp(as_of)
        times = pd.DatetimeIndex(ds.frame[ds.time_col])
        if times.tz is not None and cut.tz is None:
            cut = cut.tz_localize(times.tz)
        elif times.tz is None and cut.tz is not None:
            cut = cut.tz_convert("UTC").tz_localize(None)
        n = int(times.searchsorted(cut, side="right"))
        if n == 0:
            raise DataError(f"{item.label} has no rows on or before --as-of {as_of} (it starts "
                            f"at {times[0]}); choose a later --as-of")
        if n < len(ds):
            ds = replace(ds, frame=ds.frame.iloc[:n].reset_index(drop=True))
    return ds


# ---- the lock --------------------------------------------------------------------------
class BatchLock:
    """An exclusive ``flock`` on ``OUTPUT/.lock``. The kernel drops it when its process
    dies, however it dies, so a lock left by a dead run is taken over (and reported in
    `stale`); a live holder makes `acquire` raise `LockHeldError` naming it."""

    def __init__(self, folder: Path, run_id: str):
        self.path = Path(folder) / ".lock"
        self.run_id = run_id
        self.fd: int | None = None
        self.stale: dict[str, Any] | None = None

    def acquire(self) -> "BatchLock":
        import fcntl

        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise BatchError(f"cannot create the lock file {self.path}: "
                             f"{exc.strerror or exc}; check the output folder") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_json_fd(fd)
            os.close(fd)
            who = (f"pid {holder.get('pid')} on {holder.get('host')}, run "
                   f"{holder.get('run_id')!r}, since {holder.get('since')}") if holder else \
                "another process"
            raise LockHeldError(f"{self.path.parent} is locked by a running batch ({who}); "
                                "wait for it to finish or give another output folder") from None
        previous = _read_json_fd(fd)
        if previous.get("pid") and not previous.get("released"):
            self.stale = previous  # its process died without releasing: taken over
        info = {"pid": os.getpid(), "host": socket.gethostname(), "run_id": self.run_id,
                "since": _now()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        os.fsync(fd)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        import fcntl

        with contextlib.suppress(OSError):
            info = _read_json_fd(self.fd)
            info["released"] = _now()
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, json.dumps(info).encode(), 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> "BatchLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_json_fd(fd: int) -> dict[str, Any]:
    try:
        raw = os.pread(fd, 65536, 0)
        value = json.loads(raw.decode("utf-8")) if raw.strip() else {}
        return value if isinstance(value, dict) else {}
    except (OSError, ValueError):
        return {}


def lock_holder(folder) -> dict[str, Any] | None:
    """Who holds the lock of output folder `folder` now (None when nobody does)."""
    import fcntl

    path = Path(folder) / ".lock"
    if not path.is_file():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return _read_json_fd(fd) or {"pid": None}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


# ---- files -----------------------------------------------------------------------------
def _write_bytes(path: Path, data: bytes) -> None:
    from forecast.io import atomic_write

    with atomic_write(path, "wb") as fh:
        fh.write(data)


def _write_json(path: Path, obj: Any) -> None:
    _write_bytes(path, json.dumps(obj, indent=1, allow_nan=False, default=str).encode("utf-8"))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- the run ---------------------------------------------------------------------------
@dataclass
class RunOutcome:
    run_id: str
    run_dir: Path
    manifest: dict[str, Any]
    exit_code: int
    resumed: int = 0  # series skipped because an earlier attempt of the run finished them
    stale_lock: dict[str, Any] | None = None

    @property
    def counts(self) -> dict[str, int]:
        return self.manifest["counts"]


class _Stop(BaseException):
    """SIGTERM while a batch runs: stop cleanly (like Ctrl-C)."""


@dataclass
class _Run:
    config: BatchConfig
    run_id: str
    run_dir: Path
    as_of: str | None
    run_as_of: str
    items: list[SeriesItem]
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    started: str = ""
    log_sink: Callable[[dict], None] | None = None
    progress: Callable[[str, dict], None] | None = None
    _log_fh: Any = None
    _last_manifest: float = 0.0

    # ---- logging -----------------------------------------------------------------------
    def log(self, event: str, **fields_) -> None:
        record = {"time": _now(), "event": event, "run_id": self.run_id, **fields_}
        line = json.dumps(record, default=str, allow_nan=False)
        if self._log_fh is not None:
            self._log_fh.write(line + "\n")
            self._log_fh.flush()
        if self.log_sink is not None:
            self.log_sink(record)

    # ---- manifest ----------------------------------------------------------------------
    def manifest(self, state: str, finished: str | None = None) -> dict[str, Any]:
        counts = {"ok": 0, "fallback": 0, "failed": 0, "pending": 0}
        series = []
        for it in self.items:
            entry = self.entries.get(it.uid)
            if entry is None:
                entry = {"id": it.uid, "slug": it.slug, "status": "pending",
                         "requested_model": it.settings.model}
            counts[entry["status"]] = counts.get(entry["status"], 0) + 1
            series.append(entry)
        cfg = self.config
        started = datetime.fromisoformat(self.started)
        return {"format": MANIFEST_FORMAT, "format_version": 1, "run_id": self.run_id,
                "as_of": self.as_of, "run_as_of": self.run_as_of, "state": state,
                "started": self.started, "finished": finished,
                "seconds": round((datetime.now(timezone.utc) - started).total_seconds(), 3),
                "engine": cfg.engine, "workers": cfg.workers,
                "config_file": str(cfg.path), "config_fingerprint": cfg.fingerprint(),
                "counts": counts, "series": series}

    def write_manifest(self, state: str = "running", force: bool = False,
                       finished: str | None = None) -> dict[str, Any]:
        now = time.monotonic()
        if not force and now - self._last_manifest < _MANIFEST_EVERY:
            return {}
        m = self.manifest(state, finished)
        _write_json(self.run_dir / MANIFEST, m)
        self._last_manifest = now
        return m

    # ---- one finished series ---------------------------------------------------------
    def commit(self, res) -> dict[str, Any]:
        """Write the outputs of worker result `res`, its result.json last."""
        folder = self.run_dir / "series" / res.slug
        folder.mkdir(parents=True, exist_ok=True)
        entry = res.entry()
        files: dict[str, Any] = {"forecast": None, "model": None, "report": None}
        rel = f"series/{res.slug}"
        if res.forecast is not None:
            from forecast.io import write_table

            write_table(res.forecast, folder / "forecast.csv")
            files["forecast"] = f"{rel}/forecast.csv"
        if res.model_bytes is not None:
            _write_bytes(folder / "model.npz", res.model_bytes)
            files["model"] = f"{rel}/model.npz"
            entry["model_sha256"] = _sha256(res.model_bytes)
            entry["model_is_new"] = bool(res.model_is_new)
        if res.report_html is not None:
            _write_bytes(folder / "report.html", res.report_html.encode("utf-8"))
            files["report"] = f"{rel}/report.html"
        entry["files"] = files
        entry["source"] = self.items[res.index].label
        entry["finished"] = _now()
        _write_json(folder / RESULT, {**entry, "spark": res.spark})
        self._sync_model(entry)
        self.entries[res.uid] = entry
        return entry

    def _sync_model(self, entry: dict[str, Any]) -> None:
        """Make ``models/<slug>.npz`` the model this run fitted for the series."""
        if not entry.get("model_is_new") or not entry["files"].get("model"):
            return
        store = self.config.output / "models" / f"{entry['slug']}.npz"
        try:
            current = _sha256(store.read_bytes()) if store.is_file() else None
        except OSError:
            current = None
        if current != entry["model_sha256"]:
            store.parent.mkdir(parents=True, exist_ok=True)
            _write_bytes(store, (self.run_dir / entry["files"]["model"]).read_bytes())

    # ---- resume ------------------------------------------------------------------------
    def finished_entry(self, item: SeriesItem) -> dict[str, Any] | None:
        """The entry of a series an earlier attempt of this run finished, if its files are
        all there and intact."""
        path = self.run_dir / "series" / item.slug / RESULT
        entry = _read_json(path)
        if not isinstance(entry, dict) or entry.get("id") != item.uid:
            return None
        for rel in (entry.get("files") or {}).values():
            if rel and not (self.run_dir / rel).is_file():
                return None
        model = (entry.get("files") or {}).get("model")
        if model and entry.get("model_sha256") != _sha256((self.run_dir / model).read_bytes()):
            return None
        entry.pop("spark", None)
        return entry


def _default_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def check_run_id(run_id: str) -> str:
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", run_id or ""):
        raise ConfigError(f"run id {run_id!r} is not valid; use letters, digits, '.', '_' and "
                          "'-' (e.g. 2026-11-23)")
    return run_id


def _as_of(text) -> str | None:
    if text is None:
        return None
    import pandas as pd

    try:
        t = pd.Timestamp(text)
    except (ValueError, TypeError):
        raise ConfigError(f"--as-of {text!r} is not a timestamp; use e.g. 2024-06-28 or "
                          "2024-06-28T16:00") from None
    if t is pd.NaT:
        raise ConfigError(f"--as-of {text!r} is not a timestamp")
    return t.isoformat()


def run_batch(config: BatchConfig, *, run_id: str | None = None, as_of=None,
              progress: Callable[[str, dict], None] | None = None,
              log: Callable[[dict], None] | None = None) -> RunOutcome:
    """Run (or resume) batch `config`; see the module docstring. `progress(stage, info)`
    gets ``start`` (total, done), ``series`` (a manifest entry) and ``end`` events; `log`
    gets every JSON log record. Raises `BatchError`/`ConfigError` when the run cannot
    start; a series that fails is recorded, not raised."""
    run_id = check_run_id(run_id) if run_id else _default_run_id()
    as_of = _as_of(as_of)
    out = config.output
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BatchError(f"cannot create the output folder {out}: {exc.strerror or exc}") \
            from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise BatchError(f"the output folder {out} is not writable")
    with BatchLock(out, run_id) as lock:
        return _run_locked(config, run_id, as_of, lock, progress, log)


def _run_locked(config, run_id, as_of, lock, progress, log) -> RunOutcome:
    run_dir = config.output / "runs" / run_id
    previous = _read_json(run_dir / MANIFEST) if (run_dir / MANIFEST).is_file() else None
    if (run_dir / MANIFEST).is_file() and not isinstance(previous, dict):
        raise BatchError(f"{run_dir / MANIFEST} is damaged; remove {run_dir} to start this run "
                         "again, or use another --run-id")
    if previous is not None:
        if previous.get("config_fingerprint") != config.fingerprint():
            raise BatchError(f"run {run_id!r} was started with a different batch file (or the "
                             "files its globs match changed); use a new --run-id")
        if as_of is not None and previous.get("as_of") != as_of:
            raise BatchError(f"run {run_id!r} was started with --as-of "
                             f"{previous.get('as_of')}, not {as_of}; use a new --run-id")
        as_of = previous.get("as_of")
    items = plan_series(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    started = previous.get("started") if previous else _now()
    run_as_of = as_of or (previous.get("run_as_of") if previous else None) or \
        datetime.now(timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds")
    run = _Run(config, run_id, run_dir, as_of, run_as_of, items, started=started,
               log_sink=log, progress=progress)
    run._log_fh = open(run_dir / "log.jsonl", "a", encoding="utf-8")
    try:
        todo = []
        for it in items:
            entry = run.finished_entry(it)
            if entry is not None:
                run.entries[it.uid] = entry
                run._sync_model(entry)
            else:
                todo.append(it)
        resumed = len(items) - len(todo)
        run.log("run_start", as_of=as_of, engine=config.engine, series=len(items),
                todo=len(todo), resumed=resumed, pid=os.getpid(),
                **({"stale_lock": lock.stale} if lock.stale else {}))
        run.write_manifest(force=True)
        if progress:
            progress("start", {"total": len(items), "done": resumed})
        state = "finished"
        try:
            with _sigterm_as_stop():
                _execute(run, todo)
        except (KeyboardInterrupt, _Stop) as exc:
            state = "interrupted"
            run.write_manifest("interrupted", force=True)
            run.log("run_interrupted", reason=type(exc).__name__)
            raise KeyboardInterrupt if isinstance(exc, KeyboardInterrupt) else exc
        manifest = _finish(run)
        counts = manifest["counts"]
        code = EXIT_OK if counts["ok"] == len(items) else EXIT_PARTIAL
        run.log("run_end", state=state, counts=counts, exit_code=code,
                seconds=manifest["seconds"])
        if progress:
            progress("end", {"counts": counts})
        return RunOutcome(run_id, run_dir, manifest, code, resumed, lock.stale)
    finally:
        run._log_fh.close()


@contextlib.contextmanager
def _sigterm_as_stop() -> Iterator[None]:
    """SIGTERM (systemd stop, kill) raises `_Stop` in the main thread, so the run stops
    like after Ctrl-C: workers shut down, manifest marked interrupted, lock released."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise _Stop()

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _finish(run: _Run) -> dict[str, Any]:
    """Combined forecast table, summary page, final manifest, latest.json."""
    import pandas as pd

    from forecast.io import write_table

    frames = []
    for it in run.items:
        entry = run.entries.get(it.uid)
        rel = (entry or {}).get("files", {}).get("forecast")
        if not rel:
            continue
        f = pd.read_csv(run.run_dir / rel, parse_dates=["ds"])
        f.insert(1, "model", entry.get("model"))
        f["unique_id"] = it.uid
        frames.append(f)
    if frames:
        table = pd.concat(frames, ignore_index=True)
        write_table(table, run.run_dir / "forecasts.parquet")
        write_table(table, run.run_dir / "forecasts.csv")
    finished = _now()
    manifest = run.manifest("finished", finished)
    if run.config.reports:
        from forecast.report import write_plotlyjs

        write_plotlyjs(run.run_dir)
    sparks = {}
    for it in run.items:
        res = _read_json(run.run_dir / "series" / it.slug / RESULT)
        if isinstance(res, dict) and res.get("spark"):
            sparks[it.uid] = res["spark"]
    from forecast.batch.summary import write_summary

    write_summary(run.run_dir / "summary.html", manifest, sparks)
    _write_json(run.run_dir / MANIFEST, manifest)
    _write_json(run.config.output / "latest.json", {"run_id": run.run_id, "finished": finished,
                                                   "counts": manifest["counts"]})
    return manifest


# ---- engines ---------------------------------------------------------------------------
def _threads(config: BatchConfig, workers: int) -> int:
    if config.threads_per_worker:
        return config.threads_per_worker
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def _workers(config: BatchConfig) -> int:
    return config.workers or max(1, os.cpu_count() or 1)


def _make_task(run: _Run, item: SeriesItem, threads: int):
    """Load the series (here, in the coordinator) and build the worker's task."""
    from forecast.batch.worker import SeriesTask

    t0 = time.perf_counter()
    dataset, error = None, None
    try:
        dataset = load_series(item, run.as_of)
    except ForecastError as exc:
        error = " ".join(str(exc).split())
    except (OSError, ValueError) as exc:
        error = f"cannot read {item.file}: {exc}"
    saved = None
    store = run.config.output / "models" / f"{item.slug}.npz"
    if run.config.refit.policy != "always" and store.is_file():
        with contextlib.suppress(OSError):
            saved = store.read_bytes()
    return SeriesTask(item.index, item.uid, item.slug, item.settings, run.config.refit,
                      run.run_as_of, dataset, error, time.perf_counter() - t0, item.label,
                      saved, run.config.reports, threads)


def _done(run: _Run, res) -> None:
    entry = run.commit(res)
    run.log("series_done", id=res.uid, status=res.status, model=res.model, action=res.action,
            seconds=round(res.seconds.get("total", 0.0), 3), error=res.error)
    if run.progress:
        run.progress("series", entry)
    run.write_manifest()


def _execute(run: _Run, todo: list[SeriesItem]) -> None:
    if not todo:
        return
    if run.config.engine == "dask":
        _execute_dask(run, todo)
    else:
        _execute_local(run, todo)


def _crashed(run: _Run, item: SeriesItem, why: str) -> None:
    from forecast.batch.worker import SeriesResult

    res = SeriesResult(item.index, item.uid, item.slug, "failed", item.settings.model,
                       error=why)
    _done(run, res)


def _precompile(run: _Run, todo: list[SeriesItem]) -> None:
    """Compile the recurrent kernels the series need once, several at a time, before
    the workers start (otherwise every worker compiles the same kernels at once on a
    fresh machine); nothing to do when Numba's disk cache has them."""
    from forecast.nn import CELLS
    from forecast.precompile import precompile

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


def _execute_local(run: _Run, todo: list[SeriesItem]) -> None:
    """A pool of `workers` spawned processes, each running `threads` Numba threads. At
    most two tasks per worker are in flight (the coordinator loads the next series while
    the workers compute). A worker that dies (killed, out of memory) fails only the
    series it ran: the series in flight at that moment are retried one at a time."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    workers = min(_workers(run.config), len(todo))
    threads = _threads(run.config, workers)
    _precompile(run, todo)
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
                task = _make_task(run, item, threads)
                if task.dataset is None:  # nothing to compute: record the load error
                    from forecast.batch.worker import run_series

                    _done(run, run_series(task))
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
                        _crashed(run, item, "the worker process died while forecasting this "
                                 "series (killed or out of memory)")
                    else:
                        suspects.append(item)
                    continue
                _done(run, res)
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
    from forecast.batch.worker import run_series

    return run_series(task)


def _execute_dask(run: _Run, todo: list[SeriesItem]) -> None:
    """The same tasks on a Dask distributed cluster (results come back to this process,
    which writes them: the workers need no shared disk)."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise BatchError("the dask engine needs Dask: pip install 'forecast[dask]' (or "
                         "pip install 'dask[distributed]')") from None
    from forecast.batch.worker import run_series

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
                task = _make_task(run, item, threads)
                if task.dataset is None:
                    _done(run, run_series(task))
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
            except (KeyboardInterrupt, _Stop):
                raise
            except Exception as exc:  # noqa: BLE001 - a lost worker fails its series only
                _crashed(run, item, f"the Dask task failed: {type(exc).__name__}: {exc}")
            else:
                _done(run, res)
            fut.release()
            submit_next()
    finally:
        client.close()


# ---- status ----------------------------------------------------------------------------
def read_status(output, run_id: str | None = None) -> dict[str, Any]:
    """The manifest of run `run_id` (default: the latest) in output folder `output`, with
    ``lock`` (who holds the folder now) and ``runs`` (every run id) added."""
    out = Path(output)
    runs_dir = out / "runs"
    if not runs_dir.is_dir():
        raise BatchError(f"{out} is not a batch output folder (no runs/ in it); give the "
                         "output folder of a batch file")
    runs = sorted((p for p in runs_dir.iterdir() if (p / MANIFEST).is_file()),
                  key=lambda p: (p / MANIFEST).stat().st_mtime)
    if not runs:
        raise BatchError(f"{out} holds no run yet")
    if run_id is None:
        target = runs[-1]
    else:
        target = runs_dir / check_run_id(run_id)
        if not (target / MANIFEST).is_file():
            raise BatchError(f"no run {run_id!r} in {out}; runs: "
                             f"{', '.join(p.name for p in runs[-10:])}")
    manifest = _read_json(target / MANIFEST)
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise BatchError(f"{target / MANIFEST} is damaged or not a batch manifest")
    if manifest.get("state") != "finished":
        _merge_results(manifest, target)  # the manifest may lag the last second of work
    holder = lock_holder(out)
    if manifest.get("state") == "running" and (holder is None or
                                               holder.get("run_id") != manifest["run_id"]):
        manifest["state"] = "stopped"  # its process died: resume it with the same --run-id
    manifest["lock"] = holder
    manifest["runs"] = [p.name for p in runs]
    manifest["run_dir"] = str(target)
    return manifest


def _merge_results(manifest: dict[str, Any], run_dir: Path) -> None:
    """Update the entries (and counts) of `manifest` from the series' result files."""
    counts = {"ok": 0, "fallback": 0, "failed": 0, "pending": 0}
    for i, entry in enumerate(manifest.get("series") or []):
        if entry.get("status") == "pending":
            res = _read_json(run_dir / "series" / str(entry.get("slug")) / RESULT)
            if isinstance(res, dict) and res.get("id") == entry.get("id"):
                res.pop("spark", None)
                manifest["series"][i] = entry = res
        counts[entry.get("status", "pending")] = counts.get(entry.get("status", "pending"),
                                                            0) + 1
    manifest["counts"] = counts


def manifest_exit_code(manifest: dict[str, Any]) -> int:
    c = manifest.get("counts") or {}
    if manifest.get("state") != "finished":
        return EXIT_PARTIAL
    return EXIT_OK if c.get("failed", 0) == 0 and c.get("fallback", 0) == 0 \
        and c.get("pending", 0) == 0 else EXIT_PARTIAL
