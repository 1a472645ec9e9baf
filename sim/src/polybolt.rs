//! PolyBolt (`wss://ws-live-v2.polymarket.com/ws`), Polymarket's successor of the real-time
//! data socket: the `auth` / `subscribe` / `unsubscribe` / `ping` operations with their
//! acknowledgements (`authed`, `subscribed`, `unsubscribed`, `pong`, `error`, echoing `rid`),
//! channels `price.crypto` (`{"symbol":"btcusd"}`) and `price.crypto.twap`
//! (`{"symbol":"btcusd","window_seconds":60}`), both gated by CLOB API credentials, and data
//! envelopes `{"v":1,"channel","seq","ts","snapshot"?,"dropped"?,"payload"}` whose `seq` is
//! consecutive per connection and channel (snapshots included).
//!
//! Both channels come from the Chainlink observations the RTDS emulation publishes (the same
//! synthetic market): `price.crypto` is each observation as an exact 8-decimal string (the live
//! venue sources this channel from Pyth; here it agrees with Chainlink by construction), and the
//! TWAP is the 60-s time-weighted average of the Chainlink series, each report weighted by the
//! time it covers (Chainlink's TWAP-stream formula). Each new subscription gets an
//! acknowledgement and a snapshot of the preceding two minutes.
//!
//! Faults: a `gap` consumes sequence numbers without sending (the client sees `seq` skip), a
//! `dropped` fault discards frames without consuming numbers and reports their count in the
//! next frame's `dropped` field (the venue's slow-consumer signal); a wrong credential closes
//! the connection with 4001 as the venue documents.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::event::{Out, Topic, VenueEvent, VenueId};
use crate::hub::Hub;
use crate::rtds::RtdsState;
use crate::session::{Fault, OpenError};
use crate::util::fixed;
use crate::venue::{VenueSession, check_route};

/// Crypto reference-price channel.
pub const CHANNEL_PRICE: &str = "price.crypto";
/// 60-s Chainlink TWAP channel.
pub const CHANNEL_TWAP: &str = "price.crypto.twap";
/// The only symbol served.
pub const SYMBOL: &str = "btcusd";
/// The only TWAP window served, s.
pub const TWAP_WINDOW_S: i64 = 60;
/// Snapshot depth, ms (the preceding two minutes).
pub const SNAPSHOT_MS: i64 = 120_000;
/// Credentials the emulator accepts unless configured otherwise (emulated; no real account).
pub const EMULATED_API_KEY: &str = "00000000-0000-4000-8000-00000000e3u1";
/// See [`EMULATED_API_KEY`].
pub const EMULATED_SECRET: &str = "ZW11bGF0ZWQtcG9seWJvbHQtc2VjcmV0";
/// See [`EMULATED_API_KEY`].
pub const EMULATED_PASSPHRASE: &str = "emulated-polybolt-passphrase";

/// The collector's credentials file (`credentials_file` of a PolyBolt source) for the emulated
/// credentials.
#[must_use]
pub fn emulated_credentials_toml() -> String {
    format!(
        "# EMULATED credentials of the local PolyBolt emulator.\napi_key = \"{EMULATED_API_KEY}\"\nsecret = \"{EMULATED_SECRET}\"\npassphrase = \"{EMULATED_PASSPHRASE}\"\n"
    )
}

/// CLOB API credentials the emulator checks `auth` against.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// `apiKey` (`api_key` in a credentials file).
    #[serde(rename = "apiKey", alias = "api_key")]
    pub api_key: String,
    /// `secret`.
    pub secret: String,
    /// `passphrase`.
    pub passphrase: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").finish_non_exhaustive()
    }
}

impl Default for Credentials {
    fn default() -> Self {
        Self {
            api_key: EMULATED_API_KEY.into(),
            secret: EMULATED_SECRET.into(),
            passphrase: EMULATED_PASSPHRASE.into(),
        }
    }
}

/// Reads a credentials file (TOML `api_key`, `secret`, `passphrase`); `None` when it cannot be
/// read or parsed (callers name the file, never its contents).
pub fn load_credentials(path: &std::path::Path) -> Option<Credentials> {
    toml::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// One published point: observation time and value ×1e8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    /// Observation time, ms.
    pub ts_ms: i64,
    /// Value × 1e8.
    pub value_e8: i64,
}

