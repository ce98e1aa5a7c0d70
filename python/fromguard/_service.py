"""What the long-running integrations share: ``fromguard milter`` and ``fromguard serve``.

The policy in force (loaded from its file, swapped whole on reload), the decision
record (what the integration answers, from the policy's outcome, the mode and the fail
mode), one JSON log line per event and the Prometheus metrics. Each program names its
own metric families (``fromguard_milter_...``, ``fromguard_serve_...``); the families,
labels and log fields are the same.
"""

from __future__ import annotations

import argparse
import datetime
import enum
import grp
import json
import os
import socket
import sys
import threading
from pathlib import Path
from typing import IO, Any, Callable, Dict, NamedTuple, NoReturn, Optional, Union

from ._errors import Failure
from .policy import Action, Outcome, Policy, PolicyError, SmtpReply

__all__ = [
    "Decision",
    "FailMode",
    "JsonLog",
    "Metrics",
    "Mode",
    "Service",
    "StartError",
    "add_service_options",
    "run_and_exit",
    "set_socket_group",
    "unix_socket_in_use",
]

TEMPFAIL_REPLY = SmtpReply(
    451, "4.3.0", "fromguard: the message could not be checked, try again later"
)
"""The reply to a tempfail answer when the policy gave none (the decision failed)."""

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Mode(enum.Enum):
    """``monitor`` logs and counts only; ``enforce`` applies the policy's actions."""

    MONITOR = "monitor"
    ENFORCE = "enforce"


class FailMode(enum.Enum):
    """The answer when the decision failed or took too long."""

    ACCEPT = "accept"
    TEMPFAIL = "tempfail"


class Decision(NamedTuple):
    """What an integration answers for one message: ``answer`` is the action name it
    applies (an ``Action``'s, or ``tempfail``), ``outcome`` the policy's (None when the
    decision failed), ``error`` why it failed."""

    answer: str
    outcome: Optional[Outcome]
    error: Optional[str]

    def reply(self) -> Optional[SmtpReply]:
        """The SMTP reply of a reject or tempfail answer: the policy's, else the
        tempfail reply; None for the other answers."""
        if self.answer not in ("reject", "tempfail"):
            return None
        policy_reply = self.outcome.smtp_reply if self.outcome is not None else None
        return policy_reply or TEMPFAIL_REPLY


class StartError(Exception):
    """Why a service cannot start, in one line for stderr."""


