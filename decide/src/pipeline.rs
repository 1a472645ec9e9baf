//! The per-record decision pipeline shared by live `ringbolt trade` and offline `ringbolt replay`:
//! instrument mapping (input segment `k`'s id `i` becomes `k × SEGMENT_ID_SPAN + i` in the
//! engine), lazy instrument registration, the engine update, the model hand-off (feature vector
//! out on the cadence, probability in before a decision) and decision emission.
//!
//! There is exactly one implementation of this pass: live and replay differ only in the
//! [`ModelLink`] they plug in and in where records come from.
//!
//! - live: [`SlotLink`] — feature vectors go to the model thread through a [`FeatureSlot`], the
//!   probability comes back through a [`ProbSlot`] (asynchronous: which probability a decision
//!   used depends on thread timing);
//! - replay with parity: [`RecordedLink`] — the probability each live decision used is taken from
//!   the archived decision record (value and whether the model was used), everything else is
//!   recomputed and compared; optionally the feature vectors are scored again ([`Scorer`]) to check
//!   that every recorded probability is the ensemble's output on one of the replayed vectors;
//! - research replay: [`SyncLink`] — the ensemble is scored synchronously on each vector (a
//!   zero-latency model path).
//!
//! The model probability a decision uses is quantised to the bus's [`PROB_SCALE`] grid by the
//! engine, so the value recorded in the decision record *is* the value used: replaying it gives
//! bit-identical edges.

use ringbolt_bus::{Decision, PROB_SCALE, Record, Venue};

use crate::config::DecideConfig;
use crate::engine::{Engine, OrderIntent};
use crate::features::{N_FEATURES, schema_hash};
use crate::market::InstrumentRole;
use crate::model::{Ensemble, ModelError};
use crate::slot::{FeatureSlot, ModelProb, ProbSlot};

/// Instrument ids of input segment `k` are mapped to `k × SEGMENT_ID_SPAN + id` in the engine.
pub const SEGMENT_ID_SPAN: u32 = 8192;

/// How the reflex pass talks to the model path.
pub trait ModelLink {
    /// The engine asked for a re-score: `x` is the feature vector at event time `ts_ns`.
    fn publish_features(&mut self, x: &[f32; N_FEATURES], ts_ns: i64);
    /// The probability to use for decision number `decision_no` (1-based, the decision record's
    /// `venue_seq`), made at event time `now_ns`.
    fn probability(&mut self, decision_no: u64, now_ns: i64) -> Option<ModelProb>;
}

/// No model: every decision runs on the baseline (or `no_model`).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoModel;

impl ModelLink for NoModel {
    fn publish_features(&mut self, _x: &[f32; N_FEATURES], _ts_ns: i64) {}
    fn probability(&mut self, _decision_no: u64, _now_ns: i64) -> Option<ModelProb> {
        None
    }
}

/// The live link: seqlocks to and from the model thread (never waits).
#[derive(Clone, Copy, Debug)]
pub struct SlotLink<'a> {
    /// Reflex → model.
    pub features: &'a FeatureSlot,
    /// Model → reflex.
    pub probs: &'a ProbSlot,
}

impl ModelLink for SlotLink<'_> {
    fn publish_features(&mut self, x: &[f32; N_FEATURES], ts_ns: i64) {
        self.features.publish(x, ts_ns);
    }
    fn probability(&mut self, _decision_no: u64, _now_ns: i64) -> Option<ModelProb> {
        self.probs.latest()
    }
}

/// Scores feature vectors and remembers the recent scores (time, quantised probability).
#[derive(Debug)]
pub struct Scorer {
    ensemble: Ensemble,
    /// Ring of (feature event time ns, probability in [`PROB_SCALE`] units after the engine's
    /// clamp), newest at `head - 1`.
    recent: Box<[(i64, i64); SCORER_RING]>,
    head: usize,
    /// Vectors scored.
    pub scored: u64,
    /// Scoring errors (the vector is skipped).
    pub errors: u64,
    last: Option<(i64, f64)>,
}

const SCORER_RING: usize = 256;

impl Scorer {
    /// Wraps an ensemble.
    #[must_use]
    pub fn new(ensemble: Ensemble) -> Self {
        Self {
            ensemble,
            recent: Box::new([(i64::MIN, -1); SCORER_RING]),
            head: 0,
            scored: 0,
            errors: 0,
            last: None,
        }
    }

