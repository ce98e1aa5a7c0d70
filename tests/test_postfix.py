"""``fromguard milter`` under a real Postfix on 127.0.0.1 (marked ``postfix``).

The fixtures configure and start a private Postfix instance (``postfix_lab.py``) and the
milter (through ``milter_shim.py``, so a message can ask to be slow); swaks sends each
case. The tests assert swaks' exit status, and what reached the Maildir or the hold
queue: byte for byte the sent message where the policy accepts or quarantines, and byte
for byte ``Policy.process`` 's own result where it tags or warns (Postfix's trace fields
removed). The cases that do not depend on the mail server are in ``mta_cases.py``, shared
with ``test_exim.py``. Without Postfix, swaks or root these tests fail: ``.ci/run``
installs them.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator, List

import pytest

from fromguard import Policy
from lab_fixture import running_lab
from milter_client import RunningMilter, RunningProcess
from mta_cases import *  # noqa: F403  (its __all__: the shared tests, run against this lab)
from mta_cases import (
    DECEPTIVE,
    POLICY,
    check_monitor_mode,
    check_none_lost,
    load_batches,
    message,
    policy_result,
)
from postfix_lab import (
    OpenSession,
    Postfix,
    missing_tools,
    send_concurrently,
    send_each,
    without_trace,
)

pytestmark = pytest.mark.postfix

WATCHDOG = "2"
MILTER = {
    "default_action": "tempfail",
    "connect_timeout": "5s",
    "command_timeout": "5s",
    "content_timeout": "10s",
}


class Lab:
    """The Postfix instance and the milter it calls."""

    def __init__(self) -> None:
        self.postfix = Postfix()
        self.mta = self.postfix  # the name the shared tests know it by
        self.policy_path = self.postfix.base / "policy.toml"
        self.policy_path.write_text(POLICY, encoding="utf-8")
        self.policy = Policy.from_toml(self.policy_path)
        self.milter = self.start_milter()
        self.postfix.use_milter(**MILTER)
        self.postfix.start()

    @property
    def fromguard(self) -> RunningProcess:
        return self.milter

    def start_milter(self) -> RunningMilter:
        # A log of its own: a restarted milter counts as started once it logs its start.
        self.postfix.milter_socket.with_suffix(".log").unlink(missing_ok=True)
        return RunningMilter(
            self.policy_path,
            self.postfix.milter_socket,
            "--watchdog",
            WATCHDOG,
            "--fail-mode",
            "tempfail",
        )

    def close(self) -> None:
        self.postfix.stop()
        self.milter.stop()
        self.postfix.remove()


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    yield from running_lab(Lab, missing_tools(), "Postfix")


# -- Each attack class of the header block (the others in mta_cases.py) -----------------


def test_text_after_the_angle_addr_is_held_unchanged(lab: Lab) -> None:
    sent, token = message(
        b'From: "Microsoft Security" <security@microsoft.com> <attacker@evil.test>'
    )
    result = lab.postfix.swaks(sent)
    assert result.status == 0, result
    held = [raw for raw in lab.postfix.held().values() if token in raw]
    assert len(held) == 1
    assert without_trace(held[0]) == sent
    assert "milter-hold: END-OF-MESSAGE" in lab.postfix.log()
    lab.postfix.clear_hold()


def test_local_submission_through_sendmail(lab: Lab) -> None:
    sent, token = message(b'From: "ceo@bank.example" <m@mallory.example>')
    assert lab.postfix.sendmail(sent) == 0
    delivered = without_trace(lab.postfix.wait_delivered(token))
    assert delivered == policy_result(lab.policy, sent)
    assert delivered.startswith(b"X-Fromguard-Verdict: deceptive\n")


def test_the_log_line_carries_postfix_s_queue_id(lab: Lab) -> None:
    sent, token = message(b"From: Dr. J. Doe <j@example.org>")
    assert lab.postfix.swaks(sent).status == 0
    lab.postfix.wait_delivered(token)
    queue_ids = [entry["queue_id"] for entry in lab.milter.messages()]
    log = lab.postfix.log()
    assert queue_ids and all(queue_id for queue_id in queue_ids)
    assert f"{queue_ids[-1]}: message-id={token.decode()}" in log


def test_the_milter_sees_the_header_block_as_sent(lab: Lab) -> None:
    """Folded and oddly spaced fields, rebuilt by the milter from Postfix's header events
    (Postfix does not send its own Received field): the findings' byte spans are the
    policy's on the message as sent."""
    sent, token = message(
        b'From:   "ceo@bank.example"\n\t<m@mallory.example>\nSubject: folded\n over two lines'
    )
    assert lab.postfix.swaks(sent).status == 0
    lab.postfix.wait_delivered(token)
    outcome = lab.policy.process(sent.replace(b"\n", b"\r\n"))
    entry = lab.milter.messages()[-1]
    assert [(f["code"], f["start"], f["end"]) for f in entry["findings"]] == [
        (f.code, f.start, f.end) for f in outcome.findings
    ]
    assert outcome.findings and entry["verdict"] == "deceptive"


