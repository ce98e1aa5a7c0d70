"""``fromguard smtp-filter`` as Postfix's after-queue content filter (marked ``postfix``).

A private Postfix (``postfix_lab.py``) configured with the README's ``main.cf`` and
``master.cf`` blocks as pasted (the ports 10025 and 10026 made free ones), the filter as a
process (through ``milter_shim.py``, so a message can ask to be slow) and swaks. What
arrives is compared with ``Policy.process``'s own result, byte for byte, once Postfix's
trace fields are removed (two Received fields: the message was queued twice); held,
bounced and deferred messages are read from the queue and the log. The policy and the
message cases are the milter's tests' (``mta_cases.py``). The README's before-queue lines and
its Python snippet run in the same lab.
"""

from __future__ import annotations

import re
import signal
import smtplib
import threading
import time
import uuid
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

from fromguard import Action, Policy
from lab_fixture import running_lab
from milter_client import RunningFilter, free_port
from mta_cases import LONG_BODY, MESSAGES, POLICY, check_none_lost, message, policy_result
from postfix_lab import (
    DOMAIN,
    Postfix,
    content_filter_blocks,
    missing_tools,
    readme_block,
    without_trace,
)

pytestmark = pytest.mark.postfix

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "examples" / "sample.mbox"
WATCHDOG = "2"
SENDER = f"sender@{DOMAIN}"  # bounces come back to the lab's Maildir
HOPS = 2  # Received fields of the lab: the first queueing and the re-injection


class Lab:
    """The Postfix instance, its content filter configured as the README says, and the
    filter process."""

    def __init__(self) -> None:
        self.postfix = Postfix()
        self.filter_port = free_port()
        self.reinjection_port = free_port()
        self.policy_path = self.postfix.base / "policy.toml"
        self.policy_path.write_text(POLICY, encoding="utf-8")
        self.policy = Policy.from_toml(self.policy_path)
        main_cf, master_cf = content_filter_blocks(self.filter_port, self.reinjection_port)
        self.postfix.paste(main_cf, master_cf)
        self.filter = self.start_filter()
        self.postfix.start()

    def start_filter(self, *options: str, port: Optional[int] = None) -> RunningFilter:
        port = port or self.filter_port
        return RunningFilter(
            self.policy_path,
            port,
            self.reinjection_port,
            self.postfix.base / f"filter-{port}-{uuid.uuid4().hex[:6]}.log",
            "--watchdog",
            WATCHDOG,
            *options,
        )

    def point_to(self, port: int) -> None:
        """Send the mail Postfix queues to a filter on ``port``."""
        self.postfix.set(content_filter=f"fromguard:[127.0.0.1]:{port}")

    def close(self) -> None:
        self.postfix.stop()
        self.filter.stop()
        self.postfix.remove()


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    yield from running_lab(Lab, missing_tools(), "Postfix")


def wait_queued(lab: Lab, token: bytes, text: str, timeout: float = 30) -> str:
    """The ``mailq`` entry of the message with ``token`` (on one line: mailq wraps the
    reason) once it shows ``text``."""
    deadline = time.monotonic() + timeout
    while True:
        queue_ids = [
            queue_id for queue_id, raw in lab.postfix.queued_messages().items() if token in raw
        ]
        listing = lab.postfix.mailq()
        entries = [
            " ".join(e.split()) for e in listing.split("\n\n") if any(q in e for q in queue_ids)
        ]
        if entries and text in entries[0]:
            return entries[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"{token!r} not queued with {text!r}: {listing}")
        time.sleep(0.1)


def delivered_with(lab: Lab, token: bytes) -> List[bytes]:
    return [raw for raw in lab.postfix.delivered().values() if token in raw]


def bounce_of(lab: Lab, token: bytes, timeout: float = 30) -> bytes:
    """The non-delivery report that quotes the message with ``token``."""
    deadline = time.monotonic() + timeout
    while True:
        bounces = [raw for raw in delivered_with(lab, token) if b"MAILER-DAEMON" in raw]
        if bounces:
            (bounce,) = bounces
            return bounce
        if time.monotonic() > deadline:
            raise AssertionError(f"no bounce of {token!r}: {lab.postfix.log()[-2000:]}")
        time.sleep(0.1)


