//! Creating, validating and mapping a bus segment; the producer ([`Publisher`], [`RingWriter`]) and
//! consumer ([`Segment`], [`Consumer`]) ends of its broadcast rings.

use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shared_memory::{Shmem, ShmemConf, ShmemError};

use crate::layout::{
    ConsumerSlot, Geometry, HEADER_SIZE, InstrumentEntry, LAYOUT_VERSION, MAGIC, MAX_CONSUMERS,
    RingHeader, SegmentHeader, Slot, state,
};
use crate::record::{RECORD_SIZE, Record};
use crate::schema;

const WORDS: usize = RECORD_SIZE / 8;
/// Consumers publish their cursor to the registry once per this many records (and when idle).
const CURSOR_REPORT_EVERY: u32 = 256;
/// How long a restarted producer waits for live consumers to read the old epoch's tail.
const TAKEOVER_DRAIN_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Errors opening, creating or using a segment.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// No segment of that name exists (yet).
    #[error("bus segment '{name}' does not exist (is its producer running?)")]
    NotFound {
        /// Segment name.
        name: String,
    },
    /// The segment exists but its producer has not finished initialising it.
    #[error("bus segment '{name}' is not initialised yet")]
    NotReady {
        /// Segment name.
        name: String,
    },
    /// The segment is smaller than its header says, or than a header.
    #[error("bus segment '{name}' is truncated: {actual} bytes, expected {expected}")]
    Truncated {
        /// Segment name.
        name: String,
        /// Size the header (or the minimum) requires.
        expected: usize,
        /// Size of the mapping.
        actual: usize,
    },
    /// The segment is not a ringbolt bus segment.
    #[error("'{name}' is not a ringbolt bus segment (magic {magic:02x?}); refusing to touch it")]
    Foreign {
        /// Segment name.
        name: String,
        /// The first eight bytes found.
        magic: [u8; 8],
    },
    /// The segment has another layout than this build.
    #[error(
        "bus segment '{name}' has layout v{found_version} (fingerprint {found_fingerprint:#018x}, \
         record {found_record_size} B) but this build uses v{LAYOUT_VERSION} \
         (fingerprint {expected_fingerprint:#018x}, record {RECORD_SIZE} B); rebuild both ends"
    )]
    LayoutMismatch {
        /// Segment name.
        name: String,
        /// Layout version in the segment.
        found_version: u32,
        /// Fingerprint in the segment.
        found_fingerprint: u64,
        /// This build's fingerprint.
        expected_fingerprint: u64,
        /// Record size in the segment.
        found_record_size: u32,
    },
    /// The segment was retired by a producer that recreated it; reopen by name.
    #[error("bus segment '{name}' was retired by its producer; reopen it")]
    Retired {
        /// Segment name.
        name: String,
    },
    /// A registered consumer was asked of a read-only mapping ([`Segment::open_read_only`]):
    /// use [`Consumer::observe`].
    #[error(
        "bus segment '{name}' is mapped read-only: observe it, a registered consumer needs write access"
    )]
    ReadOnly {
        /// Segment name.
        name: String,
    },
    /// Another live process owns the segment as producer.
    #[error("bus segment '{name}' is owned by live producer pid {pid}")]
    ProducerAlive {
        /// Segment name.
        name: String,
        /// The live producer's pid.
        pid: u32,
    },
    /// Invalid configuration.
    #[error("invalid bus configuration: {0}")]
    Config(String),
    /// The ring's writer was already taken.
    #[error("ring {ring} of '{name}' already has a writer")]
    WriterTaken {
        /// Segment name.
        name: String,
        /// Ring index.
        ring: usize,
    },
    /// Ring index out of range.
    #[error("ring {ring} out of range: segment has {rings} rings")]
    NoSuchRing {
        /// Requested ring.
        ring: usize,
        /// Rings in the segment.
        rings: usize,
    },
    /// The instrument table is full or the name is too long.
    #[error("instrument '{name}' cannot be registered: {reason}")]
    Instrument {
        /// The instrument name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// An operating-system error from the shared-memory layer.
    #[error("shared memory error on '{name}': {source}")]
    Os {
        /// Segment name.
        name: String,
        /// Underlying error.
        source: ShmemError,
    },
}

/// Shape of a segment to create.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentConfig {
    /// Number of rings (one per producing thread).
    pub rings: usize,
    /// Records per ring; a power of two.
    pub capacity: usize,
    /// Instrument table entries.
    pub instrument_capacity: usize,
}

impl Default for SegmentConfig {
    fn default() -> Self {
        Self {
            rings: 1,
            capacity: 1 << 16,
            instrument_capacity: 1024,
        }
    }
}

impl SegmentConfig {
    fn geometry(&self) -> Result<Geometry, BusError> {
        if self.rings == 0 || self.rings > 64 {
            return Err(BusError::Config(format!(
                "rings must be 1..=64, got {}",
                self.rings
            )));
        }
        if !self.capacity.is_power_of_two() || self.capacity < 2 || self.capacity > 1 << 26 {
            return Err(BusError::Config(format!(
                "capacity must be a power of two in 2..=2^26, got {}",
                self.capacity
            )));
        }
        if self.instrument_capacity == 0 || self.instrument_capacity > 1 << 16 {
            return Err(BusError::Config(format!(
                "instrument_capacity must be 1..=65536, got {}",
                self.instrument_capacity
            )));
        }
        Ok(Geometry {
            ring_count: self.rings,
            capacity: self.capacity,
            instrument_capacity: self.instrument_capacity,
        })
    }
}

/// How a [`Publisher`] came to own its segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Startup {
    /// A new segment was created.
    Created {
        /// The first epoch.
        epoch: u64,
    },
    /// An existing segment with the same layout was taken over (e.g. after a crash).
    Restarted {
        /// Epoch of the previous producer.
        old_epoch: u64,
        /// The new epoch.
        new_epoch: u64,
        /// Pid of the previous (dead) producer.
        previous_pid: u32,
    },
    /// An existing segment with another layout was retired and a new one created.
    Recreated {
        /// The first epoch of the new segment.
        epoch: u64,
    },
}

