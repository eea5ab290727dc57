"""Zero-copy sliding windows and chronological train / validation / test splits.

A `Windows` object never copies the series: the windows are strided views
(`numpy.lib.stride_tricks.sliding_window_view`) and the window index is a handful of
arithmetic runs of start offsets, so building it for 10 million rows allocates only a few
bytes per row (the finiteness scan), never rows x lookback. Only ``batch`` copies, and
only the windows it is asked for:

    X (B, lookback, n_inputs), Y (B, horizon) for one target or (B, horizon, n_targets).

Windows never cross a series boundary (long format) and, by default, never touch a
non-finite value: with ``gaps="drop"`` the missing points are NaN rows, so windows that
touch a gap are dropped here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from forecast.data import Dataset, require_length
from forecast.errors import ConfigError, DataError
from forecast.transforms import Transform

__all__ = [
    "WindowSpec",
    "Batch",
    "Windows",
    "Split",
    "split_by_fraction",
    "split_at",
    "WindowedData",
    "prepare",
]

PARTS = ("train", "val", "test")
_SCAN_BLOCK = 1 << 20  # rows per block of the finiteness scan


@dataclass(frozen=True)
class WindowSpec:
    """Window geometry and which columns go where.

    lookback: input steps; horizon: target steps; stride: steps between window starts.
    inputs: columns in X (default all); targets: columns in Y (default all);
    known: known-future columns returned over the horizon as ``Batch.x_future``.
    squeeze: return Y as (B, horizon) when there is one target.
    """

    lookback: int
    horizon: int
    stride: int = 1
    inputs: tuple[int, ...] | None = None
    targets: tuple[int, ...] | None = None
    known: tuple[int, ...] = ()
    squeeze: bool = True

    def __post_init__(self) -> None:
        for name in ("lookback", "horizon", "stride"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"{name} must be a positive int, got {v!r}")
        for name in ("inputs", "targets", "known"):
            v = getattr(self, name)
            if v is not None:
                object.__setattr__(self, name, tuple(int(i) for i in np.atleast_1d(v)))

    @property
    def length(self) -> int:
        return self.lookback + self.horizon


@dataclass
class Batch:
    """A materialised batch: the only place where window data is copied."""

    x: np.ndarray  # (B, lookback, n_inputs)
    y: np.ndarray  # (B, horizon) or (B, horizon, n_targets)
    starts: np.ndarray  # (B,) row of each window's first input step
    series: np.ndarray  # (B,) series number of each window
    x_future: np.ndarray | None = None  # (B, horizon, n_known)

    def __len__(self) -> int:
        return len(self.starts)


def _as_2d(values) -> np.ndarray:
    A = np.asarray(values)
    if A.ndim == 1:
        A = A[:, None]
    if A.ndim != 2:
        raise ConfigError(f"values must be (rows,) or (rows, features), got shape {A.shape}")
    if not np.issubdtype(A.dtype, np.floating):
        A = A.astype(np.float64)
    return A


def _per_series(arr, n_series: int, default: np.ndarray, name: str) -> np.ndarray:
    if arr is None:
        return default
    arr = np.asarray(arr, dtype=np.int64)
    if arr.ndim == 1 and arr.shape == (2,):
        arr = np.broadcast_to(arr, (n_series, 2))
    if arr.shape != (n_series, 2):
        raise ConfigError(f"{name} must be (lo, hi) or one (lo, hi) per series, got shape {arr.shape}")
    return arr


class Windows:
    """Sliding windows over a ``(rows, features)`` array.

    bounds: series row offsets (``Dataset.bounds``); default one series.
    span: absolute rows ``(lo, hi)`` (or one pair per series) that the *targets* must lie
        in; default the whole series.
    reach_back: let the lookback start before ``lo`` (never before the series start), the
        convention of the long-horizon benchmarks for validation and test windows.
    drop_nonfinite: skip windows that touch a NaN or infinite value in the used columns.

    Window starts run from the first allowed start of each series in steps of `stride`;
    ``len(w)`` is the number of windows, ``w.starts`` their first input rows.
    `values` is used as given, never copied; a row-major (C-contiguous) array makes each
    window one contiguous block, which makes ``batch`` several times faster.
    """

    def __init__(self, values, spec: WindowSpec, *, bounds=None, span=None,
                 reach_back: bool = False, drop_nonfinite: bool = True):
        self.values = _as_2d(values)
        self.spec = spec
        n, F = self.values.shape
        for name in ("inputs", "targets", "known"):
            cols = getattr(spec, name)
            if cols and (min(cols) < 0 or max(cols) >= F):
                raise ConfigError(f"{name} columns {cols} out of range for {F} feature(s)")
        self.bounds = np.asarray([0, n] if bounds is None else bounds, dtype=np.int64)
        if self.bounds[0] != 0 or self.bounds[-1] != n or (np.diff(self.bounds) < 0).any():
            raise ConfigError(f"bounds must rise from 0 to {n} (the number of rows)")
        self.n_series = len(self.bounds) - 1
        series_span = np.stack([self.bounds[:-1], self.bounds[1:]], axis=1)
        self.span = _per_series(span, self.n_series, series_span, "span")
        self.reach_back = reach_back
        self._index(drop_nonfinite)
        L, H = spec.lookback, spec.horizon
        self._views = {role: self._role_view(getattr(spec, role), size)
                       for role, size in (("inputs", L), ("targets", H), ("known", H))}
        self._full = (self._role_view(None, L)[0], self._role_view(None, H)[0])

    def _role_view(self, cols, size: int):
        """A strided (rows - size + 1, size, k) view over the columns of one role, and the
        column list still to pick after indexing when they are not a contiguous range."""
        n = len(self.values)
        if n < size or cols == ():
            return None, None
        post = None
        sub = self.values
        if cols is not None:
            if cols == tuple(range(cols[0], cols[0] + len(cols))):
                sub = self.values[:, cols[0]:cols[0] + len(cols)]
            else:
                post = list(cols)
        return sliding_window_view(sub, size, axis=0).swapaxes(1, 2), post

    # ---- index ---------------------------------------------------------------------------
    def _used_columns(self) -> np.ndarray | None:
        s = self.spec
        if s.inputs is None or s.targets is None:
            return None
        return np.unique(np.array(s.inputs + s.targets + s.known, dtype=np.int64))

    def _nonfinite_rows(self) -> np.ndarray:
        """Rows holding a NaN or infinity in a used column, scanned in blocks so that the
        scan needs a bounded amount of memory however long the series is."""
        cols = self._used_columns()
        bad = []
        n = len(self.values)
        for i in range(0, n, _SCAN_BLOCK):
            block = self.values[i:i + _SCAN_BLOCK]
            if cols is not None:
                block = block[:, cols]
            ok = np.isfinite(block).all(axis=1) if block.shape[1] > 1 else np.isfinite(block[:, 0])
            np.logical_not(ok, out=ok)
            bad.append(np.flatnonzero(ok) + i)
        return np.concatenate(bad) if bad else np.zeros(0, dtype=np.int64)

    def _index(self, drop_nonfinite: bool) -> None:
        L, H, stride = self.spec.lookback, self.spec.horizon, self.spec.stride
        bad = self._nonfinite_rows() if drop_nonfinite else np.zeros(0, dtype=np.int64)
        # Runs between series bounds and around each non-finite row; a non-finite row is a
        # run of its own, and is skipped.
        edges = np.unique(np.concatenate([self.bounds, bad, bad + 1]))
        r0, r1 = edges[:-1], edges[1:]
        keep = r1 > r0
        if bad.size:
            keep &= ~np.isin(r0, bad)
        r0, r1 = r0[keep], r1[keep]
        series = np.searchsorted(self.bounds, r0, side="right") - 1
        a = self.bounds[series]
        lo, hi = self.span[series, 0], self.span[series, 1]
        origin = np.maximum(a, lo - L if self.reach_back else lo)
        first_min = np.maximum(r0, origin)
        first = origin + -(-(first_min - origin) // stride) * stride  # ceil to the stride grid
        last = np.minimum(r1, hi) - L - H  # last allowed start, inclusive
        count = np.where(last >= first, (last - first) // stride + 1, 0)
        ok = count > 0
        self._first, self._count, self._series = first[ok], count[ok], series[ok]
        self._cum = np.concatenate([[0], np.cumsum(self._count)]).astype(np.int64)

    def __len__(self) -> int:
        return int(self._cum[-1])

    def __repr__(self) -> str:
        s = self.spec
        return (f"Windows({len(self)} windows, lookback={s.lookback}, horizon={s.horizon}, "
                f"stride={s.stride}, rows={len(self.values)}, series={self.n_series})")

    def _positions(self, k) -> np.ndarray:
        k = np.asarray(k, dtype=np.int64)
        n = len(self)
        if k.size and (k.min() < -n or k.max() >= n):
            raise IndexError(f"window index out of range for {n} windows")
        k = np.where(k < 0, k + n, k)
        seg = np.searchsorted(self._cum, k, side="right") - 1
        return seg

    def _locate(self, k) -> tuple[np.ndarray, np.ndarray]:
        """(first input row, segment) of windows `k`."""
        k = np.asarray(k, dtype=np.int64)
        seg = self._positions(k)
        k = np.where(k < 0, k + len(self), k)
        return self._first[seg] + (k - self._cum[seg]) * self.spec.stride, seg

    def starts_of(self, k) -> np.ndarray:
        """First input row of windows `k` (ints or an int array)."""
        return self._locate(k)[0]

    @property
    def starts(self) -> np.ndarray:
        """First input row of every window (materialised on request: one int per window)."""
        total = len(self)
        if total == 0:
            return np.zeros(0, dtype=np.int64)
        offset = np.repeat(self._first - self._cum[:-1] * self.spec.stride, self._count)
        return offset + np.arange(total, dtype=np.int64) * self.spec.stride

    @property
    def series(self) -> np.ndarray:
        """Series number of every window."""
        return np.repeat(self._series, self._count)

    @property
    def target_starts(self) -> np.ndarray:
        """First target row of every window."""
        return self.starts + self.spec.lookback

    # ---- views and batches ---------------------------------------------------------------
    def window(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Read-only views (no copy) of window `k`, every column: the lookback rows
        (lookback, F) and the horizon rows after them (horizon, F)."""
        s = int(self.starts_of(k))
        return self._full[0][s], self._full[1][s + self.spec.lookback]

    def _take(self, role: str, rows: np.ndarray, dtype) -> np.ndarray | None:
        view, post = self._views[role]
        if view is None:
            return None
        out = view[rows]  # fancy indexing: the one copy, (B, size, k)
        if post is not None:
            out = out[..., post]
        if dtype is not None:
            out = out.astype(dtype, copy=False)
        return np.ascontiguousarray(out)

    def batch(self, k, dtype=None) -> Batch:
        """Copy windows `k` (an int array, a slice or a range) into contiguous arrays."""
        if isinstance(k, slice):
            k = np.arange(len(self))[k]
        k = np.atleast_1d(np.asarray(k, dtype=np.int64))
        s = self.spec
        F = self.values.shape[1]
        if len(k) == 0:
            T = F if s.targets is None else len(s.targets)
            x = np.zeros((0, s.lookback, F if s.inputs is None else len(s.inputs)), dtype=dtype)
            y = np.zeros((0, s.horizon) if (T == 1 and s.squeeze) else (0, s.horizon, T), dtype=dtype)
            fut = np.zeros((0, s.horizon, len(s.known)), dtype=dtype) if s.known else None
            return Batch(x, y, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), fut)
        starts, seg = self._locate(k)
        x = self._take("inputs", starts, dtype)
        y = self._take("targets", starts + s.lookback, dtype)
        if y.shape[-1] == 1 and s.squeeze:
            y = y[..., 0]
        fut = self._take("known", starts + s.lookback, dtype)
        return Batch(x, y, starts, self._series[seg], fut)

    def batches(self, batch_size: int = 32, *, shuffle: bool = False, seed=None,
                drop_last: bool = False, dtype=None) -> Iterator[Batch]:
        """Yield batches in order (or shuffled with `seed`); `drop_last` skips a short tail."""
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        n = len(self)
        order = np.random.default_rng(seed).permutation(n) if shuffle else None
        stop = n - n % batch_size if drop_last else n
        for i in range(0, stop, batch_size):
            k = order[i:i + batch_size] if order is not None else np.arange(i, min(i + batch_size, n))
            yield self.batch(k, dtype=dtype)

    def materialize(self, dtype=None) -> Batch:
        """Every window as one batch (copies lookback x features per window)."""
        return self.batch(np.arange(len(self)), dtype=dtype)


