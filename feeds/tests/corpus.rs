#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Every corpus line of the four required sources parses to the values written in it.
//! Fixtures: `tests/fixtures/` (provenance in `tests/fixtures/SOURCES.md` and
//! `tests/fixtures/polymarket/sources.md`).

use ringbolt_bus::{
    BookLevel, FLAG_BATCH_BEGIN, FLAG_BATCH_END, FLAG_SNAPSHOT, FeedState, FeedStatusBody,
    IndexPrice, PRICE_SCALE, Record, RecordKind, Side, TopOfBook, Trade, Venue,
};
use ringbolt_feeds::decimal::parse_e8;
use ringbolt_feeds::{Action, FrameDriver, ParseError, RestKind, SyncMode};
use ringbolt_market::PolyBook;

fn fixture(path: &str) -> Vec<String> {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full)
        .unwrap_or_else(|e| panic!("{full}: {e}"))
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Per line of a fixture: the parse result and the records it produced.
type Lines = Vec<(Result<(), ParseError>, Vec<Record>)>;

/// Runs every line of the fixture at `path` through `driver`.
fn run(driver: &mut FrameDriver, path: &str) -> Lines {
    fixture(path)
        .iter()
        .map(|line| {
            let mut out = Vec::new();
            let r = driver.frame(line.as_bytes(), 1, &mut out);
            (r, out)
        })
        .collect()
}

/// [`run`], asserting that every line parsed.
fn run_ok(driver: &mut FrameDriver, path: &str) -> Lines {
    let out = run(driver, path);
    assert!(out.iter().all(|(r, _)| r.is_ok()), "{path}: {out:?}");
    out
}

/// [`run`], asserting that every line parsed into exactly `n` records (0: control frames).
fn run_each(driver: &mut FrameDriver, path: &str, n: usize) -> Lines {
    let out = run(driver, path);
    assert!(
        out.iter().all(|(r, o)| r.is_ok() && o.len() == n),
        "{path}: {out:?}"
    );
    out
}

/// Runs a recorded checksummed book sequence through a fresh driver in `mode`, asserting every
/// line parsed with no checksum error, no gap and the one initial sync.
fn checksummed(mode: SyncMode, (venue, path): (Venue, &str)) -> (FrameDriver, Lines) {
    let mut d = FrameDriver::new(venue, mode, true).unwrap();
    let out = run_ok(&mut d, path);
    let c = d.counters.stream(1);
    assert_eq!(
        (c.checksum_errors, c.gaps, c.resyncs),
        (0, 0, 1),
        "{mode:?}"
    );
    (d, out)
}

/// A line's records: asserts there are `len` and that they form one batch (a snapshot or not).
#[track_caller]
fn batch(records: &[Record], len: usize, snapshot: bool) -> &[Record] {
    let records = without_resynced(records);
    assert_eq!(records.len(), len);
    assert_batch(records, snapshot);
    records
}

/// A driver that enforces sequencing for `venue`, and the lines of the fixture at `path`.
fn enforced(venue: Venue, path: &str) -> (FrameDriver, Vec<String>) {
    (
        FrameDriver::new(venue, SyncMode::Enforce, true).unwrap(),
        fixture(path),
    )
}

fn observe(venue: Venue) -> FrameDriver {
    FrameDriver::new(venue, SyncMode::Observe, true).unwrap()
}

fn e8(text: &str) -> i64 {
    parse_e8(text.as_bytes()).unwrap()
}

fn level(r: &Record) -> (Side, i64, i64) {
    let l = r.body_as::<BookLevel>().expect("book level");
    (Side::from_u8(l.side).unwrap(), l.price, l.size)
}

fn trade(r: &Record) -> (Side, i64, i64, u64) {
    let t = r.body_as::<Trade>().expect("trade");
    (Side::from_u8(t.side).unwrap(), t.price, t.size, t.trade_id)
}

fn tob(r: &Record) -> (i64, i64, i64, i64) {
    let t = r.body_as::<TopOfBook>().expect("top of book");
    (t.bid_price, t.bid_size, t.ask_price, t.ask_size)
}

const MS: i64 = 1_000_000;

/// Asserts a top-of-book record's bid, bid size, ask and ask size (decimal texts, in that order,
/// separated by spaces).
#[track_caller]
fn assert_tob(r: &Record, want: &str) {
    let want: Vec<i64> = want.split_whitespace().map(e8).collect();
    assert_eq!(want.len(), 4, "bid, bid size, ask, ask size");
    assert_eq!(tob(r), (want[0], want[1], want[2], want[3]));
}

/// Asserts a book level record's side, price and size (decimal texts).
#[track_caller]
fn assert_level(r: &Record, side: Side, price: &str, size: &str) {
    assert_eq!(level(r), (side, e8(price), e8(size)));
}

/// Asserts a trade record's side, price, size (decimal texts) and trade id.
#[track_caller]
fn assert_trade(r: &Record, (side, price, size, id): (Side, &str, &str, u64)) {
    assert_eq!(trade(r), (side, e8(price), e8(size), id));
}

/// A snapshot batch without the `resynced` FeedStatus an enforcing or observing adapter
/// publishes right after it (asserted here when present: it must be the only status).
fn without_resynced(records: &[Record]) -> &[Record] {
    match records.split_last() {
        Some((last, rest)) if last.kind == RecordKind::FeedStatus as u8 => {
            let state = last.body_as::<FeedStatusBody>().map(|s| s.state);
            assert_eq!(state, Some(FeedState::Resynced as u8));
            rest
        }
        _ => records,
    }
}

fn assert_batch(records: &[Record], snapshot: bool) {
    let records = without_resynced(records);
    assert!(!records.is_empty());
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.has_flags(FLAG_SNAPSHOT), snapshot, "record {i}");
        assert_eq!(r.has_flags(FLAG_BATCH_BEGIN), i == 0, "record {i}");
        assert_eq!(
            r.has_flags(FLAG_BATCH_END),
            i + 1 == records.len(),
            "record {i}"
        );
        assert_eq!(r.recv_ts_ns, 1);
    }
}

