//! The one place where the binding turns what went wrong in Rust into Python exceptions:
//! a panic (a bug, in the core or here) becomes `fromguard.InternalError`, a rule that
//! does not compile `fromguard.RuleError`. Both classes are defined in Python
//! (`fromguard/_errors.py`, where they are documented) and looked up once.
//!
//! PyO3 would raise a panic as `pyo3_runtime.PanicException`, a `BaseException` that
//! `except Exception` does not catch: a gateway that must not lose mail would lose the
//! message, and a scan would stop at it. So every entry point runs its work through
//! [`guarded`], and batch helpers catch their own panics ([`Panic::caught`]).

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use pyo3::call::PyCallArgs;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// The exception classes of `fromguard._errors`.
struct Exceptions {
    internal_error: Py<PyAny>,
    rule_error: Py<PyAny>,
}

static EXCEPTIONS: PyOnceLock<Exceptions> = PyOnceLock::new();

fn exceptions(py: Python<'_>) -> PyResult<&Exceptions> {
    EXCEPTIONS.get_or_try_init(py, || {
        let module = py.import("fromguard._errors")?;
        Ok(Exceptions {
            internal_error: module.getattr("InternalError")?.unbind(),
            rule_error: module.getattr("RuleError")?.unbind(),
        })
    })
}

/// An instance of the exception class `class` made with `arguments`, as an error to
/// raise; or the error of making it (the Python side broken: that is raised instead).
fn raised<'py>(
    py: Python<'py>,
    class: impl FnOnce(&Exceptions) -> &Py<PyAny>,
    arguments: impl PyCallArgs<'py>,
) -> PyErr {
    match exceptions(py).and_then(|found| class(found).bind(py).call1(arguments)) {
        Ok(instance) => PyErr::from_value(instance),
        Err(error) => error,
    }
}

/// A panic caught: what was running, on what input, and the panic's message. `Send`, so
/// that a batch helper can hand it to the caller's thread, which raises it.
#[derive(Debug)]
pub(crate) struct Panic {
    /// The entry point: `parse`, `verdicts`, `RuleSet.match`, ...
    operation: &'static str,
    /// The input's size (see `InternalError.input_length`), when known.
    input_length: Option<usize>,
    /// The position of the value in a batch, when the panic was judging one.
    index: Option<usize>,
    detail: String,
}

impl Panic {
    /// The panic whose payload `catch_unwind` returned.
    pub(crate) fn caught(
        operation: &'static str,
        input_length: Option<usize>,
        index: Option<usize>,
        payload: &(dyn Any + Send),
    ) -> Self {
        let detail = payload
            .downcast_ref::<&str>()
            .map(|message| (*message).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned());
        Panic {
            operation,
            input_length,
            index,
            detail,
        }
    }

    /// `fromguard.InternalError` for this panic.
    pub(crate) fn to_py_err(&self, py: Python<'_>) -> PyErr {
        raised(
            py,
            |found| &found.internal_error,
            (self.operation, self.input_length, &self.detail, self.index),
        )
    }
}

/// `work()`, whose input has `input_length` (see `InternalError.input_length`), with a
/// panic raised as `fromguard.InternalError` naming `operation`.
pub(crate) fn guarded<T>(
    py: Python<'_>,
    operation: &'static str,
    input_length: Option<usize>,
    work: impl FnOnce() -> PyResult<T>,
) -> PyResult<T> {
    // Unwind safety: after a panic, nothing `work` touched is used again but what is
    // valid at any time (Python objects, atomics, once-cells left empty).
    catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|payload| {
        Err(Panic::caught(operation, input_length, None, payload.as_ref()).to_py_err(py))
    })
}

/// `fromguard.RuleError` for a rule that does not compile.
pub(crate) fn rule_error(py: Python<'_>, error: fromguard::RuleError) -> PyErr {
    raised(py, |found| &found.rule_error, (error.rule, error.reason))
}