    /// Scores `x` (computed at `ts_ns`) and remembers the result.
    pub fn score(&mut self, x: &[f32; N_FEATURES], ts_ns: i64) -> Result<f64, ModelError> {
        let p = self.ensemble.predict(x);
        let p = match p {
            Ok(p) => p,
            Err(e) => {
                self.errors += 1;
                return Err(e);
            }
        };
        self.scored += 1;
        self.recent[self.head % SCORER_RING] = (ts_ns, crate::engine::model_prob_fixed(p));
        self.head += 1;
        self.last = Some((ts_ns, p));
        Ok(p)
    }

    /// The latest score (feature event time, P(Up)).
    #[must_use]
    pub fn last(&self) -> Option<(i64, f64)> {
        self.last
    }

    /// Whether `prob_fixed` (as recorded) equals a remembered score of a vector computed in
    /// `[now_ns - max_age_ns, now_ns]`; returns the age (ns) of the newest such vector.
    #[must_use]
    pub fn find(&self, prob_fixed: i64, now_ns: i64, max_age_ns: i64) -> Option<i64> {
        let n = self.head.min(SCORER_RING);
        (1..=n)
            .map(|k| self.recent[(self.head - k) % SCORER_RING])
            .filter(|(ts, _)| *ts <= now_ns && now_ns - *ts <= max_age_ns)
            .find(|(_, p)| *p == prob_fixed)
            .map(|(ts, _)| now_ns - ts)
    }
}

/// Research replay: the model is scored synchronously on every vector the engine publishes, so
/// the next decision sees it at once (a zero-latency model path).
#[derive(Debug)]
pub struct SyncLink {
    /// The scorer.
    pub scorer: Scorer,
}

impl ModelLink for SyncLink {
    fn publish_features(&mut self, x: &[f32; N_FEATURES], ts_ns: i64) {
        let _ = self.scorer.score(x, ts_ns);
    }
    fn probability(&mut self, _decision_no: u64, _now_ns: i64) -> Option<ModelProb> {
        let (ts, p) = self.scorer.last()?;
        Some(ModelProb {
            p_up: p,
            features_ts_ns: ts,
            schema_hash: schema_hash(),
            features_version: self.scorer.scored,
        })
    }
}

/// What the live process recorded about the model for one decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordedProb {
    /// `Decision.feature_schema_hash` (0 = baseline / no model).
    pub schema_hash: u32,
    /// `Decision.probability` ([`PROB_SCALE`]).
    pub probability: i64,
}

impl RecordedProb {
    /// From an archived decision record.
    #[must_use]
    pub fn of(rec: &Record) -> Option<Self> {
        let d = rec.body_as::<Decision>()?;
        Some(Self {
            schema_hash: d.feature_schema_hash,
            probability: d.probability,
        })
    }
}

/// Parity replay: each decision uses the probability the live decision recorded.
#[derive(Debug)]
pub struct RecordedLink {
    /// Recorded model use by decision number (index = `venue_seq - 1`); `None` = not archived.
    pub by_decision: Vec<Option<RecordedProb>>,
    /// Optional re-scoring of the replayed vectors to verify the recorded probabilities.
    pub scorer: Option<Scorer>,
    /// `model_max_age_ms` in ns (the search window of the verification).
    pub max_age_ns: i64,
    /// Model-used decisions whose probability matched a replayed score.
    pub verified: u64,
    /// Model-used decisions whose probability matched none (first decision number kept).
    pub unverified: u64,
    /// The first unverified decision number.
    pub first_unverified: Option<u64>,
    /// Decisions replayed for which no archived decision exists.
    pub missing: u64,
}

impl RecordedLink {
    /// A link over `by_decision`, verifying with `scorer` when given.
    #[must_use]
    pub fn new(
        by_decision: Vec<Option<RecordedProb>>,
        scorer: Option<Scorer>,
        cfg: &DecideConfig,
    ) -> Self {
        Self {
            by_decision,
            scorer,
            max_age_ns: cfg.model_max_age_ms as i64 * 1_000_000,
            verified: 0,
            unverified: 0,
            first_unverified: None,
            missing: 0,
        }
    }
}

impl ModelLink for RecordedLink {
    fn publish_features(&mut self, x: &[f32; N_FEATURES], ts_ns: i64) {
        if let Some(s) = &mut self.scorer {
            let _ = s.score(x, ts_ns);
        }
    }

    fn probability(&mut self, decision_no: u64, now_ns: i64) -> Option<ModelProb> {
        let idx = usize::try_from(decision_no).ok()?.checked_sub(1)?;
        let Some(Some(rec)) = self.by_decision.get(idx).copied() else {
            self.missing += 1;
            return None;
        };
        if rec.schema_hash == 0 {
            return None;
        }
        if let Some(s) = &self.scorer {
            if s.find(rec.probability, now_ns, self.max_age_ns).is_some() {
                self.verified += 1;
            } else {
                self.unverified += 1;
                self.first_unverified.get_or_insert(decision_no);
            }
        }
        Some(ModelProb {
            p_up: rec.probability as f64 / PROB_SCALE as f64,
            features_ts_ns: now_ns,
            schema_hash: rec.schema_hash,
            features_version: 0,
        })
    }
}

