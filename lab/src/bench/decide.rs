//! `ringbolt bench decide`: the decision core over a synthetic stream of ≥ 1M bus records —
//! reflex pass, feature update per event, and the ensemble model path with ONNX Runtime (the
//! reference / ecosystem peer) and with the native evaluator, beside the seed system's 21 µs.

use std::time::Instant;

use anyhow::Result;
use clap::Args;
use hdrhistogram::Histogram;
use ringbolt_bus::Record;
use ringbolt_decide::engine::Engine;
use ringbolt_decide::features::N_FEATURES;
use ringbolt_decide::model::{Ensemble, EvaluatorKind, ModelDir, shipped_model_dir};
use ringbolt_decide::slot::{FeatureSlot, ModelProb, ProbSlot};
use ringbolt_decide::synth::{SynthConfig, SynthItem, SynthStream};
use ringbolt_decide::{DecideConfig, schema_hash};
use serde_json::json;

use super::{Percentiles, pin};
use crate::machine::Machine;

/// The seed system's decision latency p50 (ns), the number to beat.
pub const SEED_P50_NS: u64 = 21_000;

/// Issue #19's goal for a decision per event (every record: state update, all 123 features,
/// reflex pass), p50 in ns.
pub const DECISION_PER_EVENT_P50_NS_MAX: u64 = 500;

/// Options of `ringbolt bench decide`.
#[derive(Debug, Args)]
pub struct DecideBenchArgs {
    /// Print JSON only.
    #[arg(long)]
    json: bool,
    /// Records replayed per measured pass (and model scorings per evaluator).
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Synthetic stream seed.
    #[arg(long, default_value_t = 11)]
    seed: u64,
    /// Core to pin to (none = unpinned).
    #[arg(long)]
    core: Option<usize>,
    /// Skip the ONNX Runtime evaluator.
    #[arg(long)]
    skip_ort: bool,
}

struct Stream {
    registrations: Vec<(u32, ringbolt_bus::Venue, String)>,
    records: Vec<Record>,
}

fn stream(events: u64, seed: u64) -> Stream {
    let windows = u32::try_from(events / 40_000 + 2).unwrap_or(u32::MAX);
    let mut s = Stream {
        registrations: Vec::new(),
        records: Vec::with_capacity(events as usize),
    };
    for item in SynthStream::new(SynthConfig {
        seed,
        windows,
        ..SynthConfig::default()
    }) {
        match item {
            SynthItem::Instrument { id, venue, name } => s.registrations.push((id, venue, name)),
            SynthItem::Record(r) => {
                if s.records.len() as u64 >= events {
                    break;
                }
                s.records.push(r);
            }
        }
    }
    s
}

fn engine_for(s: &Stream) -> Engine {
    let mut e = Engine::new(DecideConfig::default());
    for (id, venue, name) in &s.registrations {
        let _ = e.register_instrument(*id, *venue, name);
    }
    e
}

fn hist() -> Result<Histogram<u64>> {
    Ok(ringbolt_telemetry::latency_histogram())
}

/// Reflex-pass latencies.
struct Reflex {
    all: Histogram<u64>,
    decisions: Histogram<u64>,
    fired: u64,
    sink: i64,
}

/// When the feature vector is computed in a pass.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Features {
    /// On the model cadence, as the trade thread does.
    OnCadence,
    /// On every record: the decision per event of issue #19 (feature update + reflex pass).
    EveryEvent,
}

/// 1. Reflex pass, exactly as the trade thread runs it (features to the model slot on the
///    cadence, latest probability from the probability slot, decision out); with
///    [`Features::EveryEvent`] the whole feature vector is also brought up to date on every
///    other record ([`Engine::refresh_features`], the model cadence untouched), in the same
///    timed span as the state update (counted once) and the reflex pass.
fn reflex_pass(s: &Stream, hash: u32, features: Features) -> Result<Reflex> {
    let mut engine = engine_for(s);
    let fslot = FeatureSlot::default();
    let pslot = ProbSlot::default();
    let p_index = ringbolt_decide::features::index_of("p_baseline").unwrap_or(0);
    let mut reflex_all = hist()?;
    let mut reflex_decisions = hist()?;
    let mut fired = 0u64;
    let mut sink = 0i64;
    for rec in &s.records {
        let t0 = Instant::now();
        let (update, want) = engine.update(rec);
        if features == Features::EveryEvent && !want {
            std::hint::black_box(engine.refresh_features());
        }
        if want {
            let ts = engine.state.now_ns;
            let f = engine.compute_features();
            fslot.publish(f, ts);
            // Stand-in for the model thread's answer so the pass takes the model branch.
            pslot.publish(&ModelProb {
                p_up: f64::from(f[p_index]),
                features_ts_ns: ts,
                schema_hash: hash,
                features_version: 0,
            });
        }
        let out = engine.decide_after(rec, update, pslot.latest());
        let ns = t0.elapsed().as_nanos() as u64;
        reflex_all.saturating_record(ns);
        if let Some(d) = out.decision {
            reflex_decisions.saturating_record(ns);
            sink ^= d.exchange_ts_ns;
        }
        fired += u64::from(out.intent.is_some());
    }
    Ok(Reflex {
        all: reflex_all,
        decisions: reflex_decisions,
        fired,
        sink,
    })
}

