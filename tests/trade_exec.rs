#![allow(clippy::expect_used, clippy::unwrap_used)]
//! `ringbolt trade` with exec enabled, against the CLOB emulator (in-process) over real TLS + HTTP/2:
//! a synthetic market is published on a bus segment (`features synth --publish`, paced), the
//! decision process fires, every fired intent takes a pre-signed paper order from the window's
//! pool and sends it; the emulator rejects each (size zero or unknown token) and the full
//! lifecycle INITIALIZED → SUBMITTED → REJECTED is on the decision ring under the decision's
//! client order id. Also: live mode is refused without `--live`, and `--live` without limits.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use ringbolt_bus::{
    Consumer, Decision, OrderState, OrderTransition, Poll, Record, RecordKind, Segment, Start,
};

mod common;

use common::{BIN, Unlink};
use ringbolt_testkit::process::{Reaper, run_fails};
use ringbolt_testkit::{fs, http};

fn trade_toml(
    dir: &std::path::Path,
    market: &str,
    decide: &str,
    clob_port: u16,
    extra: &str,
) -> String {
    format!(
        "[trade]\ninputs = [\"{market}\"]\noutput = \"{decide}\"\nevaluator = \"native\"\n\
         start = \"oldest\"\nexit_when_idle_ms = 3000\nopen_timeout_s = 60\n\
         output_capacity = 262144\n{extra}\n\n[exec]\nenabled = true\nhost = \"localhost\"\n\
         port = {clob_port}\nca_file = \"{ca}\"\nkey_file = \"{key}\"\n",
        ca = dir.join("certs/ca.pem").display(),
        key = dir.join("key").display(),
    )
}

fn write_key(dir: &std::path::Path) {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(dir.join("key"))
        .unwrap();
    writeln!(
        f,
        "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
    )
    .unwrap();
}

#[test]
fn trade_sends_paper_orders_through_the_clob_emulator_with_full_lifecycles() {
    let pid = std::process::id();
    let dir = fs::tempdir("rb-trade-exec", "run");
    write_key(&dir);
    std::fs::write(
        dir.join("emu.toml"),
        format!(
            "bind = \"127.0.0.1\"\ncert_dir = \"{}\"\ncontrol_port = 0\n[venues.clob]\nport = 0\n",
            dir.join("certs").display()
        ),
    )
    .unwrap();
    let emu = common::emulate(&dir.join("emu.toml"));
    let clob_port = emu.clob_port();

    let market = format!("rb-test-tx-mkt-{pid}");
    let decide = format!("rb-test-tx-dec-{pid}");
    let _unlink = Unlink(vec![market.clone(), decide.clone()]);
    let _producer = Reaper(
        Command::new(BIN)
            .args(["features", "synth", "--publish", &market])
            .args(["--windows", "2", "--seed", "21", "--speed", "40"])
            .args(["--capacity", "262144", "--linger-ms", "600000"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    Segment::open_wait(&market, Duration::from_secs(60)).unwrap();
    let config = dir.join("trade.toml");
    std::fs::write(&config, trade_toml(&dir, &market, &decide, clob_port, "")).unwrap();
    let summary = common::run_trade(&config, &[]);
    let exec = &summary["exec"];
    assert_eq!(exec["mode"], "paper", "{summary}");
    let submitted = exec["counters"]["submitted"].as_u64().unwrap();
    assert!(submitted > 0, "no order reached the wire: {summary}");
    assert_eq!(exec["orders_sent"].as_u64().unwrap(), submitted);

    // The decision ring: decisions, then each order's transitions under the decision's id.
    let seg = Segment::open(&decide).unwrap();
    let mut c = Consumer::new(&seg, 0, Start::Oldest).unwrap();
    let mut rec = Record::zeroed();
    let mut fired_ids = Vec::new();
    let mut lifecycles: BTreeMap<u64, Vec<OrderTransition>> = BTreeMap::new();
    let mut paper_records = 0u64;
    loop {
        match c.poll(&mut rec) {
            Poll::Ready => {}
            Poll::Empty => break,
            other => panic!("unexpected {other:?}"),
        }
        if rec.kind == RecordKind::Decision as u8 {
            let d: Decision = rec.body_as().unwrap();
            if d.fired == 1 {
                fired_ids.push(d.client_order_id);
            }
        } else if ringbolt_trade::paper::is_paper_record(&rec) {
            // The paper exchange's outcomes (tests/paper.rs): not the wire's lifecycle.
            paper_records += 1;
        } else if rec.kind == RecordKind::OrderTransition as u8 {
            let t: OrderTransition = rec.body_as().unwrap();
            lifecycles.entry(t.client_order_id).or_default().push(t);
        }
    }
    assert!(
        paper_records > 0,
        "paper mode runs the paper exchange beside the wire path"
    );
    assert_eq!(lifecycles.len() as u64, submitted, "{lifecycles:?}");
    for (coid, ts) in &lifecycles {
        assert!(
            fired_ids.contains(coid),
            "order {coid} has no fired decision"
        );
        let states: Vec<u8> = ts.iter().map(|t| t.to_state).collect();
        assert_eq!(
            states,
            [
                OrderState::Initialized as u8,
                OrderState::Submitted as u8,
                OrderState::Rejected as u8
            ],
            "order {coid}: {ts:?}"
        );
        for t in ts {
            assert_eq!(t.paper, 1);
            assert_eq!(t.size, 0, "paper orders are size zero on the wire");
        }
        let rejected = ts.last().unwrap();
        assert_eq!(rejected.http_status, 400, "{rejected:?}");
        assert_ne!(
            ts[1].venue_order_id, [0; 16],
            "order hash known at submission"
        );
    }
    // The emulator saw exactly these orders.
    let wire: serde_json::Value =
        serde_json::from_str(&http::get(emu.control.as_str(), "/wirelog").body).unwrap();
    assert_eq!(
        wire["orders"].as_array().unwrap().len() as u64,
        submitted,
        "{wire}"
    );

    // Live mode needs the flag; the flag needs every risk limit.
    let cfg2 = dir.join("trade-live.toml");
    std::fs::write(
        &cfg2,
        trade_toml(&dir, &market, &decide, clob_port, "paper = false"),
    )
    .unwrap();
    let err = run_fails(Command::new(BIN).args(["trade", "--config"]).arg(&cfg2));
    assert!(err.contains("needs the --live flag"), "{err}");
    let err = run_fails(
        Command::new(BIN)
            .args(["trade", "--live", "--config"])
            .arg(&cfg2),
    );
    assert!(err.contains("max_order_notional_micros"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
