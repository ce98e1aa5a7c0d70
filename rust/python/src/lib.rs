//! `fromguard._core`: the Python binding of the `fromguard` crate.
//!
//! A thin layer: it reads the argument's bytes in place (a bytes object's buffer, a str's
//! cached UTF-8), runs the core parser and hands the result to Python as the types of
//! `fromguard._model`, which the pure-Python reference returns too, so results from both
//! compare equal field by field. No grammar lives here.
//!
//! A result is lazy: `parse` keeps the value and its verdict and syntax (which the core's
//! fast path gives without building anything), and builds the mailboxes, findings and
//! shadows as Python objects only when one of them is first read, by parsing again.
//! Batches run without the GIL, on several threads when they are large.
//!
//! No panic leaves an entry point: each raises `fromguard.InternalError` instead, and
//! every Rust error reaches Python through one module (`errors.rs`).

#![deny(unsafe_code)]

use std::borrow::Cow;

use fromguard::{CodeSet, Finding, Mailbox, Parsed, Profile, ShadowSource, Syntax, Verdict};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyUnicodeEncodeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

mod arrow;
mod batch;
mod errors;
#[allow(unsafe_code)]
mod ffi;
mod inject;
mod rewrite;
use batch::judge_batch;
use errors::guarded;
use ffi::cached_utf8;
use inject::panic_on_trigger;

/// What the binding needs from the Python side of the package, looked up once.
struct PythonSide {
    /// `fromguard._model.Verdict` members, indexed by value.
    verdicts: Vec<Py<PyAny>>,
    /// `fromguard._model.Syntax` members, indexed by value.
    syntaxes: Vec<Py<PyAny>>,
    /// `fromguard._model.Severity` members, indexed by value.
    severities: Vec<Py<PyAny>>,
    /// The `fromguard._model.Mailbox`, `Finding` and `Shadow` named tuples.
    mailbox: Py<PyAny>,
    finding: Py<PyAny>,
    shadow: Py<PyAny>,
    /// The `fromguard._model.HeaderField` and `MessageCheck` named tuples.
    header_field: Py<PyAny>,
    message_check: Py<PyAny>,
    /// Each code and its description as a Python string, by `Code::index`, so that a
    /// finding costs no string conversion.
    codes: Vec<Py<PyString>>,
    messages: Vec<Py<PyString>>,
    /// Each shadow source's name as an interned Python string, by `source_index`.
    sources: Vec<Py<PyString>>,
    /// `fromguard._explain.explain`: one implementation serves the core and the
    /// reference.
    explain: Py<PyAny>,
    /// `tuple.__new__`: makes a named tuple from its fields in C, without the Python
    /// `__new__` that a named tuple's class call runs (most of the cost of a result).
    tuple_new: Py<PyAny>,
}

static PYTHON_SIDE: PyOnceLock<PythonSide> = PyOnceLock::new();

impl PythonSide {
    /// An instance of the named tuple class `class` with these fields (in order, all of
    /// them: no defaults are filled in).
    fn make<'py>(
        &self,
        py: Python<'py>,
        class: &Py<PyAny>,
        fields: impl IntoPyObject<'py>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.tuple_new.bind(py).call1((class.bind(py), fields))
    }
}

/// Every shadow source, indexed by `source_index`.
const SHADOW_SOURCES: [ShadowSource; 9] = [
    ShadowSource::DisplayName,
    ShadowSource::Comment,
    ShadowSource::EncodedWord,
    ShadowSource::QuotedLocalPart,
    ShadowSource::PercentHack,
    ShadowSource::BangPath,
    ShadowSource::DomainLiteral,
    ShadowSource::RejectedText,
    ShadowSource::CutAddress,
];

/// The source's interned name, or a new string for a source added to the core since
/// this table was written (`ShadowSource` is non-exhaustive).
fn source_name<'py>(
    py: Python<'py>,
    side: &PythonSide,
    source: ShadowSource,
) -> Bound<'py, PyString> {
    SHADOW_SOURCES
        .iter()
        .position(|known| *known == source)
        .and_then(|index| side.sources.get(index))
        .map_or_else(
            || PyString::new(py, source.as_str()),
            |name| name.bind(py).clone(),
        )
}

