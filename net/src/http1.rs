//! A minimal HTTP/1.1 `GET` client over a [`Link`] (TCP or TLS), for cold-path REST requests
//! next to a feed: order-book snapshots (Binance `GET /api/v3/depth`) and market discovery
//! (Polymarket Gamma `GET /markets?slug=`). One request per connection (`Connection: close`);
//! bodies framed by `Content-Length`, `Transfer-Encoding: chunked` or the end of the
//! connection.
//!
//! [`HttpGet`] is non-blocking, connect included: the ring loop calls [`HttpGet::poll`] after
//! every [`Driver::poll`] until the response is complete, so a snapshot fetch never stalls the
//! other connections of the thread. [`get`] is the blocking convenience for helper threads.
//! Responses are collected into a `Vec` (REST is never on the per-message hot path).

use std::time::{Duration, Instant};

use crate::connect::{LinkConnect, Resolver};
use crate::driver::Driver;
use crate::error::{NetError, Result};
use crate::link::{Endpoint, Link, Timeouts};

/// Largest accepted response (head + body), bytes.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// A complete response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Body (de-chunked).
    pub body: Vec<u8>,
}

/// The `Host` header for an endpoint (the port is omitted when it is the scheme's default).
#[must_use]
pub fn host_header(ep: &Endpoint) -> String {
    let default_port = if ep.tls.is_some() { 443 } else { 80 };
    if ep.port == default_port {
        ep.host.clone()
    } else {
        format!("{}:{}", ep.host, ep.port)
    }
}

/// One in-flight `GET`.
#[derive(Debug)]
pub struct HttpGet {
    /// The connect in progress (DNS, TCP, TLS), with the request to send once it is up.
    connecting: Option<(LinkConnect, Vec<u8>)>,
    link: Option<Link>,
    buf: Vec<u8>,
    deadline: Instant,
    idle: Duration,
}

impl HttpGet {
    /// Starts the request: the connect (TCP, TLS) runs in [`HttpGet::poll`], never blocking
    /// the thread; a host name (not an IP literal) is resolved here, blocking, so a ring thread
    /// uses [`HttpGet::begin`] with its resolver. `path` includes the query; `headers` are
    /// extra request headers.
    ///
    /// # Errors
    /// Resolution or socket errors.
    pub fn start(
        _driver: &mut Driver,
        ep: &Endpoint,
        path: &str,
        headers: &[(&str, &str)],
        timeouts: Timeouts,
    ) -> Result<HttpGet> {
        Self::begin(ep, path, headers, timeouts, None)
    }

    /// As [`HttpGet::start`], with host names resolved on `resolver` (nothing blocks).
    ///
    /// # Errors
    /// The resolver queue is full, or a socket error.
    pub fn begin(
        ep: &Endpoint,
        path: &str,
        headers: &[(&str, &str)],
        timeouts: Timeouts,
        resolver: Option<&Resolver>,
    ) -> Result<HttpGet> {
        let mut req = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: ringbolt\r\nAccept: application/json\r\n\
             Accept-Encoding: identity\r\nConnection: close\r\n",
            host_header(ep)
        );
        for (k, v) in headers {
            req.push_str(k);
            req.push_str(": ");
            req.push_str(v);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        let connect = LinkConnect::start(ep, timeouts, resolver)?;
        Ok(HttpGet {
            connecting: Some((connect, req.into_bytes())),
            link: None,
            buf: Vec::with_capacity(64 * 1024),
            deadline: Instant::now() + timeouts.connect + timeouts.handshake + timeouts.idle,
            idle: timeouts.idle,
        })
    }

    /// Steps the connect; sends the request once the link is up. `Ok(true)` when connected.
    fn connect_step(&mut self, driver: &mut Driver) -> Result<bool> {
        let Some((connect, req)) = self.connecting.as_mut() else {
            return Ok(self.link.is_some());
        };
        let Some(mut link) = connect.step(driver)? else {
            return Ok(false);
        };
        if let Err(e) = link.send(driver, req) {
            link.close(driver);
            self.connecting = None;
            return Err(e);
        }
        self.connecting = None;
        self.link = Some(link);
        self.deadline = Instant::now() + self.idle;
        Ok(true)
    }

    /// Moves received bytes in; returns the response once complete (the connection is then
    /// closed). Call after [`Driver::poll`].
    ///
    /// # Errors
    /// Connect and transport errors, a malformed response, a response over
    /// [`MAX_RESPONSE_BYTES`], or the overall timeout (the `idle` timeout given to
    /// [`HttpGet::start`], counted from the connect).
    pub fn poll(&mut self, driver: &mut Driver) -> Result<Option<Response>> {
        if !self.connect_step(driver)? {
            return Ok(None);
        }
        let Some(link) = self.link.as_mut() else {
            return Err(NetError::Closed);
        };
        let closed = loop {
            match link.pump(driver) {
                Ok(fresh) => {
                    let data = link.data(driver);
                    let n = data.len();
                    if n > 0 {
                        self.buf.extend_from_slice(data);
                        link.consume(driver, n)?;
                    }
                    if !fresh {
                        break false;
                    }
                }
                Err(NetError::Closed) => {
                    let data = link.data(driver);
                    self.buf.extend_from_slice(data);
                    break true;
                }
                Err(e) => {
                    self.finish(driver);
                    return Err(e);
                }
            }
            if self.buf.len() > MAX_RESPONSE_BYTES {
                break false;
            }
        };
        if self.buf.len() > MAX_RESPONSE_BYTES {
            self.finish(driver);
            return Err(NetError::TooLarge {
                len_bytes: self.buf.len() as u64,
                limit_bytes: MAX_RESPONSE_BYTES as u64,
            });
        }
        match parse_response(&self.buf, closed) {
            Ok(Some(r)) => {
                self.finish(driver);
                Ok(Some(r))
            }
            Ok(None) if closed => {
                self.finish(driver);
                Err(NetError::Closed)
            }
            Ok(None) if Instant::now() > self.deadline => {
                self.finish(driver);
                Err(NetError::Timeout(Duration::ZERO, "http response"))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                self.finish(driver);
                Err(e)
            }
        }
    }

