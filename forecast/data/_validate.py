"""Column detection and strict validation of the time column and value columns.

Every check reports positions as rows of the input in its original order (0-based, the
header not counted); CSV messages add the file line.
"""

from __future__ import annotations

import difflib
import warnings
from typing import Sequence

import numpy as np
import pandas as pd

from forecast.data._model import SUSPECT_SENTINELS, LoadOptions, LoadReport, is_number
from forecast.data._read import Source
from forecast.errors import DataError

TIME_NAMES = ("ds", "date", "timestamp", "time", "datetime", "date_time", "dt")
_TZ_SUFFIX = r"\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|UTC|[+-]\d{2}(?::?\d{2})?)$"


def _cols(frame: pd.DataFrame) -> str:
    names = [str(c) for c in frame.columns]
    return ", ".join(repr(c) for c in names[:30]) + (" ..." if len(names) > 30 else "")


def _did_you_mean(name: str, frame: pd.DataFrame) -> str:
    close = difflib.get_close_matches(str(name), [str(c) for c in frame.columns], n=1, cutoff=0.6)
    if not close:
        lower = {str(c).lower(): str(c) for c in frame.columns}
        close = [lower[str(name).lower()]] if str(name).lower() in lower else []
    return f" (did you mean {close[0]!r}?)" if close else ""


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


# ---- time column -------------------------------------------------------------------------
def find_time_col(frame: pd.DataFrame, options: LoadOptions, src: Source) -> str:
    if options.time_col is not None:
        if options.time_col not in frame.columns:
            raise DataError(
                f"time column {options.time_col!r} not found in {src.label}"
                f"{_did_you_mean(options.time_col, frame)}; the columns are {_cols(frame)}; "
                "pass the right name with time_col= (--time-col)"
            )
        return options.time_col
    by_name = {str(c).strip().lower(): c for c in reversed(list(frame.columns))}
    for name in TIME_NAMES:
        if name in by_name:
            return by_name[name]
    for col in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[col]):
            return col
    for col in frame.columns:  # a text column whose first values all read as dates
        s = frame[col]
        if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            continue
        head = s.head(10)
        if head.notna().all() and _looks_like_dates(head):
            return col
    raise DataError(
        f"no time column found in {src.label}: none of the columns {_cols(frame)} is named "
        f"{', '.join(TIME_NAMES)} (any case) or holds datetimes; pass the name of the column "
        "that holds the timestamps with time_col= (--time-col)"
    )


#: columns a timestamp can be built from when a file has no time column (UCI and NOAA
#: exports write year, month, day and hour apart; monthly files year and month)
TIME_PARTS = ("year", "month", "day", "hour", "minute")


def time_part_cols(frame: pd.DataFrame, options: LoadOptions) -> dict[str, str] | None:
    """``{part: column}`` for a file whose timestamps are split into year and month (and
    optionally day, hour, minute, each only after the one before) columns, named so in
    any case; None when the user named a time column or the file lacks year or month."""
    if options.time_col is not None:
        return None
    by_name = {str(c).strip().lower(): c for c in frame.columns}
    if "year" not in by_name or "month" not in by_name:
        return None
    parts = {}
    for p in TIME_PARTS:
        if p not in by_name:
            break  # an hour without a day means nothing
        parts[p] = by_name[p]
    return parts


def join_time_parts(frame: pd.DataFrame, parts: dict[str, str], src: Source) -> pd.Series:
    """The timestamps of `time_part_cols`' columns, or a DataError naming the first row
    whose parts do not make a date."""
    table = pd.DataFrame({p: pd.to_numeric(frame[c], errors="coerce") for p, c in parts.items()})
    if "day" not in table:
        table["day"] = 1  # a monthly file: each month's first day
    times = pd.to_datetime(table, errors="coerce")
    bad = times.isna().to_numpy()
    if bad.any():
        i = _first(bad)
        shown = ", ".join(f"{c}={frame[c].astype('string').iloc[i]}" for c in parts.values())
        raise DataError(
            f"the timestamps are built from columns {', '.join(map(repr, parts.values()))}, but "
            f"{int(bad.sum())} row(s) do not make a date (first at {src.where(i)}: {shown}); "
            "fix those rows, or give a time column with time_col= (--time-col)")
    return times


_TIME_OF_DAY = r"\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?"


