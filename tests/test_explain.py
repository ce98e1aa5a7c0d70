"""``fromguard._explain.explain`` on stand-in results (no parser involved)."""

from __future__ import annotations

from typing import NamedTuple, Tuple

from fromguard._catalogue import FINDINGS
from fromguard._explain import explain
from fromguard._model import Finding, Shadow


class Result(NamedTuple):
    """The three attributes ``explain`` reads."""

    value: bytes
    findings: Tuple[Finding, ...]
    shadows: Tuple[Shadow, ...] = ()


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


def test_each_shadow_is_shown_under_the_text_it_came_from() -> None:
    value = b'"ceo@bank.example" <m@mallory.example> (x@y.example)'
    findings = (finding("address-in-display-name", 0, 18), finding("address-in-comment", 39, 52))
    shadows = (
        Shadow("ceo@bank.example", "display-name", 0, 18),
        Shadow("x@y.example", "comment", 39, 52),
    )
    lines = explain(Result(value, findings, shadows)).splitlines()
    assert len(lines) == 5
    assert lines[1].startswith("^" * 18 + "  address-in-display-name (deceptive): ")
    assert lines[3] == "^" * 18 + "  shadow: ceo@bank.example (from display-name)"
    assert lines[4] == " " * 39 + "^" * 13 + "  shadow: x@y.example (from comment)"


def test_shadow_lines_follow_the_findings_and_count_cells() -> None:
    # "Jörg" is 5 bytes, 4 cells: the span [0, 5) gets 4 carets.
    value = "Jörg@bü.example <a@b.example>".encode()
    shadow = Shadow("Jörg@bü.example", "display-name", 0, 17)
    lines = explain(Result(value, (), (shadow,))).splitlines()
    assert lines[1] == "(no findings)"
    assert lines[2] == "^" * 15 + "  shadow: Jörg@bü.example (from display-name)"


def test_a_shadow_address_is_drawn_like_the_value() -> None:
    # A bidi control in the address would reorder the terminal line; a control character
    # would reach the terminal raw.
    shadow = Shadow("a\u202e@b\x01.example", "encoded-word", 0, 3)
    lines = explain(Result(b"=?x", (), (shadow,))).splitlines()
    assert lines[2] == "^^^  shadow: a\ufffd@b\u2401.example (from encoded-word)"
