"""`forecast datasets`, `forecast warmup` and `forecast demo`: the bundled data, the
kernel cache and the demonstration."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from forecast.cli.options import split_list
from forecast.cli.ui import Bars, metric_columns, run_body, say, show, table
from forecast.errors import ConfigError, OutputError

app = typer.Typer()


@app.command()
def datasets(ctx: typer.Context) -> None:
    """List the bundled datasets (every command takes these names where it takes a file).

    Example: forecast datasets
    """
    def body():
        from forecast import datasets as ds

        return ds.list_datasets()

    for info in run_body(ctx, body):
        typer.echo(f"{info.name:16s} target {info.target:9s} {info.description}")


@app.command()
def warmup(ctx: typer.Context,
           cells: str = typer.Option("rnn,lstm,gru", help="Cells to compile.")) -> None:
    """Compile and cache the Numba kernels ahead of time (later runs start fast).

    Example: forecast warmup
    """
    names = split_list(cells, "--cells")
    bad = [c for c in names if c not in ("rnn", "lstm", "gru")]
    if bad:
        raise typer.BadParameter(f"unknown cell(s) {bad}; choose from rnn, lstm, gru",
                                 param_hint="--cells")

    def body():
        from forecast.workflows import warmup as run_warmup

        return run_warmup(names, progress=lambda what: say(ctx, f"compiling {what} ..."))

    times = run_body(ctx, body)
    for cell, seconds in times.items():
        label = "kernels compiled in parallel" if cell == "parallel" else f"{cell:5s} ready"
        say(ctx, f"{label} in {seconds:.1f} s", err=False)


@app.command()
def demo(ctx: typer.Context,
         output_dir: str = typer.Option("reports/demo", "--output-dir", "-o",
                                        help="Folder for index.html and the per-dataset pages."),
         models: str = typer.Option("gru,lstm", help="Recurrent models to run."),
         epochs: int = typer.Option(8, min=1, help="Most training epochs per fit."),
         folds: int = typer.Option(40, min=1, help="Backtest folds per dataset."),
         embed_plotlyjs: bool = typer.Option(False, help="Embed plotly.js in every page.")) -> None:
    """Fit and backtest recurrent models and baselines on bundled AAPL (Close) and Seattle
    weather (temp_max), then write reports/demo/index.html.

    Example: forecast demo
    """
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise typer.BadParameter(f"{out} is a file", param_hint="--output-dir")
    try:
        from forecast.workflows import check_models

        names = check_models(models)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="--models") from None

    def body():
        from forecast import workflows as wf

        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create {out}: {exc.strerror or exc}") from None
        with Bars(ctx) as bars:
            return wf.demo(out, models=names, epochs=epochs, folds=folds, progress=bars,
                           embed_plotlyjs=embed_plotlyjs)

    t0 = time.perf_counter()
    result = run_body(ctx, body)
    for name, run in result.backtests.items():
        show(ctx, table(f"{name}: {run.result.cutoffs.shape[1]} folds x "
                           f"{run.result.config.horizon} steps", run.result.summary,
                           metric_columns(run.result.summary)))
    say(ctx, f"report: {result.index} ({time.perf_counter() - t0:.0f} s)", err=False)
