//! Reconciliation with the venue (sans-IO): what the REST views say about our orders.
//!
//! Run at start-up and after every (re)connect of the user channel, because events sent while we
//! were away are gone:
//! * `GET /data/orders` — the open orders: a local order the venue lists is restored to ACKED if
//!   its outcome was unknown (REJECTED with `LOCAL_CONN_LOST`, or still SUBMITTED); the count
//!   becomes the risk gate's open-order count; a local ACKED / PARTIALLY_FILLED order, or one of
//!   unknown outcome, that the venue does not list is looked up by its hash. A SUBMITTED order
//!   is not looked up: its request is in flight and its own response (or its loss) decides it.
//! * `GET /data/order/<hash>` — one order by its hash (known before it was sent): LIVE restores
//!   it, CANCELED / INVALID cancels it, nothing (the venue never saw it) makes an unknown order's
//!   outcome known (it stays REJECTED).
//! * `GET /data/trades` — recent trades, same shape as the user channel's trade events: fed
//!   through the same parser and [`crate::fills::FillTracker`], so fills missed while
//!   disconnected are recorded (duplicates of fills already seen change nothing).
//!
//! * `GET /balance-allowance` — the collateral balance, and per token we traded (CONDITIONAL with
//!   `token_id`) the shares the venue says we hold: the position check against the ledger.
//!
//! Bodies are the paginated envelope `{"data":[…],"next_cursor":"…"}` or a bare array; the last
//! page has `next_cursor` `"LTE="` (or none). The driver follows the cursor; open orders are
//! applied once the last page is in. Cold path: parsed into `serde_json::Value`.

use ringbolt_bus::OrderState;
use serde_json::Value;

use crate::client::inflight::{ClientCore, TransitionSink};
use crate::fills::OpenDelta;
use crate::user::{VenueOrderStatus, decimal_e8};

/// `GET /data/orders`.
pub const PATH_DATA_ORDERS: &str = "/data/orders";
/// `GET /data/trades`.
pub const PATH_DATA_TRADES: &str = "/data/trades";
/// `GET /data/order/<hash>` (prefix).
pub const PATH_DATA_ORDER: &str = "/data/order/";
/// `GET /balance-allowance?asset_type=COLLATERAL|CONDITIONAL[&token_id=]`.
pub const PATH_BALANCE_ALLOWANCE: &str = "/balance-allowance";
/// The cursor of the last page.
pub const END_CURSOR: &str = "LTE=";

/// Why a REST body could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReconcileError {
    /// Not JSON.
    #[error("not JSON")]
    BadJson,
    /// Neither an array nor `{"data": [...]}`.
    #[error("unexpected shape")]
    Shape,
}

/// One order as a REST view shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VenueOrder {
    /// Order hash.
    pub id: String,
    /// Status.
    pub status: VenueOrderStatus,
    /// Cumulative matched, 1e-8 shares.
    pub size_matched_e8: i64,
}

/// A page of a paginated view: its elements and the next cursor (`None` on the last page).
pub fn page(body: &[u8]) -> Result<(Vec<Value>, Option<String>), ReconcileError> {
    let v: Value = serde_json::from_slice(body).map_err(|_| ReconcileError::BadJson)?;
    match v {
        Value::Array(items) => Ok((items, None)),
        Value::Object(mut m) => {
            let Some(Value::Array(items)) = m.remove("data") else {
                return Err(ReconcileError::Shape);
            };
            let next = m
                .get("next_cursor")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty() && *c != END_CURSOR)
                .map(str::to_owned);
            Ok((items, next))
        }
        _ => Err(ReconcileError::Shape),
    }
}

fn status_of(s: &str) -> Option<VenueOrderStatus> {
    let s = s.strip_prefix("ORDER_STATUS_").unwrap_or(s);
    Some(match s.to_ascii_uppercase().as_str() {
        "LIVE" => VenueOrderStatus::Live,
        "MATCHED" => VenueOrderStatus::Matched,
        "DELAYED" => VenueOrderStatus::Delayed,
        "INVALID" => VenueOrderStatus::Invalid,
        x if x.starts_with("CANCELED") || x.starts_with("CANCELLED") => VenueOrderStatus::Canceled,
        _ => return None,
    })
}

/// One REST order object (`None` when it is not an order: skipped).
#[must_use]
pub fn venue_order(v: &Value) -> Option<VenueOrder> {
    let id = v.get("id")?.as_str()?.to_owned();
    let status = status_of(v.get("status")?.as_str()?)?;
    let size_matched_e8 = v
        .get("size_matched")
        .and_then(Value::as_str)
        .and_then(decimal_e8)
        .unwrap_or(0);
    Some(VenueOrder {
        id,
        status,
        size_matched_e8,
    })
}