/// The reflex pass over records of one or more input segments.
#[derive(Debug)]
pub struct Pipeline {
    /// The decision core.
    pub engine: Engine,
    looked_up: Vec<bool>,
    has_model: bool,
    /// Records whose instrument id is ≥ [`SEGMENT_ID_SPAN`] (not mapped, applied as is).
    pub unmapped: u64,
    /// Instruments the engine refused to register (bad name, capacity).
    pub registration_errors: u64,
    /// The order intent of the last decision, when it fired (engine id space); the caller
    /// (exec) takes it.
    pub last_intent: Option<OrderIntent>,
}

impl Pipeline {
    /// A pipeline for `segments` input segments; `has_model` = a model path exists (feature
    /// vectors are computed on the cadence and handed to the [`ModelLink`]).
    #[must_use]
    pub fn new(cfg: DecideConfig, segments: usize, has_model: bool) -> Self {
        Self {
            engine: Engine::new(cfg),
            looked_up: vec![false; segments.max(1) * SEGMENT_ID_SPAN as usize],
            has_model,
            unmapped: 0,
            registration_errors: 0,
            last_intent: None,
        }
    }

    /// Whether feature vectors are handed to a model path.
    #[must_use]
    pub fn has_model(&self) -> bool {
        self.has_model
    }

    /// One of our own records, as an order sink emitted it ([`ringbolt_bus::Fill`],
    /// [`ringbolt_bus::OrderTransition`]): positions and reservations follow fills only
    /// ([`Engine::own_record`]). The trade loop feeds every record a sink flushes here before the
    /// next input record, live and in replay alike.
    #[inline]
    pub fn own_record(&mut self, rec: &Record) {
        self.engine.own_record(rec);
    }

    /// One reflex pass: maps `rec.instrument` of input segment `segment` into the engine's id
    /// space (registering it through `names` the first time it is seen), applies the record,
    /// publishes the feature vector when the engine wants a re-score, and returns the decision
    /// record when the record was relevant (instrument back in the segment's id space;
    /// `publish_ts_ns` is the caller's).
    ///
    /// `names(id)` resolves an id of the segment's instrument table; it is called at most once
    /// per id (off the hot path).
    ///
    /// Contract: `segment` is below the `segments` given to [`Pipeline::new`]; records may arrive
    /// out of time order across segments, and the engine's event clock never runs backwards
    /// (an older timestamp does not rewind it); a returned decision carries an instrument id in
    /// the segment's own id space (below [`SEGMENT_ID_SPAN`]).
    ///
    /// # Panics
    /// In debug builds, when `segment` is out of range or a postcondition above breaks.
    pub fn process<L: ModelLink>(
        &mut self,
        segment: usize,
        rec: &mut Record,
        names: impl FnOnce(u32) -> Option<(Venue, String)>,
        link: &mut L,
    ) -> Option<Record> {
        debug_assert!(
            (segment + 1) * SEGMENT_ID_SPAN as usize <= self.looked_up.len(),
            "input segment {segment} out of range"
        );
        let clock_before = self.engine.state.now_ns;
        if rec.instrument < SEGMENT_ID_SPAN {
            let id = segment as u32 * SEGMENT_ID_SPAN + rec.instrument;
            if let Some(seen) = self.looked_up.get_mut(id as usize)
                && !*seen
                && self.engine.state.role(id) == InstrumentRole::Unknown
            {
                *seen = true;
                if let Some((venue, name)) = names(rec.instrument)
                    && self.engine.register_instrument(id, venue, &name).is_err()
                {
                    self.registration_errors += 1;
                }
            }
            rec.instrument = id;
        } else {
            self.unmapped += 1;
        }
        let (update, want_score) = self.engine.update(rec);
        debug_assert!(
            self.engine.state.now_ns >= clock_before,
            "event clock ran backwards"
        );
        if want_score && self.has_model {
            let ts = self.engine.state.now_ns;
            let x = self.engine.compute_features();
            link.publish_features(x, ts);
        }
        if !update.relevant() {
            return None;
        }
        let model = link.probability(self.engine.stats.decisions + 1, self.engine.state.now_ns);
        let out = self.engine.decide_after(rec, update, model);
        self.last_intent = out.intent;
        let mut d = out.decision?;
        d.instrument %= SEGMENT_ID_SPAN;
        debug_assert!(d.instrument < SEGMENT_ID_SPAN);
        Some(d)
    }
}
