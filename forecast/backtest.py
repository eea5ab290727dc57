"""Rolling-origin backtests: every model and the baselines, fold by fold.

>>> from forecast.backtest import backtest, BacktestConfig
>>> result = backtest({"gru": RNNForecaster(cell="gru")}, dataset,
...                   BacktestConfig(horizon=24, n_folds=5))       # doctest: +SKIP
>>> result.summary          # one row per model, with skill against the naive forecast

Geometry (per series; rows count from the series start). Cut-off ``c`` of a fold: the
model sees rows before ``c`` only (``expanding``: all of them; ``sliding``: the last
``train_size``) and forecasts rows ``c .. c + horizon - 1``. Cut-offs are ``step`` rows
apart (default: the horizon); the last fold ends at the series end unless
``first_cutoff`` (a row number or a date) places the first one.

Refitting: the model is refitted at every ``refit_every``-th fold (0: at the first fold
only; ``None``, the default: every ``ceil(n_folds / 4)`` folds, so at most four fits per
model). ``refit="fresh"`` fits a fresh copy each time; ``"warm"`` lets the same model
continue training from its weights for a quarter of ``max_epochs`` (models with a
``warm_start`` parameter); ``"auto"``
(the default) is warm for those models and fresh for the others. Folds between two
refits are forecast from the same fitted model in one batched pass, and the model never
sees rows after its own refit cut-off. ``progress(model, folds_done, n_folds, seconds)``,
if given, is called after each batch of folds (the library never prints).

Every backtest also runs the naive forecast (and the other ``baselines``) and reports
each model's skill against it: ``1 - MAE / MAE_naive`` (and the same for RMSE); a model
that does not beat a random walk has a skill at or below zero.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from forecast import metrics
from forecast.data import Dataset
from forecast.errors import ConfigError, DataError
from forecast.models import BaseForecaster, Forecaster, clone, make_model
from forecast.models.forecaster import as_dataset
from forecast.models.intervals import check_levels, interval_columns

__all__ = ["BacktestConfig", "BacktestResult", "backtest", "fold_cutoffs", "summary_tables",
           "baseline_skill", "BASELINE_NAMES",
           "refit_groups", "REFITS_PER_MODEL"]

WINDOWS = ("expanding", "sliding")
REFITS = ("fresh", "warm", "auto")
REFITS_PER_MODEL = 4  # refit_every=None: at most this many fits per model
#: the baselines a model is weighed against (``best_baseline`` in summaries)
BASELINE_NAMES = ("naive", "seasonal_naive", "drift")
WARM_EPOCHS = 0.25  # a warm refit trains for this share of max_epochs (at least 2)


@dataclass(frozen=True)
class BacktestConfig:
    """How to cut and refit; see the module docstring."""

    horizon: int
    n_folds: int | None = 5
    step: int | None = None
    first_cutoff: int | str | pd.Timestamp | None = None
    window: str = "expanding"
    train_size: int | None = None
    refit_every: int | None = None
    refit: str = "auto"
    levels: tuple[float, ...] = (80, 95)
    baselines: tuple[str, ...] = ("naive", "seasonal_naive")
    season: int | None = None

    def __post_init__(self) -> None:
        for name in ("horizon",):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        for name in ("n_folds", "step", "train_size", "season"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer))
                                  or v < 1):
                raise ConfigError(f"{name} must be a positive integer or None, got {v!r}")
        if self.n_folds is None and self.first_cutoff is None:
            raise ConfigError("give n_folds or first_cutoff (or both)")
        if self.window not in WINDOWS:
            raise ConfigError(f"window must be 'expanding' or 'sliding', got {self.window!r}")
        if self.refit not in REFITS:
            raise ConfigError(f"refit must be 'fresh', 'warm' or 'auto', got {self.refit!r}")
        if self.refit_every is not None and (
                isinstance(self.refit_every, bool) or not isinstance(self.refit_every, int)
                or self.refit_every < 0):
            raise ConfigError(f"refit_every must be an integer >= 0 (0 = fit once) or None "
                              f"(every ceil(folds / {REFITS_PER_MODEL}) folds), got "
                              f"{self.refit_every!r}")
        object.__setattr__(self, "levels", check_levels(self.levels))
        object.__setattr__(self, "baselines", tuple(self.baselines))


@dataclass
class BacktestResult:
    """Per-row forecasts and the tables derived from them."""

    forecasts: pd.DataFrame  # model, fold, unique_id, cutoff, ds, step, y, yhat, bounds
    folds: pd.DataFrame  # model, fold, cutoff, fit_seconds, predict_seconds, refit,
    # random_walk (refit rows of the recurrent models: the fit forecasts the last value),
    # metrics
    by_step: pd.DataFrame  # model, step, metrics
    summary: pd.DataFrame  # model: metrics, coverage, skill vs naive, times
    config: BacktestConfig
    cutoffs: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))


def fold_cutoffs(dataset: Dataset, config: BacktestConfig) -> np.ndarray:
    """``(n_series, n_folds)`` cut-off rows (from each series' start)."""
    H = config.horizon
    step = config.step or H
    b = dataset.bounds
    lengths = np.diff(b)
    out = []
    for i, n in enumerate(lengths):
        if config.first_cutoff is None:
            last = n - H
            cuts = [last - k * step for k in range(config.n_folds)][::-1]
        else:
            fc = config.first_cutoff
            if isinstance(fc, (int, np.integer)) and not isinstance(fc, bool):
                first = int(fc)
            else:
                ds = pd.DatetimeIndex(dataset.frame[dataset.time_col].iloc[b[i]:b[i + 1]])
                try:
                    t = pd.Timestamp(fc)
                except (TypeError, ValueError):
                    raise ConfigError(f"first_cutoff={fc!r} is neither a row number nor a "
                                      "date") from None
                if ds.tz is not None and t.tz is None:
                    t = t.tz_localize(ds.tz)
                first = int(ds.searchsorted(t, side="left"))
            fits = (n - H - first) // step + 1 if n - H >= first else 0
            count = fits if config.n_folds is None else min(fits, config.n_folds)
            cuts = [first + k * step for k in range(count)]
        if cuts and cuts[0] < 1:
            uid = dataset.ids[i] if i < len(dataset.ids) else i
            room = max((n - H - 1) // step + 1, 0) if n - H >= 1 else 0
            raise DataError(
                f"{len(cuts)} folds of {H} steps, {step} apart, leave no rows to train on "
                f"before the first fold of series {uid!r} ({n} rows): it has room for at most "
                f"{room} fold(s), and the models need many training rows before them; ask "
                "for fewer folds (--folds) or a shorter horizon, or give a longer series")
        out.append(cuts)
    counts = {len(c) for c in out}
    if len(counts) != 1 or 0 in counts:
        raise DataError(f"the series give {sorted(counts)} folds; every series needs the same "
                        "number (at least one): choose first_cutoff/n_folds to fit the "
                        "shortest series")
    return np.array(out, dtype=np.int64)


def _truncate(dataset: Dataset, cut: np.ndarray, config: BacktestConfig) -> Dataset:
    b = dataset.bounds
    parts = []
    for i in range(len(b) - 1):
        end = b[i] + cut[i]
        start = b[i] if config.window == "expanding" else max(b[i], end - (config.train_size or
                                                                          cut[i]))
        parts.append(dataset.frame.iloc[start:end])
    frame = pd.concat(parts, ignore_index=True)
    return replace(dataset, frame=frame)


def _named_models(models) -> dict[str, BaseForecaster]:
    if isinstance(models, BaseForecaster):
        models = [models]
    if isinstance(models, dict):
        items = list(models.items())
    else:
        items, seen = [], {}
        for m in models:
            name = type(m).__name__.lower()
            if getattr(m, "cell", None):
                name = m.cell
            seen[name] = seen.get(name, 0) + 1
            items.append((name if seen[name] == 1 else f"{name}_{seen[name]}", m))
    for name, m in items:
        if not isinstance(m, Forecaster):
            raise ConfigError(f"model {name!r} is a {type(m).__name__}, not a forecaster")
    return dict(items)


def refit_groups(n_folds: int, refit_every: int | None) -> list[list[int]]:
    """Folds forecast by each fit: ``[[0, 1, 2], [3, 4, 5], ...]``."""
    k = refit_every
    if k is None:
        k = max(1, -(-n_folds // REFITS_PER_MODEL))
    starts = [0] if k == 0 else list(range(0, n_folds, k))
    return [list(range(s, (starts[j + 1] if j + 1 < len(starts) else n_folds)))
            for j, s in enumerate(starts)]


def backtest(models, data, config: BacktestConfig, progress=None) -> BacktestResult:
    """Run a rolling-origin backtest of `models` (one, a list or ``{name: model}``) and
    of the baselines on `data` (a Dataset or frame); see the module docstring."""
    dataset = as_dataset(data)
    named = _named_models(models)
    season = config.season or dataset.freq.season_length or 1
    for bname in config.baselines:
        if bname not in named:
            params = {"season": season} if bname == "seasonal_naive" else {}
            named[bname] = make_model(bname, horizon=config.horizon, **params)
    if "naive" not in named:
        named["naive"] = make_model("naive", horizon=config.horizon)
    cuts = fold_cutoffs(dataset, config)
    rows, fold_rows = [], []
    for name, proto in named.items():
        f, r = _run_model(name, proto, dataset, cuts, config, progress)
        rows.append(f)
        fold_rows += r
    forecasts = pd.concat(rows, ignore_index=True)
    folds = _fold_table(forecasts, pd.DataFrame(fold_rows), dataset, cuts, config, season)
    by_step, summary = _summary(forecasts, folds, config)
    return BacktestResult(forecasts, folds, by_step, summary, config, cuts)


def _run_model(name, proto, dataset, cuts, config, progress=None):
    n_series, n_folds = cuts.shape
    groups = refit_groups(n_folds, config.refit_every)
    model = None
    frames, fold_rows = [], []
    params = {"horizon": config.horizon, "levels": config.levels}
    warm = config.refit == "warm" or (config.refit == "auto"
                                      and "warm_start" in proto.get_params())
    t_start = time.perf_counter()
    for group in groups:
        train = _truncate(dataset, cuts[:, group[0]], config)
        if model is None or not warm:
            model = clone(proto).set_params(**{p: v for p, v in params.items()
                                              if p in proto.get_params()})
        elif "warm_start" in model.get_params():
            model.set_params(warm_start=True)
            if "max_epochs" in model.get_params():  # continuing needs fewer epochs
                epochs = proto.get_params()["max_epochs"]
                model.set_params(max_epochs=min(epochs, max(2, int(epochs * WARM_EPOCHS))))
        t0 = time.perf_counter()
        try:
            model.fit(train)
        except DataError as exc:
            hint = ("; this fold trains on the rows before its cut-off (fewer folds leave "
                    "it more)" if group[0] == 0 else "")
            raise DataError(f"backtest fold {group[0]} (model {name!r}): {exc}{hint}") from None
        fit_s = time.perf_counter() - t0
        series = np.repeat(np.arange(n_series), len(group))
        rws = cuts[:, group].reshape(-1)
        t0 = time.perf_counter()
        point, bounds = model.forecast_origins(dataset, series, rws, config.levels)
        pred_s = time.perf_counter() - t0
        frames.append(_rows(name, dataset, series, rws, np.tile(group, n_series), point, bounds,
                            config.horizon))
        start = getattr(model, "linear_start_", None)
        walk = None if not isinstance(start, dict) else bool(start.get("last_value"))
        for j, fold in enumerate(group):
            fold_rows.append({"model": name, "fold": fold, "refit": j == 0,
                              "fit_seconds": fit_s if j == 0 else 0.0,
                              "predict_seconds": pred_s / len(group),
                              "random_walk": walk if j == 0 else None})
        if progress is not None:
            progress(name, group[-1] + 1, n_folds, time.perf_counter() - t_start)
    return pd.concat(frames, ignore_index=True), fold_rows


def _rows(name, dataset, series, rws, folds, point, bounds, H):
    b = dataset.bounds
    y_col = dataset.target[0]
    yv = dataset.frame[y_col].to_numpy(dtype=np.float64)
    ds = dataset.frame[dataset.time_col].to_numpy()
    ids = dataset.ids
    idx = (b[series] + rws)[:, None] + np.arange(H)[None, :]
    out = {"model": name, "fold": np.repeat(folds, H),
           "unique_id": np.repeat(np.asarray(ids, dtype=object)[series], H),
           "cutoff": np.repeat(ds[b[series] + rws], H), "ds": ds[idx].reshape(-1),
           "step": np.tile(np.arange(1, H + 1), len(series)),
           "y": yv[idx].reshape(-1), "yhat": point.reshape(-1),
           "y_last": np.repeat(yv[b[series] + rws - 1], H)}
    for lv, (lo, hi) in bounds.items():
        lname, uname = interval_columns(lv)
        out[lname], out[uname] = lo.reshape(-1), hi.reshape(-1)
    return pd.DataFrame(out)


def _levels_of(forecasts: pd.DataFrame) -> tuple[float, ...]:
    return tuple(sorted({float(c[len("yhat_lower_"):].replace("_", ".")) for c in forecasts.columns
                         if c.startswith("yhat_lower_")}))


def _metrics(g: pd.DataFrame, levels) -> dict:
    """`forecast.metrics.forecast_metrics` of the rows of `g` (plain arrays first: pandas
    indexing per column and group cost ~2 ms a group)."""
    intervals = {}
    for lv in levels:
        lname, uname = interval_columns(lv)
        if lname in g:
            intervals[lv] = (g[lname].to_numpy(np.float64), g[uname].to_numpy(np.float64))
    last = g["y_last"].to_numpy(np.float64) if "y_last" in g else None
    return metrics.forecast_metrics(g["y"].to_numpy(np.float64), g["yhat"].to_numpy(np.float64),
                                    y_last=last, intervals=intervals)


def summary_tables(forecasts: pd.DataFrame, levels=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(by_step, summary)`` of per-forecast rows (columns ``model``, ``step``, ``y``,
    ``yhat``, optional ``y_last``, ``fold`` and interval bounds), every figure from
    `forecast.metrics`; the summary has the skill against the ``naive`` rows when there
    are any. Used by `backtest` and by reports of a saved backtest file."""
    need = {"model", "step", "y", "yhat"}
    missing = sorted(need - set(forecasts.columns))
    if missing:
        raise DataError(f"the backtest table lacks column(s) {missing}; pass the file that "
                        "`forecast backtest -o` wrote")
    levels = _levels_of(forecasts) if levels is None else tuple(levels)
    by_step = pd.DataFrame([{"model": m, "step": st, **_metrics(g, levels)}
                            for (m, st), g in forecasts.groupby(["model", "step"], sort=False)])
    rows = []
    for m, g in forecasts.groupby("model", sort=False):
        row = {"model": m, **_metrics(g, levels)}
        if "fold" in g:
            row["n_folds"] = int(g["fold"].nunique())
        rows.append(row)
    summary = pd.DataFrame(rows)
    if (summary["model"] == "naive").any():
        naive = summary.loc[summary["model"] == "naive"].iloc[0]
        summary["skill_mae"] = [metrics.skill(v, naive["mae"]) for v in summary["mae"]]
        summary["skill_rmse"] = [metrics.skill(v, naive["rmse"]) for v in summary["rmse"]]
        summary["beats_naive"] = summary["skill_mae"] > 0
        if "fold" in forecasts:
            summary["skill_z"] = _skill_z(forecasts, summary["model"])
    summary = baseline_skill(summary, forecasts)
    if "fold" in forecasts:
        for lv in levels:
            if f"coverage_{float(lv):g}" in summary:
                summary[f"cover_z_{float(lv):g}"] = _cover_z(forecasts, summary["model"], lv)
    return by_step, summary


def _cover_z(forecasts: pd.DataFrame, models, level) -> list[float]:
    """Per model, `forecast.metrics.coverage_z` of its `level` % intervals over the
    (series, fold) units: how many standard errors the coverage lies from `level`."""
    lname, uname = interval_columns(level)
    keys = ["unique_id", "fold"] if "unique_id" in forecasts else ["fold"]
    y = forecasts["y"].to_numpy(np.float64)
    lo, hi = forecasts[lname].to_numpy(np.float64), forecasts[uname].to_numpy(np.float64)
    scored = np.isfinite(y) & np.isfinite(forecasts["yhat"].to_numpy(np.float64)) \
        & np.isfinite(lo) & np.isfinite(hi)
    units = pd.concat([forecasts[["model"] + keys].reset_index(drop=True),
                       pd.DataFrame({"hit": scored & (y >= lo) & (y <= hi),
                                     "n": scored})], axis=1)
    per = units.groupby(["model"] + keys, sort=False)[["hit", "n"]].sum()
    out = []
    for m in models:
        g = per.loc[m]
        out.append(metrics.coverage_z(g["hit"].to_numpy(), g["n"].to_numpy(), level))
    return out


def baseline_skill(summary: pd.DataFrame, forecasts: pd.DataFrame) -> pd.DataFrame:
    """`summary` with the best baseline by MAE (``best_baseline``: naive, seasonal naive
    or drift, what a model must beat to be worth its cost), every model's skill against
    it (``skill_vs_baseline``) and, with folds, its paired z (``skill_vs_baseline_z``).
    Unchanged without a baseline row."""
    mae_of = summary.set_index("model")["mae"].astype(float)
    bases = [b for b in BASELINE_NAMES if b in mae_of.index and np.isfinite(mae_of[b])]
    if not bases:
        return summary
    ref = min(bases, key=lambda b: mae_of[b])
    summary = summary.copy()
    summary["best_baseline"] = ref
    summary["skill_vs_baseline"] = [metrics.skill(v, mae_of[ref]) for v in summary["mae"]]
    if "fold" in forecasts:
        summary["skill_vs_baseline_z"] = _skill_z(forecasts, summary["model"], ref)
    return summary


def _skill_z(forecasts: pd.DataFrame, models, reference: str = "naive") -> list[float]:
    """Per model, `forecast.metrics.paired_z` of its MAE against the `reference` model's
    over the (series, fold) pairs: how many standard errors its gain is above zero. The
    steps of a fold share their path, so the fold, not the row, is the sample."""
    keys = ["unique_id", "fold"] if "unique_id" in forecasts else ["fold"]
    ae = (forecasts["y"] - forecasts["yhat"]).abs().rename("ae")
    per = pd.concat([forecasts[["model"] + keys], ae], axis=1).groupby(
        ["model"] + keys, sort=False)["ae"].mean()
    base = per.loc[reference]
    return [metrics.paired_z(per.loc[m].reindex(base.index).to_numpy(), base.to_numpy())
            if m != reference else float("nan") for m in models]


def _fold_table(forecasts, times, dataset, cuts, config, season):
    # MASE scale per (series, fold): in-sample seasonal naive MAE before the cut-off.
    b = dataset.bounds
    yv = dataset.frame[dataset.target[0]].to_numpy(dtype=np.float64)
    scale = {}
    for i, uid in enumerate(dataset.ids):
        for f in range(cuts.shape[1]):
            sc = metrics.naive_scale(yv[b[i]:b[i] + cuts[i, f]], season)
            scale[(uid, f)] = sc if sc > 0 else np.nan
    fc = forecasts.assign(_scale=[scale[(u, f)] for u, f in zip(forecasts["unique_id"],
                                                                  forecasts["fold"])])
    rows = []
    for (model, fold), g in fc.groupby(["model", "fold"], sort=False):
        m = _metrics(g, config.levels)
        sc = g["_scale"].to_numpy(np.float64)
        ok = np.isfinite(sc)
        m["mase"] = (metrics.mae(g["y"].to_numpy(np.float64)[ok] / sc[ok],
                                 g["yhat"].to_numpy(np.float64)[ok] / sc[ok])
                     if ok.any() else float("nan"))
        rows.append({"model": model, "fold": fold, "cutoff": g["cutoff"].iloc[0], **m})
    table = pd.DataFrame(rows)
    return table.merge(times, on=["model", "fold"], how="left")


def _summary(forecasts, folds, config):
    by_step, table = summary_tables(forecasts, config.levels)
    extra = []
    for model in table["model"]:
        f = folds[folds["model"] == model]
        extra.append({"mase": float(f["mase"].mean()),
                      "fit_seconds": float(f["fit_seconds"].sum()),
                      "predict_seconds": float(f["predict_seconds"].sum()),
                      "seconds": float(f["fit_seconds"].sum() + f["predict_seconds"].sum())})
    extra = pd.DataFrame(extra)
    cols = [c for c in table.columns if c not in ("skill_mae", "skill_rmse", "beats_naive",
                                                  "n_folds")]
    out = pd.concat([table[cols], extra, table[["n_folds", "skill_mae", "skill_rmse",
                                                "beats_naive"]]], axis=1)
    return by_step, out
