//! `ringbolt bench exec`, part 2: the order client against the CLOB emulator on loopback.
//!
//! * `submit_to_ring`: [`OrderClient::submit`] — risk gate, `PresignedPool::take` (slot claim,
//!   body copy, L2 headers: the pool's ready-made signature, `auth_precomputed_share_*`, else
//!   an HMAC over a fresh timestamp), the HTTP/2 request (HPACK, DATA frame), TLS
//!   record sealing and the send queued on the io_uring ring: "decision picks a slot" → "request
//!   bytes handed to the ring", from the client's own stamps
//!   ([`OrderClient::last_submit_stamps`]). `submit_enter`: what follows up to SUBMITTED — the
//!   enter (block mode sends there, inline: the kernel's loopback TCP send; spin mode leaves it
//!   to the ring's next turn), then booking the order (send first, book after). `submit_call`: the whole `submit` call as the caller times it (to ring + enter).
//! * `order_rtt`: submit → classified response → lifecycle records, over one warm HTTP/2
//!   connection (TLS 1.3, ALPN h2) to the emulator (hyper server). Orders are paper orders
//!   (size zero): the emulator authenticates the HMAC, parses the order and rejects it for size
//!   with the venue's error, the appliance's default mode.
//! * Peer: hyper 1's HTTP/2 client over tokio-rustls on a current-thread runtime, sending the
//!   same requests (a fresh pre-signed paper order from the same pool each time, the same
//!   headers) to the same emulator in the same run, and parsing the JSON answer (ours parses,
//!   classifies and records the lifecycle transition inside the timed round trip).

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use ringbolt_bus::Side;
use ringbolt_exec::client::{
    ClientConfig, Finished, OrderClient, OrderTicket, create_or_derive_api_creds,
};
use ringbolt_exec::pool::{PoolConfig, PoolToken, PresignedPool, SlotKey};
use ringbolt_exec::request::RequestBuf;
use ringbolt_exec::risk::{KillSwitch, RiskGate, RiskLimits, TradingMode};
use ringbolt_exec::{L2Signer, OrderSide, PrivateKey, TickSize};
use ringbolt_net::{DriverCounters, WaitMode};
use ringbolt_sim::config::VenueConfig;
use ringbolt_sim::{Emulator, EmulatorConfig};
use serde_json::{Value, json};

use super::Percentiles;

const WARM_DIVISOR: u64 = 10;

/// A running emulator (its own runtime thread).
struct Emu {
    rt: tokio::runtime::Runtime,
    emu: Option<Emulator>,
    control: String,
    port: u16,
    ca_pem: Vec<u8>,
    /// The emulator's certificate directory (removed on drop).
    cert_dir: std::path::PathBuf,
}

impl Drop for Emu {
    fn drop(&mut self) {
        if let Some(e) = self.emu.take() {
            self.rt.block_on(e.shutdown());
        }
        let _ = std::fs::remove_dir_all(&self.cert_dir);
    }
}

impl Emu {
    fn start(server_core: Option<usize>) -> Result<Emu> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .on_thread_start(move || {
                super::pin(server_core);
            })
            .enable_all()
            .build()?;
        let dir = std::env::temp_dir().join(format!("ringbolt-bench-clob-{}", std::process::id()));
        let mut venues = std::collections::BTreeMap::new();
        venues.insert("polymarket".to_string(), VenueConfig::default());
        venues.insert("clob".to_string(), VenueConfig::default());
        let cfg = EmulatorConfig {
            cert_dir: dir.clone(),
            venues,
            ..EmulatorConfig::default()
        };
        let emu = rt.block_on(Emulator::start(cfg))?;
        let clob = emu
            .info
            .clob
            .clone()
            .ok_or_else(|| anyhow!("clob not served"))?;
        let ca_pem = std::fs::read(&emu.info.ca_pem)?;
        let control = emu
            .info
            .control_url
            .trim_start_matches("http://")
            .to_string();
        Ok(Emu {
            rt,
            emu: Some(emu),
            control,
            port: clob.addr.port(),
            ca_pem,
            cert_dir: dir,
        })
    }

    fn get(&self, target: &str) -> Result<Value> {
        let mut s = std::net::TcpStream::connect(&self.control)?;
        write!(s, "GET {target} HTTP/1.1\r\nHost: x\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        let body = out.split("\r\n\r\n").nth(1).unwrap_or("");
        Ok(serde_json::from_str(body)?)
    }

    fn next_token(&self) -> Result<String> {
        let w = self.get("/windows")?;
        let list = w["windows"]
            .as_array()
            .ok_or_else(|| anyhow!("no windows"))?;
        let i = list
            .iter()
            .position(|w| w["current"] == true)
            .ok_or_else(|| anyhow!("no current window"))?;
        list.get(i + 1)
            .and_then(|w| w["up_token"].as_str())
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("no next window"))
    }
}

