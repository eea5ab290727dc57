"""Low-level recurrent network API, shaped like PyTorch so results can be cross-checked.

>>> from forecast.nn import RecurrentNet
>>> net = RecurrentNet(cell="lstm", n_input=7, n_hidden=64, n_layers=2, n_output=24,
...                    dtype="float64", seed=0)
>>> sd = net.state_dict()          # names/shapes of torch.nn.LSTM(batch_first=True) + Linear
>>> yhat = net.forward(x)          # (batch, time, n_input) -> (batch, n_output)
>>> loss, grads = net.loss_and_grad(x, y, loss="mse")
>>> net.fit_batch(x, y)            # one Adam step, returns the loss

Every parameter lives in one flat vector ``net.params``; ``state_dict()`` returns copies
of its views, named exactly as PyTorch names them (``rnn.weight_ih_l0`` ... and
``head.weight``/``head.bias`` of a ``torch.nn.Linear`` applied to the last hidden
state). Gate order is PyTorch's (LSTM ``i, f, g, o``; GRU ``r, z, n``).

Variable-length batches pass ``lengths`` (right padding): padded steps do not change
the state and get no gradient, and the head reads the state after each sample's last
valid step, so a padded sample gives the same result as running it alone (to rounding:
a BLAS kernel may round a row differently in a call with another number of rows).

The batch is split into chunks whose number depends only on the batch size, and
per-chunk results are combined in a fixed order, so for a fixed seed two runs give
bit-identical weights whatever the number of threads (on one machine: another CPU's BLAS
kernels may round differently, so results there agree to rounding, not bits).
"""


from __future__ import annotations

import math

import numpy as np

from forecast.errors import ConfigError, DataError, NumericalError
from forecast.kernels import cells, losses, optim
from forecast.nn.runtime import (Adam, BufferPool, n_chunks, n_infer_chunks, pin_kernel_blas, stack_layers,
                                 threads_for)

__all__ = ["RecurrentNet", "Adam", "CELLS", "ACTIVATIONS", "LOSSES", "DTYPES"]

CELLS = {"rnn": 1, "gru": 3, "lstm": 4}
ACTIVATIONS = {"tanh": cells.ACT_TANH, "relu": cells.ACT_RELU, "leaky_relu": cells.ACT_LEAKY_RELU}
LOSSES = ("mse", "mae", "huber", "pinball", "cross_entropy")
DTYPES = ("float32", "float64")


