//! `ringbolt trade --config ringbolt.toml`: the decision process.
//!
//! Two threads: the **reflex** thread runs [`crate::reflex::run`] over a [`BusSource`] (every
//! ring of the input segments), publishes a decision record for every relevant event on the
//! output ring ([`BusOut`]) and, with `[exec]`, hands fired intents to the order client
//! ([`ExecOrders`]: paper unless `--live`); on the model cadence it hands the feature vector to
//! the **model** thread through a seqlock; the model thread scores the ensemble and publishes the
//! probability through another seqlock. Neither waits for the other.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ringbolt_bus::{
    Consumer, Doorbells, MarketParamsBody, Poll, Publisher, Record, RecordKind, RingWriter,
    Segment, SegmentConfig, Start, Venue,
};
use ringbolt_decide::engine::{OrderIntent, Reason};
use ringbolt_decide::features::N_FEATURES;
use ringbolt_decide::model::Ensemble;
use ringbolt_decide::pipeline::{NoModel, Pipeline, SlotLink};
use ringbolt_decide::schema_hash;
use ringbolt_decide::slot::{FeatureSlot, ModelProb, ProbSlot};
use ringbolt_decide::{IdMap, Mapped, SEGMENT_ID_SPAN};
use ringbolt_net::affinity::pin;
use ringbolt_service::Liveness;
use ringbolt_telemetry::stages::trade::{BUS_TO_DECISION, TABLE};
use ringbolt_telemetry::{
    LatencyHistogram, Percentiles, StageRecorder, Telemetry, latency_histogram, now_ns, stage,
};
use serde_json::json;

use crate::config::{StartAt, TradeConfig, TradeSections, load_ensemble};
use crate::exec::Exec;
use crate::paper::PaperOrders;
use crate::reflex::{self, DecisionSink, Next, NoOrders, OrderSink, RecordSource};

/// Sweeps over the consumers between liveness beats and stop-flag checks.
const BEAT_EVERY: u32 = 1024;
/// Sweeps over the consumers between two polls of the order connection under load.
const SERVICE_EVERY: u32 = 64;
/// Empty sweeps spun before the reflex thread (or empty checks before the model thread) sleeps.
const IDLE_SPINS: u32 = 64;
/// Longest sleep of the reflex thread on the input doorbells: bounds how late an idle loop
/// looks at the order connection (responses, user channel), the stop flag and its liveness.
const IDLE_SLEEP_MAX: Duration = Duration::from_millis(1);
/// The idle sleep's bound while an order connection awaits an answer: the answer arrives on
/// exec's socket, not the bus doorbell, so a full idle sleep would add up to
/// [`IDLE_SLEEP_MAX`] to every order's round trip.
const ANSWER_SLEEP_MAX: Duration = Duration::from_micros(20);
/// Longest sleep of the model thread on the feature slot (bounds how late it sees the stop flag).
const MODEL_SLEEP_MAX: Duration = Duration::from_millis(100);

/// Whether the run trades live: `--live` (`live_flag`) and `[trade] paper = false` must agree.
fn live_mode(live_flag: bool, cfg: &TradeSections) -> Result<bool> {
    match (live_flag, cfg.trade.paper) {
        (false, true) => Ok(false),
        (true, false) if cfg.exec.enabled => Ok(true),
        (true, false) => bail!("--live needs [exec] enabled = true"),
        (false, false) => {
            bail!("[trade] paper = false needs the --live flag too (paper mode is the default)")
        }
        (true, true) => bail!("--live given but [trade] paper = true: set paper = false"),
    }
}

