//! Polymarket real-time data socket (RTDS): Chainlink BTC/USD on topic
//! `crypto_prices_chainlink` (with the exact `full_accuracy_value`, an integer scaled 1e18) and
//! the Binance relay on topic `crypto_prices` (`btcusdt`), the `subscribe` backfill frame, the
//! `{"action":"subscribe","subscriptions":[...]}` handshake and text `PING` keep-alive.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::event::{Out, Topic, VenueEvent, VenueId};
use crate::market::BtcWalk;
use crate::util::{fixed, normal};

/// Chainlink topic.
pub const TOPIC_CHAINLINK: &str = "crypto_prices_chainlink";
/// Binance relay topic.
pub const TOPIC_BINANCE: &str = "crypto_prices";
/// The exact filter the live server honours for Chainlink (no spaces).
pub const FILTER_CHAINLINK: &str = r#"{"symbol":"btc/usd"}"#;
/// The exact filter for the Binance relay.
pub const FILTER_BINANCE: &str = r#"{"symbol":"btcusdt"}"#;
const BACKFILL_ROWS: usize = 60;

/// One Chainlink observation: whole-second timestamp and the 1e18-scaled answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    /// Observation time, ms (a whole second).
    pub ts_ms: i64,
    /// Answer scaled by 1e18.
    pub value_e18: i128,
}

impl Observation {
    /// The answer as f64 USD (what RTDS puts in `value`).
    pub fn value(&self) -> f64 {
        self.value_e18 as f64 / 1e18
    }
}

#[derive(Serialize)]
struct ChainlinkPayload<'a> {
    full_accuracy_value: String,
    symbol: &'a str,
    timestamp: i64,
    value: f64,
}

#[derive(Serialize)]
struct Frame<'a, P: Serialize> {
    payload: P,
    timestamp: i64,
    topic: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
}

#[derive(Serialize)]
struct Row {
    timestamp: i64,
    value: f64,
}

#[derive(Serialize)]
struct Backfill<'a> {
    data: Vec<Row>,
    symbol: &'a str,
}

/// RTDS venue state.
#[derive(Debug)]
pub struct RtdsState {
    next_obs_s: Option<i64>,
    chainlink: VecDeque<Observation>,
    binance: VecDeque<(i64, i64)>,
}

impl Default for RtdsState {
    fn default() -> Self {
        Self::new()
    }
}

impl RtdsState {
    /// Empty state.
    pub fn new() -> Self {
        Self {
            next_obs_s: None,
            chainlink: VecDeque::new(),
            binance: VecDeque::new(),
        }
    }

    /// The Chainlink answer for observation second `ts_ms` derived from the true walk.
    pub fn observe(walk: &BtcWalk, ts_ms: i64, noise_bp: f64, rng: &mut ChaCha8Rng) -> Observation {
        let px = walk.price_at(ts_ms) * (1.0 + noise_bp * 1e-4 * 0.3 * normal(rng));
        let e8 = (px * 1e8).round() as i128;
        Observation {
            ts_ms,
            value_e18: e8 * 10_000_000_000 + rng.random_range(0..10_000_000_000i128),
        }
    }

    /// Latest published Chainlink observation.
    pub fn latest(&self) -> Option<Observation> {
        self.chainlink.back().copied()
    }

    /// The published observation for second `ts_ms` (or the latest earlier one).
    pub fn at(&self, ts_ms: i64) -> Option<Observation> {
        self.chainlink
            .iter()
            .rev()
            .find(|o| o.ts_ms <= ts_ms)
            .copied()
    }

