"""Turning command-line text into library values: lists, interval levels, model
parameters, data options, output paths and the ``--config`` TOML file. Bad values are
`typer.BadParameter` (exit 2)."""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path
from typing import Any

import typer

from forecast.cli.ui import one_line
from forecast.errors import ConfigError
from forecast.workflows import DataSpec, check_spec, parse_param

__all__ = ["DATA_HELP", "split_list", "parse_levels", "parse_params", "check_model_spec",
           "data_spec", "check_output", "inference_start", "read_config", "show_version"]

DATA_HELP = "CSV or Parquet file, or a bundled dataset name (see `forecast datasets`)."


def split_list(text: str | None, what: str) -> tuple | None:
    if text is None:
        return None
    items = tuple(t.strip() for t in text.split(",") if t.strip())
    if not items:
        raise typer.BadParameter(f"{what} is empty")
    return items


def parse_levels(text: str) -> tuple[float, ...]:
    try:
        levels = tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a comma-separated list of percentages "
                                 "such as 80,95", param_hint="--levels") from None
    if any(not 0 < lv < 100 for lv in levels):
        raise typer.BadParameter("interval levels are percentages in (0, 100) such as 80,95",
                                 param_hint="--levels")
    return levels


def parse_params(items: list[str] | None) -> dict[str, Any]:
    out = {}
    for item in items or []:
        try:
            key, value = parse_param(item)
        except ConfigError as exc:
            raise typer.BadParameter(str(exc), param_hint="--param") from None
        out[key] = value
    return out


def check_model_spec(spec) -> None:
    try:
        check_spec(spec)
    except ConfigError as exc:
        hint = "--param" if spec.params and "parameter" in str(exc) else "--model"
        raise typer.BadParameter(str(exc), param_hint=hint) from None


def data_spec(data, target, time_col, id_col, covariates, gaps, freq):
    if gaps not in ("error", "fill", "drop"):
        raise typer.BadParameter(f"{gaps!r} is not one of error, fill, drop", param_hint="--gaps")
    cov = covariates if covariates == "all" else split_list(covariates, "--covariates")
    return DataSpec(data, target=target, time_col=time_col, id_col=id_col, covariates=cov,
                    gaps=gaps, freq=freq)


def check_output(path: str | None, option: str, allow_stdout: bool = False) -> None:
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


def inference_start() -> None:
    """Forecasting a few windows needs no multi-threaded BLAS: pin OpenBLAS to one thread
    through its environment variable (read when it loads); `forecast.nn` then skips its
    run-time pinning, which scans every loaded library with threadpoolctl (~0.3 s of a
    `forecast predict`)."""
    if "numpy" in sys.modules:
        return
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def show_version(value: bool) -> None:
    if value:
        from forecast import __version__

        typer.echo(f"forecast {__version__}")
        raise typer.Exit()


def read_config(ctx: typer.Context, path: Path) -> dict[str, dict[str, Any]]:
    """TOML options: top-level keys apply to every command having that option, a
    ``[command]`` table to that command; unknown keys are usage errors."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise typer.BadParameter(f"{path} does not exist", param_hint="--config") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise typer.BadParameter(f"{path} is not valid TOML: {one_line(str(exc))}",
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
