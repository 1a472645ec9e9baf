//! ringbolt's paper exchange: fills paper orders the way the observed Polymarket book would have,
//! and settles each window from its resolution rule.
//!
//! Sans-IO and deterministic: [`PaperExchange`] sees the same bus [`ringbolt_bus::Record`]s the
//! decision engine sees (Polymarket book levels and trades, Chainlink reports) and the orders
//! handed to it ([`PaperOrder`]), and emits bus records (order transitions, [`ringbolt_bus::Fill`]s,
//! [`ringbolt_bus::Settlement`]s) into a buffer the caller drains. Its clock is the records'
//! event time, never the wall clock, so a replay of the same records and orders reproduces every
//! emitted record byte for byte.
//!
//! - [`config`]: `[trade.paper_exchange]` — the order latency distribution (quantiles of the
//!   measured one-way order latency, drawn with a seeded hash of the client order id), the maker
//!   rebate rate and the settlement tolerance;
//! - [`exchange`]: the matching rules (marketable orders take levels, resting orders queue
//!   behind the displayed size and fill as trades at their price consume the queue ahead —
//!   hftbacktest's risk-averse queue model), fees and settlement;
//! - [`pnl`]: P&L per window, day and in total from fill and settlement records.

pub mod config;
pub mod exchange;
pub mod pnl;

pub use config::{ConfigError, PaperConfig};
pub use exchange::{PaperExchange, PaperOrder, PaperStats, PaperTif, TokenKey};
pub use pnl::{Pnl, PnlReport, PnlRow};

/// Bus stream number of the records the paper exchange emits (decisions are stream 1, exec's
/// order transitions stream 0).
pub const PAPER_STREAM: u8 = 2;
