"""``fromguard serve`` against a direct ``Policy.process`` call, in one run: requests per
second and latency percentiles over its unix socket and over TCP on 127.0.0.1.

The messages are those of ``examples/sample.mbox`` and ``tests/data`` (whole messages,
the Exchange preset: a third are warned, the most expensive path). The direct call runs
them in a loop in this process. For the server, ``--clients`` processes each keep one
HTTP/1.1 connection open and send requests one after another (what rspamd's and Exim's
per-message requests amount to); every request's time is measured at the client.

    python benches/serve.py [--requests 4000] [--clients 4] [--workers 4]

The clients share the machine with the server: on two cores, they take CPU the server
would have, and the figures are a floor.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fromguard import Policy  # noqa: E402
from samples import messages  # noqa: E402
from serve_client import RunningServe, UnixHTTPConnection  # noqa: E402

POLICY = ROOT / "examples" / "policies" / "exchange.toml"


def direct(corpus: Sequence[bytes], count: int) -> Tuple[float, List[float]]:
    policy = Policy.from_toml(POLICY)
    times = []
    started = time.perf_counter()
    for index in range(count):
        before = time.perf_counter()
        policy.process(corpus[index % len(corpus)], add_headers=False)
        times.append(time.perf_counter() - before)
    return time.perf_counter() - started, times


def client(arguments: Tuple[str, int, Sequence[bytes], int, int]) -> List[float]:
    """One connection's request times (a process of its own, so clients run in parallel)."""
    address, port, corpus, count, offset = arguments
    import http.client

    connection: http.client.HTTPConnection = (
        UnixHTTPConnection(Path(address))
        if port == 0
        else http.client.HTTPConnection(address, port, timeout=30)
    )
    times = []
    for index in range(count):
        body = corpus[(offset + index) % len(corpus)]
        before = time.perf_counter()
        connection.request("POST", "/check", body=body)
        response = connection.getresponse()
        response.read()
        times.append(time.perf_counter() - before)
        assert response.status == 200
    connection.close()
    return times


def through_server(
    server: RunningServe, corpus: Sequence[bytes], count: int, clients: int, unix: bool
) -> Tuple[float, List[float]]:
    address = str(server.socket_path) if unix else "127.0.0.1"
    port = 0 if unix else server.port
    each = count // clients
    jobs = [(address, port, corpus, each, n * 7) for n in range(clients)]
    with multiprocessing.get_context("fork").Pool(clients) as pool:
        pool.map(client, [(address, port, corpus, 20, 0)] * clients)  # connections warm
        started = time.perf_counter()
        results = pool.map(client, jobs)
        elapsed = time.perf_counter() - started
    return elapsed, [t for times in results for t in times]


def cpu_seconds(pid: int) -> float:
    """User and system time of a process so far (Linux: /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def row(name: str, elapsed: float, times: List[float], cpu: float) -> str:
    ordered = sorted(times)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    rate = len(times) / elapsed
    per_request = cpu / len(times) * 1e3
    return f"| {name} | {rate:,.0f} | {p50 * 1e3:.3f} | {p99 * 1e3:.3f} | {per_request:.3f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()

    corpus = messages()
    print(
        f"{len(corpus)} messages ({sum(map(len, corpus)) // len(corpus)} bytes on average),"
        f" {args.requests} requests, {args.clients} clients, {args.workers} workers"
    )
    print("| path | requests/s | p50 ms | p99 ms | CPU ms per request |")
    print("|---|---:|---:|---:|---:|")
    before = time.process_time()
    elapsed, times = direct(corpus, args.requests)
    print(row("`Policy.process`, direct call", elapsed, times, time.process_time() - before))
    with tempfile.TemporaryDirectory(prefix="fgb-") as workdir:
        server = RunningServe(POLICY, Path(workdir), "--workers", str(args.workers))
        try:
            pid = server.process.pid
            for unix, name in ((True, "unix socket"), (False, "TCP 127.0.0.1")):
                for clients, count in ((1, args.requests // 4), (args.clients, args.requests)):
                    before = cpu_seconds(pid)
                    elapsed, times = through_server(server, corpus, count, clients, unix)
                    cpu = cpu_seconds(pid) - before
                    label = f"serve, {name}, {clients} client{'s' if clients > 1 else ''}"
                    print(row(label, elapsed, times, cpu))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