/// The mapping, shareable between threads: read-write through `shared_memory` (producers and
/// registered consumers), or a `PROT_READ` mapping of its own ([`Segment::open_read_only`]).
enum Mapping {
    Shared(Shmem),
    ReadOnly(ReadOnlyMap),
}

/// A `PROT_READ`, `MAP_SHARED` mapping of a whole segment, unmapped on drop.
struct ReadOnlyMap {
    ptr: *mut u8,
    len: usize,
}

impl Drop for ReadOnlyMap {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned; nothing borrows the mapping once
        // its owner is dropped (every reference into it borrows the `Segment`).
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

impl Mapping {
    fn as_ptr(&self) -> *mut u8 {
        match self {
            Mapping::Shared(shmem) => shmem.as_ptr(),
            Mapping::ReadOnly(map) => map.ptr,
        }
    }

    fn len(&self) -> usize {
        match self {
            Mapping::Shared(shmem) => shmem.len(),
            Mapping::ReadOnly(map) => map.len,
        }
    }

    fn into_shmem(self) -> Option<Shmem> {
        match self {
            Mapping::Shared(shmem) => Some(shmem),
            Mapping::ReadOnly(_) => None,
        }
    }
}

impl core::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let access = if matches!(self, Mapping::ReadOnly(_)) {
            "read-only"
        } else {
            "read-write"
        };
        write!(f, "Mapping({} bytes, {access})", self.len())
    }
}

// SAFETY: the mapping is plain shared memory that lives as long as `Shmem`; every piece of it that
// is mutated after initialisation is an atomic, so sharing the pointer across threads is sound.
unsafe impl Send for Mapping {}
// SAFETY: as above; `&Mapping` only hands out shared references to atomics or immutable data.
unsafe impl Sync for Mapping {}

/// A mapped, validated segment.
#[derive(Debug)]
pub struct Segment {
    map: Mapping,
    geometry: Geometry,
    name: String,
}

fn os_id(name: &str) -> String {
    if name.starts_with('/') {
        name.to_owned()
    } else {
        format!("/{name}")
    }
}

