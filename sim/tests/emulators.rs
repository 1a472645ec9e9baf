//! End-to-end tests: real TLS WebSocket / HTTPS clients on loopback against the emulator.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

/// The subscribe frames of the corpus (`shared/corpus/venues/*/subscribe.json`, requests[0]).
const BINANCE_SUBSCRIBE: &str = r#"{"method":"SUBSCRIBE","params":["btcusdt@trade","btcusdt@aggTrade","btcusdt@bookTicker","btcusdt@depth@100ms"],"id":1}"#;
const COINBASE_SUBSCRIBE: &str = r#"{"type":"subscribe","product_ids":["BTC-USD"],"channels":["ticker","matches","heartbeat","level2_batch"]}"#;
const RTDS_SUBSCRIBE: &str = r#"{"action":"subscribe","subscriptions":[{"topic":"crypto_prices_chainlink","type":"*","filters":"{\"symbol\":\"btc/usd\"}"}]}"#;
const RTDS_SUBSCRIBE_BINANCE: &str = r#"{"action":"subscribe","subscriptions":[{"topic":"crypto_prices","type":"update","filters":"{\"symbol\":\"btcusdt\"}"}]}"#;

/// An emulator started for a client test: (tag, seed; the venue, SNI host and path the client
/// connects to). Window length 300 s.
type Client = (&'static str, u64, &'static str, &'static str, &'static str);
const BINANCE_CLIENT: Client = (
    "binance",
    11,
    "binance_spot",
    "stream.binance.com",
    "/stream",
);
const COINBASE_CLIENT: Client = (
    "coinbase",
    12,
    "coinbase",
    "ws-feed.exchange.coinbase.com",
    "/",
);
const RTDS_CLIENT: Client = (
    "rtds",
    13,
    "chainlink_rtds",
    "ws-live-data.polymarket.com",
    "/",
);

/// Starts the emulator of `client` and connects its WebSocket client; with the corpus samples.
async fn start_client(
    (tag, seed, venue, sni, path): Client,
) -> (ringbolt_sim::Emulator, Ws, BTreeMap<String, Value>) {
    let emu = start(tag, 300, seed).await;
    let ws = connect(&emu.info, venue, sni, path).await;
    (emu, ws, samples())
}

/// Asserts `id` follows `prev` (when there is one), then makes it the new `prev`.
#[track_caller]
fn contiguous(prev: &mut Option<u64>, id: u64, what: &str) {
    if let Some(p) = *prev {
        assert_eq!(id, p + 1, "{what} contiguous");
    }
    *prev = Some(id);
}

/// Frames received until `dur` elapses, plus the number of server pings seen.
async fn collect(ws: &mut Ws, dur: Duration) -> (Vec<String>, usize) {
    let deadline = tokio::time::Instant::now() + dur;
    let mut out = Vec::new();
    let mut pings = 0;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return (out, pings),
            Ok(Some(Ok(Message::Text(t)))) => out.push(t.to_string()),
            Ok(Some(Ok(Message::Ping(_)))) => pings += 1,
            Ok(Some(Ok(_))) => {}
            Ok(other) => panic!("connection ended: {other:?}"),
        }
    }
}

fn dec(v: &Value) -> f64 {
    v.as_str()
        .unwrap_or_else(|| panic!("expected decimal string, got {v}"))
        .parse()
        .unwrap()
}

/// Local order book keyed by the decimal text (exact, no floats).
#[derive(Default)]
struct Book {
    bids: BTreeMap<i64, String>,
    asks: BTreeMap<i64, String>,
}

fn cents(s: &str) -> i64 {
    let (i, f) = s.split_once('.').unwrap_or((s, ""));
    let f2: String = f.chars().chain("00".chars()).take(2).collect();
    i.parse::<i64>().unwrap() * 100 + f2.parse::<i64>().unwrap()
}

fn is_zero(q: &str) -> bool {
    q.chars().all(|c| c == '0' || c == '.')
}

/// A book level (price in cents, size text), owned.
fn owned((price, size): (&i64, &String)) -> (i64, String) {
    (*price, size.clone())
}

