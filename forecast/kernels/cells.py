"""Recurrent cell kernels: one layer, a whole batch of sequences, forward and BPTT backward.

Conventions (shared by every cell)
----------------------------------
* ``x`` is ``(B, T, I)`` batch-first and C-contiguous; weights use PyTorch's layout:
  ``w_ih (G*H, I)``, ``w_hh (G*H, H)``, ``b_ih (G*H,)``, ``b_hh (G*H,)`` with gate blocks
  in PyTorch's order (LSTM ``i, f, g, o``; GRU ``r, z, n``; RNN one block).
* ``lengths (B,)`` int64: sample ``b`` is valid for steps ``t < lengths[b]`` (right
  padding). A padded step leaves the state unchanged, writes a zero output and
  receives no gradient, so the final state ``h_n`` is the state after the last valid
  step, exactly as PyTorch's packed sequences behave.
* Forward returns every hidden state ``hs (B, T, H)`` (many-to-many), the final
  state(s) and a cache. Backward takes the cache plus upstream gradients for every
  output ``dhs`` *and* for the final state(s) ``dh_n`` (``dc_n``), so truncated BPTT
  composes: pass the ``dh0`` of a later chunk as the ``dh_n`` of the earlier one.
  Backward never modifies its inputs.
* The batch is split into ``n_chunks`` contiguous chunks processed in parallel
  (``prange``). The split depends only on the arguments, never on the thread count,
  and per-chunk weight-gradient partials are summed in a fixed order, so results are
  bit-identical for any number of threads.
* Matrix products go to BLAS through ``np.dot`` (scipy must be installed); callers
  keep BLAS single-threaded while a parallel kernel runs (see ``forecast.nn``).

Helpers live in this file on purpose: Numba's on-disk cache only notices edits to the
file that defines a kernel.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from ._jit import kernel

ACT_TANH = 0
ACT_RELU = 1
ACT_LEAKY_RELU = 2


# ----------------------------------------------------------------------------- helpers
@kernel(inline=True)
def _sigmoid(v, one):
    return one / (one + math.exp(-v))


@kernel
def _sigmoid_inplace(a, lo, hi, one):
    for j in range(lo, hi):
        a[j] = one / (one + math.exp(-a[j]))


@kernel
def _tanh_inplace(a, lo, hi):
    for j in range(lo, hi):
        a[j] = math.tanh(a[j])


@kernel
def _chunk(B, n_chunks, k):
    return (k * B) // n_chunks, ((k + 1) * B) // n_chunks


@kernel
def _time_major(a, b0, b1):
    """Copy ``a[b0:b1]`` (nb, T, F) into a new time-major (T, nb, F) array."""
    nb = b1 - b0
    T = a.shape[1]
    F = a.shape[2]
    out = np.empty((T, nb, F), a.dtype)
    for t in range(T):
        for bb in range(nb):
            src = a[b0 + bb, t]
            dst = out[t, bb]
            for j in range(F):
                dst[j] = src[j]
    return out


@kernel
def _previous_states(hs, h0, b0, b1):
    """Time-major (T, nb, H) array of the state entering each step (h0 for t = 0)."""
    nb = b1 - b0
    T = hs.shape[1]
    H = hs.shape[2]
    out = np.empty((T, nb, H), hs.dtype)
    for bb in range(nb):
        out[0, bb, :] = h0[b0 + bb]
    for t in range(1, T):
        for bb in range(nb):
            src = hs[b0 + bb, t - 1]
            dst = out[t, bb]
            for j in range(H):
                dst[j] = src[j]
    return out


@kernel
def _input_projection(x, b0, b1, w_ih):
    """(nb*T, G*H) product of the chunk's inputs with ``w_ih.T`` (batch-major rows)."""
    nb = b1 - b0
    T = x.shape[1]
    xc = np.ascontiguousarray(x[b0:b1]).reshape(nb * T, x.shape[2])
    return np.dot(xc, w_ih.T)


