//! Exact decimal text → fixed-point integer conversion, never through `f64`.
//!
//! Venues send prices and sizes as decimal text (`"95000.12345678"`, `".48"`, `"1E-8"`,
//! `0.00100000`). [`parse_fixed_i64`] turns such text into an integer scaled by `10^scale`
//! exactly, or fails with a precise error: a digit that cannot be represented at the scale is a
//! [`DecimalError::Precision`] error (never silently rounded), a value that does not fit is
//! [`DecimalError::Overflow`]. [`format_fixed`] renders a scaled integer back as exact decimal
//! text.

use thiserror::Error;

/// Why a decimal text could not be converted.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum DecimalError {
    /// The text holds no digit at all (`""`, `"-"`, `"."`).
    #[error("empty decimal")]
    Empty,
    /// A byte that is not part of a decimal number, at this offset.
    #[error("invalid byte at offset {0} in decimal")]
    Invalid(usize),
    /// The value does not fit the target integer at the requested scale.
    #[error("decimal overflows the fixed-point range")]
    Overflow,
    /// The value has non-zero digits below the requested scale.
    #[error("decimal has more precision than the fixed-point scale")]
    Precision,
}

/// Largest exponent magnitude accepted in `e`/`E` notation.
const MAX_EXPONENT: i32 = 400;

/// Powers of ten that fit a `u64`.
const POW10_U64: [u64; 20] = {
    let mut t = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// Eight ASCII bytes (little-endian load) that are all `'0'`.
const ZEROS8: u64 = u64::from_le_bytes(*b"00000000");

/// SWAR: how many of the eight bytes of `v` (a little-endian load), from the first, are ASCII
/// digits before the first non-digit (8 if all are). Exact: an add that carries out of a byte
/// (a byte ≥ 0xFA, itself a non-digit) only disturbs the bytes after it.
#[inline(always)]
pub(crate) const fn digit_run8(v: u64) -> u32 {
    // A digit byte becomes 0x33 (its high nibble, and the high nibble of itself + 6).
    let t = (v & 0xF0F0_F0F0_F0F0_F0F0)
        | ((v.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) >> 4);
    let x = t ^ 0x3333_3333_3333_3333;
    // The high bit of every non-zero byte of `x` (a non-digit).
    let m = (((x & 0x7F7F_7F7F_7F7F_7F7F).wrapping_add(0x7F7F_7F7F_7F7F_7F7F)) | x)
        & 0x8080_8080_8080_8080;
    m.trailing_zeros() / 8
}

/// The eight bytes at `buf[i..i + 8]` as a little-endian word, if there are eight.
#[inline(always)]
pub(crate) fn load8(buf: &[u8], i: usize) -> Option<u64> {
    let chunk: [u8; 8] = buf.get(i..i.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(chunk))
}

/// What the fast scan read: `[-]digits[.digits]` as an integer mantissa (every digit, at most
/// 19 of them) and the number of fraction digits in it.
#[derive(Clone, Copy, Debug)]
struct Scanned {
    negative: bool,
    mantissa: u64,
    frac_digits: u32,
    /// Offset just past the last byte of the number.
    end: usize,
}

/// SWAR: whether all eight bytes of `v` (a little-endian load) are ASCII digits.
#[inline(always)]
const fn all_digits8(v: u64) -> bool {
    // A digit byte is 0x3_ with a low nibble ≤ 9, i.e. adding 6 keeps the high nibble at 3. A
    // byte ≥ 0xFA carries into its neighbour, but its own high nibble already fails the test.
    (v & 0xF0F0_F0F0_F0F0_F0F0)
        | ((v.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) >> 4)
        == 0x3333_3333_3333_3333
}

/// SWAR: the value of eight ASCII digits (little-endian load: the first digit is the low byte).
#[inline(always)]
const fn parse_digits8(v: u64) -> u64 {
    let v = v.wrapping_sub(ZEROS8);
    // Adjacent digit pairs, then pairs of pairs, then the halves (three multiplies in all).
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    let lo = (v & 0x0000_00FF_0000_00FF).wrapping_mul(100 + (1_000_000 << 32));
    let hi = ((v >> 16) & 0x0000_00FF_0000_00FF).wrapping_mul(1 + (10_000 << 32));
    lo.wrapping_add(hi) >> 32
}

/// The digits at `buf[i..]` accumulated onto `m` (`m * 10^n + value`, wrapping): eight at a
/// time while eight are digits (SWAR), then one at a time. Returns the new `m` and the offset
/// of the first non-digit.
#[inline(always)]
fn digits_onto(buf: &[u8], mut i: usize, mut m: u64) -> (u64, usize) {
    while let Some(v) = load8(buf, i) {
        if all_digits8(v) {
            m = m.wrapping_mul(100_000_000).wrapping_add(parse_digits8(v));
            i += 8;
            continue;
        }
        // A non-digit among these eight bytes: the digits before it, from the word itself (no
        // bounds checks; the non-digit ends the loop within the word).
        let mut w = v;
        loop {
            let d = (w as u8).wrapping_sub(b'0');
            if d > 9 {
                return (m, i);
            }
            m = m.wrapping_mul(10).wrapping_add(u64::from(d));
            w >>= 8;
            i += 1;
        }
    }
    while let Some(&b) = buf.get(i) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        m = m.wrapping_mul(10).wrapping_add(u64::from(d));
        i += 1;
    }
    (m, i)
}

