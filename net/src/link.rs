//! A byte link on a driver connection: TCP, optionally wrapped in TLS (rustls driven by hand).
//! The WebSocket and HTTP/2 clients sit on a [`Link`].

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;

use crate::driver::{ConnId, Driver};
use crate::error::{NetError, Result};
use crate::record;

/// How to reach a peer.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// Host name (DNS name used for SNI and certificate checks) or IP literal.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// TLS configuration; `None` for plain TCP.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// Timeouts of a link.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// TCP connect timeout.
    pub connect: Duration,
    /// TLS / protocol handshake timeout.
    pub handshake: Duration,
    /// Read/idle timeout: an error if nothing arrives for this long.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            handshake: Duration::from_secs(5),
            idle: Duration::from_secs(30),
        }
    }
}

/// A connected byte link (TCP or TLS over TCP) on a [`Driver`].
#[derive(Debug)]
pub struct Link {
    id: ConnId,
    tls: Option<Box<rustls::ClientConnection>>,
    /// Decrypted bytes (TLS only): `plain[plain_head..]` is unconsumed.
    plain: Vec<u8>,
    plain_head: usize,
    /// Bytes of the raw receive buffer already seen (plain TCP only).
    seen: usize,
    idle: Duration,
    last_rx: Instant,
    /// After a TLS 1.3 handshake: the allocation-free record layer that replaced rustls.
    fast: Option<Box<Fast>>,
    /// An error met after good data in the same batch: reported on the next pump.
    deferred: Option<NetError>,
    alpn: Option<Vec<u8>>,
    is_tls: bool,
    /// The TLS config allows secret extraction (the hand-off to the in-place record layer).
    extraction: bool,
}

/// Both directions of the post-handshake TLS 1.3 record layer.
#[derive(Debug)]
struct Fast {
    rx: record::Direction,
    tx: record::Direction,
    /// close_notify received.
    peer_closed: bool,
}

/// Length of the complete TLS record at the start of `raw`, or 0 if it is incomplete.
fn complete_record(raw: &[u8]) -> usize {
    if raw.len() < 5 {
        return 0;
    }
    let total = 5 + usize::from(u16::from_be_bytes([raw[3], raw[4]]));
    if raw.len() >= total { total } else { 0 }
}

impl Link {
    /// Resolves, connects and (for TLS) completes the handshake, blocking (helper threads,
    /// tests): [`LinkConnect`](crate::connect::LinkConnect) run to completion. A ring thread
    /// steps a `LinkConnect` instead.
    ///
    /// # Errors
    /// Resolution, connect or TLS failures, or a timeout.
    pub fn connect(driver: &mut Driver, ep: &Endpoint, t: Timeouts) -> Result<Link> {
        crate::connect::LinkConnect::start(ep, t, None)?.finish(driver)
    }

    /// Wraps the registered, connected connection `id` and (TLS) sends the ClientHello; on an
    /// error `id` is closed. Complete the handshake with [`Link::handshake_step`].
    pub(crate) fn start(
        driver: &mut Driver,
        id: ConnId,
        ep: &Endpoint,
        t: Timeouts,
    ) -> Result<Link> {
        let tls = match &ep.tls {
            None => None,
            Some(cfg) => {
                let made = ServerName::try_from(ep.host.clone())
                    .map_err(|e| NetError::TlsConfig(format!("server name {}: {e}", ep.host)))
                    .and_then(|name| Ok(rustls::ClientConnection::new(cfg.clone(), name)?));
                match made {
                    Ok(c) => Some(Box::new(c)),
                    Err(e) => {
                        driver.close(id);
                        return Err(e);
                    }
                }
            }
        };
        let mut link = Link {
            id,
            tls,
            plain: Vec::with_capacity(if ep.tls.is_some() { 256 * 1024 } else { 0 }),
            plain_head: 0,
            seen: 0,
            idle: t.idle,
            last_rx: Instant::now(),
            fast: None,
            deferred: None,
            alpn: None,
            is_tls: ep.tls.is_some(),
            extraction: ep.tls.as_ref().is_some_and(|c| c.enable_secret_extraction),
        };
        if let Err(e) = link.write_tls(driver) {
            driver.close(id);
            return Err(e);
        }
        Ok(link)
    }

