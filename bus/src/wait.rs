//! How consumers idle when their rings are empty: spin briefly, then sleep on the segment's
//! **doorbell**, a futex word in the segment header that producers ring only when someone sleeps.
//!
//! The protocol (ADR 0025, `docs/adr/0025-futex-doorbell.md`):
//!
//! - producer, after every publish: slot stores → `fence(SeqCst)` → load `sleepers`; only if it
//!   is not 0: `wake_seq.fetch_add(1)` and `FUTEX_WAKE` (so the hot path is one fence and one
//!   load of a cached line, no syscall, when every consumer is awake);
//! - consumer going to sleep: `sleepers.fetch_add(1)` → `fence(SeqCst)` → `w = wake_seq` → re-check
//!   its rings ([`Consumer::pending`]) → `FUTEX_WAIT(wake_seq, w, timeout)` → `sleepers -= 1`.
//!
//! Either the producer's load sees the consumer's increment (and it rings after publishing), or
//! the consumer's re-check sees the record (and it does not sleep); the two `SeqCst` fences rule
//! out both missing. A ring that comes after the consumer read `w` changes the word, so the
//! kernel's compare in `FUTEX_WAIT` refuses to sleep. Every sleep is bounded by a timeout, so a
//! producer killed mid-publish, or a wake-up lost to anything outside this protocol, costs at
//! most one timeout.

use std::sync::Arc;
use std::sync::atomic::{Ordering, fence};
use std::time::{Duration, Instant};

use crate::futex::{self, Woke};
use crate::record::Record;
use crate::segment::{Consumer, Poll, Segment};

/// How a consumer idles between empty polls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitStrategy {
    /// Never sleep: for hot consumers pinned to isolated cores.
    Spin,
    /// Spin `spins` empty polls, then sleep on the segment's doorbell (futex) until a producer
    /// publishes, at most `park` per sleep (the bound that keeps a dead producer from stranding
    /// the consumer).
    SpinThenPark {
        /// Empty polls before sleeping.
        spins: u32,
        /// Longest single sleep.
        park: Duration,
    },
    /// Sleep `interval` between polls (tests and tools that want a fixed cadence; not for data
    /// paths).
    Sleep {
        /// Sleep per empty poll.
        interval: Duration,
    },
}

impl Default for WaitStrategy {
    fn default() -> Self {
        WaitStrategy::SpinThenPark {
            spins: 256,
            park: Duration::from_millis(100),
        }
    }
}

/// One segment's doorbell as a sleeping consumer holds it.
#[derive(Debug)]
struct Bell {
    segment: Arc<Segment>,
    /// A registry slot of this process's consumer on the segment, marked `asleep` while counted.
    registry: Option<usize>,
}

/// The doorbells of every segment a consumer (or a set of consumers) reads: sleeps until any of
/// them rings (`futex_waitv` over one word per segment), a timeout passes, or a re-check finds
/// data. Build it from the consumers it will guard and rebuild it when they change (it keeps
/// their registry slots).
#[derive(Debug, Default)]
pub struct Doorbells {
    bells: Vec<Bell>,
    /// Sleeps taken (the futex was entered).
    pub sleeps: u64,
    /// Sleeps skipped because the re-check found data.
    pub rechecks_hit: u64,
}

