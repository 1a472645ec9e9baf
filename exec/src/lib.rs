//! `ringbolt-exec`: Polymarket CLOB V2 order path, sans-IO.
//!
//! * [`amounts`]: price/size → maker/taker amounts (exact decimals, reference rounding rules).
//! * [`eip712`], [`keys`], [`hash`]: V2/V3 order typed-data hashing, secp256k1 signing and
//!   recovery (signature types 0-3), L1 `ClobAuth`.
//! * [`order`]: validated order specs and the exact `POST /order` / `POST /orders` bodies.
//! * [`auth`]: L2 HMAC headers (pre-keyed HMAC) and L1 headers.
//! * [`request`]: request bytes for the HTTP/2 client (method, path, headers, body).
//! * [`classify`]: venue responses → typed outcomes (unknown errors kept verbatim).
//! * [`lifecycle`]: the order state machine emitting bus `OrderTransition` records.
//! * [`risk`]: paper/live mode, risk limits, kill switch.
//! * [`backoff`]: HTTP 425/429/503 back-off (exponential, `Retry-After`), never a blind resend.
//! * [`journal`]: the crash-safe journal of spend reservations and open orders.
//! * [`reconcile`]: REST views (open orders, one order by hash, trades) applied to our orders.
//! * [`user`]: the user channel (order and trade events) parsed sans-IO.
//! * [`fills`]: user events → order transitions and `Fill` records (provisional, confirmed,
//!   failed-and-reverted).
//! * [`ledger`]: positions and cash per token, window and day, from `Fill` records only.
//! * [`pool`]: the pre-signed order pool and its O(1), allocation-free hot path.
//!
//! * [`client`]: the order client — a sans-IO core ([`client::inflight`]) plus a thin driver over
//!   `ringbolt_net::H2Client` on the io_uring driver.
//!
//! Apart from [`client`]'s driver, nothing here touches a socket.

pub mod amounts;
pub mod auth;
pub mod backoff;
pub mod classify;
pub mod client;
pub mod eip712;
pub mod fills;
pub mod hash;
pub mod hex;
pub mod journal;
pub mod keys;
pub mod ledger;
pub mod lifecycle;
pub mod order;
pub mod pool;
pub mod reconcile;
pub mod request;
pub mod risk;
pub mod user;

pub use amounts::{Amounts, Decimal, Micros, OrderSide, TickSize};
pub use auth::{ApiCreds, L1Headers, L2Headers, L2Signer, l1_headers};
pub use eip712::{OrderDomain, OrderStruct, U256};
pub use keys::{Address, PrivateKey, recover};
pub use order::{
    MAX_BATCH, OrderInput, OrderSpec, OrderType, SignatureType, SignedOrder, batch_body,
    recover_order_signer,
};

/// Errors of the exec crate. Messages never contain secrets.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A decimal string could not be parsed.
    #[error("bad decimal {input:?}: {reason}")]
    BadDecimal {
        /// The offending input (truncated).
        input: String,
        /// Why.
        reason: String,
    },
    /// An input field is invalid.
    #[error("bad {field}: {reason}")]
    BadField {
        /// Field name.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A limit price is not a multiple of the tick.
    #[error("price {price} is not on the {tick} tick grid")]
    OffTick {
        /// Price text.
        price: String,
        /// Tick size.
        tick: TickSize,
    },
    /// Price outside `[tick, 1 - tick]`.
    #[error("invalid price ({price}), min: {tick} - max: 1 - {tick}")]
    PriceOutOfRange {
        /// Price text.
        price: String,
        /// Tick size.
        tick: TickSize,
    },
    /// An amount does not fit.
    #[error("amount overflows")]
    AmountOverflow,
    /// `POST /orders` takes 1 to 15 orders.
    #[error("a batch holds 1 to 15 orders, not {0}")]
    BatchSize(usize),
    /// The private key text is not a valid secp256k1 scalar (the text is never echoed).
    #[error("invalid private key")]
    BadKey,
    /// The key file cannot be used.
    #[error("key file {path}: {reason}")]
    KeyFile {
        /// Path.
        path: String,
        /// Why.
        reason: String,
    },
    /// The API secret is not base64 (the secret is never echoed).
    #[error("API secret is not url-safe base64: {0}")]
    BadSecret(String),
    /// Signing failed.
    #[error("signing failed")]
    Signing,
    /// A signature could not be parsed or recovered.
    #[error("bad signature: {0}")]
    BadSignature(&'static str),
}