/// Scans `[-]digits[.digits]` starting at `buf[i]`, stopping at the first byte that cannot
/// continue the number. `None` when the text has no digit, or more than 19 digits (then its
/// mantissa might not fit a `u64`: the general path decides).
#[inline(always)]
fn scan_fast(buf: &[u8], mut i: usize) -> Option<Scanned> {
    let negative = buf.get(i) == Some(&b'-');
    i += usize::from(negative);
    let first_digit = i;
    // Up to 19 digits cannot overflow a `u64`: the digit count is checked once at the end and
    // the digits are accumulated with plain (wrapping) arithmetic, a short dependency chain.
    let (mut m, end) = digits_onto(buf, i, 0);
    i = end;
    let mut digits = i - first_digit;
    let mut frac_digits = 0u32;
    if buf.get(i) == Some(&b'.') {
        let (frac, end) = digits_onto(buf, i + 1, m);
        let n = end - (i + 1);
        m = frac;
        i = end;
        digits += n;
        // At most 19 when used (checked below).
        frac_digits = n as u32;
    }
    if digits == 0 || digits > 19 {
        return None;
    }
    Some(Scanned {
        negative,
        mantissa: m,
        frac_digits,
        end: i,
    })
}

/// Scales a scanned mantissa to `10^scale`: `None` when the powers involved leave the `u64`
/// table (the general path decides), a precision error when digits fall below the scale.
#[inline(always)]
fn scale_scanned(s: Scanned, scale: u32) -> Option<Result<(bool, u128), DecimalError>> {
    if s.frac_digits <= scale {
        let p = *POW10_U64.get((scale - s.frac_digits) as usize)?;
        Some(Ok((s.negative, u128::from(s.mantissa) * u128::from(p))))
    } else {
        let d = *POW10_U64.get((s.frac_digits - scale) as usize)?;
        if !s.mantissa.is_multiple_of(d) {
            return Some(Err(DecimalError::Precision));
        }
        Some(Ok((s.negative, u128::from(s.mantissa / d))))
    }
}

/// The common case (`[-]digits[.digits]`, at most 19 digits, no exponent); `None` sends
/// anything else to the general path, which gives the same result for everything the fast path
/// accepts (a property test checks this).
#[inline]
fn parse_fast(text: &[u8], scale: u32) -> Option<Result<(bool, u128), DecimalError>> {
    let s = scan_fast(text, 0)?;
    if s.end != text.len() {
        return None;
    }
    scale_scanned(s, scale)
}

