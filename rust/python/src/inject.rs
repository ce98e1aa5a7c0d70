//! For tests only: a panic on demand, so that the failure contract (`errors.rs`: no
//! panic escapes as a `BaseException`, no batch waits forever) can be tested where it
//! matters, on a batch helper thread as well as on the caller's, through the wheel the
//! tests install (no build of its own).
//!
//! `fromguard._core._inject_panic(trigger)` arms it: from then on, judging a value (a
//! From value, a batch's value, a message, a rule's pattern) equal to `trigger` panics;
//! `_inject_panic(None)` disarms it. Unarmed, [`panic_on_trigger`] costs one relaxed load
//! of a flag, which stays false: nothing measurable in a batch.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// Set while a trigger is armed. Relaxed: a thread that sees it set reads the trigger
/// under its lock, and a test arms it before the call it tests starts any thread.
static ARMED: AtomicBool = AtomicBool::new(false);
static TRIGGER: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// Panics when `input` is the armed trigger.
pub(crate) fn panic_on_trigger(input: &[u8]) {
    if ARMED.load(Ordering::Relaxed) {
        check_trigger(input);
    }
}

#[cold]
#[inline(never)]
fn check_trigger(input: &[u8]) {
    // A poisoned lock (a panic while it was held cannot happen: nothing here panics
    // under it) would still hold a valid trigger.
    let trigger = TRIGGER
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let hit = *trigger == input;
    drop(trigger);
    if hit {
        panic!("injected panic (fromguard._core._inject_panic, for tests)");
    }
}

/// For tests only: judging a value equal to ``trigger`` panics from now on (``None``:
/// never).
#[pyfunction]
#[pyo3(name = "_inject_panic", signature = (trigger, /))]
pub(crate) fn inject_panic(trigger: Option<&Bound<'_, PyBytes>>) {
    let mut armed = TRIGGER
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    armed.clear();
    if let Some(trigger) = trigger {
        armed.extend_from_slice(trigger.as_bytes());
    }
    ARMED.store(trigger.is_some(), Ordering::Relaxed);
}
