//! A zero-copy, allocation-free JSON pull lexer for venue frames.
//!
//! Parsers walk a frame with [`Lexer::begin_object`] / [`Lexer::next_key`] and
//! [`Lexer::begin_array`] / [`Lexer::next_element`], taking scalars as borrowed byte slices
//! ([`Lexer::str`] returns the raw contents of a string, escapes untouched; [`Lexer::number`]
//! the exact number text). Values of no interest are skipped with [`Lexer::skip_value`], which
//! validates structure iteratively with a bounded nesting depth. Nothing is allocated, nothing
//! is converted to `f64`, and every malformed input yields a [`JsonError`], never a panic.

use thiserror::Error;

use crate::decimal::load8;

/// Deepest nesting accepted while skipping a value.
pub const MAX_DEPTH: usize = 64;

/// A JSON syntax error at a byte offset.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[error("json: {what} at byte {pos}")]
pub struct JsonError {
    /// Byte offset in the frame.
    pub pos: usize,
    /// What was expected or found.
    pub what: &'static str,
}

/// Bytes that end the fast scan inside a string: `"`, `\\` and control bytes.
const STRING_SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// SWAR: the high bit of every byte of `v` equal to `c` (exact for the lowest such byte; bytes
/// above a match may be flagged spuriously, so only the lowest flag is used).
#[inline(always)]
const fn eq_mask(v: u64, c: u8) -> u64 {
    let x = v ^ (ONES * c as u64);
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// SWAR: the high bit of every byte of `v` below `n` (≤ 0x80; exact for the lowest).
#[inline(always)]
const fn lt_mask(v: u64, n: u8) -> u64 {
    v.wrapping_sub(ONES * n as u64) & !v & HIGHS
}

/// `a == b` for short byte strings (keys) with word compares instead of a `memcmp` call:
/// overlapping 8-byte words from 8 bytes on, 4-byte words from 4, bytes below that.
#[inline(always)]
#[must_use]
pub fn key_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word8 = |s: &[u8], i: usize| load8(s, i);
    let word4 = |s: &[u8], i: usize| s.get(i..i + 4).map(|w| [w[0], w[1], w[2], w[3]]);
    match n {
        0..4 => a.iter().zip(b).all(|(x, y)| x == y),
        4..8 => word4(a, 0) == word4(b, 0) && word4(a, n - 4) == word4(b, n - 4),
        _ => {
            let mut i = 0;
            while i + 8 < n {
                if word8(a, i) != word8(b, i) {
                    return false;
                }
                i += 8;
            }
            word8(a, n - 8) == word8(b, n - 8)
        }
    }
}

/// A `match` on a key (`&[u8]`) whose arms compare with [`key_eq`] in order, so that no arm
/// calls `memcmp`: `match_key!(key, { b"a" | b"b" => x, b"c" => y, _ => z })`.
macro_rules! match_key {
    ($key:expr, { $( $($lit:literal)|+ => $arm:expr, )+ _ => $default:expr $(,)? }) => {{
        let key: &[u8] = $key;
        $( if $( $crate::json::key_eq(key, $lit) )||+ { $arm } else )+ { $default }
    }};
}
pub(crate) use match_key;

