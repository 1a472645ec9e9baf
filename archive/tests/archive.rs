#![allow(clippy::expect_used, clippy::unwrap_used)]
//! End-to-end tests of the archiver: a synthetic producer in a child process (this test binary
//! re-executed with `RB_ARCHIVE_CHILD` set), the archiver in another child that is SIGKILLed at
//! random moments, and the archive read back with the Rust Parquet reader, pyarrow, DuckDB and
//! Polars.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use ringbolt_archive::report::{list_parts, summarize};
use ringbolt_archive::synth::Synth;
use ringbolt_archive::{ArchiveConfig, ArchiveError, Archiver};
use ringbolt_bus::{Publisher, Record, Segment, SegmentConfig, now_ns};
use ringbolt_testkit::process::{Reaper, child_test, env_u64, wait_for};

const ROLE: &str = "RB_ARCHIVE_CHILD";

fn unique(name: &str) -> String {
    ringbolt_testkit::fs::unique("rb-archive-test", name)
}

/// Unlinks a test segment when the test ends, however it ends (the producer children are killed,
/// so nobody else would remove it from /dev/shm).
struct ShmCleanup(String);

impl Drop for ShmCleanup {
    fn drop(&mut self) {
        let _ = Segment::unlink(&self.0);
    }
}

fn tempdir(name: &str) -> PathBuf {
    ringbolt_testkit::fs::tempdir("rb-archive-test", name)
}

fn spawn(role: &str, vars: &[(&str, String)]) -> Child {
    let mut command = child_test(ROLE, role);
    for (k, v) in vars {
        command.env(k, v);
    }
    command.spawn().unwrap()
}

