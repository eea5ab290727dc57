"""The objects `forecast.data.load` works with: its options, its report and its result."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any, Sequence

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from forecast.data._calendar import trading_day_offset
from forecast.errors import ConfigError, DataError

GAP_POLICIES = ("error", "fill", "drop")
DUPLICATE_POLICIES = ("error", "mean", "first", "last", "sum", "min", "max", "median")
FILL_METHODS = ("interpolate", "ffill")
FORMATS = ("csv", "parquet")
#: Values that are almost always missing-value placeholders when they appear in real data.
SUSPECT_SENTINELS = (-999.0, -9999.0, -99999.0, -999999.0)


@dataclass(frozen=True)
class LoadOptions:
    """How to read and validate a file or frame; every field has a sensible default.

    target: target column name(s); default: ``y`` if present, else the single numeric column.
    time_col: time column; default: one named ``date``/``ds``/``timestamp``/``time``/
        ``datetime`` (any case), else a datetime-typed column or a DatetimeIndex.
    id_col: series id column for long format; default ``unique_id`` if present.
    covariates: extra numeric columns to keep, or ``"all"`` for every other numeric column.
    missing_values: markers that mean "missing" (numbers or strings, e.g. ``[-9999, "?"]``).
        ``None`` (default) rejects common placeholders such as -9999 with a message;
        ``[]`` accepts every value as real.
    duplicates: ``error`` (default) or how to aggregate rows sharing a timestamp:
        ``mean``, ``first``, ``last``, ``sum``, ``min``, ``max``, ``median``.
    gaps: ``error`` (default), ``fill`` (interpolate or forward-fill missing timestamps and
        values) or ``drop`` (keep them as NaN rows; windows touching them are dropped).
    fill_method: ``interpolate`` (linear) or ``ffill``, for ``gaps="fill"``.
    freq: pandas frequency alias (``h``, ``D``, ``B``, ``15min``, ``MS``...) or ``XNYS``
        (NYSE trading days); default: inferred.
    time_format: strftime format of the time column, when pandas cannot infer it.
    format: ``csv`` or ``parquet``; default: from the file extension or its content.
    min_length: fewest rows each series must have (e.g. lookback + horizon); 0 = no check.
    """

    target: str | Sequence[str] | None = None
    time_col: str | None = None
    id_col: str | None = None
    covariates: str | Sequence[str] | None = None
    missing_values: Sequence[float | str] | None = None
    duplicates: str = "error"
    gaps: str = "error"
    fill_method: str = "interpolate"
    freq: str | None = None
    time_format: str | None = None
    format: str | None = None
    min_length: int = 0

    def __post_init__(self) -> None:
        _choice("duplicates", self.duplicates, DUPLICATE_POLICIES)
        _choice("gaps", self.gaps, GAP_POLICIES)
        _choice("fill_method", self.fill_method, FILL_METHODS)
        if self.format is not None:
            _choice("format", self.format, FORMATS)
        if not isinstance(self.min_length, int) or self.min_length < 0:
            raise ConfigError(f"min_length must be a non-negative int, got {self.min_length!r}")
        if isinstance(self.missing_values, (str, int, float)):
            object.__setattr__(self, "missing_values", (self.missing_values,))

    def targets(self) -> tuple[str, ...] | None:
        if self.target is None:
            return None
        return (self.target,) if isinstance(self.target, str) else tuple(self.target)

    def updated(self, **overrides: Any) -> "LoadOptions":
        """A copy with some fields replaced; unknown names raise `ConfigError`."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(
                f"unknown load option(s) {unknown}; valid options are {sorted(known)}"
            )
        return replace(self, **overrides)


