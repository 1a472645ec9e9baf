//! `ringbolt bench exec`: the order path's costs.
//!
//! * `sign_order`: one complete order — amounts, EIP-712 hash, secp256k1 signature (k256),
//!   body serialisation — i.e. the pool's refill cost per slot; plus the bare `k256` signature.
//! * `pool_refill`: signing a whole 198-slot grid from scratch (slots/s), and the grid after a
//!   one-tick move of the centre (`pool_refill_one_tick_move`: only the entering level is signed).
//! * `hot_path`: `PresignedPool::take` — from "decision picks a slot" to "request bytes ready"
//!   (slot lookup, claim, body copy, L2 HMAC over the fresh timestamp, header values).
//! * `l2_hmac`: the per-request HMAC with the pre-keyed midstate vs keying HMAC per request.
//! * Peer: Polymarket's official Python client (py-clob-client-v2) timing its own
//!   build-and-sign of one order and one L2 HMAC, run by `exec/vectors/generate.py --bench-out`
//!   in the same run when a Python with the pinned requirements is found.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use anyhow::{Context, Result};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use clap::Args;
use hdrhistogram::Histogram;
use hmac::{Hmac, Mac};
use ringbolt_exec::amounts::{Decimal, TickSize};
use ringbolt_exec::auth::HMAC_B64_LEN;
use ringbolt_exec::pool::{PoolConfig, PoolToken, PresignedPool, SlotKey};
use ringbolt_exec::request::RequestBuf;
use ringbolt_exec::{ApiCreds, L2Signer, OrderInput, PrivateKey};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{Percentiles, pin};
use crate::machine::Machine;

/// Options of `ringbolt bench exec`.
#[derive(Debug, Args)]
pub struct ExecBenchArgs {
    /// Print JSON only.
    #[arg(long)]
    json: bool,
    /// Orders signed for the sign-time histogram.
    #[arg(long, default_value_t = 2_000)]
    sign_iterations: u64,
    /// Hot-path takes measured (slots are single-use; grids are re-signed between rounds).
    #[arg(long, default_value_t = 40_000)]
    hot_iterations: u64,
    /// HMAC iterations.
    #[arg(long, default_value_t = 200_000)]
    hmac_iterations: u64,
    /// Pin the measuring thread to this core.
    #[arg(long)]
    core: Option<usize>,
    /// Skip the Python reference peer.
    #[arg(long)]
    skip_python: bool,
    /// Iterations of the Python peer's sign timing.
    #[arg(long, default_value_t = 300)]
    python_iterations: u64,
    /// Order round trips to the CLOB emulator per client (ours block, ours spin, hyper).
    #[arg(long, default_value_t = 3_000)]
    rtt_iterations: u64,
    /// Pin the emulator's tokio worker to this core.
    #[arg(long)]
    server_core: Option<usize>,
    /// Skip the order-client round-trip part.
    #[arg(long)]
    skip_rtt: bool,
}

pub(super) const KEY: &str = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
const SECRET: &str = "c2VjcmV0LWtleS1mb3ItcmluZ2JvbHQtdGVzdHMtMDEyMzQ1Njc4OWFiY2RlZg==";
const TOKEN: &str =
    "104239898038807136052399800151408521467737075933964991162589336683346093173875";

fn hist() -> Result<Histogram<u64>> {
    Ok(ringbolt_telemetry::latency_histogram())
}

fn ns(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos())
        .unwrap_or(u64::MAX)
        .max(1)
}

fn creds() -> ApiCreds {
    ApiCreds::new(
        "3b6a2f4e-1c9d-4e7a-9b2f-5d8c0e1a7f63".into(),
        SECRET.into(),
        "6f1e0c9b8a7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928170f6e5d4c".into(),
    )
}

