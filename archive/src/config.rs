//! The archiver's configuration: the `[archive]` section of `ringbolt.toml`.
//!
//! ```toml
//! [archive]
//! root = "/var/lib/ringbolt/archive"
//! segments = ["ringbolt-market", "ringbolt-trade"]
//! flush_interval_ms = 1000      # durability bound: at most this much is lost on SIGKILL
//! min_free_bytes = 1073741824   # disk guard
//! hlog_interval_s = 10          # latency histogram dump interval
//! health_addr = "127.0.0.1:9103" # GET /healthz (ops contract); unset = no endpoint
//! health_stale_ms = 5000        # unhealthy / no WATCHDOG=1 after the loop stalled this long
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Errors loading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TOML is invalid or lacks the `[archive]` section.
    #[error("invalid config {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// The `[archive]` section.
#[derive(Clone, Debug, Deserialize, PartialEq)]
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
    /// Interval of the latency-histogram dumps (s); default 10.
    #[serde(default = "default_hlog_interval_s")]
    pub hlog_interval_s: u64,
    /// Where `.hlog` files go; default `<root>/_ringbolt/hlog`.
    #[serde(default)]
    pub hlog_dir: Option<PathBuf>,
    /// Sleep between empty polls (µs); default 200.
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
}

fn default_flush_interval_ms() -> u64 {
    1000
}
fn default_min_free_bytes() -> u64 {
    1 << 30
}
fn default_hlog_interval_s() -> u64 {
    10
}
fn default_idle_sleep_us() -> u64 {
    200
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

#[derive(Deserialize)]
struct File {
    archive: Option<ArchiveConfig>,
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
            idle_sleep_us: default_idle_sleep_us(),
            open_timeout_ms: default_open_timeout_ms(),
            zstd_level: default_zstd_level(),
            health_addr: None,
            health_stale_ms: default_health_stale_ms(),
        }
    }

    /// Parses the `[archive]` section of a TOML document (other sections are ignored).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`].
    pub fn from_toml(text: &str, path: &Path) -> Result<ArchiveConfig, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        let file: File = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let config = file
            .archive
            .ok_or_else(|| invalid("missing [archive] section".to_owned()))?;
        if config.segments.is_empty() {
            return Err(invalid("[archive] segments is empty".to_owned()));
        }
        if config.flush_interval_ms == 0 || config.flush_interval_ms > 60_000 {
            return Err(invalid(format!(
                "flush_interval_ms must be 1..=60000, got {}",
                config.flush_interval_ms
            )));
        }
        if !(1..=22).contains(&config.zstd_level) {
            return Err(invalid(format!(
                "zstd_level must be 1..=22, got {}",
                config.zstd_level
            )));
        }
        if config.health_stale_ms == 0 || config.health_stale_ms > 600_000 {
            return Err(invalid(format!(
                "health_stale_ms must be 1..=600000, got {}",
                config.health_stale_ms
            )));
        }
        if let Some(addr) = config.health_addr
            && !addr.ip().is_loopback()
        {
            return Err(invalid(format!(
                "health_addr must be a loopback address (ops contract), got {addr}"
            )));
        }
        Ok(config)
    }

    /// Loads the configuration from a TOML file.
    ///
    /// # Errors
    /// [`ConfigError`].
    pub fn load(path: &Path) -> Result<ArchiveConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// The directory of the `.hlog` dumps.
    #[must_use]
    pub fn hlog_dir(&self) -> PathBuf {
        self.hlog_dir
            .clone()
            .unwrap_or_else(|| self.root.join(crate::layout::STATE_DIR).join("hlog"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("ringbolt.example.toml");
        let c = ArchiveConfig::load(&path).unwrap();
        assert_eq!(c.segments.len(), 2);
        assert_eq!(c.min_free_bytes, 1 << 30);
        assert_eq!(
            c.health_addr,
            Some(SocketAddr::from(([127, 0, 0, 1], 9103)))
        );
        assert_eq!(c.health_stale_ms, 5000);
    }

    /// The config the AMI ships (`/etc/ringbolt/ringbolt.toml`) must load: `[archive]` is
    /// `deny_unknown_fields`, and its `health_addr` is the ops contract's port 9103.
    #[test]
    fn the_shipped_ami_config_parses_with_the_contract_health_addr() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ami/config/ringbolt.toml");
        let c = ArchiveConfig::load(&path).unwrap();
        assert_eq!(
            c.health_addr,
            Some(SocketAddr::from(([127, 0, 0, 1], 9103)))
        );
        assert!(c.root.is_absolute(), "{}", c.root.display());
        assert!(!c.segments.is_empty());
    }

    #[test]
    fn parses_defaults_and_rejects_bad_values() {
        let p = Path::new("ringbolt.toml");
        let c = ArchiveConfig::from_toml(
            "[bus]\nx = 1\n[archive]\nroot = \"/tmp/a\"\nsegments = [\"s\"]\n",
            p,
        )
        .unwrap();
        assert_eq!(c.flush_interval_ms, 1000);
        assert_eq!(c.segments, vec!["s".to_owned()]);
        assert!(ArchiveConfig::from_toml("[archive]\nroot = \"/a\"\nsegments = []\n", p).is_err());
        assert!(ArchiveConfig::from_toml("x = 1\n", p).is_err());
        assert!(
            ArchiveConfig::from_toml(
                "[archive]\nroot = \"/a\"\nsegments = [\"s\"]\nflush_interval_ms = 0\n",
                p
            )
            .is_err()
        );
        assert!(
            ArchiveConfig::from_toml(
                "[archive]\nroot = \"/a\"\nsegments = [\"s\"]\nbogus = 1\n",
                p
            )
            .is_err()
        );
        let c = ArchiveConfig::from_toml(
            "[archive]\nroot = \"/a\"\nsegments = [\"s\"]\nhealth_addr = \"127.0.0.1:9103\"\nhealth_stale_ms = 250\n",
            p,
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
                ArchiveConfig::from_toml(
                    &format!("[archive]\nroot = \"/a\"\nsegments = [\"s\"]\n{bad}\n"),
                    p
                )
                .is_err(),
                "{bad}"
            );
        }
    }
}
