//! The fixed-size record that crosses process boundaries, and its typed bodies.
//!
//! Every record is exactly [`RECORD_SIZE`] bytes, `#[repr(C)]`, aligned to a cache line and plain
//! data (no pointers, no padding), so it can be copied word by word through shared memory and
//! written to disk unchanged. The first 48 bytes are a common header; the remaining 80 bytes are a
//! body whose meaning is given by [`Record::kind`].
//!
//! # Fixed-point scales
//! Prices and sizes are signed 64-bit integers parsed straight from the venue's decimal text:
//! - prices: [`PRICE_SCALE`] = 10^8 units per 1 (so `95000.12345678` is `9_500_012_345_678`);
//! - sizes: [`SIZE_SCALE`] = 10^8 units per 1 (BTC, contracts, shares or USD, as the venue quotes);
//! - Chainlink's full-accuracy answers: [`VALUE_E18_SCALE`] = 10^18 in an `i128`, kept exact;
//! - funding rates: [`RATE_SCALE`] = 10^12 per 1;
//! - probabilities: [`PROB_SCALE`] = 10^9 per 1.
//!
//! Timestamps are nanoseconds since the Unix epoch (UTC), `CLOCK_REALTIME`, so that stamps taken
//! by different processes on one host are comparable. Zero means "not provided".

use bytemuck::{Pod, Zeroable};

use crate::columns::{
    BODY_OFFSET, BOOL, BYTES, Codes, ColumnType, FILL_STATUS, Field, KindDesc, LIQUIDITY, OUTCOME,
    OtherCode, PARAMS_SOURCE, PRICE_TYPE, ROLE, Spec, StructLayout, TIMESTAMP, UINT, code, decimal,
    field_size,
};

/// Size of every record in bytes (two cache lines).
pub const RECORD_SIZE: usize = 128;
/// Size of the typed body area that follows the common header.
pub const BODY_SIZE: usize = 80;
/// Fixed-point units per 1.0 of price.
pub const PRICE_SCALE: i64 = 100_000_000;
/// Fixed-point units per 1.0 of size.
pub const SIZE_SCALE: i64 = 100_000_000;
/// Fixed-point units per 1.0 of a Chainlink full-accuracy value.
pub const VALUE_E18_SCALE: i128 = 1_000_000_000_000_000_000;
/// Fixed-point units per 1.0 of a funding rate.
pub const RATE_SCALE: i64 = 1_000_000_000_000;
/// Fixed-point units per 1.0 of a probability.
pub const PROB_SCALE: i64 = 1_000_000_000;

/// Record flag: first record of an atomic batch (e.g. the levels of one book message).
pub const FLAG_BATCH_BEGIN: u8 = 1 << 0;
/// Record flag: last record of an atomic batch; consumers may act on the book after it.
pub const FLAG_BATCH_END: u8 = 1 << 1;
/// Record flag: the batch is a full snapshot that replaces the side(s) it touches.
pub const FLAG_SNAPSHOT: u8 = 1 << 2;
/// Record flag: the record was produced by replay, not by a live feed.
pub const FLAG_REPLAY: u8 = 1 << 3;

