//! `ringbolt bench replay`: the offline twin's throughput on one core.
//!
//! 1. Builds an archive: the synthetic market (decide/src/synth.rs) run through the decision
//!    pipeline with the shipped model scored synchronously plays the live run (its decisions are
//!    archived beside the market records), and both are written with the archiver's own table
//!    and Parquet code, one file per (table, venue, 5-minute window).
//! 2. Reads it back into bus records (`ArchiveReader`, window by window into one reused buffer,
//!    as `ringbolt replay` reads): rows/s; beside it the peer, a raw
//!    arrow-rs read of the same files (every column decoded, no record rebuild) — the ceiling of
//!    the read side — and the same peer given the reader's own settings (each file read whole,
//!    only the columns a record is rebuilt from).
//! 3. `ringbolt replay --check-parity` as the command runs it (`ringbolt_trade::replay::replay`,
//!    the trade process's own loop): the decide path (instrument
//!    mapping, state, features on the cadence, reflex, decision, parity compare) timed apart
//!    from Parquet reading — once with recorded probabilities only, once also re-scoring every
//!    feature vector with the native ensemble to verify them.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Args;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use ringbolt_archive::layout::Window;
use ringbolt_archive::reader::{ArchiveReader, WindowRows, rebuilt_columns};
use ringbolt_archive::report::list_parts;
use ringbolt_archive::tables::{InstrumentNames, Source, Table, build_batch};
use ringbolt_archive::writer;
use ringbolt_bus::{Record, RecordKind, Venue};
use ringbolt_decide::DecideConfig;
use ringbolt_decide::model::EvaluatorKind;
use ringbolt_decide::pipeline::{Pipeline, Scorer, SyncLink};
use ringbolt_decide::synth::{SynthConfig, SynthItem, SynthStream};
use serde_json::json;

use super::pin;
use crate::machine::Machine;
use ringbolt_trade::config::load_ensemble;
use ringbolt_trade::replay::{ModelMode, Outcome, ReplayOptions, replay};

/// Target: events/s through the decide path on one core.
pub const TARGET_EVENTS_PER_S: f64 = 5_000_000.0;
/// Issue #19: the decide path alone, events/s on one core.
const ISSUE_19_DECIDE_EVENTS_PER_S: f64 = 10_000_000.0;
/// Issue #19: replay end to end from Parquet, events/s on one core.
const ISSUE_19_END_TO_END_EVENTS_PER_S: f64 = 3_000_000.0;
/// Issue #19: the archive reader's rows/s over a raw arrow-rs read of the same files.
const ISSUE_19_READER_RATIO: f64 = 0.8;

/// Options of `ringbolt bench replay`.
#[derive(Debug, Args)]
pub struct ReplayBenchArgs {
    /// Print JSON only.
    #[arg(long)]
    json: bool,
    /// Synthetic 5-minute windows in the archive (≈ 46k events each).
    #[arg(long, default_value_t = 48)]
    windows: u32,
    /// Multiplier of every venue's message rate (1 ≈ 46k events a window; a real day of
    /// 291 M events is ≈ 22).
    #[arg(long, default_value_t = 1.0)]
    intensity: f64,
    /// Synthetic stream seed.
    #[arg(long, default_value_t = 11)]
    seed: u64,
    /// Core to pin to (none = unpinned).
    #[arg(long)]
    core: Option<usize>,
    /// Keep the archive here instead of a temporary directory.
    #[arg(long)]
    keep: Option<PathBuf>,
}

const MARKET: &str = "bench-market";
const DECIDE: &str = "bench-decide";

struct Names(BTreeMap<u32, Arc<str>>);
impl InstrumentNames for Names {
    fn name(&mut self, id: u32) -> Arc<str> {
        self.0
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("#{id}").into())
    }
}

