"""Data pipeline speed and memory: load -> validate -> transform -> window.

    python benchmarks/pipeline.py [--rows 1000000] [--repeat 3]

Part 1 times each stage on ETTh1 (17,420 rows x 7 value columns) and compares with the
peer measured in the same run: a bare ``pandas.read_csv`` for loading, and a naive
``np.stack`` of slices for materialising windows.
Part 2 writes a synthetic hourly series of ``--rows`` rows to a temporary CSV, then loads
and windows it, reporting the time and the peak memory traced (tracemalloc) against the
raw data size (the CSV file, and the parsed arrays).
The last line is a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from forecast import data, transforms  # noqa: E402
from forecast.data import read_source  # noqa: E402
from forecast.windows import Windows, WindowSpec, split_at  # noqa: E402

LOOKBACK, HORIZON, BATCH = 336, 96, 32


def best_of(fn, repeat: int):
    """(best seconds, last result) over `repeat` calls."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def traced_peak(fn) -> tuple[int, object]:
    tracemalloc.start()
    try:
        out = fn()
        return tracemalloc.get_traced_memory()[1], out
    finally:
        tracemalloc.stop()


def stages_on_etth1(repeat: int) -> dict:
    path = ROOT / "datasets" / "ETTh1.csv"
    t_csv, _ = best_of(lambda: pd.read_csv(path), repeat)
    t_read, _ = best_of(lambda: read_source(path), repeat)
    t_load, ds = best_of(lambda: data.load(path, target="OT", covariates="all"), repeat)
    raw = ds.values()
    split = split_at(ds, 8640, 11520, 14400)

    def transform():
        scaler = transforms.StandardScaler().fit(raw[split.rows("train")])
        return scaler.transform(raw)

    t_tf, values = best_of(transform, repeat)
    spec = WindowSpec(LOOKBACK, HORIZON, targets=(0,))
    t_index, w = best_of(lambda: split.windows(values, spec, "train", reach_back=False), repeat)

    def all_batches():
        return sum(len(b) for b in w.batches(BATCH))

    t_batches, n_windows = best_of(all_batches, repeat)
    starts = w.starts

    def naive():  # the peer: stack slices of X and Y batch by batch
        n = 0
        for i in range(0, len(starts), BATCH):
            chunk = starts[i:i + BATCH]
            x = np.stack([values[s:s + LOOKBACK] for s in chunk])
            y = np.stack([values[s + LOOKBACK:s + LOOKBACK + HORIZON, 0] for s in chunk])
            n += len(x) + 0 * len(y)
        return n

    t_naive, _ = best_of(naive, repeat)
    rows = len(ds)
    peak, _ = traced_peak(lambda: data.load(path, target="OT", covariates="all"))
    return {
        "rows": rows,
        "pandas_read_csv_s": t_csv,
        "read_s": t_read,
        "load_s": t_load,
        "validate_s": max(t_load - t_read, 0.0),
        "transform_s": t_tf,
        "window_index_s": t_index,
        "windows": n_windows,
        "materialise_all_s": t_batches,
        "naive_stack_s": t_naive,
        "load_rows_per_s": rows / t_load,
        "transform_rows_per_s": rows / t_tf,
        "windows_per_s": n_windows / t_batches,
        "load_vs_read_csv": t_load / t_csv,
        "materialise_vs_naive": t_batches / t_naive,
        "load_peak_mb": peak / 1e6,
        "file_mb": path.stat().st_size / 1e6,
    }


def synthetic(rows: int, folder: Path) -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "date": pd.date_range("2000-01-01", periods=rows, freq="h"),
        "value": np.round(100 + rng.normal(size=rows).cumsum(), 4),
    })
    path = folder / f"synthetic-{rows}.csv"
    frame.to_csv(path, index=False, date_format="%Y-%m-%d %H:%M:%S")
    return path