/// Defines a `#[repr(u8)]` enum with a fallible conversion from the raw byte and a stable name.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $value:expr => $text:expr),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum $name { $($(#[$vmeta])* $variant = $value),+ }

        impl $name {
            /// Every variant, in wire order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The variants' wire bytes and names (`unknown_<byte>` for others), for columns.
            pub const CODES: Codes = Codes {
                names: &[$(($value, $text)),+],
                other: OtherCode::Prefix("unknown_"),
            };

            /// Converts the wire byte, `None` for an unknown value.
            #[must_use]
            pub const fn from_u8(raw: u8) -> Option<Self> {
                match raw { $($value => Some($name::$variant),)+ _ => None }
            }

            /// Stable lower-case name used in JSON, Parquet partitions and metrics.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum! {
    /// What a record is; selects the body layout.
    RecordKind {
        /// Unused slot / never written.
        Empty = 0 => "empty",
        /// A trade print ([`Trade`]).
        Trade = 1 => "trade",
        /// One price level changed ([`BookLevel`]); batches use the batch flags.
        BookLevel = 2 => "book_level",
        /// Best bid and offer ([`TopOfBook`]).
        TopOfBook = 3 => "top_of_book",
        /// An index, oracle or mark price ([`IndexPrice`]).
        IndexPrice = 4 => "index_price",
        /// A funding rate ([`Funding`]).
        Funding = 5 => "funding",
        /// A liquidation ([`Liquidation`]).
        Liquidation = 6 => "liquidation",
        /// A feed connection state change ([`FeedStatusBody`]).
        FeedStatus = 7 => "feed_status",
        /// A decision of the decision core, fired or not ([`Decision`]).
        Decision = 8 => "decision",
        /// An order state-machine transition ([`OrderTransition`]).
        OrderTransition = 9 => "order_transition",
        /// A process heartbeat ([`Heartbeat`]).
        Heartbeat = 10 => "heartbeat",
        /// A fill of one of our orders, provisional, confirmed or failed ([`Fill`]).
        Fill = 11 => "fill",
        /// A window's settlement for one of its tokens ([`Settlement`]).
        Settlement = 12 => "settlement",
        /// A market's trading parameters: tick, minimum size, fees ([`MarketParamsBody`]).
        MarketParams = 13 => "market_params",
    }
}

wire_enum! {
    /// The source a record came from.
    Venue {
        /// Not a venue (internal records such as decisions).
        Internal = 0 => "internal",
        /// Polymarket CLOB market channel.
        Polymarket = 1 => "polymarket",
        /// Chainlink BTC/USD through Polymarket's real-time data socket.
        ChainlinkRtds = 2 => "chainlink_rtds",
        /// Coinbase Exchange.
        Coinbase = 3 => "coinbase",
        /// Binance spot.
        BinanceSpot = 4 => "binance_spot",
        /// Binance USD-M futures.
        BinanceFutures = 5 => "binance_futures",
        /// Kraken.
        Kraken = 6 => "kraken",
        /// Gemini.
        Gemini = 7 => "gemini",
        /// Bybit.
        Bybit = 8 => "bybit",
        /// OKX.
        Okx = 9 => "okx",
        /// Deribit.
        Deribit = 10 => "deribit",
        /// Bitstamp.
        Bitstamp = 11 => "bitstamp",
        /// Polymarket's PolyBolt price socket (successor of the real-time data socket).
        PolyBolt = 12 => "polybolt",
    }
}

wire_enum! {
    /// Book side or trade aggressor side.
    Side {
        /// Unknown or not applicable.
        None = 0 => "none",
        /// Bid / buyer-initiated.
        Buy = 1 => "buy",
        /// Ask / seller-initiated.
        Sell = 2 => "sell",
    }
}

wire_enum! {
    /// State of one feed stream's connection, as published in [`FeedStatusBody`].
    FeedState {
        /// TCP/TLS/WebSocket connected.
        Connected = 1 => "connected",
        /// Subscription acknowledged.
        Subscribed = 2 => "subscribed",
        /// Receiving data; the stream's derived state can be trusted.
        Live = 3 => "live",
        /// No data for longer than the stream's stale threshold: do not trust.
        Stale = 4 => "stale",
        /// A sequence gap was detected: do not trust until resynced.
        GapDetected = 5 => "gap_detected",
        /// Resynchronised (e.g. new snapshot applied): trustworthy again.
        Resynced = 6 => "resynced",
        /// Disconnected: do not trust.
        Disconnected = 7 => "disconnected",
    }
}

wire_enum! {
    /// States of the order state machine, as carried by [`OrderTransition`].
    OrderState {
        /// Created locally, not yet sent.
        Initialized = 1 => "initialized",
        /// Request bytes handed to the wire.
        Submitted = 2 => "submitted",
        /// Accepted by the venue.
        Acked = 3 => "acked",
        /// Rejected by the venue or locally.
        Rejected = 4 => "rejected",
        /// Partly filled.
        PartiallyFilled = 5 => "partially_filled",
        /// Completely filled.
        Filled = 6 => "filled",
        /// Cancelled.
        Cancelled = 7 => "cancelled",
        /// Expired.
        Expired = 8 => "expired",
    }
}