def expect(lab: Lab, sent: bytes, token: bytes, queued: Optional[bytes] = None) -> str:
    """Check that the message sent (LF line ends) came out as the policy says of it, or
    of ``queued``, the message as Postfix queued it and handed it to the filter, when
    that differs; returns the policy's action."""
    judged = sent if queued is None else queued
    outcome = lab.policy.process(judged.replace(b"\n", b"\r\n"))
    action = outcome.action
    if action in (Action.ACCEPT, Action.TAG, Action.WARN):
        delivered = without_trace(lab.postfix.wait_delivered(token), HOPS)
        assert delivered == policy_result(lab.policy, judged)
    elif action is Action.QUARANTINE:
        held = wait_held(lab, token)
        assert without_trace(held, HOPS) == judged
    elif outcome.smtp_reply is not None and outcome.smtp_reply.code >= 500:
        bounce = b" ".join(bounce_of(lab, token).split())
        assert f"said: {outcome.smtp_reply}".encode() in bounce
    else:
        assert outcome.smtp_reply is not None
        entry = wait_queued(lab, token, "(host 127.0.0.1[127.0.0.1] said: 451 4.7.1")
        assert str(outcome.smtp_reply) in entry
        assert not delivered_with(lab, token)
    return action.name.lower()


def wait_held(lab: Lab, token: bytes, timeout: float = 30) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        held = [raw for raw in lab.postfix.held().values() if token in raw]
        if held:
            (message,) = held
            return message
        if time.monotonic() > deadline:
            raise AssertionError(f"not held within {timeout} s: {token!r}")
        time.sleep(0.1)


# -- Every action, as Policy.process says ------------------------------------------------


def test_the_sample_mailbox_arrives_as_policy_process_says(lab: Lab) -> None:
    """Each message of examples/sample.mbox, first through a filter in monitor mode,
    which re-injects what it gets unchanged: that is the message as Postfix queued it,
    which the policy judges. Then through the enforcing filter."""
    # Its From_ lines all name the same sender ("From :" in a message is a header field).
    samples = re.split(rb"(?m)^From sample@example\.org .*\n", SAMPLES.read_bytes())[1:]
    assert len(samples) == 32

    def sent(sample: bytes, token: bytes) -> bytes:
        return b"X-Lab-Token: " + token + b"\n" + sample

    tokens = [f"<{uuid.uuid4().hex}@example.org>".encode() for _ in samples]
    monitor = lab.start_filter("--mode", "monitor", port=free_port())
    lab.point_to(monitor.port)
    try:
        for sample, token in zip(samples, tokens):
            assert lab.postfix.swaks(sent(sample, token), sender=SENDER).status == 0
        queued = [
            without_trace(lab.postfix.wait_delivered(token), HOPS).replace(token, b"%TOKEN%")
            for token in tokens
        ]
    finally:
        lab.point_to(lab.filter_port)
        assert monitor.stop() == 0
    # What Postfix changes before a content filter sees the message (README).
    changed = [
        sample.split(b"Subject: ", 1)[1].split(b"\n", 1)[0].decode()
        for sample, as_queued in zip(samples, queued)
        if as_queued != sent(sample, b"%TOKEN%")
    ]
    assert changed == [
        "legacy: obs-from (space before the colon)",
        "attack 2: field name folded before the colon",
        "attack 10: NUL and bare CR in the header block",
    ]

    actions: Dict[str, int] = {}
    for sample, as_queued in zip(samples, queued):
        token = f"<{uuid.uuid4().hex}@example.org>".encode()
        result = lab.postfix.swaks(sent(sample, token), sender=SENDER)
        assert result.status == 0, result  # Postfix takes it; the filter acts after
        action = expect(lab, sent(sample, token), token, as_queued.replace(b"%TOKEN%", token))
        actions[action] = actions.get(action, 0) + 1
    assert actions == {"accept": 8, "tag": 9, "warn": 11, "quarantine": 2, "reject": 2}
    lab.postfix.clear_hold()
    lab.postfix.clear_deferred()


