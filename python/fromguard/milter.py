"""``fromguard milter``: a before-queue milter that applies a policy to every message.

Postfix (``smtpd_milters``, ``non_smtpd_milters``) and Sendmail hand each message to
the milter; it collects the raw header fields and body, runs ``Policy.process`` once at
the end of the message (the Rust core's header check, which releases the GIL, so
connections run in parallel) and answers with milter actions:

- accept: no action, the message passes byte for byte;
- tag: the policy's header fields, inserted at the top of the header block;
- warn: the same fields, and the body replaced by the policy's MIME-aware rewrite;
- quarantine: the message is accepted and held (Postfix's hold queue);
- reject: the policy's SMTP reply; a 5xx code rejects, a 4xx code tempfails.

``--mode monitor`` decides, logs and counts as ``enforce`` does, and leaves every message
untouched: the first stage of a roll-out. Every message gives one JSON log line with
the MTA's queue id (macro ``i``), the verdict, the findings, the reasons and the action.

Robustness: a watchdog answers with the fail mode when a decision takes longer than
``--watchdog`` seconds from the moment one of the ``--workers`` decision threads starts
it (set it below half of Postfix's ``milter_content_timeout``: a message may also wait
as long for a free thread); the late decision keeps its thread, and a new thread takes
its place (``_pool.py``). An error answers with the fail mode too (``accept`` passes the
message unchanged, ``tempfail`` asks the client to retry; in monitor mode always
accept), is logged and counted (kind ``internal`` for a bug in the core,
``fromguard.InternalError``), and the next message goes on as usual.

Signals: SIGHUP reloads the policy file atomically (a policy that fails to load leaves
the old one in force and is logged); SIGTERM or SIGINT stops accepting connections,
keeps serving the connections already open (messages whose header has not arrived
yet included) until they end or ``--drain-timeout`` passes, and exits. The handlers
do nothing: CPython writes each signal's number to a pipe (``signal.set_wakeup_fd``),
which the main thread reads; the signals that arrived while a reload ran give one
reload after it, and a SIGHUP that arrives before a SIGTERM is read first. Every
other thread runs with the three signals blocked (libmilter blocks them in the
threads it starts, ``_pool.py`` in the decision threads). libmilter's ``smfi_main``
also starts a thread that waits for them (``sigwait``, libmilter/signal.c) and stops
the milter on any of them; Linux hands a process's signal to that thread whenever the
main thread has one pending already (a SIGTERM right after a SIGHUP), so the milter
parks that thread for good once it has started (``_park_libmilter_signal_thread``).

Starting: a configuration that cannot work (a policy that does not load, the metrics
port or the milter socket in use, an unknown ``--user``) stops the start before the
first message with one line on stderr and exit status 2. Started as root with
``--user``, the milter binds its sockets, then runs as that user for good
(``examples/systemd/`` starts it as its user directly).

The milter protocol is libmilter's, through pymilter (``pip install 'fromguard[milter]'``;
building it needs libmilter's headers, Debian's ``libmilter-dev``); libmilter runs in a
thread of its own.
"""

from __future__ import annotations

import argparse
import ctypes
import encodings
import functools
import grp
import importlib
import os
import pkgutil
import platform
import pwd
import select
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import IO, Any, FrozenSet, List, NamedTuple, NoReturn, Optional, Set, Tuple

from ._errors import Failure
from ._pool import HANDLED_SIGNALS, DecisionPool, NoDecision, signals_blocked
from ._service import (
    Decision,
    FailMode,
    JsonLog,
    Mode,
    Service,
    StartError,
    add_service_options,
    run_and_exit,
    set_socket_group,
    unix_socket_in_use,
)
from .policy import Outcome, Policy, PolicyError

__all__ = [
    "DEFAULT_SOCKET",
    "Decision",
    "FailMode",
    "Gateway",
    "Mode",
    "Settings",
    "add_arguments",
    "serve",
]

DEFAULT_SOCKET = "unix:/var/spool/postfix/fromguard/fromguard.sock"
"""Inside Postfix's queue directory, where its chrooted smtpd and cleanup find it as
``unix:/fromguard/fromguard.sock`` (and an unchrooted Postfix by its full path)."""

MILTER_NAME = "fromguard"
REPLY_GRACE = 0.2