/// 1. Sign one order end to end, and the bare k256 signature: (sign, k256, body bytes).
fn sign_bench(
    args: &ExecBenchArgs,
    key: &PrivateKey,
    signer: &L2Signer,
) -> Result<(Percentiles, Percentiles, usize)> {
    let input: OrderInput = serde_json::from_value(json!({
        "side": "BUY", "kind": "limit", "price": "0.42", "size": "100", "token_id": TOKEN,
        "tick_size": "0.01", "salt": 1, "timestamp_ms": 1_773_307_200_000u64,
    }))?;
    let mut spec = input.into_spec()?;
    let domain = spec.domain()?;
    let mut sign_h = hist()?;
    let mut k256_h = hist()?;
    let mut body_bytes = 0;
    for i in 0..args.sign_iterations + 100 {
        spec.salt = i + 1;
        let t0 = Instant::now();
        let signed = spec.sign_in(key, &domain)?;
        let body = signed.body(&signer.creds().api_key);
        let dt = ns(t0);
        body_bytes = body.len();
        let digest = signed.digest;
        let t1 = Instant::now();
        let sig = key.sign_digest(&digest)?;
        let dk = ns(t1);
        std::hint::black_box(sig);
        if i >= 100 {
            sign_h.record(dt)?;
            k256_h.record(dk)?;
        }
    }
    Ok((
        Percentiles::of(&sign_h),
        Percentiles::of(&k256_h),
        body_bytes,
    ))
}

fn token(tick: TickSize) -> PoolToken {
    PoolToken {
        token_id: TOKEN.into(),
        tick,
        neg_risk: false,
        exchange_version: 2,
    }
}

/// 2. Pool refill: a 198-slot grid signed from scratch, and the grid that follows a one-tick
///    move of the centre (it signs only the entering level: 2 sides × 3 sizes):
///    (from scratch, after a one-tick move, slots per grid, slots signed per move).
fn refill_bench(
    key: &Arc<PrivateKey>,
    signer: &L2Signer,
) -> Result<(Percentiles, Percentiles, f64, f64)> {
    let cfg198 = PoolConfig::default_198();
    let pool198 = PresignedPool::new(
        cfg198.clone(),
        Arc::clone(key),
        signer.creds().api_key.clone(),
        vec![token(TickSize::T0_01)],
    )?;
    pool198.set_center(0, 50);
    let mut refill_h = hist()?;
    for _ in 0..10 {
        let t0 = Instant::now();
        let g = pool198.build_grid(0, None)?;
        refill_h.record(ns(t0))?;
        std::hint::black_box(g);
    }
    let mut moved_h = hist()?;
    let Some(mut grid) = pool198.build_grid(0, None)? else {
        anyhow::bail!("pool did not sign a grid");
    };
    let signed_before = pool198.stats.signed.load(Relaxed);
    let moves = 40;
    for i in 0..moves {
        pool198.set_center(0, 51 + i % 2);
        let t0 = Instant::now();
        let g = pool198.build_grid(0, Some(&grid))?;
        moved_h.record(ns(t0))?;
        grid = g.context("pool lost its centre")?;
    }
    let signed_per_move =
        (pool198.stats.signed.load(Relaxed) - signed_before) as f64 / f64::from(moves);
    Ok((
        Percentiles::of(&refill_h),
        Percentiles::of(&moved_h),
        cfg198.slots_per_token() as f64,
        signed_per_move,
    ))
}

