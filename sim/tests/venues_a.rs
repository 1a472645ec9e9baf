//! Binance USD-M futures and Bybit v5 emulators: every emitted message kind against its corpus
//! sample's shape, the futures `U`/`u`/`pu` chain against the REST snapshot rule, the route
//! tiers, and (over real TLS sockets) the per-connection and listener faults of the control port.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{assert_shape, connect, control, next_json, samples, send};
use ringbolt_sim::binance_futures::{STREAM_DEPTH, STREAM_MARK};
use ringbolt_sim::{Emulator, EmulatorConfig, Hub, MarketConfig, Session, Topic, VenueId};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;

const START_MS: i64 = 1_795_000_000_000;
const VENUES: [VenueId; 2] = [VenueId::BinanceFutures, VenueId::Bybit];

fn hub() -> Hub {
    Hub::with_venues(MarketConfig::default(), START_MS, &VENUES)
}

/// The sample kind of an emitted event (`None`: not compared, e.g. partial ticker deltas).
fn kind_of(topic: &Topic, v: &mut Value) -> Option<String> {
    match topic {
        Topic::Binance(_) => Some(format!("binance_futures.{}", v["e"].as_str()?)),
        Topic::Stream(key) => match *key {
            "spot|ob50" | "linear|ob50" => Some("bybit.orderbook.50.delta".into()),
            "spot|trade" => {
                // The corpus spot sample predates the documented `seq` field.
                v["data"][0].as_object_mut()?.remove("seq");
                Some("bybit.spot.publicTrade".into())
            }
            "linear|trade" => Some("bybit.linear.publicTrade".into()),
            "spot|tickers" => Some("bybit.spot.tickers".into()),
            "linear|liq" => Some("bybit.linear.allLiquidation".into()),
            _ => None,
        },
        _ => None,
    }
}