def time_of_day_col(frame: pd.DataFrame, time_col: str, options: LoadOptions) -> str | None:
    """A column that holds the time of day (``13:00``, ``7:30:00``) for a time column that
    holds dates only (weather-station exports write ``Date,Time,...``): the first other
    text column whose every value is a time of day, or None. Not looked for when the
    time column was named or given a format (the user said how to read it)."""
    if options.time_col is not None or options.time_format is not None:
        return None
    dates = frame[time_col]
    if pd.api.types.is_datetime64_any_dtype(dates) or pd.api.types.is_numeric_dtype(dates):
        return None
    text = dates.astype("string").str.strip()
    if text.str.contains(r"[:T]", regex=True).fillna(False).any():
        return None  # the time column carries its own times
    for col in frame.columns:
        s = frame[col]
        if col == time_col or pd.api.types.is_numeric_dtype(s) or \
                pd.api.types.is_datetime64_any_dtype(s):
            continue
        t = s.astype("string").str.strip()
        if t.notna().all() and t.str.fullmatch(_TIME_OF_DAY).all():
            return col
    return None


def _looks_like_dates(head: pd.Series) -> bool:
    text = head.astype("string").str.strip()
    if not text.str.contains(r"\d", regex=True).all():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas warns when it has to guess a format
        try:
            parsed = pd.to_datetime(text, format="mixed", errors="coerce")
        except (ValueError, TypeError, OverflowError):
            return False
    return bool(parsed.notna().all())


def parse_times(col: pd.Series, options: LoadOptions, src: Source, report: LoadReport) -> pd.Series:
    """Parse the time column into datetime64 values, or raise a `DataError` that says which
    values are wrong and why (empty, unparseable, mixed formats, aware mixed with naive)."""
    name = col.name
    if pd.api.types.is_datetime64_any_dtype(col):
        times = col
    elif pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        if options.time_format is None:
            raise DataError(
                f"time column {name!r} holds numbers (first: {col.iloc[0]!r}), not timestamps; "
                "convert it to dates, or pass time_format= (e.g. '%Y%m%d') to read the digits "
                "as dates (--time-format)"
            )
        times = _parse_strings(col.astype("string"), options, src, report)
    else:
        times = _parse_strings(col, options, src, report)
    empty = times.isna().to_numpy()
    if empty.any():
        i = _first(empty)
        raise DataError(
            f"time column {name!r} has {int(empty.sum())} empty timestamp(s) (first at "
            f"{src.where(i)}); fill them in or remove those rows"
        )
    tz = getattr(times.dtype, "tz", None)
    report.timezone = None if tz is None else str(tz)
    return times


def _blank(col: pd.Series) -> np.ndarray:
    text = col.astype("string").str.strip()
    return (text.isna() | (text == "")).to_numpy(dtype=bool)


