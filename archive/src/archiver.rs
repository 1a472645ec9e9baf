//! The archiver loop and its commit protocol.
//!
//! # Commit protocol (crash safety)
//! Every `flush_interval_ms` the archiver turns its buffers into Parquet files:
//! 1. each file is written under a hidden temporary name (`.part-<n>.parquet.tmp`) in its final
//!    partition directory and fsynced;
//! 2. the commit record `_ringbolt/state.json` (bus cursors after the flushed records, the next
//!    part number, the list of files of this commit) is written atomically (temporary file, fsync,
//!    rename, directory fsync) — **this rename is the commit point**;
//! 3. every temporary file is renamed to its final name and the directories are fsynced.
//!
//! On start-up the archiver finishes the renames of the last commit, deletes every other
//! temporary file (a flush that never committed), and resumes each ring at its committed cursor:
//! the records of the uncommitted flush are read again from the ring, so nothing is duplicated
//! and nothing is lost unless the ring overran meanwhile — which is then written to `gaps` with
//! the exact count. Readers never see a partial file: final names appear only by rename.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ringbolt_bus::{
    Consumer, Doorbells, Heartbeat, Poll, Record, RecordKind, Segment, Start, Venue, now_ns,
};
use ringbolt_telemetry::stages::archive as stages;
use ringbolt_telemetry::{StageMetrics, StageRecorder, Telemetry};
use serde::{Deserialize, Serialize};

use crate::ArchiveError;
use crate::config::ArchiveConfig;
use crate::layout::{self, STATE_DIR, TMP_SUFFIX, Window};
use crate::tables::{self, GapKind, GapRow, InstrumentNames, Source, Table};
use crate::writer;

/// Heartbeat role code of the archiver.
pub const ROLE_ARCHIVE: u32 = 3;
/// Records buffered at most between two flushes: reaching it starts the flush early (counted in
/// [`Archiver::early_flushes`]), so the buffers stay bounded whatever the producers' rate.
pub const MAX_PENDING: usize = 1 << 22;
/// Segment name used for the archiver's own heartbeat rows.
pub const SELF_SOURCE: &str = "archiver";

/// The committed position of one ring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Producer epoch the cursor belongs to.
    pub epoch: u64,
    /// Next sequence to archive.
    pub next_seq: u64,
    /// Creation stamp of the segment object the cursor was read from (its header's
    /// `created_ts_ns`): sequences are unique only within one object, so a cursor of an earlier
    /// epoch is resumed in the old epoch's tail only when the object is the same. 0 in commit
    /// records written before this field existed (never matches: such a tail counts as lost).
    #[serde(default)]
    pub segment_created_ts_ns: i64,
}

/// The commit record (`_ringbolt/state.json`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Next part number (file names are never reused).
    pub next_part: u64,
    /// Cursors by `"<segment>#<ring>"`.
    pub cursors: BTreeMap<String, Cursor>,
    /// Files of the last commit, relative to the root (renamed from their temporary names).
    pub committed: Vec<String>,
    /// Commits so far.
    pub commits: u64,
    /// Partition directories (relative to the root) written to since their last compaction.
    #[serde(default)]
    pub uncompacted: std::collections::BTreeSet<String>,
    /// A compaction whose merged file was committed but whose sources may still exist.
    #[serde(default)]
    pub compaction: Option<Compaction>,
}

/// A committed compaction: `merged` replaces `sources` in `dir` (all relative to the root).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compaction {
    /// Partition directory.
    pub dir: String,
    /// The merged file's name (written first under its temporary name).
    pub merged: String,
    /// The files it replaces.
    pub sources: Vec<String>,
}

/// Finishes a committed compaction: renames the merged file into place, removes its sources.
fn finish_compaction(root: &Path, c: &Compaction) -> Result<(), ArchiveError> {
    let dir = root.join(&c.dir);
    let merged = dir.join(&c.merged);
    let tmp = layout::tmp_name(&merged);
    if tmp.exists() {
        std::fs::rename(&tmp, &merged).map_err(|e| ArchiveError::io(&tmp, e))?;
    }
    if merged.exists() {
        for source in &c.sources {
            match std::fs::remove_file(dir.join(source)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(ArchiveError::io(&dir.join(source), e)),
            }
        }
    }
    layout::fsync_path(&dir).map_err(|e| ArchiveError::io(&dir, e))
}

/// A progress report from [`Archiver::run_with_progress`]'s loop.
#[derive(Clone, Copy, Debug)]
pub enum Progress<'a> {
    /// One loop iteration ended; the number of records it took from the bus (0 = idle).
    Polled(usize),
    /// A flush committed.
    Flushed(&'a FlushStats),
}

/// What one flush wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlushStats {
    /// Files committed.
    pub files: usize,
    /// Rows committed (all tables).
    pub rows: u64,
    /// Bytes of the committed files.
    pub bytes: u64,
    /// Rows and bytes per table.
    pub per_table: BTreeMap<&'static str, (u64, u64)>,
}

/// A segment's instrument names, cached per table slot with the full id (slot and generation) the
/// name belongs to: bounded by the table's size however long the archiver runs, and a slot's
/// new generation is looked up afresh, never served the previous instrument's name.
struct Names {
    segment: Option<Arc<Segment>>,
    cache: Vec<Option<(u32, Arc<str>)>>,
}

