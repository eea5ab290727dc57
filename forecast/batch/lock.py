"""The output folder's lock: one batch at a time writes into an output folder."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path
from typing import Any

from forecast.batch.manifest import now_iso
from forecast.errors import BatchError, LockHeldError

__all__ = ["BatchLock", "lock_holder", "read_json_fd"]


class BatchLock:
    """An exclusive ``flock`` on ``OUTPUT/.lock``. The kernel drops it when its process
    dies, however it dies, so a lock left by a dead run is taken over (and reported in
    `stale`); a live holder makes `acquire` raise `LockHeldError` naming it."""

    def __init__(self, folder: Path, run_id: str):
        self.path = Path(folder) / ".lock"
        self.run_id = run_id
        self.fd: int | None = None
        self.stale: dict[str, Any] | None = None

    def acquire(self) -> "BatchLock":
        import fcntl

        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise BatchError(f"cannot create the lock file {self.path}: "
                             f"{exc.strerror or exc}; check the output folder") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = read_json_fd(fd)
            os.close(fd)
            who = (f"pid {holder.get('pid')} on {holder.get('host')}, run "
                   f"{holder.get('run_id')!r}, since {holder.get('since')}") if holder else \
                "another process"
            raise LockHeldError(f"{self.path.parent} is locked by a running batch ({who}); "
                                "wait for it to finish or give another output folder") from None
        previous = read_json_fd(fd)
        if previous.get("pid") and not previous.get("released"):
            self.stale = previous  # its process died without releasing: taken over
        info = {"pid": os.getpid(), "host": socket.gethostname(), "run_id": self.run_id,
                "since": now_iso()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        os.fsync(fd)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        import fcntl

        with contextlib.suppress(OSError):
            info = read_json_fd(self.fd)
            info["released"] = now_iso()
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, json.dumps(info).encode(), 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> "BatchLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def read_json_fd(fd: int) -> dict[str, Any]:
    try:
        raw = os.pread(fd, 65536, 0)
        value = json.loads(raw.decode("utf-8")) if raw.strip() else {}
        return value if isinstance(value, dict) else {}
    except (OSError, ValueError):
        return {}


def lock_holder(folder) -> dict[str, Any] | None:
    """Who holds the lock of output folder `folder` now (None when nobody does)."""
    import fcntl

    path = Path(folder) / ".lock"
    if not path.is_file():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return read_json_fd(fd) or {"pid": None}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
