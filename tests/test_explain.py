"""``fromguard._explain.explain`` on stand-in results (no parser involved)."""

from __future__ import annotations

from typing import NamedTuple, Tuple

from fromguard._catalogue import FINDINGS
from fromguard._explain import explain
from fromguard._model import Finding


class Result(NamedTuple):
    """The two attributes ``explain`` reads."""

    value: bytes
    findings: Tuple[Finding, ...]


def finding(code: str, start: int, end: int) -> Finding:
    info = FINDINGS[code]
    return Finding(code, info.severity, start, end, info.description)


def test_the_documented_example() -> None:
    result = Result(b"Dr. A <a@b>", (finding("obs-phrase", 2, 3),))
    assert explain(result) == (
        "Dr. A <a@b>\n"
        "  ^  obs-phrase (legacy): a period in an unquoted display name"
        " (obs-phrase, RFC 5322 §4.1)"
    )


def test_no_findings() -> None:
    assert explain(Result(b"a@b.example", ())) == "a@b.example\n(no findings)"


def test_controls_show_as_control_pictures() -> None:
    result = Result(b"a\r\n\tb\x00\x7f\x1f", ())
    assert explain(result).splitlines()[0] == "a␍␊␉b␀␡␟"


def test_each_byte_that_is_not_utf8_is_one_replacement_cell() -> None:
    # \xe2\x80 is a truncated three-byte sequence: two bytes, two cells.
    result = Result(b"J\xf6rg \xe2\x80<a@b>", (finding("8bit-text", 1, 2), finding("utf8", 5, 7)))
    value_line, first, second = explain(result).splitlines()
    assert value_line == "J\ufffdrg \ufffd\ufffd<a@b>"
    assert first.startswith(" ^  8bit-text (legacy): ")
    assert second.startswith("     ^^  utf8 (info): ")


def test_a_multibyte_character_is_one_cell() -> None:
    value = "Jörg Ξ <a@b>".encode()
    # "ö" is bytes [1, 3), "Ξ" bytes [6, 8); the span [1, 8) covers cells 1 to 5.
    result = Result(value, (finding("utf8", 1, 3), finding("utf8", 1, 8)))
    lines = explain(result).splitlines()
    assert lines[0] == "Jörg Ξ <a@b>"
    assert lines[1].startswith(" ^  utf8")
    assert lines[2].startswith(" ^^^^^  utf8")


def test_characters_that_do_not_print_are_replaced() -> None:
    # A right-to-left override would reorder the rest of the terminal line.
    result = Result("a\u202eb\u00a0c".encode(), ())
    assert explain(result).splitlines()[0] == "a\ufffdb\ufffdc"


def test_an_empty_span_gets_one_caret_where_it_stands() -> None:
    result = Result(b"Jane <", (finding("unterminated-angle-addr", 6, 6), finding("comment", 2, 2)))
    _, at_end, inside = explain(result).splitlines()
    assert at_end.startswith("      ^  unterminated-angle-addr (invalid): ")
    assert inside.startswith("  ^  comment (info): ")


def test_spans_past_the_end_are_clamped() -> None:
    result = Result(b"ab", (finding("input-too-long", 5, 9),))
    assert explain(result).splitlines()[1].startswith("  ^  input-too-long")


def test_findings_keep_their_order_and_show_their_message() -> None:
    findings = (finding("nul", 3, 4), finding("comment", 0, 3))
    lines = explain(Result(b"(x)\x00", findings)).splitlines()
    assert lines[1] == f"   ^  nul (invalid): {FINDINGS['nul'].description}"
    assert lines[2] == f"^^^  comment (info): {FINDINGS['comment'].description}"


def test_the_empty_value() -> None:
    assert explain(Result(b"", (finding("empty", 0, 0),))).splitlines() == [
        "",
        f"^  empty (invalid): {FINDINGS['empty'].description}",
    ]
