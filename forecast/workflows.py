"""The pipelines behind the command line: fit, predict, backtest and the demo.

Each function takes small option dataclasses, calls the library and returns plain
results; none prints. Progress goes to an optional ``progress(Event)`` callback that
the CLI turns into progress bars.

    >>> from forecast import workflows as wf
    >>> run = wf.fit(wf.DataSpec("aapl"), wf.ModelSpec("gru", horizon=5))   # doctest: +SKIP
    >>> wf.save_fit(run, "gru.npz")                                         # doctest: +SKIP
    >>> frame, mf = wf.predict("gru.npz")                                   # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from forecast.diagnostics import recent_residuals
from forecast.errors import ConfigError

__all__ = ["DataSpec", "ModelSpec", "BacktestSpec", "Event", "FitRun", "BacktestRun",
           "DemoResult", "load_data", "build_model", "fit", "save_fit", "predict", "backtest",
           "demo", "default_horizon", "parse_param", "check_models", "check_spec",
           "recent_residuals", "warmup",
           "RNN_MODELS"]

RNN_MODELS = ("lstm", "gru", "rnn")
_LOAD_FIELDS = ("target", "time_col", "id_col", "covariates", "gaps", "freq", "missing_values")


@dataclass(frozen=True)
class Event:
    """A progress report: ``stage`` is ``load``, ``compile``, ``epoch``, ``fold``,
    ``model`` or ``report``; ``step``/``total`` count folds (or models, or kernels for
    ``compile``: ``model`` then names the kernel done, empty before the first), ``info``
    is the model's `EpochInfo` for ``epoch`` events."""

    stage: str
    model: str = ""
    step: int = 0
    total: int = 0
    info: Any = None
    dataset: str = ""


Progress = Callable[[Event], None]


def _emit(progress: Progress | None, event: Event) -> None:
    if progress is not None:
        progress(event)


def compile_kernels(models: Sequence[Any], progress: Progress | None = None) -> int:
    """Compile, several at a time, the kernels that fitting `models` (estimators) will
    need and that are not compiled or cached yet (see `forecast.precompile`); reports
    ``compile`` events. Returns the number of kernels compiled (0 on a warm machine)."""
    from forecast.precompile import precompile

    pairs = []
    for model in models:
        params = model.get_params() if hasattr(model, "get_params") else {}
        if params.get("cell") in RNN_MODELS:
            pairs.append((params["cell"], str(params.get("dtype", "float32"))))

    def report(done: int, total: int, job) -> None:
        _emit(progress, Event("compile", "" if job is None else str(job), done, total))

    return len(precompile(pairs, progress=report))


# ---- data ------------------------------------------------------------------------------
@dataclass(frozen=True)
class DataSpec:
    """Where the data comes from (a CSV/Parquet path or a bundled dataset name) and how
    to read it (see `forecast.data.LoadOptions`)."""

    source: str
    target: str | None = None
    time_col: str | None = None
    id_col: str | None = None
    covariates: tuple[str, ...] | str | None = None
    gaps: str = "error"
    freq: str | None = None
    missing_values: tuple | None = None

    def options(self) -> dict[str, Any]:
        out = {}
        for name in _LOAD_FIELDS:
            value = getattr(self, name)
            if value is not None and not (name == "gaps" and value == "error"):
                out[name] = list(value) if isinstance(value, tuple) else value
        return out


def load_data(spec: DataSpec):
    """Load `spec` through `forecast.data.load` (bundled names work too)."""
    from forecast.data import load

    opts = spec.options()
    if isinstance(opts.get("covariates"), list):
        opts["covariates"] = tuple(opts["covariates"])
    if isinstance(opts.get("missing_values"), list):
        opts["missing_values"] = tuple(opts["missing_values"])
    return load(spec.source, **opts)


def default_horizon(dataset) -> int:
    """One natural season (5 trading days, 7 days, 24 hours), else 10 steps."""
    return int(dataset.freq.season_length or 10)


