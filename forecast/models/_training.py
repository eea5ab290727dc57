"""Training settings of the recurrent forecasters: what the epoch callback receives, the
validated settings, the learning-rate schedules and the parameter checks."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from forecast.errors import ConfigError

__all__ = ["EpochInfo", "TrainConfig", "lr_at"]


@dataclass(frozen=True)
class EpochInfo:
    """What the training callback receives after each epoch."""

    epoch: int  # 1-based
    max_epochs: int
    train_loss: float
    val_loss: float | None
    seconds: float  # since training started
    lr: float
    best_epoch: int
    stopped: bool  # True on the last call when early stopping ends training


@dataclass(frozen=True)
class TrainConfig:
    """Validated training settings (built from the estimator's parameters)."""

    max_epochs: int
    batch_size: int
    lr: float
    lr_schedule: str
    lr_decay: float
    weight_decay: float
    clip_norm: float | None
    patience: int
    loss: str
    huber_delta: float
    direction_weight: float


def _int(name, value, lo=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise ConfigError(f"{name} must be an integer >= {lo}, got {value!r}")
    return int(value)


def _choice(name, value, options):
    if value not in options:
        raise ConfigError(f"{name} must be one of {', '.join(options)}, got {value!r}")
    return value


def lr_at(tc: TrainConfig, epoch: int) -> float:
    """The learning rate of (0-based) `epoch` under ``tc.lr_schedule``."""
    if tc.lr_schedule == "cosine":
        return tc.lr * 0.5 * (1.0 + math.cos(math.pi * epoch / tc.max_epochs))
    if tc.lr_schedule == "exponential":
        return tc.lr * tc.lr_decay ** epoch
    return tc.lr
