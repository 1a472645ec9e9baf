//! The ring driver: one per thread, owning every socket that thread talks on.
//!
//! A [`Driver`] moves bytes between sockets and per-connection buffers and nothing else; the
//! protocol layers (TLS, WebSocket, HTTP/2) are sans-IO state machines on top of it. Back-ends:
//!
//! * io_uring (`SINGLE_ISSUER | DEFER_TASKRUN | TASKRUN_FLAG`), multishot recv into a provided
//!   buffer ring, one in-flight send per connection. In [`WaitMode::Spin`] the completion queue is
//!   polled in user space and the kernel is entered only when it flags pending task work or when
//!   there are submissions; in [`WaitMode::Block`] the driver submits and waits (with a timeout).
//! * the fallback, used when io_uring cannot be set up (ENOSYS, EPERM, `io_uring_disabled`):
//!   non-blocking std sockets read in a busy loop ([`WaitMode::Spin`]) or epoll ([`WaitMode::Block`]).

mod poll;
mod uring;

use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::error::{NetError, Result};

/// How a driver waits for I/O.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitMode {
    /// Never sleep: poll the completion queue (or sockets) and enter the kernel only when needed.
    /// Needs a dedicated core.
    Spin,
    /// Submit and wait in the kernel: for shared cores, tests and small machines.
    Block,
}

/// Which I/O back-end to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// io_uring if it can be set up, otherwise the fallback (one log line says so).
    Auto,
    /// io_uring or an error.
    #[serde(rename = "io_uring")]
    IoUring,
    /// The fallback: non-blocking std sockets (spin) or epoll (block).
    Fallback,
}

/// Which back-end a driver actually runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// io_uring.
    IoUring,
    /// Non-blocking sockets polled in a busy loop.
    StdSpin,
    /// epoll.
    Epoll,
}

/// Driver configuration, deserialisable from the appliance's TOML (every field optional):
///
/// ```toml
/// mode = "spin"          # or "block"
/// backend = "auto"       # "io_uring" | "fallback"
/// pin_core = 1
/// sqpoll_cpu = 0         # optional; excludes DEFER_TASKRUN
/// mlockall = true
/// ```
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriverConfig {
    /// Spin or block.
    pub mode: WaitMode,
    /// Back-end choice.
    pub backend: Backend,
    /// Submission queue entries (power of two).
    pub ring_entries: u32,
    /// Provided receive buffers in the buffer ring (power of two, ≤ 32768).
    pub recv_buffers: u16,
    /// Size of one provided receive buffer, bytes.
    pub recv_buffer_bytes: u32,
    /// Use SQPOLL with the kernel poller pinned to this CPU (never the CPU this thread spins on:
    /// the poller would inherit this thread's affinity otherwise and every op costs milliseconds).
    /// SQPOLL excludes DEFER_TASKRUN.
    pub sqpoll_cpu: Option<u32>,
    /// Pin the creating thread to this core (`core_affinity`).
    pub pin_core: Option<usize>,
    /// Lock all current and future pages in memory (`mlockall`), best effort with a log line.
    pub mlockall: bool,
    /// Initial capacity of each connection's receive buffer, bytes.
    pub conn_rx_bytes: usize,
    /// Block mode, [`Driver::poll_expecting`] only: poll without sleeping for up to this many
    /// microseconds before blocking, when the caller expects an answer soon (an order in flight
    /// on loopback or in the same data centre). Each blocking wake-up costs ~35 µs on a VM
    /// (docs/adr/0022-orderpath-…); 0 = always block at once.
    pub busy_poll_us: u32,
}

/// Counters of a driver's system calls and completions (plain integers, no atomics: the
/// driver is single-threaded). `bench net` divides them by the messages moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DriverCounters {
    /// `io_uring_enter` calls (any reason).
    pub enters: u64,
    /// ... of which waited for a completion (block mode).
    pub enters_waiting: u64,
    /// ... of which were made because the TASKRUN flag was raised (spin: deferred task work).
    pub enters_taskrun: u64,
    /// Completions reaped.
    pub cqes: u64,
    /// Fallback: `recv` system calls.
    pub recv_calls: u64,
    /// Fallback: `recv` calls that found nothing.
    pub recv_would_block: u64,
    /// Fallback: writes attempted (one or more `send` calls each).
    pub send_calls: u64,
    /// Fallback: `epoll_wait` calls.
    pub epoll_waits: u64,
    /// [`Driver::poll_expecting`] calls answered within the busy-poll window / not.
    pub busy_poll_hits: u64,
    /// See `busy_poll_hits`.
    pub busy_poll_misses: u64,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            mode: WaitMode::Block,
            backend: Backend::Auto,
            ring_entries: 256,
            recv_buffers: 256,
            recv_buffer_bytes: 16 * 1024,
            sqpoll_cpu: None,
            pin_core: None,
            mlockall: false,
            conn_rx_bytes: 256 * 1024,
            busy_poll_us: 0,
        }
    }
}

