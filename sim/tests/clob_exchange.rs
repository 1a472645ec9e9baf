//! The CLOB emulator as a small exchange, through real peers: an HTTP/2 client (hyper over
//! rustls, ALPN h2) sends orders signed by `ringbolt-exec` with L2 HMAC headers, a WebSocket
//! client (tungstenite over rustls) reads the authenticated user channel, and the control port
//! exposes the ledger. Crossing and resting orders, maker and taker fills, cancels, the REST
//! reads, trade status progression with a FAILED revert, heartbeat expiry, HTTP 425, a dropped
//! response, and a forced tick-size change.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the test failing

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::{Ws, control, next_json};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use ringbolt_exec::auth::l1_headers;
use ringbolt_exec::request::HttpRequest;
use ringbolt_exec::{ApiCreds, L2Signer, OrderInput, PrivateKey, SignedOrder};
use ringbolt_sim::{Emulator, EmulatorConfig, StartInfo};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_tungstenite::tungstenite::Message;

const KEY_A: &str = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
const KEY_B: &str = "0x8da4ef21b864d2cc526dbdb2a120bd2874c36c9d0a1fb7f8c63d7f7a8b41de8f";

async fn start(tag: &str) -> Emulator {
    let dir = std::env::temp_dir().join(format!("ringbolt-clobx-{tag}-{}", std::process::id()));
    let toml = format!(
        "cert_dir = \"{}\"\n[market]\nseed = 11\n[venues.polymarket]\n[venues.clob]\n",
        dir.display()
    );
    let cfg: EmulatorConfig = toml::from_str(&toml).unwrap();
    Emulator::start(cfg).await.unwrap()
}

fn tls_config(info: &StartInfo, alpn: &[&[u8]]) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&info.ca_pem).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    TlsConnector::from(Arc::new(cfg))
}

/// One trader: a key, its API credentials and an HTTP/2 connection to the CLOB.
struct Trader {
    key: PrivateKey,
    signer: L2Signer,
    /// `{"apiKey","secret","passphrase"}` as the venue returned them.
    creds_json: Value,
    h2: SendRequest<Full<Bytes>>,
}

static SALT: AtomicU64 = AtomicU64::new(5000);

fn now_s() -> u64 {
    (common::now_ns() / 1_000_000_000) as u64
}

