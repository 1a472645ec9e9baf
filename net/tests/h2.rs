//! HTTP/2 client against a real hyper server with TLS + ALPN h2 on loopback, across io_uring
//! block mode, the fallback, and spin mode on machines with ≥2 cores.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{h2_server, matrix, payload, pki};
use http::Method;
use ringbolt_net::h2c::{Completion, H2Client, H2Options, PreparedRequest};
use ringbolt_net::tls::{Roots, client_config};
use ringbolt_net::{Driver, Endpoint, NetError};

fn wait(d: &mut Driver, h: &mut H2Client) -> Result<Completion, NetError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let polled = h.poll(d);
        if let Some(c) = h.next_completion() {
            return Ok(c);
        }
        polled?;
        assert!(Instant::now() < deadline, "no response within 10 s");
        d.poll(Duration::from_millis(2))?;
    }
}

fn setup(cfg: &ringbolt_net::DriverConfig, port: u16, ca: &str) -> (Driver, H2Client, Endpoint) {
    let mut d = Driver::new(cfg).unwrap();
    let ep = Endpoint {
        host: "localhost".into(),
        port,
        tls: Some(client_config(Roots::None, Some(ca.as_bytes()), &[b"h2"]).unwrap()),
    };
    let h = H2Client::connect(&mut d, &ep, &H2Options::default()).unwrap();
    (d, h, ep)
}

fn post(port: u16, path: &str) -> PreparedRequest {
    PreparedRequest::new(
        Method::POST,
        &format!("https://localhost:{port}{path}"),
        &[("content-type", "application/json")],
    )
    .unwrap()
}

/// Sends an empty-bodied `POST path` tagged `tag`.
fn post_empty(
    d: &mut Driver,
    h: &mut H2Client,
    port: u16,
    path: &str,
    tag: u64,
) -> Result<(), NetError> {
    h.send(d, &post(port, path), Bytes::new(), tag)
}

/// The body of the next completion, which must be a response.
fn ok_body(d: &mut Driver, h: &mut H2Client) -> Vec<u8> {
    wait(d, h).unwrap().result.unwrap().body
}

/// Runs `body` once per driver configuration of the matrix with a client connected to one
/// TLS server shared by all (its name, the driver, the client, the server's port); then shuts
/// the client down and checks no connection is left open.
fn for_each_client(mut body: impl FnMut(&str, &mut Driver, &mut H2Client, u16)) {
    let pki = pki();
    let addr = h2_server(&pki);
    for (name, cfg) in matrix() {
        let (mut d, mut h, _) = setup(&cfg, addr.port(), &pki.ca_pem);
        body(name, &mut d, &mut h, addr.port());
        h.shutdown(&mut d);
        assert_eq!(d.open_connections(), 0, "{name}");
    }
}

#[test]
fn post_json_concurrent_streams_and_flow_control() {
    for_each_client(|name, d, h, port| {
        // POST with a JSON body, echoed.
        let body = br#"{"order":{"side":"BUY","price":"0.53","size":"100"}}"#;
        h.send(d, &post(port, "/echo"), Bytes::from_static(body), 1)
            .unwrap();
        let c = wait(d, h).unwrap();
        assert_eq!(c.tag, 1);
        let r = c.result.unwrap();
        assert_eq!(r.status, 200, "{name}");
        assert_eq!(r.headers["content-type"], "application/json", "{name}");
        assert_eq!(r.body, body, "{name}");

        // Concurrent streams: longer delays first; completions come back by tag, out of order.
        for (tag, ms) in [(10u64, 900u64), (11, 600), (12, 300), (13, 0)] {
            h.send(d, &post(port, &format!("/delay/{ms}")), Bytes::new(), tag)
                .unwrap();
        }
        assert_eq!(h.in_flight(), 4, "{name}");
        let mut order = Vec::new();
        for _ in 0..4 {
            let c = wait(d, h).unwrap();
            let r = c.result.unwrap();
            assert_eq!(r.status, 200, "{name}");
            order.push(c.tag);
        }
        assert_eq!(
            order,
            vec![13, 12, 11, 10],
            "{name}: streams were not concurrent"
        );

        // A body 16× the server's initial 64 KiB window, sent and echoed under flow control.
        let big = payload(9, 1_048_576);
        h.send(d, &post(port, "/echo"), Bytes::from(big.clone()), 20)
            .unwrap();
        let r = wait(d, h).unwrap().result.unwrap();
        assert_eq!(r.body.len(), big.len(), "{name}");
        assert!(r.body == big, "{name}: large body corrupted");
        assert_eq!(h.stats().responses, 6, "{name}");
    });
}