fn hist() -> Result<Histogram<u64>> {
    Ok(ringbolt_telemetry::latency_histogram())
}

/// A paper pool over one token, and the stream of its slot keys (re-signed when used up).
struct Slots {
    pool: PresignedPool,
    keys: Vec<SlotKey>,
}

impl Slots {
    fn new(key: Arc<PrivateKey>, owner: String, token: String, signer: &L2Signer) -> Result<Slots> {
        let mut cfg = PoolConfig::default_198();
        cfg.mode = TradingMode::Paper;
        let pool = PresignedPool::new(
            cfg,
            key,
            owner,
            vec![PoolToken {
                token_id: token,
                tick: TickSize::T0_01,
                neg_risk: false,
                exchange_version: 2,
            }],
        )?;
        pool.set_center(0, 40);
        // As `ringbolt trade` does: the refill keeps the grid's L2 signatures ready.
        pool.presign_auth(signer.clone());
        pool.warm_thread();
        Ok(Slots {
            pool,
            keys: Vec::new(),
        })
    }

    /// The next unused slot (re-signs the grid, off the clock, when all were taken).
    fn next(&mut self) -> Result<SlotKey> {
        if self.keys.is_empty() {
            self.pool.refill_once()?;
            let g = self
                .pool
                .grid(0)
                .ok_or_else(|| anyhow!("pool not signed"))?;
            self.keys = g
                .slots()
                .iter()
                .map(|s| SlotKey::new(0, s.side, s.price_ticks, s.size_index))
                .collect();
        }
        self.keys.pop().ok_or_else(|| anyhow!("empty grid"))
    }
}

fn intent(k: &SlotKey) -> OrderTicket {
    OrderTicket {
        instrument: 1,
        side: if k.side == OrderSide::Buy {
            Side::Buy
        } else {
            Side::Sell
        },
        price_e8: i64::from(k.price_ticks) * 1_000_000,
        size_e8: 500_000_000,
        notional_micros: 0,
    }
}

/// One client variant of ours.
#[derive(Clone, Copy)]
struct Mode {
    wait: WaitMode,
    /// `DriverConfig::busy_poll_us` (block mode, while an order is in flight).
    busy_poll_us: u32,
}

/// Where a submit's time goes, from the client's own stamps
/// ([`OrderClient::last_submit_stamps`]): to the ring (frames sealed, the send queued), the enter
/// after it (block mode sends inline there), and the whole call as the caller times it.
struct Submits {
    to_ring: Histogram<u64>,
    enter: Histogram<u64>,
    call: Histogram<u64>,
    /// Orders (warm-up included) whose L2 signature came ready-made from the pool.
    auth_precomputed: u64,
}

impl Submits {
    fn new() -> Result<Self> {
        Ok(Submits {
            to_ring: hist()?,
            enter: hist()?,
            call: hist()?,
            auth_precomputed: 0,
        })
    }

