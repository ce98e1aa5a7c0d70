//! Generates the `Code` enum from the finding catalogue, `data/findings.tsv` (in this crate).
//!
//! The catalogue is the one list of finding codes: the Python package reads a byte-for-byte
//! copy of it at import (`python/fromguard/data/findings.tsv`, made by `.ci/sync_data.py`),
//! so the core and the reference cannot disagree on a code's severity, syntax or message.
//! A malformed row fails the build with the line number and what is wrong.

use std::collections::HashSet;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process;

const CATALOGUE: &str = "data/findings.tsv";
const HEADER: [&str; 4] = ["code", "severity", "syntax", "description"];
const SEVERITIES: [(&str, &str); 4] = [
    ("info", "Info"),
    ("legacy", "Legacy"),
    ("deceptive", "Deceptive"),
    ("invalid", "Invalid"),
];
const SYNTAXES: [(&str, &str); 3] = [
    ("strict", "Strict"),
    ("obsolete", "Obsolete"),
    ("invalid", "Invalid"),
];
/// Leading digits are spelled out, because an identifier cannot start with one:
/// `8bit-text` becomes `EightBitText`.
const DIGITS: [&str; 10] = [
    "Zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine",
];

struct Row<'a> {
    code: &'a str,
    variant: String,
    severity: &'static str,
    syntax: &'static str,
    description: &'a str,
}

fn main() {
    let manifest_dir = env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let path = Path::new(&manifest_dir).join(CATALOGUE);
    println!("cargo:rerun-if-changed={}", path.display());

    let text = fs::read_to_string(&path).unwrap_or_else(|error| {
        fail(&format!("cannot read {}: {error}", path.display()));
    });
    let rows = parse_catalogue(&text).unwrap_or_else(|error| {
        fail(&format!("{}:{error}", path.display()));
    });
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("code.rs");
    if let Err(error) = fs::write(&out, generate(&rows)) {
        fail(&format!("cannot write {}: {error}", out.display()));
    }
}

fn fail(message: &str) -> ! {
    eprintln!("error: finding catalogue: {message}");
    process::exit(1);
}

/// The rows of the catalogue; an error names the line (1-based) and the fault.
fn parse_catalogue(text: &str) -> Result<Vec<Row<'_>>, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'));
    let (number, header) = lines.next().ok_or(" the file holds no header")?;
    if header.split('\t').ne(HEADER) {
        return Err(format!(
            "{number}: the header must be {:?}, not {header:?}",
            HEADER.join("\t")
        ));
    }
    let mut rows = Vec::new();
    let mut codes = HashSet::new();
    let mut variants = HashSet::new();
    for (number, line) in lines {
        let row = parse_row(line).map_err(|error| format!("{number}: {error}: {line:?}"))?;
        if !codes.insert(row.code) {
            return Err(format!("{number}: duplicate code {:?}", row.code));
        }
        if !variants.insert(row.variant.clone()) {
            return Err(format!(
                "{number}: code {:?} gives the same Rust name as an earlier one ({})",
                row.code, row.variant
            ));
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(" the catalogue holds no code".to_owned());
    }
    if rows.len() > usize::from(u8::MAX) + 1 {
        return Err(" more codes than `Code` (repr(u8)) can hold".to_owned());
    }
    Ok(rows)
}

fn parse_row(line: &str) -> Result<Row<'_>, String> {
    let fields: Vec<&str> = line.split('\t').collect();
    let [code, severity, syntax, description] = fields[..] else {
        return Err(format!("{} tab-separated fields, not 4", fields.len()));
    };
    let kebab = !code.is_empty()
        && code.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    if !kebab {
        return Err(format!(
            "code {code:?} is not kebab-case ([a-z0-9]+ joined by \"-\")"
        ));
    }
    let lookup = |table: &[(&str, &'static str)], value: &str, what: &str| {
        table
            .iter()
            .find(|(name, _)| *name == value)
            .map(|&(_, variant)| variant)
            .ok_or_else(|| {
                let names: Vec<&str> = table.iter().map(|(name, _)| *name).collect();
                format!("{what} {value:?} is not one of {}", names.join(", "))
            })
    };
    let severity = lookup(&SEVERITIES, severity, "severity")?;
    let syntax = lookup(&SYNTAXES, syntax, "syntax")?;
    if description.trim().is_empty() || description.trim() != description {
        return Err("the description is empty or has white space around it".to_owned());
    }
    Ok(Row {
        code,
        variant: camel_case(code),
        severity,
        syntax,
        description,
    })
}

/// `obs-phrase` -> `ObsPhrase`, `8bit-text` -> `EightBitText`.
fn camel_case(code: &str) -> String {
    let mut name = String::new();
    for part in code.split('-') {
        let mut rest = part;
        if let Some(digit) = rest.bytes().next().filter(u8::is_ascii_digit) {
            name.push_str(DIGITS[usize::from(digit - b'0')]);
            rest = &rest[1..];
        }
        let mut chars = rest.chars();
        if let Some(first) = chars.next() {
            name.extend(first.to_uppercase());
            name.push_str(chars.as_str());
        }
    }
    name
}

fn generate(rows: &[Row<'_>]) -> String {
    let mut out = String::new();
    let w = &mut out;
    // `writeln!` into a String cannot fail.
    macro_rules! line {
        ($($arg:tt)*) => { writeln!(w, $($arg)*).expect("writing to a String") };
    }
    line!("// Generated by build.rs from rust/core/data/findings.tsv: do not edit.");
    line!();
    line!("/// A finding code: one per row of the catalogue, in catalogue order.");
    line!("///");
    line!("/// Codes are stable (never renamed or reused); new ones may be added, hence");
    line!("/// `non_exhaustive`. The order is the catalogue's: the last key when sorting");
    line!("/// findings that share a span.");
    line!("#[non_exhaustive]");
    line!("#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]");
    line!("#[repr(u8)]");
    line!("pub enum Code {{");
    for row in rows {
        line!(
            "    #[doc = {:?}]",
            format!("`{}`: {}", row.code, row.description)
        );
        line!("    {},", row.variant);
    }
    line!("}}");
    line!();
    line!("/// `(code, severity, syntax, description)` by `Code::index`.");
    line!(
        "const CATALOGUE: [(&str, Severity, Syntax, &str); {}] = [",
        rows.len()
    );
    for row in rows {
        line!(
            "    ({:?}, Severity::{}, Syntax::{}, {:?}),",
            row.code,
            row.severity,
            row.syntax,
            row.description
        );
    }
    line!("];");
    line!();
    line!("impl Code {{");
    line!("    /// Every code, in catalogue order.");
    line!("    pub const ALL: &[Code] = &[");
    for row in rows {
        line!("        Code::{},", row.variant);
    }
    line!("    ];");
    line!("}}");
    out
}
