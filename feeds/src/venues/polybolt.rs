//! PolyBolt, Polymarket's successor of the real-time data socket
//! (`wss://ws-live-v2.polymarket.com/ws`).
//!
//! Channels: `price.crypto` (`{"symbol":"btcusd"}`) → IndexPrice price_type 1 (index) and
//! `price.crypto.twap` (`{"symbol":"btcusd","window_seconds":60}`) → IndexPrice price_type 3
//! (TWAP). Both are gated: the connection first sends `{"op":"auth",…}` with CLOB API
//! credentials ([`Credentials`]; never in `Debug`, logs or errors), then one batched
//! `{"op":"subscribe","subscriptions":[…]}`. Acknowledgements (`authed`, `subscribed`,
//! `unsubscribed`, `pong`) are counted; an `error` acknowledgement is a counted, named skip
//! ([`ParseError::Invalid`] `"error_ack"`).
//!
//! Data envelopes: `{"v":1,"channel","seq","ts","snapshot"?,"dropped"?,"payload"}`.
//! `payload.full_accuracy_value` is an exact decimal string (not E18, unlike RTDS) and is kept in
//! `IndexPrice.value_e18`. A snapshot (`snapshot:true`, `payload.data[]`, the preceding two
//! minutes) is emitted as one snapshot batch and counts a resync.
//!
//! Continuity: `seq` is consecutive per connection and per channel, snapshots included, and
//! restarts on reconnect; `dropped` is the number of frames the server discarded on that channel
//! since the last delivered one (slow consumer). A frame that skips `k` sequence numbers or
//! reports `dropped: k` counts one gap of `k` missed frames (the larger of the two, so a loss the
//! server both skips and reports is not counted twice), and a `gap_detected` then `resynced`
//! feed status for the stream (each frame holds a whole value, so the frame that reveals the loss
//! also ends it). `venue_seq` is the envelope `seq`. In
//! [`SyncMode::Enforce`] rows not newer than the last one on their channel are dropped (a
//! re-subscribe snapshot overlaps live updates).

use crate::venues::streams::Selectable;
use core::fmt;

use ringbolt_bus::{FeedState, IndexPrice, Record, VALUE_E18_SCALE, Venue};

use crate::adapter::{Ctx, DecimalField, Outgoing, ParseError, Parsed, VenueAdapter};
use crate::continuity::SyncMode;
use crate::decimal::{parse_fixed_i128, parse_u64};
use crate::json::{Lexer, match_key};

const VENUE: Venue = Venue::PolyBolt;

/// The crypto reference-price channel.
pub const CHANNEL_PRICE: &str = "price.crypto";
/// The 60-s Chainlink TWAP channel.
pub const CHANNEL_TWAP: &str = "price.crypto.twap";
/// The only TWAP window PolyBolt serves, s.
pub const TWAP_WINDOW_S: u64 = 60;

pub use super::streams::polybolt::{ENDPOINT, KEEP_ALIVE, STREAMS, Stream};

/// CLOB API credentials for PolyBolt's `auth` operation. `Debug` shows the key's first four
/// characters only; there is no `Display`. Deserializes from a table `api_key`, `secret`,
/// `passphrase` (a credentials file; unknown keys refused).
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    api_key: String,
    secret: String,
    passphrase: String,
}

impl Credentials {
    /// Bundles credentials.
    #[must_use]
    pub fn new(api_key: String, secret: String, passphrase: String) -> Self {
        Credentials {
            api_key,
            secret,
            passphrase,
        }
    }

    /// The `{"op":"auth",…}` frame (cold path).
    #[must_use]
    pub fn auth_frame(&self) -> Vec<u8> {
        let mut s = String::with_capacity(128);
        s.push_str("{\"op\":\"auth\",\"rid\":\"a1\",\"auth\":{\"apiKey\":");
        json_string(&mut s, &self.api_key);
        s.push_str(",\"secret\":");
        json_string(&mut s, &self.secret);
        s.push_str(",\"passphrase\":");
        json_string(&mut s, &self.passphrase);
        s.push_str("}}");
        s.into_bytes()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: String = self.api_key.chars().take(4).collect();
        f.debug_struct("Credentials")
            .field("api_key", &format_args!("{shown}…"))
            .field("secret", &"<redacted>")
            .field("passphrase", &"<redacted>")
            .finish()
    }
}