/// Imported on first use, not when `_core` loads: `fromguard/__init__.py` imports
/// `_core` first, and `_model` must not depend on that order.
fn python_side(py: Python<'_>) -> PyResult<&PythonSide> {
    PYTHON_SIDE.get_or_try_init(py, || {
        let model = py.import("fromguard._model")?;
        let codes = fromguard::Code::ALL.iter();
        Ok(PythonSide {
            verdicts: members(&model.getattr("Verdict")?)?,
            syntaxes: members(&model.getattr("Syntax")?)?,
            severities: members(&model.getattr("Severity")?)?,
            mailbox: model.getattr("Mailbox")?.unbind(),
            finding: model.getattr("Finding")?.unbind(),
            shadow: model.getattr("Shadow")?.unbind(),
            header_field: model.getattr("HeaderField")?.unbind(),
            message_check: model.getattr("MessageCheck")?.unbind(),
            // Codes are interned: callers compare them and use them as keys.
            codes: codes
                .clone()
                .map(|code| PyString::intern(py, code.as_str()).unbind())
                .collect(),
            messages: codes
                .map(|code| PyString::new(py, code.description()).unbind())
                .collect(),
            sources: SHADOW_SOURCES
                .iter()
                .map(|source| PyString::intern(py, source.as_str()).unbind())
                .collect(),
            explain: py
                .import("fromguard._explain")?
                .getattr("explain")?
                .unbind(),
            tuple_new: py
                .import("builtins")?
                .getattr("tuple")?
                .getattr("__new__")?
                .unbind(),
        })
    })
}

/// The members of an `IntEnum` indexed by value, which must run 0, 1, 2, ...
fn members(enum_class: &Bound<'_, PyAny>) -> PyResult<Vec<Py<PyAny>>> {
    let mut members = Vec::new();
    for member in enum_class.try_iter()? {
        let member = member?;
        let value: usize = member.extract()?;
        if value != members.len() {
            return Err(PyRuntimeError::new_err(format!(
                "{enum_class}: member values must be 0, 1, 2, ... in order; found {value}"
            )));
        }
        members.push(member.unbind());
    }
    Ok(members)
}

/// The member of value `value`, or an error naming the enum (the Rust and Python enums
/// out of step: a bug, reported instead of a panic).
fn member(py: Python<'_>, members: &[Py<PyAny>], value: u8, name: &str) -> PyResult<Py<PyAny>> {
    members
        .get(usize::from(value))
        .map(|member| member.clone_ref(py))
        .ok_or_else(|| {
            PyRuntimeError::new_err(format!("fromguard._model.{name} has no value {value}"))
        })
}

/// The bytes of a [`held`] value: bytes as they are (no copy); str encoded as UTF-8 with
/// `surrogateescape`, so that text the `email` package decoded that way gives back its
/// original bytes, or with `surrogatepass` when it holds other lone surrogates.
fn to_bytes<'py>(value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    if let Ok(bytes) = value.cast::<PyBytes>() {
        return Ok(bytes.clone());
    }
    let py = value.py();
    let encode = intern!(py, "encode");
    let utf8 = intern!(py, "utf-8");
    let encoded = match value.call_method1(encode, (utf8, intern!(py, "surrogateescape"))) {
        Err(error) if error.is_instance_of::<PyUnicodeEncodeError>(py) => {
            value.call_method1(encode, (utf8, intern!(py, "surrogatepass")))?
        }
        result => result?,
    };
    Ok(encoded.cast_into::<PyBytes>()?)
}

/// A value as a result or a batch keeps it: an exact str or bytes object as it is (the
/// checks first: pointer comparisons, where those that admit subclasses read the type's
/// flags through a call under the stable ABI, and a batch reads millions of values); an
/// instance of a subclass copied into an exact str or bytes, since it can refer back to
/// the result kept with it (`s.r = parse(s)`) and a result is kept out of the garbage
/// collector on the claim that it cannot (see [`ffi::untrack`]). Anything else raises.
fn held<'py>(value: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = value.py();
    if value.is_exact_instance_of::<PyString>() || value.is_exact_instance_of::<PyBytes>() {
        Ok(value)
    } else if value.is_instance_of::<PyString>() {
        // `str.__str__` copies a subclass's characters as they are, lone surrogates
        // included, without the subclass's own `__str__`.
        py.get_type::<PyString>()
            .call_method1(intern!(py, "__str__"), (value,))
    } else if let Ok(bytes) = value.cast::<PyBytes>() {
        Ok(PyBytes::new(py, bytes.as_bytes()).into_any())
    } else {
        Err(PyTypeError::new_err(format!(
            "expected bytes or str, not {}",
            value.get_type().name()?
        )))
    }
}

