"""``fromguard.smtp``: the policy as an SMTP content filter, on aiosmtpd.

``FilterHandler`` is an aiosmtpd handler: it takes each message at the end of its DATA,
runs ``Policy.process`` on it in a thread pool (through the milter's ``Gateway``: the same
watchdog, fail mode, JSON log and metrics) and re-injects the result over SMTP into the
next hop, Postfix's re-injection ``smtpd`` for an after-queue ``content_filter`` or any
MTA behind a before-queue proxy:

- accept (and everything in monitor mode): the message as received, byte for byte;
- tag: the policy's header fields at the top; warn: those and the body's warning;
- quarantine: the message as received, over a session that says ``EHLO fromguard-hold``,
  which the next hop's ``smtpd_helo_restrictions`` turn into Postfix's HOLD (the README's
  ``master.cf`` lines): an after-queue filter cannot hold a message itself;
- reject: the policy's SMTP reply (a 5xx makes Postfix bounce an accepted message, a
  4xx keeps it queued and retried).

The sender side is answered with the next hop's own reply, so Postfix logs the queue id
it got (``queued as ...``) next to the original one. ``fromguard smtp-filter`` also
takes Postfix's XFORWARD (the queue id, which its log lines carry, and the client) and
passes it on to a next hop that takes it. Nothing is lost: a decision that fails or
takes longer than the watchdog, a next hop that cannot be reached, refuses a recipient
temporarily or is slower than its timeout, more messages at once than ``max_messages``
and any other error are all answered with a 4xx, and Postfix keeps the message and
retries.

Sessions with the next hop are kept open and reused, one message after another (Postfix
starts an ``smtpd`` process per connection, which costs more than the message), as
Postfix's own SMTP client caches its sessions: an idle session is ended after
``NextHop.idle`` seconds (2, Postfix's ``smtp_connection_cache_time_limit``), so that
idle sessions do not hold the next hop's processes (the README's re-injection service
has 10), and before a session of another EHLO name is opened. A reused session that the
next hop has closed meanwhile, found out before the message's DATA, is replaced by a
new one and the message sent again on it; once DATA has begun, a failure is a 4xx as
with any session.

``fromguard smtp-filter`` runs the handler on a port of its own: SIGHUP reloads the
policy, SIGTERM stops listening, lets the messages in flight finish and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import signal
import smtplib
import sys
import threading
import time
from pathlib import Path
from typing import (
    IO,
    TYPE_CHECKING,
    Callable,
    Dict,
    List,
    NamedTuple,
    NoReturn,
    Optional,
    Tuple,
)

from . import milter
from ._errors import Failure
from ._mime import rewrite
from ._service import TEMPFAIL_REPLY, StartError, add_service_options, run_and_exit
from .milter import FailMode, Gateway, Mode
from .policy import Policy, PolicyError

if TYPE_CHECKING:  # aiosmtpd is the smtp extra's, imported when the filter starts
    from aiosmtpd.smtp import SMTP, Envelope, Session

__all__ = [
    "HOLD_HELO",
    "FilterHandler",
    "NextHop",
    "Settings",
    "add_arguments",
    "serve",
]

HELO = "fromguard"
HOLD_HELO = "fromguard-hold"
"""The EHLO name of a quarantined message's re-injection: the next hop's
``check_helo_access`` answers it with HOLD."""

XFORWARD_ATTRIBUTES = ("NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE")
"""What Postfix's XFORWARD may say (XFORWARD_README): the client, and the queue id."""
SMTP_COMMAND_LIMIT = 512

BUSY_REPLY = "451 4.3.2 fromguard: too many messages at once, try again later"
NEXT_HOP_REPLY = "451 4.4.1 fromguard: the next hop could not take the message, try again later"
STOPPING_REPLY = "421 4.3.2 fromguard: shutting down, try again later"


class NextHop(NamedTuple):
    """Where filtered messages go, how long one SMTP command there may take, and how long
    an idle session with it is kept for the next message."""

    host: str = "127.0.0.1"
    port: int = 10026
    timeout: float = 60.0
    idle: float = 2.0


