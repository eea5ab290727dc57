"""The ``forecast`` command line: the only layer that prints or exits.

One Typer app per job, each a thin call into the library:

``fit``       `forecast fit`, `forecast predict`            (forecast.workflows, forecast.io)
``backtest``  `forecast backtest`                           (forecast.workflows)
``report``    `forecast report`                             (forecast.report)
``tools``     `forecast datasets`, `warmup`, `demo`         (forecast.datasets, workflows)
``batch``     `forecast batch run|validate|example|status`  (forecast.batch)
``ui``        errors -> one line and an exit code, progress bars, tables
``options``   command-line text -> library values, ``--config`` TOML

Heavy library modules (numpy, pandas, numba, plotly behind `forecast.io`,
`forecast.report`, `forecast.batch`) are imported inside the commands that need them,
so ``forecast --help`` stays under 0.5 s (`benchmarks/cli.py`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from forecast.cli import backtest, batch, fit, report, tools
from forecast.cli.options import read_config, show_version
from forecast.cli.ui import EXIT_ERROR, EXIT_OK, EXIT_USAGE, ForecastGroup, Settings, \
    help_without_command

__all__ = ["app", "EXIT_OK", "EXIT_ERROR", "EXIT_USAGE"]

app = typer.Typer(cls=ForecastGroup, no_args_is_help=False, add_completion=False,
                  pretty_exceptions_enable=False, rich_markup_mode=None,
                  context_settings={"help_option_names": ["--help"]})


@app.callback(invoke_without_command=True)
def main(ctx: typer.Context,
         version: bool = typer.Option(False, "--version", callback=show_version, is_eager=True,
                                      help="Show the version and exit."),
         quiet: bool = typer.Option(False, "--quiet", "-q",
                                    help="Print only errors and the output you asked for."),
         debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
         config: Optional[Path] = typer.Option(
             None, "--config", metavar="TOML",
             help="Read options from a TOML file (top-level keys or [command] tables); "
                  "command-line values win.")) -> None:
    """Light, fast, reproducible time-series forecasting: fit, predict, backtest and report.

    Global options go before the command. Exit codes: 0 success, 1 data or runtime
    error, 2 usage error.

    Example: forecast --config forecast.toml backtest aapl --models gru,naive
    """
    ctx.obj = Settings(quiet=quiet, debug=debug)
    if config is not None:
        ctx.default_map = read_config(ctx, config)
    help_without_command(ctx)


for _job in (fit, backtest, report, tools):  # their commands, in this order, at the top level
    app.registered_commands.extend(_job.app.registered_commands)
batch.app.callback(invoke_without_command=True)(help_without_command)
app.add_typer(batch.app, name="batch")
