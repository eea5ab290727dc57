"""forecast.data: loading, strict validation (one test per malformed input), time grid."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecast import data
from forecast.data import Dataset, Frequency, LoadOptions, infer_frequency
from forecast.errors import ConfigError, DataError, DataWarning

ROOT = Path(__file__).resolve().parent.parent

HOURLY = "date,OT\n" + "".join(f"2020-01-01 {h:02d}:00:00,{10 + h}.5\n" for h in range(10))


def write(tmp_path, text: str, name: str = "s.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def hourly_rows(values, start="2020-01-01") -> str:
    ts = pd.date_range(start, periods=len(values), freq="h")
    return "date,OT\n" + "".join(f"{t:%Y-%m-%d %H:%M:%S},{v}\n" for t, v in zip(ts, values))


# ---- sources ------------------------------------------------------------------------------
def test_missing_file_says_where_it_looked(tmp_path):
    with pytest.raises(DataError, match=r"file not found: '.*nope\.csv'.*bundled dataset name: aapl"):
        data.load(tmp_path / "nope.csv", target="OT")


def test_empty_file(tmp_path):
    path = write(tmp_path, "")
    with pytest.raises(DataError, match=r"file 's\.csv' is empty \(0 bytes\)"):
        data.load(path)


def test_blank_lines_only_file(tmp_path):
    path = write(tmp_path, "\n\n\n")
    with pytest.raises(DataError, match="has no columns"):
        data.load(path)


def test_header_without_rows(tmp_path):
    path = write(tmp_path, "date,OT\n")
    with pytest.raises(DataError, match=r"has a header \(date, OT\) but no data rows"):
        data.load(path)


def test_binary_file_is_unreadable(tmp_path):
    path = tmp_path / "s.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(DataError, match=r"binary and not Parquet.*supported formats are CSV"):
        data.load(path)


def test_corrupt_parquet_is_unreadable(tmp_path):
    path = tmp_path / "s.parquet"
    path.write_bytes(b"PAR1 this is not really parquet")
    with pytest.raises(DataError, match=r"could not read 's\.parquet' as Parquet.*re-export"):
        data.load(path)


def test_ragged_csv_is_unreadable(tmp_path):
    path = write(tmp_path, "date,OT\n2020-01-01,1\n2020-01-02,2,3,4\n")
    with pytest.raises(DataError, match=r"could not parse 's\.csv' as CSV.*number of fields"):
        data.load(path)


def test_folder_is_not_a_file(tmp_path):
    with pytest.raises(DataError, match="is a folder"):
        data.load(tmp_path)


def test_unsupported_source_type():
    with pytest.raises(DataError, match="cannot load a list"):
        data.load([1, 2, 3])


def test_parquet_roundtrip(tmp_path):
    frame = pd.DataFrame({"timestamp": pd.date_range("2021-01-01", periods=48, freq="h"),
                          "load": np.arange(48.0)})
    frame.to_parquet(tmp_path / "s.parquet")
    ds = data.load(tmp_path / "s.parquet")
    assert ds.target == ("load",) and ds.freq.alias == "h" and len(ds) == 48


def test_dataframe_with_datetime_index_and_series():
    idx = pd.date_range("2021-01-01", periods=30, freq="D")
    ds = data.load(pd.DataFrame({"y": np.arange(30.0)}, index=idx))
    assert ds.freq.alias == "D" and ds.target == ("y",)
    ds2 = data.load(pd.Series(np.arange(30.0), index=idx, name="sales"))
    assert ds2.target == ("sales",)
    pd.testing.assert_series_equal(ds2.to_series(), pd.Series(np.arange(30.0), index=pd.DatetimeIndex(idx, name="ds"), name="sales"), check_freq=False, check_index_type=False)


def test_semicolon_csv_is_sniffed(tmp_path):
    path = write(tmp_path, HOURLY.replace(",", ";"))
    assert len(data.load(path)) == 10


def test_latin1_file_is_read(tmp_path):
    path = tmp_path / "s.csv"
    path.write_bytes(("date,temp \u00b0C\n" + "".join(f"2020-01-{d:02d},{d}\n" for d in range(1, 9))).encode("latin-1"))
    ds = data.load(path)
    assert ds.target == ("temp \u00b0C",) and ds.report.encoding == "latin-1"


# ---- columns ------------------------------------------------------------------------------
def test_no_time_column(tmp_path):
    path = write(tmp_path, "a,b\nx,1\ny,2\n")
    with pytest.raises(DataError, match=r"no time column found in s\.csv: none of the columns 'a', 'b'.*time_col="):
        data.load(path)


def test_time_column_detected_by_content(tmp_path):
    path = write(tmp_path, "Day,sales\n2021-03-01,1\n2021-03-02,2\n2021-03-03,3\n")
    ds = data.load(path)
    assert ds.report.time_col == "Day" and ds.freq.alias == "D"


def test_given_time_column_missing(tmp_path):
    path = write(tmp_path, HOURLY)
    with pytest.raises(DataError, match=r"time column 'Date' not found.*did you mean 'date'"):
        data.load(path, time_col="Date")


def test_target_missing_lists_columns(tmp_path):
    path = write(tmp_path, "Date,Open,Close\n2020-01-02,1,2\n2020-01-03,1,2\n")
    with pytest.raises(DataError, match=r"target column 'Adj' not found in s\.csv.*columns are 'Date', 'Open', 'Close'"):
        data.load(path, target="Adj")


def test_target_typo_suggests_a_column(tmp_path):
    path = write(tmp_path, "Date,Open,Close\n2020-01-02,1,2\n2020-01-03,1,2\n")
    with pytest.raises(DataError, match=r"did you mean 'Close'"):
        data.load(path, target="close")


def test_several_numeric_columns_need_a_target(tmp_path):
    path = write(tmp_path, "Date,Open,Close\n2020-01-02,1,2\n2020-01-03,1,2\n")
    with pytest.raises(DataError, match=r"2 numeric columns \('Open', 'Close'\); choose the one to forecast with target="):
        data.load(path)


def test_non_numeric_target(tmp_path):
    text = hourly_rows([1, 2, "abc", 4, "n/a?", 6])
    with pytest.raises(DataError, match=r"column 'OT' has 2 non-numeric value\(s\) \(first at row 2 \(line 4 of s\.csv\): 'abc'\).*choose another target"):
        data.load(write(tmp_path, text))


def test_non_numeric_covariate(tmp_path):
    with pytest.raises(DataError, match=r"column 'weather' has .* non-numeric.*'drizzle'.*covariates"):
        data.load("seattle-weather", covariates=["weather"])


def test_covariate_missing(tmp_path):
    with pytest.raises(DataError, match=r"covariate column 'Volum' not found.*did you mean 'Volume'"):
        data.load("aapl", covariates=["Volum"])


# ---- timestamps ---------------------------------------------------------------------------
def test_unparseable_timestamps(tmp_path):
    text = "date,OT\n2020-01-01,1\n2020-01-02,2\n2020-13-45,3\n2020-01-04,4\n"
    with pytest.raises(DataError, match=r"time column 'date' has 1 value\(s\) that cannot be read as timestamps .*row 2 \(line 4 of s\.csv\): '2020-13-45'"):
        data.load(write(tmp_path, text))


def test_day_first_dates_are_read_day_first_and_said(tmp_path):
    """31/12/2015 dates: month first fails at the first day past the 12th, and one
    day-first format reads every row, so the file is read day first and the report says
    so. A file that day first cannot read whole still gets the mixed-formats error, and
    pandas' year-day-month guess for ISO dates is never taken."""
    rows = pd.date_range("2020-01-01", periods=40, freq="D")
    text = "date,OT\n" + "".join(f"{t:%d/%m/%Y},{i}\n" for i, t in enumerate(rows))
    ds = data.load(write(tmp_path, text))
    assert list(ds.frame["ds"]) == list(rows) and ds.freq.alias == "D"
    note = next(n for n in ds.report.notes if "day first" in n)
    assert "(%d/%m/%Y): '13/01/2020' (row 12 (line 14 of s.csv)) cannot be month first" in note
    dotted = "date,OT\n" + "".join(f"{t:%d.%m.%Y %H:%M},{i}\n" for i, t in enumerate(rows))
    assert list(data.load(write(tmp_path, dotted, "d.csv")).frame["ds"]) == list(rows)
    mixed = text.replace("05/01/2020", "2020-01-05")
    with pytest.raises(DataError, match="mixes timestamp formats"):
        data.load(write(tmp_path, mixed, "m.csv"))
    ydm = "date,OT\n2020-01-01,1\n2020-13-01,2\n2020-01-03,3\n"  # not year-day-month
    with pytest.raises(DataError, match="cannot be read as timestamps"):
        data.load(write(tmp_path, ydm, "y.csv"))


