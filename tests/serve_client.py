"""``fromguard serve`` in a process of its own, and an HTTP client for it on its unix
socket or its TCP port (for the tests, the rspamd and Exim labs and the benchmark)."""

from __future__ import annotations

import http.client
import json
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from milter_client import RunningProcess, free_port

SHIM = Path(__file__).with_name("serve_shim.py")


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix socket (http.client speaks TCP only)."""

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(str(self.path))


class RunningServe(RunningProcess):
    """``fromguard serve`` through ``serve_shim.py``, on ``serve.sock`` and a free port of
    127.0.0.1, logging to ``serve.log``, both in a directory under ``workdir``: ``home``,
    or a new one (short: a unix socket's path must fit in 108 bytes)."""

    def __init__(
        self, policy: Path, workdir: Path, *options: str, port: int = 0, home: str = ""
    ) -> None:
        # ``home`` names the directory: a server started again there has the same socket.
        directory = workdir / home if home else Path(tempfile.mkdtemp(prefix="", dir=workdir))
        directory.mkdir(exist_ok=True)
        directory.chmod(0o755)  # the mail programs' users reach the socket through it
        self.socket_path = directory / "serve.sock"
        log_path = directory / "serve.log"
        log_path.unlink(missing_ok=True)  # this run's lines only
        self.port = port or free_port()
        metrics_port = free_port()
        command = [
            sys.executable,
            str(SHIM),
            "--policy",
            str(policy),
            "--socket",
            str(self.socket_path),
            "--listen",
            f"127.0.0.1:{self.port}",
            "--metrics-port",
            str(metrics_port),
            "--log",
            str(log_path),
            *options,
        ]
        super().__init__(command, log_path, metrics_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/check"

    def request(self, body: bytes, **options: Any) -> Tuple[int, Dict[str, Any]]:
        """The status and the JSON answer of one request (``options``: ``send``'s)."""
        status, answer = self.send(body, **options)
        return status, json.loads(answer)

    def send(
        self,
        body: bytes,
        *,
        path: str = "/check",
        method: str = "POST",
        headers: Optional[Dict[str, str]] = None,
        unix: bool = True,
    ) -> Tuple[int, bytes]:
        """The status and the body of one request's response."""
        connection: http.client.HTTPConnection = (
            UnixHTTPConnection(self.socket_path)
            if unix
            else http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        )
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()
