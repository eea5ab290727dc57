"""One series of a batch: decide fit or reuse, backtest, fit, forecast, report.

`run_series` is the unit of work every engine runs (in a local worker process or on a
Dask worker). It is a pure function of its `SeriesTask`: it reads no file and writes
none (the coordinator loads the data and writes every output), so the same task gives
the same bits on every worker of the same kind (CPU and BLAS build; workers on other CPUs
agree to rounding), and a worker on another machine needs no shared disk.
It never raises for a problem of the series itself: a bad series becomes a ``failed``
(or ``fallback``) `SeriesResult` with the error message.
"""

from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from forecast import metrics
from forecast.batch.config import RefitPolicy, SeriesSettings

__all__ = ["SeriesTask", "SeriesResult", "run_series", "set_threads", "SPARK_POINTS"]

SPARK_POINTS = 60  # history points kept for the summary page's small chart


@dataclass
class SeriesTask:
    index: int
    uid: str
    slug: str
    settings: SeriesSettings
    refit: RefitPolicy
    run_as_of: str  # ISO time the run stands at (the --as-of, else the start time)
    dataset: Any = None  # a single-series forecast.data.Dataset, None when loading failed
    load_error: str | None = None
    load_seconds: float = 0.0
    source: str = ""
    saved_model: bytes | None = None  # the current model file of the series, if any
    reports: bool = True
    threads: int = 1


@dataclass
class SeriesResult:
    index: int
    uid: str
    slug: str
    status: str  # ok | fallback | failed
    requested_model: str
    model: str | None = None
    action: str | None = None  # fit | refit | reuse
    reason: str | None = None
    error: str | None = None
    rows: int | None = None
    last_timestamp: str | None = None
    horizon: int | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    backtest: dict[str, Any] | None = None
    recent: dict[str, Any] | None = None  # reuse: error of the saved model on new data
    forecast: Any = None  # DataFrame: unique_id, ds, yhat, yhat_lower_80, ...
    model_bytes: bytes | None = None
    model_is_new: bool = False
    report_html: str | None = None
    spark: dict[str, Any] | None = None

    def entry(self) -> dict[str, Any]:
        """The JSON-safe manifest entry (no arrays, no bytes)."""
        return {"id": self.uid, "slug": self.slug, "status": self.status,
                "model": self.model, "requested_model": self.requested_model,
                "action": self.action, "reason": self.reason, "error": self.error,
                "rows": self.rows, "last_timestamp": self.last_timestamp,
                "horizon": self.horizon,
                "seconds": {k: round(v, 4) for k, v in self.seconds.items()},
                "backtest": self.backtest, "recent": self.recent}


def set_threads(n: int) -> None:
    """Numba threads for the kernels run by this thread (at most those Numba started)."""
    import numba

    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))


def _one_line(exc: BaseException) -> str:
    from forecast.errors import ForecastError

    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, ForecastError):
        return text
    # an unexpected error: say where, since there is no traceback in a batch log
    where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    at = f" at {where[0].filename.rsplit('/', 1)[-1]}:{where[0].lineno}" if where else ""
    return f"unexpected {type(exc).__name__}{at}: {text}"


def _iso(t) -> str:
    import pandas as pd

    return pd.Timestamp(t).isoformat()


# ---- the pipeline ----------------------------------------------------------------------
def run_series(task: SeriesTask) -> SeriesResult:
    """Forecast one series; see the module docstring."""
    t_start = time.perf_counter()
    s = task.settings
    res = SeriesResult(task.index, task.uid, task.slug, "failed", s.model,
                       seconds={"load": task.load_seconds})
    if task.load_error is not None or task.dataset is None:
        res.error = task.load_error or "no data"
        res.seconds["total"] = task.load_seconds
        return res
    set_threads(task.threads)
    from forecast.workflows import default_horizon

    ds = task.dataset
    b = ds.bounds
    res.rows = int(b[1] - b[0])
    res.last_timestamp = _iso(ds.frame[ds.time_col].iloc[-1]) if len(ds) else None
    horizon = s.horizon or default_horizon(ds)
    res.horizon = horizon

    saved, action, reason = _decide(task, ds, horizon, res)
    res.action, res.reason = action, reason
    try:
        if action == "reuse":
            _reuse(task, ds, horizon, saved, res)
        else:
            _fit(task, ds, horizon, s.model, res)
        res.status = "ok"
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except BaseException as exc:  # noqa: BLE001 - one series never stops the others
        res.error = f"{s.model}: {_one_line(exc)}"
        res.backtest = None
        if s.fallback != "none" and s.fallback != s.model:
            try:
                _fit(task, ds, horizon, s.fallback, res)
                res.status = "fallback"
            except (KeyboardInterrupt, SystemExit, MemoryError):
                raise
            except BaseException as exc2:  # noqa: BLE001
                res.error += f"; fallback {s.fallback}: {_one_line(exc2)}"
                res.status, res.model, res.forecast = "failed", None, None
                res.model_bytes, res.report_html, res.backtest = None, None, None
        else:
            res.status, res.model = "failed", None
    if res.forecast is not None:
        res.spark = _spark(ds, res.forecast, s.levels)
    res.seconds["total"] = task.load_seconds + time.perf_counter() - t_start
    return res


