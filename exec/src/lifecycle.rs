//! The order state machine:
//!
//! ```text
//! INITIALIZED → SUBMITTED → ACKED ⇄ PARTIALLY_FILLED ⇄ FILLED
//!      │            │  ╲      │  ╲         │  ↺           │
//!      │            │   ╲     │   ╲────────┼──────────────┘ (ACKED ⇄ FILLED directly too)
//!      │            │    → PARTIALLY_FILLED | FILLED | CANCELLED   (user channel before REST)
//!      │            │         → CANCELLED | EXPIRED ←── PARTIALLY_FILLED
//!      └────────────┴──→ REJECTED ──→ ACKED | PARTIALLY_FILLED | FILLED | CANCELLED
//!                                      (only when the outcome was unknown: LOCAL_CONN_LOST)
//!   CANCELLED ↺, EXPIRED ↺  (fill correction on a closed order: `filled` changes, state stays)
//! ```
//!
//! * Fills come from trades (the user channel, or reconciliation): `filled` is the sum of the
//!   order's trades that have not FAILED, provisional or confirmed ([`Order::set_filled`]).
//!   Forward edges add fills; the backward edges (FILLED → PARTIALLY_FILLED | ACKED,
//!   PARTIALLY_FILLED → ACKED) exist only for a FAILED trade reverting its fill.
//! * SUBMITTED → PARTIALLY_FILLED | FILLED | CANCELLED: the user channel reports the match (or a
//!   FOK kill) before the REST response arrives; the late response is then refused as illegal
//!   and changes nothing.
//! * REJECTED is terminal, except for an order whose submit outcome was unknown (the connection
//!   died before the response: class [`LOCAL_CONN_LOST`]); reconciliation finds it by its order
//!   hash and restores what the venue says ([`Order::restore`]).
//! * A FAILED trade on a CANCELLED or EXPIRED order lowers `filled` with a self edge.
//!
//! Every accepted transition returns the bus [`Record`] (kind `OrderTransition`) to publish
//! (the creation record has `from_state == to_state == INITIALIZED`; the transition time is in
//! the header's `recv_ts_ns`);
//! lifecycles replay transition by transition from those records ([`Order::replay`]).
//! Illegal transitions are refused with [`IllegalTransition`] and change nothing.

use std::sync::atomic::{AtomicU64, Ordering};

use ringbolt_bus::{OrderState, OrderTransition, Record, Side, Venue};

use crate::classify::{ErrorClass, Outcome};

/// Bus stream number used for order transitions.
pub const STREAM_ORDERS: u8 = 0;

/// Client order ids, unique per generator and (with the time-derived prefix) across restarts:
/// `start_ms << 20 | counter`, so ids stay unique while fewer than 2²⁰ orders are created per
/// millisecond of uptime.
#[derive(Debug)]
pub struct ClientOrderIds {
    next: AtomicU64,
}

impl ClientOrderIds {
    /// Seeds from the wall clock (ms since the epoch).
    #[must_use]
    pub fn new(now_ms: u64) -> Self {
        ClientOrderIds {
            next: AtomicU64::new(now_ms << 20),
        }
    }
    /// The next unique id (never 0).
    pub fn next(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed).max(1)
    }
}

/// A refused transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("order {client_order_id}: illegal transition {from:?} -> {to:?}")]
pub struct IllegalTransition {
    /// Order.
    pub client_order_id: u64,
    /// Current state.
    pub from: OrderState,
    /// Requested state.
    pub to: OrderState,
}

/// Whether `from → to` is a legal edge.
#[must_use]
pub fn legal(from: OrderState, to: OrderState) -> bool {
    use OrderState::*;
    matches!(
        (from, to),
        (Initialized, Submitted | Rejected)
            | (
                Submitted,
                Acked | Rejected | PartiallyFilled | Filled | Cancelled
            )
            | (Acked, PartiallyFilled | Filled | Cancelled | Expired)
            | (
                PartiallyFilled,
                Acked | PartiallyFilled | Filled | Cancelled | Expired
            )
            | (Filled, Acked | PartiallyFilled)
            | (Rejected, Acked | PartiallyFilled | Filled | Cancelled)
            | (Cancelled, Cancelled)
            | (Expired, Expired)
    )
}

/// One order's lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Order {
    /// Unique client order id.
    pub client_order_id: u64,
    /// Bus instrument id of the token.
    pub instrument: u32,
    /// Side.
    pub side: Side,
    /// Price, 1e-8.
    pub price_e8: i64,
    /// Size, 1e-8 shares (0 in paper mode).
    pub size_e8: i64,
    /// Cumulative fill, 1e-8 shares.
    pub filled_e8: i64,
    /// State.
    pub state: OrderState,
    /// First 16 bytes of the venue order hash.
    pub venue_order_id: [u8; 16],
    /// Paper order (size zero on the wire).
    pub paper: bool,
    /// REJECTED with [`LOCAL_CONN_LOST`]: the venue may have it (restorable by hash).
    pub unknown_outcome: bool,
}

