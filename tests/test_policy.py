"""``fromguard.Policy``: conditions to actions, the Exchange preset, TOML loading and its
errors. How the warning is written into MIME bodies is ``test_mime.py``'s subject; here
each action is checked on a plain and on MIME messages, in LF and CRLF form."""

from __future__ import annotations

import email
import email.policy
import pickle
import unicodedata
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest

import fromguard
from fromguard import Action, Outcome, Policy, PolicyError, Verdict
from fromguard import policy as policy_module
from fromguard._mime import html_block
from fromguard.policy import (
    DEFAULT_REPLY,
    DEFAULT_WARNING,
    MAX_WARNING_LINE,
    SENDER_WIDTH,
    SmtpReply,
)

DATA = Path(__file__).parent / "data"
MESSAGES = DATA / "messages"
POLICIES = DATA / "policies"
EXAMPLES = Path(__file__).parent.parent / "examples" / "policies"

EXCHANGE_HEADER = b"X-MS-Exchange-P2FromRegexMatch: True"


def message(name: str, eol: bytes = b"\n") -> bytes:
    """A test message from ``tests/data/messages`` (stored with LF) with ``eol`` line ends."""
    raw = (MESSAGES / name).read_bytes()
    return raw if eol == b"\n" else raw.replace(b"\n", eol)


def split(raw: bytes) -> Tuple[bytes, bytes]:
    """Header block and body of a message."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        index = raw.find(separator)
        if index >= 0:
            return raw[: index + len(separator)], raw[index + len(separator) :]
    return raw, b""


def default_warning(raw: bytes) -> str:
    """The default warning as it reads on ``raw``, whose From holds one address."""
    from_field = fromguard.check_message(raw).field("from")
    assert from_field is not None and from_field.result.address is not None
    return DEFAULT_WARNING.format(sender=from_field.result.address)


def text_parts(raw: bytes) -> List[Tuple[str, str]]:
    """The subtype and decoded text of each text part that is not an attachment, as the
    standard library reads them (line ends as LF)."""
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    return [
        (part.get_content_subtype(), part.get_content().replace("\r\n", "\n"))
        for part in parsed.walk()
        if part.get_content_maintype() == "text" and not part.is_attachment()
    ]


# -- Actions ---------------------------------------------------------------------------


def test_actions_are_ordered_by_strength() -> None:
    assert Action.ACCEPT < Action.TAG < Action.WARN < Action.QUARANTINE < Action.REJECT
    assert [a.name for a in sorted(Action)] == ["ACCEPT", "TAG", "WARN", "QUARANTINE", "REJECT"]


EOLS = pytest.mark.parametrize("eol", [b"\n", b"\r\n"], ids=["LF", "CRLF"])
# Every deceptive test message: plain, no MIME at all, multipart/alternative, nested
# multipart/mixed with attachments, quoted-printable, base64, ISO-8859-1, Shift_JIS, HTML
# without <body>, multipart/related, S/MIME signed, PGP and S/MIME encrypted.
DECEPTIVE = sorted(
    path.name
    for path in MESSAGES.glob("*.eml")
    if path.name not in ("valid.eml", "legacy.eml", "two-from.eml")
)
SEALED = {
    "signed.eml": "signed part left untouched: multipart/signed",
    "encrypted.eml": "encrypted part left untouched: multipart/encrypted",
    "smime-encrypted.eml": "signed or encrypted part left untouched: application/pkcs7-mime",
}
PLAIN_AND_MIME = pytest.mark.parametrize("name", DECEPTIVE)


@EOLS
@PLAIN_AND_MIME
def test_accept_delivers_the_same_bytes(name: str, eol: bytes) -> None:
    raw = message(name, eol)
    outcome = Policy(verdicts={"deceptive": "accept"}).process(raw)
    assert outcome.action is Action.ACCEPT
    assert outcome.verdict is Verdict.DECEPTIVE
    assert outcome.message is raw
    assert outcome.reasons == ()
    assert outcome.smtp_reply is None
    assert outcome.notes == ()


@EOLS
@PLAIN_AND_MIME
@pytest.mark.parametrize("action", ["quarantine", "reject"])
def test_quarantine_and_reject_leave_the_message_alone(name: str, eol: bytes, action: str) -> None:
    raw = message(name, eol)
    outcome = Policy(verdicts={"deceptive": action}).process(raw)
    assert outcome.action is Action[action.upper()]
    assert outcome.message is raw
    assert outcome.reasons == ("verdict:deceptive",)
    if action == "reject":
        assert outcome.smtp_reply == DEFAULT_REPLY
        assert str(outcome.smtp_reply) == (
            "550 5.7.1 Message not accepted: the From header is not RFC 5322 compliant"
        )
    else:
        assert outcome.smtp_reply is None


@EOLS
@PLAIN_AND_MIME
def test_tag_adds_header_fields_at_the_top_and_nothing_else(name: str, eol: bytes) -> None:
    raw = message(name, eol)
    outcome = Policy(verdicts={"deceptive": "tag"}).process(raw)
    assert outcome.action is Action.TAG
    added = (
        b"X-Fromguard-Verdict: deceptive"
        + eol
        + b"X-Fromguard-Findings: address-in-display-name"
        + eol
    )
    assert outcome.message == added + raw
    parsed = email.message_from_bytes(outcome.message, policy=email.policy.default)
    assert parsed["X-Fromguard-Verdict"] == "deceptive"
    assert parsed["From"] == '"ceo@bank.example" <mallory@evil.example>'


@pytest.mark.usefixtures("policy_engine")
@EOLS
@PLAIN_AND_MIME
def test_warn_tags_and_prepends_the_warning(name: str, eol: bytes) -> None:
    raw = message(name, eol)
    outcome = Policy(verdicts={"deceptive": "warn"}).process(raw)
    assert outcome.action is Action.WARN
    header, body = split(outcome.message)
    assert header.startswith(b"X-Fromguard-Verdict: deceptive" + eol)
    assert header.endswith(split(raw)[0])
    if name in SEALED:  # the body is signed or encrypted: only the header block changes
        assert outcome.notes == (SEALED[name],)
        assert body == split(raw)[1]
        return
    assert outcome.notes == ()
    texts = text_parts(outcome.message)
    originals = text_parts(raw)
    assert len(texts) == len(originals) > 0
    assert b"\r" not in outcome.message if eol == b"\n" else b"\n" not in body.replace(eol, b"")
    for (subtype, text), (_, original) in zip(texts, originals):
        # The warning (test_mime checks where and how exactly) and the original text.
        warning = default_warning(raw)
        warning = html_block(warning) if subtype == "html" else warning
        assert text.count(warning) == 1
        assert "".join(text.replace(warning, "").split()) == "".join(original.split())


@EOLS
@PLAIN_AND_MIME
@pytest.mark.parametrize("action", ["tag", "warn"])
def test_fields_can_be_left_to_the_caller(name: str, eol: bytes, action: str) -> None:
    """``add_headers=False`` (what the milter uses): the fields are listed, the header
    block stays the input's and the body is the same rewrite."""
    raw = message(name, eol)
    policy = Policy(
        verdicts={"deceptive": action}, tag={"headers": {"X-Empty": "", "X-V": "{verdict}"}}
    )
    full = policy.process(raw)
    bare = policy.process(raw, add_headers=False)
    assert full.headers == bare.headers == (("X-V", "deceptive"),)
    assert full.message == b"X-V: deceptive" + eol + bare.message
    assert split(bare.message)[0] == split(raw)[0]
    assert (bare.action, bare.reasons, bare.notes) == (full.action, full.reasons, full.notes)


