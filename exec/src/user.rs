//! The authenticated user channel (`wss://…/ws/user`), sans-IO: frame bytes in, typed events out.
//!
//! Two event types arrive (PROTOCOL_NOTES.md §5, corpus `ws_samples/user_order.jsonl` and
//! `user_trade.jsonl`):
//! * `order`: `type` PLACEMENT / UPDATE / CANCELLATION with `status` LIVE / MATCHED / CANCELED /
//!   INVALID (and `CANCELED_<reason>` for a killed FOK/FAK), `size_matched` cumulative;
//! * `trade`: one match, `status` MATCHED → MINED → CONFIRMED, or RETRYING → FAILED; the taker's
//!   order is `taker_order_id` with `side`, `price`, `size`; each `maker_orders[]` entry is one
//!   maker order with its own `price`, `matched_amount`, `asset_id` and (newer frames) `side`.
//!
//! Which fills are ours is decided by the caller from the order ids (we know every order hash
//! before it is sent); the parser only gives each entry its side: the entry's own `side` when
//! present, else the opposite of the taker's side on the same token and the same side on the
//! complementary token (a maker buying "No" against a taker buying "Yes").
//!
//! Prices and sizes are parsed from the decimal text into fixed point (1e-8). Strings are
//! borrowed from the frame (no allocation for a well-formed frame); a malformed event is counted
//! under a named [`UserError`] and skipped, never a panic. A frame may be one event or a JSON
//! array of events; `PONG` answers our `PING` keep-alive.

use std::fmt;

use ringbolt_bus::Side;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, de};

use crate::amounts::Decimal;

/// Most `maker_orders[]` entries kept per trade (the rest are counted as
/// [`UserError::TooManyMakers`] and the event is still delivered with the first ones).
pub const MAX_MAKERS: usize = 16;

/// Why an event was skipped (counted per reason by [`UserParser`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// Not JSON, or not the expected shape.
    #[error("not a JSON event")]
    BadJson,
    /// `event_type` neither `order` nor `trade`.
    #[error("unknown event_type")]
    UnknownEventType,
    /// A required field is missing or empty.
    #[error("missing field {0}")]
    Missing(&'static str),
    /// A decimal field does not parse.
    #[error("bad decimal in {0}")]
    BadDecimal(&'static str),
    /// `side` / `trader_side` is not BUY/SELL / MAKER/TAKER.
    #[error("bad side in {0}")]
    BadSide(&'static str),
    /// Unknown order `type` or status.
    #[error("bad {0}")]
    BadStatus(&'static str),
    /// More than [`MAX_MAKERS`] maker entries (the first ones are kept).
    #[error("more than {MAX_MAKERS} maker orders")]
    TooManyMakers,
}

impl UserError {
    /// Stable counter name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            UserError::BadJson => "bad_json",
            UserError::UnknownEventType => "unknown_event_type",
            UserError::Missing(_) => "missing_field",
            UserError::BadDecimal(_) => "bad_decimal",
            UserError::BadSide(_) => "bad_side",
            UserError::BadStatus(_) => "bad_status",
            UserError::TooManyMakers => "too_many_makers",
        }
    }
    const fn index(self) -> usize {
        match self {
            UserError::BadJson => 0,
            UserError::UnknownEventType => 1,
            UserError::Missing(_) => 2,
            UserError::BadDecimal(_) => 3,
            UserError::BadSide(_) => 4,
            UserError::BadStatus(_) => 5,
            UserError::TooManyMakers => 6,
        }
    }
}

/// `order` event `type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderEventKind {
    /// The order rests on the book.
    Placement,
    /// It matched (partly or fully).
    Update,
    /// It was cancelled (by us, the venue, or a FOK/FAK kill).
    Cancellation,
}

/// `order` event `status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VenueOrderStatus {
    /// Resting.
    Live,
    /// Matched (see `size_matched`).
    Matched,
    /// Cancelled (`CANCELED`, or `CANCELED_<reason>` for a killed FOK/FAK).
    Canceled,
    /// Cancelled by the venue as invalid.
    Invalid,
    /// Delayed matching.
    Delayed,
}

/// Trade status (the settlement pipeline).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TradeStatus {
    /// Matched off-chain: a provisional fill.
    Matched,
    /// In a block: still provisional.
    Mined,
    /// Final.
    Confirmed,
    /// The settlement transaction is being retried: still provisional.
    Retrying,
    /// Failed: the fill is reverted.
    Failed,
}

