//! Shipping closed, compacted partitions to an S3-compatible bucket, exactly once, and the local
//! retention that deletes only what the bucket confirmed (`ringbolt archive ship`).
//!
//! A partition (`<table>/date=…/venue=…/window=…`) is shipped once its window ended more than
//! `closed_grace_s` ago and the archiver's commit state (`_ringbolt/state.json`) no longer lists
//! it as uncompacted or mid-compaction: its files will not change again.
//!
//! Protocol, per file of such a partition (in path order):
//! 1. skip it when the local journal `_ringbolt/shipped.json` already holds it;
//! 2. read it, compute size and SHA-256;
//! 3. `HEAD` the object: when it exists with that size and checksum metadata (a previous run
//!    uploaded it and died before its journal write), count it as already shipped;
//! 4. else one atomic `PUT` (the object appears whole or not at all) with the checksum as object
//!    metadata, then `HEAD` again: only a size and checksum equal to the local file confirm it;
//! 5. once every file of the partition is confirmed: the partition's manifest object
//!    `_ringbolt/shipped/<partition>/manifest.json` (files, sizes, checksums), then the journal
//!    (written atomically) records the partition.
//!
//! A `kill -9` anywhere leaves either no object or a complete one, and the journal behind the
//! bucket, never ahead: a restart re-checks with `HEAD` and uploads only what is missing, so
//! every file is in the bucket exactly once with the right bytes. The recorded decision configs
//! (`_ringbolt/config/`) are shipped too (replay needs them); the commit state, `.hlog` dumps and
//! the journal itself stay local.
//!
//! Retention (`delete_local_after_s`): files of journaled partitions whose window ended more than
//! that long ago are deleted locally, each only after a fresh `HEAD` shows the object with the
//! journaled size and checksum.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ArchiveError;
use crate::archiver::State;
use crate::layout::{self, STATE_DIR};
use crate::report::{PartFile, list_parts};
use crate::store::{Bucket, Digested};

/// Key prefix (under the bucket prefix) of the partition manifests.
pub const MANIFEST_DIR: &str = "_ringbolt/shipped";
/// The local journal of shipped partitions, relative to the archive root.
pub const JOURNAL: &str = "_ringbolt/shipped.json";
/// Test hook: abort the process (as `kill -9` would) right after this many `PUT`s complete,
/// before their confirmation is journaled.
pub const CRASH_AFTER_PUTS_ENV: &str = "RINGBOLT_SHIP_CRASH_AFTER_PUTS";

/// `[archive.ship]`: where and when closed partitions are shipped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShipConfig {
    /// `s3://bucket/prefix` (endpoint and credentials from the AWS environment/profile chain).
    pub url: String,
    /// A partition is closed this long after its window ended (late flushes, compaction).
    #[serde(default = "default_closed_grace_s")]
    pub closed_grace_s: u64,
    /// Delete local copies of confirmed partitions whose window ended this long ago; absent =
    /// keep everything locally.
    #[serde(default)]
    pub delete_local_after_s: Option<u64>,
    /// Seconds between shipping passes of `ringbolt archive ship --follow`.
    #[serde(default = "default_interval_s")]
    pub interval_s: u64,
}

impl ShipConfig {
    /// The defaults for `url`: 600 s grace, no local deletion, 60 s between passes.
    #[must_use]
    pub fn new(url: &str) -> ShipConfig {
        ShipConfig {
            url: url.to_owned(),
            closed_grace_s: default_closed_grace_s(),
            delete_local_after_s: None,
            interval_s: default_interval_s(),
        }
    }
}

fn default_closed_grace_s() -> u64 {
    600
}

fn default_interval_s() -> u64 {
    60
}

/// The local journal: partitions the bucket confirmed, with their files.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// The bucket URL the journal is about (a journal of another URL is ignored).
    pub url: String,
    /// Partition directory (relative) → file name → size and checksum.
    pub partitions: BTreeMap<String, BTreeMap<String, Digested>>,
    /// Partitions whose local files retention deleted.
    #[serde(default)]
    pub deleted_local: BTreeSet<String>,
    /// Other shipped files (recorded configs), relative path → size and checksum.
    #[serde(default)]
    pub extra: BTreeMap<String, Digested>,
}

/// What one shipping pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ShipStats {
    /// Partitions newly confirmed.
    pub partitions_shipped: u64,
    /// Files uploaded (one `PUT` each).
    pub files_uploaded: u64,
    /// Files found already in the bucket with the right size and checksum (a crashed run's).
    pub files_already_present: u64,
    /// Bytes uploaded.
    pub bytes_uploaded: u64,
    /// Partitions not shipped yet: window not closed, or not compacted.
    pub partitions_open: u64,
    /// Partitions already in the journal.
    pub partitions_in_journal: u64,
    /// Local files deleted by retention (bucket confirmed).
    pub local_files_deleted: u64,
    /// Local files retention kept because the bucket did not confirm them.
    pub retention_refused: u64,
}

