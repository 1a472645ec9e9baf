//! The scraper thread: `GET` every configured `/metrics` once per update period (plain HTTP on
//! loopback, short timeouts) and keep what the page shows of them: per-stage latency summaries
//! (`ringbolt_stage_latency_ns`) and the collector's per-source gauges.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

use crate::config::MetricsSource;
use crate::prom::{self, Exposition};
use crate::{Shared, lock};

const BODY_MAX: usize = 4 << 20;

/// Splits `http://host:port/path` into a socket address and the path.
fn split_url(url: &str) -> Result<(SocketAddr, String)> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("{url}: not http://"))?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, "metrics"));
    let addr = authority
        .to_socket_addrs()
        .with_context(|| format!("{url}: bad host:port"))?
        .next()
        .ok_or_else(|| anyhow!("{url}: no address"))?;
    Ok((addr, format!("/{path}")))
}

/// One blocking `GET` (cold path).
pub fn get(url: &str) -> Result<String> {
    let (addr, path) = split_url(url)?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    s.set_read_timeout(Some(Duration::from_secs(1)))?;
    s.set_write_timeout(Some(Duration::from_secs(1)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.take(BODY_MAX as u64).read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("no header end"))?;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        bail!("HTTP {status}");
    }
    Ok(body.to_owned())
}

/// The collector's per-stream counters (`ringbolt_feed_<counter>_total{venue,source,stream}`),
/// keyed `venue/stream`, summed over the venue's sources.
fn feed_counters(e: &Exposition, out: &mut BTreeMap<String, BTreeMap<&'static str, f64>>) {
    const COUNTERS: [&str; 6] = [
        "messages",
        "gaps",
        "gap_records",
        "reconnects",
        "resyncs",
        "parse_errors",
    ];
    for s in &e.samples {
        let Some(counter) = s
            .name
            .strip_prefix("ringbolt_feed_")
            .and_then(|n| n.strip_suffix("_total"))
            .and_then(|n| COUNTERS.iter().find(|c| **c == n))
        else {
            continue;
        };
        let (Some(venue), Some(stream)) = (s.label("venue"), s.label("stream")) else {
            continue;
        };
        *out.entry(format!("{venue}/{stream}"))
            .or_default()
            .entry(counter)
            .or_insert(0.0) += s.value;
    }
}

/// The collector's own receive → bus gauges (`ringbolt_feed_recv_to_publish_p50_ns` and
/// `_p99_ns` per source), as stage rows `recv_to_publish/<source>`.
fn collector_gauges(e: &Exposition, process: &str) -> Vec<Value> {
    let mut by_source: BTreeMap<&str, BTreeMap<&str, f64>> = BTreeMap::new();
    for s in &e.samples {
        let quantile = match s.name.as_str() {
            "ringbolt_feed_recv_to_publish_p50_ns" => "0.5",
            "ringbolt_feed_recv_to_publish_p99_ns" => "0.99",
            _ => continue,
        };
        if let Some(source) = s.label("source") {
            by_source
                .entry(source)
                .or_default()
                .insert(quantile, s.value);
        }
    }
    by_source
        .into_iter()
        .filter(|(_, q)| q.values().any(|v| *v > 0.0))
        .map(|(source, q)| {
            json!({ "process": process, "stage": format!("recv_to_publish/{source}"), "quantiles": q })
        })
        .collect()
}

/// The page's `metrics` part from each source's exposition (or its error).
#[must_use]
pub fn summarize(results: &[(&MetricsSource, Result<Exposition>)]) -> Value {
    let mut stages = Vec::new();
    let mut sources = Vec::new();
    let mut collector = Vec::new();
    let mut streams: BTreeMap<String, BTreeMap<&'static str, f64>> = BTreeMap::new();
    for (src, result) in results {
        match result {
            Ok(e) => {
                for ((process, stage), q) in prom::stage_latencies(e, &src.process) {
                    stages.push(json!({ "process": process, "stage": stage, "quantiles": q }));
                }
                stages.extend(collector_gauges(e, &src.process));
                for s in e.samples.iter().filter(|s| s.name == "ringbolt_feed_state") {
                    let gauge = |name: &str| {
                        e.samples
                            .iter()
                            .find(|o| o.name == name && o.labels == s.labels)
                            .map(|o| o.value)
                    };
                    collector.push(json!({
                        "source": s.label("source").unwrap_or(""),
                        "venue": s.label("venue").unwrap_or(""),
                        "state": s.value,
                        "connect_failures": gauge("ringbolt_feed_connect_failures_total"),
                        "published": gauge("ringbolt_feed_published_records_total"),
                    }));
                }
                feed_counters(e, &mut streams);
                sources.push(json!({ "process": src.process, "url": src.url, "ok": true,
                    "samples": e.samples.len(), "bad_lines": e.bad_lines }));
            }
            Err(err) => sources.push(json!({ "process": src.process, "url": src.url,
                "ok": false, "error": format!("{err:#}") })),
        }
    }
    json!({ "stages": stages, "sources": sources, "collector": collector, "streams": streams })
}

/// Starts the scraper thread (it does nothing but sleep when no source is configured).
pub(crate) fn spawn(
    sources: Vec<MetricsSource>,
    period: Duration,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
) -> Result<JoinHandle<()>> {
    let period = period.max(Duration::from_millis(500));
    std::thread::Builder::new()
        .name("dash-scrape".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                let results: Vec<_> = sources
                    .iter()
                    .map(|s| (s, get(&s.url).map(|body| prom::parse(&body))))
                    .collect();
                *lock(&shared.metrics) = summarize(&results);
                let left = period.saturating_sub(t0.elapsed());
                let until = Instant::now() + left;
                while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50).min(left));
                }
            }
        })
        .context("spawning the dash scraper thread")
}
