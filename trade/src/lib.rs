//! ringbolt's trade process as a library: **one loop** ([`reflex::run`]) from a record source
//! through the decision pipeline to an order sink, and the three programs built on it:
//!
//! - [`live`]: `ringbolt trade` — bus consumers ([`live::BusSource`]) → `Pipeline` → exec live or
//!   paper ([`live::ExecOrders`], built on [`exec::Exec`]) or no orders, decisions and order
//!   transitions published on the output ring, a model thread beside;
//! - [`replay`]: `ringbolt replay` — an archive ([`replay::ArchiveSource`]) → the same loop → no
//!   orders, every decision checked against the archived live one;
//! - the replay bench (`ringbolt-lab bench replay`) runs [`replay::replay`] itself.
//!
//! [`config`] holds the `[trade]`, `[decide]` and `[exec]` configuration.

mod archive_source;
pub mod config;
pub mod exec;
pub mod live;
pub mod paper;
pub mod reflex;
pub mod replay;