/// Wall-clock time in ns since the Unix epoch.
#[must_use]
pub fn now_ns() -> i64 {
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn pid_alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 performs only the existence and permission check.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn fresh_epoch(old: u64) -> u64 {
    let mut epoch = now_ns().unsigned_abs() ^ (u64::from(std::process::id()) << 40);
    while epoch == 0 || epoch == old {
        epoch = epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    }
    epoch
}

/// Identity fields copied out of a possibly foreign header.
#[derive(Clone, Copy, Debug)]
struct Identity {
    magic: [u8; 8],
    layout_version: u32,
    header_size: u32,
    record_size: u32,
    ring_count: u32,
    capacity: u64,
    total_size: u64,
    fingerprint: u64,
    instrument_capacity: u32,
    state: u32,
}

impl Segment {
    /// Removes the named segment from `/dev/shm` (consumers keep their mappings).
    ///
    /// # Errors
    /// The OS error, except that a missing segment is not an error.
    pub fn unlink(name: &str) -> std::io::Result<()> {
        let c_name = std::ffi::CString::new(os_id(name)).map_err(std::io::Error::other)?;
        // SAFETY: `c_name` is a valid NUL-terminated string for the duration of the call.
        let rc = unsafe { libc::shm_unlink(c_name.as_ptr()) };
        if rc == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ENOENT) {
            Ok(())
        } else {
            Err(err)
        }
    }

    fn map_existing(name: &str) -> Result<Shmem, BusError> {
        match ShmemConf::new().os_id(os_id(name)).open() {
            Ok(mut shmem) => {
                shmem.set_owner(false);
                Ok(shmem)
            }
            Err(ShmemError::MapOpenFailed(code)) if code == libc::ENOENT as u32 => {
                Err(BusError::NotFound {
                    name: name.to_owned(),
                })
            }
            // A zero-length object cannot be mapped: it was truncated or is still being created.
            Err(ShmemError::MapOpenFailed(code)) if code == libc::EINVAL as u32 => {
                Err(BusError::Truncated {
                    name: name.to_owned(),
                    expected: HEADER_SIZE,
                    actual: 0,
                })
            }
            Err(source) => Err(BusError::Os {
                name: name.to_owned(),
                source,
            }),
        }
    }

    fn read_identity(base: *const u8) -> Identity {
        let header = base.cast::<SegmentHeader>();
        // The state is read first, with acquire: the creator writes every identity field and then
        // stores READY with release, so a reader that sees READY sees the fields it published.
        // Reading the magic first raced a creator mid-`initialise` (magic still zero, state READY
        // by the time it was read) into a spurious `Foreign`.
        // SAFETY: callers checked that the mapping holds at least HEADER_SIZE bytes, so the state
        // word is in bounds and aligned (mmap returns page-aligned memory).
        let state = unsafe { (*header).state.load(Ordering::Acquire) };
        // SAFETY: as above for every field read here. Volatile reads of plain integers are valid
        // for any bit pattern.
        unsafe {
            Identity {
                magic: core::ptr::read_volatile(&raw const (*header).magic),
                layout_version: core::ptr::read_volatile(&raw const (*header).layout_version),
                header_size: core::ptr::read_volatile(&raw const (*header).header_size),
                record_size: core::ptr::read_volatile(&raw const (*header).record_size),
                ring_count: core::ptr::read_volatile(&raw const (*header).ring_count),
                capacity: core::ptr::read_volatile(&raw const (*header).capacity),
                total_size: core::ptr::read_volatile(&raw const (*header).total_size),
                fingerprint: core::ptr::read_volatile(&raw const (*header).layout_fingerprint),
                instrument_capacity: core::ptr::read_volatile(
                    &raw const (*header).instrument_capacity,
                ),
                state,
            }
        }
    }

    /// Validates a mapping against this build's layout and returns its geometry.
    fn validate(name: &str, base: *const u8, actual: usize) -> Result<Geometry, BusError> {
        if actual < HEADER_SIZE {
            return Err(BusError::Truncated {
                name: name.to_owned(),
                expected: HEADER_SIZE,
                actual,
            });
        }
        let id = Self::read_identity(base);
        // Still being created: the magic may be unwritten, written, or half written (its eight
        // bytes are a plain copy: each is 0 or already ours), the other fields partly.
        let partly_magic = id.magic.iter().zip(MAGIC).all(|(&b, m)| b == 0 || b == m);
        if id.state == state::INITIALIZING && partly_magic {
            return Err(BusError::NotReady {
                name: name.to_owned(),
            });
        }
        if id.magic != MAGIC {
            return Err(BusError::Foreign {
                name: name.to_owned(),
                magic: id.magic,
            });
        }
        if id.layout_version != LAYOUT_VERSION
            || id.fingerprint != schema::fingerprint()
            || id.record_size as usize != RECORD_SIZE
            || id.header_size as usize != HEADER_SIZE
        {
            return Err(BusError::LayoutMismatch {
                name: name.to_owned(),
                found_version: id.layout_version,
                found_fingerprint: id.fingerprint,
                expected_fingerprint: schema::fingerprint(),
                found_record_size: id.record_size,
            });
        }
        let config = SegmentConfig {
            rings: id.ring_count as usize,
            capacity: usize::try_from(id.capacity).unwrap_or(0),
            instrument_capacity: id.instrument_capacity as usize,
        };
        let geometry = config.geometry().map_err(|_| BusError::Foreign {
            name: name.to_owned(),
            magic: id.magic,
        })?;
        let expected = geometry.total_size();
        if id.total_size != expected as u64 || actual < expected {
            return Err(BusError::Truncated {
                name: name.to_owned(),
                expected,
                actual,
            });
        }
        match id.state {
            state::READY | state::RESTARTING => Ok(geometry),
            state::RETIRED => Err(BusError::Retired {
                name: name.to_owned(),
            }),
            state::INITIALIZING => Err(BusError::NotReady {
                name: name.to_owned(),
            }),
            _ => Err(BusError::Foreign {
                name: name.to_owned(),
                magic: id.magic,
            }),
        }
    }

    /// Opens and validates an existing segment as a consumer.
    ///
    /// # Errors
    /// [`BusError::NotFound`], [`BusError::NotReady`], [`BusError::Truncated`],
    /// [`BusError::Foreign`], [`BusError::LayoutMismatch`], [`BusError::Retired`] or an OS error.
    pub fn open(name: &str) -> Result<Arc<Segment>, BusError> {
        let shmem = Self::map_existing(name)?;
        let geometry = Self::validate(name, shmem.as_ptr(), shmem.len())?;
        Ok(Arc::new(Segment {
            map: Mapping::Shared(shmem),
            geometry,
            name: name.to_owned(),
        }))
    }

    /// Opens and validates an existing segment through a **read-only** mapping (`O_RDONLY`,
    /// `PROT_READ`): an observer that cannot write a byte of the segment, so it can never take a
    /// registry slot, move a producer's state or slow it down. Read it with
    /// [`Consumer::observe`] ([`Consumer::new`] would register in the registry, which needs write
    /// access; on such a segment it fails with [`BusError::ReadOnly`]).
    ///
    /// # Errors
    /// As [`Segment::open`].
    pub fn open_read_only(name: &str) -> Result<Arc<Segment>, BusError> {
        let map = Self::map_read_only(name)?;
        let geometry = Self::validate(name, map.ptr, map.len)?;
        Ok(Arc::new(Segment {
            map: Mapping::ReadOnly(map),
            geometry,
            name: name.to_owned(),
        }))
    }

    fn map_read_only(name: &str) -> Result<ReadOnlyMap, BusError> {
        let os_error = |code: i32| match code {
            libc::ENOENT => BusError::NotFound {
                name: name.to_owned(),
            },
            code => BusError::Os {
                name: name.to_owned(),
                source: ShmemError::MapOpenFailed(code.unsigned_abs()),
            },
        };
        let c_name = std::ffi::CString::new(os_id(name)).map_err(|_| os_error(libc::EINVAL))?;
        // SAFETY: `c_name` is a valid NUL-terminated string for the duration of the call.
        let fd = unsafe { libc::shm_open(c_name.as_ptr(), libc::O_RDONLY, 0) };
        if fd < 0 {
            return Err(os_error(last_errno()));
        }
        // SAFETY: `fd` is an open descriptor we own; `stat` is plain data written by the call.
        let size = unsafe {
            let mut stat: libc::stat = core::mem::zeroed();
            if libc::fstat(fd, &raw mut stat) == 0 {
                usize::try_from(stat.st_size).unwrap_or(0)
            } else {
                0
            }
        };
        let ptr = if size < HEADER_SIZE {
            libc::MAP_FAILED
        } else {
            // SAFETY: a fresh shared read-only mapping of `size` bytes of `fd`; no existing
            // memory is affected.
            unsafe {
                libc::mmap(
                    core::ptr::null_mut(),
                    size,
                    libc::PROT_READ,
                    libc::MAP_SHARED,
                    fd,
                    0,
                )
            }
        };
        let errno = last_errno();
        // SAFETY: closing the descriptor we opened; the mapping stays valid without it.
        unsafe { libc::close(fd) };
        if size < HEADER_SIZE {
            return Err(BusError::Truncated {
                name: name.to_owned(),
                expected: HEADER_SIZE,
                actual: size,
            });
        }
        if ptr == libc::MAP_FAILED {
            return Err(os_error(errno));
        }
        Ok(ReadOnlyMap {
            ptr: ptr.cast(),
            len: size,
        })
    }

    /// Whether this handle maps the segment read-only ([`Segment::open_read_only`]).
    #[must_use]
    pub fn is_read_only(&self) -> bool {
        matches!(self.map, Mapping::ReadOnly(_))
    }

    /// Opens a segment, retrying `NotFound`/`NotReady`/`Retired` until `timeout`.
    ///
    /// # Errors
    /// The last error when the timeout expires, or any other error at once.
    pub fn open_wait(name: &str, timeout: Duration) -> Result<Arc<Segment>, BusError> {
        let deadline = Instant::now() + timeout;
        loop {
            match Self::open(name) {
                Err(
                    e @ (BusError::NotFound { .. }
                    | BusError::NotReady { .. }
                    | BusError::Retired { .. }
                    | BusError::Truncated { .. }),
                ) => {
                    if Instant::now() >= deadline {
                        return Err(e);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                other => return other,
            }
        }
    }

    /// The segment's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The segment's geometry.
    #[must_use]
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn base(&self) -> *mut u8 {
        self.map.as_ptr()
    }

    /// The segment header.
    #[must_use]
    pub fn header(&self) -> &SegmentHeader {
        // SAFETY: validated mappings are at least HEADER_SIZE bytes and page aligned; after
        // validation the non-atomic fields are immutable, the rest are atomics.
        unsafe { &*self.base().cast::<SegmentHeader>() }
    }

    fn ring_header(&self, ring: usize) -> &RingHeader {
        debug_assert!(ring < self.geometry.ring_count);
        // SAFETY: the offset lies inside the validated mapping, is 128-byte aligned, and the
        // struct consists of atomics and padding only.
        unsafe {
            &*self
                .base()
                .add(self.geometry.ring_header_offset(ring))
                .cast::<RingHeader>()
        }
    }

    /// `len` values of `T` at `offset` in the mapping.
    ///
    /// # Safety
    /// `offset..offset + len * size_of::<T>()` lies inside the validated mapping, `offset` is
    /// aligned for `T`, and any bit pattern is a valid `T` (atomics and padding only).
    #[inline]
    unsafe fn table<T>(&self, offset: usize, len: usize) -> &[T] {
        // SAFETY: as the caller promises.
        unsafe { core::slice::from_raw_parts(self.base().add(offset).cast::<T>(), len) }
    }

    fn slots(&self, ring: usize) -> &[Slot] {
        debug_assert!(ring < self.geometry.ring_count);
        // SAFETY: the slot array of `ring` lies inside the validated mapping (total_size checked),
        // is page aligned, and `Slot` is atomics only, so any bit pattern is valid.
        unsafe { self.table(self.geometry.slots_offset(ring), self.geometry.capacity) }
    }

    /// Before a restarted producer starts its epoch (whose first records overwrite the oldest
    /// slots of the old one), lets every live registered consumer read what the dead producer
    /// published: waits until each one's reported cursor reached its ring's head, or `limit`
    /// passed. Without it a consumer lagging when the producer died loses the old epoch's tail
    /// to the new epoch's start-up burst (snapshots). Start-up path only: sleeps.
    fn await_consumers_drained(&self, limit: std::time::Duration) {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let behind = self.consumer_slots().iter().any(|slot| {
                let ring = slot.ring.load(Ordering::Relaxed) as usize;
                let pid = slot.pid.load(Ordering::Acquire);
                ring < self.geometry.ring_count
                    && pid != 0
                    && pid != std::process::id()
                    && pid_alive(pid)
                    && slot.cursor.load(Ordering::Relaxed) < self.head(ring)
            });
            if !behind || std::time::Instant::now() >= deadline {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    fn consumer_slots(&self) -> &[ConsumerSlot] {
        // SAFETY: the registry lies inside the mapping, 64-byte aligned, atomics only.
        unsafe { self.table(self.geometry.consumers_offset(), MAX_CONSUMERS) }
    }

    pub(crate) fn instruments(&self) -> &[InstrumentEntry] {
        // SAFETY: the table lies inside the mapping, 64-byte aligned, atomics and a u32 pad only.
        unsafe {
            self.table(
                self.geometry.instruments_offset(),
                self.geometry.instrument_capacity,
            )
        }
    }

    /// Current epoch.
    #[must_use]
    pub fn epoch(&self) -> u64 {
        self.header().epoch.load(Ordering::Acquire)
    }

    /// Pid of the producer owning the current epoch.
    #[must_use]
    pub fn producer_pid(&self) -> u32 {
        self.header().producer_pid.load(Ordering::Acquire)
    }

    /// Published head (next sequence to be written) of `ring`.
    #[must_use]
    pub fn head(&self, ring: usize) -> u64 {
        self.ring_header(ring).head.load(Ordering::Acquire)
    }

    /// Epoch bounds of `ring`: (first sequence of the current epoch, head of the previous epoch
    /// when the current one began — 0 for the first epoch). Lets a restarted consumer account for
    /// records it could not read while it was down.
    ///
    /// # Panics
    /// If `ring` is out of range (a caller bug: ring counts come from [`Segment::geometry`]).
    #[must_use]
    pub fn epoch_bounds(&self, ring: usize) -> (u64, u64) {
        assert!(ring < self.geometry.ring_count, "ring {ring} out of range");
        let header = self.ring_header(ring);
        (
            header.epoch_start_seq.load(Ordering::Acquire),
            header.prev_epoch_end_seq.load(Ordering::Acquire),
        )
    }

    /// Wakes every consumer asleep on the segment's doorbell: bumps the futex word (always with
    /// `fetch_add`, so a consumer reading the new value also sees what was published before it)
    /// and issues one `FUTEX_WAKE`. Producers call it after a publish when `sleepers` is not 0,
    /// and at a restart or retirement.
    #[cold]
    #[inline(never)]
    pub fn ring_doorbell(&self) {
        let header = self.header();
        header.wake_seq.fetch_add(1, Ordering::Release);
        crate::futex::wake_all(&header.wake_seq);
    }

    /// Takes consumers that died asleep (registry slot marked `asleep`, pid gone) out of the
    /// `sleepers` count, so their producer stops issuing wake-ups for nobody. Cold path: called
    /// when a consumer registers and when a producer takes over.
    pub fn reclaim_dead_sleepers(&self) -> u32 {
        let mut reclaimed = 0;
        for slot in self.consumer_slots() {
            if slot.asleep.load(Ordering::Acquire) == 1
                && !pid_alive(slot.pid.load(Ordering::Acquire))
                && slot
                    .asleep
                    .compare_exchange(1, 0, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                let _ =
                    self.header()
                        .sleepers
                        .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| n.checked_sub(1));
                reclaimed += 1;
            }
        }
        reclaimed
    }

    /// Registry slot `index` (for the doorbell's `asleep` mark).
    pub(crate) fn consumer_slot(&self, index: usize) -> Option<&ConsumerSlot> {
        self.consumer_slots().get(index)
    }

    /// Registered consumers: (pid, ring, cursor, lost).
    #[must_use]
    pub fn consumers(&self) -> Vec<ConsumerInfo> {
        self.consumer_slots()
            .iter()
            .filter_map(|slot| {
                let pid = slot.pid.load(Ordering::Acquire);
                (pid != 0).then(|| ConsumerInfo {
                    pid,
                    ring: slot.ring.load(Ordering::Relaxed) as usize,
                    cursor: slot.cursor.load(Ordering::Relaxed),
                    lost: slot.lost.load(Ordering::Relaxed),
                })
            })
            .collect()
    }
}

/// A registered consumer as seen in the segment's registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsumerInfo {
    /// Consumer pid.
    pub pid: u32,
    /// Ring it reads.
    pub ring: usize,
    /// Its next expected sequence.
    pub cursor: u64,
    /// Records it lost.
    pub lost: u64,
}

/// The producing process's handle on its segment.
#[derive(Debug)]
pub struct Publisher {
    pub(crate) segment: Arc<Segment>,
    writers_taken: Vec<AtomicBool>,
    /// Instrument registration lock, holding the slot where the search for a retired entry to
    /// reuse starts (round robin, so a retired name stays resolvable as long as possible).
    pub(crate) registry: Mutex<usize>,
    startup: Startup,
}

impl Publisher {
    /// Creates the named segment, or takes over an existing one with the same layout whose
    /// producer is dead (a restart: new epoch, sequences continue past the old epoch), or retires
    /// and recreates one with another layout.
    ///
    /// # Errors
    /// [`BusError::ProducerAlive`] when another live process owns it, [`BusError::Foreign`] for a
    /// non-ringbolt object of that name, configuration and OS errors.
    pub fn create(name: &str, config: SegmentConfig) -> Result<Publisher, BusError> {
        let geometry = config.geometry()?;
        let size = geometry.total_size();
        match ShmemConf::new().os_id(os_id(name)).size(size).create() {
            Ok(mut shmem) => {
                shmem.set_owner(false);
                let epoch = fresh_epoch(0);
                // SAFETY: we just created and sized this mapping exclusively; nobody else can
                // have validated it because its state is still INITIALIZING.
                unsafe { Self::initialise(&shmem, geometry, epoch) };
                Ok(Self::wrap(
                    name,
                    shmem,
                    geometry,
                    Startup::Created { epoch },
                ))
            }
            Err(ShmemError::MappingIdExists) => Self::take_over(name, config, geometry),
            Err(source) => Err(BusError::Os {
                name: name.to_owned(),
                source,
            }),
        }
    }

    fn wrap(name: &str, shmem: Shmem, geometry: Geometry, startup: Startup) -> Publisher {
        let segment = Arc::new(Segment {
            map: Mapping::Shared(shmem),
            geometry,
            name: name.to_owned(),
        });
        Publisher {
            segment,
            writers_taken: (0..geometry.ring_count)
                .map(|_| AtomicBool::new(false))
                .collect(),
            registry: Mutex::new(0),
            startup,
        }
    }

    /// Writes a fresh header into a newly created, zero-filled mapping.
    ///
    /// # Safety
    /// The caller must have created `shmem` exclusively and sized it for `geometry`.
    unsafe fn initialise(shmem: &Shmem, geometry: Geometry, epoch: u64) {
        let header = shmem.as_ptr().cast::<SegmentHeader>();
        // SAFETY: the caller guarantees exclusive creation; the memory is zeroed by ftruncate, in
        // bounds and page aligned. Identity fields are written before the state becomes READY
        // with release ordering, and consumers read them only after acquiring READY.
        unsafe {
            (*header).layout_version = LAYOUT_VERSION;
            (*header).header_size = HEADER_SIZE as u32;
            (*header).record_size = RECORD_SIZE as u32;
            (*header).ring_count = geometry.ring_count as u32;
            (*header).capacity = geometry.capacity as u64;
            (*header).total_size = geometry.total_size() as u64;
            (*header).layout_fingerprint = schema::fingerprint();
            (*header).instrument_capacity = geometry.instrument_capacity as u32;
            (*header).created_ts_ns = now_ns();
            (*header).magic = MAGIC;
            (*header)
                .producer_pid
                .store(std::process::id(), Ordering::Relaxed);
            (*header).epoch.store(epoch, Ordering::Relaxed);
            (*header)
                .epoch_started_ts_ns
                .store(now_ns().unsigned_abs(), Ordering::Relaxed);
            (*header).epoch_count.store(1, Ordering::Relaxed);
            (*header).state.store(state::READY, Ordering::Release);
        }
    }

    fn take_over(
        name: &str,
        config: SegmentConfig,
        geometry: Geometry,
    ) -> Result<Publisher, BusError> {
        let shmem = Segment::map_existing(name)?;
        let validated = match Segment::validate(name, shmem.as_ptr(), shmem.len()) {
            Ok(found) if found == geometry => Ok(found),
            Ok(_) | Err(BusError::LayoutMismatch { .. }) | Err(BusError::Retired { .. }) => {
                Err(true)
            }
            // Truncated or never initialised: a previous creator died half way; recreate it.
            Err(BusError::Truncated { .. }) | Err(BusError::NotReady { .. }) => Err(false),
            Err(other) => return Err(other),
        };
        match validated {
            Ok(geometry) => {
                let segment = Segment {
                    map: Mapping::Shared(shmem),
                    geometry,
                    name: name.to_owned(),
                };
                let header = segment.header();
                let previous_pid = header.producer_pid.load(Ordering::Acquire);
                if previous_pid != std::process::id() && pid_alive(previous_pid) {
                    return Err(BusError::ProducerAlive {
                        name: name.to_owned(),
                        pid: previous_pid,
                    });
                }
                let old_epoch = header.epoch.load(Ordering::Acquire);
                let new_epoch = fresh_epoch(old_epoch);
                header
                    .producer_pid
                    .store(std::process::id(), Ordering::Relaxed);
                // A consumer asleep with the dead producer's tail unread wakes now to read it.
                segment.reclaim_dead_sleepers();
                segment.ring_doorbell();
                segment.await_consumers_drained(TAKEOVER_DRAIN_WAIT);
                header.state.store(state::RESTARTING, Ordering::Release);
                for ring in 0..geometry.ring_count {
                    let ring_header = segment.ring_header(ring);
                    let old_head = ring_header.head.load(Ordering::Acquire);
                    // Skip a full lap plus one: no consumer cursor of the old epoch can equal a
                    // sequence of the new one, so stale slots are never mistaken for new records.
                    let base = old_head + geometry.capacity as u64 + 1;
                    ring_header
                        .prev_epoch_end_seq
                        .store(old_head, Ordering::Relaxed);
                    ring_header.epoch_start_seq.store(base, Ordering::Relaxed);
                    ring_header.head.store(base, Ordering::Release);
                }
                header
                    .epoch_started_ts_ns
                    .store(now_ns().unsigned_abs(), Ordering::Relaxed);
                header.epoch_count.fetch_add(1, Ordering::Relaxed);
                segment.repair_instrument_entries();
                header.epoch.store(new_epoch, Ordering::Release);
                header.state.store(state::READY, Ordering::Release);
                // Sleeping consumers learn of the new epoch now, not at their timeout.
                segment.reclaim_dead_sleepers();
                segment.ring_doorbell();
                let Segment { map, .. } = segment;
                let Some(shmem) = map.into_shmem() else {
                    unreachable!("a producer's mapping is read-write");
                };
                Ok(Self::wrap(
                    name,
                    shmem,
                    geometry,
                    Startup::Restarted {
                        old_epoch,
                        new_epoch,
                        previous_pid,
                    },
                ))
            }
            Err(retire) => {
                if retire {
                    let id = Segment::read_identity(shmem.as_ptr());
                    let segment_header = shmem.as_ptr().cast::<SegmentHeader>();
                    // SAFETY: validate checked the mapping holds at least a header; the pid is an
                    // atomic at a fixed offset in every layout version.
                    let pid = unsafe { (*segment_header).producer_pid.load(Ordering::Acquire) };
                    if id.magic == MAGIC && pid != std::process::id() && pid_alive(pid) {
                        return Err(BusError::ProducerAlive {
                            name: name.to_owned(),
                            pid,
                        });
                    }
                    if id.magic == MAGIC {
                        // SAFETY: the mapping holds a ringbolt header (magic checked, size checked
                        // by validate); `state` is an atomic at a fixed offset in it.
                        unsafe {
                            (*segment_header)
                                .state
                                .store(state::RETIRED, Ordering::Release);
                            // Wake sleepers so they see RETIRED at once. In a v2 segment this
                            // word is reserved zero: the extra wake finds nobody.
                            (*segment_header).wake_seq.fetch_add(1, Ordering::Release);
                            crate::futex::wake_all(&(*segment_header).wake_seq);
                        };
                    }
                }
                drop(shmem);
                Segment::unlink(name)
                    .map_err(|e| BusError::Config(format!("unlink {name}: {e}")))?;
                let mut publisher = Self::create(name, config)?;
                if let Startup::Created { epoch } = publisher.startup {
                    publisher.startup = Startup::Recreated { epoch };
                }
                Ok(publisher)
            }
        }
    }

    /// How this publisher came to own the segment.
    #[must_use]
    pub fn startup(&self) -> Startup {
        self.startup
    }

    /// The segment.
    #[must_use]
    pub fn segment(&self) -> &Arc<Segment> {
        &self.segment
    }

    /// Takes the single writer of `ring`.
    ///
    /// # Errors
    /// [`BusError::NoSuchRing`] or [`BusError::WriterTaken`].
    pub fn writer(&self, ring: usize) -> Result<RingWriter, BusError> {
        let rings = self.segment.geometry.ring_count;
        let taken = self
            .writers_taken
            .get(ring)
            .ok_or(BusError::NoSuchRing { ring, rings })?;
        if taken.swap(true, Ordering::AcqRel) {
            return Err(BusError::WriterTaken {
                name: self.segment.name.clone(),
                ring,
            });
        }
        let next = self.segment.ring_header(ring).head.load(Ordering::Acquire);
        Ok(RingWriter {
            segment: Arc::clone(&self.segment),
            ring,
            next,
            mask: self.segment.geometry.capacity as u64 - 1,
        })
    }

    /// The smallest cursor among registered consumers of `ring` (for lag monitoring and for
    /// flow-controlled tests; the hot path never waits on it).
    #[must_use]
    pub fn slowest_consumer(&self, ring: usize) -> Option<u64> {
        self.segment
            .consumers()
            .iter()
            .filter(|c| c.ring == ring)
            .map(|c| c.cursor)
            .min()
    }
}

/// The single writer of one ring. Not `Clone`: one producing thread per ring.
#[derive(Debug)]
pub struct RingWriter {
    segment: Arc<Segment>,
    ring: usize,
    next: u64,
    mask: u64,
}

impl RingWriter {
    /// Publishes a record and returns its sequence. Never waits, never allocates; makes one
    /// syscall (`FUTEX_WAKE`) only when a consumer sleeps on the segment's doorbell.
    ///
    /// The record's `seq` field is ignored; consumers see the ring's sequence there. The ring is
    /// a transport: it copies any 64-byte record (`kind` and `venue` are checked where records
    /// are decoded, e.g. `Record::kind`), so a zeroed record is a valid payload.
    ///
    /// Contract: this writer is the ring's only producer, so the ring's published head equals
    /// the sequence this writer hands out next, and sequences are consecutive (`seq + 1` each
    /// call). The slot stamp `2 * seq + 2` must not overflow.
    ///
    /// # Panics
    /// In debug builds, when another writer published on this ring (head ≠ this writer's next
    /// sequence) or the sequence nears `u64::MAX / 2`. The slot index is masked into the ring
    /// (capacity is a power of two, checked when the segment is created).
    #[inline]
    pub fn publish(&mut self, record: &Record) -> u64 {
        let seq = self.next;
        debug_assert!(seq < u64::MAX / 2 - 1, "ring sequence exhausted");
        debug_assert_eq!(
            self.segment
                .ring_header(self.ring)
                .head
                .load(Ordering::Relaxed),
            seq,
            "ring {} has another writer",
            self.ring
        );
        let slot = &self.segment.slots(self.ring)[(seq & self.mask) as usize];
        let words: &[u64; WORDS] = bytemuck::cast_ref(record);
        slot.words[0].store(2 * seq + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        for (dst, src) in slot.words[1..].iter().zip(&words[1..]) {
            dst.store(*src, Ordering::Relaxed);
        }
        slot.words[0].store(2 * seq + 2, Ordering::Release);
        self.segment
            .ring_header(self.ring)
            .head
            .store(seq + 1, Ordering::Release);
        self.next = seq + 1;
        // The doorbell (ADR 0025): the slot stores above, then this fence, then the load of
        // `sleepers`; a consumer increments `sleepers`, fences, then re-checks the slot. One of the
        // two sees the other, so a record is never left behind a sleeping consumer. When nobody
        // sleeps this costs the fence and one load of a line that stays cached.
        fence(Ordering::SeqCst);
        if self.segment.header().sleepers.load(Ordering::Relaxed) != 0 {
            self.segment.ring_doorbell();
        }
        seq
    }

    /// The sequence the next publish will get.
    #[must_use]
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    /// The ring index.
    #[must_use]
    pub fn ring(&self) -> usize {
        self.ring
    }

    /// The segment.
    #[must_use]
    pub fn segment(&self) -> &Arc<Segment> {
        &self.segment
    }
}

/// Where a new consumer starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// At the next record to be published.
    LiveEdge,
    /// At the oldest record still in the ring (of the current epoch).
    Oldest,
    /// At sequence `seq` of the current epoch (a restarted consumer's committed cursor),
    /// clamped to the records still in the ring: never before [`Start::Oldest`], never past
    /// the live edge.
    At(u64),
    /// At sequence `seq` of `epoch`, an earlier epoch of this same segment object: a consumer
    /// restarted with a committed cursor from before a producer restart. A take-over keeps the
    /// old epoch's slots and its new records overwrite the oldest ones first, so the old
    /// epoch's unread tail is usually still in the ring: the consumer reads what is left of it,
    /// then reports [`Poll::EpochChanged`] with what the new epoch overwrote as `lost`.
    ///
    /// Sequences are unique only within one segment object (a recreated segment starts again
    /// at 0): the caller must know its cursor came from this object. When `epoch` is current
    /// this is [`Start::At`]; when `seq` is not before the old epoch's end there is nothing left
    /// to read, and the consumer starts at [`Start::Oldest`].
    PreviousEpoch {
        /// The epoch the cursor belongs to.
        epoch: u64,
        /// The next sequence to read in it.
        seq: u64,
    },
}

/// The outcome of one poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Poll {
    /// A record was copied out.
    Ready,
    /// Nothing new.
    Empty,
    /// The consumer fell more than a ring behind: exactly `count` records were skipped and it
    /// resumed at the live edge.
    Lost {
        /// Records skipped.
        count: u64,
    },
    /// The producer restarted: `lost` records of the old epoch were never read.
    EpochChanged {
        /// Epoch before.
        old_epoch: u64,
        /// Epoch now.
        new_epoch: u64,
        /// Old-epoch records published but not read.
        lost: u64,
    },
    /// The segment was retired (recreated with another layout): reopen by name.
    Retired,
}

/// One consumer's cursor over one ring. Independent of every other consumer.
#[derive(Debug)]
pub struct Consumer {
    segment: Arc<Segment>,
    ring: usize,
    next: u64,
    mask: u64,
    epoch: u64,
    lost_total: u64,
    registry: Option<usize>,
    since_report: u32,
}

impl Consumer {
    /// Opens a consumer on `ring` of `segment`, registering it for lag monitoring when a
    /// registry slot is free.
    ///
    /// # Errors
    /// [`BusError::NoSuchRing`], or [`BusError::ReadOnly`] on a read-only mapping.
    pub fn new(segment: &Arc<Segment>, ring: usize, start: Start) -> Result<Consumer, BusError> {
        if segment.is_read_only() {
            return Err(BusError::ReadOnly {
                name: segment.name.clone(),
            });
        }
        Self::open_cursor(segment, ring, start, true)
    }

    /// Opens an **observer** on `ring`: a cursor that never registers in the consumer registry
    /// and never writes to the segment (works on [`Segment::open_read_only`] mappings). It is
    /// invisible to `ringbolt bus status` and to [`Publisher::slowest_consumer`]; otherwise it
    /// polls exactly as a registered consumer does.
    ///
    /// # Errors
    /// [`BusError::NoSuchRing`].
    pub fn observe(
        segment: &Arc<Segment>,
        ring: usize,
        start: Start,
    ) -> Result<Consumer, BusError> {
        Self::open_cursor(segment, ring, start, false)
    }

    fn open_cursor(
        segment: &Arc<Segment>,
        ring: usize,
        start: Start,
        register: bool,
    ) -> Result<Consumer, BusError> {
        let rings = segment.geometry.ring_count;
        if ring >= rings {
            return Err(BusError::NoSuchRing { ring, rings });
        }
        let epoch = segment.epoch();
        let mut consumer = Consumer {
            segment: Arc::clone(segment),
            ring,
            next: 0,
            mask: segment.geometry.capacity as u64 - 1,
            epoch,
            lost_total: 0,
            registry: None,
            since_report: 0,
        };
        consumer.next = match start {
            Start::LiveEdge => segment.head(ring),
            Start::Oldest => consumer.oldest_available(),
            Start::At(seq) => seq.clamp(consumer.oldest_available(), segment.head(ring)),
            Start::PreviousEpoch { epoch: old, seq } => {
                let (_, prev_end) = segment.epoch_bounds(ring);
                if old == epoch {
                    seq.clamp(consumer.oldest_available(), segment.head(ring))
                } else if seq < prev_end {
                    // The first poll reads slot `seq`: the old record while it is intact, else
                    // a newer one, which resyncs to the current epoch counting the loss.
                    consumer.epoch = old;
                    seq
                } else {
                    consumer.oldest_available()
                }
            }
        };
        if register {
            consumer.registry = consumer.register();
            consumer.report_cursor();
        }
        Ok(consumer)
    }

    fn register(&self) -> Option<usize> {
        self.segment.reclaim_dead_sleepers();
        let me = std::process::id();
        for (index, slot) in self.segment.consumer_slots().iter().enumerate() {
            let pid = slot.pid.load(Ordering::Acquire);
            let free = pid == 0 || (pid != me && !pid_alive(pid));
            if free
                && slot
                    .pid
                    .compare_exchange(pid, me, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                slot.ring.store(self.ring as u32, Ordering::Relaxed);
                slot.lost.store(0, Ordering::Relaxed);
                return Some(index);
            }
        }
        None
    }

    fn report_cursor(&mut self) {
        self.since_report = 0;
        if let Some(index) = self.registry {
            let slot = &self.segment.consumer_slots()[index];
            slot.cursor.store(self.next, Ordering::Relaxed);
            slot.lost.store(self.lost_total, Ordering::Relaxed);
        }
    }

    fn oldest_available(&self) -> u64 {
        let ring = self.segment.ring_header(self.ring);
        let head = ring.head.load(Ordering::Acquire);
        let start = ring.epoch_start_seq.load(Ordering::Acquire);
        head.saturating_sub(self.segment.geometry.capacity as u64)
            .max(start)
    }

    /// Copies the next record into `out` if there is one.
    ///
    /// Never blocks, allocates or makes a syscall. `out.seq` is set to the ring sequence.
    #[inline]
    pub fn poll(&mut self, out: &mut Record) -> Poll {
        let slot = &self.segment.slots(self.ring)[(self.next & self.mask) as usize];
        let want = 2 * self.next + 2;
        let version = slot.words[0].load(Ordering::Acquire);
        if version == want {
            let words: &mut [u64; WORDS] = bytemuck::cast_mut(out);
            for (dst, src) in words[1..].iter_mut().zip(&slot.words[1..]) {
                *dst = src.load(Ordering::Relaxed);
            }
            fence(Ordering::Acquire);
            if slot.words[0].load(Ordering::Relaxed) == version {
                words[0] = self.next;
                self.next += 1;
                self.since_report += 1;
                if self.since_report >= CURSOR_REPORT_EVERY {
                    self.report_cursor();
                }
                return Poll::Ready;
            }
            // Overwritten while we copied: we were lapped.
            return self.recover();
        }
        if version < want {
            // Not written yet (or being written). The control line is read-mostly, so this check
            // is an L1 hit unless a producer just restarted.
            if self.segment.header().epoch.load(Ordering::Relaxed) != self.epoch {
                return self.resync_epoch();
            }
            if self.since_report != 0 {
                self.report_cursor();
            }
            return Poll::Empty;
        }
        self.recover()
    }

    /// The slot holds a newer sequence than expected: a restart or an overrun.
    #[cold]
    fn recover(&mut self) -> Poll {
        if self.segment.header().epoch.load(Ordering::Acquire) != self.epoch {
            return self.resync_epoch();
        }
        let head = self.segment.head(self.ring);
        let count = head.saturating_sub(self.next);
        self.next = head;
        self.lost_total += count;
        self.report_cursor();
        Poll::Lost { count }
    }

    #[cold]
    fn resync_epoch(&mut self) -> Poll {
        let header = self.segment.header();
        match header.state.load(Ordering::Acquire) {
            state::READY => {}
            state::RETIRED => return Poll::Retired,
            _ => return Poll::Empty,
        }
        let new_epoch = header.epoch.load(Ordering::Acquire);
        let ring = self.segment.ring_header(self.ring);
        let prev_end = ring.prev_epoch_end_seq.load(Ordering::Acquire);
        let lost = prev_end.saturating_sub(self.next);
        let old_epoch = self.epoch;
        self.epoch = new_epoch;
        self.next = self.oldest_available();
        self.lost_total += lost;
        self.report_cursor();
        Poll::EpochChanged {
            old_epoch,
            new_epoch,
            lost,
        }
    }

    /// Whether a [`Consumer::poll`] would return something other than [`Poll::Empty`] (a record,
    /// a loss, an epoch change or retirement). A pure read: the doorbell's re-check before sleep.
    #[inline]
    #[must_use]
    pub fn pending(&self) -> bool {
        let slot = &self.segment.slots(self.ring)[(self.next & self.mask) as usize];
        slot.words[0].load(Ordering::Acquire) >= 2 * self.next + 2
            || self.segment.header().epoch.load(Ordering::Acquire) != self.epoch
            || self.segment.header().state.load(Ordering::Acquire) != state::READY
    }

    /// This consumer's registry slot, if it got one.
    pub(crate) fn registry_index(&self) -> Option<usize> {
        self.registry
    }

    /// The sequence this consumer expects next.
    #[must_use]
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    /// Records lost to overruns and restarts since this consumer opened.
    #[must_use]
    pub fn lost_total(&self) -> u64 {
        self.lost_total
    }

    /// The epoch this consumer is reading.
    #[must_use]
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The segment.
    #[must_use]
    pub fn segment(&self) -> &Arc<Segment> {
        &self.segment
    }

    /// Records published but not yet read (approximate while the producer runs).
    #[must_use]
    pub fn lag(&self) -> u64 {
        self.segment.head(self.ring).saturating_sub(self.next)
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        if let Some(index) = self.registry {
            self.segment.consumer_slots()[index]
                .pid
                .store(0, Ordering::Release);
        }
    }
}
