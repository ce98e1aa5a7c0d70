"""The public Python API on fuzzed input: no exception, and the Rust core and the
reference agree.

Two sources: the cargo-fuzz inputs kept in git (the crash regressions under
``fuzz/regressions/`` and the minimised corpus ``fuzz/corpus.tar.gz``, both per target:
parse, check_message, rules), and messages hypothesis builds here from the grammar pieces
of ``test_parity`` (header blocks with every checked field, folds, bodies of every MIME
shape a policy rewrites, then mutated). ``FROMGUARD_FUZZ_EXAMPLES`` raises the number of
hypothesis examples for a longer run.

What may raise, as documented: ``TypeError`` for an argument of the wrong type and
``ValueError`` for a rule that does not compile. Bytes in, no exception out, and a
policy's outcome carries the message (rewritten or not) with the same From fields.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path
from typing import Any, List, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fromguard
import fromguard.reference
from fromguard import Action, Policy, RuleSet
from fromguard.reference.message import check_message as reference_check_message
from test_hostile import message_summary, summary
from test_parity import header_value, piece
from test_threads import RULE_TABLE

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "fuzz"
EXAMPLES = int(os.environ.get("FROMGUARD_FUZZ_EXAMPLES", "200"))

POLICIES = {
    "strict": Policy.from_toml(ROOT / "examples" / "policies" / "strict.toml"),
    "exchange": Policy.exchange(),
    # Every message rewritten: the header fields and the warning go into each one.
    "warn-all": Policy.from_dict(
        {
            "verdicts": {v: "warn" for v in ("valid", "legacy", "deceptive", "invalid")},
            "tag": {"headers": {"X-Fromguard": "{verdict} {codes} {reasons}"}},
        }
    ),
}
RULES = RULE_TABLE
FIXED_RULES = RuleSet(RULES)
# The targets a rules input picks from with its second byte.
RULE_TARGETS = [target for _, target, _ in RULE_TABLE]


def fuzz_inputs(target: str) -> List[bytes]:
    """The regression inputs and the minimised corpus of one cargo-fuzz target."""
    found = []
    regressions = FUZZ / "regressions" / target
    if regressions.is_dir():
        found += [path.read_bytes() for path in sorted(regressions.iterdir())]
    with tarfile.open(FUZZ / "corpus.tar.gz") as archive:
        for member in archive.getmembers():
            if member.isfile() and member.name.startswith(f"{target}/"):
                data = archive.extractfile(member)
                assert data is not None
                found.append(data.read())
    return found


def check_value(value: bytes) -> None:
    for utf8 in (True, False):
        for groups in (False, True):
            core = fromguard.parse(value, utf8=utf8, groups=groups)
            reference = fromguard.reference.parse(value, utf8=utf8, groups=groups)
            assert summary(core) == summary(reference), (value, utf8, groups)
            core.explain()  # renders any result


def check_raw_message(raw: bytes) -> None:
    check = fromguard.check_message(raw)
    assert message_summary(check) == message_summary(reference_check_message(raw)), raw
    sent = [(field.name, field.result.value) for field in check.fields]
    for policy in POLICIES.values():
        outcome = policy.process(raw)
        assert outcome.verdict is check.verdict
        if outcome.action in (Action.TAG, Action.WARN):
            # Fields are only added on top: every checked field is still there, as it was.
            kept = fromguard.check_message(outcome.message).fields
            assert [(f.name, f.result.value) for f in kept] == sent
            assert len(outcome.message) >= len(raw)
        else:
            assert outcome.message is raw
    assert set(FIXED_RULES.match(raw)) <= {name for name, _, _ in RULES}


def check_rule_input(data: bytes) -> None:
    """An input of the rules target: byte 0 the pattern length, byte 1 its target."""
    if len(data) < 2:
        return
    pattern, raw = data[2 : 2 + data[0]], data[2 + data[0] :]
    target = RULE_TARGETS[data[1] % len(RULE_TARGETS)]
    fixed = FIXED_RULES.match(raw)
    try:
        rules = RuleSet([*RULES, ("fuzzed", target, pattern.decode("utf-8", "replace"))])
    except ValueError as error:
        assert str(error).startswith("rule 'fuzzed': ")
        return
    hits = rules.match(raw)
    assert tuple(name for name in hits if name != "fuzzed") == fixed


def test_the_fuzz_corpus_is_there() -> None:
    for target in ("parse", "check_message", "rules"):
        assert len(fuzz_inputs(target)) >= 100, target


@pytest.mark.slow
def test_parse_inputs() -> None:
    for value in fuzz_inputs("parse"):
        check_value(value)
    assert len(fromguard.parse_many(fuzz_inputs("parse"))) == len(fuzz_inputs("parse"))


@pytest.mark.slow
def test_check_message_inputs() -> None:
    for raw in fuzz_inputs("check_message"):
        check_raw_message(raw)


@pytest.mark.slow
def test_rules_inputs() -> None:
    for data in fuzz_inputs("rules"):
        check_rule_input(data)


def test_documented_type_errors() -> None:
    for call in (
        lambda: fromguard.check_message("From: a@x.example\n\n"),  # type: ignore[arg-type]
        lambda: POLICIES["strict"].process("From: a@x.example\n\n"),  # type: ignore[arg-type]
        lambda: FIXED_RULES.match("From: a@x.example\n\n"),  # type: ignore[arg-type]
        lambda: fromguard.parse(1),  # type: ignore[arg-type]
    ):
        with pytest.raises(TypeError):
            call()


FIELD_NAMES = [
    b"From",
    b"FROM",
    b"From ",
    b"Sender",
    b"Reply-To",
    b"Resent-From",
    b"To",
    b"Subject",
    b"X-Mailer",
    b"Content-Type",
    b"Content-Transfer-Encoding",
    b"MIME-Version",
]
BODIES = [
    b"",
    b"plain text\r\n",
    b"caf\xe9 \xff\r\n.\r\n",
    b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhi\r\n--b\r\n"
    b"Content-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\nPGI+aGk8L2I+\r\n--b--\r\n",
    b"--b\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n--c\r\n"
    b"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: "
    b"quoted-printable\r\n\r\ncaf=E9 =\r\nsoft\r\n--c--\r\n--b--\r\n",
    b"--b\r\nContent-Type: text/plain\r\n\r\nunterminated multipart\r\n",
    b"SGVsbG8gd29ybGQ=\r\n",
]
CONTENT_TYPES = [
    b"text/plain; charset=utf-8",
    b'text/html; charset="utf-16"',
    b"multipart/mixed; boundary=b",
    b'multipart/signed; boundary=b; protocol="application/pgp-signature"',
    b'multipart/alternative; boundary="b"',
    b"multipart/mixed",
    b"text/plain; charset=x-unknown",
]


@st.composite
def message(draw: Any) -> bytes:
    eol = draw(st.sampled_from([b"\r\n", b"\n"]))
    fields: List[bytes] = []
    if draw(st.booleans()):
        fields.append(b"From mallory@mallory.example Sun Nov 29 08:00:00 2026")
    for _ in range(draw(st.integers(0, 6))):
        name = draw(st.sampled_from(FIELD_NAMES))
        value: Optional[bytes]
        if name == b"Content-Type":
            value = draw(st.sampled_from(CONTENT_TYPES))
        elif name == b"Content-Transfer-Encoding":
            value = draw(st.sampled_from([b"base64", b"quoted-printable", b"8bit", b"x-uue"]))
        else:
            value = draw(st.one_of(header_value(), piece, st.binary(max_size=16)))
        fields.append(name + b":" + draw(st.sampled_from([b" ", b"", b"\t", eol + b" "])) + value)
    raw = eol.join(fields) + eol
    if draw(st.booleans()):
        raw += eol + draw(st.sampled_from(BODIES))
    if draw(st.booleans()):  # mutate: a few pieces or raw bytes anywhere
        for _ in range(draw(st.integers(1, 3))):
            at = draw(st.integers(0, len(raw)))
            raw = raw[:at] + draw(st.one_of(piece, st.binary(max_size=4))) + raw[at:]
    return raw


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message())
def test_generated_messages(raw: bytes) -> None:
    check_raw_message(raw)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes(data: bytes) -> None:
    check_value(data)
    check_raw_message(data)
    check_rule_input(data)
