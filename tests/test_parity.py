"""The Rust core and the pure-Python reference agree on generated header values.

Values are built from the grammar's own pieces (atoms, quoted strings with quoted-pairs,
nested comments, domain literals, encoded-words, specials, folds, stray line breaks,
controls, raw UTF-8 and Latin-1 bytes), assembled into mailbox-like shapes, then sometimes
mutated, so that both the common paths and the error paths are reached. Plain random
bytes are added too.
"""

from __future__ import annotations

from typing import Any, Tuple

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import fromguard
import fromguard.reference

ATEXT = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"

atom = st.text(ATEXT, min_size=1, max_size=8).map(str.encode)
utf8_word = st.sampled_from(["Jörg", "Łukasz", "José", "Ξένη", "Мария", "李", "ä"]).map(str.encode)
latin1_word = st.sampled_from([b"J\xf6rg", b"\xe9t\xe9", b"\xff"])
control = st.sampled_from([b"\x00", b"\x01", b"\x1b", b"\x7f", b"\r", b"\n", b"\t"])
fold = st.sampled_from([b"\r\n ", b"\n ", b"\r\n\t", b"\r\n \r\n ", b" ", b"  ", b"\t"])
special = st.sampled_from(
    [b"<", b">", b"@", b",", b";", b":", b".", b"[", b"]", b"\\", b'"', b"(", b")"]
)
encoded = st.sampled_from(
    [
        b"=?utf-8?q?J=C3=B6rg?=",
        b"=?UTF-8?B?SsO2cmc=?=",
        b"=?iso-8859-1?q?caf=E9?=",
        b"=?utf-8?q?ceo=40bank=2Eexample?=",
        b"=?utf-8?q?a?=",
        b"=?x-unknown?q?a?=",
        b"=?utf-8?b?!!!?=",
        b"=?utf-8*en?Q?Keith_Moore?=",
        b"=?utf-7?q?+AOQ-?=",
        b"=?utf-8?q?x=E2=80=AEy?=",
        b"=?utf-8?q?a.b@c.example?=",
        b"=?utf-8?b?PGNlb0BiYW5rLmV4YW1wbGU+?=",
        # Other decoders' readings, decoded punctuation and look-alikes, B out of groups.
        b"=?utf-32?b?AAAAYwAAAEAAAABiAAAALgAAAGM=?=",
        b"=?ucs-2?b?//5AAA==?=",
        b"=?utf-16?b?AEAAYQ==?=",
        b"=?ibm037?q?L=81=7C=82n?=",
        b"=?cp1140?q?=25?=",
        b"=?x?q?a=40b=2Ec?=",
        b"=?iso-8859-1?Q?M=FCller=2C_J=FCrgen?=",
        b"=?utf-8?q?=EF=BC=A0?=",
        b"=?iso-8859-1?b?ey?=",
    ]
)
# What the deception pass looks for: addresses, routing hacks, look-alike and punycode
# domains, bidi and invisible characters (and the joiners and marks honest in context),
# non-ASCII white space, organisational domains.
deceptive_word = st.sampled_from(
    [
        "ceo@bank.example",
        "CEO@Bank.Example.",
        "a@b",
        "u%bank.example",
        "bank.example!u",
        "xn--bnk-6cd.example",
        "xn--mnchen-3ya",
        "xn--zz",
        "b\u0430nk",
        "\u202e",
        "\u200b",
        "x\u3000y@z.example",
        "J\u00f6rg@b\u00fc.example",
        "[IPv6:::1]",
        "[a@b.example]",
        "ceo&AEA-bank.example",
        "a&-b&ACw-",
        # joiners and marks in and out of the contexts that make them honest
        "\u200c",
        "\u200d",
        "\u200f",
        "\u0915\u094d\u200d",
        "\u0645\u06cc\u200c\u062e",
        "\U0001f469\u200d\U0001f4bb",
        "\u05de\u05e9\u05d4",
        # addresses at one organisational domain and at others under one public suffix
        "support@mail.bank.example",
        "x@bank.example",
        "a@alice.github.io",
        "b@bob.github.io",
    ]
).map(str.encode)
word_text = st.one_of(atom, utf8_word, latin1_word, encoded, deceptive_word, st.binary(max_size=4))


@st.composite
def quoted_string(draw: Any) -> bytes:
    parts = draw(
        st.lists(
            st.one_of(
                word_text, fold, control, st.just(b'\\"'), st.just(b"\\\\"), st.just(b"\\\x01")
            ),
            max_size=4,
        )
    )
    closed = draw(st.booleans()) or draw(st.booleans())
    return b'"' + b"".join(parts) + (b'"' if closed else b"")


