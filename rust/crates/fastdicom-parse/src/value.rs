//! Decoding of the simple VRs: ASCII text, numbers and tags (PS3.5 6.2).
//!
//! This is a fast path, not the reference: [`decode_simple`] answers only
//! when the value is plain (printable ASCII and NUL, numbers whose length is a
//! multiple of their size, DS and IS in their strict grammar) and returns
//! `None` otherwise, so that the caller decodes the value its general way.
//! Where it answers, it gives what `fastdicom.dataset.values` gives: the same
//! stripping of padding, the same splitting on backslash, a single value for
//! VM 1 and a list otherwise, `None` for an empty number and `""` for empty
//! text.

/// One decoded value (of a multi-valued element, or the whole of a single-valued one).
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar<'a> {
    Text(&'a str),
    Int(i64),
    UInt(u64),
    Float(f64),
    /// A DS value: the number and the text it was read from (spaces stripped).
    Decimal(f64, &'a str),
    /// An IS value: the number and the text it was read from (spaces stripped).
    Integer(i64, &'a str),
}

/// A decoded element value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    /// The empty value of a non-text VR.
    Null,
    One(Scalar<'a>),
    Many(Vec<Scalar<'a>>),
}

fn one_or_many(mut v: Vec<Scalar<'_>>) -> Value<'_> {
    if v.len() == 1 {
        Value::One(v.swap_remove(0))
    } else {
        Value::Many(v)
    }
}

/// The raw bytes as `&str` when every byte is printable ASCII or NUL.
fn plain(raw: &[u8]) -> Option<&str> {
    if raw.iter().all(|&b| b == 0 || (0x20..0x7F).contains(&b)) {
        std::str::from_utf8(raw).ok()
    } else {
        None
    }
}

fn split_text(s: &str) -> Value<'_> {
    if s.contains('\\') {
        Value::Many(s.split('\\').map(Scalar::Text).collect())
    } else {
        Value::One(Scalar::Text(s))
    }
}

/// `[+-]?digits`.
fn is_integer(t: &str) -> bool {
    let d = t.strip_prefix(['+', '-']).unwrap_or(t);
    !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
}

/// `[+-]?(digits[.digits?]|.digits)([eE][+-]?digits)?`.
fn is_decimal(t: &str) -> bool {
    let b = t.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut digits = i - int_start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        digits += i - frac_start;
    }
    if digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let exp_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return false;
        }
    }
    i == b.len()
}

/// One DS or IS value; `None` when it is outside the strict grammar.
fn number_text(s: &str, integer: bool) -> Option<Scalar<'_>> {
    let t = s.trim_matches(' ');
    if t.is_empty() {
        return Some(Scalar::Text(""));
    }
    if integer {
        if is_integer(t) {
            return t.parse::<i64>().ok().map(|x| Scalar::Integer(x, t));
        }
        None
    } else if is_decimal(t) {
        t.parse::<f64>().ok().map(|x| Scalar::Decimal(x, t))
    } else {
        None
    }
}

fn number_strings(s: &str, integer: bool) -> Option<Value<'_>> {
    if !s.contains('\\') {
        return number_text(s, integer).map(Value::One);
    }
    s.trim_matches(' ')
        .split('\\')
        .map(|v| number_text(v, integer))
        .collect::<Option<Vec<_>>>()
        .map(Value::Many)
}

fn binary<const N: usize>(
    raw: &[u8],
    f: impl Fn([u8; N]) -> Scalar<'static>,
) -> Option<Value<'static>> {
    if !raw.len().is_multiple_of(N) {
        return None;
    }
    let v: Vec<Scalar<'static>> = raw
        .chunks_exact(N)
        .map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            f(a)
        })
        .collect();
    Some(one_or_many(v))
}

macro_rules! num {
    ($raw:expr, $little:expr, $t:ty, $variant:ident, $as:ty) => {
        binary::<{ std::mem::size_of::<$t>() }>($raw, |a| {
            let x = if $little {
                <$t>::from_le_bytes(a)
            } else {
                <$t>::from_be_bytes(a)
            };
            Scalar::$variant(x as $as)
        })
    };
}

