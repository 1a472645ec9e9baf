//! `ringbolt replay --archive DIR [--check-parity]`: the offline twin of `ringbolt trade`.
//!
//! Reads a Parquet archive written by `ringbolt archive`, rebuilds the bus records of the trade
//! process's input segments exactly (archive schema ≥ 2), and feeds them in their recorded bus
//! order through the trade process's own loop ([`crate::reflex::run`], hence
//! [`Pipeline::process`]) with an [`ArchiveSource`] instead of bus consumers, the same paper
//! exchange as the live run's order sink (when it ran in paper mode with one), and a parity check
//! instead of the output ring. The model path is asynchronous live, so with
//! `--model recorded` (the default) each decision uses the probability the archived live
//! decision recorded (the engine quantises it to the bus grid, so the recorded value is
//! bit-exact); the feature vectors are re-scored by the configured ensemble to check that every
//! recorded probability is the model's output on one of the replayed vectors. `--check-parity`
//! compares every replayed decision with the archived one, and every paper order transition,
//! fill and settlement with the archived one (bytes, wall-clock `publish_ts` and bus `seq`
//! excluded) and the P&L totals, and exits non-zero at the first divergence, printing its
//! context.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use ringbolt_archive::reader::{
    ArchiveReader, DecisionsByNumber, Row, WindowRows, decisions_by_number,
};
use ringbolt_archive::tables::Table;
use ringbolt_bus::{Record, RecordKind, Venue};
use ringbolt_decide::engine::Reason;
use ringbolt_decide::features::{CATALOGUE, N_FEATURES, compute};
use ringbolt_decide::model::EvaluatorKind;
use ringbolt_decide::parity::{ArchivedDecisions, ParityChecker, describe};
use ringbolt_decide::pipeline::{NoModel, Pipeline, RecordedLink, RecordedProb, Scorer, SyncLink};
use serde_json::json;

pub use crate::archive_source::ArchiveSource;
use crate::archive_source::{Keep, WindowCursor};
use crate::config::{TradeSections, load_ensemble};
use crate::paper::{PaperOrders, PaperParity, archived_paper_records};
use crate::reflex::{self, DecisionSink, NoOrders, OrderSink};

/// Where decisions take their model probability from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelMode {
    /// The probability each archived live decision used (parity with an asynchronous model).
    Recorded,
    /// Score the ensemble synchronously on every feature vector (a zero-latency model path).
    Sync,
    /// No model: the baseline (or `no_model`) decides.
    None,
}

/// A decision config given to a replay (`ringbolt replay --config FILE`).
#[derive(Clone, Debug)]
pub struct GivenConfig {
    /// The file (named in messages).
    pub path: PathBuf,
    /// Its trade sections.
    pub sections: TradeSections,
}

/// The decision config the archive at `root` recorded (written by the archiver at start-up from
/// the `ringbolt.toml` the live run shared), with its file.
///
/// # Errors
/// An unreadable or invalid recorded config.
pub fn recorded_config(root: &Path) -> Result<Option<GivenConfig>> {
    let Some(r) = ringbolt_archive::recorded::recorded_decision_config(root)
        .with_context(|| format!("reading the recorded decision config of {}", root.display()))?
    else {
        return Ok(None);
    };
    if r.recorded > 1 {
        eprintln!(
            "replay: the archive recorded {} decision configs (runs with different configs); \
             using the latest run's, {}",
            r.recorded,
            r.path.display()
        );
    }
    let sections = TradeSections::from_decision_toml(&r.text)
        .with_context(|| format!("parsing {}", r.path.display()))?;
    Ok(Some(GivenConfig {
        path: r.path,
        sections,
    }))
}