/// The child roles. A no-op when run as a normal test.
#[test]
#[ignore = "child-process entry point: run only by the tests that spawn it (--include-ignored)"]
fn child_process_entry() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let segment = std::env::var("SEG").unwrap();
    match role.as_str() {
        // Publishes phases of records (comma-separated counts) at RATE/s; before phase i > 0 it
        // waits for `<DIR>/go<i>`, after each phase it writes `<DIR>/done<i>` holding
        // "first_seq head epoch". Then holds until killed (or exits when HOLD=0).
        "producer" => {
            let dir = PathBuf::from(std::env::var("DIR").unwrap());
            let rate = env_u64("RATE", 0);
            let capacity = env_u64("CAP", 1 << 16) as usize;
            let (publisher, mut synth) = producer(&segment, capacity, env_u64("SEED", 1));
            let mut writer = publisher.writer(0).unwrap();
            let first = writer.next_seq();
            let mut record = Record::zeroed();
            let phases: Vec<u64> = std::env::var("PHASES")
                .unwrap()
                .split(',')
                .map(|p| p.parse().unwrap())
                .collect();
            for (i, count) in phases.iter().enumerate() {
                if i > 0 {
                    wait_for(&dir.join(format!("go{i}")), Duration::from_secs(60));
                }
                let start = Instant::now();
                for k in 0..*count {
                    if let Some(step_ns) = 1_000_000_000u64.checked_div(rate) {
                        let due = Duration::from_nanos(k * step_ns);
                        while start.elapsed() < due {
                            std::thread::sleep(Duration::from_micros(200));
                        }
                    }
                    synth.next_record(now_ns(), &mut record);
                    writer.publish(&record);
                }
                let text = format!(
                    "{first} {} {}",
                    writer.next_seq(),
                    publisher.segment().epoch()
                );
                ringbolt_archive::layout::write_atomic(
                    &dir.join(format!("done{i}")),
                    text.as_bytes(),
                )
                .unwrap();
            }
            if env_u64("HOLD", 1) == 1 {
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
        "archiver" => {
            let root = PathBuf::from(std::env::var("ROOT").unwrap());
            let mut config = ArchiveConfig::new(root, vec![segment]);
            config.flush_interval_ms = env_u64("FLUSH_MS", 1000);
            config.min_free_bytes = 1 << 20;
            config.hlog_interval_s = 1;
            let mut archiver = Archiver::open(config).unwrap();
            archiver.enable_hlog().unwrap();
            if env_u64("COMPACT_ALL", 0) == 1 {
                // As Archiver::run, but compacting every partition (open windows too) after each
                // flush, so SIGKILL also lands inside compactions.
                loop {
                    let deadline =
                        Instant::now() + Duration::from_millis(env_u64("FLUSH_MS", 1000));
                    while Instant::now() < deadline {
                        if archiver.poll_once(4096).unwrap() == 0 {
                            std::thread::sleep(Duration::from_micros(200));
                        }
                    }
                    archiver.flush().unwrap();
                    archiver.compact_closed_by(i64::MAX).unwrap();
                }
            }
            let stop = std::sync::atomic::AtomicBool::new(false);
            archiver.run(&stop).unwrap();
        }
        other => panic!("unknown role {other}"),
    }
}

fn read_done(dir: &Path, phase: usize) -> (u64, u64, u64) {
    let text = std::fs::read_to_string(dir.join(format!("done{phase}"))).unwrap();
    let v: Vec<u64> = text
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    (v[0], v[1], v[2])
}

/// A test's temporary directory, its archive root inside it, and a bus segment name that is
/// unlinked when the returned guard drops.
fn fixture(name: &str) -> (PathBuf, PathBuf, String, ShmCleanup) {
    let dir = tempdir(name);
    let root = dir.join("archive");
    let segment = unique(name);
    let cleanup = ShmCleanup(segment.clone());
    (dir, root, segment, cleanup)
}

/// A one-ring segment of `capacity` records and a synthetic producer seeded with `seed`.
fn producer(segment: &str, capacity: usize, seed: u64) -> (Publisher, Synth) {
    let config = SegmentConfig {
        rings: 1,
        capacity,
        instrument_capacity: 64,
    };
    let publisher = Publisher::create(segment, config).unwrap();
    let synth = Synth::new(seed, &publisher).unwrap();
    (publisher, synth)
}

/// Runs an in-process archiver until it has read every ring to its head, then commits.
fn drain(root: &Path, segment: &str, flush_ms: u64) -> Archiver {
    let mut config = ArchiveConfig::new(root, vec![segment.to_owned()]);
    config.flush_interval_ms = flush_ms;
    config.min_free_bytes = 1 << 20;
    let mut archiver = Archiver::open(config).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !archiver.caught_up() {
        archiver.poll_once(4096).unwrap();
        assert!(Instant::now() < deadline, "archiver did not catch up");
    }
    archiver.flush().unwrap();
    archiver
}

/// The `u64` column `name` of `batch` (stored as INT64 since schema v3), null as `None`.
fn u64s(batch: &arrow_array::RecordBatch, name: &str) -> Vec<Option<u64>> {
    batch
        .column_by_name(name)
        .unwrap()
        .as_primitive::<Int64Type>()
        .iter()
        .map(|v| v.map(|v| v as u64))
        .collect()
}

/// The string values of the dictionary column `name` of `batch`.
fn dict_strings(batch: &arrow_array::RecordBatch, name: &str) -> Vec<String> {
    let column = batch.column_by_name(name).unwrap();
    let dict = arrow_array::cast::as_dictionary_array::<arrow_array::types::Int32Type>(column);
    let values = dict.values().as_string::<i32>();
    dict.keys()
        .iter()
        .map(|k| values.value(k.unwrap() as usize).to_owned())
        .collect()
}

/// (epoch, seq) of every bus record in the archive, and the gap rows (kind, epoch, from, count).
#[allow(clippy::type_complexity)]
fn read_back(root: &Path) -> (Vec<(u64, u64)>, Vec<(String, u64, Option<u64>, u64)>) {
    let mut seqs = Vec::new();
    let mut gaps = Vec::new();
    for part in list_parts(root).unwrap() {
        let file = File::open(&part.path).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap_or_else(|e| panic!("{} unreadable: {e}", part.path.display()))
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let epoch = u64s(&batch, "epoch");
            if part.table == "gaps" {
                let kinds = dict_strings(&batch, "kind");
                let (from, count) = (u64s(&batch, "from_seq"), u64s(&batch, "count"));
                for (i, kind) in kinds.into_iter().enumerate() {
                    gaps.push((kind, epoch[i].unwrap(), from[i], count[i].unwrap()));
                }
            } else {
                // The archiver's own heartbeat rows (segment "archiver") are not bus records.
                let segments = dict_strings(&batch, "segment");
                let seq = u64s(&batch, "seq");
                for (i, segment) in segments.iter().enumerate() {
                    if segment != "archiver" {
                        seqs.push((epoch[i].unwrap(), seq[i].unwrap()));
                    }
                }
            }
        }
    }
    seqs.sort_unstable();
    (seqs, gaps)
}

