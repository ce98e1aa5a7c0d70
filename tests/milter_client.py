"""The MTA side of the milter protocol (version 6, as Postfix and Sendmail speak it),
enough to drive a milter in tests without an MTA: option negotiation, macros, the
message steps the milter did not skip, and every reply and modification it sends.

Written from the protocol as libmilter implements it (include/libmilter/mfdef.h): each
packet is a 4-byte big-endian length, a command byte and its data.
"""

from __future__ import annotations

import json
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

VERSION = 6

# Actions the MTA offers (SMFIF_*) and protocol steps (SMFIP_*).
ACTIONS_ALL = 0x1FF
P_NOCONNECT, P_NOHELO, P_NOMAIL, P_NORCPT = 0x1, 0x2, 0x4, 0x8
P_NOBODY, P_NOHDRS, P_NOEOH, P_NR_HDR = 0x10, 0x20, 0x40, 0x80
P_NOUNKNOWN, P_NODATA = 0x100, 0x200
P_NR_CONN, P_NR_HELO, P_NR_MAIL, P_NR_RCPT = 0x1000, 0x2000, 0x4000, 0x8000
P_NR_DATA, P_NR_EOH, P_NR_BODY, P_HDR_LEADSPC = 0x10000, 0x40000, 0x80000, 0x100000
PROTOCOL_ALL = 0x1FFFFF

# Replies that end a step; the others are modifications sent before the final one.
FINAL = {b"a": "accept", b"c": "continue", b"r": "reject", b"t": "tempfail", b"d": "discard"}


class Reply(NamedTuple):
    """The milter's answer to the end of a message: the final reply (``accept``,
    ``continue``, ``reject``, ``tempfail``, ``discard`` or ``replycode``), the reply
    text of a ``replycode``, and the modifications in the order they came."""

    final: str
    reply_text: Optional[str]
    inserted: Tuple[Tuple[int, str, str], ...]  # (index, name, value)
    appended: Tuple[Tuple[str, str], ...]
    body: Optional[bytes]  # the replaced body, all chunks joined
    quarantine: Optional[str]


class MilterClient:
    """One MTA connection to a milter: ``address`` is a unix socket's path or a TCP
    (host, port)."""

    def __init__(
        self,
        address: Union[str, Tuple[str, int]],
        timeout: float = 10.0,
        actions: int = ACTIONS_ALL,
    ) -> None:
        family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(address)
        self._send(b"O", struct.pack(">III", VERSION, actions, PROTOCOL_ALL))
        command, data = self._read()
        assert command == b"O", command
        self.version, self.actions, self.protocol = struct.unpack(">III", data[:12])

    def close(self) -> None:
        try:
            self._send(b"Q", b"")
        finally:
            self.sock.close()

    def __enter__(self) -> MilterClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- Packets --

    def _send(self, command: bytes, data: bytes) -> None:
        self.sock.sendall(struct.pack(">I", len(data) + 1) + command + data)

    def _read(self) -> Tuple[bytes, bytes]:
        (length,) = struct.unpack(">I", self._exactly(4))
        packet = self._exactly(length)
        return packet[:1], packet[1:]

    def _exactly(self, size: int) -> bytes:
        chunks: List[bytes] = []
        while size:
            chunk = self.sock.recv(size)
            if not chunk:
                raise ConnectionError("the milter closed the connection")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def _step(self, command: bytes, data: bytes, skip: int, no_reply: int) -> Optional[str]:
        """Send one step unless the milter skips it; read its reply unless it said it
        sends none. Returns the reply (None when there was none)."""
        if self.protocol & skip:
            return None
        self._send(command, data)
        if self.protocol & no_reply:
            return None
        reply, _ = self._read()
        return FINAL[reply]

    def macros(self, step: bytes, values: Sequence[Tuple[str, str]]) -> None:
        data = b"".join(name.encode() + b"\0" + value.encode() + b"\0" for name, value in values)
        self._send(b"D", step + data)

    # -- A message --

    def send(
        self,
        header: Sequence[Tuple[bytes, bytes]],
        body: bytes,
        queue_id: str = "TESTQID",
        chunk: int = 65535,
    ) -> Reply:
        """One message: ``header`` as (name, value) where value is what follows the
        colon, leading white space and folds included (the milter asked for that or
        gets it stripped, as libmilter does), then ``body`` in chunks."""
        self.send_header(header, queue_id)
        return self.send_body(body, queue_id, chunk)

    def send_header(self, header: Sequence[Tuple[bytes, bytes]], queue_id: str) -> None:
        """The first half of ``send``: the envelope and the header fields."""
        self._step(b"C", b"mta.example\0" + b"4" + struct.pack(">H", 25) + b"127.0.0.1\0",
                   P_NOCONNECT, P_NR_CONN)  # fmt: skip
        self._step(b"H", b"client.example\0", P_NOHELO, P_NR_HELO)
        self._step(b"M", b"<sender@example.org>\0", P_NOMAIL, P_NR_MAIL)
        self._step(b"R", b"<rcpt@example.net>\0", P_NORCPT, P_NR_RCPT)
        self.macros(b"T", [("i", queue_id)])
        self._step(b"T", b"", P_NODATA, P_NR_DATA)
        for name, value in header:
            if not self.protocol & P_HDR_LEADSPC:
                value = value.lstrip(b" \t")
            self._step(b"L", name + b"\0" + value + b"\0", P_NOHDRS, P_NR_HDR)

    def send_body(self, body: bytes, queue_id: str, chunk: int = 65535) -> Reply:
        """The second half of ``send``: the end of the header, the body, the end of the
        message, and the milter's answer."""
        self.macros(b"N", [("i", queue_id)])
        self._step(b"N", b"", P_NOEOH, P_NR_EOH)
        for start in range(0, len(body), chunk):
            self._step(b"B", body[start : start + chunk], P_NOBODY, P_NR_BODY)
        self.macros(b"E", [("i", queue_id)])
        self._send(b"E", b"")
        return self._end_of_message()

    def _end_of_message(self) -> Reply:
        inserted: List[Tuple[int, str, str]] = []
        appended: List[Tuple[str, str]] = []
        body: Optional[List[bytes]] = None
        quarantine: Optional[str] = None
        while True:
            command, data = self._read()
            if command in FINAL:
                final, text = FINAL[command], None
                break
            if command == b"y":
                final, text = "replycode", data.rstrip(b"\0").decode()
                break
            if command == b"i":
                (index,) = struct.unpack(">I", data[:4])
                name, value = data[4:].rstrip(b"\0").split(b"\0")
                inserted.append((index, name.decode(), value.decode()))
            elif command == b"h":
                name, value = data.rstrip(b"\0").split(b"\0")
                appended.append((name.decode(), value.decode()))
            elif command == b"b":
                body = (body or []) + [data]
            elif command == b"q":
                quarantine = data.rstrip(b"\0").decode()
            elif command != b"p":  # progress: the milter asks for more time
                raise AssertionError(f"unexpected milter reply {command!r}")
        joined = None if body is None else b"".join(body)
        return Reply(final, text, tuple(inserted), tuple(appended), joined, quarantine)


