//! Sans-IO tests: the hub and session state machines without sockets. Every event type of every
//! venue is checked against its corpus sample's shape, and same seed => same frames.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::{assert_shape, samples};
use ringbolt_sim::{Fault, Hub, MarketConfig, Out, Session, VenueId};
use serde_json::Value;

const START_MS: i64 = 1_795_000_000_000;

fn hub(seed: u64) -> Hub {
    Hub::new(
        MarketConfig {
            seed,
            window_len_s: 10,
            polymarket_trade_prob: 0.2,
            ..MarketConfig::default()
        },
        START_MS,
    )
}

/// The corpus sample kind of a core venue's event (`None`: a registry venue, checked by its own
/// tests).
fn kind_of(venue: VenueId, v: &Value) -> Option<String> {
    Some(match venue {
        VenueId::BinanceSpot => match v.get("e").and_then(Value::as_str) {
            Some(e) => format!("binance.{e}"),
            None => "binance.bookTicker".into(),
        },
        VenueId::Coinbase => format!("coinbase.{}", v["type"].as_str().unwrap()),
        VenueId::ChainlinkRtds => match v["topic"].as_str().unwrap() {
            "crypto_prices_chainlink" => "rtds.chainlink_update".into(),
            _ => "rtds.binance_update".into(),
        },
        VenueId::Polymarket => format!("polymarket.{}", v["event_type"].as_str().unwrap()),
        VenueId::Okx => format!("okx.{}", v["arg"]["channel"].as_str().unwrap()),
        VenueId::Kraken => format!("kraken.{}", v["channel"].as_str().unwrap()),
        VenueId::Deribit => {
            let Some(channel) = v["params"]["channel"].as_str() else {
                return Some("deribit.heartbeat".into());
            };
            match channel.split('.').next().unwrap() {
                "trades" if v["params"]["data"][0].get("liquidation").is_some() => {
                    "deribit.trades_liquidation".into()
                }
                prefix => format!("deribit.{prefix}"),
            }
        }
        _ => return None,
    })
}

#[test]
fn every_emitted_event_has_its_corpus_shape() {
    let samples = samples();
    let mut h = hub(21);
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..1_200 {
        for ev in h.step() {
            let v: Value = serde_json::from_str(&ev.text).unwrap();
            let Some(kind) = kind_of(ev.venue, &v) else {
                continue;
            };
            let mut v = v;
            if ev.venue == VenueId::ChainlinkRtds {
                // The session adds the per-connection id in front.
                v.as_object_mut()
                    .unwrap()
                    .insert("connection_id".into(), Value::from("x"));
            }
            assert_shape(&samples, &kind, &v);
            *seen.entry(kind).or_default() += 1;
        }
    }
    for k in [
        "binance.depthUpdate",
        "binance.trade",
        "binance.aggTrade",
        "binance.bookTicker",
        "coinbase.match",
        "coinbase.ticker",
        "coinbase.heartbeat",
        "coinbase.l2update",
        "rtds.chainlink_update",
        "rtds.binance_update",
        "polymarket.price_change",
        "polymarket.tick_size_change",
        "polymarket.last_trade_price",
        "polymarket.best_bid_ask",
        "polymarket.new_market",
        "polymarket.market_resolved",
        "polymarket.book",
        "okx.books",
        "okx.bbo-tbt",
        "okx.trades",
        "okx.tickers",
        "okx.mark-price",
        "okx.index-tickers",
        "okx.funding-rate",
        "okx.open-interest",
        "okx.liquidation-orders",
        "kraken.book",
        "kraken.trade",
        "kraken.ticker",
        "kraken.heartbeat",
        "deribit.book",
        "deribit.trades",
        "deribit.trades_liquidation",
        "deribit.ticker",
        "deribit.quote",
        "deribit.deribit_price_index",
        "deribit.deribit_volatility_index",
        "deribit.heartbeat",
    ] {
        assert!(seen.contains_key(k), "{k} never emitted in 120 s: {seen:?}");
    }
}

#[test]
fn gemini_and_bitstamp_events_have_their_corpus_shapes() {
    let samples = samples();
    let mut h = hub(22);
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..600 {
        for ev in h.step() {
            let v: Value = serde_json::from_str(&ev.text).unwrap();
            let kind = match ev.venue {
                VenueId::Gemini => format!("gemini.{}", v["type"].as_str().unwrap()),
                VenueId::Bitstamp => {
                    let ch = v["channel"].as_str().unwrap();
                    match ch.strip_suffix("_btcusd").unwrap() {
                        "live_trades" => "bitstamp.trade".to_string(),
                        other => format!("bitstamp.{other}"),
                    }
                }
                _ => continue,
            };
            assert_shape(&samples, &kind, &v);
            *seen.entry(kind).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), 6, "{seen:?}");
}

