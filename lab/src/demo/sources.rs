//! The demo's one table of sources: which emulated venue serves which collector source. The
//! emulator serves every venue of the `ringbolt-sim` registry on a port of its own; each line
//! here becomes one `[feeds.sources.*]` entry pointed at that port. Adding a venue emulator to
//! the demo is one line in [`DEMO_SOURCES`].

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use ringbolt_collector::config::SourceConfig;
use ringbolt_sim::VenueId;
use ringbolt_sim::config::VenueConfig;
use ringbolt_sim::venue;

/// One collector source of the demo.
#[derive(Debug, Clone, Copy)]
pub struct DemoSource {
    /// Collector source name (`[feeds.sources.<name>]`).
    pub source: &'static str,
    /// Emulated venue serving it (also the bus venue).
    pub venue: VenueId,
    /// WebSocket path on the venue's port (`None`: the registry's advertised path).
    pub ws_path: Option<&'static str>,
    /// Symbols the collector subscribes.
    pub symbols: &'static [&'static str],
    /// Polymarket window length, s (discovery).
    pub window_s: Option<i64>,
    /// PolyBolt: authenticate with the emulated credentials ([`write_polybolt_credentials`]).
    pub credentials: bool,
}

const fn line(
    source: &'static str,
    venue: VenueId,
    symbols: &'static [&'static str],
) -> DemoSource {
    DemoSource {
        source,
        venue,
        ws_path: None,
        symbols,
        window_s: None,
        credentials: false,
    }
}

/// Every source the demo runs.
pub const DEMO_SOURCES: &[DemoSource] = &[
    DemoSource {
        window_s: Some(300),
        ..line("polymarket", VenueId::Polymarket, &[])
    },
    line("chainlink_rtds", VenueId::ChainlinkRtds, &["btc/usd"]),
    line("binance_spot", VenueId::BinanceSpot, &["BTCUSDT"]),
    line("coinbase", VenueId::Coinbase, &["BTC-USD"]),
    line("gemini", VenueId::Gemini, &["BTCUSD"]),
    line("bitstamp", VenueId::Bitstamp, &["btcusd"]),
    // Collected and archived; decisions keep the Chainlink RTDS reference unless
    // `[decide] reference_source = "polybolt"`.
    DemoSource {
        credentials: true,
        ..line("polybolt", VenueId::PolyBolt, &["btcusd"])
    },
    // Binance USD-M: one source per 2026 route tier (the registry's advertised path is
    // `/public/stream`).
    line("binance_futures", VenueId::BinanceFutures, &["BTCUSDT"]),
    DemoSource {
        ws_path: Some("/market/stream"),
        ..line(
            "binance_futures_market",
            VenueId::BinanceFutures,
            &["BTCUSDT"],
        )
    },
    // Bybit spot (`/v5/public/spot`) and linear (`/v5/public/linear`): same symbols, the
    // collector names the linear instruments `linear/<symbol>`.
    line("bybit", VenueId::Bybit, &["BTCUSDT"]),
    DemoSource {
        ws_path: Some("/v5/public/linear"),
        ..line("bybit_linear", VenueId::Bybit, &["BTCUSDT"])
    },
    line("okx", VenueId::Okx, &["BTC-USDT", "BTC-USDT-SWAP"]),
    line("kraken", VenueId::Kraken, &["BTC/USD"]),
    line("deribit", VenueId::Deribit, &["BTC-PERPETUAL"]),
];

/// The PolyBolt credentials file of the demo, next to the emulator's CA.
pub fn polybolt_credentials_path(ca: &Path) -> std::path::PathBuf {
    ca.with_file_name("polybolt-credentials.toml")
}

/// Writes the emulator's PolyBolt credentials (emulated, no real account) for the collector.
///
/// # Errors
/// The file cannot be written.
pub fn write_polybolt_credentials(ca: &Path) -> Result<()> {
    let path = polybolt_credentials_path(ca);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&path, ringbolt_sim::polybolt::emulated_credentials_toml())
        .with_context(|| format!("writing {}", path.display()))
}

/// Ports of the emulated venues, one per registered venue.
#[derive(Debug, Clone, Default)]
pub struct VenuePorts(pub BTreeMap<VenueId, u16>);