# ---- splits ------------------------------------------------------------------------------
def _bounds_of(data) -> tuple[np.ndarray, Dataset | None]:
    if isinstance(data, Dataset):
        return data.bounds, data
    if isinstance(data, (int, np.integer)):
        return np.array([0, int(data)], dtype=np.int64), None
    return np.array([0, len(data)], dtype=np.int64), None


@dataclass(frozen=True)
class Split:
    """Chronological train / validation / test boundaries, per series, as absolute rows:
    train ``[start, train_end)``, val ``[train_end, val_end)``, test ``[val_end, end)``;
    rows after ``end`` are unused."""

    bounds: np.ndarray
    train_end: np.ndarray
    val_end: np.ndarray
    end: np.ndarray

    def __post_init__(self) -> None:
        start = self.bounds[:-1]
        ok = (start < self.train_end) & (self.train_end <= self.val_end) & \
             (self.val_end <= self.end) & (self.end <= self.bounds[1:])
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            raise ConfigError(
                f"invalid split for series {i}: rows {start[i]}..{self.bounds[i + 1]}, train end "
                f"{self.train_end[i]}, val end {self.val_end[i]}, test end {self.end[i]}; the "
                "training part must be non-empty and the parts must not overlap"
            )

    def span(self, part: str) -> np.ndarray:
        """``(n_series, 2)`` absolute row ranges of `part` (``train``, ``val`` or ``test``)."""
        if part not in PARTS:
            raise ConfigError(f"part must be one of {PARTS}, got {part!r}")
        lo = {"train": self.bounds[:-1], "val": self.train_end, "test": self.val_end}[part]
        hi = {"train": self.train_end, "val": self.val_end, "test": self.end}[part]
        return np.stack([lo, hi], axis=1)

    def rows(self, part: str) -> np.ndarray:
        """Absolute row numbers of `part`, all series concatenated."""
        sp = self.span(part)
        return np.concatenate([np.arange(a, b) for a, b in sp]) if len(sp) else np.zeros(0, int)

    def sizes(self) -> dict[str, np.ndarray]:
        return {p: np.diff(self.span(p), axis=1)[:, 0] for p in PARTS}

    def windows(self, values, spec: WindowSpec, part: str, *, reach_back: bool = True,
                drop_nonfinite: bool = True) -> Windows:
        """Windows whose targets lie in `part`; with `reach_back` (default) validation and
        test lookbacks may start in the previous part (training windows never leave the
        training part: it starts the series)."""
        return Windows(values, spec, bounds=self.bounds, span=self.span(part),
                       reach_back=reach_back, drop_nonfinite=drop_nonfinite)


