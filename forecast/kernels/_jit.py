"""The one place that decides how kernels compile.

Environment variables (read once, at import):

``FORECAST_NUMBA_CACHE``   ``1`` (default) caches compiled kernels on disk so a second
                           process does not compile again; ``0`` disables the cache.
``FORECAST_NUMBA_FASTMATH`` ``1`` turns on LLVM fast-math for the kernels that allow it
                           (default ``0``: results stay IEEE-exact and reproducible).
``FORECAST_NUMBA_DISABLE``  ``1`` runs kernels as plain Python (debugging only; slow).
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
