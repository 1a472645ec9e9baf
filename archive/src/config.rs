//! The archiver's configuration: the `[archive]` section of `ringbolt.toml`.
//!
//! ```toml
//! [archive]
//! root = "/var/lib/ringbolt/archive"
//! segments = ["ringbolt-market", "ringbolt-trade"]
//! flush_interval_ms = 1000      # durability bound: at most this much is lost on SIGKILL
//! min_free_bytes = 1073741824   # disk guard
//! hlog_interval_s = 5           # latency histogram (.hlog) dump interval
//! metrics_addr = "127.0.0.1:9113" # GET /metrics (ringbolt_stage_latency_ns); unset = none
//! health_addr = "127.0.0.1:9103" # GET /healthz (ops contract); unset = no endpoint
//! health_stale_ms = 5000        # unhealthy / no WATCHDOG=1 after the loop stalled this long
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The `[archive]` section.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ArchiveConfig {
    /// Root directory of the archive.
    pub root: PathBuf,
    /// Bus segments to archive (every ring of each).
    pub segments: Vec<String>,
    /// Records are durable at most this long after they were read (ms); default 1000.
    #[serde(default = "default_flush_interval_ms")]
    pub flush_interval_ms: u64,
    /// Refuse to start / stop writing when the root's filesystem has less free space (bytes);
    /// default 1 GiB.
    #[serde(default = "default_min_free_bytes")]
    pub min_free_bytes: u64,
    /// Interval of the latency-histogram dumps (s); default 5.
    #[serde(default = "default_hlog_interval_s")]
    pub hlog_interval_s: u64,
    /// Where `.hlog` files go (`archive-<UTC start>.hlog`); default `<root>/_ringbolt/hlog`.
    #[serde(default)]
    pub hlog_dir: Option<PathBuf>,
    /// Start a new `.hlog` file past this size (bytes); default 64 MiB.
    #[serde(default = "default_hlog_rotate_bytes")]
    pub hlog_rotate_bytes: u64,
    /// Start a new `.hlog` file past this age (s); default 3600.
    #[serde(default = "default_hlog_rotate_age_s")]
    pub hlog_rotate_age_s: u64,
    /// Loopback address of `GET /metrics` (the stage latencies); unset = no endpoint.
    #[serde(default)]
    pub metrics_addr: Option<SocketAddr>,
    /// Longest sleep on the segments' doorbells when every ring is empty (µs); the archiver
    /// wakes as soon as a producer publishes, so this only bounds how late an idle archiver
    /// looks at its stop flag and beats its liveness; default 50000.
    #[serde(default = "default_idle_sleep_us")]
    pub idle_sleep_us: u64,
    /// How long to wait for a segment to appear at start-up (ms); default 10000.
    #[serde(default = "default_open_timeout_ms")]
    pub open_timeout_ms: u64,
    /// zstd level of the Parquet pages; default 1.
    #[serde(default = "default_zstd_level")]
    pub zstd_level: i32,
    /// Loopback address of `GET /healthz` (the ops contract, docs/runbook.md: `127.0.0.1:9103`);
    /// unset = no endpoint.
    #[serde(default)]
    pub health_addr: Option<SocketAddr>,
    /// The process reports unhealthy (503, and systemd's `WATCHDOG=1` stops) once the run loop
    /// made no progress for this long (ms); default 5000 (the units' `WatchdogSec=10s`).
    #[serde(default = "default_health_stale_ms")]
    pub health_stale_ms: u64,
    /// `[archive.ship]`: shipping closed partitions to an S3-compatible bucket
    /// (`ringbolt archive ship`); unset = the archive stays local.
    #[serde(default)]
    pub ship: Option<crate::ship::ShipConfig>,
}

fn default_flush_interval_ms() -> u64 {
    1000
}
fn default_min_free_bytes() -> u64 {
    1 << 30
}
fn default_hlog_interval_s() -> u64 {
    ringbolt_telemetry::DEFAULT_INTERVAL_S
}
fn default_hlog_rotate_bytes() -> u64 {
    ringbolt_telemetry::DEFAULT_ROTATE_BYTES
}
fn default_hlog_rotate_age_s() -> u64 {
    ringbolt_telemetry::DEFAULT_ROTATE_AGE_S
}
fn default_idle_sleep_us() -> u64 {
    50_000
}
fn default_open_timeout_ms() -> u64 {
    10_000
}
fn default_zstd_level() -> i32 {
    1
}
fn default_health_stale_ms() -> u64 {
    5000
}

