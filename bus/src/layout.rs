//! The shared-memory layout: segment header, ring headers, consumer registry, instrument table.
//!
//! ```text
//! offset 0            SegmentHeader (4 KiB page): identity line, control line, doorbell line
//! offset 4096         RingHeader × ring_count         (256 B each: head line, epoch line)
//! then                ConsumerSlot × MAX_CONSUMERS    (64 B each)
//! then                InstrumentEntry × instrument_capacity (128 B each)
//! then (4 KiB aligned) ring 0 slots: capacity × Record, ring 1 slots, …
//! ```
//!
//! All cross-process mutable state is atomics; everything else is written once by the creator
//! before the segment's state becomes `READY`.

use core::sync::atomic::{AtomicU8, AtomicU32, AtomicU64};

use crate::record::{RECORD_SIZE, Record};

/// `b"RBOLTBUS"` as the first eight bytes of every segment.
pub const MAGIC: [u8; 8] = *b"RBOLTBUS";

/// Version of the binary layout (header, ring headers, record and bodies).
///
/// Bump it whenever anything in `layout.rs` or `record.rs` changes shape; the schema-drift gate
/// (`bus/schema/layout-v<N>.txt`) fails the build otherwise.
pub const LAYOUT_VERSION: u32 = 3;

/// Size of the segment header (one page).
pub const HEADER_SIZE: usize = 4096;
/// Maximum number of registered consumers per segment.
pub const MAX_CONSUMERS: usize = 64;
/// Maximum length of an instrument name in bytes.
pub const INSTRUMENT_NAME_MAX: usize = 112;
/// Low bits of an instrument id that name its table slot (the table holds at most 2^16 entries).
/// The bits above are the slot's **generation**, bumped each time a retired slot is reused, so an
/// id (slot, generation) names one instrument for the segment's whole life (ADR 0024).
pub const INSTRUMENT_SLOT_BITS: u32 = 16;
/// The last generation a slot may hold; a slot retired at this generation is never reused.
pub const INSTRUMENT_MAX_GENERATION: u32 = (1 << (32 - INSTRUMENT_SLOT_BITS)) - 1;

/// The table slot of instrument id `id`.
#[must_use]
pub const fn instrument_slot(id: u32) -> usize {
    (id & ((1 << INSTRUMENT_SLOT_BITS) - 1)) as usize
}

/// The generation of instrument id `id` (0 for a slot's first instrument).
#[must_use]
pub const fn instrument_generation(id: u32) -> u32 {
    id >> INSTRUMENT_SLOT_BITS
}

/// The id of generation `generation` of slot `slot`.
#[must_use]
pub const fn instrument_id(slot: usize, generation: u32) -> u32 {
    (generation << INSTRUMENT_SLOT_BITS) | slot as u32
}

/// Instrument entry states, stored in [`InstrumentEntry::state`].
pub mod instrument_state {
    /// Never used.
    pub const FREE: u8 = 0;
    /// Registered: records may carry its id.
    pub const LIVE: u8 = 1;
    /// Retired (its window closed): its name still resolves until the slot is reused under the
    /// next generation.
    pub const RETIRED: u8 = 2;
}

/// Segment lifecycle state, stored in [`SegmentHeader::state`].
pub mod state {
    /// Being created or re-initialised; do not read.
    pub const INITIALIZING: u32 = 0;
    /// Live.
    pub const READY: u32 = 1;
    /// A new producer is taking over (epoch change in progress).
    pub const RESTARTING: u32 = 2;
    /// Abandoned: the producer recreated the segment with another layout; reopen by name.
    pub const RETIRED: u32 = 3;
}

/// The identity and control block at offset 0.
#[derive(Debug)]
#[repr(C, align(64))]
pub struct SegmentHeader {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`LAYOUT_VERSION`] of the creator.
    pub layout_version: u32,
    /// [`HEADER_SIZE`].
    pub header_size: u32,
    /// [`RECORD_SIZE`].
    pub record_size: u32,
    /// Number of rings.
    pub ring_count: u32,
    /// Records per ring (a power of two).
    pub capacity: u64,
    /// Total segment size in bytes.
    pub total_size: u64,
    /// Fingerprint of the layout description (see [`crate::schema`]).
    pub layout_fingerprint: u64,
    /// Entries in the instrument table.
    pub instrument_capacity: u32,
    /// Reserved, zero.
    pub reserved0: u32,
    /// Wall-clock creation time, ns since the Unix epoch.
    pub created_ts_ns: i64,
    /// Reserved, zero.
    pub reserved1: [u8; 8],
    // ---- control line (offset 64): written only at (re)start, so it stays cached read-only ----
    /// Lifecycle state (see [`state`]).
    pub state: AtomicU32,
    /// Process id of the producer that owns the current epoch.
    pub producer_pid: AtomicU32,
    /// Changes every time a producer (re)starts; never 0 once ready.
    pub epoch: AtomicU64,
    /// Wall-clock start of the current epoch, ns since the Unix epoch.
    pub epoch_started_ts_ns: AtomicU64,
    /// Number of epochs so far (1 after creation).
    pub epoch_count: AtomicU64,
    /// Instrument table entries ever used (high-water mark; entries at and above are free).
    pub instrument_count: AtomicU32,
    /// Reserved, zero: keeps the doorbell on its own cache line.
    pub reserved2: [u8; 20],
    // ---- doorbell line (offset 128): the futex word consumers sleep on (see `crate::wake`) ----
    /// Futex word: every producer of the segment adds 1 after publishing when `sleepers` is not 0
    /// (and at a restart or retirement), then wakes the sleepers. Only ever changed by
    /// `fetch_add`, so a consumer that reads a newer value also sees the record published before.
    pub wake_seq: AtomicU32,
    /// Consumers asleep (or about to sleep) on `wake_seq`; the producer's only hot-path read.
    pub sleepers: AtomicU32,
    /// Reserved, zero.
    pub reserved3: [u8; 56],
}

