//! Exec inside `ringbolt trade` (the loop's live and paper [`crate::reflex::OrderSink`]): fired
//! decisions become CLOB orders on the reflex thread.
//!
//! The reflex thread owns the [`OrderClient`] (one warm HTTP/2 connection on the io_uring
//! driver). For each window it learns both outcome tokens from the bus instrument table
//! (`<slug>/<up|down>/<token_id>`) and builds a [`PresignedPool`] for them, refilled by a
//! background thread; a fired intent picks its slot in O(1), the L2 HMAC is computed over a
//! fresh timestamp, and the request bytes go to the ring. The decision record carries the
//! client order id exec assigned, then every order transition follows on the same output ring.
//!
//! Paper mode is the default: pools sign size-zero orders and the client's paper guard refuses
//! anything else, so the venue rejects every paper order (`Size (0) lower than the minimum`).
//! Live mode needs `ringbolt trade --live`, a key file, every risk limit, `journal_path` and
//! `user_ws_url`.
//!
//! Live truth (ADR 0017): the trade process owns the authenticated user
//! channel (`[exec] user_ws_url`) on the order client's io_uring driver; its events become order
//! transitions and `Fill` records on the same output ring (fills only from trades: provisional,
//! confirmed, or failed and reverted), positions and cash follow from those records
//! ([`ringbolt_exec::ledger::Ledger`]). Every (re)connect reconciles over REST. Money controls
//! survive restarts (`journal_path`); the kill switch trips on the kill file **or SIGUSR1**
//! and cancels everything once; the venue heartbeat is on by default in live mode
//! (`heartbeat_ms`, default 5000 live / off in paper).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ringbolt_bus::{Decision, MarketParamsBody, Record, RecordKind, Side, Venue};
use ringbolt_decide::engine::OrderIntent as DecideIntent;
use ringbolt_exec::amounts::{Decimal, OrderSide, TickSize};
use ringbolt_exec::auth::L2Signer;
use ringbolt_exec::client::{
    ClientConfig, OrderClient, OrderTicket, SubmitError, create_or_derive_api_creds,
};
use ringbolt_exec::fills::TokenInfo;
use ringbolt_exec::journal::Journal;
use ringbolt_exec::keys::PrivateKey;
use ringbolt_exec::ledger::Ledger;
use ringbolt_exec::order::OrderType;
use ringbolt_exec::pool::{Miss, PoolConfig, PoolToken, PresignedPool, RefillHandle, SlotKey};
use ringbolt_exec::risk::{KillSwitch, LiveOptIn, RiskGate, RiskLimits, TradingMode};
use ringbolt_market::{InstrumentName, MarketParams};
use ringbolt_telemetry::now_ns;
use serde::{Deserialize, Serialize};

/// `[exec]` section of the trade configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecSection {
    /// Send orders at all (paper mode still takes the whole wire path).
    pub enabled: bool,
    /// CLOB host (TLS SNI and `:authority`).
    pub host: String,
    /// CLOB port.
    pub port: u16,
    /// Extra CA to trust (PEM), e.g. the emulator's `ca.pem`; unset = public roots only.
    pub ca_file: Option<PathBuf>,
    /// Hex private key file (must not be readable by group or others).
    pub key_file: Option<PathBuf>,
    /// Chain id (137 Polygon).
    pub chain_id: u64,
    /// L1 API-key nonce.
    pub nonce: u64,
    /// `POST /v1/heartbeats` interval (ms); 0 = none. Unset: 5000 in live mode (the venue cancels
    /// everything when heartbeats stop), none in paper mode.
    pub heartbeat_ms: Option<u64>,
    /// The authenticated user channel (`wss://ws-subscriptions-clob.polymarket.com/ws/user`);
    /// required in live mode (fills come only from it).
    pub user_ws_url: Option<String>,
    /// The money-control journal (spend reservations, open orders); required in live mode.
    pub journal_path: Option<PathBuf>,
    /// Trip the kill switch on SIGUSR1 (default true).
    pub kill_on_sigusr1: bool,
    /// Pool: price levels on each side of the centre.
    pub levels_each_side: u32,
    /// Pool: sizes in shares (decimal strings).
    pub sizes: Vec<String>,
    /// Tick size of the markets until the bus states one (`MarketParams` records: Gamma at
    /// discovery, `tick_size_change`).
    pub tick_size: TickSize,
    /// Neg-risk exchange.
    pub neg_risk: bool,
    /// Exchange version (2, or 3 for Gamma `version: "v2"` markets).
    pub exchange_version: u8,
    /// Time in force of pooled orders (GTC, GTD, FOK, FAK).
    pub order_type: String,
    /// Re-sign grids older than this (ms).
    pub max_age_ms: u64,
    /// A file whose existence trips the kill switch.
    pub kill_file: Option<PathBuf>,
    /// Risk limits (all required for live mode).
    pub risk: RiskLimits,
}

