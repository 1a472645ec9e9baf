//! Per-stream counters (messages, bytes, parse errors, gaps, resyncs, reconnects, …), the
//! feed-status record built from them, and a Prometheus text-format renderer.

use core::fmt::Write as _;

use ringbolt_bus::{FeedState, FeedStatusBody, Record, Venue};

/// Highest stream number + 1 a venue may use. Stream 0 is the connection itself (frames that
/// could not be attributed to a stream: malformed, control, heartbeats).
pub const MAX_STREAMS: usize = 16;

/// One entry of a venue's stream catalogue (`Record.stream`): what the counters of a stream
/// are labelled with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamDesc {
    /// The `Record.stream` byte.
    pub id: u8,
    /// Stable name (metrics label, `feeds parse` output).
    pub name: &'static str,
    /// What it carries and its continuity rule, one line.
    pub doc: &'static str,
}

impl StreamDesc {
    /// A catalogue entry.
    #[must_use]
    pub const fn new(id: u8, name: &'static str, doc: &'static str) -> Self {
        StreamDesc { id, name, doc }
    }
}

/// Counters of one stream. All monotonic since the collector started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamCounters {
    /// Messages attributed to the stream.
    pub messages: u64,
    /// Bytes of those messages.
    pub bytes: u64,
    /// Records emitted.
    pub records: u64,
    /// Frames that failed to parse.
    pub parse_errors: u64,
    /// Sequence gaps detected.
    pub gaps: u64,
    /// Updates missed in gaps, when countable.
    pub gap_records: u64,
    /// Resynchronisations completed (snapshot applied after a gap or reconnect).
    pub resyncs: u64,
    /// Reconnects.
    pub reconnects: u64,
    /// Updates dropped because the book was not synchronised (awaiting a snapshot) or stale.
    pub dropped_unsynced: u64,
    /// Events for instruments that are not subscribed.
    pub unknown_instrument: u64,
    /// Checksum mismatches.
    pub checksum_errors: u64,
}

/// The counters of every stream of one connection.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    streams: [StreamCounters; MAX_STREAMS],
}

impl Counters {
    /// All zero.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Mutable counters of `stream` (out-of-range streams are folded into stream 0).
    #[inline]
    pub fn stream_mut(&mut self, stream: u8) -> &mut StreamCounters {
        let i = usize::from(stream);
        let i = if i < MAX_STREAMS { i } else { 0 };
        &mut self.streams[i]
    }

    /// Counters of `stream`.
    #[must_use]
    pub fn stream(&self, stream: u8) -> StreamCounters {
        self.streams
            .get(usize::from(stream))
            .copied()
            .unwrap_or_default()
    }

    /// Sum over all streams.
    #[must_use]
    pub fn total(&self) -> StreamCounters {
        let mut t = StreamCounters::default();
        for s in &self.streams {
            t.messages += s.messages;
            t.bytes += s.bytes;
            t.records += s.records;
            t.parse_errors += s.parse_errors;
            t.gaps += s.gaps;
            t.gap_records += s.gap_records;
            t.resyncs += s.resyncs;
            t.reconnects += s.reconnects;
            t.dropped_unsynced += s.dropped_unsynced;
            t.unknown_instrument += s.unknown_instrument;
            t.checksum_errors += s.checksum_errors;
        }
        t
    }

    /// A feed-status record for `stream` in `state`, carrying the stream's counters.
    #[must_use]
    pub fn status_record(&self, venue: Venue, stream: u8, state: FeedState) -> Record {
        let c = self.stream(stream);
        let body = FeedStatusBody {
            messages: c.messages,
            gaps: c.gaps,
            gap_records: c.gap_records,
            reconnects: c.reconnects,
            resyncs: c.resyncs,
            parse_errors: c.parse_errors,
            state: state as u8,
            reserved: [0; 31],
        };
        Record::new(venue, stream, 0, &body)
    }
}

/// Renders counters of several connections in the Prometheus text exposition format (0.0.4).
///
/// `feeds` pairs a venue and its stream catalogue with its counters; stream 0 is labelled
/// `connection`.
#[must_use]
pub fn render_prometheus(feeds: &[(Venue, &[StreamDesc], &Counters)]) -> String {
    let unlabelled: Vec<_> = feeds.iter().map(|&(v, s, c)| (None, v, s, c)).collect();
    render(&unlabelled)
}