    /// One market step: publishes every observation whose publication time has come.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
        t_ms: i64,
        tick: u64,
        walk: &BtcWalk,
        binance_px_cents: i64,
        publish_lag_ms: i64,
        noise_bp: f64,
        rng: &mut ChaCha8Rng,
    ) -> Vec<VenueEvent> {
        let mut events = Vec::new();
        let next = self
            .next_obs_s
            .get_or_insert((t_ms - publish_lag_ms).div_euclid(1000));
        while *next * 1000 + publish_lag_ms <= t_ms {
            let obs_ms = *next * 1000;
            *next += 1;
            let obs = Self::observe(walk, obs_ms, noise_bp, rng);
            self.chainlink.push_back(obs);
            if self.chainlink.len() > BACKFILL_ROWS * 20 {
                self.chainlink.pop_front();
            }
            let sent_ms = obs_ms + publish_lag_ms + rng.random_range(0..120);
            let frame = Frame {
                payload: ChainlinkPayload {
                    full_accuracy_value: obs.value_e18.to_string(),
                    symbol: "btc/usd",
                    timestamp: obs_ms,
                    value: obs.value(),
                },
                timestamp: sent_ms,
                topic: TOPIC_CHAINLINK,
                kind: "update",
            };
            events.push(event(tick, TOPIC_CHAINLINK, &frame));
            if binance_px_cents > 0 {
                self.binance.push_back((obs_ms, binance_px_cents));
                if self.binance.len() > BACKFILL_ROWS {
                    self.binance.pop_front();
                }
                let frame = Frame {
                    payload: ChainlinkPayload {
                        full_accuracy_value: fixed(binance_px_cents * 1_000_000, 8),
                        symbol: "btcusdt",
                        timestamp: obs_ms,
                        value: binance_px_cents as f64 / 100.0,
                    },
                    timestamp: obs_ms + 150 + rng.random_range(0..50),
                    topic: TOPIC_BINANCE,
                    kind: "update",
                };
                events.push(event(tick, TOPIC_BINANCE, &frame));
            }
        }
        events
    }

    /// The backfill frame sent after every subscribe (note the live server labels it with
    /// topic `crypto_prices` and type `subscribe` for both topics).
    pub fn backfill(&self, topic: &str, now_ms: i64) -> String {
        let (data, symbol): (Vec<Row>, &str) = if topic == TOPIC_CHAINLINK {
            let skip = self.chainlink.len().saturating_sub(BACKFILL_ROWS);
            (
                self.chainlink
                    .iter()
                    .skip(skip)
                    .map(|o| Row {
                        timestamp: o.ts_ms,
                        value: o.value(),
                    })
                    .collect(),
                "btc/usd",
            )
        } else {
            (
                self.binance
                    .iter()
                    .map(|(t, c)| Row {
                        timestamp: *t,
                        value: *c as f64 / 100.0,
                    })
                    .collect(),
                "btcusdt",
            )
        };
        serde_json::to_string(&Frame {
            payload: Backfill { data, symbol },
            timestamp: now_ms,
            topic: TOPIC_BINANCE,
            kind: "subscribe",
        })
        .unwrap_or_default()
    }
}

fn event<T: Serialize>(tick: u64, topic: &'static str, frame: &T) -> VenueEvent {
    VenueEvent {
        venue: VenueId::ChainlinkRtds,
        tick,
        topic: Topic::Rtds(topic),
        sequenced: true,
        text: Arc::from(serde_json::to_string(frame).unwrap_or_default()),
    }
}

#[derive(Deserialize)]
struct Request {
    action: String,
    #[serde(default)]
    subscriptions: Vec<Sub>,
}

#[derive(Deserialize)]
struct Sub {
    topic: String,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    filters: Option<String>,
}

/// What a subscription receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Backfill then updates.
    Live { since_tick: u64 },
    /// The observed quirk: a filter that is the right JSON but not the exact no-space text gets
    /// only the backfill, then nothing.
    BackfillOnly,
}

/// An RTDS session.
#[derive(Debug)]
pub struct RtdsSession {
    connection_id: String,
    subs: BTreeMap<&'static str, Mode>,
}

impl RtdsSession {
    /// New session with its `connection_id`; the first output is the empty text frame the live
    /// server sends right after connect.
    pub fn open(connection_id: String) -> (Self, Vec<Out>) {
        (
            Self {
                connection_id,
                subs: BTreeMap::new(),
            },
            vec![Out::Text(String::new())],
        )
    }

    /// Whether any topic is subscribed.
    pub fn has_subscription(&self) -> bool {
        !self.subs.is_empty()
    }

