"""fromguard.RuleSet: user rules compiled once in Rust, and rules in a Policy."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

import fromguard
from fromguard import Action, Policy, PolicyError, RuleError, RuleSet

MESSAGE = (
    b'From: "PayPal Support" <support@evil.example>\r\n'
    b"Subject: Your account\r\n  is suspended\r\n"
    b"X-Mailer: caf\xe9 mailer\r\n"
    b"Reply-To: other@example.org\r\n"
    b"\r\n"
    b"Subject: a body line, not a field\r\n"
)


def test_each_target() -> None:
    rules = RuleSet(
        [
            ("subject", "header:Subject", r"^Your account  is suspended$"),
            ("name", "display-name", r"PayPal"),
            ("local", "local-part", r"^support$"),
            ("domain", "domain", r"\.example$"),
            ("addr", "addr-spec", r"^support@evil\.example$"),
            ("reply", "header:reply-to", r"@example\.org"),
            ("body", "header:subject", r"body line"),
            ("absent", "header:X-None", r""),
        ]
    )
    assert rules.names == ("subject", "name", "local", "domain", "addr", "reply", "body", "absent")
    assert len(rules) == 8
    assert rules.match(MESSAGE) == ("subject", "name", "local", "domain", "addr", "reply")


def test_mailbox_targets_read_only_from() -> None:
    rules = RuleSet([("org", "domain", r"example\.org")])
    assert rules.match(MESSAGE) == ()


def test_several_patterns_per_target_in_one_pass() -> None:
    rules = RuleSet(
        [
            ("evil", "domain", "evil"),
            ("good", "domain", "good"),
            ("example", "domain", "example"),
            ("subject", "header:subject", "account"),
            ("again", "header:subject", "suspended"),
        ]
    )
    assert rules.match(MESSAGE) == ("evil", "example", "subject", "again")
    assert rules.match(b"From: a@b.c\r\n\r\n") == ()


def test_case_insensitive_flag() -> None:
    rules = RuleSet([("exact", "display-name", "paypal"), ("nocase", "display-name", "(?i)paypal")])
    assert rules.match(MESSAGE) == ("nocase",)


def test_non_utf8_bytes() -> None:
    rules = RuleSet(
        [
            ("latin1", "header:x-mailer", r"(?-u:\xe9) mailer$"),
            ("any", "header:x-mailer", r"^caf(?-u:.) mailer"),
            ("text", "header:x-mailer", r"café"),
        ]
    )
    assert rules.match(MESSAGE) == ("latin1", "any")


def test_a_decoded_display_name_is_matched() -> None:
    raw = b"From: =?utf-8?b?UGF5UGFs?= <a@b.example>\r\n\r\n"
    assert RuleSet([("pp", "display-name", "^PayPal$")]).match(raw) == ("pp",)


def test_compile_errors_name_the_rule() -> None:
    with pytest.raises(RuleError, match=r"^rule 'broken': regex syntax: unclosed group$") as caught:
        RuleSet([("fine", "domain", "x"), ("broken", "domain", "(")])
    assert isinstance(caught.value, ValueError)
    assert (caught.value.rule, caught.value.reason) == ("broken", "regex syntax: unclosed group")
    # The name is an attribute, not a prefix to take back out of the text.
    with pytest.raises(RuleError) as caught:
        RuleSet([("a", "domain", "x"), ("a': b", "domain", "[")])
    assert caught.value.rule == "a': b"
    assert caught.value.reason.startswith("regex syntax: unclosed character class")
    with pytest.raises(ValueError, match=r"^rule 'back': .*backreferences"):
        RuleSet([("back", "header:subject", r"(a)\1")])
    with pytest.raises(ValueError, match=r'^rule .where.: unknown target "subject"'):
        RuleSet([("where", "subject", "x")])
    with pytest.raises(ValueError, match=r"^rule 'empty': unknown target"):
        RuleSet([("empty", "header:", "x")])
    with pytest.raises(TypeError):
        RuleSet.match(RuleSet([]), "text")  # type: ignore[arg-type]


def test_a_huge_pattern_is_rejected_cleanly() -> None:
    started = time.perf_counter()
    with pytest.raises(ValueError, match=r"^rule 'huge': .*size limit"):
        RuleSet([("huge", "domain", "a{1000}{1000}")])
    with pytest.raises(ValueError, match=r"^rule 'deep': "):
        RuleSet([("deep", "domain", "(" * 500 + ")" * 500)])
    assert time.perf_counter() - started < 5


def test_no_rules_match_nothing() -> None:
    assert RuleSet([]).match(MESSAGE) == ()


BACKTRACKING = r"(a+)+$"
VALUE = "a" * 30 + "!"


def test_a_backtracking_pattern_runs_in_linear_time() -> None:
    # Python's re needs about 2**30 steps here: give it one second and see it not finish.
    code = f"import re; re.search({BACKTRACKING!r}, {VALUE!r})"
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run([sys.executable, "-c", code], timeout=1.0, check=False)
    rules = RuleSet(
        [("nested", "header:subject", BACKTRACKING), ("x", "header:subject", "(x+x+)+y")]
    )
    raw = f"From: a@b.example\r\nSubject: {VALUE}\r\n\r\n".encode()
    started = time.perf_counter()
    assert rules.match(raw) == ()
    assert rules.match(raw.replace(b"!", b"")) == ("nested",)
    assert time.perf_counter() - started < 0.1


# -- In a policy ----------------------------------------------------------------------

POLICY = """\
[verdicts]
invalid = "tag"

