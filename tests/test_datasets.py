"""forecast.datasets: the bundled files, by name, byte-for-byte with their provenance."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from forecast import data, datasets
from forecast.data import _bundled
from forecast.errors import DataError

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = {  # name: (target, frequency, rows)
    "aapl": ("Close", "XNYS", 3379),
    "goog": ("Close", "XNYS", 3379),
    "etth1": ("OT", "h", 17420),
    "seattle-weather": ("temp_max", "D", 1461),
}


def test_listing():
    infos = datasets.list_datasets()
    assert [d.name for d in infos] == sorted(EXPECTED)
    for d in infos:
        assert d.source and d.license and d.description
        assert isinstance(d.to_dict()["columns"], list)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_dataset_loads_by_name(name):
    target, freq, rows = EXPECTED[name]
    ds = datasets.load(name)
    assert ds.target == (target,) and ds.freq.alias == freq and len(ds) == rows
    assert ds.name == name
    assert ds.report.missing_timestamps == 0 and not ds.report.notes[1:]
    info = datasets.info(name)
    assert list(datasets.read(name).columns) == list(info.columns)
    assert info.frequency == freq and info.rows == rows


def test_names_are_case_and_separator_insensitive():
    assert datasets.info("ETTh1").name == "etth1"
    assert datasets.info("Seattle_Weather").name == "seattle-weather"
    assert data.load("AAPL").freq.alias == "XNYS"


def test_options_pass_through():
    ds = datasets.load("seattle-weather", target="precipitation", covariates=["wind"])
    assert ds.columns == ("precipitation", "wind")


def test_unknown_dataset_lists_the_names():
    with pytest.raises(DataError, match=r"unknown dataset 'msft'; bundled datasets are aapl, etth1, goog, seattle-weather"):
        datasets.load("msft")


def test_files_are_byte_for_byte_copies_listed_in_the_readme():
    readme = (ROOT / "datasets" / "README.md").read_text(encoding="utf-8")
    sums = dict(re.findall(r"\| `([^`]+\.csv)` \|.*\| `([0-9a-f]{64})` \|", readme))
    assert len(sums) == 4
    for info in datasets.list_datasets():
        digest = hashlib.sha256(datasets.path(info.name).read_bytes()).hexdigest()
        assert sums[info.filename] == digest


def test_path_resolves_in_the_checkout():
    assert datasets.path("etth1") == ROOT / "datasets" / "ETTh1.csv"
    assert datasets.datasets_dir() == ROOT / "datasets"


def test_environment_variable_overrides_the_folder(tmp_path, monkeypatch):
    shutil.copy(ROOT / "datasets" / "ETTh1.csv", tmp_path / "ETTh1.csv")
    monkeypatch.setenv(_bundled.DATASETS_ENV, str(tmp_path))
    assert datasets.path("etth1") == tmp_path / "ETTh1.csv"
    assert datasets.datasets_dir() == tmp_path
    # A file missing there is still found in the checkout.
    assert datasets.path("aapl") == ROOT / "datasets" / "yahoofinance-AAPL-20040819-20180120.csv"


def test_missing_files_raise_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(_bundled, "_candidate_dirs", lambda: [tmp_path])
    with pytest.raises(DataError, match=r"the file of dataset 'goog' \(yahoofinance-GOOG-20040819-20180120\.csv\) was not found \(looked in .*FORECAST_DATASETS"):
        datasets.path("goog")
    with pytest.raises(DataError, match="bundled datasets folder was not found"):
        datasets.datasets_dir()


def test_a_real_path_wins_over_a_dataset_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pd.DataFrame({"ds": pd.date_range("2020-01-01", periods=5), "y": range(5)}).to_csv("aapl", index=False)
    ds = data.load("aapl")
    assert len(ds) == 5 and ds.target == ("y",)
