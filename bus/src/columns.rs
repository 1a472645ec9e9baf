//! Every record kind described once: its body's byte layout and its named, typed columns.
//!
//! A [`KindDesc`] per [`RecordKind`] (written next to the body struct by the `body!` macro in
//! [`crate::record`]) is the single source the other views are derived from:
//! - the pinned layout text ([`crate::schema`]) prints [`KindDesc::layout`];
//! - the archive's Arrow schemas, batch building and Parquet reading walk [`HEADER_COLUMNS`] and
//!   [`KindDesc::columns`] one column at a time ([`Column::gather`], [`Column::scatter`]: one
//!   tight loop per column, no per-cell dispatch);
//! - the JSON of `ringbolt feeds parse` and record dumps ([`body_text`]) render
//!   [`Column::value`].
//!
//! Adding a record kind: a variant of [`RecordKind`], its `body!` block in [`crate::record`]
//! (fields, archive table, columns) and its line in [`crate::record::KINDS`]; a test fails until
//! the three agree. The layout text then changes, which needs a new `LAYOUT_VERSION`.
//!
//! A column is a field of the 128-byte record at a fixed offset, how to interpret its bytes
//! ([`ColumnType`]) and which raw value stands for "not given" ([`Null`]).

use std::borrow::Cow;

use crate::record::{BODY_SIZE, RECORD_SIZE, Record, RecordKind};

/// One field of a plain-data struct: name, byte offset and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// The field's name in the struct.
    pub name: &'static str,
    /// Byte offset within the struct.
    pub offset: usize,
    /// Size in bytes.
    pub size: usize,
}

/// A struct's layout as pinned by the layout description: size, alignment and every field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StructLayout {
    /// The type's name.
    pub name: &'static str,
    /// `size_of`.
    pub size: usize,
    /// `align_of`.
    pub align: usize,
    /// Every field, in declaration order.
    pub fields: &'static [Field],
}

/// The size of the field `f` selects (used by the layout macros in const context).
#[doc(hidden)]
#[must_use]
pub const fn field_size<T, F>(_: fn(&T) -> &F) -> usize {
    core::mem::size_of::<F>()
}

/// The [`StructLayout`] of `Type { field, … }`, listing the fields given (in that order).
#[macro_export]
macro_rules! struct_layout {
    ($ty:ty { $($field:ident),+ $(,)? }) => {
        $crate::columns::StructLayout {
            name: stringify!($ty),
            size: core::mem::size_of::<$ty>(),
            align: core::mem::align_of::<$ty>(),
            fields: const {
                &[$($crate::columns::Field {
                    name: stringify!($field),
                    offset: core::mem::offset_of!($ty, $field),
                    size: $crate::columns::field_size(|v: &$ty| &v.$field),
                }),+]
            },
        }
    };
}

/// Names of the values of a code byte (a side, a state, a role), both ways.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Codes {
    /// Known codes and their names.
    pub names: &'static [(u8, &'static str)],
    /// How a code missing from `names` is named.
    pub other: OtherCode,
}

/// The name of a code that is not in [`Codes::names`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtherCode {
    /// The prefix followed by the number (`unknown_7`); the name reads back as the number.
    Prefix(&'static str),
    /// One fixed name for every other code; it reads back as no code.
    Fixed(&'static str),
}

impl Codes {
    /// The name of `code`.
    #[must_use]
    pub fn name(&self, code: u8) -> Cow<'static, str> {
        match self.names.iter().find(|(c, _)| *c == code) {
            Some((_, name)) => Cow::Borrowed(name),
            None => match self.other {
                OtherCode::Prefix(prefix) => Cow::Owned(format!("{prefix}{code}")),
                OtherCode::Fixed(name) => Cow::Borrowed(name),
            },
        }
    }

    /// The code named `name`, `None` for a name no code has.
    #[must_use]
    pub fn code(&self, name: &str) -> Option<u8> {
        if let Some((code, _)) = self.names.iter().find(|(_, n)| *n == name) {
            return Some(*code);
        }
        match self.other {
            OtherCode::Prefix(prefix) => name.strip_prefix(prefix)?.parse().ok(),
            OtherCode::Fixed(_) => None,
        }
    }
}