    fn record(&mut self, s: &ringbolt_exec::client::SubmitStamps, call: Duration) -> Result<()> {
        if s.handed_ns < s.decided_ns || s.sent_ns < s.handed_ns {
            bail!("submit stamps out of order: {s:?}");
        }
        self.to_ring
            .record(u64::try_from(s.handed_ns - s.decided_ns)?)?;
        self.enter.record(u64::try_from(s.sent_ns - s.handed_ns)?)?;
        self.call.record(call.as_nanos() as u64)?;
        Ok(())
    }

    fn add(&mut self, other: &Submits) -> Result<()> {
        self.to_ring.add(&other.to_ring)?;
        self.enter.add(&other.enter)?;
        self.call.add(&other.call)?;
        self.auth_precomputed += other.auth_precomputed;
        Ok(())
    }
}

/// Our measures over a round: submits, round trip, orders rejected for size, and the driver's
/// counters.
type OursRound = (Submits, Histogram<u64>, u64, DriverCounters);

/// Ours: submit (timed to the ring) and round trip, in `mode`.
fn ours(
    emu: &Emu,
    mode: Mode,
    core: Option<usize>,
    key: &Arc<PrivateKey>,
    iterations: u64,
) -> Result<OursRound> {
    let mut cfg = ClientConfig::emulator(emu.port, emu.ca_pem.clone());
    cfg.driver.mode = mode.wait;
    cfg.driver.busy_poll_us = mode.busy_poll_us;
    cfg.driver.pin_core = core;
    let creds = create_or_derive_api_creds(&cfg, key, 137, 0)?;
    let signer = L2Signer::new(&key.address(), creds.clone())?;
    let gate = RiskGate::new(TradingMode::Paper, RiskLimits::default(), KillSwitch::new())?;
    let mut client = OrderClient::connect(&cfg, signer, gate)?;
    let mut slots = Slots::new(
        key.clone(),
        creds.api_key.clone(),
        emu.next_token()?,
        client.signer(),
    )?;
    let mut recs = Vec::with_capacity(64);
    let (mut submit_h, mut rtt_h) = (Submits::new()?, hist()?);
    let warm = iterations / WARM_DIVISOR;
    let mut rejected_size = 0u64;
    for i in 0..iterations + warm {
        let k = slots.next()?;
        recs.clear();
        let t0 = Instant::now();
        let coid = client
            .submit(&slots.pool, k, intent(&k), &mut recs)
            .map_err(|e| anyhow!("submit: {e}"))?;
        let t_ring = t0.elapsed();
        let what = loop {
            client.poll(Duration::from_millis(1), &mut recs)?;
            if let Some(f) = client.events().find_map(|e| match e {
                ringbolt_exec::client::ClientEvent::Finished { tag, what } if tag == coid => {
                    Some(what)
                }
                _ => None,
            }) {
                break f;
            }
            if t0.elapsed() > Duration::from_secs(10) {
                bail!("no response to order {coid}");
            }
        };
        let t_rtt = t0.elapsed();
        if let Finished::Orders(v) = &what
            && let Some((_, ringbolt_exec::classify::Outcome::Rejected { class, .. })) = v.first()
            && *class == ringbolt_exec::classify::ErrorClass::BelowMinSize
        {
            rejected_size += 1;
        } else {
            bail!("unexpected outcome for a paper order: {what:?}");
        }
        if i >= warm {
            submit_h.record(&client.last_submit_stamps(), t_ring)?;
            rtt_h.record(t_rtt.as_nanos() as u64)?;
        }
    }
    let counters = client.driver_counters();
    submit_h.auth_precomputed += client.stats().orders_auth_precomputed;
    client.shutdown();
    Ok((submit_h, rtt_h, rejected_size, counters))
}