/// Fixed-point value of the decimal starting at `buf[start]` when it is in the fast path's
/// shape and is followed by `terminator` (the closing quote of a JSON string): the value (or
/// its precision / overflow error) and the offset of the terminator. `None` = not in that
/// shape; the caller takes the general path. Used by the lexer to convert a quoted price in
/// the same pass that finds its end.
#[inline]
pub(crate) fn fast_i64_until(
    buf: &[u8],
    start: usize,
    terminator: u8,
    scale: u32,
) -> Option<(Result<i64, DecimalError>, usize)> {
    let s = scan_fast(buf, start)?;
    if buf.get(s.end) != Some(&terminator) {
        return None;
    }
    let value =
        scale_scanned(s, scale)?.and_then(|(negative, magnitude)| to_i64(negative, magnitude));
    Some((value, s.end))
}

/// [`fast_i64_until`] when it converts without error: the value and the terminator's offset.
/// `None` for everything else (another shape, or a precision / overflow error, or `-2^63`),
/// which the caller hands to [`fast_i64_until`] or the general path: they give this value
/// whenever this gives one, and report the errors. No error value is carried, so the row
/// readers of the lexer can keep plain integers.
#[inline]
pub(crate) fn fast_i64_until_ok(
    buf: &[u8],
    start: usize,
    terminator: u8,
    scale: u32,
) -> Option<(i64, usize)> {
    let s = scan_fast(buf, start)?;
    if buf.get(s.end) != Some(&terminator) || s.frac_digits > scale {
        return None;
    }
    let p = *POW10_U64.get((scale - s.frac_digits) as usize)?;
    let magnitude = i64::try_from(s.mantissa.checked_mul(p)?).ok()?;
    Some((if s.negative { -magnitude } else { magnitude }, s.end))
}

/// [`fast_i64_until`] for a JSON number (unquoted): `[-]digits[.digits]` ending where a JSON
/// number ends (not before `.`, an exponent or a digit, nor right after a `.`). `None` when the
/// text has another shape (then the lexer's number path and the general parser decide).
#[inline]
pub(crate) fn fast_number_i64(
    buf: &[u8],
    start: usize,
    scale: u32,
) -> Option<(Result<i64, DecimalError>, usize)> {
    let negative = buf.get(start) == Some(&b'-');
    if !buf
        .get(start + usize::from(negative))
        .is_some_and(u8::is_ascii_digit)
    {
        return None;
    }
    let s = scan_fast(buf, start)?;
    if matches!(buf.get(s.end), Some(b'.' | b'e' | b'E' | b'0'..=b'9'))
        || buf.get(s.end.wrapping_sub(1)) == Some(&b'.')
    {
        return None;
    }
    let value =
        scale_scanned(s, scale)?.and_then(|(negative, magnitude)| to_i64(negative, magnitude));
    Some((value, s.end))
}

/// Reference implementation for tests: the general path alone.
#[doc(hidden)]
pub fn parse_fixed_i64_general(text: &[u8], scale: u32) -> Result<i64, DecimalError> {
    let (negative, magnitude) = parse_general(text, scale)?;
    to_i64(negative, magnitude)
}

/// Parses decimal text (optional sign, digits, optional `.` fraction, optional `e`/`E`
/// exponent) into its magnitude scaled by `10^scale` and its sign.
#[inline]
fn parse_scaled(text: &[u8], scale: u32) -> Result<(bool, u128), DecimalError> {
    match parse_fast(text, scale) {
        Some(r) => r,
        None => parse_general(text, scale),
    }
}

