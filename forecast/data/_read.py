"""Reading a source (path, bundled dataset name, DataFrame or Series) into a raw frame."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from forecast.files import PARQUET_SUFFIXES, require_parquet
from forecast.data._bundled import bundled_info, bundled_path, BUNDLED
from forecast.errors import DataError

CSV_SUFFIXES = (".csv", ".txt", ".tsv", ".dat")
COMPRESSION_SUFFIXES = (".gz", ".bz2", ".zip", ".xz", ".zst")
_PARQUET_MAGIC = b"PAR1"


@dataclass
class Source:
    """Where rows came from, so that messages can point at them."""

    label: str  # shown in messages: a file name or "DataFrame"
    kind: str  # "csv", "parquet" or "frame"
    name: str  # a series name: the file stem or bundled dataset name
    path: Path | None = None
    encoding: str | None = None
    bundled: str | None = None  # the bundled dataset name, if any
    sep: str | None = None  # a CSV file's field separator

    def where(self, row: int) -> str:
        """``row 17 (line 19)`` for CSV files, ``row 17`` otherwise (rows count from 0,
        in the order of the input)."""
        if self.kind == "csv":
            return f"row {row} (line {row + 2} of {self.label})"
        return f"row {row}"


def read_source(source, fmt: str | None = None) -> tuple[pd.DataFrame, Source]:
    """Read `source` into a DataFrame without interpreting any column."""
    if isinstance(source, pd.Series):
        source = source.to_frame(name=source.name if source.name is not None else "y")
    if isinstance(source, pd.DataFrame):
        frame = source
        if isinstance(frame.index, pd.DatetimeIndex) or (
            frame.index.name is not None and frame.index.name not in frame.columns
        ):
            frame = frame.reset_index()
            if frame.columns[0] == "index":
                frame = frame.rename(columns={"index": "ds"})
        else:
            frame = frame.reset_index(drop=True)
        return frame, Source("DataFrame", "frame", "series")
    if not isinstance(source, (str, os.PathLike)):
        raise DataError(
            f"cannot load a {type(source).__name__}; pass a CSV or Parquet path, a bundled "
            f"dataset name ({', '.join(sorted(BUNDLED))}), a DataFrame or a Series"
        )
    path = Path(source).expanduser()
    bundled = None
    if not path.exists() and isinstance(source, str) and bundled_info(source) is not None:
        bundled = bundled_info(source).name
        path = bundled_path(source)
    _check_file(path, source)
    kind = fmt or _detect_format(path)
    src = Source(path.name, kind, bundled or _stem(path), path, bundled=bundled)
    if kind == "parquet":
        return _read_parquet(path, src), src
    return _read_csv(path, src), src


def _stem(path: Path) -> str:
    name = path.name
    for suffix in COMPRESSION_SUFFIXES + CSV_SUFFIXES + PARQUET_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name or path.name


def _check_file(path: Path, given) -> None:
    if not path.exists():
        raise DataError(
            f"file not found: {str(given)!r} (looked at {path.resolve()}); check the path, "
            f"or use a bundled dataset name: {', '.join(sorted(BUNDLED))}"
        )
    if path.is_dir():
        raise DataError(f"{str(given)!r} is a folder, not a file; pass a CSV or Parquet file")
    if path.stat().st_size == 0:
        raise DataError(
            f"file {path.name!r} is empty (0 bytes); it needs a header line and data rows"
        )


def _detect_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    while suffixes and suffixes[-1] in COMPRESSION_SUFFIXES:
        suffixes.pop()
    suffix = suffixes[-1] if suffixes else ""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if suffix in PARQUET_SUFFIXES or head[:4] == _PARQUET_MAGIC:
        return "parquet"
    compressed = path.suffix.lower() in COMPRESSION_SUFFIXES
    if not compressed and b"\x00" in head:
        raise DataError(
            f"file {path.name!r} is binary and not Parquet (its first bytes are "
            f"{head[:8]!r}); supported formats are CSV ({', '.join(CSV_SUFFIXES)}) and "
            f"Parquet ({', '.join(PARQUET_SUFFIXES)}); export the data to one of them"
        )
    if suffix and suffix not in CSV_SUFFIXES and not compressed:
        # Unknown extension with text content: try CSV, errors will say more.
        return "csv"
    return "csv"


def _read_parquet(path: Path, src: Source) -> pd.DataFrame:
    require_parquet(f"reading {src.label!r}")
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types
        raise DataError(
            f"could not read {src.label!r} as Parquet ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())}); the file "
            "may be truncated or not Parquet: re-export it, or save it as CSV"
        ) from None
    if isinstance(frame.index, pd.DatetimeIndex):
        frame = frame.reset_index()
    else:
        frame = frame.reset_index(drop=True)
    _check_rows(frame, src)
    return frame


def _sniff_sep(path: Path) -> str:
    if path.suffix.lower() == ".tsv":
        return "\t"
    try:
        with open(path, "rb") as fh:
            first = fh.readline(65536)
    except OSError:
        return ","
    if b"," not in first:
        for sep in (b";", b"\t", b"|"):
            if sep in first:
                return sep.decode()
    return ","


def _read_csv(path: Path, src: Source) -> pd.DataFrame:
    sep = _sniff_sep(path) if path.suffix.lower() not in COMPRESSION_SUFFIXES else ","
    for encoding in ("utf-8", "latin-1"):
        try:
            frame = pd.read_csv(path, sep=sep, encoding=encoding, low_memory=False)
            src.encoding, src.sep = encoding, sep
            break
        except UnicodeDecodeError:
            continue
        except pd.errors.EmptyDataError:
            raise DataError(
                f"file {src.label!r} has no columns (it holds only blank lines); it needs a "
                "header line and data rows"
            ) from None
        except (pd.errors.ParserError, ValueError, OSError, EOFError) as exc:
            raise DataError(
                f"could not parse {src.label!r} as CSV: {' '.join(str(exc).split())}; check the delimiter, quoting and "
                "the number of fields on each line, or pass a Parquet file"
            ) from None
    _check_rows(frame, src)
    return frame


def _check_rows(frame: pd.DataFrame, src: Source) -> None:
    if len(frame.columns) == 0 or len(frame) == 0:
        raise DataError(
            f"{src.label!r} has a header ({', '.join(map(str, frame.columns))}) but no data "
            "rows; add rows or choose another file"
        )
