"""The batch file (TOML): what to forecast, with which model, and where the output goes.

A minimal file::

    output = "nightly"                 # the output folder (relative to this file)

    [defaults]
    model = "gru"
    horizon = 30

    [[sources]]
    path = "data/stocks/*.csv"         # files or globs: one series per file, id = file stem
    target = "Close"

Every key, with its default, is documented in ``KEYS`` below and in the README
("Batch forecasting"). `load_config` checks the whole file (unknown keys, wrong types,
unknown model names, globs that match nothing, ids that clash) and raises `ConfigError`
naming the key and the fix; nothing is read from the data files here.
"""

from __future__ import annotations

import glob
import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from forecast.errors import ConfigError

__all__ = ["BatchConfig", "SeriesSettings", "RefitPolicy", "SourceSpec", "load_config",
           "parse_config", "slugify", "ENGINES", "REFIT_POLICIES", "FALLBACKS"]

ENGINES = ("local", "dask")
REFIT_POLICIES = ("always", "never", "auto")
FALLBACKS = ("seasonal_naive", "naive", "drift", "mean", "none")

# Per-series settings: [defaults], each [[sources]] and each [series.ID] may set them.
_MODEL_KEYS = {
    "model": "model name: gru, lstm, rnn, segrnn, linear, nlinear, naive, seasonal_naive, drift, mean",
    "horizon": "steps to forecast (positive integer)",
    "lookback": "input window length (positive integer)",
    "epochs": "most training epochs (positive integer)",
    "hidden": "hidden units of a recurrent model (positive integer)",
    "seed": "random seed (integer)",
    "levels": "prediction-interval levels in percent, e.g. [80, 95]",
    "folds": "rolling-origin backtest folds per series (0 = none)",
    "fallback": "model used when the fit fails: seasonal_naive, naive, drift, mean or none",
    "params": "any other model parameter, e.g. { lr = 0.003, patience = 5 }",
}
_LOAD_KEYS = {
    "target": "column to forecast",
    "time_col": "time column",
    "covariates": "extra input columns (a list) or \"all\"",
    "gaps": "missing timestamps: error, fill or drop",
    "freq": "frequency alias (h, D, B, XNYS...)",
    "missing_values": "markers that mean missing, e.g. [-9999, \"?\"]",
}
SERIES_KEYS = {**_MODEL_KEYS, **_LOAD_KEYS}
_TOP_KEYS = {
    "output": "output folder (relative to the batch file)",
    "engine": "local (default) or dask",
    "workers": "local engine: worker processes (default: the CPU cores)",
    "threads_per_worker": "Numba threads in each worker (default: cores / workers)",
    "scheduler": "dask engine: scheduler address, e.g. tcp://10.0.0.5:8786",
    "scheduler_timeout": "dask engine: seconds to wait for the scheduler (default 20)",
    "reports": "write an HTML report per series (default true)",
    "defaults": "table: settings for every series",
    "refit": "table: when to refit a saved model",
    "sources": "array of tables: where the series come from",
    "series": "tables [series.ID]: settings for one series",
}
_SOURCE_KEYS = {"path": "file, glob or bundled dataset name",
                "id_col": "series id column of a long-format file (one series per id)",
                "id": "series id of a single-file source (default: the file stem)",
                **SERIES_KEYS}
_REFIT_KEYS = {"policy": "always, never or auto",
               "max_age_days": "auto: refit when the saved model is older than this",
               "max_degradation": "auto: refit when the saved model's error on the data since "
                                  "its fit exceeds its backtest error by this fraction"}
_ALIASES = {"naive_seasonal": "seasonal_naive"}


@dataclass(frozen=True)
class RefitPolicy:
    """``always`` fits every run; ``never`` reuses the saved model when there is one
    (predicting from the new data); ``auto`` reuses it unless it is older than
    `max_age_days` (as-of time of its fit to as-of time of this run) or its error since
    then degraded by more than `max_degradation` against its backtest."""

    policy: str = "always"
    max_age_days: float | None = 7.0
    max_degradation: float | None = 0.25

    def to_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "max_age_days": self.max_age_days,
                "max_degradation": self.max_degradation}