impl Default for ExecSection {
    fn default() -> Self {
        Self {
            enabled: false,
            host: "clob.polymarket.com".into(),
            port: 443,
            ca_file: None,
            key_file: None,
            chain_id: 137,
            nonce: 0,
            heartbeat_ms: None,
            user_ws_url: None,
            journal_path: None,
            kill_on_sigusr1: true,
            levels_each_side: 16,
            sizes: vec!["5".into(), "10".into(), "25".into()],
            tick_size: MarketParams::default().tick_size,
            neg_risk: false,
            exchange_version: 2,
            order_type: "FAK".into(),
            max_age_ms: 60_000,
            kill_file: None,
            risk: RiskLimits::default(),
        }
    }
}

/// Live-mode default of `heartbeat_ms`.
pub const LIVE_HEARTBEAT_MS: u64 = 5_000;

/// A token seen before its window's other one: (engine id, bus id, token id).
type PendingToken = (u32, u32, String);

/// Windows kept waiting for their second token (a window's tokens arrive within seconds).
const MAX_PENDING_WINDOWS: usize = 4;

/// Windows younger than this stay open in the ledger (fills can still be confirmed or fail).
const LEDGER_KEEP_S: i64 = 3600;

/// Pools kept: the current and next windows and the one just ended.
pub const MAX_POOLS: usize = 3;

struct WindowPool {
    pool: Arc<PresignedPool>,
    _refill: RefillHandle,
    /// The window's tick (a `tick_size_change` re-grids the pool).
    tick: TickSize,
    /// Token ids (up, down), to rebuild the pool.
    token_ids: [String; 2],
    /// Engine-space instrument id → token index in the pool.
    tokens: [(u32, usize); 2],
    /// The tokens' bus instrument ids (up, down): what records about them carry.
    bus_ids: [u32; 2],
}

/// Counters for the trade summary.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct ExecCounters {
    /// Intents handed to exec.
    pub intents: u64,
    /// Orders submitted to the connection.
    pub submitted: u64,
    /// No pool for the intent's window yet.
    pub no_pool: u64,
    /// Pool misses: grid not signed yet.
    pub pool_not_ready: u64,
    /// Pool misses: price or size outside the current grid.
    pub pool_out_of_grid: u64,
    /// Pool misses: slot already used (re-signing).
    pub pool_taken: u64,
    /// Refused by risk / kill switch / paper guard / not sent.
    pub refused: u64,
    /// Not sent: the decided price is off the market's tick grid (or outside its range); a
    /// price is never truncated onto the grid.
    pub off_tick: u64,
    /// Pools built.
    pub pools_built: u64,
    /// Pools re-gridded after a tick-size change.
    pub regrids: u64,
    /// Resting orders cancelled because they no longer fit the new tick.
    pub off_grid_cancels: u64,
    /// `MarketParams` records seen for traded tokens.
    pub params_records: u64,
    /// `MarketParams` records whose tick is not one Polymarket uses (ignored).
    pub bad_params: u64,
    /// Kill-switch cancel-alls that could not be sent (retried on the next poll).
    pub kill_cancel_retries: u64,
}

/// `price_e8` in ticks of `tick`, or `None` when the price is off the grid or out of range
/// (`Tick::check`): an off-tick decided price is refused, never truncated.
fn price_ticks(tick: TickSize, price_e8: i64) -> Option<u32> {
    tick.check(price_e8).ok()?;
    u32::try_from(price_e8 / tick.e8()).ok()
}