#[test]
fn server_ping_reset_goaway_and_reconnect() {
    for_each_client(|name, d, h, port| {
        // The server PINGs every 100 ms and drops clients that do not answer within 1 s:
        // idle for 1.5 s, then the same connection still serves (count continues).
        post_empty(d, h, port, "/count", 1).unwrap();
        assert_eq!(ok_body(d, h), br#"{"served":1}"#, "{name}");
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_millis(1500) {
            d.poll(Duration::from_millis(5)).unwrap();
            h.poll(d).unwrap();
        }
        post_empty(d, h, port, "/count", 2).unwrap();
        assert_eq!(ok_body(d, h), br#"{"served":2}"#, "{name}");

        // RST_STREAM fails that stream only.
        post_empty(d, h, port, "/reset", 3).unwrap();
        let c = wait(d, h).unwrap();
        assert_eq!(c.tag, 3);
        assert!(
            matches!(c.result, Err(NetError::StreamReset(_))),
            "{name}: {:?}",
            c.result
        );
        post_empty(d, h, port, "/count", 4).unwrap();
        assert!(wait(d, h).unwrap().result.is_ok(), "{name}");

        // GOAWAY: the response arrives, then the connection reports GoAway; reconnect works.
        post_empty(d, h, port, "/goaway", 5).unwrap();
        let c = wait(d, h).unwrap();
        assert_eq!(c.result.unwrap().body, br#"{"bye":true}"#, "{name}");
        let deadline = Instant::now() + Duration::from_secs(5);
        while h.closed_reason().is_none() {
            if let Err(e) = h.poll(d) {
                assert!(
                    matches!(e, NetError::GoAway | NetError::Closed),
                    "{name}: {e}"
                );
            }
            assert!(Instant::now() < deadline, "{name}: GOAWAY not seen");
            d.poll(Duration::from_millis(5)).unwrap();
        }
        // New requests on the dead connection fail fast.
        assert!(post_empty(d, h, port, "/count", 99).is_err());
        h.reconnect(d).unwrap();
        post_empty(d, h, port, "/count", 6).unwrap();
        assert_eq!(ok_body(d, h), br#"{"served":1}"#, "{name}: new connection");
        assert_eq!(h.stats().reconnects, 1);
    });
}

#[test]
fn unclaimed_completions_are_bounded_by_back_pressure() {
    let pki = pki();
    let addr = h2_server(&pki);
    let (_, cfg) = matrix().into_iter().next().unwrap();
    let mut d = Driver::new(&cfg).unwrap();
    let ep = Endpoint {
        host: "localhost".into(),
        port: addr.port(),
        tls: Some(client_config(Roots::None, Some(pki.ca_pem.as_bytes()), &[b"h2"]).unwrap()),
    };
    let opts = H2Options {
        max_unclaimed: 2,
        ..H2Options::default()
    };
    let mut h = H2Client::connect(&mut d, &ep, &opts).unwrap();
    for tag in [1, 2] {
        h.send(&mut d, &post(addr.port(), "/echo"), Bytes::new(), tag)
            .unwrap();
    }
    // Both complete, neither is taken: the queue is full and a third request is refused.
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.in_flight() > 0 {
        assert!(Instant::now() < deadline, "no responses within 10 s");
        d.poll(Duration::from_millis(2)).unwrap();
        h.poll(&mut d).unwrap();
    }
    let refused = h.send(&mut d, &post(addr.port(), "/echo"), Bytes::new(), 3);
    assert!(
        matches!(refused, Err(NetError::Backpressure(_))),
        "{refused:?}"
    );
    assert_eq!(h.stats().refused_backpressure, 1);
    // Taking one completion makes room; nothing was dropped.
    assert_eq!(h.next_completion().unwrap().tag, 1);
    h.send(&mut d, &post(addr.port(), "/echo"), Bytes::new(), 3)
        .unwrap();
    assert_eq!(h.next_completion().unwrap().tag, 2);
    assert_eq!(wait(&mut d, &mut h).unwrap().tag, 3);
    h.shutdown(&mut d);
}