class Settings(NamedTuple):
    """What ``fromguard milter`` was started with. ``user`` and ``group``: the identity
    to run as once the sockets are bound, when started as root (None: stay as started)."""

    policy_path: Path
    socket: str = DEFAULT_SOCKET
    mode: Mode = Mode.ENFORCE
    fail_mode: FailMode = FailMode.TEMPFAIL
    watchdog: float = 5.0
    socket_mode: int = 0o660
    socket_group: Optional[str] = "postfix"
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9949
    drain_timeout: float = 30.0
    workers: int = 16
    user: Optional[str] = None
    group: Optional[str] = None


class Gateway:
    """The state shared by all connections: the service (the policy in force, the log
    and the metrics), the decision pool and its watchdog, the messages in flight.
    ``program`` names the metrics (``fromguard_<program>_...``): the SMTP filter decides
    with a gateway of its own."""

    def __init__(
        self, settings: Settings, policy: Policy, log: IO[str], program: str = "milter"
    ) -> None:
        self.settings = settings
        self.service = Service(
            program, settings.policy_path, policy, log, settings.mode, settings.fail_mode
        )
        self.metrics = self.service.metrics
        self.log = self.service.log
        self._pool = (
            DecisionPool(settings.workers, "fromguard-decide") if settings.watchdog > 0 else None
        )
        self._in_flight = 0
        self._idle = threading.Condition()

    def reload(self) -> bool:
        """Load the policy file again (``Service.reload``)."""
        return self.service.reload()

    # -- Messages in flight (for the drain) --

    def message_started(self) -> None:
        with self._idle:
            self._in_flight += 1
        self.metrics.in_flight.inc()

    def message_ended(self) -> None:
        with self._idle:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.notify_all()
        self.metrics.in_flight.dec()

    def in_flight(self) -> int:
        """How many messages were received in part and not answered yet."""
        with self._idle:
            return self._in_flight

    def drain(self, timeout: float) -> int:
        """Wait until no message is in flight or ``timeout`` passed; returns how many
        are still in flight."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._in_flight > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._idle.wait(left)
            return self._in_flight

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()

    # -- Deciding --

    def decide(self, raw: bytes, queue_id: Optional[str]) -> Decision:
        """The policy's decision on one message, within the watchdog's time, logged and
        counted. Never raises: a failure is the fail mode."""
        started = time.perf_counter()
        policy = self.service.policy
        outcome: Optional[Outcome] = None
        failure: Optional[Failure] = None
        queued: Optional[float] = None
        try:
            if self._pool is not None:
                work = functools.partial(policy.process, raw, add_headers=False)
                outcome, queued = self._pool.run(work, self.settings.watchdog)
            else:
                outcome = policy.process(raw, add_headers=False)
        except NoDecision as late:
            failure, queued = Failure(late.kind, late.text), late.queued
        except Exception as error:  # a bug must not lose mail: answer the fail mode
            failure = Failure.of(error)
        seconds = time.perf_counter() - started
        return self.service.conclude(outcome, failure, seconds, queue_id, queued=queued)


def _folded(name: str, value: str, space: str) -> str:
    """A field value folded as the policy folds it in a message (lines within 78
    characters), so that the MTA stores the same bytes; ``space`` is the one after the
    colon, when the MTA takes values as they are."""
    from ._mime import folded_field

    field = folded_field(name, value, b"\n").decode("ascii")
    return space + field[len(name) + 2 : -1]


# -- The libmilter side ---------------------------------------------------------------


class _Message:
    """One message of a connection as it arrives: the raw header block and the body."""

    def __init__(self) -> None:
        self.header: List[bytes] = []
        self.body: List[bytes] = []

    def raw(self) -> Tuple[bytes, int]:
        """The message as one byte string, CRLF line ends, and where its body starts."""
        header = b"".join(self.header) + b"\r\n"
        return header + b"".join(self.body), len(header)


class _OpenConnections:
    """The MTA connections from negotiation to close: the drain waits for them, since a
    connection whose message has not reached its header yet is in progress too. Once
    ``refuse_new`` is called, a new connection is refused at its negotiation."""

    def __init__(self) -> None:
        self._count = 0
        self._refusing = False
        self._lock = threading.Lock()

    def opened(self) -> bool:
        """Count a new connection; False (not counted) when new ones are refused."""
        with self._lock:
            if self._refusing:
                return False
            self._count += 1
            return True

    def closed(self) -> None:
        with self._lock:
            self._count -= 1

    def refuse_new(self) -> None:
        with self._lock:
            self._refusing = True

    def count(self) -> int:
        with self._lock:
            return self._count


class _Connection:
    """The milter's state for one MTA connection (libmilter's context private data)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.message: Optional[_Message] = None
        self.no_reply = 0  # the protocol's SMFIP_NR_* bits the MTA agreed to
        self.leading_space = False  # header values are sent and taken as they are

    def current(self) -> _Message:
        if self.message is None:
            self.message = _Message()
            self.gateway.message_started()
        return self.message

    def finish(self) -> None:
        if self.message is not None:
            self.message = None
            self.gateway.message_ended()


