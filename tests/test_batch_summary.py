"""The HTML summary page of a batch run (forecast.batch.summary): rendering, escaping,
links, blanks for missing metrics, sparkline geometry, speed, and the page in a real
headless browser (no console message, every row in the DOM, sorting and filtering work,
a screenshot kept in test-artifacts/batch-summary.png).

Without chromium the browser tests are skipped on a developer machine but fail in CI
(``CI=true``), as in test_report_browser.py."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import re
import time
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from forecast.batch import summary
from forecast.batch.summary import render_summary, sparkline, write_summary

from browser import chromium as _chromium  # tests/browser.py
from browser import run_browser

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
EVIL = "<script>alert(1)</script>"
COLUMNS = [c[0] for c in summary._COLUMNS]


# ---- fixtures --------------------------------------------------------------------------
def _spark(k: int, n_hist: int = 60, horizon: int = 30) -> dict:
    y = [100 + 10 * math.sin((i + k) / 6) + 0.3 * i for i in range(n_hist)]
    yhat = [y[-1] + 0.3 * (i + 1) + 5 * math.sin((n_hist + i + k) / 6) for i in range(horizon)]
    width = [2 + 0.2 * i for i in range(horizon)]
    return {"history": {"ds": [f"2026-09-{1 + i % 28:02d}T00:00:00" for i in range(n_hist)],
                        "y": y},
            "forecast": {"ds": [f"2026-11-{1 + i % 28:02d}T00:00:00" for i in range(horizon)],
                         "yhat": yhat, "lower": [a - w for a, w in zip(yhat, width)],
                         "upper": [a + w for a, w in zip(yhat, width)], "level": 80}}


def _series(k: int, status: str, sid: str | None = None) -> dict:
    sid = sid or f"S{k:04d}"
    base = {"id": sid, "slug": sid, "status": status, "model": "gru", "requested_model": "gru",
            "action": "fit", "reason": "policy always", "error": None, "rows": 2000,
            "last_timestamp": "2026-11-20T00:00:00", "horizon": 30,
            "seconds": {"load": 0.01, "backtest": 1.2, "fit": 2.0, "predict": 0.02,
                        "report": 0.3, "total": 3.53 + k % 7},
            "backtest": {"model": {"mae": 1.2, "rmse": 1.5, "mase": 0.9 + (k % 5) / 10,
                                   "skill_mae": 0.12 - (k % 4) / 10, "coverage_80": 0.8,
                                   "coverage_95": 0.95},
                         "naive": {"mae": 1.36, "rmse": 1.7}, "folds": 3},
            "files": {"forecast": f"series/{sid}/forecast.csv",
                      "model": f"series/{sid}/model.npz",
                      "report": f"series/{sid}/report.html"}}
    if status == "fallback":
        base.update(model="naive", error="gru diverged: loss is NaN after epoch 3",
                    action="fit", reason="no stored model")
    elif status == "failed":
        base.update(model=None, action=None, reason=None, backtest=None,
                    error="DataError: column 'close' not found in prices.csv",
                    files={"forecast": None, "model": None, "report": None},
                    seconds={"load": 0.01, "total": 0.01})
    elif status == "pending":
        base.update(model=None, action=None, reason=None, backtest=None, seconds=None,
                    rows=None, files={})
    return base


def _manifest(series: list[dict], **extra) -> dict:
    counts = {st: sum(s["status"] == st for s in series) for st in summary.STATUSES}
    m = {"format": "forecast-batch-run", "format_version": 1, "run_id": "20261123T020000",
         "as_of": "2026-11-20T00:00:00", "state": "finished",
         "started": "2026-11-23T02:00:00+00:00", "finished": "2026-11-23T02:03:12+00:00",
         "engine": "local", "workers": 2, "config_file": "/abs/path/batch.toml",
         "counts": counts, "seconds": 192.4, "series": series}
    m.update(extra)
    return m


def _mixed(n: int) -> tuple[dict, dict]:
    cycle = ["ok", "ok", "ok", "fallback", "ok", "failed", "ok", "pending"]
    series = [_series(k, cycle[k % len(cycle)]) for k in range(n)]
    sparks = {s["id"]: _spark(k) for k, s in enumerate(series)
              if s["status"] in ("ok", "fallback")}
    return _manifest(series), sparks


class _Rows(HTMLParser):
    """The rows of the series table: (tr attributes, [(td attributes, text)])."""

    def __init__(self, page: str):
        super().__init__()
        self.rows: list[tuple[dict, list[tuple[dict, str]]]] = []
        self._in_body = False
        self._cell: list | None = None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        if tag == "tbody":
            self._in_body = True
        elif self._in_body and tag == "tr":
            self.rows.append((dict(attrs), []))
        elif self._in_body and tag == "td":
            self._cell = [dict(attrs), ""]
        elif self._cell is not None and tag == "a":
            self._cell.append(dict(attrs)["href"])

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_body = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1][1].append(tuple(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None and self.lasttag != "title":
            self._cell[1] += data


def _cells(row) -> dict[str, tuple]:
    return dict(zip(COLUMNS, row[1]))


# ---- rendering -------------------------------------------------------------------------
def test_every_status_appears_with_its_badge_count_and_filter():
    manifest, sparks = _mixed(16)
    page = render_summary(manifest, sparks)
    rows = _Rows(page).rows
    assert len(rows) == 16
    assert [r[0]["data-status"] for r in rows] == [s["status"] for s in manifest["series"]]
    for st in summary.STATUSES:
        assert f'<span class="badge {st}">{st}</span>' in page
        assert f'<button type="button" data-status="{st}"' in page
        assert f'<div class="tile {st}"><b>{manifest["counts"][st]}</b>' in page
    for key in ("20261123T020000", "2026-11-20", "2026-11-23 02:00:00 UTC",
                "2026-11-23 02:03:12 UTC", "local (2 workers)", "3 min 12 s",
                "/abs/path/batch.toml"):
        assert key in page, key
    by_status = {}
    for r in rows:
        by_status.setdefault(r[0]["data-status"], _cells(r))
    assert by_status["fallback"]["model"][1] == "naivefallback for gru"
    assert by_status["failed"]["model"][1] == "gru"  # the model asked for, greyed
    assert by_status["ok"]["action"][0]["title"] == "policy always"
    assert by_status["ok"]["skill"][1] == "+12.0%" and by_status["ok"]["skill"][0]["class"] == "good"
    assert by_status["ok"]["cov 80"][1] == "80%" and by_status["ok"]["cov 95"][1] == "95%"
    assert by_status["ok"]["MASE"][1] == "0.90"
    assert by_status["ok"]["seconds"][1] == "3.53"
    assert "backtest 1.20 s" in by_status["ok"]["seconds"][0]["title"]
    bad = _cells(rows[3])  # skill 0.12 - 0.3 < 0
    assert bad["skill"][1] == "-18.0%" and bad["skill"][0]["class"] == "bad"


def test_strings_are_escaped():
    evil_err = 'boom <img src=x onerror=alert(2)> & "quoted" \'single\''
    s = _series(0, "failed", sid=EVIL)
    s.update(error=evil_err, requested_model="<b>gru</b>")
    t = _series(1, "ok", sid='a"b&c')
    t.update(reason='"><script>alert(3)</script>', action="<i>fit</i>")
    t["files"]["report"] = 'series/a"b&c/report.html'
    page = render_summary(_manifest([s, t], run_id="<run>", config_file="<cfg>&",
                                    engine="<e>", state="<s>"),
                          {EVIL: _spark(0), 'a"b&c': _spark(1)})
    assert page.count("<script") == 1  # only the page's own script
    for raw in (EVIL, "<img", "<b>gru", "<i>fit", "<run>", "<cfg>", "<e>", "<s>"):
        assert raw not in page, raw
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "boom &lt;img src=x onerror=alert(2)&gt; &amp; &quot;quoted&quot; &#x27;single&#x27;" \
        in page
    rows = _Rows(page).rows
    assert _cells(rows[0])["series"][1] == EVIL
    assert _cells(rows[0])["error"][1] == evil_err
    assert _cells(rows[0])["error"][0]["title"] == evil_err
    assert _cells(rows[1])["action"][0]["title"] == '"><script>alert(3)</script>'
    assert _cells(rows[1])["series"][1] == 'a"b&c'


def test_links_point_to_the_relative_report_paths():
    manifest, _ = _mixed(8)
    odd = _series(99, "ok", sid="x y#1")
    odd["files"]["report"] = "series/x y#1/report.html"
    hostile = _series(98, "ok", sid="js")
    hostile["files"] = {"report": "javascript:alert(1)", "forecast": None}
    manifest["series"] += [odd, hostile]
    rows = _Rows(render_summary(manifest)).rows
    for s, row in zip(manifest["series"], rows):
        cell = _cells(row)["report"]
        report = s.get("files", {}).get("report")
        if s is odd:
            assert cell[2:] == ("series/x%20y%231/report.html", "series/x%20y%231/forecast.csv")
        elif s is hostile:
            assert cell[2:] == ("javascript%3Aalert%281%29",)  # a relative path, not a URL
        elif report:
            assert cell[2:] == (report, s["files"]["forecast"])
            assert cell[1] == "report csv"
        else:
            assert cell[2:] == () and cell[1] == ""


def test_missing_metrics_print_blank():
    partial = _series(0, "ok")
    partial["backtest"]["model"] = {"mae": 1.0, "mase": float("nan"), "skill_mae": None,
                                    "coverage_80": 0.75}  # no 95% level configured
    no_naive = _series(1, "ok")
    no_naive["backtest"] = {"model": {"mae": 2.0}}
    bare = {"id": "bare", "status": "ok"}  # nothing else at all
    series = [partial, no_naive, _series(2, "failed"), _series(3, "pending"), bare]
    manifest = _manifest(series, as_of=None, finished=None, seconds=None, state="running")
    del manifest["workers"]
    page = render_summary(manifest)
    rows = _Rows(page).rows
    assert len(rows) == 5
    metric_cols = ("skill", "cov 80", "cov 95", "MASE")
    c = _cells(rows[0])
    assert [c[k][1] for k in metric_cols] == ["", "75%", "", ""]
    for row in rows[1:]:
        c = _cells(row)
        assert all(c[k][1] == "" and "data-v" not in c[k][0] for k in metric_cols)
    assert _cells(rows[3])["seconds"][1] == "" and _cells(rows[4])["model"][1] == ""
    body = page[page.index("<tbody>"):page.index("</tbody>")]
    for junk in ("nan", "None", "inf", "null", "undefined"):
        assert junk not in body, junk
    assert "still running" in page and "latest data" in page  # as_of None: the latest data
    manifest["run_as_of"] = "2026-11-23T02:00:00"
    assert "latest data at 2026-11-23 02:00:00" in render_summary(manifest)


def test_counts_are_computed_when_the_manifest_lacks_them():
    manifest, _ = _mixed(8)
    del manifest["counts"]
    page = render_summary(manifest)
    assert '<div class="tile ok"><b>5</b>' in page and '<div class="tile failed"><b>1</b>' in page
    assert "This run has no series." in render_summary({"run_id": "r", "series": []})
    assert "<tbody>" not in render_summary({})


def test_write_summary_is_atomic_and_returns_the_path(tmp_path):
    manifest, sparks = _mixed(5)
    out = write_summary(tmp_path / "index.html", manifest, sparks)
    assert out == tmp_path / "index.html"
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir()] == ["index.html"]  # no temporary file left
    from forecast.errors import OutputError

    with pytest.raises(OutputError):
        write_summary(tmp_path / "missing" / "index.html", manifest)


def test_the_page_is_self_contained():
    manifest, sparks = _mixed(8)
    page = render_summary(manifest, sparks)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert "@import" not in page and "url(" not in page and "console." not in page
    assert "plotly" not in page.lower()
    # the Content-Security-Policy names the hashes of the page's own style and script
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)
    for tag in ("style", "script"):
        text = re.search(f"<{tag}>(.*?)</{tag}>", page, re.DOTALL).group(1)
        digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
        assert f"{tag}-src 'sha256-{digest}'" in csp
    assert "default-src 'none'" in csp


def test_1000_rows_render_fast():
    manifest, sparks = _mixed(1000)
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        page = render_summary(manifest, sparks)
        best = min(best, time.perf_counter() - t0)
    assert best < 0.5, f"{best:.3f} s for 1,000 rows"
    assert len(_Rows(page).rows) == 1000
    assert page.count("<svg") == len(sparks) == 750
    assert len(page.encode()) < 2_500_000  # light: about 2 kB a row with its chart


# ---- sparklines ------------------------------------------------------------------------
_NUM = r"-?\d+(?:\.\d+)?"
_POINT = rf"{_NUM},{_NUM}"
_PATH = re.compile(rf"^M{_POINT}(?:L{_POINT})*Z?$")


def _svg(markup: str) -> ET.Element:
    return ET.fromstring(markup)  # well-formed XML or it raises


def _paths(svg: ET.Element) -> dict[str, list[tuple[float, float]]]:
    out = {}
    for p in svg.iter("path"):
        d = p.get("d")
        assert _PATH.match(d), d
        pts = [tuple(map(float, xy.split(","))) for xy in re.findall(_POINT, d)]
        for x, y in pts:
            assert 0 <= x <= summary.SPARK_W and 0 <= y <= summary.SPARK_H, (x, y)
        out[p.get("class")] = pts
    return out


def test_sparkline_paths_are_well_formed():
    manifest, sparks = _mixed(24)
    page = render_summary(manifest, sparks)
    svgs = re.findall(r"<svg .*?</svg>", page, re.DOTALL)
    assert len(svgs) == len(sparks)
    for markup in svgs:
        paths = _paths(_svg(markup))
        assert set(paths) == {"h", "f", "b", "d"}
        assert len(paths["h"]) == 60
        assert len(paths["f"]) == 31  # starts at the last observed value
        assert len(paths["b"]) == 2 * 31  # upper forward, lower back, from the last value
        assert paths["f"][0] == paths["h"][-1]
        xs = [x for x, _ in paths["h"] + paths["f"][1:]]
        assert xs == sorted(xs) and xs[0] == summary.SPARK_PAD
        assert xs[-1] == pytest.approx(summary.SPARK_W - summary.SPARK_PAD, abs=0.05)
    svg = _svg(svgs[0])
    assert "80% interval" in svg.find("title").text


def test_sparkline_skips_nan_and_none_points():
    spark = _spark(0, n_hist=10, horizon=5)
    spark["history"]["y"][2] = float("nan")
    spark["history"]["y"][5] = None
    spark["history"]["y"][7] = float("inf")
    spark["forecast"]["yhat"][1] = None
    spark["forecast"]["lower"][3] = float("nan")
    markup = sparkline(spark)
    assert "nan" not in markup.lower() and "inf" not in markup.lower()
    paths = _paths(_svg(markup))
    assert len(paths["h"]) == 7
    assert len(paths["f"]) == 1 + 4
    assert len(paths["b"]) == 2 * (1 + 4)


def test_sparkline_edge_cases():
    flat = {"history": {"ds": [], "y": [5.0] * 20},
            "forecast": {"ds": [], "yhat": [5.0] * 5, "lower": None, "upper": None,
                         "level": None}}
    paths = _paths(_svg(sparkline(flat)))  # constant: no division by zero, drawn flat
    assert set(paths) == {"h", "f", "d"}  # no band without bounds
    assert {y for _, y in paths["h"] + paths["f"]} == {summary.SPARK_H / 2}
    assert sparkline(None) == "" and sparkline({}) == ""
    assert sparkline({"history": {"y": [None, float("nan")]}, "forecast": {"yhat": []}}) == ""
    one = _svg(sparkline({"history": {"y": [3.0]}}))  # a single point: a dot
    assert one.find("circle") is not None
    only_fc = _paths(_svg(sparkline({"forecast": {"yhat": [1.0, 2.0, 1.5], "lower": [0, 1, 1],
                                                  "upper": [2, 3, 2], "level": 95}})))
    assert len(only_fc["f"]) == 3 and len(only_fc["b"]) == 6
    huge = _paths(_svg(sparkline({"history": {"y": [-1e308, 1e308]}})))  # span overflows
    assert len(huge["h"]) == 2
    # a series missing from `sparks` gets an empty chart cell
    manifest, sparks = _mixed(4)
    del sparks["S0000"]
    rows = _Rows(render_summary(manifest, sparks)).rows
    assert "<svg" not in str(rows[0]) and _cells(rows[0])["forecast"][1] == ""


# ---- in a real browser -----------------------------------------------------------------
def _run_browser(page: Path, tmp: Path, *extra: str):
    return run_browser(page, tmp, *extra, budget_ms=5000)


def _browser_manifest() -> tuple[dict, dict]:
    manifest, sparks = _mixed(40)
    evil = _series(40, "failed", sid=EVIL)
    evil["error"] = "<img src=x onerror=alert(2)> " + "a long message " * 30
    flat = _series(41, "ok", sid="flat-series")
    manifest["series"] += [evil, flat]
    manifest["counts"]["failed"] += 1
    manifest["counts"]["ok"] += 1
    sparks["flat-series"] = {"history": {"ds": [], "y": [3.0] * 60},
                             "forecast": {"ds": [], "yhat": [3.0] * 30, "lower": None,
                                          "upper": None, "level": None}}
    sparks["S0001"]["history"]["y"][30:35] = [None, float("nan"), None, None, None]
    return manifest, sparks


def test_summary_page_renders_in_a_browser(tmp_path):
    _chromium()
    manifest, sparks = _browser_manifest()
    page = write_summary(tmp_path / "index.html", manifest, sparks)
    result = _run_browser(page, tmp_path, "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    console = [ln for ln in result.stderr.splitlines() if ":CONSOLE" in ln]
    assert not console, console  # no error, warning, log or CSP violation from the page
    dom = result.stdout
    assert len(re.findall(r"<tr data-status=", dom)) == len(manifest["series"])
    assert '<div id="filters">' in dom  # the script ran (under the page's CSP) and showed it
    assert f"{len(manifest['series'])} of {len(manifest['series'])} series shown" in dom
    assert "<script>alert(1)" not in dom
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / "batch-summary.png"
    target.unlink(missing_ok=True)
    result = _run_browser(page, tmp_path, f"--screenshot={target}", "--window-size=1440,1300",
                          "--hide-scrollbars")
    assert target.is_file() and target.stat().st_size > 10_000, result.stderr[-2000:]


# Clicks a header twice, then a status filter and the id search, and writes what it saw
# into the page (the copy under test drops the CSP so that this script may run).
_SELF_TEST = """<script>
(function () {
  var out = {};
  function col(i) {
    return Array.prototype.filter.call(document.getElementById("runs").tBodies[0].rows,
      function (tr) { return !tr.hidden; }).map(function (tr) {
        return tr.cells[i].textContent.trim(); });
  }
  var heads = document.getElementById("runs").tHead.rows[0].cells;
  heads[5].click(); out.skillUp = col(5); out.ariaUp = heads[5].getAttribute("aria-sort");
  heads[5].click(); out.skillDown = col(5);
  heads[1].click(); out.ids = col(1);
  document.querySelector('#filters button[data-status="failed"]').click();
  out.failed = col(2); out.shown = document.getElementById("shown").textContent;
  document.querySelector('#filters button[data-status="all"]').click();
  var q = document.getElementById("q"); q.value = "s001"; q.dispatchEvent(new Event("input"));
  out.search = col(1);
  var pre = document.createElement("pre"); pre.id = "selftest";
  pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
})();
</script></body>"""


def test_sorting_and_filtering_work_in_a_browser(tmp_path):
    _chromium()
    manifest, sparks = _browser_manifest()
    page = render_summary(manifest, sparks)
    page = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page)
    path = tmp_path / "selftest.html"
    path.write_text(page.replace("</body>", _SELF_TEST))
    result = _run_browser(path, tmp_path, "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    assert not [ln for ln in result.stderr.splitlines() if ":CONSOLE" in ln]
    found = re.search(r'<pre id="selftest">(.*?)</pre>', result.stdout, re.DOTALL)
    assert found, result.stdout[-2000:]
    out = json.loads(html.unescape(found.group(1)))

    def pct(v):
        return float(v.rstrip("%"))

    n_skill = sum(1 for s in manifest["series"] if s["backtest"])
    up = [pct(v) for v in out["skillUp"][:n_skill]]
    assert up == sorted(up) and all(v == "" for v in out["skillUp"][n_skill:])  # blanks last
    down = [pct(v) for v in out["skillDown"][:n_skill]]
    assert down == sorted(down, reverse=True) and out["skillDown"][n_skill:] == out["skillUp"][
        n_skill:]
    assert out["ariaUp"] == "ascending"
    assert out["ids"] == sorted(out["ids"], key=lambda s: s.lower())
    n_failed = sum(s["status"] == "failed" for s in manifest["series"])
    assert out["failed"] == ["failed"] * n_failed
    assert out["shown"] == f"{n_failed} of {len(manifest['series'])} series shown"
    assert out["search"] == [f"S{k:04d}" for k in range(10, 20)]


def test_a_coverage_beyond_chance_is_marked_with_its_direction():
    """The backtest's chance test (`cover_z_<level>`) reaches the summary page: a coverage
    more than 2 standard errors off its level is marked and its title says which way."""
    s = _series(0, "ok")
    s["backtest"]["model"].update(coverage_80=0.7, cover_z_80=-2.5, cover_z_95=0.4)
    s["backtest"]["folds"] = 40  # the bar: Student's t over the folds, 2.02 here
    few = _series(2, "ok")  # over 3 folds the bar is 4.30: -2.5 is within chance
    few["backtest"]["model"].update(coverage_80=0.7, cover_z_80=-2.5)
    manifest = _manifest([s, _series(1, "ok"), few])
    rows = _Rows(render_summary(manifest)).rows
    assert "class" not in _cells(rows[2])["cov 80"][0]
    assert _cells(rows[2])["cov 80"][0]["title"] == "z = -2.50: within chance of 80 %"
    c = _cells(rows[0])
    assert c["cov 80"][1] == "70%" and c["cov 80"][0]["class"] == "bad"
    assert c["cov 80"][0]["title"] == "z = -2.50: too narrow, beyond chance"
    assert "class" not in c["cov 95"][0]
    assert c["cov 95"][0]["title"] == "z = +0.40: within chance of 95 %"
    plain = _cells(rows[1])  # a manifest written before the test: no title, no mark
    assert "title" not in plain["cov 80"][0] and "class" not in plain["cov 80"][0]
