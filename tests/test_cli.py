"""The command line: every command, every exit code, malformed inputs, atomic outputs and
fit / predict in separate processes giving the library's forecast."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from forecast import io
from forecast.cli import app

COMMANDS = ["fit", "predict", "backtest", "report", "datasets", "warmup", "demo"]
TINY = ["--hidden", "4", "--epochs", "2", "--lookback", "12", "--horizon", "3"]


def invoke(*args, **kw):
    return CliRunner().invoke(app, [str(a) for a in args], **kw)


def series_csv(path: Path, n: int = 160, start="2021-01-01", freq="D", seed=0) -> Path:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = 20 + 3 * np.sin(2 * np.pi * t / 7) + np.cumsum(rng.normal(0, 0.3, n))
    fmt = "%Y-%m-%d" if freq == "D" else "%Y-%m-%d %H:%M"
    pd.DataFrame({"date": pd.date_range(start, periods=n, freq=freq).strftime(fmt),
                  "value": y.round(4), "other": (y * 2).round(4)}).to_csv(path, index=False)
    return path


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A tiny GRU fitted through the CLI on a synthetic daily series."""
    folder = tmp_path_factory.mktemp("fitted")
    data = series_csv(folder / "train.csv")
    model = folder / "gru.npz"
    res = invoke("fit", data, "-t", "value", "-m", "gru", *TINY, "-o", model)
    assert res.exit_code == 0, res.output
    return folder, data, model


# ---- help, version, listing ------------------------------------------------------------
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command):
    res = invoke(command, "--help")
    assert res.exit_code == 0
    assert "Example: forecast" in res.output


def test_top_level_help_version_and_no_args():
    res = invoke("--help")
    assert res.exit_code == 0 and all(c in res.output for c in COMMANDS)
    assert "Exit codes" in res.output
    res = invoke("--version")
    assert res.exit_code == 0 and res.output.startswith("forecast ")
    assert invoke().exit_code == 2  # no command: help, usage exit code


def test_datasets_lists_bundled_data():
    res = invoke("datasets")
    assert res.exit_code == 0
    for name in ("aapl", "goog", "etth1", "seattle-weather"):
        assert name in res.output


def test_warmup_compiles_a_cell():
    res = invoke("warmup", "--cells", "gru")
    assert res.exit_code == 0 and "gru" in res.output
    assert invoke("warmup", "--cells", "transformer").exit_code == 2


# ---- fit / predict ---------------------------------------------------------------------
def test_fit_writes_a_model_file_and_predict_matches_the_library(fitted):
    folder, data, model = fitted
    mf = io.load_model(model)
    assert mf.manifest["model"]["name"] == "gru"
    assert mf.manifest["data"]["rows"] == 160 and mf.manifest["data"]["frequency"] == "D"
    res = invoke("predict", model)
    assert res.exit_code == 0
    from io import StringIO

    got = pd.read_csv(StringIO(res.stdout), parse_dates=["ds"])
    expected = mf.model.predict()
    assert list(got.columns) == ["unique_id", "ds", "yhat", "yhat_lower_80", "yhat_upper_80",
                                 "yhat_lower_95", "yhat_upper_95"]
    np.testing.assert_array_equal(got["yhat"].to_numpy(), expected["yhat"].to_numpy())
    assert (got["yhat_lower_80"] < got["yhat"]).all() and (got["yhat"] < got["yhat_upper_95"]).all()


def test_predict_writes_parquet_and_csv(fitted, tmp_path):
    _folder, _data, model = fitted
    for name in ("f.parquet", "f.csv"):
        res = invoke("predict", model, "-o", tmp_path / name)
        assert res.exit_code == 0, res.output
    a = pd.read_parquet(tmp_path / "f.parquet")
    b = pd.read_csv(tmp_path / "f.csv")
    np.testing.assert_array_equal(a["yhat"].to_numpy(), b["yhat"].to_numpy())
    assert len(a) == 3