impl VenuePorts {
    /// A free port for every registered venue.
    pub fn allocate(mut free_port: impl FnMut() -> Result<u16>) -> Result<Self> {
        let mut ports = BTreeMap::new();
        for v in venue::registered() {
            ports.insert(v, free_port()?);
        }
        Ok(Self(ports))
    }

    /// The emulator's `[venues.*]` entries.
    pub fn emulator_venues(&self) -> impl Iterator<Item = (String, VenueConfig)> + '_ {
        self.0.iter().map(|(v, port)| {
            (
                v.name().to_owned(),
                VenueConfig {
                    port: *port,
                    ..VenueConfig::default()
                },
            )
        })
    }

    /// The collector's `[feeds.sources.*]` entries, trusting only the emulator's CA.
    pub fn collector_sources(&self, ca: &Path) -> Result<BTreeMap<String, SourceConfig>> {
        DEMO_SOURCES
            .iter()
            .map(|d| {
                let port = self
                    .0
                    .get(&d.venue)
                    .with_context(|| format!("demo source {}: venue not emulated", d.source))?;
                Ok((d.source.to_owned(), source_config(d, *port, ca)))
            })
            .collect()
    }
}

fn source_config(d: &DemoSource, port: u16, ca: &Path) -> SourceConfig {
    let spec = venue::spec(d.venue);
    let path = d.ws_path.or(spec.map(|s| s.ws_path)).unwrap_or("/");
    SourceConfig {
        venue: (d.source != d.venue.name()).then(|| d.venue.name().to_owned()),
        url: Some(format!("wss://127.0.0.1:{port}{path}")),
        rest_url: spec
            .is_some_and(|s| s.rest)
            .then(|| format!("https://127.0.0.1:{port}")),
        ca_file: Some(ca.to_path_buf()),
        ca_only: true,
        symbols: d.symbols.iter().map(|s| (*s).to_owned()).collect(),
        window_s: d.window_s,
        credentials_file: d.credentials.then(|| polybolt_credentials_path(ca)),
        ..SourceConfig::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_venue_has_a_demo_source_and_every_source_a_venue() {
        for v in venue::registered() {
            assert!(
                DEMO_SOURCES.iter().any(|d| d.venue == v),
                "{} is emulated but has no line in DEMO_SOURCES",
                v.name()
            );
        }
        let mut n = 0;
        let ports = VenuePorts::allocate(|| {
            n += 1;
            Ok(40_000 + n)
        })
        .unwrap();
        let sources = ports.collector_sources(Path::new("ca.pem")).unwrap();
        assert_eq!(sources.len(), DEMO_SOURCES.len());
        let b = &sources["binance_spot"];
        let port = ports.0[&VenueId::BinanceSpot];
        assert_eq!(
            b.url.as_deref(),
            Some(format!("wss://127.0.0.1:{port}/stream").as_str())
        );
        assert_eq!(
            b.rest_url.as_deref(),
            Some(format!("https://127.0.0.1:{port}").as_str())
        );
        assert_eq!(sources["polymarket"].window_s, Some(300));
        assert!(sources["coinbase"].rest_url.is_none());
        assert!(sources["bitstamp"].rest_url.is_some());
        let port = ports.0[&VenueId::Bybit];
        assert_eq!(
            sources["bybit_linear"].url.as_deref(),
            Some(format!("wss://127.0.0.1:{port}/v5/public/linear").as_str())
        );
        assert_eq!(sources["bybit_linear"].venue.as_deref(), Some("bybit"));
        assert_eq!(
            sources["polybolt"].credentials_file.as_deref(),
            Some(Path::new("polybolt-credentials.toml"))
        );
        assert_eq!(ports.emulator_venues().count(), venue::registered().count());
    }

    #[test]
    fn status_line_labels_are_unique_over_every_venue() {
        let labels: std::collections::BTreeSet<String> = VenueId::ALL
            .iter()
            .map(|v| super::super::short_name(v.name()))
            .collect();
        assert_eq!(labels.len(), VenueId::ALL.len(), "{labels:?}");
        assert_eq!(super::super::short_name("binance_futures"), "binaf");
    }
}
