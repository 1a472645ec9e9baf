//! `ringbolt dash`: the operator's live dashboard.
//!
//! One process of its own, read-only towards everything it watches:
//! - the **bus segments** through read-only mappings ([`ringbolt_bus::Segment::open_read_only`])
//!   and unregistered cursors ([`ringbolt_bus::Consumer::observe`]): it cannot write a byte of a
//!   segment, take a consumer slot or slow a producer; when it falls behind it is lapped and
//!   counts what it lost ([`bus`]);
//! - the processes' Prometheus **`/metrics`**, scraped once per update period ([`scrape`],
//!   parsed generically by [`prom`]: a missing family is "no data");
//! - and it serves **one page** and a WebSocket that pushes a snapshot every `dash.update_ms`
//!   (`server`); the page's assets (uPlot included) are compiled into the binary.
//!
//! The view itself ([`view::View`]) is sans-IO: records in, JSON out.

#![forbid(unsafe_code)]

pub mod bus;
pub mod config;
pub mod prom;
pub mod scrape;
mod server;
pub mod view;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Result;
use ringbolt_decide::DecideConfig;
use serde_json::Value;
use tungstenite::Utf8Bytes;

pub use config::{DashConfig, MetricsSource};

/// State shared by the bus thread (writer), the scraper and the connection threads (readers).
#[derive(Debug)]
pub(crate) struct Shared {
    token: Option<String>,
    view: Mutex<view::View>,
    tick: Mutex<(u64, Utf8Bytes)>,
    ticked: Condvar,
    metrics: Mutex<Value>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// The latest tick message: (sequence, JSON).
    pub(crate) fn latest(&self) -> (u64, Utf8Bytes) {
        lock(&self.tick).clone()
    }

    /// Waits up to `timeout` for a tick newer than `seen`; returns the latest either way.
    pub(crate) fn wait_newer(&self, seen: u64, timeout: Duration) -> (u64, Utf8Bytes) {
        let guard = lock(&self.tick);
        let (guard, _) = self
            .ticked
            .wait_timeout_while(guard, timeout, |(seq, _)| *seq == seen)
            .unwrap_or_else(PoisonError::into_inner);
        guard.clone()
    }

    fn publish(&self, tick: String) {
        let mut guard = lock(&self.tick);
        guard.0 += 1;
        guard.1 = Utf8Bytes::from(tick);
        drop(guard);
        self.ticked.notify_all();
    }

    /// The first message of a WebSocket: chart columns, the kept history and the latest tick.
    pub(crate) fn hello(&self) -> String {
        let (columns, data) = {
            let view = lock(&self.view);
            (view.columns(), view.history_columns())
        };
        let latest = self.latest().1;
        let latest = if latest.is_empty() {
            "null"
        } else {
            latest.as_str()
        };
        format!(
            "{{\"type\":\"hello\",\"columns\":{},\"data\":{},\"latest\":{latest}}}",
            serde_json::to_string(&columns).unwrap_or_default(),
            serde_json::to_string(&data).unwrap_or_default(),
        )
    }
}

/// A running dashboard.
#[derive(Debug)]
pub struct Dash {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Dash {
    /// The bound address of the page.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the bus and scraper threads and the listener.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Validates `cfg`, binds the page and starts the bus reader and the scraper.
///
/// # Errors
/// An invalid `[dash]` section (e.g. a non-loopback bind without `allow_remote` and a token), or
/// a bind failure.
pub fn start(cfg: &DashConfig, decide: &DecideConfig) -> Result<Dash> {
    cfg.validate()?;
    let period = Duration::from_millis(cfg.update_ms);
    let history = usize::try_from(cfg.history_s * 1000 / cfg.update_ms).unwrap_or(4800);
    let shared = Arc::new(Shared {
        token: cfg.token.clone(),
        view: Mutex::new(view::View::new(decide, history)),
        tick: Mutex::new((0, Utf8Bytes::from_static(""))),
        ticked: Condvar::new(),
        metrics: Mutex::new(Value::Null),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let addr = server::spawn(cfg.bind, Arc::clone(&shared), Arc::clone(&stop))?;
    let threads = vec![
        bus::spawn(
            cfg.segments.clone(),
            period,
            Arc::clone(&shared),
            Arc::clone(&stop),
        )?,
        scrape::spawn(
            cfg.metrics.clone(),
            period,
            Arc::clone(&shared),
            Arc::clone(&stop),
        )?,
    ];
    Ok(Dash {
        addr,
        stop,
        threads,
    })
}

/// `ringbolt dash`: runs until `stop` is set (SIGINT/SIGTERM in the binary).
///
/// # Errors
/// As [`start`].
pub fn run(cfg: &DashConfig, decide: &DecideConfig, stop: &AtomicBool) -> Result<()> {
    let dash = start(cfg, decide)?;
    let token = cfg
        .token
        .as_ref()
        .map_or_else(String::new, |_| "?token=<dash.token>".to_owned());
    tracing::info!("ringbolt dash: http://{}/{token}", dash.addr());
    println!("ringbolt dash: http://{}/{token}", dash.addr());
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
    }
    dash.stop();
    Ok(())
}
