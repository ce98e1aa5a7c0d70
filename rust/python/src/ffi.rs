//! The binding's only `unsafe` code: two CPython calls that PyO3 does not wrap, and the
//! reading of an Arrow array through the Arrow C data interface.

use std::ffi::{CStr, c_char, c_void};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyCapsuleMethods};

use crate::arrow::{Values, read_offset};

/// The UTF-8 form of a str, cached in the str by CPython (`PyUnicode_AsUTF8AndSize`),
/// or `None` when it has lone surrogates (the error is cleared).
#[cfg(not(windows))]
pub(crate) fn cached_utf8<'a>(text: &'a Bound<'_, PyAny>) -> Option<&'a [u8]> {
    // In the stable ABI only from Python 3.10, but exported by every CPython 3 (not in
    // python3.dll on Windows before 3.10, hence the other branch there).
    unsafe extern "C" {
        fn PyUnicode_AsUTF8AndSize(
            unicode: *mut pyo3::ffi::PyObject,
            size: *mut pyo3::ffi::Py_ssize_t,
        ) -> *const std::ffi::c_char;
    }
    if !text.is_exact_instance_of::<pyo3::types::PyString>() {
        return None;
    }
    let mut size: pyo3::ffi::Py_ssize_t = 0;
    // SAFETY: `text` is a str (checked above) and the GIL is held (`Bound`). The buffer
    // returned belongs to the str, which is immutable and outlives the borrow of `text`.
    let data = unsafe { PyUnicode_AsUTF8AndSize(text.as_ptr(), &mut size) };
    if data.is_null() {
        // Lone surrogates: no UTF-8 form. Drop the UnicodeEncodeError raised.
        drop(PyErr::take(text.py()));
        return None;
    }
    let size = usize::try_from(size).ok()?;
    // SAFETY: CPython guarantees `size` bytes at `data`, alive as long as the str.
    Some(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size) })
}

#[cfg(windows)]
pub(crate) fn cached_utf8<'a>(_text: &'a Bound<'_, PyAny>) -> Option<&'a [u8]> {
    None
}

/// Takes `object` out of the cyclic garbage collector's lists.
///
/// PyO3 makes every class a GC container, so a batch of 10^5 results made the collector
/// run its young-generation pass every 700 of them and older passes over every result
/// kept: a third of `parse_many`'s time, all of it under the GIL. A `FromHeader` cannot
/// be part of a reference cycle (it holds its value, an exact str or bytes, never an
/// instance of a subclass, which could refer back to it: `held` copies those; and tuples
/// of named tuples of strings, numbers and enum members that it built itself, none of
/// which can refer back to it), which is what CPython requires of an object it untracks
/// (it does the same for tuples and dicts of atomic values).
pub(crate) fn untrack(object: &Bound<'_, PyAny>) {
    // SAFETY: the GIL is held (`Bound`) and `object` is alive; `PyObject_GC_UnTrack`
    // accepts any GC object, tracked or not, and PyO3's deallocator calls it again
    // harmlessly.
    unsafe { pyo3::ffi::PyObject_GC_UnTrack(object.as_ptr().cast()) }
}

/// `struct ArrowSchema` of the Arrow C data interface
/// (<https://arrow.apache.org/docs/format/CDataInterface.html>); only its format is read.
#[repr(C)]
struct ArrowSchema {
    format: *const c_char,
    name: *const c_char,
    metadata: *const c_char,
    flags: i64,
    n_children: i64,
    children: *mut *mut ArrowSchema,
    dictionary: *mut ArrowSchema,
    release: Option<unsafe extern "C" fn(*mut ArrowSchema)>,
    private_data: *mut c_void,
}

/// `struct ArrowArray` of the Arrow C data interface.
#[repr(C)]
struct ArrowArray {
    length: i64,
    null_count: i64,
    offset: i64,
    n_buffers: i64,
    n_children: i64,
    buffers: *mut *const c_void,
    children: *mut *mut ArrowArray,
    dictionary: *mut ArrowArray,
    release: Option<unsafe extern "C" fn(*mut ArrowArray)>,
    private_data: *mut c_void,
}

