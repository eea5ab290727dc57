"""Forward and backward time of one recurrent layer over a long lookback (T=336, batch 32,
8 inputs, 64 hidden, float32): the backward / forward ratio shows a kernel that slows
down on subnormal gradients (a many-to-one gradient decays along the steps).

    python benchmarks/backward_micro.py

Prints the best of three calls of each, per cell, and the ratio.
"""
import time

import numpy as np

from forecast.nn import RecurrentNet


def main():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 336, 8)).astype(np.float32)
    for cell in ("rnn", "lstm", "gru"):
        net = RecurrentNet(cell, 8, 64, 1, 1, "tanh", "float32", 0)
        fw = bw = np.inf
        for _ in range(3):
            t0 = time.perf_counter()
            hs, final, cache = net.forward_sequence(x)
            t1 = time.perf_counter()
            last = final[0] if cell == "lstm" else final
            d = (np.ones_like(last), np.zeros_like(last)) if cell == "lstm" else np.ones_like(last)
            net.backward_sequence(cache, np.zeros(hs.shape, np.float32), d)
            t2 = time.perf_counter()
            fw, bw = min(fw, t1 - t0), min(bw, t2 - t1)
        print(f"{cell:5s} forward {fw * 1e3:6.1f} ms  backward {bw * 1e3:6.1f} ms  "
              f"backward / forward {bw / fw:.1f}x")


if __name__ == "__main__":
    main()
