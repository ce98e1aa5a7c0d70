"""``fromguard serve``: the policy's decision over HTTP, for programs that cannot import
Python (rspamd, Exim, a script), on a unix socket and/or a TCP port of 127.0.0.1.

``POST /check`` with a raw message (or only its header block) as the request body; the
answer is one JSON object: the verdict, the findings with their fields and byte spans,
the shadow addresses, the policy's action and reasons, the reply of a reject, the
header fields tag and warn add (``headers``, and ``header_text`` folded as the policy
folds them) and, with ``?body=1``, the body as the warning rewrote it (base64);
``?format=exim`` gives the scalar parts as Exim's ``${extract}`` reads them instead.
``POST /rewrite`` answers with the message as the policy's warning rewrites it.
``answer`` is what the caller should do: the policy's action, ``accept`` in monitor
mode, ``tempfail`` for a reject with a 4xx reply, and the fail mode when the decision
failed or took longer than ``--timeout`` (``error`` says why). An ``X-Queue-Id`` request
header goes into the log line. A request that is not a check gets a 4xx status and a
JSON ``error``: 404 for another path, 405 for another method, 413 past ``--max-size``,
408 for a body not received within ``--timeout``; the service never stops for one.

The policy file, SIGHUP reload, JSON log lines and Prometheus metrics are the milter's
(``fromguard._service``; the families are ``fromguard_serve_...``).

The server is aiohttp: maintained, in wheels for every platform fromguard supports,
HTTP/1.0 and 1.1 with keep-alive on unix and TCP sockets, and a request size limit of
its own. ``Policy.process`` runs in a thread pool: the core's header check releases the
GIL, so requests are decided on both cores while the event loop reads the next ones.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import concurrent.futures
import functools
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import IO, Any, Dict, List, NamedTuple, NoReturn, Optional, Tuple

from ._errors import Failure
from ._mime import body_start, folded_field
from ._model import MessageCheck
from ._service import (
    Decision,
    FailMode,
    Mode,
    Service,
    StartError,
    add_service_options,
    run_and_exit,
    set_socket_group,
    unix_socket_in_use,
)
from .policy import Outcome, Policy, PolicyError

__all__ = ["Settings", "add_arguments", "exim_format", "report", "serve"]


class Settings(NamedTuple):
    """What ``fromguard serve`` was started with: at least one of ``sockets`` (unix
    socket paths) and ``listen`` ((host, port) pairs)."""

    policy_path: Path
    sockets: Tuple[Path, ...] = ()
    listen: Tuple[Tuple[str, int], ...] = ()
    mode: Mode = Mode.ENFORCE
    fail_mode: FailMode = FailMode.ACCEPT
    timeout: float = 5.0
    max_size: int = 10_240_000
    workers: int = 4
    socket_mode: int = 0o660
    socket_group: Optional[str] = None
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9950
    drain_timeout: float = 30.0


def report(
    decision: Decision,
    check: Optional[MessageCheck],
    mode: Mode,
    raw: bytes,
    with_body: bool,
) -> Dict[str, Any]:
    """The JSON answer for a decision on ``raw`` made on ``check`` (None when it failed):
    spans are byte offsets into ``raw``."""
    outcome = decision.outcome
    answer: Dict[str, Any] = {
        "answer": decision.answer,
        "mode": mode.value,
        "verdict": outcome.verdict.name.lower() if outcome else "unknown",
        "action": outcome.action.name.lower() if outcome else "unknown",
        "reasons": list(outcome.reasons) if outcome else [],
        "reply": _reply(decision),
        "headers": [list(field) for field in outcome.headers] if outcome else [],
        "header_text": "".join(
            folded_field(name, value, b"\n").decode("ascii")
            for name, value in (outcome.headers if outcome else ())
        ),
        "notes": list(outcome.notes) if outcome else [],
        "error": decision.error,
    }
    answer.update(_check_report(check))
    if with_body:
        answer["body"] = None
        if outcome is not None and outcome.message is not raw:
            body = outcome.message[body_start(outcome.message) :]
            answer["body"] = base64.b64encode(body).decode("ascii")
    return answer


def exim_format(answer: Dict[str, Any]) -> str:
    """The answer's scalar parts as ``key="value"`` pairs on one line, the form Exim's
    ``${extract{key}{...}}`` reads (Exim's JSON extraction splits strings at commas):
    ``answer verdict action mode reply`` (one line: code, enhanced code, text), ``headers``
    (the fields folded, LF line ends), ``reasons`` and ``codes`` (space-separated),
    ``error``."""
    reply = answer["reply"]
    values = {
        "answer": answer["answer"],
        "verdict": answer["verdict"],
        "action": answer["action"],
        "mode": answer["mode"],
        "reply": f"{reply['code']} {reply['enhanced']} {reply['text']}" if reply else "",
        "headers": answer["header_text"],
        "reasons": " ".join(answer["reasons"]),
        "codes": " ".join(dict.fromkeys(f["code"] for f in answer["findings"])),
        "error": answer["error"] or "",
    }
    return " ".join(f'{key}="{_exim_quoted(value)}"' for key, value in values.items()) + "\n"


def _exim_quoted(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return escaped.replace("\r", "\\r").replace("\n", "\\n")


def _reply(decision: Decision) -> Optional[Dict[str, Any]]:
    """The reply to give for a reject or tempfail answer (the policy's, or the tempfail
    reply when the decision failed), else the policy's reply of a reject (monitor mode)."""
    reply = decision.reply()
    if reply is None and decision.outcome is not None:
        reply = decision.outcome.smtp_reply
    if reply is None:
        return None
    return {"code": reply.code, "enhanced": reply.enhanced, "text": reply.text}


def _check_report(check: Optional[MessageCheck]) -> Dict[str, Any]:
    """The checked fields, every finding (``field`` is the index of its field, None for
    the header block's own) and every shadow address, spans moved into the message."""
    fields: List[Dict[str, Any]] = []
    findings: List[Dict[str, Any]] = []
    shadows: List[Dict[str, Any]] = []
    if check is not None:
        findings.extend(
            {
                "code": f.code,
                "severity": f.severity.name.lower(),
                "start": f.start,
                "end": f.end,
                "message": f.message,
                "field": None,
            }
            for f in check.findings
        )
        for index, field in enumerate(check.fields):
            result, shift = field.result, field.value_start
            fields.append(
                {
                    "name": field.name,
                    "start": field.start,
                    "end": field.end,
                    "verdict": result.verdict.name.lower(),
                    "address": result.address,
                }
            )
            findings.extend(
                {
                    "code": f.code,
                    "severity": f.severity.name.lower(),
                    "start": f.start + shift,
                    "end": f.end + shift,
                    "message": f.message,
                    "field": index,
                }
                for f in result.findings
            )
            shadows.extend(
                {
                    "address": s.address,
                    "source": s.source,
                    "start": s.start + shift,
                    "end": s.end + shift,
                    "field": index,
                }
                for s in result.shadows
            )
    findings.sort(key=lambda f: (f["start"], f["end"]))
    return {"fields": fields, "findings": findings, "shadows": shadows}


class _Server:
    """The aiohttp application around one ``Service`` and its decision pool."""

    def __init__(self, settings: Settings, service: Service) -> None:
        self.settings = settings
        self.service = service
        self.pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=settings.workers, thread_name_prefix="fromguard-decide"
        )

    async def check(self, request: Any) -> Any:
        from aiohttp import web

        started = time.perf_counter()
        raw = await self._body(request)
        queue_id = request.headers.get("X-Queue-Id")
        metrics = self.service.metrics
        metrics.in_flight.inc()
        try:
            decision, check = await self._decide(raw, queue_id, started)
        finally:
            metrics.in_flight.dec()
        with_body = request.query.get("body", "") in ("1", "yes", "true")
        answer = report(decision, check, self.service.mode, raw, with_body)
        if request.query.get("format") == "exim":
            return web.Response(text=exim_format(answer), content_type="text/plain")
        return web.Response(
            body=json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode(),
            content_type="application/json",
        )

    async def _body(self, request: Any) -> bytes:
        """The request's body, within the size limit and the timeout (else ``_Refused``)."""
        from aiohttp import web

        try:
            return bytes(await asyncio.wait_for(request.read(), self.settings.timeout))
        except asyncio.TimeoutError:
            text = f"the message did not arrive within {self.settings.timeout:g} s"
            raise _Refused(408, text) from None
        except web.HTTPRequestEntityTooLarge:
            raise _Refused(413, f"the message is over {self.settings.max_size} bytes") from None

    async def rewrite(self, request: Any) -> Any:
        """The message as the policy rewrites it (the warning in its body; header fields
        not added: the caller added them when it acted on ``/check``), for a filter that
        passes the whole message through (Exim's transport_filter). 503 when the policy
        could not decide, so that the caller retries rather than delivers unwarned."""
        from aiohttp import web

        raw = await self._body(request)
        work = functools.partial(self.service.policy.process, raw, add_headers=False)
        try:
            future = asyncio.get_running_loop().run_in_executor(self.pool, work)
            outcome = await asyncio.wait_for(future, self.settings.timeout)
        except asyncio.TimeoutError:
            error = f"no decision within {self.settings.timeout:g} s"
        except Exception as failure:
            error = Failure.of(failure).text
        else:
            self.service.log.write(
                "rewrite",
                queue_id=request.headers.get("X-Queue-Id"),
                action=outcome.action.name.lower(),
                notes=list(outcome.notes),
            )
            return web.Response(body=outcome.message, content_type="message/rfc822")
        self.service.log.write("rewrite", queue_id=request.headers.get("X-Queue-Id"), error=error)
        return _error(web, 503, error)

    async def _decide(
        self, raw: bytes, queue_id: Optional[str], started: float
    ) -> Tuple[Decision, Optional[MessageCheck]]:
        """``Policy.process`` on the pool, within the timeout, and the header check it
        decided on (None when it failed); never raises."""
        policy = self.service.policy
        outcome: Optional[Outcome] = None
        check: Optional[MessageCheck] = None
        failure: Optional[Failure] = None
        work = functools.partial(policy.process_with_check, raw, add_headers=False)
        try:
            future = asyncio.get_running_loop().run_in_executor(self.pool, work)
            outcome, check = await asyncio.wait_for(future, self.settings.timeout)
        except asyncio.TimeoutError:
            failure = Failure("timeout", f"no decision within {self.settings.timeout:g} s")
        except Exception as error:  # a bug must not stop the service: the fail mode
            failure = Failure.of(error)
        seconds = time.perf_counter() - started
        return self.service.conclude(outcome, failure, seconds, queue_id), check


