//! `ringbolt-sim`: loopback emulators of the venues ringbolt reads, for end-to-end tests and
//! demos without the internet.
//!
//! * Sans-IO core: [`market`] (seeded BTC walk with jumps), [`hub`] (steps the market or a
//!   capture [`hub::ReplaySource`], produces every venue's encoded events), the venue modules
//!   [`binance`], [`coinbase`], [`rtds`], [`polymarket`], [`okx`], [`kraken`], [`deribit`],
//!   [`gemini`], [`bitstamp`], [`polybolt`] (state + encoders + session state machines),
//!   [`venue`] (the venue trait and the registry every layer dispatches over) and
//!   [`session`] (per-connection wrapper with the gap / corrupt / checksum faults).
//! * I/O: [`server`] (tokio, rustls, tungstenite; one TLS port per venue; control HTTP port) and
//!   [`tls`] (a fresh CA + leaf per run via rcgen).
//!
//! Everything served is EMULATED: prices, ids and Polymarket markets are synthetic and labelled
//! so; only the wire shapes are the venues' real ones.

#[macro_use]
pub mod walked;
pub mod binance;
pub mod binance_futures;
pub mod bitstamp;
pub mod bybit;
pub mod cexbook;
pub mod clob;
pub mod clob_engine;
pub mod clob_server;
pub mod clob_user;
pub mod coinbase;
pub mod config;
pub mod deribit;
pub mod event;
pub mod gemini;
pub mod hub;
pub mod kraken;
pub mod ladder;
pub mod market;
pub mod okx;
pub mod polybolt;
pub mod polymarket;
pub mod proxy;
pub mod rtds;
pub mod server;
pub mod session;
pub mod spot;
pub mod tls;
pub mod util;
pub mod venue;
pub mod wirelog;

pub use config::EmulatorConfig;
pub use event::{Out, Topic, VenueEvent, VenueId};
pub use hub::Hub;
pub use market::MarketConfig;
pub use server::{ClobInfo, Emulator, StartInfo};
pub use session::{Fault, Session};
