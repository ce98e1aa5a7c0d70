"""``parse_many`` and ``verdicts``: over any iterable of values, or over an Arrow array of
strings or binaries (pyarrow's ``Array`` and ``ChunkedArray``, and whatever exports the
Arrow PyCapsule interface: pandas' Arrow-backed columns, a Polars series, a DuckDB
result), read without a Python object per value.

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

# Arrow types whose values are read from their buffers: name -> 64-bit offsets.
_LAYOUTS = {"string": False, "binary": False, "large_string": True, "large_binary": True}


def _arrow_chunks(values: Any) -> Optional[List[Any]]:
    """The chunks of ``values`` as pyarrow arrays of a type in ``_LAYOUTS``, or None when
    ``values`` is no Arrow data (then it is iterated as values)."""
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
    elif str(values.type) not in _LAYOUTS:
        raise TypeError(f"an Arrow array of strings or binaries is needed, not {values.type}")
    return list(chunks)


def _chunk_verdicts(chunk: Any, utf8: bool, groups: bool) -> bytes:
    validity, offsets, data = chunk.buffers()
    # One copy of each buffer (the buffer protocol is not in the stable ABI the core is
    # built for before Python 3.11), none per value.
    return _core._verdicts_arrow(
        b"" if data is None else data.to_pybytes(),
        offsets.to_pybytes(),
        None if validity is None or chunk.null_count == 0 else validity.to_pybytes(),
        chunk.offset,
        len(chunk),
        _LAYOUTS[str(chunk.type)],
        utf8=utf8,
        groups=groups,
    )


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
        parts = [_chunk_verdicts(chunk, utf8, groups) for chunk in chunks]
        result = parts[0] if len(parts) == 1 else b"".join(parts)
    if not as_arrow:
        return result
    import pyarrow as pa

    return pa.Array.from_buffers(pa.uint8(), len(result), [None, pa.py_buffer(result)])


def parse_many(
    values: Values, *, utf8: bool = True, groups: bool = False
) -> List[_core.FromHeader]:
    """``parse`` over many values; the parser runs over the batch without the GIL. Each
    result holds its value, so an Arrow array's values become Python objects here."""
    chunks = _arrow_chunks(values)
    if chunks is None:
        return _core.parse_many(values, utf8=utf8, groups=groups)
    results: List[_core.FromHeader] = []
    for chunk in chunks:
        empty = b"" if "binary" in str(chunk.type) else ""
        pylist = [empty if value is None else value for value in chunk.to_pylist()]
        results.extend(_core.parse_many(pylist, utf8=utf8, groups=groups))
    return results
