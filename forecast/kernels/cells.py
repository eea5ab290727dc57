"""Recurrent cell kernels: one layer, a whole batch of sequences, forward and BPTT backward.

Conventions (shared by every cell)
----------------------------------
* Arrays are **time-major**: ``x (T, B, I)``, outputs ``hs (T, B, H)`` and every cache,
  so the rows a chunk touches at one step are one contiguous block (batch-major caches
  put each sample's row T*G*H floats apart: a multiple of 4 KiB that maps every row to
  the same L1 sets and made bigger chunks slower). ``forecast.nn`` transposes once at
  its boundary. Weights use PyTorch's layout:
  ``w_ih (G*H, I)``, ``w_hh (G*H, H)``, ``b_ih (G*H,)``, ``b_hh (G*H,)`` with gate blocks
  in PyTorch's order (LSTM ``i, f, g, o``; GRU ``r, z, n``; RNN one block).
* ``lengths (B,)`` int64: sample ``b`` is valid for steps ``t < lengths[b]`` (right
  padding). A padded step leaves the state unchanged, writes a zero output and
  receives no gradient, so the final state ``h_n`` is the state after the last valid
  step, exactly as PyTorch's packed sequences behave.
* Forward returns every hidden state ``hs (T, B, H)`` (many-to-many), the final
  state(s) and a cache. Backward takes the cache plus upstream gradients for every
  output ``dhs`` *and* for the final state(s) ``dh_n`` (``dc_n``), so truncated BPTT
  composes: pass the ``dh0`` of a later chunk as the ``dh_n`` of the earlier one.
  Backward never modifies its inputs.
* Big arrays come from the caller: forward writes ``hs`` and its caches into arrays it
  is given (padded steps are zeroed here, so they may hold anything), backward writes
  ``dx`` and keeps its gate gradients in flat workspaces of ``T * B * G * H`` values, so
  a caller can reuse them across calls instead of faulting in fresh pages each time.
* The batch is split into ``n_chunks`` contiguous chunks processed in parallel
  (``prange``). The split depends only on the arguments, never on the thread count,
  and per-chunk weight-gradient partials are summed in a fixed order, so results are
  bit-identical for any number of threads.
* Matrix products go to BLAS (scipy must be installed) through ``np.dot`` or ``_mm``,
  which calls the same ``gemm`` with row strides and ``beta`` so products land straight
  in their destination; callers keep BLAS single-threaded while a parallel kernel runs
  (see ``forecast.nn``). The LSTM and GRU kernels keep only ``BLOCK_STEPS`` steps of
  gate gradients (the start of each chunk's workspace region) and take the weight
  gradients per block; an empty ``dx`` tells a backward kernel to skip the input gradient.

Helpers live in this file on purpose: Numba's on-disk cache only notices edits to the
file that defines a kernel.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from . import _jit
from ._jit import kernel

ACT_TANH = 0
ACT_RELU = 1
ACT_LEAKY_RELU = 2


# ----------------------------------------------------------------------------- helpers
# Vectorisable exp, sigmoid and tanh. The installed llvmlite has no vector math library,
# so math.exp/math.tanh in a loop stay scalar libm calls (4-14 ns each). These use a
# Cody-Waite range reduction, a Taylor polynomial and an exponent built by bit-casting,
# which LLVM turns into AVX2/AVX-512 code: float32 within 2 ulp of exp, float64 within a
# few ulp (checked against numpy in tests/test_kernels.py).
#
# Every kernel in this file, and these two functions, compile with floating-point
# contraction only (`_jit.CONTRACT`): a multiply feeding an add may become one fused
# multiply-add, so the Horner steps and the range reduction take about half the
# instructions. Measured at kernels.py config b (float32, LSTM 64 units, 2 cores):
# inference 4.5 -> 3.7 ms a call, the GRU's forward about 10-15 % faster at 32-64
# units. Contraction changes rounding (one rounding instead of two), never the order of
# operations: results stay deterministic on a CPU, and a forward and its backward, or
# `*_forward` and `*_infer`, still agree bit for bit.
@intrinsic
def _i32_as_f32(typingctx, v):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float32))

    return types.float32(types.int32), codegen


@intrinsic
def _i64_as_f64(typingctx, v):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return types.float64(types.int64), codegen


def vexp(v):
    """exp(v) (pure-Python fallback; compiled code uses the typed overload below)."""
    return math.exp(min(max(v, -708.0), 708.0))


@overload(vexp, jit_options={"fastmath": _jit.CONTRACT})
def _vexp_overload(v):
    if v == types.float32:
        def impl32(v):
            v = min(max(v, np.float32(-87.0)), np.float32(88.0))
            n = np.floor(v * np.float32(1.4426950408889634) + np.float32(0.5))
            r = v - n * np.float32(0.693359375) + n * np.float32(2.12194440e-4)
            p = np.float32(1.0 / 5040.0)
            p = p * r + np.float32(1.0 / 720.0)
            p = p * r + np.float32(1.0 / 120.0)
            p = p * r + np.float32(1.0 / 24.0)
            p = p * r + np.float32(1.0 / 6.0)
            p = p * r + np.float32(0.5)
            p = p * r + np.float32(1.0)
            p = p * r + np.float32(1.0)
            return p * _i32_as_f32((np.int32(n) + np.int32(127)) << np.int32(23))

        return impl32
    if v == types.float64:
        def impl64(v):
            v = min(max(v, -708.0), 708.0)
            n = np.floor(v * 1.4426950408889634 + 0.5)
            r = (v - n * 6.93145751953125e-1) - n * 1.42860682030941723212e-6
            p = 1.0 / 6227020800.0
            p = p * r + 1.0 / 479001600.0
            p = p * r + 1.0 / 39916800.0
            p = p * r + 1.0 / 3628800.0
            p = p * r + 1.0 / 362880.0
            p = p * r + 1.0 / 40320.0
            p = p * r + 1.0 / 5040.0
            p = p * r + 1.0 / 720.0
            p = p * r + 1.0 / 120.0
            p = p * r + 1.0 / 24.0
            p = p * r + 1.0 / 6.0
            p = p * r + 0.5
            p = p * r + 1.0
            p = p * r + 1.0
            return p * _i64_as_f64((np.int64(n) + np.int64(1023)) << np.int64(52))

        return impl64
    return None


def vtanh(v):
    """tanh(v) (pure-Python fallback; compiled code uses the typed overload below)."""
    return math.tanh(v)


@overload(vtanh, jit_options={"fastmath": _jit.CONTRACT})
def _vtanh_overload(v):
    # tanh(a) = m / (m + 2) with m = expm1(2a), a = |v| (odd by construction): expm1 shares
    # vexp's range reduction 2a = n ln2 + r, expm1(r) = r + r^2 q(r) keeps full relative
    # precision for small r, and 2^n expm1(r) + (2^n - 1) adds two terms of one sign, so
    # there is no cancellation anywhere and no second polynomial for small |v| (half the
    # cost of the former two-branch form). Within 2.5 ulp of tanh; a is capped where tanh
    # rounds to 1.
    if v == types.float32:
        def impl32(v):
            a = min(abs(v), np.float32(20.0))
            x = a + a
            n = np.floor(x * np.float32(1.4426950408889634) + np.float32(0.5))
            r = x - n * np.float32(0.693359375) + n * np.float32(2.12194440e-4)
            p = np.float32(1.0 / 5040.0)
            p = p * r + np.float32(1.0 / 720.0)
            p = p * r + np.float32(1.0 / 120.0)
            p = p * r + np.float32(1.0 / 24.0)
            p = p * r + np.float32(1.0 / 6.0)
            p = p * r + np.float32(0.5)
            p = r + (r * r) * p  # expm1(r)
            s = _i32_as_f32((np.int32(n) + np.int32(127)) << np.int32(23))  # 2^n
            m = s * p + (s - np.float32(1.0))
            t = m / (m + np.float32(2.0))
            return t if v >= 0 else -t

        return impl32
    if v == types.float64:
        def impl64(v):
            a = min(abs(v), 30.0)
            x = a + a
            n = np.floor(x * 1.4426950408889634 + 0.5)
            r = (x - n * 6.93145751953125e-1) - n * 1.42860682030941723212e-6
            p = 1.0 / 6227020800.0
            p = p * r + 1.0 / 479001600.0
            p = p * r + 1.0 / 39916800.0
            p = p * r + 1.0 / 3628800.0
            p = p * r + 1.0 / 362880.0
            p = p * r + 1.0 / 40320.0
            p = p * r + 1.0 / 5040.0
            p = p * r + 1.0 / 720.0
            p = p * r + 1.0 / 120.0
            p = p * r + 1.0 / 24.0
            p = p * r + 1.0 / 6.0
            p = p * r + 0.5
            p = r + (r * r) * p  # expm1(r)
            s = _i64_as_f64((np.int64(n) + np.int64(1023)) << np.int64(52))  # 2^n
            m = s * p + (s - 1.0)
            t = m / (m + 2.0)
            return t if v >= 0 else -t

        return impl64
    return None


@intrinsic
def _xgemm(typingctx, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """Column-major BLAS ``gemm`` on the data of arrays ``a``, ``b``, ``c`` (the data
    pointer of a view, so an offset block of a bigger array works), through Numba's own
    ``numba_xxgemm`` helper (the one ``np.dot`` calls: SciPy's BLAS, resolved by name,
    so kernels that use it stay cacheable). ``ta``/``tb`` are ``ord('n')`` or ``ord('t')``."""
    from numba.np.linalg import ensure_blas

    ensure_blas()
    dt = c.dtype
    if dt not in (types.float32, types.float64):
        return None
    sig = types.void(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)

    def codegen(context, builder, signature, args):
        ll_char = ir.IntType(8)
        intp = context.get_value_type(types.intp)
        vp = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.IntType(32), [ll_char, ll_char, ll_char, intp, intp, intp,
                                                vp, vp, intp, vp, intp, vp, vp, intp])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "numba_xxgemm")
        st = signature.args

        def as_int(i):
            return context.cast(builder, args[i], st[i], types.intp)

        def as_char(i):
            return builder.trunc(as_int(i), ll_char)

        def scalar(i):
            v = context.cast(builder, args[i], st[i], dt)
            return builder.bitcast(cgutils.alloca_once_value(builder, v), vp)

        def data(i):
            return builder.bitcast(context.make_array(st[i])(context, builder, args[i]).data, vp)

        kind = ir.Constant(ll_char, ord("s" if dt == types.float32 else "d"))
        builder.call(fn, (kind, as_char(0), as_char(1), as_int(2), as_int(3), as_int(4),
                          scalar(5), data(6), as_int(7), data(8), as_int(9), scalar(10),
                          data(11), as_int(12)))
        return context.get_dummy_value()

    return sig, codegen


def _mm_python(a, b, c, beta, ta, tb):
    """`_mm` for ``FORECAST_NUMBA_DISABLE=1``: the same product through NumPy."""
    prod = (a.T if ta else a) @ (b.T if tb else b)
    if beta == 0:
        c[...] = prod
    else:
        c[...] = prod + beta * c


def _mm(a, b, c, beta, ta, tb):
    """``c = op(a) @ op(b) + beta * c`` for row-major 2-D arrays whose rows may be
    strided (unit stride along a row); ``op`` transposes when ``ta``/``tb`` is true.
    Writes straight into ``c`` (a view is fine): no temporary, no copy."""
    m, n = c.shape
    k = a.shape[0] if ta else a.shape[1]
    if m == 0 or n == 0:
        return
    lda = a.strides[0] // a.itemsize
    ldb = b.strides[0] // b.itemsize
    ldc = c.strides[0] // c.itemsize
    # row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T
    _xgemm(116 if tb else 110, 116 if ta else 110, n, m, k, 1.0, b, max(ldb, 1), a,
           max(lda, 1), beta, c, max(ldc, 1))


# compiled, the BLAS call above; as plain Python (debugging), NumPy's matmul
_mm = _mm_python if _jit.DISABLED else kernel(_mm)


@kernel(contract=True)
def _chunk(B, n_chunks, k):
    return (k * B) // n_chunks, ((k + 1) * B) // n_chunks


@kernel(contract=True)
def _put_rows(dst, b0, src):
    """``dst[b0:b0 + len(src)] = src`` for 2-D arrays, as a plain loop: Numba's slice
    assignment compiles a formatted shape-mismatch message (its string machinery takes
    several seconds of every cold compile)."""
    for i in range(src.shape[0]):
        for j in range(src.shape[1]):
            dst[b0 + i, j] = src[i, j]


@kernel(contract=True)
def _chunk_rows(a, b0, b1):
    """Copy ``a[:, b0:b1]`` of a time-major ``(T, B, F)`` array into ``(T * nb, F)`` rows."""
    T, F = a.shape[0], a.shape[2]
    nb = b1 - b0
    out = np.empty((T * nb, F), a.dtype)
    for t in range(T):
        for bb in range(nb):
            for j in range(F):
                out[t * nb + bb, j] = a[t, b0 + bb, j]
    return out


@kernel(contract=True)
def _input_projection(x, b0, b1, w_ihT, G, H):
    """``x[:, b0:b1] @ w_ih.T`` for every step of the chunk, shaped ``(T, nb, G, H)``.

    Callers pass ``w_ihT = ascontiguousarray(w_ih.T)``: OpenBLAS multiplies a
    contiguous right operand up to twice as fast as a transposed one at these sizes."""
    return np.dot(_chunk_rows(x, b0, b1), w_ihT).reshape(x.shape[0], b1 - b0, G, H)


@kernel(contract=True)
def _previous_states(hs, h0, b0, b1):
    """``(T * nb, H)`` rows of the state entering each step (h0 at t = 0)."""
    T, H = hs.shape[0], hs.shape[2]
    nb = b1 - b0
    out = np.empty((T * nb, H), hs.dtype)
    for bb in range(nb):
        for j in range(H):
            out[bb, j] = h0[b0 + bb, j]
    for t in range(1, T):
        for bb in range(nb):
            for j in range(H):
                out[t * nb + bb, j] = hs[t - 1, b0 + bb, j]
    return out


@kernel(contract=True)
def _weight_grads(dg, x_rows, hprev_rows, dw_ih, dw_hh, db):
    """One chunk's weight gradients from its gate gradients ``dg (T, nb, G, H)``:
    two GEMMs over all its steps (``None`` skips a side)."""
    T, nb, G, H = dg.shape
    flat = dg.reshape(T * nb, G * H)
    if x_rows is not None:
        _put_rows(dw_ih, 0, np.dot(flat.T, x_rows))
    if hprev_rows is not None:
        _put_rows(dw_hh, 0, np.dot(flat.T, hprev_rows))
    for j in range(G * H):
        db[j] = 0
    for r in range(T * nb):
        for j in range(G * H):
            db[j] += flat[r, j]


@kernel(contract=True)
def _input_grads(dg, w_ih, dx, b0):
    """Write ``dg @ w_ih`` into ``dx[:, b0:b0 + nb]``."""
    T, nb, G, H = dg.shape
    prod = np.dot(dg.reshape(T * nb, G * H), w_ih)
    I = w_ih.shape[1]
    for t in range(T):
        for bb in range(nb):
            for i in range(I):
                dx[t, b0 + bb, i] = prod[t * nb + bb, i]


@kernel(contract=True)
def _chunk_workspace(ws, b0, b1, T, G, H):
    """The chunk's ``(T, nb, G, H)`` region of a flat workspace of ``T * B * G * H``
    values (each chunk owns a contiguous block, so chunks never share memory)."""
    n = T * G * H
    return ws[b0 * n:b1 * n].reshape(T, b1 - b0, G, H)


@kernel(contract=True)
def _sum_partials(parts):
    out = parts[0].copy()
    for k in range(1, parts.shape[0]):
        out += parts[k]
    return out


@kernel(contract=True)
def _carry_valid(dst, src, lengths, b0, t):
    """``dst[bb] = src[bb]`` for the chunk's samples still valid at step ``t``."""
    for bb in range(dst.shape[0]):
        if t < lengths[b0 + bb]:
            for j in range(dst.shape[1]):
                dst[bb, j] = src[bb, j]


