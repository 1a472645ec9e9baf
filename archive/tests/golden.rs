#![allow(clippy::expect_used, clippy::unwrap_used)]
//! The archive's table contract, pinned like the bus layout: every table's Arrow schema (column
//! names, types, nullability, metadata) and the Arrow arrays a fixed set of records becomes are
//! compared with committed golden files. The round trip records → Parquet → records is exact.
//!
//! `column_paths_rows_per_second` (ignored) measures both column paths:
//! `cargo test --release -p ringbolt-archive --test golden -- --ignored --nocapture`.
//!
//! After an intended change (which bumps `ARCHIVE_SCHEMA_VERSION` for a schema change), rewrite
//! the files with `RINGBOLT_BLESS=1 cargo test -p ringbolt-archive --test golden` and review the diff.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ringbolt_archive::reader::ArchiveReader;
use ringbolt_archive::synth::Synth;
use ringbolt_archive::tables::{
    ARCHIVE_SCHEMA_VERSION, InstrumentNames, Source, Table, build_batch,
};
use ringbolt_archive::{layout, writer};
use ringbolt_bus::{Heartbeat, Publisher, Record, RecordKind, Segment, SegmentConfig, Venue};

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

/// Compares `current` with the committed file, or rewrites it under `RINGBOLT_BLESS=1`.
fn check_golden(name: &str, current: &str) {
    let path = golden(name);
    if std::env::var_os("RINGBOLT_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, current).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == current,
        "the archive contract changed ({}): review, bump ARCHIVE_SCHEMA_VERSION for a schema \
         change, and rewrite with RINGBOLT_BLESS=1.\n--- committed\n{committed}\n--- current\n{current}",
        path.display()
    );
}

fn schema_text() -> String {
    let mut out = String::new();
    for table in Table::ALL {
        let schema = table.schema();
        let _ = writeln!(out, "table {}", table.name());
        let metadata: BTreeMap<_, _> = schema.metadata().iter().collect();
        for (key, value) in metadata {
            let _ = writeln!(out, "  meta {key}={value}");
        }
        for field in schema.fields() {
            let _ = writeln!(
                out,
                "  {} {:?}{}{}",
                field.name(),
                field.data_type(),
                if field.is_nullable() { " null" } else { "" },
                if field.metadata().is_empty() {
                    String::new()
                } else {
                    format!(" {:?}", field.metadata())
                }
            );
        }
    }
    out
}

/// The archive table schemas are the committed contract (names, types, nullability, metadata).
#[test]
fn table_schemas_match_the_committed_contract() {
    check_golden(
        &format!("tables-v{ARCHIVE_SCHEMA_VERSION}.txt"),
        &schema_text(),
    );
}

struct FakeNames;

impl InstrumentNames for FakeNames {
    fn name(&mut self, id: u32) -> Arc<str> {
        format!("instrument-{id}").into()
    }
}

/// Deterministic records of every kind: the synthetic producer with fixed stamps and pid, plus a
/// few edge values (nulls, out-of-range decimals, unknown codes).
fn records(segment: &str, count: usize) -> Vec<Record> {
    let publisher = Publisher::create(
        segment,
        SegmentConfig {
            rings: 1,
            capacity: 1 << 10,
            instrument_capacity: 64,
        },
    )
    .unwrap();
    let mut synth = Synth::new(11, &publisher).unwrap();
    let mut out = Vec::new();
    let mut record = Record::zeroed();
    for i in 0..count as i64 {
        synth.next_record(1_773_307_200_000_000_000 + i * 1_000_000, &mut record);
        record.seq = i as u64 + 1;
        if let Some(mut hb) = record.body_as::<Heartbeat>() {
            hb.pid = 4242;
            record.set_body(&hb);
        }
        out.push(record);
    }
    drop(publisher);
    let _ = Segment::unlink(segment);
    out
}