#[test]
fn polymarket_book() {
    let mut d = observe(Venue::Polymarket);
    let out = run_ok(&mut d, "polymarket/book.jsonl");
    let tok1 = "65818619657568813474341868652308942079804919287380422192892211131408793125422";

    // Line 1: 3 bids then 3 asks.
    let r = batch(&out[0].1, 6, true);
    assert_eq!(level(&r[0]), (Side::Buy, e8("0.48"), 30 * PRICE_SCALE));
    assert_eq!(level(&r[2]), (Side::Buy, e8("0.50"), 15 * PRICE_SCALE));
    assert_eq!(level(&r[3]), (Side::Sell, e8("0.52"), 25 * PRICE_SCALE));
    assert_eq!(level(&r[5]), (Side::Sell, e8("0.54"), 10 * PRICE_SCALE));
    assert_eq!(r[0].exchange_ts_ns, 1_757_908_892_351 * MS);
    assert_eq!(d.instrument_name(r[0].instrument), tok1);
    assert_eq!(r[0].stream, 1);
    assert_eq!(r[0].record_kind(), Some(RecordKind::BookLevel));

    // Line 2: ".48"-style prices.
    let r = &out[1].1;
    assert_eq!(level(&r[0]), (Side::Buy, 48_000_000, 30 * PRICE_SCALE));
    assert_eq!(level(&r[5]), (Side::Sell, 54_000_000, 10 * PRICE_SCALE));
    assert_eq!(r[0].exchange_ts_ns, 123_456_789_000 * MS);
    assert_eq!(r[0].instrument, out[0].1[0].instrument);

    // Line 3: live 2026 frame, bids ascending / asks descending.
    let r = &out[2].1;
    assert_eq!(r.len(), 6);
    assert_level(&r[0], Side::Buy, "0.01", "112689");
    assert_level(&r[2], Side::Buy, "0.03", "41666.32");
    assert_level(&r[3], Side::Sell, "0.99", "37677.02");
    assert_level(&r[5], Side::Sell, "0.97", "8960.67");
    assert_eq!(r[0].exchange_ts_ns, 1_790_908_667_676 * MS);

    // Line 4: empty book ⇒ one clearing record.
    let r = &out[3].1;
    assert_eq!(r.len(), 1);
    assert_eq!(level(&r[0]), (Side::None, 0, 0));
    assert_eq!(d.instrument_name(r[0].instrument), "1111");
    assert!(r[0].has_flags(FLAG_SNAPSHOT | FLAG_BATCH_BEGIN | FLAG_BATCH_END));

    // Line 5: 86 asks then 76 bids (asks key first).
    let r = batch(&out[4].1, 162, true);
    let bids: Vec<_> = r.iter().map(level).filter(|l| l.0 == Side::Buy).collect();
    let asks: Vec<_> = r.iter().map(level).filter(|l| l.0 == Side::Sell).collect();
    assert_eq!((bids.len(), asks.len()), (76, 86));
    assert_eq!(bids[0], (Side::Buy, e8("0.001"), e8("9000023.58")));
    assert_eq!(bids[75], (Side::Buy, e8("0.511"), e8("1304.72")));
    assert_eq!(asks[0], (Side::Sell, e8("0.999"), e8("10500100")));
    assert_eq!(asks[85], (Side::Sell, e8("0.514"), e8("20230.87")));
    let mut book = PolyBook::new();
    for rec in r {
        book.apply_record(rec).unwrap();
    }
    assert!(book.is_synced());
    assert_eq!(book.best_bid(), Some((e8("0.511"), e8("1304.72"))));
    assert_eq!(book.best_ask(), Some((e8("0.514"), e8("20230.87"))));
    assert_eq!(
        (book.level_count(Side::Buy), book.level_count(Side::Sell)),
        (76, 86)
    );

    // Line 6: fixture shape.
    let r = &out[5].1;
    assert_eq!(r.len(), 4);
    assert_level(&r[1], Side::Buy, "0.49", "350.0");
    assert_eq!(r[0].exchange_ts_ns, 1_703_875_200_000 * MS);
    assert_eq!(d.counters.stream(1).messages, 6);
    assert_eq!(d.counters.stream(1).records, 6 + 6 + 6 + 1 + 162 + 4);
}

#[test]
fn polymarket_price_change() {
    let mut d = observe(Venue::Polymarket);
    let out = run_ok(&mut d, "polymarket/price_change.jsonl");
    let r = batch(&out[0].1, 1, false);
    assert_eq!(level(&r[0]), (Side::Buy, e8("0.5"), 200 * PRICE_SCALE));
    assert_eq!(r[0].exchange_ts_ns, 1_757_908_892_351 * MS);
    assert_eq!(r[0].stream, 2);
    // Line 2: three changes, no event_type key.
    let r = batch(&out[1].1, 3, false);
    assert_eq!(level(&r[0]), (Side::Buy, e8("0.6"), 3300 * PRICE_SCALE));
    assert_eq!(level(&r[2]), (Side::Buy, e8("0.7"), 3400 * PRICE_SCALE));
    assert_eq!(r[2].exchange_ts_ns, 1_729_084_877_448 * MS);
    // Line 3: two tokens in one message.
    let r = &out[2].1;
    assert_eq!(r.len(), 2);
    assert_ne!(r[0].instrument, r[1].instrument);
    assert_level(&r[1], Side::Sell, "0.49", "100.0");
    assert_level(&out[3].1[0], Side::Buy, "0.51", "150.0");
    // Line 5: size "0" removes.
    assert_eq!(level(&out[4].1[0]), (Side::Sell, e8("0.1"), 0));
    // Line 6: obsolete single-level form.
    let r = &out[5].1;
    assert_level(&r[0], Side::Sell, "0.514", "21574.08");
    assert_eq!(r[0].exchange_ts_ns, 1_723_967_931_411 * MS);
}

#[test]
fn polymarket_price_change_waits_for_the_book_when_enforced() {
    let mut d = FrameDriver::new(Venue::Polymarket, SyncMode::Enforce, true).unwrap();
    let book = fixture("polymarket/book.jsonl");
    let change = r#"{"event_type":"price_change","market":"0x1","timestamp":"1757908892400","price_changes":[{"asset_id":"65818619657568813474341868652308942079804919287380422192892211131408793125422","price":"0.50","size":"0","side":"BUY","hash":"h"}]}"#;
    let mut out = Vec::new();
    d.frame(change.as_bytes(), 1, &mut out).unwrap();
    assert!(out.is_empty());
    assert_eq!(d.counters.stream(2).dropped_unsynced, 1);
    d.frame(book[0].as_bytes(), 1, &mut out).unwrap();
    d.frame(change.as_bytes(), 1, &mut out).unwrap();
    assert_eq!(out.len(), 7);
    let mut pb = PolyBook::new();
    for r in &out {
        pb.apply_record(r).unwrap();
    }
    assert_eq!(pb.best_bid(), Some((e8("0.49"), 20 * PRICE_SCALE)));
    // After a reconnect the asset needs a new snapshot.
    let mut sink = Vec::new();
    d.reconnected(&mut sink);
    out.clear();
    d.frame(change.as_bytes(), 1, &mut out).unwrap();
    assert!(out.is_empty());
    assert_eq!(d.counters.stream(2).dropped_unsynced, 2);
}

#[test]
fn polymarket_other_events() {
    let mut d = observe(Venue::Polymarket);
    let out = run_each(&mut d, "polymarket/last_trade_price.jsonl", 1);
    assert_trade(&out[0].1[0], (Side::Buy, "0.456", "219.217767", 0));
    assert_eq!(out[0].1[0].exchange_ts_ns, 1_750_428_146_322 * MS);
    assert_trade(&out[1].1[0], (Side::Sell, "0.491", "85.36", 0));
    assert_trade(&out[2].1[0], (Side::Buy, "0.51", "25.0", 0));

    let out = run_each(&mut d, "polymarket/best_bid_ask.jsonl", 1);
    assert_eq!(tob(&out[0].1[0]), (e8("0.73"), 0, e8("0.77"), 0));
    assert_eq!(out[0].1[0].exchange_ts_ns, 1_766_789_469_958 * MS);
    assert_eq!(tob(&out[1].1[0]), (0, 0, e8("0.77"), 0));
    assert_eq!(tob(&out[2].1[0]), (e8("0.45"), 0, e8("0.47"), 0));

    let out = run_each(&mut d, "polymarket/tick_size_change.jsonl", 1);
    let ticks: Vec<_> = out
        .iter()
        .map(|(_, recs)| {
            let b = recs[0].body_as::<ringbolt_bus::MarketParamsBody>().unwrap();
            (b.tick_size, b.source, b.min_size)
        })
        .collect();
    let tsc = ringbolt_bus::PARAMS_FROM_TICK_SIZE_CHANGE;
    assert_eq!(
        ticks,
        [
            (e8("0.001"), tsc, 0),
            (e8("0.001"), tsc, 0),
            (e8("0.01"), tsc, 0)
        ]
    );
    for file in [
        "polymarket/new_market.jsonl",
        "polymarket/market_resolved.jsonl",
    ] {
        run_each(&mut d, file, 0);
    }
    assert_eq!(d.counters.stream(3).messages, 3);
    assert_eq!(d.counters.stream(6).messages, 3);
}