def test_monitor_mode_delivers_everything_unchanged_and_logs_the_decision(lab: Lab) -> None:
    monitor = RunningMilter(lab.policy_path, lab.postfix.base / "monitor.sock", "--mode", "monitor")
    lab.postfix.use_milter(socket_path=monitor.socket_path, **MILTER)
    try:
        check_monitor_mode(lab.postfix, monitor)
    finally:
        lab.postfix.use_milter(**MILTER)
        assert monitor.stop() == 0


# -- The milter stopped or slow ---------------------------------------------------------


def test_milter_stopped_postfix_applies_its_default_action(lab: Lab) -> None:
    assert lab.milter.stop() == 0
    try:
        sent, token = message(b'From: "ceo@bank.example" <m@mallory.example>')
        refused = lab.postfix.swaks(sent)
        assert refused.status == 23, refused  # default_action=tempfail: 451 at MAIL FROM
        assert "451 4.7.1" in refused.output

        lab.postfix.use_milter(**{**MILTER, "default_action": "accept"})
        accepted = lab.postfix.swaks(sent)
        assert accepted.status == 0, accepted
        assert without_trace(lab.postfix.wait_delivered(token)) == sent  # unchecked
    finally:
        lab.milter = lab.start_milter()
        lab.postfix.use_milter(**MILTER)


def test_the_watchdog_answers_before_postfix_times_out(lab: Lab) -> None:
    # The milter's watchdog (2 s) fires within Postfix's content_timeout (10 s).
    sent, token = message(b"From: <a@example.org>", extra=b"X-Test-Delay: 4\n")
    result = lab.postfix.swaks(sent)
    assert result.status == 26, result
    assert "451 4.3.0 fromguard: the message could not be checked" in result.output
    entry = lab.milter.messages()[-1]
    assert entry["error"] == "no decision within 2 s" and entry["action"] == "tempfail"
    assert not [raw for raw in lab.postfix.delivered().values() if token in raw]


def test_a_milter_slower_than_postfix_s_timeout(lab: Lab) -> None:
    # Postfix gives up after 1 s, before the milter's own watchdog (2 s): its
    # default_action (accept here) applies and the message arrives unchanged.
    lab.postfix.use_milter(**{**MILTER, "content_timeout": "1s", "default_action": "accept"})
    try:
        sent, token = message(
            b'From: "ceo@bank.example" <m@mallory.example>', extra=b"X-Test-Delay: 1.8\n"
        )
        result = lab.postfix.swaks(sent)
        assert result.status == 0, result
        assert without_trace(lab.postfix.wait_delivered(token)) == sent
        assert "Connection timed out" in lab.postfix.log()
    finally:
        lab.postfix.use_milter(**MILTER)


# -- Load -------------------------------------------------------------------------------

SENDERS = 8
PER_SENDER = 500


