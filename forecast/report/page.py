"""The HTML of a report page (and the index page of several), written atomically."""

from __future__ import annotations

import html
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from forecast import __version__
from forecast.files import atomic_write
from forecast.report.content import PLOTLY_JS, ReportContent, Tables
from forecast.report.figures import (color_of, figure_html, forecast_figure, last_fold_figure,
                                     loss_figure, residual_figure, step_error_figure,
                                     style_layout)

__all__ = ["STYLESHEET", "render", "write_report", "write_index", "write_plotlyjs",
           "skill_verdict", "naive_verdict", "baseline_verdict", "random_walk_sentence",
           "coverage_verdict"]

# ---- HTML ------------------------------------------------------------------------------
# the stylesheet of every page (the batch summary page extends it)
STYLESHEET = """
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


def _number(v) -> float:
    """`v` as a float; NaN for None and anything that is not a number (a summary read
    back from a model file has None where the table had NaN)."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _best_row(rows: pd.DataFrame, column: str):
    """The row of `rows` with the highest finite `column`, or None when there is none."""
    values = rows[column].map(_number)
    ok = np.isfinite(values.to_numpy(np.float64))
    return rows.loc[values[ok].idxmax()] if ok.any() else None


def skill_verdict(summary: pd.DataFrame, margin: float = 0.02, z_min: float = 2.0) -> str | None:
    """`naive_verdict`, then how the best of the other models compares with the best
    baseline (`baseline_verdict`) when that is not naive: on a seasonal series beating
    naive says little."""
    parts = [t for t in (naive_verdict(summary, margin, z_min),
                         baseline_verdict(summary, z_min)) if t]
    return " ".join(parts) or None


def baseline_verdict(summary: pd.DataFrame, z_min: float = 2.0) -> str | None:
    """How the best model that is not a baseline compares with the best baseline by MAE
    (``best_baseline``, ``skill_vs_baseline`` and its paired z ``skill_vs_baseline_z``
    in the summary), or None when that baseline is naive (`naive_verdict` says it) or a
    column is missing."""
    from forecast.backtest import BASELINE_NAMES

    if "skill_vs_baseline" not in summary or "best_baseline" not in summary:
        return None
    ref = summary["best_baseline"].iloc[0]
    if not isinstance(ref, str) or ref == "naive":
        return None
    best = _best_row(summary[~summary["model"].isin(BASELINE_NAMES)], "skill_vs_baseline")
    if best is None:
        return None
    sk = _number(best["skill_vs_baseline"])
    z = _number(best.get("skill_vs_baseline_z"))
    name = ref.replace("_", " ")
    if sk < 0:
        how = (f"'s MAE is {1 - sk:.1f} times that of {name}" if sk < -0.5 else
               f" is {-sk:.1%} worse (MAE) than {name}")
        return (f"{best['model']}{how}, the best baseline here: on this series {name} is "
                "the forecast to use.")
    zs = "" if not np.isfinite(z) else (
        f" (z = {z:.1f})" if z >= z_min else
        f", within the noise of the folds (z = {z:.1f}, below {z_min:g})")
    return f"Against {name}, the best baseline here, {best['model']} is {sk:.1%} better{zs}."


def naive_verdict(summary: pd.DataFrame, margin: float = 0.02, z_min: float = 2.0) -> str | None:
    """One plain sentence on whether any model beats the naive forecast by more than
    `margin` (as skill against naive, from the summary's ``skill_mae``), whether the gain
    stands out of the noise of the folds (``skill_z``, the paired z of the per-fold MAEs,
    at least `z_min`), and whether the drift forecast (the average trend alone) does
    about as well, in which case the gain is the trend's."""
    if "skill_mae" not in summary or not (summary["model"] == "naive").any():
        return None
    best = _best_row(summary[summary["model"] != "naive"], "skill_mae")
    if best is None:
        return None
    sk = float(best["skill_mae"])
    z = _number(best.get("skill_z"))
    folds = int(_number(best.get("n_folds"))) if np.isfinite(_number(best.get("n_folds"))) \
        else None
    over = f"over these {folds} folds" if folds else "in this backtest"
    drift = summary.loc[summary["model"] == "drift", "skill_mae"].astype(float)
    dsk = float(drift.iloc[0]) if len(drift) else np.nan
    if sk > margin and np.isfinite(dsk) and dsk > margin and dsk >= sk - margin:
        lead = (f"{best['model']} beats the naive forecast by {sk:.1%} (MAE), but drift "
                f"alone does so by {dsk:.1%}" if best["model"] != "drift" else
                f"drift beats the naive forecast by {sk:.1%} (MAE)")
        return (f"{lead}: the gain is the series' average trend over this backtest, "
                "not a pattern a model found, and a trend can turn.")
    if sk > margin and np.isfinite(z) and z < z_min:
        return (f"{best['model']} beats the naive forecast by {sk:.1%} (MAE) {over}, but "
                f"that is within the noise of their per-fold errors (z = {z:.1f}, below "
                f"{z_min:g}): it may be luck; backtest more folds before trusting it.")
    if sk > margin:
        zs = f" (z = {z:.1f} over the per-fold errors)" if np.isfinite(z) else ""
        return f"{best['model']} beats the naive forecast by {sk:.1%} (MAE) {over}{zs}."
    return (f"No model beats the naive forecast by more than {margin:.0%} here (best: "
            f"{best['model']}, {sk:+.1%}): on this series a random walk is as good as these "
            "models get, so treat their forecasts as the last value plus noise.")


