"""Training speed of `segrnn` against the same architecture written in PyTorch.

    python benchmarks/segrnn_torch.py [--epochs 1] [--horizon 96] [--option n_hidden=256 ...]

Both libraries train on the same data: the ETTh1 ``M`` training windows of the benchmark
protocol (lookback and every model setting from ``MODEL_DEFAULTS["segrnn"]`` in
``benchmarks/ltsf.py``, channels stacked as univariate windows with their channel
numbers), float32, the same batch size, Adam, MSE, dropout, shuffled batches. Each library
runs in its own process (PyTorch with ``torch.set_num_threads`` = the cores, ours with
Numba's default threads); the time is the training pass of each epoch (no validation),
after data preparation. Prints one JSON line per library and the ratio. PyTorch is needed
here only; the ``forecast`` package never imports it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
for p in (str(ROOT), str(ROOT / "benchmarks")):
    if p not in sys.path:
        sys.path.insert(0, p)


def _data(horizon: int, lookback: int):
    import ltsf as bench
    from forecast.ltsf import LTSFConfig, prepare

    cfg = LTSFConfig(data=str(ROOT / "datasets" / "ETTh1.csv"), layout="ett-hour", features="M",
                     target="OT", lookback=lookback, horizon=horizon)
    d = prepare(cfg)
    X, Y = bench._univariate(d.train)
    C = d.values.shape[1]
    return X, Y, bench._channels(len(X), C), C


def _settings(args) -> dict:
    import ltsf as bench

    s = dict(bench.MODEL_DEFAULTS["segrnn"])
    s.update(dict(args.option or ()))
    return s


def run_ours(args) -> dict:
    from forecast.models import SegRNNForecaster

    s = _settings(args)
    X, Y, ch, C = _data(args.horizon, s["lookback"])
    times = []
    model = SegRNNForecaster(**{**s, "horizon": args.horizon, "max_epochs": args.epochs,
                                "levels": (), "random_state": 0, "n_members": 1,
                                "callback": lambda info: times.append(info.seconds)})
    model.fit_windows(X, Y, channels=ch)
    per = np.diff([0.0] + times)
    return {"library": "forecast", "seconds_per_epoch": [round(float(t), 2) for t in per],
            "rows": len(X)}


def run_torch(args) -> dict:
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    s = _settings(args)
    X, Y, ch, C = _data(args.horizon, s["lookback"])
    w, d = s["segment"], s["n_hidden"]
    n, m = s["lookback"] // w, -(-args.horizon // w)
    rnn = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM, "rnn": torch.nn.RNN}[s.get("cell", "gru")]

    class SegRNN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Linear(w, d)
            self.rnn = rnn(d, d, batch_first=True)
            self.pos = torch.nn.Parameter(torch.randn(m, d // 2))
            self.chan = torch.nn.Parameter(torch.randn(C, d - d // 2))
            self.drop = torch.nn.Dropout(s["dropout"])
            self.out = torch.nn.Linear(d, w)

        def forward(self, x, c):
            N = x.shape[0]
            last = x[:, -1:]
            xs = (x - last)[:, x.shape[1] - n * w:].reshape(N, n, w)
            _, hn = self.rnn(torch.relu(self.emb(xs)))
            dec = torch.cat([self.pos.unsqueeze(0).expand(N, m, -1),
                             self.chan[c].unsqueeze(1).expand(N, m, -1)], -1)
            if isinstance(hn, tuple):
                h0 = tuple(h.repeat_interleave(m, dim=1) for h in hn)
                _, (hy, _) = self.rnn(dec.reshape(N * m, 1, d), h0)
            else:
                _, hy = self.rnn(dec.reshape(N * m, 1, d), hn.repeat_interleave(m, dim=1))
            y = self.out(self.drop(hy[0])).reshape(N, m * w)[:, :args.horizon]
            return y + last

    model = SegRNN()
    opt = torch.optim.Adam(model.parameters(), lr=s["lr"])
    Xt = torch.tensor(X[:, :, 0], dtype=torch.float32)
    Yt = torch.tensor(Y, dtype=torch.float32)
    Ct = torch.tensor(ch)
    bs = s["batch_size"]
    per = []
    for _ in range(args.epochs):
        t0 = time.perf_counter()
        order = torch.randperm(len(Xt))
        for i in range(0, len(Xt), bs):
            k = order[i:i + bs]
            opt.zero_grad()
            loss = torch.mean((model(Xt[k], Ct[k]) - Yt[k]) ** 2)
            loss.backward()
            opt.step()
        per.append(round(time.perf_counter() - t0, 2))
    return {"library": "torch " + torch.__version__, "threads": torch.get_num_threads(),
            "seconds_per_epoch": per, "rows": len(X)}


def _option(text: str):
    import ast

    key, value = text.split("=", 1)
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--horizon", type=int, default=96)
    p.add_argument("--option", type=_option, action="append", metavar="NAME=VALUE")
    p.add_argument("--worker", choices=("ours", "torch"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        out = run_ours(args) if args.worker == "ours" else run_torch(args)
        print(json.dumps(out))
        return 0
    results = {}
    for worker in ("ours", "torch"):
        cmd = [sys.executable, __file__, "--worker", worker, "--epochs", str(args.epochs),
               "--horizon", str(args.horizon)]
        for k, v in args.option or ():
            cmd += ["--option", f"{k}={v!r}"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return 1
        results[worker] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(json.dumps(results[worker]), flush=True)
    ours = min(results["ours"]["seconds_per_epoch"])
    theirs = min(results["torch"]["seconds_per_epoch"])
    print(json.dumps({"settings": _settings(args), "horizon": args.horizon,
                      "ours_s_per_epoch": ours, "torch_s_per_epoch": theirs,
                      "speedup": round(theirs / ours, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
