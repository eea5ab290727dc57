"""Headless chromium for the page tests (tests/ is on sys.path under pytest).

Without chromium a test is skipped on a developer machine but fails in CI (``CI=true``),
where `.ci/run` installs it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("chromium is not installed; .ci/run installs it with apt-get install chromium")
    pytest.skip("chromium is not installed (apt-get install chromium)")


def run_browser(page: Path, tmp: Path, *extra: str,
                budget_ms: int = 15000) -> subprocess.CompletedProcess:
    """Open `page` in headless chromium with `extra` flags (``--dump-dom``,
    ``--screenshot=...``); console messages go to stderr."""
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--no-first-run", "--disable-extensions", f"--user-data-dir={tmp / 'profile'}",
           "--enable-logging=stderr", "--v=0", f"--virtual-time-budget={budget_ms}", *extra,
           page.resolve().as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
