"""The batch engine (`forecast batch`): batch files, runs on the local process pool and on a
real Dask LocalCluster, failures that stay per series, the lock, resume after SIGKILL and
SIGTERM, refit policies, --as-of, JSON logs and exit codes.

The series are slices of the bundled AAPL and GOOG closing prices (real data), small
models and two backtest folds, so that a run takes seconds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from forecast import batch, io
from forecast.cli import app
from forecast.errors import ConfigError, LockHeldError

ROOT = Path(__file__).resolve().parent.parent
STOCKS = {"AAPL": ROOT / "datasets" / "yahoofinance-AAPL-20040819-20180120.csv",
          "GOOG": ROOT / "datasets" / "yahoofinance-GOOG-20040819-20180120.csv"}
runner = CliRunner()

DEFAULTS = """
[defaults]
model = "gru"
horizon = 5
lookback = 20
epochs = 2
hidden = 8
folds = 2
target = "Close"
"""


def make_series(folder: Path, n: int, length: int = 300) -> list[str]:
    """`n` daily-trading series cut from the real AAPL/GOOG closes at different offsets."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        src = pd.read_csv(STOCKS["AAPL" if i % 2 == 0 else "GOOG"])
        start = 200 + 137 * i
        part = src.iloc[start:start + length][["Date", "Close"]]
        name = f"S{i:02d}"
        part.to_csv(folder / f"{name}.csv", index=False)
        names.append(name)
    return names


def write_batch(folder: Path, body: str = "", top: str = "", defaults: str = DEFAULTS) -> Path:
    path = folder / "batch.toml"
    path.write_text(textwrap.dedent(f"""
        output = "out"
        workers = 2
        {top}
        """) + textwrap.dedent(defaults) + textwrap.dedent("""
        [[sources]]
        path = "data/*.csv"
        """) + textwrap.dedent(body))
    return path


