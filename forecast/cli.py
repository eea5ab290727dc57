"""The ``forecast`` command line: the only layer that prints or exits.

Every command parses its options, calls the library (`forecast.workflows`,
`forecast.io`, `forecast.report`) and prints. Library errors (`ForecastError`) become
one line on stderr and exit code 1; bad options and usage are exit code 2; ``--debug``
shows tracebacks. Heavy modules (numba, pandas, plotly) are imported inside the
commands, so ``forecast --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional

import typer
from typer.core import TyperGroup

try:  # typer >= 0.29 vendors click
    from typer._click import exceptions as _cx
except ImportError:  # pragma: no cover - older typer depends on click
    from click import exceptions as _cx

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


class _Group(TyperGroup):
    """Usage errors as one line (``error: ... (see 'forecast fit --help')``), exit 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True,
             **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, False, **extra)
        except _cx.NoArgsIsHelpError as exc:
            exc.show()
            sys.exit(EXIT_USAGE)
        except _cx.ClickException as exc:
            ctx = getattr(exc, "ctx", None)
            where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            message = " ".join(exc.format_message().split())
            typer.echo(f"error: {message}{where}", err=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            sys.exit(EXIT_ERROR)
        sys.exit(rv if isinstance(rv, int) else EXIT_OK)


app = typer.Typer(cls=_Group, no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False, rich_markup_mode=None,
                  context_settings={"help_option_names": ["--help"]})


@dataclass
class Settings:
    quiet: bool = False
    debug: bool = False


# ---- helpers ---------------------------------------------------------------------------
def _settings(ctx: typer.Context) -> Settings:
    root = ctx.find_root()
    return root.obj if isinstance(root.obj, Settings) else Settings()


def _say(ctx: typer.Context, text: str = "", err: bool = True) -> None:
    if not _settings(ctx).quiet:
        typer.echo(text, err=err)


def _run(ctx: typer.Context, body) -> Any:
    """Run `body()`: warnings to stderr, ForecastError -> one line + exit 1."""
    import warnings

    from forecast.errors import ForecastError

    settings = _settings(ctx)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = body()
        if not settings.quiet:
            for w in caught:
                typer.echo(f"warning: {_one_line(str(w.message))}", err=True)
        return result
    except typer.Exit:
        raise
    except typer.BadParameter:
        raise
    except ForecastError as exc:
        if settings.debug:
            raise
        typer.echo(f"error: {_one_line(str(exc))}", err=True)
        raise typer.Exit(EXIT_ERROR)
    except KeyboardInterrupt:
        typer.echo("error: interrupted; no output file was written", err=True)
        raise typer.Exit(130)
    except Exception as exc:  # noqa: BLE001 - the CLI must not show tracebacks
        if settings.debug:
            raise
        typer.echo(f"error: unexpected {type(exc).__name__}: {_one_line(str(exc))} (rerun "
                   "with --debug for the traceback and report it)", err=True)
        raise typer.Exit(EXIT_ERROR)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _check_output(path: str | None, option: str, allow_stdout: bool = False) -> None:
    """Fail fast (exit 2) on an output path that cannot be written."""
    if path is None or (allow_stdout and path == "-"):
        return
    p = Path(path)
    if p.is_dir():
        raise typer.BadParameter(f"{path} is a folder; give a file name", param_hint=option)
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise typer.BadParameter(f"folder {folder} does not exist; create it first",
                                 param_hint=option)
    if not os.access(folder, os.W_OK | os.X_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise typer.BadParameter(f"{path} is not writable", param_hint=option)


def _inference_start() -> None:
    """Forecasting a few windows needs no multi-threaded BLAS: pin OpenBLAS to one thread
    through its environment variable (read when it loads); `forecast.nn` then skips its
    run-time pinning, which scans every loaded library with threadpoolctl (~0.3 s of a
    `forecast predict`)."""
    if "numpy" in sys.modules:
        return
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _split(text: str | None, what: str) -> tuple | None:
    if text is None:
        return None
    items = tuple(t.strip() for t in text.split(",") if t.strip())
    if not items:
        raise typer.BadParameter(f"{what} is empty")
    return items


def _levels(text: str) -> tuple[float, ...]:
    try:
        levels = tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a comma-separated list of percentages "
                                 "such as 80,95", param_hint="--levels") from None
    if any(not 0 < lv < 100 for lv in levels):
        raise typer.BadParameter("interval levels are percentages in (0, 100) such as 80,95",
                                 param_hint="--levels")
    return levels


def _params(items: list[str] | None) -> dict[str, Any]:
    from forecast.errors import ConfigError
    from forecast.workflows import parse_param

    out = {}
    for item in items or []:
        try:
            key, value = parse_param(item)
        except ConfigError as exc:
            raise typer.BadParameter(str(exc), param_hint="--param") from None
        out[key] = value
    return out


def _check_spec(spec) -> None:
    from forecast.errors import ConfigError
    from forecast.workflows import check_spec

    try:
        check_spec(spec)
    except ConfigError as exc:
        hint = "--param" if spec.params and "parameter" in str(exc) else "--model"
        raise typer.BadParameter(str(exc), param_hint=hint) from None


def _console():
    from rich.console import Console

    return Console(stderr=True)


class _Bars:
    """Rich progress bars (stderr) for training epochs, backtest folds and models;
    plain lines when stderr is not a terminal; nothing under --quiet."""

    def __init__(self, ctx: typer.Context, epochs_label: str = "epoch"):
        self.quiet = _settings(ctx).quiet
        self.live = not self.quiet and sys.stderr.isatty()
        self.tasks: dict[str, int] = {}
        self.progress = None
        if self.live:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

            self.progress = Progress(TextColumn("{task.description:<16}"), BarColumn(),
                                     MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                                     TimeElapsedColumn(), TextColumn("left"),
                                     TimeRemainingColumn(), console=_console(), transient=False)

    def __enter__(self):
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.stop()

    def _task(self, key: str, total: int, label: str) -> int:
        if key not in self.tasks:
            self.tasks[key] = self.progress.add_task(label, total=max(total, 1), info="")
        return self.tasks[key]

    def __call__(self, event) -> None:
        if self.quiet:
            return
        if event.stage == "compile":
            self._compile(event)
            return
        if not self.live:
            if event.stage == "model" and event.step and event.step == event.total:
                typer.echo(f"  {event.model}: done", err=True)
            elif event.stage == "report":
                typer.echo(f"writing the {event.dataset} report", err=True)
            return
        key = f"{event.dataset}:{event.model}" if event.dataset else event.model
        if event.stage == "epoch":
            info = event.info
            if event.total:  # inside a backtest: one bar per model over folds
                tid = self._task(key, event.total, event.model)
                self.progress.update(tid, info=f"fold {event.step} epoch {info.epoch}/"
                                     f"{info.max_epochs} loss {info.train_loss:.4g}")
            else:
                tid = self._task(key + ":fit", info.max_epochs, f"fit {event.model}")
                val = "" if info.val_loss is None else f" val {info.val_loss:.4g}"
                self.progress.update(tid, completed=info.epoch,
                                     info=f"loss {info.train_loss:.4g}{val}")
                if info.stopped:
                    self.progress.update(tid, total=info.epoch, info=f"early stop, best epoch "
                                         f"{info.best_epoch}")
        elif event.stage == "fold":
            tid = self._task(key, event.total, event.model)
            self.progress.update(tid, completed=event.step, info=f"folds {event.step}/{event.total}")
        elif event.stage == "model" and event.total and event.step == event.total:
            label = f"fit {event.model}" if event.total == 1 else event.model
            tid = self._task(key + (":fit" if event.total == 1 else ""), event.total, label)
            task = self.progress.tasks[tid] if tid < len(self.progress.tasks) else None
            if task is not None and task.total is not None:
                self.progress.update(tid, completed=task.total)
        elif event.stage == "load":
            self.progress.console.print(f"loading {event.dataset}")

    def _compile(self, event) -> None:
        """First run on a machine: the kernels compile once (a bar per kernel done)."""
        if not self.live:
            if event.step == 0:
                typer.echo(f"compiling kernels (once): {event.total} kernel(s), several at "
                           "a time ...", err=True)
            elif event.step == event.total:
                typer.echo("kernels compiled and cached", err=True)
            return
        tid = self._task("compile", event.total, "compiling kernels (once)")
        self.progress.update(tid, completed=event.step, info=event.model)


def _table(title: str, frame, columns: list[tuple[str, str, str]]):
    """A rich table of `frame` rows: (column, header, format) triples."""
    import math

    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for col, header, _fmt in columns:
        if col in frame:
            table.add_column(header, justify="left" if col == "model" else "right")
    for _, row in frame.iterrows():
        cells = []
        for col, _header, fmt in columns:
            if col not in frame:
                continue
            v = row[col]
            if isinstance(v, float) and math.isnan(v):
                cells.append("")
            elif fmt == "skill":
                style = "green" if v > 0 else ("red" if v < 0 else "")
                cells.append(f"[{style}]{v:+.1%}[/{style}]" if style else f"{v:+.1%}")
            elif fmt:
                cells.append(format(v, fmt))
            else:
                cells.append(str(v))
        table.add_row(*cells)
    return table


def _print(ctx: typer.Context, renderable) -> None:
    if _settings(ctx).quiet:
        return
    from rich.console import Console

    Console(width=None if sys.stdout.isatty() else 120).print(renderable)


_METRIC_COLUMNS = [("model", "model", ""), ("mae", "MAE", ".4g"), ("rmse", "RMSE", ".4g"),
                   ("mase", "MASE", ".3f"), ("skill_mae", "skill vs naive", "skill"),
                   ("coverage_80", "cover 80%", ".0%"), ("coverage_95", "cover 95%", ".0%"),
                   ("seconds", "seconds", ".1f")]


# ---- global options --------------------------------------------------------------------
def _version(value: bool) -> None:
    if value:
        from forecast import __version__

        typer.echo(f"forecast {__version__}")
        raise typer.Exit()


def _read_config(ctx: typer.Context, path: Path) -> dict[str, dict[str, Any]]:
    """TOML options: top-level keys apply to every command having that option, a
    ``[command]`` table to that command; unknown keys are usage errors."""
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise typer.BadParameter(f"{path} does not exist", param_hint="--config") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise typer.BadParameter(f"{path} is not valid TOML: {_one_line(str(exc))}",
                                 param_hint="--config") from None
    commands = ctx.command.commands
    shared = {k: v for k, v in data.items() if not isinstance(v, dict)}
    out: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        if isinstance(value, dict) and key not in commands:
            raise typer.BadParameter(f"{path}: [{key}] is not a command; use one of "
                                     f"{', '.join(sorted(commands))}", param_hint="--config")
    known_anywhere = set()
    for name, cmd in commands.items():
        params = {p.name: p for p in cmd.params}
        known_anywhere |= set(params)
        section = {**{k.replace("-", "_"): v for k, v in shared.items()
                      if k.replace("-", "_") in params},
                   **{k.replace("-", "_"): v for k, v in (data.get(name) or {}).items()}}
        unknown = sorted(set(section) - set(params))
        if unknown:
            raise typer.BadParameter(f"{path}: [{name}] has no option(s) {unknown}; valid: "
                                     f"{', '.join(sorted(params))}", param_hint="--config")
        for k, v in list(section.items()):
            if isinstance(v, list) and not getattr(params[k], "multiple", False):
                section[k] = ",".join(map(str, v))
        out[name] = section
    stray = sorted(k.replace("-", "_") for k in shared if k.replace("-", "_") not in known_anywhere)
    if stray:
        raise typer.BadParameter(f"{path}: no command has option(s) {stray}",
                                 param_hint="--config")
    return out


@app.callback()
def main(ctx: typer.Context,
         version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
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
        ctx.default_map = _read_config(ctx, config)


# ---- commands --------------------------------------------------------------------------
_DATA_HELP = "CSV or Parquet file, or a bundled dataset name (see `forecast datasets`)."


def _data_spec(data, target, time_col, id_col, covariates, gaps, freq):
    from forecast.workflows import DataSpec

    if gaps not in ("error", "fill", "drop"):
        raise typer.BadParameter(f"{gaps!r} is not one of error, fill, drop", param_hint="--gaps")
    cov = covariates if covariates == "all" else _split(covariates, "--covariates")
    return DataSpec(data, target=target, time_col=time_col, id_col=id_col, covariates=cov,
                    gaps=gaps, freq=freq)


@app.command()
def fit(ctx: typer.Context,
        data: str = typer.Argument(..., metavar="DATA", help=_DATA_HELP),
        output: str = typer.Option(..., "--output", "-o", metavar="MODEL_FILE",
                                   help="Model file to write (e.g. models/aapl-gru.npz)."),
        target: Optional[str] = typer.Option(None, "--target", "-t",
                                             help="Column to forecast (default: the "
                                                  "dataset's target or its only numeric column)."),
        model: str = typer.Option("gru", "--model", "-m",
                                  help="lstm, gru, rnn, segrnn, linear, nlinear, naive, "
                                       "seasonal_naive, drift, mean or auto (chosen by an "
                                       "inner backtest on the training data)."),
        horizon: Optional[int] = typer.Option(None, min=1, help="Steps to forecast (default: "
                                              "one season: 5 trading days, 7 days, 24 hours)."),
        lookback: Optional[int] = typer.Option(None, min=1, help="Input window length."),
        epochs: Optional[int] = typer.Option(None, min=1, help="Most training epochs."),
        hidden: Optional[int] = typer.Option(None, min=1, help="Hidden units (recurrent)."),
        seed: int = typer.Option(0, help="Random seed: the same seed gives the same model."),
        levels: str = typer.Option("80,95", help="Prediction-interval levels in percent."),
        param: Optional[List[str]] = typer.Option(None, "--param", "-p", metavar="KEY=VALUE",
                                                  help="Any other model parameter "
                                                       "(repeatable), e.g. -p lr=0.003."),
        folds: int = typer.Option(0, min=0, help="Backtest folds to run first; their "
                                  "metrics are stored in the model file."),
        gaps: str = typer.Option("error", help="Missing timestamps: error, fill or drop."),
        freq: Optional[str] = typer.Option(None, help="Frequency alias (h, D, B, XNYS...); "
                                           "default: inferred."),
        time_col: Optional[str] = typer.Option(None, help="Time column (default: detected)."),
        id_col: Optional[str] = typer.Option(None, help="Series id column (long format)."),
        covariates: Optional[str] = typer.Option(None, help="Extra input columns, "
                                                 "comma-separated, or 'all'."),
        report: Optional[str] = typer.Option(None, metavar="HTML",
                                             help="Also write an HTML report of the fit.")) -> None:
    """Fit a model on a data file and save it as a model file.

    Example: forecast fit aapl --target Close --model gru --horizon 5 -o aapl-gru.npz
    """
    _check_output(output, "--output")
    _check_output(report, "--report")
    from forecast.workflows import ModelSpec

    spec = ModelSpec(model, horizon=horizon, lookback=lookback, epochs=epochs, hidden=hidden,
                     seed=seed, levels=_levels(levels), params=_params(param))
    _check_spec(spec)
    dspec = _data_spec(data, target, time_col, id_col, covariates, gaps, freq)

    def body():
        from forecast import workflows as wf

        with _Bars(ctx) as bars:
            run = wf.fit(dspec, spec, folds=folds, progress=bars)
        path = wf.save_fit(run, output)
        if report:
            from forecast import report as rp

            rp.write_report(rp.ReportContent.from_runs(
                f"{run.name} on {run.dataset.name}", run.dataset, fits=[run]), report)
        return run, path

    run, path = _run(ctx, body)
    _fit_summary(ctx, run, path, report)


def _fit_summary(ctx, run, path, report) -> None:
    import pandas as pd

    m = run.model
    row = {"model": run.name, "target": m.target_, "lookback": m.lookback_,
           "horizon": m.horizon_, "epochs": getattr(m, "n_epochs_", None),
           "best": getattr(m, "best_epoch_", None), "fit_seconds": run.seconds}
    if run.losses:
        row["train_loss"], row["val_loss"] = run.losses[-1][0], run.losses[-1][1]
    cols = [("model", "model", ""), ("target", "target", ""), ("lookback", "lookback", ""),
            ("horizon", "horizon", ""), ("epochs", "epochs", ""), ("best", "best epoch", ""),
            ("train_loss", "train loss", ".4g"), ("fit_seconds", "fit s", ".2f")]
    _print(ctx, _table(f"Fitted on {run.dataset.name} ({len(run.dataset)} rows)",
                       pd.DataFrame([row]), cols))
    sel = getattr(m, "selection_", None)
    if sel:
        _say(ctx, f"auto chose {sel['chosen']}: {sel['reason']}", err=False)
    if run.backtest is not None:
        _print(ctx, _table("Backtest", run.backtest.summary, _METRIC_COLUMNS))
    _say(ctx, f"model file: {path}" + (f"  report: {report}" if report else ""), err=False)


@app.command()
def predict(ctx: typer.Context,
            model_file: str = typer.Argument(..., metavar="MODEL_FILE",
                                             help="A model file written by `forecast fit`."),
            data: Optional[str] = typer.Option(None, "--data", "-d",
                                               help="Newer data (same columns and frequency, "
                                                    "continuing the training data): forecast "
                                                    "after its end."),
            output: str = typer.Option("-", "--output", "-o",
                                       help="forecasts.csv, forecasts.parquet or - for CSV on "
                                            "stdout."),
            horizon: Optional[int] = typer.Option(None, min=1,
                                                  help="Steps (at most the fitted horizon).")) -> None:
    """Forecast with a saved model: original units, interval columns
    (unique_id, ds, yhat, yhat_lower_80, yhat_upper_80, ...).

    Example: forecast predict aapl-gru.npz --data newer.csv -o forecasts.csv
    """
    _check_output(output, "--output", allow_stdout=True)
    _inference_start()

    def body():
        from forecast import workflows as wf

        frame, _mf = wf.predict(model_file, data, horizon=horizon)
        if output == "-":
            sys.stdout.write(frame.to_csv(index=False))
            sys.stdout.flush()
        else:
            from forecast.io import write_table

            write_table(frame, output)
        return frame

    frame = _run(ctx, body)
    if output != "-":
        _say(ctx, f"{len(frame)} forecasts written to {output}", err=False)


@app.command()
def backtest(ctx: typer.Context,
             data: str = typer.Argument(..., metavar="DATA", help=_DATA_HELP),
             target: Optional[str] = typer.Option(None, "--target", "-t",
                                                  help="Column to forecast."),
             models: str = typer.Option("gru,naive", help="Comma-separated model names; the "
                                        "naive and seasonal naive baselines always run."),
             folds: int = typer.Option(3, min=1, help="Rolling-origin folds."),
             horizon: Optional[int] = typer.Option(None, min=1, help="Steps per forecast "
                                                   "(default: one season)."),
             step: Optional[int] = typer.Option(None, min=1, help="Rows between cut-offs "
                                                "(default: the horizon)."),
             refit_every: Optional[int] = typer.Option(None, min=0, help="Refit every k folds "
                                                       "(0: once; default: every folds/4, so at "
                                                       "most 4 fits per model)."),
             refit: str = typer.Option("auto", help="fresh, warm (continue training from the "
                                       "last fit) or auto (warm for the recurrent models)."),
             window: str = typer.Option("expanding", help="expanding or sliding training window."),
             lookback: Optional[int] = typer.Option(None, min=1, help="Input window length."),
             epochs: Optional[int] = typer.Option(None, min=1, help="Most training epochs."),
             hidden: Optional[int] = typer.Option(None, min=1, help="Hidden units (recurrent)."),
             seed: int = typer.Option(0, help="Random seed."),
             levels: str = typer.Option("80,95", help="Prediction-interval levels in percent."),
             gaps: str = typer.Option("error", help="Missing timestamps: error, fill or drop."),
             freq: Optional[str] = typer.Option(None, help="Frequency alias; default inferred."),
             time_col: Optional[str] = typer.Option(None, help="Time column."),
             id_col: Optional[str] = typer.Option(None, help="Series id column."),
             output: Optional[str] = typer.Option(None, "--output", "-o", metavar="FILE",
                                                  help="Every forecast row (CSV or Parquet; "
                                                       "default reports/<data>-backtest.csv)."),
             report: Optional[str] = typer.Option(None, metavar="HTML",
                                                  help="Write an HTML report, e.g. "
                                                       "reports/NAME.html.")) -> None:
    """Backtest models against the naive baselines with rolling-origin folds.

    Example: forecast backtest aapl --models lstm,gru,naive --folds 5 --report reports/aapl.html
    """
    from forecast.errors import ConfigError

    if window not in ("expanding", "sliding"):
        raise typer.BadParameter(f"{window!r} is not expanding or sliding", param_hint="--window")
    if refit not in ("fresh", "warm", "auto"):
        raise typer.BadParameter(f"{refit!r} is not fresh, warm or auto", param_hint="--refit")
    if output is None:
        Path("reports").mkdir(exist_ok=True)
        output = str(Path("reports") / f"{Path(data).stem}-backtest.csv")
    _check_output(output, "--output", allow_stdout=True)
    _check_output(report, "--report")
    try:
        from forecast.workflows import BacktestSpec, ModelSpec, check_models

        names = check_models(models)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="--models") from None
    lv = _levels(levels)
    specs = [ModelSpec(n, horizon=horizon, lookback=lookback, epochs=epochs, hidden=hidden,
                       seed=seed, levels=lv) for n in names]
    dspec = _data_spec(data, target, time_col, id_col, None, gaps, freq)
    settings = BacktestSpec(horizon=horizon, folds=folds, step=step, window=window,
                            refit_every=refit_every, refit=refit, levels=lv)

    def body():
        from forecast import workflows as wf
        from forecast.io import write_table

        with _Bars(ctx) as bars:
            run = wf.backtest(dspec, specs, settings, progress=bars)
        if output == "-":
            sys.stdout.write(run.result.forecasts.to_csv(index=False))
        else:
            write_table(run.result.forecasts, output)
        if report:
            from forecast import report as rp

            title = f"Backtest: {run.dataset.name} ({run.dataset.target[0]})"
            rp.write_report(rp.ReportContent.from_runs(title, run.dataset, backtest=run), report)
        return run

    run = _run(ctx, body)
    if output != "-":
        cfg = run.result.config
        _print(ctx, _table(f"Backtest of {run.dataset.name}: {run.result.cutoffs.shape[1]} "
                           f"folds x {cfg.horizon} steps ({run.seconds:.1f} s)",
                           run.result.summary, _METRIC_COLUMNS))
        from forecast.report import skill_verdict

        verdict = skill_verdict(run.result.summary)
        if verdict:
            _say(ctx, verdict, err=False)
        _say(ctx, f"results: {output}" + (f"  report: {report}" if report else ""), err=False)


@app.command("report")
def report_cmd(ctx: typer.Context,
               source: str = typer.Argument(..., metavar="SOURCE",
                                            help="A model file (`forecast fit`) or a backtest "
                                                 "results file (`forecast backtest -o`)."),
               data: Optional[str] = typer.Option(None, "--data", "-d",
                                                  help="The data (needed for backtest "
                                                       "results; for a model file default: "
                                                       "its training data, when found)."),
               target: Optional[str] = typer.Option(None, "--target", "-t",
                                                    help="Target column of --data for a "
                                                         "backtest results file."),
               output: Optional[str] = typer.Option(None, "--output", "-o", metavar="HTML",
                                                    help="Report file (default "
                                                         "reports/<source>.html)."),
               title: Optional[str] = typer.Option(None, help="Page title."),
               embed_plotlyjs: bool = typer.Option(False, help="Embed plotly.js in the page "
                                                   "(about 4.7 MB) instead of writing "
                                                   "plotly.min.js beside it.")) -> None:
    """Build an HTML report from a fit (model file) or a backtest result.

    Example: forecast report aapl-gru.npz -o reports/aapl-gru.html
    (or: forecast report reports/aapl-backtest.csv --data aapl -o reports/aapl.html)
    """
    if output is None:
        Path("reports").mkdir(exist_ok=True)
        output = str(Path("reports") / f"{Path(source).stem}.html")
    _check_output(output, "--output")

    def body():
        from forecast import report as rp
        from forecast import workflows as wf

        if Path(source).suffix.lower() in (".csv", ".parquet", ".pq"):
            if data is None:
                raise typer.BadParameter("a backtest results file needs --data (the data "
                                         "it was run on)", param_hint="--data")
            import pandas as pd

            from forecast.errors import DataError

            try:
                table = pd.read_parquet(source) if source.endswith(("parquet", ".pq")) \
                    else pd.read_csv(source, parse_dates=["cutoff", "ds"])
            except (OSError, ValueError) as exc:
                raise DataError(f"cannot read backtest results {source}: {exc}") from None
            dataset = wf.load_data(wf.DataSpec(data, target=target))
            content = rp.ReportContent.from_backtest_table(
                table, dataset, title or f"Backtest: {Path(source).stem}")
        else:
            from forecast import io

            mf = io.load_model(source)
            src = data or (mf.manifest.get("extra") or {}).get("data_source")
            dataset = None
            if src is not None and (data is not None or _exists_or_bundled(src)):
                dataset = wf.load_new_data(mf, src)
            content = rp.ReportContent.from_model_file(mf, dataset)
            if title:
                content.title = title
        return rp.write_report(content, output, embed_plotlyjs=embed_plotlyjs)

    path = _run(ctx, body)
    _say(ctx, f"report: {path} ({path.stat().st_size / 1e6:.2f} MB)", err=False)


def _exists_or_bundled(src: str) -> bool:
    from forecast.data._bundled import bundled_info

    return bundled_info(src) is not None or Path(src).is_file()


@app.command()
def datasets(ctx: typer.Context) -> None:
    """List the bundled datasets (every command takes these names where it takes a file).

    Example: forecast datasets
    """
    def body():
        from forecast import datasets as ds

        return ds.list_datasets()

    for info in _run(ctx, body):
        typer.echo(f"{info.name:16s} target {info.target:9s} {info.description}")


@app.command()
def warmup(ctx: typer.Context,
           cells: str = typer.Option("rnn,lstm,gru", help="Cells to compile.")) -> None:
    """Compile and cache the Numba kernels ahead of time (later runs start fast).

    Example: forecast warmup
    """
    names = _split(cells, "--cells")
    bad = [c for c in names if c not in ("rnn", "lstm", "gru")]
    if bad:
        raise typer.BadParameter(f"unknown cell(s) {bad}; choose from rnn, lstm, gru",
                                 param_hint="--cells")

    def body():
        from forecast.workflows import warmup as run_warmup

        return run_warmup(names, progress=lambda what: _say(ctx, f"compiling {what} ..."))

    times = _run(ctx, body)
    for cell, seconds in times.items():
        label = "kernels compiled in parallel" if cell == "parallel" else f"{cell:5s} ready"
        _say(ctx, f"{label} in {seconds:.1f} s", err=False)


@app.command()
def demo(ctx: typer.Context,
         output_dir: str = typer.Option("reports/demo", "--output-dir", "-o",
                                        help="Folder for index.html and the per-dataset pages."),
         models: str = typer.Option("gru,lstm", help="Recurrent models to run."),
         epochs: int = typer.Option(8, min=1, help="Most training epochs per fit."),
         folds: int = typer.Option(12, min=1, help="Backtest folds per dataset."),
         embed_plotlyjs: bool = typer.Option(False, help="Embed plotly.js in every page.")) -> None:
    """Fit and backtest recurrent models and baselines on bundled AAPL (Close) and Seattle
    weather (temp_max), then write reports/demo/index.html.

    Example: forecast demo
    """
    from forecast.errors import ConfigError

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
            from forecast.io import OutputError

            raise OutputError(f"cannot create {out}: {exc.strerror or exc}") from None
        with _Bars(ctx) as bars:
            return wf.demo(out, models=names, epochs=epochs, folds=folds, progress=bars,
                           embed_plotlyjs=embed_plotlyjs)

    t0 = time.perf_counter()
    result = _run(ctx, body)
    for name, run in result.backtests.items():
        _print(ctx, _table(f"{name}: {run.result.cutoffs.shape[1]} folds x "
                           f"{run.result.config.horizon} steps", run.result.summary,
                           _METRIC_COLUMNS))
    _say(ctx, f"report: {result.index} ({time.perf_counter() - t0:.0f} s)", err=False)



# ---- batch -----------------------------------------------------------------------------
batch_app = typer.Typer(cls=TyperGroup, no_args_is_help=True, add_completion=False,
                        rich_markup_mode=None,
                        help="Scheduled batch forecasting of many series (cron-ready, "
                             "resumable; local process pool or a Dask cluster).\n\n"
                             "Exit codes: 0 every series ok, 3 some series failed or fell "
                             "back to the fallback model, 1 the run could not start (bad "
                             "batch file, lock held), 2 usage error, 130/143 interrupted.")
app.add_typer(batch_app, name="batch")

_BATCH_FILE_HELP = "The batch TOML file (see README, 'Batch forecasting')."


def _batch_config(path: str, engine=None, scheduler=None, workers=None):
    from forecast.batch import load_config

    return load_config(path).with_engine(engine, scheduler, workers)


class _BatchBar:
    """Series progress: a rich bar on a terminal, one line per series otherwise, JSON
    lines with --log-json, nothing with --quiet."""

    def __init__(self, ctx: typer.Context, log_json: bool):
        self.quiet = _settings(ctx).quiet
        self.log_json = log_json
        self.live = not self.quiet and not log_json and sys.stderr.isatty()
        self.progress = None
        self.task = None
        self.n = 0
        self.total = 0

    def log(self, record: dict) -> None:
        if self.log_json:
            import json

            typer.echo(json.dumps(record, default=str), err=True)

    def __call__(self, stage: str, info: dict) -> None:
        if self.quiet or self.log_json:
            return
        if stage == "start":
            self.total, self.n = info["total"], info["done"]
            if self.live:
                from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                           TimeElapsedColumn, TimeRemainingColumn)

                self.progress = Progress(TextColumn("series"), BarColumn(), MofNCompleteColumn(),
                                         TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                                         TextColumn("left"), TimeRemainingColumn(),
                                         console=_console())
                self.progress.start()
                self.task = self.progress.add_task("series", total=max(self.total, 1),
                                                   completed=self.n, info="")
            elif self.n:
                typer.echo(f"resuming: {self.n} of {self.total} series already done", err=True)
        elif stage == "series":
            self.n += 1
            status = info["status"]
            text = f"{info['id']} {status}"
            if self.progress is not None:
                self.progress.update(self.task, completed=self.n, info=text[:40])
                if status != "ok":
                    self.progress.console.print(f"{info['id']}: {status}: {info.get('error')}")
            else:
                secs = (info.get("seconds") or {}).get("total")
                line = f"[{self.n}/{self.total}] {info['id']}: {status}"
                line += f" ({info.get('model')}, {info.get('action')}" if info.get("model") else ""
                line += f", {secs:.1f} s)" if info.get("model") and secs is not None else (
                    ")" if info.get("model") else "")
                if info.get("error"):
                    line += f": {_one_line(str(info['error']))}"
                typer.echo(line, err=True)
        elif stage == "compile" and info["done"] == 0:
            typer.echo(f"compiling kernels (once): {info['total']} kernel(s), several at a "
                       "time ...", err=True)
        elif stage == "end":
            self.close()

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


