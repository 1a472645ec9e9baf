//! The pre-signed order pool.
//!
//! Per token, a grid of signed orders: side × price levels around the market × a few sizes
//! (e.g. 2 × 33 × 3 = 198 slots). A background thread signs grids off the hot path and
//! publishes them with an atomic pointer swap; it re-signs when the centre moves, when slots are
//! consumed, and when timestamps age. The hot path ([`PresignedPool::take`]) finds a slot by
//! index arithmetic (O(1)), claims it with one atomic swap (a signed order is single-use: the
//! venue rejects duplicates), and writes the request — body copy plus the per-request L2 HMAC
//! over the fresh timestamp — into a caller-owned [`RequestBuf`] without allocating.
//!
//! The L2 HMAC covers `timestamp + method + path + body` and the timestamp is in whole seconds,
//! so with the client's signer handed to the pool ([`PresignedPool::presign_auth`]) the refill
//! keeps every grid's signatures ready for the current and the next second (one table per second
//! parity); the hot path then copies the slot's 44-byte signature instead of hashing the body,
//! and computes it as before whenever the table is not for this second or this signer.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::{ArcSwap, ArcSwapOption};

use crate::Error;
use crate::amounts::{Decimal, OrderSide, TickSize};
use crate::auth::{HMAC_B64_LEN, L2Signer};
use crate::eip712::OrderDomain;
use crate::keys::PrivateKey;
use crate::order::{OrderSpec, OrderType, SignatureType, ZERO32};
use crate::request::{PATH_ORDER, RequestBuf};
use crate::risk::TradingMode;

/// One token the pool quotes.
#[derive(Debug, Clone)]
pub struct PoolToken {
    /// Token / position id (decimal text).
    pub token_id: String,
    /// Tick size.
    pub tick: TickSize,
    /// Neg-risk exchange.
    pub neg_risk: bool,
    /// 2 or 3.
    pub exchange_version: u8,
}

/// Pool configuration (TOML `[exec.pool]`).
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Price levels on each side of the centre (levels = 2 × this + 1).
    pub levels_each_side: u32,
    /// Sizes (shares) per level.
    pub sizes: Vec<Decimal>,
    /// Time in force of pooled orders.
    pub order_type: OrderType,
    /// Post-only.
    pub post_only: bool,
    /// GTD expiration (unix s), 0 for none.
    pub expiration: u64,
    /// Re-sign a grid whose orders are older than this (ms).
    pub max_age_ms: u64,
    /// How often the refill thread looks for work.
    pub poll_interval: Duration,
    /// Signature type.
    pub signature_type: SignatureType,
    /// Funder for signature types 1-3.
    pub funder: Option<String>,
    /// Builder code (bytes32 text).
    pub builder_code: String,
    /// Chain id.
    pub chain_id: u64,
    /// Paper (size zero on the wire) or live.
    pub mode: TradingMode,
}

impl PoolConfig {
    /// 2 sides × 33 levels × 3 sizes = 198 slots, GTC, paper mode.
    #[must_use]
    pub fn default_198() -> Self {
        let d = |m: u128| Decimal {
            mantissa: m,
            scale: 0,
        };
        PoolConfig {
            levels_each_side: 16,
            sizes: vec![d(5), d(10), d(25)],
            order_type: OrderType::Gtc,
            post_only: false,
            expiration: 0,
            max_age_ms: 60_000,
            poll_interval: Duration::from_millis(5),
            signature_type: SignatureType::Eoa,
            funder: None,
            builder_code: ZERO32.to_owned(),
            chain_id: 137,
            mode: TradingMode::Paper,
        }
    }

    /// Slots per token.
    #[must_use]
    pub fn slots_per_token(&self) -> usize {
        2 * (2 * self.levels_each_side as usize + 1) * self.sizes.len()
    }
}

/// One pre-signed order.
#[derive(Debug)]
pub struct Slot {
    body: Box<[u8]>,
    quote_free: bool,
    taken: AtomicBool,
    /// Order hash (the venue's order id).
    pub digest: [u8; 32],
    /// Price in tick units.
    pub price_ticks: u32,
    /// Nominal size index.
    pub size_index: u16,
    /// Side.
    pub side: OrderSide,
}

impl Slot {
    /// A slot off the price range (grid wider than the book): never takeable.
    fn off_range((side, price_ticks, size_index): (OrderSide, u32, u16)) -> Self {
        Slot {
            body: Box::new([]),
            quote_free: true,
            taken: AtomicBool::new(true),
            digest: [0; 32],
            price_ticks,
            size_index,
            side,
        }
    }

