//! The archive's tables: which bus record kind goes where, each table's Arrow schema, and the
//! conversion of a run of bus records into an Arrow [`RecordBatch`].
//!
//! Every record table starts with the same provenance columns (`segment`, `ring`, `epoch`, `seq`)
//! so a replay can reproduce bus order exactly, then the header's timestamps as
//! `TIMESTAMP(NANOS, UTC)` (0 = not provided becomes null), the instrument name resolved from the
//! segment's instrument table (dictionary-encoded), and the typed body columns. Prices, sizes,
//! rates and probabilities are exact decimals (`DECIMAL(18, s)`, stored as INT64 in Parquet, with
//! the bus scale as `s`); Chainlink's full-accuracy value is `DECIMAL(38, 18)`.
//!
//! `venue`, `date` and `window` are Hive partition columns (in the path), not file columns.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, FixedSizeBinaryBuilder, PrimitiveBuilder, StringBuilder,
};
use arrow_array::types::{Decimal128Type, Int32Type, UInt16Type};
use arrow_array::{
    ArrayRef, BooleanArray, Decimal128Array, DictionaryArray, Int32Array, RecordBatch, StringArray,
    TimestampNanosecondArray, UInt8Array, UInt16Array, UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use ringbolt_bus::{
    BookLevel, Decision, FeedState, FeedStatusBody, Funding, Heartbeat, IndexPrice, Liquidation,
    OrderState, OrderTransition, Record, RecordKind, Side, TopOfBook, Trade,
};

/// Version of the archive's table schemas, written in every file's metadata under
/// [`SCHEMA_VERSION_KEY`]. History: 1 (no key) = first release; 2 = `instrument_id` (the bus
/// instrument id, needed to rebuild records exactly for `ringbolt replay`) and `price_type`
/// codes other than 0-3 kept as `unknown_<code>`.
pub const ARCHIVE_SCHEMA_VERSION: u32 = 2;
/// Parquet key-value metadata key holding [`ARCHIVE_SCHEMA_VERSION`].
pub const SCHEMA_VERSION_KEY: &str = "ringbolt.archive_schema_version";

/// Largest magnitude a `DECIMAL(18, s)` holds (exclusive).
pub const DECIMAL18_LIMIT: i64 = 1_000_000_000_000_000_000;

/// An archive table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Trade prints.
    Trades,
    /// Book level changes (with batch flags).
    BookChanges,
    /// Best bid/offer.
    Tops,
    /// Index, oracle and mark prices.
    IndexPrices,
    /// Funding rates.
    Funding,
    /// Liquidations.
    Liquidations,
    /// Feed state changes and counters.
    FeedStatus,
    /// Decision-core decisions.
    Decisions,
    /// Order state-machine transitions.
    OrderTransitions,
    /// Process heartbeats (bus heartbeats and the archiver's own, one per window at least).
    CollectorHeartbeat,
    /// Records the archive is missing, with exact counts, and records it kept with bad values.
    Gaps,
}

impl Table {
    /// Every table.
    pub const ALL: [Table; 11] = [
        Table::Trades,
        Table::BookChanges,
        Table::Tops,
        Table::IndexPrices,
        Table::Funding,
        Table::Liquidations,
        Table::FeedStatus,
        Table::Decisions,
        Table::OrderTransitions,
        Table::CollectorHeartbeat,
        Table::Gaps,
    ];

