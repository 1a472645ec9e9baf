//! The CLOB emulator's user channel and account reads (sans-IO): the JSON of `order` and
//! `trade` events (field names and shapes of the corpus `ws_samples/user_order.jsonl` and
//! `user_trade.jsonl`), the `/data/orders`, `/data/order/<id>`, `/data/trades` objects with the
//! venue's cursor pagination, and the per-connection subscription state machine
//! ([`UserSession`]): `{"auth":{"apiKey","secret","passphrase"},"markets":[…],"type":"user"}`,
//! later `{"operation":"subscribe"|"unsubscribe","markets":[…]}`, text `PING` → `PONG`.

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::clob_engine::{Order, Party, Trade, UserEvent, dec6};
use crate::event::Out;

/// The `order` event of `o` (`kind`: PLACEMENT / UPDATE / CANCELLATION).
pub fn order_json(o: &Order, kind: &str, status: &str, now_ms: i64) -> Value {
    json!({
        "asset_id": o.asset_id,
        "associate_trades": if o.trades.is_empty() { Value::Null } else { json!(o.trades) },
        "created_at": (o.created_ms / 1000).to_string(),
        "event_type": "order",
        "expiration": o.expiration_s.to_string(),
        "id": o.id,
        "maker_address": o.maker_address,
        "market": o.market,
        "order_owner": o.owner,
        "order_type": o.order_type.as_str(),
        "original_size": dec6(o.original_micro),
        "outcome": o.outcome,
        "owner": o.owner,
        "price": dec6(o.price_e6),
        "side": o.side.as_str(),
        "size_matched": dec6(o.matched_micro),
        "status": status,
        "timestamp": now_ms.to_string(),
        "type": kind,
    })
}

/// The `trade` event of `t` as `recipient` sees it (`trader_side` TAKER / MAKER).
pub fn trade_json(t: &Trade, recipient: &Party, trader_side: &str, now_ms: i64) -> Value {
    let taker_fee = if trader_side == "TAKER" && t.fee_micro > 0 {
        "1000"
    } else {
        "0"
    };
    json!({
        "asset_id": t.asset_id,
        "bucket_index": 0,
        "event_type": "trade",
        "fee_rate_bps": taker_fee,
        "id": t.id,
        "last_update": (t.last_update_ms / 1000).to_string(),
        "maker_address": recipient.address,
        "maker_orders": [{
            "asset_id": t.asset_id,
            "fee_rate_bps": "0",
            "maker_address": t.maker.address,
            "matched_amount": dec6(t.size_micro),
            "order_id": t.maker.order_id,
            "outcome": t.outcome,
            "owner": t.maker.owner,
            "price": dec6(t.price_e6),
            "side": t.side.opposite().as_str(),
        }],
        "market": t.market,
        "match_time": (t.match_ms / 1000).to_string(),
        "outcome": t.outcome,
        "owner": recipient.owner,
        "price": dec6(t.price_e6),
        "side": t.side.as_str(),
        "size": dec6(t.size_micro),
        "status": t.status.as_str(),
        "taker_order_id": t.taker.order_id,
        "timestamp": now_ms.to_string(),
        "trade_owner": recipient.owner,
        "trader_side": trader_side,
        "transaction_hash": t.transaction_hash,
        "type": "TRADE",
    })
}

/// `GET /data/order/<id>` / one `GET /data/orders` item.
pub fn open_order_json(o: &Order) -> Value {
    json!({
        "id": o.id,
        "status": o.status.as_str(),
        "owner": o.owner,
        "maker_address": o.maker_address,
        "market": o.market,
        "asset_id": o.asset_id,
        "side": o.side.as_str(),
        "original_size": dec6(o.original_micro),
        "size_matched": dec6(o.matched_micro),
        "price": dec6(o.price_e6),
        "outcome": o.outcome,
        "expiration": o.expiration_s.to_string(),
        "order_type": o.order_type.as_str(),
        "associate_trades": o.trades,
        "created_at": o.created_ms / 1000,
    })
}

/// One `GET /data/trades` item as `api_key` sees it.
pub fn rest_trade_json(t: &Trade, api_key: &str) -> Value {
    let (party, side) = if t.taker.api_key.as_deref() == Some(api_key) {
        (&t.taker, "TAKER")
    } else {
        (&t.maker, "MAKER")
    };
    let mut v = trade_json(t, party, side, t.last_update_ms);
    if let Some(m) = v.as_object_mut() {
        for k in ["event_type", "type", "timestamp", "trade_owner"] {
            m.remove(k);
        }
    }
    v
}

/// Page size of the `/data/*` lists.
pub const PAGE_LIMIT: usize = 100;
/// The cursor that means "no more pages" (base64 of `-1`).
pub const END_CURSOR: &str = "LTE=";

