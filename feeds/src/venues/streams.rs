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
        TickSizeChange = 3, "tick_size_change", "tick size changes (kept by the adapter; no record kind yet)";
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
