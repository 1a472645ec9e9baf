//! Service plumbing shared by ringbolt's long-running processes (`feeds`, `trade`, `archive`):
//! systemd readiness and watchdog notifications, and a loopback `GET /healthz` endpoint.
//!
//! Liveness is owned by the process's main loop: it calls [`Liveness::beat`] every iteration. The
//! watchdog thread only sends `WATCHDOG=1` while beats keep coming, and `/healthz` answers 503 once
//! they stop, so a wedged loop is restarted by systemd (`WatchdogSec=`) and fails deploy checks.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

pub mod startup;

/// The `--log` option every ringbolt binary takes (flatten it into the command line with
/// `#[command(flatten)]`), and the stderr logger it sets up.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `ringbolt_bus=debug`.
    #[arg(long, global = true, default_value = "info", env = "RINGBOLT_LOG")]
    pub log: String,
}

impl LogArgs {
    /// Installs the process's logger: `tracing` events at the filter's levels, to stderr.
    ///
    /// # Errors
    /// When the filter does not parse.
    pub fn init(&self) -> Result<()> {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::try_new(&self.log)?)
            .with_writer(std::io::stderr)
            .init();
        Ok(())
    }
}

/// Sends one notification datagram to systemd (`$NOTIFY_SOCKET`); a no-op outside systemd.
pub fn sd_notify(state: &str) -> Result<()> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(());
    };
    let socket = std::os::unix::net::UnixDatagram::unbound().context("notify socket")?;
    let bytes = path.as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)
            .context("abstract NOTIFY_SOCKET")?;
        socket
            .send_to_addr(state.as_bytes(), &addr)
            .context("sd_notify")?;
    } else {
        socket
            .send_to(state.as_bytes(), &path)
            .context("sd_notify")?;
    }
    Ok(())
}

/// Heartbeat of a process's main loop, readable from the watchdog and health threads.
#[derive(Debug)]
pub struct Liveness {
    started: Instant,
    last_beat_ms: AtomicU64,
    ready: AtomicBool,
    stale_after: Duration,
}

impl Liveness {
    /// A liveness tracker that declares the process unhealthy `stale_after` without a beat.
    pub fn new(stale_after: Duration) -> Arc<Self> {
        Arc::new(Liveness {
            started: Instant::now(),
            last_beat_ms: AtomicU64::new(0),
            ready: AtomicBool::new(false),
            stale_after,
        })
    }

    /// Records that the main loop made progress. One relaxed store: cheap enough per iteration.
    pub fn beat(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_beat_ms.store(ms, Ordering::Relaxed);
    }

    /// Marks the process ready (after start-up) and tells systemd.
    pub fn set_ready(&self) -> Result<()> {
        self.beat();
        self.ready.store(true, Ordering::Release);
        sd_notify("READY=1")
    }

    /// Start-up finished (`READY=1` sent).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Ready and beating recently.
    pub fn healthy(&self) -> bool {
        let now_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let since_ms = now_ms.saturating_sub(self.last_beat_ms.load(Ordering::Relaxed));
        self.ready.load(Ordering::Acquire) && u128::from(since_ms) <= self.stale_after.as_millis()
    }
}

/// Starts the watchdog thread when systemd asked for one (`$WATCHDOG_USEC`): it sends
/// `WATCHDOG=1` every half period while the process is healthy.
pub fn spawn_watchdog(liveness: &Arc<Liveness>) -> Result<()> {
    let Some(usec) = std::env::var("WATCHDOG_USEC")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return Ok(());
    };
    let period = Duration::from_micros(usec / 2).max(Duration::from_millis(10));
    let liveness = Arc::clone(liveness);
    std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || {
            loop {
                std::thread::sleep(period);
                if liveness.healthy()
                    && let Err(error) = sd_notify("WATCHDOG=1")
                {
                    tracing::warn!(%error, "watchdog notification failed");
                }
            }
        })
        .context("spawning the watchdog thread")?;
    Ok(())
}

/// A response of a loopback endpoint: status line text, content type, body.
pub type HttpReply = (&'static str, &'static str, String);

/// Serves tiny loopback HTTP endpoints from one thread named `name`: one request per connection,
/// short timeouts; `handler` gets the request line (`GET /path HTTP/1.1`). Returns the bound
/// address.
pub fn spawn_loopback_http(
    addr: SocketAddr,
    name: &str,
    handler: impl Fn(&[u8]) -> HttpReply + Send + 'static,
) -> Result<SocketAddr> {
    let listener =
        TcpListener::bind(addr).with_context(|| format!("binding {name} endpoint {addr}"))?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
                let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
                // Read the whole request head (it may arrive in several segments).
                let mut request = [0u8; 2048];
                let mut n = 0;
                while n < request.len() && !request[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut request[n..]) {
                        Ok(0) | Err(_) => break,
                        Ok(read) => n += read,
                    }
                }
                let line = request[..n].split(|b| *b == b'\n').next().unwrap_or_default();
                let (status, content_type, body) = handler(line);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        })
        .with_context(|| format!("spawning the {name} endpoint thread"))?;
    Ok(bound)
}

