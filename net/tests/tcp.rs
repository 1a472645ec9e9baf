//! The raw driver API (TCP) against std loopback peers: echo integrity with partial sends and
//! large writes, EOF, reset, connection-slot reuse, on every back-end and mode of the matrix.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::{matrix, payload};
use ringbolt_net::{ConnId, Driver, NetError};

fn echo_server() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

fn read_exact(d: &mut Driver, id: ConnId, n: usize) -> Result<Vec<u8>, NetError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out = Vec::new();
    while out.len() < n {
        d.poll(Duration::from_millis(5))?;
        let buf = d.recv_buf(id)?;
        let take = buf.len().min(n - out.len());
        out.extend_from_slice(&buf[..take]);
        d.consume(id, take)?;
        if take == 0 {
            d.read_finished(id)?;
        }
        assert!(
            Instant::now() < deadline,
            "timed out with {} of {n} bytes",
            out.len()
        );
    }
    Ok(out)
}

#[test]
fn echo_integrity_and_slot_reuse() {
    let addr = echo_server();
    for (name, cfg) in matrix() {
        let mut d = Driver::new(&cfg).unwrap();
        for round in 0..3u64 {
            let id = d.connect(&[addr], Duration::from_secs(2)).unwrap();
            // Many small sends queued back to back, then one 3 MiB write (partial sends).
            let mut expected = Vec::new();
            for i in 0..1000u64 {
                let p = payload(i + round, 64);
                d.send(id, &p).unwrap();
                expected.extend_from_slice(&p);
            }
            let big = payload(round, 3 << 20);
            d.send(id, &big).unwrap();
            expected.extend_from_slice(&big);
            let got = read_exact(&mut d, id, expected.len()).unwrap();
            assert!(got == expected, "{name}: echo corrupted");
            assert_eq!(d.send_backlog(id).unwrap(), 0, "{name}");
            d.close(id);
            // A closed id is rejected, never aliased to a new connection in its slot.
            assert!(
                matches!(d.send(id, b"x"), Err(NetError::UnknownConn)),
                "{name}"
            );
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while d.open_connections() > 0 {
            d.poll(Duration::from_millis(5)).unwrap();
            assert!(Instant::now() < deadline);
        }
    }
}

#[test]
fn eof_and_reset_are_reported() {
    for (name, cfg) in matrix() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let server = std::thread::spawn(move || {
            // First connection: send "bye" then close cleanly. Second: reset (linger 0).
            let (mut a, _) = l.accept().unwrap();
            a.write_all(b"bye").unwrap();
            drop(a);
            let (b, _) = l.accept().unwrap();
            go_rx.recv().unwrap();
            socket_linger_zero(&b);
            drop(b);
        });
        let mut d = Driver::new(&cfg).unwrap();
        let id = d.connect(&[addr], Duration::from_secs(2)).unwrap();
        assert_eq!(read_exact(&mut d, id, 3).unwrap(), b"bye", "{name}");
        let e = read_exact(&mut d, id, 1).unwrap_err();
        assert!(matches!(e, NetError::Closed), "{name}: {e}");
        d.close(id);

        let id = d.connect(&[addr], Duration::from_secs(2)).unwrap();
        go_tx.send(()).unwrap();
        server.join().unwrap();
        let e = read_exact(&mut d, id, 1).unwrap_err();
        assert!(
            matches!(e, NetError::Reset | NetError::Closed),
            "{name}: {e}"
        );
        d.close(id);
    }
}

/// Sets SO_LINGER {on, 0} so that dropping the socket sends RST.
fn socket_linger_zero(s: &std::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: valid socket fd and a live, correctly sized option value.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
}

/// `Backend::Auto` falls back when the ring cannot be built (here: an invalid ring size makes
/// io_uring_setup fail with EINVAL, standing in for ENOSYS/EPERM) and the connection still works.
#[test]
fn auto_falls_back_when_io_uring_setup_fails() {
    use ringbolt_net::{Backend, BackendKind, DriverConfig, WaitMode};
    let addr = echo_server();
    let mut cfg = DriverConfig::new(WaitMode::Block, Backend::Auto);
    assert_eq!(Driver::new(&cfg).unwrap().backend(), BackendKind::IoUring);
    cfg.ring_entries = 0;
    assert!(
        Driver::new(&DriverConfig {
            backend: Backend::IoUring,
            ..cfg.clone()
        })
        .is_err()
    );
    let mut d = Driver::new(&cfg).unwrap();
    assert_eq!(d.backend(), BackendKind::Epoll);
    let id = d.connect(&[addr], Duration::from_secs(2)).unwrap();
    d.send(id, b"still works").unwrap();
    assert_eq!(read_exact(&mut d, id, 11).unwrap(), b"still works");
    d.close(id);
}