class FilterHandler:
    """An aiosmtpd handler (``Controller(FilterHandler(...), ...)``) that applies the
    gateway's policy to each message and re-injects it into ``next_hop``. At most
    ``max_messages`` are decided and re-injected at once; one more is answered with a
    4xx, so the sending MTA retries it later."""

    def __init__(self, gateway: Gateway, next_hop: NextHop, max_messages: int = 16) -> None:
        self.gateway = gateway
        self.next_hop = next_hop
        self._slots = threading.BoundedSemaphore(max_messages)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_messages, thread_name_prefix="fromguard-filter"
        )
        self._sessions = _Sessions(next_hop, max_messages)
        self.stopping = False
        gateway.metrics.errors.labels("next-hop")  # the filter's own kind, at 0 from the start

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: List[str],
    ) -> List[str]:
        session.host_name = hostname
        if hasattr(server, "smtp_XFORWARD"):  # fromguard smtp-filter's server
            responses.insert(-1, "250-XFORWARD " + " ".join(XFORWARD_ATTRIBUTES))
        return responses

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        forwarded: Dict[str, str] = getattr(session, "xforward", {})
        attributes = dict(forwarded)
        forwarded.clear()  # Postfix sends them again for each message
        if self.stopping:
            return STOPPING_REPLY
        if not self._slots.acquire(blocking=False):
            self.gateway.metrics.errors.labels("busy").inc()
            self.gateway.log.write("busy", reply=BUSY_REPLY)
            return BUSY_REPLY
        self.gateway.message_started()
        work = asyncio.get_running_loop().run_in_executor(
            self._pool, self._filter, envelope, attributes
        )
        # Shielded: should the client hang up, the message still finishes (and frees its
        # slot) rather than being cancelled half re-injected.
        return await asyncio.shield(work)

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        self._sessions.close()

    def _filter(self, envelope: Envelope, attributes: Dict[str, str]) -> str:
        """Decide and re-inject one message (``attributes``: its XFORWARD); the reply for
        the sending MTA."""
        tempfail = str(TEMPFAIL_REPLY)
        try:
            raw = envelope.original_content or b""
            decision = self.gateway.decide(raw, attributes.get("IDENT"))
            outcome = decision.outcome
            reply = decision.reply()
            if reply is not None:  # reject or tempfail
                return str(reply)
            message, helo = raw, HELO
            if decision.answer in ("tag", "warn") and outcome is not None:
                # The gateway decides as a milter does, the header fields apart.
                message = rewrite(outcome.message, outcome.headers).message
            elif decision.answer == "quarantine":
                helo = HOLD_HELO
            return self._reinject(envelope, attributes, message, helo)
        except Exception as error:  # aiosmtpd would answer a 5xx: the mail would bounce
            failure = Failure.of(error)
            self.gateway.metrics.errors.labels(failure.kind).inc()
            self.gateway.log.write(
                "error", queue_id=attributes.get("IDENT"), error=failure.text, reply=tempfail
            )
            return tempfail
        finally:
            self.gateway.message_ended()
            self._slots.release()

    def _reinject(
        self, envelope: Envelope, attributes: Dict[str, str], message: bytes, helo: str
    ) -> str:
        """Send ``message`` with the envelope received to the next hop, on an idle session
        if there is one; its reply, or a 4xx when it could not be reached or answered too
        slowly."""
        smtp = self._sessions.take(helo)
        reused = smtp is not None
        while True:
            try:
                if smtp is None:
                    smtp = self._sessions.open(helo)
            except (OSError, smtplib.SMTPException) as error:
                return self._next_hop_failed(error)
            transaction = _Transaction(smtp)
            try:
                reply = transaction.run(envelope, attributes, message)
            except (OSError, smtplib.SMTPException) as error:
                smtp.close()
                if reused and not transaction.sent_data:
                    smtp, reused = None, False  # the next hop had closed it: a new one
                    continue
                return self._next_hop_failed(error)
            if reply.startswith("421"):  # the next hop is closing this session
                smtp.close()
                if reused and not transaction.sent_data:
                    smtp, reused = None, False
                    continue
                return reply
            if transaction.open:
                self._sessions.quit(smtp)  # a transaction left open: not reused
            else:
                self._sessions.give(helo, smtp)
            return reply

    def _next_hop_failed(self, error: Exception) -> str:
        hop = self.next_hop
        self.gateway.metrics.errors.labels("next-hop").inc()
        self.gateway.log.write(
            "error",
            error=f"re-injection into {hop.host}:{hop.port} failed: {error!r}",
            reply=NEXT_HOP_REPLY,
        )
        return NEXT_HOP_REPLY


