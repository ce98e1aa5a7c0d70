"""Time per byte of hostile From values and messages at 1 KiB, 100 KiB and 1 MiB.

    python benches/hostile.py [--reference] [--repeat N]

Each shape is built at each size and parsed (best of N runs, after one warm-up) by the
Rust core (``fromguard.parse``, ``check_message``, a ``RuleSet``), and with
``--reference`` by the pure-Python reference too. Linear time shows as a flat
nanoseconds-per-byte column: the last column is the 1 MiB cost per byte over the 1 KiB
one (about 1 or below when the cost grows no faster than the input; fixed costs make
small inputs dearer per byte).
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Callable, Dict, List

import fromguard
import fromguard.reference
from fromguard.reference.message import check_message as reference_check_message

SIZES = {"1 KiB": 1 << 10, "100 KiB": 100 << 10, "1 MiB": 1 << 20}


def fill(head: bytes, unit: bytes, size: int, tail: bytes = b"") -> bytes:
    """`head`, then `unit` repeated, then `tail`: `size` bytes in all."""
    body = unit * ((size - len(head) - len(tail)) // len(unit) + 1)
    return head + body[: size - len(head) - len(tail)] + tail


def nested_comments(size: int) -> bytes:
    half = (size - 12) // 2
    return b"a@x.example " + b"(" * half + b")" * (size - 12 - half)


VALUES: Dict[str, Callable[[int], bytes]] = {
    "nested comments": nested_comments,
    "unterminated quote": lambda n: fill(b'"', b"a", n),
    "unterminated comment": lambda n: fill(b"a@x.example ", b"(x", n),
    "commas": lambda n: fill(b"a@x.example", b",", n),
    "encoded-words": lambda n: fill(b"Bank ", b"=?utf-8?q?caf=C3=A9_ceo=40bank.example?= ", n),
    "mailboxes (folded)": lambda n: fill(b"", b"a@x.example,\r\n ", n),
    "angle brackets": lambda n: fill(b"", b"<", n),
    "at signs": lambda n: fill(b"", b"@", n),
    "dots": lambda n: fill(b"a", b".", n),
    "backslashes in quotes": lambda n: fill(b'"', b"\\", n),
    "random bytes": lambda n: random.Random(n).randbytes(n),
}
MESSAGES: Dict[str, Callable[[int], bytes]] = {
    "message: From fields": lambda n: fill(b"", b"From: a@x.example\n", n),
    "message: one long From": lambda n: fill(b"From: ", b"(", n, b"\r\n\r\n"),
    "message: folds": lambda n: fill(b"From: a@x.example", b"\r\n ", n, b"\r\n\r\n"),
    "message: random bytes": lambda n: random.Random(n).randbytes(n),
}
RULES = fromguard.RuleSet(
    [
        ("backtracking", "header:from", r"^(a+)+$"),
        ("name", "display-name", r"(?i)pay\s*pal|bank"),
        ("domain", "domain", r"\.example$"),
    ]
)


def best_time(function: Callable[[bytes], object], data: bytes, repeat: int) -> float:
    function(data)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function(data)
        times.append(time.perf_counter() - started)
    return min(times)


def row(
    name: str, make: Callable[[int], bytes], run: Callable[[bytes], object], repeat: int
) -> str:
    per_byte: List[float] = []
    for size in SIZES.values():
        data = make(size)
        assert len(data) == size, (name, len(data), size)
        per_byte.append(best_time(run, data, repeat) / size * 1e9)
    cells = "".join(f"{ns:12.2f}" for ns in per_byte)
    return f"{name:38}{cells}{per_byte[-1] / per_byte[0]:10.2f}"


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    options.add_argument("--reference", action="store_true", help="time the reference too")
    options.add_argument("--repeat", type=int, default=5, help="runs per input (best kept)")
    args = options.parse_args()
    header = "".join(f"{size:>12}" for size in SIZES)
    print(f"{'ns per byte':38}{header}{'1MiB/1KiB':>10}")
    runs: List[Dict[str, Callable[[bytes], object]]] = [
        {"parse": fromguard.parse},
        {"check_message": fromguard.check_message, "RuleSet.match": RULES.match},
    ]
    if args.reference:
        runs[0]["reference parse"] = fromguard.reference.parse
        runs[1]["reference check_message"] = reference_check_message
    for shapes, functions in zip((VALUES, MESSAGES), runs):
        for label, function in functions.items():
            for name, make in shapes.items():
                repeat = 1 if label.startswith("reference") else args.repeat
                print(row(f"{label}: {name}", make, function, repeat), flush=True)


if __name__ == "__main__":
    main()