impl Order {
    /// A new order in `INITIALIZED`, with its creation record.
    #[must_use]
    pub fn new(
        client_order_id: u64,
        instrument: u32,
        side: Side,
        price_e8: i64,
        size_e8: i64,
        paper: bool,
        now_ns: i64,
    ) -> (Self, Record) {
        let o = Order {
            client_order_id,
            instrument,
            side,
            price_e8,
            size_e8,
            filled_e8: 0,
            state: OrderState::Initialized,
            venue_order_id: [0; 16],
            paper,
            unknown_outcome: false,
        };
        let rec = o.record(OrderState::Initialized, 0, 0, now_ns);
        (o, rec)
    }

    /// Whether no further transition is possible.
    #[must_use]
    pub fn is_terminal(&self) -> bool {
        matches!(
            self.state,
            OrderState::Rejected | OrderState::Filled | OrderState::Cancelled | OrderState::Expired
        )
    }

    fn record(&self, from: OrderState, error_class: u16, http_status: u16, now_ns: i64) -> Record {
        let body = OrderTransition {
            client_order_id: self.client_order_id,
            price: self.price_e8,
            size: self.size_e8,
            filled: self.filled_e8,
            venue_order_id: self.venue_order_id,
            error_class,
            http_status,
            from_state: from as u8,
            to_state: self.state as u8,
            side: self.side as u8,
            paper: u8::from(self.paper),
            reserved: [0; 24],
        };
        let mut r = Record::new(Venue::Polymarket, STREAM_ORDERS, self.instrument, &body);
        r.recv_ts_ns = now_ns;
        r.exchange_ts_ns = 0;
        r
    }

    fn go(
        &mut self,
        to: OrderState,
        error_class: u16,
        http_status: u16,
        now_ns: i64,
    ) -> Result<Record, IllegalTransition> {
        if !legal(self.state, to) || (self.state == OrderState::Rejected && !self.unknown_outcome) {
            return Err(IllegalTransition {
                client_order_id: self.client_order_id,
                from: self.state,
                to,
            });
        }
        let from = self.state;
        self.state = to;
        if from == OrderState::Rejected {
            self.unknown_outcome = false;
        }
        if to == OrderState::Rejected {
            self.unknown_outcome = error_class == LOCAL_CONN_LOST;
        }
        Ok(self.record(from, error_class, http_status, now_ns))
    }

    /// Request bytes handed to the transport.
    pub fn submitted(&mut self, now_ns: i64) -> Result<Record, IllegalTransition> {
        self.go(OrderState::Submitted, 0, 0, now_ns)
    }

    /// Refused locally (risk, kill switch) before submission.
    pub fn rejected_locally(
        &mut self,
        class: u16,
        now_ns: i64,
    ) -> Result<Record, IllegalTransition> {
        self.go(OrderState::Rejected, class, 0, now_ns)
    }

    /// Applies the classified venue response.
    pub fn on_response(
        &mut self,
        http_status: u16,
        outcome: &Outcome,
        now_ns: i64,
    ) -> Result<Record, IllegalTransition> {
        match outcome {
            Outcome::Accepted { order_id, .. } => {
                let id = order_id.strip_prefix("0x").unwrap_or(order_id);
                let mut vid = [0u8; 16];
                if let Ok(b) = crate::hex::decode_vec(id, "orderID") {
                    let n = b.len().min(16);
                    vid[..n].copy_from_slice(&b[..n]);
                }
                // Only a SUBMITTED order is acked by its response (ACKED is also the target of
                // a revert, which a late response must not trigger).
                if self.state != OrderState::Submitted {
                    return Err(self.illegal(OrderState::Acked));
                }
                self.venue_order_id = vid;
                self.go(OrderState::Acked, 0, http_status, now_ns)
            }
            Outcome::Rejected { class, .. } => {
                self.go(OrderState::Rejected, *class as u16, http_status, now_ns)
            }
        }
    }

    /// A fill report with the new cumulative filled size (must grow).
    pub fn on_fill(
        &mut self,
        cumulative_filled_e8: i64,
        now_ns: i64,
    ) -> Result<Record, IllegalTransition> {
        if cumulative_filled_e8 <= self.filled_e8 {
            return Err(self.illegal(self.state));
        }
        self.set_filled(cumulative_filled_e8, now_ns)
    }

    fn illegal(&self, to: OrderState) -> IllegalTransition {
        IllegalTransition {
            client_order_id: self.client_order_id,
            from: self.state,
            to,
        }
    }

    /// The state a cumulative fill of `filled_e8` puts the order in.
    fn state_for_fill(&self, filled_e8: i64) -> OrderState {
        use OrderState::*;
        match self.state {
            Cancelled | Expired => self.state,
            _ if filled_e8 >= self.size_e8 && filled_e8 > 0 => Filled,
            _ if filled_e8 > 0 => PartiallyFilled,
            Submitted | Rejected => self.state,
            _ => Acked,
        }
    }

