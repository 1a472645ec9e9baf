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
                assert_eq!(recv(&mut d, &mut ws).unwrap(), Owned::Binary(p), "{name}");
            }
            ws.close(&mut d).unwrap();
            let e = recv(&mut d, &mut ws).unwrap_err();
            assert!(
                matches!(e, NetError::WsClosed(_) | NetError::Closed),
                "{name}: {e}"
            );
            ws.shutdown(&mut d);
        }
    }
}

#[test]
fn fragmented_large_ping_close() {
    let pki = pki();
    let addr = ws_server(Some(&pki));
    for (name, cfg) in matrix() {
        let mut d = Driver::new(&cfg).unwrap();
        let ep = endpoint(Some(&pki), addr.port());

        let mut ws = WsClient::connect(&mut d, &ep, &opts("/frag")).unwrap();
        assert_eq!(
            recv(&mut d, &mut ws).unwrap(),
            Owned::Text("hello, fragmented world".into()),
            "{name}"
        );
        assert_eq!(
            recv(&mut d, &mut ws).unwrap(),
            Owned::Binary(payload(7, 1_000_000)),
            "{name}"
        );
        assert_eq!(
            ws.stats().pings_received,
            1,
            "{name}: ping inside a fragmented message"
        );
        ws.shutdown(&mut d);

        let mut ws = WsClient::connect(&mut d, &ep, &opts("/large/4000000")).unwrap();
        assert_eq!(
            recv(&mut d, &mut ws).unwrap(),
            Owned::Binary(payload(1, 4_000_000)),
            "{name}"
        );
        assert_eq!(
            recv(&mut d, &mut ws).unwrap(),
            Owned::Text("after".into()),
            "{name}"
        );
        ws.shutdown(&mut d);

        // Server ping: we must answer with a pong carrying the same payload.
        let mut ws = WsClient::connect(&mut d, &ep, &opts("/ping")).unwrap();
        assert_eq!(
            recv(&mut d, &mut ws).unwrap(),
            Owned::Text("pong ok".into()),
            "{name}"
        );
        ws.shutdown(&mut d);

        // Server-initiated close with a code.
        let mut ws = WsClient::connect(&mut d, &ep, &opts("/close")).unwrap();
        assert_eq!(
            recv(&mut d, &mut ws).unwrap(),
            Owned::Text("bye soon".into()),
            "{name}"
        );
        let e = recv(&mut d, &mut ws).unwrap_err();
        assert!(matches!(e, NetError::WsClosed(Some(4001))), "{name}: {e}");
        ws.shutdown(&mut d);
        assert_eq!(d.open_connections(), 0, "{name}");
    }
}

