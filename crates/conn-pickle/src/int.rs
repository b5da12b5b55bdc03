//! `BigInt`: a Python `int` beyond 64 bits, kept as pickle keeps it (little-endian two's
//! complement, shortest form), with the few operations the codec needs. Written here rather than
//! taken from a bignum crate: the codec needs only conversion to and from pickle's byte form,
//! decimal text and `i128`, and must bound the cost of each by the input size.

use std::fmt;
use std::sync::Arc;

/// Decimal digits above which `Display` prints hexadecimal instead: CPython's own limit on
/// int-to-text conversion (`sys.get_int_max_str_digits()`, 4300), so printing stays cheap.
pub const MAX_DECIMAL_DIGITS: usize = 4300;

/// A Python `int` of any size. [`Value::Int`](crate::Value::Int) holds those that fit in `i64`;
/// this holds the rest (it can hold small ones too, but the decoder never makes such).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BigInt {
    /// Little-endian two's complement, shortest form (pickle's `LONG1` payload); never empty.
    le: Arc<[u8]>,
}

impl BigInt {
    /// From little-endian two's-complement bytes (pickle's `LONG1` / `LONG4` payload). Empty
    /// bytes are zero, as in pickle.
    pub fn from_signed_le_bytes(bytes: &[u8]) -> Self {
        Self {
            le: shortest(bytes).into(),
        }
    }

    /// The little-endian two's-complement bytes, shortest form (at least one byte).
    pub fn to_signed_le_bytes(&self) -> &[u8] {
        &self.le
    }

    /// From an `i128`.
    pub fn from_i128(v: i128) -> Self {
        Self::from_signed_le_bytes(&v.to_le_bytes())
    }

    /// From a `u128`.
    pub fn from_u128(v: u128) -> Self {
        let mut bytes = v.to_le_bytes().to_vec();
        bytes.push(0);
        Self::from_signed_le_bytes(&bytes)
    }

    /// The value as `i64`, if it fits.
    pub fn to_i64(&self) -> Option<i64> {
        let v = self.to_i128()?;
        i64::try_from(v).ok()
    }

    /// The value as `i128`, if it fits.
    pub fn to_i128(&self) -> Option<i128> {
        if self.le.len() > 16 {
            return None;
        }
        let fill = if self.is_negative() { 0xff } else { 0 };
        let mut buf = [fill; 16];
        buf[..self.le.len()].copy_from_slice(&self.le);
        Some(i128::from_le_bytes(buf))
    }

    /// The value as `u128`, if it fits.
    pub fn to_u128(&self) -> Option<u128> {
        if self.is_negative() {
            return None;
        }
        let le = match self.le.len() {
            0..=16 => &self.le[..],
            17 if self.le[16] == 0 => &self.le[..16],
            _ => return None,
        };
        let mut buf = [0u8; 16];
        buf[..le.len()].copy_from_slice(le);
        Some(u128::from_le_bytes(buf))
    }

    /// Whether it is below zero.
    pub fn is_negative(&self) -> bool {
        self.le.last().is_some_and(|b| b & 0x80 != 0)
    }

    /// Size in bits of the magnitude (Python's `int.bit_length()`).
    pub fn bit_length(&self) -> u64 {
        let mag = self.magnitude_limbs();
        match mag.iter().rposition(|&l| l != 0) {
            None => 0,
            Some(top) => top as u64 * 32 + u64::from(32 - mag[top].leading_zeros()),
        }
    }

    /// Parses optionally signed decimal digits (`"-123"`), as pickle's text `INT` / `LONG`
    /// carry them. Cost is quadratic in the number of digits; callers bound that number
    /// (the decoder refuses more than [`Limits::max_int_digits`](crate::Limits::max_int_digits)).
    pub fn parse_decimal(text: &str) -> Option<Self> {
        let (negative, digits) = match text.as_bytes().first()? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut limbs: Vec<u32> = vec![0];
        let bytes = digits.as_bytes();
        let head = bytes.len() % 9;
        let mut chunks: Vec<&[u8]> = Vec::with_capacity(bytes.len() / 9 + 1);
        if head > 0 {
            chunks.push(&bytes[..head]);
        }
        chunks.extend(bytes[head..].chunks(9));
        for chunk in chunks {
            let mut add: u64 = chunk.iter().fold(0, |a, &d| a * 10 + u64::from(d - b'0'));
            let mul = 10u64.pow(chunk.len() as u32);
            for limb in &mut limbs {
                let v = u64::from(*limb) * mul + add;
                *limb = v as u32;
                add = v >> 32;
            }
            if add > 0 {
                limbs.push(add as u32);
            }
        }
        Some(Self::from_magnitude(negative, &limbs))
    }

    fn from_magnitude(negative: bool, limbs: &[u32]) -> Self {
        let mut bytes: Vec<u8> = limbs.iter().flat_map(|l| l.to_le_bytes()).collect();
        bytes.push(0);
        if negative {
            negate(&mut bytes);
        }
        Self::from_signed_le_bytes(&bytes)
    }

    fn magnitude_limbs(&self) -> Vec<u32> {
        let mut bytes = self.le.to_vec();
        if self.is_negative() {
            bytes.push(0xff);
            negate(&mut bytes);
        }
        bytes
            .chunks(4)
            .map(|c| {
                let mut b = [0u8; 4];
                b[..c.len()].copy_from_slice(c);
                u32::from_le_bytes(b)
            })
            .collect()
    }

