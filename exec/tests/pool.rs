#![allow(clippy::expect_used, clippy::unwrap_used)]
//! The pre-signed pool: paper zeroing, O(1) single-use slots, the per-request L2 HMAC,
//! refills that re-sign only what was used, and the background refill thread.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ringbolt_exec::amounts::{Decimal, OrderSide, TickSize};
use ringbolt_exec::eip712::OrderDomain;
use ringbolt_exec::pool::{Miss, PoolConfig, PoolToken, PresignedPool, SlotKey};
use ringbolt_exec::request::RequestBuf;
use ringbolt_exec::risk::{LiveOptIn, TradingMode};
use ringbolt_exec::{ApiCreds, L2Signer, PrivateKey, recover};
use serde_json::Value;

const KEY: &str = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
const TOKEN: &str =
    "104239898038807136052399800151408521467737075933964991162589336683346093173875";

fn creds() -> ApiCreds {
    ApiCreds::new(
        "3b6a2f4e-1c9d-4e7a-9b2f-5d8c0e1a7f63".into(),
        "c2VjcmV0LWtleS1mb3ItcmluZ2JvbHQtdGVzdHMtMDEyMzQ1Njc4OWFiY2RlZg==".into(),
        "pass".into(),
    )
}

fn small_cfg(mode: TradingMode) -> PoolConfig {
    let mut c = PoolConfig::default_198();
    c.levels_each_side = 2;
    c.sizes = vec![
        Decimal::parse("5").unwrap(),
        Decimal::parse("12.5").unwrap(),
    ];
    c.mode = mode;
    c
}

fn pool(mode: TradingMode) -> (Arc<PresignedPool>, L2Signer, Arc<PrivateKey>) {
    let key = Arc::new(PrivateKey::from_hex(KEY).unwrap());
    let signer = L2Signer::new(&key.address(), creds()).unwrap();
    let token = PoolToken {
        token_id: TOKEN.into(),
        tick: TickSize::T0_01,
        neg_risk: false,
        exchange_version: 2,
    };
    let p = PresignedPool::new(small_cfg(mode), key.clone(), creds().api_key, vec![token]).unwrap();
    (Arc::new(p), signer, key)
}

fn body_json(buf: &RequestBuf) -> Value {
    serde_json::from_slice(buf.body()).unwrap()
}

#[test]
fn paper_pool_signs_size_zero_and_live_pool_real_sizes() {
    let (p, signer, key) = pool(TradingMode::Paper);
    assert!(matches!(
        p.take(
            &signer,
            SlotKey::new(0, OrderSide::Buy, 50, 0),
            1,
            &mut RequestBuf::new(&signer)
        ),
        Err(Miss::NotReady)
    ));
    p.set_center(0, 50);
    assert_eq!(p.refill_once().unwrap(), 1);
    let g = p.grid(0).unwrap();
    assert_eq!(g.slots().len(), 2 * 5 * 2);
    let domain = OrderDomain::new(137, 2, false).unwrap();
    let mut buf = RequestBuf::new(&signer);
    for s in g.slots() {
        p.take(
            &signer,
            SlotKey::new(0, s.side, s.price_ticks, s.size_index),
            1_773_307_200,
            &mut buf,
        )
        .unwrap();
        let v = body_json(&buf);
        assert_eq!(v["order"]["makerAmount"], "0", "paper orders are size zero");
        assert_eq!(v["order"]["takerAmount"], "0");
        let sig = ringbolt_exec::hex::decode_fixed::<65>(
            v["order"]["signature"].as_str().unwrap(),
            "sig",
        )
        .unwrap();
        assert_eq!(recover(&s.digest, &sig).unwrap(), key.address());
    }
    let _ = domain;

    let (live, signer, _) = pool(TradingMode::live(LiveOptIn::operator_passed_live_flag()));
    live.set_center(0, 40);
    live.refill_once().unwrap();
    let mut buf = RequestBuf::new(&signer);
    live.take(
        &signer,
        SlotKey::new(0, OrderSide::Sell, 41, 1),
        1_773_307_200,
        &mut buf,
    )
    .unwrap();
    let v = body_json(&buf);
    assert_eq!(v["order"]["makerAmount"], "12500000");
    assert_eq!(v["order"]["takerAmount"], "5125000");
    assert_eq!(v["order"]["side"], "SELL");
}

