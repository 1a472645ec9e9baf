//! The instrument table's horizon: retired entries are reused under a new generation, an id never
//! resolves to another instrument's name (also while the producer churns the table), and the
//! table never runs out while instruments are retired (ADR 0024).

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is the test failing
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ringbolt_bus::{
    BusError, InstrumentStatus, Publisher, Segment, SegmentConfig, Venue, instrument_generation,
    instrument_id, instrument_slot,
};
use ringbolt_testkit::guard::OnDrop;

fn fresh(tag: &str, instrument_capacity: usize) -> (Publisher, OnDrop<impl FnMut()>) {
    let name = ringbolt_testkit::fs::unique("rb-test", tag);
    let unlink = name.clone();
    let config = SegmentConfig {
        rings: 1,
        capacity: 64,
        instrument_capacity,
    };
    let publisher = Publisher::create(&name, config).unwrap();
    (
        publisher,
        OnDrop::new(move || {
            let _ = Segment::unlink(&unlink);
        }),
    )
}

#[test]
fn a_retired_slot_is_reused_under_the_next_generation_and_the_old_id_resolves_to_nothing() {
    let (publisher, _guard) = fresh("instr-reuse", 2);
    let seg = Segment::open(publisher.segment().name()).unwrap();
    let a = publisher
        .register_instrument(Venue::Polymarket, "a")
        .unwrap();
    let b = publisher
        .register_instrument(Venue::Coinbase, "BTC-USD")
        .unwrap();
    assert_eq!((a, b), (0, 1), "generation 0 ids are the slots (v2 ids)");
    assert_eq!(
        publisher
            .register_instrument(Venue::Polymarket, "a")
            .unwrap(),
        a,
        "a live name is found, not registered twice"
    );
    let full = publisher.register_instrument(Venue::Polymarket, "c");
    assert!(matches!(full, Err(BusError::Instrument { .. })), "{full:?}");

    assert!(publisher.retire_instrument(a));
    assert!(!publisher.retire_instrument(a), "retiring twice is a no-op");
    assert_eq!(seg.instrument_status(a), InstrumentStatus::Retired);
    assert_eq!(
        seg.instrument(a).unwrap().1,
        "a",
        "a retired name still resolves"
    );

    let c = publisher
        .register_instrument(Venue::Polymarket, "c")
        .unwrap();
    assert_eq!(c, instrument_id(0, 1));
    assert_eq!((instrument_slot(c), instrument_generation(c)), (0, 1));
    assert_eq!(
        seg.instrument(a),
        None,
        "the reused slot's old id names nothing"
    );
    assert_eq!(seg.instrument_status(a), InstrumentStatus::Unknown);
    assert_eq!(seg.instrument(c).unwrap().1, "c");
    assert_eq!(
        seg.instrument(b).unwrap().1,
        "BTC-USD",
        "live entries are never taken"
    );
    let re = publisher.register_instrument(Venue::Polymarket, "a");
    assert!(
        re.is_err(),
        "'a' was retired: registering it again needs a free entry"
    );
    let stats = seg.instrument_stats();
    assert_eq!((stats.used, stats.live, stats.retired), (2, 2, 0));
    assert_eq!(stats.max_generation, 1);
}

#[test]
fn a_slot_at_the_last_generation_is_never_reused() {
    let (publisher, _guard) = fresh("instr-exhaust", 1);
    let mut last = 0;
    for n in 0..=u32::from(u16::MAX) {
        last = publisher
            .register_instrument(Venue::Polymarket, &format!("w{n}"))
            .unwrap();
        assert_eq!(instrument_generation(last), n);
        assert!(publisher.retire_instrument(last));
    }
    let err = publisher.register_instrument(Venue::Polymarket, "one-too-many");
    assert!(
        err.is_err(),
        "generation {} would wrap",
        instrument_generation(last)
    );
    assert_eq!(publisher.segment().instrument(last).unwrap().1, "w65535");
}

/// A reader on its own mapping looks ids up while the producer registers and retires as fast as
/// it can: registration `n` is named `i<n>` and lands in slot `n % C` at generation `n / C`, so
/// every name a lookup returns must be the one its id implies.
#[test]
fn lookups_never_return_another_instruments_name_while_the_table_churns() {
    const CAPACITY: usize = 8;
    const REGISTRATIONS: u32 = 40_000;
    let (publisher, _guard) = fresh("instr-churn", CAPACITY);
    let seg = Segment::open(publisher.segment().name()).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let (mut hits, mut misses) = (0u64, 0u64);
            let mut probe = 0u32;
            let mut probes = 0u64;
            while !done.load(Ordering::Acquire) || probes < 200_000 {
                probes += 1;
                probe = probe.wrapping_add(7919) % REGISTRATIONS;
                let id = instrument_id(probe as usize % CAPACITY, probe / CAPACITY as u32);
                match seg.instrument(id) {
                    Some((_, name)) => {
                        assert_eq!(name, format!("i{probe}"), "id {id:#x} mis-attributed");
                        hits += 1;
                    }
                    None => misses += 1,
                }
            }
            (hits, misses)
        })
    };
    for n in 0..REGISTRATIONS {
        let id = publisher
            .register_instrument(Venue::Polymarket, &format!("i{n}"))
            .unwrap();
        assert_eq!(
            id,
            instrument_id(n as usize % CAPACITY, n / CAPACITY as u32)
        );
        assert!(publisher.retire_instrument(id));
    }
    done.store(true, Ordering::Release);
    let (hits, misses) = reader.join().unwrap();
    assert!(hits > 0, "the reader resolved nothing ({misses} misses)");
}