    /// The table's directory name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Table::Trades => "trades",
            Table::BookChanges => "book_changes",
            Table::Tops => "tops",
            Table::IndexPrices => "index_prices",
            Table::Funding => "funding",
            Table::Liquidations => "liquidations",
            Table::FeedStatus => "feed_status",
            Table::Decisions => "decisions",
            Table::OrderTransitions => "order_transitions",
            Table::CollectorHeartbeat => "collector_heartbeat",
            Table::Gaps => "gaps",
        }
    }

    /// The table with this directory name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The table a bus record kind is archived in; `None` for `Empty`.
    #[must_use]
    pub const fn for_kind(kind: RecordKind) -> Option<Table> {
        Some(match kind {
            RecordKind::Empty => return None,
            RecordKind::Trade => Table::Trades,
            RecordKind::BookLevel => Table::BookChanges,
            RecordKind::TopOfBook => Table::Tops,
            RecordKind::IndexPrice => Table::IndexPrices,
            RecordKind::Funding => Table::Funding,
            RecordKind::Liquidation => Table::Liquidations,
            RecordKind::FeedStatus => Table::FeedStatus,
            RecordKind::Decision => Table::Decisions,
            RecordKind::OrderTransition => Table::OrderTransitions,
            RecordKind::Heartbeat => Table::CollectorHeartbeat,
        })
    }

    /// Whether the table holds market events (the ≤ 16 B/record target applies to these).
    #[must_use]
    pub const fn is_market(self) -> bool {
        matches!(
            self,
            Table::Trades
                | Table::BookChanges
                | Table::Tops
                | Table::IndexPrices
                | Table::Funding
                | Table::Liquidations
        )
    }

    /// Columns that are (nearly) monotone integers: written with DELTA_BINARY_PACKED, no dictionary.
    #[must_use]
    pub fn delta_columns(self) -> &'static [&'static str] {
        match self {
            Table::Gaps => &["ts"],
            _ => &["seq", "publish_ts", "recv_ts", "exchange_ts", "venue_seq"],
        }
    }

    /// The table's Arrow schema (with the fixed-point scales in the schema metadata).
    #[must_use]
    pub fn schema(self) -> SchemaRef {
        let mut fields = if self == Table::Gaps {
            vec![
                Field::new("ts", ts_type(), false),
                Field::new("segment", dict_type(), false),
                Field::new("ring", DataType::UInt16, false),
                Field::new("epoch", DataType::UInt64, false),
                Field::new("kind", dict_type(), false),
                Field::new("from_seq", DataType::UInt64, true),
                Field::new("count", DataType::UInt64, false),
                Field::new("detail", DataType::Utf8, true),
            ]
        } else {
            vec![
                Field::new("segment", dict_type(), false),
                Field::new("ring", DataType::UInt16, false),
                Field::new("epoch", DataType::UInt64, false),
                Field::new("seq", DataType::UInt64, false),
                Field::new("publish_ts", ts_type(), false),
                Field::new("recv_ts", ts_type(), true),
                Field::new("exchange_ts", ts_type(), true),
                Field::new("venue_seq", DataType::UInt64, true),
                Field::new("instrument", dict_type(), false),
                Field::new("instrument_id", DataType::UInt32, false),
                Field::new("stream", DataType::UInt8, false),
                Field::new("flags", DataType::UInt8, false),
            ]
        };
        let dec = |name: &str, scale: i8, nullable: bool| {
            Field::new(name, DataType::Decimal128(18, scale), nullable)
        };
        match self {
            Table::Trades => fields.extend([
                dec("price", 8, true),
                dec("size", 8, true),
                Field::new("trade_id", DataType::UInt64, true),
                Field::new("side", dict_type(), false),
            ]),
            Table::BookChanges => fields.extend([
                dec("price", 8, true),
                dec("size", 8, true),
                Field::new("side", dict_type(), false),
                Field::new("batch_begin", DataType::Boolean, false),
                Field::new("batch_end", DataType::Boolean, false),
                Field::new("snapshot", DataType::Boolean, false),
            ]),
            Table::Tops => fields.extend([
                dec("bid_price", 8, true),
                dec("bid_size", 8, true),
                dec("ask_price", 8, true),
                dec("ask_size", 8, true),
            ]),
            Table::IndexPrices => fields.extend([
                Field::new("value_e18", DataType::Decimal128(38, 18), true),
                dec("price", 8, true),
                Field::new("price_type", dict_type(), false),
            ]),
            Table::Funding => fields.extend([
                dec("rate", 12, true),
                Field::new("next_funding_ts", ts_type(), true),
                dec("mark_price", 8, true),
            ]),
            Table::Liquidations => fields.extend([
                dec("price", 8, true),
                dec("size", 8, true),
                Field::new("side", dict_type(), false),
            ]),
            Table::FeedStatus => fields.extend([
                Field::new("state", dict_type(), false),
                Field::new("messages", DataType::UInt64, false),
                Field::new("gaps", DataType::UInt64, false),
                Field::new("gap_records", DataType::UInt64, false),
                Field::new("reconnects", DataType::UInt64, false),
                Field::new("resyncs", DataType::UInt64, false),
                Field::new("parse_errors", DataType::UInt64, false),
            ]),
            Table::Decisions => fields.extend([
                Field::new("trigger_seq", DataType::UInt64, false),
                Field::new("book_seq", DataType::UInt64, false),
                Field::new("reference_seq", DataType::UInt64, false),
                dec("probability", 9, true),
                dec("edge", 8, true),
                dec("price", 8, true),
                dec("size", 8, true),
                Field::new("client_order_id", DataType::UInt64, true),
                Field::new("feature_schema_hash", DataType::UInt32, false),
                Field::new("slot", DataType::UInt16, true),
                Field::new("fired", DataType::Boolean, false),
                Field::new("reason", DataType::UInt8, false),
                Field::new("side", dict_type(), false),
                Field::new("outcome", dict_type(), false),
            ]),
            Table::OrderTransitions => fields.extend([
                Field::new("client_order_id", DataType::UInt64, false),
                dec("price", 8, true),
                dec("size", 8, true),
                dec("filled", 8, true),
                Field::new("venue_order_id", DataType::FixedSizeBinary(16), true),
                Field::new("error_class", DataType::UInt16, false),
                Field::new("http_status", DataType::UInt16, true),
                Field::new("from_state", dict_type(), false),
                Field::new("to_state", dict_type(), false),
                Field::new("side", dict_type(), false),
                Field::new("paper", DataType::Boolean, false),
            ]),
            Table::CollectorHeartbeat => fields.extend([
                Field::new("pid", DataType::UInt32, false),
                Field::new("role", dict_type(), false),
                Field::new("published", DataType::UInt64, false),
            ]),
            Table::Gaps => {}
        }
        let metadata = [
            ("ringbolt.table".to_owned(), self.name().to_owned()),
            (
                "ringbolt.decimal_scales".to_owned(),
                "price/size/mark_price/edge/filled: 8 (bus PRICE_SCALE/SIZE_SCALE 1e8); \
                 rate: 12 (RATE_SCALE); probability: 9 (PROB_SCALE); value_e18: 18"
                    .to_owned(),
            ),
            (
                "ringbolt.partitioning".to_owned(),
                "<table>/date=YYYY-MM-DD/venue=<v>/window=<HHMM>, from publish_ts (UTC)".to_owned(),
            ),
            (
                "ringbolt.bus_layout_version".to_owned(),
                ringbolt_bus::LAYOUT_VERSION.to_string(),
            ),
            (
                SCHEMA_VERSION_KEY.to_owned(),
                ARCHIVE_SCHEMA_VERSION.to_string(),
            ),
        ];
        Arc::new(
            Schema::new(fields).with_metadata(
                metadata
                    .into_iter()
                    .collect::<std::collections::HashMap<String, String>>(),
            ),
        )
    }
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

