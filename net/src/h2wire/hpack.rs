//! HPACK (RFC 7541) for the order path.
//!
//! * Encoding writes only stateless representations: indexed static entries (`:method POST`,
//!   `:scheme https`) and literals *never indexed* (with a static name index where one exists),
//!   strings raw (no Huffman). The encoder therefore has no dynamic-table state and a request's
//!   header block can be prepared once and copied; the peer's `SETTINGS_HEADER_TABLE_SIZE` never
//!   matters to it.
//! * Decoding is complete: static and dynamic table, size updates, Huffman strings (responses
//!   from hyper/h2, nginx or Cloudflare use all of them).

use std::collections::VecDeque;
use std::sync::OnceLock;

use super::tables::{HUFFMAN, STATIC};

/// Why a header block could not be decoded (a connection error: COMPRESSION_ERROR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HpackError {
    /// The block ended inside a representation.
    #[error("hpack: truncated block")]
    Truncated,
    /// An integer past 2^32.
    #[error("hpack: integer overflow")]
    IntegerOverflow,
    /// Index 0 or past the tables.
    #[error("hpack: bad index")]
    BadIndex,
    /// Invalid Huffman code, EOS inside a string, or bad padding.
    #[error("hpack: bad huffman string")]
    BadHuffman,
    /// A size update above the limit we advertised, or not at the start of the block.
    #[error("hpack: bad dynamic table size update")]
    BadSizeUpdate,
}

/// Writes `value` with an `n`-bit prefix whose high bits are `flags` (RFC 7541 §5.1).
pub fn encode_int(out: &mut Vec<u8>, flags: u8, n: u8, value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    let mut rest = value - max;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
}

/// A raw (non-Huffman) string literal.
pub fn encode_str(out: &mut Vec<u8>, s: &[u8]) {
    encode_int(out, 0, 7, s.len());
    out.extend_from_slice(s);
}

/// Index (1-based) of a static entry with `name` (and `value` when given).
#[must_use]
pub fn static_index(name: &[u8], value: Option<&[u8]>) -> Option<usize> {
    STATIC
        .iter()
        .position(|(n, v)| *n == name && value.is_none_or(|want| *v == want))
        .map(|i| i + 1)
}

/// A header as a literal never indexed (RFC 7541 §6.2.3): the static name index when the name is
/// in the static table, else the name as a literal. `name` must be lower case.
pub fn encode_never_indexed(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    debug_assert!(
        !name.iter().any(u8::is_ascii_uppercase),
        "HTTP/2 names are lower case"
    );
    match static_index(name, None) {
        Some(i) => encode_int(out, 0x10, 4, i),
        None => {
            out.push(0x10);
            encode_str(out, name);
        }
    }
    encode_str(out, value);
}

/// [`encode_never_indexed`] for a name known not to be in the static table (no lookup).
#[inline]
pub fn encode_never_indexed_new_name(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0x10);
    encode_str(out, name);
    encode_str(out, value);
}

/// Reads an integer with an `n`-bit prefix at `buf[*pos]`.
fn decode_int(buf: &[u8], pos: &mut usize, n: u8) -> Result<usize, HpackError> {
    let max = (1usize << n) - 1;
    let first = *buf.get(*pos).ok_or(HpackError::Truncated)?;
    *pos += 1;
    let mut value = usize::from(first) & max;
    if value < max {
        return Ok(value);
    }
    let mut shift = 0u32;
    loop {
        let b = *buf.get(*pos).ok_or(HpackError::Truncated)?;
        *pos += 1;
        if shift > 28 {
            return Err(HpackError::IntegerOverflow);
        }
        value += usize::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            return if value > u32::MAX as usize {
                Err(HpackError::IntegerOverflow)
            } else {
                Ok(value)
            };
        }
    }
}

/// The Huffman decoding tree: node `i` has children `[zero, one]`; a child ≥ `LEAF` is the leaf
/// of symbol `child - LEAF`.
struct Tree {
    nodes: Vec<[u16; 2]>,
}

const LEAF: u16 = 0x8000;
const EOS: u16 = 256;

