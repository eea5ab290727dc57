"""The network behind `RNNForecaster`: a recurrent encoder (`forecast.nn.RecurrentNet`,
through its ``forward_sequence`` / ``backward_sequence``), an optional recurrent decoder
and the dense heads, trained with one Adam over every parameter.

Heads by strategy (``B`` windows, ``H`` horizon, ``Q`` outputs per step, ``K`` known
covariates, ``h_T`` the encoder's last top-layer state):

* ``direct``: ``raw (B, H*Q) = W h_T + W_k vec(x_future) + b`` (many-to-many).
* ``recursive``: ``raw (B, 1*Q) = W h_T + W_k x_future[:, 0] + b``: one step, rolled
  forward at prediction time by feeding each forecast back as the next input.
* ``seq2seq``: a decoder RNN starts from the encoder's final state and reads, at each
  horizon step, its position ``h / H`` and the known covariates; ``raw_h = W d_h + b``.

Options on top: a *highway* (LSTNet's autoregressive shortcut: a linear map of the last
``A`` target values, and with ``level`` the window's normalisation offset, added to every
step), quantile outputs made non-crossing
(`intervals.non_crossing`) and a three-class direction head (down / flat / up) on h_T.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forecast.errors import NumericalError
from forecast.kernels import optim
from forecast.models.intervals import non_crossing, non_crossing_backward
from forecast.nn import RecurrentNet

__all__ = ["NetConfig", "SeqNet"]


@dataclass(frozen=True)
class NetConfig:
    cell: str
    n_input: int
    n_hidden: int
    n_layers: int
    horizon: int
    n_known: int = 0
    strategy: str = "direct"
    n_quantiles: int = 1
    median_index: int = 0
    highway: int = 0
    level: bool = False  # the highway vector ends with the window's level (its offset)
    direction: bool = False
    activation: str = "tanh"
    dtype: str = "float32"


class SeqNet:
    """Parameters: ``enc.params``, ``dec.params`` (seq2seq) and ``head`` (flat vectors)."""

    def __init__(self, cfg: NetConfig, seed: int):
        self.cfg = cfg
        self.dtype = np.dtype(cfg.dtype)
        rng = np.random.default_rng(seed)
        seeds = rng.integers(0, 2**31 - 1, size=3)
        self.enc = RecurrentNet(cfg.cell, cfg.n_input, cfg.n_hidden, cfg.n_layers, 1,
                                cfg.activation, cfg.dtype, int(seeds[0]))
        self.dec = None
        if cfg.strategy == "seq2seq":
            self.dec = RecurrentNet(cfg.cell, 1 + cfg.n_known, cfg.n_hidden, cfg.n_layers, 1,
                                    cfg.activation, cfg.dtype, int(seeds[1]))
        self._layout = self._make_layout()
        size = sum(int(np.prod(s)) for _, _, s in self._layout)
        self.head = np.zeros(size, self.dtype)
        self._init_head(np.random.default_rng(int(seeds[2])))
        self.reset_optimizer()

    # ---- parameters ----------------------------------------------------------------------
    @property
    def steps_out(self) -> int:
        return 1 if self.cfg.strategy == "recursive" else self.cfg.horizon

    def _make_layout(self):
        c, Hd = self.cfg, self.cfg.n_hidden
        Q = c.n_quantiles
        shapes = []
        if c.strategy == "direct":
            shapes += [("W", (c.horizon * Q, Hd)), ("b", (c.horizon * Q,))]
            if c.n_known:
                shapes.append(("Wk", (c.horizon * Q, c.horizon * c.n_known)))
        else:
            shapes += [("W", (Q, Hd)), ("b", (Q,))]
            if c.strategy == "recursive" and c.n_known:
                shapes.append(("Wk", (Q, c.n_known)))
        if c.highway:
            shapes.append(("Wa", (self.steps_out, c.highway + int(c.level))))
        if c.direction:
            shapes += [("Wd", (3, Hd)), ("bd", (3,))]
        layout, off = [], 0
        for name, shape in shapes:
            layout.append((name, off, shape))
            off += int(np.prod(shape))
        return layout

    def views(self, flat=None) -> dict[str, np.ndarray]:
        flat = self.head if flat is None else flat
        return {n: flat[o:o + int(np.prod(s))].reshape(s) for n, o, s in self._layout}

    def _init_head(self, rng) -> None:
        v = self.views()
        bound = 1.0 / np.sqrt(self.cfg.n_hidden)
        for name in ("W", "Wd"):
            if name in v:
                v[name][...] = rng.uniform(-bound, bound, size=v[name].shape)
        if "Wk" in v:
            v["Wk"][...] = 0.0
        if "Wa" in v:
            v["Wa"][...] = 0.0  # the highway starts silent

    def vectors(self) -> list[np.ndarray]:
        out = [self.enc.params]
        if self.dec is not None:
            out.append(self.dec.params)
        out.append(self.head)
        return out

    def get_arrays(self) -> dict[str, np.ndarray]:
        out = {"enc_params": self.enc.params.copy(), "head_params": self.head.copy()}
        if self.dec is not None:
            out["dec_params"] = self.dec.params.copy()
        return out

    def set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        pairs = [(self.enc.params, "enc_params"), (self.head, "head_params")]
        if self.dec is not None:
            pairs.append((self.dec.params, "dec_params"))
        for target, name in pairs:
            src = np.asarray(arrays[name])
            if src.shape != target.shape:
                raise ValueError(f"{name} has shape {src.shape}, expected {target.shape}")
            target[...] = src

    def reset_optimizer(self) -> None:
        self._m = [np.zeros_like(p) for p in self.vectors()]
        self._v = [np.zeros_like(p) for p in self.vectors()]
        self._t = 0

    def step(self, grads: list[np.ndarray], lr: float, weight_decay: float,
             clip_norm: float | None, beta1=0.9, beta2=0.999, eps=1e-8) -> float:
        """Clip the global norm, then one Adam step (L2 decay as ``torch.optim.Adam``)."""
        norm = float(np.sqrt(sum(float(np.dot(g, g)) for g in grads)))
        if not np.isfinite(norm):
            raise NumericalError(f"the gradient norm is {norm}: training diverged (lower lr, "
                                 "set clip_norm or scale the data)")
        scale = clip_norm / (norm + 1e-6) if clip_norm and norm > clip_norm else 1.0
        self._t += 1
        c1, c2 = 1.0 - beta1 ** self._t, 1.0 - beta2 ** self._t
        for p, g, m, v in zip(self.vectors(), grads, self._m, self._v):
            optim.adam_update(p, np.ascontiguousarray(g, dtype=p.dtype), m, v, float(scale),
                              float(weight_decay or 0.0), beta1, beta2, float(lr), c1, c2, eps)
        return norm

    # ---- forward / backward --------------------------------------------------------------
    @staticmethod
    def _top(final):
        h = final[0] if isinstance(final, tuple) else final
        return h[-1]

    def _dec_inputs(self, F, B):
        H = self.cfg.horizon
        pos = np.broadcast_to(((np.arange(H) + 1.0) / H)[None, :, None], (B, H, 1))
        parts = [pos] if F is None else [pos, F]
        return np.ascontiguousarray(np.concatenate(parts, axis=2), dtype=self.dtype)

    def encoder_silent(self) -> bool:
        """True when the encoder's state cannot reach any output: a ``direct`` or
        ``recursive`` head whose recurrent weights ``W`` are all zero and no direction
        head. That is the linear start (`set_linear_start`) before training moves ``W``,
        and a fit whose early stopping kept it. A prediction then skips the encoder:
        ``0 @ h_T`` is zero for every finite state (a GRU's or LSTM's is bounded), so the
        forecasts are the same numbers as through the encoder (tested), for a fraction
        of the work."""
        c = self.cfg
        return (c.strategy in ("direct", "recursive") and not c.direction
                and not self.views()["W"].any())

    def forward(self, x, F=None, hw=None, keep_cache=True):
        """``x (B, T, n_input)``, ``F (B, horizon, K)``, ``hw (B, A)`` the highway inputs.
        Returns ``(out (B, steps_out, Q), logits (B, 3) or None, cache)``;
        ``keep_cache=False`` for prediction (the cache cannot feed `backward` then)."""
        c = self.cfg
        v = self.views()
        x = np.ascontiguousarray(x, dtype=self.dtype)
        B = x.shape[0]
        if not keep_cache and self.encoder_silent():
            final, ecache = None, None
            hT = np.zeros((B, c.n_hidden), self.dtype)
        else:
            final, ecache = self.enc.forward_final(x, keep_cache=keep_cache)
            hT = self._top(final)
        cache = {"ecache": ecache, "hT": hT, "final": final, "B": B}
        Q = c.n_quantiles
        if c.strategy == "direct":
            raw = hT @ v["W"].T + v["b"]
            if c.n_known:
                Ff = F.reshape(B, -1).astype(self.dtype)
                raw = raw + Ff @ v["Wk"].T
                cache["Ff"] = Ff
            raw = raw.reshape(B, c.horizon, Q)
        elif c.strategy == "recursive":
            raw = hT @ v["W"].T + v["b"]
            if c.n_known:
                F0 = F[:, 0].astype(self.dtype)
                raw = raw + F0 @ v["Wk"].T
                cache["F0"] = F0
            raw = raw[:, None, :]
        else:
            din = self._dec_inputs(F, B)
            dhs, _, dcache = self.dec.forward_sequence(din, state=final, keep_cache=keep_cache)
            raw = dhs @ v["W"].T + v["b"]
            cache.update(dhs=dhs, dcache=dcache)
        if c.highway:
            hw = np.asarray(hw, dtype=self.dtype)
            raw = raw + (hw @ v["Wa"].T)[:, :, None]
            cache["hw"] = hw
        if Q > 1:
            out, slope = non_crossing(raw, c.median_index)
            cache["slope"] = slope
        else:
            out = raw
        logits = hT @ v["Wd"].T + v["bd"] if c.direction else None
        return out, logits, cache

    def backward(self, cache, dout, dlogits=None) -> list[np.ndarray]:
        c = self.cfg
        v = self.views()
        gh = np.zeros_like(self.head)
        g = self.views(gh)
        B, hT = cache["B"], cache["hT"]
        dout = np.asarray(dout, dtype=self.dtype)
        draw = non_crossing_backward(dout, cache["slope"], c.median_index) \
            if c.n_quantiles > 1 else dout
        if c.highway:
            g["Wa"][...] = draw.sum(axis=2).T @ cache["hw"]
        dstate_top = np.zeros_like(hT)
        grads_dec = None
        dstate0 = None
        if c.strategy in ("direct", "recursive"):
            d2 = draw.reshape(B, -1)
            g["W"][...] = d2.T @ hT
            g["b"][...] = d2.sum(axis=0)
            if "Ff" in cache:
                g["Wk"][...] = d2.T @ cache["Ff"]
            if "F0" in cache:
                g["Wk"][...] = d2.T @ cache["F0"]
            dstate_top += d2 @ v["W"]
        else:
            dhs = cache["dhs"]
            Hd = dhs.shape[2]
            g["W"][...] = draw.reshape(-1, draw.shape[2]).T @ dhs.reshape(-1, Hd)
            g["b"][...] = draw.sum(axis=(0, 1))
            ddhs = np.ascontiguousarray(draw @ v["W"])
            _, dstate0, grads_dec = self.dec.backward_sequence(cache["dcache"], ddhs)
        if dlogits is not None:
            g["Wd"][...] = dlogits.T @ hT
            g["bd"][...] = dlogits.sum(axis=0)
            dstate_top += dlogits @ v["Wd"]
        L, Hd = self.cfg.n_layers, self.cfg.n_hidden
        if dstate0 is None:
            dh = np.zeros((L, B, Hd), self.dtype)
            dstate = (dh, np.zeros_like(dh)) if c.cell == "lstm" else dh
        else:
            dstate = tuple(a.copy() for a in dstate0) if c.cell == "lstm" else dstate0.copy()
        (dstate[0] if c.cell == "lstm" else dstate)[-1] += dstate_top
        _, grads_enc = self.enc.backward_final(cache["ecache"], dstate)
        out = [grads_enc]
        if self.dec is not None:
            out.append(grads_dec)
        out.append(gh)
        return out

    # ---- recursive generation ------------------------------------------------------------
    def rollout(self, x, F, hw, steps: int, feed) -> np.ndarray:
        """Generate `steps` forecasts from seed windows ``x``: after each step, ``feed(k,
        point (B,))`` returns the next input row ``(B, n_input)`` and the highway inputs
        are shifted by the new point. Returns ``(B, steps, Q)``."""
        c = self.cfg
        v = self.views()
        x = np.ascontiguousarray(x, dtype=self.dtype)
        silent = self.encoder_silent()  # see `forward`: then h_T stays zero throughout
        state = None if silent else self.enc.forward_final(x, keep_cache=False)[0]
        h_silent = np.zeros((len(x), c.n_hidden), self.dtype) if silent else None
        hw = None if hw is None else np.array(hw, dtype=self.dtype)
        outs = []
        for k in range(steps):
            hT = h_silent if silent else self._top(state)
            raw = hT @ v["W"].T + v["b"]
            if c.n_known:
                raw = raw + F[:, k].astype(self.dtype) @ v["Wk"].T
            if c.highway:
                raw = raw + (hw @ v["Wa"].T)
            raw = raw[:, None, :]
            out = non_crossing(raw, c.median_index)[0] if c.n_quantiles > 1 else raw
            outs.append(out[:, 0])
            point = out[:, 0, c.median_index]
            if k + 1 < steps:
                nxt = np.ascontiguousarray(feed(k, point)[:, None, :], dtype=self.dtype)
                if not silent:
                    state, _ = self.enc.forward_final(nxt, state=state, keep_cache=False)
                if c.highway:  # shift the lags; the level (last, if any) stays
                    A = c.highway
                    hw = np.concatenate([hw[:, 1:A], point[:, None], hw[:, A:]], axis=1)
        return np.stack(outs, axis=1)
