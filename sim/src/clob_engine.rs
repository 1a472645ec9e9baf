//! The CLOB emulator's exchange core (sans-IO): the matching engine, the orders it rests, the
//! trades it makes and their status progression (MATCHED → MINED → CONFIRMED, or RETRYING →
//! FAILED with the fill reverted), the per-API-key ledger (pUSD balance and token positions) and
//! the user-channel events all of that produces (queued in [`Exchange::outbox`], delivered by
//! the I/O shell).
//!
//! Liquidity comes from two places, merged by price (at equal price the resting order goes
//! first: the emulated book is regenerated every market step, so its level is the younger one):
//! * the market emulator's book ([`ExchangeVenue`], the book the market channel publishes; what
//!   an order consumes there is withdrawn from that book and published as `price_change`), and
//! * orders resting here (GTC/GTD remainders), price then time priority. These are not shown in
//!   the published book (the emulated book is regenerated every step).
//!
//! A resting order also fills, as maker at its own price, when the emulated book moves through
//! it ([`Exchange::tick`]). One trade is made per maker fill, so a trade's price is its maker's.
//!
//! Ledger: fills move balances and positions when MATCHED (provisional, as the venue's
//! `balance-allowance` shows matched trades) and are undone when a trade FAILS. The taker pays
//! `shares × rate × p × (1 − p)` in pUSD; makers pay nothing (no rebate is modelled).

use std::collections::{BTreeMap, HashMap};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::{Value, json};

use crate::clob::TokenInfo;
use crate::clob_user::{order_json, trade_json};

/// Micro units per share / per pUSD.
pub const MICRO: i64 = 1_000_000;
/// Fills are made in whole hundredths of a share (the venue's size precision).
const LOT_MICRO: i64 = 10_000;

/// Exact venue texts used here.
pub mod msg {
    /// HTTP 400 (corpus).
    pub const NO_BALANCE: &str = "not enough balance / allowance";
}

/// Order side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Side {
    /// Buy.
    #[serde(rename = "BUY")]
    Buy,
    /// Sell.
    #[serde(rename = "SELL")]
    Sell,
}

impl Side {
    /// `BUY` / `SELL`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "BUY",
            Side::Sell => "SELL",
        }
    }
    /// The other side.
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
    /// `true` when `price` is acceptable to an order on this side with limit `limit`.
    fn accepts(self, price: i64, limit: i64) -> bool {
        match self {
            Side::Buy => price <= limit,
            Side::Sell => price >= limit,
        }
    }
}

/// What the exchange needs from the market emulator.
pub trait ExchangeVenue {
    /// Tick, top of book and resolution of `asset`.
    fn token_info(&self, asset: &str) -> Option<TokenInfo>;
    /// Condition id and outcome name (`Up` / `Down`) of `asset`.
    fn token_meta(&self, asset: &str) -> Option<(String, &'static str)>;
    /// Levels a taker on `taker` side of `asset` trades against, best first:
    /// `(price_e6, qty_micro)`.
    fn levels(&self, asset: &str, taker: Side) -> Vec<(i64, i64)>;
    /// Withdraws `qty_micro` at `price_e6` from the levels `taker` trades against.
    fn take(&mut self, asset: &str, taker: Side, price_e6: i64, qty_micro: i64);
}

/// Order types (parsed here, not with `exec`'s type: the emulator checks ringbolt's order path
/// and so does not reuse its parsing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderType {
    /// Good till cancelled.
    Gtc,
    /// Good till date.
    Gtd,
    /// Fill or kill.
    Fok,
    /// Fill and kill.
    Fak,
}

impl OrderType {
    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "GTC" => Self::Gtc,
            "GTD" => Self::Gtd,
            "FOK" => Self::Fok,
            "FAK" => Self::Fak,
            _ => return None,
        })
    }
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gtc => "GTC",
            Self::Gtd => "GTD",
            Self::Fok => "FOK",
            Self::Fak => "FAK",
        }
    }
    fn rests(self) -> bool {
        matches!(self, Self::Gtc | Self::Gtd)
    }
}

/// An order status (user channel / `GET /data/order`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    /// Resting.
    Live,
    /// Fully matched.
    Matched,
    /// Cancelled (by request, heartbeat expiry, GTD expiry, or the unfilled rest of FOK/FAK).
    Canceled,
}

impl OrderStatus {
    /// Wire text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "LIVE",
            Self::Matched => "MATCHED",
            Self::Canceled => "CANCELED",
        }
    }
}

/// One accepted order.
#[derive(Debug, Clone)]
pub struct Order {
    /// Order hash (`0x…`), the venue's order id.
    pub id: String,
    /// API key that placed it.
    pub owner: String,
    /// `maker` of the signed order (checksummed).
    pub maker_address: String,
    /// Condition id.
    pub market: String,
    /// Token id.
    pub asset_id: String,
    /// `Up` / `Down`.
    pub outcome: &'static str,
    /// Side.
    pub side: Side,
    /// Limit price, 1e-6.
    pub price_e6: i64,
    /// Signed size, micro shares.
    pub original_micro: i64,
    /// Matched so far, micro shares.
    pub matched_micro: i64,
    /// A market BUY's pUSD budget (FOK/FAK BUY are sized in pUSD), micro.
    pub budget_micro: Option<i64>,
    /// Type.
    pub order_type: OrderType,
    /// GTD expiration, unix s (0: none).
    pub expiration_s: i64,
    /// Accepted at, ms.
    pub created_ms: i64,
    /// Status.
    pub status: OrderStatus,
    /// Trade ids this order took part in.
    pub trades: Vec<String>,
    seq: u64,
}

impl Order {
    fn remaining_micro(&self) -> i64 {
        self.original_micro - self.matched_micro
    }
}

/// A new order that passed the request checks.
#[derive(Debug, Clone)]
pub struct NewOrder {
    /// Order hash.
    pub id: String,
    /// API key.
    pub owner: String,
    /// Signed `maker`.
    pub maker_address: String,
    /// Token id.
    pub asset_id: String,
    /// Side.
    pub side: Side,
    /// Limit price, 1e-6.
    pub price_e6: i64,
    /// Size, micro shares (BUY: takerAmount, SELL: makerAmount).
    pub size_micro: i64,
    /// pUSD budget of a FOK/FAK BUY (its makerAmount), micro.
    pub budget_micro: Option<i64>,
    /// Type.
    pub order_type: OrderType,
    /// Post-only.
    pub post_only: bool,
    /// GTD expiration, unix s.
    pub expiration_s: i64,
}

