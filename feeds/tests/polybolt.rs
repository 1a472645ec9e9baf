#![allow(clippy::expect_used, clippy::unwrap_used)]
//! PolyBolt frames shaped exactly as the venue's documentation shows them (no public capture
//! exists yet; `tests/fixtures/polybolt/docs.jsonl`, provenance in `tests/fixtures/SOURCES.md`)
//! parse to the values written in them; sequence gaps and `dropped` counts become gaps.

use ringbolt_bus::{
    FLAG_BATCH_BEGIN, FLAG_BATCH_END, FLAG_SNAPSHOT, FeedState, FeedStatusBody, IndexPrice, Record,
    Venue,
};
use ringbolt_feeds::{FrameDriver, ParseError, SyncMode};

fn lines() -> Vec<String> {
    let path = format!(
        "{}/tests/fixtures/polybolt/docs.jsonl",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn index(r: &Record) -> (i128, i64, u8) {
    let b: IndexPrice = r.body_as().unwrap();
    (b.value_e18, b.price, b.price_type)
}

#[test]
fn documentation_shaped_frames_parse_to_their_values() {
    let mut d = FrameDriver::new(Venue::PolyBolt, SyncMode::Enforce, true).unwrap();
    let out: Vec<(Result<(), ParseError>, Vec<Record>)> = lines()
        .iter()
        .map(|l| {
            let mut recs = Vec::new();
            (d.frame(l.as_bytes(), 7, &mut recs), recs)
        })
        .collect();
    // Acks: counted, no records.
    for i in [0, 1, 4, 10] {
        assert_eq!(out[i], (Ok(()), vec![]), "line {i}");
    }
    // The error acknowledgement is a named, counted skip.
    assert_eq!(out[9].0, Err(ParseError::Invalid("error_ack")));
    // Snapshot: two rows, one batch, exact decimals.
    let snap = &out[2].1;
    assert_eq!(snap.len(), 2);
    assert_eq!(
        index(&snap[0]),
        (64_123_500_000_000_000_000_000, 6_412_350_000_000, 1)
    );
    assert_eq!(snap[0].exchange_ts_ns, 1_788_972_880_000_000_000);
    assert_eq!(snap[0].venue_seq, 1);
    assert_eq!(
        snap[0].flags & (FLAG_SNAPSHOT | FLAG_BATCH_BEGIN),
        FLAG_SNAPSHOT | FLAG_BATCH_BEGIN
    );
    assert_eq!(
        snap[1].flags & (FLAG_SNAPSHOT | FLAG_BATCH_END),
        FLAG_SNAPSHOT | FLAG_BATCH_END
    );
    assert_eq!(index(&snap[1]).1, 6_412_425_000_000);
    // Live update.
    let live = &out[3].1;
    assert_eq!(live.len(), 1);
    assert_eq!(
        index(&live[0]),
        (64_130_123_456_780_000_000_000, 6_413_012_345_678, 1)
    );
    assert_eq!((live[0].venue_seq, live[0].stream), (2, 1));
    // TWAP: an empty snapshot, then a live value with price_type 3 on stream 2.
    assert!(out[5].1.is_empty());
    let twap = &out[6].1;
    assert_eq!(
        index(&twap[0]),
        (64_127_800_000_000_000_000_000, 6_412_780_000_000, 3)
    );
    assert_eq!((twap[0].stream, twap[0].venue_seq), (2, 2));
    assert_eq!(twap[0].recv_ts_ns, 7);
    // seq 2 → 4 misses one frame; `dropped: 3` on seq 5 reports three more. Each: gap_detected
    // and resynced statuses on the stream, then the value.
    for i in [7, 8] {
        let r = &out[i].1;
        assert_eq!(r.len(), 3, "line {i}");
        let states: Vec<u8> = r[..2]
            .iter()
            .map(|s| s.body_as::<FeedStatusBody>().unwrap().state)
            .collect();
        assert_eq!(
            states,
            [FeedState::GapDetected as u8, FeedState::Resynced as u8]
        );
        assert_eq!((r[0].stream, r[2].stream), (1, 1));
        assert!(r[2].body_as::<IndexPrice>().is_some());
    }
    let price = d.counters.stream(1);
    assert_eq!((price.gaps, price.gap_records), (2, 4));
    assert_eq!((price.resyncs, price.records), (1, 5 + 4));
    let twap = d.counters.stream(2);
    assert_eq!((twap.gaps, twap.resyncs, twap.records), (0, 1, 1));
}

#[test]
fn reconnect_restarts_sequences_and_a_resubscribe_snapshot_is_deduplicated() {
    let mut d = FrameDriver::new(Venue::PolyBolt, SyncMode::Enforce, true).unwrap();
    let l = lines();
    let mut sink = Vec::new();
    for line in &l[..4] {
        d.frame(line.as_bytes(), 1, &mut sink).unwrap();
    }
    assert_eq!(sink.len(), 3);
    d.reconnected(&mut Vec::new());
    // After the reconnect seq starts at 1 again: no gap. The snapshot repeats rows already
    // seen: they are dropped (counted), nothing is emitted twice.
    sink.clear();
    d.frame(l[2].as_bytes(), 2, &mut sink).unwrap();
    assert!(sink.is_empty());
    let c = d.counters.stream(1);
    assert_eq!((c.gaps, c.dropped_unsynced, c.reconnects), (0, 2, 1));
    // A TWAP with another window is refused by name.
    let bad = l[6].replace("\"window_seconds\":60", "\"window_seconds\":30");
    assert_eq!(
        d.frame(bad.as_bytes(), 3, &mut sink),
        Err(ParseError::Invalid("window_seconds"))
    );
}
