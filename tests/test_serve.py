"""``fromguard serve`` as a program: a real server process (through ``serve_shim.py``,
so that a message can ask to be slow or to fail) on a unix socket and a TCP port, asked
over HTTP. The answers against ``Policy.process``'s own, the 4xx answers, the timeout
and the fail mode, monitor mode, SIGHUP reload, the log, the metrics and the stop."""

from __future__ import annotations

import base64
import json
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from fromguard import Policy
from fromguard.cli import _parser
from serve_client import SHIM, RunningServe
from test_milter import CASES, POLICY


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="fgs-"))  # short: a unix socket path fits 108 bytes
    (path / "policy.toml").write_text(POLICY, encoding="utf-8")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def server(workdir: Path) -> Iterator[RunningServe]:
    running = RunningServe(workdir / "policy.toml", workdir, "--timeout", "1")
    yield running
    running.stop()


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("unix", [True, False], ids=["unix", "tcp"])
def test_the_answer_is_the_policy_s_decision(server: RunningServe, name: str, unix: bool) -> None:
    raw = CASES[name]
    outcome = Policy.from_toml(server.log()[0]["policy"]).process(raw, add_headers=False)
    status, answer = server.request(raw, unix=unix)
    assert status == 200
    assert answer["verdict"] == outcome.verdict.name.lower()
    assert answer["action"] == outcome.action.name.lower()
    expected_answer = {"two-from": "reject", "authors": "tempfail"}.get(name, answer["action"])
    assert answer["answer"] == expected_answer
    assert answer["reasons"] == list(outcome.reasons)
    assert answer["headers"] == [list(field) for field in outcome.headers]
    assert answer["error"] is None
    reply = outcome.smtp_reply
    assert answer["reply"] == (
        None
        if reply is None
        else {"code": reply.code, "enhanced": reply.enhanced, "text": reply.text}
    )
    # The same findings as the policy's, spans into the message.
    assert sorted((f["code"], f["start"], f["end"]) for f in answer["findings"]) == sorted(
        (f.code, f.start, f.end) for f in outcome.findings
    )


def test_findings_and_shadows_point_into_the_message(server: RunningServe) -> None:
    raw = CASES["deceptive"]
    _, answer = server.request(raw)
    (field,) = answer["fields"]
    assert field["name"] == "From" and field["address"] == "m@mallory.example"
    assert raw[field["start"] : field["end"]].startswith(b"From:")
    (finding,) = answer["findings"]
    assert finding["field"] == 0 and finding["code"] == "address-in-display-name"
    assert raw[finding["start"] : finding["end"]] == b'"ceo@bank.example"'
    (shadow,) = answer["shadows"]
    assert shadow["address"] == "ceo@bank.example" and shadow["source"] == "display-name"
    assert raw[shadow["start"] : shadow["end"]] == b'"ceo@bank.example"'


def test_the_message_level_findings_have_no_field(server: RunningServe) -> None:
    _, answer = server.request(CASES["two-from"])
    assert {f["code"] for f in answer["findings"] if f["field"] is None} == {"several-from-fields"}


def test_the_warned_body_on_request(server: RunningServe) -> None:
    raw = CASES["deceptive"]
    outcome = Policy.from_toml(server.log()[0]["policy"]).process(raw, add_headers=False)
    _, plain = server.request(raw)
    assert "body" not in plain
    _, answer = server.request(raw, path="/check?body=1")
    header, _ = raw.split(b"\r\n\r\n", 1)
    assert base64.b64decode(answer["body"]) == outcome.message[len(header) + 4 :]
    assert base64.b64decode(answer["body"]).startswith(b"Caution")
    _, clean = server.request(CASES["clean"], path="/check?body=1")
    assert clean["body"] is None  # accepted: the body is the caller's own


def test_rewrite_gives_the_message_with_the_warning(server: RunningServe) -> None:
    raw = CASES["deceptive"]
    outcome = Policy.from_toml(server.log()[0]["policy"]).process(raw, add_headers=False)
    assert server.send(raw, path="/rewrite") == (200, outcome.message)
    assert server.send(CASES["clean"], path="/rewrite") == (200, CASES["clean"])
    status, body = server.send(b"X-Test-Raise: yes\r\n" + raw, path="/rewrite")
    assert status == 503 and b"raised on request" in body  # the caller retries later


