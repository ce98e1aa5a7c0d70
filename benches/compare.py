"""All From parsers side by side, in one run: ``python benches/compare.py [--json]``.

For each value set (``corpora.py``) and each implementation (``peers.py``) it prints the
time per value (best pass), values per second and the ratio of the time to
``fromguard.parse``'s (``12.0x`` = twelve times slower). Then the batch calls on one and on
two cores (child processes pinned to that many CPUs, alternating, the best of three
each), beside what two threads of a C workload get on the machine at that moment, and the
memory of a result and of a batch. Runs in about half a minute.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

import corpora
import peers

import fromguard

# A pass is repeated until this much time has been spent on an implementation (at least
# MIN_PASSES passes), and the best pass counts.
BUDGET_SECONDS = 0.3
MIN_PASSES = 3
THREAD_SIZES = (4096, 16384, 90000)
# Twice the budget for the batches on two threads, whose passes vary most: a pass that
# two threads run together is slowed by whatever else takes either CPU meanwhile.
THREAD_BUDGET_SECONDS = 2 * BUDGET_SECONDS


def best_pass(runner: peers.Runner, values: List[str], budget: float = BUDGET_SECONDS) -> float:
    runner(values)  # warm-up: imports, caches, first allocations
    best = float("inf")
    spent = 0.0
    passes = 0
    while passes < MIN_PASSES or spent < budget:
        start = time.perf_counter()
        runner(values)
        elapsed = time.perf_counter() - start
        best = min(best, elapsed)
        spent += elapsed
        passes += 1
    return best


def measure(values: List[str]) -> List[Dict[str, Any]]:
    rows: List[Dict[str, Any]] = []
    for entry in peers.entries():
        row: Dict[str, Any] = {"name": entry.name, "task": entry.task}
        if entry.prepare is None:
            row["skipped"] = entry.skipped
        else:
            seconds = best_pass(entry.prepare(values), values)
            row["us_per_value"] = seconds / len(values) * 1e6
            row["values_per_s"] = len(values) / seconds
        rows.append(row)
    base = rows[0]["us_per_value"]
    for row in rows:
        if "us_per_value" in row:
            row["ratio"] = row["us_per_value"] / base
    return rows


def thread_probe(cores: int) -> Dict[str, Any]:
    """Batch throughput at several sizes on the first ``cores`` CPUs this process may use
    (where the system lets a process choose): the batch helpers are one thread fewer than
    the CPUs, none on one."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:cores])
    debian = corpora.debian()
    out: Dict[str, Any] = {}
    for size in THREAD_SIZES:
        # Distinct objects, as a real batch has: one str repeated would have the pool's
        # threads read the very objects this thread is counting references to.
        values = [value.encode().decode() for value in (debian * (size // len(debian) + 1))[:size]]
        for name, function in (
            ("verdicts", fromguard.verdicts),
            ("parse_many", fromguard.parse_many),
        ):
            seconds = best_pass(lambda v, f=function: f(v), values, THREAD_BUDGET_SECONDS)
            out[f"{name}/{size}"] = size / seconds
    return out


def _hash_work() -> None:
    data = b"a" * 4_000_000
    for _ in range(10):
        hashlib.sha256(data).digest()


def parallel_ceiling() -> float:
    """What two threads get on this machine right now: the speed-up of a C workload that
    releases the GIL (hashlib) on two threads over one. Other processes on a shared
    machine take cores away; the batch speed-ups cannot beat this."""
    start = time.perf_counter()
    _hash_work()
    _hash_work()
    one = time.perf_counter() - start
    workers = [threading.Thread(target=_hash_work) for _ in range(2)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return one / (time.perf_counter() - start)


def _child(*arguments: str) -> Any:
    """This script's JSON answer to `arguments`, from a fresh process."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *arguments],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


# The one- and two-core probes alternate this many times and each figure is the best
# seen: other load on a shared machine comes and goes within seconds, and one probe of
# each at different moments compared two machines rather than one and two cores.
THREAD_ROUNDS = 3


def threads() -> Dict[str, Dict[str, float]]:
    best: Dict[str, Dict[str, float]] = {"1": {}, "2": {}}
    for _ in range(THREAD_ROUNDS):
        for count, seen in best.items():
            for key, rate in _child("--thread-probe", count).items():
                seen[key] = max(rate, seen.get(key, 0.0))
    return best


MEMORY_SIZES = (1_000_000, 10_000_000)


def _status(field: str) -> int:
    """A memory figure of this process from /proc/self/status (Linux), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise LookupError(field)


def memory_probe(count: int) -> Dict[str, int]:
    """The peak memory a ``verdicts`` call over ``count`` values adds to this (fresh)
    process, beside its output (one byte per value): the batch's own memory, which must
    not grow with the batch. And what an unread ``parse`` result costs. Linux: the peak
    (VmHWM) is reset just before the call."""
    debian = corpora.debian()
    values = [debian[i % len(debian)] for i in range(count)]
    fromguard.verdicts(values[:5000])  # first use: the thread pool, the tables
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    before = _status("VmRSS")
    output = len(fromguard.verdicts(values))
    return {
        "values": count,
        "added": _status("VmHWM") - before,
        "output": output,
        "unread_result": sys.getsizeof(fromguard.parse(debian[0])),
    }


def memory() -> List[Dict[str, int]]:
    return [_child("--memory-probe", str(count)) for count in MEMORY_SIZES]


def print_table(name: str, values: List[str], rows: List[Dict[str, Any]]) -> None:
    size = sum(len(v.encode("utf-8", "surrogateescape")) for v in values)
    print(f"\n## {name}: {len(values)} values, {size / len(values):.1f} bytes each on average\n")
    print("| implementation | µs/value | values/s | vs fromguard.parse | task |")
    print("|---|---:|---:|---:|---|")
    for row in rows:
        if "skipped" in row:
            print(f"| {row['name']} | n/a | n/a | n/a | skipped: {row['skipped']} |")
            continue
        print(
            f"| {row['name']} | {row['us_per_value']:.3f} | {row['values_per_s']:,.0f} "
            f"| {row['ratio']:.2f}x | {row['task']} |"
        )


def print_threads(results: Dict[str, Dict[str, float]], ceiling: float) -> None:
    print("\n## batches on 1 and 2 cores (Debian values repeated; values/s)\n")
    print(f"Two threads of hashlib (GIL released) run {ceiling:.2f}x one thread here now.\n")
    print("| call | values | 1 core | 2 cores | speed-up |")
    print("|---|---:|---:|---:|---:|")
    for key in results["1"]:
        call, size = key.split("/")
        one, two = results["1"][key], results["2"][key]
        print(f"| {call} | {int(size):,} | {one:,.0f} | {two:,.0f} | {two / one:.2f}x |")


def print_memory(results: List[Dict[str, int]]) -> None:
    print("\n## memory\n")
    print(f"An unread `fromguard.parse` result: {results[0]['unread_result']} bytes.\n")
    print("| `verdicts` over | peak memory added | its output | beyond the output |")
    print("|---:|---:|---:|---:|")
    for row in results:
        # Below zero when the output's pages were resident already (freed heap memory).
        beyond = max(0, row["added"] - row["output"])
        print(
            f"| {row['values']:,} values | {row['added'] / 2**20:.2f} MiB "
            f"| {row['output'] / 2**20:.2f} MiB | {beyond / 2**10:.0f} KiB |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--thread-probe", type=int, metavar="CORES", help=argparse.SUPPRESS)
    parser.add_argument("--memory-probe", type=int, metavar="VALUES", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.thread_probe is not None:
        print(json.dumps(thread_probe(args.thread_probe)))
        return
    if args.memory_probe is not None:
        print(json.dumps(memory_probe(args.memory_probe)))
        return
    report: Dict[str, Any] = {
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} logical CPUs",
        "fromguard": fromguard.__version__,
        "corpora": {},
    }
    for name, values in corpora.corpora().items():
        rows = measure(values)
        report["corpora"][name] = {"values": len(values), "rows": rows}
        if not args.json:
            print_table(name, values, rows)
    report["threads"] = threads()
    report["parallel_ceiling"] = parallel_ceiling()
    report["memory"] = memory()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_threads(report["threads"], report["parallel_ceiling"])
        print_memory(report["memory"])
        print(f"\nPython {report['python']}, {report['machine']}, fromguard {report['fromguard']}")


if __name__ == "__main__":
    main()