class _Transaction:
    """One mail transaction on an open session. ``sent_data``: whether DATA was sent (a
    failure before it leaves the next hop without the message, so it can be sent again
    elsewhere); ``open``: whether it ended with the transaction still open (a refused
    recipient), so the session is not at a transaction's start."""

    def __init__(self, smtp: smtplib.SMTP) -> None:
        self.smtp = smtp
        self.sent_data = False
        self.open = False

    def run(self, envelope: Envelope, attributes: Dict[str, str], message: bytes) -> str:
        """The reply to relay to the sending MTA."""
        smtp = self.smtp
        if attributes and smtp.has_extn("xforward"):
            for command in _xforward_commands(attributes):
                # Information only: a next hop that refuses it still takes the message.
                smtp.docmd("XFORWARD", command)
        # SIZE was the size received; the next hop measures the message it gets.
        options = [o for o in envelope.mail_options if not o.startswith("SIZE=")]
        code, text = smtp.mail(envelope.mail_from or "", options)
        if code != 250:
            return _reply(code, text)
        self.open = True
        answers = [smtp.rcpt(rcpt) for rcpt in envelope.rcpt_tos]
        refused = [(code, text) for code, text in answers if code not in (250, 251)]
        if refused:
            # One reply covers every recipient: all go again (a 4xx first), or none.
            return _reply(*min(refused))
        self.sent_data = True
        reply = _reply(*smtp.data(message))
        self.open = False
        return reply


class _Sessions:
    """Idle sessions with the next hop by EHLO name (a quarantined message's name
    differs), the most recently used last; at most ``limit`` of them, each ended once
    idle for the next hop's ``idle`` seconds (by a thread that runs while any is idle)."""

    def __init__(self, hop: NextHop, limit: int) -> None:
        self.hop = hop
        self.limit = limit
        self._lock = threading.Lock()
        self._idle: Dict[str, List[Tuple[float, smtplib.SMTP]]] = {}
        self._reaper: Optional[threading.Thread] = None
        self._closed = threading.Event()

    def open(self, helo: str) -> smtplib.SMTP:
        """A new session, greeted with EHLO; the idle sessions of other names are ended
        first (the next hop may have no process left for one more)."""
        self._end(lambda name, since: name != helo)
        hop = self.hop
        smtp = smtplib.SMTP(hop.host, hop.port, local_hostname=helo, timeout=hop.timeout)
        try:
            smtp.ehlo()
        except BaseException:
            smtp.close()
            raise
        return smtp

    def take(self, helo: str) -> Optional[smtplib.SMTP]:
        """The most recently used idle session greeted as ``helo``, or None."""
        self._end(lambda name, since: since < time.monotonic() - self.hop.idle)
        with self._lock:
            idle = self._idle.get(helo)
            return idle.pop()[1] if idle else None

    def give(self, helo: str, smtp: smtplib.SMTP) -> None:
        """Keep ``smtp``, at a transaction's start, for the next message (or end it)."""
        with self._lock:
            kept = self.hop.idle > 0 and sum(map(len, self._idle.values())) < self.limit
            if kept:
                self._idle.setdefault(helo, []).append((time.monotonic(), smtp))
                if self._reaper is None and not self._closed.is_set():
                    self._reaper = threading.Thread(
                        target=self._reap, name="fromguard-next-hop-sessions", daemon=True
                    )
                    self._reaper.start()
        if not kept:
            self.quit(smtp)

    def close(self) -> None:
        """End every idle session, and the thread that ends them."""
        self._closed.set()
        self._end(lambda name, since: True)

    def _reap(self) -> None:
        """End sessions idle too long, until none is idle."""
        while not self._closed.wait(self.hop.idle / 4):
            self._end(lambda name, since: since < time.monotonic() - self.hop.idle)
            with self._lock:
                if not any(self._idle.values()):
                    self._reaper = None
                    return

    def _end(self, chosen: Callable[[str, float], bool]) -> None:
        """End the idle sessions ``chosen(name, idle since)`` picks (outside the lock:
        QUIT waits for the next hop)."""
        ended: List[smtplib.SMTP] = []
        with self._lock:
            for name, idle in self._idle.items():
                kept = []
                for since, smtp in idle:
                    if chosen(name, since):
                        ended.append(smtp)
                    else:
                        kept.append((since, smtp))
                idle[:] = kept
        for smtp in ended:
            self.quit(smtp)

    @staticmethod
    def quit(smtp: smtplib.SMTP) -> None:
        """End a session politely; once the next hop has a message, a failing QUIT must
        not make it a 4xx (the sender would send it again)."""
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()


def _xforward_commands(attributes: Dict[str, str]) -> List[str]:
    """The attributes (xtext, as received) as XFORWARD arguments, each command within
    SMTP's line limit."""
    commands: List[str] = []
    for item in (f"{name}={value}" for name, value in attributes.items()):
        if commands and len(commands[-1]) + len(item) + len("XFORWARD  \r\n") < SMTP_COMMAND_LIMIT:
            commands[-1] += " " + item
        else:
            commands.append(item)
    return commands