@st.composite
def comment(draw: Any) -> bytes:
    depth = draw(st.integers(1, 3))
    inner = b" ".join(
        draw(st.lists(st.one_of(word_text, special.filter(lambda s: s not in b"()\\")), max_size=3))
    )
    closing = draw(st.integers(0, depth))
    return b"(" * depth + inner + b")" * closing


literal = st.builds(
    lambda body, closed: b"[" + body + (b"]" if closed else b""),
    st.sampled_from(
        [b"192.0.2.1", b"IPv6:::1", b"bank.example <img src=x>", b"a\\]b", b"x\x01y", b" 1.2.3.4 "]
    ),
    st.booleans(),
)
piece = st.one_of(
    atom,
    atom,
    utf8_word,
    latin1_word,
    encoded,
    deceptive_word,
    quoted_string(),
    comment(),
    literal,
    special,
    fold,
    control,
)


@st.composite
def dot_atom(draw: Any) -> bytes:
    labels = draw(
        st.lists(st.one_of(atom, utf8_word, encoded, deceptive_word), min_size=1, max_size=3)
    )
    return b".".join(labels)


@st.composite
def addr_spec(draw: Any) -> bytes:
    local = draw(st.one_of(dot_atom(), quoted_string()))
    domain = draw(st.one_of(dot_atom(), literal))
    around = draw(st.lists(st.one_of(st.just(b""), fold, comment()), min_size=2, max_size=2))
    return local + around[0] + b"@" + around[1] + domain


@st.composite
def mailbox(draw: Any) -> bytes:
    address = draw(addr_spec())
    if draw(st.booleans()):
        return address
    name = b" ".join(
        draw(
            st.lists(
                st.one_of(
                    atom,
                    utf8_word,
                    encoded,
                    deceptive_word,
                    quoted_string(),
                    comment(),
                    st.just(b"."),
                ),
                max_size=3,
            )
        )
    )
    route = draw(st.sampled_from([b"", b"", b"@relay.example:", b"@a.example,@b.example:"]))
    return name + b" <" + route + address + b">"


@st.composite
def header_value(draw: Any) -> bytes:
    items = draw(st.lists(mailbox(), max_size=3))
    separators = draw(
        st.lists(
            st.sampled_from([b", ", b",", b",\r\n ", b",,", b" ", b";"]),
            min_size=len(items),
            max_size=len(items),
        )
    )
    value = b"".join(item + sep for item, sep in zip(items, separators))
    if draw(st.booleans()):
        value = (
            draw(st.sampled_from([b"Team: ", b"undisclosed-recipients:", b""]))
            + value
            + draw(st.sampled_from([b";", b"", b"; x"]))
        )
    if draw(st.booleans()):  # mutate: insert a few grammar pieces at random places
        for _ in range(draw(st.integers(1, 3))):
            at = draw(st.integers(0, len(value)))
            value = value[:at] + draw(piece) + value[at:]
    return value


def summary(result: Any) -> Tuple[Any, ...]:
    return (
        result.verdict,
        result.syntax,
        result.findings,
        result.mailboxes,
        result.address,
        result.shadows,
        result.codes,
    )


def assert_same(value: bytes, utf8: bool, groups: bool) -> None:
    core = fromguard.parse(value, utf8=utf8, groups=groups)
    reference = fromguard.reference.parse(value, utf8=utf8, groups=groups)
    assert summary(core) == summary(reference), value


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(header_value(), st.booleans(), st.booleans())
@example(b"", True, False)
@example(b"Dale E. Martin <dale@x.example>", True, False)
def test_core_matches_reference_on_grammar_values(value: bytes, utf8: bool, groups: bool) -> None:
    assert_same(value, utf8, groups)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64), st.booleans(), st.booleans())
def test_core_matches_reference_on_random_bytes(value: bytes, utf8: bool, groups: bool) -> None:
    assert_same(value, utf8, groups)


@settings(max_examples=300, deadline=None)
@given(header_value())
def test_reference_invariants(value: bytes) -> None:
    """Whatever the input: findings sorted, spans inside the input, mailbox spans ordered,
    verdict the worst severity present."""
    result = fromguard.reference.parse(value)
    keys = [(f.start, f.end) for f in result.findings]
    assert keys == sorted(keys)
    for finding in result.findings:
        assert 0 <= finding.start <= finding.end <= len(value)
    worst = max((int(f.severity) for f in result.findings), default=0)
    assert int(result.verdict) == worst
    previous_end = 0
    for mb in result.mailboxes:
        assert previous_end <= mb.span[0] <= mb.span[1] <= len(value)
        local, domain = mb.local_part_span, mb.domain_span
        assert mb.span[0] <= local[0] <= local[1] <= domain[0] <= domain[1] <= mb.span[1]
        if mb.display_name_span is not None:
            assert mb.span[0] <= mb.display_name_span[0] <= mb.display_name_span[1] <= local[0]
        previous_end = mb.span[1]
