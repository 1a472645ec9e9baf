//! The Polymarket discovery thread: asks Gamma for the current and next window, registers
//! their outcome tokens on the bus and tells the ring thread to subscribe / unsubscribe them
//! (no reconnect). Off the hot path: its own blocking `Driver`, cold allocations.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ringbolt_bus::{Publisher, Venue};
use ringbolt_feeds::collector::discovery::{Tracker, gamma_path, parse_gamma};
use ringbolt_net::{Backend, Driver, DriverConfig, Mode, Timeouts};

use super::{PolyCmd, SourceShared, window_tokens};

/// One Polymarket source's discovery.
pub struct Discovery {
    /// Gamma endpoint and path prefix.
    pub rest: (ringbolt_net::Endpoint, String),
    /// Window length, s.
    pub window_s: i64,
    /// Keep a window this long after its end, s.
    pub linger_s: i64,
    /// Lookup interval while a wanted window is missing.
    pub interval: Duration,
    /// Use `/events?slug=`.
    pub events: bool,
    /// Connect / response timeout.
    pub timeout: Duration,
    /// To the ring thread.
    pub tx: Sender<PolyCmd>,
    /// Counters.
    pub shared: Arc<SourceShared>,
    /// The bus (instrument registration).
    pub publisher: Arc<Publisher>,
    /// Subscribed windows (created on the first round).
    pub tracker: Option<Tracker>,
}

/// Wall-clock unix seconds.
fn now_s() -> i64 {
    ringbolt_telemetry::now_ns() / 1_000_000_000
}

impl Discovery {
    /// One round: look up missing windows, subscribe new ones, unsubscribe expired ones.
    pub fn step(&mut self) -> Result<()> {
        let tracker = self.tracker_mut();
        let now = now_s();
        let missing = tracker.missing(now);
        let gone = tracker.expire(now);
        self.unsubscribe(&gone)?;
        if missing.is_empty() {
            return Ok(());
        }
        let result = self.lookup(&missing);
        let markets = match result {
            Ok(m) => m,
            Err(e) => {
                self.shared.discovery_errors.fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        };
        let plan = self.tracker_mut().update(now_s(), &markets);
        self.unsubscribe(&plan.unsubscribe)?;
        if !plan.subscribe.is_empty() {
            let mut tokens = Vec::new();
            for w in &plan.subscribe {
                for (token, name) in window_tokens(w) {
                    let id = self
                        .publisher
                        .register_instrument(Venue::Polymarket, &name)
                        .with_context(|| format!("registering {name}"))?;
                    tokens.push((token, name, id));
                }
                tracing::info!(slug = %w.slug, "Polymarket window discovered; subscribing");
            }
            self.tx
                .send(PolyCmd::Subscribe(tokens))
                .context("ring thread gone")?;
        }
        Ok(())
    }

    fn unsubscribe(
        &self,
        gone: &[ringbolt_feeds::collector::discovery::WindowMarket],
    ) -> Result<()> {
        if gone.is_empty() {
            return Ok(());
        }
        let mut tokens = Vec::new();
        for w in gone {
            tracing::info!(slug = %w.slug, "Polymarket window over; unsubscribing");
            tokens.extend(w.tokens.iter().cloned());
        }
        self.tx
            .send(PolyCmd::Unsubscribe(tokens))
            .context("ring thread gone")
    }

    fn tracker_mut(&mut self) -> &mut Tracker {
        let (w, l) = (self.window_s, self.linger_s);
        self.tracker.get_or_insert_with(|| Tracker::new(w, l))
    }

    fn lookup(
        &self,
        starts: &[i64],
    ) -> Result<Vec<ringbolt_feeds::collector::discovery::WindowMarket>> {
        let mut driver = Driver::new(&DriverConfig::new(Mode::Block, Backend::Auto))
            .context("discovery driver")?;
        let (ep, prefix) = &self.rest;
        let path = format!("{prefix}{}", gamma_path(starts, self.events));
        let t = Timeouts {
            connect: self.timeout,
            handshake: self.timeout,
            idle: self.timeout,
        };
        let resp = ringbolt_net::http1::get(&mut driver, ep, &path, &[], t)
            .with_context(|| format!("GET {}:{}{path}", ep.host, ep.port))?;
        if resp.status != 200 {
            bail!(
                "GET {path}: HTTP {}: {}",
                resp.status,
                String::from_utf8_lossy(&resp.body[..resp.body.len().min(200)])
            );
        }
        parse_gamma(&resp.body).with_context(|| format!("GET {path}"))
    }

    /// Runs rounds until `stop`.
    pub fn run(mut self, stop: &AtomicBool) {
        let mut next = Instant::now();
        let mut last_err = None::<String>;
        while !stop.load(Ordering::Relaxed) {
            if Instant::now() >= next {
                match self.step() {
                    Ok(()) => last_err = None,
                    Err(e) => {
                        let text = format!("{e:#}");
                        if last_err.as_deref() != Some(&text) {
                            tracing::warn!(error = %text, "Polymarket discovery failed");
                        }
                        last_err = Some(text);
                    }
                }
                next = Instant::now() + self.interval;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
