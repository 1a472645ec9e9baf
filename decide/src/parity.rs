//! Decision parity between a live run (archived decision records) and a replay of the same input:
//! field-by-field comparison of decision records, matched by decision number (`venue_seq`), and
//! the fire set (trigger event, outcome, side, price, size).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use ringbolt_bus::{Decision, Record};

use crate::engine::Reason;

/// One differing field of two decision records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldDiff {
    /// Field name (`header.exchange_ts_ns`, `probability`, …).
    pub field: &'static str,
    /// The live (archived) value.
    pub live: String,
    /// The replayed value.
    pub replay: String,
}

/// The comparable fields of a decision record (everything but the bus `seq` and the wall-clock
/// `publish_ts_ns`, which depend on when and where it was published).
fn fields(r: &Record) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("decision_no", r.venue_seq.to_string()),
        ("event_ts_ns", r.exchange_ts_ns.to_string()),
        ("trigger_recv_ts_ns", r.recv_ts_ns.to_string()),
        ("instrument", r.instrument.to_string()),
        ("kind", r.kind.to_string()),
        ("venue", r.venue.to_string()),
        ("stream", r.stream.to_string()),
        ("flags", r.flags.to_string()),
    ];
    if let Some(d) = r.body_as::<Decision>() {
        v.extend([
            ("trigger_seq", d.trigger_seq.to_string()),
            ("book_seq", d.book_seq.to_string()),
            ("reference_seq", d.reference_seq.to_string()),
            ("probability", d.probability.to_string()),
            ("edge", d.edge.to_string()),
            ("price", d.price.to_string()),
            ("size", d.size.to_string()),
            ("client_order_id", d.client_order_id.to_string()),
            (
                "feature_schema_hash",
                format!("{:#010x}", d.feature_schema_hash),
            ),
            ("slot", d.slot.to_string()),
            ("fired", d.fired.to_string()),
            ("reason", reason_name(d.reason)),
            ("side", d.side.to_string()),
            ("outcome", d.outcome.to_string()),
        ]);
    }
    v
}

fn reason_name(code: u8) -> String {
    Reason::from_u8(code).map_or_else(|| format!("unknown_{code}"), |r| r.as_str().to_owned())
}

/// The fields in which `live` and `replay` differ (empty = identical decisions).
#[must_use]
pub fn diff(live: &Record, replay: &Record) -> Vec<FieldDiff> {
    fields(live)
        .into_iter()
        .zip(fields(replay))
        .filter(|((_, a), (_, b))| a != b)
        .map(|((field, a), (_, b))| FieldDiff {
            field,
            live: a,
            replay: b,
        })
        .collect()
}

/// Fast path of [`diff`]: equal in every compared field (bus `seq` and `publish_ts_ns` ignored).
#[must_use]
pub fn same_decision(live: &Record, replay: &Record) -> bool {
    let (mut a, mut b) = (*live, *replay);
    a.seq = 0;
    b.seq = 0;
    a.publish_ts_ns = 0;
    b.publish_ts_ns = 0;
    a == b
}

/// What identifies a fired decision: trigger (bus seq, receive stamp, event time), token,
/// outcome, side, limit price, size.
pub type FireKey = (u64, i64, i64, u32, u8, u8, i64, i64);

/// The fire key of a fired decision record, `None` for a no-fire.
#[must_use]
pub fn fire_key(r: &Record) -> Option<FireKey> {
    let d = r.body_as::<Decision>()?;
    (d.fired == 1).then_some((
        d.trigger_seq,
        r.recv_ts_ns,
        r.exchange_ts_ns,
        r.instrument,
        d.outcome,
        d.side,
        d.price,
        d.size,
    ))
}

/// Renders a decision record on one line.
#[must_use]
pub fn describe(r: &Record) -> String {
    let mut s = String::new();
    for (k, v) in fields(r) {
        let _ = write!(s, "{k}={v} ");
    }
    s.trim_end().to_owned()
}

