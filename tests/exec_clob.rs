//! The order client (`ringbolt_exec::client`, HTTP/2 on the io_uring driver) against the CLOB
//! emulator (`ringbolt_sim`, hyper HTTP/2 over rustls): real TLS, ALPN h2 and HTTP/2 on
//! loopback. Accept, every rejection class, paper mode, batch, cancel, cancel-all, L1 API-key
//! creation/derivation, faults (latency, 429, 503, GOAWAY, disconnect) and reconnect without
//! resending.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is the test failing

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ringbolt_bus::{OrderState, OrderTransition, Record, Side};
use ringbolt_exec::classify::{ErrorClass, Outcome, classify_one};
use ringbolt_exec::client::{
    ClientConfig, ClientEvent, Finished, LOCAL_CONN_LOST, LOCAL_PAPER_GUARD, OrderClient,
    OrderTicket, Pending, SubmitError, create_or_derive_api_creds,
};
use ringbolt_exec::pool::{PoolConfig, PoolToken, PresignedPool, SlotKey};
use ringbolt_exec::request::HttpRequest;
use ringbolt_exec::risk::{KillSwitch, LiveOptIn, RiskGate, RiskLimits, TradingMode};
use ringbolt_exec::{ApiCreds, L2Signer, OrderInput, OrderSide, PrivateKey, SignedOrder, TickSize};
use ringbolt_testkit::emulator::RunningEmulator;
use ringbolt_testkit::json::current_window;
use serde_json::Value;

const KEY_A: &str = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
const KEY_B: &str = "0x8da4ef21b864d2cc526dbdb2a120bd2874c36c9d0a1fb7f8c63d7f7a8b41de8f";
const WAIT: Duration = Duration::from_secs(20);

/// The Polymarket + CLOB emulator, with what these tests ask of it.
struct Emu(RunningEmulator);

impl Emu {
    fn start() -> Emu {
        Emu(RunningEmulator::clob("exec-clob"))
    }

    fn http(&self, method: &str, target: &str) -> Value {
        self.0.control(method, target)
    }

    fn fault(&self, q: &str) {
        self.0.fault("clob", q);
    }

    fn clob_stats(&self) -> Value {
        self.http("GET", "/stats")["clob"].clone()
    }

    /// Token id of the next (pre-open) window: its book sits at 0.49/0.51 on the 0.01 tick.
    fn next_window_token(&self) -> String {
        let w = self.0.windows();
        let list = w["windows"].as_array().unwrap();
        let i = list.iter().position(|w| w["current"] == true).unwrap();
        list[i + 1]["up_token"].as_str().unwrap().to_string()
    }

    fn cfg(&self) -> ClientConfig {
        let mut c = ClientConfig::emulator(self.0.clob_port(), self.0.ca_pem.clone());
        c.h2.request_timeout = Duration::from_secs(15);
        c
    }
}

fn key(hex: &str) -> PrivateKey {
    PrivateKey::from_hex(hex).unwrap()
}

fn creds(emu: &Emu, k: &PrivateKey) -> ApiCreds {
    create_or_derive_api_creds(&emu.cfg(), k, 137, 0).unwrap()
}

fn live_gate() -> RiskGate {
    let limits = RiskLimits {
        max_order_notional_micros: Some(1_000_000_000),
        max_window_notional_micros: Some(10_000_000_000),
        max_day_notional_micros: Some(100_000_000_000),
        max_open_orders: Some(100),
    };
    RiskGate::new(
        TradingMode::live(LiveOptIn::operator_passed_live_flag()),
        limits,
        KillSwitch::new(),
    )
    .unwrap()
}

fn paper_gate() -> RiskGate {
    RiskGate::new(TradingMode::Paper, RiskLimits::default(), KillSwitch::new()).unwrap()
}

fn client(emu: &Emu, k: &PrivateKey, gate: RiskGate) -> (OrderClient, ApiCreds) {
    let c = creds(emu, k);
    let signer = L2Signer::new(&k.address(), c.clone()).unwrap();
    (OrderClient::connect(&emu.cfg(), signer, gate).unwrap(), c)
}

static SALT: AtomicU64 = AtomicU64::new(1000);