/// `IndexPrice::price_type` codes.
pub const PRICE_TYPE: Codes = Codes {
    names: &[(0, "unknown"), (1, "index"), (2, "mark"), (3, "twap")],
    other: OtherCode::Prefix("unknown_"),
};
/// `Heartbeat::role` codes.
pub const ROLE: Codes = Codes {
    names: &[(1, "feeds"), (2, "trade"), (3, "archive")],
    other: OtherCode::Prefix("role_"),
};
/// `Decision::outcome` codes.
pub const OUTCOME: Codes = Codes {
    names: &[(0, "up"), (1, "down")],
    other: OtherCode::Fixed("unknown"),
};

/// `Fill::liquidity` codes.
pub const LIQUIDITY: Codes = Codes {
    names: &[(1, "maker"), (2, "taker")],
    other: OtherCode::Fixed("unknown"),
};
/// `Fill::status` codes.
pub const FILL_STATUS: Codes = Codes {
    names: &[(1, "provisional"), (2, "confirmed"), (3, "failed")],
    other: OtherCode::Fixed("unknown"),
};

/// `MarketParamsBody::source` codes: where a market's parameters came from.
pub const PARAMS_SOURCE: Codes = Codes {
    names: &[(1, "gamma"), (2, "tick_size_change"), (3, "config")],
    other: OtherCode::Fixed("unknown"),
};

/// How a column's bytes are interpreted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    /// An unsigned integer of the field's width (1, 2, 4 or 8 bytes).
    UInt,
    /// A signed fixed-point decimal with this many fractional digits: an `i64` is
    /// `DECIMAL(18, s)`, an `i128` `DECIMAL(38, s)`.
    Decimal(u8),
    /// An `i64` of nanoseconds since the Unix epoch (UTC).
    Timestamp,
    /// A byte that is 0 (false) or not (true).
    Bool,
    /// A code (1 or 4 bytes) stored by name; codes above 255 are written as 0.
    Code(&'static Codes),
    /// Raw bytes (e.g. a venue order id).
    Bytes,
    /// One bit of the header's `flags` byte (derived: read back through `flags`).
    Flag(u8),
    /// The header's instrument id, shown as the instrument's name (derived: the id has its own
    /// column).
    InstrumentName,
}

/// Which raw value of a column means "not given".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Null {
    /// Every value is a value.
    Never,
    /// Zero (all bytes zero) means not given.
    Zero,
    /// All bits set means not given (e.g. `slot == u16::MAX`).
    Max,
}

/// A column type with its null rule, before it is placed on a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spec {
    /// The type.
    pub ty: ColumnType,
    /// The null rule.
    pub null: Null,
}

impl Spec {
    /// A spec of type `ty` where every value is a value.
    #[must_use]
    pub const fn of(ty: ColumnType) -> Spec {
        Spec {
            ty,
            null: Null::Never,
        }
    }

    /// The same spec with zero meaning "not given".
    #[must_use]
    pub const fn null_if_zero(self) -> Spec {
        Spec {
            null: Null::Zero,
            ..self
        }
    }

    /// The same spec with all bits set meaning "not given".
    #[must_use]
    pub const fn null_if_max(self) -> Spec {
        Spec {
            null: Null::Max,
            ..self
        }
    }

    /// The column `name` on the record bytes `offset..offset + size`.
    ///
    /// # Panics
    /// At compile time, when the field does not fit the record or its width does not fit the
    /// type.
    #[must_use]
    pub const fn at(self, name: &'static str, offset: usize, size: usize) -> Column {
        assert!(offset + size <= RECORD_SIZE, "column outside the record");
        let width_ok = match self.ty {
            ColumnType::UInt => matches!(size, 1 | 2 | 4 | 8),
            ColumnType::Decimal(_) => matches!(size, 8 | 16),
            ColumnType::Timestamp => size == 8,
            ColumnType::Bool | ColumnType::Flag(_) => size == 1,
            ColumnType::Code(_) => matches!(size, 1 | 4),
            ColumnType::Bytes => size > 0,
            ColumnType::InstrumentName => size == 4,
        };
        assert!(width_ok, "field width does not fit the column type");
        Column {
            name,
            offset,
            size,
            ty: self.ty,
            null: self.null,
        }
    }
}

