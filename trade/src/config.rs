//! The trade process's configuration: `[trade]`, `[decide]` and `[exec]` of `ringbolt.toml`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ringbolt_decide::DecideConfig;
use ringbolt_decide::model::{Ensemble, EvaluatorKind, ModelDir, shipped_model_dir};
use serde::{Deserialize, Serialize};

/// Where a new consumer starts reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    /// At the live edge.
    Live,
    /// At the oldest retained record (replaying the ring's history first).
    Oldest,
}

/// `[trade]` section.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TradeConfig {
    /// Input bus segments (every ring of each is read).
    pub inputs: Vec<String>,
    /// Output segment for decision records.
    pub output: String,
    /// `ort`, `native` or `baseline`.
    pub evaluator: EvaluatorKind,
    /// Model directory (defaults to the shipped decide/models).
    pub model_dir: Option<PathBuf>,
    /// Core to pin the reflex thread to.
    pub reflex_core: Option<usize>,
    /// Core to pin the model thread to.
    pub model_core: Option<usize>,
    /// Where to start reading the inputs.
    pub start: StartAt,
    /// Seconds to wait for the input segments to appear.
    pub open_timeout_s: u64,
    /// Stop after this many seconds (unset = run until killed).
    pub max_runtime_s: Option<u64>,
    /// Stop once the inputs were idle this long after data was seen (ms); for tests and replays.
    pub exit_when_idle_ms: Option<u64>,
    /// Records per ring of the output segment (power of two).
    pub output_capacity: usize,
    /// Paper mode (the only mode until exec is integrated): intents become fired decisions only.
    pub paper: bool,
    /// Loopback address of `GET /healthz` (the ops contract: 127.0.0.1:9102); unset = none.
    pub health_addr: Option<std::net::SocketAddr>,
}

impl Default for TradeConfig {
    fn default() -> Self {
        Self {
            inputs: vec!["ringbolt-market".into()],
            output: "ringbolt-decide".into(),
            evaluator: EvaluatorKind::Native,
            model_dir: None,
            reflex_core: None,
            model_core: None,
            start: StartAt::Live,
            open_timeout_s: 30,
            max_runtime_s: None,
            exit_when_idle_ms: None,
            output_capacity: 1 << 20,
            paper: true,
            health_addr: None,
        }
    }
}

/// The whole file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    /// `[trade]`.
    pub trade: TradeConfig,
    /// `[decide]`.
    pub decide: DecideConfig,
    /// `[exec]`: the order path (paper by default). Not serialized (it names key files).
    #[serde(skip_serializing)]
    pub exec: crate::exec::ExecSection,
    /// The other processes' sections of a shared `ringbolt.toml` (`[feeds]`, `[archive]`,
    /// `[cores]`): accepted and ignored here; any other unknown section is an error.
    #[serde(default, skip_serializing)]
    pub feeds: Option<serde::de::IgnoredAny>,
    /// See `feeds`.
    #[serde(default, skip_serializing)]
    pub archive: Option<serde::de::IgnoredAny>,
    /// See `feeds`.
    #[serde(default, skip_serializing)]
    pub cores: Option<serde::de::IgnoredAny>,
}

/// Loads the configuration file.
///
/// # Errors
/// An unreadable file, bad TOML, or an unknown key or section (named in the message).
pub fn load_config(path: &Path) -> Result<FileConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Loads the ensemble for `kind`, or `None` for the baseline.
///
/// # Errors
/// Missing or unreadable models, or a missing ONNX Runtime for `ort`.
pub fn load_ensemble(kind: EvaluatorKind, dir: Option<&Path>) -> Result<Option<Ensemble>> {
    if kind == EvaluatorKind::Baseline {
        return Ok(None);
    }
    let dir = dir.map_or_else(shipped_model_dir, Path::to_path_buf);
    let md =
        ModelDir::load(&dir).with_context(|| format!("loading models from {}", dir.display()))?;
    Ok(Some(Ensemble::load(&md, kind)?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_shipped_shared_config_loads_and_unknown_sections_are_refused() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ami/config/ringbolt.toml");
        let cfg = load_config(&shipped).unwrap();
        assert_eq!(
            cfg.trade.health_addr,
            Some("127.0.0.1:9102".parse().unwrap())
        );
        assert!(cfg.trade.paper, "the shipped config trades on paper");
        let dir = std::env::temp_dir().join(format!("rb-trade-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "[trade]\npaper = true\n\n[trdae]\nx = 1\n").unwrap();
        let err = format!("{:#}", load_config(&bad).unwrap_err());
        assert!(err.contains("trdae"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
