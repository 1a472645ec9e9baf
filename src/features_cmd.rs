//! `ringbolt features …`: the feature catalogue's documentation, the synthetic market producer,
//! and the feature-matrix export that the training pipeline calls (so Python never
//! re-implements a feature).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use ringbolt_bus::{Publisher, SegmentConfig, Venue};
use ringbolt_decide::DecideConfig;
use ringbolt_decide::dump::{DumpReader, DumpWriter};
use ringbolt_decide::engine::Engine;
use ringbolt_decide::features::{CATALOGUE, N_FEATURES, markdown, schema_hash};
use ringbolt_decide::market::{NS, WINDOW_S};
use ringbolt_decide::synth::{SynthConfig, SynthItem, SynthStream};
use ringbolt_telemetry::now_ns;
use serde_json::json;

/// Feature commands.
#[derive(Debug, Subcommand)]
pub enum FeaturesCommand {
    /// Print the feature catalogue as Markdown (docs/features.md).
    Doc,
    /// Export the feature matrix and window labels from an event stream (training input).
    Export(ExportArgs),
    /// Generate the synthetic market: write a record dump or publish it on a bus segment.
    Synth(SynthArgs),
}

/// Where events come from.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// A record dump (`RBDUMP1`, see decide/src/dump.rs). Without it (and without `--archive`)
    /// the synthetic generator runs.
    #[arg(long, conflicts_with = "archive")]
    pub input: Option<PathBuf>,
    /// A Parquet archive written by `ringbolt archive` (records of its market segments, in bus
    /// order, exactly as the live decision process saw them); or its `s3://bucket/prefix`.
    #[arg(long)]
    pub archive: Option<PathBuf>,
    /// With `--archive`: only this UTC date (`YYYY-MM-DD`).
    #[arg(long, requires = "archive")]
    pub date: Option<String>,
    /// With `--archive`: the input segments (repeatable; default every segment except decision
    /// segments and the archiver's own).
    #[arg(long = "segment", requires = "archive")]
    pub segments: Vec<String>,
    /// Synthetic: windows to generate.
    #[arg(long, default_value_t = 24)]
    pub windows: u32,
    /// Synthetic: seed.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Synthetic: message-rate multiplier.
    #[arg(long, default_value_t = 1.0)]
    pub intensity: f64,
    /// Synthetic: first window start (Unix s).
    #[arg(long, default_value_t = 1_773_307_200)]
    pub start_s: i64,
}

impl InputArgs {
    /// The synthetic generator configuration these arguments describe.
    pub fn synth_config(&self) -> SynthConfig {
        SynthConfig {
            seed: self.seed,
            windows: self.windows,
            intensity: self.intensity,
            start_s: self.start_s,
            ..SynthConfig::default()
        }
    }

    /// Opens the stream.
    pub fn open(&self) -> Result<Box<dyn Iterator<Item = Result<SynthItem>>>> {
        if let Some(root) = &self.archive {
            let segments = (!self.segments.is_empty()).then(|| self.segments.clone());
            let root = ringbolt_archive::store::local_root(root)?;
            return Ok(Box::new(ringbolt_trade::replay::archive_items(
                &root,
                self.date.as_deref(),
                segments,
            )?));
        }
        match &self.input {
            Some(path) => {
                let file =
                    File::open(path).with_context(|| format!("opening {}", path.display()))?;
                let reader = DumpReader::new(BufReader::with_capacity(1 << 20, file))
                    .with_context(|| format!("reading {}", path.display()))?;
                Ok(Box::new(reader.map(|r| r.map_err(anyhow::Error::from))))
            }
            None => Ok(Box::new(SynthStream::new(self.synth_config()).map(Ok))),
        }
    }
}