# ---- models ----------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSpec:
    """A model by short name (see `forecast.models.MODEL_NAMES`) and its options;
    ``None`` keeps the model's default. `params` holds any other constructor parameter."""

    name: str = "gru"
    horizon: int | None = None
    lookback: int | None = None
    epochs: int | None = None
    hidden: int | None = None
    seed: int = 0
    levels: tuple[float, ...] = (80, 95)
    params: dict[str, Any] = field(default_factory=dict)


def parse_param(text: str) -> tuple[str, Any]:
    """``key=value`` with a JSON value (``lr=0.01``, ``calendar=true``, ``quantiles=[0.5]``),
    or a plain string when it is not JSON (``cell=gru``)."""
    if "=" not in text:
        raise ConfigError(f"parameter {text!r} is not key=value (e.g. lr=0.003)")
    key, raw = text.split("=", 1)
    key = key.strip().replace("-", "_")
    if not key.isidentifier():
        raise ConfigError(f"parameter name {key!r} is not valid")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    if isinstance(value, list):
        value = tuple(value)
    return key, value


def check_spec(spec: ModelSpec) -> None:
    """Raise `ConfigError` for an unknown model name or parameter (before any data is
    read)."""
    from forecast.models import MODEL_NAMES

    if spec.name not in MODEL_NAMES:
        raise ConfigError(f"unknown model {spec.name!r}; choose one of {', '.join(MODEL_NAMES)}")
    klass, fixed = MODEL_NAMES[spec.name]
    names = set(klass._param_names())
    unknown = sorted(set(spec.params) - names)
    if unknown:
        raise ConfigError(f"model {spec.name!r} has no parameter(s) {unknown}; its parameters "
                          f"are {sorted(names - {'callback'})}")
    clash = sorted(set(spec.params) & (set(fixed) | {"callback"}))
    if clash:
        raise ConfigError(f"model {spec.name!r} fixes {clash}; pick another model name instead")


def build_model(spec: ModelSpec, horizon: int, callback=None):
    """The unfitted model of `spec` (horizon resolved by the caller)."""
    from forecast.models import MODEL_NAMES, make_model

    check_spec(spec)
    klass, fixed = MODEL_NAMES[spec.name]
    names = set(klass._param_names())
    params: dict[str, Any] = {"horizon": horizon, "levels": tuple(spec.levels)}
    optional = {"lookback": spec.lookback, "max_epochs": spec.epochs, "n_hidden": spec.hidden,
                "random_state": spec.seed, "callback": callback}
    params.update({k: v for k, v in optional.items() if v is not None and k in names})
    params.update(spec.params)
    return make_model(spec.name, **params)


# ---- fit -------------------------------------------------------------------------------
@dataclass
class FitRun:
    """A fitted model with what the model file and the report need."""

    name: str
    model: Any
    dataset: Any
    data: DataSpec
    spec: ModelSpec
    seconds: float
    losses: list = field(default_factory=list)
    backtest: Any = None  # a BacktestResult when folds were asked for


def epoch_recorder(name: str, progress: Progress | None, sink: list, fold: list | None = None):
    def callback(info) -> None:
        sink.append([info.train_loss, info.val_loss])
        _emit(progress, Event("epoch", name, info=info, step=fold[0] if fold else 0))
    return callback


def fit(data: DataSpec, spec: ModelSpec, *, folds: int = 0,
        progress: Progress | None = None) -> FitRun:
    """Load `data`, fit the model of `spec` on all of it and, with ``folds > 0``, run a
    rolling-origin backtest against the naive forecast first (its metrics go into the
    model file)."""
    _emit(progress, Event("load", dataset=str(data.source)))
    dataset = load_data(data)
    horizon = spec.horizon or default_horizon(dataset)
    bt = None
    if folds:  # (backtest compiles the kernels the model needs first)
        bt = backtest(data, [spec], BacktestSpec(horizon=horizon, folds=folds),
                      progress=progress, dataset=dataset).result
    losses: list = []
    model = build_model(spec, horizon, epoch_recorder(spec.name, progress, losses))
    compile_kernels([model], progress)
    _emit(progress, Event("model", spec.name, 0, 1))
    t0 = time.perf_counter()
    model.fit(dataset)
    seconds = time.perf_counter() - t0
    model.set_params(**({"callback": None} if "callback" in model.get_params() else {}))
    _emit(progress, Event("model", spec.name, 1, 1))
    return FitRun(spec.name, model, dataset, data, spec, seconds, losses, bt)


