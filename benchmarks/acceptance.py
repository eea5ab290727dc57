"""The check of issue 14 on real series: 40-fold backtests with the default models.

    python benchmarks/acceptance.py                      # every case
    python benchmarks/acceptance.py --cases aapl,goog --models gru,auto
    python benchmarks/acceptance.py --file my.csv -t Close --kind price --gaps fill

With ``--file`` it runs the same check on the user's own CSV or Parquet file instead of
the bundled cases (``--kind`` weather or price picks the verdict).

Runs what a user runs (`forecast.workflows.backtest`, the engine of `forecast backtest`)
with its defaults (horizon: one season; refit every folds/4, recurrent models warm;
levels 80 and 95) and 40 folds on the bundled daily temperatures (Seattle temp_max and
temp_min), the hourly ETTh1 oil temperature and the daily AAPL and GOOG closes, with the
baselines naive, seasonal naive and drift. For each case it prints every model's MAE, its
MAE relative to the best of those baselines (``rel``: below 0.95 is a win on a weather
series; within 0.98-1.02 of naive is the honest result on a price series), the 80 % and
95 % interval coverage and the seconds it took, then one line per case with the verdict.
"""

from __future__ import annotations

import argparse
import os
import time

from cold_start import cpu_model  # benchmarks/ is this script's folder
from forecast import workflows as wf
from forecast.metrics import coverage_bar

#: (name, bundled dataset, target, kind): kind "weather" must win by 5 %, "price" must
#: stay within 2 % of naive.
CASES = [
    ("seattle-temp_max", "seattle-weather", "temp_max", "weather"),
    ("seattle-temp_min", "seattle-weather", "temp_min", "weather"),
    ("etth1-OT", "etth1", "OT", "weather"),
    ("aapl", "aapl", "Close", "price"),
    ("goog", "goog", "Close", "price"),
]
BASELINES = ("naive", "seasonal_naive", "drift")


def print_summary(s, refs: dict) -> None:
    """One row per model of the summary `s` (indexed by model): its MAE, its MAE relative
    to each of `refs` (heading: reference MAE), its 80 % and 95 % coverage, its seconds."""
    heads = " ".join(f"{k:>9s}" for k in refs)
    print(f"  {'model':16s} {'mae':>10s} {heads} {'cov80':>6s} {'cov95':>6s} {'z80':>6s} "
          f"{'z95':>6s} {'seconds':>8s}")
    for model, row in s.iterrows():
        secs = row.get("fit_seconds", 0) + row.get("predict_seconds", 0)
        rels = " ".join(f"{row['mae'] / v:9.3f}" for v in refs.values())
        zs = " ".join(f"{row.get(c, float('nan')):+6.2f}" for c in ("cover_z_80", "cover_z_95"))
        print(f"  {model:16s} {row['mae']:10.4f} {rels} {row['coverage_80']:6.3f} "
              f"{row['coverage_95']:6.3f} {zs} {secs:8.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(c[0] for c in CASES))
    ap.add_argument("--models", default="gru", help="models besides the baselines")
    ap.add_argument("--folds", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--file", help="a CSV or Parquet file of one's own instead of the cases")
    ap.add_argument("-t", "--target", help="with --file: the column to forecast")
    ap.add_argument("--kind", choices=("weather", "price"), default="weather",
                    help="with --file: the verdict (beat the baselines by 5 %%, or stay "
                         "within 2 %% of naive)")
    ap.add_argument("--gaps", default="error", help="with --file: error, fill or drop")
    ap.add_argument("--time-col", help="with --file: the time column")
    ap.add_argument("--id-col", help="with --file: the series id column")
    args = ap.parse_args()
    cases = [(c[0], wf.DataSpec(c[1], target=c[2]), c[3]) for c in CASES
             if c[0] in args.cases.split(",")]
    if args.file:
        cases = [(os.path.basename(args.file) + (f":{args.target}" if args.target else ""),
                  wf.DataSpec(args.file, target=args.target, gaps=args.gaps,
                              time_col=args.time_col, id_col=args.id_col), args.kind)]
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; folds {args.folds}; seed {args.seed}")
    verdicts = []
    for name, data, kind in cases:
        specs = [wf.ModelSpec(m, seed=args.seed) for m in args.models.split(",")]
        specs += [wf.ModelSpec(b) for b in BASELINES if b not in args.models.split(",")]
        t0 = time.perf_counter()
        run = wf.backtest(data, specs,
                          wf.BacktestSpec(folds=args.folds, baselines=()))
        wall = time.perf_counter() - t0
        s = run.result.summary.set_index("model")
        best = min(s.loc[b, "mae"] for b in BASELINES if b in s.index)
        naive = s.loc["naive", "mae"]
        print(f"\n{name} ({kind}), horizon {run.result.config.horizon}, {wall:.0f} s")
        print_summary(s, {"rel best": best, "rel naive": naive})
        n_in = sum(0.75 <= r["coverage_80"] <= 0.85 and 0.91 <= r["coverage_95"] <= 0.98
                   for _, r in s.iterrows())
        cov_ok = n_in == len(s)
        crit = coverage_bar(args.folds)  # as `forecast backtest`'s verdict judges
        n_chance = sum(abs(r["cover_z_80"]) <= crit and abs(r["cover_z_95"]) <= crit
                       for _, r in s.iterrows())
        for m in args.models.split(","):
            rel = s.loc[m, "mae"] / (best if kind == "weather" else naive)
            ok = rel <= 0.95 if kind == "weather" else abs(rel - 1) <= 0.02
            verdicts.append(f"{name:18s} {m:8s} rel {'best' if kind == 'weather' else 'naive'}"
                            f" {rel:.3f} {'ok' if ok else 'MISS'}; coverage of every model "
                            f"{'ok' if cov_ok else 'MISS'} ({n_in}/{len(s)} models in band, "
                            f"{n_chance}/{len(s)} within chance)")
    print("\nverdicts")
    for v in verdicts:
        print("  " + v)
    print("(a perfectly calibrated forecaster has both coverages of one model in band in "
          "about 73 % of 40-fold backtests, and each coverage within chance (z80 / z95, "
          "forecast.metrics.coverage_z, within the 95 % point of Student's t over the "
          "folds: 2.02 for 40) in 91-95 %: python benchmarks/coverage_spread.py)")


if __name__ == "__main__":
    main()
