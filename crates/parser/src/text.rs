//! Decoding of the text arguments of protocol 0 and Python 2 pickles.
//!
//! These follow what CPython's C unpickler accepts for the text that real
//! writers produce; anything else is an error rather than a guess.

/// An optional sign and one or more ASCII digits that fit an `i64`.
pub fn parse_i64(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.split_first()? {
        (b'-', rest) => (true, rest),
        (b'+', rest) => (false, rest),
        _ => (false, text),
    };
    // Python 3 reads "010" as an error, C's strtol as octal: leave it to
    // the reader's int(text, 0), which refuses it as pickle.py does.
    if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') {
        return None;
    }
    let mut value: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let digit = i64::from(d - b'0');
        value = value.checked_mul(10)?;
        value = if negative {
            value.checked_sub(digit)?
        } else {
            value.checked_add(digit)?
        };
    }
    Some(value)
}

/// One or more ASCII digits (a memo index in GET/PUT); `Err` names the problem.
pub fn parse_index(text: &[u8]) -> Result<u64, String> {
    if text.first() == Some(&b'-') && text.len() > 1 && text[1..].iter().all(u8::is_ascii_digit) {
        return Err("negative memo index".to_owned());
    }
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return Err(format!(
            "invalid literal for a memo index: {}",
            String::from_utf8_lossy(text)
        ));
    }
    let mut value: u64 = 0;
    for &d in text {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
            .ok_or_else(|| "memo index out of range".to_owned())?;
    }
    Ok(value)
}

/// Why a FLOAT literal was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum FloatError {
    Invalid,
    Overflow,
}

/// A FLOAT literal: what `repr(float)` writes, `inf`/`nan` forms included.
pub fn parse_float(text: &[u8]) -> Result<f64, FloatError> {
    let s = std::str::from_utf8(text).map_err(|_| FloatError::Invalid)?;
    // Rust also accepts these; CPython does not.
    if s.is_empty() || s.contains(['_', ' ']) {
        return Err(FloatError::Invalid);
    }
    let value: f64 = s.parse().map_err(|_| FloatError::Invalid)?;
    if value.is_infinite() && !s.to_ascii_lowercase().contains("inf") {
        return Err(FloatError::Overflow);
    }
    Ok(value)
}

/// Decode the backslash escapes of a protocol 0 STRING (Python 2 `str`
/// repr), as `codecs.escape_decode` does.
pub fn unescape_bytes(text: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let c = text[i];
        i += 1;
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let Some(&e) = text.get(i) else {
            return Err("Trailing \\ in string".to_owned());
        };
        i += 1;
        match e {
            b'\n' => {}
            b'\\' | b'\'' | b'"' => out.push(e),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b't' => out.push(b'\t'),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b'v' => out.push(0x0b),
            b'a' => out.push(0x07),
            b'0'..=b'7' => {
                let mut value = u32::from(e - b'0');
                for _ in 0..2 {
                    match text.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                // CPython keeps the low byte of an escape above \377.
                out.push((value & 0xff) as u8);
            }
            b'x' => {
                let hex = text.get(i..i + 2).and_then(hex_value);
                match hex {
                    Some(v) => {
                        out.push(v as u8);
                        i += 2;
                    }
                    None => return Err(format!("invalid \\x escape at position {}", i - 2)),
                }
            }
            _ => {
                out.push(b'\\');
                out.push(e);
            }
        }
    }
    Ok(out)
}

fn hex_value(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |acc, &d| {
        let v = char::from(d).to_digit(16)?;
        Some(acc * 16 + v)
    })
}

/// Decode a protocol 0 UNICODE argument (`raw-unicode-escape`) to code
/// points: `\uXXXX` and `\UXXXXXXXX` are escapes, every other byte is a
/// Latin-1 character. Lone surrogates are kept, as CPython keeps them.
pub fn decode_raw_unicode_escape(text: &[u8]) -> Result<Vec<u32>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let c = text[i];
        i += 1;
        if c != b'\\' {
            out.push(u32::from(c));
            continue;
        }
        let count = match text.get(i) {
            Some(b'u') => 4,
            Some(b'U') => 8,
            Some(&other) => {
                out.push(u32::from(b'\\'));
                out.push(u32::from(other));
                i += 1;
                continue;
            }
            None => {
                out.push(u32::from(b'\\'));
                continue;
            }
        };
        i += 1;
        let value = text.get(i..i + count).and_then(hex_value).ok_or_else(|| {
            if count == 4 {
                "truncated \\uXXXX escape".to_owned()
            } else {
                "truncated \\UXXXXXXXX escape".to_owned()
            }
        })?;
        if value > 0x10ffff {
            return Err("\\Uxxxxxxxx out of range".to_owned());
        }
        out.push(value);
        i += count;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers() {
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"+12"), Some(12));
        assert_eq!(parse_i64(b"-"), None);
        assert_eq!(parse_i64(b"1 "), None);
        assert_eq!(parse_i64(b"010"), None);
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_index(b"18446744073709551615"), Ok(u64::MAX));
        assert!(parse_index(b"18446744073709551616").is_err());
        assert!(parse_index(b"-1").unwrap_err().contains("negative"));
    }

    #[test]
    fn floats() {
        assert_eq!(parse_float(b"1.5"), Ok(1.5));
        assert_eq!(parse_float(b"-inf"), Ok(f64::NEG_INFINITY));
        assert!(parse_float(b"nan").unwrap().is_nan());
        assert_eq!(parse_float(b"1e400"), Err(FloatError::Overflow));
        assert_eq!(parse_float(b"1_0"), Err(FloatError::Invalid));
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape_bytes(br"a\x41\101\n\q").unwrap(), b"aAA\n\\q");
        assert!(unescape_bytes(br"\x4").is_err());
        assert!(unescape_bytes(b"\\").is_err());
        assert_eq!(
            decode_raw_unicode_escape(br"\u00e9\U0001F600\ud800\x").unwrap(),
            vec![0xe9, 0x1f600, 0xd800, u32::from(b'\\'), u32::from(b'x')]
        );
        assert!(decode_raw_unicode_escape(br"\u12").is_err());
        assert!(decode_raw_unicode_escape(br"\U00110000").is_err());
    }
}