/// One partition directory and its files.
struct Partition {
    rel: String,
    window_end_s: i64,
    files: Vec<PartFile>,
}

fn partitions(root: &Path) -> Result<Vec<Partition>, ArchiveError> {
    let mut by_dir: BTreeMap<String, Partition> = BTreeMap::new();
    for part in list_parts(root)? {
        let rel = format!(
            "{}/date={}/venue={}/window={}",
            part.table, part.date, part.venue, part.window
        );
        let start = window_start(&part.date, &part.window);
        let entry = by_dir.entry(rel.clone()).or_insert(Partition {
            rel,
            window_end_s: start.map_or(i64::MAX, |s| s + crate::layout::WINDOW_S),
            files: Vec::new(),
        });
        entry.files.push(part);
    }
    let mut out: Vec<Partition> = by_dir.into_values().collect();
    for p in &mut out {
        p.files.sort_by(|a, b| a.path.cmp(&b.path));
    }
    Ok(out)
}

/// Start (Unix s) of the window `date` / `HHMM`.
fn window_start(date: &str, hhmm: &str) -> Option<i64> {
    let days = layout::Date::parse(date)?.days_since_epoch();
    let h: i64 = hhmm.get(..2)?.parse().ok()?;
    let m: i64 = hhmm.get(2..4)?.parse().ok()?;
    Some(days * 86_400 + h * 3600 + m * 60)
}

fn load_json<T: Default + for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ArchiveError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| ArchiveError::State {
            path: path.to_owned(),
            message: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(ArchiveError::io(path, e)),
    }
}

/// The shipper of one archive root to one bucket.
#[derive(Debug)]
pub struct Shipper {
    root: PathBuf,
    config: ShipConfig,
    bucket: Bucket,
    journal: Journal,
    puts: u64,
    crash_after_puts: Option<u64>,
    final_run: bool,
    /// `_ringbolt/ship.lock`, locked while the shipper lives: one shipper per archive root.
    _lock: std::fs::File,
}

impl Shipper {
    /// Opens the bucket and loads the journal.
    ///
    /// # Errors
    /// A bad URL, an unreadable journal, another shipper running on the root.
    pub fn open(root: &Path, config: ShipConfig) -> Result<Shipper, ArchiveError> {
        let lock_path = root.join(STATE_DIR).join("ship.lock");
        let lock =
            std::fs::File::create(&lock_path).map_err(|e| ArchiveError::io(&lock_path, e))?;
        if let Err(e) = lock.try_lock() {
            return Err(ArchiveError::Store {
                message: format!(
                    "{}: another shipper holds the lock ({e})",
                    lock_path.display()
                ),
            });
        }
        let bucket = Bucket::open(&config.url)?;
        let mut journal: Journal = load_json(&root.join(JOURNAL))?;
        if journal.url != config.url {
            journal = Journal {
                url: config.url.clone(),
                ..Journal::default()
            };
        }
        Ok(Shipper {
            root: root.to_owned(),
            config,
            bucket,
            journal,
            puts: 0,
            crash_after_puts: std::env::var(CRASH_AFTER_PUTS_ENV)
                .ok()
                .and_then(|v| v.parse().ok()),
            final_run: false,
            _lock: lock,
        })
    }

    /// Declares the archiver stopped for good: every partition is closed and will not change
    /// (open windows and uncompacted partitions are shipped as they are).
    pub fn set_final(&mut self, final_run: bool) {
        self.final_run = final_run;
    }

    /// The journal (what the bucket confirmed).
    #[must_use]
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// One pass: ships every closed, compacted partition not yet confirmed, then applies the
    /// retention policy. `now_s` is the current Unix time.
    ///
    /// # Errors
    /// Store and I/O errors (the pass stops; the next one resumes).
    pub fn ship_once(&mut self, now_s: i64) -> Result<ShipStats, ArchiveError> {
        let state: State = load_json(&self.root.join(STATE_DIR).join("state.json"))?;
        let mut busy: BTreeSet<String> = state.uncompacted.clone();
        if let Some(c) = &state.compaction {
            busy.insert(c.dir.clone());
        }
        let mut stats = ShipStats::default();
        let all = partitions(&self.root)?;
        for p in &all {
            if self.journal.partitions.contains_key(&p.rel) {
                stats.partitions_in_journal += 1;
                continue;
            }
            let closed = p.window_end_s + self.config.closed_grace_s as i64 <= now_s;
            if !self.final_run && (!closed || busy.contains(&p.rel)) {
                stats.partitions_open += 1;
                continue;
            }
            self.ship_partition(p, &mut stats)?;
        }
        self.ship_configs(&mut stats)?;
        if let Some(after_s) = self.config.delete_local_after_s {
            self.retain(&all, now_s - after_s as i64, &mut stats)?;
        }
        Ok(stats)
    }

