//! Every venue's connection profile and stream catalogue in one table: where it connects (when
//! the endpoint is fixed), how the connection is kept alive, and the `Record.stream` ids the
//! adapter emits with their stable names (metrics labels, `feeds parse` output) and continuity
//! rules. Each venue's module re-exports its own constants and `Stream` enum.

stream_catalogues! {
    /// Polymarket stream catalogue (`Record.stream`).
    polymarket::STREAMS {
        endpoint: WsEndpoint::wss("ws-subscriptions-clob.polymarket.com", "/ws/market");
        keep_alive: KeepAlive::text(b"PING", 10);
        /// `book` snapshots → BookLevel batches with the snapshot flag.
        Book = 1, "book", "full snapshot per asset; trusted after it (no sequence numbers)";
        /// `price_change` → BookLevel batches (absolute size, 0 removes).
        PriceChange = 2, "price_change", "new absolute level sizes; dropped until the asset's book snapshot";
        /// `tick_size_change` (parsed and kept per instrument; no bus record kind yet).
        TickSizeChange = 3, "tick_size_change", "tick size changes (market_params records, source tick_size_change)";
        /// `last_trade_price` → Trade.
        LastTradePrice = 4, "last_trade_price", "trade prints";
        /// `best_bid_ask` → TopOfBook (sizes 0: not provided).
        BestBidAsk = 5, "best_bid_ask", "best bid/ask prices (custom_feature_enabled)";
        /// `new_market` / `market_resolved` (counted; discovery uses them).
        MarketEvent = 6, "market_event", "new_market / market_resolved (custom_feature_enabled)";
    }
    /// RTDS stream catalogue (`Record.stream`).
    chainlink_rtds::STREAMS {
        endpoint: WsEndpoint::wss("ws-live-data.polymarket.com", "/");
        keep_alive: KeepAlive::text(b"PING", 5);
        /// `crypto_prices_chainlink` → IndexPrice (price_type 1).
        Chainlink = 1, "chainlink", "Chainlink BTC/USD, full accuracy e18; dedupe by observation ts";
        /// `crypto_prices_twap_thirty` → IndexPrice (price_type 3).
        Twap30 = 2, "twap_30s", "Chainlink 30 s TWAP";
        /// `crypto_prices_twap_sixty` → IndexPrice (price_type 3).
        Twap60 = 3, "twap_60s", "Chainlink 60 s TWAP";
        /// `crypto_prices` (Binance relay) → IndexPrice (price_type 1).
        BinanceRelay = 4, "binance_relay", "Binance btcusdt relayed by RTDS";
    }
    /// Binance stream catalogue (`Record.stream`), shared by spot and futures.
    binance::FUTURES_STREAMS {
        // The server pings every 20 s; the transport answers with pongs.
        keep_alive: KeepAlive::ServerPings;
        /// `@trade` → Trade (`t` contiguous).
        Trade = 1, "trade", "trades; t +1";
        /// `@aggTrade` → Trade (`a` contiguous).
        AggTrade = 2, "agg_trade", "aggregated trades; a +1";
        /// `@bookTicker` → TopOfBook (`u`).
        BookTicker = 3, "book_ticker", "top of book; u, E, T";
        /// `@depth@100ms` → BookLevel batches (`U`/`u` chaining).
        Depth = 4, "depth", "L2 diffs; pu == prev u after the snapshot rule";
        /// REST depth snapshot → BookLevel snapshot batch (`lastUpdateId`).
        DepthSnapshot = 5, "depth_snapshot", "REST snapshot; lastUpdateId";
        /// Futures `@markPrice@1s` → IndexPrice (mark, index) + Funding.
        MarkPrice = 6, "mark_price", "mark, index, funding rate, next funding time";
        /// Futures `@forceOrder` → Liquidation.
        ForceOrder = 7, "force_order", "liquidations (latest per 1000 ms)";
        /// Futures REST `openInterest` (counted; no record kind yet).
        OpenInterest = 8, "open_interest", "REST poll (counted; no record kind yet)";
        /// `@ticker` 24 h statistics (counted; no record kind).
        Ticker24h = 9, "ticker_24h", "24 h statistics (counted)";
    }
    /// Coinbase stream catalogue (`Record.stream`).
    coinbase::STREAMS {
        endpoint: WsEndpoint::wss("ws-feed.exchange.coinbase.com", "/");
        // The heartbeat channel keeps the connection busy; WebSocket pings as a backstop.
        keep_alive: KeepAlive::ws_ping(30);
        /// Exchange `ticker` → TopOfBook.
        Ticker = 1, "ticker", "best bid/ask (+sizes since 2022); sequence";
        /// Exchange `matches` → Trade.
        Matches = 2, "matches", "trades; trade_id +1 per product";
        /// Exchange `level2_batch` → BookLevel batches.
        Level2 = 3, "level2", "snapshot + l2update; no sequence, resubscribe on doubt";
        /// Exchange `heartbeat` (continuity only).
        Heartbeat = 4, "heartbeat", "1 s; last_trade_id detects missed matches";
        /// Advanced Trade `ticker` → TopOfBook.
        AdvTicker = 5, "adv_ticker", "Advanced Trade ticker; sequence_num per connection";
        /// Advanced Trade `level2` (`l2_data`) → BookLevel batches.
        AdvLevel2 = 6, "adv_level2", "Advanced Trade l2_data; sequence_num gap ⇒ resubscribe";
        /// Advanced Trade `market_trades` → Trade.
        AdvMarketTrades = 7, "adv_market_trades", "Advanced Trade trades";
        /// Advanced Trade `heartbeats`.
        AdvHeartbeats = 8, "adv_heartbeats", "Advanced Trade heartbeats";
    }
    /// OKX stream catalogue (`Record.stream`).
    okx::STREAMS {
        endpoint: WsEndpoint { host: "ws.okx.com", port: 8443, path: "/ws/v5/public" };
        keep_alive: KeepAlive::text(b"ping", 25);
        /// `books*` → BookLevel batches (seqId chain + checksum).
        Books = 1, "books", "snapshot + updates; prevSeqId == last seqId; CRC32 checksum";
        /// `bbo-tbt` → TopOfBook.
        BboTbt = 2, "bbo_tbt", "top of book, tick by tick";
        /// `trades` → Trade.
        Trades = 3, "trades", "trades aggregated per taker order";
        /// `tickers` → TopOfBook.
        Tickers = 4, "tickers", "best bid/ask + 24 h stats";
        /// `funding-rate` → Funding.
        FundingRate = 5, "funding_rate", "funding rate (truncated to 1e-12), next funding time";
        /// `mark-price` → IndexPrice (mark).
        MarkPrice = 6, "mark_price", "mark price";
        /// `index-tickers` → IndexPrice (index).
        IndexTickers = 7, "index_tickers", "index price";
        /// `open-interest` (counted; no record kind yet).
        OpenInterest = 8, "open_interest", "open interest (counted; no record kind)";
        /// `liquidation-orders` → Liquidation.
        Liquidations = 9, "liquidations", "liquidation orders";
    }
    /// Kraken stream catalogue (`Record.stream`).
    kraken::STREAMS {
        endpoint: WsEndpoint::wss("ws.kraken.com", "/v2");
        keep_alive: KeepAlive::text(br#"{"method":"ping"}"#, 30);
        /// `book` → BookLevel batches (checksum).
        Book = 1, "book", "snapshot + updates; CRC32 over top 10 after truncating to depth";
        /// `trade` → Trade.
        Trade = 2, "trade", "trades; v2 trade_id +1 per pair";
        /// `ticker` → TopOfBook.
        Ticker = 3, "ticker", "best bid/ask (event_trigger bbo)";
        /// v1 `spread` → TopOfBook.
        Spread = 4, "spread", "v1 best bid/ask";
    }
    /// Bybit stream catalogue (`Record.stream`).
    bybit::STREAMS {
        keep_alive: KeepAlive::text(br#"{"op":"ping"}"#, 20);
        /// `orderbook.*` → BookLevel batches (`u` +1).
        Orderbook = 1, "orderbook", "snapshot + delta; u +1, any snapshot resets";
        /// `publicTrade` → Trade.
        PublicTrade = 2, "public_trade", "trades (taker side)";
        /// `tickers` → TopOfBook, IndexPrice, Funding.
        Tickers = 3, "tickers", "bid1/ask1, mark, index, funding; partial deltas merged";
        /// `allLiquidation` / `liquidation` → Liquidation.
        Liquidation = 4, "liquidation", "liquidations (S = side of the liquidated position's order)";
    }
    /// Gemini stream catalogue (`Record.stream`).
    gemini::STREAMS {
        endpoint: WsEndpoint::wss("api.gemini.com", "/v2/marketdata");
        // The server sends heartbeats every ~5 s.
        keep_alive: KeepAlive::ServerPings;
        /// v2 `l2_updates` → BookLevel batches.
        L2 = 1, "l2", "first message per symbol = full book; no sequence";
        /// v2 `trade` → Trade.
        Trades = 2, "trades", "trades; event_id increasing, not contiguous";
        /// Fast API depth → BookLevel batches.
        FastDepth = 3, "fast_depth", "fast API L2 diffs; U == prev u + 1";
        /// Fast API trades → Trade.
        FastTrades = 4, "fast_trades", "fast API trades";
        /// Fast API book ticker → TopOfBook.
        FastBookTicker = 5, "fast_book_ticker", "fast API top of book";
    }
    /// Bitstamp stream catalogue (`Record.stream`).
    bitstamp::STREAMS {
        endpoint: WsEndpoint::wss("ws.bitstamp.net", "/");
        keep_alive: KeepAlive::text(br#"{"event":"bts:heartbeat"}"#, 30);
        /// `live_trades` → Trade.
        LiveTrades = 1, "live_trades", "trades; id increasing";
        /// `diff_order_book` → BookLevel batches.
        DiffOrderBook = 2, "diff_order_book", "L2 diffs; buffer, REST snapshot, drop diffs ≤ its microtimestamp";
        /// `order_book` (top 100 every push) → BookLevel snapshot batches.
        OrderBook = 3, "order_book", "top-100 snapshot every push";
        /// REST order book snapshot → BookLevel snapshot batch.
        OrderBookRest = 4, "order_book_rest", "REST snapshot; microtimestamp";
        /// `live_orders` (counted).
        LiveOrders = 5, "live_orders", "L3 order events (counted)";
    }
    /// Deribit stream catalogue (`Record.stream`).
    deribit::STREAMS {
        endpoint: WsEndpoint::wss("www.deribit.com", "/ws/api/v2");
        // After `public/set_heartbeat`, the server sends test_requests the adapter answers.
        keep_alive: KeepAlive::ServerPings;
        /// `book.*` → BookLevel batches.
        Book = 1, "book", "snapshot + changes; prev_change_id == last change_id";
        /// `trades.*` → Trade (+ Liquidation).
        Trades = 2, "trades", "trades; trade_seq +1; liquidation flag";
        /// `ticker.*` → TopOfBook, IndexPrice, Funding.
        Ticker = 3, "ticker", "best bid/ask, mark, index, funding";
        /// `quote.*` → TopOfBook.
        Quote = 4, "quote", "best bid/ask";
        /// `deribit_price_index.*` → IndexPrice.
        PriceIndex = 5, "price_index", "Deribit index";
    }
    /// PolyBolt stream catalogue (`Record.stream`).
    polybolt::STREAMS {
        endpoint: WsEndpoint::wss("ws-live-v2.polymarket.com", "/ws");
        // The server pings every 25 s (two missed pongs close 4002); the transport answers.
        keep_alive: KeepAlive::ServerPings;
        /// `price.crypto` → IndexPrice (price_type 1).
        Price = 1, "price", "crypto reference price; seq +1 per channel, dropped counts";
        /// `price.crypto.twap` (60 s) → IndexPrice (price_type 3).
        Twap = 2, "twap_60s", "Chainlink 60 s TWAP; seq +1 per channel, dropped counts";
    }
}

/// A stream a source can subscribe to, selected by `name` in the source's config
/// (`[feeds.sources.<name>] streams = [...]`); the venue's subscribe request is built from the
/// `channel` words of the selected streams (STREAMS.md in the shared corpus lists them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selectable {
    /// The venue whose adapter subscribes it.
    pub venue: Venue,
    /// Config name (unique per venue).
    pub name: &'static str,
    /// The venue's own channel word or template (`{}` = the symbol where the venue puts it in
    /// the channel name; the adapter's subscribe builder says how the word is used).
    pub channel: &'static str,
    /// Endpoint family: streams of two different non-empty groups need two connections
    /// (Coinbase `exchange` / `advanced`, Gemini `v2` / `fast`, Binance USD-M 2026 routes
    /// `public` / `market`, Bybit `linear`). Empty: any endpoint of the venue.
    pub group: &'static str,
    /// Only for symbols with this suffix (OKX SWAP channels: `-SWAP`).
    pub only_suffix: Option<&'static str>,
    /// In the default set (today's fixed set before per-source selection).
    pub default: bool,
    /// What it carries.
    pub carries: &'static str,
}

const fn s(
    venue: Venue,
    name: &'static str,
    channel: &'static str,
    group: &'static str,
    default: bool,
    carries: &'static str,
) -> Selectable {
    Selectable {
        venue,
        name,
        channel,
        group,
        only_suffix: None,
        default,
        carries,
    }
}

const fn swap(name: &'static str, channel: &'static str, carries: &'static str) -> Selectable {
    Selectable {
        only_suffix: Some("-SWAP"),
        ..s(Venue::Okx, name, channel, "", true, carries)
    }
}

use Venue::{
    BinanceFutures as BF, BinanceSpot as BS, Bitstamp as BT, Bybit as BY, ChainlinkRtds as CL,
    Coinbase as CB, Deribit as DB, Gemini as GM, Kraken as KR, PolyBolt as PB, Polymarket as PM,
};
use ringbolt_bus::Venue;

/// Every selectable stream of every venue, in subscribe order.
pub const SUBSCRIPTIONS: &[Selectable] = &[
    s(
        PM,
        "market",
        "market",
        "",
        true,
        "book, price_change, last_trade_price, best_bid_ask, market events of the discovered windows",
    ),
    s(
        CL,
        "chainlink",
        "crypto_prices_chainlink",
        "",
        true,
        "Chainlink BTC/USD (strike and outcome reference)",
    ),
    s(
        CL,
        "twap_30s",
        "crypto_prices_twap_thirty",
        "",
        false,
        "Chainlink 30 s TWAP",
    ),
    s(
        CL,
        "twap_60s",
        "crypto_prices_twap_sixty",
        "",
        false,
        "Chainlink 60 s TWAP",
    ),
    s(
        CL,
        "binance_relay",
        "crypto_prices",
        "",
        false,
        "Binance price relayed by RTDS (symbol btcusdt)",
    ),
    s(
        PB,
        "price",
        "price.crypto",
        "",
        true,
        "crypto reference price (IndexPrice); seq +1, dropped counts",
    ),
    s(
        PB,
        "twap_60s",
        "price.crypto.twap",
        "",
        true,
        "Chainlink 60 s TWAP (IndexPrice twap); seq +1, dropped counts",
    ),
    s(BS, "trade", "trade", "", true, "trades; t +1"),
    s(
        BS,
        "agg_trade",
        "aggTrade",
        "",
        true,
        "aggregated trades; a +1",
    ),
    s(BS, "book_ticker", "bookTicker", "", true, "top of book; u"),
    s(
        BS,
        "depth",
        "depth@100ms",
        "",
        true,
        "L2 diffs + REST snapshot; U/u chaining",
    ),
    s(
        BS,
        "ticker_24h",
        "ticker",
        "",
        false,
        "24 h statistics (counted)",
    ),
    s(
        BF,
        "agg_trade",
        "aggTrade",
        "market",
        true,
        "aggregated trades (2026 route /market)",
    ),
    s(
        BF,
        "book_ticker",
        "bookTicker",
        "public",
        true,
        "top of book (2026 route /public)",
    ),
    s(
        BF,
        "depth",
        "depth@100ms",
        "public",
        true,
        "L2 diffs + REST snapshot; pu chaining (2026 route /public)",
    ),
    s(
        BF,
        "mark_price",
        "markPrice@1s",
        "market",
        true,
        "mark, index, funding (2026 route /market)",
    ),
    s(
        BF,
        "force_order",
        "forceOrder",
        "market",
        true,
        "liquidations (2026 route /market)",
    ),
    s(
        BF,
        "trade",
        "trade",
        "public",
        false,
        "trades (2026 route /public)",
    ),
    s(
        CB,
        "ticker",
        "ticker",
        "exchange",
        true,
        "Exchange best bid/ask; sequence",
    ),
    s(
        CB,
        "matches",
        "matches",
        "exchange",
        true,
        "Exchange trades; trade_id +1",
    ),
    s(
        CB,
        "heartbeat",
        "heartbeat",
        "exchange",
        true,
        "Exchange 1 s heartbeat; last_trade_id",
    ),
    s(
        CB,
        "level2",
        "level2_batch",
        "exchange",
        true,
        "Exchange snapshot + l2update",
    ),
    s(
        CB,
        "adv_ticker",
        "ticker",
        "advanced",
        false,
        "Advanced Trade ticker; sequence_num",
    ),
    s(
        CB,
        "adv_level2",
        "level2",
        "advanced",
        false,
        "Advanced Trade l2_data; sequence_num",
    ),
    s(
        CB,
        "adv_market_trades",
        "market_trades",
        "advanced",
        false,
        "Advanced Trade trades",
    ),
    s(
        CB,
        "adv_heartbeats",
        "heartbeats",
        "advanced",
        false,
        "Advanced Trade heartbeats (keeps idle channels open)",
    ),
    s(
        Venue::Okx,
        "books",
        "books",
        "",
        true,
        "snapshot + updates; seqId chain, CRC32 checksum",
    ),
    s(
        Venue::Okx,
        "bbo_tbt",
        "bbo-tbt",
        "",
        true,
        "top of book tick by tick",
    ),
    s(
        Venue::Okx,
        "trades",
        "trades",
        "",
        true,
        "trades per taker order",
    ),
    s(
        Venue::Okx,
        "tickers",
        "tickers",
        "",
        true,
        "best bid/ask + 24 h",
    ),
    swap("funding_rate", "funding-rate", "SWAP funding rate"),
    swap("mark_price", "mark-price", "SWAP mark price"),
    swap(
        "open_interest",
        "open-interest",
        "SWAP open interest (counted)",
    ),
    s(
        Venue::Okx,
        "index_tickers",
        "index-tickers",
        "",
        true,
        "index price (index instId, e.g. BTC-USDT)",
    ),
    swap(
        "liquidations",
        "liquidation-orders",
        "SWAP liquidations (per instType, all instruments)",
    ),
    s(
        KR,
        "book",
        "book",
        "",
        true,
        "snapshot + updates, depth 10; CRC32 checksum",
    ),
    s(KR, "trade", "trade", "", true, "trades; trade_id +1"),
    s(
        KR,
        "ticker",
        "ticker",
        "",
        true,
        "best bid/ask (event_trigger bbo)",
    ),
    s(
        BY,
        "orderbook_1",
        "orderbook.1",
        "",
        false,
        "top of book snapshots (not with orderbook_50: its own u sequence would share the book)",
    ),
    s(
        BY,
        "orderbook_50",
        "orderbook.50",
        "",
        true,
        "snapshot + delta; u +1",
    ),
    s(BY, "public_trade", "publicTrade", "", true, "trades"),
    s(
        BY,
        "tickers",
        "tickers",
        "",
        true,
        "spot 24 h + index; linear bid1/ask1, mark, index, funding",
    ),
    s(
        BY,
        "liquidation",
        "allLiquidation",
        "linear",
        false,
        "linear liquidations (wss://…/v5/public/linear)",
    ),
    s(
        GM,
        "l2",
        "l2",
        "v2",
        true,
        "v2 l2_updates (book, trades) on /v2/marketdata",
    ),
    s(
        GM,
        "fast_depth",
        "depth",
        "fast",
        false,
        "current API (wss://ws.gemini.com) depth diffs; U/u",
    ),
    s(
        GM,
        "fast_trades",
        "trade",
        "fast",
        false,
        "current API trades",
    ),
    s(
        GM,
        "fast_book_ticker",
        "bookTicker",
        "fast",
        false,
        "current API top of book",
    ),
    s(BT, "live_trades", "live_trades", "", true, "trades"),
    s(
        BT,
        "diff_order_book",
        "diff_order_book",
        "",
        true,
        "L2 diffs + REST snapshot",
    ),
    s(
        BT,
        "order_book",
        "order_book",
        "",
        false,
        "top-100 snapshot every push",
    ),
    s(
        BT,
        "live_orders",
        "live_orders",
        "",
        false,
        "L3 order events (counted)",
    ),
    s(
        DB,
        "book",
        "book.{}.100ms",
        "",
        true,
        "snapshot + changes; change_id chain",
    ),
    s(
        DB,
        "trades",
        "trades.{}.100ms",
        "",
        true,
        "trades; trade_seq; liquidation flag",
    ),
    s(
        DB,
        "ticker",
        "ticker.{}.100ms",
        "",
        true,
        "best bid/ask, mark, index, funding",
    ),
    s(DB, "quote", "quote.{}", "", true, "best bid/ask"),
    s(
        DB,
        "price_index",
        "deribit_price_index.btc_usd",
        "",
        true,
        "Deribit BTC index (no symbol)",
    ),
];

/// The selectable streams of `venue`, in subscribe order.
pub fn selectable(venue: Venue) -> impl Iterator<Item = &'static Selectable> {
    SUBSCRIPTIONS.iter().filter(move |x| x.venue == venue)
}

/// The default selection of `venue` (today's fixed set).
#[must_use]
pub fn default_streams(venue: Venue) -> Vec<&'static Selectable> {
    selectable(venue).filter(|x| x.default).collect()
}

