"""What a report page shows (`ReportContent`), built from runs, model files or backtest
tables; no plotting and no HTML here."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from forecast import __version__

__all__ = ["ModelView", "ReportContent", "Tables", "summary_from_forecasts", "thin_history",
           "PLOTLY_JS", "MAX_POINTS", "RECENT", "BASELINES", "COLORS"]

PLOTLY_JS = "plotly.min.js"
MAX_POINTS = 2500  # history points drawn per series
RECENT = 750  # most recent points always drawn at full resolution
BASELINES = ("naive", "seasonal_naive", "drift", "mean")
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
          "#17becf", "#bcbd22", "#7f7f7f"]


@dataclass
class ModelView:
    """What a report shows of one model."""

    name: str
    forecast: pd.DataFrame | None = None  # unique_id, ds, yhat, interval columns
    losses: list = field(default_factory=list)  # [[train, val], ...] of the final fit
    card: dict[str, Any] = field(default_factory=dict)
    residuals: pd.DataFrame | None = None  # ds, step, residual (when no backtest)

    @property
    def baseline(self) -> bool:
        return self.name in BASELINES


@dataclass
class ReportContent:
    """Everything a report page shows; build it with a ``from_*`` constructor."""

    title: str
    history: pd.DataFrame  # ds, y (one series)
    target: str
    models: list[ModelView] = field(default_factory=list)
    backtest: Any = None  # BacktestResult-like: forecasts, by_step, summary tables
    backtest_losses: dict[str, list] = field(default_factory=dict)
    data_summary: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    # ---- constructors ------------------------------------------------------------------
    @classmethod
    def from_runs(cls, title: str, dataset, backtest=None, fits: Sequence = ()) -> "ReportContent":
        """From a `workflows.BacktestRun` and/or `workflows.FitRun` objects."""
        from forecast import io

        content = cls(title, _history(dataset), dataset.target[0])
        fp = io.fingerprint(dataset)
        for run in fits:
            view = ModelView(run.name, run.model.predict(), run.losses,
                             _card(run.name, run.model, fp, run.seconds))
            if backtest is None and dataset.n_series == 1:
                from forecast.diagnostics import recent_residuals

                view.residuals = recent_residuals(run.model, dataset)
            content.models.append(view)
        if backtest is not None:
            content.backtest = backtest.result
            content.backtest_losses = backtest.losses
            if not fits:
                for name in backtest.result.summary["model"]:
                    content.models.append(ModelView(str(name)))
        content.data_summary = _data_summary(dataset, fits, content.backtest)
        if dataset.n_series > 1:
            content.notes.append(f"The data holds {dataset.n_series} series; the plots show "
                                 f"{dataset.ids[0]!r}, the metrics cover all of them.")
        return content

    @classmethod
    def from_model_file(cls, mf, dataset=None) -> "ReportContent":
        """From a loaded model file (`forecast.io.ModelFile`), with its training data
        (or newer data) for the history, when available."""
        manifest = mf.manifest
        name = mf.name
        extra = manifest.get("extra") or {}
        title = f"{name}: {Path(str(mf.path)).name}"
        if dataset is not None:
            content = cls(title, _history(dataset), dataset.target[0])
            forecast = mf.model.predict(dataset)
        else:
            hist = np.asarray(mf.model.history_)[0, :, 0]
            ds = pd.DatetimeIndex([])
            content = cls(title, pd.DataFrame({"ds": ds, "y": []}), mf.model.target_)
            content.notes.append(f"Only the last {hist.size} training values are stored in the "
                                 "model file; pass --data to draw the full history.")
            forecast = mf.model.predict()
        card = _card(name, mf.model, manifest.get("data") or {}, extra.get("fit_seconds"))
        card["package version"] = manifest.get("package_version")
        card["versions"] = manifest.get("versions")
        card["created"] = manifest.get("created")
        view = ModelView(name, forecast, extra.get("loss_history") or [], card)
        if dataset is not None:
            from forecast.diagnostics import recent_residuals

            view.residuals = recent_residuals(mf.model, dataset)
        content.models.append(view)
        bt = manifest.get("backtest")
        if bt and bt.get("by_step"):
            steps = pd.DataFrame(bt["by_step"])
            rows = [r for r in (bt.get("model"), bt.get("naive")) if r]
            content.backtest = Tables(None, steps, pd.DataFrame(rows), tuple(
                bt["config"].get("levels", ())))
        if dataset is not None:
            content.data_summary = _data_summary(dataset, [], None)
        else:
            fp = manifest.get("data") or {}
            content.data_summary = [(k, _fmt(fp.get(k))) for k in
                                    ("source", "target", "frequency_name", "rows",
                                     "last_timestamp", "points_filled")]
        return content

    @classmethod
    def from_backtest_table(cls, forecasts: pd.DataFrame, dataset, title: str) -> "ReportContent":
        """From the per-forecast table that `forecast backtest -o` writes."""
        content = cls(title, _history(dataset), dataset.target[0])
        content.backtest = summary_from_forecasts(forecasts)
        for name in content.backtest.summary["model"]:
            content.models.append(ModelView(str(name)))
        content.data_summary = _data_summary(dataset, [], content.backtest)
        return content


@dataclass
class Tables:
    forecasts: pd.DataFrame | None
    by_step: pd.DataFrame
    summary: pd.DataFrame
    levels: tuple = ()


def summary_from_forecasts(forecasts: pd.DataFrame) -> Tables:
    """Error by step and a summary (MAE, RMSE, skill vs naive, coverage) from the
    per-forecast rows of a backtest (columns model, step, y, yhat, interval bounds), by
    `forecast.backtest.summary_tables` (every figure from `forecast.metrics`)."""
    from forecast.backtest import summary_tables

    steps, summary = summary_tables(forecasts)
    levels = sorted({float(c.rsplit("_", 1)[1].replace("_", ".")) for c in forecasts.columns
                     if c.startswith("yhat_lower_")})
    return Tables(forecasts, steps, summary, tuple(levels))


# ---- content helpers -------------------------------------------------------------------
def _history(dataset) -> pd.DataFrame:
    b = dataset.bounds
    frame = dataset.frame.iloc[b[0]:b[1]]
    return pd.DataFrame({"ds": pd.DatetimeIndex(frame[dataset.time_col]),
                         "y": frame[dataset.target[0]].to_numpy(np.float64)})


def thin_history(frame: pd.DataFrame, max_points: int = MAX_POINTS, recent: int = RECENT) -> pd.DataFrame:
    n = len(frame)
    if n <= max_points:
        return frame
    old = frame.iloc[: n - recent]
    stride = int(np.ceil(len(old) / (max_points - recent)))
    return pd.concat([old.iloc[::stride], frame.iloc[n - recent:]])


def _card(name, model, fingerprint: dict, seconds) -> dict[str, Any]:
    params = {k: v for k, v in model.get_params().items() if k != "callback"}
    card = {"model": name, "class": type(model).__name__, "parameters": params,
            "seed": params.get("random_state"), "lookback": getattr(model, "lookback_", None),
            "horizon": getattr(model, "horizon_", None),
            "interval levels": list(getattr(model, "levels_", ()) or ()),
            "data fingerprint": {k: fingerprint.get(k) for k in
                                 ("source", "columns", "frequency", "rows", "last_timestamp",
                                  "content_sha256") if k in fingerprint}}
    for attr, label in (("n_epochs_", "epochs run"), ("best_epoch_", "best epoch")):
        if getattr(model, attr, None) is not None:
            card[label] = getattr(model, attr)
    start = getattr(model, "linear_start_", None)
    if start:
        card["linear start"] = {k: v for k, v in start.items() if k != "note"}
        if start.get("note"):
            card["random walk test"] = start["note"]
    sel = getattr(model, "selection_", None)
    if sel:
        card["chosen model"] = sel.get("chosen")
        card["why"] = sel.get("reason")
        card["inner-backtest scores"] = sel.get("scores")
    if seconds is not None:
        card["fit seconds"] = round(float(seconds), 2)
    card["forecast version"] = __version__
    return card


def _data_summary(dataset, fits, backtest) -> list[tuple[str, str]]:
    rep = dataset.report
    idx = dataset.index
    rows = [("source", rep.source), ("target", ", ".join(dataset.target)),
            ("frequency", f"{dataset.freq.name} ({dataset.freq.alias})"),
            ("rows", f"{len(dataset):,}"), ("series", str(dataset.n_series)),
            ("first timestamp", str(idx.min())), ("last timestamp", str(idx.max())),
            ("gap policy", rep.gap_policy),
            ("missing timestamps", str(rep.missing_timestamps)),
            ("points filled", str(rep.points_filled))]
    if rep.covariates:
        rows.append(("covariates", ", ".join(rep.covariates)))
    for run in fits:
        frac = run.model.get_params().get("validation_fraction")
        if frac:
            n = len(dataset.series(dataset.ids[0]).frame)
            cut = dataset.index[int(n * (1 - frac))]
            rows.append((f"{run.name}: train / validation split", f"validation from {cut}"))
            break
    if backtest is not None and getattr(backtest, "forecasts", None) is not None:
        cuts = pd.DatetimeIndex(pd.unique(backtest.forecasts["cutoff"]))
        if len(cuts):
            rows.append(("backtest cut-offs", f"{len(cuts)}: {cuts.min()} .. {cuts.max()}"))
    rows += [("note", n) for n in rep.notes[:8]]
    return rows


def _fmt(v) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k}: {val}" for k, val in v.items())
    return "" if v is None else str(v)