/// Trade status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeStatus {
    /// Matched off-chain (provisional).
    Matched,
    /// Mined on chain.
    Mined,
    /// Final.
    Confirmed,
    /// The settlement transaction is being retried.
    Retrying,
    /// Settlement failed: the fill is undone.
    Failed,
}

impl TradeStatus {
    /// Wire text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Matched => "MATCHED",
            Self::Mined => "MINED",
            Self::Confirmed => "CONFIRMED",
            Self::Retrying => "RETRYING",
            Self::Failed => "FAILED",
        }
    }
    fn is_final(self) -> bool {
        matches!(self, Self::Confirmed | Self::Failed)
    }
}

/// One party of a trade.
#[derive(Debug, Clone)]
pub struct Party {
    /// Order id.
    pub order_id: String,
    /// API key when the party is one of the emulator's keys; `None` for emulated liquidity.
    pub api_key: Option<String>,
    /// Owner label as shown on the wire (the API key, or a synthetic one).
    pub owner: String,
    /// Address.
    pub address: String,
}

/// One trade (one maker fill).
#[derive(Debug, Clone)]
pub struct Trade {
    /// Trade id.
    pub id: String,
    /// Taker.
    pub taker: Party,
    /// Maker.
    pub maker: Party,
    /// Condition id.
    pub market: String,
    /// Token id.
    pub asset_id: String,
    /// `Up` / `Down`.
    pub outcome: &'static str,
    /// Taker side.
    pub side: Side,
    /// Trade price (the maker's), 1e-6.
    pub price_e6: i64,
    /// Shares, micro.
    pub size_micro: i64,
    /// Taker fee, micro pUSD.
    pub fee_micro: i64,
    /// Matched at, ms.
    pub match_ms: i64,
    /// Last status change, ms.
    pub last_update_ms: i64,
    /// Status.
    pub status: TradeStatus,
    /// Settlement transaction hash.
    pub transaction_hash: String,
    fails: bool,
}

impl Trade {
    /// pUSD notional, micro.
    pub fn notional_micro(&self) -> i64 {
        mul_e6(self.size_micro, self.price_e6)
    }
}

/// One event for the user channel: who may see it, for which market, and the JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEvent {
    /// API key it belongs to.
    pub api_key: String,
    /// Condition id.
    pub market: String,
    /// The event JSON.
    pub text: String,
}

/// One API key's money.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Account {
    /// pUSD balance, micro.
    pub usdc_micro: i64,
    /// Token positions, micro shares.
    pub positions: BTreeMap<String, i64>,
}

/// Tunables (control endpoint `POST /clob/params`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ExchangeParams {
    /// MATCHED → MINED (or RETRYING) after this long, ms.
    pub mined_delay_ms: i64,
    /// MATCHED → CONFIRMED (or FAILED) after this long, ms.
    pub confirmed_delay_ms: i64,
    /// Share of trades that go RETRYING → FAILED (drawn from the seeded generator).
    pub fail_share: f64,
    /// pUSD every new API key starts with, micro.
    pub initial_usdc_micro: i64,
    /// Taker fee rate in basis points (the emulated markets' `fee_schedule.rate` 0.07 = 700).
    pub fee_rate_bps: i64,
    /// The market's `taker_base_fee`, shown as the taker's `fee_rate_bps`.
    pub taker_fee_bps: u32,
}

impl Default for ExchangeParams {
    fn default() -> Self {
        ExchangeParams {
            mined_delay_ms: 1_000,
            confirmed_delay_ms: 3_000,
            fail_share: 0.0,
            initial_usdc_micro: 10_000 * MICRO,
            fee_rate_bps: 700,
            taker_fee_bps: 1000,
        }
    }
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ExchangeStats {
    /// Trades made.
    pub trades: u64,
    /// Trades confirmed.
    pub confirmed: u64,
    /// Trades failed (reverted).
    pub failed: u64,
    /// Orders expired (GTD).
    pub expired: u64,
}

/// The exchange.
#[derive(Debug)]
pub struct Exchange {
    /// Tunables.
    pub params: ExchangeParams,
    orders: HashMap<String, Order>,
    trades: Vec<Trade>,
    accounts: HashMap<String, Account>,
    rng: ChaCha8Rng,
    seq: u64,
    fail_next: u64,
    /// `(count, ms)`: the next `count` marketable orders are answered `delayed` and matched
    /// `ms` later.
    delay_next: (u64, i64),
    delayed: Vec<(i64, NewOrder)>,
    /// User-channel events not yet delivered.
    pub outbox: Vec<UserEvent>,
    /// Counters.
    pub stats: ExchangeStats,
}

/// `a × b / 1e6`, rounded half up (all amounts and prices are 1e-6 fixed point).
pub fn mul_e6(a: i64, b: i64) -> i64 {
    let p = i128::from(a) * i128::from(b);
    i64::try_from((p + i128::from(MICRO / 2)) / i128::from(MICRO)).unwrap_or(i64::MAX)
}

/// Decimal text of a 1e-6 amount, trailing zeros trimmed (`"5"`, `"0.52"`).
pub fn dec6(v: i64) -> String {
    crate::util::trimmed(v, 6)
}

/// A fill being planned: the maker (`None`: emulated liquidity), price, shares.
#[derive(Debug, Clone)]
struct Fill {
    maker: Option<String>,
    price_e6: i64,
    qty_micro: i64,
}

impl Exchange {
    /// A fresh exchange; trade ids, hashes and FAILED draws come from `seed`.
    pub fn new(seed: u64) -> Self {
        Exchange {
            params: ExchangeParams::default(),
            orders: HashMap::new(),
            trades: Vec::new(),
            accounts: HashMap::new(),
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0xC10B_E8C4_A46E_0001),
            seq: 0,
            fail_next: 0,
            delay_next: (0, 0),
            delayed: Vec::new(),
            outbox: Vec::new(),
            stats: ExchangeStats::default(),
        }
    }

    /// The account of `api_key` (created with the initial balance on first use).
    pub fn account(&mut self, api_key: &str) -> &mut Account {
        let init = self.params.initial_usdc_micro;
        self.accounts
            .entry(api_key.to_string())
            .or_insert_with(|| Account {
                usdc_micro: init,
                positions: BTreeMap::new(),
            })
    }