/// The bytes of a [`held`] value without a copy: a bytes object's, or the UTF-8 form
/// CPython caches in a str (the str itself when it is ASCII). `None` for a str that has
/// none (lone surrogates; on Windows, any str), which [`bytes_of`] encodes instead.
fn in_place<'a>(value: &'a Bound<'_, PyAny>) -> Option<&'a [u8]> {
    cached_utf8(value).or_else(|| Some(value.cast::<PyBytes>().ok()?.as_bytes()))
}

/// The bytes of a [`held`] value: in place, or else encoded into `spare`.
fn bytes_of<'a, 'py>(
    value: &'a Bound<'py, PyAny>,
    spare: &'a mut Option<Bound<'py, PyBytes>>,
) -> PyResult<&'a [u8]> {
    match in_place(value) {
        Some(bytes) => Ok(bytes),
        None => Ok(spare.insert(to_bytes(value)?).as_bytes()),
    }
}

/// Values (or a batch's pieces) of at least this many bytes are judged without the GIL;
/// below it, releasing and taking the GIL back costs more than it frees.
const DETACH_BYTES: usize = 16 * 1024;

/// `work()`, which reads `bytes` bytes of input, without the GIL when they are at least
/// [`DETACH_BYTES`].
fn sized<T: Send>(py: Python<'_>, bytes: usize, work: impl FnOnce() -> T + Send) -> T {
    if bytes >= DETACH_BYTES {
        py.detach(work)
    } else {
        work()
    }
}

/// Parse a From field body (the text after ``From:``), folded or not.
#[pyfunction]
#[pyo3(signature = (value, *, utf8 = true, groups = false))]
fn parse<'py>(
    py: Python<'py>,
    value: &Bound<'py, PyAny>,
    utf8: bool,
    groups: bool,
) -> PyResult<Bound<'py, FromHeader>> {
    let value = held(value.clone())?;
    let profile = Profile { utf8, groups };
    let mut spare = None;
    let input = bytes_of(&value, &mut spare)?;
    guarded(py, "parse", Some(input.len()), || {
        let assessment = sized(py, input.len(), || {
            panic_on_trigger(input);
            fromguard::assess(input, profile)
        });
        FromHeader::new(value.clone().unbind(), profile, assessment).into_python(py)
    })
}

/// ``parse`` over many values; the parser runs over the batch without the GIL.
#[pyfunction]
#[pyo3(signature = (values, *, utf8 = true, groups = false))]
fn parse_many<'py>(
    py: Python<'py>,
    values: &Bound<'py, PyAny>,
    utf8: bool,
    groups: bool,
) -> PyResult<Bound<'py, PyList>> {
    let profile = Profile { utf8, groups };
    let length = values.len().ok();
    guarded(py, "parse_many", length, || {
        // Collected first and made into a list at once: appending to the list would grow
        // it by an eighth at a time, some sixty reallocations over 90,000 values.
        let mut results = Vec::with_capacity(length.unwrap_or(0));
        judge_batch(
            py,
            "parse_many",
            values,
            |input| {
                panic_on_trigger(input);
                fromguard::assess(input, profile)
            },
            |value, assessment| {
                let header = FromHeader::new(value.clone().unbind(), profile, assessment);
                results.push(header.into_python(py)?);
                Ok(())
            },
        )?;
        PyList::new(py, results)
    })
}

/// The verdict of each value, one byte each (the ``Verdict`` value), in order. Nothing is
/// built per value; the batch runs without the GIL.
#[pyfunction]
#[pyo3(signature = (values, *, utf8 = true, groups = false))]
fn verdicts<'py>(
    py: Python<'py>,
    values: &Bound<'py, PyAny>,
    utf8: bool,
    groups: bool,
) -> PyResult<Bound<'py, PyBytes>> {
    let profile = Profile { utf8, groups };
    let judge = |input: &[u8]| {
        panic_on_trigger(input);
        fromguard::assess(input, profile).verdict as u8
    };
    let length = values.len().ok();
    guarded(py, "verdicts", length, || {
        if let Some(length) = length {
            // Written in place into the bytes object: no second copy of the output.
            let mut written = 0;
            return PyBytes::new_with(py, length, |output| {
                judge_batch(py, "verdicts", values, judge, |_, verdict| {
                    let slot = output.get_mut(written).ok_or_else(changed_size)?;
                    *slot = verdict;
                    written += 1;
                    Ok(())
                })?;
                if written == length {
                    Ok(())
                } else {
                    Err(changed_size())
                }
            });
        }
        let mut output = Vec::new();
        judge_batch(py, "verdicts", values, judge, |_, verdict| {
            output.push(verdict);
            Ok(())
        })?;
        Ok(PyBytes::new(py, &output))
    })
}