def test_predict_with_newer_data_continues_after_its_end(fitted, tmp_path):
    folder, data, model = fitted
    newer = series_csv(tmp_path / "newer.csv", n=200)  # same start, 40 more rows
    res = invoke("predict", model, "--data", newer, "-o", tmp_path / "f.csv")
    assert res.exit_code == 0, res.output
    f = pd.read_csv(tmp_path / "f.csv", parse_dates=["ds"])
    assert f["ds"].iloc[0] == pd.Timestamp("2021-01-01") + pd.Timedelta(days=200)
    assert set(f["unique_id"]) == {"train"}  # the training series' id, not the file's


def test_fit_then_predict_in_separate_processes_equals_the_library(tmp_path):
    data = series_csv(tmp_path / "s.csv")
    env = {**os.environ, "NUMBA_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "forecast.cli"]
    model, out = tmp_path / "m.npz", tmp_path / "f.csv"
    r = subprocess.run(cmd + ["--quiet", "fit", str(data), "-t", "value", "-m", "lstm", *TINY,
                              "--seed", "3", "-o", str(model)], env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and r.stderr == ""  # --quiet
    r = subprocess.run(cmd + ["predict", str(model), "-o", str(out)], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    from_cli = pd.read_csv(out)
    # the same fit in this process, through the library
    from forecast import workflows as wf

    run = wf.fit(wf.DataSpec(str(data), target="value"),
                 wf.ModelSpec("lstm", horizon=3, lookback=12, epochs=2, hidden=4, seed=3))
    lib = run.model.predict()
    for col in ("yhat", "yhat_lower_80", "yhat_upper_95"):
        np.testing.assert_array_equal(from_cli[col].to_numpy(), lib[col].to_numpy())
    assert list(from_cli["ds"]) == [str(d.date()) for d in lib["ds"]]


def test_fit_with_folds_stores_backtest_metrics_and_writes_a_report(workdir):
    data = series_csv(workdir / "s.csv")
    res = invoke("fit", data, "-t", "value", "-m", "naive", "--horizon", "3", "--folds", "2",
                 "-o", "n.npz", "--report", "n.html")
    assert res.exit_code == 0, res.output
    bt = io.load_model("n.npz").backtest
    assert bt["config"]["folds"] == 2 and bt["model"]["mae"] > 0
    assert Path("n.html").stat().st_size < 5e6 and Path("plotly.min.js").exists()


def test_fit_on_a_random_walk_says_the_model_forecasts_the_last_value(workdir):
    """A price-like random walk: the recurrent model keeps the random walk, and `fit`
    and the report say so in plain words."""
    rng = np.random.default_rng(5)
    n = 700
    pd.DataFrame({"date": pd.bdate_range("2016-01-04", periods=n).strftime("%Y-%m-%d"),
                  "close": (40 * np.exp(np.cumsum(rng.normal(0, 0.015, n)))).round(4)}
                 ).to_csv("p.csv", index=False)
    res = invoke("fit", "p.csv", "-t", "close", "-m", "gru", "--hidden", "4", "--epochs", "2",
                 "--lookback", "20", "--horizon", "5", "-o", "p.npz", "--report", "p.html")
    assert res.exit_code == 0, res.output
    assert "gru forecasts the last value (a random walk)" in " ".join(res.output.split())
    page = Path("p.html").read_text(encoding="utf-8")
    assert "random walk test" in page and "forecasts the last value" in page
    res = invoke("backtest", "p.csv", "-t", "close", "--models", "gru", "--hidden", "4",
                 "--epochs", "2", "--lookback", "20", "--horizon", "5", "--folds", "4",
                 "-o", "b.csv", "--report", "b.html")
    assert res.exit_code == 0, res.output
    said = " ".join(res.output.split())
    assert "gru forecast the last value in 4 of 4 fit(s)" in said
    assert "gru forecast the last value in 4 of 4 fit(s)" in " ".join(
        Path("b.html").read_text(encoding="utf-8").split())


def test_config_file_supplies_options_and_the_command_line_wins(workdir):
    data = series_csv(workdir / "s.csv")
    Path("f.toml").write_text('target = "value"\n[fit]\nmodel = "drift"\nhorizon = 4\n')
    res = invoke("--config", "f.toml", "fit", data, "-o", "a.npz")
    assert res.exit_code == 0, res.output
    mf = io.load_model("a.npz")
    assert mf.name == "drift" and mf.model.horizon_ == 4
    res = invoke("--config", "f.toml", "fit", data, "--horizon", "2", "-o", "b.npz")
    assert res.exit_code == 0 and io.load_model("b.npz").model.horizon_ == 2


def test_quiet_and_debug(workdir):
    data = series_csv(workdir / "s.csv")
    res = invoke("--quiet", "fit", data, "-t", "value", "-m", "naive", "-o", "q.npz")
    assert res.exit_code == 0 and res.stdout == ""
    res = invoke("--debug", "fit", data, "-t", "nope", "-m", "naive", "-o", "d.npz")
    assert res.exit_code == 1 and type(res.exception).__name__ == "DataError"


def test_interrupt_leaves_no_file(workdir, monkeypatch):
    from forecast import workflows

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(workflows, "fit", boom)
    data = series_csv(workdir / "s.csv")
    res = invoke("fit", data, "-t", "value", "-o", "m.npz")
    assert res.exit_code == 130 and not Path("m.npz").exists()


def test_unexpected_errors_are_one_line_without_traceback(workdir, monkeypatch):
    from forecast import workflows

    def boom(*a, **k):
        raise RuntimeError("kaput\nsecond line")

    monkeypatch.setattr(workflows, "fit", boom)
    data = series_csv(workdir / "s.csv")
    res = invoke("fit", data, "-t", "value", "-o", "m.npz")
    assert res.exit_code == 1
    assert res.stderr.strip().count("\n") == 0 and "kaput second line" in res.stderr
    assert "Traceback" not in res.output


# ---- backtest / report / demo ----------------------------------------------------------
def test_backtest_prints_a_table_and_writes_results_and_report(workdir):
    data = series_csv(workdir / "s.csv")
    res = invoke("backtest", data, "-t", "value", "--models", "gru,drift", *TINY, "--folds", "2",
                 "-o", "bt.csv", "--report", "bt.html")
    assert res.exit_code == 0, res.output
    for name in ("gru", "drift", "naive", "seasonal_naive", "skill"):
        assert name in res.stdout
    table = pd.read_csv("bt.csv")
    assert set(table["model"]) == {"gru", "drift", "naive", "seasonal_naive"}
    assert table["fold"].nunique() == 2 and (table["step"].max() == 3)
    html = Path("bt.html").read_text()
    assert "Backtest metrics" in html and "Loss curves" in html
    # every coverage is weighed against the chance of these folds, in both places
    said = " ".join(res.stdout.split())
    assert "within chance over these 2 folds" in said
    assert "within chance over these 2 folds" in " ".join(html.split())
    # a report rebuilt from the results file
    res = invoke("report", "bt.csv", "--data", data, "-t", "value", "-o", "again.html")
    assert res.exit_code == 0, res.output
    assert "Error by horizon step" in Path("again.html").read_text()
    assert invoke("report", "bt.csv", "-o", "x.html").exit_code == 2  # needs --data


def test_backtest_table_shows_the_coverage_of_the_levels_asked_for(workdir):
    data = series_csv(workdir / "s.csv")
    res = invoke("backtest", data, "-t", "value", "--models", "drift", "--folds", "3",
                 "--levels", "90,97.5", "-o", "bt.csv")
    assert res.exit_code == 0, res.output
    assert "cover 90%" in res.stdout and "cover 97.5%" in res.stdout
    assert "cover 80%" not in res.stdout
    said = " ".join(res.stdout.split())
    assert "over these 3 folds" in said and ("90 %" in said or "97.5 %" in said)


def test_what_loading_decided_is_said_on_stderr(workdir):
    """A European file (';', decimal commas, day-first dates) is read, and the guesses
    are said (stderr), never silently taken."""
    src = pd.read_csv(series_csv(workdir / "s.csv"))
    src["date"] = pd.to_datetime(src["date"]).dt.strftime("%d/%m/%Y")
    src[["date", "value"]].to_csv(workdir / "eu.csv", sep=";", decimal=",", index=False)
    res = invoke("backtest", "eu.csv", "-t", "value", "--models", "drift", "--folds", "2",
                 "-o", "bt.csv")
    assert res.exit_code == 0, res.output
    assert "data: read the timestamps day first (%d/%m/%Y)" in res.stderr
    assert "data: read column 'value' with decimal commas" in res.stderr
    plain = invoke("backtest", "s.csv", "-t", "value", "--models", "drift", "--folds", "2",
                   "-o", "bt2.csv")
    np.testing.assert_allclose(pd.read_csv("bt.csv")["yhat"], pd.read_csv("bt2.csv")["yhat"])
    assert "day first" not in plain.stderr


def test_backtest_default_output_goes_to_reports(workdir):
    data = series_csv(workdir / "s.csv")
    res = invoke("--quiet", "backtest", data, "-t", "value", "--models", "naive", "--folds", "2",
                 "--horizon", "3")
    assert res.exit_code == 0, res.output
    assert Path("reports/s-backtest.csv").exists()
    # the baselines that always run: naive, seasonal naive and drift (the verdict's trend check)
    assert set(pd.read_csv("reports/s-backtest.csv")["model"]) == {"naive", "seasonal_naive",
                                                                   "drift"}


def test_report_from_a_model_file(fitted, workdir):
    _folder, _data, model = fitted
    res = invoke("report", model, "-o", "m.html")
    assert res.exit_code == 0, res.output
    html = Path("m.html").read_text()
    for section in ("Forecast", "Loss curves", "Residual diagnostics", "Model cards", "Data"):
        assert f"<h2>{section}</h2>" in html
    assert "content_sha256" in html and "plotly.min.js" in html


def test_demo_writes_the_index_and_pages(workdir):
    res = invoke("demo", "-o", "out", "--models", "gru", "--epochs", "1", "--folds", "2")
    assert res.exit_code == 0, res.output
    for page in ("index.html", "aapl.html", "seattle-weather.html", "plotly.min.js"):
        assert (workdir / "out" / page).exists()
    for page in ("index.html", "aapl.html", "seattle-weather.html"):
        assert (workdir / "out" / page).stat().st_size < 5e6
    assert "aapl" in res.stdout and "seattle-weather" in res.stdout


# ---- malformed inputs: exit code, one line, no output left behind -------------------
def _write(folder: Path, name: str, text: str) -> str:
    (folder / name).write_text(text)
    return name


def _gap_csv(folder):
    series_csv(folder / "g.csv")
    frame = pd.read_csv(folder / "g.csv").drop(index=range(50, 55))
    frame.to_csv(folder / "g.csv", index=False)
    return "g.csv"


def _hourly_csv(folder):
    return series_csv(folder / "h.csv", freq="h").name


def _later_csv(folder):
    return series_csv(folder / "later.csv", n=60, start="2021-08-01").name


def _other_cols_csv(folder):
    frame = pd.read_csv(series_csv(folder / "o.csv")).rename(columns={"value": "price"})
    frame.to_csv(folder / "o.csv", index=False)
    return "o.csv"


def _flipped(folder):
    """A byte of the manifest changed in place (the zip's CRC notices)."""
    data = bytearray((folder / "model.npz").read_bytes())
    i = data.find(b'"rows"')
    data[i + 8] = ord("9") if data[i + 8] != ord("9") else ord("8")
    (folder / "f.npz").write_bytes(bytes(data))
    return "f.npz"


def _edited_manifest(folder, name, edit):
    """A consistent zip, `name`, whose manifest `edit(manifest)` changed."""
    with np.load(folder / "model.npz", allow_pickle=False) as z:
        entries = {n: z[n] for n in z.files}
    manifest = json.loads(bytes(entries["manifest"]).decode())
    edit(manifest)
    entries["manifest"] = np.frombuffer(json.dumps(manifest).encode(), np.uint8)
    np.savez(folder / name, **entries)
    return name


def _tampered(folder):
    """A manifest edited after saving (the model file's checksum notices)."""
    return _edited_manifest(folder, "t.npz",
                            lambda m: m["model"]["state"]["params"].update(lookback=5))


def _future_version(folder):
    return _edited_manifest(folder, "v.npz", lambda m: m.update(format_version=99))


def _pickled(folder):
    with np.load(folder / "model.npz", allow_pickle=False) as z:
        entries = {n: z[n] for n in z.files}
    entries["a.head_params_"] = np.array([{"evil": 1}], dtype=object)
    np.savez(folder / "p.npz", **entries)
    return "p.npz"


def _truncated(folder):
    data = (folder / "model.npz").read_bytes()
    (folder / "tr.npz").write_bytes(data[: len(data) // 2])
    return "tr.npz"


CASES = [
    # (id, make input -> argument list, exit code, message fragment)
    ("missing file", lambda d: ["fit", "nope.csv", "-o", "OUT"], 1, "not found"),
    ("empty file", lambda d: ["fit", _write(d, "e.csv", ""), "-o", "OUT"], 1, "empty"),
    ("header only", lambda d: ["fit", _write(d, "h.csv", "date,value\n"), "-o", "OUT"], 1, "no"),
    ("no time column", lambda d: ["fit", _write(d, "n.csv", "a,b\n1,2\n3,4\n"), "-o", "OUT"], 1,
     "time"),
    ("non-numeric target", lambda d: ["fit", _write(d, "x.csv", "date,value\n2021-01-01,a\n"
                                                    "2021-01-02,b\n"), "-t", "value", "-o", "OUT"],
     1, "value"),
    ("duplicate timestamps", lambda d: ["fit", _write(d, "dup.csv", "date,value\n2021-01-01,1\n"
                                                      "2021-01-01,2\n2021-01-02,3\n"), "-o", "OUT"],
     1, "duplicate"),
    ("gaps", lambda d: ["fit", _gap_csv(d), "-t", "value", "-o", "OUT"], 1, "gap"),
    ("unknown target", lambda d: ["fit", "aapl", "-t", "Nope", "-o", "OUT"], 1, "Nope"),
    ("too short", lambda d: ["fit", series_csv(d / "short.csv", n=10).name, "-t", "value",
                             "--lookback", "20", "-o", "OUT"], 1, "rows"),
    ("horizon zero", lambda d: ["fit", "aapl", "--horizon", "0", "-o", "OUT"], 2, "horizon"),
    ("unknown model", lambda d: ["fit", "aapl", "-m", "prophet", "-o", "OUT"], 2, "prophet"),
    ("unknown param", lambda d: ["fit", "aapl", "-p", "foo=1", "-o", "OUT"], 2, "foo"),
    ("param without =", lambda d: ["fit", "aapl", "-p", "foo", "-o", "OUT"], 2, "key=value"),
    ("bad levels", lambda d: ["fit", "aapl", "--levels", "80,150", "-o", "OUT"], 2, "levels"),
    ("bad gaps option", lambda d: ["fit", "aapl", "--gaps", "maybe", "-o", "OUT"], 2, "gaps"),
    ("missing output folder", lambda d: ["fit", "aapl", "-o", "no/such/dir/m.npz"], 2,
     "does not exist"),
    ("output under a file", lambda d: ["fit", "aapl", "-o",
                                       _write(d, "plain.txt", "x") + "/m.npz"], 2, "not exist"),
    ("output is a folder", lambda d: ["predict", "model.npz", "-o", "."], 2, "folder"),
    ("missing model file", lambda d: ["predict", "none.npz", "-o", "OUT"], 1, "does not exist"),
    ("not a model file", lambda d: ["predict", _write(d, "txt.npz", "hello"), "-o", "OUT"], 1,
     "not a forecast model file"),
    ("truncated model", lambda d: ["predict", _truncated(d), "-o", "OUT"], 1, "truncated"),
    ("tampered model", lambda d: ["predict", _tampered(d), "-o", "OUT"], 1, "checksum"),
    ("flipped byte", lambda d: ["predict", _flipped(d), "-o", "OUT"], 1, "damaged"),
    ("future format", lambda d: ["predict", _future_version(d), "-o", "OUT"], 1, "upgrade"),
    ("pickle inside", lambda d: ["predict", _pickled(d), "-o", "OUT"], 1, "pickle"),
    ("other columns", lambda d: ["predict", "model.npz", "--data", _other_cols_csv(d), "-o",
                                 "OUT"], 1, "value"),
    ("other frequency", lambda d: ["predict", "model.npz", "--data", _hourly_csv(d), "-o", "OUT"],
     1, "frequency"),
    ("gap after training", lambda d: ["predict", "model.npz", "--data", _later_csv(d), "-o",
                                      "OUT"], 1, "gap"),
    ("horizon beyond fitted", lambda d: ["predict", "model.npz", "--horizon", "9", "-o", "OUT"],
     1, "horizon"),
    ("unknown command", lambda d: ["frobnicate"], 2, "No such command"),
    ("missing argument", lambda d: ["fit", "-o", "OUT"], 2, "DATA"),
    ("bad window", lambda d: ["backtest", "aapl", "--window", "rolling", "-o", "OUT"], 2,
     "window"),
    ("bad models list", lambda d: ["backtest", "aapl", "--models", "gru,,zz", "-o", "OUT"], 2,
     "zz"),
    ("bad config key", lambda d: ["--config", _write(d, "c.toml", "[fit]\nbogus = 1\n"), "fit",
                                  "aapl", "-o", "OUT"], 2, "bogus"),
    ("bad config toml", lambda d: ["--config", _write(d, "c2.toml", "x = [\n"), "datasets"], 2,
     "TOML"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_malformed_inputs(case, fitted, workdir):
    _id, make, code, fragment = case
    folder = workdir
    (folder / "model.npz").write_bytes(fitted[2].read_bytes())
    args = [a.replace("OUT", "out.file") if a == "OUT" else a for a in make(folder)]
    before = sorted(p.name for p in folder.iterdir())
    res = invoke(*args)
    assert res.exit_code == code, (res.exit_code, res.output)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert fragment.lower() in lines[0].lower(), lines[0]
    assert "Traceback" not in res.output
    assert not (folder / "out.file").exists()
    after = sorted(p.name for p in folder.iterdir())
    assert after == before and not leftovers(folder)


def test_a_failed_write_keeps_the_good_file(fitted, workdir, monkeypatch):
    _folder, data, model = fitted
    good = workdir / "keep.npz"
    good.write_bytes(model.read_bytes())
    def broken(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken)  # fails inside the atomic write
    res = invoke("fit", data, "-t", "value", "-m", "naive", "-o", good)
    assert res.exit_code == 1 and "No space left" in res.stderr
    assert good.read_bytes() == model.read_bytes() and not leftovers(workdir)


def test_help_is_fast_and_imports_nothing_heavy():
    code = ("import sys; from forecast.cli import app\n"
            "try:\n app(['fit', '--help'])\nexcept SystemExit: pass\n"
            "heavy = [m for m in ('numpy', 'pandas', 'numba', 'plotly') if m in sys.modules]\n"
            "print('HEAVY=' + ','.join(heavy))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "HEAVY="


def test_model_file_manifest_is_json_and_loadable_without_pickle(fitted):
    _folder, _data, model = fitted
    with np.load(model, allow_pickle=False) as z:
        manifest = json.loads(bytes(z["manifest"]).decode())
        assert all(a.dtype != object for a in (z[n] for n in z.files))
    for key in ("format_version", "package_version", "model", "arrays", "data", "seed",
                "calibration", "transforms"):
        assert key in manifest
    assert manifest["data"]["content_sha256"] and manifest["data"]["last_timestamp"]
