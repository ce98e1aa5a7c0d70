"""Hostile input of 1 MiB and more: each shape parses on a thread with a small stack (a
parser that recursed per nesting level or per list element would overflow it and take
the process down), hits the limits it should as findings, and the Rust core and the
reference agree on it. The limits table of the README is checked against the constants.

The time per byte of the same shapes is measured by ``benches/hostile.py``, not here.
"""

from __future__ import annotations

import importlib.util
import random
import re
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest

import fromguard
import fromguard.reference
from fromguard._mime import WarningText, rewrite
from fromguard.reference import limits
from fromguard.reference.lookalike import MAX_A_LABEL_BYTES
from fromguard.reference.message import check_message as reference_check_message
from fromguard.reference.mime import rewrite as reference_rewrite

MIB = 1 << 20
README = Path(__file__).resolve().parent.parent / "README.md"
ENCODED_WORD = b"=?utf-8?q?caf=C3=A9_ceo=40bank.example?="

# name -> (value of at least 1 MiB, finding codes it must report)
VALUES: Dict[str, Any] = {
    "10^5 nested comments": (
        b"a@x.example " + b"(" * (MIB // 2) + b")" * (MIB // 2),
        {"comment-too-deep", "line-too-long"},
    ),
    "unterminated quoted string": (
        b'"' + b"a" * MIB + b" <a@x.example>",
        {"unterminated-quoted-string", "line-too-long", "no-address"},
    ),
    "unterminated comment": (
        b"a@x.example (" + b"(x" * (MIB // 2),
        {"comment-too-deep", "line-too-long"},
    ),
    "10^5 commas": (
        b"a@x.example" + b"," * 100_000 + b" " * MIB,
        {"empty-list-element", "too-many-findings", "line-too-long"},
    ),
    "10^4 encoded-words": (
        b"Bank " + b" ".join([ENCODED_WORD] * 26_000) + b" <a@x.example>",
        {"encoded-word", "too-many-findings", "line-too-long"},
    ),
    "10^5 mailboxes, folded": (
        b"a@x.example,\r\n " * 100_000 + b"b@x.example",
        {"too-many-mailboxes", "several-authors"},
    ),
    "10^5 angle brackets": (b"<" * 100_000 + b"a@x.example" + b">" * MIB, {"line-too-long"}),
    "1 MiB of backslashes in quotes": (b'"' + b"\\" * MIB, {"unterminated-quoted-string"}),
    "1 MiB of random bytes": (random.Random(20261129).randbytes(MIB), {"line-too-long"}),
    # Each "=?" is tried as an encoded-word: the reference once copied the text up to the
    # end per try, and took minutes here.
    "4 MiB of encoded-word openers in quotes": (
        b'"' + b"=?" * ((limits.MAX_INPUT_BYTES - 64) // 2),
        {"unterminated-quoted-string", "no-address", "line-too-long"},
    ),
}

# name -> (message of at least 1 MiB, finding codes of the message level it must report)
MESSAGES: Dict[str, Any] = {
    "a 1 MiB From field": (b"From: " + b"(" * MIB + b"\r\n\r\n", set()),
    "10^5 folds": (b"From: a@x.example" + b"\r\n " * (MIB // 3) + b"\r\n\r\n", set()),
    "6 * 10^4 From fields": (
        b"From: a@x.example\n" * 60_000 + b"\n",
        {"several-from-fields", "too-many-fields"},
    ),
    "1 MiB without a colon": (b"x" * MIB, set()),
    "1 MiB of random bytes": (random.Random(5322).randbytes(MIB), set()),
}


def on_small_stack(function: Callable[[], Any]) -> Any:
    """Run `function` on a new thread whose stack is 256 KiB (Python's own default is
    8 MiB on Linux); returns its result or raises its exception."""
    outcome: List[Any] = []

    def run() -> None:
        try:
            outcome.append(("value", function()))
        except BaseException as error:  # re-raised on the calling thread
            outcome.append(("error", error))

    previous = threading.stack_size(256 * 1024)
    try:
        thread = threading.Thread(target=run)
        thread.start()
    finally:
        threading.stack_size(previous)
    thread.join()
    kind, value = outcome[0]
    if kind == "error":
        raise value
    return value


def summary(result: Any) -> Any:
    """What the core and the reference must agree on in a parse."""
    return (
        result.verdict,
        result.syntax,
        result.findings,
        result.mailboxes,
        result.shadows,
        result.codes,
    )


def message_summary(check: Any) -> Any:
    """What the core and the reference must agree on in a message check."""
    fields = [(field[:4], field.result.value, summary(field.result)) for field in check.fields]
    return (check.verdict, check.findings, check.codes, check.rules, fields)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(VALUES))
def test_hostile_value(name: str) -> None:
    value, codes = VALUES[name]
    assert len(value) >= MIB
    core = on_small_stack(lambda: fromguard.parse(value))
    assert core.verdict is fromguard.Verdict.INVALID
    assert codes <= {finding.code for finding in core.findings}
    assert len(core.findings) <= limits.MAX_FINDINGS + 1
    assert len(core.mailboxes) <= limits.MAX_MAILBOXES
    assert len(core.shadows) <= limits.MAX_SHADOWS
    reference = on_small_stack(lambda: fromguard.reference.parse(value))
    assert summary(core) == summary(reference)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MESSAGES))
def test_hostile_message(name: str) -> None:
    message, codes = MESSAGES[name]
    assert len(message) >= MIB
    core = on_small_stack(lambda: fromguard.check_message(message))
    assert codes <= {finding.code for finding in core.findings}
    assert len(core.findings) <= limits.MAX_FINDINGS + 1
    assert len(core.fields) <= limits.MAX_CHECKED_FIELDS
    reference = on_small_stack(lambda: reference_check_message(message))
    assert message_summary(core) == message_summary(reference)
    rules = fromguard.RuleSet(
        [
            ("backtracking", "header:from", r"^(a+)+$"),
            ("name", "display-name", r"(?i)bank"),
            ("domain", "domain", r"\.example$"),
        ]
    )
    assert set(on_small_stack(lambda: rules.match(message))) <= set(rules.names)


def test_parse_many_of_hostile_values() -> None:
    values = [value for value, _ in VALUES.values()]
    results = on_small_stack(lambda: fromguard.parse_many(values))
    assert [summary(r) for r in results] == [summary(fromguard.parse(v)) for v in values]


def readme_limits() -> Dict[str, str]:
    """The README's limits table: limit name -> the row's finding column."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Grammar, profile and limits")[1].split("\n## ")[0]
    rows = re.findall(r"^\| ([^|]+) \| ([^|]+) \| ([^|]+) \|", section, re.M)
    return {name.strip(): f"{value.strip()} | {finding.strip()}" for name, value, finding in rows}


@pytest.mark.parametrize(
    ("limit", "value", "code", "hit"),
    [
        (
            "input size",
            limits.MAX_INPUT_BYTES,
            "input-too-long",
            b"a@x.example" + b" " * limits.MAX_INPUT_BYTES,
        ),
        (
            "line length",
            limits.MAX_LINE_OCTETS,
            "line-too-long",
            b"a@x.example" + b" " * limits.MAX_LINE_OCTETS,
        ),
        (
            "comment nesting",
            limits.MAX_COMMENT_DEPTH,
            "comment-too-deep",
            b"a@x.example " + b"(" * 65 + b")" * 65,
        ),
        (
            "mailboxes returned",
            limits.MAX_MAILBOXES,
            "too-many-mailboxes",
            b"a@x.example,\r\n " * limits.MAX_MAILBOXES + b"a@x.example",
        ),
        (
            "findings returned",
            limits.MAX_FINDINGS,
            "too-many-findings",
            b"a@x.example" + b"," * (limits.MAX_FINDINGS + 1),
        ),
        (
            "shadows returned",
            limits.MAX_SHADOWS,
            "too-many-shadows",
            b'"' + b"a@b.example " * (limits.MAX_SHADOWS + 1) + b'" <x@y.example>',
        ),
        (
            "punycode label",
            MAX_A_LABEL_BYTES,
            "bad-punycode",
            b"a@xn--" + b"a" * MAX_A_LABEL_BYTES + b"-9ya.example",
        ),
    ],
)
def test_each_limit_is_documented_and_reported(
    impl: Any, limit: str, value: int, code: str, hit: bytes
) -> None:
    row = readme_limits()[limit]
    documented = row.split(" | ")[0]
    assert documented in {f"{value // MIB} MiB", f"{value} octets", f"{value} bytes", str(value)}, (
        row
    )
    assert f"`{code}`" in row
    assert code in fromguard.FINDINGS
    assert code in {finding.code for finding in impl(hit).findings}


def test_the_readme_documents_only_these_limits() -> None:
    assert set(readme_limits()) == {
        "limit",
        "input size",
        "line length",
        "comment nesting",
        "mailboxes returned",
        "findings returned",
        "shadows returned",
        "checked fields",
        "punycode label",
    }


@pytest.mark.parametrize(
    "check", [fromguard.check_message, reference_check_message], ids=["core", "reference"]
)
def test_the_checked_fields_limit_is_documented_and_reported(check: Any) -> None:
    row = readme_limits()["checked fields"]
    assert row.split(" | ")[0] == str(limits.MAX_CHECKED_FIELDS)
    assert "`too-many-fields`" in row
    raw = b"From: a@x.example\n" + b"Reply-To: r@y.example\n" * (limits.MAX_CHECKED_FIELDS + 5)
    checked = check(raw)
    assert len(checked.fields) == limits.MAX_CHECKED_FIELDS
    assert [f.code for f in checked.findings] == ["too-many-fields"]
    assert checked.verdict is fromguard.Verdict.INVALID


# -- Hostile MIME (issue 17): the warning rewrite of both engines on each shape ----------


def hostile_mime() -> Dict[str, Callable[[int], bytes]]:
    """The hostile MIME shapes of ``benches/rewrite.py`` (name -> builder of a message of
    about the size given)."""
    benches = str(Path(__file__).resolve().parent.parent / "benches")
    sys.path.insert(0, benches)
    try:
        spec = importlib.util.spec_from_file_location("bench_rewrite", Path(benches) / "rewrite.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(benches)
    shapes: Dict[str, Callable[[int], bytes]] = module.HOSTILE
    return shapes


HOSTILE_MIME = hostile_mime()


@pytest.mark.slow
@pytest.mark.parametrize("name", list(HOSTILE_MIME))
def test_hostile_mime(name: str) -> None:
    """Each shape of 1 MiB is rewritten alike by the core and the reference, and the
    warning reaches the reader (in place, or in a part of its own past a limit)."""
    raw = HOSTILE_MIME[name](MIB)
    warning = WarningText("Caution: sender not verified.", "Caution: sender not verified.")
    core = on_small_stack(lambda: rewrite(raw, (("X-Test", "yes"),), warning, boundary=b"b-1"))
    reference = on_small_stack(
        lambda: reference_rewrite(raw, (("X-Test", "yes"),), warning, boundary=b"b-1")
    )
    assert core == reference
    assert core.warned >= 1
    assert core.message.count(warning.text.encode()) == core.warned
