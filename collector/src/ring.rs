//! A ring thread: one `ringbolt_net::Driver` with its sources' WebSocket connections and REST
//! snapshot fetches; every message goes through the feeds adapter straight into the thread's
//! bus ring. Per message: no allocation, no lock, no log (parse errors are logged rate-limited;
//! reconnects, fetches and subscriptions are cold paths).

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::mpsc::TryRecvError;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ringbolt_bus::{FeedState, FeedStatusBody, Record, RecordKind, RingWriter, Venue};
use ringbolt_feeds::collector::poly_check::{PolyTopCheck, Verdict};
use ringbolt_feeds::conn::{ConnCommand, ConnEvent, ConnMachine, ConnState};
use ringbolt_feeds::venues::polymarket::{Polymarket, Stream as PolyStream};
use ringbolt_feeds::{Action, KeepAlive, Outgoing, ParseError, RecordSink, RestRequest, SyncMode};
use ringbolt_net::connect::Resolver;
use ringbolt_net::http1::HttpGet;
use ringbolt_net::ws::{self, WsClient, WsConnect, WsOptions};
use ringbolt_net::{Backend, Driver, DriverConfig, Timeouts, WaitMode};
use ringbolt_telemetry::stages::collector as stages;
use ringbolt_telemetry::{StageRecorder, now_ns};

use super::{PolyCmd, RingSettings, SourceSpec};

/// Messages handled per connection per loop iteration (bounded loop; fairness between sources).
const BUDGET: usize = 256;
/// How often a ring thread publishes its counters for the metrics endpoint.
const SHARE_EVERY: Duration = Duration::from_millis(100);
/// Delay before retrying a failed REST request.
const REST_RETRY: Duration = Duration::from_secs(1);
/// At most one raw-frame log line per source per this interval.
const RAW_LOG_EVERY: Duration = Duration::from_secs(10);

static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// Milliseconds since the process's first call (the heartbeat clock).
pub fn mono_ms() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// The last heartbeat of a ring thread, ms since the process epoch (0 = none yet).
pub fn beat_ms(b: &AtomicU64) -> u64 {
    b.load(Ordering::Relaxed)
}

/// Publishes adapter records on the ring (stamping `publish_ts_ns`), mirrors feed states into
/// the shared gauge and runs the Polymarket top-of-book check.
struct BusSink<'a> {
    writer: &'a mut RingWriter,
    published: &'a mut u64,
    state: &'a AtomicU8,
    check: Option<&'a mut PolyTopCheck>,
    verdicts: &'a mut Verdicts,
    /// Stamp `recv_ts_ns` with the publish time (connection transitions: the state machine
    /// runs on the monotonic clock, records carry CLOCK_REALTIME).
    stamp_recv: bool,
    /// `Record.stream` of the last record emitted (the per-stream latency histogram's key).
    last_stream: u8,
    /// Publish stamp of the first record of the message (its parse is done), 0 before.
    first_emit_ns: i64,
}

impl RecordSink for BusSink<'_> {
    #[inline]
    fn emit(&mut self, record: &Record) {
        let mut r = *record;
        r.publish_ts_ns = now_ns();
        if self.first_emit_ns == 0 {
            self.first_emit_ns = r.publish_ts_ns;
        }
        if self.stamp_recv {
            r.recv_ts_ns = r.publish_ts_ns;
        }
        self.writer.publish(&r);
        *self.published += 1;
        self.last_stream = r.stream;
        if r.kind == RecordKind::FeedStatus as u8
            && let Some(s) = r.body_as::<FeedStatusBody>()
        {
            self.state.store(s.state, Ordering::Relaxed);
        }
        if let Some(check) = self.check.as_deref_mut()
            && let Some(v) = check.on_record(&r)
        {
            self.verdicts.push(v);
        }
    }
}

/// Top-of-book verdicts waiting for the cold path, bounded by [`Verdicts::CAPACITY`]: when full,
/// a new verdict is dropped and counted (`dropped`, exported as `poly_verdicts_dropped`); the
/// verdicts already queued trigger the same resync.
struct Verdicts {
    items: Vec<Verdict>,
    dropped: u64,
}

impl Verdicts {
    const CAPACITY: usize = 64;