_TINY32 = 2.0 ** -100  # flush threshold (float32 normals reach 2 ** -126; see _flush)
_TINY64 = 2.0 ** -900  # (float64 normals reach 2 ** -1022)


@kernel(inline=True, contract=True)
def _flush(v, tiny, zero):
    """``v``, or zero when ``|v|`` is below ``tiny`` (``_TINY32`` = 2**-100, ``_TINY64`` =
    2**-900: far below any gradient that moves a weight, well above the subnormals).

    A many-to-one loss's gradient decays along the 336 steps of a long lookback into
    the subnormal range, where every multiply and BLAS product on it takes a slow
    microcode path (measured: GRU backward ~20x its forward); every backward kernel flushes its
    gate gradients and carried state gradients. Flushing only below the smallest normal
    was not enough: a product of a barely normal gradient with a weight is subnormal
    again, inside the next BLAS call (GRU backward still took 29 ms against 8 ms with a
    zero gradient at T=336, batch 32, 64 units). With a margin of 26 binades the products
    stay normal (10 ms). Values that small change no weight gradient of normal size
    (Adam's eps alone is 1e-8); NaN and inf pass unchanged."""
    return zero if abs(v) < tiny else v


# ----------------------------------------------------------------------------- Elman RNN
@kernel(parallel=True, contract=True)
def rnn_forward(x, lengths, h0, w_ih, w_hh, b_ih, b_hh, act, slope, n_chunks, hs):
    """Elman RNN layer: ``h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``.

    ``act`` is ``ACT_TANH``, ``ACT_RELU`` or ``ACT_LEAKY_RELU`` (negative slope
    ``slope`` > 0). Returns ``(hs, h_n)``; ``hs`` is also the cache.
    """
    T, B, _ = x.shape
    H = w_hh.shape[1]
    dt = x.dtype
    h_n = np.empty((B, H), dt)
    bias = b_ih + b_hh
    zero = dt.type(0.0)
    slope_t = dt.type(slope)
    w_ihT = np.ascontiguousarray(w_ih.T)
    w_hhT = np.ascontiguousarray(w_hh.T)
    for k in prange(n_chunks):
        b0, b1 = _chunk(B, n_chunks, k)
        nb = b1 - b0
        if nb > 0:
            xp = _input_projection(x, b0, b1, w_ihT, 1, H)
            h = h0[b0:b1].copy()
            for t in range(T):
                hh = np.dot(h, w_hhT)
                for bb in range(nb):
                    b = b0 + bb
                    if t >= lengths[b]:  # padded: no state change, zero output / gradient
                        hs[t, b, :] = 0
                    else:
                        for j in range(H):
                            hs[t, b, j] = xp[t, bb, 0, j] + hh[bb, j] + bias[j]
                        if act == ACT_TANH:
                            for j in range(H):
                                hs[t, b, j] = vtanh(hs[t, b, j])
                        elif act == ACT_RELU:
                            for j in range(H):
                                hs[t, b, j] = max(hs[t, b, j], zero)
                        else:
                            for j in range(H):
                                v = hs[t, b, j]
                                hs[t, b, j] = v if v > zero else v * slope_t
                        for j in range(H):
                            h[bb, j] = hs[t, b, j]
            _put_rows(h_n, b0, h)
    return hs, h_n


