"""Interval coverage of every default model on the tuning spans (issue 14), under
variants of the calibration, so that its defaults are chosen without the final check's
test folds.

    python benchmarks/interval_coverage.py [--variants current,whole-tail] [--folds 40]

Each series' tuning span ends where `benchmarks/acceptance.py`'s 40 test folds begin
(as in `benchmarks/defaults.py`); a rolling-origin backtest of `--folds` folds inside it
(step = horizon, the default refit schedule) measures the 80 % and 95 % coverage of the
naive, seasonal naive and drift baselines and the default GRU. Prints one row per
(series, variant) and, per variant, how many coverages fall in the issue's bands
(75-85 % and 91-98 %) and their mean distance from the nominal level.
"""

from __future__ import annotations

import argparse

import numpy as np

from defaults import tuning_span  # benchmarks/ is this script's folder
from forecast.backtest import BacktestConfig, backtest
from forecast.models import Drift, RNNForecaster, intervals

CASES = [("seattle-weather", "temp_max", 7, None), ("seattle-weather", "temp_min", 7, None),
         ("etth1", "OT", 24, None), ("aapl", "Close", 5, None), ("goog", "Close", 5, None)]
#: module attributes patched for each variant
VARIANTS = {
    "current": {},
    "whole-tail": {"MAX_SERIES_WINDOWS": 10**9},
    "no-seasonal": {"SEASONAL_VOLATILITY": False},  # the trailing volatility alone (before session 13)
}
BANDS = {80: (0.75, 0.85), 95: (0.91, 0.98)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--folds", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    tally = {v: [0, 0, []] for v in args.variants.split(",")}
    for name, target, H, rows in CASES:
        data = tuning_span(name, target, H, rows)
        cfg = BacktestConfig(horizon=H, n_folds=args.folds, step=H,
                             baselines=("naive", "seasonal_naive"))
        for vname in args.variants.split(","):
            saved = {k: getattr(intervals, k) for k in VARIANTS[vname]}
            for k, v in VARIANTS[vname].items():
                setattr(intervals, k, v)
            try:
                models = {"drift": Drift(), "gru": RNNForecaster(cell="gru", horizon=H,
                                                                 random_state=args.seed)}
                s = backtest(models, data, cfg).summary.set_index("model")
            finally:
                for k, v in saved.items():
                    setattr(intervals, k, v)
            cells = []
            for model in ("gru", "naive", "seasonal_naive", "drift"):
                for lv, (lo, hi) in BANDS.items():
                    c = float(s.loc[model, f"coverage_{lv}"])
                    ok = lo <= c <= hi
                    tally[vname][0] += ok
                    tally[vname][1] += 1
                    tally[vname][2].append(abs(c - lv / 100))
                    cells.append(f"{model[:6]}{lv} {c:.3f}{'' if ok else '*'}")
            print(f"{name + ':' + target:22s} {vname:11s} " + "  ".join(cells), flush=True)
    for vname, (ok, n, dev) in tally.items():
        print(f"{vname:11s} in band {ok}/{n}, mean |coverage - nominal| {np.mean(dev):.4f}")


if __name__ == "__main__":
    main()
