//! Paper mode's order sink: the paper exchange ([`ringbolt_paper::PaperExchange`]) observes every
//! input record and takes every fired intent, and emits order transitions, fills and settlements
//! (stream [`PAPER_STREAM`], `paper = 1`); beside it, an inner sink keeps exec's paper wire path
//! (size-zero orders the venue rejects: it measures the wire) whose transitions are published but
//! never feed the engine's positions. Also: the P&L of an archive and the replay parity of the
//! paper records.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use ringbolt_archive::reader::{ArchiveReader, WindowRows};
use ringbolt_archive::tables::Table;
use ringbolt_bus::{Record, RecordKind, Venue, now_ns};
use ringbolt_decide::DecideConfig;
use ringbolt_decide::config::MarketParams;
use ringbolt_decide::engine::{OrderIntent, TimeInForce};
use ringbolt_decide::{IdMap, Mapped};
use ringbolt_market::InstrumentName;
use ringbolt_paper::{
    PAPER_STREAM, PaperConfig, PaperExchange, PaperOrder, PaperTif, Pnl, PnlReport,
};

use crate::reflex::{NoOrders, OrderSink, RecordSource};

/// The paper order sink over an inner sink `W` (exec's paper wire path live, nothing in replay).
#[derive(Debug)]
pub struct PaperOrders<W = NoOrders> {
    /// The paper exchange.
    pub exchange: PaperExchange,
    /// The inner sink.
    pub wire: W,
    default_params: MarketParams,
    markets: std::collections::BTreeMap<String, MarketParams>,
    /// Engine-space instrument id → the market's parameters (fee curve), set at first sight.
    params: HashMap<u32, MarketParams>,
    /// Bus id → engine id, generation-checked (the pipeline's mapping, kept beside it).
    ids: IdMap,
    /// Polymarket names the paper exchange could not parse (token not tradable on paper).
    pub bad_names: u64,
    /// `MarketParams` records with an unusable value (skipped).
    pub bad_params: u64,
}

impl<W: OrderSink> PaperOrders<W> {
    /// A paper sink for `inputs` input segments with the decision config's market parameters.
    #[must_use]
    pub fn new(cfg: &PaperConfig, decide: &DecideConfig, inputs: usize, wire: W) -> Self {
        Self {
            exchange: PaperExchange::new(cfg.clone()),
            wire,
            default_params: decide.default_market,
            markets: decide.markets.clone(),
            params: HashMap::new(),
            ids: IdMap::new(inputs),
            bad_names: 0,
            bad_params: 0,
        }
    }

    /// First sight of a Polymarket token (cold): registers it with the exchange.
    #[cold]
    fn register<S: RecordSource>(&mut self, k: usize, id: u32, key: u32, source: &S) {
        // `key` may have stood for an older instrument of the same bus slot: nothing of it stays.
        self.params.remove(&key);
        let Some((_, name)) = source.instrument(k, id) else {
            return;
        };
        let Ok(parsed) = InstrumentName::parse(&name) else {
            self.bad_names += 1;
            return;
        };
        let slug = name.split('/').next().unwrap_or("");
        let params = self
            .markets
            .get(slug)
            .copied()
            .unwrap_or(self.default_params);
        self.params.insert(key, params);
        self.exchange
            .register_token(key, id, parsed.window_start_s, parsed.outcome);
    }
}

impl<W> PaperOrders<W> {
    /// A token's market parameters from the bus (cold): they replace the configured ones for
    /// its paper orders (fee curve), as in decide; an unusable record is skipped.
    #[cold]
    fn on_market_params(&mut self, key: u32, rec: &Record) {
        if let (Some(p), Some(body)) = (self.params.get_mut(&key), rec.body_as()) {
            match p.updated_from_body(&body) {
                Ok(n) => *p = n,
                Err(_) => self.bad_params += 1,
            }
        }
    }
}

impl<W: OrderSink> OrderSink for PaperOrders<W> {
    #[inline]
    fn observe<S: RecordSource>(&mut self, k: usize, rec: &Record, source: &S) {
        self.wire.observe(k, rec, source);
        let key = if rec.venue == Venue::Polymarket as u8 {
            match self.ids.map(k, rec.instrument) {
                Mapped::Known(key) => Some(key),
                Mapped::New { engine, .. } => {
                    self.register(k, rec.instrument, engine, source);
                    Some(engine)
                }
                // A token whose bus slot was reused since: nothing of it is left to match.
                Mapped::Stale => return,
                Mapped::Unmapped => None,
            }
        } else {
            None
        };
        if let Some(key) = key
            && rec.kind == RecordKind::MarketParams as u8
        {
            self.on_market_params(key, rec);
        }
        self.exchange.on_record(key, rec);
    }