def _reply(code: int, text: bytes) -> str:
    """An SMTP reply, one line (a multi-line reply's lines joined)."""
    return f"{code} {text.decode('utf-8', 'replace').replace(chr(10), ' ')}"


# -- The command ------------------------------------------------------------------------


class Settings(NamedTuple):
    """What ``fromguard smtp-filter`` was started with."""

    policy_path: Path
    listen: Tuple[str, int] = ("127.0.0.1", 10025)
    next_hop: NextHop = NextHop()
    mode: Mode = Mode.ENFORCE
    fail_mode: FailMode = FailMode.TEMPFAIL
    watchdog: float = 5.0
    max_messages: int = 16
    data_size_limit: int = 100 * 1024 * 1024
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9950
    drain_timeout: float = 30.0

    def gateway(self) -> milter.Settings:
        """The settings of the milter's gateway that the filter decides with."""
        return milter.Settings(
            policy_path=self.policy_path,
            mode=self.mode,
            fail_mode=self.fail_mode,
            watchdog=self.watchdog,
            metrics_host=self.metrics_host,
            metrics_port=self.metrics_port,
            drain_timeout=self.drain_timeout,
            workers=self.max_messages,
        )


def _server_class(line_length_limit: int) -> type[SMTP]:
    """aiosmtpd's SMTP server with Postfix's XFORWARD, taking lines up to
    ``line_length_limit`` octets (Postfix passes lines over 998 octets unbroken with the
    README's smtp_line_length_limit = 0, so that the policy sees them: line-too-long is
    a finding)."""
    from aiosmtpd.smtp import SMTP, Session

    class ForwardedSession(Session):
        def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
            super().__init__(loop)
            self.xforward: Dict[str, str] = {}

    class Server(SMTP):
        def _create_session(self) -> Session:
            return ForwardedSession(self.loop)

        async def smtp_XFORWARD(self, arg: Optional[str]) -> None:
            items = [item.partition("=") for item in (arg or "").split()]
            names = [name.upper() for name, _, _ in items]
            if not items or not all(name in XFORWARD_ATTRIBUTES for name in names):
                await self.push("501 5.5.4 Syntax: XFORWARD attribute=value...")
                return
            session = self.session
            assert isinstance(session, ForwardedSession)
            session.xforward.update((name, value) for name, (_, _, value) in zip(names, items))
            await self.push("250 2.0.0 Ok")

    Server.line_length_limit = line_length_limit
    return Server


def serve(settings: Settings, log: IO[str] = sys.stdout) -> int:
    """Run the filter until SIGTERM or SIGINT; returns the exit status (2 when it cannot
    start: the reason is one line on stderr)."""
    try:
        return asyncio.run(_serve(settings, log))
    except StartError as error:
        print(f"fromguard smtp-filter: {error}", file=sys.stderr)
        return 2