def test_accepted_and_refused_messages_list_no_fields() -> None:
    raw = message("plain.eml")
    for action in ("accept", "quarantine", "reject"):
        assert Policy(verdicts={"deceptive": action}).process(raw).headers == ()


# -- Matching --------------------------------------------------------------------------


def test_the_strongest_matching_action_wins() -> None:
    raw = message("plain.eml")
    policy = Policy(
        verdicts={"deceptive": "tag"},
        codes={"address-in-display-name": "quarantine", "bidi-control": "reject"},
    )
    outcome = policy.process(raw)
    assert outcome.action is Action.QUARANTINE
    assert outcome.reasons == ("code:address-in-display-name",)


def test_reasons_list_every_condition_that_chose_the_action() -> None:
    raw = message("plain.eml")
    policy = Policy(verdicts={"deceptive": "warn"}, codes={"address-in-display-name": "warn"})
    assert policy.process(raw).reasons == ("verdict:deceptive", "code:address-in-display-name")


def test_a_policy_pickles_and_decides_the_same() -> None:
    """A scan on Dask sends the policy to each worker: its compiled rules are rebuilt
    there, and a table the caller changes later does not change it."""
    rules = {"bank": {"target": "display-name", "pattern": "(?i)bank", "action": "reject"}}
    codes = {"address-in-display-name": "quarantine"}
    policies = [
        Policy(codes=codes, rules=rules, tag={"headers": {"X-Flag": "{verdict}"}}),
        Policy.from_toml(EXAMPLES / "strict.toml"),
        Policy.exchange(),
    ]
    codes["address-in-display-name"] = "reject"
    for policy in policies:
        copy = pickle.loads(pickle.dumps(policy))
        assert repr(copy) == repr(policy) and copy.headers == policy.headers
        for name in sorted(path.name for path in MESSAGES.iterdir()):
            assert copy.process(message(name)) == policy.process(message(name)), name
    assert pickle.loads(pickle.dumps(policies[0])).rules["code:address-in-display-name"] == (
        Action.QUARANTINE
    )


def test_message_level_codes_match() -> None:
    outcome = Policy(codes={"several-from-fields": "reject"}).process(message("two-from.eml"))
    assert outcome.action is Action.REJECT
    assert outcome.reasons == ("code:several-from-fields",)


def test_a_rule_can_carry_its_own_reply() -> None:
    raw = b"From: a@x.example, b@y.example\r\nTo: c@z.example\r\n\r\nHi\r\n"
    policy = Policy(
        verdicts={"invalid": "reject"},
        codes={
            "several-authors-without-sender": {
                "action": "reject",
                "code": 550,
                "enhanced": "5.1.20",
                "text": "Multiple From addresses are not allowed without Sender address",
            }
        },
    )
    outcome = policy.process(raw)
    assert outcome.action is Action.REJECT
    assert "code:several-authors-without-sender" in outcome.reasons
    assert str(outcome.smtp_reply) == (
        "550 5.1.20 Multiple From addresses are not allowed without Sender address"
    )


def test_the_reject_table_sets_the_default_reply() -> None:
    policy = Policy(verdicts={"deceptive": "reject"}, reject={"code": 554, "text": "No."})
    outcome = policy.process(message("plain.eml"))
    assert outcome.smtp_reply == SmtpReply(554, "5.7.1", "No.")
    temporary = Policy(verdicts={"deceptive": "reject"}, reject={"code": 451})
    assert temporary.reply == SmtpReply(451, "4.7.1", DEFAULT_REPLY.text)


def test_legacy_and_valid_messages_are_accepted_by_default() -> None:
    for name in ("legacy.eml", "valid.eml"):
        raw = message(name)
        outcome = Policy.exchange().process(raw)
        assert outcome.action is Action.ACCEPT
        assert outcome.message is raw
    assert Policy.exchange().process(message("legacy.eml")).verdict is Verdict.LEGACY