/// The exec side of the trade process.
pub struct Exec {
    client: OrderClient,
    cfg: ExecSection,
    key: Arc<PrivateKey>,
    owner: String,
    pool_cfg: PoolConfig,
    tick: TickSize,
    sizes_e8: Vec<i64>,
    /// Window start → pool.
    pools: BTreeMap<i64, WindowPool>,
    /// Window start → (up, down) tokens, until both are known.
    pending: BTreeMap<i64, [Option<PendingToken>; 2]>,
    /// Window start → tick stated on the bus before the window's pool was built.
    window_ticks: BTreeMap<i64, TickSize>,
    transitions: Vec<Record>,
    /// Counters.
    pub counters: ExecCounters,
    killed_handled: bool,
    /// Positions and cash from the fills this process published.
    ledger: Ledger,
}

impl std::fmt::Debug for Exec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exec")
            .field("mode", &self.client.mode())
            .field("pools", &self.pools.len())
            .finish_non_exhaustive()
    }
}

fn dec(s: &str, what: &str) -> Result<Decimal> {
    s.parse::<Decimal>()
        .map_err(|e| anyhow::anyhow!("[exec] {what} {s:?}: {e}"))
}

fn dec_e8(d: Decimal) -> Result<i64> {
    if d.scale > 8 {
        bail!("more than 8 decimals");
    }
    let v = d.mantissa * 10u128.pow(8 - d.scale);
    i64::try_from(v).context("value too large")
}

/// The risk gate: limits, kill switch (file and SIGUSR1), and in live mode the journal.
fn arm_gate(cfg: &ExecSection, mode: TradingMode) -> Result<RiskGate> {
    let kill = KillSwitch::new();
    if let Some(path) = &cfg.kill_file {
        kill.watch_file(path.clone(), Duration::from_millis(100))
            .context("[exec] watching the kill file")?;
    }
    if cfg.kill_on_sigusr1 {
        kill.trip_on_signal(ringbolt_exec::risk::KILL_SIGNAL)
            .context("[exec] SIGUSR1 handler")?;
    }
    let mut gate = RiskGate::new(mode, cfg.risk, kill).context("[exec] risk limits")?;
    if mode == TradingMode::Live {
        if cfg.user_ws_url.is_none() {
            bail!("[exec] user_ws_url is required in live mode (fills come only from it)");
        }
        let path = cfg
            .journal_path
            .as_ref()
            .context("[exec] journal_path is required in live mode (caps survive restarts)")?;
        let (journal, rec) = Journal::open(path).context("[exec] journal_path")?;
        if rec.skips.torn_tail + rec.skips.bad_checksum > 0 {
            tracing::warn!(
                torn_tail = rec.skips.torn_tail,
                bad_checksum = rec.skips.bad_checksum,
                "journal records skipped"
            );
        }
        let now_s = u64::try_from(now_ns() / 1_000_000_000).unwrap_or(0);
        gate.attach_journal(journal, &rec, now_s);
        let (w, d) = gate.used();
        tracing::info!(
            window_used_micros = w,
            day_used_micros = d,
            open = gate.open_orders(),
            "money controls restored from the journal"
        );
    }
    Ok(gate)
}

/// The order client's configuration from `[exec]`: heartbeat on by default in live mode.
fn client_config(cfg: &ExecSection, mode: TradingMode) -> Result<ClientConfig> {
    let mut client_cfg = ClientConfig::polymarket();
    client_cfg.host.clone_from(&cfg.host);
    client_cfg.port = cfg.port;
    if let Some(ca) = &cfg.ca_file {
        client_cfg.extra_ca_pem =
            Some(std::fs::read(ca).with_context(|| format!("[exec] reading {}", ca.display()))?);
    }
    let heartbeat_ms = cfg.heartbeat_ms.unwrap_or(match mode {
        TradingMode::Live => LIVE_HEARTBEAT_MS,
        TradingMode::Paper => 0,
    });
    if heartbeat_ms > 0 {
        client_cfg.heartbeat_interval = Some(Duration::from_millis(heartbeat_ms));
    } else if mode == TradingMode::Live {
        tracing::warn!("[exec] heartbeat_ms = 0 in live mode: the venue will not cancel on loss");
    }
    Ok(client_cfg)
}