/// The live record source: every ring of the input segments, polled round-robin (one record
/// per ring per sweep); when a sweep finds nothing it spins a few sweeps, and on until
/// `idle_spin_us` have passed since the last record, then sleeps on the input segments'
/// doorbells (futex, bounded) — and checks the process's stop conditions.
#[derive(Debug)]
pub struct BusSource {
    segments: Vec<Arc<Segment>>,
    consumers: Vec<(usize, Consumer)>,
    /// One futex doorbell per input segment: the idle loop sleeps on all of them at once.
    bells: Doorbells,
    cursor: usize,
    sweeps: u32,
    got: bool,
    serviced: bool,
    idle: u32,
    /// An order connection awaits an answer: idle sleeps are bounded by [`ANSWER_SLEEP_MAX`].
    answer_due: bool,
    /// Records lost to overruns and producer restarts.
    pub lost: u64,
    /// Bus publish stamp of the last record returned (a decision's trigger).
    last_publish_ns: i64,
    liveness: Arc<Liveness>,
    started: Instant,
    last_data: Instant,
    /// Keep polling this long after the last record before sleeping (`[trade] idle_spin_us`).
    spin_after_data: Duration,
    seen_data: bool,
    exit_when_idle: Option<Duration>,
    max_runtime: Option<Duration>,
}

impl BusSource {
    /// Opens every input segment of `tc` (waiting up to `open_timeout_s`) and a consumer on each
    /// of their rings; `liveness` is beaten by the loop.
    ///
    /// # Errors
    /// A segment that does not appear in time, or a consumer that cannot register.
    pub fn open(tc: &TradeConfig, liveness: Arc<Liveness>) -> Result<Self> {
        if tc.inputs.is_empty() {
            bail!("[trade] inputs is empty");
        }
        let mut segments = Vec::new();
        for name in &tc.inputs {
            let seg = Segment::open_wait(name, Duration::from_secs(tc.open_timeout_s))
                .with_context(|| format!("opening input segment {name}"))?;
            let entries = seg.geometry().instrument_capacity;
            if entries > SEGMENT_ID_SPAN as usize {
                bail!(
                    "input segment {name} has {entries} instrument entries; trade maps at most \
                     {SEGMENT_ID_SPAN} per segment: set [feeds] instrument_capacity <= {SEGMENT_ID_SPAN}"
                );
            }
            segments.push(seg);
        }
        let start = match tc.start {
            StartAt::Live => Start::LiveEdge,
            StartAt::Oldest => Start::Oldest,
        };
        let mut consumers = Vec::new();
        for (k, seg) in segments.iter().enumerate() {
            for ring in 0..seg.geometry().ring_count {
                consumers.push((k, Consumer::new(seg, ring, start)?));
            }
        }
        let bells = Doorbells::new(consumers.iter().map(|(_, c)| c));
        Ok(Self {
            segments,
            consumers,
            bells,
            cursor: 0,
            sweeps: 0,
            got: false,
            serviced: false,
            idle: 0,
            answer_due: false,
            lost: 0,
            last_publish_ns: 0,
            liveness,
            started: Instant::now(),
            last_data: Instant::now(),
            spin_after_data: Duration::from_micros(u64::from(tc.idle_spin_us)),
            seen_data: false,
            exit_when_idle: tc.exit_when_idle_ms.map(Duration::from_millis),
            max_runtime: tc.max_runtime_s.map(Duration::from_secs),
        })
    }

    /// Number of input segments.
    #[must_use]
    pub fn inputs(&self) -> usize {
        self.segments.len()
    }

    /// A sweep found nothing: beat, check the stop conditions, back off.
    fn idle(&mut self) -> Next {
        self.idle = self.idle.saturating_add(1);
        self.liveness.beat();
        if STOP.load(Ordering::Relaxed)
            || self
                .exit_when_idle
                .is_some_and(|d| self.seen_data && self.last_data.elapsed() >= d)
            || self
                .max_runtime
                .is_some_and(|d| self.started.elapsed() >= d)
        {
            return Next::End;
        }
        if self.idle < IDLE_SPINS || self.last_data.elapsed() < self.spin_after_data {
            std::hint::spin_loop();
        } else {
            let consumers = &self.consumers;
            let bound = if self.answer_due {
                ANSWER_SLEEP_MAX
            } else {
                IDLE_SLEEP_MAX
            };
            self.bells
                .sleep(bound, || consumers.iter().any(|(_, c)| c.pending()));
        }
        Next::Idle
    }

    /// Idle sleeps taken on the input doorbells, and sleeps skipped because the re-check found
    /// data.
    #[must_use]
    pub fn sleeps(&self) -> (u64, u64) {
        (self.bells.sleeps, self.bells.rechecks_hit)
    }
}

