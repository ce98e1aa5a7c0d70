"""Writes the seed corpora of the fuzz targets from every case file: `python fuzz/seed.py`.

- parse: every From value of tests/cases/*.jsonl and tests/conformance/*.jsonl, the
  domains of the look-alike cases as addresses, the Debian maintainer corpus, and the
  regression inputs of fuzz/regressions/parse;
- check_message: every message of tests/cases/messages, tests/data/messages,
  examples/sample.mbox split at its "From " lines, each From value as a one-field
  message, and fuzz/regressions/check_message;
- rules: each message above behind a rule pattern (the input layout of
  fuzz_targets/rules.rs), and fuzz/regressions/rules.

The corpora (fuzz/corpus/, not in git) are named by content hash, so running the script
again adds nothing twice. Prints the count per target.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Dict, Iterator, List

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "fuzz"

# Patterns a rule writer might give, for the rules seeds (target index, pattern).
RULE_PATTERNS = [
    (0, r"(?i)pay\s*pal"),
    (2, r"\.example$"),
    (4, r"<[^>]*>\s*<"),
    (5, r"^(?:Re|Fwd):"),
    (6, r"[\p{Cyrillic}\p{Greek}]+"),
    (3, r"(a+)+$"),
]


def text_bytes(text: str) -> bytes:
    """A case's text as the parser receives it (str is encoded like fromguard.parse)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def jsonl(path: Path) -> Iterator[Dict[str, Any]]:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            yield json.loads(line)


def case_value(case: Dict[str, Any]) -> bytes:
    """The From value of a case: `input`, `input_hex` or `input_repeat` (test_cases.py)."""
    if "input_repeat" in case:
        return text_bytes("".join(text * count for text, count in case["input_repeat"]))
    if "input_hex" in case:
        return bytes.fromhex(case["input_hex"])
    return text_bytes(case["input"])


def from_values() -> List[bytes]:
    values: List[bytes] = []
    for path in sorted((ROOT / "tests" / "cases").glob("*.jsonl")):
        for case in jsonl(path):
            if "domain" in case and isinstance(case["domain"], str):
                values.append(b"user@" + text_bytes(case["domain"]))
            if any(key in case for key in ("input", "input_hex", "input_repeat")):
                values.append(case_value(case))
    for path in sorted((ROOT / "tests" / "conformance").glob("*.jsonl")):
        values += [text_bytes(case["input"]) for case in jsonl(path) if "input" in case]
    corpus = ROOT / "tests" / "corpus" / "debian-maintainers.txt"
    values += corpus.read_bytes().splitlines()
    return values


def messages(values: List[bytes]) -> List[bytes]:
    found: List[bytes] = []
    for path in sorted((ROOT / "tests" / "cases" / "messages").glob("*.jsonl")):
        found += [text_bytes(case["message"]) for case in jsonl(path)]
    found += [path.read_bytes() for path in sorted((ROOT / "tests" / "data").rglob("*.eml"))]
    mbox = (ROOT / "examples" / "sample.mbox").read_bytes()
    found += [part for part in re.split(rb"(?m)^(?=From )", mbox) if part]
    found += [b"From: " + value + b"\r\nTo: a@b.example\r\n\r\nbody\r\n" for value in values]
    return found


def rule_inputs(found: List[bytes]) -> List[bytes]:
    inputs: List[bytes] = []
    for index, message in enumerate(found):
        target, pattern = RULE_PATTERNS[index % len(RULE_PATTERNS)]
        encoded = pattern.encode("utf-8")
        inputs.append(bytes([len(encoded), target]) + encoded + message)
    return inputs


def write(target: str, inputs: List[bytes]) -> int:
    directory = FUZZ / "corpus" / target
    directory.mkdir(parents=True, exist_ok=True)
    regressions = FUZZ / "regressions" / target
    if regressions.is_dir():
        inputs = inputs + [path.read_bytes() for path in sorted(regressions.iterdir())]
    names = set()
    for data in inputs:
        name = hashlib.sha1(data).hexdigest()
        names.add(name)
        (directory / name).write_bytes(data)
    return len(names)


def main() -> None:
    values = from_values()
    found = messages(values)
    for target, inputs in (
        ("parse", values),
        ("check_message", found),
        ("rules", rule_inputs(found)),
    ):
        print(f"{target}: {write(target, inputs)} seeds in fuzz/corpus/{target}")


if __name__ == "__main__":
    main()
