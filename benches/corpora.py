"""The value sets every benchmark runs over, built from files in the repository.

- ``debian``: the 2,247 ``Maintainer:`` values of Debian 12 (``tests/corpus/``), real
  honest From values written by hand.
- ``generated``: ordinary From headers of the shapes real mail has (plain and quoted
  names, ``Last, First``, titles and initials, comments, encoded-words in several
  charsets, plus tags, bare addresses), made by a seeded generator.
- ``attacks``: the hand-written attack cases of ``tests/cases/attacks.jsonl``.
"""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parent.parent

FIRST = ["Jane", "John", "Jörg", "Zoë", "Siobhán", "Łukasz", "Иван", "Σοφία", "太郎", "Ana"]
LAST = ["Doe", "Smith", "Müller", "Ó Briain", "Nowak", "Петров", "Παπαδάκη", "山田", "Silva"]
DOMAINS = ["example.org", "mail.example.com", "lists.example.net", "corp.example"]


def debian() -> List[str]:
    text = (ROOT / "tests" / "corpus" / "debian-maintainers.txt").read_text(encoding="utf-8")
    return text.splitlines()


def attacks() -> List[str]:
    lines = (ROOT / "tests" / "cases" / "attacks.jsonl").read_text(encoding="utf-8")
    values = []
    for line in lines.splitlines():
        case = json.loads(line)
        if "input" in case and not case.get("groups", False):
            values.append(case["input"])
    return values


def _encoded(text: str, charset: str, rng: random.Random) -> str:
    data = text.encode(charset)
    if rng.random() < 0.5:
        return f"=?{charset}?b?{base64.b64encode(data).decode()}?="
    # Only ASCII letters and digits stand for themselves (a byte >= 0x80 is escaped).
    quoted = "".join(chr(b) if chr(b).isascii() and chr(b).isalnum() else f"={b:02X}" for b in data)
    return f"=?{charset}?q?{quoted}?="


def generated(count: int = 2000, seed: int = 5322) -> List[str]:
    rng = random.Random(seed)
    values = []
    for _ in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        local = f"{first[:1].lower()}.{rng.randrange(1000)}"
        if not local.isascii():
            local = f"user{rng.randrange(10000)}"
        if rng.random() < 0.2:
            local += f"+{rng.choice(['news', 'git', 'bugs'])}"
        address = f"{local}@{rng.choice(DOMAINS)}"
        shape = rng.randrange(8)
        if shape == 0:
            values.append(address)
        elif shape == 1:
            values.append(f'"{last}, {first}" <{address}>')
        elif shape == 2:
            values.append(f"Dr. {first} {last[:1]}. {last} <{address}>")
        elif shape == 3:
            values.append(f"{first} {last} (via {rng.choice(['Team', 'List'])}) <{address}>")
        elif shape == 4:
            charset = rng.choice(["utf-8", "iso-8859-1", "utf-8"])
            try:
                name = _encoded(f"{first} {last}", charset, rng)
            except UnicodeEncodeError:
                name = _encoded(f"{first} {last}", "utf-8", rng)
            values.append(f"{name} <{address}>")
        else:
            values.append(f"{first} {last} <{address}>")
    return values


def corpora() -> Dict[str, List[str]]:
    return {"debian": debian(), "generated": generated(), "attacks": attacks()}