def test_8_concurrent_senders_500_messages_each_none_lost(lab: Lab) -> None:
    check_none_lost(lab.postfix, lab.milter, SENDERS, PER_SENDER, timeout=180)
    assert lab.postfix.queued() == [] and lab.postfix.held() == {}


# -- Faults: signals, the drain, slow decisions -----------------------------------------

TAGGING = POLICY.replace('deceptive = "warn"', 'deceptive = "tag"')
REJECTING = POLICY.replace('deceptive = "warn"', 'deceptive = "reject"')


def write_policy(lab: Lab, text: str) -> None:
    """Replace the policy file whole (written aside, then renamed), as an operator should."""
    staging = lab.policy_path.with_suffix(".new")
    staging.write_text(text, encoding="utf-8")
    os.replace(staging, lab.policy_path)


def tagged(sent: bytes, policy: str) -> bytes:
    """What ``policy`` makes of ``sent`` (LF line ends)."""
    staging = Path(f"/tmp/fg-policy-{uuid.uuid4().hex}.toml")
    staging.write_text(policy, encoding="utf-8")
    try:
        outcome = Policy.from_toml(staging).process(sent.replace(b"\n", b"\r\n"))
    finally:
        staging.unlink()
    return outcome.message.replace(b"\r\n", b"\n")


def wait_for_policy(lab: Lab, status: int, timeout: float = 30) -> None:
    """Send deceptive messages until one gets swaks' ``status`` (26: rejected)."""
    deadline = time.monotonic() + timeout
    while lab.postfix.swaks(message(DECEPTIVE)[0]).status != status:
        assert time.monotonic() < deadline, "the policy file's last state is not in force"


BURST = 1000


