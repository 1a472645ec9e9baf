//! A deterministic synthetic market: BTC on nine reference venues, Chainlink reports, and a
//! lagging Polymarket market maker on the Up/Down tokens of consecutive 5-minute windows.
//!
//! It emits the same bus records the collector publishes (TopOfBook, Trade, IndexPrice with an
//! exact 18-decimal value, FeedStatus, BookLevel snapshot batches and single-level deltas) and
//! the instrument registrations that market discovery performs, in receive-time order. The true
//! price carries a mean-reverting order-flow drift that trade signs reveal, so models have
//! something to learn beyond the lognormal baseline. Used by tests, benches, `features export`
//! and the `features synth` producer.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use ringbolt_bus::{
    BookLevel, FLAG_BATCH_BEGIN, FLAG_BATCH_END, FLAG_SNAPSHOT, FeedState, FeedStatusBody,
    IndexPrice, PRICE_SCALE, Record, SIZE_SCALE, Side, TopOfBook, Trade, Venue,
};
use ringbolt_market::{Outcome, instrument_name};

use crate::fair::lognormal_up_probability;
use crate::market::{NS, REF_VENUES, WINDOW_S};

/// Generator parameters.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SynthConfig {
    /// PRNG seed.
    pub seed: u64,
    /// Unix second to start at (rounded down to a window start).
    pub start_s: i64,
    /// Windows to generate.
    pub windows: u32,
    /// Simulation step (ms).
    pub step_ms: u32,
    /// Multiplier of every venue's message rate.
    pub intensity: f64,
    /// Initial BTC price (USD).
    pub btc_start: f64,
    /// Diffusion volatility (per √s).
    pub vol_per_sqrt_s: f64,
    /// Chainlink publication lag (ms).
    pub chainlink_lag_ms: u32,
    /// Probability per venue-second of a feed outage (stale for 3–10 s).
    pub outage_per_s: f64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            seed: 7,
            start_s: 1_773_307_200,
            windows: 4,
            step_ms: 20,
            intensity: 1.0,
            btc_start: 95_000.0,
            vol_per_sqrt_s: 9e-5,
            chainlink_lag_ms: 1_200,
            outage_per_s: 0.002,
        }
    }
}

/// One generated item: an instrument registration or a record (in receive-time order).
#[derive(Clone, Debug, PartialEq)]
pub enum SynthItem {
    /// Market discovery registered an instrument (ids are dense from 0).
    Instrument {
        /// Instrument id.
        id: u32,
        /// Venue.
        venue: Venue,
        /// Name per the bus convention.
        name: String,
    },
    /// A bus record; `seq` is its position in the stream.
    Record(Record),
}

/// xoshiro256** seeded by SplitMix64: small, fast, reproducible everywhere.
#[derive(Clone, Debug)]
pub struct Rng([u64; 4]);

impl Rng {
    /// Seeds the generator.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Self([next(), next(), next(), next()])
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
    /// Bernoulli.
    pub fn chance(&mut self, p: f64) -> bool {
        self.uniform() < p
    }
}

#[derive(Clone, Debug)]
struct VenueSim {
    venue: Venue,
    instrument: u32,
    quote_rate: f64,
    trade_rate: f64,
    latency_ns: i64,
    half_spread: f64,
    basis: f64,
    outage_until_ns: i64,
}

struct Pending {
    ts: i64,
    order: u64,
    item: SynthItem,
}
impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.ts, self.order) == (o.ts, o.order)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.ts, self.order).cmp(&(o.ts, o.order))
    }
}

/// The generator; an iterator of [`SynthItem`]s.
pub struct SynthStream {
    cfg: SynthConfig,
    rng: Rng,
    t_ns: i64,
    end_ns: i64,
    ln_s: f64,
    flow: f64,
    history: VecDeque<f64>,
    venues: Vec<VenueSim>,
    chainlink_instrument: u32,
    next_instrument: u32,
    tokens: Vec<(i64, [u32; 2], f64)>,
    heap: BinaryHeap<Reverse<Pending>>,
    order: u64,
    out: VecDeque<SynthItem>,
    seq: u64,
    last_second: i64,
}

impl std::fmt::Debug for SynthStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SynthStream")
            .field("cfg", &self.cfg)
            .field("t_ns", &self.t_ns)
            .finish()
    }
}

fn symbol_of(v: Venue) -> &'static str {
    match v {
        Venue::Coinbase | Venue::Gemini => "BTC-USD",
        Venue::BinanceSpot | Venue::BinanceFutures | Venue::Bybit => "BTCUSDT",
        Venue::Kraken => "XBT/USD",
        Venue::Okx => "BTC-USDT",
        Venue::Deribit => "BTC-PERPETUAL",
        Venue::Bitstamp => "btcusd",
        _ => "BTC",
    }
}

