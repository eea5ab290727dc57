"""Batch engine at scale: many daily series, GRU (32 hidden units, horizon 30) plus the
naive baseline in a one-fold backtest, the seasonal-naive fallback, the local engine.

    python benchmarks/batch.py                      # 1,000 series (about 10 minutes)
    python benchmarks/batch.py --series 100         # a quick look

The series are slices (1,000 to 3,000 points; the weather series are shorter, 1,461 days
at most) of the bundled real data: the AAPL and GOOG open/high/low/close/adjusted close
prices and the Seattle daily temperatures and wind, each rescaled by a random factor, one
CSV file per series (a watch-list). It prints the wall time, series per second, the
per-series overhead outside training, the peak memory of the whole process tree
(coordinator and workers, sampled every 0.2 s from /proc), and the speed-up of 2 workers
over 1 on a subset. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "datasets"
BASES = [("yahoofinance-AAPL-20040819-20180120.csv", c) for c in
         ("Open", "High", "Low", "Close", "Adj Close")] + \
        [("yahoofinance-GOOG-20040819-20180120.csv", c) for c in
         ("Open", "High", "Low", "Close", "Adj Close")] + \
        [("seattle-weather.csv", c) for c in ("temp_max", "temp_min", "wind")]


def make_series(folder: Path, n: int, seed: int = 0) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    frames = {}
    for file, col in BASES:
        f = pd.read_csv(DATA / file)
        time_col = "Date" if "Date" in f else "date"
        frames[(file, col)] = f[[time_col, col]].rename(columns={time_col: "date", col: "y"})
    folder.mkdir(parents=True, exist_ok=True)
    lengths = {}
    for i in range(n):
        key = BASES[i % len(BASES)]
        base = frames[key]
        length = int(rng.integers(1000, min(3000, len(base)) + 1))
        start = int(rng.integers(0, len(base) - length + 1))
        part = base.iloc[start:start + length].copy()
        part["y"] = part["y"] * float(rng.uniform(0.2, 5.0)) + float(rng.uniform(0, 10))
        name = f"s{i:04d}"
        part.to_csv(folder / f"{name}.csv", index=False)
        lengths[name] = length
    return lengths


BATCH = """
output = "{out}"
workers = {workers}
threads_per_worker = {threads}
reports = {reports}

[defaults]
model = "gru"
hidden = 32
horizon = 30
lookback = 60
epochs = {epochs}
folds = 1
fallback = "seasonal_naive"
target = "y"
params = {{ batch_size = 128, patience = 2 }}

[[sources]]
path = "{data}/*.csv"
"""


def _tree_rss(pid: int) -> int:
    """Resident memory (bytes) of `pid` and all its descendants."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    stack.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError):
            continue
    return total


