//! Wire-to-wire stamps for tick-to-order latency (the demo): the Polymarket market
//! emulator records when each market-data frame was written, keyed by `(asset_id, timestamp)`,
//! and the CLOB emulator records when each order request arrived. Both are bounded rings served
//! as JSON by the control endpoint `GET /wirelog[?since_ns=N]`.
//!
//! Clock: CLOCK_REALTIME nanoseconds (`SystemTime`), so a client on the same host can compare
//! its own CLOCK_REALTIME stamps; the difference `order.recv_ns − frame.write_ns` is the
//! loopback wire-to-wire time of a decision.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

use crate::clob::OrderSeen;

/// Default ring capacity (entries per ring).
pub const DEFAULT_CAPACITY: usize = 100_000;

/// CLOCK_REALTIME in ns.
pub fn realtime_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// One market-data frame written to one connection, per asset it carries.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FrameStamp {
    /// CLOCK_REALTIME ns just before the socket write.
    pub write_ns: i64,
    /// Emulator connection number.
    pub conn: u64,
    /// Asset (token id).
    pub asset_id: String,
    /// The event's `timestamp` field, ms (unique per asset for live events).
    pub timestamp_ms: i64,
    /// `event_type` of the event.
    pub event_type: String,
}

/// One order received by the CLOB emulator.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OrderStamp {
    /// CLOCK_REALTIME ns of the socket read that delivered the request (the wire arrival).
    pub recv_ns: i64,
    /// CLOCK_REALTIME ns when the request handler started (after TLS, HTTP/2 and the hand-off
    /// to the request's task).
    pub handler_ns: i64,
    /// Emulator connection number.
    pub conn: u64,
    /// `/order` or `/orders`.
    pub path: String,
    /// The order as the emulator saw it, and its answer.
    #[serde(flatten)]
    pub order: OrderSeen,
}

#[derive(Debug)]
struct Ring<T> {
    items: VecDeque<T>,
    dropped: u64,
}

/// The two bounded rings.
#[derive(Debug)]
pub struct WireLog {
    cap: usize,
    frames: Mutex<Ring<FrameStamp>>,
    orders: Mutex<Ring<OrderStamp>>,
}

fn push<T>(m: &Mutex<Ring<T>>, cap: usize, items: impl IntoIterator<Item = T>) {
    let mut r = m.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    for it in items {
        if r.items.len() >= cap {
            r.items.pop_front();
            r.dropped += 1;
        }
        r.items.push_back(it);
    }
}

impl WireLog {
    /// Rings of `cap` entries each.
    pub fn new(cap: usize) -> Self {
        WireLog {
            cap: cap.max(1),
            frames: Mutex::new(Ring {
                items: VecDeque::new(),
                dropped: 0,
            }),
            orders: Mutex::new(Ring {
                items: VecDeque::new(),
                dropped: 0,
            }),
        }
    }

    /// Records frame stamps.
    pub fn frames(&self, items: impl IntoIterator<Item = FrameStamp>) {
        push(&self.frames, self.cap, items);
    }

    /// Records order stamps.
    pub fn orders(&self, items: impl IntoIterator<Item = OrderStamp>) {
        push(&self.orders, self.cap, items);
    }

    /// The JSON served by `GET /wirelog`: entries with a stamp ≥ `since_ns`.
    pub fn to_json(&self, since_ns: i64) -> Value {
        let f = self
            .frames
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let o = self
            .orders
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let frames: Vec<&FrameStamp> = f.items.iter().filter(|x| x.write_ns >= since_ns).collect();
        let orders: Vec<&OrderStamp> = o.items.iter().filter(|x| x.recv_ns >= since_ns).collect();
        serde_json::json!({
            "clock": "CLOCK_REALTIME",
            "capacity": self.cap,
            "frames_dropped": f.dropped,
            "orders_dropped": o.dropped,
            "frames": frames,
            "orders": orders,
        })
    }
}

/// `(asset_id, timestamp_ms, event_type)` of every event in a Polymarket market-channel frame
/// (a single object or an array): `asset_id`, the `price_changes[].asset_id`s, or `assets_ids`.
pub fn poly_frame_keys(text: &str) -> Vec<(String, i64, String)> {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return Vec::new();
    };
    let items: Vec<&Value> = match &v {
        Value::Array(a) => a.iter().collect(),
        o @ Value::Object(_) => vec![o],
        _ => return Vec::new(),
    };
    let mut out = Vec::new();
    for it in items {
        let Some(ts) = it.get("timestamp").and_then(|t| {
            t.as_str()
                .and_then(|s| s.parse().ok())
                .or_else(|| t.as_i64())
        }) else {
            continue;
        };
        let kind = it
            .get("event_type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let mut assets: Vec<&str> = Vec::new();
        if let Some(a) = it.get("asset_id").and_then(Value::as_str) {
            assets.push(a);
        }
        for key in ["price_changes"] {
            if let Some(list) = it.get(key).and_then(Value::as_array) {
                for e in list {
                    if let Some(a) = e.get("asset_id").and_then(Value::as_str)
                        && !assets.contains(&a)
                    {
                        assets.push(a);
                    }
                }
            }
        }
        if let Some(list) = it.get("assets_ids").and_then(Value::as_array) {
            assets.extend(list.iter().filter_map(Value::as_str));
        }
        out.extend(
            assets
                .into_iter()
                .map(|a| (a.to_string(), ts, kind.clone())),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_keys_cover_every_event_shape() {
        let pc = r#"{"event_type":"price_change","market":"0x1","price_changes":[{"asset_id":"1"},{"asset_id":"2"},{"asset_id":"1"}],"timestamp":"17"}"#;
        assert_eq!(
            poly_frame_keys(pc),
            vec![
                ("1".into(), 17, "price_change".into()),
                ("2".into(), 17, "price_change".into())
            ]
        );
        let arr = r#"[{"event_type":"book","asset_id":"9","timestamp":"5"},{"event_type":"book","asset_id":"8","timestamp":"6"}]"#;
        assert_eq!(poly_frame_keys(arr).len(), 2);
        assert!(poly_frame_keys("PONG").is_empty());
        let log = WireLog::new(2);
        log.orders((0..3).map(|i| OrderStamp {
            recv_ns: i,
            handler_ns: i,
            conn: 0,
            path: "/order".into(),
            order: OrderSeen {
                salt: i.to_string(),
                token_id: "1".into(),
                side: "BUY".into(),
                price: None,
                outcome: "live".into(),
                order_hash: Some(format!("0x{i:064x}")),
            },
        }));
        let j = log.to_json(0);
        assert_eq!(j["orders"].as_array().map(Vec::len), Some(2));
        assert_eq!(j["orders_dropped"], 1);
        assert_eq!(log.to_json(2)["orders"].as_array().map(Vec::len), Some(1));
    }
}