/// Options of `features export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Output directory (features.npy, rows.npy, meta.json).
    #[arg(long)]
    out_dir: PathBuf,
    /// Sample a feature row every this many ms of event time within each window.
    #[arg(long, default_value_t = 1000)]
    every_ms: u64,
    /// Skip rows in the first this many seconds of a window (strike not yet known).
    #[arg(long, default_value_t = 3)]
    skip_first_s: i64,
    /// The trade configuration whose `[decide]` section (staleness, priors) the features use;
    /// default: the built-in defaults.
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Options of `features synth`.
#[derive(Debug, Args)]
pub struct SynthArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Write a record dump here.
    #[arg(long, conflicts_with = "publish")]
    out: Option<PathBuf>,
    /// Publish on this bus segment instead (created; ring 0).
    #[arg(long)]
    publish: Option<String>,
    /// Replay speed when publishing: event-time seconds per wall second (0 = as fast as possible).
    #[arg(long, default_value_t = 0.0)]
    speed: f64,
    /// Records per ring of the created segment (power of two).
    #[arg(long, default_value_t = 1 << 22)]
    capacity: usize,
    /// Keep the segment alive this long after the last record (ms), so consumers can drain it.
    #[arg(long, default_value_t = 2_000)]
    linger_ms: u64,
}

/// Runs a features command.
pub fn run(cmd: FeaturesCommand) -> Result<()> {
    match cmd {
        FeaturesCommand::Doc => {
            print!("{}", markdown());
            Ok(())
        }
        FeaturesCommand::Export(a) => export(&a),
        FeaturesCommand::Synth(a) => synth(&a),
    }
}

/// Writes a little-endian NumPy `.npy` v1.0 file.
fn write_npy<T: bytemuck::Pod>(
    path: &Path,
    descr: &str,
    shape: (usize, usize),
    data: &[T],
) -> Result<()> {
    let mut header = format!(
        "{{'descr': '{descr}', 'fortran_order': False, 'shape': ({}, {}), }}",
        shape.0, shape.1
    );
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut f =
        BufWriter::new(File::create(path).with_context(|| format!("creating {}", path.display()))?);
    f.write_all(b"\x93NUMPY\x01\x00")?;
    f.write_all(&u16::try_from(header.len())?.to_le_bytes())?;
    f.write_all(header.as_bytes())?;
    f.write_all(bytemuck::cast_slice(data))?;
    f.flush()?;
    Ok(())
}

fn export(a: &ExportArgs) -> Result<()> {
    std::fs::create_dir_all(&a.out_dir)?;
    let decide = match &a.config {
        Some(p) => ringbolt_config::load(p)?.decide,
        None => DecideConfig::default(),
    };
    let mut engine = Engine::new(decide);
    let mut features: Vec<f32> = Vec::new();
    let mut rows: Vec<i64> = Vec::new();
    let mut strikes: BTreeMap<i64, i128> = BTreeMap::new();
    let every_ns = i64::try_from(a.every_ms)? * 1_000_000;
    let mut next_sample = i64::MIN;
    let mut records = 0u64;
    let mut registration_errors = 0u64;
    let started = Instant::now();
    for item in a.input.open()? {
        match item? {
            SynthItem::Instrument { id, venue, name } => {
                if let Err(e) = engine.register_instrument(id, venue, &name) {
                    registration_errors += 1;
                    tracing::warn!("instrument {id}: {e}");
                }
            }
            SynthItem::Record(rec) => {
                records += 1;
                let (update, _) = engine.update(&rec);
                let st = &engine.state;
                if update.reference_changed
                    && rec.venue == Venue::ChainlinkRtds as u8
                    && let Some(w) = st.current()
                    && w.strike_known
                {
                    strikes.entry(w.start_s).or_insert(w.strike_e18);
                }
                let now = st.now_ns;
                if next_sample == i64::MIN {
                    next_sample = now.div_euclid(every_ns) * every_ns + every_ns;
                }
                if now >= next_sample {
                    next_sample = now.div_euclid(every_ns) * every_ns + every_ns;
                    let start = st.current_start_s;
                    let elapsed = now - start * NS;
                    let strike_ok = st.current().is_some_and(|w| w.strike_known);
                    if strike_ok && elapsed >= a.skip_first_s * NS {
                        let left_ms = ((start + WINDOW_S) * NS - now) / 1_000_000;
                        let f = engine.compute_features();
                        features.extend_from_slice(f);
                        rows.extend_from_slice(&[start, now, -1, left_ms]);
                    }
                }
            }
        }
    }
    // Labels: Up iff the strike of the next window (Chainlink at this window's end) ≥ this strike.
    let mut labelled_windows = 0u64;
    let mut keep_f = Vec::with_capacity(features.len());
    let mut keep_r = Vec::with_capacity(rows.len());
    let mut labels_seen = BTreeMap::new();
    for (r, f) in rows.chunks(4).zip(features.chunks(N_FEATURES)) {
        let start = r[0];
        let (Some(k0), Some(k1)) = (strikes.get(&start), strikes.get(&(start + WINDOW_S))) else {
            continue;
        };
        let label = i64::from(k1 >= k0);
        labels_seen.insert(start, label);
        keep_f.extend_from_slice(f);
        keep_r.extend_from_slice(&[r[0], r[1], label, r[3]]);
    }
    labelled_windows += labels_seen.len() as u64;
    let n_rows = keep_r.len() / 4;
    if n_rows == 0 {
        bail!(
            "no labelled rows: the stream needs at least two consecutive windows with known strikes"
        );
    }
    write_npy(
        &a.out_dir.join("features.npy"),
        "<f4",
        (n_rows, N_FEATURES),
        &keep_f,
    )?;
    write_npy(&a.out_dir.join("rows.npy"), "<i8", (n_rows, 4), &keep_r)?;
    let ups = labels_seen.values().filter(|l| **l == 1).count();
    let meta = json!({
        "feature_schema_hash": format!("{:#010x}", schema_hash()),
        "features": CATALOGUE.iter().map(|f| f.name).collect::<Vec<_>>(),
        "rows_columns": ["window_start_s", "ts_ns", "label_up", "time_left_ms"],
        "rows": n_rows,
        "windows": labelled_windows,
        "windows_up": ups,
        "records": records,
        "registration_errors": registration_errors,
        "input_errors": engine.state.errors,
        "every_ms": a.every_ms,
        "input": match (&a.input.archive, &a.input.input) {
            (Some(root), _) => json!({"archive": root, "date": a.input.date, "segments": a.input.segments}),
            (None, Some(p)) => json!({"dump": p}),
            (None, None) => json!({"synthetic": a.input.synth_config()}),
        },
        "elapsed_s": started.elapsed().as_secs_f64(),
    });
    std::fs::write(
        a.out_dir.join("meta.json"),
        serde_json::to_string_pretty(&meta)?,
    )?;
    println!("{}", serde_json::to_string(&meta)?);
    Ok(())
}

