"""Self-contained HTML reports (plotly) of fits and backtests.

A report page holds: the history with each model's forecast and its prediction-interval
fans against the baselines; the backtest error by horizon step; a metrics table with
skill against the naive forecast and interval coverage; training and validation loss
curves; residual diagnostics (histogram, error by step, autocorrelation); a data
summary (frequency, gaps filled, split dates); and a model card per model (parameters,
seed, versions, data fingerprint).

plotly.js is written once beside the page (``plotly.min.js`` in the report folder, so a
folder of reports shares one copy and each page stays small) or, with
``embed_plotlyjs=True``, embedded once in the page. Either way the page works offline.
Long histories are thinned for display (the most recent points are kept at full
resolution) so that a page stays well under 5 MB.

    >>> from forecast import report
    >>> content = report.ReportContent.from_runs("AAPL", dataset, backtest=run, fits=fits)  # doctest: +SKIP
    >>> report.write_report(content, "reports/aapl.html")                                   # doctest: +SKIP
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from forecast import __version__
from forecast.io import atomic_write
from forecast.models.intervals import interval_columns

__all__ = ["ModelView", "ReportContent", "write_report", "write_index", "render",
           "summary_from_forecasts", "skill_verdict", "PLOTLY_JS", "MAX_POINTS"]

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
                from forecast.workflows import recent_residuals

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
            from forecast.workflows import recent_residuals

            view.residuals = recent_residuals(mf.model, dataset)
        content.models.append(view)
        bt = manifest.get("backtest")
        if bt and bt.get("by_step"):
            steps = pd.DataFrame(bt["by_step"])
            rows = [r for r in (bt.get("model"), bt.get("naive")) if r]
            content.backtest = _Tables(None, steps, pd.DataFrame(rows), tuple(
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
class _Tables:
    forecasts: pd.DataFrame | None
    by_step: pd.DataFrame
    summary: pd.DataFrame
    levels: tuple = ()


def summary_from_forecasts(forecasts: pd.DataFrame) -> _Tables:
    """Error by step and a summary (MAE, RMSE, skill vs naive, coverage) from the
    per-forecast rows of a backtest (columns model, step, y, yhat, interval bounds), by
    `forecast.backtest.summary_tables` (every figure from `forecast.metrics`)."""
    from forecast.backtest import summary_tables

    steps, summary = summary_tables(forecasts)
    levels = sorted({float(c.rsplit("_", 1)[1].replace("_", ".")) for c in forecasts.columns
                     if c.startswith("yhat_lower_")})
    return _Tables(forecasts, steps, summary, tuple(levels))


# ---- content helpers -------------------------------------------------------------------
def _history(dataset) -> pd.DataFrame:
    b = dataset.bounds
    frame = dataset.frame.iloc[b[0]:b[1]]
    return pd.DataFrame({"ds": pd.DatetimeIndex(frame[dataset.time_col]),
                         "y": frame[dataset.target[0]].to_numpy(np.float64)})


def _thin(frame: pd.DataFrame, max_points: int = MAX_POINTS, recent: int = RECENT) -> pd.DataFrame:
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


# ---- figures ---------------------------------------------------------------------------
def _color(i: int) -> str:
    return COLORS[i % len(COLORS)]


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[k:k + 2], 16) for k in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _layout(fig, title: str, y_title: str = "", height: int = 420) -> None:
    # the "plotly_white" template is added when the figure is serialised (_figure_html):
    # setting it here would validate and deep-copy it for every figure (~12 ms each)
    fig.update_layout(title=dict(text=title, y=0.98, yanchor="top"), height=height,
                      margin=dict(l=60, r=20, t=80, b=40),
                      yaxis_title=y_title,
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0))


def _fan(fig, ds, lo, hi, color, name, alpha, show):
    import plotly.graph_objects as go

    x = list(ds) + list(ds)[::-1]
    y = np.concatenate([np.asarray(hi, float), np.asarray(lo, float)[::-1]])
    fig.add_trace(go.Scatter(x=x, y=y, fill="toself", mode="lines", fillcolor=_rgba(color, alpha),
                             line=dict(width=0), hoverinfo="skip", legendgroup=name,
                             showlegend=False, name=f"{name} interval",
                             visible=True if show else "legendonly"))


def forecast_figure(content: ReportContent):
    """History (thinned) with each model's forecast and its interval fans."""
    import plotly.graph_objects as go

    fig = go.Figure()
    hist = _thin(content.history)
    fig.add_trace(go.Scatter(x=hist["ds"], y=hist["y"], mode="lines", name="history",
                             line=dict(color="#333", width=1.2)))
    for i, view in enumerate(m for m in content.models if m.forecast is not None):
        f = view.forecast
        first = f["unique_id"].iloc[0]
        f = f[f["unique_id"] == first]
        color = _color(i)
        show = not view.baseline or view.name == "naive"
        levels = sorted({c.split("_", 2)[2] for c in f.columns if c.startswith("yhat_lower_")},
                        key=lambda s: -float(s.replace("_", ".")))
        for j, lv in enumerate(levels):
            _fan(fig, f["ds"], f[f"yhat_lower_{lv}"], f[f"yhat_upper_{lv}"], color, view.name,
                 0.12 + 0.1 * j, show)
        fig.add_trace(go.Scatter(x=f["ds"], y=f["yhat"], mode="lines", name=view.name,
                                 legendgroup=view.name, visible=True if show else "legendonly",
                                 line=dict(color=color, width=2,
                                           dash="dash" if view.baseline else "solid")))
    if len(content.history):
        horizon = max([len(m.forecast) for m in content.models if m.forecast is not None] + [1])
        recent = content.history.iloc[max(0, len(content.history) - max(30, 8 * horizon)):]
        shown = [m.forecast for m in content.models if m.forecast is not None
                 and (not m.baseline or m.name == "naive")]
        end = max([recent["ds"].iloc[-1]] + [f["ds"].max() for f in shown])
        fig.update_xaxes(range=[recent["ds"].iloc[0], end])
        values = [recent["y"].to_numpy(float)]
        for f in shown:
            values += [f[c].to_numpy(float) for c in f.columns if c.startswith("yhat")]
        v = np.concatenate(values)
        v = v[np.isfinite(v)]
        if v.size:
            pad = 0.05 * (v.max() - v.min() or 1.0)
            fig.update_yaxes(range=[v.min() - pad, v.max() + pad])
    _layout(fig, "History and forecasts (shaded: prediction intervals; zoom out for the "
                 "full history)", content.target, 460)
    return fig