impl Exec {
    /// Connects to the CLOB (deriving API credentials through the L1 flow) and arms the risk gate.
    /// `live` is the operator's `--live` flag.
    pub fn start(cfg: &ExecSection, live: bool) -> Result<Self> {
        let key_file = cfg
            .key_file
            .as_ref()
            .context("[exec] key_file is required (paper mode signs too: real wire path)")?;
        let key = Arc::new(
            PrivateKey::from_file(key_file)
                .with_context(|| format!("[exec] key file {}", key_file.display()))?,
        );
        let mode = if live {
            TradingMode::live(LiveOptIn::operator_passed_live_flag())
        } else {
            TradingMode::Paper
        };
        let gate = arm_gate(cfg, mode)?;
        let client_cfg = client_config(cfg, mode)?;
        let creds = create_or_derive_api_creds(&client_cfg, &key, cfg.chain_id, cfg.nonce)
            .with_context(|| format!("[exec] API key from {}:{}", cfg.host, cfg.port))?;
        let owner = creds.api_key.clone();
        let signer = L2Signer::new(&key.address(), creds).context("[exec] L2 signer")?;
        let mut client = OrderClient::connect(&client_cfg, signer, gate)
            .with_context(|| format!("[exec] connecting to {}:{}", cfg.host, cfg.port))?;
        if let Some(url) = &cfg.user_ws_url {
            client
                .connect_user(url)
                .with_context(|| format!("[exec] user channel {url}"))?;
        }
        let tick = cfg.tick_size;
        let sizes = cfg
            .sizes
            .iter()
            .map(|s| dec(s, "sizes"))
            .collect::<Result<Vec<_>>>()?;
        let sizes_e8 = sizes
            .iter()
            .map(|d| dec_e8(*d))
            .collect::<Result<Vec<_>>>()?;
        let mut pool_cfg = PoolConfig::default_198();
        pool_cfg.levels_each_side = cfg.levels_each_side;
        pool_cfg.sizes = sizes;
        pool_cfg.order_type = cfg
            .order_type
            .parse::<OrderType>()
            .map_err(|e| anyhow::anyhow!("[exec] order_type {:?}: {e}", cfg.order_type))?;
        pool_cfg.max_age_ms = cfg.max_age_ms;
        pool_cfg.chain_id = cfg.chain_id;
        pool_cfg.mode = mode;
        tracing::info!(
            mode = ?mode,
            host = %cfg.host,
            port = cfg.port,
            "exec connected"
        );
        Ok(Self {
            client,
            cfg: cfg.clone(),
            key,
            owner,
            pool_cfg,
            tick,
            sizes_e8,
            pools: BTreeMap::new(),
            pending: BTreeMap::new(),
            window_ticks: BTreeMap::new(),
            transitions: Vec::with_capacity(256),
            counters: ExecCounters::default(),
            killed_handled: false,
            ledger: Ledger::new(),
        })
    }

    /// A Polymarket instrument appeared on the bus (engine-space id, bus id, bus name). Off the
    /// hot path: once both tokens of a window are known, its pool is built and its refill thread
    /// started.
    pub fn on_instrument(&mut self, engine_id: u32, bus_id: u32, venue: Venue, name: &str) {
        if venue != Venue::Polymarket {
            return;
        }
        let Ok(InstrumentName {
            window_start_s,
            outcome,
            token_id,
        }) = InstrumentName::parse(name)
        else {
            return;
        };
        if self.pools.contains_key(&window_start_s) {
            return;
        }
        let entry = self.pending.entry(window_start_s).or_default();
        entry[outcome.index()] = Some((engine_id, bus_id, token_id.to_owned()));
        let both = entry.clone();
        // Bounded: windows whose second token never came are dropped oldest first.
        while self.pending.len() > MAX_PENDING_WINDOWS {
            self.pending.pop_first();
        }
        if let [Some(up), Some(down)] = both {
            self.pending.remove(&window_start_s);
            let token_ids = [up.2.clone(), down.2.clone()];
            let tick = self
                .window_ticks
                .get(&window_start_s)
                .copied()
                .unwrap_or(self.tick);
            match self.build_pool(&token_ids, tick) {
                Ok((pool, refill)) => {
                    self.counters.pools_built += 1;
                    for (outcome, bus_id) in [(0u8, up.1), (1, down.1)] {
                        self.client.register_token(
                            bus_id,
                            &token_ids[usize::from(outcome)],
                            TokenInfo {
                                window_start_s,
                                outcome,
                            },
                        );
                    }
                    self.pools.insert(
                        window_start_s,
                        WindowPool {
                            pool,
                            _refill: refill,
                            tick,
                            token_ids,
                            tokens: [(up.0, 0), (down.0, 1)],
                            bus_ids: [up.1, down.1],
                        },
                    );
                    // Keep the current and next windows only.
                    while self.pools.len() > MAX_POOLS {
                        self.pools.pop_first();
                    }
                    // Fills of windows an hour old are final: fold them into the ledger's
                    // closed totals (bounded state, ADR 0024).
                    self.ledger
                        .close_windows_before(window_start_s - LEDGER_KEEP_S);
                }
                Err(e) => tracing::warn!("pool for window {window_start_s}: {e:#}"),
            }
        }
    }