async def _serve(settings: Settings, log: IO[str]) -> int:
    try:
        policy = Policy.from_toml(settings.policy_path)
    except PolicyError as error:
        raise StartError(f"cannot load the policy: {error}") from None
    try:
        server_class = _server_class(settings.data_size_limit)
    except ImportError as error:
        raise StartError(
            f"aiosmtpd is not installed ({error}); install it with: pip install 'fromguard[smtp]'"
        ) from None
    gateway = Gateway(settings.gateway(), policy, log, program="smtp_filter")
    if settings.metrics_port:
        from prometheus_client import start_http_server

        try:
            start_http_server(
                settings.metrics_port,
                addr=settings.metrics_host,
                registry=gateway.metrics.registry,
            )
        except OSError as error:
            raise StartError(
                f"cannot serve the metrics on {settings.metrics_host}:{settings.metrics_port}:"
                f" {error.strerror or error} (--metrics-port 0 turns them off)"
            ) from None

    handler = FilterHandler(gateway, settings.next_hop, settings.max_messages)
    loop = asyncio.get_running_loop()
    host, port = settings.listen
    try:
        server = await loop.create_server(
            lambda: server_class(
                handler,
                hostname=HELO,
                enable_SMTPUTF8=True,
                data_size_limit=settings.data_size_limit,
            ),
            host,
            port,
        )
    except OSError as error:
        raise StartError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None

    stop = asyncio.Event()
    stopped_by: List[str] = []

    def on_stop(signum: signal.Signals) -> None:
        stopped_by.append(signum.name)
        stop.set()

    loop.add_signal_handler(signal.SIGHUP, gateway.reload)
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_stop, signum)
    gateway.service.log_start(
        listen=f"{host}:{port}",
        next_hop=f"{settings.next_hop.host}:{settings.next_hop.port}",
        mode=settings.mode.value,
        fail_mode=settings.fail_mode.value,
        watchdog=settings.watchdog,
        max_messages=settings.max_messages,
        policy=str(settings.policy_path),
        metrics=f"{settings.metrics_host}:{settings.metrics_port}"
        if settings.metrics_port
        else None,
    )
    await stop.wait()
    gateway.log.write("stop", signal=stopped_by[0])
    server.close()
    # A connection still open (Postfix caches them) gets a 421 for its next message.
    handler.stopping = True
    left = await loop.run_in_executor(None, gateway.drain, settings.drain_timeout)
    # A message counts as done when its reply is returned to aiosmtpd, which writes it
    # just after: the loop must run that long.
    await asyncio.sleep(milter.REPLY_GRACE)
    gateway.log.write("exit", in_flight=left)
    handler.close()
    gateway.close()
    return 0 if left == 0 else 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``smtp-filter`` command's description and options, for ``fromguard.cli``."""
    parser.description = (
        "Run an SMTP content filter (Postfix's after-queue content_filter, or a "
        "before-queue smtpd_proxy_filter): every message received on --listen gets the "
        "policy's action and is re-injected into --next-hop, or answered with the policy's "
        "reply. Reloads the policy on SIGHUP, drains and exits on SIGTERM. One JSON line per "
        "message on stdout (or --log)."
    )
    parser.add_argument(
        "--policy", type=Path, required=True, metavar="PATH", help="the policy TOML file"
    )
    parser.add_argument(
        "--listen",
        type=_address,
        default=("127.0.0.1", 10025),
        metavar="HOST:PORT",
        help="where Postfix delivers to the filter (default: 127.0.0.1:10025)",
    )
    parser.add_argument(
        "--next-hop",
        type=_address,
        default=("127.0.0.1", 10026),
        metavar="HOST:PORT",
        help="where the filter re-injects (default: 127.0.0.1:10026)",
    )
    parser.add_argument(
        "--next-hop-timeout",
        type=milter._seconds,
        default=60.0,
        metavar="SECONDS",
        help="how long one SMTP command at the next hop may take; then 451 (default: 60)",
    )
    parser.add_argument(
        "--next-hop-idle",
        type=milter._seconds,
        default=NextHop._field_defaults["idle"],
        metavar="SECONDS",
        help="how long a session with the next hop is kept for the next message; 0: a "
        "session per message (default: %(default)s)",
    )
    parser.add_argument(
        "--mode",
        choices=[m.value for m in Mode],
        default=Mode.ENFORCE.value,
        help="monitor: log and count only, every message re-injected untouched "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--fail-mode",
        choices=[m.value for m in FailMode],
        default=FailMode.TEMPFAIL.value,
        help="the answer on an internal error or when the watchdog fires: tempfail (451) "
        "or accept (re-injected unchecked) (default: %(default)s)",
    )
    parser.add_argument(
        "--watchdog",
        type=milter._seconds,
        default=5.0,
        metavar="SECONDS",
        help="answer with the fail mode when a decision takes longer; 0 turns it off "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--max-messages",
        type=_positive,
        default=16,
        metavar="N",
        help="messages decided and re-injected at once; one more gets 451 (default: "
        "%(default)s; keep it at or above the filter transport's maxproc in master.cf)",
    )
    parser.add_argument(
        "--max-size",
        type=_positive,
        default=100 * 1024 * 1024,
        metavar="BYTES",
        help="the largest message accepted, above Postfix's message_size_limit "
        "(default: %(default)s)",
    )
    add_service_options(parser, metrics_port=9950, seconds=milter._seconds, in_flight="messages")
    parser.set_defaults(run=_run)


def _address(text: str) -> Tuple[str, int]:
    host, colon, port = text.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"not HOST:PORT: {text!r}")
    return host.strip("[]"), int(port)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"not a positive number: {text!r}")
    return int(text)


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> NoReturn:
    settings = Settings(
        policy_path=args.policy,
        listen=args.listen,
        next_hop=NextHop(
            args.next_hop[0], args.next_hop[1], args.next_hop_timeout, args.next_hop_idle
        ),
        mode=Mode(args.mode),
        fail_mode=FailMode(args.fail_mode),
        watchdog=args.watchdog,
        max_messages=args.max_messages,
        data_size_limit=args.max_size,
        metrics_host=args.metrics_host,
        metrics_port=args.metrics_port,
        drain_timeout=args.drain_timeout,
    )
    run_and_exit(parser, args.log, lambda log: serve(settings, log))