/// Writes the synthetic live run as an archive; returns (market events, decisions).
fn build_archive(root: &Path, windows: u32, intensity: f64, seed: u64) -> Result<(u64, u64)> {
    let ensemble = load_ensemble(EvaluatorKind::Native, None)?.context("shipped model")?;
    let mut link = SyncLink {
        scorer: Scorer::new(ensemble),
    };
    let mut pipeline = Pipeline::new(DecideConfig::default(), 1, true);
    let mut names: BTreeMap<u32, (Venue, Arc<str>)> = BTreeMap::new();
    // (table, venue, window) → records, flushed when the window closes.
    let mut buffers: BTreeMap<(Table, u8, i64), Vec<Record>> = BTreeMap::new();
    let mut seq = 0u64;
    let mut dec_seq = 0u64;
    let (mut events, mut decisions) = (0u64, 0u64);
    let mut open_window = i64::MIN;
    let flush = |buffers: &mut BTreeMap<(Table, u8, i64), Vec<Record>>,
                 names: &BTreeMap<u32, (Venue, Arc<str>)>,
                 part: &mut u64|
     -> Result<()> {
        for ((table, venue, start_s), records) in std::mem::take(buffers) {
            let segment = if table == Table::Decisions {
                DECIDE
            } else {
                MARKET
            };
            let mut n = Names(if table == Table::Decisions {
                BTreeMap::new()
            } else {
                names.iter().map(|(k, (_, v))| (*k, v.clone())).collect()
            });
            let source = Source {
                segment: segment.to_owned(),
                ring: 0,
                epoch: 1,
            };
            let (batch, _) = build_batch(table, &source, &records, &mut n)?;
            let venue = Venue::from_u8(venue).map_or("unknown", Venue::as_str);
            let dir = Window { start_s }.dir(root, table.name(), venue);
            std::fs::create_dir_all(&dir)?;
            let metadata = vec![
                ("ringbolt.segment".to_owned(), segment.to_owned()),
                ("ringbolt.ring".to_owned(), "0".to_owned()),
                ("ringbolt.epoch".to_owned(), "1".to_owned()),
                ("ringbolt.venue".to_owned(), venue.to_owned()),
                ("ringbolt.window_start_s".to_owned(), start_s.to_string()),
            ];
            let props = writer::properties(table, 3, metadata)?;
            writer::write_file(&dir.join(format!("part-{part}.parquet")), &batch, props)?;
            *part += 1;
        }
        Ok(())
    };
    let mut part = 0u64;
    for item in SynthStream::new(SynthConfig {
        seed,
        windows,
        intensity,
        ..SynthConfig::default()
    }) {
        match item {
            SynthItem::Instrument { id, venue, name } => {
                names.insert(id, (venue, name.into()));
            }
            SynthItem::Record(mut r) => {
                seq += 1;
                r.seq = seq;
                r.publish_ts_ns = r.recv_ts_ns;
                let w = Window::of_ns(r.publish_ts_ns).start_s;
                if w != open_window {
                    flush(&mut buffers, &names, &mut part)?;
                    open_window = w;
                }
                let kind = RecordKind::from_u8(r.kind).context("synthetic record kind")?;
                let table = Table::for_kind(kind).context("archived kind")?;
                buffers.entry((table, r.venue, w)).or_default().push(r);
                events += 1;
                let mut rec = r;
                let lookup = |id: u32| names.get(&id).map(|(v, n)| (*v, n.to_string()));
                if let Some(mut d) = pipeline.process(0, &mut rec, lookup, &mut link) {
                    dec_seq += 1;
                    d.seq = dec_seq;
                    d.publish_ts_ns = r.publish_ts_ns;
                    decisions += 1;
                    buffers
                        .entry((Table::Decisions, Venue::Internal as u8, w))
                        .or_default()
                        .push(d);
                }
            }
        }
    }
    flush(&mut buffers, &names, &mut part)?;
    Ok((events, decisions))
}

/// Raw arrow-rs read of every file (all columns decoded, nothing rebuilt): rows.
fn arrow_read_all(root: &Path) -> Result<u64> {
    let mut rows = 0u64;
    for part in list_parts(root)? {
        let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&part.path)?)?;
        for batch in builder.with_batch_size(65_536).build()? {
            rows += batch?.num_rows() as u64;
        }
    }
    Ok(rows)
}