/// An unsigned integer column.
pub const UINT: Spec = Spec::of(ColumnType::UInt);
/// A timestamp column.
pub const TIMESTAMP: Spec = Spec::of(ColumnType::Timestamp);
/// A boolean column.
pub const BOOL: Spec = Spec::of(ColumnType::Bool);
/// A raw bytes column.
pub const BYTES: Spec = Spec::of(ColumnType::Bytes);

/// A fixed-point decimal column with `scale` fractional digits.
#[must_use]
pub const fn decimal(scale: u8) -> Spec {
    Spec::of(ColumnType::Decimal(scale))
}

/// A code column named by `codes`.
#[must_use]
pub const fn code(codes: &'static Codes) -> Spec {
    Spec::of(ColumnType::Code(codes))
}

/// A named, typed column of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    /// The column name (archive tables, JSON keys).
    pub name: &'static str,
    /// Byte offset within the 128-byte record.
    pub offset: usize,
    /// Size in bytes.
    pub size: usize,
    /// How the bytes are interpreted.
    pub ty: ColumnType,
    /// Which raw value means "not given".
    pub null: Null,
}

/// A column's value in one record, for display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    /// Not given (per the column's [`Null`] rule).
    Null,
    /// An unsigned integer (also an instrument id).
    UInt(u64),
    /// A fixed-point decimal: `raw / 10^scale`.
    Decimal {
        /// The raw fixed-point integer.
        raw: i128,
        /// Fractional digits.
        scale: u8,
    },
    /// Nanoseconds since the Unix epoch.
    Timestamp(i64),
    /// A boolean.
    Bool(bool),
    /// A code's name.
    Name(Cow<'static, str>),
    /// Raw bytes.
    Bytes(&'a [u8]),
}

impl core::fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::UInt(v) => write!(f, "{v}"),
            Value::Decimal { raw, scale } => write_decimal(f, *raw, *scale),
            Value::Timestamp(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::Name(name) => f.write_str(name),
            Value::Bytes(bytes) => bytes.iter().try_for_each(|b| write!(f, "{b:02x}")),
        }
    }
}

#[inline]
fn read1(record: &Record, at: usize) -> u64 {
    u64::from(bytemuck::bytes_of(record)[at])
}

#[inline]
fn read2(record: &Record, at: usize) -> u64 {
    let mut b = [0u8; 2];
    b.copy_from_slice(&bytemuck::bytes_of(record)[at..at + 2]);
    u64::from(u16::from_ne_bytes(b))
}

#[inline]
fn read4(record: &Record, at: usize) -> u64 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytemuck::bytes_of(record)[at..at + 4]);
    u64::from(u32::from_ne_bytes(b))
}

#[inline]
fn read8(record: &Record, at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytemuck::bytes_of(record)[at..at + 8]);
    u64::from_ne_bytes(b)
}

/// Writes `raw / 10^scale` exactly, without trailing zeros (`0.48`, `-3`, `95000.12345678`).
fn write_decimal(f: &mut core::fmt::Formatter<'_>, raw: i128, scale: u8) -> core::fmt::Result {
    let divisor = 10u128.pow(u32::from(scale));
    let magnitude = raw.unsigned_abs();
    let sign = if raw < 0 { "-" } else { "" };
    let (int, mut frac) = (magnitude / divisor, magnitude % divisor);
    write!(f, "{sign}{int}")?;
    if frac != 0 {
        let mut width = usize::from(scale);
        while frac.is_multiple_of(10) {
            frac /= 10;
            width -= 1;
        }
        write!(f, ".{frac:0width$}")?;
    }
    Ok(())
}