/// Offset (from 0) of the first byte at or after `i` that ends plain string content: `"`,
/// `\\` or a control byte; `buf.len()` if none. Eight bytes per step.
#[inline]
fn find_string_special(buf: &[u8], mut i: usize) -> usize {
    while let Some(v) = load8(buf, i) {
        let m = eq_mask(v, b'"') | eq_mask(v, b'\\') | lt_mask(v, 0x20);
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = buf.get(i) {
        if STRING_SPECIAL[usize::from(b)] {
            return i;
        }
        i += 1;
    }
    buf.len()
}

/// Offset of the first `"` or `\\` at or after `i` (control bytes are not checked here: a
/// structure skip only needs the string's end); `buf.len()` if none.
#[inline]
fn find_quote_or_backslash(buf: &[u8], mut i: usize) -> usize {
    while let Some(v) = load8(buf, i) {
        let m = eq_mask(v, b'"') | eq_mask(v, b'\\');
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = buf.get(i) {
        if b == b'"' || b == b'\\' {
            return i;
        }
        i += 1;
    }
    buf.len()
}

/// Offset of the first `"`, `[`, `]`, `{` or `}` at or after `i`; `buf.len()` if none.
#[inline]
fn find_structural(buf: &[u8], mut i: usize) -> usize {
    // `[`/`{` and `]`/`}` differ only in bit 5: fold them with `| 0x20`.
    const FOLD: u64 = ONES * 0x20;
    // In level arrays the next structural byte is usually one or two bytes away (`,"`, `],[`):
    // look at those first, then eight bytes per step.
    for _ in 0..2 {
        match buf.get(i) {
            Some(b'"' | b'[' | b']' | b'{' | b'}') | None => return i.min(buf.len()),
            Some(_) => i += 1,
        }
    }
    while let Some(v) = load8(buf, i) {
        let f = v | FOLD;
        let m = eq_mask(v, b'"') | eq_mask(f, b'{') | eq_mask(f, b'}');
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = buf.get(i) {
        if matches!(b, b'"' | b'[' | b']' | b'{' | b'}') {
            return i;
        }
        i += 1;
    }
    buf.len()
}

/// Offset of the first non-digit at or after `i` (`buf.len()` if none).
#[inline(always)]
fn skip_digits(buf: &[u8], mut i: usize) -> usize {
    // Eight bytes per step (the digit run of each word), then one at a time near the end.
    while let Some(v) = load8(buf, i) {
        let k = crate::decimal::digit_run8(v);
        i += k as usize;
        if k < 8 {
            return i;
        }
    }
    while buf.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

/// A scalar's text and its fixed-point value (or why it has none).
pub type FixedText<'a> = (&'a [u8], Result<i64, crate::decimal::DecimalError>);

/// `i + 1` if `buf[i]` is `byte` (no whitespace allowed: the compact fast paths).
#[inline(always)]
fn expect_byte(buf: &[u8], i: usize, byte: u8) -> Option<usize> {
    (buf.get(i) == Some(&byte)).then_some(i + 1)
}

/// A quoted decimal at `buf[i]` in the fast path's shape (see
/// [`crate::decimal::fast_i64_until`]), converted at `scale`: its text and value, and the
/// offset just past its closing quote. `None` for any other shape.
#[inline(always)]
fn quoted_fixed_at(buf: &[u8], i: usize, scale: u32) -> Option<(FixedText<'_>, usize)> {
    let start = expect_byte(buf, i, b'"')?;
    let (value, end) = crate::decimal::fast_i64_until(buf, start, b'"', scale)?;
    Some(((&buf[start..end], value), end + 1))
}

/// The kind of the next value, from its first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// `{`
    Object,
    /// `[`
    Array,
    /// `"`
    String,
    /// `-` or a digit.
    Number,
    /// `true` / `false`.
    Bool,
    /// `null`.
    Null,
}

/// Pull lexer over one frame.
#[derive(Clone, Debug)]
pub struct Lexer<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Set right after `{` / `[` so the first key / element needs no comma.
    first: bool,
}

impl<'a> Lexer<'a> {
    /// A lexer at the start of `buf`.
    #[must_use]
    pub const fn new(buf: &'a [u8]) -> Self {
        Lexer {
            buf,
            pos: 0,
            first: false,
        }
    }

    /// Current byte offset.
    #[must_use]
    pub const fn pos(&self) -> usize {
        self.pos
    }

    fn err(&self, what: &'static str) -> JsonError {
        JsonError {
            pos: self.pos,
            what,
        }
    }

    #[inline(always)]
    fn skip_ws(&mut self) {
        // Venue frames are compact: the next byte is almost never blank (one compare).
        if self.buf.get(self.pos).is_none_or(|&b| b > b' ') {
            return;
        }
        self.skip_ws_loop();
    }

    /// [`Lexer::skip_ws`] past one or more blanks (or none, at a control byte).
    #[inline(never)]
    fn skip_ws_loop(&mut self) {
        while let Some(&b) = self.buf.get(self.pos) {
            if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                break;
            }
            self.pos += 1;
        }
    }

    /// The next non-whitespace byte, not consumed.
    #[inline]
    pub fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.buf.get(self.pos).copied()
    }

    /// The kind of the next value.
    ///
    /// # Errors
    /// At the end of input or on a byte that cannot start a value.
    pub fn kind(&mut self) -> Result<ValueKind, JsonError> {
        match self.peek() {
            Some(b'{') => Ok(ValueKind::Object),
            Some(b'[') => Ok(ValueKind::Array),
            Some(b'"') => Ok(ValueKind::String),
            Some(b'-' | b'0'..=b'9') => Ok(ValueKind::Number),
            Some(b't' | b'f') => Ok(ValueKind::Bool),
            Some(b'n') => Ok(ValueKind::Null),
            Some(_) => Err(self.err("unexpected byte")),
            None => Err(self.err("unexpected end")),
        }
    }

    #[inline]
    fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), JsonError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(what))
        }
    }

    /// Consumes `{`.
    ///
    /// # Errors
    /// If the next value is not an object.
    #[inline]
    pub fn begin_object(&mut self) -> Result<(), JsonError> {
        self.open(b'{', "expected object")
    }

    /// The next key of the current object (its raw string contents, colon consumed), or `None`
    /// after consuming the closing `}`.
    ///
    /// # Errors
    /// On a missing comma, colon or a malformed key.
    #[inline]
    pub fn next_key(&mut self) -> Result<Option<&'a [u8]>, JsonError> {
        match self.separator(b'}', |b| b == b'"') {
            Some(true) => {}
            Some(false) => return Ok(None),
            None => return Err(self.err("expected key or '}'")),
        }
        let key = self.str()?;
        self.expect(b':', "expected ':'")?;
        Ok(Some(key))
    }

    /// [`Lexer::next_key`], with the key the caller expects next checked first: when the member
    /// starts here, compactly, as `,"likely":` (`"likely":` for the first member) it is consumed
    /// with one fixed-length compare and `likely` returned — a constant the caller's `match` can
    /// resolve at compile time. Anything else (another key, blanks, `}`, an error) is left to
    /// [`Lexer::next_key`], so the result is the same for every input; only a right guess is
    /// faster. `likely` must be plain key text (no `"`, `\` or control byte); empty never
    /// matches.
    ///
    /// # Errors
    /// As [`Lexer::next_key`].
    #[inline(always)]
    pub fn next_key_likely(
        &mut self,
        likely: &'static [u8],
    ) -> Result<Option<&'a [u8]>, JsonError> {
        debug_assert!(!likely.iter().any(|&b| STRING_SPECIAL[usize::from(b)]));
        let lead = usize::from(!self.first);
        let n = likely.len();
        if n > 0
            && let Some(w) = self.buf.get(self.pos..self.pos + lead + n + 3)
            && (self.first || w[0] == b',')
            && w[lead] == b'"'
            && key_eq(&w[lead + 1..=lead + n], likely)
            && w[lead + n + 1] == b'"'
            && w[lead + n + 2] == b':'
        {
            self.pos += lead + n + 3;
            self.first = false;
            return Ok(Some(likely));
        }
        self.next_key()
    }

    /// Consumes `[`.
    ///
    /// # Errors
    /// If the next value is not an array.
    #[inline]
    pub fn begin_array(&mut self) -> Result<(), JsonError> {
        self.open(b'[', "expected array")
    }

    /// Moves to the next element of the current array: `true` when one follows, `false` after
    /// consuming the closing `]`.
    ///
    /// # Errors
    /// On a missing comma.
    #[inline]
    pub fn next_element(&mut self) -> Result<bool, JsonError> {
        self.separator(b']', |_| true)
            .ok_or_else(|| self.err("expected ',' or ']'"))
    }

    /// Consumes `open` (`{` or `[`); the first member then needs no comma.
    #[inline(always)]
    fn open(&mut self, open: u8, what: &'static str) -> Result<(), JsonError> {
        self.expect(open, what)?;
        self.first = true;
        Ok(())
    }

    /// Steps to the next member of the current object or array: `Some(true)` when one follows
    /// (its comma consumed; the first member must start with a byte `first_ok` accepts),
    /// `Some(false)` after consuming `close`, `None` (nothing consumed) when neither.
    #[inline(always)]
    fn separator(&mut self, close: u8, first_ok: impl Fn(u8) -> bool) -> Option<bool> {
        match self.peek() {
            Some(b) if b == close => {
                self.pos += 1;
                self.first = false;
                Some(false)
            }
            Some(b',') if !self.first => {
                self.pos += 1;
                Some(true)
            }
            Some(b) if self.first && first_ok(b) => {
                self.first = false;
                Some(true)
            }
            _ => None,
        }
    }

    /// A string value's raw contents (between the quotes, escapes not decoded).
    ///
    /// # Errors
    /// If the next value is not a well-formed string.
    #[inline]
    pub fn str(&mut self) -> Result<&'a [u8], JsonError> {
        self.expect(b'"', "expected string")?;
        let start = self.pos;
        let buf = self.buf;
        // Plain contents (no escape) ending within 16 bytes at a quote (keys, symbols, most
        // values): two SWAR steps inline, no loop. Longer strings, escapes, control bytes and
        // the end of input go to `str_rest` from the first byte not known to be plain.
        let mut i = start;
        for _ in 0..2 {
            let Some(v) = load8(buf, i) else { break };
            let m = eq_mask(v, b'"') | eq_mask(v, b'\\') | lt_mask(v, 0x20);
            if m != 0 {
                i += (m.trailing_zeros() / 8) as usize;
                if buf.get(i) == Some(&b'"') {
                    self.pos = i + 1;
                    self.first = false;
                    return Ok(&buf[start..i]);
                }
                break;
            }
            i += 8;
        }
        self.str_rest(start, i)
    }

    /// The rest of [`Lexer::str`] from the first special byte `i` of the string whose contents
    /// start at `start`.
    #[inline(never)]
    fn str_rest(&mut self, start: usize, mut i: usize) -> Result<&'a [u8], JsonError> {
        let buf = self.buf;
        loop {
            // Plain bytes are skipped eight at a time.
            i = find_string_special(buf, i);
            match buf.get(i) {
                Some(b'"') => {
                    self.pos = i + 1;
                    self.first = false;
                    return Ok(&buf[start..i]);
                }
                Some(b'\\') => match buf.get(i + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                    Some(b'u') => {
                        let hex = buf.get(i + 2..i + 6);
                        if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                            self.pos = i;
                            return Err(self.err("bad \\u escape"));
                        }
                        i += 6;
                    }
                    _ => {
                        self.pos = i;
                        return Err(self.err("bad escape"));
                    }
                },
                Some(_) => {
                    self.pos = i;
                    return Err(self.err("control byte in string"));
                }
                None => {
                    self.pos = buf.len();
                    return Err(self.err("unterminated string"));
                }
            }
        }
    }

    /// A number value's exact text.
    ///
    /// # Errors
    /// If the next value is not a JSON number.
    #[inline]
    pub fn number(&mut self) -> Result<&'a [u8], JsonError> {
        self.skip_ws();
        let start = self.pos;
        let buf = self.buf;
        let mut i = start;
        if buf.get(i) == Some(&b'-') {
            i += 1;
        }
        let int_start = i;
        i = skip_digits(buf, i);
        if i == int_start {
            return Err(self.err("expected number"));
        }
        if buf.get(i) == Some(&b'.') {
            i = self.digits(i + 1, "digit expected after '.'")?;
        }
        if matches!(buf.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(buf.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            i = self.digits(i, "digit expected in exponent")?;
        }
        self.pos = i;
        self.first = false;
        Ok(&buf[start..i])
    }

    /// The end of the one or more digits at `i`; if there are none, the error `what` there.
    #[inline(always)]
    fn digits(&mut self, i: usize, what: &'static str) -> Result<usize, JsonError> {
        let end = skip_digits(self.buf, i);
        if end == i {
            self.pos = i;
            return Err(self.err(what));
        }
        Ok(end)
    }

    /// The text of a scalar that a venue may send either as a string or as a number (string
    /// contents or number text).
    ///
    /// # Errors
    /// If the next value is neither.
    #[inline]
    pub fn scalar(&mut self) -> Result<&'a [u8], JsonError> {
        if self.peek() == Some(b'"') {
            self.str()
        } else {
            self.number()
        }
    }

    /// [`Lexer::scalar`] converted to fixed point at `scale` (see
    /// [`crate::decimal::parse_fixed_i64`]): the text and its value. A quoted decimal in the
    /// common shape (`"[-]digits[.digits]"`) is converted in the same pass that finds its closing
    /// quote; anything else takes the string / number path and the general
    /// decimal parser, with identical results.
    ///
    /// # Errors
    /// The outer `Err` if the next value is neither a string nor a number; the inner one if its
    /// text is not a decimal that fits the scale.
    #[inline]
    pub fn scalar_fixed_i64(
        &mut self,
        scale: u32,
    ) -> Result<(&'a [u8], Result<i64, crate::decimal::DecimalError>), JsonError> {
        self.skip_ws();
        let buf = self.buf;
        if buf.get(self.pos) == Some(&b'"') {
            let start = self.pos + 1;
            if let Some((value, end)) = crate::decimal::fast_i64_until(buf, start, b'"', scale) {
                self.pos = end + 1;
                self.first = false;
                return Ok((&buf[start..end], value));
            }
        } else if let Some((value, end)) = crate::decimal::fast_number_i64(buf, self.pos, scale) {
            let start = self.pos;
            self.pos = end;
            self.first = false;
            return Ok((&buf[start..end], value));
        }
        let text = self.scalar()?;
        Ok((text, crate::decimal::parse_fixed_i64(text, scale)))
    }

    /// At an array of at least `N` elements whose first `N` are quoted decimals, written
    /// compactly (`["1.5","2"` …: no whitespace): consumes `[` and those `N` values, each
    /// converted at its scale, as [`Lexer::begin_array`], then [`Lexer::next_element`] and
    /// [`Lexer::scalar_fixed_i64`] `N` times would, and returns them; the lexer then stands in
    /// the array after the `N`th value. `None` (nothing consumed) for any other shape: the
    /// caller then takes that general path, which gives the same result for these rows.
    #[inline]
    pub fn quoted_fixed_row<const N: usize>(
        &mut self,
        scales: [u32; N],
    ) -> Option<[FixedText<'a>; N]> {
        self.skip_ws();
        let buf = self.buf;
        if buf.get(self.pos) != Some(&b'[') {
            return None;
        }
        let mut i = self.pos + 1;
        let mut out = [(&buf[..0], Ok(0)); N];
        for (k, (slot, scale)) in out.iter_mut().zip(scales).enumerate() {
            if k > 0 {
                i = expect_byte(buf, i, b',')?;
            }
            (*slot, i) = quoted_fixed_at(buf, i, scale)?;
        }
        self.pos = i;
        self.first = false;
        Some(out)
    }

    /// At a compact array of exactly `N` JSON numbers, optionally after one quoted word
    /// without escapes (`[1.5,2]`, `["new",1.5,2]`: no whitespace), each number in the shape of
    /// `decimal::fast_number_i64`: consumes the whole array and returns the word's
    /// contents (`None` without one) and the numbers' texts converted at their scales, as
    /// reading the array element by element with [`Lexer::str`] and
    /// [`Lexer::scalar_fixed_i64`] would. `None` (nothing consumed) for any other shape: the
    /// caller then takes that general path.
    #[inline]
    pub fn compact_number_row<const N: usize>(
        &mut self,
        scales: [u32; N],
    ) -> Option<(Option<&'a [u8]>, [FixedText<'a>; N])> {
        self.skip_ws();
        let buf = self.buf;
        let mut i = expect_byte(buf, self.pos, b'[')?;
        let mut word = None;
        if buf.get(i) == Some(&b'"') {
            let end = find_string_special(buf, i + 1);
            if buf.get(end) != Some(&b'"') {
                return None;
            }
            word = Some(&buf[i + 1..end]);
            i = expect_byte(buf, end + 1, b',')?;
        }
        let mut out = [(&buf[..0], Ok(0)); N];
        for (k, (slot, scale)) in out.iter_mut().zip(scales).enumerate() {
            if k > 0 {
                i = expect_byte(buf, i, b',')?;
            }
            let (value, end) = crate::decimal::fast_number_i64(buf, i, scale)?;
            *slot = (&buf[i..end], value);
            i = end;
        }
        self.pos = expect_byte(buf, i, b']')?;
        self.first = false;
        Some((word, out))
    }

    /// [`Lexer::quoted_fixed_row`] for a row whose `N` values all convert without error: their
    /// texts and values as plain integers. `None` (nothing consumed but whitespace) for any
    /// other row: another shape, or a value with a precision / overflow error; the caller then
    /// takes [`Lexer::quoted_fixed_row`] or the general path, which give the same values and
    /// report the error.
    #[inline]
    pub fn quoted_fixed_row_ok<const N: usize>(
        &mut self,
        scales: [u32; N],
    ) -> Option<[(&'a [u8], i64); N]> {
        self.skip_ws();
        let buf = self.buf;
        if buf.get(self.pos) != Some(&b'[') {
            return None;
        }
        let mut i = self.pos + 1;
        let mut out = [(&buf[..0], 0); N];
        for (k, (slot, scale)) in out.iter_mut().zip(scales).enumerate() {
            if k > 0 {
                i = expect_byte(buf, i, b',')?;
            }
            let start = expect_byte(buf, i, b'"')?;
            let (value, end) = crate::decimal::fast_i64_until_ok(buf, start, b'"', scale)?;
            *slot = (&buf[start..end], value);
            i = end + 1;
        }
        self.pos = i;
        self.first = false;
        Some(out)
    }

    /// Skips the rest of the current array, its closing `]` included, exactly as
    /// `while self.next_element()? { self.skip_value()? }` would (same position, same errors).
    /// Compactly written plain strings (`,"0","13"]`: no whitespace, escape or control byte), the
    /// trailing fields of venue level rows, are stepped over byte by byte without dispatching on
    /// the value kind; anything else is left to that general loop from where the fast scan
    /// stopped, between two elements.
    ///
    /// # Errors
    /// As [`Lexer::next_element`] and [`Lexer::skip_value`].
    #[inline]
    pub fn skip_rest_of_array(&mut self) -> Result<(), JsonError> {
        if !self.first {
            let buf = self.buf;
            let mut i = self.pos;
            loop {
                match buf.get(i) {
                    Some(b']') => {
                        self.pos = i + 1;
                        return Ok(());
                    }
                    Some(b',') if buf.get(i + 1) == Some(&b'"') => {
                        let mut k = i + 2;
                        while buf
                            .get(k)
                            .is_some_and(|&b| b != b'"' && b != b'\\' && b >= 0x20)
                        {
                            k += 1;
                        }
                        if buf.get(k) != Some(&b'"') {
                            break;
                        }
                        i = k + 1;
                    }
                    _ => break,
                }
            }
            self.pos = i;
        }
        while self.next_element()? {
            self.skip_value()?;
        }
        Ok(())
    }

    /// At a compact object holding exactly the keys `keys`, in that order, each with a quoted
    /// decimal (`{"price":"0.48","size":"30"}`: no whitespace, no other key): consumes the
    /// whole object and returns the values converted at `scale`, as reading it key by key with
    /// [`Lexer::scalar_fixed_i64`] would. `None` (nothing consumed) for any other shape: the
    /// caller then takes that general path.
    #[inline]
    pub fn quoted_fixed_object<const N: usize>(
        &mut self,
        keys: [&[u8]; N],
        scale: u32,
    ) -> Option<[FixedText<'a>; N]> {
        self.skip_ws();
        let buf = self.buf;
        if buf.get(self.pos) != Some(&b'{') {
            return None;
        }
        let mut i = self.pos + 1;
        let mut out = [(&buf[..0], Ok(0)); N];
        for (k, (slot, key)) in out.iter_mut().zip(keys).enumerate() {
            if k > 0 {
                i = expect_byte(buf, i, b',')?;
            }
            // `"key":` then the quoted value.
            let key_end = i + 1 + key.len();
            if buf.get(i) != Some(&b'"')
                || buf.get(i + 1..key_end) != Some(key)
                || buf.get(key_end..key_end + 2) != Some(&b"\":"[..])
            {
                return None;
            }
            (*slot, i) = quoted_fixed_at(buf, key_end + 2, scale)?;
        }
        self.pos = expect_byte(buf, i, b'}')?;
        self.first = false;
        Some(out)
    }

    /// Like [`Lexer::scalar`] but `null` yields `None`.
    ///
    /// # Errors
    /// If the next value is not a string, number or null.
    pub fn opt_scalar(&mut self) -> Result<Option<&'a [u8]>, JsonError> {
        if self.peek() == Some(b'n') {
            self.literal(b"null")?;
            Ok(None)
        } else {
            self.scalar().map(Some)
        }
    }

    /// A `true`/`false` value.
    ///
    /// # Errors
    /// If the next value is not a boolean.
    pub fn bool(&mut self) -> Result<bool, JsonError> {
        match self.peek() {
            Some(b't') => self.literal(b"true").map(|()| true),
            Some(b'f') => self.literal(b"false").map(|()| false),
            _ => Err(self.err("expected boolean")),
        }
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), JsonError> {
        if self.buf.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            self.first = false;
            Ok(())
        } else {
            Err(self.err("bad literal"))
        }
    }

    /// Skips one complete value of any kind, checking its structure.
    ///
    /// # Errors
    /// On malformed input or nesting deeper than [`MAX_DEPTH`].
    pub fn skip_value(&mut self) -> Result<(), JsonError> {
        // Bit i of `stack` is 1 when nesting level i is an object.
        let mut stack: u64 = 0;
        let mut depth = 0usize;
        loop {
            // Parse one value start.
            match self.kind()? {
                ValueKind::Object => {
                    self.begin_object()?;
                    if depth == MAX_DEPTH {
                        return Err(self.err("nesting too deep"));
                    }
                    stack |= 1 << depth;
                    depth += 1;
                    match self.next_key()? {
                        Some(_) => continue,
                        None => depth -= 1,
                    }
                }
                ValueKind::Array => {
                    self.begin_array()?;
                    if depth == MAX_DEPTH {
                        return Err(self.err("nesting too deep"));
                    }
                    stack &= !(1 << depth);
                    depth += 1;
                    if self.next_element()? {
                        continue;
                    }
                    depth -= 1;
                }
                ValueKind::String => {
                    self.str()?;
                }
                ValueKind::Number => {
                    self.number()?;
                }
                ValueKind::Bool => {
                    self.bool()?;
                }
                ValueKind::Null => self.literal(b"null")?,
            }
            // A value finished: close containers or advance to their next member.
            loop {
                if depth == 0 {
                    return Ok(());
                }
                let in_object = stack & (1 << (depth - 1)) != 0;
                let more = if in_object {
                    self.next_key()?.is_some()
                } else {
                    self.next_element()?
                };
                if more {
                    break;
                }
                depth -= 1;
            }
        }
    }

    /// Skips one object or array by structure only (strings and bracket nesting, bounded
    /// depth), without validating its contents; scalars are skipped strictly. Used for spans
    /// that are parsed strictly afterwards ([`Lexer::raw_value`]).
    ///
    /// # Errors
    /// On an unterminated string or container, or nesting deeper than [`MAX_DEPTH`].
    pub fn skip_structure(&mut self) -> Result<(), JsonError> {
        if !matches!(self.peek(), Some(b'{' | b'[')) {
            return self.skip_value();
        }
        // Jumps from structural byte to structural byte, eight bytes per step (SWAR).
        let buf = self.buf;
        let mut i = self.pos;
        let mut depth = 0usize;
        loop {
            i = find_structural(buf, i);
            let Some(&b) = buf.get(i) else { break };
            match b {
                b'"' => {
                    i += 1;
                    loop {
                        i = find_quote_or_backslash(buf, i);
                        match buf.get(i) {
                            Some(b'\\') => i += 2,
                            Some(_) => {
                                i += 1;
                                break;
                            }
                            None => {
                                self.pos = buf.len();
                                return Err(self.err("unterminated string"));
                            }
                        }
                    }
                }
                b'{' | b'[' => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        self.pos = i;
                        return Err(self.err("nesting too deep"));
                    }
                    i += 1;
                }
                _ => {
                    depth -= 1;
                    i += 1;
                    if depth == 0 {
                        self.pos = i;
                        self.first = false;
                        return Ok(());
                    }
                }
            }
        }
        self.pos = buf.len();
        Err(self.err("unexpected end"))
    }

    /// Skips one value and returns its raw text for a second, strict, typed pass (containers
    /// are only checked structurally here: see [`Lexer::skip_structure`]).
    ///
    /// # Errors
    /// As [`Lexer::skip_structure`].
    #[inline]
    pub fn raw_value(&mut self) -> Result<&'a [u8], JsonError> {
        self.skip_ws();
        let start = self.pos;
        self.skip_structure()?;
        Ok(&self.buf[start..self.pos])
    }

    /// The bytes from offset `start` up to the current position (the text of what was read
    /// since then; empty if `start` is past it).
    #[inline]
    #[must_use]
    pub fn text_since(&self, start: usize) -> &'a [u8] {
        self.buf.get(start..self.pos).unwrap_or_default()
    }

    /// Checks that only whitespace remains.
    ///
    /// # Errors
    /// On trailing bytes.
    pub fn end(&mut self) -> Result<(), JsonError> {
        if self.peek().is_some() {
            Err(self.err("trailing bytes"))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_objects_and_arrays() {
        let mut j = Lexer::new(br#" {"a":"x\"y","b":[1,-2.5e3,{"c":null}],"d":true} "#);
        j.begin_object().unwrap();
        assert_eq!(j.next_key().unwrap(), Some(&b"a"[..]));
        assert_eq!(j.str().unwrap(), br#"x\"y"#);
        assert_eq!(j.next_key().unwrap(), Some(&b"b"[..]));
        j.begin_array().unwrap();
        assert!(j.next_element().unwrap());
        assert_eq!(j.number().unwrap(), b"1");
        assert!(j.next_element().unwrap());
        assert_eq!(j.number().unwrap(), b"-2.5e3");
        assert!(j.next_element().unwrap());
        j.skip_value().unwrap();
        assert!(!j.next_element().unwrap());
        assert_eq!(j.next_key().unwrap(), Some(&b"d"[..]));
        assert!(j.bool().unwrap());
        assert_eq!(j.next_key().unwrap(), None);
        j.end().unwrap();
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            &br#"{"a":1,}"#[..],
            br#"{,"a":1}"#,
            br#"[1,,2]"#,
            br#"[1 2]"#,
            br#"{"a" 1}"#,
            br#"{"a":"#,
            br#"{"a":tru}"#,
            br#"{"a":"\x"}"#,
            br#"[01.]"#,
            br#"[-]"#,
            br#"{"a":[}"#,
        ] {
            let mut j = Lexer::new(bad);
            assert!(
                j.skip_value().and_then(|()| j.end()).is_err(),
                "{:?}",
                std::str::from_utf8(bad)
            );
        }
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(Lexer::new(deep.as_bytes()).skip_value().is_err());
        let ok = "[".repeat(64) + &"]".repeat(64);
        assert!(Lexer::new(ok.as_bytes()).skip_value().is_ok());
    }

    #[test]
    fn skip_matches_serde_on_valid_json() {
        let text = br#"{"x":[{"p":"1","q":[[],{}]},{"e":-0.1E+2}],"y":{"z":"\u00e9"}}"#;
        let mut j = Lexer::new(text);
        j.skip_value().unwrap();
        assert_eq!(j.pos(), text.len());
    }

    #[test]
    fn quoted_fixed_row_matches_the_general_path() {
        for row in [
            &br#"["1.5","2","x"]"#[..],
            br#"["1.5","2"]"#,
            br#"["1.5" ,"2"]"#,
            br#" ["0.00000001","-3"]"#,
            br#"["1.5"]"#,
            br#"[1.5,"2"]"#,
            br#"["1e3","2"]"#,
            br#"["1.5","2.000000001"]"#,
            br#"["1.5","2\u0030"]"#,
            br#"["99999999999999999999","1"]"#,
            br#"["","1"]"#,
            br#"{"a":1}"#,
        ] {
            let mut fast = Lexer::new(row);
            let Some(got) = fast.quoted_fixed_row([8, 8]) else {
                continue;
            };
            let mut general = Lexer::new(row);
            general.begin_array().unwrap();
            for want in got {
                assert!(general.next_element().unwrap());
                assert_eq!(general.scalar_fixed_i64(8).unwrap(), want, "{row:?}");
            }
            assert_eq!(fast.pos(), general.pos());
            assert_eq!(fast.next_element(), general.next_element());
        }
        // The shapes the fast path must take.
        assert!(
            Lexer::new(br#"["1.5","2"]"#)
                .quoted_fixed_row([8, 8])
                .is_some()
        );
        assert!(
            Lexer::new(br#"["1.5","2"]"#)
                .quoted_fixed_row([8, 8, 9])
                .is_none()
        );
        assert!(
            Lexer::new(br#"["1.5" ,"2"]"#)
                .quoted_fixed_row([8, 8])
                .is_none()
        );
    }

    #[test]
    fn compact_number_row_matches_the_general_path() {
        for row in [
            &br#"["new",37240.0,20.0]"#[..],
            br#"["delete",36779.0,0.0]"#,
            br#"[31523.5,128780.0]"#,
            br#"[-1,2]"#,
            br#"["x\"y",1,2]"#,
            br#"["new", 1,2]"#,
            br#"["new",1,2,3]"#,
            br#"["new",1]"#,
            br#"[1.5e3,2]"#,
            br#"[1.,2]"#,
            br#"[01,2]"#,
            br#"["new",1.000000001,2]"#,
            br#"["new","1",2]"#,
            br#"[1,2] "#,
        ] {
            let mut fast = Lexer::new(row);
            let Some((word, got)) = fast.compact_number_row([8, 8]) else {
                continue;
            };
            let mut general = Lexer::new(row);
            general.begin_array().unwrap();
            if let Some(w) = word {
                assert!(general.next_element().unwrap());
                assert_eq!(general.str().unwrap(), w);
            }
            for want in got {
                assert!(general.next_element().unwrap());
                assert_eq!(general.scalar_fixed_i64(8).unwrap(), want, "{row:?}");
            }
            assert!(!general.next_element().unwrap());
            assert_eq!(fast.pos(), general.pos());
        }
        let take = |r: &[u8]| Lexer::new(r).compact_number_row([8, 8]).is_some();
        assert!(take(br#"["new",37240.0,20.0]"#));
        assert!(take(br#"[31523.5,128780.0]"#));
        assert!(!take(br#"["new",1,2,3]"#));
        assert!(!take(br#"["new", 1,2]"#));
        assert!(!take(br#"[1.5e3,2]"#));
    }

    proptest::proptest! {
        #[test]
        fn key_eq_is_slice_equality(
            a in proptest::collection::vec(0u8..4, 0..30),
            other in proptest::collection::vec(0u8..4, 0..30),
            flip in proptest::option::of(0usize..30),
        ) {
            // Same length, one byte changed (or none), and an unrelated string.
            let mut b = a.clone();
            if let Some(i) = flip.filter(|&i| i < b.len()) {
                b[i] ^= 1;
            }
            proptest::prop_assert_eq!(key_eq(&a, &b), a == b);
            proptest::prop_assert_eq!(key_eq(&a, &other), a == other);
        }
    }

    #[test]
    fn match_key_takes_the_first_equal_arm() {
        let pick =
            |k: &[u8]| match_key!(k, { b"ab" | b"timestamp" => 1, b"ab" => 2, b"" => 3, _ => 4 });
        assert_eq!(
            [b"ab".as_slice(), b"timestamp", b"", b"timestamq", b"a"].map(pick),
            [1, 1, 3, 4, 4]
        );
    }

    /// Every key of `raw`'s top object by `next_key`, and by `next_key_likely` guessing
    /// `likely`; values skipped. Returns keys, then the error and position where one stopped.
    fn keys_of(
        raw: &[u8],
        likely: Option<&'static [u8]>,
    ) -> (Vec<Vec<u8>>, Option<JsonError>, usize) {
        let mut j = Lexer::new(raw);
        let mut keys = Vec::new();
        let r = (|| {
            j.begin_object()?;
            loop {
                let key = match likely {
                    Some(l) => j.next_key_likely(l)?,
                    None => j.next_key()?,
                };
                let Some(key) = key else { return Ok(()) };
                keys.push(key.to_vec());
                j.skip_value()?;
            }
        })();
        (keys, r.err(), j.pos())
    }

    #[test]
    fn a_likely_key_reads_like_next_key() {
        for raw in [
            &br#"{"topic":"a","type":"b"}"#[..],
            br#"{ "topic":"a" , "type" :"b"}"#,
            br#"{"topics":"a","typ":"b","type":1}"#,
            br#"{"top":1,"topic" :2,"topic":3}"#,
            br#"{"to\u0070ic":1,"topic"}"#,
            br#"{"topic":1,,"type":2}"#,
            br#"{,"topic":1}"#,
            br#"{}"#,
            br#"{"topic""#,
            br#"{"topic"#,
            br#"{"type":1"topic":2}"#,
            b"{\"topic\":1,\"ty\x01e\":2}",
        ] {
            let want = keys_of(raw, None);
            for likely in [&b"topic"[..], b"type", b"typ", b"", b"x"] {
                assert_eq!(
                    keys_of(raw, Some(likely)),
                    want,
                    "{:?} / {:?}",
                    std::str::from_utf8(raw),
                    std::str::from_utf8(likely)
                );
            }
        }
    }

    proptest::proptest! {
        /// Token soups (keys near the guessed ones, separators, blanks, escapes, values): the
        /// guess never changes keys, error or position.
        #[test]
        fn a_likely_key_never_changes_the_reading(
            tokens in proptest::collection::vec(proptest::sample::select(&[
                "\"a\"", "\"ab\"", "\"b\"", "\"a", "\"\\u0061\"", ",", ":", " ", "{", "}",
                "1", "\"x\"", "[1]", "\"a\":", ",\"ab\":", "\u{1}",
            ][..]), 0..16),
        ) {
            let raw = format!("{{{}", tokens.concat());
            let want = keys_of(raw.as_bytes(), None);
            for likely in [&b"a"[..], b"ab", b"b"] {
                proptest::prop_assert_eq!(keys_of(raw.as_bytes(), Some(likely)), want.clone());
            }
        }
    }

    #[test]
    fn skip_rest_of_array_matches_the_general_loop() {
        for row in [
            &br#"["1","2","0","13"],["3"]"#[..],
            br#"["1","2"]"#,
            br#"["1","2" ,"0"]"#,
            br#"["1","2","0" ]"#,
            br#"["1","2",0,"1"]"#,
            br#"["1","2","a\"b","c"]"#,
            br#"["1","2","a\u0041","c"]"#,
            br#"["1","2","a\x"]"#,
            b"[\"1\",\"2\",\"a\x01\"]",
            br#"["1","2","0","#,
            br#"["1","2","0""#,
            br#"["1","2","0"}"#,
            br#"["1","2",]"#,
            br#"["1","2",{"a":[1]},"x"]"#,
        ] {
            let run = |fast: bool| {
                let mut j = Lexer::new(row);
                j.begin_array().unwrap();
                for _ in 0..2 {
                    assert!(j.next_element().unwrap());
                    j.str().unwrap();
                }
                let r = if fast {
                    j.skip_rest_of_array()
                } else {
                    (|| {
                        while j.next_element()? {
                            j.skip_value()?;
                        }
                        Ok(())
                    })()
                };
                (r, j.pos(), j.next_element())
            };
            assert_eq!(run(true), run(false), "{:?}", std::str::from_utf8(row));
        }
        // Right after `[`: the general loop.
        let mut j = Lexer::new(br#"["0","1"]"#);
        j.begin_array().unwrap();
        j.skip_rest_of_array().unwrap();
        assert_eq!(j.pos(), 9);
    }

    #[test]
    fn quoted_fixed_object_matches_the_general_path() {
        for obj in [
            &br#"{"price":"0.48","size":"30"}"#[..],
            br#"{"price":"0.48","size":"30","x":1}"#,
            br#"{"size":"30","price":"0.48"}"#,
            br#"{"price":"0.48", "size":"30"}"#,
            br#"{"price":"0.481234567","size":"30"}"#,
            br#"{"price":0.48,"size":"30"}"#,
            br#"{"pric":"0.48","size":"30"}"#,
            br#"{"price":"-1","size":"0"}"#,
        ] {
            let mut fast = Lexer::new(obj);
            let Some(got) = fast.quoted_fixed_object([b"price", b"size"], 8) else {
                continue;
            };
            let mut general = Lexer::new(obj);
            general.begin_object().unwrap();
            for (want_key, want) in [&b"price"[..], b"size"].into_iter().zip(got) {
                assert_eq!(general.next_key().unwrap(), Some(want_key));
                assert_eq!(general.scalar_fixed_i64(8).unwrap(), want, "{obj:?}");
            }
            assert_eq!(general.next_key().unwrap(), None);
            assert_eq!(fast.pos(), general.pos());
        }
        let take = |o: &[u8]| {
            Lexer::new(o)
                .quoted_fixed_object([b"price", b"size"], 8)
                .is_some()
        };
        assert!(take(br#"{"price":"0.48","size":"30"}"#));
        assert!(take(br#"{"price":"0.481234567","size":"30"}"#));
        assert!(!take(br#"{"price":"0.48","size":"30","x":1}"#));
        assert!(!take(br#"{"size":"30","price":"0.48"}"#));
    }
}