impl DriverConfig {
    /// A default configuration with the given mode and back-end.
    pub fn new(mode: WaitMode, backend: Backend) -> Self {
        DriverConfig {
            mode,
            backend,
            ..DriverConfig::default()
        }
    }
}

/// Identifies a connection within its driver (slot + generation: stale ids are rejected).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnId {
    slot: u32,
    generation: u32,
}

/// Terminal state of a connection's read side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadState {
    Open,
    Eof,
    Failed(i32),
}

/// One connection's buffers, shared by all back-ends.
#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    generation: u32,
    /// Received, not yet consumed bytes live in `rx[rx_head..]`.
    rx: Vec<u8>,
    rx_head: usize,
    /// Bytes queued to send after the in-flight send completes.
    tx_pending: Vec<u8>,
    /// Bytes of the send in flight (io_uring) — must not move until it completes.
    tx_inflight: Vec<u8>,
    tx_inflight_off: usize,
    send_in_flight: bool,
    recv_armed: bool,
    read: ReadState,
    write_error: Option<i32>,
    /// io_uring operations still referencing this slot.
    ops_in_flight: u32,
    closing: bool,
}

impl Conn {
    fn push_rx(&mut self, data: &[u8]) {
        if self.rx_head > 0 && self.rx_head == self.rx.len() {
            self.rx.clear();
            self.rx_head = 0;
        } else if self.rx_head > 0 && self.rx.len() + data.len() > self.rx.capacity() {
            self.rx.drain(..self.rx_head);
            self.rx_head = 0;
        }
        self.rx.extend_from_slice(data);
    }
}

enum Io {
    Uring(Box<uring::Uring>),
    Poll(poll::Poller),
}

impl std::fmt::Debug for Io {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Io::Uring(_) => f.write_str("Io::Uring"),
            Io::Poll(p) => write!(f, "Io::Poll({:?})", p.kind()),
        }
    }
}

