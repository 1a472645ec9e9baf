//! The `[feeds]` section of the runtime configuration (TOML): the collector's contract. The
//! whole file is loaded by `ringbolt-config` (one type, one rule for unknown keys); the collector
//! takes its section from the caller.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use ringbolt_bus::Venue;
use ringbolt_feeds::venues::IMPLEMENTED;
use serde::{Deserialize, Serialize};

/// `[feeds]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedsConfig {
    /// Bus segment the collector publishes to (one ring per ring thread).
    pub segment: String,
    /// Records per ring (power of two).
    pub capacity: usize,
    /// Instrument table entries. Discovery retires the tokens of windows over and the bus reuses
    /// their entries under a new generation (ADR 0024), so this bounds the instruments
    /// live at once (a few Polymarket tokens plus every reference symbol), not uptime.
    /// `ringbolt trade` maps at most 8192 entries per input segment.
    pub instrument_capacity: usize,
    /// Loopback address of `GET /healthz` (ops contract: 127.0.0.1:9101); unset = none.
    pub health_addr: Option<SocketAddr>,
    /// Loopback address of `GET /metrics` (Prometheus text format); unset = none.
    pub metrics_addr: Option<SocketAddr>,
    /// Directory of the `.hlog` latency dumps (`collector-<UTC start>.hlog`); unset =
    /// `$STATE_DIRECTORY/hlog` under systemd, else no dumps (`/metrics` still has the figures).
    pub hlog_dir: Option<PathBuf>,
    /// Seconds per `.hlog` interval.
    pub hlog_interval_s: u64,
    /// Start a new `.hlog` file past this size, bytes.
    pub hlog_rotate_bytes: u64,
    /// Start a new `.hlog` file past this age, seconds.
    pub hlog_rotate_age_s: u64,
    /// Spin on the ring (needs a core of its own) instead of blocking in the kernel.
    pub busy_poll: bool,
    /// Core of ring thread `i` is `cores[i]`. When empty, the cpulist in `$RINGBOLT_FEED_CPUS`
    /// (set by the unit's affinity drop-in from the core map, e.g. `2-3`) is used the same way;
    /// without either, ring threads are not pinned.
    pub cores: Vec<usize>,
    /// `SCHED_FIFO` priority (1-99) of the ring threads, 0 = the normal class; unset =
    /// `$RINGBOLT_RT_PRIORITY`, else normal. A woken ring thread then preempts normal threads
    /// (ADR 0030).
    pub rt_priority: Option<u8>,
    /// Stop after this many seconds (unset = run until SIGTERM/SIGINT).
    pub max_runtime_s: Option<u64>,
    /// No data for this long ⇒ the stream is `stale` (default: the adapter's own threshold).
    pub stale_after_ms: Option<u64>,
    /// No data for this long ⇒ reconnect.
    pub reconnect_after_ms: u64,
    /// First reconnect delay (exponential backoff with jitter from here).
    pub backoff_base_ms: u64,
    /// Largest reconnect delay.
    pub backoff_max_ms: u64,
    /// TCP connect / TLS + WebSocket handshake timeout.
    pub connect_timeout_ms: u64,
    /// One table per source, keyed by a name (the venue's name unless `venue` says otherwise).
    pub sources: BTreeMap<String, SourceConfig>,
}

impl Default for FeedsConfig {
    fn default() -> Self {
        FeedsConfig {
            segment: "ringbolt-market".into(),
            capacity: 1 << 20,
            instrument_capacity: 4096,
            health_addr: None,
            metrics_addr: None,
            hlog_dir: None,
            hlog_interval_s: ringbolt_telemetry::DEFAULT_INTERVAL_S,
            hlog_rotate_bytes: ringbolt_telemetry::DEFAULT_ROTATE_BYTES,
            hlog_rotate_age_s: ringbolt_telemetry::DEFAULT_ROTATE_AGE_S,
            busy_poll: false,
            cores: Vec::new(),
            rt_priority: None,
            max_runtime_s: None,
            stale_after_ms: None,
            reconnect_after_ms: 30_000,
            backoff_base_ms: 250,
            backoff_max_ms: 30_000,
            connect_timeout_ms: 5_000,
            sources: BTreeMap::new(),
        }
    }
}

