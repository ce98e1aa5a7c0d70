"""fromguard's rspamd plugin under Debian's rspamd, run privately on 127.0.0.1
(``rspamd_lab.py``), asking a real ``fromguard serve`` (marked ``rspamd``).

rspamc submits every message of ``examples/sample.mbox``; each answer must carry the
symbol of the message's verdict as ``Policy.process`` gives it, with the finding codes
of that severity as options and the score of the README's configuration, and no other
fromguard symbol. With fromguard stopped, or slower than the plugin's timeout, rspamd
still answers and ``FROMGUARD_FAIL`` says why.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from fromguard import Policy, Verdict
from lab_fixture import running_lab
from rspamd_lab import Rspamd, missing_tools
from serve_client import RunningServe

pytestmark = pytest.mark.rspamd

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "examples" / "policies" / "exchange.toml"  # what the README installs
SCORES = {"FROMGUARD_DECEPTIVE": 6.0, "FROMGUARD_INVALID": 4.0, "FROMGUARD_LEGACY": 0.0}
TIMEOUT = "timeout = 2.0;"


def mailbox() -> List[bytes]:
    """The messages of the sample mailbox, without the mbox ``From `` lines (storage,
    which an MTA never hands to rspamd); a ``From :`` header field is no such line."""
    text = (ROOT / "examples" / "sample.mbox").read_bytes()
    parts = [part for part in re.split(rb"(?m)^(?=From (?![ \t]*:))", text) if part]
    return [part.split(b"\n", 1)[1] for part in parts]


class Lab:
    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="fgr-"))
        self.workdir.chmod(0o755)
        self.serve = RunningServe(POLICY, self.workdir)
        self.rspamd = Rspamd(self.serve.url, {"add_headers = false;": "add_headers = true;"})

    def close(self) -> None:
        self.rspamd.stop()
        self.serve.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    yield from running_lab(Lab, missing_tools(), "rspamd")


def fromguard_symbols(answer: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    return {name: s for name, s in answer["symbols"].items() if name.startswith("FROMGUARD")}


def test_every_message_of_the_sample_mailbox_gets_its_verdict_s_symbol(lab: Lab) -> None:
    policy = Policy.from_toml(POLICY)
    messages = mailbox()
    answers = lab.rspamd.scan(messages)
    assert len(answers) == len(messages) == 32
    seen = set()
    for message, answer in zip(messages, answers):
        header = message.split(b"\n\n", 1)[0] + b"\n"
        if header.startswith(b"From "):
            # rspamd drops a first line that starts "From " as mbox storage, a "From :"
            # field too: fromguard sees the rest (no From, so INVALID: still flagged).
            header = header.split(b"\n", 1)[1]
        outcome = policy.process(header)
        symbols = fromguard_symbols(answer)
        if outcome.verdict is Verdict.VALID:
            assert symbols == {}, message
            continue
        name = f"FROMGUARD_{outcome.verdict.name}"
        seen.add(name)
        assert set(symbols) == {name}, message
        severity = outcome.verdict.name.lower()
        codes = {f.code for f in outcome.findings if f.severity.name.lower() == severity}
        assert sorted(symbols[name].get("options", [])) == sorted(codes), message
        assert symbols[name]["score"] == SCORES[name]
    assert seen == set(SCORES)  # the mailbox has every verdict


def test_the_exchange_header_goes_into_the_milter_reply(lab: Lab) -> None:
    deceptive = b'From: "ceo@bank.example" <m@mallory.example>\nSubject: x\n\nhello\n'
    clean = b"From: Alice <alice@example.org>\nSubject: x\n\nhello\n"
    flagged, passed = lab.rspamd.scan([deceptive, clean])
    added = flagged["milter"]["add_headers"]
    assert added["X-MS-Exchange-P2FromRegexMatch"] == {"value": "True", "order": 0}
    assert "X-MS-Exchange-P2FromRegexMatch" not in passed.get("milter", {}).get("add_headers", {})


def test_fromguard_slower_than_the_timeout(lab: Lab) -> None:
    slow = b"X-Test-Delay: 3\nFrom: <a@example.org>\nSubject: x\n\nhello\n"
    (answer,) = lab.rspamd.scan([slow])
    symbols = fromguard_symbols(answer)
    assert set(symbols) == {"FROMGUARD_FAIL"}
    assert symbols["FROMGUARD_FAIL"]["score"] == 0.0
    (reason,) = symbols["FROMGUARD_FAIL"]["options"]
    assert "timeout" in reason.lower(), reason


def test_fromguard_stopped_rspamd_still_answers_and_says_why(lab: Lab) -> None:
    lab.serve.stop()
    deceptive = b'From: "ceo@bank.example" <m@mallory.example>\nSubject: x\n\nhello\n'
    (answer,) = lab.rspamd.scan([deceptive])
    symbols = fromguard_symbols(answer)
    assert set(symbols) == {"FROMGUARD_FAIL"}
    (reason,) = symbols["FROMGUARD_FAIL"]["options"]
    assert "refused" in reason.lower(), reason
    assert answer["action"] in ("no action", "greylist", "add header", "rewrite subject")