    fn finish(&mut self, driver: &mut Driver) {
        if let Some((mut connect, _)) = self.connecting.take() {
            connect.abort(driver);
        }
        if let Some(link) = self.link.take() {
            link.close(driver);
        }
    }

    /// Abandons the request and closes the connection.
    pub fn cancel(mut self, driver: &mut Driver) {
        self.finish(driver);
    }
}

/// Blocking `GET` (connect, send, wait for the whole response). For helper threads with their
/// own [`Driver`], never for a ring thread.
///
/// # Errors
/// As [`HttpGet::start`] and [`HttpGet::poll`].
pub fn get(
    driver: &mut Driver,
    ep: &Endpoint,
    path: &str,
    headers: &[(&str, &str)],
    timeouts: Timeouts,
) -> Result<Response> {
    let mut req = HttpGet::start(driver, ep, path, headers, timeouts)?;
    loop {
        driver.poll(Duration::from_millis(5))?;
        if let Some(r) = req.poll(driver)? {
            return Ok(r);
        }
    }
}

/// Parses a response from `buf`, sans-IO: `Ok(None)` while incomplete. `closed` says the peer
/// closed the connection (the end of a body without length).
///
/// # Errors
/// [`NetError::Http`] for a malformed head or chunk framing.
pub fn parse_response(buf: &[u8], closed: bool) -> Result<Option<Response>> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(NetError::Http(format!("response head: {e}"))),
    };
    let status = resp.code.unwrap_or(0);
    let mut length = None;
    let mut chunked = false;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value)
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
                .ok_or_else(|| NetError::Http("bad Content-Length".into()))?;
            length = Some(v);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = h
                .value
                .split(|b| *b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        }
    }
    let rest = &buf[head_len..];
    if chunked {
        return dechunk(rest).map(|b| b.map(|body| Response { status, body }));
    }
    if status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok(Some(Response {
            status,
            body: Vec::new(),
        }));
    }
    match length {
        Some(n) if rest.len() >= n => Ok(Some(Response {
            status,
            body: rest[..n].to_vec(),
        })),
        Some(_) => Ok(None),
        None if closed => Ok(Some(Response {
            status,
            body: rest.to_vec(),
        })),
        None => Ok(None),
    }
}

/// Decodes a complete chunked body, `Ok(None)` while incomplete.
fn dechunk(mut rest: &[u8]) -> Result<Option<Vec<u8>>> {
    let mut body = Vec::new();
    loop {
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text = &rest[..eol];
        let size_text = size_text
            .split(|b| *b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        let size = std::str::from_utf8(size_text)
            .ok()
            .and_then(|s| usize::from_str_radix(s, 16).ok())
            .ok_or_else(|| NetError::Http("bad chunk size".into()))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            // Trailers end with an empty line.
            return Ok(rest.windows(2).position(|w| w == b"\r\n").map(|_| body));
        }
        if rest.len() < size + 2 {
            return Ok(None);
        }
        if &rest[size..size + 2] != b"\r\n" {
            return Err(NetError::Http("chunk not followed by CRLF".into()));
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn content_length_chunked_and_close_framing() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        for cut in 0..r.len() {
            assert_eq!(parse_response(&r[..cut], false).unwrap(), None, "{cut}");
        }
        assert_eq!(
            parse_response(r, false).unwrap().unwrap(),
            Response {
                status: 200,
                body: b"hello".to_vec()
            }
        );
        let c = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        for cut in 0..c.len() {
            assert_eq!(parse_response(&c[..cut], false).unwrap(), None, "{cut}");
        }
        assert_eq!(
            parse_response(c, false).unwrap().unwrap().body,
            b"hello world"
        );
        let e = b"HTTP/1.1 404 Not Found\r\n\r\n{\"e\":1}";
        assert_eq!(parse_response(e, false).unwrap(), None);
        let done = parse_response(e, true).unwrap().unwrap();
        assert_eq!(
            (done.status, done.body.as_slice()),
            (404, &b"{\"e\":1}"[..])
        );
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false).is_err());
        assert!(parse_response(b"garbage\r\n\r\n", false).is_err());
        let bad = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcd\r\n";
        assert!(parse_response(bad, false).is_err());
    }
}
