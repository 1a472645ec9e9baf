//! `ringbolt-net`: ringbolt's transport. One [`Driver`] per pinned thread owns that thread's
//! sockets on an io_uring ring (spin or block mode) or, where io_uring is unavailable, on
//! non-blocking std sockets / epoll. Above it, sans-IO protocol layers driven by hand with no async
//! runtime: TLS ([`rustls`]), WebSocket ([`ws::WsClient`]) and HTTP/2 ([`h2c::H2Client`] on ringbolt's own
//! sans-IO frame layer [`h2wire`]).
//!
//! Typical receive loop:
//!
//! ```no_run
//! # use ringbolt_net::{Driver, DriverConfig, WaitMode, Backend, Endpoint, ws::{WsClient, WsOptions, Message}};
//! # use std::time::Duration;
//! # fn main() -> Result<(), ringbolt_net::NetError> {
//! let mut driver = Driver::new(&DriverConfig::new(WaitMode::Block, Backend::Auto))?;
//! let ep = Endpoint { host: "127.0.0.1".into(), port: 9000, tls: None };
//! let mut ws = WsClient::connect(&mut driver, &ep, &WsOptions::default())?;
//! loop {
//!     driver.poll(Duration::from_millis(1))?;
//!     while let Some(msg) = ws.next(&mut driver)? {
//!         match msg {
//!             Message::Text(t) => { let _ = t.len(); }
//!             Message::Binary(b) => { let _ = b.len(); }
//!         }
//!     }
//! }
//! # }
//! ```

pub mod affinity;
pub mod connect;
pub mod driver;
pub mod error;
pub mod h2c;
pub mod h2wire;
pub mod http1;
pub mod link;
mod record;
pub mod tls;
pub mod ws;

pub use driver::{Backend, BackendKind, ConnId, Driver, DriverConfig, DriverCounters, WaitMode};
pub use error::{NetError, Result};
pub use link::{Endpoint, Link, Timeouts};
