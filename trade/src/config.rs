//! The trade process's configuration: `[trade]`, `[decide]` and `[exec]` of `ringbolt.toml`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ringbolt_decide::DecideConfig;
use ringbolt_decide::model::{Ensemble, EvaluatorKind, ModelDir, default_model_dir};
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

/// Default of `[trade] idle_spin_us` (measured: docs/BENCHMARKS.md, "The reflex thread's spin
/// after a burst").
pub const DEFAULT_IDLE_SPIN_US: u32 = 100;

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
    /// Model directory; unset = the release's `models/` next to the executable
    /// (`<release>/bin/ringbolt` → `<release>/models`), or a workspace checkout's
    /// `decide/models` above it (development builds).
    pub model_dir: Option<PathBuf>,
    /// ONNX Runtime library for `evaluator = "ort"`; unset = `$ORT_DYLIB_PATH`, else the
    /// release's `lib/libonnxruntime.so*`, else a workspace `.venv`'s onnxruntime wheel.
    pub ort_library: Option<PathBuf>,
    /// Core to pin the reflex thread to.
    pub reflex_core: Option<usize>,
    /// `SCHED_FIFO` priority (1-99) of the reflex thread, 0 = the normal class; unset =
    /// `$RINGBOLT_RT_PRIORITY`, else normal. A woken reflex thread then preempts normal threads
    /// instead of queueing behind them (ADR 0030).
    pub reflex_rt_priority: Option<u8>,
    /// After a record, the reflex thread keeps polling its inputs this long (µs) before it
    /// sleeps on their doorbells: records come in bursts, and one caught while polling costs no
    /// wake-up (≈ 7 µs on the same vCPU, ≈ 40 µs on the other, on the 2-vCPU VM). CPU it may
    /// spend: up to this long per burst. 0 = sleep after the short fixed spin alone — set 0 when
    /// the reflex thread shares a core with a feed ring thread (e.g. the 2-vCPU core map): the
    /// spin would hold that core from the very thread that delivers the next record (ADR 0032).
    pub idle_spin_us: u32,
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
    /// `[trade.paper_exchange]`: the paper exchange run in paper mode (fills, settlement).
    pub paper_exchange: ringbolt_paper::PaperConfig,
    /// Loopback address of `GET /healthz` (the ops contract: 127.0.0.1:9102); unset = none.
    pub health_addr: Option<std::net::SocketAddr>,
    /// Loopback address of `GET /metrics` (`ringbolt_stage_latency_ns`); unset = none.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Directory of the `.hlog` latency dumps (`trade-<UTC start>.hlog`); unset =
    /// `$STATE_DIRECTORY/hlog` under systemd, else no dumps (`/metrics` still has the figures).
    pub hlog_dir: Option<PathBuf>,
    /// Seconds per `.hlog` interval.
    pub hlog_interval_s: u64,
    /// Start a new `.hlog` file past this size, bytes.
    pub hlog_rotate_bytes: u64,
    /// Start a new `.hlog` file past this age, seconds.
    pub hlog_rotate_age_s: u64,
}

impl TradeConfig {
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
}

impl Default for TradeConfig {
    fn default() -> Self {
        Self {
            inputs: vec!["ringbolt-market".into()],
            output: "ringbolt-decide".into(),
            evaluator: EvaluatorKind::Native,
            model_dir: None,
            ort_library: None,
            reflex_core: None,
            reflex_rt_priority: None,
            idle_spin_us: DEFAULT_IDLE_SPIN_US,
            model_core: None,
            start: StartAt::Live,
            open_timeout_s: 30,
            max_runtime_s: None,
            exit_when_idle_ms: None,
            output_capacity: 1 << 20,
            paper: true,
            paper_exchange: ringbolt_paper::PaperConfig::default(),
            health_addr: None,
            metrics_addr: None,
            hlog_dir: None,
            hlog_interval_s: ringbolt_telemetry::DEFAULT_INTERVAL_S,
            hlog_rotate_bytes: ringbolt_telemetry::DEFAULT_ROTATE_BYTES,
            hlog_rotate_age_s: ringbolt_telemetry::DEFAULT_ROTATE_AGE_S,
        }
    }
}

/// The trade process's sections of `ringbolt.toml` (`[trade]`, `[decide]`, `[exec]`). The whole
/// file is one type, `ringbolt_config::RingboltConfig`, loaded by `ringbolt_config::load`; the
/// trade loop takes these sections from its caller.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TradeSections {
    /// `[trade]`.
    pub trade: TradeConfig,
    /// `[decide]`.
    pub decide: DecideConfig,
    /// `[exec]`: the order path (paper by default). Not part of the recorded decision config.
    #[serde(skip_serializing)]
    pub exec: crate::exec::ExecSection,
}

/// `[trade]` keys a replay re-decides with (the rest — ports, cores, timeouts — never change a
/// decision); every `[decide]` key does.
pub const DECISION_TRADE_KEYS: [&str; 4] = ["inputs", "output", "evaluator", "model_dir"];