fn dict_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// Where a run of records came from: one ring of one segment in one epoch.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Source {
    /// Segment name (`archiver` for the archiver's own heartbeat rows).
    pub segment: String,
    /// Ring index.
    pub ring: u16,
    /// Producer epoch.
    pub epoch: u64,
}

/// A row of the `gaps` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GapRow {
    /// When the archiver noticed (ns since the Unix epoch).
    pub ts_ns: i64,
    /// Segment name.
    pub segment: String,
    /// Ring.
    pub ring: u16,
    /// Epoch the loss happened in (the old epoch for a producer restart).
    pub epoch: u64,
    /// What happened (see [`GapKind`]).
    pub kind: GapKind,
    /// First missing sequence when known.
    pub from_seq: Option<u64>,
    /// Exact number of records affected.
    pub count: u64,
    /// Free-text detail.
    pub detail: Option<String>,
}

/// Why records are missing (or damaged).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GapKind {
    /// The archiver fell more than a ring behind (`Poll::Lost`).
    Overrun,
    /// The producer restarted; old-epoch records it published were never read.
    ProducerRestart,
    /// While the archiver was down the ring moved past its last durable position.
    ArchiverRestart,
    /// Records with an unknown kind or venue byte: skipped.
    BadRecord,
    /// Records kept, but a value did not fit its decimal column and was written as null.
    BadValue,
    /// The segment was retired and reopened; the count of records in between is unknown (0).
    SegmentRetired,
}

