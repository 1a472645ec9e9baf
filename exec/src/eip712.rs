//! EIP-712 hashing for CLOB V2/V3 orders and the L1 `ClobAuth` message, plus the ERC-7739
//! wrapping used by signature type 3 (POLY_1271 deposit wallets).

use sha3::{Digest, Keccak256};

use crate::Error;
use crate::keys::Address;

pub use crate::hash::keccak256;

/// The V2 order type string (11 fields; `expiration` is not signed).
pub const ORDER_TYPE: &str = "Order(uint256 salt,address maker,address signer,uint256 tokenId,uint256 makerAmount,uint256 takerAmount,uint8 side,uint8 signatureType,uint256 timestamp,bytes32 metadata,bytes32 builder)";
const DOMAIN_TYPE: &str =
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)";
const CLOB_AUTH_DOMAIN_TYPE: &str = "EIP712Domain(string name,string version,uint256 chainId)";
const CLOB_AUTH_TYPE: &str =
    "ClobAuth(address address,string timestamp,uint256 nonce,string message)";
/// The message every L1 `ClobAuth` signature attests.
pub const CLOB_AUTH_MESSAGE: &str = "This message attests that I control the given wallet";
const EXCHANGE_NAME: &str = "Polymarket CTF Exchange";

/// A 256-bit unsigned integer, big-endian.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct U256(pub [u8; 32]);

impl U256 {
    /// From a `u64`.
    #[must_use]
    pub fn from_u64(v: u64) -> Self {
        let mut b = [0u8; 32];
        b[24..].copy_from_slice(&v.to_be_bytes());
        U256(b)
    }

    /// Parses a non-empty decimal digit string below 2²⁵⁶.
    pub fn from_dec_str(s: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::BadField {
            field: "token_id",
            reason: format!("{why}: {:?}", s.chars().take(90).collect::<String>()),
        };
        if s.is_empty() || s.len() > 78 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("not a decimal uint256"));
        }
        // Little-endian u64 limbs.
        let mut limbs = [0u64; 4];
        for b in s.bytes() {
            let mut carry = u128::from(b - b'0');
            for limb in &mut limbs {
                let v = u128::from(*limb) * 10 + carry;
                *limb = v as u64; // truncation intended: low 64 bits
                carry = v >> 64;
            }
            if carry != 0 {
                return Err(bad("does not fit in 256 bits"));
            }
        }
        let mut out = [0u8; 32];
        for (i, limb) in limbs.iter().enumerate() {
            out[32 - 8 * (i + 1)..32 - 8 * i].copy_from_slice(&limb.to_be_bytes());
        }
        Ok(U256(out))
    }
}

/// The exchange contracts of one chain (reference `get_contract_config`).
#[derive(Clone, Copy, Debug)]
pub struct ContractConfig {
    /// CTF exchange V2.
    pub exchange_v2: &'static str,
    /// Neg-risk CTF exchange V2.
    pub neg_risk_exchange_v2: &'static str,
    /// Exchange V3 (protocol-v2 markets, Gamma `version: "v2"`).
    pub exchange_v3: &'static str,
}

/// Contract addresses for `chain_id` (137 Polygon, 80002 Amoy).
pub fn contract_config(chain_id: u64) -> Result<ContractConfig, Error> {
    match chain_id {
        137 => Ok(ContractConfig {
            exchange_v2: "0xE111180000d2663C0091e4f400237545B87B996B",
            neg_risk_exchange_v2: "0xe2222d279d744050d28e00520010520000310F59",
            exchange_v3: "0xe3333700cA9d93003F00f0F71f8515005F6c00Aa",
        }),
        80002 => Ok(ContractConfig {
            exchange_v2: "0xE111180000d2663C0091e4f400237545B87B996B",
            neg_risk_exchange_v2: "0xe2222d279d744050d28e00520010520000310F59",
            exchange_v3: "0x9fE6e61422AdB6F610d8597F9684b16912D50C3D",
        }),
        _ => Err(Error::BadField {
            field: "chain_id",
            reason: format!("{chain_id} is not 137 (Polygon) or 80002 (Amoy)"),
        }),
    }
}

/// The EIP-712 domain an order is signed under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderDomain {
    /// Chain id.
    pub chain_id: u64,
    /// Verifying contract (the exchange).
    pub exchange: Address,
    /// Domain version: 2 (CTF exchange V2 / neg-risk V2) or 3 (Exchange V3).
    pub version: u8,
    /// Cached domain separator.
    pub separator: [u8; 32],
}

impl OrderDomain {
    /// The domain for `exchange_version` (2 or 3), picking the neg-risk exchange when asked
    /// (ignored for version 3, as the reference does).
    pub fn new(chain_id: u64, exchange_version: u8, neg_risk: bool) -> Result<Self, Error> {
        let cfg = contract_config(chain_id)?;
        let addr = match (exchange_version, neg_risk) {
            (3, _) => cfg.exchange_v3,
            (2, true) => cfg.neg_risk_exchange_v2,
            (2, false) => cfg.exchange_v2,
            (v, _) => {
                return Err(Error::BadField {
                    field: "exchange_version",
                    reason: format!("{v} is not 2 or 3 (V1 orders are rejected by the venue)"),
                });
            }
        };
        let exchange = Address::parse(addr)?;
        let version = if exchange_version == 3 { "3" } else { "2" };
        let separator = domain_separator(EXCHANGE_NAME, version, chain_id, &exchange);
        Ok(OrderDomain {
            chain_id,
            exchange,
            version: exchange_version,
            separator,
        })
    }
}

fn word_u64(v: u64) -> [u8; 32] {
    U256::from_u64(v).0
}

