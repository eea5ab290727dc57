"""The HTML summary page of a batch run: one row per series.

Each row shows the series id, a status badge (ok / fallback / failed / pending), the model
that produced the forecast (and the one the configuration asked for, when they differ),
the action taken (fit / refit / reuse, with its reason as a tooltip), the backtest skill
against the naive forecast, interval coverage, MASE, seconds, an inline SVG sparkline
(recent history, forecast and its interval band), the error message of failed and
fallback series, and a link to the series' own report.

The page is self-contained and light: no plotly, no external resource, a few hundred
bytes of SVG per row, and a small inline script that sorts the table by a clicked column
header and filters it by status or series id. A Content-Security-Policy allows only the
page's own script and style (by hash), so the page cannot load anything from a network.
Every string from the manifest is escaped.

    >>> from forecast.batch import summary
    >>> summary.write_summary("runs/20261123T020000/index.html", manifest, sparks)  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from forecast import __version__
from forecast.files import atomic_write
from forecast.metrics import coverage_bar
from forecast.report import STYLESHEET as _REPORT_CSS

__all__ = ["render_summary", "sparkline", "write_summary"]

STATUSES = ("ok", "fallback", "failed", "pending")
_RANK = {"failed": 0, "fallback": 1, "pending": 2, "ok": 3}  # ascending sort: worst first
SPARK_W, SPARK_H, SPARK_PAD = 160, 36, 3
ERROR_SHOWN = 240  # characters of an error message shown in the table (all in the tooltip)
ERROR_TITLE = 2000

# forecast.report's stylesheet (fonts, header, sections, tables, good/bad colours), a
# wider page, and the table, badges and sparklines of this page.
_CSS = _REPORT_CSS + """
main{max-width:1440px}.kv td:first-child{color:#555;padding-right:18px}.note{margin:8px 0}
.ov{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
.tiles{display:flex;flex-wrap:wrap;gap:10px;flex:1 1 420px;align-content:flex-start}
.tile{border:1px solid #e5e7eb;border-radius:8px;padding:8px 14px;min-width:88px;background:#fff}
.tile b{display:block;font-size:22px;font-weight:600}.tile span{color:#555;font-size:12px}
.tile.ok b{color:#15803d}.tile.fallback b{color:#b45309}.tile.failed b{color:#b91c1c}
.tile.pending b{color:#4b5563}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;
background:#e5e7eb;color:#374151}
.badge.ok,.badge.finished{background:#dcfce7;color:#166534}
.badge.fallback,.badge.interrupted{background:#fef3c7;color:#92400e}
.badge.failed{background:#fee2e2;color:#991b1b}.badge.running{background:#dbeafe;color:#1e40af}
#filters{display:flex;flex-wrap:wrap;gap:6px;align-items:center;margin:4px 0 10px}
#filters button{font:inherit;font-size:13px;border:1px solid #d1d5db;background:#fff;border-radius:14px;
padding:2px 12px;cursor:pointer;color:#374151}
#filters button[aria-pressed=true]{background:#1f2937;border-color:#1f2937;color:#fff}
#filters input{font:inherit;font-size:13px;border:1px solid #d1d5db;border-radius:6px;padding:3px 8px;
margin-left:8px;width:200px}#shown{color:#555;font-size:13px;margin-left:8px}
#runs{width:100%}#runs td{vertical-align:middle}#runs tbody tr:hover{background:#f9fafb}
#runs thead th{position:sticky;top:0;z-index:1;white-space:nowrap;border-bottom:1px solid #d1d5db}
#runs th[data-type]{cursor:pointer;user-select:none}#runs th[data-type]:hover{background:#e5e7eb}
#runs th[aria-sort=ascending]::after{content:" \\25B2";font-size:9px}
#runs th[aria-sort=descending]::after{content:" \\25BC";font-size:9px}
#runs .l{text-align:left}#runs .n{color:#9ca3af}#runs .id{font-weight:600;overflow-wrap:anywhere;max-width:220px}
.sub{display:block;color:#6b7280;font-size:11px;white-space:nowrap}#runs .nw{white-space:nowrap}
#runs tbody td{height:36px}.muted{color:#9ca3af}
.hint{text-decoration:underline dotted #9ca3af;cursor:help}
.err{text-align:left;max-width:340px;font-size:12px;color:#991b1b;word-break:break-word}
.err.fallback{color:#92400e}
.clamp{display:-webkit-box;-webkit-line-clamp:2;-webkit-box-orient:vertical;overflow:hidden}
.spark{display:block}.spark .h{fill:none;stroke:#333;stroke-width:1.2}
.spark .f{fill:none;stroke:#1f77b4;stroke-width:1.6}.spark .b{fill:rgba(31,119,180,0.2);stroke:none}
.spark .d{stroke:#bbb;stroke-width:1;stroke-dasharray:2 2}.spark circle{fill:#333}
"""

# Sorting by a clicked header (numbers by data-v, blanks last either way, ties in
# configuration order) and filtering by status and series id. No console output.
_JS = """
(function () {
  "use strict";
  var table = document.getElementById("runs");
  if (!table) { return; }
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var heads = table.tHead.rows[0].cells;
  var ids = rows.map(function (tr) { return tr.cells[1].textContent.toLowerCase(); });
  var coll = new Intl.Collator(undefined, {numeric: true, sensitivity: "base"});
  var sortCol = -1, sortDir = 1, status = "all", query = "";
  function key(tr, i, num) {
    var td = tr.cells[i];
    var v = td.getAttribute("data-v");
    if (v === null) { v = td.textContent.trim(); }
    if (v === "") { return null; }
    if (num) { var f = parseFloat(v); return isNaN(f) ? null : f; }
    return v;
  }
  function sortBy(i) {
    var num = heads[i].getAttribute("data-type") === "num";
    sortDir = sortCol === i ? -sortDir : 1;
    sortCol = i;
    var keyed = rows.map(function (tr, k) { return [key(tr, i, num), k, tr]; });
    keyed.sort(function (a, b) {
      if (a[0] === null || b[0] === null) {
        if (a[0] === b[0]) { return a[1] - b[1]; }
        return a[0] === null ? 1 : -1;
      }
      var c = num ? (a[0] < b[0] ? -1 : (a[0] > b[0] ? 1 : 0)) : coll.compare(a[0], b[0]);
      return c === 0 ? a[1] - b[1] : c * sortDir;
    });
    var frag = document.createDocumentFragment();
    keyed.forEach(function (x) { frag.appendChild(x[2]); });
    body.appendChild(frag);
    for (var j = 0; j < heads.length; j++) { heads[j].removeAttribute("aria-sort"); }
    heads[i].setAttribute("aria-sort", sortDir > 0 ? "ascending" : "descending");
  }
  function apply() {
    var n = 0;
    for (var k = 0; k < rows.length; k++) {
      var show = (status === "all" || rows[k].getAttribute("data-status") === status) &&
                 (query === "" || ids[k].indexOf(query) >= 0);
      rows[k].hidden = !show;
      if (show) { n++; }
    }
    document.getElementById("shown").textContent = n + " of " + rows.length + " series shown";
  }
  Array.prototype.forEach.call(heads, function (th, i) {
    if (!th.hasAttribute("data-type")) { return; }
    th.tabIndex = 0;
    th.addEventListener("click", function () { sortBy(i); });
    th.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(i); }
    });
  });
  var filters = document.getElementById("filters");
  var buttons = filters.querySelectorAll("button[data-status]");
  Array.prototype.forEach.call(buttons, function (b) {
    b.addEventListener("click", function () {
      status = b.getAttribute("data-status");
      Array.prototype.forEach.call(buttons, function (o) {
        o.setAttribute("aria-pressed", o === b ? "true" : "false");
      });
      apply();
    });
  });
  document.getElementById("q").addEventListener("input", function (e) {
    query = e.target.value.trim().toLowerCase();
    apply();
  });
  filters.hidden = false;
  apply();
})();
"""


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()


# Only this page's own style and script may run; nothing may be fetched.
_CSP = (f"default-src 'none'; style-src '{_sha256(_CSS)}'; script-src '{_sha256(_JS)}'; "
        "img-src data:; base-uri 'none'; form-action 'none'")

# (label, sort type or None, tooltip); "rank" sorts by number but is aligned left
_COLUMNS = [
    ("#", "num", "position in the configuration"),
    ("series", "text", None),
    ("status", "rank", "sorted worst first: failed, fallback, pending, ok"),
    ("model", "text", "the model that produced the forecast (and the one asked for)"),
    ("action", "text", "fit, refit or reuse a stored model (hover for the reason)"),
    ("skill", "num", "backtest skill against the naive forecast: 1 - MAE / MAE naive"),
    ("cov 80", "num", "backtest: share of actual values inside the 80% interval"),
    ("cov 95", "num", "backtest: share of actual values inside the 95% interval"),
    ("MASE", "num", "backtest mean absolute scaled error (below 1 beats in-sample naive)"),
    ("seconds", "num", "total seconds for the series (hover for the breakdown)"),
    ("forecast", None, "recent history (dark), forecast (blue), shaded prediction interval"),
    ("error", "text", None),
    ("report", None, None),
]


# ---- small formatters ------------------------------------------------------------------
def _esc(v: Any) -> str:
    return "" if v is None else html.escape(str(v))


def _num(v: Any) -> float | None:
    """A finite float, or None (None, NaN, inf, booleans and non-numbers)."""
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _dict(v: Any) -> dict:
    return v if isinstance(v, dict) else {}


def _when(v: Any) -> str:
    """An ISO timestamp shown as ``2026-11-23 02:00:00 UTC`` (or as given)."""
    if not isinstance(v, str) or not v:
        return "" if v is None else str(v)
    try:
        t = datetime.fromisoformat(v)
    except ValueError:
        return v
    text = t.strftime("%Y-%m-%d %H:%M:%S")
    if t.tzinfo is not None:
        off = t.utcoffset()
        text += " UTC" if not off else t.strftime(" %z")
    elif text.endswith(" 00:00:00"):
        text = text[:-9]
    return text


def _secs(v: float | None) -> str:
    if v is None:
        return ""
    if v < 10:
        return f"{v:.2f}"
    if v < 1000:
        return f"{v:.1f}"
    return f"{v:,.0f}"


def _duration(v: float | None) -> str:
    if v is None:
        return ""
    if v < 60:
        return f"{v:.1f} s"
    m, s = divmod(round(v), 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


def _href(path: Any) -> str | None:
    """A relative link, percent-encoded (so a ':' or '#' in a name cannot change its
    meaning) and escaped for an attribute; None when there is no path."""
    if not isinstance(path, str) or not path:
        return None
    return html.escape(quote(path.replace("\\", "/"), safe="/"))


def _cell(text: str = "", sort: Any = None, cls: str = "", title: str | None = None) -> str:
    attrs = f' class="{cls}"' if cls else ""
    if sort is not None:
        attrs += f' data-v="{sort}"'
    if title:
        attrs += f' title="{html.escape(title)}"'
    return f"<td{attrs}>{text}</td>"


# ---- sparkline -------------------------------------------------------------------------
def _finite(values: Any) -> list[tuple[int, float]]:
    if not isinstance(values, (list, tuple)):
        return []
    out = []
    for i, v in enumerate(values):
        f = _num(v)
        if f is not None:
            out.append((i, f))
    return out


def _path(points: list[tuple[float, float]]) -> str:
    return "M" + "L".join(f"{x:.1f},{y:.1f}" for x, y in points)


def sparkline(spark: dict | None) -> str:
    """An inline SVG of `spark` (``{"history": {"ds", "y"}, "forecast": {"ds", "yhat",
    "lower", "upper", "level"}}``): the history as a dark line, the forecast in blue from
    the last observed value, and the interval as a shaded band. Missing and non-finite
    values are skipped; a constant series is drawn flat. '' when there is nothing to draw."""
    if not isinstance(spark, dict):
        return ""
    hist, fc = _dict(spark.get("history")), _dict(spark.get("forecast"))
    hy = hist.get("y") if isinstance(hist.get("y"), (list, tuple)) else []
    h = _finite(hy)
    n_h = len(hy)
    f = [(n_h + i, v) for i, v in _finite(fc.get("yhat"))]
    lo, up = fc.get("lower"), fc.get("upper")
    band = []
    if isinstance(lo, (list, tuple)) and isinstance(up, (list, tuple)):
        for i, (a, b) in enumerate(zip(lo, up)):
            a, b = _num(a), _num(b)
            if a is not None and b is not None:
                band.append((n_h + i, min(a, b), max(a, b)))
    if not h and not f and not band:
        return ""
    n_f = max([len(v) for v in (fc.get("yhat"), lo, up) if isinstance(v, (list, tuple))]
              or [0])
    total = n_h + n_f
    values = [v for _, v in h] + [v for _, v in f] + [v for _, a, b in band for v in (a, b)]
    vmin, vmax = min(values), max(values)
    span = vmax - vmin
    inner_w, inner_h = SPARK_W - 2 * SPARK_PAD, SPARK_H - 2 * SPARK_PAD
    sx = inner_w / (total - 1) if total > 1 else 0.0
    flat = not (span > 0 and math.isfinite(span))
    sy = 0.0 if flat else inner_h / span
    x0 = SPARK_PAD if total > 1 else SPARK_W / 2

    def xy(i: int, v: float) -> tuple[float, float]:
        y = SPARK_H / 2 if flat else SPARK_H - SPARK_PAD - (v - vmin) * sy
        return x0 + i * sx, y

    parts = []
    last = h[-1] if h else None
    if band:
        start = [(last[0], last[1], last[1])] if last is not None else []
        pts = start + band
        ring = [xy(i, b) for i, _, b in pts] + [xy(i, a) for i, a, _ in reversed(pts)]
        parts.append(f'<path class="b" d="{_path(ring)}Z"/>')
    if h and (f or band):
        x = xy(h[-1][0], 0.0)[0]
        parts.append(f'<path class="d" d="M{x:.1f},0L{x:.1f},{SPARK_H}"/>')
    for cls, pts in (("h", h), ("f", ([last] if last is not None else []) + f)):
        if len(pts) > 1:
            parts.append(f'<path class="{cls}" d="{_path([xy(i, v) for i, v in pts])}"/>')
        elif len(pts) == 1 and (cls == "h" or not h):
            x, y = xy(*pts[0])
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="1.5"/>')
    level = _num(fc.get("level"))
    ds = fc.get("ds") if isinstance(fc.get("ds"), (list, tuple)) else []
    label = f"last {len(h)} values"
    if f:
        label += f", forecast of {len(f)} steps"
        if ds:
            label += f" to {_when(ds[-1])}"
    if band:
        label += f", shaded: {level:g}% interval" if level is not None else ", shaded: interval"
    label = html.escape(label)
    return (f'<svg class="spark" width="{SPARK_W}" height="{SPARK_H}" '
            f'viewBox="0 0 {SPARK_W} {SPARK_H}" role="img">'
            f"<title>{label}</title>{''.join(parts)}</svg>")


# ---- rows ------------------------------------------------------------------------------
def _model_cell(s: dict, status: str) -> str:
    model, asked = s.get("model"), s.get("requested_model")
    if model is None:
        return _cell(f'<span class="muted">{_esc(asked)}</span>', cls="l",
                     sort=_esc(asked) if asked is not None else None)
    text = _esc(model)
    if asked is not None and asked != model:
        why = "fallback for" if status == "fallback" else "asked for"
        text += f'<span class="sub">{why} {_esc(asked)}</span>'
    return _cell(text, cls="l", sort=_esc(model))


def _error_cell(s: dict, status: str) -> str:
    err = s.get("error")
    if err is None or err == "":
        return _cell(cls="err")
    err = str(err)
    shown = " ".join(err.split())
    if len(shown) > ERROR_SHOWN:
        shown = shown[:ERROR_SHOWN - 1] + "\u2026"
    title = err if len(err) <= ERROR_TITLE else err[:ERROR_TITLE - 1] + "\u2026"
    cls = "err fallback" if status == "fallback" else "err"
    return _cell(f'<span class="clamp">{html.escape(shown)}</span>', cls=cls, title=title)


def _row(pos: int, s: dict, spark: dict | None) -> str:
    status = str(s.get("status") or "")
    bt = _dict(s.get("backtest"))
    model_m, naive_m = _dict(bt.get("model")), _dict(bt.get("naive"))
    cells = [_cell(str(pos), cls="n"),
             _cell(_esc(s.get("id")), cls="l id"),
             _cell(f'<span class="badge {html.escape(status)}">{_esc(status)}</span>',
                   sort=_RANK.get(status, 4), cls="l"),
             _model_cell(s, status)]
    action, reason = s.get("action"), s.get("reason")
    if action is not None and reason:
        cells.append(_cell(f'<span class="hint">{_esc(action)}</span>', cls="l",
                           title=str(reason)))
    else:
        cells.append(_cell(_esc(action), cls="l"))
    skill = _num(model_m.get("skill_mae"))
    if skill is None:
        cells.append(_cell())
    else:
        cls = "good" if skill > 0 else ("bad" if skill < 0 else "")
        mae, nmae = _num(model_m.get("mae")), _num(naive_m.get("mae"))
        title = f"MAE {mae:,.4g} against {nmae:,.4g} (naive)" if (
            mae is not None and nmae is not None) else None
        cells.append(_cell(f"{skill:+.1%}", sort=repr(skill), cls=cls, title=title))
    for lv in ("80", "95"):
        v, z = _num(model_m.get(f"coverage_{lv}")), _num(model_m.get(f"cover_z_{lv}"))
        if v is None:
            cells.append(_cell())
            continue
        # the backtest's chance test (`forecast.metrics.coverage_z`): beyond its bar
        # (`coverage_bar` of the folds) the cell is marked and its title says which way
        off = z is not None and abs(z) > coverage_bar(bt.get("folds"))
        title = None if z is None else (
            f"z = {z:+.2f}: " + (f"too {'wide' if z > 0 else 'narrow'}, beyond chance"
                                 if off else "within chance of " + lv + " %"))
        cells.append(_cell(f"{v:.0%}", sort=repr(v), cls="bad" if off else "", title=title))
    mase = _num(model_m.get("mase"))
    cells.append(_cell() if mase is None else _cell(f"{mase:.2f}", sort=repr(mase)))
    secs = s.get("seconds")
    secs = secs if isinstance(secs, dict) else {"total": secs}
    total = _num(secs.get("total"))
    parts = [f"{k} {_secs(_num(v))} s" for k, v in secs.items()
             if k != "total" and _num(v) is not None]
    cells.append(_cell() if total is None else _cell(_secs(total), sort=repr(total),
                                                     title=", ".join(parts) or None))
    cells.append(_cell(sparkline(spark), cls="l"))
    cells.append(_error_cell(s, status))
    files = _dict(s.get("files"))
    links = []
    for key, label in (("report", "report"), ("forecast", "csv")):
        href = _href(files.get(key))
        if href:
            links.append(f'<a href="{href}">{label}</a>')
    cells.append(_cell(" ".join(links), cls="l nw"))
    return f'<tr data-status="{html.escape(status)}">{"".join(cells)}</tr>'


# ---- page ------------------------------------------------------------------------------
def _overview(manifest: dict, series: list[dict], counts: dict[str, int]) -> str:
    workers = manifest.get("workers")
    engine = _esc(manifest.get("engine"))
    if workers is not None:
        engine += f" ({_esc(workers)} worker{'' if workers == 1 else 's'})"
    state = manifest.get("state")
    as_of = _esc(_when(manifest.get("as_of")))
    if not as_of:  # no cut-off: each series up to its latest data, as read at run_as_of
        read = _esc(_when(manifest.get("run_as_of")))
        as_of = f'<span class="muted">latest data{" at " + read if read else ""}</span>'
    rows = [("run id", _esc(manifest.get("run_id"))),
            ("as of", as_of),
            ("state", f'<span class="badge {_esc(state)}">{_esc(state)}</span>'
             if state else ""),
            ("engine", engine),
            ("started", _esc(_when(manifest.get("started")))),
            ("finished", _esc(_when(manifest.get("finished")))),
            ("wall time", _esc(_duration(_num(manifest.get("seconds"))))),
            ("configuration", _esc(manifest.get("config_file")))]
    kv = '<table class="kv">' + "".join(f"<tr><td>{k}</td><td>{v}</td></tr>"
                                        for k, v in rows) + "</table>"
    skills = [_num(_dict(_dict(s.get("backtest")).get("model")).get("skill_mae"))
              for s in series]
    skills = [v for v in skills if v is not None]
    n_rows = sum(int(v) for v in (_num(s.get("rows")) for s in series) if v is not None)
    busy = sum(v for v in (_num(_dict(s.get("seconds")).get("total")) for s in series)
               if v is not None)
    tiles = [("series", f"{len(series):,}", "")]
    tiles += [(st, f"{counts.get(st, 0):,}", st) for st in STATUSES]
    tiles += [(st, f"{n:,}", "") for st, n in counts.items() if st not in STATUSES]
    tiles += [("beat naive", f"{sum(v > 0 for v in skills)} of {len(skills)}", ""),
              ("rows loaded", f"{n_rows:,}", ""),
              ("series seconds", _secs(busy), "")]
    tiles_html = "".join(f'<div class="tile{" " + cls if cls else ""}"><b>{_esc(value)}</b><span>{_esc(label)}'
                         f"</span></div>" for label, value, cls in tiles)
    return f'<div class="ov">{kv}<div class="tiles">{tiles_html}</div></div>'


def _head() -> str:
    out = []
    for label, kind, tip in _COLUMNS:
        attrs = f' data-type="{"num" if kind == "rank" else kind}"' if kind else ""
        if tip:
            attrs += f' title="{html.escape(tip)}"'
        if kind != "num":
            attrs += ' class="l"'
        out.append(f"<th{attrs}>{html.escape(label)}</th>")
    return "".join(out)


def _counts(manifest: dict, series: list[dict]) -> dict[str, int]:
    given = manifest.get("counts")
    if isinstance(given, dict) and given:
        return {str(k): int(_num(v) or 0) for k, v in given.items()}
    counts: dict[str, int] = {}
    for s in series:
        st = str(s.get("status") or "")
        counts[st] = counts.get(st, 0) + 1
    return counts


def _filters(counts: dict[str, int], n: int) -> str:
    """Filter buttons, with the counts of the rows they show; hidden until the script runs."""
    buttons = [("all", n)] + [(st, counts.get(st, 0)) for st in STATUSES]
    buttons += [(st, c) for st, c in counts.items() if st not in STATUSES and st]
    out = "".join(f'<button type="button" data-status="{_esc(st)}" aria-pressed='
                  f'"{"true" if st == "all" else "false"}">{_esc(st)} {c:,}</button>'
                  for st, c in buttons)
    return (f'<div id="filters" hidden>{out}<input id="q" type="search" '
            f'placeholder="filter by series id" aria-label="filter by series id">'
            f'<span id="shown"></span></div>')


def render_summary(manifest: dict, sparks: dict[str, dict] | None = None) -> str:
    """The HTML summary page of a batch run `manifest`, with a sparkline for each series
    id in `sparks` (see the module docstring)."""
    manifest = _dict(manifest)
    sparks = sparks if isinstance(sparks, dict) else {}
    series = [s for s in (manifest.get("series") or []) if isinstance(s, dict)]
    counts = _counts(manifest, series)
    head = _head()
    body = "".join(_row(i + 1, s, sparks.get(str(s.get("id"))) if sparks else None)
                   for i, s in enumerate(series))
    level_note = ("Skill: 1 - MAE / MAE of the naive (last value) forecast over the series' "
                  "backtest; above zero beats a random walk. Coverage: share of actual values "
                  "inside the 80% and 95% intervals in the backtest. Click a column header to "
                  "sort; blank cells (no backtest, metric not computed) sort last.")
    table = (f'<table id="runs"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
             if series else '<p class="note">This run has no series.</p>')
    run_id = manifest.get("run_id")
    title = f"Batch run {run_id}" if run_id is not None else "Batch run"
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    subtitle = f"forecast {__version__} | generated {when} | {len(series):,} series"
    if manifest.get("state") == "running":
        subtitle += " | still running: reload for progress"
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="icon" href="data:,"><title>{_esc(title)}</title>'
            f"<style>{_CSS}</style></head><body><header><h1>{_esc(title)}</h1>"
            f"<p>{_esc(subtitle)}</p></header><main>"
            f"<section><h2>Run</h2>{_overview(manifest, series, counts)}</section>"
            f"<section><h2>Series</h2>{_filters(_counts({}, series), len(series))}"
            f'<p class="note">{level_note}</p>{table}</section>'
            f"</main><script>{_JS}</script></body></html>\n")


def write_summary(path, manifest: dict, sparks: dict[str, dict] | None = None) -> Path:
    """Render and write atomically with forecast.files.atomic_write(path, "w")."""
    path = Path(path)
    page = render_summary(manifest, sparks)
    with atomic_write(path, "w") as fh:
        fh.write(page)
    return path