@dataclass(frozen=True)
class SeriesSettings:
    """The resolved settings of one series: the model, its budget and how to read it."""

    model: str = "gru"
    horizon: int | None = None
    lookback: int | None = None
    epochs: int | None = None
    hidden: int | None = None
    seed: int = 0
    levels: tuple[float, ...] = (80.0, 95.0)
    folds: int = 0
    fallback: str = "seasonal_naive"
    params: tuple[tuple[str, Any], ...] = ()
    target: str | None = None
    time_col: str | None = None
    covariates: tuple[str, ...] | str | None = None
    gaps: str = "error"
    freq: str | None = None
    missing_values: tuple | None = None

    def data_spec(self, source: str, id_col: str | None = None):
        """How to read `source`, as the `forecast.workflows.DataSpec` that `fit` uses
        (`workflows.load_data` reads it; its ``options()`` go into model files)."""
        from forecast.workflows import DataSpec

        return DataSpec(source, id_col=id_col, **{k: getattr(self, k) for k in _LOAD_KEYS})


@dataclass(frozen=True)
class SourceSpec:
    """One ``[[sources]]`` entry with its files resolved (sorted)."""

    pattern: str
    files: tuple[str, ...]  # absolute paths, or one bundled dataset name
    id_col: str | None = None
    id: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)  # raw overrides of this source
    bundled: bool = False


@dataclass(frozen=True)
class BatchConfig:
    path: Path
    output: Path
    engine: str = "local"
    workers: int | None = None
    threads_per_worker: int | None = None
    scheduler: str | None = None
    scheduler_timeout: float = 20.0
    reports: bool = True
    refit: RefitPolicy = RefitPolicy()
    defaults: dict[str, Any] = field(default_factory=dict)
    sources: tuple[SourceSpec, ...] = ()
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    def settings_for(self, source: SourceSpec, uid: str) -> SeriesSettings:
        """Defaults, then the source's own keys, then ``[series.ID]``."""
        merged = {**self.defaults, **source.settings, **self.overrides.get(uid, {})}
        return _settings(merged, f"series {uid!r}")

    def fingerprint(self) -> str:
        """A hash of everything that changes results (not the engine or the worker
        count, which do not): a run can only be resumed under the same fingerprint."""
        doc = {"defaults": self.defaults, "refit": self.refit.to_dict(), "reports": self.reports,
               "overrides": self.overrides,
               "sources": [{"pattern": s.pattern, "files": list(s.files), "id_col": s.id_col,
                            "id": s.id, "settings": s.settings} for s in self.sources]}
        text = json.dumps(doc, sort_keys=True, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def with_engine(self, engine: str | None = None, scheduler: str | None = None,
                    workers: int | None = None) -> "BatchConfig":
        """The same config with command-line engine options applied (checked)."""
        out = self
        if engine is not None:
            if engine not in ENGINES:
                raise ConfigError(f"engine {engine!r} is not one of {', '.join(ENGINES)}")
            out = replace(out, engine=engine)
        if scheduler is not None:
            out = replace(out, scheduler=scheduler)
        if workers is not None:
            if workers < 1:
                raise ConfigError(f"workers must be >= 1, got {workers}")
            out = replace(out, workers=workers)
        if out.engine == "dask" and not out.scheduler:
            raise ConfigError("the dask engine needs a scheduler address: --scheduler "
                              "tcp://HOST:PORT or scheduler = \"tcp://HOST:PORT\" in the batch "
                              "file (start one with `dask scheduler` and `dask worker`)")
        return out


# ---- parsing ---------------------------------------------------------------------------
def load_config(path) -> BatchConfig:
    """Read and check the batch file at `path`."""
    import tomllib

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"batch file {path} does not exist" if not path.exists()
                          else f"{path} is not a file; give the batch TOML file")
    try:
        raw = path.read_bytes()
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text; save the batch file as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    config = parse_config(data, path.resolve().parent, label=str(path))
    return replace(config, path=path.resolve())