#[test]
fn slots_are_single_use_and_headers_match_the_signer() {
    let (p, signer, _) = pool(TradingMode::Paper);
    p.set_center(0, 50);
    p.refill_once().unwrap();
    let mut buf = RequestBuf::new(&signer);
    let t = p
        .take(
            &signer,
            SlotKey::new(0, OrderSide::Buy, 51, 1),
            1_773_307_201,
            &mut buf,
        )
        .unwrap();
    assert_eq!(buf.method(), "POST");
    assert_eq!(buf.path(), "/order");
    let expect = signer.headers(1_773_307_201, "POST", "/order", buf.body());
    let h = buf.headers();
    assert_eq!(h[0], ("POLY_ADDRESS", expect.address.as_bytes()));
    assert_eq!(h[1], ("POLY_SIGNATURE", expect.signature.as_bytes()));
    assert_eq!(h[2], ("POLY_TIMESTAMP", b"1773307201".as_slice()));
    assert_eq!(h[3], ("POLY_API_KEY", expect.api_key.as_bytes()));
    assert_eq!(h[4], ("POLY_PASSPHRASE", b"pass".as_slice()));
    assert_eq!(
        body_json(&buf)["owner"],
        "3b6a2f4e-1c9d-4e7a-9b2f-5d8c0e1a7f63"
    );
    for (token, cents, level, miss) in [
        (0, 51, 1, Miss::Taken),
        (0, 60, 0, Miss::OutOfGrid),
        (0, 50, 2, Miss::OutOfGrid),
        (1, 50, 0, Miss::NoToken),
    ] {
        let key = SlotKey::new(token, OrderSide::Buy, cents, level);
        let got = p.take(&signer, key, 1, &mut buf).err();
        assert_eq!(got, Some(miss), "token {token} at {cents}, level {level}");
    }
    // A refill re-signs only the used slot (new salt → new order hash) and reuses the rest.
    let before = p.grid(0).unwrap();
    let signed_before = p.stats.signed.load(std::sync::atomic::Ordering::Relaxed);
    p.refill_once().unwrap();
    let after = p.grid(0).unwrap();
    assert_eq!(
        p.stats.signed.load(std::sync::atomic::Ordering::Relaxed) - signed_before,
        1
    );
    let changed: Vec<_> = before
        .slots()
        .iter()
        .zip(after.slots())
        .filter(|(a, b)| a.digest != b.digest)
        .collect();
    assert_eq!(changed.len(), 1);
    assert_ne!(changed[0].1.digest, t.digest);
    p.take(&signer, SlotKey::new(0, OrderSide::Buy, 51, 1), 1, &mut buf)
        .unwrap();
}