/// The error of a batch whose values were not as many as its length said.
fn changed_size() -> PyErr {
    PyRuntimeError::new_err("the batch changed size while it was read")
}

/// The parse of one From field body: the value, its verdict and syntax; the mailboxes,
/// findings and shadows are built when first read.
#[pyclass(frozen, module = "fromguard._core")]
struct FromHeader {
    /// The value given, as [`held`] keeps it (an exact bytes or str).
    value: Py<PyAny>,
    profile: Profile,
    verdict: Verdict,
    syntax: Syntax,
    details: PyOnceLock<Details>,
}

/// The parts of a result that are Python objects, built together on first read.
struct Details {
    mailboxes: Py<PyTuple>,
    findings: Py<PyTuple>,
    /// Made into a tuple when read (rarely: a policy reads it, `parse` callers seldom).
    codes: CodeSet,
    shadows: Py<PyTuple>,
    address: Option<Py<PyString>>,
}

impl FromHeader {
    fn new(value: Py<PyAny>, profile: Profile, assessment: fromguard::Assessment) -> Self {
        FromHeader {
            value,
            profile,
            verdict: assessment.verdict,
            syntax: assessment.syntax,
            details: PyOnceLock::new(),
        }
    }

    /// The Python object, kept out of the cyclic garbage collector (see [`ffi::untrack`]).
    fn into_python(self, py: Python<'_>) -> PyResult<Bound<'_, FromHeader>> {
        let object = Bound::new(py, self)?;
        ffi::untrack(object.as_any());
        Ok(object)
    }

    /// A result whose parse is at hand already (a field of a checked message).
    fn parsed(py: Python<'_>, value: Py<PyAny>, parsed: &Parsed<'_>) -> PyResult<Self> {
        let assessment = fromguard::Assessment {
            verdict: parsed.verdict,
            syntax: parsed.syntax,
        };
        let header = FromHeader::new(value, parsed.profile, assessment);
        let details = Details::new(py, parsed)?;
        // A fresh lock: it cannot be set already.
        let _ = header.details.set(py, details);
        Ok(header)
    }

    fn details(&self, py: Python<'_>) -> PyResult<&Details> {
        self.details.get_or_try_init(py, || {
            let mut spare = None;
            let input = bytes_of(self.value.bind(py), &mut spare)?;
            guarded(py, "FromHeader details", Some(input.len()), || {
                let parsed = sized(py, input.len(), || {
                    panic_on_trigger(input);
                    fromguard::parse(input, self.profile)
                });
                Details::new(py, &parsed)
            })
        })
    }
}

impl Details {
    fn new(py: Python<'_>, parsed: &Parsed<'_>) -> PyResult<Self> {
        let side = python_side(py)?;
        let mailboxes = parsed
            .mailboxes
            .iter()
            .map(|mailbox| mailbox_tuple(py, side, mailbox))
            .collect::<PyResult<Vec<_>>>()?;
        let shadows = parsed
            .shadows
            .iter()
            .map(|shadow| {
                side.make(
                    py,
                    &side.shadow,
                    (
                        shadow.address.as_ref(),
                        source_name(py, side, shadow.source),
                        shadow.start,
                        shadow.end,
                    ),
                )
            })
            .collect::<PyResult<Vec<_>>>()?;
        Ok(Details {
            mailboxes: PyTuple::new(py, mailboxes)?.unbind(),
            findings: findings_tuple(py, &parsed.findings)?,
            codes: parsed.codes,
            shadows: PyTuple::new(py, shadows)?.unbind(),
            address: parsed
                .address()
                .map(|address| PyString::new(py, address).unbind()),
        })
    }
}

/// Findings as a tuple of ``fromguard.Finding``.
fn findings_tuple(py: Python<'_>, findings: &[Finding]) -> PyResult<Py<PyTuple>> {
    let side = python_side(py)?;
    let items = findings
        .iter()
        .map(|finding| {
            let code = finding.code;
            let severity = member(py, &side.severities, code.severity() as u8, "Severity")?;
            side.make(
                py,
                &side.finding,
                (
                    side.codes[code.index()].bind(py),
                    severity,
                    finding.start,
                    finding.end,
                    side.messages[code.index()].bind(py),
                ),
            )
        })
        .collect::<PyResult<Vec<_>>>()?;
    Ok(PyTuple::new(py, items)?.unbind())
}

/// Codes as a tuple of their (interned) names, in catalogue order.
fn codes_tuple(py: Python<'_>, codes: CodeSet) -> PyResult<Py<PyTuple>> {
    let side = python_side(py)?;
    let names: Vec<_> = codes
        .iter()
        .map(|code| side.codes[code.index()].bind(py))
        .collect();
    Ok(PyTuple::new(py, names)?.unbind())
}

/// A message argument: bytes only, since a message is not text.
fn bytes_only<'a, 'py>(raw: &'a Bound<'py, PyAny>) -> PyResult<&'a Bound<'py, PyBytes>> {
    raw.cast::<PyBytes>().map_err(|_| {
        let name = raw.get_type().name();
        let name = name.map_or_else(|_| "?".to_owned(), |n| n.to_string());
        PyTypeError::new_err(format!("expected bytes, not {name}"))
    })
}

/// Check a whole message's header block (bytes only: a message is not text); with
/// `rules`, match them on the check (the block split and its From fields parsed once).
#[pyfunction]
#[pyo3(signature = (raw, *, utf8 = true, groups = false, rules = None))]
fn check_message(
    py: Python<'_>,
    raw: &Bound<'_, PyAny>,
    utf8: bool,
    groups: bool,
    rules: Option<&Bound<'_, RuleSet>>,
) -> PyResult<Py<PyAny>> {
    let raw = bytes_only(raw)?;
    let input = raw.as_bytes();
    guarded(py, "check_message", Some(input.len()), || {
        let rules = rules.map(Bound::get);
        let (checked, hits) = core_check(py, input, Profile { utf8, groups }, rules);
        message_check(py, input, &checked, hits, rules)
    })
}

/// `check_message` for a policy (`Policy._check`): the check with the rules matched on
/// it, and what a decision reads of it, the message's findings (`all_findings`) and
/// codes in the order a policy matches them (`policy_codes`).
#[pyfunction]
#[pyo3(name = "_policy_check", signature = (raw, *, rules = None))]
fn policy_check(
    py: Python<'_>,
    raw: &Bound<'_, PyAny>,
    rules: Option<&Bound<'_, RuleSet>>,
) -> PyResult<(Py<PyAny>, Py<PyTuple>, Py<PyTuple>)> {
    let raw = bytes_only(raw)?;
    let input = raw.as_bytes();
    guarded(py, "check_message", Some(input.len()), || {
        let rules = rules.map(Bound::get);
        let (checked, hits) = core_check(py, input, Profile::default(), rules);
        let findings = checked.all_findings();
        let side = python_side(py)?;
        let codes = checked
            .policy_codes(&findings)
            .into_iter()
            .map(|code| side.codes[code.index()].bind(py));
        Ok((
            message_check(py, input, &checked, hits, rules)?,
            findings_tuple(py, &findings)?,
            PyTuple::new(py, codes)?.unbind(),
        ))
    })
}

/// The core's check of a message and the rules matched on it, without the GIL.
fn core_check<'i>(
    py: Python<'_>,
    input: &'i [u8],
    profile: Profile,
    rules: Option<&RuleSet>,
) -> (fromguard::MessageCheck<'i>, Vec<usize>) {
    let rule_set = rules.map(|rules| &rules.rules);
    py.detach(|| {
        panic_on_trigger(input);
        let checked = fromguard::check_message(input, profile);
        let hits = rule_set.map_or_else(Vec::new, |rules| rules.matches_check(input, &checked));
        (checked, hits)
    })
}

