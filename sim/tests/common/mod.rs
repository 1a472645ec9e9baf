//! Shared helpers of the emulator integration tests: a real TLS WebSocket client
//! (tokio-rustls + tokio-tungstenite) trusting the generated CA, a tiny HTTPS/HTTP client, and
//! the corpus shape comparison.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use ringbolt_sim::{Emulator, EmulatorConfig, StartInfo};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

pub type Ws = WebSocketStream<TlsStream<TcpStream>>;

/// Start an emulator with fast demo windows and a short Binance ping period.
pub async fn start(tag: &str, window_len_s: i64, seed: u64) -> Emulator {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("ringbolt-sim-{tag}-{}", std::process::id()));
    let toml = format!(
        r#"
cert_dir = "{}"
[market]
seed = {seed}
window_len_s = {window_len_s}
polymarket_trade_prob = 0.2
[venues.polymarket]
[venues.chainlink_rtds]
[venues.coinbase]
[venues.binance_spot]
server_ping_ms = 700
"#,
        dir.display()
    );
    let cfg: EmulatorConfig = toml::from_str(&toml).unwrap();
    Emulator::start(cfg).await.unwrap()
}

pub fn connector(info: &StartInfo) -> TlsConnector {
    connector_trusting(std::path::Path::new(&info.ca_pem))
}

/// A TLS client trusting only the CA in `ca_pem`.
pub fn connector_trusting(ca_pem: &std::path::Path) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca_pem).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    TlsConnector::from(Arc::new(cfg))
}

async fn tls(info: &StartInfo, venue: &str, sni: &str) -> TlsStream<TcpStream> {
    let addr = info.venues[venue].addr;
    let tcp = TcpStream::connect(addr).await.unwrap();
    connector(info)
        .connect(ServerName::try_from(sni.to_string()).unwrap(), tcp)
        .await
        .unwrap()
}

/// Open a TLS WebSocket to `venue` at `path`, using the real host name as SNI.
pub async fn connect(info: &StartInfo, venue: &str, sni: &str, path: &str) -> Ws {
    let stream = tls(info, venue, sni).await;
    let url = format!("wss://{sni}{path}");
    let (ws, resp) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    assert_eq!(resp.status(), 101);
    ws
}

/// `GET` over HTTPS (HTTP/1.1, Connection: close); returns status and body.
pub async fn https_get(info: &StartInfo, venue: &str, sni: &str, target: &str) -> (u16, String) {
    let mut s = tls(info, venue, sni).await;
    let req = format!("GET {target} HTTP/1.1\r\nHost: {sni}\r\nAccept: application/json\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf).await;
    split_response(&buf)
}

fn split_response(buf: &[u8]) -> (u16, String) {
    let r = ringbolt_testkit::http::Response::parse(&String::from_utf8_lossy(buf));
    (r.status, r.body)
}

/// Plain-HTTP request to the control port.
pub async fn control(info: &StartInfo, method: &str, target: &str) -> (u16, String) {
    let addr = info.control_url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    split_response(&buf)
}

/// Connects to the Polymarket market channel and subscribes `assets` (custom features on).
pub async fn market_channel(info: &StartInfo, assets: &[&str]) -> Ws {
    let mut ws = connect(
        info,
        "polymarket",
        "ws-subscriptions-clob.polymarket.com",
        "/ws/market",
    )
    .await;
    let ids: Vec<String> = assets.iter().map(|a| format!("\"{a}\"")).collect();
    send(
        &mut ws,
        &format!(
            r#"{{"type":"market","assets_ids":[{}],"custom_feature_enabled":true}}"#,
            ids.join(",")
        ),
    )
    .await;
    ws
}

/// Next text frame (pings/pongs are skipped; the client answers pings by itself), or panic
/// after `secs`.
pub async fn next_text(ws: &mut Ws, secs: u64) -> String {
    match tokio::time::timeout(Duration::from_secs(secs), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => return t.to_string(),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("expected text, got {other:?}"),
            }
        }
    })
    .await
    {
        Ok(t) => t,
        Err(_) => panic!("no text frame within {secs} s"),
    }
}

/// Next text frame parsed as JSON.
pub async fn next_json(ws: &mut Ws, secs: u64) -> Value {
    let t = next_text(ws, secs).await;
    serde_json::from_str(&t).unwrap_or_else(|e| panic!("not JSON ({e}): {t}"))
}

pub async fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text.to_string())).await.unwrap();
}

/// Corpus samples by kind (fixtures/corpus/samples.jsonl).
pub fn samples() -> BTreeMap<String, Value> {
    let text = include_str!("../../fixtures/corpus/samples.jsonl");
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let raw: Value = serde_json::from_str(v["raw"].as_str().unwrap()).unwrap();
            (v["kind"].as_str().unwrap().to_string(), raw)
        })
        .collect()
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Same key sets and value types, recursively (arrays: first elements compared).
pub fn same_shape(got: &Value, want: &Value, path: &str) -> Result<(), String> {
    if type_name(got) != type_name(want) {
        return Err(format!(
            "{path}: {} vs sample {}",
            type_name(got),
            type_name(want)
        ));
    }
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            let gk: Vec<&String> = g.keys().collect();
            let wk: Vec<&String> = w.keys().collect();
            if gk != wk {
                return Err(format!("{path}: keys {gk:?} vs sample {wk:?}"));
            }
            for (k, gv) in g {
                same_shape(gv, &w[k], &format!("{path}.{k}"))?;
            }
            Ok(())
        }
        (Value::Array(g), Value::Array(w)) => match (g.first(), w.first()) {
            (Some(a), Some(b)) => same_shape(a, b, &format!("{path}[0]")),
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

/// Assert the frame has the shape of the corpus sample `kind`.
pub fn assert_shape(samples: &BTreeMap<String, Value>, kind: &str, got: &Value) {
    let want = samples
        .get(kind)
        .unwrap_or_else(|| panic!("no sample {kind}"));
    if let Err(e) = same_shape(got, want, kind) {
        panic!("shape mismatch: {e}\nframe: {got}");
    }
}

/// CLOCK_REALTIME ns: the one clock helper.
#[allow(unused_imports)] // not every test binary that includes this module stamps records
pub use ringbolt_telemetry::now_ns;