fn by_table(records: &[Record]) -> BTreeMap<(Table, u8), Vec<Record>> {
    let mut out: BTreeMap<(Table, u8), Vec<Record>> = BTreeMap::new();
    for r in records {
        let table = r.record_kind().and_then(Table::for_kind).unwrap();
        out.entry((table, r.venue)).or_default().push(*r);
    }
    out
}

/// Records become exactly the committed Arrow arrays (a hash of their debug dump per table).
#[test]
fn batches_match_the_committed_contract() {
    let segment = format!("rb-golden-{}-batches", std::process::id());
    let all = records(&segment, 4000);
    let mut edge = Vec::new();
    let mut r = Record::new(
        Venue::Coinbase,
        1,
        3,
        &ringbolt_bus::Trade {
            price: i64::MAX,
            size: 0,
            trade_id: 0,
            side: 9,
            reserved: [0; 55],
        },
    );
    r.seq = 9;
    edge.push(r);
    let source = Source {
        segment: "golden".to_owned(),
        ring: 0,
        epoch: 7,
    };
    let mut text = String::new();
    for ((table, venue), rows) in by_table(&all).into_iter().chain(by_table(&edge)) {
        let (batch, bad) = build_batch(table, &source, &rows, &mut FakeNames).unwrap();
        let mut dump = String::new();
        for start in (0..batch.num_rows()).step_by(10) {
            let slice = batch.slice(start, 10.min(batch.num_rows() - start));
            for (field, column) in slice.schema().fields().iter().zip(slice.columns()) {
                let _ = writeln!(dump, "{} {:?}", field.name(), column);
            }
        }
        let hash = dump.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        let _ = writeln!(
            text,
            "{} venue={venue} rows={} bad={bad} fnv={hash:016x}",
            table.name(),
            batch.num_rows()
        );
    }
    check_golden("batches.txt", &text);
}

/// Writes each group's records as one part file (the archiver's writer settings) in the window
/// of `start_ns`.
fn write_archive(root: &Path, groups: &BTreeMap<(Table, u8), Vec<Record>>, start_ns: i64) {
    let _ = std::fs::remove_dir_all(root);
    let source = Source {
        segment: "golden".to_owned(),
        ring: 0,
        epoch: 7,
    };
    let window = layout::Window::of_ns(start_ns);
    for (part, ((table, venue), rows)) in groups.iter().enumerate() {
        let (batch, bad) = build_batch(*table, &source, rows, &mut FakeNames).unwrap();
        assert_eq!(bad, 0);
        let venue = Venue::from_u8(*venue).unwrap().as_str();
        let dir = window.dir(root, table.name(), venue);
        std::fs::create_dir_all(&dir).unwrap();
        let props = writer::properties(*table, 3, Vec::new()).unwrap();
        writer::write_file(&dir.join(format!("part-{part}.parquet")), &batch, props).unwrap();
    }
}

/// An archive written under bus layout v2 (its files say so) reads exactly as one of this
/// build: layout v3 changed the instrument table only, and generation-0 ids are the v2 ids.
#[test]
fn an_archive_of_bus_layout_v2_reads_the_same() {
    let segment = format!("rb-golden-{}-v2", std::process::id());
    let all = records(&segment, 400);
    let root = std::env::temp_dir().join(&segment);
    let _ = std::fs::remove_dir_all(&root);
    let source = Source {
        segment: "golden".to_owned(),
        ring: 0,
        epoch: 7,
    };
    let window = layout::Window::of_ns(all[0].publish_ts_ns);
    for (part, ((table, venue), rows)) in by_table(&all).iter().enumerate() {
        let (batch, _) = build_batch(*table, &source, rows, &mut FakeNames).unwrap();
        let mut meta = batch.schema().metadata().clone();
        let old = meta.insert("ringbolt.bus_layout_version".to_owned(), "2".to_owned());
        assert_eq!(old.as_deref(), Some("3"), "this build writes v3");
        let schema = batch.schema().as_ref().clone().with_metadata(meta);
        let batch =
            arrow_array::RecordBatch::try_new(Arc::new(schema), batch.columns().to_vec()).unwrap();
        let dir = window.dir(
            &root,
            table.name(),
            Venue::from_u8(*venue).unwrap().as_str(),
        );
        std::fs::create_dir_all(&dir).unwrap();
        let props = writer::properties(*table, 3, Vec::new()).unwrap();
        writer::write_file(&dir.join(format!("part-{part}.parquet")), &batch, props).unwrap();
    }
    let mut reader = ArchiveReader::open(&root).unwrap();
    let read = reader.read_all(&Table::ALL, None, &|_| true).unwrap();
    let _ = std::fs::remove_dir_all(&root);
    let mut got: Vec<Record> = read.rows.iter().map(|r| r.record).collect();
    got.sort_by_key(|r| r.seq);
    let mut expected = all;
    expected.sort_by_key(|r| r.seq);
    assert_eq!(got, expected);
    assert_eq!(reader.stats.unknown_names, 0);
}