impl SynthStream {
    /// Creates the stream (registrations of the reference instruments come first).
    #[must_use]
    pub fn new(cfg: SynthConfig) -> Self {
        let start = cfg.start_s.div_euclid(WINDOW_S) * WINDOW_S;
        let mut rng = Rng::new(cfg.seed);
        let mut s = Self {
            rng: Rng::new(cfg.seed ^ 0x5eed),
            t_ns: start * NS - 20 * NS,
            end_ns: (start + i64::from(cfg.windows) * WINDOW_S) * NS,
            ln_s: cfg.btc_start.ln(),
            flow: 0.0,
            history: VecDeque::with_capacity(512),
            venues: Vec::new(),
            chainlink_instrument: 0,
            next_instrument: 0,
            tokens: Vec::new(),
            heap: BinaryHeap::new(),
            order: 0,
            out: VecDeque::new(),
            seq: 0,
            last_second: 0,
            cfg,
        };
        for (i, v) in REF_VENUES.iter().enumerate() {
            let id = s.register(*v, symbol_of(*v).to_owned());
            let perp = matches!(v, Venue::BinanceFutures | Venue::Deribit | Venue::Bybit);
            s.venues.push(VenueSim {
                venue: *v,
                instrument: id,
                quote_rate: (4.0 + 10.0 * rng.uniform()) * s.cfg.intensity,
                trade_rate: (1.5 + 4.0 * rng.uniform()) * s.cfg.intensity,
                latency_ns: (5 + (i as i64 * 9) + (rng.uniform() * 60.0) as i64) * 1_000_000,
                half_spread: (0.05 + 0.8 * rng.uniform()) * 1e-4,
                basis: if perp {
                    (0.5 + 2.0 * rng.uniform()) * 1e-4
                } else {
                    (rng.uniform() - 0.5) * 0.6e-4
                },
                outage_until_ns: 0,
            });
        }
        s.chainlink_instrument = s.register(Venue::ChainlinkRtds, "btc/usd".to_owned());
        let t0 = s.t_ns;
        for v in 0..s.venues.len() {
            let (venue, lat) = (s.venues[v].venue, s.venues[v].latency_ns);
            s.status(venue, FeedState::Live, t0 + lat);
        }
        s.discover(start);
        s.discover(start + WINDOW_S);
        s
    }

    fn register(&mut self, venue: Venue, name: String) -> u32 {
        let id = self.next_instrument;
        self.next_instrument += 1;
        self.out
            .push_back(SynthItem::Instrument { id, venue, name });
        id
    }

    fn discover(&mut self, start_s: i64) {
        let token_up = 10_000_000_000_000_000 + self.rng.next_u64() % 9_000_000_000_000_000;
        let token_dn = 10_000_000_000_000_000 + self.rng.next_u64() % 9_000_000_000_000_000;
        let up_name = instrument_name(start_s, Outcome::Up, &token_up.to_string());
        let dn_name = instrument_name(start_s, Outcome::Down, &token_dn.to_string());
        let up = self.register(Venue::Polymarket, up_name);
        let dn = self.register(Venue::Polymarket, dn_name);
        self.tokens.push((start_s, [up, dn], 0.0));
        if self.tokens.len() > 3 {
            self.tokens.remove(0);
        }
    }

    fn push(&mut self, mut rec: Record, exchange_ts: i64, recv_ts: i64) {
        rec.exchange_ts_ns = exchange_ts;
        rec.recv_ts_ns = recv_ts;
        self.order += 1;
        self.heap.push(Reverse(Pending {
            ts: recv_ts,
            order: self.order,
            item: SynthItem::Record(rec),
        }));
    }

    fn status(&mut self, venue: Venue, state: FeedState, ts: i64) {
        let rec = feed_status_record(venue, 0, state);
        self.push(rec, ts, ts);
    }

    fn price_lagged(&self, lag_steps: usize) -> f64 {
        let n = self.history.len();
        self.history
            .get(n.saturating_sub(1 + lag_steps))
            .copied()
            .unwrap_or(self.ln_s)
            .exp()
    }