/// A fresh emulator, its next window's token, key A and a client of key A behind `gate`.
fn key_a_session(gate: RiskGate) -> (Emu, String, PrivateKey, OrderClient) {
    let emu = Emu::start();
    let token = emu.next_window_token();
    let k = key(KEY_A);
    let (c, _) = client(&emu, &k, gate);
    (emu, token, k, c)
}

fn signed(
    k: &PrivateKey,
    token: &str,
    side: &str,
    price: &str,
    size: &str,
    tick: &str,
) -> SignedOrder {
    signed_as(k, None, token, [side, price, size, tick])
}

/// `signed`, the order given as `[side, price, size, tick]`, its body optionally claiming
/// another signer.
fn signed_as(
    k: &PrivateKey,
    signer_override: Option<&str>,
    token: &str,
    [side, price, size, tick]: [&str; 4],
) -> SignedOrder {
    let input: OrderInput = serde_json::from_value(serde_json::json!({
        "side": side, "kind": "limit", "price": price, "size": size, "token_id": token,
        "tick_size": tick, "salt": SALT.fetch_add(1, Ordering::Relaxed),
        "timestamp_ms": 1_790_000_000_000u64 + SALT.load(Ordering::Relaxed),
    }))
    .unwrap();
    let mut o = input.into_spec().unwrap().sign(k).unwrap();
    if let Some(s) = signer_override {
        // The body claims another signer than the key that signed.
        o.signer_text = s.to_string();
        o.maker_text = s.to_string();
        o.order.signer = ringbolt_exec::keys::Address::parse(s).unwrap();
        o.order.maker = o.order.signer;
    }
    o
}

fn intent(side: Side, price_e8: i64, size_e8: i64) -> OrderTicket {
    OrderTicket {
        instrument: 7,
        side,
        price_e8,
        size_e8,
        notional_micros: (price_e8 as i128 * size_e8 as i128 / 10i128.pow(10)) as u64,
    }
}

/// Submits a signed 10-share buy (size 10e8) at `price_e8`; its client order id.
fn submit_buy(c: &mut OrderClient, o: &SignedOrder, price_e8: i64, recs: &mut Vec<Record>) -> u64 {
    c.submit_signed(o, intent(Side::Buy, price_e8, 1_000_000_000), recs)
        .unwrap()
}

/// Signs a 10-share buy of `token` at `price` (0.01 tick) with `k` and submits it; its client
/// order id.
fn sign_and_buy(
    c: &mut OrderClient,
    (k, token): (&PrivateKey, &str),
    price: &str,
    price_e8: i64,
    recs: &mut Vec<Record>,
) -> u64 {
    let o = signed(k, token, "BUY", price, "10", "0.01");
    submit_buy(c, &o, price_e8, recs)
}

fn transitions(recs: &[Record], coid: u64) -> Vec<(OrderState, OrderState, u16, u16)> {
    recs.iter()
        .filter_map(|r| r.body_as::<OrderTransition>())
        .filter(|t| t.client_order_id == coid)
        .map(|t| {
            (
                OrderState::from_u8(t.from_state).unwrap(),
                OrderState::from_u8(t.to_state).unwrap(),
                t.error_class,
                t.http_status,
            )
        })
        .collect()
}

fn outcome_of(f: Finished) -> Outcome {
    match f {
        Finished::Orders(mut v) => v.remove(0).1,
        other => panic!("not an order outcome: {other:?}"),
    }
}

fn rejected_class(f: Finished) -> (ErrorClass, u16, String) {
    match outcome_of(f) {
        Outcome::Rejected {
            class,
            http_status,
            message,
        } => (class, http_status, message),
        other => panic!("accepted: {other:?}"),
    }
}

