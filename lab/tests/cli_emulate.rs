//! End-to-end test of `ringbolt emulate`: it prints the bound addresses as one JSON line, serves
//! TLS on them, and stops by itself after `--seconds`.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is the test failing

use std::io::Write;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ringbolt_testkit::{fs, process};

#[test]
fn emulate_prints_addresses_serves_and_stops_by_itself() {
    let dir = fs::tempdir("ringbolt-cli-emulate", "run");
    let cfg = dir.join("emulate.toml");
    let mut f = std::fs::File::create(&cfg).unwrap();
    writeln!(
        f,
        "cert_dir = \"{}\"\n[market]\nseed = 3\nwindow_len_s = 60",
        dir.join("certs").display()
    )
    .unwrap();
    drop(f);
    let t0 = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringbolt-lab"))
        .args([
            "emulate",
            "--config",
            cfg.to_str().unwrap(),
            "--seconds",
            "4",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run ringbolt emulate");
    let info = process::first_json_line(&mut child);
    assert_eq!(info["emulated"], true);
    assert_eq!(info["seed"], 3);
    assert_eq!(info["window_len_s"], 60);
    let pem = std::fs::read_to_string(info["ca_pem"].as_str().unwrap()).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    for venue in ["polymarket", "chainlink_rtds", "binance_spot", "coinbase"] {
        let addr: std::net::SocketAddr = info["venues"][venue]["addr"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(addr.ip().is_loopback());
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    }
    // The CLOB order-entry emulator is served too (empty venue table = everything).
    let clob: std::net::SocketAddr = info["clob"]["addr"].as_str().unwrap().parse().unwrap();
    TcpStream::connect_timeout(&clob, Duration::from_secs(2)).unwrap();
    assert!(
        info["clob"]["url"]
            .as_str()
            .unwrap()
            .starts_with("https://localhost:")
    );
    assert!(
        info["venues"]["binance_spot"]["ws_url"]
            .as_str()
            .unwrap()
            .starts_with("wss://localhost:")
    );
    let status = child.wait().unwrap();
    assert!(status.success());
    assert!(t0.elapsed() >= Duration::from_secs(4) && t0.elapsed() < Duration::from_secs(30));

    // A bad config is refused with a clear error.
    std::fs::write(&cfg, "[venues.nasdaq]\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ringbolt-lab"))
        .args([
            "emulate",
            "--config",
            cfg.to_str().unwrap(),
            "--seconds",
            "1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown venue \"nasdaq\""));
}