    /// Handle a client text frame.
    pub fn on_text(
        &mut self,
        text: &str,
        state: Option<&RtdsState>,
        tick: u64,
        now_ms: i64,
    ) -> Vec<Out> {
        if text == "PING" {
            return vec![Out::Text("PONG".into())];
        }
        if text == "ping" {
            return vec![Out::Text("pong".into())];
        }
        let Ok(req) = serde_json::from_str::<Request>(text) else {
            return vec![not_found("invalid message", "invalid")];
        };
        let subscribe = match req.action.as_str() {
            "subscribe" => true,
            "unsubscribe" => false,
            _ => return vec![not_found(&req.action, "action")],
        };
        // One unknown topic kills the whole batch.
        let mut resolved = Vec::new();
        for s in &req.subscriptions {
            let kind = s.kind.as_deref().unwrap_or("*");
            let topic = match s.topic.as_str() {
                TOPIC_CHAINLINK if kind == "*" || kind == "update" => TOPIC_CHAINLINK,
                TOPIC_BINANCE if kind == "*" || kind == "update" => TOPIC_BINANCE,
                _ => return vec![not_found(&s.topic, kind)],
            };
            resolved.push((topic, s.filters.as_deref()));
        }
        let mut out = Vec::new();
        for (topic, filters) in resolved {
            if !subscribe {
                self.subs.remove(topic);
                continue;
            }
            let exact = if topic == TOPIC_CHAINLINK {
                FILTER_CHAINLINK
            } else {
                FILTER_BINANCE
            };
            let symbol = if topic == TOPIC_CHAINLINK {
                "btc/usd"
            } else {
                "btcusdt"
            };
            let mode = match filters {
                None | Some("") => Some(Mode::Live { since_tick: tick }),
                Some(f) if f == exact => Some(Mode::Live { since_tick: tick }),
                Some(f) => {
                    let same_symbol = serde_json::from_str::<serde_json::Value>(f)
                        .ok()
                        .and_then(|v| {
                            v.get("symbol")
                                .and_then(|s| s.as_str())
                                .map(|s| s == symbol)
                        })
                        .unwrap_or(false);
                    same_symbol.then_some(Mode::BackfillOnly)
                }
            };
            if let Some(mode) = mode {
                self.subs.insert(topic, mode);
                if let Some(st) = state {
                    out.push(Out::Text(st.backfill(topic, now_ms)));
                }
            }
        }
        out
    }

    /// Filter a market event and add this connection's `connection_id`.
    pub fn on_event(&self, ev: &VenueEvent) -> Option<String> {
        match &ev.topic {
            Topic::Rtds(topic) => match self.subs.get(topic) {
                Some(Mode::Live { since_tick }) if ev.tick > *since_tick => {
                    let rest = ev.text.strip_prefix('{')?;
                    Some(format!(
                        r#"{{"connection_id":"{}",{rest}"#,
                        self.connection_id
                    ))
                }
                _ => None,
            },
            Topic::Replay => self.has_subscription().then(|| ev.text.to_string()),
            _ => None,
        }
    }
}

fn not_found(topic: &str, kind: &str) -> Out {
    let msg = format!(
        "leger GetTopics error: rpc error: code = NotFound desc = topic: {topic} and type: {kind} not found, status: rpc error: code = NotFound desc = topic: {topic} and type: {kind} not found, message: topic: {topic} and type: {kind} not found"
    );
    Out::Text(
        serde_json::to_string(&serde_json::json!({"body": {"message": msg}, "statusCode": 401}))
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_topic_gets_the_live_error_body() {
        let (mut s, first) = RtdsSession::open("abc".into());
        assert_eq!(first, vec![Out::Text(String::new())]);
        let out = s.on_text(
            r#"{"action":"subscribe","subscriptions":[{"topic":"definitely_not_a_topic","type":"update"}]}"#,
            None,
            0,
            0,
        );
        assert_eq!(
            out,
            vec![Out::Text(
                r#"{"body":{"message":"leger GetTopics error: rpc error: code = NotFound desc = topic: definitely_not_a_topic and type: update not found, status: rpc error: code = NotFound desc = topic: definitely_not_a_topic and type: update not found, message: topic: definitely_not_a_topic and type: update not found"},"statusCode":401}"#
                    .into()
            )]
        );
        assert!(!s.has_subscription());
        assert_eq!(
            s.on_text("PING", None, 0, 0),
            vec![Out::Text("PONG".into())]
        );
    }
}
