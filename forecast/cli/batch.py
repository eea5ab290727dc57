"""`forecast batch run | validate | example | status`: scheduled forecasting of many
series (the logic lives in `forecast.batch`; these commands parse, call and print)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from forecast.cli.options import check_output
from forecast.cli.ui import BatchBar, one_line, run_body, say, show, table

if TYPE_CHECKING:  # forecast.batch loads numba: imported in the commands that run
    from forecast.batch import RunManifest

BATCH_FILE_HELP = "The batch TOML file (see README, 'Batch forecasting')."

app = typer.Typer(no_args_is_help=False, add_completion=False, rich_markup_mode=None,
                  help="Scheduled batch forecasting of many series (cron-ready, "
                       "resumable; local process pool or a Dask cluster).\n\n"
                       "Exit codes: 0 every series ok, 3 some series failed or fell "
                       "back to the fallback model, 1 the run could not start (bad "
                       "batch file, lock held), 2 usage error, 130/143 interrupted.")


def batch_config(path: str, engine=None, scheduler=None, workers=None):
    from forecast.batch import load_config

    return load_config(path).with_engine(engine, scheduler, workers)


@app.command("run")
def batch_run(ctx: typer.Context,
              batch_file: str = typer.Argument(..., metavar="BATCH.toml", help=BATCH_FILE_HELP),
              as_of: Optional[str] = typer.Option(None, "--as-of", metavar="TIMESTAMP",
                                                  help="Use only data up to this time "
                                                       "(reproduce a past run), e.g. 2017-06-30."),
              run_id: Optional[str] = typer.Option(None, "--run-id", metavar="ID",
                                                   help="Name of the run (default: the UTC "
                                                        "start time). The same id resumes an "
                                                        "interrupted run."),
              engine: Optional[str] = typer.Option(None, help="local (default) or dask."),
              scheduler: Optional[str] = typer.Option(None, metavar="tcp://HOST:PORT",
                                                      help="Dask scheduler address."),
              workers: Optional[int] = typer.Option(None, min=1,
                                                    help="Local worker processes (default: "
                                                         "the CPU cores)."),
              log_json: bool = typer.Option(False, "--log-json",
                                            help="Log JSON lines on stderr instead of a "
                                                 "progress bar (for cron and systemd).")) -> None:
    """Forecast every series of a batch file: per-series forecasts, model files and
    reports, a combined forecast table, a manifest and a summary page.

    Example: forecast batch run nightly.toml --run-id "$(date +%F)"
    """
    bar = BatchBar(ctx, log_json)

    def body():
        from forecast.batch import Stopped, run_batch

        config = batch_config(batch_file, engine, scheduler, workers)
        try:
            return run_batch(config, run_id=run_id, as_of=as_of, progress=bar, log=bar.log)
        except Stopped:
            bar.close()
            typer.echo("error: stopped (SIGTERM); finished series are kept: run again with "
                       "the same --run-id to resume", err=True)
            raise typer.Exit(143)
        except KeyboardInterrupt:
            bar.close()
            typer.echo("error: interrupted; finished series are kept: run again with the "
                       "same --run-id to resume", err=True)
            raise typer.Exit(130)
        finally:
            bar.close()

    outcome = run_body(ctx, body)
    _batch_report(ctx, outcome.manifest, outcome.run_dir, resumed=outcome.resumed,
                  stale=outcome.stale_lock)
    raise typer.Exit(outcome.exit_code)


def _batch_report(ctx, manifest: RunManifest, run_dir, resumed: int = 0, stale=None) -> None:
    import pandas as pd

    from forecast.batch import not_ok

    c = manifest["counts"]
    if stale:
        say(ctx, f"note: took over a stale lock of pid {stale.get('pid')} (run "
                  f"{stale.get('run_id')!r}), whose process had died")
    rows = not_ok(manifest)
    if rows:
        frame = pd.DataFrame([{"series": e["id"], "status": e["status"],
                               "error": one_line(str(e.get("error") or ""))[:160]}
                              for e in rows[:50]])
        show(ctx, table(f"Series not ok ({len(rows)})", frame,
                           [("series", "series", ""), ("status", "status", ""),
                            ("error", "error", "")]))
    secs = manifest.get("seconds")
    say(ctx, f"run {manifest['run_id']} {manifest['state']}: {c.get('ok', 0)} ok, "
              f"{c.get('fallback', 0)} fallback, {c.get('failed', 0)} failed"
              + (f", {c.get('pending', 0)} pending" if c.get("pending") else "")
              + (f" ({resumed} resumed)" if resumed else "")
              + (f" in {secs:.0f} s" if secs is not None else ""), err=False)
    if (Path(run_dir) / "summary.html").is_file():
        say(ctx, f"summary: {Path(run_dir) / 'summary.html'}  forecasts: "
                  f"{Path(run_dir) / 'forecasts.csv'}", err=False)
    elif manifest.get("state") != "finished":
        say(ctx, f"the summary page and the combined forecasts are written when the run "
                  f"finishes; resume it with: forecast batch run <batch file> --run-id "
                  f"{manifest['run_id']}", err=False)


@app.command("validate")
def batch_validate(ctx: typer.Context,
                   batch_file: str = typer.Argument(..., metavar="BATCH.toml",
                                                    help=BATCH_FILE_HELP),
                   data: bool = typer.Option(True, "--data/--no-data",
                                             help="Also load and check every series "
                                                  "(--no-data: the file and globs only)."),
                   as_of: Optional[str] = typer.Option(None, "--as-of", metavar="TIMESTAMP",
                                                       help="Check the data as a run with "
                                                            "this --as-of would see it.")) -> None:
    """Check a batch file without forecasting: keys and values, globs, series ids, and
    (by default) that every series loads and is long enough. Exit 0 all good, 3 some
    series would fail, 1 the batch file is invalid.

    Example: forecast batch validate nightly.toml
    """
    def body():
        import pandas as pd

        from forecast.batch import validate_batch

        config = batch_config(batch_file)
        rows = validate_batch(config, data=data, as_of=as_of)
        return config, pd.DataFrame([r.to_dict() for r in rows])

    config, frame = run_body(ctx, body)
    cols = [("series", "series", ""), ("source", "source", ""), ("model", "model", ""),
            ("horizon", "horizon", ""), ("folds", "folds", ""), ("fallback", "fallback", ""),
            ("rows", "rows", ""), ("problem", "problem", "")]
    shown = frame if len(frame) <= 60 else _problems_first(frame)
    show(ctx, table(f"{len(frame)} series -> {config.output} (engine {config.engine}, "
                       f"refit {config.refit.policy})", shown, cols))
    bad = int((frame["problem"] != "").sum())
    if bad:
        say(ctx, f"{bad} of {len(frame)} series would fail or fall back (see 'problem')",
             err=False)
        raise typer.Exit(3)
    say(ctx, f"{batch_file} is valid: {len(frame)} series", err=False)


def _problems_first(frame, n: int = 60):
    """The rows with a problem first, then the others, `n` rows at most."""
    import pandas as pd

    bad = frame["problem"] != ""
    return pd.concat([frame[bad], frame[~bad]]).head(n)


_EXAMPLE = """\
# A batch file for `forecast batch run` (see the README, "Batch forecasting").
# Paths are relative to this file; bundled dataset names work as paths too.
output = "batch-out"
engine = "local"              # or "dask" with scheduler = "tcp://HOST:8786"
# workers = 2                 # local worker processes (default: the CPU cores)
reports = true                # an HTML report per series

