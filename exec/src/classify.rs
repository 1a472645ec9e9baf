//! Venue responses → typed outcomes.
//!
//! The CLOB reports errors three ways: a non-200 status with `{"error": "..."}`, a 200 (or 4xx)
//! with `{"success": false, "errorMsg": "..."}`, or a non-JSON body (proxies, rate limiters).
//! [`classify`] maps every known message (PROTOCOL_NOTES.md §3, the corpus
//! `rest_samples/order_and_error_responses.jsonl`) to an [`ErrorClass`]; anything else is
//! [`ErrorClass::Unknown`] with the message kept verbatim.

use serde_json::Value;

/// Known rejection classes. The numeric value is the bus `OrderTransition::error_class`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum ErrorClass {
    /// `not enough balance / allowance`, `…allowance is not enough…`.
    InsufficientBalance = 1,
    /// `Size (x) lower than the minimum: 5`, `INVALID_ORDER_MIN_SIZE`.
    BelowMinSize = 2,
    /// `Price breaks minimum tick size rules`, `INVALID_ORDER_MIN_TICK_SIZE`.
    TickSize = 3,
    /// Post-only order would cross the book.
    PostOnlyCrosses = 4,
    /// FOK not fully filled.
    FokNotFilled = 5,
    /// FAK found nothing to match.
    FakNotFilled = 6,
    /// Market not ready to take orders.
    MarketNotReady = 7,
    /// `invalid signature`.
    InvalidSignature = 8,
    /// `order_version_mismatch` (V1-signed order, or stale version).
    OrderVersionMismatch = 9,
    /// HTTP 401 `Unauthorized/Invalid api key`.
    Unauthorized = 10,
    /// HTTP 429 `Too Many Requests`.
    RateLimited = 11,
    /// HTTP 503 `Trading is currently disabled…`.
    TradingDisabled = 12,
    /// HTTP 503 `Trading is currently cancel-only…`.
    CancelOnly = 13,
    /// `invalid expiration` (GTD < now + 60 s).
    InvalidExpiration = 14,
    /// `INVALID_ORDER_DUPLICATED`: the same signed order twice.
    Duplicated = 15,
    /// `invalid nonce`.
    InvalidNonce = 16,
    /// `the order signer address has to be the address of the API KEY`.
    SignerNotApiKey = 17,
    /// `maker address not allowed, please use the deposit wallet flow`.
    DepositWalletRequired = 18,
    /// Venue in post-only mode: only post-only orders and cancels.
    PostOnlyMode = 19,
    /// `EXECUTION_ERROR`.
    ExecutionError = 20,
    /// `Invalid token id`.
    InvalidToken = 21,
    /// `No orderbook exists for the requested token id`.
    NoOrderbook = 22,
    /// Accepted but `status: unmatched` (marketable order that did not match).
    Unmatched = 23,
    /// Other 5xx.
    ServerError = 24,
    /// Anything else: the message is kept verbatim.
    Unknown = 255,
}

impl ErrorClass {
    /// Whether retrying the same request later may succeed (rate limits, transient venue state).
    #[must_use]
    pub const fn retryable(self) -> bool {
        matches!(
            self,
            ErrorClass::RateLimited
                | ErrorClass::ServerError
                | ErrorClass::MarketNotReady
                | ErrorClass::TradingDisabled
                | ErrorClass::CancelOnly
        )
    }
}

/// Accepted order status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcceptedStatus {
    /// Resting on the book.
    Live,
    /// Matched (fully or partly) on entry.
    Matched,
    /// Delayed (marketable order in the matching delay).
    Delayed,
    /// Success without a status field (older fixtures).
    Unspecified,
}

/// The outcome of one order submission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted.
    Accepted {
        /// Venue order id (order hash).
        order_id: String,
        /// Status.
        status: AcceptedStatus,
        /// `makingAmount` as sent ("" if none).
        making_amount: String,
        /// `takingAmount` as sent.
        taking_amount: String,
        /// Trade ids.
        trade_ids: Vec<String>,
    },
    /// Rejected.
    Rejected {
        /// Class.
        class: ErrorClass,
        /// HTTP status.
        http_status: u16,
        /// The venue's message, verbatim.
        message: String,
    },
}

