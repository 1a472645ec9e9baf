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
use std::io::{Read, Seek, SeekFrom};
use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Decimal64Type, Decimal128Type, Int16Type, Int32Type, Int64Type, TimestampNanosecondType,
    UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, ArrowPrimitiveType, PrimitiveArray, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::file::metadata::ParquetMetaDataReader;
use ringbolt_bus::columns::{Column, ColumnType, Null};
use ringbolt_bus::{Record, RecordKind, Venue};

use crate::ArchiveError;
use crate::pages;
use crate::report::{PartFile, list_parts};
use crate::tables::{ARCHIVE_SCHEMA_VERSION, MICROS_STAMP, SCHEMA_VERSION_KEY, Table, stored_name};

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

/// Fresh allocations smaller than this are left to fault in page by page.
const PREFAULT_MIN_BYTES: usize = 4 << 20;

/// Faults in the whole pages of a fresh buffer of rows in one system call
/// (`MADV_POPULATE_WRITE`, Linux 5.14), before the rows are written: on the 2-vCPU VM a fresh
/// 72 MB buffer (a window at 22× the bench's rate) took 55–159 ms to fault in page by page at
/// first write and 32–42 ms populated first (`lab/probes/first-touch.c`, mode 2). An error (a
/// kernel before 5.14, memory it cannot populate now) is ignored: the pages then fault in at
/// first write, as without this call.
fn prefault<T>(spare: &mut [std::mem::MaybeUninit<T>]) {
    const PAGE: usize = 4096;
    let bytes = std::mem::size_of_val(spare);
    if bytes < PREFAULT_MIN_BYTES {
        return;
    }
    let start = spare.as_mut_ptr() as usize;
    let first_page = start.next_multiple_of(PAGE);
    let end_page = (start + bytes) / PAGE * PAGE;
    // SAFETY: `[first_page, end_page)` lies inside `spare`, memory this process owns and
    // borrows mutably here (nobody else reads or writes it during the call), and is page
    // aligned as `madvise` requires. `MADV_POPULATE_WRITE` only populates the page tables, as
    // a write to each page would, without writing: it changes no byte, and the memory stays
    // uninitialised as far as Rust is concerned.
    let _ignored = unsafe {
        libc::madvise(
            first_page as *mut libc::c_void,
            end_page - first_page,
            libc::MADV_POPULATE_WRITE,
        )
    };
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
#[derive(Clone, Debug, Default)]
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
    /// Bus-order keys of the kept rows of the window being read, in read order.
    keys: Vec<Key>,
    /// Scratch of the bus order: key indices in order, and the slot of each key.
    order: Vec<u32>,
    slot: Vec<u32>,
    /// [`ArchiveReader::largest_window_rows`], once found, and the tables it is of.
    largest_window: Option<(Vec<Table>, usize)>,
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
            keys: Vec::new(),
            order: Vec::new(),
            slot: Vec::new(),
            largest_window: None,
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
            .parts_of(tables, date)
            .map(|p| (p.date.clone(), p.window.clone()))
            .collect();
        set.into_iter().collect()
    }

    /// Compressed bytes of the files of `tables` (for progress bars).
    #[must_use]
    pub fn bytes_of(&self, tables: &[Table], date: Option<&str>) -> u64 {
        self.parts_of(tables, date)
            .filter_map(|p| std::fs::metadata(&p.path).ok())
            .map(|m| m.len())
            .sum()
    }

    /// The files of `tables`, of one date when given.
    fn parts_of<'a>(
        &'a self,
        tables: &'a [Table],
        date: Option<&'a str>,
    ) -> impl Iterator<Item = &'a PartFile> + 'a {
        self.parts
            .iter()
            .filter(|p| tables.iter().any(|t| t.name() == p.table))
            .filter(move |p| date.is_none_or(|d| d == p.date))
    }

    /// Rows the footers of the files of `tables` declare (an unreadable footer counts 0).
    fn rows_in(&self, tables: &[Table], date: Option<&str>) -> usize {
        self.parts_of(tables, date)
            .map(|p| footer_rows(&p.path))
            .sum()
    }

    /// The most rows the footers of one window's files of `tables` declare (any date); found
    /// once per set of tables.
    fn largest_window_rows(&mut self, tables: &[Table]) -> usize {
        if let Some((t, rows)) = &self.largest_window
            && t == tables
        {
            return *rows;
        }
        let mut by_window: HashMap<(&str, &str), usize> = HashMap::new();
        for p in self.parts_of(tables, None) {
            *by_window.entry((&p.date, &p.window)).or_default() += footer_rows(&p.path);
        }
        let rows = by_window.into_values().max().unwrap_or(0);
        self.largest_window = Some((tables.to_vec(), rows));
        rows
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
            .parts_of(tables, Some(&key.0))
            .filter(|p| p.window == key.1)
            .cloned()
            .collect();
        // Every file's batches first (their kept rows' keys in `self.keys`), then the order,
        // then each record written once, in its place.
        self.keys.clear();
        let mut pending = Vec::new();
        for part in &files {
            self.read_file(part, keep, &mut pending)?;
        }
        let (mut order, mut slot) = (
            std::mem::take(&mut self.order),
            std::mem::take(&mut self.slot),
        );
        bus_order(&self.keys, &mut order, &mut slot);
        let rows = order.len();
        assert_eq!(rows, self.keys.len(), "the bus order holds every row once");
        slot.clear();
        slot.resize(rows, u32::MAX);
        for (p, &k) in order.iter().enumerate() {
            let s = &mut slot[k as usize];
            assert_eq!(*s, u32::MAX, "the bus order holds every row once");
            *s = p as u32;
        }
        // A reused buffer too small for this window holds nothing to keep: a fresh allocation,
        // not a `realloc` that copies the old one's bytes, and sized for the largest window of
        // `tables`, so that it is the last one: a buffer this large is its own mapping, and each
        // new one is paid again in page faults at first touch (≈ 50 ms for the 72 MB of a
        // window at 22× the bench's message rate on the 2-vCPU VM).
        if out.rows.is_empty() && out.rows.capacity() < rows {
            out.rows = Vec::new();
            out.rows
                .reserve_exact(rows.max(self.largest_window_rows(tables)));
            prefault(out.rows.spare_capacity_mut());
        }
        out.rows.reserve(rows);
        let start = out.rows.len();
        let written = write_rows(
            &mut out.rows.spare_capacity_mut()[..rows],
            &self.keys,
            &slot,
            &pending,
        );
        (self.order, self.slot) = (order, slot);
        if let Ok(w) = written {
            assert_eq!(w, rows, "every row of the window written");
        }
        written?;
        // SAFETY: the `rows` places after `start` are initialised: `slot` is a permutation of
        // `0..rows` (asserted as it was built: `rows` entries, each set once), and `write_rows`
        // wrote `spare[slot[k]]` for every key `k` of `0..rows` (its pending batches cover the
        // keys in one run from 0, asserted there, and it wrote `rows` of them, asserted above).
        unsafe { out.rows.set_len(start + rows) };
        out.segments.clone_from(&self.segments);
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
        // Sized once from the footers: a vector grown by doubling moved and page-faulted the
        // decisions of a replay (125 MB for 871k rows) several times over.
        out.rows.reserve_exact(self.rows_in(tables, date));
        prefault(out.rows.spare_capacity_mut());
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

    /// Opens `part`, skips it when its segment is not kept, and collects its batches.
    fn read_file(
        &mut self,
        part: &PartFile,
        keep: &dyn Fn(&str) -> bool,
        pending: &mut Vec<Pending>,
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
        let mut file = File::open(path).map_err(|e| ArchiveError::io(path, e))?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        self.stats.bytes += len;
        let metadata = ArrowReaderMetadata::load(&file, ArrowReaderOptions::default())?;
        // Files written by the archiver name their source segment: skip unwanted ones undecoded.
        let segment = metadata
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .and_then(|kv| kv.iter().find(|e| e.key == "ringbolt.segment"))
            .and_then(|e| e.value.clone());
        if segment.is_some_and(|s| !keep(&s)) {
            return Ok(());
        }
        let version: u32 = metadata
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
        // The whole file in one read (the pages are then slices of it, not one read each).
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.read_to_end(&mut bytes))
            .map_err(|e| ArchiveError::io(path, e))?;
        let metadata = narrow_decimals(metadata)?;
        let wanted = rebuilt_columns(table, metadata.schema());
        let mask = ProjectionMask::roots(metadata.parquet_schema(), wanted);
        let reader = pages::record_batches(Bytes::from(bytes), &metadata, mask, 65_536)?;
        self.stats.files += 1;
        for batch in reader {
            let batch = batch?;
            self.read_batch(table, venue, &batch, path, keep, pending)?;
        }
        Ok(())
    }

    /// Takes in the rows of `batch` whose segment passes `keep`: their bus-order keys and
    /// provenance, the instrument names, and every stored column of the kind (checked and
    /// counted now, written into records once the window's order is known).
    fn read_batch(
        &mut self,
        table: Table,
        venue: Venue,
        batch: &RecordBatch,
        path: &Path,
        keep: &dyn Fn(&str) -> bool,
        pending: &mut Vec<Pending>,
    ) -> Result<(), ArchiveError> {
        let Some(kind) = table.kind() else {
            return Ok(());
        };
        let cols = BatchColumns { batch, path };
        let mut counts = Counts::default();
        let mut columns = Vec::new();
        let (mut seq, mut publish) = (None, None);
        for column in table.record_columns().filter(|c| !c.is_derived()) {
            let stored = cols.stored(column)?;
            // The bus-order keys as the record will hold them.
            match column.name {
                "seq" => seq = Some(key_values(column, stored.as_ref(), path)?),
                MICROS_STAMP => publish = Some(key_values(column, stored.as_ref(), path)?),
                _ => {}
            }
            columns.push((column, prepare(column, stored, path, &mut counts)?));
        }
        let (Some(seq), Some(publish)) = (seq, publish) else {
            return Err(bad_type(path, "seq/publish_ts"));
        };
        let first = self.keys.len();
        let kept = self.read_rows(kind, venue, &cols, keep, &seq, &publish)?;
        self.stats.rows += kept.len() as u64;
        self.stats.null_values += counts.nulls;
        self.stats.unknown_names += counts.unknown;
        if !kept.is_empty() {
            pending.push(Pending {
                path: path.to_owned(),
                columns,
                kept,
                first,
            });
        }
        Ok(())
    }

    /// Records the instrument names seen and the keys and provenance of every kept row, and
    /// returns the batch indices of the kept rows.
    fn read_rows(
        &mut self,
        kind: RecordKind,
        venue: Venue,
        cols: &BatchColumns<'_>,
        keep: &dyn Fn(&str) -> bool,
        seq: &[u64],
        publish: &[u64],
    ) -> Result<Vec<u32>, ArchiveError> {
        let path = cols.path;
        let seg_ids: Vec<u16> =
            dict_map(cols.get("segment")?.as_ref(), path, |s| self.segment_id(s))?;
        let ring = ints(cols.get("ring")?.as_ref(), 0, path, "ring")?;
        let epoch = ints(cols.get("epoch")?.as_ref(), 0, path, "epoch")?;
        let mut inames: Vec<Option<Arc<str>>> = Vec::new();
        let ikeys: Vec<usize> = dict_map(cols.get("instrument")?.as_ref(), path, |name| {
            let unregistered = name
                .strip_prefix('#')
                .is_some_and(|n| n.parse::<u32>().is_ok());
            inames.push((!unregistered).then(|| Arc::from(name)));
            inames.len() - 1
        })?;
        let iid = ints(
            cols.get("instrument_id")?.as_ref(),
            0,
            path,
            "instrument_id",
        )?;
        // `keep` once per segment, not once per row.
        let mut kept_segment: Vec<Option<bool>> = vec![None; self.segments.len()];
        let mut kept = Vec::with_capacity(seg_ids.len());
        for (i, &s) in seg_ids.iter().enumerate() {
            let keeps =
                *kept_segment[s as usize].get_or_insert_with(|| keep(&self.segments[s as usize]));
            if !keeps {
                continue;
            }
            kept.push(i as u32);
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
            self.keys.push(Key {
                publish_ts_ns: publish[i] as i64,
                seq: seq[i],
                epoch: epoch[i],
                segment: s,
                ring: ring[i] as u16,
                kind: kind as u8,
                venue: venue as u8,
            });
        }
        Ok(kept)
    }
}

