"""How far a backtest's interval coverage strays by chance alone: the coverage that a
*perfectly calibrated* forecaster gets over `--folds` folds of `--horizon` steps.

    python benchmarks/coverage_spread.py                     # horizons 5, 7 and 24, 40 folds
    python benchmarks/coverage_spread.py --folds 20 --horizons 24

The forecaster is the naive forecast of a Gaussian random walk with its exact intervals
(``+- z sigma sqrt(h)`` at step ``h``), so every interval covers with exactly its
nominal probability; folds are `horizon` steps apart, as `forecast backtest` places them.
The steps of one fold share their path, so their misses come together and the coverage
of 40 folds is far noisier than 40 x horizon independent draws would be. Prints, for
each horizon, the standard deviation of the 80 % and 95 % coverage, the mean distance
from nominal and the probability that the coverage lands in issue 14's bands (75-85 %
and 91-98 %): the yardstick for reading `benchmarks/acceptance.py`'s coverage columns.
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.stats import norm

from forecast.metrics import coverage_bar, coverage_z

BANDS = {80: (0.75, 0.85), 95: (0.91, 0.98)}


def spread(folds: int, horizon: int, repeats: int, seed: int = 0, narrow: float = 0.8) -> dict:
    rng = np.random.default_rng(seed)
    sd = np.sqrt(np.arange(1, horizon + 1))
    inside = np.ones(repeats, bool)
    out, passed, flagged = {}, {}, {}
    counts = np.full(folds, horizon)
    crit = coverage_bar(folds)  # as `forecast backtest` judges
    for a in range(0, repeats, 2000):  # in blocks: 20,000 x 40 x 24 floats at once is large
        n = min(2000, repeats - a)
        err = np.cumsum(rng.normal(size=(n, folds, horizon)), axis=2)
        for level, (lo, hi) in BANDS.items():
            z = norm.ppf(0.5 + level / 200)
            hits = (np.abs(err) <= z * sd).sum(2)  # (n, folds)
            cov = hits.sum(1) / (folds * horizon)
            out.setdefault(level, []).append(cov)
            inside[a:a + n] &= (cov >= lo) & (cov <= hi)
            zs = np.array([coverage_z(h, counts, level) for h in hits])
            passed.setdefault(level, []).append(np.abs(zs) <= crit)
            thin = (np.abs(err) <= narrow * z * sd).sum(2)
            zn = np.array([coverage_z(h, counts, level) for h in thin])
            flagged.setdefault(level, []).append(zn < -crit)
    res = {"both": float(inside.mean())}
    for level, covs in out.items():
        c = np.concatenate(covs)
        lo, hi = BANDS[level]
        res[level] = (float(c.std()), float(np.abs(c - level / 100).mean()),
                      float(((c >= lo) & (c <= hi)).mean()),
                      float(np.concatenate(passed[level]).mean()),
                      float(np.concatenate(flagged[level]).mean()))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", type=int, default=40)
    ap.add_argument("--horizons", default="5,7,24")
    ap.add_argument("--repeats", type=int, default=20000)
    args = ap.parse_args()
    print(f"a perfectly calibrated forecaster, {args.folds} folds, {args.repeats} backtests")
    for h in (int(x) for x in args.horizons.split(",")):
        r = spread(args.folds, h, args.repeats)
        parts = [f"cov{lv}: sd {r[lv][0]:.3f}, mean |cov - {lv}%| {r[lv][1]:.3f}, "
                 f"in {BANDS[lv][0]:.0%}-{BANDS[lv][1]:.0%} {r[lv][2]:.1%}, within chance "
                 f"{r[lv][3]:.1%}, narrow flagged {r[lv][4]:.1%}" for lv in BANDS]
        print(f"horizon {h:3d}: " + "; ".join(parts) + f"; both in band {r['both']:.1%}")


if __name__ == "__main__":
    main()
