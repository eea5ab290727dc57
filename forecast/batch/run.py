"""A batch run from start to end: take the lock, plan, resume what an earlier attempt
of the run finished, hand the rest to an executor (`forecast.batch.executors`), write
every output atomically (only this process writes files; workers compute), keep the
manifest, and finish with the combined table, the summary page and ``latest.json``.

Output folder layout (``output`` of the batch file)::

    .lock                       flock()ed by the running batch (pid, host, run id inside)
    latest.json                 the last finished run's id
    models/<slug>.npz           the current model of each series (used by refit never/auto)
    runs/<run id>/
        manifest.json           run state and one entry per series (rewritten as they finish)
        log.jsonl               JSON-lines events
        forecasts.parquet, forecasts.csv    every series' forecast, in config order
                                            (the Parquet copy with the ``parquet`` extra)
        summary.html            one row per series, drill-down to series/<slug>/report.html
        plotly.min.js           shared by the series reports
        series/<slug>/forecast.csv, model.npz, report.html, result.json

A series is done when its ``result.json`` exists (written last, after its other files);
re-running the same run id skips done series, so a killed run resumes where it stopped
and writes each series exactly once.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd

from forecast.batch.config import BatchConfig
from forecast.batch.executors import Stopped, run_dask, run_local
from forecast.batch.lock import BatchLock
from forecast.batch.manifest import (EXIT_OK, EXIT_PARTIAL, MANIFEST, MANIFEST_FORMAT,
                                     MANIFEST_VERSION, RESULT, RunManifest, count_statuses,
                                     now_iso, read_json, sha256, write_json)
from forecast.batch.plan import SeriesItem, check_run_id, default_run_id, load_series, \
    parse_as_of, plan_series
from forecast.batch.summary import write_summary
from forecast.batch.worker import SeriesResult, SeriesTask
from forecast.errors import BatchError, ForecastError
from forecast.files import parquet_available, write_bytes, write_table
from forecast.report import write_plotlyjs

__all__ = ["RunOutcome", "RunState", "run_batch", "Stopped"]

MANIFEST_EVERY = 1.0  # seconds between manifest rewrites while series finish


@dataclass
class RunOutcome:
    run_id: str
    run_dir: Path
    manifest: RunManifest
    exit_code: int
    resumed: int = 0  # series skipped because an earlier attempt of the run finished them
    stale_lock: dict[str, Any] | None = None

    @property
    def counts(self) -> dict[str, int]:
        return self.manifest["counts"]


@dataclass
class RunState:
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
    log_file: Any = None
    last_manifest: float = 0.0

    # ---- logging -----------------------------------------------------------------------
    def log(self, event: str, **fields_) -> None:
        record = {"time": now_iso(), "event": event, "run_id": self.run_id, **fields_}
        line = json.dumps(record, default=str, allow_nan=False)
        if self.log_file is not None:
            self.log_file.write(line + "\n")
            self.log_file.flush()
        if self.log_sink is not None:
            self.log_sink(record)

    # ---- manifest ----------------------------------------------------------------------
    def manifest(self, state: str, finished: str | None = None) -> RunManifest:
        series = []
        for it in self.items:
            entry = self.entries.get(it.uid)
            if entry is None:
                entry = {"id": it.uid, "slug": it.slug, "status": "pending",
                         "requested_model": it.settings.model}
            series.append(entry)
        counts = count_statuses(series)
        cfg = self.config
        started = datetime.fromisoformat(self.started)
        return {"format": MANIFEST_FORMAT, "format_version": MANIFEST_VERSION, "run_id": self.run_id,
                "as_of": self.as_of, "run_as_of": self.run_as_of, "state": state,
                "started": self.started, "finished": finished,
                "seconds": round((datetime.now(timezone.utc) - started).total_seconds(), 3),
                "engine": cfg.engine, "workers": cfg.workers,
                "config_file": str(cfg.path), "config_fingerprint": cfg.fingerprint(),
                "counts": counts, "series": series}

    def write_manifest(self, state: str = "running", force: bool = False,
                       finished: str | None = None) -> dict[str, Any]:
        now = time.monotonic()
        if not force and now - self.last_manifest < MANIFEST_EVERY:
            return {}
        m = self.manifest(state, finished)
        write_json(self.run_dir / MANIFEST, m)
        self.last_manifest = now
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
            write_table(res.forecast, folder / "forecast.csv")
            files["forecast"] = f"{rel}/forecast.csv"
        if res.model_bytes is not None:
            write_bytes(folder / "model.npz", res.model_bytes)
            files["model"] = f"{rel}/model.npz"
            entry["model_sha256"] = sha256(res.model_bytes)
            entry["model_is_new"] = bool(res.model_is_new)
        if res.report_html is not None:
            write_bytes(folder / "report.html", res.report_html.encode("utf-8"))
            files["report"] = f"{rel}/report.html"
        entry["files"] = files
        entry["source"] = self.items[res.index].label
        entry["finished"] = now_iso()
        write_json(folder / RESULT, {**entry, "spark": res.spark})
        self.sync_model(entry)
        self.entries[res.uid] = entry
        return entry

    def sync_model(self, entry: dict[str, Any]) -> None:
        """Make ``models/<slug>.npz`` the model this run fitted for the series."""
        if not entry.get("model_is_new") or not entry["files"].get("model"):
            return
        store = self.config.output / "models" / f"{entry['slug']}.npz"
        try:
            current = sha256(store.read_bytes()) if store.is_file() else None
        except OSError:
            current = None
        if current != entry["model_sha256"]:
            store.parent.mkdir(parents=True, exist_ok=True)
            write_bytes(store, (self.run_dir / entry["files"]["model"]).read_bytes())

    # ---- resume ------------------------------------------------------------------------
    def finished_entry(self, item: SeriesItem) -> dict[str, Any] | None:
        """The entry of a series an earlier attempt of this run finished, if its files are
        all there and intact."""
        path = self.run_dir / "series" / item.slug / RESULT
        entry = read_json(path)
        if not isinstance(entry, dict) or entry.get("id") != item.uid:
            return None
        for rel in (entry.get("files") or {}).values():
            if rel and not (self.run_dir / rel).is_file():
                return None
        model = (entry.get("files") or {}).get("model")
        if model and entry.get("model_sha256") != sha256((self.run_dir / model).read_bytes()):
            return None
        entry.pop("spark", None)
        return entry

    # ---- work items (the executors call these) --------------------------------------
    def make_task(self, item: SeriesItem, threads: int):
        """Load the series (here, in the coordinator) and build the worker's task."""
        t0 = time.perf_counter()
        dataset, error = None, None
        try:
            dataset = load_series(item, self.as_of)
        except ForecastError as exc:
            error = " ".join(str(exc).split())
        except (OSError, ValueError) as exc:
            error = f"cannot read {item.file}: {exc}"
        saved = None
        store = self.config.output / "models" / f"{item.slug}.npz"
        if self.config.refit.policy != "always" and store.is_file():
            with contextlib.suppress(OSError):
                saved = store.read_bytes()
        return SeriesTask(item.index, item.uid, item.slug, item.settings, self.config.refit,
                          self.run_as_of, dataset, error, time.perf_counter() - t0, item.label,
                          saved, self.config.reports, threads)

    def done(self, res) -> None:
        entry = self.commit(res)
        self.log("series_done", id=res.uid, status=res.status, model=res.model,
                 action=res.action, seconds=round(res.seconds.get("total", 0.0), 3),
                 error=res.error)
        if self.progress:
            self.progress("series", entry)
        self.write_manifest()

    def crashed(self, item: SeriesItem, why: str) -> None:
        res = SeriesResult(item.index, item.uid, item.slug, "failed", item.settings.model,
                           error=why)
        self.done(res)