def last_fold_figure(content: ReportContent):
    """The last backtest fold: each model's forecast and intervals against the truth."""
    import plotly.graph_objects as go

    fc = content.backtest.forecasts
    first = fc["unique_id"].iloc[0]
    fc = fc[(fc["unique_id"] == first) & (fc["fold"] == fc["fold"].max())]
    fig = go.Figure()
    cut = pd.Timestamp(fc["cutoff"].iloc[0])
    hist = content.history
    h = hist[hist["ds"] <= fc["ds"].max()].tail(len(fc["step"].unique()) * 6 + 1)
    fig.add_trace(go.Scatter(x=h["ds"], y=h["y"], mode="lines+markers", name="actual",
                             line=dict(color="#333", width=1.2), marker=dict(size=4)))
    for i, (name, g) in enumerate(fc.groupby("model", sort=False)):
        color = _color(i)
        show = name not in BASELINES or name == "naive"
        lo, hi = interval_columns(80)
        if lo in g:
            _fan(fig, g["ds"], g[lo], g[hi], color, name, 0.15, show)
        fig.add_trace(go.Scatter(x=g["ds"], y=g["yhat"], mode="lines", name=name,
                                 legendgroup=name, visible=True if show else "legendonly",
                                 line=dict(color=color, width=2,
                                           dash="dash" if name in BASELINES else "solid")))
    fig.add_vline(x=cut, line=dict(color="#999", dash="dot"))
    _layout(fig, f"Last backtest fold (cut-off {cut.date()}), 80% intervals", content.target)
    return fig


def step_error_figure(content: ReportContent):
    import plotly.graph_objects as go

    steps = content.backtest.by_step
    fig = go.Figure()
    for i, (name, g) in enumerate(steps.groupby("model", sort=False)):
        fig.add_trace(go.Scatter(x=g["step"], y=g["mae"], mode="lines+markers", name=str(name),
                                 line=dict(color=_color(i),
                                           dash="dash" if name in BASELINES else "solid")))
    _layout(fig, "Backtest error by horizon step (MAE)", "MAE")
    fig.update_xaxes(title="steps ahead", dtick=1 if steps["step"].max() <= 30 else None)
    return fig