#[test]
fn polymarket_array_frames_pong_and_unknown() {
    let mut d = observe(Venue::Polymarket);
    let book = fixture("polymarket/book.jsonl");
    let frame = format!("[{},{}]", book[2], book[3]);
    let mut out = Vec::new();
    d.frame(frame.as_bytes(), 1, &mut out).unwrap();
    assert_eq!(out.len(), 7);
    d.frame(b"[]", 1, &mut out).unwrap();
    d.frame(b"PONG", 1, &mut out).unwrap();
    assert_eq!(out.len(), 7);
    assert_eq!(d.counters.stream(0).messages, 2);
    let user = fixture("polymarket/../polymarket/last_trade_price.jsonl")[0]
        .replace("last_trade_price", "order");
    assert_eq!(
        d.frame(user.as_bytes(), 1, &mut out),
        Err(ParseError::Unknown)
    );
    assert_eq!(d.counters.stream(0).parse_errors, 1);
}

fn index(r: &Record) -> (i128, i64, u8) {
    let i = r.body_as::<IndexPrice>().expect("index price");
    (i.value_e18, i.price, i.price_type)
}

#[test]
fn chainlink_rtds() {
    let mut d = observe(Venue::ChainlinkRtds);
    let out = run_ok(&mut d, "chainlink_rtds/crypto_prices_chainlink.jsonl");
    let r = &out[0].1;
    assert_eq!(r.len(), 1);
    assert_eq!(
        index(&r[0]),
        (79_696_948_174_287_960_000_000, 7_969_694_817_428, 1)
    );
    assert_eq!(r[0].exchange_ts_ns, 1_788_600_388_000 * MS);
    assert_eq!(r[0].venue_seq, 1_788_600_388_000);
    assert_eq!(r[0].stream, 1);
    assert_eq!(d.instrument_name(r[0].instrument), "btc/usd");
    assert_eq!(index(&out[1].1[0]).0, 63_621_393_086_946_047_500_000);
    // Line 3: backfill labelled crypto_prices, symbol btc/usd ⇒ the Chainlink stream; values
    // from the JSON number text, exact.
    let r = batch(&out[2].1, 3, true);
    assert!(r.iter().all(|x| x.stream == 1));
    assert_eq!(index(&r[0]).0, 79_639_200_296_092_170_000_000);
    assert_eq!(index(&r[2]).0, 79_639_190_428_857_140_000_000);
    assert_eq!(r[2].exchange_ts_ns, 1_788_608_389_000 * MS);
    // Lines 4-5: TWAPs.
    assert_eq!(out[3].1[0].stream, 2);
    assert_eq!(
        index(&out[3].1[0]),
        (79_697_474_565_615_044_788_224, 7_969_747_456_561, 3)
    );
    assert_eq!(out[4].1[0].stream, 3);
    assert_eq!(index(&out[4].1[0]).0, 79_697_575_317_474_428_059_648);
    // Line 6: TWAP backfill with full accuracy per row.
    let r = &out[5].1;
    assert_eq!(r.len(), 3);
    assert!(r.iter().all(|x| x.stream == 2));
    assert_eq!(index(&r[0]).0, 79_696_840_994_573_453_885_440);
    assert_eq!(index(&r[2]).0, 79_696_928_978_311_781_023_744);

    let out = run_ok(&mut d, "chainlink_rtds/crypto_prices_binance.jsonl");
    assert_eq!(out[0].1[0].stream, 4);
    assert_eq!(
        index(&out[0].1[0]),
        (79_697_730_000_000_000_000_000, 7_969_773_000_000, 1)
    );
    assert_eq!(out[1].1.len(), 3);
    assert_eq!(index(&out[1].1[1]).0, 79_697_730_000_000_000_000_000);
    assert_eq!(index(&out[2].1[0]).0, 61_035_860_000_000_000_000_000);
    assert_eq!(index(&out[3].1[2]).0, 61_150_890_000_000_000_000_000);

    let out = run(&mut d, "chainlink_rtds/control.jsonl");
    assert!(out[0].0.is_ok() && out[0].1.is_empty());

    // The copies kept with the Polymarket samples.
    let out = run_ok(&mut d, "polymarket/rtds_crypto_prices_chainlink.jsonl");
    assert_eq!(index(&out[0].1[0]).0, 65_245_091_651_786_417_500_000);
    assert_eq!(index(&out[1].1[0]).0, 97_150_500_000_000_000_000_000);
    assert_eq!(out[2].1.len(), 2);
    assert_eq!(index(&out[2].1[1]).0, 2_000_000_000_000_000_000);
    assert_eq!(out[3].1[0].stream, 2, "topic decides, not window_s");
    let out = run_ok(&mut d, "polymarket/rtds_crypto_prices_binance.jsonl");
    assert_eq!(index(&out[2].1[0]).0, 189_550_000_000_000_000_000);
    assert_eq!(d.instrument_name(out[2].1[0].instrument), "solusdt");
}

#[test]
fn chainlink_dedupes_backfill_when_enforced() {
    let mut d = FrameDriver::new(Venue::ChainlinkRtds, SyncMode::Enforce, true).unwrap();
    let update = r#"{"payload":{"full_accuracy_value":"79639190428857140000000","symbol":"btc/usd","timestamp":1788608389000,"value":79639.19042885714},"timestamp":1788608389500,"topic":"crypto_prices_chainlink","type":"update"}"#;
    let mut out = Vec::new();
    d.frame(update.as_bytes(), 1, &mut out).unwrap();
    let lines = fixture("chainlink_rtds/crypto_prices_chainlink.jsonl");
    d.frame(lines[2].as_bytes(), 1, &mut out).unwrap();
    assert_eq!(
        out.len(),
        1,
        "all backfill rows are not newer than the update"
    );
    assert_eq!(d.counters.stream(1).dropped_unsynced, 3);
}

#[test]
fn binance_spot_trades_and_tickers() {
    let mut d = observe(Venue::BinanceSpot);
    let out = run_each(&mut d, "binance_spot/trade.jsonl", 1);
    assert_eq!(
        trade(&out[0].1[0]),
        (Side::Sell, e8("0.001"), 100 * PRICE_SCALE, 12345)
    );
    assert_eq!(out[0].1[0].exchange_ts_ns, 1_672_515_782_136 * MS);
    assert_trade(&out[1].1[0], (Side::Buy, "0.00426990", "33.82", 40_756_030));
    assert_eq!(out[1].1[0].exchange_ts_ns, 1_554_076_800_940 * MS);
    assert_trade(&out[3].1[0], (Side::Sell, "4149.74", "0.4387", 705_291_099));
    assert_eq!(d.instrument_name(out[3].1[0].instrument), "ETHUSDT");

    let out = run_each(&mut d, "binance_spot/aggTrade.jsonl", 1);
    assert_trade(
        &out[0].1[0],
        (Side::Buy, "58942.01", "0.000356", 640_283_266),
    );
    assert_eq!(out[0].1[0].venue_seq, 640_283_266);
    assert_eq!(out[0].1[0].stream, 2);
    assert_trade(
        &out[5].1[0],
        (Side::Sell, "64348.95", "0.00009", 3_988_316_038),
    );
    assert_eq!(out[5].1[0].exchange_ts_ns, 1_781_416_576_889 * MS);

    let out = run_each(&mut d, "binance_spot/bookTicker.jsonl", 1);
    assert_tob(&out[0].1[0], "8010 0.142459 8012.15 0.031201");
    assert_eq!(out[0].1[0].venue_seq, 1_127_645_101);
    assert_tob(&out[1].1[0], "29010.9 13.94302 29010.91 3.99953");
    assert_tob(&out[5].1[0], "1215.27 32.4911 1215.28 13.939");
    assert_eq!(out[5].1[0].venue_seq, 22_606_535_573);

    run_each(&mut d, "binance_spot/control.jsonl", 0);
    assert_eq!(
        d.actions
            .iter()
            .filter(|a| **a == Action::Reconnect)
            .count(),
        2
    );
}

