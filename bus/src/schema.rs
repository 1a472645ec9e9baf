//! The layout description that pins the bus contract.
//!
//! [`describe`] renders every shared type's size, alignment and field offsets plus the enum
//! values and scales as text. The schema-drift gate compares it with the committed
//! `bus/schema/layout-v<LAYOUT_VERSION>.txt`; [`fingerprint`] (FNV-1a of the text) is stored in
//! every segment header so that two builds with different layouts refuse to talk.

use core::fmt::Write as _;
use core::mem::{align_of, offset_of, size_of};
use std::sync::OnceLock;

use crate::layout::{
    ConsumerSlot, HEADER_SIZE, InstrumentEntry, LAYOUT_VERSION, MAX_CONSUMERS, RingHeader,
    SegmentHeader, Slot,
};
use crate::record::{
    BookLevel, Decision, FeedState, FeedStatusBody, Funding, Heartbeat, IndexPrice, Liquidation,
    OrderState, OrderTransition, PRICE_SCALE, PROB_SCALE, RATE_SCALE, Record, RecordKind,
    SIZE_SCALE, Side, TopOfBook, Trade, VALUE_E18_SCALE, Venue,
};

fn field_size<T, F>(_: fn(&T) -> &F) -> usize {
    size_of::<F>()
}

/// Appends one struct's description; returns the sum of the listed field sizes.
macro_rules! describe_struct {
    ($out:ident, $ty:ty { $($field:ident),+ $(,)? }) => {{
        let _ = writeln!($out, "{} size={} align={}", stringify!($ty), size_of::<$ty>(), align_of::<$ty>());
        let mut listed = 0usize;
        $(
            let size = field_size(|v: &$ty| &v.$field);
            listed += size;
            let _ = writeln!($out, "  {} offset={} size={}", stringify!($field), offset_of!($ty, $field), size);
        )+
        (stringify!($ty), listed, size_of::<$ty>())
    }};
}

/// Every struct described, with the sum of its listed fields and its size (a test checks that
/// plain-data structs list every byte).
fn render() -> (String, Vec<(&'static str, usize, usize)>) {
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
    for kind in RecordKind::ALL {
        let _ = writeln!(out, "kind {}={}", kind.as_str(), *kind as u8);
    }
    for venue in Venue::ALL {
        let _ = writeln!(out, "venue {}={}", venue.as_str(), *venue as u8);
    }
    for side in Side::ALL {
        let _ = writeln!(out, "side {}={}", side.as_str(), *side as u8);
    }
    for state in FeedState::ALL {
        let _ = writeln!(out, "feed_state {}={}", state.as_str(), *state as u8);
    }
    for state in OrderState::ALL {
        let _ = writeln!(out, "order_state {}={}", state.as_str(), *state as u8);
    }
    let structs = vec![
        describe_struct!(
            out,
            Record {
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
            }
        ),
        describe_struct!(
            out,
            Trade {
                price,
                size,
                trade_id,
                side,
                reserved
            }
        ),
        describe_struct!(
            out,
            BookLevel {
                price,
                size,
                side,
                reserved
            }
        ),
        describe_struct!(
            out,
            TopOfBook {
                bid_price,
                bid_size,
                ask_price,
                ask_size,
                reserved
            }
        ),
        describe_struct!(
            out,
            IndexPrice {
                value_e18,
                price,
                price_type,
                reserved
            }
        ),
        describe_struct!(
            out,
            Funding {
                rate,
                next_funding_ts_ns,
                mark_price,
                reserved
            }
        ),
        describe_struct!(
            out,
            Liquidation {
                price,
                size,
                side,
                reserved
            }
        ),
        describe_struct!(
            out,
            FeedStatusBody {
                messages,
                gaps,
                gap_records,
                reconnects,
                resyncs,
                parse_errors,
                state,
                reserved
            }
        ),
        describe_struct!(
            out,
            Decision {
                trigger_seq,
                book_seq,
                reference_seq,
                probability,
                edge,
                price,
                size,
                client_order_id,
                feature_schema_hash,
                slot,
                fired,
                reason,
                side,
                outcome,
                reserved
            }
        ),
        describe_struct!(
            out,
            OrderTransition {
                client_order_id,
                price,
                size,
                filled,
                venue_order_id,
                error_class,
                http_status,
                from_state,
                to_state,
                side,
                paper,
                reserved
            }
        ),
        describe_struct!(
            out,
            Heartbeat {
                pid,
                role,
                published,
                reserved
            }
        ),
        describe_struct!(
            out,
            SegmentHeader {
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
                instrument_count
            }
        ),
        describe_struct!(
            out,
            RingHeader {
                head,
                pad0,
                epoch_start_seq,
                prev_epoch_end_seq,
                pad1
            }
        ),
        describe_struct!(
            out,
            ConsumerSlot {
                pid,
                ring,
                cursor,
                lost,
                pad
            }
        ),
        describe_struct!(
            out,
            InstrumentEntry {
                state,
                len,
                venue,
                pad,
                name
            }
        ),
        describe_struct!(out, Slot { words }),
    ];
    (out, structs)
}

/// The layout description text.
#[must_use]
pub fn describe() -> String {
    render().0
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
        let (_, structs) = render();
        for (name, listed, size) in structs {
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

    /// The schema-drift gate: the layout must equal the committed description of its version.
    #[test]
    fn layout_matches_committed_schema_for_this_version() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(committed_file_name());
        let current = describe();
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
