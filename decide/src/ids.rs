//! Input-segment instrument ids → engine ids, generation-checked.
//!
//! A bus instrument id is `generation << 16 | slot` (`ringbolt_bus::instrument_id`): a retired
//! entry's slot is reused under the next generation, so an id value never names two instruments.
//! The engine keeps per-instrument state in flat arrays, so it needs small dense ids: input
//! segment `k`'s slot `s` is engine id `k × SEGMENT_ID_SPAN + s`. [`IdMap`] remembers which bus
//! id each engine id currently stands for, so a new generation in a slot is seen as a *new*
//! instrument (its state is reset and its name looked up again) and a record of an older
//! generation than the one mapped (an instrument whose slot was reused) is refused rather than
//! attributed to the slot's current instrument (ADR 0024).

use ringbolt_bus::{instrument_generation, instrument_slot};

/// Engine ids per input segment: input segment `k`'s slot `s` is `k × SEGMENT_ID_SPAN + s`.
/// A segment the trade process reads must have an instrument table of at most this many
/// entries (`[feeds] instrument_capacity`); slots beyond are counted as unmapped.
pub const SEGMENT_ID_SPAN: u32 = 8192;

const NONE: u32 = u32::MAX;

/// What [`IdMap::map`] found for a record's bus id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mapped {
    /// The engine id already stands for this bus id.
    Known(u32),
    /// The engine id now stands for this bus id: first sight (`replaced` false) or a newer
    /// generation in the slot (`replaced` true: the caller forgets what it knew about the
    /// slot's previous instrument). The caller registers the instrument.
    New {
        /// The engine id.
        engine: u32,
        /// Whether it stood for another (older) bus id before.
        replaced: bool,
    },
    /// The bus id is of an older generation than the one the slot stands for: its instrument was
    /// retired and its slot reused; the record must not be attributed to the slot's instrument.
    Stale,
    /// The slot is beyond [`SEGMENT_ID_SPAN`] or the segment beyond the map.
    Unmapped,
}

/// The generation-checked map from `(input segment, bus id)` to engine id. Its size is fixed at
/// construction (`segments × SEGMENT_ID_SPAN` words): it never grows with uptime.
#[derive(Clone, Debug)]
pub struct IdMap {
    held: Vec<u32>,
}

impl IdMap {
    /// A map for `segments` input segments.
    #[must_use]
    pub fn new(segments: usize) -> Self {
        Self {
            held: vec![NONE; segments.max(1) * SEGMENT_ID_SPAN as usize],
        }
    }

    /// Makes room for `segments` input segments (cold; a reader that discovers its segments as
    /// it goes).
    pub fn grow(&mut self, segments: usize) {
        let len = segments * SEGMENT_ID_SPAN as usize;
        if len > self.held.len() {
            self.held.resize(len, NONE);
        }
    }

    /// The engine id of bus id `bus_id` of input segment `segment`, or `None` when unmapped.
    #[must_use]
    pub fn engine_id(&self, segment: usize, bus_id: u32) -> Option<u32> {
        let slot = instrument_slot(bus_id);
        let e = segment * SEGMENT_ID_SPAN as usize + slot;
        (slot < SEGMENT_ID_SPAN as usize && e < self.held.len()).then_some(e as u32)
    }

    /// Maps bus id `bus_id` of input segment `segment` (see [`Mapped`]).
    #[inline]
    pub fn map(&mut self, segment: usize, bus_id: u32) -> Mapped {
        let Some(e) = self.engine_id(segment, bus_id) else {
            return Mapped::Unmapped;
        };
        let held = &mut self.held[e as usize];
        if *held == bus_id {
            return Mapped::Known(e);
        }
        if *held != NONE && instrument_generation(bus_id) < instrument_generation(*held) {
            return Mapped::Stale;
        }
        let replaced = *held != NONE;
        *held = bus_id;
        Mapped::New {
            engine: e,
            replaced,
        }
    }

    /// The bus id engine id `engine_id` currently stands for.
    #[must_use]
    pub fn bus_id(&self, engine_id: u32) -> Option<u32> {
        self.held
            .get(engine_id as usize)
            .copied()
            .filter(|&id| id != NONE)
    }

    /// Engine ids currently standing for a bus id (at most `segments × SEGMENT_ID_SPAN`).
    #[must_use]
    pub fn mapped(&self) -> usize {
        self.held.iter().filter(|&&id| id != NONE).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringbolt_bus::instrument_id;

    #[test]
    fn a_new_generation_is_new_and_an_older_one_is_stale() {
        let mut m = IdMap::new(2);
        let old = instrument_id(5, 0);
        let new = instrument_id(5, 1);
        let new_in = |engine, replaced| Mapped::New { engine, replaced };
        assert_eq!(m.map(1, old), new_in(SEGMENT_ID_SPAN + 5, false));
        assert_eq!(m.map(1, old), Mapped::Known(SEGMENT_ID_SPAN + 5));
        assert_eq!(m.map(0, old), new_in(5, false), "segments are separate");
        assert_eq!(m.map(1, new), new_in(SEGMENT_ID_SPAN + 5, true));
        assert_eq!(m.bus_id(SEGMENT_ID_SPAN + 5), Some(new));
        assert_eq!(
            m.map(1, old),
            Mapped::Stale,
            "never attributed to the new instrument"
        );
        assert_eq!(
            m.map(1, instrument_id(SEGMENT_ID_SPAN as usize, 0)),
            Mapped::Unmapped
        );
        assert_eq!(m.map(2, old), Mapped::Unmapped);
        assert_eq!(m.mapped(), 2);
    }
}
