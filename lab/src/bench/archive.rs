//! `ringbolt bench archive`: sustained records/s from the bus to durable Parquet on one core,
//! bytes per record on disk per table, the hot path's publish latency with and without the
//! archiver attached, and two peers on the same synthetic records (JSON lines + zstd, and
//! arrow-rs's default Parquet writer settings).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use hdrhistogram::Histogram;
use ringbolt_archive::synth::Synth;
use ringbolt_archive::tables::{self, InstrumentNames, Source, Table};
use ringbolt_archive::{ArchiveConfig, Archiver};
use ringbolt_bus::{Publisher, Record, Segment, SegmentConfig, now_ns};
use serde_json::json;

use super::{Percentiles, pin};
use crate::machine::Machine;

/// `ringbolt bench archive` arguments.
#[derive(Debug, Args)]
pub struct ArchiveBenchArgs {
    /// Print one line of JSON.
    #[arg(long)]
    json: bool,
    /// Records pushed through bus → Parquet in the throughput run.
    #[arg(long, default_value_t = 5_000_000)]
    records: u64,
    /// Records in the peer comparison sample.
    #[arg(long, default_value_t = 1_000_000)]
    peer_records: u64,
    /// Publish rate of the latency runs (records/s).
    #[arg(long, default_value_t = 200_000)]
    latency_rate: u64,
    /// Length of each latency run (s).
    #[arg(long, default_value_t = 3)]
    latency_seconds: u64,
    /// Scratch directory (default: a fresh directory under the system temp dir, removed after).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Do not pin threads to cores.
    #[arg(long)]
    no_pin: bool,
}

