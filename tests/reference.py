"""Plain-numpy reference for the recurrent cells, written from PyTorch's documented
equations and independently of ``forecast.kernels``: one sample, one step at a time,
no caches, no batching tricks, no chunking.

Shapes follow PyTorch: ``w_ih (G*H, I)``, ``w_hh (G*H, H)``, ``b_ih, b_hh (G*H,)`` with
gate blocks LSTM ``i, f, g, o``; GRU ``r, z, n``; RNN one block. Sequences are
batch-first ``(B, T, I)`` with right padding: sample ``b`` is valid for ``t < lengths[b]``;
a padded step leaves the state unchanged and outputs zero.

    RNN   h' = act(W_ih x + b_ih + W_hh h + b_hh),  act in {tanh, relu, leaky_relu}
    LSTM  i = s(W_ii x + b_ii + W_hi h + b_hi)      f = s(W_if x + b_if + W_hf h + b_hf)
          g = tanh(W_ig x + b_ig + W_hg h + b_hg)   o = s(W_io x + b_io + W_ho h + b_ho)
          c' = f c + i g,   h' = o tanh(c')
    GRU   r = s(W_ir x + b_ir + W_hr h + b_hr)      z = s(W_iz x + b_iz + W_hz h + b_hz)
          n = tanh(W_in x + b_in + r (W_hn h + b_hn)),   h' = (1 - z) n + z h
"""

from __future__ import annotations

import numpy as np


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def activation(name, v, slope=0.01):
    if name == "tanh":
        return np.tanh(v)
    if name == "relu":
        return np.maximum(v, 0.0)
    if name == "leaky_relu":
        return np.where(v > 0, v, slope * v)
    raise ValueError(name)


def rnn_step(x, h, w_ih, w_hh, b_ih, b_hh, act="tanh", slope=0.01):
    return activation(act, w_ih @ x + b_ih + w_hh @ h + b_hh, slope)


def lstm_step(x, h, c, w_ih, w_hh, b_ih, b_hh):
    H = h.shape[0]
    pre = w_ih @ x + b_ih + w_hh @ h + b_hh
    i = sigmoid(pre[0 * H:1 * H])
    f = sigmoid(pre[1 * H:2 * H])
    g = np.tanh(pre[2 * H:3 * H])
    o = sigmoid(pre[3 * H:4 * H])
    c_new = f * c + i * g
    return o * np.tanh(c_new), c_new


def gru_step(x, h, w_ih, w_hh, b_ih, b_hh):
    H = h.shape[0]
    gi = w_ih @ x + b_ih
    gh = w_hh @ h + b_hh
    r = sigmoid(gi[0 * H:1 * H] + gh[0 * H:1 * H])
    z = sigmoid(gi[1 * H:2 * H] + gh[1 * H:2 * H])
    n = np.tanh(gi[2 * H:3 * H] + r * gh[2 * H:3 * H])
    return (1.0 - z) * n + z * h


def layer(cell, x, lengths, h0, weights, c0=None, act="tanh", slope=0.01):
    """One layer over a batch. ``weights = (w_ih, w_hh, b_ih, b_hh)``.

    Returns ``(hs (B, T, H), h_n (B, H), c_n (B, H) or None)``.
    """
    x = np.asarray(x, np.float64)
    B, T, _ = x.shape
    H = h0.shape[1]
    w = [np.asarray(a, np.float64) for a in weights]
    hs = np.zeros((B, T, H))
    h_n = np.zeros((B, H))
    c_n = np.zeros((B, H)) if cell == "lstm" else None
    for b in range(B):
        h = np.array(h0[b], np.float64)
        c = np.array(c0[b], np.float64) if cell == "lstm" else None
        for t in range(int(lengths[b])):
            if cell == "rnn":
                h = rnn_step(x[b, t], h, *w, act=act, slope=slope)
            elif cell == "lstm":
                h, c = lstm_step(x[b, t], h, c, *w)
            elif cell == "gru":
                h = gru_step(x[b, t], h, *w)
            else:
                raise ValueError(cell)
            hs[b, t] = h
        h_n[b] = h
        if cell == "lstm":
            c_n[b] = c
    return hs, h_n, c_n


def stack(cell, state_dict, x, lengths, h0=None, c0=None, act="tanh", slope=0.01):
    """A stack of layers named like ``torch.nn.{RNN,LSTM,GRU}`` (``rnn.weight_ih_l{k}``...).

    ``h0``/``c0`` are ``(n_layers, B, H)`` (``None`` = zeros). Returns
    ``(hs_top, h_n (L, B, H), c_n (L, B, H) or None)``.
    """
    n_layers = sum(1 for k in state_dict if k.startswith("rnn.weight_ih_l"))
    H = state_dict["rnn.weight_hh_l0"].shape[1]
    B = x.shape[0]
    if h0 is None:
        h0 = np.zeros((n_layers, B, H))
    if c0 is None:
        c0 = np.zeros((n_layers, B, H))
    inp = x
    h_n, c_n = [], []
    for k in range(n_layers):
        weights = tuple(state_dict[f"rnn.{name}_l{k}"]
                        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        inp, hk, ck = layer(cell, inp, lengths, h0[k], weights, c0[k], act, slope)
        h_n.append(hk)
        c_n.append(ck)
    return inp, np.stack(h_n), (np.stack(c_n) if cell == "lstm" else None)


def head(h, state_dict):
    """The dense head ``h @ W.T + b`` (a ``torch.nn.Linear``)."""
    return h @ np.asarray(state_dict["head.weight"], np.float64).T + state_dict["head.bias"]