def test_decimal_commas_and_thousands_separators_are_read_as_numbers(tmp_path):
    """A ';'-separated file writes decimal commas (20,7; 1.234,5); a comma-separated one
    can quote numbers with commas between thousands ("1,234.5"). Either is read when
    every value of the column is of that kind, and the report says so; anything else
    is still named as non-numeric."""
    days = pd.date_range("2020-01-01", periods=6, freq="D")
    vals = ["20,7", "1.234,5", "-3", "0,25", "", "7"]
    text = "date;OT\n" + "".join(f"{t:%Y-%m-%d};{v}\n" for t, v in zip(days, vals))
    ds = data.load(write(tmp_path, text), gaps="fill")
    np.testing.assert_allclose(ds.frame["OT"], [20.7, 1234.5, -3.0, 0.25, 3.625, 7.0])
    assert any("decimal commas" in n and "';'-separated" in n for n in ds.report.notes)
    us = "date,OT\n" + "".join(f'{t:%Y-%m-%d},"{v}"\n' for t, v in
                               zip(days, ["1,234.5", "12", "2,000", "3.5", "1,000,000", "-4"]))
    ds = data.load(write(tmp_path, us, "u.csv"))
    np.testing.assert_allclose(ds.frame["OT"], [1234.5, 12, 2000, 3.5, 1e6, -4])
    assert any("commas between thousands" in n for n in ds.report.notes)
    odd = text.replace("0,25", "0,25 C")
    with pytest.raises(DataError, match=r"column 'OT' is written with decimal commas, but 1 "
                       r"value\(s\) are no such number \(first at row 3 \(line 5 of o.csv\): "
                       "'0,25 C'\\)"):
        data.load(write(tmp_path, odd, "o.csv"), gaps="fill")
    both = text.replace("0,25", "0.25")  # a decimal point among decimal commas
    with pytest.raises(DataError, match=r"decimal commas, but 1 value\(s\).*'0.25'"):
        data.load(write(tmp_path, both, "b.csv"), gaps="fill")
    words = "date;OT\n2020-01-01;high\n2020-01-02;low\n"  # no comma anywhere: as before
    with pytest.raises(DataError, match="2 non-numeric value"):
        data.load(write(tmp_path, words, "w.csv"))


