"""``verdicts`` and ``parse_many`` over Arrow arrays give what they give over the same
values as a list, for every layout read (string, large_string, binary, large_binary, and
the views cast to the large ones), slices, chunks and nulls, from pyarrow, pandas and
Polars; the core reads the arrays through the Arrow PyCapsule interface, and arrays built
by hand (ctypes) with broken buffers, released or wrong capsules raise ``ValueError`` or
``TypeError``, never crash, and are released once; a panic raises ``InternalError``
naming the value's index."""

from __future__ import annotations

import ctypes
import json
from pathlib import Path
from typing import Any, Callable, List, Optional, Tuple

import pytest

import fromguard
from fromguard import InternalError, Verdict
from fromguard._core import _inject_panic, _parse_many_arrow, _verdicts_arrow

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


@pytest.mark.parametrize("type_name", TYPES)
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
    # A slice whose bitmap starts mid-byte, nulls on either side of its ends.
    values = [None if i % 3 == 0 else f"u{i}@b.example" for i in range(40)]
    sliced = pa.array(values).slice(5, 30)
    assert sliced.offset == 5 and sliced.null_count == 10
    assert fromguard.verdicts(sliced) == fromguard.verdicts(as_list(values[5:35]))


def summary(results: List[fromguard.FromHeader]) -> List[Tuple[Any, ...]]:
    return [(r.value, r.verdict, r.syntax, r.codes, r.findings, r.shadows) for r in results]


@pytest.mark.parametrize("type_name", TYPES)
def test_parse_many_equals_the_list_path(type_name: str) -> None:
    values = [*ATTACKS, None, *DEBIAN[:50]]
    array = arrow_array(values, type_name)
    want = summary(fromguard.parse_many(as_list(values)))
    assert summary(fromguard.parse_many(array)) == want
    assert summary(fromguard.parse_many(array.slice(3, 40))) == want[3:43]
    chunked = pa.chunked_array([array.slice(0, 7), array.slice(7)])
    assert summary(fromguard.parse_many(chunked)) == want
    assert fromguard.parse_many(array)[0].explain() == fromguard.parse(values[0]).explain()


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


def test_pandas_columns() -> None:
    pd = pytest.importorskip("pandas")
    values = as_list(VALUES[:3000])
    for dtype in ("string[pyarrow]", pd.ArrowDtype(pa.binary())):
        items = [v.encode() for v in values] if dtype != "string[pyarrow]" else values
        column = pd.Series(items, dtype=dtype)
        assert fromguard.verdicts(column) == fromguard.verdicts(values)
        assert summary(fromguard.parse_many(column[:50])) == summary(
            fromguard.parse_many(values[:50])
        )


def test_polars_series() -> None:
    polars = pytest.importorskip("polars")
    values = as_list(VALUES[:3000])
    assert fromguard.verdicts(polars.Series(values)) == fromguard.verdicts(values)


class ArrowSchema(ctypes.Structure):
    """``struct ArrowSchema`` of the Arrow C data interface."""

    _fields_ = [
        ("format", ctypes.c_char_p),
        ("name", ctypes.c_char_p),
        ("metadata", ctypes.c_char_p),
        ("flags", ctypes.c_int64),
        ("n_children", ctypes.c_int64),
        ("children", ctypes.c_void_p),
        ("dictionary", ctypes.c_void_p),
        ("release", ctypes.c_void_p),
        ("private_data", ctypes.c_void_p),
    ]


class ArrowArray(ctypes.Structure):
    """``struct ArrowArray`` of the Arrow C data interface."""

    _fields_ = [
        ("length", ctypes.c_int64),
        ("null_count", ctypes.c_int64),
        ("offset", ctypes.c_int64),
        ("n_buffers", ctypes.c_int64),
        ("n_children", ctypes.c_int64),
        ("buffers", ctypes.c_void_p),
        ("children", ctypes.c_void_p),
        ("dictionary", ctypes.c_void_p),
        ("release", ctypes.c_void_p),
        ("private_data", ctypes.c_void_p),
    ]


RELEASE = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
new_capsule = ctypes.pythonapi.PyCapsule_New
new_capsule.restype = ctypes.py_object
new_capsule.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]


