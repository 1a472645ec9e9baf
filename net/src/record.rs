//! Allocation-free TLS 1.3 record layer used after rustls has completed the handshake.
//!
//! rustls 0.23 copies every decrypted record into a fresh `Vec`; to keep the steady-state receive
//! path allocation-free, the link takes the traffic secrets from rustls once the handshake is done
//! (`dangerous_extract_secrets`, the kTLS hand-off) and opens/seals records in place with `ring`
//! (AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305; RFC 8446 §5.2-5.3). Post-handshake
//! NewSessionTicket messages are ignored; a KeyUpdate ends the connection with an error (the
//! caller reconnects); a close_notify alert is a clean close.

use ring::aead::{
    AES_128_GCM, AES_256_GCM, Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey,
};
use rustls::ConnectionTrafficSecrets;

use crate::error::{NetError, Result};

const HEADER_BYTES: usize = 5;
const TAG_BYTES: usize = 16;
/// Largest TLSCiphertext.length (RFC 8446 §5.2).
const MAX_CIPHERTEXT_BYTES: usize = (1 << 14) + 256;
const MAX_PLAINTEXT_BYTES: usize = 1 << 14;
/// Largest record on the wire, header included.
pub(crate) const MAX_RECORD_BYTES: usize = HEADER_BYTES + MAX_CIPHERTEXT_BYTES;
const CONTENT_ALERT: u8 = 21;
const CONTENT_HANDSHAKE: u8 = 22;
const CONTENT_APPLICATION_DATA: u8 = 23;
const HANDSHAKE_NEW_SESSION_TICKET: u8 = 4;

/// One direction's AEAD state.
pub(crate) struct Direction {
    key: LessSafeKey,
    iv: [u8; 12],
    seq: u64,
}

impl std::fmt::Debug for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direction")
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl Direction {
    pub(crate) fn new(seq: u64, secrets: ConnectionTrafficSecrets) -> Result<Self> {
        let (alg, key, iv) = match &secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => {
                (&AES_128_GCM, key.as_ref(), iv.as_ref())
            }
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => {
                (&AES_256_GCM, key.as_ref(), iv.as_ref())
            }
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
                (&CHACHA20_POLY1305, key.as_ref(), iv.as_ref())
            }
            _ => {
                return Err(NetError::TlsConfig(
                    "unsupported cipher for the record layer".into(),
                ));
            }
        };
        let key = UnboundKey::new(alg, key)
            .map_err(|_| NetError::TlsConfig("bad traffic key length".into()))?;
        let iv: [u8; 12] = iv
            .try_into()
            .map_err(|_| NetError::TlsConfig("bad traffic iv length".into()))?;
        Ok(Direction {
            key: LessSafeKey::new(key),
            iv,
            seq,
        })
    }

    fn nonce(&mut self) -> Result<Nonce> {
        let mut n = self.iv;
        for (b, s) in n[4..].iter_mut().zip(self.seq.to_be_bytes()) {
            *b ^= s;
        }
        self.seq = self
            .seq
            .checked_add(1)
            .ok_or(NetError::WsProtocol("tls sequence number exhausted"))?;
        Ok(Nonce::assume_unique_for_key(n))
    }
}

/// What one record carried.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Opened {
    /// Application data at `[start..end)` of the buffer passed in.
    Data { start: usize, end: usize },
    /// A record with nothing for the application (session ticket).
    Nothing,
    /// The peer sent close_notify.
    Closed,
}

