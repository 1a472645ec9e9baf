//! `[dash]` of `ringbolt.toml`: where the dashboard listens, who may read it, what it reads.

use std::net::SocketAddr;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// One process whose Prometheus `/metrics` the dashboard scrapes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSource {
    /// Name shown on the page (`feeds`, `trade`, `archive`).
    pub process: String,
    /// `http://127.0.0.1:<port>/metrics` (plain HTTP on loopback).
    pub url: String,
}

/// `[dash]`: the operator dashboard (`ringbolt dash`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DashConfig {
    /// Listen address of the page and its WebSocket (default `127.0.0.1:8052`).
    pub bind: SocketAddr,
    /// Must be `true` to bind anything but a loopback address (and then `token` is required).
    pub allow_remote: bool,
    /// Access token: when set, every request needs `?token=<token>` (or an
    /// `Authorization: Bearer <token>` header). Required with `allow_remote`.
    pub token: Option<String>,
    /// Period of the WebSocket updates (and of one chart point), ms.
    pub update_ms: u64,
    /// Seconds of chart history kept and sent to a new page (the current window and the last
    /// few).
    pub history_s: u64,
    /// Bus segments read (read-only): the collector's and the trade process's.
    pub segments: Vec<String>,
    /// Processes whose `/metrics` are scraped once per update period.
    pub metrics: Vec<MetricsSource>,
}

impl Default for DashConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8052)),
            allow_remote: false,
            token: None,
            update_ms: 250,
            history_s: 1200,
            segments: vec!["ringbolt-market".into(), "ringbolt-decide".into()],
            metrics: Vec::new(),
        }
    }
}

impl DashConfig {
    /// Checks the values: a non-loopback bind needs `allow_remote = true` **and** a token.
    ///
    /// # Errors
    /// A sentence naming the key at fault.
    pub fn validate(&self) -> Result<()> {
        if !self.bind.ip().is_loopback() {
            if !self.allow_remote {
                bail!(
                    "dash.bind = {} is not a loopback address: set dash.allow_remote = true and \
                     dash.token to serve the dashboard beyond this host",
                    self.bind
                );
            }
            if self.token.as_deref().is_none_or(|t| t.len() < 16) {
                bail!(
                    "dash.bind = {} is not a loopback address: dash.token (at least 16 \
                     characters) is required",
                    self.bind
                );
            }
        }
        if let Some(token) = &self.token
            && !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
        {
            bail!("dash.token: use URL-safe characters only (A-Z a-z 0-9 - _ . ~)");
        }
        if !(20..=10_000).contains(&self.update_ms) {
            bail!("dash.update_ms = {}: expected 20..=10000", self.update_ms);
        }
        if !(60..=86_400).contains(&self.history_s) {
            bail!("dash.history_s = {}: expected 60..=86400", self.history_s);
        }
        if self.segments.is_empty() {
            bail!("dash.segments: name at least one bus segment");
        }
        for m in &self.metrics {
            if !m.url.starts_with("http://") {
                bail!(
                    "dash.metrics ({}): url {:?} must be plain http://",
                    m.process,
                    m.url
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_by_default_and_remote_needs_setting_and_token() {
        let cfg = DashConfig::default();
        assert_eq!(cfg.bind.to_string(), "127.0.0.1:8052");
        assert!(cfg.validate().is_ok());
        let remote = DashConfig {
            bind: "0.0.0.0:8052".parse().unwrap_or(cfg.bind),
            ..DashConfig::default()
        };
        let err = remote
            .validate()
            .map_or_else(|e| e.to_string(), |()| String::new());
        assert!(err.contains("dash.allow_remote"), "{err}");
        let no_token = DashConfig {
            allow_remote: true,
            ..remote.clone()
        };
        let err = no_token
            .validate()
            .map_or_else(|e| e.to_string(), |()| String::new());
        assert!(err.contains("dash.token"), "{err}");
        let ok = DashConfig {
            token: Some("0123456789abcdef0123".into()),
            ..no_token
        };
        assert!(ok.validate().is_ok());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<DashConfig>("bind = \"127.0.0.1:1\"\nbnid = 1\n")
            .map_or_else(|e| e.to_string(), |_| String::new());
        assert!(err.contains("bnid"), "{err}");
    }
}
