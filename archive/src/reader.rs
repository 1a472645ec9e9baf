//! Reading an archive back into bus records (the inverse of [`crate::tables::build_batch`]), for
//! `ringbolt replay` and the training export.
//!
//! Every record table row becomes the exact 128-byte [`Record`] that was on the bus: header
//! (`seq`, the three stamps, `venue_seq`, the bus `instrument_id`, kind from the table, venue from
//! the `venue=` partition, `stream`, `flags`) and the typed body with zero reserved bytes. Only
//! values the archiver already could not keep are lost: a decimal written as null because it was
//! out of range (counted in `gaps` as `bad_value`) comes back as 0 and is counted in
//! [`ReadStats::null_values`].
//!
//! Rows are read one 5-minute window at a time ([`ArchiveReader::read_window`]) so a whole day
//! never has to fit in memory; within a window they are put back in bus order: by `seq`
//! within each ring, rings merged by `publish_ts`.
//!
//! Needs archive schema version ≥ 2 (the `instrument_id` column); older files are refused with a
//! clear error. Versions 2 (`TIMESTAMP(NANOS)` stamps under their bus names, unsigned integers)
//! and 3 (INT64 `<stamp>_ns` columns, signed integers: see [`crate::tables`]) are both read: a
//! column is looked up by its stored name, then by its bus name, and any integer type is accepted
//! where the bus field is an integer.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Decimal128Type, Int16Type, Int32Type, Int64Type, TimestampNanosecondType, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrowPrimitiveType, FixedSizeBinaryArray, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use ringbolt_bus::columns::{Column, ColumnType, Null};
use ringbolt_bus::{Record, RecordKind, Venue};

use crate::ArchiveError;
use crate::report::{PartFile, list_parts};
use crate::tables::{ARCHIVE_SCHEMA_VERSION, SCHEMA_VERSION_KEY, Table, stored_name};

/// Instrument ids tracked in a dense table per segment (larger ids use the name map).
const SEEN_IDS: usize = 1 << 16;

/// One archived bus record with its provenance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Row {
    /// The record as it was on the bus.
    pub record: Record,
    /// Index into [`WindowRows::segments`].
    pub segment: u16,
    /// Ring.
    pub ring: u16,
    /// Producer epoch.
    pub epoch: u64,
}

/// Counters of what reading found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReadStats {
    /// Files read.
    pub files: u64,
    /// Rows read.
    pub rows: u64,
    /// Compressed bytes of the files read.
    pub bytes: u64,
    /// Decimal values that were null (out of range when archived), rebuilt as 0.
    pub null_values: u64,
    /// Dictionary names that map to no known code (rebuilt as 0).
    pub unknown_names: u64,
    /// Rows whose `venue=` partition names no known venue (skipped).
    pub bad_venue_rows: u64,
}

/// The rows of one window, in bus order, and the names they refer to.
#[derive(Debug, Default)]
pub struct WindowRows {
    /// The rows.
    pub rows: Vec<Row>,
    /// Segment names, indexed by [`Row::segment`] (shared by every window of one reader).
    pub segments: Vec<String>,
}

/// A window of the archive: `(date, HHMM)`.
pub type WindowKey = (String, String);

/// Reads an archive root.
#[derive(Debug)]
pub struct ArchiveReader {
    root: PathBuf,
    parts: Vec<PartFile>,
    segments: Vec<String>,
    segment_index: HashMap<String, u16>,
    /// `(segment index, instrument id) → (venue, name)` of every row read so far.
    names: HashMap<(u16, u32), (Venue, Arc<str>)>,
    /// Per segment index: instrument ids (< [`SEEN_IDS`]) already looked at.
    seen: Vec<Vec<bool>>,
    /// Counters.
    pub stats: ReadStats,
}

impl ArchiveReader {
    /// Lists the committed files under `root`.
    ///
    /// # Errors
    /// I/O errors; a root with no Parquet file is an error.
    pub fn open(root: &Path) -> Result<ArchiveReader, ArchiveError> {
        let parts = list_parts(root)?;
        if parts.is_empty() {
            return Err(ArchiveError::Format {
                path: root.to_owned(),
                message:
                    "no Parquet files (expected <table>/date=…/venue=…/window=…/part-*.parquet)"
                        .to_owned(),
            });
        }
        Ok(ArchiveReader {
            root: root.to_owned(),
            parts,
            segments: Vec::new(),
            segment_index: HashMap::new(),
            names: HashMap::new(),
            seen: Vec::new(),
            stats: ReadStats::default(),
        })
    }

