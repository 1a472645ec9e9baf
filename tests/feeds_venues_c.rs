//! End to end for Gemini v2, Bitstamp v2 (+ REST order book) and PolyBolt: the emulators
//! (in-process, TLS on loopback) serve them from the same synthetic market as Chainlink RTDS;
//! the real collector (`ringbolt feeds --config`, child process) collects all four onto a bus
//! segment; the test reads the segment, scrapes `/metrics` and injects faults through the
//! emulator's control port: connect, subscribe, live, disconnect → reconnect, gap → resync,
//! `dropped` counts, corrupt → counted, stall → stale → live, refused connections, and
//! PolyBolt's credential check.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is the test failing

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringbolt_bus::{
    Consumer, FLAG_SNAPSHOT, FeedState, IndexPrice, Poll, Record, RecordKind, Segment, Start,
    Trade, Venue,
};
use ringbolt_sim::polybolt::{EMULATED_API_KEY, EMULATED_PASSPHRASE, EMULATED_SECRET};
use ringbolt_testkit::emulator::RunningEmulator;
use ringbolt_testkit::process::Reaper;
use ringbolt_testkit::{fs, http};

mod common;

const VENUES: [(Venue, &str); 4] = [
    (Venue::ChainlinkRtds, "chainlink_rtds"),
    (Venue::Gemini, "gemini"),
    (Venue::Bitstamp, "bitstamp"),
    (Venue::PolyBolt, "polybolt"),
];

/// The emulator, the collector child and its bus segment (unlinked on drop).
struct Run {
    _emu: RunningEmulator,
    info: serde_json::Value,
    _col: Reaper,
    metrics_port: u16,
    log: PathBuf,
    segment: String,
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = Segment::unlink(&self.segment);
    }
}

fn port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the emulator and a collector of the four sources; `secret` is the PolyBolt secret
/// written to the credentials file.
fn start(tag: &str, secret: &str) -> Run {
    let dir = fs::tempdir("ringbolt-feeds-venues-c", tag);
    let cfg = fs::write(
        &dir,
        "emulate.toml",
        format!(
            "cert_dir = \"{}\"\n[market]\nseed = 13\n",
            dir.join("certs").display()
        ),
    );
    let emu = common::emulate(&cfg);
    let info = serde_json::to_value(&emu.info).unwrap();
    let creds = fs::write(
        &dir,
        "polybolt.toml",
        format!(
            "api_key = \"{EMULATED_API_KEY}\"\nsecret = \"{secret}\"\npassphrase = \"{EMULATED_PASSPHRASE}\"\n"
        ),
    );
    let ca = info["ca_pem"].as_str().unwrap();
    let url = |v: &str| info["venues"][v]["ws_url"].as_str().unwrap().to_string();
    let rest = |v: &str| info["venues"][v]["rest_url"].as_str().unwrap().to_string();
    let segment = format!("rb-e2e-venues-c-{tag}-{}", std::process::id());
    let metrics_port = port();
    let mut text = format!(
        "[feeds]\nsegment = \"{segment}\"\ncapacity = 262144\ninstrument_capacity = 256\n\
         metrics_addr = \"127.0.0.1:{metrics_port}\"\nmax_runtime_s = 120\nbackoff_base_ms = 100\n\
         backoff_max_ms = 500\nstale_after_ms = 1500\n"
    );
    for (name, extra) in [
        ("chainlink_rtds", "symbols = [\"btc/usd\"]".to_string()),
        ("gemini", "symbols = [\"BTCUSD\"]".to_string()),
        (
            "bitstamp",
            format!(
                "symbols = [\"btcusd\"]\nrest_url = \"{}\"",
                rest("bitstamp")
            ),
        ),
        (
            "polybolt",
            format!(
                "symbols = [\"btcusd\"]\ncredentials_file = \"{}\"",
                creds.display()
            ),
        ),
    ] {
        text.push_str(&format!(
            "\n[feeds.sources.{name}]\nurl = \"{}\"\n{extra}\nca_file = \"{ca}\"\nca_only = true\n",
            url(name)
        ));
    }
    let path = fs::write(&dir, "feeds.toml", text);
    let log = dir.join("feeds.log");
    let child = Command::new(common::BIN)
        .args(["--log", "info", "feeds", "--config", path.to_str().unwrap()])
        .stdout(std::fs::File::create(dir.join("feeds.out")).unwrap())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("run ringbolt feeds");
    Run {
        _emu: emu,
        info,
        _col: Reaper(child),
        metrics_port,
        log,
        segment,
    }
}