@kernel
def _weight_grads(dg_tm, x_tm, hprev_tm, dw_ih, dw_hh, db):
    """Accumulate one chunk's weight gradients (two GEMMs over all its steps)."""
    T, nb, GH = dg_tm.shape
    flat = dg_tm.reshape(T * nb, GH)
    if x_tm is not None:
        dw_ih[:, :] = np.dot(flat.T, x_tm.reshape(T * nb, x_tm.shape[2]))
    if hprev_tm is not None:
        dw_hh[:, :] = np.dot(flat.T, hprev_tm.reshape(T * nb, hprev_tm.shape[2]))
    db[:] = 0
    for r in range(T * nb):
        row = flat[r]
        for j in range(GH):
            db[j] += row[j]


@kernel
def _input_grads(dg_tm, w_ih, dx, b0):
    """Scatter ``dg @ w_ih`` (time-major rows) into ``dx[b0:b0+nb]`` (batch-major)."""
    T, nb, GH = dg_tm.shape
    prod = np.dot(dg_tm.reshape(T * nb, GH), w_ih)
    I = w_ih.shape[1]
    for t in range(T):
        for bb in range(nb):
            src = prod[t * nb + bb]
            dst = dx[b0 + bb, t]
            for j in range(I):
                dst[j] = src[j]


@kernel
def _sum_partials(parts):
    out = parts[0].copy()
    for k in range(1, parts.shape[0]):
        out += parts[k]
    return out


# ----------------------------------------------------------------------------- Elman RNN
@kernel
def _rnn_activate(pre, act, slope):
    zero = pre.dtype.type(0.0)
    if act == ACT_TANH:
        for j in range(pre.shape[0]):
            pre[j] = math.tanh(pre[j])
    elif act == ACT_RELU:
        for j in range(pre.shape[0]):
            pre[j] = max(pre[j], zero)
    else:
        for j in range(pre.shape[0]):
            v = pre[j]
            pre[j] = v if v > zero else v * slope


@kernel(parallel=True)
def rnn_forward(x, lengths, h0, w_ih, w_hh, b_ih, b_hh, act, slope, n_chunks):
    """Elman RNN layer: ``h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``.

    ``act`` is ``ACT_TANH``, ``ACT_RELU`` or ``ACT_LEAKY_RELU`` (negative slope
    ``slope`` > 0). Returns ``(hs, h_n)``; ``hs`` is also the cache.
    """
    B, T, _ = x.shape
    H = w_hh.shape[1]
    hs = np.zeros((B, T, H), x.dtype)
    h_n = np.empty((B, H), x.dtype)
    bias = b_ih + b_hh
    slope_t = x.dtype.type(slope)
    for k in prange(n_chunks):
        b0, b1 = _chunk(B, n_chunks, k)
        nb = b1 - b0
        if nb > 0:
            xp = _input_projection(x, b0, b1, w_ih)
            h = h0[b0:b1].copy()
            for t in range(T):
                hh = np.dot(h, w_hh.T)
                for bb in range(nb):
                    b = b0 + bb
                    if t < lengths[b]:
                        row = hs[b, t]
                        src = xp[bb * T + t]
                        rec = hh[bb]
                        for j in range(H):
                            row[j] = src[j] + rec[j] + bias[j]
                        _rnn_activate(row, act, slope_t)
                        h[bb, :] = row
            h_n[b0:b1] = h
    return hs, h_n