/// The general path of [`parse_scaled`]: any length, exponents, deferred zeros.
fn parse_general(text: &[u8], scale: u32) -> Result<(bool, u128), DecimalError> {
    let mut i = 0;
    let negative = match text.first() {
        Some(b'-') => {
            i = 1;
            true
        }
        Some(b'+') => {
            i = 1;
            false
        }
        _ => false,
    };
    let mut mantissa: u128 = 0;
    // Zero digits seen but not yet multiplied in: trailing fraction zeros never overflow.
    let mut pending_zeros: u32 = 0;
    let mut frac_digits: i32 = 0;
    let mut digits = 0usize;
    let mut seen_dot = false;
    while i < text.len() {
        let b = text[i];
        match b {
            b'0'..=b'9' => {
                digits += 1;
                if seen_dot {
                    frac_digits = frac_digits.saturating_add(1);
                }
                if b == b'0' {
                    if mantissa != 0 {
                        pending_zeros += 1;
                        if pending_zeros > 60 {
                            // Only acceptable if they turn out to be trailing fraction zeros;
                            // an integer part this long overflows anyway.
                            if !seen_dot {
                                return Err(DecimalError::Overflow);
                            }
                        }
                    }
                } else {
                    while pending_zeros > 0 {
                        mantissa = mantissa.checked_mul(10).ok_or(DecimalError::Overflow)?;
                        pending_zeros -= 1;
                    }
                    mantissa = mantissa
                        .checked_mul(10)
                        .and_then(|m| m.checked_add(u128::from(b - b'0')))
                        .ok_or(DecimalError::Overflow)?;
                }
            }
            b'.' if !seen_dot => seen_dot = true,
            b'e' | b'E' => break,
            _ => return Err(DecimalError::Invalid(i)),
        }
        i += 1;
    }
    if digits == 0 {
        return Err(if i < text.len() {
            DecimalError::Invalid(i)
        } else {
            DecimalError::Empty
        });
    }
    let mut exponent: i32 = 0;
    if i < text.len() {
        // At an `e`/`E`.
        i += 1;
        let mut exp_negative = false;
        match text.get(i) {
            Some(b'-') => {
                exp_negative = true;
                i += 1;
            }
            Some(b'+') => i += 1,
            _ => {}
        }
        let start = i;
        while i < text.len() {
            let b = text[i];
            if !b.is_ascii_digit() {
                return Err(DecimalError::Invalid(i));
            }
            exponent = (exponent * 10 + i32::from(b - b'0')).min(MAX_EXPONENT);
            i += 1;
        }
        if i == start {
            return Err(DecimalError::Invalid(i.min(text.len().saturating_sub(1))));
        }
        if exp_negative {
            exponent = -exponent;
        }
    }
    if mantissa == 0 {
        return Ok((negative, 0));
    }
    // Value = (mantissa * 10^pending_zeros) * 10^(exponent - frac_digits); scaled by 10^scale.
    let shift =
        i64::from(pending_zeros) + i64::from(exponent) - i64::from(frac_digits) + i64::from(scale);
    if shift > 39 {
        return Err(DecimalError::Overflow);
    }
    if shift < -39 {
        // A non-zero mantissa below 2^128 is never a multiple of 10^40.
        return Err(DecimalError::Precision);
    }
    if shift >= 0 {
        for _ in 0..shift {
            mantissa = mantissa.checked_mul(10).ok_or(DecimalError::Overflow)?;
        }
    } else {
        for _ in 0..(-shift) {
            if !mantissa.is_multiple_of(10) {
                return Err(DecimalError::Precision);
            }
            mantissa /= 10;
        }
    }
    Ok((negative, mantissa))
}

/// Parses decimal text into an `i64` scaled by `10^scale` (e.g. scale 8 for
/// [`ringbolt_bus::PRICE_SCALE`]).
///
/// # Errors
/// [`DecimalError`] for text that is not a decimal, does not fit, or has digits below the scale.
pub fn parse_fixed_i64(text: &[u8], scale: u32) -> Result<i64, DecimalError> {
    let (negative, magnitude) = parse_scaled(text, scale)?;
    to_i64(negative, magnitude)
}