def _arrow_iso(col: pd.Series) -> pd.Series | None:
    """Fast path: Arrow-backed strings that are all ISO 8601 without a UTC offset, parsed by
    Arrow's cast (about 10x faster than pandas' parser); ``None`` to use pandas."""
    dtype = col.dtype
    if not (isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"):
        return None
    try:  # Arrow-backed strings mean pyarrow is installed (the parquet extra)
        import pyarrow as pa
        import pyarrow.compute as pc
    except ImportError:
        return None

    try:
        parsed = pc.cast(pa.array(col.array), pa.timestamp("us"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, TypeError):
        return None
    if parsed.null_count:
        return None
    return pd.Series(np.asarray(parsed.to_numpy()), index=col.index, name=col.name)


def _parse_strings(col: pd.Series, options: LoadOptions, src: Source, report: LoadReport) -> pd.Series:
    if options.time_format is None:
        fast = _arrow_iso(col)
        if fast is not None:
            return fast
    try:
        return pd.to_datetime(col, format=options.time_format)
    except (ValueError, TypeError, OverflowError):
        pass
    blank = _blank(col)
    if blank.any():
        i = _first(blank)
        raise DataError(
            f"time column {col.name!r} has {int(blank.sum())} empty timestamp(s) (first at "
            f"{src.where(i)}); fill them in or remove those rows"
        )
    return _diagnose_times(col, options, src, report)


def _day_first(text: pd.Series) -> tuple[pd.Series, str] | None:
    """The timestamps read day first (``31/12/2015``, ``31.12.2015 23:00``) when one such
    format, guessed from the first value, reads every one of them; None otherwise. Only
    formats that start with the day qualify (pandas would also guess year-day-month)."""
    from pandas.tseries.api import guess_datetime_format

    first = text.iloc[0] if len(text) else None
    if not isinstance(first, str):
        return None
    fmt = guess_datetime_format(first, dayfirst=True)
    if not fmt or not fmt.startswith("%d"):
        return None
    times = pd.to_datetime(text, format=fmt, errors="coerce")
    return (times, fmt) if times.notna().all() else None


def _diagnose_times(col: pd.Series, options: LoadOptions, src: Source, report: LoadReport) -> pd.Series:
    name = col.name
    text = col.astype("string").str.strip()
    is_obj = col.dtype == object
    aware = np.array([getattr(v, "tzinfo", None) is not None for v in col], dtype=bool) if is_obj \
        else np.zeros(len(col), dtype=bool)
    naive_obj = np.array([hasattr(v, "tzinfo") and v.tzinfo is None for v in col], dtype=bool) \
        if is_obj else np.zeros(len(col), dtype=bool)
    strings = ~(aware | naive_obj)
    aware |= strings & text.str.contains(_TZ_SUFFIX, regex=True).fillna(False).to_numpy(dtype=bool)
    naive = ~aware
    if aware.any() and naive.any():
        i, j = _first(aware), _first(naive)
        raise DataError(
            f"time column {name!r} mixes timezone-aware and naive timestamps: "
            f"{int(aware.sum())} carry a timezone (first at {src.where(i)}: {text.iloc[i]!r}) and "
            f"{int(naive.sum())} do not (first at {src.where(j)}: {text.iloc[j]!r}); write them "
            "all with a UTC offset or all without one (e.g. convert everything to UTC)"
        )
    if aware.all():
        try:
            times = pd.to_datetime(col, utc=True, format=options.time_format)
            report.note("timestamps carry different UTC offsets; converted them all to UTC")
            return times
        except (ValueError, TypeError, OverflowError):
            pass
    fmt = options.time_format
    if fmt is None:
        mixed = pd.to_datetime(col, format="mixed", errors="coerce")
        if mixed.notna().all():
            first_fmt = pd.to_datetime(col, errors="coerce")
            j = _first(first_fmt.isna().to_numpy())
            day = _day_first(text)
            if day is not None:
                times, dfmt = day
                report.note(f"read the timestamps day first ({dfmt}): {text.iloc[j]!r} "
                            f"({src.where(j)}) cannot be month first; pass time_format= "
                            "(--time-format) to read them otherwise")
                return times
            raise DataError(
                f"time column {name!r} mixes timestamp formats: {src.where(0)} is "
                f"{text.iloc[0]!r} but {src.where(j)} is {text.iloc[j]!r}; write every "
                "timestamp in one format (ISO 8601, e.g. 2016-07-01 00:00:00) or pass "
                "time_format= (--time-format)"
            )
        bad = mixed.isna().to_numpy()
        how = "with any date format"
    else:
        bad = pd.to_datetime(col, format=fmt, errors="coerce").isna().to_numpy()
        how = f"with time_format={fmt!r}"
    i = _first(bad) if bad.any() else 0
    raise DataError(
        f"time column {name!r} has {int(bad.sum())} value(s) that cannot be read as timestamps "
        f"{how} (first at {src.where(i)}: {text.iloc[i]!r}); fix or remove those rows, or pass "
        "time_format= (--time-format) if the format is unusual"
    )


# ---- id, target and covariate columns ---------------------------------------------------
def find_id_col(frame: pd.DataFrame, options: LoadOptions, src: Source) -> str | None:
    if options.id_col is not None:
        if options.id_col not in frame.columns:
            raise DataError(
                f"id column {options.id_col!r} not found in {src.label}"
                f"{_did_you_mean(options.id_col, frame)}; the columns are {_cols(frame)}; "
                "pass the right name with id_col= (--id-col) or leave it out for one series"
            )
        col = options.id_col
    elif "unique_id" in frame.columns:
        col = "unique_id"
    else:
        return None
    blank = _blank(frame[col])
    if blank.any():
        i = _first(blank)
        raise DataError(
            f"id column {col!r} has {int(blank.sum())} empty value(s) (first at {src.where(i)}); "
            "give every row a series id"
        )
    return col


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)


def find_targets(frame: pd.DataFrame, options: LoadOptions, reserved: Sequence[str],
                 src: Source) -> tuple[str, ...]:
    wanted = options.targets()
    if wanted:
        for t in wanted:
            if t not in frame.columns:
                raise DataError(
                    f"target column {t!r} not found in {src.label}{_did_you_mean(t, frame)}; "
                    f"the columns are {_cols(frame)}; choose one of them with target= (--target)"
                )
            if t in reserved:
                raise DataError(f"column {t!r} is the time or id column and cannot be the target; "
                                "choose another target (--target)")
        return tuple(wanted)
    if "y" in frame.columns and "y" not in reserved:
        return ("y",)
    numeric = [c for c in frame.columns if c not in reserved and _is_numeric(frame[c])]
    if len(numeric) == 1:
        return (numeric[0],)
    others = [c for c in frame.columns if c not in reserved]
    if not numeric and len(others) == 1:
        return (others[0],)  # the only value column: value_column says what is wrong in it
    if not numeric:
        raise DataError(
            f"no numeric column to forecast in {src.label}: the columns are {_cols(frame)}; "
            "pass the target column with target= (--target)"
        )
    raise DataError(
        f"{src.label} has {len(numeric)} numeric columns ({', '.join(map(repr, numeric))}); "
        "choose the one to forecast with target= (--target)"
    )


def find_covariates(frame: pd.DataFrame, options: LoadOptions, reserved: Sequence[str],
                    targets: Sequence[str], src: Source) -> tuple[str, ...]:
    cov = options.covariates
    if cov is None:
        return ()
    taken = set(reserved) | set(targets)
    if isinstance(cov, str) and cov == "all":
        return tuple(c for c in frame.columns if c not in taken and _is_numeric(frame[c]))
    cov = (cov,) if isinstance(cov, str) else tuple(cov)
    for c in cov:
        if c not in frame.columns:
            raise DataError(
                f"covariate column {c!r} not found in {src.label}{_did_you_mean(c, frame)}; "
                f"the columns are {_cols(frame)}; fix the name in covariates= (--covariates)"
            )
        if c in taken:
            raise DataError(f"column {c!r} is already the time, id or target column; "
                            "remove it from covariates= (--covariates)")
    return cov


# ---- values ------------------------------------------------------------------------------
def _markers(options: LoadOptions) -> tuple[set[str], np.ndarray]:
    if not options.missing_values:
        return set(), np.array([], dtype=np.float64)
    strings = {str(m).strip() for m in options.missing_values if isinstance(m, str)}
    numbers = [float(m) for m in options.missing_values if is_number(m)]
    for m in strings:  # "-9999" given as text also matches the number
        try:
            numbers.append(float(m))
        except ValueError:
            pass
    return strings, np.array(numbers, dtype=np.float64)


def _when(times: pd.Series, i: int) -> str:
    return str(times.iloc[i])


#: a number with a decimal comma and optional dots between thousands (1.234,5; 20,7)
_DECIMAL_COMMA = r"[+-]?(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,\d+)?"
#: a number with commas between thousands and an optional decimal point (1,234.5)
_THOUSANDS_COMMA = r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"


def _local_numbers(text: pd.Series, sep: str | None):
    """Numbers written the local way: in a file separated by ``;`` (or tab or ``|``),
    decimal commas (``20,7``, ``1.234,5``), the convention wherever the comma is the
    decimal mark; in a comma-separated file, commas between thousands (``"1,234.5"``,
    quoted). Returns ``(floats, how, misfits)`` when some value has such a comma, with
    ``misfits`` marking the values that are no number of that kind; None when none has
    one or the source is not a CSV file."""
    if sep is None:
        return None
    filled = (text.notna() & (text != "")).to_numpy(dtype=bool)
    if sep == ",":
        pattern, how = _THOUSANDS_COMMA, "with commas between thousands (1,234.5 = 1234.5)"
        plain = text.str.replace(",", "", regex=False)
    else:
        pattern = _DECIMAL_COMMA
        how = (f"with decimal commas (1.234,5 = 1234.5), as its {sep!r}-separated file "
               "writes them")
        plain = text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    fits = text.str.fullmatch(pattern).fillna(False).to_numpy(dtype=bool)
    if not (fits & text.str.contains(",", regex=False).fillna(False).to_numpy(dtype=bool)).any():
        return None
    return pd.to_numeric(plain.where(fits), errors="coerce"), how, filled & ~fits


def value_column(frame: pd.DataFrame, name: str, role: str, times: pd.Series,
                 options: LoadOptions, src: Source, report: LoadReport) -> np.ndarray:
    """Column `name` as float64 with missing markers turned into NaN; raises on text,
    infinities and (by default) placeholder values such as -9999."""
    col = frame[name]
    strings, numbers = _markers(options)
    replaced = 0
    if _is_numeric(col):
        values = col.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        text = col.astype("string").str.strip()
        if strings:
            hit = text.isin(list(strings)).to_numpy(dtype=bool)
            replaced += int(hit.sum())
            text = text.mask(hit)
        parsed = pd.to_numeric(text, errors="coerce")
        bad = (parsed.isna() & text.notna() & (text != "")).to_numpy(dtype=bool)
        local = _local_numbers(text, src.sep) if bad.any() else None
        if local is not None:
            parsed, how, misfits = local
            if misfits.any():
                i = _first(misfits)
                raise DataError(
                    f"column {name!r} is written {how.split(' (')[0]}, but {int(misfits.sum())} "
                    f"value(s) are no such number (first at {src.where(i)}: {text.iloc[i]!r}); "
                    "write every value the same way, or declare a marker for missing values "
                    f"with missing_values=[{text.iloc[i]!r}] (--missing)")
            bad = np.zeros(len(text), dtype=bool)
            report.note(f"read column {name!r} {how}")
        if bad.any():
            i = _first(bad)
            fix = "choose another target (--target)" if role == "target" else \
                "drop it from the covariates (--covariates) or encode it as numbers"
            raise DataError(
                f"column {name!r} has {int(bad.sum())} non-numeric value(s) (first at "
                f"{src.where(i)}: {text.iloc[i]!r}); clean the column, declare the marker "
                f"with missing_values=[{text.iloc[i]!r}] (--missing) if it means 'missing', or {fix}"
            )
        values = parsed.to_numpy(dtype=np.float64, na_value=np.nan)
    if numbers.size:
        hit = np.isin(values, numbers)
        if hit.any():
            values = values.copy() if not values.flags.writeable else values
            values[hit] = np.nan
            replaced += int(hit.sum())
    if replaced:
        report.missing_markers[name] = replaced
        report.note(f"replaced {replaced} missing-value marker(s) in column {name!r} by NaN")
    if options.missing_values is None:
        hit = np.isin(values, SUSPECT_SENTINELS)
        if hit.any():
            i = _first(hit)
            v = values[i]
            raise DataError(
                f"column {name!r} has {int(hit.sum())} value(s) like {v:g} (first at "
                f"{src.where(i)}, {_when(times, i)}), a common placeholder for missing data; "
                f"pass missing_values=[{v:g}] (--missing {v:g}) to treat them as missing, or "
                "missing_values=[] if they are real values"
            )
    inf = np.isinf(values)
    if inf.any():
        i = _first(inf)
        raise DataError(
            f"column {name!r} has {int(inf.sum())} infinite value(s) (first at {src.where(i)}, "
            f"{_when(times, i)}: {values[i]}); replace them with valid numbers, or leave the "
            "cells empty to mark them missing"
        )
    nan = np.isnan(values)
    if nan.all():
        raise DataError(f"column {name!r} has no values (every row is missing); choose another "
                        f"{'target (--target)' if role == 'target' else 'covariate'}")
    if nan.any():
        report.missing_values[name] = int(nan.sum())
    return values


# ---- duplicates and order ----------------------------------------------------------------
def duplicate_rows(keys: pd.DataFrame) -> np.ndarray:
    """True for each row whose (id, time) appeared on an earlier row."""
    return keys.duplicated(keep="first").to_numpy()


def raise_duplicates(keys: pd.DataFrame, dup: np.ndarray, time_col: str, src: Source) -> None:
    i = _first(dup)
    same = (keys == keys.iloc[i]).all(axis=1).to_numpy()
    j = _first(same)
    series = "" if len(keys.columns) == 1 else f" in series {keys.iloc[i, 0]!r}"
    raise DataError(
        f"{int(dup.sum())} duplicated timestamp(s){series} (first: {keys[time_col].iloc[i]} "
        f"at {src.where(j)} and {src.where(i)}){_dst_hint(keys[time_col][dup])}; remove the "
        "repeated rows, or aggregate them with duplicates='mean' (or 'first', 'last', 'sum', "
        "'min', 'max', 'median') (--duplicates)"
    )


def _dst_hint(times) -> str:
    """A word on daylight saving when every repeated time is a local night hour of a
    Sunday in March, April, October or November: where clocks go back, local times of an
    hour repeat."""
    try:
        t = pd.DatetimeIndex(times)
    except (TypeError, ValueError):
        return ""
    if len(t) == 0 or t.tz is not None:
        return ""
    if ((t.hour <= 3) & t.month.isin([3, 4, 10, 11]) & (t.day_of_week == 6)).all():
        return (", where clocks go back for daylight saving: if these are local times, "
                "write them with their UTC offset (e.g. 2021-10-31 02:00+01:00) so that no "
                "hour repeats")
    return ""


def out_of_order(frame: pd.DataFrame, id_col: str | None, time_col: str) -> np.ndarray:
    """True for each row whose timestamp is earlier than the previous row of its series."""
    t = frame[time_col]
    if id_col is None:
        prev = t.shift(1)
    else:
        prev = t.groupby(frame[id_col], sort=False).shift(1)
    return (t < prev).to_numpy(dtype=bool)