/// The decision config a replay runs with: the given one (warning, naming each `section.key`,
/// where it differs from the recorded one), else the recorded one (saying so), else defaults.
/// Returns whether a config was known (then its `[trade] inputs` select the replayed segments).
fn resolve_config(a: &ReplayOptions) -> Result<(TradeSections, bool)> {
    let recorded = recorded_config(&a.archive)?;
    Ok(match (&a.config, recorded) {
        (Some(given), Some(rec)) => {
            let diff = given.sections.decision_diff(&rec.sections);
            if !diff.is_empty() {
                eprintln!(
                    "replay: warning: --config {} differs from the decision config the live run \
                     recorded ({}) in: {}; parity may fail",
                    given.path.display(),
                    rec.path.display(),
                    diff.join(", ")
                );
            }
            (given.sections.clone(), true)
        }
        (Some(given), None) => (given.sections.clone(), true),
        (None, Some(rec)) => {
            eprintln!(
                "replay: using the decision config the live run recorded: {} (--config overrides)",
                rec.path.display()
            );
            (rec.sections, true)
        }
        (None, None) => {
            eprintln!(
                "replay: the archive recorded no decision config and no --config was given: \
                 replaying with the defaults"
            );
            (TradeSections::default(), false)
        }
    })
}

/// Options of `ringbolt replay`.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    /// Archive root written by `ringbolt archive`.
    pub archive: PathBuf,
    /// A decision config to replay with (`[trade]` inputs/evaluator/model, `[decide]`), loaded by
    /// the caller; `None` = the one the archive recorded ([`recorded_config`]).
    pub config: Option<GivenConfig>,
    /// Only this UTC date (`YYYY-MM-DD`).
    pub date: Option<String>,
    /// Compare every replayed decision with the archived live one; fail on divergence.
    pub check_parity: bool,
    /// Segment holding the live decisions (default: `[trade] output`, else the only one).
    pub decisions_segment: Option<String>,
    /// Producer epoch of the decisions segment to compare (default: the first).
    pub epoch: Option<u64>,
    /// Model probability source.
    pub model: ModelMode,
    /// Do not re-score feature vectors to verify recorded model probabilities.
    pub no_verify_model: bool,
    /// Events shown before a divergence.
    pub context: usize,
    /// Never draw a progress bar.
    pub no_progress: bool,
}

/// What a replay found.
#[derive(Debug)]
pub struct Outcome {
    /// JSON summary.
    pub summary: serde_json::Value,
    /// Parity verdict when checked.
    pub parity_passed: Option<bool>,
    /// Records fed to the pipeline.
    pub events: u64,
    /// Time spent reading Parquet (s).
    pub read_s: f64,
    /// Time spent in the decision loop, reading excluded (s).
    pub decide_s: f64,
}

/// Feature lines printed for a divergence.
const MAX_FEATURE_LINES: usize = 40;

#[derive(Debug)]
struct Divergent {
    text: String,
    features: [f32; N_FEATURES],
    decision_no: u64,
}

/// Runs `ringbolt replay`: prints the JSON summary on stdout.
///
/// # Errors
/// An unreadable archive or configuration, and a failed parity check.
pub fn run(a: &ReplayOptions) -> Result<()> {
    let out = replay(a, None)?;
    println!("{}", serde_json::to_string(&out.summary)?);
    if out.parity_passed == Some(false) {
        bail!("decision or paper parity failed (see the divergence above)");
    }
    Ok(())
}

/// The replay's model link, picked once; the loop is monomorphised per variant.
#[derive(Debug)]
enum Link {
    None(NoModel),
    Recorded(Box<RecordedLink>),
    Sync(Box<SyncLink>),
}

/// The archived live decisions a replay compares against.
#[derive(Debug)]
struct LiveDecisions {
    /// Every segment holding decision records (never replay inputs).
    segments: Vec<String>,
    /// The segment compared.
    segment: Option<String>,
    /// Decision number - 1 → the archived record, if archived.
    records: Archived,
    /// Producer epochs of that segment.
    epochs: Vec<u64>,
}

/// The archived decisions of the compared session, where the archive reader left them.
#[derive(Debug, Default)]
struct Archived(DecisionsByNumber);

impl ArchivedDecisions for Archived {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn get(&self, i: usize) -> Option<&Record> {
        self.0.get(i)
    }
}

/// The segments that hold the decision rows `decisions` (sorted, each once): never replay
/// inputs.
fn decision_segments(decisions: &WindowRows) -> Vec<String> {
    let mut segments: Vec<String> = decisions
        .rows
        .iter()
        .map(|r| decisions.segments[r.segment as usize].clone())
        .collect();
    segments.sort();
    segments.dedup();
    segments
}

