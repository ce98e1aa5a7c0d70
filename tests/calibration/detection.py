"""How the attack cases fare, per class: ``python tests/calibration/detection.py``.

The cases of ``tests/cases/attacks.jsonl`` (values) and ``tests/cases/messages/
messages.jsonl`` (header blocks) are grouped by their name up to the first ``:`` (``class
7 look-alike``, ``class 12 (issue 15, encoded text in an address)``, ``class 7 benign``
...), and each group's cases judged by both engines: how many of its attacks (a case whose
expected verdict is ``deceptive`` or ``invalid``, what a gateway acts on) each engine
detects, and how many of its honest cases (expected ``valid`` or ``legacy``: the
``benign`` and ``legacy`` variants, and the honest counterparts kept beside an attack)
each engine flags. The test suite checks each case's exact verdict and findings; this
table is the per-class view of the same cases.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

CASES = Path(__file__).resolve().parent.parent / "cases"
ACTED_ON = ("DECEPTIVE", "INVALID")


def cases() -> List[Tuple[str, Dict[str, Any]]]:
    """(group, case) for every named case of both files, values first."""
    found = []
    for path in (CASES / "attacks.jsonl", CASES / "messages" / "messages.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            case = json.loads(line)
            group = case.get("name", "").partition(":")[0]
            if group.startswith("class "):
                found.append((group, case))
    return found


def acted_on(case: Dict[str, Any], parse: Callable[..., Any], check: Callable[..., Any]) -> bool:
    options = {key: case[key] for key in ("utf8", "groups") if key in case}
    if "message" in case:
        verdict = check(case["message"].encode("utf-8"), **options).verdict
    else:
        value = bytes.fromhex(case["input_hex"]) if "input_hex" in case else case["input"]
        verdict = parse(value, **options).verdict
    return verdict.name in ACTED_ON


def main() -> int:
    import fromguard
    import fromguard.reference
    from fromguard.reference.message import check_message as reference_check_message

    engines = {
        "core": (fromguard.parse, fromguard.check_message),
        "reference": (fromguard.reference.parse, reference_check_message),
    }
    groups: Dict[str, List[Dict[str, Any]]] = {}
    for group, case in cases():
        groups.setdefault(group, []).append(case)
    print("| class | attacks | detected (core, reference) | honest | flagged (core, reference) |")
    print("|---|---:|---:|---:|---:|")
    totals = [0] * 6
    key = lambda name: (int(name.split()[1]), name)  # noqa: E731 (class number first)
    for group in sorted(groups, key=key):
        row: List[int] = []
        for attack in (True, False):
            chosen = [c for c in groups[group] if (c["verdict"].upper() in ACTED_ON) == attack]
            row.append(len(chosen))
            row += [sum(acted_on(c, *engine) for c in chosen) for engine in engines.values()]
        totals = [t + n for t, n in zip(totals, row)]
        print(f"| {group} | {row[0]} | {row[1]}, {row[2]} | {row[3]} | {row[4]}, {row[5]} |")
    t = totals
    print(f"| **all** | {t[0]} | {t[1]}, {t[2]} | {t[3]} | {t[4]}, {t[5]} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
