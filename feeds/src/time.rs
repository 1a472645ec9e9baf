//! Venue timestamp text → ns since the Unix epoch, without allocation or floating point.

use ringbolt_market::time::days_from_civil;

use crate::decimal::{DecimalError, parse_u64};

fn digits(text: &[u8], at: usize, n: usize) -> Result<u32, DecimalError> {
    let part = text.get(at..at + n).ok_or(DecimalError::Invalid(at))?;
    let mut v = 0u32;
    for (i, &b) in part.iter().enumerate() {
        if !b.is_ascii_digit() {
            return Err(DecimalError::Invalid(at + i));
        }
        v = v * 10 + u32::from(b - b'0');
    }
    Ok(v)
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (fraction of 0 to 9 digits; more digits are
/// truncated to ns) into ns since the epoch. Coinbase's `0001-01-01T00:00:00Z` and epoch-zero
/// stamps yield 0 ("not provided"); so does any date before 1970.
///
/// # Errors
/// [`DecimalError::Invalid`] at the first offending byte.
pub fn iso8601_ns(text: &[u8]) -> Result<i64, DecimalError> {
    let year = digits(text, 0, 4)?;
    let month = digits(text, 5, 2)?;
    let day = digits(text, 8, 2)?;
    let hour = digits(text, 11, 2)?;
    let minute = digits(text, 14, 2)?;
    let second = digits(text, 17, 2)?;
    for (at, sep) in [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')] {
        if text.get(at) != Some(&sep) {
            return Err(DecimalError::Invalid(at));
        }
    }
    if !matches!(text.get(10), Some(b'T' | b' ')) {
        return Err(DecimalError::Invalid(10));
    }
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(DecimalError::Invalid(5));
    }
    let mut i = 19;
    let mut frac_ns: i64 = 0;
    if text.get(i) == Some(&b'.') {
        i += 1;
        let mut scale = 100_000_000i64;
        let start = i;
        while let Some(&b) = text.get(i) {
            if !b.is_ascii_digit() {
                break;
            }
            frac_ns += i64::from(b - b'0') * scale;
            scale /= 10;
            i += 1;
        }
        if i == start {
            return Err(DecimalError::Invalid(i));
        }
    }
    if text.get(i) != Some(&b'Z') || i + 1 != text.len() {
        return Err(DecimalError::Invalid(i));
    }
    if year < 1970 {
        // Coinbase's `0001-01-01T00:00:00Z` placeholder: not provided.
        return Ok(0);
    }
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
    secs.checked_mul(1_000_000_000)
        .and_then(|ns| ns.checked_add(frac_ns))
        .ok_or(DecimalError::Overflow)
}

/// Milliseconds text (string or number) → ns.
///
/// # Errors
/// As [`parse_u64`], or overflow past i64 ns.
pub fn ms_text_ns(text: &[u8]) -> Result<i64, DecimalError> {
    let ms = parse_u64(text)?;
    i64::try_from(ms)
        .ok()
        .and_then(|v| v.checked_mul(1_000_000))
        .ok_or(DecimalError::Overflow)
}

/// Microseconds text → ns.
///
/// # Errors
/// As [`ms_text_ns`].
pub fn us_text_ns(text: &[u8]) -> Result<i64, DecimalError> {
    let us = parse_u64(text)?;
    i64::try_from(us)
        .ok()
        .and_then(|v| v.checked_mul(1_000))
        .ok_or(DecimalError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso() {
        assert_eq!(iso8601_ns(b"1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            iso8601_ns(b"2021-06-02T09:02:09.048568Z"),
            Ok(1_622_624_529_048_568_000)
        );
        assert_eq!(
            iso8601_ns(b"2023-06-23T20:31:26.122969572Z"),
            Ok(1_687_552_286_122_969_572)
        );
        assert_eq!(iso8601_ns(b"0001-01-01T00:00:00.000000Z"), Ok(0));
        assert!(iso8601_ns(b"2021-06-02T09:02:09.Z").is_err());
        assert!(iso8601_ns(b"2021-06-02").is_err());
        assert!(iso8601_ns(b"2021-13-02T09:02:09Z").is_err());
    }
}
