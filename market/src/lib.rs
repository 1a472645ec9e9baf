//! ringbolt's market model: the facts about Polymarket's "Bitcoin Up or Down" 5-minute markets
//! that every process must agree on, defined once.
//!
//! - [`window`]: the 300 s windows, their alignment and the slug `btc-updown-5m-<start_s>`;
//! - [`name`]: the bus instrument name `btc-updown-5m-<start_s>/<up|down>/<token_id>`, one
//!   formatter (the collector writes it) and one strict parser (decide and exec read it),
//!   pinned by `market/schema/instrument-name-v<N>.txt` and a drift check;
//! - [`tick`]: every tick Polymarket uses, the reference rounding table, the 0.0001 price grid
//!   and the one rule for "is this price valid for this tick";
//! - [`book`]: the one Polymarket order book ([`PolyBook`]), used by the collector's
//!   continuity check, the decision core and the benches;
//! - [`params`]: per-market parameters (tick, fee curve, minimum size) as data, from
//!   configuration, Gamma and `tick_size_change`;
//! - [`time`]: UTC civil dates;
//! - [`event`]: a record's event time (the clock of the engine and the paper exchange).
//!
//! The crate is sans-IO: no sockets, threads or clock reads. It depends on the bus (records,
//! scales, sides) and small pure crates only.

pub mod book;
pub mod event;
pub mod name;
pub mod params;
pub mod tick;
pub mod time;
pub mod window;

pub use book::{BookError, PolyBook};
pub use event::event_ts;
pub use name::{InstrumentName, NameError, Outcome, instrument_name};
pub use params::{GammaParams, MarketParams, ParamsError, TickSizeChange};
/// Fixed-point scale of every price (1e-8), the bus's.
pub use ringbolt_bus::PRICE_SCALE;
pub use tick::{GRID_E8, GRID_LEVELS, PriceError, RoundConfig, Tick, TickError, on_grid};
pub use window::{NS, SLUG_PREFIX, WINDOW_S, parse_slug, slug, window_of_ns, window_start_s};