impl Point {
    fn row(self) -> Value {
        json!({
            "timestamp": self.ts_ms,
            "value": self.value_e8 as f64 / 1e8,
            "full_accuracy_value": fixed(self.value_e8, 8),
        })
    }
}

/// PolyBolt venue state: the published price and TWAP series.
#[derive(Debug, Default)]
pub struct PolyBoltState {
    prices: VecDeque<Point>,
    twaps: VecDeque<Point>,
}

impl PolyBoltState {
    /// Empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Publishes every Chainlink observation RTDS published since the last step: one
    /// `price.crypto` and one `price.crypto.twap` event each.
    pub fn step(&mut self, tick: u64, rtds: &RtdsState) -> Vec<VenueEvent> {
        let mut events = Vec::new();
        let Some(latest) = rtds.latest() else {
            return events;
        };
        let mut ts = self.prices.back().map_or(latest.ts_ms, |p| p.ts_ms + 1000);
        while ts <= latest.ts_ms {
            if let Some(o) = rtds.at(ts).filter(|o| o.ts_ms == ts) {
                let value_e8 = i64::try_from(o.value_e18 / 10_000_000_000).unwrap_or(i64::MAX);
                let p = Point {
                    ts_ms: ts,
                    value_e8,
                };
                self.prices.push_back(p);
                let twap = Point {
                    ts_ms: ts,
                    value_e8: twap_e8(&self.prices, ts),
                };
                self.twaps.push_back(twap);
                let publish_ms = ts + 50;
                events.push(event(
                    tick,
                    CHANNEL_PRICE,
                    publish_ms,
                    price_payload(p, None),
                ));
                let w = Some(TWAP_WINDOW_S);
                events.push(event(
                    tick,
                    CHANNEL_TWAP,
                    publish_ms,
                    price_payload(twap, w),
                ));
            }
            ts += 1000;
        }
        let keep = |q: &mut VecDeque<Point>| {
            while q
                .front()
                .is_some_and(|p| p.ts_ms < latest.ts_ms - 2 * SNAPSHOT_MS)
            {
                q.pop_front();
            }
        };
        keep(&mut self.prices);
        keep(&mut self.twaps);
        events
    }

    /// The latest TWAP point.
    pub fn latest_twap(&self) -> Option<Point> {
        self.twaps.back().copied()
    }

    /// The snapshot payload of `channel`: the points of the preceding two minutes.
    fn snapshot_payload(&self, channel: &str, now_ms: i64) -> Value {
        let (q, window) = if channel == CHANNEL_TWAP {
            (&self.twaps, Some(TWAP_WINDOW_S))
        } else {
            (&self.prices, None)
        };
        let data: Vec<Value> = q
            .iter()
            .filter(|p| p.ts_ms > now_ms - SNAPSHOT_MS && p.ts_ms <= now_ms)
            .map(|p| p.row())
            .collect();
        let mut v = json!({"symbol": SYMBOL, "data": data});
        if let Some(w) = window {
            v["window_seconds"] = json!(w);
        }
        v
    }
}

/// The time-weighted average over `(end - 60 s, end]` of the series, each point's value holding
/// from the previous point's time to its own (the first point covers one second), divided by
/// the time covered (60 s once the series is long enough).
pub fn twap_e8(series: &VecDeque<Point>, end_ms: i64) -> i64 {
    let start = end_ms - TWAP_WINDOW_S * 1000;
    let (mut weighted, mut covered) = (0i128, 0i128);
    let mut prev: Option<i64> = None;
    for p in series.iter().filter(|p| p.ts_ms <= end_ms) {
        let from = prev.unwrap_or(p.ts_ms - 1000).max(start);
        prev = Some(p.ts_ms);
        if p.ts_ms <= from {
            continue;
        }
        let dur = i128::from(p.ts_ms - from);
        weighted += i128::from(p.value_e8) * dur;
        covered += dur;
    }
    if covered == 0 {
        return 0;
    }
    i64::try_from(weighted / covered).unwrap_or(i64::MAX)
}

