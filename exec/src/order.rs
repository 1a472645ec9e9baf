//! Order specification → signed V2 order → the exact `POST /order` / `POST /orders` body the
//! official client (py-clob-client-v2 `order_to_json_v2` + `json.dumps(separators=(",", ":"),
//! ensure_ascii=False)`) sends.

use std::str::FromStr;

use serde::Deserialize;

use crate::Error;
use crate::amounts::{Amounts, Decimal, OrderSide, TickSize, limit_amounts, market_amounts};
use crate::eip712::{ORDER_TYPE, OrderDomain, OrderStruct, U256};
use crate::hex;
use crate::keys::{Address, PrivateKey, Sig65, recover};

/// The all-zero bytes32 text.
pub const ZERO32: &str = "0x0000000000000000000000000000000000000000000000000000000000000000";

/// Most orders in one `POST /orders`.
pub const MAX_BATCH: usize = 15;

/// Time in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OrderType {
    /// Good till cancelled.
    Gtc,
    /// Good till date (`expiration`, unix seconds).
    Gtd,
    /// Fill or kill.
    Fok,
    /// Fill and kill (immediate or cancel).
    Fak,
}

impl OrderType {
    /// Wire string.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            OrderType::Gtc => "GTC",
            OrderType::Gtd => "GTD",
            OrderType::Fok => "FOK",
            OrderType::Fak => "FAK",
        }
    }
}

impl FromStr for OrderType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "GTC" => Ok(OrderType::Gtc),
            "GTD" => Ok(OrderType::Gtd),
            "FOK" => Ok(OrderType::Fok),
            "FAK" => Ok(OrderType::Fak),
            _ => Err(Error::BadField {
                field: "order_type",
                reason: format!("{s:?} is not GTC, GTD, FOK or FAK"),
            }),
        }
    }
}

/// Signature types of V2 orders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignatureType {
    /// 0: maker = signer = EOA.
    Eoa,
    /// 1: maker = Polymarket proxy wallet, signer = EOA.
    PolyProxy,
    /// 2: maker = Gnosis Safe, signer = EOA.
    PolyGnosisSafe,
    /// 3: maker = signer = deposit wallet; the EOA signs an ERC-7739 wrapped digest.
    Poly1271,
}

impl SignatureType {
    /// From the wire integer.
    pub fn from_code(c: u8) -> Result<Self, Error> {
        Ok(match c {
            0 => SignatureType::Eoa,
            1 => SignatureType::PolyProxy,
            2 => SignatureType::PolyGnosisSafe,
            3 => SignatureType::Poly1271,
            _ => {
                return Err(Error::BadField {
                    field: "signature_type",
                    reason: format!("{c} is not 0, 1, 2 or 3"),
                });
            }
        })
    }
    /// Wire integer.
    #[must_use]
    pub const fn code(self) -> u8 {
        match self {
            SignatureType::Eoa => 0,
            SignatureType::PolyProxy => 1,
            SignatureType::PolyGnosisSafe => 2,
            SignatureType::Poly1271 => 3,
        }
    }
}

