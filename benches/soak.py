"""A long run: does fromguard keep its speed and its memory?

    python benches/soak.py [--values 40000000] [--messages 400000]

Parses ``--values`` From values (the Debian maintainer corpus, every grammar and attack
case, and generated addresses, in batches through ``parse_many`` and one by one through
``parse``), then sends ``--messages`` messages (examples/sample.mbox and the test
messages, each with its own Message-ID) through ``examples/policies/strict.toml``, a
policy with rules. Each phase warms up on a hundredth of its run (imports, caches, the
allocator's first arenas), then for every tenth prints the throughput per CPU second of
this process in the tenth's fastest hundredth (what other load on a shared machine
changes least), overall and per wall clock second, and the resident memory. At the end
it checks that the last tenth's best throughput is within 10% of the first's, either
way, and that resident memory grows by no more than ``--rss-slack`` MiB after the first
tenth. Exit status 1 if either fails.
"""

from __future__ import annotations

import argparse
import itertools
import resource
import sys
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Tuple

import fromguard

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from samples import case_values, messages  # noqa: E402

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
    corpus = (ROOT / "tests" / "corpus" / "debian-maintainers.txt").read_bytes().splitlines()
    return corpus + case_values()


def value_batches() -> Iterator[List[bytes]]:
    """Batches of BATCH values; one value in ten is a fresh address."""
    pool = itertools.cycle(value_pool())
    for number in itertools.count():
        batch = list(itertools.islice(pool, BATCH - BATCH // 10))
        batch += [b"User %d <user%d@host%d.example>" % (i, i, number) for i in range(BATCH // 10)]
        yield batch


# One row per tenth: (items per CPU second in its fastest hundredth, items per CPU
# second, items per wall clock second, resident MiB at its end).
Row = Tuple[float, float, float, float]


def run_phase(name: str, unit: str, work: Callable[[int], int], total: int) -> List[Row]:
    """Runs `work(count)` (which handles `count` items and returns their bytes) over
    `total` items, a hundredth at a time, after a hundredth of warm-up; prints a row a
    tenth. The fastest hundredth of a tenth is what other load on the machine (which can
    only slow a hundredth down) changes least: the checks compare those."""
    hundredth = max(1, total // 100)
    work(hundredth)
    rows: List[Row] = []
    for index in range(10):
        size, cpu, wall, best = 0, 0.0, 0.0, 0.0
        for _ in range(10):
            started, cpu_started = time.perf_counter(), time.process_time()
            size += work(hundredth)
            spent = time.process_time() - cpu_started
            wall += time.perf_counter() - started
            cpu += spent
            best = max(best, hundredth / max(spent, 1e-9))
        count = 10 * hundredth
        rows.append((best, count / cpu, count / wall, resident_mib()))
        print(
            f"{name:8} tenth {index + 1:2}: {best:9,.0f} {unit} per CPU s at best"
            f" ({count / cpu:9,.0f} overall, {count / wall:9,.0f}/s wall,"
            f" {size / cpu / 1e6:5.2f} MB per CPU s)  RSS {rows[-1][3]:6.1f} MiB",
            flush=True,
        )
    return rows


def value_work() -> Callable[[int], int]:
    """Parses values: every other batch through parse_many, the others one by one."""
    batches = value_batches()
    turn = itertools.count()

    def work(count: int) -> int:
        size = 0
        for _ in range(0, count, BATCH):
            batch = next(batches)
            if next(turn) % 2:
                results = [fromguard.parse(value) for value in batch]
            else:
                results = fromguard.parse_many(batch)
            assert len(results) == len(batch)
            size += sum(map(len, batch))
        return size

    return work


def message_work(actions: Dict[str, int]) -> Callable[[int], int]:
    """Sends messages through the strict policy, each with its own Message-ID; counts
    the actions taken."""
    policy = fromguard.Policy.from_toml(ROOT / "examples" / "policies" / "strict.toml")
    pool = messages()
    numbers = itertools.count()

    def work(count: int) -> int:
        size = 0
        for number in itertools.islice(numbers, count):
            raw = b"Message-ID: <%d@soak.example>\r\n" % number + pool[number % len(pool)]
            action = policy.process(raw).action.name
            actions[action] = actions.get(action, 0) + 1
            size += len(raw)
        return size

    return work


def verdict(name: str, rows: List[Row], slack: float) -> bool:
    change = (rows[-1][0] - rows[0][0]) / rows[0][0]
    overall = (rows[-1][1] - rows[0][1]) / rows[0][1]
    growth = max(row[3] for row in rows[1:]) - rows[0][3]
    speed_ok, memory_ok = abs(change) <= 0.10, growth <= slack
    print(
        f"{name}: last tenth {change:+.1%} against the first at best"
        f" ({'ok' if speed_ok else 'more than 10%'}; overall {overall:+.1%});"
        f" RSS after the first tenth {growth:+.1f} MiB ({'ok' if memory_ok else 'GROWS'})"
    )
    return speed_ok and memory_ok


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    # About 25 s in all: a tenth long enough for its best hundredth to be steady on a
    # shared machine (values got six times faster since 10^7 took half a minute).
    options.add_argument("--values", type=int, default=40_000_000)
    options.add_argument("--messages", type=int, default=400_000)
    options.add_argument("--rss-slack", type=float, default=8.0, help="MiB (default 8)")
    args = options.parse_args()
    print(f"fromguard {fromguard.__version__}, Python {sys.version.split()[0]}")
    actions: Dict[str, int] = {}
    started = time.perf_counter()
    values = run_phase("values", "values", value_work(), args.values)
    passed = verdict("values", values, args.rss_slack)
    messages = run_phase("messages", "messages", message_work(actions), args.messages)
    print("actions:", ", ".join(f"{name} {count:,}" for name, count in sorted(actions.items())))
    passed = verdict("messages", messages, args.rss_slack) and passed
    print(f"total {time.perf_counter() - started:.0f} s: {'PASS' if passed else 'FAIL'}")
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