/// A stream selection the config cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// A name not in the venue's catalogue.
    #[error("unknown stream {name:?} for {venue}; valid: {valid}")]
    Unknown {
        /// The venue.
        venue: Venue,
        /// The name given.
        name: String,
        /// The venue's valid names, comma-separated.
        valid: String,
    },
    /// Streams of two endpoint families in one source (one connection serves one).
    #[error(
        "streams {a:?} ({ga}) and {b:?} ({gb}) of {venue} need two connections: configure two sources"
    )]
    Groups {
        /// The venue.
        venue: Venue,
        /// First stream and its group.
        a: String,
        /// Its group.
        ga: &'static str,
        /// Second stream.
        b: String,
        /// Its group.
        gb: &'static str,
    },
    /// No stream selected.
    #[error("no stream selected for {0}")]
    Empty(Venue),
    /// A Binance USD-M stream on the wrong 2026 route.
    #[error("stream {name:?} of {venue} is served on /{route}, not on {path}")]
    Route {
        /// The venue.
        venue: Venue,
        /// The stream.
        name: &'static str,
        /// Its route.
        route: &'static str,
        /// The source's URL path.
        path: String,
    },
}

/// Resolves config names to catalogue entries (in catalogue order, duplicates dropped).
///
/// # Errors
/// [`SelectError`] for an unknown name (listing the valid ones), streams of two endpoint
/// families, or an empty list.
pub fn select(venue: Venue, names: &[String]) -> Result<Vec<&'static Selectable>, SelectError> {
    for n in names {
        if !selectable(venue).any(|x| x.name == n) {
            let valid: Vec<&str> = selectable(venue).map(|x| x.name).collect();
            return Err(SelectError::Unknown {
                venue,
                name: n.clone(),
                valid: valid.join(", "),
            });
        }
    }
    let chosen: Vec<&'static Selectable> = selectable(venue)
        .filter(|x| names.iter().any(|n| n == x.name))
        .collect();
    // Binance USD-M routes are checked against the URL path instead (see `for_path`).
    let mut grouped = chosen
        .iter()
        .filter(|x| !x.group.is_empty() && x.venue != Venue::BinanceFutures);
    if let Some(first) = grouped.next()
        && let Some(other) = grouped.find(|x| x.group != first.group)
    {
        return Err(SelectError::Groups {
            venue,
            a: first.name.into(),
            ga: first.group,
            b: other.name.into(),
            gb: other.group,
        });
    }
    if chosen.is_empty() {
        return Err(SelectError::Empty(venue));
    }
    Ok(chosen)
}

