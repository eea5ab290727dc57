"""The long-horizon forecasting benchmark protocol (Informer, Autoformer, DLinear, PatchTST),
reproduced exactly so that our models can be compared with the published tables.

* The file is read as the papers read it (``pandas.read_csv``, nothing cleaned: no
  missing-value markers, no de-duplication, no gap filling, no re-sorting); the date
  column is dropped and the target column moved last.
* Layouts: ``ett-hour`` train rows [0, 8640), validation [8640, 11520), test [11520, 14400)
  (later rows unused); ``ett-minute`` the same times 4; ``custom`` train ``int(0.7 N)``
  rows, test the last ``int(0.2 N)`` rows, validation the rest.
* Validation and test windows start ``lookback`` rows before their boundary, so their
  targets stay inside the part while the lookback reaches back.
* Per-column z-score fitted on the training rows only (population std). ``S`` uses the
  target column only, ``M`` every value column.
* MSE and MAE on the scaled values over every test window (stride 1), horizon step and
  channel; ``drop_last`` scores only ``floor(n_windows / batch_size) * batch_size``
  windows, as the papers' test loader (batch size 32, ``drop_last=True``) did.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from forecast.errors import ConfigError, DataError
from forecast.transforms import StandardScaler
from forecast.windows import Split, Windows, WindowSpec, split_at, split_by_fraction

__all__ = [
    "LAYOUTS",
    "LTSFConfig",
    "LTSFData",
    "read_benchmark",
    "layout_split",
    "prepare",
    "score",
    "repeat_last",
    "evaluate",
]

LAYOUTS = ("ett-hour", "ett-minute", "custom")
ETT_HOUR_BORDERS = (12 * 30 * 24, 16 * 30 * 24, 20 * 30 * 24)  # 8640, 11520, 14400


@dataclass(frozen=True)
class LTSFConfig:
    """One benchmark run: file, layout, S/M features, target, window sizes, scoring."""

    data: str
    layout: str = "custom"
    features: str = "M"
    target: str = "OT"
    lookback: int = 336
    horizon: int = 96
    drop_last: bool = False
    batch_size: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ConfigError(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.features not in ("S", "M"):
            raise ConfigError(f"features must be 'S' or 'M', got {self.features!r}")
        for name in ("lookback", "horizon", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class LTSFData:
    """Scaled values (target last) and the train / val / test windows of one run."""

    config: LTSFConfig
    columns: tuple[str, ...]
    raw: np.ndarray
    values: np.ndarray
    scaler: StandardScaler
    split: Split
    train: Windows
    val: Windows
    test: Windows

    @property
    def n_eval(self) -> int:
        """Number of test windows scored (all, or whole batches with ``drop_last``)."""
        n = len(self.test)
        return n - n % self.config.batch_size if self.config.drop_last else n


def read_benchmark(path: str | Path, target: str, features: str = "M") -> tuple[np.ndarray, tuple[str, ...]]:
    """Values and column names as the papers' loaders produce them: every column but the
    date, target last (``S``: the target only). Nothing is cleaned."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"benchmark file not found: {str(path)!r}; pass --data PATH to a CSV file")
    try:
        frame = pd.read_csv(path, encoding_errors="replace")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise DataError(f"could not read {path.name!r} as CSV: {exc}") from None
    cols = list(frame.columns)
    if target not in cols:
        raise DataError(f"target column {target!r} not found in {path.name}; the columns are "
                        f"{cols}; pass --target")
    date = "date" if "date" in cols else cols[0]
    if date == target:
        raise DataError(f"the target {target!r} is the date column of {path.name}; pass --target")
    cols.remove(target)
    cols.remove(date)
    order = [target] if features == "S" else cols + [target]
    data = frame[order]
    bad = [c for c in order if not pd.api.types.is_numeric_dtype(data[c])]
    if bad:
        raise DataError(f"value column(s) {bad} of {path.name} are not numeric; the benchmark "
                        "needs numeric columns besides the date")
    return np.ascontiguousarray(data.to_numpy(dtype=np.float64)), tuple(order)


def layout_split(layout: str, n_rows: int) -> Split:
    """The train / val / test rows of `layout` for a file of `n_rows` rows."""
    if layout == "custom":
        return split_by_fraction(n_rows, train=0.7, test=0.2)
    scale = 1 if layout == "ett-hour" else 4
    tr, va, te = (b * scale for b in ETT_HOUR_BORDERS)
    if n_rows < te:
        raise DataError(f"the {layout} layout needs at least {te} rows; the file has {n_rows}")
    return split_at(n_rows, tr, va, te)


def prepare(config: LTSFConfig) -> LTSFData:
    """Read, split, scale (train rows only) and window the file of `config`."""
    raw, columns = read_benchmark(config.data, config.target, config.features)
    split = layout_split(config.layout, len(raw))
    train_rows = slice(0, int(split.train_end[0]))
    scaler = StandardScaler(ddof=0).fit(raw[train_rows])
    values = scaler.transform(raw)
    spec = WindowSpec(config.lookback, config.horizon, 1, squeeze=False)
    # Non-finite values are kept and scored, as the papers did.
    parts = {p: split.windows(values, spec, p, reach_back=True, drop_nonfinite=False)
             for p in ("train", "val", "test")}
    if len(parts["test"]) == 0:
        raise DataError(f"the test part yields no window for horizon {config.horizon}")
    return LTSFData(config, columns, raw, values, scaler, split, parts["train"], parts["val"],
                    parts["test"])


def score(predictions: np.ndarray, test: Windows, n_eval: int, chunk: int = 1024) -> dict[str, float]:
    """MSE and MAE of `predictions` (n >= n_eval, horizon, channels) against the first
    `n_eval` test windows, over every window, step and channel."""
    predictions = np.asarray(predictions)
    H = test.spec.horizon
    C = test.values.shape[1]
    if predictions.ndim != 3 or predictions.shape[0] < n_eval or predictions.shape[1:] != (H, C):
        raise ConfigError(f"predictions must have shape ({n_eval}, {H}, {C}), got "
                          f"{predictions.shape}")
    se = ae = 0.0
    for i in range(0, n_eval, chunk):
        k = np.arange(i, min(i + chunk, n_eval))
        err = predictions[k] - test.batch(k).y
        se += float(np.square(err).sum())
        ae += float(np.abs(err).sum())
    count = n_eval * H * C
    return {"mse": se / count, "mae": ae / count}


def repeat_last(test: Windows) -> np.ndarray:
    """The ``Repeat`` baseline of the DLinear paper: the last input value of each test
    window, repeated over the horizon; shape (len(test), horizon, channels)."""
    L, H = test.spec.lookback, test.spec.horizon
    last = test.values[test.starts + L - 1]  # (n, channels)
    return np.repeat(last[:, None, :], H, axis=1)


def evaluate(config: LTSFConfig, model: Callable[[LTSFData], np.ndarray]) -> dict[str, float]:
    """Run the protocol with ``model(data) -> predictions (n_test_windows, horizon,
    channels)`` and return ``{"mse", "mae", "windows", "seconds"}``."""
    t0 = time.perf_counter()
    data = prepare(config)
    n_eval = data.n_eval
    predictions = model(data)
    result = score(predictions, data.test, n_eval)
    return {**result, "windows": n_eval, "seconds": round(time.perf_counter() - t0, 3)}