@kernel(parallel=True, contract=True)
def rnn_backward(x, lengths, h0, w_ih, w_hh, hs, dhs, dh_n, act, slope, n_chunks, dx, ws):
    """BPTT through an Elman RNN layer.

    Returns ``(dx, dh0, dw_ih, dw_hh, db_ih, db_hh)``; an empty ``dx`` (``dx.size ==
    0``) skips the input gradient.
    """
    T, B, I = x.shape
    H = w_hh.shape[1]
    dt = x.dtype
    dh0 = np.empty((B, H), dt)
    p_ih = np.zeros((n_chunks, H, I), dt)
    p_hh = np.zeros((n_chunks, H, H), dt)
    p_b = np.zeros((n_chunks, H), dt)
    one = dt.type(1.0)
    zero = dt.type(0.0)
    tiny = dt.type(_TINY32 if x.itemsize == 4 else _TINY64)
    slope_t = dt.type(slope)
    for k in prange(n_chunks):
        b0, b1 = _chunk(B, n_chunks, k)
        nb = b1 - b0
        if nb > 0:
            dg = _chunk_workspace(ws, b0, b1, T, 1, H)
            dh = dh_n[b0:b1].copy()
            for t in range(T - 1, -1, -1):
                for bb in range(nb):
                    b = b0 + bb
                    if t >= lengths[b]:  # padded: no state change, zero output / gradient
                        dg[t, bb, :, :] = 0
                    else:
                        for j in range(H):
                            dg[t, bb, 0, j] = _flush(dh[bb, j] + dhs[t, b, j], tiny, zero)
                        if act == ACT_TANH:
                            for j in range(H):
                                hv = hs[t, b, j]
                                dg[t, bb, 0, j] *= one - hv * hv
                        elif act == ACT_RELU:
                            for j in range(H):
                                dg[t, bb, 0, j] = dg[t, bb, 0, j] if hs[t, b, j] > zero else zero
                        else:
                            for j in range(H):
                                d = dg[t, bb, 0, j]
                                dg[t, bb, 0, j] = d if hs[t, b, j] > zero else d * slope_t
                dhp = np.dot(dg[t].reshape(nb, H), w_hh)
                _carry_valid(dh, dhp, lengths, b0, t)
            _put_rows(dh0, b0, dh)
            _weight_grads(dg, _chunk_rows(x, b0, b1), _previous_states(hs, h0, b0, b1),
                          p_ih[k], p_hh[k], p_b[k])
            if dx.size > 0:
                _input_grads(dg, w_ih, dx, b0)
    db = _sum_partials(p_b)
    return dx, dh0, _sum_partials(p_ih), _sum_partials(p_hh), db, db.copy()


