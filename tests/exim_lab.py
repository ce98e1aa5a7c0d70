"""A private Exim on 127.0.0.1, with fromguard's ACL and transport filter as the README
pastes them.

Debian's ``exim4-daemon-heavy`` binary, started with its own configuration file
(``-C``), spool, log and Maildir in one temporary directory, as a daemon in the
foreground (``-bdf``) on a free port of 127.0.0.1. Debian's ``exim4`` packages replace
Postfix (both are the system's MTA), so ``.ci/run`` unpacks the binary into
``/opt/fromguard-ci/exim4`` instead of installing it; ``exim_path`` tells Exim where it
is for its own re-executions. The configuration holds Debian's hook for a local DATA ACL
(``CHECK_DATA_LOCAL_ACL_FILE``) and the README's macros, so the pasted files run as they
would in Debian's. Needs root (Exim delivers as ``Debian-exim``).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

from milter_client import free_port
from postfix_lab import TOOLS as POSTFIX_TOOLS
from postfix_lab import MailServer, header_fields

ROOT = Path(__file__).resolve().parent.parent
INTEGRATION = ROOT / "integrations" / "exim"
EXIM = next(
    (
        path
        for path in ("/usr/sbin/exim4", "/opt/fromguard-ci/exim4/usr/sbin/exim4")
        if os.access(path, os.X_OK)
    ),
    None,
)
HOSTNAME = "mx.fromguard.test"
README_SOCKET = "/run/fromguard/serve.sock"
README_ACL = "/etc/exim4/fromguard.acl"


def missing_tools() -> List[str]:
    missing = [] if EXIM else ["exim4 (Debian's exim4-daemon-heavy)"]
    missing += [] if POSTFIX_TOOLS["swaks"] else ["swaks"]
    missing += [] if shutil.which("curl") else ["curl"]
    try:
        pwd.getpwnam("Debian-exim")
    except KeyError:
        missing.append("the Debian-exim user")
    if os.geteuid() != 0:
        missing.append("root (Exim delivers as Debian-exim)")
    return missing


def readme_macros(readme: str) -> str:
    """The README's Exim macro block, verbatim: the fenced block that names
    CHECK_DATA_LOCAL_ACL_FILE."""
    fenced = re.findall(r"^```(\w*)\n(.*?)^```$", readme, re.M | re.S)
    (block,) = [body for _, body in fenced if "CHECK_DATA_LOCAL_ACL_FILE" in body]
    return str(block)


class Exim(MailServer):
    """One private Exim: ``start()``, ``stop()``, mail in, mail delivered or frozen."""

    def __init__(self, macros: str, serve_socket: Path, extra_macros: str = "") -> None:
        self.base = Path(tempfile.mkdtemp(prefix="fgex-", dir="/var/tmp"))
        self.base.chmod(0o755)
        self.port = free_port()
        self.maildir = self.base / "mail" / "inbox"
        self.log_path = self.base / "log" / "mainlog"
        exim_user = pwd.getpwnam("Debian-exim")
        for directory in ("spool", "log", "mail"):
            (self.base / directory).mkdir()
            os.chown(self.base / directory, exim_user.pw_uid, exim_user.pw_gid)
        acl = self.base / "fromguard.acl"
        shutil.copy(INTEGRATION / "fromguard.acl", acl)
        pasted = {README_SOCKET: str(serve_socket), README_ACL: str(acl)}
        for path, replacement in pasted.items():
            assert macros.count(path) == 1, path
            macros = macros.replace(path, replacement)
        self.config = self.base / "exim.conf"
        self.config.write_text(
            f"""exim_path = {EXIM}
spool_directory = {self.base / "spool"}
log_file_path = {self.base / "log"}/%slog
primary_hostname = {HOSTNAME}
qualify_domain = fromguard.test
daemon_smtp_ports = {self.port}
local_interfaces = 127.0.0.1
keep_environment =
host_lookup =
rfc1413_hosts =
tls_advertise_hosts =
# each message delivered at once, however many a connection sends (the default queues
# them after 10, for a queue runner this daemon does not start)
smtp_accept_queue_per_connection = 0
acl_smtp_rcpt = acl_check_rcpt
acl_smtp_data = acl_check_data
{macros}{extra_macros}
begin acl

acl_check_rcpt:
  accept domains = fromguard.test
  deny

# As Debian's configuration has it
acl_check_data:
.ifdef CHECK_DATA_LOCAL_ACL_FILE
.include CHECK_DATA_LOCAL_ACL_FILE
.endif
  accept

begin routers

inbox:
  driver = accept
  domains = fromguard.test
  transport = inbox

begin transports

inbox:
  driver = appendfile
  directory = {self.maildir}
  maildir_format
  user = Debian-exim
.include {INTEGRATION / "fromguard.transport"}

begin retry

* * F,1m,1m
""",
            encoding="utf-8",
        )
        self.process: Optional[subprocess.Popen[bytes]] = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(EXIM), "-C", str(self.config), "-bdf"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"exim did not start: {self.process.stderr!r}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(30)

    def remove(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)

    def as_sent(self, delivered: bytes) -> bytes:
        return without_received(delivered)

    def _exim(self, *arguments: str) -> str:
        command = [str(EXIM), "-C", str(self.config), *arguments]
        return subprocess.run(command, capture_output=True, check=True, timeout=60).stdout.decode(
            errors="replace"
        )

    def frozen(self) -> Dict[str, bytes]:
        """The frozen messages: message id -> the message as Exim stores it."""
        listing = self._exim("-bp")
        ids = re.findall(r"^\s*\S+\s+\S+\s+(\S+) .*\*\*\* frozen \*\*\*", listing, re.M)
        return {
            message_id: self._exim("-Mvh", message_id).encode()
            + b"\n"
            + self._exim("-Mvb", message_id).encode()
            for message_id in ids
        }

    def run_queue(self, force: bool = False) -> None:
        """One queue run in the foreground; ``force``: past the retry times too."""
        self._exim("-qf" if force else "-q")


def without_received(delivered: bytes) -> bytes:
    """A delivered message without the Received field this Exim added."""
    fields, separator, body = header_fields(delivered)
    ours = f"by {HOSTNAME} with esmtp (Exim".encode()
    kept = [f for f in fields if not (f.lower().startswith(b"received:") and ours in f)]
    return b"\n".join(kept) + separator + body