/// `metadata` with every `Decimal128` column of precision ≤ 18 (the archive's 8-byte decimals,
/// stored as INT64) read as `Decimal64`: parquet then hands out the stored values as they are,
/// not widened into a new 16-byte array per column and batch.
///
/// # Errors
/// A schema parquet cannot read the file with (not one this crate wrote).
fn narrow_decimals(metadata: ArrowReaderMetadata) -> Result<ArrowReaderMetadata, ArchiveError> {
    let schema = metadata.schema();
    let narrow = |f: &Arc<Field>| match f.data_type() {
        &DataType::Decimal128(p, s) if p <= 18 => {
            Arc::new(f.as_ref().clone().with_data_type(DataType::Decimal64(p, s)))
        }
        _ => Arc::clone(f),
    };
    if !schema.fields().iter().any(|f| narrow(f) != *f) {
        return Ok(metadata);
    }
    let narrowed: SchemaRef = Arc::new(Schema::new_with_metadata(
        schema.fields().iter().map(narrow).collect::<Vec<_>>(),
        schema.metadata().clone(),
    ));
    let options = ArrowReaderOptions::new().with_schema(narrowed);
    Ok(ArrowReaderMetadata::try_new(
        Arc::clone(metadata.metadata()),
        options,
    )?)
}