/// An Arrow array of strings or binaries (format `u`, `U`, `z` or `Z`), moved out of the
/// `arrow_array` PyCapsule that `__arrow_c_array__` returned (the Arrow PyCapsule
/// interface) and released when dropped.
///
/// Moved, not borrowed, because its values are judged without the GIL: while the capsule
/// holds the array, any Python thread given the capsule could move it out too (pyarrow's
/// import does) and free the buffers under our reading. Moving follows the C data
/// interface ("Moving an array"): the struct is copied bitwise and the source marked
/// released (its `release` set to NULL), so that the capsule's destructor leaves it alone
/// and the release is ours to call, once.
pub(crate) struct ArrowStrings {
    array: ArrowArray,
    /// 64-bit offsets (`U`, `Z`), else 32-bit.
    large: bool,
}

impl ArrowStrings {
    /// The array of the capsules `schema` and `array`, or a clear error (`TypeError` for
    /// what is not an array of strings or binaries, `ValueError` for a broken one); the
    /// array is moved out of its capsule only once its schema is known to fit.
    pub(crate) fn import(schema: &Bound<'_, PyAny>, array: &Bound<'_, PyAny>) -> PyResult<Self> {
        let large = match string_format(schema)?.to_bytes() {
            b"u" | b"z" => false,
            b"U" | b"Z" => true,
            other => {
                return Err(PyTypeError::new_err(format!(
                    "an Arrow array of strings or binaries is needed (format u, U, z or Z), \
                     not one of format {:?}",
                    String::from_utf8_lossy(other)
                )));
            }
        };
        let source = capsule_pointer(array, c"arrow_array")?.cast::<ArrowArray>();
        // SAFETY: a capsule named "arrow_array" holds a pointer to a `struct ArrowArray`
        // (the PyCapsule interface), which `#[repr(C)]` `ArrowArray` lays out; the GIL is
        // held (`Bound`), so no other Python thread touches the capsule meanwhile, and
        // `capsule_pointer` returned a non-null pointer. Copying the struct and then
        // clearing the source's `release` is the C data interface's move: from here the
        // buffers are ours until we call `release` (in `drop`), whatever happens to the
        // capsule.
        let moved = unsafe {
            let source = source.as_ptr();
            if (*source).release.is_none() {
                return Err(PyValueError::new_err(
                    "the Arrow array was released already",
                ));
            }
            let array = std::ptr::read(source);
            (*source).release = None;
            array
        };
        let imported = ArrowStrings {
            array: moved,
            large,
        };
        if imported.array.n_buffers != 3 || imported.array.buffers.is_null() {
            return Err(PyValueError::new_err(
                "an Arrow array of strings or binaries has three buffers",
            ));
        }
        Ok(imported)
    }

    /// Its values, checked by [`Values::new`]; slices of the producer's buffers, of the
    /// sizes the layout gives them.
    pub(crate) fn values(&self) -> Result<Values<'_>, &'static str> {
        let array = &self.array;
        let first = usize::try_from(array.offset).map_err(|_| "a negative array offset")?;
        let length = usize::try_from(array.length).map_err(|_| "a negative array length")?;
        let width = if self.large { 8 } else { 4 };
        // An empty array reads no offset (producers may leave its buffers NULL).
        let offsets_read = if length == 0 { 0 } else { length + 1 };
        let sizes = || {
            let spanned = first.checked_add(length)?;
            Some((
                spanned,
                first.checked_mul(width)?,
                offsets_read.checked_mul(width)?,
            ))
        };
        let (spanned, offsets_start, offsets_length) =
            sizes().ok_or("the array's offset and length overflow")?;
        // SAFETY: `import` checked that `buffers` is not NULL and points to 3 pointers,
        // as the C data interface lays them out for these formats: validity, offsets,
        // data. The array is ours until `drop` releases it (see `ArrowStrings`).
        let [validity, offsets, data] = unsafe { [0, 1, 2].map(|k| *array.buffers.add(k)) };
        // SAFETY: the Arrow columnar format ("Variable-size Binary Layout") gives a valid
        // array `offset + length + 1` offsets of `width` bytes, of which these are the
        // array's own. The C structs carry no sizes: every consumer relies on the
        // layout's, as this does. Arrow buffers are immutable, and the array is ours
        // until `drop` (see `ArrowStrings`).
        let offsets = unsafe {
            buffer(
                offsets,
                offsets_start,
                offsets_length,
                "the offsets buffer is missing",
            )
        }?;
        // The data this array uses ends at its last offset (a negative one is refused
        // by `Values::new`).
        let last = offsets.len().saturating_sub(width);
        let data_length = offsets.get(last..).and_then(read_offset).unwrap_or(0);
        // SAFETY: by the layout, a valid array's data buffer holds at least the bytes up
        // to its last offset; `Values::new` refuses offsets that decrease, so every value
        // ends within them.
        let data = unsafe { buffer(data, 0, data_length, "the data buffer is missing") }?;
        // With no null, no bitmap is read; the C data interface lets the producer omit
        // it then (NULL).
        let validity = if array.null_count == 0 || validity.is_null() {
            None
        } else {
            // SAFETY: by the layout, the validity bitmap holds a bit for each of the
            // `offset + length` values, least significant bit first.
            Some(unsafe {
                buffer(
                    validity,
                    0,
                    spanned.div_ceil(8),
                    "the validity bitmap is missing",
                )
            }?)
        };
        Values::new(data, offsets, width, validity, first, length)
    }
}