impl FeedState {
    /// Whether a consumer may trust state derived from the stream in this state.
    #[must_use]
    pub const fn is_trustworthy(self) -> bool {
        matches!(
            self,
            FeedState::Live | FeedState::Resynced | FeedState::Subscribed
        )
    }
}

/// One bus record: common header plus an 80-byte typed body.
///
/// Field order is chosen so that there is no padding; the layout is pinned by the schema-drift
/// gate (`bus/schema/`), and any change must bump [`crate::LAYOUT_VERSION`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C, align(64))]
pub struct Record {
    /// Bus sequence number within its ring; written by the ring, ignored on publish.
    pub seq: u64,
    /// When the producer handed the record to the bus (ns since the Unix epoch).
    pub publish_ts_ns: i64,
    /// When the bytes it came from were read from the socket (ns since the Unix epoch).
    pub recv_ts_ns: i64,
    /// The venue's own timestamp (ns since the Unix epoch), 0 if the venue gives none.
    pub exchange_ts_ns: i64,
    /// The venue's sequence / update id, 0 if none.
    pub venue_seq: u64,
    /// Instrument id, an index into the segment's instrument table.
    pub instrument: u32,
    /// [`RecordKind`] as a byte.
    pub kind: u8,
    /// [`Venue`] as a byte.
    pub venue: u8,
    /// Venue-specific stream number (see the feeds stream catalogue).
    pub stream: u8,
    /// `FLAG_*` bits.
    pub flags: u8,
    /// Typed body, interpreted according to `kind`.
    pub body: [u8; BODY_SIZE],
}

const _: () = assert!(core::mem::size_of::<Record>() == RECORD_SIZE);
const _: () = assert!(core::mem::align_of::<Record>() == 64);

/// Implemented by every body type: a `Pod` of exactly [`BODY_SIZE`] bytes tied to one kind.
pub trait Body: Pod {
    /// The record kind whose body this is.
    const KIND: RecordKind;
    /// The kind's description: layout, archive table and columns.
    const DESC: KindDesc;
}

macro_rules! column_name {
    ($field:ident) => {
        stringify!($field)
    };
    ($field:ident, $name:literal) => {
        $name
    };
}