impl TradeStatus {
    /// The bus `Fill::status`: 1 provisional, 2 confirmed, 3 failed.
    #[must_use]
    pub const fn fill_status(self) -> u8 {
        match self {
            TradeStatus::Matched | TradeStatus::Mined | TradeStatus::Retrying => FILL_PROVISIONAL,
            TradeStatus::Confirmed => FILL_CONFIRMED,
            TradeStatus::Failed => FILL_FAILED,
        }
    }
}

/// `Fill::status` provisional.
pub const FILL_PROVISIONAL: u8 = 1;
/// `Fill::status` confirmed.
pub const FILL_CONFIRMED: u8 = 2;
/// `Fill::status` failed (reverts the provisional fill).
pub const FILL_FAILED: u8 = 3;
/// `Fill::liquidity` maker.
pub const LIQUIDITY_MAKER: u8 = 1;
/// `Fill::liquidity` taker.
pub const LIQUIDITY_TAKER: u8 = 2;

/// An `order` event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderEvent<'a> {
    /// PLACEMENT / UPDATE / CANCELLATION.
    pub kind: OrderEventKind,
    /// Status.
    pub status: VenueOrderStatus,
    /// The order hash (`0x…`).
    pub order_id: &'a str,
    /// Token id (decimal text).
    pub asset_id: &'a str,
    /// Side.
    pub side: Side,
    /// Limit price, 1e-8.
    pub price_e8: i64,
    /// Original size, 1e-8 shares.
    pub original_size_e8: i64,
    /// Cumulative matched size, 1e-8 shares (`""` = 0).
    pub size_matched_e8: i64,
    /// Venue time, ns since the epoch (0 if absent).
    pub ts_ns: i64,
}

/// One maker order of a trade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MakerFill<'a> {
    /// The maker order hash.
    pub order_id: &'a str,
    /// Its token.
    pub asset_id: &'a str,
    /// The maker order's side (given, or derived from the taker's; see the module docs).
    pub side: Side,
    /// The maker's price, 1e-8.
    pub price_e8: i64,
    /// Shares matched against this maker order, 1e-8.
    pub size_e8: i64,
    /// Fee rate in basis points.
    pub fee_rate_bps: u32,
}

/// A `trade` event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TradeEvent<'a> {
    /// Trade id.
    pub trade_id: &'a str,
    /// Status.
    pub status: TradeStatus,
    /// Whether the event is addressed to us as the taker (`trader_side: TAKER`).
    pub we_are_taker: bool,
    /// The taker order hash.
    pub taker_order_id: &'a str,
    /// The taker's token.
    pub asset_id: &'a str,
    /// The taker's side.
    pub side: Side,
    /// The taker's price, 1e-8.
    pub price_e8: i64,
    /// The taker's matched size, 1e-8 shares.
    pub size_e8: i64,
    /// Taker fee rate in basis points.
    pub fee_rate_bps: u32,
    /// Match time, ns since the epoch (`match_time`, else `timestamp`; 0 if neither).
    pub match_ts_ns: i64,
    /// Maker orders (first `n_makers` entries are valid).
    pub makers: [MakerFill<'a>; MAX_MAKERS],
    /// Valid entries in `makers`.
    pub n_makers: usize,
}

impl Default for MakerFill<'_> {
    fn default() -> Self {
        MakerFill {
            order_id: "",
            asset_id: "",
            side: Side::Buy,
            price_e8: 0,
            size_e8: 0,
            fee_rate_bps: 0,
        }
    }
}

impl<'a> TradeEvent<'a> {
    /// The valid maker entries.
    #[must_use]
    pub fn makers(&self) -> &[MakerFill<'a>] {
        &self.makers[..self.n_makers]
    }
}