/// The peer given the reader's own settings: each file read whole into memory, only the columns
/// a record is rebuilt from decoded (`rebuilt_columns`), nothing rebuilt: rows.
fn arrow_read_rebuilt_columns(root: &Path) -> Result<u64> {
    let mut rows = 0u64;
    for part in list_parts(root)? {
        let Some(table) = Table::from_name(&part.table) else {
            continue;
        };
        let bytes = Bytes::from(std::fs::read(&part.path)?);
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)?;
        let columns = rebuilt_columns(table, builder.schema());
        let mask = ProjectionMask::roots(builder.parquet_schema(), columns);
        for batch in builder
            .with_projection(mask)
            .with_batch_size(65_536)
            .build()?
        {
            rows += batch?.num_rows() as u64;
        }
    }
    Ok(rows)
}

/// Read side: ours (rebuild bus records in bus order) vs raw arrow-rs, as documented and with
/// the reader's settings.
struct ReadSide {
    rows: u64,
    ours_read_s: f64,
    peer_rows: u64,
    peer_read_s: f64,
    same_columns_read_s: f64,
}

fn read_side(root: &Path) -> Result<ReadSide> {
    let t = Instant::now();
    let mut reader = ArchiveReader::open(root)?;
    let tables: Vec<Table> = Table::ALL
        .into_iter()
        .filter(|t| *t != Table::Gaps)
        .collect();
    // Window by window into one reused buffer, as `ringbolt replay` reads (its WindowCursor).
    let mut window = WindowRows::default();
    let mut rows = 0u64;
    for key in reader.windows(&tables, None) {
        window.rows.clear();
        rows += reader.read_window(&key, &tables, &|_| true, &mut window)? as u64;
    }
    let ours_read_s = t.elapsed().as_secs_f64();
    drop(window);
    let t = Instant::now();
    let peer_rows = arrow_read_all(root)?;
    let peer_read_s = t.elapsed().as_secs_f64();
    if peer_rows != rows {
        bail!("arrow read {peer_rows} rows, ringbolt's reader {rows}");
    }
    let t = Instant::now();
    let same_columns_rows = arrow_read_rebuilt_columns(root)?;
    let same_columns_read_s = t.elapsed().as_secs_f64();
    if same_columns_rows != rows {
        bail!("arrow read {same_columns_rows} rows (reader's settings), ringbolt's reader {rows}");
    }
    Ok(ReadSide {
        rows,
        ours_read_s,
        peer_rows,
        peer_read_s,
        same_columns_read_s,
    })
}

/// Decide side: the replay command itself, with parity — recorded probabilities only, then
/// also re-scoring every feature vector to verify them.
fn decide_side(root: &Path, events: u64) -> Result<(Outcome, Outcome)> {
    let config = root.join("_bench_trade.toml");
    std::fs::write(
        &config,
        format!(
            "[trade]\ninputs = [\"{MARKET}\"]\noutput = \"{DECIDE}\"\nevaluator = \"native\"\n"
        ),
    )?;
    let mut replay_args = ReplayOptions {
        archive: root.to_path_buf(),
        config: Some(ringbolt_trade::replay::GivenConfig {
            sections: ringbolt_config::load(&config)?.trade_sections(),
            path: config,
        }),
        date: None,
        check_parity: true,
        decisions_segment: None,
        epoch: None,
        model: ModelMode::Recorded,
        no_verify_model: true,
        context: 12,
        no_progress: true,
    };
    let plain = replay(&replay_args, None)?;
    replay_args.no_verify_model = false;
    let verified = replay(&replay_args, None)?;
    for out in [&plain, &verified] {
        if out.parity_passed != Some(true) {
            bail!("parity failed in the bench: {}", out.summary);
        }
        if out.events != events {
            bail!("replayed {} events of {events}", out.events);
        }
    }
    Ok((plain, verified))
}

