//! Event time: the one clock of every deterministic consumer of records (the decision engine,
//! the paper exchange), so live runs and replays agree on it.

use ringbolt_bus::Record;

/// The record's event time (ns since the epoch): its receive stamp, else its exchange stamp,
/// else its publish stamp.
#[must_use]
pub fn event_ts(rec: &Record) -> i64 {
    if rec.recv_ts_ns > 0 {
        rec.recv_ts_ns
    } else if rec.exchange_ts_ns > 0 {
        rec.exchange_ts_ns
    } else {
        rec.publish_ts_ns
    }
}