/// One parsed user-channel event.
#[allow(
    clippy::large_enum_variant,
    reason = "boxing the trade would allocate per event; events live on the stack"
)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserEvent<'a> {
    /// An `order` event.
    Order(OrderEvent<'a>),
    /// A `trade` event.
    Trade(TradeEvent<'a>),
    /// `PONG` (keep-alive answer).
    Pong,
}

#[derive(Deserialize, Default)]
struct RawMaker<'a> {
    #[serde(borrow, default)]
    order_id: Option<&'a str>,
    #[serde(borrow, default)]
    asset_id: Option<&'a str>,
    #[serde(borrow, default)]
    side: Option<&'a str>,
    #[serde(borrow, default)]
    price: Option<&'a str>,
    #[serde(borrow, default)]
    matched_amount: Option<&'a str>,
    #[serde(borrow, default)]
    fee_rate_bps: Option<&'a str>,
}

/// `maker_orders[]` into a fixed array: no allocation.
#[derive(Default)]
struct Makers<'a> {
    items: [Option<RawMaker<'a>>; MAX_MAKERS],
    n: usize,
    overflow: bool,
}

impl<'de: 'a, 'a> Deserialize<'de> for Makers<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Makers<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of maker orders, or null")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Makers<'a>, E> {
                Ok(Makers::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Makers<'a>, A::Error> {
                let mut m = Makers::default();
                while m.n < MAX_MAKERS {
                    match seq.next_element::<RawMaker<'a>>()? {
                        Some(x) => {
                            m.items[m.n] = Some(x);
                            m.n += 1;
                        }
                        None => return Ok(m),
                    }
                }
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    m.overflow = true;
                }
                Ok(m)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(borrow, default)]
    event_type: Option<&'a str>,
    #[serde(borrow, default, rename = "type")]
    kind: Option<&'a str>,
    #[serde(borrow, default)]
    status: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Option<&'a str>,
    #[serde(borrow, default)]
    asset_id: Option<&'a str>,
    #[serde(borrow, default)]
    side: Option<&'a str>,
    #[serde(borrow, default)]
    price: Option<&'a str>,
    #[serde(borrow, default)]
    original_size: Option<&'a str>,
    #[serde(borrow, default)]
    size_matched: Option<&'a str>,
    #[serde(borrow, default)]
    size: Option<&'a str>,
    #[serde(borrow, default)]
    timestamp: Option<&'a str>,
    #[serde(borrow, default)]
    match_time: Option<&'a str>,
    #[serde(borrow, default)]
    trader_side: Option<&'a str>,
    #[serde(borrow, default)]
    taker_order_id: Option<&'a str>,
    #[serde(borrow, default)]
    fee_rate_bps: Option<&'a str>,
    #[serde(borrow, default)]
    maker_orders: Option<Makers<'a>>,
}

/// Decimal text → 1e-8 fixed point (more than 8 decimals, or too large: `None`).
#[must_use]
pub fn decimal_e8(text: &str) -> Option<i64> {
    let d = Decimal::parse(text).ok()?;
    if d.scale > 8 {
        // Accept trailing zeros beyond 8 decimals only.
        let cut = 10u128.pow(d.scale - 8);
        if d.mantissa % cut != 0 {
            return None;
        }
        return i64::try_from(d.mantissa / cut).ok();
    }
    i64::try_from(d.mantissa.checked_mul(10u128.pow(8 - d.scale))?).ok()
}

fn req<'a>(v: Option<&'a str>, field: &'static str) -> Result<&'a str, UserError> {
    v.filter(|s| !s.is_empty()).ok_or(UserError::Missing(field))
}

fn dec_field(v: Option<&str>, field: &'static str) -> Result<i64, UserError> {
    decimal_e8(req(v, field)?).ok_or(UserError::BadDecimal(field))
}

fn side_of(v: Option<&str>, field: &'static str) -> Result<Side, UserError> {
    match req(v, field)? {
        "BUY" | "buy" => Ok(Side::Buy),
        "SELL" | "sell" => Ok(Side::Sell),
        _ => Err(UserError::BadSide(field)),
    }
}

fn bps(v: Option<&str>) -> Result<u32, UserError> {
    match v {
        None | Some("") => Ok(0),
        Some(s) => s.parse().map_err(|_| UserError::BadDecimal("fee_rate_bps")),
    }
}

/// Venue time text (ms, or s when it is too small to be ms) → ns; 0 when absent or bad.
fn ts_ns(v: Option<&str>) -> i64 {
    let Some(n) = v.and_then(|s| s.parse::<i64>().ok()) else {
        return 0;
    };
    if n < 100_000_000_000 {
        n.saturating_mul(1_000_000_000)
    } else {
        n.saturating_mul(1_000_000)
    }
}