impl Doorbells {
    /// Doorbells of the segments `consumers` read (one per segment).
    #[must_use]
    pub fn new<'a>(consumers: impl IntoIterator<Item = &'a Consumer>) -> Self {
        let mut bells = Self::default();
        for consumer in consumers {
            bells.add(consumer);
        }
        bells
    }

    /// Adds `consumer`'s segment (no-op when it is already there).
    pub fn add(&mut self, consumer: &Consumer) {
        let segment = consumer.segment();
        if let Some(bell) = self
            .bells
            .iter_mut()
            .find(|b| Arc::ptr_eq(&b.segment, segment))
        {
            bell.registry = bell.registry.or(consumer.registry_index());
            return;
        }
        self.bells.push(Bell {
            segment: Arc::clone(segment),
            registry: consumer.registry_index(),
        });
    }

    /// Number of segments watched.
    #[must_use]
    pub fn len(&self) -> usize {
        self.bells.len()
    }

    /// Whether no segment is watched.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.bells.is_empty()
    }

    /// Sleeps until a producer of any watched segment rings, at most `timeout`, unless
    /// `pending` (the caller's re-check of its rings, e.g. [`Consumer::pending`] over them) says
    /// there is already something to read after the sleep was announced. Returns
    /// [`Woke::Signalled`] without sleeping in that case. No allocation.
    pub fn sleep(&mut self, timeout: Duration, pending: impl FnMut() -> bool) -> Woke {
        let woke = sleep_on(
            self.bells.iter().map(|b| (&*b.segment, b.registry)),
            timeout,
            pending,
        );
        match woke {
            None => self.rechecks_hit += 1,
            Some(_) => self.sleeps += 1,
        }
        woke.unwrap_or(Woke::Signalled)
    }
}

/// The consumer side of the protocol over `bells` (segment, registry slot to mark): announce,
/// fence, read the words, re-check, sleep, withdraw. `None` when the re-check found data.
fn sleep_on<'a>(
    bells: impl Iterator<Item = (&'a Segment, Option<usize>)> + Clone,
    timeout: Duration,
    mut pending: impl FnMut() -> bool,
) -> Option<Woke> {
    for (segment, registry) in bells.clone() {
        segment.header().sleepers.fetch_add(1, Ordering::Relaxed);
        if let Some(slot) = registry.and_then(|i| segment.consumer_slot(i)) {
            slot.asleep.store(1, Ordering::Relaxed);
        }
    }
    fence(Ordering::SeqCst);
    // The words are read before the re-check: a ring after this read changes the word, so
    // FUTEX_WAIT will not sleep on the stale value.
    let mut seen = [0u32; futex::WAITV_MAX];
    for ((segment, _), word) in bells.clone().zip(seen.iter_mut()) {
        *word = segment.header().wake_seq.load(Ordering::Acquire);
    }
    let woke = (!pending()).then(|| {
        futex::wait_any(
            bells
                .clone()
                .zip(seen)
                .map(|((segment, _), w)| (&segment.header().wake_seq, w)),
            timeout,
        )
    });
    for (segment, registry) in bells {
        if let Some(slot) = registry.and_then(|i| segment.consumer_slot(i)) {
            slot.asleep.store(0, Ordering::Relaxed);
        }
        segment.header().sleepers.fetch_sub(1, Ordering::Relaxed);
    }
    woke
}

impl Consumer {
    /// Polls until something other than [`Poll::Empty`] happens or `deadline` passes (then
    /// returns `Poll::Empty`). In [`WaitStrategy::SpinThenPark`] the consumer sleeps on its
    /// segment's doorbell after the spins, so an idle consumer costs no CPU.
    pub fn wait(
        &mut self,
        out: &mut Record,
        strategy: WaitStrategy,
        deadline: Option<Instant>,
    ) -> Poll {
        let mut empty_polls: u32 = 0;
        loop {
            let poll = self.poll(out);
            if poll != Poll::Empty {
                return poll;
            }
            empty_polls = empty_polls.saturating_add(1);
            let now = match strategy {
                WaitStrategy::Spin => {
                    core::hint::spin_loop();
                    // Reading the clock costs ~20 ns; in spin mode do it every 64 polls.
                    if !empty_polls.is_multiple_of(64) {
                        continue;
                    }
                    Instant::now()
                }
                WaitStrategy::SpinThenPark { spins, park } => {
                    if empty_polls < spins {
                        core::hint::spin_loop();
                        continue;
                    }
                    let now = Instant::now();
                    let timeout =
                        deadline.map_or(park, |d| park.min(d.saturating_duration_since(now)));
                    let bell = (&**self.segment(), self.registry_index());
                    sleep_on(std::iter::once(bell), timeout, || self.pending());
                    Instant::now()
                }
                WaitStrategy::Sleep { interval } => {
                    std::thread::sleep(interval);
                    Instant::now()
                }
            };
            if deadline.is_some_and(|d| now >= d) {
                return Poll::Empty;
            }
        }
    }
}
