//! Connecting without blocking: DNS on a [`Resolver`] thread, the TCP connect on a non-blocking
//! socket, and the TLS handshake pumped through the same rustls path the data uses, one step per
//! call of [`LinkConnect::step`]. A ring loop calls `step` once per turn for each connection in
//! progress, so a peer that black-holes its port or handshakes slowly costs the other connections
//! of the thread nothing but that call (two `getsockopt`-class syscalls while the TCP connect is
//! pending, a pump of the TLS bytes afterwards).
//!
//! The blocking constructors ([`Link::connect`], [`crate::ws::WsClient::connect`]) run the same
//! machine to completion.

use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use crate::driver::Driver;
use crate::error::{NetError, Result};
use crate::link::{Endpoint, Link, Timeouts};

/// Resolution requests a [`Resolver`] queues before refusing new ones.
pub const RESOLVER_QUEUE: usize = 16;

type Answer = Result<Vec<SocketAddr>>;

struct Job {
    host: String,
    port: u16,
    reply: SyncSender<Answer>,
}

/// A DNS resolver thread fed through a bounded queue: `getaddrinfo` blocks, so it never runs on
/// a ring thread. Cloning shares the thread; it exits when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct Resolver {
    tx: SyncSender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Job({}:{})", self.host, self.port)
    }
}

impl Resolver {
    /// Starts the resolver thread, named `name`.
    ///
    /// # Errors
    /// The thread cannot be spawned.
    pub fn spawn(name: &str) -> Result<Resolver> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(RESOLVER_QUEUE);
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                // Not a hot thread: it leaves the ring's core for the housekeeping cores.
                crate::affinity::pin_env_set("RINGBOLT_HOUSEKEEPING_CPUS");
                for job in rx {
                    // The asker may have given up (timeout, close): a failed send is fine.
                    let _ = job.reply.try_send(Driver::resolve(&job.host, job.port));
                }
            })
            .map_err(|e| NetError::io("spawn resolver", e))?;
        Ok(Resolver { tx })
    }

    /// Queues a resolution of `host:port`; poll the answer with [`Pending::try_take`].
    ///
    /// # Errors
    /// [`NetError::Backpressure`] when [`RESOLVER_QUEUE`] requests are already waiting.
    pub fn resolve(&self, host: &str, port: u16) -> Result<Pending> {
        let (reply, rx) = std::sync::mpsc::sync_channel(1);
        let job = Job {
            host: host.to_string(),
            port,
            reply,
        };
        match self.tx.try_send(job) {
            Ok(()) => Ok(Pending(rx)),
            Err(TrySendError::Full(_)) => Err(NetError::Backpressure("resolver queue full")),
            Err(TrySendError::Disconnected(_)) => Err(NetError::Resolve(format!(
                "{host}:{port} (resolver thread gone)"
            ))),
        }
    }
}

/// A resolution in progress.
#[derive(Debug)]
pub struct Pending(Receiver<Answer>);

impl Pending {
    /// The answer if it has arrived.
    ///
    /// # Errors
    /// The resolution failed, or the resolver thread is gone.
    pub fn try_take(&self) -> Result<Option<Vec<SocketAddr>>> {
        match self.0.try_recv() {
            Ok(answer) => answer.map(Some),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => {
                Err(NetError::Resolve("resolver thread gone".into()))
            }
        }
    }
}

/// Where a [`LinkConnect`] is.
#[derive(Debug)]
enum Stage {
    /// Waiting for the resolver.
    Resolve(Pending),
    /// A non-blocking TCP connect to `addrs[next - 1]` in flight.
    Tcp {
        addrs: Vec<SocketAddr>,
        next: usize,
        socket: Socket,
    },
    /// TCP up and registered with the driver; TLS handshake bytes in flight.
    Tls(Link),
    /// Finished (handed out, failed or aborted).
    Done,
}

/// A link being opened, one step at a time (see the module documentation). Deadlines: resolve
/// plus TCP connect within `timeouts.connect`, the TLS handshake within `timeouts.handshake`.
#[derive(Debug)]
pub struct LinkConnect {
    ep: Endpoint,
    timeouts: Timeouts,
    stage: Stage,
    deadline: Instant,
}

impl LinkConnect {
    /// Starts opening a link to `ep`. An IP literal needs no DNS; a host name goes to
    /// `resolver`, or (no resolver: helper threads, tests) is resolved here, blocking.
    ///
    /// # Errors
    /// The resolver queue is full, or (no resolver) resolution failed.
    pub fn start(ep: &Endpoint, timeouts: Timeouts, resolver: Option<&Resolver>) -> Result<Self> {
        let stage = if let Ok(ip) = ep.host.parse::<IpAddr>() {
            Self::tcp(vec![SocketAddr::new(ip, ep.port)], None)?
        } else if let Some(r) = resolver {
            Stage::Resolve(r.resolve(&ep.host, ep.port)?)
        } else {
            Self::tcp(Driver::resolve(&ep.host, ep.port)?, None)?
        };
        Ok(LinkConnect {
            ep: ep.clone(),
            timeouts,
            stage,
            deadline: Instant::now() + timeouts.connect,
        })
    }

