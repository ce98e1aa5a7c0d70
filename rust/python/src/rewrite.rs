//! `_core.rewrite`: the core's MIME rewrite (`fromguard::mime`), run without the GIL; the
//! charsets of text parts are Python's codecs (the reference's), taken back only for a
//! charset that the core's `Builtin` does not cover, and looked up once per call.

use std::collections::HashMap;

use fromguard::mime::{self, Builtin, CharsetInfo, RewriteError, Warning, WarningEncoder};
use pyo3::exceptions::{PyAssertionError, PyLookupError, PyUnicodeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use crate::errors::guarded;

/// A charset as the call found it: one of the core's, or a Python codec.
enum Charset {
    Builtin(Builtin),
    Codec(Py<PyAny>),
}

/// Python's codecs, each looked up once per call.
#[derive(Default)]
struct PythonCodecs {
    charsets: HashMap<String, Option<Charset>>,
}

const ASCII_SAMPLE: &str = "a\n<>=+-~";

impl PythonCodecs {
    /// The Python codec of a charset the core does not cover (`codecs.lookup`).
    fn codec(py: Python<'_>, charset: &str) -> PyResult<Option<Py<PyAny>>> {
        match py.import("codecs")?.call_method1("lookup", (charset,)) {
            Ok(codec) => Ok(Some(codec.unbind())),
            Err(error)
                if error.is_instance_of::<PyLookupError>(py)
                    || error.is_instance_of::<PyValueError>(py) =>
            {
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// Whether ASCII text keeps its bytes in the codec; any failure says no (a codec
    /// that does not turn text into bytes).
    fn ascii_compatible(py: Python<'_>, codec: &Py<PyAny>) -> bool {
        codec
            .bind(py)
            .call_method1("encode", (ASCII_SAMPLE,))
            .and_then(|encoded| encoded.get_item(0))
            .is_ok_and(|encoded| {
                encoded
                    .cast::<PyBytes>()
                    .is_ok_and(|bytes| bytes.as_bytes() == ASCII_SAMPLE.as_bytes())
            })
    }

    fn charset(&self, charset: &str) -> Option<&Charset> {
        self.charsets.get(charset).and_then(Option::as_ref)
    }
}

/// `codec.encode(text, errors)[0]` as bytes.
fn encoded(py: Python<'_>, codec: &Py<PyAny>, text: &str, errors: &str) -> PyResult<Vec<u8>> {
    let result = codec
        .bind(py)
        .call_method1("encode", (text, errors))?
        .get_item(0)?;
    Ok(result.cast::<PyBytes>()?.as_bytes().to_vec())
}

impl WarningEncoder for PythonCodecs {
    type Error = PyErr;

    fn lookup(&mut self, charset: &str) -> PyResult<Option<CharsetInfo>> {
        if !self.charsets.contains_key(charset) {
            let found = match Builtin::from_name(charset) {
                Some(builtin) => Some(Charset::Builtin(builtin)),
                None => Python::attach(|py| Self::codec(py, charset))?.map(Charset::Codec),
            };
            self.charsets.insert(charset.to_owned(), found);
        }
        Ok(match self.charset(charset) {
            None => None,
            Some(Charset::Builtin(builtin)) => Some(builtin.info()),
            Some(Charset::Codec(codec)) => Some(Python::attach(|py| -> PyResult<CharsetInfo> {
                let name: String = codec.bind(py).getattr("name")?.extract()?;
                Ok(CharsetInfo {
                    utf8: name == "utf-8",
                    ascii_compatible: Self::ascii_compatible(py, codec),
                })
            })?),
        })
    }

    fn encode(&mut self, charset: &str, text: &str) -> PyResult<Option<Vec<u8>>> {
        match self.charset(charset) {
            None => Ok(None),
            Some(Charset::Builtin(builtin)) => Ok(builtin.encode(text)),
            Some(Charset::Codec(codec)) => {
                Python::attach(|py| match encoded(py, codec, text, "strict") {
                    Ok(bytes) => Ok(Some(bytes)),
                    Err(error) if error.is_instance_of::<PyUnicodeError>(py) => Ok(None),
                    Err(error) => Err(error),
                })
            }
        }
    }

    fn encode_html(&mut self, charset: &str, text: &str) -> PyResult<Vec<u8>> {
        match self.charset(charset) {
            None => Ok(Builtin::Ascii.encode_html(text)),
            Some(Charset::Builtin(builtin)) => Ok(builtin.encode_html(text)),
            Some(Charset::Codec(codec)) => {
                Python::attach(|py| encoded(py, codec, text, "xmlcharrefreplace"))
            }
        }
    }
}

/// A new random boundary for a wrapping multipart/mixed: `fromguard._warning.new_boundary`,
/// the one both engines use (the GIL taken back for it).
fn new_boundary() -> PyResult<Vec<u8>> {
    Python::attach(|py| {
        let boundary = py
            .import("fromguard._warning")?
            .call_method0("new_boundary")?;
        Ok(boundary.cast::<PyBytes>()?.as_bytes().to_vec())
    })
}

/// Add header fields and, if given, the warning (text, ASCII form) to a raw message:
/// the new message (the same object when nothing changed), the notes, and how many
/// parts received the warning. `boundary`: that of a wrapping multipart/mixed (None: a
/// new random one, drawn only if the message is wrapped).
#[pyfunction]
#[pyo3(name = "_rewrite", signature = (raw, headers, warning, *, body_only, boundary))]
pub(crate) fn rewrite(
    py: Python<'_>,
    raw: &Bound<'_, PyBytes>,
    headers: Vec<(String, String)>,
    warning: Option<(String, String)>,
    body_only: bool,
    boundary: Option<&[u8]>,
) -> PyResult<(Py<PyAny>, Py<PyTuple>, usize)> {
    let input = raw.as_bytes();
    guarded(py, "rewrite", Some(input.len()), || {
        let fields: Vec<(&str, &str)> = headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        let warning = warning
            .as_ref()
            .map(|(text, ascii_text)| Warning { text, ascii_text });
        let result = py.detach(|| {
            let mut codecs = PythonCodecs::default();
            let mut boundary = || boundary.map_or_else(new_boundary, |given| Ok(given.to_vec()));
            mime::rewrite(
                input,
                &fields,
                warning,
                body_only,
                &mut boundary,
                &mut codecs,
            )
        });
        let rewritten = match result {
            Ok(rewritten) => rewritten,
            Err(RewriteError::Encoder(error)) => return Err(error),
            Err(RewriteError::NotAscii(what)) => {
                return Err(PyValueError::new_err(format!("{what} is not ASCII")));
            }
            Err(error) => return Err(PyAssertionError::new_err(format!("{error:?}"))),
        };
        let message = if rewritten.edits.is_empty() {
            raw.clone().into_any().unbind()
        } else {
            PyBytes::new_with(py, rewritten.len(input), |out| {
                rewritten.write(input, out);
                Ok(())
            })?
            .into_any()
            .unbind()
        };
        Ok((
            message,
            PyTuple::new(py, rewritten.notes)?.unbind(),
            rewritten.warned,
        ))
    })
}

/// Where the message's body starts: after the empty line that ends its header block
/// (its end when there is none).
#[pyfunction]
#[pyo3(name = "_body_start")]
pub(crate) fn body_start(raw: &Bound<'_, PyBytes>) -> usize {
    mime::body_start(raw.as_bytes())
}
