//! Per-connection session state machines (sans-IO): client frames in, response frames out,
//! market events filtered and wrapped per subscription by the venue's [`VenueSession`] from the
//! registry, and the gap / corrupt / checksum faults.

use std::str::FromStr;

use crate::binance::BadPath;
use crate::event::{Out, VenueEvent, VenueId};
use crate::hub::Hub;
use crate::venue::{self, VenueSession};

/// A fault that can be injected into a venue's live sessions (or, for `slow_handshake` and
/// `refuse`, into its listener).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Close the TCP connection abruptly (no close frame, no TLS close_notify).
    Disconnect,
    /// Stop sending anything (data and keep-alive replies) for `ms`, keeping the socket open.
    Stall {
        /// Duration, ms.
        ms: u64,
    },
    /// Drop the next `count` sequenced messages (sequence / update-id gap).
    Gap {
        /// Messages to drop.
        count: u32,
    },
    /// Replace the next `count` data frames by malformed JSON (each truncated mid-object).
    Corrupt {
        /// Frames to corrupt.
        count: u32,
    },
    /// The next `count` checksummed book messages carry a wrong checksum (venues with book
    /// checksums only; the venue module decides how).
    Checksum {
        /// Messages to falsify.
        count: u32,
    },
    /// Delay the TLS handshake of the next `count` new connections by `ms`.
    SlowHandshake {
        /// Delay, ms.
        ms: u64,
        /// Connections affected.
        count: u32,
    },
    /// PolyBolt: discard the next `count` frames of every subscribed channel without using
    /// sequence numbers and report them in the next frame's `dropped` (slow consumer).
    Dropped {
        /// Frames to discard per channel.
        count: u32,
    },
    /// Bitstamp: send `bts:request_reconnect` (the client must reconnect and resubscribe).
    RequestReconnect,
    /// Close every new TCP connection right after accepting it, for `ms`.
    Refuse {
        /// Duration, ms.
        ms: u64,
    },
}

/// A fault description could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("bad fault: {0}")]
pub struct BadFault(pub String);

/// Fault kinds, for messages.
pub const FAULT_KINDS: &str =
    "disconnect|stall|gap|corrupt|checksum|slow_handshake|refuse|dropped|request_reconnect";

impl Fault {
    /// Parse `kind` with optional `ms` / `count` (`stall` default 5000 ms, `slow_handshake`
    /// 3000 ms, `refuse` 5000 ms; counts default 1).
    pub fn parse(kind: &str, ms: Option<u64>, count: Option<u32>) -> Result<Self, BadFault> {
        let count = count.unwrap_or(1).max(1);
        match kind {
            "disconnect" => Ok(Fault::Disconnect),
            "stall" => Ok(Fault::Stall {
                ms: ms.unwrap_or(5_000),
            }),
            "gap" => Ok(Fault::Gap { count }),
            "corrupt" => Ok(Fault::Corrupt { count }),
            "checksum" => Ok(Fault::Checksum { count }),
            "slow_handshake" => Ok(Fault::SlowHandshake {
                ms: ms.unwrap_or(3_000),
                count,
            }),
            "refuse" => Ok(Fault::Refuse {
                ms: ms.unwrap_or(5_000),
            }),
            "dropped" => Ok(Fault::Dropped { count }),
            "request_reconnect" => Ok(Fault::RequestReconnect),
            other => Err(BadFault(format!("unknown kind {other:?} ({FAULT_KINDS})"))),
        }
    }

    /// Whether the fault acts on the venue's listener (new connections) rather than on live
    /// sessions.
    pub fn is_listener_fault(self) -> bool {
        matches!(self, Fault::SlowHandshake { .. } | Fault::Refuse { .. })
    }

