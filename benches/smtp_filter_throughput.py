"""What ``fromguard smtp-filter`` costs Postfix as its after-queue content filter:
messages per second with and without it.

The lab and the messages of ``milter_throughput.py`` (a private Postfix on 127.0.0.1,
N messages of about 3 KB over concurrent SMTP sessions, timed until the last one is in
the Maildir); then the same with the README's content filter blocks pasted and the
filter running with the given policy, first opening a session with the next hop per
message (``--next-hop-idle 0``), then reusing them (the default). Every message is then
queued twice (before and after the filter), which is most of the cost. Prints the rates,
their ratio to Postfix alone and the filter's CPU time per message.

    python benches/smtp_filter_throughput.py [--messages 2000] [--senders 8] [--flagged 0.5]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from milter_throughput import (  # noqa: E402
    cpu_seconds,
    load_options,
    messages,
    require_lab,
    timed_run,
)

from milter_client import RunningFilter, free_port  # noqa: E402
from postfix_lab import Postfix, content_filter_blocks  # noqa: E402


def main(argv: Sequence[str] = ()) -> int:
    args = load_options(__doc__).parse_args(argv or None)
    require_lab()

    postfix = Postfix()
    running = None
    results: List[Tuple[str, float, float]] = []  # (filter's sessions, msg/s, CPU s)
    try:
        postfix.start()
        warm_up = messages(args.senders * 10, args.senders, args.flagged)
        timed_run(postfix, warm_up)
        without = args.messages / timed_run(
            postfix, messages(args.messages, args.senders, args.flagged)
        )

        filter_port, reinjection_port = free_port(), free_port()
        postfix.paste(*content_filter_blocks(filter_port, reinjection_port))
        for name, idle in (("a session per message", "0"), ("sessions reused", "2")):
            running = RunningFilter(
                args.policy,
                filter_port,
                reinjection_port,
                postfix.base / f"filter-{idle}.log",
                "--next-hop-idle",
                idle,
                program=(sys.executable, "-m", "fromguard.cli", "smtp-filter"),
            )
            timed_run(postfix, warm_up)
            cpu_before = cpu_seconds(running.process.pid)
            rate = args.messages / timed_run(
                postfix, messages(args.messages, args.senders, args.flagged)
            )
            results.append((name, rate, cpu_seconds(running.process.pid) - cpu_before))
            running.stop()
            running = None
    finally:
        postfix.stop()
        if running is not None:
            running.stop()
        postfix.remove()

    print(f"messages: {args.messages} of ~3 KB, {args.senders} concurrent SMTP sessions,"
          f" {args.flagged:.0%} flagged, policy {args.policy.name}")  # fmt: skip
    print(f"Postfix without the content filter: {without:8.1f} msg/s")
    for name, rate, cpu in results:
        print(f"with the content filter, {name + ':':22} {rate:8.1f} msg/s"
              f"  ratio {rate / without:.2f}"
              f"  filter CPU {1000 * cpu / args.messages:.3f} ms per message")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
