"""Many threads at once give the results one thread gives: the core releases the GIL
while it parses, checks and matches, so threads really run it in parallel on one shared
``Policy`` and one shared ``RuleSet``.

Each worker goes through every value and message in its own shuffled order, several
times, so that different inputs are in flight together; every result is compared with
the single-threaded one.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, List, Tuple

import fromguard
from fromguard import Policy, RuleSet
from samples import case_values, messages
from test_hostile import message_summary, summary

ROOT = Path(__file__).resolve().parent.parent
THREADS = 8
ROUNDS = 4

# One rule per target (also used by test_fuzz_inputs).
RULE_TABLE = [
    ("brand", "display-name", r"(?i)\bbank\s*(security|support)\b|pay\s*pal"),
    ("ceo", "local-part", r"^(ceo|admin|support)$"),
    ("lookalike", "domain", r"(?i)^xn--|[^\x00-\x7f]"),
    ("bank", "addr-spec", r"@bank\.example$"),
    ("angles", "header:From", r"<[^>]*>\s*<"),
    ("mailer", "header:X-Mailer", r"(?i)mailer"),
    ("subject", "header:Subject", r"(?i)account|invoice"),
]
RULES = RuleSet(RULE_TABLE)


VALUES = case_values()
MESSAGES = messages()
POLICY = Policy.from_toml(ROOT / "examples" / "policies" / "strict.toml")


def work(order: List[int]) -> Dict[Tuple[str, int], Any]:
    """Every kind of result for the inputs at these indices (values, then messages)."""
    results: Dict[Tuple[str, int], Any] = {}
    for index in order:
        if index < len(VALUES):
            value = VALUES[index]
            results["parse", index] = summary(fromguard.parse(value))
            results["parse-strict", index] = summary(fromguard.parse(value, utf8=False))
        else:
            raw = MESSAGES[index - len(VALUES)]
            results["check", index] = message_summary(fromguard.check_message(raw))
            results["process", index] = POLICY.process(raw)
            results["rules", index] = RULES.match(raw)
    indices = [i for i in order if i < len(VALUES)]
    batch = fromguard.parse_many([VALUES[i] for i in indices])
    results.update((("parse_many", i), summary(r)) for i, r in zip(indices, batch))
    return results


def test_inputs_are_there() -> None:
    assert len(VALUES) > 150 and len(MESSAGES) > 20


def test_threads_give_the_single_threaded_results() -> None:
    everything = list(range(len(VALUES) + len(MESSAGES)))
    expected = work(everything)
    orders = []
    for seed in range(THREADS * ROUNDS):
        order = everything[:]
        random.Random(seed).shuffle(order)
        orders.append(order)
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        for got in pool.map(work, orders):
            assert got == expected