def test_a_header_block_alone_is_enough(server: RunningServe) -> None:
    _, answer = server.request(b'From: "ceo@bank.example" <m@mallory.example>\r\nSubject: x\r\n')
    assert answer["verdict"] == "deceptive" and answer["answer"] == "warn"


def test_the_header_text_is_the_fields_folded(server: RunningServe) -> None:
    _, answer = server.request(CASES["legacy"])
    assert answer["header_text"] == "".join(
        f"{name}: {value}\n" for name, value in answer["headers"]
    )
    assert answer["header_text"].startswith("X-Fromguard-Verdict: legacy\n")


def test_bad_requests_get_a_4xx_and_the_service_goes_on(server: RunningServe) -> None:
    assert server.request(b"", method="GET")[0] == 405
    assert server.request(b"x", path="/nowhere")[0] == 404
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw_client:
        raw_client.settimeout(5)
        raw_client.connect(str(server.socket_path))
        raw_client.sendall(b"\x00\x01 not HTTP at all\r\n\r\n")
        assert raw_client.recv(100).startswith(b"HTTP/1.0 400 Bad Request")
    assert server.request(CASES["clean"])[0] == 200


def test_a_message_over_the_size_limit_gets_413(workdir: Path) -> None:
    small = RunningServe(workdir / "policy.toml", workdir, "--max-size", "1000")
    try:
        status, answer = small.request(CASES["clean"] + b"x" * 1000)
        assert status == 413 and "1000 bytes" in answer["error"]
        assert small.request(CASES["clean"])[0] == 200
    finally:
        small.stop()


def test_a_slow_decision_is_answered_with_the_fail_mode(server: RunningServe) -> None:
    raw = b"X-Test-Delay: 3\r\n" + CASES["deceptive"]
    status, answer = server.request(raw, headers={"X-Queue-Id": "SLOW1"})
    assert status == 200
    assert answer["answer"] == "accept" and answer["verdict"] == "unknown"
    assert answer["error"] == "no decision within 1 s"
    (entry,) = [m for m in server.messages() if m["queue_id"] == "SLOW1"]
    assert entry["action"] == "accept" and entry["error"] == "no decision within 1 s"
    assert 'fromguard_serve_errors_total{kind="timeout"} 1.0' in server.metrics()


def test_an_error_is_answered_with_the_fail_mode_and_the_next_is_decided(
    workdir: Path,
) -> None:
    strict = RunningServe(workdir / "policy.toml", workdir, "--fail-mode", "tempfail")
    try:
        status, answer = strict.request(b"X-Test-Raise: yes\r\n" + CASES["clean"])
        assert status == 200 and answer["answer"] == "tempfail"
        assert answer["error"] == "RuntimeError: raised on request (X-Test-Raise)"
        assert answer["reply"] == {
            "code": 451,
            "enhanced": "4.3.0",
            "text": "fromguard: the message could not be checked, try again later",
        }
        status, answer = strict.request(b"X-Test-Panic: yes\r\n" + CASES["clean"])
        assert answer["answer"] == "tempfail" and answer["error"].startswith("InternalError")
        assert strict.request(CASES["clean"])[1]["answer"] == "accept"
        metrics = strict.metrics()
        assert 'fromguard_serve_errors_total{kind="internal"} 1.0' in metrics
        assert 'fromguard_serve_errors_total{kind="error"} 1.0' in metrics
    finally:
        strict.stop()


def test_monitor_mode_answers_accept_and_reports_the_policy_s_action(workdir: Path) -> None:
    monitor = RunningServe(workdir / "policy.toml", workdir, "--mode", "monitor")
    try:
        _, answer = monitor.request(CASES["two-from"])
        assert answer["answer"] == "accept" and answer["action"] == "reject"
        assert answer["mode"] == "monitor"
        labels = 'action="accept",policy_action="reject",verdict="invalid"'
        assert f"fromguard_serve_messages_total{{{labels}}} 1.0" in monitor.metrics()
    finally:
        monitor.stop()