/// A sign and magnitude as `i64` (`-2^63` included).
#[inline(always)]
fn to_i64(negative: bool, magnitude: u128) -> Result<i64, DecimalError> {
    if negative {
        if magnitude > u128::from(i64::MAX as u64) + 1 {
            return Err(DecimalError::Overflow);
        }
        // Cannot overflow: magnitude <= 2^63.
        Ok((magnitude as i128).wrapping_neg() as i64)
    } else {
        i64::try_from(magnitude).map_err(|_| DecimalError::Overflow)
    }
}

/// Parses decimal text into an `i128` scaled by `10^scale` (e.g. 18 for Chainlink values).
///
/// # Errors
/// [`DecimalError`] for text that is not a decimal, does not fit, or has digits below the scale.
pub fn parse_fixed_i128(text: &[u8], scale: u32) -> Result<i128, DecimalError> {
    let (negative, magnitude) = parse_scaled(text, scale)?;
    if negative {
        if magnitude > i128::MAX as u128 + 1 {
            return Err(DecimalError::Overflow);
        }
        Ok((magnitude as i128).wrapping_neg())
    } else {
        i128::try_from(magnitude).map_err(|_| DecimalError::Overflow)
    }
}

/// [`parse_fixed_i128`] at scale 18 together with the same value at 1e-8 truncated toward
/// zero (`value_e18 / 10^10`), both from one scan of the text and without a 128-bit division.
/// `None` unless the text is `[-]digits[.digits]` with at most 19 digits: the caller then takes
/// [`parse_fixed_i128`] and the division, which give the same results.
#[inline]
pub fn fast_e18_and_e8(text: &[u8]) -> Option<Result<(i128, i128), DecimalError>> {
    let s = scan_fast(text, 0)?;
    if s.end != text.len() {
        return None;
    }
    let (negative, e18) = match scale_scanned(s, 18)? {
        Ok(v) => v,
        Err(e) => return Some(Err(e)),
    };
    // value × 10^8 = mantissa × 10^(8 − fraction digits), truncated.
    let e8 = if s.frac_digits <= 8 {
        u128::from(s.mantissa) * u128::from(POW10_U64[(8 - s.frac_digits) as usize])
    } else {
        u128::from(s.mantissa / POW10_U64[(s.frac_digits - 8) as usize])
    };
    // Both magnitudes are below 2^124: no overflow either way.
    let signed = |m: u128| {
        if negative {
            (m as i128).wrapping_neg()
        } else {
            m as i128
        }
    };
    Some(Ok((signed(e18), signed(e8))))
}

/// Parses a price or size at [`ringbolt_bus::PRICE_SCALE`] (10^8).
///
/// # Errors
/// As [`parse_fixed_i64`].
#[inline]
pub fn parse_e8(text: &[u8]) -> Result<i64, DecimalError> {
    parse_fixed_i64(text, 8)
}

/// Parses an unsigned decimal integer (ids, timestamps) with overflow checking.
///
/// # Errors
/// [`DecimalError::Empty`], [`DecimalError::Invalid`] or [`DecimalError::Overflow`].
pub fn parse_u64(text: &[u8]) -> Result<u64, DecimalError> {
    // 1 to 19 digits cannot overflow: eight at a time (SWAR), no checks per digit. Anything
    // else (an error, 20 digits) takes the checked loop, which names the error.
    if (1..=19).contains(&text.len()) {
        let (value, end) = digits_onto(text, 0, 0);
        if end == text.len() {
            return Ok(value);
        }
    }
    parse_u64_checked(text)
}

/// [`parse_u64`] one digit at a time with overflow checks (its general path).
fn parse_u64_checked(text: &[u8]) -> Result<u64, DecimalError> {
    if text.is_empty() {
        return Err(DecimalError::Empty);
    }
    let mut value: u64 = 0;
    for (i, &b) in text.iter().enumerate() {
        if !b.is_ascii_digit() {
            return Err(DecimalError::Invalid(i));
        }
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or(DecimalError::Overflow)?;
    }
    Ok(value)
}

