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

CASES = [("seattle-weather", "temp_max", 7, None), ("seattle-weather", "temp_min", 7, None),
         ("etth1", "OT", 24, 8760), ("aapl", "Close", 5, None), ("goog", "Close", 5, None)]
#: the variants tried; ``-1`` stands for the lookback; "lags start" is the linear start
#: before the level and known-covariate terms (lags only, near-OLS), for comparison
VARIANTS = {
    "default": {},
    "lags start": {"_lags_only": True},
    "level off": {"level": False},
    "level on": {"level": True},
    "no calendar": {"calendar": False},
    "lookback 28": {"lookback": 28},
    "lookback 192": {"lookback": 192},
    "hidden 64": {"n_hidden": 64},
    "epochs 40": {"max_epochs": 40, "patience": 5},
    "lr 3e-3": {"lr": 3e-3},
    "old default": {"calendar": False, "highway": 0},
}


def _lags_only_start():
    """Patch the recurrent model's linear start back to lags only, near-OLS."""
    from forecast.models import _linear_start, rnn

    def lags_only(*args, **kw):
        kw.update(levels=(False,), knowns=(False,), alphas=(1e-6,))
        return _linear_start.fit_linear_start(*args, **kw)

    rnn.fit_linear_start = lags_only
    return lambda: setattr(rnn, "fit_linear_start", _linear_start.fit_linear_start)


def tuning_span(name, target, H, rows):
    data = datasets.load(name, target=target)
    frame = data.frame if rows is None else data.frame.iloc[:rows]
    return replace(data, frame=frame.iloc[:len(frame) - 40 * H].reset_index(drop=True))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--cases", default="seattle-weather:temp_max,seattle-weather:temp_min,"
                    "etth1:OT,aapl:Close,goog:Close")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    for name, target, H, rows in CASES:
        if f"{name}:{target}" not in args.cases.split(","):
            continue
        data = tuning_span(name, target, H, rows)
        cfg = BacktestConfig(horizon=H, n_folds=args.folds, step=H,
                             baselines=("naive", "seasonal_naive"))
        base = backtest({"drift": Drift()}, data, cfg).summary.set_index("model")["mae"]
        best = base.min()
        for vname in args.variants.split(","):
            kw = dict(VARIANTS[vname])
            rel, secs = [], 0.0
            undo = _lags_only_start() if kw.pop("_lags_only", False) else None
            lookback = kw.pop("lookback", 96)
            for seed in seeds:
                params = {k: (lookback if v == -1 else v) for k, v in kw.items()}
                m = RNNForecaster(cell="gru", horizon=H, lookback=lookback, random_state=seed,
                                  **params)
                t0 = time.perf_counter()
                mae = backtest({"gru": m}, data, cfg).summary.set_index("model").loc["gru", "mae"]
                secs += time.perf_counter() - t0
                rel.append(mae / best)
            if undo:
                undo()
            print(f"{name + ':' + target:22s} {vname:14s} rel MAE vs best baseline "
                  f"{' '.join(f'{r:.3f}' for r in rel)} mean {np.mean(rel):.3f} "
                  f"({secs / len(seeds):.0f} s a seed; best baseline {base.idxmin()})",
                  flush=True)


if __name__ == "__main__":
    main()
