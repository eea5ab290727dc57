"""The network behind `SegRNNForecaster` (SegRNN, Lin et al. 2023, arXiv:2308.11200).

Shapes: ``N`` windows (one channel each), ``w`` the segment length, ``n`` input segments
(the last ``n * w`` steps of the lookback), ``m`` output segments (``m * w >= horizon``),
``d`` the hidden size, ``C`` channels.

* segment embedding: ``E = relu(X_seg @ W_e.T + b_e)``, ``X_seg (N, n, w) -> E (N, n, d)``;
* encoder: the recurrent cell (`forecast.nn.RecurrentNet`, one layer) over the ``n``
  embedded segments, final state ``h_n (N, d)`` (LSTM: and ``c_n``);
* parallel multi-step decoder: one recurrent step of the *same* cell (shared weights) for
  every output segment, batch ``N * m`` (row ``i * m + j`` is window ``i``, segment
  ``j``), its input ``[pos_j, chan_c]`` (a learned position embedding joined with the
  learned embedding of the window's channel ``c``; without channel embeddings ``pos_j``
  has all ``d`` entries) and its initial state ``h_n`` of window ``i``;
* head: inverted dropout on the decoder state, then ``y_ij = z_ij @ W_o.T + b_o``
  (``w`` values), the ``m`` segments joined and cut to the horizon.

Every parameter lives in one flat vector (views in `SegNet.views`): the cell's weights in
`forecast.nn.RecurrentNet`'s PyTorch layout (``rnn.weight_ih_l0`` ...), then ``emb.weight
(d, w)``, ``emb.bias (d,)``, ``pos_emb (m, d_pos)``, ``channel_emb (C, d - d_pos)``
(with channel embeddings), ``out.weight (w, d)`` and ``out.bias (w,)``, which are the
names and shapes of the reference PyTorch module (``rnn``, ``valueEmbedding[0]``,
``pos_emb``, ``channel_emb``, ``predict[1]``). The small pieces below are plain NumPy
functions with explicit backward functions; each has a float64 finite-difference test
in ``tests/test_segrnn.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from forecast.errors import ConfigError, NumericalError
from forecast.kernels import optim
from forecast.nn import CELLS, RecurrentNet

__all__ = ["SegConfig", "SegNet", "embed_forward", "embed_backward", "dropout_mask",
           "linear_forward", "linear_backward", "decoder_inputs", "decoder_inputs_backward"]


# ---- pieces ------------------------------------------------------------------------------
def embed_forward(xs, w, b):
    """Segment embedding: ``relu(xs @ w.T + b)``; returns ``(E, pre)``."""
    pre = xs @ w.T + b
    return np.maximum(pre, 0), pre


def embed_backward(dE, pre, xs):
    """Gradients ``(dw, db)`` of the segment embedding (``dxs`` is not needed)."""
    dpre = np.where(pre > 0, dE, 0).astype(dE.dtype, copy=False)
    d = dpre.shape[-1]
    flat = dpre.reshape(-1, d)
    return flat.T @ xs.reshape(-1, xs.shape[-1]), flat.sum(axis=0)


def dropout_mask(rng, shape, p, dtype):
    """Inverted dropout mask: each entry ``0`` with probability ``p``, else ``1 / (1 - p)``;
    ``None`` when ``p == 0``. All randomness comes from ``rng``."""
    if p <= 0:
        return None
    keep = rng.random(shape) >= p
    return (keep * (1.0 / (1.0 - p))).astype(dtype)


def linear_forward(z, w, b):
    """``z @ w.T + b``."""
    return z @ w.T + b


def linear_backward(dy, z, w):
    """Gradients ``(dz, dw, db)`` of `linear_forward`."""
    return dy @ w, dy.T @ z, dy.sum(axis=0)


def decoder_inputs(pos, chan, channels):
    """Decoder inputs ``(N * m, d)``: row ``i * m + j`` is ``[pos[j], chan[channels[i]]]``
    (``pos`` alone when ``chan`` is None)."""
    m = pos.shape[0]
    N = channels.shape[0]
    if chan is None:
        return np.ascontiguousarray(np.broadcast_to(pos, (N, m, pos.shape[1])).reshape(N * m, -1))
    out = np.empty((N, m, pos.shape[1] + chan.shape[1]), pos.dtype)
    out[:, :, :pos.shape[1]] = pos[None]
    out[:, :, pos.shape[1]:] = chan[channels][:, None, :]
    return out.reshape(N * m, -1)


def decoder_inputs_backward(dD, m, d_pos, channels, n_channels):
    """Gradients ``(dpos, dchan)`` of `decoder_inputs` (``dchan`` None without channels)."""
    N = channels.shape[0]
    g = dD.reshape(N, m, -1)
    dpos = g[:, :, :d_pos].sum(axis=0)
    if n_channels == 0:
        return dpos, None
    per = g[:, :, d_pos:].sum(axis=1)  # (N, d_chan)
    dchan = np.zeros((n_channels, per.shape[1]), dD.dtype)
    np.add.at(dchan, channels, per)
    return dpos, dchan


# ---- network -----------------------------------------------------------------------------
@dataclass(frozen=True)
class SegConfig:
    cell: str
    segment: int
    n_seg: int  # input segments
    n_out: int  # output segments
    horizon: int
    n_hidden: int
    n_channels: int = 1
    channel_id: bool = True
    dropout: float = 0.0
    dtype: str = "float32"

    @property
    def d_pos(self) -> int:
        return self.n_hidden // 2 if self.channel_id else self.n_hidden


class SegNet:
    """Parameters in ``params`` (flat); ``forward`` / ``backward`` / ``step`` (Adam)."""

    def __init__(self, cfg: SegConfig, seed: int):
        if cfg.cell not in CELLS:
            raise ConfigError(f"cell must be one of {sorted(CELLS)}, got {cfg.cell!r}")
        if cfg.channel_id and cfg.n_hidden < 2:
            raise ConfigError("channel embeddings need n_hidden >= 2")
        self.cfg = cfg
        self.dtype = np.dtype(cfg.dtype)
        rng = np.random.default_rng(seed)
        d, w = cfg.n_hidden, cfg.segment
        self.enc = RecurrentNet(cfg.cell, d, d, 1, 1, dtype=cfg.dtype,
                                seed=int(rng.integers(0, 2**31 - 1)))
        self.dec = RecurrentNet(cfg.cell, d, d, 1, 1, dtype=cfg.dtype, seed=0)
        sd = self.enc.state_dict()
        self._rnn_names = [k for k in sd if k.startswith("rnn.")]
        self.n_rnn = sum(sd[k].size for k in self._rnn_names)
        shapes = [(k, sd[k].shape) for k in self._rnn_names]
        shapes += [("emb.weight", (d, w)), ("emb.bias", (d,)), ("pos_emb", (cfg.n_out, cfg.d_pos))]
        if cfg.channel_id:
            shapes.append(("channel_emb", (cfg.n_channels, d - cfg.d_pos)))
        shapes += [("out.weight", (w, d)), ("out.bias", (w,))]
        self._layout, o = [], 0
        for name, shape in shapes:
            self._layout.append((name, o, tuple(shape)))
            o += math.prod(shape)
        self.params = np.zeros(o, self.dtype)
        self.params[:self.n_rnn] = self.enc.params[:self.n_rnn]  # the cell's own init
        v = self.views()
        be = 1.0 / math.sqrt(w)
        v["emb.weight"][...] = rng.uniform(-be, be, (d, w))
        v["emb.bias"][...] = rng.uniform(-be, be, d)
        v["pos_emb"][...] = rng.standard_normal(v["pos_emb"].shape)
        if cfg.channel_id:
            v["channel_emb"][...] = rng.standard_normal(v["channel_emb"].shape)
        bo = 1.0 / math.sqrt(d)
        v["out.weight"][...] = rng.uniform(-bo, bo, (w, d))
        v["out.bias"][...] = rng.uniform(-bo, bo, w)
        self._zeros: dict = {}
        self.reset_optimizer()

    # ---- parameters ----------------------------------------------------------------------
    def views(self, flat=None) -> dict[str, np.ndarray]:
        flat = self.params if flat is None else flat
        return {n: flat[o:o + math.prod(s)].reshape(s) for n, o, s in self._layout}

    def state_dict(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self.views().items()}

    def reset_optimizer(self) -> None:
        self._m = np.zeros_like(self.params)
        self._v = np.zeros_like(self.params)
        self._t = 0

    def _sync(self) -> None:
        """Copy the cell's weights into the encoder and decoder nets (they share them)."""
        src = self.params[:self.n_rnn]
        self.enc.params[:self.n_rnn] = src
        self.dec.params[:self.n_rnn] = src

    def _zero(self, shape):
        z = self._zeros.get(shape)
        if z is None:
            self._zeros.clear()
            z = self._zeros[shape] = np.zeros(shape, self.dtype)
        return z

    # ---- forward / backward --------------------------------------------------------------
    def forward(self, X, channels, mask=None, keep_cache=False):
        """Forecasts ``(N, horizon)`` from normalised windows ``X (N, L)`` (the last
        ``n * w`` steps are read) of channels ``channels (N,)`` int64; `mask` is a dropout
        mask ``(N * m, d)`` (training) or None. Returns ``(yhat, cache)``."""
        cfg = self.cfg
        N = X.shape[0]
        w, n, m, d = cfg.segment, cfg.n_seg, cfg.n_out, cfg.n_hidden
        v = self.views()
        self._sync()
        xs = np.ascontiguousarray(X[:, X.shape[1] - n * w:], dtype=self.dtype).reshape(N, n, w)
        E, pre = embed_forward(xs, v["emb.weight"], v["emb.bias"])
        _, final, cache_e = self.enc.forward_sequence(E, keep_cache=keep_cache)
        chan = v.get("channel_emb")
        D = decoder_inputs(v["pos_emb"], chan, channels)
        lstm = cfg.cell == "lstm"
        if lstm:
            h0 = (np.repeat(final[0], m, axis=1), np.repeat(final[1], m, axis=1))
        else:
            h0 = np.repeat(final, m, axis=1)
        _, final_d, cache_d = self.dec.forward_sequence(D[:, None, :], state=h0,
                                                        keep_cache=keep_cache)
        hy = (final_d[0] if lstm else final_d)[0]  # (N * m, d)
        z = hy if mask is None else hy * mask
        out = linear_forward(z, v["out.weight"], v["out.bias"])  # (N * m, w)
        yhat = out.reshape(N, m * w)[:, :cfg.horizon]
        cache = None
        if keep_cache:
            cache = dict(xs=xs, pre=pre, cache_e=cache_e, cache_d=cache_d, z=z, mask=mask,
                         channels=channels, N=N)
        return yhat, cache

    def backward(self, cache, dyhat) -> np.ndarray:
        """Flat gradient (laid out like ``params``) from ``dyhat (N, horizon)``."""
        cfg = self.cfg
        N = cache["N"]
        w, n, m, d = cfg.segment, cfg.n_seg, cfg.n_out, cfg.n_hidden
        v = self.views()
        grads = np.zeros_like(self.params)
        g = self.views(grads)
        dfull = np.zeros((N, m * w), self.dtype)
        dfull[:, :cfg.horizon] = dyhat
        dz, g["out.weight"][...], g["out.bias"][...] = linear_backward(
            dfull.reshape(N * m, w), cache["z"], v["out.weight"])
        dhy = dz if cache["mask"] is None else dz * cache["mask"]
        lstm = cfg.cell == "lstm"
        dstate = (dhy[None], np.zeros_like(dhy)[None]) if lstm else dhy[None]
        dD, d0, gd = self.dec.backward_sequence(cache["cache_d"], self._zero((N * m, 1, d)), dstate)
        dpos, dchan = decoder_inputs_backward(dD[:, 0, :], m, cfg.d_pos, cache["channels"],
                                              cfg.n_channels if cfg.channel_id else 0)
        g["pos_emb"][...] = dpos
        if dchan is not None:
            g["channel_emb"][...] = dchan
        if lstm:
            dN = tuple(p.reshape(1, N, m, d).sum(axis=2) for p in d0)
        else:
            dN = d0.reshape(1, N, m, d).sum(axis=2)
        dE, _, ge = self.enc.backward_sequence(cache["cache_e"], self._zero((N, n, d)), dN)
        g["emb.weight"][...], g["emb.bias"][...] = embed_backward(dE, cache["pre"], cache["xs"])
        grads[:self.n_rnn] = ge[:self.n_rnn] + gd[:self.n_rnn]
        return grads

    def step(self, grads, lr, weight_decay=0.0, clip_norm=None) -> float:
        """Clip the global norm (if set), then one Adam step; returns the norm."""
        if clip_norm is not None:
            norm = optim.clip_grad_norm(grads, float(clip_norm))
        else:
            norm = optim.global_norm(grads)
        if not np.isfinite(norm):
            raise NumericalError(f"the gradient norm is {norm}: training diverged (lower lr or "
                                 "set clip_norm)")
        self._t += 1
        optim.adam_step(self.params, grads, self._m, self._v, self._t, float(lr), 0.9, 0.999,
                        1e-8, float(weight_decay), False)
        return float(norm)