impl InstrumentNames for Names {
    fn name(&mut self, id: u32) -> Arc<str> {
        let slot = ringbolt_bus::instrument_slot(id);
        if let Some(Some((held, name))) = self.cache.get(slot)
            && *held == id
        {
            return Arc::clone(name);
        }
        // Unregistered (or already reused) ids keep their number so the row is still
        // attributable.
        let found = self.segment.as_ref().and_then(|s| s.instrument(id));
        let registered = found.is_some();
        let name: Arc<str> = found.map_or_else(|| format!("#{id}").into(), |(_, n)| n.into());
        if registered {
            if slot >= self.cache.len() {
                self.cache.resize(slot + 1, None);
            }
            self.cache[slot] = Some((id, Arc::clone(&name)));
        }
        name
    }
}

impl Names {
    /// Cached names (at most the segment's instrument table size).
    fn cached(&self) -> usize {
        self.cache.iter().flatten().count()
    }
}

struct Ring {
    segment_name: String,
    consumer: Consumer,
    ring: u16,
    src: u16,
    skip_below: u64,
    bad_records: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key {
    table: Table,
    venue: u8,
    window: Window,
    src: u16,
}

/// How long a stopping archiver keeps taking records still on the rings before its final flush
/// (below the 10 s a supervisor waits between SIGTERM and SIGKILL).
pub const STOP_DRAIN_BUDGET: Duration = Duration::from_secs(8);

/// The archiver: owns its consumers, buffers and commit state.
pub struct Archiver {
    config: ArchiveConfig,
    state: State,
    sources: Vec<Source>,
    names: Vec<Names>,
    rings: Vec<Ring>,
    /// Bumped whenever a ring's consumer is added or replaced (the idle doorbells follow).
    ring_changes: u64,
    buffers: HashMap<Key, Vec<Record>>,
    /// Records taken since the last flush (bounded by [`MAX_PENDING`]).
    pending: usize,
    /// Flushes started early because `pending` reached [`MAX_PENDING`].
    early_flushes: u64,
    gaps: Vec<GapRow>,
    last_heartbeat: Option<Window>,
    heartbeats: u64,
    recorder: Option<StageRecorder>,
    telemetry: Option<Telemetry>,
    archived: u64,
    stray_tmp_removed: usize,
}

impl std::fmt::Debug for Archiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archiver")
            .field("root", &self.config.root)
            .field("rings", &self.rings.len())
            .field("archived", &self.archived)
            .finish_non_exhaustive()
    }
}

fn state_path(root: &Path) -> PathBuf {
    root.join(STATE_DIR).join("state.json")
}

/// Checks the disk guard.
///
/// # Errors
/// [`ArchiveError::DiskFull`], or the I/O error of `statvfs`.
pub fn check_disk(root: &Path, min_free_bytes: u64) -> Result<(), ArchiveError> {
    let free_bytes = layout::free_bytes(root).map_err(|e| ArchiveError::io(root, e))?;
    if free_bytes < min_free_bytes {
        return Err(ArchiveError::DiskFull {
            root: root.to_owned(),
            free_bytes,
            min_free_bytes,
        });
    }
    Ok(())
}

/// Loads the commit state, finishes the last commit's renames and removes every stray temporary
/// file. Returns the state and the number of temporary files removed.
///
/// # Errors
/// I/O errors and a corrupt state file.
pub fn recover(root: &Path) -> Result<(State, usize), ArchiveError> {
    let path = state_path(root);
    let state: State = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| ArchiveError::State {
            path: path.clone(),
            message: e.to_string(),
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
        Err(e) => return Err(ArchiveError::io(&path, e)),
    };
    if let Some(compaction) = &state.compaction {
        finish_compaction(root, compaction)?;
    }
    for rel in &state.committed {
        let final_path = root.join(rel);
        let tmp = layout::tmp_name(&final_path);
        if tmp.exists() {
            std::fs::rename(&tmp, &final_path).map_err(|e| ArchiveError::io(&tmp, e))?;
            if let Some(dir) = final_path.parent() {
                layout::fsync_path(dir).map_err(|e| ArchiveError::io(dir, e))?;
            }
        }
    }
    let stray = layout::walk(root, &|p: &Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.') && n.ends_with(TMP_SUFFIX))
    })
    .map_err(|e| ArchiveError::io(root, e))?;
    for file in &stray {
        std::fs::remove_file(file).map_err(|e| ArchiveError::io(file, e))?;
    }
    Ok((state, stray.len()))
}

/// The window start (s since the epoch) of a partition path `…/date=YYYY-MM-DD/…/window=HHMM`.
fn window_start_of(rel: &str, hhmm: &str) -> Option<i64> {
    let date = rel.split('/').find_map(|c| c.strip_prefix("date="))?;
    let date = layout::Date::parse(date)?;
    let h: i64 = hhmm.get(..2)?.parse().ok()?;
    let m: i64 = hhmm.get(2..)?.parse().ok()?;
    Some(date.days_since_epoch() * 86_400 + h * 3600 + m * 60)
}

/// Records a restarted archiver leaves unread when its committed cursor was overrun: it then
/// starts this far past the oldest record still in the ring, so that the producer (which keeps
/// writing while the archiver catches up) does not lap it at once — a lapped consumer resumes
/// at the live edge and would lose the whole ring.
const OVERRUN_RESTART_MARGIN_DIVISOR: u64 = 16;

/// The end (s since the epoch) a window must have reached `grace` ago to be compacted.
fn cutoff_s(grace: Duration) -> i64 {
    let grace_s = i64::try_from(grace.as_secs()).unwrap_or(i64::MAX);
    now_ns() / 1_000_000_000 - grace_s
}

