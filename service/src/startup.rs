//! Start-up checks (Firedancer style): before a process reports `READY=1` it verifies the things
//! that would make it run wrong rather than fail — its threads on the cores the core map gives
//! their role, memory locked where configured, the host's `ringbolt-tune check` verdict good
//! enough for its mode, and (trade) its model loaded with the matching feature schema. Each check
//! is recorded by name; a failed one stops start-up with an error naming the check and the fix,
//! and `GET /healthz` lists every recorded check with its detail.
//!
//! The checks run once, at start-up: nothing here is on a hot path.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// `[startup]` of `ringbolt.toml`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StartupConfig {
    /// The JSON verdict `ringbolt-tune check` writes (`/var/lib/ringbolt-tune/check.json` on
    /// the appliance); unset = the tuning check is skipped (development boxes, tests).
    pub tune_check: Option<PathBuf>,
    /// Start a spinning process on a host that is not fully configured (as `--force` does).
    pub allow_untuned: bool,
    /// `mlockall(MCL_CURRENT | MCL_FUTURE)` before READY (needs `LimitMEMLOCK=infinity`).
    pub lock_memory: bool,
}

/// How a process waits for work, which decides the tuning verdict it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Busy-polls a core: needs isolated cores (`fully configured`), unless forced.
    Spin,
    /// Sleeps in the kernel: any verdict is accepted and reported.
    Block,
}

/// One recorded start-up check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Check name (`tune`, `memory`, `threads`, `model`).
    pub name: String,
    /// Passed.
    pub ok: bool,
    /// What was found (or what is wrong and the fix).
    pub detail: String,
}

static CHECKS: Mutex<Vec<Check>> = Mutex::new(Vec::new());

/// Serialises the tests that record checks (the registry is process-wide).
#[cfg(test)]
pub(crate) static TEST_LOCK: Mutex<()> = Mutex::new(());

/// Records the outcome of check `name` (replacing an earlier one of the same name) and turns a
/// failure into a start-up error naming the check.
///
/// # Errors
/// `outcome` is `Err`: "start-up check `name` failed: …".
pub fn require(name: &str, outcome: Result<String, String>) -> anyhow::Result<()> {
    let (ok, detail) = match outcome {
        Ok(d) => (true, d),
        Err(d) => (false, d),
    };
    if ok {
        tracing::info!(check = name, %detail, "start-up check passed");
    }
    if let Ok(mut checks) = CHECKS.lock() {
        checks.retain(|c| c.name != name);
        checks.push(Check {
            name: name.to_owned(),
            ok,
            detail: detail.clone(),
        });
    }
    if ok {
        Ok(())
    } else {
        anyhow::bail!("start-up check `{name}` failed: {detail}")
    }
}

/// Every check recorded so far, in order.
#[must_use]
pub fn checks() -> Vec<Check> {
    CHECKS.lock().map(|c| c.clone()).unwrap_or_default()
}

/// True when no recorded check failed.
#[must_use]
pub fn all_passed() -> bool {
    checks().iter().all(|c| c.ok)
}

/// The host's tuning verdict against the process's mode: reads the `verdict` of
/// `ringbolt-tune check`'s JSON. Spin mode needs `fully configured` unless `force`.
///
/// # Errors
/// Spin mode on a host that is not fully configured (or whose check file is missing), unforced.
pub fn tune_verdict(path: Option<&Path>, mode: Mode, force: bool) -> Result<String, String> {
    let Some(path) = path else {
        return Ok("skipped: [startup] tune_check is unset".into());
    };
    let verdict = match std::fs::read_to_string(path) {
        Ok(text) => match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(v) => v["verdict"].as_str().unwrap_or("no verdict").to_owned(),
            Err(e) => format!("unreadable ({e})"),
        },
        Err(e) => format!("no check file ({e})"),
    };
    let at = path.display();
    match (mode, verdict.as_str(), force) {
        (Mode::Block, _, _) => Ok(format!("{verdict} ({at}); block mode accepts any verdict")),
        (Mode::Spin, "fully configured", _) => Ok(format!("{verdict} ({at})")),
        (Mode::Spin, _, true) => Ok(format!(
            "{verdict} ({at}); spin mode on an untuned host accepted by --force / [startup] allow_untuned"
        )),
        (Mode::Spin, _, false) => Err(format!(
            "host is `{verdict}` ({at}) and this process spins: it needs `fully configured` \
             (ringbolt-tune apply, then the reboot docs/runbook.md asks for; see `ringbolt-tune check`), \
             or start it with --force / [startup] allow_untuned = true"
        )),
    }
}

/// Locks the process's memory (current and future mappings) when `configured`.
///
/// # Errors
/// `mlockall` refused (usually `RLIMIT_MEMLOCK`), naming the fix.
pub fn lock_memory(configured: bool) -> Result<String, String> {
    if !configured {
        return Ok("not configured ([startup] lock_memory = false)".into());
    }
    // SAFETY: mlockall takes flags only and changes no memory contents.
    let rc = unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!(
            "mlockall: {e}: raise RLIMIT_MEMLOCK (the units set LimitMEMLOCK=infinity) or set [startup] lock_memory = false"
        ));
    }
    let locked = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmLck:"))
                .map(|l| l["VmLck:".len()..].trim().to_owned())
        })
        .unwrap_or_else(|| "?".into());
    Ok(format!("mlockall(MCL_CURRENT|MCL_FUTURE): VmLck {locked}"))
}