@pytest.mark.parametrize(
    ("from_field", "body"),
    [
        (b"From: Alice Example <alice@example.org>", LONG_BODY),
        (b"", b"Hello.\n"),
        (b"From: =?utf-8?q?ceo=40bank=2Eexample?= <m@mallory.example>", b"Hello.\n"),
        ('From: "ceo@bank.example" <"m\u202e\u2028Safe"@mallory.example>'.encode(), b"Hi.\n"),
        (b'From: "ceo@bank.example" <m@mallory.example>', LONG_BODY),
        (b"From: <m@mallory.example>\nFrom: <ceo@bank.example>", b"Hello.\n"),
        (b"From: <m@mallory.example>, <ceo@bank.example>", b"Hello.\n"),
        (b'From: "Microsoft Security" <security@microsoft.com> <a@evil.test>', b"Hi.\n"),
    ],
    ids=[
        "clean-over-64-KiB",
        "no-from-tagged",
        "encoded-word-warned",
        "hostile-sender-warned",
        "warned-over-64-KiB",
        "two-from-bounced",
        "several-authors-deferred",
        "text-after-address-held",
    ],
)
def test_the_milter_s_cases(lab: Lab, from_field: bytes, body: bytes) -> None:
    sent, token = message(from_field, body)
    result = lab.postfix.swaks(sent, sender=SENDER)
    assert result.status == 0, result
    expect(lab, sent, token)
    lab.postfix.clear_hold()
    lab.postfix.clear_deferred()


@pytest.mark.parametrize("name", ["alternative.eml", "quoted-printable.eml", "mixed.eml"])
def test_mime_messages_get_the_policy_s_warning(lab: Lab, name: str) -> None:
    token = f"<{uuid.uuid4().hex}@example.org>".encode()
    sent = b"Message-ID: " + token + b"\n" + (MESSAGES / name).read_bytes()
    assert lab.postfix.swaks(sent, sender=SENDER).status == 0
    assert expect(lab, sent, token) == "warn"


def test_local_submission_through_sendmail(lab: Lab) -> None:
    sent, token = message(b'From: "ceo@bank.example" <m@mallory.example>')
    assert lab.postfix.sendmail(sent) == 0
    assert expect(lab, sent, token) == "warn"


def test_the_log_line_and_the_metrics(lab: Lab) -> None:
    sent, token = message(b'From: "ceo@bank.example" <m@mallory.example>')
    before = len(lab.filter.messages())
    assert lab.postfix.swaks(sent, sender=SENDER).status == 0
    lab.postfix.wait_delivered(token)
    (entry,) = lab.filter.messages()[before:]
    outcome = lab.policy.process(sent.replace(b"\n", b"\r\n"))
    assert (entry["mode"], entry["verdict"], entry["action"]) == ("enforce", "deceptive", "warn")
    assert entry["reasons"] == list(outcome.reasons)
    # The queue id is Postfix's (XFORWARD); Postfix's log joins it with the re-injection's.
    log = lab.postfix.log()
    received = [line for line in log.splitlines() if f"message-id={token.decode()}" in line]
    original_id = received[0].split(": ")[1]
    assert entry["queue_id"] == original_id
    (to_filter,) = [
        line
        for line in log.splitlines()
        if f"{original_id}: to=" in line and f"[127.0.0.1]:{lab.filter_port}," in line
    ]
    reinjected_id = to_filter.split("status=sent (250 2.0.0 Ok: queued as ")[1].rstrip(")")
    assert f"{reinjected_id}: message-id={token.decode()}" in log
    assert f"{reinjected_id}: client=localhost[127.0.0.1], orig_queue_id={original_id}," in log
    metrics = lab.filter.metrics()
    assert (
        'fromguard_smtp_filter_messages_total{action="warn",policy_action="warn",verdict="deceptive"}'
        in metrics
    )