/// The peer: hyper's HTTP/2 client over tokio-rustls, same requests.
fn hyper_peer(emu: &Emu, key: &Arc<PrivateKey>, iterations: u64) -> Result<Histogram<u64>> {
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let cfg = ClientConfig::emulator(emu.port, emu.ca_pem.clone());
    let creds = create_or_derive_api_creds(&cfg, key, 137, 0)?;
    let signer = L2Signer::new(&key.address(), creds.clone())?;
    let mut slots = Slots::new(
        key.clone(),
        creds.api_key.clone(),
        emu.next_token()?,
        &signer,
    )?;
    let mut buf = RequestBuf::new(&signer);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let port = emu.port;
    let tls_cfg = ringbolt_net::tls::client_config(
        ringbolt_net::tls::Roots::None,
        Some(&emu.ca_pem),
        &[b"h2"],
    )?;
    local.block_on(&rt, async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        tcp.set_nodelay(true)?;
        let name = rustls::pki_types::ServerName::try_from("localhost")?;
        let tls = tokio_rustls::TlsConnector::from(tls_cfg)
            .connect(name, tcp)
            .await?;
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await?;
        tokio::task::spawn_local(conn);
        let uri = format!("https://localhost:{port}/order");
        let mut h = hist()?;
        let warm = iterations / WARM_DIVISOR;
        for i in 0..iterations + warm {
            let k = slots.next()?;
            let now_s = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs();
            slots
                .pool
                .take(&signer, k, now_s, &mut buf)
                .map_err(|m| anyhow!("pool: {m:?}"))?;
            let t = Instant::now();
            let mut req = hyper::Request::post(&uri);
            for (name, value) in buf.headers() {
                req = req.header(name, value);
            }
            let req = req.body(Full::new(Bytes::copy_from_slice(buf.body())))?;
            let resp = sender.send_request(req).await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            let dt = t.elapsed();
            if status != 400 || !body.windows(13).any(|w| w == b"lower than th") {
                bail!(
                    "hyper peer: unexpected answer {status} {}",
                    String::from_utf8_lossy(&body)
                );
            }
            if i >= warm {
                h.record(dt.as_nanos() as u64)?;
            }
        }
        Ok(h)
    })
}

/// Runs part 2 and returns its JSON section.
pub fn run(iterations: u64, client_core: Option<usize>, server_core: Option<usize>) -> Value {
    match run_inner(iterations, client_core, server_core) {
        Ok(v) => v,
        Err(e) => json!({ "error": format!("{e:#}") }),
    }
}

fn ratio(peer: &Histogram<u64>, ours: &Histogram<u64>, q: f64) -> f64 {
    let v = peer.value_at_quantile(q) as f64 / ours.value_at_quantile(q).max(1) as f64;
    (v * 100.0).round() / 100.0
}

/// Per-order enters and busy-poll outcome of one of our variants.
fn per_order(c: &DriverCounters, orders: u64) -> Value {
    let m = orders.max(1) as f64;
    let r = |v: u64| ((v as f64 / m) * 100.0).round() / 100.0;
    json!({
        "io_uring_enters": r(c.enters),
        "io_uring_enters_waiting": r(c.enters_waiting),
        "cqes": r(c.cqes),
        "busy_poll_hits": r(c.busy_poll_hits),
        "busy_poll_misses": r(c.busy_poll_misses),
    })
}

/// Busy-poll window of the `block_busy_poll` variant, µs.
const BUSY_POLL_US: u32 = 200;

/// One of our variants accumulated over the rounds.
struct OursAcc {
    name: &'static str,
    mode: Mode,
    submit: Submits,
    rtt: Histogram<u64>,
    rejected: u64,
    counters: DriverCounters,
    orders: u64,
}

impl OursAcc {
    fn new(name: &'static str, wait: WaitMode, busy_poll_us: u32) -> Result<Self> {
        Ok(OursAcc {
            name,
            mode: Mode { wait, busy_poll_us },
            submit: Submits::new()?,
            rtt: hist()?,
            rejected: 0,
            counters: DriverCounters::default(),
            orders: 0,
        })
    }