impl RecordSource for BusSource {
    fn next(&mut self, rec: &mut Record) -> Result<Next> {
        loop {
            if self.cursor == 0 && !self.serviced {
                self.sweeps = self.sweeps.wrapping_add(1);
                if self.sweeps.is_multiple_of(BEAT_EVERY) {
                    self.liveness.beat();
                    if STOP.load(Ordering::Relaxed) {
                        return Ok(Next::End);
                    }
                }
                if self.sweeps.is_multiple_of(SERVICE_EVERY) {
                    self.serviced = true;
                    return Ok(Next::Service);
                }
            }
            self.serviced = false;
            while let Some((k, consumer)) = self.consumers.get_mut(self.cursor) {
                self.cursor += 1;
                match consumer.poll(rec) {
                    Poll::Ready => {
                        self.got = true;
                        self.last_publish_ns = rec.publish_ts_ns;
                        return Ok(Next::Record(*k));
                    }
                    Poll::Empty => {}
                    Poll::Lost { count } => self.lost += count,
                    Poll::EpochChanged { lost, .. } => self.lost += lost,
                    Poll::Retired => {
                        bail!("input segment was retired (recreated with another layout)")
                    }
                }
            }
            self.cursor = 0;
            if !std::mem::take(&mut self.got) {
                return Ok(self.idle());
            }
            self.seen_data = true;
            self.last_data = Instant::now();
            self.idle = 0;
        }
    }

    fn instrument(&self, k: usize, id: u32) -> Option<(Venue, String)> {
        self.segments.get(k)?.instrument(id)
    }

    #[inline]
    fn answer_due(&mut self, due: bool) {
        self.answer_due = due;
    }
}

/// The live decision sink: stamps and publishes every decision on the output ring (order
/// transitions follow on the same ring), measures the reflex pass and records the stage
/// `bus_to_decision` (the trigger's bus publish → the decision's).
#[derive(Debug)]
pub struct BusOut {
    writer: RingWriter,
    /// Decisions published.
    pub published: u64,
    /// Record in → decision published, ns.
    pub reflex: LatencyHistogram,
    recorder: StageRecorder,
}

impl DecisionSink<BusSource> for BusOut {
    type Mark = Instant;

    #[inline]
    fn mark(&self) -> Instant {
        Instant::now()
    }

    #[inline]
    fn decision(
        &mut self,
        _k: usize,
        d: &mut Record,
        mark: Instant,
        _pipeline: &Pipeline,
        source: &BusSource,
    ) -> std::ops::ControlFlow<()> {
        d.publish_ts_ns = now_ns();
        self.writer.publish(d);
        self.recorder
            .record_between(BUS_TO_DECISION, source.last_publish_ns, d.publish_ts_ns);
        // Decisions are frequent; a quiet spell only delays this recorder's interval.
        self.recorder.maybe_rotate();
        self.published += 1;
        self.reflex
            .saturating_record(mark.elapsed().as_nanos() as u64);
        std::ops::ControlFlow::Continue(())
    }

    #[inline]
    fn transition(&mut self, r: &Record) {
        self.writer.publish(r);
    }
}

/// The live and paper order sink: exec on the reflex thread. A Polymarket token's first sight
/// builds its window's pre-signed pool (off the hot path); a fired intent takes its slot.
#[derive(Debug)]
pub struct ExecOrders {
    exec: Exec,
    /// Bus id → engine id, generation-checked (the pipeline's mapping, kept beside it).
    ids: IdMap,
}

impl ExecOrders {
    /// Exec over `inputs` input segments.
    #[must_use]
    pub fn new(exec: Exec, inputs: usize) -> Self {
        Self {
            exec,
            ids: IdMap::new(inputs),
        }
    }
}