def backtest_metrics(result, name: str) -> dict[str, Any] | None:
    """JSON-safe summary row of model `name` (and the naive row) of a backtest."""
    if result is None:
        return None
    import math

    def clean(row):
        out = {}
        for k, v in row.items():
            if hasattr(v, "item"):
                v = v.item()
            if isinstance(v, float) and not math.isfinite(v):
                v = None
            out[str(k)] = v
        return out

    rows = {r["model"]: clean(r) for r in result.summary.to_dict("records")}
    cfg = result.config
    return {"config": {"horizon": int(cfg.horizon), "folds": int(result.cutoffs.shape[1]),
                       "window": cfg.window, "levels": list(cfg.levels)},
            "model": rows.get(name), "naive": rows.get("naive"),
            "by_step": [clean(r) for r in
                        result.by_step[result.by_step["model"] == name].to_dict("records")]}


def save_fit(run: FitRun, path) -> Path:
    """Write the model file of `run` (see `forecast.io`)."""
    from forecast import io

    source = Path(str(run.data.source))
    source = str(source.resolve()) if source.is_file() else str(run.data.source)
    extra = {"fit_seconds": round(run.seconds, 3), "load_options": run.data.options(),
             "data_source": source, "loss_history": run.losses}
    return io.save_model(path, run.model, run.dataset, name=run.name,
                         backtest=backtest_metrics(run.backtest, run.name), extra=extra)


# ---- predict ---------------------------------------------------------------------------
def load_new_data(mf, source: str, options: dict[str, Any] | None = None):
    """Newer data for the model of model file `mf`, read with the training options and
    checked against the training data (`forecast.io.check_new_data`)."""
    from forecast import io
    from forecast.data import load

    state = mf.manifest["model"]["state"]
    fitted = state.get("fitted") or {}
    opts = dict((mf.manifest.get("extra") or {}).get("load_options") or {})
    opts.update(options or {})
    opts["target"] = fitted.get("target_") or opts.get("target")
    for key in ("covariates", "missing_values"):
        if isinstance(opts.get(key), list):
            opts[key] = tuple(opts[key])
    opts.pop("freq", None)  # inferred, then compared with the model's
    dataset = load(source, **opts)
    io.check_new_data(mf.manifest, dataset)
    ids = fitted.get("ids_") or []
    if dataset.id_col is None and len(ids) == 1 and dataset.name != ids[0]:
        dataset = replace(dataset, name=ids[0])  # the same series under another file name
    return dataset


def predict(model_path, data: str | None = None, *, horizon: int | None = None,
            options: dict[str, Any] | None = None):
    """Forecasts (original units, interval columns) of the model file at `model_path`,
    after its training data or after the newer `data`; returns ``(frame, ModelFile)``."""
    from forecast import io

    mf = io.load_model(model_path)
    dataset = None if data is None else load_new_data(mf, data, options)
    return mf.model.predict(dataset, horizon=horizon), mf


# ---- backtest --------------------------------------------------------------------------
@dataclass(frozen=True)
class BacktestSpec:
    """Backtest geometry: see `forecast.backtest.BacktestConfig`."""

    horizon: int | None = None
    folds: int = 3
    step: int | None = None
    window: str = "expanding"
    refit_every: int | None = None  # None: every ceil(folds / 4) folds
    refit: str = "auto"  # fresh, warm or auto (warm for the recurrent models)
    # drift too: a gain over naive that drift matches is the trend's (the plain verdict)
    baselines: tuple[str, ...] = ("naive", "seasonal_naive", "drift")
    levels: tuple[float, ...] = (80, 95)


@dataclass
class BacktestRun:
    """A backtest with the data and the training curves of each model's folds."""

    result: Any
    dataset: Any
    losses: dict[str, list] = field(default_factory=dict)  # model -> one curve per fit
    seconds: float = 0.0