def test_findings_are_field_and_message_findings_in_message_coordinates() -> None:
    raw = message("two-from.eml").replace(b"From: <ceo", b"From: Dr. C <ceo")
    outcome = Policy().process(raw)
    spans = {f.code: raw[f.start : f.end] for f in outcome.findings}
    assert spans["several-from-fields"].startswith(b"From: Dr. C <ceo@bank.example>")
    assert spans["obs-phrase"] == b"."
    assert [f.start for f in outcome.findings] == sorted(f.start for f in outcome.findings)
    deceptive = Policy().process(message("plain.eml")).findings
    (finding,) = deceptive
    assert b"ceo@bank.example" in message("plain.eml")[finding.start : finding.end]


def test_an_empty_policy_accepts_everything_unchanged() -> None:
    policy = Policy()
    assert repr(policy) == "<Policy accept all>"
    for path in sorted(MESSAGES.glob("*.eml")):
        raw = path.read_bytes()
        outcome = policy.process(raw)
        assert (outcome.action, outcome.message) == (Action.ACCEPT, raw)


def test_process_takes_bytes_only() -> None:
    with pytest.raises(TypeError, match="expected bytes"):
        Policy().process("From: a@b.example\n\n")  # type: ignore[arg-type]


def test_outcome_repr_leaves_the_message_out() -> None:
    outcome = Policy(verdicts={"deceptive": "tag"}).process(message("plain.eml"))
    assert isinstance(outcome, Outcome)
    assert repr(outcome) == (
        f"<Outcome action=TAG verdict=DECEPTIVE reasons=('verdict:deceptive',)"
        f" message={len(outcome.message)} bytes>"
    )


def test_a_message_costs_one_core_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """The header block is split and its From fields parsed once per message: the check
    and the rules come from one call into the core."""
    calls: List[Tuple[bytes, Any]] = []
    real = policy_module._policy_check

    def counted(raw: bytes, **options: Any) -> Any:
        calls.append((raw, options.get("rules")))
        return real(raw, **options)

    monkeypatch.setattr(policy_module, "_policy_check", counted)
    policy = Policy(
        rules={"bank": {"target": "display-name", "pattern": "(?i)bank", "action": "reject"}}
    )
    raw = b"From: Bank <a@b.example>\n\n"
    outcome = policy.process(raw)
    assert outcome.action is Action.REJECT and outcome.reasons == ("rule:bank",)
    assert len(calls) == 1 and calls[0][0] == raw and len(calls[0][1]) == 1


# -- Header templates ------------------------------------------------------------------


def test_header_templates() -> None:
    policy = Policy(
        verdicts={"deceptive": "tag"},
        tag={
            "headers": {
                "X-Action": "{action} because {reasons}",
                "X-Braces": "{{verdict}} is {verdict}",
                "X-Empty-Is-Left-Out": "{codes}",
            }
        },
    )
    assert policy.headers == (
        ("X-Action", "{action} because {reasons}"),
        ("X-Braces", "{{verdict}} is {verdict}"),
        ("X-Empty-Is-Left-Out", "{codes}"),
    )
    header, _ = split(policy.process(message("plain.eml")).message)
    assert header.startswith(
        b"X-Action: tag because verdict:deceptive\n"
        b"X-Braces: {verdict} is deceptive\n"
        b"X-Empty-Is-Left-Out: address-in-display-name\n"
    )
    valid = Policy(
        verdicts={"valid": "tag"},
        tag={"headers": {"X-Verdict": "{verdict}", "X-Codes": "{codes}"}},
    )
    tagged = valid.process(message("valid.eml")).message
    assert tagged.startswith(b"X-Verdict: valid\nFrom:")  # {codes} empty: no field


def test_long_header_values_are_folded() -> None:
    raw = message("plain.eml")
    policy = Policy(
        verdicts={"deceptive": "tag"},
        tag={"headers": {"X-Long": " ".join(["{codes}"] * 8)}},
    )
    header, _ = split(policy.process(raw).message)
    lines = header.split(b"\n")
    assert lines[0].startswith(b"X-Long: address-in-display-name")
    assert lines[1].startswith(b" address-in-display-name")
    assert all(len(line) <= 78 for line in lines[:3])
    parsed = email.message_from_bytes(policy.process(raw).message, policy=email.policy.default)
    assert parsed["X-Long"] == " ".join(["address-in-display-name"] * 8)


# -- The warning names the sender --------------------------------------------------------

WARN_ALL = Policy(
    verdicts={verdict: "warn" for verdict in ("valid", "legacy", "deceptive", "invalid")}
)
SENDER_LINE = "The address it was sent from: <{}>"


def warning_lines(header: bytes, content_type: bytes = b"text/plain; charset=utf-8") -> List[str]:
    """The warning's lines in a one-part UTF-8 (8bit) message with this header block: in
    the text, or in a part of its own before it (a header block the email package ends
    early, at a line that is no field, is wrapped), as the email package reads it."""
    raw = (
        header
        + b"\r\nContent-Type: "
        + content_type
        + b"\r\nContent-Transfer-Encoding: 8bit\r\n\r\nHello.\r\n"
    )
    outcome = WARN_ALL.process(raw)
    assert outcome.action is Action.WARN
    wrapped = any("wrapped in multipart/mixed" in note for note in outcome.notes)
    parsed = email.message_from_bytes(outcome.message, policy=email.policy.compat32)
    texts = [part.get_payload(decode=True) for part in parsed.walk() if not part.is_multipart()]
    end = b"\r\n" if wrapped else b"\r\n\r\nHello.\r\n"
    assert texts[0].endswith(end) and texts[-1].endswith(b"Hello.\r\n")
    return texts[0][: -len(end)].decode("utf-8").split("\r\n")