impl Drop for ArrowStrings {
    fn drop(&mut self) {
        if let Some(release) = self.array.release {
            // SAFETY: the array was moved to us with its `release` (see `import`), which
            // has not been called: this is the one call, on the thread that imported it
            // (the entry points drop it at their end, with the GIL held), as the
            // capsule's destructor would have made it. The struct may be moved before
            // its release (the C data interface allows it): `release` gets its address.
            unsafe { release(&mut self.array) }
        }
    }
}

/// The `length` bytes `skip` bytes into the buffer at `start` (none when `length` is 0);
/// `missing` when they are needed and `start` is NULL.
///
/// # Safety
///
/// `start`, unless NULL, points to at least `skip + length` bytes that stay alive and
/// unchanged while the result is borrowed.
unsafe fn buffer<'a>(
    start: *const c_void,
    skip: usize,
    length: usize,
    missing: &'static str,
) -> Result<&'a [u8], &'static str> {
    if length == 0 {
        return Ok(&[]);
    }
    if start.is_null() {
        return Err(missing);
    }
    if skip
        .checked_add(length)
        .and_then(|end| isize::try_from(end).ok())
        .is_none()
    {
        return Err("a buffer is too long");
    }
    // SAFETY: the caller's promise; `start` is not NULL, and `skip + length` fits an
    // `isize`, as `add` and `from_raw_parts` require. Bytes need no alignment.
    Ok(unsafe { std::slice::from_raw_parts(start.cast::<u8>().add(skip), length) })
}

/// The format string of the `arrow_schema` capsule `schema`.
fn string_format<'a>(schema: &'a Bound<'_, PyAny>) -> PyResult<&'a CStr> {
    let pointer = capsule_pointer(schema, c"arrow_schema")?.cast::<ArrowSchema>();
    // SAFETY: a capsule named "arrow_schema" holds a pointer to a `struct ArrowSchema`,
    // alive until the capsule is destroyed (which `schema`'s reference prevents while the
    // result is borrowed); the GIL is held, so no other Python thread moves or releases
    // it meanwhile. A released schema (no `release`) may hold anything: refused.
    let format = unsafe {
        let schema = pointer.as_ref();
        if schema.release.is_none() || schema.format.is_null() {
            return Err(PyValueError::new_err(
                "the Arrow schema is released or has no format",
            ));
        }
        schema.format
    };
    // SAFETY: the format of a schema not released is a NUL-terminated string that lives
    // as long as the schema.
    Ok(unsafe { CStr::from_ptr(format) })
}

/// The pointer held by `capsule`, a PyCapsule named `name` (never NULL).
fn capsule_pointer(capsule: &Bound<'_, PyAny>, name: &CStr) -> PyResult<std::ptr::NonNull<c_void>> {
    let wrong = || {
        PyTypeError::new_err(format!(
            "a PyCapsule named {name:?} is needed (the Arrow PyCapsule interface)"
        ))
    };
    let capsule = capsule.cast::<PyCapsule>().map_err(|_| wrong())?;
    if !capsule.is_valid_checked(Some(name)) {
        return Err(wrong());
    }
    capsule.pointer_checked(Some(name))
}
