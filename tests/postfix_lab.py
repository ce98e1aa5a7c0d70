"""A private Postfix instance on 127.0.0.1, for the end-to-end tests and the benchmark.

Its own configuration, queue and mail directories live in one temporary directory
(``postfix -c DIR``), so the machine's Postfix (if any) is neither used nor changed. It
listens on a free port of 127.0.0.1, relays nothing, and delivers every recipient of the
domain ``fromguard.test`` into one Maildir through virtual(8) (no system user needed).
Nothing is chrooted, so the milter's unix socket can live in the same directory.
Needs root (Postfix's daemons run as ``postfix``) and Debian's ``postfix`` package.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import smtplib
import socket
import subprocess
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

from milter_client import free_port

README = Path(__file__).resolve().parent.parent / "README.md"
DOMAIN = "fromguard.test"
HOSTNAME = "mx.fromguard.test"
TRACE_FIELDS = (b"return-path", b"x-original-to", b"delivered-to")


# Postfix's commands are in /usr/sbin, which a CI user's PATH may lack.
TOOLS = {
    tool: shutil.which(tool, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/usr/bin")
    for tool in ("postfix", "postconf", "postcat", "postqueue", "postsuper", "sendmail", "swaks")
}


def readme_block(pattern: str, info: str = "") -> str:
    """The README's one fenced block with the info string ``info`` (none: a plain block)
    and a line that matches ``pattern``, verbatim: what an operator pastes."""
    # Fences paired in order, each opening one with its info string ("```sh" must not
    # pass for a closing fence).
    fences = re.finditer(r"^```(\S*)\n(.*?)^```$", README.read_text(encoding="utf-8"), re.M | re.S)
    (block,) = [m[2] for m in fences if m[1] == info and re.search(pattern, m[2], re.M)]
    return block


def content_filter_blocks(filter_port: int, reinjection_port: int) -> Tuple[str, str]:
    """The README's main.cf and master.cf blocks for the SMTP content filter, as pasted
    but for the ports: the filter's (10025) and the re-injection's (10026)."""

    def in_lab(block: str) -> str:
        return block.replace("10025", str(filter_port)).replace("10026", str(reinjection_port))

    return in_lab(readme_block(r"^content_filter =")), in_lab(readme_block(r"^fromguard +unix"))


def missing_tools() -> List[str]:
    """What the lab needs and this machine lacks (``.ci/run`` installs all of it)."""
    missing = [tool for tool, path in TOOLS.items() if path is None]
    if os.geteuid() != 0:
        missing.append("root (Postfix's daemons run as the postfix user)")
    return missing


class Sent(NamedTuple):
    """What swaks reported: its exit status (0 accepted, 23 refused at MAIL FROM, 26
    refused after the data) and what it printed (the server's error replies)."""

    status: int
    output: str


class MailServer(ABC):
    """What the labs' mail servers share (this Postfix, and Exim in ``exim_lab.py``):
    mail in over SMTP on 127.0.0.1:``port``, mail out into the Maildir ``maildir``, a log
    at ``log_path``."""

    port: int
    maildir: Path
    log_path: Path

    @abstractmethod
    def as_sent(self, delivered: bytes) -> bytes:
        """A delivered message without the fields this server put in front of the
        sender's (one hop)."""

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # -- Mail in --

    def swaks(self, message: bytes, sender: str = "sender@example.org") -> Sent:
        """Send ``message`` (LF or CRLF) with swaks; its exit status and output."""
        return swaks(self.port, message, sender)

    # -- Mail out --

    def delivered(self) -> Dict[str, bytes]:
        """Every message in the Maildir, by file name."""
        new = self.maildir / "new"
        if not new.exists():
            return {}
        return {path.name: path.read_bytes() for path in new.iterdir()}

    def wait_delivered(self, token: bytes, timeout: float = 30) -> bytes:
        """The one delivered message that contains ``token`` (a unique Message-ID)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [raw for raw in self.delivered().values() if token in raw]
            if found:
                assert len(found) == 1, f"{len(found)} messages hold {token!r}"
                return found[0]
            if time.monotonic() > deadline:
                log = self.log()[-3000:]
                raise AssertionError(f"not delivered within {timeout} s: {token!r}; log:\n{log}")
            time.sleep(0.05)

    def count_delivered(self) -> int:
        new = self.maildir / "new"
        return sum(1 for _ in new.iterdir()) if new.exists() else 0

    def wait_count(self, count: int, timeout: float) -> None:
        """Wait until the Maildir holds ``count`` messages (or ``timeout`` passed)."""
        deadline = time.monotonic() + timeout
        while self.count_delivered() < count and time.monotonic() < deadline:
            time.sleep(0.2)


class Postfix(MailServer):
    """One private Postfix instance: ``start()``, ``stop()``, settings, mail."""

    def __init__(self, milter_socket: Optional[Path] = None) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="fgpf-", dir="/var/tmp"))
        self.base.chmod(0o755)  # the postfix user reaches the milter socket through it
        self.etc = self.base / "etc"
        self.spool = self.base / "spool"
        self.maildir = self.base / "mail" / "inbox"
        self.log_path = self.base / "postfix.log"
        self.milter_socket = milter_socket or self.base / "milter.sock"
        self.port = free_port()
        self._configure()

    def _configure(self) -> None:
        for directory in (self.etc, self.spool, self.base / "data", self.base / "mail"):
            directory.mkdir()
        postfix = pwd.getpwnam("postfix")
        os.chown(self.base / "data", postfix.pw_uid, postfix.pw_gid)
        nobody = pwd.getpwnam("nobody")
        os.chown(self.base / "mail", nobody.pw_uid, grp.getgrnam("nogroup").gr_gid)
        shutil.copy("/etc/postfix/master.cf", self.etc / "master.cf")
        settings = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.spool),
            "data_directory": str(self.base / "data"),
            "maillog_file": str(self.log_path),
            "myhostname": HOSTNAME,
            "mydomain": DOMAIN,
            "mydestination": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "virtual_mailbox_domains": DOMAIN,
            "virtual_mailbox_base": str(self.base / "mail"),
            "virtual_mailbox_maps": "static:inbox/",
            "virtual_uid_maps": f"static:{nobody.pw_uid}",
            "virtual_gid_maps": f"static:{grp.getgrnam('nogroup').gr_gid}",
            # Mail from 127.0.0.1 is not "local": Postfix must not rewrite its headers
            # (the tests compare bytes).
            "local_header_rewrite_clients": "",
            "alias_maps": "",
            "alias_database": "",
            "biff": "no",
            "smtpd_client_connection_rate_limit": "0",
            "milter_protocol": "6",
            # Short queue IDs (inode and time) are reused once a message has left the
            # queue, and the tests tell thousands of messages apart by queue ID: long ones
            # stay unique (postconf(5), enable_long_queue_ids).
            "enable_long_queue_ids": "yes",
        }
        (self.etc / "main.cf").write_text(
            "".join(f"{key} = {value}\n" for key, value in settings.items()), encoding="utf-8"
        )
        self.postconf("-F", "*/*/chroot = n")
        self.postconf("-MX", "smtp/inet")
        self.postconf(
            "-M", f"127.0.0.1:{self.port}/inet = 127.0.0.1:{self.port} inet n - n - - smtpd"
        )

    # -- Control --

    def postconf(self, *arguments: str) -> str:
        return self._run("postconf", "-c", str(self.etc), *arguments)

    def postfix(self, command: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [str(TOOLS["postfix"]), "-c", str(self.etc), command], capture_output=True, check=False
        )

    def set(self, **settings: str) -> None:
        """Change main.cf settings; a running instance reloads them."""
        self.postconf("-e", *(f"{key} = {value}" for key, value in settings.items()))
        if self.running():
            self._run("postfix", "-c", str(self.etc), "reload")
            time.sleep(0.3)  # smtpd processes that served the old settings finish

    def use_milter(
        self, tcp_port: Optional[int] = None, socket_path: Optional[Path] = None, **options: str
    ) -> None:
        """Put the milter in ``smtpd_milters`` and ``non_smtpd_milters`` with per-milter
        options (``default_action``, ``content_timeout``, ...); no options: no milter.
        It listens on ``socket_path`` (default ``milter_socket``) or 127.0.0.1:``tcp_port``."""
        if not options:
            self.set(smtpd_milters="", non_smtpd_milters="")
            return
        address = (
            f"unix:{socket_path or self.milter_socket}"
            if tcp_port is None
            else f"inet:127.0.0.1:{tcp_port}"
        )
        block = ", ".join([address, *(f"{k}={v}" for k, v in options.items())])
        self.set(smtpd_milters=f"{{ {block} }}", non_smtpd_milters="$smtpd_milters")

    def paste(self, main_cf: str = "", master_cf: str = "") -> None:
        """Append lines to main.cf and master.cf as an operator pastes them; a running
        instance reloads them."""
        for name, lines in (("main.cf", main_cf), ("master.cf", master_cf)):
            with open(self.etc / name, "a", encoding="utf-8") as configuration:
                configuration.write(lines)
        if self.running():
            self._run("postfix", "-c", str(self.etc), "reload")
            time.sleep(0.3)

    def start(self) -> None:
        self._run("postfix", "-c", str(self.etc), "start")
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    message = f"Postfix did not listen on {self.port}: {self.log()}"
                    raise RuntimeError(message) from None
                time.sleep(0.05)

    def running(self) -> bool:
        return self.postfix("status").returncode == 0

    def stop(self) -> None:
        if self.running():
            self._run("postfix", "-c", str(self.etc), "stop")
            deadline = time.monotonic() + 30
            while self.running() and time.monotonic() < deadline:
                time.sleep(0.1)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def _run(self, tool: str, *arguments: str) -> str:
        command = [str(TOOLS[tool]), *arguments]
        done = subprocess.run(command, capture_output=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: {done.stderr.decode(errors='replace')}")
        return done.stdout.decode(errors="replace")

    def as_sent(self, delivered: bytes) -> bytes:
        return without_trace(delivered)

    # -- Mail in --

    def sendmail(self, message: bytes, sender: str = "root@localhost") -> int:
        """Submit ``message`` locally (sendmail, postdrop, pickup: ``non_smtpd_milters``)."""
        done = subprocess.run(
            [str(TOOLS["sendmail"]), "-C", str(self.etc), "-f", sender, f"user@{DOMAIN}"],
            input=message,
            capture_output=True,
            check=False,
            timeout=60,
        )
        return done.returncode

    # -- Mail out --

    def held(self) -> Dict[str, bytes]:
        """The hold queue: queue id -> the message (header and body) as postcat shows it."""
        hold = self.spool / "hold"
        return {
            path.name: self._run("postcat", "-c", str(self.etc), "-bh", "-q", path.name).encode()
            for path in (hold.iterdir() if hold.exists() else ())
        }

    def queued(self) -> List[str]:
        """Queue ids still in the incoming, active or deferred queue."""
        ids: List[str] = []
        for queue in ("incoming", "active", "deferred"):
            ids.extend(path.name for path in (self.spool / queue).rglob("*") if path.is_file())
        return ids

    def queued_messages(self) -> Dict[str, bytes]:
        """The incoming, active and deferred queues: queue id -> the message as postcat
        shows it (one that left the queue meanwhile is left out)."""
        messages: Dict[str, bytes] = {}
        for queue_id in self.queued():
            shown = subprocess.run(
                [str(TOOLS["postcat"]), "-c", str(self.etc), "-bh", "-q", queue_id],
                capture_output=True,
                check=False,
            )
            if shown.returncode == 0:
                messages[queue_id] = shown.stdout
        return messages

    def clear_hold(self) -> None:
        self._run("postsuper", "-c", str(self.etc), "-d", "ALL", "hold")

    def mailq(self) -> str:
        """The queue as ``postqueue -p`` (mailq) lists it."""
        return self._run("postqueue", "-c", str(self.etc), "-p")

    def flush(self) -> None:
        """``postqueue -f``: deliver the deferred mail now, dead destinations included."""
        self._run("postqueue", "-c", str(self.etc), "-f")

    def clear_deferred(self) -> None:
        self._run("postsuper", "-c", str(self.etc), "-d", "ALL", "deferred")


def swaks(port: int, message: bytes, sender: str = "sender@example.org") -> Sent:
    """Send ``message`` (LF or CRLF) to user@fromguard.test over SMTP on 127.0.0.1:port
    with swaks; its exit status and output."""
    with tempfile.NamedTemporaryFile(suffix=".eml") as data:
        # swaks ends the data with CRLF "." CRLF itself: the message's own last line
        # break would add an empty line.
        data.write(message[:-1] if message.endswith(b"\n") else message)
        data.flush()
        command = [
            str(TOOLS["swaks"]), "--silent", "2",
            "--server", f"127.0.0.1:{port}",
            "--from", sender,
            "--to", f"user@{DOMAIN}",
            "--data", f"@{data.name}",
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, check=False, timeout=120)
    return Sent(done.returncode, (done.stdout + done.stderr).decode(errors="replace"))


def in_sessions(
    session: Callable[[int, Sequence[bytes]], None], batches: Sequence[Sequence[bytes]]
) -> None:
    """``session(number, batch)`` for each batch, each in a thread of its own, all at once;
    returns when all have ended."""
    threads = [
        threading.Thread(target=session, args=(number, batch))
        for number, batch in enumerate(batches)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def send_concurrently(port: int, batches: Sequence[Sequence[bytes]]) -> List[str]:
    """Send each batch of messages (CRLF) over one SMTP session of its own, all sessions
    at once; returns what failed (empty when the server accepted every message)."""
    failures: List[str] = []

    def session(number: int, batch: Sequence[bytes]) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
                for index, raw in enumerate(batch):
                    refused = smtp.sendmail("load@example.org", [f"user@{DOMAIN}"], raw)
                    if refused:
                        failures.append(f"session {number}, message {index}: {refused}")
        except (OSError, smtplib.SMTPException) as error:
            failures.append(f"session {number}: {error!r}")

    in_sessions(session, batches)
    return failures


def send_each(port: int, batches: Sequence[Sequence[bytes]]) -> List[List[int]]:
    """Like ``send_concurrently``, but a refused message does not end its session: the
    final reply code of each message (250 accepted, 451, 550, ...), batch by batch; 0 for
    one that could not be sent (the session failed)."""
    codes: List[List[int]] = [[0] * len(batch) for batch in batches]

    def session(number: int, batch: Sequence[bytes]) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
                for index, raw in enumerate(batch):
                    try:
                        smtp.sendmail("load@example.org", [f"user@{DOMAIN}"], raw)
                        codes[number][index] = 250
                    except smtplib.SMTPDataError as refused:
                        codes[number][index] = refused.smtp_code
        except (OSError, smtplib.SMTPException):
            pass

    in_sessions(session, batches)
    return codes


class OpenSession:
    """An SMTP session left open on purpose: ``begin`` sends a message's envelope and
    the first ``part`` bytes of its data, ``end`` the rest (CRLF, no line starting
    with a dot); ``send`` a whole message."""

    def __init__(self, port: int) -> None:
        self.smtp = smtplib.SMTP("127.0.0.1", port, timeout=60)
        self.smtp.ehlo()
        self._rest = b""

    def begin(self, raw: bytes, part: int) -> None:
        assert self.smtp.mail("sender@example.org")[0] == 250
        assert self.smtp.rcpt(f"user@{DOMAIN}")[0] == 250
        assert self.smtp.docmd("DATA")[0] == 354
        self.smtp.send(raw[:part])
        self._rest = raw[part:] if raw.endswith(b"\r\n") else raw[part:] + b"\r\n"

    def end(self) -> Tuple[int, bytes]:
        """The rest of the data and the end of data; the reply."""
        self.smtp.send(self._rest + b".\r\n")
        return self.smtp.getreply()

    def send(self, raw: bytes) -> Tuple[int, bytes]:
        self.begin(raw, len(raw))
        return self.end()

    def close(self) -> None:
        try:
            self.smtp.quit()
        except (OSError, smtplib.SMTPException):
            self.smtp.close()


def without_trace(delivered: bytes, hops: int = 1) -> bytes:
    """A delivered message without what this Postfix added in front of the sender's:
    Return-Path, X-Original-To, Delivered-To and its own Received fields, the top
    ``hops`` of them (two when a content filter re-injected the message)."""
    fields, separator, body = header_fields(delivered)
    ours_seen = 0
    kept: List[bytes] = []
    for field in fields:
        name = field.split(b":", 1)[0].lower()
        if name in TRACE_FIELDS:
            continue
        ours = f"by {HOSTNAME} (Postfix".encode() in field
        if name == b"received" and ours_seen < hops and ours:
            ours_seen += 1
            continue
        kept.append(field)
    return b"\n".join(kept) + separator + body


def header_fields(message: bytes) -> Tuple[List[bytes], bytes, bytes]:
    """A message (LF line ends) as its header fields, each with its folds, the empty line
    after them, and the body: ``b"\\n".join(fields) + separator + body`` is the message."""
    head, separator, body = message.partition(b"\n\n")
    fields: List[bytes] = []
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\n" + line
        else:
            fields.append(line)
    return fields, separator, body
