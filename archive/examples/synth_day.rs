//! One synthetic archive day for the scale figures (docs/BENCHMARKS.md, docs/analysis.md):
//!
//! ```text
//! cargo run --release -p ringbolt-archive --example synth_day -- write ROOT [EVENTS] [THREADS]
//! cargo run --release -p ringbolt-archive --example synth_day -- read ROOT
//! ```
//!
//! `write` spreads EVENTS (default 291 M, the seed system's day) over the 288 windows of
//! 2026-03-12 as compacted partitions; `read` reads every window back into bus records in bus
//! order with the replay reader (the read path of `ringbolt replay`). Each prints one JSON line.
#![allow(clippy::expect_used)]

use std::path::Path;
use std::time::Instant;

use ringbolt_archive::reader::{ArchiveReader, WindowRows};
use ringbolt_archive::tables::Table;

const DAY_START_S: i64 = 1_773_273_600;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map_or("", String::as_str);
    let root = Path::new(
        args.get(1)
            .ok_or("usage: synth_day write|read ROOT [EVENTS] [THREADS]")?,
    );
    let t = Instant::now();
    match mode {
        "write" => {
            let events: u64 = args.get(2).map_or(Ok(291_000_000), |v| v.parse())?;
            let threads: usize = args.get(3).map_or(Ok(2), |v| v.parse())?;
            let stats =
                ringbolt_archive::synth::write_day(root, DAY_START_S, 288, events, threads)?;
            let s = t.elapsed().as_secs_f64();
            println!(
                "{}",
                serde_json::json!({"mode": "write", "records": stats.records, "files": stats.files,
                    "bytes": stats.bytes, "bytes_per_record": stats.bytes as f64 / stats.records as f64,
                    "seconds": s, "records_per_s": stats.records as f64 / s})
            );
        }
        "read" => {
            let mut reader = ArchiveReader::open(root)?;
            let tables: Vec<Table> = Table::ALL
                .into_iter()
                .filter(|t| *t != Table::Gaps)
                .collect();
            let mut rows = 0_u64;
            let mut out = WindowRows::default();
            for key in reader.windows(&tables, None) {
                out.rows.clear();
                rows += reader.read_window(&key, &tables, &|_| true, &mut out)? as u64;
            }
            let s = t.elapsed().as_secs_f64();
            println!(
                "{}",
                serde_json::json!({"mode": "read", "rows": rows, "bytes": reader.stats.bytes,
                    "seconds": s, "rows_per_s": rows as f64 / s})
            );
        }
        _ => return Err("usage: synth_day write|read ROOT [EVENTS] [THREADS]".into()),
    }
    Ok(())
}
