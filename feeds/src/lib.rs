//! ringbolt's venue adapters, sans-IO: frame bytes in, bus records and protocol actions out.
//!
//! - [`adapter`]: the [`VenueAdapter`] trait a collector drives, the instrument resolver, the
//!   record sink and the actions an adapter asks of its collector;
//! - [`decimal`]: exact decimal text → fixed-point conversion (never via `f64`);
//! - [`json`]: the zero-copy, allocation-free JSON pull lexer the parsers are built on;
//! - [`continuity`]: sequence / update-id chaining rules and their resync verdicts;
//! - [`conn`]: the per-stream connection state machine (connect → subscribe → live → stale →
//!   reconnect with exponential backoff and jitter) emitting feed states;
//! - [`counters`]: per-stream counters, feed-status records and a Prometheus renderer;
//! - [`textbook`]: a sorted book keeping received level text, for checksum venues;
//! - [`venues`]: one adapter per venue;
//! - [`driver`]: an adapter with its instrument table, counters and action queue;
//! - [`render`]: records as JSON lines for offline tools.
//!
//! This crate never touches a socket, a clock or a thread: the collector supplies the bytes,
//! the receive timestamps and the time.

pub mod adapter;
pub mod collector;
pub mod conn;
pub mod continuity;
pub mod counters;
pub mod decimal;
pub mod driver;
pub mod json;
pub mod render;
pub mod textbook;
pub mod time;
pub mod venues;

pub use adapter::{
    Action, Ctx, InstrumentResolver, InstrumentTable, KeepAlive, Outgoing, ParseError, RecordBuf,
    RecordSink, RestKind, RestRequest, StreamDesc, VenueAdapter, WsEndpoint,
};
pub use continuity::SyncMode;
pub use counters::{Counters, StreamCounters, render_prometheus, render_prometheus_by_source};
pub use driver::FrameDriver;
pub use venues::adapter_for;