# ----------------------------------------------------------------------------- LSTM
@kernel(contract=True)
def _concat_weights(w_ih, w_hh):
    """``[w_ih | w_hh]`` shaped ``(G*H, I + H)``: one product per step covers both inputs."""
    GH, I = w_ih.shape
    H = w_hh.shape[1]
    out = np.empty((GH, I + H), w_ih.dtype)
    for r in range(GH):
        for i in range(I):
            out[r, i] = w_ih[r, i]
        for j in range(H):
            out[r, I + j] = w_hh[r, j]
    return out


@kernel(contract=True)
def _lstm_cell(g, bias, c, h):
    """One sample's LSTM step after the product: ``g (4, H)`` (the pre-activations of
    gates ``i, f, g, o``) gets the bias and is activated in place, the cell state
    ``c (H,)`` is updated in place and ``h (H,)`` receives the new hidden state. Shared
    by `lstm_forward` (``g`` a row of its cache) and `lstm_infer` (a scratch row), so
    both compute the same bits.

    Two loops over the units (the former seven each re-read their operands), with
    ``f * c + i * g`` and the polynomials as fused multiply-adds (see the helpers' note:
    together about 4.5 -> 3.7 ms a call at kernels.py config b)."""
    H = c.shape[0]
    one = g.dtype.type(1.0)
    for j in range(H):
        gi = one / (one + vexp(-(g[0, j] + bias[0, j])))
        gf = one / (one + vexp(-(g[1, j] + bias[1, j])))
        gg = vtanh(g[2, j] + bias[2, j])
        g[0, j] = gi
        g[1, j] = gf
        g[2, j] = gg
        c[j] = gf * c[j] + gi * gg
    for j in range(H):
        go = one / (one + vexp(-(g[3, j] + bias[3, j])))
        g[3, j] = go
        h[j] = go * vtanh(c[j])


@kernel(parallel=True, contract=True)
def lstm_forward(x, lengths, h0, c0, w_ih, w_hh, b_ih, b_hh, n_chunks, hs, gates, cs):
    """LSTM layer (PyTorch equations, gates ``i, f, g, o``).

    Returns ``(hs, h_n, c_n, gates, cs)``: ``gates (T, B, 4, H)`` holds the activated
    gates and ``cs (T, B, H)`` the cell state after each step (the cache).

    Each step is one product ``[x_t, h_{t-1}] @ [w_ih | w_hh].T`` written straight into
    the chunk's rows of ``gates`` (contiguous in the time-major layout), then one
    element-wise pass activates them in place.
    """
    T, B, I = x.shape
    H = w_hh.shape[1]
    GH = 4 * H
    dt = x.dtype
    h_n = np.empty((B, H), dt)
    c_n = np.empty((B, H), dt)
    bias = (b_ih + b_hh).reshape(4, H)
    w_catT = np.ascontiguousarray(_concat_weights(w_ih, w_hh).T)
    g2 = gates.reshape(T * B, GH)
    for k in prange(n_chunks):
        b0, b1 = _chunk(B, n_chunks, k)
        nb = b1 - b0
        if nb > 0:
            xh = np.empty((nb, I + H), dt)  # [x_t, h_{t-1}] rows of the chunk
            c = c0[b0:b1].copy()
            for bb in range(nb):
                for j in range(H):
                    xh[bb, I + j] = h0[b0 + bb, j]
            for t in range(T):
                for bb in range(nb):
                    for i in range(I):
                        xh[bb, i] = x[t, b0 + bb, i]
                _mm(xh, w_catT, g2[t * B + b0:t * B + b1], 0.0, False, False)
                for bb in range(nb):
                    b = b0 + bb
                    if t >= lengths[b]:  # padded: no state change, zero output / gradient
                        hs[t, b, :] = 0
                    else:
                        _lstm_cell(gates[t, b], bias, c[bb], hs[t, b])
                        for j in range(H):
                            cs[t, b, j] = c[bb, j]
                        for j in range(H):
                            xh[bb, I + j] = hs[t, b, j]
            for bb in range(nb):
                for j in range(H):
                    h_n[b0 + bb, j] = xh[bb, I + j]
            _put_rows(c_n, b0, c)
    return hs, h_n, c_n, gates, cs