def loss_figure(content: ReportContent):
    import plotly.graph_objects as go

    curves = {m.name: m.losses for m in content.models if m.losses}
    for name, folds in content.backtest_losses.items():
        if name not in curves and folds:
            curves[name] = folds[-1]
    if not curves:
        return None
    fig = go.Figure()
    for i, (name, curve) in enumerate(curves.items()):
        arr = np.array([[np.nan if v is None else v for v in row] for row in curve], float)
        ep = np.arange(1, len(arr) + 1)
        fig.add_trace(go.Scatter(x=ep, y=arr[:, 0], name=f"{name} train", mode="lines+markers",
                                 line=dict(color=_color(i))))
        if np.isfinite(arr[:, 1]).any():
            fig.add_trace(go.Scatter(x=ep, y=arr[:, 1], name=f"{name} validation",
                                     mode="lines+markers", line=dict(color=_color(i), dash="dash")))
    _layout(fig, "Training and validation loss (scaled units)", "loss")
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(type="log")
    return fig


def _residual_table(content: ReportContent) -> dict[str, pd.DataFrame]:
    out = {}
    fc = getattr(content.backtest, "forecasts", None) if content.backtest is not None else None
    if fc is not None:
        for name, g in fc.groupby("model", sort=False):
            out[str(name)] = pd.DataFrame({"ds": g["cutoff"], "step": g["step"],
                                           "residual": g["y"] - g["yhat"]})
    for m in content.models:
        if m.name not in out and m.residuals is not None and len(m.residuals):
            out[m.name] = m.residuals
    return out


