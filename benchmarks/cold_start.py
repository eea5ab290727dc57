"""The first run on a fresh machine: an empty Numba cache, a fresh interpreter.

    python benchmarks/cold_start.py [--repeats 2] [--demo]

Times ``forecast fit seattle-weather --target temp_max`` (the default model, GRU) in a
fresh process whose Numba cache directory is new and empty, so every kernel compiles,
as on a new install. Two ways, interleaved in the same run:

* ``parallel``: the default; the recurrent kernels compile several at a time in worker
  processes (`forecast.precompile`) before training;
* ``serial``: ``FORECAST_PRECOMPILE=0``, each kernel compiles in the process on first use,
  one after the other (how every release before this one worked).

For each it prints the end-to-end wall time, the compile phase (the library's own
``compile`` events) and the rest, and the ratio serial / parallel. With ``--demo`` it also
times ``forecast demo`` the same way. Target: a cold ``forecast fit`` of the default model
in at most 45 s including compilation; ``forecast demo`` from a fresh clone in at most 2
minutes (pip install included, which this script does not time).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

DRIVER = """
import json, sys, time
t0 = time.perf_counter()
from forecast import workflows as wf
t_import = time.perf_counter() - t0
marks = {}
def progress(event):
    if event.stage == "compile":
        marks.setdefault("start", time.perf_counter())
        if event.step == event.total and event.total:
            marks["end"] = time.perf_counter()
job = sys.argv[1]
if job == "fit":
    wf.fit(wf.DataSpec("seattle-weather", target="temp_max"), wf.ModelSpec("gru"),
           progress=progress)
else:
    wf.demo(sys.argv[2], progress=progress)
total = time.perf_counter() - t0
compile_s = marks["end"] - marks["start"] if "end" in marks else 0.0
print(json.dumps({"total": total, "import": t_import, "compile": compile_s}))
"""


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def run(job: str, mode: str, tmp: Path) -> dict:
    cache = Path(tempfile.mkdtemp(prefix="numba-cache-", dir=tmp))
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), FORECAST_NUMBA_CACHE="1",
               FORECAST_PRECOMPILE="1" if mode == "parallel" else "0",
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH"))
                                          if p))
    args = [sys.executable, "-c", DRIVER, job] + ([str(tmp / f"demo-{mode}")] if job == "demo"
                                                  else [])
    t0 = time.perf_counter()
    r = subprocess.run(args, env=env, capture_output=True, text=True, cwd=tmp)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{job} ({mode}) failed: {r.stderr[-2000:]}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    out["wall"] = wall
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--demo", action="store_true", help="also time forecast demo")
    args = ap.parse_args()
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}")
    jobs = ["fit"] + (["demo"] if args.demo else [])
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        for job in jobs:
            best: dict[str, dict] = {}
            for i in range(args.repeats):
                for mode in ("parallel", "serial"):
                    res = run(job, mode, tmp)
                    print(f"{job:4s} {mode:8s} run {i + 1}: {res['wall']:6.1f} s wall "
                          f"(import {res['import']:.1f} s, parallel compile phase "
                          f"{res['compile']:.1f} s, the rest {res['wall'] - res['compile']:.1f} s)",
                          flush=True)
                    if mode not in best or res["wall"] < best[mode]["wall"]:
                        best[mode] = res
            target = 45.0 if job == "fit" else 120.0
            p, s = best["parallel"]["wall"], best["serial"]["wall"]
            verdict = "ok" if p <= target else "OVER"
            print(f"{job}: cold, best of {args.repeats}: parallel {p:.1f} s, serial {s:.1f} s "
                  f"(target {target:g} s: {verdict}); serial / parallel = {s / p:.2f}x")


if __name__ == "__main__":
    main()
