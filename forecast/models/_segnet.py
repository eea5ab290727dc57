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
  has all ``d`` entries) and its initial state ``h_n`` of window ``i``. Computed without
  forming those ``N * m`` rows: the input product splits into ``m`` position rows and
  ``C`` channel rows, and the recurrent product is one per window (`SegNet._decode`,
  the ``*_shared_step`` kernels of `forecast.kernels.cells`);
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
from forecast.kernels import cells, optim
from forecast.nn import CELLS, RecurrentNet

__all__ = ["SegConfig", "SegNet", "embed_forward", "embed_backward", "dropout_mask",
           "linear_forward", "linear_backward"]


# ---- pieces ------------------------------------------------------------------------------
def embed_forward(xs, w, b):
    """Segment embedding: ``relu(xs @ w.T + b)``; returns ``(E, pre)``. One 2-D product
    over all segments (a 3-D ``xs @ w.T`` is a loop of small products, 3x slower)."""
    pre = (xs.reshape(-1, xs.shape[-1]) @ w.T).reshape(xs.shape[:-1] + (w.shape[0],))
    pre += b
    return np.maximum(pre, 0), pre


def embed_backward(dE, pre, xs):
    """Gradients ``(dw, db)`` of the segment embedding (``dxs`` is not needed)."""
    dpre = dE * (pre > 0)  # (np.where here took 6x as long)
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