fn tree() -> &'static Tree {
    static TREE: OnceLock<Tree> = OnceLock::new();
    TREE.get_or_init(|| {
        let mut nodes = vec![[0u16; 2]];
        for (sym, &(code, len)) in HUFFMAN.iter().enumerate() {
            let mut at = 0usize;
            for bit in (0..len).rev() {
                let b = ((code >> bit) & 1) as usize;
                if bit == 0 {
                    nodes[at][b] = LEAF + sym as u16;
                } else {
                    if nodes[at][b] == 0 {
                        nodes.push([0, 0]);
                        nodes[at][b] = (nodes.len() - 1) as u16;
                    }
                    at = usize::from(nodes[at][b]);
                }
            }
        }
        Tree { nodes }
    })
}

/// Decodes a Huffman string (RFC 7541 §5.2) onto `out`.
pub fn huffman_decode(src: &[u8], out: &mut Vec<u8>) -> Result<(), HpackError> {
    let t = tree();
    let mut at = 0usize;
    // Bits read since the last symbol, and whether they were all ones (valid padding).
    let (mut pending, mut all_ones) = (0u32, true);
    for &byte in src {
        for bit in (0..8).rev() {
            let b = usize::from((byte >> bit) & 1);
            pending += 1;
            all_ones &= b == 1;
            let next = t.nodes[at][b];
            if next >= LEAF {
                let sym = next - LEAF;
                if sym == EOS {
                    return Err(HpackError::BadHuffman);
                }
                out.push(sym as u8);
                at = 0;
                pending = 0;
                all_ones = true;
            } else if next == 0 {
                return Err(HpackError::BadHuffman);
            } else {
                at = usize::from(next);
            }
        }
    }
    if pending > 7 || !all_ones {
        return Err(HpackError::BadHuffman);
    }
    Ok(())
}

/// The decoder: the dynamic table and its size limit.
#[derive(Debug)]
pub struct Decoder {
    /// Newest first.
    table: VecDeque<(Vec<u8>, Vec<u8>)>,
    size: usize,
    max_size: usize,
    /// The limit we advertised (`SETTINGS_HEADER_TABLE_SIZE`).
    limit: usize,
}

impl Decoder {
    /// A decoder whose table may grow to `limit` octets (the value we advertise; 4096 default).
    #[must_use]
    pub fn new(limit: usize) -> Self {
        Decoder {
            table: VecDeque::with_capacity(64),
            size: 0,
            max_size: limit,
            limit,
        }
    }

    /// Entries in the dynamic table (tests).
    #[must_use]
    pub fn dynamic_len(&self) -> usize {
        self.table.len()
    }

    fn evict_to(&mut self, max: usize) {
        while self.size > max {
            if let Some((n, v)) = self.table.pop_back() {
                self.size -= n.len() + v.len() + 32;
            } else {
                self.size = 0;
            }
        }
    }

    fn insert(&mut self, name: Vec<u8>, value: Vec<u8>) {
        let entry = name.len() + value.len() + 32;
        if entry > self.max_size {
            self.table.clear();
            self.size = 0;
            return;
        }
        self.evict_to(self.max_size - entry);
        self.size += entry;
        self.table.push_front((name, value));
    }

    fn entry(&self, index: usize) -> Result<(&[u8], &[u8]), HpackError> {
        if index == 0 {
            return Err(HpackError::BadIndex);
        }
        if let Some((n, v)) = STATIC.get(index - 1) {
            return Ok((n, v));
        }
        self.table
            .get(index - 1 - STATIC.len())
            .map(|(n, v)| (n.as_slice(), v.as_slice()))
            .ok_or(HpackError::BadIndex)
    }

    fn string(buf: &[u8], pos: &mut usize) -> Result<Vec<u8>, HpackError> {
        let huff = buf.get(*pos).ok_or(HpackError::Truncated)? & 0x80 != 0;
        let len = decode_int(buf, pos, 7)?;
        let raw = buf.get(*pos..*pos + len).ok_or(HpackError::Truncated)?;
        *pos += len;
        if huff {
            let mut out = Vec::with_capacity(len * 8 / 5 + 1);
            huffman_decode(raw, &mut out)?;
            Ok(out)
        } else {
            Ok(raw.to_vec())
        }
    }