/// Appends `v` as a JSON string literal.
fn json_string(out: &mut String, v: &str) {
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The PolyBolt adapter.
pub struct PolyBolt {
    mode: SyncMode,
    credentials: Option<Credentials>,
    /// Last `seq` per stream on this connection (0: none yet).
    last_seq: [u64; 3],
    /// Last observation timestamp (ms) per stream.
    last_obs_ms: [u64; 3],
    scratch: Vec<Record>,
}

impl fmt::Debug for PolyBolt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolyBolt")
            .field("mode", &self.mode)
            .field("credentials", &self.credentials)
            .field("last_seq", &self.last_seq)
            .finish_non_exhaustive()
    }
}

impl PolyBolt {
    /// An adapter without credentials: it subscribes unauthenticated (the venue answers with
    /// `auth_required` error acknowledgements); enough for parsing captures.
    #[must_use]
    pub fn new(mode: SyncMode) -> Self {
        PolyBolt {
            mode,
            credentials: None,
            last_seq: [0; 3],
            last_obs_ms: [0; 3],
            scratch: Vec::with_capacity(256),
        }
    }

    /// An adapter that authenticates with `credentials` before subscribing.
    #[must_use]
    pub fn with_credentials(mode: SyncMode, credentials: Credentials) -> Self {
        PolyBolt {
            credentials: Some(credentials),
            ..Self::new(mode)
        }
    }
}

/// A data envelope or an acknowledgement.
#[derive(Default)]
struct Envelope<'a> {
    op: Option<&'a [u8]>,
    channel: Option<&'a [u8]>,
    seq: Option<&'a [u8]>,
    snapshot: bool,
    dropped: Option<&'a [u8]>,
    /// Read in the envelope's pass (no second lexing of its bytes).
    payload: Option<Payload<'a>>,
}

fn envelope(raw: &[u8]) -> Result<Envelope<'_>, ParseError> {
    let mut m = Envelope::default();
    let mut j = Lexer::new(raw);
    j.begin_object()?;
    // Keys are guessed in the order the venue sends them; a wrong guess costs a compare,
    // never a different reading.
    let mut likely: &'static [u8] = b"v";
    while let Some(key) = j.next_key_likely(likely)? {
        likely = match_key!(key, {
            b"v" => {
                j.skip_value()?;
                b"channel"
            },
            b"channel" => {
                m.channel = Some(j.str()?);
                b"seq"
            },
            b"seq" => {
                m.seq = Some(j.scalar()?);
                b"ts"
            },
            b"ts" => {
                j.skip_value()?;
                b"payload"
            },
            b"payload" => {
                m.payload = Some(payload(&mut j, b"symbol")?);
                b""
            },
            b"snapshot" => {
                m.snapshot = j.bool()?;
                b"payload"
            },
            b"dropped" => {
                m.dropped = j.opt_scalar()?;
                b"payload"
            },
            b"op" => {
                m.op = Some(j.str()?);
                b""
            },
            _ => {
                j.skip_value()?;
                b""
            },
        });
    }
    j.end()?;
    Ok(m)
}

/// [`Payload::read`] with keys guessed in the venue's order from `first` (`symbol` for a
/// payload, `timestamp` for a snapshot row).
fn payload<'a>(j: &mut Lexer<'a>, first: &'static [u8]) -> Result<Payload<'a>, ParseError> {
    let mut f = Payload::default();
    j.begin_object()?;
    let mut likely = first;
    while let Some(key) = j.next_key_likely(likely)? {
        likely = match_key!(key, {
            b"symbol" => {
                f.symbol = Some(j.str()?);
                b"timestamp"
            },
            b"timestamp" => {
                f.timestamp = Some(j.scalar()?);
                b"value"
            },
            b"value" => {
                f.value = Some(j.scalar()?);
                b"full_accuracy_value"
            },
            b"full_accuracy_value" => {
                f.full = Some(j.scalar()?);
                b""
            },
            b"window_seconds" => {
                f.window = Some(j.scalar()?);
                b"timestamp"
            },
            _ => {
                f.read_field(key, j)?;
                b""
            },
        });
    }
    Ok(f)
}

json_fields! {
    struct Payload {
        symbol: str <- b"symbol",
        timestamp: scalar <- b"timestamp",
        value: scalar <- b"value",
        full: scalar <- b"full_accuracy_value",
        data: raw <- b"data",
        window: scalar <- b"window_seconds",
    }
}

/// The exact value ×1e18: `full_accuracy_value` (decimal text), else the `value` number's text.
fn value_e18(full: Option<&[u8]>, value: Option<&[u8]>) -> Result<i128, ParseError> {
    match (full, value) {
        (Some(f), _) => parse_fixed_i128(f, 18).field("full_accuracy_value"),
        (None, Some(v)) => parse_fixed_i128(v, 18).field("value"),
        (None, None) => Err(ParseError::Missing("full_accuracy_value")),
    }
}