def _row_chunks(n_rows: int) -> int:
    """Parallel chunks of the decoder step: about 64 rows each (rows never interact, so
    the split changes no bits)."""
    return max(1, min(64, n_rows // 64))


#: windows per block of a prediction-only decoder pass
_PREDICT_ROWS = 1024


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
        """Copy the cell's weights into the encoder net (the decoder reads them here)."""
        self.enc.params[:self.n_rnn] = self.params[:self.n_rnn]

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
        hy, cache_d = self._decode(v, final, channels, N, keep_cache)
        hy = hy.reshape(N * m, d)
        z = hy if mask is None else hy * mask
        out = linear_forward(z, v["out.weight"], v["out.bias"])  # (N * m, w)
        yhat = out.reshape(N, m * w)[:, :cfg.horizon]
        cache = None
        if keep_cache:
            cache = dict(xs=xs, pre=pre, cache_e=cache_e, cache_d=cache_d, z=z, mask=mask, N=N)
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
        dN = self._decode_backward(v, g, cache["cache_d"], dhy.reshape(N, m, d))
        dE, _, ge = self.enc.backward_sequence(cache["cache_e"], self._zero((N, n, d)), dN)
        g["emb.weight"][...], g["emb.bias"][...] = embed_backward(dE, cache["pre"], cache["xs"])
        grads[:self.n_rnn] += ge[:self.n_rnn]
        return grads

    # ---- the parallel decoder: one step of the cell per (window, output segment) -------
    def _decode(self, v, final, channels, N, keep_cache):
        """Decoder states ``(N, m, d)`` from the encoder's final state, and their cache.

        Row ``(i, j)`` is the cell's step from window ``i``'s state with input
        ``[pos_emb[j], channel_emb[channels[i]]]``. The input product splits into a
        position part ``P (m, G*d)`` and a channel part ``Q (C, G*d)``, and the recurrent
        product is one per window, not one per segment (`forecast.kernels.cells`'s
        ``*_shared_step``): the same function as running the cell over ``N * m`` rows."""
        cfg = self.cfg
        m, d, dp = cfg.n_out, cfg.n_hidden, cfg.d_pos
        w_ih, w_hh = v["rnn.weight_ih_l0"], v["rnn.weight_hh_l0"]
        P = v["pos_emb"] @ w_ih[:, :dp].T + v["rnn.bias_ih_l0"]
        chan = v.get("channel_emb")
        if chan is None:
            Q = np.zeros((1, w_ih.shape[0]), self.dtype)
            channels = np.zeros(N, np.int64)
        else:
            Q = chan @ w_ih[:, dp:].T
            channels = np.ascontiguousarray(channels, dtype=np.int64)
        lstm = cfg.cell == "lstm"
        h = np.ascontiguousarray((final[0] if lstm else final)[0])  # (N, d)
        gh = h @ w_hh.T + v["rnn.bias_hh_l0"]
        c0 = np.ascontiguousarray(final[1][0]) if lstm else None  # the LSTM's cell state
        out = np.empty((N, m, d), self.dtype)
        # prediction: row blocks share one cache buffer (no (N, m, G, d) array at once)
        step = N if keep_cache else min(N, _PREDICT_ROWS)
        cache = None
        for a in range(0, N, max(step, 1)):
            b = min(N, a + step)
            nch = _row_chunks(b - a)
            if cfg.cell == "rnn":
                cells.rnn_shared_step(P, Q, channels[a:b], gh[a:b], nch, out[a:b])
                continue
            k = 3 if cfg.cell == "gru" else 5
            if cache is None or cache.shape[0] != b - a:
                cache = np.empty((b - a, m, k, d), self.dtype)
            if cfg.cell == "gru":
                cells.gru_shared_step(P, Q, channels[a:b], gh[a:b], h[a:b], nch, out[a:b], cache)
            else:
                cells.lstm_shared_step(P, Q, channels[a:b], gh[a:b], c0[a:b], nch, out[a:b], cache)
        if not keep_cache:
            return out, None
        return out, dict(cache=cache, out=out, gh=gh, h=h, c0=c0, channels=channels)

    def _decode_backward(self, v, g, dc, dout):
        """Backward of `_decode` for ``dout (N, m, d)``: adds the decoder's parameter
        gradients into the views ``g`` and returns the gradient of the encoder's final
        state (``(dh, dc)`` for an LSTM), shaped like the encoder's ``final``."""
        cfg = self.cfg
        N, m, d = dout.shape
        dp = cfg.d_pos
        w_ih, w_hh = v["rnn.weight_ih_l0"], v["rnn.weight_hh_l0"]
        G = w_ih.shape[0]
        nch = _row_chunks(N)
        dout = np.ascontiguousarray(dout, dtype=self.dtype)
        dgi = np.empty((N, m, G), self.dtype)
        dgh = np.empty((N, G), self.dtype)
        dstate = np.empty((N, d), self.dtype)
        if cfg.cell == "gru":
            cells.gru_shared_step_backward(dout, dc["cache"], dc["gh"], dc["h"], nch, dgi, dgh,
                                           dstate)
        elif cfg.cell == "lstm":
            cells.lstm_shared_step_backward(dout, dc["cache"], dc["c0"], nch, dgi, dgh, dstate)
        else:
            cells.rnn_shared_step_backward(dout, dc["out"], nch, dgi, dgh)
        per_pos = dgi.sum(axis=0)  # (m, G)
        g["rnn.weight_ih_l0"][:, :dp] += per_pos.T @ v["pos_emb"]
        g["rnn.bias_ih_l0"][...] += per_pos.sum(axis=0)
        g["pos_emb"][...] = per_pos @ w_ih[:, :dp]
        if cfg.channel_id:
            onehot = dc["channels"][None, :] == np.arange(cfg.n_channels)[:, None]
            per_chan = onehot.astype(self.dtype) @ dgi.sum(axis=1)  # (C, G), no np.add.at
            g["rnn.weight_ih_l0"][:, dp:] += per_chan.T @ v["channel_emb"]
            g["channel_emb"][...] = per_chan @ w_ih[:, dp:]
        g["rnn.weight_hh_l0"][...] += dgh.T @ dc["h"]
        g["rnn.bias_hh_l0"][...] += dgh.sum(axis=0)
        dh = dgh @ w_hh
        if cfg.cell == "gru":
            dh += dstate
        if cfg.cell == "lstm":
            return dh[None], dstate[None]
        return dh[None]

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
