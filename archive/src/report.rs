//! Offline summary of an archive: rows per table/venue/day (from the Parquet footers), bytes on
//! disk, coverage (windows with a heartbeat ÷ 288 per day and role) and gaps (from the `gaps`
//! table), with a progress callback for long scans.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{Array, RecordBatch};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::{FileReader, SerializedFileReader};
use serde::Serialize;

use crate::ArchiveError;
use crate::layout::{self, WINDOWS_PER_DAY};
use crate::tables::Table;

/// One Parquet file of the archive with its partition values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartFile {
    /// Full path.
    pub path: PathBuf,
    /// Table directory name.
    pub table: String,
    /// `date=` value.
    pub date: String,
    /// `venue=` value.
    pub venue: String,
    /// `window=` value.
    pub window: String,
}

/// Every committed Parquet file under `root` (hidden temporary files excluded).
///
/// # Errors
/// I/O errors.
pub fn list_parts(root: &Path) -> Result<Vec<PartFile>, ArchiveError> {
    let files = layout::walk(root, &|p: &Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| !n.starts_with('.') && n.ends_with(".parquet"))
    })
    .map_err(|e| ArchiveError::io(root, e))?;
    let mut out = Vec::new();
    for path in files {
        let Ok(rel) = path.strip_prefix(root) else {
            continue;
        };
        let parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if parts.len() != 5 {
            continue;
        }
        let value = |s: &str, key: &str| s.strip_prefix(key).map(str::to_owned);
        let (Some(date), Some(venue), Some(window)) = (
            value(&parts[1], "date="),
            value(&parts[2], "venue="),
            value(&parts[3], "window="),
        ) else {
            continue;
        };
        out.push(PartFile {
            path,
            table: parts[0].clone(),
            date,
            venue,
            window,
        });
    }
    Ok(out)
}

/// Rows, bytes and files of one (table, venue) on one day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Volume {
    /// Rows.
    pub rows: u64,
    /// Bytes on disk.
    pub bytes: u64,
    /// Files.
    pub files: u64,
}

/// Coverage of one process role on one day.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Coverage {
    /// Distinct windows with at least one heartbeat.
    pub windows: u32,
    /// `windows / 288 * 100`.
    pub coverage_pct: f64,
}

/// Gap rows of one kind on one day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GapTotal {
    /// Gap rows.
    pub events: u64,
    /// Records affected (sum of `count`).
    pub records: u64,
}

/// The report of one day.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DayReport {
    /// Rows/bytes/files by table, then venue.
    pub tables: BTreeMap<String, BTreeMap<String, Volume>>,
    /// Market-event rows by venue (the chart's series).
    pub events_by_venue: BTreeMap<String, u64>,
    /// Coverage by heartbeat role.
    pub coverage: BTreeMap<String, Coverage>,
    /// Gaps by kind.
    pub gaps: BTreeMap<String, GapTotal>,
    /// Bytes on disk for the day.
    pub bytes: u64,
    /// Rows for the day (all tables).
    pub rows: u64,
}

/// The report of an archive.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ArchiveReport {
    /// Archive root.
    pub root: String,
    /// Days in the report.
    pub days: BTreeMap<String, DayReport>,
    /// Total bytes on disk.
    pub bytes: u64,
    /// Total rows.
    pub rows: u64,
    /// Total files.
    pub files: u64,
}

fn read_columns(path: &Path, columns: &[&str]) -> Result<Vec<RecordBatch>, ArchiveError> {
    let file = File::open(path).map_err(|e| ArchiveError::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
    let schema = builder.parquet_schema();
    let indices: Vec<usize> = columns
        .iter()
        .filter_map(|c| schema.columns().iter().position(|d| d.name() == *c))
        .collect();
    let mask = ProjectionMask::leaves(schema, indices);
    let reader = builder.with_projection(mask).build()?;
    let mut out = Vec::new();
    for batch in reader {
        out.push(batch?);
    }
    Ok(out)
}

fn dict_strings(array: &dyn Array) -> Vec<String> {
    if let Some(dict) = array.as_dictionary_opt::<Int32Type>() {
        let values = dict.values().as_string::<i32>();
        dict.keys()
            .iter()
            .map(|k| k.map_or_else(String::new, |k| values.value(k as usize).to_owned()))
            .collect()
    } else if let Some(strings) = array.as_string_opt::<i32>() {
        strings.iter().map(|s| s.unwrap_or("").to_owned()).collect()
    } else {
        vec![String::new(); array.len()]
    }
}

/// Summarises the archive under `root`, optionally for one date (`YYYY-MM-DD`).
/// `progress(done, total)` is called after each file.
///
/// # Errors
/// I/O and Parquet errors (a corrupt file is an error naming the file).
pub fn summarize(
    root: &Path,
    date: Option<&str>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ArchiveReport, ArchiveError> {
    let parts: Vec<PartFile> = list_parts(root)?
        .into_iter()
        .filter(|p| date.is_none_or(|d| p.date == d))
        .collect();
    let total = parts.len() as u64;
    let mut report = ArchiveReport {
        root: root.display().to_string(),
        ..ArchiveReport::default()
    };
    let mut heartbeat_windows: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for (done, part) in parts.iter().enumerate() {
        let file = File::open(&part.path).map_err(|e| ArchiveError::io(&part.path, e))?;
        let bytes = file
            .metadata()
            .map_err(|e| ArchiveError::io(&part.path, e))?
            .len();
        let reader = SerializedFileReader::new(file)?;
        let rows = u64::try_from(reader.metadata().file_metadata().num_rows()).unwrap_or(0);
        let day = report.days.entry(part.date.clone()).or_default();
        let volume = day
            .tables
            .entry(part.table.clone())
            .or_default()
            .entry(part.venue.clone())
            .or_default();
        volume.rows += rows;
        volume.bytes += bytes;
        volume.files += 1;
        day.bytes += bytes;
        day.rows += rows;
        report.bytes += bytes;
        report.rows += rows;
        report.files += 1;
        if Table::from_name(&part.table).is_some_and(Table::is_market) {
            *day.events_by_venue.entry(part.venue.clone()).or_default() += rows;
        }
        if part.table == Table::CollectorHeartbeat.name() {
            for batch in read_columns(&part.path, &["role"])? {
                for role in dict_strings(batch.column(0).as_ref()) {
                    heartbeat_windows
                        .entry((part.date.clone(), role))
                        .or_default()
                        .insert(part.window.clone());
                }
            }
        }
        if part.table == Table::Gaps.name() {
            for batch in read_columns(&part.path, &["kind", "count"])? {
                let kinds = dict_strings(batch.column(0).as_ref());
                let counts = crate::reader::ints(batch.column(1).as_ref(), 0, &part.path, "count")?;
                for (kind, count) in kinds.into_iter().zip(counts) {
                    let g = day.gaps.entry(kind).or_default();
                    g.events += 1;
                    g.records += count;
                }
            }
        }
        progress(done as u64 + 1, total);
    }
    for ((date, role), windows) in heartbeat_windows {
        let n = windows.len() as u32;
        if let Some(day) = report.days.get_mut(&date) {
            day.coverage.insert(
                role,
                Coverage {
                    windows: n,
                    coverage_pct: (f64::from(n) / f64::from(WINDOWS_PER_DAY) * 1000.0).round()
                        / 10.0,
                },
            );
        }
    }
    Ok(report)
}
