//! The page's HTTP/1.1 server and its WebSocket: a blocking listener thread and one thread per
//! connection (not a hot path: a handful of operators' browsers).
//!
//! Read-only by construction: every route is a `GET` of compiled-in assets or of the latest
//! snapshot; any other method is `405`, anything a WebSocket client sends is read and dropped.
//! With a token configured, `/`, `/snapshot.json` and `/ws` need `?token=` (or
//! `Authorization: Bearer`); the static assets carry no data and are served to anyone who can
//! reach the port. A WebSocket upgrade must come from the page's own origin.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use tungstenite::protocol::{Role, WebSocket};
use tungstenite::{Message, Utf8Bytes};

use crate::Shared;

/// Connections served at once; more are answered `503`.
const MAX_CONNECTIONS: usize = 32;
const HEAD_MAX: usize = 8192;

struct Asset {
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

/// Every file the page needs, compiled into the binary (no CDN: the page works offline).
const ASSETS: &[Asset] = &[
    Asset {
        path: "/assets/dash.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/dash.js"),
    },
    Asset {
        path: "/assets/dash.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../assets/dash.css"),
    },
    Asset {
        path: "/assets/uPlot.iife.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/uplot/uPlot.iife.min.js"),
    },
    Asset {
        path: "/assets/uPlot.min.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../assets/uplot/uPlot.min.css"),
    },
    Asset {
        path: "/assets/LICENSE-uPlot.txt",
        content_type: "text/plain; charset=utf-8",
        bytes: include_bytes!("../assets/uplot/LICENSE"),
    },
];

const INDEX: &[u8] = include_bytes!("../assets/index.html");

/// A parsed request head.
#[derive(Debug, Default)]
pub(crate) struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn query_param(&self, key: &str) -> Option<&str> {
        self.query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }
}

/// Parses a request head (`None`: not HTTP/1.x or incomplete).
pub(crate) fn parse_head(head: &[u8]) -> Option<Request> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let target = first.next()?;
    if !first.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Some(Request {
        method,
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
    })
}

/// Binds `addr` and serves connections until `stop`; returns the bound address.
pub(crate) fn spawn(
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
) -> Result<SocketAddr> {
    let listener = TcpListener::bind(addr).with_context(|| format!("binding dash.bind {addr}"))?;
    let bound = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let active = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("dash-http".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => accept(stream, &shared, &active, &stop),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    Err(e) => tracing::debug!("dash accept: {e}"),
                }
            }
        })
        .context("spawning the dash HTTP thread")?;
    Ok(bound)
}

fn accept(
    stream: TcpStream,
    shared: &Arc<Shared>,
    active: &Arc<AtomicUsize>,
    stop: &Arc<AtomicBool>,
) {
    let _ = stream.set_nonblocking(false);
    if active.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
        active.fetch_sub(1, Ordering::AcqRel);
        let mut stream = stream;
        let _ = respond(
            &mut stream,
            "503 Service Unavailable",
            "text/plain",
            b"busy\n",
        );
        return;
    }
    let (shared, active, stop) = (Arc::clone(shared), Arc::clone(active), Arc::clone(stop));
    let spawned = std::thread::Builder::new()
        .name("dash-conn".into())
        .spawn(move || {
            if let Err(e) = serve(stream, &shared, &stop) {
                tracing::debug!("dash connection: {e:#}");
            }
            active.fetch_sub(1, Ordering::AcqRel);
        });
    if spawned.is_err() {
        tracing::warn!("dash: cannot spawn a connection thread");
    }
}

fn read_head(stream: &mut TcpStream) -> Result<Vec<u8>> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 || head.len() + n > HEAD_MAX {
            anyhow::bail!("request head incomplete or over {HEAD_MAX} bytes");
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(head)
}

