//! The layout description that pins the bus contract.
//!
//! [`describe`] renders every shared type's size, alignment and field offsets plus the enum
//! values and scales as text. The schema-drift gate compares it with the committed
//! `bus/schema/layout-v<LAYOUT_VERSION>.txt`; [`fingerprint`] (FNV-1a of the text) is stored in
//! every segment header so that two builds with different layouts refuse to talk.

use core::fmt::Write as _;
use std::sync::OnceLock;

use crate::columns::StructLayout;
use crate::layout::{
    ConsumerSlot, HEADER_SIZE, InstrumentEntry, LAYOUT_VERSION, MAX_CONSUMERS, RingHeader,
    SegmentHeader, Slot,
};
use crate::record::{
    FeedState, KINDS, OrderState, PRICE_SCALE, PROB_SCALE, RATE_SCALE, Record, RecordKind,
    SIZE_SCALE, Side, VALUE_E18_SCALE, Venue,
};
use crate::struct_layout;

/// Every struct the layout pins, in description order: the record, each kind's body (from its
/// [`crate::columns::KindDesc`]), then the segment's own structures.
fn structs() -> Vec<StructLayout> {
    let mut out = vec![struct_layout!(Record {
        seq,
        publish_ts_ns,
        recv_ts_ns,
        exchange_ts_ns,
        venue_seq,
        instrument,
        kind,
        venue,
        stream,
        flags,
        body
    })];
    out.extend(KINDS.iter().map(|d| d.layout));
    out.extend([
        struct_layout!(SegmentHeader {
            magic,
            layout_version,
            header_size,
            record_size,
            ring_count,
            capacity,
            total_size,
            layout_fingerprint,
            instrument_capacity,
            reserved0,
            created_ts_ns,
            reserved1,
            state,
            producer_pid,
            epoch,
            epoch_started_ts_ns,
            epoch_count,
            instrument_count,
            reserved2,
            wake_seq,
            sleepers,
            reserved3
        }),
        struct_layout!(RingHeader {
            head,
            pad0,
            epoch_start_seq,
            prev_epoch_end_seq,
            pad1
        }),
        struct_layout!(ConsumerSlot {
            pid,
            ring,
            cursor,
            lost,
            asleep,
            pad
        }),
        struct_layout!(InstrumentEntry {
            version,
            id,
            venue,
            state,
            len,
            pad,
            name
        }),
        struct_layout!(Slot { words }),
    ]);
    out
}

/// Appends `prefix name=byte` for every value of a wire enum.
fn enum_lines(out: &mut String, prefix: &str, names: &[(u8, &str)]) {
    for (value, name) in names {
        let _ = writeln!(out, "{prefix} {name}={value}");
    }
}

fn render() -> String {
    let mut out = String::new();
    let _ = writeln!(out, "layout_version={LAYOUT_VERSION}");
    let _ = writeln!(
        out,
        "header_size={HEADER_SIZE} max_consumers={MAX_CONSUMERS}"
    );
    let _ = writeln!(
        out,
        "scales price={PRICE_SCALE} size={SIZE_SCALE} value_e18={VALUE_E18_SCALE} rate={RATE_SCALE} prob={PROB_SCALE}"
    );
    enum_lines(&mut out, "kind", RecordKind::CODES.names);
    enum_lines(&mut out, "venue", Venue::CODES.names);
    enum_lines(&mut out, "side", Side::CODES.names);
    enum_lines(&mut out, "feed_state", FeedState::CODES.names);
    enum_lines(&mut out, "order_state", OrderState::CODES.names);
    for s in structs() {
        let _ = writeln!(out, "{} size={} align={}", s.name, s.size, s.align);
        for f in s.fields {
            let _ = writeln!(out, "  {} offset={} size={}", f.name, f.offset, f.size);
        }
    }
    out
}

/// The layout description text.
#[must_use]
pub fn describe() -> String {
    render()
}

/// FNV-1a 64 of [`describe`], cached.
#[must_use]
pub fn fingerprint() -> u64 {
    static FINGERPRINT: OnceLock<u64> = OnceLock::new();
    *FINGERPRINT.get_or_init(|| {
        describe()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
                (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
            })
    })
}

/// Path of the committed description for this layout version, relative to the bus crate.
#[must_use]
pub fn committed_file_name() -> String {
    format!("schema/layout-v{LAYOUT_VERSION}.txt")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_data_structs_list_every_byte() {
        for s in structs() {
            let (name, size) = (s.name, s.size);
            let listed: usize = s.fields.iter().map(|f| f.size).sum();
            if name == "SegmentHeader" {
                // The identity line and control line leave alignment padding by design.
                assert!(listed <= size, "{name}");
                continue;
            }
            assert_eq!(
                listed, size,
                "{name}: listed fields cover {listed} of {size} bytes"
            );
        }
    }

    /// The schema-drift gate: the layout must equal the committed description of its version
    /// (`RINGBOLT_BLESS=1` writes it, for a reviewed layout bump).
    #[test]
    fn layout_matches_committed_schema_for_this_version() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(committed_file_name());
        let current = describe();
        if std::env::var_os("RINGBOLT_BLESS").is_some() {
            std::fs::write(&path, &current).expect("writing the layout description");
            return;
        }
        let Ok(committed) = std::fs::read_to_string(&path) else {
            panic!(
                "no committed layout for v{LAYOUT_VERSION}: run `ringbolt bus layout > bus/{}` \
                 after reviewing the change, and commit it",
                committed_file_name()
            );
        };
        assert!(
            committed == current,
            "bus layout changed without bumping LAYOUT_VERSION (v{LAYOUT_VERSION}).\n\
             Bump LAYOUT_VERSION in bus/src/layout.rs and record the new layout with \
             `ringbolt bus layout > bus/schema/layout-v<N>.txt`.\n--- committed\n{committed}\n--- current\n{current}"
        );
    }
}
