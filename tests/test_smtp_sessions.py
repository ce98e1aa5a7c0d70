"""The SMTP filter's sessions with the next hop: kept open and reused, one message after
another, and replaced when the next hop has closed one (``fromguard.smtp._Sessions``).
The next hop here is an aiosmtpd server that records its sessions and messages; the
filter is ``FilterHandler`` under an aiosmtpd ``Controller`` as the README's Python
gateway runs it (the Postfix lab's tests, tests/test_smtp_filter.py, run the command)."""

from __future__ import annotations

import io
import smtplib
import threading
import time
from pathlib import Path
from typing import Iterator, List, NamedTuple

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from fromguard.milter import Gateway, Settings
from fromguard.policy import Policy
from fromguard.smtp import HOLD_HELO, FilterHandler, NextHop
from milter_client import free_port

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "examples" / "policies" / "exchange.toml"
REFUSED = "busy@example.org"  # the next hop answers 450 to this recipient
CLEAN = b"From: Alice <alice@example.org>\r\nTo: u@example.org\r\nSubject: %d\r\n\r\nbody\r\n"


class NextHopHandler:
    """Records the EHLO of each session (one per connection) and each message."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sessions: List[str] = []
        self.messages: List[bytes] = []
        self.quits = 0

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: List[str],
    ) -> List[str]:
        with self.lock:
            self.sessions.append(hostname)
        session.host_name = hostname
        return responses

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: List[str]
    ) -> str:
        if address == REFUSED:
            return "450 4.2.1 try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            self.quits += 1
        return "221 Bye"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            self.messages.append(envelope.original_content or b"")
        return "250 2.0.0 Ok: queued"


class Filter(NamedTuple):
    port: int
    next_hop: NextHopHandler
    next_hop_port: int
    handler: FilterHandler


def start_next_hop(handler: NextHopHandler, port: int) -> Controller:
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    return controller


# The Exchange preset quarantines nothing: this policy holds deceptive senders.
HOLDING = Policy.from_dict({"verdicts": {"deceptive": "quarantine"}})


@pytest.fixture
def running(request: pytest.FixtureRequest) -> Iterator[Filter]:
    """The filter and its next hop; ``request.param``: (idle seconds, policy)."""
    idle, policy = getattr(request, "param", (10.0, Policy.from_toml(POLICY)))
    next_hop, next_hop_port, port = NextHopHandler(), free_port(), free_port()
    hop = start_next_hop(next_hop, next_hop_port)
    gateway = Gateway(Settings(POLICY), policy, io.StringIO())
    handler = FilterHandler(gateway, NextHop("127.0.0.1", next_hop_port, 10.0, idle))
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    running = Filter(port, next_hop, next_hop_port, handler)
    request.node.next_hop_controller = [hop]
    try:
        yield running
    finally:
        controller.stop()
        handler.close()
        request.node.next_hop_controller[0].stop()
        gateway.close()


def send(port: int, message: bytes, recipients: List[str]) -> None:
    """One message to the filter, on a session of its own (as Postfix's smtp client may)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.sendmail("s@example.org", recipients, message)


def test_one_session_carries_message_after_message(running: Filter) -> None:
    for number in range(10):
        send(running.port, CLEAN % number, ["u@example.org"])
    assert len(running.next_hop.messages) == 10
    assert running.next_hop.sessions == ["fromguard"]


@pytest.mark.parametrize("running", [(10.0, HOLDING)], indirect=True)
def test_a_quarantined_message_goes_on_a_session_of_its_own_name(running: Filter) -> None:
    spoof = b'From: "ceo@bank.example" <m@mallory.example>\r\nSubject: x\r\n\r\nbody\r\n'
    for message in (CLEAN % 1, CLEAN % 2, spoof, spoof, CLEAN % 3):
        send(running.port, message, ["u@example.org"])
    assert len(running.next_hop.messages) == 5
    # A session of the other name is opened only once the idle one has ended: idle
    # sessions must not hold every process the next hop has.
    assert running.next_hop.sessions == ["fromguard", HOLD_HELO, "fromguard"]
    assert running.next_hop.quits == 2


@pytest.mark.parametrize("running", [(0.3, Policy.from_toml(POLICY))], indirect=True)
def test_an_idle_session_ends_without_waiting_for_the_next_message(running: Filter) -> None:
    send(running.port, CLEAN % 1, ["u@example.org"])
    deadline = time.monotonic() + 10
    while running.next_hop.quits == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running.next_hop.quits == 1
    send(running.port, CLEAN % 2, ["u@example.org"])
    assert running.next_hop.sessions == ["fromguard", "fromguard"]


def test_a_session_the_next_hop_closed_is_replaced_and_nothing_is_lost(
    running: Filter, request: pytest.FixtureRequest
) -> None:
    send(running.port, CLEAN % 1, ["u@example.org"])
    # The next hop goes away and comes back (a restart, or its idle timeout): the idle
    # session is dead, which the filter finds out at the next message's first command.
    request.node.next_hop_controller[0].stop()
    request.node.next_hop_controller[0] = start_next_hop(running.next_hop, running.next_hop_port)
    send(running.port, CLEAN % 2, ["u@example.org"])
    send(running.port, CLEAN % 3, ["u@example.org"])
    assert running.next_hop.messages == [CLEAN % 1, CLEAN % 2, CLEAN % 3]
    assert running.next_hop.sessions == ["fromguard", "fromguard"]


def test_a_refused_recipient_is_relayed_and_its_session_not_reused(running: Filter) -> None:
    # The filter takes every recipient and answers the next hop's reply at DATA's end.
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(running.port, CLEAN % 1, [REFUSED])
    assert refused.value.smtp_code == 450
    send(running.port, CLEAN % 2, ["u@example.org"])
    assert running.next_hop.messages == [CLEAN % 2]
    assert len(running.next_hop.sessions) == 2


@pytest.mark.parametrize("running", [(0.0, Policy.from_toml(POLICY))], indirect=True)
def test_no_session_is_reused_past_its_idle_time(running: Filter) -> None:
    for number in range(3):
        send(running.port, CLEAN % number, ["u@example.org"])
    assert len(running.next_hop.messages) == 3
    assert running.next_hop.sessions == ["fromguard"] * 3