def _count(x, n: int, name: str) -> int | None:
    if x is None:
        return None
    if isinstance(x, (float, np.floating)):
        if not 0 <= x <= 1:
            raise ConfigError(f"{name} as a fraction must be in [0, 1], got {x}")
        return int(x * n)
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool) and x >= 0:
        return int(x)
    raise ConfigError(f"{name} must be a fraction (float) or a number of rows (int), got {x!r}")


def split_by_fraction(data, *, train=None, val=None, test=None) -> Split:
    """Split each series by fractions (``int(frac * rows)`` rows) or row counts (ints).
    Give any two parts and the third gets the rest, or all three (the rest is unused).

    ``split_by_fraction(ds, train=0.7, test=0.2)`` is the long-horizon benchmarks' custom
    layout; ``split_by_fraction(ds, val=0.1, test=0.2)`` keeps 70% for training."""
    bounds, _ = _bounds_of(data)
    if sum(p is not None for p in (train, val, test)) < 2 and train is None:
        val = 0 if val is None else val
        test = 0 if test is None else test
    tr, va, en = [], [], []
    for i in range(len(bounds) - 1):
        a, b = int(bounds[i]), int(bounds[i + 1])
        n = b - a
        n_tr, n_va, n_te = _count(train, n, "train"), _count(val, n, "val"), _count(test, n, "test")
        if n_tr is None:
            n_tr = n - n_va - n_te
        elif n_va is None:
            n_va = n - n_tr - (n_te or 0)
        if n_te is None:
            n_te = n - n_tr - n_va
        if min(n_tr, n_va, n_te) < 0 or n_tr + n_va + n_te > n:
            raise ConfigError(f"split parts ({n_tr}, {n_va}, {n_te} rows) do not fit in a series "
                              f"of {n} rows")
        tr.append(a + n_tr)
        va.append(a + n_tr + n_va)
        en.append(a + n_tr + n_va + n_te)
    return Split(bounds, np.array(tr, np.int64), np.array(va, np.int64), np.array(en, np.int64))


