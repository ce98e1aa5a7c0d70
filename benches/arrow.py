"""``fromguard.verdicts`` over an Arrow array against the same values as a list of str:
``python benches/arrow.py [--values N] [--rounds R]`` (pyarrow needed: the ``arrow``
extra).

The values are the Debian maintainers corpus repeated to ``N`` (10^7 by default), as a
``string``, a ``large_string`` and a ``binary`` array and as a list; each call is timed
``R`` times and the best counts. The table gives values per second, the ratio to the list
(above 1: faster), what the call allocates through Python's allocator (tracemalloc, one
more call: the peak above what was held before, per value, and the blocks still held
after it, the result among them), and on Linux the peak resident memory it adds (VmHWM,
reset through /proc/self/clear_refs: every allocator, Rust's and Arrow's too; memory the
process freed before and reuses counts nothing). The Arrow path reads the array's
buffers in place through the Arrow PyCapsule interface (no copy, no object or allocation
per value); the list path reads each str's cached UTF-8 in place. Speed is judged here,
never by assertions in tests.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from typing import Any, Callable, List, Optional, Tuple

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


def resident_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise LookupError(field)


def resident_peak(call: Callable[[], Any]) -> Optional[int]:
    """The peak resident bytes ``call`` adds to what was resident before; None where the
    peak cannot be reset (not Linux)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
            clear.write("5")  # resets VmHWM to the current resident size
    except OSError:
        return None
    before = resident_kib("VmRSS")
    result = call()
    peak = resident_kib("VmHWM")
    del result
    return (peak - before) * 1024


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
    encoded = [value.encode() for value in values]
    arrays = [
        ("string", pa.array(values, pa.string())),
        ("large_string", pa.array(values, pa.large_string())),
        ("binary", pa.array(encoded, pa.binary())),
    ]
    del encoded
    expected = fromguard.verdicts(values)
    inputs: List[Tuple[str, Any]] = [("list of str", values)]
    inputs += [(f"Arrow {name}", array) for name, array in arrays]
    rows: List[Tuple[str, float, int, int, Optional[int]]] = []
    for name, given in inputs:
        assert fromguard.verdicts(given) == expected
        seconds = best_time(lambda given=given: fromguard.verdicts(given), args.rounds)
        peak, blocks = python_allocations(lambda given=given: fromguard.verdicts(given))
        resident = resident_peak(lambda given=given: fromguard.verdicts(given))
        rows.append((name, seconds, peak, blocks, resident))
    print(f"fromguard.verdicts over {len(values):,} Debian values, best of {args.rounds}\n")
    print(
        "| input | M values/s | vs list | Python peak, bytes/value | blocks held after"
        " | resident peak, bytes/value |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    list_seconds = rows[0][1]
    for name, seconds, peak, blocks, resident in rows:
        rate = len(values) / seconds / 1e6
        per_value = peak / len(values)
        rss = "n/a" if resident is None else f"{resident / len(values):.3f}"
        print(
            f"| {name} | {rate:.1f} | {list_seconds / seconds:.2f}x | {per_value:.3f}"
            f" | {blocks} | {rss} |"
        )


if __name__ == "__main__":
    main()