[defaults]                    # every series; [[sources]] and [series.ID] override
model = "gru"                 # gru, lstm, rnn, segrnn, linear, nlinear, naive, seasonal_naive, drift, mean
lookback = 60
epochs = 10
hidden = 32
levels = [80, 95]
folds = 2                     # backtest folds per series, against the naive forecast
fallback = "seasonal_naive"   # when the model's fit fails; "none" records a failure
params = { lr = 0.003 }

[refit]
policy = "always"             # always | never (reuse the saved model) | auto
max_age_days = 7              # auto: refit models older than this
max_degradation = 0.25        # auto: refit when the error since the fit grew by 25 %

[[sources]]                   # one series per file (id = file stem); globs work: data/*.csv
path = "aapl"
horizon = 5
[[sources]]
path = "goog"
horizon = 5
[[sources]]
path = "seattle-weather"
target = "temp_max"
horizon = 7

[series.goog]                 # settings for one series
model = "lstm"
"""


@app.command("example")
def batch_example(ctx: typer.Context,
                  path: str = typer.Argument("batch.toml", metavar="PATH",
                                             help="Where to write the example batch file."),
                  force: bool = typer.Option(False, "--force", help="Overwrite PATH.")) -> None:
    """Write a commented example batch file that forecasts the bundled datasets.

    Example: forecast batch example nightly.toml && forecast batch run nightly.toml
    """
    check_output(path, "PATH")
    if Path(path).exists() and not force:
        raise typer.BadParameter(f"{path} exists; give another path or --force",
                                 param_hint="PATH")

    def body():
        from forecast.files import atomic_write

        with atomic_write(path, "w") as fh:
            fh.write(_EXAMPLE)

    run_body(ctx, body)
    say(ctx, f"wrote {path}; check it with: forecast batch validate {path}", err=False)


@app.command("status")
def batch_status(ctx: typer.Context,
                 output_dir: str = typer.Argument(..., metavar="OUTPUT_DIR",
                                                  help="The output folder of a batch file."),
                 run_id: Optional[str] = typer.Option(None, "--run-id", metavar="ID",
                                                      help="Which run (default: the latest)."),
                 as_json: bool = typer.Option(False, "--json", help="Print the manifest as "
                                                                    "JSON.")) -> None:
    """Show the state of the latest (or a given) run of a batch output folder: running,
    finished, interrupted or stopped, counts per status, series not ok. Exit 0 finished
    with every series ok, 3 otherwise, 1 not a batch output folder.

    Example: forecast batch status nightly-out
    """
    def body():
        from forecast.batch import read_status

        return read_status(output_dir, run_id)

    manifest = run_body(ctx, body)
    from forecast.batch import manifest_exit_code

    if as_json:
        import json

        typer.echo(json.dumps(manifest, indent=1, default=str))
    else:
        lock = manifest.get("lock")
        say(ctx, f"run {manifest['run_id']}: {manifest['state']}"
                  + (f", as of {manifest['as_of']}" if manifest.get("as_of") else "")
                  + f", started {manifest['started']}"
                  + (f", finished {manifest['finished']}" if manifest.get("finished") else ""),
             err=False)
        if lock:
            say(ctx, f"locked by pid {lock.get('pid')} on {lock.get('host')} (run "
                      f"{lock.get('run_id')!r}) since {lock.get('since')}", err=False)
        _batch_report(ctx, manifest, manifest["run_dir"])
        if len(manifest.get("runs", [])) > 1:
            say(ctx, f"runs: {', '.join(manifest['runs'][-10:])}", err=False)
    raise typer.Exit(manifest_exit_code(manifest))