/// One order as given to `ringbolt exec sign` (one JSON object per line). Prices and sizes are
/// decimal strings; `salt` and `timestamp_ms` are inputs so output is deterministic.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderInput {
    /// `BUY` or `SELL`.
    pub side: String,
    /// `limit` or `market`.
    pub kind: String,
    /// Limit price, or the worst price of a market order.
    pub price: String,
    /// Shares (limit orders).
    #[serde(default)]
    pub size: Option<String>,
    /// Market orders: pUSD to spend (BUY) or shares to sell (SELL).
    #[serde(default)]
    pub amount: Option<String>,
    /// CTF token id (exchange_version 2).
    #[serde(default)]
    pub token_id: Option<String>,
    /// Position id (protocol-v2 markets; selects exchange_version 3).
    #[serde(default)]
    pub position_id: Option<String>,
    /// Tick size string, e.g. `"0.01"`.
    pub tick_size: String,
    /// Neg-risk market (exchange_version 2 only).
    #[serde(default)]
    pub neg_risk: bool,
    /// 0 EOA, 1 proxy, 2 Safe, 3 deposit wallet.
    #[serde(default)]
    pub signature_type: u8,
    /// Funder (maker) address for signature types 1-3; defaults to the EOA.
    #[serde(default)]
    pub funder: Option<String>,
    /// GTC/GTD/FOK/FAK; defaults to GTC for limit and FOK for market orders.
    #[serde(default)]
    pub order_type: Option<String>,
    /// Post-only (GTC/GTD only).
    #[serde(default)]
    pub post_only: bool,
    /// Deferred execution flag of the body.
    #[serde(default)]
    pub defer_exec: bool,
    /// GTD expiry, unix seconds (sent, not signed). Market orders send 0.
    #[serde(default)]
    pub expiration: u64,
    /// Salt.
    pub salt: u64,
    /// Order timestamp, ms.
    pub timestamp_ms: u64,
    /// bytes32 builder code.
    #[serde(default)]
    pub builder_code: Option<String>,
    /// bytes32 metadata.
    #[serde(default)]
    pub metadata: Option<String>,
    /// Chain id (default 137).
    #[serde(default)]
    pub chain_id: Option<u64>,
    /// 2 (CTF exchange V2) or 3 (Exchange V3); `position_id` implies 3.
    #[serde(default)]
    pub exchange_version: Option<u8>,
}

/// A validated order specification (what the pool and the CLI both sign).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderSpec {
    /// Side.
    pub side: OrderSide,
    /// Market order (amount semantics) or limit order.
    pub market: bool,
    /// Price.
    pub price: Decimal,
    /// Size (limit) or amount (market).
    pub quantity: Decimal,
    /// Token id as sent (decimal text).
    pub token_id: String,
    /// Tick size.
    pub tick: TickSize,
    /// Neg-risk exchange.
    pub neg_risk: bool,
    /// Signature type.
    pub signature_type: SignatureType,
    /// Funder text as given (sent verbatim as `maker`).
    pub funder: Option<String>,
    /// Time in force.
    pub order_type: OrderType,
    /// Post-only.
    pub post_only: bool,
    /// Deferred execution.
    pub defer_exec: bool,
    /// Expiration, unix s (0 = none).
    pub expiration: u64,
    /// Salt.
    pub salt: u64,
    /// Timestamp, ms.
    pub timestamp_ms: u64,
    /// Builder code text.
    pub builder_code: String,
    /// Metadata text.
    pub metadata: String,
    /// Chain id.
    pub chain_id: u64,
    /// 2 or 3.
    pub exchange_version: u8,
}

