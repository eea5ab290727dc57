"""`forecast batch status`: the state of a run, read from its files (and the lock)."""

from __future__ import annotations

from pathlib import Path

from forecast.batch.lock import lock_holder
from forecast.batch.manifest import (MANIFEST, MANIFEST_FORMAT, RESULT, RunManifest,
                                     read_json)
from forecast.batch.plan import check_run_id
from forecast.errors import BatchError

__all__ = ["read_status", "merge_results"]


def read_status(output, run_id: str | None = None) -> RunManifest:
    """The manifest of run `run_id` (default: the latest) in output folder `output`, with
    ``lock`` (who holds the folder now) and ``runs`` (every run id) added."""
    out = Path(output)
    runs_dir = out / "runs"
    if not runs_dir.is_dir():
        raise BatchError(f"{out} is not a batch output folder (no runs/ in it); give the "
                         "output folder of a batch file")
    runs = sorted((p for p in runs_dir.iterdir() if (p / MANIFEST).is_file()),
                  key=lambda p: (p / MANIFEST).stat().st_mtime)
    if not runs:
        raise BatchError(f"{out} holds no run yet")
    if run_id is None:
        target = runs[-1]
    else:
        target = runs_dir / check_run_id(run_id)
        if not (target / MANIFEST).is_file():
            raise BatchError(f"no run {run_id!r} in {out}; runs: "
                             f"{', '.join(p.name for p in runs[-10:])}")
    manifest = read_json(target / MANIFEST)
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise BatchError(f"{target / MANIFEST} is damaged or not a batch manifest")
    if manifest.get("state") != "finished":
        merge_results(manifest, target)  # the manifest may lag the last second of work
    holder = lock_holder(out)
    if manifest.get("state") == "running" and (holder is None or
                                               holder.get("run_id") != manifest["run_id"]):
        manifest["state"] = "stopped"  # its process died: resume it with the same --run-id
    manifest["lock"] = holder
    manifest["runs"] = [p.name for p in runs]
    manifest["run_dir"] = str(target)
    return manifest


def merge_results(manifest: RunManifest, run_dir: Path) -> None:
    """Update the entries (and counts) of `manifest` from the series' result files."""
    counts = {"ok": 0, "fallback": 0, "failed": 0, "pending": 0}
    for i, entry in enumerate(manifest.get("series") or []):
        if entry.get("status") == "pending":
            res = read_json(run_dir / "series" / str(entry.get("slug")) / RESULT)
            if isinstance(res, dict) and res.get("id") == entry.get("id"):
                res.pop("spark", None)
                manifest["series"][i] = entry = res
        counts[entry.get("status", "pending")] = counts.get(entry.get("status", "pending"),
                                                            0) + 1
    manifest["counts"] = counts
