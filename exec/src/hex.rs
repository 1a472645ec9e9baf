//! Lower-case hex helpers (no allocation in the `*_into` forms).

use crate::Error;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes `bytes` as lower-case hex into `out` (which must be `2 * bytes.len()` long).
pub fn encode_into(bytes: &[u8], out: &mut [u8]) {
    debug_assert_eq!(out.len(), bytes.len() * 2);
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 15)];
    }
}

/// `0x` + lower-case hex.
#[must_use]
pub fn encode_0x(bytes: &[u8]) -> String {
    let mut out = vec![0u8; 2 + bytes.len() * 2];
    out[..2].copy_from_slice(b"0x");
    encode_into(bytes, &mut out[2..]);
    String::from_utf8_lossy(&out).into_owned()
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes exactly `N` bytes of hex, with or without a `0x` prefix.
pub fn decode_fixed<const N: usize>(s: &str, field: &'static str) -> Result<[u8; N], Error> {
    let h = s.strip_prefix("0x").unwrap_or(s).as_bytes();
    let bad = || Error::BadField {
        field,
        reason: format!("expected {} hex digits (optionally 0x-prefixed)", N * 2),
    };
    if h.len() != 2 * N {
        return Err(bad());
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = (nibble(h[2 * i]).ok_or_else(bad)? << 4) | nibble(h[2 * i + 1]).ok_or_else(bad)?;
    }
    Ok(out)
}

/// Decodes variable-length hex with or without `0x`.
pub fn decode_vec(s: &str, field: &'static str) -> Result<Vec<u8>, Error> {
    let h = s.strip_prefix("0x").unwrap_or(s).as_bytes();
    let bad = || Error::BadField {
        field,
        reason: "not an even-length hex string".to_owned(),
    };
    if !h.len().is_multiple_of(2) {
        return Err(bad());
    }
    h.chunks_exact(2)
        .map(|c| Ok((nibble(c[0]).ok_or_else(bad)? << 4) | nibble(c[1]).ok_or_else(bad)?))
        .collect()
}