class HandMade:
    """An Arrow array of strings built by hand, its capsules without a destructor (the
    structs belong to this object); counts the calls of its array's release callback,
    which marks the array released, as the C data interface asks."""

    def __init__(
        self,
        offsets: Optional[List[int]],
        data: Optional[bytes],
        validity: Optional[bytes] = None,
        *,
        offset: int = 0,
        length: Optional[int] = None,
        null_count: int = 0,
        format: bytes = b"u",
        n_buffers: int = 3,
    ) -> None:
        large = format in (b"U", b"Z")
        kind = ctypes.c_int64 if large else ctypes.c_int32
        self.kept: List[Any] = []  # the buffers, alive as long as the structs

        def address(buffer: Any) -> Optional[int]:
            self.kept.append(buffer)
            return None if buffer is None else ctypes.addressof(buffer)

        pointers = (ctypes.c_void_p * 3)(
            address(None if validity is None else ctypes.create_string_buffer(validity)),
            address(None if offsets is None else (kind * len(offsets))(*offsets)),
            address(None if data is None else ctypes.create_string_buffer(data)),
        )
        self.releases = 0
        self.release_array = RELEASE(self.released)
        self.release_schema = RELEASE(lambda address: None)
        count = len(offsets or [0]) - 1 - offset if length is None else length
        self.array = ArrowArray(
            length=count,
            null_count=null_count,
            offset=offset,
            n_buffers=n_buffers,
            buffers=ctypes.addressof(pointers),
            release=ctypes.cast(self.release_array, ctypes.c_void_p),
        )
        self.pointers = pointers
        self.schema = ArrowSchema(
            format=format, release=ctypes.cast(self.release_schema, ctypes.c_void_p)
        )

    def released(self, address: int) -> None:
        self.releases += 1
        ArrowArray.from_address(address).release = None

    def capsules(self) -> Tuple[Any, Any]:
        return (
            new_capsule(ctypes.addressof(self.schema), b"arrow_schema", None),
            new_capsule(ctypes.addressof(self.array), b"arrow_array", None),
        )


def test_a_hand_made_array_is_read_and_released_once() -> None:
    values = ["a@b.example", "<<", "", "c@d.example", "x"]
    data = "".join(values).encode()
    ends = [0]
    for value in values:
        ends.append(ends[-1] + len(value))
    # Values 1 to 4 (offset 1), the third of them null: bits 1, 2, 4 set, 3 clear.
    made = HandMade(ends, data, bytes([0b10110]), offset=1, length=4, null_count=1)
    assert _verdicts_arrow(*made.capsules()) == fromguard.verdicts(["<<", "", "", "x"])
    assert made.releases == 1
    assert made.array.release is None  # moved out of its capsule, marked released
    large = HandMade(ends, data, format=b"Z")
    got = _parse_many_arrow(*large.capsules())
    assert [result.value for result in got] == [value.encode() for value in values]
    assert large.releases == 1


@pytest.mark.parametrize(
    ("made", "reason"),
    [
        (lambda: HandMade([0, 3, 2], b"abcde"), "the offsets decrease"),
        (lambda: HandMade([0, -1], b"abcde"), "a negative offset"),
        (lambda: HandMade(None, b"abcde", length=2), "the offsets buffer is missing"),
        (lambda: HandMade([0, 2, 5], None), "the data buffer is missing"),
        (lambda: HandMade([0, 1], b"a", length=-1), "a negative array length"),
        (lambda: HandMade([0, 1], b"a", offset=-1, length=1), "a negative array offset"),
        (lambda: HandMade([0, 1], b"a", offset=2**62, length=2**62), "overflow"),
        (lambda: HandMade([0, 1], b"a", n_buffers=2), "three buffers"),
    ],
)
def test_a_broken_array_raises_and_is_released(made: Callable[[], HandMade], reason: str) -> None:
    broken = made()
    for judge in (_verdicts_arrow, _parse_many_arrow):
        broken.array.release = ctypes.cast(broken.release_array, ctypes.c_void_p)
        with pytest.raises(ValueError, match=reason):
            judge(*broken.capsules())
    assert broken.releases == 2


def test_wrong_capsules_raise() -> None:
    made = HandMade([0, 1], b"a")
    schema, array = made.capsules()
    with pytest.raises(TypeError, match='PyCapsule named "arrow_array"'):
        _verdicts_arrow(schema, schema)
    with pytest.raises(TypeError, match='PyCapsule named "arrow_schema"'):
        _verdicts_arrow(array, array)
    with pytest.raises(TypeError, match="PyCapsule"):
        _verdicts_arrow("u", b"\0" * 80)
    assert made.releases == 0
    for format in (b"l", b"vu", b"+s", b""):
        other = HandMade([0, 1], b"a", format=format)
        with pytest.raises(TypeError, match="strings or binaries"):
            _verdicts_arrow(*other.capsules())
        assert other.releases == 0  # refused before it was moved out of its capsule
    made.array.release = None
    with pytest.raises(ValueError, match="released already"):
        _verdicts_arrow(schema, array)
    made.schema.release = None
    with pytest.raises(ValueError, match="schema is released"):
        _verdicts_arrow(schema, array)


def test_capsules_are_read_once() -> None:
    """The array is moved out of its capsule: a second read finds it released."""
    schema, array = pa.array(["a@b.example"]).__arrow_c_array__()
    assert _verdicts_arrow(schema, array) == bytes([Verdict.VALID])
    with pytest.raises(ValueError, match="released already"):
        _verdicts_arrow(schema, array)


class WrongCapsules:
    """A producer whose ``__arrow_c_array__`` returns its capsules swapped."""

    def __arrow_c_array__(self, requested_schema: Any = None) -> Any:
        schema, array = pa.array(["a@b.example"]).__arrow_c_array__()
        return array, schema


def test_a_broken_producer_raises() -> None:
    with pytest.raises((TypeError, ValueError)):
        fromguard.verdicts(WrongCapsules())


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