@batch_app.command("run")
def batch_run(ctx: typer.Context,
              batch_file: str = typer.Argument(..., metavar="BATCH.toml", help=_BATCH_FILE_HELP),
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
    bar = _BatchBar(ctx, log_json)

    def body():
        from forecast.batch import run_batch
        from forecast.batch.engine import _Stop

        config = _batch_config(batch_file, engine, scheduler, workers)
        try:
            return run_batch(config, run_id=run_id, as_of=as_of, progress=bar, log=bar.log)
        except _Stop:
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

    outcome = _run(ctx, body)
    _batch_report(ctx, outcome.manifest, outcome.run_dir, resumed=outcome.resumed,
                  stale=outcome.stale_lock)
    raise typer.Exit(outcome.exit_code)


def _batch_report(ctx, manifest: dict, run_dir, resumed: int = 0, stale=None) -> None:
    import pandas as pd

    c = manifest["counts"]
    if stale:
        _say(ctx, f"note: took over a stale lock of pid {stale.get('pid')} (run "
                  f"{stale.get('run_id')!r}), whose process had died")
    rows = [e for e in manifest["series"] if e["status"] in ("failed", "fallback")]
    if rows:
        frame = pd.DataFrame([{"series": e["id"], "status": e["status"],
                               "error": _one_line(str(e.get("error") or ""))[:160]}
                              for e in rows[:50]])
        _print(ctx, _table(f"Series not ok ({len(rows)})", frame,
                           [("series", "series", ""), ("status", "status", ""),
                            ("error", "error", "")]))
    secs = manifest.get("seconds")
    _say(ctx, f"run {manifest['run_id']} {manifest['state']}: {c.get('ok', 0)} ok, "
              f"{c.get('fallback', 0)} fallback, {c.get('failed', 0)} failed"
              + (f", {c.get('pending', 0)} pending" if c.get("pending") else "")
              + (f" ({resumed} resumed)" if resumed else "")
              + (f" in {secs:.0f} s" if secs is not None else ""), err=False)
    if (Path(run_dir) / "summary.html").is_file():
        _say(ctx, f"summary: {Path(run_dir) / 'summary.html'}  forecasts: "
                  f"{Path(run_dir) / 'forecasts.csv'}", err=False)
    elif manifest.get("state") != "finished":
        _say(ctx, f"the summary page and the combined forecasts are written when the run "
                  f"finishes; resume it with: forecast batch run <batch file> --run-id "
                  f"{manifest['run_id']}", err=False)


@batch_app.command("validate")
def batch_validate(ctx: typer.Context,
                   batch_file: str = typer.Argument(..., metavar="BATCH.toml",
                                                    help=_BATCH_FILE_HELP),
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
    import warnings

    def body():
        import pandas as pd

        from forecast.batch import load_series, plan_series
        from forecast.batch.engine import _as_of
        from forecast.errors import ForecastError
        from forecast.workflows import default_horizon

        config = _batch_config(batch_file)
        items = plan_series(config)
        when = _as_of(as_of)
        rows = []
        for it in items:
            s = it.settings
            row = {"series": it.uid, "source": Path(it.file).name, "model": s.model,
                   "horizon": s.horizon, "folds": s.folds, "fallback": s.fallback,
                   "rows": None, "problem": it.error or ""}
            if data and not it.error:
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        ds = load_series(it, when)
                    row["rows"] = len(ds)
                    horizon = s.horizon or default_horizon(ds)
                    row["horizon"] = horizon
                    from forecast.workflows import ModelSpec, build_model

                    model = build_model(ModelSpec(s.model, lookback=s.lookback,
                                                  params=dict(s.params)), horizon)
                    lookback = int(model.get_params().get("lookback") or 1)
                    need = lookback + horizon * (1 + s.folds)
                    if len(ds) < need:
                        row["problem"] = (f"{len(ds)} rows; {s.model} with {s.folds} folds "
                                          f"needs about {need}")
                except ForecastError as exc:
                    row["problem"] = _one_line(str(exc))
            rows.append(row)
        return config, pd.DataFrame(rows)

    config, frame = _run(ctx, body)
    cols = [("series", "series", ""), ("source", "source", ""), ("model", "model", ""),
            ("horizon", "horizon", ""), ("folds", "folds", ""), ("fallback", "fallback", ""),
            ("rows", "rows", ""), ("problem", "problem", "")]
    shown = frame if len(frame) <= 60 else _problems_first(frame)
    _print(ctx, _table(f"{len(frame)} series -> {config.output} (engine {config.engine}, "
                       f"refit {config.refit.policy})", shown, cols))
    bad = int((frame["problem"] != "").sum())
    if bad:
        _say(ctx, f"{bad} of {len(frame)} series would fail or fall back (see 'problem')",
             err=False)
        raise typer.Exit(3)
    _say(ctx, f"{batch_file} is valid: {len(frame)} series", err=False)


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


@batch_app.command("example")
def batch_example(ctx: typer.Context,
                  path: str = typer.Argument("batch.toml", metavar="PATH",
                                             help="Where to write the example batch file."),
                  force: bool = typer.Option(False, "--force", help="Overwrite PATH.")) -> None:
    """Write a commented example batch file that forecasts the bundled datasets.

    Example: forecast batch example nightly.toml && forecast batch run nightly.toml
    """
    _check_output(path, "PATH")
    if Path(path).exists() and not force:
        raise typer.BadParameter(f"{path} exists; give another path or --force",
                                 param_hint="PATH")

    def body():
        from forecast.io import atomic_write

        with atomic_write(path, "w") as fh:
            fh.write(_EXAMPLE)

    _run(ctx, body)
    _say(ctx, f"wrote {path}; check it with: forecast batch validate {path}", err=False)


@batch_app.command("status")
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

    manifest = _run(ctx, body)
    from forecast.batch.engine import manifest_exit_code

    if as_json:
        import json

        typer.echo(json.dumps(manifest, indent=1, default=str))
    else:
        lock = manifest.get("lock")
        _say(ctx, f"run {manifest['run_id']}: {manifest['state']}"
                  + (f", as of {manifest['as_of']}" if manifest.get("as_of") else "")
                  + f", started {manifest['started']}"
                  + (f", finished {manifest['finished']}" if manifest.get("finished") else ""),
             err=False)
        if lock:
            _say(ctx, f"locked by pid {lock.get('pid')} on {lock.get('host')} (run "
                      f"{lock.get('run_id')!r}) since {lock.get('since')}", err=False)
        _batch_report(ctx, manifest, manifest["run_dir"])
        if len(manifest.get("runs", [])) > 1:
            _say(ctx, f"runs: {', '.join(manifest['runs'][-10:])}", err=False)
    raise typer.Exit(manifest_exit_code(manifest))


if __name__ == "__main__":  # pragma: no cover
    app()