def _choice(name: str, value: object, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not valid; choose one of {', '.join(allowed)}")


_NAMES = {"h": "hourly", "D": "daily", "B": "business days (Mon-Fri)", "min": "every minute",
          "s": "every second", "W": "weekly", "MS": "monthly (month start)",
          "ME": "monthly (month end)", "QS": "quarterly (quarter start)",
          "QE": "quarterly (quarter end)", "YS": "yearly (year start)", "YE": "yearly (year end)",
          "XNYS": "trading days (NYSE calendar)"}


@dataclass(frozen=True)
class Frequency:
    """The time grid of a series: a pandas offset alias, or ``XNYS`` for NYSE trading days."""

    alias: str
    inferred: bool = True

    def __post_init__(self) -> None:
        try:
            self.offset  # noqa: B018 - validates the alias
        except ValueError as exc:
            raise ConfigError(
                f"frequency {self.alias!r} is not a pandas offset alias ({exc}); use e.g. "
                "'h', 'D', 'B', '15min', 'W-MON', 'MS' or 'XNYS' for NYSE trading days"
            ) from None

    @property
    def offset(self) -> pd.DateOffset:
        if self.alias == "XNYS":
            return trading_day_offset("XNYS")
        return to_offset(self.alias)

    @property
    def is_trading_days(self) -> bool:
        return self.alias == "XNYS"

    @property
    def name(self) -> str:
        """Plain-words name, e.g. ``hourly`` or ``trading days (NYSE calendar)``."""
        base = self.alias.split("-")[0]
        return _NAMES.get(self.alias) or _NAMES.get(base) or f"every {self.alias}"

    @property
    def step(self) -> pd.Timedelta | None:
        """The fixed step for clock-based grids (``h``, ``D``, ``15min``), else ``None``."""
        if self.alias == "XNYS" or self.alias[-1:] in {"B", "S", "E"} or "-" in self.alias:
            return None
        try:
            return pd.Timedelta(to_offset(self.alias))
        except (ValueError, TypeError):
            return None

    @property
    def season_length(self) -> int | None:
        """A natural seasonal period in steps (24 for hourly, 7 for daily, 5 for trading
        days, 12 for monthly), for seasonal baselines; ``None`` when there is none."""
        if self.alias in ("B", "XNYS"):
            return 5
        base = self.alias.lstrip("0123456789").split("-")[0]
        if base in ("MS", "ME"):
            return 12
        if base in ("QS", "QE"):
            return 4
        if base == "W":
            return 52
        step = self.step
        if step is None:
            return None
        day = pd.Timedelta(days=1)
        if step == day:
            return 7
        if step < day and day % step == pd.Timedelta(0):
            return int(day / step)
        return None

    def range(self, start, end) -> pd.DatetimeIndex:
        """Every grid point from `start` to `end` inclusive."""
        return pd.date_range(start, end, freq=self.offset)

    def future(self, last, periods: int) -> pd.DatetimeIndex:
        """The `periods` grid points after `last` (the next trading days for ``XNYS``)."""
        return pd.date_range(last, periods=periods + 1, freq=self.offset)[1:]

    def to_dict(self) -> dict[str, Any]:
        return {"alias": self.alias, "inferred": self.inferred}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Frequency":
        return cls(str(data["alias"]), bool(data.get("inferred", True)))


@dataclass
class LoadReport:
    """What `load` found and did; ``notes`` lists it in plain sentences."""

    source: str
    rows_read: int = 0
    rows: int = 0
    n_series: int = 1
    time_col: str | None = None
    id_col: str | None = None
    target: tuple[str, ...] = ()
    covariates: tuple[str, ...] = ()
    encoding: str | None = None
    frequency: str | None = None
    frequency_inferred: bool = True
    timezone: str | None = None
    rows_sorted: int = 0
    duplicates: int = 0
    duplicates_policy: str = "error"
    missing_markers: dict[str, int] = field(default_factory=dict)
    missing_values: dict[str, int] = field(default_factory=dict)
    gaps: int = 0
    missing_timestamps: int = 0
    gap_policy: str = "error"
    points_filled: int = 0
    values_filled: dict[str, int] = field(default_factory=dict)
    rows_dropped: int = 0
    constant_columns: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def summary(self) -> str:
        head = (f"{self.source}: {self.rows} rows, {self.n_series} series, "
                f"frequency {self.frequency}")
        return "\n".join([head, *(f"- {n}" for n in self.notes)])

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["target"], out["covariates"] = list(self.target), list(self.covariates)
        return out


@dataclass
class Dataset:
    """One or many validated series on a regular time grid.

    ``frame`` has a ``ds`` column (datetime64, sorted within each series), a ``unique_id``
    column when there are several series, the target column(s) and the covariates, all
    value columns float64. Under ``gaps="drop"`` missing points are NaN rows.
    """

    frame: pd.DataFrame
    target: tuple[str, ...]
    freq: Frequency
    report: LoadReport
    covariates: tuple[str, ...] = ()
    known: tuple[str, ...] = ()
    id_col: str | None = None
    name: str = "series"
    time_col: str = "ds"

    # ---- shape -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.frame)

    @property
    def columns(self) -> tuple[str, ...]:
        """Value columns in model order: targets first, then covariates."""
        return self.target + self.covariates

    @property
    def ids(self) -> list:
        if self.id_col is None:
            return [self.name]
        return list(pd.unique(self.frame[self.id_col]))

    @property
    def n_series(self) -> int:
        return len(self.ids)

    @property
    def bounds(self) -> np.ndarray:
        """Row offsets of each series: series i is rows ``bounds[i]:bounds[i+1]``."""
        return series_bounds(self.frame, self.id_col)

    @property
    def index(self) -> pd.DatetimeIndex:
        """The timestamps (all series stacked)."""
        return pd.DatetimeIndex(self.frame[self.time_col])

    # ---- access ------------------------------------------------------------------------
    def values(self, columns: Sequence[str] | None = None, dtype=np.float64) -> np.ndarray:
        """The value columns as a (rows, columns) array; default: targets then covariates."""
        cols = list(self.columns if columns is None else columns)
        missing = [c for c in cols if c not in self.frame.columns]
        if missing:
            raise DataError(f"columns {missing} are not in this dataset; it has {list(self.columns)}")
        # Row-major, so that each window of consecutive rows is one contiguous block.
        return np.ascontiguousarray(self.frame[cols].to_numpy(dtype=dtype, copy=True))

    def series(self, uid) -> "Dataset":
        """One series of a long-format dataset, as a single-series `Dataset`."""
        if self.id_col is None:
            if uid != self.name:
                raise DataError(f"series {uid!r} not found; this dataset holds only {self.name!r}")
            return self
        mask = self.frame[self.id_col] == uid
        if not mask.any():
            raise DataError(f"series {uid!r} not found; ids are {self.ids[:10]}"
                            + (" ..." if self.n_series > 10 else ""))
        frame = self.frame.loc[mask].drop(columns=[self.id_col]).reset_index(drop=True)
        return replace(self, frame=frame, id_col=None, name=str(uid))

    def to_series(self) -> pd.Series:
        """The single target of a single series as a pandas Series with a DatetimeIndex."""
        if self.id_col is not None or len(self.target) != 1:
            raise DataError("to_series needs one series with one target; use .series(uid) "
                            "or .frame for several")
        return pd.Series(self.frame[self.target[0]].to_numpy(), index=self.index,
                         name=self.target[0])

    def to_long(self) -> pd.DataFrame:
        """Long format: ``unique_id``, ``ds``, ``y`` (or the target names if several), covariates."""
        frame = self.frame.copy()
        if self.id_col is None:
            frame.insert(0, "unique_id", self.name)
        elif self.id_col != "unique_id":
            frame = frame.rename(columns={self.id_col: "unique_id"})
        if len(self.target) == 1 and self.target[0] != "y":
            frame = frame.rename(columns={self.target[0]: "y"})
        return frame

    def last_timestamps(self) -> dict:
        """Last timestamp of each series, by id."""
        b = self.bounds
        ds = self.frame[self.time_col]
        return {uid: ds.iloc[b[i + 1] - 1] for i, uid in enumerate(self.ids)}

    def future_index(self, horizon: int, uid=None) -> pd.DatetimeIndex:
        """The `horizon` timestamps after the end of a series (the next trading days for
        stock series, the next clock steps for weather series)."""
        if horizon < 1:
            raise ConfigError(f"horizon must be >= 1, got {horizon}")
        last = self.last_timestamps()
        if uid is None:
            if len(last) > 1:
                raise DataError("this dataset holds several series; pass uid= to future_index")
            uid = next(iter(last))
        if uid not in last:
            raise DataError(f"series {uid!r} not found; ids are {list(last)[:10]}")
        return self.freq.future(last[uid], horizon)

    def check_length(self, lookback: int, horizon: int) -> None:
        """Raise `DataError` unless every series has at least ``lookback + horizon`` rows."""
        b = self.bounds
        for i, uid in enumerate(self.ids):
            require_length(int(b[i + 1] - b[i]), lookback, horizon,
                           f"series {uid!r}" if self.id_col else f"{self.name!r}")


def series_bounds(frame: pd.DataFrame, id_col: str | None) -> np.ndarray:
    """Row offsets of the (contiguous) series of `frame`."""
    if id_col is None:
        return np.array([0, len(frame)], dtype=np.int64)
    ids = frame[id_col].to_numpy()
    change = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    return np.concatenate([[0], change, [len(ids)]]).astype(np.int64)


def require_length(n_rows: int, lookback: int, horizon: int, what: str = "the series") -> None:
    """Raise a `DataError` saying how many rows are needed when `n_rows` is too short."""
    need = lookback + horizon
    if n_rows < need:
        raise DataError(
            f"{what} has {n_rows} rows but lookback {lookback} + horizon {horizon} needs at "
            f"least {need} rows; use a longer series or a shorter lookback/horizon"
        )


def is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and math.isfinite(float(value))