/// Opens the record at the start of `buf` in place. `Ok(None)`: incomplete (need more bytes);
/// otherwise the bytes consumed and what the record held.
pub(crate) fn open(rx: &mut Direction, buf: &mut [u8]) -> Result<Option<(usize, Opened)>> {
    if buf.len() < HEADER_BYTES {
        return Ok(None);
    }
    let len = usize::from(u16::from_be_bytes([buf[3], buf[4]]));
    if buf[0] != CONTENT_APPLICATION_DATA
        || buf[1] != 3
        || !(TAG_BYTES + 1..=MAX_CIPHERTEXT_BYTES).contains(&len)
    {
        return Err(NetError::Tls(rustls::Error::General(format!(
            "bad TLS 1.3 record header {:02x?}",
            &buf[..HEADER_BYTES]
        ))));
    }
    let total = HEADER_BYTES + len;
    if buf.len() < total {
        return Ok(None);
    }
    let (header, body) = buf[..total].split_at_mut(HEADER_BYTES);
    let nonce = rx.nonce()?;
    let plain = rx
        .key
        .open_in_place(nonce, Aad::from(&header[..]), body)
        .map_err(|_| NetError::Tls(rustls::Error::DecryptError))?;
    // TLSInnerPlaintext: content || type || zeros.
    let Some(type_pos) = plain.iter().rposition(|&b| b != 0) else {
        return Err(NetError::Tls(rustls::Error::General(
            "record without content type".into(),
        )));
    };
    let content = &plain[..type_pos];
    let opened = match plain[type_pos] {
        CONTENT_APPLICATION_DATA => Opened::Data {
            start: HEADER_BYTES,
            end: HEADER_BYTES + type_pos,
        },
        CONTENT_HANDSHAKE => {
            if content.first() == Some(&HANDSHAKE_NEW_SESSION_TICKET) {
                Opened::Nothing
            } else {
                return Err(NetError::Tls(rustls::Error::General(
                    "post-handshake message other than NewSessionTicket (KeyUpdate): reconnect"
                        .into(),
                )));
            }
        }
        CONTENT_ALERT => {
            if content == [1, 0] {
                Opened::Closed
            } else {
                return Err(NetError::Tls(rustls::Error::General(format!(
                    "alert {content:?}"
                ))));
            }
        }
        other => {
            return Err(NetError::Tls(rustls::Error::General(format!(
                "unexpected inner content type {other}"
            ))));
        }
    };
    Ok(Some((total, opened)))
}

/// Appends `data` to `out` as application-data records (≤ 16 KiB each), sealed in place.
pub(crate) fn seal(tx: &mut Direction, data: &[u8], out: &mut Vec<u8>) -> Result<()> {
    for chunk in data.chunks(MAX_PLAINTEXT_BYTES) {
        seal_one(tx, chunk, CONTENT_APPLICATION_DATA, out)?;
    }
    Ok(())
}

/// Largest plaintext of one record.
pub(crate) const MAX_PLAINTEXT: usize = MAX_PLAINTEXT_BYTES;

/// Seals in place the record whose 5 header bytes start at `out[start]` and whose plaintext is
/// everything after them (at most [`MAX_PLAINTEXT`] bytes): the caller wrote the plaintext
/// straight into the send queue, nothing is copied.
pub(crate) fn seal_in_place(tx: &mut Direction, out: &mut Vec<u8>, start: usize) -> Result<()> {
    let plain = out.len() - start - HEADER_BYTES;
    debug_assert!(plain <= MAX_PLAINTEXT_BYTES);
    let len = plain + 1 + TAG_BYTES;
    let len16 = u16::try_from(len).map_err(|_| NetError::WsProtocol("record too large"))?;
    let l = len16.to_be_bytes();
    out[start..start + HEADER_BYTES].copy_from_slice(&[CONTENT_APPLICATION_DATA, 3, 3, l[0], l[1]]);
    out.push(CONTENT_APPLICATION_DATA);
    let nonce = tx.nonce()?;
    let (header, body) = out[start..].split_at_mut(HEADER_BYTES);
    let tag = tx
        .key
        .seal_in_place_separate_tag(nonce, Aad::from(&header[..]), body)
        .map_err(|_| NetError::Tls(rustls::Error::EncryptError))?;
    out.extend_from_slice(tag.as_ref());
    Ok(())
}

/// Appends an encrypted close_notify alert.
pub(crate) fn seal_close_notify(tx: &mut Direction, out: &mut Vec<u8>) -> Result<()> {
    seal_one(tx, &[1, 0], CONTENT_ALERT, out)
}

fn seal_one(tx: &mut Direction, chunk: &[u8], content_type: u8, out: &mut Vec<u8>) -> Result<()> {
    let len = chunk.len() + 1 + TAG_BYTES;
    let len16 = u16::try_from(len).map_err(|_| NetError::WsProtocol("record too large"))?;
    let start = out.len();
    out.push(CONTENT_APPLICATION_DATA);
    out.extend_from_slice(&[3, 3]);
    out.extend_from_slice(&len16.to_be_bytes());
    out.extend_from_slice(chunk);
    out.push(content_type);
    let nonce = tx.nonce()?;
    let (header, body) = out[start..].split_at_mut(HEADER_BYTES);
    let tag = tx
        .key
        .seal_in_place_separate_tag(nonce, Aad::from(&header[..]), body)
        .map_err(|_| NetError::Tls(rustls::Error::EncryptError))?;
    out.extend_from_slice(tag.as_ref());
    Ok(())
}
