//! The demo's observer: reads every ring of the market segment (collector output) and of the
//! decision segment (decisions + order transitions) as an ordinary bus consumer, and turns what it
//! sees into counts, per-stage latencies and the tick-to-order join keys.
//!
//! All stamps are `CLOCK_REALTIME` ns taken by the processes themselves (bus header
//! `recv_ts_ns` / `publish_ts_ns`), so stage latencies are differences of stamps taken on one
//! host clock. Nothing here sits on a hot path; it is a reader like the archiver.

use std::collections::{BTreeMap, HashMap};

use ringbolt_bus::{
    Consumer, Decision, Doorbells, FeedState, FeedStatusBody, OrderState, OrderTransition, Poll,
    Record, RecordKind, Segment, Start, Venue,
};
use ringbolt_feeds::continuity::SyncMode;
use ringbolt_feeds::venues::adapter_for;
use serde::Serialize;

use ringbolt_telemetry::stage::{
    BUS_TO_DECISION, BUS_TO_ORDER_WIRE, EMULATOR_WRITE_TO_RECV, ORDER_ROUND_TRIP, RECV_TO_BUS,
    SUBMIT_TO_CLOB_RECV, TICK_TO_ORDER,
};
use ringbolt_telemetry::{LatencyHistogram, Percentiles, latency_histogram};

/// Latency stages the report prints, in pipeline order.
pub const STAGES: &[&str] = ringbolt_telemetry::stage::HOPS;

/// Facts kept about one Polymarket market-data record (a possible decision trigger).
#[derive(Clone, Copy, Debug)]
pub struct Trigger {
    /// Instrument id in the market segment.
    pub instrument: u32,
    /// Venue timestamp (ns).
    pub exchange_ts_ns: i64,
    /// Collector's socket receive stamp.
    pub recv_ts_ns: i64,
    /// Collector's bus publish stamp.
    pub publish_ts_ns: i64,
}

/// A fired decision waiting for its order's stamps.
#[derive(Clone, Copy, Debug)]
pub struct Fired {
    /// The trigger, when still indexed.
    pub trigger: Option<Trigger>,
    /// SUBMITTED transition stamp.
    pub submitted_ts_ns: Option<i64>,
    /// First 16 bytes of the order hash (venue order id), when known.
    pub order_hash16: Option<[u8; 16]>,
}

/// Last status of one feed stream.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct StreamStatus {
    /// State name.
    pub state: &'static str,
    /// Messages.
    pub messages: u64,
    /// Gaps.
    pub gaps: u64,
    /// Records lost in gaps.
    pub gap_records: u64,
    /// Reconnects.
    pub reconnects: u64,
    /// Resyncs.
    pub resyncs: u64,
    /// Parse errors.
    pub parse_errors: u64,
}

struct Source {
    name: String,
    seg: Option<std::sync::Arc<Segment>>,
    consumers: Vec<Consumer>,
    /// Times the segment was (re)opened (the monitor's doorbells follow).
    opens: u64,
    epochs: u64,
    lost: u64,
}

impl Source {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            seg: None,
            consumers: Vec::new(),
            opens: 0,
            epochs: 0,
            lost: 0,
        }
    }

    fn try_open(&mut self) {
        if self.seg.is_some() {
            return;
        }
        let Ok(seg) = Segment::open(&self.name) else {
            return;
        };
        let mut consumers = Vec::new();
        for ring in 0..seg.geometry().ring_count {
            match Consumer::new(&seg, ring, Start::Oldest) {
                Ok(c) => consumers.push(c),
                Err(e) => {
                    tracing::warn!("consumer on {} ring {ring}: {e}", self.name);
                    return;
                }
            }
        }
        self.consumers = consumers;
        self.seg = Some(seg);
        self.opens += 1;
    }
}