/// The cpus thread `tid` of this process may run on (`sched_getaffinity`; 0 = the caller).
///
/// # Errors
/// The thread is gone or the call failed.
pub fn thread_cpus(tid: i32) -> std::io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is plain data; all-zero is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; the kernel writes only into it.
    let rc =
        unsafe { libc::sched_getaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: CPU_ISSET reads the set within its size (cpu < CPU_SETSIZE).
    Ok((0..max)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect())
}

/// This process's threads: (tid, name), from `/proc/self/task`.
#[must_use]
pub fn threads() -> Vec<(i32, String)> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let mut out: Vec<(i32, String)> = dir
        .filter_map(Result::ok)
        .filter_map(|e| {
            let tid: i32 = e.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
            Some((tid, comm.trim().to_owned()))
        })
        .collect();
    out.sort_unstable();
    out
}

/// Which threads a placement rule covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    /// The process's main thread (trade's reflex loop).
    Main,
    /// Threads whose name starts with this (`ring-`, `decide-model`).
    Named(&'static str),
}

/// One role of a process: its threads must run only on `cpus` (the role's `RINGBOLT_*_CPUS`);
/// `None` = the role is not pinned here (variable unset), so its threads are not checked.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Role name for messages (`feed_rings`, `reflex`, `model`).
    pub role: &'static str,
    /// The threads.
    pub who: Who,
    /// The role's cores.
    pub cpus: Option<Vec<usize>>,
    /// At least this many threads must match (the process started them).
    pub min_threads: usize,
}

/// Threads the kernel starts on behalf of a thread (io_uring workers): they follow the thread
/// that created their ring, so they are not checked against housekeeping.
const KERNEL_HELPERS: [&str; 2] = ["iou-wrk-", "iou-sqp-"];

