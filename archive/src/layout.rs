//! The archive's on-disk layout: Hive partitions, 5-minute windows, UTC civil dates, and the
//! crash-safe file operations (write to a hidden temporary name, fsync, rename, fsync the directory).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// Window length in seconds (one Polymarket market).
pub use ringbolt_market::WINDOW_S;
use ringbolt_market::time::{civil_from_days, days_from_civil};

/// Windows per UTC day.
pub const WINDOWS_PER_DAY: u32 = (86_400 / WINDOW_S) as u32;
/// Directory (under the root) holding the archiver's commit state.
pub const STATE_DIR: &str = "_ringbolt";
/// Suffix of files being written; they start with a dot so readers ignore them.
pub const TMP_SUFFIX: &str = ".tmp";

/// A UTC civil date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date {
    /// Year.
    pub year: i32,
    /// Month 1..=12.
    pub month: u32,
    /// Day 1..=31.
    pub day: u32,
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl Date {
    /// The date containing `days` days since 1970-01-01.
    #[must_use]
    pub fn from_days(days: i64) -> Date {
        let (year, month, day) = civil_from_days(days);
        Date {
            year: year as i32,
            month,
            day,
        }
    }

    /// Days since 1970-01-01 (inverse of [`Date::from_days`]).
    #[must_use]
    pub fn days_since_epoch(self) -> i64 {
        days_from_civil(i64::from(self.year), self.month, self.day)
    }

    /// Parses `YYYY-MM-DD`.
    #[must_use]
    pub fn parse(text: &str) -> Option<Date> {
        let mut parts = text.split('-');
        let year = parts.next()?.parse().ok()?;
        let month = parts.next()?.parse().ok()?;
        let day = parts.next()?.parse().ok()?;
        if parts.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return None;
        }
        Some(Date { year, month, day })
    }
}

/// The 5-minute window a timestamp falls in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Window {
    /// Window start, seconds since the Unix epoch (a multiple of 300).
    pub start_s: i64,
}

impl Window {
    /// The window containing `ts_ns` (ns since the Unix epoch).
    #[must_use]
    pub fn of_ns(ts_ns: i64) -> Window {
        Window {
            start_s: ringbolt_market::window_of_ns(ts_ns),
        }
    }

    /// The UTC date of the window.
    #[must_use]
    pub fn date(self) -> Date {
        Date::from_days(self.start_s.div_euclid(86_400))
    }

    /// `HHMM` of the window start.
    #[must_use]
    pub fn hhmm(self) -> String {
        let sod = self.start_s.rem_euclid(86_400);
        format!("{:02}{:02}", sod / 3600, (sod % 3600) / 60)
    }

    /// The partition directory of `table` for `venue` in this window.
    #[must_use]
    pub fn dir(self, root: &Path, table: &str, venue: &str) -> PathBuf {
        root.join(table)
            .join(format!("date={}", self.date()))
            .join(format!("venue={venue}"))
            .join(format!("window={}", self.hhmm()))
    }
}

/// Opens `path` and fsyncs it (a file or a directory).
///
/// # Errors
/// The OS error.
pub fn fsync_path(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

/// Creates `dir` and any missing parents, fsyncing the parent of every directory it creates so
/// the new entries survive a power cut.
///
/// # Errors
/// The OS error.
pub fn create_dir_durable(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dir_durable(parent)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    }
    if let Some(parent) = dir.parent() {
        fsync_path(parent)?;
    }
    Ok(())
}

/// The hidden temporary name a file is written under before its rename to `final_path`.
#[must_use]
pub fn tmp_name(final_path: &Path) -> PathBuf {
    let name = final_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    final_path.with_file_name(format!(".{name}{TMP_SUFFIX}"))
}

/// Writes `bytes` to `path` atomically: hidden temporary file, fsync, rename, directory fsync.
///
/// # Errors
/// The OS error.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let tmp = tmp_name(path);
    let mut file = File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        fsync_path(parent)?;
    }
    Ok(())
}

/// Free bytes available to unprivileged writers on the filesystem holding `path`.
///
/// # Errors
/// The OS error.
pub fn free_bytes(path: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let mut stat: libc::statvfs = unsafe_zeroed_statvfs();
    // SAFETY: `c_path` is a valid NUL-terminated path and `stat` a valid out-pointer.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &raw mut stat) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

fn unsafe_zeroed_statvfs() -> libc::statvfs {
    // SAFETY: `statvfs` is a plain C struct of integers for which all-zero bytes are valid.
    unsafe { core::mem::zeroed() }
}

/// Every file under `root` (recursively) whose name satisfies `keep`.
///
/// # Errors
/// The OS error of an unreadable directory.
pub fn walk(root: &Path, keep: &dyn Fn(&Path) -> bool) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                stack.push(path);
            } else if keep(&path) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_and_windows() {
        assert_eq!(Date::from_days(0).to_string(), "1970-01-01");
        // 2026-03-12T09:20:00Z = 1773307200 (the Polymarket slug example in the brief).
        let w = Window::of_ns(1_773_307_200 * 1_000_000_000 + 299_999_999_999);
        assert_eq!(w.start_s, 1_773_307_200);
        assert_eq!(w.date().to_string(), "2026-03-12");
        assert_eq!(w.hhmm(), "0920");
        assert_eq!(Date::from_days(20_513).to_string(), "2026-03-01");
        assert_eq!(Date::from_days(-1).to_string(), "1969-12-31");
        for days in [-800_000, -1, 0, 59, 60, 20_513, 20_524, 2_000_000] {
            assert_eq!(Date::from_days(days).days_since_epoch(), days);
        }
        assert_eq!(
            Date::parse("2026-11-23"),
            Some(Date {
                year: 2026,
                month: 11,
                day: 23
            })
        );
        assert_eq!(Date::parse("2026-13-01"), None);
    }

    #[test]
    fn tmp_names_are_hidden() {
        let p = Path::new("/a/b/part-7.parquet");
        assert_eq!(tmp_name(p), Path::new("/a/b/.part-7.parquet.tmp"));
    }
}