impl Trader {
    async fn connect(info: &StartInfo, hex: &str) -> Trader {
        let addr = info.clob.as_ref().unwrap().addr;
        let tcp = TcpStream::connect(addr).await.unwrap();
        let tls = tls_config(info, &[b"h2"])
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        let (h2, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(conn);
        let key = PrivateKey::from_hex(hex).unwrap();
        let l1 = l1_headers(&key, 137, now_s(), 0).unwrap();
        let mut t = Trader {
            signer: L2Signer::new(
                &key.address(),
                ApiCreds::new(String::new(), String::new(), String::new()),
            )
            .unwrap(),
            key,
            h2,
            creds_json: Value::Null,
        };
        let (status, v) = t.send(&HttpRequest::create_api_key(l1), "").await;
        assert_eq!(status, 200, "{v}");
        let creds = ApiCreds::new(
            v["apiKey"].as_str().unwrap().into(),
            v["secret"].as_str().unwrap().into(),
            v["passphrase"].as_str().unwrap().into(),
        );
        t.signer = L2Signer::new(&t.key.address(), creds).unwrap();
        t.creds_json = v;
        t
    }

    fn creds(&self) -> &ApiCreds {
        self.signer.creds()
    }

    /// Sends `req` (its path plus `query`); status and JSON body (`Null` when empty).
    async fn try_send(
        &mut self,
        req: &HttpRequest,
        query: &str,
    ) -> Result<(u16, Value), hyper::Error> {
        let uri = if query.is_empty() {
            format!("https://localhost{}", req.path)
        } else {
            format!("https://localhost{}?{query}", req.path)
        };
        let mut b = hyper::Request::builder().method(req.method).uri(uri);
        for (k, v) in &req.headers {
            b = b.header(*k, v);
        }
        let r = b.body(Full::new(Bytes::from(req.body.clone()))).unwrap();
        let resp = self.h2.send_request(r).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    }

    async fn send(&mut self, req: &HttpRequest, query: &str) -> (u16, Value) {
        self.try_send(req, query).await.unwrap()
    }

    /// An L2-authenticated GET of `path` (the HMAC covers the path without the query).
    async fn get(&mut self, path: &str, query: &str) -> Value {
        let h = self.signer.headers(now_s(), "GET", path, b"");
        let req = HttpRequest {
            method: "GET",
            path: path.to_string(),
            headers: vec![
                ("POLY_ADDRESS", h.address),
                ("POLY_SIGNATURE", h.signature),
                ("POLY_TIMESTAMP", h.timestamp),
                ("POLY_API_KEY", h.api_key),
                ("POLY_PASSPHRASE", h.passphrase),
            ],
            body: Vec::new(),
        };
        let (status, v) = self.send(&req, query).await;
        assert_eq!(status, 200, "GET {path}?{query}: {v}");
        v
    }

    fn order(
        &self,
        token: &str,
        side: &str,
        price: &str,
        size: &str,
        order_type: &str,
        tick: &str,
    ) -> SignedOrder {
        let salt = SALT.fetch_add(1, Ordering::Relaxed);
        let input: OrderInput = serde_json::from_value(json!({
            "side": side, "kind": "limit", "price": price, "size": size, "token_id": token,
            "tick_size": tick, "salt": salt, "order_type": order_type,
            "timestamp_ms": 1_790_000_000_000u64 + salt,
        }))
        .unwrap();
        input.into_spec().unwrap().sign(&self.key).unwrap()
    }

    async fn post(&mut self, o: &SignedOrder) -> (u16, Value) {
        let req = HttpRequest::post_order(&self.signer, now_s(), o);
        self.send(&req, "").await
    }

    async fn place(
        &mut self,
        token: &str,
        side: &str,
        price: &str,
        size: &str,
        order_type: &str,
    ) -> Value {
        let o = self.order(token, side, price, size, order_type, "0.01");
        let (status, v) = self.post(&o).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(
            v["orderID"],
            ringbolt_exec::hex::encode_0x(&o.digest),
            "{v}"
        );
        v
    }

    async fn user_channel(&self, info: &StartInfo, market: &str) -> Ws {
        let url = info.clob.as_ref().unwrap().user_ws_url.clone();
        let addr = info.clob.as_ref().unwrap().addr;
        let tcp = TcpStream::connect(addr).await.unwrap();
        let tls = tls_config(info, &[])
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        let (mut ws, resp) = tokio_tungstenite::client_async(url, tls).await.unwrap();
        assert_eq!(resp.status(), 101);
        let sub = json!({"auth": self.creds_json, "markets": [market], "type": "user"});
        common::send(&mut ws, &sub.to_string()).await;
        ws
    }
}

/// The next (pre-open) window's Up token and condition id: its book rests around 0.49/0.50.
async fn next_window(info: &StartInfo) -> (String, String) {
    let (_, body) = control(info, "GET", "/windows").await;
    let v: Value = serde_json::from_str(&body).unwrap();
    let list = v["windows"].as_array().unwrap();
    let i = list.iter().position(|w| w["current"] == true).unwrap();
    let w = &list[i + 1];
    (
        w["up_token"].as_str().unwrap().into(),
        w["condition_id"].as_str().unwrap().into(),
    )
}

async fn ledger(info: &StartInfo) -> Value {
    let (status, body) = control(info, "GET", "/clob/ledger").await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// User-channel events until `done` says the collection is complete (20 s at most).
async fn collect(ws: &mut Ws, mut done: impl FnMut(&[Value]) -> bool) -> Vec<Value> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done(&out) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "user channel: {out:#?}"
        );
        let v = next_json(ws, 20).await;
        out.push(v);
    }
    out
}

