//! The instrument table: registration, retirement and generation-checked lookup.
//!
//! An instrument id is `generation << 16 | slot` ([`crate::layout::instrument_id`]). The
//! producer registers an instrument in a free slot (generation 0) or, once every slot has been
//! used, in a *retired* slot under the next generation; a slot retired at
//! [`INSTRUMENT_MAX_GENERATION`] is never reused. So an id value names at most one instrument for
//! the segment's whole life, and a lookup returns the name registered under exactly that id or
//! nothing: the entry is read under a seqlock and its stored id must equal the id asked for.
//! Retired entries keep their name until their slot is reused, which the round-robin reuse order
//! postpones as long as possible (a lagging consumer can still resolve them). ADR 0024.

use std::sync::atomic::{Ordering, fence};

use crate::layout::{
    INSTRUMENT_MAX_GENERATION, INSTRUMENT_NAME_MAX, InstrumentEntry, instrument_generation,
    instrument_id, instrument_slot, instrument_state,
};
use crate::record::Venue;
use crate::segment::{BusError, Publisher, Segment};

/// One consistent copy of an entry.
#[derive(Clone, Copy)]
struct EntryCopy {
    id: u32,
    venue: u8,
    state: u8,
    len: usize,
    name: [u8; INSTRUMENT_NAME_MAX],
}

impl EntryCopy {
    fn name(&self) -> &[u8] {
        &self.name[..self.len]
    }
}

/// Attempts of [`read_entry`] before it gives up on an entry the producer keeps rewriting (or
/// left half-written when it died: the next producer repairs it at take-over).
const READ_ATTEMPTS: u32 = 1 << 16;

/// Reads `entry` under its seqlock; `None` while it is never used. Retries while the producer
/// rewrites it (registration is rare, so a retry is too), at most [`READ_ATTEMPTS`] times.
fn read_entry(entry: &InstrumentEntry) -> Option<EntryCopy> {
    for _ in 0..READ_ATTEMPTS {
        let before = entry.version.load(Ordering::Acquire);
        if before == 0 {
            return None;
        }
        if before % 2 == 1 {
            std::hint::spin_loop();
            continue;
        }
        let mut copy = EntryCopy {
            id: entry.id.load(Ordering::Relaxed),
            venue: entry.venue.load(Ordering::Relaxed),
            state: entry.state.load(Ordering::Relaxed),
            len: usize::from(entry.len.load(Ordering::Relaxed)).min(INSTRUMENT_NAME_MAX),
            name: [0; INSTRUMENT_NAME_MAX],
        };
        for (chunk, word) in copy.name.chunks_exact_mut(8).zip(&entry.name) {
            chunk.copy_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
        }
        fence(Ordering::Acquire);
        if entry.version.load(Ordering::Relaxed) == before {
            return Some(copy);
        }
    }
    None
}

/// Rewrites `entry` under its seqlock (the caller holds the registration lock).
fn write_entry(entry: &InstrumentEntry, id: u32, venue: Venue, state: u8, name: &str) {
    // An odd version left by a producer that died mid-write is rounded up first.
    let version = entry.version.load(Ordering::Relaxed).next_multiple_of(2);
    entry.version.store(version + 1, Ordering::Relaxed);
    fence(Ordering::Release);
    let mut bytes = [0u8; INSTRUMENT_NAME_MAX];
    bytes[..name.len()].copy_from_slice(name.as_bytes());
    for (chunk, word) in bytes.chunks_exact(8).zip(&entry.name) {
        let mut le = [0u8; 8];
        le.copy_from_slice(chunk);
        word.store(u64::from_le_bytes(le), Ordering::Relaxed);
    }
    entry.id.store(id, Ordering::Relaxed);
    entry.venue.store(venue as u8, Ordering::Relaxed);
    entry.state.store(state, Ordering::Relaxed);
    // The name length was checked against INSTRUMENT_NAME_MAX (112) by the caller.
    entry.len.store(name.len() as u8, Ordering::Relaxed);
    entry.version.store(version + 2, Ordering::Release);
}