/// Whether the committed cursor `c`, of an epoch before the current one, points into an old
/// epoch tail that may still be in the ring:
/// - the same segment object (sequences continue across its take-overs);
/// - records the archiver had not committed when the producer restarted, no more than a ring
///   of them (so the old epoch is the one just before the current one: a take-over starts its
///   epoch a ring and one past the old head);
/// - a new epoch that has not lapped the ring yet (`oldest` is its start).
fn old_tail_in_ring(segment: &Segment, ring: usize, c: Cursor, oldest: u64) -> bool {
    let (epoch_start, prev_end) = segment.epoch_bounds(ring);
    let capacity = segment.geometry().capacity as u64;
    c.segment_created_ts_ns != 0
        && c.segment_created_ts_ns == segment.header().created_ts_ns
        && c.next_seq < prev_end
        && prev_end - c.next_seq <= capacity
        && oldest == epoch_start
}

/// Opens `ring` of `segment` for a (re)started archiver: at its committed `cursor` when that is
/// still in the ring (after a producer restart: in the old epoch's tail the take-over left in
/// the ring), else past the oldest record with a margin; returns the consumer and the gap rows
/// of what the archiver can no longer read (the old epoch's unread tail, records overwritten
/// while it was down).
fn resume(
    name: &str,
    segment: &Arc<Segment>,
    ring: usize,
    cursor: Option<Cursor>,
) -> Result<(Consumer, Vec<GapRow>), ArchiveError> {
    let probe = Consumer::observe(segment, ring, Start::Oldest)?;
    let (epoch, oldest) = (probe.epoch(), probe.next_seq());
    drop(probe);
    let now = now_ns();
    let gap = |epoch: u64, kind: GapKind, from_seq: u64, count: u64, detail: String| GapRow {
        ts_ns: now,
        segment: name.to_owned(),
        ring: ring as u16,
        epoch,
        kind,
        from_seq: Some(from_seq),
        count,
        detail: Some(detail),
    };
    let overran = || "ring overran while the archiver was down".to_owned();
    let margin = segment.geometry().capacity as u64 / OVERRUN_RESTART_MARGIN_DIVISOR;
    let mut rows = Vec::new();
    let (from, start) = match cursor {
        None => (oldest, Start::Oldest),
        Some(c) if c.epoch == epoch && c.next_seq >= oldest => (c.next_seq, Start::At(c.next_seq)),
        Some(c) if c.epoch == epoch => (c.next_seq, Start::At(oldest + margin)),
        Some(c) if old_tail_in_ring(segment, ring, c, oldest) => {
            // Read what the old epoch left; the first poll past it reports the new epoch and
            // what it overwrote (a `producer_restart` gap row then, from `poll_once`).
            let start = Start::PreviousEpoch {
                epoch: c.epoch,
                seq: c.next_seq,
            };
            (c.next_seq, start)
        }
        Some(c) => {
            let (epoch_start, prev_end) = segment.epoch_bounds(ring);
            let old_lost = prev_end.saturating_sub(c.next_seq);
            if old_lost > 0 {
                let detail =
                    format!("producer restarted while the archiver was down (new epoch {epoch})");
                rows.push(gap(
                    c.epoch,
                    GapKind::ProducerRestart,
                    c.next_seq,
                    old_lost,
                    detail,
                ));
            }
            if oldest > epoch_start {
                (epoch_start, Start::At(oldest + margin))
            } else {
                (epoch_start, Start::Oldest)
            }
        }
    };
    let consumer = Consumer::new(segment, ring, start)?;
    if consumer.epoch() == epoch && consumer.next_seq() > from {
        let count = consumer.next_seq() - from;
        rows.push(gap(epoch, GapKind::ArchiverRestart, from, count, overran()));
    }
    Ok((consumer, rows))
}

fn cursor_key(segment: &str, ring: u16) -> String {
    format!("{segment}#{ring}")
}

impl Archiver {
    /// Recovers the archive root, checks the disk guard, opens every ring of every configured
    /// segment and positions each at its committed cursor (recording restart losses in `gaps`).
    ///
    /// # Errors
    /// [`ArchiveError::DiskFull`], bus errors (segment missing after `open_timeout_ms`), I/O.
    pub fn open(config: ArchiveConfig) -> Result<Archiver, ArchiveError> {
        layout::create_dir_durable(&config.root.join(STATE_DIR))
            .map_err(|e| ArchiveError::io(&config.root, e))?;
        check_disk(&config.root, config.min_free_bytes)?;
        let (state, stray_tmp_removed) = recover(&config.root)?;
        if stray_tmp_removed > 0 {
            tracing::warn!(
                stray_tmp_removed,
                "removed temporary files of an uncommitted flush"
            );
        }
        let mut archiver = Archiver {
            sources: vec![Source {
                segment: SELF_SOURCE.to_owned(),
                ring: 0,
                epoch: 0,
            }],
            names: vec![Names {
                segment: None,
                cache: Vec::new(),
            }],
            rings: Vec::new(),
            ring_changes: 0,
            buffers: HashMap::new(),
            pending: 0,
            early_flushes: 0,
            gaps: Vec::new(),
            last_heartbeat: None,
            heartbeats: 0,
            recorder: None,
            telemetry: None,
            archived: 0,
            stray_tmp_removed,
            state,
            config,
        };
        let segments = archiver.config.segments.clone();
        for name in &segments {
            let segment =
                Segment::open_wait(name, Duration::from_millis(archiver.config.open_timeout_ms))?;
            for ring in 0..segment.geometry().ring_count {
                archiver.add_ring(name, &segment, ring)?;
            }
        }
        Ok(archiver)
    }