impl Book {
    fn apply(&mut self, bid: bool, px: &str, qty: &str) {
        let side = if bid { &mut self.bids } else { &mut self.asks };
        if is_zero(qty) {
            side.remove(&cents(px));
        } else {
            side.insert(cents(px), qty.to_string());
        }
    }
    fn best_bid(&self) -> (i64, String) {
        self.bids.iter().next_back().map(owned).unwrap()
    }
    fn best_ask(&self) -> (i64, String) {
        self.asks.iter().next().map(owned).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_handshake_diff_stream_and_rest_snapshot_agree() {
    let (emu, mut ws, samples) = start_client(BINANCE_CLIENT).await;
    let info = &emu.info;
    send(&mut ws, BINANCE_SUBSCRIBE).await;
    let ack = next_text(&mut ws, 5).await;
    assert_eq!(ack, r#"{"result":null,"id":1}"#);
    // Buffer, then fetch the snapshot, per the documented procedure.
    let (mut frames, mut pings) = collect(&mut ws, Duration::from_millis(600)).await;
    let (status, body) = https_get(
        info,
        "binance_spot",
        "api.binance.com",
        "/api/v3/depth?symbol=BTCUSDT&limit=1000",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let snap: Value = serde_json::from_str(&body).unwrap();
    assert_shape(&samples, "binance.snapshot", &snap);
    let (more, p2) = collect(&mut ws, Duration::from_millis(2_400)).await;
    frames.extend(more);
    pings += p2;
    assert!(
        pings >= 2,
        "expected server pings every 700 ms, saw {pings}"
    );

    let last_update_id = snap["lastUpdateId"].as_u64().unwrap();
    let mut book = Book::default();
    for l in snap["bids"].as_array().unwrap() {
        book.apply(true, l[0].as_str().unwrap(), l[1].as_str().unwrap());
    }
    for l in snap["asks"].as_array().unwrap() {
        book.apply(false, l[0].as_str().unwrap(), l[1].as_str().unwrap());
    }
    let (mut prev_u, mut applied_u, mut first_applied) = (None::<u64>, None::<u64>, true);
    let (mut prev_t, mut prev_a) = (None::<u64>, None::<u64>);
    let mut trades_since_agg: Vec<u64> = Vec::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut ticker_checks = 0;
    for f in &frames {
        let v: Value = serde_json::from_str(f).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        let want: Vec<&String> = samples["binance.combined"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(keys, want, "combined wrapper");
        let stream = v["stream"].as_str().unwrap().to_string();
        let d = &v["data"];
        *counts.entry(stream.clone()).or_default() += 1;
        match stream.as_str() {
            "btcusdt@depth@100ms" => {
                assert_shape(&samples, "binance.depthUpdate", d);
                let (u_first, u) = (d["U"].as_u64().unwrap(), d["u"].as_u64().unwrap());
                if let Some(p) = prev_u {
                    assert_eq!(u_first, p + 1, "depth ids must be contiguous");
                }
                prev_u = Some(u);
                if u <= last_update_id {
                    continue;
                }
                if first_applied {
                    assert!(
                        u_first <= last_update_id + 1 && last_update_id < u,
                        "first event must straddle the snapshot"
                    );
                    first_applied = false;
                }
                for (key, bid) in [("b", true), ("a", false)] {
                    for l in d[key].as_array().unwrap() {
                        book.apply(bid, l[0].as_str().unwrap(), l[1].as_str().unwrap());
                    }
                }
                applied_u = Some(u);
            }
            "btcusdt@bookTicker" => {
                assert_shape(&samples, "binance.bookTicker", d);
                if applied_u == d["u"].as_u64() {
                    let (bp, bq) = book.best_bid();
                    let (ap, aq) = book.best_ask();
                    assert_eq!(
                        (bp, bq.as_str()),
                        (cents(d["b"].as_str().unwrap()), d["B"].as_str().unwrap())
                    );
                    assert_eq!(
                        (ap, aq.as_str()),
                        (cents(d["a"].as_str().unwrap()), d["A"].as_str().unwrap())
                    );
                    assert!(bp < ap);
                    ticker_checks += 1;
                }
            }
            "btcusdt@trade" => {
                assert_shape(&samples, "binance.trade", d);
                let t = d["t"].as_u64().unwrap();
                contiguous(&mut prev_t, t, "trade ids");
                trades_since_agg.push(t);
                assert!(dec(&d["p"]) > 1000.0 && dec(&d["q"]) > 0.0);
            }
            "btcusdt@aggTrade" => {
                assert_shape(&samples, "binance.aggTrade", d);
                let a = d["a"].as_u64().unwrap();
                contiguous(&mut prev_a, a, "agg ids");
                let (f, l) = (d["f"].as_u64().unwrap(), d["l"].as_u64().unwrap());
                if trades_since_agg.first().is_some_and(|t| *t == f) {
                    assert_eq!(trades_since_agg.last().copied(), Some(l));
                }
                trades_since_agg.clear();
            }
            other => panic!("unexpected stream {other}"),
        }
    }
    assert!(!first_applied, "no depth event after the snapshot");
    assert!(
        ticker_checks >= 3,
        "bookTicker vs rebuilt book compared only {ticker_checks} times"
    );
    for s in [
        "btcusdt@depth@100ms",
        "btcusdt@bookTicker",
        "btcusdt@trade",
        "btcusdt@aggTrade",
    ] {
        assert!(
            counts.get(s).copied().unwrap_or(0) > 0,
            "no {s} frames: {counts:?}"
        );
    }

    // Control requests.
    send(&mut ws, r#"{"method":"LIST_SUBSCRIPTIONS","id":3}"#).await;
    let (frames, _) = collect(&mut ws, Duration::from_millis(300)).await;
    let list: Value = frames
        .iter()
        .map(|f| serde_json::from_str::<Value>(f).unwrap())
        .find(|v| v.get("id") == Some(&Value::from(3)))
        .unwrap();
    assert_shape(&samples, "binance.list", &list);
    assert_eq!(list["result"].as_array().unwrap().len(), 4);
    send(&mut ws, r#"{"params":["btcusdt@trade"],"id":4}"#).await;
    send(&mut ws, r#"{"method":"UNSUBSCRIBE","params":["btcusdt@depth@100ms","btcusdt@trade","btcusdt@aggTrade","btcusdt@bookTicker"],"id":5}"#).await;
    let (frames, _) = collect(&mut ws, Duration::from_millis(800)).await;
    let pos = frames
        .iter()
        .position(|f| f.starts_with(r#"{"code":2,"msg":"Invalid request: missing field `method`"#))
        .expect("error reply");
    let ack = frames
        .iter()
        .position(|f| f == r#"{"result":null,"id":5}"#)
        .expect("unsubscribe ack");
    assert!(pos < ack);
    assert!(
        frames[ack + 1..].is_empty(),
        "data after unsubscribe: {:?}",
        &frames[ack + 1..]
    );
    assert_shape(
        &samples,
        "binance.ack",
        &serde_json::from_str(&frames[ack]).unwrap(),
    );

    // REST errors and the raw endpoint.
    let (status, body) = https_get(
        info,
        "binance_spot",
        "api.binance.com",
        "/api/v3/depth?symbol=NOPE",
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (400, r#"{"code":-1121,"msg":"Invalid symbol."}"#)
    );
    let mut raw = connect(
        info,
        "binance_spot",
        "stream.binance.com",
        "/ws/btcusdt@depth@100ms",
    )
    .await;
    let v = next_json(&mut raw, 5).await;
    assert_shape(&samples, "binance.depthUpdate", &v);
    let (status, stats) = control(info, "GET", "/stats").await;
    assert_eq!(status, 200);
    let stats: Value = serde_json::from_str(&stats).unwrap();
    assert!(
        stats["venues"]["binance_spot"]["pongs_received"]
            .as_u64()
            .unwrap()
            >= 2,
        "{stats}"
    );
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coinbase_subscriptions_snapshot_and_sequences() {
    let (emu, mut ws, samples) = start_client(COINBASE_CLIENT).await;
    // WebSocket-level keep-alive: a client ping frame is answered with a pong echoing it.
    futures_util::SinkExt::send(&mut ws, Message::Ping(b"hb-1".to_vec().into()))
        .await
        .unwrap();
    match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
        Ok(Some(Ok(Message::Pong(p)))) => assert_eq!(&p[..], b"hb-1"),
        other => panic!("expected pong, got {other:?}"),
    }
    send(
        &mut ws,
        r#"{"type":"subscribe","product_ids":["BTC-USD"],"channels":["level2"]}"#,
    )
    .await;
    let err = next_json(&mut ws, 5).await;
    assert_shape(&samples, "coinbase.error", &err);
    assert_eq!(
        err["reason"],
        "level2, level3, and full channels now require authentication."
    );
    send(&mut ws, COINBASE_SUBSCRIBE).await;
    let subs = next_json(&mut ws, 5).await;
    assert_shape(&samples, "coinbase.subscriptions", &subs);
    assert_eq!(subs["channels"].as_array().unwrap().len(), 4);
    let snap = next_json(&mut ws, 5).await;
    assert_shape(&samples, "coinbase.snapshot", &snap);
    let mut book = Book::default();
    for l in snap["bids"].as_array().unwrap() {
        book.apply(true, l[0].as_str().unwrap(), l[1].as_str().unwrap());
    }
    for l in snap["asks"].as_array().unwrap() {
        book.apply(false, l[0].as_str().unwrap(), l[1].as_str().unwrap());
    }
    let last_match = next_json(&mut ws, 5).await;
    assert_shape(&samples, "coinbase.last_match", &last_match);
    assert_eq!(last_match["type"], "last_match");
    let mut prev_trade = last_match["trade_id"].as_u64().unwrap();
    let mut prev_seq = last_match["sequence"].as_u64().unwrap();
    // The latest ticker is sent on subscribe (it describes the last trade, not this instant).
    let first_ticker = next_json(&mut ws, 5).await;
    assert_shape(&samples, "coinbase.ticker", &first_ticker);
    assert_eq!(first_ticker["trade_id"], last_match["trade_id"]);
    assert_eq!(first_ticker["sequence"], last_match["sequence"]);
    let (frames, _) = collect(&mut ws, Duration::from_secs(3)).await;
    let mut pending_ticker: Option<Value> = None;
    let mut last_match_seq = BTreeMap::new();
    let (mut matches, mut heartbeats, mut tickers, mut book_checks) = (0, 0, 0, 0);
    for f in &frames {
        let v: Value = serde_json::from_str(f).unwrap();
        match v["type"].as_str().unwrap() {
            "ticker" => {
                assert_shape(&samples, "coinbase.ticker", &v);
                let seq = v["sequence"].as_u64().unwrap();
                let tid = v["trade_id"].as_u64().unwrap();
                if let Some(s) = last_match_seq.get(&tid) {
                    assert_eq!(*s, seq, "ticker and match of one trade share the sequence");
                }
                assert!(seq >= prev_seq);
                prev_seq = seq;
                tickers += 1;
                pending_ticker = Some(v);
            }
            "match" => {
                assert_shape(&samples, "coinbase.match", &v);
                let tid = v["trade_id"].as_u64().unwrap();
                assert_eq!(tid, prev_trade + 1, "trade_id contiguous after last_match");
                prev_trade = tid;
                let seq = v["sequence"].as_u64().unwrap();
                assert!(seq > prev_seq, "sequence increases");
                prev_seq = seq;
                last_match_seq.insert(tid, seq);
                matches += 1;
            }
            "heartbeat" => {
                assert_shape(&samples, "coinbase.heartbeat", &v);
                assert_eq!(v["last_trade_id"].as_u64().unwrap(), prev_trade);
                let seq = v["sequence"].as_u64().unwrap();
                assert!(seq >= prev_seq);
                prev_seq = seq;
                heartbeats += 1;
            }
            "l2update" => {
                assert_shape(&samples, "coinbase.l2update", &v);
                for c in v["changes"].as_array().unwrap() {
                    book.apply(
                        c[0] == "buy",
                        c[1].as_str().unwrap(),
                        c[2].as_str().unwrap(),
                    );
                }
                if let Some(t) = pending_ticker.take() {
                    assert_eq!(book.best_bid().0, cents(t["best_bid"].as_str().unwrap()));
                    assert_eq!(book.best_ask().0, cents(t["best_ask"].as_str().unwrap()));
                    assert_eq!(book.best_bid().1, t["best_bid_size"].as_str().unwrap());
                    book_checks += 1;
                }
                assert!(book.best_bid().0 < book.best_ask().0);
            }
            other => panic!("unexpected {other}: {v}"),
        }
    }
    assert!(
        matches >= 2 && tickers >= 2 && book_checks >= 2,
        "matches {matches} tickers {tickers} checks {book_checks}"
    );
    assert!(
        (2..=4).contains(&heartbeats),
        "heartbeats {heartbeats} in 3 s"
    );
    send(&mut ws, r#"{"type":"unsubscribe","product_ids":["BTC-USD"],"channels":["ticker","matches","heartbeat","level2_batch"]}"#).await;
    let (frames, _) = collect(&mut ws, Duration::from_millis(600)).await;
    let pos = frames
        .iter()
        .position(|f| f.starts_with(r#"{"type":"subscriptions","channels":[]"#))
        .expect("empty subscriptions");
    assert!(frames[pos + 1..].is_empty());
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtds_chainlink_backfill_updates_and_keepalive() {
    let (emu, mut ws, samples) = start_client(RTDS_CLIENT).await;
    let info = &emu.info;
    assert_eq!(
        next_text(&mut ws, 5).await,
        "",
        "the live server sends one empty frame at connect"
    );
    send(&mut ws, RTDS_SUBSCRIBE).await;
    let backfill = next_json(&mut ws, 5).await;
    assert_shape(&samples, "rtds.chainlink_backfill", &backfill);
    assert_eq!(
        (backfill["topic"].as_str(), backfill["type"].as_str()),
        (Some("crypto_prices"), Some("subscribe"))
    );
    assert!(backfill["payload"]["data"].as_array().unwrap().len() >= 50);
    send(&mut ws, "PING").await;
    let mut got_pong = false;
    let mut prev_ts = None::<i64>;
    let mut updates = 0;
    let deadline = Instant::now() + Duration::from_millis(3_500);
    while Instant::now() < deadline {
        let t = next_text(&mut ws, 3).await;
        if t == "PONG" {
            got_pong = true;
            continue;
        }
        let v: Value = serde_json::from_str(&t).unwrap();
        assert_shape(&samples, "rtds.chainlink_update", &v);
        let p = &v["payload"];
        let fav: i128 = p["full_accuracy_value"].as_str().unwrap().parse().unwrap();
        let value = p["value"].as_f64().unwrap();
        assert!(
            (fav as f64 / 1e18 - value).abs() < 1e-6 * value,
            "value is full_accuracy_value / 1e18"
        );
        assert!(fav > 10_i128.pow(21), "scaled 1e18");
        let ts = p["timestamp"].as_i64().unwrap();
        assert_eq!(ts % 1000, 0);
        if let Some(prev) = prev_ts {
            assert_eq!(ts, prev + 1000, "one observation per second, no gaps");
        }
        prev_ts = Some(ts);
        assert!(
            v["timestamp"].as_i64().unwrap() > ts,
            "published after the observation"
        );
        updates += 1;
    }
    assert!(
        got_pong && updates >= 2,
        "pong {got_pong} updates {updates}"
    );

    // Binance relay topic; unknown topic error; the no-exact-filter quirk.
    let mut b = connect(info, "chainlink_rtds", "ws-live-data.polymarket.com", "/").await;
    assert_eq!(next_text(&mut b, 5).await, "");
    send(&mut b, RTDS_SUBSCRIBE_BINANCE).await;
    assert_shape(
        &samples,
        "rtds.binance_backfill",
        &next_json(&mut b, 5).await,
    );
    assert_shape(&samples, "rtds.binance_update", &next_json(&mut b, 3).await);
    send(&mut b, r#"{"action":"subscribe","subscriptions":[{"topic":"definitely_not_a_topic","type":"update"}]}"#).await;
    let (frames, _) = collect(&mut b, Duration::from_millis(300)).await;
    let err = frames
        .iter()
        .find(|f| f.starts_with(r#"{"body""#))
        .expect("error body");
    assert_shape(&samples, "rtds.error", &serde_json::from_str(err).unwrap());

    let mut q = connect(info, "chainlink_rtds", "ws-live-data.polymarket.com", "/").await;
    assert_eq!(next_text(&mut q, 5).await, "");
    send(&mut q, r#"{"action":"subscribe","subscriptions":[{"topic":"crypto_prices_chainlink","type":"*","filters":"{\"symbol\": \"btc/usd\"}"}]}"#).await;
    let (frames, _) = collect(&mut q, Duration::from_millis(2_200)).await;
    assert_eq!(
        frames.len(),
        1,
        "spaced filter: backfill only, then nothing"
    );
    emu.shutdown().await;
}

fn window_start(len_s: i64) -> i64 {
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    now_s / len_s * len_s
}

/// `GET target` on the emulated Gamma API: (status, body).
async fn gamma_get(info: &ringbolt_sim::StartInfo, target: &str) -> (u16, String) {
    https_get(info, "polymarket", "gamma-api.polymarket.com", target).await
}

/// `GET target` on the emulated Gamma API, which must answer 200 with JSON.
async fn gamma_json(info: &ringbolt_sim::StartInfo, target: &str) -> Value {
    let (status, body) = gamma_get(info, target).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

async fn gamma_tokens(info: &ringbolt_sim::StartInfo, start: i64) -> (Value, [String; 2]) {
    let slug = format!("btc-updown-5m-{start}");
    let arr = gamma_json(info, &format!("/markets?slug={slug}")).await;
    let m = arr
        .as_array()
        .unwrap()
        .first()
        .unwrap_or_else(|| panic!("{slug} not discoverable"))
        .clone();
    assert_eq!(m["slug"], slug.as_str());
    let outcomes: Vec<String> = serde_json::from_str(m["outcomes"].as_str().unwrap()).unwrap();
    assert_eq!(outcomes, ["Up", "Down"]);
    let ids: Vec<String> = serde_json::from_str(m["clobTokenIds"].as_str().unwrap()).unwrap();
    assert_eq!(ids.len(), 2);
    (m, [ids[0].clone(), ids[1].clone()])
}

fn check_book(samples: &BTreeMap<String, Value>, b: &Value) -> (f64, f64) {
    assert_shape(samples, "polymarket.book", b);
    let prices = |side: &str| -> Vec<f64> {
        let levels = b[side].as_array().unwrap();
        levels.iter().map(|l| dec(&l["price"])).collect()
    };
    let (bids, asks) = (prices("bids"), prices("asks"));
    assert!(
        bids.windows(2).all(|w| w[0] < w[1]),
        "bids ascending (live order)"
    );
    assert!(
        asks.windows(2).all(|w| w[0] > w[1]),
        "asks descending (live order)"
    );
    // A side may be empty near the extremes (a trade can lift the only level), as on the venue.
    let (bb, ba) = (
        bids.last().copied().unwrap_or(0.0),
        asks.last().copied().unwrap_or(1.0),
    );
    assert!(bb < ba && bb >= 0.0 && ba <= 1.0);
    (bb, ba)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polymarket_discovery_books_events_and_rollover() {
    let samples = samples();
    let len = 8;
    let emu = start("polymarket", len, 14).await;
    let info = &emu.info;
    let template: Value = serde_json::from_str(include_str!(
        "../fixtures/corpus/gamma_market_btc_updown_5m_1773307200.json"
    ))
    .unwrap();
    let mut start_s = window_start(len);
    // Stay clear of a rollover during the handshake.
    if window_start(len) + len
        - (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64)
        < 3
    {
        tokio::time::sleep(Duration::from_secs(3)).await;
        start_s = window_start(len);
    }
    let (market, tokens) = gamma_tokens(info, start_s).await;
    same_shape(&market, &template, "gamma").unwrap();
    assert!(market["question"].as_str().unwrap().contains("EMULATED"));
    let events = gamma_json(info, &format!("/events?slug=btc-updown-5m-{start_s}")).await;
    assert_eq!(
        events[0]["markets"][0]["clobTokenIds"],
        market["clobTokenIds"]
    );
    let (_, body) = gamma_get(info, "/markets?slug=btc-updown-5m-1").await;
    assert_eq!(body, "[]");

    let mut ws = market_channel(info, &[&tokens[0], &tokens[1]]).await;
    let books = next_json(&mut ws, 5).await;
    let books = books
        .as_array()
        .expect("initial frame is a JSON array of book events");
    assert_eq!(books.len(), 2);
    let (ub, ua) = check_book(&samples, &books[0]);
    let (db, da) = check_book(&samples, &books[1]);
    assert!(
        (ub + da - 1.0).abs() < 1e-9 && (ua + db - 1.0).abs() < 1e-9,
        "complementary books"
    );
    send(&mut ws, "PING").await;

    // Run through the rollover.
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut pong = false;
    let mut resolved = false;
    let rollover_at = (start_s + len) * 1000;
    let deadline = Instant::now() + Duration::from_secs(len as u64 + 4);
    while Instant::now() < deadline && !(resolved && seen.contains_key("new_market")) {
        let t = next_text(&mut ws, 5).await;
        if t == "PONG" {
            pong = true;
            continue;
        }
        let v: Value = serde_json::from_str(&t).unwrap();
        let et = v["event_type"].as_str().unwrap().to_string();
        match et.as_str() {
            "price_change" => {
                assert_shape(&samples, "polymarket.price_change", &v);
                for e in v["price_changes"].as_array().unwrap() {
                    assert!(
                        e["asset_id"] == tokens[0].as_str() || e["asset_id"] == tokens[1].as_str()
                    );
                }
            }
            "book" => {
                check_book(&samples, &v);
            }
            "last_trade_price" | "best_bid_ask" | "tick_size_change" => {
                assert_shape(&samples, &format!("polymarket.{et}"), &v)
            }
            "new_market" => {
                assert_shape(&samples, "polymarket.new_market", &v);
                assert_eq!(
                    v["slug"],
                    format!("btc-updown-5m-{}", start_s + 2 * len).as_str()
                );
            }
            "market_resolved" => {
                assert_shape(&samples, "polymarket.market_resolved", &v);
                assert!(v["timestamp"].as_str().unwrap().parse::<i64>().unwrap() >= rollover_at);
                assert!(
                    v["winning_asset_id"] == tokens[0].as_str()
                        || v["winning_asset_id"] == tokens[1].as_str()
                );
                resolved = true;
            }
            other => panic!("unexpected event {other}"),
        }
        *seen.entry(et).or_default() += 1;
    }
    assert!(pong, "PING answered with PONG");
    assert!(resolved, "market_resolved at rollover; seen {seen:?}");
    for et in ["price_change", "best_bid_ask", "new_market"] {
        assert!(seen.contains_key(et), "no {et}: {seen:?}");
    }
    // The next window is discoverable; switch subscriptions without reconnecting.
    let (_, next_tokens) = gamma_tokens(info, start_s + len).await;
    assert_ne!(next_tokens, tokens);
    send(
        &mut ws,
        &format!(
            r#"{{"operation":"unsubscribe","assets_ids":["{}","{}"]}}"#,
            tokens[0], tokens[1]
        ),
    )
    .await;
    send(
        &mut ws,
        &format!(
            r#"{{"operation":"subscribe","assets_ids":["{}","{}"],"custom_feature_enabled":true}}"#,
            next_tokens[0], next_tokens[1]
        ),
    )
    .await;
    let mut got_books = false;
    let (frames, _) = collect(&mut ws, Duration::from_millis(1_500)).await;
    for f in &frames {
        let v: Value = serde_json::from_str(f).unwrap();
        if let Some(arr) = v.as_array() {
            assert_eq!(arr.len(), 2);
            for b in arr {
                check_book(&samples, b);
                assert!(
                    b["asset_id"] == next_tokens[0].as_str()
                        || b["asset_id"] == next_tokens[1].as_str()
                );
            }
            got_books = true;
        } else if got_books && v["event_type"] == "price_change" {
            for e in v["price_changes"].as_array().unwrap() {
                assert!(
                    e["asset_id"] == next_tokens[0].as_str()
                        || e["asset_id"] == next_tokens[1].as_str()
                );
            }
        }
    }
    assert!(
        got_books,
        "books for the new tokens after operation=subscribe"
    );
    // Resolved / unknown assets give an empty array.
    send(
        &mut ws,
        &format!(
            r#"{{"operation":"subscribe","assets_ids":["{}"]}}"#,
            tokens[0]
        ),
    )
    .await;
    let (frames, _) = collect(&mut ws, Duration::from_millis(500)).await;
    assert!(frames.iter().any(|f| f == "[]"), "resolved asset gives []");
    emu.shutdown().await;
}

async fn post_fault(info: &ringbolt_sim::StartInfo, q: &str) {
    let (status, body) = control(info, "POST", &format!("/fault?{q}")).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["sessions"].as_u64().unwrap() >= 1, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_are_observed_by_clients() {
    let emu = start("faults", 300, 15).await;
    let info = &emu.info;
    // Sequence gap on the Binance diff stream.
    let mut ws = connect(
        info,
        "binance_spot",
        "stream.binance.com",
        "/ws/btcusdt@depth@100ms",
    )
    .await;
    let mut prev_u = next_json(&mut ws, 5).await["u"].as_u64().unwrap();
    post_fault(info, "venue=binance_spot&kind=gap").await;
    let mut gap = false;
    for _ in 0..30 {
        let v = next_json(&mut ws, 3).await;
        if v["U"].as_u64().unwrap() != prev_u + 1 {
            gap = true;
            break;
        }
        prev_u = v["u"].as_u64().unwrap();
    }
    assert!(gap, "gap not observed");
    // Corrupt frame.
    post_fault(info, "venue=binance_spot&kind=corrupt").await;
    let mut corrupt = false;
    for _ in 0..30 {
        let t = next_text(&mut ws, 3).await;
        if serde_json::from_str::<Value>(&t).is_err() {
            corrupt = true;
            break;
        }
    }
    assert!(corrupt, "corrupt frame not observed");
    // Stall: silence, socket kept, then data again.
    let _ = next_text(&mut ws, 3).await;
    post_fault(info, "venue=binance_spot&kind=stall&ms=1500").await;
    let t0 = Instant::now();
    let mut longest = Duration::ZERO;
    let mut last = Instant::now();
    while t0.elapsed() < Duration::from_millis(2_500) {
        let _ = next_text(&mut ws, 4).await;
        longest = longest.max(last.elapsed());
        last = Instant::now();
    }
    assert!(
        longest >= Duration::from_millis(1_200),
        "longest silence {longest:?}"
    );
    // Coinbase trade-id gap on the matches channel.
    let mut cb = connect(info, "coinbase", "ws-feed.exchange.coinbase.com", "/").await;
    send(
        &mut cb,
        r#"{"type":"subscribe","product_ids":["BTC-USD"],"channels":["matches"]}"#,
    )
    .await;
    assert_eq!(next_json(&mut cb, 5).await["type"], "subscriptions");
    let mut prev = next_json(&mut cb, 5).await["trade_id"].as_u64().unwrap();
    post_fault(info, "venue=coinbase&kind=gap&count=2").await;
    let mut cb_gap = false;
    for _ in 0..20 {
        let tid = next_json(&mut cb, 5).await["trade_id"].as_u64().unwrap();
        if tid != prev + 1 {
            cb_gap = true;
            break;
        }
        prev = tid;
    }
    assert!(cb_gap, "coinbase trade_id gap not observed");
    // Abrupt disconnect of every venue: the stream ends without a close frame.
    let mut poly = market_channel(info, &[]).await;
    let mut rtds = connect(info, "chainlink_rtds", "ws-live-data.polymarket.com", "/").await;
    for (venue, sock) in [
        ("binance_spot", &mut ws),
        ("coinbase", &mut cb),
        ("polymarket", &mut poly),
        ("chainlink_rtds", &mut rtds),
    ] {
        post_fault(info, &format!("venue={venue}&kind=disconnect")).await;
        let ended = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match sock.next().await {
                    Some(Ok(Message::Close(f))) => {
                        return Err(format!("{venue}: got a close frame {f:?}"));
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return Ok(()),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{venue}: still connected"));
        ended.unwrap();
    }
    let (_, stats) = control(info, "GET", "/stats").await;
    let stats: Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["venues"]["binance_spot"]["faults_injected"], 4);
    let (status, _) = control(info, "POST", "/fault?venue=binance_spot&kind=explode").await;
    assert_eq!(status, 400);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_a_capture_verbatim_and_announces_shutdown() {
    let dir = std::env::temp_dir().join(format!("ringbolt-sim-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Coinbase lines from the corpus (exchange_matches.jsonl lines 1-2, exchange_ticker.jsonl line 3).
    let capture = [
        r#"{"type":"last_match","trade_id":147587438,"maker_order_id":"3dbaddb1-3dcf-4511-b81c-89450a56deb4","taker_order_id":"421f3aaa-dfdd-4192-805a-bb73462ea6db","side":"sell","size":"0.00031874","price":"57786.82","product_id":"BTC-USD","sequence":22962703070,"time":"2021-03-21T03:47:27.112041Z"}"#,
        r#"{"type":"ticker","sequence":50978628538,"product_id":"BTC-USD","price":"17165.16","open_24h":"16437.94","volume_24h":"42492.05081975","low_24h":"16423.37","high_24h":"17259.37","volume_30d":"1093827.95195495","best_bid":"17165.15","best_bid_size":"0.61540890","best_ask":"17167.76","best_ask_size":"0.18528568","side":"sell","time":"2022-12-01T00:00:00.122581Z","trade_id":463751434,"last_size":"0.05"}"#,
    ];
    let path = dir.join("capture.jsonl");
    std::fs::write(&path, capture.join("\n") + "\n").unwrap();
    let toml = format!(
        "cert_dir = \"{}\"\n[venues.coinbase]\nreplay = \"{}\"\nreplay_interval_ms = 50\n[venues.binance_spot]\n",
        dir.display(),
        path.display()
    );
    let cfg: ringbolt_sim::EmulatorConfig = toml::from_str(&toml).unwrap();
    let emu = ringbolt_sim::Emulator::start(cfg).await.unwrap();
    let info = emu.info.clone();
    assert!(!info.venues.contains_key("polymarket"));
    let mut ws = connect(&info, "coinbase", "ws-feed.exchange.coinbase.com", "/").await;
    send(&mut ws, COINBASE_SUBSCRIBE).await;
    assert_eq!(next_json(&mut ws, 5).await["type"], "subscriptions");
    let first = next_text(&mut ws, 5).await;
    let i = capture
        .iter()
        .position(|c| *c == first)
        .expect("replayed line is verbatim");
    assert_eq!(next_text(&mut ws, 5).await, capture[(i + 1) % 2]);
    assert_eq!(next_text(&mut ws, 5).await, capture[i % 2]);
    // Shutdown: Binance announces serverShutdown, then every venue closes with 1001.
    let mut b = connect(&info, "binance_spot", "stream.binance.com", "/stream").await;
    send(
        &mut b,
        r#"{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":9}"#,
    )
    .await;
    assert_eq!(next_text(&mut b, 5).await, r#"{"result":null,"id":9}"#);
    let shut = tokio::spawn(emu.shutdown());
    let mut saw_shutdown = false;
    let mut close_code = None;
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(5), b.next()).await {
        match m {
            Message::Text(t) if t.contains("serverShutdown") => {
                let v: Value = serde_json::from_str(&t).unwrap();
                assert_shape(&samples(), "binance.serverShutdown", &v);
                saw_shutdown = true;
            }
            Message::Close(f) => {
                close_code = f.map(|f| u16::from(f.code));
                break;
            }
            _ => {}
        }
    }
    shut.await.unwrap();
    assert!(saw_shutdown);
    assert_eq!(close_code, Some(1001));

    // A capture that is not JSONL is refused with a clear error.
    std::fs::write(&path, "{\"ok\":1}\nnot json\n").unwrap();
    let cfg: ringbolt_sim::EmulatorConfig = toml::from_str(&toml).unwrap();
    let err = ringbolt_sim::Emulator::start(cfg)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 2") && err.contains("not JSON"), "{err}");
}