/// The selection of a source whose WebSocket URL path is `path`: `names` (or the default set
/// when `None`), checked by [`select`]; for Binance USD-M on a 2026 split route (`/public/…`,
/// `/market/…`) the default set is narrowed to the route and a stream of the other route is
/// refused (the legacy combined `/stream` path serves every stream).
///
/// # Errors
/// As [`select`], and [`SelectError::Route`].
pub fn for_path(
    venue: Venue,
    names: Option<&[String]>,
    path: &str,
) -> Result<Vec<&'static Selectable>, SelectError> {
    let route = ["public", "market"].into_iter().find(|r| {
        venue == Venue::BinanceFutures
            && path
                .strip_prefix('/')
                .is_some_and(|p| p.split('/').next() == Some(r))
    });
    let chosen = match names {
        Some(n) => select(venue, n)?,
        None => default_streams(venue)
            .into_iter()
            .filter(|x| route.is_none_or(|r| x.group == r))
            .collect(),
    };
    if let Some(r) = route
        && let Some(bad) = chosen.iter().find(|x| x.group != r)
    {
        return Err(SelectError::Route {
            venue,
            name: bad.name,
            route: bad.group,
            path: path.to_string(),
        });
    }
    Ok(chosen)
}

/// The channel words of `streams` that apply to `symbol` (OKX SWAP-only channels skip spot).
pub fn channels_for<'a>(
    streams: &'a [&'static Selectable],
    symbol: &'a str,
) -> impl Iterator<Item = &'static str> + 'a {
    streams
        .iter()
        .filter(move |x| x.only_suffix.is_none_or(|suf| symbol.ends_with(suf)))
        .map(|x| x.channel)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::adapter::Outgoing;
    use crate::continuity::SyncMode;
    use crate::venues::{IMPLEMENTED, adapter_for};

    fn texts(frames: &[Outgoing]) -> Vec<String> {
        frames
            .iter()
            .map(|f| match f.text() {
                Some(t) => String::from_utf8(t.to_vec()).unwrap(),
                None => "<ping>".into(),
            })
            .collect()
    }

    fn frames(venue: Venue, symbols: &[&str], names: Option<&[&str]>) -> Vec<String> {
        let a = adapter_for(venue, SyncMode::Enforce).unwrap();
        match names {
            None => texts(&a.subscribe(symbols)),
            Some(n) => {
                let n: Vec<String> = n.iter().map(|s| (*s).to_string()).collect();
                texts(&a.subscribe_streams(symbols, &select(venue, &n).unwrap()))
            }
        }
    }

    #[test]
    fn the_default_selection_is_the_fixed_set_it_replaces() {
        // The requests the adapters built before streams were selectable.
        assert_eq!(
            frames(Venue::BinanceSpot, &["BTCUSDT"], None),
            [
                r#"{"method":"SUBSCRIBE","params":["btcusdt@trade","btcusdt@aggTrade","btcusdt@bookTicker","btcusdt@depth@100ms"],"id":1}"#
            ]
        );
        assert_eq!(
            frames(Venue::BinanceFutures, &["BTCUSDT"], None),
            [
                r#"{"method":"SUBSCRIBE","params":["btcusdt@aggTrade","btcusdt@bookTicker","btcusdt@depth@100ms","btcusdt@markPrice@1s","btcusdt@forceOrder"],"id":1}"#
            ]
        );
        assert_eq!(
            frames(Venue::Coinbase, &["BTC-USD"], None),
            [
                r#"{"type":"subscribe","product_ids":["BTC-USD"],"channels":["ticker","matches","heartbeat","level2_batch"]}"#
            ]
        );
        let okx = frames(Venue::Okx, &["BTC-USDT", "BTC-USDT-SWAP"], None);
        assert_eq!(okx.len(), 1);
        for ch in ["books", "bbo-tbt", "trades", "tickers"] {
            assert_eq!(okx[0].matches(&format!("\"{ch}\"")).count(), 2, "{ch}");
        }
        for ch in ["funding-rate", "mark-price", "open-interest"] {
            assert!(okx[0].contains(&format!(r#""channel":"{ch}","instId":"BTC-USDT-SWAP""#)));
            assert!(!okx[0].contains(&format!(r#""channel":"{ch}","instId":"BTC-USDT"}}"#)));
        }
        // The optional extras of STREAMS.md §8, each subscribed once.
        for arg in [
            r#"{"channel":"index-tickers","instId":"BTC-USDT"}"#,
            r#"{"channel":"liquidation-orders","instType":"SWAP"}"#,
        ] {
            assert_eq!(okx[0].matches(arg).count(), 1, "{arg} in {}", okx[0]);
        }
        assert_eq!(
            frames(Venue::Deribit, &["BTC-PERPETUAL"], None),
            [
                r#"{"jsonrpc":"2.0","id":1,"method":"public/subscribe","params":{"channels":["book.BTC-PERPETUAL.100ms","trades.BTC-PERPETUAL.100ms","ticker.BTC-PERPETUAL.100ms","quote.BTC-PERPETUAL","deribit_price_index.btc_usd"]}}"#,
                r#"{"jsonrpc":"2.0","id":2,"method":"public/set_heartbeat","params":{"interval":10}}"#
            ]
        );
        let kraken = frames(Venue::Kraken, &["BTC/USD"], None);
        assert_eq!(kraken.len(), 3);
        assert!(kraken[0].contains(
            r#""channel":"book","symbol":["BTC/USD"],"depth":10,"snapshot":true},"req_id":1"#
        ));
        assert_eq!(
            frames(Venue::Gemini, &["BTCUSD"], None),
            [r#"{"type":"subscribe","subscriptions":[{"name":"l2","symbols":["BTCUSD"]}]}"#]
        );
        assert_eq!(
            frames(Venue::Bybit, &["BTCUSDT"], None),
            [
                r#"{"op":"subscribe","args":["orderbook.50.BTCUSDT","publicTrade.BTCUSDT","tickers.BTCUSDT"]}"#
            ]
        );
        assert_eq!(frames(Venue::Bitstamp, &["btcusd"], None).len(), 2);
        assert_eq!(
            frames(Venue::ChainlinkRtds, &["btc/usd"], None),
            [
                r#"{"action":"subscribe","subscriptions":[{"topic":"crypto_prices_chainlink","type":"*","filters":"{\"symbol\":\"btc/usd\"}"}]}"#
            ]
        );
    }

    #[test]
    fn a_selection_builds_only_its_channels() {
        assert_eq!(
            frames(Venue::BinanceSpot, &["BTCUSDT"], Some(&["depth", "trade"])),
            [r#"{"method":"SUBSCRIBE","params":["btcusdt@trade","btcusdt@depth@100ms"],"id":1}"#]
        );
        assert_eq!(
            frames(
                Venue::Coinbase,
                &["BTC-USD"],
                Some(&["adv_level2", "adv_heartbeats"])
            ),
            [
                r#"{"type":"subscribe","product_ids":["BTC-USD"],"channel":"level2"}"#,
                r#"{"type":"subscribe","product_ids":["BTC-USD"],"channel":"heartbeats"}"#
            ]
        );
        assert_eq!(
            frames(
                Venue::Gemini,
                &["BTCUSD"],
                Some(&["fast_book_ticker", "fast_depth"])
            ),
            [r#"{"id":"1","method":"subscribe","params":["btcusd@depth","btcusd@bookTicker"]}"#]
        );
        assert_eq!(
            frames(Venue::Bybit, &["BTCUSDT"], Some(&["liquidation"])),
            [r#"{"op":"subscribe","args":["allLiquidation.BTCUSDT"]}"#]
        );
        let kraken = frames(Venue::Kraken, &["BTC/USD"], Some(&["trade"]));
        assert_eq!(kraken.len(), 1);
        assert!(kraken[0].contains(r#""channel":"trade""#));
    }

    #[test]
    fn bad_selections_are_refused_with_a_reason() {
        let names = |n: &[&str]| n.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        let e = select(Venue::BinanceSpot, &names(&["depth", "dpeth"])).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("\"dpeth\""), "{text}");
        assert!(
            text.contains("trade, agg_trade, book_ticker, depth, ticker_24h"),
            "{text}"
        );
        let e = select(Venue::Coinbase, &names(&["ticker", "adv_ticker"])).unwrap_err();
        assert!(matches!(e, SelectError::Groups { .. }), "{e}");
        assert!(matches!(
            select(Venue::Okx, &[]).unwrap_err(),
            SelectError::Empty(_)
        ));
        // Binance USD-M on the 2026 split routes.
        let public = for_path(Venue::BinanceFutures, None, "/public/stream").unwrap();
        let names_of = |v: &[&Selectable]| v.iter().map(|x| x.name).collect::<Vec<_>>();
        assert_eq!(names_of(&public), ["book_ticker", "depth"]);
        let market = for_path(Venue::BinanceFutures, None, "/market/stream").unwrap();
        assert_eq!(
            names_of(&market),
            ["agg_trade", "mark_price", "force_order"]
        );
        let e = for_path(
            Venue::BinanceFutures,
            Some(&names(&["depth"])),
            "/market/ws",
        );
        assert!(matches!(e, Err(SelectError::Route { .. })), "{e:?}");
        assert_eq!(
            for_path(Venue::BinanceFutures, None, "/stream")
                .unwrap()
                .len(),
            5
        );
    }

    #[test]
    fn every_venue_has_a_default_selection_with_unique_names() {
        for v in IMPLEMENTED {
            let all: Vec<&str> = selectable(*v).map(|x| x.name).collect();
            assert!(!default_streams(*v).is_empty(), "{v}");
            let mut dedup = all.clone();
            dedup.sort_unstable();
            dedup.dedup();
            assert_eq!(dedup.len(), all.len(), "{v}");
            let n: Vec<String> = all.iter().map(|s| (*s).to_string()).collect();
            // Every name resolves (groups aside).
            for name in &n {
                select(*v, std::slice::from_ref(name)).unwrap();
            }
        }
    }
}
