//! The stages each process records, defined once: the `.hlog` tags, the `stage` label of
//! `ringbolt_stage_latency_ns` on `/metrics`, and the rows of `ringbolt report latency`.
//!
//! A stage is an index into its process's table ([`StageId`]); recording is an array index, so
//! the hot path never compares strings.

/// A stage of one process: the index of its tag in the process's [`StageTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StageId(pub u8);

impl StageId {
    /// The index into the table's histograms.
    #[must_use]
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// A process's name (the `process` label and the dump files' prefix) and its stage tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StageTable {
    /// Process name: `collector`, `trade`, `archive`.
    pub process: &'static str,
    /// Stage tags in index order.
    pub stages: &'static [&'static str],
}

impl StageTable {
    /// The stage with this tag.
    #[must_use]
    pub fn id(&self, tag: &str) -> Option<StageId> {
        let i = self.stages.iter().position(|s| *s == tag)?;
        u8::try_from(i).ok().map(StageId)
    }

    /// The tag of `stage` (`"?"` for an index outside the table).
    #[must_use]
    pub fn tag(&self, stage: StageId) -> &'static str {
        self.stages.get(stage.index()).copied().unwrap_or("?")
    }
}

/// `ringbolt feeds`: per venue message that produced records, on the ring thread.
pub mod collector {
    use super::{StageId, StageTable};
    /// Socket receive stamp → the adapter's first record (parsing done).
    pub const RECV_TO_PARSED: StageId = StageId(0);
    /// First record parsed → the message's last record published on the bus.
    pub const PARSED_TO_BUS: StageId = StageId(1);
    /// Socket receive stamp → the message's last record on the bus (the sum of the two above).
    pub const RECV_TO_BUS: StageId = StageId(2);
    /// The collector's table.
    pub const TABLE: StageTable = StageTable {
        process: "collector",
        stages: &["recv_to_parsed", "parsed_to_bus", "recv_to_bus"],
    };
}

/// `ringbolt trade`: the reflex loop and exec's order client (both on the reflex thread).
///
/// Round trips are kept per response class, as a suffix of the stage: `_2xx` (a 1xx–3xx
/// status), `_4xx`, `_5xx` and `_lost` (no response: request timeout, stream reset or the
/// connection lost). See [`trade::rtt_class`].
pub mod trade {
    use super::{StageId, StageTable};
    /// The trigger record's bus publish stamp → the decision's publish stamp.
    pub const BUS_TO_DECISION: StageId = StageId(0);
    /// Decision published → the order's signed request bytes ready (risk check, pre-signed slot,
    /// L2 HMAC).
    pub const DECISION_TO_ORDER_BYTES: StageId = StageId(1);
    /// Request bytes ready → handed to the HTTP/2 connection (SUBMITTED).
    pub const ORDER_BYTES_TO_WIRE: StageId = StageId(2);
    /// SUBMITTED → the venue's answer to `POST /order(s)`; `+ class` (0..4) per [`rtt_class`].
    pub const ORDER_RTT: StageId = StageId(3);
    /// A cancel's send → the venue's answer; `+ class` (0..4) per [`rtt_class`].
    pub const CANCEL_RTT: StageId = StageId(7);
    /// The trade process's table.
    pub const TABLE: StageTable = StageTable {
        process: "trade",
        stages: &[
            "bus_to_decision",
            "decision_to_order_bytes",
            "order_bytes_to_wire",
            "order_rtt_2xx",
            "order_rtt_4xx",
            "order_rtt_5xx",
            "order_rtt_lost",
            "cancel_rtt_2xx",
            "cancel_rtt_4xx",
            "cancel_rtt_5xx",
            "cancel_rtt_lost",
        ],
    };

    /// The stage of a round trip: `base` ([`ORDER_RTT`] or [`CANCEL_RTT`]) plus the response
    /// class of `status` (`None` = no response).
    #[must_use]
    #[inline]
    pub const fn rtt_class(base: StageId, status: Option<u16>) -> StageId {
        let class = match status {
            None => 3,
            Some(s) if s >= 500 => 2,
            Some(s) if s >= 400 => 1,
            Some(_) => 0,
        };
        StageId(base.0 + class)
    }
}

/// `ringbolt archive`.
pub mod archive {
    use super::{StageId, StageTable};
    /// A record's bus publish stamp → the flush that made it durable committed (part files
    /// fsynced and renamed, state file committed).
    pub const BUS_TO_DURABLE: StageId = StageId(0);
    /// The archiver's table.
    pub const TABLE: StageTable = StageTable {
        process: "archive",
        stages: &["bus_to_durable"],
    };
}

/// Every process's table, in pipeline order.
pub const ALL: [StageTable; 3] = [collector::TABLE, trade::TABLE, archive::TABLE];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_and_classes_land_on_their_tags() {
        for table in ALL {
            for (i, tag) in table.stages.iter().enumerate() {
                assert_eq!(table.id(tag), Some(StageId(i as u8)));
                assert_eq!(table.tag(StageId(i as u8)), *tag);
            }
        }
        let t = trade::TABLE;
        let order = trade::ORDER_RTT;
        let cancel = trade::CANCEL_RTT;
        assert_eq!(t.tag(trade::rtt_class(order, Some(200))), "order_rtt_2xx");
        assert_eq!(t.tag(trade::rtt_class(order, Some(425))), "order_rtt_4xx");
        assert_eq!(t.tag(trade::rtt_class(order, Some(503))), "order_rtt_5xx");
        assert_eq!(t.tag(trade::rtt_class(order, None)), "order_rtt_lost");
        assert_eq!(t.tag(trade::rtt_class(cancel, Some(200))), "cancel_rtt_2xx");
        assert_eq!(t.tag(trade::rtt_class(cancel, None)), "cancel_rtt_lost");
    }
}
