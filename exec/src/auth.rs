//! L2 (HMAC) and L1 (`ClobAuth` EIP-712) request headers, as the reference's
//! `create_level_2_headers` / `create_level_1_headers` build them.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use crate::Error;
use crate::eip712::clob_auth_digest;
use crate::hex;
use crate::keys::{Address, PrivateKey};
use crate::order::fmt_u64;

/// Length of `POLY_SIGNATURE` (url-safe base64 of 32 bytes, padded).
pub const HMAC_B64_LEN: usize = 44;

/// API credentials. The secret and passphrase never appear in `Debug`.
#[derive(Clone)]
pub struct ApiCreds {
    /// API key (sent as `POLY_API_KEY` and as the order `owner`).
    pub api_key: String,
    secret: String,
    passphrase: String,
}

impl fmt::Debug for ApiCreds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiCreds")
            .field("api_key", &self.api_key)
            .field("secret", &"<redacted>")
            .field("passphrase", &"<redacted>")
            .finish()
    }
}

impl ApiCreds {
    /// Bundles credentials.
    #[must_use]
    pub fn new(api_key: String, secret: String, passphrase: String) -> Self {
        ApiCreds {
            api_key,
            secret,
            passphrase,
        }
    }
    /// The passphrase (header value).
    #[must_use]
    pub fn passphrase(&self) -> &str {
        &self.passphrase
    }

    /// The user-channel subscription message
    /// `{"auth":{"apiKey","secret","passphrase"},"markets":[…],"type":"user"}` (PROTOCOL_NOTES.md
    /// §5). It carries the secret: send it, never log it.
    #[must_use]
    pub fn user_subscription(&self, markets: &[String]) -> String {
        serde_json::json!({
            "auth": {
                "apiKey": self.api_key,
                "secret": self.secret,
                "passphrase": self.passphrase,
            },
            "markets": markets,
            "type": "user",
        })
        .to_string()
    }
}

/// Decodes the secret like Python's `base64.urlsafe_b64decode` (either alphabet; padding
/// required).
fn decode_secret(secret: &str) -> Result<Vec<u8>, Error> {
    let std: String = secret
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    // The decoder's message names offending symbols; report only the length.
    STANDARD
        .decode(std.as_bytes())
        .map_err(|_| Error::BadSecret(format!("{} characters, not valid base64", secret.len())))
}

/// An HMAC-SHA256 keyed once: the inner/outer pad blocks are absorbed at construction, so each
/// request only hashes its own message (clone of a 2×SHA-256 midstate, no allocation).
#[derive(Clone)]
pub struct L2Signer {
    mac: Hmac<Sha256>,
    address: [u8; 42],
    creds: ApiCreds,
    /// This signer's identity: unique per [`L2Signer::new`] in the process, kept by clones.
    id: u64,
}

/// The next [`L2Signer`] identity.
static NEXT_SIGNER_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl fmt::Debug for L2Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("L2Signer")
            .field("address", &String::from_utf8_lossy(&self.address))
            .field("creds", &self.creds)
            .finish_non_exhaustive()
    }
}

/// The five L2 headers, in the reference's order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct L2Headers {
    /// Checksummed EOA.
    #[serde(rename = "POLY_ADDRESS")]
    pub address: String,
    /// url-safe base64 HMAC.
    #[serde(rename = "POLY_SIGNATURE")]
    pub signature: String,
    /// Unix seconds.
    #[serde(rename = "POLY_TIMESTAMP")]
    pub timestamp: String,
    /// API key.
    #[serde(rename = "POLY_API_KEY")]
    pub api_key: String,
    /// Passphrase.
    #[serde(rename = "POLY_PASSPHRASE")]
    pub passphrase: String,
}

