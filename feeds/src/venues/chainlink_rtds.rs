//! Chainlink BTC/USD through Polymarket's real-time data socket (`wss://ws-live-data.polymarket.com`).
//!
//! Topics: `crypto_prices_chainlink` (Chainlink Data Streams BTC/USD, ~1 tick/s), the TWAP
//! topics `crypto_prices_twap_thirty` / `crypto_prices_twap_sixty`, and the Binance relay
//! `crypto_prices`. `payload.full_accuracy_value` is kept exact in `IndexPrice.value_e18`
//! (integer text already scaled 1e18 on Chainlink topics, decimal text on the Binance relay).
//! Every subscribe yields a backfill frame (`type:"subscribe"`, `payload.data[]`, topic
//! sometimes mislabelled `crypto_prices`) whose rows are emitted as a snapshot batch; the
//! symbol (and `window_s`) tell which stream it belongs to.
//!
//! Continuity: no sequence numbers. `venue_seq` is the observation timestamp in ms; in
//! [`SyncMode::Enforce`] rows not newer than the last one on their stream are dropped (the
//! backfill overlaps live updates). Observations are one per second on the whole-second grid
//! ([`OBSERVATION_CADENCE_MS`]): a step of `k` seconds between consecutive observations of a
//! Chainlink stream counts one gap and `k - 1` missed observations (`gaps`, `gap_records`), in
//! both modes, across reconnects (the ~1 min backfill after a resubscribe fills what it can,
//! rows older than the last one are dropped). Stalls are detected by age (connection state
//! machine).
//!
//! The PolyBolt successor (sequence numbers, `dropped` counts, 60 s TWAP channel) is a second
//! adapter with its own catalogue ([`super::polybolt`]).

use ringbolt_bus::{IndexPrice, Record, VALUE_E18_SCALE, Venue};

use crate::adapter::{Ctx, DecimalField, Outgoing, ParseError, Parsed, VenueAdapter};
use crate::continuity::SyncMode;
use crate::counters::Counters;
use crate::decimal::{fast_e18_and_e8, parse_fixed_i128, parse_u64};
use crate::json::{Lexer, key_eq, match_key};
use crate::venues::streams::Selectable;
use crate::venues::{Span, span_in, text_at};

const VENUE: Venue = Venue::ChainlinkRtds;

/// Spacing of Chainlink BTC/USD observations on RTDS (and of the TWAPs computed from them):
/// every `payload.timestamp` seen is a whole second and backfill rows are exactly 1,000 ms
/// apart (corpus `crypto_prices_chainlink.jsonl`, PROTOCOL_NOTES §5 "ms, whole second").
pub const OBSERVATION_CADENCE_MS: u64 = 1_000;

pub use super::streams::chainlink_rtds::{ENDPOINT, KEEP_ALIVE, STREAMS, Stream};

/// The RTDS adapter.
#[derive(Debug)]
pub struct ChainlinkRtds {
    mode: SyncMode,
    /// Last observation timestamp (ms) per stream.
    last_obs_ms: [u64; 5],
    scratch: Vec<Record>,
    /// A backfill's `data` rows read in the envelope's pass (texts as spans of the frame).
    rows: Vec<RowSpans>,
    /// Whether frames are read with their backfill rows in the envelope's pass first; off only
    /// in tests that compare that pass with the general path.
    in_place: bool,
}

/// The texts of one backfill row (`timestamp`, `value`, `full_accuracy_value`), as spans of the
/// frame: the row's stream, hence how its value is read, is known only once the whole envelope
/// has been read (`topic` may follow `payload`).
#[derive(Clone, Copy, Debug, Default)]
struct RowSpans {
    ts: Option<Span>,
    value: Option<Span>,
    full: Option<Span>,
}

impl ChainlinkRtds {
    /// A new adapter.
    #[must_use]
    pub fn new(mode: SyncMode) -> Self {
        ChainlinkRtds {
            mode,
            last_obs_ms: [0; 5],
            scratch: Vec::with_capacity(256),
            rows: Vec::with_capacity(256),
            in_place: true,
        }
    }

    /// The same adapter reading every frame by the general path only (tests compare the two).
    #[doc(hidden)]
    #[must_use]
    pub fn general_path_only(mut self) -> Self {
        self.in_place = false;
        self
    }
}