/// `[feeds.sources.<name>]`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourceConfig {
    /// Venue (corpus folder name); defaults to the table's name.
    pub venue: Option<String>,
    /// Off: the source is skipped.
    pub disabled: bool,
    /// WebSocket URL, `wss://host[:port]/path` (default: the adapter's production endpoint).
    pub url: Option<String>,
    /// REST base URL, `https://host[:port]`: Binance/Bitstamp snapshots, Polymarket Gamma.
    /// Default: the venue's production host.
    pub rest_url: Option<String>,
    /// Extra CA certificate (PEM) to trust (e.g. the emulator's `<cert_dir>/ca.pem`).
    pub ca_file: Option<PathBuf>,
    /// Trust only `ca_file`, not the bundled public roots.
    pub ca_only: bool,
    /// Venue symbols to subscribe (e.g. `BTCUSDT`, `BTC-USD`, `btc/usd`). Polymarket: extra
    /// static token ids (window tokens come from discovery).
    pub symbols: Vec<String>,
    /// Ring thread (and bus ring) index.
    pub ring: usize,
    /// Polymarket: window length, s (300 live; the emulator can shorten windows).
    pub window_s: Option<i64>,
    /// Polymarket: how often to ask Gamma for missing windows, ms.
    pub discovery_interval_ms: Option<u64>,
    /// Polymarket: keep a window subscribed this long after its end, s.
    pub linger_s: Option<i64>,
    /// Polymarket: ask `/events?slug=` instead of `/markets?slug=`.
    pub gamma_events: bool,
    /// Streams to subscribe, by catalogue name (`ringbolt feeds streams --venue V` lists them;
    /// `ringbolt_feeds::venues::streams::SUBSCRIPTIONS`). Unset: the venue's default set (for
    /// Binance USD-M on a 2026 split-route URL, the defaults of that route).
    pub streams: Option<Vec<String>>,
    /// PolyBolt: a TOML file with the CLOB API credentials its `auth` needs (`api_key`,
    /// `secret`, `passphrase`); never inline in this config. Unset: subscribes unauthenticated
    /// (the venue answers `auth_required`).
    pub credentials_file: Option<PathBuf>,
}

impl SourceConfig {
    /// The selected streams of this source of `venue` (config names resolved and checked).
    ///
    /// # Errors
    /// Unknown names (the valid ones listed), streams of two endpoint families, a Binance
    /// USD-M stream on the other 2026 route, an empty list, or a bad `url`.
    pub fn selected_streams(
        &self,
        venue: Venue,
    ) -> Result<Vec<&'static ringbolt_feeds::venues::streams::Selectable>> {
        let path = match &self.url {
            Some(u) => super::url::Url::parse(u)?.path,
            None => String::new(),
        };
        Ok(ringbolt_feeds::venues::streams::for_path(
            venue,
            self.streams.as_deref(),
            &path,
        )?)
    }
}

/// Parses a venue name.
pub fn venue_named(name: &str) -> Result<Venue> {
    let venue = Venue::ALL
        .iter()
        .copied()
        .find(|v| *v != Venue::Internal && v.as_str() == name)
        .with_context(|| {
            let names: Vec<&str> = IMPLEMENTED.iter().map(|v| v.as_str()).collect();
            format!("unknown venue `{name}`; venues: {}", names.join(", "))
        })?;
    if !IMPLEMENTED.contains(&venue) {
        bail!("no adapter for venue `{name}`");
    }
    Ok(venue)
}

impl FeedsConfig {
    /// Checks everything that can be checked without I/O.
    pub fn validate(&self) -> Result<()> {
        if self.segment.is_empty() {
            bail!("[feeds] segment is empty");
        }
        if !self.capacity.is_power_of_two() {
            bail!(
                "[feeds] capacity must be a power of two, got {}",
                self.capacity
            );
        }
        let enabled: Vec<_> = self.sources.iter().filter(|(_, s)| !s.disabled).collect();
        if enabled.is_empty() {
            bail!("[feeds] has no enabled source ([feeds.sources.<name>] tables)");
        }
        for addr in [self.health_addr, self.metrics_addr].into_iter().flatten() {
            if !addr.ip().is_loopback() {
                bail!("[feeds] {addr}: health and metrics endpoints must be on loopback");
            }
        }
        for (name, s) in &enabled {
            let venue = venue_named(s.venue.as_deref().unwrap_or(name))
                .with_context(|| format!("[feeds.sources.{name}]"))?;
            if let Some(u) = &s.url {
                super::url::Url::parse(u).with_context(|| format!("[feeds.sources.{name}] url"))?;
            }
            if let Some(u) = &s.rest_url {
                super::url::Url::parse(u)
                    .with_context(|| format!("[feeds.sources.{name}] rest_url"))?;
            }
            s.selected_streams(venue)
                .with_context(|| format!("[feeds.sources.{name}] streams"))?;
            if s.ca_only && s.ca_file.is_none() {
                bail!("[feeds.sources.{name}] ca_only needs ca_file");
            }
            if venue != Venue::Polymarket && s.symbols.is_empty() {
                bail!("[feeds.sources.{name}] symbols is empty");
            }
            if s.window_s.is_some_and(|w| w <= 0) {
                bail!("[feeds.sources.{name}] window_s must be positive");
            }
            if s.ring >= 64 {
                bail!("[feeds.sources.{name}] ring must be < 64");
            }
        }
        Ok(())
    }