    /// A token's market parameters from the bus (engine-space id): a tick other than the one its
    /// window's pool is signed on re-grids the pool ([`Exec::on_tick_size_change`]); for a window
    /// whose pool is not built yet the tick is kept for the build. Returns the cancels sent.
    pub fn on_market_params(&mut self, engine_id: u32, body: &MarketParamsBody) -> usize {
        let Some(tick) = TickSize::from_e8(body.tick_size) else {
            if body.tick_size != 0 {
                self.counters.bad_params += 1;
            }
            return 0;
        };
        self.counters.params_records += 1;
        let pooled = self
            .pools
            .iter()
            .find(|(_, wp)| wp.tokens.iter().any(|(id, _)| *id == engine_id))
            .map(|(w, _)| *w);
        if let Some(window_start_s) = pooled {
            return self.on_tick_size_change(window_start_s, tick);
        }
        let pending = self
            .pending
            .iter()
            .find(|(_, e)| e.iter().flatten().any(|(id, _, _)| *id == engine_id))
            .map(|(w, _)| *w);
        if let Some(w) = pending.or((body.window_start_s != 0).then_some(body.window_start_s)) {
            self.window_ticks.insert(w, tick);
            while self.window_ticks.len() > 4 {
                self.window_ticks.pop_first();
            }
        }
        0
    }

    /// A `tick_size_change` for a window's tokens (cold path): the window's pool is re-signed on
    /// the new grid and every resting order of the window whose price is off it is cancelled.
    /// Returns the number of cancels sent.
    pub fn on_tick_size_change(&mut self, window_start_s: i64, tick: TickSize) -> usize {
        let Some(wp) = self.pools.get(&window_start_s) else {
            return 0;
        };
        if wp.tick == tick {
            return 0;
        }
        let token_ids = wp.token_ids.clone();
        let instruments: Vec<u32> = wp.bus_ids.to_vec();
        match self.build_pool(&token_ids, tick) {
            Ok((pool, refill)) => {
                if let Some(wp) = self.pools.get_mut(&window_start_s) {
                    wp.pool = pool;
                    wp._refill = refill;
                    wp.tick = tick;
                }
                self.counters.regrids += 1;
            }
            Err(e) => tracing::warn!("re-gridding window {window_start_s}: {e:#}"),
        }
        let off = ringbolt_exec::pool::resting_off_grid(self.client.core(), &instruments, tick);
        for coid in &off {
            if self.client.cancel_client_order(*coid).is_ok() {
                self.counters.off_grid_cancels += 1;
            }
        }
        off.len()
    }

    fn build_pool(
        &self,
        token_ids: &[String; 2],
        tick: TickSize,
    ) -> Result<(Arc<PresignedPool>, RefillHandle)> {
        let token = |id: &str| PoolToken {
            token_id: id.to_owned(),
            tick,
            neg_risk: self.cfg.neg_risk,
            exchange_version: self.cfg.exchange_version,
        };
        let pool = Arc::new(PresignedPool::new(
            self.pool_cfg.clone(),
            Arc::clone(&self.key),
            self.owner.clone(),
            vec![token(&token_ids[0]), token(&token_ids[1])],
        )?);
        // The refill keeps each grid's L2 signatures ready for this second and the next.
        pool.presign_auth(self.client.signer().clone());
        // Centre both grids at 0.50 until decisions move them.
        let mid = u32::try_from(50_000_000 / tick.e8()).unwrap_or(1);
        pool.set_center(0, mid);
        pool.set_center(1, mid);
        let refill = pool
            .spawn_refill()
            .context("starting the pool refill thread")?;
        Ok((pool, refill))
    }

