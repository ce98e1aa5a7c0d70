"""fromguard against an earlier build of itself, in one run:
``python benches/before_after.py --before PYTHON [--after PYTHON] [--rounds N]``.

``PYTHON`` is an interpreter whose environment has the build to compare installed (say a
venv with the wheel of the commit before a change: ``pip install dist/fromguard-*.whl``).
Each round runs one child process per build, alternating, and each child times every
fromguard call on every value set (``corpora.py``) as ``compare.py`` does (best pass);
the best of the rounds counts, so that both builds meet the same machine. The table gives
each build's time per value and the ratio after/before (``1.07x`` = 7% slower); ratios
over ``--tolerance`` are marked. Speed is judged here, never by assertions in tests.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import corpora
import peers

HERE = Path(__file__).resolve().parent
# The calls a change to the core or the binding can slow: compare.py's fromguard rows
# but the reference, the header check of a message around each value, and a policy with
# rules deciding on that message (what the milter and scan call).
CALLS = (
    "fromguard.parse",
    "fromguard.parse + read all",
    "fromguard.parse_many",
    "fromguard.verdicts",
    "fromguard.check_message",
    "Policy.process, 2 rules",
)

Timings = Dict[str, Dict[str, float]]


def _message(value: str) -> bytes:
    return (
        b"Received: from mx.example.org (mx.example.org [192.0.2.1])\r\n\tby gw.example.net\r\n"
        b"From: " + value.encode("utf-8", "surrogateescape") + b"\r\n"
        b"To: team@example.net\r\nSubject: hello\r\n\r\nbody\r\n"
    )


def child() -> Timings:
    """Seconds per value of each call on each value set, in this interpreter's build."""
    import compare

    import fromguard

    entries = [entry for entry in peers.entries() if entry.name in CALLS]
    check = peers.Entry(
        "fromguard.check_message",
        "the header check of a five-field message around the value",
        peers._per_call(fromguard.check_message, _message),
    )
    policy = fromguard.Policy(
        verdicts={"deceptive": "reject"},
        rules={
            "bank-name": {"target": "display-name", "pattern": "(?i)bank", "action": "tag"},
            "mailer": {"target": "header:X-Mailer", "pattern": "^Bulk", "action": "reject"},
        },
    )
    process = peers.Entry(
        "Policy.process, 2 rules",
        "the policy's decision on that message (accepted, rejected or tagged)",
        peers._per_call(policy.process, _message),
    )
    timings: Timings = {}
    for name, values in corpora.corpora().items():
        timings[name] = {}
        for entry in [*entries, check, process]:
            assert entry.prepare is not None
            runner = entry.prepare(values)
            timings[name][entry.name] = compare.best_pass(runner, values) / len(values)
    return timings


def run(python: str) -> Timings:
    output = subprocess.run(
        [python, str(Path(__file__).resolve()), "--child"],
        check=True,
        capture_output=True,
        text=True,
        cwd=HERE,
    ).stdout
    timings: Timings = json.loads(output)
    return timings


def best(runs: List[Timings]) -> Timings:
    first = runs[0]
    return {
        corpus: {call: min(run[corpus][call] for run in runs) for call in first[corpus]}
        for corpus in first
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="interpreter with the earlier build (required)")
    parser.add_argument("--after", default=sys.executable, help="interpreter with this build")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tolerance", type=float, default=1.05, help="ratio marked slower")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child()))
        return
    if args.before is None:
        parser.error("--before is required")
    before_runs: List[Timings] = []
    after_runs: List[Timings] = []
    for _ in range(args.rounds):
        before_runs.append(run(args.before))
        after_runs.append(run(args.after))
    before, after = best(before_runs), best(after_runs)
    print(f"best of {args.rounds} alternating rounds; ratio = after / before\n")
    print("| values | call | before µs/value | after µs/value | ratio |")
    print("|---|---|---:|---:|---:|")
    for corpus, calls in after.items():
        for call, seconds in calls.items():
            earlier = before.get(corpus, {}).get(call)
            if earlier is None:
                print(f"| {corpus} | {call} | — | {seconds * 1e6:.3f} | |")
                continue
            ratio = seconds / earlier
            mark = " **slower**" if ratio > args.tolerance else ""
            print(
                f"| {corpus} | {call} | {earlier * 1e6:.3f} | {seconds * 1e6:.3f} "
                f"| {ratio:.2f}x{mark} |"
            )


if __name__ == "__main__":
    main()
