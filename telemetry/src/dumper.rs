//! The cold side: one dumper thread per process merges its recorders' sets every interval,
//! appends them to the process's `.hlog` file (rotated by size and age) and keeps the figures
//! `/metrics` serves.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};

use crate::TelemetryError;
use crate::metrics::{StageMetrics, StageSnapshot};
use crate::recorder::{StageRecorder, StageSet};
use crate::stages::StageTable;

/// Sets queued from recorders to the dumper.
const QUEUE: usize = 256;
/// Spare sets per recorder (one being written, one ready to swap in).
const SPARES: usize = 2;
/// How long the dumper waits for the recorders' sets after opening a new interval on its own
/// cadence (at most a quarter of the interval).
const GRACE_MAX: Duration = Duration::from_millis(250);
/// The same after [`Telemetry::end_interval`] (asked for: every live recorder is expected).
const GRACE_ASKED: Duration = Duration::from_secs(10);

/// Where and how often a process dumps its histograms.
#[derive(Clone, Debug)]
pub struct HlogSettings {
    /// Directory of the `.hlog` files; `None` = no files (the figures still reach `/metrics`).
    pub dir: Option<PathBuf>,
    /// Interval length (one line per stage per interval).
    pub interval: Duration,
    /// Start a new file once the current one holds this many bytes.
    pub rotate_bytes: u64,
    /// Start a new file once the current one is this old.
    pub rotate_age: Duration,
}

/// Default `hlog_interval_s` of every process.
pub const DEFAULT_INTERVAL_S: u64 = 5;
/// Default `hlog_rotate_bytes` of every process (64 MiB).
pub const DEFAULT_ROTATE_BYTES: u64 = 64 << 20;
/// Default `hlog_rotate_age_s` of every process (one hour).
pub const DEFAULT_ROTATE_AGE_S: u64 = 3600;

impl Default for HlogSettings {
    fn default() -> Self {
        HlogSettings {
            dir: None,
            interval: Duration::from_secs(DEFAULT_INTERVAL_S),
            rotate_bytes: DEFAULT_ROTATE_BYTES,
            rotate_age: Duration::from_secs(DEFAULT_ROTATE_AGE_S),
        }
    }
}

impl HlogSettings {
    /// The settings of a process section's `hlog_*` keys. Without `hlog_dir`, the dumps go to
    /// `$STATE_DIRECTORY/hlog` when systemd set one (`StateDirectory=ringbolt`), else nowhere.
    #[must_use]
    pub fn from_keys(
        dir: Option<&Path>,
        interval_s: u64,
        rotate_bytes: u64,
        rotate_age_s: u64,
    ) -> HlogSettings {
        let dir = dir.map(Path::to_owned).or_else(|| {
            std::env::var_os("STATE_DIRECTORY")
                .filter(|d| !d.is_empty())
                // systemd may list several directories separated by ':'; the first is ours.
                .map(|d| {
                    PathBuf::from(d.to_string_lossy().split(':').next().unwrap_or_default())
                        .join("hlog")
                })
        });
        HlogSettings {
            dir,
            interval: Duration::from_secs(interval_s.max(1)),
            rotate_bytes: rotate_bytes.max(1),
            rotate_age: Duration::from_secs(rotate_age_s.max(1)),
        }
    }
}

pub(crate) enum Msg {
    Set(StageSet),
    /// Close the current interval now.
    Tick,
    Stop,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Msg::Set(_) => "Set",
            Msg::Tick => "Tick",
            Msg::Stop => "Stop",
        })
    }
}

/// What recorders, the dumper and the metrics endpoint share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) table: StageTable,
    /// Bumped by the dumper when it opens a new interval; recorders rotate on a change.
    pub(crate) epoch: AtomicU64,
    /// Recorders alive.
    pub(crate) live: AtomicUsize,
    pub(crate) metrics: Mutex<Vec<StageSnapshot>>,
}

/// A process's telemetry: make one [`StageRecorder`] per recording component with
/// [`Telemetry::recorder`], serve [`Telemetry::metrics`] on `/metrics`, and call
/// [`Telemetry::finish`] at exit (after dropping the recorders) to write the last interval.
#[derive(Debug)]
pub struct Telemetry {
    shared: Arc<Shared>,
    full_tx: SyncSender<Msg>,
    thread: Option<JoinHandle<Result<Vec<PathBuf>, TelemetryError>>>,
    first_file: Option<PathBuf>,
}

