//! A realistic synthetic producer: records of every kind, shaped like the collector's output
//! (random-walk prices on each venue's tick grid, book batches with batch/snapshot flags,
//! millisecond exchange stamps, per-venue sequence numbers, Chainlink values with 18 decimals),
//! with its instruments registered in the segment. Used by the tests and `ringbolt bench archive`.
//!
//! Deterministic for a seed (xorshift64*), except for the publish stamps taken at publish time.

use ringbolt_bus::{
    BookLevel, BusError, Decision, FLAG_BATCH_BEGIN, FLAG_BATCH_END, FLAG_SNAPSHOT, FeedState,
    FeedStatusBody, Funding, Heartbeat, IndexPrice, Liquidation, OrderState, OrderTransition,
    Publisher, Record, Side, TopOfBook, Trade, Venue,
};

/// One synthetic instrument.
#[derive(Clone, Debug)]
struct Instrument {
    venue: Venue,
    id: u32,
    /// Current mid, PRICE_SCALE units.
    mid: i64,
    /// Tick, PRICE_SCALE units.
    tick: i64,
    /// Size quantum, SIZE_SCALE units.
    lot: i64,
    venue_seq: u64,
    trade_id: u64,
}

/// Where the next message is: the instrument after its random walk step, and the time.
struct At {
    inst: usize,
    venue: Venue,
    id: u32,
    mid: i64,
    tick: i64,
    lot: i64,
    now: i64,
}

/// The synthetic record source.
#[derive(Debug)]
pub struct Synth {
    rng: u64,
    instruments: Vec<Instrument>,
    /// Pending records of the current book batch.
    batch: Vec<Record>,
    produced: u64,
    order_id: u64,
}

const BTC: i64 = 95_000 * ringbolt_bus::PRICE_SCALE;

/// The instruments the synthetic producer registers: (venue, name, mid, tick, lot).
fn catalogue() -> Vec<(Venue, &'static str, i64, i64, i64)> {
    let p = ringbolt_bus::PRICE_SCALE;
    vec![
        (
            Venue::Polymarket,
            "btc-updown-5m-1773307200/up/71321045679252212594626385532706912750332728571942532289631379312455583992563",
            p / 2,
            p / 100,
            1_000_000,
        ),
        (
            Venue::Polymarket,
            "btc-updown-5m-1773307200/down/52114319501245915516055106046884209969926127482827954674443846427813813222426",
            p / 2,
            p / 100,
            1_000_000,
        ),
        (Venue::ChainlinkRtds, "btc/usd", BTC, 1, 1),
        (Venue::Coinbase, "BTC-USD", BTC, p / 100, 1),
        (Venue::BinanceSpot, "BTCUSDT", BTC, p / 100, 1_000),
        (Venue::BinanceFutures, "BTCUSDT", BTC, p / 10, 100_000),
        (Venue::Kraken, "XBT/USD", BTC, p / 10, 1),
        (Venue::Gemini, "BTCUSD", BTC, p / 100, 1),
        (Venue::Bybit, "BTCUSDT", BTC, p / 10, 100_000),
        (Venue::Okx, "BTC-USDT-SWAP", BTC, p / 10, 1_000_000),
        (
            Venue::Deribit,
            "BTC-PERPETUAL",
            BTC,
            p / 2,
            10 * ringbolt_bus::SIZE_SCALE,
        ),
        (Venue::Bitstamp, "btcusd", BTC, p, 1),
    ]
}