    #[inline]
    fn order(&mut self, k: usize, decision: &Record, intent: Option<&OrderIntent>) {
        self.wire.order(k, decision, intent);
        if let Some(i) = intent {
            self.exchange
                .order(paper_order(i, self.params.get(&i.instrument)));
        }
    }

    fn poll(&mut self) {
        self.wire.poll();
    }

    #[inline]
    fn awaiting(&self) -> bool {
        self.wire.awaiting()
    }

    #[inline]
    fn flush(&mut self, mut publish: impl FnMut(&Record)) {
        self.wire.flush(&mut publish);
        if self.exchange.has_output() {
            let now = now_ns();
            self.exchange.drain(|r| {
                let mut r = *r;
                r.publish_ts_ns = now;
                publish(&r);
            });
        }
    }

    #[inline]
    fn feeds_engine(r: &Record) -> bool {
        is_paper_record(r)
    }
}

/// Whether `r` is one of the paper exchange's records (transition, fill, settlement).
#[must_use]
pub fn is_paper_record(r: &Record) -> bool {
    r.venue == Venue::Internal as u8
        && r.stream == PAPER_STREAM
        && matches!(
            r.record_kind(),
            Some(RecordKind::OrderTransition | RecordKind::Fill | RecordKind::Settlement)
        )
}

/// The paper order of a decide intent.
fn paper_order(i: &OrderIntent, params: Option<&MarketParams>) -> PaperOrder {
    PaperOrder {
        client_order_id: i.client_order_id,
        token: i.instrument,
        side: i.side,
        price: i.price,
        size: i.size,
        tif: match i.time_in_force {
            TimeInForce::Fak => PaperTif::Fak,
        },
        decided_at_ns: i.decided_at_ns,
        params: params.copied().unwrap_or_default(),
    }
}

/// The P&L of the `fills` and `settlements` tables of the archive at `root` (one UTC date when
/// given): `ringbolt report pnl`.
///
/// # Errors
/// An unreadable archive.
pub fn archive_pnl(root: &Path, date: Option<&str>) -> Result<PnlReport> {
    let mut reader =
        ArchiveReader::open(root).with_context(|| format!("opening archive {}", root.display()))?;
    let rows = reader.read_all(&[Table::Fills, Table::Settlements], date, &|_| true)?;
    let mut pnl = Pnl::default();
    for row in &rows.rows {
        pnl.add(&row.record);
    }
    Ok(pnl.report())
}

/// A paper record as compared by replay parity: the wall-clock publish stamp and the bus
/// sequence zeroed (everything else is the paper exchange's, on event time).
#[must_use]
pub fn parity_form(r: &Record) -> Record {
    let mut r = *r;
    r.publish_ts_ns = 0;
    r.seq = 0;
    r
}

/// The archived paper records of `segment` (producer `epoch`, else the first), by their
/// emission number (`venue_seq`).
#[must_use]
pub fn archived_paper_records(rows: &WindowRows, segment: &str, epoch: Option<u64>) -> Vec<Record> {
    let Some(seg) = rows.segments.iter().position(|s| s == segment) else {
        return Vec::new();
    };
    let mine: Vec<&ringbolt_archive::reader::Row> = rows
        .rows
        .iter()
        .filter(|r| r.segment as usize == seg && is_paper_record(&r.record))
        .collect();
    let Some(chosen) = epoch.or_else(|| mine.iter().map(|r| r.epoch).min()) else {
        return Vec::new();
    };
    let mut out: Vec<Record> = mine
        .iter()
        .filter(|r| r.epoch == chosen)
        .map(|r| r.record)
        .collect();
    out.sort_by_key(|r| r.venue_seq);
    out
}

/// Replay parity of the paper records: every replayed one against the archived one with the same
/// emission number, in bytes (timestamps that are wall clock excluded), and the P&L totals.
#[derive(Debug, Default)]
pub struct PaperParity {
    archived: Vec<Record>,
    /// Paper records replayed.
    pub replayed: u64,
    /// Equal to the archived record.
    pub matched: u64,
    /// Different or not archived.
    pub mismatched: u64,
    /// The first divergence (emission number, archived, replayed).
    pub first: Option<(u64, Option<Record>, Record)>,
    live_pnl: Pnl,
    replay_pnl: Pnl,
}

impl PaperParity {
    /// Parity against `archived` (from [`archived_paper_records`]).
    #[must_use]
    pub fn new(archived: Vec<Record>) -> Self {
        let mut live_pnl = Pnl::default();
        for r in &archived {
            live_pnl.add(r);
        }
        Self {
            archived,
            live_pnl,
            ..Self::default()
        }
    }

