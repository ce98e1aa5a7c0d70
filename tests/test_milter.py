"""``fromguard milter`` at the protocol level, without an MTA: a real milter process
(libmilter through pymilter) and a small MTA-side client (``milter_client.py``) that
speaks milter protocol 6 to it as Postfix does. Every action, monitor mode, the
watchdog, the fail mode, SIGHUP reloads, the SIGTERM drain, the JSON log and the
metrics. ``test_postfix.py`` runs the same milter under a real Postfix."""

from __future__ import annotations

import functools
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from fromguard import Action, Outcome, Policy
from fromguard.cli import main
from milter_client import SHIM, MilterClient, Reply, RunningMilter, free_port, split_message

MESSAGES = Path(__file__).parent / "data" / "messages"

POLICY = """
[verdicts]
legacy = "tag"
deceptive = "warn"
invalid = "quarantine"

[codes]
several-from-fields = { action = "reject", code = 550, enhanced = "5.7.1", text = "Two From fields: 100% refused" }
several-authors-without-sender = { action = "reject", code = 451, enhanced = "4.7.1", text = "Several authors and no Sender: try later" }
# fromguard-policy: end
"""

CASES: Dict[str, bytes] = {
    "clean": b"From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: hi\r\n\r\nhello\r\n",
    "legacy": b"From: Dr. J. Doe <j@example.org>\r\nSubject: hi\r\n\r\nhello\r\n",
    "deceptive": b'From: "ceo@bank.example" <m@mallory.example>\r\nSubject: hi\r\n\r\nhello\r\n',
    "invalid": b"From: Bank <ceo@bank.example> <m@mallory.example>\r\nSubject: hi\r\n\r\nhi\r\n",
    "two-from": b"From: <m@mallory.example>\r\nFrom: <ceo@bank.example>\r\nSubject: x\r\n\r\nhi\r\n",
    "authors": b"From: <m@mallory.example>, <ceo@bank.example>\r\nSubject: x\r\n\r\nhi\r\n",
}


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    # Short: a unix socket path must fit in 108 bytes.
    path = Path(tempfile.mkdtemp(prefix="fgm-"))
    (path / "policy.toml").write_text(POLICY, encoding="utf-8")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def enforcing(workdir: Path) -> Iterator[RunningMilter]:
    running = RunningMilter(
        workdir / "policy.toml",
        workdir / "enforce.sock",
        "--watchdog",
        "1",
        "--fail-mode",
        "tempfail",
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def monitoring(workdir: Path) -> Iterator[RunningMilter]:
    running = RunningMilter(
        workdir / "policy.toml", workdir / "monitor.sock", "--mode", "monitor", "--watchdog", "1"
    )
    yield running
    running.stop()


def send(milter: RunningMilter, raw: bytes, queue_id: str = "TESTQID") -> Reply:
    header, body = split_message(raw)
    with MilterClient(str(milter.socket_path)) as client:
        return client.send(header, body, queue_id)


def logged(milter: RunningMilter, queue_id: str) -> Dict[str, object]:
    entries = [e for e in milter.wait_for("message", 1) if e["queue_id"] == queue_id]
    deadline = time.monotonic() + 10
    while not entries and time.monotonic() < deadline:
        time.sleep(0.02)
        entries = [e for e in milter.messages() if e["queue_id"] == queue_id]
    assert len(entries) == 1, entries
    return entries[0]


@functools.lru_cache(maxsize=None)
def reference_policy() -> Policy:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "policy.toml"
        path.write_text(POLICY, encoding="utf-8")
        return Policy.from_toml(path)


def expected(raw: bytes) -> Outcome:
    """What the policy decides on ``raw`` itself, fields not written into the message."""
    return reference_policy().process(raw, add_headers=False)


def untouched(reply: Reply) -> bool:
    return not (reply.inserted or reply.appended or reply.body is not None or reply.quarantine)


# -- Negotiation -----------------------------------------------------------------------


def test_negotiates_only_what_it_uses(enforcing: RunningMilter) -> None:
    with MilterClient(str(enforcing.socket_path)) as client:
        # add/insert headers, replace the body, quarantine; nothing else
        assert client.actions == 0x01 | 0x02 | 0x20
        # raw header values (leading space kept); skips connect, helo, mail, rcpt, data,
        # unknown and end-of-header; no reply per header or body chunk
        assert client.protocol & 0x100000
        assert client.protocol & (0x1 | 0x2 | 0x4 | 0x8 | 0x200 | 0x100 | 0x40) == 0x34F
        assert client.protocol & (0x80 | 0x80000) == 0x80080
        assert not client.protocol & (0x10 | 0x20)  # headers and body are read


# -- Every action ----------------------------------------------------------------------


def test_accept_changes_nothing(enforcing: RunningMilter) -> None:
    reply = send(enforcing, CASES["clean"], "QACCEPT")
    assert reply.final == "continue" and untouched(reply)
    entry = logged(enforcing, "QACCEPT")
    assert entry["verdict"] == "valid" and entry["action"] == "accept"
    assert entry["reasons"] == [] and entry["findings"] == []


def test_tag_inserts_the_policy_headers_at_the_top_in_order(enforcing: RunningMilter) -> None:
    reply = send(enforcing, CASES["legacy"], "QTAG")
    outcome = expected(CASES["legacy"])
    assert reply.final == "continue"
    assert reply.body is None and reply.quarantine is None and not reply.appended
    # Each insert lands at index 0, so they come in reverse: the result is the policy's order.
    # The client asked for values as they are (SMFIP_HDR_LEADSPC): the space is sent.
    assert [(name, value) for _, name, value in reversed(reply.inserted)] == [
        (name, " " + value) for name, value in outcome.headers
    ]
    assert {index for index, _, _ in reply.inserted} == {0}
    assert [name for _, name, _ in reply.inserted] == [
        "X-Fromguard-Findings",
        "X-Fromguard-Verdict",
    ]
    entry = logged(enforcing, "QTAG")
    assert entry["action"] == "tag" and entry["reasons"] == ["verdict:legacy"]
    assert [f["code"] for f in entry["findings"]] == ["obs-phrase", "obs-phrase"]


@pytest.mark.parametrize(
    "name", ["plain.eml", "alternative.eml", "base64.eml", "quoted-printable.eml", "signed.eml"]
)
def test_warn_tags_and_replaces_the_body_with_the_policy_rewrite(
    enforcing: RunningMilter, name: str
) -> None:
    raw = (MESSAGES / name).read_bytes().replace(b"\n", b"\r\n")
    reply = send(enforcing, raw, f"QWARN{name}")
    outcome = expected(raw)
    assert outcome.action is Action.WARN
    assert reply.final == "continue"
    assert [(n, v) for _, n, v in reversed(reply.inserted)] == [
        (n, " " + v) for n, v in outcome.headers
    ]
    body_start = raw.index(b"\r\n\r\n") + 4
    if outcome.message == raw:  # signed: nothing to warn in
        assert reply.body is None
    else:
        assert reply.body == outcome.message[body_start:]
        assert reply.body != raw[body_start:]


def test_warn_on_a_body_over_64_kib(enforcing: RunningMilter) -> None:
    lines = b"".join(b"line %05d of a long body, to pass 64 KiB\r\n" % n for n in range(3000))
    raw = CASES["deceptive"].split(b"\r\n\r\n")[0] + b"\r\n\r\n" + lines
    assert len(lines) > 65536
    reply = send(enforcing, raw, "QBIG")
    outcome = expected(raw)
    assert reply.body is not None and reply.body.endswith(lines)
    assert reply.body == outcome.message[raw.index(b"\r\n\r\n") + 4 :]


def test_quarantine(enforcing: RunningMilter) -> None:
    reply = send(enforcing, CASES["invalid"], "QHOLD")
    assert reply.final == "continue"
    assert reply.quarantine == "fromguard: verdict:invalid"
    assert not reply.inserted and reply.body is None
    assert logged(enforcing, "QHOLD")["action"] == "quarantine"


def test_reject_with_the_rule_s_reply(enforcing: RunningMilter) -> None:
    reply = send(enforcing, CASES["two-from"], "QREJECT")
    # On the wire "%" is doubled: the MTA reads the text as a format.
    assert (reply.final, reply.reply_text) == (
        "replycode",
        "550 5.7.1 Two From fields: 100%% refused",
    )
    assert untouched(reply)
    entry = logged(enforcing, "QREJECT")
    assert entry["action"] == "reject" and entry["reasons"] == ["code:several-from-fields"]
    assert entry["reply"] == "550 5.7.1 Two From fields: 100% refused"


def test_a_4xx_reject_is_a_tempfail(enforcing: RunningMilter) -> None:
    reply = send(enforcing, CASES["authors"], "QTEMP")
    assert reply.final == "replycode"
    assert reply.reply_text == "451 4.7.1 Several authors and no Sender: try later"
    entry = logged(enforcing, "QTEMP")
    assert (entry["action"], entry["policy_action"]) == ("tempfail", "reject")


def test_an_action_the_mta_does_not_offer_fails_with_the_fail_mode(
    enforcing: RunningMilter,
) -> None:
    with MilterClient(str(enforcing.socket_path), actions=0x01 | 0x02) as client:
        assert client.actions == 0x01 | 0x02  # no quarantine
        reply = client.send(*split_message(CASES["invalid"]), "QNOHOLD")
    assert reply.final == "tempfail" and reply.quarantine is None
    errors = [e for e in enforcing.wait_for("error", 1) if e["queue_id"] == "QNOHOLD"]
    assert errors and errors[0]["error"].startswith("applying the action failed: ")
    assert logged(enforcing, "QNOHOLD")["action"] == "quarantine"


def test_several_messages_on_one_connection(enforcing: RunningMilter) -> None:
    with MilterClient(str(enforcing.socket_path)) as client:
        replies = [client.send(*split_message(CASES[name]), f"QSEQ{name}") for name in CASES]
    assert [r.final for r in replies] == [
        "continue", "continue", "continue", "continue", "replycode", "replycode"
    ]  # fmt: skip
    assert [r.quarantine is not None for r in replies] == [False, False, False, True, False, False]


def test_listening_on_tcp(workdir: Path) -> None:
    port = free_port()
    running = RunningMilter(workdir / "policy.toml", workdir / "tcp.sock", tcp_port=port)
    try:
        with MilterClient(("127.0.0.1", port)) as client:
            clean = client.send(*split_message(CASES["clean"]), "QTCP1")
            rejected = client.send(*split_message(CASES["two-from"]), "QTCP2")
    finally:
        assert running.stop() == 0
    assert clean.final == "continue" and untouched(clean)
    assert rejected.reply_text == "550 5.7.1 Two From fields: 100%% refused"
    assert not (workdir / "tcp.sock").exists()
    # TCP_NODELAY was set on libmilter's listening socket (else a warning is logged).
    assert [entry for entry in running.log() if entry["event"] == "warning"] == []


# -- The raw bytes reach the core as they were sent ------------------------------------


@pytest.mark.parametrize("name", sorted(path.name for path in MESSAGES.glob("*.eml")))
def test_decisions_equal_the_policy_s_on_the_same_bytes(
    enforcing: RunningMilter, name: str
) -> None:
    raw = (MESSAGES / name).read_bytes().replace(b"\n", b"\r\n")
    send(enforcing, raw, f"QSAME{name}")
    outcome = expected(raw)
    entry = logged(enforcing, f"QSAME{name}")
    assert entry["verdict"] == outcome.verdict.name.lower()
    assert entry["policy_action"] == outcome.action.name.lower()
    assert entry["reasons"] == list(outcome.reasons)
    # Spans too: the milter rebuilt the header block byte for byte.
    assert [(f["code"], f["start"], f["end"]) for f in entry["findings"]] == [
        (f.code, f.start, f.end) for f in outcome.findings
    ]


def test_folded_and_spaced_fields_are_rebuilt_exactly(enforcing: RunningMilter) -> None:
    raw = (
        b"Subject: folded\r\n over two lines\r\n"
        b'From:   "ceo@bank.example"\r\n\t<m@mallory.example>\r\n'
        b"To:b@example.net\r\n\r\nbody\r\n"
    )
    send(enforcing, raw, "QFOLD")
    outcome = expected(raw)
    entry = logged(enforcing, "QFOLD")
    assert [(f["code"], f["start"], f["end"]) for f in entry["findings"]] == [
        (f.code, f.start, f.end) for f in outcome.findings
    ]
    assert entry["verdict"] == "deceptive"


# -- Monitor mode ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_monitor_mode_decides_but_touches_nothing(monitoring: RunningMilter, name: str) -> None:
    reply = send(monitoring, CASES[name], f"QMON{name}")
    assert reply.final == "continue" and untouched(reply)
    outcome = expected(CASES[name])
    entry = logged(monitoring, f"QMON{name}")
    assert entry["mode"] == "monitor" and entry["action"] == "accept"
    assert entry["policy_action"] == outcome.action.name.lower()
    # The metrics count what the policy would have done.
    labels = (
        f'action="accept",policy_action="{entry["policy_action"]}",verdict="{entry["verdict"]}"'
    )
    assert f"fromguard_milter_messages_total{{{labels}}}" in monitoring.metrics()


def test_monitor_mode_accepts_on_a_failure(monitoring: RunningMilter) -> None:
    raw = b"X-Test-Raise: yes\r\n" + CASES["two-from"]
    reply = send(monitoring, raw, "QMONFAIL")
    assert reply.final == "continue" and untouched(reply)
    assert (
        logged(monitoring, "QMONFAIL")["error"] == "RuntimeError: raised on request (X-Test-Raise)"
    )


# -- Watchdog and fail mode ------------------------------------------------------------


def test_watchdog_answers_with_the_fail_mode(enforcing: RunningMilter) -> None:
    raw = b"X-Test-Delay: 3\r\n" + CASES["clean"]
    reply = send(enforcing, raw, "QSLOW")
    # The policy accepts this message: a tempfail can only be the watchdog's answer.
    assert reply.final == "replycode" and reply.reply_text is not None
    assert reply.reply_text.startswith("451 4.3.0 ")
    entry = logged(enforcing, "QSLOW")
    assert entry["action"] == "tempfail" and entry["error"] == "no decision within 1 s"
    assert "verdict" in entry and entry["verdict"] == "unknown"


def test_internal_error_answers_with_the_fail_mode(enforcing: RunningMilter) -> None:
    reply = send(enforcing, b"X-Test-Raise: yes\r\n" + CASES["clean"], "QERR")
    assert reply.final == "replycode" and reply.reply_text is not None
    assert reply.reply_text.startswith("451 4.3.0 ")
    entry = logged(enforcing, "QERR")
    assert entry["action"] == "tempfail"
    assert entry["error"] == "RuntimeError: raised on request (X-Test-Raise)"


def test_a_panic_in_the_core_answers_with_the_fail_mode_and_the_next_message_goes_on(
    enforcing: RunningMilter,
) -> None:
    reply = send(enforcing, b"X-Test-Panic: yes\r\n" + CASES["clean"], "QPANIC")
    assert reply.final == "replycode" and reply.reply_text is not None
    assert reply.reply_text.startswith("451 4.3.0 ")
    entry = logged(enforcing, "QPANIC")
    assert entry["action"] == "tempfail"
    assert entry["error"].startswith("InternalError: fromguard failed in check_message (")
    assert 'fromguard_milter_errors_total{kind="internal"} 1.0' in enforcing.metrics()
    after = send(enforcing, CASES["clean"], "QAFTERPANIC")
    assert after.final == "continue" and untouched(after)
    assert logged(enforcing, "QAFTERPANIC")["action"] == "accept"


def test_fail_mode_accept(workdir: Path) -> None:
    running = RunningMilter(
        workdir / "policy.toml",
        workdir / "accept.sock",
        "--fail-mode",
        "accept",
        "--watchdog",
        "0.5",
    )
    try:
        for queue_id, marker in (
            ("QA1", b"X-Test-Raise: yes\r\n"),
            ("QA2", b"X-Test-Delay: 2\r\n"),
        ):
            reply = send(running, marker + CASES["two-from"], queue_id)
            assert reply.final == "continue" and untouched(reply)
            assert logged(running, queue_id)["action"] == "accept"
        metrics = running.metrics()
        assert 'fromguard_milter_errors_total{kind="error"} 1.0' in metrics
        assert 'fromguard_milter_errors_total{kind="timeout"} 1.0' in metrics
    finally:
        assert running.stop() == 0


# -- Metrics ---------------------------------------------------------------------------


def test_metrics_count_verdicts_actions_findings_and_latency(workdir: Path) -> None:
    running = RunningMilter(workdir / "policy.toml", workdir / "metrics.sock")
    try:
        for name in ("clean", "clean", "deceptive", "two-from"):
            send(running, CASES[name], f"QM{name}")
        running.wait_for("message", 4)
        metrics = running.metrics()
    finally:
        running.stop()
    total = "fromguard_milter_messages_total"
    assert f'{total}{{action="accept",policy_action="accept",verdict="valid"}} 2.0' in metrics
    assert f'{total}{{action="warn",policy_action="warn",verdict="deceptive"}} 1.0' in metrics
    assert f'{total}{{action="reject",policy_action="reject",verdict="invalid"}} 1.0' in metrics
    assert 'fromguard_milter_findings_total{code="address-in-display-name"} 1.0' in metrics
    assert 'fromguard_milter_findings_total{code="several-from-fields"} 1.0' in metrics
    assert "fromguard_milter_decision_seconds_count 4.0" in metrics
    assert "fromguard_milter_messages_in_flight 0.0" in metrics


# -- Signals ---------------------------------------------------------------------------


def test_sighup_reloads_a_good_policy_and_keeps_the_old_on_a_bad_one(workdir: Path) -> None:
    policy = workdir / "reloaded.toml"
    policy.write_text(POLICY, encoding="utf-8")
    running = RunningMilter(policy, workdir / "reload.sock")
    try:
        assert send(running, CASES["deceptive"], "QR1").body is not None  # warn

        policy.write_text(
            '[verdicts]\ndeceptive = "reject"\n# fromguard-policy: end\n', encoding="utf-8"
        )
        running.signal(signal.SIGHUP)
        assert running.wait_for("reload", 1)[0]["result"] == "ok"
        assert send(running, CASES["deceptive"], "QR2").reply_text == (
            "550 5.7.1 Message not accepted: the From header is not RFC 5322 compliant"
        )

        policy.write_text(
            '[verdicts]\ndeceptive = "rejekt"\n# fromguard-policy: end\n', encoding="utf-8"
        )
        running.signal(signal.SIGHUP)
        failed = running.wait_for("reload", 2)[1]
        assert failed["result"] == "failed"
        assert re.search(
            r"reloaded\.toml:2: verdicts\.deceptive: unknown action", str(failed["error"])
        )
        # The old policy stays in force, and the milter keeps serving.
        assert send(running, CASES["deceptive"], "QR3").final == "replycode"
        assert running.process.poll() is None
        assert 'fromguard_milter_reloads_total{result="failed"} 1.0' in running.metrics()
    finally:
        assert running.stop() == 0


def test_a_reload_refuses_a_policy_cut_short_and_logs_what_changed(workdir: Path) -> None:
    """A half-written policy file once loaded "ok" as a weaker policy (issue 17)."""
    policy = workdir / "cut.toml"
    policy.write_text(POLICY, encoding="utf-8")
    running = RunningMilter(policy, workdir / "cut.sock")
    try:
        # The start line has the policy in force, which the reloads' changes are against.
        (start,) = running.wait_for("start", 1)
        assert start["effective_policy"] == Policy.from_toml(policy).effective()
        policy.write_text(POLICY[: POLICY.index("[codes]")], encoding="utf-8")
        running.signal(signal.SIGHUP)
        failed = running.wait_for("reload", 1)[0]
        assert failed["result"] == "failed"
        assert "cut.toml:5: the file does not end with the line" in str(failed["error"])
        refused = "550 5.7.1 Two From fields: 100%% refused"  # % doubled for libmilter
        assert send(running, CASES["two-from"], "QC1").reply_text == refused

        policy.write_text(
            POLICY.replace('invalid = "quarantine"', 'invalid = "tag"'), encoding="utf-8"
        )
        running.signal(signal.SIGHUP)
        reloaded = running.wait_for("reload", 2)[1]
        assert (reloaded["result"], reloaded["changes"]) == (
            "ok",
            {
                "verdicts": {"invalid": {"old": "quarantine", "new": "tag"}},
                "weakened": ["verdict:invalid"],
            },
        )
        assert send(running, CASES["two-from"], "QC2").reply_text == refused
    finally:
        assert running.stop() == 0


def test_sigterm_drains_the_message_in_flight(workdir: Path) -> None:
    running = RunningMilter(workdir / "policy.toml", workdir / "drain.sock", "--watchdog", "5")
    replies: List[Reply] = []
    slow = threading.Thread(
        target=lambda: replies.append(
            send(running, b"X-Test-Delay: 1.5\r\n" + CASES["two-from"], "QD")
        ),
    )
    slow.start()
    deadline = time.monotonic() + 10
    while "fromguard_milter_messages_in_flight 1.0" not in running.metrics():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    running.signal(signal.SIGTERM)
    assert running.stop() == 0
    slow.join()
    assert replies and replies[0].reply_text == "550 5.7.1 Two From fields: 100%% refused"
    events = [entry["event"] for entry in running.log()]
    assert events[-2:] == ["message", "exit"] and "stop" in events
    assert running.log()[-1]["in_flight"] == 0
    assert not running.socket_path.exists() or not _accepts(running.socket_path)


def _accepts(path: Path) -> bool:
    try:
        MilterClient(str(path), timeout=1).close()
    except OSError:
        return False
    return True


def test_a_broken_policy_stops_the_start_with_one_line(workdir: Path) -> None:
    bad = workdir / "bad.toml"
    bad.write_text("[verdicts]\ninvalid = 3\n# fromguard-policy: end\n", encoding="utf-8")
    with pytest.raises(RuntimeError, match=r"cannot load the policy: .*bad\.toml:2"):
        RunningMilter(bad, workdir / "bad.sock")


def failed_start(workdir: Path, *options: str) -> str:
    """Start the milter with ``options``, which must stop it: exit status 2 and one line
    on stderr, which is returned."""
    done = subprocess.run(
        [sys.executable, str(SHIM), "--policy", str(workdir / "policy.toml"), *options],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2, done
    assert done.stdout == "" and "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and done.stderr.endswith("\n"), done.stderr
    return lines[0]


def test_a_metrics_port_in_use_stops_the_start_with_one_line(workdir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = failed_start(
            workdir, "--socket", f"unix:{workdir}/port.sock", "--metrics-port", str(port)
        )
    assert line == (
        f"fromguard milter: cannot serve the metrics on 127.0.0.1:{port}: Address already"
        " in use (--metrics-port 0 turns them off)"
    )
    assert not (workdir / "port.sock").exists()  # nothing was bound


def test_a_live_unix_socket_is_not_taken_over(workdir: Path, enforcing: RunningMilter) -> None:
    """A second milter on the first one's socket stops; libmilter alone would delete the
    socket and listen in its place."""
    line = failed_start(workdir, "--socket", f"unix:{enforcing.socket_path}", "--metrics-port", "0")
    assert line == (
        f"fromguard milter: cannot listen on unix:{enforcing.socket_path}: in use: another"
        " process is listening on it (a milter already running?)"
    )
    assert send(enforcing, CASES["clean"], "QSTILL").final == "continue"


def test_a_tcp_port_in_use_stops_the_start_with_one_line(workdir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = failed_start(workdir, "--socket", f"inet:{port}@127.0.0.1", "--metrics-port", "0")
    assert (
        line == f"fromguard milter: cannot listen on inet:{port}@127.0.0.1: Address already in use"
    )


def test_a_stale_unix_socket_is_replaced(workdir: Path) -> None:
    stale = workdir / "stale.sock"
    with socket.socket(socket.AF_UNIX) as crashed:  # bound, never listening: as after a crash
        crashed.bind(str(stale))
    assert stale.exists()
    running = RunningMilter(workdir / "policy.toml", stale, keep_socket=True)
    try:
        assert send(running, CASES["clean"], "QSTALE").final == "continue"
    finally:
        assert running.stop() == 0


@pytest.mark.parametrize(
    "options",
    [
        ["--user", "no-such-user-fg"],
        ["--user", "nobody", "--group", "no-such-group-fg"],
        ["--group", "nogroup"],
    ],
    ids=["unknown-user", "unknown-group", "group-alone"],
)
def test_a_bad_identity_stops_the_start_before_binding(workdir: Path, options: List[str]) -> None:
    line = failed_start(workdir, "--socket", f"unix:{workdir}/user.sock", *options)
    if options[0] == "--group":
        assert line == "fromguard milter: --group needs --user"
    elif os.geteuid() != 0:
        assert line == (
            f"fromguard milter: --user needs root to switch to (running as uid {os.geteuid()})"
        )
    else:
        name = options[-1]
        kind = "user" if options[-2] == "--user" else "group"
        assert line == f"fromguard milter: no such {kind}: {name!r}"
    assert not (workdir / "user.sock").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="--user switches identity only when started as root")
def test_started_as_root_it_binds_then_runs_as_the_user(workdir: Path) -> None:
    nobody = pwd.getpwnam("nobody")
    nogroup = grp.getgrnam("nogroup")
    running = RunningMilter(
        workdir / "policy.toml", workdir / "user.sock", "--user", "nobody", "--group", "nogroup"
    )
    try:
        # Every thread of the process (libmilter's, the metrics server's) runs as nobody,
        # real, effective, saved and filesystem ids alike, and no group of root's.
        ids = {nobody.pw_uid}, {nogroup.gr_gid}
        for task in Path(f"/proc/{running.process.pid}/task").iterdir():
            status = dict(line.split(":", 1) for line in (task / "status").read_text().splitlines())
            assert {int(n) for n in status["Uid"].split()} == ids[0]
            assert {int(n) for n in status["Gid"].split()} == ids[1]
            assert status["Groups"].split() == [str(nogroup.gr_gid)]  # nobody's groups
        assert running.log()[0]["uid"] == nobody.pw_uid
        assert running.socket_path.stat().st_uid == nobody.pw_uid
        # A warning too: what deciding imports on first use was imported before the
        # switch (this Python may live where nobody cannot read).
        warned = send(running, CASES["deceptive"], "QUSER1")
        assert warned.body is not None
        assert b"The address it was sent from: <m@mallory.example>" in warned.body
        rejected = send(running, CASES["two-from"], "QUSER2")
        assert rejected.reply_text == "550 5.7.1 Two From fields: 100%% refused"
        assert [entry["action"] for entry in running.messages()] == ["warn", "reject"]
        assert "notes" not in running.messages()[0]
    finally:
        assert running.stop() == 0


@pytest.mark.parametrize(
    "arguments",
    [
        ["milter"],
        ["milter", "--policy", "p.toml", "--watchdog", "-1"],
        ["milter", "--mode", "x"],
        ["milter", "--policy", "p.toml", "--socket-mode", "9"],
    ],
    ids=["no-policy", "negative-watchdog", "unknown-mode", "bad-socket-mode"],
)
def test_usage_errors(arguments: List[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(arguments)
    assert exit_info.value.code == 2
    assert "usage: fromguard milter" in capsys.readouterr().err


# -- Signals, the drain and the watchdog under faults ----------------------------------

SIGNAL_BITS = {
    signum: 1 << (signum - 1) for signum in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM)
}
REJECTING = POLICY.replace('deceptive = "warn"', 'deceptive = "reject"')
TAGGING = POLICY.replace('deceptive = "warn"', 'deceptive = "tag"')
DECEPTIVE_REJECTED = "550 5.7.1 Message not accepted: the From header is not RFC 5322 compliant"


def write_policy(path: Path, text: str) -> None:
    """Replace the policy file whole (written aside, then renamed), as an operator should:
    a reload never reads half a file."""
    staging = path.with_suffix(".new")
    staging.write_text(text, encoding="utf-8")
    os.replace(staging, path)


def threads_of(pid: int) -> Dict[int, int]:
    """The process's threads: kernel id -> the mask of signals it blocks (a thread that
    ends while they are listed is left out)."""
    masks: Dict[int, int] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except FileNotFoundError:
            continue
        for line in status.splitlines():
            if line.startswith("SigBlk:"):
                masks[int(task.name)] = int(line.split()[1], 16)
    return masks


def test_only_the_main_thread_takes_the_signals(enforcing: RunningMilter) -> None:
    """libmilter's signal thread (a sigwait on SIGHUP, SIGTERM and SIGINT, which stops
    the milter) is parked; every other thread but the main one blocks the three."""
    assert enforcing.log()[0]["libmilter_signal_thread"] == "parked"
    with MilterClient(str(enforcing.socket_path)) as client:  # a connection's thread
        assert client.send(*split_message(CASES["clean"]), "QMASK").final == "continue"
        pid = enforcing.process.pid
        masks = threads_of(pid)
    assert masks[pid] & sum(SIGNAL_BITS.values()) == 0
    others = {thread: mask for thread, mask in masks.items() if thread != pid}
    assert len(others) > 16  # the decision threads, libmilter's and the metrics server's
    for mask in others.values():
        assert all(mask & bit for bit in SIGNAL_BITS.values()), f"{mask:x}"


BURST = 1000
SENDERS = 8


def test_a_burst_of_sighups_under_load_leaves_the_last_policy_in_force(workdir: Path) -> None:
    """1,000 SIGHUPs while 8 connections send messages, the policy file changing every
    100 signals: no message lost or tempfailed, the milter alive and listening, and the
    policy of the last file in force. Signals that arrive while a reload runs give one
    reload after it: every signal is followed by a reload that reads the file as it is
    after the signal, and the log and the metrics count the reloads done."""
    policy = workdir / "burst.toml"
    write_policy(policy, POLICY)
    running = RunningMilter(policy, workdir / "burst.sock")
    stop = threading.Event()
    replies: List[Reply] = []
    failures: List[str] = []

    def sender(number: int) -> None:
        try:
            with MilterClient(str(running.socket_path), timeout=30) as client:
                count = 0
                while not stop.is_set():
                    raw = CASES["deceptive" if count % 2 else "clean"]
                    replies.append(client.send(*split_message(raw), f"QBURST{number}-{count}"))
                    count += 1
        except (OSError, AssertionError) as error:
            failures.append(f"sender {number}: {error!r}")

    senders = [threading.Thread(target=sender, args=(number,)) for number in range(SENDERS)]
    try:
        for thread in senders:
            thread.start()
        while len(replies) < 50:
            time.sleep(0.01)
        for index in range(BURST):
            if index % 100 == 0:
                write_policy(policy, (POLICY, TAGGING)[index // 100 % 2])
            running.signal(signal.SIGHUP)
        during = len(replies)
        write_policy(policy, REJECTING)
        running.signal(signal.SIGHUP)
        while len(replies) < during + 200 and not failures:
            time.sleep(0.01)
    finally:
        stop.set()
        for thread in senders:
            thread.join()
    assert failures == []
    assert running.process.poll() is None
    # None tempfailed: each answered by one of the policies (the last rejects).
    assert {(r.final, r.reply_text) for r in replies} <= {
        ("continue", None),
        ("replycode", DECEPTIVE_REJECTED),
    }
    logged = [e for e in running.messages() if str(e["queue_id"]).startswith("QBURST")]
    assert len(logged) == len(replies)
    assert {e["action"] for e in logged} <= {"accept", "tag", "warn", "reject"}
    # The last file's policy: once in force, it stays.
    deadline = time.monotonic() + 20
    while send(running, CASES["deceptive"], "QBURSTLAST").final != "replycode":
        assert time.monotonic() < deadline
    for attempt in range(5):
        assert send(running, CASES["deceptive"], f"QBURSTAFTER{attempt}").reply_text == (
            DECEPTIVE_REJECTED
        )
    reloads = running.wait_for("reload", 1)
    assert {entry["result"] for entry in reloads} == {"ok"}
    assert 1 <= len(reloads) <= BURST + 1
    metrics = running.metrics()
    assert f'fromguard_milter_reloads_total{{result="ok"}} {len(reloads)}.0' in metrics
    assert 'fromguard_milter_reloads_total{result="failed"} 0.0' in metrics
    assert running.stop() == 0


RACES = 20


def test_sighup_then_sigterm_reloads_before_the_drain_20_times(workdir: Path) -> None:
    """SIGHUP and SIGTERM sent back to back while two connections are open, one half way
    through a message (its header sent), the other before its first message: the reload
    comes first, the listener closes, and both messages are still answered, by the
    reloaded policy."""
    policy = workdir / "race.toml"
    header, body = split_message(CASES["deceptive"])
    for attempt in range(RACES):
        write_policy(policy, POLICY)  # the deceptive message gets a warning
        running = RunningMilter(policy, workdir / f"race{attempt}.sock")  # a log each
        halfway = MilterClient(str(running.socket_path))
        halfway.send_header(header, f"QRACE{attempt}")
        idle = MilterClient(str(running.socket_path))
        write_policy(policy, REJECTING)
        running.signal(signal.SIGHUP)
        running.signal(signal.SIGTERM)
        running.wait_for("stop", 1)
        deadline = time.monotonic() + 10
        while _accepts(running.socket_path):  # no new connection while draining
            assert time.monotonic() < deadline
            time.sleep(0.02)
        replies = [halfway.send_body(body, f"QRACE{attempt}"), idle.send(header, body, "QIDLE")]
        for client in (halfway, idle):
            client.close()
        assert running.stop() == 0, attempt
        assert [reply.reply_text for reply in replies] == [DECEPTIVE_REJECTED] * 2, attempt
        log = running.log()
        assert [entry["event"] for entry in log] == [
            "start", "reload", "stop", "message", "message", "exit"
        ]  # fmt: skip
        assert log[1]["result"] == "ok"
        assert (log[-1]["connections"], log[-1]["in_flight"]) == (0, 0)


def test_the_drain_ends_at_its_timeout(workdir: Path) -> None:
    running = RunningMilter(
        workdir / "policy.toml", workdir / "timeout.sock", "--drain-timeout", "1"
    )
    client = MilterClient(str(running.socket_path))
    try:
        client.send_header(split_message(CASES["clean"])[0], "QNEVER")
        running.signal(signal.SIGTERM)
        assert running.process.wait(30) == 1  # a connection was still open
    finally:
        client.sock.close()
    assert running.log()[-1] == {**running.log()[-1], "event": "exit", "connections": 1}


def test_metric_series_exist_at_zero_from_the_start(workdir: Path) -> None:
    running = RunningMilter(workdir / "policy.toml", workdir / "zero.sock")
    try:
        metrics = running.metrics()
    finally:
        running.stop()
    for kind in ("internal", "error", "timeout", "busy"):
        assert f'fromguard_milter_errors_total{{kind="{kind}"}} 0.0' in metrics
    for result in ("ok", "failed"):
        assert f'fromguard_milter_reloads_total{{result="{result}"}} 0.0' in metrics


SLOW_SENDERS = 16
PER_SLOW_SENDER = 33  # 9 slow each


def test_slow_decisions_do_not_starve_the_others(workdir: Path) -> None:
    """27% of the messages ask for a 3 s decision against a 1 s watchdog, from 16
    connections at once: each of them is answered with the fail mode, and none of the
    others; the threads the late decisions kept end with them."""
    running = RunningMilter(
        workdir / "policy.toml", workdir / "slow.sock", "--watchdog", "1", "--workers", "16"
    )
    results: Dict[str, Reply] = {}
    failures: List[str] = []

    def sender(number: int) -> None:
        try:
            with MilterClient(str(running.socket_path), timeout=30) as client:
                for index in range(PER_SLOW_SENDER):
                    slow = index % 11 in (0, 4, 8)  # 3 in 11: 27%
                    raw = (b"X-Test-Delay: 3\r\n" if slow else b"") + CASES["clean"]
                    queue_id = f"Q{'SLOW' if slow else 'FAST'}{number}-{index}"
                    results[queue_id] = client.send(*split_message(raw), queue_id)
        except (OSError, AssertionError) as error:
            failures.append(f"sender {number}: {error!r}")

    try:
        send(running, CASES["clean"], "QWARM")
        baseline = len(threads_of(running.process.pid))
        senders = [threading.Thread(target=sender, args=(n,)) for n in range(SLOW_SENDERS)]
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join()
        assert failures == []
        slow = {q: r for q, r in results.items() if q.startswith("QSLOW")}
        fast = {q: r for q, r in results.items() if q.startswith("QFAST")}
        assert len(slow) + len(fast) == SLOW_SENDERS * PER_SLOW_SENDER
        assert len(slow) == SLOW_SENDERS * 9
        assert {r.final for r in fast.values()} == {"continue"}
        assert {str(r.reply_text)[:10] for r in slow.values()} == {"451 4.3.0 "}
        logged = {e["queue_id"]: e for e in running.messages()}
        assert {logged[q]["error"] for q in slow} == {"no decision within 1 s"}
        assert {logged[q]["action"] for q in fast} == {"accept"}
        metrics = running.metrics()
        assert f'fromguard_milter_errors_total{{kind="timeout"}} {len(slow)}.0' in metrics
        assert 'fromguard_milter_errors_total{kind="busy"} 0.0' in metrics
        # The late decisions end 2 s after their watchdog, and their threads with them.
        deadline = time.monotonic() + 30
        while len(threads_of(running.process.pid)) > baseline:
            assert time.monotonic() < deadline, len(threads_of(running.process.pid))
            time.sleep(0.1)
    finally:
        assert running.stop() == 0
