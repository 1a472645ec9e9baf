//! The one configuration type of `ringbolt.toml`, the file every appliance process shares
//! (`/etc/ringbolt/ringbolt.toml`; the shipped one is `ami/config/ringbolt.toml`), and its
//! loader.
//!
//! The section types stay in the crates that use them (`[feeds]`: `ringbolt-collector`;
//! `[trade]`, `[exec]`: `ringbolt-trade`; `[decide]`: `ringbolt-decide`; `[archive]`:
//! `ringbolt-archive`; `[dash]`: `ringbolt-dash`); this crate composes them into
//! [`RingboltConfig`] and [`load`]s the file
//! with **one rule for unknown keys**: refused, in every section, by every process
//! (`ringbolt feeds|trade|archive|replay`, `features export`, the lab's demo), with an error that
//! names the file and the dotted key:
//!
//! ```text
//! ami/config/ringbolt.toml: unknown key `feeds.sources.binance_spot.urll` (unknown field `urll`, expected one of …)
//! ```
//!
//! Each process then validates the values of its own sections. The lab's demo builds a
//! [`RingboltConfig`] value and writes it with [`RingboltConfig::to_toml`].

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use ringbolt_archive::ArchiveConfig;
use ringbolt_collector::config::FeedsConfig;
use ringbolt_dash::DashConfig;
use ringbolt_decide::DecideConfig;
use ringbolt_service::startup::{self, Mode, StartupConfig};
use ringbolt_trade::config::{TradeConfig, TradeSections};
use ringbolt_trade::exec::ExecSection;
use serde::{Deserialize, Serialize};

/// `[cores]`: where the core map lives (processes read their `RINGBOLT_*_CPUS` from the unit's
/// affinity drop-in, written from this map by `tuning/stages/80-affinity.sh`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CoresConfig {
    /// The core map (`/etc/ringbolt/core-map.toml`).
    pub core_map: Option<PathBuf>,
}

/// The whole of `ringbolt.toml`. Every section is optional in the file (defaults apply);
/// `[archive]` has no default root, so it is `None` when absent.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RingboltConfig {
    /// `[feeds]` (and `[feeds.sources.*]`): the collector.
    pub feeds: FeedsConfig,
    /// `[trade]`: the decision process.
    pub trade: TradeConfig,
    /// `[decide]`: the decision core's parameters.
    pub decide: DecideConfig,
    /// `[exec]`: the order path (paper by default). Names the key file, never holds key material.
    pub exec: ExecSection,
    /// `[archive]`: the archiver.
    pub archive: Option<ArchiveConfig>,
    /// `[cores]`: the core map.
    pub cores: CoresConfig,
    /// `[dash]`: the operator dashboard (`ringbolt dash`).
    pub dash: DashConfig,
    /// `[startup]`: the start-up checks every process runs before READY (tuning verdict file,
    /// memory locking).
    pub startup: StartupConfig,
}

impl RingboltConfig {
    /// The trade process's sections (`[trade]`, `[decide]`, `[exec]`).
    #[must_use]
    pub fn trade_sections(&self) -> TradeSections {
        TradeSections {
            trade: self.trade.clone(),
            decide: self.decide.clone(),
            exec: self.exec.clone(),
        }
    }

    /// `[archive]`, validated.
    ///
    /// # Errors
    /// A missing `[archive]` section or an invalid value.
    pub fn archive_section(&self, path: &Path) -> Result<ArchiveConfig> {
        let archive = self
            .archive
            .clone()
            .ok_or_else(|| anyhow!("{}: missing [archive] section", path.display()))?;
        archive
            .validate()
            .map_err(|e| anyhow!("{}: {e}", path.display()))?;
        Ok(archive)
    }

    /// `[feeds]`, validated.
    ///
    /// # Errors
    /// An invalid `[feeds]` section (no enabled source, bad URL, unknown venue, …).
    pub fn feeds_section(&self, path: &Path) -> Result<FeedsConfig> {
        self.feeds
            .validate()
            .with_context(|| path.display().to_string())?;
        Ok(self.feeds.clone())
    }

