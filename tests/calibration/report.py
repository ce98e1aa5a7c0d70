"""The honest calibration set ``honest.jsonl``: load it, judge an entry with one engine,
and print how each kind fares with both engines.

Run it after every rule change (the extension built with ``maturin develop``)::

    python tests/calibration/report.py           # the per-kind table
    python tests/calibration/report.py --values  # and every flagged value with its findings

``tests/test_calibration.py`` imports ``load_entries`` and ``judge`` from here, so the
table and the test judge every entry the same way.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Tuple

SET_FILE = Path(__file__).resolve().parent / "honest.jsonl"

# What a false alarm is: the verdicts a gateway acts on (DESIGN.md: ``exchange`` policy).
FLAGGED = ("DECEPTIVE", "INVALID")

Entry = Dict[str, Any]


def load_entries(path: Path = SET_FILE) -> List[Entry]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def value_bytes(entry: Entry) -> bytes:
    """The field body's raw bytes: ``value_hex`` for bytes that are not UTF-8."""
    if "value_hex" in entry:
        return bytes.fromhex(entry["value_hex"])
    value: str = entry["value"]
    return value.encode("utf-8")


class Judgement(NamedTuple):
    verdict: str
    codes: Tuple[str, ...]  # the codes that make the verdict (deceptive or invalid), sorted
    findings: str  # every finding, "code@start-end", fields' findings prefixed by the field

    @property
    def flagged(self) -> bool:
        return self.verdict in FLAGGED


def _spans(findings: Iterable[Any], prefix: str = "") -> List[str]:
    return [f"{prefix}{f.code}@{f.start}-{f.end}" for f in findings]


def judge(entry: Entry, parse: Callable[..., Any], check_message: Callable[..., Any]) -> Judgement:
    """An entry with a ``message`` is judged as ``check_message`` sees that header block (a
    list's rewrite is honest only beside its List-Id and List-Post); every other entry as
    ``parse`` sees its value. ``options`` (``groups``) go to either."""
    options = entry.get("options", {})
    if "message" in entry:
        checked = check_message(entry["message"].encode("utf-8"), **options)
        findings = list(checked.findings)
        listed = _spans(checked.findings)
        for field in checked.fields:
            findings += field.result.findings
            listed += _spans(field.result.findings, f"{field.name}:")
        verdict = checked.verdict
    else:
        result = parse(value_bytes(entry), **options)
        findings, listed, verdict = list(result.findings), _spans(result.findings), result.verdict
    codes = sorted({f.code for f in findings if f.severity.name in FLAGGED})
    return Judgement(verdict.name, tuple(codes), " ".join(listed))


def describe(entry: Entry, judgement: Judgement) -> str:
    shown = entry.get("value", entry.get("value_hex"))
    return f"{entry['id']} {shown!r}: {judgement.verdict} [{judgement.findings}]"


Engine = Tuple[Callable[..., Any], Callable[..., Any]]


def engines() -> Dict[str, Engine]:
    import fromguard
    import fromguard.reference
    from fromguard.reference.message import check_message as reference_check_message

    return {
        "core": (fromguard.parse, fromguard.check_message),
        "reference": (fromguard.reference.parse, reference_check_message),
    }


def summary(entries: List[Entry], judged: Dict[str, List[Judgement]]) -> List[str]:
    """A Markdown table: per kind, the values, how many are constructed, how many each
    engine flags and by which codes (``code:count``), and how many are known false alarms."""
    names = sorted(judged)
    header = ["kind", "values", "constructed", "known"] + [f"flagged ({n})" for n in names]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    kinds = sorted({e["kind"] for e in entries})
    for kind in [*kinds, None]:
        rows = [i for i, e in enumerate(entries) if kind is None or e["kind"] == kind]
        cells = [
            kind or "**all**",
            str(len(rows)),
            str(sum(1 for i in rows if entries[i].get("constructed"))),
            str(sum(1 for i in rows if "known_false_alarm" in entries[i])),
        ]
        for name in names:
            flagged = [judged[name][i] for i in rows if judged[name][i].flagged]
            codes = Counter(code for j in flagged for code in j.codes)
            listed = ", ".join(f"{code}:{n}" for code, n in sorted(codes.items()))
            cells.append(f"{len(flagged)}" + (f" ({listed})" if listed else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="How the honest calibration set fares.")
    parser.add_argument("--values", action="store_true", help="list every flagged value")
    args = parser.parse_args(argv)
    entries = load_entries()
    judged = {
        name: [judge(entry, parse, check) for entry in entries]
        for name, (parse, check) in engines().items()
    }
    print("\n".join(summary(entries, judged)))
    if args.values:
        for name, judgements in sorted(judged.items()):
            print(f"\nflagged by {name}:")
            for entry, judgement in zip(entries, judgements):
                if judgement.flagged:
                    known = " (known)" if "known_false_alarm" in entry else ""
                    print(f"  {describe(entry, judgement)}{known}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