CAUTION = DEFAULT_WARNING.split("\n")[0]

SHOWN_SENDERS = {
    "plain": ('"ceo@bank.example" <m@mallory.example>', "m@mallory.example"),
    "idn-as-written": ('"Bank" <m@xn--bnk-6cd.example>', "m@xn--bnk-6cd.example"),
    "utf8-kept": (
        '"ceo@bank.example" <j\u00f6rg@m\u00e4llory.example>',
        "j\u00f6rg@m\u00e4llory.example",
    ),
    "bidi-override": ('"ceo@bank.example" <m\u202e@mallory.example>', "m\\u202e@mallory.example"),
    "bidi-in-domain": ('"x" <m@ma\u202ellory.example>', "m@ma\\u202ellory.example"),
    "zero-width": ('"x" <m\u200b@mallory.example>', "m\\u200b@mallory.example"),
    "line-separator": (
        '<"m\u2028X-Evil: 1"@mallory.example>',
        '"m\\u2028X-Evil: 1"@mallory.example',
    ),
    "no-break-space": ('"x" <"m\u00a0safe"@mallory.example>', "m\\xa0safe@mallory.example"),
    "combining-mark-first": ('"x" <"\u0338m"@mallory.example>', "\\u0338m@mallory.example"),
    "combining-mark-kept": ('"x" <m\u0301@mallory.example>', "m\u0301@mallory.example"),
    "combining-after-escape": (
        '"x" <\u202e\u0301@mallory.example>',
        "\\u202e\\u0301@mallory.example",
    ),
    "terminal-escape": ('"x" <"a\x1b[31m"@mallory.example>', '"a\\x1b[31m"@mallory.example'),
    "long-cut-in-the-middle": (
        '"x" <"' + "a" * 300 + '"@bank.example.evil.example>',
        "a" * 19 + "..." + "a" * 12 + "@bank.example.evil.example",
    ),
    "long-marks-cut-with-their-letter": (
        '"x" <' + "b" * 50 + "a\u0301" * 20 + "@evil.example>",
        "b" * 19 + "..." + "a\u0301" * 12 + "@evil.example",
    ),
    "long-escapes-cut-whole": (
        '"x" <"' + "\u202e" * 40 + '"@evil.example>',
        "\\u202e" * 3 + "..." + "\\u202e" * 4 + "@evil.example",
    ),
}


@pytest.mark.usefixtures("policy_engine")
@pytest.mark.parametrize(("value", "shown"), SHOWN_SENDERS.values(), ids=SHOWN_SENDERS)
def test_the_warning_names_the_sender_and_escapes_what_would_not_print(
    value: str, shown: str
) -> None:
    lines = warning_lines(b"From: " + value.encode())
    assert lines == [CAUTION, SENDER_LINE.format(shown)]
    # Whatever the address holds, it is one line, within the limits, and shows no
    # control, format (bidi, zero-width) or separator character.
    assert len(shown) <= SENDER_WIDTH and len(lines[1]) <= MAX_WARNING_LINE
    assert not [c for c in lines[1] if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]


@pytest.mark.usefixtures("policy_engine")
@pytest.mark.parametrize(
    "header",
    [
        b"From: <m@mallory.example>\r\nFrom: <ceo@bank.example>",
        b"From: <m@mallory.example>, <ceo@bank.example>",
        b"From: Bank <ceo@bank.example> <m@mallory.example>",  # which one is in doubt
        b"From: Bank <ceo@bank.example>\r\n\xef\xbb\xbfFrom: <m@mallory.example>",
        b'From: <"a\\\rX-Evil: 1"@mallory.example>',
        b"Subject: no From at all",
    ],
    ids=["two-from", "two-authors", "invalid", "disguised-second-from", "escaped-cr", "no-from"],
)
def test_no_single_sure_sender_leaves_the_line_out(header: bytes) -> None:
    assert warning_lines(header) == [CAUTION]


@pytest.mark.usefixtures("policy_engine")
def test_an_ascii_part_and_an_html_part_show_the_sender_in_their_form() -> None:
    latin1 = warning_lines("From: <jörg@mällory.example>".encode(), b"text/plain; charset=us-ascii")
    assert latin1 == [CAUTION, SENDER_LINE.format("j\\xf6rg@m\\xe4llory.example")]
    html = WARN_ALL.process(
        b'From: "x" <"<b>"@mallory.example>\r\nContent-Type: text/html\r\n\r\n<p>Hello.</p>\r\n'
    )
    assert split(html.message)[1].endswith(
        b'<br>\r\nThe address it was sent from: &lt;"&lt;b&gt;"@mallory.example&gt;</p>\r\n'
        b"<p>Hello.</p>\r\n"
    )


@pytest.mark.usefixtures("policy_engine")
def test_a_warning_of_its_own_with_the_sender_and_braces() -> None:
    policy = Policy(
        verdicts={"deceptive": "warn"},
        warn={
            "text": "Vorsicht {{ungeprüft}}.\nAbsender: {sender}",
            "ascii_text": "Caution.\nSender: {sender}",
        },
    )
    assert policy.warning.text == "Vorsicht {{ungeprüft}}.\nAbsender: {sender}"  # as written
    raw = b'From: "ceo@bank.example" <m\xc3\xb6@mallory.example>\r\n\r\nHello.\r\n'
    body = split(policy.process(raw).message)[1]
    # A 7bit part (no Content-Transfer-Encoding): the ASCII text, the address escaped.
    assert body == b"Caution.\r\nSender: m\\xf6@mallory.example\r\n\r\nHello.\r\n"
    utf8 = raw.replace(
        b"\r\n\r\n",
        b"\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
    )
    body = split(policy.process(utf8).message)[1]
    assert (
        body.decode() == "Vorsicht {ungeprüft}.\r\nAbsender: mö@mallory.example\r\n\r\nHello.\r\n"
    )


