"""forecast.windows: zero-copy sliding windows equal naive slicing; chronological splits."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from forecast import data, transforms as T
from forecast.errors import ConfigError, DataError
from forecast.windows import Split, Windows, WindowSpec, prepare, split_at, split_by_fraction

PROPS = settings(max_examples=50, deadline=None)


def naive_starts(values, L, H, stride, bounds, span, reach_back, drop):
    """The obvious loop the index must reproduce."""
    out = []
    for i in range(len(bounds) - 1):
        a, b = bounds[i], bounds[i + 1]
        lo, hi = span[i]
        origin = max(a, lo - L if reach_back else lo)
        for s in range(origin, min(b, hi) - L - H + 1, stride):
            if drop and not np.isfinite(values[s:s + L + H]).all():
                continue
            out.append(s)
    return out


@st.composite
def window_cases(draw):
    n_series = draw(st.integers(1, 3))
    sizes = draw(st.lists(st.integers(0, 40), min_size=n_series, max_size=n_series))
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    n, F = int(bounds[-1]), draw(st.integers(1, 3))
    values = np.arange(n * F, dtype=np.float64).reshape(n, F) * 0.5
    nan_rows = draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=4)) if n else []
    for r in nan_rows:
        values[r, draw(st.integers(0, F - 1))] = draw(st.sampled_from([np.nan, np.inf]))
    span = []
    for i in range(n_series):
        a, b = int(bounds[i]), int(bounds[i + 1])
        lo = draw(st.integers(a, b))
        span.append((lo, draw(st.integers(lo, b))))
    spec = WindowSpec(draw(st.integers(1, 8)), draw(st.integers(1, 5)), draw(st.integers(1, 4)))
    return values, spec, bounds, np.array(span).reshape(-1, 2), draw(st.booleans()), draw(st.booleans())


@PROPS
@given(window_cases())
def test_windows_equal_naive_slicing(case):
    values, spec, bounds, span, reach_back, drop = case
    w = Windows(values, spec, bounds=bounds, span=span, reach_back=reach_back, drop_nonfinite=drop)
    L, H = spec.lookback, spec.horizon
    expected = naive_starts(values, L, H, spec.stride, bounds, span, reach_back, drop)
    assert len(w) == len(expected)
    assert w.starts.tolist() == expected
    if expected:
        b = w.batch(np.arange(len(w)))
        ref_x = np.stack([values[s:s + L] for s in expected])
        ref_y = np.stack([values[s + L:s + L + H] for s in expected])
        np.testing.assert_array_equal(b.x, ref_x)
        np.testing.assert_array_equal(b.y, ref_y[..., 0] if values.shape[1] == 1 else ref_y)
        series = np.searchsorted(bounds, expected, side="right") - 1
        assert b.series.tolist() == series.tolist()
        k = len(w) - 1
        x, y = w.window(k)
        np.testing.assert_array_equal(x, values[expected[k]:expected[k] + L])
        assert np.shares_memory(x, values) and np.shares_memory(y, values)
        np.testing.assert_array_equal(w.starts_of([-1]), [expected[-1]])


@PROPS
@given(st.integers(20, 120), st.integers(1, 6), st.integers(1, 4), st.integers(1, 3),
       st.data())
def test_column_roles_equal_naive_slicing(n, L, H, stride, draw):
    F = 4
    values = np.random.default_rng(n).normal(size=(n, F))
    inputs = tuple(draw.draw(st.lists(st.integers(0, F - 1), min_size=1, max_size=F, unique=True)))
    targets = tuple(draw.draw(st.lists(st.integers(0, F - 1), min_size=1, max_size=2, unique=True)))
    known = tuple(draw.draw(st.lists(st.integers(0, F - 1), max_size=2, unique=True)))
    w = Windows(values, WindowSpec(L, H, stride, inputs=inputs, targets=targets, known=known))
    starts = list(range(0, n - L - H + 1, stride))
    b = w.materialize()
    np.testing.assert_array_equal(b.x, np.stack([values[s:s + L][:, inputs] for s in starts]))
    y = np.stack([values[s + L:s + L + H][:, targets] for s in starts])
    np.testing.assert_array_equal(b.y, y[..., 0] if len(targets) == 1 else y)
    if known:
        fut = np.stack([values[s + L:s + L + H][:, known] for s in starts])
        np.testing.assert_array_equal(b.x_future, fut)
    else:
        assert b.x_future is None
    assert b.x.flags.c_contiguous and b.y.flags.c_contiguous


def test_window_index_of_ten_million_rows_is_not_rows_times_lookback():
    rows, lookback, horizon = 10_000_000, 100, 10
    values = np.arange(rows, dtype=np.float64)
    values[5_000_000] = np.nan  # one gap: windows touching it are dropped
    tracemalloc.start()
    try:
        w = Windows(values, WindowSpec(lookback, horizon))
        b = w.batch(np.arange(256))
        n_windows = len(w)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n_windows == rows - lookback - horizon + 1 - (lookback + horizon)
    # The finiteness scan runs in blocks of 2**20 rows (about 2 MB peak); the data is
    # 80 MB and rows x lookback floats would be 8 GB.
    assert peak < values.nbytes / 20, f"peak {peak / 1e6:.1f} MB"
    assert b.x.shape == (256, lookback, 1)
    np.testing.assert_array_equal(b.x[-1, :, 0], values[255:255 + lookback])
    assert w.starts_of([n_windows - 1])[0] == rows - lookback - horizon


def test_windows_never_copy_the_series():
    values = np.random.default_rng(0).normal(size=(1000, 3))
    w = Windows(values, WindowSpec(24, 6))
    assert w.values is values or np.shares_memory(w.values, values)
    x, y = w.window(10)
    assert np.shares_memory(x, values) and not x.flags.writeable


def test_batches_cover_every_window_once():
    w = Windows(np.arange(100.0), WindowSpec(5, 2, stride=3))
    seen = np.concatenate([b.starts for b in w.batches(7)])
    np.testing.assert_array_equal(seen, w.starts)
    shuffled = np.concatenate([b.starts for b in w.batches(7, shuffle=True, seed=1)])
    again = np.concatenate([b.starts for b in w.batches(7, shuffle=True, seed=1)])
    np.testing.assert_array_equal(shuffled, again)
    assert sorted(shuffled) == list(w.starts)
    kept = sum(len(b) for b in w.batches(7, drop_last=True))
    assert kept == len(w) // 7 * 7
    assert next(w.batches(4, dtype=np.float32)).x.dtype == np.float32


def test_empty_windows_have_empty_batches():
    w = Windows(np.arange(5.0), WindowSpec(4, 3))
    assert len(w) == 0 and w.starts.size == 0
    b = w.materialize()
    assert b.x.shape == (0, 4, 1) and b.y.shape == (0, 3)


@pytest.mark.parametrize("kw,msg", [
    ({"lookback": 0, "horizon": 1}, "lookback must be a positive int, got 0"),
    ({"lookback": 3, "horizon": 1, "stride": 1.5}, "stride must be a positive int"),
])
def test_bad_window_spec(kw, msg):
    with pytest.raises(ConfigError, match=msg):
        WindowSpec(**kw)


def test_out_of_range_columns_and_bounds():
    with pytest.raises(ConfigError, match=r"targets columns \(5,\) out of range for 2 feature"):
        Windows(np.zeros((10, 2)), WindowSpec(2, 1, targets=(5,)))
    with pytest.raises(ConfigError, match="bounds must rise from 0 to 10"):
        Windows(np.zeros(10), WindowSpec(2, 1), bounds=[0, 4])


# ---- splits -------------------------------------------------------------------------------
def test_split_by_fraction_custom_layout():
    sp = split_by_fraction(17420, train=0.7, test=0.2)
    assert sp.sizes()["train"][0] == int(0.7 * 17420)
    assert sp.sizes()["test"][0] == int(0.2 * 17420)
    assert sp.sizes()["val"][0] == 17420 - int(0.7 * 17420) - int(0.2 * 17420)
    assert sp.end[0] == 17420
    sp2 = split_by_fraction(100, val=0.1, test=0.2)
    assert [int(sp2.sizes()[p][0]) for p in ("train", "val", "test")] == [70, 10, 20]
    sp3 = split_by_fraction(100, val=5, test=10)
    assert [int(sp3.sizes()[p][0]) for p in ("train", "val", "test")] == [85, 5, 10]


def test_split_at_rows_and_dates():
    ds = data.load("etth1")
    by_rows = split_at(ds, 8640, 11520, 14400)
    assert by_rows.span("test").tolist() == [[11520, 14400]]
    by_dates = split_at(ds, "2017-06-26", "2017-10-24", "2018-02-21")
    assert by_dates.span("val").tolist() == [[8640, 11520]]
    assert by_dates.span("test").tolist() == [[11520, 14400]]


def test_split_at_dates_per_series():
    frame = pd.concat([
        pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2021-01-01", periods=10), "y": np.arange(10.0)}),
        pd.DataFrame({"unique_id": "b", "ds": pd.date_range("2021-01-05", periods=10), "y": np.arange(10.0)}),
    ])
    ds = data.load(frame)
    sp = split_at(ds, "2021-01-07", "2021-01-09")
    assert sp.span("val").tolist() == [[6, 8], [12, 14]]
    assert sp.span("test").tolist() == [[8, 10], [14, 20]]


def test_reach_back_windows_keep_targets_inside_the_part():
    values = np.arange(100.0)
    sp = split_at(100, 60, 80)
    spec = WindowSpec(10, 5)
    val = sp.windows(values, spec, "val")
    first, last = val.batch([0, -1]).starts
    assert first == 50 and first + 10 == 60  # lookback reaches back, first target at the boundary
    assert last + 10 + 5 == 80  # last target is the last validation row
    inside = sp.windows(values, spec, "val", reach_back=False)
    assert inside.starts[0] == 60 and len(inside) == 20 - 15 + 1
    train = sp.windows(values, spec, "train")
    assert train.starts[-1] + 15 == 60


def test_invalid_splits():
    with pytest.raises(ConfigError, match="the training part must be non-empty"):
        split_at(100, 0, 50)
    with pytest.raises(ConfigError, match=r"do not fit in a series of 100 rows"):
        split_by_fraction(100, train=0.8, val=0.3, test=0.1)
    with pytest.raises(ConfigError, match="is a date: pass a Dataset"):
        split_at(100, "2020-01-01", 80)
    with pytest.raises(ConfigError, match="fraction must be in"):
        split_by_fraction(100, test=1.5)


# ---- from a dataset -----------------------------------------------------------------------
def test_prepare_fits_on_train_and_windows_every_part():
    ds = data.load("seattle-weather", covariates=["temp_min", "precipitation"])
    wd = prepare(ds, 28, 7, split_by_fraction(ds, val=0.15, test=0.15), T.StandardScaler())
    train_rows = wd.split.rows("train")
    np.testing.assert_allclose(wd.values[train_rows].mean(axis=0), 0, atol=1e-12)
    b = wd.val.batch([0])
    assert b.x.shape == (1, 28, 3) and b.y.shape == (1, 7)
    assert wd.columns == ("temp_max", "temp_min", "precipitation")


def test_prepare_too_short_training_part_says_rows_needed():
    ds = data.load("seattle-weather")
    with pytest.raises(DataError, match=r"the training part of series 'seattle-weather' has 100 rows but lookback 336 \+ horizon 96 needs at least 432 rows"):
        prepare(ds, 336, 96, split_at(ds, 100, 1200))


def test_prepare_empty_test_part_says_rows_needed():
    ds = data.load("seattle-weather")
    with pytest.raises(DataError, match=r"the test part \(5 rows at most per series\) yields no window for horizon 7; give it at least 7 rows"):
        prepare(ds, 30, 7, split_at(ds, 1000, 1456))


def test_gaps_drop_windows_that_touch_a_gap():
    ts = pd.date_range("2021-01-01", periods=60, freq="h").delete([30])
    ds = data.load(pd.DataFrame({"ds": ts, "y": np.arange(59.0)}), gaps="drop")
    wd = prepare(ds, 5, 2, split_by_fraction(ds, test=0.0))
    starts = wd.train.starts
    assert all(not (s <= 30 < s + 7) for s in starts)
    assert len(starts) == (60 - 7 + 1) - 7