json_fields! {
    struct Payload {
        symbol: str <- b"symbol",
        timestamp: scalar <- b"timestamp",
        value: scalar <- b"value",
        full: scalar <- b"full_accuracy_value",
        data: raw <- b"data",
        window_s: scalar <- b"window_s",
    }
}

/// The exact e18 value: `full_accuracy_value` (integer e18 text on Chainlink topics, decimal
/// text on the Binance relay) or else the `value` number's text.
fn value_e18(
    full: Option<&[u8]>,
    value: Option<&[u8]>,
    chainlink: bool,
) -> Result<i128, ParseError> {
    match (full, value) {
        (Some(f), _) if chainlink => parse_fixed_i128(f, 0).field("full_accuracy_value"),
        (Some(f), _) => parse_fixed_i128(f, 18).field("full_accuracy_value"),
        (None, Some(v)) => parse_fixed_i128(v, 18).field("value"),
        (None, None) => Err(ParseError::Missing("value")),
    }
}

/// (value_e18, price_e8) from Chainlink's integer e18 text in one pass over its digits: the
/// digits but the last ten are the 1e-8 price, one 128-bit multiply joins the two halves.
/// `None` (the general path decides) unless 11-29 digits without a leading zero.
#[inline]
fn split_e18(full: &[u8]) -> Option<(i128, i128)> {
    if !(11..=29).contains(&full.len()) || full[0] == b'0' {
        return None;
    }
    let (hi, lo) = full.split_at(full.len() - 10);
    let (hi, lo) = (parse_u64(hi).ok()?, parse_u64(lo).ok()?);
    Some((
        i128::from(hi) * 10_000_000_000 + i128::from(lo),
        i128::from(hi),
    ))
}

/// Both values of an observation: [`split_e18`] on Chainlink topics, else [`value_e18`] and
/// [`price_e8`].
#[inline]
fn values(
    full: Option<&[u8]>,
    value: Option<&[u8]>,
    chainlink: bool,
) -> Result<(i128, i128), ParseError> {
    if chainlink && let Some(pair) = full.and_then(split_e18) {
        return Ok(pair);
    }
    // Decimal text at 1e-18 (the relay's `full_accuracy_value`, or `value`): both values from
    // one scan, no 128-bit division.
    let e18_text = match (full, value) {
        (Some(f), _) if !chainlink => Some((f, "full_accuracy_value")),
        (None, Some(v)) => Some((v, "value")),
        _ => None,
    };
    if let Some((text, name)) = e18_text
        && let Some(pair) = fast_e18_and_e8(text)
    {
        return pair.field(name);
    }
    let v = value_e18(full, value, chainlink)?;
    Ok((v, price_e8(full, chainlink, v)))
}

/// `value_e18` at 1e-8, truncated toward zero: from the e18 integer text when there is one (its
/// digits but the last ten; a 128-bit division is a library call), else by division.
#[inline]
fn price_e8(full: Option<&[u8]>, chainlink: bool, value_e18: i128) -> i128 {
    if chainlink
        && let Some(f) = full
        && f.len() > 10
        && f.iter().all(u8::is_ascii_digit)
        && let Ok(p) = parse_u64(&f[..f.len() - 10])
    {
        return i128::from(p);
    }
    value_e18 / (VALUE_E18_SCALE / 100_000_000)
}

fn index_record(
    stream: u8,
    instrument: u32,
    (value_e18, price): (i128, i128),
    obs_ms: u64,
) -> Record {
    let body = IndexPrice {
        value_e18,
        price: i64::try_from(price).unwrap_or(if price < 0 { i64::MIN } else { i64::MAX }),
        price_type: if stream == Stream::Twap30 as u8 || stream == Stream::Twap60 as u8 {
            3
        } else {
            1
        },
        reserved: [0; 55],
    };
    let mut r = Record::new(VENUE, stream, instrument, &body);
    r.exchange_ts_ns = i64::try_from(obs_ms).unwrap_or(0).saturating_mul(1_000_000);
    r.venue_seq = obs_ms;
    r
}

impl ChainlinkRtds {
    /// Emits the backfill rows in the scratch batch that are fresh, as one snapshot batch.
    fn emit_backfill(&mut self, stream: u8, ctx: &mut Ctx<'_>) {
        let mut scratch = core::mem::take(&mut self.scratch);
        let mut kept = 0;
        for i in 0..scratch.len() {
            if self.fresh(stream, scratch[i].venue_seq, ctx.counters) {
                scratch[kept] = scratch[i];
                kept += 1;
            } else {
                ctx.counters.stream_mut(stream).dropped_unsynced += 1;
            }
        }
        scratch.truncate(kept);
        super::emit_batch(ctx, &mut scratch, true);
        self.scratch = scratch;
    }

