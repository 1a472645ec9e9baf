//! The Polymarket discovery thread: asks Gamma for the current and next window, registers
//! their outcome tokens on the bus and tells the ring thread to subscribe / unsubscribe them
//! (no reconnect). Off the hot path: its own blocking `Driver`, cold allocations.
//!
//! Commands travel on a bounded channel ([`POLY_CMD_CAPACITY`]). A command is never dropped:
//! when the channel is full it stays pending on this side ([`CmdOutbox`]) and is retried on the
//! next round (every 50 ms), and each such stall is counted (`poly_cmd_stalls`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ringbolt_bus::{PARAMS_FROM_GAMMA, Publisher, Record, Venue};
use ringbolt_feeds::collector::discovery::{Tracker, gamma_path, parse_gamma};
use ringbolt_market::{InstrumentName, MarketParams};
use ringbolt_net::{Backend, Driver, DriverConfig, Timeouts, WaitMode};

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
    /// To the ring thread (bounded, with a pending queue on this side).
    pub tx: CmdOutbox,
    /// Counters.
    pub shared: Arc<SourceShared>,
    /// The bus (instrument registration).
    pub publisher: Arc<Publisher>,
    /// Subscribed windows (created on the first round).
    pub tracker: Option<Tracker>,
    /// When the bus table was last swept for instruments of windows over (`None`: not yet, so
    /// the first round sweeps what a previous collector left).
    pub swept_at: Option<i64>,
}

/// Capacity of the discovery → ring thread command channel. The ring thread drains it on every
/// service pass; discovery sends at most a few commands per window (minutes), so a full channel
/// means a stalled ring thread.
pub const POLY_CMD_CAPACITY: usize = 16;

/// The producer side of the bounded command channel: commands that did not fit wait here, in
/// order, and go out first on the next [`CmdOutbox::flush`]. Back-pressure, never loss: a
/// subscribe command that is dropped would leave a window unsubscribed.
#[derive(Debug)]
pub struct CmdOutbox {
    tx: SyncSender<PolyCmd>,
    pending: VecDeque<PolyCmd>,
    stalls: Arc<AtomicU64>,
}

impl CmdOutbox {
    /// An outbox on `tx`; each time a flush finds the channel full, `stalls` is incremented.
    #[must_use]
    pub fn new(tx: SyncSender<PolyCmd>, stalls: Arc<AtomicU64>) -> Self {
        CmdOutbox {
            tx,
            pending: VecDeque::new(),
            stalls,
        }
    }

    /// Queues `cmd` behind any pending ones and sends what fits.
    ///
    /// # Errors
    /// The ring thread is gone (the receiver was dropped).
    pub fn send(&mut self, cmd: PolyCmd) -> Result<()> {
        self.pending.push_back(cmd);
        self.flush()
    }