/// A core check and its rule hits as a `fromguard.MessageCheck`.
fn message_check(
    py: Python<'_>,
    input: &[u8],
    checked: &fromguard::MessageCheck<'_>,
    hits: Vec<usize>,
    rules: Option<&RuleSet>,
) -> PyResult<Py<PyAny>> {
    let side = python_side(py)?;
    let fields = checked
        .fields
        .iter()
        .map(|field| {
            let value = input.get(field.value_start..field.end).unwrap_or_default();
            let value = PyBytes::new(py, value).into_any().unbind();
            let header = FromHeader::parsed(py, value, &field.result)?.into_python(py)?;
            side.header_field.bind(py).call1((
                field.name.as_ref(),
                field.start,
                field.end,
                field.value_start,
                header,
            ))
        })
        .collect::<PyResult<Vec<_>>>()?;
    let matched = match rules {
        Some(rules) => rules.names_of(py, hits)?,
        None => PyTuple::empty(py).unbind(),
    };
    let verdict = member(py, &side.verdicts, checked.verdict as u8, "Verdict")?;
    let result = side.message_check.bind(py).call1((
        verdict,
        PyTuple::new(py, fields)?,
        findings_tuple(py, &checked.findings)?,
        codes_tuple(py, checked.codes)?,
        matched,
    ))?;
    Ok(result.unbind())
}

