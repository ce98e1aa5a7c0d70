"""``fromguard.verdicts`` over an Arrow array against the same values as a list of str:
``python benches/arrow.py [--values N] [--rounds R]`` (pyarrow needed: the ``arrow``
extra).

The values are the Debian maintainers corpus repeated to ``N`` (10^7 by default), as a
``string`` and a ``large_string`` array and as a list; each call is timed ``R`` times and
the best counts. The table gives values per second and the ratio to the list (above 1:
faster). The Arrow path copies each buffer once (no object or allocation per value); the
list path reads each str's cached UTF-8 in place. Speed is judged here, never by
assertions in tests.
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Callable, List, Tuple

import corpora
import pyarrow as pa

import fromguard


def best_time(call: Callable[[], Any], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    debian = corpora.debian()
    values: List[str] = (debian * (args.values // len(debian) + 1))[: args.values]
    # Each str's UTF-8 form cached once, as a list from a real source would have it after
    # its first use; the first call pays for it otherwise.
    fromguard.verdicts(values)
    arrays = [
        ("string", pa.array(values, pa.string())),
        ("large_string", pa.array(values, pa.large_string())),
    ]
    expected = fromguard.verdicts(values)
    rows: List[Tuple[str, float]] = []
    rows.append(("list of str", best_time(lambda: fromguard.verdicts(values), args.rounds)))
    for name, array in arrays:
        assert fromguard.verdicts(array) == expected
        seconds = best_time(lambda array=array: fromguard.verdicts(array), args.rounds)
        rows.append((f"Arrow {name}", seconds))
    print(f"fromguard.verdicts over {len(values):,} Debian values, best of {args.rounds}\n")
    print("| input | M values/s | vs list |")
    print("|---|---:|---:|")
    list_seconds = rows[0][1]
    for name, seconds in rows:
        rate = len(values) / seconds / 1e6
        print(f"| {name} | {rate:.1f} | {list_seconds / seconds:.2f}x |")


if __name__ == "__main__":
    main()