#[test]
fn reset_garbage_and_stall_are_errors() {
    let pki = pki();
    let addr = ws_server(Some(&pki));
    for (name, cfg) in matrix() {
        let mut d = Driver::new(&cfg).unwrap();
        let ep = endpoint(Some(&pki), addr.port());

        let mut ws = WsClient::connect(&mut d, &ep, &opts("/reset")).unwrap();
        assert_eq!(
            recv(&mut d, &mut ws).unwrap(),
            Owned::Text("first".into()),
            "{name}"
        );
        let e = recv(&mut d, &mut ws).unwrap_err();
        assert!(
            matches!(
                e,
                NetError::Reset | NetError::Closed | NetError::Tls(_) | NetError::Io { .. }
            ),
            "{name}: reset mid-frame gave {e}"
        );
        // Reconnect after the error: a fresh connection to the same path works.
        ws.reconnect(&mut d).unwrap();
        assert_eq!(
            recv(&mut d, &mut ws).unwrap(),
            Owned::Text("first".into()),
            "{name}"
        );
        assert_eq!(ws.reconnects(), 1);
        ws.shutdown(&mut d);

        // Bytes that fail TLS decryption: a typed TLS error.
        let mut ws = WsClient::connect(&mut d, &ep, &opts("/tlsgarbage")).unwrap();
        assert_eq!(
            recv(&mut d, &mut ws).unwrap(),
            Owned::Text("clean".into()),
            "{name}"
        );
        let e = recv(&mut d, &mut ws).unwrap_err();
        assert!(
            matches!(e, NetError::Tls(_)),
            "{name}: tls garbage gave {e}"
        );
        ws.shutdown(&mut d);

        let mut ws = WsClient::connect(&mut d, &ep, &opts("/garbage")).unwrap();
        let e = recv(&mut d, &mut ws).unwrap_err();
        assert!(
            matches!(e, NetError::WsProtocol(_)),
            "{name}: garbage gave {e}"
        );
        ws.shutdown(&mut d);

        let mut o = opts("/stall");
        o.timeouts = Timeouts {
            idle: Duration::from_millis(300),
            ..Timeouts::default()
        };
        let mut ws = WsClient::connect(&mut d, &ep, &o).unwrap();
        assert_eq!(
            recv(&mut d, &mut ws).unwrap(),
            Owned::Text("one".into()),
            "{name}"
        );
        let t0 = Instant::now();
        let e = recv(&mut d, &mut ws).unwrap_err();
        assert!(matches!(e, NetError::Timeout(..)), "{name}: stall gave {e}");
        assert!(
            t0.elapsed() >= Duration::from_millis(250),
            "{name}: timeout fired early"
        );
        ws.shutdown(&mut d);
    }
}

#[test]
fn echo_keepalive_and_handshake_failures() {
    let pki = pki();
    let addr = ws_server(Some(&pki));
    for (name, cfg) in matrix() {
        let mut d = Driver::new(&cfg).unwrap();
        let ep = endpoint(Some(&pki), addr.port());

        // Client frames are masked; the server unmasks and echoes them.
        let mut ws = WsClient::connect(&mut d, &ep, &opts("/echo")).unwrap();
        ws.send_text(&mut d, "hello").unwrap();
        assert_eq!(
            recv(&mut d, &mut ws).unwrap(),
            Owned::Text("hello".into()),
            "{name}"
        );
        let big = payload(3, 200_000);
        ws.send_binary(&mut d, &big).unwrap();
        assert_eq!(recv(&mut d, &mut ws).unwrap(), Owned::Binary(big), "{name}");
        ws.close(&mut d).unwrap();
        let e = recv(&mut d, &mut ws).unwrap_err();
        assert!(
            matches!(e, NetError::WsClosed(_) | NetError::Closed),
            "{name}: {e}"
        );
        ws.shutdown(&mut d);

        // Application keep-alive: text PING every 50 ms, the server answers PONG.
        let mut o = opts("/keepalive");
        o.keepalive = Some((Duration::from_millis(50), KeepAlive::Text("PING".into())));
        let mut ws = WsClient::connect(&mut d, &ep, &o).unwrap();
        for _ in 0..3 {
            assert_eq!(
                recv(&mut d, &mut ws).unwrap(),
                Owned::Text("PONG".into()),
                "{name}"
            );
        }
        assert!(ws.stats().keepalives_sent >= 3, "{name}");
        ws.shutdown(&mut d);

        // A certificate we do not trust fails the TLS handshake with a typed error.
        let untrusted = Endpoint {
            tls: Some(client_config(Roots::Bundled, None, &[]).unwrap()),
            ..ep.clone()
        };
        let e = WsClient::connect(&mut d, &untrusted, &opts("/echo")).unwrap_err();
        assert!(matches!(e, NetError::Tls(_)), "{name}: {e}");

        // Plain TCP to a TLS port: handshake fails or times out, never hangs.
        let mut o = opts("/echo");
        o.timeouts.handshake = Duration::from_millis(500);
        let e = WsClient::connect(
            &mut d,
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
            WsClient::connect(&mut d, &endpoint(None, port), &opts("/")).is_err(),
            "{name}"
        );
        assert_eq!(d.open_connections(), 0, "{name}");
    }
}