/// The first decision that differs.
#[derive(Clone, Debug)]
pub struct Divergence {
    /// Decision number (1-based).
    pub decision_no: u64,
    /// The archived live decision (`None` = live has no decision with this number).
    pub live: Option<Record>,
    /// The replayed decision (`None` = replay made no decision with this number).
    pub replay: Option<Record>,
    /// Differing fields when both exist.
    pub fields: Vec<FieldDiff>,
}

/// The archived live decisions, looked up by decision number − 1.
pub trait ArchivedDecisions: std::fmt::Debug {
    /// One past the largest decision number − 1 held (0 when none is).
    fn len(&self) -> usize;
    /// Whether no decision is held.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The archived decision number `i + 1`, if the archive holds it.
    fn get(&self, i: usize) -> Option<&Record>;
}

impl ArchivedDecisions for Vec<Option<Record>> {
    fn len(&self) -> usize {
        <[Option<Record>]>::len(self)
    }

    fn get(&self, i: usize) -> Option<&Record> {
        <[Option<Record>]>::get(self, i)?.as_ref()
    }
}

/// Streaming comparison of replayed decisions against the archived ones (`live`, by number).
#[derive(Debug)]
pub struct ParityChecker<L: ArchivedDecisions = Vec<Option<Record>>> {
    live: L,
    live_fires: BTreeSet<FireKey>,
    replay_fires: BTreeSet<FireKey>,
    /// Replayed decisions so far.
    pub replayed: u64,
    /// Replayed decisions identical to the archived one.
    pub matched: u64,
    /// Replayed decisions that differ (or have no archived counterpart).
    pub mismatched: u64,
    /// Of the mismatches, those where only the no-fire reason (and fields it implies) differ.
    pub reason_only: u64,
    /// Replayed decisions whose archived counterpart is missing from the archive.
    pub not_archived: u64,
    /// The first divergence.
    pub first: Option<Divergence>,
}

impl<L: ArchivedDecisions> ParityChecker<L> {
    /// A checker over the archived decisions, indexed by decision number − 1 (`None` for a
    /// decision number the archive does not hold).
    #[must_use]
    pub fn new(live: L) -> Self {
        let live_fires = (0..live.len())
            .filter_map(|i| live.get(i))
            .filter_map(fire_key)
            .collect();
        Self {
            live,
            live_fires,
            replay_fires: BTreeSet::new(),
            replayed: 0,
            matched: 0,
            mismatched: 0,
            reason_only: 0,
            not_archived: 0,
            first: None,
        }
    }

    /// Archived decisions (records present).
    #[must_use]
    pub fn live_decisions(&self) -> u64 {
        (0..self.live.len())
            .filter(|&i| self.live.get(i).is_some())
            .count() as u64
    }

    /// Fired decisions in the archive.
    #[must_use]
    pub fn live_fires(&self) -> usize {
        self.live_fires.len()
    }

    /// Fired decisions in the replay.
    #[must_use]
    pub fn replay_fires(&self) -> usize {
        self.replay_fires.len()
    }

    /// Compares one replayed decision; returns true when it is the first divergence.
    pub fn check(&mut self, replay: &Record) -> bool {
        self.replayed += 1;
        if let Some(k) = fire_key(replay) {
            self.replay_fires.insert(k);
        }
        let n = replay.venue_seq;
        let live = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .filter(|&i| i < self.live.len())
            .map(|i| self.live.get(i).copied());
        let (live, fields) = match live {
            Some(Some(l)) => {
                if same_decision(&l, replay) {
                    self.matched += 1;
                    return false;
                }
                let f = diff(&l, replay);
                if f.is_empty() {
                    self.matched += 1;
                    return false;
                }
                (Some(l), f)
            }
            Some(None) => {
                self.not_archived += 1;
                return false;
            }
            None => (None, Vec::new()),
        };
        self.mismatched += 1;
        let both_no_fire =
            live.is_some_and(|l| fire_key(&l).is_none()) && fire_key(replay).is_none();
        if both_no_fire {
            self.reason_only += 1;
        }
        if self.first.is_none() {
            self.first = Some(Divergence {
                decision_no: n,
                live,
                replay: Some(*replay),
                fields,
            });
            return true;
        }
        false
    }