def parse_config(data: dict[str, Any], base: Path, label: str = "batch file") -> BatchConfig:
    """Check a parsed batch document; relative paths are taken from `base`."""
    _unknown(data, _TOP_KEYS, label)
    if "output" not in data:
        raise ConfigError(f"{label}: no output folder; add e.g. output = \"batch-out\" at "
                          "the top of the file")
    output = _path(_get(data, "output", str, label), base)
    engine = _get(data, "engine", str, label, "local")
    if engine not in ENGINES:
        raise ConfigError(f"{label}: engine = {engine!r} is not one of {', '.join(ENGINES)}")
    workers = _get(data, "workers", int, label, None)
    if workers is not None and workers < 1:
        raise ConfigError(f"{label}: workers must be >= 1, got {workers}")
    threads = _get(data, "threads_per_worker", int, label, None)
    if threads is not None and threads < 1:
        raise ConfigError(f"{label}: threads_per_worker must be >= 1, got {threads}")
    scheduler = _get(data, "scheduler", str, label, None)
    sched_timeout = _get(data, "scheduler_timeout", (int, float), label, 20.0)
    if not math.isfinite(sched_timeout) or sched_timeout <= 0:
        raise ConfigError(f"{label}: scheduler_timeout must be a number of seconds > 0, got "
                          f"{sched_timeout}")
    reports = _get(data, "reports", bool, label, True)

    defaults = _table(data, "defaults", label)
    _unknown(defaults, SERIES_KEYS, f"{label} [defaults]")
    defaults = _normalise(defaults, f"{label} [defaults]")
    _settings(defaults, f"{label} [defaults]")  # checks every value once

    refit_raw = data.get("refit", {})
    if isinstance(refit_raw, str):
        refit_raw = {"policy": refit_raw}
    if not isinstance(refit_raw, dict):
        raise ConfigError(f"{label}: refit must be a table ([refit] policy = \"auto\") or "
                          "one of always, never, auto")
    _unknown(refit_raw, _REFIT_KEYS, f"{label} [refit]")
    policy = _get(refit_raw, "policy", str, f"{label} [refit]", "always")
    if policy not in REFIT_POLICIES:
        raise ConfigError(f"{label} [refit]: policy = {policy!r} is not one of "
                          f"{', '.join(REFIT_POLICIES)}")
    age = _get(refit_raw, "max_age_days", (int, float), f"{label} [refit]", 7.0)
    degr = _get(refit_raw, "max_degradation", (int, float), f"{label} [refit]", 0.25)
    for name, value in (("max_age_days", age), ("max_degradation", degr)):
        if value is not None and (not math.isfinite(value) or value < 0):
            raise ConfigError(f"{label} [refit]: {name} must be a number >= 0, got {value}")
    refit = RefitPolicy(policy, None if age is None else float(age),
                        None if degr is None else float(degr))

    sources_raw = data.get("sources")
    if sources_raw is None:
        raise ConfigError(f"{label}: no [[sources]]; add at least one, e.g.\n[[sources]]\n"
                          "path = \"data/*.csv\"")
    if isinstance(sources_raw, dict):
        sources_raw = [sources_raw]
    if not isinstance(sources_raw, list) or not all(isinstance(s, dict) for s in sources_raw):
        raise ConfigError(f"{label}: sources must be an array of tables ([[sources]] entries)")
    sources = []
    for i, src in enumerate(sources_raw):
        where = f"{label} [[sources]] #{i + 1}"
        _unknown(src, _SOURCE_KEYS, where)
        pattern = _get(src, "path", str, where, None)
        if not pattern:
            raise ConfigError(f"{where}: no path; give a file, a glob such as data/*.csv or a "
                              "bundled dataset name")
        id_col = _get(src, "id_col", str, where, None)
        sid = _get(src, "id", str, where, None)
        settings = _normalise({k: v for k, v in src.items() if k in SERIES_KEYS}, where)
        _settings({**defaults, **settings}, where)
        files, bundled = _resolve(pattern, base, where, output)
        if sid is not None and (len(files) != 1 or id_col is not None):
            raise ConfigError(f"{where}: id = {sid!r} names the series of a single-file "
                              f"source, but {pattern!r} is "
                              + ("long format (id_col)" if id_col else f"{len(files)} files"))
        sources.append(SourceSpec(pattern, tuple(files), id_col, sid, settings, bundled))
    # the same file twice would forecast its series twice
    seen: dict[str, str] = {}
    for s in sources:
        for f in s.files:
            if f in seen:
                raise ConfigError(f"{label}: {f} is matched by both {seen[f]!r} and "
                                  f"{s.pattern!r}; each file may belong to one source")
            seen[f] = s.pattern

    overrides_raw = _table(data, "series", label)
    overrides = {}
    for uid, table in overrides_raw.items():
        where = f"{label} [series.{uid}]"
        if not isinstance(table, dict):
            raise ConfigError(f"{where} must be a table of settings, e.g. [series.{uid}] "
                              "model = \"lstm\"")
        _unknown(table, SERIES_KEYS, where)
        overrides[str(uid)] = _normalise(table, where)
        _settings({**defaults, **overrides[str(uid)]}, where)
    return BatchConfig(path=base, output=output, engine=engine, workers=workers,
                       threads_per_worker=threads, scheduler=scheduler,
                       scheduler_timeout=float(sched_timeout), reports=reports,
                       refit=refit, defaults=defaults, sources=tuple(sources),
                       overrides=overrides)