#[test]
fn binance_spot_depth_observed() {
    let mut d = observe(Venue::BinanceSpot);
    let out = run_ok(&mut d, "binance_spot/depth_diff.jsonl");
    let r = batch(&out[0].1, 4, false);
    assert_eq!(level(&r[0]), (Side::Buy, e8("35743.98"), 0));
    assert_level(&r[1], Side::Buy, "35743.87", "0.000015");
    assert_eq!(level(&r[3]), (Side::Sell, e8("35743.97"), 0));
    assert!(r.iter().all(|x| x.venue_seq == 11_294_093_726));
    assert_eq!(r[0].exchange_ts_ns, 1_622_363_903_670 * MS);
    assert_eq!(
        level(&out[2].1[1]),
        (Side::Sell, e8("0.0026"), 100 * PRICE_SCALE)
    );
    assert_eq!(out[3].1.len(), 2);
    // Snapshot bodies: the tardis-wrapped one names its symbol; bare ones follow the last depth
    // instrument (here ETHUSDT) in offline parsing.
    let out = run_ok(&mut d, "binance_spot/depth_snapshot_rest.jsonl");
    let r = batch(&out[0].1, 6, true);
    assert_level(&r[0], Side::Buy, "23171.42", "0.03");
    assert_level(&r[5], Side::Sell, "23224.58", "0.04353");
    assert!(
        r.iter()
            .all(|x| x.venue_seq == 33_933_317_943 && x.stream == 5)
    );
    let r = &out[1].1;
    assert_eq!(d.instrument_name(r[0].instrument), "BTCUSDC");
    assert_level(&r[3], Side::Sell, "4096", "1.425419");
    assert_eq!(r[0].venue_seq, 16_084_251);
}

#[test]
fn binance_spot_resync_scenario_enforced() {
    // Through the real path: buffer, REST snapshot via on_rest, replay, then live chaining.
    let (mut d, lines) = enforced(
        Venue::BinanceSpot,
        "binance_spot/resync_scenario_lrcbtc.jsonl",
    );
    let mut out = Vec::new();
    d.frame(lines[0].as_bytes(), 1, &mut out).unwrap();
    assert!(out.is_empty(), "buffered until the snapshot");
    let Some(Action::Fetch(req)) = d.actions.pop() else {
        panic!("expected a snapshot fetch, got {:?}", d.actions)
    };
    assert_eq!(req.path, "/api/v3/depth?symbol=LRCBTC&limit=5000");
    assert_eq!(req.kind, RestKind::BookSnapshot);
    d.rest(&req, lines[1].as_bytes(), 1, &mut out).unwrap();
    let snap: Vec<_> = out.iter().filter(|r| r.stream == 5).collect();
    assert!(!snap.is_empty() && snap.iter().all(|r| r.venue_seq == 259_345_543));
    let status = out
        .iter()
        .find_map(|r| r.body_as::<FeedStatusBody>())
        .unwrap();
    assert_eq!(status.state, FeedState::Resynced as u8);
    let before = out.len();
    for line in &lines[2..] {
        d.frame(line.as_bytes(), 1, &mut out).unwrap();
    }
    let applied: Vec<_> = out[before..].iter().filter(|r| r.stream == 4).collect();
    // Line 3 (u = lastUpdateId) is dropped; lines 4.. chain with U == prev u + 1.
    assert_eq!(applied[0].venue_seq, 259_345_545);
    assert_level(applied[0], Side::Sell, "0.00000638", "27122");
    assert_eq!(applied.last().unwrap().venue_seq, 259_345_563);
    assert_eq!(d.counters.stream(4).gaps, 0);
    assert_eq!(d.counters.stream(4).dropped_unsynced, 2);
    assert_eq!(d.counters.stream(4).resyncs, 1);
    // An injected gap: U jumps ⇒ gap status, fetch queued, further updates buffered.
    let gap = r#"{"stream":"lrcbtc@depth@100ms","data":{"e":"depthUpdate","E":1633998541981,"s":"LRCBTC","U":259345570,"u":259345571,"b":[],"a":[["0.00000639","1.00000000"]]}}"#;
    let before = out.len();
    d.frame(gap.as_bytes(), 1, &mut out).unwrap();
    let new = &out[before..];
    assert_eq!(new.len(), 1);
    assert_eq!(
        new[0].body_as::<FeedStatusBody>().unwrap().state,
        FeedState::GapDetected as u8
    );
    assert_eq!(d.counters.stream(4).gaps, 1);
    assert_eq!(d.counters.stream(4).gap_records, 6);
    assert!(matches!(d.actions.last(), Some(Action::Fetch(_))));
}

#[test]
fn coinbase_exchange() {
    let mut d = observe(Venue::Coinbase);
    let out = run_each(&mut d, "coinbase/exchange_ticker.jsonl", 1);
    assert_eq!(tob(&out[0].1[0]), (e8("4094.99"), 0, e8("4095"), 0));
    assert_eq!(out[0].1[0].venue_seq, 8_176_375_276);
    assert_eq!(out[0].1[0].exchange_ts_ns, 1_554_076_804_540_000_000);
    assert_tob(&out[2].1[0], "17165.15 0.6154089 17167.76 0.18528568");
    assert_eq!(
        tob(&out[5].1[0]),
        (e8("0.00618217"), 0, e8("0.00619345"), 0)
    );
    assert_eq!(d.instrument_name(out[5].1[0].instrument), "DASH-BTC");

    let out = run_each(&mut d, "coinbase/exchange_matches.jsonl", 1);
    // Maker side "sell" ⇒ aggressor buy.
    assert_trade(
        &out[0].1[0],
        (Side::Buy, "57786.82", "0.00031874", 147_587_438),
    );
    assert_eq!(out[0].1[0].venue_seq, 22_962_703_070);
    assert_trade(&out[1].1[0], (Side::Sell, "4.978", "0.97133855", 216_544));
    assert_trade(&out[4].1[0], (Side::Buy, "0.00001306", "894.7", 280_234));
    assert_eq!(out[4].1[0].exchange_ts_ns, 1_618_677_817_308_069_000);
    assert_eq!(
        d.counters.stream(2).gaps,
        0,
        "SKL-BTC 280232..280234 is contiguous"
    );

    run_each(&mut d, "coinbase/exchange_heartbeat.jsonl", 0);
    assert_eq!(d.counters.stream(4).messages, 4);

    let out = run_ok(&mut d, "coinbase/exchange_level2.jsonl");
    let r = batch(&out[0].1, 6, true);
    assert_level(&r[0], Side::Buy, "37209.96", "0.04016376");
    assert_level(&r[3], Side::Sell, "37212.77", "0.05724592");
    assert_level(&out[1].1[0], Side::Buy, "37378.26", "0.0246");
    assert_eq!(out[1].1[0].exchange_ts_ns, 1_622_624_529_048_568_000);
    assert_eq!(out[3].1.len(), 2);
    assert_eq!(
        out[3].1[0].exchange_ts_ns, 0,
        "0001-01-01 means not provided"
    );
    let r = &out[4].1;
    assert_eq!(r.len(), 225 + 402);
    assert_level(&r[0], Side::Buy, "0.00001302", "110.0");
    assert_level(&r[224], Side::Buy, "0.00000004", "100000.0");
    assert_level(&r[225], Side::Sell, "0.00001305", "4781.0");
    assert_level(&r[626], Side::Sell, "1.22", "500.0");
    assert_level(&out[5].1[0], Side::Sell, "0.00001306", "660.5");
    assert_level(&out[29].1[0], Side::Buy, "0.00001303", "6750.3");

    run_each(&mut d, "coinbase/control.jsonl", 0);
}

