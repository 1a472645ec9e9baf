//! ringbolt's bus: fixed-size records moved between processes through POSIX shared memory.
//!
//! A segment (one per producing process, e.g. `ringbolt-market` for the collector) holds one or
//! more **broadcast rings**. Each ring has exactly one writer thread ([`RingWriter`]) and any
//! number of independent [`Consumer`]s, each with its own cursor:
//!
//! - the producer never waits: it overwrites the oldest slot;
//! - every slot is a seqlock (`2s+1` while writing, `2s+2` when record `s` is complete), so a
//!   consumer never sees a torn record, and a consumer that was lapped learns it from the
//!   sequence and reports exactly how many records it skipped ([`Poll::Lost`]);
//! - a restarted producer keeps the mapping but moves to a new **epoch** whose sequences start a
//!   full lap past the old head, so consumers detect the restart ([`Poll::EpochChanged`]) instead
//!   of misreading stale slots;
//! - a segment with another layout, a truncated or a foreign one is refused with a clear error.
//!
//! No allocation, lock or syscall happens in [`Consumer::poll`], nor in [`RingWriter::publish`]
//! unless a consumer sleeps; an idle consumer sleeps on its segment's doorbell ([`Doorbells`], a futex word producers
//! ring only when someone sleeps; see [`wait`]).
//! The layout is the only contract between ringbolt's processes; [`schema`] pins it, and
//! [`columns`] describes every record kind once (layout, archive table, typed columns).

pub mod columns;
pub mod futex;
pub mod instruments;
pub mod layout;
pub mod record;
pub mod schema;
pub mod segment;
pub mod wait;

pub use instruments::{InstrumentStatus, InstrumentTableStats};
pub use layout::{LAYOUT_VERSION, instrument_generation, instrument_id, instrument_slot};
pub use record::*;
pub use segment::{
    BusError, Consumer, ConsumerInfo, Poll, Publisher, RingWriter, Segment, SegmentConfig, Start,
    Startup, now_ns,
};
pub use wait::{Doorbells, WaitStrategy};
