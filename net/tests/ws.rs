//! WebSocket client against a real tokio-tungstenite server (TLS via tokio-rustls + rcgen) on
//! loopback, across io_uring block mode, the fallback, and spin mode on machines with ≥2 cores.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Pki, is_spin, matrix, payload, pki, ws_server};
use ringbolt_net::tls::{Roots, client_config};
use ringbolt_net::ws::{KeepAlive, Message, WsClient, WsOptions};
use ringbolt_net::{Driver, Endpoint, NetError, Timeouts};

#[derive(Debug, PartialEq)]
enum Owned {
    Text(String),
    Binary(Vec<u8>),
}

fn endpoint(pki: Option<&Pki>, port: u16) -> Endpoint {
    Endpoint {
        host: "localhost".into(),
        port,
        tls: pki.map(|p| {
            client_config(Roots::None, Some(p.ca_pem.as_bytes()), &[b"http/1.1"]).unwrap()
        }),
    }
}

fn opts(path: &str) -> WsOptions {
    WsOptions {
        path: path.into(),
        ..WsOptions::default()
    }
}

/// Receives one message (owned copy), polling the driver, within 10 s.
fn recv(driver: &mut Driver, ws: &mut WsClient) -> Result<Owned, NetError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(m) = ws.next(driver)? {
            return Ok(match m {
                Message::Text(t) => Owned::Text(t.to_string()),
                Message::Binary(b) => Owned::Binary(b.to_vec()),
            });
        }
        assert!(Instant::now() < deadline, "no message within 10 s");
        driver.poll(Duration::from_millis(5))?;
    }
}

/// Receives one message and asserts it is `want` (`name`: the driver configuration).
#[track_caller]
fn expect(driver: &mut Driver, ws: &mut WsClient, want: Owned, name: &str) {
    assert_eq!(recv(driver, ws).unwrap(), want, "{name}");
}

/// Closes `ws` from the client side, asserts the close completes, and releases it.
#[track_caller]
fn close_cleanly(driver: &mut Driver, mut ws: WsClient, name: &str) {
    ws.close(driver).unwrap();
    let e = recv(driver, &mut ws).unwrap_err();
    assert!(
        matches!(e, NetError::WsClosed(_) | NetError::Closed),
        "{name}: {e}"
    );
    ws.shutdown(driver);
}

/// Runs `body` once per driver configuration of the matrix (its name, a fresh driver, the
/// endpoint of one TLS server shared by all).
fn for_each_driver(mut body: impl FnMut(&str, &mut Driver, &Endpoint)) {
    let pki = pki();
    let addr = ws_server(Some(&pki));
    for (name, cfg) in matrix() {
        let mut d = Driver::new(&cfg).unwrap();
        let ep = endpoint(Some(&pki), addr.port());
        body(name, &mut d, &ep);
    }
}

fn message_count(spin: bool) -> u64 {
    // One million per block-mode client by default (about 1-3 s each in a debug build here);
    // RINGBOLT_NET_LONG=1 runs ten million.
    if std::env::var_os("RINGBOLT_NET_LONG").is_some() {
        10_000_000
    } else if spin {
        100_000
    } else {
        1_000_000
    }
}