impl GapKind {
    /// The stable name written in the `kind` column.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            GapKind::Overrun => "overrun",
            GapKind::ProducerRestart => "producer_restart",
            GapKind::ArchiverRestart => "archiver_restart",
            GapKind::BadRecord => "bad_record",
            GapKind::BadValue => "bad_value",
            GapKind::SegmentRetired => "segment_retired",
        }
    }

    /// Whether `count` records are missing from the archive (as opposed to kept with a null).
    #[must_use]
    pub const fn is_loss(self) -> bool {
        !matches!(self, GapKind::BadValue)
    }
}

/// Resolves instrument ids to names (the segment's table, cached by the caller).
pub trait InstrumentNames {
    /// The name of instrument `id`.
    fn name(&mut self, id: u32) -> Arc<str>;
}

fn dict_single(value: &str, len: usize) -> ArrayRef {
    let keys = Int32Array::from(vec![0; len]);
    let values: ArrayRef = Arc::new(StringArray::from(vec![value]));
    Arc::new(DictionaryArray::<Int32Type>::new(keys, values))
}

/// A dictionary column built from small codes (e.g. side bytes) with fixed names.
fn dict_codes(codes: impl Iterator<Item = u8>, name: impl Fn(u8) -> String) -> ArrayRef {
    let mut slot_of = [i32::MIN; 256];
    let mut values: Vec<String> = Vec::new();
    let keys: Vec<i32> = codes
        .map(|c| {
            if slot_of[c as usize] == i32::MIN {
                slot_of[c as usize] = values.len() as i32;
                values.push(name(c));
            }
            slot_of[c as usize]
        })
        .collect();
    Arc::new(DictionaryArray::<Int32Type>::new(
        Int32Array::from(keys),
        Arc::new(StringArray::from(values)),
    ))
}

fn ts_col(values: impl Iterator<Item = i64>, zero_is_null: bool) -> ArrayRef {
    let array: TimestampNanosecondArray = if zero_is_null {
        values.map(|v| (v != 0).then_some(v)).collect()
    } else {
        values.map(Some).collect()
    };
    Arc::new(array.with_timezone("UTC"))
}

/// Counts values that do not fit their decimal column.
#[derive(Debug, Default)]
struct Range {
    bad: u64,
}

impl Range {
    fn dec(
        &mut self,
        values: impl Iterator<Item = i64>,
        scale: i8,
        zero_is_null: bool,
    ) -> ArrayRef {
        let mut b = PrimitiveBuilder::<Decimal128Type>::new();
        for v in values {
            if zero_is_null && v == 0 {
                b.append_null();
            } else if v.unsigned_abs() >= DECIMAL18_LIMIT as u64 {
                self.bad += 1;
                b.append_null();
            } else {
                b.append_value(i128::from(v));
            }
        }
        // Precision 18 with scale ≤ 18 is always valid.
        Arc::new(
            b.finish()
                .with_precision_and_scale(18, scale)
                .unwrap_or_else(|_| Decimal128Array::from(Vec::<i128>::new())),
        )
    }
}

fn side_name(c: u8) -> String {
    Side::from_u8(c).map_or_else(|| format!("unknown_{c}"), |s| s.as_str().to_owned())
}

