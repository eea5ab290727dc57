"""Bundled real datasets, by name.

    >>> from forecast import datasets
    >>> [d.name for d in datasets.list_datasets()]
    ['aapl', 'etth1', 'goog', 'seattle-weather']
    >>> aapl = datasets.load("aapl")               # target Close, NYSE trading days
    >>> weather = datasets.load("seattle-weather", target="precipitation")  # doctest: +SKIP

The files are byte-for-byte copies of public data (provenance in ``datasets/README.md``).
They are looked up in ``$FORECAST_DATASETS``, then in ``datasets/`` next to the package
(a checkout or an editable install), then in ``./datasets``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from forecast.data import Dataset, LoadOptions, load as _load
from forecast.data import BUNDLED, DatasetInfo, bundled_info, bundled_path, datasets_dir
from forecast.errors import DataError

__all__ = ["DatasetInfo", "list_datasets", "info", "path", "load", "read", "datasets_dir"]


def list_datasets() -> list[DatasetInfo]:
    """Every bundled dataset, sorted by name."""
    return [BUNDLED[name] for name in sorted(BUNDLED)]


def info(name: str) -> DatasetInfo:
    """The description of bundled dataset `name` (case-insensitive)."""
    found = bundled_info(name)
    if found is None:
        raise DataError(f"unknown dataset {name!r}; bundled datasets are {', '.join(sorted(BUNDLED))}")
    return found


def path(name: str) -> Path:
    """The file of bundled dataset `name`."""
    return bundled_path(name)


def load(name: str, options: LoadOptions | None = None, **overrides) -> Dataset:
    """Load bundled dataset `name` through `forecast.data.load` (default target from the
    registry: ``Close`` for stocks, ``OT`` for ETTh1, ``temp_max`` for Seattle weather)."""
    meta = info(name)
    options = options or LoadOptions()
    if options.target is None and "target" not in overrides:
        overrides["target"] = meta.target
    dataset = _load(path(name), options, **overrides)
    dataset.name = meta.name
    return dataset


def read(name: str) -> pd.DataFrame:
    """The raw file of bundled dataset `name` as a DataFrame (no validation)."""
    return pd.read_csv(path(name))