def test_a_burst_of_1000_sighups_under_load_none_lost(lab: Lab) -> None:
    """8 senders, 100 messages each, while the milter gets 1,000 SIGHUPs and its policy
    file changes every 100 of them (warning or tag for a deceptive From): every message
    delivered, the milter still the same process, and the file's last policy in force."""
    pid = lab.milter.process.pid
    before = lab.postfix.count_delivered()
    logged_before = len(lab.milter.messages())
    reloads_before = len(lab.milter.wait_for("reload", 0))
    run = uuid.uuid4().hex.encode()
    batches = load_batches(run, 8, 100)
    failures: List[str] = []
    sending = threading.Thread(
        target=lambda: failures.extend(send_concurrently(lab.postfix.port, batches))
    )
    try:
        sending.start()
        lab.postfix.wait_count(before + 20, timeout=60)  # under way
        for index in range(BURST):
            if index % 100 == 0:
                write_policy(lab, (POLICY, TAGGING)[index // 100 % 2])
            lab.milter.signal(signal.SIGHUP)
            time.sleep(0.001)
        sending.join()
        assert failures == []
        lab.postfix.wait_count(before + 800, timeout=120)
        delivered = [raw for raw in lab.postfix.delivered().values() if run in raw]
        assert len(delivered) == 800
        assert lab.postfix.queued() == [] and lab.postfix.held() == {}
        logged = lab.milter.messages()[logged_before:]
        assert len(logged) == 800 and len({entry["queue_id"] for entry in logged}) == 800
        assert lab.milter.process.poll() is None and lab.milter.process.pid == pid
        reloads = lab.milter.wait_for("reload", reloads_before + 1)[reloads_before:]
        assert reloads and {entry["result"] for entry in reloads} == {"ok"}
        write_policy(lab, REJECTING)
        lab.milter.signal(signal.SIGHUP)
        wait_for_policy(lab, 26)
    finally:
        write_policy(lab, POLICY)
        lab.milter.signal(signal.SIGHUP)
    wait_for_policy(lab, 0)


RACES = 20


def test_sighup_then_sigterm_20_times_mid_transfer_none_lost(lab: Lab) -> None:
    """SIGHUP and SIGTERM back to back, 20 times, while one SMTP session is half way
    through its data and another has sent nothing yet: both messages are accepted,
    decided by the reloaded policy (a tag where the old one warned), and delivered; the
    milter exits 0 once the sessions end."""
    try:
        for attempt in range(RACES):
            halfway_sent, halfway_token = message(DECEPTIVE, b"half way %d\n" % attempt)
            idle_sent, idle_token = message(DECEPTIVE, b"not begun %d\n" % attempt)
            halfway, idle = OpenSession(lab.postfix.port), OpenSession(lab.postfix.port)
            halfway_crlf = halfway_sent.replace(b"\n", b"\r\n")
            halfway.begin(halfway_crlf, len(halfway_crlf) // 2)
            write_policy(lab, TAGGING)
            lab.milter.signal(signal.SIGHUP)
            lab.milter.signal(signal.SIGTERM)
            lab.milter.wait_for("stop", 1)
            replies = [halfway.end(), idle.send(idle_sent.replace(b"\n", b"\r\n"))]
            for session in (halfway, idle):
                session.close()
            assert [code for code, _ in replies] == [250, 250], (attempt, replies)
            assert lab.milter.process.wait(30) == 0, attempt
            events = [entry["event"] for entry in lab.milter.log()]
            assert events[-5:] == ["reload", "stop", "message", "message", "exit"], attempt
            for sent, token in ((halfway_sent, halfway_token), (idle_sent, idle_token)):
                delivered = without_trace(lab.postfix.wait_delivered(token))
                assert delivered == tagged(sent, TAGGING), attempt
            write_policy(lab, POLICY)
            lab.milter = lab.start_milter()
    finally:
        write_policy(lab, POLICY)
        if lab.milter.process.poll() is not None:
            lab.milter = lab.start_milter()
    assert lab.postfix.queued() == []


SLOW_SENDERS = 16
PER_SLOW_SENDER = 33  # 9 slow each: 27%


def test_27_percent_slow_decisions_tempfail_none_of_the_others(lab: Lab) -> None:
    """16 senders, 27% of their messages slower than the milter's 1 s watchdog: each
    slow one is tempfailed (and stays with the sender), every other one is delivered."""
    slow_milter = RunningMilter(
        lab.policy_path,
        lab.postfix.base / "slow.sock",
        "--watchdog",
        "1",
        "--workers",
        "16",
        "--fail-mode",
        "tempfail",
    )
    lab.postfix.use_milter(socket_path=slow_milter.socket_path, **MILTER)
    try:
        before = lab.postfix.count_delivered()
        run = uuid.uuid4().hex.encode()
        batches = [
            [
                message(b"From: Alice <alice@example.org>",
                        b"slow %s %d %d\n" % (run, sender, index),
                        extra=b"X-Test-Delay: 3\n" if index % 11 in (0, 4, 8) else b"",
                        )[0].replace(b"\n", b"\r\n")
                for index in range(PER_SLOW_SENDER)
            ]
            for sender in range(SLOW_SENDERS)
        ]  # fmt: skip
        codes = send_each(lab.postfix.port, batches)
        slow = [c for batch in codes for i, c in enumerate(batch) if i % 11 in (0, 4, 8)]
        fast = [c for batch in codes for i, c in enumerate(batch) if i % 11 not in (0, 4, 8)]
        assert len(slow) == SLOW_SENDERS * 9 and len(fast) == SLOW_SENDERS * 24
        assert set(fast) == {250}
        assert set(slow) == {451}
        lab.postfix.wait_count(before + len(fast), timeout=120)
        delivered = [raw for raw in lab.postfix.delivered().values() if run in raw]
        assert len(delivered) == len(fast)
        assert not [raw for raw in delivered if b"X-Test-Delay" in raw]
        assert lab.postfix.queued() == []
        errors = [entry.get("error") for entry in slow_milter.messages()]
        assert errors.count("no decision within 1 s") == len(slow)
        assert errors.count(None) == len(fast)
    finally:
        lab.postfix.use_milter(**MILTER)
        assert slow_milter.stop() == 0
