#![allow(clippy::expect_used, clippy::unwrap_used)]
//! The hot path allocates nothing: a counting global allocator counts this thread's allocations
//! around `PresignedPool::take` (the refill thread's allocations are not counted), whether the L2
//! signature is copied from the pool's table for this second or computed.

use std::sync::Arc;

use ringbolt_exec::amounts::{OrderSide, TickSize};
use ringbolt_exec::pool::{PoolConfig, PoolToken, PresignedPool, SlotKey};
use ringbolt_exec::request::RequestBuf;
use ringbolt_exec::{ApiCreds, L2Signer, PrivateKey};
use ringbolt_testkit::{CountingAlloc, thread_allocs};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

#[test]
fn take_does_not_allocate() {
    let key = Arc::new(
        PrivateKey::from_hex("0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
            .unwrap(),
    );
    let creds = ApiCreds::new("k".into(), "c2VjcmV0".into(), "p".into());
    let signer = L2Signer::new(&key.address(), creds).unwrap();
    let mut cfg = PoolConfig::default_198();
    cfg.levels_each_side = 3;
    let token = PoolToken {
        token_id: "1234567890".into(),
        tick: TickSize::T0_01,
        neg_risk: false,
        exchange_version: 2,
    };
    let pool = Arc::new(PresignedPool::new(cfg, key, "k".into(), vec![token]).unwrap());
    pool.set_center(0, 50);
    pool.presign_auth(signer.clone());
    pool.refill_once().unwrap();
    let mut buf = RequestBuf::new(&signer);
    pool.warm_thread();
    // Keep the refill thread running concurrently (its allocations are on its own thread).
    let _refill = pool.spawn_refill().unwrap();
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let before = thread_allocs();
    let (mut taken, mut precomputed) = (0, 0);
    for side in [OrderSide::Buy, OrderSide::Sell] {
        for price in 47..=53 {
            for size in 0..3 {
                // Sizes 0 and 1 at this second (the table's, unless the second turned since the
                // refill), size 2 long ago (always computed).
                let ts = if size < 2 { now_s } else { 1_773_307_200 };
                if let Ok(t) = pool.take(&signer, SlotKey::new(0, side, price, size), ts, &mut buf)
                {
                    taken += 1;
                    precomputed += u32::from(t.auth_precomputed);
                    assert!(!buf.body().is_empty());
                }
            }
        }
    }
    let after = thread_allocs();
    assert!(taken > 0);
    assert!(
        precomputed > 0 && precomputed < taken,
        "{precomputed} of {taken}"
    );
    assert_eq!(after - before, 0, "{taken} hot-path takes allocated");
    // The counter works: an allocation is seen.
    let v: Vec<u8> = Vec::with_capacity(10);
    assert!(thread_allocs() > after);
    drop(v);
}