def _resolve(pattern: str, base: Path, where: str, output: Path) -> tuple[list[str], bool]:
    expanded = os.path.expanduser(pattern)
    full = expanded if os.path.isabs(expanded) else str(base / expanded)
    if glob.has_magic(expanded):
        # never the batch's own outputs (a recursive glob would otherwise pick up
        # forecasts.csv of earlier runs)
        files = sorted(str(Path(f).resolve()) for f in glob.glob(full, recursive=True)
                       if os.path.isfile(f) and output not in Path(f).resolve().parents)
        if not files:
            raise ConfigError(f"{where}: {pattern!r} matches no file (looked in {base}); check "
                              "the pattern")
        return files, False
    if os.path.isfile(full):
        return [str(Path(full).resolve())], False
    if os.path.isdir(full):
        raise ConfigError(f"{where}: {pattern!r} is a folder; give a glob such as "
                          f"{pattern.rstrip('/')}/*.csv")
    from forecast.datasets import BUNDLED

    if pattern.lower() in BUNDLED:
        return [pattern.lower()], True
    raise ConfigError(f"{where}: {pattern!r} does not exist (looked in {base}); give a file, a "
                      f"glob or a bundled dataset name ({', '.join(sorted(BUNDLED))})")


def _path(text: str, base: Path) -> Path:
    p = Path(os.path.expanduser(text))
    return (p if p.is_absolute() else base / p).resolve()


def _table(data: dict, key: str, label: str) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{label}: {key} must be a table ([{key}])")
    return dict(value)


def _unknown(data: dict, known: dict, where: str) -> None:
    bad = sorted(set(data) - set(known))
    if bad:
        import difflib

        hints = []
        for b in bad:
            close = difflib.get_close_matches(b, list(known), n=1)
            hints.append(f"{b!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ConfigError(f"{where}: unknown key(s) {', '.join(hints)}; valid keys: "
                          f"{', '.join(sorted(known))}")


_TYPE_NAMES = {int: "an integer", str: "a string", bool: "true or false",
               float: "a number", (int, float): "a number"}