/// Records → Parquet (the archiver's writer settings) → records is the identity.
#[test]
fn parquet_round_trip_rebuilds_every_record() {
    let segment = format!("rb-golden-{}-roundtrip", std::process::id());
    let all = records(&segment, 4000);
    let root = std::env::temp_dir().join(&segment);
    write_archive(&root, &by_table(&all), all[0].publish_ts_ns);
    let mut reader = ArchiveReader::open(&root).unwrap();
    let read = reader.read_all(&Table::ALL, None, &|_| true).unwrap();
    let _ = std::fs::remove_dir_all(&root);
    assert_eq!(read.rows.len(), all.len());
    let mut expected = all.clone();
    expected.sort_by_key(|r| r.seq);
    let mut got: Vec<Record> = read.rows.iter().map(|r| r.record).collect();
    got.sort_by_key(|r| r.seq);
    for (e, g) in expected.iter().zip(&got) {
        assert_eq!(e, g, "kind {:?}", RecordKind::from_u8(e.kind));
    }
    assert_eq!(reader.stats.null_values, 0);
    assert_eq!(reader.stats.unknown_names, 0);
}

/// CPU seconds of this thread (the machine is shared: wall time is mostly other processes).
fn cpu_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Rows per second of records → Arrow batches (the archiver's write path) and of Parquet →
/// records in bus order (the replay read path), in thread CPU time, best of five; `RB_SPEED_ROWS` rows (1 M).
#[test]
#[ignore = "a measurement: run in release with --ignored --nocapture"]
fn column_paths_rows_per_second() {
    let rows: usize = std::env::var("RB_SPEED_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let segment = format!("rb-golden-{}-speed", std::process::id());
    let all = records(&segment, rows);
    let groups = by_table(&all);
    let source = Source {
        segment: "speed".to_owned(),
        ring: 0,
        epoch: 1,
    };
    let mut build_s = f64::MAX;
    for _ in 0..5 {
        let t = cpu_s();
        for ((table, _), records) in &groups {
            for chunk in records.chunks(65_536) {
                std::hint::black_box(build_batch(*table, &source, chunk, &mut FakeNames).unwrap());
            }
        }
        build_s = build_s.min(cpu_s() - t);
    }
    let root = std::env::temp_dir().join(&segment);
    write_archive(&root, &groups, all[0].publish_ts_ns);
    let mut read_s = f64::MAX;
    for _ in 0..5 {
        let t = cpu_s();
        let mut reader = ArchiveReader::open(&root).unwrap();
        let read = reader.read_all(&Table::ALL, None, &|_| true).unwrap();
        read_s = read_s.min(cpu_s() - t);
        assert_eq!(read.rows.len(), rows);
    }
    let _ = std::fs::remove_dir_all(&root);
    println!(
        "rows={rows} build_batch={:.0} rows/s read={:.0} rows/s",
        rows as f64 / build_s,
        rows as f64 / read_s
    );
}

fn fixture_dir(version: u32) -> PathBuf {
    golden(&format!("archive-v{version}"))
}

/// Writes the committed fixture archive of this writer's schema version (400 records, one file
/// per table and venue) under `RINGBOLT_BLESS_FIXTURE=1`; later versions keep reading it.
#[test]
fn fixture_archive_of_this_schema_version() {
    if std::env::var_os("RINGBOLT_BLESS_FIXTURE").is_none() {
        return;
    }
    let segment = format!("rb-golden-{}-fixture", std::process::id());
    let all = records(&segment, 400);
    write_archive(
        &fixture_dir(ARCHIVE_SCHEMA_VERSION),
        &by_table(&all),
        all[0].publish_ts_ns,
    );
}

/// Archives written by the schema-v2 writer (`TIMESTAMP(NANOS)` stamps, unsigned integers; the
/// committed fixture) still read back to exactly the records they were written from.
#[test]
fn schema_v2_fixture_still_reads_back_every_record() {
    let segment = format!("rb-golden-{}-v2", std::process::id());
    let mut expected = records(&segment, 400);
    let mut reader = ArchiveReader::open(&fixture_dir(2)).unwrap();
    let read = reader.read_all(&Table::ALL, None, &|_| true).unwrap();
    assert_eq!(read.rows.len(), expected.len());
    expected.sort_by_key(|r| r.seq);
    let mut got: Vec<Record> = read.rows.iter().map(|r| r.record).collect();
    got.sort_by_key(|r| r.seq);
    assert_eq!(expected, got);
    assert_eq!(reader.stats.null_values, 0);
    assert_eq!(reader.stats.unknown_names, 0);
}

/// The synthetic day writer (`examples/synth_day.rs`, the scale figures) writes at least the
/// records asked for, one file per table, venue and window, all read back by the replay reader.
#[test]
fn synth_day_writer_output_reads_back() {
    let root = std::env::temp_dir().join(format!("rb-golden-{}-day", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let stats = ringbolt_archive::synth::write_day(&root, 1_773_273_600, 3, 6_001, 2).unwrap();
    assert_eq!(stats.records, 3 * 2_001);
    let mut reader = ArchiveReader::open(&root).unwrap();
    assert_eq!(reader.windows(&Table::ALL, None).len(), 3);
    let read = reader.read_all(&Table::ALL, None, &|_| true).unwrap();
    let _ = std::fs::remove_dir_all(&root);
    assert_eq!(read.rows.len() as u64, stats.records);
    assert_eq!(reader.stats.files, stats.files);
    assert_eq!(reader.stats.null_values, 0);
}

/// A window buffer reused window by window (as `ringbolt replay` reads) is allocated once, for
/// the largest window of the archive, even when a smaller window comes first: each further
/// allocation of a buffer that size is a fresh mapping paid again in page faults.
#[test]
fn a_reused_window_buffer_is_allocated_once_for_the_largest_window() {
    use ringbolt_archive::reader::WindowRows;
    let root = std::env::temp_dir().join(format!("rb-golden-{}-largest", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let start_s = 1_773_273_600;
    for (w, events) in [(0, 300), (1, 3_000), (2, 1_200)] {
        ringbolt_archive::synth::write_day(&root, start_s + 300 * w, 1, events, 1).unwrap();
    }
    let mut reader = ArchiveReader::open(&root).unwrap();
    let tables = Table::ALL;
    let mut window = WindowRows::default();
    let (mut sizes, mut buffers) = (Vec::new(), Vec::new());
    for key in reader.windows(&tables, None) {
        window.rows.clear();
        sizes.push(
            reader
                .read_window(&key, &tables, &|_| true, &mut window)
                .unwrap(),
        );
        buffers.push((window.rows.as_ptr(), window.rows.capacity()));
    }
    let _ = std::fs::remove_dir_all(&root);
    assert_eq!(sizes.len(), 3);
    assert!(sizes[0] < sizes[1] && sizes[2] < sizes[1], "{sizes:?}");
    assert!(buffers.iter().all(|b| *b == buffers[0]), "{buffers:?}");
    assert!(buffers[0].1 >= sizes[1]);
}