/// Counts and histograms of one demo run.
pub struct Monitor {
    market: Source,
    decisions: Source,
    stream_names: HashMap<(u8, u8), &'static str>,
    /// Records per `venue/stream/kind`.
    pub events: BTreeMap<(u8, u8, u8), u64>,
    /// Last status per `venue/stream`.
    pub status: BTreeMap<(u8, u8), StreamStatus>,
    /// Polymarket feed-status records: (market seq, stream, trustworthy?), in bus order.
    pm_status: Vec<(u64, u8, bool)>,
    /// Highest market-segment seq read so far.
    market_seq: u64,
    /// Trigger seqs of fired decisions not yet judged (their trigger not read yet).
    pending_fired: Vec<u64>,
    /// Decisions seen.
    pub decisions_total: u64,
    /// Fired decisions.
    pub decisions_fired: u64,
    /// Fired while a Polymarket stream was not live (must stay 0).
    pub fired_on_untrusted_book: u64,
    /// Order transitions by target state.
    pub order_states: BTreeMap<&'static str, u64>,
    /// Rejections by error class code.
    pub reject_classes: BTreeMap<u16, u64>,
    /// HTTP statuses seen in transitions.
    pub http_statuses: BTreeMap<u16, u64>,
    /// Orders that reached SUBMITTED.
    pub orders_submitted: u64,
    /// Orders that were paper (size zero on the wire).
    pub orders_paper: u64,
    /// The paper exchange's order transitions by target state.
    pub paper_states: BTreeMap<&'static str, u64>,
    /// The paper exchange's fills.
    pub paper_fills: u64,
    /// The paper exchange's settlement records.
    pub paper_settlements: u64,
    /// Live mode: positions and cash from exec's `Fill` records (user channel), per token.
    pub live_fills: ringbolt_exec::ledger::Ledger,
    triggers: HashMap<u64, Trigger>,
    trigger_floor: u64,
    /// Fired decisions by client order id.
    pub fired: HashMap<u64, Fired>,
    /// Stage histograms (ns).
    pub hist: BTreeMap<&'static str, LatencyHistogram>,
    /// Instrument names of the market segment (looked up once).
    pub instruments: HashMap<u32, String>,
    /// Records lost by this observer (lapped) — not a pipeline loss.
    pub observer_lost: u64,
    /// Doorbells of the open segments, keyed by the sources' open counts.
    bells: (u64, Doorbells),
    /// Epoch changes seen on the market segment (collector restarts).
    pub market_epochs: u64,
    /// Market records (feed statuses excluded) per collector source of the 11 (see
    /// [`Monitor::events_per_source`]).
    events_by_source: BTreeMap<&'static str, u64>,
    /// The source each `(venue, instrument)` of the current epoch counts under.
    source_of: HashMap<(u8, u32), &'static str>,
    /// `gap_detected` feed statuses per venue name (all sources of the venue).
    pub gap_statuses: BTreeMap<&'static str, u64>,
    /// Every feed-status record in bus order, when enabled (`Some`): the soak's gap and
    /// reconnect accounting.
    pub status_log: Option<Vec<StatusEvent>>,
}

/// One feed-status record as the soak keeps it.
#[derive(Clone, Copy, Debug)]
pub struct StatusEvent {
    /// The collector's stamp of the transition (ns).
    pub recv_ts_ns: i64,
    /// Venue byte.
    pub venue: u8,
    /// Stream byte (0: the connection).
    pub stream: u8,
    /// New state.
    pub state: Option<FeedState>,
}

/// The report's source of a market record: the venue's name, except Bybit's linear category
/// (instruments `linear/<symbol>`, see the collector's `symbol_prefix`): `bybit_linear`.
fn source_name(venue: u8, instrument_name: Option<&str>) -> &'static str {
    if venue == Venue::Bybit as u8 && instrument_name.is_some_and(|n| n.starts_with("linear/")) {
        return "bybit_linear";
    }
    Venue::from_u8(venue).map_or("unknown", Venue::as_str)
}

const TRIGGER_INDEX_MAX: usize = 2_000_000;

fn new_hist() -> LatencyHistogram {
    latency_histogram()
}

