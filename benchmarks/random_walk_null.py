"""The random-walk test of the recurrent models' linear start, span by span: its z
against persistence (`linear_start_["z"]`, blocked cross-validation) on spans of a few
lengths cut from each series, so one can see where prices and weather fall.

    python benchmarks/random_walk_null.py
    python benchmarks/random_walk_null.py --file closes.csv:Close:5 --file temps.csv:Temp:7
    python benchmarks/random_walk_null.py --backtest --lengths 550,730 --starts 0,200,400,600

With ``--backtest`` it measures what the test costs instead: each span is followed by 20
folds of one horizon, backtested with the default GRU with ``null_z=2`` and with
``null_z=None``; it prints both MAEs relative to the best of naive and seasonal naive.

Bundled cases: Seattle temp_max and temp_min (daily, horizon 7), AAPL and GOOG closes
(trading days, horizon 5). ``--file PATH:COLUMN:HORIZON`` adds a CSV of one's own (gaps
filled). Each span (``--lengths`` rows starting at each of ``--starts``) is fitted with
the default GRU for one epoch (the test runs before training) and its z printed; the
start is kept when z >= 2 (`null_z`). Every span is cross-validated here; a fit skips the
cross-validation when the validation windows alone give z >= 4 (`SETTLED`).
"""

from __future__ import annotations

import argparse
import warnings

from dataclasses import replace

from forecast import datasets
from forecast.backtest import BacktestConfig, backtest
from forecast.data import load
from forecast.models import make_model

BUNDLED = [("seattle-weather", "temp_max", 7), ("seattle-weather", "temp_min", 7),
           ("aapl", "Close", 5), ("goog", "Close", 5)]


def cases_of(args):
    cases = [(f"{n}:{t}", datasets.load(n, target=t), h) for n, t, h in BUNDLED]
    for spec in args.file:
        path, col, h = spec.rsplit(":", 2)
        cases.append((f"{path}:{col}", load(path, target=col, gaps="fill"), int(h)))
    return cases


def compare(cases, args) -> None:
    """MAE of the GRU with and without the test, 20 folds after each span."""
    warnings.simplefilter("ignore")
    pairs = []
    for name, data, h in cases:
        for n in (int(x) for x in args.lengths.split(",")):
            for s in (int(x) for x in args.starts.split(",")):
                if s + n + 20 * h > len(data.frame):
                    continue
                d = replace(data, frame=data.frame.iloc[s:s + n + 20 * h].reset_index(drop=True))
                cfg = BacktestConfig(horizon=h, n_folds=20, step=h, refit_every=5,
                                     baselines=("naive", "seasonal_naive"))
                res = backtest({"null": make_model("gru", horizon=h),
                                "free": make_model("gru", horizon=h, null_z=None)}, d, cfg)
                mae = res.summary.set_index("model")["mae"]
                best = min(mae["naive"], mae["seasonal_naive"])
                pairs.append((mae["null"] / best, mae["free"] / best))
                print(f"{name:32s} {n}/{s}: with the test {pairs[-1][0]:.3f}, without "
                      f"{pairs[-1][1]:.3f}", flush=True)
    if pairs:
        a = sum(p[0] for p in pairs) / len(pairs)
        b = sum(p[1] for p in pairs) / len(pairs)
        print(f"mean over {len(pairs)} spans: with the test {a:.3f}, without {b:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", action="append", default=[], help="PATH:COLUMN:HORIZON")
    ap.add_argument("--lengths", default="365,550,730,1100")
    ap.add_argument("--starts", default="0,400")
    ap.add_argument("--backtest", action="store_true",
                    help="backtest 20 folds after each span with and without the test")
    ap.add_argument("--validation-only-settles", action="store_true",
                    help="as fitting does: a validation z of SETTLED x null_z skips the "
                         "cross-validation (by default every span is cross-validated)")
    args = ap.parse_args()
    if args.backtest:
        return compare(cases_of(args), args)
    if not args.validation_only_settles:
        from forecast.models import _linear_start

        _linear_start.SETTLED = float("inf")
    warnings.simplefilter("ignore")
    for name, data, h in cases_of(args):
        frame = data.frame
        zs = []
        for n in (int(x) for x in args.lengths.split(",")):
            for s in (int(x) for x in args.starts.split(",")):
                if s + n > len(frame):
                    continue
                span = frame.iloc[s:s + n].reset_index(drop=True)
                m = make_model("gru", horizon=h, random_state=0, max_epochs=1)
                m.fit(span[[data.time_col, data.target[0]]], target=data.target[0])
                z = m.linear_start_["z"]
                zs.append(f"{n}/{s}: {'n/a' if z is None else f'{z:.2f}'}")
        print(f"{name:32s} " + "  ".join(zs), flush=True)


if __name__ == "__main__":
    main()