fn mailbox_tuple<'py>(
    py: Python<'py>,
    side: &PythonSide,
    mailbox: &Mailbox<'_>,
) -> PyResult<Bound<'py, PyAny>> {
    let strings = |items: &[Cow<'_, str>]| PyTuple::new(py, items.iter().map(AsRef::<str>::as_ref));
    side.make(
        py,
        &side.mailbox,
        (
            mailbox.display_name.as_deref(),
            mailbox.local_part.as_ref(),
            mailbox.domain.as_ref(),
            mailbox.addr_spec.as_ref(),
            strings(&mailbox.route)?,
            strings(&mailbox.comments)?,
            mailbox.group.as_deref(),
            mailbox.span,
            mailbox.display_name_span,
            mailbox.local_part_span,
            mailbox.domain_span,
        ),
    )
}

#[pymethods]
impl FromHeader {
    /// The value as parsed: the bytes given, or the UTF-8 encoding of the str given.
    #[getter]
    fn value<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        to_bytes(self.value.bind(py))
    }

    /// Whether the ``utf8`` profile option (RFC 6532) was on.
    #[getter]
    fn utf8(&self) -> bool {
        self.profile.utf8
    }

    /// Whether the ``groups`` profile option (RFC 6854) was on.
    #[getter]
    fn groups(&self) -> bool {
        self.profile.groups
    }

    /// The worst severity present, as a ``fromguard.Verdict``.
    #[getter]
    fn verdict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let side = python_side(py)?;
        member(py, &side.verdicts, self.verdict as u8, "Verdict")
    }

    /// How the value stands against the grammar, as a ``fromguard.Syntax``.
    #[getter]
    fn syntax(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let side = python_side(py)?;
        member(py, &side.syntaxes, self.syntax as u8, "Syntax")
    }

    /// The mailboxes, as ``fromguard.Mailbox`` tuples.
    #[getter]
    fn mailboxes(&self, py: Python<'_>) -> PyResult<Py<PyTuple>> {
        Ok(self.details(py)?.mailboxes.clone_ref(py))
    }

    /// The single author's addr-spec, or None when there is not exactly one mailbox.
    #[getter]
    fn address(&self, py: Python<'_>) -> PyResult<Option<Py<PyString>>> {
        let details = self.details(py)?;
        Ok(details
            .address
            .as_ref()
            .map(|address| address.clone_ref(py)))
    }

    /// The findings, as ``fromguard.Finding`` tuples sorted by span.
    #[getter]
    fn findings(&self, py: Python<'_>) -> PyResult<Py<PyTuple>> {
        Ok(self.details(py)?.findings.clone_ref(py))
    }

    /// Every code reported, those past the findings limit too, in catalogue order.
    #[getter]
    fn codes(&self, py: Python<'_>) -> PyResult<Py<PyTuple>> {
        codes_tuple(py, self.details(py)?.codes)
    }

    /// The shadow addresses, as ``fromguard.Shadow`` tuples sorted by span.
    #[getter]
    fn shadows(&self, py: Python<'_>) -> PyResult<Py<PyTuple>> {
        Ok(self.details(py)?.shadows.clone_ref(py))
    }

    /// The value with a caret line under each finding, then one under each shadow.
    fn explain(slf: &Bound<'_, Self>) -> PyResult<String> {
        let py = slf.py();
        python_side(py)?.explain.bind(py).call1((slf,))?.extract()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let address = match &self.details(py)?.address {
            Some(address) => address.bind(py).repr()?.to_string(),
            None => "None".to_owned(),
        };
        Ok(format!(
            "<FromHeader verdict={} syntax={} address={address}>",
            self.verdict.as_str().to_ascii_uppercase(),
            self.syntax.as_str().to_ascii_uppercase(),
        ))
    }
}