impl Monitor {
    /// Live mode: the tokens' (market-segment names') shares from exec's fills, 1e-6 shares.
    #[must_use]
    pub fn live_positions(&self) -> BTreeMap<String, i64> {
        let seg = self.market.seg.as_ref();
        self.live_fills
            .tokens()
            .into_iter()
            .map(|(id, b)| {
                let name = seg
                    .and_then(|s| s.instrument(id))
                    .map_or_else(|| format!("#{id}"), |(_, n)| n);
                let token = name.rsplit('/').next().unwrap_or(&name).to_owned();
                (token, b.shares_e8 / 100)
            })
            .collect()
    }

    /// Watches `market` and `decisions` segments (opened when they appear).
    pub fn new(market: &str, decisions: &str) -> Self {
        let mut stream_names = HashMap::new();
        for &v in ringbolt_feeds::venues::IMPLEMENTED {
            if let Some(a) = adapter_for(v, SyncMode::Observe) {
                for s in a.streams() {
                    stream_names.insert((v as u8, s.id), s.name);
                }
            }
        }
        Self {
            market: Source::new(market),
            decisions: Source::new(decisions),
            stream_names,
            events: BTreeMap::new(),
            status: BTreeMap::new(),
            pm_status: Vec::new(),
            market_seq: 0,
            pending_fired: Vec::new(),
            decisions_total: 0,
            decisions_fired: 0,
            fired_on_untrusted_book: 0,
            order_states: BTreeMap::new(),
            reject_classes: BTreeMap::new(),
            http_statuses: BTreeMap::new(),
            orders_submitted: 0,
            orders_paper: 0,
            paper_states: BTreeMap::new(),
            paper_fills: 0,
            paper_settlements: 0,
            live_fills: ringbolt_exec::ledger::Ledger::new(),
            triggers: HashMap::new(),
            trigger_floor: 0,
            fired: HashMap::new(),
            hist: STAGES.iter().map(|s| (*s, new_hist())).collect(),
            instruments: HashMap::new(),
            observer_lost: 0,
            bells: (0, Doorbells::default()),
            market_epochs: 0,
            events_by_source: BTreeMap::new(),
            source_of: HashMap::new(),
            gap_statuses: BTreeMap::new(),
            status_log: None,
        }
    }

    /// Name of a venue's stream byte.
    pub fn stream_name(&self, venue: u8, stream: u8) -> String {
        self.stream_names
            .get(&(venue, stream))
            .map_or_else(|| format!("stream{stream}"), |s| (*s).to_owned())
    }

    fn record(&mut self, stage: &'static str, ns: i64) {
        if let (Some(h), Ok(v)) = (self.hist.get_mut(stage), u64::try_from(ns)) {
            h.saturating_record(v.max(1));
        }
    }

    /// Sleeps until a producer of the market or decision segment publishes (their futex
    /// doorbells), at most `timeout`; a segment not open yet is waited for by the timeout.
    pub fn wait(&mut self, timeout: std::time::Duration) {
        let opens = self.market.opens + self.decisions.opens;
        if self.bells.0 != opens {
            let consumers = self
                .market
                .consumers
                .iter()
                .chain(&self.decisions.consumers);
            self.bells = (opens, Doorbells::new(consumers));
        }
        let (market, decisions) = (&self.market.consumers, &self.decisions.consumers);
        self.bells.1.sleep(timeout, || {
            market.iter().chain(decisions).any(Consumer::pending)
        });
    }

