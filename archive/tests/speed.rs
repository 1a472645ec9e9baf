#![allow(clippy::expect_used, clippy::unwrap_used)]
//! A focused measurement of the two column paths: records → Arrow batches (the archiver's write
//! path) and Parquet → records (the replay read path). Ignored by default; run in release:
//! `cargo test --release -p ringbolt-archive --test speed -- --ignored --nocapture`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use ringbolt_archive::reader::ArchiveReader;
use ringbolt_archive::synth::Synth;
use ringbolt_archive::tables::{InstrumentNames, Source, Table, build_batch};
use ringbolt_archive::{layout, writer};
use ringbolt_bus::{Publisher, Record, Segment, SegmentConfig, Venue};

struct FakeNames;

impl InstrumentNames for FakeNames {
    fn name(&mut self, id: u32) -> Arc<str> {
        format!("instrument-{id}").into()
    }
}

#[test]
#[ignore = "a measurement: run in release with --ignored --nocapture"]
fn column_paths_rows_per_second() {
    let rows: usize = std::env::var("RB_SPEED_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let segment = format!("rb-speed-{}", std::process::id());
    let publisher = Publisher::create(
        &segment,
        SegmentConfig {
            rings: 1,
            capacity: 1 << 10,
            instrument_capacity: 64,
        },
    )
    .unwrap();
    let mut synth = Synth::new(5, &publisher).unwrap();
    let mut record = Record::zeroed();
    let start_ns = 1_773_307_200_000_000_000_i64;
    let mut groups: BTreeMap<(Table, u8), Vec<Record>> = BTreeMap::new();
    for i in 0..rows {
        synth.next_record(start_ns + i as i64 * 200_000, &mut record);
        record.seq = i as u64 + 1;
        let table = record.record_kind().and_then(Table::for_kind).unwrap();
        groups
            .entry((table, record.venue))
            .or_default()
            .push(record);
    }
    drop(publisher);
    let _ = Segment::unlink(&segment);
    let source = Source {
        segment: "speed".to_owned(),
        ring: 0,
        epoch: 1,
    };
    // Write path: build every batch (best of 3).
    let mut build_s = f64::MAX;
    let mut batches = Vec::new();
    for _ in 0..3 {
        batches.clear();
        let t = Instant::now();
        for ((table, venue), records) in &groups {
            for chunk in records.chunks(65_536) {
                let (batch, _) = build_batch(*table, &source, chunk, &mut FakeNames).unwrap();
                batches.push((*table, *venue, batch));
            }
        }
        build_s = build_s.min(t.elapsed().as_secs_f64());
    }
    let root = std::env::temp_dir().join(&segment);
    let _ = std::fs::remove_dir_all(&root);
    let window = layout::Window::of_ns(start_ns);
    for (part, (table, venue, batch)) in batches.iter().enumerate() {
        let venue = Venue::from_u8(*venue).unwrap().as_str();
        let dir = window.dir(&root, table.name(), venue);
        std::fs::create_dir_all(&dir).unwrap();
        let props = writer::properties(*table, 3, Vec::new()).unwrap();
        writer::write_file(&dir.join(format!("part-{part}.parquet")), batch, props).unwrap();
    }
    // Read path: Parquet → records in bus order (best of 3).
    let mut read_s = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let mut reader = ArchiveReader::open(&root).unwrap();
        let read = reader.read_all(&Table::ALL, None, &|_| true).unwrap();
        read_s = read_s.min(t.elapsed().as_secs_f64());
        assert_eq!(read.rows.len(), rows);
    }
    let _ = std::fs::remove_dir_all(&root);
    println!(
        "rows={rows} build_batch={:.0} rows/s read={:.0} rows/s",
        rows as f64 / build_s,
        rows as f64 / read_s
    );
}
