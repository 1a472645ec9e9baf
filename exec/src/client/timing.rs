//! The order client's timing points for the trade process's stage histograms
//! (`ringbolt_telemetry::stages::trade`): decision → order bytes, bytes → wire, and order and
//! cancel round trips per response class. Fixed-size state, no allocation after start-up.

use ringbolt_telemetry::StageRecorder;
use ringbolt_telemetry::stages::StageId;
use ringbolt_telemetry::stages::trade::{
    CANCEL_RTT, DECISION_TO_ORDER_BYTES, ORDER_BYTES_TO_WIRE, ORDER_RTT, rtt_class,
};

/// Requests whose send stamps are kept (by tag modulo this; an older request in the same slot
/// is forgotten and counted in [`ClientTiming::forgotten`]).
const SLOTS: usize = 256;

#[derive(Clone, Copy, Debug, Default)]
struct Sent {
    tag: u64,
    sent_ns: i64,
    /// `ORDER_RTT` or `CANCEL_RTT`; `None` = slot free.
    base: Option<StageId>,
}

/// The clock stamps (ns since the Unix epoch, [`ringbolt_bus::now_ns`]) of the last order sent:
/// where a submit's time goes, for benchmarks and tests. 0 = not reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SubmitStamps {
    /// The order client got the intent (start of the submit).
    pub decided_ns: i64,
    /// The request bytes were ready (slot taken, L2 headers in place).
    pub bytes_ready_ns: i64,
    /// The HTTP/2 frames were sealed and the send queued on the ring (an SQE, not yet entered).
    pub handed_ns: i64,
    /// The order was booked SUBMITTED, just before the submit returns: after the enter that
    /// sends the bytes in block mode (the kernel's TCP send runs inline; spin mode leaves the
    /// send to the ring thread's next turn) and after the order was tracked (send first, book
    /// after).
    pub sent_ns: i64,
}

/// Send stamps of requests in flight and the recorder they end in.
#[derive(Debug)]
pub(crate) struct ClientTiming {
    recorder: Option<StageRecorder>,
    sent: Box<[Sent; SLOTS]>,
    /// When the current order's request bytes were ready (0 = none pending).
    bytes_ready_ns: i64,
    /// The last order's stamps (the one being sent, until it is).
    pub(crate) last: SubmitStamps,
    /// Round trips not measured: their slot was reused before the answer.
    pub(crate) forgotten: u64,
}

impl Default for ClientTiming {
    fn default() -> Self {
        ClientTiming {
            recorder: None,
            sent: Box::new([Sent::default(); SLOTS]),
            bytes_ready_ns: 0,
            last: SubmitStamps::default(),
            forgotten: 0,
        }
    }
}

impl ClientTiming {
    pub(crate) fn set_recorder(&mut self, recorder: StageRecorder) {
        self.recorder = Some(recorder);
    }

    /// Hands the recorder's interval over when the dumper asked (once per poll).
    #[inline]
    pub(crate) fn maybe_rotate(&mut self) {
        if let Some(r) = &mut self.recorder {
            r.maybe_rotate();
        }
    }

    /// The order's request bytes are ready (`decided_ns`: when the order client got the intent).
    #[inline]
    pub(crate) fn bytes_ready(&mut self, decided_ns: i64, ready_ns: i64) {
        self.bytes_ready_ns = ready_ns;
        self.last = SubmitStamps {
            decided_ns,
            bytes_ready_ns: ready_ns,
            handed_ns: 0,
            sent_ns: 0,
        };
        if let Some(r) = &mut self.recorder {
            r.record_between(DECISION_TO_ORDER_BYTES, decided_ns, ready_ns);
        }
    }

    /// The request `tag` left (`order`: an order, else a cancel) at `wire_ns`.
    #[inline]
    pub(crate) fn sent(&mut self, tag: u64, order: bool, wire_ns: i64) {
        let ready = std::mem::take(&mut self.bytes_ready_ns);
        if order {
            self.last.sent_ns = wire_ns;
        }
        if let Some(r) = &mut self.recorder
            && order
            && ready > 0
        {
            r.record_between(ORDER_BYTES_TO_WIRE, ready, wire_ns);
        }
        let slot = &mut self.sent[(tag % SLOTS as u64) as usize];
        if slot.base.is_some() {
            self.forgotten += 1;
        }
        *slot = Sent {
            tag,
            sent_ns: wire_ns,
            base: Some(if order { ORDER_RTT } else { CANCEL_RTT }),
        };
    }

    /// The request's frames are sealed and queued on the ring at `handed_ns`.
    #[inline]
    pub(crate) fn handed(&mut self, handed_ns: i64) {
        self.last.handed_ns = handed_ns;
    }

    /// The request `tag` finished at `now_ns` with `status` (`None`: no response).
    #[inline]
    pub(crate) fn finished(&mut self, tag: u64, status: Option<u16>, now_ns: i64) {
        let slot = &mut self.sent[(tag % SLOTS as u64) as usize];
        let Some(base) = slot.base.filter(|_| slot.tag == tag) else {
            return;
        };
        slot.base = None;
        if let Some(r) = &mut self.recorder {
            r.record_between(rtt_class(base, status), slot.sent_ns, now_ns);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use ringbolt_telemetry::stages::trade::TABLE;
    use ringbolt_telemetry::{HlogSettings, Telemetry};

    use super::*;

    #[test]
    fn round_trips_land_in_their_class_and_reused_slots_are_counted() {
        let telemetry = Telemetry::start(TABLE, HlogSettings::default()).unwrap();
        let metrics = telemetry.metrics();
        let mut t = ClientTiming::default();
        t.set_recorder(telemetry.recorder());
        t.bytes_ready(100, 400);
        t.handed(700);
        t.sent(7, true, 1_000);
        t.finished(7, Some(503), 51_000);
        t.sent(8, false, 2_000);
        // The last order's stamps; a cancel sent after it leaves them alone.
        let order = SubmitStamps {
            decided_ns: 100,
            bytes_ready_ns: 400,
            handed_ns: 700,
            sent_ns: 1_000,
        };
        assert_eq!(t.last, order);
        t.finished(8, None, 3_000);
        t.finished(8, Some(200), 9_000); // already finished: ignored
        t.sent(9, true, 1);
        t.sent(9 + SLOTS as u64, true, 2);
        assert_eq!(t.forgotten, 1);
        drop(t); // hands its set to the dumper
        telemetry.finish().unwrap();
        let count = |stage: &str| {
            metrics
                .snapshot()
                .iter()
                .find(|s| s.stage == stage)
                .map(|s| (s.count, s.sum_ns))
                .unwrap()
        };
        assert_eq!(count("decision_to_order_bytes"), (1, 300));
        assert_eq!(count("order_bytes_to_wire"), (1, 600));
        assert_eq!(count("order_rtt_5xx"), (1, 50_000));
        assert_eq!(count("cancel_rtt_lost"), (1, 1_000));
        assert_eq!(count("cancel_rtt_2xx"), (0, 0));
    }
}