fn index_record(stream: u8, instrument: u32, value_e18: i128, obs_ms: u64, seq: u64) -> Record {
    let price = value_e18 / (VALUE_E18_SCALE / 100_000_000);
    let body = IndexPrice {
        value_e18,
        price: i64::try_from(price).unwrap_or(if price < 0 { i64::MIN } else { i64::MAX }),
        price_type: if stream == Stream::Twap as u8 { 3 } else { 1 },
        reserved: [0; 55],
    };
    let mut r = Record::new(VENUE, stream, instrument, &body);
    r.exchange_ts_ns = i64::try_from(obs_ms).unwrap_or(0).saturating_mul(1_000_000);
    r.venue_seq = seq;
    r
}

impl PolyBolt {
    fn fresh(&mut self, stream: u8, obs_ms: u64) -> bool {
        let last = &mut self.last_obs_ms[usize::from(stream)];
        if self.mode == SyncMode::Enforce && obs_ms <= *last {
            return false;
        }
        *last = (*last).max(obs_ms);
        true
    }

    /// Checks `seq` and `dropped` against the channel's last `seq` (see the module docs); the
    /// frames missed (counted as one gap when > 0).
    fn continuity(&mut self, stream: u8, seq: u64, dropped: u64, ctx: &mut Ctx<'_>) -> u64 {
        let last = &mut self.last_seq[usize::from(stream)];
        let skipped = if *last == 0 {
            // The first frame on a fresh connection is seq 1.
            seq.saturating_sub(1)
        } else {
            seq.saturating_sub(*last + 1)
        };
        if seq > *last {
            *last = seq;
        }
        let missed = skipped.max(dropped);
        if missed > 0 {
            ctx.count_gap(stream, missed);
        }
        missed
    }

    fn snapshot(
        &mut self,
        stream: u8,
        id: u32,
        data: &[u8],
        seq: u64,
        ctx: &mut Ctx<'_>,
    ) -> Parsed {
        self.scratch.clear();
        let mut rows = Lexer::new(data);
        rows.begin_array()?;
        while rows.next_element()? {
            let row = payload(&mut rows, b"timestamp")?;
            let obs_ms = parse_u64(row.timestamp.ok_or(ParseError::Missing("timestamp"))?)
                .field("timestamp")?;
            let v = value_e18(row.full, row.value)?;
            self.scratch.push(index_record(stream, id, v, obs_ms, seq));
        }
        ctx.counters.stream_mut(stream).resyncs += 1;
        let mut scratch = core::mem::take(&mut self.scratch);
        scratch.retain(|r| {
            let keep = self.fresh(
                stream,
                u64::try_from(r.exchange_ts_ns / 1_000_000).unwrap_or(0),
            );
            if !keep {
                ctx.counters.stream_mut(stream).dropped_unsynced += 1;
            }
            keep
        });
        super::emit_batch(ctx, &mut scratch, true);
        self.scratch = scratch;
        Ok(())
    }

    fn data(&mut self, m: &Envelope<'_>, len: usize, ctx: &mut Ctx<'_>) -> Parsed {
        let channel = m.channel.ok_or(ParseError::Missing("channel"))?;
        let stream = match channel {
            b"price.crypto" => Stream::Price,
            b"price.crypto.twap" => Stream::Twap,
            _ => return Err(ParseError::Unknown),
        } as u8;
        ctx.count_message(stream, len);
        let seq = parse_u64(m.seq.ok_or(ParseError::Missing("seq"))?).field("seq")?;
        let dropped = m.dropped.map(parse_u64).transpose().field("dropped")?;
        let p = m.payload.as_ref().ok_or(ParseError::Missing("payload"))?;
        if stream == Stream::Twap as u8
            && let Some(w) = p.window
            && parse_u64(w).field("window_seconds")? != TWAP_WINDOW_S
        {
            return Err(ParseError::Invalid("window_seconds"));
        }
        let missed = self.continuity(stream, seq, dropped.unwrap_or(0), ctx);
        let symbol = p.symbol.ok_or(ParseError::Missing("symbol"))?;
        let Some(id) = ctx.resolve(VENUE, stream, symbol) else {
            return Ok(());
        };
        if missed > 0 {
            // Every frame carries a whole value: the loss is over as soon as it is seen.
            ctx.emit_status(VENUE, stream, id, FeedState::GapDetected);
            ctx.emit_status(VENUE, stream, id, FeedState::Resynced);
        }
        if m.snapshot {
            return self.snapshot(
                stream,
                id,
                p.data.ok_or(ParseError::Missing("data"))?,
                seq,
                ctx,
            );
        }
        let obs_ms =
            parse_u64(p.timestamp.ok_or(ParseError::Missing("timestamp"))?).field("timestamp")?;
        let v = value_e18(p.full, p.value)?;
        if self.fresh(stream, obs_ms) {
            let mut r = index_record(stream, id, v, obs_ms, seq);
            ctx.emit(&mut r);
        } else {
            ctx.counters.stream_mut(stream).dropped_unsynced += 1;
        }
        Ok(())
    }
}