/// 2. Feature update per event: state update + the full feature vector on every record; also
///    samples real feature vectors for the model path.
fn feature_update(s: &Stream) -> Result<(Histogram<u64>, Vec<[f32; N_FEATURES]>)> {
    let mut engine = engine_for(s);
    let mut feat = hist()?;
    let mut samples: Vec<[f32; N_FEATURES]> = Vec::new();
    for (i, rec) in s.records.iter().enumerate() {
        let t0 = Instant::now();
        let _ = engine.update(rec);
        let f = engine.compute_features();
        feat.saturating_record(t0.elapsed().as_nanos() as u64);
        if i % 97 == 0 && samples.len() < 20_000 && f[5] > 0.0 {
            samples.push(*f);
        }
    }
    if samples.is_empty() {
        samples.push([0.0; N_FEATURES]);
    }
    Ok((feat, samples))
}

/// Runs the benchmark.
pub fn run(args: &DecideBenchArgs) -> Result<()> {
    let pinned = pin(args.core);
    let t_gen = Instant::now();
    let s = stream(args.events, args.seed);
    let gen_s = t_gen.elapsed().as_secs_f64();
    let hash = schema_hash();
    let Reflex {
        all: reflex_all,
        decisions: reflex_decisions,
        fired,
        sink,
    } = reflex_pass(&s, hash, Features::OnCadence)?;
    let per_event = reflex_pass(&s, hash, Features::EveryEvent)?;
    let per_event_p = Percentiles::of(&per_event.all);
    let (feat, samples) = feature_update(&s)?;

    // 3. Model path: ensemble scoring on real feature vectors, native and ort.
    let dir = ModelDir::load(&shipped_model_dir())?;
    let score = |ens: &mut Ensemble| -> Result<(Histogram<u64>, f64)> {
        let mut h = hist()?;
        let mut acc = 0.0;
        for i in 0..args.events as usize {
            let x = &samples[i % samples.len()];
            let t0 = Instant::now();
            acc += ens.predict(x)?;
            h.saturating_record(t0.elapsed().as_nanos() as u64);
        }
        Ok((h, acc))
    };
    let mut native = Ensemble::load(&dir, EvaluatorKind::Native)?;
    let (native_h, native_acc) = score(&mut native)?;
    let ort = if args.skip_ort {
        Err(anyhow::anyhow!("skipped by --skip-ort"))
    } else {
        Ensemble::load(&dir, EvaluatorKind::Ort)
            .map_err(anyhow::Error::from)
            .and_then(|mut e| score(&mut e))
    };
    let native_p = Percentiles::of(&native_h);
    let reflex_p = Percentiles::of(&reflex_decisions);
    let (ort_json, ort_p50, ort_acc) = match &ort {
        Ok((h, acc)) => (
            serde_json::to_value(Percentiles::of(h))?,
            Some(Percentiles::of(h).p50_ns),
            Some(*acc),
        ),
        Err(e) => (json!({ "error": format!("{e:#}") }), None, None),
    };
    let ratio = |a: u64, b: u64| ((a as f64 / b.max(1) as f64) * 100.0).round() / 100.0;
    let met = json!({
        "reflex_p50": reflex_p.p50_ns <= 2_000,
        "reflex_p99": reflex_p.p99_ns <= 10_000,
        "native_ensemble_p50": native_p.p50_ns <= 5_000,
        "decision_per_event_p50": per_event_p.p50_ns <= DECISION_PER_EVENT_P50_NS_MAX,
        "ort_ensemble_p50": ort_p50.map(|p| p <= 15_000),
    });
    let report = json!({
        "bench": "decide",
        "method": "synthetic stream (decide::synth) replayed in-process through the decision core; \
                   Instant::now around each pass; model path scores real feature vectors sampled from the same replay",
        "machine": Machine::current(),
        "pinned_core": if pinned { args.core } else { None },
        "records": s.records.len(),
        "stream_generation_s": (gen_s * 1000.0).round() / 1000.0,
        "features": N_FEATURES,
        "feature_schema_hash": format!("{hash:#010x}"),
        "reflex_pass_decisions_ns": reflex_p,
        "reflex_pass_all_records_ns": Percentiles::of(&reflex_all),
        "reflex_decisions": reflex_decisions.len(),
        "reflex_fired": fired,
        "feature_update_per_event_ns": Percentiles::of(&feat),
        "decision_per_event_ns": per_event_p,
        "decision_per_event_fired": per_event.fired,
        "ratio_seed_over_decision_per_event_p50": ratio(SEED_P50_NS, per_event_p.p50_ns),
        "model_native_ensemble_ns": native_p,
        "model_ort_ensemble_ns": ort_json,
        "model_members": dir.members.iter().map(|(m, _)| m.name.clone()).collect::<Vec<_>>(),
        "native_vs_ort_mean_probability_abs_diff": ort_acc.map(|a| ((a - native_acc) / args.events as f64).abs()),
        "ratio_ort_over_native_p50": ort_p50.map(|p| ratio(p, native_p.p50_ns)),
        "seed_system_p50_ns": SEED_P50_NS,
        "ratio_seed_over_reflex_p50": ratio(SEED_P50_NS, reflex_p.p50_ns),
        "ratio_seed_over_reflex_plus_native_model_p50": ratio(SEED_P50_NS, reflex_p.p50_ns + native_p.p50_ns),
        "targets": { "reflex_p50_ns_max": 2_000, "reflex_p99_ns_max": 10_000, "ort_ensemble_p50_ns_max": 15_000, "native_ensemble_p50_ns_max": 5_000, "decision_per_event_p50_ns_max": DECISION_PER_EVENT_P50_NS_MAX, "met": met },
        "sink": (sink ^ per_event.sink) & 1,
    });
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}
