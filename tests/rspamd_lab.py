"""A private rspamd on 127.0.0.1, with fromguard's plugin installed as the README says.

Debian's ``rspamd`` package, its stock configuration (``/etc/rspamd/rspamd.conf``, read
only) with every directory of its own given as variables: ``LOCAL_CONFDIR`` (where the
README's installation block, run as pasted with ``/etc/rspamd`` pointing here, puts
``plugins.d/fromguard.lua``, ``local.d/fromguard.conf`` and ``rspamd.conf.local``),
``DBDIR``, ``RUNDIR``, ``LOGDIR``, all in one temporary directory.
The workers listen on free ports of 127.0.0.1 (``override.d``); no system service is
used or changed. Needs root (rspamd drops to ``_rspamd``).
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence

from milter_client import free_port

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
TOOLS = {tool: shutil.which(tool) for tool in ("rspamd", "rspamc")}


def missing_tools() -> List[str]:
    missing = [tool for tool, path in TOOLS.items() if path is None]
    if os.geteuid() != 0:
        missing.append("root (rspamd's workers run as _rspamd)")
    return missing


def readme_install(readme: str) -> str:
    """The README's rspamd installation, verbatim: the sh block that installs the plugin."""
    blocks = re.findall(r"^```sh\n(.*?)^```$", readme, re.M | re.S)
    (block,) = [b for b in blocks if "plugins.d/fromguard.lua" in b]
    return str(block)


class Rspamd:
    """One private rspamd, asking fromguard at ``url``; ``settings`` replace lines of the
    README's local.d/fromguard.conf (``{"add_headers = false;": "add_headers = true;"}``)."""

    def __init__(self, url: str, settings: Dict[str, str]) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="fgrs-", dir="/var/tmp"))
        self.base.chmod(0o755)
        self.port = free_port()
        conf = self.base / "conf"
        for directory in ("plugins.d", "local.d", "override.d"):
            (conf / directory).mkdir(parents=True)
        # The README's installation, as pasted, into this rspamd's LOCAL_CONFDIR.
        install = readme_install(README.read_text(encoding="utf-8"))
        subprocess.run(
            ["bash", "-euc", install.replace("/etc/rspamd", str(conf))], cwd=ROOT, check=True
        )
        local = (conf / "local.d" / "fromguard.conf").read_text(encoding="utf-8")
        for pasted, replacement in {**settings, "http://127.0.0.1:8025/check": url}.items():
            assert local.count(pasted) == 1, pasted
            local = local.replace(pasted, replacement)
        (conf / "local.d" / "fromguard.conf").write_text(local, encoding="utf-8")
        override = {
            "worker-normal.inc": f'bind_socket = "127.0.0.1:{self.port}";\ncount = 1;\n',
            "worker-controller.inc": f'bind_socket = "127.0.0.1:{free_port()}";\n',
            "worker-proxy.inc": f'bind_socket = "127.0.0.1:{free_port()}";\n',
            "logging.inc": 'type = "file";\nfilename = "$LOGDIR/rspamd.log";\nlevel = "info";\n',
        }
        for name, text in override.items():
            (conf / "override.d" / name).write_text(text, encoding="utf-8")
        # Hyperscan's regexp compilation takes a minute at each start; PCRE needs none.
        (conf / "local.d" / "options.inc").write_text(
            "disable_hyperscan = true;\n", encoding="utf-8"
        )
        rspamd_user = pwd.getpwnam("_rspamd")
        for directory in ("db", "run", "log"):
            (self.base / directory).mkdir()
            os.chown(self.base / directory, rspamd_user.pw_uid, rspamd_user.pw_gid)
        self.log_path = self.base / "log" / "rspamd.log"
        command = [
            str(TOOLS["rspamd"]),
            "--no-fork",
            "--user=_rspamd",
            "--group=_rspamd",
            "--config=/etc/rspamd/rspamd.conf",
            f"--var=LOCAL_CONFDIR={conf}",
            f"--var=DBDIR={self.base / 'db'}",
            f"--var=RUNDIR={self.base / 'run'}",
            f"--var=LOGDIR={self.base / 'log'}",
        ]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._wait_until_answering()

    def _wait_until_answering(self) -> None:
        deadline = time.monotonic() + 120
        probe = self.base / "probe.eml"
        probe.write_bytes(b"From: <a@example.org>\nSubject: probe\n\nprobe\n")
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"rspamd exited; its log: {self.log()[-2000:]}")
            result = self._rspamc([probe])
            if result.returncode == 0 and result.stdout.strip():
                return
            time.sleep(0.5)
        raise RuntimeError("rspamd did not answer within 120 s")

    def _rspamc(self, paths: Sequence[Path]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(TOOLS["rspamc"]), "-h", f"127.0.0.1:{self.port}", "-j", *map(str, paths)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def scan(self, messages: Sequence[bytes]) -> List[Dict[str, Any]]:
        """rspamc's JSON answer for each message, in order (one rspamc run)."""
        directory = Path(tempfile.mkdtemp(dir=self.base))
        paths = []
        for index, message in enumerate(messages):
            path = directory / f"{index:04d}.eml"
            path.write_bytes(message)
            paths.append(path)
        result = self._rspamc(paths)
        assert result.returncode == 0, result.stderr
        decoder = json.JSONDecoder()
        answers, text, position = [], result.stdout, 0
        while text[position:].strip():
            answer, position = decoder.raw_decode(text, len(text) - len(text[position:].lstrip()))
            answers.append(answer)
        by_file = {answer["filename"]: answer for answer in answers}
        return [
            by_file[str(path)] if str(path) in by_file else by_file[path.name] for path in paths
        ]

    def log(self) -> str:
        return (
            self.log_path.read_text(encoding="utf-8", errors="replace")
            if self.log_path.exists()
            else ""
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.base, ignore_errors=True)