class RecurrentNet:
    """A stack of recurrent layers and a dense head, trained with BPTT and Adam.

    Parameters
    ----------
    cell: ``"rnn"`` (Elman), ``"lstm"`` or ``"gru"``.
    n_input, n_hidden, n_layers, n_output: sizes (``n_layers >= 1``).
    activation: Elman RNN only: ``"tanh"``, ``"relu"`` or ``"leaky_relu"``.
    dtype: ``"float32"`` or ``"float64"``.
    seed: all randomness (initial weights) comes from this seed.
    leaky_slope: negative slope of ``leaky_relu`` (> 0).
    optimizer: an :class:`Adam` (defaults to PyTorch's Adam defaults).
    """

    def __init__(self, cell="lstm", n_input=1, n_hidden=32, n_layers=1, n_output=1,
                 activation="tanh", dtype="float64", seed=0, *, leaky_slope=0.01,
                 optimizer: Adam | None = None):
        if cell not in CELLS:
            raise ConfigError(f"cell must be one of {sorted(CELLS)}, got {cell!r}")
        for name, value in (("n_input", n_input), ("n_hidden", n_hidden),
                            ("n_layers", n_layers), ("n_output", n_output)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if activation not in ACTIVATIONS:
            raise ConfigError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        if cell != "rnn" and activation != "tanh":
            raise ConfigError(f"activation={activation!r} applies to cell='rnn' only; "
                              f"{cell.upper()} gates use sigmoid and tanh")
        try:
            dtype = np.dtype(dtype).name
        except TypeError:
            dtype = str(dtype)
        if dtype not in DTYPES:
            raise ConfigError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        if not (leaky_slope > 0 and np.isfinite(leaky_slope)):
            raise ConfigError(f"leaky_slope must be a positive number, got {leaky_slope!r}")
        self.cell = cell
        self.n_input = int(n_input)
        self.n_hidden = int(n_hidden)
        self.n_layers = int(n_layers)
        self.n_output = int(n_output)
        self.activation = activation
        self.dtype = np.dtype(str(dtype))
        self.seed = seed
        self.leaky_slope = float(leaky_slope)
        self.optimizer = optimizer if optimizer is not None else Adam()
        self.optimizer.validate()
        self._layout = self._make_layout()
        size = sum(int(np.prod(shape)) for _, _, shape in self._layout)
        self.params = np.zeros(size, self.dtype)
        self._views = self._bind(self.params)
        self._init_weights(np.random.default_rng(seed))
        self._pool = BufferPool()
        self.reset_optimizer()

    # ------------------------------------------------------------------ layout
    def _make_layout(self):
        G, H = CELLS[self.cell], self.n_hidden
        layout, offset = [], 0
        for k in range(self.n_layers):
            n_in = self.n_input if k == 0 else H
            for name, shape in ((f"rnn.weight_ih_l{k}", (G * H, n_in)),
                                (f"rnn.weight_hh_l{k}", (G * H, H)),
                                (f"rnn.bias_ih_l{k}", (G * H,)),
                                (f"rnn.bias_hh_l{k}", (G * H,))):
                layout.append((name, offset, shape))
                offset += int(np.prod(shape))
        for name, shape in (("head.weight", (self.n_output, H)), ("head.bias", (self.n_output,))):
            layout.append((name, offset, shape))
            offset += int(np.prod(shape))
        return layout

    def _bind(self, flat):
        """Named views into a flat vector laid out like ``params``."""
        return {name: flat[o:o + math.prod(shape)].reshape(shape) for name, o, shape in self._layout}

    @property
    def n_params(self) -> int:
        return self.params.shape[0]

    def _init_weights(self, rng):
        """Orthogonal recurrent blocks, Glorot-uniform input blocks, LSTM forget bias 1.

        Drawn in float64 so float32 and float64 nets of one seed start from the same
        values (rounded)."""
        G, H = CELLS[self.cell], self.n_hidden
        for k in range(self.n_layers):
            n_in = self.n_input if k == 0 else H
            w_ih = np.empty((G * H, n_in))
            w_hh = np.empty((G * H, H))
            a = np.sqrt(6.0 / (n_in + H))
            for g in range(G):
                w_ih[g * H:(g + 1) * H] = rng.uniform(-a, a, size=(H, n_in))
                q, r = np.linalg.qr(rng.standard_normal((H, H)))
                w_hh[g * H:(g + 1) * H] = q * np.sign(np.diag(r))
            self._views[f"rnn.weight_ih_l{k}"][...] = w_ih
            self._views[f"rnn.weight_hh_l{k}"][...] = w_hh
            self._views[f"rnn.bias_ih_l{k}"][...] = 0.0
            self._views[f"rnn.bias_hh_l{k}"][...] = 0.0
            if self.cell == "lstm":
                self._views[f"rnn.bias_ih_l{k}"][H:2 * H] = 1.0
        bound = 1.0 / np.sqrt(H)
        self._views["head.weight"][...] = rng.uniform(-bound, bound, size=(self.n_output, H))
        self._views["head.bias"][...] = 0.0

    def release_buffers(self) -> None:
        """Free the large work arrays kept between calls (they are re-made on demand)."""
        self._pool.clear()

    def reset_optimizer(self) -> None:
        """Forget Adam's moments and step count."""
        self._m = np.zeros_like(self.params)
        self._v = np.zeros_like(self.params)
        self._step = 0

    # ------------------------------------------------------------------ state dict
    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter, named as ``torch.nn.{RNN,LSTM,GRU}`` + ``Linear``."""
        return {name: view.copy() for name, view in self._views.items()}

    def load_state_dict(self, state: dict) -> None:
        """Load arrays named as :meth:`state_dict` returns (e.g. from a PyTorch model)."""
        missing = [n for n in self._views if n not in state]
        extra = [n for n in state if n not in self._views]
        if missing or extra:
            raise ConfigError(f"state dict does not match this {self.cell} net: "
                              f"missing {missing}, unexpected {extra}")
        for name, view in self._views.items():
            arr = np.asarray(state[name])
            if arr.shape != view.shape:
                raise ConfigError(f"state dict entry {name!r} has shape {arr.shape}, "
                                  f"expected {view.shape}")
            if not np.all(np.isfinite(arr)):
                raise ConfigError(f"state dict entry {name!r} contains NaN or infinite values")
        for name, view in self._views.items():
            view[...] = np.asarray(state[name])

    def grads_to_dict(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """Split a flat gradient vector into copies named like :meth:`state_dict`."""
        return {name: view.copy() for name, view in self._bind(flat).items()}

    # ------------------------------------------------------------------ checks
    def _check_x(self, x, lengths):
        x = np.asarray(x)
        if x.ndim != 3 or x.shape[2] != self.n_input or x.shape[0] == 0 or x.shape[1] == 0:
            raise DataError(f"x must have shape (batch, time, {self.n_input}), got {x.shape}")
        if not np.issubdtype(x.dtype, np.number):
            raise DataError(f"x must be numeric, got dtype {x.dtype}")
        x = np.ascontiguousarray(x, dtype=self.dtype)
        if not np.all(np.isfinite(x)):
            raise DataError("x contains NaN or infinite values; clean or impute the inputs first")
        B, T = x.shape[:2]
        if lengths is None:
            lengths = np.full(B, T, np.int64)
        else:
            raw = np.asarray(lengths)
            if not (np.issubdtype(raw.dtype, np.integer)
                    or (np.issubdtype(raw.dtype, np.floating) and np.all(raw == np.round(raw)))):
                raise DataError(f"lengths must be whole numbers of steps, got {raw!r}")
            lengths = np.ascontiguousarray(raw, dtype=np.int64)
            if lengths.shape != (B,):
                raise DataError(f"lengths must have shape ({B},), got {lengths.shape}")
            if lengths.min() < 1 or lengths.max() > T:
                raise DataError(f"lengths must be between 1 and {T} (the padded length), "
                                f"got min {lengths.min()} max {lengths.max()}")
        return x, lengths

    def _initial_state(self, state, B):
        L, H = self.n_layers, self.n_hidden
        if state is None:
            h = np.zeros((L, B, H), self.dtype)
            return (h, np.zeros_like(h)) if self.cell == "lstm" else h
        parts = state if self.cell == "lstm" else (state,)
        if self.cell == "lstm" and (not isinstance(state, tuple) or len(state) != 2):
            raise DataError("an LSTM state is a tuple (h, c) of arrays shaped (n_layers, batch, n_hidden)")
        out = []
        for p in parts:
            p = np.ascontiguousarray(p, dtype=self.dtype)
            if p.shape != (L, B, H):
                raise DataError(f"initial state must have shape {(L, B, H)}, got {p.shape}")
            if not np.all(np.isfinite(p)):
                raise DataError("the initial state contains NaN or infinite values")
            out.append(p)
        return tuple(out) if self.cell == "lstm" else out[0]

    # ------------------------------------------------------------------ recurrent stack
    def forward_sequence(self, x, lengths=None, state=None, keep_cache=True):
        """Run the recurrent stack over whole sequences.

        Returns ``(hs, final_state, cache)``: ``hs (B, T, H)`` holds the top layer's
        state at every step (zero at padded steps), ``final_state`` is ``h_n`` (or
        ``(h_n, c_n)`` for LSTM) shaped ``(n_layers, B, H)``, and ``cache`` feeds
        :meth:`backward_sequence` (``keep_cache=False``: prediction only, the LSTM skips
        its cache and ``cache`` cannot feed backward).
        """
        x, lengths = self._check_x(x, lengths)
        hs, final, cache = self._forward_tm(np.ascontiguousarray(x.transpose(1, 0, 2)), lengths,
                                            state, keep_cache)
        return np.ascontiguousarray(hs.transpose(1, 0, 2)), final, cache

    def backward_sequence(self, cache, dhs, dstate=None):
        """BPTT through the recurrent stack.

        ``dhs (B, T, H)`` is the upstream gradient of the top layer's outputs and
        ``dstate`` that of the final state (``(dh_n, dc_n)`` for LSTM; ``None`` = 0).
        Returns ``(dx, dstate0, grads)``: the input gradient ``(B, T, n_input)``, the
        gradient of the initial state (pass it as ``dstate`` of the previous chunk for
        truncated BPTT) and a flat gradient vector laid out like ``params`` (head
        entries zero).
        """
        dhs = np.asarray(dhs, dtype=self.dtype)
        T, B = cache["layers"][0][0].shape[:2]
        if dhs.shape != (B, T, self.n_hidden):
            raise DataError(f"dhs must have shape {(B, T, self.n_hidden)}, got {dhs.shape}")
        dx, d0, grads = self._backward_tm(cache, np.ascontiguousarray(dhs.transpose(1, 0, 2)), dstate)
        return np.ascontiguousarray(dx.transpose(1, 0, 2)), d0, grads

    def forward_final(self, x, lengths=None, state=None, keep_cache=True):
        """`forward_sequence` for an encoder whose per-step outputs are not used: returns
        ``(final_state, cache)`` and never lays the ``(T, B, H)`` outputs out batch-major.
        The cache feeds :meth:`backward_final`."""
        x, lengths = self._check_x(x, lengths)
        _, final, cache = self._forward_tm(np.ascontiguousarray(x.transpose(1, 0, 2)), lengths,
                                           state, keep_cache)
        return final, cache

    def backward_final(self, cache, dstate):
        """BPTT when only the final state receives a gradient (``dstate``, as in
        :meth:`backward_sequence`): the per-step outputs get none and the first layer's
        input gradient is skipped. Returns ``(dstate0, grads)``; the same bits as
        `backward_sequence` with zero ``dhs``."""
        T, B = cache["layers"][0][0].shape[:2]
        dhs = self._pool.zeros(("dhs0",), (T, B, self.n_hidden), self.dtype)
        _, d0, grads = self._backward_tm(cache, dhs, dstate, need_dx=False)
        return d0, grads

    def _forward_tm(self, x, lengths, state, keep_cache=True):
        """The stack over time-major ``x (T, B, I)``; returns time-major ``hs``.
        ``keep_cache=False`` (prediction) lets the LSTM and GRU skip their training
        caches (`cells.lstm_infer`, `cells.gru_infer`: the same bits, far less memory
        traffic)."""
        B = x.shape[1]
        state = self._initial_state(state, B)
        nch = (n_chunks(B, self.n_hidden) if keep_cache
               else n_infer_chunks(B, self.n_hidden, self.cell))
        act = ACTIVATIONS[self.activation]
        pin_kernel_blas()
        with threads_for(nch):
            layers, h_n, c_n, inp = self._run_layers(x, lengths, state, nch, act, keep_cache)
        final = stack_layers(h_n)
        if self.cell == "lstm":
            final = (final, stack_layers(c_n))
        return inp, final, {"layers": layers, "lengths": lengths, "n_chunks": nch}

    def _run_layers(self, x, lengths, state, nch, act, keep_cache=True):
        layers, h_n, c_n = [], [], []
        inp = x
        T, B, H, dt, pool = x.shape[0], x.shape[1], self.n_hidden, self.dtype, self._pool
        for k in range(self.n_layers):
            w = self._layer(k, self._views)
            hs = pool.get(("hs", k), (T, B, H), dt)
            if self.cell == "lstm" and not keep_cache:
                h0, c0 = state[0][k], state[1][k]
                hs, hk, ck = cells.lstm_infer(inp, lengths, h0, c0, *w, nch, hs)
                layers.append(None)
                c_n.append(ck)
            elif self.cell == "lstm":
                h0, c0 = state[0][k], state[1][k]
                gates = pool.get(("gates", k), (T, B, 4, H), dt)
                cs = pool.get(("cs", k), (T, B, H), dt)
                hs, hk, ck, gates, cs = cells.lstm_forward(inp, lengths, h0, c0, *w, nch, hs, gates, cs)
                layers.append((inp, h0, c0, hs, gates, cs))
                c_n.append(ck)
            elif self.cell == "gru" and not keep_cache:
                hs, hk = cells.gru_infer(inp, lengths, state[k], *w, nch, hs)
                layers.append(None)
            elif self.cell == "gru":
                h0 = state[k]
                gcache = pool.get(("gates", k), (T, B, 4, H), dt)
                hs, hk, gcache = cells.gru_forward(inp, lengths, h0, *w, nch, hs, gcache)
                layers.append((inp, h0, hs, gcache))
            else:
                h0 = state[k]
                hs, hk = cells.rnn_forward(inp, lengths, h0, *w, act, self.leaky_slope, nch, hs)
                layers.append((inp, h0, hs))
            h_n.append(hk)
            inp = hs
        return layers, h_n, c_n, inp

    def _backward_tm(self, cache, dhs, dstate, need_dx=True):
        """BPTT with time-major ``dhs (T, B, H)``; returns time-major ``dx`` (``None``
        with ``need_dx=False``, which spares the first layer's input-gradient products)."""
        layers, lengths, nch = cache["layers"], cache["lengths"], cache["n_chunks"]
        B = lengths.shape[0]
        dstate = self._initial_state(dstate, B)
        grads = np.zeros_like(self.params)
        gv = self._bind(grads)
        act = ACTIVATIONS[self.activation]
        with threads_for(nch):
            dx, d0 = self._run_layers_backward(layers, lengths, nch, act, dhs, dstate, gv, need_dx)
        return dx, d0, grads

    def _run_layers_backward(self, layers, lengths, nch, act, dhs, dstate, gv, need_dx=True):
        dh0s, dc0s = [None] * self.n_layers, [None] * self.n_layers
        G, H, dt, pool = CELLS[self.cell], self.n_hidden, self.dtype, self._pool
        for k in range(self.n_layers - 1, -1, -1):
            w_ih, w_hh = self._views[f"rnn.weight_ih_l{k}"], self._views[f"rnn.weight_hh_l{k}"]
            T, B, n_in = layers[k][0].shape
            if k == 0 and not need_dx:
                dx = np.empty((0, 0, 0), dt)  # the kernels skip the input gradient
            else:
                dx = pool.get(("dx", k), (T, B, n_in), dt)
            ws = pool.get(("ws", k), (T * B * G * H,), dt)
            if self.cell == "lstm":
                inp, h0, c0, hs, gates, cs = layers[k]
                dx, dh0, dc0, dwi, dwh, dbi, dbh = cells.lstm_backward(
                    inp, lengths, h0, c0, w_ih, w_hh, hs, gates, cs, dhs,
                    dstate[0][k], dstate[1][k], nch, dx, ws)
                dc0s[k] = dc0
            elif self.cell == "gru":
                inp, h0, hs, gcache = layers[k]
                ws2 = pool.get(("ws2", k), (T * B * G * H,), dt)
                dx, dh0, dwi, dwh, dbi, dbh = cells.gru_backward(
                    inp, lengths, h0, w_ih, w_hh, hs, gcache, dhs, dstate[k], nch, dx, ws, ws2)
            else:
                inp, h0, hs = layers[k]
                dx, dh0, dwi, dwh, dbi, dbh = cells.rnn_backward(
                    inp, lengths, h0, w_ih, w_hh, hs, dhs, dstate[k], act, self.leaky_slope, nch,
                    dx, ws)
            gv[f"rnn.weight_ih_l{k}"][...] = dwi
            gv[f"rnn.weight_hh_l{k}"][...] = dwh
            gv[f"rnn.bias_ih_l{k}"][...] = dbi
            gv[f"rnn.bias_hh_l{k}"][...] = dbh
            dh0s[k] = dh0
            dhs = dx
        d0 = stack_layers(dh0s)
        if self.cell == "lstm":
            d0 = (d0, stack_layers(dc0s))
        return (dhs if need_dx else None), d0

    def _layer(self, k, views):
        return (views[f"rnn.weight_ih_l{k}"], views[f"rnn.weight_hh_l{k}"],
                views[f"rnn.bias_ih_l{k}"], views[f"rnn.bias_hh_l{k}"])

    # ------------------------------------------------------------------ head
    def _head(self, h):
        w, b = self._views["head.weight"], self._views["head.bias"]
        return h @ w.T + b

    @staticmethod
    def _last_state(final):
        h = final[0] if isinstance(final, tuple) else final
        return h[-1]

    def forward(self, x, lengths=None, state=None, sequence=False):
        """Predict: ``(B, T, n_input) -> (B, n_output)`` from each sample's last valid
        state (many-to-one), or ``(B, T, n_output)`` at every step with ``sequence=True``
        (many-to-many; padded steps give the head's bias)."""
        x, lengths = self._check_x(x, lengths)
        hs, final, _ = self._forward_tm(np.ascontiguousarray(x.transpose(1, 0, 2)), lengths, state,
                                        keep_cache=False)
        if sequence:
            return self._head(hs.transpose(1, 0, 2))
        return self._head(self._last_state(final))

    def loss_and_grad(self, x, y, loss="mse", lengths=None, state=None, *, sequence=False,
                      delta=1.0, quantiles=None):
        """Mean loss and its gradient with respect to every parameter.

        ``y`` is ``(B, n_output)`` (or ``(B, T, n_output)`` with ``sequence=True``, padded
        steps ignored). ``loss`` is one of ``mse``, ``mae``, ``huber`` (``delta``),
        ``pinball`` (``quantiles``: the head emits ``n_output = n_targets * Q`` values,
        quantile fastest, and ``y`` holds ``n_targets`` values) or ``cross_entropy``
        (``y`` holds integer classes ``(B,)``, the head emits logits).
        Returns ``(loss, grads)`` with ``grads`` named like :meth:`state_dict`.
        """
        value, flat = self._loss_and_flat_grad(x, y, loss, lengths, state, sequence, delta, quantiles)
        return value, self.grads_to_dict(flat)

    def _loss_and_flat_grad(self, x, y, loss, lengths, state, sequence, delta, quantiles):
        x, lengths = self._check_x(x, lengths)
        hs_tm, final, cache = self._forward_tm(np.ascontiguousarray(x.transpose(1, 0, 2)), lengths, state)
        T, B = hs_tm.shape[:2]
        w = self._views["head.weight"]
        if sequence:
            feats = np.ascontiguousarray(hs_tm.transpose(1, 0, 2))  # (B, T, H)
            yhat = self._head(feats)
            value, dyhat = self._loss(yhat, y, loss, delta, quantiles, lengths)
            flat_d = dyhat.reshape(B * T, self.n_output)
            dw = flat_d.T @ feats.reshape(B * T, self.n_hidden)
            db = flat_d.sum(axis=0)
            dhs = np.ascontiguousarray((dyhat @ w).transpose(1, 0, 2))
            dstate = None
        else:
            feats = self._last_state(final)
            yhat = self._head(feats)
            value, dyhat = self._loss(yhat, y, loss, delta, quantiles, None)
            dw = dyhat.T @ feats
            db = dyhat.sum(axis=0)
            dhs = self._pool.zeros(("dhs0",), hs_tm.shape, hs_tm.dtype)
            dh = np.zeros((self.n_layers, B, self.n_hidden), self.dtype)
            dh[-1] = dyhat @ w
            dstate = (dh, np.zeros_like(dh)) if self.cell == "lstm" else dh
        _, _, grads = self._backward_tm(cache, dhs, dstate, need_dx=False)
        gv = self._bind(grads)
        gv["head.weight"][...] = dw
        gv["head.bias"][...] = db
        return value, grads

    def _loss(self, yhat, y, loss, delta, quantiles, lengths):
        if loss not in LOSSES:
            raise ConfigError(f"loss must be one of {list(LOSSES)}, got {loss!r}")
        B = yhat.shape[0]
        mask = None
        if lengths is not None:  # sequence mode: ignore padded steps
            mask = (np.arange(yhat.shape[1])[None, :] < lengths[:, None])
        if loss == "cross_entropy":
            if mask is not None:
                raise ConfigError("cross_entropy is supported for many-to-one outputs only")
            classes = np.asarray(y)
            if classes.shape != (B,) or not np.issubdtype(classes.dtype, np.integer):
                raise DataError(f"cross_entropy needs integer classes of shape ({B},), "
                                f"got {classes.dtype} {classes.shape}")
            if classes.min() < 0 or classes.max() >= self.n_output:
                raise DataError(f"classes must be in [0, {self.n_output}), got "
                                f"{classes.min()}..{classes.max()}")
            value, d = losses.softmax_cross_entropy(np.ascontiguousarray(yhat),
                                                     np.ascontiguousarray(classes, np.int64))
            return self._finite(value), d
        if loss == "pinball":
            q = np.ascontiguousarray(quantiles if quantiles is not None else [0.5], np.float64)
            if q.ndim != 1 or q.size == 0 or np.any((q <= 0) | (q >= 1)):
                raise ConfigError(f"quantiles must be values in (0, 1), got {quantiles!r}")
            if self.n_output % q.size:
                raise ConfigError(f"n_output={self.n_output} is not a multiple of the "
                                  f"{q.size} quantiles")
            n_targets = self.n_output // q.size
            y = self._check_y(y, yhat.shape[:-1] + (n_targets,))
            pred = yhat.reshape(-1, q.size)
            target = y.reshape(-1)
            if mask is not None:
                keep = np.repeat(mask.reshape(-1), n_targets)
                pred, target = pred[keep], target[keep]
            value, d = losses.pinball_loss(np.ascontiguousarray(pred), np.ascontiguousarray(target), q)
            return self._finite(value), self._unmask(d, mask, yhat.shape)
        y = self._check_y(y, yhat.shape)
        mode = {"mse": losses.LOSS_MSE, "mae": losses.LOSS_MAE, "huber": losses.LOSS_HUBER}[loss]
        if not delta > 0:
            raise ConfigError(f"huber delta must be positive, got {delta!r}")
        pred, target = yhat, y
        if mask is not None:
            pred, target = yhat[mask], y[mask]
        value, d = losses.regression_loss(np.ascontiguousarray(pred).reshape(-1),
                                          np.ascontiguousarray(target).reshape(-1), mode, float(delta))
        return self._finite(value), self._unmask(d, mask, yhat.shape)

    def _unmask(self, d, mask, shape):
        if mask is None:
            return d.reshape(shape)
        full = np.zeros(shape, self.dtype)
        full[mask] = d.reshape((-1, shape[-1]))
        return full

    def _check_y(self, y, shape):
        y = np.asarray(y)
        if y.shape != shape:
            raise DataError(f"y must have shape {shape}, got {y.shape}")
        y = np.ascontiguousarray(y, dtype=self.dtype)
        if not np.all(np.isfinite(y)):
            raise DataError("y contains NaN or infinite values; clean or impute the targets first")
        return y

    @staticmethod
    def _finite(value):
        if not np.isfinite(value):
            raise NumericalError(f"the loss is {value}: training diverged (lower the learning "
                                 "rate, enable gradient clipping or scale the data)")
        return float(value)

    # ------------------------------------------------------------------ training
    def fit_batch(self, x, y, loss="mse", lengths=None, state=None, *, sequence=False,
                  delta=1.0, quantiles=None):
        """One optimiser step on a batch (clip, then Adam). Returns the batch loss
        (before the step). Raises :class:`NumericalError` on a non-finite loss or
        gradient, leaving the parameters untouched."""
        value, grads = self._loss_and_flat_grad(x, y, loss, lengths, state, sequence, delta, quantiles)
        self.step(grads)
        return value

    def step(self, grads: np.ndarray) -> float:
        """Apply one Adam step with a flat gradient vector; returns its global norm."""
        opt = self.optimizer
        if opt.clip_norm is not None:
            norm = optim.clip_grad_norm(grads, float(opt.clip_norm))
        else:
            norm = optim.global_norm(grads)
        if not np.isfinite(norm):
            raise NumericalError(f"the gradient norm is {norm}: training diverged (lower the "
                                 "learning rate or set clip_norm)")
        self._step += 1
        optim.adam_step(self.params, grads, self._m, self._v, self._step, opt.lr, opt.beta1,
                        opt.beta2, opt.eps, opt.weight_decay, opt.decoupled)
        return float(norm)