impl OrderInput {
    /// Validates into an [`OrderSpec`].
    pub fn into_spec(self) -> Result<OrderSpec, Error> {
        let side = OrderSide::from_str(&self.side)?;
        let market = match self.kind.as_str() {
            "limit" => false,
            "market" => true,
            k => {
                return Err(Error::BadField {
                    field: "kind",
                    reason: format!("{k:?} is not limit or market"),
                });
            }
        };
        let quantity = match (market, self.size, self.amount) {
            (false, Some(s), None) => Decimal::parse(&s)?,
            (true, None, Some(a)) => Decimal::parse(&a)?,
            (false, _, _) => {
                return Err(Error::BadField {
                    field: "size",
                    reason: "limit orders give `size` (and no `amount`)".to_owned(),
                });
            }
            (true, _, _) => {
                return Err(Error::BadField {
                    field: "amount",
                    reason: "market orders give `amount` (and no `size`)".to_owned(),
                });
            }
        };
        let (token_id, implied_v3) = match (self.token_id, self.position_id) {
            (Some(t), None) => (t, false),
            (None, Some(p)) => (p, true),
            _ => {
                return Err(Error::BadField {
                    field: "token_id",
                    reason: "give exactly one of token_id or position_id".to_owned(),
                });
            }
        };
        U256::from_dec_str(&token_id)?;
        let exchange_version = match (implied_v3, self.exchange_version) {
            (true, None | Some(3)) => 3,
            (true, Some(v)) => {
                return Err(Error::BadField {
                    field: "exchange_version",
                    reason: format!("position_id selects exchange version 3, not {v}"),
                });
            }
            (false, v) => v.unwrap_or(2),
        };
        let order_type = match self.order_type {
            Some(t) => OrderType::from_str(&t)?,
            None if market => OrderType::Fok,
            None => OrderType::Gtc,
        };
        if self.post_only && matches!(order_type, OrderType::Fok | OrderType::Fak) {
            return Err(Error::BadField {
                field: "post_only",
                reason: "post_only is not supported for FOK/FAK orders".to_owned(),
            });
        }
        if market && self.expiration != 0 {
            return Err(Error::BadField {
                field: "expiration",
                reason: "market orders carry no expiration".to_owned(),
            });
        }
        let signature_type = SignatureType::from_code(self.signature_type)?;
        if let Some(f) = &self.funder {
            Address::parse(f)?;
        } else if signature_type == SignatureType::Poly1271 {
            return Err(Error::BadField {
                field: "funder",
                reason: "signature type 3 needs the deposit wallet address as funder".to_owned(),
            });
        }
        let bytes32 = |v: Option<String>, field| -> Result<String, Error> {
            match v {
                None => Ok(ZERO32.to_owned()),
                Some(s) if s.starts_with("0x") => {
                    hex::decode_fixed::<32>(&s, field)?;
                    Ok(s)
                }
                Some(_) => Err(Error::BadField {
                    field,
                    reason: "expected 0x + 64 hex digits".to_owned(),
                }),
            }
        };
        let spec = OrderSpec {
            side,
            market,
            price: Decimal::parse(&self.price)?,
            quantity,
            token_id,
            tick: TickSize::from_str(&self.tick_size)?,
            neg_risk: self.neg_risk,
            signature_type,
            funder: self.funder,
            order_type,
            post_only: self.post_only,
            defer_exec: self.defer_exec,
            expiration: self.expiration,
            salt: self.salt,
            timestamp_ms: self.timestamp_ms,
            builder_code: bytes32(self.builder_code, "builder_code")?,
            metadata: bytes32(self.metadata, "metadata")?,
            chain_id: self.chain_id.unwrap_or(137),
            exchange_version,
        };
        // Validate the domain and amounts now so errors name the input.
        OrderDomain::new(spec.chain_id, spec.exchange_version, spec.neg_risk)?;
        spec.amounts()?;
        Ok(spec)
    }
}

impl OrderSpec {
    /// Maker/taker amounts per the reference rounding rules.
    pub fn amounts(&self) -> Result<Amounts, Error> {
        if self.market {
            market_amounts(self.side, self.price, self.quantity, self.tick)
        } else {
            limit_amounts(self.side, self.price, self.quantity, self.tick)
        }
    }

    /// The signing domain.
    pub fn domain(&self) -> Result<OrderDomain, Error> {
        OrderDomain::new(self.chain_id, self.exchange_version, self.neg_risk)
    }

    /// Builds and signs the order with `key`.
    pub fn sign(&self, key: &PrivateKey) -> Result<SignedOrder, Error> {
        let domain = self.domain()?;
        self.sign_in(key, &domain)
    }