[rules.paypal]
target = "display-name"
pattern = '(?i)pay\\s*pal'
action = "quarantine"

[rules."urgent subject"]
target = "header:Subject"
pattern = "(?i)suspended|urgent"
action = "tag"

[rules.blocked]
target = "domain"
pattern = '^evil\\.example$'
action = "reject"
code = 554
text = "Sender domain blocked"
# fromguard-policy: end
"""


def test_policy_rules(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(POLICY)
    policy = Policy.from_toml(path)
    assert policy.rules["rule:paypal"] is Action.QUARANTINE
    assert policy.rules["rule:urgent subject"] is Action.TAG
    outcome = policy.process(MESSAGE)
    assert outcome.action is Action.REJECT
    assert outcome.reasons == ("rule:blocked",)
    assert outcome.smtp_reply is not None
    assert str(outcome.smtp_reply) == "554 5.7.1 Sender domain blocked"
    raw = MESSAGE.replace(b"evil.example", b"good.example")
    outcome = policy.process(raw)
    assert outcome.action is Action.QUARANTINE
    assert outcome.reasons == ("rule:paypal",)
    outcome = policy.process(raw.replace(b"PayPal", b"Pal"))
    assert outcome.action is Action.TAG
    assert outcome.reasons == ("rule:urgent subject",)
    assert b"X-Fromguard-Verdict:" in outcome.message
    assert policy.process(b"From: a@b.example\r\nSubject: hi\r\n\r\n").action is Action.ACCEPT


def test_patterns_too_big_together_name_the_largest() -> None:
    """Each fits the size limit alone, not with the others: the error (and a policy's
    key) is the largest pattern's, wherever its rule is among its target's."""
    big, medium = "a{22000}", "b{16000}"  # 0.7 and 0.5 of the largest `a{n}` alone
    RuleSet([("big", "domain", big)])
    RuleSet([("medium", "domain", medium)])
    for order in ([0, 1, 2], [2, 1, 0], [1, 0, 2]):
        rules = [("big", "domain", big), ("medium", "domain", medium), ("small", "domain", "x")]
        with pytest.raises(RuleError, match=r"^rule 'big': the patterns of target domain"):
            RuleSet([rules[i] for i in order])
    tables = {
        name: {"target": "domain", "action": "tag", "pattern": pattern}
        for name, pattern in (("small", "x"), ("big", big), ("medium", medium))
    }
    with pytest.raises(PolicyError) as caught:
        Policy.from_dict({"rules": tables})
    assert caught.value.key == "rules.big.pattern"


def test_policy_rules_from_dict() -> None:
    policy = Policy.from_dict(
        {"rules": {"x": {"target": "local-part", "pattern": "^support$", "action": "warn"}}}
    )
    assert policy.process(MESSAGE).reasons == ("rule:x",)
    assert Policy().rules == {}


def test_a_bad_rule_fails_at_load_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(POLICY.replace("'^evil\\.example$'", "'^evil(\\.example$'"))
    with pytest.raises(PolicyError) as caught:
        Policy.from_toml(path)
    error = caught.value
    assert error.path == str(path)
    assert error.line == 16
    assert error.key == "rules.blocked.pattern"
    assert str(error).startswith(
        f"{path}:16: rules.blocked.pattern: bad pattern: regex syntax: unclosed group"
    )
    assert "unclosed group" in str(error)


@pytest.mark.parametrize(
    ("table", "key", "reason"),
    [
        (
            {"target": "subject", "pattern": "x", "action": "tag"},
            "rules.r.target",
            "unknown target",
        ),
        ({"target": "domain", "action": "tag"}, "rules.r", "missing key 'pattern'"),
        (
            {"target": "domain", "pattern": 1, "action": "tag"},
            "rules.r.pattern",
            "expected a string",
        ),
        (
            {"target": "domain", "pattern": "x", "action": "drop"},
            "rules.r.action",
            "unknown action",
        ),
        (
            {"target": "domain", "pattern": "x", "action": "tag", "code": 550},
            "rules.r.code",
            "only allowed with action 'reject'",
        ),
        (
            {"target": "domain", "pattern": "x", "action": "tag", "flags": "i"},
            "rules.r.flags",
            "unknown key",
        ),
    ],
)
def test_bad_rule_tables(table: dict, key: str, reason: str) -> None:
    with pytest.raises(PolicyError) as caught:
        Policy.from_dict({"rules": {"r": table}})
    assert caught.value.key == key
    assert reason in caught.value.reason


def test_exported() -> None:
    assert fromguard.RuleSet is RuleSet
