//! End to end: the emulators (`ringbolt-lab emulate`, in-process) serve Polymarket + Gamma, Chainlink RTDS,
//! Binance spot (+ REST depth) and Coinbase over TLS on loopback; `ringbolt feeds --config`
//! (child process of the real binary) collects them onto a bus segment; the test reads the
//! segment as a consumer, scrapes `/metrics` and `/healthz`, and injects faults through the
//! emulator's control port.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is the test failing

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringbolt_bus::{
    Consumer, FLAG_BATCH_END, FLAG_SNAPSHOT, FeedState, FeedStatusBody, IndexPrice, Poll, Record,
    RecordKind, Segment, Start, TopOfBook, Trade, Venue,
};
use ringbolt_testkit::emulator::RunningEmulator;
use ringbolt_testkit::process::Reaper;
use ringbolt_testkit::{fs, http};

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_ringbolt");

/// Unlinks the test's bus segment however the test ends.
struct Shm(String);

impl Drop for Shm {
    fn drop(&mut self) {
        let _ = Segment::unlink(&self.0);
    }
}

fn scratch_dir(tag: &str) -> PathBuf {
    fs::tempdir("ringbolt-feeds-e2e", tag)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the emulator; returns it and its start-up JSON line.
fn emulator(dir: &Path, window_len_s: i64) -> (RunningEmulator, serde_json::Value) {
    let certs = dir.join("certs");
    let cfg = fs::write(
        dir,
        "emulate.toml",
        format!(
            "cert_dir = \"{}\"\n[market]\nseed = 11\nwindow_len_s = {window_len_s}\n",
            certs.display()
        ),
    );
    let emu = common::emulate(&cfg);
    let info = serde_json::to_value(&emu.info).unwrap();
    (emu, info)
}

struct Collector {
    proc: Reaper,
    metrics_port: u16,
    health_port: u16,
    log: PathBuf,
}

/// Writes the collector config for the emulator in `info` and starts `ringbolt feeds`.
fn collector(
    dir: &Path,
    info: &serde_json::Value,
    segment: &str,
    window_s: i64,
    poly_extra: &str,
    env: &[(&str, String)],
) -> Collector {
    let ca = info["ca_pem"].as_str().unwrap();
    let addr = |v: &str| info["venues"][v]["addr"].as_str().unwrap().to_string();
    let (poly, rtds, binance, coinbase) = (
        addr("polymarket"),
        addr("chainlink_rtds"),
        addr("binance_spot"),
        addr("coinbase"),
    );
    let (metrics_port, health_port) = (free_port(), free_port());
    // A source table: its own keys, then the emulator's CA, trusted alone.
    let source = |name: &str, keys: &str| {
        format!("\n[feeds.sources.{name}]\n{keys}\nca_file = \"{ca}\"\nca_only = true\n")
    };
    let cfg = format!(
        r#"
[feeds]
segment = "{segment}"
capacity = 262144
instrument_capacity = 1024
health_addr = "127.0.0.1:{health_port}"
metrics_addr = "127.0.0.1:{metrics_port}"
busy_poll = false
max_runtime_s = 160
backoff_base_ms = 100
backoff_max_ms = 1000
{poly_source}{sources}"#,
        poly_source = source(
            "polymarket",
            &format!(
                "url = \"wss://{poly}/ws/market\"\nrest_url = \"https://{poly}\"\nwindow_s = {window_s}\ndiscovery_interval_ms = 500\nlinger_s = 2\n{poly_extra}"
            )
        ),
        sources = [
            source(
                "chainlink_rtds",
                &format!("url = \"wss://{rtds}/\"\nsymbols = [\"btc/usd\"]")
            ),
            source(
                "binance_spot",
                &format!(
                    "url = \"wss://{binance}/stream\"\nrest_url = \"https://{binance}\"\nsymbols = [\"BTCUSDT\"]"
                )
            ),
            source(
                "coinbase",
                &format!("url = \"wss://{coinbase}/\"\nsymbols = [\"BTC-USD\"]")
            ),
        ]
        .concat(),
    );
    let path = dir.join("feeds.toml");
    std::fs::write(&path, cfg).unwrap();
    let log = dir.join("feeds.log");
    let child = Command::new(BIN)
        .args(["--log", "info", "feeds", "--config", path.to_str().unwrap()])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(std::fs::File::create(dir.join("feeds.out")).unwrap())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("run ringbolt feeds");
    Collector {
        proc: Reaper(child),
        metrics_port,
        health_port,
        log,
    }
}

fn http(port: u16, request: &str) -> String {
    http::exchange(("127.0.0.1", port), request, Duration::from_secs(5)).unwrap()
}

/// `name{labels}` → value of every sample line.
fn metrics(port: u16) -> BTreeMap<String, u64> {
    let text = http(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("Content-Type: text/plain; version=0.0.4"));
    text.lines()
        .filter(|l| !l.starts_with('#') && l.contains('{'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

fn feed_metric(m: &BTreeMap<String, u64>, name: &str, venue: &str, stream: &str) -> u64 {
    // Sources are named after their venue here.
    let key = format!(
        "ringbolt_feed_{name}_total{{venue=\"{venue}\",source=\"{venue}\",stream=\"{stream}\"}}"
    );
    *m.get(&key).unwrap_or_else(|| {
        panic!(
            "no metric {key}; have {:?}",
            m.keys().take(5).collect::<Vec<_>>()
        )
    })
}

/// Scrapes until `pred` holds (counters are shared by the ring thread every 100 ms).
fn wait_metrics(
    port: u16,
    what: &str,
    pred: impl Fn(&BTreeMap<String, u64>) -> bool,
) -> BTreeMap<String, u64> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = metrics(port);
        if pred(&m) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "metrics: timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn fault(info: &serde_json::Value, venue: &str, kind: &str, count: u32) {
    fault_query(info, venue, &format!("kind={kind}&count={count}"));
}

fn fault_query(info: &serde_json::Value, venue: &str, query: &str) {
    let url = info["control_url"].as_str().unwrap();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let resp = http(
        port,
        &format!(
            "POST /fault?venue={venue}&{query} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
        ),
    );
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(
        !resp.contains("\"sessions\":0"),
        "no session got the fault: {resp}"
    );
}

/// The collector's segment, read as a consumer; every record kept.
struct Bus {
    seg: Arc<Segment>,
    consumer: Consumer,
    recs: Vec<Record>,
    lost: u64,
    log: PathBuf,
}

impl Bus {
    fn open(name: &str, log: &Path) -> Bus {
        let seg = Segment::open_wait(name, Duration::from_secs(60)).unwrap_or_else(|e| {
            panic!(
                "segment {name}: {e}\ncollector log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            )
        });
        let consumer = Consumer::new(&seg, 0, Start::Oldest).unwrap();
        Bus {
            seg,
            consumer,
            recs: Vec::new(),
            lost: 0,
            log: log.to_path_buf(),
        }
    }

    fn pump(&mut self) {
        let mut r = Record::zeroed();
        loop {
            match self.consumer.poll(&mut r) {
                Poll::Ready => self.recs.push(r),
                Poll::Empty => return,
                Poll::Lost { count } => self.lost += count,
                Poll::EpochChanged { lost, .. } => self.lost += lost,
                Poll::Retired => panic!("segment retired"),
            }
        }
    }

    /// Reads until `pred(records since `from`)` holds; fails with the collector log otherwise.
    fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        from: usize,
        pred: impl Fn(&Bus, &[Record]) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        loop {
            self.pump();
            if pred(self, &self.recs[from.min(self.recs.len())..]) {
                return;
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                panic!(
                    "timed out waiting for {what} ({} records read, {} lost)\ncollector log (last lines, newest first):\n{}",
                    self.recs.len(),
                    self.lost,
                    tail.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn name(&self, id: u32) -> String {
        self.seg.instrument(id).map(|(_, n)| n).unwrap_or_default()
    }
}

fn is(r: &Record, venue: Venue) -> bool {
    r.venue == venue as u8
}

/// Feed states published for `venue` on `stream`, in order.
fn states(recs: &[Record], venue: Venue, stream: u8) -> Vec<FeedState> {
    recs.iter()
        .filter(|r| is(r, venue) && r.stream == stream && r.kind == RecordKind::FeedStatus as u8)
        .filter_map(|r| FeedState::from_u8(r.body_as::<FeedStatusBody>()?.state))
        .collect()
}

fn data_records(recs: &[Record], venue: Venue) -> usize {
    recs.iter()
        .filter(|r| is(r, venue) && r.kind != RecordKind::FeedStatus as u8)
        .count()
}

const FOUR: [Venue; 4] = [
    Venue::Polymarket,
    Venue::ChainlinkRtds,
    Venue::BinanceSpot,
    Venue::Coinbase,
];

fn contains_seq(haystack: &[FeedState], needle: &[FeedState]) -> bool {
    let mut it = haystack.iter();
    needle.iter().all(|n| it.any(|h| h == n))
}

/// Whether the feed states of `venue`'s `stream` in `recs` pass through `seq`, in order.
fn went_through(recs: &[Record], venue: Venue, stream: u8, seq: &[FeedState]) -> bool {
    contains_seq(&states(recs, venue, stream), seq)
}

#[test]
fn collector_runs_four_sources_and_recovers_from_faults() {
    let t0 = Instant::now();
    let dir = scratch_dir("faults");
    let (_emu, info) = emulator(&dir, 300);
    let segment = format!("rb-e2e-feeds-{}", std::process::id());
    let _shm = Shm(segment.clone());
    let col = collector(&dir, &info, &segment, 300, "", &[]);
    let mut bus = Bus::open(&segment, &col.log);

    // Every source connects, subscribes, goes live and publishes records.
    bus.wait_for(
        "all four sources live with data",
        Duration::from_secs(60),
        0,
        |_, recs| {
            FOUR.iter().all(|v| {
                went_through(
                    recs,
                    *v,
                    0,
                    &[FeedState::Connected, FeedState::Subscribed, FeedState::Live],
                ) && data_records(recs, *v) > 0
            })
        },
    );
    // Binance depth: synchronised from the REST snapshot (lastUpdateId rules) before updates.
    bus.wait_for(
        "binance depth snapshot + resynced",
        Duration::from_secs(30),
        0,
        |_, recs| {
            recs.iter()
                .any(|r| is(r, Venue::BinanceSpot) && r.stream == 5 && r.has_flags(FLAG_SNAPSHOT))
                && states(recs, Venue::BinanceSpot, 4).contains(&FeedState::Resynced)
        },
    );

    // Sane values.
    let recs = bus.recs.clone();
    let in_btc_range = |p: i64| (1_000 * 100_000_000..10_000_000 * 100_000_000).contains(&p);
    let mut tops = 0;
    for r in recs
        .iter()
        .filter(|r| is(r, Venue::BinanceSpot) && r.kind == RecordKind::TopOfBook as u8)
    {
        let t = r.body_as::<TopOfBook>().unwrap();
        assert!(
            in_btc_range(t.bid_price) && t.bid_price < t.ask_price,
            "{t:?}"
        );
        assert!(t.bid_size > 0 && t.ask_size > 0);
        assert_eq!(bus.name(r.instrument), "BTCUSDT");
        tops += 1;
    }
    assert!(tops > 0);
    for r in recs
        .iter()
        .filter(|r| is(r, Venue::Coinbase) && r.kind == RecordKind::Trade as u8)
    {
        let t = r.body_as::<Trade>().unwrap();
        assert!(
            in_btc_range(t.price) && t.size > 0 && t.trade_id > 0,
            "{t:?}"
        );
        assert_eq!(bus.name(r.instrument), "BTC-USD");
    }
    let chainlink: Vec<IndexPrice> = recs
        .iter()
        .filter(|r| is(r, Venue::ChainlinkRtds) && r.kind == RecordKind::IndexPrice as u8)
        .map(|r| r.body_as::<IndexPrice>().unwrap())
        .collect();
    assert!(!chainlink.is_empty());
    for p in &chainlink {
        assert!(in_btc_range(p.price));
        assert_eq!(
            p.value_e18 / 10_000_000_000,
            i128::from(p.price),
            "e18 and e8 agree"
        );
    }
    let poly: Vec<&Record> = recs
        .iter()
        .filter(|r| is(r, Venue::Polymarket) && r.kind == RecordKind::BookLevel as u8)
        .collect();
    assert!(
        poly.iter()
            .any(|r| r.has_flags(FLAG_SNAPSHOT | FLAG_BATCH_END))
    );
    for r in &poly {
        let name = bus.name(r.instrument);
        let parts: Vec<&str> = name.split('/').collect();
        assert!(
            parts.len() == 3
                && parts[0].starts_with("btc-updown-5m-")
                && ["up", "down"].contains(&parts[1]),
            "instrument naming contract: {name}"
        );
        let l = r.body_as::<ringbolt_bus::BookLevel>().unwrap();
        assert!(
            (0..=100_000_000).contains(&l.price),
            "probability price {l:?}"
        );
    }
    for r in &recs {
        // CLOCK_REALTIME stamps; published after received.
        assert!(
            r.recv_ts_ns > 1_700_000_000_000_000_000 && r.publish_ts_ns >= r.recv_ts_ns,
            "{r:?}"
        );
    }

    // Health and metrics.
    let health = http(col.health_port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let streams_seen = [
        ("polymarket", "book"),
        ("polymarket", "price_change"),
        ("chainlink_rtds", "chainlink"),
        ("binance_spot", "depth"),
        ("binance_spot", "trade"),
        ("coinbase", "level2"),
        ("coinbase", "matches"),
    ];
    let m0 = wait_metrics(col.metrics_port, "every stream counted", |m| {
        streams_seen
            .iter()
            .all(|(v, s)| feed_metric(m, "messages", v, s) > 0)
    });
    for (venue, stream) in streams_seen {
        assert!(
            feed_metric(&m0, "messages", venue, stream) > 0,
            "{venue}/{stream}"
        );
        assert!(
            feed_metric(&m0, "bytes", venue, stream) > 0,
            "{venue}/{stream}"
        );
    }
    for v in ["polymarket", "chainlink_rtds", "binance_spot", "coinbase"] {
        let key = format!("ringbolt_feed_state{{venue=\"{v}\",source=\"{v}\"}}");
        assert!(m0.contains_key(&key), "{key}");
    }
    assert_eq!(
        m0["ringbolt_feed_subscribed_tokens{venue=\"polymarket\",source=\"polymarket\"}"],
        4
    );

    // Disconnect (TCP RST): reconnect with backoff, the transitions on the bus, data again.
    for (venue, name) in [
        (Venue::BinanceSpot, "binance_spot"),
        (Venue::Polymarket, "polymarket"),
        (Venue::Coinbase, "coinbase"),
        (Venue::ChainlinkRtds, "chainlink_rtds"),
    ] {
        let from = bus.recs.len();
        fault(&info, name, "disconnect", 1);
        bus.wait_for(
            &format!("{name} reconnect"),
            Duration::from_secs(30),
            from,
            |_, recs| {
                went_through(
                    recs,
                    venue,
                    0,
                    &[
                        FeedState::Disconnected,
                        FeedState::Connected,
                        FeedState::Subscribed,
                        FeedState::Live,
                    ],
                ) && {
                    let live_at = recs
                        .iter()
                        .rposition(|r| {
                            is(r, venue) && r.kind == RecordKind::FeedStatus as u8 && r.stream == 0
                        })
                        .unwrap_or(0);
                    data_records(&recs[live_at..], venue) > 0
                }
            },
        );
    }
    let reconnect_total = |m: &BTreeMap<String, u64>, venue: &str| -> u64 {
        m.iter()
            .filter(|(k, _)| {
                k.starts_with("ringbolt_feed_reconnects_total{")
                    && k.contains(&format!("venue=\"{venue}\""))
            })
            .map(|(_, v)| v)
            .sum()
    };
    let m1 = wait_metrics(col.metrics_port, "reconnects counted", |m| {
        ["binance_spot", "polymarket", "coinbase", "chainlink_rtds"]
            .iter()
            .all(|v| reconnect_total(m, v) >= 1)
    });
    assert!(feed_metric(&m1, "reconnects", "binance_spot", "depth") >= 1);
    assert!(feed_metric(&m1, "reconnects", "polymarket", "book") >= 1);
    assert!(feed_metric(&m1, "reconnects", "chainlink_rtds", "chainlink") >= 1);

    // Binance depth gap: counted, gap_detected, new REST snapshot, resynced.
    let from = bus.recs.len();
    let gaps_before = feed_metric(&m1, "gaps", "binance_spot", "depth");
    let resyncs_before = feed_metric(&m1, "resyncs", "binance_spot", "depth");
    fault(&info, "binance_spot", "gap", 8);
    bus.wait_for(
        "binance gap → snapshot → resynced",
        Duration::from_secs(30),
        from,
        |_, recs| {
            went_through(
                recs,
                Venue::BinanceSpot,
                4,
                &[FeedState::GapDetected, FeedState::Resynced],
            ) && recs
                .iter()
                .any(|r| is(r, Venue::BinanceSpot) && r.stream == 5 && r.has_flags(FLAG_SNAPSHOT))
        },
    );
    let m2 = wait_metrics(col.metrics_port, "binance gap + resync counted", |m| {
        feed_metric(m, "gaps", "binance_spot", "depth") > gaps_before
            && feed_metric(m, "resyncs", "binance_spot", "depth") > resyncs_before
    });

    // Coinbase gap: the trade-id chain breaks; counted.
    let cb_gaps = |m: &BTreeMap<String, u64>| {
        feed_metric(m, "gaps", "coinbase", "matches")
            + feed_metric(m, "gaps", "coinbase", "heartbeat")
    };
    let before = cb_gaps(&m2);
    bus.pump();
    let from = bus.recs.len();
    fault(&info, "coinbase", "gap", 12);
    let deadline = Instant::now() + Duration::from_secs(20);
    while cb_gaps(&metrics(col.metrics_port)) <= before {
        assert!(Instant::now() < deadline, "coinbase gap not counted");
        std::thread::sleep(Duration::from_millis(200));
    }
    // ... and announced on the bus (the trade stream goes on: gap_detected, then resynced).
    bus.wait_for(
        "coinbase matches gap_detected → resynced",
        Duration::from_secs(20),
        from,
        |_, recs| {
            went_through(
                recs,
                Venue::Coinbase,
                2,
                &[FeedState::GapDetected, FeedState::Resynced],
            )
        },
    );

    // Polymarket gap (lost price_change): the top of book disagrees with best_bid_ask → counted,
    // gap_detected, fresh `book` snapshot, resynced.
    let before = feed_metric(
        &metrics(col.metrics_port),
        "gaps",
        "polymarket",
        "price_change",
    );
    assert_eq!(before, 0, "no Polymarket gap before one is injected");
    let from = bus.recs.len();
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        fault(&info, "polymarket", "gap", 3);
        std::thread::sleep(Duration::from_secs(2));
        bus.pump();
        if states(&bus.recs[from..], Venue::Polymarket, 2).contains(&FeedState::GapDetected) {
            break;
        }
        assert!(Instant::now() < deadline, "polymarket gap never detected");
    }
    bus.wait_for(
        "polymarket resynced",
        Duration::from_secs(20),
        from,
        |_, recs| {
            went_through(
                recs,
                Venue::Polymarket,
                2,
                &[FeedState::GapDetected, FeedState::Resynced],
            )
        },
    );
    let m3 = wait_metrics(col.metrics_port, "polymarket gap + resync counted", |m| {
        feed_metric(m, "gaps", "polymarket", "price_change") > before
            && feed_metric(m, "resyncs", "polymarket", "price_change") >= 1
    });
    assert!(m3["ringbolt_feed_top_checks_total{venue=\"polymarket\",source=\"polymarket\"}"] > 0);

    // Corrupt frames: counted as parse errors, skipped, data keeps flowing on the connection.
    for (venue, name) in [
        (Venue::BinanceSpot, "binance_spot"),
        (Venue::Coinbase, "coinbase"),
    ] {
        let before = feed_metric(
            &metrics(col.metrics_port),
            "parse_errors",
            name,
            "connection",
        );
        let reconnects = reconnect_total(&metrics(col.metrics_port), name);
        fault(&info, name, "corrupt", 2);
        let deadline = Instant::now() + Duration::from_secs(20);
        while feed_metric(
            &metrics(col.metrics_port),
            "parse_errors",
            name,
            "connection",
        ) < before + 2
        {
            assert!(
                Instant::now() < deadline,
                "{name}: corrupt frames not counted"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let from = bus.recs.len();
        bus.wait_for(
            &format!("{name} data after corrupt frames"),
            Duration::from_secs(10),
            from,
            |_, recs| data_records(recs, venue) > 10,
        );
        assert_eq!(
            reconnect_total(&metrics(col.metrics_port), name),
            reconnects,
            "{name}: no reconnect"
        );
    }
    // Stall (socket kept, no data): Live → Stale after the adapter's threshold (Coinbase: 3 s of
    // no heartbeat), then Live again when data resumes, without a reconnect.
    let from = bus.recs.len();
    let reconnects = reconnect_total(&metrics(col.metrics_port), "coinbase");
    fault_query(&info, "coinbase", "kind=stall&ms=4500");
    bus.wait_for(
        "coinbase stale then live",
        Duration::from_secs(20),
        from,
        |_, recs| {
            went_through(
                recs,
                Venue::Coinbase,
                0,
                &[FeedState::Stale, FeedState::Live],
            )
        },
    );
    assert!(!states(&bus.recs[from..], Venue::Coinbase, 0).contains(&FeedState::Disconnected));
    assert_eq!(
        reconnect_total(&metrics(col.metrics_port), "coinbase"),
        reconnects
    );

    let log = std::fs::read_to_string(&col.log).unwrap();
    assert!(
        log.contains("frame skipped"),
        "raw bytes of a bad frame are logged"
    );
    assert_eq!(bus.lost, 0, "the consumer kept up");

    // SIGTERM: a clean stop with a JSON summary of every source.
    let mut col = col;
    let pid = col.proc.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = col.proc.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "collector did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let out = std::fs::read_to_string(dir.join("feeds.out")).unwrap();
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(summary["segment"], segment.as_str());
    for v in ["polymarket", "chainlink_rtds", "binance_spot", "coinbase"] {
        let s = &summary["sources"][v];
        assert!(s["records"].as_u64().unwrap() > 0, "{v}: {s}");
        assert!(s["reconnects"].as_u64().unwrap() >= 1, "{v}: {s}");
        let lat = &s["recv_to_publish_ns"];
        assert!(lat["samples"].as_u64().unwrap() > 0, "{v}: {s}");
        assert!(lat["p50_ns"].as_u64().unwrap() <= lat["p99_ns"].as_u64().unwrap());
        eprintln!(
            "{v}: recv→publish p50 {} ns, p99 {} ns over {} messages (debug build)",
            lat["p50_ns"], lat["p99_ns"], lat["samples"]
        );
    }
    assert!(
        summary["sources"]["binance_spot"]["parse_errors"]
            .as_u64()
            .unwrap()
            >= 2
    );
    eprintln!("faults test: {:.1} s", t0.elapsed().as_secs_f64());
}

#[test]
fn collector_rolls_polymarket_windows_without_reconnecting() {
    let t0 = Instant::now();
    let dir = scratch_dir("rollover");
    let window_s = 8;
    let (_emu, info) = emulator(&dir, window_s);
    let segment = format!("rb-e2e-rollover-{}", std::process::id());
    let _shm = Shm(segment.clone());
    // Under systemd: READY=1 once up, WATCHDOG=1 from the supervising loop.
    let notify_path = dir.join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let col = collector(
        &dir,
        &info,
        &segment,
        window_s,
        // Discovery through `/events?slug=` here (the other test uses `/markets?slug=`).
        "gamma_events = true",
        &[
            ("NOTIFY_SOCKET", notify_path.display().to_string()),
            ("WATCHDOG_USEC", "400000".to_string()),
        ],
    );
    let mut seen = Vec::new();
    let mut buf = [0u8; 64];
    while !(seen.iter().any(|m| m == "READY=1") && seen.iter().any(|m| m == "WATCHDOG=1")) {
        let n = notify.recv(&mut buf).expect("sd_notify datagrams");
        seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert_eq!(seen[0], "READY=1", "{seen:?}");
    let mut bus = Bus::open(&segment, &col.log);
    // Windows registered as `<slug>/<up|down>/<token_id>`, with Polymarket records on them.
    let windows_with_data = |bus: &Bus, recs: &[Record]| -> Vec<i64> {
        let mut starts: Vec<i64> = recs
            .iter()
            .filter(|r| {
                is(r, Venue::Polymarket)
                    && r.kind == RecordKind::BookLevel as u8
                    && r.has_flags(FLAG_SNAPSHOT)
            })
            .filter_map(|r| {
                let name = bus.name(r.instrument);
                name.strip_prefix("btc-updown-5m-")?
                    .split('/')
                    .next()?
                    .parse()
                    .ok()
            })
            .collect();
        starts.sort_unstable();
        starts.dedup();
        starts
    };
    // Three distinct windows' books arrive: the two at start-up and one subscribed at a rollover.
    bus.wait_for(
        "books of three windows",
        Duration::from_secs(45),
        0,
        |bus, recs| windows_with_data(bus, recs).len() >= 3,
    );
    let starts = windows_with_data(&bus, &bus.recs.clone());
    for w in starts.windows(2) {
        assert_eq!(w[1] - w[0], window_s, "consecutive windows: {starts:?}");
    }
    // No reconnect: one Connected on the Polymarket connection, never Disconnected.
    let st = states(&bus.recs, Venue::Polymarket, 0);
    assert_eq!(
        st.iter().filter(|s| **s == FeedState::Connected).count(),
        1,
        "{st:?}"
    );
    assert!(!st.contains(&FeedState::Disconnected), "{st:?}");
    // Expired windows are unsubscribed on the same connection.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&col.log)
        .unwrap()
        .contains("unsubscribing")
    {
        assert!(
            Instant::now() < deadline,
            "no expired window was unsubscribed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    bus.pump();
    let st = states(&bus.recs, Venue::Polymarket, 0);
    assert!(!st.contains(&FeedState::Disconnected), "{st:?}");
    let m = metrics(col.metrics_port);
    assert!(m["ringbolt_feed_rollovers_total{venue=\"polymarket\",source=\"polymarket\"}"] >= 1);
    assert_eq!(feed_metric(&m, "reconnects", "polymarket", "book"), 0);
    // Expired windows are unsubscribed: at most current + next (+ one lingering) are held.
    assert!(m["ringbolt_feed_subscribed_tokens{venue=\"polymarket\",source=\"polymarket\"}"] <= 6);
    eprintln!("rollover test: {:.1} s", t0.elapsed().as_secs_f64());
}

#[test]
fn collector_refuses_a_bad_config_clearly() {
    let dir = scratch_dir("badcfg");
    let path = dir.join("bad.toml");
    for (text, expect) in [
        ("[feeds]\nsegmnt = \"x\"\n", "unknown field `segmnt`"),
        ("[feeds]\n", "no enabled source"),
        (
            "[feeds.sources.nasdaq]\nsymbols = [\"X\"]\n",
            "unknown venue `nasdaq`",
        ),
        (
            "[feeds.sources.coinbase]\nurl = \"ftp://x\"\nsymbols = [\"BTC-USD\"]\n",
            "unsupported scheme",
        ),
        ("[feeds.sources.coinbase]\n", "symbols is empty"),
    ] {
        std::fs::write(&path, text).unwrap();
        let out = Command::new(BIN)
            .args(["feeds", "--config", path.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{text}: {err}");
    }
}