    /// Drains what is available (bounded per call). Returns records read.
    pub fn poll(&mut self, budget: usize) -> usize {
        self.market.try_open();
        self.decisions.try_open();
        let mut rec = Record::zeroed();
        let mut n = 0;
        // Market first, so triggers are indexed before the decisions that name them.
        for src in 0..2 {
            let ncons = if src == 0 {
                self.market.consumers.len()
            } else {
                self.decisions.consumers.len()
            };
            for c in 0..ncons {
                let mut spent = 0;
                while spent < budget {
                    let source = if src == 0 {
                        &mut self.market
                    } else {
                        &mut self.decisions
                    };
                    let r = source.consumers[c].poll(&mut rec);
                    match r {
                        Poll::Ready => {}
                        Poll::Empty => break,
                        Poll::Lost { count } => {
                            source.lost += count;
                            self.observer_lost += count;
                            continue;
                        }
                        Poll::EpochChanged { lost, .. } => {
                            source.epochs += 1;
                            self.observer_lost += lost;
                            if src == 0 {
                                self.market_epochs += 1;
                                self.triggers.clear();
                                self.instruments.clear();
                                self.source_of.clear();
                            }
                            continue;
                        }
                        Poll::Retired => {
                            source.seg = None;
                            source.consumers.clear();
                            break;
                        }
                    }
                    spent += 1;
                    n += 1;
                    if src == 0 {
                        self.on_market(&rec);
                    } else {
                        self.on_decision_segment(&rec);
                    }
                }
                let gone = if src == 0 {
                    self.market.seg.is_none()
                } else {
                    self.decisions.seg.is_none()
                };
                if gone {
                    break;
                }
            }
        }
        self.judge_fired(false);
        n
    }

    /// Judges fired decisions against the Polymarket feed status as of their trigger (the
    /// records the engine had applied when it fired): counts those taken while a stream was
    /// stale, gapped or disconnected. `all` judges the rest too (end of run).
    pub fn judge_fired(&mut self, all: bool) {
        let upto = self.market_seq;
        let mut i = 0;
        while i < self.pending_fired.len() {
            let t = self.pending_fired[i];
            if !all && t > upto {
                i += 1;
                continue;
            }
            self.pending_fired.swap_remove(i);
            let mut untrusted: u16 = 0;
            for &(seq, stream, trusted) in &self.pm_status {
                if seq > t {
                    break;
                }
                let bit = 1u16 << (stream & 15);
                if trusted {
                    untrusted &= !bit;
                } else {
                    untrusted |= bit;
                }
            }
            if untrusted != 0 {
                self.fired_on_untrusted_book += 1;
            }
        }
    }

    fn on_market(&mut self, rec: &Record) {
        self.market_seq = self.market_seq.max(rec.seq);
        *self
            .events
            .entry((rec.venue, rec.stream, rec.kind))
            .or_insert(0) += 1;
        if rec.recv_ts_ns > 0 && rec.publish_ts_ns >= rec.recv_ts_ns {
            self.record(RECV_TO_BUS, rec.publish_ts_ns - rec.recv_ts_ns);
        }
        if rec.kind == RecordKind::FeedStatus as u8 {
            if let Some(b) = rec.body_as::<FeedStatusBody>() {
                let state = FeedState::from_u8(b.state);
                if let Some(log) = &mut self.status_log {
                    log.push(StatusEvent {
                        recv_ts_ns: rec.recv_ts_ns,
                        venue: rec.venue,
                        stream: rec.stream,
                        state,
                    });
                }
                if state == Some(FeedState::GapDetected) {
                    *self
                        .gap_statuses
                        .entry(source_name(rec.venue, None))
                        .or_insert(0) += 1;
                }
                self.status.insert(
                    (rec.venue, rec.stream),
                    StreamStatus {
                        state: state.map_or("unknown", FeedState::as_str),
                        messages: b.messages,
                        gaps: b.gaps,
                        gap_records: b.gap_records,
                        reconnects: b.reconnects,
                        resyncs: b.resyncs,
                        parse_errors: b.parse_errors,
                    },
                );
                if rec.venue == Venue::Polymarket as u8 {
                    let trusted = state.is_some_and(FeedState::is_trustworthy);
                    self.pm_status.push((rec.seq, rec.stream, trusted));
                }
            }
            return;
        }
        self.count_source(rec);
        if rec.venue == Venue::Polymarket as u8 {
            if let Some(seg) = &self.market.seg
                && !self.instruments.contains_key(&rec.instrument)
                && let Some((_, name)) = seg.instrument(rec.instrument)
            {
                self.instruments.insert(rec.instrument, name);
            }
            self.triggers.insert(
                rec.seq,
                Trigger {
                    instrument: rec.instrument,
                    exchange_ts_ns: rec.exchange_ts_ns,
                    recv_ts_ns: rec.recv_ts_ns,
                    publish_ts_ns: rec.publish_ts_ns,
                },
            );
            if self.triggers.len() > TRIGGER_INDEX_MAX {
                self.trigger_floor = rec.seq.saturating_sub(TRIGGER_INDEX_MAX as u64 / 2);
                let floor = self.trigger_floor;
                self.triggers.retain(|&s, _| s >= floor);
            }
        }
    }

