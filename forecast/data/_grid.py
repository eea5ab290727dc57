"""The time grid: frequency inference (clock steps, business and trading days, calendar
months) and the gap policy (error, fill or drop)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from forecast.data._calendar import exchange_holidays
from forecast.data._model import Frequency, LoadOptions, LoadReport
from forecast.errors import DataError

_DAY = 86_400 * 10**9
_WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def as_ns(times) -> np.ndarray:
    idx = pd.DatetimeIndex(times)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    return idx.as_unit("ns").asi8


def infer_frequency(times) -> Frequency | None:
    """Infer the grid of sorted, unique timestamps; ``None`` with fewer than 2 timestamps.

    Daily data on weekdays only is business days (``B``), or NYSE trading days (``XNYS``)
    when the missing weekdays are mostly NYSE holidays. Month/quarter/year starts and ends
    give ``MS``/``ME``/``QS``/``QE``/``YS``/``YE``; anything else is its most common step.
    Whether every timestamp really sits on the grid is checked by `regularise`.
    """
    idx = pd.DatetimeIndex(times)
    if len(idx) < 2:
        return None
    diffs = np.diff(as_ns(idx))
    if (diffs == diffs[0]).all():
        step = int(diffs[0])
    else:
        values, counts = np.unique(diffs, return_counts=True)
        step = int(values[np.argmax(counts)])
    local = idx.tz_localize(None) if idx.tz is not None else idx
    if step >= 28 * _DAY:
        alias = _calendar_alias(local)
        if alias is not None:
            return Frequency(alias)
    weekdays = local.day_of_week
    if step == _DAY and (weekdays < 5).all() and (diffs == 3 * _DAY).any():
        return Frequency(_business_alias(local))
    if step == 7 * _DAY:
        return Frequency(f"W-{_WEEKDAYS[weekdays[0]]}")
    if step % _DAY == 0:
        k = step // _DAY
        return Frequency("D" if k == 1 else f"{k}D")
    return Frequency(to_offset(pd.Timedelta(step, unit="ns")).freqstr)


def _calendar_alias(idx: pd.DatetimeIndex) -> str | None:
    if not (idx == idx.normalize()).all():
        return None
    months = idx.year * 12 + idx.month
    dm = np.diff(months)
    if (dm <= 0).any():
        return None
    values, counts = np.unique(dm, return_counts=True)
    m = int(values[np.argmax(counts)])
    if idx.is_month_start.all():
        kind = "S"
    elif idx.is_month_end.all():
        kind = "E"
    else:
        return None
    first = int(idx[0].month)
    if m == 1:
        return f"M{kind}"
    if m == 3:
        anchor = (first - 1) % 3 if kind == "S" else (first - 1) % 3 + 9
        return f"Q{kind}-{_MONTHS[anchor]}"
    if m == 12:
        return f"Y{kind}-{_MONTHS[first - 1]}"
    return f"{m}M{kind}"


def _business_alias(idx: pd.DatetimeIndex) -> str:
    days = idx.normalize()
    missing = pd.bdate_range(days[0], days[-1]).difference(days)
    if len(missing) == 0:
        return "B"
    holidays = exchange_holidays(days[0], days[-1])
    hit = missing.isin(holidays)
    return "XNYS" if hit.sum() > 0 and hit.mean() >= 0.8 else "B"


def frequency_for(frame: pd.DataFrame, bounds: np.ndarray, ids: list, options: LoadOptions,
                  what: str) -> Frequency:
    """The given ``options.freq``, or the frequency every series agrees on."""
    if options.freq is not None:
        return Frequency(options.freq, inferred=False)
    ds = frame["ds"]
    found: dict[str, list] = {}
    for i, uid in enumerate(ids):
        freq = infer_frequency(ds.iloc[bounds[i]:bounds[i + 1]])
        if freq is not None:
            found.setdefault(freq.alias, []).append(uid)
    if not found:
        raise DataError(
            f"cannot infer the frequency of {what}: every series has a single timestamp; add "
            "rows or pass freq= (--freq), e.g. freq='D'"
        )
    if len(found) > 1:
        parts = "; ".join(f"{alias}: {', '.join(map(repr, u[:3]))}" for alias, u in found.items())
        raise DataError(
            f"the series in {what} have different frequencies ({parts}); load them separately "
            "or pass one freq= (--freq) and a gap policy"
        )
    return Frequency(next(iter(found)))


# ---- grid check and gap policy -----------------------------------------------------------
def _grid_positions(ts: pd.Series, freq: Frequency) -> tuple[np.ndarray, pd.DatetimeIndex | None]:
    """Position of each timestamp on the grid starting at its first timestamp (-1 when off
    the grid), plus the full grid when it was built (non-clock frequencies)."""
    step = freq.step
    tz = getattr(ts.dtype, "tz", None)
    if step is not None and (tz is None or step < pd.Timedelta(days=1)):
        ns = as_ns(ts)
        rel = ns - ns[0]
        s = int(step.value)
        pos = rel // s
        pos[rel % s != 0] = -1
        return pos, None
    grid = freq.range(ts.iloc[0], ts.iloc[-1])
    return grid.get_indexer(pd.DatetimeIndex(ts)), grid


def regularise(frame: pd.DataFrame, bounds: np.ndarray, ids: list, value_cols: list[str],
               freq: Frequency, options: LoadOptions, report: LoadReport, where) -> pd.DataFrame:
    """Check that every series sits on the grid and apply the gap policy to missing
    timestamps and missing values. `where(row)` names an input row for messages."""
    multi = len(ids) > 1 or "unique_id" in frame.columns
    pieces, inserted, n_gaps = [], 0, 0
    first_gap = None
    for i, uid in enumerate(ids):
        part = frame.iloc[bounds[i]:bounds[i + 1]]
        ts = part["ds"]
        pos, grid = _grid_positions(ts, freq)
        off = pos < 0
        label = f" of series {uid!r}" if multi else ""
        if off.any():
            k = int(np.flatnonzero(off)[0])
            prev = f" (previous row: {ts.iloc[k - 1]})" if k > 0 else ""
            how = "inferred from the data" if freq.inferred else "given by freq="
            raise DataError(
                f"{int(off.sum())} timestamp(s){label} are not on the {freq.name} grid "
                f"({freq.alias}) {how}: first at {where(int(part['__row'].iloc[k]))}: "
                f"{ts.iloc[k]}{prev}; the timestamps are irregular: resample them to a regular "
                "grid, remove the stray rows, or pass the right freq= (--freq)"
            )
        n_grid = int(pos[-1]) + 1
        missing = n_grid - len(part)
        if missing:
            jumps = np.flatnonzero(np.diff(pos) > 1)
            n_gaps += len(jumps)
            inserted += missing
            if first_gap is None:
                j = int(jumps[0])
                first_gap = (label, int(pos[j + 1] - pos[j] - 1), where(int(part["__row"].iloc[j])),
                             ts.iloc[j], ts.iloc[j + 1])
            if options.gaps != "error":
                if grid is None:
                    grid = freq.range(ts.iloc[0], ts.iloc[-1])
                part = _reindex(part, pos, grid, uid if "unique_id" in frame.columns else None)
        pieces.append(part)
    report.gaps, report.missing_timestamps = n_gaps, inserted
    report.gap_policy = options.gaps
    if inserted and options.gaps == "error":
        label, n, where_row, before, after = first_gap
        raise DataError(
            f"found {inserted} missing timestamp(s) in {n_gaps} gap(s) on the {freq.name} grid "
            f"({freq.alias}){' (first' + label + ':' if label else ' (first:'} {n} missing after "
            f"{where_row} {before}, next timestamp {after}); pass gaps='fill' to interpolate "
            "them or gaps='drop' to drop the windows that touch them (--gaps)"
        )
    out = pd.concat(pieces, ignore_index=True) if len(pieces) > 1 else pieces[0].reset_index(drop=True)
    nan = out[value_cols].isna()
    if options.gaps == "error":
        counts = nan.sum()
        if counts.any():
            col = str(counts[counts > 0].index[0])
            k = int(np.flatnonzero(nan[col].to_numpy())[0])
            markers = report.missing_markers.get(col, 0)
            extra = f", {markers} of them missing-value markers" if markers else ""
            raise DataError(
                f"column {col!r} has {int(counts[col])} missing value(s){extra} (first at "
                f"{where(int(out['__row'].iloc[k]))}, {out['ds'].iloc[k]}); pass gaps='fill' to "
                "interpolate them or gaps='drop' to drop the windows that touch them (--gaps), "
                "or clean the data"
            )
        return out
    if inserted:
        report.note(f"found {inserted} missing timestamp(s) in {n_gaps} gap(s) on the "
                    f"{freq.name} grid")
    if options.gaps == "fill":
        return _fill(out, value_cols, options, report, inserted)
    n_missing = int(nan.any(axis=1).sum())
    if n_missing:
        report.note(f"gaps='drop': kept {n_missing} row(s) with missing values as NaN "
                    f"({inserted} inserted for missing timestamps); windows that touch them "
                    "are dropped")
    return out


def _reindex(part: pd.DataFrame, pos: np.ndarray, grid: pd.DatetimeIndex, uid) -> pd.DataFrame:
    n = int(pos[-1]) + 1
    grid = grid[:n]
    full = pd.DataFrame({"ds": grid})
    if uid is not None:
        full.insert(0, "unique_id", uid)
    for col in part.columns:
        if col in ("ds", "unique_id"):
            continue
        src = part[col].to_numpy()
        if col == "__row":
            dst = np.full(n, -1, dtype=np.int64)
        else:
            dst = np.full(n, np.nan, dtype=np.float64)
        dst[pos] = src
        full[col] = dst
    return full


def _fill(out: pd.DataFrame, value_cols: list[str], options: LoadOptions, report: LoadReport,
          inserted: int) -> pd.DataFrame:
    ids = out["unique_id"] if "unique_id" in out.columns else None
    before = out[value_cols].isna()
    if options.fill_method == "ffill":
        filled = out[value_cols].groupby(ids).ffill() if ids is not None else out[value_cols].ffill()
    else:
        def interp(df: pd.DataFrame) -> pd.DataFrame:
            return df.interpolate(method="linear", limit_direction="forward")
        filled = out[value_cols].groupby(ids, group_keys=False).apply(interp) \
            if ids is not None else interp(out[value_cols])
    out[value_cols] = filled
    # Values before the first observation of a series cannot be filled: drop those rows.
    lead = out[value_cols].isna().any(axis=1).to_numpy()
    dropped = int(lead.sum())
    if dropped:
        out = out.loc[~lead].reset_index(drop=True)
        before = before.loc[~lead]
        report.rows_dropped = dropped
        report.note(f"dropped {dropped} leading row(s) with missing values that cannot be "
                    "filled from earlier rows")
    report.values_filled = {c: int(n) for c, n in before.sum().items() if n}
    report.points_filled = inserted
    total = int(before.to_numpy().sum())
    if total:
        method = "linear interpolation" if options.fill_method == "interpolate" else "forward fill"
        report.note(f"filled {total} missing value(s) by {method} ({inserted} of the "
                    f"{len(out)} timestamps were missing and were inserted)")
    return out