impl Telemetry {
    /// Starts the dumper thread of `table.process`; with a directory, opens its first file
    /// `<dir>/<process>-<UTC start>.hlog` (creating the directory).
    ///
    /// # Errors
    /// [`TelemetryError::Write`] when the directory or file cannot be created or the thread
    /// cannot start.
    pub fn start(table: StageTable, settings: HlogSettings) -> Result<Telemetry, TelemetryError> {
        let shared = Arc::new(Shared {
            table,
            epoch: AtomicU64::new(1),
            live: AtomicUsize::new(0),
            metrics: Mutex::new(
                table
                    .stages
                    .iter()
                    .map(|s| StageSnapshot::empty(s))
                    .collect(),
            ),
        });
        let file = match &settings.dir {
            Some(dir) => Some(HlogFile::create(dir, table.process)?),
            None => None,
        };
        let first_file = file.as_ref().map(|f| f.path.clone());
        let (full_tx, full_rx) = sync_channel(QUEUE);
        let dumper = Dumper {
            shared: Arc::clone(&shared),
            pending: StageSet::new(table.stages.len(), None),
            rx: full_rx,
            file,
            settings,
            interval_start: SystemTime::now(),
            files: first_file.iter().cloned().collect(),
            stop_seen: false,
            tick_asked: false,
        };
        let thread = std::thread::Builder::new()
            .name(format!("hlog-{}", table.process))
            .spawn(move || dumper.run())
            .map_err(|e| TelemetryError::Write {
                path: first_file.clone().unwrap_or_default(),
                reason: format!("cannot start the dumper thread: {e}"),
            })?;
        Ok(Telemetry {
            shared,
            full_tx,
            thread: Some(thread),
            first_file,
        })
    }

    /// A recorder for one component (allocates its histogram sets now, never afterwards).
    #[must_use]
    pub fn recorder(&self) -> StageRecorder {
        StageRecorder::new(Arc::clone(&self.shared), self.full_tx.clone(), SPARES)
    }

    /// The process's figures for `/metrics` (a cheap handle; render it per scrape).
    #[must_use]
    pub fn metrics(&self) -> StageMetrics {
        StageMetrics::new(Arc::clone(&self.shared))
    }

    /// The first `.hlog` file (`None` without a directory).
    #[must_use]
    pub fn first_file(&self) -> Option<&Path> {
        self.first_file.as_deref()
    }

    /// Closes the current interval now (the recorders hand their sets over on their next
    /// [`StageRecorder::maybe_rotate`]); the regular cadence restarts from here.
    pub fn end_interval(&self) {
        let _ = self.full_tx.try_send(Msg::Tick);
    }

