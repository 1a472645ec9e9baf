//! Polymarket CLOB order entry, emulated (sans-IO): `POST /order`, `POST /orders` (≤ 15),
//! `DELETE /order`, `DELETE /orders`, `DELETE /cancel-all`, `POST /v1/heartbeats` (dead-man
//! switch), `POST /auth/api-key` / `GET /auth/derive-api-key` (L1 `ClobAuth` headers),
//! `GET /version`, `GET /time`.
//!
//! Every order request is authenticated like the venue does it: the L2 HMAC
//! (`POLY_SIGNATURE` = url-safe base64 HMAC-SHA256 over `timestamp + METHOD + path + body`,
//! keyed with the url-safe-base64-decoded secret) is recomputed here from the raw bytes (an
//! implementation independent of `exec`'s), the body is parsed with serde (not with `exec`'s
//! writer), and the EIP-712 signer is recovered with `ringbolt-exec`'s typed-data hashing, which
//! is itself cross-checked byte for byte against Polymarket's official Python client.
//!
//! Error strings and status codes are the venue's (PROTOCOL_NOTES.md §3 and the corpus file
//! `rest_samples/order_and_error_responses.jsonl`); the few the corpus does not hold are marked
//! "unverified" where they are produced.
//!
//! Check order for one order (cheap checks first; the venue's own order is not documented):
//! shape (V1 → `order_version_mismatch`), owner, token, size zero / min size, tick, signature
//! (recovered signer = `signer`, = API key address), duplicate, GTD expiration, then matching
//! against the emulated book (`matched` when marketable, else `live`).

use std::collections::{HashMap, HashSet, VecDeque};

use crate::clob_engine::{Exchange, ExchangeVenue, NewOrder, OrderType, Side};
use crate::clob_user::{open_order_json, page, rest_trade_json};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use hmac::{Hmac, Mac};
use ringbolt_exec::eip712::{OrderDomain, OrderStruct, U256, clob_auth_digest};
use ringbolt_exec::keys::{Address, recover};
use ringbolt_exec::order::recover_order_signer;
use ringbolt_market::{PRICE_SCALE, PriceError, Tick};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;

/// `POST /orders` takes at most this many orders.
pub const MAX_BATCH: usize = 15;
/// Minimum size (shares) of a GTC/GTD order.
pub const MIN_SIZE_SHARES: u64 = 5;
/// The venue cancels all orders of a key whose heartbeats stop for this long.
pub const HEARTBEAT_TIMEOUT_MS: i64 = 10_000;

/// Exact venue texts.
pub mod msg {
    /// HTTP 401.
    pub const UNAUTHORIZED: &str = "Unauthorized/Invalid api key";
    /// HTTP 400, V1-signed order.
    pub const VERSION_MISMATCH: &str = "order_version_mismatch";
    /// HTTP 400.
    pub const INVALID_SIGNATURE: &str = "invalid signature";
    /// HTTP 400.
    pub const SIGNER_NOT_API_KEY: &str =
        "the order signer address has to be the address of the API KEY";
    /// HTTP 400 (legacy docs' INVALID_ORDER_MIN_TICK_SIZE text).
    pub const TICK_SIZE: &str = "order is invalid. Price breaks minimum tick size rules";
    /// HTTP 400.
    pub const INVALID_TOKEN: &str = "Invalid token id";
    /// HTTP 429.
    pub const TOO_MANY_REQUESTS: &str = "Too Many Requests";
    /// HTTP 503.
    pub const TRADING_DISABLED: &str =
        "Trading is currently disabled. Check polymarket.com for updates";
    /// errorMsg (FOK kill).
    pub const FOK_NOT_FILLED: &str =
        "order couldn't be fully filled. FOK orders are fully filled or killed.";
    /// errorMsg (FAK, nothing to match).
    pub const FAK_NOT_FILLED: &str = "no orders found to match with FAK order. FAK orders are partially filled or killed if no match is found.";
    /// HTTP 400.
    pub const POST_ONLY_CROSSES: &str = "invalid post-only order: order crosses book";
    /// HTTP 400.
    pub const INVALID_EXPIRATION: &str = "invalid expiration";
    /// HTTP 400, unverified text.
    pub const BAD_PAYLOAD: &str = "Invalid order payload";
    /// HTTP 400/401, unverified text.
    pub const BAD_L1: &str = "Invalid L1 Request headers";
    /// HTTP 400, unverified text.
    pub const OWNER_MISMATCH: &str = "the order owner has to be the owner of the API KEY";
    /// HTTP 400, unverified text.
    pub const CANNOT_CREATE_KEY: &str = "Could not create api key";
    /// HTTP 400, unverified text.
    pub const CANNOT_DERIVE_KEY: &str = "Could not derive api key!";
    /// `not_canceled` reason (corpus: nautilus fixture).
    pub const ALREADY_CANCELED: &str = "already canceled or matched";
    /// `not_canceled` reason, unverified text.
    pub const NOT_FOUND: &str = "order not found";
}

/// What the emulator knows about a token (from the market emulator's windows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenInfo {
    /// The token's tick (prices are checked with the market crate's [`Tick::check`]).
    pub tick: Tick,
    /// Best bid in thousandths (0: none).
    pub best_bid: i64,
    /// Best ask in thousandths (0: none).
    pub best_ask: i64,
    /// The window is resolved (no new orders).
    pub resolved: bool,
}

/// One incoming request (header names lower-case).
#[derive(Debug, Clone, Copy)]
pub struct ClobRequest<'a> {
    /// Method.
    pub method: &'a str,
    /// Path without query.
    pub path: &'a str,
    /// Query string (after `?`).
    pub query: &'a str,
    /// Headers, names lower-case.
    pub headers: &'a [(String, String)],
    /// Raw body bytes (exactly as received: the HMAC covers them).
    pub body: &'a [u8],
}

