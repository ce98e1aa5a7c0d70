"""Copies the data the Rust core owns into the Python package: `python .ci/sync_data.py`.

rust/core/data/ is the source of truth for the finding catalogue, the charsets, the look-alike
specials and the snapshot of the Public Suffix List (the core builds from it and `cargo
package` ships it); python/fromguard/data/ holds byte-for-byte copies so that the wheel and
the sdist carry them. To refresh the Public Suffix List, download it over the core's copy,
then run this (the README's one command does both). `--check` writes nothing and exits 1
naming every copy that differs from its source (.ci/run and tests/test_data_files.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parent.parent
CORE_DATA = ROOT / "rust" / "core" / "data"
PACKAGE_DATA = ROOT / "python" / "fromguard" / "data"
# The files both read. The Unicode tables are not here: the core does not read them, its
# example export_unicode_tables.rs generates them for the Python reference alone.
SHARED = (
    "findings.tsv",
    "charsets.tsv",
    "other_charsets.tsv",
    "lookalike_specials.tsv",
    "public_suffix_list.dat",
    "shared_mailbox_domains.txt",
    "tenant_suffixes.dat",
)


def stale_copies() -> List[str]:
    """The names in SHARED whose Python copy is missing or differs from the core's file."""
    return [
        name
        for name in SHARED
        if not (PACKAGE_DATA / name).is_file()
        or (PACKAGE_DATA / name).read_bytes() != (CORE_DATA / name).read_bytes()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only, write nothing")
    stale = stale_copies()
    if parser.parse_args().check:
        for name in stale:
            print(
                f"python/fromguard/data/{name} differs from rust/core/data/{name}",
                file=sys.stderr,
            )
        if stale:
            sys.exit("refresh the copies: python .ci/sync_data.py")
        print(f"python/fromguard/data: {', '.join(SHARED)} are the core's")
        return
    for name in stale:
        (PACKAGE_DATA / name).write_bytes((CORE_DATA / name).read_bytes())
        print(f"copied rust/core/data/{name} to python/fromguard/data/{name}")


if __name__ == "__main__":
    main()