def test_sighup_reloads_and_a_broken_policy_keeps_the_old_one(workdir: Path) -> None:
    policy = workdir / "reloaded.toml"
    policy.write_text(POLICY, encoding="utf-8")
    running = RunningServe(policy, workdir)
    try:
        (start,) = [entry for entry in running.log() if entry["event"] == "start"]
        assert start["effective_policy"] == Policy.from_toml(policy).effective()
        assert running.request(CASES["legacy"])[1]["answer"] == "tag"
        policy.write_text(
            '[verdicts]\nlegacy = "accept"\n# fromguard-policy: end\n', encoding="utf-8"
        )
        running.signal(signal.SIGHUP)
        assert len(running.wait_for("reload", 1)) == 1
        assert running.request(CASES["legacy"])[1]["answer"] == "accept"
        policy.write_text("[verdicts\n# fromguard-policy: end\n", encoding="utf-8")
        running.signal(signal.SIGHUP)
        reloads = running.wait_for("reload", 2)
        assert [r["result"] for r in reloads] == ["ok", "failed"]
        assert running.request(CASES["legacy"])[1]["answer"] == "accept"
        assert 'fromguard_serve_reloads_total{result="failed"} 1.0' in running.metrics()
    finally:
        assert running.stop() == 0
    assert not running.socket_path.exists()
    assert [entry["event"] for entry in running.log()][-2:] == ["stop", "exit"]


def test_every_message_is_logged_with_its_queue_id(server: RunningServe) -> None:
    server.request(CASES["deceptive"], headers={"X-Queue-Id": "4ABC123"})
    (entry,) = [m for m in server.messages() if m["queue_id"] == "4ABC123"]
    assert entry["verdict"] == "deceptive" and entry["action"] == "warn"
    assert entry["findings"] == [
        {"code": "address-in-display-name", "severity": "deceptive", "start": 6, "end": 24}
    ]


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        (["--policy", "/nonexistent.toml", "--listen", "127.0.0.1:1"], "cannot load the policy"),
        (["--policy", "POLICY"], "nothing to listen on"),
        (["--policy", "POLICY", "--socket", "SOCKET"], "in use by another process"),
    ],
)
def test_a_start_that_cannot_work_says_why_in_one_line(
    server: RunningServe,
    workdir: Path,
    arguments: list,
    reason: str,  # type: ignore[type-arg]
) -> None:
    replaced = [
        str(workdir / "policy.toml")
        if a == "POLICY"
        else str(server.socket_path)
        if a == "SOCKET"
        else a
        for a in arguments
    ]
    result = subprocess.run(
        [sys.executable, str(SHIM), *replaced, "--metrics-port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("fromguard serve: ") and reason in line


# -- The README's serve page, as pasted --------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
EXCHANGE = ROOT / "examples" / "policies" / "exchange.toml"


def readme_serve_page() -> str:
    text = README.read_text(encoding="utf-8")
    return text.split("## fromguard serve", 1)[1].split("\n## ", 1)[0]


def test_the_readme_s_command_line_is_serve_s(workdir: Path) -> None:
    # The page's first sh block installs and runs it; the second installs the systemd unit.
    block = re.findall(r"^```sh\n(.*?)^```$", readme_serve_page(), re.M | re.S)[0]
    command = shlex.split(block.split("\n", 1)[1].replace("\\\n", " "))
    assert command[:2] == ["fromguard", "serve"]
    args = _parser(command[1:]).parse_args(command[1:])
    assert args.socket == [Path("/run/fromguard/serve.sock")]
    assert args.listen == [("127.0.0.1", 8025)] and args.socket_group == "Debian-exim"
    assert (
        "http://127.0.0.1:8025/check" in (ROOT / "integrations/rspamd/fromguard.conf").read_text()
    )


def test_the_readme_s_answer_is_serve_s(workdir: Path) -> None:
    (example,) = re.findall(r"^```json\n(.*?)^```$", readme_serve_page(), re.M | re.S)
    exchange = RunningServe(EXCHANGE, workdir)
    try:
        raw = b'From: "ceo@bank.example" <m@mallory.example>\r\nSubject: x\r\n\r\nhello\r\n'
        assert exchange.request(raw) == (200, json.loads(example))
    finally:
        exchange.stop()