/// Decode `raw`, the value of an element of VR `vr`, when it is simple.
///
/// Returns `None` for VRs outside the fast path (character-set text, bytes,
/// SQ, UN, an unknown or implicit VR) and for values it does not take on:
/// bytes outside printable ASCII and NUL, DS or IS outside their grammar, or
/// a binary length that is not a multiple of the value size.
pub fn decode_simple<'a>(vr: [u8; 2], raw: &'a [u8], little: bool) -> Option<Value<'a>> {
    let text_vr = matches!(
        &vr,
        b"UI" | b"DA" | b"DT" | b"TM" | b"AS" | b"CS" | b"AE" | b"UR"
    );
    let number_vr = matches!(
        &vr,
        b"US" | b"SS" | b"UL" | b"SL" | b"FL" | b"FD" | b"UV" | b"SV" | b"AT" | b"DS" | b"IS"
    );
    if raw.is_empty() {
        return if text_vr {
            Some(Value::One(Scalar::Text("")))
        } else if number_vr {
            Some(Value::Null)
        } else {
            None
        };
    }
    match &vr {
        b"US" => num!(raw, little, u16, Int, i64),
        b"SS" => num!(raw, little, i16, Int, i64),
        b"UL" => num!(raw, little, u32, Int, i64),
        b"SL" => num!(raw, little, i32, Int, i64),
        b"UV" => num!(raw, little, u64, UInt, u64),
        b"SV" => num!(raw, little, i64, Int, i64),
        b"FL" => num!(raw, little, f32, Float, f64),
        b"FD" => num!(raw, little, f64, Float, f64),
        b"AT" => binary::<4>(raw, |a| {
            let (g, e) = if little {
                (
                    u16::from_le_bytes([a[0], a[1]]),
                    u16::from_le_bytes([a[2], a[3]]),
                )
            } else {
                (
                    u16::from_be_bytes([a[0], a[1]]),
                    u16::from_be_bytes([a[2], a[3]]),
                )
            };
            Scalar::Int(i64::from(u32::from(g) << 16 | u32::from(e)))
        }),
        b"DS" | b"IS" => {
            let s = plain(raw)?;
            // NUL is not padding for DS and IS: leave such values to the general path.
            if s.contains('\0') {
                return None;
            }
            number_strings(s, vr == *b"IS")
        }
        b"UI" | b"DA" | b"DT" | b"TM" | b"AS" | b"CS" => {
            Some(split_text(plain(raw)?.trim_end_matches([' ', '\0'])))
        }
        b"AE" => {
            let s = plain(raw)?;
            Some(one_or_many(
                s.split('\\')
                    .map(|v| Scalar::Text(v.trim_matches(' ')))
                    .collect(),
            ))
        }
        b"UR" => Some(Value::One(Scalar::Text(plain(raw)?.trim_end_matches(' ')))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Value<'_> {
        Value::One(Scalar::Text(s))
    }

    #[test]
    fn text_vrs_strip_and_split() {
        assert_eq!(decode_simple(*b"UI", b"1.2.3\0", true), Some(text("1.2.3")));
        assert_eq!(
            decode_simple(*b"CS", b"A\\B ", true),
            Some(Value::Many(vec![Scalar::Text("A"), Scalar::Text("B")]))
        );
        assert_eq!(decode_simple(*b"AE", b" AE1 ", true), Some(text("AE1")));
        // AE strips spaces only: NUL stays, as str.strip() leaves it.
        assert_eq!(decode_simple(*b"AE", b"A\0", true), Some(text("A\0")));
        assert_eq!(
            decode_simple(*b"UR", b"http://x \0", true),
            Some(text("http://x \0"))
        );
        assert_eq!(decode_simple(*b"CS", b"\xe9", true), None);
        assert_eq!(decode_simple(*b"CS", b"A\tB", true), None);
        assert_eq!(decode_simple(*b"LO", b"A", true), None);
        assert_eq!(decode_simple(*b"CS", b"", true), Some(text("")));
    }

    #[test]
    fn number_strings() {
        assert_eq!(
            decode_simple(*b"DS", b"1.5 ", true),
            Some(Value::One(Scalar::Decimal(1.5, "1.5")))
        );
        assert_eq!(
            decode_simple(*b"DS", b"-1\\.5\\2.\\1e3", true),
            Some(Value::Many(vec![
                Scalar::Decimal(-1.0, "-1"),
                Scalar::Decimal(0.5, ".5"),
                Scalar::Decimal(2.0, "2."),
                Scalar::Decimal(1000.0, "1e3")
            ]))
        );
        assert_eq!(
            decode_simple(*b"DS", b"1\\\\2", true)
                .map(|v| matches!(v, Value::Many(ref m) if m[1] == Scalar::Text(""))),
            Some(true)
        );
        assert_eq!(decode_simple(*b"DS", b"nan", true), None);
        assert_eq!(decode_simple(*b"DS", b"1_0", true), None);
        assert_eq!(decode_simple(*b"DS", b"1e", true), None);
        assert_eq!(decode_simple(*b"DS", b".", true), None);
        assert_eq!(decode_simple(*b"DS", b"  ", true), Some(text("")));
        assert_eq!(decode_simple(*b"DS", b"", true), Some(Value::Null));
        assert_eq!(
            decode_simple(*b"IS", b"+07 ", true),
            Some(Value::One(Scalar::Integer(7, "+07")))
        );
        assert_eq!(decode_simple(*b"IS", b"1.0", true), None);
        assert_eq!(decode_simple(*b"IS", b"99999999999999999999", true), None);
        assert_eq!(decode_simple(*b"IS", b"1\0", true), None);
    }

    #[test]
    fn binary_numbers() {
        assert_eq!(
            decode_simple(*b"US", &[1, 0], true),
            Some(Value::One(Scalar::Int(1)))
        );
        assert_eq!(
            decode_simple(*b"US", &[1, 0], false),
            Some(Value::One(Scalar::Int(256)))
        );
        assert_eq!(
            decode_simple(*b"SS", &[0xFF, 0xFF, 2, 0], true),
            Some(Value::Many(vec![Scalar::Int(-1), Scalar::Int(2)]))
        );
        assert_eq!(decode_simple(*b"US", &[1], true), None);
        assert_eq!(
            decode_simple(*b"UV", &[0xFF; 8], true),
            Some(Value::One(Scalar::UInt(u64::MAX)))
        );
        assert_eq!(
            decode_simple(*b"FL", &1.5f32.to_le_bytes(), true),
            Some(Value::One(Scalar::Float(1.5)))
        );
        assert_eq!(
            decode_simple(*b"AT", &[0x10, 0, 0x20, 0], true),
            Some(Value::One(Scalar::Int(0x0010_0020)))
        );
        assert_eq!(decode_simple(*b"US", &[], true), Some(Value::Null));
    }
}
