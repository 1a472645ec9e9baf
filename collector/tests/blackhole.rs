//! "No ring thread blocks on connect", measured: one ring thread runs a live source (Binance spot
//! on the emulator) next to two dead ones: a port whose accept queue is full (the TCP connect
//! never completes: SYNs are dropped) and a server that accepts and never speaks TLS (the
//! handshake never completes). While both keep timing out and reconnecting, the live source's
//! messages must keep reaching the bus on time: its largest receive-time gap and its largest
//! excess delay (receive time minus venue time, above the run's minimum) stay far below the
//! connect timeout, which is what a blocking connect would cost per attempt.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_precision_loss)]

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ringbolt_bus::{
    Consumer, FeedState, FeedStatusBody, Poll, Publisher, Record, RecordKind, Segment,
    SegmentConfig, Start, Venue,
};
use ringbolt_collector::config::{FeedsConfig, SourceConfig};
use ringbolt_collector::{RingSettings, build, ring};
use ringbolt_feeds::conn::ConnConfig;

/// Connect and handshake timeout of the test's ring: what one blocking attempt would stall.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(400);
/// Largest receive-time gap / excess delay of the live source the test accepts.
const LIMIT_NS: i64 = 50_000_000;

struct Unlink(String);
impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = Segment::unlink(&self.0);
    }
}

/// A listener with a full accept queue: connects to it hang in SYN-SENT.
fn syn_blackhole() -> (socket2::Socket, Vec<TcpStream>, SocketAddr) {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    s.listen(0).unwrap();
    let addr = s.local_addr().unwrap().as_socket().unwrap();
    // Fill the queue (backlog 0 holds one; a few more to be sure), never accept.
    let mut fillers = Vec::new();
    for _ in 0..4 {
        let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        sock.set_nonblocking(true).unwrap();
        let _ = sock.connect(&addr.into());
        fillers.push(TcpStream::from(sock));
    }
    std::thread::sleep(Duration::from_millis(50));
    (s, fillers, addr)
}