fn live_decisions(
    reader: &mut ArchiveReader,
    a: &ReplayOptions,
    cfg: &TradeSections,
) -> Result<LiveDecisions> {
    let decisions = reader.read_all(&[Table::Decisions], a.date.as_deref(), &|_| true)?;
    let segments = decision_segments(&decisions);
    let segment = match &a.decisions_segment {
        Some(s) => Some(s.clone()),
        None if segments.contains(&cfg.trade.output) => Some(cfg.trade.output.clone()),
        None if segments.len() == 1 => segments.first().cloned(),
        None if segments.is_empty() => None,
        None => bail!(
            "decisions of several segments in the archive ({segments:?}): pick one with \
             --decisions-segment"
        ),
    };
    let (records, epochs) = match &segment {
        Some(s) => decisions_by_number(decisions, s, a.epoch),
        None => (DecisionsByNumber::default(), Vec::new()),
    };
    if epochs.len() > 1 {
        tracing::warn!(
            ?epochs,
            "decisions from several trade sessions (producer epochs); comparing epoch {}",
            a.epoch.or(epochs.first().copied()).unwrap_or(0)
        );
    }
    Ok(LiveDecisions {
        segments,
        segment,
        records: Archived(records),
        epochs,
    })
}

fn check_options(a: &ReplayOptions, cfg: &TradeSections, live: &LiveDecisions) -> Result<()> {
    if a.check_parity && live.records.is_empty() {
        bail!(
            "--check-parity: the archive holds no decision records{}",
            live.segment
                .as_ref()
                .map_or_else(String::new, |s| format!(" of segment {s}"))
        );
    }
    if a.check_parity
        && a.model != ModelMode::Recorded
        && cfg.trade.evaluator != EvaluatorKind::Baseline
    {
        bail!(
            "--check-parity with a model needs --model recorded (the live model path is asynchronous)"
        );
    }
    Ok(())
}

