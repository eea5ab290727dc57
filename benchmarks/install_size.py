"""Build a fresh virtual environment, install `forecast` into it (the core install, or
with extras) and print its size.

    python benchmarks/install_size.py                # core: pip install .
    python benchmarks/install_size.py --extras parquet
    python benchmarks/install_size.py --keep /tmp/venv-core

The figure is the disk use of the whole venv (``du``-style, files counted once), less
pip's own cache (none: ``--no-cache-dir``). The README quotes it (target: core <= 750 MB).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tree_size(folder: Path) -> int:
    seen, total = set(), 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--extras", default="", help="comma-separated extras, e.g. parquet")
    ap.add_argument("--keep", metavar="DIR", help="build the venv here and keep it")
    args = ap.parse_args()
    target = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="forecast-venv-"))
    if target.exists() and any(target.iterdir()):
        shutil.rmtree(target)
    t0 = time.perf_counter()
    try:
        subprocess.run([sys.executable, "-m", "venv", str(target)], check=True)
        py = target / "bin" / "python"
        spec = f"{ROOT}[{args.extras}]" if args.extras else str(ROOT)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-cache-dir", spec],
                       check=True)
        size = tree_size(target)
        pkgs = subprocess.run([str(py), "-m", "pip", "list", "--format=freeze"], check=True,
                              capture_output=True, text=True).stdout.split()
        site = next((target / "lib").glob("python*/site-packages"))
        biggest = sorted(((tree_size(p), p.name) for p in site.iterdir() if p.is_dir()),
                         reverse=True)[:8]
        label = f"forecast[{args.extras}]" if args.extras else "forecast (core)"
        print(f"{label}: {size / 1e6:.0f} MB in a fresh venv ({len(pkgs)} packages, "
              f"{time.perf_counter() - t0:.0f} s to build)")
        for n, name in biggest:
            print(f"  {name:28s} {n / 1e6:7.1f} MB")
    finally:
        if not args.keep:
            shutil.rmtree(target, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