    /// The same signed order, untaken, for a new grid (the caller has claimed `self`).
    fn carried(&self) -> Self {
        Slot {
            body: self.body.clone(),
            quote_free: self.quote_free,
            taken: AtomicBool::new(false),
            digest: self.digest,
            price_ticks: self.price_ticks,
            size_index: self.size_index,
            side: self.side,
        }
    }
}

/// An immutable signed grid for one token (only the `taken` flags change).
#[derive(Debug)]
pub struct Grid {
    /// Centre in tick units.
    pub center_ticks: u32,
    lo_ticks: u32,
    levels: u32,
    sizes: u16,
    /// When signed (ms since the epoch).
    pub signed_at_ms: u64,
    slots: Box<[Slot]>,
    /// The slots' `POLY_SIGNATURE`s made ahead of time, for second `s` at `auth[s % 2]`.
    auth: [ArcSwapOption<AuthTable>; 2],
}

/// Every slot's `POLY_SIGNATURE` of `POST /order` at one timestamp, by one signer.
#[derive(Debug)]
struct AuthTable {
    /// The timestamp signed (unix s).
    second: u64,
    /// [`L2Signer::id`] of the signer.
    signer_id: u64,
    /// By slot index (empty slots: zeros, never used).
    sigs: Box<[[u8; HMAC_B64_LEN]]>,
}

impl Grid {
    #[inline]
    fn index(&self, side: OrderSide, price_ticks: u32, size_index: u16) -> Option<usize> {
        let level = price_ticks.checked_sub(self.lo_ticks)?;
        if level >= self.levels || size_index >= self.sizes {
            return None;
        }
        let s = usize::from(side.code());
        Some(
            (s * self.levels as usize + level as usize) * usize::from(self.sizes)
                + usize::from(size_index),
        )
    }

    /// Slots.
    #[must_use]
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// Slots still available.
    #[must_use]
    pub fn available(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| !s.taken.load(Ordering::Relaxed))
            .count()
    }
}

/// Why [`PresignedPool::take`] found nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    /// No such token index.
    NoToken,
    /// No grid signed yet.
    NotReady,
    /// The price/size is outside the current grid.
    OutOfGrid,
    /// The slot was already used; the refill thread will re-sign it.
    Taken,
}

/// Address of one slot: token index, side, price in ticks, size index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotKey {
    /// Token index (order given to [`PresignedPool::new`]).
    pub token: usize,
    /// Side.
    pub side: OrderSide,
    /// Price in tick units (price / tick).
    pub price_ticks: u32,
    /// Index into [`PoolConfig::sizes`].
    pub size_index: u16,
}

impl SlotKey {
    /// A key.
    #[must_use]
    pub const fn new(token: usize, side: OrderSide, price_ticks: u32, size_index: u16) -> Self {
        SlotKey {
            token,
            side,
            price_ticks,
            size_index,
        }
    }
}

/// What the hot path got.
#[derive(Debug, Clone, Copy)]
pub struct Taken {
    /// Order hash of the order written.
    pub digest: [u8; 32],
    /// When its grid was signed.
    pub signed_at_ms: u64,
    /// The request's L2 signature came from the pool's table for this second (else it was
    /// computed in `take`).
    pub auth_precomputed: bool,
}

struct TokenState {
    token: PoolToken,
    domain: OrderDomain,
    grid: ArcSwap<Option<Arc<Grid>>>,
    center_ticks: AtomicU32,
    taken_since_refill: AtomicU32,
}

/// Counters of the refill thread.
#[derive(Debug, Default)]
pub struct PoolStats {
    /// Orders signed.
    pub signed: AtomicU64,
    /// Total ns spent signing them.
    pub sign_ns: AtomicU64,
    /// Grids published.
    pub grids: AtomicU64,
    /// Per-second L2 signature tables made ([`PresignedPool::presign_auth`]).
    pub auth_tables: AtomicU64,
}

/// The pool. Shared between the refill thread and the hot path.
pub struct PresignedPool {
    cfg: PoolConfig,
    key: Arc<PrivateKey>,
    owner: String,
    tokens: Box<[TokenState]>,
    salt: AtomicU64,
    /// The client's L2 signer, when given: the refill makes the grids' signatures ahead of time.
    auth: OnceLock<L2Signer>,
    /// Refill statistics.
    pub stats: PoolStats,
}