def residual_figure(content: ReportContent):
    """Histogram of residuals, mean absolute residual over time, and the
    autocorrelation of the one-step residuals, per model."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    table = _residual_table(content)
    if not table:
        return None
    fig = make_subplots(rows=1, cols=3, subplot_titles=(
        "residual distribution", "residual by forecast origin (step 1)",
        "autocorrelation of step-1 residuals"))
    for i, (name, r) in enumerate(table.items()):
        color = _color(i)
        show = name not in BASELINES or name == "naive"
        vis = True if show else "legendonly"
        res = r["residual"].to_numpy(float)
        res = res[np.isfinite(res)]
        fig.add_trace(go.Histogram(x=res, name=name, legendgroup=name, marker_color=color,
                                   opacity=0.55, nbinsx=40, visible=vis), 1, 1)
        one = r[r["step"] == 1].sort_values("ds")
        fig.add_trace(go.Scatter(x=one["ds"], y=one["residual"], mode="markers", name=name,
                                 legendgroup=name, showlegend=False, visible=vis,
                                 marker=dict(color=color, size=4)), 1, 2)
        acf = _acf(one["residual"].to_numpy(float), 20)
        fig.add_trace(go.Bar(x=np.arange(1, acf.size + 1), y=acf, name=name, legendgroup=name,
                             showlegend=False, marker_color=color, visible=vis), 1, 3)
    n = max(len(r[r["step"] == 1]) for r in table.values())
    if n > 3:
        band = 1.96 / np.sqrt(n)
        for y in (band, -band):
            fig.add_hline(y=y, line=dict(color="#999", dash="dot"), row=1, col=3)
    fig.update_layout(barmode="overlay")
    _layout(fig, "Residual diagnostics (actual - forecast)", "", 420)
    return fig


def _acf(x: np.ndarray, lags: int) -> np.ndarray:
    x = x[np.isfinite(x)]
    if x.size < 3:
        return np.zeros(0)
    x = x - x.mean()
    den = float(np.dot(x, x))
    if den == 0:
        return np.zeros(0)
    lags = min(lags, x.size - 1)
    return np.array([float(np.dot(x[:-k], x[k:])) / den for k in range(1, lags + 1)])


# ---- HTML ------------------------------------------------------------------------------
_CSS = """
body{font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1f2937;color:#fff;padding:18px 32px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#cbd5e1;font-size:13px}main{max-width:1200px;margin:0 auto;padding:16px 32px}
section{background:#fff;border:1px solid #e5e7eb;border-radius:8px;margin:16px 0;padding:12px 16px}
h2{font-size:17px;margin:4px 0 10px}table{border-collapse:collapse;font-size:13px}
th,td{padding:4px 10px;border-bottom:1px solid #eee;text-align:right}th{background:#f3f4f6}
td:first-child,th:first-child{text-align:left}.good{color:#15803d;font-weight:600}.bad{color:#b91c1c}
.kv td{text-align:left}details{margin:6px 0}summary{cursor:pointer;font-weight:600}
pre{background:#f8fafc;padding:8px;overflow-x:auto;font-size:12px}.note{color:#555;font-size:13px}
a{color:#1d4ed8}
"""


def skill_verdict(summary: pd.DataFrame, margin: float = 0.02) -> str | None:
    """One plain sentence on whether any model beats the naive forecast by more than
    `margin` (as skill against naive, from the summary's ``skill_mae``)."""
    if "skill_mae" not in summary or not (summary["model"] == "naive").any():
        return None
    others = summary[summary["model"] != "naive"]
    others = others[np.isfinite(others["skill_mae"].astype(float))]
    if others.empty:
        return None
    best = others.loc[others["skill_mae"].astype(float).idxmax()]
    sk = float(best["skill_mae"])
    if sk > margin:
        return (f"{best['model']} beats the naive forecast by {sk:.1%} (MAE) in this "
                "backtest.")
    return (f"No model beats the naive forecast by more than {margin:.0%} here (best: "
            f"{best['model']}, {sk:+.1%}): on this series a random walk is as good as these "
            "models get, so treat their forecasts as the last value plus noise.")


def _verdict(summary) -> str:
    text = skill_verdict(summary)
    return f'<p class="verdict">{html.escape(text)}</p>' if text else ""


def _metrics_table(content: ReportContent) -> str:
    s = content.backtest.summary
    levels = [c.split("_", 1)[1] for c in s.columns if c.startswith("coverage_")]
    cols = [("model", "model"), ("mae", "MAE"), ("rmse", "RMSE")]
    if "mase" in s:
        cols.append(("mase", "MASE"))
    cols += [("skill_mae", "skill vs naive (MAE)"), ("skill_rmse", "skill vs naive (RMSE)")]
    for lv in levels:
        cols += [(f"coverage_{lv}", f"coverage {lv}%"), (f"width_{lv}", f"width {lv}%")]
    for c, label in (("directional_accuracy", "direction hit rate"),
                     ("seconds", "seconds"), ("n_folds", "folds")):
        if c in s:
            cols.append((c, label))
    head = "".join(f"<th>{html.escape(label)}</th>" for c, label in cols if c in s)
    body = []
    for _, row in s.iterrows():
        cells = []
        for c, _label in cols:
            if c not in s:
                continue
            v = row[c]
            cls = ""
            if c.startswith("skill") and isinstance(v, float) and np.isfinite(v):
                cls = ' class="good"' if v > 0 else (' class="bad"' if v < 0 else "")
                text = f"{v:+.1%}"
            elif c.startswith("coverage"):
                text = f"{v:.0%}" if pd.notna(v) else ""
            elif isinstance(v, (float, np.floating)):
                text = f"{v:,.4g}" if pd.notna(v) else ""
            else:
                text = html.escape(str(v))
            cells.append(f"<td{cls}>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _kv_table(rows) -> str:
    return '<table class="kv">' + "".join(
        f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
        for k, v in rows) + "</table>"


def _cards(content: ReportContent) -> str:
    out = []
    for m in content.models:
        if not m.card:
            continue
        text = json.dumps(m.card, indent=2, default=str)
        out.append(f"<details><summary>{html.escape(m.name)}</summary>"
                   f"<pre>{html.escape(text)}</pre></details>")
    return "".join(out) or '<p class="note">No fitted model in this report.</p>'


_TEMPLATE: dict | None = None


def _figure_html(fig, div_id: str) -> str:
    """The figure as a div, styled with plotly's "plotly_white" template (its JSON is
    built once per process and attached unvalidated: the figure itself is validated)."""
    import plotly.io as pio

    global _TEMPLATE
    if _TEMPLATE is None:
        _TEMPLATE = pio.templates["plotly_white"].to_plotly_json()
    spec = fig.to_plotly_json()
    spec["layout"] = {**spec.get("layout", {}), "template": _TEMPLATE}
    return pio.to_html(spec, include_plotlyjs=False, full_html=False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True}, validate=False)


def _script_tag(embed: bool, src: str = PLOTLY_JS) -> str:
    if embed:
        from plotly.offline import get_plotlyjs

        return f'<script type="text/javascript">{get_plotlyjs()}</script>'
    return f'<script src="{html.escape(src)}" charset="utf-8"></script>'


def _page(title: str, subtitle: str, sections: list[str], embed: bool,
          plotlyjs_src: str = PLOTLY_JS) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{_CSS}</style>"
            f"{_script_tag(embed, plotlyjs_src)}"
            f"</head><body><header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p>"
            f"</header><main>{''.join(sections)}</main></body></html>\n")


def _section(title: str, body: str) -> str:
    return f"<section><h2>{html.escape(title)}</h2>{body}</section>"


def render(content: ReportContent, embed_plotlyjs: bool = False,
           plotlyjs_src: str = PLOTLY_JS) -> str:
    """The HTML page of `content`; without `embed_plotlyjs` it loads plotly.js from
    `plotlyjs_src` (a path relative to the page)."""
    sections = [_section("Notes", "".join(f'<p class="note">{html.escape(n)}</p>'
                                          for n in content.notes))] if content.notes else []
    figs = []
    if any(m.forecast is not None for m in content.models):
        figs.append(("Forecast", forecast_figure(content)))
    bt = content.backtest
    if bt is not None and getattr(bt, "forecasts", None) is not None:
        figs.append(("Last backtest fold", last_fold_figure(content)))
    if bt is not None:
        sections.append(_section("Backtest metrics", _metrics_table(content) +
                                 _verdict(bt.summary) + '<p class="note">Skill = 1 - error / error of the naive '
                                 "(last value) forecast: above zero beats a random walk. "
                                 "Coverage: share of actual values inside the interval (80% "
                                 "and 95% are the targets).</p>"))
        figs.append(("Error by horizon step", step_error_figure(content)))
    for title, maker in (("Loss curves", loss_figure), ("Residual diagnostics", residual_figure)):
        fig = maker(content)
        if fig is not None:
            figs.append((title, fig))
    plots = [_section(t, _figure_html(f, f"plot-{i}")) for i, (t, f) in enumerate(figs)]
    # the forecast first, then the metrics table, then the other plots
    body = sections[:1] if content.notes else []
    rest = sections[1:] if content.notes else sections
    body += plots[:2] + rest + plots[2:]
    body.append(_section("Data", _kv_table(content.data_summary)))
    body.append(_section("Model cards", _cards(content)))
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return _page(content.title, f"forecast {__version__} | generated {when} | "
                 f"{len(figs)} plots", body, embed_plotlyjs, plotlyjs_src)


def write_plotlyjs(folder) -> Path:
    """Write ``plotly.min.js`` into `folder` (unless an identical copy is there)."""
    _write_plotlyjs(Path(folder))
    return Path(folder) / PLOTLY_JS


def _write_plotlyjs(folder: Path) -> None:
    from plotly.offline import get_plotlyjs

    target = folder / PLOTLY_JS
    js = get_plotlyjs()
    if target.is_file() and target.stat().st_size == len(js.encode("utf-8")):
        return
    with atomic_write(target, "w") as fh:
        fh.write(js)


def write_report(content: ReportContent, path, embed_plotlyjs: bool = False) -> Path:
    """Write the page of `content` to `path` atomically (and ``plotly.min.js`` beside it
    unless `embed_plotlyjs`)."""
    path = Path(path)
    page = render(content, embed_plotlyjs)
    with atomic_write(path, "w") as fh:
        fh.write(page)
    if not embed_plotlyjs:
        _write_plotlyjs(path.parent)
    return path


def write_index(path, title: str, pages: Sequence[tuple[str, str, pd.DataFrame]],
                embed_plotlyjs: bool = False) -> Path:
    """An index page linking report pages, with a skill-against-naive chart:
    `pages` holds (name, relative link, summary table) triples."""
    import plotly.graph_objects as go

    fig = go.Figure()
    links, tables = [], []
    for i, (name, link, summary) in enumerate(pages):
        fig.add_trace(go.Bar(x=summary["model"], y=summary["skill_mae"], name=name,
                             marker_color=_color(i)))
        links.append(f'<li><a href="{html.escape(link)}">{html.escape(name)}</a></li>')
        view = ReportContent(name, pd.DataFrame(), "", backtest=_Tables(None, None, summary))
        tables.append(f"<h3>{html.escape(name)}</h3>{_metrics_table(view)}")
    _layout(fig, "Skill against the naive forecast (1 - MAE / MAE naive; above 0 is better)",
            "skill")
    fig.update_layout(barmode="group", yaxis_tickformat=".0%")
    sections = [_section("Reports", f"<ul>{''.join(links)}</ul>"),
                _section("Skill", _figure_html(fig, "plot-skill")),
                _section("Backtest metrics", "".join(tables))]
    path = Path(path)
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    with atomic_write(path, "w") as fh:
        fh.write(_page(title, f"forecast {__version__} | generated {when}", sections,
                       embed_plotlyjs))
    if not embed_plotlyjs:
        _write_plotlyjs(path.parent)
    return path
