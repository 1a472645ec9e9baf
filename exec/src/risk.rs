//! Safety: paper/live mode, risk limits and the kill switch.
//!
//! * Paper mode is the default. Every paper order takes the real signing and wire path with
//!   size zero ([`TradingMode::wire_quantity`]), so the venue rejects it. The zeroing happens where
//!   orders are signed (the pool and `exec sign` both call it), so no non-zero paper order can
//!   exist as bytes.
//! * Live mode needs an explicit opt-in ([`LiveOptIn`], made by the CLI from `--live`) and is
//!   refused when any limit is unset.
//! * Limits: max notional per order, per 300-s window, per UTC day; max open orders.
//! * The kill switch (a file's existence or a signal) stops new orders; the order client then
//!   sends `DELETE /cancel-all` ([`crate::request::HttpRequest::cancel_all`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::amounts::{Decimal, Micros};
use crate::journal::{Entry, Journal, Recovered};

/// Proof that the operator asked for live trading (`--live`). Only constructible on purpose.
#[derive(Debug, Clone, Copy)]
pub struct LiveOptIn(());

impl LiveOptIn {
    /// The operator passed `--live`.
    #[must_use]
    pub fn operator_passed_live_flag() -> Self {
        LiveOptIn(())
    }
}

/// Trading mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TradingMode {
    /// Real signing and wire path, size zero (the default).
    #[default]
    Paper,
    /// Real sizes.
    Live,
}

impl TradingMode {
    /// Live mode, given the operator's opt-in.
    #[must_use]
    pub fn live(_: LiveOptIn) -> Self {
        TradingMode::Live
    }

    /// The quantity that goes on the wire: zero in paper mode.
    #[must_use]
    pub fn wire_quantity(self, quantity: Decimal) -> Decimal {
        match self {
            TradingMode::Paper => Decimal {
                mantissa: 0,
                scale: 0,
            },
            TradingMode::Live => quantity,
        }
    }
}

/// Risk limits (TOML `[exec.risk]`). All are required for live mode.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RiskLimits {
    /// Max pUSD notional of one order, 1e-6.
    pub max_order_notional_micros: Option<Micros>,
    /// Max pUSD notional submitted per 300-s window, 1e-6.
    pub max_window_notional_micros: Option<Micros>,
    /// Max pUSD notional submitted per UTC day, 1e-6.
    pub max_day_notional_micros: Option<Micros>,
    /// Max orders open at once.
    pub max_open_orders: Option<u32>,
}

impl RiskLimits {
    /// Names of unset limits.
    #[must_use]
    pub fn unset(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.max_order_notional_micros.is_none() {
            v.push("max_order_notional_micros");
        }
        if self.max_window_notional_micros.is_none() {
            v.push("max_window_notional_micros");
        }
        if self.max_day_notional_micros.is_none() {
            v.push("max_day_notional_micros");
        }
        if self.max_open_orders.is_none() {
            v.push("max_open_orders");
        }
        v
    }
}

/// Why the gate refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RiskError {
    /// Live mode with unset limits.
    #[error("live mode refused: risk limits unset: {0:?}")]
    LimitsUnset(Vec<&'static str>),
    /// The kill switch is tripped.
    #[error("kill switch tripped: no new orders")]
    KillSwitch,
    /// Order notional over the per-order limit.
    #[error("order notional {notional} > per-order limit {limit} (1e-6 pUSD)")]
    OrderNotional {
        /// Requested.
        notional: Micros,
        /// Limit.
        limit: Micros,
    },
    /// Window notional would exceed its limit.
    #[error("window notional {used}+{notional} > limit {limit} (1e-6 pUSD)")]
    WindowNotional {
        /// Already used.
        used: Micros,
        /// Requested.
        notional: Micros,
        /// Limit.
        limit: Micros,
    },
    /// Day notional would exceed its limit.
    #[error("day notional {used}+{notional} > limit {limit} (1e-6 pUSD)")]
    DayNotional {
        /// Already used.
        used: Micros,
        /// Requested.
        notional: Micros,
        /// Limit.
        limit: Micros,
    },
    /// The spend reservation could not be made durable: no order without it.
    #[error("journal write failed: no order without a durable spend reservation")]
    Journal,
    /// Backing off after HTTP 425/429/503 (ms left).
    #[error("venue asked to back off: {left_ms} ms left")]
    Backoff {
        /// Time left, ms.
        left_ms: u64,
    },
    /// Too many open orders.
    #[error("{open} open orders, limit {limit}")]
    OpenOrders {
        /// Open now.
        open: u32,
        /// Limit.
        limit: u32,
    },
}