/// 3. Hot path on a large grid: (latency, slots per grid, the last order body).
fn hot_path_bench(
    args: &ExecBenchArgs,
    key: &Arc<PrivateKey>,
    signer: &L2Signer,
) -> Result<(Percentiles, u64, Vec<u8>)> {
    let mut big = PoolConfig::default_198();
    big.levels_each_side = 100;
    big.sizes = (1..=25)
        .map(|s| Decimal {
            mantissa: s * 5,
            scale: 0,
        })
        .collect();
    let per_grid = big.slots_per_token() as u64;
    let pool = PresignedPool::new(
        big,
        Arc::clone(key),
        signer.creds().api_key.clone(),
        vec![token(TickSize::T0_001)],
    )?;
    pool.set_center(0, 500);
    pool.warm_thread();
    let mut buf = RequestBuf::new(signer);
    let mut hot_h = hist()?;
    let mut taken = 0u64;
    let mut ts = 1_773_307_200u64;
    while taken < args.hot_iterations {
        pool.refill_once()?;
        let Some(grid) = pool.grid(0) else {
            anyhow::bail!("pool did not sign a grid");
        };
        let keys: Vec<SlotKey> = grid
            .slots()
            .iter()
            .map(|s| SlotKey::new(0, s.side, s.price_ticks, s.size_index))
            .collect();
        drop(grid);
        for k in keys {
            ts += 1;
            let t0 = Instant::now();
            let r = pool.take(signer, k, ts, &mut buf);
            let dt = ns(t0);
            if r.is_ok() {
                hot_h.record(dt)?;
                taken += 1;
            }
            std::hint::black_box(buf.body());
        }
    }
    Ok((Percentiles::of(&hot_h), per_grid, buf.body().to_vec()))
}

/// 4. L2 HMAC over the order body: pre-keyed midstate (ours) vs keying HMAC per request the
///    way a straightforward client does (fresh key schedule, timestamp formatted per call).
fn hmac_bench(
    args: &ExecBenchArgs,
    signer: &L2Signer,
    body: &[u8],
) -> Result<(Percentiles, Percentiles)> {
    let mut pre_h = hist()?;
    let mut cold_h = hist()?;
    let secret = URL_SAFE.decode(SECRET).context("secret")?;
    let mut out = [0u8; HMAC_B64_LEN];
    for i in 0..args.hmac_iterations {
        let t0 = Instant::now();
        signer.sign_into(1_773_307_200 + i, "POST", "/order", body, &mut out);
        pre_h.record(ns(t0))?;
        let t1 = Instant::now();
        let mut mac = Hmac::<Sha256>::new_from_slice(&secret).context("hmac key")?;
        let ts = (1_773_307_200 + i).to_string();
        mac.update(ts.as_bytes());
        mac.update(b"POST/order");
        mac.update(body);
        std::hint::black_box(mac.finalize().into_bytes());
        cold_h.record(ns(t1))?;
    }
    Ok((Percentiles::of(&pre_h), Percentiles::of(&cold_h)))
}

