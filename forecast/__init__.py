"""forecast: light, fast, reproducible time-series forecasting.

Recurrent networks (Elman RNN, LSTM, GRU) are hand-written Numba kernels with
backpropagation through time; see ``forecast.nn`` for the low-level network API.
Heavy modules are imported lazily so that ``import forecast`` stays cheap.
"""

__version__ = "0.1.0"

from forecast.errors import (  # noqa: E402
    BatchError,
    ConfigError,
    DataError,
    ForecastError,
    MissingExtraError,
    ModelFileError,
    NotFittedError,
    NumericalError,
    OutputError,
)

__all__ = [
    "__version__",
    "ForecastError",
    "DataError",
    "ConfigError",
    "NotFittedError",
    "ModelFileError",
    "NumericalError",
    "BatchError",
    "OutputError",
    "MissingExtraError",
]
