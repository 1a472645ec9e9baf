//! End to end through the real collector (`ringbolt feeds`, child process) against the Binance
//! USD-M futures and Bybit v5 emulators (in-process, TLS on loopback): connect, subscribe, live
//! data on the bus, sequence gap → gap_detected → resync (counted), disconnect → reconnect,
//! corrupt frame → counted parse error without a reconnect.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is the test failing

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringbolt_bus::{
    Consumer, FLAG_SNAPSHOT, FeedState, FeedStatusBody, Poll, Record, RecordKind, Segment, Start,
    TopOfBook, Venue,
};
use ringbolt_testkit::emulator::RunningEmulator;
use ringbolt_testkit::process::Reaper;
use ringbolt_testkit::{fs, http};

mod common;

/// `ringbolt feeds` with a config of `sources`, and its bus segment read as a consumer.
struct Run {
    _proc: Reaper,
    _unlink: common::Unlink,
    metrics_port: u16,
    log: PathBuf,
    seg: Arc<Segment>,
    consumer: Consumer,
    recs: Vec<Record>,
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl Run {
    /// Starts the collector on `sources` (TOML tables without the CA keys, added here).
    fn start(tag: &str, emu: &RunningEmulator, sources: &[(&str, String)]) -> Run {
        let dir = fs::tempdir("ringbolt-feeds-venues-a", tag);
        let segment = fs::unique("rb-e2e-va", tag);
        let ca = emu.info.ca_pem.clone();
        let metrics_port = free_port();
        let mut cfg = format!(
            "[feeds]\nsegment = \"{segment}\"\ncapacity = 262144\ninstrument_capacity = 256\n\
             metrics_addr = \"127.0.0.1:{metrics_port}\"\nbusy_poll = false\nmax_runtime_s = 100\n\
             backoff_base_ms = 100\nbackoff_max_ms = 1000\n"
        );
        for (name, keys) in sources {
            cfg.push_str(&format!(
                "\n[feeds.sources.{name}]\n{keys}\nca_file = \"{ca}\"\nca_only = true\n"
            ));
        }
        let path = fs::write(&dir, "feeds.toml", cfg);
        let log = dir.join("feeds.log");
        let child = Command::new(common::BIN)
            .args(["--log", "info", "feeds", "--config", path.to_str().unwrap()])
            .stdout(std::fs::File::create(dir.join("feeds.out")).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("run ringbolt feeds");
        let unlink = common::Unlink(vec![segment.clone()]);
        let seg = Segment::open_wait(&segment, Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("segment: {e}\n{}", read(&log)));
        let consumer = Consumer::new(&seg, 0, Start::Oldest).unwrap();
        Run {
            _proc: Reaper(child),
            _unlink: unlink,
            metrics_port,
            log,
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

    /// Reads until `pred(records since from)` holds; fails with the collector log otherwise.
    fn wait(&mut self, what: &str, secs: u64, from: usize, pred: impl Fn(&[Record]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            self.pump();
            if pred(&self.recs[from.min(self.recs.len())..]) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what} ({} records)\ncollector log:\n{}",
                self.recs.len(),
                read(&self.log)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `ringbolt_feed_<name>_total` of `venue`/`stream`, summed over the venue's sources (each
    /// source its own series, told apart by the `source` label).
    fn metric(&self, name: &str, venue: &str, stream: &str) -> u64 {
        self.series(name, venue, stream)
            .iter()
            .map(|(_, v)| v)
            .sum()
    }

    /// `ringbolt_feed_<name>_total` of `venue`/`stream`: `(source, value)` per source.
    fn series(&self, name: &str, venue: &str, stream: &str) -> Vec<(String, u64)> {
        let resp = http::get(("127.0.0.1", self.metrics_port), "/metrics");
        let head = format!("ringbolt_feed_{name}_total{{venue=\"{venue}\",source=\"");
        let tail = format!("\",stream=\"{stream}\"}}");
        resp.body
            .lines()
            .filter_map(|l| {
                let (key, value) = l.strip_prefix(&head)?.rsplit_once(' ')?;
                Some((key.strip_suffix(&tail)?.to_owned(), value.parse().ok()?))
            })
            .collect()
    }

    /// Waits until `metric` exceeds `above`; returns it.
    fn wait_metric(&self, name: &str, venue: &str, stream: &str, above: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.metric(name, venue, stream);
            if v > above {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{venue}/{stream} {name} stayed at {v}\n{}",
                read(&self.log)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn read(p: &PathBuf) -> String {
    let log = std::fs::read_to_string(p).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(30).collect();
    tail.join("\n")
}

/// The counters of the last `state` status record of `venue`'s `stream`.
fn status(recs: &[Record], venue: Venue, stream: u8, state: FeedState) -> FeedStatusBody {
    recs.iter()
        .rev()
        .filter(|r| r.venue == venue as u8 && r.stream == stream)
        .filter(|r| r.kind == RecordKind::FeedStatus as u8)
        .filter_map(|r| r.body_as::<FeedStatusBody>())
        .find(|b| b.state == state as u8)
        .unwrap_or_else(|| panic!("no {state:?} status on stream {stream}"))
}

fn count(recs: &[Record], venue: Venue, kind: RecordKind, stream: u8) -> usize {
    recs.iter()
        .filter(|r| r.venue == venue as u8 && r.kind == kind as u8 && r.stream == stream)
        .count()
}

fn snapshot(recs: &[Record], venue: Venue, stream: u8) -> bool {
    recs.iter()
        .any(|r| r.venue == venue as u8 && r.stream == stream && r.has_flags(FLAG_SNAPSHOT))
}

const RECONNECT: [FeedState; 4] = [
    FeedState::Disconnected,
    FeedState::Connected,
    FeedState::Subscribed,
    FeedState::Live,
];

/// Disconnect → reconnect with data after it; then corrupt frames → parse errors, no reconnect.
fn disconnect_and_corrupt(run: &mut Run, emu: &RunningEmulator, venue: Venue, name: &str) {
    let from = run.recs.len();
    emu.fault(name, "kind=disconnect");
    run.wait(&format!("{name} reconnect"), 20, from, |recs| {
        common::went_through(recs, venue, 0, &RECONNECT)
            && recs
                .iter()
                .rev()
                .take_while(|r| r.kind != RecordKind::FeedStatus as u8 || r.stream != 0)
                .any(|r| r.venue == venue as u8)
    });
    let reconnects = run.metric("reconnects", name, "connection");
    let errors = run.metric("parse_errors", name, "connection");
    emu.fault(name, "kind=corrupt&count=2");
    let now = run.wait_metric("parse_errors", name, "connection", errors + 1);
    assert!(now >= errors + 2, "{errors} -> {now}");
    let from = run.recs.len();
    run.wait(
        &format!("{name} data after corrupt frames"),
        10,
        from,
        |recs| recs.iter().filter(|r| r.venue == venue as u8).count() > 10,
    );
    assert_eq!(run.metric("reconnects", name, "connection"), reconnects);
}

#[test]
fn binance_futures_both_route_tiers_live_gap_resync_reconnect_corrupt() {
    let t0 = Instant::now();
    let emu = RunningEmulator::start("va-binance-futures", &["binance_futures"], |c| {
        c.market.seed = 17;
    });
    let addr = emu.info.venues["binance_futures"].addr;
    let mut run = Run::start(
        "binance-futures",
        &emu,
        &[
            (
                "binance_futures",
                format!(
                    "url = \"wss://{addr}/public/stream\"\nrest_url = \"https://{addr}\"\nsymbols = [\"BTCUSDT\"]"
                ),
            ),
            (
                "binance_futures_market",
                format!(
                    "venue = \"binance_futures\"\nurl = \"wss://{addr}/market/stream\"\nsymbols = [\"BTCUSDT\"]"
                ),
            ),
        ],
    );
    let v = Venue::BinanceFutures;
    // Public tier: book ticker and depth synchronised from the REST snapshot; market tier:
    // aggregate trades and mark price / index / funding.
    run.wait("both routes live with every stream", 40, 0, |recs| {
        common::went_through(
            recs,
            v,
            0,
            &[FeedState::Connected, FeedState::Subscribed, FeedState::Live],
        ) && count(recs, v, RecordKind::TopOfBook, 3) > 0
            && snapshot(recs, v, 5)
            && common::feed_states(recs, v, 4).contains(&FeedState::Resynced)
            && count(recs, v, RecordKind::Trade, 2) > 0
            && count(recs, v, RecordKind::IndexPrice, 6) > 0
    });
    for r in run
        .recs
        .iter()
        .filter(|r| r.venue == v as u8 && r.kind == RecordKind::TopOfBook as u8)
    {
        let t = r.body_as::<TopOfBook>().unwrap();
        assert!(
            t.bid_price < t.ask_price && t.bid_price > 1_000 * 100_000_000,
            "{t:?}"
        );
        assert_eq!(run.seg.instrument(r.instrument).unwrap().1, "BTCUSDT");
    }
    assert_eq!(
        run.metric("gaps", "binance_futures", "depth"),
        0,
        "no gap before the fault"
    );
    // A skipped u/pu: counted, gap_detected, a fresh REST snapshot, resynced.
    let from = run.recs.len();
    let resyncs = run.metric("resyncs", "binance_futures", "depth");
    emu.fault("binance_futures", "kind=gap&count=2");
    run.wait("gap → snapshot → resynced", 20, from, |recs| {
        common::went_through(recs, v, 4, &[FeedState::GapDetected, FeedState::Resynced])
            && snapshot(recs, v, 5)
    });
    run.wait_metric("gaps", "binance_futures", "depth", 0);
    run.wait_metric("resyncs", "binance_futures", "depth", resyncs);
    // The counters travel on the bus with the state changes.
    let gap = status(&run.recs[from..], v, 4, FeedState::GapDetected);
    let resynced = status(&run.recs[from..], v, 4, FeedState::Resynced);
    assert_eq!(gap.gaps, 1, "{gap:?}");
    assert!(
        resynced.resyncs > resyncs && resynced.gaps == 1,
        "{resynced:?}"
    );
    disconnect_and_corrupt(&mut run, &emu, v, "binance_futures");
    assert!(t0.elapsed() < Duration::from_secs(60), "{:?}", t0.elapsed());
}

#[test]
fn bybit_spot_live_gap_resubscribe_reconnect_corrupt() {
    let t0 = Instant::now();
    let emu = RunningEmulator::start("va-bybit", &["bybit"], |c| c.market.seed = 23);
    let addr = emu.info.venues["bybit"].addr;
    let mut run = Run::start(
        "bybit",
        &emu,
        &[(
            "bybit",
            format!("url = \"wss://{addr}/v5/public/spot\"\nsymbols = [\"BTCUSDT\"]"),
        )],
    );
    let v = Venue::Bybit;
    run.wait("live with book snapshot and trades", 40, 0, |recs| {
        common::went_through(
            recs,
            v,
            0,
            &[FeedState::Connected, FeedState::Subscribed, FeedState::Live],
        ) && snapshot(recs, v, 1)
            && count(recs, v, RecordKind::BookLevel, 1) > 200
            && count(recs, v, RecordKind::Trade, 2) > 0
    });
    assert_eq!(
        run.metric("gaps", "bybit", "orderbook"),
        0,
        "no gap before the fault"
    );
    // A skipped `u`: counted, gap_detected, unsubscribe + subscribe, a new snapshot.
    let from = run.recs.len();
    emu.fault("bybit", "kind=gap&count=1");
    run.wait("gap → resubscribe → snapshot", 20, from, |recs| {
        common::feed_states(recs, v, 1).contains(&FeedState::GapDetected) && {
            let at = recs.iter().position(|r| {
                r.venue == v as u8 && r.kind == RecordKind::FeedStatus as u8 && r.stream == 1
            });
            at.is_some_and(|i| snapshot(&recs[i..], v, 1))
        }
    });
    assert_eq!(run.wait_metric("gaps", "bybit", "orderbook", 0), 1);
    let gap = status(&run.recs[from..], v, 1, FeedState::GapDetected);
    assert_eq!((gap.gaps, gap.gap_records), (1, 1), "{gap:?}");
    disconnect_and_corrupt(&mut run, &emu, v, "bybit");
    assert!(t0.elapsed() < Duration::from_secs(60), "{:?}", t0.elapsed());
}

/// Bybit linear alone: tickers snapshot + partial deltas merged into top of book, mark / index
/// and funding records.
#[test]
fn bybit_linear_tickers_give_top_of_book_mark_index_and_funding() {
    let t0 = Instant::now();
    let emu = RunningEmulator::start("va-bybit-linear", &["bybit"], |c| c.market.seed = 29);
    let addr = emu.info.venues["bybit"].addr;
    let mut run = Run::start(
        "bybit-linear",
        &emu,
        &[(
            "bybit_linear",
            format!(
                "venue = \"bybit\"\nurl = \"wss://{addr}/v5/public/linear\"\nsymbols = [\"BTCUSDT\"]"
            ),
        )],
    );
    let v = Venue::Bybit;
    run.wait("linear tickers records", 40, 0, |recs| {
        count(recs, v, RecordKind::TopOfBook, 3) > 20
            && count(recs, v, RecordKind::IndexPrice, 3) > 0
            && count(recs, v, RecordKind::Funding, 3) > 0
            && snapshot(recs, v, 1)
    });
    // Deltas carry only changed fields: every merged top of book is still whole and uncrossed.
    for r in run
        .recs
        .iter()
        .filter(|r| r.venue == v as u8 && r.kind == RecordKind::TopOfBook as u8)
    {
        let t = r.body_as::<TopOfBook>().unwrap();
        assert!(
            t.bid_price > 1_000 * 100_000_000 && t.bid_price < t.ask_price,
            "{t:?}"
        );
        assert!(t.bid_size > 0 && t.ask_size > 0, "{t:?}");
    }
    assert_eq!(run.metric("gaps", "bybit", "orderbook"), 0);
    assert_eq!(run.metric("parse_errors", "bybit", "connection"), 0);
    assert!(t0.elapsed() < Duration::from_secs(60), "{:?}", t0.elapsed());
}

/// Records of `venue` of `kind` per instrument name.
fn per_instrument(run: &Run, venue: Venue, kind: RecordKind) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in run
        .recs
        .iter()
        .filter(|r| r.venue == venue as u8 && r.kind == kind as u8)
    {
        let name = run
            .seg
            .instrument(r.instrument)
            .map_or_else(|| format!("#{}", r.instrument), |(_, n)| n);
        *out.entry(name).or_insert(0) += 1;
    }
    out
}

/// Bybit spot and linear in one collector: same symbol `BTCUSDT`, but the source on the
/// `/linear` path names its instrument `linear/BTCUSDT`, so books, tops, trades and funding of
/// the two categories stay apart on the bus, and `/metrics` has one series per source. A gap
/// fault (on both connections) is detected and resynced by each source on its own.
#[test]
fn bybit_spot_and_linear_run_together_on_distinct_instruments() {
    let t0 = Instant::now();
    let emu = RunningEmulator::start("va-bybit-both", &["bybit"], |c| c.market.seed = 31);
    let addr = emu.info.venues["bybit"].addr;
    let mut run = Run::start(
        "bybit-both",
        &emu,
        &[
            (
                "bybit",
                format!("url = \"wss://{addr}/v5/public/spot\"\nsymbols = [\"BTCUSDT\"]"),
            ),
            (
                "bybit_linear",
                format!(
                    "venue = \"bybit\"\nurl = \"wss://{addr}/v5/public/linear\"\nsymbols = [\"BTCUSDT\"]"
                ),
            ),
        ],
    );
    let v = Venue::Bybit;
    let names = ["BTCUSDT", "linear/BTCUSDT"];
    run.wait("both categories live", 40, 0, |recs| {
        count(recs, v, RecordKind::Funding, 3) > 0
            && count(recs, v, RecordKind::Trade, 2) > 0
            && count(recs, v, RecordKind::BookLevel, 1) > 400
    });
    for kind in [RecordKind::BookLevel, RecordKind::Trade] {
        let per = per_instrument(&run, v, kind);
        assert_eq!(
            per.keys().map(String::as_str).collect::<Vec<_>>(),
            names,
            "{kind:?}: {per:?}"
        );
    }
    // Tickers with bid1/ask1 and funding are linear only: they never land on the spot
    // instrument.
    for kind in [RecordKind::Funding, RecordKind::TopOfBook] {
        let per = per_instrument(&run, v, kind);
        assert_eq!(
            per.keys().collect::<Vec<_>>(),
            ["linear/BTCUSDT"],
            "{kind:?}"
        );
    }
    for r in run
        .recs
        .iter()
        .filter(|r| r.venue == v as u8 && r.kind == RecordKind::TopOfBook as u8)
    {
        let t = r.body_as::<TopOfBook>().unwrap();
        assert!(t.bid_price < t.ask_price, "{t:?}");
    }
    let messages = run.series("messages", "bybit", "orderbook");
    assert_eq!(
        messages.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
        ["bybit", "bybit_linear"],
        "one series per source: {messages:?}"
    );
    assert!(messages.iter().all(|(_, n)| *n > 0), "{messages:?}");
    // A skipped `u` on both connections: each source detects it and resyncs its own book.
    let from = run.recs.len();
    emu.fault("bybit", "kind=gap&count=1");
    run.wait("a resynced book per category", 20, from, |recs| {
        let resynced: std::collections::BTreeSet<u32> = recs
            .iter()
            .filter(|r| r.venue == v as u8 && r.stream == 1)
            .filter(|r| {
                r.body_as::<FeedStatusBody>()
                    .is_some_and(|b| b.state == FeedState::GapDetected as u8)
            })
            .map(|r| r.instrument)
            .collect();
        resynced.len() == 2
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let gaps = run.series("gaps", "bybit", "orderbook");
        if gaps.len() == 2 && gaps.iter().all(|(_, n)| *n >= 1) {
            break;
        }
        assert!(Instant::now() < deadline, "gaps per source: {gaps:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(run.metric("parse_errors", "bybit", "connection"), 0);
    assert!(t0.elapsed() < Duration::from_secs(60), "{:?}", t0.elapsed());
}
