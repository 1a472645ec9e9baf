//! `ringbolt dash` end to end in-process: real bus segments written by a real publisher, a real
//! `/metrics` endpoint (the service crate's loopback server, as the processes use), the dashboard's
//! HTTP server and a real WebSocket client (tungstenite).

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is the test failing

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ringbolt_bus::{
    Decision, FeedState, FeedStatusBody, Fill, OrderState, OrderTransition, PRICE_SCALE,
    PROB_SCALE, Publisher, Record, SIZE_SCALE, Segment, SegmentConfig, Settlement, Side, TopOfBook,
    Venue,
};
use ringbolt_dash::{DashConfig, MetricsSource};
use ringbolt_decide::DecideConfig;
use serde_json::Value;

const METRICS: &str = "# TYPE ringbolt_stage_latency_ns summary\n\
ringbolt_stage_latency_ns{process=\"trade\",stage=\"bus_to_decision\",quantile=\"0.5\"} 1200\n\
ringbolt_stage_latency_ns{process=\"trade\",stage=\"bus_to_decision\",quantile=\"0.99\"} 8800\n\
ringbolt_stage_latency_ns_count{process=\"trade\",stage=\"bus_to_decision\"} 42\n\
ringbolt_feed_reconnects_total{venue=\"coinbase\",source=\"coinbase\",stream=\"level2\"} 3\n\
ringbolt_feed_recv_to_publish_p50_ns{venue=\"coinbase\",source=\"coinbase\"} 23839\n\
ringbolt_feed_recv_to_publish_p99_ns{venue=\"coinbase\",source=\"coinbase\"} 99000\n";

struct Segments {
    market: Publisher,
    decisions: Publisher,
    names: [String; 2],
}

impl Drop for Segments {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = Segment::unlink(name);
        }
    }
}

fn segments(tag: &str) -> Segments {
    let config = SegmentConfig {
        rings: 1,
        capacity: 1024,
        instrument_capacity: 64,
    };
    let names = [
        ringbolt_testkit::fs::unique("rb-dash", &format!("{tag}-m")),
        ringbolt_testkit::fs::unique("rb-dash", &format!("{tag}-d")),
    ];
    Segments {
        market: Publisher::create(&names[0], config).unwrap(),
        decisions: Publisher::create(&names[1], config).unwrap(),
        names,
    }
}

fn stamped(mut r: Record) -> Record {
    let now = ringbolt_bus::now_ns();
    r.exchange_ts_ns = now;
    r.recv_ts_ns = now;
    r.publish_ts_ns = now;
    r
}

fn publish_market(p: &Publisher) {
    let id = p.register_instrument(Venue::Coinbase, "BTC-USD").unwrap();
    let mut w = p.writer(0).unwrap();
    let status = |state: FeedState| FeedStatusBody {
        messages: 10,
        gaps: 0,
        gap_records: 0,
        reconnects: u64::from(state == FeedState::Live),
        resyncs: 0,
        parse_errors: 0,
        state: state as u8,
        reserved: [0; 31],
    };
    for state in [FeedState::Live, FeedState::Disconnected, FeedState::Live] {
        w.publish(&stamped(Record::new(Venue::Coinbase, 0, 0, &status(state))));
    }
    let top = TopOfBook {
        bid_price: 97_000 * PRICE_SCALE,
        bid_size: SIZE_SCALE,
        ask_price: 97_002 * PRICE_SCALE,
        ask_size: SIZE_SCALE,
        reserved: [0; 48],
    };
    w.publish(&stamped(Record::new(Venue::Coinbase, 1, id, &top)));
}

fn transition(coid: u64, from: OrderState, to: OrderState, ts: i64) -> Record {
    let body = OrderTransition {
        client_order_id: coid,
        price: 55_000_000,
        size: 10 * SIZE_SCALE,
        filled: 0,
        venue_order_id: [0; 16],
        error_class: 0,
        http_status: 200,
        from_state: from as u8,
        to_state: to as u8,
        side: Side::Buy as u8,
        paper: 1,
        reserved: [0; 24],
    };
    let mut r = stamped(Record::new(Venue::Polymarket, 1, 0, &body));
    r.publish_ts_ns = ts;
    r
}