def test_monitor_mode_delivers_everything_unchanged_and_logs_the_decision(lab: Lab) -> None:
    monitor = lab.start_filter("--mode", "monitor", port=free_port())
    lab.point_to(monitor.port)
    try:
        cases = {
            "warn": b'From: "ceo@bank.example" <m@mallory.example>',
            "reject": b"From: <m@mallory.example>\nFrom: <ceo@bank.example>",
            "quarantine": b"From: Bank <ceo@bank.example> <m@mallory.example>",
        }
        for policy_action, from_field in cases.items():
            sent, token = message(from_field)
            assert lab.postfix.swaks(sent, sender=SENDER).status == 0
            assert without_trace(lab.postfix.wait_delivered(token), HOPS) == sent
            entry = monitor.messages()[-1]
            assert (entry["mode"], entry["action"]) == ("monitor", "accept")
            assert entry["policy_action"] == policy_action
    finally:
        lab.point_to(lab.filter_port)
        assert monitor.stop() == 0


def test_as_a_before_queue_proxy_the_client_gets_the_reply(lab: Lab) -> None:
    """The README's smtpd_proxy_filter lines on the lab's smtpd (its ports made the
    lab's), content_filter left out: a reject reaches the client, the rest arrives as
    with the content filter, but queued once (one Received field of the proxying smtpd
    and one of the re-injection)."""
    smtpd = f"127.0.0.1:{lab.postfix.port}/inet"
    block = readme_block(r"smtpd_proxy_filter=").replace("10025", str(lab.filter_port))
    options = [line.split("-o ", 1)[1] for line in block.splitlines()]
    lab.postfix.postconf("-P", *(f"{smtpd}/{option}" for option in options))
    lab.postfix.set(content_filter="")
    try:
        refused = {
            b"From: <m@mallory.example>\nFrom: <ceo@bank.example>": (
                "550 5.7.1 Two From fields are not accepted (100% sure)"
            ),
            b"From: <m@mallory.example>, <ceo@bank.example>": (
                "451 4.7.1 Several authors and no Sender, try again later"
            ),
        }
        for from_field, reply in refused.items():
            sent, token = message(from_field)
            result = lab.postfix.swaks(sent, sender=SENDER)
            assert result.status == 26 and reply in result.output, result
            assert token not in b"".join(lab.postfix.queued_messages().values())

        warned, token = message(b'From: "ceo@bank.example" <m@mallory.example>')
        assert lab.postfix.swaks(warned, sender=SENDER).status == 0
        assert expect(lab, warned, token) == "warn"
        held, token = message(b"From: Bank <ceo@bank.example> <m@mallory.example>")
        assert lab.postfix.swaks(held, sender=SENDER).status == 0
        assert expect(lab, held, token) == "quarantine"
        assert lab.postfix.queued() == []

        # The filter down: the client is told to try again later.
        assert lab.filter.stop() == 0
        try:
            sent, token = message(b"From: Alice <alice@example.org>")
            result = lab.postfix.swaks(sent, sender=SENDER)
            # speed_adjust: the proxy connects once the data is in, and answers it.
            assert result.status == 26, result
            assert "451 4.3.0 Error: queue file write error" in result.output
            assert token not in b"".join(lab.postfix.queued_messages().values())
        finally:
            lab.filter = lab.start_filter()
    finally:
        lab.postfix.postconf("-PX", *(f"{smtpd}/{o.split('=')[0]}" for o in options))
        lab.postfix.set(content_filter=f"fromguard:[127.0.0.1]:{lab.filter_port}")
        lab.postfix.clear_hold()


# -- The filter down or slow: the mail waits in the queue ---------------------------------


def test_filter_stopped_mail_stays_deferred_then_arrives_once_it_is_back(lab: Lab) -> None:
    assert lab.filter.stop() == 0
    cases = [
        message(b'From: "ceo@bank.example" <m@mallory.example>'),
        message(b"From: Alice <alice@example.org>"),
        message(b"From: Bank <ceo@bank.example> <m@mallory.example>"),
    ]
    try:
        for sent, _ in cases:
            assert lab.postfix.swaks(sent, sender=SENDER).status == 0
        for _, token in cases:
            entry = wait_queued(lab, token, "Connection refused")
            assert f"connect to 127.0.0.1[127.0.0.1]:{lab.filter_port}" in entry
        assert not any(delivered_with(lab, token) for _, token in cases)
    finally:
        lab.filter = lab.start_filter()
    lab.postfix.flush()
    assert [expect(lab, sent, token) for sent, token in cases] == ["warn", "accept", "quarantine"]
    lab.postfix.clear_hold()