impl Synth {
    /// A source seeded with `seed`, its instruments registered in `publisher`'s segment.
    ///
    /// # Errors
    /// The bus error when registration fails.
    pub fn new(seed: u64, publisher: &Publisher) -> Result<Synth, BusError> {
        let mut instruments = Vec::new();
        for (venue, name, mid, tick, lot) in catalogue() {
            let id = publisher.register_instrument(venue, name)?;
            instruments.push(Instrument {
                venue,
                id,
                mid,
                tick,
                lot,
                venue_seq: 1_000_000,
                trade_id: 5_000_000_000,
            });
        }
        Ok(Synth {
            rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            instruments,
            batch: Vec::with_capacity(64),
            produced: 0,
            order_id: 1,
        })
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A size: a log-uniform number of lots (1 to ~4000).
    fn size(&mut self, lot: i64) -> i64 {
        let bits = self.below(12);
        let lots = 1 + self.below(1 << bits) as i64;
        lots * lot
    }

    /// Records produced so far.
    #[must_use]
    pub fn produced(&self) -> u64 {
        self.produced
    }

    /// The registered instruments: `(bus id, venue, name)`.
    #[must_use]
    pub fn instruments(&self) -> Vec<(u32, Venue, &'static str)> {
        self.instruments
            .iter()
            .zip(catalogue())
            .map(|(i, (_, name, ..))| (i.id, i.venue, name))
            .collect()
    }

    fn stamp(&mut self, record: &mut Record, inst: usize, ts_ns: i64) {
        let i = &mut self.instruments[inst];
        i.venue_seq += 1;
        record.venue_seq = if i.venue == Venue::ChainlinkRtds {
            0
        } else {
            i.venue_seq
        };
        // Venues stamp in ms; the socket read happens 1–60 ms later.
        let latency_ns = 1_000_000 + (self.rng % 59_000_000) as i64;
        record.recv_ts_ns = ts_ns;
        record.exchange_ts_ns = (ts_ns - latency_ns) / 1_000_000 * 1_000_000;
    }

    /// Produces the next record into `out` as if it were published at `publish_ts_ns` (which is
    /// written into the record; the socket read is placed 2–20 µs earlier). The bus sets `seq`.
    pub fn next_record(&mut self, publish_ts_ns: i64, out: &mut Record) {
        self.produced += 1;
        if let Some(record) = self.batch.pop() {
            *out = record;
            out.publish_ts_ns = publish_ts_ns;
            return;
        }
        let now = publish_ts_ns - 2_000 - self.below(18_000) as i64;
        self.next_message(now, out);
        out.publish_ts_ns = publish_ts_ns;
    }

    fn next_message(&mut self, now: i64, out: &mut Record) {
        if let Some(record) = self.batch.pop() {
            *out = record;
            return;
        }
        let roll = self.below(1000);
        let inst = self.below(self.instruments.len() as u64) as usize;
        let at = self.walk(inst, now);
        // Chainlink publishes only index prices.
        let class = if at.venue == Venue::ChainlinkRtds && roll < 900 {
            900
        } else {
            roll
        };
        match class {
            // Book batches (most of the traffic): 1–12 levels, ~2% snapshots.
            0..=579 => self.book_batch(&at, out),
            580..=739 => self.trade(&at, out),
            740..=899 => self.top(&at, out),
            900..=959 => self.index_price(&at, out),
            960..=974 => {
                let body = Funding {
                    rate: self.below(200_000_000) as i64 - 50_000_000,
                    next_funding_ts_ns: (now / 28_800_000_000_000 + 1) * 28_800_000_000_000,
                    mark_price: at.mid,
                    reserved: [0; 56],
                };
                self.market(&at, 3, &body, out);
            }
            975..=979 => {
                let body = Liquidation {
                    price: at.mid,
                    size: self.size(at.lot),
                    side: 1 + self.below(2) as u8,
                    reserved: [0; 63],
                };
                self.market(&at, 4, &body, out);
            }
            980..=983 => self.feed_status(&at, out),
            984..=991 => self.decision(now, out),
            992..=997 => self.order_transition(now, out),
            _ => {
                let body = Heartbeat {
                    pid: std::process::id(),
                    role: 1,
                    published: self.produced,
                    reserved: [0; 64],
                };
                *out = Record::new(Venue::Internal, 0, 0, &body);
                out.recv_ts_ns = now;
            }
        }
    }

    /// Moves instrument `inst`'s mid by ±2 ticks and returns where the next message is.
    fn walk(&mut self, inst: usize, now: i64) -> At {
        let step = self.below(5) as i64 - 2;
        let i = &mut self.instruments[inst];
        i.mid = (i.mid + step * i.tick).max(i.tick);
        if i.venue == Venue::Polymarket {
            i.mid = i.mid.clamp(i.tick, ringbolt_bus::PRICE_SCALE - i.tick);
        }
        At {
            inst,
            venue: i.venue,
            id: i.id,
            mid: i.mid,
            tick: i.tick,
            lot: i.lot,
            now,
        }
    }

    /// A market record of `body` on `stream` of the instrument, stamped.
    fn market<B: ringbolt_bus::Body>(&mut self, at: &At, stream: u8, body: &B, out: &mut Record) {
        *out = Record::new(at.venue, stream, at.id, body);
        self.stamp(out, at.inst, at.now);
    }

    fn random_side(&mut self) -> Side {
        if self.below(2) == 0 {
            Side::Buy
        } else {
            Side::Sell
        }
    }

    fn book_batch(&mut self, at: &At, out: &mut Record) {
        let levels = 1 + self.below(12) as usize;
        let snapshot = self.below(50) == 0;
        let mut pending = Vec::with_capacity(levels);
        for k in 0..levels {
            let side = self.random_side();
            let offset = (1 + self.below(20) as i64) * at.tick;
            let price = if side == Side::Buy {
                at.mid - offset
            } else {
                at.mid + offset
            };
            let size = if self.below(5) == 0 {
                0
            } else {
                self.size(at.lot)
            };
            let body = BookLevel {
                price: price.max(at.tick),
                size,
                side: side as u8,
                reserved: [0; 63],
            };
            let mut r = Record::zeroed();
            self.market(at, 1, &body, &mut r);
            if k == 0 {
                r.flags |= FLAG_BATCH_BEGIN;
            }
            if k == levels - 1 {
                r.flags |= FLAG_BATCH_END;
            }
            if snapshot {
                r.flags |= FLAG_SNAPSHOT;
            }
            pending.push(r);
        }
        pending.reverse();
        self.batch = pending;
        if let Some(first) = self.batch.pop() {
            *out = first;
        }
    }

    fn trade(&mut self, at: &At, out: &mut Record) {
        let side = self.random_side();
        self.instruments[at.inst].trade_id += 1 + self.below(3);
        let body = Trade {
            price: at.mid + if side == Side::Buy { at.tick } else { 0 },
            size: self.size(at.lot),
            trade_id: self.instruments[at.inst].trade_id,
            side: side as u8,
            reserved: [0; 55],
        };
        self.market(at, 0, &body, out);
    }

    fn top(&mut self, at: &At, out: &mut Record) {
        let spread = (1 + self.below(3) as i64) * at.tick;
        let body = TopOfBook {
            bid_price: at.mid - spread / 2,
            bid_size: self.size(at.lot),
            ask_price: at.mid + spread - spread / 2,
            ask_size: self.size(at.lot),
            reserved: [0; 48],
        };
        self.market(at, 2, &body, out);
    }

    /// A Chainlink-style full-accuracy value: 18 decimals.
    fn index_price(&mut self, at: &At, out: &mut Record) {
        let cl = self
            .instruments
            .iter()
            .position(|i| i.venue == Venue::ChainlinkRtds)
            .unwrap_or(at.inst);
        let base = self.instruments[cl].mid;
        let extra = self.below(10_000_000_000) as i128;
        let value_e18 = i128::from(base) * 10_000_000_000 + extra;
        let body = IndexPrice {
            value_e18,
            price: (value_e18 / 10_000_000_000) as i64,
            price_type: 1,
            reserved: [0; 55],
        };
        let venue = self.instruments[cl].venue;
        *out = Record::new(venue, 0, self.instruments[cl].id, &body);
        self.stamp(out, cl, at.now);
    }

    fn feed_status(&mut self, at: &At, out: &mut Record) {
        let body = FeedStatusBody {
            messages: self.produced,
            gaps: self.produced / 100_000,
            gap_records: self.produced / 50_000,
            reconnects: self.produced / 1_000_000,
            resyncs: self.produced / 500_000,
            parse_errors: 0,
            state: FeedState::ALL[self.below(FeedState::ALL.len() as u64) as usize] as u8,
            reserved: [0; 31],
        };
        *out = Record::new(at.venue, 9, 0, &body);
        out.recv_ts_ns = at.now;
    }

    fn decision(&mut self, now: i64, out: &mut Record) {
        let fired = self.below(4) == 0;
        self.order_id += u64::from(fired);
        let body = Decision {
            trigger_seq: self.produced,
            book_seq: self.produced.saturating_sub(3),
            reference_seq: self.produced.saturating_sub(7),
            probability: self.below(1_000_000_000) as i64,
            edge: self.below(5_000_000) as i64 - 2_500_000,
            price: (1 + self.below(99) as i64) * ringbolt_bus::PRICE_SCALE / 100,
            size: 5 * ringbolt_bus::SIZE_SCALE,
            client_order_id: if fired { self.order_id } else { 0 },
            feature_schema_hash: 0xC0FF_EE11,
            slot: if fired {
                self.below(64) as u16
            } else {
                u16::MAX
            },
            fired: u8::from(fired),
            reason: self.below(8) as u8,
            side: Side::Buy as u8,
            outcome: self.below(2) as u8,
            reserved: [0; 6],
        };
        *out = Record::new(Venue::Internal, 0, self.instruments[0].id, &body);
        out.recv_ts_ns = now;
    }

    fn order_transition(&mut self, now: i64, out: &mut Record) {
        let to = OrderState::ALL[1 + self.below(7) as usize];
        let mut venue_order_id = [0u8; 16];
        if to != OrderState::Submitted {
            venue_order_id[..8].copy_from_slice(&self.next_u64().to_le_bytes());
            venue_order_id[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let body = OrderTransition {
            client_order_id: self.order_id,
            price: (1 + self.below(99) as i64) * ringbolt_bus::PRICE_SCALE / 100,
            size: 5 * ringbolt_bus::SIZE_SCALE,
            filled: if to == OrderState::Filled {
                5 * ringbolt_bus::SIZE_SCALE
            } else {
                0
            },
            venue_order_id,
            error_class: if to == OrderState::Rejected { 3 } else { 0 },
            http_status: if to == OrderState::Submitted { 0 } else { 200 },
            from_state: OrderState::Submitted as u8,
            to_state: to as u8,
            side: Side::Buy as u8,
            paper: 1,
            reserved: [0; 24],
        };
        *out = Record::new(Venue::Polymarket, 5, self.instruments[0].id, &body);
        out.recv_ts_ns = now;
    }
}

/// What [`write_day`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DayStats {
    /// Records written.
    pub records: u64,
    /// Parquet files written.
    pub files: u64,
    /// Bytes of the files.
    pub bytes: u64,
}

/// Instrument names of a synthetic producer, for [`crate::tables::build_batch`].
struct SynthNames(std::collections::HashMap<u32, std::sync::Arc<str>>);

impl crate::tables::InstrumentNames for SynthNames {
    fn name(&mut self, id: u32) -> std::sync::Arc<str> {
        self.0
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("#{id}").into())
    }
}

/// Writes a synthetic archive straight to Parquet (no bus, no archiver process): at least
/// `events` records spread evenly over the `windows` 5-minute windows from `start_s` (the count
/// per window rounded up), one compacted file
/// per table, venue and window (the layout `ringbolt archive` leaves after compaction), with the
/// archiver's writer settings. Window `w` is written by thread `w % threads`, each with its own
/// producer (seed + thread), so the archive is deterministic for given arguments except for
/// publish-time-free fields (none: every stamp is derived from the window clock).
///
/// # Errors
/// Bus (instrument registration), Arrow, Parquet and I/O errors.
pub fn write_day(
    root: &std::path::Path,
    start_s: i64,
    windows: u32,
    events: u64,
    threads: usize,
) -> Result<DayStats, crate::ArchiveError> {
    let threads = threads.max(1);
    let results: Vec<Result<DayStats, crate::ArchiveError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mine = (0..windows).filter(|w| *w as usize % threads == t);
                    write_windows(root, start_s, windows, events, t as u64, mine)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(crate::ArchiveError::Store {
                        message: "a synth thread panicked".to_owned(),
                    })
                })
            })
            .collect()
    });
    let mut total = DayStats::default();
    for r in results {
        let r = r?;
        total.records += r.records;
        total.files += r.files;
        total.bytes += r.bytes;
    }
    Ok(total)
}