# -- The Exchange preset ---------------------------------------------------------------


@pytest.mark.usefixtures("policy_engine")
def test_exchange_preset_header_and_warning() -> None:
    raw = message("alternative.eml", b"\r\n")
    outcome = Policy.exchange().process(raw)
    assert outcome.action is Action.WARN
    assert outcome.reasons == ("verdict:deceptive",)
    header, _ = split(outcome.message)
    assert header == EXCHANGE_HEADER + b"\r\n" + split(raw)[0]
    warning = default_warning(raw)
    for subtype, text in text_parts(outcome.message):
        assert text.count(html_block(warning) if subtype == "html" else warning) == 1


@pytest.mark.usefixtures("policy_engine")
def test_exchange_preset_acts_on_invalid_too() -> None:
    outcome = Policy.exchange().process(message("two-from.eml"))
    assert (outcome.action, outcome.verdict) == (Action.WARN, Verdict.INVALID)
    assert outcome.message.startswith(EXCHANGE_HEADER + b"\n")


def test_exchange_preset_header_only() -> None:
    raw = message("plain.eml")
    outcome = Policy.exchange(add_warning=False).process(raw)
    assert outcome.action is Action.TAG
    assert outcome.message == EXCHANGE_HEADER + b"\n" + raw


@pytest.mark.usefixtures("policy_engine")
def test_exchange_preset_warning_only() -> None:
    raw = message("plain.eml")
    outcome = Policy.exchange(add_header=False).process(raw)
    assert outcome.action is Action.WARN
    header, body = split(outcome.message)
    assert header == split(raw)[0]
    assert body == (default_warning(raw) + "\n\n").encode() + split(raw)[1]


def test_exchange_preset_with_both_switches_off_changes_nothing() -> None:
    policy = Policy.exchange(add_header=False, add_warning=False)
    for path in sorted(MESSAGES.glob("*.eml")):
        for eol in (b"\n", b"\r\n"):
            raw = message(path.name, eol)
            outcome = policy.process(raw)
            assert outcome.action is Action.ACCEPT
            assert outcome.message is raw


def test_the_example_exchange_policy_is_the_preset() -> None:
    loaded = Policy.from_toml(EXAMPLES / "exchange.toml")
    preset = Policy.exchange()
    assert loaded.rules == preset.rules
    for path in sorted(MESSAGES.glob("*.eml")):
        raw = path.read_bytes()
        a, b = loaded.process(raw), preset.process(raw)
        assert (a.action, a.message, a.reasons, a.notes) == (
            b.action,
            b.message,
            b.reasons,
            b.notes,
        )


def test_the_example_strict_policy() -> None:
    strict = Policy.from_toml(EXAMPLES / "strict.toml")
    assert strict.process(message("plain.eml")).action is Action.QUARANTINE
    assert strict.process(message("legacy.eml")).action is Action.ACCEPT
    rejected = strict.process(b"From: a@x.example, b@y.example\n\nHi\n")
    assert rejected.action is Action.REJECT
    assert rejected.smtp_reply is not None and rejected.smtp_reply.enhanced == "5.1.20"
    tagged = strict.process(b"From: a@x.example\nSender: b@y.example\n\nHi\n")
    assert tagged.action is Action.TAG
    assert tagged.message.startswith(
        b"X-Fromguard-Verdict: valid\nX-Fromguard-Findings: sender-differs\n"
        b"X-Fromguard-Action: tag (code:sender-differs)\n"
    )


def test_the_example_strict_policy_rules() -> None:
    strict = Policy.from_toml(EXAMPLES / "strict.toml")
    brand = strict.process(b"From: Bank Security <alerts@mallory.example>\n\nHi\n")
    assert (brand.action, brand.reasons) == (Action.WARN, ("rule:impersonates-our-brand",))
    lookalike = strict.process(b"From: Jane <jane@secure-bank.example>\n\nHi\n")
    assert (lookalike.action, lookalike.reasons) == (
        Action.QUARANTINE,
        ("rule:lookalike-of-our-domain",),
    )
    bulk = strict.process(b"From: Jane <jane@x.example>\nX-Mailer: MassMailer 2\n\nHi\n")
    assert (bulk.action, bulk.reasons) == (Action.TAG, ("rule:bulk-tool-header",))


# -- Loading and its errors ------------------------------------------------------------

# file -> (line, text the message must contain)
BROKEN: Dict[str, Tuple[Optional[int], str]] = {
    "syntax-error.toml": (3, "TOML syntax: "),
    "unknown-code.toml": (6, "codes.address-in-displayname: unknown finding code"),
    "unknown-action.toml": (3, "verdicts.deceptive: unknown action: the string 'bounce'"),
    "bad-smtp-code.toml": (5, "reject.code: bad SMTP code 250"),
    "bad-enhanced-code.toml": (3, "its class must match the SMTP code 550"),
    "bad-rule-code.toml": (2, "codes.several-authors-without-sender.code: bad SMTP code 99"),
    "unknown-key.toml": (6, "warn.colour: unknown key 'colour'"),
    "unknown-verdict.toml": (2, "verdicts.suspicious: unknown verdict"),
    "unknown-table.toml": (1, "rule: unknown key 'rule'"),
    "mime-header.toml": (6, "Content-Type may not be added"),
    "bad-header-name.toml": (5, "bad header field name 'X Bad'"),
    "unknown-placeholder.toml": (2, "unknown placeholder '{sender}'"),
    "reply-without-reject.toml": (2, "'text' is only allowed with action 'reject'"),
    "dotted-keys.toml": (3, "codes.no-such-code: unknown finding code"),
    "multiline-string.toml": (7, "warn.ascii_text: bad warning text"),
    "bad-rule-name.toml": (4, "bad rule name 'Bänk-Marke' (expected 1 to 64 printable ASCII"),
}


