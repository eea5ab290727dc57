"""How the kernels run: batch chunks, kept work arrays, the Numba thread count and the
BLAS thread pinning, and the Adam settings (`forecast.nn` re-exports `Adam`)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import numba
import numpy as np

from forecast.errors import ConfigError

__all__ = ["Adam", "CHUNK_ROWS", "GRU_INFER_CHUNK_ROWS", "INFER_CHUNK_ROWS", "MAX_CHUNKS", "MIN_CHUNK_ROWS", "n_chunks",
           "n_infer_chunks", "stack_layers", "BufferPool",
           "threads_for", "pin_kernel_blas"]

CHUNK_ROWS = 32  # target samples per parallel chunk (see n_chunks; 32 beat 16 on 2 cores)
MAX_CHUNKS = 16
MIN_CHUNK_ROWS = 16  # fewest rows of a chunk when a batch is split below CHUNK_ROWS
INFER_CHUNK_ROWS = 128  # target rows per chunk of a prediction-only pass (n_infer_chunks)
GRU_INFER_CHUNK_ROWS = 64  # the same for a GRU narrower than WIDE_HIDDEN
WIDE_HIDDEN = 128  # from this many hidden units, training chunks are WIDE_CHUNK_ROWS rows
WIDE_CHUNK_ROWS = 128


@dataclass(frozen=True)
class Adam:
    """Adam settings; the defaults are ``torch.optim.Adam``'s.

    ``weight_decay`` is L2 added to the gradient as in ``torch.optim.Adam``; with
    ``decoupled=True`` it is AdamW-style decay. ``clip_norm`` (if set) clips the global
    gradient norm before each step, as ``torch.nn.utils.clip_grad_norm_``.
    """

    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    decoupled: bool = False
    clip_norm: float | None = None

    def validate(self) -> None:
        if not (self.lr > 0 and np.isfinite(self.lr)):
            raise ConfigError(f"Adam lr must be a positive number, got {self.lr!r}")
        for name in ("beta1", "beta2"):
            b = getattr(self, name)
            if not 0.0 <= b < 1.0:
                raise ConfigError(f"Adam {name} must be in [0, 1), got {b!r}")
        if not self.eps > 0:
            raise ConfigError(f"Adam eps must be positive, got {self.eps!r}")
        if self.weight_decay < 0:
            raise ConfigError(f"Adam weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.clip_norm is not None and not self.clip_norm > 0:
            raise ConfigError(f"clip_norm must be positive or None, got {self.clip_norm!r}")


def stack_layers(arrays):
    """``np.stack`` of per-layer arrays; one layer (the common case) is a new axis on
    the kernel's own fresh array instead of a copy (``np.stack`` costs ~7 us a call)."""
    return arrays[0][np.newaxis] if len(arrays) == 1 else np.stack(arrays)


def n_chunks(batch: int, n_hidden: int = 0) -> int:
    """Number of parallel batch chunks: a function of the batch size and the layer width
    only, never of the thread count. About CHUNK_ROWS rows a chunk, or WIDE_CHUNK_ROWS
    from WIDE_HIDDEN hidden units up, but a batch too small for two such chunks is still
    two chunks of at least MIN_CHUNK_ROWS (the common ``batch_size=32``), so that both
    cores of a small machine work on it.

    Why wider layers take larger chunks: each step's products pack the whole weight
    matrix once per chunk, and at 128 units and more that packing outweighs the smaller
    chunks' better cache use. Config c (LSTM 128 x 2, batch 256, f32) trained 391-403
    windows/s in chunks of 32 and 475-495 in chunks of 128; at 64 units chunks of 32 stay
    faster (6,114-7,394 against 5,765-6,394)."""
    rows = WIDE_CHUNK_ROWS if n_hidden >= WIDE_HIDDEN else CHUNK_ROWS
    n = batch // rows
    if n < 2 and batch >= 2 * MIN_CHUNK_ROWS:
        n = 2
    return int(max(1, min(MAX_CHUNKS, n)))