@kernel(parallel=True, contract=True)
def lstm_infer(x, lengths, h0, c0, w_ih, w_hh, b_ih, b_hh, n_chunks, hs):
    """`lstm_forward` without the training cache: returns ``(hs, h_n, c_n)``.

    The gates of a step live in a small per-chunk buffer (``nb x 4H``, in cache) instead
    of the ``(T, B, 4, H)`` array backward needs, and the cell states are not kept: at
    config c that cache is 88 MB of float32 writes per layer, which made inference
    memory-bound. The arithmetic is `lstm_forward`'s, in the same order on the same
    operands (one product per step over the chunk's rows), so the outputs are the same
    bits."""
    T, B, I = x.shape
    H = w_hh.shape[1]
    GH = 4 * H
    dt = x.dtype
    h_n = np.empty((B, H), dt)
    c_n = np.empty((B, H), dt)
    bias = (b_ih + b_hh).reshape(4, H)
    w_catT = np.ascontiguousarray(_concat_weights(w_ih, w_hh).T)
    for k in prange(n_chunks):
        b0, b1 = _chunk(B, n_chunks, k)
        nb = b1 - b0
        if nb > 0:
            xh = np.empty((nb, I + H), dt)
            g = np.empty((nb, 4, H), dt)
            g2 = g.reshape(nb, GH)
            c = c0[b0:b1].copy()
            for bb in range(nb):
                for j in range(H):
                    xh[bb, I + j] = h0[b0 + bb, j]
            for t in range(T):
                for bb in range(nb):
                    for i in range(I):
                        xh[bb, i] = x[t, b0 + bb, i]
                _mm(xh, w_catT, g2, 0.0, False, False)
                for bb in range(nb):
                    b = b0 + bb
                    if t >= lengths[b]:
                        hs[t, b, :] = 0
                    else:
                        _lstm_cell(g[bb], bias, c[bb], hs[t, b])
                        for j in range(H):
                            xh[bb, I + j] = hs[t, b, j]
            for bb in range(nb):
                for j in range(H):
                    h_n[b0 + bb, j] = xh[bb, I + j]
            _put_rows(c_n, b0, c)
    return hs, h_n, c_n


BLOCK_STEPS = 16  # steps per weight-gradient product in backward (see lstm_backward)


@kernel(parallel=True, contract=True)
def lstm_backward(x, lengths, h0, c0, w_ih, w_hh, hs, gates, cs, dhs, dh_n, dc_n, n_chunks,
                  dx, ws):
    """BPTT through an LSTM layer.

    Returns ``(dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh)``.

    Per step, one product ``dg_t @ [w_ih | w_hh]`` gives both ``dx_t`` and the gradient
    of ``h_{t-1}``. The weight gradient is one product ``dg.T @ [x, h_prev]`` per block
    of ``BLOCK_STEPS`` steps, taken while the block's gate gradients are still in cache
    (the chunk reuses the first block of its workspace region).

    An empty ``dx`` (``dx.size == 0``) skips the input gradient: the per-step product
    then uses ``w_hh`` alone (training never needs the first layer's ``dx``).
    """
    T, B, I = x.shape
    H = w_hh.shape[1]
    GH = 4 * H
    K = I + H
    I0 = I if dx.size > 0 else 0  # leading columns of the per-step product: dx_t
    dt = x.dtype
    dh0 = np.empty((B, H), dt)
    dc0 = np.empty((B, H), dt)
    p_cat = np.zeros((n_chunks, GH, K), dt)
    p_b = np.zeros((n_chunks, GH), dt)
    one = dt.type(1.0)
    zero = dt.type(0.0)
    tiny = dt.type(_TINY32 if x.itemsize == 4 else _TINY64)
    w_back = _concat_weights(w_ih, w_hh) if I0 > 0 else np.ascontiguousarray(w_hh)
    S = min(BLOCK_STEPS, T)
    for k in prange(n_chunks):
        b0, b1 = _chunk(B, n_chunks, k)
        nb = b1 - b0
        if nb > 0:
            dg = ws[b0 * T * GH:(b0 * T + S * nb) * GH].reshape(S * nb, GH)  # ring of S steps
            xhb = np.empty((S * nb, K), dt)  # the block's [x_t, h_{t-1}] rows
            dg4 = dg.reshape(S * nb, 4, H)
            prod = np.empty((nb, I0 + H), dt)
            tc = np.empty(H, dt)
            db = p_b[k]
            dh = dh_n[b0:b1].copy()
            dc = dc_n[b0:b1].copy()
            for t in range(T - 1, -1, -1):
                s = t % S
                for bb in range(nb):
                    b = b0 + bb
                    r = s * nb + bb
                    for i in range(I):
                        xhb[r, i] = x[t, b, i]
                    if t > 0:
                        for j in range(H):
                            xhb[r, I + j] = hs[t - 1, b, j]
                    else:
                        for j in range(H):
                            xhb[r, I + j] = h0[b, j]
                    if t >= lengths[b]:  # padded: no state change, zero output / gradient
                        dg[r, :] = 0
                    else:
                        # plain indexing, no row views: LLVM vectorises these loops
                        cprev = cs[t - 1, b] if t > 0 else c0[b]
                        for j in range(H):
                            dh[bb, j] += dhs[t, b, j]
                        for j in range(H):
                            tc[j] = vtanh(cs[t, b, j])
                        for j in range(H):
                            o = gates[t, b, 3, j]
                            dg4[r, 3, j] = _flush(dh[bb, j] * tc[j] * o * (one - o), tiny, zero)
                        for j in range(H):
                            o = gates[t, b, 3, j]
                            dc[bb, j] += dh[bb, j] * o * (one - tc[j] * tc[j])
                        for j in range(H):
                            i = gates[t, b, 0, j]
                            dg4[r, 0, j] = _flush(dc[bb, j] * gates[t, b, 2, j] * i * (one - i), tiny, zero)
                        for j in range(H):
                            f = gates[t, b, 1, j]
                            dg4[r, 1, j] = _flush(dc[bb, j] * cprev[j] * f * (one - f), tiny, zero)
                        for j in range(H):
                            g = gates[t, b, 2, j]
                            dg4[r, 2, j] = _flush(dc[bb, j] * gates[t, b, 0, j] * (one - g * g), tiny, zero)
                        for j in range(H):
                            dc[bb, j] = _flush(dc[bb, j] * gates[t, b, 1, j], tiny, zero)
                        for j in range(GH):
                            db[j] += dg[r, j]
                _mm(dg[s * nb:(s + 1) * nb], w_back, prod, 0.0, False, False)
                for bb in range(nb):
                    b = b0 + bb
                    for i in range(I0):
                        dx[t, b, i] = prod[bb, i]
                    if t < lengths[b]:
                        for j in range(H):
                            dh[bb, j] = _flush(prod[bb, I0 + j], tiny, zero)
                if s == 0:  # block [t, t + n) complete
                    n = min(S, T - t) * nb
                    _mm(dg[:n], xhb[:n], p_cat[k], 1.0, True, False)
            _put_rows(dh0, b0, dh)
            _put_rows(dc0, b0, dc)
    dw = _sum_partials(p_cat)
    db = _sum_partials(p_b)
    return (dx, dh0, dc0, np.ascontiguousarray(dw[:, :I]), np.ascontiguousarray(dw[:, I:]),
            db, db.copy())