    /// Keeps the grid of `decision`'s token centred on the price the core looks at (called for
    /// every decision, fired or not; an atomic store).
    pub fn track(&self, decision: &Record, engine_instrument: u32) {
        let Some(d) = decision.body_as::<Decision>() else {
            return;
        };
        if d.price <= 0 {
            return;
        }
        for wp in self.pools.values().rev() {
            if let Some(&(_, t)) = wp.tokens.iter().find(|(id, _)| *id == engine_instrument) {
                let ticks = u32::try_from(d.price / wp.tick.e8()).unwrap_or(0);
                wp.pool.set_center(t, ticks);
                return;
            }
        }
    }

    /// Records the order path's stages with `recorder` (the trade process's telemetry).
    pub fn set_recorder(&mut self, recorder: ringbolt_telemetry::StageRecorder) {
        self.client.set_recorder(recorder);
    }

    /// The hot path: a fired intent becomes an order under the decision's client order id;
    /// transitions wait in a buffer for [`Exec::flush`] (published after the decision).
    pub fn submit(&mut self, intent: &DecideIntent) {
        self.counters.intents += 1;
        let Some(wp) = self.pools.get(&intent.window_start_s) else {
            self.counters.no_pool += 1;
            return;
        };
        let Some(&(_, token)) = wp.tokens.iter().find(|(id, _)| *id == intent.instrument) else {
            self.counters.no_pool += 1;
            return;
        };
        let bus_instrument = wp.bus_ids[token];
        let side = match intent.side {
            Side::Sell => OrderSide::Sell,
            _ => OrderSide::Buy,
        };
        let Some(price_ticks) = price_ticks(wp.tick, intent.price) else {
            self.counters.off_tick += 1;
            return;
        };
        // The largest pooled size not above the intent's size (else the smallest).
        let size_index = self
            .sizes_e8
            .iter()
            .enumerate()
            .filter(|(_, s)| **s <= intent.size)
            .max_by_key(|(_, s)| **s)
            .map_or(0, |(i, _)| i);
        let size_e8 = self.sizes_e8.get(size_index).copied().unwrap_or(0);
        let notional_micros = (i128::from(intent.price) * i128::from(size_e8) / 10_000_000_000)
            .clamp(0, i128::from(u64::MAX)) as u64;
        let key = SlotKey::new(token, side, price_ticks, size_index as u16);
        let order = OrderTicket {
            instrument: bus_instrument,
            side: intent.side,
            price_e8: intent.price,
            size_e8,
            notional_micros,
        };
        let pool = Arc::clone(&wp.pool);
        match self.client.submit_with_id(
            intent.client_order_id,
            &pool,
            key,
            order,
            &mut self.transitions,
        ) {
            Ok(_) => self.counters.submitted += 1,
            Err(SubmitError::Pool(miss)) => match miss {
                Miss::NotReady => self.counters.pool_not_ready += 1,
                Miss::Taken => self.counters.pool_taken += 1,
                Miss::OutOfGrid | Miss::NoToken => self.counters.pool_out_of_grid += 1,
            },
            Err(SubmitError::Refused { .. } | SubmitError::NotSent { .. }) => {
                self.counters.refused += 1;
            }
            Err(SubmitError::PaperGuard(_)) => self.counters.refused += 1,
        }
    }

    /// Requests sent and not yet answered.
    #[inline]
    #[must_use]
    pub fn awaiting(&self) -> bool {
        self.client.in_flight() > 0
    }

    /// Drives the connection (responses, keep-alive, reconnect) without waiting, and handles the
    /// kill switch (cancel everything once).
    pub fn poll(&mut self) {
        if let Err(e) = self.client.poll(Duration::ZERO, &mut self.transitions) {
            tracing::warn!("exec connection: {e}");
        }
        // Completions already became transition records; a replaced connection is worth a line
        // (cold path: at most one per reconnect).
        for event in self.client.events() {
            if let ringbolt_exec::client::ClientEvent::Reconnected { reason } = event {
                tracing::warn!(%reason, "exec connection replaced");
            }
        }
        if !self.killed_handled && self.client.gate_mut().kill_switch().is_tripped() {
            // Once: `DELETE /cancel-all` is idempotent, but one request is enough; a send that
            // fails (connection down) is retried on a later poll.
            match self.client.cancel_all() {
                Ok(_) => {
                    self.killed_handled = true;
                    tracing::warn!("kill switch tripped: no new orders; cancel-all sent");
                }
                Err(e) => {
                    if self.counters.kill_cancel_retries == 0 {
                        tracing::warn!("cancel-all after kill switch: {e} (retrying)");
                    }
                    self.counters.kill_cancel_retries += 1;
                }
            }
        }
    }

