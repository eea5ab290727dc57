"""Verification of the Numba kernels themselves (forecast.kernels): no torch.

* vexp / vtanh (the vectorisable exp and tanh) against numpy, ulp by ulp, and at extremes;
* each cell's forward against the plain-numpy reference in tests/reference.py, for every
  activation, 1-2 layers, ragged lengths, any number of chunks;
* step-by-step equals whole-sequence; kernels never modify their inputs;
* loss kernels against numpy formulas; clip_grad_norm and adam_step against the formulas
  of torch.nn.utils.clip_grad_norm_ and torch.optim.Adam / AdamW.

Gradients (finite differences), chunked/truncated BPTT and the RecurrentNet API are in
tests/test_nn.py.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

import reference as ref  # tests/reference.py (tests/ is on sys.path under pytest)
from forecast.kernels import cells, losses, optim

CELL_CASES = [("lstm", "tanh"), ("gru", "tanh"), ("rnn", "tanh"), ("rnn", "relu"),
              ("rnn", "leaky_relu")]
GATES = {"rnn": 1, "gru": 3, "lstm": 4}
ACT = {"tanh": cells.ACT_TANH, "relu": cells.ACT_RELU, "leaky_relu": cells.ACT_LEAKY_RELU}
SLOPE = 0.05


# ----------------------------------------------------------------------------- helpers
def make_layers(cell, n_input, n_hidden, n_layers, rng, dtype=np.float64, scale=0.6):
    """Random per-layer weights ``(w_ih, w_hh, b_ih, b_hh)`` (C-contiguous)."""
    G = GATES[cell]
    out = []
    for k in range(n_layers):
        n_in = n_input if k == 0 else n_hidden
        out.append(tuple(np.ascontiguousarray(a, dtype) for a in (
            scale * rng.standard_normal((G * n_hidden, n_in)),
            scale * rng.standard_normal((G * n_hidden, n_hidden)),
            0.3 * rng.standard_normal(G * n_hidden),
            0.3 * rng.standard_normal(G * n_hidden))))
    return out


def _probe_time_major():
    """The kernels' sequence layout: batch-first ``(B, T, F)`` or time-major ``(T, B, F)``.

    Probed, not assumed: sample 0 of a 2x2 batch has length 1, so its padded step is
    the only zero output (a relu RNN copying its input of ones)."""
    x = np.ones((2, 2, 1))
    one, zero = np.ones((1, 1)), np.zeros(1)
    hs, _ = cells.rnn_forward(x, np.array([1, 2], np.int64), np.zeros((2, 1)), one,
                              np.zeros((1, 1)), zero, zero, cells.ACT_RELU, 0.01, 1,
                              np.full((2, 2, 1), np.nan))
    if hs[0, 1, 0] == 0.0 and hs[1, 0, 0] == 1.0:
        return False
    assert hs[1, 0, 0] == 0.0 and hs[0, 1, 0] == 1.0, hs.ravel()
    return True


TIME_MAJOR = _probe_time_major()


def to_kernel(a):
    """Batch-first ``(B, T, F)`` -> the kernels' layout (C-contiguous)."""
    return np.ascontiguousarray(a.transpose(1, 0, 2) if TIME_MAJOR else a)


def from_kernel(a):
    """The kernels' layout -> batch-first ``(B, T, F)``."""
    return np.ascontiguousarray(a.transpose(1, 0, 2) if TIME_MAJOR else a)


def _garbage(shape, dtype):
    """A caller-provided kernel buffer: NaN everywhere, so a kernel that relies on it
    being zeroed, or skips an entry it owns, shows up as NaN in the results."""
    return np.full(shape, np.nan, dtype)


def raw_forward(cell, xk, lengths, h0, c0, weights, act="tanh", n_chunks=1):
    """The forward kernel on kernel-layout ``xk``; returns its outputs as a tuple."""
    T, B = xk.shape[:2]
    H, dt = weights[1].shape[1], xk.dtype
    hs = _garbage((T, B, H), dt)
    if cell == "lstm":
        return cells.lstm_forward(xk, lengths, h0, c0, *weights, n_chunks, hs,
                                  _garbage((T, B, 4, H), dt), _garbage((T, B, H), dt))
    if cell == "gru":
        return cells.gru_forward(xk, lengths, h0, *weights, n_chunks, hs, _garbage((T, B, 4, H), dt))
    return cells.rnn_forward(xk, lengths, h0, *weights, ACT[act], SLOPE, n_chunks, hs)