    /// The archive root.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every window holding any of `tables`, in time order, optionally for one date.
    #[must_use]
    pub fn windows(&self, tables: &[Table], date: Option<&str>) -> Vec<WindowKey> {
        let set: BTreeSet<WindowKey> = self
            .parts
            .iter()
            .filter(|p| tables.iter().any(|t| t.name() == p.table))
            .filter(|p| date.is_none_or(|d| d == p.date))
            .map(|p| (p.date.clone(), p.window.clone()))
            .collect();
        set.into_iter().collect()
    }

    /// Compressed bytes of the files of `tables` (for progress bars).
    #[must_use]
    pub fn bytes_of(&self, tables: &[Table], date: Option<&str>) -> u64 {
        self.parts
            .iter()
            .filter(|p| tables.iter().any(|t| t.name() == p.table))
            .filter(|p| date.is_none_or(|d| d == p.date))
            .filter_map(|p| std::fs::metadata(&p.path).ok())
            .map(|m| m.len())
            .sum()
    }

    /// Segment names seen so far (index = [`Row::segment`]).
    #[must_use]
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// The venue and name of instrument `id` of segment index `segment`, as archived.
    #[must_use]
    pub fn instrument(&self, segment: u16, id: u32) -> Option<(Venue, Arc<str>)> {
        self.names.get(&(segment, id)).cloned()
    }

    /// Reads the rows of `tables` in window `key` whose segment passes `keep`, appends them to
    /// `out.rows` in bus order (see the module docs) and returns how many were added.
    ///
    /// # Errors
    /// I/O, Parquet, and format errors (an older schema version, a missing column).
    pub fn read_window(
        &mut self,
        key: &WindowKey,
        tables: &[Table],
        keep: &dyn Fn(&str) -> bool,
        out: &mut WindowRows,
    ) -> Result<usize, ArchiveError> {
        let files: Vec<PartFile> = self
            .parts
            .iter()
            .filter(|p| p.date == key.0 && p.window == key.1)
            .filter(|p| tables.iter().any(|t| t.name() == p.table))
            .cloned()
            .collect();
        let start = out.rows.len();
        for part in &files {
            self.read_file(part, keep, &mut out.rows)?;
        }
        out.segments.clone_from(&self.segments);
        sort_bus_order(&mut out.rows[start..]);
        Ok(out.rows.len() - start)
    }