#[test]
fn paper_pool_order_is_rejected_by_the_venue_for_size_zero_and_wire_logged() {
    let emu = Emu::start();
    let token = emu.next_window_token();
    let k = Arc::new(key(KEY_A));
    let (mut c, creds) = client(&emu, &k, paper_gate());
    let mut cfg = PoolConfig::default_198();
    cfg.levels_each_side = 1;
    cfg.sizes.truncate(1);
    let pool = PresignedPool::new(
        cfg,
        k.clone(),
        creds.api_key.clone(),
        vec![PoolToken {
            token_id: token.clone(),
            tick: "0.01".parse::<TickSize>().unwrap(),
            neg_risk: false,
            exchange_version: 2,
        }],
    )
    .unwrap();
    pool.set_center(0, 40);
    pool.refill_once().unwrap();
    let mut recs = Vec::new();
    let coid = c
        .submit(
            &pool,
            SlotKey::new(0, OrderSide::Buy, 40, 0),
            intent(Side::Buy, 40_000_000, 500_000_000),
            &mut recs,
        )
        .unwrap();
    // Where the submit's time went, in order: decided, bytes ready, handed to the ring, returned.
    let s = c.last_submit_stamps();
    assert!(
        s.decided_ns > 0
            && s.decided_ns <= s.bytes_ready_ns
            && s.bytes_ready_ns <= s.handed_ns
            && s.handed_ns <= s.sent_ns,
        "{s:?}"
    );
    let f = c
        .wait_for(coid, WAIT, &mut recs)
        .unwrap()
        .expect("response");
    let (class, status, msg) = rejected_class(f);
    assert_eq!((class, status), (ErrorClass::BelowMinSize, 400), "{msg}");
    assert!(msg.contains("Size (0) lower than the minimum: 5"), "{msg}");
    let t = transitions(&recs, coid);
    assert_eq!(
        t.iter().map(|x| x.1).collect::<Vec<_>>(),
        [
            OrderState::Initialized,
            OrderState::Submitted,
            OrderState::Rejected
        ]
    );
    assert_eq!(t[2].2, ErrorClass::BelowMinSize as u16);
    assert_eq!(t[2].3, 400);
    assert!(
        recs.iter()
            .all(|r| r.body_as::<OrderTransition>().unwrap().paper == 1)
    );
    // The emulator stamped the order's arrival with its salt and token.
    let log = emu.http("GET", "/wirelog");
    let orders = log["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 1, "{log}");
    assert_eq!(orders[0]["token_id"], token.as_str());
    assert_eq!(orders[0]["side"], "BUY");
    assert!(orders[0]["recv_ns"].as_i64().unwrap() > 1_700_000_000_000_000_000);
    assert!(
        orders[0]["recv_ns"].as_i64().unwrap() >= s.handed_ns,
        "the venue got the order before it was handed to the ring: {s:?} {log}"
    );
    assert!(orders[0]["salt"].as_str().unwrap().parse::<u64>().is_ok());
    c.shutdown();
}

#[test]
fn paper_mode_cannot_send_a_non_zero_order() {
    let (emu, token, k, mut c) = key_a_session(paper_gate());
    let o = signed(&k, &token, "BUY", "0.30", "10", "0.01");
    let mut recs = Vec::new();
    let e = c
        .submit_signed(&o, intent(Side::Buy, 30_000_000, 1_000_000_000), &mut recs)
        .unwrap_err();
    assert!(matches!(e, SubmitError::PaperGuard(_)), "{e}");
    let coid = recs[0]
        .body_as::<OrderTransition>()
        .unwrap()
        .client_order_id;
    let t = transitions(&recs, coid);
    assert_eq!(t.last().unwrap().1, OrderState::Rejected);
    assert_eq!(t.last().unwrap().2, LOCAL_PAPER_GUARD);
    // A batch with one non-zero order is refused whole.
    let mut zero = signed(&k, &token, "BUY", "0.30", "0", "0.01");
    zero.post_only = false;
    let e = c
        .submit_signed_batch(
            &[zero, o.clone()],
            &[
                intent(Side::Buy, 30_000_000, 0),
                intent(Side::Buy, 30_000_000, 1),
            ],
            &mut recs,
        )
        .unwrap_err();
    assert!(matches!(e, SubmitError::PaperGuard(_)), "{e}");
    // Nothing reached the venue.
    c.poll(Duration::from_millis(50), &mut recs).unwrap();
    assert_eq!(emu.clob_stats()["orders_received"], 0);
}

#[test]
fn live_orders_ack_match_batch_cancel_and_cancel_all() {
    let (emu, token, k, mut c) = key_a_session(live_gate());
    let mut recs = Vec::new();
    // Resting BUY at 0.30 (best ask ~0.51): live.
    let o = signed(&k, &token, "BUY", "0.30", "10", "0.01");
    let coid = submit_buy(&mut c, &o, 30_000_000, &mut recs);
    let out = outcome_of(c.wait_for(coid, WAIT, &mut recs).unwrap().unwrap());
    match &out {
        Outcome::Accepted {
            order_id, status, ..
        } => {
            assert_eq!(*status, ringbolt_exec::classify::AcceptedStatus::Live);
            assert_eq!(*order_id, ringbolt_exec::hex::encode_0x(&o.digest));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.core().order(coid).unwrap().state, OrderState::Acked);
    // Marketable BUY at 0.60: matched, FILLED.
    let m = signed(&k, &token, "BUY", "0.60", "5", "0.01");
    let mc = c
        .submit_signed(&m, intent(Side::Buy, 60_000_000, 500_000_000), &mut recs)
        .unwrap();
    let out = outcome_of(c.wait_for(mc, WAIT, &mut recs).unwrap().unwrap());
    assert!(
        matches!(
            out,
            Outcome::Accepted {
                status: ringbolt_exec::classify::AcceptedStatus::Matched,
                ..
            }
        ),
        "{out:?}"
    );
    // No fill is assumed from `status: matched`: fills come from the user channel's trades
    // (tests/trade_live.rs), which this client does not read.
    assert_eq!(c.core().order(mc).unwrap().state, OrderState::Acked);
    // Cancel the resting order by client order id.
    let tag = c.cancel_client_order(coid).unwrap();
    match c.wait_for(tag, WAIT, &mut recs).unwrap().unwrap() {
        Finished::Cancelled { ours, .. } => assert_eq!(ours, vec![coid]),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.core().order(coid).unwrap().state, OrderState::Cancelled);
    // A batch of three: two live, one size-zero rejected.
    let batch = [
        signed(&k, &token, "BUY", "0.20", "5", "0.01"),
        // The venue checks balances: key A holds the 5 shares it just bought.
        signed(&k, &token, "SELL", "0.80", "5", "0.01"),
        signed(&k, &token, "BUY", "0.21", "0", "0.01"),
    ];
    let intents = [
        intent(Side::Buy, 20_000_000, 500_000_000),
        intent(Side::Sell, 80_000_000, 500_000_000),
        intent(Side::Buy, 21_000_000, 0),
    ];
    let (tag, coids) = c.submit_signed_batch(&batch, &intents, &mut recs).unwrap();
    match c.wait_for(tag, WAIT, &mut recs).unwrap().unwrap() {
        Finished::Orders(v) => {
            assert_eq!(v.len(), 3);
            assert!(matches!(v[0].1, Outcome::Accepted { .. }), "{v:?}");
            assert!(matches!(v[1].1, Outcome::Accepted { .. }), "{v:?}");
            assert!(
                matches!(
                    v[2].1,
                    Outcome::Rejected {
                        class: ErrorClass::BelowMinSize,
                        ..
                    }
                ),
                "{v:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        c.core().order(coids[2]).unwrap().state,
        OrderState::Rejected
    );
    // cancel-all takes the two resting ones.
    let tag = c.cancel_all().unwrap();
    match c.wait_for(tag, WAIT, &mut recs).unwrap().unwrap() {
        Finished::Cancelled { mut ours, .. } => {
            ours.sort_unstable();
            assert_eq!(ours, vec![coids[0], coids[1]]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(emu.clob_stats()["open_orders"], 0);
    // Every order's records replay to its final state.
    for id in [coid, mc, coids[0], coids[1], coids[2]] {
        let own: Vec<Record> = recs
            .iter()
            .filter(|r| r.body_as::<OrderTransition>().unwrap().client_order_id == id)
            .copied()
            .collect();
        let replayed = ringbolt_exec::lifecycle::Order::replay(&own).unwrap();
        assert_eq!(replayed.state, c.core().order(id).unwrap().state);
    }
}

#[test]
fn every_rejection_class_comes_back_typed() {
    let emu = Emu::start();
    let token = emu.next_window_token();
    let a = key(KEY_A);
    let b = key(KEY_B);
    let (mut c, creds_a) = client(&emu, &a, live_gate());
    let mut recs = Vec::new();
    let one = |c: &mut OrderClient, o: &SignedOrder| {
        let mut recs = Vec::new();
        let coid = submit_buy(c, o, 30_000_000, &mut recs);
        rejected_class(c.wait_for(coid, WAIT, &mut recs).unwrap().unwrap())
    };
    // Signed by B, claiming A as signer: invalid signature.
    let forged = signed_as(
        &b,
        Some(&a.address().to_string()),
        &token,
        ["BUY", "0.30", "10", "0.01"],
    );
    let (class, status, msg) = one(&mut c, &forged);
    assert_eq!(
        (class, status, msg.as_str()),
        (ErrorClass::InvalidSignature, 400, "invalid signature")
    );
    // Validly signed by B, sent with A's API key.
    let other = signed(&b, &token, "BUY", "0.30", "10", "0.01");
    let (class, status, _) = one(&mut c, &other);
    assert_eq!((class, status), (ErrorClass::SignerNotApiKey, 400));
    // Off the venue's 0.01 tick (the client believed 0.001).
    let off = signed(&a, &token, "BUY", "0.305", "10", "0.001");
    let (class, status, _) = one(&mut c, &off);
    assert_eq!((class, status), (ErrorClass::TickSize, 400));
    // Below the minimum size.
    let small = signed(&a, &token, "BUY", "0.30", "2", "0.01");
    let (class, _, msg) = one(&mut c, &small);
    assert_eq!(class, ErrorClass::BelowMinSize, "{msg}");
    // Unknown token.
    let unknown = signed(&a, "12345", "BUY", "0.30", "10", "0.01");
    assert_eq!(one(&mut c, &unknown).0, ErrorClass::InvalidToken);
    // The same signed order twice.
    let dup = signed(&a, &token, "BUY", "0.31", "10", "0.01");
    let coid = submit_buy(&mut c, &dup, 31_000_000, &mut recs);
    assert!(matches!(
        outcome_of(c.wait_for(coid, WAIT, &mut recs).unwrap().unwrap()),
        Outcome::Accepted { .. }
    ));
    assert_eq!(one(&mut c, &dup).0, ErrorClass::Duplicated);
    // 429 and 503 injected.
    emu.fault("kind=http429");
    let fresh = signed(&a, &token, "BUY", "0.30", "10", "0.01");
    assert_eq!(
        one(&mut c, &fresh),
        (ErrorClass::RateLimited, 429, "Too Many Requests".into())
    );
    // The 429 started a back-off: the gate refuses new orders until it passes (no resend).
    let mut refused = Vec::new();
    assert!(matches!(
        c.submit_signed(
            &fresh,
            intent(Side::Buy, 30_000_000, 1_000_000_000),
            &mut refused
        ),
        Err(SubmitError::Refused {
            reason: ringbolt_exec::risk::RiskError::Backoff { .. },
            ..
        })
    ));
    // This test checks classification: end the back-off instead of waiting it out.
    c.gate_mut().clear_backoff();
    emu.fault("kind=http503");
    let (class, status, _) = one(&mut c, &fresh);
    assert_eq!((class, status), (ErrorClass::TradingDisabled, 503));
    c.gate_mut().clear_backoff();
    // A V1 order body (old struct: taker/nonce/feeRateBps, no timestamp/metadata/builder).
    let v1 = format!(
        r#"{{"order":{{"salt":1,"maker":"{a}","signer":"{a}","taker":"0x0000000000000000000000000000000000000000","tokenId":"{token}","makerAmount":"3000000","takerAmount":"10000000","expiration":"0","nonce":"0","feeRateBps":"0","side":"BUY","signatureType":0,"signature":"0x00"}},"owner":"{k}","orderType":"GTC"}}"#,
        a = a.address(),
        k = creds_a.api_key
    );
    let signer = L2Signer::new(&a.address(), creds_a.clone()).unwrap();
    let h = signer.headers(1_790_000_000, "POST", "/order", v1.as_bytes());
    let req = HttpRequest {
        method: "POST",
        path: "/order".into(),
        headers: vec![
            ("POLY_ADDRESS", h.address),
            ("POLY_SIGNATURE", h.signature),
            ("POLY_TIMESTAMP", h.timestamp),
            ("POLY_API_KEY", h.api_key),
            ("POLY_PASSPHRASE", h.passphrase),
            ("content-type", "application/json".into()),
        ],
        body: v1.into_bytes(),
    };
    let tag = c.send_request(&req, Pending::Other).unwrap();
    let (status, body) = match c.wait_for(tag, WAIT, &mut recs).unwrap().unwrap() {
        Finished::Raw(s, b) => (s, b),
        other => panic!("{other:?}"),
    };
    let out = classify_one(status, &body);
    assert!(
        matches!(
            out,
            Outcome::Rejected {
                class: ErrorClass::OrderVersionMismatch,
                http_status: 400,
                ..
            }
        ),
        "{out:?}"
    );
    // Bad HMAC: a client holding the wrong secret.
    let mut bad = creds_a.clone();
    bad = ApiCreds::new(
        bad.api_key.clone(),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into(),
        bad.passphrase().to_string(),
    );
    let mut c2 = OrderClient::connect(
        &emu.cfg(),
        L2Signer::new(&a.address(), bad).unwrap(),
        live_gate(),
    )
    .unwrap();
    let o = signed(&a, &token, "BUY", "0.30", "10", "0.01");
    let coid = submit_buy(&mut c2, &o, 30_000_000, &mut recs);
    let (class, status, msg) = rejected_class(c2.wait_for(coid, WAIT, &mut recs).unwrap().unwrap());
    assert_eq!(
        (class, status, msg.as_str()),
        (
            ErrorClass::Unauthorized,
            401,
            "Unauthorized/Invalid api key"
        )
    );
    assert!(emu.clob_stats()["auth_failures"].as_u64().unwrap() >= 1);
}

#[test]
fn api_keys_are_created_then_derived_with_l1_headers() {
    let emu = Emu::start();
    let k = key(KEY_B);
    let first = create_or_derive_api_creds(&emu.cfg(), &k, 137, 0).unwrap();
    // The second call's create fails (key exists) and derives the same credentials.
    let again = create_or_derive_api_creds(&emu.cfg(), &k, 137, 0).unwrap();
    assert_eq!(first.api_key, again.api_key);
    assert_eq!(first.passphrase(), again.passphrase());
    // Another nonce, another key.
    let other = create_or_derive_api_creds(&emu.cfg(), &k, 137, 1).unwrap();
    assert_ne!(first.api_key, other.api_key);
    // L1 headers signed for another chain do not recover to the address: refused.
    let e = create_or_derive_api_creds(&emu.cfg(), &k, 80002, 0).unwrap_err();
    assert!(e.to_string().contains("401"), "{e}");
}

#[test]
fn latency_goaway_and_disconnect_end_in_definite_states_without_resending() {
    let (emu, token, k, mut c) = key_a_session(live_gate());
    let mut recs = Vec::new();
    // Latency injection delays the answer.
    emu.fault("kind=latency&ms=300");
    let o = signed(&k, &token, "BUY", "0.30", "10", "0.01");
    let t0 = Instant::now();
    let coid = submit_buy(&mut c, &o, 30_000_000, &mut recs);
    c.wait_for(coid, WAIT, &mut recs).unwrap().unwrap();
    assert!(
        t0.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t0.elapsed()
    );
    // An order in flight when the connection is reset: REJECTED (connection lost), not resent.
    emu.fault("kind=latency&ms=1500");
    let lc = sign_and_buy(&mut c, (&k, &token), "0.29", 29_000_000, &mut recs);
    std::thread::sleep(Duration::from_millis(300));
    emu.fault("kind=disconnect");
    let f = c.wait_for(lc, WAIT, &mut recs).unwrap().unwrap();
    assert_eq!(f, Finished::Lost(vec![lc]));
    let t = transitions(&recs, lc);
    assert_eq!(t.last().unwrap().1, OrderState::Rejected);
    assert_eq!(t.last().unwrap().2, LOCAL_CONN_LOST);
    emu.fault("kind=latency&ms=0");
    // The client reconnects by itself on the next polls.
    let end = Instant::now() + WAIT;
    while !c.is_connected() || c.stats().reconnects == 0 {
        c.poll(Duration::from_millis(5), &mut recs).unwrap();
        assert!(Instant::now() < end, "no reconnect");
    }
    assert!(
        c.events()
            .any(|e| matches!(e, ClientEvent::Reconnected { .. }))
    );
    let c2 = sign_and_buy(&mut c, (&k, &token), "0.28", 28_000_000, &mut recs);
    assert!(matches!(
        outcome_of(c.wait_for(c2, WAIT, &mut recs).unwrap().unwrap()),
        Outcome::Accepted { .. }
    ));
    // GOAWAY: the in-flight order still gets its answer, then the client reconnects.
    emu.fault("kind=latency&ms=400");
    let gc = sign_and_buy(&mut c, (&k, &token), "0.27", 27_000_000, &mut recs);
    std::thread::sleep(Duration::from_millis(100));
    emu.fault("kind=goaway");
    let f = c.wait_for(gc, WAIT, &mut recs).unwrap().unwrap();
    assert!(matches!(outcome_of(f), Outcome::Accepted { .. }));
    emu.fault("kind=latency&ms=0");
    let end = Instant::now() + WAIT;
    while c.stats().reconnects < 2 {
        c.poll(Duration::from_millis(5), &mut recs).unwrap();
        assert!(Instant::now() < end, "no reconnect after GOAWAY");
    }
    let c3 = sign_and_buy(&mut c, (&k, &token), "0.26", 26_000_000, &mut recs);
    assert!(matches!(
        outcome_of(c.wait_for(c3, WAIT, &mut recs).unwrap().unwrap()),
        Outcome::Accepted { .. }
    ));
    // Never resent: every salt the emulator saw arrived once.
    let log = emu.http("GET", "/wirelog");
    let salts: Vec<&str> = log["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["salt"].as_str().unwrap())
        .collect();
    let mut uniq = salts.clone();
    uniq.sort_unstable();
    uniq.dedup();
    assert_eq!(uniq.len(), salts.len(), "{salts:?}");
}

#[test]
fn heartbeats_reach_the_venue_and_gamma_discovery_matches_the_market_windows() {
    let emu = Emu::start();
    let k = key(KEY_A);
    let c0 = creds(&emu, &k);
    let mut cfg = emu.cfg();
    cfg.heartbeat_interval = Some(Duration::from_millis(50));
    let signer = L2Signer::new(&k.address(), c0).unwrap();
    let mut c = OrderClient::connect(&cfg, signer, paper_gate()).unwrap();
    let mut recs = Vec::new();
    let end = Instant::now() + WAIT;
    while emu.clob_stats()["heartbeats"].as_u64().unwrap() < 2 {
        c.poll(Duration::from_millis(20), &mut recs).unwrap();
        assert!(Instant::now() < end, "no heartbeats");
    }
    assert!(c.stats().heartbeats_sent >= 2);
    assert!(c.events().any(|e| matches!(
        e,
        ClientEvent::Finished {
            what: Finished::Heartbeat(200),
            ..
        }
    )));
    // Gamma on the CLOB port: the same windows the market emulator serves.
    let cur = current_window(&emu.0.windows());
    let req = HttpRequest {
        method: "GET",
        path: format!("/markets?slug={}", cur["slug"].as_str().unwrap()),
        headers: vec![],
        body: vec![],
    };
    let tag = c.send_request(&req, Pending::Other).unwrap();
    let (status, body) = match c.wait_for(tag, WAIT, &mut recs).unwrap().unwrap() {
        Finished::Raw(s, b) => (s, b),
        other => panic!("{other:?}"),
    };
    assert_eq!(status, 200);
    let m: Value = serde_json::from_slice(&body).unwrap();
    let ids: Vec<String> = serde_json::from_str(m[0]["clobTokenIds"].as_str().unwrap()).unwrap();
    assert_eq!(
        ids,
        [
            cur["up_token"].as_str().unwrap(),
            cur["down_token"].as_str().unwrap()
        ]
    );
}
