"""Optimiser kernels over one flat parameter vector.

``adam_step`` follows ``torch.optim.Adam`` (single-tensor path) operation by operation,
including its L2 ``weight_decay`` (added to the gradient); ``decoupled=True`` applies
AdamW-style decay to the parameters instead. ``clip_grad_norm`` follows
``torch.nn.utils.clip_grad_norm_``.
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import kernel


@kernel
def adam_step(params, grads, m, v, step, lr, beta1, beta2, eps, weight_decay, decoupled):
    """One Adam update in place on ``params``, ``m`` and ``v``; ``step`` counts from 1."""
    dt = params.dtype.type
    bc1 = 1.0 - beta1**step
    bc2_sqrt = math.sqrt(1.0 - beta2**step)
    step_size = dt(lr / bc1)
    w1 = dt(1.0 - beta1)
    b2 = dt(beta2)
    w2 = dt(1.0 - beta2)
    bc2s = dt(bc2_sqrt)
    eps_t = dt(eps)
    wd = dt(weight_decay)
    shrink = dt(1.0 - lr * weight_decay)
    for k in range(params.shape[0]):
        g = grads[k]
        if weight_decay != 0.0:
            if decoupled:
                params[k] = params[k] * shrink
            else:
                g = g + wd * params[k]
        m[k] = m[k] + w1 * (g - m[k])
        v[k] = v[k] * b2 + w2 * g * g
        params[k] = params[k] - step_size * (m[k] / (math.sqrt(v[k]) / bc2s + eps_t))


@kernel
def global_norm(grads):
    """Euclidean norm of the flat gradient vector (accumulated in float64)."""
    s = 0.0
    for k in range(grads.shape[0]):
        g = np.float64(grads[k])  # float() keeps float32 in Numba
        s += g * g
    return math.sqrt(s)


@kernel
def clip_grad_norm(grads, max_norm):
    """Scale ``grads`` in place so its global norm is at most ``max_norm``; return the
    norm before clipping (``inf``/``nan`` if the gradient is not finite)."""
    norm = global_norm(grads)
    coef = max_norm / (norm + 1e-6)
    if coef < 1.0:
        c = grads.dtype.type(coef)
        for k in range(grads.shape[0]):
            grads[k] = grads[k] * c
    return norm
