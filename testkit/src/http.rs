//! Blocking HTTP/1.1 against local test servers (metrics, health, emulator control).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// A response: status code, head (status line and headers) and body, as text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// The status code (0 when the status line is malformed).
    pub status: u16,
    /// The status line and headers.
    pub head: String,
    /// The body (everything after the blank line).
    pub body: String,
}

impl Response {
    /// Splits a raw response text.
    #[must_use]
    pub fn parse(text: &str) -> Self {
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
        Response {
            status: head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0),
            head: head.to_owned(),
            body: body.to_owned(),
        }
    }

    /// The body as JSON (`Null` when it is not JSON).
    #[must_use]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Writes `request` (a complete HTTP/1 request text) to `addr` and reads until the server
/// closes the connection (or `timeout` passes without data); the raw response text.
///
/// # Errors
/// Connecting, writing or reading failed.
pub fn exchange(
    addr: impl ToSocketAddrs,
    request: &str,
    timeout: Duration,
) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(request.as_bytes())?;
    let mut out = String::new();
    stream.read_to_string(&mut out)?;
    Ok(out)
}

/// `METHOD target` with an empty body and `Connection: close`; the parsed response.
///
/// # Panics
/// When the exchange fails.
#[must_use]
pub fn request(addr: impl ToSocketAddrs, method: &str, target: &str) -> Response {
    let text = exchange(
        addr,
        &format!(
            "{method} {target} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
        Duration::from_secs(10),
    )
    .unwrap();
    Response::parse(&text)
}

/// `GET target`; the parsed response.
///
/// # Panics
/// When the exchange fails.
#[must_use]
pub fn get(addr: impl ToSocketAddrs, target: &str) -> Response {
    request(addr, "GET", target)
}

/// The status of `GET target`, `None` when nothing answered (within 2 s).
#[must_use]
pub fn status(addr: impl ToSocketAddrs, target: &str) -> Option<u16> {
    let text = exchange(
        addr,
        &format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
        Duration::from_secs(2),
    )
    .ok()?;
    Some(Response::parse(&text).status).filter(|&s| s != 0)
}