/// A per-thread I/O driver owning its connections. Not `Send`: create it on the thread that uses
/// it (io_uring's SINGLE_ISSUER requires that).
#[derive(Debug)]
pub struct Driver {
    io: Io,
    mode: WaitMode,
    conns: Vec<Option<Conn>>,
    free: Vec<u32>,
    next_generation: u32,
    conn_rx_bytes: usize,
    busy_poll: Duration,
    counters: DriverCounters,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Driver {
    /// Sets up the driver: pins and locks memory if asked, then builds the back-end.
    pub fn new(cfg: &DriverConfig) -> Result<Self> {
        if let Some(core) = cfg.pin_core
            && !crate::affinity::pin(Some(core))
        {
            tracing::warn!(core, "could not pin the driver thread");
        }
        if cfg.mlockall {
            // SAFETY: mlockall takes flags only and has no memory-safety preconditions.
            let rc = unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) };
            if rc != 0 {
                tracing::warn!(error = %io::Error::last_os_error(), "mlockall failed");
            }
        }
        let io = match cfg.backend {
            Backend::IoUring => Io::Uring(Box::new(
                uring::Uring::new(cfg).map_err(|e| NetError::io("io_uring setup", e))?,
            )),
            Backend::Fallback => Io::Poll(poll::Poller::new(cfg.mode)?),
            Backend::Auto => match uring::Uring::new(cfg) {
                Ok(u) => Io::Uring(Box::new(u)),
                Err(e) => {
                    let p = poll::Poller::new(cfg.mode)?;
                    tracing::warn!(error = %e, fallback = ?p.kind(),
                        "io_uring unavailable; running on the fallback back-end");
                    Io::Poll(p)
                }
            },
        };
        Ok(Driver {
            io,
            mode: cfg.mode,
            conns: Vec::new(),
            free: Vec::new(),
            next_generation: 1,
            conn_rx_bytes: cfg.conn_rx_bytes,
            busy_poll: Duration::from_micros(u64::from(cfg.busy_poll_us)),
            counters: DriverCounters::default(),
            _not_send: std::marker::PhantomData,
        })
    }

    /// The back-end actually in use.
    pub fn backend(&self) -> BackendKind {
        match &self.io {
            Io::Uring(_) => BackendKind::IoUring,
            Io::Poll(p) => p.kind(),
        }
    }

    /// The wait mode.
    pub fn mode(&self) -> WaitMode {
        self.mode
    }

    /// Resolves `host:port` (DNS, off the hot path).
    pub fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>> {
        let addrs: Vec<SocketAddr> = (host, port)
            .to_socket_addrs()
            .map_err(|e| NetError::io("resolve", e))?
            .collect();
        if addrs.is_empty() {
            return Err(NetError::Resolve(format!("{host}:{port}")));
        }
        Ok(addrs)
    }

    /// Connects (blocking, with a timeout, off the hot path), sets TCP_NODELAY and registers the
    /// socket with the driver. Tries each address in turn.
    pub fn connect(&mut self, addrs: &[SocketAddr], timeout: Duration) -> Result<ConnId> {
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect_timeout(addr, timeout) {
                Ok(s) => return self.register(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.map_or_else(
            || NetError::Resolve("no address".into()),
            |e| NetError::io("connect", e),
        ))
    }

    /// Registers an already connected stream (sets TCP_NODELAY and non-blocking mode).
    pub fn register(&mut self, stream: TcpStream) -> Result<ConnId> {
        stream
            .set_nodelay(true)
            .map_err(|e| NetError::io("set TCP_NODELAY", e))?;
        stream
            .set_nonblocking(true)
            .map_err(|e| NetError::io("set non-blocking", e))?;
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1).max(1) & 0x00FF_FFFF;
        let conn = Conn {
            stream,
            generation,
            rx: Vec::with_capacity(self.conn_rx_bytes),
            rx_head: 0,
            tx_pending: Vec::with_capacity(64 * 1024),
            tx_inflight: Vec::with_capacity(64 * 1024),
            tx_inflight_off: 0,
            send_in_flight: false,
            recv_armed: false,
            read: ReadState::Open,
            write_error: None,
            ops_in_flight: 0,
            closing: false,
        };
        let slot = match self.free.pop() {
            Some(s) => {
                self.conns[s as usize] = Some(conn);
                s
            }
            None => {
                self.conns.push(Some(conn));
                u32::try_from(self.conns.len() - 1).map_err(|_| NetError::UnknownConn)?
            }
        };
        let id = ConnId { slot, generation };
        let conn = self.conns[slot as usize]
            .as_mut()
            .ok_or(NetError::UnknownConn)?;
        match &mut self.io {
            Io::Uring(u) => u.arm_recv(slot, conn),
            Io::Poll(p) => p.add(slot, conn)?,
        }
        Ok(id)
    }

    fn conn(&self, id: ConnId) -> Result<&Conn> {
        match self.conns.get(id.slot as usize) {
            Some(Some(c)) if c.generation == id.generation && !c.closing => Ok(c),
            _ => Err(NetError::UnknownConn),
        }
    }

    fn conn_mut(&mut self, id: ConnId) -> Result<&mut Conn> {
        conn_in(&mut self.conns, id)
    }

    /// Received bytes not yet consumed. Empty and an error once the peer closed or reset and all
    /// data was consumed.
    pub fn recv_buf(&self, id: ConnId) -> Result<&[u8]> {
        let c = self.conn(id)?;
        Ok(&c.rx[c.rx_head..])
    }

    /// Received bytes, mutable (the TLS layer decrypts in place).
    pub fn recv_buf_mut(&mut self, id: ConnId) -> Result<&mut [u8]> {
        let c = self.conn_mut(id)?;
        let head = c.rx_head;
        Ok(&mut c.rx[head..])
    }

    /// Marks `n` received bytes as consumed.
    pub fn consume(&mut self, id: ConnId, n: usize) -> Result<()> {
        let c = self.conn_mut(id)?;
        debug_assert!(c.rx_head + n <= c.rx.len());
        c.rx_head = (c.rx_head + n).min(c.rx.len());
        if c.rx_head == c.rx.len() {
            c.rx.clear();
            c.rx_head = 0;
        }
        Ok(())
    }

    /// `Ok(())` while the read side is open or unread bytes remain; otherwise the reason it ended.
    pub fn read_status(&self, id: ConnId) -> Result<()> {
        let c = self.conn(id)?;
        if c.rx_head < c.rx.len() {
            return Ok(());
        }
        match c.read {
            ReadState::Open => Ok(()),
            ReadState::Eof => Err(NetError::Closed),
            ReadState::Failed(errno) => {
                Err(NetError::io("recv", io::Error::from_raw_os_error(errno)))
            }
        }
    }

    /// `Ok(())` while the read side is open, whatever is buffered; otherwise why it ended.
    pub fn read_finished(&self, id: ConnId) -> Result<()> {
        match self.conn(id)?.read {
            ReadState::Open => Ok(()),
            ReadState::Eof => Err(NetError::Closed),
            ReadState::Failed(errno) => {
                Err(NetError::io("recv", io::Error::from_raw_os_error(errno)))
            }
        }
    }

    /// Queues `data` for sending and starts the send if none is in flight.
    pub fn send(&mut self, id: ConnId, data: &[u8]) -> Result<()> {
        self.conn_mut(id)?.tx_pending.extend_from_slice(data);
        self.flush(id)
    }

    /// The queue of bytes waiting to be sent; append to it, then call [`Driver::flush`].
    pub fn send_queue(&mut self, id: ConnId) -> Result<&mut Vec<u8>> {
        Ok(&mut self.conn_mut(id)?.tx_pending)
    }

    /// Starts sending queued bytes (no-op when a send is in flight or nothing is queued).
    pub fn flush(&mut self, id: ConnId) -> Result<()> {
        let slot = id.slot;
        let c = conn_in(&mut self.conns, id)?;
        if let Some(errno) = c.write_error {
            return Err(NetError::io("send", io::Error::from_raw_os_error(errno)));
        }
        match &mut self.io {
            Io::Uring(u) => u.start_send(slot, c),
            Io::Poll(p) => p.write(c),
        }
        if let Some(errno) = c.write_error {
            return Err(NetError::io("send", io::Error::from_raw_os_error(errno)));
        }
        Ok(())
    }

    /// Hands queued submissions to the kernel now, without waiting or reaping completions (the
    /// order path: a request's bytes leave at once instead of at the next [`Driver::poll`],
    /// which a blocking loop may reach only after a sleep). A no-op on the poll back-end, whose
    /// sends are already written, and in spin mode, whose next poll submits at once: there an
    /// enter in the sender's path only lengthened `submit` (order submit -> ring p50 2.9 us
    /// before this call existed, 71 us with it; `bench exec`, docs/BENCHMARKS.md).
    pub fn submit_now(&mut self) -> Result<()> {
        match &mut self.io {
            Io::Uring(_) if self.mode == WaitMode::Spin => Ok(()),
            Io::Uring(u) => u
                .submit_now()
                .map_err(|e| NetError::io("io_uring submit", e)),
            Io::Poll(_) => Ok(()),
        }
    }

    /// Bytes queued or in flight for sending.
    pub fn send_backlog(&self, id: ConnId) -> Result<usize> {
        let c = self.conn(id)?;
        Ok(c.tx_pending.len() + c.tx_inflight.len() - c.tx_inflight_off)
    }

    /// Drives I/O once. Spin mode never sleeps; block mode waits up to `wait` for something to
    /// happen, and a zero `wait` is a look that never sleeps. Returns the number of events
    /// handled.
    pub fn poll(&mut self, wait: Duration) -> Result<usize> {
        let wait = match self.mode {
            WaitMode::Spin => None,
            // A zero wait must not reach io_uring's timed wait: with nothing complete it arms a
            // 0-ns timer and schedules, 13-20 us a call on this VM (traced in the demo, where
            // trade's every idle turn looked at its order connection this way).
            WaitMode::Block if wait.is_zero() => None,
            WaitMode::Block => Some(wait),
        };
        self.poll_once(wait)
    }

    fn poll_once(&mut self, wait: Option<Duration>) -> Result<usize> {
        let c = &mut self.counters;
        match &mut self.io {
            Io::Uring(u) => u
                .poll(&mut self.conns, wait, c)
                .map_err(|e| NetError::io("io_uring poll", e)),
            Io::Poll(p) => p.poll(&mut self.conns, wait, c),
        }
        .inspect(|_| self.reap_closed())
    }

    /// [`Driver::poll`] when an answer is expected soon: in block mode with
    /// [`DriverConfig::busy_poll_us`] set, polls without sleeping for up to that long, then
    /// blocks for the rest of `wait`. Same as [`Driver::poll`] otherwise.
    pub fn poll_expecting(&mut self, wait: Duration) -> Result<usize> {
        if self.mode == WaitMode::Spin || self.busy_poll.is_zero() || wait.is_zero() {
            return self.poll(wait);
        }
        let start = std::time::Instant::now();
        loop {
            let n = self.poll_once(None)?;
            if n > 0 {
                self.counters.busy_poll_hits += 1;
                return Ok(n);
            }
            let spent = start.elapsed();
            if spent >= self.busy_poll || spent >= wait {
                self.counters.busy_poll_misses += 1;
                return self.poll_once(Some(wait.saturating_sub(spent)));
            }
            std::hint::spin_loop();
        }
    }

    /// System-call and completion counters since the driver was made.
    pub fn counters(&self) -> DriverCounters {
        self.counters
    }

    fn reap_closed(&mut self) {
        for (slot, entry) in self.conns.iter_mut().enumerate() {
            if entry
                .as_ref()
                .is_some_and(|c| c.closing && c.ops_in_flight == 0)
            {
                *entry = None;
                if let Ok(s) = u32::try_from(slot) {
                    self.free.push(s);
                }
            }
        }
    }

    /// Closes a connection (shuts the socket down; io_uring operations are cancelled and the
    /// slot is reused once they complete).
    pub fn close(&mut self, id: ConnId) {
        let slot = id.slot;
        let Ok(c) = conn_in(&mut self.conns, id) else {
            return;
        };
        c.closing = true;
        let _ = c.stream.shutdown(std::net::Shutdown::Both);
        match &mut self.io {
            Io::Uring(u) => u.cancel(slot, c),
            Io::Poll(p) => p.remove(c),
        }
        self.reap_closed();
    }

    /// Number of open connections.
    pub fn open_connections(&self) -> usize {
        self.conns
            .iter()
            .filter(|c| c.as_ref().is_some_and(|c| !c.closing))
            .count()
    }
}