impl TradeSections {
    /// The decision config as TOML (`[trade]` and `[decide]`; `[exec]` is left out, so no key
    /// path and no key material): what the archive records and `ringbolt replay` defaults to.
    ///
    /// # Errors
    /// A value TOML cannot hold.
    pub fn decision_toml(&self) -> Result<String> {
        Ok(toml::to_string(self)?)
    }

    /// Parses a recorded decision config ([`Self::decision_toml`]); unknown keys are refused.
    ///
    /// # Errors
    /// Bad TOML or an unknown key.
    pub fn from_decision_toml(text: &str) -> Result<TradeSections> {
        Ok(toml::from_str(text)?)
    }

    /// The decision-relevant keys (`section.key`, dotted) whose values differ between `self`
    /// and `other`.
    #[must_use]
    pub fn decision_diff(&self, other: &TradeSections) -> Vec<String> {
        let flat = |s: &TradeSections| {
            let mut out = BTreeMap::new();
            if let Ok(toml::Value::Table(t)) = toml::Value::try_from(s) {
                flatten("", &toml::Value::Table(t), &mut out);
            }
            out.retain(|k: &String, _| {
                k.strip_prefix("trade.").is_none_or(|rest| {
                    DECISION_TRADE_KEYS.contains(&rest) || rest.starts_with("paper_exchange.")
                })
            });
            out
        };
        let (a, b) = (flat(self), flat(other));
        let mut keys: Vec<String> = a.keys().chain(b.keys()).cloned().collect();
        keys.sort();
        keys.dedup();
        keys.retain(|k| a.get(k) != b.get(k));
        keys
    }

    /// The reflex thread's core: `[trade] reflex_core`, else the first cpu of
    /// `$RINGBOLT_REFLEX_CPUS` (the core map's affinity drop-in); `None` = not pinned.
    #[must_use]
    pub fn reflex_core(&self) -> Option<usize> {
        core_or_env(self.trade.reflex_core, "RINGBOLT_REFLEX_CPUS")
    }

    /// The model thread's core: `[trade] model_core`, else the first cpu of
    /// `$RINGBOLT_MODEL_CPUS`; `None` = not pinned.
    #[must_use]
    pub fn model_core(&self) -> Option<usize> {
        core_or_env(self.trade.model_core, "RINGBOLT_MODEL_CPUS")
    }
}

/// The configured core, else the first cpu of the cpulist in `var` (config wins).
fn core_or_env(configured: Option<usize>, var: &str) -> Option<usize> {
    configured.or_else(|| ringbolt_net::affinity::env_cpu(var, 0))
}

/// Flattens a TOML value into dotted keys (leaf values, arrays whole).
fn flatten(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, toml::Value>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => {
            out.insert(prefix.to_owned(), other.clone());
        }
    }
}

/// Loads the ensemble for `kind`, or `None` for the baseline.
///
/// # Errors
/// Missing or unreadable models, or a missing ONNX Runtime for `ort`.
pub fn load_ensemble(kind: EvaluatorKind, dir: Option<&Path>) -> Result<Option<Ensemble>> {
    if kind == EvaluatorKind::Baseline {
        return Ok(None);
    }
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => default_model_dir()?,
    };
    let md =
        ModelDir::load(&dir).with_context(|| format!("loading models from {}", dir.display()))?;
    Ok(Some(Ensemble::load(&md, kind)?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_decision_config_round_trips_and_diffs_by_dotted_key() {
        let mut a = TradeSections::default();
        a.trade.health_addr = Some("127.0.0.1:9102".parse().unwrap());
        a.exec.key_file = Some("/etc/ringbolt/secret.key".into());
        let text = a.decision_toml().unwrap();
        assert!(!text.contains("secret.key"), "{text}");
        let back = TradeSections::from_decision_toml(&text).unwrap();
        assert!(a.decision_diff(&back).is_empty());
        let mut b = back.clone();
        b.trade.health_addr = None; // not a decision key
        b.trade.evaluator = EvaluatorKind::Baseline;
        b.decide.risk.cooldown_ms += 1;
        assert_eq!(
            a.decision_diff(&b),
            vec![
                "decide.risk.cooldown_ms".to_owned(),
                "trade.evaluator".to_owned()
            ]
        );
        assert!(TradeSections::from_decision_toml("[trade]\nevaluatr = \"native\"\n").is_err());
    }

    #[test]
    fn configured_cores_win_over_the_core_map() {
        let mut s = TradeSections::default();
        s.trade.reflex_core = Some(5);
        assert_eq!(s.reflex_core(), Some(5));
        assert_eq!(core_or_env(Some(3), "RINGBOLT_TEST_UNSET_CPUS"), Some(3));
        assert_eq!(core_or_env(None, "RINGBOLT_TEST_UNSET_CPUS"), None);
    }
}