/// Per-ring control block.
#[derive(Debug)]
#[repr(C, align(128))]
pub struct RingHeader {
    /// Next sequence the producer will write (= one past the last published).
    pub head: AtomicU64,
    /// Padding so the hot `head` line is not shared with the epoch fields.
    pub pad0: [u8; 120],
    /// First sequence of the current epoch.
    pub epoch_start_seq: AtomicU64,
    /// `head` of the previous epoch when the current one began (0 for the first epoch).
    pub prev_epoch_end_seq: AtomicU64,
    /// Reserved.
    pub pad1: [u8; 112],
}

/// One registered consumer, for lag monitoring (`ringbolt bus status`) and flow-controlled tests.
#[derive(Debug)]
#[repr(C, align(64))]
pub struct ConsumerSlot {
    /// Pid of the consumer, 0 when the slot is free.
    pub pid: AtomicU32,
    /// Ring the consumer reads.
    pub ring: AtomicU32,
    /// The consumer's next expected sequence (updated every few records and when idle).
    pub cursor: AtomicU64,
    /// Records the consumer has lost to overruns and restarts.
    pub lost: AtomicU64,
    /// 1 while this consumer counts in its segment's `sleepers` (so a consumer killed asleep
    /// is taken out of the count when its slot is reclaimed), else 0.
    pub asleep: AtomicU32,
    /// Reserved.
    pub pad: [u8; 36],
}

/// One entry of the instrument table, rewritten only by the producer under a seqlock
/// (`version` odd while it writes). The entry holds instrument `id`; a reader trusts a name only
/// when `version` was even and unchanged around its read and `id` is the id it asked for.
#[derive(Debug)]
#[repr(C, align(64))]
pub struct InstrumentEntry {
    /// Seqlock word: odd while the producer rewrites the entry, even when stable (0 = never used).
    pub version: AtomicU32,
    /// The full id (generation << [`INSTRUMENT_SLOT_BITS`] | slot) of the instrument held.
    pub id: AtomicU32,
    /// Venue byte.
    pub venue: AtomicU8,
    /// [`instrument_state`].
    pub state: AtomicU8,
    /// Name length in bytes.
    pub len: AtomicU8,
    /// Reserved.
    pub pad: [u8; 5],
    /// UTF-8 name, `len` bytes.
    pub name: [AtomicU64; INSTRUMENT_NAME_MAX / 8],
}

/// One slot of a ring: a record whose first word is a seqlock version.
///
/// For sequence `s`, the version is `2s + 1` while the producer writes and `2s + 2` when done.
#[derive(Debug)]
#[repr(C, align(64))]
pub struct Slot {
    /// Word 0 is the version; words 1.. are the record's bytes after `seq`.
    pub words: [AtomicU64; RECORD_SIZE / 8],
}

const _: () = assert!(core::mem::size_of::<SegmentHeader>() <= HEADER_SIZE);
const _: () = assert!(core::mem::size_of::<RingHeader>() == 256);
const _: () = assert!(core::mem::size_of::<ConsumerSlot>() == 64);
const _: () = assert!(core::mem::size_of::<InstrumentEntry>() == 128);
const _: () = assert!(core::mem::size_of::<Slot>() == core::mem::size_of::<Record>());

/// Byte offsets of every region, derived from the geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Number of rings.
    pub ring_count: usize,
    /// Records per ring.
    pub capacity: usize,
    /// Instrument table entries.
    pub instrument_capacity: usize,
}

impl Geometry {
    /// Offset of ring header `ring`.
    #[must_use]
    pub const fn ring_header_offset(&self, ring: usize) -> usize {
        HEADER_SIZE + ring * core::mem::size_of::<RingHeader>()
    }

    /// Offset of the consumer registry.
    #[must_use]
    pub const fn consumers_offset(&self) -> usize {
        self.ring_header_offset(self.ring_count)
    }

    /// Offset of the instrument table.
    #[must_use]
    pub const fn instruments_offset(&self) -> usize {
        self.consumers_offset() + MAX_CONSUMERS * core::mem::size_of::<ConsumerSlot>()
    }

    /// Offset of ring `ring`'s slot array (page aligned).
    #[must_use]
    pub const fn slots_offset(&self, ring: usize) -> usize {
        let table_end = self.instruments_offset()
            + self.instrument_capacity * core::mem::size_of::<InstrumentEntry>();
        let first = table_end.next_multiple_of(4096);
        first + ring * (self.capacity * RECORD_SIZE).next_multiple_of(4096)
    }

    /// Total size of the segment.
    #[must_use]
    pub const fn total_size(&self) -> usize {
        self.slots_offset(self.ring_count)
    }
}