    /// The `.hlog` dump settings of the `hlog_*` keys.
    #[must_use]
    pub fn hlog_settings(&self) -> ringbolt_telemetry::HlogSettings {
        ringbolt_telemetry::HlogSettings::from_keys(
            self.hlog_dir.as_deref(),
            self.hlog_interval_s,
            self.hlog_rotate_bytes,
            self.hlog_rotate_age_s,
        )
    }

    /// Ring thread `i`'s core: `cores[i]`, else the `i`-th cpu of `$RINGBOLT_FEED_CPUS`.
    #[must_use]
    pub fn core_of(&self, ring: usize) -> Option<usize> {
        if !self.cores.is_empty() {
            return self.cores.get(ring).copied();
        }
        ringbolt_net::affinity::env_cpu("RINGBOLT_FEED_CPUS", ring)
    }

    /// Number of ring threads (highest `ring` + 1).
    pub fn rings(&self) -> usize {
        self.sources
            .values()
            .filter(|s| !s.disabled)
            .map(|s| s.ring + 1)
            .max()
            .unwrap_or(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_cores_win() {
        let cfg = FeedsConfig {
            cores: vec![7, 9],
            ..FeedsConfig::default()
        };
        assert_eq!((cfg.core_of(1), cfg.core_of(2)), (Some(9), None));
    }

    #[test]
    fn validation_refuses_no_source_and_unknown_venues() {
        let no_source: FeedsConfig = toml::from_str("").unwrap_or_default();
        assert!(no_source.validate().is_err());
        let bad_venue: FeedsConfig =
            toml::from_str("[sources.nasdaq]\nsymbols = [\"X\"]\n").unwrap_or_default();
        assert!(format!("{:#}", bad_venue.validate().unwrap_err()).contains("unknown venue"));
    }

    #[test]
    fn unknown_stream_names_are_refused_at_load_with_the_valid_names() {
        let cfg: FeedsConfig = toml::from_str(
            "[sources.binance_spot]\nsymbols = [\"BTCUSDT\"]\nstreams = [\"depth\", \"trades\"]\n",
        )
        .unwrap_or_default();
        let e = format!("{:#}", cfg.validate().unwrap_err());
        assert!(e.contains("[feeds.sources.binance_spot] streams"), "{e}");
        assert!(e.contains("unknown stream \"trades\""), "{e}");
        assert!(
            e.contains("valid: trade, agg_trade, book_ticker, depth, ticker_24h"),
            "{e}"
        );
        let ok: FeedsConfig = toml::from_str(
            "[sources.binance_spot]\nsymbols = [\"BTCUSDT\"]\nstreams = [\"depth\", \"trade\"]\n",
        )
        .unwrap_or_default();
        ok.validate().unwrap_or_else(|e| panic!("{e:#}"));
        let names: Vec<&str> = ok.sources["binance_spot"]
            .selected_streams(Venue::BinanceSpot)
            .unwrap_or_default()
            .iter()
            .map(|x| x.name)
            .collect();
        assert_eq!(names, ["trade", "depth"]);
        let route: FeedsConfig = toml::from_str(
            "[sources.binance_futures]\nurl = \"wss://fstream.binance.com/market/stream\"\nsymbols = [\"BTCUSDT\"]\nstreams = [\"depth\"]\n",
        )
        .unwrap_or_default();
        let e = format!("{:#}", route.validate().unwrap_err());
        assert!(e.contains("served on /public"), "{e}");
    }
}
