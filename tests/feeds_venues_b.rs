//! End to end for OKX v5, Kraken WS v2 and Deribit: each venue's emulator (`ringbolt-sim`,
//! in-process, TLS on loopback) serves the real collector (`ringbolt feeds --config`, child
//! process of the real binary) one source at a time; the test reads the bus segment as a
//! consumer, scrapes `/metrics`, and injects faults through the emulator's control port:
//! connect → subscribe → live, disconnect → reconnect (also through refused connections and a
//! slow TLS handshake), sequence gap → resync, checksum mismatch → resync (OKX, Kraken), corrupt
//! frame → counted parse error without a reconnect.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is the test failing

mod common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ringbolt_bus::{
    Consumer, FLAG_SNAPSHOT, FeedState, FeedStatusBody, Poll, Record, RecordKind, Segment, Start,
    TopOfBook, Trade, Venue,
};
use ringbolt_testkit::emulator::RunningEmulator;
use ringbolt_testkit::process::Reaper;
use ringbolt_testkit::{fs, http};

const BIN: &str = env!("CARGO_BIN_EXE_ringbolt");

/// One venue under test: bus venue, config / metrics name, symbols, its book stream.
struct Case {
    venue: Venue,
    name: &'static str,
    symbols: &'static [&'static str],
    /// `Record.stream` and metrics label of the book.
    book: (u8, &'static str),
    /// Whether book messages carry a checksum.
    checksum: bool,
    /// Sequenced messages a `gap` fault drops so that the book loses at least one update.
    gap_count: u32,
    /// Further streams (`Record.stream`) whose records must reach the bus: the index channels
    /// (OKX `index-tickers`, Deribit `deribit_price_index`).
    index_streams: &'static [u8],
}

const OKX: Case = Case {
    venue: Venue::Okx,
    name: "okx",
    symbols: &["BTC-USDT", "BTC-USDT-SWAP"],
    book: (1, "books"),
    checksum: true,
    gap_count: 1,
    index_streams: &[7],
};
const KRAKEN: Case = Case {
    venue: Venue::Kraken,
    name: "kraken",
    symbols: &["BTC/USD"],
    book: (1, "book"),
    checksum: true,
    gap_count: 1,
    index_streams: &[],
};
const DERIBIT: Case = Case {
    venue: Venue::Deribit,
    name: "deribit",
    symbols: &["BTC-PERPETUAL"],
    book: (1, "book"),
    checksum: false,
    // Trades are sequenced too and may come first in a step.
    gap_count: 2,
    index_streams: &[5],
};

/// Unlinks the test's bus segment however the test ends.
struct Shm(String);

