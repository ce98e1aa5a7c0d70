//! Arrow arrays judged in place, without a Python object per value: `fromguard._batch`
//! hands over the two PyCapsules of an array's `__arrow_c_array__` (the Arrow PyCapsule
//! interface), `ffi::ArrowStrings` moves the array (the C data interface's `struct
//! ArrowArray`) out of its capsule, and the values are read from the producer's own
//! buffers: no copy of them, none per value. `string`, `large_string`, `binary` and
//! `large_binary` arrays are read (formats `u`, `U`, `z`, `Z`); any other is refused
//! (`fromguard._batch` casts the views to the large types first).
//!
//! The layout (Arrow columnar format, "Variable-size Binary Layout"): value `i` of an
//! array whose buffers start `first` values in is `data[offsets[first + i] ..
//! offsets[first + i + 1]]`, offsets being 32-bit (64-bit for the large types) signed
//! integers in the machine's byte order; bit `first + i` of the validity bitmap (least
//! significant bit first) is clear for a null, and there is no bitmap when no value is
//! null.
//!
//! The values are judged without the GIL, on the batch threads when the array is large.
//! The buffers stay valid meanwhile: the array was moved out of its capsule, so no Python
//! code can release it, and it is released only when the call is over (`ArrowStrings` is
//! dropped after the judging threads are done); Arrow buffers are immutable by contract.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use fromguard::Profile;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use crate::FromHeader;
use crate::batch::{PARALLEL_VALUES, PIECE_VALUES, helpers};
use crate::errors::{Panic, guarded};
use crate::ffi::ArrowStrings;
use crate::inject::panic_on_trigger;

/// The values of one array, checked: no offset is negative and none is less than the one
/// before, so that each value lies within the data, which ends at the last offset.
pub(crate) struct Values<'b> {
    data: &'b [u8],
    /// The array's own offsets, `length + 1` of them, `width` bytes each (none for an
    /// empty array).
    offsets: &'b [u8],
    width: usize,
    /// Bit `first + i` for value `i`.
    validity: Option<&'b [u8]>,
    first: usize,
    length: usize,
}

impl<'b> Values<'b> {
    /// The values, or why `offsets` do not delimit values.
    pub(crate) fn new(
        data: &'b [u8],
        offsets: &'b [u8],
        width: usize,
        validity: Option<&'b [u8]>,
        first: usize,
        length: usize,
    ) -> Result<Self, &'static str> {
        let mut previous = 0;
        for bytes in offsets.chunks_exact(width) {
            let offset = read_offset(bytes).ok_or("a negative offset")?;
            if offset < previous {
                return Err("the offsets decrease");
            }
            previous = offset;
        }
        Ok(Values {
            data,
            offsets,
            width,
            validity,
            first,
            length,
        })
    }

    /// Value `index`; a null is the empty value.
    fn get(&self, index: usize) -> &'b [u8] {
        let bit = self.first + index;
        let null = self.validity.is_some_and(|bitmap| {
            bitmap
                .get(bit / 8)
                .is_some_and(|byte| byte >> (bit % 8) & 1 == 0)
        });
        let offset = |k: usize| {
            self.offsets
                .get(k * self.width..(k + 1) * self.width)
                .and_then(read_offset)
        };
        match (null, offset(index), offset(index + 1)) {
            (false, Some(start), Some(end)) => self.data.get(start..end).unwrap_or_default(),
            _ => &[],
        }
    }
}

/// An offset: a 32-bit or 64-bit signed integer in the machine's byte order; `None` when
/// negative.
pub(crate) fn read_offset(bytes: &[u8]) -> Option<usize> {
    let offset = match *bytes {
        [a, b, c, d] => i64::from(i32::from_ne_bytes([a, b, c, d])),
        [a, b, c, d, e, f, g, h] => i64::from_ne_bytes([a, b, c, d, e, f, g, h]),
        _ => -1,
    };
    usize::try_from(offset).ok()
}