/// Declares a body struct and its [`KindDesc`] in one place: the fields (layout), the archive
/// table, the columns in table order (`field [as "name"]: spec`) and header flag bits shown as
/// columns.
macro_rules! body {
    (
        $(#[$meta:meta])* $name:ident : $kind:ident => $table:literal {
            $($(#[$fmeta:meta])* $field:ident : $ty:ty),+ $(,)?
        }
        columns { $($col:ident $(as $rename:literal)? : $spec:expr),+ $(,)? }
        $(flags { $($flag:literal = $mask:expr),+ $(,)? })?
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
        #[repr(C)]
        pub struct $name { $($(#[$fmeta])* pub $field: $ty),+ }
        const _: () = assert!(core::mem::size_of::<$name>() == BODY_SIZE);
        impl Body for $name {
            const KIND: RecordKind = RecordKind::$kind;
            const DESC: KindDesc = KindDesc {
                kind: RecordKind::$kind,
                layout: StructLayout {
                    name: stringify!($name),
                    size: core::mem::size_of::<$name>(),
                    align: core::mem::align_of::<$name>(),
                    fields: &[$(Field {
                        name: stringify!($field),
                        offset: core::mem::offset_of!($name, $field),
                        size: core::mem::size_of::<$ty>(),
                    }),+],
                },
                table: $table,
                columns: &[
                    $(($spec).at(
                        column_name!($col $(, $rename)?),
                        BODY_OFFSET + core::mem::offset_of!($name, $col),
                        field_size(|b: &$name| &b.$col),
                    ),)+
                    $($(Spec::of(ColumnType::Flag($mask)).at(
                        $flag,
                        core::mem::offset_of!(Record, flags),
                        1,
                    ),)+)?
                ],
            };
        }
    };
}

body! {
    /// A trade print.
    Trade: Trade => "trades" {
        /// Price, [`PRICE_SCALE`].
        price: i64,
        /// Size, [`SIZE_SCALE`].
        size: i64,
        /// Venue trade id when numeric, else 0.
        trade_id: u64,
        /// Aggressor [`Side`].
        side: u8,
        /// Reserved, zero.
        reserved: [u8; 55],
    }
    columns {
        price: decimal(8),
        size: decimal(8),
        trade_id: UINT.null_if_zero(),
        side: code(&Side::CODES),
    }
}

body! {
    /// One price level's new absolute size (0 removes the level).
    BookLevel: BookLevel => "book_changes" {
        /// Price, [`PRICE_SCALE`].
        price: i64,
        /// New size at this price, [`SIZE_SCALE`]; 0 deletes the level.
        size: i64,
        /// Book [`Side`].
        side: u8,
        /// Reserved, zero.
        reserved: [u8; 63],
    }
    columns {
        price: decimal(8),
        size: decimal(8),
        side: code(&Side::CODES),
    }
    flags {
        "batch_begin" = FLAG_BATCH_BEGIN,
        "batch_end" = FLAG_BATCH_END,
        "snapshot" = FLAG_SNAPSHOT,
    }
}

body! {
    /// Best bid and offer.
    TopOfBook: TopOfBook => "tops" {
        /// Best bid price, [`PRICE_SCALE`]; 0 when the side is empty.
        bid_price: i64,
        /// Size at the best bid, [`SIZE_SCALE`].
        bid_size: i64,
        /// Best ask price, [`PRICE_SCALE`]; 0 when the side is empty.
        ask_price: i64,
        /// Size at the best ask, [`SIZE_SCALE`].
        ask_size: i64,
        /// Reserved, zero.
        reserved: [u8; 48],
    }
    columns {
        bid_price: decimal(8).null_if_zero(),
        bid_size: decimal(8),
        ask_price: decimal(8).null_if_zero(),
        ask_size: decimal(8),
    }
}

body! {
    /// An index, oracle or mark price.
    IndexPrice: IndexPrice => "index_prices" {
        /// Exact value with 18 decimals ([`VALUE_E18_SCALE`]); 0 if the source has fewer digits.
        value_e18: i128,
        /// The same value at [`PRICE_SCALE`], truncated toward zero.
        price: i64,
        /// 1 = oracle/index, 2 = mark price, 3 = TWAP.
        price_type: u8,
        /// Reserved, zero.
        reserved: [u8; 55],
    }
    columns {
        value_e18: decimal(18).null_if_zero(),
        price: decimal(8),
        price_type: code(&PRICE_TYPE),
    }
}

body! {
    /// A funding rate observation.
    Funding: Funding => "funding" {
        /// Funding rate, [`RATE_SCALE`].
        rate: i64,
        /// Next funding time (ns since the Unix epoch), 0 if unknown.
        next_funding_ts_ns: i64,
        /// Mark price at the observation, [`PRICE_SCALE`], 0 if not given.
        mark_price: i64,
        /// Reserved, zero.
        reserved: [u8; 56],
    }
    columns {
        rate: decimal(12),
        next_funding_ts_ns as "next_funding_ts": TIMESTAMP.null_if_zero(),
        mark_price: decimal(8).null_if_zero(),
    }
}

body! {
    /// A liquidation order.
    Liquidation: Liquidation => "liquidations" {
        /// Price, [`PRICE_SCALE`].
        price: i64,
        /// Size, [`SIZE_SCALE`].
        size: i64,
        /// [`Side`] of the liquidation order.
        side: u8,
        /// Reserved, zero.
        reserved: [u8; 63],
    }
    columns {
        price: decimal(8),
        size: decimal(8),
        side: code(&Side::CODES),
    }
}

body! {
    /// A feed stream's state change and its counters at that moment.
    FeedStatusBody: FeedStatus => "feed_status" {
        /// Messages received on the stream since the collector started.
        messages: u64,
        /// Sequence gaps detected since start.
        gaps: u64,
        /// Records missed in gaps, when the venue's sequencing makes that countable.
        gap_records: u64,
        /// Reconnects since start.
        reconnects: u64,
        /// Resyncs since start.
        resyncs: u64,
        /// Parse errors since start.
        parse_errors: u64,
        /// [`FeedState`] as a byte.
        state: u8,
        /// Reserved, zero.
        reserved: [u8; 31],
    }
    columns {
        state: code(&FeedState::CODES),
        messages: UINT,
        gaps: UINT,
        gap_records: UINT,
        reconnects: UINT,
        resyncs: UINT,
        parse_errors: UINT,
    }
}

body! {
    /// One decision of the decision core (fired or not).
    Decision: Decision => "decisions" {
        /// Bus sequence of the triggering event.
        trigger_seq: u64,
        /// Sequence of the Polymarket book state the decision used.
        book_seq: u64,
        /// Sequence of the reference price the decision used.
        reference_seq: u64,
        /// Model probability of "Up", [`PROB_SCALE`].
        probability: i64,
        /// Edge after fees, in [`PRICE_SCALE`] units of price.
        edge: i64,
        /// Limit price, [`PRICE_SCALE`].
        price: i64,
        /// Size in shares, [`SIZE_SCALE`].
        size: i64,
        /// Client order id when fired, else 0.
        client_order_id: u64,
        /// Hash of the feature schema the probability came from.
        feature_schema_hash: u32,
        /// Pre-signed pool slot chosen, `u16::MAX` when none.
        slot: u16,
        /// 1 when an order intent was emitted.
        fired: u8,
        /// Reason code (fire reason or why not).
        reason: u8,
        /// [`Side`]: buy or sell.
        side: u8,
        /// 0 = Up token, 1 = Down token.
        outcome: u8,
        /// Reserved, zero.
        reserved: [u8; 6],
    }
    columns {
        trigger_seq: UINT,
        book_seq: UINT,
        reference_seq: UINT,
        probability: decimal(9),
        edge: decimal(8),
        price: decimal(8),
        size: decimal(8),
        client_order_id: UINT.null_if_zero(),
        feature_schema_hash: UINT,
        slot: UINT.null_if_max(),
        fired: BOOL,
        reason: UINT,
        side: code(&Side::CODES),
        outcome: code(&OUTCOME),
    }
}

body! {
    /// A transition of one order's state machine.
    OrderTransition: OrderTransition => "order_transitions" {
        /// Unique client order id.
        client_order_id: u64,
        /// Limit price, [`PRICE_SCALE`].
        price: i64,
        /// Order size, [`SIZE_SCALE`].
        size: i64,
        /// Cumulative filled size, [`SIZE_SCALE`].
        filled: i64,
        /// First 16 bytes of the venue order id (hash), zero if none yet.
        venue_order_id: [u8; 16],
        /// Error class code when rejected, 0 otherwise.
        error_class: u16,
        /// HTTP status of the venue response, 0 if none.
        http_status: u16,
        /// [`OrderState`] before.
        from_state: u8,
        /// [`OrderState`] after.
        to_state: u8,
        /// [`Side`].
        side: u8,
        /// 1 when paper mode (size zero on the wire).
        paper: u8,
        /// Reserved, zero.
        reserved: [u8; 24],
    }
    columns {
        client_order_id: UINT,
        price: decimal(8),
        size: decimal(8),
        filled: decimal(8),
        venue_order_id: BYTES.null_if_zero(),
        error_class: UINT,
        http_status: UINT.null_if_zero(),
        from_state: code(&OrderState::CODES),
        to_state: code(&OrderState::CODES),
        side: code(&Side::CODES),
        paper: BOOL,
    }
}

body! {
    /// A process heartbeat (one per process per window at least).
    Heartbeat: Heartbeat => "collector_heartbeat" {
        /// Process id.
        pid: u32,
        /// Process role code (1 feeds, 2 trade, 3 archive).
        role: u32,
        /// Records published by the process so far.
        published: u64,
        /// Reserved, zero.
        reserved: [u8; 64],
    }
    columns {
        pid: UINT,
        role: code(&ROLE),
        published: UINT,
    }
}

body! {
    /// A fill of one of our orders (live from the user channel, or from the paper exchange).
    ///
    /// A live fill is first `provisional` (trade MATCHED/MINED), then `confirmed` (CONFIRMED) or
    /// `failed` (FAILED: the fill is reverted); each step is its own record with the same
    /// `trade_id`. Positions and cash are derived from these records only.
    Fill: Fill => "fills" {
        /// When the fill happened (venue match time, or paper-exchange time), ns since the epoch.
        ts_ns: i64,
        /// The order's client order id.
        client_order_id: u64,
        /// Fill price, [`PRICE_SCALE`].
        price: i64,
        /// Filled shares, [`SIZE_SCALE`].
        size: i64,
        /// Fee paid in USDC, [`PRICE_SCALE`]; negative for a maker rebate.
        fee_usdc: i64,
        /// Start of the 5-minute window the token belongs to (s since the epoch).
        window_start_s: i64,
        /// First 16 bytes of the venue trade id (or the paper trade number), zero if none.
        trade_id: [u8; 16],
        /// Our order's [`Side`].
        side: u8,
        /// 1 = maker, 2 = taker ([`LIQUIDITY`]).
        liquidity: u8,
        /// 1 = provisional, 2 = confirmed, 3 = failed ([`FILL_STATUS`]).
        status: u8,
        /// 1 when filled by the paper exchange.
        paper: u8,
        /// The token's outcome: 0 = Up, 1 = Down.
        outcome: u8,
        /// Reserved, zero.
        reserved: [u8; 11],
    }
    columns {
        ts_ns: UINT,
        client_order_id: UINT,
        window_start_s: UINT,
        side: code(&Side::CODES),
        price: decimal(8),
        size: decimal(8),
        fee_usdc: decimal(8),
        liquidity: code(&LIQUIDITY),
        status: code(&FILL_STATUS),
        paper: BOOL,
        outcome: code(&OUTCOME),
        trade_id: BYTES.null_if_zero(),
    }
}

body! {
    /// A window's settlement for one token (the header's instrument): the resolution and what
    /// the shares we held of that token paid.
    Settlement: Settlement => "settlements" {
        /// Start of the settled window (s since the epoch).
        window_start_s: i64,
        /// Reference price at the window's start (the strike), [`PRICE_SCALE`].
        start_price: i64,
        /// Reference price at the window's end, [`PRICE_SCALE`].
        end_price: i64,
        /// Shares of this token held at settlement, [`SIZE_SCALE`].
        shares: i64,
        /// What those shares paid, USDC at [`PRICE_SCALE`] (1 per winning share).
        payout_usdc: i64,
        /// The winning outcome: 0 = Up (end ≥ start), 1 = Down.
        outcome: u8,
        /// This token's outcome: 0 = Up, 1 = Down.
        token_outcome: u8,
        /// The [`Venue`] whose reference price resolved the window.
        source: u8,
        /// 1 when the position was the paper exchange's.
        paper: u8,
        /// Reserved, zero.
        reserved: [u8; 36],
    }
    columns {
        window_start_s: UINT,
        outcome: code(&OUTCOME),
        start_price: decimal(8),
        end_price: decimal(8),
        source: code(&Venue::CODES),
        token_outcome: code(&OUTCOME),
        shares: decimal(8),
        payout_usdc: decimal(8),
        paper: BOOL,
    }
}

/// [`MarketParamsBody::source`]: Gamma's market object (discovery).
pub const PARAMS_FROM_GAMMA: u8 = 1;
/// [`MarketParamsBody::source`]: the market channel's `tick_size_change`.
pub const PARAMS_FROM_TICK_SIZE_CHANGE: u8 = 2;
/// [`MarketParamsBody::source`]: configuration defaults.
pub const PARAMS_FROM_CONFIG: u8 = 3;

body! {
    /// One outcome token's (the header's instrument) trading parameters as the venue states them:
    /// published by the collector's discovery when it registers a window's tokens (Gamma) and by
    /// the Polymarket adapter on `tick_size_change`. Consumers use the latest record per token
    /// over configuration. A `tick_size_change` record states the tick only (its other fields are
    /// 0 and mean "keep the last value"); Gamma and config records state every field.
    MarketParamsBody: MarketParams => "market_params" {
        /// Start of the token's 5-minute window (s since the epoch), 0 if the source omits it.
        window_start_s: i64,
        /// Price tick, [`PRICE_SCALE`] (0.01 = `1_000_000`); 0 = not stated.
        tick_size: i64,
        /// Minimum order size in shares, [`SIZE_SCALE`]; 0 = not stated.
        min_size: i64,
        /// Taker fee rate, [`RATE_SCALE`] (0.07 = `70_000_000_000`).
        fee_rate: i64,
        /// Exponent of the taker fee curve `rate × (p(1−p))^e`, [`RATE_SCALE`]; 0 = not stated.
        fee_exponent: i64,
        /// Maker rebate rate, [`RATE_SCALE`]; 0 = none or not known.
        maker_rebate: i64,
        /// Where the values came from: [`PARAMS_FROM_GAMMA`], [`PARAMS_FROM_TICK_SIZE_CHANGE`],
        /// [`PARAMS_FROM_CONFIG`] ([`PARAMS_SOURCE`]).
        source: u8,
        /// Reserved, zero.
        reserved: [u8; 31],
    }
    columns {
        window_start_s: UINT.null_if_zero(),
        tick_size: decimal(8).null_if_zero(),
        min_size: decimal(8).null_if_zero(),
        fee_rate: decimal(12),
        fee_exponent: decimal(12).null_if_zero(),
        maker_rebate: decimal(12),
        source: code(&PARAMS_SOURCE),
    }
}

/// Every record kind's description, in wire order (`Empty` has none).
pub const KINDS: &[KindDesc] = &[
    Trade::DESC,
    BookLevel::DESC,
    TopOfBook::DESC,
    IndexPrice::DESC,
    Funding::DESC,
    Liquidation::DESC,
    FeedStatusBody::DESC,
    Decision::DESC,
    OrderTransition::DESC,
    Heartbeat::DESC,
    Fill::DESC,
    Settlement::DESC,
    MarketParamsBody::DESC,
];

impl Record {
    /// An all-zero record.
    #[must_use]
    pub fn zeroed() -> Self {
        Zeroable::zeroed()
    }

    /// Builds a record of kind `B::KIND` with the given header fields and body.
    #[must_use]
    pub fn new<B: Body>(venue: Venue, stream: u8, instrument: u32, body: &B) -> Self {
        let mut record = Self::zeroed();
        record.kind = B::KIND as u8;
        record.venue = venue as u8;
        record.stream = stream;
        record.instrument = instrument;
        record.body.copy_from_slice(bytemuck::bytes_of(body));
        record
    }

    /// The record's kind, `None` if the byte is unknown (a newer producer).
    #[must_use]
    pub const fn record_kind(&self) -> Option<RecordKind> {
        RecordKind::from_u8(self.kind)
    }

    /// The record's venue, `None` if the byte is unknown.
    #[must_use]
    pub const fn record_venue(&self) -> Option<Venue> {
        Venue::from_u8(self.venue)
    }

    /// The body as `B` when the record is of `B`'s kind.
    #[must_use]
    pub fn body_as<B: Body>(&self) -> Option<B> {
        (self.kind == B::KIND as u8).then(|| bytemuck::pod_read_unaligned(&self.body))
    }

    /// Replaces the body (and kind) with `body`.
    pub fn set_body<B: Body>(&mut self, body: &B) {
        self.kind = B::KIND as u8;
        self.body.copy_from_slice(bytemuck::bytes_of(body));
    }

    /// Whether all of `flags` are set.
    #[must_use]
    pub const fn has_flags(&self, flags: u8) -> bool {
        self.flags & flags == flags
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_round_trips_and_checks_kind() {
        let trade = Trade {
            price: 9_500_012_345_678,
            size: 12_345,
            trade_id: 42,
            side: Side::Buy as u8,
            reserved: [0; 55],
        };
        let record = Record::new(Venue::Coinbase, 1, 7, &trade);
        assert_eq!(record.record_kind(), Some(RecordKind::Trade));
        assert_eq!(record.body_as::<Trade>(), Some(trade));
        assert_eq!(record.body_as::<BookLevel>(), None);
    }

    #[test]
    fn enums_round_trip_through_bytes() {
        for kind in RecordKind::ALL {
            assert_eq!(RecordKind::from_u8(*kind as u8), Some(*kind));
        }
        for venue in Venue::ALL {
            assert_eq!(Venue::from_u8(*venue as u8), Some(*venue));
        }
        assert_eq!(Venue::ALL.len(), 13, "internal + 11 sources + PolyBolt");
        assert_eq!(RecordKind::from_u8(200), None);
    }
}
