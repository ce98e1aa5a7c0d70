"""What the end-to-end tests of fromguard in a mail server share: the policy, the
messages, and the cases whose logic does not depend on the server.

``test_postfix.py`` (the milter) and ``test_exim.py`` (``fromguard serve`` asked by the
ACL) import the shared tests below (``__all__``), so that pytest collects each in both,
where it runs against that module's ``lab`` fixture (an ``MtaLab``) and under its marker.
``test_smtp_filter.py`` takes the policy, the messages and the load check.
"""

from __future__ import annotations

import signal
import uuid
from pathlib import Path
from typing import List, Protocol, Tuple

import pytest

from fromguard import Action, Policy
from milter_client import RunningProcess
from postfix_lab import MailServer, send_concurrently

# What a test module gets from ``from mta_cases import *``: the tests below that do not
# depend on the mail server, which pytest then collects there, against its ``lab``.
__all__ = [
    "test_a_clean_message_arrives_byte_for_byte",
    "test_a_missing_from_is_tagged",
    "test_a_warning_in_a_body_over_64_kib",
    "test_an_encoded_word_display_name_gets_the_warning",
    "test_mime_messages_get_the_policy_s_warning",
    "test_several_authors_without_sender_are_tempfailed",
    "test_sighup_with_a_good_and_a_broken_policy",
    "test_the_warning_names_a_hostile_sender_escaped",
    "test_two_from_fields_are_rejected_with_the_policy_reply",
]

MESSAGES = Path(__file__).parent / "data" / "messages"

POLICY = """
[verdicts]
deceptive = "warn"
invalid = "tag"

[codes]
text-after-address = "quarantine"
several-from-fields = { action = "reject", code = 550, enhanced = "5.7.1", text = "Two From fields are not accepted (100% sure)" }
several-authors-without-sender = { action = "reject", code = 451, enhanced = "4.7.1", text = "Several authors and no Sender, try again later" }
# fromguard-policy: end
"""

DECEPTIVE = b'From: "ceo@bank.example" <m@mallory.example>'
LONG_BODY = b"".join(b"line %05d: a body longer than 64 KiB in all\n" % n for n in range(2000))


class MtaLab(Protocol):
    """A test module's lab: a mail server that asks fromguard, with ``POLICY`` in force."""

    policy: Policy
    policy_path: Path
    mta: MailServer

    @property
    def fromguard(self) -> RunningProcess: ...


def message(
    from_field: bytes, body: bytes = b"Hello.\n", *, extra: bytes = b""
) -> Tuple[bytes, bytes]:
    """A message (LF line ends, as swaks reads a file) and its unique Message-ID."""
    token = f"<{uuid.uuid4().hex}@example.org>".encode()
    header = (
        (from_field + b"\n" if from_field else b"")
        + b"To: user@fromguard.test\n"
        + b"Subject: fromguard end-to-end\n"
        + b"Date: Sun, 29 Nov 2026 10:00:00 +0000\n"
        + b"Message-ID: "
        + token
        + b"\n"
        + extra
    )
    return header + b"\n" + body, token


def policy_result(policy: Policy, sent: bytes) -> bytes:
    """What the policy itself makes of the message, with the Maildir's line ends (LF)."""
    crlf = sent.replace(b"\n", b"\r\n")
    return policy.process(crlf).message.replace(b"\r\n", b"\n")


def arrived(mta: MailServer, sent: bytes, token: bytes) -> bytes:
    """Send with swaks, which must see the message accepted; what was delivered, without
    the server's own fields."""
    result = mta.swaks(sent)
    assert result.status == 0, result
    return mta.as_sent(mta.wait_delivered(token))


def refused(mta: MailServer, from_field: bytes, reply: str) -> None:
    """A message with ``from_field`` is refused after its data with ``reply``, and not
    delivered."""
    sent, token = message(from_field)
    result = mta.swaks(sent)
    assert result.status == 26, result
    assert reply in result.output
    assert not [raw for raw in mta.delivered().values() if token in raw]