fn price_payload(p: Point, window: Option<i64>) -> Value {
    let mut v = json!({
        "symbol": SYMBOL,
        "timestamp": p.ts_ms,
        "value": p.value_e8 as f64 / 1e8,
        "full_accuracy_value": fixed(p.value_e8, 8),
    });
    if let Some(w) = window {
        v["window_seconds"] = json!(w);
    }
    v
}

/// The envelope head of an event as broadcast: `seq` 0 (sequence numbers are per connection;
/// each session replaces this head with its own `seq` and `dropped`).
fn head(channel: &str) -> String {
    format!("{{\"v\":1,\"channel\":\"{channel}\",\"seq\":0,")
}

/// An event: a whole envelope with `seq` 0 (see [`head`]).
fn event(tick: u64, channel: &'static str, ts_ms: i64, payload: Value) -> VenueEvent {
    VenueEvent {
        venue: VenueId::PolyBolt,
        tick,
        topic: Topic::Stream(channel),
        sequenced: true,
        text: Arc::from(format!(
            "{}\"ts\":{ts_ms},\"payload\":{payload}}}",
            head(channel)
        )),
    }
}

#[derive(Deserialize)]
struct Request {
    op: String,
    #[serde(default)]
    rid: Option<String>,
    #[serde(default)]
    auth: Option<Credentials>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    filter: Option<Value>,
    #[serde(default)]
    subscriptions: Vec<SubReq>,
}

#[derive(Deserialize)]
struct SubReq {
    channel: String,
    #[serde(default)]
    filter: Option<Value>,
}

/// One channel's per-connection state.
#[derive(Debug, Clone, Copy)]
struct Chan {
    since_tick: u64,
    seq: u64,
    /// Frames still to discard for a `dropped` fault, and the count discarded so far.
    drop_pending: u32,
    dropped: u64,
}

/// A PolyBolt session.
#[derive(Debug, Default)]
pub struct PolyBoltSession {
    authed: bool,
    subs: BTreeMap<&'static str, Chan>,
}

/// An acknowledgement `{"op":…}` with its optional `code`, `channel` and echoed `rid`.
fn reply(op: &str, code: Option<&str>, channel: Option<&str>, rid: Option<&str>) -> Out {
    let mut v = json!({ "op": op });
    for (key, value) in [("code", code), ("channel", channel), ("rid", rid)] {
        if let Some(x) = value {
            v[key] = json!(x);
        }
    }
    Out::Text(v.to_string())
}

fn ack(op: &str, channel: Option<&str>, rid: Option<&str>) -> Out {
    reply(op, None, channel, rid)
}

fn error(code: &str, channel: Option<&str>, rid: Option<&str>) -> Out {
    reply("error", Some(code), channel, rid)
}

/// Checks a subscription's channel and filter; the static channel name or the error code.
fn resolve(channel: &str, filter: Option<&Value>) -> Result<&'static str, &'static str> {
    let ch = match channel {
        CHANNEL_PRICE => CHANNEL_PRICE,
        CHANNEL_TWAP => CHANNEL_TWAP,
        _ => return Err("unknown_channel"),
    };
    let f = filter.ok_or("invalid_filter")?;
    if f.get("symbol").and_then(Value::as_str) != Some(SYMBOL) {
        return Err("invalid_filter");
    }
    if ch == CHANNEL_TWAP && f.get("window_seconds").and_then(Value::as_i64) != Some(TWAP_WINDOW_S)
    {
        return Err("invalid_filter");
    }
    Ok(ch)
}

impl PolyBoltSession {
    /// Whether any channel is subscribed.
    pub fn has_subscription(&self) -> bool {
        !self.subs.is_empty()
    }