def _decide(task: SeriesTask, ds, horizon: int, res: SeriesResult):
    """(saved ModelFile or None, action, reason) under the refit policy."""
    policy = task.refit.policy
    if policy == "always":
        return None, "fit", "policy always"
    if task.saved_model is None:
        return None, "fit", "no saved model"
    from forecast import io

    try:
        mf = io.load_model_bytes(task.saved_model, f"saved model of {task.uid!r}")
        io.check_new_data(mf.manifest, ds)
    except BaseException as exc:  # noqa: BLE001 - a damaged or mismatched model is refitted
        if isinstance(exc, (KeyboardInterrupt, SystemExit, MemoryError)):
            raise
        return None, "refit", f"saved model unusable: {_one_line(exc)}"
    saved_name = mf.name
    if saved_name != task.settings.model:
        return None, "refit", f"model changed from {saved_name} to {task.settings.model}"
    if (mf.model.horizon_ if hasattr(mf.model, "horizon_") else horizon) < horizon:
        return None, "refit", "the saved model's horizon is shorter than the one asked for"
    if policy == "never":
        return mf, "reuse", "policy never"
    # auto: age, then degradation on the data since its fit
    import pandas as pd

    extra = mf.manifest.get("extra") or {}
    fitted_at = extra.get("batch_as_of") or mf.manifest.get("created")
    age = (pd.Timestamp(task.run_as_of) - _naive_utc(pd.Timestamp(fitted_at))) \
        / pd.Timedelta(days=1)
    if task.refit.max_age_days is not None and age > task.refit.max_age_days:
        return None, "refit", f"saved model is {age:.1f} days old (> {task.refit.max_age_days:g})"
    recent = _recent_error(mf, ds)
    res.recent = recent
    limit = task.refit.max_degradation
    if recent is not None and limit is not None:
        ref = recent["reference_mae"]
        if ref and recent["mae"] > (1 + limit) * ref:
            return None, "refit", (f"degraded: MAE {recent['mae']:.4g} on {recent['windows']} "
                                   f"new window(s) vs {recent['reference']} MAE {ref:.4g}")
    why = f"saved model {age:.1f} days old"
    why += ", not degraded" if recent is not None else ", too little new data to check"
    return mf, "reuse", why


def _naive_utc(t):
    return t.tz_convert("UTC").tz_localize(None) if t.tz is not None else t


def _recent_error(mf, ds) -> dict[str, Any] | None:
    """MAE of the saved model on the forecast windows that lie wholly after its training
    end, against its backtest MAE (or the naive forecast's MAE on the same windows)."""
    import numpy as np
    import pandas as pd

    model = mf.model
    fp = mf.manifest.get("data") or {}
    last = fp.get("last_timestamp") or {}
    if not last or not hasattr(model, "forecast_origins"):
        return None
    end = _naive_utc(pd.Timestamp(next(iter(last.values()))))
    times = pd.DatetimeIndex(ds.frame[ds.time_col])
    if times.tz is not None:
        times = times.tz_convert("UTC").tz_localize(None)
    first_new = int(np.searchsorted(times.to_numpy(), np.datetime64(end), side="right"))
    L, H = model.lookback_, model.horizon_
    n = len(ds)
    rows = np.arange(max(first_new, L), n - H + 1)
    if rows.size == 0:
        return None
    point, _ = model.forecast_origins(ds, np.zeros(rows.size, np.int64), rows, levels=())
    y = ds.frame[ds.target[0]].to_numpy(np.float64)
    truth = np.stack([y[r:r + H] for r in rows])
    ok = np.isfinite(truth) & np.isfinite(point)
    if not ok.any():
        return None
    mae = metrics.mae(truth[ok], point[ok])
    bt = (mf.manifest.get("backtest") or {}).get("model") or {}
    if bt.get("mae"):
        ref, what = float(bt["mae"]), "backtest"
    else:
        naive = np.repeat(y[rows - 1][:, None], H, axis=1)
        ref, what = metrics.mae(truth[ok], naive[ok]), "naive"
    return {"mae": mae, "windows": int(rows.size), "reference_mae": ref, "reference": what}


