//! Quoted-printable and base64 as CPython's `binascii` codes them (`a2b_qp`, `b2a_qp`
//! with `istext=False`, `a2b_base64` in its default, lenient mode, `b2a_base64`): the
//! Python reference of the rewrite calls those C functions, and both engines must write
//! the same bytes.

const HEX: &[u8; 16] = b"0123456789ABCDEF";
const MAX_QP_LINE: usize = 76;

/// `binascii.a2b_qp(data)`: `=XX` a byte (either case), `=` and a line end a soft break
/// (a `=` then CR skips to the next LF), `==` one `=`, a lone `=` itself, a `=` at the
/// very end nothing.
pub(super) fn qp_decode(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut at = 0;
    while at < data.len() {
        // Text without `=` is itself: copied a run at a time.
        let run = memchr::memchr(b'=', &data[at..]).unwrap_or(data.len() - at);
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

/// The bytes of a base64 body by what they are: 0 a character of the alphabet or of the
/// line end (LF, or CR and LF), 1 `=`, 2 anything else.
const fn base64_classes(crlf: bool) -> [u8; 256] {
    let mut classes = [2u8; 256];
    let mut index = 0;
    while index < 256 {
        if BASE64_VALUES[index] < 64 || index == b'\n' as usize || (crlf && index == b'\r' as usize)
        {
            classes[index] = 0;
        }
        index += 1;
    }
    classes[b'=' as usize] = 1;
    classes
}

pub(super) const BASE64_CLASS_LF: [u8; 256] = base64_classes(false);
pub(super) const BASE64_CLASS_CRLF: [u8; 256] = base64_classes(true);

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

/// `binascii.a2b_base64(data)` (not strict): characters outside the alphabet are
/// skipped, enough `=` after two or three characters of a group end the data; None
/// where it raises (a group left with one, two or three characters). Whole groups of
/// four alphabet characters are decoded at once, the rest byte by byte as binascii does.
pub(super) fn base64_decode(data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() / 4 * 3 + 3);
    let (mut quad, mut left, mut pads) = (0u8, 0u8, 0u8);
    let mut at = 0;
    while at < data.len() {
        if quad == 0
            && let Some(group) = data.get(at..at + 4)
        {
            let [a, b, c, d] = [
                BASE64_VALUES[usize::from(group[0])],
                BASE64_VALUES[usize::from(group[1])],
                BASE64_VALUES[usize::from(group[2])],
                BASE64_VALUES[usize::from(group[3])],
            ];
            if (a | b | c | d) < 64 {
                out.extend_from_slice(&[a << 2 | b >> 4, b << 4 | c >> 2, c << 6 | d]);
                pads = 0;
                at += 4;
                continue;
            }
        }
        let byte = data[at];
        at += 1;
        if byte == b'=' {
            if quad >= 2 {
                pads += 1;
                if quad + pads >= 4 {
                    return Some(out);
                }
            }
            continue;
        }
        let value = BASE64_VALUES[usize::from(byte)];
        if value >= 64 {
            continue;
        }
        pads = 0;
        match quad {
            0 => {
                quad = 1;
                left = value;
            }
            1 => {
                quad = 2;
                out.push(left << 2 | value >> 4);
                left = value & 0x0f;
            }
            2 => {
                quad = 3;
                out.push(left << 4 | value >> 2);
                left = value & 0x03;
            }
            _ => {
                quad = 0;
                out.push(left << 6 | value);
                left = 0;
            }
        }
    }
    (quad == 0).then_some(out)
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
    fn base64_as_binascii() {
        assert_eq!(base64_encode(b"Hello"), b"SGVsbG8=");
        assert_eq!(base64_decode(b"SGVs\nbG8="), Some(b"Hello".to_vec()));
        assert_eq!(base64_decode(b"SGVsbG8"), None);
        assert_eq!(base64_decode(b"SGVsbG8=junk"), Some(b"Hello".to_vec()));
        assert_eq!(base64_decode(b"S"), None);
    }
}
