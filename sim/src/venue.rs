//! The venue registry: what an emulated venue is made of, and the one table that lists them.
//!
//! A venue emulator is a sans-IO module providing
//! * a [`VenueModel`]: its book/trade state, stepped by the [`Hub`] on the shared synthetic BTC
//!   walk (so every venue's prices agree), producing encoded [`VenueEvent`]s, plus optional REST
//!   answers (path → body) for venues that snapshot over REST;
//! * a [`VenueSession`]: one client connection's state machine (subscribe / ack / error / ping
//!   frames in, frames out, snapshot on subscribe, event filtering and wrapping);
//! * one [`VenueSpec`] line in [`REGISTRY`].
//!
//! The hub, the session wrapper, the server and the config dispatch over [`REGISTRY`]; a venue
//! that has no line is simply not served. The four original venues (Polymarket, Chainlink RTDS,
//! Binance spot, Coinbase) are stepped by the hub's core because their markets are coupled
//! (Chainlink follows Binance trades, Polymarket strikes come from Chainlink); they have no
//! model factory but otherwise go through the same table.

use std::any::Any;
use std::fmt::Debug;

use rand_chacha::ChaCha8Rng;

use crate::binance::{BinanceSession, parse_depth_query};
use crate::coinbase::CoinbaseSession;
use crate::event::{Out, VenueEvent, VenueId};
use crate::hub::Hub;
use crate::market::{BtcWalk, MarketConfig};
use crate::polymarket::PolySession;
use crate::rtds::RtdsSession;
use crate::session::OpenError;
use crate::util::normal;

/// What a model sees of the shared market at one step.
#[derive(Debug, Clone, Copy)]
pub struct StepCtx<'a> {
    /// Market clock, ms.
    pub t_ms: i64,
    /// Step number.
    pub tick: u64,
    /// The shared "true" BTC walk.
    pub walk: &'a BtcWalk,
    /// Market parameters.
    pub cfg: &'a MarketConfig,
}

impl StepCtx<'_> {
    /// The true price `lag_ms` ago with the configured relative noise (`noise_bp`), USD.
    pub fn view(&self, lag_ms: i64, rng: &mut ChaCha8Rng) -> f64 {
        self.walk.price_at(self.t_ms - lag_ms) * (1.0 + self.cfg.noise_bp * 1e-4 * normal(rng))
    }
}

/// A venue's market state, stepped by the hub.
pub trait VenueModel: Send + Sync + Debug + 'static {
    /// One market step: the events it produced (their `venue` is this venue).
    fn step(&mut self, ctx: &StepCtx<'_>) -> Vec<VenueEvent>;
    /// Answer a REST `GET path?query` (`None`: 404).
    fn rest(&self, _path: &str, _query: &str, _now_ms: i64) -> Option<(u16, String)> {
        None
    }
    /// For sessions that need the concrete state (snapshots on subscribe).
    fn as_any(&self) -> &dyn Any;
}

/// One client connection's protocol state machine.
pub trait VenueSession: Send + Debug {
    /// Handle a client text frame; `hub` gives the venue's state (snapshots) and clock.
    fn on_text(&mut self, text: &str, hub: &Hub) -> Vec<Out>;
    /// Filter / wrap a market event for this client (`None`: not subscribed).
    fn on_event(&mut self, ev: &VenueEvent) -> Option<String>;
    /// The wrapped frame `text` of `ev` with a wrong checksum, if `ev` is a checksummed book
    /// message (`None`: not one; the `checksum` fault stays armed).
    fn corrupt_checksum(&self, _ev: &VenueEvent, _text: &str) -> Option<String> {
        None
    }
    /// A venue-specific fault (`dropped`, `request_reconnect`): arms it and returns the frames
    /// to send at once.
    fn venue_fault(&mut self, _fault: crate::session::Fault) -> Vec<Out> {
        Vec::new()
    }
    /// Frames announcing shutdown before the 1001 close (Binance: `serverShutdown`).
    fn shutdown(&self, _now_ms: i64) -> Vec<Out> {
        Vec::new()
    }
}

/// Opens a session for an upgrade to `path` (with query); `conn_no` numbers connections.
pub type OpenFn =
    fn(path: &str, conn_no: u64) -> Result<(Box<dyn VenueSession>, Vec<Out>), OpenError>;
/// Builds a venue model from the market seed (it derives its own RNG streams).
pub type ModelFn = fn(seed: u64) -> Box<dyn VenueModel>;
/// Answers a REST `GET` (`None`: 404).
pub type RestFn = fn(hub: &Hub, venue: VenueId, path: &str, query: &str) -> Option<(u16, String)>;