fn opposite(s: Side) -> Side {
    if s == Side::Buy {
        Side::Sell
    } else {
        Side::Buy
    }
}

fn order_event<'a>(r: &RawEvent<'a>) -> Result<OrderEvent<'a>, UserError> {
    let kind = match req(r.kind, "type")? {
        "PLACEMENT" => OrderEventKind::Placement,
        "UPDATE" => OrderEventKind::Update,
        "CANCELLATION" => OrderEventKind::Cancellation,
        _ => return Err(UserError::BadStatus("order type")),
    };
    let status_text = r.status.as_deref().unwrap_or("");
    let status = match status_text {
        "LIVE" | "live" => VenueOrderStatus::Live,
        "MATCHED" | "matched" => VenueOrderStatus::Matched,
        "INVALID" => VenueOrderStatus::Invalid,
        "DELAYED" | "delayed" => VenueOrderStatus::Delayed,
        s if s.starts_with("CANCELED") || s.starts_with("CANCELLED") => VenueOrderStatus::Canceled,
        // Older frames carry no status on a cancellation.
        "" if kind == OrderEventKind::Cancellation => VenueOrderStatus::Canceled,
        _ => return Err(UserError::BadStatus("order status")),
    };
    let size_matched_e8 = match r.size_matched {
        None | Some("") => 0,
        Some(s) => decimal_e8(s).ok_or(UserError::BadDecimal("size_matched"))?,
    };
    Ok(OrderEvent {
        kind,
        status,
        order_id: req(r.id, "id")?,
        asset_id: req(r.asset_id, "asset_id")?,
        side: side_of(r.side, "side")?,
        price_e8: dec_field(r.price, "price")?,
        original_size_e8: dec_field(r.original_size, "original_size")?,
        size_matched_e8,
        ts_ns: ts_ns(r.timestamp),
    })
}

fn trade_status(s: &str) -> Result<TradeStatus, UserError> {
    Ok(match s {
        "MATCHED" => TradeStatus::Matched,
        "MINED" => TradeStatus::Mined,
        "CONFIRMED" => TradeStatus::Confirmed,
        "RETRYING" => TradeStatus::Retrying,
        "FAILED" => TradeStatus::Failed,
        _ => return Err(UserError::BadStatus("trade status")),
    })
}

fn maker_fill<'a>(m: &RawMaker<'a>, taker: (Side, &str)) -> Result<MakerFill<'a>, UserError> {
    let asset_id = req(m.asset_id, "maker_orders.asset_id")?;
    let side = match m.side {
        Some(_) => side_of(m.side, "maker_orders.side")?,
        None if asset_id == taker.1 => opposite(taker.0),
        None => taker.0,
    };
    Ok(MakerFill {
        order_id: req(m.order_id, "maker_orders.order_id")?,
        asset_id,
        side,
        price_e8: dec_field(m.price, "maker_orders.price")?,
        size_e8: dec_field(m.matched_amount, "maker_orders.matched_amount")?,
        fee_rate_bps: bps(m.fee_rate_bps)?,
    })
}

fn trade_event<'a>(r: &RawEvent<'a>) -> Result<(TradeEvent<'a>, bool), UserError> {
    let status = trade_status(r.status.as_deref().unwrap_or(""))?;
    let we_are_taker = match req(r.trader_side, "trader_side")? {
        "TAKER" => true,
        "MAKER" => false,
        _ => return Err(UserError::BadSide("trader_side")),
    };
    let side = side_of(r.side, "side")?;
    let asset_id = req(r.asset_id, "asset_id")?;
    let mut ev = TradeEvent {
        trade_id: req(r.id, "id")?,
        status,
        we_are_taker,
        taker_order_id: req(r.taker_order_id, "taker_order_id")?,
        asset_id,
        side,
        price_e8: dec_field(r.price, "price")?,
        size_e8: dec_field(r.size, "size")?,
        fee_rate_bps: bps(r.fee_rate_bps)?,
        match_ts_ns: match ts_ns(r.match_time) {
            0 => ts_ns(r.timestamp),
            t => t,
        },
        makers: [MakerFill::default(); MAX_MAKERS],
        n_makers: 0,
    };
    let mut overflow = false;
    if let Some(m) = &r.maker_orders {
        for raw in m.items.iter().take(m.n).flatten() {
            ev.makers[ev.n_makers] = maker_fill(raw, (side, asset_id))?;
            ev.n_makers += 1;
        }
        overflow = m.overflow;
    }
    Ok((ev, overflow))
}