#[test]
fn background_refill_follows_the_centre() {
    let (p, signer, _) = pool(TradingMode::Paper);
    let _h = p.spawn_refill().unwrap();
    p.set_center(0, 30);
    let deadline = Instant::now() + Duration::from_secs(60);
    while p.grid(0).is_none_or(|g| g.center_ticks != 30) {
        assert!(
            Instant::now() < deadline,
            "refill thread did not sign a grid"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    p.set_center(0, 70);
    while p.grid(0).is_none_or(|g| g.center_ticks != 70) {
        assert!(
            Instant::now() < deadline,
            "refill thread did not move the grid"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut buf = RequestBuf::new(&signer);
    p.take(&signer, SlotKey::new(0, OrderSide::Buy, 72, 0), 1, &mut buf)
        .unwrap();
    // Grid edges clamp inside [tick, 1 - tick].
    p.set_center(0, 99);
    while p.grid(0).is_none_or(|g| g.center_ticks != 99) {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    p.take(
        &signer,
        SlotKey::new(0, OrderSide::Sell, 99, 0),
        1,
        &mut buf,
    )
    .unwrap();
    assert!(matches!(
        p.take(
            &signer,
            SlotKey::new(0, OrderSide::Sell, 100, 0),
            1,
            &mut buf
        ),
        Err(Miss::OutOfGrid)
    ));
}

#[test]
fn no_signed_order_is_handed_out_twice_under_concurrent_refill() {
    let (p, signer, _) = pool(TradingMode::Paper);
    p.set_center(0, 50);
    p.refill_once().unwrap();
    let _h = p.spawn_refill().unwrap();
    let mut buf = RequestBuf::new(&signer);
    let mut seen = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_millis(1500);
    let mut i = 0u32;
    let mut takes = 0u32;
    while Instant::now() < deadline {
        i = i.wrapping_add(7);
        takes += 1;
        // The centre moves now and then: the refill carries slots over to the moved grid
        // while this thread takes from the old one.
        if takes.is_multiple_of(64) {
            p.set_center(0, 49 + (takes / 64) % 3);
        }
        let side = if i.is_multiple_of(2) {
            OrderSide::Buy
        } else {
            OrderSide::Sell
        };
        let key = SlotKey::new(0, side, 48 + i % 5, (i % 2) as u16);
        if let Ok(t) = p.take(&signer, key, 1, &mut buf) {
            assert!(
                seen.insert(t.digest),
                "order {:?} handed out twice",
                t.digest
            );
        }
    }
    assert!(seen.len() > 20, "only {} takes", seen.len());
}

/// Refills until one pass ran inside a single wall-clock second; returns that second and the
/// signature tables that pass made.
fn refill_within_one_second(p: &PresignedPool) -> (u64, u64) {
    use std::sync::atomic::Ordering::Relaxed;
    let now_s = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    loop {
        let (before, tables) = (now_s(), p.stats.auth_tables.load(Relaxed));
        p.refill_once().unwrap();
        if now_s() == before {
            return (before, p.stats.auth_tables.load(Relaxed) - tables);
        }
    }
}

/// With the client's signer handed over, each refill makes every grid's L2 signatures for this
/// second and the next; `take` copies them — exactly the headers signing at take time gives —
/// and signs itself for any other second, or for a signer that is not the one handed over.
#[test]
fn presigned_auth_is_the_signature_take_would_make() {
    let (p, signer, key) = pool(TradingMode::Paper);
    p.set_center(0, 50);
    p.presign_auth(signer.clone());
    // Counted over every pass of the first call: a pass whose clock read fell in the next second
    // (and so was retried) may already have made this second's and the next one's.
    let tables = || {
        p.stats
            .auth_tables
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let before = tables();
    let (first, _) = refill_within_one_second(&p);
    let made = tables() - before;
    assert!(
        made >= 2,
        "{made} tables: one grid, this second and the next"
    );
    // Same grid: a pass in the same second makes nothing, one second later only the next one
    // (at most both, however late).
    let (second, made) = refill_within_one_second(&p);
    assert!(
        made <= (second - first).min(2),
        "{made} tables: first {first}, then {second}"
    );
    let other = L2Signer::new(&key.address(), creds()).unwrap();
    assert_ne!(other.id(), signer.id());
    assert_eq!(signer.clone().id(), signer.id());
    let mut buf = RequestBuf::new(&signer);
    let cases = [
        (second, &signer, true),
        (second + 1, &signer, true),
        (second + 2, &signer, false),
        (second - 1, &signer, false),
        (second, &other, false),
    ];
    let mut digests = Vec::new();
    for (n, (ts, who, precomputed)) in cases.into_iter().enumerate() {
        let price = 48 + n as u32;
        let t = p
            .take(who, SlotKey::new(0, OrderSide::Buy, price, 0), ts, &mut buf)
            .unwrap();
        assert_eq!(t.auth_precomputed, precomputed, "case {n}: second {ts}");
        let expect = who.headers(ts, "POST", "/order", buf.body());
        let h = buf.headers();
        assert_eq!(
            h[1],
            ("POLY_SIGNATURE", expect.signature.as_bytes()),
            "case {n}"
        );
        assert_eq!(h[2].1, ts.to_string().as_bytes(), "case {n}");
        digests.push(t.digest);
    }
    // The used slots are re-signed into a new grid, whose tables the same pass makes.
    let (second, made) = refill_within_one_second(&p);
    assert!(made >= 1);
    let key = SlotKey::new(0, OrderSide::Buy, 48, 0);
    let t = take_presigned(&p, &signer, key, second, &mut buf);
    assert!(!digests.contains(&t.digest), "a re-signed order");
}

/// Takes `key` at `second`, which must find its L2 signature ready-made, equal to signing the
/// request at take time.
fn take_presigned(
    p: &PresignedPool,
    signer: &L2Signer,
    key: SlotKey,
    second: u64,
    buf: &mut RequestBuf,
) -> ringbolt_exec::pool::Taken {
    let t = p.take(signer, key, second, buf).unwrap();
    assert!(t.auth_precomputed, "{key:?}: no ready-made signature");
    let expect = signer.headers(second, "POST", "/order", buf.body());
    assert_eq!(buf.headers()[1].1, expect.signature.as_bytes(), "{key:?}");
    t
}

/// A one-tick move of the centre signs only the level that enters the grid (both sides, every
/// size): the slots at prices the new grid still holds keep their signed orders and their
/// ready-made L2 signatures, and a slot carried over is handed out once across both grids.
#[test]
fn a_centre_move_signs_only_the_levels_that_enter() {
    use std::sync::atomic::Ordering::Relaxed;
    let (p, signer, _) = pool(TradingMode::Paper);
    p.presign_auth(signer.clone());
    p.set_center(0, 50);
    refill_within_one_second(&p);
    let old = p.grid(0).unwrap();
    let signed = || p.stats.signed.load(Relaxed);
    let before = signed();
    p.set_center(0, 51);
    let (second, _) = refill_within_one_second(&p);
    let new = p.grid(0).unwrap();
    let sizes = p.config().sizes.len() as u64;
    assert_eq!(
        signed() - before,
        2 * sizes,
        "one entering level, two sides"
    );
    assert_eq!(new.center_ticks, 51);
    assert_eq!(
        new.signed_at_ms, old.signed_at_ms,
        "as old as its oldest slot"
    );
    for s in new.slots() {
        let was = old.slots().iter().find(|o| {
            (o.side, o.price_ticks, o.size_index) == (s.side, s.price_ticks, s.size_index)
        });
        match was {
            Some(o) => assert_eq!(o.digest, s.digest, "carried at {}", s.price_ticks),
            None => assert_eq!(s.price_ticks, 53, "only the top level is new"),
        }
    }
    // A carried slot keeps its signed order, and its ready-made L2 signature is the one signing
    // at take time gives; the entering level's is made for the carried table, not copied.
    let mut buf = RequestBuf::new(&signer);
    let key = (OrderSide::Sell, 50, 1);
    let t = take_presigned(
        &p,
        &signer,
        SlotKey::new(0, key.0, key.1, key.2),
        second,
        &mut buf,
    );
    let was = old
        .slots()
        .iter()
        .find(|o| (o.side, o.price_ticks, o.size_index) == key);
    assert_eq!(Some(t.digest), was.map(|o| o.digest));
    take_presigned(
        &p,
        &signer,
        SlotKey::new(0, OrderSide::Buy, 53, 0),
        second,
        &mut buf,
    );
    // Building the next grid claims the slots it carries over on the grid still published: a
    // `take` there no longer finds them (the levels that leave stay takeable).
    let published = p.grid(0).unwrap();
    p.set_center(0, 52);
    let next = p.build_grid(0, Some(&published)).unwrap().unwrap();
    assert_eq!(next.center_ticks, 52);
    let carried = SlotKey::new(0, OrderSide::Buy, 52, 1);
    let got = p.take(&signer, carried, second, &mut buf).err();
    assert_eq!(
        got,
        Some(Miss::Taken),
        "a carried slot is claimed on the old grid"
    );
    p.take(
        &signer,
        SlotKey::new(0, OrderSide::Buy, 49, 1),
        second,
        &mut buf,
    )
    .unwrap();
    // Moving the centre by the grid's width signs it all again.
    let before = signed();
    p.set_center(0, 80);
    p.refill_once().unwrap();
    assert_eq!(signed() - before, p.config().slots_per_token() as u64);
}