def cli(*args, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """The real `forecast` command in a subprocess (workers are real processes too)."""
    env = {**os.environ, "NUMBA_NUM_THREADS": "2"}
    return subprocess.run([sys.executable, "-m", "forecast.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=env)


def forecasts(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "forecasts.csv")


def model_arrays(path: Path) -> dict[str, np.ndarray]:
    return io.load_model(path).arrays


# ---- the batch file --------------------------------------------------------------------
@pytest.mark.parametrize("text,needle", [
    ('[[sources]]\npath = "data/*.csv"\n', "no output folder"),
    ('output = "o"\n', "no [[sources]]"),
    ('output = "o"\nwokers = 2\n[[sources]]\npath = "data/*.csv"\n', "did you mean 'workers'"),
    ('output = "o"\n[defaults]\nhorizon = "5"\n[[sources]]\npath = "data/*.csv"\n',
     "horizon must be an integer"),
    ('output = "o"\n[defaults]\nhorizon = 0\n[[sources]]\npath = "data/*.csv"\n',
     "horizon must be >= 1"),
    ('output = "o"\n[defaults]\nmodel = "transformer"\n[[sources]]\npath = "data/*.csv"\n',
     "model = 'transformer' is unknown"),
    ('output = "o"\n[defaults]\nparams = { lrr = 0.1 }\n[[sources]]\npath = "data/*.csv"\n',
     "has no parameter(s) ['lrr']"),
    ('output = "o"\n[defaults]\nfallback = "gru"\n[[sources]]\npath = "data/*.csv"\n',
     "fallback = 'gru' is not one of"),
    ('output = "o"\n[[sources]]\npath = "nothing/*.csv"\n', "matches no file"),
    ('output = "o"\n[[sources]]\npath = "data/*.csv"\n[[sources]]\npath = "data/S00.csv"\n',
     "matched by both"),
    ('output = "o"\nengine = "spark"\n[[sources]]\npath = "data/*.csv"\n', "engine = 'spark'"),
    ('output = "o"\n[refit]\npolicy = "sometimes"\n[[sources]]\npath = "data/*.csv"\n',
     "policy = 'sometimes'"),
    ('output = "o"\n[defaults]\nlevels = [80, 120]\n[[sources]]\npath = "data/*.csv"\n',
     "levels must be percentages"),
    ('output = "o"\n[[sources]]\npath = "data/*.csv"\n[series.S011]\nmodel = "lstm"\n',
     "did you mean 'S01'"),
    ('output = "o"\n[[sources]]\npath = "data/*.csv"\nid = "X"\n', "single-file source"),
    ('output = [1]\n', "output must be a string"),
    ('output = "o"\n[[sources]\n', "not valid TOML"),
])
def test_bad_batch_files_say_what_and_where(tmp_path, text, needle):
    make_series(tmp_path / "data", 2, 60)
    path = tmp_path / "batch.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        batch.plan_series(batch.load_config(path))
    assert needle in str(err.value)


def test_settings_resolve_defaults_source_then_series(tmp_path):
    make_series(tmp_path / "data", 3, 60)
    path = write_batch(tmp_path, '[series.S01]\nmodel = "lstm"\nhidden = 16\n'
                       '[series.S02]\nfallback = "none"\nparams = { lr = 0.01 }\n',
                       defaults=DEFAULTS)
    items = batch.plan_series(batch.load_config(path))
    assert [it.uid for it in items] == ["S00", "S01", "S02"]
    s0, s1, s2 = (it.settings for it in items)
    assert (s0.model, s0.hidden, s0.horizon, s0.target) == ("gru", 8, 5, "Close")
    assert (s1.model, s1.hidden, s1.epochs) == ("lstm", 16, 2)
    assert s2.fallback == "none" and dict(s2.params) == {"lr": 0.01}
    config = batch.load_config(path)
    assert config.output == (tmp_path / "out").resolve()
    assert config.fingerprint() == batch.load_config(path).with_engine("dask", "tcp://x:1") \
        .fingerprint()  # the engine does not change results, so a run may resume on another


def test_long_format_source_gives_one_series_per_id(tmp_path):
    names = make_series(tmp_path / "wide", 3, 80)
    long = pd.concat([pd.read_csv(tmp_path / "wide" / f"{n}.csv").assign(unique_id=f"id/{n}")
                      for n in names])
    long.to_parquet(tmp_path / "long.parquet")
    path = tmp_path / "batch.toml"
    path.write_text('output = "o"\n[defaults]\ntarget = "Close"\n[[sources]]\n'
                    'path = "long.parquet"\nid_col = "unique_id"\n')
    items = batch.plan_series(batch.load_config(path))
    assert [it.uid for it in items] == ["id/S00", "id/S01", "id/S02"]
    assert items[0].slug != "id/S00" and "/" not in items[0].slug
    full = batch.load_series(items[1])
    cut = full.frame["ds"].iloc[40]
    ds = batch.load_series(items[1], as_of=str(cut.date()))
    assert ds.n_series == 1 and ds.name == "id/S01" and len(ds) == 41
    assert ds.frame["ds"].iloc[-1] == cut


def test_validate_exit_codes(tmp_path):
    make_series(tmp_path / "data", 2, 200)
    (tmp_path / "data" / "S02.csv").write_text("Date,Close\n2020-01-01,1\n2020-01-02,abc\n")
    path = write_batch(tmp_path)
    result = runner.invoke(app, ["batch", "validate", str(path)])
    assert result.exit_code == 3, result.output
    assert "S02" in result.output and "non-numeric" in result.output
    (tmp_path / "data" / "S02.csv").unlink()
    result = runner.invoke(app, ["batch", "validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "valid: 2 series" in result.output
    path.write_text(path.read_text().replace('model = "gru"', 'model = "grux"'))
    result = runner.invoke(app, ["batch", "validate", str(path)])
    assert result.exit_code == 1
    assert "error:" in result.output and "grux" in result.output
    assert "Traceback" not in result.output


# ---- a real run ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory):
    """Four good series, one unreadable file, one series too short for the GRU (falls back
    to seasonal naive) and one whose training diverges (NaN loss, falls back)."""
    folder = tmp_path_factory.mktemp("mixed")
    make_series(folder / "data", 4, 260)
    (folder / "data" / "BAD.csv").write_text("Date,Close\n2020-01-01,1\n2020-01-02,abc\n")
    pd.read_csv(folder / "data" / "S00.csv").iloc[:22].to_csv(folder / "data" / "SHORT.csv",
                                                             index=False)
    pd.read_csv(folder / "data" / "S01.csv").to_csv(folder / "data" / "WILD.csv", index=False)
    # the null test off (null_z = false): a random-walk start trains no network to diverge
    path = write_batch(folder, '[series.WILD]\nparams = { lr = 1e30, clip_norm = 1e30, '
                       'null_z = false }\n'
                       '[series.SHORT]\nfolds = 0\n')
    result = cli("batch", "run", str(path), "--run-id", "r1", cwd=folder)
    return folder, path, result


def test_run_records_each_series_and_exits_3_when_some_fail(mixed_run):
    folder, _path, result = mixed_run
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    run_dir = folder / "out" / "runs" / "r1"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    status = {e["id"]: e for e in manifest["series"]}
    assert manifest["state"] == "finished"
    assert {k: status[k]["status"] for k in status} == {
        "BAD": "failed", "S00": "ok", "S01": "ok", "S02": "ok", "S03": "ok",
        "SHORT": "fallback", "WILD": "fallback"}
    assert "non-numeric" in status["BAD"]["error"]
    assert status["SHORT"]["model"] == "seasonal_naive" and "rows" in status["SHORT"]["error"]
    assert status["WILD"]["model"] == "seasonal_naive"
    assert "gru:" in status["WILD"]["error"]
    assert manifest["counts"] == {"ok": 4, "fallback": 2, "failed": 1, "pending": 0}
    ok = status["S00"]
    assert ok["backtest"]["folds"] == 2 and ok["backtest"]["model"]["mae"] > 0
    assert ok["backtest"]["naive"]["mae"] > 0 and "skill_mae" in ok["backtest"]["model"]
    assert {"cover_z_80", "cover_z_95"} <= set(ok["backtest"]["model"])  # the chance test
    for key in ("load", "backtest", "fit", "predict", "report", "total"):
        assert ok["seconds"][key] >= 0
    # every forecast once, in config order, with the model that made it
    table = forecasts(run_dir)
    assert list(dict.fromkeys(table["unique_id"])) == ["S00", "S01", "S02", "S03", "SHORT",
                                                       "WILD"]
    assert table.groupby("unique_id").size().eq(5).all()
    assert set(table.loc[table["unique_id"] == "WILD", "model"]) == {"seasonal_naive"}
    assert {"yhat_lower_80", "yhat_upper_95"} <= set(table.columns)
    parquet = pd.read_parquet(run_dir / "forecasts.parquet")
    assert len(parquet) == len(table)
    # per-series files: the model file loads and forecasts what the run wrote
    s00 = run_dir / "series" / "S00"
    mf = io.load_model(s00 / "model.npz")
    again = mf.model.predict()
    written = pd.read_csv(s00 / "forecast.csv")
    np.testing.assert_allclose(again["yhat"].to_numpy(), written["yhat"].to_numpy(), rtol=1e-12)
    assert (folder / "out" / "models" / "S00.npz").read_bytes() == (s00 / "model.npz").read_bytes()
    assert "plotly" in (s00 / "report.html").read_text()
    assert (run_dir / "plotly.min.js").is_file()
    assert not (run_dir / "series" / "BAD" / "model.npz").exists()
    summary = (run_dir / "summary.html").read_text()
    assert "series/S00/report.html" in summary and "non-numeric" in summary
    # the log: JSON lines from start to end
    events = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert events[0]["event"] == "run_start" and events[-1]["event"] == "run_end"
    assert sum(e["event"] == "series_done" for e in events) == 7
    assert json.loads((folder / "out" / "latest.json").read_text())["run_id"] == "r1"


def test_status_reports_the_run(mixed_run):
    folder, _path, _result = mixed_run
    result = runner.invoke(app, ["batch", "status", str(folder / "out")])
    assert result.exit_code == 3, result.output
    assert "run r1: finished" in result.output and "4 ok, 2 fallback, 1 failed" in result.output
    result = runner.invoke(app, ["batch", "status", str(folder / "out"), "--json"])
    data = json.loads(result.output)
    assert data["counts"]["failed"] == 1 and data["lock"] is None
    result = runner.invoke(app, ["batch", "status", str(folder / "nowhere")])
    assert result.exit_code == 1 and "not a batch output folder" in result.output


def test_same_run_id_again_does_nothing_new(mixed_run):
    folder, path, _result = mixed_run
    run_dir = folder / "out" / "runs" / "r1"
    before = {p: p.stat().st_mtime_ns for p in run_dir.glob("series/*/*")}
    result = cli("batch", "run", str(path), "--run-id", "r1", "--log-json", cwd=folder)
    assert result.returncode == 3, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    start = next(r for r in records if r["event"] == "run_start")
    assert start["resumed"] == 7 and start["todo"] == 0
    assert {p: p.stat().st_mtime_ns for p in run_dir.glob("series/*/*")} == before
    assert len(forecasts(run_dir)) == 30


def test_changed_batch_file_cannot_resume_a_run(mixed_run):
    folder, path, _result = mixed_run
    changed = folder / "changed.toml"
    changed.write_text(path.read_text().replace("epochs = 2", "epochs = 3"))
    result = cli("batch", "run", str(changed), "--run-id", "r1", cwd=folder)
    assert result.returncode == 1
    assert "different batch file" in result.stderr and "Traceback" not in result.stderr


# ---- determinism, engines ----------------------------------------------------------------
@pytest.fixture(scope="module")
def clean_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clean")
    make_series(folder / "data", 5, 240)
    return folder


def _outputs(run_dir: Path) -> tuple[pd.DataFrame, dict]:
    arrays = {p.parent.name: model_arrays(p) for p in sorted(run_dir.glob("series/*/model.npz"))}
    return forecasts(run_dir), arrays


def _same(a, b) -> None:
    pd.testing.assert_frame_equal(a[0], b[0], check_exact=True)
    assert a[1].keys() == b[1].keys()
    for uid in a[1]:
        assert a[1][uid].keys() == b[1][uid].keys()
        for k in a[1][uid]:
            np.testing.assert_array_equal(a[1][uid][k], b[1][uid][k], err_msg=f"{uid} {k}")


@pytest.fixture(scope="module")
def local_run(clean_folder):
    path = write_batch(clean_folder, top="workers = 2")
    path.write_text(path.read_text().replace("workers = 2\nworkers = 2", "workers = 2"))
    config = batch.load_config(path)
    outcome = batch.run_batch(config, run_id="local")
    assert outcome.exit_code == 0, outcome.counts
    return config, _outputs(outcome.run_dir)


def test_same_seed_same_bits_across_runs_and_worker_counts(clean_folder, local_run):
    config, first = local_run
    again = batch.run_batch(config.with_engine(workers=1), run_id="one-worker")
    assert again.exit_code == 0
    _same(first, _outputs(again.run_dir))


def test_dask_engine_on_a_local_cluster_gives_the_local_bits(clean_folder, local_run):
    distributed = pytest.importorskip("distributed")
    config, first = local_run
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  silence_logs=40) as cluster:
        outcome = batch.run_batch(config.with_engine("dask", cluster.scheduler_address),
                                  run_id="dask")
    assert outcome.exit_code == 0, outcome.counts
    assert outcome.manifest["engine"] == "dask"
    _same(first, _outputs(outcome.run_dir))


def test_dask_engine_without_a_scheduler_is_a_clear_error(clean_folder):
    path = write_batch(clean_folder, top='engine = "dask"\nscheduler_timeout = 2')
    result = runner.invoke(app, ["batch", "run", str(path)])
    assert result.exit_code == 1 and "needs a scheduler address" in result.output
    result = runner.invoke(app, ["batch", "run", str(path), "--scheduler", "tcp://127.0.0.1:9"])
    assert result.exit_code == 1 and "cannot reach the Dask scheduler" in result.output


# ---- the lock ----------------------------------------------------------------------------
_HOLD = """
import sys, time
from pathlib import Path
from forecast.batch import BatchLock
lock = BatchLock(Path(sys.argv[1]), "holder").acquire()
print("locked", flush=True)
time.sleep(120)
"""


def test_a_live_lock_stops_a_second_run_and_a_dead_ones_is_taken_over(clean_folder):
    out = clean_folder / "out"
    out.mkdir(exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(out)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        path = write_batch(clean_folder)
        result = runner.invoke(app, ["batch", "run", str(path), "--run-id", "blocked"])
        assert result.exit_code == 1
        assert "locked by a running batch" in result.output
        assert f"pid {holder.pid}" in result.output and "holder" in result.output
        with pytest.raises(LockHeldError):
            batch.BatchLock(out, "x").acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert not (out / "runs" / "blocked").exists()
    lock = batch.BatchLock(out, "next").acquire()
    try:
        assert lock.stale is not None and lock.stale["pid"] == holder.pid
    finally:
        lock.release()
    assert batch.lock_holder(out) is None


# ---- kill -9 and resume --------------------------------------------------------------------
def _wait_for(predicate, timeout: float, what: str) -> None:
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True).stdout
    return [int(x) for x in out.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead too
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_a_killed_run_resumes_with_every_series_exactly_once(tmp_path, sig):
    make_series(tmp_path / "data", 8, 300)
    path = write_batch(tmp_path, top="", defaults=DEFAULTS.replace("epochs = 2", "epochs = 6"))
    path.write_text(path.read_text().replace("workers = 2", "workers = 1"))
    run_dir = tmp_path / "out" / "runs" / "nightly"
    env = {**os.environ, "NUMBA_NUM_THREADS": "1"}
    # a shell's background job (nohup ... &, some CI runners) starts with SIGINT ignored,
    # and Python keeps it ignored; Ctrl-C comes from a terminal, where it is not
    proc = subprocess.Popen([sys.executable, "-m", "forecast.cli", "batch", "run", str(path),
                             "--run-id", "nightly"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        _wait_for(lambda: len(list(run_dir.glob("series/*/result.json"))) >= 2, 240,
                  "two finished series")
        workers = _children(proc.pid)
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    done_before = len(list(run_dir.glob("series/*/result.json")))
    assert done_before < 8, "the run finished before it could be killed; make it longer"
    if sig != signal.SIGKILL:  # SIGTERM (systemd stop) or Ctrl-C: a clean stop
        assert proc.returncode == (143 if sig == signal.SIGTERM else 130)
        err = proc.stderr.read()
        assert "resume" in err and "Traceback" not in err
        assert json.loads((run_dir / "manifest.json").read_text())["state"] == "interrupted"
        status = runner.invoke(app, ["batch", "status", str(tmp_path / "out")])
        assert "nightly: interrupted" in status.output and status.exit_code == 3
    else:
        assert proc.returncode == -signal.SIGKILL
        status = runner.invoke(app, ["batch", "status", str(tmp_path / "out")])
        assert "nightly: stopped" in status.output
    # the orphaned workers notice and exit (they never write anything themselves)
    _wait_for(lambda: not any(_alive(w) for w in workers), 10, "the workers to exit")
    assert batch.lock_holder(tmp_path / "out") is None
    result = cli("batch", "run", str(path), "--run-id", "nightly", "--log-json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    start = next(json.loads(line) for line in result.stderr.splitlines()
                 if '"run_start"' in line)
    assert start["resumed"] == done_before and start["todo"] == 8 - done_before
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["state"] == "finished" and manifest["counts"]["ok"] == 8
    table = forecasts(run_dir)
    assert table.groupby("unique_id").size().to_dict() == {f"S{i:02d}": 5 for i in range(8)}
    for entry in manifest["series"]:
        folder = run_dir / "series" / entry["slug"]
        assert io.load_model(folder / "model.npz").manifest["model"]["name"] == "gru"
        assert len(pd.read_csv(folder / "forecast.csv")) == 5
    leftovers = [p for p in tmp_path.joinpath("out").rglob("*.tmp")]
    assert not leftovers, leftovers


# ---- refit policies and --as-of ----------------------------------------------------------
def test_refit_policies_and_as_of(tmp_path):
    make_series(tmp_path / "data", 1, 400)  # 2005-06 to 2007-01
    path = write_batch(tmp_path, top="", defaults=DEFAULTS + "\n[refit]\npolicy = \"never\"\n")
    config = batch.load_config(path).with_engine(workers=1)
    first = batch.run_batch(config, run_id="a", as_of="2006-06-30")
    assert first.exit_code == 0
    entries = {e["id"]: e for e in first.manifest["series"]}
    assert entries["S00"]["action"] == "fit" and entries["S00"]["reason"] == "no saved model"
    assert pd.Timestamp(entries["S00"]["last_timestamp"]) <= pd.Timestamp("2006-06-30")
    fc = forecasts(first.run_dir)
    assert pd.to_datetime(fc["ds"]).min() > pd.Timestamp("2006-06-30")
    # never: the saved model forecasts from the newer data, no training
    second = batch.run_batch(config, run_id="b", as_of="2006-08-31")
    entries = {e["id"]: e for e in second.manifest["series"]}
    assert entries["S00"]["action"] == "reuse" and "fit" not in entries["S00"]["seconds"]
    assert pd.to_datetime(forecasts(second.run_dir)["ds"]).min() > pd.Timestamp("2006-08-31")
    assert (second.run_dir / "series" / "S00" / "model.npz").read_bytes() == \
        (first.run_dir / "series" / "S00" / "model.npz").read_bytes()
    # auto: a model fitted as of June is 62 days old at the end of August
    auto = batch.parse_config({**_toml(path), "refit": {"policy": "auto", "max_age_days": 30}},
                              tmp_path)
    third = batch.run_batch(auto.with_engine(workers=1), run_id="c", as_of="2006-08-31")
    e = {x["id"]: x for x in third.manifest["series"]}["S00"]
    assert e["action"] == "refit" and "62.0 days old" in e["reason"]
    # ... and is reused when young enough, after checking its error on the new data
    lenient = batch.parse_config({**_toml(path), "refit": {"policy": "auto", "max_age_days": 90,
                                                           "max_degradation": 100.0}}, tmp_path)
    fourth = batch.run_batch(lenient.with_engine(workers=1), run_id="d", as_of="2006-09-30")
    e = {x["id"]: x for x in fourth.manifest["series"]}["S00"]
    assert e["action"] == "reuse" and e["recent"]["windows"] >= 1, e
    strict = batch.parse_config({**_toml(path), "refit": {"policy": "auto", "max_age_days": 90,
                                                          "max_degradation": 0.0}}, tmp_path)
    fifth = batch.run_batch(strict.with_engine(workers=1), run_id="e", as_of="2006-09-30")
    e = {x["id"]: x for x in fifth.manifest["series"]}["S00"]
    assert e["action"] == "refit" and e["reason"].startswith("degraded: MAE"), e
    # a past run is reproducible: fitting again as of the same date (in a fresh folder, so
    # that no later saved model is reused) gives the first run's forecasts, bit for bit
    fresh = batch.parse_config({**_toml(path), "output": "out2"}, tmp_path)
    again = batch.run_batch(fresh.with_engine(workers=1), run_id="a", as_of="2006-06-30")
    pd.testing.assert_frame_equal(forecasts(again.run_dir), fc, check_exact=True)


def _toml(path: Path) -> dict:
    import tomllib

    return tomllib.loads(path.read_text())


def test_as_of_before_the_data_and_bad_run_ids_are_clear_errors(tmp_path):
    make_series(tmp_path / "data", 1, 60)
    path = write_batch(tmp_path)
    result = runner.invoke(app, ["batch", "run", str(path), "--as-of", "not-a-date"])
    assert result.exit_code == 1 and "not a timestamp" in result.output
    result = runner.invoke(app, ["batch", "run", str(path), "--run-id", "../x"])
    assert result.exit_code == 1 and "run id '../x' is not valid" in result.output
    config = batch.load_config(path).with_engine(workers=1)
    outcome = batch.run_batch(config, run_id="early", as_of="1990-01-01")
    assert outcome.exit_code == 3
    assert "no rows on or before" in outcome.manifest["series"][0]["error"]


class _KillsItsWorker:
    """Unpickling this in a worker process ends the process at once (like the OOM killer)."""

    def __reduce__(self):
        return (os._exit, (1,))


def test_a_worker_that_dies_fails_only_its_own_series(tmp_path, monkeypatch):
    make_series(tmp_path / "data", 4, 200)
    path = write_batch(tmp_path)
    real = batch.run.load_series

    def load(item, as_of=None):
        return _KillsItsWorker() if item.uid == "S01" else real(item, as_of)

    monkeypatch.setattr(batch.run, "load_series", load)
    outcome = batch.run_batch(batch.load_config(path), run_id="crash")
    status = {e["id"]: e for e in outcome.manifest["series"]}
    assert outcome.exit_code == 3
    assert {k: v["status"] for k, v in status.items()} == {"S00": "ok", "S01": "failed",
                                                           "S02": "ok", "S03": "ok"}
    assert "worker process died" in status["S01"]["error"]
    events = [json.loads(line) for line in (outcome.run_dir / "log.jsonl").read_text()
              .splitlines()]
    assert any(e["event"] == "worker_died" for e in events)
    assert len(forecasts(outcome.run_dir)) == 15


def test_example_batch_file_validates_and_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["batch", "example", "nightly.toml"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["batch", "example", "nightly.toml"])
    assert result.exit_code == 2 and "exists" in result.output
    result = runner.invoke(app, ["batch", "validate", "nightly.toml"])
    assert result.exit_code == 0 and "valid: 3 series" in result.output
    path = tmp_path / "nightly.toml"
    path.write_text(path.read_text().replace("epochs = 10", "epochs = 1"))
    result = cli("batch", "run", "nightly.toml", "--as-of", "2017-12-29", "--run-id", "x",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(tmp_path / "batch-out" / "runs" / "x" / "forecasts.csv")
    assert table.groupby("unique_id").size().to_dict() == {"aapl": 5, "goog": 5,
                                                           "seattle-weather": 7}
    assert set(table.loc[table["unique_id"] == "goog", "model"]) == {"lstm"}


def test_a_recursive_glob_never_reads_the_batch_outputs(tmp_path):
    make_series(tmp_path / "data", 2, 60)
    path = tmp_path / "batch.toml"
    path.write_text('output = "data/out"\n[defaults]\ntarget = "Close"\n[[sources]]\n'
                    'path = "**/*.csv"\n')
    (tmp_path / "data" / "out" / "runs" / "r").mkdir(parents=True)
    (tmp_path / "data" / "out" / "runs" / "r" / "forecasts.csv").write_text("ds,yhat\n")
    items = batch.plan_series(batch.load_config(path))
    assert [it.uid for it in items] == ["S00", "S01"]
