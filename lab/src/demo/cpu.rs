//! CPU time of the demo's processes from `/proc/<pid>/stat` (utime + stime), across restarts:
//! "blocking means idle" is checked on these figures (trade ≤ 10 % of a core). Also each
//! process's threads by scheduling class, so a report says whether `--rt-priority` took.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{Value, json};

/// CPU nanoseconds (user + system) `pid` has used so far, or `None` when it is gone.
#[must_use]
pub fn cpu_ns(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name (which may hold spaces): state is field 3,
    // utime field 14 and stime field 15 (proc(5)).
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) })
        .ok()
        .filter(|&hz| hz > 0)?;
    Some((utime + stime) * (1_000_000_000 / hz))
}

/// Threads of `pid` by scheduling class (`fifo:<prio>`, `rr:<prio>`, `other`), from
/// `/proc/<pid>/task/*/stat` (fields 40 `rt_priority` and 41 `policy`, proc(5)); empty when
/// the process is gone.
#[must_use]
pub fn thread_classes(pid: u32) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let Some(rest) = stat.rfind(')').and_then(|i| stat.get(i + 2..)) else {
            continue;
        };
        let mut fields = rest.split_ascii_whitespace().skip(37);
        let (Some(prio), Some(policy)) = (fields.next(), fields.next()) else {
            continue;
        };
        let class = match policy.parse::<i32>() {
            Ok(libc::SCHED_FIFO) => format!("fifo:{prio}"),
            Ok(libc::SCHED_RR) => format!("rr:{prio}"),
            _ => "other".to_owned(),
        };
        *out.entry(class).or_insert(0) += 1;
    }
    out
}

#[derive(Debug)]
struct Track {
    pid: u32,
    /// Threads by scheduling class at the last sample.
    sched: BTreeMap<String, usize>,
    first_ns: u64,
    last_ns: u64,
    /// CPU of earlier incarnations (before a restart), ns.
    banked_ns: u64,
}

impl Track {
    fn used_ns(&self) -> u64 {
        self.banked_ns + self.last_ns.saturating_sub(self.first_ns)
    }
}

/// CPU used by each named process since the tracker started (sampled: call [`CpuTracker::sample`]
/// every second or so; a restarted process's earlier incarnation counts up to its last sample).
#[derive(Debug)]
pub struct CpuTracker {
    started: Instant,
    per: BTreeMap<&'static str, Track>,
}

impl Default for CpuTracker {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            per: BTreeMap::new(),
        }
    }
}

impl CpuTracker {
    /// Samples `pids` (name, pid; pid 0 = not running).
    pub fn sample(&mut self, pids: impl IntoIterator<Item = (&'static str, u32)>) {
        for (name, pid) in pids {
            let Some(now_ns) = (pid != 0).then(|| cpu_ns(pid)).flatten() else {
                continue;
            };
            let track = self.per.entry(name).or_insert(Track {
                pid,
                sched: BTreeMap::new(),
                first_ns: now_ns,
                last_ns: now_ns,
                banked_ns: 0,
            });
            if track.pid != pid {
                track.banked_ns = track.used_ns();
                track.pid = pid;
                track.first_ns = 0;
            }
            track.last_ns = now_ns;
            let classes = thread_classes(pid);
            if !classes.is_empty() {
                track.sched = classes;
            }
        }
    }

    /// `{ "wall_s", "load_avg": [1, 5, 15 min], "<name>": { "cpu_s", "core_pct", "sched" } }`
    /// (`sched`: threads by scheduling class at the last sample, e.g. `{"fifo:20": 1, "other": 6}`).
    #[must_use]
    pub fn report(&self) -> Value {
        let wall_s = self.started.elapsed().as_secs_f64();
        let mut out = json!({ "wall_s": wall_s, "load_avg": load_avg() });
        for (name, track) in &self.per {
            let cpu_s = track.used_ns() as f64 / 1e9;
            out[*name] = json!({
                "cpu_s": cpu_s,
                "core_pct": if wall_s > 0.0 { 100.0 * cpu_s / wall_s } else { 0.0 },
                "sched": track.sched,
            });
        }
        out
    }
}

/// The 1, 5 and 15 minute load averages (`/proc/loadavg`).
#[must_use]
pub fn load_avg() -> Vec<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_ascii_whitespace()
        .take(3)
        .filter_map(|x| x.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_time_grows_with_work() {
        let me = std::process::id();
        let before = cpu_ns(me).expect("own stat");
        let t0 = Instant::now();
        let mut x = 0u64;
        while t0.elapsed().as_millis() < 60 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let after = cpu_ns(me).expect("own stat");
        assert!(after >= before + 20_000_000, "{before} -> {after}");
        assert_eq!(cpu_ns(u32::MAX), None);
        assert_eq!(load_avg().len(), 3);
    }

    #[test]
    fn threads_are_counted_by_scheduling_class() {
        let me = std::process::id();
        let before = thread_classes(me);
        assert!(before.values().sum::<usize>() >= 1, "{before:?}");
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            let took = ringbolt_net::affinity::realtime(7).is_ok();
            tx.send(took).unwrap();
            done_rx.recv().unwrap();
        });
        let took = rx.recv().unwrap();
        let during = thread_classes(me);
        if took {
            assert_eq!(during.get("fifo:7"), Some(&1), "{during:?}");
        } else {
            assert!(!during.contains_key("fifo:7"), "{during:?}");
        }
        done_tx.send(()).unwrap();
        t.join().unwrap();
        assert!(thread_classes(u32::MAX).is_empty());
    }
}
