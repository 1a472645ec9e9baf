//! ringbolt's latency telemetry: HdrHistograms per pipeline stage in every process, recorded
//! without allocation on the hot path, dumped every N seconds as standard HdrHistogram interval
//! logs (`.hlog`, V2 compressed encoding, one tag per stage) that `HistogramLogProcessor` and the
//! Python `hdrh` package read, and served as one Prometheus summary family on `/metrics`.
//!
//! Ownership and threads:
//! - each process starts one [`Telemetry`] with its [`stages::StageTable`] (`collector`,
//!   `trade`, `archive`); it owns the dumper thread;
//! - each recording component (a collector ring thread, the trade loop, exec's order client, the
//!   archiver) owns a [`StageRecorder`] from [`Telemetry::recorder`]:
//!   [`StageRecorder::record`] is a bounds-checked counter increment (no allocation, lock or
//!   syscall) and [`StageRecorder::maybe_rotate`], once per loop turn, one relaxed atomic load
//!   until the dumper opens a new interval, then a swap with a pre-allocated spare set handed
//!   over through a bounded channel;
//! - every interval the dumper bumps the epoch, collects the recorders' sets (waiting at most a
//!   short grace period: an idle recorder's set joins the next interval), merges them, appends one
//!   tagged line per stage to `<dir>/<process>-<UTC start>.hlog`, starts a new file when the
//!   current one is too big or too old, and updates the figures [`StageMetrics`] renders.
//!
//! If the dumper falls behind, recorders keep recording into their current set (its interval
//! simply grows); nothing blocks a hot thread.
//!
//! Every process also takes from here the one histogram type ([`LatencyHistogram`]) and its
//! summary ([`Percentiles`]), the names of the reported hops ([`stage`]), and the one clock
//! helper, [`now_ns`] (`CLOCK_REALTIME` ns, the unit of every bus stamp). The clock is the bus's
//! own function re-exported: the bus stamps its headers with it and may depend on no other
//! ringbolt crate, so there is exactly one definition.
//!
//! This crate must stay small: it depends on `hdrhistogram`, `serde`, `thiserror` and the bus
//! (for the clock) only, never on Arrow or Parquet, so every process can use it.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
pub use ringbolt_bus::now_ns;

mod dumper;
mod metrics;
mod recorder;
pub mod report;
pub mod stages;
mod summary;
pub use dumper::{
    DEFAULT_INTERVAL_S, DEFAULT_ROTATE_AGE_S, DEFAULT_ROTATE_BYTES, HlogSettings, Telemetry,
    utc_stamp,
};
pub use metrics::{FAMILY, QUANTILES, StageMetrics, StageSnapshot, render};
pub use recorder::{StageRecorder, StageSet};
pub use stages::{StageId, StageTable};
pub use summary::{LatencyHistogram, Percentiles, latency_histogram, stage};

/// Lowest latency recorded, ns.
pub const LOWEST_NS: u64 = 1;
/// Highest latency recorded, ns (60 s); larger values saturate at this bound.
pub const HIGHEST_NS: u64 = 60_000_000_000;
/// Significant decimal digits kept by every histogram.
pub const SIGNIFICANT_FIGURES: u8 = 3;

/// Errors of the telemetry layer (all on cold paths).
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// Writing the interval log failed.
    #[error("cannot write interval log {path}: {reason}")]
    Write {
        /// The `.hlog` file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// Reading or decoding an interval log failed.
    #[error("cannot read interval log {path}: {reason}")]
    Read {
        /// The `.hlog` file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The dumper thread panicked.
    #[error("the hlog dumper thread panicked")]
    Disconnected,
}

/// Seconds since the Unix epoch of a [`SystemTime`], for reports.
#[must_use]
pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// One decoded interval of an `.hlog` file.
#[derive(Debug)]
pub struct LoggedInterval {
    /// The stage tag (`None` for an untagged line).
    pub tag: Option<String>,
    /// Interval start, seconds since the Unix epoch (absolute: BaseTime/StartTime applied).
    pub start_s: f64,
    /// Interval length, seconds.
    pub duration_s: f64,
    /// The decoded histogram.
    pub histogram: Histogram<u64>,
}

/// Reads every interval of an `.hlog` file (any V2 encoding, compressed or not).
///
/// # Errors
/// [`TelemetryError::Read`] for unreadable files and undecodable lines.
pub fn read_hlog(path: &Path) -> Result<Vec<LoggedInterval>, TelemetryError> {
    use hdrhistogram::serialization::Deserializer;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    let bad = |reason: String| TelemetryError::Read {
        path: path.to_owned(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let mut base_s = 0.0_f64;
    let mut start_s = None;
    let mut out = Vec::new();
    let mut deserializer = Deserializer::new();
    for entry in IntervalLogIterator::new(&bytes) {
        match entry.map_err(|e| bad(format!("{e:?}")))? {
            LogEntry::BaseTime(t) => base_s = t.as_secs_f64(),
            LogEntry::StartTime(t) => start_s = Some(t.as_secs_f64()),
            LogEntry::Interval(ilh) => {
                let decoded = decode_base64(ilh.encoded_histogram())
                    .ok_or_else(|| bad("invalid base64 histogram".to_owned()))?;
                let histogram: Histogram<u64> = deserializer
                    .deserialize(&mut decoded.as_slice())
                    .map_err(|e| bad(format!("{e:?}")))?;
                let offset = if base_s > 0.0 {
                    base_s
                } else {
                    start_s.unwrap_or(0.0)
                };
                out.push(LoggedInterval {
                    tag: ilh.tag().map(|t| t.as_str().to_owned()),
                    start_s: offset + ilh.start_timestamp().as_secs_f64(),
                    duration_s: ilh.duration().as_secs_f64(),
                    histogram,
                });
            }
        }
    }
    Ok(out)
}

/// Standard base64 (RFC 4648, with padding) decoding; `None` on invalid input.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let bytes = text.trim().as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks_exact(4) {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 {
            return None;
        }
        let mut acc = 0u32;
        for &c in &chunk[..4 - pad] {
            acc = (acc << 6) | value(c)?;
        }
        acc <<= 6 * pad as u32;
        let three = [(acc >> 16) as u8, (acc >> 8) as u8, acc as u8];
        out.extend_from_slice(&three[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_standard_vectors() {
        assert_eq!(decode_base64("Zm9vYmFy").as_deref(), Some(&b"foobar"[..]));
        assert_eq!(decode_base64("Zm9vYg==").as_deref(), Some(&b"foob"[..]));
        assert_eq!(decode_base64("Zm9vYmE=").as_deref(), Some(&b"fooba"[..]));
        assert_eq!(decode_base64("Zm9*"), None);
    }

    #[test]
    fn record_saturates_instead_of_failing() {
        let telemetry = Telemetry::start(stages::archive::TABLE, HlogSettings::default()).unwrap();
        let mut recorder = telemetry.recorder();
        recorder.record(stages::archive::BUS_TO_DURABLE, u64::MAX);
        recorder.record(stages::StageId(9), 5); // outside the table: ignored
        let h = recorder.current(stages::archive::BUS_TO_DURABLE).unwrap();
        assert_eq!(h.len(), 1);
        assert!(h.max() >= HIGHEST_NS);
    }
}
