#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Money controls across restarts: the journal restores spend and open orders; a torn tail is
//! ignored and counted; a corrupt middle record is skipped and counted; back-off refuses orders.

use std::io::Write;
use std::path::PathBuf;

use ringbolt_exec::journal::{Journal, recover};
use ringbolt_exec::risk::{KillSwitch, LiveOptIn, RiskError, RiskGate, RiskLimits, TradingMode};

const T0: u64 = 1_773_307_200; // a window start

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ringbolt-journal-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn limits() -> RiskLimits {
    RiskLimits {
        max_order_notional_micros: Some(5_000_000),
        max_window_notional_micros: Some(20_000_000),
        max_day_notional_micros: Some(30_000_000),
        max_open_orders: Some(10),
    }
}

fn gate(path: &std::path::Path, now_s: u64) -> RiskGate {
    let live = TradingMode::live(LiveOptIn::operator_passed_live_flag());
    let mut g = RiskGate::new(live, limits(), KillSwitch::new()).unwrap();
    let (j, rec) = Journal::open(path).unwrap();
    g.attach_journal(j, &rec, now_s);
    g
}

#[test]
fn caps_hold_across_a_crash_and_restart() {
    let d = dir("caps");
    let path = d.join("exec.journal");
    let mut g = gate(&path, T0);
    // Three orders of 4 (12 of the window's 20), two still open.
    for i in 0..3 {
        g.admit(4_000_000, T0 + i).unwrap();
    }
    g.closed();
    // Crash: the gate and journal are dropped without any shutdown step.
    drop(g);
    let mut g = gate(&path, T0 + 10);
    let (w, day) = g.used();
    assert!(
        (12_000_000..=17_000_000).contains(&w),
        "restored window use {w} is at least the real spend, at most one chunk more"
    );
    assert_eq!(w, day);
    assert_eq!(g.open_orders(), 2, "open orders restored");
    // The window cap still binds: the restored use plus new orders never exceeds 20.
    let mut admitted = 0;
    while g.admit(4_000_000, T0 + 11).is_ok() {
        admitted += 1;
    }
    assert!(w + admitted * 4_000_000 <= 20_000_000);
    assert!(matches!(
        g.admit(4_000_000, T0 + 12),
        Err(RiskError::WindowNotional { .. })
    ));
    // Next window, same day: the window resets, the day carries over.
    drop(g);
    let mut g = gate(&path, T0 + 300);
    let (w2, day2) = g.used();
    assert_eq!(w2, 0);
    assert!(day2 >= w + admitted * 4_000_000);
    while g.admit(4_000_000, T0 + 301).is_ok() {}
    assert!(g.used().1 <= 30_000_000, "day cap holds across restarts");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn torn_tail_and_corrupt_records_are_counted() {
    let d = dir("torn");
    let path = d.join("exec.journal");
    let mut g = gate(&path, T0);
    g.admit(4_000_000, T0).unwrap();
    g.admit(4_000_000, T0).unwrap();
    drop(g);
    let clean = std::fs::read(&path).unwrap();
    let good = recover(&clean);
    assert_eq!(good.skips.torn_tail + good.skips.bad_checksum, 0);
    assert_eq!(good.open, 2);
    // A torn write at the end: 13 bytes of a record.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(&[2u8; 13]).unwrap();
    drop(f);
    let r = recover(&std::fs::read(&path).unwrap());
    assert_eq!((r.skips.torn_tail, r.skips.bad_checksum), (1, 0));
    assert_eq!(r.open, 2);
    assert_eq!(r.last_reserve, good.last_reserve);
    // A flipped bit in the first record (not the last): skipped, counted.
    let mut bytes = clean.clone();
    bytes[20] ^= 1;
    let r = recover(&bytes);
    assert_eq!((r.skips.torn_tail, r.skips.bad_checksum), (0, 1));
    // Reopening compacts: the torn tail is gone and the state is kept.
    let (_, rec) = Journal::open(&path).unwrap();
    assert_eq!(rec.skips.torn_tail, 1);
    let again = recover(&std::fs::read(&path).unwrap());
    assert_eq!(again.skips.torn_tail, 0);
    assert_eq!((again.open, again.last_reserve), (2, good.last_reserve));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn backoff_refuses_new_orders_until_it_passes() {
    let live = TradingMode::live(LiveOptIn::operator_passed_live_flag());
    let mut g = RiskGate::new(live, limits(), KillSwitch::new()).unwrap();
    g.back_off_until(i64::try_from(T0 + 2).unwrap() * 1_000_000_000);
    assert_eq!(g.admit(1, T0), Err(RiskError::Backoff { left_ms: 2000 }));
    assert_eq!(g.used(), (0, 0), "a refused order spends nothing");
    g.admit(1, T0 + 2).unwrap();
}