impl ClobRequest<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClobResponse {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: String,
}

impl ClobResponse {
    fn json(status: u16, v: &Value) -> Self {
        ClobResponse {
            status,
            body: v.to_string(),
        }
    }
    fn error(status: u16, text: &str) -> Self {
        Self::json(status, &json!({ "error": text }))
    }
}

/// What one received order looked like (for the wire log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderSeen {
    /// Salt as sent.
    pub salt: String,
    /// Token id.
    pub token_id: String,
    /// `BUY` / `SELL`.
    pub side: String,
    /// Limit price (decimal text) when the amounts define one (not for size zero).
    pub price: Option<String>,
    /// The venue's answer for this order: `live`, `matched`, or the error text.
    pub outcome: String,
    /// The order hash (the venue's order id, `0x…`) once the order parsed far enough to have one.
    pub order_hash: Option<String>,
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClobStats {
    /// Order objects received (single and batched).
    pub orders_received: u64,
    /// Orders accepted.
    pub orders_accepted: u64,
    /// Orders rejected.
    pub orders_rejected: u64,
    /// Requests refused by L2 authentication.
    pub auth_failures: u64,
    /// Orders cancelled.
    pub cancels: u64,
    /// Heartbeats received.
    pub heartbeats: u64,
    /// Dead-man cancel-alls fired.
    pub deadman_fired: u64,
}

#[derive(Debug, Clone)]
struct ApiKey {
    address: Address,
    secret: Vec<u8>,
    secret_text: String,
    passphrase: String,
    last_heartbeat_ms: Option<i64>,
}

/// The CLOB emulator state.
#[derive(Debug)]
pub struct ClobState {
    server_secret: [u8; 32],
    domain: OrderDomain,
    keys: HashMap<String, ApiKey>,
    by_address_nonce: HashMap<(Address, u64), String>,
    seen: HashSet<[u8; 32]>,
    seen_fifo: VecDeque<[u8; 32]>,
    heartbeat_no: u64,
    /// The dead-man switch's timeout, ms.
    pub heartbeat_timeout_ms: i64,
    /// The matching engine, orders, trades and ledger.
    pub exchange: Exchange,
    /// Counters.
    pub stats: ClobStats,
}