impl OrderSink for ExecOrders {
    #[inline]
    fn observe<S: RecordSource>(&mut self, k: usize, rec: &Record, source: &S) {
        if rec.venue != Venue::Polymarket as u8 {
            return;
        }
        let id = match self.ids.map(k, rec.instrument) {
            Mapped::Known(id) => id,
            Mapped::New { engine, .. } => {
                // First sight of this token (off the hot path): build its window's pool.
                if let Some((venue, name)) = source.instrument(k, rec.instrument) {
                    self.exec
                        .on_instrument(engine, rec.instrument, venue, &name);
                }
                engine
            }
            Mapped::Stale | Mapped::Unmapped => return,
        };
        if rec.kind == RecordKind::MarketParams as u8
            && let Some(body) = rec.body_as::<MarketParamsBody>()
        {
            // Cold: a few per window (Gamma at discovery, `tick_size_change`).
            self.exec.on_market_params(id, &body);
        }
    }

    #[inline]
    fn order(&mut self, k: usize, decision: &Record, intent: Option<&OrderIntent>) {
        if let Some(engine) = self.ids.engine_id(k, decision.instrument) {
            self.exec.track(decision, engine);
        }
        if let Some(intent) = intent {
            self.exec.submit(intent);
        }
    }

    fn poll(&mut self) {
        self.exec.poll();
    }

    #[inline]
    fn awaiting(&self) -> bool {
        self.exec.awaiting()
    }

    #[inline]
    fn flush(&mut self, publish: impl FnMut(&Record)) {
        self.exec.flush(publish);
    }
}

/// The model thread and the slots it shares with the reflex thread.
struct ModelThread {
    features: Arc<FeatureSlot>,
    probs: Arc<ProbSlot>,
    stop: Arc<AtomicBool>,
    scores: Arc<AtomicU64>,
    handle: JoinHandle<Result<LatencyHistogram>>,
}

impl ModelThread {
    /// Starts the thread scoring `ens` on every new feature vector, pinned to `core`.
    fn spawn(mut ens: Ensemble, core: Option<usize>) -> Result<Self> {
        let features = Arc::new(FeatureSlot::default());
        let probs = Arc::new(ProbSlot::default());
        let stop = Arc::new(AtomicBool::new(false));
        let scores = Arc::new(AtomicU64::new(0));
        let (f, p, st, sc) = (
            Arc::clone(&features),
            Arc::clone(&probs),
            Arc::clone(&stop),
            Arc::clone(&scores),
        );
        let handle = std::thread::Builder::new()
            .name("decide-model".into())
            .spawn(move || -> Result<LatencyHistogram> {
                pin(core);
                let mut hist = latency_histogram();
                let mut x = [0f32; N_FEATURES];
                let mut seen = 0u64;
                let hash = schema_hash();
                let mut idle = 0u32;
                while !st.load(Ordering::Relaxed) {
                    if f.version() == seen {
                        idle = idle.saturating_add(1);
                        if idle < IDLE_SPINS {
                            std::hint::spin_loop();
                        } else {
                            // Asleep until the reflex thread publishes features (or the stop
                            // flag is due a look).
                            f.wait_newer(seen, MODEL_SLEEP_MAX);
                        }
                        continue;
                    }
                    idle = 0;
                    let Some((version, ts)) = f.read(&mut x) else {
                        continue;
                    };
                    seen = version;
                    let t0 = Instant::now();
                    let prob = ens.predict(&x)?;
                    hist.saturating_record(t0.elapsed().as_nanos() as u64);
                    p.publish(&ModelProb {
                        p_up: prob,
                        features_ts_ns: ts,
                        schema_hash: hash,
                        features_version: version,
                    });
                    sc.fetch_add(1, Ordering::Relaxed);
                }
                Ok(hist)
            })?;
        Ok(Self {
            features,
            probs,
            stop,
            scores,
            handle,
        })
    }

    /// Stops and joins the thread; returns its score latencies and the number of scores.
    fn finish(self) -> Result<(LatencyHistogram, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        let hist = self
            .handle
            .join()
            .map_err(|_| anyhow::anyhow!("model thread panicked"))??;
        Ok((hist, self.scores.load(Ordering::Relaxed)))
    }
}