/// Rows the footer of the Parquet file at `path` declares (an unreadable footer: 0).
fn footer_rows(path: &Path) -> usize {
    File::open(path)
        .ok()
        .and_then(|file| ParquetMetaDataReader::new().parse_and_finish(&file).ok())
        .and_then(|footer| usize::try_from(footer.file_metadata().num_rows()).ok())
        .unwrap_or(0)
}

/// The top-level columns of a file of `table` with Arrow schema `schema` that its records are
/// rebuilt from: provenance, instrument names and every stored bus field, by stored name, else
/// bus name (schema v2); not the flag bits (read back through `flags`) nor schema v3's
/// microsecond copy of `publish_ts`. Missing columns are left out (reading then names them).
#[must_use]
pub fn rebuilt_columns(table: Table, schema: &Schema) -> Vec<usize> {
    let provenance = ["segment", "ring", "epoch"]
        .into_iter()
        .filter_map(|name| schema.index_of(name).ok());
    let fields = table.record_columns().filter_map(|c| match c.ty {
        ColumnType::InstrumentName => schema.index_of(c.name).ok(),
        _ if c.is_derived() => None,
        _ => schema
            .index_of(&stored_name(c))
            .or_else(|_| schema.index_of(c.name))
            .ok(),
    });
    provenance.chain(fields).collect()
}

/// The columns of one batch, by name, with the file they came from for errors.
struct BatchColumns<'a> {
    batch: &'a RecordBatch,
    path: &'a Path,
}