/// One thread of [`write_day`]: the windows `mine`, records numbered from the window index so
/// `seq` is unique across threads.
fn write_windows(
    root: &std::path::Path,
    start_s: i64,
    windows: u32,
    events: u64,
    thread: u64,
    mine: impl Iterator<Item = u32>,
) -> Result<DayStats, crate::ArchiveError> {
    use crate::tables::{Source, Table};
    let segment = format!("rb-synth-day-{}-{thread}", std::process::id());
    let publisher = ringbolt_bus::Publisher::create(
        &segment,
        ringbolt_bus::SegmentConfig {
            rings: 1,
            capacity: 1 << 10,
            instrument_capacity: 64,
        },
    )?;
    let mut synth = Synth::new(0x5EED + thread, &publisher)?;
    let mut names = SynthNames(
        synth
            .instruments()
            .into_iter()
            .map(|(id, _, name)| (id, std::sync::Arc::from(name)))
            .collect(),
    );
    drop(publisher);
    let _ = ringbolt_bus::Segment::unlink(&segment);
    let source = Source {
        segment: "synth".to_owned(),
        ring: 0,
        epoch: 1,
    };
    let per_window = events.div_ceil(u64::from(windows.max(1)));
    let step_ns = (crate::layout::WINDOW_S * 1_000_000_000) / per_window.max(1) as i64;
    let mut stats = DayStats::default();
    let mut groups: std::collections::BTreeMap<(Table, u8), Vec<Record>> = Default::default();
    let mut record = Record::zeroed();
    for w in mine {
        let window_start_ns = (start_s + i64::from(w) * crate::layout::WINDOW_S) * 1_000_000_000;
        for i in 0..per_window {
            synth.next_record(window_start_ns + i as i64 * step_ns, &mut record);
            record.seq = u64::from(w) * per_window + i + 1;
            if let Some(table) = record.record_kind().and_then(Table::for_kind) {
                groups
                    .entry((table, record.venue))
                    .or_default()
                    .push(record);
            }
        }
        let window = crate::layout::Window::of_ns(window_start_ns);
        for ((table, venue), rows) in &mut groups {
            if rows.is_empty() {
                continue;
            }
            let (batch, _) = crate::tables::build_batch(*table, &source, rows, &mut names)?;
            let venue = Venue::from_u8(*venue).map_or("unknown", Venue::as_str);
            let dir = window.dir(root, table.name(), venue);
            crate::layout::create_dir_durable(&dir)
                .map_err(|e| crate::ArchiveError::io(&dir, e))?;
            let props = crate::writer::properties(*table, 1, Vec::new())?;
            stats.bytes += crate::writer::write_file(&dir.join("part-0.parquet"), &batch, props)?;
            stats.files += 1;
            stats.records += rows.len() as u64;
            rows.clear();
        }
    }
    Ok(stats)
}