/// The kill signal of `ringbolt trade` (`kill -USR1 <pid>`): trips the kill switch, which stops
/// new orders and cancels everything once (`DELETE /cancel-all`).
pub const KILL_SIGNAL: i32 = signal_hook::consts::SIGUSR1;

/// The kill switch: a shared flag tripped by a file, a signal, or code.
#[derive(Debug, Clone, Default)]
pub struct KillSwitch {
    flag: Arc<AtomicBool>,
}

impl KillSwitch {
    /// A fresh, untripped switch.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Trips it.
    pub fn trip(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }

    /// Whether it is tripped (one relaxed load; hot-path safe).
    #[must_use]
    pub fn is_tripped(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// Trips the switch when `signal` (e.g. `signal_hook::consts::SIGUSR1`) arrives.
    pub fn trip_on_signal(&self, signal: i32) -> std::io::Result<()> {
        signal_hook::flag::register(signal, Arc::clone(&self.flag)).map(|_| ())
    }

    /// Polls for `path` every `interval` on a background thread and trips when it exists.
    /// The thread exits once tripped.
    pub fn watch_file(&self, path: PathBuf, interval: Duration) -> std::io::Result<JoinHandle<()>> {
        let flag = Arc::clone(&self.flag);
        std::thread::Builder::new()
            .name("exec-killswitch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    if path.exists() {
                        tracing::warn!(path = %path.display(), "kill switch file present");
                        flag.store(true, Ordering::SeqCst);
                        break;
                    }
                    std::thread::sleep(interval);
                }
            })
    }
}

const WINDOW_S: u64 = 300;
const DAY_S: u64 = 86_400;

/// The risk gate: decides whether a new order may go out, and tracks usage.
#[derive(Debug)]
pub struct RiskGate {
    mode: TradingMode,
    limits: RiskLimits,
    kill: KillSwitch,
    window: u64,
    window_used: Micros,
    day: u64,
    day_used: Micros,
    open: u32,
    journal: Option<Journal>,
    /// Spend reserved durably in the journal for `window` / `day`.
    window_reserved: Micros,
    day_reserved: Micros,
    /// No new order before this (ns since the epoch): venue back-off.
    backoff_until_ns: i64,
}

impl RiskGate {
    /// A gate. Live mode is refused when any limit is unset.
    pub fn new(mode: TradingMode, limits: RiskLimits, kill: KillSwitch) -> Result<Self, RiskError> {
        if mode == TradingMode::Live {
            let unset = limits.unset();
            if !unset.is_empty() {
                return Err(RiskError::LimitsUnset(unset));
            }
        }
        Ok(RiskGate {
            mode,
            limits,
            kill,
            window: 0,
            window_used: 0,
            day: 0,
            day_used: 0,
            open: 0,
            journal: None,
            window_reserved: 0,
            day_reserved: 0,
            backoff_until_ns: 0,
        })
    }

    /// Makes the gate's spend and open orders survive restarts: usage is restored from the
    /// journal (a reservation of the current window / day counts as spent: conservative), and
    /// every later reservation is written durably before the order that needs it is admitted.
    pub fn attach_journal(&mut self, journal: Journal, rec: &Recovered, now_s: u64) {
        let (w, d) = (now_s / WINDOW_S, now_s / DAY_S);
        self.window = w;
        self.day = d;
        if let Some((rw, wm, dm)) = rec.last_reserve {
            if rw == w {
                self.window_used = self.window_used.max(wm);
            }
            if rw * WINDOW_S / DAY_S == d {
                self.day_used = self.day_used.max(dm);
            }
        }
        self.window_reserved = self.window_used;
        self.day_reserved = self.day_used;
        self.open = self.open.max(u32::try_from(rec.open).unwrap_or(u32::MAX));
        self.journal = Some(journal);
    }

    /// Spend used in the current window and day (1e-6 pUSD), as the gate counts it.
    #[must_use]
    pub fn used(&self) -> (Micros, Micros) {
        (self.window_used, self.day_used)
    }

    /// The venue's open orders are known (reconciliation): they replace the count.
    pub fn set_open(&mut self, open: u32) {
        self.open = open;
        self.journal_open();
    }

    /// No new order until `until_ns` (HTTP 425/429/503 back-off).
    pub fn back_off_until(&mut self, until_ns: i64) {
        self.backoff_until_ns = self.backoff_until_ns.max(until_ns);
    }