@kernel(parallel=True)
def rnn_backward(x, lengths, h0, w_ih, w_hh, hs, dhs, dh_n, act, slope, n_chunks):
    """BPTT through an Elman RNN layer.

    Returns ``(dx, dh0, dw_ih, dw_hh, db_ih, db_hh)``.
    """
    B, T, I = x.shape
    H = w_hh.shape[1]
    dt = x.dtype
    dx = np.zeros((B, T, I), dt)
    dh0 = np.empty((B, H), dt)
    p_ih = np.zeros((n_chunks, H, I), dt)
    p_hh = np.zeros((n_chunks, H, H), dt)
    p_b = np.zeros((n_chunks, H), dt)
    one = dt.type(1.0)
    zero = dt.type(0.0)
    slope_t = dt.type(slope)
    for k in prange(n_chunks):
        b0, b1 = _chunk(B, n_chunks, k)
        nb = b1 - b0
        if nb > 0:
            dg = np.zeros((T, nb, H), dt)
            dh = dh_n[b0:b1].copy()
            for t in range(T - 1, -1, -1):
                for bb in range(nb):
                    b = b0 + bb
                    if t < lengths[b]:
                        hrow = hs[b, t]
                        up = dhs[b, t]
                        d = dg[t, bb]
                        for j in range(H):
                            d[j] = dh[bb, j] + up[j]
                        if act == ACT_TANH:
                            for j in range(H):
                                d[j] *= one - hrow[j] * hrow[j]
                        elif act == ACT_RELU:
                            for j in range(H):
                                d[j] = d[j] if hrow[j] > zero else zero
                        else:
                            for j in range(H):
                                d[j] = d[j] if hrow[j] > zero else d[j] * slope_t
                dhp = np.dot(dg[t], w_hh)
                for bb in range(nb):
                    if t < lengths[b0 + bb]:
                        dh[bb, :] = dhp[bb]
            dh0[b0:b1] = dh
            x_tm = _time_major(x, b0, b1)
            hprev = _previous_states(hs, h0, b0, b1)
            _weight_grads(dg, x_tm, hprev, p_ih[k], p_hh[k], p_b[k])
            _input_grads(dg, w_ih, dx, b0)
    db = _sum_partials(p_b)
    return dx, dh0, _sum_partials(p_ih), _sum_partials(p_hh), db, db.copy()


# ----------------------------------------------------------------------------- LSTM
@kernel(parallel=True)
def lstm_forward(x, lengths, h0, c0, w_ih, w_hh, b_ih, b_hh, n_chunks):
    """LSTM layer (PyTorch equations, gates ``i, f, g, o``).

    Returns ``(hs, h_n, c_n, gates, cs)``: ``gates (B, T, 4H)`` holds the activated
    gates and ``cs (B, T, H)`` the cell state after each step (the cache).
    """
    B, T, _ = x.shape
    H = w_hh.shape[1]
    dt = x.dtype
    hs = np.zeros((B, T, H), dt)
    gates = np.zeros((B, T, 4 * H), dt)
    cs = np.zeros((B, T, H), dt)
    h_n = np.empty((B, H), dt)
    c_n = np.empty((B, H), dt)
    bias = b_ih + b_hh
    one = dt.type(1.0)
    for k in prange(n_chunks):
        b0, b1 = _chunk(B, n_chunks, k)
        nb = b1 - b0
        if nb > 0:
            xp = _input_projection(x, b0, b1, w_ih)
            h = h0[b0:b1].copy()
            c = c0[b0:b1].copy()
            for t in range(T):
                hh = np.dot(h, w_hh.T)
                for bb in range(nb):
                    b = b0 + bb
                    if t < lengths[b]:
                        g = gates[b, t]
                        src = xp[bb * T + t]
                        rec = hh[bb]
                        for j in range(4 * H):
                            g[j] = src[j] + rec[j] + bias[j]
                        _sigmoid_inplace(g, 0, 2 * H, one)
                        _tanh_inplace(g, 2 * H, 3 * H)
                        _sigmoid_inplace(g, 3 * H, 4 * H, one)
                        crow = c[bb]
                        cst = cs[b, t]
                        for j in range(H):
                            crow[j] = g[H + j] * crow[j] + g[j] * g[2 * H + j]
                            cst[j] = crow[j]
                        hrow = hs[b, t]
                        for j in range(H):
                            hrow[j] = g[3 * H + j] * math.tanh(crow[j])
                        h[bb, :] = hrow
            h_n[b0:b1] = h
            c_n[b0:b1] = c
    return hs, h_n, c_n, gates, cs


