//! The per-stream connection state machine, sans-IO: driven by [`ConnEvent`]s and time, it
//! tells the collector what to do ([`ConnCommand`]) and which [`FeedState`] to publish on every
//! transition.
//!
//! ```text
//! Idle ─Start→ Connecting ─Connected→ Subscribing ─Subscribed→ Subscribed ─Data→ Live
//!                  │                      │                         │             │ no data for stale_after
//!                  └─fail/timeout─┐       └─timeout─┐               │             ▼
//!                                 ▼                 ▼               │           Stale ─Data→ Live
//!                              Backoff ◀──────── Close ◀────────────┴── no data for reconnect_after
//!                                 │ (exponential delay with jitter)
//!                                 └─deadline→ Connecting
//! ```

use ringbolt_bus::FeedState;

/// Timing parameters (ns).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnConfig {
    /// Give up a connect attempt (TCP+TLS+WebSocket) after this long.
    pub connect_timeout_ns: u64,
    /// Give up waiting for the subscription ack / first data after this long.
    pub subscribe_timeout_ns: u64,
    /// No data for this long ⇒ Stale.
    pub stale_after_ns: u64,
    /// No data for this long ⇒ close and reconnect.
    pub reconnect_after_ns: u64,
    /// First backoff delay.
    pub backoff_base_ns: u64,
    /// Largest backoff delay.
    pub backoff_max_ns: u64,
}

impl Default for ConnConfig {
    fn default() -> Self {
        ConnConfig {
            connect_timeout_ns: 10_000_000_000,
            subscribe_timeout_ns: 10_000_000_000,
            stale_after_ns: 5_000_000_000,
            reconnect_after_ns: 30_000_000_000,
            backoff_base_ns: 250_000_000,
            backoff_max_ns: 30_000_000_000,
        }
    }
}

/// Connection states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnState {
    /// Not started.
    Idle,
    /// Connecting (TCP, TLS, WebSocket upgrade).
    Connecting,
    /// Connected, subscribe frames sent, awaiting ack or data.
    Subscribing,
    /// Subscription acknowledged, no data yet.
    Subscribed,
    /// Data flowing.
    Live,
    /// No data for longer than the stale threshold.
    Stale,
    /// Waiting before the next connect attempt.
    Backoff,
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnEvent {
    /// Begin connecting.
    Start,
    /// The WebSocket is open.
    Connected,
    /// The connect attempt failed.
    ConnectFailed,
    /// The venue acknowledged the subscription.
    Subscribed,
    /// A data frame arrived.
    Data,
    /// The connection closed or errored.
    Closed,
    /// The adapter detected a sequence gap.
    Gap,
    /// The adapter resynchronised (snapshot applied).
    Resynced,
    /// Time passed (call at [`ConnMachine::next_deadline`] or on any timer).
    Tick,
}

/// What the collector must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnCommand {
    /// Open a connection.
    Connect,
    /// Send the adapter's subscribe frames.
    Subscribe,
    /// Close the connection (a reconnect follows after the backoff).
    Close,
}

/// Outcome of one event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Publish a feed-status record with this state.
    pub status: Option<FeedState>,
    /// Perform this command.
    pub command: Option<ConnCommand>,
}

/// The state machine of one connection.
#[derive(Clone, Debug)]
pub struct ConnMachine {
    cfg: ConnConfig,
    state: ConnState,
    /// Consecutive failed attempts (reset when Live).
    attempt: u32,
    /// Connects after the first one.
    reconnects: u64,
    entered_ns: u64,
    last_data_ns: u64,
    backoff_until_ns: u64,
    rng: fastrand::Rng,
}