def test_a_decision_past_the_watchdog_is_deferred(lab: Lab) -> None:
    sent, token = message(b"From: <a@example.org>", extra=b"X-Test-Delay: 3\n")
    assert lab.postfix.swaks(sent, sender=SENDER).status == 0
    entry = wait_queued(lab, token, "451 4.3.0")
    assert "fromguard: the message could not be checked" in entry
    logged = lab.filter.messages()[-1]
    assert (logged["action"], logged["error"]) == ("tempfail", "no decision within 2 s")
    assert not delivered_with(lab, token)
    lab.postfix.clear_deferred()


def test_a_failing_decision_is_deferred(lab: Lab) -> None:
    sent, token = message(b"From: <a@example.org>", extra=b"X-Test-Raise: yes\n")
    assert lab.postfix.swaks(sent, sender=SENDER).status == 0
    assert "451 4.3.0 fromguard: the message could not be checked" in wait_queued(
        lab, token, "451 4.3.0"
    )
    logged = lab.filter.messages()[-1]
    assert logged["action"] == "tempfail"
    assert logged["error"] == "RuntimeError: raised on request (X-Test-Raise)"
    assert 'fromguard_smtp_filter_errors_total{kind="error"} 1.0' in lab.filter.metrics()
    lab.postfix.clear_deferred()


def test_a_next_hop_that_is_down_defers_the_mail(lab: Lab) -> None:
    """The filter on its port, re-injecting into a port nothing listens on; then the
    filter as configured again, and a flush. (Postfix stores the content filter of a
    message when it queues it: the retry goes to the same port.)"""
    nowhere = free_port()
    assert lab.filter.stop() == 0
    sent, token = message(b'From: "ceo@bank.example" <m@mallory.example>')
    try:
        stranded = RunningFilter(
            lab.policy_path, lab.filter_port, nowhere, lab.postfix.base / "stranded.log"
        )
        try:
            assert lab.postfix.swaks(sent, sender=SENDER).status == 0
            entry = wait_queued(lab, token, "451 4.4.1")
            assert "fromguard: the next hop could not take the message" in entry
            (error,) = stranded.wait_for("error")
            assert f"127.0.0.1:{nowhere} failed" in error["error"]
            assert 'fromguard_smtp_filter_errors_total{kind="next-hop"} 1.0' in stranded.metrics()
        finally:
            assert stranded.stop() == 0
    finally:
        lab.filter = lab.start_filter()
    lab.postfix.flush()
    assert expect(lab, sent, token) == "warn"


def wait_in_flight(running: RunningFilter) -> None:
    """Until the filter is deciding a message."""
    deadline = time.monotonic() + 20
    while "fromguard_smtp_filter_messages_in_flight 1.0" not in running.metrics():
        assert time.monotonic() < deadline, "the message never reached the filter"
        time.sleep(0.05)


def test_one_message_more_than_max_messages_gets_451(lab: Lab) -> None:
    """Two sessions at once into a filter that takes one message at a time: the second
    is told to retry while the first (slow, within the watchdog) is decided."""
    narrow = lab.start_filter("--max-messages", "1", "--watchdog", "20", port=free_port())
    slow, slow_token = message(b"From: Alice <alice@example.org>", extra=b"X-Test-Delay: 2\n")
    quick, _ = message(b"From: Bob <bob@example.org>")
    replies: Dict[str, object] = {}

    def send(name: str, raw: bytes) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", narrow.port, timeout=30) as smtp:
                smtp.sendmail(SENDER, [f"user@{DOMAIN}"], raw.replace(b"\n", b"\r\n"))
            replies[name] = "sent"
        except smtplib.SMTPDataError as error:
            replies[name] = (error.smtp_code, error.smtp_error.decode())

    try:
        first = threading.Thread(target=send, args=("slow", slow))
        first.start()
        wait_in_flight(narrow)
        send("quick", quick)
        first.join()
        assert replies == {
            "slow": "sent",
            "quick": (451, "4.3.2 fromguard: too many messages at once, try again later"),
        }
        # Accepted: as sent, Received by the re-injection alone (no Postfix before it).
        assert without_trace(lab.postfix.wait_delivered(slow_token), 1) == slow
        assert 'fromguard_smtp_filter_errors_total{kind="busy"} 1.0' in narrow.metrics()
    finally:
        assert narrow.stop() == 0


