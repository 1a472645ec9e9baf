//! A price on every tick Polymarket uses passes feeds → decide → exec, and an off-grid price is
//! refused with a named error at each stage.
//!
//! - feeds: the Polymarket adapter turns `book` / `price_change` frames into BookLevel records
//!   (and keeps the tick a `tick_size_change` announces);
//! - decide: the market state applies them to its window's book (the market crate's
//!   [`PolyBook`]), with the window's [`MarketParams`] carrying the tick;
//! - exec: the best ask, with the tick from those parameters, becomes a signed limit order.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ringbolt_bus::{
    BookLevel, MarketParamsBody, PARAMS_FROM_TICK_SIZE_CHANGE, PRICE_SCALE, Record, Side, Venue,
};
use ringbolt_decide::DecideConfig;
use ringbolt_decide::market::MarketState;
use ringbolt_exec::{Error as ExecError, OrderInput, PrivateKey};
use ringbolt_feeds::adapter::{Ctx, InstrumentTable};
use ringbolt_feeds::venues::polymarket::Polymarket;
use ringbolt_feeds::{Counters, FrameDriver, ParseError, SyncMode, VenueAdapter};
use ringbolt_market::{
    BookError, MarketParams, NS, Outcome, PolyBook, Tick, TickSizeChange, instrument_name,
};

const START_S: i64 = 1_773_307_200;
const UP_TOKEN: &str =
    "104239898038807136052399800151408521467737075933964991162589336683346093173875";
const UP_ID: u32 = 7;