/// Builds the batch of a record table from records of one source, in bus order.
///
/// Returns the batch and the number of values that did not fit their decimal column (written as
/// null). `records` must all be of `table`'s kind (others are the caller's bug and are skipped
/// by construction of the buffers).
///
/// # Errors
/// Arrow errors (a schema mismatch would be a bug).
pub fn build_batch(
    table: Table,
    source: &Source,
    records: &[Record],
    names: &mut dyn InstrumentNames,
) -> Result<(RecordBatch, u64), arrow_schema::ArrowError> {
    let n = records.len();
    let mut range = Range::default();
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(32);
    cols.push(dict_single(&source.segment, n));
    cols.push(Arc::new(UInt16Array::from(vec![source.ring; n])));
    cols.push(Arc::new(UInt64Array::from(vec![source.epoch; n])));
    cols.push(Arc::new(
        records.iter().map(|r| r.seq).collect::<UInt64Array>(),
    ));
    cols.push(ts_col(records.iter().map(|r| r.publish_ts_ns), false));
    cols.push(ts_col(records.iter().map(|r| r.recv_ts_ns), true));
    cols.push(ts_col(records.iter().map(|r| r.exchange_ts_ns), true));
    cols.push(Arc::new(
        records
            .iter()
            .map(|r| (r.venue_seq != 0).then_some(r.venue_seq))
            .collect::<UInt64Array>(),
    ));
    // Instrument: dictionary keyed by first appearance of each id in this batch.
    {
        let mut ids: Vec<u32> = Vec::new();
        let mut keys = Vec::with_capacity(n);
        let mut values = StringBuilder::new();
        for r in records {
            let key = match ids.iter().position(|&id| id == r.instrument) {
                Some(k) => k,
                None => {
                    ids.push(r.instrument);
                    values.append_value(names.name(r.instrument));
                    ids.len() - 1
                }
            };
            keys.push(key as i32);
        }
        cols.push(Arc::new(DictionaryArray::<Int32Type>::try_new(
            Int32Array::from(keys),
            Arc::new(values.finish()),
        )?));
    }
    cols.push(Arc::new(
        records
            .iter()
            .map(|r| r.instrument)
            .collect::<UInt32Array>(),
    ));
    cols.push(Arc::new(
        records.iter().map(|r| r.stream).collect::<UInt8Array>(),
    ));
    cols.push(Arc::new(
        records.iter().map(|r| r.flags).collect::<UInt8Array>(),
    ));

    fn bodies<B: ringbolt_bus::Body>(records: &[Record]) -> Vec<B> {
        records.iter().filter_map(Record::body_as::<B>).collect()
    }
    match table {
        Table::Trades => {
            let b = bodies::<Trade>(records);
            cols.push(range.dec(b.iter().map(|x| x.price), 8, false));
            cols.push(range.dec(b.iter().map(|x| x.size), 8, false));
            cols.push(Arc::new(
                b.iter()
                    .map(|x| (x.trade_id != 0).then_some(x.trade_id))
                    .collect::<UInt64Array>(),
            ));
            cols.push(dict_codes(b.iter().map(|x| x.side), side_name));
        }
        Table::BookChanges => {
            let b = bodies::<BookLevel>(records);
            cols.push(range.dec(b.iter().map(|x| x.price), 8, false));
            cols.push(range.dec(b.iter().map(|x| x.size), 8, false));
            cols.push(dict_codes(b.iter().map(|x| x.side), side_name));
            for flag in [
                ringbolt_bus::FLAG_BATCH_BEGIN,
                ringbolt_bus::FLAG_BATCH_END,
                ringbolt_bus::FLAG_SNAPSHOT,
            ] {
                cols.push(Arc::new(
                    records
                        .iter()
                        .map(|r| Some(r.flags & flag != 0))
                        .collect::<BooleanArray>(),
                ));
            }
        }
        Table::Tops => {
            let b = bodies::<TopOfBook>(records);
            cols.push(range.dec(b.iter().map(|x| x.bid_price), 8, true));
            cols.push(range.dec(b.iter().map(|x| x.bid_size), 8, false));
            cols.push(range.dec(b.iter().map(|x| x.ask_price), 8, true));
            cols.push(range.dec(b.iter().map(|x| x.ask_size), 8, false));
        }
        Table::IndexPrices => {
            let b = bodies::<IndexPrice>(records);
            let mut e18 = PrimitiveBuilder::<Decimal128Type>::new();
            for x in &b {
                if x.value_e18 == 0 {
                    e18.append_null();
                } else {
                    e18.append_value(x.value_e18);
                }
            }
            cols.push(Arc::new(e18.finish().with_precision_and_scale(38, 18)?));
            cols.push(range.dec(b.iter().map(|x| x.price), 8, false));
            cols.push(dict_codes(b.iter().map(|x| x.price_type), price_type_name));
        }
        Table::Funding => {
            let b = bodies::<Funding>(records);
            cols.push(range.dec(b.iter().map(|x| x.rate), 12, false));
            cols.push(ts_col(b.iter().map(|x| x.next_funding_ts_ns), true));
            cols.push(range.dec(b.iter().map(|x| x.mark_price), 8, true));
        }
        Table::Liquidations => {
            let b = bodies::<Liquidation>(records);
            cols.push(range.dec(b.iter().map(|x| x.price), 8, false));
            cols.push(range.dec(b.iter().map(|x| x.size), 8, false));
            cols.push(dict_codes(b.iter().map(|x| x.side), side_name));
        }
        Table::FeedStatus => {
            let b = bodies::<FeedStatusBody>(records);
            cols.push(dict_codes(b.iter().map(|x| x.state), |c| {
                FeedState::from_u8(c)
                    .map_or_else(|| format!("unknown_{c}"), |s| s.as_str().to_owned())
            }));
            let u = |f: fn(&FeedStatusBody) -> u64| -> ArrayRef {
                Arc::new(
                    b.iter()
                        .map(f)
                        .collect::<Vec<u64>>()
                        .into_iter()
                        .map(Some)
                        .collect::<UInt64Array>(),
                )
            };
            cols.push(u(|x| x.messages));
            cols.push(u(|x| x.gaps));
            cols.push(u(|x| x.gap_records));
            cols.push(u(|x| x.reconnects));
            cols.push(u(|x| x.resyncs));
            cols.push(u(|x| x.parse_errors));
        }
        Table::Decisions => {
            let b = bodies::<Decision>(records);
            let u = |f: fn(&Decision) -> u64| -> ArrayRef {
                Arc::new(b.iter().map(|x| Some(f(x))).collect::<UInt64Array>())
            };
            cols.push(u(|x| x.trigger_seq));
            cols.push(u(|x| x.book_seq));
            cols.push(u(|x| x.reference_seq));
            cols.push(range.dec(b.iter().map(|x| x.probability), 9, false));
            cols.push(range.dec(b.iter().map(|x| x.edge), 8, false));
            cols.push(range.dec(b.iter().map(|x| x.price), 8, false));
            cols.push(range.dec(b.iter().map(|x| x.size), 8, false));
            cols.push(Arc::new(
                b.iter()
                    .map(|x| (x.client_order_id != 0).then_some(x.client_order_id))
                    .collect::<UInt64Array>(),
            ));
            cols.push(Arc::new(
                b.iter()
                    .map(|x| Some(x.feature_schema_hash))
                    .collect::<UInt32Array>(),
            ));
            let mut slot = PrimitiveBuilder::<UInt16Type>::new();
            for x in &b {
                slot.append_option((x.slot != u16::MAX).then_some(x.slot));
            }
            cols.push(Arc::new(slot.finish()));
            let mut fired = BooleanBuilder::new();
            for x in &b {
                fired.append_value(x.fired != 0);
            }
            cols.push(Arc::new(fired.finish()));
            cols.push(Arc::new(
                b.iter().map(|x| Some(x.reason)).collect::<UInt8Array>(),
            ));
            cols.push(dict_codes(b.iter().map(|x| x.side), side_name));
            cols.push(dict_codes(b.iter().map(|x| x.outcome), |c| {
                match c {
                    0 => "up",
                    1 => "down",
                    _ => "unknown",
                }
                .to_owned()
            }));
        }
        Table::OrderTransitions => {
            let b = bodies::<OrderTransition>(records);
            cols.push(Arc::new(
                b.iter()
                    .map(|x| Some(x.client_order_id))
                    .collect::<UInt64Array>(),
            ));
            cols.push(range.dec(b.iter().map(|x| x.price), 8, false));
            cols.push(range.dec(b.iter().map(|x| x.size), 8, false));
            cols.push(range.dec(b.iter().map(|x| x.filled), 8, false));
            let mut voi = FixedSizeBinaryBuilder::with_capacity(b.len(), 16);
            for x in &b {
                if x.venue_order_id == [0; 16] {
                    voi.append_null();
                } else {
                    voi.append_value(x.venue_order_id)?;
                }
            }
            cols.push(Arc::new(voi.finish()));
            cols.push(Arc::new(
                b.iter()
                    .map(|x| Some(x.error_class))
                    .collect::<UInt16Array>(),
            ));
            cols.push(Arc::new(
                b.iter()
                    .map(|x| (x.http_status != 0).then_some(x.http_status))
                    .collect::<UInt16Array>(),
            ));
            let state = |c: u8| {
                OrderState::from_u8(c)
                    .map_or_else(|| format!("unknown_{c}"), |s| s.as_str().to_owned())
            };
            cols.push(dict_codes(b.iter().map(|x| x.from_state), state));
            cols.push(dict_codes(b.iter().map(|x| x.to_state), state));
            cols.push(dict_codes(b.iter().map(|x| x.side), side_name));
            cols.push(Arc::new(
                b.iter()
                    .map(|x| Some(x.paper != 0))
                    .collect::<BooleanArray>(),
            ));
        }
        Table::CollectorHeartbeat => {
            let b = bodies::<Heartbeat>(records);
            cols.push(Arc::new(
                b.iter().map(|x| Some(x.pid)).collect::<UInt32Array>(),
            ));
            cols.push(dict_codes(
                b.iter().map(|x| u8::try_from(x.role).unwrap_or(0)),
                role_name,
            ));
            cols.push(Arc::new(
                b.iter().map(|x| Some(x.published)).collect::<UInt64Array>(),
            ));
        }
        Table::Gaps => {
            return Err(arrow_schema::ArrowError::InvalidArgumentError(
                "gaps rows are built with build_gaps_batch".to_owned(),
            ));
        }
    }
    let batch = RecordBatch::try_new(table.schema(), cols)?;
    Ok((batch, range.bad))
}

