//! The hash the signing modules share (Ethereum's keccak256), below both [`crate::eip712`] and
//! [`crate::keys`] so neither depends on the other for it.

use sha3::{Digest, Keccak256};

/// keccak256 of `data`.
#[must_use]
pub fn keccak256(data: &[u8]) -> [u8; 32] {
    Keccak256::digest(data).into()
}