def raw_backward(cell, xk, lengths, h0, c0, weights, out, dhs_k, dh_n, dc_n, act="tanh",
                 n_chunks=1):
    """The backward kernel, given ``out`` = the forward kernel's outputs."""
    w_ih, w_hh = weights[0], weights[1]
    hs = out[0]
    T, B = xk.shape[:2]
    G, dt = w_hh.shape[0], xk.dtype  # G * H rows
    dx, ws = _garbage(xk.shape, dt), _garbage((T * B * G,), dt)
    if cell == "lstm":
        gates, cs = out[3], out[4]
        return cells.lstm_backward(xk, lengths, h0, c0, w_ih, w_hh, hs, gates, cs, dhs_k,
                                   dh_n, dc_n, n_chunks, dx, ws)
    if cell == "gru":
        return cells.gru_backward(xk, lengths, h0, w_ih, w_hh, hs, out[2], dhs_k, dh_n,
                                  n_chunks, dx, ws, _garbage((T * B * G,), dt))
    return cells.rnn_backward(xk, lengths, h0, w_ih, w_hh, hs, dhs_k, dh_n, ACT[act], SLOPE,
                              n_chunks, dx, ws)


def kernel_forward(cell, x, lengths, h0, c0, weights, act="tanh", n_chunks=1):
    """One layer on batch-first ``x``: ``(hs (B, T, H), h_n, c_n or None)``."""
    out = raw_forward(cell, to_kernel(x), lengths, h0, c0, weights, act, n_chunks)
    return from_kernel(out[0]), out[1], (out[2] if cell == "lstm" else None)


def ragged_batch(rng, B, T, I, dtype=np.float64, garbage=1e3):
    """Inputs with right padding filled with large random garbage, and ragged lengths
    (the first sample full length, one sample of length 1)."""
    lengths = rng.integers(1, T + 1, size=B).astype(np.int64)
    lengths[0] = T
    lengths[-1] = 1
    x = rng.standard_normal((B, T, I))
    for b in range(B):
        x[b, lengths[b]:] = rng.uniform(-garbage, garbage, size=(T - lengths[b], I))
    return np.ascontiguousarray(x, dtype), lengths


# ----------------------------------------------------------------------------- vexp / vtanh
@numba.njit(error_model="numpy")
def _vexp_loop(x):
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = cells.vexp(x[i])
    return out


@numba.njit(error_model="numpy")
def _vtanh_loop(x):
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = cells.vtanh(x[i])
    return out


@numba.njit(error_model="numpy")
def _sigmoid_loop(x):
    out = np.empty_like(x)
    one = x.dtype.type(1.0)
    for i in range(x.shape[0]):
        out[i] = one / (one + cells.vexp(-x[i]))  # the kernels' sigmoid
    return out


_HAS_LONGDOUBLE = np.finfo(np.longdouble).nmant > np.finfo(np.float64).nmant


def _exact(fn, x):
    """A reference more precise than ``x``'s dtype: float64 for float32 inputs, long
    double (80-bit on x86-64) for float64 inputs where the platform has it."""
    if x.dtype == np.float32:
        return fn(x.astype(np.float64)), 0.0
    if _HAS_LONGDOUBLE:
        return fn(x.astype(np.longdouble)), 0.0
    return fn(x), 1.0  # numpy's own float64 result: allow its (<= 1 ulp) error on top


def _ulp_error(got, exact, dtype):
    """|got - exact| in units of the last place of ``exact`` rounded to ``dtype``."""
    spacing = np.spacing(np.abs(exact.astype(dtype))).astype(np.float64)
    wide = np.float64 if dtype == np.float32 else exact.dtype
    return np.abs(got.astype(wide) - exact.astype(wide)).astype(np.float64) / spacing


def _all_float32_between(lo, hi):
    """Every float32 in [lo, hi) for 0 < lo < hi."""
    a, b = np.array([lo, hi], np.float32).view(np.int32)
    return np.arange(a, b, dtype=np.int32).view(np.float32)