def _protocol(milter: Any) -> Tuple[int, int, int]:
    """What the milter negotiates: the actions it uses, the protocol steps it asks the
    MTA to skip, and the steps it sends no reply to."""
    actions = milter.ADDHDRS | milter.CHGBODY | milter.QUARANTINE
    skip = (
        milter.P_NOCONNECT
        | milter.P_NOHELO
        | milter.P_NOMAIL
        | milter.P_NORCPT
        | milter.P_NODATA
        | milter.P_NOUNKNOWN
        | milter.P_NOEOH
    )
    no_reply = milter.P_NR_HDR | milter.P_NR_BODY
    return actions, skip, no_reply


def _install(milter: Any, gateway: Gateway, connections: _OpenConnections) -> None:
    """Register the callbacks with libmilter (process-wide, as libmilter is); count the
    connections in ``connections``."""
    actions, skip, no_reply = _protocol(milter)

    def negotiate(ctx: Any, options: List[int]) -> int:
        if not connections.opened():  # draining: the MTA applies its default_action
            return int(milter.REJECT)
        offered_actions, offered_steps = options[0], options[1]
        connection = _Connection(gateway)
        # Header values with their leading white space, so the raw field is rebuilt
        # exactly; steps we do not need skipped; no reply per header or body chunk. An
        # action the MTA does not offer fails when used: logged, and the fail mode.
        wanted = milter.P_HDR_LEADSPC | skip | no_reply
        options[0] = offered_actions & actions
        options[1] = offered_steps & wanted
        options[2] = options[3] = 0
        connection.no_reply = options[1] & no_reply
        connection.leading_space = bool(options[1] & milter.P_HDR_LEADSPC)
        ctx.setpriv(connection)
        return int(milter.CONTINUE)

    def header(ctx: Any, name: Any, value: bytes) -> int:
        connection: _Connection = ctx.getpriv()
        field_name = name.encode("utf-8", "surrogateescape") if isinstance(name, str) else name
        # Folded lines come joined by LF (Postfix) or CRLF; the message gets CRLF throughout.
        field = field_name + b":" + value.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        connection.current().header.append(field + b"\r\n")
        return int(milter.NOREPLY if connection.no_reply & milter.P_NR_HDR else milter.CONTINUE)

    def body(ctx: Any, chunk: bytes) -> int:
        connection: _Connection = ctx.getpriv()
        connection.current().body.append(bytes(chunk))
        return int(milter.NOREPLY if connection.no_reply & milter.P_NR_BODY else milter.CONTINUE)

    def eom(ctx: Any) -> int:
        connection: _Connection = ctx.getpriv()
        message = connection.current()
        try:
            answer, size = _end_of_message(milter, ctx, connection, message)
        finally:
            connection.finish()
        del message  # the message's last reference: its bytes are freed here
        if size >= GIVE_BACK_AFTER:
            _give_back_memory()
        return answer

    def abort(ctx: Any) -> int:
        connection: Optional[_Connection] = ctx.getpriv()
        if connection is not None:
            connection.finish()
        return int(milter.CONTINUE)

    def close(ctx: Any) -> int:
        # libmilter calls close on every connection's end; one that ended before its
        # negotiation (a probe, the stop's nudge) has no state and was not counted.
        if ctx.getpriv() is not None:
            abort(ctx)
            ctx.setpriv(None)
            connections.closed()
        return int(milter.CONTINUE)

    # Last resort, should a callback raise anyway (the log cannot be written, say):
    # pymilter answers with this instead of its default, tempfail.
    fail_open = (
        gateway.settings.fail_mode is FailMode.ACCEPT or gateway.settings.mode is Mode.MONITOR
    )
    milter.set_exception_policy(milter.CONTINUE if fail_open else milter.TEMPFAIL)
    milter.set_flags(actions)
    milter.set_header_callback(header)
    milter.set_body_callback(body)
    milter.set_eom_callback(eom)
    milter.set_abort_callback(abort)
    milter.set_close_callback(close)
    milter.register(MILTER_NAME, negotiate=negotiate)


