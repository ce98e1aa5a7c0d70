"""``parse_many`` and ``verdicts``: over any iterable of values, or over an Arrow array of
strings or binaries (pyarrow's ``Array`` and ``ChunkedArray``, and whatever exports the
Arrow PyCapsule interface: pandas' Arrow-backed columns, a Polars series, a DuckDB
result), read in place, without a Python object per value: each chunk's
``__arrow_c_array__`` capsules go to the core, which reads the producer's buffers.

pyarrow is an optional dependency (the ``arrow`` extra): it is imported only when an
Arrow array is given. A null value is judged as the empty value (``INVALID``: ``empty``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, List, Literal, Optional, Union, overload

from . import _core

if TYPE_CHECKING:
    import pyarrow

__all__ = ["parse_many", "verdicts"]

Values = Union[Iterable[Union[bytes, str]], "pyarrow.Array", "pyarrow.ChunkedArray"]


def _arrow_chunks(values: Any) -> Optional[List[Any]]:
    """The chunks of ``values`` as pyarrow arrays, or None when ``values`` is no Arrow data
    (then it is iterated as values). The core refuses types other than strings and
    binaries."""
    module = type(values).__module__.partition(".")[0]
    exports = hasattr(values, "__arrow_c_array__") or hasattr(values, "__arrow_c_stream__")
    if module != "pyarrow" and not exports:
        return None
    import pyarrow as pa

    if not isinstance(values, (pa.Array, pa.ChunkedArray)):
        values = (
            pa.array(values) if hasattr(values, "__arrow_c_array__") else pa.chunked_array(values)
        )
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    if str(values.type) in ("string_view", "binary_view"):
        # Views hold no offsets buffer: the large layout is one copy away.
        large = pa.large_string() if values.type == pa.string_view() else pa.large_binary()
        chunks = [chunk.cast(large) for chunk in chunks]
    return list(chunks)


@overload
def verdicts(
    values: Values, *, utf8: bool = True, groups: bool = False, as_arrow: Literal[False] = False
) -> bytes: ...
@overload
def verdicts(
    values: Values, *, utf8: bool = True, groups: bool = False, as_arrow: Literal[True]
) -> "pyarrow.UInt8Array": ...
def verdicts(
    values: Values, *, utf8: bool = True, groups: bool = False, as_arrow: bool = False
) -> Union[bytes, "pyarrow.UInt8Array"]:
    """The verdict of each value, one byte each (the ``Verdict`` value), in order, without
    the GIL; nothing is built per value. With ``as_arrow``, a pyarrow ``UInt8Array``
    sharing the result's memory."""
    chunks = _arrow_chunks(values)
    if chunks is None:
        result = _core.verdicts(values, utf8=utf8, groups=groups)
    else:
        parts = [
            _core._verdicts_arrow(*chunk.__arrow_c_array__(), utf8=utf8, groups=groups)
            for chunk in chunks
        ]
        result = parts[0] if len(parts) == 1 else b"".join(parts)
    if not as_arrow:
        return result
    import pyarrow as pa

    return pa.Array.from_buffers(pa.uint8(), len(result), [None, pa.py_buffer(result)])


def parse_many(
    values: Values, *, utf8: bool = True, groups: bool = False
) -> List[_core.FromHeader]:
    """``parse`` over many values; the parser runs over the batch without the GIL. Each
    result holds its value, so an Arrow array's values become bytes objects here (made
    from its buffers, with no other object per value)."""
    chunks = _arrow_chunks(values)
    if chunks is None:
        return _core.parse_many(values, utf8=utf8, groups=groups)
    results: List[_core.FromHeader] = []
    for chunk in chunks:
        results.extend(
            _core._parse_many_arrow(*chunk.__arrow_c_array__(), utf8=utf8, groups=groups)
        )
    return results
