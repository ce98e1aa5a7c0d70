"""``Policy.process`` on generated and mutated messages, against the reference.

Three policies (the Exchange preset, ``examples/policies/strict.toml`` with its rules, and
one that warns on everything with rules on every target) on messages built from the
grammar pieces (``test_fuzz_inputs.message``) and on the case messages mutated: the
decision made on the core's check equals the one made on the reference's, and the
outcome keeps the message (``policy_oracle.py`` says what is checked). A bounded run
(``FROMGUARD_FUZZ_EXAMPLES``, default 100); ``fuzz/policy_fuzz.py`` runs the same checks
under atheris for as long as one likes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, List

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fromguard import Action
from fromguard.reference.message import check_message as reference_check_message
from policy_oracle import POLICIES, check, kept_outside_insertions, on_reference, shows_warning
from test_fuzz_inputs import message
from test_hostile import message_summary
from test_parity import piece

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = int(os.environ.get("FROMGUARD_FUZZ_EXAMPLES", "100"))


def seed_messages() -> List[bytes]:
    """The case messages, the sample messages of tests/data and the policy fuzz's
    regression inputs (fuzz/regressions/policy)."""
    found = []
    for line in (ROOT / "tests" / "cases" / "messages" / "messages.jsonl").read_text().splitlines():
        if line.strip():
            found.append(json.loads(line)["message"].encode("utf-8", "surrogateescape"))
    found += [path.read_bytes() for path in sorted((ROOT / "tests" / "data").rglob("*.eml"))]
    found += [
        path.read_bytes() for path in sorted((ROOT / "fuzz" / "regressions" / "policy").iterdir())
    ]
    return found


SEEDS = seed_messages()

# Pieces that move a message between the rewrite's paths: MIME structure, transfer
# encodings and their damage, the HTML body tag, the fields a decision reads.
MIME_PIECES = [
    b"\r\n--b\r\n",
    b"\n--b--\n",
    b"\r\n\r\n",
    b"Content-Type: multipart/mixed; boundary=b\r\n",
    b"Content-Type: multipart/alternative; boundary=b\r\n",
    b'Content-Type: multipart/signed; boundary="b"\r\n',
    b"Content-Type: text/html; charset=iso-8859-1\r\n",
    b"Content-Type: text/plain; charset=utf-16\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"Content-Disposition: attachment\r\n",
    b"<body class=x>",
    b"<BODY>",
    b"=\r\n",
    b"=E9",
    b"SGVsbG8gd29ybGQ=\r\n",
    b"!",
    b"==",
    b"\xef\xbb\xbf",
    b"From: Bank Support <ceo@xn--bnk-sla.example>\r\n",
    b"Sender: a@x.example\r\n",
    b"Subject: your account\r\n",
    b"X-Mailer: MassMailer\r\n",
]


@st.composite
def mutated_seed(draw: Any) -> bytes:
    raw: bytes = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(raw)))
        kind = draw(st.sampled_from(["insert", "delete", "repeat"]))
        if kind == "insert":
            inserted = draw(st.one_of(st.sampled_from(MIME_PIECES), piece, st.binary(max_size=4)))
            raw = raw[:at] + inserted + raw[at:]
        elif kind == "delete":
            raw = raw[:at] + raw[at + draw(st.integers(1, 16)) :]
        else:
            raw = raw[:at] + raw[at : at + draw(st.integers(1, 64))] + raw[at:]
    return raw


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(message(), mutated_seed()))
def test_policies_decide_as_on_the_reference(raw: bytes) -> None:
    check(raw)


def test_seed_messages() -> None:
    assert len(SEEDS) >= 60
    for raw in SEEDS:
        check(raw)


def test_the_reference_policy_uses_the_reference_check() -> None:
    policy = on_reference(POLICIES["strict"])
    raw = b"From: Jane <x@y.example>\r\nX-Mailer: MassMailer 2\r\n\r\nhi\r\n"
    expected = reference_check_message(raw)._replace(rules=("bulk-tool-header",))
    assert message_summary(policy._check(raw)[0]) == message_summary(expected)
    assert policy.process(raw).action is Action.TAG
    assert policy.process(raw).reasons == ("rule:bulk-tool-header",)


def test_a_lost_byte_is_seen() -> None:
    raw = b"From: a@x.example\r\n\r\nline one\r\nline two\r\n"
    assert kept_outside_insertions(raw, b"X-A: 1\r\n" + raw, wrapped=False) is None
    assert kept_outside_insertions(raw, raw.replace(b"two", b"tw"), wrapped=False) is not None
    moved = b"Content-Type: text/plain\r\nFrom: a@x.example\r\n\r\nbody\r\n"
    wrapped = b"MIME-Version: 1.0\r\nFrom: a@x.example\r\n\r\n--b\r\nContent-Type: text/plain\r\n"
    assert kept_outside_insertions(moved, wrapped + b"\r\nbody\r\n", wrapped=True) is None
    assert kept_outside_insertions(moved, wrapped + b"\r\nbody\r\n", wrapped=False) is not None
    # A From line ends the field before it: the white space after it continues nothing
    # and is not moved (the email package reads it so).
    after_from = b"Content-Type: text/plain\r\nFrom : a\r\n b\r\n\r\nbody\r\n"
    out = b"MIME-Version: 1.0\r\nFrom : a\r\n b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
    assert kept_outside_insertions(after_from, out, wrapped=True) is None


def test_a_warning_is_seen_decoded_only() -> None:
    """The warning is looked for as a reader sees the part: in a base64 part only the
    decoded text holds it."""
    policy = POLICIES["warn-rules"]
    raw = (
        b"From: a@x.example\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29ybGQK\r\n"
    )
    outcome = policy.process(raw)
    assert outcome.action is Action.WARN and not outcome.notes
    assert b"Caution" not in outcome.message
    assert shows_warning(outcome.message, policy)
    assert not shows_warning(raw, policy)
