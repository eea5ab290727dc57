"""Interval coverage of the baselines over many folds of one series: whether a 40-fold
backtest's over- or under-coverage is the calibration's (it persists over hundreds of
folds) or the span's (it does not).

    python benchmarks/long_run_coverage.py etth1 -t OT --folds 300
    python benchmarks/long_run_coverage.py sea1948.csv -t Min_TemperatureC --gaps fill --folds 1000

Naive, seasonal naive and drift (fitted in no time, so hundreds of folds are cheap), step
= horizon (one season by default, as `forecast backtest` places folds), refitted every
`--refit-every` folds (10, the CLI's schedule) and, for comparison, once only (a model
fitted once and used for every later fold, as a cron job that never refits would). Prints
the 80 % and 95 % coverage of each and its `forecast.metrics.coverage_z`.
"""

from __future__ import annotations

import argparse

from forecast import workflows as wf
from forecast.backtest import BacktestConfig, backtest
from forecast.models import make_model

MODELS = ("naive", "seasonal_naive", "drift")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", help="a bundled dataset name or a CSV / Parquet file")
    ap.add_argument("-t", "--target", required=True)
    ap.add_argument("--gaps", default="error", help="error, fill or drop")
    ap.add_argument("--folds", type=int, default=300)
    ap.add_argument("--horizon", type=int, help="default: one season of the series' grid")
    ap.add_argument("--refit-every", type=int, default=10)
    args = ap.parse_args()
    data = wf.load_data(wf.DataSpec(args.source, target=args.target, gaps=args.gaps))
    H = args.horizon or wf.default_horizon(data)
    print(f"{args.source}:{args.target}, {args.folds} folds of {H} steps")
    for every in (args.refit_every, args.folds):
        res = backtest({m: make_model(m, horizon=H) for m in MODELS}, data,
                       BacktestConfig(horizon=H, n_folds=args.folds, step=H,
                                      refit_every=every, baselines=()))
        s = res.summary.set_index("model")
        label = f"refit every {every}" if every < args.folds else "fitted once"
        print(f"  {label:16s} " + "  ".join(
            f"{m} {s.loc[m, 'coverage_80']:.3f} (z {s.loc[m, 'cover_z_80']:+.2f}) / "
            f"{s.loc[m, 'coverage_95']:.3f} (z {s.loc[m, 'cover_z_95']:+.2f})" for m in MODELS))


if __name__ == "__main__":
    main()