    /// One step of the TLS handshake without waiting: moves whatever bytes arrived through
    /// rustls and sends its answer. `Ok(true)` once the handshake is complete (and the in-place
    /// record layer took over), at once for plain TCP. The caller closes the link on an error.
    pub(crate) fn handshake_step(&mut self, driver: &mut Driver) -> Result<bool> {
        if !self.tls.as_ref().is_some_and(|c| c.is_handshaking()) {
            return Ok(true);
        }
        self.pump(driver)?;
        if self.tls.as_ref().is_some_and(|c| c.is_handshaking()) {
            return Ok(false);
        }
        self.hand_off(self.extraction)?;
        self.last_rx = Instant::now();
        Ok(true)
    }

    /// After a TLS 1.3 handshake (with secret extraction enabled in the config, as
    /// [`crate::tls::client_config`] does), replaces rustls by the in-place record layer.
    fn hand_off(&mut self, extraction_enabled: bool) -> Result<()> {
        let Some(conn) = self.tls.as_ref() else {
            return Ok(());
        };
        self.alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
        if !extraction_enabled
            || conn.is_handshaking()
            || conn.protocol_version() != Some(rustls::ProtocolVersion::TLSv1_3)
            || conn.wants_write()
        {
            return Ok(());
        }
        let Some(conn) = self.tls.take() else {
            return Ok(());
        };
        let secrets = conn.dangerous_extract_secrets()?;
        self.fast = Some(Box::new(Fast {
            rx: record::Direction::new(secrets.rx.0, secrets.rx.1)?,
            tx: record::Direction::new(secrets.tx.0, secrets.tx.1)?,
            peer_closed: false,
        }));
        Ok(())
    }

    /// Whether the allocation-free TLS 1.3 record layer is in use.
    pub fn in_place_tls(&self) -> bool {
        self.fast.is_some()
    }

    /// The driver connection id.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// The ALPN protocol agreed in the TLS handshake.
    pub fn alpn(&self) -> Option<&[u8]> {
        match &self.tls {
            Some(c) => c.alpn_protocol(),
            None => self.alpn.as_deref(),
        }
    }

    /// Whether the link is TLS.
    pub fn is_tls(&self) -> bool {
        self.is_tls
    }

    /// Unconsumed received plaintext.
    pub fn data<'a>(&'a self, driver: &'a Driver) -> &'a [u8] {
        if self.is_tls {
            &self.plain[self.plain_head..]
        } else {
            driver.recv_buf(self.id).unwrap_or(&[])
        }
    }

    /// Marks `n` plaintext bytes as consumed.
    pub fn consume(&mut self, driver: &mut Driver, n: usize) -> Result<()> {
        if self.is_tls {
            self.plain_head = (self.plain_head + n).min(self.plain.len());
            if self.plain_head == self.plain.len() {
                self.plain.clear();
                self.plain_head = 0;
            }
            Ok(())
        } else {
            self.seen = self.seen.saturating_sub(n);
            driver.consume(self.id, n)
        }
    }

    fn write_tls(&mut self, driver: &mut Driver) -> Result<()> {
        match self.tls.as_mut() {
            Some(tls) => write_tls(tls, self.id, driver),
            None => Ok(()),
        }
    }

    /// Moves newly received bytes up through TLS. Returns whether new plaintext arrived; an
    /// error when the peer closed, reset, sent garbage, or went silent past the idle timeout.
    pub fn pump(&mut self, driver: &mut Driver) -> Result<bool> {
        let mut fresh = false;
        if let Some(e) = self.deferred.take() {
            return Err(e);
        }
        if self.fast.is_some() {
            fresh = self.pump_fast(driver)?;
        } else if self.tls.is_some() {
            fresh = self.pump_rustls(driver)?;
        } else {
            let len = driver.recv_buf(self.id)?.len();
            if len > self.seen {
                fresh = true;
            }
            self.seen = len;
        }
        if fresh {
            self.last_rx = Instant::now();
            return Ok(true);
        }
        // Nothing new: whatever is buffered is an incomplete unit the layer above cannot use, so
        // a finished read side is an error now (EOF or reset mid-frame / mid-record).
        driver.read_finished(self.id)?;
        if self.last_rx.elapsed() > self.idle {
            return Err(NetError::Timeout(self.idle, "read idle"));
        }
        Ok(false)
    }

