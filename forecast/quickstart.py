"""A small end-to-end training run on bundled data: the project's main job until the full
``forecast demo`` command exists.

It loads a bundled dataset, splits it chronologically (70 / 10 / 20), fits a standard
scaler on the training rows only, trains an RNN, LSTM and GRU (window-relative inputs:
each window minus its last value) and scores them on the test windows against the
naive last-value forecast, in the scaled units.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from forecast import datasets
from forecast.nn import Adam, RecurrentNet
from forecast.transforms import StandardScaler
from forecast.windows import prepare, split_by_fraction


@dataclass(frozen=True)
class QuickstartConfig:
    dataset: str = "etth1"
    lookback: int = 96
    horizon: int = 24
    n_hidden: int = 32
    epochs: int = 2
    batch_size: int = 64
    max_batches: int = 60
    seed: int = 0
    cells: tuple[str, ...] = ("rnn", "lstm", "gru")


@dataclass(frozen=True)
class QuickstartResult:
    model: str
    test_mse: float
    skill_vs_naive: float  # 1 - mse / naive mse
    seconds: float


def run(config: QuickstartConfig = QuickstartConfig(),
        progress: Callable[[str, int, float], None] | None = None) -> list[QuickstartResult]:
    """Train each cell and return test scores, naive forecast first."""
    ds = datasets.load(config.dataset)
    split = split_by_fraction(ds, val=0.1, test=0.2)
    wd = prepare(ds, config.lookback, config.horizon, split, StandardScaler())
    test = wd.test.materialize(np.float32)
    naive = np.repeat(test.x[:, -1:, 0], config.horizon, axis=1)
    naive_mse = float(np.mean((naive - test.y) ** 2))
    results = [QuickstartResult("naive", naive_mse, 0.0, 0.0)]
    rng = np.random.default_rng(config.seed)
    n_features = test.x.shape[2]
    for cell in config.cells:
        t0 = time.perf_counter()
        net = RecurrentNet(cell=cell, n_input=n_features, n_hidden=config.n_hidden,
                           n_output=config.horizon, dtype="float32", seed=config.seed,
                           optimizer=Adam(lr=3e-3, clip_norm=1.0))
        order = np.arange(len(wd.train))
        for epoch in range(config.epochs):
            rng.shuffle(order)
            for i in range(min(config.max_batches, len(order) // config.batch_size)):
                b = wd.train.batch(order[i * config.batch_size:(i + 1) * config.batch_size], np.float32)
                last = b.x[:, -1:, :1]
                loss = net.fit_batch(b.x - b.x[:, -1:, :], b.y - last[:, :, 0])
            if progress is not None:
                progress(cell, epoch + 1, loss)
        pred = net.forward(test.x - test.x[:, -1:, :]) + test.x[:, -1:, 0]
        mse = float(np.mean((pred - test.y) ** 2))
        results.append(QuickstartResult(cell, mse, 1.0 - mse / naive_mse, time.perf_counter() - t0))
    return results