def _merge(results):
    import pandas as pd

    from forecast.backtest import BacktestResult, baseline_skill

    parts = {k: [] for k in ("forecasts", "folds", "by_step", "summary")}
    seen_naive = False
    for r in results:
        for key in parts:
            table = getattr(r, key)
            keep = table["model"] != "naive" if seen_naive else table["model"] == table["model"]
            parts[key].append(table[keep])
        seen_naive = True
    tables = {k: pd.concat(v, ignore_index=True) for k, v in parts.items()}
    order = list(dict.fromkeys(tables["summary"]["model"]))
    baseline_last = [m for m in order if m not in ("naive", "seasonal_naive", "drift", "mean")] \
        + [m for m in order if m in ("naive", "seasonal_naive", "drift", "mean")]
    summary = tables["summary"].set_index("model").loc[baseline_last].reset_index()
    # each run found its best baseline among its own rows: find it among all of them
    summary = baseline_skill(summary, tables["forecasts"])
    return BacktestResult(tables["forecasts"], tables["folds"], tables["by_step"], summary,
                          results[0].config, results[0].cutoffs)


def backtest(data: DataSpec, specs: Sequence[ModelSpec], settings: BacktestSpec, *,
             progress: Progress | None = None, dataset=None) -> BacktestRun:
    """Rolling-origin backtest of each model of `specs` and the baselines on `data`.
    Models run one at a time so that progress can be reported per model and fold."""
    from forecast.backtest import BacktestConfig
    from forecast.backtest import backtest as run_backtest

    if not specs:
        raise ConfigError("give at least one model to backtest (e.g. --models gru,naive)")
    names = [s.name for s in specs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"model(s) {dup} are listed twice")
    t_start = time.perf_counter()
    if dataset is None:
        _emit(progress, Event("load", dataset=str(data.source)))
        dataset = load_data(data)
    horizon = settings.horizon or default_horizon(dataset)
    season = dataset.freq.season_length
    baselines = tuple(b for b in settings.baselines if b != "seasonal_naive" or season)
    config = BacktestConfig(horizon=horizon, n_folds=settings.folds, step=settings.step,
                            window=settings.window, refit_every=settings.refit_every,
                            refit=settings.refit, levels=tuple(settings.levels), baselines=())
    results, losses = [], {}
    todo = list(specs) + [ModelSpec(b, levels=settings.levels) for b in baselines
                          if b not in names]
    compile_kernels([build_model(spec, horizon, None) for spec in specs], progress)
    for spec in todo:
        curves: list[list] = []
        fold = [0]

        def on_epoch(info, _curves=curves, _fold=fold, _name=spec.name):
            if info.epoch == 1:
                _curves.append([])
            _curves[-1].append([info.train_loss, info.val_loss])
            _emit(progress, Event("epoch", _name, _fold[0], settings.folds, info))

        def on_folds(name, done, total, seconds, _fold=fold):
            _fold[0] = done
            _emit(progress, Event("fold", name, done, total))

        model = build_model(spec, horizon, on_epoch)
        _emit(progress, Event("model", spec.name, 0, settings.folds))
        result = run_backtest({spec.name: model}, dataset, config, progress=on_folds)
        _emit(progress, Event("model", spec.name, settings.folds, settings.folds))
        results.append(result)
        if curves:
            losses[spec.name] = curves
    return BacktestRun(_merge(results), dataset, losses, time.perf_counter() - t_start)


# ---- demo ------------------------------------------------------------------------------
@dataclass(frozen=True)
class DemoCase:
    dataset: str
    target: str
    horizon: int
    lookback: int


DEMO_CASES = (DemoCase("aapl", "Close", 5, 60), DemoCase("seattle-weather", "temp_max", 7, 60))


@dataclass
class DemoResult:
    index: Path
    pages: dict[str, Path]
    backtests: dict[str, BacktestRun]
    seconds: float


