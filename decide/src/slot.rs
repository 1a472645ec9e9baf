//! Lock-free single-writer slots (seqlocks) between the reflex and model threads.
//!
//! The payload is an array of `AtomicU64` words, so a torn read is impossible to *observe*
//! (the sequence check rejects it) and no `unsafe` is needed. The writer never waits; a reader
//! retries a bounded number of times and otherwise reports "busy", so neither path ever blocks
//! the other.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
use std::time::Duration;

use crate::features::N_FEATURES;

/// Reader attempts before giving up on a slot being written.
const READ_ATTEMPTS: usize = 4;

/// A seqlock over `W` 64-bit words. Exactly one thread may call [`SeqSlot::write`].
#[derive(Debug)]
pub struct SeqSlot<const W: usize> {
    seq: AtomicU64,
    words: [AtomicU64; W],
}

impl<const W: usize> Default for SeqSlot<W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const W: usize> SeqSlot<W> {
    /// An empty slot (version 0 = never written).
    #[must_use]
    pub fn new() -> Self {
        Self {
            seq: AtomicU64::new(0),
            words: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Publishes `words` (single writer). Wait-free.
    pub fn write(&self, words: &[u64; W]) {
        let s = self.seq.load(Ordering::Relaxed);
        debug_assert!(s.is_multiple_of(2), "two writers on one seqlock");
        self.seq.store(s.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        for (slot, w) in self.words.iter().zip(words) {
            slot.store(*w, Ordering::Relaxed);
        }
        self.seq.store(s.wrapping_add(2), Ordering::Release);
    }

    /// Copies a consistent payload into `out` and returns its version (writes so far), or
    /// `None` if nothing was written yet or the writer kept the slot busy for every attempt.
    pub fn read(&self, out: &mut [u64; W]) -> Option<u64> {
        for _ in 0..READ_ATTEMPTS {
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 == 0 {
                return None;
            }
            if !s1.is_multiple_of(2) {
                std::hint::spin_loop();
                continue;
            }
            for (o, slot) in out.iter_mut().zip(&self.words) {
                *o = slot.load(Ordering::Relaxed);
            }
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == s1 {
                return Some(s1 / 2);
            }
        }
        None
    }

    /// Current version (writes completed), without reading the payload.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.seq.load(Ordering::Acquire) / 2
    }
}

/// The model path's latest output, as read by the reflex path.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelProb {
    /// Ensemble P(Up).
    pub p_up: f64,
    /// Event time of the feature vector it was scored on (ns).
    pub features_ts_ns: i64,
    /// Schema hash of the model.
    pub schema_hash: u32,
    /// Version of the feature vector scored.
    pub features_version: u64,
}

const PROB_WORDS: usize = 4;

/// Seqlock slot carrying [`ModelProb`].
#[derive(Debug, Default)]
pub struct ProbSlot(SeqSlot<PROB_WORDS>);

impl ProbSlot {
    /// Publishes a probability (model thread only).
    pub fn publish(&self, p: &ModelProb) {
        self.0.write(&[
            p.p_up.to_bits(),
            p.features_ts_ns as u64,
            u64::from(p.schema_hash),
            p.features_version,
        ]);
    }

    /// The latest probability, if any (never blocks).
    #[must_use]
    pub fn latest(&self) -> Option<ModelProb> {
        let mut w = [0u64; PROB_WORDS];
        self.0.read(&mut w)?;
        Some(ModelProb {
            p_up: f64::from_bits(w[0]),
            features_ts_ns: w[1] as i64,
            schema_hash: w[2] as u32,
            features_version: w[3],
        })
    }
}

const FEATURE_WORDS: usize = N_FEATURES.div_ceil(2) + 1;

/// Seqlock slot carrying a feature vector from the reflex thread to the model thread, with a
/// futex doorbell so an idle model thread sleeps instead of polling (the bus's doorbell protocol,
/// ADR 0025: publish → `SeqCst` fence → load `sleepers`; sleeper: count → fence → read the
/// bell → re-check the version → `FUTEX_WAIT`).
#[derive(Debug, Default)]
pub struct FeatureSlot {
    slot: SeqSlot<FEATURE_WORDS>,
    bell: AtomicU32,
    sleepers: AtomicU32,
}

impl FeatureSlot {
    /// Publishes a feature vector computed at event time `ts_ns` (reflex thread only).
    pub fn publish(&self, features: &[f32; N_FEATURES], ts_ns: i64) {
        let mut w = [0u64; FEATURE_WORDS];
        for (i, pair) in features.chunks(2).enumerate() {
            let lo = u64::from(pair[0].to_bits());
            let hi = pair.get(1).map_or(0, |x| u64::from(x.to_bits()));
            w[i] = lo | hi << 32;
        }
        w[FEATURE_WORDS - 1] = ts_ns as u64;
        self.slot.write(&w);
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::Relaxed) != 0 {
            self.bell.fetch_add(1, Ordering::Release);
            ringbolt_bus::futex::wake_all(&self.bell);
        }
    }

