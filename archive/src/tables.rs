//! The archive's tables: which bus record kind goes where, each table's Arrow schema, and the
//! conversion of a run of bus records into an Arrow [`RecordBatch`].
//!
//! Every record table starts with the same provenance columns (`segment`, `ring`, `epoch`, `seq`)
//! so a replay can reproduce bus order exactly, then the header's timestamps as plain INT64
//! nanoseconds named `<stamp>_ns` (0 = not provided becomes null) with `publish_ts` beside them as
//! a `TIMESTAMP(MICROS, UTC)` for engines' time functions, the instrument name resolved from the
//! segment's instrument table (dictionary-encoded), and the typed body columns. Prices, sizes,
//! rates and probabilities are exact decimals (`DECIMAL(18, s)`, stored as INT64 in Parquet, with
//! the bus scale as `s`); Chainlink's full-accuracy value is `DECIMAL(38, 18)`.
//!
//! Only types every common engine reads with default settings (schema version 3): Apache Spark
//! refuses `TIMESTAMP(NANOS)` and has no unsigned integers, so bus unsigned integers are stored
//! signed and one size wider (`u8` → INT16, `u16` → INT32, `u32` → INT64) and `u64` as the INT64
//! with the same bits (every `u64` the bus carries in practice is < 2^63; an epoch id ≥ 2^63
//! reads negative and converts back exactly). No nested types.
//!
//! `venue`, `date` and `window` are Hive partition columns (in the path), not file columns.

use std::sync::Arc;

use arrow_array::builder::{FixedSizeBinaryBuilder, PrimitiveBuilder, StringBuilder};
use arrow_array::types::{Decimal128Type, Int32Type};
use arrow_array::{
    ArrayRef, BooleanArray, DictionaryArray, Int16Array, Int32Array, Int64Array, RecordBatch,
    StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};
use ringbolt_bus::columns::{Codes, Column, ColumnType, HEADER_COLUMNS, KindDesc, Null};
use ringbolt_bus::{Record, RecordKind};

/// Version of the archive's table schemas, written in every file's metadata under
/// [`SCHEMA_VERSION_KEY`]. History: 1 (no key) = first release; 2 = `instrument_id` (the bus
/// instrument id, needed to rebuild records exactly for `ringbolt replay`) and `price_type`
/// codes other than 0-3 kept as `unknown_<code>`; 3 = readable by Apache Spark with default
/// settings: stamps as INT64 `<name>_ns` plus `publish_ts` as `TIMESTAMP(MICROS, UTC)` (v2 had
/// `TIMESTAMP(NANOS)` under the bare name), unsigned integers stored signed (see the module docs).
pub const ARCHIVE_SCHEMA_VERSION: u32 = 3;
/// The stamp also stored as a `TIMESTAMP(MICROS, UTC)` column of this name (the `<name>_ns`
/// INT64 column keeps the exact nanoseconds).
pub const MICROS_STAMP: &str = "publish_ts";
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
    /// Fills of our orders (live or paper).
    Fills,
    /// Window settlements per token.
    Settlements,
    /// Market parameters per token (tick, minimum size, fees) and their source.
    MarketParams,
    /// Records the archive is missing, with exact counts, and records it kept with bad values.
    Gaps,
}

impl Table {
    /// Every table.
    pub const ALL: [Table; 14] = [
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
        Table::Fills,
        Table::Settlements,
        Table::MarketParams,
        Table::Gaps,
    ];

    /// The record kind archived in the table; `None` for `gaps`.
    #[must_use]
    pub const fn kind(self) -> Option<RecordKind> {
        Some(match self {
            Table::Trades => RecordKind::Trade,
            Table::BookChanges => RecordKind::BookLevel,
            Table::Tops => RecordKind::TopOfBook,
            Table::IndexPrices => RecordKind::IndexPrice,
            Table::Funding => RecordKind::Funding,
            Table::Liquidations => RecordKind::Liquidation,
            Table::FeedStatus => RecordKind::FeedStatus,
            Table::Decisions => RecordKind::Decision,
            Table::OrderTransitions => RecordKind::OrderTransition,
            Table::CollectorHeartbeat => RecordKind::Heartbeat,
            Table::Fills => RecordKind::Fill,
            Table::Settlements => RecordKind::Settlement,
            Table::MarketParams => RecordKind::MarketParams,
            Table::Gaps => return None,
        })
    }

