"""A long run: does fromguard keep its speed and its memory?

    python benches/soak.py [--values 10000000] [--messages 100000]

Parses ``--values`` From values (the Debian maintainer corpus, every grammar and attack
case, and generated addresses, in batches through ``parse_many`` and one by one through
``parse``), then sends ``--messages`` messages (examples/sample.mbox and the test
messages, each with its own Message-ID) through ``examples/policies/strict.toml``, a
policy with rules. For every tenth of each phase it prints the throughput, per CPU
second of this process (which other load on the machine barely changes) and per wall
clock second, and the resident memory. Each phase warms up first (one batch of values,
each message once: imports, caches, the allocator's first arenas). At the end it checks
that the last tenth's throughput per CPU second is within 10% of the first's, either
way, and that resident memory grows by no more than ``--rss-slack`` MiB after the first
tenth. Exit status 1 if either fails.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import resource
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, List, Tuple

import fromguard

ROOT = Path(__file__).resolve().parent.parent
BATCH = 1000


def resident_mib() -> float:
    """The resident set now (Linux), else the peak so far."""
    statm = Path("/proc/self/statm")
    if statm.exists():
        pages = int(statm.read_text().split()[1])
        return pages * resource.getpagesize() / (1 << 20)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def value_pool() -> List[bytes]:
    values = (ROOT / "tests" / "corpus" / "debian-maintainers.txt").read_bytes().splitlines()
    for name in ("grammar.jsonl", "attacks.jsonl"):
        for line in (ROOT / "tests" / "cases" / name).read_text(encoding="utf-8").splitlines():
            case = json.loads(line)
            if "input" in case:
                values.append(case["input"].encode("utf-8", "surrogateescape"))
    return values


def message_pool() -> List[bytes]:
    mbox = (ROOT / "examples" / "sample.mbox").read_bytes()
    found = [part for part in re.split(rb"(?m)^(?=From )", mbox) if part]
    return found + [path.read_bytes() for path in sorted((ROOT / "tests" / "data").rglob("*.eml"))]


def value_batches() -> Iterator[List[bytes]]:
    """Batches of BATCH values; one value in ten is a fresh address."""
    pool = itertools.cycle(value_pool())
    for number in itertools.count():
        batch = list(itertools.islice(pool, BATCH - BATCH // 10))
        batch += [b"User %d <user%d@host%d.example>" % (i, i, number) for i in range(BATCH // 10)]
        yield batch


def run_values(total: int) -> List[Tuple[float, float, float]]:
    """Parses `total` values; per tenth: (values per CPU second, values per second,
    resident MiB)."""
    tenth = total // 10
    batches = value_batches()
    fromguard.parse_many(next(batches))  # warm-up
    rows = []
    for index in range(10):
        done = size = 0
        started, cpu_started = time.perf_counter(), time.process_time()
        while done < tenth:
            batch = next(batches)
            if (done // BATCH) % 2:  # every other batch one by one, through parse
                results = [fromguard.parse(value) for value in batch]
            else:
                results = fromguard.parse_many(batch)
            assert len(results) == len(batch)
            done += len(batch)
            size += sum(map(len, batch))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        rows.append((done / cpu, done / elapsed, resident_mib()))
        print(
            f"values   tenth {index + 1:2}: {done / cpu:9,.0f} values per CPU s"
            f" ({done / elapsed:9,.0f}/s wall, {size / cpu / 1e6:5.2f} MB per CPU s)"
            f"  RSS {rows[-1][2]:6.1f} MiB",
            flush=True,
        )
    return rows


def run_messages(total: int) -> List[Tuple[float, float, float]]:
    """Processes `total` messages through the strict policy; per tenth: (messages per
    CPU second, messages per second, resident MiB)."""
    policy = fromguard.Policy.from_toml(ROOT / "examples" / "policies" / "strict.toml")
    pool = message_pool()
    for raw in pool:  # warm-up
        policy.process(raw)
    tenth = total // 10
    rows = []
    actions: dict[str, int] = {}
    for index in range(10):
        size = 0
        started, cpu_started = time.perf_counter(), time.process_time()
        for number in range(index * tenth, (index + 1) * tenth):
            raw = b"Message-ID: <%d@soak.example>\r\n" % number + pool[number % len(pool)]
            outcome = policy.process(raw)
            actions[outcome.action.name] = actions.get(outcome.action.name, 0) + 1
            size += len(raw)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        rows.append((tenth / cpu, tenth / elapsed, resident_mib()))
        print(
            f"messages tenth {index + 1:2}: {tenth / cpu:9,.0f} messages per CPU s"
            f" ({tenth / elapsed:9,.0f}/s wall, {size / cpu / 1e6:5.2f} MB per CPU s)"
            f"  RSS {rows[-1][2]:6.1f} MiB",
            flush=True,
        )
    print("actions:", ", ".join(f"{name} {count:,}" for name, count in sorted(actions.items())))
    return rows


def verdict(name: str, rows: List[Tuple[float, float, float]], slack: float) -> bool:
    first, last = rows[0][0], rows[-1][0]
    change = (last - first) / first
    wall = (rows[-1][1] - rows[0][1]) / rows[0][1]
    growth = max(rss for _, _, rss in rows[1:]) - rows[0][2]
    speed_ok, memory_ok = abs(change) <= 0.10, growth <= slack
    print(
        f"{name}: last tenth {change:+.1%} per CPU second against the first"
        f" ({'ok' if speed_ok else 'more than 10%'}; wall clock {wall:+.1%});"
        f" RSS after warm-up {growth:+.1f} MiB ({'ok' if memory_ok else 'GROWS'})"
    )
    return speed_ok and memory_ok


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    options.add_argument("--values", type=int, default=10_000_000)
    options.add_argument("--messages", type=int, default=100_000)
    options.add_argument("--rss-slack", type=float, default=8.0, help="MiB (default 8)")
    args = options.parse_args()
    print(f"fromguard {fromguard.__version__}, Python {sys.version.split()[0]}")
    phases: List[Tuple[str, Callable[[int], List[Tuple[float, float, float]]], int]] = [
        ("values", run_values, args.values),
        ("messages", run_messages, args.messages),
    ]
    passed = True
    started = time.perf_counter()
    for name, run, total in phases:
        passed &= verdict(name, run(total), args.rss_slack)
    print(f"total {time.perf_counter() - started:.0f} s: {'PASS' if passed else 'FAIL'}")
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