impl L2Signer {
    /// Keys the HMAC with the url-safe-base64-decoded secret.
    pub fn new(address: &Address, creds: ApiCreds) -> Result<Self, Error> {
        let key = decode_secret(&creds.secret)?;
        let mac =
            Hmac::<Sha256>::new_from_slice(&key).map_err(|e| Error::BadSecret(e.to_string()))?;
        Ok(L2Signer {
            mac,
            address: address.checksummed(),
            creds,
            id: NEXT_SIGNER_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// This signer's identity (unique per [`L2Signer::new`] in the process; a clone keeps it):
    /// signatures made ahead of time by a clone are this signer's own.
    #[must_use]
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Checksummed address text.
    #[must_use]
    pub fn address(&self) -> &[u8; 42] {
        &self.address
    }

    /// Credentials.
    #[must_use]
    pub fn creds(&self) -> &ApiCreds {
        &self.creds
    }

    /// `POLY_SIGNATURE` for `timestamp + method + path + body` into `out`, without allocating.
    /// As in the reference, an empty body is omitted and `'` in the body is replaced by `"`
    /// for the MAC only (order bodies never contain `'`).
    pub fn sign_into(
        &self,
        timestamp_s: u64,
        method: &str,
        path: &str,
        body: &[u8],
        out: &mut [u8; HMAC_B64_LEN],
    ) {
        let quote_free = !body.contains(&b'\'');
        self.sign_prescanned(timestamp_s, method, path, body, quote_free, out);
    }

    /// [`L2Signer::sign_into`] with the `'` scan done ahead of time (the pool scans each body
    /// once when it signs it): `quote_free` must be `!body.contains(&b'\'')`.
    pub fn sign_prescanned(
        &self,
        timestamp_s: u64,
        method: &str,
        path: &str,
        body: &[u8],
        quote_free: bool,
        out: &mut [u8; HMAC_B64_LEN],
    ) {
        debug_assert_eq!(quote_free, !body.contains(&b'\''));
        let mut mac = self.mac.clone();
        // timestamp + method + path in one update (typically < 40 bytes).
        let mut head = [0u8; 128];
        let mut num = [0u8; 20];
        let ts = fmt_u64(&mut num, timestamp_s);
        let (m, p) = (method.as_bytes(), path.as_bytes());
        let n = ts.len() + m.len() + p.len();
        if n <= head.len() {
            head[..ts.len()].copy_from_slice(ts);
            head[ts.len()..ts.len() + m.len()].copy_from_slice(m);
            head[ts.len() + m.len()..n].copy_from_slice(p);
            mac.update(&head[..n]);
        } else {
            mac.update(ts);
            mac.update(m);
            mac.update(p);
        }
        if quote_free {
            mac.update(body);
        } else {
            let mut rest = body;
            while let Some(i) = rest.iter().position(|&b| b == b'\'') {
                mac.update(&rest[..i]);
                mac.update(b"\"");
                rest = &rest[i + 1..];
            }
            mac.update(rest);
        }
        let tag = mac.finalize().into_bytes();
        // 32 bytes always encode to exactly 44 padded characters.
        let n = URL_SAFE.encode_slice(tag, out.as_mut_slice()).unwrap_or(0);
        debug_assert_eq!(n, HMAC_B64_LEN);
    }

    /// The full header set for one request.
    #[must_use]
    pub fn headers(&self, timestamp_s: u64, method: &str, path: &str, body: &[u8]) -> L2Headers {
        let mut sig = [0u8; HMAC_B64_LEN];
        self.sign_into(timestamp_s, method, path, body, &mut sig);
        L2Headers {
            address: String::from_utf8_lossy(&self.address).into_owned(),
            signature: String::from_utf8_lossy(&sig).into_owned(),
            timestamp: timestamp_s.to_string(),
            api_key: self.creds.api_key.clone(),
            passphrase: self.creds.passphrase.clone(),
        }
    }
}

/// The four L1 headers for `POST /auth/api-key` and `GET /auth/derive-api-key`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct L1Headers {
    /// Checksummed EOA.
    #[serde(rename = "POLY_ADDRESS")]
    pub address: String,
    /// `0x` + 65-byte signature of the `ClobAuth` typed data.
    #[serde(rename = "POLY_SIGNATURE")]
    pub signature: String,
    /// Unix seconds.
    #[serde(rename = "POLY_TIMESTAMP")]
    pub timestamp: String,
    /// Nonce.
    #[serde(rename = "POLY_NONCE")]
    pub nonce: String,
}

/// Builds the L1 headers.
pub fn l1_headers(
    key: &PrivateKey,
    chain_id: u64,
    timestamp_s: u64,
    nonce: u64,
) -> Result<L1Headers, Error> {
    let ts = timestamp_s.to_string();
    let digest = clob_auth_digest(&key.address(), &ts, nonce, chain_id);
    let sig = key.sign_digest(&digest)?;
    Ok(L1Headers {
        address: key.address().to_string(),
        signature: hex::encode_0x(&sig),
        timestamp: ts,
        nonce: nonce.to_string(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn secrets_are_redacted_and_bad_secrets_not_echoed() {
        let c = ApiCreds::new("key-1".into(), "c2VjcmV0LXZhbHVl".into(), "pass-xyz".into());
        let dbg = format!("{c:?}");
        assert!(dbg.contains("key-1") && !dbg.contains("c2VjcmV0") && !dbg.contains("pass-xyz"));
        let addr = Address([7; 20]);
        let s = L2Signer::new(&addr, c).unwrap();
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("c2VjcmV0") && !dbg.contains("pass-xyz"));
        let bad = ApiCreds::new("k".into(), "s3cr3t!!".into(), "p".into());
        let e = L2Signer::new(&addr, bad).unwrap_err().to_string();
        assert!(!e.contains("s3cr3t"), "{e}");
        // Either alphabet decodes, as Python's urlsafe_b64decode accepts both.
        let a = L2Signer::new(&addr, ApiCreds::new("k".into(), "-_-_".into(), "p".into())).unwrap();
        let b = L2Signer::new(&addr, ApiCreds::new("k".into(), "+/+/".into(), "p".into())).unwrap();
        assert_eq!(a.headers(1, "GET", "/", b""), b.headers(1, "GET", "/", b""));
    }
}