fn hidden_tmp_files(root: &Path) -> Vec<PathBuf> {
    ringbolt_archive::layout::walk(root, &|p: &Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(".tmp"))
    })
    .unwrap()
}

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("RINGBOLT_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    if venv.exists() {
        return venv;
    }
    PathBuf::from("python3")
}

/// Whether the Python readers are importable; in CI their absence fails the test.
fn python_ready() -> bool {
    let ok = Command::new(python())
        .args(["-c", "import pyarrow, duckdb, polars"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "pyarrow/duckdb/polars missing: pip install -r archive/requirements.txt"
        );
        eprintln!(
            "SKIP python readers: pyarrow/duckdb/polars not importable by {}",
            python().display()
        );
    }
    ok
}

fn python_read(root: &Path) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/read_archive.py");
    let output = Command::new(python())
        .arg(script)
        .arg(root)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "python readers failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn kill9_at_random_moments_leaves_no_corrupt_file_and_loses_nothing() {
    let (dir, root, segment, _cleanup) = fixture("kill9");
    let total = 120_000u64;
    let producer = spawn(
        "producer",
        &[
            ("SEG", segment.clone()),
            ("DIR", dir.display().to_string()),
            ("PHASES", total.to_string()),
            ("RATE", "40000".to_owned()),
            ("CAP", (1u64 << 19).to_string()),
        ],
    );
    let _producer = Reaper(producer);
    Segment::open_wait(&segment, Duration::from_secs(10)).unwrap();
    let mut rng = 0x2545_F491_4F6C_DD1Du64 ^ u64::from(std::process::id());
    let mut kills = 0;
    let mut planted = false;
    while !dir.join("done0").exists() || kills < 4 {
        let archiver = spawn(
            "archiver",
            &[
                ("SEG", segment.clone()),
                ("ROOT", root.display().to_string()),
                ("FLUSH_MS", "150".to_owned()),
                ("COMPACT_ALL", (kills % 2).to_string()),
            ],
        );
        if kills == 0 {
            // Let the first process commit once, then kill at random moments.
            wait_for(&root.join("_ringbolt/state.json"), Duration::from_secs(60));
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(80 + rng % 600));
        let mut archiver = archiver;
        archiver.kill().unwrap(); // SIGKILL
        archiver.wait().unwrap();
        kills += 1;
        if !planted && let Some(part) = list_parts(&root).unwrap().first() {
            // A half-written file as a killed flush leaves it: must be removed, never read.
            let stray = part.path.with_file_name(".part-999999999.parquet.tmp");
            std::fs::write(&stray, b"PAR1 partial garbage").unwrap();
            planted = true;
        }
    }
    assert!(kills >= 4);
    let (first, head, epoch) = read_done(&dir, 0);
    assert_eq!(head - first, total);

    let archiver = drain(&root, &segment, 150);
    assert!(planted, "no file was committed before the kills");
    drop(archiver);
    assert!(
        hidden_tmp_files(&root).is_empty(),
        "stray temp files remain: {:?}",
        hidden_tmp_files(&root)
    );

    let (seqs, gaps) = read_back(&root);
    let mut dedup = seqs.clone();
    dedup.dedup();
    assert_eq!(dedup.len(), seqs.len(), "records archived twice");
    let lost: u64 = gaps
        .iter()
        .filter(|g| g.0 != "bad_value")
        .map(|g| g.3)
        .sum();
    assert_eq!(
        seqs.len() as u64 + lost,
        total,
        "rows + recorded losses != published; gaps {gaps:?}"
    );
    // With a ring of 2^19 records nothing should have been lost at all.
    assert_eq!(lost, 0, "unexpected losses: {gaps:?}");
    assert!(
        seqs.iter()
            .all(|(e, s)| *e == epoch && (first..head).contains(s))
    );

    // Coverage bookkeeping: each archiver process wrote its own heartbeat row.
    let report = summarize(&root, None, &mut |_, _| {}).unwrap();
    let day = report.days.values().next().unwrap();
    assert!(day.coverage["archive"].windows >= 1);
    let hlogs = std::fs::read_dir(root.join("_ringbolt/hlog"))
        .unwrap()
        .count();
    // A process SIGKILLed within its first milliseconds (a loaded machine) may not have opened
    // its dump yet; the final drain's process always has.
    assert!(
        hlogs >= 1 && hlogs <= kills + 1,
        "one .hlog per archiver process: {hlogs} for {kills} kills"
    );

    if python_ready() {
        let py = python_read(&root);
        let mut py_rows = 0;
        for (table, entry) in py.as_object().unwrap() {
            let n = entry["pyarrow_rows"].as_u64().unwrap();
            assert_eq!(entry["duckdb_rows"].as_u64(), Some(n), "{table}");
            assert_eq!(entry["polars_rows"].as_u64(), Some(n), "{table}");
            py_rows += entry["bus_rows"].as_u64().unwrap_or(0);
        }
        assert_eq!(py_rows, seqs.len() as u64);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn overruns_and_producer_restarts_are_counted_exactly_in_gaps() {
    let (dir, root, segment, _cleanup) = fixture("gaps");
    let vars = |phases: &str| {
        vec![
            ("SEG", segment.clone()),
            ("DIR", dir.display().to_string()),
            ("PHASES", phases.to_owned()),
            ("CAP", "4096".to_owned()),
        ]
    };
    let mut producer = Reaper(spawn("producer", &vars("1000,20000,100")));
    wait_for(&dir.join("done0"), Duration::from_secs(30));
    let mut config = ArchiveConfig::new(&root, vec![segment.clone()]);
    config.min_free_bytes = 1 << 20;
    let mut archiver = Archiver::open(config.clone()).unwrap();
    while archiver.archived() < 1000 {
        archiver.poll_once(4096).unwrap();
    }
    archiver.flush().unwrap();
    // Phase 1: 20 000 records into a 4096-record ring while the archiver is not polling.
    std::fs::write(dir.join("go1"), b"").unwrap();
    wait_for(&dir.join("done1"), Duration::from_secs(30));
    while !archiver.caught_up() {
        archiver.poll_once(4096).unwrap();
    }
    // Phase 2: 100 records the archiver never reads before the producer is SIGKILLed.
    std::fs::write(dir.join("go2"), b"").unwrap();
    wait_for(&dir.join("done2"), Duration::from_secs(30));
    let (_, old_head, old_epoch) = read_done(&dir, 2);
    producer.0.kill().unwrap();
    producer.0.wait().unwrap();
    // The restarted producer takes the segment over in a new epoch and publishes 4000, which
    // overwrites the slots of the 100 unread old-epoch records: they are lost, exactly 100.
    let restart_dir = dir.join("restart");
    std::fs::create_dir_all(&restart_dir).unwrap();
    let mut restart_vars = vars("4000");
    restart_vars[1].1 = restart_dir.display().to_string();
    restart_vars.push(("SEED", "2".to_owned()));
    let _producer2 = Reaper(spawn("producer", &restart_vars));
    wait_for(&restart_dir.join("done0"), Duration::from_secs(30));
    let (new_first, new_head, new_epoch) = read_done(&restart_dir, 0);
    assert_ne!(new_epoch, old_epoch);
    let deadline = Instant::now() + Duration::from_secs(30);
    while archiver.archived() < 5000 || !archiver.caught_up() {
        archiver.poll_once(4096).unwrap();
        assert!(Instant::now() < deadline);
    }
    archiver.flush().unwrap();
    drop(archiver);

    let (seqs, gaps) = read_back(&root);
    let overrun: Vec<_> = gaps.iter().filter(|g| g.0 == "overrun").collect();
    let restart: Vec<_> = gaps.iter().filter(|g| g.0 == "producer_restart").collect();
    assert_eq!(overrun.len(), 1, "{gaps:?}");
    assert_eq!(overrun[0].3, 20_000, "overrun count");
    assert_eq!(restart.len(), 1, "{gaps:?}");
    assert_eq!(restart[0].3, 100, "records of the old epoch never read");
    assert_eq!(restart[0].1, old_epoch);
    assert_eq!(restart[0].2, Some(old_head - 100));
    assert_eq!(seqs.len(), 5000);
    assert_eq!(
        seqs.iter().filter(|(e, _)| *e == new_epoch).count() as u64,
        new_head - new_first
    );

    // A restart of the archiver itself after the ring moved on: the loss is computed from the
    // committed cursor. 20 000 more records into the 4096 ring while no archiver runs.
    drop(_producer2);
    let restart3 = dir.join("restart3");
    std::fs::create_dir_all(&restart3).unwrap();
    let mut vars3 = vars("20000");
    vars3[1].1 = restart3.display().to_string();
    let _producer3 = Reaper(spawn("producer", &vars3));
    wait_for(&restart3.join("done0"), Duration::from_secs(30));
    let (first3, head3, _) = read_done(&restart3, 0);
    let archiver = drain(&root, &segment, 1000);
    drop(archiver);
    let (seqs2, gaps2) = read_back(&root);
    let new_restart_loss: u64 = gaps2
        .iter()
        .filter(|g| g.0 == "producer_restart")
        .map(|g| g.3)
        .sum::<u64>()
        - 100;
    let archiver_restart: u64 = gaps2
        .iter()
        .filter(|g| g.0 == "archiver_restart")
        .map(|g| g.3)
        .sum();
    // Epoch 2's records were all archived, so the producer restart loses none of them; epoch 3
    // published 20 000 into a 4096 ring before the archiver came back, which then starts a
    // sixteenth of the ring past the oldest record (so the producer cannot lap it at once).
    let margin = 4096 / 16;
    assert_eq!(new_restart_loss, 0, "{gaps2:?}");
    assert_eq!(archiver_restart, 20_000 - 4096 + margin, "{gaps2:?}");
    assert_eq!((seqs2.len() - seqs.len()) as u64, 4096 - margin);
    assert_eq!(head3 - first3, 20_000);
    let _ = std::fs::remove_dir_all(&dir);
}

fn generate(root: &Path, records: u64) -> String {
    let segment = unique(&format!(
        "gen-{}",
        root.parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
    ));
    let (publisher, mut synth) = producer(&segment, 1 << 18, 3);
    let mut writer = publisher.writer(0).unwrap();
    let mut record = Record::zeroed();
    for _ in 0..records {
        synth.next_record(now_ns(), &mut record);
        writer.publish(&record);
    }
    drop(drain(root, &segment, 1000));
    drop(publisher);
    let _ = Segment::unlink(&segment);
    segment
}

#[test]
fn readers_see_the_right_types() {
    let dir = tempdir("types");
    let root = dir.join("archive");
    generate(&root, 50_000);
    let (seqs, _) = read_back(&root);
    assert_eq!(seqs.len(), 50_000);
    if !python_ready() {
        return;
    }
    let py = python_read(&root);
    let tables: Vec<&String> = py.as_object().unwrap().keys().collect();
    for t in [
        "trades",
        "book_changes",
        "tops",
        "index_prices",
        "funding",
        "liquidations",
        "feed_status",
        "decisions",
        "order_transitions",
        "collector_heartbeat",
    ] {
        assert!(
            tables.iter().any(|x| *x == t),
            "table {t} missing: {tables:?}"
        );
    }
    let trades = &py["trades"];
    assert_eq!(trades["pyarrow_types"]["price"], "decimal128(18, 8)");
    assert_eq!(
        trades["pyarrow_types"]["publish_ts"],
        "timestamp[us, tz=UTC]"
    );
    assert_eq!(trades["pyarrow_types"]["publish_ts_ns"], "int64");
    assert_eq!(trades["pyarrow_types"]["ring"], "int32");
    assert_eq!(
        trades["pyarrow_types"]["instrument"],
        "dictionary<values=string, indices=int32, ordered=0>"
    );
    assert_eq!(trades["pyarrow_types"]["seq"], "int64");
    assert_eq!(trades["pyarrow_types"]["stream"], "int16");
    assert_eq!(trades["duckdb_types"]["price"], "DECIMAL(18,8)");
    assert_eq!(
        trades["duckdb_types"]["publish_ts"],
        "TIMESTAMP WITH TIME ZONE"
    );
    assert_eq!(trades["duckdb_types"]["recv_ts_ns"], "BIGINT");
    assert_eq!(trades["duckdb_types"]["venue"], "VARCHAR");
    assert_eq!(
        trades["polars_types"]["price"],
        "Decimal(precision=18, scale=8)"
    );
    assert!(
        trades["polars_types"]["publish_ts"]
            .as_str()
            .unwrap()
            .starts_with("Datetime(time_unit='us', time_zone='UTC')")
    );
    let index = &py["index_prices"];
    assert_eq!(index["pyarrow_types"]["value_e18"], "decimal128(38, 18)");
    assert_eq!(index["duckdb_types"]["value_e18"], "DECIMAL(38,18)");
    assert_eq!(py["funding"]["pyarrow_types"]["rate"], "decimal128(18, 12)");
    assert_eq!(
        py["order_transitions"]["pyarrow_types"]["venue_order_id"],
        "fixed_size_binary[16]"
    );
    assert_eq!(py["book_changes"]["pyarrow_types"]["batch_end"], "bool");
    // Every bus record is there once, in every reader.
    let total: u64 = py
        .as_object()
        .unwrap()
        .iter()
        .map(|(_, e)| e["bus_rows"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(total, 50_000);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn analysis_doc_examples_run_against_a_generated_archive() {
    let dir = tempdir("docs");
    let root = dir.join("archive");
    generate(&root, 30_000);
    if !python_ready() {
        return;
    }
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/analysis.md"))
            .unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match (&mut current, line.trim_start()) {
            (None, l) if l.starts_with("```python") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            _ => {}
        }
    }
    assert!(
        blocks.len() >= 4,
        "docs/analysis.md should hold DuckDB and Polars examples"
    );
    let all = blocks.join("\n");
    assert!(all.contains("duckdb.") && all.contains("pl.scan_parquet"));
    for (i, block) in blocks.iter().enumerate() {
        let output = Command::new(python())
            .args(["-c", block])
            .env("ARCHIVE", &root)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "docs/analysis.md python block {i} failed:\n{block}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!output.stdout.is_empty(), "block {i} printed nothing");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn disk_guard_refuses_to_start_and_stops_writing() {
    let (dir, root, segment, _cleanup) = fixture("disk");
    let publisher = Publisher::create(&segment, SegmentConfig::default()).unwrap();
    let mut synth = Synth::new(5, &publisher).unwrap();
    let mut writer = publisher.writer(0).unwrap();
    let mut config = ArchiveConfig::new(&root, vec![segment.clone()]);
    config.min_free_bytes = u64::MAX;
    let err = Archiver::open(config.clone()).unwrap_err();
    assert!(matches!(err, ArchiveError::DiskFull { .. }), "{err}");
    assert!(err.to_string().contains("disk guard"), "{err}");

    config.min_free_bytes = 1 << 20;
    let mut archiver = Archiver::open(config).unwrap();
    let mut record = Record::zeroed();
    for _ in 0..1000 {
        synth.next_record(now_ns(), &mut record);
        writer.publish(&record);
    }
    while archiver.archived() < 1000 {
        archiver.poll_once(4096).unwrap();
    }
    let before = archiver.state().clone();
    archiver.set_min_free_bytes(u64::MAX);
    let err = archiver.flush().unwrap_err();
    assert!(matches!(err, ArchiveError::DiskFull { .. }), "{err}");
    assert_eq!(
        archiver.state(),
        &before,
        "nothing committed under the guard"
    );
    assert!(list_parts(&root).unwrap().is_empty());
    // Space is back: the buffered records are committed.
    archiver.set_min_free_bytes(1 << 20);
    let stats = archiver.flush().unwrap();
    assert!(stats.rows >= 1000);
    drop(archiver);
    let (seqs, _) = read_back(&root);
    assert_eq!(seqs.len(), 1000);
    drop(publisher);
    let _ = Segment::unlink(&segment);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn report_counts_rows_bytes_and_gaps() {
    let dir = tempdir("report");
    let root = dir.join("archive");
    generate(&root, 20_000);
    let mut calls = 0;
    let report = summarize(&root, None, &mut |done, total| {
        calls += 1;
        assert!(done <= total);
    })
    .unwrap();
    assert_eq!(calls as u64, report.files);
    let rows: u64 = report
        .days
        .values()
        .flat_map(|d| d.tables.iter())
        .filter(|(t, _)| *t != "gaps")
        .flat_map(|(_, v)| v.values())
        .map(|v| v.rows)
        .sum();
    // Every bus record plus the archiver's own heartbeat row(s): one per window it ran in.
    assert!((20_001..=20_002).contains(&rows), "{rows}");
    let bytes: u64 = list_parts(&root)
        .unwrap()
        .iter()
        .map(|p| std::fs::metadata(&p.path).unwrap().len())
        .sum();
    assert_eq!(report.bytes, bytes);
    let day = report.days.values().next().unwrap();
    let per_venue: BTreeMap<_, _> = day.events_by_venue.clone();
    assert!(per_venue.contains_key("polymarket") && per_venue.contains_key("chainlink_rtds"));
    assert!(day.gaps.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn compaction_merges_parts_without_losing_or_duplicating_rows() {
    let (dir, root, segment, _cleanup) = fixture("compact");
    let (publisher, mut synth) = producer(&segment, 1 << 16, 9);
    let mut writer = publisher.writer(0).unwrap();
    let mut config = ArchiveConfig::new(&root, vec![segment.clone()]);
    config.min_free_bytes = 1 << 20;
    let mut archiver = Archiver::open(config.clone()).unwrap();
    let mut record = Record::zeroed();
    // Five flushes: five parts per partition.
    for _ in 0..5 {
        for _ in 0..4000 {
            synth.next_record(now_ns(), &mut record);
            writer.publish(&record);
        }
        while !archiver.caught_up() {
            archiver.poll_once(4096).unwrap();
        }
        archiver.flush().unwrap();
    }
    let before_files = list_parts(&root).unwrap().len();
    let (before, _) = read_back(&root);
    // A normal pass only touches windows closed for 5 s (none, unless the test straddles one).
    archiver.compact(Duration::from_secs(5)).unwrap();
    // The run loop's step: one partition at a time.
    let uncompacted = |a: &Archiver| a.state().uncompacted.len();
    let pending = uncompacted(&archiver);
    assert_eq!(
        archiver.compact_closed_by_at_most(i64::MAX, 1).unwrap(),
        (1, 1)
    );
    assert_eq!(uncompacted(&archiver), pending - 1);
    let compacted = archiver.compact_closed_by(i64::MAX).unwrap();
    assert!(compacted > 10, "{compacted}");
    assert_eq!(uncompacted(&archiver), 0);
    drop(archiver);
    let after_files = list_parts(&root).unwrap();
    assert!(
        after_files.len() * 3 < before_files,
        "{} -> {}",
        before_files,
        after_files.len()
    );
    let (after, _) = read_back(&root);
    assert_eq!(
        before.len(),
        after.len(),
        "compaction changed the row count"
    );
    assert!(before == after, "compaction changed the rows");
    assert!(hidden_tmp_files(&root).is_empty());
    // Merged files keep the schema metadata (scales, archive schema version): replay reads them.
    let mut reader = ringbolt_archive::reader::ArchiveReader::open(&root).unwrap();
    let all = reader
        .read_all(&ringbolt_archive::tables::Table::ALL, None, &|_| true)
        .unwrap();
    assert!(all.rows.len() >= 20_000, "{}", all.rows.len());
    // A restart after compaction resumes cleanly.
    let archiver = Archiver::open(config).unwrap();
    assert_eq!(archiver.stray_tmp_removed(), 0);
    drop(archiver);
    if python_ready() {
        let py = python_read(&root);
        let total: u64 = py
            .as_object()
            .unwrap()
            .values()
            .map(|e| e["bus_rows"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(total, 20_000);
    }
    drop(publisher);
    let _ = Segment::unlink(&segment);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_stopping_archiver_drains_what_the_rings_still_hold() {
    // An archiver that lags behind its producer is asked to stop with 30,000 records unread:
    // it must take them all (within STOP_DRAIN_BUDGET) before its final flush, not drop them.
    let (dir, root, segment, _cleanup) = fixture("stopdrain");
    let (publisher, mut synth) = producer(&segment, 1 << 16, 11);
    let mut writer = publisher.writer(0).unwrap();
    let mut config = ArchiveConfig::new(&root, vec![segment.clone()]);
    config.min_free_bytes = 1 << 20;
    let mut archiver = Archiver::open(config).unwrap();
    let mut record = Record::zeroed();
    for _ in 0..30_000 {
        synth.next_record(now_ns(), &mut record);
        writer.publish(&record);
    }
    let stop = std::sync::atomic::AtomicBool::new(true);
    archiver.run(&stop).unwrap();
    let (seqs, gaps) = read_back(&root);
    assert_eq!(
        seqs.len(),
        30_000,
        "every record on the ring archived at stop"
    );
    assert!(gaps.is_empty(), "{gaps:?}");
    drop(publisher);
    let _ = Segment::unlink(&segment);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_restarted_archiver_resumes_at_its_cursor_while_the_producer_keeps_writing() {
    // The archiver commits 500 records and goes down; the producer publishes until the ring
    // (1024) is nearly full past that cursor, and one more record right after the archiver
    // restarts. Resuming at the oldest slot, the restarted archiver would be lapped by that one
    // record and jump to the live edge, losing everything after its cursor; resuming at its
    // cursor it loses nothing.
    let (dir, root, segment, _cleanup) = fixture("resume");
    let (publisher, mut synth) = producer(&segment, 1024, 13);
    let mut writer = publisher.writer(0).unwrap();
    publish(&mut writer, &mut synth, 500);
    drop(drain(&root, &segment, 1000));
    publish(&mut writer, &mut synth, 1000);
    let mut config = ArchiveConfig::new(&root, vec![segment.clone()]);
    config.min_free_bytes = 1 << 20;
    let mut archiver = Archiver::open(config).unwrap();
    publish(&mut writer, &mut synth, 1);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !archiver.caught_up() {
        archiver.poll_once(4096).unwrap();
        assert!(Instant::now() < deadline, "archiver did not catch up");
    }
    archiver.flush().unwrap();
    drop(archiver);
    let (seqs, gaps) = read_back(&root);
    assert!(gaps.is_empty(), "nothing lost: {gaps:?}");
    assert_eq!(seqs.len(), 1501, "every record published is archived once");
    drop(publisher);
    let _ = Segment::unlink(&segment);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Publishes `n` synthetic records.
fn publish(writer: &mut ringbolt_bus::RingWriter, synth: &mut Synth, n: usize) {
    let mut record = Record::zeroed();
    for _ in 0..n {
        synth.next_record(now_ns(), &mut record);
        writer.publish(&record);
    }
}

#[test]
fn an_archiver_killed_across_a_producer_restart_reads_the_old_epochs_tail_from_the_ring() {
    // What the demo's faults can produce: the archiver lags, the producer is killed and
    // restarted (a new epoch), and the archiver is killed before it committed anything past the
    // old epoch. The take-over kept the old slots: the restarted archiver reads the old tail
    // from its committed cursor, then the new epoch, and loses nothing.
    let (dir, root, segment, _cleanup) = fixture("old-tail");
    let (first, mut synth) = producer(&segment, 1024, 17);
    let mut writer = first.writer(0).unwrap();
    publish(&mut writer, &mut synth, 300);
    drop(drain(&root, &segment, 1000)); // committed at 300
    publish(&mut writer, &mut synth, 400);
    let old_epoch = first.segment().epoch();
    let mut config = ArchiveConfig::new(&root, vec![segment.clone()]);
    config.min_free_bytes = 1 << 20;
    let mut killed = Archiver::open(config.clone()).unwrap();
    while killed.archived() < 250 {
        killed.poll_once(250).unwrap();
    }
    drop(killed); // read 250 of the 400, committed none: as kill -9
    drop((writer, first));
    let (second, mut synth) = producer(&segment, 1024, 18);
    let mut writer = second.writer(0).unwrap();
    let new_epoch = second.segment().epoch();
    assert_ne!(new_epoch, old_epoch);
    publish(&mut writer, &mut synth, 200);
    drop(drain(&root, &segment, 1000));
    let (seqs, gaps) = read_back(&root);
    assert!(gaps.is_empty(), "nothing lost: {gaps:?}");
    let (base, prev_end) = second.segment().epoch_bounds(0);
    let expected: Vec<(u64, u64)> = (0..prev_end)
        .map(|s| (old_epoch, s))
        .chain((base..base + 200).map(|s| (new_epoch, s)))
        .collect();
    assert_eq!(seqs, expected, "every record of both epochs, once");

    // Once a new epoch has overwritten the slot at the committed cursor, the whole unread tail
    // is one `producer_restart` gap row: the second epoch commits 200, its next 400 are read
    // but not committed, and the third epoch's 1,000 records overwrite all but the newest 24
    // of its slots.
    let committed = base + 200;
    publish(&mut writer, &mut synth, 400);
    let mut killed = Archiver::open(config.clone()).unwrap();
    while killed.archived() < 400 {
        killed.poll_once(400).unwrap();
    }
    drop(killed);
    drop((writer, second));
    let (third, mut synth) = producer(&segment, 1024, 19);
    let mut writer = third.writer(0).unwrap();
    publish(&mut writer, &mut synth, 1000);
    drop(drain(&root, &segment, 1000));
    let (seqs2, gaps) = read_back(&root);
    let restart: Vec<_> = gaps.iter().filter(|g| g.0 == "producer_restart").collect();
    assert_eq!(restart.len(), 1, "{gaps:?}");
    assert_eq!(
        (restart[0].1, restart[0].2, restart[0].3),
        (new_epoch, Some(committed), 400),
        "{gaps:?}"
    );
    assert_eq!(seqs2.len() - seqs.len(), 1000, "the third epoch, whole");
    drop(third);
    let _ = std::fs::remove_dir_all(&dir);
}
