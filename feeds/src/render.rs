//! Renders normalized records as one-line JSON objects (offline tools: `ringbolt feeds parse`).
//! Prices and sizes are exact decimal strings from the fixed-point values.

use core::fmt::Write as _;

use ringbolt_bus::{
    BookLevel, FLAG_BATCH_BEGIN, FLAG_BATCH_END, FLAG_SNAPSHOT, FeedState, FeedStatusBody,
    IndexPrice, Record, RecordKind, Side, TopOfBook, Trade, Venue,
};

use crate::adapter::StreamDesc;
use crate::decimal::format_fixed;

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

fn e8(v: i64) -> String {
    format_fixed(i128::from(v), 8)
}

fn side_name(raw: u8) -> &'static str {
    Side::from_u8(raw).map_or("unknown", Side::as_str)
}

/// One JSON object for `record`: venue, stream, kind, instrument, side, price, size,
/// exchange_ts_ns, sequence, flags, plus kind-specific fields.
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
    let (side, price, size) = if let Some(t) = record.body_as::<Trade>() {
        (side_name(t.side), Some(e8(t.price)), Some(e8(t.size)))
    } else if let Some(l) = record.body_as::<BookLevel>() {
        (side_name(l.side), Some(e8(l.price)), Some(e8(l.size)))
    } else if let Some(i) = record.body_as::<IndexPrice>() {
        ("none", Some(format_fixed(i.value_e18, 18)), None)
    } else {
        ("none", None, None)
    };
    let _ = write!(out, ",\"side\":\"{side}\"");
    for (key, value) in [("price", price), ("size", size)] {
        match value {
            Some(v) => {
                let _ = write!(out, ",\"{key}\":\"{v}\"");
            }
            None => {
                let _ = write!(out, ",\"{key}\":null");
            }
        }
    }
    let _ = write!(
        out,
        ",\"exchange_ts_ns\":{},\"sequence\":{}",
        record.exchange_ts_ns, record.venue_seq
    );
    if let Some(t) = record.body_as::<Trade>() {
        let _ = write!(out, ",\"trade_id\":{}", t.trade_id);
    }
    if let Some(t) = record.body_as::<TopOfBook>() {
        let _ = write!(
            out,
            ",\"bid_price\":\"{}\",\"bid_size\":\"{}\",\"ask_price\":\"{}\",\"ask_size\":\"{}\"",
            e8(t.bid_price),
            e8(t.bid_size),
            e8(t.ask_price),
            e8(t.ask_size)
        );
    }
    if let Some(i) = record.body_as::<IndexPrice>() {
        let _ = write!(
            out,
            ",\"value_e18\":\"{}\",\"price_e8\":\"{}\",\"price_type\":{}",
            i.value_e18,
            e8(i.price),
            i.price_type
        );
    }
    if let Some(s) = record.body_as::<FeedStatusBody>() {
        let state = FeedState::from_u8(s.state).map_or("unknown", FeedState::as_str);
        let _ = write!(out, ",\"state\":\"{state}\",\"gaps\":{}", s.gaps);
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
