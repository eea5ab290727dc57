"""Experiments behind the recurrent defaults (issue 14): variants of the GRU on the
bundled weather, hourly and stock series, several seeds, scored on a tuning span only.

    python benchmarks/defaults.py [--seeds 0,1] [--folds 10]

The tuning span of each series ends where the final check's 40 test folds begin (so
the check's truths are never seen); inside it, a rolling-origin backtest of `--folds`
folds (step = horizon, the default refit schedule) scores each variant by MAE relative
to the best of naive / seasonal naive / drift. Prints one row per (series, variant).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np

from forecast import datasets
from forecast.backtest import BacktestConfig, backtest
from forecast.models import Drift, RNNForecaster

CASES = [("seattle-weather", "temp_max", 7, None), ("etth1", "OT", 24, 8760),
         ("aapl", "Close", 5, None)]
VARIANTS = {
    "old default": {},
    "highway": {"highway": -1},
    "highway+calendar": {"highway": -1, "calendar": True},
    "calendar": {"calendar": True},
}


def tuning_span(name, target, H, rows):
    data = datasets.load(name, target=target)
    frame = data.frame if rows is None else data.frame.iloc[:rows]
    return replace(data, frame=frame.iloc[:len(frame) - 40 * H].reset_index(drop=True))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--cases", default="seattle-weather,etth1,aapl")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    for name, target, H, rows in CASES:
        if name not in args.cases.split(","):
            continue
        data = tuning_span(name, target, H, rows)
        cfg = BacktestConfig(horizon=H, n_folds=args.folds, step=H,
                             baselines=("naive", "seasonal_naive"))
        base = backtest({"drift": Drift()}, data, cfg).summary.set_index("model")["mae"]
        best = base.min()
        for vname in args.variants.split(","):
            kw = dict(VARIANTS[vname])
            rel, secs = [], 0.0
            for seed in seeds:
                lookback = kw.pop("lookback", 96)
                params = {k: (lookback if v == -1 else v) for k, v in kw.items()}
                m = RNNForecaster(cell="gru", horizon=H, lookback=lookback, random_state=seed,
                                  **params)
                t0 = time.perf_counter()
                mae = backtest({"gru": m}, data, cfg).summary.set_index("model").loc["gru", "mae"]
                secs += time.perf_counter() - t0
                rel.append(mae / best)
            print(f"{name:16s} {vname:18s} rel MAE vs best baseline "
                  f"{' '.join(f'{r:.3f}' for r in rel)} mean {np.mean(rel):.3f} "
                  f"({secs / len(seeds):.0f} s a seed; best baseline {base.idxmin()})",
                  flush=True)


if __name__ == "__main__":
    main()
