//! The result types, field for field those of `python/fromguard/_model.py`.

use std::borrow::Cow;

use crate::code::{Code, CodeSet, Syntax, Verdict};

/// A byte range `[start, end)` into the input.
pub type Span = (usize, usize);

/// Options that widen the grammar; part of every result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Profile {
    /// RFC 6532: raw UTF-8 in display names, comments and addresses (still reported as
    /// the `info` finding `utf8`).
    pub utf8: bool,
    /// RFC 6854: group syntax in From.
    pub groups: bool,
}

impl Default for Profile {
    fn default() -> Self {
        Profile {
            utf8: true,
            groups: false,
        }
    }
}

/// One observation: a code and the byte span `[start, end)` it points at. Severity,
/// syntax and message are the code's ([`Code::severity`], [`Code::description`], ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Finding {
    pub code: Code,
    pub start: usize,
    pub end: usize,
}

impl Finding {
    pub fn new(code: Code, start: usize, end: usize) -> Finding {
        Finding { code, start, end }
    }
}

/// One mailbox of the list, with its parts decoded and their byte spans. The text
/// borrows from the input unless decoding (quoted-pairs, encoded-words, unfolding)
/// forced a copy.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Mailbox<'a> {
    /// The display name, unquoted and decoded; `None` for a bare addr-spec.
    pub display_name: Option<Cow<'a, str>>,
    /// The local part unquoted, its quoted-pairs unescaped (an escaped CR or LF kept).
    pub local_part: Cow<'a, str>,
    /// The domain as written (a literal with its brackets and quoted-pairs), unfolded.
    pub domain: Cow<'a, str>,
    /// `local_part@domain`, without comments and folding, the local part quoted when it
    /// is not a dot-atom (escaping what a quoted string cannot hold bare).
    pub addr_spec: Cow<'a, str>,
    /// The domains of an obsolete source route (obs-route), which is ignored.
    pub route: Vec<Cow<'a, str>>,
    /// The comments in the mailbox, decoded.
    pub comments: Vec<Cow<'a, str>>,
    /// The display name of the group the mailbox belongs to (groups profile).
    pub group: Option<Cow<'a, str>>,
    /// The whole mailbox.
    pub span: Span,
    pub display_name_span: Option<Span>,
    pub local_part_span: Span,
    pub domain_span: Span,
}

impl Mailbox<'_> {
    /// The mailbox with its text copied, free of the input's lifetime.
    pub fn into_owned(self) -> Mailbox<'static> {
        Mailbox {
            display_name: self.display_name.map(owned),
            local_part: owned(self.local_part),
            domain: owned(self.domain),
            addr_spec: owned(self.addr_spec),
            route: self.route.into_iter().map(owned).collect(),
            comments: self.comments.into_iter().map(owned).collect(),
            group: self.group.map(owned),
            span: self.span,
            display_name_span: self.display_name_span,
            local_part_span: self.local_part_span,
            domain_span: self.domain_span,
        }
    }
}

/// Where a shadow address was found: the kind of unit its span covers.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShadowSource {
    /// A display name, quoted or not (a group's name too).
    DisplayName,
    /// A comment.
    Comment,
    /// The decoded text of an encoded-word that no display text shows.
    EncodedWord,
    /// A quoted local part holding an address.
    QuotedLocalPart,
    /// `user%host` in the local part.
    PercentHack,
    /// `host!user` in the local part.
    BangPath,
    /// A domain literal that is not an IP literal.
    DomainLiteral,
    /// Text the grammar rejected (after an address, or an element without one).
    RejectedText,
    /// An addr-spec up to a comment or a backslash between the labels of its domain.
    CutAddress,
}

impl ShadowSource {
    /// `"display-name"`, `"comment"`, `"encoded-word"`, `"quoted-local-part"`,
    /// `"percent-hack"`, `"bang-path"`, `"domain-literal"`, `"rejected-text"` or
    /// `"cut-address"`, as in the case files and the Python reference. Shadows sort by
    /// this name.
    pub fn as_str(self) -> &'static str {
        match self {
            ShadowSource::DisplayName => "display-name",
            ShadowSource::Comment => "comment",
            ShadowSource::EncodedWord => "encoded-word",
            ShadowSource::QuotedLocalPart => "quoted-local-part",
            ShadowSource::PercentHack => "percent-hack",
            ShadowSource::BangPath => "bang-path",
            ShadowSource::DomainLiteral => "domain-literal",
            ShadowSource::RejectedText => "rejected-text",
            ShadowSource::CutAddress => "cut-address",
        }
    }
}

impl std::fmt::Display for ShadowSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An address-like string a lenient client could show or use instead of the real
/// addr-spec: where it came from (`source`) and the byte span `[start, end)` of that
/// unit. The address borrows from the input when it is written there verbatim.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Shadow<'a> {
    pub address: Cow<'a, str>,
    pub source: ShadowSource,
    pub start: usize,
    pub end: usize,
}