#[test]
fn coinbase_level2_enforced_waits_for_snapshot() {
    let (mut d, lines) = enforced(Venue::Coinbase, "coinbase/exchange_level2.jsonl");
    let mut out = Vec::new();
    d.frame(lines[1].as_bytes(), 1, &mut out).unwrap();
    assert!(out.is_empty());
    for line in &lines[4..] {
        d.frame(line.as_bytes(), 1, &mut out).unwrap();
    }
    assert_eq!(out.len(), 627 + 25);
    assert_eq!(d.counters.stream(3).dropped_unsynced, 1);
}

#[test]
fn coinbase_advanced() {
    let mut d = observe(Venue::Coinbase);
    let out = run_ok(&mut d, "coinbase/advanced_level2.jsonl");
    let r = batch(&out[0].1, 2, true);
    assert_level(&r[0], Side::Buy, "21921.73", "0.06317902");
    assert_eq!(r[0].exchange_ts_ns, 1_675_974_770_714_964_855);
    assert_eq!(r[0].stream, 6);
    let r = &out[2].1;
    assert_batch(r, false);
    assert_eq!(level(&r[1]), (Side::Sell, e8("68901"), 0));
    assert_eq!(r[1].venue_seq, 1);

    let out = run_ok(&mut d, "coinbase/advanced_ticker.jsonl");
    assert_tob(&out[0].1[0], "21931.98 8000.21 21933.98 8038.07770938");
    assert!(out[2].1.is_empty(), "older revision without best bid/ask");
    assert_tob(&out[3].1[0], "64281.7 0.21558849 64281.71 0.02287045");
    assert_eq!(out[3].1[0].venue_seq, 16);

    let out = run_ok(&mut d, "coinbase/advanced_market_trades.jsonl");
    assert_trade(
        &out[1].1[0],
        (Side::Sell, "115445.28", "0.00015604", 892_262_231),
    );
    assert_eq!(out[1].1[0].exchange_ts_ns, 1_761_583_479_600_153_000);
    assert_eq!(out[2].1.len(), 2);
    assert_trade(&out[2].1[1], (Side::Buy, "68900", "0.05", 995_098_701));
    assert_trade(
        &out[3].1[0],
        (Side::Buy, "64340.74", "0.00746872", 1_037_798_145),
    );

    run_each(&mut d, "coinbase/advanced_heartbeats.jsonl", 0);
}

#[test]
fn coinbase_advanced_sequence_gap_resubscribes() {
    let (mut d, lines) = enforced(Venue::Coinbase, "coinbase/advanced_level2.jsonl");
    let mut out = Vec::new();
    d.frame(lines[1].as_bytes(), 1, &mut out).unwrap(); // snapshot, sequence_num 0
    d.frame(lines[2].as_bytes(), 1, &mut out).unwrap(); // update, sequence_num 1
    assert_eq!(d.counters.stream(0).gaps, 0);
    let skipped = lines[2].replace("\"sequence_num\":1", "\"sequence_num\":5");
    d.frame(skipped.as_bytes(), 1, &mut out).unwrap();
    assert_eq!(d.counters.stream(0).gaps, 1);
    assert_eq!(d.counters.stream(0).gap_records, 3);
    let Some(Action::Resubscribe(frames)) = d.actions.last() else {
        panic!("{:?}", d.actions)
    };
    let text: Vec<String> = frames
        .iter()
        .map(|f| match f.text() {
            Some(t) => String::from_utf8(t.to_vec()).unwrap(),
            None => String::new(),
        })
        .collect();
    assert_eq!(
        text,
        [
            r#"{"type":"unsubscribe","product_ids":["BTC-USD"],"channel":"level2"}"#,
            r#"{"type":"subscribe","product_ids":["BTC-USD"],"channel":"level2"}"#
        ]
    );
    // Updates are dropped until the new snapshot.
    let n = out.len();
    let next = lines[2].replace("\"sequence_num\":1", "\"sequence_num\":6");
    d.frame(next.as_bytes(), 1, &mut out).unwrap();
    assert_eq!(out.len(), n);
}

#[test]
fn binance_futures_streams() {
    let mut d = observe(Venue::BinanceFutures);
    let out = run_each(&mut d, "binance_futures/aggTrade.jsonl", 1);
    assert_trade(&out[0].1[0], (Side::Buy, "58665.00", "0.043", 389_551_486));
    assert_eq!(trade(&out[1].1[0]).3, 0, "capture without `a`");
    let out = run_each(&mut d, "binance_futures/bookTicker.jsonl", 1);
    assert_tob(&out[0].1[0], "33134.42 0.170 33139.39 0.380");
    assert_eq!(out[0].1[0].exchange_ts_ns, 1_612_137_603_571 * MS);
    assert_eq!(out[0].1[0].venue_seq, 185_130_926_750);

    let out = run_ok(&mut d, "binance_futures/markPrice.jsonl");
    let r = &out[0].1;
    assert_eq!(r.len(), 3);
    assert_eq!(
        index(&r[0]),
        (58_940_149_245_320_000_000_000, e8("58940.14924532"), 2)
    );
    assert_eq!(
        index(&r[1]),
        (58_857_266_936_640_000_000_000, e8("58857.26693664"), 1)
    );
    let f = r[2].body_as::<ringbolt_bus::Funding>().unwrap();
    assert_eq!(f.rate, 584_550_000, "0.00058455 at 1e12");
    assert_eq!(f.next_funding_ts_ns, 1_617_321_600_000 * MS);
    assert_eq!(f.mark_price, e8("58940.14924532"));
    assert_eq!(out[1].1.len(), 2, "no index price in the 2019 frame");
    let arr = &out[4].1;
    assert_eq!(
        arr.len(),
        6,
        "!markPrice@arr: two symbols × mark, index, funding"
    );
    assert_eq!(d.instrument_name(arr[3].instrument), "ETHUSDT");

    let out = run_each(&mut d, "binance_futures/forceOrder.jsonl", 1);
    let l = out[0].1[0].body_as::<ringbolt_bus::Liquidation>().unwrap();
    assert_eq!(
        (l.price, l.size, l.side),
        (e8("4793.91"), e8("0.014"), Side::Buy as u8)
    );
    assert_eq!(out[0].1[0].exchange_ts_ns, 1_584_059_031_421 * MS);

    let out = run_ok(&mut d, "binance_futures/depth_diff.jsonl");
    assert_eq!(out[0].1.len(), 4);
    assert_level(&out[0].1[0], Side::Buy, "35729.77", "1.600");
    for file in [
        "binance_futures/openInterest_rest.jsonl",
        "binance_futures/ticker_24hr.jsonl",
        "binance_futures/control.jsonl",
    ] {
        run_each(&mut d, file, 0);
    }
    assert_eq!(d.counters.stream(8).messages, 3);
}

#[test]
fn binance_futures_resync_scenario_enforced() {
    let (mut d, lines) = enforced(
        Venue::BinanceFutures,
        "binance_futures/resync_scenario_sushiusdt.jsonl",
    );
    let mut out = Vec::new();
    d.frame(lines[0].as_bytes(), 1, &mut out).unwrap();
    let Some(Action::Fetch(req)) = d.actions.pop() else {
        panic!("{:?}", d.actions)
    };
    assert_eq!(req.host, "fapi.binance.com");
    assert_eq!(req.path, "/fapi/v1/depth?symbol=SUSHIUSDT&limit=1000");
    d.frame(lines[2].as_bytes(), 1, &mut out).unwrap();
    d.rest(&req, lines[1].as_bytes(), 1, &mut out).unwrap();
    assert_eq!(out.iter().filter(|r| r.stream == 5).count(), 2000);
    for line in &lines[3..] {
        d.frame(line.as_bytes(), 1, &mut out).unwrap();
    }
    let c = d.counters.stream(4);
    assert_eq!((c.gaps, c.dropped_unsynced, c.resyncs), (0, 3, 1));
    let applied: Vec<u64> = out
        .iter()
        .filter(|r| r.stream == 4 && r.kind == 2)
        .map(|r| r.venue_seq)
        .collect();
    assert_eq!(applied.first(), Some(&600_859_607_423));
    assert_eq!(applied.last(), Some(&600_859_664_422));
}

