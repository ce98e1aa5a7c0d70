"""The milter's memory over a long run, and after large messages.

    python benches/milter_soak.py [--messages 150000] [--senders 4] [--large 16] [--large-mb 9]

Starts ``fromguard milter`` (examples/policies/strict.toml, a unix socket) and sends
``--messages`` messages through it over ``--senders`` connections with the protocol
client of the tests (``tests/milter_client.py``, as Postfix speaks it): the test
messages and examples/sample.mbox in turn, each with its own Message-ID and queue id.
Prints the milter's resident memory (VmRSS) every tenth; the first tenth is the
warm-up (imports, caches, the allocator's arenas), and the check is that the RSS after
it stays within ``--rss-slack`` MiB (default 2) of the RSS at its end. Then ``--large``
messages of ``--large-mb`` MB each at once (a deceptive From: the warning rewrites the
body), and the RSS before, at its peak and once they are answered. Exit status 1 if the
soak grows past the slack or a message was lost.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import List, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from milter_client import MilterClient, RunningMilter, split_message  # noqa: E402
from samples import messages  # noqa: E402


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def as_sent(raw: bytes) -> bytes:
    """A message as an MTA hands it on: CRLF line ends, no mbox ``From `` line."""
    if raw.startswith(b"From "):
        raw = raw.split(b"\n", 1)[1]
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def soak(milter: RunningMilter, total: int, senders: int) -> List[float]:
    """Sends ``total`` messages; the RSS after each tenth."""
    pool = [sent for sent in map(as_sent, messages()) if b"\r\n\r\n" in sent]
    numbers = itertools.count()
    lock = threading.Lock()
    tenth = total // 10
    rows: List[float] = []
    failures: List[str] = []

    def sender(count: int) -> None:
        try:
            with MilterClient(str(milter.socket_path), timeout=60) as client:
                for _ in range(count):
                    with lock:
                        number = next(numbers)
                    raw = b"Message-ID: <%d@soak.example>\r\n" % number + pool[number % len(pool)]
                    reply = client.send(*split_message(raw), f"S{number}")
                    if reply.final not in ("continue", "replycode"):
                        failures.append(f"S{number}: {reply.final}")
        except OSError as error:
            failures.append(repr(error))

    pid = milter.process.pid
    for index in range(10):
        threads = [
            threading.Thread(target=sender, args=(tenth // senders,)) for _ in range(senders)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        rows.append(rss_mib(pid))
        rate = tenth / (time.perf_counter() - started)
        print(f"tenth {index + 1:2}: {rate:7.0f} msg/s  RSS {rows[-1]:7.2f} MiB", flush=True)
    if failures:
        raise SystemExit(f"{len(failures)} failures, the first: {failures[0]}")
    return rows


def large(milter: RunningMilter, count: int, megabytes: float) -> None:
    """``count`` messages of ``megabytes`` MB at once; prints the RSS before, at its peak
    (sampled every 10 ms) and after."""
    line = b"A line of a large message body, long enough to matter to no one at all.\r\n"
    body = line * int(megabytes * 1e6 / len(line))
    header = b'From: "ceo@bank.example" <m@mallory.example>\r\nSubject: large\r\n\r\n'
    pid = milter.process.pid
    before = rss_mib(pid)
    peak = before
    done = threading.Event()
    finals: List[Optional[str]] = []

    def sender(number: int) -> None:
        with MilterClient(str(milter.socket_path), timeout=300) as client:
            finals.append(client.send(*split_message(header + body), f"L{number}").final)

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()

    def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_mib(pid))
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    for thread in threads:
        thread.join()
    done.set()
    watcher.join()
    after = rss_mib(pid)
    time.sleep(2)
    print(
        f"{count} x {megabytes:g} MB at once ({finals.count('continue')} answered):"
        f" RSS before {before:.1f} MiB, peak {peak:.1f} MiB, after {after:.1f} MiB,"
        f" 2 s later {rss_mib(pid):.1f} MiB"
    )


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=150_000)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--large", type=int, default=16)
    parser.add_argument("--large-mb", type=float, default=9.0)
    parser.add_argument("--rss-slack", type=float, default=2.0, help="MiB (default 2)")
    parser.add_argument(
        "--program",
        default=f"{sys.executable} -m fromguard.cli milter",
        help="the command up to the milter's options (default: %(default)s)",
    )
    args = parser.parse_args(argv or None)
    with tempfile.TemporaryDirectory(prefix="fgsoak-") as directory:
        milter = RunningMilter(
            ROOT / "examples" / "policies" / "strict.toml",
            Path(directory) / "milter.sock",
            "--watchdog",
            "30",
            program=args.program.split(),
        )
        try:
            print(f"milter pid {milter.process.pid}, RSS {rss_mib(milter.process.pid):.1f} MiB")
            rows = soak(milter, args.messages, args.senders) if args.messages else []
            passed = True
            if rows:
                growth = max(rows[1:]) - rows[0]
                passed = growth <= args.rss_slack
                print(
                    f"RSS after the warm-up tenth: {growth:+.2f} MiB at most"
                    f" (last {rows[-1] - rows[0]:+.2f}; {'ok' if passed else 'GROWS'})"
                )
                logged = len(milter.messages())
                print(f"messages logged: {logged} of {args.messages // 10 * 10}")
                passed = passed and logged == args.messages // 10 * 10
            if args.large:
                large(milter, args.large, args.large_mb)
        finally:
            milter.stop()
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
