"""Seeds the fuzz corpora from every case file, or packs the minimised corpora.

    python fuzz/seed.py           # writes fuzz/corpus/<target>/ (not in git)
    python fuzz/seed.py --pack    # fuzz/corpus/<target>/ -> fuzz/corpus.tar.gz (in git),
                                  # the inputs under 1 KiB
    python fuzz/seed.py --pack DIR   # DIR/<target>/ instead (a merge made beside a
                                     # campaign that still uses fuzz/corpus/)

Seeds:

- parse: every From value of tests/cases/*.jsonl and tests/conformance/*.jsonl, the
  domains of the look-alike cases as addresses, the Debian maintainer corpus, and the
  regression inputs of fuzz/regressions/parse;
- check_message: every message of tests/cases/messages, tests/data/messages,
  examples/sample.mbox split at its "From " lines, each From value as a one-field
  message, and fuzz/regressions/check_message;
- rules: each message above behind a rule pattern (the input layout of
  fuzz_targets/rules.rs), and fuzz/regressions/rules;
- policy (fuzz/policy_fuzz.py, atheris): the messages of check_message but the one-field
  ones (Python runs a thousand times slower: the seeds are what the rewrite reads), its
  packed corpus, and fuzz/regressions/policy.

and for every target the inputs of fuzz/corpus.tar.gz: the corpus of earlier runs,
minimised (`cargo fuzz cmin`) and packed with --pack, which tests/test_fuzz_inputs.py
feeds through the Python API. Files are named by content hash, so seeding again adds
nothing twice. Prints the count per target.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import tarfile
from pathlib import Path
from typing import Any, Dict, Iterator, List

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "fuzz"
PACKED = FUZZ / "corpus.tar.gz"
TARGETS = ("parse", "check_message", "rules")
PACK_MAX_BYTES = 1024
# Targets seeded with another's packed corpus (their inputs are alike).
PACKED_AS = {"policy": "check_message"}

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


def packed(target: str) -> List[bytes]:
    target = PACKED_AS.get(target, target)
    if not PACKED.exists():
        return []
    found = []
    with tarfile.open(PACKED) as archive:
        for member in archive.getmembers():
            data = archive.extractfile(member) if member.name.startswith(f"{target}/") else None
            if data is not None:
                found.append(data.read())
    return found


def pack(corpora: Path) -> None:
    """The inputs under PACK_MAX_BYTES of ``corpora``/<target>/ into one archive (the
    larger ones add little coverage but most of the size and the test time)."""
    with tarfile.open(PACKED, "w:gz", compresslevel=9) as archive:
        for target in TARGETS:
            paths = sorted(
                path
                for path in (corpora / target).iterdir()
                if path.stat().st_size < PACK_MAX_BYTES
            )
            for path in paths:
                info = tarfile.TarInfo(f"{target}/{path.name}")
                info.size = path.stat().st_size
                with path.open("rb") as data:
                    archive.addfile(info, data)
            print(f"{target}: {len(paths)} inputs packed")
    print(f"{PACKED.relative_to(ROOT)}: {PACKED.stat().st_size:,} bytes")


def write(target: str, inputs: List[bytes]) -> int:
    directory = FUZZ / "corpus" / target
    directory.mkdir(parents=True, exist_ok=True)
    inputs = inputs + packed(target)
    regressions = FUZZ / "regressions" / target
    if regressions.is_dir():
        inputs += [path.read_bytes() for path in sorted(regressions.iterdir())]
    names = set()
    for data in inputs:
        name = hashlib.sha1(data).hexdigest()
        names.add(name)
        (directory / name).write_bytes(data)
    return len(names)


def main() -> None:
    if sys.argv[1:2] == ["--pack"] and len(sys.argv) <= 3:
        pack(Path(sys.argv[2]) if len(sys.argv) == 3 else FUZZ / "corpus")
        return
    values = from_values()
    found = messages(values)
    for target, inputs in (
        ("parse", values),
        ("check_message", found),
        ("rules", rule_inputs(found)),
        ("policy", messages([])),
    ):
        print(f"{target}: {write(target, inputs)} seeds in fuzz/corpus/{target}")


if __name__ == "__main__":
    main()