def split_at(data, val_start, test_start, end=None) -> Split:
    """Split at row positions (ints, counted from each series' first row) or at dates
    (strings / Timestamps, needs a `Dataset`): validation starts at `val_start`, test at
    `test_start`, and rows from `end` on are unused (default: none)."""
    bounds, dataset = _bounds_of(data)
    out = []
    for i in range(len(bounds) - 1):
        a, b = int(bounds[i]), int(bounds[i + 1])
        row = []
        for name, x in (("val_start", val_start), ("test_start", test_start), ("end", end)):
            if x is None:
                row.append(b)
            elif isinstance(x, (int, np.integer)) and not isinstance(x, bool):
                row.append(min(a + int(x), b))
            else:
                if dataset is None:
                    raise ConfigError(f"{name}={x!r} is a date: pass a Dataset to split_at")
                ds = pd.DatetimeIndex(dataset.frame["ds"].iloc[a:b])
                try:
                    t = pd.Timestamp(x)
                    if ds.tz is not None and t.tz is None:
                        t = t.tz_localize(ds.tz)
                except (ValueError, TypeError):
                    raise ConfigError(f"{name}={x!r} is neither a row number nor a date") from None
                row.append(a + int(ds.searchsorted(t, side="left")))
        out.append(row)
    arr = np.array(out, dtype=np.int64).reshape(-1, 3)
    return Split(bounds, arr[:, 0], arr[:, 1], arr[:, 2])