impl ConnMachine {
    /// A machine in `Idle`; `seed` seeds the backoff jitter.
    #[must_use]
    pub fn new(cfg: ConnConfig, seed: u64) -> Self {
        ConnMachine {
            cfg,
            state: ConnState::Idle,
            attempt: 0,
            reconnects: 0,
            entered_ns: 0,
            last_data_ns: 0,
            backoff_until_ns: 0,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// The current state.
    #[must_use]
    pub const fn state(&self) -> ConnState {
        self.state
    }

    /// Reconnects so far.
    #[must_use]
    pub const fn reconnects(&self) -> u64 {
        self.reconnects
    }

    /// When the machine next needs a [`ConnEvent::Tick`], if ever.
    #[must_use]
    pub fn next_deadline(&self) -> Option<u64> {
        match self.state {
            ConnState::Idle => None,
            ConnState::Connecting => Some(self.entered_ns + self.cfg.connect_timeout_ns),
            ConnState::Subscribing | ConnState::Subscribed => {
                Some(self.entered_ns + self.cfg.subscribe_timeout_ns)
            }
            ConnState::Live => Some(self.last_data_ns + self.cfg.stale_after_ns),
            ConnState::Stale => Some(self.last_data_ns + self.cfg.reconnect_after_ns),
            ConnState::Backoff => Some(self.backoff_until_ns),
        }
    }

    /// The delay before attempt `attempt` (1-based): `base·2^(attempt-1)` capped at the maximum,
    /// then "equal jitter": uniformly in `[d/2, d]`.
    fn backoff_delay(&mut self) -> u64 {
        let exp = self.attempt.saturating_sub(1).min(40);
        let d = self
            .cfg
            .backoff_base_ns
            .saturating_mul(1u64 << exp)
            .min(self.cfg.backoff_max_ns);
        self.rng.u64(d / 2..=d)
    }

    fn enter_backoff(&mut self, now_ns: u64, command: Option<ConnCommand>) -> Step {
        self.attempt = self.attempt.saturating_add(1);
        self.backoff_until_ns = now_ns + self.backoff_delay();
        self.enter(ConnState::Backoff, now_ns);
        Step {
            status: Some(FeedState::Disconnected),
            command,
        }
    }

    fn enter(&mut self, state: ConnState, now_ns: u64) {
        self.state = state;
        self.entered_ns = now_ns;
    }

    /// Handles one event at `now_ns` (monotonic ns).
    pub fn handle(&mut self, event: ConnEvent, now_ns: u64) -> Step {
        use ConnState as S;
        let status = |s| Step {
            status: Some(s),
            command: None,
        };
        match (self.state, event) {
            (S::Idle, ConnEvent::Start) => {
                self.enter(S::Connecting, now_ns);
                Step {
                    status: None,
                    command: Some(ConnCommand::Connect),
                }
            }
            (S::Connecting, ConnEvent::Connected) => {
                self.enter(S::Subscribing, now_ns);
                self.last_data_ns = now_ns;
                Step {
                    status: Some(FeedState::Connected),
                    command: Some(ConnCommand::Subscribe),
                }
            }
            (S::Connecting, ConnEvent::ConnectFailed | ConnEvent::Closed) => {
                self.enter_backoff(now_ns, None)
            }
            (S::Subscribing, ConnEvent::Subscribed) => {
                self.enter(S::Subscribed, now_ns);
                status(FeedState::Subscribed)
            }
            (S::Subscribing | S::Subscribed | S::Stale, ConnEvent::Data) => {
                self.last_data_ns = now_ns;
                self.attempt = 0;
                self.enter(S::Live, now_ns);
                status(FeedState::Live)
            }
            (S::Live, ConnEvent::Data) => {
                self.last_data_ns = now_ns;
                Step::default()
            }
            (S::Live, ConnEvent::Gap) => status(FeedState::GapDetected),
            (S::Live, ConnEvent::Resynced) => status(FeedState::Resynced),
            (S::Subscribing | S::Subscribed | S::Live | S::Stale, ConnEvent::Closed) => {
                self.enter_backoff(now_ns, None)
            }
            (S::Connecting, ConnEvent::Tick)
                if now_ns >= self.entered_ns + self.cfg.connect_timeout_ns =>
            {
                self.enter_backoff(now_ns, Some(ConnCommand::Close))
            }
            (S::Subscribing | S::Subscribed, ConnEvent::Tick)
                if now_ns >= self.entered_ns + self.cfg.subscribe_timeout_ns =>
            {
                self.enter_backoff(now_ns, Some(ConnCommand::Close))
            }
            (S::Live, ConnEvent::Tick) if now_ns >= self.last_data_ns + self.cfg.stale_after_ns => {
                self.enter(S::Stale, now_ns);
                status(FeedState::Stale)
            }
            (S::Stale, ConnEvent::Tick)
                if now_ns >= self.last_data_ns + self.cfg.reconnect_after_ns =>
            {
                self.enter_backoff(now_ns, Some(ConnCommand::Close))
            }
            (S::Backoff, ConnEvent::Tick) if now_ns >= self.backoff_until_ns => {
                self.reconnects += 1;
                self.enter(S::Connecting, now_ns);
                Step {
                    status: None,
                    command: Some(ConnCommand::Connect),
                }
            }
            _ => Step::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn full_cycle_with_stale_and_backoff() {
        let cfg = ConnConfig::default();
        let mut m = ConnMachine::new(cfg, 42);
        assert_eq!(
            m.handle(ConnEvent::Start, 0).command,
            Some(ConnCommand::Connect)
        );
        let s = m.handle(ConnEvent::Connected, S);
        assert_eq!(
            (s.status, s.command),
            (Some(FeedState::Connected), Some(ConnCommand::Subscribe))
        );
        assert_eq!(
            m.handle(ConnEvent::Subscribed, S).status,
            Some(FeedState::Subscribed)
        );
        assert_eq!(
            m.handle(ConnEvent::Data, 2 * S).status,
            Some(FeedState::Live)
        );
        assert_eq!(m.handle(ConnEvent::Data, 3 * S), Step::default());
        assert_eq!(m.next_deadline(), Some(3 * S + cfg.stale_after_ns));
        assert_eq!(m.handle(ConnEvent::Tick, 4 * S), Step::default());
        assert_eq!(
            m.handle(ConnEvent::Tick, 8 * S).status,
            Some(FeedState::Stale)
        );
        assert_eq!(
            m.handle(ConnEvent::Data, 9 * S).status,
            Some(FeedState::Live)
        );
        assert_eq!(
            m.handle(ConnEvent::Tick, 14 * S).status,
            Some(FeedState::Stale)
        );
        let s = m.handle(ConnEvent::Tick, 39 * S);
        assert_eq!(
            (s.status, s.command),
            (Some(FeedState::Disconnected), Some(ConnCommand::Close))
        );
        assert_eq!(m.state(), ConnState::Backoff);
        let until = m.next_deadline().unwrap();
        let delay = until - 39 * S;
        assert!(
            (cfg.backoff_base_ns / 2..=cfg.backoff_base_ns).contains(&delay),
            "{delay}"
        );
        assert_eq!(m.handle(ConnEvent::Tick, until - 1), Step::default());
        assert_eq!(
            m.handle(ConnEvent::Tick, until).command,
            Some(ConnCommand::Connect)
        );
        assert_eq!(m.reconnects(), 1);
    }

    #[test]
    fn backoff_grows_exponentially_and_caps() {
        let cfg = ConnConfig::default();
        let mut m = ConnMachine::new(cfg, 7);
        m.handle(ConnEvent::Start, 0);
        let mut now = 0;
        let mut last_delay = 0;
        for attempt in 1..=12u32 {
            let s = m.handle(ConnEvent::ConnectFailed, now);
            assert_eq!(s.status, Some(FeedState::Disconnected));
            let until = m.next_deadline().unwrap();
            let delay = until - now;
            let full = (cfg.backoff_base_ns << (attempt - 1)).min(cfg.backoff_max_ns);
            assert!(
                delay >= full / 2 && delay <= full,
                "attempt {attempt}: {delay}"
            );
            assert!(delay >= last_delay / 2);
            last_delay = delay;
            now = until;
            assert_eq!(
                m.handle(ConnEvent::Tick, now).command,
                Some(ConnCommand::Connect)
            );
        }
        assert!(last_delay <= cfg.backoff_max_ns);
        // A successful connection resets the attempt counter.
        m.handle(ConnEvent::Connected, now);
        m.handle(ConnEvent::Data, now);
        m.handle(ConnEvent::Closed, now);
        assert!(m.next_deadline().unwrap() - now <= cfg.backoff_base_ns);
    }

    #[test]
    fn subscribe_timeout_and_gap_statuses() {
        let mut m = ConnMachine::new(ConnConfig::default(), 1);
        m.handle(ConnEvent::Start, 0);
        m.handle(ConnEvent::Connected, 0);
        let s = m.handle(ConnEvent::Tick, 10 * S);
        assert_eq!(s.command, Some(ConnCommand::Close));
        let until = m.next_deadline().unwrap();
        m.handle(ConnEvent::Tick, until);
        m.handle(ConnEvent::Connected, until);
        m.handle(ConnEvent::Data, until);
        assert_eq!(
            m.handle(ConnEvent::Gap, until).status,
            Some(FeedState::GapDetected)
        );
        assert_eq!(
            m.handle(ConnEvent::Resynced, until).status,
            Some(FeedState::Resynced)
        );
    }
}
