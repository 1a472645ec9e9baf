//! The per-record decision pipeline shared by live `ringbolt trade` and offline `ringbolt replay`:
//! instrument mapping (input segment `k`'s bus id becomes an engine id through the
//! generation-checked [`IdMap`]), lazy instrument registration, the engine update, the model hand-off (feature vector
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
use crate::ids::{IdMap, Mapped};
use crate::market::InstrumentRole;
use crate::model::{Ensemble, ModelError};
use crate::slot::{FeatureSlot, ModelProb, ProbSlot};

pub use crate::ids::SEGMENT_ID_SPAN;

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
    ids: IdMap,
    has_model: bool,
    /// Records whose instrument slot is ≥ [`SEGMENT_ID_SPAN`] (not mapped, applied as is).
    pub unmapped: u64,
    /// Records of an instrument whose bus slot has since been reused (older generation than the
    /// slot's): skipped, never attributed to the slot's current instrument.
    pub stale_instruments: u64,
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
            ids: IdMap::new(segments),
            has_model,
            unmapped: 0,
            stale_instruments: 0,
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
    /// record when the record was relevant (instrument back as the segment's bus id;
    /// `publish_ts_ns` is the caller's). A record whose bus id is of an older generation than
    /// the one its slot stands for is skipped (`stale_instruments`).
    ///
    /// `names(id)` resolves an id of the segment's instrument table; it is called at most once
    /// per bus id (off the hot path).
    ///
    /// Contract: `segment` is below the `segments` given to [`Pipeline::new`]; records may arrive
    /// out of time order across segments, and the engine's event clock never runs backwards
    /// (an older timestamp does not rewind it); a returned decision carries the bus id of its
    /// instrument.
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
        let clock_before = self.engine.state.now_ns;
        match self.ids.map(segment, rec.instrument) {
            Mapped::Known(e) => rec.instrument = e,
            Mapped::New { engine, replaced } => {
                self.register(engine, replaced, rec.instrument, names);
                rec.instrument = engine;
            }
            Mapped::Stale => {
                self.stale_instruments += 1;
                return None;
            }
            Mapped::Unmapped => self.unmapped += 1,
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
        d.instrument = self.ids.bus_id(d.instrument).unwrap_or(d.instrument);
        Some(d)
    }

    /// First sight of bus id `bus_id` in engine id `engine` (cold): forgets the slot's previous
    /// instrument when `replaced`, then registers the new one by name (unless the engine already
    /// knows `engine`, e.g. registered up front).
    #[cold]
    fn register(
        &mut self,
        engine: u32,
        replaced: bool,
        bus_id: u32,
        names: impl FnOnce(u32) -> Option<(Venue, String)>,
    ) {
        if replaced {
            self.engine.state.unregister_instrument(engine);
        } else if self.engine.state.role(engine) != InstrumentRole::Unknown {
            return;
        }
        if let Some((venue, name)) = names(bus_id)
            && self
                .engine
                .register_instrument(engine, venue, &name)
                .is_err()
        {
            self.registration_errors += 1;
        }
    }

    /// The bus id engine id `engine_id` currently stands for (the instrument of a decision or an
    /// intent, as records on the bus name it).
    #[must_use]
    pub fn bus_id(&self, engine_id: u32) -> Option<u32> {
        self.ids.bus_id(engine_id)
    }

    /// The generation-checked id map (its size is fixed at construction).
    #[must_use]
    pub fn ids(&self) -> &IdMap {
        &self.ids
    }
}