/// Keep this many order hashes for duplicate detection.
const SEEN_CAP: usize = 1 << 20;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostedOrder {
    order: Value,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    order_type: Option<String>,
    #[serde(default)]
    post_only: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireOrder {
    salt: Value,
    maker: String,
    signer: String,
    token_id: String,
    maker_amount: String,
    taker_amount: String,
    side: String,
    #[serde(default)]
    expiration: Option<String>,
    signature_type: u8,
    timestamp: String,
    metadata: String,
    builder: String,
    signature: String,
}

/// The allowance shown for the exchange (approved for "max uint256").
const MAX_ALLOWANCE: &str =
    "115792089237316195423570985008687907853269984665640564039457584007913129639935";

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// One data-api position object (numbers as JSON numbers, as the data-api sends them).
#[allow(clippy::too_many_arguments)]
fn position_json(
    user: &Address,
    asset: &str,
    market: &str,
    outcome: &str,
    info: TokenInfo,
    size_micro: i64,
    bought_micro: i64,
    cost_micro: i64,
) -> Value {
    let f = |v: i64| v as f64 / 1e6;
    let avg = if bought_micro > 0 {
        cost_micro as f64 / bought_micro as f64
    } else {
        0.0
    };
    let cur = if info.best_bid > 0 && info.best_ask > 0 {
        (info.best_bid + info.best_ask) as f64 / 2000.0
    } else {
        0.0
    };
    let size = f(size_micro);
    json!({
        "proxyWallet": user.to_string(), "asset": asset, "conditionId": market,
        "size": size, "avgPrice": avg, "initialValue": size * avg, "currentValue": size * cur,
        "cashPnl": size * (cur - avg), "totalBought": f(bought_micro), "realizedPnl": 0.0,
        "curPrice": cur, "redeemable": info.resolved, "mergeable": false,
        "outcome": outcome, "outcomeIndex": i32::from(outcome != "Up"),
        "oppositeOutcome": if outcome == "Up" { "Down" } else { "Up" }, "negativeRisk": false,
    })
}

/// HTTP 400 for a size under the minimum (`shares_micro` 0: size zero).
fn below_min_size(order_id: &str, shares_micro: u64) -> Refusal {
    (
        400,
        format!(
            "order {order_id} is invalid. Size ({}) lower than the minimum: {MIN_SIZE_SHARES}",
            dec6(shares_micro)
        ),
    )
}

/// The limit price (1e-8) the amounts define: `cost / shares` must be a whole number of the
/// token's ticks (checked first) in `[tick, 1 - tick]`.
fn checked_price(
    info: TokenInfo,
    cost_micro: u64,
    shares_micro: u64,
    seen: &mut OrderSeen,
) -> Result<i64, Refusal> {
    let num = u128::from(cost_micro) * PRICE_SCALE as u128;
    let den = u128::from(shares_micro);
    let price_e8 = i64::try_from(num / den).unwrap_or(i64::MAX);
    let check = info.tick.check(price_e8);
    if !num.is_multiple_of(den) || matches!(check, Err(PriceError::OffTick { .. })) {
        return Err((400, msg::TICK_SIZE.into()));
    }
    seen.price = Some(dec6((price_e8 / 100) as u64));
    if check.is_err() {
        return Err((400, msg::TICK_SIZE.into()));
    }
    Ok(price_e8)
}

/// Why one order was refused: status + text.
type Refusal = (u16, String);

/// The signed order struct of a wire order (`INVALID_PAYLOAD` when a field does not parse).
fn order_struct(w: &WireOrder) -> Result<OrderStruct, Refusal> {
    let bad = || (400u16, msg::BAD_PAYLOAD.to_string());
    let salt = match &w.salt {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return Err(bad()),
    };
    Ok(OrderStruct {
        salt: U256::from_dec_str(&salt).map_err(|_| bad())?,
        maker: Address::parse(&w.maker).map_err(|_| bad())?,
        signer: Address::parse(&w.signer).map_err(|_| bad())?,
        token_id: U256::from_dec_str(&w.token_id).map_err(|_| bad())?,
        maker_amount: w.maker_amount.parse().map_err(|_| bad())?,
        taker_amount: w.taker_amount.parse().map_err(|_| bad())?,
        side: match w.side.as_str() {
            "BUY" => 0u8,
            "SELL" => 1,
            _ => return Err(bad()),
        },
        signature_type: w.signature_type,
        timestamp_ms: w.timestamp.parse().map_err(|_| bad())?,
        metadata: parse_hex32(&w.metadata).ok_or_else(bad)?,
        builder: parse_hex32(&w.builder).ok_or_else(bad)?,
    })
}

fn dec6(v: u64) -> String {
    let s = format!("{}.{:06}", v / 1_000_000, v % 1_000_000);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let h = s.strip_prefix("0x")?;
    if h.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(h.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let h = s.strip_prefix("0x")?;
    if h.len() % 2 != 0 {
        return None;
    }
    (0..h.len() / 2)
        .map(|i| u8::from_str_radix(h.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

fn hex0x(b: &[u8]) -> String {
    let mut s = String::with_capacity(2 + 2 * b.len());
    s.push_str("0x");
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// `urlsafe_b64encode(HMAC_SHA256(secret, ts + method + path + body))`, written here
/// independently of `exec::auth`.
pub fn l2_signature(
    secret: &[u8],
    timestamp: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp.as_bytes());
    mac.update(method.as_bytes());
    mac.update(path.as_bytes());
    // The reference replaces ' by " in the MAC input.
    if body.contains(&b'\'') {
        let fixed: Vec<u8> = body
            .iter()
            .map(|&b| if b == b'\'' { b'"' } else { b })
            .collect();
        mac.update(&fixed);
    } else {
        mac.update(body);
    }
    URL_SAFE.encode(mac.finalize().into_bytes())
}

fn decode_secret(s: &str) -> Option<Vec<u8>> {
    let norm: String = s
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    URL_SAFE.decode(norm.as_bytes()).ok()
}

impl ClobState {
    /// A fresh state; API keys are derived deterministically from `seed`, the address and the
    /// nonce.
    pub fn new(seed: u64) -> Self {
        let mut server_secret = [0u8; 32];
        let h = ringbolt_exec::eip712::keccak256(&seed.to_be_bytes());
        server_secret.copy_from_slice(&h);
        // Emulated markets carry no Gamma `version` (CTF tokens): the CTF exchange V2 domain.
        let domain = OrderDomain::new(137, 2, false).unwrap_or_else(|_| unreachable_domain());
        ClobState {
            server_secret,
            domain,
            keys: HashMap::new(),
            by_address_nonce: HashMap::new(),
            seen: HashSet::new(),
            seen_fifo: VecDeque::new(),
            heartbeat_no: 0,
            heartbeat_timeout_ms: HEARTBEAT_TIMEOUT_MS,
            exchange: Exchange::new(seed),
            stats: ClobStats::default(),
        }
    }

    /// Orders resting (live) now.
    pub fn open_orders(&self) -> usize {
        self.exchange.open_orders()
    }

    /// API keys registered for `address`.
    pub fn keys_of(&self, address: &Address) -> Vec<String> {
        let mut v: Vec<String> = self
            .keys
            .iter()
            .filter(|(_, k)| k.address == *address)
            .map(|(n, _)| n.clone())
            .collect();
        v.sort();
        v
    }

    /// `true` when `(api_key, secret, passphrase)` are registered credentials (user channel).
    pub fn check_creds(&self, api_key: &str, secret: &str, passphrase: &str) -> bool {
        self.keys
            .get(api_key)
            .is_some_and(|k| k.secret_text == secret && k.passphrase == passphrase)
    }

    /// Registers API credentials directly (tests / configured keys).
    pub fn add_api_key(
        &mut self,
        address: Address,
        api_key: &str,
        secret: &str,
        passphrase: &str,
    ) -> bool {
        let Some(secret_bytes) = decode_secret(secret) else {
            return false;
        };
        self.keys.insert(
            api_key.to_string(),
            ApiKey {
                address,
                secret: secret_bytes,
                secret_text: secret.to_string(),
                passphrase: passphrase.to_string(),
                last_heartbeat_ms: None,
            },
        );
        true
    }

    fn derive_creds(&self, address: &Address, nonce: u64) -> (String, String, String) {
        let mut m = Vec::with_capacity(64);
        m.extend_from_slice(&self.server_secret);
        m.extend_from_slice(&address.0);
        m.extend_from_slice(&nonce.to_be_bytes());
        let a = ringbolt_exec::eip712::keccak256(&m);
        m.push(1);
        let b = ringbolt_exec::eip712::keccak256(&m);
        m.push(2);
        let c = ringbolt_exec::eip712::keccak256(&m);
        let uuid = |h: &[u8; 32]| {
            let x = hex0x(&h[..16]);
            let x = &x[2..];
            format!(
                "{}-{}-4{}-a{}-{}",
                &x[..8],
                &x[8..12],
                &x[13..16],
                &x[17..20],
                &x[20..32]
            )
        };
        (
            uuid(&a),
            URL_SAFE.encode(b),
            hex0x(&c[..16])[2..].to_string(),
        )
    }

    /// Handles one request at `now_ms`. Returns the response and the orders it carried (for the
    /// wire log). Gamma paths are served by the caller.
    pub fn handle(
        &mut self,
        req: &ClobRequest<'_>,
        venue: &mut dyn ExchangeVenue,
        now_ms: i64,
    ) -> (ClobResponse, Vec<OrderSeen>) {
        let mut seen = Vec::new();
        let resp = match (req.method, req.path) {
            ("GET", "/version") => ClobResponse::json(200, &json!({"version": 2})),
            ("GET", "/time") => ClobResponse {
                status: 200,
                body: (now_ms / 1000).to_string(),
            },
            ("GET", "/") => ClobResponse::json(200, &json!("OK")),
            ("POST", "/auth/api-key") => self.l1(req, now_ms, true),
            ("GET", "/auth/derive-api-key") => self.l1(req, now_ms, false),
            ("GET", "/positions") => self.positions(req.query, venue),
            ("POST", "/order" | "/orders")
            | ("DELETE", "/order" | "/orders" | "/cancel-all" | "/cancel-market-orders")
            | ("POST", "/v1/heartbeats")
            | ("GET", "/data/orders" | "/data/trades" | "/balance-allowance") => {
                match self.l2(req) {
                    Err(r) => r,
                    Ok(api_key) => self.authed(req, &api_key, venue, now_ms, &mut seen),
                }
            }
            ("GET", p) if p.starts_with("/data/order/") => match self.l2(req) {
                Err(r) => r,
                Ok(api_key) => self.read(req, &api_key),
            },
            _ => ClobResponse::error(404, "not found"),
        };
        (resp, seen)
    }

    fn l1(&mut self, req: &ClobRequest<'_>, now_ms: i64, create: bool) -> ClobResponse {
        let (Some(addr), Some(sig), Some(ts)) = (
            req.header("poly_address"),
            req.header("poly_signature"),
            req.header("poly_timestamp"),
        ) else {
            return ClobResponse::error(401, msg::BAD_L1);
        };
        let nonce: u64 = req
            .header("poly_nonce")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let Ok(address) = Address::parse(addr) else {
            return ClobResponse::error(401, msg::BAD_L1);
        };
        let Some(sig) = parse_hex(sig).and_then(|s| <[u8; 65]>::try_from(s).ok()) else {
            return ClobResponse::error(401, msg::BAD_L1);
        };
        let digest = clob_auth_digest(&address, ts, nonce, 137);
        match recover(&digest, &sig) {
            Ok(a) if a == address => {}
            _ => return ClobResponse::error(401, msg::BAD_L1),
        }
        let _ = now_ms;
        let existing = self.by_address_nonce.get(&(address, nonce)).cloned();
        let key = match (create, existing) {
            (true, Some(_)) => return ClobResponse::error(400, msg::CANNOT_CREATE_KEY),
            (false, None) => return ClobResponse::error(400, msg::CANNOT_DERIVE_KEY),
            (false, Some(k)) => k,
            (true, None) => {
                let (k, secret, pass) = self.derive_creds(&address, nonce);
                self.add_api_key(address, &k, &secret, &pass);
                self.by_address_nonce.insert((address, nonce), k.clone());
                k
            }
        };
        let Some(rec) = self.keys.get(&key) else {
            return ClobResponse::error(400, msg::CANNOT_DERIVE_KEY);
        };
        ClobResponse::json(
            200,
            &json!({"apiKey": key, "secret": rec.secret_text, "passphrase": rec.passphrase}),
        )
    }

    fn l2(&mut self, req: &ClobRequest<'_>) -> Result<String, ClobResponse> {
        let fail = |s: &mut Self| {
            s.stats.auth_failures += 1;
            Err(ClobResponse::error(401, msg::UNAUTHORIZED))
        };
        let (Some(addr), Some(sig), Some(ts), Some(key), Some(pass)) = (
            req.header("poly_address"),
            req.header("poly_signature"),
            req.header("poly_timestamp"),
            req.header("poly_api_key"),
            req.header("poly_passphrase"),
        ) else {
            return fail(self);
        };
        let Some(rec) = self.keys.get(key) else {
            return fail(self);
        };
        let addr_ok = Address::parse(addr).is_ok_and(|a| a == rec.address);
        if !addr_ok || rec.passphrase != pass {
            return fail(self);
        }
        let expect = l2_signature(&rec.secret, ts, req.method, req.path, req.body);
        if expect.as_bytes() != sig.as_bytes() {
            return fail(self);
        }
        Ok(key.to_string())
    }

    fn authed(
        &mut self,
        req: &ClobRequest<'_>,
        api_key: &str,
        venue: &mut dyn ExchangeVenue,
        now_ms: i64,
        seen: &mut Vec<OrderSeen>,
    ) -> ClobResponse {
        match (req.method, req.path) {
            ("POST", "/order") => {
                let posted = match serde_json::from_slice::<PostedOrder>(req.body) {
                    Ok(p) => p,
                    Err(_) => {
                        // A V1 body still parses as PostedOrder; anything else is a bad payload.
                        return ClobResponse::error(400, msg::BAD_PAYLOAD);
                    }
                };
                let (r, s) = self.one_order(&posted, api_key, venue, now_ms);
                seen.push(s);
                match r {
                    Ok(v) => ClobResponse::json(200, &v),
                    Err((status, text)) => ClobResponse::error(status, &text),
                }
            }
            ("POST", "/orders") => self.post_batch(req, api_key, venue, now_ms, seen),
            ("DELETE", "/order") => {
                #[derive(Deserialize)]
                struct One {
                    #[serde(rename = "orderID")]
                    order_id: String,
                }
                match serde_json::from_slice::<One>(req.body) {
                    Ok(o) => self.cancel(api_key, &[o.order_id], now_ms),
                    Err(_) => ClobResponse::error(400, msg::BAD_PAYLOAD),
                }
            }
            ("DELETE", "/orders") => match serde_json::from_slice::<Vec<String>>(req.body) {
                Ok(ids) => self.cancel(api_key, &ids, now_ms),
                Err(_) => ClobResponse::error(400, msg::BAD_PAYLOAD),
            },
            ("DELETE", "/cancel-all") => {
                let ids = self.exchange.live_ids(api_key, &|_| true);
                self.cancel(api_key, &ids, now_ms)
            }
            ("DELETE", "/cancel-market-orders") => {
                let Ok(v) = serde_json::from_slice::<Value>(req.body) else {
                    return ClobResponse::error(400, msg::BAD_PAYLOAD);
                };
                let f = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                let (market, asset) = (f("market"), f("asset_id"));
                let ids = self.exchange.live_ids(api_key, &|o| {
                    (market.is_empty() || o.market == market)
                        && (asset.is_empty() || o.asset_id == asset)
                });
                self.cancel(api_key, &ids, now_ms)
            }
            ("GET", _) => self.read(req, api_key),
            ("POST", "/v1/heartbeats") => self.heartbeat(api_key, now_ms),
            _ => ClobResponse::error(404, "not found"),
        }
    }

    fn post_batch(
        &mut self,
        req: &ClobRequest<'_>,
        api_key: &str,
        venue: &mut dyn ExchangeVenue,
        now_ms: i64,
        seen: &mut Vec<OrderSeen>,
    ) -> ClobResponse {
        let list = match serde_json::from_slice::<Vec<PostedOrder>>(req.body) {
            Ok(l) => l,
            Err(_) => return ClobResponse::error(400, msg::BAD_PAYLOAD),
        };
        if list.is_empty() || list.len() > MAX_BATCH {
            // Unverified text.
            return ClobResponse::error(
                400,
                &format!("Too many orders in payload, max allowed: {MAX_BATCH}"),
            );
        }
        let mut out = Vec::with_capacity(list.len());
        for p in &list {
            let (r, s) = self.one_order(p, api_key, venue, now_ms);
            seen.push(s);
            out.push(match r {
                Ok(v) => v,
                Err((_, text)) => json!({
                    "success": false, "errorMsg": text, "orderID": "", "status": "",
                    "makingAmount": "", "takingAmount": "",
                    "transactionsHashes": [], "tradeIDs": [],
                }),
            });
        }
        ClobResponse::json(200, &Value::Array(out))
    }

    fn heartbeat(&mut self, api_key: &str, now_ms: i64) -> ClobResponse {
        self.stats.heartbeats += 1;
        self.heartbeat_no += 1;
        if let Some(k) = self.keys.get_mut(api_key) {
            k.last_heartbeat_ms = Some(now_ms);
        }
        // Response shape unverified: the id to echo in the next heartbeat.
        ClobResponse::json(
            200,
            &json!({"heartbeat_id": format!("hb-{}", self.heartbeat_no)}),
        )
    }

    /// The L2-authenticated reads: `/data/orders`, `/data/order/<id>`, `/data/trades`,
    /// `/balance-allowance`.
    fn read(&mut self, req: &ClobRequest<'_>, api_key: &str) -> ClobResponse {
        let q = |k: &str| query_param(req.query, k).filter(|v| !v.is_empty());
        let secs = |k: &str| q(k).and_then(|v| v.parse::<i64>().ok());
        let ex = &self.exchange;
        match req.path {
            "/data/orders" => {
                let items: Vec<Value> = ex
                    .open_orders_of(api_key)
                    .into_iter()
                    .filter(|o| q("id").is_none_or(|v| v == o.id))
                    .filter(|o| q("market").is_none_or(|v| v == o.market))
                    .filter(|o| q("asset_id").is_none_or(|v| v == o.asset_id))
                    .map(open_order_json)
                    .collect();
                ClobResponse::json(200, &page(&items, q("next_cursor")))
            }
            "/data/trades" => {
                let items: Vec<Value> = ex
                    .trades_of(api_key)
                    .filter(|t| q("id").is_none_or(|v| v == t.id))
                    .filter(|t| q("market").is_none_or(|v| v == t.market))
                    .filter(|t| q("asset_id").is_none_or(|v| v == t.asset_id))
                    .filter(|t| secs("after").is_none_or(|v| t.match_ms / 1000 >= v))
                    .filter(|t| secs("before").is_none_or(|v| t.match_ms / 1000 < v))
                    .map(|t| rest_trade_json(t, api_key))
                    .collect();
                ClobResponse::json(200, &page(&items, q("next_cursor")))
            }
            "/balance-allowance" | "/balance-allowance/update" => {
                let balance = match (q("asset_type"), q("token_id")) {
                    (Some("COLLATERAL") | None, _) => self.exchange.account(api_key).usdc_micro,
                    (Some("CONDITIONAL"), Some(t)) => {
                        let acct = self.exchange.account(api_key);
                        acct.positions.get(t).copied().unwrap_or(0)
                    }
                    _ => return ClobResponse::error(400, msg::BAD_PAYLOAD),
                };
                let spender = self.domain.exchange.to_string();
                ClobResponse::json(
                    200,
                    &json!({"balance": balance.to_string(), "allowances": {spender: MAX_ALLOWANCE}}),
                )
            }
            p => match p.strip_prefix("/data/order/").and_then(|id| ex.order(id)) {
                Some(o) if o.owner == api_key => ClobResponse::json(200, &open_order_json(o)),
                _ => ClobResponse::error(404, msg::NOT_FOUND),
            },
        }
    }

    /// The data-api `GET /positions?user=<address>` (public, as on the venue): every token the
    /// address's API keys hold.
    fn positions(&mut self, query: &str, venue: &dyn ExchangeVenue) -> ClobResponse {
        let Some(user) = query_param(query, "user").and_then(|u| Address::parse(u).ok()) else {
            return ClobResponse::error(400, "user is required");
        };
        let mut held: std::collections::BTreeMap<String, (i64, i64, i64)> = Default::default();
        for key in self.keys_of(&user) {
            for t in self.exchange.trades_of(&key) {
                if t.status == crate::clob_engine::TradeStatus::Failed {
                    continue;
                }
                let buys =
                    (t.taker.api_key.as_deref() == Some(key.as_str())) == (t.side == Side::Buy);
                let e = held.entry(t.asset_id.clone()).or_default();
                if buys {
                    e.1 += t.size_micro;
                    e.2 += t.notional_micro();
                }
            }
            let acct = self.exchange.account(&key).clone();
            for (asset, q) in acct.positions {
                held.entry(asset).or_default().0 += q;
            }
        }
        let list: Vec<Value> = held
            .into_iter()
            .filter(|(_, (size, ..))| *size != 0)
            .filter_map(|(asset, (size, bought, cost))| {
                let (market, outcome) = venue.token_meta(&asset)?;
                let info = venue.token_info(&asset)?;
                Some(position_json(
                    &user, &asset, &market, outcome, info, size, bought, cost,
                ))
            })
            .collect();
        ClobResponse::json(200, &Value::Array(list))
    }

    fn cancel(&mut self, api_key: &str, ids: &[String], now_ms: i64) -> ClobResponse {
        let v = self.exchange.cancel(api_key, ids, now_ms);
        self.stats.cancels += v["canceled"].as_array().map_or(0, Vec::len) as u64;
        ClobResponse::json(200, &v)
    }

    /// The dead-man switch: keys that started heartbeats and then stopped for
    /// [`HEARTBEAT_TIMEOUT_MS`] get all their orders cancelled. Returns how many were cancelled.
    pub fn check_heartbeats(&mut self, now_ms: i64) -> usize {
        let timeout = self.heartbeat_timeout_ms;
        let stale: Vec<String> = self
            .keys
            .iter_mut()
            .filter_map(|(k, rec)| match rec.last_heartbeat_ms {
                Some(t) if now_ms - t > timeout => {
                    rec.last_heartbeat_ms = None;
                    Some(k.clone())
                }
                _ => None,
            })
            .collect();
        let mut n = 0;
        for k in stale {
            self.stats.deadman_fired += 1;
            let ids = self.exchange.live_ids(&k, &|_| true);
            n += ids.len();
            self.exchange.cancel(&k, &ids, now_ms);
        }
        n
    }

    fn one_order(
        &mut self,
        posted: &PostedOrder,
        api_key: &str,
        venue: &mut dyn ExchangeVenue,
        now_ms: i64,
    ) -> (Result<Value, Refusal>, OrderSeen) {
        self.stats.orders_received += 1;
        let field = |k: &str| {
            posted.order.get(k).map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        };
        let mut seen = OrderSeen {
            salt: field("salt").unwrap_or_default(),
            token_id: field("tokenId").unwrap_or_default(),
            side: field("side").unwrap_or_default(),
            price: None,
            outcome: String::new(),
            order_hash: None,
        };
        let r = self.check_order(posted, api_key, venue, now_ms, &mut seen);
        match &r {
            Ok(v) => {
                self.stats.orders_accepted += 1;
                seen.outcome = v
                    .get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
            }
            Err((_, text)) => {
                self.stats.orders_rejected += 1;
                seen.outcome = text.clone();
            }
        }
        (r, seen)
    }

    fn check_order(
        &mut self,
        posted: &PostedOrder,
        api_key: &str,
        venue: &mut dyn ExchangeVenue,
        now_ms: i64,
        seen: &mut OrderSeen,
    ) -> Result<Value, Refusal> {
        let bad = || (400u16, msg::BAD_PAYLOAD.to_string());
        let o = &posted.order;
        // V1 orders: taker/nonce/feeRateBps, no timestamp/metadata/builder.
        let v1 = ["taker", "nonce", "feeRateBps"]
            .iter()
            .any(|k| o.get(k).is_some())
            || ["timestamp", "metadata", "builder"]
                .iter()
                .any(|k| o.get(k).is_none());
        if v1 {
            return Err((400, msg::VERSION_MISMATCH.into()));
        }
        let w: WireOrder = serde_json::from_value(o.clone()).map_err(|_| bad())?;
        if posted.owner != api_key {
            return Err((400, msg::OWNER_MISMATCH.into()));
        }
        let order = order_struct(&w)?;
        let (maker_amount, taker_amount, side) =
            (order.maker_amount, order.taker_amount, order.side);
        let digest = order.digest(&self.domain);
        let order_id = hex0x(&digest);
        seen.order_hash = Some(order_id.clone());
        let Some(info) = venue.token_info(&w.token_id) else {
            return Err((400, msg::INVALID_TOKEN.into()));
        };
        // Shares and price (1e-8) from the amounts.
        let (shares_micro, cost_micro) = if side == 0 {
            (taker_amount, maker_amount)
        } else {
            (maker_amount, taker_amount)
        };
        if shares_micro == 0 {
            return Err(below_min_size(&order_id, 0));
        }
        let price_e8 = checked_price(info, cost_micro, shares_micro, seen)?;
        let order_type = posted.order_type.as_deref().unwrap_or("GTC");
        let limit = matches!(order_type, "GTC" | "GTD");
        if limit && shares_micro < MIN_SIZE_SHARES * 1_000_000 {
            return Err(below_min_size(&order_id, shares_micro));
        }
        self.check_signature(&order, &w.signature, api_key)?;
        if info.resolved {
            return Err((
                400,
                "the market is not yet ready to process new orders".into(),
            ));
        }
        if self.seen.contains(&digest) {
            return Err((400, format!("order {order_id} is invalid. Duplicated.")));
        }
        let expiration_s = if order_type == "GTD" {
            w.expiration.as_deref().unwrap_or("0").parse().unwrap_or(0)
        } else {
            0
        };
        if order_type == "GTD" && expiration_s < now_ms / 1000 + 60 {
            return Err((400, msg::INVALID_EXPIRATION.into()));
        }
        let side = if side == 0 { Side::Buy } else { Side::Sell };
        let order_type = OrderType::parse(order_type).ok_or_else(bad)?;
        let n = NewOrder {
            id: order_id,
            owner: api_key.to_string(),
            maker_address: order.maker.to_string(),
            asset_id: w.token_id.clone(),
            side,
            price_e6: price_e8 / 100,
            size_micro: i64::try_from(shares_micro).map_err(|_| bad())?,
            budget_micro: (side == Side::Buy && !limit)
                .then(|| i64::try_from(cost_micro).unwrap_or(i64::MAX)),
            order_type,
            post_only: posted.post_only,
            expiration_s,
        };
        let r = self.exchange.place(n, venue, now_ms).map_err(|e| (400, e));
        if r.is_ok() {
            self.remember(digest);
        }
        r
    }

    /// Signature types 0-2 recover over the order hash, 3 over the ERC-7739 wrapper; the
    /// recovered EOA must be the one the type implies, and the signer the API key's (type 3: the
    /// deposit wallet the key's EOA owns).
    fn check_signature(
        &self,
        order: &OrderStruct,
        signature: &str,
        api_key: &str,
    ) -> Result<(), Refusal> {
        let sig = parse_hex(signature).ok_or_else(|| (400, msg::INVALID_SIGNATURE.to_string()))?;
        let recovered = recover_order_signer(order, &self.domain, &sig)
            .map_err(|_| (400, msg::INVALID_SIGNATURE.to_string()))?;
        let type_ok = match order.signature_type {
            0 => order.maker == order.signer,
            1 | 2 => true,
            3 => order.maker == order.signer,
            _ => false,
        };
        let expected_eoa = if order.signature_type == 3 {
            // The deposit wallet (signer) is owned by the EOA that holds the API key.
            self.keys.get(api_key).map(|k| k.address)
        } else {
            Some(order.signer)
        };
        if !type_ok || Some(recovered) != expected_eoa {
            return Err((400, msg::INVALID_SIGNATURE.into()));
        }
        let key_addr = self.keys.get(api_key).map(|k| k.address);
        if order.signature_type != 3 && Some(order.signer) != key_addr {
            return Err((400, msg::SIGNER_NOT_API_KEY.into()));
        }
        Ok(())
    }

    fn remember(&mut self, digest: [u8; 32]) {
        if self.seen_fifo.len() >= SEEN_CAP
            && let Some(old) = self.seen_fifo.pop_front()
        {
            self.seen.remove(&old);
        }
        self.seen.insert(digest);
        self.seen_fifo.push_back(digest);
    }
}

#[cold]
fn unreachable_domain() -> OrderDomain {
    // OrderDomain::new(137, 2, false) only fails for an unknown chain or version.
    OrderDomain {
        chain_id: 137,
        exchange: Address([0; 20]),
        version: 2,
        separator: [0; 32],
    }
}

/// Best-effort description of the orders in a `POST /order(s)` body that never reached
/// [`ClobState::handle`] (refused by an injected 429/503), for the wire log.
pub fn describe_orders(body: &[u8], outcome: &str) -> Vec<OrderSeen> {
    let items = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(a)) => a,
        Ok(o @ Value::Object(_)) => vec![o],
        _ => return Vec::new(),
    };
    items
        .iter()
        .filter_map(|p| p.get("order"))
        .map(|o| {
            let f = |k: &str| {
                o.get(k).map_or_else(String::new, |v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
            };
            OrderSeen {
                salt: f("salt"),
                token_id: f("tokenId"),
                side: f("side"),
                price: None,
                outcome: outcome.to_string(),
                order_hash: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// Vectors produced by Polymarket's official Python client (`py-clob-client-v2`), committed
    /// by the exec crate (`exec/vectors/generate.py`).
    const VECTORS: &str = include_str!("../../exec/vectors/vectors.json");

    fn vectors() -> Value {
        serde_json::from_str(VECTORS).unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_string()))
            .collect()
    }

    fn post<'a>(path: &'a str, headers: &'a [(String, String)], body: &'a [u8]) -> ClobRequest<'a> {
        ClobRequest {
            method: "POST",
            path,
            query: "",
            headers,
            body,
        }
    }

    #[test]
    fn l2_hmac_matches_the_official_client() {
        let v = vectors();
        let secret = decode_secret(v["creds"]["secret"].as_str().unwrap()).unwrap();
        let cases = v["l2_headers"].as_array().unwrap();
        assert!(cases.len() >= 5);
        for c in cases {
            let body = c["body"].as_str().unwrap_or("");
            let got = l2_signature(
                &secret,
                c["headers"]["POLY_TIMESTAMP"].as_str().unwrap(),
                c["method"].as_str().unwrap(),
                c["path"].as_str().unwrap(),
                body.as_bytes(),
            );
            assert_eq!(got, c["headers"]["POLY_SIGNATURE"].as_str().unwrap(), "{c}");
        }
    }

    fn venue() -> crate::clob_engine::FixedBook {
        crate::clob_engine::FixedBook {
            bids: vec![(300_000, 100_000_000)],
            asks: vec![(500_000, 100_000_000)],
        }
    }

    #[test]
    fn official_client_l1_headers_create_a_key_and_its_orders_are_accepted_once() {
        let v = vectors();
        let mut st = ClobState::new(7);
        let mut book = venue();
        // L1: the official client's ClobAuth headers create a key for its address.
        let l1 = &v["l1_headers"][0];
        let h = &l1["headers"];
        let hs = headers(&[
            ("POLY_ADDRESS", h["POLY_ADDRESS"].as_str().unwrap()),
            ("POLY_SIGNATURE", h["POLY_SIGNATURE"].as_str().unwrap()),
            ("POLY_TIMESTAMP", h["POLY_TIMESTAMP"].as_str().unwrap()),
            ("POLY_NONCE", h["POLY_NONCE"].as_str().unwrap()),
        ]);
        let req = post("/auth/api-key", &hs, b"");
        let (r, _) = st.handle(&req, &mut book, 0);
        assert_eq!(r.status, 200, "{}", r.body);
        // The same headers with the signature of another message are refused.
        let mut bad = hs.clone();
        bad[2].1 = "1773307201".into();
        let req = ClobRequest {
            headers: &bad,
            ..req
        };
        assert_eq!(st.handle(&req, &mut book, 0).0.status, 401);
        // L2: the vector's API key, registered for the same address.
        let creds = &v["creds"];
        let api_key = creds["api_key"].as_str().unwrap();
        let addr = Address::parse(h["POLY_ADDRESS"].as_str().unwrap()).unwrap();
        assert!(st.add_api_key(
            addr,
            api_key,
            creds["secret"].as_str().unwrap(),
            creds["passphrase"].as_str().unwrap()
        ));
        let order = &v["orders"][0];
        let body = order["expected"]["body"].as_str().unwrap();
        let secret = decode_secret(creds["secret"].as_str().unwrap()).unwrap();
        let sig = l2_signature(&secret, "1773307200", "POST", "/order", body.as_bytes());
        let hs = headers(&[
            ("POLY_ADDRESS", h["POLY_ADDRESS"].as_str().unwrap()),
            ("POLY_SIGNATURE", &sig),
            ("POLY_TIMESTAMP", "1773307200"),
            ("POLY_API_KEY", api_key),
            ("POLY_PASSPHRASE", creds["passphrase"].as_str().unwrap()),
        ]);
        let req = post("/order", &hs, body.as_bytes());
        let (r, seen) = st.handle(&req, &mut book, 1_773_307_200_000);
        assert_eq!(r.status, 200, "{}", r.body);
        let v2: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v2["status"], "live");
        assert_eq!(v2["orderID"], order["expected"]["digest"]);
        assert_eq!(seen[0].salt, "123456789");
        assert_eq!(seen[0].price.as_deref(), Some("0.37"));
        // Twice: duplicated.
        let (r, _) = st.handle(&req, &mut book, 1_773_307_200_000);
        assert_eq!(r.status, 400);
        assert!(r.body.contains("Duplicated"), "{}", r.body);
        // One flipped body byte: the HMAC no longer matches.
        let mut tampered = body.as_bytes().to_vec();
        let i = tampered.len() - 3;
        tampered[i] ^= 1;
        let req = ClobRequest {
            body: &tampered,
            ..req
        };
        let (r, _) = st.handle(&req, &mut book, 0);
        assert_eq!(
            (r.status, r.body.as_str()),
            (401, r#"{"error":"Unauthorized/Invalid api key"}"#)
        );
        assert_eq!(st.stats.auth_failures, 1);
    }

    #[test]
    fn heartbeats_arm_the_dead_man_switch() {
        let mut st = ClobState::new(1);
        st.add_api_key(Address([1; 20]), "k", "c2VjcmV0", "p");
        let mut book = venue();
        let mut o = crate::clob_engine::NewOrder {
            id: "0x01".into(),
            owner: "k".into(),
            maker_address: "0xabc".into(),
            asset_id: "up".into(),
            side: Side::Buy,
            price_e6: 200_000,
            size_micro: 5_000_000,
            budget_micro: None,
            order_type: OrderType::Gtc,
            post_only: false,
            expiration_s: 0,
        };
        st.exchange.place(o.clone(), &mut book, 0).unwrap();
        o.id = "0x02".into();
        st.exchange.place(o, &mut book, 0).unwrap();
        st.exchange.outbox.clear();
        // No heartbeat yet: nothing happens.
        assert_eq!(st.check_heartbeats(1_000_000), 0);
        st.keys.get_mut("k").unwrap().last_heartbeat_ms = Some(1_000_000);
        assert_eq!(st.check_heartbeats(1_000_000 + HEARTBEAT_TIMEOUT_MS), 0);
        assert_eq!(st.check_heartbeats(1_000_001 + HEARTBEAT_TIMEOUT_MS), 2);
        assert_eq!(st.open_orders(), 0);
        let ev: Vec<&str> = st.exchange.outbox.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(ev.len(), 2);
        assert!(
            ev.iter().all(|e| e.contains(r#""type":"CANCELLATION""#)),
            "{ev:?}"
        );
        assert_eq!(st.stats.deadman_fired, 1);
    }
}