def _tanh_points(dtype):
    rng = np.random.default_rng(0)
    pts = [np.linspace(-25, 25, 400_001), rng.uniform(-1, 1, 400_000),
           rng.uniform(-0.15, 0.15, 400_000), np.geomspace(1e-30, 1.0, 20_001)]
    if dtype == np.float32:
        # every float32 around the switch between the polynomial (|v| < 0.0625) and the
        # exp formula, where cancellation in 1 - exp(-2|v|) is worst
        pts.append(_all_float32_between(0.055, 0.075).astype(np.float64))
    else:
        pts.append(np.linspace(0.05, 0.3, 1_000_001))  # switch at |v| = 0.1
    x = np.concatenate(pts)
    return np.concatenate([x, -x]).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vexp_within_2_ulp_of_exp(dtype):
    lo, hi = (-87.0, 88.0) if dtype == np.float32 else (-708.0, 708.0)
    rng = np.random.default_rng(1)
    x = np.concatenate([np.linspace(lo, hi, 1_000_001), rng.uniform(-10, 10, 500_000),
                        rng.uniform(-1e-3, 1e-3, 100_000), [0.0, lo, hi]]).astype(dtype)
    got = _vexp_loop(x)
    exact, slack = _exact(np.exp, x)
    err = _ulp_error(got, exact, dtype)
    worst = int(np.argmax(err))
    assert err[worst] <= 2.0 + slack, (
        f"vexp({x[worst]!r}) = {got[worst]!r}, exp = {exact[worst]!r}: {err[worst]:.2f} ulp")
    assert got[np.flatnonzero(x == 0)[0]] == 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vtanh_within_4_ulp_of_tanh(dtype):
    x = _tanh_points(dtype)
    got = _vtanh_loop(x)
    exact, slack = _exact(np.tanh, x)
    err = _ulp_error(got, exact, dtype)
    worst = int(np.argmax(err))
    assert err[worst] <= 4.0 + slack, (
        f"vtanh({x[worst]!r}) = {got[worst]!r}, tanh = {exact[worst]!r}: {err[worst]:.2f} ulp "
        f"({int(np.sum(err > 4.0 + slack))} of {x.size} points over 4 ulp)")
    # odd, and bounded by 1
    np.testing.assert_array_equal(got[: x.size // 2], -got[x.size // 2:])
    assert np.all(np.abs(got) <= 1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_sigmoid_tanh_saturate_at_extremes(dtype):
    big = np.finfo(dtype).max
    x = np.array([40.0, 88.8, 100.0, 710.0, 1e4, 1e30, big, np.inf], dtype)
    x = np.concatenate([x, -x])
    e = _vexp_loop(x)
    s = _sigmoid_loop(x)
    t = _vtanh_loop(x)
    for name, v in (("vexp", e), ("sigmoid", s), ("vtanh", t)):
        assert np.all(np.isfinite(v)), (name, x[~np.isfinite(v)])
    n = x.size // 2
    assert np.all(e >= 0) and np.all(e[:n] > 1e10)
    assert np.all((s >= 0) & (s <= 1))
    np.testing.assert_array_equal(s[:n], 1.0)
    assert np.all(s[n:] < 1e-13)
    np.testing.assert_array_equal(t[:n], 1.0)
    np.testing.assert_array_equal(t[n:], -1.0)
    # the sigmoid is accurate where it does not saturate
    mid = np.linspace(-30, 30, 10_001).astype(dtype)
    tol = 1e-6 if dtype == np.float32 else 1e-15
    np.testing.assert_allclose(_sigmoid_loop(mid), 1.0 / (1.0 + np.exp(-mid.astype(np.float64))),
                               rtol=tol, atol=0)


@pytest.mark.parametrize("cell,act", CELL_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cells_stay_finite_with_huge_weights_and_inputs(cell, act, dtype):
    """Saturating gates: huge pre-activations give bounded (or, for relu, finite) states."""
    rng = np.random.default_rng(5)
    x, lengths = ragged_batch(rng, 4, 6, 3, dtype, garbage=1e3)
    x[:, :] *= 1e3
    (w,) = make_layers(cell, 3, 4, 1, rng, dtype, scale=1e3 if act == "tanh" else 1.0)
    h0 = np.zeros((4, 4), dtype)
    hs, h_n, c_n = kernel_forward(cell, x, lengths, h0, h0.copy(), w, act)
    assert np.all(np.isfinite(hs)) and np.all(np.isfinite(h_n))
    if act == "tanh":
        assert np.all(np.abs(hs) <= 1.0)
    if c_n is not None:
        assert np.all(np.isfinite(c_n))


# ----------------------------------------------------------------------------- reference
def _run_stack(cell, act, x, lengths, h0, c0, layers, n_chunks):
    inp, h_n, c_n = x, [], []
    for k, w in enumerate(layers):
        hs, hk, ck = kernel_forward(cell, inp, lengths, h0[k], c0[k], w, act, n_chunks)
        h_n.append(hk)
        c_n.append(ck)
        inp = hs
    return inp, np.stack(h_n), (np.stack(c_n) if cell == "lstm" else None)


def _as_state_dict(layers):
    sd = {}
    for k, (w_ih, w_hh, b_ih, b_hh) in enumerate(layers):
        sd[f"rnn.weight_ih_l{k}"], sd[f"rnn.weight_hh_l{k}"] = w_ih, w_hh
        sd[f"rnn.bias_ih_l{k}"], sd[f"rnn.bias_hh_l{k}"] = b_ih, b_hh
    return sd


@pytest.mark.parametrize("n_chunks", [1, 2, 7])
@pytest.mark.parametrize("n_layers", [1, 2])
@pytest.mark.parametrize("cell,act", CELL_CASES)
def test_forward_matches_numpy_reference_float64(cell, act, n_layers, n_chunks):
    rng = np.random.default_rng(10 + n_layers)
    B, T, I, H = 5, 7, 3, 4
    x, lengths = ragged_batch(rng, B, T, I)
    layers = make_layers(cell, I, H, n_layers, rng)
    h0 = 0.5 * rng.standard_normal((n_layers, B, H))
    c0 = 0.5 * rng.standard_normal((n_layers, B, H))
    hs, h_n, c_n = _run_stack(cell, act, x, lengths, h0, c0, layers, n_chunks)
    r_hs, r_h, r_c = ref.stack(cell, _as_state_dict(layers), x, lengths, h0, c0, act, SLOPE)
    np.testing.assert_allclose(hs, r_hs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(h_n, r_h, rtol=0, atol=1e-12)
    if cell == "lstm":
        np.testing.assert_allclose(c_n, r_c, rtol=0, atol=1e-12)
    # padded steps output exactly zero; h_n is the state after the last valid step
    for b in range(B):
        assert np.all(hs[b, lengths[b]:] == 0.0)
        np.testing.assert_array_equal(h_n[-1, b], hs[b, lengths[b] - 1])


@pytest.mark.parametrize("cell,act", CELL_CASES)
def test_forward_matches_numpy_reference_float32(cell, act):
    rng = np.random.default_rng(20)
    B, T, I, H = 5, 7, 3, 4
    x, lengths = ragged_batch(rng, B, T, I)
    layers = make_layers(cell, I, H, 2, rng)
    h0 = 0.5 * rng.standard_normal((2, B, H))
    c0 = 0.5 * rng.standard_normal((2, B, H))
    layers32 = [tuple(a.astype(np.float32) for a in w) for w in layers]
    hs, h_n, c_n = _run_stack(cell, act, x.astype(np.float32), lengths, h0.astype(np.float32),
                              c0.astype(np.float32), layers32, 2)
    assert hs.dtype == np.float32
    r_hs, r_h, r_c = ref.stack(cell, _as_state_dict(layers32), x.astype(np.float32), lengths,
                               h0.astype(np.float32), c0.astype(np.float32), act, SLOPE)
    np.testing.assert_allclose(hs, r_hs, rtol=0, atol=2e-5 * max(1.0, np.abs(r_hs).max()))
    np.testing.assert_allclose(h_n, r_h, rtol=0, atol=2e-5 * max(1.0, np.abs(r_h).max()))
    if cell == "lstm":
        np.testing.assert_allclose(c_n, r_c, rtol=0, atol=2e-5 * max(1.0, np.abs(r_c).max()))


def test_reference_matches_closed_form_single_step():
    """Sanity check of the reference itself on hand-computed one-step values."""
    x = np.array([1.0, -2.0])
    h = np.array([0.5])
    w_ih = np.array([[0.1, 0.2]] * 4)
    w_hh = np.array([[0.3]] * 4)
    b = np.zeros(4)
    pre = 0.1 * 1.0 + 0.2 * -2.0 + 0.3 * 0.5  # -0.15, the same for every gate
    s = 1.0 / (1.0 + np.exp(0.15))
    h1, c1 = ref.lstm_step(x, h, np.array([0.2]), w_ih, w_hh, b, b)
    np.testing.assert_allclose(c1, s * 0.2 + s * np.tanh(pre), rtol=1e-15)
    np.testing.assert_allclose(h1, s * np.tanh(c1), rtol=1e-15)
    g = ref.gru_step(x, h, w_ih[:3], w_hh[:3], b[:3], b[:3])
    n = np.tanh(-0.3 + s * 0.15)
    np.testing.assert_allclose(g, (1 - s) * n + s * 0.5, rtol=1e-15)
    np.testing.assert_allclose(ref.rnn_step(x, h, w_ih[:1], w_hh[:1], b[:1], b[:1], "leaky_relu", 0.1),
                               [0.1 * pre], rtol=1e-15)


# ----------------------------------------------------------------------------- composition
@pytest.mark.parametrize("cell,act", CELL_CASES)
def test_step_by_step_equals_whole_sequence(cell, act):
    """T calls with one step each, carrying the state (and per-step lengths 0/1 for the
    ragged samples), give the whole-sequence outputs and final state."""
    rng = np.random.default_rng(30)
    B, T, I, H = 6, 8, 3, 5
    x, lengths = ragged_batch(rng, B, T, I)
    (w,) = make_layers(cell, I, H, 1, rng)
    h0 = 0.5 * rng.standard_normal((B, H))
    c0 = 0.5 * rng.standard_normal((B, H))
    hs, h_n, c_n = kernel_forward(cell, x, lengths, h0, c0, w, act, n_chunks=2)
    h, c = h0.copy(), c0.copy()
    for t in range(T):
        step_len = (lengths > t).astype(np.int64)
        xt = np.ascontiguousarray(x[:, t:t + 1])
        out, h, c_new = kernel_forward(cell, xt, step_len, h, c, w, act, n_chunks=2)
        if cell == "lstm":
            c = c_new
        np.testing.assert_allclose(out[:, 0], hs[:, t], rtol=0, atol=1e-14)
    np.testing.assert_allclose(h, h_n, rtol=0, atol=1e-14)
    if cell == "lstm":
        np.testing.assert_allclose(c, c_n, rtol=0, atol=1e-14)


@pytest.mark.parametrize("cell,act", CELL_CASES)
def test_kernels_never_modify_their_inputs_and_chunking_agrees_to_rounding(cell, act):
    """Forward and backward leave every argument (and the forward cache) untouched.

    Chunking: every split (empty chunks included, when there are more chunks than
    samples) gives outputs and gradients that agree to rounding with one chunk, and the
    same split run again gives the same bits. Bit-identity across splits is not
    promised: each chunk's products are one BLAS call over its rows, and a BLAS kernel
    may round a row differently with the number of rows in the call (OpenBLAS's Haswell
    kernels do; a one-row product may also go to gemv), and per-chunk weight-gradient
    partials are summed."""
    rng = np.random.default_rng(40)
    B, T, I, H = 8, 6, 3, 4
    x, lengths = ragged_batch(rng, B, T, I)
    (w,) = make_layers(cell, I, H, 1, rng)
    xk = to_kernel(x)
    h0 = 0.5 * rng.standard_normal((B, H))
    c0 = 0.5 * rng.standard_normal((B, H))
    dhs_k = to_kernel(rng.standard_normal((B, T, H)))
    dh_n = rng.standard_normal((B, H))
    dc_n = rng.standard_normal((B, H))
    args = [xk, lengths, h0, c0, dhs_k, dh_n, dc_n, *w]
    before = [a.copy() for a in args]
    results = {}
    for n_chunks in (1, 2, 3, 4, 8, 11):
        out = raw_forward(cell, xk, lengths, h0, c0, w, act, n_chunks)
        out_before = [a.copy() for a in out]
        grads = raw_backward(cell, xk, lengths, h0, c0, w, out, dhs_k, dh_n, dc_n, act, n_chunks)
        for a, b in zip(args, before):
            np.testing.assert_array_equal(a, b)
        for a, b in zip(out, out_before):
            np.testing.assert_array_equal(a, b)
        again = raw_forward(cell, xk, lengths, h0, c0, w, act, n_chunks)
        for a, b in zip(out, again):
            np.testing.assert_array_equal(a, b, err_msg=f"n_chunks={n_chunks}")
        results[n_chunks] = (out, grads)
    out1, grads1 = results[1]
    n_outputs = 3 if cell == "lstm" else 2  # hs, h_n (, c_n); the rest is cache
    for n_chunks, (out, grads) in results.items():
        for a, b in zip(out[:n_outputs], out1[:n_outputs]):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-14 * max(1.0, np.abs(b).max()),
                                       err_msg=f"n_chunks={n_chunks}")
        for a, b in zip(grads, grads1):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-13 * max(1.0, np.abs(b).max()))
    # padded steps get no input gradient
    dx = from_kernel(grads1[0])
    assert dx.shape == x.shape
    for b in range(B):
        assert np.all(dx[b, lengths[b]:] == 0.0)


@pytest.mark.parametrize("cell,act", CELL_CASES)
def test_backward_without_input_gradient(cell, act):
    """An empty ``dx`` skips the input gradient (training never needs the first layer's):
    every other result is the same as with a full ``dx``."""
    rng = np.random.default_rng(41)
    B, T, I, H = 6, 19, 3, 4  # T > BLOCK_STEPS: more than one weight-gradient block
    x, lengths = ragged_batch(rng, B, T, I)
    (w,) = make_layers(cell, I, H, 1, rng)
    xk = to_kernel(x)
    h0 = 0.5 * rng.standard_normal((B, H))
    c0 = 0.5 * rng.standard_normal((B, H))
    dhs_k = to_kernel(rng.standard_normal((B, T, H)))
    dh_n = rng.standard_normal((B, H))
    dc_n = rng.standard_normal((B, H))
    for n_chunks in (1, 2):
        out = raw_forward(cell, xk, lengths, h0, c0, w, act, n_chunks)
        full = raw_backward(cell, xk, lengths, h0, c0, w, out, dhs_k, dh_n, dc_n, act, n_chunks)
        w_ih, w_hh = w[0], w[1]
        hs = out[0]
        empty = np.empty((0, 0, 0))
        G = w_hh.shape[0]
        ws = _garbage((T * B * G,), np.float64)
        if cell == "lstm":
            part = cells.lstm_backward(xk, lengths, h0, c0, w_ih, w_hh, hs, out[3], out[4], dhs_k,
                                       dh_n, dc_n, n_chunks, empty, ws)
        elif cell == "gru":
            part = cells.gru_backward(xk, lengths, h0, w_ih, w_hh, hs, out[2], dhs_k, dh_n,
                                      n_chunks, empty, ws, _garbage((T * B * G,), np.float64))
        else:
            part = cells.rnn_backward(xk, lengths, h0, w_ih, w_hh, hs, dhs_k, dh_n, ACT[act], SLOPE,
                                      n_chunks, empty, ws)
        assert part[0].size == 0
        for a, b in zip(part[1:], full[1:]):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-13 * max(1.0, np.abs(b).max()))


# ----------------------------------------------------------------------------- losses
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_regression_losses_match_numpy(dtype):
    rng = np.random.default_rng(50)
    n = 301
    yhat = rng.standard_normal(n).astype(dtype)
    y = rng.standard_normal(n).astype(dtype)
    y[:5] = yhat[:5]  # e == 0 exactly: MAE gradient 0 (sign(0)), as torch
    e = yhat.astype(np.float64) - y.astype(np.float64)
    delta = 0.6
    a = np.abs(e)
    cases = {
        losses.LOSS_MSE: (np.mean(e ** 2), 2 * e / n),
        losses.LOSS_MAE: (np.mean(a), np.sign(e) / n),
        losses.LOSS_HUBER: (np.mean(np.where(a < delta, 0.5 * e ** 2, delta * (a - 0.5 * delta))),
                            np.where(a < delta, e, delta * np.sign(e)) / n),
    }
    tol = 1e-14 if dtype == np.float64 else 1e-6
    for mode, (value, grad) in cases.items():
        v, g = losses.regression_loss(yhat, y, mode, delta)
        assert g.dtype == dtype and g.shape == (n,)
        assert abs(v - value) <= tol * abs(value), mode
        np.testing.assert_allclose(g, grad, rtol=tol, atol=tol / n)
    assert np.all(losses.regression_loss(yhat, y, losses.LOSS_MAE, delta)[1][:5] == 0)


def test_regression_loss_of_float32_predictions_is_accumulated_in_float64():
    """The kernel casts to float (float64) before squaring: a finite float32 error whose
    square overflows float32 must still give the finite float64 loss."""
    yhat = np.array([3e20, 1.0], np.float32)
    y = np.zeros(2, np.float32)
    e = yhat.astype(np.float64)
    v, g = losses.regression_loss(yhat, y, losses.LOSS_MSE, 1.0)
    assert np.isfinite(v), f"MSE of float32 errors {yhat} overflowed to {v}"
    assert v == pytest.approx(np.mean(e ** 2), rel=1e-7)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pinball_loss_matches_numpy(dtype):
    rng = np.random.default_rng(51)
    n, q = 97, np.array([0.1, 0.5, 0.9])
    yhat = rng.standard_normal((n, q.size)).astype(dtype)
    y = rng.standard_normal(n).astype(dtype)
    e = y.astype(np.float64)[:, None] - yhat.astype(np.float64)
    value = np.mean(np.maximum(q * e, (q - 1) * e))
    grad = np.where(e > 0, -q, 1 - q) / e.size
    v, g = losses.pinball_loss(yhat, y, q)
    tol = 1e-14 if dtype == np.float64 else 1e-6
    assert g.dtype == dtype and g.shape == yhat.shape
    assert abs(v - value) <= tol * value
    np.testing.assert_allclose(g, grad, rtol=tol)
    # q = 0.5 is half the MAE
    v_half, _ = losses.pinball_loss(np.ascontiguousarray(yhat[:, 1:2]), y, np.array([0.5]))
    assert v_half == pytest.approx(0.5 * np.mean(np.abs(e[:, 1])), rel=tol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_cross_entropy_matches_numpy(dtype):
    rng = np.random.default_rng(52)
    B, K = 40, 5
    logits = (3 * rng.standard_normal((B, K))).astype(dtype)
    logits[0] = [1000.0, -1000.0, 999.0, 0.0, 3.0]  # stable for large logits
    classes = rng.integers(0, K, B).astype(np.int64)
    l64 = logits.astype(np.float64)
    m = l64.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(l64 - m).sum(axis=1))
    p = np.exp(l64 - lse[:, None])
    value = np.mean(lse - l64[np.arange(B), classes])
    grad = (p - np.eye(K)[classes]) / B
    v, g = losses.softmax_cross_entropy(logits, classes)
    tol = 1e-13 if dtype == np.float64 else 1e-6
    assert np.isfinite(v) and abs(v - value) <= tol * abs(value)
    np.testing.assert_allclose(g, grad, rtol=0, atol=tol)
    np.testing.assert_allclose(g.sum(axis=1), 0.0, atol=tol)
    sm = losses.softmax(logits)
    np.testing.assert_allclose(sm, p, rtol=0, atol=tol)
    np.testing.assert_allclose(sm.sum(axis=1), 1.0, atol=tol)


# ----------------------------------------------------------------------------- optimiser
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_global_norm_and_clip_grad_norm_follow_torch(dtype):
    rng = np.random.default_rng(60)
    g = rng.standard_normal(1000).astype(dtype)
    norm = np.sqrt(np.sum(g.astype(np.float64) ** 2))
    rel = 1e-14 if dtype == np.float64 else 1e-7
    got = optim.global_norm(g)
    assert got == pytest.approx(norm, rel=rel)
    # norm above max_norm: scaled by max_norm / (norm + 1e-6), the pre-clip norm returned
    for max_norm in (0.5, norm / 2, got):
        c = g.copy()
        assert optim.clip_grad_norm(c, max_norm) == got
        coef = max_norm / (got + 1e-6)
        np.testing.assert_array_equal(c, g * dtype(coef))
        assert np.linalg.norm(c.astype(np.float64)) <= max_norm * (1 + 1e-6)
    # coef = max_norm / (norm + 1e-6) >= 1: untouched (torch clamps the coefficient at 1)
    for max_norm in (got * 2, got + 1e-6):
        c = g.copy()
        optim.clip_grad_norm(c, max_norm)
        np.testing.assert_array_equal(c, g)
    # a non-finite gradient reports a non-finite norm
    bad = g.copy()
    bad[3] = np.inf
    assert not np.isfinite(optim.clip_grad_norm(bad.copy(), 1.0))
    bad[3] = np.nan
    assert np.isnan(optim.global_norm(bad))


def test_global_norm_of_float32_gradients_does_not_overflow():
    """Documented as accumulated in float64: finite float32 gradients whose squares
    overflow float32 must give their finite norm, and clipping must scale them to
    max_norm instead of zeroing them."""
    g = np.array([3e20, -4e20, 1.0], np.float32)
    norm = np.linalg.norm(g.astype(np.float64))
    got = optim.global_norm(g)
    assert got == pytest.approx(norm, rel=1e-7), f"global_norm({g}) = {got}, expected {norm}"
    c = g.copy()
    optim.clip_grad_norm(c, 1.0)
    np.testing.assert_allclose(c, g.astype(np.float64) / norm, rtol=1e-6)


def numpy_adam(params, grads_seq, lr, beta1, beta2, eps, weight_decay, decoupled):
    """Textbook Adam / AdamW (Kingma & Ba; Loshchilov & Hutter), the formula torch.optim
    implements: m_t = b1 m + (1-b1) g, v_t = b2 v + (1-b2) g^2,
    p -= lr * (m_t / (1-b1^t)) / (sqrt(v_t / (1-b2^t)) + eps)."""
    p = params.astype(np.float64).copy()
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(grads_seq, start=1):
        g = g.astype(np.float64)
        if weight_decay:
            if decoupled:
                p = p * (1 - lr * weight_decay)
            else:
                g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1 ** t)
        v_hat = v / (1 - beta2 ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p, m, v


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weight_decay,decoupled", [(0.0, False), (0.1, False), (0.1, True)])
def test_adam_step_matches_formula(weight_decay, decoupled, dtype):
    rng = np.random.default_rng(61)
    n = 500
    params0 = rng.standard_normal(n).astype(dtype)
    grads_seq = [(rng.standard_normal(n) * 10.0 ** rng.uniform(-3, 1, n)).astype(dtype)
                 for _ in range(6)]
    grads_seq[2][:10] = 0.0  # zero gradients: the moments still decay
    lr, b1, b2, eps = 3e-3, 0.85, 0.995, 1e-7
    p = params0.copy()
    m = np.zeros(n, dtype)
    v = np.zeros(n, dtype)
    for t, g in enumerate(grads_seq, start=1):
        g_in = g.copy()
        optim.adam_step(p, g, m, v, t, lr, b1, b2, eps, weight_decay, decoupled)
        np.testing.assert_array_equal(g, g_in)  # the gradient is read only
    want_p, want_m, want_v = numpy_adam(params0, grads_seq, lr, b1, b2, eps, weight_decay,
                                        decoupled)
    assert p.dtype == dtype
    if dtype == np.float64:
        np.testing.assert_allclose(p, want_p, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(m, want_m, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(v, want_v, rtol=1e-12, atol=0)
    else:
        # float32 state: rounding is relative to the gradient's scale (<= 10)
        np.testing.assert_allclose(p, want_p, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(m, want_m, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(v, want_v, rtol=1e-5, atol=0)
    # Adam's first step moves each parameter by at most lr
    one = params0.copy()
    optim.adam_step(one, grads_seq[0].copy(), np.zeros(n, dtype), np.zeros(n, dtype), 1, lr,
                    b1, b2, eps, 0.0, False)
    step = np.abs(one.astype(np.float64) - params0.astype(np.float64))
    assert np.all(step <= lr * (1 + 1e-3))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_backward_flushes_subnormal_gradients_to_zero(cell, dtype):
    # a many-to-one gradient that has decayed to subnormal size (slow on every CPU) is
    # carried as zero: no subnormal ever reaches the weight gradients or dh0
    from forecast.nn import RecurrentNet

    rng = np.random.default_rng(0)
    net = RecurrentNet(cell, 3, 5, 1, 1, "tanh", dtype, 0)
    x = rng.standard_normal((4, 30, 3)).astype(dtype)
    hs, final, cache = net.forward_sequence(x)
    tiny = np.finfo(dtype).tiny
    last = final[0] if cell == "lstm" else final
    d = np.full_like(last, tiny / 4)  # subnormal
    dstate = (d, np.zeros_like(d)) if cell == "lstm" else d
    out = net.backward_sequence(cache, np.zeros(hs.shape, dtype), dstate)
    arrays = [a for a in out if isinstance(a, np.ndarray)]
    arrays += [b for a in out if isinstance(a, (tuple, list)) for b in a
               if isinstance(b, np.ndarray)]
    assert arrays
    for a in arrays:
        assert not np.any((a != 0) & (np.abs(a) < tiny)), "a subnormal gradient survived"