    /// The bus description of the table's record kind; `None` for `gaps`.
    #[must_use]
    pub fn desc(self) -> Option<&'static KindDesc> {
        self.kind().and_then(RecordKind::desc)
    }

    /// The table's directory name (the kind's table in the bus description).
    #[must_use]
    pub fn name(self) -> &'static str {
        self.desc().map_or("gaps", |d| d.table)
    }

    /// The table with this directory name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The table a bus record kind is archived in; `None` for `Empty`.
    #[must_use]
    pub fn for_kind(kind: RecordKind) -> Option<Table> {
        // `ALL` lists the record tables in kind order (checked), so this is one lookup.
        let table = *Table::ALL.get((kind as usize).checked_sub(1)?)?;
        (table.kind() == Some(kind)).then_some(table)
    }

    /// The record columns of the table after the provenance columns: the bus header's, then the
    /// kind's body columns (none for `gaps`).
    pub fn record_columns(self) -> impl Iterator<Item = &'static Column> {
        let body = self.desc().map_or(&[][..], |d| d.columns);
        let header = if self.desc().is_some() {
            HEADER_COLUMNS
        } else {
            &[]
        };
        header.iter().chain(body)
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
            Table::Gaps => &["ts_ns", "ts"],
            _ => &[
                "seq",
                "publish_ts_ns",
                "publish_ts",
                "recv_ts_ns",
                "exchange_ts_ns",
                "venue_seq",
            ],
        }
    }

    /// The table's Arrow schema (with the fixed-point scales in the schema metadata).
    #[must_use]
    pub fn schema(self) -> SchemaRef {
        let fields: Vec<Field> = if self == Table::Gaps {
            vec![
                Field::new("ts_ns", DataType::Int64, false),
                Field::new("ts", micros_type(), false),
                Field::new("segment", dict_type(), false),
                Field::new("ring", DataType::Int32, false),
                Field::new("epoch", DataType::Int64, false),
                Field::new("kind", dict_type(), false),
                Field::new("from_seq", DataType::Int64, true),
                Field::new("count", DataType::Int64, false),
                Field::new("detail", DataType::Utf8, true),
            ]
        } else {
            let mut fields = provenance_fields();
            for column in self.record_columns() {
                fields.push(arrow_field(column));
                if column.name == MICROS_STAMP {
                    fields.push(Field::new(MICROS_STAMP, micros_type(), false));
                }
            }
            fields
        };
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

fn micros_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn dict_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// Where a record table row came from: `segment`, `ring`, `epoch`.
fn provenance_fields() -> Vec<Field> {
    vec![
        Field::new("segment", dict_type(), false),
        Field::new("ring", DataType::Int32, false),
        Field::new("epoch", DataType::Int64, false),
    ]
}

/// The archive's name of a bus column: stamps carry their unit (`publish_ts` → `publish_ts_ns`).
#[must_use]
pub fn stored_name(column: &Column) -> std::borrow::Cow<'static, str> {
    if matches!(column.ty, ColumnType::Timestamp) {
        format!("{}_ns", column.name).into()
    } else {
        column.name.into()
    }
}

/// The Arrow type of a bus column.
#[must_use]
pub fn arrow_type(column: &Column) -> DataType {
    match column.ty {
        ColumnType::UInt => match column.size {
            1 => DataType::Int16,
            2 => DataType::Int32,
            _ => DataType::Int64,
        },
        ColumnType::Decimal(scale) if column.size == 16 => DataType::Decimal128(38, scale as i8),
        ColumnType::Decimal(scale) => DataType::Decimal128(18, scale as i8),
        ColumnType::Timestamp => DataType::Int64,
        ColumnType::Bool | ColumnType::Flag(_) => DataType::Boolean,
        ColumnType::Code(_) | ColumnType::InstrumentName => dict_type(),
        ColumnType::Bytes => DataType::FixedSizeBinary(column.size as i32),
    }
}

