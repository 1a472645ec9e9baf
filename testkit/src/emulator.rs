//! A venue emulator (`ringbolt-sim`) running on its own runtime for the length of a test, with
//! blocking access to its control port. Feature `emulator`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use ringbolt_sim::config::VenueConfig;
use ringbolt_sim::{Emulator, EmulatorConfig, StartInfo};
use serde_json::Value;

static STARTED: AtomicU64 = AtomicU64::new(0);

/// A running emulator; shut down (announced, then stopped) when dropped.
#[derive(Debug)]
pub struct RunningEmulator {
    rt: tokio::runtime::Runtime,
    emu: Option<Emulator>,
    /// Where it listens: ports, URLs, the CA file.
    pub info: StartInfo,
    /// The control port's `host:port`.
    pub control: String,
    /// The CA certificate (PEM) its TLS servers chain to.
    pub ca_pem: Vec<u8>,
}

impl RunningEmulator {
    /// Starts an emulator serving `venues` (names as in `EmulatorConfig::venues`, e.g.
    /// `polymarket`, `clob`, `binance_spot`), its certificates in a fresh directory named after
    /// `tag`; `tweak` adjusts the configuration before the start.
    ///
    /// # Panics
    /// When the runtime or the emulator cannot start.
    #[must_use]
    pub fn start(tag: &str, venues: &[&str], tweak: impl FnOnce(&mut EmulatorConfig)) -> Self {
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let venues: BTreeMap<String, VenueConfig> = venues
            .iter()
            .map(|v| ((*v).to_string(), VenueConfig::default()))
            .collect();
        let mut cfg = EmulatorConfig {
            cert_dir: crate::fs::tempdir("ringbolt-emulator", &format!("{tag}-{n}")),
            venues,
            ..EmulatorConfig::default()
        };
        tweak(&mut cfg);
        Self::with_config(cfg, 1)
    }

    /// Starts an emulator from a whole configuration (as `ringbolt-lab emulate --config` reads
    /// it) on a runtime of `worker_threads` threads.
    ///
    /// # Panics
    /// When the runtime or the emulator cannot start.
    #[must_use]
    pub fn with_config(cfg: EmulatorConfig, worker_threads: usize) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(worker_threads)
            .enable_all()
            .build()
            .unwrap();
        let emu = rt.block_on(Emulator::start(cfg)).unwrap();
        let info = emu.info.clone();
        let ca_pem = std::fs::read(&info.ca_pem).unwrap();
        let control = info.control_url.trim_start_matches("http://").to_string();
        RunningEmulator {
            rt,
            emu: Some(emu),
            info,
            control,
            ca_pem,
        }
    }

    /// The Polymarket + CLOB emulator the order-path tests use.
    #[must_use]
    pub fn clob(tag: &str) -> Self {
        Self::start(tag, &["polymarket", "clob"], |_| {})
    }

    /// The CLOB port (panics when the CLOB is not served).
    #[must_use]
    pub fn clob_port(&self) -> u16 {
        self.info.clob.as_ref().unwrap().addr.port()
    }

    /// A control-port request; its JSON answer (`Null` when not JSON).
    #[must_use]
    pub fn control(&self, method: &str, target: &str) -> Value {
        crate::http::request(self.control.as_str(), method, target).json()
    }

    /// The market windows (`GET /windows`).
    #[must_use]
    pub fn windows(&self) -> Value {
        self.control("GET", "/windows")
    }

    /// Injects a fault (`POST /fault?venue=<venue>&<query>`), asserting it was accepted.
    ///
    /// # Panics
    /// When the emulator refuses it.
    pub fn fault(&self, venue: &str, query: &str) {
        let v = self.control("POST", &format!("/fault?venue={venue}&{query}"));
        assert_eq!(v["ok"], true, "{v}");
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        if let Some(e) = self.emu.take() {
            self.rt.block_on(e.shutdown());
        }
    }
}