    fn add(&mut self, r: OursRound, orders: u64) -> Result<()> {
        self.submit.add(&r.0)?;
        self.rtt.add(&r.1)?;
        self.rejected += r.2;
        let c = &mut self.counters;
        c.enters += r.3.enters;
        c.enters_waiting += r.3.enters_waiting;
        c.cqes += r.3.cqes;
        c.busy_poll_hits += r.3.busy_poll_hits;
        c.busy_poll_misses += r.3.busy_poll_misses;
        self.orders += orders;
        Ok(())
    }
}

fn run_inner(
    iterations: u64,
    client_core: Option<usize>,
    server_core: Option<usize>,
) -> Result<Value> {
    let emu = Emu::start(server_core)?;
    let key = Arc::new(PrivateKey::from_hex(super::exec::KEY)?);
    let spin_ok = num_cpus() >= 2;
    // Interleaved rounds (ours block, hyper, ours block + busy poll, ours spin) so that load
    // drifts on this shared machine hit every client alike; each round opens a fresh connection
    // and discards its own warm-up.
    const ROUNDS: u64 = 3;
    let per = (iterations / ROUNDS).max(10);
    let mut variants = vec![
        OursAcc::new("block", WaitMode::Block, 0)?,
        OursAcc::new("block_busy_poll", WaitMode::Block, BUSY_POLL_US)?,
    ];
    if spin_ok {
        variants.push(OursAcc::new("spin", WaitMode::Spin, 0)?);
    }
    let mut peer = hist()?;
    for _ in 0..ROUNDS {
        for (i, v) in variants.iter_mut().enumerate() {
            let r = ours(&emu, v.mode, client_core, &key, per)?;
            v.add(r, per + per / WARM_DIVISOR)?;
            if i == 0 {
                let p = std::thread::scope(|sc| {
                    let key = key.clone();
                    let emu_ref = &emu;
                    sc.spawn(move || {
                        super::pin(client_core);
                        hyper_peer(emu_ref, &key, per)
                    })
                    .join()
                    .map_err(|_| anyhow!("peer thread panicked"))?
                })?;
                peer.add(&p)?;
            }
        }
    }
    let stats = emu.get("/stats")?;
    let mut out = json!({
        "method": "paper orders (size zero) from a 198-slot pre-signed pool, one warm HTTP/2 \
                   connection (TLS 1.3, ALPN h2) to the CLOB emulator (hyper server, one tokio \
                   worker) on loopback; the emulator verifies the L2 HMAC, parses the order and \
                   answers 400 'Size (0) lower than the minimum: 5'; 3 interleaved rounds \
                   (ours block, hyper, ours block with busy poll, ours spin), 10% warm-up \
                   discarded per round; block_busy_poll: block mode whose driver polls without \
                   sleeping for up to busy_poll_us while an order is in flight",
        "iterations": per * ROUNDS,
        "busy_poll_us": BUSY_POLL_US,
        "order_rtt_hyper_peer": Percentiles::of(&peer),
        "orders_rejected_for_size_block": variants[0].rejected,
        "emulator_stats": stats["clob"],
    });
    for v in &variants {
        out[format!("submit_to_ring_{}", v.name)] = json!(Percentiles::of(&v.submit.to_ring));
        out[format!("submit_enter_{}", v.name)] = json!(Percentiles::of(&v.submit.enter));
        out[format!("submit_call_{}", v.name)] = json!(Percentiles::of(&v.submit.call));
        out[format!("auth_precomputed_share_{}", v.name)] =
            json!(v.submit.auth_precomputed as f64 / v.orders.max(1) as f64);
        out[format!("order_rtt_{}", v.name)] = json!(Percentiles::of(&v.rtt));
        out[format!("ratio_hyper_over_ringbolt_{}", v.name)] = json!({
            "p50": ratio(&peer, &v.rtt, 0.5), "p99": ratio(&peer, &v.rtt, 0.99),
        });
        out[format!("syscalls_per_order_{}", v.name)] = per_order(&v.counters, v.orders);
    }
    Ok(out)
}

/// Cores of the machine (not of this thread's affinity mask: the bench thread is pinned).
fn num_cpus() -> usize {
    crate::machine::Machine::current().cores
}