/// Message integrity: every payload byte and the order of sequence numbers, then a clean close.
#[test]
fn integrity_many_frames_tls_and_plain() {
    let pki = pki();
    let tls_addr = ws_server(Some(&pki));
    let plain_addr = ws_server(None);
    for (name, cfg) in matrix() {
        for (label, addr, p) in [("tls", tls_addr, Some(&pki)), ("plain", plain_addr, None)] {
            let n = message_count(is_spin(&cfg));
            let mut driver = Driver::new(&cfg).unwrap();
            let t0 = Instant::now();
            let mut ws = WsClient::connect(
                &mut driver,
                &endpoint(p, addr.port()),
                &opts(&format!("/count/{n}/64")),
            )
            .unwrap();
            let mut seq = 0u64;
            let close = loop {
                match ws.next(&mut driver) {
                    Ok(Some(Message::Binary(b))) => {
                        assert_eq!(
                            b,
                            &payload(seq, 64)[..],
                            "{name}/{label}: message {seq} corrupted"
                        );
                        seq += 1;
                    }
                    Ok(Some(other)) => panic!("{name}/{label}: unexpected {other:?}"),
                    Ok(None) => {
                        assert!(
                            t0.elapsed() < Duration::from_secs(60),
                            "{name}/{label}: stuck at {seq}"
                        );
                        driver.poll(Duration::from_millis(5)).unwrap();
                    }
                    Err(e) => break e,
                }
            };
            assert_eq!(seq, n, "{name}/{label}: message count");
            assert!(
                matches!(close, NetError::WsClosed(Some(1000))),
                "{name}/{label}: {close}"
            );
            eprintln!("{name}/{label}: {n} messages in {:?}", t0.elapsed());
        }
    }
}

/// TLS 1.2 peers keep rustls' own record layer; TLS 1.3 peers get the in-place one. Both carry
/// the same traffic, in records up to 16 KiB and messages spanning many records.
#[test]
fn tls12_and_tls13_record_layers() {
    let pki = pki();
    let a13 = ws_server(Some(&pki));
    let a12 = common::ws_server_tls12(&pki);
    for (name, cfg) in matrix() {
        let mut d = Driver::new(&cfg).unwrap();
        for (addr, in_place) in [(a13, true), (a12, false)] {
            let ep = endpoint(Some(&pki), addr.port());
            let mut ws = WsClient::connect(&mut d, &ep, &opts("/echo")).unwrap();
            assert_eq!(ws.link().in_place_tls(), in_place, "{name}");
            for i in 0..20u64 {
                let p = payload(i, 10 + (i as usize) * 5_000);
                ws.send_binary(&mut d, &p).unwrap();
                expect(&mut d, &mut ws, Owned::Binary(p), name);
            }
            close_cleanly(&mut d, ws, name);
        }
    }
}

#[test]
fn fragmented_large_ping_close() {
    for_each_driver(|name, d, ep| {
        let mut ws = WsClient::connect(d, ep, &opts("/frag")).unwrap();
        expect(
            d,
            &mut ws,
            Owned::Text("hello, fragmented world".into()),
            name,
        );
        expect(d, &mut ws, Owned::Binary(payload(7, 1_000_000)), name);
        assert_eq!(
            ws.stats().pings_received,
            1,
            "{name}: ping inside a fragmented message"
        );
        ws.shutdown(d);

        let mut ws = WsClient::connect(d, ep, &opts("/large/4000000")).unwrap();
        expect(d, &mut ws, Owned::Binary(payload(1, 4_000_000)), name);
        expect(d, &mut ws, Owned::Text("after".into()), name);
        ws.shutdown(d);

        // Server ping: we must answer with a pong carrying the same payload.
        let mut ws = WsClient::connect(d, ep, &opts("/ping")).unwrap();
        expect(d, &mut ws, Owned::Text("pong ok".into()), name);
        ws.shutdown(d);

        // Server-initiated close with a code.
        let mut ws = WsClient::connect(d, ep, &opts("/close")).unwrap();
        expect(d, &mut ws, Owned::Text("bye soon".into()), name);
        let e = recv(d, &mut ws).unwrap_err();
        assert!(matches!(e, NetError::WsClosed(Some(4001))), "{name}: {e}");
        ws.shutdown(d);
        assert_eq!(d.open_connections(), 0, "{name}");
    });
}