def split_message(raw: bytes) -> Tuple[List[Tuple[bytes, bytes]], bytes]:
    """A CRLF message as the MTA hands it over: header fields (name, value after the
    colon, folds kept as CRLF) and the body."""
    head, _, body = raw.partition(b"\r\n\r\n")
    fields: List[Tuple[bytes, bytes]] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + b"\r\n" + line)
        else:
            name, _, value = line.partition(b":")
            fields.append((name, value))
    return fields, body


# -- A milter process -----------------------------------------------------------------

SHIM = Path(__file__).with_name("milter_shim.py")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (for the metrics endpoint)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RunningProcess:
    """A fromguard command in a process of its own that logs JSON lines to ``log_path``
    and serves metrics on ``metrics_port``; started once it has logged its start."""

    def __init__(self, command: Sequence[str], log_path: Path, metrics_port: int) -> None:
        self.log_path = log_path
        self.metrics_port = metrics_port
        self.process = subprocess.Popen(command, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while not self._started():
            if self.process.poll() is not None:
                raise RuntimeError(f"{command[:4]} exited: {self.process.stderr.read()!r}")  # type: ignore[union-attr]
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{command[:4]} did not start listening")
            time.sleep(0.02)

    def _started(self) -> bool:
        return any(entry["event"] == "start" for entry in self.log())  # logged once listening

    def log(self) -> List[Dict[str, Any]]:
        if not self.log_path.exists():
            return []
        lines = self.log_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.endswith("}")]

    def messages(self) -> List[Dict[str, Any]]:
        return [entry for entry in self.log() if entry["event"] == "message"]

    def wait_for(self, event: str, count: int = 1, timeout: float = 20) -> List[Dict[str, Any]]:
        """The log's entries of ``event`` once there are at least ``count``."""
        deadline = time.monotonic() + timeout
        while True:
            found = [entry for entry in self.log() if entry["event"] == event]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.02)

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            return str(response.read().decode())

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


class RunningMilter(RunningProcess):
    """``fromguard milter`` in a process of its own, listening on ``socket_path`` (or on
    127.0.0.1:``tcp_port``), logging next to it; run through ``milter_shim.py`` unless
    ``program`` says how (the command line up to the milter's options). A file left at
    ``socket_path`` is removed first, unless ``keep_socket``."""

    def __init__(
        self,
        policy: Path,
        socket_path: Path,
        *options: str,
        program: Sequence[str] = (),
        tcp_port: Optional[int] = None,
        keep_socket: bool = False,
    ) -> None:
        self.policy = policy
        self.socket_path = socket_path
        log_path = socket_path.with_suffix(".log")
        metrics_port = free_port()
        if socket_path.exists() and not keep_socket:
            socket_path.unlink()
        command = [
            *(program or (sys.executable, str(SHIM))),
            "--policy",
            str(policy),
            "--socket",
            f"unix:{socket_path}" if tcp_port is None else f"inet:{tcp_port}@127.0.0.1",
            "--metrics-port",
            str(metrics_port),
            "--log",
            str(log_path),
            *options,
        ]
        super().__init__(command, log_path, metrics_port)


class RunningFilter(RunningProcess):
    """``fromguard smtp-filter`` in a process of its own, listening on
    127.0.0.1:``port`` and re-injecting into 127.0.0.1:``next_hop``, its log at
    ``log_path``; run through ``milter_shim.py`` unless ``program`` says how (the command
    line up to the filter's options)."""

    def __init__(
        self,
        policy: Path,
        port: int,
        next_hop: int,
        log_path: Path,
        *options: str,
        program: Sequence[str] = (),
    ) -> None:
        self.port = port
        metrics_port = free_port()
        command = [
            *(program or (sys.executable, str(SHIM), "smtp-filter")),
            "--policy", str(policy),
            "--listen", f"127.0.0.1:{port}",
            "--next-hop", f"127.0.0.1:{next_hop}",
            "--metrics-port", str(metrics_port),
            "--log", str(log_path),
            *options,
        ]  # fmt: skip
        super().__init__(command, log_path, metrics_port)
