"""fromguard's Exim ACL and transport filter under Debian's exim4-daemon-heavy, run
privately on 127.0.0.1 (``exim_lab.py``), asking a real ``fromguard serve`` (marked
``exim``).

The messages and expectations of ``test_postfix.py``, the cases that do not depend on
the mail server run here too (``mta_cases.py``): swaks sends each case; what reached the
Maildir (without Exim's Received field) is byte for byte the sent message where the
policy accepts, and ``Policy.process``'s own result where it tags or warns; reject and
tempfail answer with the policy's reply; quarantine freezes the message.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from exim_lab import Exim, missing_tools, readme_macros, without_received
from fromguard import Policy
from lab_fixture import running_lab
from milter_client import RunningProcess
from mta_cases import *  # noqa: F403  (its __all__: the shared tests, run against this lab)
from mta_cases import (
    MONITOR_CASES,
    POLICY,
    check_monitor_mode,
    check_none_lost,
    message,
    policy_result,
)
from serve_client import RunningServe

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
        self.mta = self.exim  # the name the shared tests know it by
        self.exim.start()

    @property
    def fromguard(self) -> RunningProcess:
        return self.serve

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


# -- Each attack class of the header block (the others in mta_cases.py) -----------------


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
        logged_before = len(lab.exim.log())
        check_monitor_mode(lab.exim, lab.serve)
        logged = lab.exim.log()[logged_before:]
        for policy_action in MONITOR_CASES:
            assert f"answer=accept action={policy_action}" in logged
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
        assert delivered == policy_result(lab.policy, sent)
    finally:
        queue_only.stop()
        queue_only.remove()
        lab.exim.start()


# -- Load -------------------------------------------------------------------------------

SENDERS = 4
PER_SENDER = 100


def test_4_concurrent_senders_100_messages_each_none_lost(lab: Lab) -> None:
    check_none_lost(lab.exim, lab.serve, SENDERS, PER_SENDER, timeout=180)