/// `0.5025`-style text of a price at PRICE_SCALE.
fn text(e8: i64) -> String {
    let s = format!("{}.{:08}", e8 / PRICE_SCALE, e8 % PRICE_SCALE);
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn e8(text: &str) -> i64 {
    (text.parse::<f64>().unwrap() * PRICE_SCALE as f64).round() as i64
}

fn up_name() -> String {
    instrument_name(START_S, Outcome::Up, UP_TOKEN)
}

fn driver() -> FrameDriver {
    let mut d = FrameDriver::new(Venue::Polymarket, SyncMode::Enforce, false).unwrap();
    d.instruments
        .register(Venue::Polymarket, UP_TOKEN.as_bytes(), &up_name(), UP_ID);
    d
}

fn book_frame(bid: &str, ask: &str) -> String {
    format!(
        r#"{{"event_type":"book","asset_id":"{UP_TOKEN}","market":"0x1","timestamp":"1773307210000","hash":"0","bids":[{{"price":"{bid}","size":"40"}}],"asks":[{{"price":"{ask}","size":"25"}}]}}"#
    )
}

fn change_frame(price: &str, size: &str, side: &str) -> String {
    format!(
        r#"{{"event_type":"price_change","market":"0x1","timestamp":"1773307211000","price_changes":[{{"asset_id":"{UP_TOKEN}","price":"{price}","size":"{size}","side":"{side}","hash":"0"}}]}}"#
    )
}

/// Feeds: the venue's frames → BookLevel records (receive time inside the window).
fn feed(d: &mut FrameDriver, frame: &str) -> Result<Vec<Record>, ParseError> {
    let mut out = Vec::new();
    d.frame(frame.as_bytes(), (START_S + 10) * NS, &mut out)?;
    Ok(out)
}

/// Feeds: the tick a `tick_size_change` announces, as kept by the adapter.
fn announced_tick(tick: Tick) -> Tick {
    let frame = format!(
        r#"{{"event_type":"tick_size_change","asset_id":"{UP_TOKEN}","market":"0x1","old_tick_size":"0.01","new_tick_size":"{tick}","timestamp":"1773307205000"}}"#
    );
    let mut adapter = Polymarket::new(SyncMode::Enforce);
    let mut table = InstrumentTable::new(false);
    table.register(Venue::Polymarket, UP_TOKEN.as_bytes(), &up_name(), UP_ID);
    let (mut sink, mut counters, mut actions) = (Vec::<Record>::new(), Counters::new(), Vec::new());
    let mut ctx = Ctx {
        recv_ts_ns: START_S * NS,
        resolver: &mut table,
        sink: &mut sink,
        counters: &mut counters,
        actions: &mut actions,
    };
    adapter.on_frame(frame.as_bytes(), &mut ctx).unwrap();
    // The bus carries the announced tick as a `MarketParams` record (tick only: other fields 0).
    assert_eq!(
        sink.len(),
        1,
        "one MarketParams record per tick_size_change"
    );
    let body = sink[0]
        .body_as::<MarketParamsBody>()
        .expect("a MarketParams record");
    assert_eq!(body.tick_size, tick.e8());
    assert_eq!(body.source, PARAMS_FROM_TICK_SIZE_CHANGE);
    // The market crate parses the same event for any other consumer.
    let change = TickSizeChange::parse(frame.as_bytes()).unwrap();
    assert_eq!(change.new_tick, tick);
    adapter.tick_of(UP_ID).expect("tick kept per instrument")
}

/// Decide: a market state with the Up token registered under `params`.
fn decide_state(params: MarketParams) -> MarketState {
    let mut state = MarketState::new(&DecideConfig::default());
    state
        .register_instrument(UP_ID, Venue::Polymarket, &up_name(), params)
        .unwrap();
    state
}

/// Exec: a signed BUY limit order of 10 shares at `price` on `tick`.
fn sign(price: &str, tick: Tick) -> Result<ringbolt_exec::SignedOrder, ExecError> {
    let key =
        PrivateKey::from_hex("0x0000000000000000000000000000000000000000000000000000000000000001")
            .unwrap();
    let input = serde_json::json!({
        "side": "BUY", "kind": "limit", "price": price, "size": "10", "token_id": UP_TOKEN,
        "tick_size": tick.as_str(), "salt": 1, "timestamp_ms": 1_773_307_210_000u64,
    });
    let input: OrderInput = serde_json::from_value(input).unwrap();
    let spec = input.into_spec()?;
    let amounts = spec.amounts()?;
    let signed = spec.sign(&key)?;
    // BUY 10 shares at p: maker gives 10·p pUSD, receives 10 shares (micro-units).
    assert_eq!(amounts.maker, (e8(price) / 10) as u64, "{price}");
    assert_eq!(amounts.taker, 10_000_000);
    Ok(signed)
}

#[test]
fn a_price_on_every_tick_passes_feeds_decide_and_exec() {
    // A price on each tick that the next coarser tick does not hold (0.5025 on 0.0025, 0.505
    // on 0.005, 0.5001 on 0.0001, …).
    let cases = [
        (Tick::T0_1, "0.3"),
        (Tick::T0_01, "0.37"),
        (Tick::T0_005, "0.505"),
        (Tick::T0_0025, "0.5025"),
        (Tick::T0_001, "0.503"),
        (Tick::T0_0001, "0.5025"),
        (Tick::T0_0001, "0.5001"),
    ];
    assert!(Tick::ALL.iter().all(|t| cases.iter().any(|c| c.0 == *t)));
    for (tick, ask) in cases {
        let ask_e8 = e8(ask);
        let bid = text(ask_e8 - tick.e8());
        // Feeds: the venue announces the tick, then sends the book and a change at the ask.
        let params = MarketParams::default().with_tick(&TickSizeChange {
            asset_id: UP_TOKEN,
            old_tick: None,
            new_tick: announced_tick(tick),
        });
        assert_eq!(params.tick_size, tick);
        let mut d = driver();
        let mut records = feed(&mut d, &book_frame(&bid, "0.99")).unwrap();
        records.extend(feed(&mut d, &change_frame(ask, "25", "SELL")).unwrap());
        assert_eq!(records.len(), 3, "{tick} {ask}");
        // Decide: the window's book holds the price.
        let mut state = decide_state(params);
        for r in &records {
            state.apply(r);
        }
        assert_eq!(state.errors.bad_levels, 0, "{tick} {ask}");
        let w = state.window(START_S).unwrap();
        let book = &w.books[Outcome::Up.index()];
        assert!(book.is_valid(), "{tick} {ask}: {book:?}");
        let (best_ask, size) = book.best_ask().unwrap();
        assert_eq!((best_ask, size), (ask_e8, 25 * PRICE_SCALE), "{tick} {ask}");
        assert_eq!(book.best_bid().unwrap().0, ask_e8 - tick.e8());
        // Exec: the best ask on the window's tick becomes a signed order.
        let order = sign(&text(best_ask), w.params.tick_size).unwrap();
        assert_eq!(order.token_id_text, UP_TOKEN);
        // The one rule every stage shares.
        assert_eq!(tick.check(best_ask), Ok(()));
    }
}

#[test]
fn an_off_grid_price_is_refused_at_every_stage() {
    let off = "0.50255";
    // Feeds: a level off the 0.0001 grid fails the frame, in a book and in a change.
    let mut d = driver();
    assert_eq!(
        feed(&mut d, &book_frame("0.5", off)),
        Err(ParseError::Invalid("price"))
    );
    feed(&mut d, &book_frame("0.5", "0.51")).unwrap();
    assert_eq!(
        feed(&mut d, &change_frame(off, "1", "SELL")),
        Err(ParseError::Invalid("price"))
    );
    for edge in ["0", "1", "1.5"] {
        assert_eq!(
            feed(&mut d, &change_frame(edge, "1", "BUY")),
            Err(ParseError::Invalid("price")),
            "{edge}"
        );
    }
    // Decide: a BookLevel record off the grid (another producer) is refused by the book and
    // counted; the book keeps its levels.
    let mut state = decide_state(MarketParams::default());
    let good = feed(&mut d, &book_frame("0.5", "0.51")).unwrap();
    for r in &good {
        state.apply(r);
    }
    let mut bad = good[1];
    bad.set_body(&BookLevel {
        price: e8(off),
        size: 1,
        side: Side::Sell as u8,
        reserved: [0; 63],
    });
    bad.flags = 0;
    state.apply(&bad);
    assert_eq!(state.errors.bad_levels, 1);
    let w = state.window(START_S).unwrap();
    assert_eq!(w.books[0].best_ask(), Some((e8("0.51"), 25 * PRICE_SCALE)));
    let mut book = PolyBook::new();
    assert_eq!(
        book.apply(Side::Sell, e8(off), 1),
        Err(BookError::OffGrid(e8(off)))
    );
    // Exec: off the grid for every tick; on the grid but off the market's tick; the range
    // ends [tick, 1 - tick].
    let off_tick = Tick::ALL.map(|t| (off, t));
    let cases = [
        ("0.5025", Tick::T0_001),
        ("0.505", Tick::T0_01),
        ("0.9999", Tick::T0_001),
        ("0.99", Tick::T0_1),
    ];
    for (price, tick) in off_tick.into_iter().chain(cases) {
        let r = sign(price, tick);
        assert!(
            matches!(r, Err(ExecError::OffTick { .. })),
            "{price} {tick}: {r:?}"
        );
    }
    sign("0.0025", Tick::T0_0025).unwrap();
    sign("0.9975", Tick::T0_0025).unwrap();
    let r = sign("1", Tick::T0_0001);
    assert!(matches!(r, Err(ExecError::PriceOutOfRange { .. })), "{r:?}");
}
