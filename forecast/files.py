"""Output files written safely, for every layer (reports, model files, tables, batch runs).

:func:`atomic_write` opens a temporary file in the target's folder; on success it is
flushed, fsynced and renamed over the target, so an interrupted or failed command leaves
no half-written file and never clobbers a good one. :func:`write_table` writes a frame
as CSV or (with the ``parquet`` extra) Parquet through it.
"""

from __future__ import annotations

import contextlib
import io as _io
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from forecast.errors import MissingExtraError, OutputError

__all__ = ["OutputError", "atomic_write", "write_bytes", "write_table", "PARQUET_SUFFIXES",
           "is_parquet", "parquet_available", "require_parquet"]

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")


def is_parquet(path) -> bool:
    """Whether `path` names a Parquet file (by its suffix)."""
    return Path(str(path)).suffix.lower() in PARQUET_SUFFIXES


def parquet_available() -> bool:
    """Whether the ``parquet`` extra (pyarrow) is installed."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def require_parquet(what: str) -> None:
    """Raise `MissingExtraError` naming the ``parquet`` extra when pyarrow is missing;
    `what` says what needed it (e.g. "reading data.parquet")."""
    if not parquet_available():
        raise MissingExtraError(f"{what} needs Parquet support, which is an optional extra: "
                                "pip install 'forecast[parquet]' (or pip install pyarrow), "
                                "or use a .csv file")


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb") -> Iterator[Any]:
    """Open a temporary file beside `path` for writing; on success it is fsynced and
    renamed over `path`, on any error (or interrupt) it is removed and `path` is left
    as it was. Raises `OutputError` when the folder cannot be written."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"cannot write {path}: folder {folder} does not exist; create it "
                          "or choose another output path")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}; choose a writable "
                          "output path") from None
    try:
        os.chmod(tmp, _file_mode(path))
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise
    with contextlib.suppress(OSError):  # make the rename durable where the OS allows it
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _file_mode(path: Path) -> int:
    """The mode the file would get from a plain open(): the existing file's mode, else
    0o666 less the umask (mkstemp creates 0o600)."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def write_table(frame, path) -> Path:
    """Write a DataFrame to `path` atomically: Parquet for ``.parquet``/``.pq``, else CSV
    (ISO timestamps)."""
    path = Path(path)
    if is_parquet(path):
        require_parquet(f"writing {path}")
        buf = _io.BytesIO()
        frame.to_parquet(buf, index=False)
        with atomic_write(path, "wb") as fh:
            fh.write(buf.getvalue())
    else:
        text = frame.to_csv(index=False)
        with atomic_write(path, "w") as fh:
            fh.write(text)
    return path


def write_bytes(path, data: bytes) -> Path:
    """Write `data` to `path` atomically."""
    with atomic_write(path, "wb") as fh:
        fh.write(data)
    return Path(path)