/// The name of an `IndexPrice.price_type` code (`unknown` = 0, not given).
#[must_use]
pub fn price_type_name(code: u8) -> String {
    match code {
        0 => "unknown".to_owned(),
        1 => "index".to_owned(),
        2 => "mark".to_owned(),
        3 => "twap".to_owned(),
        other => format!("unknown_{other}"),
    }
}

/// The name of a heartbeat role code.
#[must_use]
pub fn role_name(code: u8) -> String {
    match code {
        1 => "feeds".to_owned(),
        2 => "trade".to_owned(),
        3 => "archive".to_owned(),
        other => format!("role_{other}"),
    }
}

/// Builds the `gaps` batch.
///
/// # Errors
/// Arrow errors (a schema mismatch would be a bug).
pub fn build_gaps_batch(rows: &[GapRow]) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let strings = |f: &dyn Fn(&GapRow) -> &str| -> Result<ArrayRef, arrow_schema::ArrowError> {
        let values: Vec<&str> = rows.iter().map(f).collect();
        let array: DictionaryArray<Int32Type> = values.into_iter().collect();
        Ok(Arc::new(array))
    };
    let cols: Vec<ArrayRef> = vec![
        ts_col(rows.iter().map(|g| g.ts_ns), false),
        strings(&|g| g.segment.as_str())?,
        Arc::new(rows.iter().map(|g| Some(g.ring)).collect::<UInt16Array>()),
        Arc::new(rows.iter().map(|g| Some(g.epoch)).collect::<UInt64Array>()),
        strings(&|g| g.kind.as_str())?,
        Arc::new(rows.iter().map(|g| g.from_seq).collect::<UInt64Array>()),
        Arc::new(UInt64Array::from(
            rows.iter().map(|g| g.count).collect::<Vec<u64>>(),
        )),
        Arc::new(
            rows.iter()
                .map(|g| g.detail.as_deref())
                .collect::<StringArray>(),
        ),
    ];
    RecordBatch::try_new(Table::Gaps.schema(), cols)
}