    /// The endpoint being connected to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.ep
    }

    /// Whether the TCP connection is up and the TLS handshake under way on the driver.
    pub fn on_driver(&self) -> bool {
        matches!(self.stage, Stage::Tls(_))
    }

    /// Starts a non-blocking connect to the first address of `addrs` that accepts one.
    fn tcp(addrs: Vec<SocketAddr>, mut last: Option<NetError>) -> Result<Stage> {
        for (i, addr) in addrs.iter().enumerate() {
            match start_tcp(*addr) {
                Ok(socket) => {
                    return Ok(Stage::Tcp {
                        next: i + 1,
                        addrs,
                        socket,
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| NetError::Resolve("no address".into())))
    }

    /// Advances the connect as far as it goes without waiting. `Ok(Some(link))` once the link
    /// is up (TLS handshake complete); `Ok(None)` while in progress. After an error the attempt
    /// is over and its socket closed.
    ///
    /// # Errors
    /// Resolution, connect, TLS failures, or a deadline passed.
    pub fn step(&mut self, driver: &mut Driver) -> Result<Option<Link>> {
        let r = self.advance(driver);
        if r.is_err() {
            self.abort(driver);
        }
        r
    }

    fn advance(&mut self, driver: &mut Driver) -> Result<Option<Link>> {
        loop {
            self.stage = match std::mem::replace(&mut self.stage, Stage::Done) {
                Stage::Resolve(p) => match p.try_take()? {
                    Some(addrs) => Self::tcp(addrs, None)?,
                    None => {
                        self.stage = Stage::Resolve(p);
                        return self.pending("resolve");
                    }
                },
                Stage::Tcp {
                    addrs,
                    next,
                    socket,
                } => match tcp_progress(&socket) {
                    Ok(false) => {
                        self.stage = Stage::Tcp {
                            addrs,
                            next,
                            socket,
                        };
                        return self.pending("tcp connect");
                    }
                    Ok(true) => {
                        let id = driver.register(socket.into())?;
                        self.deadline = Instant::now() + self.timeouts.handshake;
                        Stage::Tls(Link::start(driver, id, &self.ep, self.timeouts)?)
                    }
                    Err(e) if next < addrs.len() => Self::tcp(addrs[next..].to_vec(), Some(e))?,
                    Err(e) => return Err(e),
                },
                Stage::Tls(mut link) => match link.handshake_step(driver) {
                    Ok(true) => return Ok(Some(link)),
                    Ok(false) => {
                        self.stage = Stage::Tls(link);
                        return self.pending("tls handshake");
                    }
                    Err(e) => {
                        link.close(driver);
                        return Err(e);
                    }
                },
                Stage::Done => return Err(NetError::UnknownConn),
            };
        }
    }

    /// In progress: `Ok(None)` before the stage's deadline, a timeout after it.
    fn pending(&self, what: &'static str) -> Result<Option<Link>> {
        if Instant::now() > self.deadline {
            let limit = if self.on_driver() {
                self.timeouts.handshake
            } else {
                self.timeouts.connect
            };
            return Err(NetError::Timeout(limit, what));
        }
        Ok(None)
    }

    /// Gives up: closes whatever socket the attempt holds.
    pub fn abort(&mut self, driver: &mut Driver) {
        if let Stage::Tls(link) = std::mem::replace(&mut self.stage, Stage::Done) {
            link.close(driver);
        }
    }

    /// Runs the machine to completion, waiting on `driver` between steps (blocking; for helper
    /// threads and tests).
    ///
    /// # Errors
    /// As [`LinkConnect::step`].
    pub fn finish(mut self, driver: &mut Driver) -> Result<Link> {
        loop {
            if let Some(link) = self.step(driver)? {
                return Ok(link);
            }
            wait_a_little(driver, self.on_driver())?;
        }
    }
}

/// Between two steps of a blocking connect: the driver waits for handshake bytes; a pending TCP
/// connect or DNS answer is not on the driver, so a short sleep.
pub(crate) fn wait_a_little(driver: &mut Driver, on_driver: bool) -> Result<()> {
    if on_driver {
        driver.poll(Duration::from_millis(2)).map(|_| ())
    } else {
        std::thread::sleep(Duration::from_micros(200));
        Ok(())
    }
}

/// A non-blocking socket with a connect to `addr` started.
fn start_tcp(addr: SocketAddr) -> Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(|e| NetError::io("socket", e))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| NetError::io("set non-blocking", e))?;
    match socket.connect(&addr.into()) {
        Ok(()) => Ok(socket),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(socket),
        Err(e) => Err(NetError::io("connect", e)),
    }
}

/// Whether the non-blocking connect finished: `Ok(true)` connected, `Ok(false)` pending.
fn tcp_progress(socket: &Socket) -> Result<bool> {
    if let Some(e) = socket
        .take_error()
        .map_err(|e| NetError::io("connect", e))?
    {
        return Err(NetError::io("connect", e));
    }
    match socket.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Ok(false),
        Err(e) => Err(NetError::io("connect", e)),
    }
}