#[test]
fn okx_checksum_sequence_matches_and_tampering_is_caught() {
    // 41 recorded frames (snapshot + 40 updates) whose checksums SOURCES.md verified.
    for mode in [SyncMode::Observe, SyncMode::Enforce] {
        let (_, out) = checksummed(
            mode,
            (Venue::Okx, "okx/books_checksum_sequence_btcusdt.jsonl"),
        );
        let snap = batch(&out[0].1, 800, true);
        assert_level(&snap[0], Side::Buy, "30243.4", "0.0012029");
        assert_level(&snap[400], Side::Sell, "30243.5", "1.44679");
        assert_eq!(snap[0].exchange_ts_ns, 1_652_459_225_381 * MS);
        assert!(
            out[40]
                .1
                .iter()
                .any(|r| level(r) == (Side::Sell, e8("30251.8"), e8("0.24420612")))
        );
    }
    // Change one size in update 5: its checksum no longer matches.
    let lines = fixture("okx/books_checksum_sequence_btcusdt.jsonl");
    let mut d = FrameDriver::new(Venue::Okx, SyncMode::Enforce, true).unwrap();
    let mut out = Vec::new();
    for line in &lines[..5] {
        d.frame(line.as_bytes(), 1, &mut out).unwrap();
    }
    let tampered = lines[5].replacen("\",\"0\",\"", "1\",\"0\",\"", 1);
    assert_ne!(tampered, lines[5]);
    let before = out.len();
    d.frame(tampered.as_bytes(), 1, &mut out).unwrap();
    assert_eq!(d.counters.stream(1).checksum_errors, 1);
    let new = &out[before..];
    assert_eq!(
        new.len(),
        1,
        "the bad update is dropped, only the status is emitted"
    );
    assert_eq!(
        new[0].body_as::<FeedStatusBody>().unwrap().state,
        FeedState::GapDetected as u8
    );
    let Some(Action::Resubscribe(frames)) = d.actions.last() else {
        panic!("{:?}", d.actions)
    };
    assert_eq!(frames.len(), 2);
    // Further updates wait for the fresh snapshot.
    d.frame(lines[6].as_bytes(), 1, &mut out).unwrap();
    assert_eq!(out.len(), before + 1);
    d.frame(lines[0].as_bytes(), 1, &mut out).unwrap();
    // The snapshot's 800 levels, then its `resynced` status.
    assert_eq!(out.len(), before + 1 + 800 + 1);
    assert_eq!(
        out.last()
            .unwrap()
            .body_as::<FeedStatusBody>()
            .unwrap()
            .state,
        FeedState::Resynced as u8
    );
}

#[test]
fn okx_other_channels() {
    let mut d = observe(Venue::Okx);
    let out = run_each(&mut d, "okx/trades.jsonl", 1);
    assert_trade(&out[0].1[0], (Side::Buy, "30236", "0.0002", 338_476_307));
    assert_eq!(out[0].1[0].exchange_ts_ns, 1_652_459_224_818 * MS);
    assert_eq!(
        trade(&out[3].1[0]),
        (Side::Buy, e8("43568.8"), 7 * PRICE_SCALE, 219_066_264)
    );
    let out = run_each(&mut d, "okx/bbo-tbt.jsonl", 1);
    assert_tob(&out[0].1[0], "31774.6 0.3392211 31774.7 0.14368878");
    let out = run(&mut d, "okx/tickers.jsonl");
    assert_tob(&out[0].1[0], "30228.6 0.23393 30228.7 1.55896972");
    let out = run_ok(&mut d, "okx/funding-rate.jsonl");
    let f = out[0].1[0].body_as::<ringbolt_bus::Funding>().unwrap();
    assert_eq!(f.rate, 153_470_215, "0.0001534702159002 truncated to 1e-12");
    assert_eq!(f.next_funding_ts_ns, 1_646_323_200_000 * MS);
    assert!(out[3].1.is_empty(), "no current fundingRate");
    let out = run(&mut d, "okx/mark-price.jsonl");
    assert_eq!(
        index(&out[0].1[0]),
        (110_562_000_000_000_000_000_000, e8("110562.0"), 2)
    );
    let out = run(&mut d, "okx/index-tickers.jsonl");
    assert_eq!(index(&out[1].1[0]).1, e8("35.583"));
    let out = run(&mut d, "okx/liquidation-orders.jsonl");
    let l = out[0].1[0].body_as::<ringbolt_bus::Liquidation>().unwrap();
    assert_eq!(
        (l.price, l.size, l.side),
        (e8("0.55205"), 39 * PRICE_SCALE, Side::Buy as u8)
    );
    assert_eq!(d.instrument_name(out[0].1[0].instrument), "XRP-USD-230929");
    for file in ["okx/open-interest.jsonl", "okx/control.jsonl"] {
        run_each(&mut d, file, 0);
    }
    let mut sink = Vec::new();
    d.frame(b"pong", 1, &mut sink).unwrap();
}

#[test]
fn kraken_checksums_v1_sequence_and_v2_vector() {
    for mode in [SyncMode::Observe, SyncMode::Enforce] {
        let (d, out) = checksummed(
            mode,
            (
                Venue::Kraken,
                "kraken/v1_book_checksum_sequence_xbtchf.jsonl",
            ),
        );
        let snap = batch(&out[0].1, 316 + 502, true);
        assert_level(&snap[0], Side::Sell, "56218.3", "0.15");
        assert_eq!(snap[0].exchange_ts_ns, 1_618_678_117_243_818_000);
        assert_level(&snap[316], Side::Buy, "56119", "0.14375128");
        assert_level(&out[1].1[0], Side::Sell, "56872.7", "0.01");
        assert_level(&out[60].1[0], Side::Buy, "56060", "0.08614558");
        assert_eq!(d.instrument_name(snap[0].instrument), "XBT/CHF");

        // The official v2 vector (CRC32 3310070434 over the JSON numbers' text).
        let mut d = FrameDriver::new(Venue::Kraken, mode, true).unwrap();
        let out = run_ok(&mut d, "kraken/v2_book.jsonl");
        assert_eq!(without_resynced(&out[0].1).len(), 20);
        assert_level(&out[0].1[0], Side::Buy, "45283.5", "0.1");
        assert_eq!(d.counters.stream(1).resyncs, 1);
        // Lines 2-4 are not verifiable (elided snapshot / synthetic fixtures).
        assert!(d.counters.stream(1).checksum_errors >= 1);
    }
    let mut d = FrameDriver::new(Venue::Kraken, SyncMode::Enforce, true).unwrap();
    let first = fixture("kraken/v2_book.jsonl").remove(0);
    let mut out = Vec::new();
    d.frame(first.as_bytes(), 1, &mut out).unwrap();
    assert_eq!(
        d.counters.stream(1).checksum_errors,
        0,
        "docs vector must verify"
    );

    // Tampering the best ask's volume text in the snapshot (v1 snapshots carry no checksum)
    // breaks the next update's checksum: dropped, status, resubscribe.
    let lines = fixture("kraken/v1_book_checksum_sequence_xbtchf.jsonl");
    let mut d = FrameDriver::new(Venue::Kraken, SyncMode::Enforce, true).unwrap();
    let mut out = Vec::new();
    let tampered = lines[0].replacen("\"0.15000000\"", "\"0.15000001\"", 1);
    assert_ne!(tampered, lines[0]);
    d.frame(tampered.as_bytes(), 1, &mut out).unwrap();
    let before = out.len();
    d.frame(lines[1].as_bytes(), 1, &mut out).unwrap();
    assert_eq!(d.counters.stream(1).checksum_errors, 1);
    assert_eq!(out.len(), before + 1);
    assert_eq!(
        out[before].body_as::<FeedStatusBody>().unwrap().state,
        FeedState::GapDetected as u8
    );
    let Some(Action::Resubscribe(frames)) = d.actions.last() else {
        panic!("{:?}", d.actions)
    };
    assert_eq!(
        frames[1],
        ringbolt_feeds::Outgoing::Text(
            br#"{"event":"subscribe","pair":["XBT/CHF"],"subscription":{"name":"book","depth":1000}}"#.to_vec()
        )
    );
}