/// Runs the benchmark.
pub fn run(args: &ReplayBenchArgs) -> Result<()> {
    if !(args.intensity.is_finite() && args.intensity > 0.0) {
        bail!(
            "--intensity must be a positive number, not {}",
            args.intensity
        );
    }
    let pinned = pin(args.core);
    let tmp;
    let root = match &args.keep {
        Some(p) => p.clone(),
        None => {
            tmp = std::env::temp_dir().join(format!("rb-bench-replay-{}", std::process::id()));
            tmp.clone()
        }
    };
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)?;
    let t = Instant::now();
    let (events, decisions) = build_archive(&root, args.windows, args.intensity, args.seed)?;
    let build_s = t.elapsed().as_secs_f64();
    let parts = list_parts(&root)?;
    let files = parts.len();
    let bytes: u64 = parts
        .iter()
        .filter_map(|p| std::fs::metadata(&p.path).ok())
        .map(|m| m.len())
        .sum();
    let ReadSide {
        rows,
        ours_read_s,
        peer_rows,
        peer_read_s,
        same_columns_read_s,
    } = read_side(&root)?;
    let (plain, verified) = decide_side(&root, events)?;
    let decide_eps = plain.events as f64 / plain.decide_s;
    let verified_eps = verified.events as f64 / verified.decide_s;
    let ours_rows_per_s = rows as f64 / ours_read_s;
    let peer_rows_per_s = peer_rows as f64 / peer_read_s;
    let same_columns_rows_per_s = rows as f64 / same_columns_read_s;
    let end_to_end_eps = plain.events as f64 / (plain.decide_s + plain.read_s);
    let out = json!({
        "bench": "replay",
        "machine": Machine::current(),
        "pinned_core": if pinned { args.core } else { None },
        "archive": {
            "windows": args.windows,
            "intensity": args.intensity,
            "files": files,
            "events": events,
            "decisions": decisions,
            "rows": rows,
            "bytes": bytes,
            "bytes_per_row": bytes as f64 / rows as f64,
            "build_s": build_s,
        },
        "read": {
            "ringbolt_rows_per_s": ours_rows_per_s,
            "ringbolt_read_s": ours_read_s,
            "peer": "arrow-rs ParquetRecordBatchReader, all columns, no record rebuild",
            "peer_rows_per_s": peer_rows_per_s,
            "peer_read_s": peer_read_s,
            "ratio_ringbolt_over_peer": ours_rows_per_s / peer_rows_per_s,
            "peer_same_columns": "the same, given the reader's settings: each file read whole, \
                                  its columns (no flag bits, no micros publish_ts)",
            "peer_same_columns_rows_per_s": same_columns_rows_per_s,
            "peer_same_columns_read_s": same_columns_read_s,
            "ratio_ringbolt_over_peer_same_columns": ours_rows_per_s / same_columns_rows_per_s,
        },
        "decide": {
            "events_per_s": decide_eps,
            "decide_s": plain.decide_s,
            "with_model_verification_events_per_s": verified_eps,
            "with_model_verification_vectors_scored": verified.summary["model"]["vectors_scored"],
            "parity_decisions_matched": plain.summary["parity"]["decisions_matched"],
            "parity_fires_matched": plain.summary["parity"]["fires_live"],
        },
        "end_to_end_events_per_s": end_to_end_eps,
        "day_291m_events_decide_s": 291e6 / decide_eps,
        "targets": {
            "decide_events_per_s": TARGET_EVENTS_PER_S,
            "met": decide_eps >= TARGET_EVENTS_PER_S,
            "issue_19": {
                "decide_events_per_s_min": ISSUE_19_DECIDE_EVENTS_PER_S,
                "end_to_end_events_per_s_min": ISSUE_19_END_TO_END_EVENTS_PER_S,
                "ratio_ringbolt_over_peer_min": ISSUE_19_READER_RATIO,
                "met": {
                    "decide": decide_eps >= ISSUE_19_DECIDE_EVENTS_PER_S,
                    "end_to_end": end_to_end_eps >= ISSUE_19_END_TO_END_EVENTS_PER_S,
                    "reader": ours_rows_per_s / peer_rows_per_s >= ISSUE_19_READER_RATIO,
                },
            },
        },
    });
    if args.keep.is_none() {
        let _ = std::fs::remove_dir_all(&root);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "replay: {events} events, decide path {:.2} M events/s (target ≥ 5 M: {}), with model \
             verification {:.2} M/s; read {:.2} M rows/s (raw arrow {:.2} M rows/s, {:.2} M with the \
             reader's settings)",
            decide_eps / 1e6,
            if decide_eps >= TARGET_EVENTS_PER_S {
                "met"
            } else {
                "NOT met"
            },
            verified_eps / 1e6,
            ours_rows_per_s / 1e6,
            peer_rows_per_s / 1e6,
            same_columns_rows_per_s / 1e6
        );
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}