def _end_of_message(
    milter: Any, ctx: Any, connection: _Connection, message: _Message
) -> Tuple[int, int]:
    """Decide on the message and apply the decision: the reply code, and the message's
    size (what it needed is freed once this returns)."""
    raw, body_start = message.raw()
    queue_id = ctx.getsymval("i")
    decision = connection.gateway.decide(raw, queue_id)
    return _apply(milter, ctx, connection, decision, raw, body_start, queue_id), len(raw)


GIVE_BACK_AFTER = 1 << 20
"""The size of a message past which its memory is given back to the system once it is
answered, and of the allocations glibc maps on their own (``_map_large_allocations``).
glibc keeps what a thread freed in that thread's arena: 16 messages of 9 MB at once
left the milter at 361 MiB resident for good (37 MiB before; 35.5 MiB with both)."""

M_MMAP_THRESHOLD = -3  # glibc's malloc.h


@functools.lru_cache(maxsize=None)
def _glibc(name: str) -> Optional[Any]:
    """A function of glibc's allocator, or None (another C library)."""
    return getattr(ctypes.CDLL(None), name, None)


def _map_large_allocations() -> None:
    """Have glibc map every allocation of ``GIVE_BACK_AFTER`` bytes or more on its own,
    and unmap it when freed: by default the threshold rises to the largest block freed
    so far, and after one large message the next ones come from the arenas."""
    mallopt = _glibc("mallopt")
    if mallopt is not None:
        mallopt(M_MMAP_THRESHOLD, GIVE_BACK_AFTER)


def _give_back_memory() -> None:
    """Return the free memory of every arena to the system (``malloc_trim``): a large
    message arrives in chunks of 64 KiB, below the threshold."""
    trim = _glibc("malloc_trim")
    if trim is not None:
        trim(0)


def _apply(
    milter: Any,
    ctx: Any,
    connection: _Connection,
    decision: Decision,
    raw: bytes,
    body_start: int,
    queue_id: Optional[str],
) -> int:
    """Turn a decision into milter actions and the reply code. A failure to apply one
    (the MTA refused it) is answered with the fail mode and logged."""
    gateway = connection.gateway
    outcome = decision.outcome
    # With SMFIP_HDR_LEADSPC the MTA stores a value as given: the space after the colon
    # is ours to send.
    space = " " if connection.leading_space else ""
    try:
        if decision.answer in ("tag", "warn") and outcome is not None:
            # Each insert goes to the top: inserting in reverse keeps the policy's order.
            for name, value in reversed(outcome.headers):
                ctx.addheader(name, _folded(name, value, space), 0)
            if decision.answer == "warn" and outcome.message is not raw:
                ctx.replacebody(outcome.message[body_start:])
            return int(milter.CONTINUE)
        if decision.answer == "quarantine" and outcome is not None:
            # Postfix logs the reason; reasons are printable ASCII (the policy checks rule names).
            ctx.quarantine(f"fromguard: {' '.join(outcome.reasons)}")
            return int(milter.CONTINUE)
        reply = decision.reply()
        if reply is not None:
            # Postfix and Sendmail read the text as a format: "%%" is how "%" arrives.
            ctx.setreply(str(reply.code), reply.enhanced, reply.text.replace("%", "%%"))
            return int(milter.REJECT if reply.code >= 500 else milter.TEMPFAIL)
        return int(milter.CONTINUE)
    except Exception as error:
        failure = Failure.of(error)
        gateway.metrics.errors.labels(failure.kind).inc()
        gateway.log.write(
            "error",
            queue_id=queue_id,
            action=decision.answer,
            error=f"applying the action failed: {failure.text}",
        )
        if (
            gateway.settings.fail_mode is FailMode.TEMPFAIL
            and gateway.settings.mode is Mode.ENFORCE
        ):
            return int(milter.TEMPFAIL)
        return int(milter.CONTINUE)