#[test]
fn kraken_trades_tickers_spreads() {
    let mut d = observe(Venue::Kraken);
    let out = run_ok(&mut d, "kraken/v1_trade.jsonl");
    assert_trade(&out[0].1[0], (Side::Buy, "57126.7", "0.02063928", 0));
    assert_eq!(out[0].1[0].exchange_ts_ns, 1_616_333_924_737_428_000);
    assert_eq!(out[1].1.len(), 2);
    assert_eq!(trade(&out[1].1[0]).0, Side::Sell);
    let out = run(&mut d, "kraken/v1_spread.jsonl");
    assert_tob(&out[0].1[0], "31760 0.02167307 31760.1 6.46761464");
    assert_eq!(out[0].1[0].exchange_ts_ns, 1_654_031_976_197_239_000);
    let out = run_ok(&mut d, "kraken/v1_ticker.jsonl");
    assert_tob(&out[0].1[0], "29938.5 0.0841 29938.6 12.41074632");
    let out = run_ok(&mut d, "kraken/v2_trade.jsonl");
    assert_trade(
        &out[0].1[0],
        (Side::Buy, "105944.20", "0.00027625", 10_218_208),
    );
    assert_eq!(out[0].1[0].exchange_ts_ns, 1_696_613_755_440_295_000);
    let out = run_ok(&mut d, "kraken/v2_ticker.jsonl");
    assert_tob(&out[0].1[0], "105944.20 2.5 105944.30 3.2");
    run_each(&mut d, "kraken/control.jsonl", 0);
}

#[test]
fn bybit_streams() {
    let mut d = observe(Venue::Bybit);
    let out = run_ok(&mut d, "bybit/linear_orderbook_50.jsonl");
    assert_batch(&out[0].1, true);
    assert_level(&out[0].1[0], Side::Buy, "28555.20", "0.597");
    assert_eq!(out[0].1[0].venue_seq, 20_683_568);
    assert_eq!(out[0].1[0].exchange_ts_ns, 1_680_673_821_591 * MS);
    assert_level(&out[1].1[1], Side::Sell, "28555.30", "0.029");
    assert_eq!(d.counters.stream(1).gaps, 0, "u 20683568 → 20683569");
    let out = run_ok(&mut d, "bybit/spot_publicTrade.jsonl");
    assert_trade(
        &out[0].1[0],
        (
            Side::Sell,
            "28165.38",
            "0.041732",
            2_290_000_000_050_703_789,
        ),
    );
    assert_eq!(out[0].1[0].exchange_ts_ns, 1_680_652_847_524 * MS);
    let out = run(&mut d, "bybit/linear_publicTrade.jsonl");
    assert_trade(&out[0].1[0], (Side::Buy, "28560.50", "5823", 0));
    assert_eq!(
        out[3].0,
        Err(ParseError::Unknown),
        "fixture with a non-v5 topic name"
    );
    let out = run_ok(&mut d, "bybit/linear_tickers.jsonl");
    let r = &out[0].1;
    assert_tob(&r[0], "28550.70 2.049 28550.80 15.328");
    assert_eq!(r[0].venue_seq, 50_193_544_280);
    assert_eq!(
        index(&r[1]),
        (28_552_810_000_000_000_000_000, e8("28552.81"), 2)
    );
    assert_eq!(index(&r[2]).2, 1);
    let f = r[3].body_as::<ringbolt_bus::Funding>().unwrap();
    assert_eq!(
        (f.rate, f.next_funding_ts_ns),
        (100_000_000, 1_680_681_600_000 * MS)
    );
    // Line 3: a partial delta for BTCUSD merges into its cached snapshot (line 2).
    assert_tob(&out[2].1[0], "28560.00 340549 28560.50 70817");
    let out = run_each(&mut d, "bybit/linear_allLiquidation.jsonl", 1);
    let l = out[0].1[0].body_as::<ringbolt_bus::Liquidation>().unwrap();
    assert_eq!(
        (l.price, l.size, l.side),
        (e8("0.02456"), e8("2846"), Side::Sell as u8)
    );
    let l = out[2].1[0].body_as::<ringbolt_bus::Liquidation>().unwrap();
    assert_eq!(
        (l.price, l.size, l.side),
        (e8("0.03803"), e8("1637"), Side::Buy as u8)
    );
    run_each(&mut d, "bybit/control.jsonl", 0);
}

#[test]
fn bybit_orderbook_gap_enforced() {
    let (mut d, lines) = enforced(Venue::Bybit, "bybit/spot_orderbook_50.jsonl");
    let mut out = Vec::new();
    d.frame(lines[0].as_bytes(), 1, &mut out).unwrap();
    d.frame(lines[1].as_bytes(), 1, &mut out).unwrap();
    assert_eq!(d.counters.stream(1).gaps, 0);
    let n = out.len();
    let skipped = lines[1].replace("\"u\":59438061", "\"u\":59438063");
    d.frame(skipped.as_bytes(), 1, &mut out).unwrap();
    assert_eq!(d.counters.stream(1).gaps, 1);
    assert_eq!(d.counters.stream(1).gap_records, 1);
    assert_eq!(out.len(), n + 1);
    assert!(matches!(d.actions.last(), Some(Action::Resubscribe(f)) if f.len() == 2));
}

#[test]
fn gemini_streams() {
    let mut d = observe(Venue::Gemini);
    let out = run_ok(&mut d, "gemini/l2_updates.jsonl");
    let r = batch(&out[0].1, 247, true);
    assert_level(&r[0], Side::Buy, "24090.28", "0.14859662");
    // Later messages for the same symbol are updates; the first for a new symbol is a snapshot.
    assert_batch(&out[1].1, false);
    assert_eq!(level(&out[1].1[0]), (Side::Buy, e8("24084.23"), 0));
    assert_batch(&out[13].1, true);
    assert_eq!(d.instrument_name(out[13].1[0].instrument), "ZECLTC");
    let out = run_each(&mut d, "gemini/trades.jsonl", 1);
    assert_trade(&out[0].1[0], (Side::Buy, "8325.00", "0.1", 8_280_715_334));
    assert_eq!(out[0].1[0].exchange_ts_ns, 1_569_888_020_080 * MS);
    assert_eq!(trade(&out[1].1[0]).0, Side::None, "block trade");
    let out = run_ok(&mut d, "gemini/fastapi_v3.jsonl");
    assert_level(&out[0].1[0], Side::Buy, "0.148800", "11129.364219");
    assert_eq!(
        out[0].1[0].exchange_ts_ns, 1_783_981_139_947_514_400,
        "fast API E is ns"
    );
    assert_trade(
        &out[1].1[0],
        (Side::Sell, "62145.38", "0.01625222", 2_840_141_014_190_422),
    );
    assert_tob(&out[2].1[0], "1.06149 958.69148 1.0615 38.3906");
    run_each(&mut d, "gemini/control.jsonl", 0);
}