struct Scratch {
    path: PathBuf,
    remove: bool,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

fn cores(no_pin: bool) -> (Option<usize>, Option<usize>) {
    let n = ringbolt_net::affinity::core_ids().len();
    if no_pin || n < 2 {
        (None, None)
    } else {
        (Some(0), Some(1))
    }
}

/// Runs `ringbolt bench archive`.
pub fn run(args: &ArchiveBenchArgs) -> Result<()> {
    let scratch = match &args.dir {
        Some(d) => Scratch {
            path: d.clone(),
            remove: false,
        },
        None => Scratch {
            path: std::env::temp_dir()
                .join(format!("ringbolt-bench-archive-{}", std::process::id())),
            remove: true,
        },
    };
    std::fs::create_dir_all(&scratch.path)?;
    let (producer_core, archiver_core) = cores(args.no_pin);

    let throughput = throughput_run(
        args,
        &scratch.path.join("throughput"),
        producer_core,
        archiver_core,
    )?;
    let peers = peer_run(args, &scratch.path.join("peers"))?;
    let without = latency_run(
        args,
        &scratch.path.join("lat-without"),
        false,
        producer_core,
        archiver_core,
    )?;
    let with = latency_run(
        args,
        &scratch.path.join("lat-with"),
        true,
        producer_core,
        archiver_core,
    )?;
    let (without_p, with_p) = (Percentiles::of(&without), Percentiles::of(&with));
    let ratio = |a: u64, b: u64| ((a as f64 / b.max(1) as f64) * 100.0).round() / 100.0;

    let ours_market_bpr = throughput.market_bytes_per_record;
    let met_rate = throughput.records_per_s >= 1_000_000.0;
    let met_bytes = ours_market_bpr <= 16.0;
    let met_latency = with_p.p50_ns <= without_p.p50_ns + without_p.p50_ns / 5 + 5
        && with_p.p99_ns <= without_p.p99_ns * 2 + 50;
    let report = json!({
        "bench": "archive",
        "method": "synthetic collector records of every kind (random-walk prices on venue tick grids, \
                   book batches, ms exchange stamps) published on a 1-ring segment; the archiver \
                   (one thread, sleeping wait) batches them to Arrow and commits zstd Parquet with \
                   fsync+rename every 1 s; the producer is flow-controlled on the archiver's cursor \
                   so records/s is the archiver's sustained rate with zero loss. Latency runs time \
                   each RingWriter::publish with Instant at a paced rate, without and with the \
                   archiver consuming the same ring.",
        "machine": Machine::current(),
        "pinned": { "producer_core": producer_core, "archiver_core": archiver_core },
        "throughput": {
            "records": throughput.records,
            "elapsed_s": (throughput.elapsed_s * 1000.0).round() / 1000.0,
            "records_per_s": throughput.records_per_s.round(),
            "commits": throughput.commits,
            "files": throughput.files,
            "bytes_on_disk": throughput.bytes,
            "bytes_per_record_all": (throughput.bytes as f64 / throughput.records.max(1) as f64 * 100.0).round() / 100.0,
            "bytes_per_record_market": (ours_market_bpr * 100.0).round() / 100.0,
            "per_table": throughput.per_table,
            "lost_records": throughput.lost,
        },
        "peers_same_records": peers,
        "ratio_jsonl_zstd_over_ours_market_bytes_per_record":
            peers["jsonl_zstd3"]["bytes_per_record_market"].as_f64().map(|b| (b / ours_market_bpr * 100.0).round() / 100.0),
        "ratio_parquet_defaults_over_ours_market_bytes_per_record":
            peers["parquet_arrow_defaults"]["bytes_per_record_market"].as_f64().map(|b| (b / ours_market_bpr * 100.0).round() / 100.0),
        "publish_latency": {
            "rate_records_per_s": args.latency_rate,
            "seconds": args.latency_seconds,
            "without_archiver": without_p,
            "with_archiver": with_p,
            "ratio_with_over_without": { "p50": ratio(with_p.p50_ns, without_p.p50_ns), "p99": ratio(with_p.p99_ns, without_p.p99_ns), "p999": ratio(with_p.p999_ns, without_p.p999_ns) },
        },
        "targets": {
            "records_per_s_min": 1_000_000,
            "market_bytes_per_record_max": 16,
            "publish_latency_unchanged": "with p50 <= without p50 * 1.2 + 5 ns and p99 <= 2x + 50 ns",
            "met": { "records_per_s": met_rate, "market_bytes_per_record": met_bytes, "publish_latency": met_latency },
        },
    });
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}

struct Throughput {
    records: u64,
    elapsed_s: f64,
    records_per_s: f64,
    commits: u64,
    files: usize,
    bytes: u64,
    market_bytes_per_record: f64,
    per_table: BTreeMap<String, serde_json::Value>,
    lost: u64,
}

fn config(root: &Path, segment: &str) -> ArchiveConfig {
    let mut config = ArchiveConfig::new(root, vec![segment.to_owned()]);
    config.min_free_bytes = 64 << 20;
    config.idle_sleep_us = 100;
    config
}

fn throughput_run(
    args: &ArchiveBenchArgs,
    root: &Path,
    producer_core: Option<usize>,
    archiver_core: Option<usize>,
) -> Result<Throughput> {
    let name = format!("rb-bench-archive-{}", std::process::id());
    let capacity = 1usize << 21;
    let publisher = Publisher::create(
        &name,
        SegmentConfig {
            rings: 1,
            capacity,
            instrument_capacity: 256,
        },
    )?;
    let mut synth = Synth::new(7, &publisher)?;
    let mut writer = publisher.writer(0)?;
    let publisher = Arc::new(publisher);
    let mut archiver = Archiver::open(config(root, &name))?;
    let total = args.records;
    let started = Arc::new(AtomicBool::new(false));
    let producer = {
        let publisher = Arc::clone(&publisher);
        let started = Arc::clone(&started);
        std::thread::spawn(move || {
            pin(producer_core);
            let mut record = Record::zeroed();
            started.store(true, Ordering::Release);
            let window = capacity as u64 - (1 << 16);
            for _ in 0..total {
                // Bench-only flow control: never lap the archiver, so the rate is loss-free.
                while writer.next_seq() - publisher.slowest_consumer(0).unwrap_or(0) >= window {
                    std::thread::yield_now();
                }
                synth.next_record(now_ns(), &mut record);
                writer.publish(&record);
            }
        })
    };
    pin(archiver_core);
    while !started.load(Ordering::Acquire) {
        std::hint::spin_loop();
    }
    let start = Instant::now();
    let flush_every = Duration::from_millis(1000);
    let mut next_flush = start + flush_every;
    let mut per_table: BTreeMap<&'static str, (u64, u64)> = BTreeMap::new();
    let (mut files, mut bytes, mut commits) = (0usize, 0u64, 0u64);
    let mut add = |s: ringbolt_archive::FlushStats| {
        files += s.files;
        bytes += s.bytes;
        commits += 1;
        for (t, (r, b)) in s.per_table {
            let e = per_table.entry(t).or_default();
            e.0 += r;
            e.1 += b;
        }
    };
    while archiver.archived() < total {
        let taken = archiver.poll_once(4096)?;
        let now = Instant::now();
        if now >= next_flush {
            add(archiver.flush()?);
            next_flush = now + flush_every;
        } else if taken == 0 {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    add(archiver.flush()?);
    let elapsed_s = start.elapsed().as_secs_f64();
    producer
        .join()
        .map_err(|_| anyhow::anyhow!("producer thread panicked"))?;
    let lost = Segment::open(&name)
        .ok()
        .map_or(0, |s| s.consumers().iter().map(|c| c.lost).sum());
    drop(archiver);
    drop(publisher);
    let _ = Segment::unlink(&name);
    // Market tables exclude the archiver's own heartbeat rows and the gaps table.
    let (mut market_rows, mut market_bytes) = (0u64, 0u64);
    let mut table_json = BTreeMap::new();
    for (table, (rows, b)) in &per_table {
        if Table::from_name(table).is_some_and(Table::is_market) {
            market_rows += rows;
            market_bytes += b;
        }
        table_json.insert(
            (*table).to_owned(),
            json!({ "rows": rows, "bytes": b, "bytes_per_record": ((*b as f64 / (*rows).max(1) as f64) * 100.0).round() / 100.0 }),
        );
    }
    Ok(Throughput {
        records: total,
        elapsed_s,
        records_per_s: total as f64 / elapsed_s,
        commits,
        files,
        bytes,
        market_bytes_per_record: market_bytes as f64 / market_rows.max(1) as f64,
        per_table: table_json,
        lost,
    })
}

struct SegmentNames(Arc<Segment>);

impl InstrumentNames for SegmentNames {
    fn name(&mut self, id: u32) -> Arc<str> {
        self.0
            .instrument(id)
            .map_or_else(|| format!("#{id}").into(), |(_, n)| n.into())
    }
}

fn json_line(record: &Record, names: &mut SegmentNames) -> serde_json::Value {
    use ringbolt_bus::{BookLevel, IndexPrice, RecordKind, TopOfBook, Trade};
    let dec = |v: i64| format!("{}.{:08}", v / 100_000_000, (v % 100_000_000).abs());
    let mut line = json!({
        "seq": record.seq, "publish_ts": record.publish_ts_ns, "recv_ts": record.recv_ts_ns,
        "exchange_ts": record.exchange_ts_ns, "venue_seq": record.venue_seq,
        "venue": record.record_venue().map_or("unknown", |v| v.as_str()),
        "instrument": &*names.name(record.instrument),
        "kind": record.record_kind().map_or("unknown", |k| k.as_str()),
        "stream": record.stream, "flags": record.flags,
    });
    let body = match record.record_kind() {
        Some(RecordKind::Trade) => record.body_as::<Trade>().map(|b| json!({"price": dec(b.price), "size": dec(b.size), "trade_id": b.trade_id, "side": b.side})),
        Some(RecordKind::BookLevel) => record.body_as::<BookLevel>().map(|b| json!({"price": dec(b.price), "size": dec(b.size), "side": b.side})),
        Some(RecordKind::TopOfBook) => record.body_as::<TopOfBook>().map(|b| json!({"bid_price": dec(b.bid_price), "bid_size": dec(b.bid_size), "ask_price": dec(b.ask_price), "ask_size": dec(b.ask_size)})),
        Some(RecordKind::IndexPrice) => record.body_as::<IndexPrice>().map(|b| json!({"value_e18": b.value_e18.to_string(), "price": dec(b.price), "price_type": b.price_type})),
        _ => Some(json!({"body_hex": record.body.iter().map(|b| format!("{b:02x}")).collect::<String>()})),
    };
    if let (Some(obj), Some(serde_json::Value::Object(body))) = (line.as_object_mut(), body) {
        obj.extend(body);
    }
    line
}

fn peer_run(args: &ArchiveBenchArgs, dir: &Path) -> Result<serde_json::Value> {
    std::fs::create_dir_all(dir)?;
    let name = format!("rb-bench-archive-peer-{}", std::process::id());
    let publisher = Publisher::create(&name, SegmentConfig::default())?;
    let mut synth = Synth::new(7, &publisher)?;
    let mut names = SegmentNames(Arc::clone(publisher.segment()));
    let mut records = Vec::with_capacity(args.peer_records as usize);
    let mut record = Record::zeroed();
    let t0 = now_ns();
    for i in 0..args.peer_records {
        // Publish stamps as a live run would produce them (~1 µs apart).
        synth.next_record(t0 + i as i64 * 1_000, &mut record);
        record.seq = i;
        records.push(record);
    }
    let is_market = |r: &Record| {
        r.record_kind()
            .and_then(Table::for_kind)
            .is_some_and(Table::is_market)
    };
    let market = records.iter().filter(|r| is_market(r)).count() as u64;

    // Peer 1: JSON lines + zstd level 3 (all records; and market records alone for B/record).
    let jsonl = |path: &Path, market_only: bool, names: &mut SegmentNames| -> Result<(u64, f64)> {
        let start = Instant::now();
        let file = std::fs::File::create(path)?;
        let mut encoder = zstd::Encoder::new(std::io::BufWriter::new(file), 3)?;
        for r in records.iter().filter(|r| !market_only || is_market(r)) {
            serde_json::to_writer(&mut encoder, &json_line(r, names))?;
            encoder.write_all(b"\n")?;
        }
        let file = encoder.finish()?.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok((
            std::fs::metadata(path)?.len(),
            start.elapsed().as_secs_f64(),
        ))
    };
    let (all_bytes, all_s) = jsonl(&dir.join("all.jsonl.zst"), false, &mut names)?;
    let (market_bytes, _) = jsonl(&dir.join("market.jsonl.zst"), true, &mut names)?;

    // Peer 2: the same batches with arrow-rs's default WriterProperties (no compression).
    let mut by_table: BTreeMap<Table, Vec<Record>> = BTreeMap::new();
    for r in &records {
        if let Some(t) = r.record_kind().and_then(Table::for_kind) {
            by_table.entry(t).or_default().push(*r);
        }
    }
    let source = Source {
        segment: name.clone(),
        ring: 0,
        epoch: 1,
    };
    let (mut default_market_bytes, mut default_market_rows) = (0u64, 0u64);
    let (mut ours_market_bytes, mut ours_market_rows) = (0u64, 0u64);
    for (table, rows) in &by_table {
        if !table.is_market() {
            continue;
        }
        let (batch, _) = tables::build_batch(*table, &source, rows, &mut names)?;
        let path = dir.join(format!("{}-default.parquet", table.name()));
        let file = std::fs::File::create(&path)?;
        let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None)?;
        writer.write(&batch)?;
        writer.close()?;
        default_market_bytes += std::fs::metadata(&path)?.len();
        default_market_rows += rows.len() as u64;
        // Ours on the identical sample, one file per table (the archiver splits further by venue).
        let path = dir.join(format!("{}-ours.parquet", table.name()));
        let props = ringbolt_archive::writer::properties(*table, 1, Vec::new())?;
        ours_market_bytes += ringbolt_archive::writer::write_file(&path, &batch, props)?;
        ours_market_rows += rows.len() as u64;
    }
    drop(publisher);
    let _ = Segment::unlink(&name);
    let r2 = |v: f64| (v * 100.0).round() / 100.0;
    Ok(json!({
        "records": args.peer_records,
        "market_records": market,
        "jsonl_zstd3": {
            "bytes_per_record_all": r2(all_bytes as f64 / args.peer_records.max(1) as f64),
            "bytes_per_record_market": r2(market_bytes as f64 / market.max(1) as f64),
            "records_per_s": (args.peer_records as f64 / all_s).round(),
        },
        "parquet_arrow_defaults": {
            "bytes_per_record_market": r2(default_market_bytes as f64 / default_market_rows.max(1) as f64),
        },
        "ours_same_sample_one_file_per_table": {
            "bytes_per_record_market": r2(ours_market_bytes as f64 / ours_market_rows.max(1) as f64),
        },
    }))
}

fn latency_run(
    args: &ArchiveBenchArgs,
    root: &Path,
    with_archiver: bool,
    producer_core: Option<usize>,
    archiver_core: Option<usize>,
) -> Result<Histogram<u64>> {
    let name = format!(
        "rb-bench-archive-lat-{}-{}",
        u8::from(with_archiver),
        std::process::id()
    );
    let publisher = Publisher::create(
        &name,
        SegmentConfig {
            rings: 1,
            capacity: 1 << 20,
            instrument_capacity: 256,
        },
    )?;
    let mut synth = Synth::new(11, &publisher)?;
    let mut writer = publisher.writer(0)?;
    let stop = Arc::new(AtomicBool::new(false));
    let archiver = if with_archiver {
        let mut archiver = Archiver::open(config(root, &name)).context("opening the archiver")?;
        let stop = Arc::clone(&stop);
        Some(std::thread::spawn(move || {
            pin(archiver_core);
            archiver.run(&stop)
        }))
    } else {
        None
    };
    pin(producer_core);
    let mut histogram = ringbolt_telemetry::latency_histogram();
    let interval_ns = 1_000_000_000 / args.latency_rate.max(1);
    let total = args.latency_rate * args.latency_seconds;
    let start = Instant::now();
    let mut record = Record::zeroed();
    for i in 0..total {
        let due = Duration::from_nanos(i * interval_ns);
        while start.elapsed() < due {
            std::hint::spin_loop();
        }
        synth.next_record(now_ns(), &mut record);
        let t = Instant::now();
        writer.publish(&record);
        let ns = t.elapsed().as_nanos() as u64;
        histogram.saturating_record(ns.max(1));
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(handle) = archiver {
        handle
            .join()
            .map_err(|_| anyhow::anyhow!("archiver thread panicked"))??;
    }
    drop(writer);
    drop(publisher);
    let _ = Segment::unlink(&name);
    Ok(histogram)
}