# -- Running --------------------------------------------------------------------------


def _prepare_socket(spec: str) -> Optional[Path]:
    """The unix socket's path (its directory created), or None for inet."""
    if not spec.startswith(("unix:", "local:")):
        return None
    path = Path(spec.split(":", 1)[1])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        reason = _reason(error)
        raise StartError(f"cannot create the socket's directory {path.parent}: {reason}") from None
    return path


def _open_up(path: Path, settings: Settings, owner: Optional[_Identity], log: JsonLog) -> None:
    """Let the MTA connect: the socket's mode, and its group (Postfix's) when it exists;
    its owner is the identity the milter is about to take, if any."""
    os.chmod(path, settings.socket_mode)
    if owner is not None:
        os.chown(path, owner.uid, owner.gid)
    if settings.socket_group is not None:
        set_socket_group(path, settings.socket_group, log)


class _Identity(NamedTuple):
    """A user to run as: its name (for its supplementary groups), uid and gid."""

    name: str
    uid: int
    gid: int


def _identity(user: Optional[str], group: Optional[str]) -> Optional[_Identity]:
    """The identity ``--user`` and ``--group`` name (the group defaults to the user's
    own), looked up before anything is bound so that a typo costs nothing."""
    if user is None:
        if group is not None:
            raise StartError("--group needs --user")
        return None
    if os.geteuid() != 0:
        raise StartError(f"--user needs root to switch to (running as uid {os.geteuid()})")
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise StartError(f"no such user: {user!r}") from None
    gid = entry.pw_gid
    if group is not None:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise StartError(f"no such group: {group!r}") from None
    return _Identity(entry.pw_name, entry.pw_uid, gid)


def _become(identity: _Identity) -> None:
    """Give up root for good: the user's supplementary groups, its group, its uid (in
    this order: each step needs the rights the next one drops). glibc applies them to
    every thread of the process, the metrics server's too."""
    os.initgroups(identity.name, identity.gid)
    os.setgid(identity.gid)
    os.setuid(identity.uid)


def _listen_problem(spec: str) -> Optional[str]:
    """Why the milter socket ``spec`` cannot be listened on, if a probe can tell (libmilter
    only says "cannot opensocket"). A unix socket that accepts a connection belongs to a
    running process (another milter): libmilter would delete it and take its place. One
    that refuses is stale and libmilter replaces it."""
    kind, _, address = spec.partition(":")
    if kind in ("unix", "local"):
        if not unix_socket_in_use(Path(address)):
            return None
        return "in use: another process is listening on it (a milter already running?)"
    if kind in ("inet", "inet6"):
        port, _, host = address.partition("@")
        family = socket.AF_INET6 if kind == "inet6" else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                # as libmilter binds: connections in TIME_WAIT do not count
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind((host.strip("[]"), int(port)))
        except (OSError, ValueError) as error:
            return _reason(error)
    return None


def _reason(error: Exception) -> str:
    return (error.strerror if isinstance(error, OSError) else None) or str(error)


def _no_delay(log: JsonLog) -> None:
    """Set TCP_NODELAY on libmilter's listening socket, which Linux passes on to every
    connection it accepts. libmilter does not set it, and then Nagle's algorithm holds
    back the milter's small replies: about 80 ms a message, five times slower than a
    unix socket. libmilter does not expose the socket, so it is found among ours."""
    found = False
    for name in os.listdir("/proc/self/fd"):
        try:
            candidate = socket.socket(fileno=int(name))
        except (OSError, ValueError):
            continue  # not a socket
        try:
            if candidate.family in (socket.AF_INET, socket.AF_INET6) and _listening(candidate):
                candidate.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                found = True
        except OSError:
            pass
        finally:
            candidate.detach()  # the descriptor stays libmilter's
    if not found:
        log.write("warning", error="TCP_NODELAY not set: libmilter's socket was not found")


def _listening(candidate: socket.socket) -> bool:
    return bool(candidate.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))


def serve(settings: Settings, log: IO[str] = sys.stdout) -> int:
    """Run the milter until SIGTERM or SIGINT; returns the exit status (2 when it cannot
    start: the reason is one line on stderr)."""
    # First: a signal during the start waits in the pipe (a SIGHUP would end the process).
    signals = _SignalPipe()
    connections = _OpenConnections()
    try:
        gateway, milter = _start(settings, log, connections)
    except StartError as error:
        print(f"fromguard milter: {error}", file=sys.stderr)
        return 2
    return _run_until_stopped(gateway, milter, signals, connections)


