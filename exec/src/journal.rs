//! The money-control journal: spend reservations and open orders that survive a crash.
//!
//! An append-only file of 32-byte records, each with a CRC-32 over its payload:
//!
//! ```text
//! 0      1        4        8          16         24         32
//! | kind | 0 0 0  | crc32  |    a     |    b     |    c     |
//! kind 1 RESERVE  a = window index (start_s / 300), b = window reserved (1e-6 pUSD),
//!                 c = day reserved (1e-6 pUSD; the day is the window's UTC day)
//! kind 2 OPEN     a = orders open now (admitted, not yet terminal)
//! ```
//!
//! * **Spend** is reserved ahead in chunks ([`crate::risk::RiskGate`]): a RESERVE record is
//!   written and `fdatasync`ed *before* the order that needs it is sent, so after a crash the
//!   reloaded usage is at least what was really spent (at most one chunk more). Only orders that
//!   cross a chunk boundary pay the fsync.
//! * **Open orders**: the count is appended with one `write` per change (no fsync): it survives a
//!   process crash (`kill -9`; the page cache keeps it). The venue's open orders
//!   (reconciliation at start-up) replace it when they are known; until then the journal's count
//!   binds.
//! * A short or corrupt last record (torn write) is ignored and counted
//!   ([`JournalSkips::torn_tail`]); a corrupt record elsewhere is skipped and counted
//!   ([`JournalSkips::bad_checksum`]).
//! * At start-up the journal is compacted: the live state is written to a temporary file,
//!   fsynced and renamed over the journal (then the directory is fsynced).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

const REC: usize = 32;
const RESERVE: u8 = 1;
const OPEN: u8 = 2;

/// One journal record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// Spend reserved so far in a window and its day.
    Reserve {
        /// Window index (`start_s / 300`).
        window: u64,
        /// Reserved in the window, 1e-6 pUSD.
        window_micros: u64,
        /// Reserved in the window's UTC day, 1e-6 pUSD.
        day_micros: u64,
    },
    /// Orders open now.
    Open(u64),
}

impl Entry {
    fn encode(self) -> [u8; REC] {
        let (kind, a, b, c) = match self {
            Entry::Reserve {
                window,
                window_micros,
                day_micros,
            } => (RESERVE, window, window_micros, day_micros),
            Entry::Open(n) => (OPEN, n, 0, 0),
        };
        let mut r = [0u8; REC];
        r[0] = kind;
        r[8..16].copy_from_slice(&a.to_le_bytes());
        r[16..24].copy_from_slice(&b.to_le_bytes());
        r[24..32].copy_from_slice(&c.to_le_bytes());
        let crc = crc(&r);
        r[4..8].copy_from_slice(&crc.to_le_bytes());
        r
    }

    fn decode(r: &[u8]) -> Option<Entry> {
        let want = u32::from_le_bytes(r[4..8].try_into().ok()?);
        if crc(r) != want || r[1..4] != [0; 3] {
            return None;
        }
        let word = |i: usize| u64::from_le_bytes(r[i..i + 8].try_into().unwrap_or([0; 8]));
        match r[0] {
            RESERVE => Some(Entry::Reserve {
                window: word(8),
                window_micros: word(16),
                day_micros: word(24),
            }),
            OPEN => Some(Entry::Open(word(8))),
            _ => None,
        }
    }
}

fn crc(r: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&r[..4]);
    h.update(&r[8..REC]);
    h.finalize()
}

/// Records skipped while loading.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct JournalSkips {
    /// A short or corrupt last record (a write torn by the crash).
    pub torn_tail: u64,
    /// A corrupt record before the end.
    pub bad_checksum: u64,
}

/// What the journal says at start-up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The latest reservation (window index, window micros, day micros), if any.
    pub last_reserve: Option<(u64, u64, u64)>,
    /// The last open-order count.
    pub open: u64,
    /// Skipped records.
    pub skips: JournalSkips,
}

/// Replays journal bytes.
#[must_use]
pub fn recover(bytes: &[u8]) -> Recovered {
    let mut out = Recovered::default();
    let n = bytes.len() / REC;
    for (i, r) in bytes.chunks(REC).enumerate() {
        let entry = (r.len() == REC).then(|| Entry::decode(r)).flatten();
        match entry {
            Some(Entry::Reserve {
                window,
                window_micros,
                day_micros,
            }) => out.last_reserve = Some((window, window_micros, day_micros)),
            Some(Entry::Open(n)) => out.open = n,
            None if i + 1 >= n => out.skips.torn_tail += 1,
            None => out.skips.bad_checksum += 1,
        }
    }
    out
}

/// Journal errors.
#[derive(Debug, thiserror::Error)]
#[error("journal {path}: {source}")]
pub struct JournalError {
    /// Path.
    pub path: String,
    /// Cause.
    #[source]
    pub source: io::Error,
}

/// The open journal (append mode).
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    /// Appends that failed (the gate refuses orders after a failed reservation).
    pub write_errors: u64,
}

impl Journal {
    /// Opens (creating) the journal at `path`, recovers its state and compacts it.
    pub fn open(path: &Path) -> Result<(Journal, Recovered), JournalError> {
        let err = |source| JournalError {
            path: path.display().to_string(),
            source,
        };
        let mut bytes = Vec::new();
        match File::open(path) {
            Ok(mut f) => {
                f.read_to_end(&mut bytes).map_err(err)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(e)),
        }
        let rec = recover(&bytes);
        compact(path, &rec).map_err(err)?;
        let file = OpenOptions::new().append(true).open(path).map_err(err)?;
        Ok((
            Journal {
                path: path.to_owned(),
                file,
                write_errors: 0,
            },
            rec,
        ))
    }

    /// The journal's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry; `durable` also `fdatasync`s it.
    pub fn append(&mut self, e: Entry, durable: bool) -> io::Result<()> {
        let r = self.file.write_all(&e.encode()).and_then(|()| {
            if durable {
                self.file.sync_data()
            } else {
                Ok(())
            }
        });
        if r.is_err() {
            self.write_errors += 1;
        }
        r
    }
}

/// Writes the live state to `path.tmp`, fsyncs, renames over `path`, fsyncs the directory.
fn compact(path: &Path, rec: &Recovered) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        if let Some((window, window_micros, day_micros)) = rec.last_reserve {
            f.write_all(
                &Entry::Reserve {
                    window,
                    window_micros,
                    day_micros,
                }
                .encode(),
            )?;
        }
        f.write_all(&Entry::Open(rec.open).encode())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}
