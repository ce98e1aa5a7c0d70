//! The entry points: [`parse`] and [`assess`], which choose an engine for each value,
//! [`parse_full`], the full grammar alone, and [`parse_fast`], the fast path alone.
//!
//! The engines, as the `regex` crate's meta engine chooses among its own: the fast path
//! (`fast/`) answers for the shapes most values take or declines (`None`); the full
//! grammar (`parser.rs`, then the deception analysis of `deception.rs`) can always
//! answer. Both give the same result on every value they both take; tests and the fuzz
//! targets compare them.

use crate::deception;
use crate::fast;
use crate::findings::{Findings, Goal};
use crate::model::{Assessment, Parsed, Profile};
use crate::parser;

/// Parse a From field body (the text after `From:`), folded or not.
pub fn parse(input: &[u8], profile: Profile) -> Parsed<'_> {
    parse_fast(input, profile).unwrap_or_else(|| parse_full(input, profile))
}

/// [`parse`] by the fast path alone: its result where the fast path recognises the
/// value's shape, else `None` (and [`parse`] is [`parse_full`]). For fuzzing the fast
/// path against the full grammar without running the grammar twice on the values the
/// fast path declines.
#[doc(hidden)]
pub fn parse_fast(input: &[u8], profile: Profile) -> Option<Parsed<'_>> {
    fast::scan(input, profile).map(|fast| fast.parsed(input, profile))
}

/// [`parse`] by the full grammar alone, without the fast path for the common shapes;
/// the same result. For differential tests and fuzzing of the fast path.
#[doc(hidden)]
pub fn parse_full(input: &[u8], profile: Profile) -> Parsed<'_> {
    let mut findings = Findings::new(Goal::Everything);
    let tree = parser::read(input, profile, &mut findings);
    let shadows = deception::analyse(&tree, &mut findings);
    let Assessment { verdict, syntax } = findings.assessment();
    let (findings, codes) = findings.into_sorted();
    Parsed {
        verdict,
        syntax,
        profile,
        findings,
        codes,
        mailboxes: tree.mailboxes,
        shadows,
    }
}

/// The verdict and syntax of a value: those of [`parse`], without building the rest
/// where the fast path recognises the value (no allocation then).
pub fn assess(input: &[u8], profile: Profile) -> Assessment {
    if let Some(assessment) = fast::assess_shape(input, profile)
        .or_else(|| fast::assess_encoded_name(input))
        .or_else(|| fast::assess_quoted_name(input))
    {
        return assessment;
    }
    let mut findings = Findings::new(Goal::Assessment);
    let tree = parser::read(input, profile, &mut findings);
    if !findings.settled() {
        deception::analyse(&tree, &mut findings);
    }
    findings.assessment()
}