    fn new() -> Self {
        Verdicts {
            items: Vec::with_capacity(Self::CAPACITY),
            dropped: 0,
        }
    }

    /// Queues `v` unless full (then counts it). Never allocates.
    #[inline]
    fn push(&mut self, v: Verdict) {
        if self.items.len() < Self::CAPACITY {
            self.items.push(v);
        } else {
            self.dropped += 1;
        }
    }
}

struct Poly {
    check: PolyTopCheck,
    tokens: Vec<String>,
    rx: std::sync::mpsc::Receiver<PolyCmd>,
    /// Whether the initial `{"type":"market"}` subscription went out on this connection.
    initial_sent: bool,
}

#[derive(Default)]
struct RawLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl RawLog {
    fn log(&mut self, source: &str, venue: Venue, error: &ParseError, frame: &[u8]) {
        if self.last.is_some_and(|t| t.elapsed() < RAW_LOG_EVERY) {
            self.suppressed += 1;
            return;
        }
        let text = String::from_utf8_lossy(&frame[..frame.len().min(300)]);
        tracing::warn!(
            source,
            %venue,
            %error,
            bytes = frame.len(),
            suppressed_since_last = self.suppressed,
            raw = %text,
            "frame skipped"
        );
        self.last = Some(Instant::now());
        self.suppressed = 0;
    }
}

struct Conn {
    spec: SourceSpec,
    feeds: ringbolt_feeds::FrameDriver,
    machine: ConnMachine,
    opts: WsOptions,
    ws: Option<WsClient>,
    /// A connect in progress, stepped once per loop turn (never blocks the ring thread).
    connecting: Option<WsConnect>,
    /// This ring's DNS thread.
    resolver: Resolver,
    awaiting_first: bool,
    rest_queue: Vec<RestRequest>,
    rest: Option<(RestRequest, HttpGet)>,
    rest_retry_at: Option<Instant>,
    rest_timeouts: Timeouts,
    poly: Option<Poly>,
    actions: Vec<Action>,
    verdicts: Verdicts,
    published: u64,
    raw_log: RawLog,
    last_share: Instant,
    /// recv → last record published, ns, per message that produced records.
    latency: ringbolt_telemetry::LatencyHistogram,
    /// The same per stream of the message's last record: `(Record.stream, histogram)`, one per
    /// catalogue entry, allocated at start.
    latency_by_stream: Vec<(u8, ringbolt_telemetry::LatencyHistogram)>,
}

impl Conn {
    fn new(
        mut spec: SourceSpec,
        settings: &RingSettings,
        seed: u64,
        resolver: Resolver,
    ) -> Result<Conn> {
        let mut feeds = ringbolt_feeds::FrameDriver::new(spec.venue, SyncMode::Enforce, false)
            .with_context(|| format!("no adapter for {}", spec.venue))?;
        if let Some(c) = spec.polybolt_credentials.take() {
            feeds.adapter = Box::new(
                ringbolt_feeds::venues::polybolt::PolyBolt::with_credentials(SyncMode::Enforce, c),
            );
        }
        if !spec.symbol_prefix.is_empty() && spec.venue == Venue::Bybit {
            feeds.adapter = Box::new(ringbolt_feeds::venues::bybit::Bybit::with_prefix(
                SyncMode::Enforce,
                spec.symbol_prefix.as_bytes(),
            ));
        }
        for (sym, id) in &spec.symbols {
            let name = format!("{}{sym}", spec.symbol_prefix);
            feeds
                .instruments
                .register(spec.venue, name.as_bytes(), &name, *id);
        }
        let mut conn = settings.conn;
        conn.stale_after_ns = settings
            .stale_override_ns
            .unwrap_or_else(|| feeds.adapter.stale_after_ns());
        conn.reconnect_after_ns = conn.reconnect_after_ns.max(conn.stale_after_ns);
        let keepalive = match feeds.adapter.keep_alive() {
            KeepAlive::ServerPings => None,
            KeepAlive::Text {
                payload,
                interval_ns,
            } => Some((
                Duration::from_nanos(interval_ns),
                ws::KeepAlive::Text(String::from_utf8_lossy(payload).into_owned()),
            )),
            KeepAlive::WsPing { interval_ns } => Some((
                Duration::from_nanos(interval_ns),
                ws::KeepAlive::Ping(Vec::new()),
            )),
        };
        let timeouts = Timeouts {
            connect: settings.connect_timeout,
            handshake: settings.connect_timeout,
            // The connection state machine decides about silence (stale, then reconnect).
            idle: Duration::from_nanos(conn.reconnect_after_ns) + Duration::from_secs(5),
        };
        let opts = WsOptions {
            path: spec.ws_path.clone(),
            keepalive,
            timeouts,
            ..WsOptions::default()
        };
        let poly = spec.poly_rx.take().map(|rx| Poly {
            check: PolyTopCheck::new(),
            tokens: Vec::new(),
            rx,
            initial_sent: false,
        });
        Ok(Conn {
            feeds,
            machine: ConnMachine::new(conn, seed),
            opts,
            ws: None,
            connecting: None,
            resolver,
            awaiting_first: false,
            rest_queue: Vec::with_capacity(8),
            rest: None,
            rest_retry_at: None,
            rest_timeouts: Timeouts {
                connect: settings.connect_timeout,
                handshake: settings.connect_timeout,
                idle: Duration::from_secs(10),
            },
            poly,
            actions: Vec::with_capacity(16),
            verdicts: Verdicts::new(),
            published: 0,
            raw_log: RawLog::default(),
            last_share: Instant::now(),
            latency: ringbolt_telemetry::latency_histogram(),
            latency_by_stream: spec
                .shared
                .streams
                .iter()
                .map(|d| (d.id, ringbolt_telemetry::latency_histogram()))
                .collect(),
            spec,
        })
    }