def million_rows(rows: int, repeat: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = synthetic(rows, Path(tmp))

        def load_and_window():
            ds = data.load(path, target="value")
            values = ds.values()
            w = Windows(values, WindowSpec(LOOKBACK, HORIZON))
            batch = w.batch(np.arange(min(BATCH, len(w))))
            return ds, w, batch

        t_csv, _ = best_of(lambda: pd.read_csv(path), repeat)
        t_total, (ds, w, batch) = best_of(load_and_window, repeat)
        t_load, _ = best_of(lambda: data.load(path, target="value"), repeat)
        peak, _ = traced_peak(load_and_window)
        file_bytes = path.stat().st_size
    parsed_bytes = rows * 16  # datetime64 + float64 per row
    return {
        "rows": rows,
        "freq": ds.freq.alias,
        "windows": len(w),
        "pandas_read_csv_s": t_csv,
        "load_s": t_load,
        "load_and_window_s": t_total,
        "rows_per_s": rows / t_total,
        "load_vs_read_csv": t_load / t_csv,
        "peak_mb": peak / 1e6,
        "file_mb": file_bytes / 1e6,
        "parsed_mb": parsed_bytes / 1e6,
        "peak_vs_file": peak / file_bytes,
        "peak_vs_parsed": peak / parsed_bytes,
        "naive_windows_mb": len(w) * LOOKBACK * 8 / 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)

    e = stages_on_etth1(args.repeat)
    print(f"ETTh1: {e['rows']} rows x 7 columns, {e['file_mb']:.1f} MB CSV (best of {args.repeat})")
    print(f"  pandas.read_csv (peer)   {e['pandas_read_csv_s'] * 1e3:8.1f} ms")
    print(f"  read                     {e['read_s'] * 1e3:8.1f} ms")
    print(f"  load (read + validate)   {e['load_s'] * 1e3:8.1f} ms  {e['load_rows_per_s']:12,.0f} rows/s"
          f"  {e['load_vs_read_csv']:.2f}x read_csv  peak {e['load_peak_mb']:.1f} MB")
    print(f"  validate + grid          {e['validate_s'] * 1e3:8.1f} ms")
    print(f"  transform (fit train)    {e['transform_s'] * 1e3:8.1f} ms  {e['transform_rows_per_s']:12,.0f} rows/s")
    print(f"  window index             {e['window_index_s'] * 1e3:8.3f} ms  ({e['windows']} train windows, "
          f"lookback {LOOKBACK}, horizon {HORIZON})")
    print(f"  materialise all batches  {e['materialise_all_s'] * 1e3:8.1f} ms  {e['windows_per_s']:12,.0f} windows/s"
          f"  {e['materialise_vs_naive']:.2f}x naive np.stack of X and Y ({e['naive_stack_s'] * 1e3:.1f} ms)")

    m = million_rows(args.rows, max(1, args.repeat - 1))
    print(f"Synthetic hourly series: {m['rows']:,} rows, {m['file_mb']:.1f} MB CSV, freq {m['freq']}")
    print(f"  pandas.read_csv (peer)   {m['pandas_read_csv_s']:8.3f} s")
    print(f"  load                     {m['load_s']:8.3f} s  {m['load_vs_read_csv']:.2f}x read_csv")
    print(f"  load + window index + 1 batch {m['load_and_window_s']:6.3f} s  {m['rows_per_s']:12,.0f} rows/s")
    print(f"  peak traced memory       {m['peak_mb']:8.1f} MB  = {m['peak_vs_file']:.2f}x the CSV file, "
          f"{m['peak_vs_parsed']:.2f}x the parsed arrays ({m['parsed_mb']:.0f} MB); "
          f"materialising every window would take {m['naive_windows_mb']:,.0f} MB")
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    print(f"  process max RSS          {max_rss:8.1f} MB")
    summary = {"etth1": {k: round(v, 6) if isinstance(v, float) else v for k, v in e.items()},
               "million": {k: round(v, 6) if isinstance(v, float) else v for k, v in m.items()},
               "max_rss_mb": round(max_rss, 1)}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