/// `GET /data/order/<hash>`: the order, or `None` when the venue does not know it (404, `null`,
/// `{}`).
pub fn order_lookup(http_status: u16, body: &[u8]) -> Result<Option<VenueOrder>, ReconcileError> {
    if http_status == 404 {
        return Ok(None);
    }
    let v: Value = serde_json::from_slice(body).map_err(|_| ReconcileError::BadJson)?;
    match &v {
        Value::Null => Ok(None),
        Value::Object(m) if m.is_empty() => Ok(None),
        Value::Object(_) => venue_order(&v).map(Some).ok_or(ReconcileError::Shape),
        _ => Err(ReconcileError::Shape),
    }
}

/// What one pass over the open orders found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenOrdersReport {
    /// Orders the venue lists as open (ours and any others of the account).
    pub venue_open: u32,
    /// Local orders restored (their outcome was unknown).
    pub restored: u32,
    /// Local open or unknown orders the venue does not list: look them up by hash.
    pub lookup: Vec<u64>,
}

/// Applies the venue's open orders to the tracked ones.
pub fn apply_open_orders(
    core: &mut ClientCore,
    open: &[VenueOrder],
    now_ns: i64,
    sink: &mut dyn TransitionSink,
) -> OpenOrdersReport {
    let mut rep = OpenOrdersReport {
        venue_open: u32::try_from(open.len()).unwrap_or(u32::MAX),
        ..OpenOrdersReport::default()
    };
    let mut listed = std::collections::HashSet::new();
    for o in open {
        let Some(coid) = core.coid_by_hash(&o.id) else {
            continue;
        };
        listed.insert(coid);
        let before = core.order(coid).map(|x| x.state);
        apply_lookup(core, coid, Some(o), now_ns, sink);
        let after = core.order(coid).map(|x| x.state);
        if matches!(before, Some(OrderState::Submitted | OrderState::Rejected))
            && after == Some(OrderState::Acked)
        {
            rep.restored += 1;
        }
    }
    let mut lookup: Vec<u64> = core
        .orders()
        .filter(|o| !listed.contains(&o.client_order_id) && in_doubt_or_open(o))
        .map(|o| o.client_order_id)
        .collect();
    lookup.sort_unstable();
    rep.lookup = lookup;
    rep
}

fn in_doubt_or_open(o: &crate::lifecycle::Order) -> bool {
    match o.state {
        OrderState::Acked | OrderState::PartiallyFilled => true,
        OrderState::Rejected => o.unknown_outcome,
        _ => false,
    }
}

/// Applies what the venue says about one of our orders (`None`: it does not know it).
pub fn apply_lookup(
    core: &mut ClientCore,
    coid: u64,
    venue: Option<&VenueOrder>,
    now_ns: i64,
    sink: &mut dyn TransitionSink,
) -> OpenDelta {
    let Some(o) = core.order_mut(coid) else {
        return OpenDelta::default();
    };
    let was_terminal = o.is_terminal();
    let vid = o.venue_order_id;
    let unknown = matches!(o.state, OrderState::Submitted)
        || (o.state == OrderState::Rejected && o.unknown_outcome);
    let r = match venue.map(|v| v.status) {
        Some(VenueOrderStatus::Live | VenueOrderStatus::Delayed) if unknown => {
            o.restore(OrderState::Acked, vid, now_ns)
        }
        Some(VenueOrderStatus::Canceled | VenueOrderStatus::Invalid) if unknown => {
            o.restore(OrderState::Cancelled, vid, now_ns)
        }
        Some(VenueOrderStatus::Canceled | VenueOrderStatus::Invalid)
            if matches!(o.state, OrderState::Acked | OrderState::PartiallyFilled) =>
        {
            o.cancelled(now_ns)
        }
        // Matched: the fills come from the trades view.
        Some(_) => return OpenDelta::default(),
        // In flight: its own response decides.
        None if o.state == OrderState::Submitted => return OpenDelta::default(),
        None => {
            // The venue never had it: its outcome is no longer unknown (it stays REJECTED).
            o.unknown_outcome = false;
            return OpenDelta::default();
        }
    };
    if let Ok(r) = r {
        sink.transition(&r);
    }
    let is_terminal = o.is_terminal();
    OpenDelta {
        closed: u32::from(!was_terminal && is_terminal),
        reopened: u32::from(was_terminal && !is_terminal),
    }
}

/// `{"balance":"<micro units>", …}` → micro units (pUSD or shares, 6 decimals).
pub fn balance_micros(http_status: u16, body: &[u8]) -> Result<i64, ReconcileError> {
    if http_status >= 300 {
        return Err(ReconcileError::Shape);
    }
    let v: Value = serde_json::from_slice(body).map_err(|_| ReconcileError::BadJson)?;
    let b = v.get("balance").ok_or(ReconcileError::Shape)?;
    match b {
        Value::String(s) => s.parse().map_err(|_| ReconcileError::Shape),
        Value::Number(n) => n.as_i64().ok_or(ReconcileError::Shape),
        _ => Err(ReconcileError::Shape),
    }
}