    /// All accounts.
    pub fn accounts(&self) -> &HashMap<String, Account> {
        &self.accounts
    }

    /// The next `n` trades fail (RETRYING → FAILED) whatever the share.
    pub fn fail_next(&mut self, n: u64) {
        self.fail_next = n;
    }

    /// The next `n` marketable orders are answered `delayed` and matched `ms` later (the venue
    /// delays marketable orders in some markets).
    pub fn delay_next(&mut self, n: u64, ms: i64) {
        self.delay_next = (n, ms.max(0));
    }

    /// An order by id.
    pub fn order(&self, id: &str) -> Option<&Order> {
        self.orders.get(id)
    }

    /// Live orders of `owner`, oldest first.
    pub fn open_orders_of(&self, owner: &str) -> Vec<&Order> {
        let mut v: Vec<&Order> = self
            .orders
            .values()
            .filter(|o| o.owner == owner && o.status == OrderStatus::Live)
            .collect();
        v.sort_by_key(|o| o.seq);
        v
    }

    /// Live orders in total.
    pub fn open_orders(&self) -> usize {
        self.orders
            .values()
            .filter(|o| o.status == OrderStatus::Live)
            .count()
    }

    /// Trades `api_key` took part in, oldest first.
    pub fn trades_of<'a>(&'a self, api_key: &'a str) -> impl Iterator<Item = &'a Trade> + 'a {
        self.trades.iter().filter(move |t| {
            t.taker.api_key.as_deref() == Some(api_key)
                || t.maker.api_key.as_deref() == Some(api_key)
        })
    }

    /// pUSD and shares `owner` has committed to its live orders: `(usdc_micro, shares by token)`.
    fn reserved(&self, owner: &str) -> (i64, HashMap<&str, i64>) {
        let mut usdc = 0;
        let mut shares: HashMap<&str, i64> = HashMap::new();
        for o in self.open_orders_of(owner) {
            match o.side {
                Side::Buy => usdc += mul_e6(o.remaining_micro(), o.price_e6),
                Side::Sell => {
                    *shares.entry(o.asset_id.as_str()).or_default() += o.remaining_micro()
                }
            }
        }
        (usdc, shares)
    }

    fn check_balance(&mut self, o: &NewOrder) -> Result<(), String> {
        let (usdc_res, share_res) = self.reserved(&o.owner);
        let share_res = share_res.get(o.asset_id.as_str()).copied().unwrap_or(0);
        let acct = self.account(&o.owner).clone();
        let ok = match o.side {
            Side::Buy => {
                let need = o
                    .budget_micro
                    .unwrap_or_else(|| mul_e6(o.size_micro, o.price_e6));
                acct.usdc_micro - usdc_res >= need
            }
            Side::Sell => {
                let held = acct.positions.get(&o.asset_id).copied().unwrap_or(0);
                held - share_res >= o.size_micro
            }
        };
        if ok {
            Ok(())
        } else {
            Err(msg::NO_BALANCE.to_string())
        }
    }

    /// Live orders `o` can trade with, best price first (lowest ask for a buyer), then time.
    fn resting_against(&self, o: &Order) -> Vec<&Order> {
        let mut resting: Vec<&Order> = self
            .orders
            .values()
            .filter(|r| {
                r.status == OrderStatus::Live
                    && r.asset_id == o.asset_id
                    && r.side == o.side.opposite()
                    && o.side.accepts(r.price_e6, o.price_e6)
            })
            .collect();
        resting.sort_by_key(|r| {
            let key = if o.side == Side::Buy {
                r.price_e6
            } else {
                -r.price_e6
            };
            (key, r.seq)
        });
        resting
    }

    /// The fills `o` would get now, without changing anything.
    fn plan(&self, o: &Order, venue: &dyn ExchangeVenue) -> Vec<Fill> {
        let mut emulated = venue.levels(&o.asset_id, o.side).into_iter().peekable();
        let mut resting = self.resting_against(o).into_iter().peekable();
        let mut fills = Vec::new();
        // A market BUY is bounded by its budget (its signed size is the least it accepts).
        let mut rem = if o.budget_micro.is_some() {
            i64::MAX
        } else {
            o.remaining_micro()
        };
        let mut budget = o.budget_micro;
        while rem > 0 {
            let em = emulated
                .peek()
                .copied()
                .filter(|(p, _)| o.side.accepts(*p, o.price_e6));
            let us = resting.peek().map(|r| (r.price_e6, r.remaining_micro()));
            let take_emulated = match (em, us) {
                // Strictly better emulated prices first; at equal price the resting order, which
                // was there before the book's latest reprice.
                (Some((pe, _)), Some((pu, _))) => pe != pu && o.side.accepts(pe, pu),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let (price, avail, maker) = if take_emulated {
                let (p, q) = em.unwrap_or_default();
                emulated.next();
                (p, q, None)
            } else {
                let Some(r) = resting.next() else { break };
                (r.price_e6, r.remaining_micro(), Some(r.id.clone()))
            };
            let mut qty = rem.min(avail);
            if let Some(b) = budget {
                // A market BUY spends its pUSD budget, in whole lots.
                let affordable =
                    i64::try_from(i128::from(b) * i128::from(MICRO) / i128::from(price.max(1)))
                        .unwrap_or(i64::MAX);
                qty = qty.min(affordable / LOT_MICRO * LOT_MICRO);
            }
            if maker.is_none() {
                qty = qty / LOT_MICRO * LOT_MICRO;
            }
            if qty <= 0 {
                if budget.is_some() {
                    break;
                }
                continue;
            }
            rem -= qty;
            if let Some(b) = budget.as_mut() {
                *b -= mul_e6(qty, price);
            }
            fills.push(Fill {
                maker,
                price_e6: price,
                qty_micro: qty,
            });
        }
        fills
    }

    /// Places a new order: balance check, matching, resting; returns the `POST /order` answer
    /// (the `Err` is an HTTP 400 error text).
    pub fn place(
        &mut self,
        n: NewOrder,
        venue: &mut dyn ExchangeVenue,
        now_ms: i64,
    ) -> Result<Value, String> {
        let Some((market, outcome)) = venue.token_meta(&n.asset_id) else {
            return Err(crate::clob::msg::INVALID_TOKEN.to_string());
        };
        self.check_balance(&n)?;
        self.seq += 1;
        let order = Order {
            id: n.id.clone(),
            owner: n.owner.clone(),
            maker_address: n.maker_address.clone(),
            market,
            asset_id: n.asset_id.clone(),
            outcome,
            side: n.side,
            price_e6: n.price_e6,
            original_micro: n.size_micro,
            matched_micro: 0,
            budget_micro: n.budget_micro,
            order_type: n.order_type,
            expiration_s: n.expiration_s,
            created_ms: now_ms,
            status: OrderStatus::Live,
            trades: Vec::new(),
            seq: self.seq,
        };
        let fills = self.plan(&order, venue);
        if n.post_only && !fills.is_empty() {
            return Err(crate::clob::msg::POST_ONLY_CROSSES.to_string());
        }
        if !fills.is_empty() && self.delay_next.0 > 0 {
            self.delay_next.0 -= 1;
            let id = n.id.clone();
            self.delayed.push((now_ms + self.delay_next.1, n));
            return Ok(json!({
                "success": true, "errorMsg": "", "orderID": id, "status": "delayed",
                "makingAmount": "", "takingAmount": "", "transactionsHashes": [], "tradeIDs": [],
            }));
        }
        let filled: i64 = fills.iter().map(|f| f.qty_micro).sum();
        let budget_left = n.budget_micro.map(|b| {
            b - fills
                .iter()
                .map(|f| mul_e6(f.qty_micro, f.price_e6))
                .sum::<i64>()
        });
        let complete = match budget_left {
            // Full when less than one more lot at the limit price is left to spend.
            Some(left) => left < mul_e6(LOT_MICRO, n.price_e6).max(1),
            None => filled >= n.size_micro,
        };
        let kill = match n.order_type {
            OrderType::Fok if !complete => Some(crate::clob::msg::FOK_NOT_FILLED),
            OrderType::Fak if fills.is_empty() => Some(crate::clob::msg::FAK_NOT_FILLED),
            _ => None,
        };
        if let Some(text) = kill {
            let mut o = order;
            o.status = OrderStatus::Canceled;
            let status = format!("CANCELED_{text}");
            self.push_order_event(&o, "CANCELLATION", &status, now_ms);
            return Ok(json!({
                "success": false, "errorMsg": text, "orderID": "", "status": "",
                "makingAmount": "", "takingAmount": "",
            }));
        }
        let id = order.id.clone();
        self.push_order_event(&order, "PLACEMENT", "LIVE", now_ms);
        self.orders.insert(id.clone(), order);
        let trade_ids = self.execute(&id, &fills, venue, now_ms);
        self.finish_taker(&id, complete, now_ms);
        Ok(self.post_answer(&id, &trade_ids))
    }

    /// Makes the trades of `fills` for taker order `taker_id`; returns the trade ids.
    fn execute(
        &mut self,
        taker_id: &str,
        fills: &[Fill],
        venue: &mut dyn ExchangeVenue,
        now_ms: i64,
    ) -> Vec<String> {
        let mut ids = Vec::with_capacity(fills.len());
        for f in fills {
            let Some(taker) = self.orders.get(taker_id).cloned() else {
                break;
            };
            let maker = match &f.maker {
                Some(mid) => self.orders.get(mid).map(|m| self.party_of(m)),
                None => {
                    venue.take(&taker.asset_id, taker.side, f.price_e6, f.qty_micro);
                    Some(self.emulated_party())
                }
            };
            let Some(maker) = maker else { continue };
            let taker_party = self.party_of(&taker);
            let t = self.new_trade(&taker, taker_party, maker, f, now_ms);
            ids.push(t.id.clone());
            self.record_trade(t, now_ms);
        }
        ids
    }

    fn party_of(&self, o: &Order) -> Party {
        Party {
            order_id: o.id.clone(),
            api_key: Some(o.owner.clone()),
            owner: o.owner.clone(),
            address: o.maker_address.clone(),
        }
    }

    fn emulated_party(&mut self) -> Party {
        let h = self.hex(64);
        let u = self.uuid();
        let a = self.hex(40);
        Party {
            order_id: format!("0x{h}"),
            api_key: None,
            owner: u,
            address: format!("0x{a}"),
        }
    }

    fn hex(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n + 16);
        while s.len() < n {
            s.push_str(&format!("{:016x}", self.rng.random::<u64>()));
        }
        s.truncate(n);
        s
    }

    fn uuid(&mut self) -> String {
        let h = self.hex(32);
        format!(
            "{}-{}-4{}-a{}-{}",
            &h[..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        )
    }

    fn new_trade(
        &mut self,
        taker_order: &Order,
        taker: Party,
        maker: Party,
        f: &Fill,
        now_ms: i64,
    ) -> Trade {
        let fails = if self.fail_next > 0 {
            self.fail_next -= 1;
            true
        } else {
            self.params.fail_share > 0.0 && self.rng.random_bool(self.params.fail_share.min(1.0))
        };
        let fee_micro = if taker.api_key.is_some() {
            self.fee_micro(f.qty_micro, f.price_e6)
        } else {
            0
        };
        Trade {
            id: self.uuid(),
            taker,
            maker,
            market: taker_order.market.clone(),
            asset_id: taker_order.asset_id.clone(),
            outcome: taker_order.outcome,
            side: taker_order.side,
            price_e6: f.price_e6,
            size_micro: f.qty_micro,
            fee_micro,
            match_ms: now_ms,
            last_update_ms: now_ms,
            status: TradeStatus::Matched,
            transaction_hash: format!("0x{}", self.hex(64)),
            fails,
        }
    }

    /// `shares × rate × p × (1 − p)`, micro pUSD, rounded half up (exact integer arithmetic).
    pub fn fee_micro(&self, size_micro: i64, price_e6: i64) -> i64 {
        let num = i128::from(size_micro)
            * i128::from(price_e6)
            * i128::from(MICRO - price_e6)
            * i128::from(self.params.fee_rate_bps);
        let den = i128::from(MICRO) * i128::from(MICRO) * 10_000;
        i64::try_from((num + den / 2) / den).unwrap_or(i64::MAX)
    }

    /// Books a new trade: order fills, ledger, events.
    fn record_trade(&mut self, t: Trade, now_ms: i64) {
        self.stats.trades += 1;
        for party in [&t.taker, &t.maker] {
            if let Some(o) = self.orders.get_mut(&party.order_id) {
                o.matched_micro += t.size_micro;
                o.trades.push(t.id.clone());
                if o.remaining_micro() <= 0 {
                    o.status = OrderStatus::Matched;
                }
            }
        }
        self.apply_ledger(&t, 1);
        // The maker's order update now; the taker's once all its fills are made.
        if t.maker.api_key.is_some()
            && let Some(o) = self.orders.get(&t.maker.order_id).cloned()
        {
            self.push_order_event(&o, "UPDATE", o.status.as_str(), now_ms);
        }
        self.push_trade_events(&t, now_ms);
        self.trades.push(t);
    }

    /// Moves (sign 1) or restores (sign −1) the balances and positions of a trade's parties.
    fn apply_ledger(&mut self, t: &Trade, sign: i64) {
        let notional = t.notional_micro();
        let parties = [
            (t.taker.api_key.clone(), t.side, t.fee_micro),
            (t.maker.api_key.clone(), t.side.opposite(), 0),
        ];
        for (key, side, fee) in parties {
            let Some(key) = key else { continue };
            let acct = self.account(&key);
            let (cash, shares) = match side {
                Side::Buy => (-notional - fee, t.size_micro),
                Side::Sell => (notional - fee, -t.size_micro),
            };
            acct.usdc_micro += sign * cash;
            *acct.positions.entry(t.asset_id.clone()).or_default() += sign * shares;
        }
    }

    /// After its fills: a taker's UPDATE, and the end of a FOK/FAK or a filled order.
    fn finish_taker(&mut self, id: &str, complete: bool, now_ms: i64) {
        let Some(o) = self.orders.get_mut(id) else {
            return;
        };
        if o.budget_micro.is_some() && complete {
            o.status = OrderStatus::Matched;
        }
        let rests = o.order_type.rests();
        let (filled, status) = (o.matched_micro > 0, o.status);
        if !rests && status == OrderStatus::Live {
            // FAK: what did not fill is cancelled.
            o.status = if filled {
                OrderStatus::Matched
            } else {
                OrderStatus::Canceled
            };
        }
        let o = o.clone();
        if filled {
            self.push_order_event(&o, "UPDATE", o.status.as_str(), now_ms);
        }
    }

    fn post_answer(&self, id: &str, trade_ids: &[String]) -> Value {
        let Some(o) = self.orders.get(id) else {
            return json!({});
        };
        if trade_ids.is_empty() {
            return json!({
                "success": true, "errorMsg": "", "orderID": id, "status": "live",
                "makingAmount": "", "takingAmount": "", "transactionsHashes": [], "tradeIDs": [],
            });
        }
        let trades: Vec<&Trade> = self
            .trades
            .iter()
            .filter(|t| trade_ids.contains(&t.id))
            .collect();
        let shares: i64 = trades.iter().map(|t| t.size_micro).sum();
        let cash: i64 = trades.iter().map(|t| t.notional_micro()).sum();
        let (making, taking) = match o.side {
            Side::Buy => (cash, shares),
            Side::Sell => (shares, cash),
        };
        json!({
            "success": true, "errorMsg": "", "orderID": id, "status": "matched",
            "makingAmount": dec6(making), "takingAmount": dec6(taking),
            "transactionsHashes": trades.iter().map(|t| t.transaction_hash.clone()).collect::<Vec<_>>(),
            "tradeIDs": trade_ids,
        })
    }

    /// Cancels `ids` of `owner`: `{"canceled": [...], "not_canceled": {...}}`.
    pub fn cancel(&mut self, owner: &str, ids: &[String], now_ms: i64) -> Value {
        let mut canceled = Vec::new();
        let mut not = serde_json::Map::new();
        for id in ids {
            let reason = match self.orders.get(id) {
                Some(o) if o.owner == owner && o.status == OrderStatus::Live => None,
                Some(o) if o.owner == owner => Some(crate::clob::msg::ALREADY_CANCELED),
                _ => Some(crate::clob::msg::NOT_FOUND),
            };
            match reason {
                None => {
                    self.cancel_one(id, now_ms);
                    canceled.push(Value::String(id.clone()));
                }
                Some(r) => {
                    not.insert(id.clone(), Value::String(r.into()));
                }
            }
        }
        json!({"canceled": canceled, "not_canceled": not})
    }

    fn cancel_one(&mut self, id: &str, now_ms: i64) {
        if let Some(o) = self.orders.get_mut(id) {
            o.status = OrderStatus::Canceled;
            let o = o.clone();
            self.push_order_event(&o, "CANCELLATION", "CANCELED", now_ms);
        }
    }

    /// Live order ids of `owner` matching `filter` (cancel-all, cancel-market-orders).
    pub fn live_ids(&self, owner: &str, filter: &dyn Fn(&Order) -> bool) -> Vec<String> {
        self.open_orders_of(owner)
            .into_iter()
            .filter(|o| filter(o))
            .map(|o| o.id.clone())
            .collect()
    }

    /// Time passes: GTD expiry, resting orders the emulated book moved through, trade statuses.
    pub fn tick(&mut self, venue: &mut dyn ExchangeVenue, now_ms: i64) {
        // GTD expiry; orders of resolved (or forgotten) windows are cancelled too.
        let expired: Vec<(String, bool)> = self
            .orders
            .values()
            .filter(|o| o.status == OrderStatus::Live)
            .filter_map(|o| {
                let gtd = o.order_type == OrderType::Gtd && o.expiration_s * 1000 <= now_ms;
                let closed = venue.token_info(&o.asset_id).is_none_or(|i| i.resolved);
                (gtd || closed).then(|| (o.id.clone(), gtd))
            })
            .collect();
        for (id, gtd) in expired {
            if gtd {
                self.stats.expired += 1;
            }
            self.cancel_one(&id, now_ms);
        }
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.delayed)
            .into_iter()
            .partition(|(t, _)| *t <= now_ms);
        self.delayed = later;
        let armed = std::mem::take(&mut self.delay_next);
        for (_, n) in due {
            // Placed now, not delayed again; a refusal at this point is not reported anywhere
            // (unverified venue behaviour).
            let _ = self.place(n, venue, now_ms);
        }
        self.delay_next = armed;
        self.cross_resting(venue, now_ms);
        self.progress_trades(now_ms);
    }

    /// Resting orders the emulated book now crosses fill as makers at their own price.
    fn cross_resting(&mut self, venue: &mut dyn ExchangeVenue, now_ms: i64) {
        let mut live: Vec<Order> = self
            .orders
            .values()
            .filter(|o| o.status == OrderStatus::Live)
            .cloned()
            .collect();
        live.sort_by_key(|o| o.seq);
        for o in live {
            // The emulated counterparty is the taker, on the other side.
            let taker_side = o.side.opposite();
            let avail: i64 = venue
                .levels(&o.asset_id, o.side)
                .iter()
                .filter(|(p, _)| o.side.accepts(*p, o.price_e6))
                .map(|(_, q)| q)
                .sum();
            let qty = o.remaining_micro().min(avail) / LOT_MICRO * LOT_MICRO;
            if qty <= 0 {
                continue;
            }
            let mut left = qty;
            for (p, q) in venue.levels(&o.asset_id, o.side) {
                if left == 0 || !o.side.accepts(p, o.price_e6) {
                    break;
                }
                let n = left.min(q);
                venue.take(&o.asset_id, o.side, p, n);
                left -= n;
            }
            let taker = self.emulated_party();
            let maker = self.party_of(&o);
            let taker_order = Order {
                side: taker_side,
                ..o.clone()
            };
            let f = Fill {
                maker: Some(o.id.clone()),
                price_e6: o.price_e6,
                qty_micro: qty,
            };
            let t = self.new_trade(&taker_order, taker, maker, &f, now_ms);
            self.record_trade(t, now_ms);
        }
    }

    fn progress_trades(&mut self, now_ms: i64) {
        let (mined, confirmed) = (self.params.mined_delay_ms, self.params.confirmed_delay_ms);
        let mut changed = Vec::new();
        for (i, t) in self.trades.iter_mut().enumerate() {
            if t.status.is_final() {
                continue;
            }
            let age = now_ms - t.match_ms;
            let next = if age >= confirmed {
                if t.fails {
                    TradeStatus::Failed
                } else {
                    TradeStatus::Confirmed
                }
            } else if age >= mined && t.status == TradeStatus::Matched {
                if t.fails {
                    TradeStatus::Retrying
                } else {
                    TradeStatus::Mined
                }
            } else {
                continue;
            };
            // Every step is published: a trade confirmed at once still passes MINED.
            if next.is_final() && t.status == TradeStatus::Matched {
                t.status = if t.fails {
                    TradeStatus::Retrying
                } else {
                    TradeStatus::Mined
                };
                changed.push((i, t.status));
            }
            t.status = next;
            t.last_update_ms = now_ms;
            changed.push((i, next));
        }
        for (i, status) in changed {
            let Some(mut t) = self.trades.get(i).cloned() else {
                continue;
            };
            t.status = status;
            match status {
                TradeStatus::Failed => {
                    self.stats.failed += 1;
                    self.apply_ledger(&t, -1);
                }
                TradeStatus::Confirmed => self.stats.confirmed += 1,
                _ => {}
            }
            self.push_trade_events(&t, now_ms);
        }
    }

    fn push_order_event(&mut self, o: &Order, kind: &str, status: &str, now_ms: i64) {
        let text = order_json(o, kind, status, now_ms).to_string();
        self.outbox.push(UserEvent {
            api_key: o.owner.clone(),
            market: o.market.clone(),
            text,
        });
    }

    fn push_trade_events(&mut self, t: &Trade, now_ms: i64) {
        for (party, side) in [(&t.taker, "TAKER"), (&t.maker, "MAKER")] {
            if let Some(key) = &party.api_key {
                let text = trade_json(t, party, side, now_ms).to_string();
                self.outbox.push(UserEvent {
                    api_key: key.clone(),
                    market: t.market.clone(),
                    text,
                });
            }
        }
    }

    /// The ledger as JSON (control endpoint): balances, positions, trades.
    pub fn ledger_json(&self) -> Value {
        let accounts: BTreeMap<&String, Value> = self
            .accounts
            .iter()
            .map(|(k, a)| {
                let pos: BTreeMap<&String, Value> = a
                    .positions
                    .iter()
                    .map(|(t, q)| (t, json!({"size_micro": q, "size": dec6(*q)})))
                    .collect();
                (
                    k,
                    json!({"usdc_micro": a.usdc_micro, "usdc": dec6(a.usdc_micro), "positions": pos}),
                )
            })
            .collect();
        let trades: Vec<Value> = self
            .trades
            .iter()
            .map(|t| {
                json!({
                    "id": t.id, "status": t.status.as_str(), "asset_id": t.asset_id,
                    "side": t.side.as_str(), "price": dec6(t.price_e6), "size": dec6(t.size_micro),
                    "fee_micro": t.fee_micro, "taker_api_key": t.taker.api_key,
                    "maker_api_key": t.maker.api_key, "taker_order_id": t.taker.order_id,
                    "maker_order_id": t.maker.order_id,
                })
            })
            .collect();
        json!({"accounts": accounts, "trades": trades, "stats": self.stats, "params": self.params})
    }
}