class _Refused(Exception):
    """A request answered with a 4xx status and a JSON error."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(status, text)
        self.status = status
        self.text = text


def _error(web: Any, status: int, text: str) -> Any:
    return web.json_response({"error": text}, status=status)


def _application(server: _Server) -> Any:
    from aiohttp import web

    @web.middleware
    async def errors_as_json(request: Any, handler: Any) -> Any:
        # aiohttp answers a wrong path or method with text/plain; callers parse JSON.
        try:
            return await handler(request)
        except _Refused as refused:
            return _error(web, refused.status, refused.text)
        except web.HTTPException as error:
            if error.status < 400:
                raise
            return _error(web, error.status, error.reason)

    app = web.Application(client_max_size=server.settings.max_size, middlewares=[errors_as_json])
    app.router.add_post("/check", server.check)
    app.router.add_post("/rewrite", server.rewrite)
    return app


def serve(settings: Settings, log: IO[str] = sys.stdout) -> int:
    """Run until SIGTERM or SIGINT; returns the exit status (2 when it cannot start: the
    reason is one line on stderr)."""
    try:
        return asyncio.run(_run(settings, log))
    except StartError as error:
        print(f"fromguard serve: {error}", file=sys.stderr)
        return 2


async def _run(settings: Settings, log: IO[str]) -> int:
    try:
        from aiohttp import web
    except ImportError as error:
        raise StartError(
            f"aiohttp is not installed ({error}); install it with: pip install 'fromguard[serve]'"
        ) from None
    if not settings.sockets and not settings.listen:
        raise StartError("nothing to listen on: give --socket PATH or --listen HOST:PORT")
    try:
        policy = Policy.from_toml(settings.policy_path)
    except PolicyError as error:
        raise StartError(f"cannot load the policy: {error}") from None
    service = Service("serve", settings.policy_path, policy, log, settings.mode, settings.fail_mode)
    if settings.metrics_port:
        service.metrics.serve(settings.metrics_host, settings.metrics_port)
    server = _Server(settings, service)
    runner = web.AppRunner(
        _application(server),
        handle_signals=False,
        access_log=None,
        shutdown_timeout=settings.drain_timeout,
    )
    await runner.setup()
    try:
        for path in settings.sockets:
            await _start_unix(web, runner, path, settings, service)
        for host, port in settings.listen:
            try:
                await web.TCPSite(runner, host, port).start()
            except OSError as error:
                raise StartError(
                    f"cannot listen on {host}:{port}: {error.strerror or error}"
                ) from None
    except BaseException:
        await runner.cleanup()
        raise

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    stopped_by: List[str] = []

    def on_stop(signum: signal.Signals) -> None:
        stopped_by.append(signum.name)
        stop.set()

    loop.add_signal_handler(signal.SIGHUP, service.reload)
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_stop, signum)
    service.log_start(
        sockets=[str(path) for path in settings.sockets],
        listen=[f"{host}:{port}" for host, port in settings.listen],
        mode=settings.mode.value,
        fail_mode=settings.fail_mode.value,
        timeout=settings.timeout,
        policy=str(settings.policy_path),
        metrics=f"{settings.metrics_host}:{settings.metrics_port}"
        if settings.metrics_port
        else None,
    )
    await stop.wait()
    service.log.write("stop", signal=stopped_by[0])
    # Stops listening, then waits up to the drain timeout for the requests in flight.
    await runner.cleanup()
    for path in settings.sockets:
        path.unlink(missing_ok=True)
    server.pool.shutdown(wait=False)
    service.log.write("exit")
    return 0


async def _start_unix(
    web: Any, runner: Any, path: Path, settings: Settings, service: Service
) -> None:
    """Listen on a unix socket: a live one (another server) stops the start, a stale one
    is replaced; then its mode and group let the mail programs connect."""
    if unix_socket_in_use(path):
        raise StartError(f"cannot listen on {path}: in use by another process")
    path.unlink(missing_ok=True)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        await web.UnixSite(runner, str(path)).start()
    except OSError as error:
        raise StartError(f"cannot listen on {path}: {error.strerror or error}") from None
    os.chmod(path, settings.socket_mode)
    if settings.socket_group is not None:
        set_socket_group(path, settings.socket_group, service.log)


# -- The command line -----------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``serve`` command's description and options, for ``fromguard.cli``."""
    parser.description = (
        "Serve POST /check: the policy's decision on the message in the "
        "request body, as JSON. Reloads the policy on SIGHUP, drains and exits on SIGTERM. "
        "One JSON line per message on stdout (or --log)."
    )
    parser.add_argument(
        "--policy", type=Path, required=True, metavar="PATH", help="the policy TOML file"
    )
    parser.add_argument(
        "--socket",
        type=Path,
        action="append",
        default=[],
        metavar="PATH",
        help="listen on this unix socket (repeatable)",
    )
    parser.add_argument(
        "--listen",
        type=_host_port,
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="listen on this TCP address, such as 127.0.0.1:8025 (repeatable)",
    )
    parser.add_argument(
        "--mode",
        choices=[m.value for m in Mode],
        default=Mode.ENFORCE.value,
        help="monitor: every answer is accept, the policy's action is logged, counted and "
        "reported as action (default: %(default)s)",
    )
    parser.add_argument(
        "--fail-mode",
        choices=[m.value for m in FailMode],
        default=FailMode.ACCEPT.value,
        help="the answer on an internal error or a timeout (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=5.0,
        metavar="SECONDS",
        help="the longest a request's body may take to arrive, and its decision "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--max-size",
        type=int,
        default=10_240_000,
        metavar="BYTES",
        help="the largest request body; larger ones get 413 (default: %(default)s, "
        "Postfix's message_size_limit)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=4,
        metavar="N",
        help="threads deciding at once (default: %(default)s)",
    )
    parser.add_argument(
        "--socket-mode",
        type=lambda text: int(text, 8),
        default=0o660,
        metavar="OCTAL",
        help="permissions of the unix sockets (default: 660)",
    )
    parser.add_argument(
        "--socket-group",
        metavar="GROUP",
        help="group of the unix sockets, so that the mail program can connect",
    )
    add_service_options(parser, metrics_port=9950, seconds=_seconds, in_flight="requests")
    parser.set_defaults(run=_run_command)


def _host_port(text: str) -> Tuple[str, int]:
    host, _, port = text.rpartition(":")
    try:
        return host.strip("[]") or "127.0.0.1", int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not HOST:PORT: {text!r}") from None


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"not a positive number of seconds: {text!r}")
    return value


def _run_command(parser: argparse.ArgumentParser, args: argparse.Namespace) -> NoReturn:
    settings = Settings(
        policy_path=args.policy,
        sockets=tuple(args.socket),
        listen=tuple(args.listen),
        mode=Mode(args.mode),
        fail_mode=FailMode(args.fail_mode),
        timeout=args.timeout,
        max_size=args.max_size,
        workers=args.workers,
        socket_mode=args.socket_mode,
        socket_group=args.socket_group,
        metrics_host=args.metrics_host,
        metrics_port=args.metrics_port,
        drain_timeout=args.drain_timeout,
    )
    run_and_exit(parser, args.log, lambda log: serve(settings, log))
