//! Addresses, the private key (a secret: redacted `Debug`, zeroized by `k256` on drop) and
//! secp256k1 signing/recovery in Ethereum's 65-byte `r ‖ s ‖ v` form (v = 27/28).

use std::fmt;
use std::path::Path;

use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};

use crate::Error;
use crate::hash::keccak256;
use crate::hex;

/// A 20-byte Ethereum address. `Display` is the EIP-55 checksummed form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Address(pub [u8; 20]);

impl Address {
    /// Parses `0x` + 40 hex digits (any case; the checksum is not enforced, like the reference).
    pub fn parse(s: &str) -> Result<Self, Error> {
        if !s.starts_with("0x") {
            return Err(Error::BadField {
                field: "address",
                reason: format!("{s:?} does not start with 0x"),
            });
        }
        Ok(Address(hex::decode_fixed::<20>(s, "address")?))
    }

    /// EIP-55 checksummed text, written into a fixed buffer.
    #[must_use]
    pub fn checksummed(&self) -> [u8; 42] {
        let mut out = [0u8; 42];
        out[..2].copy_from_slice(b"0x");
        hex::encode_into(&self.0, &mut out[2..]);
        let h = keccak256(&out[2..]);
        for i in 0..40 {
            let nib = (h[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0xf;
            if nib >= 8 {
                out[2 + i] = out[2 + i].to_ascii_uppercase();
            }
        }
        out
    }

    /// Address of a public key.
    #[must_use]
    pub fn of_key(key: &VerifyingKey) -> Self {
        let point = key.to_encoded_point(false);
        let h = keccak256(&point.as_bytes()[1..]);
        let mut a = [0u8; 20];
        a.copy_from_slice(&h[12..]);
        Address(a)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(std::str::from_utf8(&self.checksummed()).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

/// A secp256k1 private key. Never printed: `Debug` shows only the address.
pub struct PrivateKey {
    key: SigningKey,
    address: Address,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey(<redacted>, address {})", self.address)
    }
}

/// A 65-byte Ethereum signature `r ‖ s ‖ v`, v ∈ {27, 28}.
pub type Sig65 = [u8; 65];

impl PrivateKey {
    /// From 32 bytes of hex (with or without `0x`; surrounding whitespace ignored).
    pub fn from_hex(s: &str) -> Result<Self, Error> {
        let bytes = hex::decode_fixed::<32>(s.trim(), "private key").map_err(|_| Error::BadKey)?;
        let key = SigningKey::from_bytes((&bytes).into()).map_err(|_| Error::BadKey)?;
        let address = Address::of_key(key.verifying_key());
        Ok(PrivateKey { key, address })
    }

    /// Reads a key file holding a hex private key. Refuses files readable or writable by group
    /// or others (mode & 0o077 != 0).
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        use std::os::unix::fs::PermissionsExt as _;
        let io = |e: std::io::Error| Error::KeyFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(Error::KeyFile {
                path: path.display().to_string(),
                reason: format!(
                    "mode {:o} lets group/others access the key; run `chmod 600 {}`",
                    mode & 0o777,
                    path.display()
                ),
            });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        PrivateKey::from_hex(&text).map_err(|_| Error::KeyFile {
            path: path.display().to_string(),
            reason: "does not hold a 32-byte hex private key".to_owned(),
        })
    }

    /// The key's address.
    #[must_use]
    pub fn address(&self) -> Address {
        self.address
    }

    /// Signs a 32-byte digest (RFC 6979 deterministic nonce, low-s), returning `r ‖ s ‖ v`.
    pub fn sign_digest(&self, digest: &[u8; 32]) -> Result<Sig65, Error> {
        let (sig, recid) = self
            .key
            .sign_prehash_recoverable(digest)
            .map_err(|_| Error::Signing)?;
        let mut out = [0u8; 65];
        out[..64].copy_from_slice(&sig.to_bytes());
        out[64] = 27 + recid.to_byte();
        Ok(out)
    }
}

/// Recovers the address that produced `sig` over `digest`.
pub fn recover(digest: &[u8; 32], sig: &Sig65) -> Result<Address, Error> {
    let v = match sig[64] {
        27 | 28 => sig[64] - 27,
        0 | 1 => sig[64],
        _ => return Err(Error::BadSignature("v is not 27/28")),
    };
    let recid = RecoveryId::from_byte(v).ok_or(Error::BadSignature("bad recovery id"))?;
    let s = Signature::from_slice(&sig[..64]).map_err(|_| Error::BadSignature("bad r/s"))?;
    let key = VerifyingKey::recover_from_prehash(digest, &s, recid)
        .map_err(|_| Error::BadSignature("recovery failed"))?;
    Ok(Address::of_key(&key))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn known_address_and_redaction() {
        // The well-known key 0x…01 has address 0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf.
        let k = PrivateKey::from_hex(
            "0x0000000000000000000000000000000000000000000000000000000000000001",
        )
        .unwrap();
        assert_eq!(
            k.address().to_string(),
            "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
        );
        let dbg = format!("{k:?}");
        assert!(dbg.contains("redacted") && !dbg.contains("0000000001"));
        let digest = keccak256(b"x");
        let sig = k.sign_digest(&digest).unwrap();
        assert_eq!(recover(&digest, &sig).unwrap(), k.address());
        let mut bad = sig;
        bad[64] = 30;
        assert!(recover(&digest, &bad).is_err());
    }
}