    /// Writes what the recorders handed over (drop them first: a dropped recorder hands over
    /// its last set) as the last interval, stops the thread and returns every file written.
    ///
    /// # Errors
    /// The dumper's write error.
    pub fn finish(mut self) -> Result<Vec<PathBuf>, TelemetryError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<Vec<PathBuf>, TelemetryError> {
        let Some(thread) = self.thread.take() else {
            return Ok(Vec::new());
        };
        // A full queue drains within a grace period; the stop marker then gets through.
        let _ = self.full_tx.send(Msg::Stop);
        thread.join().map_err(|_| TelemetryError::Disconnected)?
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// One open `.hlog` file.
struct HlogFile {
    path: PathBuf,
    out: BufWriter<File>,
    serializer: V2DeflateSerializer,
    base: SystemTime,
    opened: Instant,
    bytes: u64,
}

impl HlogFile {
    fn create(dir: &Path, process: &str) -> Result<HlogFile, TelemetryError> {
        let base = SystemTime::now();
        let mut path = dir.join(format!("{process}-{}.hlog", utc_stamp(base)));
        let mut n = 1;
        while path.exists() {
            n += 1;
            path = dir.join(format!("{process}-{}-{n}.hlog", utc_stamp(base)));
        }
        let err = |e: &dyn std::fmt::Display| TelemetryError::Write {
            path: path.clone(),
            reason: e.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(|e| err(&e))?;
        let mut out = BufWriter::new(File::create(&path).map_err(|e| err(&e))?);
        let mut serializer = V2DeflateSerializer::new();
        let mut builder = IntervalLogWriterBuilder::new();
        builder
            .add_comment(&format!(
                "ringbolt latency histograms of {process}, ns, one tag per stage"
            ))
            .with_start_time(base)
            .with_base_time(base);
        builder
            .begin_log_with(&mut out, &mut serializer)
            .map_err(|e| err(&e))?;
        // The legend line Java's HistogramLogWriter writes; readers skip it.
        out.write_all(
            b"\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n",
        )
        .map_err(|e| err(&e))?;
        out.flush().map_err(|e| err(&e))?;
        let bytes = out.get_ref().metadata().map_or(0, |m| m.len());
        Ok(HlogFile {
            path,
            out,
            serializer,
            base,
            opened: Instant::now(),
            bytes,
        })
    }

    /// Appends one interval: one tagged line per stage (empty stages too, so every tag has
    /// every interval).
    fn write(
        &mut self,
        set: &StageSet,
        table: StageTable,
        start: SystemTime,
        end: SystemTime,
    ) -> Result<(), TelemetryError> {
        let err = |e: &dyn std::fmt::Display| TelemetryError::Write {
            path: self.path.clone(),
            reason: e.to_string(),
        };
        let from = start.duration_since(self.base).unwrap_or_default();
        let length = end.duration_since(start).unwrap_or_default();
        let mut writer = IntervalLogWriterBuilder::new()
            .begin_log_with(&mut self.out, &mut self.serializer)
            .map_err(|e| err(&e))?;
        for (tag, h) in table.stages.iter().zip(&set.histograms) {
            writer
                .write_histogram(h, from, length, Tag::new(tag))
                .map_err(|e| err(&e))?;
        }
        self.out.flush().map_err(|e| err(&e))?;
        self.bytes = self
            .out
            .get_ref()
            .metadata()
            .map_or(self.bytes, |m| m.len());
        Ok(())
    }
}

struct Dumper {
    shared: Arc<Shared>,
    pending: StageSet,
    rx: Receiver<Msg>,
    file: Option<HlogFile>,
    settings: HlogSettings,
    interval_start: SystemTime,
    files: Vec<PathBuf>,
    /// The stop marker arrived while a tick collected sets.
    stop_seen: bool,
    /// An [`Telemetry::end_interval`] arrived while a tick collected sets.
    tick_asked: bool,
}

impl Dumper {
    fn run(mut self) -> Result<Vec<PathBuf>, TelemetryError> {
        let interval = self.settings.interval.max(Duration::from_millis(10));
        let grace = (interval / 4).min(GRACE_MAX);
        let mut next_tick = Instant::now() + interval;
        loop {
            if self.stop_seen {
                self.tick(true, grace)?;
                return Ok(self.files);
            }
            if std::mem::take(&mut self.tick_asked) {
                self.tick(false, GRACE_ASKED)?;
                next_tick = Instant::now() + interval;
                continue;
            }
            let wait = next_tick.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(wait) {
                Ok(Msg::Set(set)) => self.absorb(set),
                Ok(Msg::Tick) => {
                    self.tick(false, GRACE_ASKED)?;
                    next_tick = Instant::now() + interval;
                }
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => {
                    self.tick(true, grace)?;
                    return Ok(self.files);
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.tick(false, grace)?;
                    next_tick += interval;
                    let now = Instant::now();
                    if next_tick < now {
                        next_tick = now + interval;
                    }
                }
            }
        }
    }

    fn absorb(&mut self, mut set: StageSet) {
        self.pending.absorb(&set);
        set.reset();
        if let Some(home) = set.home.clone() {
            // The recorder may be gone; the set is then simply dropped.
            let _ = home.try_send(set);
        }
    }

    /// Opens a new interval, collects the recorders' sets of the one that ended (waiting up to
    /// a grace period for them), writes it and updates the metrics.
    fn tick(&mut self, last: bool, grace: Duration) -> Result<(), TelemetryError> {
        let epoch = self.shared.epoch.fetch_add(1, Ordering::AcqRel) + 1;
        let end = SystemTime::now();
        let deadline = Instant::now() + grace;
        let mut answered = 0;
        loop {
            let wanted = self.shared.live.load(Ordering::Acquire);
            // Every live recorder answered: what follows belongs to the next interval (the
            // last interval takes everything still queued).
            if answered >= wanted && !last {
                break;
            }
            let timeout = deadline.saturating_duration_since(Instant::now());
            let received = if answered >= wanted {
                self.rx.try_recv().ok()
            } else {
                self.rx.recv_timeout(timeout).ok()
            };
            match received {
                Some(Msg::Set(set)) => {
                    answered += usize::from(set.epoch >= epoch);
                    self.absorb(set);
                }
                Some(Msg::Stop) => self.stop_seen = true,
                Some(Msg::Tick) => self.tick_asked = true,
                None => break,
            }
        }
        self.write(end)?;
        if !last {
            self.maybe_rotate_file()?;
        }
        Ok(())
    }

    fn write(&mut self, end: SystemTime) -> Result<(), TelemetryError> {
        let table = self.shared.table;
        if let Some(file) = &mut self.file {
            file.write(&self.pending, table, self.interval_start, end)?;
        }
        if let Ok(mut m) = self.shared.metrics.lock() {
            for (i, snapshot) in m.iter_mut().enumerate() {
                if let (Some(h), Some(sum)) =
                    (self.pending.histograms.get(i), self.pending.sums_ns.get(i))
                {
                    snapshot.update(h, *sum);
                }
            }
        }
        self.pending.reset();
        self.interval_start = end;
        Ok(())
    }

    fn maybe_rotate_file(&mut self) -> Result<(), TelemetryError> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        if file.bytes < self.settings.rotate_bytes
            && file.opened.elapsed() < self.settings.rotate_age
        {
            return Ok(());
        }
        let dir = file.path.parent().unwrap_or(Path::new(".")).to_owned();
        let next = HlogFile::create(&dir, self.shared.table.process)?;
        self.files.push(next.path.clone());
        self.file = Some(next);
        Ok(())
    }
}

/// `YYYYMMDDTHHMMSS.mmmZ` of a wall-clock time (UTC), for file names.
#[must_use]
pub fn utc_stamp(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 → (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps_are_civil_dates() {
        assert_eq!(utc_stamp(UNIX_EPOCH), "19700101T000000.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_780_000_000_123);
        // 2026-05-28 20:26:40.123 UTC
        assert_eq!(utc_stamp(t), "20260528T202640.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(utc_stamp(leap), "20000229T000000.000Z");
    }
}
