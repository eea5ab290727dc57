"""Long-horizon forecasting benchmark (the Informer / Autoformer / DLinear / PatchTST protocol).

    python benchmarks/ltsf.py --data datasets/ETTh1.csv --layout ett-hour --features M \
        --target OT --lookback 336 --horizon 96 --model repeat --drop-last

The protocol (file reading, layout, train-only z-score, windows, scoring) lives in
`forecast.ltsf`; this script adds the model registry and prints one JSON line
``{"mse": ..., "mae": ..., "windows": ..., "seconds": ...}`` as its last line.

A model is registered in ``MODELS`` as ``fn(train, val, test, args) -> predictions``:
`train`, `val` and `test` are `forecast.windows.Windows` over the same scaled array
(``.values``, ``.batch(k)``, ``.batches(32)``; val/test lookbacks reach back across
their boundary); predictions have shape ``(len(test), horizon, channels)`` in scaled units.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from forecast.errors import ForecastError  # noqa: E402
from forecast.ltsf import LAYOUTS, LTSFConfig, evaluate, repeat_last  # noqa: E402
from forecast.windows import Windows  # noqa: E402


def repeat(train: Windows, val: Windows, test: Windows, args: argparse.Namespace) -> np.ndarray:
    """The last input value of each test window, repeated over the horizon."""
    return repeat_last(test)


MODELS: dict[str, Callable[[Windows, Windows, Windows, argparse.Namespace], np.ndarray]] = {
    "repeat": repeat,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="benchmark CSV file (e.g. datasets/ETTh1.csv)")
    p.add_argument("--layout", choices=LAYOUTS, default="custom")
    p.add_argument("--features", choices=("S", "M"), default="M")
    p.add_argument("--target", default="OT")
    p.add_argument("--lookback", type=int, default=336)
    p.add_argument("--horizon", type=int, default=96)
    p.add_argument("--model", choices=sorted(MODELS), default="repeat")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--drop-last", action="store_true",
                   help="score only whole batches of 32 test windows, as the papers did")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = LTSFConfig(data=args.data, layout=args.layout, features=args.features,
                        target=args.target, lookback=args.lookback, horizon=args.horizon,
                        drop_last=args.drop_last, seed=args.seed)
    np.random.seed(args.seed)
    model = MODELS[args.model]
    try:
        result = evaluate(config, lambda d: model(d.train, d.val, d.test, args))
    except ForecastError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"mse": result["mse"], "mae": result["mae"],
                      "windows": result["windows"], "seconds": result["seconds"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