/// A fired decision, its order submitted then acked 250 µs later, a 10-share fill at 0.55 and
/// the window's settlement paying 10 USDC.
fn publish_decisions(p: &Publisher) -> i64 {
    let mut w = p.writer(0).unwrap();
    let decision = Decision {
        trigger_seq: 1,
        book_seq: 1,
        reference_seq: 1,
        probability: PROB_SCALE / 100 * 62,
        edge: 2_000_000,
        price: 55_000_000,
        size: 10 * SIZE_SCALE,
        client_order_id: 7,
        feature_schema_hash: 0,
        slot: 0,
        fired: 1,
        reason: 0,
        side: Side::Buy as u8,
        outcome: 0,
        reserved: [0; 6],
    };
    w.publish(&stamped(Record::new(Venue::Polymarket, 0, 0, &decision)));
    let t0 = ringbolt_bus::now_ns();
    w.publish(&transition(
        7,
        OrderState::Initialized,
        OrderState::Submitted,
        t0,
    ));
    w.publish(&transition(
        7,
        OrderState::Submitted,
        OrderState::Acked,
        t0 + 250_000,
    ));
    let fill = Fill {
        ts_ns: t0,
        client_order_id: 7,
        price: 55_000_000,
        size: 10 * SIZE_SCALE,
        fee_usdc: 0,
        window_start_s: 1_800_000_000,
        trade_id: [1; 16],
        side: Side::Buy as u8,
        liquidity: 2,
        status: 2,
        paper: 1,
        outcome: 0,
        reserved: [0; 11],
    };
    w.publish(&stamped(Record::new(Venue::Polymarket, 2, 0, &fill)));
    let settlement = Settlement {
        window_start_s: 1_800_000_000,
        start_price: 97_000 * PRICE_SCALE,
        end_price: 97_100 * PRICE_SCALE,
        shares: 10 * SIZE_SCALE,
        payout_usdc: 10 * PRICE_SCALE,
        outcome: 0,
        token_outcome: 0,
        source: Venue::ChainlinkRtds as u8,
        paper: 1,
        reserved: [0; 36],
    };
    w.publish(&stamped(Record::new(Venue::Polymarket, 2, 0, &settlement)));
    t0
}

fn http(addr: SocketAddr, method: &str, path: &str, extra: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Content-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, out)
}

fn config(s: &Segments, metrics_url: String) -> DashConfig {
    DashConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        update_ms: 50,
        segments: s.names.to_vec(),
        metrics: vec![
            MetricsSource {
                process: "trade".into(),
                url: metrics_url,
            },
            MetricsSource {
                process: "archive".into(),
                url: "http://127.0.0.1:1/metrics".into(),
            },
        ],
        ..DashConfig::default()
    }
}

/// Reads ticks until `done` holds (or panics after 20 s).
fn tick_until(ws: &mut tungstenite::WebSocket<TcpStream>, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "no tick satisfied the condition");
        let msg = ws.read().unwrap();
        let v: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
        if v["type"] == "tick" && done(&v) {
            return v;
        }
    }
}