fn make_link(
    a: &ReplayOptions,
    cfg: &TradeSections,
    live: &Archived,
    has_model: bool,
) -> Result<Link> {
    let scorer = |required: bool| -> Result<Option<Scorer>> {
        match load_ensemble(cfg.trade.evaluator, cfg.trade.model_dir.as_deref()) {
            Ok(Some(e)) => Ok(Some(Scorer::new(e))),
            Ok(None) => Ok(None),
            Err(e) if !required => {
                tracing::warn!("model not loaded, recorded probabilities are not verified: {e:#}");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    };
    if !has_model {
        return Ok(Link::None(NoModel));
    }
    Ok(match a.model {
        ModelMode::None => Link::None(NoModel),
        ModelMode::Sync => Link::Sync(Box::new(SyncLink {
            scorer: scorer(true)?.context("--model sync needs a model evaluator")?,
        })),
        ModelMode::Recorded => {
            let by_decision = (0..live.len())
                .map(|i| live.get(i).and_then(RecordedProb::of))
                .collect();
            let s = if a.no_verify_model {
                None
            } else {
                scorer(false)?
            };
            Link::Recorded(Box::new(RecordedLink::new(by_decision, s, &cfg.decide)))
        }
    })
}

/// The replay decision sink: compares every decision with the archived live one, or stops at
/// decision `stop_after` keeping the feature vector there.
#[derive(Debug)]
struct ParityOut {
    parity: Option<ParityChecker<Archived>>,
    stop_after: Option<u64>,
    context: usize,
    divergent: Option<Divergent>,
    stopped_features: Option<[f32; N_FEATURES]>,
    /// Parity of the paper exchange's records (fills, settlements, transitions).
    paper: Option<PaperParity>,
}

impl DecisionSink<ArchiveSource> for ParityOut {
    type Mark = ();

    #[inline]
    fn mark(&self) {}

    #[inline]
    fn decision(
        &mut self,
        _k: usize,
        d: &mut Record,
        (): (),
        pipeline: &Pipeline,
        source: &ArchiveSource,
    ) -> ControlFlow<()> {
        if self.stop_after == Some(d.venue_seq) {
            let mut f = [0f32; N_FEATURES];
            compute(&pipeline.engine.state, &mut f);
            self.stopped_features = Some(f);
            return ControlFlow::Break(());
        }
        if let Some(p) = &mut self.parity
            && p.check(d)
            && let Some(first) = &p.first
        {
            let mut f = [0f32; N_FEATURES];
            compute(&pipeline.engine.state, &mut f);
            // Context: the events of this window up to the trigger.
            self.divergent = Some(Divergent {
                text: divergence_text(first, source.history(self.context), &source.cursor.reader),
                features: f,
                decision_no: first.decision_no,
            });
        }
        ControlFlow::Continue(())
    }

    #[inline]
    fn transition(&mut self, r: &Record) {
        if let Some(p) = &mut self.paper {
            p.check(r);
        }
    }
}

/// The loop, monomorphised per model link and order sink.
fn run_loop<O: OrderSink>(
    pipeline: &mut Pipeline,
    source: &mut ArchiveSource,
    link: &mut Link,
    orders: &mut O,
    out: &mut ParityOut,
) -> Result<()> {
    match link {
        Link::None(l) => reflex::run(pipeline, source, l, orders, out),
        Link::Recorded(l) => reflex::run(pipeline, source, l.as_mut(), orders, out),
        Link::Sync(l) => reflex::run(pipeline, source, l.as_mut(), orders, out),
    }
}

/// The archived paper records of the decisions segment (empty without one).
fn archived_paper(
    reader: &mut ArchiveReader,
    a: &ReplayOptions,
    live: &LiveDecisions,
) -> Result<Vec<Record>> {
    let Some(segment) = live.segment.as_deref() else {
        return Ok(Vec::new());
    };
    let tables = [Table::OrderTransitions, Table::Fills, Table::Settlements];
    let rows = reader.read_all(&tables, a.date.as_deref(), &|s| s == segment)?;
    Ok(archived_paper_records(&rows, segment, a.epoch))
}

/// Whether the replay runs the paper exchange: the config's paper mode with the exchange on,
/// unless the archive holds a live run's decisions but no paper records (a run before, or
/// without, the paper exchange: its engine had no fills fed back, so neither may the replay's).
fn runs_paper(cfg: &TradeSections, live: &LiveDecisions, archived: &[Record]) -> bool {
    let configured = cfg.trade.paper && cfg.trade.paper_exchange.enabled;
    if configured && archived.is_empty() && !live.records.is_empty() {
        eprintln!(
            "replay: the archive holds decisions but no paper records: replaying without the \
             paper exchange, paper parity not checked"
        );
        return false;
    }
    configured
}

/// Has glibc's allocator keep freed memory for the next allocation (once per process): the
/// reader's per-window buffers (file bytes, decoded columns: up to a few MB each) would
/// otherwise each be a mapping of their own, returned to the kernel when freed and page-faulted
/// in again by the next window (about 8,000 faults, 4 % of a replay at 22× the bench's message
/// rate). Allocations of 32 MB and more (a window's rows) stay mappings of their own.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: `mallopt` only sets parameters of glibc's allocator, under its own lock;
            // no memory is touched, and a rejected value leaves the default in place.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
                libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
            }
        });
    }
}