def coverage_verdict(summary: pd.DataFrame, z_max: float | None = None) -> str | None:
    """One plain sentence on whether each model's intervals covered their level within
    the chance of these folds (the summary's ``cover_z_<level>``, `forecast.metrics.
    coverage_z`): the models whose coverage lies more than `z_max` standard errors off
    are named, too narrow or too wide; otherwise every one passes. By default `z_max` is
    the two-sided 95 % point of Student's t over the folds (2.02 for 40, 2.26 for 10,
    4.30 for 3: a standard error from a few folds is itself uncertain), and 2 when the
    number of folds is unknown. None without the columns (a backtest without folds or
    intervals)."""
    cols = sorted((c for c in summary.columns if c.startswith("cover_z_")),
                  key=lambda c: float(c[len("cover_z_"):]))
    if not cols:
        return None
    folds = _number(summary["n_folds"].max()) if "n_folds" in summary else float("nan")
    over = f"over these {int(folds)} folds" if np.isfinite(folds) else "in this backtest"
    if z_max is None:
        from forecast.metrics import coverage_bar

        z_max = coverage_bar(folds)
    off, judged = [], 0
    for _, row in summary.iterrows():
        parts = []
        for c in cols:
            lv = c[len("cover_z_"):]
            z, cov = _number(row.get(c)), _number(row.get(f"coverage_{lv}"))
            if not (np.isfinite(z) and np.isfinite(cov)):
                continue
            judged += 1
            if abs(z) > z_max:
                parts.append(f"{lv} % covered {cov:.0%} (too {'wide' if z > 0 else 'narrow'}, "
                             f"z = {z:+.2f})")
        if parts:
            off.append(f"{row['model']}'s " + " and ".join(parts))
    if not judged:
        return None
    levels = " and ".join(f"{c[len('cover_z_'):]} %" for c in cols)
    if not off:
        return (f"Every model's intervals covered their level within chance {over}: each "
                f"coverage lies within {z_max:.3g} standard errors of {levels} (the folds, not "
                "the steps, are the samples).")
    return (f"Intervals off their level by more than chance {over} (over {z_max:.3g} standard "
            f"errors): " + "; ".join(off) + ". The other intervals covered their level "
            "within chance.")


def random_walk_sentence(folds) -> str | None:
    """One plain sentence per model whose fits kept the random walk (the ``random_walk``
    column of a backtest's folds table: the recurrent models' linear-start test), or None."""
    if folds is None or "random_walk" not in getattr(folds, "columns", ()):
        return None
    parts = []
    for model, g in folds[folds["refit"].astype(bool)].groupby("model", sort=False):
        flags = [bool(v) for v in g["random_walk"] if v is not None and v == v]
        if flags and any(flags):
            parts.append(f"{model} forecast the last value in {sum(flags)} of {len(flags)} "
                         "fit(s): no linear start beat a random walk by more than noise, so no "
                         "network was trained from it (`forecast fit` says by how much).")
    return " ".join(parts) or None


def _verdict(summary, folds=None) -> str:
    out = ""
    for text in (skill_verdict(summary), coverage_verdict(summary), random_walk_sentence(folds)):
        if text:
            out += f'<p class="verdict">{html.escape(text)}</p>'
    return out


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




def _script_tag(embed: bool, src: str = PLOTLY_JS) -> str:
    if embed:
        from plotly.offline import get_plotlyjs

        return f'<script type="text/javascript">{get_plotlyjs()}</script>'
    return f'<script src="{html.escape(src)}" charset="utf-8"></script>'


def _page(title: str, subtitle: str, sections: list[str], embed: bool,
          plotlyjs_src: str = PLOTLY_JS) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{STYLESHEET}</style>"
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
                                 _verdict(bt.summary, getattr(bt, "folds", None)) +
                                 '<p class="note">Skill = 1 - error / error of the naive '
                                 "(last value) forecast: above zero beats a random walk. "
                                 "Coverage: share of actual values inside the interval (80% "
                                 "and 95% are the targets).</p>"))
        figs.append(("Error by horizon step", step_error_figure(content)))
    for title, maker in (("Loss curves", loss_figure), ("Residual diagnostics", residual_figure)):
        fig = maker(content)
        if fig is not None:
            figs.append((title, fig))
    plots = [_section(t, figure_html(f, f"plot-{i}")) for i, (t, f) in enumerate(figs)]
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
                             marker_color=color_of(i)))
        links.append(f'<li><a href="{html.escape(link)}">{html.escape(name)}</a></li>')
        view = ReportContent(name, pd.DataFrame(), "", backtest=Tables(None, None, summary))
        tables.append(f"<h3>{html.escape(name)}</h3>{_metrics_table(view)}")
    style_layout(fig, "Skill against the naive forecast (1 - MAE / MAE naive; above 0 is better)",
            "skill")
    fig.update_layout(barmode="group", yaxis_tickformat=".0%")
    sections = [_section("Reports", f"<ul>{''.join(links)}</ul>"),
                _section("Skill", figure_html(fig, "plot-skill")),
                _section("Backtest metrics", "".join(tables))]
    path = Path(path)
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    with atomic_write(path, "w") as fh:
        fh.write(_page(title, f"forecast {__version__} | generated {when}", sections,
                       embed_plotlyjs))
    if not embed_plotlyjs:
        _write_plotlyjs(path.parent)
    return path