fn word_addr(a: &Address) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[12..].copy_from_slice(&a.0);
    w
}

/// `keccak(DOMAIN_TYPEHASH ‖ keccak(name) ‖ keccak(version) ‖ chainId ‖ verifyingContract)`.
#[must_use]
pub fn domain_separator(name: &str, version: &str, chain_id: u64, contract: &Address) -> [u8; 32] {
    let mut h = Keccak256::new();
    h.update(keccak256(DOMAIN_TYPE.as_bytes()));
    h.update(keccak256(name.as_bytes()));
    h.update(keccak256(version.as_bytes()));
    h.update(word_u64(chain_id));
    h.update(word_addr(contract));
    h.finalize().into()
}

/// The signed fields of a V2 order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderStruct {
    /// Salt.
    pub salt: U256,
    /// Maker (funder).
    pub maker: Address,
    /// Signer.
    pub signer: Address,
    /// Token / position id.
    pub token_id: U256,
    /// Maker amount, 1e-6.
    pub maker_amount: u64,
    /// Taker amount, 1e-6.
    pub taker_amount: u64,
    /// 0 BUY, 1 SELL.
    pub side: u8,
    /// Signature type 0..=3.
    pub signature_type: u8,
    /// Milliseconds.
    pub timestamp_ms: u64,
    /// bytes32 metadata.
    pub metadata: [u8; 32],
    /// bytes32 builder code.
    pub builder: [u8; 32],
}

impl OrderStruct {
    /// EIP-712 `hashStruct(order)`.
    #[must_use]
    pub fn struct_hash(&self) -> [u8; 32] {
        let mut h = Keccak256::new();
        h.update(keccak256(ORDER_TYPE.as_bytes()));
        h.update(self.salt.0);
        h.update(word_addr(&self.maker));
        h.update(word_addr(&self.signer));
        h.update(self.token_id.0);
        h.update(word_u64(self.maker_amount));
        h.update(word_u64(self.taker_amount));
        h.update(word_u64(u64::from(self.side)));
        h.update(word_u64(u64::from(self.signature_type)));
        h.update(word_u64(self.timestamp_ms));
        h.update(self.metadata);
        h.update(self.builder);
        h.finalize().into()
    }

    /// The order hash: `keccak(0x1901 ‖ domainSeparator ‖ structHash)`.
    #[must_use]
    pub fn digest(&self, domain: &OrderDomain) -> [u8; 32] {
        typed_digest(&domain.separator, &self.struct_hash())
    }

    /// The digest the EOA signs for signature type 3: ERC-7739 `TypedDataSign` over the order
    /// with the deposit wallet (`signer`) as the DepositWallet "1" domain's verifying contract.
    #[must_use]
    pub fn erc7739_digest(&self, domain: &OrderDomain) -> [u8; 32] {
        let solady_type = format!(
            "TypedDataSign(Order contents,string name,string version,uint256 chainId,address verifyingContract,bytes32 salt){ORDER_TYPE}"
        );
        let mut h = Keccak256::new();
        h.update(keccak256(solady_type.as_bytes()));
        h.update(self.struct_hash());
        h.update(keccak256(b"DepositWallet"));
        h.update(keccak256(b"1"));
        h.update(word_u64(domain.chain_id));
        h.update(word_addr(&self.signer));
        h.update([0u8; 32]);
        let s: [u8; 32] = h.finalize().into();
        typed_digest(&domain.separator, &s)
    }
}

/// `keccak(0x19 0x01 ‖ separator ‖ struct_hash)`.
#[must_use]
pub fn typed_digest(separator: &[u8; 32], struct_hash: &[u8; 32]) -> [u8; 32] {
    let mut h = Keccak256::new();
    h.update([0x19, 0x01]);
    h.update(separator);
    h.update(struct_hash);
    h.finalize().into()
}

/// Digest of the L1 `ClobAuth` message (domain "ClobAuthDomain" v"1", no verifying contract).
#[must_use]
pub fn clob_auth_digest(address: &Address, timestamp: &str, nonce: u64, chain_id: u64) -> [u8; 32] {
    let mut d = Keccak256::new();
    d.update(keccak256(CLOB_AUTH_DOMAIN_TYPE.as_bytes()));
    d.update(keccak256(b"ClobAuthDomain"));
    d.update(keccak256(b"1"));
    d.update(word_u64(chain_id));
    let sep: [u8; 32] = d.finalize().into();
    let mut s = Keccak256::new();
    s.update(keccak256(CLOB_AUTH_TYPE.as_bytes()));
    s.update(word_addr(address));
    s.update(keccak256(timestamp.as_bytes()));
    s.update(word_u64(nonce));
    s.update(keccak256(CLOB_AUTH_MESSAGE.as_bytes()));
    typed_digest(&sep, &s.finalize().into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn order_typehash_matches_protocol_notes() {
        let h = keccak256(ORDER_TYPE.as_bytes());
        assert_eq!(
            crate::hex::encode_0x(&h),
            "0xbb86318a2138f5fa8ae32fbe8e659f8fcf13cc6ae4014a707893055433818589"
        );
    }

    #[test]
    fn u256_parse() {
        assert_eq!(U256::from_dec_str("1").unwrap(), U256::from_u64(1));
        let max = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
        assert_eq!(U256::from_dec_str(max).unwrap().0, [0xff; 32]);
        let over = "115792089237316195423570985008687907853269984665640564039457584007913129639936";
        assert!(U256::from_dec_str(over).is_err());
        assert!(U256::from_dec_str("").is_err());
        assert!(U256::from_dec_str("12a").is_err());
        assert_eq!(
            U256::from_dec_str("18446744073709551616").unwrap().0[23],
            1,
            "2^64"
        );
    }
}
