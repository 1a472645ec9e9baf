//! The sans-IO half of the order client: which request tag carries which orders, and how a
//! response (or a lost connection) moves each order's lifecycle. No sockets, no clocks: the
//! driver passes `now_ns` and the response bytes in, and gets bus records out through a
//! [`TransitionSink`].

use std::collections::HashMap;

use rustc_hash::FxBuildHasher;

use ringbolt_bus::{OrderState, Record};

use crate::classify::{Outcome, classify, classify_one};
use crate::lifecycle::Order;

pub use crate::lifecycle::LOCAL_CONN_LOST;
/// Error-class code: the paper-mode guard found a non-zero order body; nothing was sent.
pub const LOCAL_PAPER_GUARD: u16 = 1003;
/// Error-class code: the request could not be handed to the connection (closed, no stream);
/// nothing was sent.
pub const LOCAL_NOT_SENT: u16 = 1004;

/// Receives every lifecycle transition record (publish them on the bus).
pub trait TransitionSink {
    /// One transition.
    fn transition(&mut self, rec: &Record);
}

impl TransitionSink for Vec<Record> {
    fn transition(&mut self, rec: &Record) {
        self.push(*rec);
    }
}

/// Adapts a closure into a [`TransitionSink`].
#[derive(Debug)]
pub struct FnSink<F>(pub F);

impl<F: FnMut(&Record)> TransitionSink for FnSink<F> {
    fn transition(&mut self, rec: &Record) {
        (self.0)(rec);
    }
}

/// What an in-flight request tag is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// `POST /order` for one client order id.
    Order(u64),
    /// `POST /orders` for these client order ids, in body order.
    Batch(Vec<u64>),
    /// `DELETE /order(s)` or `DELETE /cancel-all`.
    Cancel,
    /// Heartbeat.
    Heartbeat,
    /// Anything else (the raw response is handed back to the caller).
    Other,
}

/// What a finished request meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finished {
    /// Order outcomes, one per client order id.
    Orders(Vec<(u64, Outcome)>),
    /// Orders the venue confirmed cancelled (client order ids; unknown venue ids are counted).
    Cancelled {
        /// Our orders now CANCELLED.
        ours: Vec<u64>,
        /// Venue ids cancelled that we do not track.
        foreign: usize,
        /// `not_canceled` entries.
        not_canceled: usize,
    },
    /// Heartbeat answered with this status.
    Heartbeat(u16),
    /// A raw response (status, body) for [`Pending::Other`].
    Raw(u16, Vec<u8>),
    /// The request failed at the transport (no response): orders in it were marked lost.
    Lost(Vec<u64>),
}

/// The client's maps: keyed by our own ids and order hashes, so a fast non-keyed hash (Fx)
/// instead of SipHash — `track` inserts into three of them on every order's hot path. Venue
/// input only looks keys up, it never chooses what is inserted.
type Map<K, V> = HashMap<K, V, FxBuildHasher>;

/// Orders and in-flight requests.
#[derive(Debug, Default)]
pub struct ClientCore {
    orders: Map<u64, Order>,
    by_venue: Map<[u8; 16], u64>,
    pending: Map<u64, Pending>,
    digests: Map<u64, [u8; 32]>,
}

pub(crate) fn venue_key(order_id: &str) -> Option<[u8; 16]> {
    let h = order_id.strip_prefix("0x").unwrap_or(order_id);
    let b = crate::hex::decode_vec(h.get(..32)?, "orderID").ok()?;
    b.try_into().ok()
}