def _start(settings: Settings, log: IO[str], connections: _OpenConnections) -> Tuple[Gateway, Any]:
    """Load the policy, bind the metrics port and the milter socket, then give up root
    if asked: everything that can fail on a bad configuration fails here, before the
    first message."""
    try:
        import milter
    except ImportError as error:
        raise StartError(
            f"pymilter is not installed ({error}); install it with: pip install 'fromguard[milter]'"
        ) from None
    try:
        policy = Policy.from_toml(settings.policy_path)
    except PolicyError as error:
        raise StartError(f"cannot load the policy: {error}") from None
    identity = _identity(settings.user, settings.group)
    _map_large_allocations()

    gateway = Gateway(settings, policy, log)
    if settings.metrics_port:
        with signals_blocked():  # the metrics server's thread
            gateway.metrics.serve(settings.metrics_host, settings.metrics_port)
    problem = _listen_problem(settings.socket)
    if problem is not None:
        raise StartError(f"cannot listen on {settings.socket}: {problem}")
    socket_path = _prepare_socket(settings.socket)
    _install(milter, gateway, connections)
    milter.setconn(settings.socket)
    try:
        milter.opensocket(True)
    except milter.error as error:
        raise StartError(f"cannot listen on {settings.socket}: {error}") from None
    if socket_path is not None:
        _open_up(socket_path, settings, identity, gateway.log)
    else:
        _no_delay(gateway.log)
    if identity is not None:
        _load_lazy_imports()
        try:
            _become(identity)
        except OSError as error:
            raise StartError(f"cannot run as {identity.name}: {_reason(error)}") from None
    return gateway, milter


def _load_lazy_imports() -> None:
    """Import now, as root, what deciding imports on first use: the MIME rewrite and every
    codec (a text part may name any charset). The user may not be able to read Python's
    files (an interpreter under root's home): a warning would then fail on each message."""
    importlib.import_module("fromguard._mime")
    for codec in pkgutil.iter_modules(encodings.__path__):
        try:
            importlib.import_module(f"encodings.{codec.name}")
        except ImportError:
            pass  # Windows' codecs (mbcs, oem)


class _SignalPipe:
    """SIGHUP, SIGTERM and SIGINT as bytes on a pipe: CPython's C-level handler writes
    each signal's number (``signal.set_wakeup_fd``), the Python-level handlers do
    nothing (a handler that takes a lock deadlocks when a second signal interrupts the
    first one's), and the main thread reads the pipe (``wait``)."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        for end in (self._read, self._write):
            os.set_blocking(end, False)
        signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        for signum in HANDLED_SIGNALS:
            signal.signal(signum, _noted)

    def wake(self) -> None:
        """Wake ``wait`` without a signal (libmilter's listener ended)."""
        try:
            os.write(self._write, b"\0")
        except BlockingIOError:
            pass  # full: the reader wakes anyway

    def wait(self, timeout: float) -> FrozenSet[int]:
        """The signals that arrived, once some did or ``timeout`` passed; the same
        signal arrived many times is one."""
        select.select([self._read], [], [], timeout)
        received: Set[int] = set()
        while True:
            try:
                chunk = os.read(self._read, 4096)
            except BlockingIOError:
                break
            received.update(chunk)
            if len(chunk) < 4096:
                break
        received.discard(0)
        return frozenset(received)


def _noted(signum: int, frame: Optional[FrameType]) -> None:
    """The Python-level handler: the C-level one has written the signal to the pipe."""


STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})
DRAIN_POLL = 0.05
"""Seconds between two looks at the open connections while draining."""


