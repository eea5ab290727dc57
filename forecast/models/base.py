"""The estimator contract shared by every forecaster (scikit-learn's, adapted).

* ``__init__`` only stores its keyword arguments; ``get_params`` / ``set_params`` read
  them from the signature; :func:`clone` builds an unfitted copy.
* ``fit`` returns ``self`` and stores what it learned in attributes ending in ``_``;
  ``predict`` before ``fit`` raises :class:`~forecast.errors.NotFittedError`.
* ``to_state()`` returns ``(meta, arrays)``: JSON-safe values and named NumPy arrays,
  everything needed to rebuild the fitted model with :func:`model_from_state` (data only, nothing executable).
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

import numpy as np

from forecast.errors import ConfigError, ModelFileError, NotFittedError

__all__ = ["BaseForecaster", "clone", "check_is_fitted", "model_from_state", "STATE_VERSION"]

STATE_VERSION = 1
_REGISTRY: dict[str, type] = {}


def _json_safe(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ConfigError(f"value {value!r} of type {type(value).__name__} cannot be stored in a "
                      "model file; use plain numbers, strings, lists or dicts")


def _from_json(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_from_json(v) for v in value)
    return value


class BaseForecaster:
    """get_params / set_params / clone / repr from the ``__init__`` signature, and the
    ``to_state`` / ``from_state`` round trip.

    Subclasses list their fitted JSON-safe attributes in ``_fitted_meta`` and their
    fitted arrays in ``_fitted_arrays``; ``_restore()`` rebuilds derived objects.
    Parameters named in ``_transient_params`` (callbacks) are not stored.
    """

    _fitted_meta: tuple[str, ...] = ()
    _fitted_arrays: tuple[str, ...] = ()
    _transient_params: tuple[str, ...] = ()

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        _REGISTRY[cls.__name__] = cls

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> "BaseForecaster":
        valid = self._param_names()
        for key, value in params.items():
            if key not in valid:
                raise ConfigError(f"{type(self).__name__} has no parameter {key!r}; its "
                                  f"parameters are {valid}")
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        sig = inspect.signature(type(self).__init__)
        parts = []
        for name, value in self.get_params().items():
            default = sig.parameters[name].default
            if default is inspect.Parameter.empty or not _same(value, default):
                parts.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    # ---- fitted state ---------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return bool(getattr(self, "fitted_", False))

    def _forget(self) -> None:
        """Drop every learned attribute (a fresh fit forgets the previous one)."""
        for name in list(vars(self)):
            if name.endswith("_") and not name.startswith("__"):
                delattr(self, name)

    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """``(meta, arrays)``: JSON-safe parameters and learned values, and the learned
        arrays by name. :func:`model_from_state` rebuilds the model from them."""
        params = {k: v for k, v in self.get_params().items() if k not in self._transient_params}
        meta: dict[str, Any] = {"type": type(self).__name__, "version": STATE_VERSION,
                                "params": _json_safe(params), "fitted": None}
        arrays: dict[str, np.ndarray] = {}
        if self.is_fitted:
            meta["fitted"] = {name: _json_safe(getattr(self, name)) for name in self._fitted_meta}
            for name in self._fitted_arrays:
                value = getattr(self, name)
                if value is not None:
                    arrays[name] = np.ascontiguousarray(value)
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> "BaseForecaster":
        """Rebuild a model from :meth:`to_state`'s output; raises `ModelFileError` when the
        description does not match this class or is malformed."""
        if not isinstance(meta, dict) or meta.get("type") not in _REGISTRY:
            kind = meta.get("type") if isinstance(meta, dict) else type(meta).__name__
            raise ModelFileError(f"unknown model type {kind!r}; known: {sorted(_REGISTRY)}")
        if meta.get("version") != STATE_VERSION:
            raise ModelFileError(f"model state version {meta.get('version')!r} is not supported "
                                 f"(this library reads version {STATE_VERSION}); refit the model")
        klass = _REGISTRY[meta["type"]]
        if not issubclass(klass, cls):
            raise ModelFileError(f"the state describes a {meta['type']}, not a {cls.__name__}")
        try:
            params = {k: _from_json(v) for k, v in meta["params"].items()}
            model = klass(**params)
            fitted = meta.get("fitted")
            if fitted is not None:
                optional = getattr(klass, "_optional_fitted", ())
                for name in klass._fitted_meta:
                    value = fitted.get(name) if name in optional else fitted[name]
                    setattr(model, name, _from_json(value))
                for name in klass._fitted_arrays:
                    setattr(model, name, np.asarray(arrays[name]) if name in arrays else None)
                model.fitted_ = True
                model._restore_state(arrays)
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            raise ModelFileError(f"malformed {meta['type']} state: {exc}") from None
        return model

    def _restore(self) -> None:
        """Rebuild objects derived from the stored state (nets, ...)."""

    def _restore_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Called by `from_state` after the fitted attributes are set; models that keep
        arrays outside ``_fitted_arrays`` (an inner model) read them here."""
        self._restore()


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:  # arrays and the like
        return a is b


def clone(estimator: BaseForecaster) -> BaseForecaster:
    """An unfitted copy with the same parameters (deep-copied, callables shared)."""
    if not isinstance(estimator, BaseForecaster):
        raise ConfigError(f"clone expects a forecaster, got {type(estimator).__name__}")
    params = {k: v if callable(v) else copy.deepcopy(v) for k, v in estimator.get_params().items()}
    return type(estimator)(**params)


def check_is_fitted(estimator: BaseForecaster, what: str = "predict") -> None:
    """Raise `NotFittedError` unless `estimator` has been fitted."""
    if not getattr(estimator, "fitted_", False):
        raise NotFittedError(f"this {type(estimator).__name__} is not fitted yet; call fit() "
                             f"before {what}()")


def model_from_state(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> BaseForecaster:
    """Rebuild any forecaster from its ``to_state()`` output."""
    return BaseForecaster.from_state(meta, arrays)
