"""The Python package's copies of the core's data (python/fromguard/data/findings.tsv,
charsets.tsv and public_suffix_list.dat) are byte for byte the files under rust/core/data,
their source of truth."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SYNC_DATA = Path(__file__).resolve().parent.parent / ".ci" / "sync_data.py"


def test_package_data_is_the_cores() -> None:
    check = subprocess.run(
        [sys.executable, str(SYNC_DATA), "--check"], capture_output=True, text=True
    )
    # On failure, stderr names each stale copy and the command that refreshes them.
    assert check.returncode == 0, check.stderr