impl Drop for Shm {
    fn drop(&mut self) {
        let _ = Segment::unlink(&self.0);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Collector {
    _proc: Reaper,
    metrics_port: u16,
    log: PathBuf,
}

/// Writes a collector config with the one source `case` served by `emu` and starts it.
fn collector(dir: &Path, emu: &RunningEmulator, case: &Case, segment: &str) -> Collector {
    let venue = &emu.info.venues[case.name];
    let symbols: Vec<String> = case.symbols.iter().map(|s| format!("\"{s}\"")).collect();
    let metrics_port = free_port();
    let cfg = format!(
        r#"
[feeds]
segment = "{segment}"
capacity = 262144
instrument_capacity = 64
health_addr = "127.0.0.1:{health}"
metrics_addr = "127.0.0.1:{metrics_port}"
busy_poll = false
max_runtime_s = 120
backoff_base_ms = 100
backoff_max_ms = 1000

[feeds.sources.{name}]
url = "{url}"
symbols = [{symbols}]
ca_file = "{ca}"
ca_only = true
"#,
        health = free_port(),
        name = case.name,
        url = venue.ws_url,
        symbols = symbols.join(", "),
        ca = emu.info.ca_pem,
    );
    let path = fs::write(dir, "feeds.toml", cfg);
    let log = dir.join("feeds.log");
    let child = Command::new(BIN)
        .args(["--log", "info", "feeds", "--config", path.to_str().unwrap()])
        .stdout(std::fs::File::create(dir.join("feeds.out")).unwrap())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("run ringbolt feeds");
    Collector {
        _proc: Reaper(child),
        metrics_port,
        log,
    }
}

/// `name{labels}` → value of every sample line of `/metrics`.
fn metrics(port: u16) -> BTreeMap<String, u64> {
    let text = http::exchange(
        ("127.0.0.1", port),
        "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(5),
    )
    .unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && l.contains('{'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// A `ringbolt_feed_<name>_total` counter of `venue`/`stream` (0 when not exported yet).
fn counter(m: &BTreeMap<String, u64>, name: &str, venue: &str, stream: &str) -> u64 {
    // One source per venue here, named after it.
    let key = format!(
        "ringbolt_feed_{name}_total{{venue=\"{venue}\",source=\"{venue}\",stream=\"{stream}\"}}"
    );
    m.get(&key).copied().unwrap_or(0)
}

/// Scrapes until `pred` holds.
fn wait_metrics(
    col: &Collector,
    what: &str,
    pred: impl Fn(&BTreeMap<String, u64>) -> bool,
) -> BTreeMap<String, u64> {
    let deadline = Instant::now() + Duration::from_secs(25);
    loop {
        let m = metrics(col.metrics_port);
        if pred(&m) {
            return m;
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(&col.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            panic!(
                "metrics: timed out waiting for {what}\ncollector log, newest first:\n{}",
                tail.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The collector's segment, read as a consumer; every record kept.
struct Bus {
    seg: std::sync::Arc<Segment>,
    consumer: Consumer,
    recs: Vec<Record>,
}

impl Bus {
    fn open(name: &str) -> Bus {
        let seg = Segment::open_wait(name, Duration::from_secs(60)).unwrap();
        let consumer = Consumer::new(&seg, 0, Start::Oldest).unwrap();
        Bus {
            seg,
            consumer,
            recs: Vec::new(),
        }
    }

    fn pump(&mut self) {
        let mut r = Record::zeroed();
        while let Poll::Ready = self.consumer.poll(&mut r) {
            self.recs.push(r);
        }
    }

    /// Reads until `pred(records since from)` holds.
    fn wait_for(&mut self, what: &str, from: usize, pred: impl Fn(&[Record]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(25);
        loop {
            self.pump();
            if pred(&self.recs[from.min(self.recs.len())..]) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "bus: timed out waiting for {what} ({} records)",
                self.recs.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn name(&self, id: u32) -> String {
        self.seg.instrument(id).map(|(_, n)| n).unwrap_or_default()
    }
}

fn data_records(recs: &[Record], venue: Venue) -> usize {
    recs.iter()
        .filter(|r| r.venue == venue as u8 && r.kind != RecordKind::FeedStatus as u8)
        .count()
}

/// Live with book snapshots and sane values on every instrument.
fn check_live(bus: &mut Bus, case: &Case) {
    bus.wait_for("connected, subscribed, live, book snapshots", 0, |recs| {
        common::went_through(
            recs,
            case.venue,
            0,
            &[FeedState::Connected, FeedState::Subscribed, FeedState::Live],
        ) && recs
            .iter()
            .filter(|r| r.venue == case.venue as u8 && r.stream == case.book.0)
            .filter(|r| r.has_flags(FLAG_SNAPSHOT))
            .count()
            >= case.symbols.len()
            && recs
                .iter()
                .any(|r| r.venue == case.venue as u8 && r.kind == RecordKind::Trade as u8)
            && data_records(recs, case.venue) > 200
            && case.index_streams.iter().all(|s| {
                recs.iter().any(|r| {
                    r.venue == case.venue as u8
                        && r.stream == *s
                        && r.kind == RecordKind::IndexPrice as u8
                })
            })
    });
    let in_btc_range = |p: i64| (10_000 * 100_000_000..1_000_000 * 100_000_000).contains(&p);
    let (mut tops, mut trades) = (0, 0);
    for r in bus.recs.iter().filter(|r| r.venue == case.venue as u8) {
        if let Some(t) = r.body_as::<TopOfBook>() {
            assert!(
                in_btc_range(t.bid_price) && t.bid_price < t.ask_price,
                "{t:?}"
            );
            tops += 1;
        }
        if let Some(t) = r.body_as::<Trade>() {
            assert!(in_btc_range(t.price) && t.size > 0, "{t:?}");
            trades += 1;
        }
        if r.kind != RecordKind::FeedStatus as u8 {
            let name = bus.name(r.instrument);
            assert!(case.symbols.contains(&name.as_str()), "instrument {name}");
        }
    }
    assert!(
        tops > 0 && trades > 0,
        "{} tops {tops} trades {trades}",
        case.name
    );
}

/// A listener fault armed (`None`: none), then a disconnect (TCP RST) → Disconnected,
/// Connected, Subscribed, Live, data again; counted.
fn check_reconnect(
    bus: &mut Bus,
    col: &Collector,
    emu: &RunningEmulator,
    case: &Case,
    listener: Option<&str>,
) {
    if let Some(query) = listener {
        emu.fault(case.name, query);
    }
    let from = bus.recs.len();
    emu.fault(case.name, "kind=disconnect");
    bus.wait_for("reconnect", from, |recs| {
        let seq = [
            FeedState::Disconnected,
            FeedState::Connected,
            FeedState::Subscribed,
            FeedState::Live,
        ];
        common::went_through(recs, case.venue, 0, &seq) && {
            let live = recs
                .iter()
                .rposition(|r| r.venue == case.venue as u8 && r.stream == 0)
                .unwrap_or(0);
            data_records(&recs[live..], case.venue) > 0
        }
    });
    wait_metrics(col, "reconnect counted", |m| {
        counter(m, "reconnects", case.name, case.book.1) >= 1
    });
}

/// Whether `recs` hold a `gap_detected` status of the book followed by a fresh book snapshot.
fn snapshot_after_gap(recs: &[Record], case: &Case) -> bool {
    let is_gap = |r: &Record| {
        r.venue == case.venue as u8
            && r.stream == case.book.0
            && r.body_as::<FeedStatusBody>()
                .is_some_and(|s| s.state == FeedState::GapDetected as u8)
    };
    recs.iter().position(is_gap).is_some_and(|at| {
        recs[at..].iter().any(|r| {
            r.venue == case.venue as u8 && r.stream == case.book.0 && r.has_flags(FLAG_SNAPSHOT)
        })
    })
}

/// A fault that breaks the book (`kind=gap|checksum`) → gap_detected, resubscribe, fresh
/// snapshot, resynced; counted.
fn check_resync(bus: &mut Bus, col: &Collector, emu: &RunningEmulator, case: &Case, query: &str) {
    let m0 = metrics(col.metrics_port);
    let (gaps, resyncs, checksums) = (
        counter(&m0, "gaps", case.name, case.book.1),
        counter(&m0, "resyncs", case.name, case.book.1),
        counter(&m0, "checksum_errors", case.name, case.book.1),
    );
    let from = bus.recs.len();
    emu.fault(case.name, query);
    bus.wait_for(
        &format!("{query} → gap_detected → snapshot"),
        from,
        |recs| snapshot_after_gap(recs, case),
    );
    // The end of the gap is announced on the bus too, not only counted.
    bus.wait_for(&format!("{query} → resynced"), from, |recs| {
        common::went_through(
            recs,
            case.venue,
            case.book.0,
            &[FeedState::GapDetected, FeedState::Resynced],
        )
    });
    let m = wait_metrics(col, &format!("{query}: gap and resync counted"), |m| {
        counter(m, "gaps", case.name, case.book.1) > gaps
            && counter(m, "resyncs", case.name, case.book.1) > resyncs
    });
    if query.contains("checksum") {
        assert!(counter(&m, "checksum_errors", case.name, case.book.1) > checksums);
    }
}

/// Corrupt frames: counted parse errors on the connection, data keeps flowing, no reconnect.
fn check_corrupt(bus: &mut Bus, col: &Collector, emu: &RunningEmulator, case: &Case) {
    let m0 = metrics(col.metrics_port);
    let before = counter(&m0, "parse_errors", case.name, "connection");
    let reconnects = counter(&m0, "reconnects", case.name, case.book.1);
    emu.fault(case.name, "kind=corrupt&count=2");
    wait_metrics(col, "corrupt frames counted", |m| {
        counter(m, "parse_errors", case.name, "connection") >= before + 2
    });
    let from = bus.recs.len();
    bus.wait_for("data after corrupt frames", from, |recs| {
        data_records(recs, case.venue) > 10
    });
    let m = metrics(col.metrics_port);
    assert_eq!(
        counter(&m, "reconnects", case.name, case.book.1),
        reconnects
    );
}

/// The whole scenario for one venue.
fn scenario(case: &Case) {
    let t0 = Instant::now();
    let dir = fs::tempdir("ringbolt-feeds-venues-b", case.name);
    let emu = RunningEmulator::start(case.name, &[case.name], |c| c.market.seed = 17);
    let segment = format!("rb-e2e-vb-{}-{}", case.name, std::process::id());
    let _shm = Shm(segment.clone());
    let col = collector(&dir, &emu, case, &segment);
    let mut bus = Bus::open(&segment);
    check_live(&mut bus, case);
    check_reconnect(&mut bus, &col, &emu, case, None);
    // Reconnect attempts refused for 1.5 s (closed right after accept), then one whose TLS
    // handshake takes 1.5 s: the collector retries through both.
    check_reconnect(&mut bus, &col, &emu, case, Some("kind=refuse&ms=1500"));
    check_reconnect(
        &mut bus,
        &col,
        &emu,
        case,
        Some("kind=slow_handshake&ms=1500"),
    );
    let stats = &emu.control("GET", "/stats")["venues"][case.name];
    assert!(
        stats["connections_refused"].as_u64().unwrap() >= 1,
        "{stats}"
    );
    assert!(
        stats["handshakes_delayed"].as_u64().unwrap() >= 1,
        "{stats}"
    );
    check_resync(
        &mut bus,
        &col,
        &emu,
        case,
        &format!("kind=gap&count={}", case.gap_count),
    );
    if case.checksum {
        check_resync(&mut bus, &col, &emu, case, "kind=checksum&count=1");
    }
    check_corrupt(&mut bus, &col, &emu, case);
    let m = metrics(col.metrics_port);
    assert_eq!(counter(&m, "parse_errors", case.name, case.book.1), 0);
    assert!(t0.elapsed() < Duration::from_secs(60), "{:?}", t0.elapsed());
}

#[test]
fn okx_spot_and_swap_live_reconnect_gap_checksum_corrupt() {
    scenario(&OKX);
}

#[test]
fn kraken_live_reconnect_gap_checksum_corrupt() {
    scenario(&KRAKEN);
}

#[test]
fn deribit_live_reconnect_gap_corrupt() {
    scenario(&DERIBIT);
}

/// After a gap the OKX, Kraken and Deribit adapters resubscribe and count the resync when the
/// fresh snapshot arrives, but publish no `resynced` FeedStatus on the bus (Binance and
/// Polymarket do), so a bus consumer sees `gap_detected` and never its end.
#[test]
fn resync_is_announced_on_the_bus() {
    let case = &DERIBIT;
    let dir = fs::tempdir("ringbolt-feeds-venues-b", "resynced");
    let emu = RunningEmulator::start("resynced", &[case.name], |c| c.market.seed = 18);
    let segment = format!("rb-e2e-vb-resynced-{}", std::process::id());
    let _shm = Shm(segment.clone());
    let col = collector(&dir, &emu, case, &segment);
    let mut bus = Bus::open(&segment);
    check_live(&mut bus, case);
    let from = bus.recs.len();
    emu.fault(case.name, "kind=gap&count=2");
    bus.wait_for("gap → snapshot", from, |recs| {
        snapshot_after_gap(recs, case)
    });
    drop(col);
    bus.wait_for("gap_detected → resynced", from, |recs| {
        common::went_through(
            recs,
            case.venue,
            case.book.0,
            &[FeedState::GapDetected, FeedState::Resynced],
        )
    });
}