def run_batch(config: BatchConfig, *, run_id: str | None = None, as_of=None,
              progress: Callable[[str, dict], None] | None = None,
              log: Callable[[dict], None] | None = None) -> RunOutcome:
    """Run (or resume) batch `config`; see the module docstring. `progress(stage, info)`
    gets ``start`` (total, done), ``series`` (a manifest entry) and ``end`` events; `log`
    gets every JSON log record. Raises `BatchError`/`ConfigError` when the run cannot
    start; a series that fails is recorded, not raised."""
    run_id = check_run_id(run_id) if run_id else default_run_id()
    as_of = parse_as_of(as_of)
    out = config.output
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BatchError(f"cannot create the output folder {out}: {exc.strerror or exc}") \
            from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise BatchError(f"the output folder {out} is not writable")
    with BatchLock(out, run_id) as lock:
        return run_locked(config, run_id, as_of, lock, progress, log)


def run_locked(config, run_id, as_of, lock, progress, log) -> RunOutcome:
    run_dir = config.output / "runs" / run_id
    previous = read_json(run_dir / MANIFEST) if (run_dir / MANIFEST).is_file() else None
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
    started = previous.get("started") if previous else now_iso()
    run_as_of = as_of or (previous.get("run_as_of") if previous else None) or \
        datetime.now(timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds")
    run = RunState(config, run_id, run_dir, as_of, run_as_of, items, started=started,
               log_sink=log, progress=progress)
    run.log_file = open(run_dir / "log.jsonl", "a", encoding="utf-8")
    try:
        todo = []
        for it in items:
            entry = run.finished_entry(it)
            if entry is not None:
                run.entries[it.uid] = entry
                run.sync_model(entry)
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
                execute(run, todo)
        except (KeyboardInterrupt, Stopped) as exc:
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
        run.log_file.close()


@contextlib.contextmanager
def _sigterm_as_stop() -> Iterator[None]:
    """SIGTERM (systemd stop, kill) raises `Stopped` in the main thread, so the run stops
    like after Ctrl-C: workers shut down, manifest marked interrupted, lock released."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Stopped()

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _finish(run: RunState) -> RunManifest:
    """Combined forecast table, summary page, final manifest, latest.json."""
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
        if parquet_available():
            write_table(table, run.run_dir / "forecasts.parquet")
        write_table(table, run.run_dir / "forecasts.csv")
    finished = now_iso()
    manifest = run.manifest("finished", finished)
    if run.config.reports:
        write_plotlyjs(run.run_dir)
    sparks = {}
    for it in run.items:
        res = read_json(run.run_dir / "series" / it.slug / RESULT)
        if isinstance(res, dict) and res.get("spark"):
            sparks[it.uid] = res["spark"]
    write_summary(run.run_dir / "summary.html", manifest, sparks)
    write_json(run.run_dir / MANIFEST, manifest)
    write_json(run.config.output / "latest.json", {"run_id": run.run_id, "finished": finished,
                                                   "counts": manifest["counts"]})
    return manifest


def execute(run: RunState, todo: list[SeriesItem]) -> None:
    if not todo:
        return
    if run.config.engine == "dask":
        run_dask(run, todo)
    else:
        run_local(run, todo)