    fn step(&mut self) {
        let dt = f64::from(self.cfg.step_ms) / 1000.0;
        let step_ns = i64::from(self.cfg.step_ms) * 1_000_000;
        self.t_ns += step_ns;
        let t = self.t_ns;
        let sigma = self.cfg.vol_per_sqrt_s;
        self.flow += -self.flow * dt / 30.0 + 0.25 * dt.sqrt() * self.rng.normal();
        self.ln_s += sigma * dt.sqrt() * self.rng.normal() + 0.15 * self.flow * sigma * dt;
        self.history.push_back(self.ln_s);
        if self.history.len() > 400 {
            self.history.pop_front();
        }
        let s_now = self.ln_s.exp();
        // Reference venues.
        for v in 0..self.venues.len() {
            let vs = self.venues[v].clone();
            if vs.outage_until_ns > 0 && t >= vs.outage_until_ns {
                self.venues[v].outage_until_ns = 0;
                self.status(vs.venue, FeedState::Live, t + vs.latency_ns);
            }
            if self.venues[v].outage_until_ns > 0 {
                continue;
            }
            if self.rng.chance(self.cfg.outage_per_s * dt) {
                let secs = 3 + (self.rng.uniform() * 7.0) as i64;
                self.venues[v].outage_until_ns = t + secs * NS;
                self.status(vs.venue, FeedState::Stale, t + vs.latency_ns);
                continue;
            }
            let mid = s_now * (1.0 + vs.basis);
            if self.rng.chance(vs.quote_rate * dt) {
                let bid = ((mid * (1.0 - vs.half_spread)) * 100.0).floor() / 100.0;
                let ask = (((mid * (1.0 + vs.half_spread)) * 100.0).ceil() / 100.0).max(bid + 0.01);
                let body = TopOfBook {
                    bid_price: (bid * PRICE_SCALE as f64).round() as i64,
                    bid_size: ((0.01 + 2.0 * self.rng.uniform()) * SIZE_SCALE as f64) as i64,
                    ask_price: (ask * PRICE_SCALE as f64).round() as i64,
                    ask_size: ((0.01 + 2.0 * self.rng.uniform()) * SIZE_SCALE as f64) as i64,
                    reserved: [0; 48],
                };
                let rec = Record::new(vs.venue, 1, vs.instrument, &body);
                self.push(rec, t, t + vs.latency_ns);
            }
            if self.rng.chance(vs.trade_rate * dt) {
                let buy = self.rng.chance(0.5 + 0.35 * self.flow.tanh());
                let px = mid
                    * if buy {
                        1.0 + vs.half_spread
                    } else {
                        1.0 - vs.half_spread
                    };
                let body = Trade {
                    price: (px * 100.0).round() as i64 * (PRICE_SCALE / 100),
                    size: ((-self.rng.uniform().max(1e-9).ln()) * 0.05 * SIZE_SCALE as f64) as i64
                        + 1,
                    trade_id: self.order,
                    side: if buy {
                        Side::Buy as u8
                    } else {
                        Side::Sell as u8
                    },
                    reserved: [0; 55],
                };
                let rec = Record::new(vs.venue, 2, vs.instrument, &body);
                self.push(rec, t, t + vs.latency_ns);
            }
        }
        // Chainlink: one report per whole second, exact to 18 decimals.
        let sec = t.div_euclid(NS);
        if sec != self.last_second && t % NS < step_ns {
            self.last_second = sec;
            let fixed8 = (s_now * PRICE_SCALE as f64).round() as i128;
            let value_e18 =
                fixed8 * 10_000_000_000 + i128::from(self.rng.next_u64() % 10_000_000_000);
            let body = IndexPrice {
                value_e18,
                price: (value_e18 / 10_000_000_000) as i64,
                price_type: 1,
                reserved: [0; 55],
            };
            let rec = Record::new(Venue::ChainlinkRtds, 1, self.chainlink_instrument, &body);
            let recv = sec * NS
                + i64::from(self.cfg.chainlink_lag_ms) * 1_000_000
                + (self.rng.uniform() * 100.0) as i64 * 1_000_000;
            self.push(rec, sec * NS, recv);
            // Strike bookkeeping for the market maker.
            let start = sec.div_euclid(WINDOW_S) * WINDOW_S;
            if sec == start {
                if let Some(tok) = self.tokens.iter_mut().find(|k| k.0 == start) {
                    tok.2 = s_now;
                }
                if !self.tokens.iter().any(|k| k.0 == start + WINDOW_S) {
                    self.discover(start + WINDOW_S);
                }
            }
        }
        // Polymarket market maker: requotes with a lagged view of the price.
        let lagged = self.price_lagged(100);
        for k in 0..self.tokens.len() {
            let (start, ids, strike) = self.tokens[k];
            let current = t >= start * NS && t < (start + WINDOW_S) * NS;
            let rate = if current { 4.0 } else { 0.5 } * self.cfg.intensity.min(4.0);
            if t >= (start + WINDOW_S) * NS {
                continue;
            }
            if !self.rng.chance(rate * dt) {
                continue;
            }
            let tau = ((start + WINDOW_S) * NS - t) as f64 / NS as f64;
            let fair = if strike > 0.0 && current {
                lognormal_up_probability(lagged, strike, sigma * 1.1, tau.min(300.0))
            } else {
                0.5
            };
            for (o, id) in ids.iter().enumerate() {
                let f = if o == 0 { fair } else { 1.0 - fair };
                let f = (f + 0.01 * self.rng.normal()).clamp(0.02, 0.98);
                let half = 0.01 + 0.01 * (self.rng.uniform() * 2.0).floor();
                let bid_c = ((f - half) * 100.0).floor().clamp(1.0, 97.0) as i64;
                let ask_c = (((f + half) * 100.0).ceil() as i64).clamp(bid_c + 1, 99);
                let recv = t + 30_000_000;
                if self.rng.chance(0.25) && bid_c > 1 {
                    // A single-level delta (price_change): resize the best bid.
                    let body = BookLevel {
                        price: bid_c * (PRICE_SCALE / 100),
                        size: ((20.0 + 300.0 * self.rng.uniform()) * 100.0) as i64
                            * (SIZE_SCALE / 100),
                        side: Side::Buy as u8,
                        reserved: [0; 63],
                    };
                    self.push(Record::new(Venue::Polymarket, 1, *id, &body), t, recv);
                    continue;
                }
                let mut levels = [(0u8, 0i64, 0i64); 6];
                for j in 0..3 {
                    let sz =
                        ((20.0 + 300.0 * self.rng.uniform()) * 100.0) as i64 * (SIZE_SCALE / 100);
                    levels[j] = (Side::Buy as u8, (bid_c - j as i64).max(1), sz);
                    let sz =
                        ((20.0 + 300.0 * self.rng.uniform()) * 100.0) as i64 * (SIZE_SCALE / 100);
                    levels[3 + j] = (Side::Sell as u8, (ask_c + j as i64).min(99), sz);
                }
                for (j, (side, cents, size)) in levels.iter().enumerate() {
                    let mut flags = FLAG_SNAPSHOT;
                    if j == 0 {
                        flags |= FLAG_BATCH_BEGIN;
                    }
                    if j == levels.len() - 1 {
                        flags |= FLAG_BATCH_END;
                    }
                    let body = BookLevel {
                        price: cents * (PRICE_SCALE / 100),
                        size: *size,
                        side: *side,
                        reserved: [0; 63],
                    };
                    let mut rec = Record::new(Venue::Polymarket, 1, *id, &body);
                    rec.flags = flags;
                    self.push(rec, t, recv);
                }
            }
            if current && self.rng.chance(0.3) {
                let o = usize::from(self.rng.chance(0.5));
                let p = if o == 0 { fair } else { 1.0 - fair };
                let cents = ((p * 100.0).round() as i64).clamp(1, 99);
                let body = Trade {
                    price: cents * (PRICE_SCALE / 100),
                    size: ((5.0 + 50.0 * self.rng.uniform()) * 100.0) as i64 * (SIZE_SCALE / 100),
                    trade_id: 0,
                    side: if self.rng.chance(0.5) {
                        Side::Buy as u8
                    } else {
                        Side::Sell as u8
                    },
                    reserved: [0; 55],
                };
                self.push(
                    Record::new(Venue::Polymarket, 2, ids[o], &body),
                    t,
                    t + 30_000_000,
                );
            }
        }
        // Release everything received by now, in receive order.
        while let Some(Reverse(p)) = self.heap.peek() {
            if p.ts > t {
                break;
            }
            let Some(Reverse(p)) = self.heap.pop() else {
                break;
            };
            if let SynthItem::Record(mut r) = p.item {
                r.seq = self.seq;
                self.seq += 1;
                self.out.push_back(SynthItem::Record(r));
            }
        }
    }
}

/// A `FeedStatus` record for `venue`/`stream` in `state`, counters zero.
#[must_use]
pub fn feed_status_record(venue: Venue, stream: u8, state: FeedState) -> Record {
    let body = FeedStatusBody {
        messages: 0,
        gaps: 0,
        gap_records: 0,
        reconnects: 0,
        resyncs: 0,
        parse_errors: 0,
        state: state as u8,
        reserved: [0; 31],
    };
    Record::new(venue, stream, 0, &body)
}

impl Iterator for SynthStream {
    type Item = SynthItem;

    fn next(&mut self) -> Option<SynthItem> {
        loop {
            if let Some(item) = self.out.pop_front() {
                return Some(item);
            }
            if self.t_ns >= self.end_ns {
                return None;
            }
            self.step();
        }
    }
}
