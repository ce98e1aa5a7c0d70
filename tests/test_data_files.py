"""The Python package's copies of the core's data (python/fromguard/data/findings.tsv,
charsets.tsv, lookalike_specials.tsv and public_suffix_list.dat) are byte for byte the files
under rust/core/data, their source of truth."""

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


GEN_OTHER_CHARSETS = SYNC_DATA.parent / "gen_other_charsets.py"


def test_other_charsets_are_what_the_generator_gives() -> None:
    """rust/core/data/other_charsets.tsv is generated from this Python's codecs: a codec
    table or alias that changed would change what the engines read."""
    check = subprocess.run(
        [sys.executable, str(GEN_OTHER_CHARSETS), "--check"], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