impl<'a> BatchColumns<'a> {
    fn get(&self, name: &str) -> Result<&'a ArrayRef, ArchiveError> {
        self.batch
            .column_by_name(name)
            .ok_or_else(|| ArchiveError::Format {
                path: self.path.to_owned(),
                message: format!("column {name} missing"),
            })
    }

    /// The stored column of bus column `column`: its schema-v3 name, else its bus name (v2).
    fn stored(&self, column: &Column) -> Result<&'a ArrayRef, ArchiveError> {
        let name = stored_name(column);
        match self.batch.column_by_name(&name) {
            Some(array) => Ok(array),
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

/// The bus-order key and provenance of one kept row of the window being read.
#[derive(Clone, Copy, Debug)]
struct Key {
    publish_ts_ns: i64,
    seq: u64,
    epoch: u64,
    segment: u16,
    ring: u16,
    kind: u8,
    venue: u8,
}

impl Key {
    /// The row of this key before its stored columns are written: header and provenance.
    fn row(&self) -> Row {
        let mut record = Record::zeroed();
        record.kind = self.kind;
        record.venue = self.venue;
        Row {
            record,
            segment: self.segment,
            ring: self.ring,
            epoch: self.epoch,
        }
    }
}

/// A batch of the window being read: its stored columns and its kept rows.
struct Pending {
    path: PathBuf,
    columns: Vec<(&'static Column, Prep)>,
    /// Batch rows kept, in batch order.
    kept: Vec<u32>,
    /// Index of the first kept row among the window's keys.
    first: usize,
}

/// One stored column of a batch, ready to be written into records.
enum Prep {
    /// The stored array, written with the loop of its type.
    Array(ArrayRef),
    /// Dictionary keys and the code of each dictionary value (unknown names: 0).
    Codes {
        keys: PrimitiveArray<Int32Type>,
        codes: Vec<u64>,
    },
    /// Values already widened (a code column stored as plain strings).
    Owned(Vec<u64>),
}

/// Checks the stored column of `column` and counts what it holds that cannot be rebuilt
/// (decimals that were null, unknown names), for every row of the batch.
fn prepare(
    column: &Column,
    array: &ArrayRef,
    path: &Path,
    counts: &mut Counts,
) -> Result<Prep, ArchiveError> {
    let prep = match column.ty {
        ColumnType::Code(codes) => match array.data_type() {
            DataType::Dictionary(_, _) => {
                let dict = array
                    .as_dictionary_opt::<Int32Type>()
                    .ok_or_else(|| bad_type(path, "dictionary"))?;
                let values = dict
                    .values()
                    .as_string_opt::<i32>()
                    .ok_or_else(|| bad_type(path, "dictionary values"))?;
                let mapped: Vec<Option<u8>> =
                    values.iter().map(|v| codes.code(v.unwrap_or(""))).collect();
                let keys = dict.keys().clone();
                // A null key, a key past the dictionary and an unknown name all count.
                let unknown = |k: i32| mapped.get(k as usize).is_none_or(Option::is_none);
                counts.unknown += if keys.null_count() == 0 {
                    keys.values().iter().filter(|&&k| unknown(k)).count()
                } else {
                    keys.iter().filter(|k| k.is_none_or(unknown)).count()
                } as u64;
                let codes = mapped.iter().map(|c| u64::from(c.unwrap_or(0))).collect();
                return Ok(Prep::Codes { keys, codes });
            }
            _ => Prep::Owned(
                dict_map(array, path, |s| codes.code(s))?
                    .into_iter()
                    .map(|c| {
                        u64::from(c.unwrap_or_else(|| {
                            counts.unknown += 1;
                            0
                        }))
                    })
                    .collect(),
            ),
        },
        // Null is "not given" (0) for a null-if-zero column, else a value that was out of
        // range when archived (counted).
        ColumnType::Decimal(_) if column.size != 16 && column.null != Null::Zero => {
            counts.nulls += array.null_count() as u64;
            Prep::Array(Arc::clone(array))
        }
        _ => Prep::Array(Arc::clone(array)),
    };
    // Writing no rows checks the type.
    write_column(column, &prep, &mut [], &[], path)?;
    Ok(prep)
}

/// The values of the key column `column` (`seq`, `publish_ts`) as its record field holds them.
fn key_values(column: &Column, array: &dyn Array, path: &Path) -> Result<Vec<u64>, ArchiveError> {
    match column.ty {
        ColumnType::Timestamp if matches!(array.data_type(), DataType::Timestamp(..)) => {
            Ok(prim::<TimestampNanosecondType>(array, path)?
                .into_iter()
                .map(|v| v as u64)
                .collect())
        }
        _ => ints(array, column.null_raw().unwrap_or(0), path, column.name),
    }
}

/// Writes the rows of `pending` into `rows` (the window's places in bus order, uninitialised):
/// row `k` of the window's keys (`keys`, read order) goes to `rows[slot[k]]`. Each chunk of a
/// batch's rows is built in read order in a scratch that stays in cache (header and provenance
/// from its key, then one column at a time), then each row is moved to its place: one
/// scattered write of a whole row, not one per column, and no pass that zeroes the window
/// first (a window at 22× the bench's message rate is 72 MB of rows, and each file's rows land
/// about 34 rows apart in it). Returns the rows written: the keys `0..` that many.
fn write_rows(
    rows: &mut [MaybeUninit<Row>],
    keys: &[Key],
    slot: &[u32],
    pending: &[Pending],
) -> Result<usize, ArchiveError> {
    let mut places: Vec<(u32, u32)> = Vec::with_capacity(SCATTER_CHUNK);
    let mut built: Vec<Row> = Vec::with_capacity(SCATTER_CHUNK);
    let mut written = 0;
    for p in pending {
        assert_eq!(p.first, written, "the batches' keys are one run");
        for kept in p.kept.chunks(SCATTER_CHUNK) {
            let run = written..written + kept.len();
            built.clear();
            built.extend(keys[run.clone()].iter().map(Key::row));
            places.clear();
            places.extend(kept.iter().zip(0..).map(|(&i, j)| (i, j)));
            for (column, prep) in &p.columns {
                write_column(column, prep, &mut built, &places, &p.path)?;
            }
            for (row, &s) in built.iter().zip(&slot[run]) {
                rows[s as usize].write(*row);
            }
            written += kept.len();
        }
    }
    Ok(written)
}

/// Writes the values of `prep`, the stored column of `column`, at batch rows `i` into the
/// field of `rows[s]` for each `(i, s)` of `places`: one loop per stored type and field width.
/// With no places, only checks the stored type.
fn write_column(
    column: &Column,
    prep: &Prep,
    rows: &mut [Row],
    places: &[(u32, u32)],
    path: &Path,
) -> Result<(), ArchiveError> {
    let array = match prep {
        Prep::Owned(values) => {
            put(column, rows, places, |i| values[i]);
            return Ok(());
        }
        Prep::Codes { keys, codes } => {
            let k = keys.values();
            let code = |k: i32| codes.get(k as usize).copied().unwrap_or(0);
            if keys.null_count() == 0 {
                put(column, rows, places, |i| code(k[i]));
            } else {
                put(column, rows, places, |i| {
                    if keys.is_valid(i) { code(k[i]) } else { 0 }
                });
            }
            return Ok(());
        }
        Prep::Array(array) => array.as_ref(),
    };
    let name = column.name;
    match column.ty {
        ColumnType::UInt => put_ints(
            column,
            array,
            column.null_raw().unwrap_or(0),
            rows,
            places,
            path,
        ),
        ColumnType::Decimal(_)
            if column.size != 16 && matches!(array.data_type(), DataType::Decimal64(..)) =>
        {
            put_prim::<Decimal64Type>(column, array, 0, rows, places, path, |v| v as u64)
        }
        ColumnType::Decimal(_) => {
            let p = array
                .as_primitive_opt::<Decimal128Type>()
                .ok_or_else(|| bad_type(path, name))?;
            let v = p.values();
            if column.size == 16 {
                for &(i, s) in places {
                    let i = i as usize;
                    let value = if p.is_valid(i) { v[i] } else { 0 };
                    column.write_signed(&mut rows[s as usize].record, value);
                }
            } else if p.null_count() == 0 {
                put(column, rows, places, |i| {
                    i64::try_from(v[i]).unwrap_or(0) as u64
                });
            } else {
                put(column, rows, places, |i| {
                    if p.is_valid(i) {
                        i64::try_from(v[i]).unwrap_or(0) as u64
                    } else {
                        0
                    }
                });
            }
            Ok(())
        }
        ColumnType::Timestamp if matches!(array.data_type(), DataType::Timestamp(..)) => {
            put_prim::<TimestampNanosecondType>(column, array, 0, rows, places, path, |v| v as u64)
        }
        ColumnType::Timestamp => put_ints(column, array, 0, rows, places, path),
        ColumnType::Bool => {
            let b = array.as_boolean_opt().ok_or_else(|| bad_type(path, name))?;
            let bits = b.values();
            if b.null_count() == 0 {
                put(column, rows, places, |i| u64::from(bits.value(i)));
            } else {
                put(column, rows, places, |i| {
                    u64::from(b.is_valid(i) && bits.value(i))
                });
            }
            Ok(())
        }
        ColumnType::Bytes => {
            let bytes = array
                .as_fixed_size_binary_opt()
                .ok_or_else(|| bad_type(path, name))?;
            for &(i, s) in places {
                if bytes.is_valid(i as usize) {
                    column.write_bytes(&mut rows[s as usize].record, bytes.value(i as usize));
                }
            }
            Ok(())
        }
        // Codes are prepared as `Codes`/`Owned`; derived columns are not written.
        ColumnType::Code(_) | ColumnType::Flag(_) | ColumnType::InstrumentName => Ok(()),
    }
}

/// [`write_column`] of an integer column of any width and sign (signed values keep their bits:
/// schema v3 stores `u64` as the INT64 of the same bits), null as `null`.
fn put_ints(
    column: &Column,
    array: &dyn Array,
    null: u64,
    rows: &mut [Row],
    places: &[(u32, u32)],
    path: &Path,
) -> Result<(), ArchiveError> {
    match array.data_type() {
        DataType::UInt8 => {
            put_prim::<UInt8Type>(column, array, null, rows, places, path, u64::from)
        }
        DataType::UInt16 => {
            put_prim::<UInt16Type>(column, array, null, rows, places, path, u64::from)
        }
        DataType::UInt32 => {
            put_prim::<UInt32Type>(column, array, null, rows, places, path, u64::from)
        }
        DataType::UInt64 => put_prim::<UInt64Type>(column, array, null, rows, places, path, |v| v),
        DataType::Int16 => put_prim::<Int16Type>(column, array, null, rows, places, path, |v| {
            i64::from(v) as u64
        }),
        DataType::Int32 => put_prim::<Int32Type>(column, array, null, rows, places, path, |v| {
            i64::from(v) as u64
        }),
        DataType::Int64 => {
            put_prim::<Int64Type>(column, array, null, rows, places, path, |v| v as u64)
        }
        _ => Err(bad_type(path, column.name)),
    }
}

/// [`write_column`] of a primitive column converted by `raw`, null as `null`.
fn put_prim<T: ArrowPrimitiveType>(
    column: &Column,
    array: &dyn Array,
    null: u64,
    rows: &mut [Row],
    places: &[(u32, u32)],
    path: &Path,
    raw: impl Fn(T::Native) -> u64,
) -> Result<(), ArchiveError> {
    let p = array
        .as_primitive_opt::<T>()
        .ok_or_else(|| bad_type(path, column.name))?;
    let v = p.values();
    if p.null_count() == 0 {
        put(column, rows, places, |i| raw(v[i]));
    } else {
        put(column, rows, places, |i| {
            if p.is_valid(i) { raw(v[i]) } else { null }
        });
    }
    Ok(())
}

/// Stores `get(i)` into the field of `column` of `rows[s]` for each `(i, s)` of `places`
/// ([`Column::write`], one loop per field width).
#[inline]
fn put(column: &Column, rows: &mut [Row], places: &[(u32, u32)], get: impl Fn(usize) -> u64) {
    match column.size {
        1 => put_n::<1>(column.offset, rows, places, get),
        2 => put_n::<2>(column.offset, rows, places, get),
        4 => put_n::<4>(column.offset, rows, places, get),
        8 => put_n::<8>(column.offset, rows, places, get),
        _ => {
            for &(i, s) in places {
                column.write(&mut rows[s as usize].record, get(i as usize));
            }
        }
    }
}

/// [`put`] for a field of `W` bytes at `offset`: the value truncated to its width.
#[inline]
fn put_n<const W: usize>(
    offset: usize,
    rows: &mut [Row],
    places: &[(u32, u32)],
    get: impl Fn(usize) -> u64,
) {
    for &(i, s) in places {
        let raw = get(i as usize).to_ne_bytes();
        let raw = if cfg!(target_endian = "little") {
            &raw[..W]
        } else {
            &raw[8 - W..]
        };
        bytemuck::bytes_of_mut(&mut rows[s as usize].record)[offset..offset + W]
            .copy_from_slice(raw);
    }
}

/// The bus order of the window's kept rows (`keys`, in read order): `order[p]` is the key
/// index at position `p`. The same order as [`sort_bus_order`] — by `(seq, epoch, read order)`
/// within each `(segment, ring)`, rings merged by `(publish_ts, segment, ring)` — without
/// sorting when a ring's sequence numbers are dense (each ring's files are runs of one
/// sequence): each row is placed at its `seq`.
fn bus_order(keys: &[Key], order: &mut Vec<u32>, scratch: &mut Vec<u32>) {
    order.clear();
    // The rings, sorted, and each one's rows in read order.
    let mut rings: Vec<((u16, u16), Vec<u32>)> = Vec::new();
    let mut last: Option<((u16, u16), usize)> = None;
    for (k, key) in keys.iter().enumerate() {
        let ring = (key.segment, key.ring);
        let g = match last {
            Some((r, g)) if r == ring => g,
            _ => match rings.iter().position(|(r, _)| *r == ring) {
                Some(g) => g,
                None => {
                    rings.push((ring, Vec::new()));
                    rings.len() - 1
                }
            },
        };
        last = Some((ring, g));
        rings[g].1.push(k as u32);
    }
    for (_, members) in &mut rings {
        sort_ring(keys, members, scratch);
    }
    if rings.len() <= 1 {
        if let Some((_, members)) = rings.pop() {
            *order = members;
        }
        return;
    }
    rings.sort_unstable_by_key(|(r, _)| *r);
    // Merge by (publish_ts, segment, ring): take from the ring with the smallest head while it
    // stays below every other ring's head.
    let head_key = |(r, members): &((u16, u16), Vec<u32>), at: usize| {
        members
            .get(at)
            .map(|&k| (keys[k as usize].publish_ts_ns, r.0, r.1))
    };
    let mut heads = vec![0usize; rings.len()];
    order.reserve(keys.len());
    loop {
        let mut best: Option<(usize, (i64, u16, u16))> = None;
        let mut second: Option<(i64, u16, u16)> = None;
        for (g, ring) in rings.iter().enumerate() {
            let Some(key) = head_key(ring, heads[g]) else {
                continue;
            };
            match best {
                Some((_, b)) if b < key => second = Some(second.map_or(key, |s| s.min(key))),
                _ => {
                    if let Some((_, b)) = best {
                        second = Some(second.map_or(b, |s| s.min(b)));
                    }
                    best = Some((g, key));
                }
            }
        }
        let Some((g, _)) = best else { break };
        let members = &rings[g].1;
        let mut at = heads[g];
        loop {
            order.push(members[at]);
            at += 1;
            match (head_key(&rings[g], at), second) {
                (Some(next), Some(s)) if next < s => {}
                (Some(_), None) => {}
                _ => break,
            }
        }
        heads[g] = at;
    }
}

/// Puts the rows `members` of one ring (read order) in `(seq, epoch, read order)` order.
fn sort_ring(keys: &[Key], members: &mut Vec<u32>, slots: &mut Vec<u32>) {
    let seq = |k: u32| keys[k as usize].seq;
    if members
        .windows(2)
        .all(|w| (seq(w[0]), keys[w[0] as usize].epoch) <= (seq(w[1]), keys[w[1] as usize].epoch))
    {
        return;
    }
    let (min, max) = members.iter().fold((u64::MAX, 0), |(lo, hi), &k| {
        (lo.min(seq(k)), hi.max(seq(k)))
    });
    let span = max - min;
    // Dense sequence numbers: each row at its place, unless two rows share one.
    if span < 4 * members.len() as u64 + 1024 {
        slots.clear();
        slots.resize(span as usize + 1, u32::MAX);
        let mut unique = true;
        for &k in members.iter() {
            let slot = &mut slots[(seq(k) - min) as usize];
            unique &= *slot == u32::MAX;
            *slot = k;
        }
        if unique {
            members.clear();
            members.extend(slots.iter().copied().filter(|&k| k != u32::MAX));
            return;
        }
    }
    members.sort_unstable_by_key(|&k| (seq(k), keys[k as usize].epoch, k));
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
    if p.null_count() == 0 {
        return Ok(p
            .values()
            .iter()
            .map(|&v| Into::<i64>::into(v) as u64)
            .collect());
    }
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
    if p.null_count() == 0 {
        return Ok(p.values().iter().map(|&v| v.into()).collect());
    }
    Ok(p.iter().map(|v| v.map_or(null, Into::into)).collect())
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

/// Decision records of one trade session by decision number, where they were read: the rows,
/// and for each decision number − 1 the index of its row (no copy of a record: a replay at a
/// real day's rate holds millions of them).
#[derive(Debug, Default)]
pub struct DecisionsByNumber {
    rows: Vec<Row>,
    /// Row index of decision number − 1 ([`NOT_ARCHIVED`]: none).
    index: Vec<usize>,
}

/// [`DecisionsByNumber`]'s index of a decision number the archive does not hold.
const NOT_ARCHIVED: usize = usize::MAX;

impl DecisionsByNumber {
    /// One past the largest decision number − 1 held (0 when none is).
    #[must_use]
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no decision is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Decision number `i + 1`, if the archive holds it.
    #[must_use]
    pub fn get(&self, i: usize) -> Option<&Record> {
        let &row = self.index.get(i)?;
        (row != NOT_ARCHIVED).then(|| &self.rows[row].record)
    }
}

/// Decision records of `segment` by decision number (`venue_seq`), index = number − 1, for the
/// producer epoch given (or, when `None`, the first trade session: the epoch whose first
/// decision was published first), kept in `rows`. Returns them and every epoch present, in the
/// order the sessions started (an epoch's number says nothing about when it began).
#[must_use]
pub fn decisions_by_number(
    rows: WindowRows,
    segment: &str,
    epoch: Option<u64>,
) -> (DecisionsByNumber, Vec<u64>) {
    let Some(seg) = rows.segments.iter().position(|s| s == segment) else {
        return (DecisionsByNumber::default(), Vec::new());
    };
    let epochs = sessions(&rows.rows, seg);
    let Some(chosen) = epoch.or_else(|| epochs.first().copied()) else {
        return (DecisionsByNumber::default(), epochs);
    };
    // Decision number - 1 of each of the chosen session's rows; the table sized once.
    let number = |r: &Row| {
        (r.segment as usize == seg && r.epoch == chosen)
            .then(|| usize::try_from(r.record.venue_seq).ok()?.checked_sub(1))
            .flatten()
    };
    let len = rows
        .rows
        .iter()
        .filter_map(number)
        .max()
        .map_or(0, |i| i + 1);
    let mut index = vec![NOT_ARCHIVED; len];
    for (at, r) in rows.rows.iter().enumerate() {
        if let Some(i) = number(r) {
            index[i] = at;
        }
    }
    let rows = rows.rows;
    (DecisionsByNumber { rows, index }, epochs)
}

/// The producer epochs of the rows of segment `seg`, in the order their sessions started (the
/// first publish stamp of each).
fn sessions(rows: &[Row], seg: usize) -> Vec<u64> {
    let mut first_ns: BTreeMap<u64, i64> = BTreeMap::new();
    let mut note = |epoch: u64, ts: i64| {
        let first = first_ns.entry(epoch).or_insert(i64::MAX);
        *first = (*first).min(ts);
    };
    // A session's rows come in runs: the map is visited once per run, not once per row.
    let mut run: Option<(u64, i64)> = None;
    for r in rows.iter().filter(|r| r.segment as usize == seg) {
        let ts = r.record.publish_ts_ns;
        match &mut run {
            Some((epoch, first)) if *epoch == r.epoch => *first = (*first).min(ts),
            _ => {
                if let Some((epoch, first)) = run.replace((r.epoch, ts)) {
                    note(epoch, first);
                }
            }
        }
    }
    if let Some((epoch, first)) = run {
        note(epoch, first);
    }
    let mut epochs: Vec<(i64, u64)> = first_ns.into_iter().map(|(e, ts)| (ts, e)).collect();
    epochs.sort_unstable();
    epochs.into_iter().map(|(_, e)| e).collect()
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
            // Session 5's rows in two runs, the first read before session 900's.
            rows: vec![
                row(5, 2, 400),
                row(900, 1, 100),
                row(900, 2, 200),
                row(5, 1, 300),
                row(5, 3, 500),
            ],
            segments: vec!["decide".to_owned()],
        };
        let (first, epochs) = decisions_by_number(rows.clone(), "decide", None);
        assert_eq!(epochs, vec![900, 5]);
        assert_eq!(first.len(), 2);
        assert_eq!(first.get(1).map(|r| r.publish_ts_ns), Some(200));
        let (later, _) = decisions_by_number(rows, "decide", Some(5));
        assert_eq!(later.len(), 3);
        let stamps: Vec<_> = (0..4)
            .map(|i| later.get(i).map(|r| r.publish_ts_ns))
            .collect();
        assert_eq!(stamps, [Some(300), Some(400), Some(500), None]);
        // The last run counts too.
        assert_eq!(
            sessions(&[row(900, 1, 100), row(5, 1, 50)], 0),
            vec![5, 900]
        );
    }

    #[test]
    fn a_decision_number_the_archive_lacks_is_none() {
        let rows = WindowRows {
            rows: vec![row(7, 3, 30), row(7, 1, 10)],
            segments: vec!["decide".to_owned()],
        };
        let (live, _) = decisions_by_number(rows.clone(), "decide", None);
        let stamps: Vec<_> = (0..3)
            .map(|i| live.get(i).map(|r| r.publish_ts_ns))
            .collect();
        assert_eq!((live.len(), stamps), (3, vec![Some(10), None, Some(30)]));
        assert!(decisions_by_number(rows, "other", None).0.is_empty());
    }
}

#[cfg(test)]
mod bus_order_tests {
    use super::*;

    /// xorshift64*: reproducible without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    /// `bus_order` of `keys` equals [`sort_bus_order`] of the same rows in the same read order.
    fn assert_same_order(keys: &[Key]) {
        let (mut order, mut scratch) = (Vec::new(), Vec::new());
        bus_order(keys, &mut order, &mut scratch);
        let mut rows: Vec<Row> = keys
            .iter()
            .enumerate()
            .map(|(k, key)| {
                let mut record = Record::zeroed();
                record.seq = key.seq;
                record.publish_ts_ns = key.publish_ts_ns;
                record.venue_seq = k as u64;
                Row {
                    record,
                    segment: key.segment,
                    ring: key.ring,
                    epoch: key.epoch,
                }
            })
            .collect();
        sort_bus_order(&mut rows);
        let expected: Vec<u64> = rows.iter().map(|r| r.record.venue_seq).collect();
        let got: Vec<u64> = order.iter().map(|&k| u64::from(k)).collect();
        assert_eq!(got, expected, "{keys:?}");
    }

    /// Rings split into files (runs in seq order, or shuffled), files read in any order: dense
    /// and sparse sequences, repeated sequence numbers across epochs and within one, publish
    /// stamps that tie across rings and go backwards within one.
    #[test]
    fn bus_order_is_the_sorted_order() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for trial in 0..400 {
            let rings = 1 + rng.below(4) as u16;
            let mut files: Vec<Vec<Key>> = Vec::new();
            for r in 0..rings {
                let (segment, ring) = (r % 2, r / 2);
                let n = rng.below(300) as usize;
                let stride = if trial % 5 == 0 {
                    1 + rng.below(5000)
                } else {
                    1
                };
                let mut seq = rng.below(1 << 40);
                let mut ts = 1_000_000 + rng.below(1000) as i64;
                let tables = 1 + rng.below(6) as usize;
                let mut ring_files = vec![Vec::new(); tables];
                for _ in 0..n {
                    // Sometimes a sequence number again (another epoch, or the same one).
                    if rng.below(20) != 0 {
                        seq += stride;
                    }
                    ts += rng.below(4) as i64 - i64::from(rng.below(10) == 0) * 5;
                    let key = Key {
                        publish_ts_ns: ts,
                        seq,
                        epoch: rng.below(3),
                        segment,
                        ring,
                        kind: 0,
                        venue: 0,
                    };
                    ring_files[rng.below(tables as u64) as usize].push(key);
                }
                if trial % 7 == 3
                    && let Some(f) = ring_files.first_mut()
                {
                    for i in (1..f.len()).rev() {
                        f.swap(i, rng.below(i as u64 + 1) as usize);
                    }
                }
                files.extend(ring_files);
            }
            for i in (1..files.len()).rev() {
                files.swap(i, rng.below(i as u64 + 1) as usize);
            }
            let keys: Vec<Key> = files.into_iter().flatten().collect();
            assert_same_order(&keys);
        }
    }
}