/// Verifies with `sched_getaffinity` that every thread of the process runs where the core map
/// says: each rule's threads on its role's cores, every other thread on `housekeeping` (when
/// given). Threads pin themselves as they start, so this retries for up to `wait`.
///
/// # Errors
/// The last mismatch found when `wait` ran out, naming thread, tid, cpus and the expected role.
pub fn verify_placement(
    rules: &[Rule],
    housekeeping: Option<&[usize]>,
    wait: Duration,
) -> Result<String, String> {
    let deadline = Instant::now() + wait;
    loop {
        let outcome = placement_once(rules, housekeeping, &threads());
        if outcome.is_ok() || Instant::now() >= deadline {
            return outcome;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One pass of [`verify_placement`] over `threads` ((tid, name)).
///
/// # Errors
/// See [`verify_placement`].
pub fn placement_once(
    rules: &[Rule],
    housekeeping: Option<&[usize]>,
    threads: &[(i32, String)],
) -> Result<String, String> {
    let pid = i32::try_from(std::process::id()).unwrap_or(0);
    let mut matched = vec![0usize; rules.len()];
    let mut placed = Vec::new();
    let mut others = 0usize;
    for (tid, name) in threads {
        let rule = rules.iter().position(|r| match r.who {
            Who::Main => *tid == pid,
            Who::Named(prefix) => name.starts_with(prefix),
        });
        let cpus = thread_cpus(*tid).map_err(|e| format!("sched_getaffinity({tid}): {e}"))?;
        match rule {
            Some(i) => {
                matched[i] += 1;
                let Some(want) = &rules[i].cpus else { continue };
                if cpus.is_empty() || !cpus.iter().all(|c| want.contains(c)) {
                    return Err(format!(
                        "thread {name} (tid {tid}) runs on cpus {} but role {} has {}",
                        cpulist(&cpus),
                        rules[i].role,
                        cpulist(want)
                    ));
                }
                placed.push(format!("{name}@{}", cpulist(&cpus)));
            }
            None if KERNEL_HELPERS.iter().any(|p| name.starts_with(p)) => {}
            None => {
                others += 1;
                if let Some(hk) = housekeeping
                    && !cpus.iter().all(|c| hk.contains(c))
                {
                    return Err(format!(
                        "thread {name} (tid {tid}) runs on cpus {} outside housekeeping {}",
                        cpulist(&cpus),
                        cpulist(hk)
                    ));
                }
            }
        }
    }
    for (rule, n) in rules.iter().zip(&matched) {
        if *n < rule.min_threads {
            return Err(format!(
                "role {}: {n} thread(s) found, expected at least {}",
                rule.role, rule.min_threads
            ));
        }
    }
    let unpinned: Vec<&str> = rules
        .iter()
        .filter(|r| r.cpus.is_none())
        .map(|r| r.role)
        .collect();
    let hk = housekeeping.map_or_else(|| "not confined (no housekeeping cpus)".into(), cpulist);
    let mut detail = format!("{}; {others} other thread(s) on {hk}", placed.join(" "));
    if !unpinned.is_empty() {
        detail.push_str(&format!(
            "; not pinned (no core map): {}",
            unpinned.join(", ")
        ));
    }
    Ok(detail)
}

/// Formats cpus as a cpulist (`0-1,4`).
#[must_use]
pub fn cpulist(cpus: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let start = cpus[i];
        while i + 1 < cpus.len() && cpus[i + 1] == cpus[i] + 1 {
            i += 1;
        }
        out.push(if cpus[i] == start {
            start.to_string()
        } else {
            format!("{start}-{}", cpus[i])
        });
        i += 1;
    }
    if out.is_empty() {
        "(none)".into()
    } else {
        out.join(",")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tmp(name: &str, text: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("rb-startup-{}-{name}", std::process::id()));
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn spin_mode_needs_a_fully_configured_host_unless_forced() {
        let good = tmp("good.json", r#"{"verdict": "fully configured"}"#);
        let partial = tmp("partial.json", r#"{"verdict": "partially configured"}"#);
        assert!(tune_verdict(Some(&good), Mode::Spin, false).is_ok());
        let err = tune_verdict(Some(&partial), Mode::Spin, false).unwrap_err();
        assert!(
            err.contains("partially configured") && err.contains("--force"),
            "{err}"
        );
        assert!(
            tune_verdict(Some(&partial), Mode::Spin, true)
                .unwrap()
                .contains("--force")
        );
        assert!(tune_verdict(Some(&partial), Mode::Block, false).is_ok());
        let missing = Path::new("/nonexistent/ringbolt/check.json");
        let err = tune_verdict(Some(missing), Mode::Spin, false).unwrap_err();
        assert!(err.contains("no check file"), "{err}");
        assert!(
            tune_verdict(None, Mode::Spin, false)
                .unwrap()
                .starts_with("skipped")
        );
        for p in [good, partial] {
            let _ = std::fs::remove_file(p);
        }
    }

    #[test]
    fn a_failed_check_is_a_named_error_and_is_listed() {
        let _serial = TEST_LOCK.lock();
        require("unit-ok", Ok("fine".into())).unwrap();
        let err = require("unit-bad", Err("broken: fix it".into())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "start-up check `unit-bad` failed: broken: fix it"
        );
        let all = checks();
        assert!(all.iter().any(|c| c.name == "unit-ok" && c.ok));
        assert!(all.iter().any(|c| c.name == "unit-bad" && !c.ok));
        require("unit-bad", Ok("fixed".into())).unwrap();
        assert!(checks().iter().any(|c| c.name == "unit-bad" && c.ok));
    }

    #[test]
    fn memory_locking_is_reported_or_refused_with_the_fix() {
        assert!(lock_memory(false).unwrap().starts_with("not configured"));
        // Locking may be refused by RLIMIT_MEMLOCK here: either way the outcome names it.
        match lock_memory(true) {
            Ok(d) => assert!(d.contains("VmLck"), "{d}"),
            Err(e) => assert!(e.contains("RLIMIT_MEMLOCK"), "{e}"),
        }
        // SAFETY: munlockall takes no arguments; undoing the test's lock.
        unsafe { libc::munlockall() };
    }

    #[test]
    fn placement_finds_a_thread_off_its_role_cores() {
        let mine = thread_cpus(0).unwrap();
        assert!(!mine.is_empty());
        let pid = i32::try_from(std::process::id()).unwrap();
        let me = vec![(pid, "main".to_owned())];
        let rule = |cpus: Option<Vec<usize>>| Rule {
            role: "reflex",
            who: Who::Main,
            cpus,
            min_threads: 1,
        };
        // The main thread's own mask satisfies a role with exactly those cpus...
        assert!(placement_once(&[rule(Some(mine.clone()))], None, &me).is_ok());
        // ...and not a role on a cpu it does not own (unless it owns them all).
        let elsewhere = vec![mine.iter().max().unwrap() + 1];
        let err = placement_once(&[rule(Some(elsewhere))], None, &me).unwrap_err();
        assert!(err.contains("role reflex"), "{err}");
        // An unpinned role is reported, not checked; a missing role thread is an error.
        assert!(
            placement_once(&[rule(None)], None, &me)
                .unwrap()
                .contains("not pinned")
        );
        let named = Rule {
            role: "model",
            who: Who::Named("no-such-thread"),
            cpus: None,
            min_threads: 1,
        };
        assert!(
            placement_once(&[named], None, &me)
                .unwrap_err()
                .contains("role model")
        );
        // Other threads must stay on housekeeping.
        let err = placement_once(&[], Some(&[usize::MAX]), &me).unwrap_err();
        assert!(err.contains("outside housekeeping"), "{err}");
    }

    #[test]
    fn cpulists_format_as_the_core_map_writes_them() {
        assert_eq!(cpulist(&[0, 1, 2, 4, 6, 7]), "0-2,4,6-7");
        assert_eq!(cpulist(&[3]), "3");
        assert_eq!(cpulist(&[]), "(none)");
    }
}