def test_every_broken_policy_file_is_covered() -> None:
    assert sorted(p.name for p in POLICIES.glob("*.toml")) == sorted(BROKEN)


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_policy_names_the_file_the_line_and_the_reason(name: str) -> None:
    line, reason = BROKEN[name]
    path = POLICIES / name
    with pytest.raises(PolicyError) as caught:
        Policy.from_toml(path)
    error = caught.value
    assert (error.path, error.line) == (str(path), line)
    assert str(error).startswith(f"{path}:{line}: ")
    assert reason in str(error)
    assert error.__cause__ is None and error.__suppress_context__  # one line, no chain


def test_the_syntax_error_says_what_is_wrong() -> None:
    with pytest.raises(PolicyError, match=r"syntax-error\.toml:3: TOML syntax: \w"):
        Policy.from_toml(POLICIES / "syntax-error.toml")


def test_an_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(PolicyError, match=r"nope\.toml: cannot read the file") as caught:
        Policy.from_toml(missing)
    assert caught.value.line is None


def test_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[warn]\n\ntext = "Achtung, \xfcberpr\xfcfen"\n# fromguard-policy: end\n')
    with pytest.raises(PolicyError, match=r"latin1\.toml:3: the file is not UTF-8"):
        Policy.from_toml(path)


def test_a_section_that_is_not_a_table(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('verdicts = "warn"\n# fromguard-policy: end\n', encoding="utf-8")
    with pytest.raises(PolicyError, match=r"p\.toml:1: verdicts: expected a table"):
        Policy.from_toml(path)


def test_a_toml_policy_is_the_dict_policy(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        '[verdicts]\ndeceptive = "warn"\n[warn]\ntext = "Vorsicht: Absender \u00fcberpr\u00fcfen."\n# fromguard-policy: end\n',
        encoding="utf-8",
    )
    loaded = Policy.from_toml(str(path))
    built = Policy.from_dict(
        {"verdicts": {"deceptive": "warn"}, "warn": {"text": "Vorsicht: Absender überprüfen."}}
    )
    assert loaded.rules == built.rules
    assert loaded.warning == built.warning
    assert loaded.warning.ascii_text == "Vorsicht: Absender uberprufen."


# -- A whole file: empty, comments only, the end marker -------------------------------

MARKER = "# fromguard-policy: end\n"

NOT_A_POLICY: List[Tuple[str, Optional[int], str]] = [
    ("", None, "the file is empty"),
    ("  \n\t\r\n\n", None, "the file is empty"),
    ("# a policy, soon\n\n#", 3, "the file holds only comments"),
    (MARKER, 1, "the file holds only comments"),  # accept all, from a file: say so
    ('[verdicts]\ninvalid = "reject"\n', 2, "does not end with the line"),
    ('[verdicts]\ninvalid = "reject"\n' + MARKER[:-3], 3, "does not end with the line"),
    ('[verdicts]\ninvalid = "reject" # fromguard-policy: end\n', 2, "does not end with"),
    (MARKER + '[verdicts]\ninvalid = "reject"\n' + MARKER, 1, "before the end of the file"),
    (
        '[verdicts]\n  # fromguard-policy: end of the verdicts\ninvalid = "reject"\n' + MARKER,
        2,
        "before the end of the file",  # cut after 'end', it would look whole
    ),
]


@pytest.mark.parametrize(("text", "line", "reason"), NOT_A_POLICY)
def test_a_file_that_is_no_whole_policy_fails_to_load(
    tmp_path: Path, text: str, line: Optional[int], reason: str
) -> None:
    path = tmp_path / "p.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        Policy.from_toml(path)
    assert (caught.value.path, caught.value.line) == (str(path), line)
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"{path}:{line}: " if line else f"{path}: ")