# ----------------------------------------------------------------------------- GRU


@kernel(contract=True)
def _block_rows(x, b0, b1, t0, n, out):
    """Copy ``x[t0:t0 + n, b0:b1]`` of a time-major ``(T, B, F)`` array into the first
    ``n * nb`` rows of ``out``."""
    nb = b1 - b0
    F = x.shape[2]
    for s in range(n):
        for bb in range(nb):
            for j in range(F):
                out[s * nb + bb, j] = x[t0 + s, b0 + bb, j]


@kernel(parallel=True, contract=True)
def gru_forward(x, lengths, h0, w_ih, w_hh, b_ih, b_hh, n_chunks, hs, cache):
    """GRU layer (PyTorch equations, gates ``r, z, n``):

    ``r = s(W_ir x + b_ir + W_hr h + b_hr)``, ``z = s(...)``,
    ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``, ``h' = (1 - z) n + z h``.

    Returns ``(hs, h_n, cache)`` with ``cache (T, B, 4, H)`` = ``r, z, n, W_hn h + b_hn``.

    The input projection is one product per block of ``BLOCK_STEPS`` steps into a small
    chunk buffer that stays in cache; the recurrent product of each step is written
    straight into the first three slots of the chunk's cache rows.
    """
    T, B, I = x.shape
    H = w_hh.shape[1]
    dt = x.dtype
    h_n = np.empty((B, H), dt)
    bi = b_ih.reshape(3, H)
    bh = b_hh.reshape(3, H)
    one = dt.type(1.0)
    w_ihT = np.ascontiguousarray(w_ih.T)
    w_hhT = np.ascontiguousarray(w_hh.T)
    c2 = cache.reshape(T * B, 4 * H)
    S = min(BLOCK_STEPS, T)
    for k in prange(n_chunks):
        b0, b1 = _chunk(B, n_chunks, k)
        nb = b1 - b0
        if nb > 0:
            xb = np.empty((S * nb, I), dt)
            xp = np.empty((S * nb, 3, H), dt)
            xp2 = xp.reshape(S * nb, 3 * H)
            h = h0[b0:b1].copy()
            for t in range(T):
                s = t % S
                if s == 0:
                    n = min(S, T - t)
                    _block_rows(x, b0, b1, t, n, xb)
                    _mm(xb[:n * nb], w_ihT, xp2[:n * nb], 0.0, False, False)
                _mm(h, w_hhT, c2[t * B + b0:t * B + b1, :3 * H], 0.0, False, False)
                for bb in range(nb):
                    b = b0 + bb
                    r = s * nb + bb
                    if t >= lengths[b]:  # padded: no state change, zero output / gradient
                        hs[t, b, :] = 0
                    else:
                        for j in range(H):
                            cache[t, b, 3, j] = cache[t, b, 2, j] + bh[2, j]
                        for q in range(2):
                            for j in range(H):
                                cache[t, b, q, j] = one / (one + vexp(-(
                                    xp[r, q, j] + bi[q, j] + cache[t, b, q, j] + bh[q, j])))
                        for j in range(H):
                            cache[t, b, 2, j] = vtanh(xp[r, 2, j] + bi[2, j]
                                                      + cache[t, b, 0, j] * cache[t, b, 3, j])
                        for j in range(H):
                            n = cache[t, b, 2, j]
                            hs[t, b, j] = n + cache[t, b, 1, j] * (h[bb, j] - n)
                        for j in range(H):
                            h[bb, j] = hs[t, b, j]
            _put_rows(h_n, b0, h)
    return hs, h_n, cache


@kernel(parallel=True, contract=True)
def gru_infer(x, lengths, h0, w_ih, w_hh, b_ih, b_hh, n_chunks, hs):
    """`gru_forward` without the training cache: returns ``(hs, h_n)``.

    A step's gates live in a small per-chunk buffer (``nb x 3H``, in cache) instead of
    the ``(T, B, 4, H)`` array backward needs: scoring 1,024 validation windows over a
    336-step lookback at 64 units wrote 352 MB of cache per call. The arithmetic is
    `gru_forward`'s, in the same order on the same operands (the same products over the
    chunk's rows), so the outputs are the same bits (tested)."""
    T, B, I = x.shape
    H = w_hh.shape[1]
    dt = x.dtype
    h_n = np.empty((B, H), dt)
    bi = b_ih.reshape(3, H)
    bh = b_hh.reshape(3, H)
    one = dt.type(1.0)
    w_ihT = np.ascontiguousarray(w_ih.T)
    w_hhT = np.ascontiguousarray(w_hh.T)
    S = min(BLOCK_STEPS, T)
    for k in prange(n_chunks):
        b0, b1 = _chunk(B, n_chunks, k)
        nb = b1 - b0
        if nb > 0:
            xb = np.empty((S * nb, I), dt)
            xp = np.empty((S * nb, 3, H), dt)
            xp2 = xp.reshape(S * nb, 3 * H)
            g = np.empty((nb, 3, H), dt)
            g2 = g.reshape(nb, 3 * H)
            hn = np.empty(H, dt)
            h = h0[b0:b1].copy()
            for t in range(T):
                s = t % S
                if s == 0:
                    n = min(S, T - t)
                    _block_rows(x, b0, b1, t, n, xb)
                    _mm(xb[:n * nb], w_ihT, xp2[:n * nb], 0.0, False, False)
                _mm(h, w_hhT, g2, 0.0, False, False)
                for bb in range(nb):
                    b = b0 + bb
                    r = s * nb + bb
                    if t >= lengths[b]:
                        hs[t, b, :] = 0
                    else:
                        for j in range(H):
                            hn[j] = g[bb, 2, j] + bh[2, j]
                        for q in range(2):
                            for j in range(H):
                                g[bb, q, j] = one / (one + vexp(-(
                                    xp[r, q, j] + bi[q, j] + g[bb, q, j] + bh[q, j])))
                        for j in range(H):
                            g[bb, 2, j] = vtanh(xp[r, 2, j] + bi[2, j] + g[bb, 0, j] * hn[j])
                        for j in range(H):
                            n = g[bb, 2, j]
                            hs[t, b, j] = n + g[bb, 1, j] * (h[bb, j] - n)
                        for j in range(H):
                            h[bb, j] = hs[t, b, j]
            _put_rows(h_n, b0, h)
    return hs, h_n