/// A server that accepts every connection and never sends a byte (TLS never completes).
fn silent_server(stop: Arc<AtomicBool>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            match l.accept() {
                Ok((s, _)) => held.push(s),
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    addr
}

fn source(url: String, ca: &str, venue: &str, symbol: &str) -> SourceConfig {
    SourceConfig {
        venue: Some(venue.into()),
        url: Some(url),
        ca_file: Some(ca.into()),
        ca_only: true,
        symbols: vec![symbol.into()],
        ..SourceConfig::default()
    }
}

/// What the bus showed about the live source and the dead ones.
#[derive(Debug, Default)]
struct Seen {
    live_messages: u64,
    max_gap_ns: i64,
    max_excess_ns: i64,
    dead_disconnects: u64,
}

fn read_bus(consumer: &mut Consumer, from_ns: i64) -> Seen {
    let mut seen = Seen::default();
    let mut r = Record::zeroed();
    let (mut last_recv, mut last_seq) = (0i64, u64::MAX);
    let mut delays = Vec::new();
    loop {
        match consumer.poll(&mut r) {
            Poll::Ready => {}
            Poll::Empty => break,
            other => panic!("bus: {other:?}"),
        }
        if r.kind == RecordKind::FeedStatus as u8 {
            let dead = r.venue != Venue::BinanceSpot as u8;
            if dead
                && r.body_as::<FeedStatusBody>().map(|b| b.state)
                    == Some(FeedState::Disconnected as u8)
            {
                seen.dead_disconnects += 1;
            }
            continue;
        }
        if r.venue != Venue::BinanceSpot as u8 || r.recv_ts_ns < from_ns {
            continue;
        }
        // One message may give several records with one receive time.
        if r.recv_ts_ns != last_recv || r.venue_seq != last_seq {
            if last_recv != 0 {
                seen.max_gap_ns = seen.max_gap_ns.max(r.recv_ts_ns - last_recv);
            }
            seen.live_messages += 1;
            last_recv = r.recv_ts_ns;
            last_seq = r.venue_seq;
            if r.exchange_ts_ns > 0 {
                delays.push(r.recv_ts_ns - r.exchange_ts_ns);
            }
        }
    }
    let floor = delays.iter().copied().min().unwrap_or(0);
    seen.max_excess_ns = delays.iter().map(|d| d - floor).max().unwrap_or(0);
    seen
}

#[test]
fn a_black_holed_venue_does_not_delay_the_live_one() {
    let pid = std::process::id();
    let dir = std::env::temp_dir().join(format!("ringbolt-blackhole-{pid}"));
    let mut emu_cfg = ringbolt_sim::EmulatorConfig {
        cert_dir: dir.join("certs"),
        venues: BTreeMap::from([(
            "binance_spot".to_string(),
            ringbolt_sim::config::VenueConfig::default(),
        )]),
        ..Default::default()
    };
    emu_cfg.market.tick_ms = 20;
    emu_cfg.market.binance_lag_ms = 0;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let emu = rt.block_on(ringbolt_sim::Emulator::start(emu_cfg)).unwrap();
    let info = emu.info.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let (_listener, _fillers, syn_addr) = syn_blackhole();
    let silent_addr = silent_server(Arc::clone(&stop));

    let mut cfg = FeedsConfig {
        segment: format!("rb-blackhole-{pid}"),
        capacity: 1 << 16,
        instrument_capacity: 64,
        ..FeedsConfig::default()
    };
    let _unlink = Unlink(cfg.segment.clone());
    let live = info.venues["binance_spot"].addr;
    let sources = [
        (
            "live",
            format!("wss://{live}/stream"),
            "binance_spot",
            "BTCUSDT",
        ),
        (
            "dead_syn",
            format!("wss://{syn_addr}/"),
            "coinbase",
            "BTC-USD",
        ),
        (
            "dead_tls",
            format!("wss://{silent_addr}/"),
            "okx",
            "BTC-USDT",
        ),
    ];
    for (name, url, venue, symbol) in sources {
        let mut s = source(url, &info.ca_pem, venue, symbol);
        if name == "live" {
            s.rest_url = Some(format!("https://{live}"));
        }
        cfg.sources.insert(name.into(), s);
    }
    cfg.validate().unwrap();
    let publisher = Arc::new(
        Publisher::create(
            &cfg.segment,
            SegmentConfig {
                rings: 1,
                capacity: cfg.capacity,
                instrument_capacity: cfg.instrument_capacity,
            },
        )
        .unwrap(),
    );
    let mut built = build(&cfg, &publisher).unwrap();
    let shared = built.shared.clone();
    let specs = built.per_ring.remove(0);
    let writer = publisher.writer(0).unwrap();
    let settings = RingSettings {
        busy_poll: false,
        conn: ConnConfig {
            connect_timeout_ns: 3 * CONNECT_TIMEOUT.as_nanos() as u64,
            backoff_base_ns: 50_000_000,
            backoff_max_ns: 100_000_000,
            ..ConnConfig::default()
        },
        stale_override_ns: None,
        connect_timeout: CONNECT_TIMEOUT,
    };
    let beat = Arc::new(AtomicU64::new(0));
    let (stop2, beat2) = (Arc::clone(&stop), Arc::clone(&beat));
    let ring = std::thread::spawn(move || ring::run(specs, writer, settings, None, &beat2, &stop2));

    let seg = Segment::open(&cfg.segment).unwrap();
    let mut consumer = Consumer::new(&seg, 0, Start::Oldest).unwrap();
    let live_shared = shared.iter().find(|s| s.name == "live").unwrap();
    let live_state = || live_shared.state.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(60);
    while live_state() != FeedState::Live as u8 && live_state() != FeedState::Resynced as u8 {
        assert!(Instant::now() < deadline, "the live source did not go live");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Measure from here: the live source's book is synchronised.
    std::thread::sleep(Duration::from_millis(500));
    let from_ns = ringbolt_telemetry::now_ns();
    let mut consumer_skip = Record::zeroed();
    while matches!(consumer.poll(&mut consumer_skip), Poll::Ready) {}
    std::thread::sleep(Duration::from_secs(6));
    stop.store(true, Ordering::Relaxed);
    ring.join().unwrap().unwrap();
    let seen = read_bus(&mut consumer, from_ns);
    rt.block_on(emu.shutdown());

    let failures: u64 = shared
        .iter()
        .filter(|s| s.name != "live")
        .map(|s| s.connect_failures.load(Ordering::Relaxed))
        .sum();
    let latency = live_shared
        .recv_to_publish_ns
        .lock()
        .unwrap()
        .clone()
        .unwrap();
    eprintln!(
        "live source: {} messages in 6 s ({:.0}/s), max receive gap {:.1} ms, max excess delay {:.1} ms, \
         recv→bus p50 {} ns p99 {} ns; dead sources: {} connect failures, {} disconnected statuses",
        seen.live_messages,
        seen.live_messages as f64 / 6.0,
        seen.max_gap_ns as f64 / 1e6,
        seen.max_excess_ns as f64 / 1e6,
        latency.value_at_quantile(0.5),
        latency.value_at_quantile(0.99),
        failures,
        seen.dead_disconnects,
    );
    assert!(seen.live_messages > 100, "{seen:?}");
    assert!(
        seen.dead_disconnects >= 4,
        "the dead sources kept retrying: {seen:?}"
    );
    assert!(
        seen.max_gap_ns < LIMIT_NS,
        "live source stalled {} ms (connect timeout {CONNECT_TIMEOUT:?}): {seen:?}",
        seen.max_gap_ns / 1_000_000
    );
    assert!(
        seen.max_excess_ns < LIMIT_NS,
        "live messages delayed {} ms: {seen:?}",
        seen.max_excess_ns / 1_000_000
    );
}
