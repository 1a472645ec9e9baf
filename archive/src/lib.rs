//! ringbolt's archiver: a separate process that consumes bus segments with a sleeping wait
//! strategy and writes every record to Hive-partitioned Parquet, crash-safely.
//!
//! - [`tables`]: the tables, their Arrow schemas, records → Arrow batches;
//! - [`writer`]: Parquet writer settings (zstd, dictionaries, delta encoding, statistics);
//! - [`layout`]: partition paths, windows, durable file operations, the disk guard;
//! - [`archiver`]: the consume → batch → commit loop, its crash recovery and the `gaps` table;
//! - [`reader`]: archived rows back into bus records in bus order (replay, training export);
//! - [`report`]: the offline summary of an archive (row counts, bytes, coverage, gaps);
//! - [`synth`]: a realistic synthetic producer used by the tests and the benchmark.
//!
//! The archiver never writes to the bus and never slows a producer: the bus has no back-pressure,
//! an archiver that falls behind is lapped and records the exact loss in `gaps`.

pub mod archiver;
pub mod config;
pub mod layout;
mod pages;
pub mod reader;
pub mod recorded;
pub mod report;
pub mod ship;
pub mod store;
pub mod synth;
pub mod tables;
pub mod writer;

use std::path::{Path, PathBuf};

pub use archiver::{Archiver, FlushStats, Progress};
pub use config::ArchiveConfig;

/// Errors of the archiver.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// A filesystem operation failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Free space fell under the configured limit.
    #[error(
        "disk guard: only {free_bytes} bytes free under {root}, below the configured \
         min_free_bytes = {min_free_bytes}; refusing to write (free space or lower the limit)"
    )]
    DiskFull {
        /// The archive root.
        root: PathBuf,
        /// Free bytes found.
        free_bytes: u64,
        /// The configured limit.
        min_free_bytes: u64,
    },
    /// Parquet encoding failed.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Arrow batch construction failed.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// The bus refused an operation.
    #[error("bus: {0}")]
    Bus(#[from] ringbolt_bus::BusError),
    /// The commit state is unreadable.
    #[error("archive state {path} is corrupt: {message}")]
    State {
        /// The state file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A file is not what this build reads (schema version, missing column, wrong type).
    #[error("archive file {path}: {message}")]
    Format {
        /// The file or root.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The object store refused or failed a request (no credentials in the message).
    #[error("object store: {message}")]
    Store {
        /// What failed, with the object key.
        message: String,
    },
    /// Latency telemetry failed.
    #[error("telemetry: {0}")]
    Telemetry(#[from] ringbolt_telemetry::TelemetryError),
}

impl ArchiveError {
    /// Wraps an I/O error with its path.
    pub fn io(path: &Path, source: std::io::Error) -> ArchiveError {
        ArchiveError::Io {
            path: path.to_owned(),
            source,
        }
    }
}