def _get(data: dict, key: str, kind, where: str, default: Any = ...) -> Any:
    if key not in data:
        if default is ...:
            raise ConfigError(f"{where}: {key} is missing")
        return default
    value = data[key]
    ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool)
                                          and bool not in (kind if isinstance(kind, tuple)
                                                           else (kind,)))
    if not ok:
        raise ConfigError(f"{where}: {key} must be {_TYPE_NAMES.get(kind, kind)}, got "
                          f"{value!r}")
    return value


def _normalise(table: dict, where: str) -> dict[str, Any]:
    """TOML values to the plain values `_settings` checks (lists to tuples)."""
    out = dict(table)
    if "model" in out and isinstance(out["model"], str):
        out["model"] = _ALIASES.get(out["model"], out["model"])
    if "params" in out:
        if not isinstance(out["params"], dict):
            raise ConfigError(f"{where}: params must be a table, e.g. params = {{ lr = 0.003 }}")
        out["params"] = {str(k).replace("-", "_"): (tuple(v) if isinstance(v, list) else v)
                         for k, v in out["params"].items()}
    for key in ("levels", "covariates", "missing_values"):
        if isinstance(out.get(key), list):
            out[key] = tuple(out[key])
    return out


def _settings(merged: dict[str, Any], where: str) -> SeriesSettings:
    """Check every value of `merged` and build the `SeriesSettings`."""
    from forecast.models import MODEL_NAMES
    from forecast.workflows import ModelSpec, check_spec

    kw: dict[str, Any] = {}
    for key, value in merged.items():
        if key in ("horizon", "lookback", "epochs", "hidden"):
            value = _get(merged, key, int, where)
            if value < 1:
                raise ConfigError(f"{where}: {key} must be >= 1, got {value}")
        elif key == "folds":
            value = _get(merged, key, int, where)
            if value < 0:
                raise ConfigError(f"{where}: folds must be >= 0, got {value}")
        elif key == "seed":
            value = _get(merged, key, int, where)
        elif key == "levels":
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = (value,)
            if not isinstance(value, tuple) or not value or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 100
                    for v in value):
                raise ConfigError(f"{where}: levels must be percentages in (0, 100), e.g. "
                                  f"[80, 95]; got {value!r}")
            value = tuple(float(v) for v in value)
        elif key == "model":
            value = _get(merged, key, str, where)
            if value not in MODEL_NAMES:
                raise ConfigError(f"{where}: model = {value!r} is unknown; choose one of "
                                  f"{', '.join(MODEL_NAMES)}")
        elif key == "fallback":
            value = _get(merged, key, str, where)
            value = _ALIASES.get(value, value)
            if value not in FALLBACKS:
                raise ConfigError(f"{where}: fallback = {value!r} is not one of "
                                  f"{', '.join(FALLBACKS)}")
        elif key == "params":
            value = tuple(sorted(value.items()))
        elif key == "gaps":
            value = _get(merged, key, str, where)
            if value not in ("error", "fill", "drop"):
                raise ConfigError(f"{where}: gaps = {value!r} is not one of error, fill, drop")
        elif key in ("target", "time_col", "freq"):
            value = _get(merged, key, str, where)
        elif key == "covariates":
            if not (value == "all" or (isinstance(value, tuple)
                                       and all(isinstance(c, str) for c in value))):
                raise ConfigError(f"{where}: covariates must be a list of column names or "
                                  f"\"all\", got {value!r}")
        elif key == "missing_values":
            if not isinstance(value, tuple):
                value = (value,)
        kw[key] = value
    settings = SeriesSettings(**kw)
    spec = ModelSpec(settings.model, params=dict(settings.params))
    try:
        check_spec(spec)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return settings


_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


def slugify(uid: str) -> str:
    """A file-name-safe form of a series id (``BRK/B`` -> ``BRK_B``); ids that are already
    safe are kept as they are."""
    slug = _SLUG.sub("_", str(uid)).strip("._") or "series"
    if slug != str(uid):
        slug = f"{slug}-{hashlib.sha1(str(uid).encode('utf-8')).hexdigest()[:6]}"
    return slug[:120]