def _fit(task: SeriesTask, ds, horizon: int, name: str, res: SeriesResult) -> None:
    from forecast import io
    from forecast import workflows as wf

    s = task.settings
    # a fallback model gets the geometry but not the primary model's own parameters
    spec = wf.ModelSpec(name, horizon=horizon, lookback=s.lookback, epochs=s.epochs,
                        hidden=s.hidden, seed=s.seed, levels=s.levels,
                        params=dict(s.params) if name == s.model else {})
    data = wf.DataSpec(task.uid)
    bt = None
    t0 = time.perf_counter()
    if s.folds:
        bt = wf.backtest(data, [spec], wf.BacktestSpec(
            horizon=horizon, folds=s.folds, step=horizon, refit_every=s.folds,
            baselines=("naive",), levels=s.levels), dataset=ds)
        res.backtest = _metrics(bt.result, name)
    res.seconds["backtest"] = time.perf_counter() - t0
    losses: list = []
    model = wf.build_model(spec, horizon, wf.epoch_recorder(name, None, losses))
    t0 = time.perf_counter()
    model.fit(ds)
    res.seconds["fit"] = time.perf_counter() - t0
    if "callback" in model.get_params():
        model.set_params(callback=None)
    t0 = time.perf_counter()
    res.forecast = model.predict()
    res.seconds["predict"] = time.perf_counter() - t0
    res.model = name
    extra = {"fit_seconds": round(res.seconds["fit"], 3),
             "load_options": s.data_spec(task.source).options(),
             "data_source": task.source, "loss_history": losses,
             "batch_as_of": task.run_as_of}
    res.model_bytes = io.dump_model(model, ds, name=name,
                                    backtest=wf.backtest_metrics(bt.result if bt else None, name),
                                    extra=extra)
    res.model_is_new = True
    if task.reports:
        t0 = time.perf_counter()
        from forecast import report

        run = wf.FitRun(name, model, ds, data, spec, res.seconds["fit"], losses,
                        bt.result if bt else None)
        content = report.ReportContent.from_runs(
            f"{task.uid}: {ds.target[0]}, {horizon}-step forecast ({name})", ds,
            backtest=bt, fits=[run])
        res.report_html = report.render(content, plotlyjs_src="../../plotly.min.js")
        res.seconds["report"] = time.perf_counter() - t0


def _reuse(task: SeriesTask, ds, horizon: int, mf, res: SeriesResult) -> None:
    t0 = time.perf_counter()
    res.forecast = mf.model.predict(ds, horizon=horizon)
    res.seconds["predict"] = time.perf_counter() - t0
    res.model = mf.name
    res.model_bytes = task.saved_model
    res.model_is_new = False
    res.backtest = _manifest_metrics(mf.manifest.get("backtest"))
    if task.reports:
        t0 = time.perf_counter()
        from forecast import report

        content = report.ReportContent.from_model_file(mf, ds)
        content.title = f"{task.uid}: {ds.target[0]}, {horizon}-step forecast ({mf.name}, reused)"
        res.report_html = report.render(content, plotlyjs_src="../../plotly.min.js")
        res.seconds["report"] = time.perf_counter() - t0


_KEEP = ("mae", "rmse", "mase", "smape", "skill_mae", "skill_rmse", "fit_seconds")


def _clean(row: dict | None) -> dict[str, Any] | None:
    if not row:
        return None
    out = {}
    for k, v in row.items():
        if k in _KEEP or str(k).startswith(("coverage_", "cover_z_")):
            if hasattr(v, "item"):
                v = v.item()
            out[str(k)] = None if isinstance(v, float) and not math.isfinite(v) else v
    return out


def _metrics(result, name: str) -> dict[str, Any] | None:
    from forecast.workflows import backtest_metrics

    return _manifest_metrics(backtest_metrics(result, name))


def _manifest_metrics(m: dict | None) -> dict[str, Any] | None:
    if not m:
        return None
    return {"model": _clean(m.get("model")), "naive": _clean(m.get("naive")),
            "folds": (m.get("config") or {}).get("folds")}


def _spark(ds, forecast, levels) -> dict[str, Any]:
    import numpy as np

    tail = ds.frame.iloc[-SPARK_POINTS:]
    y = tail[ds.target[0]].to_numpy(np.float64)
    out = {"history": {"ds": [_iso(t) for t in tail[ds.time_col]],
                       "y": [None if not math.isfinite(v) else float(v) for v in y]},
           "forecast": {"ds": [_iso(t) for t in forecast["ds"]],
                        "yhat": [float(v) for v in forecast["yhat"]],
                        "lower": None, "upper": None, "level": None}}
    from forecast.models.intervals import interval_columns

    for lv in sorted(levels):
        lo, hi = interval_columns(lv)
        if lo in forecast and hi in forecast:
            out["forecast"].update(lower=[float(v) for v in forecast[lo]],
                                   upper=[float(v) for v in forecast[hi]], level=lv)
            break
    return out