    /// Ends a back-off early (an operator decision, or a test that checks classification only).
    pub fn clear_backoff(&mut self) {
        self.backoff_until_ns = 0;
    }

    fn journal_open(&mut self) {
        if let Some(j) = &mut self.journal {
            // Not fsynced: survives a process crash; reconciliation covers a power loss.
            let _ = j.append(Entry::Open(u64::from(self.open)), false);
        }
    }

    /// Reserves durably (fsync) enough for the usage about to be admitted, a chunk at a time.
    fn reserve(&mut self, window_used: Micros, day_used: Micros) -> Result<(), RiskError> {
        let Some(j) = &mut self.journal else {
            return Ok(());
        };
        if window_used <= self.window_reserved && day_used <= self.day_reserved {
            return Ok(());
        }
        let l = self.limits;
        // A quarter of the window cap per reservation (at least the order): a crash over-counts
        // at most one chunk, and only orders that cross a chunk boundary pay the fsync.
        let chunk = l.max_window_notional_micros.map_or(0, |c| c / 4);
        let cap = |used: Micros, limit: Option<Micros>| {
            let want = used.saturating_add(chunk);
            limit.map_or(want, |c| want.min(c)).max(used)
        };
        let wr = cap(window_used, l.max_window_notional_micros);
        let dr = cap(day_used, l.max_day_notional_micros);
        let e = Entry::Reserve {
            window: self.window,
            window_micros: wr,
            day_micros: dr,
        };
        j.append(e, true).map_err(|_| RiskError::Journal)?;
        self.window_reserved = wr;
        self.day_reserved = dr;
        Ok(())
    }

    /// The mode.
    #[must_use]
    pub fn mode(&self) -> TradingMode {
        self.mode
    }

    /// The kill switch.
    #[must_use]
    pub fn kill_switch(&self) -> &KillSwitch {
        &self.kill
    }

    /// Admits an order of `notional` (pUSD, 1e-6) at `now_s`, recording it as open and used.
    /// Paper orders are counted with their nominal notional so limits can be rehearsed.
    pub fn admit(&mut self, notional: Micros, now_s: u64) -> Result<(), RiskError> {
        if self.kill.is_tripped() {
            return Err(RiskError::KillSwitch);
        }
        let now_ns = i64::try_from(now_s)
            .unwrap_or(i64::MAX)
            .saturating_mul(1_000_000_000);
        if now_ns < self.backoff_until_ns {
            return Err(RiskError::Backoff {
                left_ms: u64::try_from((self.backoff_until_ns - now_ns) / 1_000_000).unwrap_or(0),
            });
        }
        let (w, d) = (now_s / WINDOW_S, now_s / DAY_S);
        if w != self.window {
            self.window = w;
            self.window_used = 0;
            self.window_reserved = 0;
        }
        if d != self.day {
            self.day = d;
            self.day_used = 0;
            self.day_reserved = 0;
        }
        let l = self.limits;
        if let Some(limit) = l.max_order_notional_micros
            && notional > limit
        {
            return Err(RiskError::OrderNotional { notional, limit });
        }
        if let Some(limit) = l.max_window_notional_micros
            && self.window_used.saturating_add(notional) > limit
        {
            return Err(RiskError::WindowNotional {
                used: self.window_used,
                notional,
                limit,
            });
        }
        if let Some(limit) = l.max_day_notional_micros
            && self.day_used.saturating_add(notional) > limit
        {
            return Err(RiskError::DayNotional {
                used: self.day_used,
                notional,
                limit,
            });
        }
        if let Some(limit) = l.max_open_orders
            && self.open >= limit
        {
            return Err(RiskError::OpenOrders {
                open: self.open,
                limit,
            });
        }
        self.reserve(self.window_used + notional, self.day_used + notional)?;
        self.window_used += notional;
        self.day_used += notional;
        self.open += 1;
        self.journal_open();
        Ok(())
    }

    /// Undoes [`RiskGate::admit`] for an order that never left the process (no pre-signed
    /// order for it): its notional no longer counts against the window and day caps, and it is
    /// not open. The durable reservation stays (over-counting is the safe side after a crash).
    pub fn unadmit(&mut self, notional: Micros) {
        self.window_used = self.window_used.saturating_sub(notional);
        self.day_used = self.day_used.saturating_sub(notional);
        self.closed();
    }