    fn add_source(&mut self, segment: &Arc<Segment>, ring: u16, epoch: u64) -> u16 {
        self.sources.push(Source {
            segment: segment.name().to_owned(),
            ring,
            epoch,
        });
        self.names.push(Names {
            segment: Some(Arc::clone(segment)),
            cache: Vec::new(),
        });
        (self.sources.len() - 1) as u16
    }

    fn add_ring(
        &mut self,
        name: &str,
        segment: &Arc<Segment>,
        ring: usize,
    ) -> Result<(), ArchiveError> {
        let ring16 = ring as u16;
        let cursor = self.state.cursors.get(&cursor_key(name, ring16)).copied();
        let (consumer, rows) = resume(name, segment, ring, cursor)?;
        self.gaps.extend(rows);
        let epoch = consumer.epoch();
        let skip_below = match cursor {
            Some(c) if c.epoch == epoch => c.next_seq,
            _ => 0,
        };
        let src = self.add_source(segment, ring16, epoch);
        self.ring_changes += 1;
        self.rings.push(Ring {
            segment_name: name.to_owned(),
            consumer,
            ring: ring16,
            src,
            skip_below,
            bad_records: 0,
        });
        Ok(())
    }

    /// Starts the archiver's latency telemetry: stage `bus_to_durable` (a record's bus publish
    /// stamp → the flush that made it durable committed), dumped every `hlog_interval_s` to
    /// `<hlog_dir>/archive-<UTC start>.hlog`. Returns the first file.
    ///
    /// # Errors
    /// I/O and telemetry errors.
    pub fn enable_hlog(&mut self) -> Result<PathBuf, ArchiveError> {
        let dir = self.config.hlog_dir();
        layout::create_dir_durable(&dir).map_err(|e| ArchiveError::io(&dir, e))?;
        let telemetry = Telemetry::start(stages::TABLE, self.config.hlog_settings())?;
        self.recorder = Some(telemetry.recorder());
        let first = telemetry.first_file().map(Path::to_owned).unwrap_or(dir);
        self.telemetry = Some(telemetry);
        Ok(first)
    }

    /// The stage figures for `/metrics` (after [`Archiver::enable_hlog`]).
    #[must_use]
    pub fn stage_metrics(&self) -> Option<StageMetrics> {
        self.telemetry.as_ref().map(Telemetry::metrics)
    }

    /// Changes the disk-guard limit of a running archiver (e.g. after a config reload).
    pub fn set_min_free_bytes(&mut self, min_free_bytes: u64) {
        self.config.min_free_bytes = min_free_bytes;
    }

    /// Whether every ring has been read up to its producer's head.
    #[must_use]
    pub fn caught_up(&self) -> bool {
        self.rings
            .iter()
            .all(|r| r.consumer.next_seq() >= r.consumer.segment().head(r.ring as usize))
    }

    /// Temporary files of an uncommitted flush removed at start-up.
    #[must_use]
    pub fn stray_tmp_removed(&self) -> usize {
        self.stray_tmp_removed
    }

    /// Records archived (buffered) since start.
    #[must_use]
    pub fn archived(&self) -> u64 {
        self.archived
    }

    /// The commit state.
    #[must_use]
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Polls every ring once for up to `budget` records each; returns records taken.
    pub fn poll_once(&mut self, budget: usize) -> Result<usize, ArchiveError> {
        let mut taken = 0;
        let mut record = Record::zeroed();
        for index in 0..self.rings.len() {
            for _ in 0..budget {
                let poll = self.rings[index].consumer.poll(&mut record);
                match poll {
                    Poll::Ready => {
                        if record.seq < self.rings[index].skip_below {
                            continue;
                        }
                        taken += 1;
                        self.take(index, &record);
                    }
                    Poll::Empty => break,
                    Poll::Lost { count } => {
                        let ring = &self.rings[index];
                        let next = ring.consumer.next_seq();
                        self.gaps.push(GapRow {
                            ts_ns: now_ns(),
                            segment: ring.segment_name.clone(),
                            ring: ring.ring,
                            epoch: ring.consumer.epoch(),
                            kind: GapKind::Overrun,
                            from_seq: Some(next - count),
                            count,
                            detail: Some("archiver lapped by the producer".to_owned()),
                        });
                        tracing::warn!(count, segment = %ring.segment_name, "bus overrun");
                    }
                    Poll::EpochChanged {
                        old_epoch,
                        new_epoch,
                        lost,
                    } => {
                        let (segment, ring16) = {
                            let ring = &self.rings[index];
                            (Arc::clone(ring.consumer.segment()), ring.ring)
                        };
                        let (_, prev_end) = segment.epoch_bounds(ring16 as usize);
                        if lost > 0 {
                            self.gaps.push(GapRow {
                                ts_ns: now_ns(),
                                segment: self.rings[index].segment_name.clone(),
                                ring: ring16,
                                epoch: old_epoch,
                                kind: GapKind::ProducerRestart,
                                from_seq: Some(prev_end - lost),
                                count: lost,
                                detail: Some(format!("producer restarted (new epoch {new_epoch})")),
                            });
                        }
                        let src = self.add_source(&segment, ring16, new_epoch);
                        let ring = &mut self.rings[index];
                        ring.src = src;
                        ring.skip_below = 0;
                        tracing::info!(lost, new_epoch, "producer restarted");
                    }
                    Poll::Retired => {
                        self.reopen(index)?;
                        break;
                    }
                }
            }
        }
        Ok(taken)
    }