    /// Builds and signs the order under a precomputed `domain` (the pool's path).
    pub fn sign_in(&self, key: &PrivateKey, domain: &OrderDomain) -> Result<SignedOrder, Error> {
        let amounts = self.amounts()?;
        let eoa = key.address();
        let eoa_text = String::from_utf8_lossy(&eoa.checksummed()).into_owned();
        let maker_text = self.funder.clone().unwrap_or_else(|| eoa_text.clone());
        let maker = Address::parse(&maker_text)?;
        let (signer, signer_text) = if self.signature_type == SignatureType::Poly1271 {
            (maker, maker_text.clone())
        } else {
            (eoa, eoa_text)
        };
        let order = OrderStruct {
            salt: U256::from_u64(self.salt),
            maker,
            signer,
            token_id: U256::from_dec_str(&self.token_id)?,
            maker_amount: amounts.maker,
            taker_amount: amounts.taker,
            side: self.side.code(),
            signature_type: self.signature_type.code(),
            timestamp_ms: self.timestamp_ms,
            metadata: hex::decode_fixed::<32>(&self.metadata, "metadata")?,
            builder: hex::decode_fixed::<32>(&self.builder_code, "builder_code")?,
        };
        let digest = order.digest(domain);
        let signature = if self.signature_type == SignatureType::Poly1271 {
            let inner = key.sign_digest(&order.erc7739_digest(domain))?;
            let mut s = Vec::with_capacity(65 + 64 + ORDER_TYPE.len() + 2);
            s.extend_from_slice(&inner);
            s.extend_from_slice(&domain.separator);
            s.extend_from_slice(&order.struct_hash());
            s.extend_from_slice(ORDER_TYPE.as_bytes());
            s.extend_from_slice(&(ORDER_TYPE.len() as u16).to_be_bytes());
            s
        } else {
            key.sign_digest(&digest)?.to_vec()
        };
        Ok(SignedOrder {
            order,
            domain: *domain,
            digest,
            signature,
            maker_text,
            signer_text,
            token_id_text: self.token_id.clone(),
            side: self.side,
            expiration: if self.market { 0 } else { self.expiration },
            metadata_text: self.metadata.clone(),
            builder_text: self.builder_code.clone(),
            order_type: self.order_type,
            post_only: self.post_only,
            defer_exec: self.defer_exec,
        })
    }
}

/// A signed order with everything needed to serialize its body.
#[derive(Clone, Debug)]
pub struct SignedOrder {
    /// Signed fields.
    pub order: OrderStruct,
    /// Domain it was signed under.
    pub domain: OrderDomain,
    /// EIP-712 order hash (the venue's order id).
    pub digest: [u8; 32],
    /// Signature bytes (65 for types 0-2; ERC-7739 wrapped for type 3).
    pub signature: Vec<u8>,
    /// `maker` text as sent.
    pub maker_text: String,
    /// `signer` text as sent.
    pub signer_text: String,
    /// `tokenId` text as sent.
    pub token_id_text: String,
    /// Side.
    pub side: OrderSide,
    /// Expiration, unix s.
    pub expiration: u64,
    /// `metadata` text.
    pub metadata_text: String,
    /// `builder` text.
    pub builder_text: String,
    /// Time in force (per-order in a batch).
    pub order_type: OrderType,
    /// Post-only flag given with the order.
    pub post_only: bool,
    /// Deferred-execution flag given with the order.
    pub defer_exec: bool,
}

impl SignedOrder {
    /// `0x` + hex signature.
    #[must_use]
    pub fn signature_hex(&self) -> String {
        hex::encode_0x(&self.signature)
    }

    /// Recovers the EOA that signed this order (for type 3: the EOA that signed the ERC-7739
    /// wrapper; the caller checks it owns the deposit wallet).
    pub fn recover_signer(&self) -> Result<Address, Error> {
        recover_order_signer(&self.order, &self.domain, &self.signature)
    }