    /// A replayed record (anything but a paper record is ignored).
    pub fn check(&mut self, r: &Record) {
        if !is_paper_record(r) {
            return;
        }
        self.replayed += 1;
        self.replay_pnl.add(r);
        let n = r.venue_seq;
        let live = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| self.archived.get(i))
            .filter(|a| a.venue_seq == n)
            .copied();
        if live.is_some_and(|a| parity_form(&a) == parity_form(r)) {
            self.matched += 1;
        } else {
            self.mismatched += 1;
            if self.first.is_none() {
                self.first = Some((n, live, *r));
            }
        }
    }

    /// Whether every archived record was replayed identically and the P&L totals agree.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.mismatched == 0
            && self.replayed == self.archived.len() as u64
            && self.live_pnl.report().total == self.replay_pnl.report().total
    }

    /// The parity section of the replay summary.
    #[must_use]
    pub fn json(&self) -> serde_json::Value {
        let (live, replay) = (self.live_pnl.report(), self.replay_pnl.report());
        serde_json::json!({
            "passed": self.passed(),
            "paper_records_archived": self.archived.len(),
            "paper_records_replayed": self.replayed,
            "paper_records_matched": self.matched,
            "paper_records_mismatched": self.mismatched,
            "first_divergence": self.first.as_ref().map(|f| f.0),
            "pnl_live_usdc": live.total.pnl_usdc,
            "pnl_replay_usdc": replay.total.pnl_usdc,
            "fills_live": live.total.fills,
            "fills_replay": replay.total.fills,
        })
    }

    /// The first divergence, for the operator.
    #[must_use]
    pub fn divergence_text(&self) -> Option<String> {
        let (n, live, replay) = self.first.as_ref()?;
        let kind = |r: &Record| RecordKind::from_u8(r.kind).map_or("?", RecordKind::as_str);
        let show = |r: &Record| {
            format!(
                "{} instrument={} exchange_ts={} body={}",
                kind(r),
                r.instrument,
                r.exchange_ts_ns,
                ringbolt_bus::columns::body_text(r)
            )
        };
        Some(format!(
            "PAPER PARITY FAILED at paper record #{n}\n  live:   {}\n  replay: {}",
            live.as_ref()
                .map_or_else(|| "(not archived)".to_owned(), show),
            show(replay)
        ))
    }
}

#[cfg(test)]
mod tests {
    use ringbolt_bus::{OrderState, OrderTransition};

    use super::*;

    fn transition(venue: Venue, stream: u8) -> Record {
        let body = OrderTransition {
            client_order_id: 1,
            price: 0,
            size: 0,
            filled: 0,
            venue_order_id: [0; 16],
            error_class: 0,
            http_status: 400,
            from_state: OrderState::Submitted as u8,
            to_state: OrderState::Rejected as u8,
            side: 1,
            paper: 1,
            reserved: [0; 24],
        };
        Record::new(venue, stream, 0, &body)
    }

    /// One Polymarket token, id 1, of the window starting at 1773307200.
    struct OneToken;
    impl RecordSource for OneToken {
        fn next(&mut self, _rec: &mut Record) -> anyhow::Result<crate::reflex::Next> {
            Ok(crate::reflex::Next::End)
        }
        fn instrument(&self, _k: usize, id: u32) -> Option<(Venue, String)> {
            (id == 1).then(|| (Venue::Polymarket, "btc-updown-5m-1773307200/up/11".into()))
        }
    }

    #[test]
    fn bus_market_params_replace_the_configured_fee_curve_of_paper_orders() {
        use ringbolt_bus::{MarketParamsBody, PARAMS_FROM_GAMMA};
        let decide = DecideConfig::default();
        let mut sink = PaperOrders::new(&PaperConfig::default(), &decide, 1, NoOrders);
        let gamma = MarketParams {
            fee_rate: 0.05,
            ..decide.default_market
        };
        let rec = Record::new(
            Venue::Polymarket,
            6,
            1,
            &gamma.to_body(1_773_307_200, PARAMS_FROM_GAMMA),
        );
        sink.observe(0, &rec, &OneToken);
        assert_eq!(sink.params.get(&1), Some(&gamma));
        let mut bad: MarketParamsBody = rec.body_as().unwrap();
        bad.tick_size = 3;
        sink.observe(0, &Record::new(Venue::Polymarket, 6, 1, &bad), &OneToken);
        assert_eq!((sink.bad_params, sink.params.get(&1)), (1, Some(&gamma)));
    }

    #[test]
    fn only_the_paper_exchange_records_feed_the_engine_in_paper_mode() {
        // exec's paper wire path: a size-zero order the venue rejected (stream 0, Polymarket).
        let wire = transition(Venue::Polymarket, ringbolt_exec::lifecycle::STREAM_ORDERS);
        assert!(!PaperOrders::<NoOrders>::feeds_engine(&wire));
        assert!(NoOrders::feeds_engine(&wire), "other sinks feed everything");
        let paper = transition(Venue::Internal, PAPER_STREAM);
        assert!(PaperOrders::<NoOrders>::feeds_engine(&paper));
        let mut decision = paper;
        decision.kind = RecordKind::Decision as u8;
        assert!(!is_paper_record(&decision));
    }
}