# -- Accepted byte for byte ------------------------------------------------------------


@pytest.mark.parametrize("body", [b"Hello.\n", LONG_BODY], ids=["short", "over-64-KiB"])
def test_a_clean_message_arrives_byte_for_byte(lab: MtaLab, body: bytes) -> None:
    sent, token = message(b"From: Alice Example <alice@example.org>", body)
    assert arrived(lab.mta, sent, token) == sent


# -- Each attack class of the header block ----------------------------------------------


def test_two_from_fields_are_rejected_with_the_policy_reply(lab: MtaLab) -> None:
    # The reply as the policy wrote it, "%" included (Postfix reads the text as a format).
    refused(
        lab.mta,
        b"From: <m@mallory.example>\nFrom: <ceo@bank.example>",
        "550 5.7.1 Two From fields are not accepted (100% sure)",
    )


def test_several_authors_without_sender_are_tempfailed(lab: MtaLab) -> None:
    refused(
        lab.mta,
        b"From: <m@mallory.example>, <ceo@bank.example>",
        "451 4.7.1 Several authors and no Sender, try again later",
    )


def test_a_missing_from_is_tagged(lab: MtaLab) -> None:
    sent, token = message(b"")
    delivered = arrived(lab.mta, sent, token)
    assert delivered.startswith(b"X-Fromguard-Verdict: invalid\nX-Fromguard-Findings: no-from\n")
    assert delivered == policy_result(lab.policy, sent)


def test_an_encoded_word_display_name_gets_the_warning(lab: MtaLab) -> None:
    sent, token = message(b"From: =?utf-8?q?ceo=40bank=2Eexample?= <m@mallory.example>")
    delivered = arrived(lab.mta, sent, token)
    assert lab.policy.process(sent).action is Action.WARN
    assert delivered == policy_result(lab.policy, sent)
    assert b"Caution: the sender's address" in delivered
    assert b"\nThe address it was sent from: <m@mallory.example>\n\nHello.\n" in delivered


def test_the_warning_names_a_hostile_sender_escaped(lab: MtaLab) -> None:
    """An address with a bidi override (U+202E) and a line separator (U+2028) in its
    quoted local part: the warning shows both as escapes, on one line."""
    sent, token = message('From: "ceo@bank.example" <"m\u202e\u2028Safe"@mallory.example>'.encode())
    delivered = arrived(lab.mta, sent, token)
    assert delivered == policy_result(lab.policy, sent)
    body = delivered.split(b"\n\n", 1)[1]
    assert body.startswith(
        b"Caution: the sender's address of this message could not be verified as shown.\n"
        b"The address it was sent from: <m\\u202e\\u2028Safe@mallory.example>\n\n"
    )
    assert not {"\u202e", "\u2028"} & set(body.decode())


@pytest.mark.parametrize("name", ["alternative.eml", "quoted-printable.eml", "mixed.eml"])
def test_mime_messages_get_the_policy_s_warning(lab: MtaLab, name: str) -> None:
    original = (MESSAGES / name).read_bytes()
    token = f"<{uuid.uuid4().hex}@example.org>".encode()
    sent = b"Message-ID: " + token + b"\n" + original
    delivered = arrived(lab.mta, sent, token)
    assert delivered == policy_result(lab.policy, sent)
    assert delivered != sent


def test_a_warning_in_a_body_over_64_kib(lab: MtaLab) -> None:
    sent, token = message(DECEPTIVE, LONG_BODY)
    assert len(LONG_BODY) > 65536
    delivered = arrived(lab.mta, sent, token)
    assert delivered == policy_result(lab.policy, sent)
    assert delivered.endswith(LONG_BODY)


# -- Reload ------------------------------------------------------------------------------