#[test]
fn bitstamp_streams() {
    let mut d = observe(Venue::Bitstamp);
    let out = run_each(&mut d, "bitstamp/live_trades.jsonl", 1);
    // amount_str "1E-8", never the float beside it.
    assert_eq!(
        trade(&out[0].1[0]),
        (Side::Buy, e8("57748.80"), 1, 158_457_579)
    );
    assert_eq!(out[0].1[0].exchange_ts_ns, 1_616_297_318_187_000_000);
    assert_trade(&out[1].1[0], (Side::Buy, "3651.30", "0.001643", 84_550_458));
    assert_eq!(d.instrument_name(out[1].1[0].instrument), "btceur");
    let out = run_ok(&mut d, "bitstamp/diff_order_book.jsonl");
    assert_level(&out[0].1[0], Side::Buy, "36653.62", "0.75");
    assert_eq!(level(&out[0].1[1]), (Side::Sell, e8("36665.20"), 0));
    assert_eq!(out[0].1[0].venue_seq, 1_622_520_011_989_838);
    let out = run_ok(&mut d, "bitstamp/order_book.jsonl");
    assert_batch(&out[0].1, true);
    assert_level(&out[0].1[0], Side::Buy, "31524.50", "0.364");
    assert_level(&out[0].1[5], Side::Sell, "31543.37", "0.01071471");
    for file in ["bitstamp/control.jsonl", "bitstamp/live_orders.jsonl"] {
        run_each(&mut d, file, 0);
    }
    assert!(
        d.actions.contains(&Action::Reconnect),
        "bts:request_reconnect"
    );
}

#[test]
fn bitstamp_diffs_wait_for_the_rest_snapshot() {
    let mut d = FrameDriver::new(Venue::Bitstamp, SyncMode::Enforce, true).unwrap();
    let diff = |us: u64, qty: &str| {
        format!(
            r#"{{"data":{{"timestamp":"1654243213","microtimestamp":"{us}","bids":[["30415.13","{qty}"]],"asks":[]}},"channel":"diff_order_book_btcusd","event":"data"}}"#
        )
    };
    let mut out = Vec::new();
    d.frame(diff(1_654_243_213_000_000, "1.0").as_bytes(), 1, &mut out)
        .unwrap();
    d.frame(diff(1_654_243_213_200_000, "2.0").as_bytes(), 1, &mut out)
        .unwrap();
    assert!(out.is_empty());
    let Some(Action::Fetch(req)) = d.actions.pop() else {
        panic!("{:?}", d.actions)
    };
    assert_eq!(req.path, "/api/v2/order_book/btcusd/");
    let rest = fixture("bitstamp/order_book_rest.jsonl").remove(0);
    d.rest(&req, rest.as_bytes(), 1, &mut out).unwrap();
    let snap = out.iter().filter(|r| r.stream == 4).count();
    assert!(snap > 0);
    // Only the diff newer than the snapshot (…213142992) is replayed.
    let replayed: Vec<_> = out.iter().filter(|r| r.stream == 2).collect();
    assert_eq!(replayed.len(), 1);
    assert_level(replayed[0], Side::Buy, "30415.13", "2.0");
    assert_eq!(d.counters.stream(2).dropped_unsynced, 1);
}

#[test]
fn deribit_streams() {
    let mut d = observe(Venue::Deribit);
    let out = run_ok(&mut d, "deribit/book.jsonl");
    let r = &out[0].1;
    assert_batch(r, true);
    assert_level(&r[0], Side::Buy, "37240.0", "20.0");
    assert_eq!(r[0].venue_seq, 31_479_596_557);
    assert_eq!(r[0].exchange_ts_ns, 1_622_627_433_440 * MS);
    let r = &out[1].1;
    assert_batch(r, false);
    assert_eq!(level(&r[0]), (Side::Buy, e8("36779.0"), 0), "delete");
    assert_level(&r[3], Side::Sell, "37394.0", "42670.0");
    let out = run_ok(&mut d, "deribit/book_grouped.jsonl");
    assert_batch(&out[0].1, true);
    assert_level(&out[0].1[0], Side::Buy, "31523.5", "128780.0");
    let out = run_ok(&mut d, "deribit/trades.jsonl");
    assert_trade(&out[0].1[0], (Side::Sell, "9598.5", "2000.0", 39_355_898));
    assert_eq!(out[0].1[0].venue_seq, 20_944_815);
    let liq = out[2]
        .1
        .iter()
        .find_map(|r| r.body_as::<ringbolt_bus::Liquidation>())
        .unwrap();
    assert_eq!(
        (liq.price, liq.size, liq.side),
        (e8("4469.5"), e8("1120"), Side::Sell as u8)
    );
    let out = run_each(&mut d, "deribit/quote.jsonl", 1);
    assert_tob(&out[0].1[0], "9600.5 162800.0 9601.0 49710.0");
    let out = run_ok(&mut d, "deribit/ticker.jsonl");
    assert_eq!(
        index(&out[0].1[1]),
        (10_094_100_000_000_000_000_000, e8("10094.1"), 2)
    );
    let out = run_ok(&mut d, "deribit/deribit_price_index.jsonl");
    assert_eq!(
        index(&out[0].1[0]),
        (6_521_170_000_000_000_000_000, e8("6521.17"), 1)
    );
    assert_eq!(d.instrument_name(out[0].1[0].instrument), "btc_usd");
    run_each(&mut d, "deribit/control.jsonl", 0);
    assert!(
        d.actions.iter().any(|a| matches!(a, Action::Send(_))),
        "test_request answered"
    );
}

#[test]
fn connection_transitions_become_feed_status_records() {
    use ringbolt_feeds::conn::{ConnCommand, ConnConfig, ConnEvent, ConnMachine};
    let mut d = FrameDriver::new(Venue::Polymarket, SyncMode::Enforce, true).unwrap();
    let mut m = ConnMachine::new(ConnConfig::default(), 3);
    let mut out = Vec::new();
    let s = 1_000_000_000u64;
    assert_eq!(
        d.connection_event(&mut m, ConnEvent::Start, 0, &mut out),
        Some(ConnCommand::Connect)
    );
    assert_eq!(
        d.connection_event(&mut m, ConnEvent::Connected, s, &mut out),
        Some(ConnCommand::Subscribe)
    );
    let book = fixture("polymarket/book.jsonl").remove(0);
    d.frame(book.as_bytes(), 1, &mut out).unwrap();
    d.connection_event(&mut m, ConnEvent::Data, 2 * s, &mut out);
    d.connection_event(&mut m, ConnEvent::Tick, 8 * s, &mut out); // stale
    d.connection_event(&mut m, ConnEvent::Closed, 9 * s, &mut out);
    let until = m.next_deadline().unwrap();
    assert_eq!(
        d.connection_event(&mut m, ConnEvent::Tick, until, &mut out),
        Some(ConnCommand::Connect)
    );
    let states: Vec<u8> = out
        .iter()
        .filter_map(|r| r.body_as::<FeedStatusBody>())
        .map(|b| b.state)
        .collect();
    assert_eq!(
        states,
        [
            FeedState::Connected,
            FeedState::Live,
            FeedState::Stale,
            FeedState::Disconnected
        ]
        .map(|s| s as u8)
    );
    assert_eq!(d.counters.total().reconnects, 1);
    assert_eq!(d.counters.stream(1).reconnects, 1);
    // The reconnect restarted continuity: the asset needs a new book snapshot.
    let change = r#"{"event_type":"price_change","market":"0x1","timestamp":"1757908892400","price_changes":[{"asset_id":"65818619657568813474341868652308942079804919287380422192892211131408793125422","price":"0.50","size":"0","side":"BUY","hash":"h"}]}"#;
    let n = out.len();
    d.frame(change.as_bytes(), 1, &mut out).unwrap();
    assert_eq!(out.len(), n);
    let text =
        ringbolt_feeds::render_prometheus(&[(Venue::Polymarket, d.adapter.streams(), &d.counters)]);
    assert!(
        text.contains("ringbolt_feed_reconnects_total{venue=\"polymarket\",stream=\"book\"} 1")
    );
    assert!(text.contains("ringbolt_feed_messages_total{venue=\"polymarket\",stream=\"book\"} 1"));
}
