//! A small process supervisor: start children in order, restart a crashed one with exponential
//! backoff, stop everything in reverse order (SIGTERM, then SIGKILL after a grace period) and reap
//! every child. No child is ever left behind: `Drop` kills and reaps whatever still runs.

use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;

/// What to run and how.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Short name (`emulate`, `feeds`, …); also the log file's stem.
    pub name: &'static str,
    /// Program.
    pub program: PathBuf,
    /// Arguments.
    pub args: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Where stdout and stderr go (appended across restarts).
    pub log: PathBuf,
}

/// Per-child facts for the report.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ChildReport {
    /// Times the child was (re)started after a crash.
    pub restarts: u32,
    /// Exit statuses of unexpected exits, as text.
    pub crashes: Vec<String>,
    /// Current pid (0 when not running).
    pub pid: u32,
}

#[derive(Debug)]
struct Slot {
    spec: Spec,
    child: Option<Child>,
    report: ChildReport,
    backoff: Duration,
    restart_at: Option<Instant>,
}

/// Supervises an ordered set of children.
#[derive(Debug, Default)]
pub struct Supervisor {
    slots: Vec<Slot>,
    stopping: bool,
}

const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(8);

fn open_log(path: &PathBuf) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening log {}", path.display()))
}

fn spawn(spec: &Spec) -> Result<Child> {
    let out = open_log(&spec.log)?;
    let err = out.try_clone()?;
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    cmd.spawn()
        .with_context(|| format!("starting {} ({})", spec.name, spec.program.display()))
}

impl Supervisor {
    /// Starts `spec` now and supervises it from then on.
    pub fn start(&mut self, spec: Spec) -> Result<u32> {
        let child = spawn(&spec)?;
        let pid = child.id();
        tracing::info!(name = spec.name, pid, "started");
        self.slots.push(Slot {
            spec,
            child: Some(child),
            report: ChildReport {
                pid,
                ..ChildReport::default()
            },
            backoff: BACKOFF_MIN,
            restart_at: None,
        });
        Ok(pid)
    }

    /// Reaps exited children and restarts crashed ones whose backoff elapsed. Call often.
    pub fn tick(&mut self) {
        if self.stopping {
            return;
        }
        let now = Instant::now();
        for slot in &mut self.slots {
            if let Some(child) = &mut slot.child {
                match child.try_wait() {
                    Ok(None) => {
                        // Healthy for a while: forget old backoff.
                        continue;
                    }
                    Ok(Some(status)) => {
                        tracing::warn!(name = slot.spec.name, %status, "child exited; restarting after {:?}", slot.backoff);
                        slot.report.crashes.push(status.to_string());
                        slot.report.pid = 0;
                        slot.child = None;
                        slot.restart_at = Some(now + slot.backoff);
                        slot.backoff = (slot.backoff * 2).min(BACKOFF_MAX);
                    }
                    Err(e) => tracing::warn!(name = slot.spec.name, "try_wait: {e}"),
                }
            }
            if slot.child.is_none() && slot.restart_at.is_some_and(|t| now >= t) {
                match spawn(&slot.spec) {
                    Ok(child) => {
                        slot.report.restarts += 1;
                        slot.report.pid = child.id();
                        tracing::info!(name = slot.spec.name, pid = child.id(), "restarted");
                        slot.child = Some(child);
                        slot.restart_at = None;
                    }
                    Err(e) => {
                        tracing::warn!(name = slot.spec.name, "restart failed: {e:#}");
                        slot.restart_at = Some(now + slot.backoff);
                        slot.backoff = (slot.backoff * 2).min(BACKOFF_MAX);
                    }
                }
            }
        }
    }

    /// Current pid of `name` (0 when not running).
    pub fn pid(&self, name: &str) -> u32 {
        self.slots
            .iter()
            .find(|s| s.spec.name == name)
            .map_or(0, |s| s.report.pid)
    }

    /// Reports by child name.
    pub fn reports(&self) -> Vec<(&'static str, ChildReport)> {
        self.slots
            .iter()
            .map(|s| (s.spec.name, s.report.clone()))
            .collect()
    }

    /// Stops the named child (SIGTERM, then SIGKILL after `grace`), without restarting it.
    pub fn stop_one(&mut self, name: &str, grace: Duration) {
        if let Some(slot) = self.slots.iter_mut().find(|s| s.spec.name == name) {
            slot.restart_at = None;
            if let Some(child) = slot.child.take() {
                terminate(slot.spec.name, child, grace);
            }
            slot.report.pid = 0;
        }
    }

    /// Stops every child in reverse start order and reaps them.
    pub fn shutdown(&mut self, grace: Duration) {
        self.stopping = true;
        for slot in self.slots.iter_mut().rev() {
            slot.restart_at = None;
            if let Some(child) = slot.child.take() {
                terminate(slot.spec.name, child, grace);
            }
            slot.report.pid = 0;
        }
    }
}

fn terminate(name: &str, mut child: Child, grace: Duration) {
    let pid = child.id() as libc::pid_t;
    // SAFETY: plain kill(2) on a pid we spawned and have not reaped yet (so it is still ours).
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + grace;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                tracing::info!(name, %status, "stopped");
                return;
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => break,
        }
    }
    tracing::warn!(name, "did not stop within {grace:?}; killing");
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.shutdown(Duration::from_secs(2));
    }
}