    /// Ends the comparison: archived decisions the replay never made count as mismatches.
    /// Returns the first divergence number if any (including a live decision beyond the
    /// replay's last).
    pub fn finish(&mut self) {
        let extra = (usize::try_from(self.replayed).unwrap_or(usize::MAX)..self.live.len())
            .filter_map(|i| self.live.get(i).map(|r| (i, *r)))
            .collect::<Vec<_>>();
        self.mismatched += extra.len() as u64;
        if self.first.is_none()
            && let Some((i, r)) = extra.first()
        {
            self.first = Some(Divergence {
                decision_no: *i as u64 + 1,
                live: Some(*r),
                replay: None,
                fields: Vec::new(),
            });
        }
    }

    /// Whether the fire sets are equal.
    #[must_use]
    pub fn fire_sets_equal(&self) -> bool {
        self.live_fires == self.replay_fires
    }

    /// Fires only live made / only the replay made.
    #[must_use]
    pub fn fire_set_differences(&self) -> (usize, usize) {
        (
            self.live_fires.difference(&self.replay_fires).count(),
            self.replay_fires.difference(&self.live_fires).count(),
        )
    }

    /// Parity holds: every decision identical and the fire sets equal.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.mismatched == 0 && self.fire_sets_equal()
    }
}

#[cfg(test)]
mod tests {
    use ringbolt_bus::{Side, Venue};

    use super::*;

    fn decision(n: u64, fired: u8, price: i64) -> Record {
        let d = Decision {
            trigger_seq: 10 * n,
            book_seq: 1,
            reference_seq: 2,
            probability: 500_000_000,
            edge: 3,
            price,
            size: if fired == 1 { 500_000_000 } else { 0 },
            client_order_id: 0,
            feature_schema_hash: 0,
            slot: u16::MAX,
            fired,
            reason: if fired == 1 { 0 } else { 6 },
            side: Side::Buy as u8,
            outcome: 0,
            reserved: [0; 6],
        };
        let mut r = Record::new(Venue::Internal, 1, 3, &d);
        r.venue_seq = n;
        r.exchange_ts_ns = 1_000 * n as i64;
        r
    }

    #[test]
    fn identical_streams_pass_and_a_changed_price_is_named() {
        let live: Vec<Option<Record>> = (1..=5)
            .map(|n| Some(decision(n, u8::from(n == 3), 50)))
            .collect();
        let mut ok = ParityChecker::new(live.clone());
        for r in live.iter().flatten() {
            assert!(!ok.check(r));
        }
        ok.finish();
        assert!(ok.passed());
        assert_eq!((ok.matched, ok.live_fires(), ok.replay_fires()), (5, 1, 1));

        let mut bad = ParityChecker::new(live.clone());
        for (i, r) in live.iter().flatten().enumerate() {
            let mut r = *r;
            if i == 2 {
                r = decision(3, 1, 51);
            }
            bad.check(&r);
        }
        bad.finish();
        assert!(!bad.passed());
        let first = bad.first.clone().unwrap();
        assert_eq!(first.decision_no, 3);
        assert_eq!(first.fields.len(), 1);
        assert_eq!(first.fields[0].field, "price");
        assert_eq!(bad.fire_set_differences(), (1, 1));
    }

    #[test]
    fn missing_replay_decisions_are_divergences() {
        let live: Vec<Option<Record>> = (1..=3).map(|n| Some(decision(n, 0, 50))).collect();
        let mut c = ParityChecker::new(live.clone());
        c.check(&decision(1, 0, 50));
        c.finish();
        assert_eq!(c.mismatched, 2);
        let first = c.first.unwrap();
        assert_eq!(first.decision_no, 2);
        assert!(first.replay.is_none());
    }
}
