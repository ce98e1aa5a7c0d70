"""What ``fromguard milter`` costs Postfix: messages per second with and without it.

Starts a private Postfix on 127.0.0.1 (``tests/postfix_lab.py``; needs root, Postfix and
swaks, as ``.ci/run`` installs them), sends N messages of about 3 KB over concurrent SMTP
sessions, and times them from the first connection until the last one is delivered to
the Maildir; then the same with the milter in ``smtpd_milters`` (unix socket, the given
policy). Prints both rates, their ratio and the milter's CPU time per message.

    python benches/milter_throughput.py [--messages 2000] [--senders 8] [--flagged 0.5] [--tcp]

``--flagged`` is the share of messages with a deceptive From (with the Exchange preset
they get a header and the warning in the body: the milter's most expensive path).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path
from typing import List, Sequence

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from milter_client import RunningMilter, free_port  # noqa: E402
from postfix_lab import Postfix, missing_tools, send_concurrently  # noqa: E402

PARAGRAPH = (
    b"Dear customer, this is the body of a benchmark message. It is plain text of the\r\n"
    b"usual length of a business mail, with lines well under 78 characters each, and\r\n"
    b"nothing in it matters to the check, which reads the header block only.\r\n"
)


def messages(count: int, senders: int, flagged: float) -> List[List[bytes]]:
    """``count`` messages of about 3 KB (CRLF), dealt out to ``senders`` sessions."""
    batches: List[List[bytes]] = [[] for _ in range(senders)]
    every = round(1 / flagged) if flagged > 0 else 0
    for index in range(count):
        deceptive = every and index % every == 0
        from_field = (
            b'From: "ceo@bank.example" <m@mallory.example>'
            if deceptive
            else b"From: Alice Example <alice@example.org>"
        )
        header = (
            from_field
            + b"\r\nTo: user@fromguard.test\r\nSubject: benchmark %d\r\n" % index
            + b"Date: Sun, 29 Nov 2026 10:00:00 +0000\r\n"
            + b"Message-ID: <%s@example.org>\r\n" % uuid.uuid4().hex.encode()
            + b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        )
        batches[index % senders].append(header + PARAGRAPH * 13)
    return batches


def timed_run(postfix: Postfix, batches: Sequence[Sequence[bytes]]) -> float:
    """Seconds from the first connection until every message is in the Maildir."""
    count = sum(len(batch) for batch in batches)
    before = postfix.count_delivered()
    started = time.perf_counter()
    failures = send_concurrently(postfix.port, batches)
    if failures:
        raise SystemExit(f"{len(failures)} failures, the first: {failures[0]}")
    postfix.wait_count(before + count, timeout=600)
    elapsed = time.perf_counter() - started
    if postfix.count_delivered() != before + count:
        raise SystemExit("messages were lost")
    return elapsed


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_options(doc: str) -> argparse.ArgumentParser:
    """The options of a throughput bench (``doc`` its module's docstring): the load sent
    and the policy applied."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--flagged", type=float, default=0.5)
    parser.add_argument(
        "--policy", type=Path, default=ROOT / "examples" / "policies" / "exchange.toml"
    )
    return parser


def require_lab() -> None:
    """Stop with what the Postfix lab needs and this machine lacks, if anything."""
    missing = missing_tools()
    if missing:
        raise SystemExit(f"needs {', '.join(missing)}")


def main(argv: Sequence[str] = ()) -> int:
    parser = load_options(__doc__)
    parser.add_argument("--tcp", action="store_true", help="the milter on TCP, not a unix socket")
    args = parser.parse_args(argv or None)
    require_lab()

    postfix = Postfix()
    milter = None
    try:
        postfix.start()
        warm_up = messages(args.senders * 10, args.senders, args.flagged)
        batches = messages(args.messages, args.senders, args.flagged)
        timed_run(postfix, warm_up)
        without = args.messages / timed_run(postfix, batches)

        tcp_port = free_port() if args.tcp else None
        milter = RunningMilter(
            args.policy,
            postfix.milter_socket,
            program=(sys.executable, "-m", "fromguard.cli", "milter"),
            tcp_port=tcp_port,
        )
        postfix.use_milter(tcp_port, default_action="tempfail", content_timeout="10s")
        timed_run(postfix, warm_up)
        cpu_before = cpu_seconds(milter.process.pid)
        batches = messages(args.messages, args.senders, args.flagged)
        with_milter = args.messages / timed_run(postfix, batches)
        cpu = cpu_seconds(milter.process.pid) - cpu_before
    finally:
        postfix.stop()
        if milter is not None:
            milter.stop()
        postfix.remove()

    print(f"messages: {args.messages} of ~3 KB, {args.senders} concurrent SMTP sessions,"
          f" {args.flagged:.0%} flagged, policy {args.policy.name},"
          f" milter on {'TCP' if args.tcp else 'a unix socket'}")  # fmt: skip
    print(f"Postfix without the milter: {without:8.1f} msg/s")
    print(f"Postfix with the milter:    {with_milter:8.1f} msg/s")
    print(f"ratio: {with_milter / without:.2f} (the milter costs {1 - with_milter / without:.0%})")
    print(f"milter CPU: {1000 * cpu / args.messages:.3f} ms per message")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
