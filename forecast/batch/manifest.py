"""The run manifest: what a batch run writes about itself, and the small JSON helpers
every part of the batch engine shares.

``runs/<run id>/manifest.json`` is a `RunManifest` (a JSON object, typed here), one
`SeriesEntry` per series; ``series/<slug>/result.json`` is the entry of one finished
series (written last, after its other files). `forecast batch status`, the summary page
and the CLI read these shapes and nothing else.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, TypedDict

from forecast.files import write_bytes

__all__ = ["RunManifest", "SeriesEntry", "MANIFEST", "RESULT", "MANIFEST_FORMAT",
           "MANIFEST_VERSION", "STATUSES", "EXIT_OK", "EXIT_ERROR", "EXIT_PARTIAL",
           "count_statuses", "not_ok", "manifest_exit_code", "now_iso", "write_json",
           "read_json", "sha256"]

EXIT_OK, EXIT_ERROR, EXIT_PARTIAL = 0, 1, 3
MANIFEST, RESULT = "manifest.json", "result.json"
MANIFEST_FORMAT = "forecast-batch-run"
MANIFEST_VERSION = 1
STATUSES = ("ok", "fallback", "failed", "pending")


class SeriesEntry(TypedDict, total=False):
    """One series of a run (``result.json``, and an element of ``series``)."""

    id: str
    slug: str
    status: str  # ok | fallback | failed | pending
    requested_model: str
    model: Optional[str]
    action: Optional[str]  # fit | reuse | ...
    error: Optional[str]
    seconds: dict[str, float]
    files: dict[str, Optional[str]]  # forecast, model, report (relative to the run folder)
    model_sha256: str
    model_is_new: bool
    source: str
    finished: str


class RunManifest(TypedDict, total=False):
    """``manifest.json`` of a run; `forecast.batch.read_status` adds ``lock``, ``runs``
    and ``run_dir``."""

    format: str
    format_version: int
    run_id: str
    as_of: Optional[str]
    run_as_of: str
    state: str  # running | finished | interrupted | stopped (read_status: process gone)
    started: str
    finished: Optional[str]
    seconds: float
    engine: str
    workers: Optional[int]
    config_file: str
    config_fingerprint: str
    counts: dict[str, int]
    series: list[SeriesEntry]
    lock: Optional[dict[str, Any]]
    runs: list[str]
    run_dir: str


def count_statuses(entries) -> dict[str, int]:
    """``{"ok": n, "fallback": n, "failed": n, "pending": n}`` of `entries`."""
    counts = {s: 0 for s in STATUSES}
    for entry in entries:
        status = entry.get("status", "pending")
        counts[status] = counts.get(status, 0) + 1
    return counts


def not_ok(manifest: RunManifest) -> list[SeriesEntry]:
    """The entries that failed or fell back to the fallback model, in run order."""
    return [e for e in manifest.get("series") or [] if e.get("status") in ("failed", "fallback")]


def manifest_exit_code(manifest: RunManifest) -> int:
    """0 when the run finished with every series ok, else 3 (`EXIT_PARTIAL`)."""
    c = manifest.get("counts") or {}
    if manifest.get("state") != "finished":
        return EXIT_PARTIAL
    return EXIT_OK if c.get("failed", 0) == 0 and c.get("fallback", 0) == 0 \
        and c.get("pending", 0) == 0 else EXIT_PARTIAL


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_json(path: Path, obj: Any) -> None:
    write_bytes(path, json.dumps(obj, indent=1, allow_nan=False, default=str).encode("utf-8"))


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