fn class_of_message(msg: &str) -> Option<ErrorClass> {
    let m = msg.to_ascii_lowercase();
    let has = |s: &str| m.contains(s);
    Some(
        if has("not enough balance") || has("allowance is not enough") || has("insufficient") {
            ErrorClass::InsufficientBalance
        } else if has("lower than the minimum") || has("invalid_order_min_size") {
            ErrorClass::BelowMinSize
        } else if has("minimum tick size") || has("invalid_order_min_tick_size") {
            ErrorClass::TickSize
        } else if has("post-only mode") {
            ErrorClass::PostOnlyMode
        } else if has("crosses book")
            || has("crosses the book")
            || has("invalid post-only order")
            || has("invalid_post_only_order")
        {
            ErrorClass::PostOnlyCrosses
        } else if has("fok orders are fully filled or killed")
            || has("couldn't be fully filled")
            || has("fok_order_not_filled")
        {
            ErrorClass::FokNotFilled
        } else if has("fak order") || has("fak orders") {
            ErrorClass::FakNotFilled
        } else if has("not yet ready to process new orders") || has("market_not_ready") {
            ErrorClass::MarketNotReady
        } else if has("order_version_mismatch") {
            ErrorClass::OrderVersionMismatch
        } else if has("invalid signature") {
            ErrorClass::InvalidSignature
        } else if has("has to be the address of the api key") {
            ErrorClass::SignerNotApiKey
        } else if has("deposit wallet flow") {
            ErrorClass::DepositWalletRequired
        } else if has("unauthorized") || has("invalid api key") {
            ErrorClass::Unauthorized
        } else if has("too many requests") {
            ErrorClass::RateLimited
        } else if has("cancel-only") {
            ErrorClass::CancelOnly
        } else if has("trading is currently disabled") {
            ErrorClass::TradingDisabled
        } else if has("invalid expiration") || has("invalid_order_expiration") {
            ErrorClass::InvalidExpiration
        } else if has("duplicated") {
            ErrorClass::Duplicated
        } else if has("invalid nonce") {
            ErrorClass::InvalidNonce
        } else if has("execution_error") || has("execution error") {
            ErrorClass::ExecutionError
        } else if has("invalid token id") {
            ErrorClass::InvalidToken
        } else if has("no orderbook exists") {
            ErrorClass::NoOrderbook
        } else {
            return None;
        },
    )
}

fn class_of_status(status: u16) -> ErrorClass {
    match status {
        401 => ErrorClass::Unauthorized,
        429 => ErrorClass::RateLimited,
        503 => ErrorClass::TradingDisabled,
        500..=599 => ErrorClass::ServerError,
        _ => ErrorClass::Unknown,
    }
}

fn reject(status: u16, message: String) -> Outcome {
    let class = class_of_message(&message).unwrap_or_else(|| class_of_status(status));
    Outcome::Rejected {
        class,
        http_status: status,
        message,
    }
}

fn str_field(v: &Value, k: &str) -> Option<String> {
    match v.get(k)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn classify_value(status: u16, v: &Value) -> Outcome {
    if let Some(e) = v.get("error") {
        let msg = match e {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        return reject(status, msg);
    }
    let success = v.get("success").and_then(Value::as_bool);
    let error_msg = str_field(v, "errorMsg").unwrap_or_default();
    let order_id = str_field(v, "orderID").unwrap_or_default();
    let status_field = v.get("status").and_then(Value::as_str);
    if success == Some(true) && error_msg.is_empty() && !order_id.is_empty() && status < 300 {
        let st = match status_field {
            Some("live") => Some(AcceptedStatus::Live),
            Some("matched") => Some(AcceptedStatus::Matched),
            Some("delayed") => Some(AcceptedStatus::Delayed),
            None => Some(AcceptedStatus::Unspecified),
            Some(_) => None,
        };
        if let Some(st) = st {
            let list = |k: &str| -> Vec<String> {
                v.get(k)
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            return Outcome::Accepted {
                order_id,
                status: st,
                making_amount: str_field(v, "makingAmount").unwrap_or_default(),
                taking_amount: str_field(v, "takingAmount").unwrap_or_default(),
                trade_ids: list("tradeIDs"),
            };
        }
        if status_field == Some("unmatched") {
            return Outcome::Rejected {
                class: ErrorClass::Unmatched,
                http_status: status,
                message: v.to_string(),
            };
        }
    }
    if !error_msg.is_empty() {
        return reject(status, error_msg);
    }
    reject(status, v.to_string())
}

/// Classifies the response to `POST /order`. A batch response (JSON array) yields one outcome
/// per element; a single response yields one.
#[must_use]
pub fn classify(http_status: u16, body: &[u8]) -> Vec<Outcome> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) if http_status < 300 => items
            .iter()
            .map(|i| classify_value(http_status, i))
            .collect(),
        Ok(v @ Value::Object(_)) => vec![classify_value(http_status, &v)],
        Ok(other) => vec![reject(http_status, other.to_string())],
        Err(_) => vec![reject(
            http_status,
            String::from_utf8_lossy(body).trim().to_owned(),
        )],
    }
}

/// Classifies a single-order response.
#[must_use]
pub fn classify_one(http_status: u16, body: &[u8]) -> Outcome {
    classify(http_status, body)
        .into_iter()
        .next()
        .unwrap_or_else(|| reject(http_status, String::new()))
}