#[test]
fn the_page_shows_bus_and_metrics_and_nothing_can_write() {
    let s = segments("e2e");
    let metrics = ringbolt_service::spawn_loopback_http(
        "127.0.0.1:0".parse().unwrap(),
        "test-metrics",
        |_| ("200 OK", "text/plain; version=0.0.4", METRICS.to_owned()),
    )
    .unwrap();
    let dash = ringbolt_dash::start(
        &config(&s, format!("http://{metrics}/metrics")),
        &DecideConfig::default(),
    )
    .unwrap();
    let addr = dash.addr();
    publish_market(&s.market);
    let t0 = publish_decisions(&s.decisions);

    let (mut ws, _) =
        tungstenite::client(format!("ws://{addr}/ws"), TcpStream::connect(addr).unwrap()).unwrap();
    let hello: Value = serde_json::from_str(ws.read().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(hello["type"], "hello");
    let columns: Vec<&str> = hello["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(&columns[..4], ["t", "reference", "chainlink", "strike"]);
    let coinbase = columns.iter().position(|c| *c == "coinbase").unwrap();

    let tick = tick_until(&mut ws, |v| {
        v["panels"]["records"].as_u64() == Some(9)
            && v["metrics"]["stages"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
    });
    let p = &tick["panels"];
    assert!((tick["point"][coinbase].as_f64().unwrap() - 97_001.0).abs() < 1e-9);
    assert!((p["window"]["reference"].as_f64().unwrap() - 97_001.0).abs() < 1e-9);
    assert_eq!(p["decisions"]["fired"], 1);
    assert_eq!(p["decisions"]["fires"][0]["reason"], "fired");
    assert!((p["window"]["prob_up"].as_f64().unwrap() - 0.62).abs() < 1e-9);
    assert_eq!(p["order_latency"]["samples"], 1);
    assert_eq!(p["order_latency"]["p50_ns"], 250_000);
    let health = &p["health"][0];
    assert_eq!(health["venue"], "coinbase");
    assert_eq!(health["health"], "live");
    assert_eq!(health["last_issue"], "disconnected");
    assert_eq!(health["reconnects"], 1);
    let position = &p["positions"]["rows"][0];
    assert!((position["shares"].as_f64().unwrap() - 10.0).abs() < 1e-9);
    // Bought 10 at 0.55, paid 10: +4.50 USDC.
    assert!((p["positions"]["realised_pnl_usdc"].as_f64().unwrap() - 4.5).abs() < 1e-9);
    let stage = &tick["metrics"]["stages"][0];
    assert_eq!(stage["stage"], "bus_to_decision");
    assert!((stage["quantiles"]["0.5"].as_f64().unwrap() - 1200.0).abs() < 1e-9);
    assert_eq!(
        tick["metrics"]["streams"]["coinbase/level2"]["reconnects"],
        3.0
    );
    let gauge = &tick["metrics"]["stages"][1];
    assert_eq!(gauge["stage"], "recv_to_publish/coinbase");
    assert_eq!(gauge["quantiles"]["0.99"], 99_000.0);
    let archive = &tick["metrics"]["sources"][1];
    assert_eq!(
        archive["ok"], false,
        "an unreachable /metrics is no data, not a failure"
    );
    assert!(
        tick["bus"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["read_only"] == true)
    );
    assert!(t0 > 0);

    // The observer never registered: no slot taken, invisible to the producers.
    let market = Segment::open(&s.names[0]).unwrap();
    assert!(market.consumers().is_empty());
    assert_eq!(s.market.slowest_consumer(0), None);
    assert_eq!(s.decisions.slowest_consumer(0), None);

    // Read-only: only GET, no order routes; assets compiled in; cross-site sockets refused.
    for (method, path) in [
        ("POST", "/"),
        ("POST", "/ws"),
        ("DELETE", "/order"),
        ("PUT", "/snapshot.json"),
    ] {
        assert_eq!(http(addr, method, path, "").0, 405, "{method} {path}");
    }
    for path in ["/order", "/orders", "/cancel"] {
        assert_eq!(http(addr, "GET", path, "").0, 404, "GET {path}");
    }
    let (status, page) = http(addr, "GET", "/", "");
    assert_eq!(status, 200);
    assert!(page.contains("/assets/uPlot.iife.min.js") && page.contains("data-panel=\"health\""));
    let (status, js) = http(addr, "GET", "/assets/uPlot.iife.min.js", "");
    assert_eq!(status, 200);
    assert!(js.contains("uPlot"));
    let ws_head = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://evil.example\r\n";
    assert_eq!(http(addr, "GET", "/ws", ws_head).0, 403);
    // Anything the page sends is ignored: the stream goes on.
    ws.send(tungstenite::Message::text("{\"place\":\"order\"}"))
        .unwrap();
    tick_until(&mut ws, |_| true);
    dash.stop();
}

#[test]
fn a_token_guards_the_data_and_remote_binds_need_setting_and_token() {
    let s = segments("token");
    let token = "s3cr3t-token-0123456789";
    let cfg = DashConfig {
        token: Some(token.into()),
        ..config(&s, "http://127.0.0.1:1/metrics".into())
    };
    let dash = ringbolt_dash::start(&cfg, &DecideConfig::default()).unwrap();
    let addr = dash.addr();
    assert_eq!(http(addr, "GET", "/", "").0, 401);
    assert_eq!(http(addr, "GET", "/snapshot.json?token=wrong", "").0, 401);
    assert_eq!(http(addr, "GET", &format!("/?token={token}"), "").0, 200);
    let bearer = format!("Authorization: Bearer {token}\r\n");
    let (status, body) = http(addr, "GET", "/snapshot.json", &bearer);
    assert_eq!(status, 200);
    assert!(
        !body.contains(token),
        "the token never reaches the page's data"
    );
    assert_eq!(http(addr, "GET", "/assets/dash.js", "").0, 200);
    dash.stop();

    let remote = DashConfig {
        bind: "0.0.0.0:0".parse().unwrap(),
        ..config(&s, "http://127.0.0.1:1/metrics".into())
    };
    let err = ringbolt_dash::start(&remote, &DecideConfig::default()).unwrap_err();
    assert!(err.to_string().contains("dash.allow_remote"), "{err}");
    let no_token = DashConfig {
        allow_remote: true,
        ..remote
    };
    let err = ringbolt_dash::start(&no_token, &DecideConfig::default()).unwrap_err();
    assert!(err.to_string().contains("dash.token"), "{err}");
}