    /// Reads every row of `tables` (all windows, optionally one date) whose segment passes
    /// `keep`, in bus order per ring (rings merged by `publish_ts`).
    ///
    /// # Errors
    /// As [`ArchiveReader::read_window`].
    pub fn read_all(
        &mut self,
        tables: &[Table],
        date: Option<&str>,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<WindowRows, ArchiveError> {
        let mut out = WindowRows::default();
        for key in self.windows(tables, date) {
            self.read_window(&key, tables, keep, &mut out)?;
        }
        Ok(out)
    }

    fn segment_id(&mut self, name: &str) -> u16 {
        if let Some(i) = self.segment_index.get(name) {
            return *i;
        }
        let i = self.segments.len() as u16;
        self.segments.push(name.to_owned());
        self.seen.push(vec![false; SEEN_IDS]);
        self.segment_index.insert(name.to_owned(), i);
        i
    }

    fn read_file(
        &mut self,
        part: &PartFile,
        keep: &dyn Fn(&str) -> bool,
        out: &mut Vec<Row>,
    ) -> Result<(), ArchiveError> {
        let path = &part.path;
        let Some(table) = Table::from_name(&part.table) else {
            return Ok(());
        };
        if table == Table::Gaps {
            return Ok(());
        }
        let Some(venue) = Venue::ALL
            .iter()
            .copied()
            .find(|v| v.as_str() == part.venue)
        else {
            self.stats.bad_venue_rows += 1;
            return Ok(());
        };
        let file = File::open(path).map_err(|e| ArchiveError::io(path, e))?;
        self.stats.bytes += file.metadata().map(|m| m.len()).unwrap_or(0);
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
        // Files written by the archiver name their source segment: skip unwanted ones undecoded.
        let segment = builder
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .and_then(|kv| kv.iter().find(|e| e.key == "ringbolt.segment"))
            .and_then(|e| e.value.clone());
        if segment.is_some_and(|s| !keep(&s)) {
            return Ok(());
        }
        let version: u32 = builder
            .schema()
            .metadata()
            .get(SCHEMA_VERSION_KEY)
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        if version < 2 {
            return Err(ArchiveError::Format {
                path: path.clone(),
                message: format!(
                    "archive schema version {version} has no instrument_id column; replay needs \
                     version ≥ 2 (this build writes {ARCHIVE_SCHEMA_VERSION}): re-record the archive"
                ),
            });
        }
        let reader = builder.with_batch_size(65_536).build()?;
        self.stats.files += 1;
        for batch in reader {
            let batch = batch?;
            self.read_batch(table, venue, &batch, path, keep, out)?;
        }
        Ok(())
    }

    /// Appends the rows of `batch` whose segment passes `keep`: the provenance and instrument
    /// names first, then every stored column of the kind, one column at a time.
    fn read_batch(
        &mut self,
        table: Table,
        venue: Venue,
        batch: &RecordBatch,
        path: &Path,
        keep: &dyn Fn(&str) -> bool,
        out: &mut Vec<Row>,
    ) -> Result<(), ArchiveError> {
        let Some(kind) = table.kind() else {
            return Ok(());
        };
        let cols = BatchColumns { batch, path };
        let base = out.len();
        let kept = self.read_rows(kind, venue, &cols, keep, out)?;
        let rows = &mut out[base..];
        let mut counts = Counts::default();
        let mut decoded = Vec::new();
        for column in table.record_columns().filter(|c| !c.is_derived()) {
            let values = decode(column, cols.stored(column)?, path, &mut counts)?;
            decoded.push((column, values));
        }
        // Rows are written in chunks that stay in cache across the columns.
        for (kept, rows) in kept
            .chunks(SCATTER_CHUNK)
            .zip(rows.chunks_mut(SCATTER_CHUNK))
        {
            for (column, values) in &decoded {
                values.scatter(column, kept, rows);
            }
        }
        self.stats.rows += kept.len() as u64;
        self.stats.null_values += counts.nulls;
        self.stats.unknown_names += counts.unknown;
        Ok(())
    }

    /// Pushes one zeroed record of `kind` and `venue` per kept row with its provenance, records
    /// the instrument names seen, and returns the batch indices of the kept rows.
    fn read_rows(
        &mut self,
        kind: RecordKind,
        venue: Venue,
        cols: &BatchColumns<'_>,
        keep: &dyn Fn(&str) -> bool,
        out: &mut Vec<Row>,
    ) -> Result<Vec<usize>, ArchiveError> {
        let path = cols.path;
        let seg_ids: Vec<u16> = dict_map(cols.get("segment")?, path, |s| self.segment_id(s))?;
        let ring = ints(cols.get("ring")?, 0, path, "ring")?;
        let epoch = ints(cols.get("epoch")?, 0, path, "epoch")?;
        let mut inames: Vec<Option<Arc<str>>> = Vec::new();
        let ikeys: Vec<usize> = dict_map(cols.get("instrument")?, path, |name| {
            let unregistered = name
                .strip_prefix('#')
                .is_some_and(|n| n.parse::<u32>().is_ok());
            inames.push((!unregistered).then(|| Arc::from(name)));
            inames.len() - 1
        })?;
        let iid = ints(cols.get("instrument_id")?, 0, path, "instrument_id")?;
        let mut kept = Vec::with_capacity(seg_ids.len());
        for (i, &s) in seg_ids.iter().enumerate() {
            if !keep(&self.segments[s as usize]) {
                continue;
            }
            kept.push(i);
            let id = iid[i] as u32;
            let first = match self.seen[s as usize].get_mut(id as usize) {
                Some(b) => !std::mem::replace(b, true),
                None => !self.names.contains_key(&(s, id)),
            };
            if first && let Some(name) = &inames[ikeys[i]] {
                self.names
                    .entry((s, id))
                    .or_insert_with(|| (venue, Arc::clone(name)));
            }
            let mut record = Record::zeroed();
            record.kind = kind as u8;
            record.venue = venue as u8;
            out.push(Row {
                record,
                segment: s,
                ring: ring[i] as u16,
                epoch: epoch[i],
            });
        }
        Ok(kept)
    }
}

/// The columns of one batch, by name, with the file they came from for errors.
struct BatchColumns<'a> {
    batch: &'a RecordBatch,
    path: &'a Path,
}

