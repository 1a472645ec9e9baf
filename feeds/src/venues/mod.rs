//! One adapter per venue, plus the small helpers they share.
//!
//! The shared shape of an adapter lives here: `stream_catalogues!` (every venue's `Stream`
//! enum and `StreamDesc` table, from one list in `streams`), `json_fields!` (a struct of optional
//! field texts and its one-pass object reader), `adapter_profile!` / `adapter_identity!` /
//! `subscriptions!` (the trivial `VenueAdapter` methods), and the level-loop / timestamp helpers below. All of it
//! expands to the same straight-line code the adapters had written out: no allocation, no
//! dynamic dispatch.

/// Declares the venues' stream catalogues: per venue, a module holding its `Stream` enum
/// (`#[repr(u8)]`, the `Record.stream` values) and its catalogue constant of
/// [`StreamDesc`](crate::adapter::StreamDesc)s, both from one list so an id is written once:
/// `venue::CONST { Variant = id, "name", "doc"; … }` (a doc comment before each entry documents
/// the variant, before the venue the enum).
macro_rules! stream_catalogues {
    ($(
        $(#[$enum_meta:meta])*
        $module:ident::$streams:ident {
            $(endpoint: $endpoint:expr;)?
            keep_alive: $keep_alive:expr;
            $( $(#[$variant_meta:meta])* $variant:ident = $id:literal, $name:literal, $doc:literal; )+
        }
    )+) => {
        $(
            #[doc = concat!("The `", stringify!($module), "` connection profile and stream catalogue.")]
            pub mod $module {
                #[allow(unused_imports)]
                use $crate::adapter::{WsEndpoint, KeepAlive};

                $(
                    /// Where the adapter connects.
                    pub const ENDPOINT: WsEndpoint = $endpoint;
                )?

                /// How the connection is kept alive.
                pub const KEEP_ALIVE: KeepAlive = $keep_alive;

                $(#[$enum_meta])*
                #[derive(Clone, Copy, Debug, PartialEq, Eq)]
                #[repr(u8)]
                pub enum Stream {
                    $( $(#[$variant_meta])* $variant = $id, )+
                }

                /// The catalogue as [`StreamDesc`](crate::adapter::StreamDesc)s.
                pub const $streams: &[$crate::adapter::StreamDesc] = &[
                    $( $crate::adapter::StreamDesc::new($id, $name, $doc), )+
                ];
            }
        )+
    };
}

/// Declares a struct of optional field texts (`Option<&'a [u8]>`) and its reader, which walks
/// one JSON object in a single pass and keeps the fields it names: `field: how <- b"key" | …`
/// where `how` is `str` (string contents), `scalar` (string contents or number text), `raw`
/// (the raw value), `opt` (a scalar, `null` read as absent) or `seen` (the value is skipped;
/// `Some(b"")` records that the key was present). Other keys are skipped.
///
/// Generates `read(&mut Lexer)` (the object at the lexer's position, in place), `parse(&[u8])`
/// (the object a buffer starts with) and `parse_exact(&[u8])` (a buffer holding one object).
macro_rules! json_fields {
    (
        $(#[$meta:meta])*
        struct $name:ident { $( $field:ident: $how:ident <- $($key:literal)|+ ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Default)]
        struct $name<'a> {
            $( $field: Option<&'a [u8]>, )+
        }

        #[allow(dead_code)]
        impl<'a> $name<'a> {
            /// Reads the object at the lexer's position (in place, one pass).
            #[inline]
            fn read(j: &mut $crate::json::Lexer<'a>) -> Result<Self, $crate::adapter::ParseError> {
                let mut f = Self::default();
                j.begin_object()?;
                while let Some(key) = j.next_key()? {
                    match key {
                        $( $($key)|+ => f.$field = json_fields!(@read j, $how), )+
                        _ => j.skip_value()?,
                    }
                }
                Ok(f)
            }

            /// Reads the value of one member whose key `key` was just read: into its field, or
            /// skipped when no field takes that key (one step of [`Self::read`], for readers
            /// that handle some keys themselves).
            #[inline]
            fn read_field(
                &mut self,
                key: &[u8],
                j: &mut $crate::json::Lexer<'a>,
            ) -> Result<(), $crate::adapter::ParseError> {
                match key {
                    $( $($key)|+ => self.$field = json_fields!(@read j, $how), )+
                    _ => j.skip_value()?,
                }
                Ok(())
            }

            /// Reads the object `raw` starts with.
            #[inline]
            fn parse(raw: &'a [u8]) -> Result<Self, $crate::adapter::ParseError> {
                Self::read(&mut $crate::json::Lexer::new(raw))
            }

            /// Reads `raw`, which must be one object and nothing else.
            #[inline]
            fn parse_exact(raw: &'a [u8]) -> Result<Self, $crate::adapter::ParseError> {
                let mut j = $crate::json::Lexer::new(raw);
                let f = Self::read(&mut j)?;
                j.end()?;
                Ok(f)
            }
        }
    };
    (@read $j:ident, str) => { Some($j.str()?) };
    (@read $j:ident, scalar) => { Some($j.scalar()?) };
    (@read $j:ident, raw) => { Some($j.raw_value()?) };
    (@read $j:ident, opt) => { $j.opt_scalar()? };
    (@read $j:ident, seen) => {{
        $j.skip_value()?;
        Some(&b""[..])
    }};
}

/// The `VenueAdapter::venue` and `VenueAdapter::streams` methods of an adapter with a
/// fixed venue and catalogue (its endpoint or keep-alive depend on the adapter's settings).
macro_rules! adapter_identity {
    ($venue:expr, $streams:expr) => {
        fn venue(&self) -> ringbolt_bus::Venue {
            $venue
        }

        fn streams(&self) -> &'static [$crate::adapter::StreamDesc] {
            $streams
        }
    };
}

/// The `VenueAdapter::venue`, `streams`, `endpoint` and `keep_alive` methods of an adapter
/// whose connection profile is fixed (see `stream_catalogues!`).
macro_rules! adapter_profile {
    ($venue:expr, $streams:expr, $endpoint:expr, $keep_alive:expr) => {
        adapter_identity!($venue, $streams);

        fn endpoint(&self) -> $crate::adapter::WsEndpoint {
            $endpoint
        }

        fn keep_alive(&self) -> $crate::adapter::KeepAlive {
            $keep_alive
        }
    };
}

/// The `VenueAdapter::subscribe` and `VenueAdapter::unsubscribe` methods of an adapter
/// whose frames are built by one function `frames(op, symbols, streams) -> Vec<Outgoing>` called
/// with the subscribe and the unsubscribe operation word and the selected streams.
macro_rules! subscriptions {
    ($frames:path, $subscribe:literal, $unsubscribe:literal) => {
        fn subscribe_streams(
            &self,
            symbols: &[&str],
            streams: &[&'static $crate::venues::streams::Selectable],
        ) -> Vec<$crate::adapter::Outgoing> {
            $frames($subscribe, symbols, streams)
        }

        fn unsubscribe_streams(
            &self,
            symbols: &[&str],
            streams: &[&'static $crate::venues::streams::Selectable],
        ) -> Vec<$crate::adapter::Outgoing> {
            $frames($unsubscribe, symbols, streams)
        }
    };
}

pub mod binance;
pub mod bitstamp;
pub mod bybit;
pub mod chainlink_rtds;
pub mod coinbase;
pub mod deribit;
pub mod gemini;
pub mod kraken;
pub mod okx;
pub mod polybolt;
pub mod polymarket;
pub mod streams;

use ringbolt_bus::{
    BookLevel, FLAG_BATCH_BEGIN, FLAG_BATCH_END, FLAG_SNAPSHOT, Record, Side, Trade, Venue,
};

use crate::adapter::{Ctx, DecimalField, Outgoing, ParseError, Parsed, VenueAdapter};
use crate::continuity::SyncMode;
use crate::decimal::{DecimalError, parse_e8};
use crate::json::Lexer;

/// Venues with an adapter in this crate, by corpus folder name.
pub const IMPLEMENTED: &[Venue] = &[
    Venue::Polymarket,
    Venue::ChainlinkRtds,
    Venue::BinanceSpot,
    Venue::BinanceFutures,
    Venue::Coinbase,
    Venue::Okx,
    Venue::Kraken,
    Venue::Bybit,
    Venue::Gemini,
    Venue::Bitstamp,
    Venue::Deribit,
    Venue::PolyBolt,
];

/// Builds the adapter for `venue`, `None` when it is not implemented yet.
#[must_use]
pub fn adapter_for(venue: Venue, mode: SyncMode) -> Option<Box<dyn VenueAdapter>> {
    Some(match venue {
        Venue::Internal => return None,
        Venue::PolyBolt => Box::new(polybolt::PolyBolt::new(mode)),
        Venue::Polymarket => Box::new(polymarket::Polymarket::new(mode)),
        Venue::ChainlinkRtds => Box::new(chainlink_rtds::ChainlinkRtds::new(mode)),
        Venue::BinanceSpot => Box::new(binance::Binance::spot(mode)),
        Venue::BinanceFutures => Box::new(binance::Binance::futures(mode)),
        Venue::Coinbase => Box::new(coinbase::Coinbase::new(mode)),
        Venue::Okx => Box::new(okx::Okx::new(mode)),
        Venue::Kraken => Box::new(kraken::Kraken::new(mode)),
        Venue::Bybit => Box::new(bybit::Bybit::new(mode)),
        Venue::Gemini => Box::new(gemini::Gemini::new(mode)),
        Venue::Bitstamp => Box::new(bitstamp::Bitstamp::new(mode)),
        Venue::Deribit => Box::new(deribit::Deribit::new(mode)),
    })
}

/// Parses a side word as a venue writes it (`buy`/`BUY`/`bid`, `sell`/`SELL`/`ask`/`offer`).
#[inline]
pub(crate) fn side_of(text: &[u8]) -> Option<Side> {
    match text {
        b"buy" | b"BUY" | b"Buy" | b"bid" | b"bids" | b"b" => Some(Side::Buy),
        b"sell" | b"SELL" | b"Sell" | b"ask" | b"asks" | b"offer" | b"a" | b"s" => Some(Side::Sell),
        _ => None,
    }
}

/// The opposite side (maker side → aggressor side).
#[inline]
pub(crate) const fn opposite(side: Side) -> Side {
    match side {
        Side::Buy => Side::Sell,
        Side::Sell => Side::Buy,
        Side::None => Side::None,
    }
}

/// A book-level body.
#[inline]
pub(crate) fn level(side: Side, price: i64, size: i64) -> BookLevel {
    BookLevel {
        price,
        size,
        side: side as u8,
        reserved: [0; 63],
    }
}

/// A trade body (`side` is the aggressor's).
#[inline]
pub(crate) fn trade(price: i64, size: i64, trade_id: u64, side: Side) -> Trade {
    Trade {
        price,
        size,
        trade_id,
        side: side as u8,
        reserved: [0; 55],
    }
}

/// One book level as received: its price and size text and their fixed-point values (1e-8).
#[derive(Clone, Copy, Debug)]
pub(crate) struct TextLevel<'a> {
    /// Price text as received (string contents or number text).
    pub price_text: &'a [u8],
    /// Size text as received.
    pub size_text: &'a [u8],
    /// Price × 1e8.
    pub price: i64,
    /// Size × 1e8.
    pub size: i64,
}

/// A field the message requires: its text, or [`ParseError::Missing`] naming it.
#[inline]
pub(crate) fn req<'a>(value: Option<&'a [u8]>, name: &'static str) -> Result<&'a [u8], ParseError> {
    value.ok_or(ParseError::Missing(name))
}

/// An optional timestamp field converted to ns with `to_ns` (0 when absent).
#[inline]
pub(crate) fn opt_ts(
    value: Option<&[u8]>,
    to_ns: fn(&[u8]) -> Result<i64, DecimalError>,
    name: &'static str,
) -> Result<i64, ParseError> {
    Ok(value.map(to_ns).transpose().field(name)?.unwrap_or(0))
}

/// A required price/size field × 1e8 ([`ParseError::Missing`] when absent; a conversion error
/// names the same field).
#[inline]
pub(crate) fn req_e8(value: Option<&[u8]>, name: &'static str) -> Result<i64, ParseError> {
    parse_e8(req(value, name)?).field(name)
}

/// An optional price/size field × 1e8 (0 when absent or empty).
#[inline]
pub(crate) fn opt_e8(value: Option<&[u8]>, name: &'static str) -> Result<i64, ParseError> {
    match value {
        None | Some(b"") => Ok(0),
        Some(t) => parse_e8(t).field(name),
    }
}

/// One text frame (cold path: subscribe / unsubscribe requests).
pub(crate) fn text_frame(text: String) -> Vec<Outgoing> {
    vec![Outgoing::Text(text.into_bytes())]
}

/// The sync gate of a book batch: a snapshot marks the book synced (counting a resync when it
/// was not); a delta on an unsynced book in enforce mode is dropped (counted): `false`, and the
/// caller clears its scratch batch.
#[inline]
pub(crate) fn sync_gate(
    ctx: &mut Ctx<'_>,
    stream: u8,
    synced: &mut bool,
    snapshot: bool,
    enforce: bool,
) -> bool {
    if snapshot {
        if !*synced {
            *synced = true;
            ctx.counters.stream_mut(stream).resyncs += 1;
        }
    } else if enforce && !*synced {
        ctx.counters.stream_mut(stream).dropped_unsynced += 1;
        return false;
    }
    true
}

/// Calls `f` with the raw text of every element of the JSON array `raw`, in order.
#[inline]
pub(crate) fn for_each_element<'a>(raw: &'a [u8], mut f: impl FnMut(&'a [u8]) -> Parsed) -> Parsed {
    let mut j = Lexer::new(raw);
    j.begin_array()?;
    while j.next_element()? {
        f(j.raw_value()?)?;
    }
    Ok(())
}

/// Reads the first `N` scalars of the array the lexer is in (after `begin_array`) and skips
/// the rest of it; fewer than `N` elements is [`ParseError::Missing`] of `what`.
#[inline]
pub(crate) fn array_scalars<'a, const N: usize>(
    j: &mut Lexer<'a>,
    what: &'static str,
) -> Result<[&'a [u8]; N], ParseError> {
    let mut out: [&[u8]; N] = [b""; N];
    for x in &mut out {
        if !j.next_element()? {
            return Err(ParseError::Missing(what));
        }
        *x = j.scalar()?;
    }
    while j.next_element()? {
        j.skip_value()?;
    }
    Ok(out)
}

/// Clears `scratch` and fills it with the `[price, size, …]` levels of each side's raw array
/// (an absent side is skipped); on an error the scratch batch is cleared.
#[allow(clippy::too_many_arguments)]
pub(crate) fn collect_pairs(
    scratch: &mut Vec<Record>,
    venue: Venue,
    stream: u8,
    instrument: u32,
    sides: [(Option<&[u8]>, Side); 2],
    exchange_ts_ns: i64,
    venue_seq: u64,
) -> Parsed {
    scratch.clear();
    for (raw, side) in sides {
        if let Some(raw) = raw {
            for_each_pair(raw, |l| {
                push_parsed(
                    scratch,
                    venue,
                    stream,
                    instrument,
                    side,
                    l.price,
                    l.size,
                    exchange_ts_ns,
                    venue_seq,
                );
                Ok(())
            })
            .inspect_err(|_| scratch.clear())?;
        }
    }
    Ok(())
}

impl<'a> TextLevel<'a> {
    /// A level from its texts and their conversions (a failed conversion names its field).
    #[inline]
    fn new(
        price_text: &'a [u8],
        price: Result<i64, DecimalError>,
        size_text: &'a [u8],
        size: Result<i64, DecimalError>,
    ) -> Result<Self, ParseError> {
        Ok(TextLevel {
            price_text,
            size_text,
            price: price.field("price")?,
            size: size.field("size")?,
        })
    }
}

/// Calls `f` for every `[price, size, …]` element of a JSON array, with both values converted
/// to 1e-8 fixed point in the same pass that lexes them.
pub(crate) fn for_each_pair<'a>(raw: &'a [u8], f: impl FnMut(TextLevel<'a>) -> Parsed) -> Parsed {
    for_each_pair_at(&mut Lexer::new(raw), f)
}

/// The price and size (1e-8) that open the `["price","size",…]` row at the lexer's position:
/// one fused step for a compact row, else element by element (which names the missing value);
/// the lexer is left inside the row, after the size, for the caller to step over the rest.
#[inline]
pub(crate) fn pair_row_head<'a>(
    j: &mut Lexer<'a>,
) -> Result<[crate::json::FixedText<'a>; 2], ParseError> {
    if let Some(row) = j.quoted_fixed_row([8, 8]) {
        return Ok(row);
    }
    j.begin_array()?;
    if !j.next_element()? {
        return Err(ParseError::Missing("price"));
    }
    let price = j.scalar_fixed_i64(8)?;
    if !j.next_element()? {
        return Err(ParseError::Missing("size"));
    }
    Ok([price, j.scalar_fixed_i64(8)?])
}

/// [`for_each_pair`] on the array at the lexer's position, in place (the array's extent is not
/// scanned first).
pub(crate) fn for_each_pair_at<'a>(
    j: &mut Lexer<'a>,
    mut f: impl FnMut(TextLevel<'a>) -> Parsed,
) -> Parsed {
    j.begin_array()?;
    while j.next_element()? {
        let [(price_text, price), (size_text, size)] = pair_row_head(j)?;
        while j.next_element()? {
            j.skip_value()?;
        }
        f(TextLevel::new(price_text, price, size_text, size)?)?;
    }
    Ok(())
}

/// The level arrays of a frame read in its envelope's pass, straight into the adapter's scratch
/// batch (see [`LevelsInPlace::pairs`]): which sides were taken, so the batch is known to be
/// what [`collect_pairs`] would build from the same arrays (each side at most once, bids before
/// asks). Anything else is refused (an error), and the caller then takes its general path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LevelsInPlace {
    /// Bit 0: bids taken; bit 1: asks taken.
    taken: u8,
}

impl LevelsInPlace {
    /// Whether any side was taken (the scratch batch holds its levels).
    #[inline]
    pub(crate) const fn any(self) -> bool {
        self.taken != 0
    }

    /// Converts the `[price, size, …]` rows of the array at the lexer's position into `scratch`
    /// as `side` levels of `venue`, in the pass that lexes them. Stream, instrument, exchange
    /// time and sequence are left 0 until [`stamp_levels`] sets them. Returns the array's text.
    ///
    /// # Errors
    /// A malformed row, or a side taken twice or bids after asks (the general path decides).
    #[inline]
    pub(crate) fn pairs<'a>(
        &mut self,
        j: &mut Lexer<'a>,
        scratch: &mut Vec<Record>,
        venue: Venue,
        side: Side,
    ) -> Result<&'a [u8], ParseError> {
        let bit = if side == Side::Buy { 1 } else { 2 };
        // Bids must come first: a repeated side, or bids after asks, is refused.
        if self.taken >= bit {
            return Err(ParseError::Invalid("level arrays out of order"));
        }
        self.taken |= bit;
        // The array's text starts at its first non-blank byte.
        let _ = j.peek();
        let start = j.pos();
        for_each_pair_at(j, |l| {
            push_parsed(scratch, venue, 0, 0, side, l.price, l.size, 0, 0);
            Ok(())
        })?;
        Ok(j.text_since(start))
    }
}

/// Where a text lies in a frame: offset and length (for texts read in a frame's one pass and
/// interpreted after it, once what they mean is known).
pub(crate) type Span = (usize, usize);

/// The span of `text`, a slice of `base`.
#[inline]
pub(crate) fn span_in(base: &[u8], text: &[u8]) -> Span {
    (
        (text.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize),
        text.len(),
    )
}

/// The text at `span` of `base` (empty if out of range, which a span from [`span_in`] never is).
#[inline]
pub(crate) fn text_at(base: &[u8], (at, len): Span) -> &[u8] {
    base.get(at..at.saturating_add(len)).unwrap_or_default()
}

/// Sets stream, instrument, exchange time and sequence on the levels of a batch converted in
/// place ([`LevelsInPlace::pairs`]), which makes it the batch [`collect_pairs`] builds.
#[inline]
pub(crate) fn stamp_levels(
    scratch: &mut [Record],
    stream: u8,
    instrument: u32,
    exchange_ts_ns: i64,
    venue_seq: u64,
) {
    for r in scratch {
        r.stream = stream;
        r.instrument = instrument;
        r.exchange_ts_ns = exchange_ts_ns;
        r.venue_seq = venue_seq;
    }
}

/// Calls `f` for every `{"<price_key>":…, "<size_key>":…}` element, both values converted to
/// 1e-8 fixed point in the same pass that lexes them.
pub(crate) fn for_each_obj_level<'a>(
    raw: &'a [u8],
    price_key: &[u8],
    size_key: &[u8],
    mut f: impl FnMut(TextLevel<'a>) -> Parsed,
) -> Parsed {
    let mut j = Lexer::new(raw);
    j.begin_array()?;
    while j.next_element()? {
        let [(price_text, price), (size_text, size)] =
            match j.quoted_fixed_object([price_key, size_key], 8) {
                Some(level) => level,
                None => {
                    j.begin_object()?;
                    let (mut price, mut size) = (None, None);
                    while let Some(key) = j.next_key()? {
                        if key == price_key {
                            price = Some(j.scalar_fixed_i64(8)?);
                        } else if key == size_key {
                            size = Some(j.scalar_fixed_i64(8)?);
                        } else {
                            j.skip_value()?;
                        }
                    }
                    [
                        price.ok_or(ParseError::Missing("price"))?,
                        size.ok_or(ParseError::Missing("size"))?,
                    ]
                }
            };
        f(TextLevel::new(price_text, price, size_text, size)?)?;
    }
    Ok(())
}

/// Pushes an already converted book level into the scratch batch.
#[inline]
#[allow(clippy::too_many_arguments)]
pub(crate) fn push_parsed(
    scratch: &mut Vec<Record>,
    venue: Venue,
    stream: u8,
    instrument: u32,
    side: Side,
    price: i64,
    size: i64,
    exchange_ts_ns: i64,
    venue_seq: u64,
) {
    let mut r = Record::new(venue, stream, instrument, &level(side, price, size));
    r.exchange_ts_ns = exchange_ts_ns;
    r.venue_seq = venue_seq;
    scratch.push(r);
}

/// Pushes a book level parsed from text into the scratch batch.
#[inline]
#[allow(clippy::too_many_arguments)]
pub(crate) fn push_level(
    scratch: &mut Vec<Record>,
    venue: Venue,
    stream: u8,
    instrument: u32,
    side: Side,
    price: &[u8],
    size: &[u8],
    exchange_ts_ns: i64,
    venue_seq: u64,
) -> Parsed {
    let body = level(
        side,
        parse_e8(price).field("price")?,
        parse_e8(size).field("size")?,
    );
    let mut r = Record::new(venue, stream, instrument, &body);
    r.exchange_ts_ns = exchange_ts_ns;
    r.venue_seq = venue_seq;
    scratch.push(r);
    Ok(())
}

/// Emits a validated batch: batch-begin on the first record, batch-end on the last, and the
/// snapshot flag on all of them when `snapshot`. An empty snapshot is emitted as one
/// side-`none`, price-0, size-0 level so consumers still clear the book.
pub(crate) fn flush_batch(
    ctx: &mut Ctx<'_>,
    scratch: &mut Vec<Record>,
    snapshot: bool,
    empty: Record,
) {
    if scratch.is_empty() {
        if snapshot {
            let mut r = empty;
            r.flags |= FLAG_SNAPSHOT | FLAG_BATCH_BEGIN | FLAG_BATCH_END;
            ctx.emit(&mut r);
        }
        return;
    }
    emit_batch(ctx, scratch, snapshot);
}

/// Emits `scratch` as one batch (batch-begin on the first record, batch-end on the last, the
/// snapshot flag on all when `snapshot`) and clears it; nothing when it is empty.
pub(crate) fn emit_batch(ctx: &mut Ctx<'_>, scratch: &mut Vec<Record>, snapshot: bool) {
    if snapshot {
        for r in scratch.iter_mut() {
            r.flags |= FLAG_SNAPSHOT;
        }
    }
    if let Some(r) = scratch.first_mut() {
        r.flags |= FLAG_BATCH_BEGIN;
    }
    if let Some(r) = scratch.last_mut() {
        r.flags |= FLAG_BATCH_END;
    }
    ctx.emit_all(scratch);
    scratch.clear();
}

/// [`flush_batch`] with the empty-snapshot record of `instrument` (see [`empty_snapshot`]).
#[inline]
#[allow(clippy::too_many_arguments)]
pub(crate) fn flush_levels(
    ctx: &mut Ctx<'_>,
    scratch: &mut Vec<Record>,
    snapshot: bool,
    venue: Venue,
    stream: u8,
    instrument: u32,
    ts: i64,
    seq: u64,
) {
    let empty = empty_snapshot(venue, stream, instrument, ts, seq);
    flush_batch(ctx, scratch, snapshot, empty);
}

/// The record emitted for an empty snapshot of `instrument`.
pub(crate) fn empty_snapshot(
    venue: Venue,
    stream: u8,
    instrument: u32,
    ts: i64,
    seq: u64,
) -> Record {
    let mut r = Record::new(venue, stream, instrument, &level(Side::None, 0, 0));
    r.exchange_ts_ns = ts;
    r.venue_seq = seq;
    r
}
