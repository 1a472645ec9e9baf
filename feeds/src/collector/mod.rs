//! Sans-IO pieces of the collector process (`ringbolt feeds --config`) that are protocol or
//! market logic rather than I/O: Polymarket market discovery and window rollover planning
//! ([`discovery`]), and the Polymarket top-of-book continuity check ([`poly_check`]). The
//! process itself (sockets, threads, bus, HTTP endpoints) is the `ringbolt-collector` crate
//! (`collector/`).

pub mod discovery;
pub mod poly_check;
