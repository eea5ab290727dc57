"""Load, validate and regularise time series: CSV / Parquet / DataFrame -> `Dataset`.

    >>> from forecast import data
    >>> ds = data.load("datasets/yahoofinance-AAPL-20040819-20180120.csv", target="Close")
    >>> ds.freq.name, ds.future_index(3)          # doctest: +SKIP
    ('trading days (NYSE calendar)', DatetimeIndex(['2018-01-22', '2018-01-23', '2018-01-24'], ...))
    >>> print(ds.report.summary())                # what was found and done  # doctest: +SKIP

Bad input raises `forecast.errors.DataError` whose message says what was found, where
(column, row, timestamp) and how to fix it. What the loader did (rows sorted, duplicates
aggregated, markers replaced, points filled, frequency inferred) is listed in
``Dataset.report``; a constant target also emits a `forecast.errors.DataWarning`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from forecast.data._bundled import BUNDLED, DatasetInfo, bundled_info, bundled_path, datasets_dir
from forecast.data._calendar import NYSECalendar, exchange_holidays, trading_day_offset
from forecast.data._grid import as_ns, frequency_for, infer_frequency, regularise
from forecast.data._model import (
    DUPLICATE_POLICIES,
    FILL_METHODS,
    GAP_POLICIES,
    SUSPECT_SENTINELS,
    Dataset,
    Frequency,
    LoadOptions,
    LoadReport,
    require_length,
    series_bounds,
)
from forecast.data._read import Source, read_source
from forecast.data._validate import (
    duplicate_rows,
    find_covariates,
    find_id_col,
    find_targets,
    find_time_col,
    out_of_order,
    join_time_parts,
    parse_times,
    time_of_day_col,
    time_part_cols,
    raise_duplicates,
    value_column,
)
from forecast.errors import DataError, DataWarning

__all__ = [
    "BUNDLED",
    "DatasetInfo",
    "bundled_info",
    "bundled_path",
    "datasets_dir",
    "load",
    "LoadOptions",
    "LoadReport",
    "Dataset",
    "Frequency",
    "infer_frequency",
    "require_length",
    "read_source",
    "NYSECalendar",
    "trading_day_offset",
    "exchange_holidays",
    "DatasetInfo",
    "BUNDLED",
    "bundled_path",
    "datasets_dir",
    "GAP_POLICIES",
    "DUPLICATE_POLICIES",
    "FILL_METHODS",
    "SUSPECT_SENTINELS",
    "DataError",
    "DataWarning",
]


def load(source, options: LoadOptions | None = None, **overrides) -> Dataset:
    """Read, validate and regularise `source` into a `Dataset`.

    `source` is a CSV or Parquet path, a bundled dataset name (``"aapl"``, ``"goog"``,
    ``"etth1"``, ``"seattle-weather"``), a DataFrame (a time column, or a DatetimeIndex)
    or a Series with a DatetimeIndex. Options come as a `LoadOptions` and/or keyword
    overrides (``target="Close"``, ``gaps="fill"``...); see `LoadOptions` for each one.
    """
    options = (options or LoadOptions()).updated(**overrides) if overrides else (options or LoadOptions())
    raw, src = read_source(source, options.format)
    if src.bundled is not None and options.target is None:
        options = options.updated(target=BUNDLED[src.bundled].target)
    report = LoadReport(source=src.label, rows_read=len(raw), encoding=src.encoding,
                        duplicates_policy=options.duplicates)

    parts = None
    try:
        time_col = find_time_col(raw, options, src)
    except DataError:
        parts = time_part_cols(raw, options)
        if parts is None:
            raise
        time_col = "ds" if "ds" not in raw.columns else "__ds"
        raw = raw.assign(**{time_col: join_time_parts(raw, parts, src)})
        report.note(f"built the timestamps from columns "
                    f"{', '.join(map(repr, parts.values()))}")
    clock = time_of_day_col(raw, time_col, options)
    id_col = find_id_col(raw, options, src)
    if id_col == time_col:
        raise DataError(f"column {time_col!r} cannot be both the time and the id column")
    reserved = [c for c in (time_col, id_col, clock) if c is not None] + list((parts or {}).values())
    if clock is not None:  # dates in one column, times of day in another: one timestamp
        stamp = (raw[time_col].astype("string").str.strip() + " "
                 + raw[clock].astype("string").str.strip()).rename(time_col)
        raw = raw.assign(**{time_col: stamp})
        report.note(f"joined the dates of column {time_col!r} with the times of day of "
                    f"column {clock!r} into one timestamp")
    targets = find_targets(raw, options, reserved, src)
    covariates = find_covariates(raw, options, reserved, targets, src)
    times = parse_times(raw[time_col], options, src, report)

    columns: dict[str, object] = {}
    if id_col is not None:
        columns["unique_id"] = raw[id_col].to_numpy()
    columns["ds"] = times.to_numpy() if getattr(times.dtype, "tz", None) is None else times.array
    for role, names in (("target", targets), ("covariate", covariates)):
        for name in names:
            columns[name] = value_column(raw, name, role, times, options, src, report)
    columns["__row"] = np.arange(len(raw), dtype=np.int64)
    frame = pd.DataFrame(columns)
    del raw
    value_cols = list(targets) + list(covariates)

    if id_col is not None or not _strictly_increasing(frame["ds"]):
        frame = _dedupe(frame, id_col is not None, value_cols, options, src, report)
        frame = _sort(frame, id_col is not None, src, report)
    id_name = "unique_id" if id_col is not None else None
    bounds = series_bounds(frame, id_name)
    ids = [src.name] if id_name is None else list(frame[id_name].iloc[bounds[:-1]])
    freq = frequency_for(frame, bounds, ids, options, src.label)
    report.frequency, report.frequency_inferred = freq.alias, freq.inferred
    report.note(f"frequency {'inferred' if freq.inferred else 'given'}: {freq.name} ({freq.alias})")
    frame = regularise(frame, bounds, ids, value_cols, freq, options, report, src.where)
    frame = frame.drop(columns="__row")

    dataset = Dataset(frame=frame, target=tuple(targets), freq=freq, report=report,
                      covariates=tuple(covariates), id_col=id_name, name=src.name)
    report.rows, report.n_series = len(frame), dataset.n_series
    report.time_col, report.id_col = str(time_col), None if id_col is None else str(id_col)
    report.target, report.covariates = tuple(targets), tuple(covariates)
    _check_constant(dataset, report)
    if options.min_length:
        b = dataset.bounds
        for i, uid in enumerate(dataset.ids):
            n = int(b[i + 1] - b[i])
            if n < options.min_length:
                what = f"series {uid!r}" if id_col else src.label
                raise DataError(
                    f"{what} has {n} rows after validation but at least {options.min_length} "
                    "are needed (lookback + horizon); use a longer series or a shorter "
                    "lookback/horizon"
                )
    return dataset


def _strictly_increasing(times: pd.Series) -> bool:
    """Fast path for the common case: one series, sorted, no duplicated timestamp."""
    return bool((np.diff(as_ns(times)) > 0).all())


def _dedupe(frame: pd.DataFrame, multi: bool, value_cols: list[str], options: LoadOptions,
            src: Source, report: LoadReport) -> pd.DataFrame:
    keys = frame[["unique_id", "ds"] if multi else ["ds"]]
    dup = duplicate_rows(keys)
    if not dup.any():
        return frame
    report.duplicates = int(dup.sum())
    if options.duplicates == "error":
        raise_duplicates(keys, dup, "ds", src)
    by = list(keys.columns)
    agg = {c: options.duplicates for c in value_cols}
    agg["__row"] = "min"
    out = frame.groupby(by, sort=False, as_index=False).agg(agg)
    report.note(f"aggregated {report.duplicates} row(s) with a duplicated timestamp by "
                f"{options.duplicates!r}")
    return out[frame.columns]


def _sort(frame: pd.DataFrame, multi: bool, src: Source, report: LoadReport) -> pd.DataFrame:
    late = out_of_order(frame, "unique_id" if multi else None, "ds")
    grouped = True
    if multi:
        ids = frame["unique_id"].to_numpy()
        starts = np.concatenate([[True], ids[1:] != ids[:-1]])
        grouped = int(starts.sum()) == len(pd.unique(ids))
    if not late.any() and grouped:
        return frame
    by = ["unique_id", "ds"] if multi else ["ds"]
    if multi:
        frame = frame.assign(_order=pd.factorize(frame["unique_id"])[0])
        frame = frame.sort_values(["_order", "ds"], kind="stable").drop(columns="_order")
    else:
        frame = frame.sort_values(by, kind="stable")
    frame = frame.reset_index(drop=True)
    if late.any():
        i = int(np.flatnonzero(late)[0])
        report.rows_sorted = int(late.sum())
        report.note(f"rows were not in time order ({report.rows_sorted} row(s) earlier than the "
                    f"row before them, first at {src.where(i)}); sorted them by time")
    else:
        report.note("rows of each series were not contiguous; grouped them by unique_id")
    return frame


def _check_constant(dataset: Dataset, report: LoadReport) -> None:
    b = dataset.bounds
    for name in dataset.target:
        values = dataset.frame[name].to_numpy()
        for i, uid in enumerate(dataset.ids):
            part = values[b[i]:b[i + 1]]
            finite = part[np.isfinite(part)]
            if finite.size > 1 and finite.min() == finite.max():
                where = f" in series {uid!r}" if dataset.id_col else ""
                report.constant_columns.append(name if not dataset.id_col else f"{uid}:{name}")
                msg = (f"target column {name!r}{where} is constant (every value is "
                       f"{finite[0]:g}); scalers will use scale 1 instead of dividing by zero, "
                       "and models can only learn the constant")
                report.note(msg)
                warnings.warn(msg, DataWarning, stacklevel=3)