    /// Whether the observation at `obs_ms` is to be emitted; counts the observations missed
    /// since the last one on a Chainlink stream (the Binance relay is not on the grid).
    fn fresh(&mut self, stream: u8, obs_ms: u64, counters: &mut Counters) -> bool {
        let last = &mut self.last_obs_ms[usize::from(stream)];
        if self.mode == SyncMode::Enforce && obs_ms <= *last {
            return false;
        }
        let on_grid = |t: u64| t.is_multiple_of(OBSERVATION_CADENCE_MS);
        if stream != Stream::BinanceRelay as u8
            && *last != 0
            && obs_ms > *last + OBSERVATION_CADENCE_MS
            && on_grid(obs_ms)
            && on_grid(*last)
        {
            let c = counters.stream_mut(stream);
            c.gaps += 1;
            c.gap_records += (obs_ms - *last) / OBSERVATION_CADENCE_MS - 1;
        }
        *last = (*last).max(obs_ms);
        true
    }
}

/// A frame's envelope, its `payload` read in the same pass (no second lexing of its bytes).
#[derive(Default)]
struct Envelope<'a> {
    topic: Option<&'a [u8]>,
    kind: Option<&'a [u8]>,
    body: Option<Payload<'a>>,
    status: Option<&'a [u8]>,
    /// The payload's `data` rows were read in place (into the `rows` given to `parse_exact`).
    rows_read: bool,
}

/// [`Payload::read`], with a `data` array's rows read in place into `rows` (their texts as spans
/// of `base`); `true` when they were. A repeated `data` array is refused (an error: the caller
/// reads the frame again the general way).
fn payload_at<'a>(
    j: &mut Lexer<'a>,
    base: &[u8],
    rows: &mut Vec<RowSpans>,
) -> Result<(Payload<'a>, bool), ParseError> {
    let mut f = Payload::default();
    let mut read = false;
    j.begin_object()?;
    // Keys are guessed in the order RTDS sends them (alphabetical); a wrong guess costs a
    // compare, never a different reading.
    let mut likely: &'static [u8] = b"full_accuracy_value";
    let mut row_first: &'static [u8] = b"timestamp";
    while let Some(key) = j.next_key_likely(likely)? {
        likely = match_key!(key, {
            b"full_accuracy_value" => b"symbol",
            b"symbol" => b"timestamp",
            b"timestamp" => b"value",
            b"value" => b"window_s",
            b"data" => b"symbol",
            _ => b"",
        });
        let data = key_eq(key, b"data");
        if data && read {
            // A second `data`: the general path decides which one counts.
            return Err(ParseError::Invalid("data repeated"));
        }
        if !data || j.peek() != Some(b'[') {
            f.read_field(key, j)?;
            continue;
        }
        read = true;
        let start = j.pos();
        j.begin_array()?;
        while j.next_element()? {
            j.begin_object()?;
            let mut row = RowSpans::default();
            // Rows repeat one key order: guess the previous row's first key, then its order.
            let (mut row_likely, mut first_key) = (row_first, true);
            while let Some(key) = j.next_key_likely(row_likely)? {
                if first_key {
                    row_first = first_row_key(key);
                    first_key = false;
                }
                let slot = match_key!(key, {
                    b"timestamp" => {
                        row_likely = b"value";
                        &mut row.ts
                    },
                    b"value" => {
                        row_likely = b"";
                        &mut row.value
                    },
                    b"full_accuracy_value" => {
                        row_likely = b"timestamp";
                        &mut row.full
                    },
                    _ => {
                        row_likely = b"";
                        j.skip_value()?;
                        continue;
                    },
                });
                *slot = Some(span_in(base, j.scalar()?));
            }
            rows.push(row);
        }
        f.data = Some(j.text_since(start));
    }
    Ok((f, read))
}

/// The row key a guess for the next row's first key can name (`""`: none).
fn first_row_key(key: &[u8]) -> &'static [u8] {
    match_key!(key, {
        b"timestamp" => b"timestamp",
        b"full_accuracy_value" => b"full_accuracy_value",
        b"value" => b"value",
        _ => b"",
    })
}