impl VenueAdapter for PolyBolt {
    adapter_profile!(VENUE, STREAMS, ENDPOINT, KEEP_ALIVE);

    fn subscribe_streams(
        &self,
        symbols: &[&str],
        streams: &[&'static Selectable],
    ) -> Vec<Outgoing> {
        let mut out = Vec::with_capacity(2);
        if let Some(c) = &self.credentials {
            out.push(Outgoing::Text(c.auth_frame()));
        }
        out.push(Outgoing::Text(subscription_frame(
            "subscribe",
            symbols,
            streams,
        )));
        out
    }

    fn unsubscribe_streams(
        &self,
        symbols: &[&str],
        streams: &[&'static Selectable],
    ) -> Vec<Outgoing> {
        vec![Outgoing::Text(subscription_frame(
            "unsubscribe",
            symbols,
            streams,
        ))]
    }

    fn on_frame(&mut self, frame: &[u8], ctx: &mut Ctx<'_>) -> Parsed {
        let m = envelope(frame)?;
        match m.op {
            None => self.data(&m, frame.len(), ctx),
            Some(b"authed" | b"subscribed" | b"unsubscribed" | b"pong" | b"challenge") => {
                ctx.count_message(0, frame.len());
                Ok(())
            }
            Some(b"error") => {
                ctx.count_message(0, frame.len());
                // `auth_required`, `auth_failed`, `invalid_filter`, …: the venue refused a
                // request; counted as a skipped frame with this name (the raw frame, which names
                // the code, is what the collector logs).
                Err(ParseError::Invalid("error_ack"))
            }
            Some(_) => Err(ParseError::Unknown),
        }
    }

    fn on_reconnect(&mut self, ctx: &mut Ctx<'_>) {
        // `seq` restarts on every connection; observation timestamps keep deduplicating.
        self.last_seq = [0; 3];
        ctx.counters.stream_mut(Stream::Price as u8).reconnects += 1;
    }
}

/// One batched `subscribe` / `unsubscribe` frame for both channels of every symbol.
fn subscription_frame(op: &str, symbols: &[&str], streams: &[&'static Selectable]) -> Vec<u8> {
    let subs: Vec<String> = symbols
        .iter()
        .flat_map(|s| {
            streams.iter().map(move |x| {
                if x.channel == CHANNEL_TWAP {
                    format!(
                        "{{\"channel\":\"{CHANNEL_TWAP}\",\"filter\":{{\"symbol\":\"{s}\",\"window_seconds\":{TWAP_WINDOW_S}}}}}"
                    )
                } else {
                    format!("{{\"channel\":\"{}\",\"filter\":{{\"symbol\":\"{s}\"}}}}", x.channel)
                }
            })
        })
        .collect();
    format!(
        "{{\"op\":\"{op}\",\"rid\":\"s1\",\"subscriptions\":[{}]}}",
        subs.join(",")
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_show_in_debug_and_are_escaped_in_the_auth_frame() {
        let c = Credentials::new("key-1234".into(), "S3CR\"ET".into(), "PA55\\W".into());
        let shown = format!(
            "{c:?} {:?}",
            PolyBolt::with_credentials(SyncMode::Enforce, c.clone())
        );
        assert!(!shown.contains("S3CR") && !shown.contains("PA55") && !shown.contains("1234"));
        let frame = String::from_utf8(c.auth_frame()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(v["op"], "auth");
        assert_eq!(v["auth"]["apiKey"], "key-1234");
        assert_eq!(v["auth"]["secret"], "S3CR\"ET");
        assert_eq!(v["auth"]["passphrase"], "PA55\\W");
        let a = PolyBolt::with_credentials(SyncMode::Enforce, c);
        let subs = a.subscribe(&["btcusd"]);
        assert_eq!(subs.len(), 2);
        let Outgoing::Text(sub) = &subs[1] else {
            panic!("text frame")
        };
        let v: serde_json::Value = serde_json::from_slice(sub).unwrap();
        assert_eq!(v["subscriptions"][1]["channel"], "price.crypto.twap");
        assert_eq!(v["subscriptions"][1]["filter"]["window_seconds"], 60);
        assert_eq!(
            PolyBolt::new(SyncMode::Enforce)
                .subscribe(&["btcusd"])
                .len(),
            1
        );
    }
}