/// Number of [`UserError`] reasons.
pub const N_REASONS: usize = 7;

/// The user-channel parser with its counters.
#[derive(Debug, Default, Clone)]
pub struct UserParser {
    /// Events delivered.
    pub events: u64,
    /// Skipped events per reason (index order of [`UserParser::reasons`]).
    pub skipped: [u64; N_REASONS],
}

impl UserParser {
    /// A parser with zeroed counters.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// `(reason name, count)` for every skip reason.
    #[must_use]
    pub fn reasons(&self) -> [(&'static str, u64); N_REASONS] {
        const ALL: [UserError; N_REASONS] = [
            UserError::BadJson,
            UserError::UnknownEventType,
            UserError::Missing(""),
            UserError::BadDecimal(""),
            UserError::BadSide(""),
            UserError::BadStatus(""),
            UserError::TooManyMakers,
        ];
        ALL.map(|e| (e.name(), self.skipped[e.index()]))
    }

    /// Total skipped.
    #[must_use]
    pub fn skipped_total(&self) -> u64 {
        self.skipped.iter().sum()
    }

    fn skip(&mut self, e: UserError) {
        self.skipped[e.index()] += 1;
    }

    /// Parses one frame (an event, an array of events, or `PONG`), handing each event to `on`.
    /// Returns the number of events delivered; malformed events are counted and skipped.
    pub fn parse_frame<'a>(&mut self, frame: &'a [u8], mut on: impl FnMut(UserEvent<'a>)) -> usize {
        let trimmed = frame.trim_ascii();
        if trimmed.eq_ignore_ascii_case(b"PONG") {
            on(UserEvent::Pong);
            return 1;
        }
        if trimmed.first() == Some(&b'[') {
            let mut de = serde_json::Deserializer::from_slice(trimmed);
            let mut n = 0;
            let seed = EachEvent {
                parser: self,
                on: &mut on,
                n: &mut n,
            };
            if de.deserialize_seq(seed).is_err() {
                self.skip(UserError::BadJson);
            }
            return n;
        }
        match self.parse_event(trimmed) {
            Ok(ev) => {
                on(ev);
                1
            }
            Err(_) => 0,
        }
    }

    /// Parses one JSON event object (counted on error).
    pub fn parse_event<'a>(&mut self, bytes: &'a [u8]) -> Result<UserEvent<'a>, UserError> {
        let r = serde_json::from_slice::<RawEvent<'a>>(bytes).map_err(|_| UserError::BadJson);
        let out = r.and_then(|r| self.event(&r));
        match out {
            Ok(_) => self.events += 1,
            Err(e) => self.skip(e),
        }
        out
    }

    fn event<'a>(&mut self, r: &RawEvent<'a>) -> Result<UserEvent<'a>, UserError> {
        // Some order frames (corpus user_order.jsonl line 3) omit event_type: the shape tells.
        let is_trade = match r.event_type {
            Some("order") => false,
            Some("trade") => true,
            None if r.original_size.is_some() => false,
            None if r.taker_order_id.is_some() => true,
            _ => return Err(UserError::UnknownEventType),
        };
        if !is_trade {
            return order_event(r).map(UserEvent::Order);
        }
        let (ev, overflow) = trade_event(r)?;
        if overflow {
            self.skip(UserError::TooManyMakers);
        }
        Ok(UserEvent::Trade(ev))
    }
}

struct EachEvent<'p, 'f, F> {
    parser: &'p mut UserParser,
    on: &'f mut F,
    n: &'f mut usize,
}

impl<'de, F: FnMut(UserEvent<'de>)> DeserializeSeed<'de> for EachEvent<'_, '_, F> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(UserEvent<'de>)> Visitor<'de> for EachEvent<'_, '_, F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of user events")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            match seq.next_element::<RawEvent<'de>>() {
                Ok(Some(r)) => match self.parser.event(&r) {
                    Ok(ev) => {
                        self.parser.events += 1;
                        *self.n += 1;
                        (self.on)(ev);
                    }
                    Err(e) => self.parser.skip(e),
                },
                Ok(None) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }
}