    fn on_decision_segment(&mut self, rec: &Record) {
        if rec.kind == RecordKind::Decision as u8 {
            let Some(d) = rec.body_as::<Decision>() else {
                return;
            };
            self.decisions_total += 1;
            let trigger = self.triggers.get(&d.trigger_seq).copied();
            if let Some(t) = trigger
                && rec.publish_ts_ns >= t.publish_ts_ns
            {
                self.record(BUS_TO_DECISION, rec.publish_ts_ns - t.publish_ts_ns);
            }
            if d.fired == 1 {
                self.decisions_fired += 1;
                self.pending_fired.push(d.trigger_seq);
                if d.client_order_id != 0 {
                    self.fired.insert(
                        d.client_order_id,
                        Fired {
                            trigger,
                            submitted_ts_ns: None,
                            order_hash16: None,
                        },
                    );
                }
            }
        } else if ringbolt_trade::paper::is_paper_record(rec) {
            // The paper exchange's transitions, fills and settlements: outcomes, not the wire.
            if let Some(t) = rec.body_as::<OrderTransition>() {
                let to = OrderState::from_u8(t.to_state);
                *self
                    .paper_states
                    .entry(to.map_or("unknown", OrderState::as_str))
                    .or_insert(0) += 1;
            } else if rec.kind == RecordKind::Fill as u8 {
                self.paper_fills += 1;
            } else if rec.kind == RecordKind::Settlement as u8 {
                self.paper_settlements += 1;
            }
        } else if rec.kind == RecordKind::Fill as u8 {
            // Live fills (exec, from the user channel): positions for the ledger check.
            self.live_fills.apply(rec);
        } else if rec.kind == RecordKind::OrderTransition as u8 {
            let Some(t) = rec.body_as::<OrderTransition>() else {
                return;
            };
            let to = OrderState::from_u8(t.to_state);
            *self
                .order_states
                .entry(to.map_or("unknown", OrderState::as_str))
                .or_insert(0) += 1;
            if t.http_status != 0 {
                *self.http_statuses.entry(t.http_status).or_insert(0) += 1;
            }
            if to == Some(OrderState::Rejected) {
                *self.reject_classes.entry(t.error_class).or_insert(0) += 1;
            }
            let fired = self.fired.get(&t.client_order_id).copied();
            // The transition's own time (when it happened), not when it was published.
            let at_ns = if rec.recv_ts_ns > 0 {
                rec.recv_ts_ns
            } else {
                rec.publish_ts_ns
            };
            if to == Some(OrderState::Submitted) {
                self.orders_submitted += 1;
                if t.paper == 1 {
                    self.orders_paper += 1;
                }
                if let Some(mut f) = fired {
                    if let Some(trig) = f.trigger {
                        self.record(BUS_TO_ORDER_WIRE, at_ns - trig.publish_ts_ns);
                    }
                    f.submitted_ts_ns = Some(at_ns);
                    if t.venue_order_id != [0; 16] {
                        f.order_hash16 = Some(t.venue_order_id);
                    }
                    self.fired.insert(t.client_order_id, f);
                }
            } else if let Some(f) = fired
                && let Some(sub) = f.submitted_ts_ns
                && matches!(
                    to,
                    Some(OrderState::Acked | OrderState::Rejected | OrderState::Filled)
                )
                && t.from_state == OrderState::Submitted as u8
            {
                self.record(ORDER_ROUND_TRIP, at_ns - sub);
                if f.order_hash16.is_none() && t.venue_order_id != [0; 16] {
                    let mut f = f;
                    f.order_hash16 = Some(t.venue_order_id);
                    self.fired.insert(t.client_order_id, f);
                }
            }
        }
    }