fn micro(text: &str) -> i64 {
    let (i, f) = text.split_once('.').unwrap_or((text, ""));
    let f = format!("{f:0<6}");
    i.parse::<i64>().unwrap() * 1_000_000 + f[..6].parse::<i64>().unwrap()
}

/// `shares × 0.07 × p × (1 − p)` in micro pUSD (half up), from the trade's text fields.
fn fee_micro(size: &str, price: &str) -> i64 {
    let (s, p) = (i128::from(micro(size)), i128::from(micro(price)));
    // shares × p × (1 − p) × 7 / 100, all in 1e-6 units: / 1e12 for the two extra scales.
    let num = s * p * (1_000_000 - p) * 7;
    let den = 100 * 1_000_000_000_000_i128;
    ((num + den / 2) / den) as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crossing_and_resting_orders_fill_on_the_user_channel_and_the_ledger_agrees() {
    let emu = start("flow").await;
    let info = emu.info.clone();
    let (token, market) = next_window(&info).await;
    let mut a = Trader::connect(&info, KEY_A).await;
    let mut b = Trader::connect(&info, KEY_B).await;
    let mut wa = a.user_channel(&info, &market).await;
    let mut wb = b.user_channel(&info, &market).await;
    // Trade statuses stay MATCHED for this test.
    control(
        &info,
        "POST",
        "/clob/params?mined_ms=600000&confirmed_ms=900000",
    )
    .await;
    let mut mc = common::market_channel(&info, &[&token]).await;
    let sw = sweep(&mut a, &mut wa, &token, &market).await;
    published(&mut mc, &sw.fills).await;
    let sell_id = maker_fill(&mut a, &mut b, (&mut wa, &mut wb), &token).await;
    check_reads(&info, (&mut a, &b), (&token, &market), &sw, &sell_id).await;
    // Cancel the rest of A's SELL: CANCELLATION with what had matched.
    let (_, c) = a
        .send(&HttpRequest::cancel_order(&a.signer, now_s(), &sell_id), "")
        .await;
    assert_eq!(c["canceled"][0], sell_id.as_str());
    let ec = collect(&mut wa, |e| e.iter().any(|x| x["type"] == "CANCELLATION")).await;
    let cancel = ec.iter().find(|x| x["type"] == "CANCELLATION").unwrap();
    assert_eq!(
        (cancel["status"].as_str(), cancel["size_matched"].as_str()),
        (Some("CANCELED"), Some("5"))
    );
    assert_eq!(
        a.get("/data/orders", "").await["data"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    emu.shutdown().await;
}

/// What A's sweep bought.
struct Sweep {
    bought: i64,
    paid: i64,
    fees: i64,
    n: usize,
    /// `(price, size)` of every fill, as the trade events gave them.
    fills: Vec<(String, String)>,
}

/// A sweeps the asks up to 0.53 with a FAK BUY; checks its answer and user-channel events.
async fn sweep(a: &mut Trader, wa: &mut Ws, token: &str, market: &str) -> Sweep {
    // A sweeps the asks up to 0.53 (levels are at most two ticks apart: at least two fills).
    let r = a.place(token, "BUY", "0.53", "3000", "FAK").await;
    assert_eq!(r["status"], "matched", "{r}");
    let trade_ids: Vec<String> = serde_json::from_value(r["tradeIDs"].clone()).unwrap();
    assert!(trade_ids.len() >= 2, "{r}");
    assert_eq!(
        r["transactionsHashes"].as_array().unwrap().len(),
        trade_ids.len()
    );
    let bought = micro(r["takingAmount"].as_str().unwrap());
    let paid = micro(r["makingAmount"].as_str().unwrap());
    // FAK/FOK BUYs are sized in pUSD (makerAmount 3000 × 0.53): at better prices the budget
    // buys more shares than the signed takerAmount.
    assert!(paid > 0 && paid <= 1_590_000_000 && bought > 0, "{r}");
    // The user channel: PLACEMENT, one MATCHED trade per id (TAKER), the UPDATE.
    let n = trade_ids.len();
    let ev = collect(wa, |e| e.len() >= n + 2).await;
    assert_eq!(
        (ev[0]["event_type"].as_str(), ev[0]["type"].as_str()),
        (Some("order"), Some("PLACEMENT"))
    );
    let trades: Vec<&Value> = ev.iter().filter(|e| e["event_type"] == "trade").collect();
    assert_eq!(trades.len(), n);
    let mut shares = 0;
    let mut cost = 0;
    let mut fees = 0;
    let mut fills = Vec::new();
    for (t, id) in trades.iter().zip(&trade_ids) {
        assert_eq!(t["id"], id.as_str());
        assert_eq!(
            (t["status"].as_str(), t["trader_side"].as_str()),
            (Some("MATCHED"), Some("TAKER"))
        );
        assert_eq!(t["taker_order_id"], r["orderID"]);
        assert_eq!(t["market"], market);
        assert_eq!(t["maker_orders"][0]["price"], t["price"]);
        let (s, p) = (t["size"].as_str().unwrap(), t["price"].as_str().unwrap());
        shares += micro(s);
        cost += micro(s) * micro(p) / 1_000_000;
        fees += fee_micro(s, p);
        fills.push((p.to_string(), s.to_string()));
    }
    assert_eq!((shares, cost), (bought, paid));
    let upd = ev.last().unwrap();
    assert_eq!(
        (upd["type"].as_str(), upd["status"].as_str()),
        (Some("UPDATE"), Some("MATCHED"))
    );
    assert_eq!(micro(upd["size_matched"].as_str().unwrap()), bought);
    Sweep {
        bought,
        paid,
        fees,
        n,
        fills,
    }
}

/// The market channel publishes every fill as a `last_trade_price` (BUY, its price and size):
/// the feed sees the book the exchange trades against.
async fn published(mc: &mut Ws, fills: &[(String, String)]) {
    let mut missing: Vec<(String, String)> = fills.to_vec();
    for _ in 0..5000 {
        if missing.is_empty() {
            return;
        }
        let v = next_json(mc, 10).await;
        for e in v.as_array().cloned().unwrap_or_else(|| vec![v]) {
            if e["event_type"] == "last_trade_price" && e["side"] == "BUY" {
                let key = (
                    e["price"].as_str().unwrap_or("").to_string(),
                    e["size"].as_str().unwrap_or("").to_string(),
                );
                missing.retain(|f| *f != key);
            }
        }
    }
    panic!("not published: {missing:?}");
}

/// A rests a SELL inside the spread; B's BUY at that price takes part of it (A maker, B taker).
async fn maker_fill(
    a: &mut Trader,
    b: &mut Trader,
    (wa, wb): (&mut Ws, &mut Ws),
    token: &str,
) -> String {
    // A rests a SELL inside the spread; B's BUY at that price takes it (A maker, B taker).
    let s = a.place(token, "SELL", "0.50", "10", "GTC").await;
    assert_eq!(s["status"], "live", "{s}");
    let sell_id = s["orderID"].as_str().unwrap().to_string();
    let t = b.place(token, "BUY", "0.50", "5", "GTC").await;
    assert_eq!(
        (t["status"].as_str(), t["takingAmount"].as_str()),
        (Some("matched"), Some("5")),
        "{t}"
    );
    let ea = collect(wa, |e| {
        e.iter().filter(|x| x["event_type"] == "trade").count() == 1 && e.len() >= 3
    })
    .await;
    let maker = ea.iter().find(|e| e["event_type"] == "trade").unwrap();
    assert_eq!(maker["trader_side"], "MAKER");
    assert_eq!(maker["maker_orders"][0]["order_id"], sell_id.as_str());
    assert_eq!(maker["taker_order_id"], t["orderID"]);
    let upd = ea.iter().find(|e| e["type"] == "UPDATE").unwrap();
    assert_eq!(
        (upd["size_matched"].as_str(), upd["status"].as_str()),
        (Some("5"), Some("LIVE"))
    );
    let eb = collect(wb, |e| e.iter().any(|x| x["event_type"] == "trade")).await;
    assert!(
        eb.iter()
            .any(|e| e["trader_side"] == "TAKER" && e["price"] == "0.5"),
        "{eb:?}"
    );
    sell_id
}

/// REST reads, the control-port ledger and the data-api positions agree with the fills.
async fn check_reads(
    info: &StartInfo,
    (a, b): (&mut Trader, &Trader),
    (token, market): (&str, &str),
    sw: &Sweep,
    sell_id: &str,
) {
    // REST: A's open orders, the order by hash, A's trades, balances.
    let open = a.get("/data/orders", "next_cursor=MA==").await;
    assert_eq!(open["next_cursor"], "LTE=");
    assert_eq!(open["data"][0]["id"], sell_id);
    assert_eq!(open["data"][0]["size_matched"], "5");
    let one = a.get(&format!("/data/order/{sell_id}"), "").await;
    assert_eq!(
        (one["status"].as_str(), one["original_size"].as_str()),
        (Some("LIVE"), Some("10"))
    );
    let tr = a.get("/data/trades", &format!("market={market}")).await;
    assert_eq!(tr["data"].as_array().unwrap().len(), sw.n + 1);
    let later = a
        .get("/data/trades", &format!("after={}", now_s() + 3600))
        .await;
    assert_eq!(later["count"], 0, "{later}");
    let usdc = a.get("/balance-allowance", "asset_type=COLLATERAL").await;
    let pos = a
        .get(
            "/balance-allowance",
            &format!("asset_type=CONDITIONAL&token_id={token}"),
        )
        .await;
    let expect_usdc = 10_000_000_000 - sw.paid - sw.fees + 2_500_000;
    assert_eq!(usdc["balance"], expect_usdc.to_string());
    assert_eq!(pos["balance"], (sw.bought - 5_000_000).to_string());
    // The ledger on the control port says the same, and so do the data-api positions.
    let l = ledger(info).await;
    let acct = &l["accounts"][&a.creds().api_key];
    assert_eq!(acct["usdc_micro"], expect_usdc);
    assert_eq!(
        acct["positions"][token]["size_micro"],
        sw.bought - 5_000_000
    );
    let lb = &l["accounts"][&b.creds().api_key];
    assert_eq!(lb["positions"][token]["size_micro"], 5_000_000);
    assert_eq!(
        lb["usdc_micro"],
        10_000_000_000 - 2_500_000 - fee_micro("5", "0.5")
    );
    let (_, p) = a
        .send(&positions_req(), &format!("user={}", a.key.address()))
        .await;
    assert_eq!(p[0]["asset"], token);
    assert_eq!(
        p[0]["size"].as_f64().unwrap(),
        (sw.bought - 5_000_000) as f64 / 1e6
    );
}

fn positions_req() -> HttpRequest {
    HttpRequest {
        method: "GET",
        path: "/positions".into(),
        headers: Vec::new(),
        body: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trades_progress_a_failed_one_is_reverted_and_a_lost_heartbeat_cancels_all() {
    let emu = start("status").await;
    let info = emu.info.clone();
    let (token, market) = next_window(&info).await;
    let (st, body) = control(
        &info,
        "POST",
        "/clob/params?mined_ms=300&confirmed_ms=800&heartbeat_timeout_ms=1500",
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let mut a = Trader::connect(&info, KEY_A).await;
    let mut wa = a.user_channel(&info, &market).await;
    let key = a.creds().api_key.clone();
    let before = ledger(&info).await;
    assert!(
        before["accounts"].get(&key).is_none(),
        "no account before the first order"
    );
    // A good trade: MATCHED → MINED → CONFIRMED.
    let r = a.place(&token, "BUY", "0.55", "5", "FOK").await;
    assert_eq!(r["status"], "matched", "{r}");
    let ev = collect(&mut wa, |e| e.iter().any(|x| x["status"] == "CONFIRMED")).await;
    let statuses: Vec<&str> = ev
        .iter()
        .filter(|e| e["event_type"] == "trade")
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["MATCHED", "MINED", "CONFIRMED"]);
    let after_good = ledger(&info).await["accounts"][&key].clone();
    // The next trade fails: RETRYING → FAILED, and the ledger goes back to where it was.
    let (st, _) = control(&info, "POST", "/clob/fail-next?count=1").await;
    assert_eq!(st, 200);
    let r = a.place(&token, "BUY", "0.55", "5", "FOK").await;
    assert_eq!(r["status"], "matched", "{r}");
    let matched = ledger(&info).await["accounts"][&key].clone();
    let held = |a: &Value| a["positions"][&token]["size_micro"].as_i64().unwrap();
    let got = micro(r["takingAmount"].as_str().unwrap());
    assert!(got >= 5_000_000, "{r}");
    assert_eq!(
        held(&matched),
        held(&after_good) + got,
        "a MATCHED fill counts at once"
    );
    let ev = collect(&mut wa, |e| e.iter().any(|x| x["status"] == "FAILED")).await;
    let statuses: Vec<&str> = ev
        .iter()
        .filter(|e| e["event_type"] == "trade")
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["MATCHED", "RETRYING", "FAILED"]);
    let l = ledger(&info).await;
    assert_eq!(l["accounts"][&key], after_good, "the FAILED fill is undone");
    assert_eq!(l["stats"]["failed"], 1);
    dead_man(&mut a, &mut wa, &token).await;
    emu.shutdown().await;
}

/// Heartbeats arm the dead-man switch; when they stop, every open order is cancelled.
async fn dead_man(a: &mut Trader, wa: &mut Ws, token: &str) {
    // Heartbeats arm the dead-man switch; when they stop, every open order is cancelled.
    let o1 = a.place(token, "BUY", "0.30", "5", "GTC").await;
    let o2 = a.place(token, "BUY", "0.31", "5", "GTC").await;
    let (st, hb) = a
        .send(&HttpRequest::heartbeat(&a.signer, now_s(), ""), "")
        .await;
    assert_eq!(st, 200, "{hb}");
    let ev = collect(wa, |e| {
        e.iter().filter(|x| x["type"] == "CANCELLATION").count() == 2
    })
    .await;
    let mut cancelled: Vec<&str> = ev
        .iter()
        .filter(|x| x["type"] == "CANCELLATION")
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    cancelled.sort_unstable();
    let mut want = vec![
        o1["orderID"].as_str().unwrap(),
        o2["orderID"].as_str().unwrap(),
    ];
    want.sort_unstable();
    assert_eq!(cancelled, want);
    assert_eq!(
        a.get("/data/orders", "").await["data"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_early_dropped_responses_tick_size_changes_and_bad_credentials() {
    let emu = start("faults").await;
    let info = emu.info.clone();
    let (token, market) = next_window(&info).await;
    let mut a = Trader::connect(&info, KEY_A).await;
    // 425 while the matching engine "restarts", then accepted.
    let (st, _) = control(&info, "POST", "/fault?venue=clob&kind=http425&ms=400").await;
    assert_eq!(st, 200);
    let o = a.order(&token, "BUY", "0.30", "5", "GTC", "0.01");
    let (st, v) = a.post(&o).await;
    assert_eq!(st, 425, "{v}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (st, v) = a.post(&o).await;
    assert_eq!((st, v["status"].as_str()), (200, Some("live")), "{v}");
    // An order accepted whose answer is dropped: found afterwards by its hash.
    let (st, _) = control(&info, "POST", "/fault?venue=clob&kind=drop_response").await;
    assert_eq!(st, 200);
    let lost = a.order(&token, "BUY", "0.31", "5", "GTC", "0.01");
    let req = HttpRequest::post_order(&a.signer, now_s(), &lost);
    assert!(
        a.try_send(&req, "").await.is_err(),
        "the answer was dropped"
    );
    let id = ringbolt_exec::hex::encode_0x(&lost.digest);
    let found = a.get(&format!("/data/order/{id}"), "").await;
    assert_eq!(
        (found["id"].as_str(), found["status"].as_str()),
        (Some(id.as_str()), Some("LIVE"))
    );
    // A forced tick size change is published on the market channel, then enforced.
    let mut mc = common::market_channel(&info, &[&token]).await;
    let (st, body) = control(
        &info,
        "POST",
        &format!("/clob/tick-size?token={token}&tick=0.001"),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    wait_tick_change(&mut mc, "0.001").await;
    let fine = a.order(&token, "BUY", "0.305", "5", "GTC", "0.001");
    let (st, v) = a.post(&fine).await;
    assert_eq!((st, v["status"].as_str()), (200, Some("live")), "{v}");
    control(
        &info,
        "POST",
        &format!("/clob/tick-size?token={token}&tick=0.01"),
    )
    .await;
    wait_tick_change(&mut mc, "0.01").await;
    let off = a.order(&token, "BUY", "0.315", "5", "GTC", "0.001");
    let (st, v) = a.post(&off).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (
            400,
            Some("order is invalid. Price breaks minimum tick size rules")
        )
    );
    // The user channel refuses wrong credentials.
    let mut bad = Trader::connect(&info, KEY_B).await;
    bad.creds_json["secret"] = "d3Jvbmc=".into();
    let mut ws = bad.user_channel(&info, &market).await;
    match tokio::time::timeout(
        Duration::from_secs(10),
        futures_util::StreamExt::next(&mut ws),
    )
    .await
    {
        Ok(Some(Ok(Message::Close(Some(f))))) => assert_eq!(u16::from(f.code), 1008),
        other => panic!("{other:?}"),
    }
    emu.shutdown().await;
}

async fn wait_tick_change(ws: &mut Ws, new_tick: &str) {
    for _ in 0..2000 {
        let v = next_json(ws, 10).await;
        let items = v.as_array().cloned().unwrap_or_else(|| vec![v]);
        if items
            .iter()
            .any(|e| e["event_type"] == "tick_size_change" && e["new_tick_size"] == new_tick)
        {
            return;
        }
    }
    panic!("no tick_size_change to {new_tick}");
}

/// `Emulator::start_with` runs its hook on the CLOB emulator's own thread (where the `emulate`
/// command sets its real-time priority), and not at all when no CLOB is configured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clob_thread_hook_runs_on_the_clob_thread_only() {
    let dir = std::env::temp_dir().join(format!("ringbolt-clobx-hook-{}", std::process::id()));
    let cfg = |clob: &str| -> EmulatorConfig {
        let toml = format!(
            "cert_dir = \"{}\"\n[market]\nseed = 11\n[venues.polymarket]\n{clob}",
            dir.display()
        );
        toml::from_str(&toml).unwrap()
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let hook = move || {
        let name = std::thread::current().name().map(str::to_owned);
        tx.send(name).unwrap();
    };
    let with_clob = Emulator::start_with(cfg("[venues.clob]\n"), hook)
        .await
        .unwrap();
    let name = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(name.as_deref(), Some("clob-emulator"));
    drop(with_clob);

    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let without = Emulator::start_with(cfg(""), move || tx.send(()).unwrap())
        .await
        .unwrap();
    assert!(
        matches!(
            rx.recv_timeout(Duration::from_millis(200)),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
        ),
        "the hook ran (or was kept) without a CLOB"
    );
    drop(without);
}