impl Shadow<'_> {
    /// The shadow with its text copied, free of the input's lifetime.
    pub fn into_owned(self) -> Shadow<'static> {
        Shadow {
            address: owned(self.address),
            source: self.source,
            start: self.start,
            end: self.end,
        }
    }
}

fn owned(text: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(text.into_owned())
}

/// The verdict and syntax of a value alone (what `assess` returns).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Assessment {
    pub verdict: Verdict,
    pub syntax: Syntax,
}

/// The parse of one From field body.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Parsed<'a> {
    pub verdict: Verdict,
    pub syntax: Syntax,
    /// The profile the value was parsed under.
    pub profile: Profile,
    /// Sorted by `(start, end, code index)`; at most `MAX_FINDINGS` and a
    /// `too-many-findings` where the ones not kept begin.
    pub findings: Vec<Finding>,
    /// Every code reported, those past the findings limit too: what a policy acts on.
    pub codes: CodeSet,
    pub mailboxes: Vec<Mailbox<'a>>,
    /// The shadow addresses, sorted by `(start, end, source name, address)`.
    pub shadows: Vec<Shadow<'a>>,
}

impl Parsed<'_> {
    /// The single author's addr-spec, or `None` unless there is exactly one mailbox.
    pub fn address(&self) -> Option<&str> {
        match self.mailboxes.as_slice() {
            [mailbox] => Some(&mailbox.addr_spec),
            _ => None,
        }
    }

    /// The result with its text copied, free of the input's lifetime.
    pub fn into_owned(self) -> Parsed<'static> {
        Parsed {
            verdict: self.verdict,
            syntax: self.syntax,
            profile: self.profile,
            findings: self.findings,
            codes: self.codes,
            mailboxes: self
                .mailboxes
                .into_iter()
                .map(Mailbox::into_owned)
                .collect(),
            shadows: self.shadows.into_iter().map(Shadow::into_owned).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code::Severity;

    fn mailbox(addr_spec: &str) -> Mailbox<'_> {
        let (local, domain) = addr_spec.split_once('@').expect("an @");
        Mailbox {
            display_name: None,
            local_part: Cow::Borrowed(local),
            domain: Cow::Borrowed(domain),
            addr_spec: Cow::Borrowed(addr_spec),
            route: Vec::new(),
            comments: Vec::new(),
            group: None,
            span: (0, addr_spec.len()),
            display_name_span: None,
            local_part_span: (0, local.len()),
            domain_span: (local.len() + 1, addr_spec.len()),
        }
    }

    fn parsed<'a>(mailboxes: Vec<Mailbox<'a>>) -> Parsed<'a> {
        Parsed {
            verdict: Verdict::Valid,
            syntax: Syntax::Strict,
            profile: Profile::default(),
            findings: Vec::new(),
            codes: CodeSet::default(),
            mailboxes,
            shadows: Vec::new(),
        }
    }

    #[test]
    fn orders_follow_the_design() {
        assert!(Severity::Info < Severity::Legacy);
        assert!(Severity::Legacy < Severity::Deceptive);
        assert!(Severity::Deceptive < Severity::Invalid);
        assert!(Syntax::Strict < Syntax::Obsolete && Syntax::Obsolete < Syntax::Invalid);
        assert_eq!(Verdict::from_severity(Severity::Info), Verdict::Valid);
        assert_eq!(Verdict::from_severity(Severity::Invalid), Verdict::Invalid);
        assert!(Verdict::Valid < Verdict::Legacy && Verdict::Deceptive < Verdict::Invalid);
    }

    #[test]
    fn default_profile_is_utf8_without_groups() {
        assert_eq!(
            Profile::default(),
            Profile {
                utf8: true,
                groups: false
            }
        );
    }

    #[test]
    fn address_needs_exactly_one_mailbox() {
        assert_eq!(parsed(vec![]).address(), None);
        assert_eq!(
            parsed(vec![mailbox("a@b.example")]).address(),
            Some("a@b.example")
        );
        let two = parsed(vec![mailbox("a@b.example"), mailbox("c@d.example")]);
        assert_eq!(two.address(), None);
    }

    #[test]
    fn into_owned_keeps_every_field() {
        let input = String::from("a@b.example");
        let mut original = parsed(vec![mailbox(&input)]);
        original.shadows.push(Shadow {
            address: Cow::Borrowed(&input[..]),
            source: ShadowSource::Comment,
            start: 0,
            end: 11,
        });
        let owned: Parsed<'static> = original.clone().into_owned();
        drop(original);
        drop(input);
        assert_eq!(owned.address(), Some("a@b.example"));
        assert_eq!(owned.mailboxes[0].domain_span, (2, 11));
        assert_eq!(owned.shadows[0].address, "a@b.example");
        assert_eq!(owned.shadows[0].source.as_str(), "comment");
    }
}