    /// Sleeps until a version newer than `seen` is published, at most `timeout` (model thread).
    pub fn wait_newer(&self, seen: u64, timeout: Duration) {
        self.sleepers.fetch_add(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        let bell = self.bell.load(Ordering::Acquire);
        if self.version() == seen {
            ringbolt_bus::futex::wait(&self.bell, bell, timeout);
        }
        self.sleepers.fetch_sub(1, Ordering::Relaxed);
    }

    /// Copies the latest vector into `out` and returns (version, event time), or `None`.
    pub fn read(&self, out: &mut [f32; N_FEATURES]) -> Option<(u64, i64)> {
        let mut w = [0u64; FEATURE_WORDS];
        let version = self.slot.read(&mut w)?;
        for (i, x) in out.iter_mut().enumerate() {
            let word = w[i / 2];
            *x = f32::from_bits(if i % 2 == 0 {
                word as u32
            } else {
                (word >> 32) as u32
            });
        }
        Some((version, w[FEATURE_WORDS - 1] as i64))
    }

    /// Versions published so far.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.slot.version()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn readers_never_see_torn_payloads() {
        let slot = Arc::new(SeqSlot::<8>::new());
        let writer = {
            let slot = Arc::clone(&slot);
            std::thread::spawn(move || {
                for i in 1..=200_000u64 {
                    slot.write(&[i; 8]);
                }
            })
        };
        let mut seen = 0;
        let mut out = [0u64; 8];
        while !writer.is_finished() || seen == 0 {
            if slot.read(&mut out).is_some() {
                assert!(out.iter().all(|w| *w == out[0]), "torn read {out:?}");
                seen += 1;
            }
        }
        writer.join().unwrap();
        assert_eq!(slot.version(), 200_000);
    }

    #[test]
    fn feature_slot_round_trips() {
        let slot = FeatureSlot::default();
        let mut f = [0f32; N_FEATURES];
        for (i, x) in f.iter_mut().enumerate() {
            *x = i as f32 * 0.5 - 3.0;
        }
        slot.publish(&f, 42);
        let mut out = [0f32; N_FEATURES];
        assert_eq!(slot.read(&mut out), Some((1, 42)));
        assert_eq!(out, f);
        let p = ProbSlot::default();
        assert_eq!(p.latest(), None);
        let m = ModelProb {
            p_up: 0.61,
            features_ts_ns: 7,
            schema_hash: 9,
            features_version: 1,
        };
        p.publish(&m);
        assert_eq!(p.latest(), Some(m));
    }

    /// A model thread asleep in `wait_newer` wakes for each publish, long before its timeout.
    #[test]
    fn feature_slot_wakes_a_sleeping_reader() {
        let slot = Arc::new(FeatureSlot::default());
        let reader = Arc::clone(&slot);
        let sleeper = std::thread::spawn(move || {
            let t0 = std::time::Instant::now();
            let mut seen = 0;
            while seen < 50 {
                reader.wait_newer(seen, Duration::from_secs(30));
                seen = reader.version();
            }
            t0.elapsed()
        });
        let f = [1f32; N_FEATURES];
        for ts in 0..50 {
            std::thread::sleep(Duration::from_millis(2));
            slot.publish(&f, ts);
        }
        let took = sleeper.join().expect("sleeper");
        assert!(took < Duration::from_secs(20), "took {took:?}");
        assert_eq!(slot.sleepers.load(Ordering::Relaxed), 0);
    }
}