fn conn_in(conns: &mut [Option<Conn>], id: ConnId) -> Result<&mut Conn> {
    match conns.get_mut(id.slot as usize) {
        Some(Some(c)) if c.generation == id.generation && !c.closing => Ok(c),
        _ => Err(NetError::UnknownConn),
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Ops in flight reference connection buffers: let the kernel finish with them first.
        if let Io::Uring(u) = &mut self.io {
            for (slot, c) in self.conns.iter_mut().enumerate() {
                if let (Some(c), Ok(slot)) = (c.as_mut(), u32::try_from(slot)) {
                    let _ = c.stream.shutdown(std::net::Shutdown::Both);
                    u.cancel(slot, c);
                }
            }
            u.drain(&mut self.conns);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn config_from_toml() {
        let cfg: DriverConfig = toml::from_str(
            "mode = \"spin\"\nbackend = \"io_uring\"\npin_core = 1\nsqpoll_cpu = 0\nmlockall = true\n",
        )
        .unwrap();
        assert_eq!(cfg.mode, WaitMode::Spin);
        assert_eq!(cfg.backend, Backend::IoUring);
        assert_eq!(
            (cfg.pin_core, cfg.sqpoll_cpu, cfg.mlockall),
            (Some(1), Some(0), true)
        );
        assert_eq!(cfg.recv_buffers, DriverConfig::default().recv_buffers);
        let empty: DriverConfig = toml::from_str("").unwrap();
        assert_eq!(empty.mode, WaitMode::Block);
        assert!(toml::from_str::<DriverConfig>("mode = \"sleep\"").is_err());
        assert!(toml::from_str::<DriverConfig>("typo = 1").is_err());
    }
}