def test_dates_and_times_of_day_in_two_columns_make_one_timestamp(tmp_path):
    """Weather-station exports write Date,Time,...: the two are joined (and said), so an
    hourly file is not read as 24 duplicates a day. Not when the user named the time
    column, nor when the other column is not all times of day."""
    hours = pd.date_range("2020-01-01", periods=72, freq="h")
    text = "Date,Time,T\n" + "".join(f"{t:%Y-%m-%d},{t:%H:%M},{i}\n"
                                      for i, t in enumerate(hours))
    ds = data.load(write(tmp_path, text))
    assert list(ds.frame["ds"]) == list(hours) and ds.freq.alias == "h"
    np.testing.assert_array_equal(ds.frame["T"], np.arange(72.0))
    assert any("joined the dates of column 'Date' with the times of day of column 'Time'" in n
               for n in ds.report.notes)
    with pytest.raises(DataError, match="duplicated timestamp"):
        data.load(write(tmp_path, text), time_col="Date")
    broken = text.replace("05:00", "n/a", 1)
    with pytest.raises(DataError, match="duplicated timestamp"):
        data.load(write(tmp_path, broken, "b.csv"))


def test_timestamps_split_into_year_month_day_hour_columns_are_built(tmp_path):
    """UCI and NOAA exports write year, month, day and hour apart (monthly files year and
    month): without a time column the timestamps are built from them, said, and the part
    columns are never taken for the target. A row whose parts make no date is named."""
    hours = pd.date_range("2010-01-01", periods=60, freq="h")
    text = "No,year,month,day,hour,T\n" + "".join(
        f"{i + 1},{t.year},{t.month},{t.day},{t.hour},{i}\n" for i, t in enumerate(hours))
    with pytest.raises(DataError, match="numeric columns"):  # No and T: which one?
        data.load(write(tmp_path, text))
    ds = data.load(write(tmp_path, text), target="T")
    assert list(ds.frame["ds"]) == list(hours) and ds.freq.alias == "h"
    assert "built the timestamps from columns 'year', 'month', 'day', 'hour'" in ds.report.notes
    months = "Year,Month,Temperature\n" + "".join(f"{1920 + k // 12},{k % 12 + 1},{k}\n"
                                                    for k in range(30))
    ds = data.load(write(tmp_path, months, "m.csv"))
    assert ds.target == ("Temperature",) and ds.freq.alias == "MS"
    assert list(ds.frame["ds"]) == list(pd.date_range("1920-01-01", periods=30, freq="MS"))
    bad = months.replace("1920,5,4", "1920,13,4")
    with pytest.raises(DataError, match=r"1 row\(s\) do not make a date \(first at row 4 "
                       r"\(line 6 of b.csv\): Year=1920, Month=13\)"):
        data.load(write(tmp_path, bad, "b.csv"))
    with pytest.raises(DataError, match="no time column found"):  # a year alone is not enough
        data.load(write(tmp_path, "year,T\n2020,1\n2021,2\n", "y.csv"))