/// SQPOLL with an explicit poller CPU (never inheriting this thread's pinning) carries traffic.
#[test]
fn sqpoll_with_explicit_cpu() {
    use ringbolt_net::{Backend, BackendKind, DriverConfig, WaitMode};
    let addr = echo_server();
    let cfg = DriverConfig {
        sqpoll_cpu: Some(0),
        ..DriverConfig::new(WaitMode::Block, Backend::IoUring)
    };
    let mut d = Driver::new(&cfg).unwrap();
    assert_eq!(d.backend(), BackendKind::IoUring);
    let id = d.connect(&[addr], Duration::from_secs(2)).unwrap();
    for i in 0..200u64 {
        let p = payload(i, 64);
        d.send(id, &p).unwrap();
        assert_eq!(read_exact(&mut d, id, 64).unwrap(), p);
    }
    d.close(id);
}

/// Block mode with a busy-poll window: `poll_expecting` answers a loopback echo without
/// sleeping (hits counted), the plain `poll` path never busy-polls, and the counters see one
/// enter per send and per receive on io_uring (the minimum for a request/response).
#[test]
fn busy_poll_then_block_and_counters() {
    use ringbolt_net::{Backend, DriverConfig, WaitMode};
    let addr = echo_server();
    let mut cfg = DriverConfig::new(WaitMode::Block, Backend::Auto);
    cfg.busy_poll_us = 20_000;
    let mut d = Driver::new(&cfg).unwrap();
    let id = d.connect(&[addr], Duration::from_secs(2)).unwrap();
    let rounds = 50u64;
    for i in 0..rounds {
        d.send(id, &[i as u8; 32]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while d.recv_buf(id).unwrap().len() < 32 {
            d.poll_expecting(Duration::from_secs(1)).unwrap();
            assert!(Instant::now() < deadline, "no echo");
        }
        assert!(d.recv_buf(id).unwrap().iter().all(|&b| b == i as u8));
        d.consume(id, 32).unwrap();
    }
    let c = d.counters();
    assert!(c.busy_poll_hits >= rounds, "{c:?}");
    assert!(
        c.busy_poll_misses * 10 <= c.busy_poll_hits,
        "a 20 ms window should almost never miss a loopback echo: {c:?}"
    );
    if d.backend() == ringbolt_net::BackendKind::IoUring {
        assert!(c.enters >= 2 * rounds, "{c:?}");
        assert!(
            c.cqes >= 2 * rounds,
            "one send and one receive completion each: {c:?}"
        );
    }
    let before = d.counters();
    d.send(id, &[9; 8]).unwrap();
    while d.recv_buf(id).unwrap().len() < 8 {
        d.poll(Duration::from_secs(1)).unwrap();
    }
    let after = d.counters();
    assert_eq!(
        after.busy_poll_hits, before.busy_poll_hits,
        "plain poll never busy-polls"
    );
    d.close(id);
}

/// Block mode's zero wait is a look, never a sleep: `poll(Duration::ZERO)` in a loop receives a
/// loopback echo on every back-end, and on io_uring takes no waiting enter (a timed wait with a
/// zero timeout arms a timer and schedules: 13-20 us a call, traced in the demo, where trade's
/// idle turns looked at the order connection this way).
#[test]
fn a_zero_wait_in_block_mode_never_waits() {
    use ringbolt_net::{Backend, DriverConfig, WaitMode};
    let addr = echo_server();
    for backend in [Backend::IoUring, Backend::Fallback] {
        let mut d = Driver::new(&DriverConfig::new(WaitMode::Block, backend)).unwrap();
        let id = d.connect(&[addr], Duration::from_secs(2)).unwrap();
        let waiting_before = d.counters().enters_waiting;
        let mut looks = 0u64;
        for i in 0..20u8 {
            d.send(id, &[i; 16]).unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            while d.recv_buf(id).unwrap().len() < 16 {
                d.poll(Duration::ZERO).unwrap();
                looks += 1;
                assert!(Instant::now() < deadline, "{backend:?}: no echo");
            }
            assert!(d.recv_buf(id).unwrap().iter().all(|&b| b == i));
            d.consume(id, 16).unwrap();
        }
        assert!(looks >= 20, "{backend:?}");
        assert_eq!(
            d.counters().enters_waiting,
            waiting_before,
            "{backend:?}: a zero wait entered io_uring's timed wait"
        );
        d.close(id);
    }
}
