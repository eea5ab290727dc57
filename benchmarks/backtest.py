"""Backtest wall time: 20 folds of an hourly year, horizon 24, the default models.

    python benchmarks/backtest.py                 # both schedules, old first
    python benchmarks/backtest.py --schedule new  # only the current default
    python benchmarks/backtest.py --data normals  # the issue's smooth hourly year

The data is the first year (8,760 rows) of the bundled ETTh1 oil temperature (OT,
hourly), or with ``--data normals`` the hourly-normals year of
`benchmarks/hourly_normals.py` (the kind of series issue 14 timed). The models are the recurrent defaults (``lstm``, ``gru``) and ``linear`` on
lags; the naive and seasonal-naive baselines always run. ``old`` is the schedule before
issue 14: a fresh fit of every model at every fold (``refit_every=1``, ``refit=fresh``);
``new`` is the default (at most four fits per model, the recurrent ones warm-started).
Both run in this process on the same data, so their ratio is what the schedule changed.
Prints the wall time of each schedule, their ratio and each summary table.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from hourly_normals import normals_year  # benchmarks/ is this script's folder
from forecast import datasets, workflows as wf
from forecast.workflows import warmup

SCHEDULES = {"old": {"refit_every": 1, "refit": "fresh"}, "new": {}}


def hourly_year(folder: Path, data: str = "etth1") -> tuple[str, str]:
    """(path, target) of the year written to `folder`."""
    if data == "normals":
        frame, target = normals_year(), "temp"
    else:
        frame, target = datasets.load("etth1", target="OT").frame.iloc[:8760], "OT"
    path = folder / f"{data}-year.csv"
    frame.to_csv(path, index=False)
    return str(path), target


def run(path: str, target: str, schedule: str, models, folds: int):
    specs = [wf.ModelSpec(m, horizon=24) for m in models]
    settings = wf.BacktestSpec(horizon=24, folds=folds, **SCHEDULES[schedule])
    t0 = time.perf_counter()
    res = wf.backtest(wf.DataSpec(path, target=target), specs, settings)
    return time.perf_counter() - t0, res.result.summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--schedule", choices=("both", "old", "new"), default="both")
    ap.add_argument("--models", default="lstm,gru,linear")
    ap.add_argument("--folds", type=int, default=20)
    ap.add_argument("--data", choices=("etth1", "normals"), default="etth1")
    args = ap.parse_args()
    warmup(("lstm", "gru"))  # compile outside the timings
    todo = ["old", "new"] if args.schedule == "both" else [args.schedule]
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        path, target = hourly_year(Path(tmp), args.data)
        for sch in todo:
            seconds, summary = run(path, target, sch, args.models.split(","), args.folds)
            times[sch] = seconds
            print(f"schedule {sch}: {seconds:.1f} s")
            cols = [c for c in ("model", "mae", "skill_mae", "coverage_80", "coverage_95",
                                "seconds") if c in summary]
            print(summary[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if len(times) == 2:
        print(f"backtest wall time: before {times['old']:.1f} s, after {times['new']:.1f} s "
              f"({times['old'] / times['new']:.1f}x faster)")


if __name__ == "__main__":
    main()