    /// [`Link::pump`] on the in-place record layer (after the handshake): opens every complete
    /// record into the plaintext buffer. Returns whether new plaintext arrived.
    #[inline]
    fn pump_fast(&mut self, driver: &mut Driver) -> Result<bool> {
        let mut fresh = false;
        let Some(fast) = self.fast.as_mut() else {
            return Ok(false);
        };
        let mut peer_closed = fast.peer_closed;
        while !peer_closed {
            // Backpressure: once there is new plaintext, stop before the plaintext buffer
            // would have to grow; the rest stays encrypted in the driver until consumed.
            if fresh
                && self.plain.len() - self.plain_head + record::MAX_RECORD_BYTES
                    > self.plain.capacity()
            {
                break;
            }
            let buf = driver.recv_buf_mut(self.id)?;
            let (n, opened) = match record::open(&mut fast.rx, buf) {
                Ok(Some(r)) => r,
                Ok(None) => break,
                // Deliver the good data first; the error ends the link on the next pump.
                Err(e) if fresh => {
                    self.deferred = Some(e);
                    break;
                }
                Err(e) => return Err(e),
            };
            match opened {
                record::Opened::Data { start, end } => {
                    make_room(&mut self.plain, &mut self.plain_head, end - start);
                    self.plain.extend_from_slice(&buf[start..end]);
                    fresh |= end > start;
                }
                record::Opened::Nothing => {}
                record::Opened::Closed => peer_closed = true,
            }
            driver.consume(self.id, n)?;
        }
        fast.peer_closed = peer_closed;
        if peer_closed && !fresh && self.plain_head == self.plain.len() {
            return Err(NetError::Closed);
        }
        Ok(fresh)
    }

    /// [`Link::pump`] through rustls (handshake, or a connection without the fast path): whole
    /// records in, plaintext out. Returns whether new plaintext arrived.
    fn pump_rustls(&mut self, driver: &mut Driver) -> Result<bool> {
        let mut fresh = false;
        let Some(tls) = self.tls.as_mut() else {
            return Ok(false);
        };
        loop {
            let raw = driver.recv_buf(self.id)?;
            // rustls gets whole records only, one at a time: its deframer never holds a
            // partial record, so that the hand-off to the in-place record layer after the
            // handshake loses no bytes.
            let take = complete_record(raw);
            if take == 0 {
                break;
            }
            // read_tls takes at most 4 KiB per call: loop until the record is in.
            let mut rd = &raw[..take];
            let mut n = 0;
            while !rd.is_empty() {
                let k = tls
                    .read_tls(&mut rd)
                    .map_err(|e| NetError::io("tls read", e))?;
                if k == 0 {
                    break;
                }
                n += k;
            }
            driver.consume(self.id, n)?;
            let state = match tls.process_new_packets() {
                Ok(s) => s,
                Err(e) => {
                    // Send the alert rustls queued, then fail.
                    let q = driver.send_queue(self.id)?;
                    let _ = tls.write_tls(q);
                    let _ = driver.flush(self.id);
                    return Err(e.into());
                }
            };
            if state.plaintext_bytes_to_read() > 0 {
                make_room(
                    &mut self.plain,
                    &mut self.plain_head,
                    state.plaintext_bytes_to_read(),
                );
                let mut rd = tls.reader();
                loop {
                    let chunk = match rd.fill_buf() {
                        Ok(c) if !c.is_empty() => c,
                        _ => break,
                    };
                    let len = chunk.len();
                    self.plain.extend_from_slice(chunk);
                    rd.consume(len);
                }
                fresh = true;
            }
            if state.peer_has_closed() {
                if !fresh && self.plain_head == self.plain.len() {
                    return Err(NetError::Closed);
                }
                break;
            }
            if n == 0 {
                break;
            }
        }
        self.write_tls(driver)?;
        Ok(fresh)
    }

