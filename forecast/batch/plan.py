"""Planning a run: every series of a batch file, how to load one, the run id and the
``--as-of`` time."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from forecast.batch.config import BatchConfig, SeriesSettings, SourceSpec, slugify
from forecast.errors import ConfigError, DataError, ForecastError
from forecast.workflows import load_data

__all__ = ["SeriesItem", "plan_series", "load_series", "check_run_id", "default_run_id",
           "parse_as_of"]


@dataclass
class SeriesItem:
    """One series to forecast: where it comes from and its resolved settings."""

    index: int
    uid: str
    slug: str
    source: SourceSpec
    file: str
    settings: SeriesSettings
    frame_dataset: Any = None  # long format: the whole file's Dataset (shared)
    error: str | None = None  # the source could not be read at all

    @property
    def label(self) -> str:
        return self.file if self.source.id_col is None else f"{self.file} [{self.uid}]"


def plan_series(config: BatchConfig) -> list[SeriesItem]:
    """Every series of `config` in order (sources in file order, files sorted, ids in
    order of appearance). Long-format files are read here to find their ids. Raises
    `ConfigError` for ids that clash or ``[series.ID]`` tables matching no series."""
    items: list[SeriesItem] = []
    for src in config.sources:
        for file in src.files:
            if src.id_col is None:
                uid = src.id or (file if src.bundled else Path(file).stem)
                items.append(SeriesItem(len(items), uid, slugify(uid), src, file,
                                        config.settings_for(src, uid)))
                continue
            base = config.settings_for(src, "\0")  # long format: file-level load options
            try:
                whole = load_data(base.data_spec(file, src.id_col))
            except ForecastError as exc:
                uid = Path(file).stem
                items.append(SeriesItem(len(items), uid, slugify(uid), src, file, base,
                                        error=f"cannot read {file}: {exc}"))
                continue
            for uid in whole.ids:
                uid = str(uid)
                items.append(SeriesItem(len(items), uid, slugify(uid), src, file,
                                        config.settings_for(src, uid), frame_dataset=whole))
    seen: dict[str, SeriesItem] = {}
    slugs: dict[str, str] = {}
    for it in items:
        if it.uid in seen:
            raise ConfigError(f"series id {it.uid!r} comes from both {seen[it.uid].label} and "
                              f"{it.label}; give one of the sources an id = \"...\" or rename "
                              "a file")
        if it.slug.lower() in slugs:
            raise ConfigError(f"series ids {slugs[it.slug.lower()]!r} and {it.uid!r} map to the "
                              "same file name; rename one")
        seen[it.uid] = it
        slugs[it.slug.lower()] = it.uid
    stray = sorted(set(config.overrides) - set(seen))
    if stray:
        hints = [f"{s!r}" + (f" (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(
            s, list(seen), n=1)) else "") for s in stray]
        raise ConfigError(f"[series.*] table(s) {', '.join(hints)} match no series; the "
                          f"series are {', '.join(list(seen)[:12])}"
                          + (" ..." if len(seen) > 12 else ""))
    if not items:
        raise ConfigError("the batch file's sources hold no series")
    return items


def load_series(item: SeriesItem, as_of=None):
    """The single-series `Dataset` of `item` named by its id, cut at `as_of` (rows on or
    before it). Raises `DataError` (or another `ForecastError`)."""
    import pandas as pd

    if item.error is not None:
        raise DataError(item.error)
    if item.frame_dataset is not None:
        ds = item.frame_dataset.series(item.uid)
    else:
        ds = load_data(item.settings.data_spec(item.file))
    ds = replace(ds, name=item.uid)
    if as_of is not None:
        cut = pd.Timestamp(as_of)
        times = pd.DatetimeIndex(ds.frame[ds.time_col])
        if times.tz is not None and cut.tz is None:
            cut = cut.tz_localize(times.tz)
        elif times.tz is None and cut.tz is not None:
            cut = cut.tz_convert("UTC").tz_localize(None)
        n = int(times.searchsorted(cut, side="right"))
        if n == 0:
            raise DataError(f"{item.label} has no rows on or before --as-of {as_of} (it starts "
                            f"at {times[0]}); choose a later --as-of")
        if n < len(ds):
            ds = replace(ds, frame=ds.frame.iloc[:n].reset_index(drop=True))
    return ds


def default_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def check_run_id(run_id: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", run_id or ""):
        raise ConfigError(f"run id {run_id!r} is not valid; use letters, digits, '.', '_' and "
                          "'-' (e.g. 2026-11-23)")
    return run_id


def parse_as_of(text) -> str | None:
    """``--as-of`` as an ISO timestamp (None stays None); `ConfigError` when it is not one."""
    if text is None:
        return None
    import pandas as pd

    try:
        t = pd.Timestamp(text)
    except (ValueError, TypeError):
        raise ConfigError(f"--as-of {text!r} is not a timestamp; use e.g. 2024-06-28 or "
                          "2024-06-28T16:00") from None
    if t is pd.NaT:
        raise ConfigError(f"--as-of {text!r} is not a timestamp")
    return t.isoformat()
