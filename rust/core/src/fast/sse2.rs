//! The fast path's commonest values, sixteen bytes at a time (x86-64 only).
//!
//! Most From values are short and plain: `Name Surname <local@domain>` or
//! `local@domain`, in ASCII letters, digits and a few punctuation marks, with UTF-8 at
//! most in the name. For a value of at most 64 bytes, SSE2 (in every x86-64 processor)
//! compares sixteen bytes at once with each character that matters; each comparison
//! becomes a 64-bit mask, one bit per byte of the value, and the shape is checked with a
//! few operations on the masks: where the `<` and the `@` are, that each part holds only
//! bytes allowed there, that no two periods or two spaces follow each other. The
//! byte-at-a-time scan of `fast/mod.rs` does the same with a table lookup and four
//! operations per byte, plus a `memchr` per delimiter; what this path saves on real
//! values is measured by `cargo bench -p fromguard` (the `assess` group on the Debian
//! corpus) against a build without it.
//!
//! It decides only values of at most 64 bytes made of letters, digits, `. - _ + SP < > @`
//! and, in the name, UTF-8; for them it returns what `fast::scan_bytewise` returns (a
//! test compares the two on every case file, the corpus, values around 64 bytes and
//! generated values). Any other value, and a domain with `--` (a possible A-label), is
//! left to that scan.
//!
//! The only `unsafe` of the crate: calling a function compiled for SSE2 from code that
//! does not say it needs SSE2, which Rust cannot check (the x86-64 baseline has it).

use std::arch::x86_64::{
    __m128i, _mm_and_si128, _mm_cmpeq_epi8, _mm_cmpgt_epi8, _mm_cmplt_epi8, _mm_movemask_epi8,
    _mm_or_si128, _mm_set_epi64x, _mm_set1_epi8,
};

use super::{Fast, Span, plain_utf8};
use crate::model::Profile;

/// The longest value this path reads: one bit per byte in a `u64`. (Longer values, a
/// tenth of the corpus, cost more with `u128` masks than byte by byte.)
const MAX_BYTES: usize = 64;

/// Position `i` alone.
fn at(i: usize) -> u64 {
    1u64.checked_shl(i as u32).unwrap_or(0)
}

/// Positions `start..end`.
fn range(start: usize, end: usize) -> u64 {
    let below = |n: usize| {
        u64::MAX
            .checked_shl(n as u32)
            .map_or(u64::MAX, |above| !above)
    };
    below(end) & !below(start)
}

/// For each kind of byte that matters, the positions of the value's bytes of that kind.
#[derive(Clone, Copy, Default)]
struct Masks {
    /// Letters and digits.
    alnum: u64,
    /// Letters, digits, `_` and `+`: atext allowed in a local part.
    word: u64,
    dot: u64,
    space: u64,
    hyphen: u64,
    open: u64,
    at: u64,
    /// Bytes >= 0x80.
    high: u64,
    /// The bytes of any kind above, or `>`.
    known: u64,
}

/// `input` as a fast-path shape when it is a plain value of at most 64 bytes; `None`
/// when `fast::scan_bytewise` must decide.
pub(crate) fn scan_plain(input: &[u8], profile: Profile) -> Option<Fast> {
    if input.is_empty() || input.len() > MAX_BYTES {
        return None;
    }
    // SAFETY: `masks` uses SSE2 instructions only, and every x86-64 processor has SSE2
    // (it is in the baseline of the `x86_64` targets).
    let masks = unsafe { masks(input) };
    shape(input, &masks, profile)
}