#[test]
fn reset_garbage_and_stall_are_errors() {
    for_each_driver(|name, d, ep| {
        let mut ws = WsClient::connect(d, ep, &opts("/reset")).unwrap();
        expect(d, &mut ws, Owned::Text("first".into()), name);
        let e = recv(d, &mut ws).unwrap_err();
        assert!(
            matches!(
                e,
                NetError::Reset | NetError::Closed | NetError::Tls(_) | NetError::Io { .. }
            ),
            "{name}: reset mid-frame gave {e}"
        );
        // Reconnect after the error: a fresh connection to the same path works.
        ws.reconnect(d).unwrap();
        expect(d, &mut ws, Owned::Text("first".into()), name);
        assert_eq!(ws.reconnects(), 1);
        ws.shutdown(d);

        // Bytes that fail TLS decryption: a typed TLS error.
        let mut ws = WsClient::connect(d, ep, &opts("/tlsgarbage")).unwrap();
        expect(d, &mut ws, Owned::Text("clean".into()), name);
        let e = recv(d, &mut ws).unwrap_err();
        assert!(
            matches!(e, NetError::Tls(_)),
            "{name}: tls garbage gave {e}"
        );
        ws.shutdown(d);

        let mut ws = WsClient::connect(d, ep, &opts("/garbage")).unwrap();
        let e = recv(d, &mut ws).unwrap_err();
        assert!(
            matches!(e, NetError::WsProtocol(_)),
            "{name}: garbage gave {e}"
        );
        ws.shutdown(d);

        let mut o = opts("/stall");
        o.timeouts = Timeouts {
            idle: Duration::from_millis(300),
            ..Timeouts::default()
        };
        let mut ws = WsClient::connect(d, ep, &o).unwrap();
        expect(d, &mut ws, Owned::Text("one".into()), name);
        let t0 = Instant::now();
        let e = recv(d, &mut ws).unwrap_err();
        assert!(matches!(e, NetError::Timeout(..)), "{name}: stall gave {e}");
        assert!(
            t0.elapsed() >= Duration::from_millis(250),
            "{name}: timeout fired early"
        );
        ws.shutdown(d);
    });
}

#[test]
fn echo_keepalive_and_handshake_failures() {
    for_each_driver(|name, d, ep| {
        // Client frames are masked; the server unmasks and echoes them.
        let mut ws = WsClient::connect(d, ep, &opts("/echo")).unwrap();
        ws.send_text(d, "hello").unwrap();
        expect(d, &mut ws, Owned::Text("hello".into()), name);
        let big = payload(3, 200_000);
        ws.send_binary(d, &big).unwrap();
        expect(d, &mut ws, Owned::Binary(big), name);
        close_cleanly(d, ws, name);

        // Application keep-alive: text PING every 50 ms, the server answers PONG.
        let mut o = opts("/keepalive");
        o.keepalive = Some((Duration::from_millis(50), KeepAlive::Text("PING".into())));
        let mut ws = WsClient::connect(d, ep, &o).unwrap();
        for _ in 0..3 {
            expect(d, &mut ws, Owned::Text("PONG".into()), name);
        }
        assert!(ws.stats().keepalives_sent >= 3, "{name}");
        ws.shutdown(d);

        // A certificate we do not trust fails the TLS handshake with a typed error.
        let untrusted = Endpoint {
            tls: Some(client_config(Roots::Bundled, None, &[]).unwrap()),
            ..ep.clone()
        };
        let e = WsClient::connect(d, &untrusted, &opts("/echo")).unwrap_err();
        assert!(matches!(e, NetError::Tls(_)), "{name}: {e}");

        // Plain TCP to a TLS port: handshake fails or times out, never hangs.
        let mut o = opts("/echo");
        o.timeouts.handshake = Duration::from_millis(500);
        let e = WsClient::connect(
            d,
            &Endpoint {
                tls: None,
                ..ep.clone()
            },
            &o,
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                NetError::Timeout(..)
                    | NetError::WsHandshake(_)
                    | NetError::Closed
                    | NetError::Reset
            ),
            "{name}: {e}"
        );

        // Nothing listening: connect error.
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = dead.local_addr().unwrap().port();
        drop(dead);
        assert!(
            WsClient::connect(d, &endpoint(None, port), &opts("/")).is_err(),
            "{name}"
        );
        assert_eq!(d.open_connections(), 0, "{name}");
    });
}
