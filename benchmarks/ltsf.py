"""Long-horizon forecasting benchmark (the Informer / Autoformer / DLinear / PatchTST protocol).

    python benchmarks/ltsf.py --data datasets/ETTh1.csv --layout ett-hour --features M \
        --target OT --lookback 336 --horizon 96 --model repeat --drop-last
    python benchmarks/ltsf.py --data datasets/ETTh1.csv --layout ett-hour --features S \
        --horizon 96 --model gru --seed 0 [--option n_hidden=64 --option lr=0.003]

The protocol (file reading, layout, train-only z-score, windows, scoring) lives in
`forecast.ltsf`; this script adds the model registry and prints one JSON line
``{"mse": ..., "mae": ..., "windows": ..., "seconds": ...}`` as its last line.

A model is registered in ``MODELS`` as ``fn(train, val, test, args) -> predictions``:
`train`, `val` and `test` are `forecast.windows.Windows` over the same scaled array
(``.values``, ``.batch(k)``, ``.batches(32)``; val/test lookbacks reach back across
their boundary); predictions have shape ``(len(test), horizon, channels)`` in scaled units.

Every forecaster of `forecast.models` is registered by its short name (``lstm``, ``gru``,
``rnn``, ``segrnn``, ``linear``, ``nlinear``, ``naive``, ``seasonal_naive``, ``drift``, ``mean``): it is
fitted with ``fit_windows`` on the training windows (the validation windows drive early
stopping, and ``segrnn``'s linear blend weight) and scored on the test windows. Channels are modelled independently with
shared weights (``M``: each channel's windows are stacked as univariate windows; ``segrnn``
also gets each window's channel number for its channel embedding). The
defaults in ``MODEL_DEFAULTS`` are the settings that reached the figures recorded in
``benchmarks/RESULTS.md``; ``--option NAME=VALUE`` (repeatable) overrides any model
parameter, ``--lookback`` the lookback.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from forecast.errors import ConfigError, ForecastError  # noqa: E402
from forecast.ltsf import LAYOUTS, LTSFConfig, evaluate, repeat_last  # noqa: E402
from forecast.windows import Windows  # noqa: E402


def repeat(train: Windows, val: Windows, test: Windows, args: argparse.Namespace) -> np.ndarray:
    """The last input value of each test window, repeated over the horizon."""
    return repeat_last(test)


#: Per-model defaults: the settings behind the figures in benchmarks/RESULTS.md.
MODEL_DEFAULTS: dict[str, dict] = {
    "linear": {"lookback": 336},
    "nlinear": {"lookback": 336},
    "naive": {"lookback": 1},
    "seasonal_naive": {"lookback": 336, "season": 24},
    "drift": {"lookback": 336},
    "mean": {"lookback": 336},
    **{cell: {"lookback": 336, "n_hidden": 32, "highway": 336, "highway_init": "ols",
              "normalize": "last", "max_epochs": 10, "batch_size": 64, "lr": 1e-4,
              "patience": 2, "lr_schedule": "exponential", "lr_decay": 0.7, "clip_norm": 1.0}
       for cell in ("gru", "lstm", "rnn")},
    "segrnn": {"lookback": 720, "segment": 48, "n_hidden": 256, "dropout": 0.1,
               "normalize": "last", "loss": "mse+mae", "max_epochs": 10, "batch_size": 256,
               "lr": 1e-3, "lr_schedule": "exponential", "lr_decay": 0.8, "lr_hold": 2,
               "average": 0.99, "patience": 1, "n_members": 3, "linear_blend": True,
               "lr_retry": 0.3},
}

RECURRENT = ("lstm", "gru", "rnn", "segrnn")


def _univariate(w: Windows, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """All windows of `w`, channels stacked as univariate windows: X (B*C, L, 1), Y (B*C, H)."""
    b = w.materialize(dtype=dtype)
    B, L, C = b.x.shape
    X = b.x.transpose(0, 2, 1).reshape(B * C, L, 1)
    Y = b.y.transpose(0, 2, 1).reshape(B * C, -1)
    return np.ascontiguousarray(X), np.ascontiguousarray(Y)


def _channels(n: int, C: int) -> np.ndarray:
    """Channel number of each row of `_univariate`'s stacked windows (channel fastest)."""
    return np.tile(np.arange(C, dtype=np.int64), n // C)


def model_settings(name: str, args: argparse.Namespace) -> dict:
    """The model's parameters: its defaults, the run's horizon / seed, then --option values."""
    params = dict(MODEL_DEFAULTS.get(name, {}))
    params.update(dict(args.option or ()))
    if args.lookback is not None:
        params["lookback"] = args.lookback
    params["horizon"] = args.horizon
    if name in RECURRENT:
        params.setdefault("random_state", args.seed)
    return params


def forecaster(name: str) -> Callable:
    """A registry entry fitting the `forecast.models` model called `name`."""
    def run(train: Windows, val: Windows, test: Windows, args: argparse.Namespace) -> np.ndarray:
        from forecast.models import make_model

        params = model_settings(name, args)
        lookback = params.pop("lookback")
        if lookback != train.spec.lookback:
            raise ConfigError(f"internal: windows built for lookback {train.spec.lookback}")
        params.setdefault("levels", ())
        if name in ("linear", "nlinear") or name in RECURRENT:
            params["lookback"] = lookback
        model = make_model(name, **params)
        X, Y = _univariate(train)
        Xv, Yv = _univariate(val)
        C = test.values.shape[1]
        if name == "segrnn":  # the channel of each stacked window, for the channel embedding
            model.fit_windows(X, Y, validation=(Xv, Yv), channels=_channels(len(X), C),
                              validation_channels=_channels(len(Xv), C))
        else:
            model.fit_windows(X, Y, validation=(Xv, Yv))
        del X, Y, Xv, Yv
        Xt, _ = _univariate(test)
        if name == "segrnn":
            pred = model.predict_windows(Xt, channels=_channels(len(Xt), C))
        else:
            pred = model.predict_windows(Xt)
        args.fitted = model
        return pred.reshape(-1, C, pred.shape[1]).transpose(0, 2, 1)
    run.__doc__ = f"`forecast.models` {name!r} (defaults: MODEL_DEFAULTS[{name!r}])."
    return run


MODELS: dict[str, Callable[[Windows, Windows, Windows, argparse.Namespace], np.ndarray]] = {
    "repeat": repeat,
    **{name: forecaster(name) for name in
       ("lstm", "gru", "rnn", "segrnn", "linear", "nlinear", "naive", "seasonal_naive", "drift",
        "mean")},
}


def _option(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--option takes NAME=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        parsed = value
    return key.strip(), parsed


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="benchmark CSV file (e.g. datasets/ETTh1.csv)")
    p.add_argument("--layout", choices=LAYOUTS, default="custom")
    p.add_argument("--features", choices=("S", "M"), default="M")
    p.add_argument("--target", default="OT")
    p.add_argument("--lookback", type=int, default=None,
                   help="input steps (default: the model's default, 336 for most)")
    p.add_argument("--horizon", type=int, default=96)
    p.add_argument("--model", choices=sorted(MODELS), default="repeat")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--option", type=_option, action="append", metavar="NAME=VALUE",
                   help="model parameter override, e.g. --option n_hidden=64 (repeatable)")
    p.add_argument("--drop-last", action="store_true",
                   help="score only whole batches of 32 test windows, as the papers did")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    lookback = args.lookback
    if lookback is None:
        lookback = MODEL_DEFAULTS.get(args.model, {}).get("lookback", 336)
    if args.model in MODEL_DEFAULTS and args.lookback is None:
        args.lookback = lookback
    config = LTSFConfig(data=args.data, layout=args.layout, features=args.features,
                        target=args.target, lookback=lookback, horizon=args.horizon,
                        drop_last=args.drop_last, seed=args.seed)
    np.random.seed(args.seed)
    model = MODELS[args.model]
    try:
        result = evaluate(config, lambda d: model(d.train, d.val, d.test, args))
    except ForecastError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = {"mse": result["mse"], "mae": result["mae"], "windows": result["windows"],
           "seconds": result["seconds"]}
    fitted = getattr(args, "fitted", None)
    if fitted is not None and hasattr(fitted, "best_epoch_"):
        out.update(epochs=fitted.n_epochs_, best_epoch=fitted.best_epoch_)
        hist = getattr(fitted, "history_loss_", None)
        if hist and fitted.best_epoch_ and hist[fitted.best_epoch_ - 1][1] is not None:
            out["val_loss"] = float(hist[fitted.best_epoch_ - 1][1])  # what tuning may read
    members = getattr(fitted, "members_", None)
    if members:  # a seed ensemble: its own validation loss, and each member's
        out.pop("best_epoch", None)
        if fitted.ensemble_val_loss_ is not None:
            out["val_loss"] = float(fitted.ensemble_val_loss_)
        out["members"] = [{k: m[k] for k in ("seed", "loss", "epochs", "best_epoch", "val_loss")
                           if k in m} for m in members]
    if getattr(fitted, "blend_weight_", None) is not None:  # the linear blend's choice
        out["segrnn_val_loss"] = out.get("val_loss")
        out.update(val_loss=float(fitted.blend_val_loss_), blend_weight=fitted.blend_weight_)
        if getattr(fitted, "loss_weights_", None) is not None:  # a loss ensemble's weights
            out["loss_weights"] = fitted.loss_weights_
    retries = getattr(fitted, "lr_retries_", None)
    if retries and any(r is not None for r in retries):  # what each rate retry did
        out["lr_retries"] = retries
    if fitted is not None and getattr(fitted, "train_seconds_", None) is not None:
        out.update(train_seconds=fitted.train_seconds_,
                   seconds_per_epoch=round(fitted.train_seconds_ / max(1, fitted.n_epochs_), 2))
    if args.model in MODEL_DEFAULTS:
        out["settings"] = {k: v for k, v in model_settings(args.model, args).items()}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