    /// Decimal text, or `None` above [`MAX_DECIMAL_DIGITS`] digits.
    pub fn to_decimal(&self) -> Option<String> {
        // 4300 digits need at most 14 285 bits.
        if self.bit_length() > 14_290 {
            return None;
        }
        let mut limbs = self.magnitude_limbs();
        let mut groups = Vec::new();
        while limbs.iter().any(|&l| l != 0) {
            let mut rem = 0u64;
            for limb in limbs.iter_mut().rev() {
                let cur = (rem << 32) | u64::from(*limb);
                *limb = (cur / 1_000_000_000) as u32;
                rem = cur % 1_000_000_000;
            }
            groups.push(rem as u32);
            while limbs.len() > 1 && limbs.last() == Some(&0) {
                limbs.pop();
            }
        }
        let mut out = String::new();
        if self.is_negative() {
            out.push('-');
        }
        match groups.split_last() {
            None => out.push('0'),
            Some((top, rest)) => {
                out.push_str(&top.to_string());
                for g in rest.iter().rev() {
                    out.push_str(&format!("{g:09}"));
                }
            }
        }
        (out.trim_start_matches('-').len() <= MAX_DECIMAL_DIGITS).then_some(out)
    }

    fn to_hex(&self) -> String {
        let limbs = self.magnitude_limbs();
        let mut out = String::from(if self.is_negative() { "-0x" } else { "0x" });
        let mut started = false;
        for limb in limbs.iter().rev() {
            if started {
                out.push_str(&format!("{limb:08x}"));
            } else if *limb != 0 {
                out.push_str(&format!("{limb:x}"));
                started = true;
            }
        }
        if !started {
            out.push('0');
        }
        out
    }
}

/// Two's-complement negation in place (little-endian).
fn negate(bytes: &mut [u8]) {
    let mut carry = true;
    for b in bytes {
        let (v, c) = (!*b).overflowing_add(u8::from(carry));
        *b = v;
        carry = c;
    }
}

/// Drops redundant sign bytes; empty becomes `[0]`.
fn shortest(bytes: &[u8]) -> Vec<u8> {
    let len = shortest_len(bytes);
    if len == 0 {
        vec![0]
    } else {
        bytes[..len].to_vec()
    }
}

/// How many of `bytes` (little-endian two's complement) the shortest form keeps (0 for none).
pub(crate) fn shortest_len(bytes: &[u8]) -> usize {
    let mut len = bytes.len();
    while len > 1 {
        let top = bytes[len - 1];
        let next_sign = bytes[len - 2] & 0x80;
        if (top == 0 && next_sign == 0) || (top == 0xff && next_sign != 0) {
            len -= 1;
        } else {
            break;
        }
    }
    len
}

impl fmt::Display for BigInt {
    /// Decimal, as Python prints an int; hexadecimal (`0x…`) above 4300 digits, where CPython's
    /// `repr` refuses.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_decimal() {
            Some(text) => f.write_str(&text),
            None => f.write_str(&self.to_hex()),
        }
    }
}

impl fmt::Debug for BigInt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BigInt({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn i128_round_trips_through_bytes_and_text() {
        for v in [
            0i128,
            1,
            -1,
            127,
            128,
            -128,
            -129,
            255,
            256,
            i64::MAX as i128 + 1,
            i128::MAX,
            i128::MIN,
        ] {
            let b = BigInt::from_i128(v);
            assert_eq!(b.to_i128(), Some(v), "{v}");
            assert_eq!(b.to_string(), v.to_string());
            assert_eq!(BigInt::parse_decimal(&v.to_string()).unwrap(), b);
        }
        assert_eq!(BigInt::from_i128(0).to_signed_le_bytes(), &[0]);
        assert_eq!(BigInt::from_i128(255).to_signed_le_bytes(), &[0xff, 0]);
        assert_eq!(BigInt::from_i128(-256).to_signed_le_bytes(), &[0, 0xff]);
        assert_eq!(BigInt::from_u128(u128::MAX).to_u128(), Some(u128::MAX));
        assert_eq!(BigInt::from_i128(-1).to_u128(), None);
    }

    #[test]
    fn big_decimal_text() {
        let text = format!("-{}", "9".repeat(100));
        let b = BigInt::parse_decimal(&text).unwrap();
        assert_eq!(b.to_string(), text);
        assert!(b.is_negative());
        assert_eq!(BigInt::parse_decimal("2").unwrap().bit_length(), 2);
        assert!(BigInt::parse_decimal("").is_none());
        assert!(BigInt::parse_decimal("-").is_none());
        assert!(BigInt::parse_decimal("1x").is_none());
        // 2**70 (pickle.dumps(2**70, 2) payload).
        let b = BigInt::from_signed_le_bytes(&[0, 0, 0, 0, 0, 0, 0, 0, 0x40]);
        assert_eq!(b.to_string(), "1180591620717411303424");
    }

    #[test]
    fn over_4300_digits_prints_hex() {
        let mut bytes = vec![0u8; 2000];
        bytes[1999] = 0x01;
        let b = BigInt::from_signed_le_bytes(&bytes);
        assert!(b.to_decimal().is_none());
        assert!(b.to_string().starts_with("0x1000"));
    }
}