/// One registry line.
#[derive(Debug)]
pub struct VenueSpec {
    /// Venue.
    pub id: VenueId,
    /// Path of the advertised WebSocket URL (`/stream`, `/ws/market`, `/`).
    pub ws_path: &'static str,
    /// Whether the venue serves REST on its port (advertised `rest_url`).
    pub rest: bool,
    /// Default server ping period, ms (`server_ping_ms` in the config overrides it).
    pub server_ping_ms: Option<u64>,
    /// Whether the venue has checksummed book messages (the `checksum` fault applies).
    pub checksum: bool,
    /// Session factory.
    pub open: OpenFn,
    /// Model factory; `None` for the hub's core venues.
    pub model: Option<ModelFn>,
    /// REST answers.
    pub rest_fn: RestFn,
}

/// Every emulated venue. A new venue emulator is a module plus one line here.
pub static REGISTRY: &[VenueSpec] = &[
    VenueSpec {
        id: VenueId::Polymarket,
        ws_path: "/ws/market",
        rest: true,
        server_ping_ms: None,
        checksum: false,
        open: open_polymarket,
        model: None,
        rest_fn: rest_polymarket,
    },
    VenueSpec {
        id: VenueId::ChainlinkRtds,
        ws_path: "/",
        rest: false,
        server_ping_ms: None,
        checksum: false,
        open: open_rtds,
        model: None,
        rest_fn: no_rest,
    },
    VenueSpec {
        id: VenueId::BinanceSpot,
        ws_path: "/stream",
        rest: true,
        server_ping_ms: Some(20_000),
        checksum: false,
        open: open_binance_spot,
        model: None,
        rest_fn: rest_binance_spot,
    },
    VenueSpec {
        id: VenueId::Coinbase,
        ws_path: "/",
        rest: false,
        server_ping_ms: None,
        checksum: false,
        open: open_coinbase,
        model: None,
        rest_fn: no_rest,
    },
    VenueSpec {
        id: VenueId::Gemini,
        ws_path: "/v2/marketdata",
        rest: false,
        server_ping_ms: None,
        checksum: false,
        open: crate::gemini::open,
        model: Some(crate::spot::SpotModel::<crate::gemini::GeminiState>::boxed),
        rest_fn: no_rest,
    },
    VenueSpec {
        id: VenueId::Bitstamp,
        ws_path: "/",
        rest: true,
        server_ping_ms: None,
        checksum: false,
        open: crate::bitstamp::open,
        model: Some(crate::spot::SpotModel::<crate::bitstamp::BitstampState>::boxed),
        rest_fn: model_rest,
    },
    // PolyBolt republishes the Chainlink series of the RTDS core: stepped by the hub's core.
    VenueSpec {
        id: VenueId::PolyBolt,
        ws_path: "/ws",
        rest: false,
        // The venue pings every 25 s; two missed pongs close 4002.
        server_ping_ms: Some(25_000),
        checksum: false,
        open: crate::polybolt::open,
        model: None,
        rest_fn: no_rest,
    },
    VenueSpec {
        id: VenueId::BinanceFutures,
        ws_path: "/public/stream",
        rest: true,
        server_ping_ms: Some(180_000),
        checksum: false,
        open: crate::binance_futures::open,
        model: Some(crate::binance_futures::model),
        rest_fn: model_rest,
    },
    VenueSpec {
        id: VenueId::Bybit,
        ws_path: "/v5/public/spot",
        rest: false,
        server_ping_ms: None,
        checksum: false,
        open: crate::bybit::open,
        model: Some(crate::bybit::model),
        rest_fn: no_rest,
    },
    VenueSpec {
        id: VenueId::Okx,
        ws_path: "/ws/v5/public",
        rest: false,
        server_ping_ms: None,
        checksum: true,
        open: crate::okx::open,
        model: Some(crate::walked::model::<crate::okx::OkxState>),
        rest_fn: no_rest,
    },
    VenueSpec {
        id: VenueId::Kraken,
        ws_path: "/v2",
        rest: false,
        server_ping_ms: None,
        checksum: true,
        open: crate::kraken::open,
        model: Some(crate::walked::model::<crate::kraken::KrakenState>),
        rest_fn: no_rest,
    },
    VenueSpec {
        id: VenueId::Deribit,
        ws_path: "/ws/api/v2",
        rest: false,
        server_ping_ms: None,
        checksum: false,
        open: crate::deribit::open,
        model: Some(crate::walked::model::<crate::deribit::DeribitState>),
        rest_fn: no_rest,
    },
];

/// The registry line of `venue` (`None`: no emulator).
pub fn spec(venue: VenueId) -> Option<&'static VenueSpec> {
    REGISTRY.iter().find(|s| s.id == venue)
}

