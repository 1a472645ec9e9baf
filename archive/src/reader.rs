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
//! clear error.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Decimal128Type, Int32Type, TimestampNanosecondType, UInt8Type, UInt16Type, UInt32Type,
    UInt64Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use ringbolt_bus::{
    BookLevel, Decision, FeedState, FeedStatusBody, Funding, Heartbeat, IndexPrice, Liquidation,
    OrderState, OrderTransition, Record, Side, TopOfBook, Trade, Venue,
};

use crate::ArchiveError;
use crate::report::{PartFile, list_parts};
use crate::tables::{ARCHIVE_SCHEMA_VERSION, SCHEMA_VERSION_KEY, Table};

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

    #[allow(clippy::too_many_lines)]
    fn read_batch(
        &mut self,
        table: Table,
        venue: Venue,
        batch: &RecordBatch,
        path: &Path,
        keep: &dyn Fn(&str) -> bool,
        out: &mut Vec<Row>,
    ) -> Result<(), ArchiveError> {
        let n = batch.num_rows();
        let col = |name: &str| -> Result<&dyn Array, ArchiveError> {
            batch
                .column_by_name(name)
                .map(AsRef::as_ref)
                .ok_or_else(|| ArchiveError::Format {
                    path: path.to_owned(),
                    message: format!("column {name} missing"),
                })
        };
        let mut unknown = 0u64;
        let mut nulls = 0u64;
        let seg_ids: Vec<u16> = dict_map(col("segment")?, path, |s| self.segment_id(s))?;
        let ring = prim::<UInt16Type>(col("ring")?, path)?;
        let epoch = prim::<UInt64Type>(col("epoch")?, path)?;
        let seq = prim::<UInt64Type>(col("seq")?, path)?;
        let publish = ts(col("publish_ts")?, path)?;
        let recv = ts(col("recv_ts")?, path)?;
        let exch = ts(col("exchange_ts")?, path)?;
        let venue_seq = prim::<UInt64Type>(col("venue_seq")?, path)?;
        let mut inames: Vec<Option<Arc<str>>> = Vec::new();
        let ikeys: Vec<usize> = dict_map(col("instrument")?, path, |name| {
            let unregistered = name
                .strip_prefix('#')
                .is_some_and(|n| n.parse::<u32>().is_ok());
            inames.push((!unregistered).then(|| Arc::from(name)));
            inames.len() - 1
        })?;
        let iid = prim::<UInt32Type>(col("instrument_id")?, path)?;
        let stream = prim::<UInt8Type>(col("stream")?, path)?;
        let flags = prim::<UInt8Type>(col("flags")?, path)?;
        let base = out.len();
        let mut kept = Vec::with_capacity(n);
        for i in 0..n {
            let s = seg_ids[i];
            if !keep(&self.segments[s as usize]) {
                continue;
            }
            kept.push(i);
            let id = iid[i];
            let seen = &mut self.seen[s as usize];
            let first = match seen.get_mut(id as usize) {
                Some(b) => !std::mem::replace(b, true),
                None => !self.names.contains_key(&(s, id)),
            };
            if first && let Some(name) = &inames[ikeys[i]] {
                self.names
                    .entry((s, id))
                    .or_insert_with(|| (venue, Arc::clone(name)));
            }
            let mut r = Record::zeroed();
            r.seq = seq[i];
            r.publish_ts_ns = publish[i];
            r.recv_ts_ns = recv[i];
            r.exchange_ts_ns = exch[i];
            r.venue_seq = venue_seq[i];
            r.instrument = iid[i];
            r.venue = venue as u8;
            r.stream = stream[i];
            r.flags = flags[i];
            out.push(Row {
                record: r,
                segment: s,
                ring: ring[i],
                epoch: epoch[i],
            });
        }
        let rows = &mut out[base..];
        let dec = |name: &str, nulls: &mut u64| -> Result<Vec<i64>, ArchiveError> {
            let a = col(name)?;
            let d = a
                .as_primitive_opt::<Decimal128Type>()
                .ok_or_else(|| bad_type(path, name))?;
            Ok(d.iter()
                .map(|v| match v {
                    Some(v) => i64::try_from(v).unwrap_or(0),
                    None => {
                        *nulls += 1;
                        0
                    }
                })
                .collect())
        };
        // Nullable decimals where null means "0 / not given" (the archiver writes 0 as null).
        let dec0 = |name: &str| -> Result<Vec<i64>, ArchiveError> {
            let mut ignore = 0;
            dec(name, &mut ignore)
        };
        let codes = |name: &str, f: &dyn Fn(&str) -> Option<u8>, unknown: &mut u64| {
            dict_map(col(name)?, path, f).map(|v| {
                v.into_iter()
                    .map(|c| {
                        c.unwrap_or_else(|| {
                            *unknown += 1;
                            0
                        })
                    })
                    .collect::<Vec<u8>>()
            })
        };
        let side = |s: &str| code_of(s, Side::ALL.iter().map(|x| (x.as_str(), *x as u8)));
        macro_rules! fill {
            ($body:expr) => {
                for (row, &i) in rows.iter_mut().zip(&kept) {
                    let body = ($body)(i);
                    row.record.set_body(&body);
                }
            };
        }
        match table {
            Table::Trades => {
                let (price, size) = (dec("price", &mut nulls)?, dec("size", &mut nulls)?);
                let tid = prim::<UInt64Type>(col("trade_id")?, path)?;
                let sd = codes("side", &side, &mut unknown)?;
                fill!(|i: usize| Trade {
                    price: price[i],
                    size: size[i],
                    trade_id: tid[i],
                    side: sd[i],
                    reserved: [0; 55],
                });
            }
            Table::BookChanges => {
                let (price, size) = (dec("price", &mut nulls)?, dec("size", &mut nulls)?);
                let sd = codes("side", &side, &mut unknown)?;
                fill!(|i: usize| BookLevel {
                    price: price[i],
                    size: size[i],
                    side: sd[i],
                    reserved: [0; 63],
                });
            }
            Table::Tops => {
                let (bp, bs, ap, az) = (
                    dec0("bid_price")?,
                    dec("bid_size", &mut nulls)?,
                    dec0("ask_price")?,
                    dec("ask_size", &mut nulls)?,
                );
                fill!(|i: usize| TopOfBook {
                    bid_price: bp[i],
                    bid_size: bs[i],
                    ask_price: ap[i],
                    ask_size: az[i],
                    reserved: [0; 48],
                });
            }
            Table::IndexPrices => {
                let e18 = col("value_e18")?
                    .as_primitive_opt::<Decimal128Type>()
                    .ok_or_else(|| bad_type(path, "value_e18"))?
                    .iter()
                    .map(|v| v.unwrap_or(0))
                    .collect::<Vec<i128>>();
                let price = dec("price", &mut nulls)?;
                let pt = codes(
                    "price_type",
                    &|s| match s {
                        "unknown" => Some(0),
                        "index" => Some(1),
                        "mark" => Some(2),
                        "twap" => Some(3),
                        other => other.strip_prefix("unknown_").and_then(|c| c.parse().ok()),
                    },
                    &mut unknown,
                )?;
                fill!(|i: usize| IndexPrice {
                    value_e18: e18[i],
                    price: price[i],
                    price_type: pt[i],
                    reserved: [0; 55],
                });
            }
            Table::Funding => {
                let rate = dec("rate", &mut nulls)?;
                let next = ts(col("next_funding_ts")?, path)?;
                let mark = dec0("mark_price")?;
                fill!(|i: usize| Funding {
                    rate: rate[i],
                    next_funding_ts_ns: next[i],
                    mark_price: mark[i],
                    reserved: [0; 56],
                });
            }
            Table::Liquidations => {
                let (price, size) = (dec("price", &mut nulls)?, dec("size", &mut nulls)?);
                let sd = codes("side", &side, &mut unknown)?;
                fill!(|i: usize| Liquidation {
                    price: price[i],
                    size: size[i],
                    side: sd[i],
                    reserved: [0; 63],
                });
            }
            Table::FeedStatus => {
                let st = codes(
                    "state",
                    &|s| code_of(s, FeedState::ALL.iter().map(|x| (x.as_str(), *x as u8))),
                    &mut unknown,
                )?;
                let u = |name: &str| prim::<UInt64Type>(col(name)?, path);
                let (m, g, gr, rc, rs, pe) = (
                    u("messages")?,
                    u("gaps")?,
                    u("gap_records")?,
                    u("reconnects")?,
                    u("resyncs")?,
                    u("parse_errors")?,
                );
                fill!(|i: usize| FeedStatusBody {
                    messages: m[i],
                    gaps: g[i],
                    gap_records: gr[i],
                    reconnects: rc[i],
                    resyncs: rs[i],
                    parse_errors: pe[i],
                    state: st[i],
                    reserved: [0; 31],
                });
            }
            Table::Decisions => {
                let u = |name: &str| prim::<UInt64Type>(col(name)?, path);
                let (ts_, bs, rs) = (u("trigger_seq")?, u("book_seq")?, u("reference_seq")?);
                let prob = dec("probability", &mut nulls)?;
                let edge = dec("edge", &mut nulls)?;
                let price = dec("price", &mut nulls)?;
                let size = dec("size", &mut nulls)?;
                let coid = prim::<UInt64Type>(col("client_order_id")?, path)?;
                let hash = prim::<UInt32Type>(col("feature_schema_hash")?, path)?;
                let slot = col("slot")?
                    .as_primitive_opt::<UInt16Type>()
                    .ok_or_else(|| bad_type(path, "slot"))?
                    .iter()
                    .map(|v| v.unwrap_or(u16::MAX))
                    .collect::<Vec<u16>>();
                let fired = col("fired")?
                    .as_boolean_opt()
                    .ok_or_else(|| bad_type(path, "fired"))?
                    .iter()
                    .map(|v| u8::from(v.unwrap_or(false)))
                    .collect::<Vec<u8>>();
                let reason = prim::<UInt8Type>(col("reason")?, path)?;
                let sd = codes("side", &side, &mut unknown)?;
                let oc = codes(
                    "outcome",
                    &|s| match s {
                        "up" => Some(0),
                        "down" => Some(1),
                        _ => None,
                    },
                    &mut unknown,
                )?;
                fill!(|i: usize| Decision {
                    trigger_seq: ts_[i],
                    book_seq: bs[i],
                    reference_seq: rs[i],
                    probability: prob[i],
                    edge: edge[i],
                    price: price[i],
                    size: size[i],
                    client_order_id: coid[i],
                    feature_schema_hash: hash[i],
                    slot: slot[i],
                    fired: fired[i],
                    reason: reason[i],
                    side: sd[i],
                    outcome: oc[i],
                    reserved: [0; 6],
                });
            }
            Table::OrderTransitions => {
                let coid = prim::<UInt64Type>(col("client_order_id")?, path)?;
                let price = dec("price", &mut nulls)?;
                let size = dec("size", &mut nulls)?;
                let filled = dec("filled", &mut nulls)?;
                let voi_col = col("venue_order_id")?;
                let voi = voi_col
                    .as_fixed_size_binary_opt()
                    .ok_or_else(|| bad_type(path, "venue_order_id"))?;
                let voi: Vec<[u8; 16]> = (0..voi.len())
                    .map(|i| {
                        if voi.is_null(i) {
                            [0; 16]
                        } else {
                            voi.value(i).try_into().unwrap_or([0; 16])
                        }
                    })
                    .collect();
                let ec = prim::<UInt16Type>(col("error_class")?, path)?;
                let http = col("http_status")?
                    .as_primitive_opt::<UInt16Type>()
                    .ok_or_else(|| bad_type(path, "http_status"))?
                    .iter()
                    .map(|v| v.unwrap_or(0))
                    .collect::<Vec<u16>>();
                let state =
                    |s: &str| code_of(s, OrderState::ALL.iter().map(|x| (x.as_str(), *x as u8)));
                let from = codes("from_state", &state, &mut unknown)?;
                let to = codes("to_state", &state, &mut unknown)?;
                let sd = codes("side", &side, &mut unknown)?;
                let paper = col("paper")?
                    .as_boolean_opt()
                    .ok_or_else(|| bad_type(path, "paper"))?
                    .iter()
                    .map(|v| u8::from(v.unwrap_or(false)))
                    .collect::<Vec<u8>>();
                fill!(|i: usize| OrderTransition {
                    client_order_id: coid[i],
                    price: price[i],
                    size: size[i],
                    filled: filled[i],
                    venue_order_id: voi[i],
                    error_class: ec[i],
                    http_status: http[i],
                    from_state: from[i],
                    to_state: to[i],
                    side: sd[i],
                    paper: paper[i],
                    reserved: [0; 24],
                });
            }
            Table::CollectorHeartbeat => {
                let pid = prim::<UInt32Type>(col("pid")?, path)?;
                let role = codes(
                    "role",
                    &|s| match s {
                        "feeds" => Some(1),
                        "trade" => Some(2),
                        "archive" => Some(3),
                        other => other.strip_prefix("role_").and_then(|c| c.parse().ok()),
                    },
                    &mut unknown,
                )?;
                let published = prim::<UInt64Type>(col("published")?, path)?;
                fill!(|i: usize| Heartbeat {
                    pid: pid[i],
                    role: u32::from(role[i]),
                    published: published[i],
                    reserved: [0; 64],
                });
            }
            Table::Gaps => {}
        }
        self.stats.rows += kept.len() as u64;
        self.stats.null_values += nulls;
        self.stats.unknown_names += unknown;
        Ok(())
    }
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

fn code_of<'a>(s: &str, mut all: impl Iterator<Item = (&'a str, u8)>) -> Option<u8> {
    all.find(|(n, _)| *n == s)
        .map(|(_, c)| c)
        .or_else(|| s.strip_prefix("unknown_").and_then(|c| c.parse().ok()))
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

fn ts(a: &dyn Array, path: &Path) -> Result<Vec<i64>, ArchiveError> {
    prim::<TimestampNanosecondType>(a, path)
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
/// producer epoch given (or, when `None`, the first epoch found). Returns the vector and every
/// epoch present.
#[must_use]
pub fn decisions_by_number(
    rows: &WindowRows,
    segment: &str,
    epoch: Option<u64>,
) -> (Vec<Option<Record>>, Vec<u64>) {
    let Some(seg) = rows.segments.iter().position(|s| s == segment) else {
        return (Vec::new(), Vec::new());
    };
    let epochs: BTreeMap<u64, ()> = rows
        .rows
        .iter()
        .filter(|r| r.segment as usize == seg)
        .map(|r| (r.epoch, ()))
        .collect();
    let epochs: Vec<u64> = epochs.into_keys().collect();
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