/// As [`render_prometheus`] for named sources: every series also carries a `source` label
/// (`{venue="…",source="…",stream="…"}`), so two sources of one venue (Binance USD-M's
/// `/public` and `/market` routes, Bybit spot and linear) give distinct series.
#[must_use]
pub fn render_prometheus_by_source(feeds: &[(&str, Venue, &[StreamDesc], &Counters)]) -> String {
    let labelled: Vec<_> = feeds
        .iter()
        .map(|&(n, v, s, c)| (Some(n), v, s, c))
        .collect();
    render(&labelled)
}

type Labelled<'a> = (Option<&'a str>, Venue, &'a [StreamDesc], &'a Counters);

fn render(feeds: &[Labelled<'_>]) -> String {
    type Getter = fn(&StreamCounters) -> u64;
    const METRICS: &[(&str, &str, Getter)] = &[
        ("messages", "Messages received", |c| c.messages),
        ("bytes", "Bytes received", |c| c.bytes),
        ("records", "Bus records emitted", |c| c.records),
        ("parse_errors", "Frames that failed to parse", |c| {
            c.parse_errors
        }),
        ("gaps", "Sequence gaps detected", |c| c.gaps),
        ("gap_records", "Updates missed in gaps", |c| c.gap_records),
        ("resyncs", "Resynchronisations", |c| c.resyncs),
        ("reconnects", "Reconnects", |c| c.reconnects),
        (
            "dropped_unsynced",
            "Updates dropped while not synchronised",
            |c| c.dropped_unsynced,
        ),
        (
            "unknown_instrument",
            "Events for unsubscribed instruments",
            |c| c.unknown_instrument,
        ),
        ("checksum_errors", "Book checksum mismatches", |c| {
            c.checksum_errors
        }),
    ];
    let mut out = String::with_capacity(4096);
    for (metric, help, get) in METRICS {
        let _ = writeln!(out, "# HELP ringbolt_feed_{metric}_total {help}.");
        let _ = writeln!(out, "# TYPE ringbolt_feed_{metric}_total counter");
        for &(source, venue, streams, counters) in feeds {
            let labels = match source {
                Some(n) => format!("venue=\"{venue}\",source=\"{n}\""),
                None => format!("venue=\"{venue}\""),
            };
            for i in 0..MAX_STREAMS {
                let c = counters.streams[i];
                let name = if i == 0 {
                    Some("connection")
                } else {
                    streams
                        .iter()
                        .find(|s| usize::from(s.id) == i)
                        .map(|s| s.name)
                };
                let Some(name) = name else { continue };
                let _ = writeln!(
                    out,
                    "ringbolt_feed_{metric}_total{{{labels},stream=\"{name}\"}} {}",
                    get(&c)
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_record_and_prometheus() {
        let mut c = Counters::new();
        c.stream_mut(1).messages = 5;
        c.stream_mut(1).gaps = 2;
        c.stream_mut(0).parse_errors = 1;
        c.stream_mut(200).messages += 1; // folded into 0
        let r = c.status_record(Venue::Coinbase, 1, FeedState::GapDetected);
        let b = r.body_as::<FeedStatusBody>().unwrap();
        assert_eq!(
            (b.messages, b.gaps, b.state),
            (5, 2, FeedState::GapDetected as u8)
        );
        const S: &[StreamDesc] = &[StreamDesc {
            id: 1,
            name: "ticker",
            doc: "",
        }];
        let text = render_prometheus_by_source(&[
            ("coinbase", Venue::Coinbase, S, &c),
            ("coinbase_b", Venue::Coinbase, S, &Counters::new()),
        ]);
        assert!(text.contains(
            "ringbolt_feed_messages_total{venue=\"coinbase\",source=\"coinbase\",stream=\"ticker\"} 5\n"
        ));
        assert!(text.contains(
            "ringbolt_feed_messages_total{venue=\"coinbase\",source=\"coinbase_b\",stream=\"ticker\"} 0\n"
        ));
        let text = render_prometheus(&[(Venue::Coinbase, S, &c)]);
        assert!(
            text.contains("ringbolt_feed_messages_total{venue=\"coinbase\",stream=\"ticker\"} 5\n")
        );
        assert!(text.contains(
            "ringbolt_feed_messages_total{venue=\"coinbase\",stream=\"connection\"} 1\n"
        ));
        assert!(text.contains(
            "ringbolt_feed_parse_errors_total{venue=\"coinbase\",stream=\"connection\"} 1\n"
        ));
        assert!(text.contains("# TYPE ringbolt_feed_gaps_total counter\n"));
        assert_eq!(c.total().messages, 6);
    }
}
