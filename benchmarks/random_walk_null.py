"""The random-walk test of the recurrent models' linear start, span by span: its z
against persistence (`linear_start_["z"]`, blocked cross-validation) on spans of a few
lengths cut from each series, so one can see where prices and weather fall.

    python benchmarks/random_walk_null.py
    python benchmarks/random_walk_null.py --file closes.csv:Close:5 --file temps.csv:Temp:7

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

from forecast import datasets
from forecast.data import load
from forecast.models import make_model

BUNDLED = [("seattle-weather", "temp_max", 7), ("seattle-weather", "temp_min", 7),
           ("aapl", "Close", 5), ("goog", "Close", 5)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", action="append", default=[], help="PATH:COLUMN:HORIZON")
    ap.add_argument("--lengths", default="365,550,730,1100")
    ap.add_argument("--starts", default="0,400")
    ap.add_argument("--validation-only-settles", action="store_true",
                    help="as fitting does: a validation z of SETTLED x null_z skips the "
                         "cross-validation (by default every span is cross-validated)")
    args = ap.parse_args()
    if not args.validation_only_settles:
        from forecast.models import _linear_start

        _linear_start.SETTLED = float("inf")
    cases = [(f"{n}:{t}", datasets.load(n, target=t), h) for n, t, h in BUNDLED]
    for spec in args.file:
        path, col, h = spec.rsplit(":", 2)
        cases.append((f"{path}:{col}", load(path, target=col, gaps="fill"), int(h)))
    warnings.simplefilter("ignore")
    for name, data, h in cases:
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