impl Column {
    /// The raw value of a field of at most 8 bytes, zero-extended (for `Flag`, the bit as 0/1).
    #[inline]
    #[must_use]
    pub fn read(&self, record: &Record) -> u64 {
        let raw = match self.size {
            1 => read1(record, self.offset),
            2 => read2(record, self.offset),
            4 => read4(record, self.offset),
            _ => read8(record, self.offset),
        };
        self.flag_bit(raw)
    }

    fn flag_bit(&self, raw: u64) -> u64 {
        match self.ty {
            ColumnType::Flag(mask) => u64::from(raw as u8 & mask != 0),
            _ => raw,
        }
    }

    /// [`Column::read`] of every record, one loop per field width (the column-at-a-time path of
    /// batch building).
    #[must_use]
    pub fn gather(&self, records: &[Record]) -> Vec<u64> {
        let at = self.offset;
        let mut out: Vec<u64> = match self.size {
            1 => records.iter().map(|r| read1(r, at)).collect(),
            2 => records.iter().map(|r| read2(r, at)).collect(),
            4 => records.iter().map(|r| read4(r, at)).collect(),
            _ => records.iter().map(|r| read8(r, at)).collect(),
        };
        if matches!(self.ty, ColumnType::Flag(_)) {
            out.iter_mut().for_each(|v| *v = self.flag_bit(*v));
        }
        out
    }

    /// [`Column::write`] of each `(record, raw)` pair, one loop per field width (the
    /// column-at-a-time path of rebuilding records).
    pub fn scatter<'a>(&self, pairs: impl Iterator<Item = (&'a mut Record, u64)>) {
        let at = self.offset;
        let put = |r: &mut Record, bytes: &[u8]| {
            bytemuck::bytes_of_mut(r)[at..at + bytes.len()].copy_from_slice(bytes);
        };
        match self.size {
            1 => pairs.for_each(|(r, v)| put(r, &[v as u8])),
            2 => pairs.for_each(|(r, v)| put(r, &(v as u16).to_ne_bytes())),
            4 => pairs.for_each(|(r, v)| put(r, &(v as u32).to_ne_bytes())),
            8 => pairs.for_each(|(r, v)| put(r, &v.to_ne_bytes())),
            _ => pairs.for_each(|(r, v)| self.write(r, v)),
        }
    }

    /// The value of a signed field (a decimal or a timestamp) widened to `i128`.
    #[inline]
    #[must_use]
    pub fn read_signed(&self, record: &Record) -> i128 {
        if self.size == 16 {
            let mut b = [0u8; 16];
            b.copy_from_slice(&bytemuck::bytes_of(record)[self.offset..self.offset + 16]);
            i128::from_ne_bytes(b)
        } else {
            i128::from(self.read(record) as i64)
        }
    }

    /// The bytes of the field.
    #[must_use]
    pub fn bytes<'a>(&self, record: &'a Record) -> &'a [u8] {
        &bytemuck::bytes_of(record)[self.offset..self.offset + self.size]
    }

    /// Stores `raw` (truncated to the field's width) into the field.
    #[inline]
    pub fn write(&self, record: &mut Record, raw: u64) {
        let bytes = bytemuck::bytes_of_mut(record);
        let at = self.offset;
        match self.size {
            1 => bytes[at] = raw as u8,
            2 => bytes[at..at + 2].copy_from_slice(&(raw as u16).to_ne_bytes()),
            4 => bytes[at..at + 4].copy_from_slice(&(raw as u32).to_ne_bytes()),
            16 => bytes[at..at + 16].copy_from_slice(&i128::from(raw as i64).to_ne_bytes()),
            _ => bytes[at..at + 8].copy_from_slice(&raw.to_ne_bytes()),
        }
    }

    /// Stores a signed value into the field (truncated to its width).
    #[inline]
    pub fn write_signed(&self, record: &mut Record, value: i128) {
        if self.size == 16 {
            let at = self.offset;
            bytemuck::bytes_of_mut(record)[at..at + 16].copy_from_slice(&value.to_ne_bytes());
        } else {
            self.write(record, value as u64);
        }
    }

    /// Stores `bytes` into the field (shorter input leaves the rest zero).
    pub fn write_bytes(&self, record: &mut Record, bytes: &[u8]) {
        let n = bytes.len().min(self.size);
        let field = &mut bytemuck::bytes_of_mut(record)[self.offset..self.offset + self.size];
        field.fill(0);
        field[..n].copy_from_slice(&bytes[..n]);
    }

    /// The raw value that means "not given", when there is one.
    #[must_use]
    pub const fn null_raw(&self) -> Option<u64> {
        match self.null {
            Null::Never => None,
            Null::Zero => Some(0),
            Null::Max => Some(if self.size >= 8 {
                u64::MAX
            } else {
                (1u64 << (self.size * 8)) - 1
            }),
        }
    }

    /// Whether the column's value in `record` is "not given".
    #[must_use]
    pub fn is_null(&self, record: &Record) -> bool {
        match self.null {
            Null::Never => false,
            Null::Zero => self.bytes(record).iter().all(|b| *b == 0),
            Null::Max => Some(self.read(record)) == self.null_raw(),
        }
    }

    /// Whether the column is derived from another one (a flag bit, the instrument name), so that
    /// rebuilding a record skips it.
    #[must_use]
    pub const fn is_derived(&self) -> bool {
        matches!(self.ty, ColumnType::Flag(_) | ColumnType::InstrumentName)
    }

    /// The column's value in `record`.
    #[must_use]
    pub fn value<'a>(&self, record: &'a Record) -> Value<'a> {
        if self.is_null(record) {
            return Value::Null;
        }
        match self.ty {
            ColumnType::UInt | ColumnType::InstrumentName => Value::UInt(self.read(record)),
            ColumnType::Decimal(scale) => Value::Decimal {
                raw: self.read_signed(record),
                scale,
            },
            ColumnType::Timestamp => Value::Timestamp(self.read(record) as i64),
            ColumnType::Bool | ColumnType::Flag(_) => Value::Bool(self.read(record) != 0),
            ColumnType::Code(codes) => {
                Value::Name(codes.name(u8::try_from(self.read(record)).unwrap_or(0)))
            }
            ColumnType::Bytes => Value::Bytes(self.bytes(record)),
        }
    }
}