    /// Hands the buffered transitions (stamped now) to `publish`; returns how many.
    pub fn flush(&mut self, mut publish: impl FnMut(&Record)) -> usize {
        let n = self.transitions.len();
        for r in &mut self.transitions {
            r.publish_ts_ns = now_ns();
            if r.kind == RecordKind::Fill as u8 {
                self.ledger.apply(r);
            }
            publish(r);
        }
        self.transitions.clear();
        n
    }

    /// Positions and cash per token from the fills published so far (instrument → shares,
    /// provisional shares, cash, fees; decimal strings at 1e-8).
    pub fn positions(&self) -> serde_json::Value {
        let e8 = |v: i64| format!("{:.8}", v as f64 / 1e8);
        self.ledger
            .tokens()
            .into_iter()
            .map(|(id, b)| {
                (
                    id.to_string(),
                    serde_json::json!({
                        "shares": e8(b.shares_e8),
                        "provisional_shares": e8(b.provisional_shares_e8),
                        "cash_usdc": e8(b.cash_usdc_e8),
                        "fees_usdc": e8(b.fees_usdc_e8),
                        "fills": b.fills,
                    }),
                )
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    }

    /// Summary for the trade report.
    pub fn summary(&self) -> serde_json::Value {
        let s = self.client.stats();
        serde_json::json!({
            "mode": format!("{:?}", self.client.mode()).to_lowercase(),
            "counters": self.counters,
            "orders_sent": s.orders_sent,
            "orders_refused": s.orders_refused,
            "orders_lost": s.orders_lost,
            "reconnects": s.reconnects,
            "heartbeats_sent": s.heartbeats_sent,
            "events_dropped": s.events_dropped,
            "backoffs": s.backoffs,
            "live": self.client.live_stats(),
            "fills": self.client.fill_counters(),
            "user_channel": {
                "events": self.client.user_parser().events,
                "skipped": self.client.user_parser().reasons().iter()
                    .map(|(n, c)| ((*n).to_owned(), *c))
                    .collect::<BTreeMap<String, u64>>(),
            },
            "open_orders": self.client.gate().open_orders(),
            "spend_micros": self.client.gate().used(),
            "positions": self.positions(),
            "venue_positions": self.client.venue_positions()
                .iter()
                .map(|(i, v)| (i.to_string(), format!("{:.8}", *v as f64 / 1e8)))
                .collect::<BTreeMap<String, String>>(),
        })
    }

    /// Live mode: cancel everything open before exit; the last transitions go to `publish`.
    pub fn shutdown(mut self, publish: impl FnMut(&Record)) {
        if self.client.mode() != TradingMode::Paper {
            let _ = self.client.cancel_all();
            for _ in 0..50 {
                let _ = self
                    .client
                    .poll(Duration::from_millis(10), &mut self.transitions);
            }
        }
        self.flush(publish);
        self.client.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_sizes_convert_to_fixed_point() {
        assert_eq!(dec_e8(dec("0.01", "t").unwrap()).unwrap(), 1_000_000);
        assert_eq!(dec_e8(dec("25", "t").unwrap()).unwrap(), 2_500_000_000);
        assert!(dec_e8(dec("0.000000001", "t").unwrap()).is_err());
    }

    #[test]
    fn an_off_tick_price_is_refused_not_truncated() {
        // 0.035 on tick 0.01 used to become 0.03.
        assert_eq!(price_ticks(TickSize::T0_01, 3_500_000), None);
        assert_eq!(price_ticks(TickSize::T0_01, 3_000_000), Some(3));
        assert_eq!(price_ticks(TickSize::T0_001, 3_500_000), Some(35));
        assert_eq!(price_ticks(TickSize::T0_01, 0), None, "out of range");
        assert_eq!(
            price_ticks(TickSize::T0_01, 100_000_000),
            None,
            "out of range"
        );
    }
}