/// Parses a signed decimal integer (e.g. OKX `prevSeqId` of `-1`).
///
/// # Errors
/// As [`parse_u64`].
pub fn parse_i64(text: &[u8]) -> Result<i64, DecimalError> {
    match text.split_first() {
        Some((b'-', rest)) => {
            let magnitude = parse_u64(rest)?;
            if magnitude > i64::MAX as u64 + 1 {
                return Err(DecimalError::Overflow);
            }
            Ok((magnitude as i128).wrapping_neg() as i64)
        }
        _ => i64::try_from(parse_u64(text)?).map_err(|_| DecimalError::Overflow),
    }
}

/// Renders a value scaled by `10^scale` as exact, minimal decimal text (`48000000`, 8 → `"0.48"`).
#[must_use]
pub fn format_fixed(value: i128, scale: u32) -> String {
    let negative = value < 0;
    let magnitude = value.unsigned_abs();
    let divisor = 10u128.pow(scale);
    let int = magnitude / divisor;
    let mut frac = magnitude % divisor;
    let mut out = String::with_capacity(48);
    if negative {
        out.push('-');
    }
    out.push_str(&int.to_string());
    if frac != 0 {
        let mut width = scale as usize;
        while frac.is_multiple_of(10) {
            frac /= 10;
            width -= 1;
        }
        out.push('.');
        out.push_str(&format!("{frac:0width$}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_venue_shapes_exactly() {
        assert_eq!(parse_e8(b"95000.12345678"), Ok(9_500_012_345_678));
        assert_eq!(parse_e8(b".48"), Ok(48_000_000));
        assert_eq!(parse_e8(b"0.48"), Ok(48_000_000));
        assert_eq!(parse_e8(b"30"), Ok(3_000_000_000));
        assert_eq!(parse_e8(b"1E-8"), Ok(1));
        assert_eq!(parse_e8(b"1.5e2"), Ok(15_000_000_000));
        assert_eq!(parse_e8(b"-0.5"), Ok(-50_000_000));
        assert_eq!(parse_e8(b"0.00000000"), Ok(0));
        assert_eq!(parse_e8(b"0.000000000000000000000"), Ok(0));
        assert_eq!(
            parse_e8(b"4095.00000000000000000000000"),
            Ok(409_500_000_000)
        );
        assert_eq!(parse_e8(b"0.000000001"), Err(DecimalError::Precision));
        assert_eq!(
            parse_e8(b"3651.3000000000002"),
            Err(DecimalError::Precision)
        );
        assert_eq!(parse_e8(b"92233720368.54775807"), Ok(i64::MAX));
        assert_eq!(
            parse_e8(b"92233720368.54775808"),
            Err(DecimalError::Overflow)
        );
        assert_eq!(parse_e8(b"-92233720368.54775808"), Ok(i64::MIN));
        assert_eq!(parse_e8(b""), Err(DecimalError::Empty));
        assert_eq!(parse_e8(b"-"), Err(DecimalError::Empty));
        assert_eq!(parse_e8(b"."), Err(DecimalError::Empty));
        assert_eq!(parse_e8(b"1.2.3"), Err(DecimalError::Invalid(3)));
        assert_eq!(parse_e8(b"1x"), Err(DecimalError::Invalid(1)));
        assert_eq!(parse_e8(b"1e"), Err(DecimalError::Invalid(1)));
        assert_eq!(parse_e8(b"1e999"), Err(DecimalError::Overflow));
        assert_eq!(parse_e8(b"1e-999"), Err(DecimalError::Precision));
    }

    #[test]
    fn digit_runs_of_every_length_and_any_stop_byte() {
        // Runs of 0..=20 digits ended by every byte value, with bytes after the stop that
        // could disturb a SWAR scan (carries from 0xFA..), checked against a plain loop.
        for len in 0..=20usize {
            for stop in 0..=255u8 {
                if stop.is_ascii_digit() {
                    continue;
                }
                let mut buf: Vec<u8> = (0..len).map(|k| b'0' + ((k * 7 + 3) % 10) as u8).collect();
                buf.push(stop);
                buf.extend_from_slice(&[0xFF, b'5', 0xFA, b'/', b':', b'9', 0x00, b'1']);
                let want = buf[..len].iter().fold(0u64, |m, &b| {
                    m.wrapping_mul(10).wrapping_add(u64::from(b - b'0'))
                });
                assert_eq!(digits_onto(&buf, 0, 0), (want, len), "{len} {stop}");
                assert_eq!(digits_onto(&buf, 0, 7).1, len);
            }
        }
    }

    #[test]
    fn chainlink_full_accuracy_is_exact() {
        // Corpus: chainlink_rtds/crypto_prices_chainlink.jsonl line 1.
        let v = parse_fixed_i128(b"79696948174287960000000", 0).unwrap();
        assert_eq!(v, 79_696_948_174_287_960_000_000);
        // The f64 `value` of the same frame, parsed as text at 18 decimals.
        let w = parse_fixed_i128(b"79696.94817428796", 18).unwrap();
        assert_eq!(w, 79_696_948_174_287_960_000_000);
    }

    #[test]
    fn formats_minimal_exact_text() {
        assert_eq!(format_fixed(48_000_000, 8), "0.48");
        assert_eq!(format_fixed(3_000_000_000, 8), "30");
        assert_eq!(format_fixed(-1, 8), "-0.00000001");
        assert_eq!(format_fixed(0, 8), "0");
        assert_eq!(
            format_fixed(i128::from(i64::MIN), 8),
            "-92233720368.54775808"
        );
    }

    #[test]
    fn digit_runs_match_a_byte_loop() {
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..200_000 {
            let bytes: [u8; 8] = core::array::from_fn(|_| match rng.u8(0..4) {
                0 => rng.u8(..),
                _ => b'0' + rng.u8(0..10),
            });
            let want = bytes.iter().take_while(|b| b.is_ascii_digit()).count() as u32;
            assert_eq!(digit_run8(u64::from_le_bytes(bytes)), want, "{bytes:?}");
            // digits_onto against the plain loop, on this word and what follows it.
            let mut buf = bytes.to_vec();
            buf.extend((0..rng.usize(0..12)).map(|_| b'0' + rng.u8(0..11)));
            let start = rng.usize(0..buf.len());
            let mut m = 0u64;
            let mut i = start;
            while let Some(d) = buf.get(i).filter(|b| b.is_ascii_digit()) {
                m = m.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
                i += 1;
            }
            assert_eq!(digits_onto(&buf, start, 0), (m, i), "{buf:?} {start}");
        }
    }

    #[test]
    fn u64_fast_path_matches_the_checked_loop() {
        let mut rng = fastrand::Rng::with_seed(14);
        let alphabet = b"0123456789012345678901234567890123456789x-. /:e";
        for _ in 0..200_000 {
            let n = rng.usize(0..24);
            let text: Vec<u8> = (0..n)
                .map(|_| {
                    if rng.u8(..) < 8 {
                        alphabet[rng.usize(..alphabet.len())]
                    } else {
                        b'0' + rng.u8(0..10)
                    }
                })
                .collect();
            assert_eq!(parse_u64(&text), parse_u64_checked(&text), "{text:?}");
        }
        for text in [
            &b"0"[..],
            b"9999999999999999999",
            b"18446744073709551615",
            b"18446744073709551616",
            b"00000000000000000001",
            b"1234567a",
            b"12345678a",
        ] {
            assert_eq!(parse_u64(text), parse_u64_checked(text), "{text:?}");
        }
    }

    #[test]
    fn integers() {
        assert_eq!(parse_u64(b"18446744073709551615"), Ok(u64::MAX));
        assert_eq!(
            parse_u64(b"18446744073709551616"),
            Err(DecimalError::Overflow)
        );
        assert_eq!(parse_i64(b"-1"), Ok(-1));
        assert_eq!(parse_i64(b"-"), Err(DecimalError::Empty));
    }
}
