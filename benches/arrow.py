"""``fromguard.verdicts`` over an Arrow array against the same values as a list of str:
``python benches/arrow.py [--values N] [--rounds R]`` (pyarrow needed: the ``arrow``
extra).

The values are the Debian maintainers corpus repeated to ``N`` (10^7 by default), as a
``string`` and a ``large_string`` array and as a list; each call is timed ``R`` times and
the best counts. The table gives values per second, the ratio to the list (above 1:
faster), and what the call allocates through Python's allocator (tracemalloc, one more
call: the peak above what was held before, per value, and the blocks still held after
it, the result among them). The Arrow path copies each buffer once (no object or
allocation per value); the list path reads each str's cached UTF-8 in place. The core's
own buffers come from Rust's allocator, which tracemalloc does not see. Speed is judged
here, never by assertions in tests.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
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


def python_allocations(call: Callable[[], Any]) -> Tuple[int, int]:
    """The peak bytes ``call`` allocates through Python's allocator, and the blocks it
    leaves allocated (its result's)."""
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        result = call()
        _, peak = tracemalloc.get_traced_memory()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    blocks = sum(stat.count_diff for stat in after.compare_to(before, "filename"))
    del result
    return peak - base, blocks


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
    inputs: List[Tuple[str, Any]] = [("list of str", values)]
    inputs += [(f"Arrow {name}", array) for name, array in arrays]
    rows: List[Tuple[str, float, int, int]] = []
    for name, given in inputs:
        assert fromguard.verdicts(given) == expected
        seconds = best_time(lambda given=given: fromguard.verdicts(given), args.rounds)
        peak, blocks = python_allocations(lambda given=given: fromguard.verdicts(given))
        rows.append((name, seconds, peak, blocks))
    print(f"fromguard.verdicts over {len(values):,} Debian values, best of {args.rounds}\n")
    print("| input | M values/s | vs list | Python peak, bytes/value | blocks held after |")
    print("|---|---:|---:|---:|---:|")
    list_seconds = rows[0][1]
    for name, seconds, peak, blocks in rows:
        rate = len(values) / seconds / 1e6
        per_value = peak / len(values)
        print(
            f"| {name} | {rate:.1f} | {list_seconds / seconds:.2f}x | {per_value:.3f} | {blocks} |"
        )


if __name__ == "__main__":
    main()