/// Serves `GET /metrics` on `addr` (loopback) with the Prometheus text exposition (0.0.4) that
/// `render` returns per scrape; 404 for any other path. Returns the bound address.
pub fn spawn_metrics_endpoint(
    addr: SocketAddr,
    render: impl Fn() -> String + Send + 'static,
) -> Result<SocketAddr> {
    spawn_loopback_http(addr, "metrics", move |line| {
        if line.starts_with(b"GET /metrics ") || line.starts_with(b"GET /metrics?") {
            ("200 OK", "text/plain; version=0.0.4", render())
        } else {
            ("404 Not Found", "text/plain", "not found\n".into())
        }
    })
}

/// Serves `GET /healthz` on `addr` (loopback): 200 when healthy and every start-up check passed,
/// 503 otherwise; the body is JSON naming each start-up check (`startup::checks`); 404 for any
/// other path.
pub fn spawn_health_endpoint(addr: SocketAddr, liveness: &Arc<Liveness>) -> Result<SocketAddr> {
    let liveness = Arc::clone(liveness);
    spawn_loopback_http(addr, "healthz", move |line| {
        if !line.starts_with(b"GET /healthz ") {
            return ("404 Not Found", "text/plain", "not found\n".into());
        }
        let checks = startup::checks();
        let healthy = liveness.healthy() && checks.iter().all(|c| c.ok);
        let body = serde_json::json!({
            "status": if healthy { "ok" } else { "unhealthy" },
            "ready": liveness.is_ready(),
            "checks": checks,
        });
        let status = if healthy {
            "200 OK"
        } else {
            "503 Service Unavailable"
        };
        (status, "application/json", format!("{body}\n"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut stream = TcpStream::connect(addr).unwrap();
        // Sent in small pieces on purpose: the server must wait for the whole request head.
        for piece in ["GET ", path, " HTTP/1.1\r\n", "Host: localhost\r\n\r\n"] {
            stream.write_all(piece.as_bytes()).unwrap();
        }
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    #[test]
    fn health_endpoint_follows_the_main_loop() {
        let _serial = startup::TEST_LOCK.lock();
        let liveness = Liveness::new(Duration::from_millis(200));
        let addr = spawn_health_endpoint("127.0.0.1:0".parse().unwrap(), &liveness).unwrap();
        assert!(
            get(addr, "/healthz").starts_with("HTTP/1.1 503"),
            "not ready yet"
        );
        liveness.set_ready().unwrap();
        let ok = get(addr, "/healthz");
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(
            ok.contains(r#""status":"ok""#) && ok.contains(r#""checks":["#),
            "{ok}"
        );
        std::thread::sleep(Duration::from_millis(400));
        assert!(
            get(addr, "/healthz").starts_with("HTTP/1.1 503"),
            "stale main loop"
        );
        liveness.beat();
        assert!(get(addr, "/healthz").starts_with("HTTP/1.1 200"));
        assert!(get(addr, "/other").starts_with("HTTP/1.1 404"));
        // A failed start-up check turns the endpoint unhealthy and is named in the body.
        let _ = startup::require("health-test", Err("broken on purpose".into()));
        let bad = get(addr, "/healthz");
        assert!(
            bad.starts_with("HTTP/1.1 503") && bad.contains("broken on purpose"),
            "{bad}"
        );
        startup::require("health-test", Ok("fixed".into())).unwrap();
        assert!(get(addr, "/healthz").starts_with("HTTP/1.1 200"));
    }

    #[test]
    fn metrics_endpoint_renders_per_scrape() {
        let scrapes = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&scrapes);
        let addr = spawn_metrics_endpoint("127.0.0.1:0".parse().unwrap(), move || {
            format!("scrapes {}\n", counter.fetch_add(1, Ordering::Relaxed) + 1)
        })
        .unwrap();
        let first = get(addr, "/metrics");
        assert!(first.starts_with("HTTP/1.1 200"), "{first}");
        assert!(first.contains("text/plain; version=0.0.4"));
        assert!(first.ends_with("scrapes 1\n"));
        assert!(get(addr, "/metrics").ends_with("scrapes 2\n"));
        assert!(get(addr, "/healthz").starts_with("HTTP/1.1 404"));
    }

    #[test]
    fn sd_notify_reaches_the_notify_socket() {
        let dir = std::env::temp_dir().join(format!("rb-notify-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let server = std::os::unix::net::UnixDatagram::bind(&dir).unwrap();
        // SAFETY: set_var is unsafe in edition 2024 because other threads may read the environment;
        // no other test reads NOTIFY_SOCKET.
        unsafe { std::env::set_var("NOTIFY_SOCKET", &dir) };
        sd_notify("READY=1").unwrap();
        // SAFETY: as above.
        unsafe { std::env::remove_var("NOTIFY_SOCKET") };
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        let _ = std::fs::remove_file(&dir);
    }
}