    /// Writes the `POST /order` body element (one order object) into `out`, using the order's
    /// own `post_only` / `defer_exec` flags unless overridden (the reference applies the batch's
    /// flags to every element of `POST /orders`).
    pub fn write_json(&self, out: &mut Vec<u8>, owner: &str, post_only: bool, defer_exec: bool) {
        let mut num = itoa_buf();
        out.extend_from_slice(b"{\"order\":{\"salt\":");
        // The salt is a JSON number: the reference emits int(salt). Our salt is ≤ u64.
        out.extend_from_slice(fmt_u64(&mut num, salt_u64(&self.order.salt)));
        push_kv_str(out, b",\"maker\":", self.maker_text.as_bytes());
        push_kv_str(out, b",\"signer\":", self.signer_text.as_bytes());
        push_kv_str(out, b",\"tokenId\":", self.token_id_text.as_bytes());
        push_kv_str(
            out,
            b",\"makerAmount\":",
            fmt_u64(&mut num, self.order.maker_amount),
        );
        push_kv_str(
            out,
            b",\"takerAmount\":",
            fmt_u64(&mut num, self.order.taker_amount),
        );
        push_kv_str(out, b",\"side\":", self.side.as_str().as_bytes());
        push_kv_str(out, b",\"expiration\":", fmt_u64(&mut num, self.expiration));
        out.extend_from_slice(b",\"signatureType\":");
        out.extend_from_slice(fmt_u64(&mut num, u64::from(self.order.signature_type)));
        push_kv_str(
            out,
            b",\"timestamp\":",
            fmt_u64(&mut num, self.order.timestamp_ms),
        );
        push_kv_str(out, b",\"metadata\":", self.metadata_text.as_bytes());
        push_kv_str(out, b",\"builder\":", self.builder_text.as_bytes());
        out.extend_from_slice(b",\"signature\":\"0x");
        let start = out.len();
        out.resize(start + 2 * self.signature.len(), 0);
        hex::encode_into(&self.signature, &mut out[start..]);
        out.extend_from_slice(b"\"},\"owner\":");
        write_json_str(out, owner.as_bytes());
        push_kv_str(out, b",\"orderType\":", self.order_type.as_str().as_bytes());
        out.extend_from_slice(b",\"deferExec\":");
        out.extend_from_slice(if defer_exec { b"true" } else { b"false" });
        out.extend_from_slice(b",\"postOnly\":");
        out.extend_from_slice(if post_only { b"true" } else { b"false" });
        out.push(b'}');
    }

    /// The exact `POST /order` body.
    #[must_use]
    pub fn body(&self, owner: &str) -> String {
        let mut out = Vec::with_capacity(1024);
        self.write_json(&mut out, owner, self.post_only, self.defer_exec);
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// The exact `POST /orders` body for up to [`MAX_BATCH`] orders; `post_only` and `defer_exec`
/// apply to every element, as in the reference's `post_orders`.
pub fn batch_body(
    orders: &[SignedOrder],
    owner: &str,
    post_only: bool,
    defer_exec: bool,
) -> Result<String, Error> {
    if orders.is_empty() || orders.len() > MAX_BATCH {
        return Err(Error::BatchSize(orders.len()));
    }
    if post_only
        && orders
            .iter()
            .any(|o| matches!(o.order_type, OrderType::Fok | OrderType::Fak))
    {
        return Err(Error::BadField {
            field: "post_only",
            reason: "post_only is not supported for FOK/FAK orders".to_owned(),
        });
    }
    let mut out = Vec::with_capacity(1024 * orders.len());
    out.push(b'[');
    for (i, o) in orders.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        o.write_json(&mut out, owner, post_only, defer_exec);
    }
    out.push(b']');
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Recovers the EOA behind an order signature under `domain` (types 0-2: over the order hash;
/// type 3: over the ERC-7739 digest, after checking the wrapper's appended fields).
pub fn recover_order_signer(
    order: &OrderStruct,
    domain: &OrderDomain,
    signature: &[u8],
) -> Result<Address, Error> {
    let sig: &Sig65 = signature
        .get(..65)
        .and_then(|s| s.try_into().ok())
        .ok_or(Error::BadSignature("shorter than 65 bytes"))?;
    if order.signature_type == 3 {
        let expect_len = 65 + 64 + ORDER_TYPE.len() + 2;
        if signature.len() != expect_len
            || signature[65..97] != domain.separator
            || signature[97..129] != order.struct_hash()
            || &signature[129..129 + ORDER_TYPE.len()] != ORDER_TYPE.as_bytes()
        {
            return Err(Error::BadSignature("ERC-7739 wrapper does not match order"));
        }
        recover(&order.erc7739_digest(domain), sig)
    } else {
        if signature.len() != 65 {
            return Err(Error::BadSignature("not 65 bytes"));
        }
        recover(&order.digest(domain), sig)
    }
}

fn salt_u64(s: &U256) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&s.0[24..]);
    u64::from_be_bytes(b)
}

fn itoa_buf() -> [u8; 20] {
    [0u8; 20]
}

/// Formats `v` in decimal into `buf`, returning the used tail.
pub fn fmt_u64(buf: &mut [u8; 20], mut v: u64) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}

