//! `ringbolt trade --config ringbolt.toml`: the decision process.
//!
//! Two threads: the **reflex** thread polls the input bus segment(s), applies every record to the
//! decision core, publishes a decision record for every relevant event (paper mode: fired
//! decisions *are* the order intents on the bus) and, on the model cadence, hands the feature
//! vector to the **model** thread through a seqlock; the model thread scores the ensemble and
//! publishes the probability through another seqlock. Neither waits for the other.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use hdrhistogram::Histogram;
use ringbolt_bus::{Consumer, Poll, Publisher, Record, Segment, SegmentConfig, Start, now_ns};
use ringbolt_decide::engine::Reason;
use ringbolt_decide::features::N_FEATURES;
use ringbolt_decide::model::{Ensemble, EvaluatorKind, ModelDir, shipped_model_dir};
use ringbolt_decide::pipeline::{NoModel, Pipeline, SEGMENT_ID_SPAN, SlotLink};
use ringbolt_decide::slot::{FeatureSlot, ModelProb, ProbSlot};
use ringbolt_decide::{DecideConfig, schema_hash};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::bench::{Percentiles, pin};

/// Options of `ringbolt trade`.
#[derive(Debug, Args)]
pub struct TradeArgs {
    /// Configuration file (TOML with `[trade]` and `[decide]` sections).
    #[arg(long)]
    config: PathBuf,
    /// Live trading: real sizes on the wire. Also needs `paper = false`, `[exec] enabled`, a key
    /// file and every risk limit; without it every order is a paper order (size zero).
    #[arg(long)]
    live: bool,
}

/// Where a new consumer starts reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    /// At the live edge.
    Live,
    /// At the oldest retained record (replaying the ring's history first).
    Oldest,
}

/// `[trade]` section.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TradeConfig {
    /// Input bus segments (every ring of each is read).
    pub inputs: Vec<String>,
    /// Output segment for decision records.
    pub output: String,
    /// `ort`, `native` or `baseline`.
    pub evaluator: EvaluatorKind,
    /// Model directory (defaults to the shipped decide/models).
    pub model_dir: Option<PathBuf>,
    /// Core to pin the reflex thread to.
    pub reflex_core: Option<usize>,
    /// Core to pin the model thread to.
    pub model_core: Option<usize>,
    /// Where to start reading the inputs.
    pub start: StartAt,
    /// Seconds to wait for the input segments to appear.
    pub open_timeout_s: u64,
    /// Stop after this many seconds (unset = run until killed).
    pub max_runtime_s: Option<u64>,
    /// Stop once the inputs were idle this long after data was seen (ms); for tests and replays.
    pub exit_when_idle_ms: Option<u64>,
    /// Records per ring of the output segment (power of two).
    pub output_capacity: usize,
    /// Paper mode (the only mode until exec is integrated): intents become fired decisions only.
    pub paper: bool,
    /// Loopback address of `GET /healthz` (the ops contract: 127.0.0.1:9102); unset = none.
    pub health_addr: Option<std::net::SocketAddr>,
}

impl Default for TradeConfig {
    fn default() -> Self {
        Self {
            inputs: vec!["ringbolt-market".into()],
            output: "ringbolt-decide".into(),
            evaluator: EvaluatorKind::Native,
            model_dir: None,
            reflex_core: None,
            model_core: None,
            start: StartAt::Live,
            open_timeout_s: 30,
            max_runtime_s: None,
            exit_when_idle_ms: None,
            output_capacity: 1 << 20,
            paper: true,
            health_addr: None,
        }
    }
}

/// The whole file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    /// `[trade]`.
    pub trade: TradeConfig,
    /// `[decide]`.
    pub decide: DecideConfig,
    /// `[exec]`: the order path (paper by default). Not serialized (it names key files).
    #[serde(skip_serializing)]
    pub exec: crate::trade_exec::ExecSection,
    /// The other processes' sections of a shared `ringbolt.toml` (`[feeds]`, `[archive]`,
    /// `[cores]`): accepted and ignored here; any other unknown section is an error.
    #[serde(default, skip_serializing)]
    #[expect(dead_code, reason = "another process's section: accepted, never read")]
    pub feeds: Option<serde::de::IgnoredAny>,
    /// See `feeds`.
    #[serde(default, skip_serializing)]
    #[expect(dead_code, reason = "another process's section: accepted, never read")]
    pub archive: Option<serde::de::IgnoredAny>,
    /// See `feeds`.
    #[serde(default, skip_serializing)]
    #[expect(dead_code, reason = "another process's section: accepted, never read")]
    pub cores: Option<serde::de::IgnoredAny>,
}

/// Loads the configuration file.
pub fn load_config(path: &Path) -> Result<FileConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Loads the ensemble for `kind`, or `None` for the baseline.
pub fn load_ensemble(kind: EvaluatorKind, dir: Option<&Path>) -> Result<Option<Ensemble>> {
    if kind == EvaluatorKind::Baseline {
        return Ok(None);
    }
    let dir = dir.map_or_else(shipped_model_dir, Path::to_path_buf);
    let md =
        ModelDir::load(&dir).with_context(|| format!("loading models from {}", dir.display()))?;
    Ok(Some(Ensemble::load(&md, kind)?))
}