/// One page of `items` from the `next_cursor` query value (base64 of the offset; empty or
/// `MA==` is the start): `{"limit","count","next_cursor","data"}`.
pub fn page(items: &[Value], cursor: Option<&str>) -> Value {
    let offset = cursor
        .filter(|c| !c.is_empty() && *c != END_CURSOR)
        .and_then(|c| STANDARD.decode(c).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(0);
    let end = (offset + PAGE_LIMIT).min(items.len());
    let data = items.get(offset.min(items.len())..end).unwrap_or(&[]);
    let next = if end < items.len() {
        STANDARD.encode(end.to_string())
    } else {
        END_CURSOR.to_string()
    };
    json!({"limit": PAGE_LIMIT, "count": data.len(), "next_cursor": next, "data": data})
}

/// Why a client frame was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserSkip {
    /// Not JSON, or not an object this channel knows.
    BadFrame = 0,
    /// An `operation` before the authenticated subscription.
    NotSubscribed = 1,
}

/// One user-channel connection.
#[derive(Debug, Default)]
pub struct UserSession {
    api_key: Option<String>,
    markets: BTreeSet<String>,
    /// Client frames skipped, counted by reason (index: [`UserSkip`] as `usize`).
    pub skipped: [u64; 2],
}

/// Text of the close reason when authentication fails (unverified: the venue's exact reaction
/// to bad credentials is not in the corpus).
pub const AUTH_FAILED: &str = "Unauthorized/Invalid api key";

impl UserSession {
    fn skip(&mut self, why: UserSkip) {
        self.skipped[why as usize] += 1;
    }

    /// The API key this session is authenticated as.
    pub fn api_key(&self) -> Option<&str> {
        self.api_key.as_deref()
    }

    /// One client text frame. `auth(api_key, secret, passphrase)` checks credentials.
    pub fn on_text(&mut self, text: &str, auth: &dyn Fn(&str, &str, &str) -> bool) -> Vec<Out> {
        if text == "PING" {
            return vec![Out::Text("PONG".into())];
        }
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            self.skip(UserSkip::BadFrame);
            return Vec::new();
        };
        let markets: Vec<String> = v
            .get("markets")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if let Some(a) = v.get("auth") {
            let f = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or("");
            if !auth(f("apiKey"), f("secret"), f("passphrase")) {
                return vec![Out::Close(1008, AUTH_FAILED.into())];
            }
            self.api_key = Some(f("apiKey").to_string());
            self.markets = markets.into_iter().collect();
            return Vec::new();
        }
        match (v.get("operation").and_then(Value::as_str), &self.api_key) {
            (Some(_), None) => self.skip(UserSkip::NotSubscribed),
            (Some("subscribe"), Some(_)) => self.markets.extend(markets),
            (Some("unsubscribe"), Some(_)) => {
                for m in markets {
                    self.markets.remove(&m);
                }
            }
            _ => self.skip(UserSkip::BadFrame),
        }
        Vec::new()
    }

    /// The text to forward for `ev`, if it is this session's (its key; its markets, or all when
    /// it named none).
    pub fn on_event<'a>(&self, ev: &'a UserEvent) -> Option<&'a str> {
        let mine = self.api_key.as_deref() == Some(ev.api_key.as_str());
        let market_ok = self.markets.is_empty() || self.markets.contains(&ev.market);
        (mine && market_ok).then_some(ev.text.as_str())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ev(key: &str, market: &str) -> UserEvent {
        UserEvent {
            api_key: key.into(),
            market: market.into(),
            text: format!("{key}/{market}"),
        }
    }

    #[test]
    fn subscription_auth_markets_and_ping() {
        let auth = |k: &str, s: &str, p: &str| (k, s, p) == ("k", "s", "p");
        let mut u = UserSession::default();
        assert_eq!(u.on_text("PING", &auth), vec![Out::Text("PONG".into())]);
        assert!(
            u.on_text(r#"{"operation":"subscribe","markets":["m"]}"#, &auth)
                .is_empty()
        );
        assert_eq!(u.skipped, [0, 1]);
        assert_eq!(u.on_event(&ev("k", "m")), None);
        let bad =
            r#"{"auth":{"apiKey":"k","secret":"x","passphrase":"p"},"markets":[],"type":"user"}"#;
        assert!(matches!(u.on_text(bad, &auth)[..], [Out::Close(1008, _)]));
        let good = r#"{"auth":{"apiKey":"k","secret":"s","passphrase":"p"},"markets":["m1"],"type":"user"}"#;
        assert!(u.on_text(good, &auth).is_empty());
        assert_eq!(u.on_event(&ev("k", "m1")), Some("k/m1"));
        assert_eq!(u.on_event(&ev("k", "m2")), None);
        assert_eq!(u.on_event(&ev("other", "m1")), None);
        u.on_text(r#"{"operation":"subscribe","markets":["m2"]}"#, &auth);
        assert_eq!(u.on_event(&ev("k", "m2")), Some("k/m2"));
        u.on_text("not json", &auth);
        assert_eq!(u.skipped, [1, 1]);
    }

    #[test]
    fn pages_follow_the_cursor_to_the_end() {
        let items: Vec<Value> = (0..250).map(|i| json!(i)).collect();
        let mut cursor = "MA==".to_string();
        let mut seen = Vec::new();
        loop {
            let p = page(&items, Some(&cursor));
            seen.extend(p["data"].as_array().unwrap().iter().cloned());
            cursor = p["next_cursor"].as_str().unwrap().to_string();
            if cursor == END_CURSOR {
                break;
            }
        }
        assert_eq!(seen, items);
    }
}