impl<'a> BatchColumns<'a> {
    fn get(&self, name: &str) -> Result<&'a dyn Array, ArchiveError> {
        self.batch
            .column_by_name(name)
            .map(AsRef::as_ref)
            .ok_or_else(|| ArchiveError::Format {
                path: self.path.to_owned(),
                message: format!("column {name} missing"),
            })
    }

    /// The stored column of bus column `column`: its schema-v3 name, else its bus name (v2).
    fn stored(&self, column: &Column) -> Result<&'a dyn Array, ArchiveError> {
        let name = stored_name(column);
        match self.batch.column_by_name(&name) {
            Some(array) => Ok(array.as_ref()),
            None => self.get(column.name),
        }
    }
}

/// What filling columns found: decimals that were null (out of range when archived) and names
/// that map to no code.
#[derive(Default)]
struct Counts {
    nulls: u64,
    unknown: u64,
}

/// Rows rebuilt per pass over the columns (about 300 KiB of rows).
const SCATTER_CHUNK: usize = 2048;

/// One column's values, indexed by batch row, ready to be written into records.
enum Decoded<'a> {
    /// Raw values of a field of at most 8 bytes.
    Raw(Vec<u64>),
    /// 128-bit values (null written as 0).
    Wide(Vec<Option<i128>>),
    /// Raw bytes (null leaves the field zero).
    Bytes(&'a FixedSizeBinaryArray),
    /// A derived column (rebuilt from another one): nothing to write.
    Derived,
}

impl Decoded<'_> {
    /// Writes the values of the batch rows `kept` into the field of `column` of `rows`.
    fn scatter(&self, column: &Column, kept: &[usize], rows: &mut [Row]) {
        let rows = rows.iter_mut().zip(kept);
        match self {
            Decoded::Raw(values) => {
                column.scatter(rows.map(|(row, &i)| (&mut row.record, values[i])));
            }
            Decoded::Wide(values) => {
                for (row, &i) in rows {
                    column.write_signed(&mut row.record, values[i].unwrap_or(0));
                }
            }
            Decoded::Bytes(bytes) => {
                for (row, &i) in rows.filter(|(_, i)| !bytes.is_null(**i)) {
                    column.write_bytes(&mut row.record, bytes.value(i));
                }
            }
            Decoded::Derived => {}
        }
    }
}

/// Decodes `array`, the stored column of `column`, into values indexed by batch row.
fn decode<'a>(
    column: &Column,
    array: &'a dyn Array,
    path: &Path,
    counts: &mut Counts,
) -> Result<Decoded<'a>, ArchiveError> {
    let name = column.name;
    let values: Vec<u64> = match column.ty {
        ColumnType::UInt => ints(array, column.null_raw().unwrap_or(0), path, name)?,
        ColumnType::Decimal(_) if column.size == 16 => {
            return Ok(Decoded::Wide(decimals(array, path, name)?));
        }
        ColumnType::Decimal(_) => {
            // Null is "not given" (0) for a null-if-zero column, else a value that was out of
            // range when archived (counted).
            let counted = column.null != Null::Zero;
            decimals(array, path, name)?
                .into_iter()
                .map(|v| match v {
                    Some(v) => i64::try_from(v).unwrap_or(0) as u64,
                    None => {
                        counts.nulls += u64::from(counted);
                        0
                    }
                })
                .collect()
        }
        ColumnType::Timestamp if matches!(array.data_type(), DataType::Timestamp(..)) => {
            prim::<TimestampNanosecondType>(array, path)?
                .into_iter()
                .map(|v| v as u64)
                .collect()
        }
        ColumnType::Timestamp => ints(array, 0, path, name)?,
        ColumnType::Bool => array
            .as_boolean_opt()
            .ok_or_else(|| bad_type(path, name))?
            .iter()
            .map(|v| u64::from(v.unwrap_or(false)))
            .collect(),
        ColumnType::Code(codes) => dict_map(array, path, |s| codes.code(s))?
            .into_iter()
            .map(|c| {
                u64::from(c.unwrap_or_else(|| {
                    counts.unknown += 1;
                    0
                }))
            })
            .collect(),
        ColumnType::Bytes => {
            let bytes = array
                .as_fixed_size_binary_opt()
                .ok_or_else(|| bad_type(path, name))?;
            return Ok(Decoded::Bytes(bytes));
        }
        ColumnType::Flag(_) | ColumnType::InstrumentName => return Ok(Decoded::Derived),
    };
    Ok(Decoded::Raw(values))
}