#[test]
fn every_futures_and_bybit_message_has_its_corpus_shape() {
    let samples = samples();
    let mut h = hub();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..3_000 {
        for ev in h.step().into_iter().filter(|e| VENUES.contains(&e.venue)) {
            let mut v: Value = serde_json::from_str(&ev.text).unwrap();
            if let Some(kind) = kind_of(&ev.topic, &mut v) {
                assert_shape(&samples, &kind, &v);
                *seen.entry(kind).or_default() += 1;
            }
        }
    }
    for k in [
        "binance_futures.depthUpdate",
        "binance_futures.aggTrade",
        "binance_futures.trade",
        "binance_futures.bookTicker",
        "binance_futures.markPriceUpdate",
        "binance_futures.forceOrder",
        "bybit.orderbook.50.delta",
        "bybit.spot.publicTrade",
        "bybit.linear.publicTrade",
        "bybit.spot.tickers",
        "bybit.linear.allLiquidation",
    ] {
        assert!(seen.contains_key(k), "{k} never emitted in 300 s: {seen:?}");
    }
    let model = h.model(VenueId::BinanceFutures).unwrap();
    let now = h.now_ms();
    for (kind, path, query) in [
        (
            "binance_futures.depth_snapshot",
            "/fapi/v1/depth",
            "symbol=BTCUSDT&limit=1000",
        ),
        (
            "binance_futures.openInterest",
            "/fapi/v1/openInterest",
            "symbol=BTCUSDT",
        ),
    ] {
        let (status, body) = model.rest(path, query, now).unwrap();
        assert_eq!(status, 200, "{body}");
        assert_shape(&samples, kind, &serde_json::from_str(&body).unwrap());
    }
    let (status, body) = model
        .rest("/fapi/v1/depth", "symbol=BTCUSDT&limit=7", now)
        .unwrap();
    assert_eq!((status, body.contains("-1130")), (400, true), "{body}");
    let (mut s, _) = Session::open(VenueId::Bybit, "/v5/public/linear", 4).unwrap();
    let ack = s.on_client_text(
        r#"{"op":"subscribe","req_id":"10001","args":["publicTrade.BTCUSDT"]}"#,
        &h,
    );
    let pong = s.on_client_text(r#"{"op":"ping"}"#, &h);
    for (kind, out) in [
        ("bybit.control.subscribe", ack),
        ("bybit.control.pong", pong),
    ] {
        let ringbolt_sim::Out::Text(t) = &out[0] else {
            panic!("{out:?}")
        };
        assert_shape(&samples, kind, &serde_json::from_str(t).unwrap());
    }
}

fn depth_of(text: &str) -> Option<(u64, u64, u64)> {
    let v: Value = serde_json::from_str(text).ok()?;
    let d = &v["data"];
    (d["e"] == "depthUpdate").then(|| {
        (
            d["U"].as_u64().unwrap(),
            d["u"].as_u64().unwrap(),
            d["pu"].as_u64().unwrap(),
        )
    })
}

#[test]
fn futures_depth_chains_on_pu_and_the_snapshot_rule_holds_and_routes_split_tiers() {
    let mut h = hub();
    let all = "btcusdt@aggTrade/btcusdt@bookTicker/btcusdt@depth@100ms/btcusdt@markPrice@1s";
    let open = |route: &str| {
        Session::open(
            VenueId::BinanceFutures,
            &format!("{route}?streams={all}"),
            1,
        )
        .unwrap()
        .0
    };
    let (mut public, mut market, mut legacy) = (
        open("/public/stream"),
        open("/market/stream"),
        open("/stream"),
    );
    let mut prev_u = None;
    let mut snapshot_id = None;
    let mut streams: BTreeMap<(&str, String), usize> = BTreeMap::new();
    for i in 0..400 {
        if i == 200 {
            let (_, body) = h
                .model(VenueId::BinanceFutures)
                .unwrap()
                .rest("/fapi/v1/depth", "symbol=BTCUSDT&limit=5", h.now_ms())
                .unwrap();
            let v: Value = serde_json::from_str(&body).unwrap();
            snapshot_id = v["lastUpdateId"].as_u64();
            assert_eq!(snapshot_id, prev_u, "snapshot id is the last published u");
        }
        for ev in h.step() {
            for (name, s) in [
                ("public", &mut public),
                ("market", &mut market),
                ("legacy", &mut legacy),
            ] {
                let Some(t) = s.on_event(&ev) else { continue };
                let v: Value = serde_json::from_str(&t).unwrap();
                *streams
                    .entry((name, v["stream"].as_str().unwrap().to_owned()))
                    .or_default() += 1;
                if name != "public" {
                    continue;
                }
                if let Some((first, last, pu)) = depth_of(&t) {
                    if let Some(p) = prev_u {
                        assert_eq!(pu, p, "pu chains on the previous u");
                    }
                    assert!(first > pu && last >= first);
                    if snapshot_id.is_some_and(|id| pu == id) {
                        // The first event after the snapshot: U <= lastUpdateId+1 and u >= it.
                        assert!(first > snapshot_id.unwrap() && last > snapshot_id.unwrap());
                    }
                    prev_u = Some(last);
                }
            }
        }
    }
    let n =
        |route: &'static str, s: &str| streams.get(&(route, s.to_owned())).copied().unwrap_or(0);
    assert!(n("public", STREAM_DEPTH) > 300);
    assert_eq!(n("public", STREAM_MARK), 0, "market tier never on /public");
    assert!(n("market", STREAM_MARK) >= 39);
    assert_eq!(n("market", STREAM_DEPTH), 0, "public tier never on /market");
    assert_eq!(
        n("legacy", STREAM_MARK),
        0,
        "legacy route lost the market tier"
    );
    assert_eq!(n("legacy", STREAM_DEPTH), n("public", STREAM_DEPTH));
}

async fn start(tag: &str) -> Emulator {
    let dir = std::env::temp_dir().join(format!("ringbolt-sim-{tag}-{}", std::process::id()));
    let toml = format!(
        "cert_dir = \"{}\"\n[venues.binance_futures]\n[venues.bybit]\n",
        dir.display()
    );
    let cfg: EmulatorConfig = toml::from_str(&toml).unwrap();
    cfg.validate().unwrap();
    Emulator::start(cfg).await.unwrap()
}

/// A TLS connect to `venue`'s port: `Err` when the connection is refused or cut.
async fn try_tls(info: &ringbolt_sim::StartInfo, venue: &str) -> Result<(), String> {
    let tcp = TcpStream::connect(info.venues[venue].addr)
        .await
        .map_err(|e| e.to_string())?;
    common::connector(info)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

async fn stats(info: &ringbolt_sim::StartInfo) -> Value {
    let (status, body) = control(info, "GET", "/stats").await;
    assert_eq!(status, 200);
    serde_json::from_str(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_connection_and_listener_faults_over_tls() {
    let emu = start("venues-a-faults").await;
    let info = emu.info.clone();
    let sub = r#"{"op":"subscribe","args":["orderbook.50.BTCUSDT"]}"#;
    let mut a = connect(&info, "bybit", "stream.bybit.com", "/v5/public/spot").await;
    let mut b = connect(&info, "bybit", "stream.bybit.com", "/v5/public/linear").await;
    for ws in [&mut a, &mut b] {
        send(ws, sub).await;
        assert_eq!(next_json(ws, 5).await["success"], true);
        assert_eq!(next_json(ws, 5).await["type"], "snapshot");
    }
    let conns: Vec<u64> = stats(&info).await["venues"]["bybit"]["open_conns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect();
    assert_eq!(conns.len(), 2);
    // Disconnect only the first connection: it ends, the second keeps streaming.
    let q = format!("/fault?venue=bybit&kind=disconnect&conn={}", conns[0]);
    assert_eq!(control(&info, "POST", &q).await.0, 200);
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        use futures_util::StreamExt;
        loop {
            match a.next().await {
                Some(Ok(_)) => {}
                _ => return,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "targeted connection still open");
    assert_eq!(next_json(&mut b, 5).await["type"], "delta");
    // No checksum on Bybit: refused by name.
    let (status, body) = control(&info, "POST", "/fault?venue=bybit&kind=checksum").await;
    assert_eq!(status, 400);
    assert!(body.contains("no checksummed book messages"), "{body}");
    let (status, _) = control(&info, "POST", "/fault?venue=bybit&kind=gap&conn=999999").await;
    assert_eq!(status, 404, "unknown connection");
    // Refuse: new connections fail for the window, then succeed again.
    assert_eq!(
        control(
            &info,
            "POST",
            "/fault?venue=binance_futures&kind=refuse&ms=1500"
        )
        .await
        .0,
        200
    );
    assert!(try_tls(&info, "binance_futures").await.is_err());
    tokio::time::sleep(Duration::from_millis(1_700)).await;
    try_tls(&info, "binance_futures").await.unwrap();
    // Slow handshake: the next connection's TLS handshake waits.
    let q = "/fault?venue=binance_futures&kind=slow_handshake&ms=900";
    assert_eq!(control(&info, "POST", q).await.0, 200);
    let t0 = Instant::now();
    try_tls(&info, "binance_futures").await.unwrap();
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t0.elapsed()
    );
    let t0 = Instant::now();
    try_tls(&info, "binance_futures").await.unwrap();
    assert!(
        t0.elapsed() < Duration::from_millis(900),
        "only one connection delayed"
    );
    let st = &stats(&info).await["venues"]["binance_futures"];
    assert_eq!(st["connections_refused"], 1);
    assert_eq!(st["handshakes_delayed"], 1);
    emu.shutdown().await;
}
