//! The findings sink: every finding a parse reports goes through [`Findings::report`].
//!
//! The sink owns what reporting decides: the worst severity and syntax so far (the
//! verdict), the set of every code reported, the cap on the findings kept
//! ([`MAX_FINDINGS`], with one `too-many-findings` where the ones not kept begin) and the
//! early stop of an assessment. The cap bounds a result's size and nothing else: the
//! verdict and the code set count every finding, and no analysis reads the capped list
//! back (it reads the grammar's output, `tree.rs`), so padding a value with harmless
//! findings can hide nothing from a decision.

use crate::code::{Code, CodeSet, Severity, Syntax, Verdict};
use crate::limits::MAX_FINDINGS;
use crate::model::{Assessment, Finding};

/// What a parse is for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Goal {
    /// The whole result: every finding, mailbox and shadow.
    Everything,
    /// The verdict and syntax alone: the parse stops once they are as bad as they go
    /// (`invalid` and `invalid`), which nothing after can change. Garbage, the bulk of a
    /// flood, is judged from its first fatal error rather than read to its end.
    Assessment,
}

pub(crate) struct Findings {
    /// In the order reported until [`Findings::into_sorted`].
    list: Vec<Finding>,
    truncated: bool,
    worst_severity: Severity,
    worst_syntax: Syntax,
    codes: CodeSet,
    goal: Goal,
}

impl Findings {
    pub(crate) fn new(goal: Goal) -> Self {
        Findings {
            list: Vec::new(),
            truncated: false,
            worst_severity: Severity::Info,
            worst_syntax: Syntax::Strict,
            codes: CodeSet::default(),
            goal,
        }
    }

    /// Record a finding. Past MAX_FINDINGS, findings still count in the verdict, the
    /// syntax and the code set but are not kept; one `too-many-findings` marks where that
    /// began.
    pub(crate) fn report(&mut self, code: Code, start: usize, end: usize) {
        self.count(code);
        if self.list.len() < MAX_FINDINGS {
            self.list.push(Finding::new(code, start, end));
        } else if !self.truncated {
            self.truncated = true;
            self.count(Code::TooManyFindings);
            self.list
                .push(Finding::new(Code::TooManyFindings, start, end));
        }
    }

    fn count(&mut self, code: Code) {
        self.worst_severity = self.worst_severity.max(code.severity());
        self.worst_syntax = self.worst_syntax.max(code.syntax());
        self.codes.insert(code);
    }

    /// The verdict and syntax of what has been reported so far.
    pub(crate) fn assessment(&self) -> Assessment {
        Assessment {
            verdict: Verdict::from_severity(self.worst_severity),
            syntax: self.worst_syntax,
        }
    }

    /// Whether the goal is the assessment and it can no longer change: the verdict and
    /// the syntax are as bad as they go.
    pub(crate) fn settled(&self) -> bool {
        self.goal == Goal::Assessment
            && self.worst_severity == Severity::Invalid
            && self.worst_syntax == Syntax::Invalid
    }

    /// The findings kept, sorted by (start, end, catalogue index), stable; and every
    /// code reported.
    pub(crate) fn into_sorted(self) -> (Vec<Finding>, CodeSet) {
        let mut list = self.list;
        list.sort_by_key(|f| (f.start, f.end, f.code.index()));
        (list, self.codes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_keeps_the_list_short_and_counts_everything() {
        let mut findings = Findings::new(Goal::Everything);
        for i in 0..MAX_FINDINGS + 5 {
            findings.report(Code::Comment, i, i + 1);
        }
        findings.report(Code::Nul, 9000, 9001);
        assert!(!findings.settled());
        let assessment = findings.assessment();
        assert_eq!(assessment.verdict, Verdict::Invalid);
        let (list, codes) = findings.into_sorted();
        assert_eq!(list.len(), MAX_FINDINGS + 1);
        assert!(!list.iter().any(|f| f.code == Code::Nul));
        assert_eq!(
            codes.iter().collect::<Vec<_>>(),
            [Code::Comment, Code::Nul, Code::TooManyFindings]
                .into_iter()
                .collect::<CodeSet>()
                .iter()
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn an_assessment_settles_when_nothing_can_change_it() {
        let mut findings = Findings::new(Goal::Assessment);
        findings.report(Code::ObsPhrase, 0, 1);
        findings.report(Code::AddressInComment, 0, 1);
        assert!(!findings.settled());
        findings.report(Code::NoMailbox, 0, 1);
        assert!(findings.settled());
        let mut everything = Findings::new(Goal::Everything);
        everything.report(Code::NoMailbox, 0, 1);
        assert!(!everything.settled());
    }
}
