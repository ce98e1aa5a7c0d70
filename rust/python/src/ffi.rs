//! The binding's only `unsafe` code: two CPython calls that PyO3 does not wrap.

use pyo3::prelude::*;

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