/// Named regular expressions over header fields and From mailbox parts, compiled once
/// (the `regex` crate: linear time, size limits); `match` runs without the GIL.
#[pyclass(frozen, module = "fromguard._core")]
struct RuleSet {
    rules: fromguard::RuleSet,
    names: Py<PyTuple>,
}

impl RuleSet {
    /// The names of the rules at these indices.
    fn names_of(&self, py: Python<'_>, hits: Vec<usize>) -> PyResult<Py<PyTuple>> {
        let names = self.names.bind(py);
        let items = hits
            .into_iter()
            .map(|i| names.get_item(i))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(PyTuple::new(py, items)?.unbind())
    }
}

#[pymethods]
impl RuleSet {
    /// Raises ``fromguard.RuleError`` for a rule that does not compile.
    #[new]
    fn new(py: Python<'_>, rules: Vec<(String, String, String)>) -> PyResult<Self> {
        guarded(py, "RuleSet", Some(rules.len()), || {
            let compiled = py.detach(|| {
                for (_, _, pattern) in &rules {
                    panic_on_trigger(pattern.as_bytes());
                }
                fromguard::RuleSet::new(&rules)
            });
            let compiled = compiled.map_err(|error| errors::rule_error(py, error))?;
            let names = PyTuple::new(py, compiled.names())?.unbind();
            Ok(RuleSet {
                rules: compiled,
                names,
            })
        })
    }

    /// The rules' names, in the order given.
    #[getter]
    fn names(&self, py: Python<'_>) -> Py<PyTuple> {
        self.names.clone_ref(py)
    }

    /// The names of the rules that match the message `raw`, in the rules' order.
    #[pyo3(name = "match")]
    fn matches(&self, py: Python<'_>, raw: &Bound<'_, PyAny>) -> PyResult<Py<PyTuple>> {
        let raw = bytes_only(raw)?;
        let input = raw.as_bytes();
        guarded(py, "RuleSet.match", Some(input.len()), || {
            let hits = py.detach(|| {
                panic_on_trigger(input);
                self.rules.matches(input)
            });
            self.names_of(py, hits)
        })
    }

    fn __len__(&self) -> usize {
        self.rules.names().len()
    }

    fn __repr__(&self) -> String {
        format!("<RuleSet {}>", self.rules.names().join(", "))
    }
}

/// The compiled core of fromguard; use the ``fromguard`` package instead.
#[pymodule]
fn _core(module: &Bound<'_, PyModule>) -> PyResult<()> {
    // The crate's version is the package's (maturin takes it from Cargo.toml).
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    module.add_function(wrap_pyfunction!(parse, module)?)?;
    module.add_function(wrap_pyfunction!(parse_many, module)?)?;
    module.add_function(wrap_pyfunction!(verdicts, module)?)?;
    module.add_function(wrap_pyfunction!(check_message, module)?)?;
    // Private (for tests): set, not added, since `add_function` lists a name in `__all__`.
    let inject_panic = wrap_pyfunction!(inject::inject_panic, module)?;
    module.setattr(intern!(module.py(), "_inject_panic"), inject_panic)?;
    // Private: fromguard._batch's way in (verdicts and parse_many over an Arrow array).
    let verdicts_arrow = wrap_pyfunction!(arrow::verdicts_arrow, module)?;
    module.setattr(intern!(module.py(), "_verdicts_arrow"), verdicts_arrow)?;
    let parse_many_arrow = wrap_pyfunction!(arrow::parse_many_arrow, module)?;
    module.setattr(intern!(module.py(), "_parse_many_arrow"), parse_many_arrow)?;
    // Private: fromguard.policy's way in (a check and what a decision reads of it).
    let policy_check = wrap_pyfunction!(policy_check, module)?;
    module.setattr(intern!(module.py(), "_policy_check"), policy_check)?;
    // Private: fromguard._mime's way in (the MIME rewrite).
    let rewrite = wrap_pyfunction!(rewrite::rewrite, module)?;
    module.setattr(intern!(module.py(), "_rewrite"), rewrite)?;
    let body_start = wrap_pyfunction!(rewrite::body_start, module)?;
    module.setattr(intern!(module.py(), "_body_start"), body_start)?;
    module.add_class::<FromHeader>()?;
    module.add_class::<RuleSet>()?;
    Ok(())
}
