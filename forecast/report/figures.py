"""The plotly figures of a report page, each from a `ReportContent`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecast.models.intervals import interval_columns
from forecast.report.content import BASELINES, COLORS, ReportContent, thin_history

__all__ = ["forecast_figure", "last_fold_figure", "step_error_figure", "loss_figure",
           "residual_figure", "figure_html", "style_layout", "color_of"]


# ---- figures ---------------------------------------------------------------------------
def color_of(i: int) -> str:
    return COLORS[i % len(COLORS)]


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[k:k + 2], 16) for k in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def style_layout(fig, title: str, y_title: str = "", height: int = 420) -> None:
    # the "plotly_white" template is added when the figure is serialised (figure_html):
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
    hist = thin_history(content.history)
    fig.add_trace(go.Scatter(x=hist["ds"], y=hist["y"], mode="lines", name="history",
                             line=dict(color="#333", width=1.2)))
    for i, view in enumerate(m for m in content.models if m.forecast is not None):
        f = view.forecast
        first = f["unique_id"].iloc[0]
        f = f[f["unique_id"] == first]
        color = color_of(i)
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
    style_layout(fig, "History and forecasts (shaded: prediction intervals; zoom out for the "
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
        color = color_of(i)
        show = name not in BASELINES or name == "naive"
        lo, hi = interval_columns(80)
        if lo in g:
            _fan(fig, g["ds"], g[lo], g[hi], color, name, 0.15, show)
        fig.add_trace(go.Scatter(x=g["ds"], y=g["yhat"], mode="lines", name=name,
                                 legendgroup=name, visible=True if show else "legendonly",
                                 line=dict(color=color, width=2,
                                           dash="dash" if name in BASELINES else "solid")))
    fig.add_vline(x=cut, line=dict(color="#999", dash="dot"))
    style_layout(fig, f"Last backtest fold (cut-off {cut.date()}), 80% intervals", content.target)
    return fig


def step_error_figure(content: ReportContent):
    import plotly.graph_objects as go

    steps = content.backtest.by_step
    fig = go.Figure()
    for i, (name, g) in enumerate(steps.groupby("model", sort=False)):
        fig.add_trace(go.Scatter(x=g["step"], y=g["mae"], mode="lines+markers", name=str(name),
                                 line=dict(color=color_of(i),
                                           dash="dash" if name in BASELINES else "solid")))
    style_layout(fig, "Backtest error by horizon step (MAE)", "MAE")
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
                                 line=dict(color=color_of(i))))
        if np.isfinite(arr[:, 1]).any():
            fig.add_trace(go.Scatter(x=ep, y=arr[:, 1], name=f"{name} validation",
                                     mode="lines+markers", line=dict(color=color_of(i), dash="dash")))
    style_layout(fig, "Training and validation loss (scaled units)", "loss")
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
        color = color_of(i)
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
    style_layout(fig, "Residual diagnostics (actual - forecast)", "", 420)
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


_TEMPLATE: dict | None = None


def figure_html(fig, div_id: str) -> str:
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