/// A record kind described once: its body struct's layout, its archive table and its columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindDesc {
    /// The kind.
    pub kind: RecordKind,
    /// The body struct's layout (every byte, in declaration order).
    pub layout: StructLayout,
    /// The archive table the kind is stored in.
    pub table: &'static str,
    /// The body's columns, in table order (offsets within the whole record).
    pub columns: &'static [Column],
}

/// The common header's columns, in table order (after the archive's provenance columns).
pub const HEADER_COLUMNS: &[Column] = {
    use crate::record::Record as R;
    use core::mem::offset_of;
    const INSTRUMENT: Spec = Spec::of(ColumnType::InstrumentName);
    &[
        UINT.at("seq", offset_of!(R, seq), 8),
        TIMESTAMP.at("publish_ts", offset_of!(R, publish_ts_ns), 8),
        TIMESTAMP
            .null_if_zero()
            .at("recv_ts", offset_of!(R, recv_ts_ns), 8),
        TIMESTAMP
            .null_if_zero()
            .at("exchange_ts", offset_of!(R, exchange_ts_ns), 8),
        UINT.null_if_zero()
            .at("venue_seq", offset_of!(R, venue_seq), 8),
        INSTRUMENT.at("instrument", offset_of!(R, instrument), 4),
        UINT.at("instrument_id", offset_of!(R, instrument), 4),
        UINT.at("stream", offset_of!(R, stream), 1),
        UINT.at("flags", offset_of!(R, flags), 1),
    ]
};

/// Offset of the body within the record.
pub const BODY_OFFSET: usize = RECORD_SIZE - BODY_SIZE;

impl RecordKind {
    /// The description of the kind, `None` for `Empty`.
    #[must_use]
    pub fn desc(self) -> Option<&'static KindDesc> {
        // `KINDS` is in wire order from kind 1 (checked by a test), so this is one lookup.
        let desc = crate::record::KINDS.get((self as usize).checked_sub(1)?)?;
        (desc.kind == self).then_some(desc)
    }
}