    /// Check that `venue` can carry this fault (`checksum` needs checksummed book messages).
    pub fn check_applies(self, venue: VenueId) -> Result<(), BadFault> {
        let checksummed = venue::spec(venue).is_some_and(|s| s.checksum);
        if matches!(self, Fault::Checksum { .. }) && !checksummed {
            return Err(BadFault(format!(
                "{} has no checksummed book messages: checksum fault refused",
                venue.name()
            )));
        }
        let only = match self {
            Fault::Dropped { .. } => Some(VenueId::PolyBolt),
            Fault::RequestReconnect => Some(VenueId::Bitstamp),
            _ => None,
        };
        if only.is_some_and(|v| v != venue) {
            return Err(BadFault(format!(
                "{self:?} is a fault of {} only, not of {}",
                only.map_or("", VenueId::name),
                venue.name()
            )));
        }
        Ok(())
    }
}

impl FromStr for Fault {
    type Err = BadFault;
    fn from_str(s: &str) -> Result<Self, BadFault> {
        Self::parse(s, None, None)
    }
}

/// Why a WebSocket upgrade was refused.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Unknown path for the venue.
    #[error(transparent)]
    BadPath(#[from] BadPath),
    /// Path not served by this venue.
    #[error("{venue} serves no WebSocket at {path}")]
    NoEndpoint {
        /// Venue.
        venue: &'static str,
        /// Requested path.
        path: String,
    },
    /// The venue has no emulator.
    #[error("{0} is not emulated")]
    NotEmulated(&'static str),
}

/// One client connection's protocol state.
#[derive(Debug)]
pub struct Session {
    venue: VenueId,
    inner: Box<dyn VenueSession>,
    gap_pending: u32,
    corrupt_pending: u32,
    checksum_pending: u32,
    dropped: u64,
    corrupted: u64,
    checksums_falsified: u64,
    /// Frames a venue fault queued for the client ([`Session::take_pending`]).
    pending_out: Vec<Out>,
}

impl Session {
    /// Open a session for an upgrade request to `path`; returns the frames to send at once.
    /// `conn_no` numbers connections (used for the RTDS `connection_id`).
    pub fn open(venue: VenueId, path: &str, conn_no: u64) -> Result<(Self, Vec<Out>), OpenError> {
        let spec = venue::spec(venue).ok_or(OpenError::NotEmulated(venue.name()))?;
        let (inner, out) = (spec.open)(path, conn_no)?;
        Ok((
            Self {
                venue,
                inner,
                gap_pending: 0,
                corrupt_pending: 0,
                checksum_pending: 0,
                dropped: 0,
                corrupted: 0,
                checksums_falsified: 0,
                pending_out: Vec::new(),
            },
            out,
        ))
    }

    /// Venue.
    pub fn venue(&self) -> VenueId {
        self.venue
    }

    /// Handle a client text frame.
    pub fn on_client_text(&mut self, text: &str, hub: &Hub) -> Vec<Out> {
        self.inner.on_text(text, hub)
    }

    /// Filter / wrap a market event for this client, applying pending gap, checksum and
    /// corrupt faults.
    pub fn on_event(&mut self, ev: &VenueEvent) -> Option<String> {
        if ev.venue != self.venue {
            return None;
        }
        let text = self.inner.on_event(ev)?;
        if self.gap_pending > 0 && ev.sequenced {
            self.gap_pending -= 1;
            self.dropped += 1;
            return None;
        }
        if self.checksum_pending > 0
            && let Some(bad) = self.inner.corrupt_checksum(ev, &text)
        {
            self.checksum_pending -= 1;
            self.checksums_falsified += 1;
            return Some(bad);
        }
        if self.corrupt_pending > 0 {
            self.corrupt_pending -= 1;
            self.corrupted += 1;
            return Some(truncate(&text));
        }
        Some(text)
    }

    /// Arm a gap, corrupt or checksum fault (disconnect, stall and the listener faults are
    /// carried out by the I/O layer).
    pub fn inject(&mut self, fault: Fault) {
        match fault {
            Fault::Gap { count } => self.gap_pending += count,
            Fault::Corrupt { count } => self.corrupt_pending += count,
            Fault::Checksum { count } => self.checksum_pending += count,
            Fault::Dropped { .. } | Fault::RequestReconnect => {
                let out = self.inner.venue_fault(fault);
                self.pending_out.extend(out);
            }
            Fault::Disconnect
            | Fault::Stall { .. }
            | Fault::SlowHandshake { .. }
            | Fault::Refuse { .. } => {}
        }
    }

    /// Frames a venue fault queued for the client (the I/O layer sends them at once).
    pub fn take_pending(&mut self) -> Vec<Out> {
        std::mem::take(&mut self.pending_out)
    }

    /// Messages dropped by gap faults so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Frames corrupted so far.
    pub fn corrupted(&self) -> u64 {
        self.corrupted
    }

    /// Book messages sent with a falsified checksum so far.
    pub fn checksums_falsified(&self) -> u64 {
        self.checksums_falsified
    }

    /// Frames sent when the emulator shuts down: the venue's announcement (Binance
    /// `serverShutdown`), then a 1001 (going away) close.
    pub fn shutdown(&self, now_ms: i64) -> Vec<Out> {
        let mut out = self.inner.shutdown(now_ms);
        out.push(Out::Close(1001, "going away".into()));
        out
    }
}

/// `text` cut in the middle (on a char boundary) and ended by U+FFFD: malformed JSON.
fn truncate(text: &str) -> String {
    let mut end = (text.len() / 2).max(1).min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\u{fffd}", &text[..end])
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::event::Topic;

    /// A venue session whose `book` messages carry a checksum (`"c":N`), as Kraken's and OKX's
    /// do; no registry venue has one yet, so the wrapper's plumbing is checked with this one.
    #[derive(Debug)]
    struct Checksummed;

    impl VenueSession for Checksummed {
        fn on_text(&mut self, _: &str, _: &Hub) -> Vec<Out> {
            Vec::new()
        }
        fn on_event(&mut self, ev: &VenueEvent) -> Option<String> {
            Some(ev.text.to_string())
        }
        fn corrupt_checksum(&self, ev: &VenueEvent, text: &str) -> Option<String> {
            (ev.topic == Topic::Stream("book")).then(|| text.replace("\"c\":7", "\"c\":8"))
        }
    }

    fn ev(topic: &'static str, text: &str) -> VenueEvent {
        VenueEvent {
            venue: VenueId::Kraken,
            tick: 1,
            topic: Topic::Stream(topic),
            sequenced: false,
            text: Arc::from(text),
        }
    }

    #[test]
    fn a_checksum_fault_waits_for_a_checksummed_message_and_falsifies_only_it() {
        let mut s = Session {
            venue: VenueId::Kraken,
            inner: Box::new(Checksummed),
            gap_pending: 0,
            corrupt_pending: 0,
            checksum_pending: 0,
            dropped: 0,
            corrupted: 0,
            checksums_falsified: 0,
            pending_out: Vec::new(),
        };
        s.inject(Fault::Checksum { count: 1 });
        let trade = r#"{"trade":1}"#;
        assert_eq!(s.on_event(&ev("trade", trade)).as_deref(), Some(trade));
        let book = r#"{"book":[1],"c":7}"#;
        assert_eq!(
            s.on_event(&ev("book", book)).as_deref(),
            Some(r#"{"book":[1],"c":8}"#)
        );
        assert_eq!(s.on_event(&ev("book", book)).as_deref(), Some(book));
        assert_eq!(s.checksums_falsified(), 1);
        // Venues without book checksums refuse the fault by name.
        let err = Fault::Checksum { count: 1 }
            .check_applies(VenueId::Bybit)
            .unwrap_err();
        assert!(
            err.to_string().contains("bybit has no checksummed"),
            "{err}"
        );
        assert!(
            Fault::parse("refuse", Some(10), None)
                .unwrap()
                .is_listener_fault()
        );
        assert!(Fault::parse("nope", None, None).is_err());
    }
}
