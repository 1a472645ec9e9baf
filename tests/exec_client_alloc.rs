#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Allocations on the order client's send path, counted per thread (the emulator's tokio worker
//! is not counted): `OrderClient::submit` = risk gate + pool slot + L2 HMAC (0 allocations,
//! `exec/tests/pool_alloc.rs`) + the HTTP/2 request (ringbolt's frame layer: the pre-encoded
//! HPACK block and DATA frame written into the TLS send queue and sealed there). Zero: the
//! figure quoted in docs/notes/exec.md and a regression guard (the `h2` crate path took ~20).

use std::sync::Arc;
use std::time::Duration;

use ringbolt_bus::Side;
use ringbolt_exec::client::{ClientConfig, OrderClient, OrderTicket, create_or_derive_api_creds};
use ringbolt_exec::pool::{PoolConfig, PoolToken, PresignedPool, SlotKey};
use ringbolt_exec::risk::{KillSwitch, RiskGate, RiskLimits, TradingMode};
use ringbolt_exec::{L2Signer, OrderSide, PrivateKey, TickSize};
use ringbolt_testkit::emulator::RunningEmulator;
use ringbolt_testkit::{CountingAlloc, thread_allocs};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

#[test]
fn submit_allocations_are_bounded() {
    let emu = RunningEmulator::clob("exec-alloc");
    let port = emu.clob_port();
    let ca = emu.ca_pem.clone();
    let w = emu.windows();
    let token = w["windows"][0]["up_token"].as_str().unwrap().to_string();

    let key = Arc::new(
        PrivateKey::from_hex("0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
            .unwrap(),
    );
    let ccfg = ClientConfig::emulator(port, ca);
    let creds = create_or_derive_api_creds(&ccfg, &key, 137, 0).unwrap();
    let signer = L2Signer::new(&key.address(), creds.clone()).unwrap();
    let gate = RiskGate::new(TradingMode::Paper, RiskLimits::default(), KillSwitch::new()).unwrap();
    let mut client = OrderClient::connect(&ccfg, signer, gate).unwrap();
    let mut pcfg = PoolConfig::default_198();
    pcfg.levels_each_side = 2;
    pcfg.sizes.truncate(1);
    let pool = PresignedPool::new(
        pcfg,
        key,
        creds.api_key.clone(),
        vec![PoolToken {
            token_id: token,
            tick: TickSize::T0_01,
            neg_risk: false,
            exchange_version: 2,
        }],
    )
    .unwrap();
    pool.set_center(0, 40);
    pool.warm_thread();
    let mut recs = Vec::with_capacity(1024);
    let intent = OrderTicket {
        instrument: 1,
        side: Side::Buy,
        price_e8: 40_000_000,
        size_e8: 500_000_000,
        notional_micros: 0,
    };
    let mut per_submit = Vec::new();
    for round in 0..6 {
        pool.refill_once().unwrap();
        for price in 38..=42 {
            let k = SlotKey::new(0, OrderSide::Buy, price, 0);
            let before = thread_allocs();
            let coid = client.submit(&pool, k, intent, &mut recs).unwrap();
            let n = thread_allocs() - before;
            if round > 0 {
                per_submit.push(n);
            }
            client
                .wait_for(coid, Duration::from_secs(20), &mut recs)
                .unwrap()
                .unwrap();
            recs.clear();
        }
    }
    let max = *per_submit.iter().max().unwrap();
    let mean = per_submit.iter().sum::<u64>() as f64 / per_submit.len() as f64;
    println!(
        "allocations per submit: mean {mean:.1}, max {max} ({} samples)",
        per_submit.len()
    );
    assert_eq!(max, 0, "submit allocates: {per_submit:?}");
    client.shutdown();
    drop(emu);
}
