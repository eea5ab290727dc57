"""Registry of the bundled developer datasets (files in the repository's ``datasets/``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from forecast.errors import DataError

#: Environment variable naming a folder that holds the bundled files (overrides the search).
DATASETS_ENV = "FORECAST_DATASETS"


@dataclass(frozen=True)
class DatasetInfo:
    """One bundled dataset: its file, default target and provenance."""

    name: str
    filename: str
    target: str
    frequency: str
    rows: int
    columns: tuple[str, ...]
    description: str
    source: str
    license: str

    def to_dict(self) -> dict:
        return {**self.__dict__, "columns": list(self.columns)}


_YAHOO_COLS = ("Date", "Open", "High", "Low", "Close", "Adj Close", "Volume")
_MPLFINANCE = ("matplotlib/mplfinance examples/data (commit 493811dac9a2); data originally "
               "from Yahoo! Finance")

BUNDLED: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            "aapl", "yahoofinance-AAPL-20040819-20180120.csv", "Close", "XNYS", 3379,
            _YAHOO_COLS, "Apple daily OHLCV bars, 2004-08-19 to 2018-01-19 (NYSE trading "
            "days; Open/High/Low/Close split-adjusted)", _MPLFINANCE,
            "mplfinance license (BSD-like); no data license stated"),
        DatasetInfo(
            "goog", "yahoofinance-GOOG-20040819-20180120.csv", "Close", "XNYS", 3379,
            _YAHOO_COLS, "Alphabet (Google) daily OHLCV bars, 2004-08-19 to 2018-01-19 "
            "(NYSE trading days)", _MPLFINANCE,
            "mplfinance license (BSD-like); no data license stated"),
        DatasetInfo(
            "etth1", "ETTh1.csv", "OT", "h", 17420,
            ("date", "HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"),
            "Electricity Transformer Temperature, hourly, 2016-07-01 to 2018-06-26; OT = "
            "oil temperature (Informer, AAAI 2021)",
            "zhouhaoyi/ETDataset ETT-small/ETTh1.csv (commit 1d16c8f4f943)", "CC BY-ND 4.0"),
        DatasetInfo(
            "seattle-weather", "seattle-weather.csv", "temp_max", "D", 1461,
            ("date", "precipitation", "temp_max", "temp_min", "wind", "weather"),
            "Seattle daily weather 2012-2015: precipitation (mm), temp_max/temp_min (deg C), "
            "wind (m/s), weather label",
            "PyPI vega_datasets==0.9.0 vega_datasets/_data/seattle-weather.csv",
            "package MIT; public-domain NOAA data"),
    )
}


def normalise_name(name: str) -> str:
    return str(name).strip().lower().replace("_", "-")


def bundled_info(name: str) -> DatasetInfo | None:
    """The `DatasetInfo` registered under `name` (case and ``_``/``-`` insensitive)."""
    return BUNDLED.get(normalise_name(name))


def _candidate_dirs() -> list[Path]:
    dirs = []
    env = os.environ.get(DATASETS_ENV)
    if env:
        dirs.append(Path(env).expanduser())
    package_dir = Path(__file__).resolve().parent.parent  # .../forecast
    dirs.append(package_dir / "datasets")  # a copy installed inside the package
    dirs.append(package_dir.parent / "datasets")  # the repository checkout (editable install)
    dirs.append(Path.cwd() / "datasets")
    return dirs


def datasets_dir() -> Path:
    """The folder holding the bundled files: ``$FORECAST_DATASETS``, else ``datasets/`` next
    to the package (a checkout or editable install), else ``./datasets``."""
    tried = _candidate_dirs()
    for d in tried:
        if (d / BUNDLED["etth1"].filename).is_file():
            return d
    raise DataError(
        "the bundled datasets folder was not found (looked in "
        + ", ".join(str(d) for d in tried)
        + f"); install forecast from a checkout (pip install -e .) or set {DATASETS_ENV} "
        "to a folder holding the files"
    )


def bundled_path(name: str) -> Path:
    """The file of a bundled dataset; `DataError` for an unknown name or a missing file."""
    info = bundled_info(name)
    if info is None:
        raise DataError(
            f"unknown dataset {name!r}; bundled datasets are {', '.join(sorted(BUNDLED))}"
        )
    tried = _candidate_dirs()
    for d in tried:
        path = d / info.filename
        if path.is_file():
            return path
    raise DataError(
        f"the file of dataset {info.name!r} ({info.filename}) was not found (looked in "
        + ", ".join(str(d) for d in tried)
        + f"); install forecast from a checkout (pip install -e .) or set {DATASETS_ENV}"
    )
