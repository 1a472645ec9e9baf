#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is the test failing
//! Market parameters end to end: the emulator (market + CLOB, in-process) → `ringbolt feeds`
//! (child process; discovery through the emulator's Gamma, market channel over TLS) → bus
//! `MarketParams` records → the trade process's exec ([`Exec`], live mode, real TLS + HTTP/2
//! orders and the user channel).
//!
//! Discovery publishes each token's Gamma parameters (source `gamma`); `POST /clob/tick-size`
//! makes the emulator's market channel send `tick_size_change`, which the collector publishes
//! (source `tick_size_change`). Exec, fed those bus records exactly as `ringbolt trade`'s order
//! sink feeds them (`Exec::on_market_params`), re-grids the window's pre-signed pool, cancels its
//! resting order that no longer fits the new tick, refuses a decided price off the new grid and
//! gets an order on the new grid accepted.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ringbolt_bus::{
    Consumer, MarketParamsBody, OrderState, OrderTransition, PARAMS_FROM_GAMMA,
    PARAMS_FROM_TICK_SIZE_CHANGE, Poll, Record, RecordKind, Segment, Side, Start, Venue,
};
use ringbolt_decide::engine::{OrderIntent, TimeInForce};
use ringbolt_exec::risk::RiskLimits;
use ringbolt_market::Outcome;
use ringbolt_testkit::emulator::RunningEmulator;
use ringbolt_testkit::fs;
use ringbolt_testkit::process::Reaper;
use ringbolt_trade::exec::{Exec, ExecSection};

mod common;

use common::Unlink;

const KEY: &str = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
const WAIT: Duration = Duration::from_secs(30);

fn write_key(dir: &Path) -> PathBuf {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("key");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .unwrap();
    writeln!(f, "{KEY}").unwrap();
    path
}

/// `ringbolt feeds` on the emulator's Polymarket market channel and Gamma, plus the reference
/// sources (Chainlink RTDS, Binance spot, Coinbase) when `references`.
fn collector(
    dir: &Path,
    emu: &RunningEmulator,
    segment: &str,
    references: bool,
) -> (Reaper, PathBuf) {
    let poly = emu.info.venues["polymarket"].addr;
    let ca = &emu.info.ca_pem;
    let addr = |v: &str| emu.info.venues[v].addr;
    let refs = if references {
        format!(
            "[feeds.sources.chainlink_rtds]\nurl = \"wss://{rtds}/\"\nsymbols = [\"btc/usd\"]\n\
             ca_file = \"{ca}\"\nca_only = true\n\
             [feeds.sources.binance_spot]\nurl = \"wss://{bin}/stream\"\n\
             rest_url = \"https://{bin}\"\nsymbols = [\"BTCUSDT\"]\nca_file = \"{ca}\"\n\
             ca_only = true\n[feeds.sources.coinbase]\nurl = \"wss://{cb}/\"\n\
             symbols = [\"BTC-USD\"]\nca_file = \"{ca}\"\nca_only = true\n",
            rtds = addr("chainlink_rtds"),
            bin = addr("binance_spot"),
            cb = addr("coinbase"),
        )
    } else {
        String::new()
    };
    let cfg = format!(
        "[feeds]\nsegment = \"{segment}\"\ncapacity = 262144\ninstrument_capacity = 1024\n\
         busy_poll = false\nmax_runtime_s = 120\nbackoff_base_ms = 100\nbackoff_max_ms = 1000\n\
         [feeds.sources.polymarket]\nurl = \"wss://{poly}/ws/market\"\n\
         rest_url = \"https://{poly}\"\nwindow_s = {w}\ndiscovery_interval_ms = 500\n\
         linger_s = 2\nca_file = \"{ca}\"\nca_only = true\n{refs}",
        w = emu.info.window_len_s,
    );
    let path = dir.join("feeds.toml");
    std::fs::write(&path, cfg).unwrap();
    common::spawn_feeds(dir, &path)
}

/// The collector's bus, read as a consumer: every `MarketParams` record with its token id.
struct Params {
    seg: std::sync::Arc<Segment>,
    consumer: Consumer,
    seen: Vec<(String, Record)>,
}

