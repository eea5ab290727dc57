"""Training and inference speed of forecast's Numba kernels against PyTorch (CPU).

    pip install -e ".[bench]"      # torch==2.13.0, never a package dependency
    python benchmarks/kernels.py [--configs a,b,c] [--cells rnn,lstm,gru]
                                 [--dtypes float32,float64] [--seconds 1.0]

Measures, in the same run and on the same machine, training windows per second
(forward + backward + Adam on one batch, MSE loss on a dense head over the last state)
and inference windows per second, for both libraries. PyTorch is taken at its best
of 1 and 2 threads. Each library runs in a fresh subprocess per case, so PyTorch's
spinning OpenMP threads cannot slow our kernels down (or the reverse). Prints a table, the cold-compile and warm-start times of a new
process, then the worst and median ratio (ours / PyTorch) last.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

CONFIGS = {  # n_input, n_hidden, n_layers, steps, batch, n_output
    "a": (1, 32, 1, 48, 64, 24),
    "b": (7, 64, 1, 96, 128, 24),
    "c": (21, 128, 2, 168, 256, 96),
}


def rate(fn, windows, seconds, min_reps=3):
    fn()  # warm-up (compilation, allocator)
    best = float("inf")
    n, t_end = 0, time.perf_counter() + seconds
    while n < min_reps or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        n += 1
    return windows / best


def bench_ours(cell, cfg, dtype, seconds):
    from forecast.nn import RecurrentNet

    I, H, L, T, B, O = CONFIGS[cfg]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, I)).astype(dtype)
    y = rng.standard_normal((B, O)).astype(dtype)
    net = RecurrentNet(cell=cell, n_input=I, n_hidden=H, n_layers=L, n_output=O, dtype=dtype, seed=0)
    train = rate(lambda: net.fit_batch(x, y), B, seconds)
    infer = rate(lambda: net.forward(x), B, seconds / 2)
    return train, infer


def bench_torch(cell, cfg, dtype, seconds):
    import torch

    I, H, L, T, B, O = CONFIGS[cfg]
    tdt = {"float32": torch.float32, "float64": torch.float64}[dtype]
    best_train = best_infer = 0.0
    for threads in (1, 2):
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
        rnn = cls(I, H, L, batch_first=True).to(tdt)
        head = torch.nn.Linear(H, O).to(tdt)
        opt = torch.optim.Adam(list(rnn.parameters()) + list(head.parameters()))
        x = torch.randn(B, T, I, dtype=tdt)
        y = torch.randn(B, O, dtype=tdt)

        def step():
            opt.zero_grad()
            out, _ = rnn(x)
            loss = torch.nn.functional.mse_loss(head(out[:, -1]), y)
            loss.backward()
            opt.step()

        def infer():
            with torch.no_grad():
                out, _ = rnn(x)
                head(out[:, -1])

        best_train = max(best_train, rate(step, B, seconds))
        best_infer = max(best_infer, rate(infer, B, seconds / 2))
    return best_train, best_infer


STARTUP = """
import time; t0 = time.perf_counter()
import numpy as np
from forecast.nn import RecurrentNet
net = RecurrentNet(cell="{cell}", n_input=1, n_hidden=32, n_output=24, dtype="{dtype}", seed=0)
x = np.zeros((64, 48, 1), "{dtype}"); y = np.zeros((64, 24), "{dtype}")
net.fit_batch(x, y)
print(time.perf_counter() - t0)
"""


def startup_times(cell="lstm", dtype="float32"):
    """Seconds from interpreter start to the first training step: cold cache, then warm."""
    code = STARTUP.format(cell=cell, dtype=dtype)
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
    return times


def measure(lib, cell, cfg, dtype, seconds):
    """Run one case for one library in a fresh interpreter; returns (train/s, infer/s)."""
    cmd = [sys.executable, __file__, "--worker", lib, "--case", f"{cfg},{cell},{dtype}",
           "--seconds", str(seconds)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    res = json.loads(out.strip().splitlines()[-1])
    return res["train"], res["infer"]


def worker(lib, case, seconds):
    cfg, cell, dtype = case.split(",")
    fn = bench_ours if lib == "ours" else bench_torch
    train, infer = fn(cell, cfg, dtype, seconds)
    print(json.dumps({"train": train, "infer": infer}))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", choices=["ours", "torch"], help=argparse.SUPPRESS)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--configs", default="a,b,c")
    ap.add_argument("--cells", default="rnn,lstm,gru")
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--seconds", type=float, default=1.0, help="timing budget per measurement")
    ap.add_argument("--no-startup", action="store_true", help="skip the cold/warm start measurement")
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.case, args.seconds)
    try:
        import torch  # noqa: F401
    except ImportError:
        sys.exit("benchmarks/kernels.py needs PyTorch: pip install -e '.[bench]'")
    import numba

    print(f"numba {numba.__version__}, threads {numba.get_num_threads()}, cores {os.cpu_count()}")
    header = f"{'cfg':3} {'cell':5} {'dtype':8} {'ours train/s':>13} {'torch train/s':>14} {'ratio':>6}   {'ours infer/s':>13} {'torch infer/s':>14} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    ratios_ab, ratios_c = [], []
    for cfg in args.configs.split(","):
        for cell in args.cells.split(","):
            for dtype in args.dtypes.split(","):
                ot, oi = measure("ours", cell, cfg, dtype, args.seconds)
                tt, ti = measure("torch", cell, cfg, dtype, args.seconds)
                r, ri = ot / tt, oi / ti
                (ratios_c if cfg == "c" else ratios_ab).append(r)
                print(f"{cfg:3} {cell:5} {dtype:8} {ot:13.0f} {tt:14.0f} {r:6.2f}x  {oi:13.0f} {ti:14.0f} {ri:6.2f}x",
                      flush=True)
    if not args.no_startup:
        cold, warm = startup_times()
        print(f"new process to first training step (lstm float32, config a): "
              f"cold cache {cold:.1f} s, warm cache {warm:.2f} s")
    if ratios_ab:
        print(f"configs a/b training: worst {min(ratios_ab):.2f}x, median {statistics.median(ratios_ab):.2f}x "
              f"(target: worst >= 2x, median >= 4x)")
    if ratios_c:
        print(f"config c training: worst {min(ratios_c):.2f}x (target >= 1x)")


if __name__ == "__main__":
    main()
