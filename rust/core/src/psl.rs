//! The organisational domain of a domain: its registrable domain under the Public Suffix
//! List, as DMARC's relaxed alignment compares domains (RFC 7489 §3.2). `mail.bank.example`
//! and `bank.example` are one organisation; `alice.github.io` and `bob.github.io` are two.
//!
//! The twin of `python/fromguard/reference/psl.py`, which reads the same snapshot of the
//! list: `data/public_suffix_list.dat` (from <https://publicsuffix.org/list/>, MPL-2.0;
//! its header says which version; `.ci/sync_data.py` copies it into the Python package,
//! and the README says how to refresh it). The `publicsuffix` crate reads the list and
//! finds a name's suffix: the rules of <https://publicsuffix.org/list/> (the longest
//! matching rule, `*` wildcards, `!` exceptions, the default rule `*`), ICANN and private
//! sections alike. The list is parsed on first use.

use std::collections::HashSet;
use std::sync::LazyLock;

use publicsuffix::{List, Psl};

use crate::lookalike::normalize_domain;

/// The snapshot of the Public Suffix List.
const PUBLIC_SUFFIX_LIST: &str = include_str!("../data/public_suffix_list.dat");

/// Rules the list lacks, appended to it: domains whose every subdomain is a different
/// customer of a mail-sending service (`<tenant>.onmicrosoft.com`; the file says why each
/// is there).
const TENANT_SUFFIXES: &str = include_str!("../data/tenant_suffixes.dat");

/// The parsed list and tenant rules; `None` if they do not parse (a test checks that
/// they do).
static LIST: LazyLock<Option<List>> = LazyLock::new(|| {
    format!("{PUBLIC_SUFFIX_LIST}\n{TENANT_SUFFIXES}")
        .parse()
        .ok()
});

/// The organisational domains where any member of the public gets a mailbox
/// (`data/shared_mailbox_domains.txt`).
static SHARED_MAILBOX_DOMAINS: LazyLock<HashSet<&str>> = LazyLock::new(|| {
    include_str!("../data/shared_mailbox_domains.txt")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
});

/// Who a mailbox belongs to, for comparing senders: its organisational domain, but at a
/// shared mailbox provider (`gmail.com`: two addresses there are two people) the
/// mailbox itself, normalized as addresses are compared.
pub fn organisation(local_part: &str, domain: &str) -> String {
    let organisational = organisational_domain(domain);
    if SHARED_MAILBOX_DOMAINS.contains(organisational.as_str()) {
        format!(
            "{}@{}",
            local_part.to_ascii_lowercase(),
            normalize_domain(domain)
        )
    } else {
        organisational
    }
}

/// The organisational domain of `domain`: the domain normalized as addresses are
/// compared (ASCII lower case, no trailing dot, punycode decoded: see
/// [`normalize_domain`]), then cut to its public suffix and one label more. A domain with
/// no label beyond its public suffix (`co.uk`), an empty label (`a..example`) or a
/// domain literal is its own organisational domain, normalized. Rules are matched on the
/// decoded (Unicode) labels, as the list writes them.
pub fn organisational_domain(domain: &str) -> String {
    let normalized = normalize_domain(domain);
    let registrable = LIST.as_ref().and_then(|list| {
        if normalized.starts_with('[') || normalized.split('.').any(str::is_empty) {
            return None;
        }
        let found = list.domain(normalized.as_bytes())?;
        std::str::from_utf8(found.as_bytes())
            .ok()
            .map(str::to_owned)
    });
    registrable.unwrap_or(normalized)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snapshot_parses() {
        assert!(LIST.is_some());
    }

    #[test]
    fn a_shared_mailbox_provider_is_no_organisation() {
        assert_eq!(organisation("Boss", "Mail.Bank.Example"), "bank.example");
        assert_eq!(organisation("Boss", "gmail.com"), "boss@gmail.com");
        assert_eq!(organisation("boss", "GMAIL.com."), "boss@gmail.com");
        assert_eq!(organisation("x", "mail.yahoo.co.jp"), "x@mail.yahoo.co.jp");
        assert_ne!(
            organisation("boss", "gmail.com"),
            organisation("scammer", "gmail.com")
        );
    }

    #[test]
    fn organisations() {
        assert_eq!(organisational_domain("mail.bank.example"), "bank.example");
        assert_eq!(organisational_domain("Mail.Bank.Example."), "bank.example");
        assert_eq!(organisational_domain("www.example.co.uk"), "example.co.uk");
        assert_eq!(organisational_domain("co.uk"), "co.uk");
        assert_eq!(organisational_domain("alice.github.io"), "alice.github.io");
        // A tenant rule (data/tenant_suffixes.dat).
        assert_eq!(
            organisational_domain("mail.contoso.onmicrosoft.com"),
            "contoso.onmicrosoft.com"
        );
        assert_eq!(organisational_domain("onmicrosoft.com"), "onmicrosoft.com");
        assert_eq!(organisational_domain("a..example"), "a..example");
        assert_eq!(organisational_domain("[192.0.2.1]"), "[192.0.2.1]");
        assert_eq!(organisational_domain(""), "");
    }
}