fn synth(a: &SynthArgs) -> Result<()> {
    let stream = SynthStream::new(a.input.synth_config());
    if let Some(out) = &a.out {
        let file = File::create(out).with_context(|| format!("creating {}", out.display()))?;
        let mut w = DumpWriter::new(BufWriter::with_capacity(1 << 20, file))?;
        let mut n = 0u64;
        for item in stream {
            w.write(&item)?;
            n += 1;
        }
        w.finish()?;
        println!("{}", json!({"items": n, "out": out}));
        return Ok(());
    }
    let Some(name) = &a.publish else {
        bail!("give --out <file> or --publish <segment>")
    };
    let publisher = Publisher::create(
        name,
        SegmentConfig {
            rings: 1,
            capacity: a.capacity,
            instrument_capacity: 4096,
        },
    )
    .with_context(|| format!("creating bus segment {name}"))?;
    let mut writer = publisher.writer(0)?;
    let mut ids: Vec<u32> = Vec::new();
    let wall0 = Instant::now();
    let mut t0: Option<i64> = None;
    let mut published = 0u64;
    for item in stream {
        match item {
            SynthItem::Instrument { id, venue, name } => {
                let bus_id = publisher.register_instrument(venue, &name)?;
                let idx = id as usize;
                if ids.len() <= idx {
                    ids.resize(idx + 1, u32::MAX);
                }
                ids[idx] = bus_id;
            }
            SynthItem::Record(mut rec) => {
                if a.speed > 0.0 {
                    let t = rec.recv_ts_ns;
                    let base = *t0.get_or_insert(t);
                    let due = Duration::from_nanos(((t - base) as f64 / a.speed).max(0.0) as u64);
                    let now = wall0.elapsed();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                }
                if rec.venue != Venue::Internal as u8 {
                    rec.instrument = ids
                        .get(rec.instrument as usize)
                        .copied()
                        .unwrap_or(rec.instrument);
                }
                rec.publish_ts_ns = now_ns();
                writer.publish(&rec);
                published += 1;
            }
        }
    }
    std::thread::sleep(Duration::from_millis(a.linger_ms));
    eprintln!("{}", json!({"published": published, "segment": name}));
    Ok(())
}
