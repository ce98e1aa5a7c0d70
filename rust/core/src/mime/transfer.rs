//! Quoted-printable and base64 as CPython's `binascii` codes them (`a2b_qp`, `b2a_qp`
//! with `istext=False`, `a2b_base64` in its default, lenient mode, `b2a_base64`): the
//! Python reference of the rewrite calls those C functions, and both engines must write
//! the same bytes.

const HEX: &[u8; 16] = b"0123456789ABCDEF";
const MAX_QP_LINE: usize = 76;
/// Bytes looked at one by one for the next `=` before a memchr call.
const SHORT_RUN: usize = 16;

/// `binascii.a2b_qp(data)`: `=XX` a byte (either case), `=` and a line end a soft break
/// (a `=` then CR skips to the next LF), `==` one `=`, a lone `=` itself, a `=` at the
/// very end nothing.
pub(super) fn qp_decode(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut at = 0;
    while at < data.len() {
        // Text without `=` is itself: copied a run at a time (a short run found without
        // the cost of a memchr call: escaped text has one every few bytes).
        let near = &data[at..data.len().min(at + SHORT_RUN)];
        let run = match near.iter().position(|&byte| byte == b'=') {
            Some(run) => run,
            None => memchr::memchr(b'=', &data[at..]).unwrap_or(data.len() - at),
        };
        out.extend_from_slice(&data[at..at + run]);
        at += run + 1;
        let Some(&next) = data.get(at) else { break };
        if next == b'\n' || next == b'\r' {
            if next != b'\n' {
                at += memchr::memchr(b'\n', &data[at..]).unwrap_or(data.len() - at);
            }
            if at < data.len() {
                at += 1;
            }
        } else if next == b'=' {
            out.push(b'=');
            at += 1;
        } else if let (Some(high), Some(low)) = (
            hex_value(next),
            data.get(at + 1).copied().and_then(hex_value),
        ) {
            out.push(high << 4 | low);
            at += 2;
        } else {
            out.push(b'=');
        }
    }
    out
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        _ => None,
    }
}

/// `binascii.b2a_qp(data, istext=False)`: soft line breaks keep lines within 76
/// characters (with CRLF when the data's first LF follows a CR).
pub(super) fn qp_encode(data: &[u8]) -> Vec<u8> {
    let crlf = memchr::memchr(b'\n', data)
        .is_some_and(|newline| newline > 0 && data[newline - 1] == b'\r');
    let soft_break: &[u8] = if crlf { b"=\r\n" } else { b"=\n" };
    let mut out = Vec::with_capacity(data.len() * 3 / 2 + 8);
    let mut line = 0;
    for (at, &byte) in data.iter().enumerate() {
        let next = data.get(at + 1).copied();
        let escaped = byte > 126
            || byte == b'='
            || (byte == b'.' && line == 0 && matches!(next, None | Some(b'\n' | b'\r' | 0)))
            || byte == b'\r'
            || byte == b'\n'
            || ((byte == b'\t' || byte == b' ') && next.is_none())
            || (byte < 33 && byte != b'\t' && byte != b' ');
        if escaped {
            if line + 3 >= MAX_QP_LINE {
                out.extend_from_slice(soft_break);
                line = 0;
            }
            out.extend_from_slice(&[
                b'=',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 15)],
            ]);
            line += 3;
        } else {
            if next.is_some_and(|next| next != b'\n') && line + 1 >= MAX_QP_LINE {
                out.extend_from_slice(soft_break);
                line = 0;
            }
            out.push(byte);
            line += 1;
        }
    }
    out
}

const BASE64_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// How many bytes of a base64 body are neither characters of the alphabet nor of the
/// line end (LF, or CR and LF with `crlf`). Range tests, summed into a byte per block of
/// 128 (at most 128: `wrapping_add` only keeps the overflow check out of the loop), so
/// that the compiler vectorises the count (a table lookup per byte does not).
pub(super) fn base64_others(body: &[u8], crlf: bool) -> usize {
    let cr = if crlf { b'\r' } else { b'\n' };
    let other = |byte: u8| {
        let letter = (byte & 0xdf).wrapping_sub(b'A') < 26;
        let digit = byte.wrapping_sub(b'0') < 10;
        u8::from(
            !(letter | digit | (byte == b'+') | (byte == b'/') | (byte == b'\n') | (byte == cr)),
        )
    };
    let mut blocks = body.chunks_exact(128);
    let mut count = 0;
    for block in &mut blocks {
        count += usize::from(
            block
                .iter()
                .fold(0u8, |sum, &byte| sum.wrapping_add(other(byte))),
        );
    }
    count
        + blocks
            .remainder()
            .iter()
            .map(|&byte| usize::from(other(byte)))
            .sum::<usize>()
}

/// The value of each base64 character; 64 for any other byte.
const BASE64_VALUES: [u8; 256] = {
    let mut values = [64u8; 256];
    let mut index = 0;
    while index < 64 {
        values[BASE64_ALPHABET[index] as usize] = index as u8;
        index += 1;
    }
    values
};