class Metrics:
    """The Prometheus families of one program, in a registry of their own."""

    def __init__(self, program: str) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        prefix = f"fromguard_{program}"
        self.registry = CollectorRegistry()
        self.messages = Counter(
            f"{prefix}_messages",
            f"Messages decided: by verdict, the action the {program} answered with, and the"
            " policy's action (they differ in monitor mode and on failures)",
            ["verdict", "action", "policy_action"],
            registry=self.registry,
        )
        self.findings = Counter(
            f"{prefix}_findings",
            "Findings in the checked header fields, by code",
            ["code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            f"{prefix}_decision_seconds",
            "Time the decision on a message took (at its end, watchdog included)",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            f"{prefix}_errors",
            "Messages answered with the fail mode: kind is internal (a bug in fromguard's"
            " core), error (any other exception) or timeout",
            ["kind"],
            registry=self.registry,
        )
        self.reloads = Counter(
            f"{prefix}_reloads",
            "Policy reloads on SIGHUP, by result (ok or failed)",
            ["result"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            f"{prefix}_messages_in_flight",
            "Messages received in part and not answered yet",
            registry=self.registry,
        )

    def serve(self, host: str, port: int) -> None:
        """Serve the families on http://host:port/metrics (a thread of
        prometheus_client's); a port in use is a ``StartError``."""
        from prometheus_client import start_http_server

        try:
            start_http_server(port, addr=host, registry=self.registry)
        except OSError as error:
            raise StartError(
                f"cannot serve the metrics on {host}:{port}:"
                f" {error.strerror or error} (--metrics-port 0 turns them off)"
            ) from None


class JsonLog:
    """One JSON object per line, written whole under a lock (threads share the stream)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def write(self, event: str, **fields: Any) -> None:
        now = datetime.datetime.now(datetime.timezone.utc)
        record = {"time": now.isoformat(timespec="milliseconds"), "event": event, **fields}
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._lock:
            self._stream.write(line)
            self._stream.flush()


class Service:
    """The policy in force and the record of every decision, for one program
    (``milter`` or ``serve``) in one ``mode`` and ``fail_mode``."""

    def __init__(
        self,
        program: str,
        policy_path: Path,
        policy: Policy,
        log: IO[str],
        mode: Mode,
        fail_mode: FailMode,
    ) -> None:
        self.policy_path = policy_path
        self.policy = policy
        self.mode = mode
        self.fail_mode = fail_mode
        self.metrics = Metrics(program)
        self.log = JsonLog(log)

    def reload(self) -> bool:
        """Load the policy file again; the new policy replaces the old one only if it
        loads (messages being decided finish with the one they started with), and the
        log line says what changed (``Policy.changes``)."""
        path = self.policy_path
        try:
            policy = Policy.from_toml(path)
        except PolicyError as error:
            self.metrics.reloads.labels("failed").inc()
            self.log.write("reload", result="failed", policy=str(path), error=str(error))
            return False
        old, self.policy = self.policy, policy
        self.metrics.reloads.labels("ok").inc()
        self.log.write("reload", result="ok", policy=str(path), changes=old.changes(policy))
        return True

    def conclude(
        self,
        outcome: Optional[Outcome],
        failure: Optional[Failure],
        seconds: float,
        queue_id: Optional[str],
    ) -> Decision:
        """The answer to a decision that gave ``outcome`` or failed (``failure``) after
        ``seconds``: logged and counted."""
        if self.mode is Mode.MONITOR:
            answer = Action.ACCEPT.name.lower()
        elif outcome is None:
            answer = self.fail_mode.value
        elif outcome.action is Action.REJECT and _temporary(outcome):
            answer = "tempfail"
        else:
            answer = outcome.action.name.lower()
        decision = Decision(answer, outcome, failure.text if failure is not None else None)
        self._record(decision, queue_id, failure, seconds)
        return decision

    def _record(
        self,
        decision: Decision,
        queue_id: Optional[str],
        failure: Optional[Failure],
        seconds: float,
    ) -> None:
        outcome = decision.outcome
        verdict = outcome.verdict.name.lower() if outcome is not None else "unknown"
        policy_action = outcome.action.name.lower() if outcome is not None else "unknown"
        self.metrics.latency.observe(seconds)
        self.metrics.messages.labels(verdict, decision.answer, policy_action).inc()
        if failure is not None:
            self.metrics.errors.labels(failure.kind).inc()
        fields: Dict[str, Any] = {
            "queue_id": queue_id,
            "mode": self.mode.value,
            "verdict": verdict,
            "action": decision.answer,
        }
        if outcome is not None:
            for finding in outcome.findings:
                self.metrics.findings.labels(finding.code).inc()
            fields["policy_action"] = policy_action
            fields["reasons"] = list(outcome.reasons)
            fields["findings"] = [
                {
                    "code": f.code,
                    "severity": f.severity.name.lower(),
                    "start": f.start,
                    "end": f.end,
                }
                for f in outcome.findings
            ]
            if outcome.smtp_reply is not None:
                fields["reply"] = str(outcome.smtp_reply)
            if outcome.notes:
                fields["notes"] = list(outcome.notes)
        if decision.error is not None:
            fields["error"] = decision.error
        fields["seconds"] = round(seconds, 6)
        self.log.write("message", **fields)


def _temporary(outcome: Outcome) -> bool:
    """Whether the outcome is a reject with a 4xx reply (a tempfail)."""
    return outcome.smtp_reply is not None and outcome.smtp_reply.code < 500


def unix_socket_in_use(path: Path) -> bool:
    """Whether a process listens on the unix socket ``path`` (it accepts a connection);
    a socket file that refuses is stale, left by a process that ended."""
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def set_socket_group(path: Path, group: str, log: JsonLog) -> None:
    """Give a unix socket the group the mail program is in, so that it can connect; a
    group that does not exist is logged, and the socket keeps its own."""
    try:
        os.chown(path, -1, grp.getgrnam(group).gr_gid)
    except (KeyError, OSError) as error:
        log.write("warning", error=f"socket group {group!r} not set: {error}")


def run_and_exit(
    parser: argparse.ArgumentParser,
    log_path: Optional[Union[str, "os.PathLike[str]"]],
    serve: Callable[[IO[str]], int],
) -> NoReturn:
    """Run ``serve`` with its log on standard output or appended to ``log_path`` (a file
    that cannot be written is a usage error), then end the process with its status at
    once: a decision past its deadline may still run on a pool thread, and libmilter's
    threads hold Python callbacks, which an interpreter shutdown would wait for or run
    half torn down."""
    if log_path is None:
        status = serve(sys.stdout)
    else:
        try:
            out = open(log_path, "a", encoding="utf-8")
        except OSError as error:
            parser.error(f"cannot write {log_path}: {error.strerror or error}")
        with out:
            status = serve(out)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def add_service_options(
    parser: argparse.ArgumentParser,
    *,
    metrics_port: int,
    seconds: Callable[[str], float],
    in_flight: str,
) -> None:
    """The options every service ends with: its metrics (``metrics_port``: the
    service's default port), the SIGTERM drain (``seconds`` reads its value;
    ``in_flight`` names what is waited for) and the log file."""
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=metrics_port,
        metavar="PORT",
        help="Prometheus metrics on http://HOST:PORT/metrics; 0 turns them off "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        metavar="HOST",
        help="(default: %(default)s, loopback only)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=seconds,
        default=30.0,
        metavar="SECONDS",
        help=f"on SIGTERM, how long to wait for {in_flight} in flight (default: %(default)s)",
    )
    parser.add_argument(
        "--log",
        type=Path,
        metavar="PATH",
        help="append the JSON log lines to this file (default: stdout)",
    )