def test_mixed_timestamp_formats(tmp_path):
    text = "date,OT\n2020-01-01,1\n2020-01-02,2\n01/03/2020,3\n2020-01-04,4\n"
    with pytest.raises(DataError, match=r"mixes timestamp formats: row 0 .* is '2020-01-01' but row 2 .* is '01/03/2020'.*one format"):
        data.load(write(tmp_path, text))


def test_empty_timestamps(tmp_path):
    text = "date,OT\n2020-01-01,1\n,2\n2020-01-03,3\n"
    with pytest.raises(DataError, match=r"time column 'date' has 1 empty timestamp\(s\) \(first at row 1"):
        data.load(write(tmp_path, text))


def test_numeric_time_column_needs_a_format(tmp_path):
    text = "date,OT\n20200101,1\n20200102,2\n20200103,3\n"
    with pytest.raises(DataError, match=r"holds numbers .*time_format="):
        data.load(write(tmp_path, text))
    ds = data.load(write(tmp_path, text), time_format="%Y%m%d")
    assert ds.freq.alias == "D"


def test_timezone_aware_mixed_with_naive(tmp_path):
    text = ("date,OT\n2020-01-01 00:00:00+01:00,1\n2020-01-01 01:00:00+01:00,2\n"
            "2020-01-01 02:00:00,3\n")
    with pytest.raises(DataError, match=r"mixes timezone-aware and naive timestamps: 2 carry a timezone \(first at row 0.*1 do not \(first at row 2.*'2020-01-01 02:00:00'"):
        data.load(write(tmp_path, text))


