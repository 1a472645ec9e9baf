//! Renders normalized records as one-line JSON objects (offline tools: `ringbolt feeds parse`).
//! Prices and sizes are exact decimal strings from the fixed-point values.
//!
//! The kind-specific fields are the kind's columns as the bus describes them
//! ([`ringbolt_bus::columns`]), so a new record kind renders without a change here.

use core::fmt::Write as _;

use ringbolt_bus::columns::{Column, Value, body_columns};
use ringbolt_bus::{FLAG_BATCH_BEGIN, FLAG_BATCH_END, FLAG_SNAPSHOT, Record, RecordKind, Venue};

use crate::adapter::StreamDesc;

/// The summary keys every object has; the columns of these names are shown only there.
const SUMMARY: [&str; 3] = ["side", "price", "size"];

fn escape(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A column value as JSON: decimals as exact decimal strings except the 128-bit ones, whose
/// names carry their scale (`value_e18`), as raw integer strings; codes as their names.
fn json_value(out: &mut String, column: &Column, value: &Value<'_>) {
    let _ = match value {
        Value::Null => write!(out, "null"),
        Value::Decimal { raw, .. } if column.size == 16 => write!(out, "\"{raw}\""),
        Value::Decimal { .. } | Value::Bytes(_) => write!(out, "\"{value}\""),
        Value::Name(name) => {
            escape(out, name);
            Ok(())
        }
        Value::UInt(_) | Value::Timestamp(_) | Value::Bool(_) => write!(out, "{value}"),
    };
}

/// One JSON object for `record`: venue, stream, kind, instrument, side, price, size,
/// exchange_ts_ns, sequence, the kind's other columns, flags.
///
/// `price` is the most exact price the record has (the full-accuracy `value_e18` of an index
/// price when given).
#[must_use]
pub fn record_json(record: &Record, streams: &[StreamDesc], instrument: &str) -> String {
    let mut out = String::with_capacity(256);
    let venue = Venue::from_u8(record.venue).map_or("unknown", Venue::as_str);
    let stream = streams
        .iter()
        .find(|s| s.id == record.stream)
        .map_or("connection", |s| s.name);
    let kind = RecordKind::from_u8(record.kind).map_or("unknown", RecordKind::as_str);
    let _ = write!(
        out,
        "{{\"venue\":\"{venue}\",\"stream\":\"{stream}\",\"kind\":\"{kind}\",\"instrument\":"
    );
    escape(&mut out, instrument);
    let columns = body_columns(record);
    let find = |name: &str| columns.iter().find(|c| c.name == name);
    let side = find("side").map(|c| c.value(record));
    let _ = match &side {
        Some(Value::Name(name)) => write!(out, ",\"side\":\"{name}\""),
        _ => write!(out, ",\"side\":\"none\""),
    };
    let exact = find("value_e18").filter(|c| !c.is_null(record));
    for (key, column) in [
        ("price", exact.or_else(|| find("price"))),
        ("size", find("size")),
    ] {
        let _ = match column.map(|c| c.value(record)) {
            Some(Value::Null) | None => write!(out, ",\"{key}\":null"),
            Some(value) => write!(out, ",\"{key}\":\"{value}\""),
        };
    }
    let _ = write!(
        out,
        ",\"exchange_ts_ns\":{},\"sequence\":{}",
        record.exchange_ts_ns, record.venue_seq
    );
    for column in columns
        .iter()
        .filter(|c| !c.is_derived() && !SUMMARY.contains(&c.name))
    {
        let _ = write!(out, ",\"{}\":", column.name);
        json_value(&mut out, column, &column.value(record));
    }
    let mut flags = Vec::new();
    if record.has_flags(FLAG_SNAPSHOT) {
        flags.push("\"snapshot\"");
    }
    if record.has_flags(FLAG_BATCH_BEGIN) {
        flags.push("\"batch_begin\"");
    }
    if record.has_flags(FLAG_BATCH_END) {
        flags.push("\"batch_end\"");
    }
    let _ = write!(out, ",\"flags\":[{}]}}", flags.join(","));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> serde_json::Value {
        serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
    }

    /// A record of `kind` whose named body columns hold the given raw values.
    fn record(kind: RecordKind, venue: Venue, values: &[(&str, i128)]) -> Record {
        let mut record = Record::zeroed();
        (record.kind, record.venue) = (kind as u8, venue as u8);
        for (name, value) in values {
            if let Some(c) = body_columns(&record).iter().find(|c| c.name == *name) {
                c.write_signed(&mut record, *value);
            }
        }
        record
    }

    #[test]
    fn renders_the_summary_and_the_kind_columns() {
        let values = [
            ("price", 48_000_000),
            ("size", 3_000_000_000),
            ("trade_id", 77),
            ("side", 1),
        ];
        let mut trade = record(RecordKind::Trade, Venue::Polymarket, &values);
        trade.flags = FLAG_BATCH_END;
        let json = parse(&record_json(&trade, &[], "up\"token"));
        assert_eq!(json["instrument"], "up\"token");
        assert_eq!(json["side"], "buy");
        assert_eq!(json["price"], "0.48");
        assert_eq!(json["size"], "30");
        assert_eq!(json["trade_id"], 77);
        assert_eq!(json["flags"][0], "batch_end");

        let values = [
            ("value_e18", 79_696_948_174_287_960_000_000),
            ("price", 7_969_694_817_428),
            ("price_type", 1),
        ];
        let index = record(RecordKind::IndexPrice, Venue::ChainlinkRtds, &values);
        let json = parse(&record_json(&index, &[], "btc/usd"));
        assert_eq!(json["price"], "79696.94817428796");
        assert_eq!(json["value_e18"], "79696948174287960000000");
        assert_eq!(json["price_type"], "index");
        assert_eq!(json["size"], serde_json::Value::Null);
    }
}