impl<'a> Envelope<'a> {
    /// Reads `raw`, which must be one object and nothing else; with `rows`, a backfill's `data`
    /// rows are read in the same pass into it (cleared first).
    #[inline]
    fn parse_exact(
        raw: &'a [u8],
        mut rows: Option<&mut Vec<RowSpans>>,
    ) -> Result<Self, ParseError> {
        let mut f = Self::default();
        if let Some(rows) = rows.as_deref_mut() {
            rows.clear();
        }
        let mut j = Lexer::new(raw);
        j.begin_object()?;
        // Keys guessed in RTDS's (alphabetical) order; a wrong guess only costs a compare.
        let mut likely: &'static [u8] = b"connection_id";
        while let Some(key) = j.next_key_likely(likely)? {
            likely = match_key!(key, {
                b"connection_id" => {
                    j.skip_value()?;
                    b"payload"
                },
                b"payload" => {
                    match rows.as_deref_mut() {
                        None => f.body = Some(Payload::read(&mut j)?),
                        Some(_) if f.rows_read => {
                            return Err(ParseError::Invalid("payload repeated"));
                        }
                        Some(rows) => {
                            let (body, read) = payload_at(&mut j, raw, rows)?;
                            f.body = Some(body);
                            f.rows_read = read;
                        }
                    }
                    b"timestamp"
                },
                b"topic" => {
                    f.topic = Some(j.str()?);
                    b"type"
                },
                b"type" => {
                    f.kind = Some(j.str()?);
                    b""
                },
                b"statusCode" => {
                    f.status = Some(j.scalar()?);
                    b""
                },
                b"timestamp" => {
                    j.skip_value()?;
                    b"topic"
                },
                _ => {
                    j.skip_value()?;
                    b""
                },
            });
        }
        j.end()?;
        Ok(f)
    }
}

impl VenueAdapter for ChainlinkRtds {
    adapter_profile!(VENUE, STREAMS, ENDPOINT, KEEP_ALIVE);

    subscriptions!(sub_frame, "subscribe", "unsubscribe");

    fn on_frame(&mut self, frame: &[u8], ctx: &mut Ctx<'_>) -> Parsed {
        let trimmed = frame.trim_ascii();
        if trimmed.is_empty() || trimmed.eq_ignore_ascii_case(b"pong") {
            ctx.count_message(0, frame.len());
            return Ok(());
        }
        // One pass with a backfill's rows read in place; anything that pass refuses is read
        // again the general way (which reports errors).
        let in_place = if self.in_place {
            Envelope::parse_exact(trimmed, Some(&mut self.rows)).ok()
        } else {
            None
        };
        let envelope = match in_place {
            Some(envelope) => envelope,
            None => Envelope::parse_exact(trimmed, None)?,
        };
        let Envelope {
            topic,
            kind,
            body,
            status,
            rows_read,
        } = envelope;
        let Some(body) = body else {
            if status.is_some() {
                // A venue error response ({"body":{"message":…},"statusCode":4xx}).
                ctx.count_message(0, frame.len());
                return Ok(());
            }
            return Err(ParseError::Missing("payload"));
        };
        let p = body;
        let symbol = p.symbol.ok_or(ParseError::Missing("symbol"))?;
        let topic = topic.ok_or(ParseError::Missing("topic"))?;
        let binance = topic == b"crypto_prices" && symbol != b"btc/usd" && !symbol.contains(&b'/');
        let stream = match topic {
            b"crypto_prices_chainlink" => Stream::Chainlink,
            b"crypto_prices_twap_thirty" => Stream::Twap30,
            b"crypto_prices_twap_sixty" => Stream::Twap60,
            b"crypto_prices" if binance => Stream::BinanceRelay,
            // The backfill of a Chainlink subscription arrives labelled `crypto_prices`.
            b"crypto_prices" => match p.window_s {
                Some(b"30") => Stream::Twap30,
                Some(b"60") => Stream::Twap60,
                _ => Stream::Chainlink,
            },
            _ => return Err(ParseError::Unknown),
        } as u8;
        let chainlink = stream != Stream::BinanceRelay as u8;
        ctx.count_message(stream, frame.len());
        let Some(id) = ctx.resolve(VENUE, stream, symbol) else {
            return Ok(());
        };
        // The backfill is `type:"subscribe"` (older fixtures omit `type` but carry `data`).
        let backfill = match kind {
            Some(b"update") => false,
            Some(b"subscribe") => true,
            None => p.data.is_some(),
            Some(_) => return Err(ParseError::Unknown),
        };
        match backfill {
            false => {
                let obs_ms = parse_u64(p.timestamp.ok_or(ParseError::Missing("timestamp"))?)
                    .field("timestamp")?;
                let v = values(p.full, p.value, chainlink)?;
                if self.fresh(stream, obs_ms, ctx.counters) {
                    let mut r = index_record(stream, id, v, obs_ms);
                    ctx.emit(&mut r);
                } else {
                    ctx.counters.stream_mut(stream).dropped_unsynced += 1;
                }
                Ok(())
            }
            true if rows_read => {
                // The rows were read in the envelope's pass: convert them in order.
                self.scratch.clear();
                for row in &self.rows {
                    let obs_ms = parse_u64(text_at(
                        trimmed,
                        row.ts.ok_or(ParseError::Missing("timestamp"))?,
                    ))
                    .field("timestamp")?;
                    let text = |s: Option<Span>| s.map(|s| text_at(trimmed, s));
                    let v = values(text(row.full), text(row.value), chainlink)?;
                    self.scratch.push(index_record(stream, id, v, obs_ms));
                }
                self.emit_backfill(stream, ctx);
                Ok(())
            }
            true => {
                let data = p.data.ok_or(ParseError::Missing("data"))?;
                self.scratch.clear();
                let mut rows = Lexer::new(data);
                rows.begin_array()?;
                while rows.next_element()? {
                    rows.begin_object()?;
                    let (mut ts, mut value, mut full) = (None, None, None);
                    while let Some(key) = rows.next_key()? {
                        match key {
                            b"timestamp" => ts = Some(rows.scalar()?),
                            b"value" => value = Some(rows.scalar()?),
                            b"full_accuracy_value" => full = Some(rows.scalar()?),
                            _ => rows.skip_value()?,
                        }
                    }
                    let obs_ms = parse_u64(ts.ok_or(ParseError::Missing("timestamp"))?)
                        .field("timestamp")?;
                    let v = values(full, value, chainlink)?;
                    self.scratch.push(index_record(stream, id, v, obs_ms));
                }
                self.emit_backfill(stream, ctx);
                Ok(())
            }
        }
    }