@kernel(parallel=True, contract=True)
def gru_backward(x, lengths, h0, w_ih, w_hh, hs, cache, dhs, dh_n, n_chunks, dx, ws, ws2):
    """BPTT through a GRU layer. Returns ``(dx, dh0, dw_ih, dw_hh, db_ih, db_hh)``.

    The gate gradients of the input side (``dgi``) and of the recurrent side (``dgh``,
    which differs in the ``n`` block) live in rings of ``BLOCK_STEPS`` steps (the first
    block of each chunk's workspace region); per block, ``dgi.T @ x`` and
    ``dgh.T @ h_prev`` accumulate the weight gradients and ``dgi @ w_ih`` gives ``dx``
    (skipped when ``dx`` is empty, ``dx.size == 0``).
    """
    T, B, I = x.shape
    H = w_hh.shape[1]
    GH = 3 * H
    dt = x.dtype
    dh0 = np.empty((B, H), dt)
    p_ih = np.zeros((n_chunks, GH, I), dt)
    p_hh = np.zeros((n_chunks, GH, H), dt)
    p_bi = np.zeros((n_chunks, GH), dt)
    p_bh = np.zeros((n_chunks, GH), dt)
    one = dt.type(1.0)
    zero = dt.type(0.0)
    tiny = dt.type(_TINY32 if x.itemsize == 4 else _TINY64)
    S = min(BLOCK_STEPS, T)
    for k in prange(n_chunks):
        b0, b1 = _chunk(B, n_chunks, k)
        nb = b1 - b0
        if nb > 0:
            dgi2 = ws[b0 * T * GH:(b0 * T + S * nb) * GH].reshape(S * nb, GH)
            dgh2 = ws2[b0 * T * GH:(b0 * T + S * nb) * GH].reshape(S * nb, GH)
            dgi = dgi2.reshape(S * nb, 3, H)
            dgh = dgh2.reshape(S * nb, 3, H)
            xhb = np.empty((S * nb, I + H), dt)  # the block's [x_t, h_{t-1}] rows
            dxb = np.empty((S * nb, I), dt)
            dbi = p_bi[k]
            dbh = p_bh[k]
            dh = dh_n[b0:b1].copy()
            dhz = np.zeros((nb, H), dt)
            dhp = np.empty((nb, H), dt)
            for t in range(T - 1, -1, -1):
                s = t % S
                for bb in range(nb):
                    b = b0 + bb
                    r = s * nb + bb
                    for i in range(I):
                        xhb[r, i] = x[t, b, i]
                    if t > 0:
                        for j in range(H):
                            xhb[r, I + j] = hs[t - 1, b, j]
                    else:
                        for j in range(H):
                            xhb[r, I + j] = h0[b, j]
                    if t >= lengths[b]:  # padded: no state change, zero output / gradient
                        dgi2[r, :] = 0
                        dgh2[r, :] = 0
                    else:
                        for j in range(H):
                            dh[bb, j] += dhs[t, b, j]
                        for j in range(H):
                            z = cache[t, b, 1, j]
                            n = cache[t, b, 2, j]
                            dgi[r, 2, j] = _flush(dh[bb, j] * (one - z) * (one - n * n), tiny, zero)
                        for j in range(H):
                            z = cache[t, b, 1, j]
                            dgi[r, 1, j] = _flush(dh[bb, j] * (xhb[r, I + j] - cache[t, b, 2, j]) * z * (one - z),
                                                  tiny, zero)
                        for j in range(H):
                            dhz[bb, j] = _flush(dh[bb, j] * cache[t, b, 1, j], tiny, zero)
                        for j in range(H):
                            rg = cache[t, b, 0, j]
                            dgi[r, 0, j] = _flush(dgi[r, 2, j] * cache[t, b, 3, j] * rg * (one - rg), tiny, zero)
                        for q in range(2):
                            for j in range(H):
                                dgh[r, q, j] = dgi[r, q, j]
                        for j in range(H):
                            dgh[r, 2, j] = _flush(dgi[r, 2, j] * cache[t, b, 0, j], tiny, zero)
                        for j in range(GH):
                            dbi[j] += dgi2[r, j]
                        for j in range(GH):
                            dbh[j] += dgh2[r, j]
                _mm(dgh2[s * nb:(s + 1) * nb], w_hh, dhp, 0.0, False, False)
                for bb in range(nb):
                    if t < lengths[b0 + bb]:
                        for j in range(H):
                            dh[bb, j] = _flush(dhp[bb, j] + dhz[bb, j], tiny, zero)
                if s == 0:  # block [t, t + n) complete
                    n = min(S, T - t)
                    m = n * nb
                    _mm(dgi2[:m], xhb[:m, :I], p_ih[k], 1.0, True, False)
                    _mm(dgh2[:m], xhb[:m, I:], p_hh[k], 1.0, True, False)
                    if dx.size > 0:
                        _mm(dgi2[:m], w_ih, dxb[:m], 0.0, False, False)
                        for s2 in range(n):
                            for bb in range(nb):
                                for i in range(I):
                                    dx[t + s2, b0 + bb, i] = dxb[s2 * nb + bb, i]
            _put_rows(dh0, b0, dh)
    return (dx, dh0, _sum_partials(p_ih), _sum_partials(p_hh),
            _sum_partials(p_bi), _sum_partials(p_bh))


# ------------------------------------------------ one step from a shared state (SegRNN)
# SegRNN's parallel decoder runs one step of the cell for every output segment ``j`` of
# every window ``i``, all from the window's encoder state. Its inputs are a position
# embedding joined with a channel embedding, so the input products take only ``m``
# position rows ``P`` and ``C`` channel rows ``Q`` (computed once by the caller, ``b_ih``
# in ``P``), and the recurrent product ``gh = h @ w_hh.T + b_hh`` is one per window, not
# one per (window, segment). These kernels do the gates from those parts:
# ``gates(i, j) = P[j] + Q[channels[i]] + gh[i]`` (GRU: ``r * gh`` in the ``n`` block),
# outputs ``(N, m, H)``. Backward returns the input-side gate gradients per (i, j) (the
# caller sums them per position and channel) and the recurrent side summed over ``j``,
# so every weight and state gradient needs products over ``N`` rows only. Rows never
# interact, so the chunking changes no bits.