/// The body columns of `record`'s kind (none for an unknown or empty kind).
#[must_use]
pub fn body_columns(record: &Record) -> &'static [Column] {
    record
        .record_kind()
        .and_then(RecordKind::desc)
        .map_or(&[], |d| d.columns)
}

/// `name=value` for every body column of `record` except the flag bits (e.g.
/// `price=0.48 size=30 side=buy`), for logs and record dumps.
#[must_use]
pub fn body_text(record: &Record) -> String {
    use core::fmt::Write as _;
    let mut out = String::new();
    for column in body_columns(record).iter().filter(|c| !c.is_derived()) {
        let sep = if out.is_empty() { "" } else { " " };
        let _ = write!(out, "{sep}{}={}", column.name, column.value(record));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{BookLevel, Decision, IndexPrice, Side, Trade, Venue};

    #[test]
    fn every_kind_but_empty_is_described_once_and_covers_its_body() {
        for kind in RecordKind::ALL {
            let found = crate::record::KINDS
                .iter()
                .filter(|d| d.kind == *kind)
                .count();
            assert_eq!(found, usize::from(*kind != RecordKind::Empty), "{kind}");
            assert_eq!(
                kind.desc().map(|d| d.kind),
                (*kind != RecordKind::Empty).then_some(*kind)
            );
        }
        for desc in crate::record::KINDS {
            assert_eq!(desc.layout.size, BODY_SIZE);
            let listed: usize = desc.layout.fields.iter().map(|f| f.size).sum();
            assert_eq!(listed, BODY_SIZE, "{}", desc.layout.name);
            for c in desc.columns {
                assert!(c.offset >= BODY_OFFSET || c.is_derived(), "{}", c.name);
            }
        }
    }

    /// Checks `record`'s text and that copying every body column through the accessors
    /// rebuilds its body.
    fn check(record: &Record, text: &str) {
        assert_eq!(body_text(record), text);
        let mut copy = Record::zeroed();
        for c in body_columns(record) {
            c.write_signed(&mut copy, c.read_signed(record));
        }
        assert_eq!(copy.body, record.body);
    }

    #[test]
    fn values_read_and_write_through_the_columns() {
        let mut trade: Trade = bytemuck::Zeroable::zeroed();
        (trade.price, trade.size, trade.side) = (48_000_000, 3_000_000_000, Side::Buy as u8);
        let record = Record::new(Venue::Polymarket, 0, 1, &trade);
        check(&record, "price=0.48 size=30 trade_id=null side=buy");

        let mut index: IndexPrice = bytemuck::Zeroable::zeroed();
        index.value_e18 = -79_696_948_174_287_960_000_000;
        index.price = -7_969_694_817_428;
        index.price_type = 9;
        let text = "value_e18=-79696.94817428796 price=-79696.94817428 price_type=unknown_9";
        check(&Record::new(Venue::ChainlinkRtds, 0, 1, &index), text);

        let mut decision: Decision = bytemuck::Zeroable::zeroed();
        decision.slot = u16::MAX;
        let record = Record::new(Venue::Internal, 0, 1, &decision);
        let slot = body_columns(&record).iter().find(|c| c.name == "slot");
        assert_eq!(slot.map(|c| c.value(&record)), Some(Value::Null));
        let mut level: BookLevel = bytemuck::Zeroable::zeroed();
        level.side = 2;
        let level = Record::new(Venue::Coinbase, 0, 1, &level);
        assert!(body_text(&level).ends_with("side=sell"));
    }

    #[test]
    fn codes_name_both_ways() {
        assert_eq!(ROLE.name(9), "role_9");
        assert_eq!(ROLE.code("role_9"), Some(9));
        assert_eq!(OUTCOME.name(5), "unknown");
        assert_eq!(OUTCOME.code("unknown"), None);
        assert_eq!(Side::CODES.code("sell"), Some(2));
        assert_eq!(Side::CODES.code("unknown_7"), Some(7));
    }
}
