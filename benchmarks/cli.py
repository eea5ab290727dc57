"""Command-line start-up and end-to-end times against the product targets.

    python benchmarks/cli.py              # help times, warm predict, report size
    python benchmarks/cli.py --demo       # also time `forecast demo` (warm cache)

Each figure is the best of N runs of a fresh process (subprocess), so it includes Python
start-up and imports, as a user sees it. Targets: ``forecast --help`` and every
command's help within 0.5 s; ``forecast predict`` of a small saved model within 2 s with
a warm kernel cache; a report page under 5 MB.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = ["fit", "predict", "backtest", "report", "datasets", "warmup", "demo"]
FORECAST = [sys.executable, "-m", "forecast.cli"]


def best_of(cmd: list[str], n: int, cwd: Path, env: dict) -> float:
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - t0
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr[-500:]}")
        best = min(best, elapsed)
    return best


def line(label: str, value: float, target: float | None, unit: str = "s") -> None:
    verdict = "" if target is None else ("ok" if value <= target else "OVER")
    tgt = "" if target is None else f"target {target:g} {unit}"
    print(f"{label:34s} {value:8.3f} {unit}   {tgt:16s} {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5, help="runs per figure (best is kept)")
    parser.add_argument("--demo", action="store_true", help="also time forecast demo")
    args = parser.parse_args()
    env = {**os.environ}
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, best of {args.n}\n")
        line("forecast --help", best_of(FORECAST + ["--help"], args.n, cwd, env), 0.5)
        for cmd in COMMANDS:
            line(f"forecast {cmd} --help", best_of(FORECAST + [cmd, "--help"], args.n, cwd, env),
                 0.5)
        # a small saved model, kernels compiled and cached by a first run
        subprocess.run(FORECAST + ["--quiet", "fit", "aapl", "-m", "gru", "--horizon", "5",
                                   "--epochs", "2", "-o", "gru.npz"], cwd=cwd, env=env,
                       check=True)
        subprocess.run(FORECAST + ["predict", "gru.npz", "-o", "warm.csv"], cwd=cwd, env=env,
                       check=True, capture_output=True)
        line("forecast predict (warm cache)",
             best_of(FORECAST + ["predict", "gru.npz", "-o", "f.csv"], args.n, cwd, env), 2.0)
        line("forecast predict --data (warm)",
             best_of(FORECAST + ["predict", "gru.npz", "--data", "aapl", "-o", "f.csv"], args.n,
                     cwd, env), 2.0)
        subprocess.run(FORECAST + ["--quiet", "report", "gru.npz", "-o", "r.html"], cwd=cwd,
                       env=env, check=True)
        line("report page (gru on aapl)", (cwd / "r.html").stat().st_size / 1e6, 5.0, "MB")
        if args.demo:
            t = best_of(FORECAST + ["--quiet", "demo", "-o", "demo"], 1, cwd, env)
            line("forecast demo (warm cache)", t, 120.0)
            for page in sorted((cwd / "demo").glob("*.html")):
                line(f"  {page.name}", page.stat().st_size / 1e6, 5.0, "MB")


if __name__ == "__main__":
    main()