/// `binascii.a2b_base64(data)` (not strict), appended to `out`: characters outside the
/// alphabet are skipped, enough `=` after two or three characters of a group end the
/// data; false where it raises (a group left with one, two or three characters; `out`
/// then holds part of the data). Runs of whole groups of four alphabet characters are
/// decoded at once, the rest byte by byte as binascii does.
pub(super) fn base64_decode_into(data: &[u8], out: &mut Vec<u8>) -> bool {
    let base = out.len();
    // Room for all the data can decode to, written by index: no capacity check per group.
    out.resize(base + data.len() / 4 * 3 + 3, 0);
    let (decoded, written) = base64_decode_to(data, &mut out[base..]);
    out.truncate(base + written);
    decoded
}

/// `base64_decode_into`'s work, into `out` (room enough): whether it decoded, and the
/// bytes written.
fn base64_decode_to(data: &[u8], out: &mut [u8]) -> (bool, usize) {
    let (mut quad, mut left, mut pads) = (0u8, 0u8, 0u8);
    let (mut at, mut written) = (0, 0);
    while at < data.len() {
        if quad == 0 {
            // A run of whole groups of four alphabet characters (a line, usually).
            let mut groups = 0;
            for group in data[at..].chunks_exact(4) {
                let values = [group[0], group[1], group[2], group[3]]
                    .map(|byte| BASE64_VALUES[usize::from(byte)]);
                if (values[0] | values[1] | values[2] | values[3]) >= 64 {
                    break;
                }
                let bits = values
                    .iter()
                    .fold(0u32, |bits, &value| bits << 6 | u32::from(value));
                out[written..written + 3].copy_from_slice(&bits.to_be_bytes()[1..]);
                written += 3;
                groups += 1;
            }
            if groups > 0 {
                pads = 0;
                at += 4 * groups;
                continue;
            }
        }
        let byte = data[at];
        at += 1;
        if byte == b'=' {
            if quad >= 2 {
                pads += 1;
                if quad + pads >= 4 {
                    return (true, written);
                }
            }
            continue;
        }
        let value = BASE64_VALUES[usize::from(byte)];
        if value >= 64 {
            continue;
        }
        pads = 0;
        let (next, byte) = match quad {
            0 => {
                left = value;
                (1, None)
            }
            1 => {
                let byte = left << 2 | value >> 4;
                left = value & 0x0f;
                (2, Some(byte))
            }
            2 => {
                let byte = left << 4 | value >> 2;
                left = value & 0x03;
                (3, Some(byte))
            }
            _ => {
                let byte = left << 6 | value;
                left = 0;
                (0, Some(byte))
            }
        };
        quad = next;
        if let Some(byte) = byte {
            out[written] = byte;
            written += 1;
        }
    }
    (quad == 0, written)
}

/// `binascii.b2a_base64(data, newline=False)`: padded, one line.
pub(super) fn base64_encode(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len().div_ceil(3) * 4);
    for group in data.chunks(3) {
        let bits = group
            .iter()
            .enumerate()
            .fold(0u32, |bits, (i, &b)| bits | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= group.len() {
                out.push(BASE64_ALPHABET[(bits >> (18 - 6 * i) & 63) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_printable_as_binascii() {
        assert_eq!(qp_decode(b"a=3Db=\r\nc=\nd=x=="), b"a=bcd=x=");
        assert_eq!(qp_decode(b"=\rjunk\nz="), b"z");
        assert_eq!(qp_encode(b"caf\xc3\xa9 ."), b"caf=C3=A9 .");
        assert_eq!(qp_encode(b"."), b"=2E");
        assert_eq!(qp_encode(b"end "), b"end=20");
        let long = qp_encode(&[b'x'; 100]);
        assert_eq!(long, [&[b'x'; 75][..], b"=\n", &[b'x'; 25][..]].concat());
    }

    #[test]
    fn base64_others_are_the_bytes_outside_the_alphabet_and_line_ends() {
        let body: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for crlf in [false, true] {
            let outside = |&&byte: &&u8| {
                BASE64_VALUES[usize::from(byte)] >= 64 && byte != b'\n' && !(crlf && byte == b'\r')
            };
            for length in [0, 1, 127, 128, 129, 1000] {
                let expected = body[..length].iter().filter(outside).count();
                assert_eq!(
                    base64_others(&body[..length], crlf),
                    expected,
                    "{length} {crlf}"
                );
            }
        }
    }

    #[test]
    fn base64_as_binascii() {
        assert_eq!(base64_encode(b"Hello"), b"SGVsbG8=");
        let decode = |data: &[u8]| {
            let mut out = b"kept".to_vec();
            base64_decode_into(data, &mut out).then(|| out.split_off(4))
        };
        assert_eq!(decode(b"SGVs\nbG8="), Some(b"Hello".to_vec()));
        assert_eq!(decode(b"SGVsbG8"), None);
        assert_eq!(decode(b"SGVsbG8=junk"), Some(b"Hello".to_vec()));
        assert_eq!(decode(b"S"), None);
        assert_eq!(
            decode(b"SGVsbG8gd29y\r\nbGQ="),
            Some(b"Hello world".to_vec())
        );
    }
}
