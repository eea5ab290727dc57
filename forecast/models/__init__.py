"""Forecasting models with one interface: recurrent forecasters (step-wise `RNNForecaster`,
segment-wise `SegRNNForecaster`) and baselines.

Every model follows the scikit-learn contract (see `forecast.models.base`): parameters
stored by ``__init__``, ``fit`` returns ``self``, learned attributes end in ``_``,
``get_params`` / ``set_params`` / :func:`clone`, `NotFittedError` before ``fit``, and
``to_state()`` / :func:`model_from_state` round-trip a fitted model through JSON-safe
values and NumPy arrays (data only, nothing executable).
"""

from forecast.models.auto import AutoForecaster
from forecast.models.base import BaseForecaster, check_is_fitted, clone, model_from_state
from forecast.models.baselines import (
    Drift,
    LinearLags,
    Mean,
    Naive,
    SeasonalNaive,
    WindowAverage,
)
from forecast.models.forecaster import Forecaster, as_dataset
from forecast.models.intervals import interval_columns
from forecast.models.rnn import EpochInfo, RNNForecaster
from forecast.models.segrnn import SegRNNForecaster

__all__ = [
    "BaseForecaster",
    "Forecaster",
    "RNNForecaster",
    "AutoForecaster",
    "SegRNNForecaster",
    "EpochInfo",
    "Naive",
    "SeasonalNaive",
    "Drift",
    "WindowAverage",
    "Mean",
    "LinearLags",
    "clone",
    "check_is_fitted",
    "model_from_state",
    "as_dataset",
    "interval_columns",
    "make_model",
    "MODEL_NAMES",
]

#: Short names (as the CLI and benchmarks spell them) -> (class, fixed parameters).
MODEL_NAMES = {
    "lstm": (RNNForecaster, {"cell": "lstm"}),
    "gru": (RNNForecaster, {"cell": "gru"}),
    "rnn": (RNNForecaster, {"cell": "rnn"}),
    "segrnn": (SegRNNForecaster, {}),
    "linear": (LinearLags, {"normalize": "none"}),
    "nlinear": (LinearLags, {"normalize": "last"}),
    "naive": (Naive, {}),
    "seasonal_naive": (SeasonalNaive, {}),
    "drift": (Drift, {}),
    "mean": (WindowAverage, {}),
    "auto": (AutoForecaster, {}),
}


def make_model(name: str, **params) -> BaseForecaster:
    """A model by short name (``lstm``, ``gru``, ``rnn``, ``segrnn``, ``linear``, ``nlinear``,
    ``naive``, ``seasonal_naive``, ``drift``, ``mean``, ``auto``) with extra parameters."""
    from forecast.errors import ConfigError

    if name not in MODEL_NAMES:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    klass, fixed = MODEL_NAMES[name]
    import inspect

    accepted = set(inspect.signature(klass.__init__).parameters) - {"self"}
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise ConfigError(f"model {name!r} has no parameter(s) {', '.join(map(repr, unknown))}; "
                          f"its parameters are: {', '.join(sorted(accepted))}")
    return klass(**{**fixed, **params})
