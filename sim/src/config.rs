//! The emulator's TOML configuration.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::event::VenueId;
use crate::market::MarketConfig;
use crate::venue;

/// Config name of the CLOB order-entry emulator.
pub const CLOB: &str = "clob";

/// `ringbolt emulate --config FILE`.
///
/// ```toml
/// bind = "127.0.0.1"
/// cert_dir = "target/sim-certs"
/// control_port = 0
/// [market]
/// seed = 7
/// window_len_s = 300
/// [venues.binance_spot]
/// port = 0
/// server_ping_ms = 20000
/// [venues.coinbase]
/// replay = "capture.jsonl"
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmulatorConfig {
    /// Address to bind (loopback only is intended).
    pub bind: IpAddr,
    /// Where the generated CA (`ca.pem`) and leaf certificate are written.
    pub cert_dir: PathBuf,
    /// Control HTTP port (0 = ephemeral).
    pub control_port: u16,
    /// Anchor of the market clock in unix ms (default: wall clock at start).
    pub start_ms: Option<i64>,
    /// Synthetic market parameters.
    pub market: MarketConfig,
    /// Per-venue settings keyed by venue name; venues absent from a non-empty table are off.
    /// `clob` is the order-entry emulator (HTTP/2); only `enabled` and `port` apply to it.
    pub venues: BTreeMap<String, VenueConfig>,
    /// Entries kept in each wire-log ring (`GET /wirelog`).
    pub wirelog_capacity: usize,
    /// PolyBolt: the credentials its `auth` accepts, a TOML file of `api_key`, `secret`,
    /// `passphrase` (the collector's `credentials_file` format); unset: the emulated defaults
    /// (`ringbolt_sim::polybolt::EMULATED_*`).
    pub polybolt_credentials_file: Option<PathBuf>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            bind: IpAddr::from([127, 0, 0, 1]),
            cert_dir: PathBuf::from("target/sim-certs"),
            control_port: 0,
            start_ms: None,
            market: MarketConfig::default(),
            venues: BTreeMap::new(),
            wirelog_capacity: crate::wirelog::DEFAULT_CAPACITY,
            polybolt_credentials_file: None,
        }
    }
}

/// One venue's listener.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VenueConfig {
    /// Serve this venue.
    pub enabled: bool,
    /// TLS port (0 = ephemeral).
    pub port: u16,
    /// Replay this JSONL capture instead of the synthetic market.
    pub replay: Option<PathBuf>,
    /// Interval between replayed lines, ms.
    pub replay_interval_ms: i64,
    /// Loop the capture at its end.
    pub replay_loop: bool,
    /// Send a WebSocket ping frame every N ms (default: the venue's registry value; Binance
    /// spot 20000, most others none).
    pub server_ping_ms: Option<u64>,
}

impl Default for VenueConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            port: 0,
            replay: None,
            replay_interval_ms: 100,
            replay_loop: true,
            server_ping_ms: None,
        }
    }
}

/// Configuration errors.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Unreadable file.
    #[error("reading {path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Invalid TOML or unknown keys.
    #[error("parsing {path}: {source}")]
    Toml {
        /// File.
        path: String,
        /// Cause.
        source: toml::de::Error,
    },
    /// Semantic problem.
    #[error("{0}")]
    Invalid(String),
}

impl EmulatorConfig {
    /// Read and validate a TOML file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: p.clone(),
            source,
        })?;
        let cfg: Self =
            toml::from_str(&text).map_err(|source| ConfigError::Toml { path: p, source })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Check venue names and market parameters.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for name in self.venues.keys() {
            if name == CLOB {
                continue;
            }
            match VenueId::parse(name) {
                None => {
                    return Err(ConfigError::Invalid(format!(
                        "unknown venue {name:?} (emulated: {}, {CLOB})",
                        venue::registered_names()
                    )));
                }
                Some(v) if !v.is_emulated() => {
                    return Err(ConfigError::Invalid(format!(
                        "venue {name:?} has no emulator yet (emulated: {}, {CLOB})",
                        venue::registered_names()
                    )));
                }
                Some(_) => {}
            }
        }
        let m = &self.market;
        if m.tick_ms < 1 || m.window_len_s < 1 || m.initial_price_usd <= 0.0 {
            return Err(ConfigError::Invalid(
                "market: tick_ms, window_len_s and initial_price_usd must be positive".into(),
            ));
        }
        for p in [
            m.binance_trade_prob,
            m.coinbase_trade_prob,
            m.polymarket_trade_prob,
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(ConfigError::Invalid(
                    "market: trade probabilities must be within [0, 1]".into(),
                ));
            }
        }
        Ok(())
    }

    /// The CLOB order-entry emulator's settings when it is served: when `[venues.clob]` is
    /// configured (and enabled), or when the venue table is empty (everything is served).
    pub fn clob(&self) -> Option<VenueConfig> {
        let c = if self.venues.is_empty() {
            VenueConfig::default()
        } else {
            self.venues.get(CLOB)?.clone()
        };
        c.enabled.then_some(c)
    }

    /// The effective settings of every served venue (every registered venue with defaults when
    /// the table is empty); a venue's registry ping period applies unless configured.
    pub fn served(&self) -> Vec<(VenueId, VenueConfig)> {
        venue::REGISTRY
            .iter()
            .filter_map(|spec| {
                let mut c = if self.venues.is_empty() {
                    VenueConfig::default()
                } else {
                    self.venues.get(spec.id.name())?.clone()
                };
                if c.server_ping_ms.is_none() {
                    c.server_ping_ms = spec.server_ping_ms;
                }
                c.enabled.then_some((spec.id, c))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_parses_and_serves_every_listed_venue() {
        let cfg: EmulatorConfig = toml::from_str(include_str!("../emulate.example.toml")).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.market.seed, 7);
        let served = cfg.served();
        assert_eq!(served.len(), 6);
        assert!(served.iter().all(|(v, _)| v.is_emulated()));
        assert_eq!(
            served
                .iter()
                .find(|(v, _)| *v == VenueId::BinanceSpot)
                .unwrap()
                .1
                .server_ping_ms,
            Some(20_000)
        );
        let futures = served.iter().find(|(v, _)| *v == VenueId::BinanceFutures);
        assert_eq!(futures.unwrap().1.server_ping_ms, Some(180_000));
    }

    #[test]
    fn unknown_keys_and_venues_are_refused() {
        assert!(toml::from_str::<EmulatorConfig>("[market]\nsede = 1\n").is_err());
        let cfg: EmulatorConfig = toml::from_str("[venues.nasdaq]\n").unwrap();
        assert!(
            cfg.validate()
                .unwrap_err()
                .to_string()
                .contains("unknown venue")
        );
        // A real venue name without an emulator is refused by name, not silently ignored.
        if let Some(v) = VenueId::ALL.into_iter().find(|v| !v.is_emulated()) {
            let cfg: EmulatorConfig = toml::from_str(&format!("[venues.{}]\n", v.name())).unwrap();
            let err = cfg.validate().unwrap_err().to_string();
            assert!(err.contains("has no emulator"), "{err}");
        }
    }

    #[test]
    fn an_empty_venue_table_serves_every_registered_venue() {
        let served = EmulatorConfig::default().served();
        let names: Vec<&str> = served.iter().map(|(v, _)| v.name()).collect();
        let registered: Vec<&str> = venue::registered().map(VenueId::name).collect();
        assert_eq!(names, registered);
    }
}