#[cfg(test)]
mod prefault_tests {
    use super::{PREFAULT_MIN_BYTES, prefault};

    #[test]
    fn prefaulting_a_buffer_changes_no_byte_of_it() {
        // Written, then prefaulted as spare capacity (a buffer reused after `clear`, or a fresh
        // one whose bytes the allocator already wrote): the bytes must be the ones written.
        let words = 2 * PREFAULT_MIN_BYTES / 8 + 123;
        let mut v: Vec<u64> = (0..words as u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        // SAFETY: u64 has no drop glue and every element stays initialised: only the length
        // moves, and it is restored below before anything reads the elements.
        unsafe { v.set_len(0) };
        prefault(v.spare_capacity_mut());
        // SAFETY: the `words` elements were initialised above and prefault writes no byte (the
        // property under test; a violation shows as a wrong value, not undefined behaviour,
        // because any bit pattern is a valid u64).
        unsafe { v.set_len(words) };
        for (i, &x) in v.iter().enumerate() {
            assert_eq!(
                x,
                (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                "word {i}"
            );
        }
        // A fresh buffer (the reader's case) prefaults and then takes writes as usual.
        let mut fresh: Vec<u64> = Vec::with_capacity(words);
        prefault(fresh.spare_capacity_mut());
        fresh.extend(0..words as u64);
        assert_eq!(
            fresh.iter().sum::<u64>(),
            (words as u64 - 1) * words as u64 / 2
        );
    }
}
