//! Per-connection session state machines (sans-IO): client frames in, response frames out,
//! market events filtered and wrapped per subscription, and the gap / corrupt faults.

use std::str::FromStr;

use crate::binance::{BadPath, BinanceSession};
use crate::bitstamp::BitstampSession;
use crate::coinbase::CoinbaseSession;
use crate::event::{Out, VenueEvent, VenueId};
use crate::gemini::GeminiSession;
use crate::hub::Hub;
use crate::polybolt::PolyBoltSession;
use crate::polymarket::PolySession;
use crate::rtds::RtdsSession;

/// A fault that can be injected into a venue's live sessions.
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
    /// PolyBolt: discard the next `count` frames of every subscribed channel without using
    /// sequence numbers and report them in the next frame's `dropped` (slow consumer).
    Dropped {
        /// Frames to discard per channel.
        count: u32,
    },
    /// Bitstamp: send `bts:request_reconnect` (the client must reconnect and resubscribe).
    RequestReconnect,
}

/// A fault description could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("bad fault: {0}")]
pub struct BadFault(pub String);

impl Fault {
    /// Parse `kind` with optional `ms` / `count` (`stall` default 5000 ms, counts default 1).
    pub fn parse(kind: &str, ms: Option<u64>, count: Option<u32>) -> Result<Self, BadFault> {
        match kind {
            "disconnect" => Ok(Fault::Disconnect),
            "stall" => Ok(Fault::Stall {
                ms: ms.unwrap_or(5_000),
            }),
            "gap" => Ok(Fault::Gap {
                count: count.unwrap_or(1).max(1),
            }),
            "corrupt" => Ok(Fault::Corrupt {
                count: count.unwrap_or(1).max(1),
            }),
            "dropped" => Ok(Fault::Dropped {
                count: count.unwrap_or(1).max(1),
            }),
            "request_reconnect" => Ok(Fault::RequestReconnect),
            other => Err(BadFault(format!(
                "unknown kind {other:?} (disconnect|stall|gap|corrupt|dropped|request_reconnect)"
            ))),
        }
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
}

#[derive(Debug)]
enum Kind {
    Binance(BinanceSession),
    Coinbase(CoinbaseSession),
    Poly(PolySession),
    Rtds(RtdsSession),
    Gemini(GeminiSession),
    Bitstamp(BitstampSession),
    PolyBolt(PolyBoltSession),
}

/// One client connection's protocol state.
#[derive(Debug)]
pub struct Session {
    venue: VenueId,
    kind: Kind,
    gap_pending: u32,
    corrupt_pending: u32,
    /// Frames queued by a fault for the next write (Bitstamp `bts:request_reconnect`).
    pending_out: Vec<Out>,
    dropped: u64,
    corrupted: u64,
}

impl Session {
    /// Open a session for an upgrade request to `path`; returns the frames to send at once.
    /// `conn_no` numbers connections (used for the RTDS `connection_id`).
    pub fn open(venue: VenueId, path: &str, conn_no: u64) -> Result<(Self, Vec<Out>), OpenError> {
        let route = path.split('?').next().unwrap_or("");
        let (kind, out) = match venue {
            VenueId::BinanceSpot => (Kind::Binance(BinanceSession::open(path)?), Vec::new()),
            VenueId::Coinbase if route.is_empty() || route == "/" => {
                (Kind::Coinbase(CoinbaseSession::default()), Vec::new())
            }
            VenueId::Polymarket if route == "/ws/market" || route == "/ws/market/" => {
                (Kind::Poly(PolySession::default()), Vec::new())
            }
            VenueId::Gemini if route == "/v2/marketdata" || route == "/v2/marketdata/" => {
                (Kind::Gemini(GeminiSession::default()), Vec::new())
            }
            VenueId::Bitstamp if route.is_empty() || route == "/" => {
                (Kind::Bitstamp(BitstampSession::default()), Vec::new())
            }
            VenueId::PolyBolt if route == "/ws" => {
                (Kind::PolyBolt(PolyBoltSession::default()), Vec::new())
            }
            VenueId::ChainlinkRtds if route.is_empty() || route == "/" => {
                let (s, out) = RtdsSession::open(connection_id(conn_no));
                (Kind::Rtds(s), out)
            }
            _ => {
                return Err(OpenError::NoEndpoint {
                    venue: venue.name(),
                    path: path.to_string(),
                });
            }
        };
        Ok((
            Self {
                venue,
                kind,
                gap_pending: 0,
                corrupt_pending: 0,
                pending_out: Vec::new(),
                dropped: 0,
                corrupted: 0,
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
        let replay = hub.is_replay(self.venue);
        let (tick, now) = (hub.tick(), hub.now_ms());
        match &mut self.kind {
            Kind::Binance(s) => s.on_text(text),
            Kind::Coinbase(s) => s.on_text(text, (!replay).then(|| hub.coinbase()), tick),
            Kind::Poly(s) => s.on_text(text, (!replay).then(|| hub.polymarket()), tick, now),
            Kind::Rtds(s) => s.on_text(text, (!replay).then(|| hub.rtds()), tick, now),
            Kind::Gemini(s) => s.on_text(text, (!replay).then(|| hub.gemini()), tick),
            Kind::Bitstamp(s) => s.on_text(text, tick),
            Kind::PolyBolt(s) => {
                let state = (!replay).then(|| hub.polybolt());
                s.on_text(text, hub.polybolt_credentials(), state, tick, now)
            }
        }
    }

    /// Filter / wrap a market event for this client, applying pending gap and corrupt faults.
    pub fn on_event(&mut self, ev: &VenueEvent) -> Option<String> {
        if ev.venue != self.venue {
            return None;
        }
        let text = match &mut self.kind {
            Kind::Binance(s) => s.on_event(ev),
            Kind::Coinbase(s) => s.on_event(ev),
            Kind::Poly(s) => s.on_event(ev),
            Kind::Rtds(s) => s.on_event(ev),
            Kind::Gemini(s) => s.on_event(ev),
            Kind::Bitstamp(s) => s.on_event(ev),
            Kind::PolyBolt(s) => s.on_event(ev),
        }?;
        if self.gap_pending > 0 && ev.sequenced {
            self.gap_pending -= 1;
            self.dropped += 1;
            return None;
        }
        if self.corrupt_pending > 0 {
            self.corrupt_pending -= 1;
            self.corrupted += 1;
            let cut = text.len() / 2;
            let mut end = cut.max(1).min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            return Some(format!("{}\u{fffd}", &text[..end]));
        }
        Some(text)
    }

    /// Arm a gap or corrupt fault (disconnect and stall are carried out by the I/O layer).
    pub fn inject(&mut self, fault: Fault) {
        match fault {
            Fault::Gap { count } => self.gap_pending += count,
            Fault::Corrupt { count } => self.corrupt_pending += count,
            Fault::Dropped { count } => {
                if let Kind::PolyBolt(s) = &mut self.kind {
                    s.drop_frames(count);
                }
            }
            Fault::RequestReconnect => {
                if matches!(self.kind, Kind::Bitstamp(_)) {
                    self.pending_out.push(BitstampSession::request_reconnect());
                }
            }
            Fault::Disconnect | Fault::Stall { .. } => {}
        }
    }

    /// Frames a fault queued for the client (sent by the I/O layer with the next events).
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

    /// Frames sent when the emulator shuts down: Binance announces `serverShutdown`; every venue
    /// then closes with 1001 (going away).
    pub fn shutdown(&self, now_ms: i64) -> Vec<Out> {
        let mut out = Vec::new();
        if let Kind::Binance(s) = &self.kind {
            out.push(Out::Text(s.shutdown_frame(now_ms)));
        }
        out.push(Out::Close(1001, "going away".into()));
        out
    }
}

/// A 20-character base64-looking connection id like RTDS's (`gZexFa6cUWeIKEiTDA==`).
fn connection_id(conn_no: u64) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut x = conn_no.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut s = String::with_capacity(20);
    for _ in 0..18 {
        s.push(char::from(B64[(x & 63) as usize]));
        x = x.rotate_right(6) ^ conn_no;
    }
    s.push_str("==");
    s
}