/// All frames four sessions (one per venue, scripted clients) would write over `steps` market
/// steps of one hub; a gap fault is injected a quarter of the way in.
fn transcripts(seed: u64, steps: usize) -> Vec<Vec<String>> {
    let mut h = hub(seed);
    let w = h.polymarket().current(h.now_ms()).unwrap().tokens.clone();
    let poly_sub = format!(
        r#"{{"type":"market","assets_ids":["{}","{}"],"custom_feature_enabled":true}}"#,
        w[0], w[1]
    );
    let cases: Vec<(VenueId, &str, Vec<&str>)> = vec![
        (
            VenueId::BinanceSpot,
            "/stream?streams=btcusdt@trade/btcusdt@aggTrade/btcusdt@bookTicker/btcusdt@depth@100ms",
            vec![],
        ),
        (
            VenueId::Coinbase,
            "/",
            vec![
                r#"{"type":"subscribe","product_ids":["BTC-USD"],"channels":["ticker","matches","heartbeat","level2_batch"]}"#,
            ],
        ),
        (
            VenueId::ChainlinkRtds,
            "/",
            vec![
                r#"{"action":"subscribe","subscriptions":[{"topic":"crypto_prices_chainlink","type":"*","filters":"{\"symbol\":\"btc/usd\"}"}]}"#,
            ],
        ),
        (VenueId::Polymarket, "/ws/market", vec![poly_sub.as_str()]),
    ];
    let text = |o: Out| match o {
        Out::Text(t) => t,
        Out::Close(c, r) => format!("close {c} {r}"),
    };
    let mut sessions = Vec::new();
    let mut outs = Vec::new();
    for (venue, path, client) in &cases {
        let (mut s, first) = Session::open(*venue, path, 7).unwrap();
        let mut out: Vec<String> = first.into_iter().map(text).collect();
        for c in client {
            out.extend(s.on_client_text(c, &h).into_iter().map(text));
        }
        sessions.push(s);
        outs.push(out);
    }
    for i in 0..steps {
        if i == steps / 4 {
            for s in &mut sessions {
                s.inject(Fault::Gap { count: 1 });
            }
        }
        for ev in h.step() {
            for (s, out) in sessions.iter_mut().zip(outs.iter_mut()) {
                if let Some(t) = s.on_event(&ev) {
                    out.push(t);
                }
            }
        }
    }
    for s in &sessions {
        assert_eq!(
            s.dropped(),
            1,
            "{:?}: gap fault dropped one sequenced message",
            s.venue()
        );
    }
    outs
}

#[test]
fn same_seed_gives_the_same_frames_per_venue() {
    let a = transcripts(3, 200);
    let b = transcripts(3, 200);
    let c = transcripts(4, 200);
    for (i, venue) in ["binance_spot", "coinbase", "chainlink_rtds", "polymarket"]
        .iter()
        .enumerate()
    {
        assert!(a[i].len() > 20, "{venue}: only {} frames", a[i].len());
        assert_eq!(a[i], b[i], "{venue}: same seed, different frames");
        assert_ne!(a[i], c[i], "{venue}: different seeds, same frames");
    }
}

#[test]
fn window_identity_is_deterministic_and_rolls_over() {
    let mut a = hub(9);
    let b = hub(9);
    let wa: Vec<_> = a
        .polymarket()
        .windows()
        .map(|w| (w.slug.clone(), w.tokens.clone()))
        .collect();
    let wb: Vec<_> = b
        .polymarket()
        .windows()
        .map(|w| (w.slug.clone(), w.tokens.clone()))
        .collect();
    assert_eq!(wa, wb);
    let cur = a.polymarket().current(a.now_ms()).unwrap().start_s;
    assert_eq!(cur % 10, 0);
    for w in &wa {
        assert!(
            w.1.iter()
                .all(|t| t.len() == 77 && t.bytes().all(|b| b.is_ascii_digit()))
        );
    }
    for _ in 0..100 {
        a.step();
    }
    let cur2 = a.polymarket().current(a.now_ms()).unwrap();
    assert_eq!(cur2.start_s, cur + 10);
    let (status, body) = a
        .polymarket()
        .gamma("/markets", &format!("slug={}", cur2.slug), a.now_ms())
        .unwrap();
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    let ids: Vec<String> = serde_json::from_str(v[0]["clobTokenIds"].as_str().unwrap()).unwrap();
    assert_eq!(ids, cur2.tokens.to_vec());
    // The previous window is closed and resolved.
    let prev = a.polymarket().windows().find(|w| w.start_s == cur).unwrap();
    assert!(prev.resolved.is_some());
    let (_, body) = a
        .polymarket()
        .gamma("/markets", &format!("slug={}", prev.slug), a.now_ms())
        .unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v[0]["closed"], true);
}