    fn on_reconnect(&mut self, ctx: &mut Ctx<'_>) {
        ctx.counters.stream_mut(Stream::Chainlink as u8).reconnects += 1;
    }
}

fn sub_frame(action: &str, symbols: &[&str], streams: &[&'static Selectable]) -> Vec<Outgoing> {
    let subs: Vec<String> = streams
        .iter()
        .flat_map(|x| symbols.iter().map(move |s| (x.channel, s)))
        .map(|(topic, s)| {
            format!(
                "{{\"topic\":\"{topic}\",\"type\":\"*\",\"filters\":\"{{\\\"symbol\\\":\\\"{s}\\\"}}\"}}"
            )
        })
        .collect();
    vec![Outgoing::Text(
        format!(
            "{{\"action\":\"{action}\",\"subscriptions\":[{}]}}",
            subs.join(",")
        )
        .into_bytes(),
    )]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::FrameDriver;

    fn update(topic: &str, obs_ms: u64) -> String {
        format!(
            r#"{{"payload":{{"full_accuracy_value":"79696948174287960000000","symbol":"btc/usd","timestamp":{obs_ms},"value":79696.94817428796}},"timestamp":{},"topic":"{topic}","type":"update"}}"#,
            obs_ms + 1400
        )
    }

    fn backfill(from_ms: u64, rows: u64) -> String {
        let data: Vec<String> = (0..rows)
            .map(|i| format!(r#"{{"timestamp":{},"value":79639.2}}"#, from_ms + i * 1000))
            .collect();
        format!(
            r#"{{"payload":{{"data":[{}],"symbol":"btc/usd"}},"timestamp":1,"topic":"crypto_prices","type":"subscribe"}}"#,
            data.join(",")
        )
    }

    #[test]
    fn missed_observations_are_counted_and_a_backfill_fills_them() {
        for mode in [SyncMode::Enforce, SyncMode::Observe] {
            let mut d = FrameDriver::new(VENUE, mode, true).unwrap();
            let t0 = 1_788_600_388_000;
            let mut out = Vec::new();
            for t in [t0, t0 + 1000, t0 + 2000] {
                d.frame(update("crypto_prices_chainlink", t).as_bytes(), 1, &mut out)
                    .unwrap();
            }
            let c = d.counters.stream(Stream::Chainlink as u8);
            assert_eq!((c.gaps, c.gap_records), (0, 0), "{mode:?}");
            // Three observations lost (t0+3 s … t0+5 s).
            d.frame(
                update("crypto_prices_chainlink", t0 + 6000).as_bytes(),
                1,
                &mut out,
            )
            .unwrap();
            let c = d.counters.stream(Stream::Chainlink as u8);
            assert_eq!((c.gaps, c.gap_records), (1, 3), "{mode:?}");
            // A reconnect's backfill overlapping the last observation, then live again with
            // one second missing beyond the backfill.
            d.frame(backfill(t0 + 4000, 5).as_bytes(), 1, &mut out)
                .unwrap();
            let c = d.counters.stream(Stream::Chainlink as u8);
            assert_eq!((c.gaps, c.gap_records), (1, 3), "{mode:?}");
            d.frame(
                update("crypto_prices_chainlink", t0 + 10_000).as_bytes(),
                1,
                &mut out,
            )
            .unwrap();
            let c = d.counters.stream(Stream::Chainlink as u8);
            assert_eq!((c.gaps, c.gap_records), (2, 4), "{mode:?}");
            // The TWAP streams are on the same grid, counted separately.
            for t in [t0, t0 + 2000] {
                d.frame(
                    update("crypto_prices_twap_sixty", t).as_bytes(),
                    1,
                    &mut out,
                )
                .unwrap();
            }
            let c = d.counters.stream(Stream::Twap60 as u8);
            assert_eq!((c.gaps, c.gap_records), (1, 1), "{mode:?}");
        }
    }

    #[test]
    fn price_from_the_e18_text_equals_the_division() {
        for text in [
            "79696948174287960000000",
            "65245091651786417500000",
            "1",
            "9999999999",
            "10000000000",
            "10000000001",
            "99999999999999999999999999",
        ] {
            let v = value_e18(Some(text.as_bytes()), None, true).unwrap();
            assert_eq!(
                price_e8(Some(text.as_bytes()), true, v),
                v / (VALUE_E18_SCALE / 100_000_000),
                "{text}"
            );
        }
        // The relay's decimal text takes the division.
        let v = value_e18(Some(b"79696.94817428796"), None, false).unwrap();
        assert_eq!(
            price_e8(Some(b"79696.94817428796"), false, v),
            7_969_694_817_428
        );
    }

    #[test]
    fn off_grid_timestamps_and_the_binance_relay_are_not_gap_checked() {
        let mut d = FrameDriver::new(VENUE, SyncMode::Enforce, true).unwrap();
        let mut out = Vec::new();
        for t in [1_753_314_064_213, 1_753_314_069_000] {
            d.frame(update("crypto_prices_chainlink", t).as_bytes(), 1, &mut out)
                .unwrap();
        }
        assert_eq!(d.counters.stream(Stream::Chainlink as u8).gaps, 0);
        for t in [1_788_600_388_000u64, 1_788_600_398_000] {
            let relay = format!(
                r#"{{"payload":{{"symbol":"btcusdt","timestamp":{t},"value":79696.9}},"timestamp":1,"topic":"crypto_prices","type":"update"}}"#
            );
            d.frame(relay.as_bytes(), 1, &mut out).unwrap();
        }
        assert_eq!(d.counters.stream(Stream::BinanceRelay as u8).gaps, 0);
        assert_eq!(d.counters.stream(Stream::BinanceRelay as u8).messages, 2);
    }

    /// The one-pass split equals the general conversion on random digit texts (lengths 1-40,
    /// leading zeros included: those take the general path).
    #[test]
    fn split_e18_equals_the_general_conversion() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = usize::try_from(x % 40).unwrap() + 1;
            let text: Vec<u8> = (0..len)
                .map(|i| b'0' + u8::try_from((x >> (i % 60)) % 10).unwrap())
                .collect();
            let general = value_e18(Some(&text), None, true)
                .ok()
                .map(|v| (v, price_e8(Some(&text), true, v)));
            if let Some(fast) = split_e18(&text) {
                assert_eq!(Some(fast), general, "{}", String::from_utf8_lossy(&text));
            }
            assert_eq!(values(Some(&text), None, true).ok(), general);
        }
    }
}