/// The Arrow field of a bus column: decimals are nullable (an out-of-range value is written as
/// null), other columns when their null rule can produce one.
#[must_use]
pub fn arrow_field(column: &Column) -> Field {
    let nullable = match column.ty {
        ColumnType::Decimal(_) => true,
        ColumnType::Bool | ColumnType::Flag(_) | ColumnType::Code(_) => false,
        _ => column.null != Null::Never,
    };
    Field::new(stored_name(column), arrow_type(column), nullable)
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
fn dict_codes(codes: impl Iterator<Item = u8>, names: &Codes) -> ArrayRef {
    let mut slot_of = [i32::MIN; 256];
    let mut values: Vec<String> = Vec::new();
    let keys: Vec<i32> = codes
        .map(|c| {
            if slot_of[c as usize] == i32::MIN {
                slot_of[c as usize] = values.len() as i32;
                values.push(names.name(c).into_owned());
            }
            slot_of[c as usize]
        })
        .collect();
    Arc::new(DictionaryArray::<Int32Type>::new(
        Int32Array::from(keys),
        Arc::new(StringArray::from(values)),
    ))
}

fn ns_col(values: impl Iterator<Item = i64>, zero_is_null: bool) -> ArrayRef {
    let array: Int64Array = if zero_is_null {
        values.map(|v| (v != 0).then_some(v)).collect()
    } else {
        values.map(Some).collect()
    };
    Arc::new(array)
}

/// The microsecond timestamp of nanosecond stamps (floored, so it never lies after the stamp).
fn micros_col(ns: impl Iterator<Item = i64>) -> ArrayRef {
    let array: TimestampMicrosecondArray = ns.map(|v| Some(v.div_euclid(1000))).collect();
    Arc::new(array.with_timezone("UTC"))
}

/// The instrument names of `records`: a dictionary keyed by first appearance of each id.
fn instrument_col(
    column: &Column,
    records: &[Record],
    names: &mut dyn InstrumentNames,
) -> Result<ArrayRef, ArrowError> {
    let mut ids: Vec<u32> = Vec::new();
    let mut keys = Vec::with_capacity(records.len());
    let mut values = StringBuilder::new();
    for id in column.gather(records) {
        let id = id as u32;
        let key = match ids.iter().position(|&known| known == id) {
            Some(k) => k,
            None => {
                ids.push(id);
                values.append_value(names.name(id));
                ids.len() - 1
            }
        };
        keys.push(key as i32);
    }
    Ok(Arc::new(DictionaryArray::<Int32Type>::try_new(
        Int32Array::from(keys),
        Arc::new(values.finish()),
    )?))
}

/// An unsigned integer column, stored signed one size wider (`u64` as the INT64 of the same
/// bits); the null rule's raw value becomes null.
fn uint_col(column: &Column, records: &[Record]) -> ArrayRef {
    let null = column.null_raw();
    let values = column
        .gather(records)
        .into_iter()
        .map(|v| (Some(v) != null).then_some(v));
    match column.size {
        1 => Arc::new(values.map(|v| v.map(|v| v as i16)).collect::<Int16Array>()),
        2 => Arc::new(values.map(|v| v.map(|v| v as i32)).collect::<Int32Array>()),
        _ => Arc::new(values.map(|v| v.map(|v| v as i64)).collect::<Int64Array>()),
    }
}

/// A `DECIMAL(18, s)` column of `i64` fields; values that do not fit are written as null and
/// counted in `bad`.
fn decimal18_col(column: &Column, scale: u8, records: &[Record], bad: &mut u64) -> ArrayRef {
    let zero_is_null = column.null == Null::Zero;
    let mut b = PrimitiveBuilder::<Decimal128Type>::with_capacity(records.len());
    for v in column.gather(records) {
        let v = v as i64;
        if zero_is_null && v == 0 {
            b.append_null();
        } else if v.unsigned_abs() >= DECIMAL18_LIMIT as u64 {
            *bad += 1;
            b.append_null();
        } else {
            b.append_value(i128::from(v));
        }
    }
    // Precision 18 with scale ≤ 18 is always valid.
    Arc::new(
        b.finish()
            .with_precision_and_scale(18, scale as i8)
            .unwrap_or_else(|_| Vec::<i128>::new().into()),
    )
}

/// A `DECIMAL(38, s)` column of `i128` fields.
fn decimal38_col(column: &Column, scale: u8, records: &[Record]) -> Result<ArrayRef, ArrowError> {
    let mut b = PrimitiveBuilder::<Decimal128Type>::with_capacity(records.len());
    for r in records {
        if column.is_null(r) {
            b.append_null();
        } else {
            b.append_value(column.read_signed(r));
        }
    }
    Ok(Arc::new(
        b.finish().with_precision_and_scale(38, scale as i8)?,
    ))
}

fn bytes_col(column: &Column, records: &[Record]) -> Result<ArrayRef, ArrowError> {
    let mut b = FixedSizeBinaryBuilder::with_capacity(records.len(), column.size as i32);
    for r in records {
        if column.is_null(r) {
            b.append_null();
        } else {
            b.append_value(column.bytes(r))?;
        }
    }
    Ok(Arc::new(b.finish()))
}

/// One Arrow column of `records` (all of the column's kind), one loop over the records.
fn build_column(
    column: &Column,
    records: &[Record],
    names: &mut dyn InstrumentNames,
    bad: &mut u64,
) -> Result<ArrayRef, ArrowError> {
    Ok(match column.ty {
        ColumnType::UInt => uint_col(column, records),
        ColumnType::Decimal(scale) if column.size == 16 => decimal38_col(column, scale, records)?,
        ColumnType::Decimal(scale) => decimal18_col(column, scale, records, bad),
        ColumnType::Timestamp => ns_col(
            column.gather(records).into_iter().map(|v| v as i64),
            column.null == Null::Zero,
        ),
        ColumnType::Bool | ColumnType::Flag(_) => Arc::new(
            column
                .gather(records)
                .into_iter()
                .map(|v| Some(v != 0))
                .collect::<BooleanArray>(),
        ),
        ColumnType::Code(codes) => dict_codes(
            column
                .gather(records)
                .into_iter()
                .map(|v| u8::try_from(v).unwrap_or(0)),
            codes,
        ),
        ColumnType::Bytes => bytes_col(column, records)?,
        ColumnType::InstrumentName => instrument_col(column, records, names)?,
    })
}

/// Builds the batch of a record table from records of one source, in bus order.
///
/// Returns the batch and the number of values that did not fit their decimal column (written as
/// null). `records` must all be of `table`'s kind (the columns read the body as that kind).
///
/// # Errors
/// Arrow errors (a schema mismatch would be a bug); `gaps` rows are built by
/// [`build_gaps_batch`].
pub fn build_batch(
    table: Table,
    source: &Source,
    records: &[Record],
    names: &mut dyn InstrumentNames,
) -> Result<(RecordBatch, u64), ArrowError> {
    if table == Table::Gaps {
        return Err(ArrowError::InvalidArgumentError(
            "gaps rows are built with build_gaps_batch".to_owned(),
        ));
    }
    debug_assert!(records.iter().all(|r| r.record_kind() == table.kind()));
    let n = records.len();
    let mut bad = 0;
    let mut cols: Vec<ArrayRef> = vec![
        dict_single(&source.segment, n),
        Arc::new(Int32Array::from(vec![i32::from(source.ring); n])),
        Arc::new(Int64Array::from(vec![source.epoch as i64; n])),
    ];
    for column in table.record_columns() {
        cols.push(build_column(column, records, names, &mut bad)?);
        if column.name == MICROS_STAMP {
            cols.push(micros_col(
                column.gather(records).into_iter().map(|v| v as i64),
            ));
        }
    }
    let batch = RecordBatch::try_new(table.schema(), cols)?;
    Ok((batch, bad))
}

/// Builds the `gaps` batch.
///
/// # Errors
/// Arrow errors (a schema mismatch would be a bug).
pub fn build_gaps_batch(rows: &[GapRow]) -> Result<RecordBatch, ArrowError> {
    let strings = |f: &dyn Fn(&GapRow) -> &str| -> Result<ArrayRef, ArrowError> {
        let values: Vec<&str> = rows.iter().map(f).collect();
        let array: DictionaryArray<Int32Type> = values.into_iter().collect();
        Ok(Arc::new(array))
    };
    let cols: Vec<ArrayRef> = vec![
        ns_col(rows.iter().map(|g| g.ts_ns), false),
        micros_col(rows.iter().map(|g| g.ts_ns)),
        strings(&|g| g.segment.as_str())?,
        Arc::new(Int32Array::from(
            rows.iter().map(|g| i32::from(g.ring)).collect::<Vec<_>>(),
        )),
        Arc::new(Int64Array::from(
            rows.iter().map(|g| g.epoch as i64).collect::<Vec<_>>(),
        )),
        strings(&|g| g.kind.as_str())?,
        Arc::new(
            rows.iter()
                .map(|g| g.from_seq.map(|s| s as i64))
                .collect::<Int64Array>(),
        ),
        Arc::new(Int64Array::from(
            rows.iter().map(|g| g.count as i64).collect::<Vec<_>>(),
        )),
        Arc::new(
            rows.iter()
                .map(|g| g.detail.as_deref())
                .collect::<StringArray>(),
        ),
    ];
    RecordBatch::try_new(Table::Gaps.schema(), cols)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_kind_has_its_table_and_back() {
        for kind in RecordKind::ALL {
            let table = Table::for_kind(*kind);
            assert_eq!(table.is_none(), *kind == RecordKind::Empty, "{kind}");
            assert_eq!(
                table.and_then(Table::kind),
                (*kind != RecordKind::Empty).then_some(*kind)
            );
            if let Some(t) = table {
                assert_eq!(Table::from_name(t.name()), Some(t));
            }
        }
        assert_eq!(Table::from_name("gaps"), Some(Table::Gaps));
    }
}
