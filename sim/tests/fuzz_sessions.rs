//! Property tests: arbitrary and mutated client frames never crash a session; every reply is a
//! text frame that is JSON or one of the venues' plain-text keep-alive / error words.
//! Short by default; `PROPTEST_CASES=100000 cargo test -p ringbolt-sim --test fuzz_sessions` for a
//! long run.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::OnceLock;

use proptest::prelude::*;
use ringbolt_sim::{Hub, MarketConfig, Out, Session, VenueId};

/// Corpus subscribe frames (`shared/corpus/venues/*/subscribe.json`, PROTOCOL_NOTES.md §5).
const SEEDS: [(VenueId, &str, &str); 4] = [
    (
        VenueId::BinanceSpot,
        "/stream",
        r#"{"method":"SUBSCRIBE","params":["btcusdt@trade","btcusdt@aggTrade","btcusdt@bookTicker","btcusdt@depth@100ms"],"id":1}"#,
    ),
    (
        VenueId::Coinbase,
        "/",
        r#"{"type":"subscribe","product_ids":["BTC-USD"],"channels":["ticker","matches","heartbeat","level2_batch"]}"#,
    ),
    (
        VenueId::ChainlinkRtds,
        "/",
        r#"{"action":"subscribe","subscriptions":[{"topic":"crypto_prices_chainlink","type":"*","filters":"{\"symbol\":\"btc/usd\"}"}]}"#,
    ),
    (
        VenueId::Polymarket,
        "/ws/market",
        r#"{"type":"market","assets_ids":["1","2"],"custom_feature_enabled":true}"#,
    ),
];

fn hub() -> &'static Hub {
    static HUB: OnceLock<Hub> = OnceLock::new();
    HUB.get_or_init(|| Hub::new(MarketConfig::default(), 1_795_000_000_000))
}

fn check(venue: VenueId, path: &str, frames: &[String]) {
    let (mut s, _) = Session::open(venue, path, 1).unwrap();
    for f in frames {
        for o in s.on_client_text(f, hub()) {
            match o {
                Out::Text(t) => assert!(
                    matches!(t.as_str(), "PONG" | "pong" | "INVALID OPERATION")
                        || serde_json::from_str::<serde_json::Value>(&t).is_ok(),
                    "{venue:?}: reply is neither JSON nor a keep-alive word: {t}"
                ),
                Out::Close(..) => panic!("client text must not close the session"),
            }
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_text_never_crashes_a_session(text in "\\PC{0,300}", v in 0usize..4) {
        let (venue, path, _) = SEEDS[v];
        check(venue, path, &[text]);
    }

    #[test]
    fn mutated_subscribe_frames_never_crash_a_session(
        v in 0usize..4,
        cut in 0usize..400,
        del in 0usize..8,
        insert in "[\\[\\]{}\",:0-9a-z\\\\ ]{0,12}",
    ) {
        let (venue, path, seed) = SEEDS[v];
        let mut bytes: Vec<char> = seed.chars().collect();
        let at = cut.min(bytes.len());
        let end = (at + del).min(bytes.len());
        bytes.splice(at..end, insert.chars());
        let mutated: String = bytes.into_iter().collect();
        check(venue, path, &[seed.to_string(), mutated.clone(), mutated]);
    }
}