/// Runs the loop with the model link the process has (monomorphised per link and order sink).
fn run_loop<O: OrderSink>(
    pipeline: &mut Pipeline,
    source: &mut BusSource,
    orders: &mut O,
    out: &mut BusOut,
    model: Option<&ModelThread>,
) -> Result<()> {
    match model {
        Some(m) => {
            let mut slots = SlotLink {
                features: &m.features,
                probs: &m.probs,
            };
            reflex::run(pipeline, source, &mut slots, orders, out)
        }
        None => reflex::run(pipeline, source, &mut NoModel, orders, out),
    }
}

/// Health, metrics and watchdog threads (spawned while the main thread is still on the
/// housekeeping cores); the watchdog is fed by the reflex loop, so a wedged loop stops it.
fn start_endpoints(
    tc: &TradeConfig,
    liveness: &Arc<Liveness>,
    telemetry: &Telemetry,
) -> Result<()> {
    if let Some(addr) = tc.health_addr {
        let bound = ringbolt_service::spawn_health_endpoint(addr, liveness)?;
        tracing::info!(%bound, "health endpoint listening");
    }
    if let Some(addr) = tc.metrics_addr {
        let stages = telemetry.metrics();
        let bound = ringbolt_service::spawn_metrics_endpoint(addr, move || stages.render())?;
        tracing::info!(%bound, "metrics endpoint listening");
    }
    ringbolt_service::spawn_watchdog(liveness)
}

/// Start-up check `model`: the configured evaluator's ensemble loads from the model directory
/// (`[trade] model_dir`, else the release's `models/`) and was trained on this build's feature
/// schema (`ModelDir::load` refuses another hash).
fn load_model_checked(tc: &TradeConfig) -> Result<Option<Ensemble>> {
    use ringbolt_decide::model::{default_model_dir, ort_eval};
    if let Some(lib) = &tc.ort_library {
        ort_eval::use_library(lib);
    }
    let loaded = load_ensemble(tc.evaluator, tc.model_dir.as_deref());
    let outcome = match &loaded {
        Ok(None) => Ok("baseline evaluator: no model".to_owned()),
        Ok(Some(_)) => {
            let dir = tc.model_dir.clone().map_or_else(
                || default_model_dir().map_or_else(|e| e.to_string(), |d| d.display().to_string()),
                |d| d.display().to_string(),
            );
            Ok(format!(
                "{:?} ensemble loaded from {dir}; feature schema {:#010x} matches",
                tc.evaluator,
                schema_hash()
            ))
        }
        Err(e) => Err(format!("{e:#}")),
    };
    ringbolt_service::startup::require("model", outcome)?;
    loaded
}

/// Start-up check `threads`: the reflex loop (this, the main thread) on its core, the model
/// thread on its core, every other thread on `$RINGBOLT_HOUSEKEEPING_CPUS`.
fn verify_placement(cfg: &TradeSections, model: bool) -> Result<()> {
    use ringbolt_service::startup::{Rule, Who, require, verify_placement};
    let rules = [
        Rule {
            role: "reflex",
            who: Who::Main,
            cpus: cfg.reflex_core().map(|c| vec![c]),
            min_threads: 1,
        },
        Rule {
            role: "model",
            who: Who::Named("decide-model"),
            cpus: cfg.model_core().map(|c| vec![c]),
            min_threads: usize::from(model),
        },
    ];
    let housekeeping = ringbolt_net::affinity::env_cpus("RINGBOLT_HOUSEKEEPING_CPUS");
    require(
        "threads",
        verify_placement(&rules, housekeeping.as_deref(), Duration::from_secs(3)),
    )
}

