"""Loss kernels: each returns the mean loss and its gradient with respect to the prediction.

Regression losses take ``yhat`` and ``y`` of the same shape (flattened to 1-D by the
caller) and average over every element, as PyTorch's ``reduction="mean"`` does:

``LOSS_MSE``      mean (yhat - y)^2
``LOSS_MAE``      mean |yhat - y|
``LOSS_HUBER``    mean of 0.5 e^2 if |e| < delta else delta (|e| - 0.5 delta)   (torch.nn.HuberLoss)
``LOSS_PINBALL``  mean over quantiles q of max(q e, (q - 1) e), e = y - yhat, with
                  ``yhat`` laid out (n, Q) (quantile fastest) and ``y`` (n,)

``softmax_cross_entropy`` takes logits ``(B, K)`` and integer classes ``(B,)``.

Every sum is accumulated in float64 (``np.float64(v)``: inside Numba, ``float(v)`` of a
float32 value stays float32, and a float32 square of 3e20 overflows).
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import kernel

LOSS_MSE = 0
LOSS_MAE = 1
LOSS_HUBER = 2
LOSS_PINBALL = 3


@kernel
def regression_loss(yhat, y, mode, delta):
    """Mean loss and ``d loss / d yhat`` for MSE, MAE or Huber (1-D arrays, same length)."""
    n = yhat.shape[0]
    grad = np.empty_like(yhat)
    total = 0.0
    inv = 1.0 / n
    for k in range(n):
        e = np.float64(yhat[k]) - np.float64(y[k])
        if mode == LOSS_MSE:
            total += e * e
            grad[k] = 2.0 * e * inv
        elif mode == LOSS_MAE:
            total += abs(e)
            grad[k] = (1.0 if e > 0 else (-1.0 if e < 0 else 0.0)) * inv
        else:
            a = abs(e)
            if a < delta:
                total += 0.5 * e * e
                grad[k] = e * inv
            else:
                total += delta * (a - 0.5 * delta)
                grad[k] = (delta if e > 0 else -delta) * inv
    return total * inv, grad


@kernel
def pinball_loss(yhat, y, quantiles):
    """Mean pinball loss over ``(n, Q)`` predictions ``yhat`` of targets ``y (n,)``."""
    n, Q = yhat.shape
    grad = np.empty_like(yhat)
    total = 0.0
    inv = 1.0 / (n * Q)
    for k in range(n):
        for j in range(Q):
            q = quantiles[j]
            e = np.float64(y[k]) - np.float64(yhat[k, j])
            if e > 0:
                total += q * e
                grad[k, j] = -q * inv
            else:
                total += (q - 1.0) * e
                grad[k, j] = (1.0 - q) * inv
    return total * inv, grad


@kernel
def softmax(logits):
    """Row-wise softmax of ``(B, K)`` logits, stable for large values."""
    B, K = logits.shape
    out = np.empty_like(logits)
    for b in range(B):
        m = logits[b, 0]
        for j in range(1, K):
            m = max(m, logits[b, j])
        s = 0.0
        for j in range(K):
            e = math.exp(np.float64(logits[b, j]) - np.float64(m))
            out[b, j] = e
            s += e
        for j in range(K):
            out[b, j] = out[b, j] / s
    return out


@kernel
def softmax_cross_entropy(logits, classes):
    """Mean cross-entropy of ``(B, K)`` logits against integer ``classes (B,)``."""
    B, K = logits.shape
    grad = np.empty_like(logits)
    total = 0.0
    inv = 1.0 / B
    for b in range(B):
        m = np.float64(logits[b, 0])
        for j in range(1, K):
            m = max(m, np.float64(logits[b, j]))
        s = 0.0
        for j in range(K):
            s += math.exp(np.float64(logits[b, j]) - m)
        lse = m + math.log(s)
        c = classes[b]
        total += lse - np.float64(logits[b, c])
        for j in range(K):
            p = math.exp(np.float64(logits[b, j]) - lse)
            grad[b, j] = (p - (1.0 if j == c else 0.0)) * inv
    return total * inv, grad