def test_sighup_with_a_good_and_a_broken_policy(lab: MtaLab) -> None:
    reloads = len(lab.fromguard.wait_for("reload", 0))
    try:
        lab.policy_path.write_text(
            '[verdicts]\ndeceptive = "reject"\n# fromguard-policy: end\n', encoding="utf-8"
        )
        lab.fromguard.signal(signal.SIGHUP)
        assert lab.fromguard.wait_for("reload", reloads + 1)[-1]["result"] == "ok"
        result = lab.mta.swaks(message(DECEPTIVE)[0])
        assert result.status == 26, result
        assert "550 5.7.1 Message not accepted" in result.output

        lab.policy_path.write_text("[verdicts\n# fromguard-policy: end\n", encoding="utf-8")
        lab.fromguard.signal(signal.SIGHUP)
        assert lab.fromguard.wait_for("reload", reloads + 2)[-1]["result"] == "failed"
        result = lab.mta.swaks(message(DECEPTIVE)[0])
        assert result.status == 26, result  # the good policy is still in force
    finally:
        lab.policy_path.write_text(POLICY, encoding="utf-8")
        lab.fromguard.signal(signal.SIGHUP)
        assert lab.fromguard.wait_for("reload", reloads + 3)[-1]["result"] == "ok"
    sent, token = message(DECEPTIVE)
    assert arrived(lab.mta, sent, token) == policy_result(lab.policy, sent)


# -- Checks that tests of their own set up for ----------------------------------------------

MONITOR_CASES = {
    "warn": DECEPTIVE,
    "reject": b"From: <m@mallory.example>\nFrom: <ceo@bank.example>",
    "quarantine": b"From: Bank <ceo@bank.example> <m@mallory.example>",
}


def check_monitor_mode(mta: MailServer, fromguard: RunningProcess) -> None:
    """A message for each action the policy takes, through ``fromguard`` in monitor mode:
    each delivered unchanged, its decision logged as accepted, the policy's action beside."""
    for policy_action, from_field in MONITOR_CASES.items():
        sent, token = message(from_field)
        assert arrived(mta, sent, token) == sent
        entry = fromguard.messages()[-1]
        assert (entry["mode"], entry["action"]) == ("monitor", "accept")
        assert entry["policy_action"] == policy_action


def load_batches(run: bytes, senders: int, per_sender: int) -> List[List[bytes]]:
    """``senders`` batches of ``per_sender`` messages (CRLF), every other one with a
    deceptive From; each body names ``run`` (unique), the sender and the index."""
    return [
        [
            message(DECEPTIVE if index % 2 else b"From: Alice <alice@example.org>",
                    b"load %s %d %d\n" % (run, sender, index))[0].replace(b"\n", b"\r\n")
            for index in range(per_sender)
        ]
        for sender in range(senders)
    ]  # fmt: skip


def check_none_lost(
    mta: MailServer, fromguard: RunningProcess, senders: int, per_sender: int, timeout: float
) -> None:
    """``load_batches`` sent over ``senders`` SMTP sessions at once: every message is
    delivered once (within ``timeout`` seconds), the deceptive half with the warning, and
    every one is logged by ``fromguard`` under a queue id of its own."""
    before = mta.count_delivered()
    logged_before = len(fromguard.messages())
    run = uuid.uuid4().hex.encode()
    assert send_concurrently(mta.port, load_batches(run, senders, per_sender)) == []
    total = senders * per_sender
    mta.wait_count(before + total, timeout)
    assert mta.count_delivered() == before + total
    delivered = [raw for raw in mta.delivered().values() if run in raw]
    assert len(delivered) == total
    warned = [raw for raw in delivered if b"X-Fromguard-Verdict: deceptive" in raw]
    assert len(warned) == total // 2
    assert all(b"\nCaution: the sender's address" in raw for raw in warned)
    logged = fromguard.messages()[logged_before:]
    assert len(logged) == total
    assert len({entry["queue_id"] for entry in logged}) == total