/// Replays the archive; with `stop_after = Some(n)` stops right after decision `n` and returns
/// the feature vector there in the summary (used to show what moved before a divergence).
///
/// # Errors
/// An unreadable archive or configuration, inconsistent options, a model that cannot load.
pub fn replay(a: &ReplayOptions, stop_after: Option<u64>) -> Result<Outcome> {
    keep_freed_memory();
    let (cfg, known) = resolve_config(a)?;
    let mut reader = ArchiveReader::open(&a.archive)
        .with_context(|| format!("opening archive {}", a.archive.display()))?;
    let t_read0 = Instant::now();
    let mut live = live_decisions(&mut reader, a, &cfg)?;
    let mut read_s = t_read0.elapsed().as_secs_f64();
    check_options(a, &cfg, &live)?;

    let has_model = cfg.trade.evaluator != EvaluatorKind::Baseline && a.model != ModelMode::None;
    let mut link = make_link(a, &cfg, &live.records, has_model)?;
    let mut source = ArchiveSource::new(
        reader,
        a,
        known.then_some(&cfg),
        &live.segments,
        stop_after.is_some(),
    )?;
    let mut pipeline = Pipeline::new(cfg.decide.clone(), source.max_segments(), has_model);
    let archived = archived_paper(&mut source.cursor.reader, a, &live)?;
    let paper_on = runs_paper(&cfg, &live, &archived);
    let paper = (a.check_parity && stop_after.is_none() && !archived.is_empty())
        .then(|| PaperParity::new(archived));
    let mut out = ParityOut {
        parity: (a.check_parity && stop_after.is_none())
            .then(|| ParityChecker::new(std::mem::take(&mut live.records))),
        stop_after,
        context: a.context,
        divergent: None,
        stopped_features: None,
        paper,
    };
    let t_loop = Instant::now();
    let paper_stats = if paper_on {
        let inputs = source.max_segments();
        let mut orders = PaperOrders::new(&cfg.trade.paper_exchange, &cfg.decide, inputs, NoOrders);
        run_loop(&mut pipeline, &mut source, &mut link, &mut orders, &mut out)?;
        Some(orders.exchange.stats)
    } else {
        run_loop(
            &mut pipeline,
            &mut source,
            &mut link,
            &mut NoOrders,
            &mut out,
        )?;
        None
    };
    let decide_s = (t_loop.elapsed().as_secs_f64() - source.read_s()).max(0.0);
    source.progress.finish_and_clear();
    read_s += source.read_s();
    if let Some(p) = &mut out.parity {
        p.finish();
        if out.divergent.is_none()
            && let Some(first) = &p.first
        {
            out.divergent = Some(Divergent {
                text: divergence_text(first, &[], &source.cursor.reader),
                features: [0.0; N_FEATURES],
                decision_no: first.decision_no,
            });
        }
    }
    let (parity, mut parity_passed) = parity_json(out.parity.as_ref(), &link);
    if let Some(d) = &out.divergent {
        explain_divergence(a, d, stop_after);
    }
    if let Some(p) = &out.paper {
        if let Some(text) = p.divergence_text() {
            eprintln!("{text}");
        }
        if !p.passed() {
            parity_passed = Some(false);
        }
    }
    let st = pipeline.engine.stats;
    let by_reason: serde_json::Map<String, serde_json::Value> = Reason::ALL
        .iter()
        .map(|r| (r.as_str().to_owned(), json!(st.by_reason[*r as usize])))
        .collect();
    let events = source.events;
    let summary = json!({
        "archive": a.archive,
        "date": a.date,
        "windows": source.cursor.windows.len(),
        "events": events,
        "decisions": st.decisions,
        "fired": st.by_reason[Reason::Fired as usize],
        "by_reason": by_reason,
        "model_decisions": st.model_decisions,
        "feature_vectors": st.feature_vectors,
        "model": model_json(&link),
        "parity": parity,
        "input_errors": pipeline.engine.state.errors,
        "unmapped_instruments": pipeline.unmapped,
        "registration_errors": pipeline.registration_errors,
        "read": source.cursor.reader.stats,
        "read_s": read_s,
        "decide_s": decide_s,
        "decide_events_per_s": events as f64 / decide_s.max(1e-9),
        "decisions_segment": live.segment,
        "decision_epochs": live.epochs,
        "features_at_stop": out.stopped_features.map(|f| f.to_vec()),
        "paper_exchange": paper_stats,
        "paper_parity": out.paper.as_ref().map(PaperParity::json),
        "fills_applied": st.fills_applied,
    });
    Ok(Outcome {
        summary,
        parity_passed,
        events,
        read_s,
        decide_s,
    })
}