@pytest.mark.parametrize(
    "ending",
    [
        MARKER,
        MARKER[:-1],  # no final line break
        MARKER.replace("\n", "\r\n") + "\r\n  \n",  # CRLF, blank lines after it
        "\t" + MARKER[:-1] + "  \n",  # blanks around it
    ],
)
def test_the_end_marker_ends_a_policy(tmp_path: Path, ending: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text('[verdicts]\ninvalid = "reject"\n# the end:\n' + ending, encoding="utf-8")
    assert Policy.from_toml(path).rules == {"verdict:invalid": Action.REJECT}


def test_dicts_and_code_need_no_marker() -> None:
    assert Policy.from_dict({}).rules == Policy().rules == {}


@pytest.mark.parametrize("name", ["exchange.toml", "strict.toml"])
def test_no_truncation_of_a_shipped_policy_loads_as_another_policy(
    tmp_path: Path, name: str
) -> None:
    """Every byte prefix of the file fails to load, or loads what the whole file does
    (cut in the blanks after the end marker)."""
    data = (EXAMPLES / name).read_bytes()
    whole = Policy.from_toml(EXAMPLES / name).effective()
    cut = tmp_path / name
    loaded = []
    for length in range(len(data)):
        cut.write_bytes(data[:length])
        try:
            policy = Policy.from_toml(cut)
        except PolicyError:
            continue
        assert policy.effective() == whole, length
        loaded.append(length)
    assert loaded == [len(data.rstrip())]  # the file less its final line break
    assert sorted(p.name for p in EXAMPLES.glob("*.toml")) == ["exchange.toml", "strict.toml"]


# -- What a policy does, and what changed ---------------------------------------------


def test_the_effective_policy_fills_in_every_default() -> None:
    effective = Policy.from_toml(EXAMPLES / "strict.toml").effective()
    reply = str(DEFAULT_REPLY)
    several = "550 5.1.20 Multiple From addresses are not allowed without Sender address"
    assert effective["verdicts"] == {
        "valid": "accept",
        "legacy": "accept",
        "deceptive": "quarantine",
        "invalid": "reject",
    }
    assert effective["codes"] == {
        "several-authors-without-sender": "reject",
        "bidi-control": "reject",
        "sender-differs": "tag",
        "obs-field-name-space": "tag",
    }
    assert effective["rules"][1] == {
        "name": "lookalike-of-our-domain",
        "target": "domain",
        "pattern": "(?i)^(?:xn--|.*-bank\\.example$|bank\\.example\\.)",
        "action": "quarantine",
    }
    assert [rule["name"] for rule in effective["rules"]] == [
        "impersonates-our-brand",
        "lookalike-of-our-domain",
        "bulk-tool-header",
    ]
    assert effective["replies"] == {
        "verdict:invalid": reply,
        "code:several-authors-without-sender": several,
        "code:bidi-control": reply,
    }
    assert effective["reject"] == reply
    assert effective["headers"][2] == ["X-Fromguard-Action", "{action} ({reasons})"]
    assert effective["warning"]["text"] == DEFAULT_WARNING
    assert Policy().effective() == {
        "verdicts": dict.fromkeys(("valid", "legacy", "deceptive", "invalid"), "accept"),
        "codes": {},
        "rules": [],
        "replies": {},
        "reject": reply,
        "headers": [list(header) for header in policy_module.DEFAULT_HEADERS],
        "warning": {"text": DEFAULT_WARNING, "ascii_text": DEFAULT_WARNING},
    }


def test_policies_that_act_alike_have_no_changes() -> None:
    exchange = Policy.from_toml(EXAMPLES / "exchange.toml")
    assert exchange.changes(Policy.exchange()) == {}
    written_out = Policy(verdicts={"valid": "accept"}, warn={"text": DEFAULT_WARNING})
    assert Policy().changes(written_out) == {}
    assert pickle.loads(pickle.dumps(exchange)).effective() == exchange.effective()


RULE = {"target": "domain", "pattern": "^evil[.]example$", "action": "reject"}


def test_changes_name_every_difference_and_what_got_weaker() -> None:
    old = Policy(
        verdicts={"deceptive": "quarantine", "invalid": "reject"},
        codes={"bidi-control": "reject", "sender-differs": "tag"},
        rules={"a": RULE, "b": {**RULE, "action": "tag"}, "c": RULE},
    )
    new = Policy(
        verdicts={"deceptive": "warn", "invalid": {"action": "reject", "code": 554}},
        codes={"sender-differs": "quarantine"},
        rules={"c": RULE, "b": {**RULE, "action": "tag", "pattern": "evil"}, "d": RULE},
        tag={"headers": {"X-Verdict": "{verdict}"}},
        warn={"text": "Careful."},
    )
    changes = old.changes(new)
    assert changes["verdicts"] == {"deceptive": {"old": "quarantine", "new": "warn"}}
    assert changes["codes"] == {
        "bidi-control": {"old": "reject", "new": None},
        "sender-differs": {"old": "tag", "new": "quarantine"},
    }
    default_reply = str(DEFAULT_REPLY)
    assert changes["replies"] == {
        "verdict:invalid": {"old": default_reply, "new": "554 5.7.1 " + DEFAULT_REPLY.text},
        "code:bidi-control": {"old": default_reply, "new": None},
        "rule:a": {"old": default_reply, "new": None},
        "rule:d": {"old": None, "new": default_reply},
    }
    assert changes["rules"] == {
        "added": ["d"],
        "removed": ["a"],
        "changed": ["b"],
        "reordered": True,
    }
    assert changes["headers"]["new"] == [["X-Verdict", "{verdict}"]]
    assert changes["warning"]["new"] == {"text": "Careful.", "ascii_text": "Careful."}
    assert "reject" not in changes
    assert changes["weakened"] == ["verdict:deceptive", "code:bidi-control", "rule:a"]
    back = new.changes(old)
    assert back["weakened"] == ["code:sender-differs", "rule:d"]
    assert back["rules"] == {"added": ["a"], "removed": ["d"], "changed": ["b"], "reordered": True}
    assert Policy(reject={"code": 554}).changes(Policy())["reject"] == {
        "old": "554 5.7.1 " + DEFAULT_REPLY.text,
        "new": default_reply,
    }


BAD_DICTS: List[Tuple[Dict[str, Any], str]] = [
    ({"verdict": {}}, "verdict: unknown key 'verdict'"),
    ({"codes": {"nope": "warn"}}, "codes.nope: unknown finding code 'nope'"),
    ({"verdicts": {"invalid": 3}}, "verdicts.invalid: unknown action: the integer 3"),
    ({"verdicts": {"invalid": {"code": 550}}}, "verdicts.invalid: missing key 'action'"),
    ({"reject": {"code": True}}, "reject.code: bad SMTP code: expected an integer, got a boolean"),
    ({"reject": {"code": 600}}, "reject.code: bad SMTP code 600"),
    ({"reject": {"code": 561}}, "reject.code: bad SMTP code 561"),
    ({"reject": {"enhanced": "5.7"}}, "reject.enhanced: bad enhanced status code"),
    ({"reject": {"text": "two\r\nlines"}}, "reject.text: bad reply text"),
    ({"reject": {"text": ""}}, "reject.text: bad reply text"),
    ({"tag": {"headers": {"X-A": "caf\u00e9"}}}, "tag.headers.X-A: bad header value"),
    ({"tag": {"headers": {"X-A": "a } b"}}}, "tag.headers.X-A: a lone '}'"),
    ({"tag": {"headers": {"X-A": "{verdict"}}}, "tag.headers.X-A: unknown placeholder '{'"),
    ({"tag": {"headers": {"MIME-Version": "2"}}}, "MIME-Version may not be added"),
    ({"tag": {"headers": ["X-A"]}}, "tag.headers: expected a table"),
    ({"warn": {"text": "   "}}, "warn.text: bad warning text"),
    ({"warn": {"text": "a\tb"}}, "warn.text: bad warning text: control characters"),
    ({"warn": {"text": "x" * 101}}, "a line longer than 100 characters"),
    ({"warn": {"ascii_text": "f\u00fcr"}}, "warn.ascii_text: bad warning text: not ASCII"),
    (
        {"warn": {"text": "By {verdict}"}},
        "unknown placeholder '{verdict}' (expected one of: {sender})",
    ),
    ({"warn": {"text": "a } b"}}, "warn.text: a lone '}' in a warning (write '}}')"),
    (
        {"warn": {"text": "Sent by {sender}"}},
        "every line names {sender}, and a message may have none",
    ),
    ({"warn": {"text": "Caution.\n" + "x" * 41 + "{sender}"}}, "({sender} counts as 60"),
    ({"warn": {"ascii_text": "Caution.\nFrom {sender"}}, "warn.ascii_text: unknown placeholder"),
]


@pytest.mark.parametrize(("data", "reason"), BAD_DICTS, ids=[r for _, r in BAD_DICTS])
def test_from_dict_errors_name_the_key(data: Dict[str, Any], reason: str) -> None:
    with pytest.raises(PolicyError) as caught:
        Policy.from_dict(data)
    assert reason in str(caught.value)
    assert caught.value.path is None and caught.value.line is None


def test_from_dict_takes_a_mapping() -> None:
    with pytest.raises(PolicyError, match="expected a table"):
        Policy.from_dict(["verdicts"])  # type: ignore[arg-type]


def test_policy_error_is_a_value_error() -> None:
    error = PolicyError("why", path="p.toml", line=4, key="codes.x")
    assert isinstance(error, ValueError)
    assert str(error) == "p.toml:4: codes.x: why"
    assert str(PolicyError("why")) == "why"


def test_the_documented_schema_loads(tmp_path: Path) -> None:
    """The TOML example in the module docstring is a valid policy."""
    doc = policy_module.__doc__ or ""
    block = doc.split("TOML schema", 1)[1].split("::\n", 1)[1].split("\n\n``reasons``")[0]
    text = "\n".join(line[4:] for line in block.splitlines())
    path = tmp_path / "schema.toml"
    path.write_text(text.replace('"..."', '"A warning."'), encoding="utf-8")
    policy = Policy.from_toml(path)
    assert policy.rules["code:bidi-control"] is Action.QUARANTINE


def test_rules_and_warning_accessors() -> None:
    policy = Policy(verdicts={"invalid": "REJECT"}, codes={"bidi-control": Action.QUARANTINE})
    assert policy.rules == {
        "verdict:invalid": Action.REJECT,
        "code:bidi-control": Action.QUARANTINE,
    }
    assert policy.warning.text == DEFAULT_WARNING
    assert policy.warning.ascii_text == DEFAULT_WARNING
    japanese = Policy(
        warn={"text": "\u5dee\u51fa\u4eba\u3092\u78ba\u8a8d\u3067\u304d\u307e\u305b\u3093\u3002"}
    )
    assert japanese.warning.ascii_text == DEFAULT_WARNING  # nothing ASCII to keep


def test_a_failing_warning_still_delivers_the_tagged_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No mail is lost to a bug in the body rewrite: the header fields are still added,
    the body is left alone, and the notes say what went wrong."""

    rewrite = fromguard._mime.rewrite

    def broken(raw: bytes, *args: Any, **options: Any) -> Any:
        if len(args) > 1 and args[1] is not None:  # with a warning
            raise RuntimeError("boom")
        return rewrite(raw, *args, **options)

    monkeypatch.setattr("fromguard._mime.rewrite", broken)
    raw = message("plain.eml")
    outcome = Policy.exchange().process(raw)
    assert outcome.action is Action.WARN
    assert outcome.message == EXCHANGE_HEADER + b"\n" + raw
    assert outcome.notes == ("warning not added: RuntimeError: boom",)


@pytest.mark.parametrize("comments", [10, 1_001, 5_000])
def test_padding_does_not_weaken_a_decision(comments: int) -> None:
    """The case of the issue: 1,001 comments before the forged address pushed the
    findings past their limit, and the policy's reject fell to tag."""
    policy = Policy(verdicts={"invalid": "tag"}, codes={"address-in-rejected-text": "reject"})
    padding = " (x)" * comments
    raw = f"From: Bank <support@bank.example>{padding} <m@mallory.example>\r\n\r\n".encode()
    outcome = policy.process(raw)
    assert outcome.action is Action.REJECT
    assert outcome.reasons == ("code:address-in-rejected-text",)
    field = fromguard.check_message(raw).fields[0]
    assert "address-in-rejected-text" in field.result.codes
    assert "m@mallory.example" in [shadow.address for shadow in field.result.shadows]