    /// The doorbells of every segment the rings read (rebuilt when `ring_changes` moves).
    fn doorbells(&self) -> Doorbells {
        Doorbells::new(self.rings.iter().map(|r| &r.consumer))
    }

    #[cold]
    fn reopen(&mut self, index: usize) -> Result<(), ArchiveError> {
        self.ring_changes += 1;
        let name = self.rings[index].segment_name.clone();
        let ring = self.rings[index].ring;
        let segment =
            Segment::open_wait(&name, Duration::from_millis(self.config.open_timeout_ms))?;
        let consumer = Consumer::new(&segment, ring as usize, Start::Oldest)?;
        self.gaps.push(GapRow {
            ts_ns: now_ns(),
            segment: name.clone(),
            ring,
            epoch: self.rings[index].consumer.epoch(),
            kind: GapKind::SegmentRetired,
            from_seq: Some(self.rings[index].consumer.next_seq()),
            count: 0,
            detail: Some("segment retired (layout change); reopened, loss unknown".to_owned()),
        });
        let src = self.add_source(&segment, ring, consumer.epoch());
        let r = &mut self.rings[index];
        r.consumer = consumer;
        r.src = src;
        r.skip_below = 0;
        Ok(())
    }

    #[inline]
    fn take(&mut self, index: usize, record: &Record) {
        let ring = &mut self.rings[index];
        let table = record.record_kind().and_then(Table::for_kind);
        let (Some(table), Some(_)) = (table, record.record_venue()) else {
            ring.bad_records += 1;
            return;
        };
        let ts = if record.publish_ts_ns > 0 {
            record.publish_ts_ns
        } else {
            now_ns()
        };
        let key = Key {
            table,
            venue: record.venue,
            window: Window::of_ns(ts),
            src: ring.src,
        };
        self.buffers.entry(key).or_default().push(*record);
        self.archived += 1;
        self.pending += 1;
    }

    fn heartbeat(&mut self) {
        let now = now_ns();
        let window = Window::of_ns(now);
        if self.last_heartbeat == Some(window) {
            return;
        }
        self.last_heartbeat = Some(window);
        self.heartbeats += 1;
        let body = Heartbeat {
            pid: std::process::id(),
            role: ROLE_ARCHIVE,
            published: self.archived,
            reserved: [0; 64],
        };
        let mut record = Record::new(Venue::Internal, 0, 0, &body);
        record.seq = self.heartbeats;
        record.publish_ts_ns = now;
        record.recv_ts_ns = now;
        self.buffers
            .entry(Key {
                table: Table::CollectorHeartbeat,
                venue: Venue::Internal as u8,
                window,
                src: 0,
            })
            .or_default()
            .push(record);
    }

    /// Writes everything buffered as Parquet and commits it (see the module docs).
    ///
    /// # Errors
    /// [`ArchiveError::DiskFull`] (nothing is written; the cursors stay put, so a restart with
    /// free space re-reads the records from the ring), I/O, Parquet and Arrow errors.
    pub fn flush(&mut self) -> Result<FlushStats, ArchiveError> {
        self.heartbeat();
        self.note_bad_records();
        check_disk(&self.config.root, self.config.min_free_bytes)?;
        let mut stats = FlushStats::default();
        let mut written: Vec<PathBuf> = Vec::new();
        self.write_record_tables(&mut stats, &mut written)?;
        self.write_gaps(&mut stats, &mut written)?;
        self.commit(&written)?;
        self.record_durable();
        // Keep the buffers' capacity for the next interval; drop buffers of past windows.
        let current = Window::of_ns(now_ns());
        self.buffers.retain(|k, v| {
            v.clear();
            k.window.start_s + layout::WINDOW_S >= current.start_s
        });
        self.pending = 0;
        Ok(stats)
    }

    /// Records `bus_to_durable` for every record the committed flush made durable.
    fn record_durable(&mut self) {
        let Some(recorder) = &mut self.recorder else {
            return;
        };
        let durable_ns = now_ns();
        for records in self.buffers.values() {
            for r in records {
                if r.publish_ts_ns > 0 {
                    recorder.record_between(stages::BUS_TO_DURABLE, r.publish_ts_ns, durable_ns);
                }
            }
        }
    }

    /// Turns every ring's count of skipped records into a `bad_record` gap row.
    fn note_bad_records(&mut self) {
        for ring in &mut self.rings {
            if ring.bad_records > 0 {
                self.gaps.push(GapRow {
                    ts_ns: now_ns(),
                    segment: ring.segment_name.clone(),
                    ring: ring.ring,
                    epoch: ring.consumer.epoch(),
                    kind: GapKind::BadRecord,
                    from_seq: None,
                    count: ring.bad_records,
                    detail: Some("unknown record kind or venue byte; skipped".to_owned()),
                });
                ring.bad_records = 0;
            }
        }
    }