/// Runs `ringbolt bench exec`.
pub fn run(args: &ExecBenchArgs) -> Result<()> {
    let pinned = pin(args.core);
    let key = Arc::new(PrivateKey::from_hex(KEY)?);
    let signer = L2Signer::new(&key.address(), creds())?;
    let (sign_p, k256_p, body_bytes) = sign_bench(args, &key, &signer)?;
    let (refill_p, moved_p, slots, signed_per_move) = refill_bench(&key, &signer)?;
    let (hot_p, per_grid, body) = hot_path_bench(args, &key, &signer)?;
    let (pre_p, cold_p) = hmac_bench(args, &signer, &body)?;

    // 5. The Python reference, same run.
    let python = if args.skip_python {
        json!({ "error": "skipped by --skip-python" })
    } else {
        python_peer(args.python_iterations)
    };
    let py_sign = python.get("sign_order_p50_ns").and_then(Value::as_u64);
    let py_hmac = python.get("l2_hmac_p50_ns").and_then(Value::as_u64);
    let ratio = |peer: Option<u64>, ours: u64| {
        peer.map(|p| ((p as f64 / ours.max(1) as f64) * 10.0).round() / 10.0)
    };

    // 6. The order client against the CLOB emulator, and hyper's client beside it.
    let rtt = if args.skip_rtt {
        json!({ "error": "skipped by --skip-rtt" })
    } else {
        super::exec_rtt::run(args.rtt_iterations, args.core, args.server_core)
    };
    let ring_p50 = rtt["submit_to_ring_block"]["p50_ns"].as_u64();
    let rtt_met = |variant: &str| {
        rtt[format!("ratio_hyper_over_ringbolt_{variant}")]["p50"]
            .as_f64()
            .map(|r| r >= 1.5)
    };
    let met = hot_p.p50_ns <= 2_000;
    let report = json!({
        "bench": "exec",
        "method": "Instant::now around each operation (~20-40 ns of timer overhead included); \
                   sign_order = amounts + EIP-712 digest + k256 RFC6979 signature + body JSON; \
                   hot_path = PresignedPool::take (O(1) slot lookup, atomic claim, body copy, \
                   L2 HMAC-SHA256 over timestamp+method+path+body, url-safe base64) into a \
                   reused RequestBuf; each slot is used once (grids re-signed between rounds)",
        "machine": Machine::current(),
        "load_avg_1m": std::fs::read_to_string("/proc/loadavg").ok()
            .and_then(|l| l.split_whitespace().next().and_then(|v| v.parse::<f64>().ok())),
        "pinned_core": if pinned { args.core } else { None },
        "order_body_bytes": body_bytes,
        "sign_order": sign_p,
        "sign_orders_per_s": (1e9 / sign_p.p50_ns.max(1) as f64).round(),
        "sign_orders_per_s_mean": (1e9 / sign_p.mean_ns.max(1.0)).round(),
        "k256_sign_digest": k256_p,
        "pool_refill_198_slots": refill_p,
        "pool_refill_slots_per_s": (slots * 1e9 / refill_p.p50_ns.max(1) as f64).round(),
        "pool_refill_one_tick_move": moved_p,
        "pool_refill_one_tick_move_slots_signed": signed_per_move,
        "ratio_refill_from_scratch_over_one_tick_move_p50":
            ratio(Some(refill_p.p50_ns), moved_p.p50_ns),
        "hot_path": hot_p,
        "hot_path_grid_slots": per_grid,
        "l2_hmac_prekeyed": pre_p,
        "l2_hmac_keyed_per_request": cold_p,
        "ratio_hmac_keyed_per_request_over_prekeyed_p50":
            ratio(Some(cold_p.p50_ns), pre_p.p50_ns),
        "python_reference": python,
        "ratio_python_over_ringbolt": {
            "sign_order_p50": ratio(py_sign, sign_p.p50_ns),
            "l2_hmac_p50": ratio(py_hmac, pre_p.p50_ns),
        },
        "order_client": rtt,
        "targets": {
            "hot_path_p50_ns_max": 2_000, "met": met,
            "submit_to_ring_p50_ns_max": 2_000,
            "submit_to_ring_met": ring_p50.map(|p| p <= 2_000),
            "order_rtt_ratio_hyper_over_ringbolt_p50_min": 1.5,
            "order_rtt_block_met": rtt_met("block"),
            "order_rtt_block_busy_poll_met": rtt_met("block_busy_poll"),
            "order_rtt_spin_met": rtt_met("spin"),
        },
    });
    tracing::info!(
        sign_p50_ns = sign_p.p50_ns,
        hot_p50_ns = hot_p.p50_ns,
        "bench exec done"
    );
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}

fn python_peer(iterations: u64) -> Value {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let script = root.join("exec/vectors/generate.py");
    let py = std::env::var_os("RINGBOLT_PYTHON")
        .map(PathBuf::from)
        .or_else(|| {
            let v = root.join(".venv/bin/python");
            v.exists().then_some(v)
        })
        .unwrap_or_else(|| PathBuf::from("python3"));
    let out_file =
        std::env::temp_dir().join(format!("ringbolt-bench-exec-{}.json", std::process::id()));
    let run = Command::new(&py)
        .arg(&script)
        .arg("--bench-out")
        .arg(&out_file)
        .arg("--bench-iterations")
        .arg(iterations.to_string())
        .output();
    let res = match run {
        Ok(o) if o.status.success() => std::fs::read_to_string(&out_file)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .unwrap_or_else(|| json!({ "error": "no timing written" })),
        Ok(o) => json!({
            "error": format!("{} failed: {}", py.display(),
                String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or(""))
        }),
        Err(e) => json!({ "error": format!("{}: {e}", py.display()) }),
    };
    let _ = std::fs::remove_file(&out_file);
    res
}