impl Params {
    fn open(segment: &str) -> Params {
        let seg = Segment::open_wait(segment, WAIT).unwrap();
        let consumer = Consumer::new(&seg, 0, Start::Oldest).unwrap();
        Params {
            seg,
            consumer,
            seen: Vec::new(),
        }
    }

    /// Reads until a `MarketParams` record from `source` for `token` arrives; returns it.
    fn wait(&mut self, token: &str, source: u8, log: &Path) -> Record {
        let deadline = Instant::now() + WAIT;
        let mut rec = Record::zeroed();
        loop {
            if let Some((_, r)) = self.seen.iter().find(|(t, r)| {
                t == token && r.body_as::<MarketParamsBody>().unwrap().source == source
            }) {
                return *r;
            }
            assert!(
                Instant::now() < deadline,
                "no market_params ({source}) for {token}; collector log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            match self.consumer.poll(&mut rec) {
                Poll::Ready if rec.kind == RecordKind::MarketParams as u8 => {
                    let (venue, name) = self.seg.instrument(rec.instrument).unwrap();
                    assert_eq!(venue, Venue::Polymarket);
                    let token = name.rsplit('/').next().unwrap().to_string();
                    self.seen.push((token, rec));
                }
                Poll::Ready => {}
                _ => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }
}

/// Drives exec until `pred(transitions so far)` holds.
fn drive(exec: &mut Exec, out: &mut Vec<Record>, what: &str, pred: impl Fn(&[Record]) -> bool) {
    let deadline = Instant::now() + WAIT;
    while !pred(out) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        exec.poll();
        exec.flush(|r| out.push(*r));
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn reached(out: &[Record], coid: u64, state: OrderState) -> bool {
    out.iter().any(|r| {
        r.body_as::<OrderTransition>()
            .is_some_and(|t| t.client_order_id == coid && t.to_state == state as u8)
    })
}

/// A BUY intent for the Up token of `window_start_s` (engine id `instrument`) at `price_e8`.
fn intent(coid: u64, instrument: u32, window_start_s: i64, price_e8: i64) -> OrderIntent {
    OrderIntent {
        client_order_id: coid,
        instrument,
        window_start_s,
        outcome: Outcome::Up,
        side: Side::Buy,
        price: price_e8,
        size: 5 * 100_000_000,
        time_in_force: TimeInForce::Fak,
        expires_at_ns: i64::MAX,
        decided_at_ns: 0,
        trigger_seq: 0,
        probability: 0,
        edge: 0,
        pool_slot: u16::MAX,
    }
}

/// Submits `intent` until its pool slot is signed (the refill thread signs a new grid in the
/// background); the transitions go to `out`.
fn submit(exec: &mut Exec, out: &mut Vec<Record>, i: &OrderIntent) {
    let deadline = Instant::now() + WAIT;
    let before = exec.counters.submitted;
    while exec.counters.submitted == before {
        assert!(
            Instant::now() < deadline,
            "never submitted: {:?}",
            exec.counters
        );
        exec.submit(i);
        exec.flush(|r| out.push(*r));
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn exec_section(dir: &Path, emu: &RunningEmulator) -> ExecSection {
    ExecSection {
        enabled: true,
        host: "localhost".into(),
        port: emu.clob_port(),
        ca_file: Some(emu.info.ca_pem.clone().into()),
        key_file: Some(write_key(dir)),
        heartbeat_ms: Some(1000),
        user_ws_url: Some(emu.info.clob.as_ref().unwrap().user_ws_url.clone()),
        journal_path: Some(dir.join("journal")),
        levels_each_side: 460,
        sizes: vec!["5".into()],
        order_type: "GTC".into(),
        risk: RiskLimits {
            max_order_notional_micros: Some(10_000_000),
            max_window_notional_micros: Some(100_000_000),
            max_day_notional_micros: Some(1_000_000_000),
            max_open_orders: Some(20),
        },
        ..ExecSection::default()
    }
}

#[test]
fn tick_size_change_reaches_exec_through_the_collector_and_regrids_the_pool() {
    let t0 = Instant::now();
    let dir = fs::tempdir("rb-live2-e2e", "tick");
    let emu = RunningEmulator::clob("live2-tick");
    let segment = format!("rb-test-live2-{}", std::process::id());
    let _unlink = Unlink(vec![segment.clone()]);
    let (_collector, log) = collector(&dir, &emu, &segment, false);
    let windows = emu.windows();
    let list = windows["windows"].as_array().unwrap();
    // The next window: it stays open for the whole test whenever the test starts.
    let i = list.iter().position(|w| w["current"] == true).unwrap();
    let w = &list[i + 1];
    let start_s = w["start_s"].as_i64().unwrap();
    let tokens = [
        w["up_token"].as_str().unwrap().to_string(),
        w["down_token"].as_str().unwrap().to_string(),
    ];

    // Discovery states both tokens' Gamma parameters on the bus.
    let mut bus = Params::open(&segment);
    let gamma: Vec<Record> = tokens
        .iter()
        .map(|t| bus.wait(t, PARAMS_FROM_GAMMA, &log))
        .collect();
    for r in &gamma {
        let p = r.body_as::<MarketParamsBody>().unwrap();
        assert_eq!(p.window_start_s, start_s);
        assert_eq!(p.min_size, 5 * 100_000_000, "{p:?}");
        assert!(p.tick_size == 1_000_000 || p.tick_size == 100_000, "{p:?}");
    }

    // Exec learns the window's tokens (generation-0 bus ids as engine ids, one input) and their
    // parameters.
    let mut exec = Exec::start(&exec_section(&dir, &emu), true).unwrap();
    for (k, r) in gamma.iter().enumerate() {
        let (venue, name) = bus.seg.instrument(r.instrument).unwrap();
        assert!(
            name.contains(if k == 0 { "/up/" } else { "/down/" }),
            "{name}"
        );
        exec.on_instrument(r.instrument, r.instrument, venue, &name);
        exec.on_market_params(r.instrument, &r.body_as().unwrap());
    }
    assert_eq!(exec.counters.pools_built, 1);
    let up = gamma[0].instrument;
    let mut out = Vec::new();

    // Tick 0.001: a tick_size_change comes through the collector; the pool is re-gridded.
    let change = force_tick(&emu, &mut bus, &tokens[0], ("0.001", 100_000), &log);
    let regrids = exec.counters.regrids;
    exec.on_market_params(change.instrument, &change.body_as().unwrap());
    assert!(exec.counters.regrids > regrids || gamma_tick(&gamma[0]) == 100_000);

    // A resting BUY far below the book on the fine grid (0.053): accepted, stays live.
    let resting = intent(1, up, start_s, 5_300_000);
    submit(&mut exec, &mut out, &resting);
    drive(&mut exec, &mut out, "the resting order's ACK", |o| {
        reached(o, 1, OrderState::Acked)
    });

    // Tick 0.01: the change reaches exec through the collector; 0.053 no longer fits.
    let change = force_tick(&emu, &mut bus, &tokens[0], ("0.01", 1_000_000), &log);
    let cancels = exec.on_market_params(change.instrument, &change.body_as().unwrap());
    assert_eq!(cancels, 1, "{:?}", exec.counters);
    assert_eq!(exec.counters.off_grid_cancels, 1);
    drive(
        &mut exec,
        &mut out,
        "the off-grid order's cancellation",
        |o| reached(o, 1, OrderState::Cancelled),
    );

    // A decided price off the new grid is refused locally, never truncated; one on it is
    // accepted by the venue (whose grid is now 0.01 too).
    let off_tick = exec.counters.off_tick;
    exec.submit(&intent(2, up, start_s, 5_300_000));
    assert_eq!(exec.counters.off_tick, off_tick + 1);
    submit(&mut exec, &mut out, &intent(3, up, start_s, 6_000_000));
    drive(&mut exec, &mut out, "the on-grid order's ACK", |o| {
        reached(o, 3, OrderState::Acked) || reached(o, 3, OrderState::Rejected)
    });
    assert!(
        reached(&out, 3, OrderState::Acked),
        "{:?}",
        out.iter()
            .filter_map(Record::body_as::<OrderTransition>)
            .collect::<Vec<_>>()
    );
    exec.shutdown(|_| {});
    assert!(t0.elapsed() < Duration::from_secs(90), "{:?}", t0.elapsed());
    std::fs::remove_dir_all(&dir).ok();
}

/// `POST /clob/tick-size` for `token`'s window (`tick` as text and in 1e-8); the
/// `tick_size_change` record the collector then publishes for `token`.
fn force_tick(
    emu: &RunningEmulator,
    bus: &mut Params,
    token: &str,
    (text, e8): (&str, i64),
    log: &Path,
) -> Record {
    bus.seen.clear();
    let v = emu.control(
        "POST",
        &format!("/clob/tick-size?token={token}&tick={text}"),
    );
    assert_eq!(v["ok"], true, "{v}");
    let change = bus.wait(token, PARAMS_FROM_TICK_SIZE_CHANGE, log);
    assert_eq!(change.body_as::<MarketParamsBody>().unwrap().tick_size, e8);
    change
}

fn gamma_tick(r: &Record) -> i64 {
    r.body_as::<MarketParamsBody>().unwrap().tick_size
}

/// `ringbolt trade --live` on the collector's segment: decisions fire on every update (a
/// negative minimum edge, the strike taken from the first Chainlink report of the window),
/// 5-share FAK orders through the pre-signed pool, the user channel, the journal.
fn live_trade_toml(dir: &Path, emu: &RunningEmulator, market: &str, decide: &str) -> PathBuf {
    let user_ws = &emu.info.clob.as_ref().unwrap().user_ws_url;
    let cfg = format!(
        "[trade]\ninputs = [\"{market}\"]\noutput = \"{decide}\"\nevaluator = \"native\"\n\
         start = \"oldest\"\nmax_runtime_s = 90\nexit_when_idle_ms = 2000\nopen_timeout_s = 60\n\
         output_capacity = 262144\npaper = false\n\
         [decide]\nstrike_tolerance_ms = 300000\n\
         [decide.risk]\nmin_edge = -1.0\nmax_order_shares = 5.0\nmax_orders_per_window = 6\n\
         cooldown_ms = 1500\nmin_time_left_s = 2.0\n\
         [exec]\nenabled = true\nhost = \"localhost\"\nport = {port}\nca_file = \"{ca}\"\n\
         key_file = \"{key}\"\nuser_ws_url = \"{user_ws}\"\njournal_path = \"{journal}\"\n\
         levels_each_side = 60\nsizes = [\"5\"]\n\
         [exec.risk]\nmax_order_notional_micros = 5000000\n\
         max_window_notional_micros = 50000000\nmax_day_notional_micros = 500000000\n\
         max_open_orders = 10\n",
        port = emu.clob_port(),
        ca = emu.info.ca_pem,
        key = write_key(dir).display(),
        journal = dir.join("journal").display(),
    );
    let path = dir.join("trade.toml");
    std::fs::write(&path, cfg).unwrap();
    path
}

/// Every record of a segment's ring 0 from the oldest.
fn ring(segment: &str) -> Vec<Record> {
    let seg = Segment::open(segment).unwrap();
    let mut c = Consumer::new(&seg, 0, Start::Oldest).unwrap();
    let mut rec = Record::zeroed();
    let mut out = Vec::new();
    while c.poll(&mut rec) == Poll::Ready {
        out.push(rec);
    }
    out
}

#[test]
fn trade_live_fires_on_the_emulated_window_and_its_positions_equal_the_venue_ledger() {
    let t0 = Instant::now();
    let dir = fs::tempdir("rb-live2-e2e", "trade");
    let mut cfg = ringbolt_sim::EmulatorConfig {
        cert_dir: dir.join("certs"),
        ..ringbolt_sim::EmulatorConfig::default()
    };
    cfg.market.seed = 15;
    let emu = RunningEmulator::with_config(cfg, 2);
    let _ = emu.control("POST", "/clob/params?mined_ms=100&confirmed_ms=300");
    // The first trade of the run FAILS after matching: its fill must be reverted.
    let _ = emu.control("POST", "/clob/fail-next?count=1");
    let pid = std::process::id();
    let (market, decide) = (format!("rb-test-l2m-{pid}"), format!("rb-test-l2d-{pid}"));
    let _unlink = Unlink(vec![market.clone(), decide.clone()]);
    let (collector_proc, log) = collector(&dir, &emu, &market, true);
    Segment::open_wait(&market, WAIT).unwrap();
    let config = live_trade_toml(&dir, &emu, &market, &decide);
    // 25 s of trading, then the collector stops and the trade process exits once idle: the
    // archive then holds exactly the records the live run decided on.
    let trade = {
        let config = config.clone();
        std::thread::spawn(move || common::run_trade(&config, &["--live"]))
    };
    std::thread::sleep(Duration::from_secs(25));
    drop(collector_proc);
    let summary = trade.join().unwrap();
    let exec = &summary["exec"];
    assert_eq!(exec["mode"], "live", "{summary}");
    // The order sink handed the tokens' Gamma parameters from the bus to exec.
    assert!(
        exec["counters"]["params_records"].as_u64().unwrap() >= 2,
        "{summary}"
    );
    let submitted = exec["counters"]["submitted"].as_u64().unwrap();
    assert!(
        submitted >= 2,
        "orders on the window's real tokens: {summary}\ncollector log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    // Fills came over the user channel: one trade provisional then failed (reverted), others
    // provisional (and confirmed).
    let fills: Vec<(u32, ringbolt_bus::Fill)> = ring(&decide)
        .iter()
        .filter_map(|r| r.body_as().map(|f| (r.instrument, f)))
        .collect();
    let failed = fills.iter().filter(|(_, f)| f.status == 3).count();
    assert_eq!(failed, 1, "the forced FAILED trade: {fills:?}");
    assert!(fills.iter().any(|(_, f)| f.status == 2), "{fills:?}");

    // Positions from those fills equal the emulator's ledger exactly, token by token.
    let seg = Segment::open(&market).unwrap();
    let ledger = emu.control("GET", "/clob/ledger");
    let positions = exec["positions"].as_object().unwrap();
    let mut held = 0;
    for (id, p) in positions {
        let (_, name) = seg.instrument(id.parse().unwrap()).unwrap();
        let token = name.rsplit('/').next().unwrap();
        let venue: Vec<i64> = ledger["accounts"]
            .as_object()
            .unwrap()
            .values()
            .filter_map(|a| a["positions"][token]["size_micro"].as_i64())
            .collect();
        let shares = p["shares"].as_str().unwrap();
        let shares_micro = (shares.parse::<f64>().unwrap() * 1e6).round() as i64;
        assert_eq!(venue, [shares_micro], "{token}: {p} vs ledger {ledger}");
        held += shares_micro;
    }
    let reverted: i64 = fills
        .iter()
        .filter(|(_, f)| f.status == 3)
        .map(|(_, f)| f.size / 100)
        .sum();
    let added: i64 = fills
        .iter()
        .filter(|(_, f)| f.status == 1)
        .map(|(_, f)| f.size / 100)
        .sum();
    assert_eq!(held, added - reverted, "the FAILED fill is not held");
    assert!(held > 0, "{summary}");
    // And the ledger holds nothing else of ours.
    let venue_held: i64 = ledger["accounts"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|a| a["positions"].as_object())
        .flat_map(|p| p.values().filter_map(|v| v["size_micro"].as_i64()))
        .sum();
    assert_eq!(venue_held, held, "{ledger}");
    eprintln!(
        "trade --live: {submitted} orders, {} fill records ({failed} failed), {held} µshares held",
        fills.len()
    );

    // The archive of the run holds the market parameters, and replay reproduces every decision
    // (the parameters are applied at the same point).
    let archive = dir.join("archive");
    common::archive_until(&archive, &[market.clone(), decide.clone()], &|| true);
    let (ok, parity, stderr) = common::replay_check_parity(&archive, Some(&config));
    assert!(ok, "replay parity: {parity}\n{stderr}");
    let mut reader = ringbolt_archive::reader::ArchiveReader::open(&archive).unwrap();
    let table = ringbolt_archive::tables::Table::MarketParams;
    let params = reader.read_all(&[table], None, &|_| true).unwrap();
    assert!(
        params.rows.len() >= 2,
        "market_params rows: {}",
        params.rows.len()
    );
    eprintln!("replay parity: {parity}");
    assert!(
        t0.elapsed() < Duration::from_secs(180),
        "{:?}",
        t0.elapsed()
    );
    std::fs::remove_dir_all(&dir).ok();
}