# -- Reload and stop ------------------------------------------------------------------------


def test_sighup_reloads_the_policy(lab: Lab) -> None:
    deceptive = b'From: "ceo@bank.example" <m@mallory.example>'
    reloads = len(lab.filter.wait_for("reload", 0))
    (start,) = lab.filter.wait_for("start", 1)
    assert start["effective_policy"] == lab.policy.effective()
    try:
        lab.policy_path.write_text(
            '[verdicts]\ndeceptive = "quarantine"\n# fromguard-policy: end\n', encoding="utf-8"
        )
        lab.filter.signal(signal.SIGHUP)
        assert lab.filter.wait_for("reload", reloads + 1)[-1]["result"] == "ok"
        sent, token = message(deceptive)
        assert lab.postfix.swaks(sent, sender=SENDER).status == 0
        assert without_trace(wait_held(lab, token), HOPS) == sent
        assert "helo=<fromguard-hold>" in lab.postfix.log()
    finally:
        lab.policy_path.write_text(POLICY, encoding="utf-8")
        lab.filter.signal(signal.SIGHUP)
        assert lab.filter.wait_for("reload", reloads + 2)[-1]["result"] == "ok"
        lab.postfix.clear_hold()


def test_sigterm_lets_the_message_in_flight_finish(lab: Lab) -> None:
    draining = lab.start_filter("--watchdog", "20", port=free_port())
    lab.point_to(draining.port)
    sent, token = message(
        b'From: "ceo@bank.example" <m@mallory.example>', extra=b"X-Test-Delay: 1\n"
    )
    try:
        assert lab.postfix.swaks(sent, sender=SENDER).status == 0
        wait_in_flight(draining)
        draining.signal(signal.SIGTERM)
        assert draining.stop() == 0
        assert [entry["event"] for entry in draining.log()][-3:] == ["stop", "message", "exit"]
    finally:
        lab.point_to(lab.filter_port)
    assert expect(lab, sent, token) == "warn"


# -- The handler in a Python gateway of one's own -------------------------------------------


def test_the_readme_s_python_gateway_as_pasted(lab: Lab) -> None:
    """The README's snippet, its policy path and ports made the lab's: a message sent to
    its Controller as Postfix would arrives in the lab as the policy says."""
    port = free_port()
    snippet = (
        readme_block(r"FilterHandler\(", "python")
        .replace("/etc/fromguard/policy.toml", str(lab.policy_path))
        .replace("10026", str(lab.reinjection_port))
        .replace("10025", str(port))
    )
    namespace: Dict[str, object] = {}
    exec(compile(snippet, "README.md", "exec"), namespace)
    controller = namespace["controller"]
    try:
        sent, token = message(b'From: "ceo@bank.example" <m@mallory.example>')
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            smtp.sendmail(SENDER, [f"user@{DOMAIN}"], sent.replace(b"\n", b"\r\n"))
        delivered = without_trace(lab.postfix.wait_delivered(token), 1)  # queued once
        assert delivered == policy_result(lab.policy, sent)
    finally:
        controller.stop()  # type: ignore[attr-defined]


# -- Load -------------------------------------------------------------------------------

SENDERS = 8
PER_SENDER = 100


def test_8_concurrent_senders_none_lost(lab: Lab) -> None:
    started = time.monotonic()
    check_none_lost(lab.postfix, lab.filter, SENDERS, PER_SENDER, timeout=300)
    seconds = time.monotonic() - started
    assert lab.postfix.queued() == [] and lab.postfix.held() == {}
    print(f"\n{SENDERS * PER_SENDER} messages through the content filter in {seconds:.1f} s")
