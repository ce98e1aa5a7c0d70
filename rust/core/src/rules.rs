//! User rules: named regular expressions over header fields and the parsed parts of each
//! From mailbox, compiled once with the `regex` crate.
//!
//! The `regex` crate guarantees time linear in the input (no backtracking), so a rule
//! written carelessly, or by someone hostile, cannot stall the gateway the way
//! `(a+)+$` stalls a backtracking engine. Patterns are untrusted too: each compiled
//! program is bounded by [`SIZE_LIMIT`] and the lazy DFA's cache by [`DFA_SIZE_LIMIT`].
//! All patterns of one target are compiled into one [`RegexSet`], so a field is read
//! once whatever the number of rules on it. Rules match on a message's check
//! ([`RuleSet::matches_check`]): its header block split and its From fields parsed once,
//! for the check and the rules alike.

use std::fmt;

use regex::bytes::{RegexBuilder, RegexSet, RegexSetBuilder};
use regex_automata::nfa::thompson::{self, WhichCaptures};
use regex_automata::util::syntax;

use crate::message::{MessageCheck, check_message};
use crate::model::Profile;

/// The most a compiled pattern (or the set of one target's patterns) may take, in bytes.
pub const SIZE_LIMIT: usize = 1 << 20;
/// The most the lazy DFA's cache of one target's set may take, in bytes.
pub const DFA_SIZE_LIMIT: usize = 2 << 20;
/// The most a pattern's nesting may go (the regex crate's default is 250).
pub const NEST_LIMIT: u32 = 100;

/// What a rule's pattern is matched against.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// `header:<name>`: the unfolded value of every field of that name (ASCII case
    /// ignored) in the header block, white space at either end trimmed.
    Field(String),
    /// `display-name`: the decoded display name of each From mailbox that has one.
    DisplayName,
    /// `local-part`, `domain`, `addr-spec`: that part of each From mailbox.
    LocalPart,
    Domain,
    AddrSpec,
}

impl Target {
    /// A target from its name: `display-name`, `local-part`, `domain`, `addr-spec` or
    /// `header:<field-name>` (a field name is 1*ftext, RFC 5322 §3.6.8).
    pub fn parse(text: &str) -> Option<Target> {
        match text {
            "display-name" => Some(Target::DisplayName),
            "local-part" => Some(Target::LocalPart),
            "domain" => Some(Target::Domain),
            "addr-spec" => Some(Target::AddrSpec),
            _ => {
                let name = text.strip_prefix("header:")?;
                let ftext = |b: u8| (33..=126).contains(&b) && b != b':';
                (!name.is_empty() && name.bytes().all(ftext))
                    .then(|| Target::Field(name.to_ascii_lowercase()))
            }
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Field(name) => write!(f, "header:{name}"),
            Target::DisplayName => f.write_str("display-name"),
            Target::LocalPart => f.write_str("local-part"),
            Target::Domain => f.write_str("domain"),
            Target::AddrSpec => f.write_str("addr-spec"),
        }
    }
}

/// A rule that cannot be compiled: its name and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    pub rule: String,
    pub reason: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rule '{}': {}", self.rule, self.reason)
    }
}

impl std::error::Error for RuleError {}

