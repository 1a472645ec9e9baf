//! Types shared by the sans-IO core and the server: venue ids, broadcast events, session output.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The venues ringbolt reads (names are the bus `Venue` / corpus folder names). Only those with
/// a line in [`crate::venue::REGISTRY`] are emulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VenueId {
    /// Polymarket CLOB market channel (`/ws/market`) plus Gamma discovery REST.
    Polymarket,
    /// Chainlink BTC/USD through Polymarket's real-time data socket (RTDS).
    ChainlinkRtds,
    /// Binance spot market streams plus `GET /api/v3/depth`.
    BinanceSpot,
    /// Coinbase Exchange WebSocket feed.
    Coinbase,
    /// Binance USD-M futures market streams plus `GET /fapi/v1/depth`.
    BinanceFutures,
    /// Kraken WebSocket v2.
    Kraken,
    /// Gemini market data v2.
    Gemini,
    /// Bybit v5 public spot and linear.
    Bybit,
    /// OKX v5 public.
    Okx,
    /// Deribit JSON-RPC API v2.
    Deribit,
    /// Bitstamp WebSocket v2.
    Bitstamp,
    /// Polymarket's PolyBolt price socket.
    PolyBolt,
}

impl VenueId {
    /// All venues, in a fixed order.
    pub const ALL: [VenueId; 12] = [
        VenueId::Polymarket,
        VenueId::ChainlinkRtds,
        VenueId::BinanceSpot,
        VenueId::Coinbase,
        VenueId::BinanceFutures,
        VenueId::Kraken,
        VenueId::Gemini,
        VenueId::Bybit,
        VenueId::Okx,
        VenueId::Deribit,
        VenueId::Bitstamp,
        VenueId::PolyBolt,
    ];

    /// Folder / config name (`binance_spot`, ...).
    pub fn name(self) -> &'static str {
        match self {
            VenueId::Polymarket => "polymarket",
            VenueId::ChainlinkRtds => "chainlink_rtds",
            VenueId::BinanceSpot => "binance_spot",
            VenueId::Coinbase => "coinbase",
            VenueId::BinanceFutures => "binance_futures",
            VenueId::Kraken => "kraken",
            VenueId::Gemini => "gemini",
            VenueId::Bybit => "bybit",
            VenueId::Okx => "okx",
            VenueId::Deribit => "deribit",
            VenueId::Bitstamp => "bitstamp",
            VenueId::PolyBolt => "polybolt",
        }
    }

    /// Parse a folder / config name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == s)
    }

    /// Whether the venue has an emulator (a line in [`crate::venue::REGISTRY`]).
    pub fn is_emulated(self) -> bool {
        crate::venue::spec(self).is_some()
    }
}

/// What an event is about, so that a session can decide whether its client subscribed to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topic {
    /// A Binance stream name (`btcusdt@depth@100ms`).
    Binance(&'static str),
    /// A Coinbase channel (`ticker`, `matches`, `heartbeat`, `level2_batch`) for BTC-USD.
    Coinbase(&'static str),
    /// Polymarket market-channel event about these asset ids. `custom_only` events go only to
    /// subscriptions with `custom_feature_enabled`; `to_all_custom` ones (new_market) go to every
    /// such subscription regardless of assets.
    Polymarket {
        /// Asset (token) ids the event concerns.
        assets: Vec<String>,
        /// Only for `custom_feature_enabled` subscriptions.
        custom_only: bool,
        /// Sent to every custom-feature subscription.
        to_all_custom: bool,
    },
    /// An RTDS topic (`crypto_prices_chainlink`, `crypto_prices`).
    Rtds(&'static str),
    /// A venue stream / channel / topic name (`btcusdt@markPrice@1s`, `orderbook.50.BTCUSDT`);
    /// the venue module decides what it means.
    Stream(&'static str),
    /// A replayed capture line: sent verbatim to every session that subscribed to anything.
    Replay,
}

/// One encoded venue message produced by the market (or a replay), broadcast to all sessions of
/// the venue, each of which filters and wraps it.
#[derive(Debug, Clone)]
pub struct VenueEvent {
    /// Venue.
    pub venue: VenueId,
    /// Market step that produced it (sessions drop events already covered by a snapshot).
    pub tick: u64,
    /// Subscription key.
    pub topic: Topic,
    /// Carries a sequence / update id (a `gap` fault drops the next such event).
    pub sequenced: bool,
    /// The venue's JSON text.
    pub text: Arc<str>,
}

/// Something a session wants written to its client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    /// A WebSocket text frame.
    Text(String),
    /// A close frame with code and reason, after which the server closes the connection.
    Close(u16, String),
}