    /// Writes every non-empty buffer as a temporary part file; values that did not fit their
    /// decimal column become `bad_value` gap rows.
    fn write_record_tables(
        &mut self,
        stats: &mut FlushStats,
        written: &mut Vec<PathBuf>,
    ) -> Result<(), ArchiveError> {
        let mut keys: Vec<Key> = self
            .buffers
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, _)| *k)
            .collect();
        keys.sort();
        let mut bad_values: BTreeMap<u16, u64> = BTreeMap::new();
        for key in keys {
            let records = self.buffers.get(&key).map_or(&[][..], Vec::as_slice);
            let source = self.sources[key.src as usize].clone();
            let names = &mut self.names[key.src as usize];
            let (batch, bad) = tables::build_batch(key.table, &source, records, names)?;
            let n_records = records.len() as u64;
            if bad > 0 {
                *bad_values.entry(key.src).or_default() += bad;
            }
            let venue = Venue::from_u8(key.venue).map_or("unknown", Venue::as_str);
            let path = self.write_part(key.table, key.window, venue, &batch, &source)?;
            let bytes = std::fs::metadata(layout::tmp_name(&path))
                .map_err(|e| ArchiveError::io(&path, e))?
                .len();
            stats.files += 1;
            stats.rows += n_records;
            stats.bytes += bytes;
            let entry = stats.per_table.entry(key.table.name()).or_default();
            entry.0 += n_records;
            entry.1 += bytes;
            written.push(path);
        }
        for (src, count) in bad_values {
            let source = &self.sources[src as usize];
            self.gaps.push(GapRow {
                ts_ns: now_ns(),
                segment: source.segment.clone(),
                ring: source.ring,
                epoch: source.epoch,
                kind: GapKind::BadValue,
                from_seq: None,
                count,
                detail: Some("values outside DECIMAL(18, s) written as null".to_owned()),
            });
        }
        Ok(())
    }

    /// Writes the pending gap rows, one temporary part file per window.
    fn write_gaps(
        &mut self,
        stats: &mut FlushStats,
        written: &mut Vec<PathBuf>,
    ) -> Result<(), ArchiveError> {
        let mut by_window: BTreeMap<Window, Vec<GapRow>> = BTreeMap::new();
        for gap in self.gaps.drain(..) {
            by_window
                .entry(Window::of_ns(gap.ts_ns))
                .or_default()
                .push(gap);
        }
        for (window, rows) in by_window {
            let batch = tables::build_gaps_batch(&rows)?;
            let source = Source {
                segment: SELF_SOURCE.to_owned(),
                ring: 0,
                epoch: 0,
            };
            let path = self.write_part(Table::Gaps, window, "internal", &batch, &source)?;
            stats.files += 1;
            stats.rows += rows.len() as u64;
            written.push(path);
        }
        Ok(())
    }

    /// The commit point: the state names `written` and the cursors after them (atomic rename),
    /// then each temporary file is renamed to its final name and the directories are fsynced.
    fn commit(&mut self, written: &[PathBuf]) -> Result<(), ArchiveError> {
        let root = self.config.root.clone();
        let mut next = self.state.clone();
        for ring in &self.rings {
            next.cursors.insert(
                cursor_key(&ring.segment_name, ring.ring),
                Cursor {
                    epoch: ring.consumer.epoch(),
                    next_seq: ring.consumer.next_seq(),
                    segment_created_ts_ns: ring.consumer.segment().header().created_ts_ns,
                },
            );
        }
        next.committed = written
            .iter()
            .filter_map(|p| p.strip_prefix(&root).ok())
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        next.commits += 1;
        for path in written {
            if let Some(dir) = path.parent().and_then(|d| d.strip_prefix(&root).ok()) {
                next.uncompacted.insert(dir.to_string_lossy().into_owned());
            }
        }
        self.save_state(&next)?;
        self.state = next;
        let mut dirs: Vec<&Path> = Vec::new();
        for path in written {
            let tmp = layout::tmp_name(path);
            std::fs::rename(&tmp, path).map_err(|e| ArchiveError::io(&tmp, e))?;
            if let Some(dir) = path.parent()
                && !dirs.contains(&dir)
            {
                dirs.push(dir);
            }
        }
        for dir in dirs {
            layout::fsync_path(dir).map_err(|e| ArchiveError::io(dir, e))?;
        }
        Ok(())
    }

    fn save_state(&self, state: &State) -> Result<(), ArchiveError> {
        let path = state_path(&self.config.root);
        let json = serde_json::to_vec_pretty(state).map_err(|e| ArchiveError::State {
            path: path.clone(),
            message: e.to_string(),
        })?;
        layout::write_atomic(&path, &json).map_err(|e| ArchiveError::io(&path, e))
    }

    /// Merges the part files of every partition whose window closed more than `grace` ago into
    /// one file per partition (fewer, larger files compress better and read faster).
    ///
    /// Crash safety: the merged file is written under a temporary name and fsynced, the commit
    /// record names it and its sources, then it is renamed into place and the sources are
    /// removed; a restart finishes a committed compaction and discards an uncommitted one.
    /// A reader listing the directory in the instant between that rename and the removals can
    /// see the merged file beside its sources; every file it sees is complete.
    ///
    /// Returns the number of partitions compacted.
    ///
    /// # Errors
    /// I/O and Parquet errors; the disk guard.
    pub fn compact(&mut self, grace: Duration) -> Result<usize, ArchiveError> {
        Ok(self
            .compact_closed_by_at_most(cutoff_s(grace), usize::MAX)?
            .0)
    }

    /// Compacts every partition whose window ended at or before `cutoff_s` (s since the epoch);
    /// `i64::MAX` compacts everything, including the current window.
    ///
    /// # Errors
    /// As [`Archiver::compact`].
    pub fn compact_closed_by(&mut self, cutoff_s: i64) -> Result<usize, ArchiveError> {
        Ok(self.compact_closed_by_at_most(cutoff_s, usize::MAX)?.0)
    }

    /// As [`Archiver::compact_closed_by`], visiting at most `limit` partitions; returns (merged,
    /// visited). The run loop compacts one partition per step, a step at each flush and in each
    /// idle turn: a rollover closes a window of some forty partitions of ~600 parts each, and
    /// merging them all at once stopped polling for 15–20 s (the archiver's `bus_to_durable`
    /// max after each rollover, 2026-12-07).
    ///
    /// # Errors
    /// As [`Archiver::compact`].
    pub fn compact_closed_by_at_most(
        &mut self,
        cutoff_s: i64,
        limit: usize,
    ) -> Result<(usize, usize), ArchiveError> {
        let root = self.config.root.clone();
        let (mut done, mut visited) = (0, 0);
        let dirs: Vec<String> = self.state.uncompacted.iter().cloned().collect();
        for rel in dirs {
            if visited >= limit {
                break;
            }
            let Some(start_s) = rel
                .split('/')
                .find_map(|c| c.strip_prefix("window="))
                .and_then(|hhmm| window_start_of(&rel, hhmm))
            else {
                self.state.uncompacted.remove(&rel);
                continue;
            };
            if start_s + layout::WINDOW_S > cutoff_s {
                continue;
            }
            visited += 1;
            check_disk(&root, self.config.min_free_bytes)?;
            let dir = root.join(&rel);
            let mut parts: Vec<(u64, String)> = std::fs::read_dir(&dir)
                .map_err(|e| ArchiveError::io(&dir, e))?
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let n = name
                        .strip_prefix("part-")?
                        .strip_suffix(".parquet")?
                        .parse()
                        .ok()?;
                    Some((n, name))
                })
                .collect();
            parts.sort();
            let mut next = self.state.clone();
            next.uncompacted.remove(&rel);
            if parts.len() > 1 {
                let table = rel
                    .split('/')
                    .next()
                    .and_then(Table::from_name)
                    .ok_or_else(|| ArchiveError::State {
                        path: dir.clone(),
                        message: "not a table directory".to_owned(),
                    })?;
                let merged = format!("part-{}.parquet", next.next_part);
                next.next_part += 1;
                let metadata = vec![
                    (
                        "ringbolt.compacted_from".to_owned(),
                        parts.len().to_string(),
                    ),
                    ("ringbolt.window_start_s".to_owned(), start_s.to_string()),
                ];
                let props = writer::properties(table, self.config.zstd_level, metadata)?;
                let sources: Vec<PathBuf> = parts.iter().map(|(_, n)| dir.join(n)).collect();
                writer::merge_files(&sources, &layout::tmp_name(&dir.join(&merged)), props)?;
                next.compaction = Some(Compaction {
                    dir: rel.clone(),
                    merged,
                    sources: parts.into_iter().map(|(_, n)| n).collect(),
                });
                self.save_state(&next)?;
                if let Some(c) = &next.compaction {
                    finish_compaction(&root, c)?;
                }
                done += 1;
            }
            next.compaction = None;
            self.save_state(&next)?;
            self.state = next;
        }
        Ok((done, visited))
    }

    fn write_part(
        &mut self,
        table: Table,
        window: Window,
        venue: &str,
        batch: &arrow_array::RecordBatch,
        source: &Source,
    ) -> Result<PathBuf, ArchiveError> {
        let dir = window.dir(&self.config.root, table.name(), venue);
        layout::create_dir_durable(&dir).map_err(|e| ArchiveError::io(&dir, e))?;
        let part = self.state.next_part;
        self.state.next_part += 1;
        let path = dir.join(format!("part-{part}.parquet"));
        let metadata = vec![
            ("ringbolt.segment".to_owned(), source.segment.clone()),
            ("ringbolt.ring".to_owned(), source.ring.to_string()),
            ("ringbolt.epoch".to_owned(), source.epoch.to_string()),
            ("ringbolt.venue".to_owned(), venue.to_owned()),
            (
                "ringbolt.window_start_s".to_owned(),
                window.start_s.to_string(),
            ),
        ];
        let props = writer::properties(table, self.config.zstd_level, metadata)?;
        writer::write_file(&layout::tmp_name(&path), batch, props)?;
        Ok(path)
    }

    /// Runs until `stop` is set (then drains the rings for at most [`STOP_DRAIN_BUDGET`]): polls
    /// with a sleeping idle strategy, flushes every
    /// `flush_interval_ms`, and flushes once more before returning.
    ///
    /// # Errors
    /// As [`Archiver::flush`]; the disk guard stops the loop with [`ArchiveError::DiskFull`].
    pub fn run(&mut self, stop: &AtomicBool) -> Result<(), ArchiveError> {
        self.run_with_progress(stop, &mut |_| {})
    }

    /// As [`Archiver::run`], calling `progress` from the loop itself: once per iteration (after
    /// a poll or an idle doorbell sleep, so at least every `idle_sleep_us` / `flush_interval_ms` while
    /// the loop is healthy) and after every flush. A stalled loop (a hung write, a wedged
    /// filesystem) stops the calls, which is what a liveness watchdog must observe: the
    /// process's health endpoint and systemd `WATCHDOG=1` follow these calls, not a timer.
    ///
    /// # Errors
    /// As [`Archiver::run`].
    pub fn run_with_progress(
        &mut self,
        stop: &AtomicBool,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<(), ArchiveError> {
        let flush_every = Duration::from_millis(self.config.flush_interval_ms);
        let idle = Duration::from_micros(self.config.idle_sleep_us.max(1));
        let mut bells = (self.ring_changes, self.doorbells());
        let mut next_flush = Instant::now() + flush_every;
        let mut next_compact = Instant::now() + Duration::from_secs(10);
        // Closed partitions are merged one at a time, at each flush and in idle turns, so that
        // polling never stops for a whole window's compaction (see `compact_closed_by_at_most`).
        let grace = flush_every + Duration::from_secs(5);
        let mut compacting = false;
        self.heartbeat();
        loop {
            let taken = self.poll_once(4096)?;
            if let Some(recorder) = &mut self.recorder {
                recorder.maybe_rotate();
            }
            let now = Instant::now();
            if stop.load(Ordering::Relaxed) {
                let drained = self.drain(STOP_DRAIN_BUDGET)?;
                tracing::info!(drained, "stopping: drained the rings");
                self.flush()?;
                return Ok(());
            }
            let full = self.pending >= MAX_PENDING;
            if now >= next_flush || full {
                if full && now < next_flush {
                    self.early_flushes += 1;
                    tracing::debug!(pending = self.pending, "buffers full: early flush");
                }
                let stats = self.flush()?;
                tracing::debug!(files = stats.files, rows = stats.rows, "flushed");
                progress(Progress::Flushed(&stats));
                compacting |= now >= next_compact;
                if compacting && !self.compact_step(grace)? {
                    (compacting, next_compact) = (false, now + Duration::from_secs(10));
                }
                next_flush = Instant::now() + flush_every;
            } else if taken == 0 && compacting {
                if !self.compact_step(grace)? {
                    (compacting, next_compact) = (false, now + Duration::from_secs(10));
                }
            } else if taken == 0 {
                if bells.0 != self.ring_changes {
                    bells = (self.ring_changes, self.doorbells());
                }
                // Asleep on the segments' doorbells until a producer publishes (bounded by the
                // next flush and `idle_sleep_us`, so liveness and the stop flag are seen).
                let rings = &self.rings;
                bells.1.sleep(idle.min(next_flush - now), || {
                    rings.iter().any(|r| r.consumer.pending())
                });
            }
            progress(Progress::Polled(taken));
        }
    }

    /// Merges one closed partition, if any is left; returns whether one was visited.
    fn compact_step(&mut self, grace: Duration) -> Result<bool, ArchiveError> {
        let (compacted, visited) = self.compact_closed_by_at_most(cutoff_s(grace), 1)?;
        tracing::debug!(compacted, visited, "compaction step");
        Ok(visited > 0)
    }

    /// Takes what the rings still hold when asked to stop, so that an archiver lagging behind its
    /// producers loses nothing the bus carried: polls until every ring is empty or `budget` is
    /// spent (what is left stays on the bus; a restart resumes from the committed cursor).
    fn drain(&mut self, budget: Duration) -> Result<u64, ArchiveError> {
        let deadline = Instant::now() + budget;
        let mut drained = 0_u64;
        loop {
            let taken = self.poll_once(4096)?;
            drained += taken as u64;
            if taken == 0 {
                return Ok(drained);
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    drained,
                    "stop drain budget spent with records still on the rings"
                );
                return Ok(drained);
            }
            if self.pending >= MAX_PENDING {
                self.flush()?;
            }
        }
    }

    /// Flushes the partial latency interval and waits for the dumper.
    pub fn shutdown(mut self) {
        // A dropped recorder hands its last set over; finish writes it.
        drop(self.recorder.take());
        if let Some(telemetry) = self.telemetry.take()
            && let Err(error) = telemetry.finish()
        {
            tracing::warn!(%error, "writing the last latency interval failed");
        }
    }

    /// Per-window and per-instrument state held: (buffer keys — one per table, venue, window
    /// and ring —, cached instrument names over all segments, partitions awaiting compaction).
    /// Buffers of past windows are dropped at each flush and names are cached per table slot,
    /// so the first two stay bounded however long the archiver runs; the third empties at each
    /// compaction.
    #[must_use]
    pub fn held(&self) -> (usize, usize, usize) {
        (
            self.buffers.len(),
            self.names.iter().map(Names::cached).sum(),
            self.state.uncompacted.len(),
        )
    }

    /// Flushes started early because the buffers reached [`MAX_PENDING`] records.
    #[must_use]
    pub fn early_flushes(&self) -> u64 {
        self.early_flushes
    }

    /// Records currently buffered (not yet committed).
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buffers.values().map(Vec::len).sum()
    }

    /// The kind of every ring's last consumer position (for diagnostics).
    #[must_use]
    pub fn cursors(&self) -> Vec<(String, u16, Cursor)> {
        self.rings
            .iter()
            .map(|r| {
                (
                    r.segment_name.clone(),
                    r.ring,
                    Cursor {
                        epoch: r.consumer.epoch(),
                        next_seq: r.consumer.next_seq(),
                        segment_created_ts_ns: r.consumer.segment().header().created_ts_ns,
                    },
                )
            })
            .collect()
    }
}

/// Whether a record kind is archived (everything but `Empty`).
#[must_use]
pub fn is_archived(kind: RecordKind) -> bool {
    Table::for_kind(kind).is_some()
}