fn model_json(link: &Link) -> serde_json::Value {
    match link {
        Link::None(_) => json!({"mode": "none"}),
        Link::Recorded(l) => json!({
            "mode": "recorded",
            "verified": l.scorer.is_some(),
            "recorded_probabilities_matched": l.verified,
            "recorded_probabilities_unmatched": l.unverified,
            "first_unmatched_decision": l.first_unverified,
            "vectors_scored": l.scorer.as_ref().map_or(0, |s| s.scored),
            "decisions_without_archived_record": l.missing,
        }),
        Link::Sync(l) => json!({"mode": "sync", "vectors_scored": l.scorer.scored}),
    }
}

/// The parity section of the summary and the verdict (when parity was checked).
fn parity_json(
    parity: Option<&ParityChecker<Archived>>,
    link: &Link,
) -> (Option<serde_json::Value>, Option<bool>) {
    let Some(p) = parity else {
        return (None, None);
    };
    let model_ok = match link {
        Link::Recorded(l) => l.unverified == 0,
        _ => true,
    };
    let passed = p.passed() && model_ok;
    let (only_live, only_replay) = p.fire_set_differences();
    let json = json!({
        "passed": passed,
        "decisions_live": p.live_decisions(),
        "decisions_replayed": p.replayed,
        "decisions_matched": p.matched,
        "decisions_mismatched": p.mismatched,
        "no_fire_reason_only_mismatches": p.reason_only,
        "decisions_not_archived": p.not_archived,
        "fires_live": p.live_fires(),
        "fires_replayed": p.replay_fires(),
        "fire_sets_equal": p.fire_sets_equal(),
        "fires_only_live": only_live,
        "fires_only_replay": only_replay,
        "model_probabilities_verified": model_ok,
        "first_divergence": p.first.as_ref().map(|d| d.decision_no),
    });
    (Some(json), Some(passed))
}

/// Prints a divergence and what moved between the last agreeing decision and the divergent
/// one (replay side; live feature vectors are not on the bus).
fn explain_divergence(a: &ReplayOptions, d: &Divergent, stop_after: Option<u64>) {
    eprintln!("{}", d.text);
    if d.decision_no <= 1 || stop_after.is_some() {
        return;
    }
    let prev = match replay(a, Some(d.decision_no - 1)) {
        Ok(prev) => prev,
        Err(e) => {
            eprintln!("(could not replay to the previous decision: {e:#})");
            return;
        }
    };
    let Some(f0) = prev
        .summary
        .get("features_at_stop")
        .and_then(|v| v.as_array())
    else {
        return;
    };
    eprintln!(
        "features that moved between decision #{} (agreeing) and #{} (replay side):",
        d.decision_no - 1,
        d.decision_no
    );
    let moved: Vec<(&str, f32, f32)> = CATALOGUE
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let before = f0.get(i).and_then(serde_json::Value::as_f64).unwrap_or(0.0) as f32;
            (spec.name, before, d.features[i])
        })
        .filter(|(_, b, a)| b.to_bits() != a.to_bits())
        .collect();
    for (name, before, after) in moved.iter().take(MAX_FEATURE_LINES) {
        eprintln!("  {name:<32} {before:>16} -> {after:<16}");
    }
    if moved.len() > MAX_FEATURE_LINES {
        eprintln!("  … and {} more", moved.len() - MAX_FEATURE_LINES);
    }
}

fn divergence_text(
    d: &ringbolt_decide::parity::Divergence,
    history: &[Row],
    reader: &ArchiveReader,
) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "PARITY FAILED at decision #{}", d.decision_no);
    let _ = writeln!(
        s,
        "  live:   {}",
        d.live
            .as_ref()
            .map_or_else(|| "(no such live decision)".to_owned(), describe)
    );
    let _ = writeln!(
        s,
        "  replay: {}",
        d.replay
            .as_ref()
            .map_or_else(|| "(replay made no such decision)".to_owned(), describe)
    );
    if !d.fields.is_empty() {
        let _ = writeln!(s, "  differing fields:");
        for f in &d.fields {
            let _ = writeln!(
                s,
                "    {:<22} live={:<22} replay={}",
                f.field, f.live, f.replay
            );
        }
    }
    if !history.is_empty() && d.replay.is_some() {
        let _ = writeln!(
            s,
            "  the {} events up to the trigger (bus order):",
            history.len()
        );
        for row in history {
            let r = &row.record;
            let name = reader
                .instrument(row.segment, r.instrument)
                .map_or_else(|| format!("#{}", r.instrument), |(_, n)| n.to_string());
            let seg = reader
                .segments()
                .get(row.segment as usize)
                .map_or("?", String::as_str);
            let kind = RecordKind::from_u8(r.kind).map_or("?", RecordKind::as_str);
            let venue = Venue::from_u8(r.venue).map_or("?", Venue::as_str);
            let _ = writeln!(
                s,
                "    {seg}#{} seq={} recv_ts={} {kind} {venue} {name} flags={} body={}",
                row.ring,
                r.seq,
                r.recv_ts_ns,
                r.flags,
                ringbolt_bus::columns::body_text(r)
            );
        }
    }
    s
}

