//! Arrow arrays judged without a Python object per value: `fromguard._batch` hands over
//! the offsets, data and validity buffers of a `string`, `large_string`, `binary` or
//! `large_binary` array as bytes objects (one copy of each buffer: the buffer protocol
//! is not in the stable ABI before Python 3.11), and the values are read from them.
//!
//! The layout (Arrow columnar format, "Variable-size Binary Layout"): value `i` of an
//! array whose buffers start `first` values in is `data[offsets[first + i] ..
//! offsets[first + i + 1]]`, offsets being 32-bit (64-bit for the large types) signed
//! integers in the machine's byte order; bit `first + i` of the validity bitmap (least
//! significant bit first) is clear for a null, and there is no bitmap when no value is
//! null.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use fromguard::Profile;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::batch::{PARALLEL_VALUES, PIECE_VALUES, helpers};
use crate::errors::{Panic, guarded};
use crate::inject::panic_on_trigger;

/// The values of one array, checked: every offset read is within the data.
struct Values<'b> {
    data: &'b [u8],
    /// The array's own offsets, `length + 1` of them, `width` bytes each.
    offsets: &'b [u8],
    width: usize,
    validity: Option<&'b [u8]>,
    first: usize,
    length: usize,
}

impl<'b> Values<'b> {
    /// The values, or why the buffers do not hold `length` values from `first` on.
    fn new(
        data: &'b [u8],
        offsets: &'b [u8],
        validity: Option<&'b [u8]>,
        first: usize,
        length: usize,
        large: bool,
    ) -> Result<Self, &'static str> {
        let width = if large { 8 } else { 4 };
        let count = first
            .checked_add(length)
            .and_then(|last| last.checked_add(1))
            .ok_or("the offset and length overflow")?;
        let needed = count.checked_mul(width).ok_or("the offsets overflow")?;
        let own = offsets
            .get(first * width..needed)
            .ok_or("the offsets buffer is shorter than the array")?;
        let mut previous = 0;
        for bytes in own.chunks_exact(width) {
            let offset = read_offset(bytes).ok_or("a negative offset")?;
            if offset < previous {
                return Err("the offsets decrease");
            }
            previous = offset;
        }
        if previous > data.len() {
            return Err("an offset is past the end of the data buffer");
        }
        if let Some(bitmap) = validity
            && bitmap.len() * 8 < first + length
        {
            return Err("the validity bitmap is shorter than the array");
        }
        Ok(Values {
            data,
            offsets: own,
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
fn read_offset(bytes: &[u8]) -> Option<usize> {
    let offset = match *bytes {
        [a, b, c, d] => i64::from(i32::from_ne_bytes([a, b, c, d])),
        [a, b, c, d, e, f, g, h] => i64::from_ne_bytes([a, b, c, d, e, f, g, h]),
        _ => -1,
    };
    usize::try_from(offset).ok()
}

/// `fromguard.verdicts` over one Arrow array (see `fromguard._batch`): the verdict of
/// each value, one byte each; a null is judged as the empty value. Without the GIL, on
/// the batch threads when the array is large.
#[pyfunction]
#[pyo3(signature = (data, offsets, validity, first, length, large, *, utf8 = true, groups = false))]
#[allow(
    clippy::too_many_arguments,
    reason = "an Arrow array's parts, as pyarrow gives them"
)]
pub(crate) fn verdicts_arrow<'py>(
    py: Python<'py>,
    data: &[u8],
    offsets: &[u8],
    validity: Option<&[u8]>,
    first: usize,
    length: usize,
    large: bool,
    utf8: bool,
    groups: bool,
) -> PyResult<Bound<'py, PyBytes>> {
    let profile = Profile { utf8, groups };
    guarded(py, "verdicts", Some(length), || {
        let values = Values::new(data, offsets, validity, first, length, large)
            .map_err(PyValueError::new_err)?;
        PyBytes::new_with(py, length, |output| {
            py.detach(|| judge_all(&values, output, profile))
                .map_err(|panic| panic.to_py_err(py))
        })
    })
}

/// Each value's verdict into `output`, in pieces taken by this thread and the batch
/// helpers in turn; the first piece that panics is reported, with its value's index.
fn judge_all(values: &Values<'_>, output: &mut [u8], profile: Profile) -> Result<(), Panic> {
    let pieces: Vec<Mutex<(usize, &mut [u8])>> = output
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
                    fromguard::assess(input, profile).verdict as u8
                }));
                match judged {
                    Ok(verdict) => *slot = verdict,
                    Err(payload) => {
                        let index = start + offset;
                        let panic = Panic::caught(
                            "verdicts",
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
