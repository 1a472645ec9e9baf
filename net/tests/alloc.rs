//! The steady-state WebSocket receive path does not allocate per message: a counting global
//! allocator (per thread, so the in-process server's allocations are not counted) watches the
//! client thread while it receives tens of thousands of messages after a warm-up.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{matrix, payload, pki, ws_server};
use ringbolt_net::tls::{Roots, client_config};
use ringbolt_net::ws::{Message, WsClient, WsOptions};
use ringbolt_net::{Driver, Endpoint};
use ringbolt_testkit::{CountingAlloc, thread_allocs};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

const WARMUP: u64 = 5_000;
const MEASURED: u64 = 50_000;

/// Receives WARMUP + MEASURED messages; returns allocations during the measured part.
fn measure(driver: &mut Driver, ws: &mut WsClient) -> u64 {
    let mut seq = 0u64;
    let mut before = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut expected = payload(0, 64);
    while seq < WARMUP + MEASURED {
        if seq == WARMUP {
            before = thread_allocs();
        }
        match ws.next(driver).unwrap() {
            Some(Message::Binary(b)) => {
                expected[..8].copy_from_slice(&seq.to_le_bytes());
                assert_eq!(&b[..8], &expected[..8], "sequence");
                seq += 1;
            }
            Some(m) => panic!("unexpected {m:?}"),
            None => {
                assert!(Instant::now() < deadline);
                driver.poll(Duration::from_millis(5)).unwrap();
            }
        }
    }
    thread_allocs() - before
}

/// Connects a client per driver configuration to `/count` on `addr` (host `host`, TLS when
/// `tls` is given) and checks the measured receive path allocates nothing.
fn assert_no_allocation(
    addr: std::net::SocketAddr,
    host: &str,
    tls: Option<&common::Pki>,
    label: &str,
) {
    for (name, mut cfg) in matrix() {
        // Room for the whole burst: a debug-build client that falls behind never grows buffers.
        cfg.conn_rx_bytes = 16 << 20;
        let mut driver = Driver::new(&cfg).unwrap();
        let ep = Endpoint {
            host: host.into(),
            port: addr.port(),
            tls: tls
                .map(|pki| client_config(Roots::None, Some(pki.ca_pem.as_bytes()), &[]).unwrap()),
        };
        let n = WARMUP + MEASURED;
        let opts = WsOptions {
            path: format!("/count/{n}/64"),
            ..WsOptions::default()
        };
        let mut ws = WsClient::connect(&mut driver, &ep, &opts).unwrap();
        if tls.is_some() {
            assert!(
                ws.link().in_place_tls(),
                "{name}: TLS 1.3 record layer not in use"
            );
        }
        let a = measure(&mut driver, &mut ws);
        eprintln!("{name}/{label}: {a} allocations over {MEASURED} messages");
        assert_eq!(a, 0, "{name}: the {label} receive path allocated");
    }
}

#[test]
fn plain_receive_path_allocates_nothing() {
    assert_no_allocation(ws_server(None), "127.0.0.1", None, "plain");
}

/// Over TLS 1.3 the link hands the traffic secrets from rustls to its in-place record layer after
/// the handshake (rustls 0.23 itself would allocate a `Vec` per record): nothing is allocated per
/// message either.
#[test]
fn tls_receive_path_allocates_nothing() {
    let pki = pki();
    assert_no_allocation(ws_server(Some(&pki)), "localhost", Some(&pki), "TLS");
}