/// Runs the decision process.
pub fn run(args: &TradeArgs) -> Result<()> {
    let cfg = load_config(&args.config)?;
    let tc = cfg.trade.clone();
    let live = match (args.live, tc.paper) {
        (false, true) => false,
        (true, false) if cfg.exec.enabled => true,
        (true, false) => bail!("--live needs [exec] enabled = true"),
        (false, false) => {
            bail!("[trade] paper = false needs the --live flag too (paper mode is the default)")
        }
        (true, true) => bail!("--live given but [trade] paper = true: set paper = false"),
    };
    install_stop_handler();
    if tc.inputs.is_empty() {
        bail!("[trade] inputs is empty");
    }
    // Load the model first: a missing ONNX Runtime is a start-up error naming the fix.
    let ensemble = load_ensemble(tc.evaluator, tc.model_dir.as_deref())?;
    let mut segments = Vec::new();
    for name in &tc.inputs {
        let seg = Segment::open_wait(name, Duration::from_secs(tc.open_timeout_s))
            .with_context(|| format!("opening input segment {name}"))?;
        segments.push(seg);
    }
    let out = Publisher::create(
        &tc.output,
        SegmentConfig {
            rings: 1,
            capacity: tc.output_capacity,
            instrument_capacity: 16,
        },
    )
    .with_context(|| format!("creating output segment {}", tc.output))?;
    let mut writer = out.writer(0)?;
    // Exec connects before the loop starts (API key derivation, warm HTTP/2 connection).
    let mut exec = if cfg.exec.enabled {
        Some(crate::trade_exec::Exec::start(&cfg.exec, live)?)
    } else {
        None
    };
    let mut exec_seen = vec![false; segments.len() * SEGMENT_ID_SPAN as usize];
    let start = match tc.start {
        StartAt::Live => Start::LiveEdge,
        StartAt::Oldest => Start::Oldest,
    };
    let mut consumers: Vec<(usize, Consumer)> = Vec::new();
    for (k, seg) in segments.iter().enumerate() {
        for ring in 0..seg.geometry().ring_count {
            consumers.push((k, Consumer::new(seg, ring, start)?));
        }
    }

    let features = Arc::new(FeatureSlot::default());
    let probs = Arc::new(ProbSlot::default());
    let stop = Arc::new(AtomicBool::new(false));
    let scores = Arc::new(AtomicU64::new(0));
    let model_thread = ensemble.map(|mut ens| {
        let (features, probs, stop, scores) = (
            Arc::clone(&features),
            Arc::clone(&probs),
            Arc::clone(&stop),
            Arc::clone(&scores),
        );
        let core = tc.model_core;
        std::thread::Builder::new()
            .name("decide-model".into())
            .spawn(move || -> Result<Histogram<u64>> {
                pin(core);
                let mut hist = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3)?;
                let mut x = [0f32; N_FEATURES];
                let mut seen = 0u64;
                let hash = schema_hash();
                let mut idle = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    if features.version() == seen {
                        idle = idle.saturating_add(1);
                        backoff(idle);
                        continue;
                    }
                    idle = 0;
                    let Some((version, ts)) = features.read(&mut x) else {
                        continue;
                    };
                    seen = version;
                    let t0 = Instant::now();
                    let p = ens.predict(&x)?;
                    hist.saturating_record(t0.elapsed().as_nanos() as u64);
                    probs.publish(&ModelProb {
                        p_up: p,
                        features_ts_ns: ts,
                        schema_hash: hash,
                        features_version: version,
                    });
                    scores.fetch_add(1, Ordering::Relaxed);
                }
                Ok(hist)
            })
    });
    let model_thread = model_thread.transpose()?;
    let has_model = model_thread.is_some();

    // Health endpoint and systemd readiness once inputs and output are mapped; the watchdog is
    // fed by the reflex loop below, so a wedged loop stops it.
    let liveness = crate::service::Liveness::new(Duration::from_secs(5));
    if let Some(addr) = tc.health_addr {
        let bound = crate::service::spawn_health_endpoint(addr, &liveness)?;
        tracing::info!(%bound, "health endpoint listening");
    }
    crate::service::spawn_watchdog(&liveness)?;
    liveness.set_ready()?;

    pin(tc.reflex_core);
    let mut pipeline = Pipeline::new(cfg.decide.clone(), segments.len(), has_model);
    let mut iterations = 0u32;
    let mut reflex_hist = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3)?;
    let mut rec = Record::zeroed();
    let started = Instant::now();
    let mut last_data = Instant::now();
    let mut seen_data = false;
    let mut lost = 0u64;
    let mut published = 0u64;
    let mut idle = 0u32;
    let mut slots = SlotLink {
        features: &features,
        probs: &probs,
    };
    loop {
        iterations = iterations.wrapping_add(1);
        if iterations.is_multiple_of(1024) {
            liveness.beat();
            if STOP.load(Ordering::Relaxed) {
                break;
            }
        }
        if let Some(ex) = exec.as_mut()
            && iterations.is_multiple_of(64)
        {
            ex.poll();
            ex.flush(&mut writer);
        }
        let mut got = false;
        for (k, consumer) in &mut consumers {
            match consumer.poll(&mut rec) {
                Poll::Ready => {}
                Poll::Empty => continue,
                Poll::Lost { count } => {
                    lost += count;
                    continue;
                }
                Poll::EpochChanged { lost: l, .. } => {
                    lost += l;
                    continue;
                }
                Poll::Retired => bail!("input segment was retired (recreated with another layout)"),
            }
            got = true;
            let t0 = Instant::now();
            let seg = &segments[*k];
            if let Some(ex) = exec.as_mut()
                && rec.venue == ringbolt_bus::Venue::Polymarket as u8
                && rec.instrument < SEGMENT_ID_SPAN
            {
                let id = *k as u32 * SEGMENT_ID_SPAN + rec.instrument;
                if let Some(seen) = exec_seen.get_mut(id as usize)
                    && !*seen
                {
                    // First sight of this token (off the hot path): build its window's pool.
                    *seen = true;
                    if let Some((venue, name)) = seg.instrument(rec.instrument) {
                        ex.on_instrument(id, venue, &name);
                    }
                }
            }
            let decision = if has_model {
                pipeline.process(*k, &mut rec, |id| seg.instrument(id), &mut slots)
            } else {
                pipeline.process(*k, &mut rec, |id| seg.instrument(id), &mut NoModel)
            };
            if let Some(mut d) = decision {
                let intent = pipeline.last_intent.take();
                if let Some(ex) = exec.as_mut() {
                    ex.track(&d, *k as u32 * SEGMENT_ID_SPAN + d.instrument);
                    if let Some(intent) = intent {
                        ex.submit(&intent);
                    }
                }
                d.publish_ts_ns = now_ns();
                writer.publish(&d);
                published += 1;
                reflex_hist.saturating_record(t0.elapsed().as_nanos() as u64);
                if let Some(ex) = exec.as_mut() {
                    ex.flush(&mut writer);
                }
            }
        }
        if got {
            seen_data = true;
            last_data = Instant::now();
            idle = 0;
        } else {
            idle = idle.saturating_add(1);
            liveness.beat();
            if let Some(ex) = exec.as_mut() {
                ex.poll();
                ex.flush(&mut writer);
            }
            if STOP.load(Ordering::Relaxed) {
                break;
            }
            if let Some(ms) = tc.exit_when_idle_ms
                && seen_data
                && last_data.elapsed() >= Duration::from_millis(ms)
            {
                break;
            }
            if tc
                .max_runtime_s
                .is_some_and(|s| started.elapsed() >= Duration::from_secs(s))
            {
                break;
            }
            backoff(idle);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let exec_summary = exec.map(|ex| {
        let s = ex.summary();
        ex.shutdown(&mut writer);
        s
    });
    let model_hist = match model_thread {
        Some(h) => Some(
            h.join()
                .map_err(|_| anyhow::anyhow!("model thread panicked"))??,
        ),
        None => None,
    };
    let st = pipeline.engine.stats;
    let by_reason: serde_json::Map<String, serde_json::Value> = Reason::ALL
        .iter()
        .map(|r| (r.as_str().to_owned(), json!(st.by_reason[*r as usize])))
        .collect();
    let summary = json!({
        "records": st.records,
        "decisions_published": published,
        "fired": st.by_reason[Reason::Fired as usize],
        "by_reason": by_reason,
        "model_decisions": st.model_decisions,
        "model_scores": scores.load(Ordering::Relaxed),
        "evaluator": tc.evaluator,
        "lost_records": lost,
        "unmapped_instruments": pipeline.unmapped,
        "registration_errors": pipeline.registration_errors,
        "input_errors": pipeline.engine.state.errors,
        "reflex_pass_ns": Percentiles::of(&reflex_hist),
        "model_score_ns": model_hist.as_ref().map(Percentiles::of),
        "output_segment": tc.output,
        "exec": exec_summary,
    });
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// SIGINT/SIGTERM end the loop; the summary is still printed (and live orders cancelled).
fn install_stop_handler() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let handler = on_stop_signal as extern "C" fn(libc::c_int);
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(signal, handler as libc::sighandler_t) };
    }
}

/// Idle backoff: spin, then yield, then short sleeps (only when no input arrives).
fn backoff(idle: u32) {
    if idle < 64 {
        std::hint::spin_loop();
    } else if idle < 4096 {
        std::thread::yield_now();
    } else {
        std::thread::sleep(Duration::from_micros(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_shared_config_loads_and_unknown_sections_are_refused() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("ami/config/ringbolt.toml");
        let cfg = load_config(&shipped).unwrap();
        assert_eq!(
            cfg.trade.health_addr,
            Some("127.0.0.1:9102".parse().unwrap())
        );
        assert!(cfg.trade.paper, "the shipped config trades on paper");
        let dir = std::env::temp_dir().join(format!("rb-trade-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "[trade]\npaper = true\n\n[trdae]\nx = 1\n").unwrap();
        let err = format!("{:#}", load_config(&bad).unwrap_err());
        assert!(err.contains("trdae"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