/// Occupancy of an instrument table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InstrumentTableStats {
    /// Entries in the table.
    pub capacity: usize,
    /// Entries ever used (high-water mark).
    pub used: usize,
    /// Entries holding a live instrument.
    pub live: usize,
    /// Entries holding a retired instrument (reusable unless at the last generation).
    pub retired: usize,
    /// The highest generation any entry holds.
    pub max_generation: u32,
}

/// Whether an id names the instrument an entry holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstrumentStatus {
    /// Registered and not retired.
    Live,
    /// Retired; its name still resolves.
    Retired,
    /// Never registered, or its slot now holds a later generation (the name is gone).
    Unknown,
}

impl Segment {
    /// At a take-over: an entry the dead producer left half-written (odd version) is closed as
    /// retired. Its id was never handed out (a registration that did not finish) or its name was
    /// rewritten unchanged (a retirement), so no record names it wrongly; its slot is reusable.
    pub(crate) fn repair_instrument_entries(&self) {
        for entry in self.used_entries() {
            let version = entry.version.load(Ordering::Acquire);
            if version % 2 == 1 {
                entry
                    .state
                    .store(instrument_state::RETIRED, Ordering::Relaxed);
                entry.version.store(version + 1, Ordering::Release);
            }
        }
    }

    fn used_entries(&self) -> &[InstrumentEntry] {
        let used = self.header().instrument_count.load(Ordering::Acquire) as usize;
        let table = self.instruments();
        &table[..used.min(table.len())]
    }

    fn entry_of(&self, id: u32) -> Option<EntryCopy> {
        let copy = read_entry(self.instruments().get(instrument_slot(id))?)?;
        (copy.id == id && copy.state != instrument_state::FREE).then_some(copy)
    }

    /// The venue and name registered under exactly `id` (live or retired), or `None` when no
    /// instrument was registered under it or its slot has been reused by a later generation.
    /// Never the name of another instrument.
    #[must_use]
    pub fn instrument(&self, id: u32) -> Option<(Venue, String)> {
        let copy = self.entry_of(id)?;
        let venue = Venue::from_u8(copy.venue)?;
        Some((venue, String::from_utf8_lossy(copy.name()).into_owned()))
    }

    /// Whether `id` is live, retired (name still resolvable) or unknown.
    #[must_use]
    pub fn instrument_status(&self, id: u32) -> InstrumentStatus {
        match self.entry_of(id).map(|c| c.state) {
            Some(instrument_state::LIVE) => InstrumentStatus::Live,
            Some(_) => InstrumentStatus::Retired,
            None => InstrumentStatus::Unknown,
        }
    }

    /// Live instruments: (id, venue, name). Cold path (scans the used part of the table).
    #[must_use]
    pub fn live_instruments(&self) -> Vec<(u32, Venue, String)> {
        self.used_entries()
            .iter()
            .filter_map(read_entry)
            .filter(|c| c.state == instrument_state::LIVE)
            .filter_map(|c| {
                let venue = Venue::from_u8(c.venue)?;
                Some((c.id, venue, String::from_utf8_lossy(c.name()).into_owned()))
            })
            .collect()
    }

    /// Occupancy of the instrument table.
    #[must_use]
    pub fn instrument_stats(&self) -> InstrumentTableStats {
        let mut stats = InstrumentTableStats {
            capacity: self.instruments().len(),
            used: self.used_entries().len(),
            ..InstrumentTableStats::default()
        };
        for copy in self.used_entries().iter().filter_map(read_entry) {
            match copy.state {
                instrument_state::LIVE => stats.live += 1,
                instrument_state::RETIRED => stats.retired += 1,
                _ => {}
            }
            stats.max_generation = stats.max_generation.max(instrument_generation(copy.id));
        }
        stats
    }
}