    /// Joins the emulators' wire logs: `write_ns` per (token id, frame timestamp ms) from the
    /// Polymarket emulator and `recv_ns` per order hash from the CLOB emulator. Every indexed
    /// Polymarket record gives an `emulator_write_to_recv` sample (once per frame); every fired
    /// order found at both ends gives a `tick_to_order` sample. Returns the orders joined.
    pub fn join_wire(
        &mut self,
        md_writes: &HashMap<(String, i64), i64>,
        clob_recvs: &HashMap<[u8; 16], i64>,
    ) -> u64 {
        let write_of = |instruments: &HashMap<u32, String>, t: &Trigger| {
            let name = instruments.get(&t.instrument)?;
            let token = name.rsplit('/').next()?;
            md_writes
                .get(&(token.to_owned(), t.exchange_ts_ns.div_euclid(1_000_000)))
                .copied()
        };
        let mut frames = std::collections::HashSet::new();
        let mut samples = Vec::new();
        for t in self.triggers.values() {
            if frames.insert((t.instrument, t.exchange_ts_ns))
                && let Some(w) = write_of(&self.instruments, t)
            {
                samples.push(t.recv_ts_ns - w);
            }
        }
        for v in samples {
            self.record(EMULATOR_WRITE_TO_RECV, v);
        }
        let mut joined = 0;
        let fired: Vec<Fired> = self.fired.values().copied().collect();
        for f in fired {
            let write_ns = f.trigger.and_then(|t| write_of(&self.instruments, &t));
            let recv_ns = f.order_hash16.and_then(|h| clob_recvs.get(&h).copied());
            if let (Some(r), Some(s)) = (recv_ns, f.submitted_ts_ns) {
                self.record(SUBMIT_TO_CLOB_RECV, r - s);
            }
            if let (Some(w), Some(r)) = (write_ns, recv_ns) {
                self.record(TICK_TO_ORDER, r - w);
                joined += 1;
            }
        }
        joined
    }

    /// Percentiles per stage (stages without samples are omitted).
    pub fn stage_percentiles(&self) -> BTreeMap<&'static str, Percentiles> {
        self.hist
            .iter()
            .filter(|(_, h)| !h.is_empty())
            .map(|(k, h)| (*k, Percentiles::of(h)))
            .collect()
    }

    /// Counts a market record under its source (the instrument's name is read from the segment
    /// once per instrument and epoch).
    fn count_source(&mut self, rec: &Record) {
        let key = (rec.venue, rec.instrument);
        let source = match self.source_of.get(&key) {
            Some(s) => *s,
            None => {
                let name = self
                    .market
                    .seg
                    .as_ref()
                    .and_then(|s| s.instrument(rec.instrument))
                    .map(|(_, n)| n);
                let s = source_name(rec.venue, name.as_deref());
                self.source_of.insert(key, s);
                s
            }
        };
        *self.events_by_source.entry(source).or_insert(0) += 1;
    }

    /// Market records per source: the venue's name, Bybit linear apart as `bybit_linear`.
    pub fn events_per_source(&self) -> &BTreeMap<&'static str, u64> {
        &self.events_by_source
    }

    /// Market records per venue name: the kinds the archive counts as market events (trades,
    /// book changes, tops, index prices, funding, liquidations) — not feed statuses, heartbeats
    /// or market parameters, so the figure compares with the archive report's.
    pub fn events_per_venue(&self) -> BTreeMap<&'static str, u64> {
        let mut out = BTreeMap::new();
        for (&(v, _, k), &n) in &self.events {
            if !(RecordKind::Trade as u8..=RecordKind::Liquidation as u8).contains(&k) {
                continue;
            }
            let name = Venue::from_u8(v).map_or("unknown", Venue::as_str);
            *out.entry(name).or_insert(0) += n;
        }
        out
    }
}