/// Runs the decision process with the trade sections of `ringbolt.toml` (loaded by the caller
/// through `ringbolt_config::load`) until SIGINT/SIGTERM or a configured stop; `live_flag` is the
/// operator's `--live`. Returns the JSON summary.
///
/// # Errors
/// Configuration, model, bus or exec start-up errors, and a failed loop or model thread.
pub fn run(cfg: &TradeSections, live_flag: bool) -> Result<serde_json::Value> {
    let live = live_mode(live_flag, cfg)?;
    cfg.trade.paper_exchange.validate()?;
    install_stop_handler();
    // Threads spawned from here on inherit the housekeeping cores; hot ones then pin themselves.
    ringbolt_net::affinity::pin_env_set("RINGBOLT_HOUSEKEEPING_CPUS");
    let tc = cfg.trade.clone();
    // Load the model first: a missing ONNX Runtime is a start-up error naming the fix.
    let ensemble = load_model_checked(&tc)?;
    let liveness = Liveness::new(Duration::from_secs(5));
    let mut source = BusSource::open(&tc, Arc::clone(&liveness))?;
    let output = Publisher::create(
        &tc.output,
        SegmentConfig {
            rings: 1,
            capacity: tc.output_capacity,
            instrument_capacity: 16,
        },
    )
    .with_context(|| format!("creating output segment {}", tc.output))?;
    let telemetry = Telemetry::start(TABLE, tc.hlog_settings())?;
    if let Some(file) = telemetry.first_file() {
        tracing::info!(file = %file.display(), "latency dumps");
    }
    let mut out = BusOut {
        writer: output.writer(0)?,
        published: 0,
        reflex: latency_histogram(),
        recorder: telemetry.recorder(),
    };
    // Exec connects before the loop starts (API key derivation, warm HTTP/2 connection).
    let exec = if cfg.exec.enabled {
        let mut exec = Exec::start(&cfg.exec, live)?;
        exec.set_recorder(telemetry.recorder());
        Some(ExecOrders::new(exec, source.inputs()))
    } else {
        None
    };
    let model = ensemble
        .map(|ens| ModelThread::spawn(ens, cfg.model_core()))
        .transpose()?;
    start_endpoints(&tc, &liveness, &telemetry)?;
    pin(cfg.reflex_core());
    let reflex_sched = ringbolt_net::affinity::enter_realtime(
        "reflex",
        ringbolt_net::affinity::rt_priority_or_env(tc.reflex_rt_priority)
            .map_err(|e| anyhow::anyhow!("[trade] reflex_rt_priority: {e}"))?,
    );
    tracing::info!(sched = %reflex_sched, "reflex thread scheduling class");
    verify_placement(cfg, model.is_some())?;
    liveness.set_ready()?;
    let mut pipeline = Pipeline::new(cfg.decide.clone(), source.inputs(), model.is_some());
    let paper = (!live && tc.paper_exchange.enabled).then_some(&tc.paper_exchange);
    let (looped, exec, paper_summary) = run_orders(
        &mut pipeline,
        &mut source,
        exec,
        paper,
        &mut out,
        model.as_ref(),
    );
    let exec_summary = exec.map(|orders| {
        let s = orders.exec.summary();
        orders.exec.shutdown(|r| {
            out.writer.publish(r);
        });
        s
    });
    let model = model.map(ModelThread::finish).transpose()?;
    // Exec's recorder went with exec; the loop's hands its last set over, then the dump ends.
    out.recorder.flush();
    if let Err(error) = telemetry.finish() {
        tracing::warn!(%error, "writing the last latency interval failed");
    }
    looped?;
    let mut summary = summary(&tc, &pipeline, &source, &out, model.as_ref(), exec_summary);
    summary["reflex_sched"] = json!(reflex_sched);
    summary["paper_exchange"] = paper_summary.unwrap_or(serde_json::Value::Null);
    Ok(summary)
}

/// Runs the loop with the order sinks of the mode: the paper exchange (paper mode) around exec's
/// paper wire path (when `[exec]` is on), exec alone (live), or none. Hands exec back for its
/// shutdown, with the paper exchange's summary.
fn run_orders(
    pipeline: &mut Pipeline,
    source: &mut BusSource,
    exec: Option<ExecOrders>,
    paper: Option<&ringbolt_paper::PaperConfig>,
    out: &mut BusOut,
    model: Option<&ModelThread>,
) -> (Result<()>, Option<ExecOrders>, Option<serde_json::Value>) {
    let inputs = source.inputs();
    let decide = pipeline.engine.config().clone();
    match (exec, paper) {
        (Some(exec), Some(cfg)) => {
            let mut p = PaperOrders::new(cfg, &decide, inputs, exec);
            let r = run_loop(pipeline, source, &mut p, out, model);
            let s = json!(p.exchange.stats);
            (r, Some(p.wire), Some(s))
        }
        (None, Some(cfg)) => {
            let mut p = PaperOrders::new(cfg, &decide, inputs, NoOrders);
            let r = run_loop(pipeline, source, &mut p, out, model);
            (r, None, Some(json!(p.exchange.stats)))
        }
        (Some(mut exec), None) => {
            let r = run_loop(pipeline, source, &mut exec, out, model);
            (r, Some(exec), None)
        }
        (None, None) => (
            run_loop(pipeline, source, &mut NoOrders, out, model),
            None,
            None,
        ),
    }
}