def test_timezone_aware_objects_mixed_with_naive():
    frame = pd.DataFrame({"ds": [pd.Timestamp("2020-01-01", tz="UTC"), pd.Timestamp("2020-01-02")],
                          "y": [1.0, 2.0]}, dtype=object)
    frame["y"] = frame["y"].astype(float)
    with pytest.raises(DataError, match="mixes timezone-aware and naive"):
        data.load(frame)


def test_different_utc_offsets_are_converted_to_utc(tmp_path):
    text = ("date,OT\n2020-03-29 00:00:00+01:00,1\n2020-03-29 01:00:00+01:00,2\n"
            "2020-03-29 03:00:00+02:00,3\n2020-03-29 04:00:00+02:00,4\n")
    ds = data.load(write(tmp_path, text))
    assert ds.report.timezone == "UTC" and ds.freq.alias == "h"
    assert any("converted them all to UTC" in n for n in ds.report.notes)


def test_timezone_aware_series_keeps_its_zone():
    idx = pd.date_range("2021-03-25", periods=24 * 7, freq="h", tz="Europe/Berlin")
    ds = data.load(pd.DataFrame({"ds": idx, "y": np.arange(len(idx), dtype=float)}))
    assert ds.report.timezone == "Europe/Berlin" and ds.freq.alias == "h"
    assert ds.future_index(2)[0] == idx[-1] + pd.Timedelta(hours=1)


# ---- duplicates and order -----------------------------------------------------------------
def test_duplicated_timestamps_are_an_error(tmp_path):
    text = hourly_rows([1, 2, 3]) + "2020-01-01 01:00:00,9\n"
    with pytest.raises(DataError, match=r"1 duplicated timestamp\(s\) \(first: 2020-01-01 01:00:00 at row 1 .* and row 3 .*duplicates='mean'"):
        data.load(write(tmp_path, text))


def test_a_repeated_hour_where_clocks_go_back_is_named_daylight_saving(tmp_path):
    """Local hourly times repeat an hour on the night clocks go back: the error says so
    and how to write such times; a repeat on an ordinary day does not get that hint."""
    idx = pd.date_range("2021-10-30", "2021-11-01", freq="h", tz="Europe/Berlin")
    local = pd.DataFrame({"ds": idx.tz_localize(None).strftime("%Y-%m-%d %H:%M"),
                          "y": np.arange(len(idx), dtype=float)})
    path = tmp_path / "local.csv"
    local.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"2021-10-31 02:00:00 .*clocks go back for daylight "
                                        r"saving.*UTC offset.*duplicates='mean'"):
        data.load(path)
    text = hourly_rows([1, 2, 3]) + "2020-01-01 01:00:00,9\n"
    with pytest.raises(DataError) as err:
        data.load(write(tmp_path, text))
    assert "daylight" not in str(err.value)


def test_duplicated_timestamps_aggregated_when_asked(tmp_path):
    text = hourly_rows([1, 2, 3]) + "2020-01-01 01:00:00,4\n"
    ds = data.load(write(tmp_path, text), duplicates="mean")
    assert ds.frame["OT"].tolist() == [1.0, 3.0, 3.0]
    assert ds.report.duplicates == 1
    assert any("aggregated 1 row(s)" in n for n in ds.report.notes)
    last = data.load(write(tmp_path, text), duplicates="last")
    assert last.frame["OT"].tolist() == [1.0, 4.0, 3.0]