/// Venues with an emulator, in registry order.
pub fn registered() -> impl Iterator<Item = VenueId> {
    REGISTRY.iter().map(|s| s.id)
}

/// Comma-separated names of the registered venues (for error messages).
pub fn registered_names() -> String {
    registered()
        .map(VenueId::name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// REST for venues without REST.
pub fn no_rest(_: &Hub, _: VenueId, _: &str, _: &str) -> Option<(u16, String)> {
    None
}

/// REST answered by the venue's [`VenueModel::rest`].
pub fn model_rest(hub: &Hub, venue: VenueId, path: &str, query: &str) -> Option<(u16, String)> {
    hub.model(venue)?.rest(path, query, hub.now_ms())
}

fn route(path: &str) -> &str {
    path.split('?').next().unwrap_or("")
}

fn no_endpoint(venue: VenueId, path: &str) -> OpenError {
    OpenError::NoEndpoint {
        venue: venue.name(),
        path: path.to_string(),
    }
}

/// `Ok` when `path`'s route is one of `routes`.
pub fn check_route(venue: VenueId, path: &str, routes: &[&str]) -> Result<(), OpenError> {
    if routes.contains(&route(path)) {
        Ok(())
    } else {
        Err(no_endpoint(venue, path))
    }
}

type Opened = Result<(Box<dyn VenueSession>, Vec<Out>), OpenError>;

fn open_polymarket(path: &str, _: u64) -> Opened {
    check_route(VenueId::Polymarket, path, &["/ws/market", "/ws/market/"])?;
    Ok((Box::new(PolySession::default()), Vec::new()))
}

fn open_rtds(path: &str, conn_no: u64) -> Opened {
    check_route(VenueId::ChainlinkRtds, path, &["", "/"])?;
    let (s, out) = RtdsSession::open(connection_id(conn_no));
    Ok((Box::new(s), out))
}

fn open_binance_spot(path: &str, _: u64) -> Opened {
    Ok((Box::new(BinanceSession::open(path)?), Vec::new()))
}

fn open_coinbase(path: &str, _: u64) -> Opened {
    check_route(VenueId::Coinbase, path, &["", "/"])?;
    Ok((Box::new(CoinbaseSession::default()), Vec::new()))
}

fn rest_polymarket(hub: &Hub, _: VenueId, path: &str, query: &str) -> Option<(u16, String)> {
    hub.polymarket().gamma(path, query, hub.now_ms())
}

fn rest_binance_spot(hub: &Hub, _: VenueId, path: &str, query: &str) -> Option<(u16, String)> {
    match path {
        "/api/v3/depth" => Some(match parse_depth_query(query) {
            Ok(limit) => (200, hub.binance().depth_snapshot(limit)),
            Err(e) => e,
        }),
        "/api/v3/ping" => Some((200, "{}".to_string())),
        "/api/v3/time" => Some((200, format!(r#"{{"serverTime":{}}}"#, hub.now_ms()))),
        _ => None,
    }
}

impl VenueSession for BinanceSession {
    fn on_text(&mut self, text: &str, _: &Hub) -> Vec<Out> {
        BinanceSession::on_text(self, text)
    }
    fn on_event(&mut self, ev: &VenueEvent) -> Option<String> {
        BinanceSession::on_event(self, ev)
    }
    fn shutdown(&self, now_ms: i64) -> Vec<Out> {
        vec![Out::Text(self.shutdown_frame(now_ms))]
    }
}

impl VenueSession for CoinbaseSession {
    fn on_text(&mut self, text: &str, hub: &Hub) -> Vec<Out> {
        let state = (!hub.is_replay(VenueId::Coinbase)).then(|| hub.coinbase());
        CoinbaseSession::on_text(self, text, state, hub.tick())
    }
    fn on_event(&mut self, ev: &VenueEvent) -> Option<String> {
        CoinbaseSession::on_event(self, ev)
    }
}

impl VenueSession for PolySession {
    fn on_text(&mut self, text: &str, hub: &Hub) -> Vec<Out> {
        let state = (!hub.is_replay(VenueId::Polymarket)).then(|| hub.polymarket());
        PolySession::on_text(self, text, state, hub.tick(), hub.now_ms())
    }
    fn on_event(&mut self, ev: &VenueEvent) -> Option<String> {
        PolySession::on_event(self, ev)
    }
}

impl VenueSession for RtdsSession {
    fn on_text(&mut self, text: &str, hub: &Hub) -> Vec<Out> {
        let state = (!hub.is_replay(VenueId::ChainlinkRtds)).then(|| hub.rtds());
        RtdsSession::on_text(self, text, state, hub.tick(), hub.now_ms())
    }
    fn on_event(&mut self, ev: &VenueEvent) -> Option<String> {
        RtdsSession::on_event(self, ev)
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
