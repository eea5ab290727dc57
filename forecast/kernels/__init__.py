"""Numba kernels: arrays in, arrays out (numpy and numba only).

``cells``   recurrent layers (RNN, LSTM, GRU), forward and BPTT backward
``losses``  loss values and their gradients
``optim``   Adam and global-norm gradient clipping over one flat parameter vector
"""

from forecast.kernels import _jit as jit  # how kernels compile (FORECAST_NUMBA_* flags)

__all__ = ["jit"]