def _run_until_stopped(
    gateway: Gateway, milter: Any, signals: _SignalPipe, connections: _OpenConnections
) -> int:
    """Serve on libmilter's thread; this one handles the signals (see the module's doc)."""
    settings = gateway.settings

    def run() -> None:
        try:
            milter.main()
        except milter.error as error:
            gateway.log.write("error", error=f"libmilter stopped: {error}")
        finally:
            signals.wake()

    listener = threading.Thread(target=run, name="libmilter", daemon=True)
    threads_before = _thread_ids()
    with signals_blocked():
        listener.start()
    parked = _park_libmilter_signal_thread(threads_before)
    gateway.service.log_start(
        socket=settings.socket,
        mode=settings.mode.value,
        fail_mode=settings.fail_mode.value,
        watchdog=settings.watchdog,
        workers=settings.workers,
        policy=str(settings.policy_path),
        metrics=f"{settings.metrics_host}:{settings.metrics_port}"
        if settings.metrics_port
        else None,
        uid=os.getuid(),
        gid=os.getgid(),
        libmilter_signal_thread=parked,
    )
    stopping = False
    while listener.is_alive() and not stopping:
        received = signals.wait(5.0)
        if signal.SIGHUP in received:  # first: a SIGHUP before a SIGTERM is a reload
            gateway.reload()
        if received & STOP_SIGNALS:
            stopping = True
            gateway.log.write("stop", signal=signal.Signals(min(received & STOP_SIGNALS)).name)
            _stop_accepting(settings.socket, connections, gateway.log)
    # The connections already open are served on to their end: a message may be on its
    # way (its header not arrived yet), and the MTA sends another on the same connection.
    # libmilter is not stopped (smfi_stop): its pool of workers would stop serving them.
    deadline = time.monotonic() + settings.drain_timeout
    while connections.count() > 0 and time.monotonic() < deadline:
        if signal.SIGHUP in signals.wait(DRAIN_POLL):
            gateway.reload()
    left = connections.count()
    if left:
        # A message counts as answered when its callback returns; libmilter writes the
        # reply just after that, and the process must not end in between.
        time.sleep(REPLY_GRACE)
    gateway.log.write("exit", connections=left, in_flight=gateway.in_flight())
    gateway.close()
    return 0 if stopping and left == 0 else 1


def _stop_accepting(spec: str, connections: _OpenConnections, log: JsonLog) -> None:
    """No new connection from now on: a unix socket's file goes (a connection fails as
    to a stopped milter), and a connection that gets through anyway (TCP, or one
    waiting to be accepted) is refused at its negotiation."""
    connections.refuse_new()
    kind, _, address = spec.partition(":")
    if kind in ("unix", "local"):
        try:
            os.unlink(address)
        except FileNotFoundError:
            pass
        except OSError as error:  # its directory is not the milter's to write
            log.write("warning", error=f"socket {address} not removed: {_reason(error)}")


def _thread_ids() -> Set[int]:
    """The kernel's ids of this process's threads (Linux), else none."""
    try:
        return {int(name) for name in os.listdir("/proc/self/task")}
    except OSError:
        return set()


