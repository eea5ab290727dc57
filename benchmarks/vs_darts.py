"""A whole fit, `forecast` against Darts: the job a user feels, not a kernel ratio.

    # Darts and torch live in their own benchmark venv, never in the project's:
    python3 -m venv .bench-darts
    .bench-darts/bin/pip install torch==2.13.0 darts==0.48.1 pytorch-lightning  # lightning 2.6.6 here
    python benchmarks/vs_darts.py [--darts-python .bench-darts/bin/python] [--epochs 5]

The job (issue 12): univariate ETTh1 (the oil temperature ``OT``, the papers' ``S``
setting and split: train rows [0, 8640), validation [8640, 11520), test [11520, 14400),
z-score fitted on the training rows), lookback 336, horizon 96, a GRU of 64 units in one
layer, batch 32, Adam at lr 1e-3, five epochs, float32, two threads. Each library runs
in its own process; the clock starts after the imports and stops when the test MSE is
known, so reading the file, scaling, windowing, training and predicting every stride-1
test window (2,785) are all included.

* ``forecast``: `RNNForecaster(cell="gru")` with the benchmark's usual recurrent settings
  (`benchmarks/ltsf.py`'s ``MODEL_DEFAULTS["gru"]``: last-value normalisation and the
  linear highway), except for the settings the job fixes; the validation windows are
  scored after each epoch (for early stopping; that time counts against us) and all five
  epochs run.
* Darts: `BlockRNNModel(model="GRU")`, the same sizes, `historical_forecasts` over the
  test span without retraining.

Prints one line per library (seconds, test MSE, epochs) and the ratio
(Darts seconds / ours) last.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "datasets" / "ETTh1.csv"
BORDERS = (8640, 11520, 14400)
L, H, HIDDEN, BATCH, LR = 336, 96, 64, 32, 1e-3


def run_ours(epochs: int) -> dict:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import time

    import numpy as np

    from benchmarks.ltsf import MODEL_DEFAULTS, _univariate
    from forecast.ltsf import LTSFConfig, evaluate
    from forecast.models import RNNForecaster

    t0 = time.perf_counter()
    params = dict(MODEL_DEFAULTS["gru"])
    params.pop("lookback")
    params.update(n_hidden=HIDDEN, n_layers=1, batch_size=BATCH, lr=LR, max_epochs=epochs,
                  patience=epochs, lr_schedule="constant", dtype="float32", levels=(),
                  random_state=0, lookback=L, horizon=H, highway=L)
    fitted = {}

    def fit_predict(d):
        model = RNNForecaster(cell="gru", **params)
        X, Y = _univariate(d.train)
        Xv, Yv = _univariate(d.val)
        model.fit_windows(X, Y, validation=(Xv, Yv))
        Xt, _ = _univariate(d.test)
        fitted["model"] = model
        return model.predict_windows(Xt)[:, :, None]

    cfg = LTSFConfig(data=str(DATA), layout="ett-hour", features="S", target="OT",
                     lookback=L, horizon=H, seed=0)
    np.random.seed(0)
    res = evaluate(cfg, fit_predict)
    return {"library": "forecast", "seconds": time.perf_counter() - t0, "mse": res["mse"],
            "mae": res["mae"], "windows": res["windows"], "epochs": fitted["model"].n_epochs_}


def run_darts(epochs: int) -> dict:
    import time
    import warnings

    import numpy as np
    import pandas as pd
    import torch
    from darts import TimeSeries
    from darts.models import BlockRNNModel

    warnings.filterwarnings("ignore")
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    frame = pd.read_csv(DATA)
    y = frame["OT"].to_numpy(np.float64)
    train = y[:BORDERS[0]]
    mu, sd = train.mean(), train.std()
    z = ((y - mu) / sd).astype(np.float32)
    series = TimeSeries.from_values(z[:BORDERS[2]])
    model = BlockRNNModel(model="GRU", input_chunk_length=L, output_chunk_length=H,
                          hidden_dim=HIDDEN, n_rnn_layers=1, dropout=0.0, batch_size=BATCH,
                          n_epochs=epochs, optimizer_kwargs={"lr": LR}, random_state=0,
                          pl_trainer_kwargs={"accelerator": "cpu", "enable_progress_bar": False,
                                             "enable_model_summary": False, "logger": False,
                                             "enable_checkpointing": False})
    model.fit(series[:BORDERS[0]], verbose=False)
    fc = model.historical_forecasts(series, start=BORDERS[1], forecast_horizon=H, stride=1,
                                    retrain=False, last_points_only=False, verbose=False)
    pred = np.stack([f.values()[:, 0] for f in fc])
    starts = np.arange(BORDERS[1], BORDERS[2] - H + 1)
    truth = np.stack([z[s:s + H] for s in starts])
    if pred.shape != truth.shape:
        raise SystemExit(f"darts gave {pred.shape} forecasts, expected {truth.shape}")
    err = pred.astype(np.float64) - truth
    return {"library": "darts", "seconds": time.perf_counter() - t0,
            "mse": float(np.mean(err ** 2)), "mae": float(np.mean(np.abs(err))),
            "windows": len(pred), "epochs": epochs}


def child(python: str, which: str, epochs: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="2", NUMBA_NUM_THREADS="2")
    out = subprocess.run([python, __file__, "--child", which, "--epochs", str(epochs)],
                         capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"the {which} run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--darts-python", default=str(ROOT / ".bench-darts" / "bin" / "python"))
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--child", choices=("ours", "darts"))
    args = ap.parse_args()
    if args.child:
        res = run_ours(args.epochs) if args.child == "ours" else run_darts(args.epochs)
        print(json.dumps(res))
        return
    from cold_start import cpu_model  # benchmarks/ is this script's folder

    if not Path(args.darts_python).exists():
        raise SystemExit(f"no Darts venv at {args.darts_python}: create it as this script's "
                         "docstring says, or pass --darts-python")
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; each library in its own process, 2 threads")
    ours = child(sys.executable, "ours", args.epochs)
    darts = child(args.darts_python, "darts", args.epochs)
    for r in (ours, darts):
        print(f"{r['library']:9s} {r['seconds']:8.1f} s  test MSE {r['mse']:.4f}  "
              f"MAE {r['mae']:.4f}  ({r['windows']} windows, {r['epochs']} epochs)")
    print(f"ratio (darts seconds / forecast seconds): {darts['seconds'] / ours['seconds']:.2f}x")


if __name__ == "__main__":
    main()