/// The JSON summary printed when the process stops.
fn summary(
    tc: &TradeConfig,
    pipeline: &Pipeline,
    source: &BusSource,
    out: &BusOut,
    model: Option<&(LatencyHistogram, u64)>,
    exec: Option<serde_json::Value>,
) -> serde_json::Value {
    let st = pipeline.engine.stats;
    let by_reason: serde_json::Map<String, serde_json::Value> = Reason::ALL
        .iter()
        .map(|r| (r.as_str().to_owned(), json!(st.by_reason[*r as usize])))
        .collect();
    let mut summary = json!({
        "records": st.records,
        "decisions_published": out.published,
        "fired": st.by_reason[Reason::Fired as usize],
        "by_reason": by_reason,
        "model_decisions": st.model_decisions,
        "model_scores": model.map_or(0, |m| m.1),
        "evaluator": tc.evaluator,
        "lost_records": source.lost,
        "idle_sleeps": source.sleeps().0,
        "idle_rechecks_hit": source.sleeps().1,
        "unmapped_instruments": pipeline.unmapped,
        "registration_errors": pipeline.registration_errors,
        "input_errors": pipeline.engine.state.errors,
        "output_segment": tc.output,
        "exec": exec,
    });
    summary[stage::REFLEX_PASS] = json!(Percentiles::of(&out.reflex));
    summary[stage::MODEL_SCORE] = json!(model.map(|m| Percentiles::of(&m.0)));
    summary
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::reflex::{Next, RecordSource};

    /// A `BusSource` over a fresh segment reads `n` records that another thread publishes `gap`
    /// apart; returns the doorbell sleeps the source took.
    fn sleeps_with(idle_spin_us: u32, n: u32, gap: Duration) -> u64 {
        let name = format!("rb-idle-spin-{}-{idle_spin_us}", std::process::id());
        let config = SegmentConfig {
            rings: 1,
            capacity: 1024,
            instrument_capacity: 4,
        };
        let publisher = Publisher::create(&name, config).unwrap();
        let tc = TradeConfig {
            inputs: vec![name.clone()],
            idle_spin_us,
            exit_when_idle_ms: Some(50),
            ..TradeConfig::default()
        };
        let mut source = BusSource::open(&tc, Liveness::new(Duration::from_secs(5))).unwrap();
        let mut writer = publisher.writer(0).unwrap();
        let got = std::thread::scope(|s| {
            s.spawn(move || {
                for _ in 0..n {
                    std::thread::sleep(gap);
                    writer.publish(&Record::zeroed());
                }
            });
            let (mut rec, mut got) = (Record::zeroed(), 0);
            loop {
                match source.next(&mut rec).unwrap() {
                    Next::Record(_) => got += 1,
                    Next::End => break got,
                    Next::Idle | Next::Service => {}
                }
            }
        });
        let _ = Segment::unlink(&name);
        assert_eq!(got, n, "every record read");
        source.sleeps().0
    }

    /// Records 2 ms apart: without the spin after data the reflex thread sleeps in every gap;
    /// with a spin longer than the gaps it never sleeps until the inputs go quiet.
    #[test]
    fn the_spin_after_a_record_keeps_a_burst_awake() {
        let (n, gap) = (40, Duration::from_millis(2));
        let plain = sleeps_with(0, n, gap);
        let spinning = sleeps_with(100_000, n, gap);
        assert!(plain >= u64::from(n), "{plain} sleeps without the spin");
        assert!(
            spinning < u64::from(n / 4),
            "{spinning} sleeps with a 100 ms spin after data"
        );
    }
}