/// A fixed book for unit tests: every token is an `Up` token of market `"m"` (tick 0.01).
#[cfg(test)]
#[derive(Debug, Clone, Default)]
pub(crate) struct FixedBook {
    /// Bids, best first: `(price_e6, qty_micro)`.
    pub bids: Vec<(i64, i64)>,
    /// Asks, best first.
    pub asks: Vec<(i64, i64)>,
}

#[cfg(test)]
impl ExchangeVenue for FixedBook {
    fn token_info(&self, _: &str) -> Option<TokenInfo> {
        Some(TokenInfo {
            tick: ringbolt_market::Tick::T0_01,
            best_bid: self.bids.first().map_or(0, |b| b.0 / 1000),
            best_ask: self.asks.first().map_or(0, |a| a.0 / 1000),
            resolved: false,
        })
    }
    fn token_meta(&self, _: &str) -> Option<(String, &'static str)> {
        Some(("m".to_string(), "Up"))
    }
    fn levels(&self, _: &str, taker: Side) -> Vec<(i64, i64)> {
        match taker {
            Side::Buy => self.asks.clone(),
            Side::Sell => self.bids.clone(),
        }
    }
    fn take(&mut self, _: &str, taker: Side, price_e6: i64, qty_micro: i64) {
        let side = match taker {
            Side::Buy => &mut self.asks,
            Side::Sell => &mut self.bids,
        };
        if let Some(l) = side.iter_mut().find(|l| l.0 == price_e6) {
            l.1 -= qty_micro;
        }
        side.retain(|l| l.1 > 0);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const M: i64 = MICRO;

    fn book() -> FixedBook {
        FixedBook {
            bids: vec![(490_000, 100 * M), (480_000, 100 * M)],
            asks: vec![(510_000, 10 * M), (520_000, 20 * M), (530_000, 30 * M)],
        }
    }

    fn order(
        id: &str,
        owner: &str,
        side: Side,
        price_e6: i64,
        shares: i64,
        t: OrderType,
    ) -> NewOrder {
        NewOrder {
            id: id.into(),
            owner: owner.into(),
            maker_address: "0xabc".into(),
            asset_id: "up".into(),
            side,
            price_e6,
            size_micro: shares * M,
            budget_micro: None,
            order_type: t,
            post_only: false,
            expiration_s: 0,
        }
    }

    fn events(ex: &mut Exchange) -> Vec<Value> {
        ex.outbox
            .drain(..)
            .map(|e| serde_json::from_str(&e.text).unwrap())
            .collect()
    }

    #[test]
    fn a_crossing_buy_walks_the_levels_and_rests_its_remainder() {
        let mut ex = Exchange::new(1);
        let mut b = book();
        let r = ex
            .place(
                order("0x1", "k", Side::Buy, 520_000, 40, OrderType::Gtc),
                &mut b,
                1_000,
            )
            .unwrap();
        // 10 @ 0.51 + 20 @ 0.52 = 15.5 pUSD; 10 shares rest at 0.52.
        assert_eq!(r["status"], "matched");
        assert_eq!(r["makingAmount"], "15.5");
        assert_eq!(r["takingAmount"], "30");
        assert_eq!(r["tradeIDs"].as_array().unwrap().len(), 2);
        assert_eq!(b.asks, vec![(530_000, 30 * M)]);
        let o = ex.order("0x1").unwrap();
        assert_eq!((o.status, o.matched_micro), (OrderStatus::Live, 30 * M));
        // Ledger: 10000 - 15.6 - fees; fee = shares × 0.07 × p × (1 − p).
        let fee = ex.fee_micro(10 * M, 510_000) + ex.fee_micro(20 * M, 520_000);
        assert_eq!(fee, 174_930 + 349_440);
        let acct = ex.account("k").clone();
        assert_eq!(acct.usdc_micro, 10_000 * M - 15_500_000 - fee);
        assert_eq!(acct.positions["up"], 30 * M);
        let ev = events(&mut ex);
        let kinds: Vec<(String, String)> = ev
            .iter()
            .map(|e| {
                (
                    e["event_type"].as_str().unwrap().into(),
                    e["status"].as_str().unwrap().into(),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("order".into(), "LIVE".into()),
                ("trade".into(), "MATCHED".into()),
                ("trade".into(), "MATCHED".into()),
                ("order".into(), "LIVE".into()),
            ]
        );
        assert_eq!(ev[3]["type"], "UPDATE");
        assert_eq!(ev[3]["size_matched"], "30");
        assert_eq!(ev[1]["trader_side"], "TAKER");
        assert_eq!(ev[1]["price"], "0.51");
        assert_eq!(ev[2]["maker_orders"][0]["matched_amount"], "20");
    }

    #[test]
    fn a_resting_order_is_the_maker_of_a_later_crossing_order() {
        let mut ex = Exchange::new(2);
        let mut b = book();
        ex.account("seller").positions.insert("up".into(), 50 * M);
        let r = ex
            .place(
                order("0xs", "seller", Side::Sell, 500_000, 20, OrderType::Gtc),
                &mut b,
                0,
            )
            .unwrap();
        assert_eq!(r["status"], "live");
        // The buyer's 0.51 limit takes the seller's 0.50 first (better price), then 0.51.
        let r = ex
            .place(
                order("0xb", "buyer", Side::Buy, 510_000, 25, OrderType::Fak),
                &mut b,
                5,
            )
            .unwrap();
        assert_eq!(r["status"], "matched");
        assert_eq!(r["takingAmount"], "25");
        assert_eq!(r["makingAmount"], "12.55");
        let s = ex.order("0xs").unwrap();
        assert_eq!(s.status, OrderStatus::Matched);
        assert_eq!(ex.account("seller").positions["up"], 30 * M);
        assert_eq!(ex.account("seller").usdc_micro, 10_010 * M);
        let ev = events(&mut ex);
        let maker_view = ev
            .iter()
            .find(|e| e["event_type"] == "trade" && e["trader_side"] == "MAKER")
            .unwrap();
        assert_eq!(maker_view["maker_orders"][0]["order_id"], "0xs");
        assert_eq!(maker_view["taker_order_id"], "0xb");
        // Nothing left of the seller to cancel.
        let c = ex.cancel("seller", &["0xs".into()], 9);
        assert_eq!(c["not_canceled"]["0xs"], "already canceled or matched");
    }

    #[test]
    fn fok_is_all_or_nothing_and_fak_needs_a_match() {
        let mut ex = Exchange::new(3);
        let mut b = book();
        let r = ex
            .place(
                order("0x1", "k", Side::Buy, 520_000, 31, OrderType::Fok),
                &mut b,
                0,
            )
            .unwrap();
        assert_eq!(r["success"], false);
        assert_eq!(r["errorMsg"], crate::clob::msg::FOK_NOT_FILLED);
        assert_eq!(b.asks.len(), 3, "a killed FOK takes nothing");
        let ev = events(&mut ex);
        assert_eq!(ev[0]["type"], "CANCELLATION");
        let r = ex
            .place(
                order("0x2", "k", Side::Buy, 500_000, 5, OrderType::Fak),
                &mut b,
                0,
            )
            .unwrap();
        assert_eq!(r["errorMsg"], crate::clob::msg::FAK_NOT_FILLED);
        // A market BUY spends its pUSD budget: $10.20 at 0.51 buys 20 shares... only 10 there,
        // the next 10 cost 0.52 each: 10 × 0.51 + 9.80 at 0.52 → 9.8 more, rounded to lots.
        let mut n = order("0x3", "k", Side::Buy, 520_000, 0, OrderType::Fok);
        n.budget_micro = Some(10_200_000);
        n.size_micro = 19_615_384;
        let r = ex.place(n, &mut b, 0).unwrap();
        assert_eq!(r["status"], "matched", "{r}");
        assert_eq!(r["takingAmount"], "19.8");
        assert_eq!(r["makingAmount"], "10.196");
    }

    #[test]
    fn post_only_balance_and_cancel() {
        let mut ex = Exchange::new(4);
        ex.params.initial_usdc_micro = 10 * M;
        let mut b = book();
        let mut n = order("0x1", "k", Side::Buy, 510_000, 5, OrderType::Gtc);
        n.post_only = true;
        assert_eq!(
            ex.place(n, &mut b, 0).unwrap_err(),
            crate::clob::msg::POST_ONLY_CROSSES
        );
        // 15 @ 0.50 = 7.5 reserved; another 10 @ 0.50 does not fit in 10 pUSD.
        ex.place(
            order("0x2", "k", Side::Buy, 500_000, 15, OrderType::Gtc),
            &mut b,
            0,
        )
        .unwrap();
        assert_eq!(
            ex.place(
                order("0x3", "k", Side::Buy, 500_000, 10, OrderType::Gtc),
                &mut b,
                0
            )
            .unwrap_err(),
            msg::NO_BALANCE
        );
        assert_eq!(
            ex.place(
                order("0x4", "k", Side::Sell, 600_000, 5, OrderType::Gtc),
                &mut b,
                0
            )
            .unwrap_err(),
            msg::NO_BALANCE
        );
        let c = ex.cancel("k", &["0x2".into(), "0xnope".into()], 1);
        assert_eq!(c["canceled"][0], "0x2");
        assert_eq!(c["not_canceled"]["0xnope"], "order not found");
        ex.place(
            order("0x3", "k", Side::Buy, 500_000, 10, OrderType::Gtc),
            &mut b,
            0,
        )
        .unwrap();
    }

    #[test]
    fn statuses_progress_and_a_failed_trade_is_reverted() {
        let mut ex = Exchange::new(5);
        let mut b = book();
        ex.fail_next(1);
        ex.place(
            order("0x1", "k", Side::Buy, 510_000, 10, OrderType::Gtc),
            &mut b,
            0,
        )
        .unwrap();
        ex.place(
            order("0x2", "k", Side::Buy, 520_000, 10, OrderType::Gtc),
            &mut b,
            0,
        )
        .unwrap();
        let after_fill = ex.account("k").clone();
        assert_eq!(after_fill.positions["up"], 20 * M);
        events(&mut ex);
        ex.tick(&mut b, ex.params.mined_delay_ms);
        let st: Vec<String> = events(&mut ex)
            .iter()
            .map(|e| e["status"].as_str().unwrap().into())
            .collect();
        assert_eq!(st, vec!["RETRYING", "MINED"]);
        ex.tick(&mut b, ex.params.confirmed_delay_ms);
        let st: Vec<String> = events(&mut ex)
            .iter()
            .map(|e| e["status"].as_str().unwrap().into())
            .collect();
        assert_eq!(st, vec!["FAILED", "CONFIRMED"]);
        // The failed 10 @ 0.51 (and its fee) are undone; the 10 @ 0.52 stays.
        let acct = ex.account("k").clone();
        assert_eq!(acct.positions["up"], 10 * M);
        let fee = ex.fee_micro(10 * M, 520_000);
        assert_eq!(acct.usdc_micro, 10_000 * M - 5_200_000 - fee);
        assert_eq!((ex.stats.failed, ex.stats.confirmed), (1, 1));
        // Final statuses do not move again.
        ex.tick(&mut b, 1_000_000);
        assert!(events(&mut ex).is_empty());
    }

    #[test]
    fn a_delayed_marketable_order_matches_later() {
        let mut ex = Exchange::new(7);
        let mut b = book();
        ex.delay_next(1, 500);
        let r = ex
            .place(
                order("0x1", "k", Side::Buy, 510_000, 5, OrderType::Gtc),
                &mut b,
                0,
            )
            .unwrap();
        assert_eq!(
            (r["status"].as_str(), r["orderID"].as_str()),
            (Some("delayed"), Some("0x1"))
        );
        assert!(ex.order("0x1").is_none() && ex.outbox.is_empty());
        ex.tick(&mut b, 499);
        assert!(ex.order("0x1").is_none());
        ex.tick(&mut b, 500);
        assert_eq!(ex.order("0x1").unwrap().status, OrderStatus::Matched);
        assert_eq!(ex.account("k").positions["up"], 5 * M);
        // Only one was delayed.
        let r = ex
            .place(
                order("0x2", "k", Side::Buy, 510_000, 5, OrderType::Gtc),
                &mut b,
                600,
            )
            .unwrap();
        assert_eq!(r["status"], "matched");
    }

    #[test]
    fn the_book_moving_through_a_resting_order_fills_it_as_maker_and_gtd_expires() {
        let mut ex = Exchange::new(6);
        let mut b = book();
        ex.place(
            order("0x1", "k", Side::Buy, 500_000, 10, OrderType::Gtc),
            &mut b,
            0,
        )
        .unwrap();
        let mut gtd = order("0x2", "k", Side::Buy, 450_000, 10, OrderType::Gtd);
        gtd.expiration_s = 100;
        ex.place(gtd, &mut b, 0).unwrap();
        events(&mut ex);
        b.asks.insert(0, (495_000, 4 * M));
        ex.tick(&mut b, 10);
        let o = ex.order("0x1").unwrap();
        assert_eq!(o.matched_micro, 4 * M);
        let ev = events(&mut ex);
        let t = ev.iter().find(|e| e["event_type"] == "trade").unwrap();
        assert_eq!(
            (t["trader_side"].as_str(), t["price"].as_str()),
            (Some("MAKER"), Some("0.5"))
        );
        assert_eq!(b.asks[0], (510_000, 10 * M));
        // The maker pays no fee: 4 × 0.50.
        assert_eq!(ex.account("k").usdc_micro, 10_000 * M - 2 * M);
        ex.tick(&mut b, 100_000);
        assert_eq!(ex.order("0x2").unwrap().status, OrderStatus::Canceled);
        assert_eq!(ex.stats.expired, 1);
    }
}
