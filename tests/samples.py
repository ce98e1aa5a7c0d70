"""Inputs that tests and benches share (``benches/soak.py`` imports this module too): the
From values of the grammar and attack case files, and whole messages."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parent.parent


def case_values() -> List[bytes]:
    """The From values of the grammar and attack cases (those written as ``input``)."""
    found = []
    for name in ("grammar.jsonl", "attacks.jsonl"):
        for line in (ROOT / "tests" / "cases" / name).read_text(encoding="utf-8").splitlines():
            case = json.loads(line)
            if "input" in case:
                found.append(case["input"].encode("utf-8", "surrogateescape"))
    return found


# An mbox ``From `` line: at the start or after an empty line, and not a field named
# ``From`` written with white space before its colon (``From : x``, obs-from).
_MBOX_SEPARATOR = re.compile(rb"(?:\A|(?<=\n\n)|(?<=\n\r\n))(?=From [^: \t\r\n])")


def messages() -> List[bytes]:
    """The messages of ``examples/sample.mbox`` (each with its mbox ``From `` line) and
    the test messages of ``tests/data``."""
    mbox = (ROOT / "examples" / "sample.mbox").read_bytes()
    found = [part for part in _MBOX_SEPARATOR.split(mbox) if part]
    return found + [path.read_bytes() for path in sorted((ROOT / "tests" / "data").rglob("*.eml"))]