    /// The process-wide start-up checks, before a process starts its threads: `tune` (the
    /// host's `ringbolt-tune check` verdict against `mode`; `force` = the operator's `--force`)
    /// and `memory` (`mlockall` when `[startup] lock_memory`). Each is recorded for `/healthz`.
    ///
    /// # Errors
    /// A failed check, naming it and the fix.
    pub fn startup_checks(&self, mode: Mode, force: bool) -> Result<()> {
        let s = &self.startup;
        startup::require(
            "tune",
            startup::tune_verdict(s.tune_check.as_deref(), mode, force || s.allow_untuned),
        )?;
        startup::require("memory", startup::lock_memory(s.lock_memory))
    }

    /// The file's text: every section with every value spelled out (what the demo writes).
    ///
    /// # Errors
    /// A value TOML cannot hold.
    pub fn to_toml(&self) -> Result<String> {
        Ok(toml::to_string(self)?)
    }
}

/// Parses `text` as the contents of `path` (named in errors).
///
/// # Errors
/// Bad TOML, a wrong type, or an unknown key anywhere: the message names `path` and, for an
/// unknown key, its dotted path.
pub fn parse(text: &str, path: &Path) -> Result<RingboltConfig> {
    toml::from_str(text).map_err(|e| {
        let message = e.message().trim().to_owned();
        let at = e.span().map(|s| s.start);
        let key = at.and_then(|at| key_at(text, at));
        match (message.starts_with("unknown field"), key) {
            (true, Some(key)) => anyhow!("{}: unknown key `{key}` ({message})", path.display()),
            (_, Some(key)) => anyhow!("{}: `{key}`: {message}", path.display()),
            (_, None) => anyhow!("{}: {e}", path.display()),
        }
    })
}

/// Loads `ringbolt.toml` (or any file of its format). Every process loads its configuration
/// through this function.
///
/// # Errors
/// An unreadable file, and every error of [`parse`].
pub fn load(path: &Path) -> Result<RingboltConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    parse(&text, path)
}

/// The dotted path of the key (or value) at byte offset `at` of the document.
fn key_at(text: &str, at: usize) -> Option<String> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut path = Vec::new();
    find(doc.get_ref(), at, &mut path).then(|| path.join("."))
}

fn find(table: &toml::de::DeTable<'_>, at: usize, path: &mut Vec<String>) -> bool {
    for (k, v) in table {
        path.push(k.get_ref().to_string());
        if k.span().contains(&at) || (v.span().contains(&at) && !is_container(v.get_ref())) {
            return true;
        }
        let found = match v.get_ref() {
            toml::de::DeValue::Table(t) => find(t, at, path),
            toml::de::DeValue::Array(a) => a.iter().any(|e| match e.get_ref() {
                toml::de::DeValue::Table(t) => find(t, at, path),
                _ => false,
            }),
            _ => false,
        };
        if found {
            return true;
        }
        path.pop();
    }
    false
}

