"""``verdicts`` and ``parse_many`` over Arrow arrays give what they give over the same
values as a list, for every layout read (string, large_string, binary, large_binary, and
the views cast to the large ones), slices, chunks and nulls; broken buffers raise
``ValueError``, never crash; a panic raises ``InternalError`` naming the value's index."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, List, Optional

import pytest

import fromguard
from fromguard import InternalError, Verdict
from fromguard._core import _inject_panic, _verdicts_arrow

pa = pytest.importorskip("pyarrow")

ROOT = Path(__file__).resolve().parent
DEBIAN = (ROOT / "corpus" / "debian-maintainers.txt").read_text(encoding="utf-8").splitlines()
ATTACKS = [
    case["input"]
    for case in map(json.loads, (ROOT / "cases" / "attacks.jsonl").read_text("utf-8").splitlines())
    if "input" in case
]
# Long enough to be shared with the batch threads (PARALLEL_VALUES in batch.rs).
VALUES: List[Optional[str]] = [*DEBIAN, *ATTACKS, None, "", *DEBIAN[:100]] * 4

TYPES = ["string", "large_string", "binary", "large_binary", "string_view", "binary_view"]


def arrow_array(values: List[Optional[str]], type_name: str) -> Any:
    binary = "binary" in type_name
    items = [v.encode() if binary and v is not None else v for v in values]
    return pa.array(items, type=getattr(pa, type_name)())


def as_list(values: List[Optional[str]]) -> List[str]:
    """What an Arrow null is judged as: the empty value."""
    return ["" if value is None else value for value in values]


@pytest.mark.parametrize("type_name", TYPES)
def test_verdicts_equal_the_list_path(type_name: str) -> None:
    array = arrow_array(VALUES, type_name)
    assert len(VALUES) > 8192
    assert fromguard.verdicts(array) == fromguard.verdicts(as_list(VALUES))


@pytest.mark.parametrize("type_name", ["string", "large_binary"])
def test_slices_and_chunks(type_name: str) -> None:
    array = arrow_array(VALUES, type_name)
    for start, stop in [(1, 9), (7, 7), (333, 20_000), (len(VALUES) - 5, len(VALUES))]:
        expected = fromguard.verdicts(as_list(VALUES[start:stop]))
        assert fromguard.verdicts(array.slice(start, stop - start)) == expected
    chunked = pa.chunked_array([array.slice(0, 10), array.slice(10, 0), array.slice(10)])
    assert fromguard.verdicts(chunked) == fromguard.verdicts(as_list(VALUES))


def test_nulls_are_empty_values() -> None:
    array = pa.array([None, "a@b.example", None])
    assert list(fromguard.verdicts(array)) == [Verdict.INVALID, Verdict.VALID, Verdict.INVALID]
    assert fromguard.parse_many(array)[0].codes == fromguard.parse("").codes


def test_parse_many_equals_the_list_path() -> None:
    values = [*ATTACKS, None]
    for type_name in ("string", "binary"):
        got = fromguard.parse_many(arrow_array(values, type_name))
        want = fromguard.parse_many(as_list(values))
        assert [(r.verdict, r.findings, r.shadows) for r in got] == [
            (r.verdict, r.findings, r.shadows) for r in want
        ]


def test_profile_options_are_passed() -> None:
    array = pa.array(["Team: a@b.example;"])
    assert fromguard.verdicts(array, groups=True) == fromguard.verdicts(
        ["Team: a@b.example;"], groups=True
    )
    assert fromguard.verdicts(array, groups=True) != fromguard.verdicts(array)


def test_as_arrow() -> None:
    result = fromguard.verdicts(pa.array(["a@b.example", "<<"]), as_arrow=True)
    assert result.type == pa.uint8()
    assert result.to_pylist() == [Verdict.VALID, Verdict.INVALID]
    assert fromguard.verdicts(["a@b.example"], as_arrow=True).to_pylist() == [0]


class CapsuleOnly:
    """An Arrow producer other than pyarrow: only the PyCapsule interface."""

    def __init__(self, array: Any) -> None:
        self.array = array

    def __arrow_c_array__(self, requested_schema: Any = None) -> Any:
        return self.array.__arrow_c_array__(requested_schema)


def test_the_pycapsule_interface() -> None:
    values = as_list(VALUES[:500])
    assert fromguard.verdicts(CapsuleOnly(pa.array(values))) == fromguard.verdicts(values)


def test_other_types_are_refused() -> None:
    with pytest.raises(TypeError, match="strings or binaries"):
        fromguard.verdicts(pa.array([1, 2]))


@pytest.mark.parametrize(
    ("offsets", "validity", "first", "length", "large", "reason"),
    [
        ([0, 2], None, 0, 2, False, "shorter than the array"),
        ([0, 3, 2], None, 0, 2, False, "decrease"),
        ([0, -1], None, 0, 1, False, "negative"),
        ([0, 5, 99], None, 0, 2, False, "past the end"),
        ([0, 1, 2], b"", 0, 2, False, "bitmap is shorter"),
        ([0, 1], None, 2**62, 2**62, False, "overflow"),
        ([0, 1, 2], None, 0, 2, True, "shorter than the array"),
    ],
)
def test_broken_buffers_raise(
    offsets: List[int], validity: Optional[bytes], first: int, length: int, large: bool, reason: str
) -> None:
    width = 8 if large else 4
    packed = b"".join(o.to_bytes(4, "little", signed=True) for o in offsets)
    if large:
        packed = packed[: len(offsets) * width - 1]
    with pytest.raises(ValueError, match=reason):
        _verdicts_arrow(b"abcde", packed, validity, first, length, large)


def test_a_panic_names_the_value() -> None:
    values = [*DEBIAN, *DEBIAN, "trigger <t@x.example>", *DEBIAN]
    _inject_panic(b"trigger <t@x.example>")
    try:
        with pytest.raises(InternalError) as raised:
            fromguard.verdicts(pa.array(values))
    finally:
        _inject_panic(None)
    assert raised.value.index == 2 * len(DEBIAN)
    assert raised.value.operation == "verdicts"
    assert fromguard.verdicts(pa.array(values)) == fromguard.verdicts(values)