    /// An admitted order reached a terminal state (rejected, filled, cancelled, expired).
    pub fn closed(&mut self) {
        self.open = self.open.saturating_sub(1);
        self.journal_open();
    }

    /// A terminal order became open again (a FAILED trade reverted its fill).
    pub fn reopened(&mut self) {
        self.open = self.open.saturating_add(1);
        self.journal_open();
    }

    /// Orders open now.
    #[must_use]
    pub fn open_orders(&self) -> u32 {
        self.open
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn all_limits() -> RiskLimits {
        RiskLimits {
            max_order_notional_micros: Some(10_000_000),
            max_window_notional_micros: Some(25_000_000),
            max_day_notional_micros: Some(40_000_000),
            max_open_orders: Some(3),
        }
    }

    #[test]
    fn live_requires_every_limit() {
        let live = TradingMode::live(LiveOptIn::operator_passed_live_flag());
        for i in 0..4 {
            let mut l = all_limits();
            match i {
                0 => l.max_order_notional_micros = None,
                1 => l.max_window_notional_micros = None,
                2 => l.max_day_notional_micros = None,
                _ => l.max_open_orders = None,
            }
            assert!(matches!(
                RiskGate::new(live, l, KillSwitch::new()),
                Err(RiskError::LimitsUnset(v)) if v.len() == 1
            ));
        }
        assert!(RiskGate::new(live, all_limits(), KillSwitch::new()).is_ok());
        assert!(
            RiskGate::new(TradingMode::Paper, RiskLimits::default(), KillSwitch::new()).is_ok()
        );
        assert_eq!(TradingMode::default(), TradingMode::Paper);
    }

    #[test]
    fn limits_and_kill_switch() {
        let live = TradingMode::live(LiveOptIn::operator_passed_live_flag());
        let kill = KillSwitch::new();
        let mut g = RiskGate::new(live, all_limits(), kill.clone()).unwrap();
        let t0 = 1_773_307_200;
        assert!(matches!(
            g.admit(10_000_001, t0),
            Err(RiskError::OrderNotional { .. })
        ));
        g.admit(10_000_000, t0).unwrap();
        g.admit(10_000_000, t0 + 1).unwrap();
        assert!(matches!(
            g.admit(10_000_000, t0 + 2),
            Err(RiskError::WindowNotional { .. })
        ));
        // Next window: window budget resets; open-order limit still binds after one more.
        g.admit(10_000_000, t0 + 300).unwrap();
        assert!(matches!(
            g.admit(1, t0 + 301),
            Err(RiskError::OpenOrders { .. })
        ));
        g.closed();
        g.closed();
        g.admit(10_000_000, t0 + 302).unwrap();
        assert!(matches!(
            g.admit(10_000_000, t0 + 600),
            Err(RiskError::DayNotional { .. })
        ));
        kill.trip();
        assert_eq!(g.admit(1, t0 + 601), Err(RiskError::KillSwitch));
    }

    #[test]
    fn an_order_never_sent_gives_its_notional_back() {
        let live = TradingMode::live(LiveOptIn::operator_passed_live_flag());
        let mut g = RiskGate::new(live, all_limits(), KillSwitch::new()).unwrap();
        let t0 = 1_773_307_200;
        g.admit(10_000_000, t0).unwrap();
        g.admit(10_000_000, t0).unwrap();
        // The second had no pre-signed order: undone, so the window has room for it again.
        g.unadmit(10_000_000);
        assert_eq!(g.open_orders(), 1);
        g.admit(10_000_000, t0 + 1).unwrap();
        assert!(matches!(
            g.admit(10_000_000, t0 + 2),
            Err(RiskError::WindowNotional {
                used: 20_000_000,
                ..
            })
        ));
    }

    #[test]
    fn kill_switch_file_and_signal() {
        let dir = std::env::temp_dir().join(format!("ringbolt-kill-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("KILL");
        let k = KillSwitch::new();
        let h = k
            .watch_file(path.clone(), Duration::from_millis(5))
            .unwrap();
        assert!(!k.is_tripped());
        std::fs::write(&path, b"stop").unwrap();
        h.join().unwrap();
        assert!(k.is_tripped());
        std::fs::remove_dir_all(&dir).unwrap();

        let k2 = KillSwitch::new();
        k2.trip_on_signal(signal_hook::consts::SIGUSR2).unwrap();
        signal_hook::low_level::raise(signal_hook::consts::SIGUSR2).unwrap();
        assert!(k2.is_tripped());
    }
}