impl ClientCore {
    /// Empty, with room for `capacity` orders.
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        ClientCore {
            orders: Map::with_capacity_and_hasher(capacity, FxBuildHasher),
            by_venue: Map::with_capacity_and_hasher(capacity, FxBuildHasher),
            pending: Map::with_capacity_and_hasher(64, FxBuildHasher),
            digests: Map::with_capacity_and_hasher(capacity, FxBuildHasher),
        }
    }

    /// Tracks a new order (already INITIALIZED, its record published) with the order hash that
    /// will be its venue id.
    pub fn track(&mut self, order: Order, digest: [u8; 32]) {
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        self.by_venue.insert(key, order.client_order_id);
        self.digests.insert(order.client_order_id, digest);
        self.orders.insert(order.client_order_id, order);
    }

    /// The order, if tracked.
    #[must_use]
    pub fn order(&self, client_order_id: u64) -> Option<&Order> {
        self.orders.get(&client_order_id)
    }

    /// The order hash (venue id) of a tracked order.
    #[must_use]
    pub fn digest(&self, client_order_id: u64) -> Option<[u8; 32]> {
        self.digests.get(&client_order_id).copied()
    }

    /// The client order id of the order with this hash (`0x…`), if tracked.
    #[must_use]
    pub fn coid_by_hash(&self, order_hash: &str) -> Option<u64> {
        self.by_venue.get(&venue_key(order_hash)?).copied()
    }

    /// The order with this hash (`0x…`), if tracked.
    pub fn order_by_hash_mut(&mut self, order_hash: &str) -> Option<&mut Order> {
        let coid = self.coid_by_hash(order_hash)?;
        self.orders.get_mut(&coid)
    }

    /// Every tracked order (for reconciliation), unordered.
    pub fn orders(&self) -> impl Iterator<Item = &Order> {
        self.orders.values()
    }

    /// Mutable access for the driver (SUBMITTED / local rejections).
    pub fn order_mut(&mut self, client_order_id: u64) -> Option<&mut Order> {
        self.orders.get_mut(&client_order_id)
    }

    /// Records that request `tag` is in flight.
    pub fn sent(&mut self, tag: u64, what: Pending) {
        self.pending.insert(tag, what);
    }

    /// Forgets request `tag` (its response was handled elsewhere).
    pub fn forget(&mut self, tag: u64) {
        self.pending.remove(&tag);
    }

    /// Requests in flight.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Forgets terminal orders without fills (call now and then to bound memory). Orders with
    /// fills are kept: a trade of theirs may still FAIL and revert its fill.
    pub fn prune_terminal(&mut self) -> usize {
        let before = self.orders.len();
        let dead: Vec<u64> = self
            .orders
            .iter()
            .filter(|(_, o)| o.is_terminal() && o.filled_e8 == 0 && !o.unknown_outcome)
            .map(|(k, _)| *k)
            .collect();
        for k in dead {
            if let Some(o) = self.orders.remove(&k) {
                self.by_venue.remove(&o.venue_order_id);
            }
            self.digests.remove(&k);
        }
        before - self.orders.len()
    }

    /// Applies a response to request `tag`. Returns what it meant and how many orders reached a
    /// terminal state (so the risk gate can release them).
    pub fn on_response(
        &mut self,
        tag: u64,
        http_status: u16,
        body: &[u8],
        now_ns: i64,
        sink: &mut dyn TransitionSink,
    ) -> (Finished, u32) {
        let Some(what) = self.pending.remove(&tag) else {
            return (Finished::Raw(http_status, body.to_vec()), 0);
        };
        match what {
            Pending::Order(coid) => {
                let outcome = classify_one(http_status, body);
                let closed = self.apply(coid, http_status, &outcome, now_ns, sink);
                (Finished::Orders(vec![(coid, outcome)]), closed)
            }
            Pending::Batch(coids) => {
                let mut outcomes = classify(http_status, body);
                if outcomes.len() == 1 && coids.len() > 1 {
                    // A request-level error (401, 429, 503...) applies to every order.
                    let o = outcomes[0].clone();
                    outcomes = vec![o; coids.len()];
                }
                let mut closed = 0;
                let mut out = Vec::with_capacity(coids.len());
                for (i, coid) in coids.into_iter().enumerate() {
                    let outcome = outcomes
                        .get(i)
                        .cloned()
                        .unwrap_or_else(|| Outcome::Rejected {
                            class: crate::classify::ErrorClass::Unknown,
                            http_status,
                            message: "batch response shorter than the batch".into(),
                        });
                    closed += self.apply(coid, http_status, &outcome, now_ns, sink);
                    out.push((coid, outcome));
                }
                (Finished::Orders(out), closed)
            }
            Pending::Cancel => self.on_cancel(http_status, body, now_ns, sink),
            Pending::Heartbeat => (Finished::Heartbeat(http_status), 0),
            Pending::Other => (Finished::Raw(http_status, body.to_vec()), 0),
        }
    }

    /// The request `tag` got no response (connection lost, reset, timeout). Orders in it go to
    /// REJECTED with [`LOCAL_CONN_LOST`]; they are never resent. Returns the lost client order ids.
    pub fn on_lost(
        &mut self,
        tag: u64,
        now_ns: i64,
        sink: &mut dyn TransitionSink,
    ) -> (Finished, u32) {
        let coids = match self.pending.remove(&tag) {
            Some(Pending::Order(c)) => vec![c],
            Some(Pending::Batch(c)) => c,
            Some(_) | None => Vec::new(),
        };
        let mut closed = 0;
        for c in &coids {
            if let Some(o) = self.orders.get_mut(c)
                && o.state == OrderState::Submitted
                && let Ok(r) = o.rejected_locally(LOCAL_CONN_LOST, now_ns)
            {
                sink.transition(&r);
                closed += 1;
            }
        }
        (Finished::Lost(coids), closed)
    }

    fn apply(
        &mut self,
        coid: u64,
        http_status: u16,
        outcome: &Outcome,
        now_ns: i64,
        sink: &mut dyn TransitionSink,
    ) -> u32 {
        let Some(o) = self.orders.get_mut(&coid) else {
            return 0;
        };
        let Ok(r) = o.on_response(http_status, outcome, now_ns) else {
            return 0;
        };
        sink.transition(&r);
        if o.state == OrderState::Acked {
            self.by_venue.insert(o.venue_order_id, coid);
            // `status: matched` is not a fill: fills come from the user channel's trades
            // (provisional until CONFIRMED), never assumed from the response.
            0
        } else {
            u32::from(o.is_terminal())
        }
    }

    fn on_cancel(
        &mut self,
        http_status: u16,
        body: &[u8],
        now_ns: i64,
        sink: &mut dyn TransitionSink,
    ) -> (Finished, u32) {
        let v: serde_json::Value = match serde_json::from_slice(body) {
            Ok(v) if http_status < 300 => v,
            _ => return (Finished::Raw(http_status, body.to_vec()), 0),
        };
        let mut ours = Vec::new();
        let mut foreign = 0;
        if let Some(list) = v.get("canceled").and_then(serde_json::Value::as_array) {
            for id in list.iter().filter_map(serde_json::Value::as_str) {
                let coid = venue_key(id).and_then(|k| self.by_venue.get(&k).copied());
                match coid.and_then(|c| self.orders.get_mut(&c).map(|o| (c, o))) {
                    Some((c, o)) => {
                        if let Ok(r) = o.cancelled(now_ns) {
                            sink.transition(&r);
                            ours.push(c);
                        }
                    }
                    None => foreign += 1,
                }
            }
        }
        let not_canceled = v
            .get("not_canceled")
            .and_then(serde_json::Value::as_object)
            .map_or(0, serde_json::Map::len);
        let closed = ours.len() as u32;
        (
            Finished::Cancelled {
                ours,
                foreign,
                not_canceled,
            },
            closed,
        )
    }
}