    /// Handle a client text frame; `auth` is checked against `expected`.
    pub fn on_text(
        &mut self,
        text: &str,
        expected: &Credentials,
        state: Option<&PolyBoltState>,
        tick: u64,
        now_ms: i64,
    ) -> Vec<Out> {
        let Ok(req) = serde_json::from_str::<Request>(text) else {
            return vec![error("bad_request", None, None)];
        };
        let rid = req.rid.as_deref();
        match req.op.as_str() {
            "ping" => vec![ack("pong", None, rid)],
            "auth" => match &req.auth {
                Some(c) if c == expected => {
                    self.authed = true;
                    vec![ack("authed", None, rid)]
                }
                Some(_) => vec![
                    error("auth_failed", None, rid),
                    Out::Close(4001, "authentication failed".into()),
                ],
                None => vec![error("bad_request", None, rid)],
            },
            op @ ("subscribe" | "unsubscribe") => {
                let mut wanted: Vec<(&str, Option<&Value>)> = req
                    .subscriptions
                    .iter()
                    .map(|s| (s.channel.as_str(), s.filter.as_ref()))
                    .collect();
                if let Some(c) = &req.channel {
                    wanted.push((c.as_str(), req.filter.as_ref()));
                }
                if wanted.is_empty() {
                    return vec![error("bad_request", None, rid)];
                }
                let mut out = Vec::new();
                for (channel, filter) in wanted {
                    out.extend(self.one(
                        op == "subscribe",
                        channel,
                        filter,
                        rid,
                        state,
                        tick,
                        now_ms,
                    ));
                }
                out
            }
            _ => vec![error("unknown_op", None, rid)],
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn one(
        &mut self,
        subscribe: bool,
        channel: &str,
        filter: Option<&Value>,
        rid: Option<&str>,
        state: Option<&PolyBoltState>,
        tick: u64,
        now_ms: i64,
    ) -> Vec<Out> {
        let ch = match resolve(channel, filter) {
            Ok(ch) => ch,
            Err(code) => return vec![error(code, Some(channel), rid)],
        };
        if !subscribe {
            self.subs.remove(ch);
            return vec![ack("unsubscribed", Some(ch), rid)];
        }
        if !self.authed {
            return vec![error("auth_required", Some(ch), rid)];
        }
        let mut out = vec![ack("subscribed", Some(ch), rid)];
        if self.subs.contains_key(ch) {
            return out;
        }
        let mut c = Chan {
            since_tick: tick,
            seq: 0,
            drop_pending: 0,
            dropped: 0,
        };
        if let Some(st) = state {
            c.seq = 1;
            let payload = st.snapshot_payload(ch, now_ms);
            out.push(Out::Text(format!(
                "{{\"v\":1,\"channel\":\"{ch}\",\"seq\":1,\"ts\":{now_ms},\"snapshot\":true,\"payload\":{payload}}}"
            )));
        }
        self.subs.insert(ch, c);
        out
    }

    /// Wrap a market event for this connection: the next `seq` of its channel and, after a
    /// `dropped` fault, the count of frames discarded since the last one delivered.
    pub fn on_event(&mut self, ev: &VenueEvent) -> Option<String> {
        match &ev.topic {
            Topic::Stream(ch) => {
                let c = self.subs.get_mut(ch)?;
                if ev.tick <= c.since_tick {
                    return None;
                }
                if c.drop_pending > 0 {
                    c.drop_pending -= 1;
                    c.dropped += 1;
                    return None;
                }
                c.seq += 1;
                let dropped = std::mem::take(&mut c.dropped);
                let extra = if dropped > 0 {
                    format!("\"dropped\":{dropped},")
                } else {
                    String::new()
                };
                let tail = ev.text.strip_prefix(head(ch).as_str())?;
                Some(format!(
                    "{{\"v\":1,\"channel\":\"{ch}\",\"seq\":{},{extra}{tail}",
                    c.seq
                ))
            }
            Topic::Replay => self.has_subscription().then(|| ev.text.to_string()),
            _ => None,
        }
    }

    /// Arms the `dropped` fault: every subscribed channel discards its next `count` frames.
    pub fn drop_frames(&mut self, count: u32) {
        for c in self.subs.values_mut() {
            c.drop_pending += count;
        }
    }
}

/// The registry's session factory (`/ws`).
pub fn open(path: &str, _conn_no: u64) -> Result<(Box<dyn VenueSession>, Vec<Out>), OpenError> {
    check_route(VenueId::PolyBolt, path, &["/ws", "/ws/"])?;
    Ok((Box::new(PolyBoltSession::default()), Vec::new()))
}

impl VenueSession for PolyBoltSession {
    fn on_text(&mut self, text: &str, hub: &Hub) -> Vec<Out> {
        let state = (!hub.is_replay(VenueId::PolyBolt)).then(|| hub.polybolt());
        let expected = hub.polybolt_credentials();
        PolyBoltSession::on_text(self, text, expected, state, hub.tick(), hub.now_ms())
    }

    fn on_event(&mut self, ev: &VenueEvent) -> Option<String> {
        PolyBoltSession::on_event(self, ev)
    }

    fn venue_fault(&mut self, fault: Fault) -> Vec<Out> {
        if let Fault::Dropped { count } = fault {
            self.drop_frames(count);
        }
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::Hub;
    use crate::market::MarketConfig;
    use crate::session::{Fault, Session};
    use ringbolt_bus::{IndexPrice, Record, Venue};
    use ringbolt_feeds::venues::polybolt::{Credentials as Creds, PolyBolt};
    use ringbolt_feeds::{FrameDriver, Outgoing, SyncMode, VenueAdapter};

    fn texts(out: Vec<Out>) -> Vec<String> {
        out.into_iter()
            .map(|o| match o {
                Out::Text(t) => t,
                Out::Close(c, r) => format!("close {c} {r}"),
            })
            .collect()
    }

    #[test]
    fn a_credentials_file_is_the_collectors_format() {
        let dir = std::env::temp_dir().join(format!("rb-pb-creds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(
            &path,
            "api_key = \"k\"\nsecret = \"s\"\npassphrase = \"p\"\n",
        )
        .unwrap();
        let c = load_credentials(&path).unwrap();
        assert_eq!((c.api_key.as_str(), c.secret.as_str()), ("k", "s"));
        assert_eq!(format!("{c:?}"), "Credentials { .. }");
        std::fs::write(&path, "api_key = \"k\"\n").unwrap();
        assert!(load_credentials(&path).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn twap_weights_each_report_by_the_time_it_covers() {
        let s: VecDeque<Point> = [(0, 100), (1000, 200), (3000, 400)]
            .map(|(ts_ms, value_e8)| Point { ts_ms, value_e8 })
            .into();
        // (100×1 s + 200×1 s + 400×2 s) / 4 s.
        assert_eq!(twap_e8(&s, 3000), 275);
        let long: VecDeque<Point> = (0..120)
            .map(|k| Point {
                ts_ms: k * 1000,
                value_e8: k,
            })
            .collect();
        // Window (59 s, 119 s]: values 60..=119, mean 89.5 → 89 (truncated).
        assert_eq!(twap_e8(&long, 119_000), 89);
    }

    fn hub() -> Hub {
        Hub::new(MarketConfig::default(), 1_790_000_000_000)
    }

    /// Sends `text` through `s`, feeding every reply to `d`; returns the replies.
    fn exchange(
        s: &mut Session,
        hub: &Hub,
        d: &mut FrameDriver,
        text: &str,
        recs: &mut Vec<Record>,
    ) -> Vec<String> {
        let out = texts(s.on_client_text(text, hub));
        for t in &out {
            if !t.starts_with("close") {
                let _ = d.frame(t.as_bytes(), 1, recs);
            }
        }
        out
    }

    #[test]
    fn the_adapter_authenticates_subscribes_and_parses_both_channels_live() {
        let mut hub = hub();
        let c = Credentials::default();
        let adapter = PolyBolt::with_credentials(
            SyncMode::Enforce,
            Creds::new(c.api_key.clone(), c.secret.clone(), c.passphrase.clone()),
        );
        let (mut s, _) = Session::open(VenueId::PolyBolt, "/ws", 1).unwrap();
        let mut d = FrameDriver::new(Venue::PolyBolt, SyncMode::Enforce, true).unwrap();
        let mut recs = Vec::new();
        for frame in adapter.subscribe(&["btcusd"]) {
            let Outgoing::Text(t) = frame else { panic!() };
            exchange(
                &mut s,
                &hub,
                &mut d,
                std::str::from_utf8(&t).unwrap(),
                &mut recs,
            );
        }
        // Two snapshots (the warm-up published about a minute of observations).
        let snap = recs.len();
        assert!(snap >= 2 * 55, "{snap}");
        for _ in 0..100 {
            for ev in hub.step() {
                if let Some(t) = s.on_event(&ev) {
                    d.frame(t.as_bytes(), 1, &mut recs).unwrap();
                }
            }
        }
        assert!(recs.len() >= snap + 2 * 9, "{}", recs.len());
        // The price rows are RTDS's Chainlink observations, the TWAP rows their 60-s TWAP.
        let last_price = recs.iter().rev().find(|r| r.stream == 1).unwrap();
        let obs = hub.rtds().latest().unwrap();
        let body: IndexPrice = last_price.body_as().unwrap();
        assert_eq!(last_price.exchange_ts_ns, obs.ts_ms * 1_000_000);
        assert_eq!(
            body.price,
            i64::try_from(obs.value_e18 / 10_000_000_000).unwrap()
        );
        let tb: IndexPrice = recs
            .iter()
            .rev()
            .find(|r| r.stream == 2)
            .unwrap()
            .body_as()
            .unwrap();
        assert_eq!(
            (tb.price_type, tb.price),
            (3, hub.polybolt().latest_twap().unwrap().value_e8)
        );
        let t = d.counters.total();
        assert_eq!((t.gaps, t.parse_errors, t.resyncs), (0, 0, 2));
    }

    #[test]
    fn auth_is_checked_and_faults_show_as_seq_gaps_and_dropped_counts() {
        let mut hub = hub();
        let (mut s, _) = Session::open(VenueId::PolyBolt, "/ws", 1).unwrap();
        let mut d = FrameDriver::new(Venue::PolyBolt, SyncMode::Enforce, true).unwrap();
        let mut recs = Vec::new();
        let sub = r#"{"op":"subscribe","rid":"s1","subscriptions":[{"channel":"price.crypto","filter":{"symbol":"btcusd"}}]}"#;
        assert_eq!(
            exchange(&mut s, &hub, &mut d, sub, &mut recs),
            [r#"{"channel":"price.crypto","code":"auth_required","op":"error","rid":"s1"}"#]
        );
        let bad = r#"{"op":"auth","rid":"a1","auth":{"apiKey":"k","secret":"s","passphrase":"p"}}"#;
        assert_eq!(
            exchange(&mut s, &hub, &mut d, bad, &mut recs),
            [
                r#"{"code":"auth_failed","op":"error","rid":"a1"}"#,
                "close 4001 authentication failed"
            ]
        );
        let good = json!({"op":"auth","rid":"a2","auth":Credentials::default()}).to_string();
        assert_eq!(
            exchange(&mut s, &hub, &mut d, &good, &mut recs),
            [r#"{"op":"authed","rid":"a2"}"#]
        );
        let twap30 = r#"{"op":"subscribe","channel":"price.crypto.twap","filter":{"symbol":"btcusd","window_seconds":30}}"#;
        assert!(exchange(&mut s, &hub, &mut d, twap30, &mut recs)[0].contains("invalid_filter"));
        let out = exchange(&mut s, &hub, &mut d, sub, &mut recs);
        assert_eq!(
            out[0],
            r#"{"channel":"price.crypto","op":"subscribed","rid":"s1"}"#
        );
        assert_eq!(out.len(), 2, "ack and snapshot");
        assert_eq!(
            exchange(&mut s, &hub, &mut d, sub, &mut recs).len(),
            1,
            "no second snapshot"
        );
        assert_eq!(
            d.counters.stream(0).parse_errors,
            3,
            "three error acknowledgements"
        );
        let snap = recs.len();
        // 12 s live: a gap of 2 after 2 s, a `dropped` fault of 3 after 6 s.
        let mut published = 0;
        for k in 0..120 {
            if k == 20 {
                s.inject(Fault::Gap { count: 2 });
            }
            if k == 60 {
                s.inject(Fault::Dropped { count: 3 });
            }
            for ev in hub.step() {
                published += usize::from(ev.topic == Topic::Stream(CHANNEL_PRICE));
                if let Some(t) = s.on_event(&ev) {
                    d.frame(t.as_bytes(), 1, &mut recs).unwrap();
                }
            }
        }
        let c = d.counters.stream(1);
        assert_eq!((c.gaps, c.gap_records), (2, 5), "{c:?}");
        let prices = recs
            .iter()
            .filter(|r| r.body_as::<IndexPrice>().is_some())
            .count();
        assert_eq!(
            prices,
            snap + published - 5,
            "two gap/resync status pairs besides"
        );
        assert_eq!(recs.len(), prices + 4);
        assert!(published >= 11, "{published}");
    }
}
