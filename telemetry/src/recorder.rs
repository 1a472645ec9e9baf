//! The hot side: a [`StageRecorder`] per recording component, each with its own histogram sets.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender};

use hdrhistogram::Histogram;

use crate::dumper::{Msg, Shared};
use crate::stages::StageId;
use crate::{LOWEST_NS, latency_histogram};

/// One interval's histograms, one per stage of the process, and the exact sum of each stage's
/// values (for `ringbolt_stage_latency_ns_sum`).
#[derive(Debug)]
pub struct StageSet {
    pub(crate) histograms: Vec<Histogram<u64>>,
    pub(crate) sums_ns: Vec<u64>,
    /// The dumper epoch at which the recorder handed the set over.
    pub(crate) epoch: u64,
    /// Where the dumper returns the set once written (`None` for the dumper's own set).
    pub(crate) home: Option<SyncSender<StageSet>>,
}

impl StageSet {
    pub(crate) fn new(stages: usize, home: Option<SyncSender<StageSet>>) -> StageSet {
        StageSet {
            histograms: (0..stages).map(|_| latency_histogram()).collect(),
            sums_ns: vec![0; stages],
            epoch: 0,
            home,
        }
    }

    /// The histogram of stage index `i`.
    #[must_use]
    pub fn histogram(&self, i: usize) -> Option<&Histogram<u64>> {
        self.histograms.get(i)
    }

    pub(crate) fn reset(&mut self) {
        for h in &mut self.histograms {
            h.reset();
        }
        self.sums_ns.fill(0);
    }

    /// Adds `other` into `self` (same bounds: no allocation).
    pub(crate) fn absorb(&mut self, other: &StageSet) {
        for (mine, theirs) in self.histograms.iter_mut().zip(&other.histograms) {
            // Same bounds on both sides: `add` cannot fail or grow.
            let _ = mine.add(theirs);
        }
        for (mine, theirs) in self.sums_ns.iter_mut().zip(&other.sums_ns) {
            *mine = mine.saturating_add(*theirs);
        }
    }
}

/// Records latencies per stage on one thread and hands its sets to the process's dumper.
///
/// [`StageRecorder::record`] is a bounds-checked counter increment and an add: no allocation,
/// lock or syscall. [`StageRecorder::maybe_rotate`], called once per loop turn, is one relaxed
/// atomic load until the dumper opens a new interval; then it swaps in a spare, pre-allocated
/// set (still without allocating) and hands the full one over through a bounded channel. If the
/// dumper holds every spare set, recording simply continues into the current set (its interval
/// grows) and [`StageRecorder::dropped_rotations`] counts it; nothing ever blocks.
///
/// Dropping the recorder hands its last (partial) set to the dumper.
#[derive(Debug)]
pub struct StageRecorder {
    current: StageSet,
    epoch_seen: u64,
    shared: Arc<Shared>,
    full_tx: SyncSender<Msg>,
    empty_rx: Receiver<StageSet>,
    dropped_rotations: u64,
}

impl StageRecorder {
    pub(crate) fn new(
        shared: Arc<Shared>,
        full_tx: SyncSender<Msg>,
        spares: usize,
    ) -> StageRecorder {
        let n = shared.table.stages.len();
        let (empty_tx, empty_rx) = std::sync::mpsc::sync_channel(spares + 1);
        for _ in 0..spares {
            // The channel has room for every spare: this cannot fail.
            let _ = empty_tx.try_send(StageSet::new(n, Some(empty_tx.clone())));
        }
        shared.live.fetch_add(1, Ordering::AcqRel);
        StageRecorder {
            current: StageSet::new(n, Some(empty_tx)),
            epoch_seen: shared.epoch.load(Ordering::Acquire),
            shared,
            full_tx,
            empty_rx,
            dropped_rotations: 0,
        }
    }

    /// Records one latency in ns. Values above [`crate::HIGHEST_NS`] saturate at the bound,
    /// zero is recorded in the lowest bucket; a stage outside the process's table is ignored.
    #[inline]
    pub fn record(&mut self, stage: StageId, latency_ns: u64) {
        let i = stage.index();
        if let (Some(h), Some(sum)) = (
            self.current.histograms.get_mut(i),
            self.current.sums_ns.get_mut(i),
        ) {
            h.saturating_record(latency_ns.max(LOWEST_NS));
            *sum = sum.saturating_add(latency_ns);
        }
    }

    /// Records the latency between two `CLOCK_REALTIME` ns stamps (0 if `to < from`, e.g. a
    /// clock step).
    #[inline]
    pub fn record_between(&mut self, stage: StageId, from_ns: i64, to_ns: i64) {
        let latency = u64::try_from(to_ns.saturating_sub(from_ns)).unwrap_or(0);
        self.record(stage, latency);
    }

    /// Hands the current set to the dumper when it opened a new interval. Call it once per
    /// loop turn: one relaxed load otherwise. Returns whether a set was handed over.
    #[inline]
    pub fn maybe_rotate(&mut self) -> bool {
        if self.shared.epoch.load(Ordering::Relaxed) == self.epoch_seen {
            return false;
        }
        self.rotate()
    }

    /// Hands the current set over now (e.g. before a planned stop).
    pub fn flush(&mut self) -> bool {
        self.rotate()
    }

    #[cold]
    fn rotate(&mut self) -> bool {
        self.epoch_seen = self.shared.epoch.load(Ordering::Acquire);
        let Ok(fresh) = self.empty_rx.try_recv() else {
            // The dumper still holds every spare set: keep recording, try again next interval.
            self.dropped_rotations += 1;
            return false;
        };
        let mut full = core::mem::replace(&mut self.current, fresh);
        full.epoch = self.epoch_seen;
        if let Err(e) = self.full_tx.try_send(Msg::Set(full)) {
            // Dumper gone or its queue full: keep the set as a spare, count the interval lost.
            let (std::sync::mpsc::TrySendError::Full(msg)
            | std::sync::mpsc::TrySendError::Disconnected(msg)) = e;
            if let Msg::Set(mut set) = msg {
                set.reset();
                if let Some(home) = set.home.clone() {
                    let _ = home.try_send(set);
                }
            }
            self.dropped_rotations += 1;
            return false;
        }
        true
    }

    /// Times a rotation could not hand a set over (the dumper was behind).
    #[must_use]
    pub fn dropped_rotations(&self) -> u64 {
        self.dropped_rotations
    }

    /// The histogram being recorded now for `stage`.
    #[must_use]
    pub fn current(&self, stage: StageId) -> Option<&Histogram<u64>> {
        self.current.histogram(stage.index())
    }
}

impl Drop for StageRecorder {
    fn drop(&mut self) {
        let empty = StageSet {
            histograms: Vec::new(),
            sums_ns: Vec::new(),
            epoch: 0,
            home: None,
        };
        let mut last = core::mem::replace(&mut self.current, empty);
        last.epoch = self.shared.epoch.load(Ordering::Acquire);
        last.home = None;
        let _ = self.full_tx.try_send(Msg::Set(last));
        self.shared.live.fetch_sub(1, Ordering::AcqRel);
    }
}