impl Publisher {
    /// Registers (or finds the live) instrument `(venue, name)` and returns its id. Cold path:
    /// takes a lock and scans the table.
    ///
    /// # Errors
    /// [`BusError::Instrument`] when the name is too long or no entry is free or retired.
    pub fn register_instrument(&self, venue: Venue, name: &str) -> Result<u32, BusError> {
        let too = |reason| BusError::Instrument {
            name: name.to_owned(),
            reason,
        };
        if name.len() > INSTRUMENT_NAME_MAX {
            return Err(too("name longer than 112 bytes"));
        }
        let mut cursor = self
            .registry
            .lock()
            .map_err(|_| too("registry lock poisoned"))?;
        let segment = &self.segment;
        let found = segment
            .used_entries()
            .iter()
            .filter_map(read_entry)
            .find(|c| {
                c.state == instrument_state::LIVE
                    && c.venue == venue as u8
                    && c.name() == name.as_bytes()
            });
        if let Some(copy) = found {
            return Ok(copy.id);
        }
        let table = segment.instruments();
        let used = segment.used_entries().len();
        let (slot, id) = if used < table.len() {
            (used, instrument_id(used, 0))
        } else {
            let slot = (0..table.len())
                .map(|k| (*cursor + k) % table.len())
                .find(|&slot| {
                    read_entry(&table[slot]).is_some_and(|c| {
                        c.state == instrument_state::RETIRED
                            && instrument_generation(c.id) < INSTRUMENT_MAX_GENERATION
                    })
                })
                .ok_or_else(|| too("instrument table full: every entry is live"))?;
            let old = table[slot].id.load(Ordering::Relaxed);
            (slot, instrument_id(slot, instrument_generation(old) + 1))
        };
        write_entry(&table[slot], id, venue, instrument_state::LIVE, name);
        if slot == used {
            segment
                .header()
                .instrument_count
                .store(used as u32 + 1, Ordering::Release);
        }
        *cursor = (slot + 1) % table.len();
        Ok(id)
    }

    /// Retires instrument `id`: records may still carry it and its name still resolves, but its
    /// slot may be reused under the next generation. Returns whether `id` was live.
    pub fn retire_instrument(&self, id: u32) -> bool {
        let Ok(_guard) = self.registry.lock() else {
            return false;
        };
        let Some(entry) = self.segment.instruments().get(instrument_slot(id)) else {
            return false;
        };
        let Some(copy) = read_entry(entry).filter(|c| c.id == id) else {
            return false;
        };
        if copy.state != instrument_state::LIVE {
            return false;
        }
        let Some(venue) = Venue::from_u8(copy.venue) else {
            return false;
        };
        let name = String::from_utf8_lossy(copy.name()).into_owned();
        write_entry(entry, id, venue, instrument_state::RETIRED, &name);
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::segment::SegmentConfig;

    #[test]
    fn an_entry_left_half_written_is_not_read_and_is_repaired_at_take_over() {
        let name = format!("rb-test-{}-torn-entry", std::process::id());
        let config = SegmentConfig {
            rings: 1,
            capacity: 64,
            instrument_capacity: 4,
        };
        let publisher = Publisher::create(&name, config).unwrap();
        let id = publisher
            .register_instrument(Venue::Coinbase, "BTC-USD")
            .unwrap();
        let seg = publisher.segment();
        // A producer that died inside `write_entry`: the version stays odd.
        let entry = &seg.instruments()[0];
        entry.version.fetch_add(1, Ordering::AcqRel);
        assert_eq!(seg.instrument(id), None, "a torn entry is never returned");
        seg.repair_instrument_entries();
        assert_eq!(seg.instrument_status(id), InstrumentStatus::Retired);
        assert_eq!(entry.version.load(Ordering::Acquire) % 2, 0);
        // Free entries go first; then the repaired slot is reused under the next generation.
        for (k, symbol) in ["a", "b", "c"].into_iter().enumerate() {
            let got = publisher
                .register_instrument(Venue::Kraken, symbol)
                .unwrap();
            assert_eq!(got, k as u32 + 1);
        }
        let reused = publisher
            .register_instrument(Venue::Okx, "BTC-USDT")
            .unwrap();
        assert_eq!(reused, crate::layout::instrument_id(0, 1));
        assert_eq!(seg.instrument(reused).unwrap().1, "BTC-USDT");
        assert_eq!(seg.instrument(id), None);
        let _ = Segment::unlink(&name);
    }
}