/// An integer column of any width and sign as the bus field's raw `u64` (signed values keep their
/// bits: schema v3 stores `u64` as the INT64 of the same bits), null as `null`.
///
/// # Errors
/// A column that is not an integer column.
pub fn ints(a: &dyn Array, null: u64, path: &Path, name: &str) -> Result<Vec<u64>, ArchiveError> {
    match a.data_type() {
        DataType::UInt8 => uints::<UInt8Type>(a, null, path, name),
        DataType::UInt16 => uints::<UInt16Type>(a, null, path, name),
        DataType::UInt32 => uints::<UInt32Type>(a, null, path, name),
        DataType::UInt64 => uints::<UInt64Type>(a, null, path, name),
        DataType::Int16 => sints::<Int16Type>(a, null, path, name),
        DataType::Int32 => sints::<Int32Type>(a, null, path, name),
        DataType::Int64 => sints::<Int64Type>(a, null, path, name),
        _ => Err(bad_type(path, name)),
    }
}

/// A signed integer column as raw `u64` (two's complement bits), null as `null`.
fn sints<T: ArrowPrimitiveType>(
    a: &dyn Array,
    null: u64,
    path: &Path,
    name: &str,
) -> Result<Vec<u64>, ArchiveError>
where
    T::Native: Into<i64>,
{
    let p = a
        .as_primitive_opt::<T>()
        .ok_or_else(|| bad_type(path, name))?;
    Ok(p.iter()
        .map(|v| v.map_or(null, |v| Into::<i64>::into(v) as u64))
        .collect())
}

/// An unsigned integer column widened to `u64`, null as `null`.
fn uints<T: ArrowPrimitiveType>(
    a: &dyn Array,
    null: u64,
    path: &Path,
    name: &str,
) -> Result<Vec<u64>, ArchiveError>
where
    T::Native: Into<u64>,
{
    let p = a
        .as_primitive_opt::<T>()
        .ok_or_else(|| bad_type(path, name))?;
    Ok(p.iter().map(|v| v.map_or(null, Into::into)).collect())
}

fn decimals(a: &dyn Array, path: &Path, name: &str) -> Result<Vec<Option<i128>>, ArchiveError> {
    Ok(a.as_primitive_opt::<Decimal128Type>()
        .ok_or_else(|| bad_type(path, name))?
        .iter()
        .collect())
}

/// Puts rows back in bus order: by `seq` within each `(segment, ring)` — a restarted producer's
/// new epoch continues the sequence past the old epoch's, so `seq` orders epochs too, while epoch
/// ids are random — rings merged by `publish_ts` (ties: segment, ring).
pub fn sort_bus_order(rows: &mut [Row]) {
    // Sort small keys and gather once (rows are 144 bytes: moving them inside the sort costs more
    // than the comparisons).
    let mut keys: Vec<(u16, u16, u64, u64, u32)> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.segment, r.ring, r.record.seq, r.epoch, i as u32))
        .collect();
    keys.sort_unstable();
    if keys.iter().enumerate().any(|(i, k)| k.4 as usize != i) {
        let gathered: Vec<Row> = keys.iter().map(|k| rows[k.4 as usize]).collect();
        rows.copy_from_slice(&gathered);
    }
    drop(keys);
    // Runs of one ring each; merge them by publish stamp.
    let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
    let mut start = 0;
    for i in 1..=rows.len() {
        if i == rows.len()
            || (rows[i].segment, rows[i].ring) != (rows[start].segment, rows[start].ring)
        {
            if i > start {
                runs.push(start..i);
            }
            start = i;
        }
    }
    if runs.len() <= 1 {
        return;
    }
    let mut merged = Vec::with_capacity(rows.len());
    let mut heads: Vec<usize> = runs.iter().map(|r| r.start).collect();
    loop {
        let mut best: Option<usize> = None;
        for (k, run) in runs.iter().enumerate() {
            if heads[k] < run.end {
                let better = best.is_none_or(|b| {
                    let (x, y) = (&rows[heads[k]], &rows[heads[b]]);
                    (x.record.publish_ts_ns, x.segment, x.ring)
                        < (y.record.publish_ts_ns, y.segment, y.ring)
                });
                if better {
                    best = Some(k);
                }
            }
        }
        let Some(k) = best else { break };
        merged.push(rows[heads[k]]);
        heads[k] += 1;
    }
    rows.copy_from_slice(&merged);
}

fn bad_type(path: &Path, name: &str) -> ArchiveError {
    ArchiveError::Format {
        path: path.to_owned(),
        message: format!("column {name} has an unexpected type"),
    }
}