    fn sink<'a>(
        writer: &'a mut RingWriter,
        published: &'a mut u64,
        state: &'a AtomicU8,
        verdicts: &'a mut Verdicts,
    ) -> BusSink<'a> {
        BusSink {
            writer,
            published,
            state,
            check: None,
            verdicts,
            stamp_recv: false,
            last_stream: 0,
            first_emit_ns: 0,
        }
    }

    fn event(&mut self, ev: ConnEvent, now: u64, writer: &mut RingWriter) -> Option<ConnCommand> {
        let mut sink = Self::sink(
            writer,
            &mut self.published,
            &self.spec.shared.state,
            &mut self.verdicts,
        );
        sink.stamp_recv = true;
        self.feeds
            .connection_event(&mut self.machine, ev, now, &mut sink)
    }

    /// Performs the state machine's commands (a connect is started here and stepped by
    /// [`Conn::step_connect`]).
    fn drive(
        &mut self,
        mut cmd: Option<ConnCommand>,
        driver: &mut Driver,
        writer: &mut RingWriter,
        now: u64,
    ) {
        while let Some(c) = cmd.take() {
            match c {
                ConnCommand::Connect => {
                    self.abort_connect(driver);
                    match WsConnect::start(&self.spec.ws, &self.opts, Some(&self.resolver)) {
                        Ok(c) => self.connecting = Some(c),
                        Err(error) => {
                            tracing::warn!(source = %self.spec.name, %error, "connect failed");
                            cmd = self.event(ConnEvent::ConnectFailed, now, writer);
                        }
                    }
                }
                ConnCommand::Subscribe => {
                    self.awaiting_first = true;
                    let frames = self.subscribe_frames();
                    if let Err(error) = self.send_all(driver, &frames) {
                        cmd = self.lost(error, driver, writer, now);
                    }
                }
                ConnCommand::Close => {
                    self.abort_connect(driver);
                    if let Some(ws) = self.ws.take() {
                        tracing::warn!(source = %self.spec.name, state = ?self.machine.state(), "closing a silent connection");
                        ws.shutdown(driver);
                    }
                    self.reset_connection_state(driver);
                }
            }
        }
    }

    /// Steps a connect in progress (DNS answer, TCP connect, TLS and upgrade bytes) without
    /// waiting; tells the state machine when it succeeded or failed.
    fn step_connect(&mut self, driver: &mut Driver, writer: &mut RingWriter, now: u64) {
        let Some(c) = self.connecting.as_mut() else {
            return;
        };
        let cmd = match c.step(driver) {
            Ok(None) => return,
            Ok(Some(ws)) => {
                self.connecting = None;
                tracing::info!(source = %self.spec.name, host = %self.spec.ws.host, port = self.spec.ws.port, "connected");
                self.ws = Some(ws);
                self.event(ConnEvent::Connected, now, writer)
            }
            Err(error) => {
                self.connecting = None;
                self.spec
                    .shared
                    .connect_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(source = %self.spec.name, %error, "connect failed");
                self.event(ConnEvent::ConnectFailed, now, writer)
            }
        };
        self.drive(cmd, driver, writer, now);
    }

    /// Drops a connect in progress (state machine timeout, shutdown), closing its socket.
    fn abort_connect(&mut self, driver: &mut Driver) {
        if let Some(mut c) = self.connecting.take() {
            c.abort(driver);
        }
    }

    fn subscribe_frames(&mut self) -> Vec<Outgoing> {
        let mut symbols: Vec<&str> = self.spec.symbols.iter().map(|(s, _)| s.as_str()).collect();
        if let Some(p) = &self.poly {
            symbols.extend(p.tokens.iter().map(String::as_str));
        }
        if symbols.is_empty() {
            return Vec::new();
        }
        let frames = self
            .feeds
            .adapter
            .subscribe_streams(&symbols, &self.spec.streams);
        if let Some(p) = self.poly.as_mut() {
            p.initial_sent = true;
        }
        frames
    }

    fn send_all(&mut self, driver: &mut Driver, frames: &[Outgoing]) -> ringbolt_net::Result<()> {
        let Some(ws) = self.ws.as_mut() else {
            return Ok(());
        };
        for f in frames {
            send_one(ws, driver, f)?;
        }
        Ok(())
    }

    /// The connection failed: close it and tell the state machine.
    fn lost(
        &mut self,
        error: ringbolt_net::NetError,
        driver: &mut Driver,
        writer: &mut RingWriter,
        now: u64,
    ) -> Option<ConnCommand> {
        tracing::warn!(source = %self.spec.name, %error, "connection lost");
        if let Some(ws) = self.ws.take() {
            ws.shutdown(driver);
        }
        self.reset_connection_state(driver);
        self.event(ConnEvent::Closed, now, writer)
    }

    fn reset_connection_state(&mut self, driver: &mut Driver) {
        self.awaiting_first = false;
        if let Some((_, get)) = self.rest.take() {
            get.cancel(driver);
        }
        // The adapter asks again after the reconnect (its continuity state restarts).
        self.rest_queue.clear();
        if let Some(p) = self.poly.as_mut() {
            p.check.reset();
            p.initial_sent = false;
        }
    }

    fn connected(&self) -> bool {
        self.ws.is_some() && self.machine.state() != ConnState::Connecting
    }

    /// Cold path: actions the adapter queued.
    fn take_actions(&mut self, driver: &mut Driver, writer: &mut RingWriter, now: u64) {
        self.actions.append(&mut self.feeds.actions);
        let mut reconnect = false;
        let mut failed = None;
        for a in self.actions.drain(..) {
            let frames = match &a {
                Action::Send(o) => std::slice::from_ref(o),
                Action::Resubscribe(frames) => frames.as_slice(),
                Action::Fetch(_) | Action::Reconnect => &[],
            };
            if let Some(ws) = self.ws.as_mut() {
                for o in frames {
                    if let Err(e) = send_one(ws, driver, o) {
                        failed = Some(e);
                    }
                }
            }
            match a {
                Action::Send(_) | Action::Resubscribe(_) => {}
                Action::Fetch(req) => {
                    let dup = self
                        .rest_queue
                        .iter()
                        .chain(self.rest.as_ref().map(|(r, _)| r))
                        .any(|r| r.instrument == req.instrument && r.kind == req.kind);
                    if !dup {
                        tracing::info!(source = %self.spec.name, path = %req.path, "REST snapshot requested");
                        self.rest_queue.push(req);
                    }
                }
                Action::Reconnect => reconnect = true,
            }
        }
        if let Some(error) = failed {
            let cmd = self.lost(error, driver, writer, now);
            self.drive(cmd, driver, writer, now);
        } else if reconnect && self.ws.is_some() {
            let cmd = self.lost(ringbolt_net::NetError::Closed, driver, writer, now);
            self.drive(cmd, driver, writer, now);
        }
    }

    /// Cold path: Polymarket gap / resync verdicts.
    fn take_verdicts(&mut self, driver: &mut Driver, writer: &mut RingWriter) {
        let stream = PolyStream::PriceChange as u8;
        while let Some(v) = self.verdicts.items.pop() {
            let (instrument, state) = match v {
                Verdict::Gap {
                    instrument,
                    venue_top,
                    local_top,
                } => {
                    self.feeds.counters.stream_mut(stream).gaps += 1;
                    tracing::warn!(source = %self.spec.name, instrument, ?venue_top, ?local_top,
                        "Polymarket top of book disagrees with the book: lost update; requesting a snapshot");
                    if let Some(e) = self.feeds.instruments.by_id(instrument) {
                        let token = String::from_utf8_lossy(&e.symbol).into_owned();
                        let mut frames = self.feeds.adapter.unsubscribe(&[&token]);
                        frames.extend(Polymarket::new(SyncMode::Enforce).add_assets(&[&token]));
                        if let Err(error) = self.send_all(driver, &frames) {
                            tracing::warn!(source = %self.spec.name, %error, "resubscribe failed");
                        }
                    }
                    (instrument, FeedState::GapDetected)
                }
                Verdict::Resynced { instrument } => {
                    self.feeds.counters.stream_mut(stream).resyncs += 1;
                    tracing::info!(source = %self.spec.name, instrument, "Polymarket book resynchronised");
                    (instrument, FeedState::Resynced)
                }
            };
            let mut r = self
                .feeds
                .counters
                .status_record(Venue::Polymarket, stream, state);
            r.instrument = instrument;
            r.recv_ts_ns = now_ns();
            // No top-of-book check on this sink: nothing is queued (and nothing allocated).
            let mut scratch = Verdicts {
                items: Vec::new(),
                dropped: 0,
            };
            let mut sink = Self::sink(
                writer,
                &mut self.published,
                &self.spec.shared.state,
                &mut scratch,
            );
            sink.emit(&r);
        }
    }

    /// Cold path: subscription changes from the discovery thread.
    fn take_poly_commands(&mut self, driver: &mut Driver, writer: &mut RingWriter) {
        while self.take_poly_command(driver, writer) {}
    }

    /// Handles one pending command; false when there was none.
    fn take_poly_command(&mut self, driver: &mut Driver, writer: &mut RingWriter) -> bool {
        let Some(p) = self.poly.as_mut() else {
            return false;
        };
        let cmd = match p.rx.try_recv() {
            Ok(c) => c,
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => return false,
        };
        let live = self.ws.is_some() && self.machine.state() != ConnState::Connecting;
        // A change on a connection that already carries a subscription (not the first one).
        let rollover = live && p.initial_sent;
        let frames = match cmd {
            PolyCmd::Subscribe(list) => {
                let mut fresh = Vec::new();
                for (token, name, id) in &list {
                    self.feeds
                        .instruments
                        .register(Venue::Polymarket, token.as_bytes(), name, *id);
                    p.check.track(*id);
                    if !p.tokens.contains(token) {
                        p.tokens.push(token.clone());
                        fresh.push(token.as_str());
                    }
                }
                if !live || fresh.is_empty() {
                    Vec::new()
                } else if p.initial_sent {
                    Polymarket::new(SyncMode::Enforce).add_assets(&fresh)
                } else {
                    p.initial_sent = true;
                    let all: Vec<&str> = p.tokens.iter().map(String::as_str).collect();
                    self.feeds.adapter.subscribe(&all)
                }
            }
            PolyCmd::Publish(records) => {
                for r in &records {
                    let mut r = *r;
                    r.publish_ts_ns = now_ns();
                    r.recv_ts_ns = r.publish_ts_ns;
                    writer.publish(&r);
                    self.published += 1;
                }
                Vec::new()
            }
            PolyCmd::Unsubscribe(tokens) => {
                for t in &tokens {
                    if let Some(id) = self
                        .feeds
                        .instruments
                        .remove(Venue::Polymarket, t.as_bytes())
                    {
                        p.check.forget(id);
                        self.feeds.adapter.forget_instrument(id);
                    }
                    p.tokens.retain(|x| x != t);
                }
                let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
                if live && !refs.is_empty() {
                    self.feeds.adapter.unsubscribe(&refs)
                } else {
                    Vec::new()
                }
            }
        };
        let shared = &self.spec.shared;
        shared
            .subscribed_tokens
            .store(p.tokens.len() as u64, Ordering::Relaxed);
        if !frames.is_empty() {
            if rollover {
                shared.rollovers.fetch_add(1, Ordering::Relaxed);
            }
            if let Err(error) = self.send_all(driver, &frames) {
                tracing::warn!(source = %self.spec.name, %error, "subscription change failed");
            }
        }
        true
    }

    /// Cold path: REST snapshot requests.
    fn service_rest(&mut self, driver: &mut Driver, writer: &mut RingWriter, now: u64) {
        if let Some((_, get)) = self.rest.as_mut() {
            match get.poll(driver) {
                Ok(None) => {}
                Ok(Some(resp)) => {
                    let Some((req, _)) = self.rest.take() else {
                        return;
                    };
                    if resp.status == 200 {
                        let mut sink = BusSink {
                            writer,
                            published: &mut self.published,
                            state: &self.spec.shared.state,
                            check: self.poly.as_mut().map(|p| &mut p.check),
                            verdicts: &mut self.verdicts,
                            stamp_recv: false,
                            last_stream: 0,
                            first_emit_ns: 0,
                        };
                        match self.feeds.rest(&req, &resp.body, now_ns(), &mut sink) {
                            Ok(()) => {
                                tracing::info!(source = %self.spec.name, path = %req.path, bytes = resp.body.len(), "REST snapshot applied");
                            }
                            Err(e) => {
                                self.raw_log
                                    .log(&self.spec.name, self.spec.venue, &e, &resp.body)
                            }
                        }
                        self.take_actions(driver, writer, now);
                    } else {
                        tracing::warn!(source = %self.spec.name, path = %req.path, status = resp.status,
                            body = %String::from_utf8_lossy(&resp.body[..resp.body.len().min(200)]), "REST request failed; retrying");
                        self.rest_queue.push(req);
                        self.rest_retry_at = Some(Instant::now() + REST_RETRY);
                    }
                }
                Err(error) => {
                    if let Some((req, _)) = self.rest.take() {
                        tracing::warn!(source = %self.spec.name, path = %req.path, %error, "REST request failed; retrying");
                        self.rest_queue.push(req);
                    }
                    self.rest_retry_at = Some(Instant::now() + REST_RETRY);
                }
            }
            return;
        }
        if self.rest_queue.is_empty()
            || !self.connected()
            || self.rest_retry_at.is_some_and(|t| Instant::now() < t)
        {
            return;
        }
        let req = self.rest_queue.remove(0);
        let (ep, path) = match &self.spec.rest {
            Some((ep, prefix)) => (ep.clone(), format!("{prefix}{}", req.path)),
            None => (
                ringbolt_net::Endpoint {
                    host: req.host.to_string(),
                    port: 443,
                    tls: Some(std::sync::Arc::clone(&self.spec.tls)),
                },
                req.path.clone(),
            ),
        };
        match HttpGet::begin(&ep, &path, &[], self.rest_timeouts, Some(&self.resolver)) {
            Ok(get) => self.rest = Some((req, get)),
            Err(error) => {
                tracing::warn!(source = %self.spec.name, %path, %error, "REST connect failed; retrying");
                self.rest_queue.push(req);
                self.rest_retry_at = Some(Instant::now() + REST_RETRY);
            }
        }
    }

    /// One pass over the connection: commands, messages, actions, timers. Returns whether the
    /// message budget ran out (more may be waiting in the connection's buffer).
    fn service(
        &mut self,
        driver: &mut Driver,
        writer: &mut RingWriter,
        now: u64,
        recorder: &mut StageRecorder,
    ) -> bool {
        self.take_poly_commands(driver, writer);
        if self.connecting.is_some() {
            self.step_connect(driver, writer, now);
        }
        let mut frames = 0usize;
        let mut error = None;
        while frames < BUDGET {
            let Some(ws) = self.ws.as_mut() else { break };
            let recv_ts_ns = now_ns();
            match ws.next(driver) {
                Ok(Some(msg)) => {
                    frames += 1;
                    let bytes = msg.as_bytes();
                    let mut sink = BusSink {
                        writer: &mut *writer,
                        published: &mut self.published,
                        state: &self.spec.shared.state,
                        check: self.poly.as_mut().map(|p| &mut p.check),
                        verdicts: &mut self.verdicts,
                        stamp_recv: false,
                        last_stream: 0,
                        first_emit_ns: 0,
                    };
                    let before = *sink.published;
                    let parsed = self.feeds.frame(bytes, recv_ts_ns, &mut sink);
                    let (stream, parsed_ns) = (sink.last_stream, sink.first_emit_ns);
                    if let Err(e) = parsed {
                        self.raw_log
                            .log(&self.spec.name, self.spec.venue, &e, bytes);
                    }
                    if self.published > before {
                        let bus_ns = now_ns();
                        record_stages(recorder, recv_ts_ns, parsed_ns, bus_ns);
                        let ns = (bus_ns.saturating_sub(recv_ts_ns)).max(1) as u64;
                        self.latency.saturating_record(ns);
                        if let Some((_, h)) = self
                            .latency_by_stream
                            .iter_mut()
                            .find(|(id, _)| *id == stream)
                        {
                            h.saturating_record(ns);
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
            if self.awaiting_first {
                self.awaiting_first = false;
                let cmd = self.event(ConnEvent::Subscribed, now, writer);
                self.drive(cmd, driver, writer, now);
            }
            let cmd = self.event(ConnEvent::Data, now, writer);
            self.drive(cmd, driver, writer, now);
            if !self.feeds.actions.is_empty() {
                self.take_actions(driver, writer, now);
            }
            if !self.verdicts.items.is_empty() {
                self.take_verdicts(driver, writer);
            }
        }
        if let Some(e) = error {
            let cmd = self.lost(e, driver, writer, now);
            self.drive(cmd, driver, writer, now);
        }
        if self.rest.is_some() || !self.rest_queue.is_empty() {
            self.service_rest(driver, writer, now);
        }
        if self.machine.next_deadline().is_some_and(|d| now >= d) {
            let cmd = self.event(ConnEvent::Tick, now, writer);
            self.drive(cmd, driver, writer, now);
        }
        if self.last_share.elapsed() >= SHARE_EVERY {
            self.share();
        }
        frames == BUDGET
    }

    fn share(&mut self) {
        self.last_share = Instant::now();
        let shared = &self.spec.shared;
        if let Ok(mut c) = shared.counters.try_lock() {
            c.clone_from(&self.feeds.counters);
        }
        shared.published.store(self.published, Ordering::Relaxed);
        if !self.latency.is_empty() {
            // Quantiles walk the histogram's buckets: no allocation.
            let (p50, p99) = (
                self.latency.value_at_quantile(0.5),
                self.latency.value_at_quantile(0.99),
            );
            shared.recv_to_publish_p50_ns.store(p50, Ordering::Relaxed);
            shared.recv_to_publish_p99_ns.store(p99, Ordering::Relaxed);
        }
        if let Some(p) = &self.poly {
            shared.top_checks.store(p.check.checks, Ordering::Relaxed);
            shared
                .poly_verdicts_dropped
                .store(self.verdicts.dropped, Ordering::Relaxed);
        }
    }
}

/// The collector's stages of one message that produced records: receive → first record
/// parsed → last record on the bus.
#[inline]
fn record_stages(recorder: &mut StageRecorder, recv_ns: i64, parsed_ns: i64, bus_ns: i64) {
    recorder.record_between(stages::RECV_TO_PARSED, recv_ns, parsed_ns);
    recorder.record_between(stages::PARSED_TO_BUS, parsed_ns, bus_ns);
    recorder.record_between(stages::RECV_TO_BUS, recv_ns, bus_ns);
}

fn send_one(ws: &mut WsClient, driver: &mut Driver, o: &Outgoing) -> ringbolt_net::Result<()> {
    match o.text() {
        Some(t) => ws.send_text(driver, &String::from_utf8_lossy(t)),
        None => ws.send_ping(driver, b""),
    }
}

/// A ring thread's place among the others: its core, its heartbeat and the stop flag.
#[derive(Debug)]
pub struct Threads<'a> {
    /// Core to pin to.
    pub core: Option<usize>,
    /// `SCHED_FIFO` priority of the ring thread (`None` = the normal class).
    pub rt_priority: Option<u8>,
    /// Heartbeat, ms since the process epoch.
    pub beat: &'a AtomicU64,
    /// Set to stop.
    pub stop: &'a AtomicBool,
}

/// Runs a ring thread until `stop`, recording its stages with `recorder`.
pub fn run(
    specs: Vec<SourceSpec>,
    mut writer: RingWriter,
    settings: RingSettings,
    threads: Threads<'_>,
    mut recorder: StageRecorder,
) -> Result<()> {
    let Threads {
        core,
        rt_priority,
        beat,
        stop,
    } = threads;
    let mode = if settings.busy_poll {
        WaitMode::Spin
    } else {
        WaitMode::Block
    };
    let mut driver = Driver::new(&DriverConfig {
        pin_core: core,
        ..DriverConfig::new(mode, Backend::Auto)
    })
    .context("creating the ring driver")?;
    let epoch = Instant::now();
    let mono = || epoch.elapsed().as_nanos() as u64 + 1;
    let resolver = Resolver::spawn(&format!("rb-dns-{}", writer.ring()))
        .context("starting the ring's resolver thread")?;
    let mut conns = Vec::with_capacity(specs.len());
    for (i, spec) in specs.into_iter().enumerate() {
        let seed = now_ns() as u64 ^ ((i as u64 + 1) << 32);
        conns.push(Conn::new(spec, &settings, seed, resolver.clone())?);
    }
    drop(resolver);
    // After the resolver is spawned: a thread inherits its creator's scheduling class.
    let sched = ringbolt_net::affinity::enter_realtime("ring", rt_priority);
    tracing::info!(ring = writer.ring(), backend = ?driver.backend(), ?mode, ?core, %sched, sources = conns.len(), "ring thread started");
    for c in &mut conns {
        // Windows found by the start-up discovery are subscribed by the first connection.
        c.take_poly_commands(&mut driver, &mut writer);
        let now = mono();
        let cmd = c.event(ConnEvent::Start, now, &mut writer);
        c.drive(cmd, &mut driver, &mut writer, now);
    }
    let wait = if settings.busy_poll {
        Duration::ZERO
    } else {
        Duration::from_millis(1)
    };
    let mut backlog = false;
    while !stop.load(Ordering::Relaxed) {
        beat.store(mono_ms().max(1), Ordering::Relaxed);
        // Messages already buffered are served without waiting in the kernel.
        let timeout = if backlog { Duration::ZERO } else { wait };
        driver.poll(timeout).context("ring driver poll")?;
        let now = mono();
        backlog = false;
        for c in &mut conns {
            backlog |= c.service(&mut driver, &mut writer, now, &mut recorder);
        }
        recorder.maybe_rotate();
    }
    for c in &mut conns {
        c.share();
        c.abort_connect(&mut driver);
        if let Ok(mut h) = c.spec.shared.recv_to_publish_ns.lock() {
            *h = Some(c.latency.clone());
        }
        if let Ok(mut by) = c.spec.shared.recv_to_publish_by_stream_ns.lock() {
            let names = c.spec.shared.streams;
            by.extend(c.latency_by_stream.drain(..).filter_map(|(id, h)| {
                let name = names.iter().find(|d| d.id == id)?.name;
                (!h.is_empty()).then_some((name, h))
            }));
        }
        if let Some(mut ws) = c.ws.take() {
            let _ = ws.close(&mut driver);
            let _ = driver.poll(Duration::from_millis(1));
            ws.shutdown(&mut driver);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The hot-path allocation claim is measured in `tests/ring_live.rs`.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    #[test]
    fn a_full_verdict_queue_drops_and_counts() {
        use ringbolt_feeds::collector::poly_check::Verdict;
        let mut q = super::Verdicts::new();
        let cap = q.items.capacity();
        for _ in 0..super::Verdicts::CAPACITY + 3 {
            q.push(Verdict::Gap {
                instrument: 1,
                venue_top: (0, 0),
                local_top: (0, 0),
            });
        }
        assert_eq!(q.items.len(), super::Verdicts::CAPACITY);
        assert_eq!(q.dropped, 3);
        assert_eq!(q.items.capacity(), cap, "no growth");
    }
}