def test_unsorted_rows_are_sorted_and_reported(tmp_path):
    lines = hourly_rows([1, 2, 3, 4, 5]).splitlines()
    text = "\n".join([lines[0], lines[1], lines[4], lines[2], lines[3], lines[5]]) + "\n"
    ds = data.load(write(tmp_path, text))
    assert ds.frame["OT"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert ds.report.rows_sorted == 1
    assert any("not in time order" in n and "sorted them by time" in n for n in ds.report.notes)


def test_reversed_file_is_sorted(tmp_path):
    lines = hourly_rows(range(6)).splitlines()
    ds = data.load(write(tmp_path, "\n".join([lines[0]] + lines[:0:-1]) + "\n"))
    assert ds.frame["OT"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


# ---- values -------------------------------------------------------------------------------
def test_sentinel_values_are_an_error_by_default(tmp_path):
    text = hourly_rows([1, 2, -9999, 4, -9999])
    with pytest.raises(DataError, match=r"column 'OT' has 2 value\(s\) like -9999 \(first at row 2 .*2020-01-01 02:00:00\), a common placeholder.*missing_values=\[-9999\]"):
        data.load(write(tmp_path, text))


def test_configured_markers_become_missing(tmp_path):
    text = hourly_rows([1, 2, -9999, 4, "?", 6])
    with pytest.raises(DataError, match=r"column 'OT' has 2 missing value\(s\), 2 of them missing-value markers"):
        data.load(write(tmp_path, text), missing_values=[-9999, "?"])
    ds = data.load(write(tmp_path, text), missing_values=[-9999, "?"], gaps="fill")
    assert ds.frame["OT"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert ds.report.missing_markers == {"OT": 2}
    assert ds.report.values_filled == {"OT": 2}


def test_markers_disabled_keeps_sentinels(tmp_path):
    ds = data.load(write(tmp_path, hourly_rows([1, -9999, 3])), missing_values=[])
    assert ds.frame["OT"].tolist() == [1.0, -9999.0, 3.0]


def test_nan_values_are_an_error_by_default(tmp_path):
    text = hourly_rows([1, 2, "", 4])
    with pytest.raises(DataError, match=r"column 'OT' has 1 missing value\(s\) \(first at row 2 .*2020-01-01 02:00:00\); pass gaps='fill'"):
        data.load(write(tmp_path, text))


def test_infinite_values_are_an_error(tmp_path):
    text = hourly_rows([1, 2, "inf", 4])
    with pytest.raises(DataError, match=r"column 'OT' has 1 infinite value\(s\) \(first at row 2 .*2020-01-01 02:00:00: inf\)"):
        data.load(write(tmp_path, text))


def test_all_missing_column(tmp_path):
    with pytest.raises(DataError, match=r"column 'OT' has no values"):
        data.load(write(tmp_path, hourly_rows(["", "", ""])), gaps="fill")


def test_constant_series_warns_and_loads(tmp_path):
    with pytest.warns(DataWarning, match=r"target column 'OT' is constant \(every value is 5\).*scale 1"):
        ds = data.load(write(tmp_path, hourly_rows([5] * 8)))
    assert ds.report.constant_columns == ["OT"]


def test_series_too_short_for_lookback_and_horizon(tmp_path):
    path = write(tmp_path, hourly_rows(range(20)))
    with pytest.raises(DataError, match=r"has 20 rows after validation but at least 30 are needed"):
        data.load(path, min_length=30)
    ds = data.load(path)
    with pytest.raises(DataError, match=r"has 20 rows but lookback 24 \+ horizon 6 needs at least 30 rows"):
        ds.check_length(24, 6)
    ds.check_length(14, 6)


# ---- time grid ----------------------------------------------------------------------------
def test_gaps_are_an_error_by_default(tmp_path):
    ts = list(pd.date_range("2020-01-01", periods=12, freq="h").delete([3, 4, 8]))
    text = "date,OT\n" + "".join(f"{t},{i}\n" for i, t in enumerate(ts))
    with pytest.raises(DataError, match=r"found 3 missing timestamp\(s\) in 2 gap\(s\) on the hourly grid \(h\) \(first: 2 missing after row 2 .* 2020-01-01 02:00:00, next timestamp 2020-01-01 05:00:00\); pass gaps='fill'"):
        data.load(write(tmp_path, text))


def test_gaps_fill_interpolates_and_counts(tmp_path):
    ts = pd.date_range("2020-01-01", periods=8, freq="h").delete([2, 3])
    text = "date,OT\n" + "".join(f"{t},{v}\n" for t, v in zip(ts, [0, 1, 4, 5, 6, 7]))
    ds = data.load(write(tmp_path, text), gaps="fill")
    assert ds.frame["OT"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    assert ds.report.points_filled == 2 and ds.report.values_filled == {"OT": 2}
    assert ds.report.gaps == 1 and ds.report.missing_timestamps == 2
    ff = data.load(write(tmp_path, text), gaps="fill", fill_method="ffill")
    assert ff.frame["OT"].tolist()[:4] == [0.0, 1.0, 1.0, 1.0]


def test_gaps_drop_keeps_nan_rows(tmp_path):
    ts = pd.date_range("2020-01-01", periods=8, freq="h").delete([2, 3])
    text = "date,OT\n" + "".join(f"{t},{v}\n" for t, v in zip(ts, range(6)))
    ds = data.load(write(tmp_path, text), gaps="drop")
    assert len(ds) == 8 and ds.frame["OT"].isna().sum() == 2
    assert any("windows that touch them are dropped" in n for n in ds.report.notes)


def test_fill_drops_leading_missing_rows(tmp_path):
    ds = data.load(write(tmp_path, hourly_rows(["", "", 3, 4, "", 6])), gaps="fill")
    assert ds.frame["OT"].tolist() == [3.0, 4.0, 5.0, 6.0]
    assert ds.report.rows_dropped == 2


def test_irregular_timestamps(tmp_path):
    text = "date,OT\n" + "".join(f"2020-01-01 {h:02d}:00:00,{h}\n" for h in range(6)) + "2020-01-01 06:30:00,6\n"
    with pytest.raises(DataError, match=r"1 timestamp\(s\) are not on the hourly grid \(h\) inferred from the data: first at row 6 .* 2020-01-01 06:30:00.*irregular"):
        data.load(write(tmp_path, text))


def test_single_row_cannot_infer_frequency(tmp_path):
    with pytest.raises(DataError, match=r"cannot infer the frequency.*freq="):
        data.load(write(tmp_path, "date,OT\n2020-01-01,1\n"))
    assert data.load(write(tmp_path, "date,OT\n2020-01-01,1\n"), freq="D").freq.alias == "D"


def test_bad_freq_option():
    with pytest.raises(ConfigError, match="not a pandas offset alias"):
        Frequency("fortnightly")


@pytest.mark.parametrize("alias,periods", [("h", 50), ("15min", 50), ("D", 30), ("W-WED", 20),
                                           ("MS", 24), ("ME", 24), ("QS-JAN", 12), ("YS-JAN", 5)])
def test_infer_clock_and_calendar_frequencies(alias, periods):
    idx = pd.date_range("2019-01-02" if alias.startswith("W") else "2019-01-01", periods=periods, freq=alias)
    assert infer_frequency(idx).alias == alias


def test_business_days_without_holidays_are_b():
    idx = pd.bdate_range("2021-03-01", periods=20)
    freq = infer_frequency(idx)
    assert freq.alias == "B" and freq.season_length == 5


def test_stock_files_load_with_target_only_on_trading_days():
    ds = data.load(ROOT / "datasets/yahoofinance-AAPL-20040819-20180120.csv", target="Close")
    assert ds.freq.alias == "XNYS" and ds.freq.name == "trading days (NYSE calendar)"
    assert ds.report.missing_timestamps == 0 and len(ds) == 3379
    # 2018-01-19 is a Friday: the next trading days skip the weekend.
    assert list(ds.future_index(3).strftime("%Y-%m-%d")) == ["2018-01-22", "2018-01-23", "2018-01-24"]


def test_future_trading_days_skip_holidays():
    raw = pd.read_csv(ROOT / "datasets/yahoofinance-GOOG-20040819-20180120.csv")
    cut = raw[raw.Date <= "2017-12-22"]  # a Friday; Monday 2017-12-25 is Christmas
    ds = data.load(cut, target="Close")
    assert list(ds.future_index(2).strftime("%Y-%m-%d")) == ["2017-12-26", "2017-12-27"]


def test_weather_file_loads_on_a_daily_grid():
    ds = data.load(ROOT / "datasets/seattle-weather.csv", target="temp_max")
    assert ds.freq.alias == "D" and len(ds) == 1461 and ds.freq.season_length == 7
    assert str(ds.future_index(1)[0].date()) == "2016-01-01"


def test_etth1_is_hourly_with_covariates():
    ds = data.load("etth1", covariates="all")
    assert ds.freq.alias == "h" and ds.freq.season_length == 24
    assert ds.columns == ("OT", "HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL")
    assert ds.values().shape == (17420, 7)


# ---- long format --------------------------------------------------------------------------
def long_frame():
    rows = []
    for uid, n in (("b", 5), ("a", 7)):
        for i, t in enumerate(pd.date_range("2021-01-01", periods=n, freq="D")):
            rows.append({"unique_id": uid, "ds": t, "y": float(i), "temp": float(i) / 2})
    return pd.DataFrame(rows).sample(frac=1, random_state=0).reset_index(drop=True)


def test_long_format_many_series():
    frame = long_frame()
    ds = data.load(frame, covariates=["temp"])
    assert ds.ids == list(pd.unique(frame.unique_id)) and ds.n_series == 2
    sizes = {"a": 7, "b": 5}
    assert list(np.diff(ds.bounds)) == [sizes[u] for u in ds.ids]
    assert ds.frame.loc[ds.frame.unique_id == "a", "y"].tolist() == [float(i) for i in range(7)]
    assert ds.series("a").to_series().index[-1] == pd.Timestamp("2021-01-07")
    assert ds.future_index(1, uid="b")[0] == pd.Timestamp("2021-01-06")
    assert list(ds.to_long().columns) == ["unique_id", "ds", "y", "temp"]


def test_long_format_duplicates_are_per_series():
    frame = long_frame()
    frame = pd.concat([frame, frame[frame.unique_id == "a"].head(1)], ignore_index=True)
    with pytest.raises(DataError, match=r"1 duplicated timestamp\(s\) in series 'a'"):
        data.load(frame)


def test_long_format_gaps_name_the_series():
    frame = long_frame()
    frame = frame.drop(frame[(frame.unique_id == "a") & (frame.y == 3)].index)
    with pytest.raises(DataError, match=r"first of series 'a':"):
        data.load(frame)
    ds = data.load(frame, gaps="fill")
    assert ds.report.points_filled == 1 and len(ds) == 12


def test_long_format_mixed_frequencies():
    a = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2021-01-01", periods=5, freq="D"), "y": 1.0})
    b = pd.DataFrame({"unique_id": "b", "ds": pd.date_range("2021-01-01", periods=5, freq="h"), "y": 1.0})
    with pytest.raises(DataError, match=r"different frequencies \(D: 'a'; h: 'b'\)"):
        data.load(pd.concat([a, b]), missing_values=[])


# ---- options and report -------------------------------------------------------------------
def test_invalid_options_are_config_errors():
    with pytest.raises(ConfigError, match=r"gaps='skip' is not valid; choose one of error, fill, drop"):
        LoadOptions(gaps="skip")
    with pytest.raises(ConfigError, match=r"unknown load option\(s\) \['taget'\]"):
        data.load("aapl", taget="Close")


def test_report_is_plain_data():
    ds = data.load("seattle-weather")
    d = ds.report.to_dict()
    assert d["frequency"] == "D" and d["rows"] == 1461 and d["target"] == ["temp_max"]
    assert "frequency inferred: daily (D)" in ds.report.summary()


def test_load_never_warns_on_clean_data():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ("aapl", "goog", "etth1", "seattle-weather"):
            assert isinstance(data.load(name), Dataset)