    /// Sends plaintext (encrypted first when TLS).
    pub fn send(&mut self, driver: &mut Driver, data: &[u8]) -> Result<()> {
        if let Some(fast) = self.fast.as_mut() {
            let q = driver.send_queue(self.id)?;
            record::seal(&mut fast.tx, data, q)?;
            return driver.flush(self.id);
        }
        match self.tls.as_mut() {
            Some(tls) => {
                let mut rest = data;
                while !rest.is_empty() {
                    let n = tls
                        .writer()
                        .write(rest)
                        .map_err(|e| NetError::io("tls encrypt", e))?;
                    rest = &rest[n..];
                    let queued = tls.wants_write();
                    write_tls(tls, self.id, driver)?;
                    if n == 0 && !queued {
                        return Err(NetError::io(
                            "tls encrypt",
                            std::io::ErrorKind::WriteZero.into(),
                        ));
                    }
                }
                Ok(())
            }
            None => driver.send(self.id, data),
        }
    }

    /// Sends the plaintext `write` appends, written straight into the driver's send queue and
    /// (in-place TLS 1.3) sealed there as one record: no intermediate buffer, no copy. Plaintext
    /// above one record (16 KiB) is moved out and sealed in chunks; without the in-place layer
    /// (rustls, TLS 1.2) it goes through [`Link::send`].
    pub fn send_with<R>(
        &mut self,
        driver: &mut Driver,
        write: impl FnOnce(&mut Vec<u8>) -> R,
    ) -> Result<R> {
        if let Some(fast) = self.fast.as_mut() {
            let q = driver.send_queue(self.id)?;
            let start = q.len();
            q.extend_from_slice(&[0; 5]);
            let r = write(q);
            let plain = q.len() - start - 5;
            if plain == 0 {
                q.truncate(start);
                return Ok(r);
            }
            if plain <= record::MAX_PLAINTEXT {
                record::seal_in_place(&mut fast.tx, q, start)?;
            } else {
                let tail = q.split_off(start + 5);
                q.truncate(start);
                record::seal(&mut fast.tx, &tail, q)?;
            }
            driver.flush(self.id)?;
            return Ok(r);
        }
        if self.tls.is_none() {
            let q = driver.send_queue(self.id)?;
            let r = write(q);
            driver.flush(self.id)?;
            return Ok(r);
        }
        let mut plain = Vec::new();
        let r = write(&mut plain);
        if !plain.is_empty() {
            self.send(driver, &plain)?;
        }
        Ok(r)
    }

    /// Sends a TLS close_notify (if TLS) and closes the connection.
    pub fn close(mut self, driver: &mut Driver) {
        if let Some(fast) = self.fast.as_mut()
            && let Ok(q) = driver.send_queue(self.id)
            && record::seal_close_notify(&mut fast.tx, q).is_ok()
        {
            let _ = driver.flush(self.id);
            let _ = driver.poll(Duration::ZERO);
        }
        if let Some(tls) = self.tls.as_mut() {
            tls.send_close_notify();
            let _ = self.write_tls(driver);
            let _ = driver.poll(Duration::ZERO);
        }
        driver.close(self.id);
    }
}

/// Moves every pending TLS record into the driver's send queue and starts the send.
fn write_tls(tls: &mut rustls::ClientConnection, id: ConnId, driver: &mut Driver) -> Result<()> {
    if tls.wants_write() {
        let q = driver.send_queue(id)?;
        while tls.wants_write() {
            tls.write_tls(q).map_err(|e| NetError::io("tls write", e))?;
        }
        driver.flush(id)?;
    }
    Ok(())
}

/// Makes room for `incoming` plaintext bytes without growing `plain` when consumed bytes
/// (`..head`) can be dropped instead.
#[inline]
fn make_room(plain: &mut Vec<u8>, head: &mut usize, incoming: usize) {
    if *head > 0 && plain.len() + incoming > plain.capacity() {
        plain.drain(..*head);
        *head = 0;
    }
}