    /// Sends pending commands, oldest first, until the channel is full (counted as a stall;
    /// the rest wait for the next flush) or none are left.
    ///
    /// # Errors
    /// The ring thread is gone (the receiver was dropped).
    pub fn flush(&mut self) -> Result<()> {
        while let Some(cmd) = self.pending.pop_front() {
            match self.tx.try_send(cmd) {
                Ok(()) => {}
                Err(TrySendError::Full(cmd)) => {
                    self.pending.push_front(cmd);
                    self.stalls.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Err(TrySendError::Disconnected(_)) => bail!("ring thread gone"),
            }
        }
        Ok(())
    }

    /// Commands waiting for room in the channel.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

/// The `MarketParams` record of token `id` of window `w`: the market crate's defaults updated
/// with what Gamma states (source `gamma`); `None` (logged) when Gamma states an unusable value.
fn params_record(
    w: &ringbolt_feeds::collector::discovery::WindowMarket,
    id: u32,
) -> Option<Record> {
    match MarketParams::default().updated_from_gamma(&w.params) {
        Ok(p) => {
            let body = p.to_body(w.start_s, PARAMS_FROM_GAMMA);
            let stream = ringbolt_feeds::venues::polymarket::Stream::MarketEvent as u8;
            Some(Record::new(Venue::Polymarket, stream, id, &body))
        }
        Err(e) => {
            tracing::warn!(slug = %w.slug, error = %e, "Gamma market parameters not usable");
            None
        }
    }
}

/// `GET path` on Gamma over HTTPS: the body of a 200 answer.
fn get_gamma(ep: &ringbolt_net::Endpoint, path: &str, timeout: Duration) -> Result<Vec<u8>> {
    let mut driver = Driver::new(&DriverConfig::new(WaitMode::Block, Backend::Auto))
        .context("discovery driver")?;
    let t = Timeouts {
        connect: timeout,
        handshake: timeout,
        idle: timeout,
    };
    let resp = ringbolt_net::http1::get(&mut driver, ep, path, &[], t)
        .with_context(|| format!("GET {}:{}{path}", ep.host, ep.port))?;
    if resp.status != 200 {
        bail!(
            "GET {path}: HTTP {}: {}",
            resp.status,
            String::from_utf8_lossy(&resp.body[..resp.body.len().min(200)])
        );
    }
    Ok(resp.body)
}

/// Wall-clock unix seconds.
fn now_s() -> i64 {
    ringbolt_telemetry::now_ns() / 1_000_000_000
}

impl Discovery {
    /// One round on the wall clock, looking windows up on Gamma over HTTPS.
    ///
    /// # Errors
    /// A failed lookup (counted), a failed registration, a gone ring thread.
    pub fn step(&mut self) -> Result<()> {
        let (ep, prefix) = self.rest.clone();
        let timeout = self.timeout;
        self.step_at(now_s(), |path| {
            get_gamma(&ep, &format!("{prefix}{path}"), timeout)
        })
    }

    /// One round at `now` (unix s): retire the bus instruments of windows over, look up missing
    /// windows through `fetch(path)` (the Gamma path and query, answering the response body),
    /// subscribe new ones, unsubscribe expired ones. [`Discovery::step`] is this on the wall
    /// clock and HTTPS; tests drive it on a compressed clock.
    ///
    /// # Errors
    /// As [`Discovery::step`].
    pub fn step_at(&mut self, now: i64, fetch: impl FnOnce(&str) -> Result<Vec<u8>>) -> Result<()> {
        // Commands a full channel held back go first, in order.
        self.tx.flush()?;
        let tracker = self.tracker_mut();
        let missing = tracker.missing(now);
        let gone = tracker.expire(now);
        self.unsubscribe(&gone)?;
        if !gone.is_empty() || self.swept_at.is_none() {
            self.retire_over(now);
        }
        if missing.is_empty() {
            return Ok(());
        }
        let path = gamma_path(&missing, self.events);
        let markets = match fetch(&path)
            .and_then(|body| parse_gamma(&body).with_context(|| format!("GET {path}")))
        {
            Ok(m) => m,
            Err(e) => {
                self.shared.discovery_errors.fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        };
        let plan = self.tracker_mut().update(now, &markets);
        self.unsubscribe(&plan.unsubscribe)?;
        if !plan.subscribe.is_empty() {
            self.subscribe(&plan.subscribe)?;
        }
        Ok(())
    }

    /// Registers the windows' tokens on the bus and sends the subscribe and `MarketParams`
    /// commands.
    fn subscribe(
        &mut self,
        windows: &[ringbolt_feeds::collector::discovery::WindowMarket],
    ) -> Result<()> {
        let mut tokens = Vec::new();
        let mut params = Vec::new();
        for w in windows {
            for (token, name) in window_tokens(w) {
                let id = self
                    .publisher
                    .register_instrument(Venue::Polymarket, &name)
                    .with_context(|| format!("registering {name}"))?;
                params.extend(params_record(w, id));
                tokens.push((token, name, id));
            }
            tracing::info!(slug = %w.slug, "Polymarket window discovered; subscribing");
        }
        self.tx.send(PolyCmd::Subscribe(tokens))?;
        if !params.is_empty() {
            self.tx.send(PolyCmd::Publish(params))?;
        }
        Ok(())
    }

    /// Retires every live Polymarket instrument of the bus table whose window ended more than
    /// `linger_s` before `now` — the windows this discovery unsubscribed and any a previous
    /// collector left live when it died — so their entries can be reused (ADR 0024).
    /// Returns how many were retired. Cold: at each rollover and on the first round.
    pub fn retire_over(&mut self, now: i64) -> usize {
        self.swept_at = Some(now);
        let mut retired = 0;
        for (id, venue, name) in self.publisher.segment().live_instruments() {
            let over = venue == Venue::Polymarket
                && InstrumentName::parse(&name)
                    .is_ok_and(|n| n.window_start_s + self.window_s + self.linger_s <= now);
            if over && self.publisher.retire_instrument(id) {
                retired += 1;
            }
        }
        self.shared
            .retired_instruments
            .fetch_add(retired as u64, Ordering::Relaxed);
        retired
    }

    fn unsubscribe(
        &mut self,
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
        self.tx.send(PolyCmd::Unsubscribe(tokens))
    }

    fn tracker_mut(&mut self) -> &mut Tracker {
        let (w, l) = (self.window_s, self.linger_s);
        self.tracker.get_or_insert_with(|| Tracker::new(w, l))
    }

    /// Runs rounds until `stop`.
    pub fn run(mut self, stop: &AtomicBool) {
        let mut next = Instant::now();
        let mut last_err = None::<String>;
        while !stop.load(Ordering::Relaxed) {
            if self.tx.pending() > 0
                && let Err(e) = self.tx.flush()
            {
                tracing::warn!(error = %format!("{e:#}"), "Polymarket discovery stopped");
                return;
            }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sub(n: u32) -> PolyCmd {
        PolyCmd::Subscribe(vec![(format!("t{n}"), format!("name{n}"), n)])
    }

    fn id(c: &PolyCmd) -> u32 {
        match c {
            PolyCmd::Subscribe(l) => l[0].2,
            PolyCmd::Unsubscribe(_) | PolyCmd::Publish(_) => u32::MAX,
        }
    }

    #[test]
    fn a_full_channel_keeps_commands_pending_in_order_and_counts_the_stall() {
        let (tx, rx) = std::sync::mpsc::sync_channel(2);
        let stalls = Arc::new(AtomicU64::new(0));
        let mut out = CmdOutbox::new(tx, Arc::clone(&stalls));
        for n in 0..5 {
            out.send(sub(n)).unwrap();
        }
        // Two fit; three wait; every send after the channel filled stalled once.
        assert_eq!(out.pending(), 3);
        assert_eq!(stalls.load(Ordering::Relaxed), 3);
        assert_eq!(id(&rx.try_recv().unwrap()), 0);
        out.flush().unwrap();
        assert_eq!(out.pending(), 2);
        let got: Vec<u32> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|c| id(&c))
            .collect();
        assert_eq!(got, [1, 2]);
        out.flush().unwrap();
        out.flush().unwrap();
        let got: Vec<u32> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|c| id(&c))
            .collect();
        assert_eq!(got, [3, 4], "nothing lost, order kept");
        assert_eq!(out.pending(), 0);
        drop(rx);
        assert!(out.send(sub(9)).is_err(), "a gone ring thread is an error");
    }
}
