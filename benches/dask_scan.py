"""The scan on Dask against the local scan (issue 19): a generated tree of mail in every
layout (``tests/mail_tree.py``, 20,000 messages by default) scanned to JSON Lines by
``scan.run`` and by ``dask_scan.run`` on a LocalCluster of 1 and of 2 worker processes
(one thread each), in alternation, the best of ``--repeat`` runs of each; the clusters
are started, and warmed up with one scan, before any timing.

    python benches/dask_scan.py [--messages 20000] [--repeat 3] [--json]

Prints messages per second, the ratios the issue's targets name (2 workers against 1,
1 worker against the local scan) and the load average before and after: on a shared
machine other work depresses the figures, the two-worker one the most. And the CPU time
of the best run: the driver's process (the client, and the LocalCluster's scheduler,
which runs in it) and the workers', which other work moves much less than the wall time,
and the ratio of 2 workers to 1 that this CPU time allows when no core idles: one worker
takes its own CPU time, two take theirs and the driver's spread over the machine's
cores (at most three: the driver and two workers).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, NamedTuple, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from distributed import Client, LocalCluster

from fromguard import dask_scan, scan
from mail_tree import write_tree


class _Timing(NamedTuple):
    seconds: float
    driver_cpu: float  # this process: the client, and the LocalCluster's scheduler
    workers_cpu: float


def _timed(run: Callable[[], int], client: Optional[Client]) -> _Timing:
    workers_before = _workers_cpu(client)
    cpu_before = time.process_time()
    start = time.perf_counter()
    run()
    seconds = time.perf_counter() - start
    driver_cpu = time.process_time() - cpu_before
    return _Timing(seconds, driver_cpu, _workers_cpu(client) - workers_before)


def _workers_cpu(client: Optional[Client]) -> float:
    return 0.0 if client is None else sum(client.run(time.process_time).values())


def _cpu_bound(best: Dict[str, _Timing], cpus: int) -> float:
    """2 workers against 1 if the best runs' CPU time kept the cores busy throughout."""
    one, two = best["dask-1"], best["dask-2"]
    return one.workers_cpu / ((two.driver_cpu + two.workers_cpu) / min(cpus, 3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder, open(os.devnull, "w") as sink:
        tree = Path(folder) / "mail"
        write_tree(tree, args.messages)
        stored = sum(path.stat().st_size for path in tree.rglob("*") if path.is_file())
        clusters = {
            workers: LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            )
            for workers in (1, 2)
        }
        clients = {workers: Client(cluster) for workers, cluster in clusters.items()}
        runs: Dict[str, Callable[[], int]] = {
            "local": lambda: scan.run([tree], None, "jsonl", sink, sink),
        }
        for workers, client in clients.items():
            runs[f"dask-{workers}"] = lambda client=client: dask_scan.run(
                client, [tree], None, "jsonl", sink, sink
            )
        try:
            for run in runs.values():
                run()  # warm: the page cache, and the workers' imports
            timings: Dict[str, List[_Timing]] = {name: [] for name in runs}
            for _ in range(args.repeat):
                for name, run in runs.items():
                    client = clients.get(int(name.partition("-")[2] or 0))
                    timings[name].append(_timed(run, client))
        finally:
            for client in clients.values():
                client.close()
            for cluster in clusters.values():
                cluster.close()
    load_after = os.getloadavg()

    best = {name: min(times) for name, times in timings.items()}
    seconds = {name: [timing.seconds for timing in times] for name, times in timings.items()}
    rate = {name: args.messages / timing.seconds for name, timing in best.items()}
    figures = {
        "messages": args.messages,
        "stored_bytes": stored,
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": load_after,
        "seconds": seconds,
        "best_cpu": {name: [t.driver_cpu, t.workers_cpu] for name, t in best.items()},
        "messages_per_second": rate,
        "two_workers_over_one": rate["dask-2"] / rate["dask-1"],
        "one_worker_over_local": rate["dask-1"] / rate["local"],
        "two_workers_over_one_cpu_bound": _cpu_bound(best, os.cpu_count() or 1),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"{args.messages} messages, {stored / 1e6:.1f} MB stored, {os.cpu_count()} CPUs")
    print("load average before: {:.2f} {:.2f} {:.2f}".format(*load_before))
    for name in runs:
        times = ", ".join(f"{t:.2f}" for t in seconds[name])
        cpu = f"CPU: driver {best[name].driver_cpu:.2f} s, workers {best[name].workers_cpu:.2f} s"
        print(f"  {name:<8} {rate[name]:>8,.0f} messages/s  (runs: {times} s; best's {cpu})")
    print(f"2 workers / 1 worker: {figures['two_workers_over_one']:.2f}x (target >= 1.7x)")
    bound = figures["two_workers_over_one_cpu_bound"]
    print(f"  from the CPU time alone, no core idle: {bound:.2f}x")
    print(f"1 worker / local scan: {figures['one_worker_over_local']:.2f}x (target >= 0.85x)")
    print("load average after:  {:.2f} {:.2f} {:.2f}".format(*load_after))


if __name__ == "__main__":
    main()