/// An archive as the stream of [`ringbolt_decide::synth::SynthItem`]s that `features export` (and the training
/// pipeline) consume: records of the input segments in bus order with their instrument ids
/// mapped exactly as [`Pipeline::process`] maps them, each instrument announced right before
/// its first record (the moment the live process registers it).
pub struct ArchiveItems {
    cursor: WindowCursor,
    keep: Keep,
    seg_k: HashMap<u16, usize>,
    ids: ringbolt_decide::IdMap,
    pending: Option<Record>,
}

impl std::fmt::Debug for ArchiveItems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArchiveItems")
            .field("root", &self.cursor.reader.root())
            .field("windows", &self.cursor.windows.len())
            .field("next_window", &self.cursor.next_window)
            .finish_non_exhaustive()
    }
}

/// Opens `root` as a record stream. `segments`: the input segments (default: every segment
/// except those holding decision records and the archiver's own).
pub fn archive_items(
    root: &std::path::Path,
    date: Option<&str>,
    segments: Option<Vec<String>>,
) -> Result<ArchiveItems> {
    let mut reader =
        ArchiveReader::open(root).with_context(|| format!("opening archive {}", root.display()))?;
    let keep = match segments {
        Some(list) => Keep::new(Some(list), &[]),
        None => {
            let decisions = reader.read_all(&[Table::Decisions], date, &|_| true)?;
            Keep::new(None, &decision_segments(&decisions))
        }
    };
    let cursor = WindowCursor::new(reader, date);
    if cursor.windows.is_empty() {
        bail!(
            "archive {} has no record files{}",
            root.display(),
            date.map_or_else(String::new, |d| format!(" on {d}"))
        );
    }
    Ok(ArchiveItems {
        cursor,
        keep,
        seg_k: HashMap::new(),
        ids: ringbolt_decide::IdMap::new(1),
        pending: None,
    })
}

impl Iterator for ArchiveItems {
    type Item = Result<ringbolt_decide::synth::SynthItem>;

    fn next(&mut self) -> Option<Self::Item> {
        use ringbolt_decide::Mapped;
        use ringbolt_decide::synth::SynthItem;
        if let Some(r) = self.pending.take() {
            return Some(Ok(SynthItem::Record(r)));
        }
        let row = match self.cursor.next_row(&self.keep, |_| {}).transpose()? {
            Ok(row) => row,
            Err(e) => return Some(Err(e)),
        };
        let n = self.seg_k.len();
        let k = *self.seg_k.entry(row.segment).or_insert(n);
        self.ids.grow(k + 1);
        let mut rec = row.record;
        let id = rec.instrument;
        let fresh = match self.ids.map(k, id) {
            Mapped::Known(e) => {
                rec.instrument = e;
                false
            }
            Mapped::New { engine, .. } => {
                rec.instrument = engine;
                true
            }
            // As the pipeline does: a record of a reused slot's older instrument is dropped.
            Mapped::Stale => return self.next(),
            Mapped::Unmapped => return Some(Ok(SynthItem::Record(rec))),
        };
        if fresh && let Some((venue, name)) = self.cursor.reader.instrument(row.segment, id) {
            self.pending = Some(rec);
            return Some(Ok(SynthItem::Instrument {
                id: rec.instrument,
                venue,
                name: name.to_string(),
            }));
        }
        Some(Ok(SynthItem::Record(rec)))
    }
}