/// The regex crate's reason on one line: a syntax error's message is several lines
/// (the pattern, a caret, `error: ...`); keep the `error:` line.
fn reason(error: &regex::Error) -> String {
    let text = error.to_string();
    match text.lines().find_map(|line| line.strip_prefix("error: ")) {
        Some(message) => format!("regex syntax: {message}"),
        None => text.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

/// The heap size of a pattern's NFA compiled as a byte-oriented set compiles it: the size
/// the limit counts. Only for a pattern that compiled alone (so within the limit).
fn nfa_size(pattern: &str) -> usize {
    thompson::Compiler::new()
        .syntax(syntax::Config::new().utf8(false).nest_limit(NEST_LIMIT))
        .configure(
            thompson::Config::new()
                .utf8(false)
                .which_captures(WhichCaptures::None)
                .nfa_size_limit(Some(SIZE_LIMIT)),
        )
        .build(pattern)
        .map_or(SIZE_LIMIT, |nfa| nfa.memory_usage())
}

/// The patterns of one target: the set and, for each of its patterns, the rule index.
#[derive(Clone, Debug)]
struct Group {
    target: Target,
    set: RegexSet,
    rules: Vec<usize>,
}

/// Named rules compiled once; immutable and safe to share between threads.
#[derive(Clone, Debug)]
pub struct RuleSet {
    names: Vec<String>,
    groups: Vec<Group>,
}

impl RuleSet {
    /// Compile `(name, target, pattern)` rules. An unknown target or a pattern that does
    /// not compile (syntax, or over the size limits) is an error naming the rule.
    pub fn new<N, T, P>(rules: &[(N, T, P)]) -> Result<RuleSet, RuleError>
    where
        N: AsRef<str>,
        T: AsRef<str>,
        P: AsRef<str>,
    {
        let mut groups: Vec<(Target, Vec<String>, Vec<usize>)> = Vec::new();
        for (index, (name, target, pattern)) in rules.iter().enumerate() {
            let error = |reason: String| RuleError {
                rule: name.as_ref().to_owned(),
                reason,
            };
            let target = Target::parse(target.as_ref()).ok_or_else(|| {
                error(format!(
                    "unknown target {:?} (expected display-name, local-part, domain, \
                     addr-spec or header:<field-name>)",
                    target.as_ref()
                ))
            })?;
            // Alone first, so that the error names the rule at fault.
            RegexBuilder::new(pattern.as_ref())
                .size_limit(SIZE_LIMIT)
                .dfa_size_limit(DFA_SIZE_LIMIT)
                .nest_limit(NEST_LIMIT)
                .build()
                .map_err(|e| error(reason(&e)))?;
            match groups.iter_mut().find(|(t, _, _)| *t == target) {
                Some((_, patterns, indices)) => {
                    patterns.push(pattern.as_ref().to_owned());
                    indices.push(index);
                }
                None => groups.push((target, vec![pattern.as_ref().to_owned()], vec![index])),
            }
        }
        let groups = groups
            .into_iter()
            .map(|(target, patterns, indices)| {
                let set = RegexSetBuilder::new(&patterns)
                    .size_limit(SIZE_LIMIT)
                    .dfa_size_limit(DFA_SIZE_LIMIT)
                    .nest_limit(NEST_LIMIT)
                    .build()
                    .map_err(|e| RuleError {
                        // Every pattern fits alone: the rule named is the one whose pattern
                        // takes most of the set (the last named is no more at fault than
                        // the others, and a small one is no place to start).
                        rule: indices
                            .iter()
                            .filter_map(|&i| rules.get(i))
                            .max_by_key(|r| nfa_size(r.2.as_ref()))
                            .map_or_else(String::new, |r| r.0.as_ref().to_owned()),
                        reason: format!("the patterns of target {target} together: {}", reason(&e)),
                    })?;
                Ok(Group {
                    target,
                    set,
                    rules: indices,
                })
            })
            .collect::<Result<Vec<_>, RuleError>>()?;
        Ok(RuleSet {
            names: rules.iter().map(|r| r.0.as_ref().to_owned()).collect(),
            groups,
        })
    }

    /// The rules' names, in the order given.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The indices of the rules that match `raw` (a whole message or its header block),
    /// sorted, each once: [`RuleSet::matches_check`] on the check of `raw` under the
    /// default profile.
    pub fn matches(&self, raw: &[u8]) -> Vec<usize> {
        if self.groups.is_empty() {
            return Vec::new();
        }
        self.matches_check(raw, &check_message(raw, Profile::default()))
    }

    /// The indices of the rules that match the message `raw` whose check is `check`,
    /// sorted, each once. Header targets read every field of the block; mailbox targets
    /// read the mailboxes of the From fields the check parsed (under its profile).
    pub fn matches_check(&self, raw: &[u8], check: &MessageCheck<'_>) -> Vec<usize> {
        let mut hits = vec![false; self.names.len()];
        if self.groups.is_empty() {
            return Vec::new();
        }
        let mut mark = |group: &Group, text: &[u8]| {
            for i in group.set.matches(text).iter() {
                if let Some(&rule) = group.rules.get(i)
                    && let Some(hit) = hits.get_mut(rule)
                {
                    *hit = true;
                }
            }
        };
        for field in &check.header {
            let name = field.name(raw);
            for group in &self.groups {
                if let Target::Field(wanted) = &group.target
                    && name.eq_ignore_ascii_case(wanted.as_bytes())
                {
                    mark(group, &field.value(raw));
                }
            }
        }
        let from_fields = check
            .fields
            .iter()
            .filter(|field| field.name.eq_ignore_ascii_case("from"));
        for mailbox in from_fields.flat_map(|field| &field.result.mailboxes) {
            for group in &self.groups {
                let text: Option<&str> = match group.target {
                    Target::DisplayName => mailbox.display_name.as_deref(),
                    Target::LocalPart => Some(&mailbox.local_part),
                    Target::Domain => Some(&mailbox.domain),
                    Target::AddrSpec => Some(&mailbox.addr_spec),
                    Target::Field(_) => None,
                };
                if let Some(text) = text {
                    mark(group, text.as_bytes());
                }
            }
        }
        hits.iter()
            .enumerate()
            .filter_map(|(i, &hit)| hit.then_some(i))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::header_fields;

    fn set(rules: &[(&str, &str, &str)]) -> RuleSet {
        RuleSet::new(rules).unwrap()
    }

    const MESSAGE: &[u8] = b"From \"PayPal Support\" <support@evil.example> 1\r\n\
        Subject: Your account\r\n  is suspended\r\n\
        From: \"PayPal Support\" <support@evil.example>\r\n\
        X-Bin: caf\xe9\r\n\
        \r\n\
        Subject: not a header\r\n";

    #[test]
    fn each_target() {
        let rules = set(&[
            ("subject", "header:subject", "^Your account  is suspended$"),
            ("name", "display-name", "(?i)paypal"),
            ("local", "local-part", "^support$"),
            ("domain", "domain", r"\.example$"),
            ("addr", "addr-spec", "^support@evil"),
            ("body", "header:subject", "not a header"),
            ("missing", "header:x-none", ""),
        ]);
        assert_eq!(rules.matches(MESSAGE), vec![0, 1, 2, 3, 4]);
        assert_eq!(rules.names().len(), 7);
    }

    #[test]
    fn one_set_per_target() {
        let rules = set(&[
            ("a", "domain", "evil"),
            ("b", "header:subject", "account"),
            ("c", "domain", "example"),
            ("d", "domain", "good"),
        ]);
        assert_eq!(rules.groups.len(), 2);
        assert_eq!(rules.matches(MESSAGE), vec![0, 1, 2]);
    }

    #[test]
    fn bytes_and_case() {
        let rules = set(&[
            ("latin1", "header:X-BIN", r"(?-u:\xe9)$"),
            ("upper", "header:x-bin", "CAF"),
            ("nocase", "header:x-bin", "(?i)CAF"),
        ]);
        assert_eq!(rules.matches(MESSAGE), vec![0, 2]);
    }

    #[test]
    fn errors_name_the_rule() {
        let error = RuleSet::new(&[("ok", "domain", "x"), ("bad", "domain", "(")]).unwrap_err();
        assert_eq!(error.rule, "bad");
        assert_eq!(
            error.to_string(),
            "rule 'bad': regex syntax: unclosed group"
        );
        let error = RuleSet::new(&[("t", "subject", "x")]).unwrap_err();
        assert!(error.reason.contains("unknown target"), "{error}");
        assert!(RuleSet::new(&[("t", "header:", "x")]).is_err());
        let huge = "a{1000}{1000}";
        let error = RuleSet::new(&[("huge", "domain", huge)]).unwrap_err();
        assert_eq!(error.rule, "huge");
    }

    /// Patterns that fit alone but not together: the error names the largest, wherever it
    /// is in the target's rules (the `rules` fuzz target's first crash named a small one).
    #[test]
    fn a_set_over_the_limit_names_its_largest_pattern() {
        let largest_alone = (1..=1 << 16)
            .collect::<Vec<usize>>()
            .partition_point(|&n| nfa_size(&format!("a{{{n}}}")) < SIZE_LIMIT);
        let big = format!("a{{{}}}", largest_alone * 7 / 10);
        let medium = format!("b{{{}}}", largest_alone / 2);
        for rules in [
            [
                ("big", "domain", &*big),
                ("medium", "domain", &*medium),
                ("x", "domain", "x"),
            ],
            [
                ("x", "domain", "x"),
                ("medium", "domain", &*medium),
                ("big", "domain", &*big),
            ],
        ] {
            let error = RuleSet::new(&rules).unwrap_err();
            assert_eq!(error.rule, "big", "{error}");
            assert!(error.reason.contains("target domain together"), "{error}");
        }
        // fuzz/regressions/rules/set-over-the-limit-names-its-largest-pattern: within the
        // limit alone, over it beside `^(support|admin|ceo)$`.
        let pattern = String::from_utf8_lossy(
            b"\x06[xp\xa3%\xd7\xff\xd7\xff\x80q#{2}]{2}]\n\r\r\nac|a|ac\xffm?{21110}:cc\r\r\
              \x80q#{2}]{2}]\n\r\r\nac|c|ac\xffm?{21110}:cc\r\r\nu\n\n\xe7",
        );
        let error = RuleSet::new(&[
            ("fuzzed", "local-part", &*pattern),
            ("support", "local-part", "^(support|admin|ceo)$"),
        ])
        .unwrap_err();
        assert_eq!(error.rule, "fuzzed", "{error}");
    }

    #[test]
    fn no_backtracking() {
        let rules = set(&[("nested", "header:subject", "(a+)+$")]);
        let mut message = b"Subject: ".to_vec();
        message.extend(std::iter::repeat_n(b'a', 5000));
        message.extend(b"!\r\n\r\n");
        let started = std::time::Instant::now();
        assert!(rules.matches(&message).is_empty());
        assert!(started.elapsed().as_millis() < 1000);
    }

    #[test]
    fn header_fields_agree_with_check_message() {
        let messages: [&[u8]; 5] = [
            MESSAGE,
            b"From: a@b.c\nSender\n : d@e.f\nX: 1\n\nFrom: body@x.y\n",
            b" From: hidden@x.y\nFrom : a@b.c\r\nReply-To: r@s.t\r\n",
            b"junk line\nFrom: a@b.c\n\tmore\nResent-From: \n",
            b"From a@b.c Mon\nFrom: \"x\" <a@b.c>\n",
        ];
        for raw in messages {
            let check = check_message(raw, Profile::default());
            let checked: Vec<(usize, usize, usize)> = check
                .fields
                .iter()
                .map(|f| (f.start, f.end, f.value_start))
                .collect();
            let listed: Vec<(usize, usize, usize)> = header_fields(raw)
                .iter()
                .filter(|f| {
                    ["from", "sender", "resent-from", "reply-to"]
                        .iter()
                        .any(|n| f.name.eq_ignore_ascii_case(n.as_bytes()))
                })
                .map(|f| (f.start, f.end, f.value_start))
                .collect();
            assert_eq!(checked, listed, "{}", String::from_utf8_lossy(raw));
            let every: Vec<(usize, usize, usize)> = check
                .header
                .iter()
                .map(|f| (f.start, f.end, f.value_start))
                .collect();
            let listed: Vec<(usize, usize, usize)> = header_fields(raw)
                .iter()
                .map(|f| (f.start, f.end, f.value_start))
                .collect();
            assert_eq!(every, listed);
        }
    }

    /// Rules read the check they are given: its fields, and the mailboxes it parsed
    /// under its profile (here the groups profile, where a group's mailboxes are kept
    /// and the group is not an error).
    #[test]
    fn rules_match_on_the_check() {
        let rules = set(&[
            ("member", "addr-spec", "^member@"),
            ("subject", "header:subject", "suspended$"),
        ]);
        let raw = b"From: Team: member@x.example;\r\nSubject: is\r\n suspended\r\n\r\n";
        let groups = Profile {
            utf8: true,
            groups: true,
        };
        let check = check_message(raw, groups);
        assert_eq!(rules.matches_check(raw, &check), [0, 1]);
        assert_eq!(rules.matches(raw), [0, 1]);
        let empty = set(&[]);
        assert!(empty.matches_check(raw, &check).is_empty());
    }

    #[test]
    fn header_fields_unfold() {
        let fields = header_fields(MESSAGE);
        let names: Vec<&[u8]> = fields.iter().map(|f| f.name).collect();
        assert_eq!(names, [&b"Subject"[..], b"From", b"X-Bin"]);
        assert_eq!(&*fields[0].value, b"Your account  is suspended");
    }
}