impl std::fmt::Debug for PresignedPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresignedPool")
            .field("tokens", &self.tokens.len())
            .field("slots_per_token", &self.cfg.slots_per_token())
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl PresignedPool {
    /// A pool with no grids yet; call [`PresignedPool::set_center`] and refill (or
    /// [`PresignedPool::spawn_refill`]).
    /// `owner` is the API key sent as each order's `owner`.
    pub fn new(
        cfg: PoolConfig,
        key: Arc<PrivateKey>,
        owner: String,
        tokens: Vec<PoolToken>,
    ) -> Result<Self, Error> {
        if cfg.sizes.is_empty() || cfg.sizes.len() > usize::from(u16::MAX) {
            return Err(Error::BadField {
                field: "pool.sizes",
                reason: "between 1 and 65535 sizes".to_owned(),
            });
        }
        let states = tokens
            .into_iter()
            .map(|token| {
                let domain =
                    OrderDomain::new(cfg.chain_id, token.exchange_version, token.neg_risk)?;
                Ok(TokenState {
                    token,
                    domain,
                    grid: ArcSwap::from_pointee(None),
                    center_ticks: AtomicU32::new(0),
                    taken_since_refill: AtomicU32::new(0),
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(PresignedPool {
            cfg,
            key,
            owner,
            tokens: states.into_boxed_slice(),
            salt: AtomicU64::new(now_ms().wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            auth: OnceLock::new(),
            stats: PoolStats::default(),
        })
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &PoolConfig {
        &self.cfg
    }

    /// Moves token `t`'s grid centre (tick units); the refill thread re-signs around it.
    pub fn set_center(&self, t: usize, center_ticks: u32) {
        if let Some(s) = self.tokens.get(t) {
            s.center_ticks.store(center_ticks, Ordering::Relaxed);
        }
    }

    /// Current grid of token `t`.
    #[must_use]
    pub fn grid(&self, t: usize) -> Option<Arc<Grid>> {
        self.tokens.get(t).and_then(|s| (**s.grid.load()).clone())
    }

    fn next_salt(&self, now_ms: u64) -> u64 {
        // SplitMix64 over a counter, reduced like the reference (`random() * now_ms`): salts
        // stay below the current ms timestamp, i.e. well inside 2^53.
        let mut z = self
            .salt
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        1 + z % now_ms.max(2)
    }

    /// Signs one slot's order.
    fn sign_slot(
        &self,
        st: &TokenState,
        side: OrderSide,
        price_ticks: u32,
        size_index: u16,
        ts_ms: u64,
    ) -> Result<Slot, Error> {
        let rc = st.token.tick.round_config();
        let size = self.cfg.sizes[usize::from(size_index)];
        let spec = OrderSpec {
            side,
            market: false,
            price: Decimal {
                mantissa: u128::from(price_ticks) * st.token.tick.tick_units(),
                scale: rc.price_dp,
            },
            quantity: self.cfg.mode.wire_quantity(size),
            token_id: st.token.token_id.clone(),
            tick: st.token.tick,
            neg_risk: st.token.neg_risk,
            signature_type: self.cfg.signature_type,
            funder: self.cfg.funder.clone(),
            order_type: self.cfg.order_type,
            post_only: self.cfg.post_only,
            defer_exec: false,
            expiration: self.cfg.expiration,
            salt: self.next_salt(ts_ms),
            timestamp_ms: ts_ms,
            builder_code: self.cfg.builder_code.clone(),
            metadata: ZERO32.to_owned(),
            chain_id: self.cfg.chain_id,
            exchange_version: st.token.exchange_version,
        };
        let signed = spec.sign_in(&self.key, &st.domain)?;
        let body = signed.body(self.owner()).into_bytes().into_boxed_slice();
        Ok(Slot {
            quote_free: !body.contains(&b'\''),
            body,
            taken: AtomicBool::new(false),
            digest: signed.digest,
            price_ticks,
            size_index,
            side,
        })
    }

    fn owner(&self) -> &str {
        &self.owner
    }

    /// Builds a grid for token `t` around its centre, reusing `prev`'s untaken slots at the
    /// prices the new grid still holds while `prev` is young (younger than half of
    /// `max_age_ms`): a one-tick move of the centre signs only the level that enters, and the
    /// L2 signature tables of `prev` for this second and later are carried over the same way.
    /// Returns `None` if the centre is unset (0).
    ///
    /// Contract: every slot of the grid was signed no earlier than its `signed_at_ms` (a grid
    /// that reuses any slot is as old as `prev`).
    pub fn build_grid(&self, t: usize, prev: Option<&Grid>) -> Result<Option<Grid>, Error> {
        let Some(st) = self.tokens.get(t) else {
            return Ok(None);
        };
        let center = st.center_ticks.load(Ordering::Relaxed);
        if center == 0 {
            return Ok(None);
        }
        let max_ticks = (10u128.pow(st.token.tick.round_config().price_dp)
            / st.token.tick.tick_units()) as u32
            - 1; // 1 - tick
        let half = self.cfg.levels_each_side;
        let levels = 2 * half + 1;
        let lo = center
            .saturating_sub(half)
            .clamp(1, max_ticks.saturating_sub(levels - 1).max(1));
        let now = now_ms();
        let reuse = prev.filter(|g| now.saturating_sub(g.signed_at_ms) < self.cfg.max_age_ms / 2);
        let n_sizes = self.cfg.sizes.len() as u16;
        let keys: Vec<(OrderSide, u32, u16)> = [OrderSide::Buy, OrderSide::Sell]
            .into_iter()
            .flat_map(|side| {
                (lo..lo + levels).flat_map(move |p| (0..n_sizes).map(move |z| (side, p, z)))
            })
            .collect();
        let old_index = |(side, price_ticks, size_index): (OrderSide, u32, u16)| {
            let g = reuse?;
            g.index(side, price_ticks, size_index).map(|i| (g, i))
        };
        // First sign what enters (the old grid stays whole meanwhile: `take` still finds every
        // slot of it), then claim the old slots carried over in one quick pass, so that a
        // racing `take` on the old grid cannot use a signed order the new grid offers; a slot
        // taken since the first pass is signed then.
        let mut slots: Vec<Option<Slot>> = Vec::with_capacity(keys.len());
        for &key in &keys {
            slots.push(match old_index(key) {
                _ if key.1 > max_ticks => Some(Slot::off_range(key)),
                Some((g, i)) if !g.slots[i].taken.load(Ordering::Acquire) => None,
                _ => Some(self.sign_timed(st, key, now)?),
            });
        }
        // For each new slot, the index of the old slot it carries over.
        let mut carried = vec![None; keys.len()];
        for ((slot, &key), from) in slots.iter_mut().zip(&keys).zip(&mut carried) {
            if slot.is_some() {
                continue;
            }
            *slot = Some(match old_index(key) {
                Some((g, i)) if !g.slots[i].taken.swap(true, Ordering::AcqRel) => {
                    *from = Some(i);
                    g.slots[i].carried()
                }
                _ => self.sign_timed(st, key, now)?,
            });
        }
        let slots: Vec<Slot> = slots.into_iter().flatten().collect();
        debug_assert_eq!(slots.len(), keys.len(), "every key has its slot");
        // The grid the slots came from, if any did.
        let source = reuse.filter(|_| carried.iter().any(Option::is_some));
        let grid = Grid {
            center_ticks: center,
            lo_ticks: lo,
            levels,
            sizes: n_sizes,
            signed_at_ms: source.map_or(now, |g| g.signed_at_ms),
            slots: slots.into_boxed_slice(),
            auth: [ArcSwapOption::empty(), ArcSwapOption::empty()],
        };
        if let Some(g) = source {
            self.carry_auth(g, &grid, &carried, now / 1000);
        }
        Ok(Some(grid))
    }

    /// Signs one slot and counts it in [`PoolStats`].
    fn sign_timed(
        &self,
        st: &TokenState,
        (side, price_ticks, size_index): (OrderSide, u32, u16),
        now_ms: u64,
    ) -> Result<Slot, Error> {
        let t0 = Instant::now();
        let s = self.sign_slot(st, side, price_ticks, size_index, now_ms)?;
        self.stats.signed.fetch_add(1, Ordering::Relaxed);
        self.stats
            .sign_ns
            .fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
        Ok(s)
    }

    /// Gives `new` the L2 signature tables of `old` for `now_s` and later, by the same signer:
    /// a carried slot's body is unchanged, so its signature is copied; the others are made.
    fn carry_auth(&self, old: &Grid, new: &Grid, carried: &[Option<usize>], now_s: u64) {
        let Some(signer) = self.auth.get() else {
            return;
        };
        for (cell, new_cell) in old.auth.iter().zip(&new.auth) {
            let guard = cell.load();
            let Some(table) = guard
                .as_deref()
                .filter(|t| t.second >= now_s && t.signer_id == signer.id())
            else {
                continue;
            };
            let sigs = new
                .slots
                .iter()
                .zip(carried)
                .map(|(slot, from)| match from {
                    Some(i) => table.sigs[*i],
                    None => auth_sig(signer, slot, table.second),
                })
                .collect();
            new_cell.store(Some(Arc::new(AuthTable {
                second: table.second,
                signer_id: table.signer_id,
                sigs,
            })));
            self.stats.auth_tables.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Hands the pool the signer the client sends with (a clone: [`L2Signer::id`] is kept), so
    /// that each refill pass keeps every grid's `POLY_SIGNATURE`s ready for the current and the
    /// next second. Only the first call counts. `take` uses a table only when its second and
    /// signer are the request's; otherwise it signs as without one.
    pub fn presign_auth(&self, signer: L2Signer) {
        let _ = self.auth.set(signer);
    }

    /// Makes the missing signature tables of every current grid for seconds `now_s` and
    /// `now_s + 1`; returns how many were made.
    fn refresh_auth(&self, now_s: u64) -> usize {
        let Some(signer) = self.auth.get() else {
            return 0;
        };
        let mut made = 0;
        for st in self.tokens.iter() {
            let guard = st.grid.load();
            let Some(grid) = (**guard).as_ref() else {
                continue;
            };
            for second in [now_s, now_s + 1] {
                let cell = &grid.auth[(second % 2) as usize];
                let ready = cell
                    .load()
                    .as_deref()
                    .is_some_and(|t| t.second == second && t.signer_id == signer.id());
                if !ready {
                    cell.store(Some(Arc::new(auth_table(signer, &grid.slots, second))));
                    made += 1;
                }
            }
        }
        self.stats
            .auth_tables
            .fetch_add(made as u64, Ordering::Relaxed);
        made
    }

    /// One refill pass over every token: re-signs where the centre moved, slots were taken, or
    /// the grid aged, then (with [`PresignedPool::presign_auth`]) makes the grids' signature
    /// tables for this second and the next. Returns the number of grids published.
    pub fn refill_once(&self) -> Result<usize, Error> {
        let mut published = 0;
        for (t, st) in self.tokens.iter().enumerate() {
            let cur = self.grid(t);
            let center = st.center_ticks.load(Ordering::Relaxed);
            let needs = match &cur {
                None => center != 0,
                Some(g) => {
                    g.center_ticks != center
                        || st.taken_since_refill.load(Ordering::Relaxed) > 0
                        || now_ms().saturating_sub(g.signed_at_ms) >= self.cfg.max_age_ms / 2
                }
            };
            if !needs {
                continue;
            }
            st.taken_since_refill.store(0, Ordering::Relaxed);
            if let Some(g) = self.build_grid(t, cur.as_deref())? {
                st.grid.store(Arc::new(Some(Arc::new(g))));
                self.stats.grids.fetch_add(1, Ordering::Relaxed);
                published += 1;
            }
        }
        self.refresh_auth(now_ms() / 1000);
        Ok(published)
    }

    /// Registers the calling thread with the grids' lock-free pointers (arc-swap allocates a
    /// per-thread node on a thread's first load). Call once on the hot-path thread at start-up.
    pub fn warm_thread(&self) {
        for st in self.tokens.iter() {
            drop(st.grid.load());
        }
    }

    /// Starts the background refill thread; it stops when the handle is dropped.
    pub fn spawn_refill(self: &Arc<Self>) -> std::io::Result<RefillHandle> {
        let stop = Arc::new(AtomicBool::new(false));
        let pool = Arc::clone(self);
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("exec-pool-refill".into())
            .spawn(move || {
                // Not a hot thread: off the reflex core it may be spawned from (per window).
                ringbolt_net::affinity::pin_env_set("RINGBOLT_HOUSEKEEPING_CPUS");
                while !stop2.load(Ordering::Relaxed) {
                    if let Err(e) = pool.refill_once() {
                        tracing::error!(error = %e, "pool refill failed");
                    }
                    std::thread::sleep(pool.cfg.poll_interval);
                }
            })?;
        Ok(RefillHandle {
            stop,
            thread: Some(thread),
        })
    }

    /// The hot path: claims the slot (token `t`, side, price in ticks, size index) and writes
    /// its `POST /order` request, signed at `timestamp_s`, into `buf`. O(1); no allocation,
    /// lock or syscall.
    ///
    /// Contract: a slot is handed out at most once per grid (its `taken` flag goes false → true
    /// here and only a fresh grid from the refill resets it); the slot found is the one `key`
    /// names (same side, price and size index) and lies inside the grid; its body is a signed
    /// order (non-empty). A miss never takes a slot.
    ///
    /// # Errors
    /// [`Miss`]: unknown token, grid not signed yet, key outside the grid, or slot already taken.
    ///
    /// # Panics
    /// In debug builds, when the grid's index maps `key` to a slot of another key or outside the
    /// grid, or the slot holds no order body.
    #[inline]
    pub fn take(
        &self,
        signer: &L2Signer,
        key: SlotKey,
        timestamp_s: u64,
        buf: &mut RequestBuf,
    ) -> Result<Taken, Miss> {
        let SlotKey {
            token,
            side,
            price_ticks,
            size_index,
        } = key;
        let st = self.tokens.get(token).ok_or(Miss::NoToken)?;
        let guard = st.grid.load();
        let grid = (**guard).as_ref().ok_or(Miss::NotReady)?;
        let i = grid
            .index(side, price_ticks, size_index)
            .ok_or(Miss::OutOfGrid)?;
        debug_assert!(i < grid.slots.len(), "slot index {i} outside the grid");
        let slot = &grid.slots[i];
        debug_assert!(
            slot.side == side && slot.price_ticks == price_ticks && slot.size_index == size_index,
            "grid index maps {key:?} to another slot"
        );
        debug_assert!(!slot.body.is_empty(), "slot without a signed body");
        if slot.taken.swap(true, Ordering::AcqRel) {
            return Err(Miss::Taken);
        }
        st.taken_since_refill.fetch_add(1, Ordering::Relaxed);
        let table = grid.auth[(timestamp_s % 2) as usize].load();
        let ready = table
            .as_deref()
            .filter(|t| t.second == timestamp_s && t.signer_id == signer.id());
        match ready {
            Some(t) => buf.fill_presigned(timestamp_s, PATH_ORDER, &slot.body, &t.sigs[i]),
            None => {
                buf.fill_prescanned(signer, timestamp_s, PATH_ORDER, &slot.body, slot.quote_free);
            }
        }
        Ok(Taken {
            digest: slot.digest,
            signed_at_ms: grid.signed_at_ms,
            auth_precomputed: ready.is_some(),
        })
    }
}

/// Every slot's `POLY_SIGNATURE` of `POST /order` at `second` (zeros for an empty slot).
fn auth_table(signer: &L2Signer, slots: &[Slot], second: u64) -> AuthTable {
    AuthTable {
        second,
        signer_id: signer.id(),
        sigs: slots.iter().map(|s| auth_sig(signer, s, second)).collect(),
    }
}

/// One slot's `POLY_SIGNATURE` of `POST /order` at `second` (zeros for an empty slot).
fn auth_sig(signer: &L2Signer, slot: &Slot, second: u64) -> [u8; HMAC_B64_LEN] {
    let mut sig = [0u8; HMAC_B64_LEN];
    if !slot.body.is_empty() {
        signer.sign_prescanned(
            second,
            "POST",
            PATH_ORDER,
            &slot.body,
            slot.quote_free,
            &mut sig,
        );
    }
    sig
}

/// Stops the refill thread on drop.
#[derive(Debug)]
pub struct RefillHandle {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for RefillHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Resting orders (ACKED / PARTIALLY_FILLED) on `instruments` whose price is not on `tick`'s grid:
/// after a `tick_size_change` they are cancelled (the pool re-signs on the new grid).
#[must_use]
pub fn resting_off_grid(
    core: &crate::client::inflight::ClientCore,
    instruments: &[u32],
    tick: crate::amounts::TickSize,
) -> Vec<u64> {
    let mut v: Vec<u64> = core
        .orders()
        .filter(|o| {
            instruments.contains(&o.instrument)
                && matches!(
                    o.state,
                    ringbolt_bus::OrderState::Acked | ringbolt_bus::OrderState::PartiallyFilled
                )
                && tick.check(o.price_e8).is_err()
        })
        .map(|o| o.client_order_id)
        .collect();
    v.sort_unstable();
    v
}