def _blocks_sighup(thread_id: int) -> Optional[bool]:
    """Whether the thread blocks SIGHUP now (None: it has ended). A thread waiting in
    sigwait has the signals it waits for unblocked while it waits."""
    try:
        with open(f"/proc/self/task/{thread_id}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("SigBlk:"):
                    return bool(int(line.split()[1], 16) >> (signal.SIGHUP - 1) & 1)
    except OSError:
        pass
    return None


class _SigAction(ctypes.Structure):
    """glibc's ``struct sigaction`` on x86-64 and AArch64 Linux."""

    _fields_ = [
        ("handler", ctypes.c_void_p),
        ("mask", ctypes.c_ulong * 16),
        ("flags", ctypes.c_int),
        ("restorer", ctypes.c_void_p),
    ]


def _park_libmilter_signal_thread(threads_before: Set[int]) -> str:
    """Park libmilter's signal thread for good, once ``smfi_main`` has started it: a
    signal of its own runs ``pause`` as its handler, with every signal blocked, so the
    thread never returns to its ``sigwait`` and never takes a signal again. It is the
    one thread started since ``threads_before`` that does not block SIGHUP (every other
    thread is started with it blocked). Returns what was done, for the start's log line."""
    if not sys.platform.startswith("linux") or platform.machine() not in ("x86_64", "aarch64"):
        return f"not parked: not on x86-64 or AArch64 Linux ({sys.platform} {platform.machine()})"
    deadline = time.monotonic() + 5
    while True:
        waiting = [
            thread
            for thread in sorted(_thread_ids() - threads_before)
            if _blocks_sighup(thread) is False
        ]
        if len(waiting) == 1:
            break
        if len(waiting) > 1 or time.monotonic() > deadline:
            return f"not parked: {len(waiting)} threads of libmilter's wait for SIGHUP"
        time.sleep(0.005)
    (thread,) = waiting
    park_signal = signal.SIGRTMAX  # its handler is set only meanwhile (Linux has it)
    libc = ctypes.CDLL(None, use_errno=True)
    park = _SigAction()
    park.handler = ctypes.cast(libc.pause, ctypes.c_void_p).value
    libc.sigfillset(ctypes.byref(park.mask))
    previous = _SigAction()
    if libc.sigaction(park_signal, ctypes.byref(park), ctypes.byref(previous)) != 0:
        return f"not parked: sigaction: {os.strerror(ctypes.get_errno())}"
    try:
        if libc.tgkill(os.getpid(), thread, park_signal) != 0:
            return f"not parked: tgkill: {os.strerror(ctypes.get_errno())}"
        while _blocks_sighup(thread) is False:  # in the handler: every signal blocked
            if time.monotonic() > deadline:
                return "not parked: the thread did not take the signal"
            time.sleep(0.001)
    finally:
        libc.sigaction(park_signal, ctypes.byref(previous), None)
    return "parked"


# -- The command line -----------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``milter`` command's description and options, for ``fromguard.cli``."""
    parser.description = (
        "Run a before-queue milter: every message the MTA passes gets the "
        "policy's action (accept, tag, warn, quarantine, reject or tempfail). Reloads the "
        "policy on SIGHUP, drains and exits on SIGTERM. One JSON line per message on "
        "stdout (or --log)."
    )
    parser.add_argument(
        "--policy", type=Path, required=True, metavar="PATH", help="the policy TOML file"
    )
    parser.add_argument(
        "--socket",
        default=DEFAULT_SOCKET,
        help="unix:PATH or inet:PORT@HOST (default: %(default)s; a unix socket is several "
        "times faster than TCP with libmilter)",
    )
    parser.add_argument(
        "--mode",
        choices=[m.value for m in Mode],
        default=Mode.ENFORCE.value,
        help="monitor: log and count only, every message untouched (default: %(default)s)",
    )
    parser.add_argument(
        "--fail-mode",
        choices=[m.value for m in FailMode],
        default=FailMode.TEMPFAIL.value,
        help="the answer on an internal error or when the watchdog fires (default: %(default)s)",
    )
    parser.add_argument(
        "--watchdog",
        type=_seconds,
        default=5.0,
        metavar="SECONDS",
        help="answer with the fail mode when a decision takes longer from its start (a "
        "message also waits at most as long for a decision thread); keep it below half of "
        "Postfix's milter_content_timeout; 0 turns it off (default: %(default)s)",
    )
    parser.add_argument(
        "--workers",
        type=_positive,
        default=16,
        metavar="N",
        help="decision threads; one whose decision runs past the watchdog is replaced "
        "(at most 4N at once) (default: %(default)s)",
    )
    parser.add_argument(
        "--socket-mode",
        type=_octal,
        default=0o660,
        metavar="OCTAL",
        help="permissions of the unix socket (default: 660)",
    )
    parser.add_argument(
        "--socket-group",
        default="postfix",
        metavar="GROUP",
        help="group of the unix socket, so that the MTA can connect (default: %(default)s)",
    )
    parser.add_argument(
        "--user",
        metavar="USER",
        help="started as root: bind the sockets, then run as this user (and its groups)",
    )
    parser.add_argument(
        "--group",
        metavar="GROUP",
        help="with --user: run with this group instead of the user's own",
    )
    add_service_options(parser, metrics_port=9949, seconds=_seconds, in_flight="messages")
    parser.set_defaults(run=_run)


def _octal(text: str) -> int:
    try:
        return int(text, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an octal mode: {text!r}") from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a positive number: {text!r}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}")
    return value


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> NoReturn:
    settings = Settings(
        policy_path=args.policy,
        socket=args.socket,
        mode=Mode(args.mode),
        fail_mode=FailMode(args.fail_mode),
        watchdog=args.watchdog,
        socket_mode=args.socket_mode,
        socket_group=args.socket_group or None,
        metrics_host=args.metrics_host,
        metrics_port=args.metrics_port,
        drain_timeout=args.drain_timeout,
        workers=args.workers,
        user=args.user,
        group=args.group,
    )
    run_and_exit(parser, args.log, lambda log: serve(settings, log))
