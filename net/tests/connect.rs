//! Connects stepped by the caller (`connect::LinkConnect`, `ws::WsConnect`): no step waits for the
//! peer, each stage ends in its own named timeout, a refused port fails at once, and a host name
//! resolved on the resolver thread ends in a working TLS WebSocket.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::{pki, ws_server};
use ringbolt_net::connect::{LinkConnect, Resolver};
use ringbolt_net::tls::{Roots, client_config};
use ringbolt_net::ws::{Message, WsConnect, WsOptions};
use ringbolt_net::{Backend, Driver, DriverConfig, Endpoint, Link, NetError, Timeouts, WaitMode};

fn driver() -> Driver {
    Driver::new(&DriverConfig::new(WaitMode::Block, Backend::Auto)).unwrap()
}

fn timeouts(ms: u64) -> Timeouts {
    Timeouts {
        connect: Duration::from_millis(ms),
        handshake: Duration::from_millis(ms),
        idle: Duration::from_secs(10),
    }
}

/// Steps `c` until it ends; returns the outcome, the wall time and the longest single step.
fn run(d: &mut Driver, c: &mut LinkConnect) -> (Result<Link, NetError>, Duration, Duration) {
    let start = Instant::now();
    let mut longest = Duration::ZERO;
    loop {
        let t = Instant::now();
        let r = c.step(d);
        longest = longest.max(t.elapsed());
        match r {
            Ok(None) => {
                d.poll(Duration::from_millis(1)).unwrap();
            }
            Ok(Some(link)) => return (Ok(link), start.elapsed(), longest),
            Err(e) => return (Err(e), start.elapsed(), longest),
        }
        assert!(start.elapsed() < Duration::from_secs(10), "never ended");
    }
}

/// A listener whose accept queue is full: a connect to it stays in SYN-SENT.
fn syn_blackhole() -> (socket2::Socket, Vec<TcpStream>, SocketAddr) {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    s.listen(0).unwrap();
    let addr = s.local_addr().unwrap().as_socket().unwrap();
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

fn ip_endpoint(addr: SocketAddr, tls: bool) -> Endpoint {
    Endpoint {
        host: addr.ip().to_string(),
        port: addr.port(),
        tls: tls.then(|| client_config(Roots::Bundled, None, &[b"http/1.1"]).unwrap()),
    }
}

#[test]
fn a_black_holed_tcp_connect_times_out_without_a_waiting_step() {
    let (_l, _fillers, addr) = syn_blackhole();
    let mut d = driver();
    let mut c = LinkConnect::start(&ip_endpoint(addr, false), timeouts(300), None).unwrap();
    let (r, wall, longest) = run(&mut d, &mut c);
    assert!(
        matches!(r, Err(NetError::Timeout(_, "tcp connect"))),
        "{r:?}"
    );
    assert!(wall >= Duration::from_millis(300), "{wall:?}");
    assert!(
        longest < Duration::from_millis(20),
        "a step took {longest:?}"
    );
}

#[test]
fn a_silent_tls_peer_times_out_in_the_handshake_without_a_waiting_step() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    // Accepted by the kernel (backlog), never read or answered.
    let mut d = driver();
    let mut c = LinkConnect::start(&ip_endpoint(addr, true), timeouts(300), None).unwrap();
    let (r, wall, longest) = run(&mut d, &mut c);
    assert!(
        matches!(r, Err(NetError::Timeout(_, "tls handshake"))),
        "{r:?}"
    );
    assert!(wall >= Duration::from_millis(300), "{wall:?}");
    assert!(
        longest < Duration::from_millis(20),
        "a step took {longest:?}"
    );
    assert_eq!(
        d.open_connections(),
        0,
        "the failed attempt's socket is closed"
    );
    drop(l);
}

#[test]
fn a_refused_port_fails_at_once() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut d = driver();
    let mut c = LinkConnect::start(&ip_endpoint(addr, false), timeouts(2_000), None).unwrap();
    let (r, wall, _) = run(&mut d, &mut c);
    assert!(
        matches!(r, Err(NetError::Io { op: "connect", .. })),
        "{r:?}"
    );
    assert!(wall < Duration::from_millis(500), "{wall:?}");
}

#[test]
fn a_host_name_resolved_off_thread_ends_in_a_working_tls_websocket() {
    let pki = pki();
    let addr = ws_server(Some(&pki));
    let resolver = Resolver::spawn("test-dns").unwrap();
    let ep = Endpoint {
        host: "localhost".into(),
        port: addr.port(),
        tls: Some(client_config(Roots::None, Some(pki.ca_pem.as_bytes()), &[b"http/1.1"]).unwrap()),
    };
    let opts = WsOptions {
        path: "/echo".into(),
        timeouts: timeouts(5_000),
        ..WsOptions::default()
    };
    let mut d = driver();
    let mut c = WsConnect::start(&ep, &opts, Some(&resolver)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ws = loop {
        if let Some(ws) = c.step(&mut d).unwrap() {
            break ws;
        }
        assert!(Instant::now() < deadline, "connect did not finish");
        d.poll(Duration::from_millis(1)).unwrap();
    };
    assert!(
        ws.link().in_place_tls(),
        "TLS 1.3 handed over to the record layer"
    );
    ws.send_text(&mut d, "stepped").unwrap();
    loop {
        d.poll(Duration::from_millis(1)).unwrap();
        if let Some(m) = ws.next(&mut d).unwrap() {
            assert_eq!(m, Message::Text("stepped"));
            break;
        }
        assert!(Instant::now() < deadline, "no echo");
    }
    // An unknown name fails through the same path (the resolver's error, not a hang).
    let bad = Endpoint {
        host: "no-such-host.invalid".into(),
        ..ep
    };
    let mut c = WsConnect::start(&bad, &opts, Some(&resolver)).unwrap();
    let r = loop {
        match c.step(&mut d) {
            Ok(None) => std::thread::sleep(Duration::from_millis(1)),
            other => break other,
        }
        assert!(Instant::now() < deadline, "resolution did not end");
    };
    assert!(r.is_err(), "{r:?}");
}