impl ArchiveConfig {
    /// A configuration with defaults for everything but the root and segments.
    #[must_use]
    pub fn new(root: impl Into<PathBuf>, segments: Vec<String>) -> ArchiveConfig {
        ArchiveConfig {
            root: root.into(),
            segments,
            flush_interval_ms: default_flush_interval_ms(),
            min_free_bytes: default_min_free_bytes(),
            hlog_interval_s: default_hlog_interval_s(),
            hlog_dir: None,
            hlog_rotate_bytes: default_hlog_rotate_bytes(),
            hlog_rotate_age_s: default_hlog_rotate_age_s(),
            metrics_addr: None,
            idle_sleep_us: default_idle_sleep_us(),
            open_timeout_ms: default_open_timeout_ms(),
            zstd_level: default_zstd_level(),
            health_addr: None,
            health_stale_ms: default_health_stale_ms(),
            ship: None,
        }
    }

    /// Checks the values (the file itself is loaded by `ringbolt-config`, which refuses unknown
    /// keys); the error is a sentence naming the key.
    ///
    /// # Errors
    /// An empty segment list or an out-of-range value.
    pub fn validate(&self) -> Result<(), String> {
        if self.segments.is_empty() {
            return Err("[archive] segments is empty".to_owned());
        }
        if self.flush_interval_ms == 0 || self.flush_interval_ms > 60_000 {
            return Err(format!(
                "[archive] flush_interval_ms must be 1..=60000, got {}",
                self.flush_interval_ms
            ));
        }
        if !(1..=22).contains(&self.zstd_level) {
            return Err(format!(
                "[archive] zstd_level must be 1..=22, got {}",
                self.zstd_level
            ));
        }
        if self.health_stale_ms == 0 || self.health_stale_ms > 600_000 {
            return Err(format!(
                "[archive] health_stale_ms must be 1..=600000, got {}",
                self.health_stale_ms
            ));
        }
        for (key, addr) in [
            ("health_addr", self.health_addr),
            ("metrics_addr", self.metrics_addr),
        ] {
            if let Some(addr) = addr
                && !addr.ip().is_loopback()
            {
                return Err(format!(
                    "[archive] {key} must be a loopback address (ops contract), got {addr}"
                ));
            }
        }
        Ok(())
    }

    /// The directory of the `.hlog` dumps.
    #[must_use]
    pub fn hlog_dir(&self) -> PathBuf {
        self.hlog_dir
            .clone()
            .unwrap_or_else(|| self.root.join(crate::layout::STATE_DIR).join("hlog"))
    }

    /// The `.hlog` dump settings of the `hlog_*` keys.
    #[must_use]
    pub fn hlog_settings(&self) -> ringbolt_telemetry::HlogSettings {
        ringbolt_telemetry::HlogSettings::from_keys(
            Some(&self.hlog_dir()),
            self.hlog_interval_s,
            self.hlog_rotate_bytes,
            self.hlog_rotate_age_s,
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(text: &str) -> Result<ArchiveConfig, String> {
        let c: ArchiveConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn parses_defaults_and_rejects_bad_values() {
        let c = parse("root = \"/tmp/a\"\nsegments = [\"s\"]\n").unwrap();
        assert_eq!(c, ArchiveConfig::new("/tmp/a", vec!["s".to_owned()]));
        assert_eq!(c.flush_interval_ms, 1000);
        assert!(parse("root = \"/a\"\nsegments = []\n").is_err());
        assert!(parse("root = \"/a\"\nsegments = [\"s\"]\nflush_interval_ms = 0\n").is_err());
        assert!(parse("root = \"/a\"\nsegments = [\"s\"]\nbogus = 1\n").is_err());
        let c = parse(
            "root = \"/a\"\nsegments = [\"s\"]\nhealth_addr = \"127.0.0.1:9103\"\nhealth_stale_ms = 250\n",
        )
        .unwrap();
        assert_eq!(
            c.health_addr,
            Some(SocketAddr::from(([127, 0, 0, 1], 9103)))
        );
        assert_eq!(c.health_stale_ms, 250);
        for bad in [
            "health_addr = \"0.0.0.0:9103\"",
            "health_addr = \"localhost\"",
            "health_stale_ms = 0",
        ] {
            assert!(
                parse(&format!("root = \"/a\"\nsegments = [\"s\"]\n{bad}\n")).is_err(),
                "{bad}"
            );
        }
    }
}