impl Run {
    fn control(&self, venue: &str, query: &str) {
        let url = self.info["control_url"].as_str().unwrap();
        let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
        let req = format!(
            "POST /fault?venue={venue}&{query} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
        );
        let resp = http::exchange(("127.0.0.1", port), &req, Duration::from_secs(5)).unwrap();
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    }

    /// `name{venue,stream}` → value, summed over the venue's streams when `stream` is `None`.
    fn metric(&self, name: &str, venue: &str, stream: Option<&str>) -> u64 {
        let req = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
        // 0 while the endpoint is not up yet.
        let Ok(text) = http::exchange(
            ("127.0.0.1", self.metrics_port),
            req,
            Duration::from_secs(5),
        ) else {
            return 0;
        };
        // Any source of the venue (`source` label), then its stream.
        let head = format!("ringbolt_feed_{name}_total{{venue=\"{venue}\",source=\"");
        text.lines()
            .filter_map(|l| l.strip_prefix(&head)?.split_once("\",stream=\""))
            .map(|(_, l)| l)
            .filter(|l| stream.is_none_or(|s| l.starts_with(&format!("{s}\""))))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<u64>().ok())
            .sum()
    }

    /// Waits until `pred` holds on the metrics (shared by the ring thread every 100 ms).
    fn wait_metric(&self, what: &str, pred: impl Fn(&Run) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !pred(self) {
            assert!(Instant::now() < deadline, "metrics: timed out on {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The segment read as a consumer.
struct Bus {
    seg: Arc<Segment>,
    consumer: Consumer,
    recs: Vec<Record>,
    log: PathBuf,
}

impl Bus {
    fn open(run: &Run) -> Bus {
        let seg = Segment::open_wait(&run.segment, Duration::from_secs(60)).unwrap_or_else(|e| {
            panic!(
                "{e}\n{}",
                std::fs::read_to_string(&run.log).unwrap_or_default()
            )
        });
        let consumer = Consumer::new(&seg, 0, Start::Oldest).unwrap();
        Bus {
            seg,
            consumer,
            recs: Vec::new(),
            log: run.log.clone(),
        }
    }

    /// Reads until `pred(records since from)` holds.
    fn wait(&mut self, what: &str, from: usize, pred: impl Fn(&[Record]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut r = Record::zeroed();
        loop {
            while let Poll::Ready = self.consumer.poll(&mut r) {
                self.recs.push(r);
            }
            if pred(&self.recs[from.min(self.recs.len())..]) {
                return;
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                panic!(
                    "timed out on {what}; log, newest first:\n{}",
                    tail.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn data(recs: &[Record], venue: Venue) -> usize {
    recs.iter()
        .filter(|r| r.venue == venue as u8 && r.kind != RecordKind::FeedStatus as u8)
        .count()
}

const UP: [FeedState; 3] = [FeedState::Connected, FeedState::Subscribed, FeedState::Live];
const BACK: [FeedState; 4] = [
    FeedState::Disconnected,
    FeedState::Connected,
    FeedState::Subscribed,
    FeedState::Live,
];

fn index_prices(recs: &[Record], venue: Venue, stream: u8) -> Vec<(i64, IndexPrice)> {
    recs.iter()
        .filter(|r| r.venue == venue as u8 && r.stream == stream)
        .filter_map(|r| Some((r.exchange_ts_ns, r.body_as::<IndexPrice>()?)))
        .collect()
}

/// Prices agree across venues: PolyBolt's price is RTDS's Chainlink value at the same
/// observation; its TWAP and the spot venues' trades are near it.
fn check_values(bus: &Bus) {
    let cl: BTreeMap<i64, i128> = index_prices(&bus.recs, Venue::ChainlinkRtds, 1)
        .into_iter()
        .map(|(ts, p)| (ts, p.value_e18))
        .collect();
    let pb = index_prices(&bus.recs, Venue::PolyBolt, 1);
    let matched = pb
        .iter()
        .filter(|(ts, p)| {
            assert_eq!(p.price_type, 1);
            cl.get(ts)
                .is_some_and(|v| *v / 10_000_000_000 * 10_000_000_000 == p.value_e18)
        })
        .count();
    assert!(
        matched >= 30,
        "{matched} PolyBolt prices equal to Chainlink's"
    );
    let last = pb.last().unwrap().1.price;
    let near = |p: i64| (p - last).abs() < last / 100;
    let twap = index_prices(&bus.recs, Venue::PolyBolt, 2);
    assert!(twap.iter().all(|(_, t)| t.price_type == 3));
    assert!(near(twap.last().unwrap().1.price));
    for v in [Venue::Gemini, Venue::Bitstamp] {
        let trades: Vec<Trade> = bus
            .recs
            .iter()
            .filter(|r| r.venue == v as u8)
            .filter_map(Record::body_as::<Trade>)
            .collect();
        assert!(trades.len() > 5, "{v:?}: {} trades", trades.len());
        assert!(near(trades.last().unwrap().price), "{v:?}");
    }
    let name = |v: Venue| {
        let r = bus
            .recs
            .iter()
            .rev()
            .find(|r| r.venue == v as u8 && r.stream == 1);
        bus.seg.instrument(r.unwrap().instrument).unwrap().1
    };
    assert_eq!(
        (name(Venue::Gemini), name(Venue::PolyBolt)),
        ("BTCUSD".into(), "btcusd".into())
    );
}

#[test]
fn gemini_bitstamp_polybolt_run_through_the_collector_and_recover_from_faults() {
    let t0 = Instant::now();
    let run = start("faults", EMULATED_SECRET);
    let mut bus = Bus::open(&run);
    bus.wait("all four live with data", 0, |recs| {
        VENUES
            .iter()
            .all(|(v, _)| common::went_through(recs, *v, 0, &UP) && data(recs, *v) > 0)
    });
    // Gemini: the first l2_updates is the book snapshot; Bitstamp: diffs wait for the REST book.
    bus.wait("books synchronised, a minute of prices", 0, |recs| {
        recs.iter()
            .any(|r| r.venue == Venue::Gemini as u8 && r.has_flags(FLAG_SNAPSHOT))
            && recs
                .iter()
                .any(|r| r.venue == Venue::Bitstamp as u8 && r.stream == 4)
            && index_prices(recs, Venue::PolyBolt, 1).len() > 60
            && [Venue::Gemini, Venue::Bitstamp].iter().all(|v| {
                recs.iter()
                    .filter(|r| r.venue == *v as u8 && r.body_as::<Trade>().is_some())
                    .count()
                    > 5
            })
    });
    run.wait_metric("bitstamp resynced from REST", |r| {
        r.metric("resyncs", "bitstamp", Some("diff_order_book")) >= 1
    });
    check_values(&bus);
    assert_eq!(run.metric("gaps", "polybolt", None), 0);

    reconnects(&run, &mut bus);
    polybolt_gaps(&run, &mut bus);
    corrupt_stall_refuse(&run, &mut bus);
    assert!(t0.elapsed() < Duration::from_secs(60), "{:?}", t0.elapsed());
}

/// Disconnect (RST) and the venue's own reconnect request: back with a fresh book.
fn reconnects(run: &Run, bus: &mut Bus) {
    for (venue, name, kind) in [
        (Venue::Gemini, "gemini", "disconnect"),
        (Venue::Bitstamp, "bitstamp", "request_reconnect"),
        (Venue::PolyBolt, "polybolt", "disconnect"),
    ] {
        let from = bus.recs.len();
        run.control(name, &format!("kind={kind}"));
        bus.wait(&format!("{name} {kind} → live"), from, |recs| {
            common::went_through(recs, venue, 0, &BACK) && data(recs, venue) > 0
        });
    }
    run.wait_metric("resyncs after reconnects", |r| {
        r.metric("resyncs", "gemini", Some("l2")) >= 2
            && r.metric("resyncs", "bitstamp", Some("diff_order_book")) >= 2
    });
    assert_eq!(
        run.metric("gaps", "polybolt", None),
        0,
        "seq restarts on reconnect"
    );
}

/// PolyBolt gap (sequence numbers skipped) then `dropped` (slow consumer): both counted with the
/// frames missed, gap_detected → resynced on the bus.
fn polybolt_gaps(run: &Run, bus: &mut Bus) {
    let from = bus.recs.len();
    run.control("polybolt", "kind=gap&count=2");
    run.wait_metric("polybolt seq gap", |r| {
        r.metric("gap_records", "polybolt", None) >= 2
    });
    let after_gap = run.metric("gap_records", "polybolt", None);
    run.control("polybolt", "kind=dropped&count=3");
    run.wait_metric("polybolt dropped counts", |r| {
        r.metric("gap_records", "polybolt", None) >= after_gap + 6
    });
    bus.wait("polybolt gap → resynced", from, |recs| {
        [1, 2].iter().any(|s| {
            common::went_through(
                recs,
                Venue::PolyBolt,
                *s,
                &[FeedState::GapDetected, FeedState::Resynced],
            )
        })
    });
}

/// Corrupt frames, a stall, refused connections and a slow handshake.
fn corrupt_stall_refuse(run: &Run, bus: &mut Bus) {
    // Corrupt frames: counted, skipped, no reconnect.
    let reconnects = run.metric("reconnects", "gemini", None);
    let before = run.metric("parse_errors", "gemini", Some("connection"));
    run.control("gemini", "kind=corrupt&count=2");
    run.wait_metric("gemini corrupt frames counted", |r| {
        r.metric("parse_errors", "gemini", Some("connection")) >= before + 2
    });
    assert_eq!(run.metric("reconnects", "gemini", None), reconnects);

    // Stall: stale after 1.5 s of silence, live again without a reconnect.
    let from = bus.recs.len();
    run.control("bitstamp", "kind=stall&ms=3000");
    bus.wait("bitstamp stale → live", from, |recs| {
        common::went_through(
            recs,
            Venue::Bitstamp,
            0,
            &[FeedState::Stale, FeedState::Live],
        )
    });
    assert!(
        !common::feed_states(&bus.recs[from..], Venue::Bitstamp, 0)
            .contains(&FeedState::Disconnected)
    );

    // Refused connections and a slow handshake while reconnecting: back once they pass.
    for (venue, name, fault) in [
        (Venue::Gemini, "gemini", "kind=refuse&ms=1500"),
        (Venue::PolyBolt, "polybolt", "kind=slow_handshake&ms=1500"),
    ] {
        let from = bus.recs.len();
        run.control(name, fault);
        run.control(name, "kind=disconnect");
        bus.wait(&format!("{name} {fault} → live"), from, |recs| {
            common::went_through(recs, venue, 0, &BACK) && data(recs, venue) > 0
        });
    }
}

#[test]
fn polybolt_with_a_wrong_secret_is_refused_and_publishes_nothing() {
    let run = start("auth", "not-the-secret");
    let mut bus = Bus::open(&run);
    // The venue answers `auth_failed` and closes 4001: counted as a skipped frame, reconnects.
    run.wait_metric("auth errors counted and reconnects", |r| {
        r.metric("parse_errors", "polybolt", Some("connection")) >= 2
            && r.metric("reconnects", "polybolt", None) >= 1
    });
    bus.wait("gemini live meanwhile", 0, |recs| {
        data(recs, Venue::Gemini) > 0
    });
    assert_eq!(data(&bus.recs, Venue::PolyBolt), 0);
    let log = std::fs::read_to_string(&run.log).unwrap();
    assert!(
        !log.contains("not-the-secret"),
        "the secret never reaches the log"
    );
}