    /// Decodes a complete header block, calling `emit(name, value)` per header in order.
    pub fn decode(
        &mut self,
        block: &[u8],
        mut emit: impl FnMut(&[u8], &[u8]),
    ) -> Result<(), HpackError> {
        let mut pos = 0;
        let mut headers_seen = false;
        while pos < block.len() {
            let b = block[pos];
            if b & 0x80 != 0 {
                let i = decode_int(block, &mut pos, 7)?;
                let (n, v) = self.entry(i)?;
                emit(n, v);
                headers_seen = true;
            } else if b & 0xe0 == 0x20 {
                // Dynamic table size update: only before the first header.
                let size = decode_int(block, &mut pos, 5)?;
                if headers_seen || size > self.limit {
                    return Err(HpackError::BadSizeUpdate);
                }
                self.max_size = size;
                self.evict_to(size);
            } else {
                // 01xxxxxx: incremental indexing (6-bit); 0000/0001xxxx: without / never (4-bit).
                let (bits, index) = if b & 0x40 != 0 { (6, true) } else { (4, false) };
                let i = decode_int(block, &mut pos, bits)?;
                let name = if i == 0 {
                    Self::string(block, &mut pos)?
                } else {
                    self.entry(i)?.0.to_vec()
                };
                let value = Self::string(block, &mut pos)?;
                emit(&name, &value);
                if index {
                    self.insert(name, value);
                }
                headers_seen = true;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn decode_all(d: &mut Decoder, block: &[u8]) -> Vec<(String, String)> {
        let mut v = Vec::new();
        d.decode(block, |n, val| {
            v.push((
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(val).into_owned(),
            ));
        })
        .unwrap();
        v
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 7541 C.4: requests with Huffman coding, sharing a dynamic table.
    #[test]
    fn rfc7541_c4_huffman_requests() {
        let mut d = Decoder::new(4096);
        let one = decode_all(&mut d, &hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"));
        assert_eq!(one[3], (":authority".into(), "www.example.com".into()));
        let two = decode_all(&mut d, &hex("8286 84be 5886 a8eb 1064 9cbf"));
        assert_eq!(two[3], (":authority".into(), "www.example.com".into()));
        assert_eq!(two[4], ("cache-control".into(), "no-cache".into()));
        let three = decode_all(
            &mut d,
            &hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"),
        );
        assert_eq!(three[1], (":scheme".into(), "https".into()));
        assert_eq!(three[4], ("custom-key".into(), "custom-value".into()));
        assert_eq!(d.dynamic_len(), 3);
        assert_eq!(d.size, 164, "RFC 7541 C.4.3 table size");
    }

    /// RFC 7541 C.6: responses with Huffman coding and eviction in a 256-octet table.
    #[test]
    fn rfc7541_c6_eviction() {
        let mut d = Decoder::new(256);
        let blocks = [
            "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 \
             2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
            "4883 640e ffc1 c0bf",
        ];
        let one = decode_all(&mut d, &hex(blocks[0]));
        assert_eq!(one[0], (":status".into(), "302".into()));
        assert_eq!(
            one[3],
            ("location".into(), "https://www.example.com".into())
        );
        let two = decode_all(&mut d, &hex(blocks[1]));
        assert_eq!(two[0], (":status".into(), "307".into()));
        assert_eq!(two[1], ("cache-control".into(), "private".into()));
        assert_eq!(d.size, 222);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let mut d = Decoder::new(4096);
        for bad in [
            &[0x80][..],                                             // index 0
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],             // overflow
            &[0xbf + 30],                                            // past both tables
            &[0x40, 0x85, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, b'a'], // EOS in huffman
            &[0x3f, 0xe2, 0x1f], // size update to 4097, above the limit
            &[0x82, 0x20],       // size update after a header
            &[0x40, 0x05, b'a'], // truncated
        ] {
            assert!(d.decode(bad, |_, _| {}).is_err(), "{bad:02x?}");
        }
    }

    #[test]
    fn encoded_literals_decode_back() {
        let mut out = Vec::new();
        out.push(0x83);
        encode_never_indexed(&mut out, b":path", b"/order");
        encode_never_indexed(&mut out, b"content-type", b"application/json");
        encode_never_indexed(&mut out, b"poly_signature", &[b'x'; 300]);
        let mut d = Decoder::new(4096);
        let v = decode_all(&mut d, &out);
        assert_eq!(v[0], (":method".into(), "POST".into()));
        assert_eq!(v[1], (":path".into(), "/order".into()));
        assert_eq!(v[2].0, "content-type");
        assert_eq!(v[3].1.len(), 300);
        assert_eq!(d.dynamic_len(), 0, "never-indexed literals leave no state");
    }
}