def demo(out_dir="reports/demo", *, models: Sequence[str] = ("gru", "lstm"), folds: int = 3,
         epochs: int = 8, hidden: int = 32, progress: Progress | None = None,
         cases: Sequence[DemoCase] = DEMO_CASES, embed_plotlyjs: bool = False) -> DemoResult:
    """Backtest recurrent `models` and the baselines on bundled AAPL (Close) and Seattle
    weather (temp_max), fit each on all the data for a forecast after its end, and write
    one HTML page per dataset plus ``index.html`` into `out_dir`."""
    from forecast import report

    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    compile_kernels([build_model(ModelSpec(m), 1, None) for m in models], progress)
    pages, runs = {}, {}
    for case in cases:
        data = DataSpec(case.dataset, target=case.target)
        specs = [ModelSpec(m, horizon=case.horizon, lookback=case.lookback, epochs=epochs,
                           hidden=hidden) for m in models]
        specs.append(ModelSpec("linear", horizon=case.horizon, lookback=case.lookback))
        run = backtest(data, specs, BacktestSpec(horizon=case.horizon, folds=folds,
                                                 step=case.horizon,
                                                 baselines=("naive", "seasonal_naive", "drift")),
                       progress=progress)
        fits = []
        for spec in specs + [ModelSpec("naive", horizon=case.horizon),
                             ModelSpec("seasonal_naive", horizon=case.horizon)]:
            _emit(progress, Event("final", spec.name, dataset=case.dataset))
            fits.append(fit(data, spec, progress=None))
        _emit(progress, Event("report", dataset=case.dataset))
        content = report.ReportContent.from_runs(
            title=f"{case.dataset}: {case.target}, {case.horizon}-step forecasts",
            dataset=run.dataset, backtest=run, fits=fits)
        pages[case.dataset] = report.write_report(content, out / f"{case.dataset}.html",
                                                  embed_plotlyjs=embed_plotlyjs)
        runs[case.dataset] = run
    index = report.write_index(out / "index.html", "forecast demo",
                               [(name, p.name, runs[name].result.summary) for name, p in
                                pages.items()], embed_plotlyjs=embed_plotlyjs)
    return DemoResult(index, pages, runs, time.perf_counter() - t0)


def check_models(text: str) -> list[str]:
    """``lstm,gru,naive`` -> names, each checked against the model registry."""
    from forecast.models import MODEL_NAMES

    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError("--models is empty; give names such as gru,lstm,naive")
    bad = [n for n in names if n not in MODEL_NAMES]
    if bad:
        raise ConfigError(f"unknown model(s) {bad}; choose from {', '.join(MODEL_NAMES)}")
    return names



def warmup(cells: Sequence[str] = RNN_MODELS, dtypes: Sequence[str] = ("float32",),
           progress: Callable[[str], None] | None = None) -> dict[str, float]:
    """Compile (and cache on disk) the kernels each cell uses for training and
    forecasting: the recurrent kernels several at a time in worker processes
    (`forecast.precompile`), then the rest by fitting a tiny model on a synthetic series;
    returns seconds per cell (the shared parallel compile is in ``"parallel"``)."""
    import numpy as np
    import pandas as pd

    from forecast.models import RNNForecaster
    from forecast.precompile import precompile

    out = {}
    t0 = time.perf_counter()
    precompile([(c, d) for c in cells for d in dtypes],
               progress=None if progress is None else
               (lambda done, total, job: progress(f"{done}/{total} kernels") if job else None))
    out["parallel"] = time.perf_counter() - t0
    t = np.arange(64, dtype=np.float64)
    series = pd.Series(np.sin(t / 5.0) + 0.01 * t,
                       index=pd.date_range("2020-01-01", periods=t.size, freq="D"), name="y")
    for cell in cells:
        for dtype in dtypes:
            if progress is not None:
                progress(cell)
            t0 = time.perf_counter()
            model = RNNForecaster(cell=cell, n_hidden=4, lookback=8, horizon=2, max_epochs=1,
                                  batch_size=16, dtype=dtype, levels=(80,))
            model.fit(series).predict()
            out[cell if len(dtypes) == 1 else f"{cell}/{dtype}"] = time.perf_counter() - t0
    return out