# ---- from a Dataset to training arrays ---------------------------------------------------
@dataclass
class WindowedData:
    """Everything a model needs: transformed values, the fitted transform (train rows
    only), the split and train / val / test windows over the same array."""

    values: np.ndarray
    columns: tuple[str, ...]
    transform: Transform | None
    split: Split
    spec: WindowSpec
    train: Windows
    val: Windows
    test: Windows


def _apply_per_series(transform: Transform, values: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    out = np.empty_like(values)
    for a, b in zip(bounds[:-1], bounds[1:]):
        if b > a:
            out[a:b] = transform.transform(values[a:b])
    return out


def prepare(dataset: Dataset, lookback: int, horizon: int, split: Split,
            transform: Transform | None = None, *, stride: int = 1,
            reach_back: bool = True) -> WindowedData:
    """Fit `transform` on the training rows of every series only (never on a later row),
    apply it to each series and build train / val / test windows with the dataset's
    targets as Y, every column as X and its known-future columns as ``x_future``."""
    columns = dataset.columns
    spec = WindowSpec(lookback, horizon, stride, targets=tuple(range(len(dataset.target))),
                      known=tuple(columns.index(c) for c in dataset.known))
    raw = dataset.values(columns)
    if len(split.bounds) != len(dataset.bounds) or (split.bounds != dataset.bounds).any():
        raise ConfigError("the split was made for another dataset (its series bounds differ)")
    spans = split.span("train")
    for (a, b), uid in zip(spans, dataset.ids):
        require_length(int(b - a), lookback, horizon, f"the training part of series {uid!r}")
    values = raw
    if transform is not None:
        pieces = []
        for a, b in spans:  # a NaN row between series: no difference crosses a boundary
            pieces += [raw[a:b], np.full((1, raw.shape[1]), np.nan)]
        transform.fit(np.concatenate(pieces)[:-1])
        values = _apply_per_series(transform, raw, dataset.bounds)
    parts = {p: split.windows(values, spec, p, reach_back=reach_back) for p in PARTS}
    for p in ("val", "test"):
        n_rows = split.sizes()[p]
        if len(parts[p]) == 0 and n_rows.sum() > 0:
            raise DataError(
                f"the {p} part ({int(n_rows.max())} rows at most per series) yields no window "
                f"for horizon {horizon}{'' if reach_back else f' and lookback {lookback}'}; "
                f"give it at least {horizon if reach_back else lookback + horizon} rows"
            )
    return WindowedData(values, columns, transform, split, spec, parts["train"], parts["val"],
                        parts["test"])