fn prim<T: arrow_array::ArrowPrimitiveType>(
    a: &dyn Array,
    path: &Path,
) -> Result<Vec<T::Native>, ArchiveError>
where
    T::Native: Default,
{
    let p = a
        .as_primitive_opt::<T>()
        .ok_or_else(|| bad_type(path, "primitive"))?;
    Ok(p.iter().map(Option::unwrap_or_default).collect())
}

/// Maps a string column (dictionary or plain) through `f`, calling it once per dictionary value
/// (once per row for a plain column).
fn dict_map<T: Clone + Default>(
    a: &dyn Array,
    path: &Path,
    mut f: impl FnMut(&str) -> T,
) -> Result<Vec<T>, ArchiveError> {
    match a.data_type() {
        DataType::Dictionary(_, _) => {
            let dict = a
                .as_dictionary_opt::<Int32Type>()
                .ok_or_else(|| bad_type(path, "dictionary"))?;
            let values = dict
                .values()
                .as_string_opt::<i32>()
                .ok_or_else(|| bad_type(path, "dictionary values"))?;
            let mapped: Vec<T> = values.iter().map(|v| f(v.unwrap_or(""))).collect();
            Ok(dict
                .keys()
                .iter()
                .map(|k| {
                    k.and_then(|k| mapped.get(k as usize).cloned())
                        .unwrap_or_default()
                })
                .collect())
        }
        DataType::Utf8 => Ok(a
            .as_string::<i32>()
            .iter()
            .map(|v| f(v.unwrap_or("")))
            .collect()),
        _ => Err(bad_type(path, "string")),
    }
}

/// Decision records of `segment` by decision number (`venue_seq`), index = number − 1, for the
/// producer epoch given (or, when `None`, the first trade session: the epoch whose first
/// decision was published first). Returns the vector and every epoch present, in the order the
/// sessions started (an epoch's number says nothing about when it began).
#[must_use]
pub fn decisions_by_number(
    rows: &WindowRows,
    segment: &str,
    epoch: Option<u64>,
) -> (Vec<Option<Record>>, Vec<u64>) {
    let Some(seg) = rows.segments.iter().position(|s| s == segment) else {
        return (Vec::new(), Vec::new());
    };
    let mut first_ns: BTreeMap<u64, i64> = BTreeMap::new();
    for r in rows.rows.iter().filter(|r| r.segment as usize == seg) {
        let ts = first_ns.entry(r.epoch).or_insert(i64::MAX);
        *ts = (*ts).min(r.record.publish_ts_ns);
    }
    let mut epochs: Vec<(i64, u64)> = first_ns.into_iter().map(|(e, ts)| (ts, e)).collect();
    epochs.sort_unstable();
    let epochs: Vec<u64> = epochs.into_iter().map(|(_, e)| e).collect();
    let Some(chosen) = epoch.or_else(|| epochs.first().copied()) else {
        return (Vec::new(), epochs);
    };
    let mut out: Vec<Option<Record>> = Vec::new();
    for r in rows
        .rows
        .iter()
        .filter(|r| r.segment as usize == seg && r.epoch == chosen)
    {
        let Some(i) = usize::try_from(r.record.venue_seq)
            .ok()
            .and_then(|n| n.checked_sub(1))
        else {
            continue;
        };
        if out.len() <= i {
            out.resize(i + 1, None);
        }
        out[i] = Some(r.record);
    }
    (out, epochs)
}

#[cfg(test)]
mod session_order_tests {
    use super::*;

    fn row(epoch: u64, number: u64, publish_ts_ns: i64) -> Row {
        let mut record = Record::zeroed();
        record.venue_seq = number;
        record.publish_ts_ns = publish_ts_ns;
        Row {
            record,
            segment: 0,
            ring: 0,
            epoch,
        }
    }

    #[test]
    fn the_first_session_is_the_one_that_started_first_not_the_smallest_epoch() {
        // Session 900 ran first (killed -9 after two decisions), then session 5.
        let rows = WindowRows {
            rows: vec![
                row(900, 1, 100),
                row(900, 2, 200),
                row(5, 1, 300),
                row(5, 2, 400),
                row(5, 3, 500),
            ],
            segments: vec!["decide".to_owned()],
        };
        let (first, epochs) = decisions_by_number(&rows, "decide", None);
        assert_eq!(epochs, vec![900, 5]);
        assert_eq!(first.len(), 2);
        let (later, _) = decisions_by_number(&rows, "decide", Some(5));
        assert_eq!(later.len(), 3);
    }
}