@kernel(parallel=True, contract=True)
def gru_shared_step(P, Q, channels, gh, h, n_chunks, out, cache):
    """GRU step: ``out (N, m, H)``, ``cache (N, m, 3, H)`` = ``r, z, n``."""
    N, m, H = out.shape
    one = P.dtype.type(1.0)
    for k in prange(n_chunks):
        b0, b1 = _chunk(N, n_chunks, k)
        for i in range(b0, b1):
            c = channels[i]
            for j in range(m):
                for u in range(H):
                    cache[i, j, 0, u] = one / (one + vexp(-(P[j, u] + Q[c, u] + gh[i, u])))
                for u in range(H):
                    cache[i, j, 1, u] = one / (one + vexp(-(P[j, H + u] + Q[c, H + u]
                                                            + gh[i, H + u])))
                for u in range(H):
                    cache[i, j, 2, u] = vtanh(P[j, 2 * H + u] + Q[c, 2 * H + u]
                                              + cache[i, j, 0, u] * gh[i, 2 * H + u])
                for u in range(H):
                    n = cache[i, j, 2, u]
                    out[i, j, u] = n + cache[i, j, 1, u] * (h[i, u] - n)
    return out, cache


@kernel(parallel=True, contract=True)
def gru_shared_step_backward(dout, cache, gh, h, n_chunks, dgi, dgh, dh):
    """Backward of `gru_shared_step`: ``dgi (N, m, 3H)`` the input-side gate gradients,
    ``dgh (N, 3H)`` the recurrent side summed over the segments, ``dh (N, H)`` the direct
    path ``z * dout`` summed over the segments (the caller adds ``dgh @ w_hh``)."""
    N, m, H = dout.shape
    one = dout.dtype.type(1.0)
    for k in prange(n_chunks):
        b0, b1 = _chunk(N, n_chunks, k)
        for i in range(b0, b1):
            for u in range(3 * H):
                dgh[i, u] = 0
            for u in range(H):
                dh[i, u] = 0
            for j in range(m):
                for u in range(H):
                    d = dout[i, j, u]
                    r = cache[i, j, 0, u]
                    z = cache[i, j, 1, u]
                    n = cache[i, j, 2, u]
                    gn = d * (one - z) * (one - n * n)
                    gz = d * (h[i, u] - n) * z * (one - z)
                    gr = gn * gh[i, 2 * H + u] * r * (one - r)
                    dgi[i, j, u] = gr
                    dgi[i, j, H + u] = gz
                    dgi[i, j, 2 * H + u] = gn
                    dgh[i, u] += gr
                    dgh[i, H + u] += gz
                    dgh[i, 2 * H + u] += gn * r
                    dh[i, u] += d * z
    return dgi, dgh, dh


@kernel(parallel=True, contract=True)
def lstm_shared_step(P, Q, channels, gh, c0, n_chunks, out, cache):
    """LSTM step from states ``(h, c0)`` (``gh`` holds ``h``'s product): ``out (N, m, H)``
    the new hidden states, ``cache (N, m, 5, H)`` = ``i, f, g, o, tanh(c')``."""
    N, m, H = out.shape
    one = P.dtype.type(1.0)
    for k in prange(n_chunks):
        b0, b1 = _chunk(N, n_chunks, k)
        for i in range(b0, b1):
            c = channels[i]
            for j in range(m):
                for q in (0, 1, 3):
                    for u in range(H):
                        cache[i, j, q, u] = one / (one + vexp(
                            -(P[j, q * H + u] + Q[c, q * H + u] + gh[i, q * H + u])))
                for u in range(H):
                    cache[i, j, 2, u] = vtanh(P[j, 2 * H + u] + Q[c, 2 * H + u]
                                                  + gh[i, 2 * H + u])
                for u in range(H):
                    cache[i, j, 4, u] = vtanh(cache[i, j, 1, u] * c0[i, u]
                                                  + cache[i, j, 0, u] * cache[i, j, 2, u])
                for u in range(H):
                    out[i, j, u] = cache[i, j, 3, u] * cache[i, j, 4, u]
    return out, cache


@kernel(parallel=True, contract=True)
def lstm_shared_step_backward(dout, cache, c0, n_chunks, dg, dgs, dc):
    """Backward of `lstm_shared_step`: ``dg (N, m, 4H)`` the gate gradients (input and
    recurrent side are the same for an LSTM), ``dgs (N, 4H)`` their sum over the
    segments, ``dc (N, H)`` the gradient of ``c0`` (the caller takes ``dgs @ w_hh`` for
    ``h``)."""
    N, m, H = dout.shape
    one = dout.dtype.type(1.0)
    for k in prange(n_chunks):
        b0, b1 = _chunk(N, n_chunks, k)
        for i in range(b0, b1):
            for u in range(4 * H):
                dgs[i, u] = 0
            for u in range(H):
                dc[i, u] = 0
            for j in range(m):
                for u in range(H):
                    d = dout[i, j, u]
                    ig = cache[i, j, 0, u]
                    fg = cache[i, j, 1, u]
                    gg = cache[i, j, 2, u]
                    og = cache[i, j, 3, u]
                    tc = cache[i, j, 4, u]
                    dcn = d * og * (one - tc * tc)
                    vi = dcn * gg * ig * (one - ig)
                    vf = dcn * c0[i, u] * fg * (one - fg)
                    vg = dcn * ig * (one - gg * gg)
                    vo = d * tc * og * (one - og)
                    dg[i, j, u] = vi
                    dg[i, j, H + u] = vf
                    dg[i, j, 2 * H + u] = vg
                    dg[i, j, 3 * H + u] = vo
                    dgs[i, u] += vi
                    dgs[i, H + u] += vf
                    dgs[i, 2 * H + u] += vg
                    dgs[i, 3 * H + u] += vo
                    dc[i, u] += dcn * fg
    return dg, dgs, dc


@kernel(parallel=True, contract=True)
def rnn_shared_step(P, Q, channels, gh, n_chunks, out):
    """Elman step with tanh: ``out (N, m, H)`` (its own cache)."""
    N, m, H = out.shape
    for k in prange(n_chunks):
        b0, b1 = _chunk(N, n_chunks, k)
        for i in range(b0, b1):
            c = channels[i]
            for j in range(m):
                for u in range(H):
                    out[i, j, u] = vtanh(P[j, u] + Q[c, u] + gh[i, u])
    return out


@kernel(parallel=True, contract=True)
def rnn_shared_step_backward(dout, out, n_chunks, dg, dgs):
    """Backward of `rnn_shared_step`: ``dg (N, m, H)``, ``dgs (N, H)`` summed over segments."""
    N, m, H = dout.shape
    one = dout.dtype.type(1.0)
    for k in prange(n_chunks):
        b0, b1 = _chunk(N, n_chunks, k)
        for i in range(b0, b1):
            for u in range(H):
                dgs[i, u] = 0
            for j in range(m):
                for u in range(H):
                    a = out[i, j, u]
                    v = dout[i, j, u] * (one - a * a)
                    dg[i, j, u] = v
                    dgs[i, u] += v
    return dg, dgs
