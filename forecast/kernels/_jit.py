"""The one place that decides how kernels compile.

Environment variables (read once, at import):

``FORECAST_NUMBA_CACHE``   ``1`` (default) caches compiled kernels on disk so a second
                           process does not compile again; ``0`` disables the cache.
``FORECAST_NUMBA_FASTMATH`` ``1`` turns on LLVM fast-math for the kernels that allow it
                           (default ``0``: results stay IEEE-exact and reproducible).
``FORECAST_NUMBA_DISABLE``  ``1`` runs kernels as plain Python (debugging only; slow).
``FORECAST_NUMBA_WIDE_VECTORS`` ``1`` (default) lets LLVM vectorise with 512-bit registers
                           on a CPU with AVX-512 (see `prefer_wide_vectors`); ``0`` keeps
                           LLVM's own choice (256 bits on every AVX-512 CPU it knows).
"""

from __future__ import annotations

import os

import numba

_TRUE = {"1", "true", "yes", "on"}


def _flag(name: str, default: str) -> bool:
    return os.environ.get(name, default).strip().lower() in _TRUE


CACHE = _flag("FORECAST_NUMBA_CACHE", "1")
FASTMATH = _flag("FORECAST_NUMBA_FASTMATH", "0")
DISABLED = _flag("FORECAST_NUMBA_DISABLE", "0")
WIDE_VECTORS = _flag("FORECAST_NUMBA_WIDE_VECTORS", "1")


def prefer_wide_vectors() -> str | None:
    """On a CPU with AVX-512, let LLVM vectorise the kernels' loops with 512-bit
    registers; returns the feature string it set (None when it set nothing).

    LLVM's tuning for every AVX-512 Intel CPU carries ``prefer-256-bit`` (a guard
    against the clock drop of early Skylake servers), so Numba's loops use 256-bit
    registers and half the lanes. The element-wise parts of the cells (the
    exponentials and tanh, the gate arithmetic) are the part of a step the matrix
    products leave, and with 512 bits the whole univariate GRU fit of
    `benchmarks/vs_darts.py` took 8.7-9.3 s against 10.2-10.3 s (session 13). Each
    lane computes the same operations in the same order at either width, and the
    kernels never reassociate (no fast-math reductions), so the results are the same
    bits (tested in a second interpreter with ``FORECAST_NUMBA_WIDE_VECTORS=0``).

    Numba has one code generator per process, so this is done through its
    ``NUMBA_CPU_FEATURES`` setting, before the generator starts: the host's own
    features plus ``-prefer-256-bit``. That applies to every Numba function the process
    compiles afterwards, the user's too (wider vectors, the same lane-wise results;
    a ``fastmath`` reduction of the user's may round differently). It is left alone
    when ``NUMBA_CPU_FEATURES`` or ``NUMBA_CPU_NAME`` is set, when Numba has already
    compiled something in this process, on CPUs without AVX-512, and with
    ``FORECAST_NUMBA_WIDE_VECTORS=0``. Compiled kernels are cached per feature string,
    so the two settings never share cache entries."""
    if not WIDE_VECTORS or DISABLED:
        return None
    if os.environ.get("NUMBA_CPU_FEATURES") or os.environ.get("NUMBA_CPU_NAME"):
        return None
    try:
        from numba.core.registry import cpu_target

        if "_toplevel_target_context" in vars(cpu_target):  # the generator exists
            return None
        import llvmlite.binding as llvm

        features = llvm.get_host_cpu_features()
        if not features.get("avx512f"):
            return None
        flat = features.flatten() + ",-prefer-256-bit"
    except Exception:  # a Numba/llvmlite without these internals: keep their defaults
        return None
    os.environ["NUMBA_CPU_FEATURES"] = flat
    numba.config.reload_config()
    return flat


WIDE_VECTOR_FEATURES = prefer_wide_vectors()


#: Numba's parallel options for ``@kernel(parallel=True)``: only ``prange`` loops run in
#: parallel.
PRANGE_ONLY = {"prange": True, "comprehension": False, "reduction": False,
               "inplace_binop": False, "setitem": False, "numpy": False, "stencil": False,
               "fusion": False}


#: ``fastmath`` of the kernels compiled with ``contract=True``: only floating-point
#: contraction (``a * b + c`` may become one fused multiply-add). It changes rounding
#: (one rounding instead of two), never the order of operations, so results stay
#: deterministic on a given CPU.
CONTRACT = True if FASTMATH else {"contract"}


def kernel(fn=None, *, parallel: bool = False, inline: bool = False, contract: bool = False):
    """Compile ``fn`` with the project's settings (nopython, cached, optionally parallel).

    ``error_model="numpy"``: float division by zero gives inf/nan instead of raising,
    which is what lets LLVM vectorise loops that divide (the sigmoid, for one).

    Use ``@kernel`` for leaf kernels and ``@kernel(parallel=True)`` for kernels with a
    ``prange`` over batch chunks. ``inline=True`` asks Numba to inline small helpers.
    """

    def wrap(f):
        if DISABLED:
            return f
        opts = dict(cache=CACHE, fastmath=CONTRACT if contract else FASTMATH, nogil=True,
                    error_model="numpy")
        if parallel:
            # prange only: NumPy calls and array expressions stay serial loops (each
            # chunk's work is serial anyway), which saves compiling a gufunc for each
            opts["parallel"] = dict(PRANGE_ONLY)
        if inline:
            opts["inline"] = "always"
        return numba.njit(**opts)(f)

    return wrap(fn) if fn is not None else wrap