fn push_kv_str(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    out.extend_from_slice(key);
    write_json_str(out, value);
}

/// Writes a JSON string the way Python's `json.dumps(..., ensure_ascii=False)` does.
pub fn write_json_str(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            c if c < 0x20 => {
                out.extend_from_slice(b"\\u00");
                let mut h = [0u8; 2];
                hex::encode_into(&[c], &mut h);
                out.extend_from_slice(&h);
            }
            c => out.push(c),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const GOOD: &str = r#"{"side":"BUY","kind":"limit","price":"0.37","size":"12.345","token_id":"1","tick_size":"0.01","salt":1,"timestamp_ms":2}"#;

    #[test]
    fn input_validation_names_the_field() {
        let key = PrivateKey::from_hex(
            "0x0000000000000000000000000000000000000000000000000000000000000001",
        )
        .unwrap();
        let ok: OrderInput = serde_json::from_str(GOOD).unwrap();
        assert!(ok.into_spec().unwrap().sign(&key).is_ok());
        for (patch, field) in [
            (r#""side":"BUY""#, r#""side":"buy""#),
            (r#""kind":"limit""#, r#""kind":"stop""#),
            (r#""tick_size":"0.01""#, r#""tick_size":"0.02""#),
            (r#""token_id":"1""#, r#""token_id":"0x1""#),
            (r#""price":"0.37""#, r#""price":"0.375""#),
            (
                r#""salt":1"#,
                r#""salt":1,"post_only":true,"order_type":"FOK""#,
            ),
            (r#""salt":1"#, r#""salt":1,"signature_type":3"#),
            (r#""salt":1"#, r#""salt":1,"exchange_version":1"#),
            (r#""salt":1"#, r#""salt":1,"chain_id":1"#),
            (r#""salt":1"#, r#""salt":1,"metadata":"0x12""#),
            (r#""salt":1"#, r#""salt":1,"amount":"5""#),
        ] {
            let bad = GOOD.replace(patch, field);
            let r = serde_json::from_str::<OrderInput>(&bad)
                .map_err(|e| e.to_string())
                .and_then(|i| i.into_spec().map_err(|e| e.to_string()));
            assert!(r.is_err(), "{bad}");
        }
        // position_id selects exchange version 3.
        let v3 = GOOD.replace(r#""token_id""#, r#""position_id""#);
        let spec = serde_json::from_str::<OrderInput>(&v3)
            .unwrap()
            .into_spec()
            .unwrap();
        assert_eq!(spec.exchange_version, 3);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_lines_never_panic(s in "\\PC{0,300}") {
            if let Ok(i) = serde_json::from_str::<OrderInput>(&s) {
                let _ = i.into_spec();
            }
        }

        #[test]
        fn mutated_good_lines_never_panic(pos in 0usize..160, ch in proptest::char::any()) {
            let mut s: Vec<char> = GOOD.chars().collect();
            let p = pos % s.len();
            s[p] = ch;
            let s: String = s.into_iter().collect();
            if let Ok(i) = serde_json::from_str::<OrderInput>(&s) {
                let _ = i.into_spec();
            }
        }

        #[test]
        fn json_strings_round_trip(s in "\\PC{0,40}") {
            let mut out = Vec::new();
            write_json_str(&mut out, s.as_bytes());
            let back: String = serde_json::from_slice(&out).unwrap();
            proptest::prop_assert_eq!(back, s);
        }
    }
}
