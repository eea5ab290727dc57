"""What the command line shows and how it fails: the error-handling group, settings
(--quiet, --debug), messages, progress bars and tables. The only place (with the
commands) that prints or exits.

Library errors (`ForecastError`) become one line on stderr and exit code 1; usage errors
(bad options, `typer.BadParameter`) one line and exit code 2; ``--debug`` shows tracebacks.
rich is imported where a bar or table is drawn, so ``forecast --help`` stays fast.
"""

from __future__ import annotations

import math
import sys
import warnings
from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperGroup

from forecast.errors import ForecastError

__all__ = ["EXIT_OK", "EXIT_ERROR", "EXIT_USAGE", "ForecastGroup", "Settings", "get_settings",
           "say", "run_body", "one_line", "console", "Bars", "BatchBar", "table", "show",
           "METRIC_COLUMNS", "metric_columns", "data_notes", "help_without_command"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


class ForecastGroup(TyperGroup):
    """Usage errors as one line (``error: ... (see 'forecast fit --help')``), exit 2.

    Only public Typer API: every usage error Typer raises is a `typer.TyperException`
    with ``format_message()``, ``exit_code`` and (mostly) ``ctx``."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True,
             **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, False, **extra)
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            sys.exit(EXIT_ERROR)
        except typer.TyperException as exc:
            if not hasattr(exc, "format_message"):
                raise
            ctx = getattr(exc, "ctx", None)
            where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            message = " ".join(exc.format_message().split())
            typer.echo(f"error: {message}{where}", err=True)
            sys.exit(getattr(exc, "exit_code", EXIT_USAGE))
        sys.exit(rv if isinstance(rv, int) else EXIT_OK)


def help_without_command(ctx: typer.Context) -> None:
    """A group called without a command: its help on stdout, exit 2 (usage)."""
    if ctx.invoked_subcommand is None and not ctx.resilient_parsing:
        typer.echo(ctx.get_help())
        raise typer.Exit(EXIT_USAGE)


@dataclass
class Settings:
    quiet: bool = False
    debug: bool = False


# ---- helpers ---------------------------------------------------------------------------
def get_settings(ctx: typer.Context) -> Settings:
    root = ctx.find_root()
    return root.obj if isinstance(root.obj, Settings) else Settings()


def say(ctx: typer.Context, text: str = "", err: bool = True) -> None:
    if not get_settings(ctx).quiet:
        typer.echo(text, err=err)


def data_notes(ctx: typer.Context, dataset) -> None:
    """What loading the data decided for the user (read day first, decimal commas, times
    converted to UTC, markers replaced: `forecast.data.LoadReport.notes`), on stderr."""
    for note in getattr(getattr(dataset, "report", None), "notes", ()):
        say(ctx, f"data: {note}")


def run_body(ctx: typer.Context, body) -> Any:
    """Run `body()`: warnings to stderr, ForecastError -> one line + exit 1."""
    settings = get_settings(ctx)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = body()
        if not settings.quiet:
            for w in caught:
                typer.echo(f"warning: {one_line(str(w.message))}", err=True)
        return result
    except typer.Exit:
        raise
    except typer.BadParameter:
        raise
    except ForecastError as exc:
        if settings.debug:
            raise
        typer.echo(f"error: {one_line(str(exc))}", err=True)
        raise typer.Exit(EXIT_ERROR)
    except KeyboardInterrupt:
        typer.echo("error: interrupted; no output file was written", err=True)
        raise typer.Exit(130)
    except Exception as exc:  # noqa: BLE001 - the CLI must not show tracebacks
        if settings.debug:
            raise
        typer.echo(f"error: unexpected {type(exc).__name__}: {one_line(str(exc))} (rerun "
                   "with --debug for the traceback and report it)", err=True)
        raise typer.Exit(EXIT_ERROR)


def one_line(text: str) -> str:
    return " ".join(text.split())


def console():
    from rich.console import Console

    return Console(stderr=True)


class Bars:
    """Rich progress bars (stderr) for training epochs, backtest folds and models;
    plain lines when stderr is not a terminal; nothing under --quiet."""

    def __init__(self, ctx: typer.Context, epochs_label: str = "epoch"):
        self.quiet = get_settings(ctx).quiet
        self.live = not self.quiet and sys.stderr.isatty()
        self.tasks: dict[str, int] = {}
        self.progress = None
        if self.live:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

            self.progress = Progress(TextColumn("{task.description:<16}"), BarColumn(),
                                     MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                                     TimeElapsedColumn(), TextColumn("left"),
                                     TimeRemainingColumn(), console=console(), transient=False)

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


def table(title: str, frame, columns: list[tuple[str, str, str]]):
    """A rich table of `frame` rows: (column, header, format) triples."""
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


def show(ctx: typer.Context, renderable) -> None:
    if get_settings(ctx).quiet:
        return
    from rich.console import Console

    Console(width=None if sys.stdout.isatty() else 120).print(renderable)


METRIC_COLUMNS = [("model", "model", ""), ("mae", "MAE", ".4g"), ("rmse", "RMSE", ".4g"),
                   ("mase", "MASE", ".3f"), ("skill_mae", "skill vs naive", "skill"),
                   ("coverage_80", "cover 80%", ".0%"), ("coverage_95", "cover 95%", ".0%"),
                   ("seconds", "seconds", ".1f")]


def metric_columns(frame) -> list[tuple[str, str, str]]:
    """METRIC_COLUMNS with a coverage column for every interval level `frame` has
    (``--levels 90`` shows "cover 90%"), in the order of the levels."""
    levels = sorted((c for c in frame.columns if c.startswith("coverage_")),
                    key=lambda c: float(c[len("coverage_"):].replace("_", ".")))
    cover = [(c, f"cover {c[len('coverage_'):].replace('_', '.')}%", ".0%") for c in levels]
    plain = [c for c in METRIC_COLUMNS if not c[0].startswith("coverage_")]
    return plain[:-1] + cover + plain[-1:]


class BatchBar:
    """Series progress: a rich bar on a terminal, one line per series otherwise, JSON
    lines with --log-json, nothing with --quiet."""

    def __init__(self, ctx: typer.Context, log_json: bool):
        self.quiet = get_settings(ctx).quiet
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
                                         console=console())
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
                    line += f": {one_line(str(info['error']))}"
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