def n_infer_chunks(batch: int, n_hidden: int = 0, cell: str = "") -> int:
    """Chunks of a prediction-only pass (no cache for backward): fewer and larger than
    training's, about INFER_CHUNK_ROWS rows each but never fewer than two when training
    would split the batch. Each step's product packs the whole weight matrix, once per
    chunk; a training chunk amortises that over the backward pass's work too, a
    prediction chunk only over its own rows. At config c (256 rows, LSTM 128 x 2)
    two chunks of 128 rows predicted 1,290 windows/s against 870 with eight of 32.

    A GRU narrower than WIDE_HIDDEN takes chunks of GRU_INFER_CHUNK_ROWS (64) instead:
    its step product ``(rows, H) @ (H, 3H)`` ran at about 180 GFLOP/s up to 64 rows and
    125 from 96 rows up in OpenBLAS (SkylakeX kernels, one thread), and scoring 1,024
    windows of 336 steps with a 64-unit GRU took 51 ms in chunks of 64 rows against
    64 ms in chunks of 128. The LSTM's ``(rows, H) @ (H, 4H)`` showed no such rule, and
    a 32-unit GRU was level at every chunk size (`benchmarks/RESULTS.md`, session 13).

    Rows never interact in a forward pass, so the chunking does not change any row's
    bits beyond the BLAS's row-count-dependent rounding (tested), and it is a function
    of the batch size and the layer only, never of the thread count."""
    rows = GRU_INFER_CHUNK_ROWS if cell == "gru" and n_hidden < WIDE_HIDDEN else INFER_CHUNK_ROWS
    return int(min(n_chunks(batch), max(2, batch // rows)))


class BufferPool:
    """Large per-layer arrays (outputs, caches, gradient workspaces) kept between calls.

    A training step allocates hundreds of MB at config-c sizes; fresh allocations that
    large come from ``mmap`` and fault every page in again on each call (measured:
    86,000 page faults and 0.24 s of system time per LSTM step). A buffer is handed out
    again only when nothing but the pool still references it, so a cache the caller
    keeps (``forward_sequence``) is never overwritten. ``RecurrentNet.release_buffers``
    frees them.
    """

    def __init__(self):
        self._arrays: dict = {}

    def get(self, key, shape, dtype) -> np.ndarray:
        arr = self._arrays.get(key)
        # references: the dict, `arr` and getrefcount's own argument
        if arr is None or arr.shape != shape or arr.dtype != dtype or sys.getrefcount(arr) > 3:
            arr = np.empty(shape, dtype)
            self._arrays[key] = arr
        return arr

    def zeros(self, key, shape, dtype) -> np.ndarray:
        """A zero array kept between calls, for read-only use (the zero upstream gradient
        of a many-to-one loss): kernels never write their inputs, so it stays zero, and
        a fresh one is made while anything else still references it."""
        arr = self._arrays.get(key)
        if arr is None or arr.shape != shape or arr.dtype != dtype or sys.getrefcount(arr) > 3:
            arr = np.zeros(shape, dtype)
            self._arrays[key] = arr
        return arr

    def clear(self) -> None:
        self._arrays.clear()


class threads_for:
    """Run kernels on at most ``n_chunks`` Numba threads: a batch of one chunk then never
    wakes a thread team (whose barrier would wait on descheduled threads on a busy
    machine). Results do not depend on the thread count."""

    def __init__(self, n_chunks: int):
        self.n_chunks = n_chunks

    def __enter__(self):
        self.saved = numba.get_num_threads()
        if self.n_chunks < self.saved:
            numba.set_num_threads(self.n_chunks)
        return self

    def __exit__(self, *exc):
        numba.set_num_threads(self.saved)
        return False


_BLAS_PINNED = False


def pin_kernel_blas() -> None:
    """Pin every loaded BLAS (SciPy's, which Numba's ``np.dot`` calls, and NumPy's) to one
    thread, once.

    The kernels already run one chunk per core. A multi-threaded BLAS inside ``prange``
    oversubscribes the cores, and NumPy's OpenBLAS keeps a worker thread spinning after
    every small matrix product of the network head: profiled at config c, that spinning
    thread took 22 % of all CPU samples, a core our own threads needed. Setting
    ``OPENBLAS_NUM_THREADS=1`` before start-up has the same effect;
    ``FORECAST_PIN_BLAS=0`` leaves BLAS alone.
    """
    global _BLAS_PINNED
    if _BLAS_PINNED:
        return
    _BLAS_PINNED = True
    if os.environ.get("OPENBLAS_NUM_THREADS", "").strip() == "1":
        return  # already one thread since the library loaded: skip the ~0.3 s scan
    if os.environ.get("FORECAST_PIN_BLAS", "1").strip() == "0":
        return
    try:
        import scipy.linalg.cython_blas  # noqa: F401  (loads the library Numba will call)
        from threadpoolctl import ThreadpoolController

        for lib in ThreadpoolController().lib_controllers:
            if lib.user_api == "blas":
                lib.set_num_threads(1)
    except Exception:  # pragma: no cover - best effort; correctness does not depend on it
        pass