@kernel(parallel=True)
def lstm_backward(x, lengths, h0, c0, w_ih, w_hh, hs, gates, cs, dhs, dh_n, dc_n, n_chunks):
    """BPTT through an LSTM layer.

    Returns ``(dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh)``.
    """
    B, T, I = x.shape
    H = w_hh.shape[1]
    G = 4 * H
    dt = x.dtype
    dx = np.zeros((B, T, I), dt)
    dh0 = np.empty((B, H), dt)
    dc0 = np.empty((B, H), dt)
    p_ih = np.zeros((n_chunks, G, I), dt)
    p_hh = np.zeros((n_chunks, G, H), dt)
    p_b = np.zeros((n_chunks, G), dt)
    one = dt.type(1.0)
    for k in prange(n_chunks):
        b0, b1 = _chunk(B, n_chunks, k)
        nb = b1 - b0
        if nb > 0:
            dg = np.zeros((T, nb, G), dt)
            dh = dh_n[b0:b1].copy()
            dc = dc_n[b0:b1].copy()
            for t in range(T - 1, -1, -1):
                for bb in range(nb):
                    b = b0 + bb
                    if t < lengths[b]:
                        g = gates[b, t]
                        cst = cs[b, t]
                        cprev = cs[b, t - 1] if t > 0 else c0[b]
                        up = dhs[b, t]
                        d = dg[t, bb]
                        dcr = dc[bb]
                        for j in range(H):
                            dhj = dh[bb, j] + up[j]
                            tc = math.tanh(cst[j])
                            o = g[3 * H + j]
                            d[3 * H + j] = dhj * tc * o * (one - o)
                            dcr[j] += dhj * o * (one - tc * tc)
                        for j in range(H):
                            i = g[j]
                            f = g[H + j]
                            gg = g[2 * H + j]
                            dcj = dcr[j]
                            d[j] = dcj * gg * i * (one - i)
                            d[H + j] = dcj * cprev[j] * f * (one - f)
                            d[2 * H + j] = dcj * i * (one - gg * gg)
                            dcr[j] = dcj * f
                dhp = np.dot(dg[t], w_hh)
                for bb in range(nb):
                    if t < lengths[b0 + bb]:
                        dh[bb, :] = dhp[bb]
            dh0[b0:b1] = dh
            dc0[b0:b1] = dc
            x_tm = _time_major(x, b0, b1)
            hprev = _previous_states(hs, h0, b0, b1)
            _weight_grads(dg, x_tm, hprev, p_ih[k], p_hh[k], p_b[k])
            _input_grads(dg, w_ih, dx, b0)
    db = _sum_partials(p_b)
    return dx, dh0, dc0, _sum_partials(p_ih), _sum_partials(p_hh), db, db.copy()


# ----------------------------------------------------------------------------- GRU
@kernel(parallel=True)
def gru_forward(x, lengths, h0, w_ih, w_hh, b_ih, b_hh, n_chunks):
    """GRU layer (PyTorch equations, gates ``r, z, n``):

    ``r = s(W_ir x + b_ir + W_hr h + b_hr)``, ``z = s(...)``,
    ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``, ``h' = (1 - z) n + z h``.

    Returns ``(hs, h_n, cache)`` with ``cache (B, T, 4H)`` = ``r, z, n, W_hn h + b_hn``.
    """
    B, T, _ = x.shape
    H = w_hh.shape[1]
    dt = x.dtype
    hs = np.zeros((B, T, H), dt)
    cache = np.zeros((B, T, 4 * H), dt)
    h_n = np.empty((B, H), dt)
    one = dt.type(1.0)
    for k in prange(n_chunks):
        b0, b1 = _chunk(B, n_chunks, k)
        nb = b1 - b0
        if nb > 0:
            xp = _input_projection(x, b0, b1, w_ih)
            h = h0[b0:b1].copy()
            for t in range(T):
                hh = np.dot(h, w_hh.T)
                for bb in range(nb):
                    b = b0 + bb
                    if t < lengths[b]:
                        g = cache[b, t]
                        src = xp[bb * T + t]
                        rec = hh[bb]
                        for j in range(2 * H):
                            g[j] = src[j] + b_ih[j] + rec[j] + b_hh[j]
                        _sigmoid_inplace(g, 0, 2 * H, one)
                        for j in range(H):
                            g[3 * H + j] = rec[2 * H + j] + b_hh[2 * H + j]
                        for j in range(H):
                            g[2 * H + j] = src[2 * H + j] + b_ih[2 * H + j] + g[j] * g[3 * H + j]
                        _tanh_inplace(g, 2 * H, 3 * H)
                        hrow = hs[b, t]
                        hp = h[bb]
                        for j in range(H):
                            n = g[2 * H + j]
                            hrow[j] = n + g[H + j] * (hp[j] - n)
                        hp[:] = hrow
            h_n[b0:b1] = h
    return hs, h_n, cache