def run(folder: Path, data: Path, workers: int, epochs: int, reports: bool, tag: str,
        threads: int | None = None):
    out = folder / f"out-{tag}"
    shutil.rmtree(out, ignore_errors=True)  # a fresh run, not a resumed one
    toml = folder / f"{tag}.toml"
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    toml.write_text(BATCH.format(out=out, workers=workers, epochs=epochs, data=data,
                                 reports=str(reports).lower(), threads=threads))
    cmd = [sys.executable, "-m", "forecast.cli", "--quiet", "batch", "run", str(toml),
           "--run-id", "bench"]
    peak = [0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def sample():
        while proc.poll() is None:
            peak[0] = max(peak[0], _tree_rss(proc.pid))
            time.sleep(0.2)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    th.join()
    if proc.returncode not in (0, 3):
        raise SystemExit(f"batch run failed ({proc.returncode}):\n{stderr[-3000:]}")
    manifest = json.loads((out / "runs" / "bench" / "manifest.json").read_text())
    return wall, peak[0], manifest


def describe(name: str, wall: float, peak: int, manifest: dict, workers: int) -> dict:
    series = manifest["series"]
    n = len(series)
    secs = pd.DataFrame([e.get("seconds") or {} for e in series]).fillna(0.0)
    train = (secs.get("fit", 0) + secs.get("backtest", 0))
    in_worker = secs["total"] - train
    # everything but training, per series: wall time x worker slots / series - training
    overhead = wall * workers / n - float(train.mean())
    row = {"run": name, "series": n, "workers": workers, "wall_s": round(wall, 1),
           "series_per_s": round(n / wall, 2), "counts": manifest["counts"],
           "train_s_per_series": round(float(train.mean()), 3),
           "non_training_in_worker_s": round(float(in_worker.mean()), 3),
           "overhead_s_per_series": round(overhead, 3),
           "report_s_per_series": round(float(secs.get("report", pd.Series([0])).mean()), 3),
           "peak_rss_mb": round(peak / 2**20)}
    return row


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--speedup-series", type=int, default=60,
                    help="series in the 1-worker vs 2-worker comparison")
    ap.add_argument("--no-reports", action="store_true", help="skip per-series HTML reports")
    ap.add_argument("--keep", help="keep the generated data and outputs in this folder")
    ap.add_argument("--subset-only", action="store_true",
                    help="only the 1-worker vs 2-worker comparison")
    args = ap.parse_args(argv)
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="forecast-batch-"))
    data = folder / "data"
    lengths = make_series(data, args.series)
    print(f"{args.series} series of {min(lengths.values())}-{max(lengths.values())} points "
          f"(mean {np.mean(list(lengths.values())):.0f}) in {data}")
    # warm the kernel cache first (compilation is a one-off, not the batch's cost)
    subprocess.run([sys.executable, "-m", "forecast.cli", "--quiet", "warmup", "--cells", "gru"],
                   check=True)
    reports = not args.no_reports
    rows = []
    if not args.subset_only:
        wall, peak, manifest = run(folder, data, 2, args.epochs, reports, "full")
        rows.append(describe(f"all {args.series} series", wall, peak, manifest, 2))
    # speed-up of 2 workers over 1, on a subset
    sub = folder / "subset"
    sub.mkdir(exist_ok=True)
    for p in sorted(data.glob("*.csv"))[:args.speedup_series]:
        target = sub / p.name
        if not target.exists():
            target.symlink_to(p)
    single = run(folder, sub, 1, args.epochs, reports, "single", threads=1)
    one = run(folder, sub, 1, args.epochs, reports, "one")
    two = run(folder, sub, 2, args.epochs, reports, "two")
    rows.append(describe("subset, 1 worker x 1 thread", single[0], single[1], single[2], 1))
    rows.append(describe("subset, 1 worker x 2 threads", one[0], one[1], one[2], 1))
    rows.append(describe("subset, 2 workers x 1 thread", two[0], two[1], two[2], 2))
    for r in rows:
        print(json.dumps(r))
    if not args.subset_only:
        _print_full(rows[0])
    print(f"speed-up of 2 workers over 1 ({args.speedup_series} series): "
          f"{single[0] / two[0]:.2f}x against 1 worker with 1 thread, "
          f"{one[0] / two[0]:.2f}x against 1 worker with 2 Numba threads")


def _print_full(full: dict) -> None:
    print(f"\n{full['series']} series in {full['wall_s']:.0f} s wall ({full['wall_s'] / 60:.1f} "
          f"min; target 10 min): {full['series_per_s']:.2f} series/s; "
          f"statuses {full['counts']}")
    print(f"training {full['train_s_per_series']:.2f} s per series (backtest fit + final fit); "
          f"overhead outside training {full['overhead_s_per_series']:.3f} s per series "
          f"(of which HTML report {full['report_s_per_series']:.3f} s, in the worker)")
    print(f"peak memory of coordinator + workers: {full['peak_rss_mb']} MB (target 2048 MB)")


if __name__ == "__main__":
    main()