fn is_container(v: &toml::de::DeValue<'_>) -> bool {
    matches!(v, toml::de::DeValue::Table(_) | toml::de::DeValue::Array(_))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    /// Every `ringbolt.toml`-format file in the repository: the shipped one and the examples.
    const SHIPPED: [&str; 5] = [
        "ami/config/ringbolt.toml",
        "ami/qemu/ringbolt.toml",
        "archive/ringbolt.example.toml",
        "decide/ringbolt.example.toml",
        "sim/feeds.emulate.example.toml",
    ];

    #[test]
    fn the_shipped_and_example_configs_load() {
        for f in SHIPPED {
            let cfg = load(&repo().join(f)).unwrap_or_else(|e| panic!("{f}: {e:#}"));
            if f.contains("ringbolt.toml") || f.starts_with("sim/") {
                let feeds = cfg.feeds_section(Path::new(f)).unwrap();
                assert!(feeds.sources.contains_key("polymarket"), "{f}");
                // `ringbolt trade` refuses a market segment with more entries than it maps.
                assert!(
                    feeds.instrument_capacity <= ringbolt_decide::SEGMENT_ID_SPAN as usize,
                    "{f}: [feeds] instrument_capacity {} > {} (what trade maps)",
                    feeds.instrument_capacity,
                    ringbolt_decide::SEGMENT_ID_SPAN
                );
            }
            if cfg.archive.is_some() {
                cfg.archive_section(Path::new(f)).unwrap();
            }
        }
        let shipped = load(&repo().join(SHIPPED[0])).unwrap();
        assert_eq!(
            shipped.trade.health_addr,
            Some("127.0.0.1:9102".parse().unwrap())
        );
        assert!(shipped.trade.paper, "the shipped config trades on paper");
        let archive = shipped.archive_section(Path::new("x")).unwrap();
        assert_eq!(archive.health_addr, Some("127.0.0.1:9103".parse().unwrap()));
        assert!(archive.root.is_absolute());
        assert_eq!(
            shipped.cores.core_map.as_deref(),
            Some(Path::new("/etc/ringbolt/core-map.toml"))
        );
        assert_eq!(shipped.dash.bind.to_string(), "127.0.0.1:8052");
        assert!(shipped.dash.validate().is_ok());
        assert_eq!(shipped.dash.metrics.len(), 3);
        // The appliance runs its start-up checks against the tuning verdict, memory locked.
        assert_eq!(
            shipped.startup.tune_check.as_deref(),
            Some(Path::new("/var/lib/ringbolt-tune/check.json"))
        );
        assert!(shipped.startup.lock_memory && !shipped.startup.allow_untuned);
        assert!(
            shipped.trade.model_dir.is_none(),
            "the model comes with the release"
        );
    }

    #[test]
    fn an_unknown_key_in_any_section_is_refused_naming_the_key_and_the_file() {
        let shipped = std::fs::read_to_string(repo().join(SHIPPED[0])).unwrap();
        let path = Path::new("ami/config/ringbolt.toml");
        let cases = [
            (
                "url = \"wss://stream.binance",
                "urll = \"wss://stream.binance",
                "feeds.sources.binance_spot.urll",
            ),
            ("busy_poll = true", "busy_pol = true", "feeds.busy_pol"),
            (
                "[trade]\n",
                "[trade]\nevaluatr = \"native\"\n",
                "trade.evaluatr",
            ),
            (
                "[archive]\n",
                "[archive]\nsegmets = []\n",
                "archive.segmets",
            ),
            ("core_map =", "core_mapp =", "cores.core_mapp"),
            (
                "[cores]",
                "[decide.risk]\nmin_edg = 0.1\n\n[exec]\nhots = \"x\"\n\n[cores]",
                "decide.risk.min_edg",
            ),
            ("[cores]", "[exec]\nhots = \"x\"\n\n[cores]", "exec.hots"),
            ("[cores]", "[trdae]\nx = 1\n\n[cores]", "trdae"),
            ("[dash]\n", "[dash]\nbnid = 1\n", "dash.bnid"),
            (
                "process = \"feeds\"",
                "proces = \"feeds\"",
                "dash.metrics.proces",
            ),
        ];
        for (from, to, key) in cases {
            assert!(shipped.contains(from), "{from}");
            let text = shipped.replacen(from, to, 1);
            let err = format!("{:#}", parse(&text, path).unwrap_err());
            assert!(
                err.starts_with(&format!("ami/config/ringbolt.toml: unknown key `{key}` (")),
                "{err}"
            );
        }
        let err = format!(
            "{:#}",
            parse("[feeds]\ncapacity = \"x\"\n", path).unwrap_err()
        );
        assert!(err.contains("feeds.capacity"), "{err}");
    }

    #[test]
    fn a_serialised_config_loads_back_unchanged() {
        let mut cfg = load(&repo().join(SHIPPED[0])).unwrap();
        cfg.exec.key_file = Some("/run/ringbolt/paper.key".into());
        cfg.decide.risk.cooldown_ms = 250;
        let text = cfg.to_toml().unwrap();
        let back = parse(&text, Path::new("x.toml")).unwrap();
        assert_eq!(back.to_toml().unwrap(), text);
        assert!(
            back.trade_sections()
                .decision_diff(&cfg.trade_sections())
                .is_empty()
        );
        assert_eq!(back.archive, cfg.archive);
    }
}