    /// The order's trades now add up to `cumulative_filled_e8` (up: a new fill; down: a FAILED
    /// trade reverted one). Refused when nothing changes or the edge is illegal.
    pub fn set_filled(
        &mut self,
        cumulative_filled_e8: i64,
        now_ns: i64,
    ) -> Result<Record, IllegalTransition> {
        let to = self.state_for_fill(cumulative_filled_e8);
        if cumulative_filled_e8 < 0 || cumulative_filled_e8 == self.filled_e8 {
            return Err(self.illegal(to));
        }
        let before = self.filled_e8;
        self.filled_e8 = cumulative_filled_e8;
        self.go(to, 0, 0, now_ns)
            .inspect_err(|_| self.filled_e8 = before)
    }

    /// Reconciliation: an order whose submit outcome was unknown (REJECTED with
    /// [`LOCAL_CONN_LOST`]) or still SUBMITTED is known to the venue; `to` is what the venue says
    /// (ACKED when resting, CANCELLED when gone). Fills follow through [`Order::set_filled`].
    pub fn restore(
        &mut self,
        to: OrderState,
        venue_order_id: [u8; 16],
        now_ns: i64,
    ) -> Result<Record, IllegalTransition> {
        if !matches!(self.state, OrderState::Rejected | OrderState::Submitted) {
            return Err(self.illegal(to));
        }
        let before = self.venue_order_id;
        self.venue_order_id = venue_order_id;
        self.go(to, 0, 0, now_ns)
            .inspect_err(|_| self.venue_order_id = before)
    }

    /// Cancel confirmed.
    pub fn cancelled(&mut self, now_ns: i64) -> Result<Record, IllegalTransition> {
        // CANCELLED ↺ is a fill correction only ([`Order::set_filled`]), not a second cancel.
        if self.state == OrderState::Cancelled {
            return Err(self.illegal(OrderState::Cancelled));
        }
        self.go(OrderState::Cancelled, 0, 0, now_ns)
    }

    /// Expired (GTD passed, or the window closed).
    pub fn expired(&mut self, now_ns: i64) -> Result<Record, IllegalTransition> {
        if self.state == OrderState::Expired {
            return Err(self.illegal(OrderState::Expired));
        }
        self.go(OrderState::Expired, 0, 0, now_ns)
    }

    /// Rebuilds an order from its transition records (first must be the `INITIALIZED` one),
    /// checking every edge is legal and chains from the previous state.
    pub fn replay(records: &[Record]) -> Result<Order, ReplayError> {
        let mut order: Option<Order> = None;
        for (i, r) in records.iter().enumerate() {
            let t: OrderTransition = r.body_as().ok_or(ReplayError::NotATransition(i))?;
            let to = OrderState::from_u8(t.to_state).ok_or(ReplayError::BadState(i))?;
            let from = OrderState::from_u8(t.from_state).ok_or(ReplayError::BadState(i))?;
            match &mut order {
                None => {
                    if to != OrderState::Initialized {
                        return Err(ReplayError::MissingInit);
                    }
                    order = Some(Order {
                        client_order_id: t.client_order_id,
                        instrument: r.instrument,
                        side: Side::from_u8(t.side).ok_or(ReplayError::BadState(i))?,
                        price_e8: t.price,
                        size_e8: t.size,
                        filled_e8: t.filled,
                        state: to,
                        venue_order_id: t.venue_order_id,
                        paper: t.paper != 0,
                        unknown_outcome: false,
                    });
                }
                Some(o) => {
                    if t.client_order_id != o.client_order_id
                        || from != o.state
                        || !legal(from, to)
                        || (from == OrderState::Rejected && !o.unknown_outcome)
                    {
                        return Err(ReplayError::Illegal(i));
                    }
                    o.unknown_outcome =
                        to == OrderState::Rejected && t.error_class == LOCAL_CONN_LOST;
                    o.state = to;
                    o.filled_e8 = t.filled;
                    o.venue_order_id = t.venue_order_id;
                }
            }
        }
        order.ok_or(ReplayError::MissingInit)
    }
}

/// Why a replay failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// Record `i` is not an `OrderTransition`.
    #[error("record {0} is not an order transition")]
    NotATransition(usize),
    /// Record `i` carries an unknown state or side.
    #[error("record {0} has an unknown state or side")]
    BadState(usize),
    /// The first record is not the creation.
    #[error("the lifecycle does not start with INITIALIZED")]
    MissingInit,
    /// Record `i` does not chain legally from the previous state.
    #[error("record {0} is an illegal transition")]
    Illegal(usize),
}

/// Error-class code for local refusals by the risk gate (outside the venue's classes).
pub const LOCAL_RISK_REJECT: u16 = 1000;
/// Error-class code for local refusals by the kill switch.
pub const LOCAL_KILL_SWITCH: u16 = 1001;
/// Error-class code: the connection died while the order was in flight. The venue may or may not
/// have it; it is **not** resent (reconciliation looks it up by its order hash).
pub const LOCAL_CONN_LOST: u16 = 1002;

impl From<ErrorClass> for u16 {
    fn from(c: ErrorClass) -> u16 {
        c as u16
    }
}