/// `fromguard.verdicts` over one Arrow array, given as the capsules of its
/// `__arrow_c_array__`: the verdict of each value, one byte each; a null is judged as the
/// empty value.
#[pyfunction]
#[pyo3(signature = (schema, array, *, utf8 = true, groups = false))]
pub(crate) fn verdicts_arrow<'py>(
    py: Python<'py>,
    schema: &Bound<'py, PyAny>,
    array: &Bound<'py, PyAny>,
    utf8: bool,
    groups: bool,
) -> PyResult<Bound<'py, PyBytes>> {
    let profile = Profile { utf8, groups };
    let imported = ArrowStrings::import(schema, array)?;
    let values = imported.values().map_err(PyValueError::new_err)?;
    guarded(py, "verdicts", Some(values.length), || {
        PyBytes::new_with(py, values.length, |output| {
            py.detach(|| {
                judge_all(&values, output, "verdicts", |input| {
                    fromguard::assess(input, profile).verdict as u8
                })
            })
            .map_err(|panic| panic.to_py_err(py))
        })
    })
}

/// `fromguard.parse_many` over one Arrow array, given as the capsules of its
/// `__arrow_c_array__`: judged like [`verdicts_arrow`], then a result per value, each
/// holding its value as bytes (a null as the empty value).
#[pyfunction]
#[pyo3(signature = (schema, array, *, utf8 = true, groups = false))]
pub(crate) fn parse_many_arrow<'py>(
    py: Python<'py>,
    schema: &Bound<'py, PyAny>,
    array: &Bound<'py, PyAny>,
    utf8: bool,
    groups: bool,
) -> PyResult<Bound<'py, PyList>> {
    let profile = Profile { utf8, groups };
    let imported = ArrowStrings::import(schema, array)?;
    let values = imported.values().map_err(PyValueError::new_err)?;
    guarded(py, "parse_many", Some(values.length), || {
        // Every slot is written by `judge_all` (or it fails): the empty value's
        // assessment only fills the vector first.
        let mut assessments = vec![fromguard::assess(b"", profile); values.length];
        py.detach(|| {
            judge_all(&values, &mut assessments, "parse_many", |input| {
                fromguard::assess(input, profile)
            })
        })
        .map_err(|panic| panic.to_py_err(py))?;
        let results = assessments
            .into_iter()
            .enumerate()
            .map(|(index, assessed)| {
                let value = PyBytes::new(py, values.get(index)).into_any().unbind();
                FromHeader::new(value, profile, assessed).into_python(py)
            });
        PyList::new(py, results.collect::<PyResult<Vec<_>>>()?)
    })
}

/// `judge` of each value into `output`, in pieces taken by this thread and the batch
/// helpers in turn; the first piece that panics is reported, with its value's index.
fn judge_all<T: Send>(
    values: &Values<'_>,
    output: &mut [T],
    operation: &'static str,
    judge: impl Fn(&[u8]) -> T + Sync,
) -> Result<(), Panic> {
    let pieces: Vec<Mutex<(usize, &mut [T])>> = output
        .chunks_mut(PIECE_VALUES)
        .enumerate()
        .map(|(piece, slots)| Mutex::new((piece * PIECE_VALUES, slots)))
        .collect();
    let next = AtomicUsize::new(0);
    let failed: Mutex<Option<(usize, Panic)>> = Mutex::new(None);
    let work = || {
        while let Some(piece) = pieces.get(next.fetch_add(1, Ordering::Relaxed)) {
            let Ok(mut piece) = piece.lock() else { return };
            let (start, ref mut slots) = *piece;
            for (offset, slot) in slots.iter_mut().enumerate() {
                let input = values.get(start + offset);
                let judged = catch_unwind(AssertUnwindSafe(|| {
                    panic_on_trigger(input);
                    judge(input)
                }));
                match judged {
                    Ok(verdict) => *slot = verdict,
                    Err(payload) => {
                        let index = start + offset;
                        let panic = Panic::caught(
                            operation,
                            Some(input.len()),
                            Some(index),
                            payload.as_ref(),
                        );
                        if let Ok(mut first) = failed.lock()
                            && first.as_ref().is_none_or(|(seen, _)| index < *seen)
                        {
                            *first = Some((index, panic));
                        }
                        return;
                    }
                }
            }
        }
    };
    match helpers().filter(|_| values.length >= PARALLEL_VALUES) {
        Some(pool) => pool.in_place_scope(|scope| {
            for _ in 0..pool.current_num_threads() {
                scope.spawn(|_| work());
            }
            work();
        }),
        None => work(),
    }
    match failed.into_inner() {
        Ok(Some((_, panic))) => Err(panic),
        _ => Ok(()),
    }
}