    /// Uploads (or finds) one file and confirms it: the object's size and checksum equal the
    /// local file's.
    fn ship_file(
        &mut self,
        rel: &str,
        path: &Path,
        stats: &mut ShipStats,
    ) -> Result<Digested, ArchiveError> {
        let bytes = std::fs::read(path).map_err(|e| ArchiveError::io(path, e))?;
        let digest = Digested::of(&bytes);
        if self.bucket.stat(rel)?.as_ref() == Some(&digest) {
            stats.files_already_present += 1;
            return Ok(digest);
        }
        self.bucket.put(rel, bytes, &digest)?;
        self.puts += 1;
        if self.crash_after_puts == Some(self.puts) {
            // The test hook of the module docs: die like kill -9, nothing flushed or journaled.
            std::process::abort();
        }
        if self.bucket.stat(rel)?.as_ref() != Some(&digest) {
            return Err(ArchiveError::Store {
                message: format!("{rel}: the bucket does not confirm the uploaded size/checksum"),
            });
        }
        stats.files_uploaded += 1;
        stats.bytes_uploaded += digest.size;
        Ok(digest)
    }

    fn ship_partition(&mut self, p: &Partition, stats: &mut ShipStats) -> Result<(), ArchiveError> {
        let mut files = BTreeMap::new();
        for f in &p.files {
            let name = f
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let rel = format!("{}/{name}", p.rel);
            let digest = self.ship_file(&rel, &f.path, stats)?;
            files.insert(name, digest);
        }
        let manifest = serde_json::json!({ "partition": p.rel, "files": files });
        let text = manifest.to_string().into_bytes();
        let digest = Digested::of(&text);
        self.bucket.put(
            &format!("{MANIFEST_DIR}/{}/manifest.json", p.rel),
            text,
            &digest,
        )?;
        self.journal.partitions.insert(p.rel.clone(), files);
        self.save_journal()?;
        stats.partitions_shipped += 1;
        tracing::info!(partition = %p.rel, files = p.files.len(), "partition shipped");
        Ok(())
    }

    /// Ships the recorded decision configs (`_ringbolt/config/*`) that changed.
    fn ship_configs(&mut self, stats: &mut ShipStats) -> Result<(), ArchiveError> {
        let dir = crate::recorded::config_dir(&self.root);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(());
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        for name in names {
            let rel = format!("{STATE_DIR}/config/{name}");
            let bytes = std::fs::read(dir.join(&name)).map_err(|e| ArchiveError::io(&dir, e))?;
            if self.journal.extra.get(&rel) == Some(&Digested::of(&bytes)) {
                continue;
            }
            let digest = self.ship_file(&rel, &dir.join(&name), stats)?;
            self.journal.extra.insert(rel, digest);
            self.save_journal()?;
        }
        Ok(())
    }

    /// Deletes local files of journaled partitions whose window ended by `cutoff_s`, each only
    /// when the bucket still holds it with the journaled size and checksum.
    fn retain(
        &mut self,
        all: &[Partition],
        cutoff_s: i64,
        stats: &mut ShipStats,
    ) -> Result<(), ArchiveError> {
        for p in all.iter().filter(|p| p.window_end_s <= cutoff_s) {
            let Some(files) = self.journal.partitions.get(&p.rel) else {
                continue;
            };
            let mut all_deleted = true;
            for f in &p.files {
                let name = f.path.file_name().map(|n| n.to_string_lossy().into_owned());
                let journaled = name.as_ref().and_then(|n| files.get(n));
                let rel = format!("{}/{}", p.rel, name.unwrap_or_default());
                let confirmed =
                    journaled.is_some() && self.bucket.stat(&rel)?.as_ref() == journaled;
                if !confirmed {
                    stats.retention_refused += 1;
                    all_deleted = false;
                    continue;
                }
                std::fs::remove_file(&f.path).map_err(|e| ArchiveError::io(&f.path, e))?;
                stats.local_files_deleted += 1;
            }
            if all_deleted {
                let dir = self.root.join(&p.rel);
                let _ = std::fs::remove_dir(&dir);
                self.journal.deleted_local.insert(p.rel.clone());
            }
        }
        self.save_journal()
    }

    fn save_journal(&self) -> Result<(), ArchiveError> {
        let path = self.root.join(JOURNAL);
        let text = serde_json::to_vec_pretty(&self.journal).map_err(|e| ArchiveError::State {
            path: path.clone(),
            message: e.to_string(),
        })?;
        layout::write_atomic(&path, &text).map_err(|e| ArchiveError::io(&path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_starts_parse() {
        assert_eq!(window_start("1970-01-02", "0005"), Some(86_400 + 300));
        assert_eq!(window_start("2026-03-12", "2355"), Some(1_773_359_700));
        assert_eq!(window_start("bad", "0005"), None);
        let toml = "url = \"s3://b/p\"\nclosed_grace_s = 5\n";
        let c: ShipConfig = toml::from_str(toml).unwrap();
        assert_eq!((c.closed_grace_s, c.delete_local_after_s), (5, None));
        let bad = "url = \"s3://b\"\nretention = 3\n";
        let e = toml::from_str::<ShipConfig>(bad).unwrap_err().to_string();
        assert!(e.contains("retention"), "{e}");
    }
}