@kernel(parallel=True)
def gru_backward(x, lengths, h0, w_ih, w_hh, hs, cache, dhs, dh_n, n_chunks):
    """BPTT through a GRU layer. Returns ``(dx, dh0, dw_ih, dw_hh, db_ih, db_hh)``."""
    B, T, I = x.shape
    H = w_hh.shape[1]
    G = 3 * H
    dt = x.dtype
    dx = np.zeros((B, T, I), dt)
    dh0 = np.empty((B, H), dt)
    p_ih = np.zeros((n_chunks, G, I), dt)
    p_hh = np.zeros((n_chunks, G, H), dt)
    p_bi = np.zeros((n_chunks, G), dt)
    p_bh = np.zeros((n_chunks, G), dt)
    one = dt.type(1.0)
    for k in prange(n_chunks):
        b0, b1 = _chunk(B, n_chunks, k)
        nb = b1 - b0
        if nb > 0:
            dgi = np.zeros((T, nb, G), dt)
            dgh = np.zeros((T, nb, G), dt)
            dh = dh_n[b0:b1].copy()
            dhz = np.zeros((nb, H), dt)
            for t in range(T - 1, -1, -1):
                for bb in range(nb):
                    b = b0 + bb
                    if t < lengths[b]:
                        g = cache[b, t]
                        hp = hs[b, t - 1] if t > 0 else h0[b]
                        up = dhs[b, t]
                        di = dgi[t, bb]
                        dq = dgh[t, bb]
                        for j in range(H):
                            dhj = dh[bb, j] + up[j]
                            r = g[j]
                            z = g[H + j]
                            n = g[2 * H + j]
                            dn = dhj * (one - z) * (one - n * n)
                            dz = dhj * (hp[j] - n) * z * (one - z)
                            dr = dn * g[3 * H + j] * r * (one - r)
                            di[j] = dr
                            di[H + j] = dz
                            di[2 * H + j] = dn
                            dq[j] = dr
                            dq[H + j] = dz
                            dq[2 * H + j] = dn * r
                            dhz[bb, j] = dhj * z
                dhp = np.dot(dgh[t], w_hh)
                for bb in range(nb):
                    if t < lengths[b0 + bb]:
                        for j in range(H):
                            dh[bb, j] = dhp[bb, j] + dhz[bb, j]
            dh0[b0:b1] = dh
            x_tm = _time_major(x, b0, b1)
            hprev = _previous_states(hs, h0, b0, b1)
            _weight_grads(dgi, x_tm, None, p_ih[k], p_hh[k], p_bi[k])
            _weight_grads(dgh, None, hprev, p_ih[k], p_hh[k], p_bh[k])
            _input_grads(dgi, w_ih, dx, b0)
    return (dx, dh0, _sum_partials(p_ih), _sum_partials(p_hh),
            _sum_partials(p_bi), _sum_partials(p_bh))
