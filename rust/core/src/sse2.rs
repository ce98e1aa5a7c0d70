//! The fast path's commonest values, sixteen bytes at a time (x86-64 only).
//!
//! Most From values are short and plain: `Name Surname <local@domain>` or
//! `local@domain` in ASCII letters, digits and a few punctuation marks. For a value of
//! at most 64 bytes, SSE2 (part of every x86-64 processor) compares all of its bytes
//! with each character that matters at once; each comparison becomes a 64-bit mask, one
//! bit per byte, and the shape is then checked with a few operations on the masks:
//! where the `<` and the `@` are, that every byte of each part is allowed there, that no
//! two periods or two spaces follow each other. The byte-at-a-time scan of `fast.rs` did
//! the same work with a table lookup and four operations per byte, plus a `memchr` per
//! delimiter: this takes a third of its instructions on the Debian corpus.
//!
//! It decides only values made of letters, digits, `. - _ + SP < > @`, and returns what
//! `fast::scan_bytewise` returns for them (a test compares the two on every case file,
//! the corpus and generated values); any other value, and a domain with `--` (a possible
//! A-label), is left to that scan.
//!
//! The only `unsafe` of the crate: calling a function compiled for SSE2 from code that
//! does not say it needs SSE2, which Rust cannot check (the x86-64 baseline has it).

use std::arch::x86_64::{
    __m128i, _mm_and_si128, _mm_cmpeq_epi8, _mm_cmpgt_epi8, _mm_cmplt_epi8, _mm_movemask_epi8,
    _mm_or_si128, _mm_set_epi64x, _mm_set1_epi8,
};

use crate::fast::{Fast, Span};

/// The longest value this path reads: one bit per byte in a `u64`.
const MAX_BYTES: usize = 64;

/// One bit per byte of the value for each kind of byte that matters.
#[derive(Clone, Copy, Default)]
struct Masks {
    /// Letters and digits.
    alnum: u64,
    dot: u64,
    space: u64,
    hyphen: u64,
    /// `_` and `+`: allowed in a name and a local part, not in a domain.
    other_atext: u64,
    open: u64,
    close: u64,
    at: u64,
}

/// `input` as a fast-path shape when it is a plain ASCII value of at most 64 bytes;
/// `None` when `fast::scan_bytewise` must decide.
pub(crate) fn scan_plain(input: &[u8]) -> Option<Fast> {
    if input.is_empty() || input.len() > MAX_BYTES {
        return None;
    }
    let mut padded = [0u8; MAX_BYTES];
    padded.get_mut(..input.len())?.copy_from_slice(input);
    // SAFETY: `masks` uses SSE2 instructions only, and every x86-64 processor has SSE2
    // (it is in the baseline of the `x86_64` targets).
    let masks = unsafe { masks(&padded, input.len()) };
    shape(input, &masks)
}

/// The masks of the first `len` bytes of `bytes` (the others are zero and match nothing).
#[target_feature(enable = "sse2")]
fn masks(bytes: &[u8; MAX_BYTES], len: usize) -> Masks {
    let mut masks = Masks::default();
    for (block, chunk) in bytes.chunks_exact(16).enumerate().take(len.div_ceil(16)) {
        let half = |k: usize| {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk.get(k * 8..k * 8 + 8).unwrap_or(&[0; 8]));
            i64::from_le_bytes(word)
        };
        let v = _mm_set_epi64x(half(1), half(0));
        let shift = block * 16;
        let bits = |m: __m128i| u64::from(_mm_movemask_epi8(m) as u16) << shift;
        let eq = |c: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8));
        // Between `low` and `high` (ASCII; signed comparison leaves bytes >= 0x80 out).
        let within = |x: __m128i, low: u8, high: u8| {
            _mm_and_si128(
                _mm_cmpgt_epi8(x, _mm_set1_epi8((low - 1) as i8)),
                _mm_cmplt_epi8(x, _mm_set1_epi8((high + 1) as i8)),
            )
        };
        let lower = _mm_or_si128(v, _mm_set1_epi8(0x20));
        masks.alnum |= bits(_mm_or_si128(
            within(lower, b'a', b'z'),
            within(v, b'0', b'9'),
        ));
        masks.dot |= bits(eq(b'.'));
        masks.space |= bits(eq(b' '));
        masks.hyphen |= bits(eq(b'-'));
        masks.other_atext |= bits(_mm_or_si128(eq(b'_'), eq(b'+')));
        masks.open |= bits(eq(b'<'));
        masks.close |= bits(eq(b'>'));
        masks.at |= bits(eq(b'@'));
    }
    masks
}

/// The bits of bytes `start..end`.
fn range(start: usize, end: usize) -> u64 {
    let below = |n: usize| if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
    below(end) & !below(start)
}

/// The shape of a value whose bytes are all of the kinds in `masks`, as
/// `fast::scan_bytewise` sees it.
fn shape(input: &[u8], m: &Masks) -> Option<Fast> {
    let len = input.len();
    let known = m.alnum | m.dot | m.space | m.hyphen | m.other_atext | m.open | m.close | m.at;
    if known != range(0, len) {
        return None;
    }
    if input.last() != Some(&b'>') {
        let (local, domain) = address(m, 0, len)?;
        return Some(Fast::plain(None, local, domain, 0, false, len));
    }
    let open = m.open.trailing_zeros() as usize;
    if open == 0 {
        let (local, domain) = address(m, 1, len - 1)?;
        return Some(Fast::plain(None, local, domain, 0, false, len));
    }
    if open >= len || m.dot & 1 != 0 {
        return None;
    }
    // An unquoted name before the "<" (and the one space allowed before it): atext and
    // "." (obs-phrase), words one space apart, no space first or last.
    let end = if m.space & (1 << (open - 1)) != 0 {
        open - 1
    } else {
        open
    };
    let last = end.checked_sub(1)?;
    let name = range(0, end);
    let in_name = m.alnum | m.dot | m.hyphen | m.other_atext | m.space;
    let spaces = m.space & name;
    if in_name & name != name || spaces & ((spaces << 1) | 1 | (1 << last)) != 0 {
        return None;
    }
    let (local, domain) = address(m, open + 1, len - 1)?;
    Some(Fast::plain(
        Some(end),
        local,
        domain,
        open,
        m.dot & name != 0,
        len,
    ))
}

/// `[start, end)` as `dot-atom-text "@" domain` (`fast::addr`): the spans of the local
/// part and the domain, or `None` to leave the value to the byte-at-a-time scan.
fn address(m: &Masks, start: usize, end: usize) -> Option<(Span, Span)> {
    let at = (m.at & range(start, end)).trailing_zeros() as usize;
    if at >= end {
        return None;
    }
    let (local, domain) = (range(start, at), range(at + 1, end));
    let in_local = m.alnum | m.dot | m.hyphen | m.other_atext;
    let in_domain = m.alnum | m.dot | m.hyphen;
    // Neither empty, no "." first, last or after another.
    let dot_atom = |part: u64, first: usize, last: usize| {
        let dots = m.dot & part;
        part != 0 && dots & ((dots << 1) | (1 << first) | (1 << last)) == 0
    };
    let plain = in_local & local == local
        && in_domain & domain == domain
        && dot_atom(local, start, at.saturating_sub(1))
        && dot_atom(domain, at + 1, end.saturating_sub(1))
        // "--" may make an A-label: the byte-at-a-time scan looks at each label.
        && m.hyphen & (m.hyphen << 1) & domain == 0;
    plain.then_some(((start, at), (at + 1, end)))
}
