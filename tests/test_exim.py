"""fromguard's Exim ACL and transport filter under Debian's exim4-daemon-heavy, run
privately on 127.0.0.1 (``exim_lab.py``), asking a real ``fromguard serve`` (marked
``exim``).

The messages and expectations of ``test_postfix.py``: swaks sends each case; what
reached the Maildir (without Exim's Received field) is byte for byte the sent message
where the policy accepts, and ``Policy.process``'s own result where it tags or warns;
reject and tempfail answer with the policy's reply; quarantine freezes the message.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from exim_lab import Exim, missing_tools, readme_macros, without_received
from fromguard import Action, Policy
from lab_fixture import running_lab
from postfix_lab import send_concurrently
from serve_client import RunningServe
from test_postfix import LONG_BODY, MESSAGES, POLICY, message

pytestmark = pytest.mark.exim

README = Path(__file__).resolve().parent.parent / "README.md"


class Lab:
    """fromguard serve (its socket reachable by Debian-exim) and the Exim that asks it."""

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="fgx-", dir="/var/tmp"))
        self.workdir.chmod(0o755)
        self.policy_path = self.workdir / "policy.toml"
        self.policy_path.write_text(POLICY, encoding="utf-8")
        self.policy = Policy.from_toml(self.policy_path)
        self.serve = self.start_serve()
        self.macros = readme_macros(README.read_text(encoding="utf-8"))
        self.exim = Exim(self.macros, self.serve.socket_path)
        self.exim.start()

    def start_serve(self, *options: str) -> RunningServe:
        return RunningServe(
            self.policy_path,
            self.workdir,
            "--socket-group",
            "Debian-exim",
            "--timeout",
            "2",
            *options,
            home="serve",
        )

    def close(self) -> None:
        self.exim.stop()
        self.exim.remove()
        self.serve.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    yield from running_lab(Lab, missing_tools(), "Exim")


def policy_result(lab: Lab, sent: bytes) -> bytes:
    """What the policy itself makes of the message, with LF line ends."""
    return lab.policy.process(sent.replace(b"\n", b"\r\n")).message.replace(b"\r\n", b"\n")


# -- Accepted byte for byte ------------------------------------------------------------


@pytest.mark.parametrize("body", [b"Hello.\n", LONG_BODY], ids=["short", "over-64-KiB"])
def test_a_clean_message_arrives_byte_for_byte(lab: Lab, body: bytes) -> None:
    sent, token = message(b"From: Alice Example <alice@example.org>", body)
    result = lab.exim.swaks(sent)
    assert result.status == 0, result
    assert without_received(lab.exim.wait_delivered(token)) == sent


# -- Each attack class of the header block ----------------------------------------------


def test_two_from_fields_are_rejected_with_the_policy_reply(lab: Lab) -> None:
    sent, token = message(b"From: <m@mallory.example>\nFrom: <ceo@bank.example>")
    result = lab.exim.swaks(sent)
    assert result.status == 26, result
    assert "550 5.7.1 Two From fields are not accepted (100% sure)" in result.output
    assert not [raw for raw in lab.exim.delivered().values() if token in raw]


def test_several_authors_without_sender_are_tempfailed(lab: Lab) -> None:
    sent, token = message(b"From: <m@mallory.example>, <ceo@bank.example>")
    result = lab.exim.swaks(sent)
    assert result.status == 26, result
    assert "451 4.7.1 Several authors and no Sender, try again later" in result.output
    assert not [raw for raw in lab.exim.delivered().values() if token in raw]


def test_text_after_the_angle_addr_is_frozen_unchanged(lab: Lab) -> None:
    sent, token = message(
        b'From: "Microsoft Security" <security@microsoft.com> <attacker@evil.test>'
    )
    result = lab.exim.swaks(sent)
    assert result.status == 0, result
    (frozen,) = [raw for raw in lab.exim.frozen().values() if token in raw]
    assert b"X-Fromguard" not in frozen and frozen.endswith(b"\nHello.\n")
    assert "frozen by ACL" in lab.exim.log()
    assert not [raw for raw in lab.exim.delivered().values() if token in raw]


def test_a_missing_from_is_tagged(lab: Lab) -> None:
    sent, token = message(b"")
    result = lab.exim.swaks(sent)
    assert result.status == 0, result
    delivered = without_received(lab.exim.wait_delivered(token))
    assert delivered.startswith(b"X-Fromguard-Verdict: invalid\nX-Fromguard-Findings: no-from\n")
    assert delivered == policy_result(lab, sent)


def test_an_encoded_word_display_name_gets_the_warning(lab: Lab) -> None:
    sent, token = message(b"From: =?utf-8?q?ceo=40bank=2Eexample?= <m@mallory.example>")
    result = lab.exim.swaks(sent)
    assert result.status == 0, result
    delivered = without_received(lab.exim.wait_delivered(token))
    assert lab.policy.process(sent).action is Action.WARN
    assert delivered == policy_result(lab, sent)
    assert b"Caution: the sender's address" in delivered
    assert b"\nThe address it was sent from: <m@mallory.example>\n\nHello.\n" in delivered


def test_the_warning_names_a_hostile_sender_escaped(lab: Lab) -> None:
    sent, token = message('From: "ceo@bank.example" <"m\u202e\u2028Safe"@mallory.example>'.encode())
    result = lab.exim.swaks(sent)
    assert result.status == 0, result
    delivered = without_received(lab.exim.wait_delivered(token))
    assert delivered == policy_result(lab, sent)
    body = delivered.split(b"\n\n", 1)[1]
    assert body.startswith(
        b"Caution: the sender's address of this message could not be verified as shown.\n"
        b"The address it was sent from: <m\\u202e\\u2028Safe@mallory.example>\n\n"
    )


@pytest.mark.parametrize("name", ["alternative.eml", "quoted-printable.eml", "mixed.eml"])
def test_mime_messages_get_the_policy_s_warning(lab: Lab, name: str) -> None:
    original = (MESSAGES / name).read_bytes()
    token = f"<{uuid.uuid4().hex}@example.org>".encode()
    sent = b"Message-ID: " + token + b"\n" + original
    result = lab.exim.swaks(sent)
    assert result.status == 0, result
    delivered = without_received(lab.exim.wait_delivered(token))
    assert delivered == policy_result(lab, sent)
    assert delivered != sent


def test_a_warning_in_a_body_over_64_kib(lab: Lab) -> None:
    sent, token = message(b'From: "ceo@bank.example" <m@mallory.example>', LONG_BODY)
    result = lab.exim.swaks(sent)
    assert result.status == 0, result
    delivered = without_received(lab.exim.wait_delivered(token))
    assert delivered == policy_result(lab, sent)
    assert delivered.endswith(LONG_BODY)


def test_the_log_lines_carry_exim_s_message_id(lab: Lab) -> None:
    sent, token = message(b"From: Dr. J. Doe <j@example.org>")
    assert lab.exim.swaks(sent).status == 0
    lab.exim.wait_delivered(token)
    entry = lab.serve.messages()[-1]
    assert entry["verdict"] == "legacy"
    assert f"{entry['queue_id']} <= sender@example.org" in lab.exim.log()
    assert f"{entry['queue_id']} H=" in lab.exim.log()


# -- Monitor mode -----------------------------------------------------------------------


def test_monitor_mode_delivers_everything_unchanged_and_logs_the_decision(lab: Lab) -> None:
    lab.serve.stop()
    lab.serve = lab.start_serve("--mode", "monitor")
    try:
        cases = {
            "warn": b'From: "ceo@bank.example" <m@mallory.example>',
            "reject": b"From: <m@mallory.example>\nFrom: <ceo@bank.example>",
            "quarantine": b"From: Bank <ceo@bank.example> <m@mallory.example>",
        }
        for policy_action, from_field in cases.items():
            sent, token = message(from_field)
            assert lab.exim.swaks(sent).status == 0
            assert without_received(lab.exim.wait_delivered(token)) == sent
            entry = lab.serve.messages()[-1]
            assert (entry["mode"], entry["action"]) == ("monitor", "accept")
            assert entry["policy_action"] == policy_action
            assert f"answer=accept action={policy_action}" in lab.exim.log()
    finally:
        lab.serve.stop()
        lab.serve = lab.start_serve()


# -- fromguard stopped or slow ----------------------------------------------------------


def test_fromguard_stopped_exim_accepts_unchecked_or_defers(lab: Lab) -> None:
    assert lab.serve.stop() == 0
    strict = Exim(lab.macros, lab.serve.socket_path, "FROMGUARD_DEFER_WHEN_DOWN = yes\n")
    strict.start()
    try:
        sent, token = message(b'From: "ceo@bank.example" <m@mallory.example>')
        accepted = lab.exim.swaks(sent)
        assert accepted.status == 0, accepted
        assert without_received(lab.exim.wait_delivered(token)) == sent  # unchecked
        assert "fromguard: no answer from" in lab.exim.log()

        refused = strict.swaks(sent)
        assert refused.status == 26, refused
        assert "451 4.3.0 fromguard: the message could not be checked" in refused.output
    finally:
        strict.stop()
        strict.remove()
        lab.serve = lab.start_serve()


def test_a_decision_slower_than_fromguard_s_timeout_gets_its_fail_mode(lab: Lab) -> None:
    # fromguard's own timeout (2 s) fires within Exim's (5 s): the fail mode, accept.
    sent, token = message(
        b'From: "ceo@bank.example" <m@mallory.example>', extra=b"X-Test-Delay: 3\n"
    )
    result = lab.exim.swaks(sent)
    assert result.status == 0, result
    assert without_received(lab.exim.wait_delivered(token)) == sent
    entry = lab.serve.messages()[-1]
    assert entry["error"] == "no decision within 2 s" and entry["action"] == "accept"


def test_fromguard_slower_than_exim_s_timeout(lab: Lab) -> None:
    # Exim gives up after FROMGUARD_TIMEOUT (5 s) first: no answer, accepted unchecked.
    lab.serve.stop()
    lab.serve = lab.start_serve("--timeout", "20")
    try:
        sent, token = message(
            b'From: "ceo@bank.example" <m@mallory.example>', extra=b"X-Test-Delay: 7\n"
        )
        result = lab.exim.swaks(sent)
        assert result.status == 0, result
        assert without_received(lab.exim.wait_delivered(token)) == sent
        assert "fromguard: no answer from" in lab.exim.log()
    finally:
        lab.serve.stop()
        lab.serve = lab.start_serve()


def test_fromguard_down_at_delivery_defers_the_warned_message(lab: Lab) -> None:
    """The ACL answered warn; the warning is added at delivery, which waits for fromguard
    rather than deliver the message without it."""
    lab.exim.stop()
    queue_only = Exim(lab.macros, lab.serve.socket_path, "queue_only = true\n")
    queue_only.start()
    try:
        sent, token = message(b'From: "ceo@bank.example" <m@mallory.example>')
        assert queue_only.swaks(sent).status == 0
        lab.serve.stop()
        queue_only.run_queue()
        assert not [raw for raw in queue_only.delivered().values() if token in raw]
        assert "== user@fromguard.test R=inbox T=inbox defer" in queue_only.log()
        lab.serve = lab.start_serve()
        queue_only.run_queue(force=True)
        delivered = without_received(queue_only.wait_delivered(token))
        assert delivered == policy_result(lab, sent)
    finally:
        queue_only.stop()
        queue_only.remove()
        lab.exim.start()


# -- Reload ------------------------------------------------------------------------------


def test_sighup_with_a_good_and_a_broken_policy(lab: Lab) -> None:
    deceptive = b'From: "ceo@bank.example" <m@mallory.example>'
    try:
        lab.policy_path.write_text(
            '[verdicts]\ndeceptive = "reject"\n# fromguard-policy: end\n', encoding="utf-8"
        )
        lab.serve.signal(signal.SIGHUP)
        assert lab.serve.wait_for("reload", 1)[-1]["result"] == "ok"
        result = lab.exim.swaks(message(deceptive)[0])
        assert result.status == 26, result
        assert "550 5.7.1 Message not accepted" in result.output

        lab.policy_path.write_text("[verdicts\n# fromguard-policy: end\n", encoding="utf-8")
        lab.serve.signal(signal.SIGHUP)
        assert lab.serve.wait_for("reload", 2)[-1]["result"] == "failed"
        assert lab.exim.swaks(message(deceptive)[0]).status == 26  # the old policy
    finally:
        lab.policy_path.write_text(POLICY, encoding="utf-8")
        lab.serve.signal(signal.SIGHUP)
        assert lab.serve.wait_for("reload", 3)[-1]["result"] == "ok"


# -- Load -------------------------------------------------------------------------------

SENDERS = 4
PER_SENDER = 100


def test_4_concurrent_senders_100_messages_each_none_lost(lab: Lab) -> None:
    logged_before = len(lab.serve.messages())
    run = uuid.uuid4().hex.encode()
    deceptive = b'From: "ceo@bank.example" <m@mallory.example>'
    batches = [
        [
            message(deceptive if index % 2 else b"From: Alice <alice@example.org>",
                    b"load %s %d %d\n" % (run, sender, index))[0].replace(b"\n", b"\r\n")
            for index in range(PER_SENDER)
        ]
        for sender in range(SENDERS)
    ]  # fmt: skip
    assert send_concurrently(lab.exim.port, batches) == []

    total = SENDERS * PER_SENDER
    deadline = time.monotonic() + 180
    delivered = []
    while time.monotonic() < deadline:
        delivered = [raw for raw in lab.exim.delivered().values() if run in raw]
        if len(delivered) >= total:
            break
        time.sleep(0.2)
    assert len(delivered) == total
    warned = [raw for raw in delivered if b"X-Fromguard-Verdict: deceptive" in raw]
    assert len(warned) == total // 2
    assert all(b"\nCaution: the sender's address" in raw for raw in warned)
    logged = lab.serve.messages()[logged_before:]
    assert len(logged) == total
    assert len({entry["queue_id"] for entry in logged}) == total