/// The masks of `input` (at most 64 bytes), sixteen bytes at a time: the blocks
/// at 0, 16, 32, ... and a last one that ends with the input (overlapping the one
/// before: the same bits again), or the input padded with NULs, which match no kind.
#[target_feature(enable = "sse2")]
fn masks(input: &[u8]) -> Masks {
    let mut masks = Masks::default();
    let len = input.len();
    let mut add = |block: &[u8], start: usize| {
        let half = |k: usize| {
            let mut word = [0u8; 8];
            word.copy_from_slice(block.get(k * 8..k * 8 + 8).unwrap_or(&[0; 8]));
            i64::from_le_bytes(word)
        };
        let v = _mm_set_epi64x(half(1), half(0));
        let bits = |m: __m128i| u64::from(_mm_movemask_epi8(m) as u16) << start;
        let eq = |c: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8));
        // Between `low` and `high` (ASCII; the signed comparison leaves bytes >= 0x80
        // out).
        let within = |x: __m128i, low: u8, high: u8| {
            _mm_and_si128(
                _mm_cmpgt_epi8(x, _mm_set1_epi8((low - 1) as i8)),
                _mm_cmplt_epi8(x, _mm_set1_epi8((high + 1) as i8)),
            )
        };
        let lower = _mm_or_si128(v, _mm_set1_epi8(0x20));
        let alnum = _mm_or_si128(within(lower, b'a', b'z'), within(v, b'0', b'9'));
        let word = _mm_or_si128(alnum, _mm_or_si128(eq(b'_'), eq(b'+')));
        let (dot, space, hyphen) = (eq(b'.'), eq(b' '), eq(b'-'));
        let (open, at) = (eq(b'<'), eq(b'@'));
        let known = [dot, space, hyphen, open, at, eq(b'>')]
            .into_iter()
            .fold(word, |all, kind| _mm_or_si128(all, kind));
        masks.alnum |= bits(alnum);
        masks.word |= bits(word);
        masks.dot |= bits(dot);
        masks.space |= bits(space);
        masks.hyphen |= bits(hyphen);
        masks.open |= bits(open);
        masks.at |= bits(at);
        // `v` itself: the sign bits are the bytes >= 0x80.
        masks.high |= bits(v);
        masks.known |= bits(known);
    };
    let mut start = 0;
    while let Some(block) = input.get(start..start + 16) {
        add(block, start);
        start += 16;
    }
    if start < len {
        match len.checked_sub(16) {
            Some(last) => add(input.get(last..).unwrap_or_default(), last),
            None => {
                let mut padded = [0u8; 16];
                padded
                    .get_mut(..len)
                    .unwrap_or_default()
                    .copy_from_slice(input);
                add(&padded, 0);
            }
        }
    }
    masks
}

/// The shape of a value of the kinds of bytes in `masks`, as `fast::scan_bytewise` sees
/// it.
fn shape(input: &[u8], m: &Masks, profile: Profile) -> Option<Fast> {
    let len = input.len();
    let all = range(0, len);
    if (m.known | m.high) & all != all {
        return None;
    }
    if input.last() != Some(&b'>') {
        let (local, domain) = address(m, 0, len)?;
        return Some(Fast::plain(None, local, domain, 0, false, false, len));
    }
    let open = m.open.trailing_zeros() as usize;
    if open == 0 {
        let (local, domain) = address(m, 1, len - 1)?;
        return Some(Fast::plain(None, local, domain, 0, false, false, len));
    }
    if open >= len || m.dot & at(0) != 0 {
        return None;
    }
    // An unquoted name before the "<" (and the one space allowed before it): atext, "."
    // (obs-phrase) and UTF-8, words one space apart, no space first or last.
    let end = if m.space & at(open - 1) != 0 {
        open - 1
    } else {
        open
    };
    let last = end.checked_sub(1)?;
    let name = range(0, end);
    let in_name = m.word | m.dot | m.hyphen | m.space | m.high;
    let spaces = m.space & name;
    let spaced = spaces & ((spaces << 1) | at(0) | at(last));
    if in_name & name != name || spaced != 0 {
        return None;
    }
    let utf8 = m.high & name != 0;
    if utf8 && !(profile.utf8 && plain_utf8(input.get(..open)?)) {
        return None;
    }
    let (local, domain) = address(m, open + 1, len - 1)?;
    let dots = m.dot & name != 0;
    Some(Fast::plain(Some(end), local, domain, open, utf8, dots, len))
}

/// `start..end` as `dot-atom-text "@" domain` (`fast::addr`): the spans of the local
/// part and the domain, or `None` to leave the value to the byte-at-a-time scan.
fn address(m: &Masks, start: usize, end: usize) -> Option<(Span, Span)> {
    let at_sign = (m.at & range(start, end)).trailing_zeros() as usize;
    // Neither part empty.
    if at_sign == start || at_sign + 1 >= end {
        return None;
    }
    let (local, domain) = (range(start, at_sign), range(at_sign + 1, end));
    let allowed = (m.word | m.dot | m.hyphen) & local | (m.alnum | m.dot | m.hyphen) & domain;
    // No "." first or last in a part, nor after another (the "@" between the parts is no
    // ".").
    let dots = m.dot & (local | domain);
    let ends = at(start) | at(at_sign - 1) | at(at_sign + 1) | at(end - 1);
    let plain = allowed == local | domain
        && dots & ((dots << 1) | ends) == 0
        // "--" may make an A-label: the byte-at-a-time scan looks at each label.
        && m.hyphen & (m.hyphen << 1) & domain == 0;
    plain.then_some(((start, at_sign), (at_sign + 1, end)))
}