fn serve(mut stream: TcpStream, shared: &Shared, stop: &AtomicBool) -> Result<()> {
    let head = read_head(&mut stream)?;
    let Some(req) = parse_head(&head) else {
        return respond(
            &mut stream,
            "400 Bad Request",
            "text/plain",
            b"bad request\n",
        );
    };
    if req.method != "GET" {
        // Read-only: nothing here accepts a body, places or cancels anything.
        return respond(
            &mut stream,
            "405 Method Not Allowed",
            "text/plain",
            b"read-only: GET only\n",
        );
    }
    if let Some(asset) = ASSETS.iter().find(|a| a.path == req.path) {
        return respond(&mut stream, "200 OK", asset.content_type, asset.bytes);
    }
    let data_route = matches!(
        req.path.as_str(),
        "/" | "/index.html" | "/snapshot.json" | "/ws"
    );
    if data_route && !authorized(&req, shared.token.as_deref()) {
        return respond(
            &mut stream,
            "401 Unauthorized",
            "text/plain",
            b"token required\n",
        );
    }
    match req.path.as_str() {
        "/" | "/index.html" => respond(&mut stream, "200 OK", "text/html; charset=utf-8", INDEX),
        "/snapshot.json" => {
            let body = shared.latest().1;
            respond(&mut stream, "200 OK", "application/json", body.as_bytes())
        }
        "/healthz" => respond(&mut stream, "200 OK", "text/plain", b"ok\n"),
        "/ws" => websocket(stream, &req, shared, stop),
        _ => respond(&mut stream, "404 Not Found", "text/plain", b"not found\n"),
    }
}

/// Constant-time comparison of the presented token with the configured one.
fn authorized(req: &Request, token: Option<&str>) -> bool {
    let Some(token) = token else {
        return true;
    };
    let presented = req
        .query_param("token")
        .or_else(|| {
            req.header("authorization")
                .and_then(|v| v.strip_prefix("Bearer "))
        })
        .unwrap_or("");
    presented.len() == token.len()
        && presented
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn respond(stream: &mut TcpStream, status: &str, content_type: &str, body: &[u8]) -> Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\n\
         Referrer-Policy: no-referrer\r\nContent-Security-Policy: default-src 'self'; \
         connect-src 'self' ws: wss:; style-src 'self' 'unsafe-inline'; img-src 'self' data:\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    stream.flush()?;
    Ok(())
}

/// Whether a WebSocket upgrade comes from the page itself (same host and port).
fn same_origin(req: &Request) -> bool {
    match (req.header("origin"), req.header("host")) {
        (None, _) => true, // not a browser (curl, tests): no cross-site risk
        (Some(origin), Some(host)) => {
            origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                == Some(host)
        }
        (Some(_), None) => false,
    }
}

fn websocket(
    mut stream: TcpStream,
    req: &Request,
    shared: &Shared,
    stop: &AtomicBool,
) -> Result<()> {
    let upgrade = req
        .header("upgrade")
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let Some(key) = req.header("sec-websocket-key").filter(|_| upgrade) else {
        return respond(
            &mut stream,
            "426 Upgrade Required",
            "text/plain",
            b"websocket only\n",
        );
    };
    if !same_origin(req) {
        return respond(
            &mut stream,
            "403 Forbidden",
            "text/plain",
            b"cross-origin\n",
        );
    }
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    write!(
        stream,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    )?;
    stream.set_read_timeout(Some(Duration::from_millis(1)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut ws = WebSocket::from_raw_socket(stream, Role::Server, None);
    ws.send(Message::Text(Utf8Bytes::from(shared.hello())))?;
    let mut seen = 0;
    while !stop.load(Ordering::Relaxed) {
        let (seq, tick) = shared.wait_newer(seen, Duration::from_millis(500));
        if seq != seen {
            seen = seq;
            ws.send(Message::Text(tick))?;
        }
        // Drain what the client sent: pings are answered by tungstenite, a close ends the loop,
        // anything else is ignored (the page cannot ask for anything).
        loop {
            match ws.read() {
                Ok(Message::Close(_)) => return Ok(()),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break;
                }
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    let _ = ws.close(None);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_heads_parse_and_tokens_compare() {
        let req = parse_head(
            b"GET /ws?token=abc&x=1 HTTP/1.1\r\nHost: 127.0.0.1:8052\r\nOrigin: http://127.0.0.1:8052\r\n\r\n",
        )
        .unwrap_or_default();
        assert_eq!(req.path, "/ws");
        assert_eq!(req.query_param("token"), Some("abc"));
        assert!(authorized(&req, Some("abc")));
        assert!(!authorized(&req, Some("abd")));
        assert!(!authorized(&req, Some("abcd")));
        assert!(authorized(&req, None));
        assert!(same_origin(&req));
        let evil = parse_head(
            b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8052\r\nOrigin: http://evil.example\r\n\r\n",
        )
        .unwrap_or_default();
        assert!(!same_origin(&evil));
        assert!(parse_head(b"garbage\r\n\r\n").is_none());
    }
}
