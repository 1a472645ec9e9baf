//! The soak's fault schedule, built up front from a seed: proxy faults on every route (each
//! venue source's WebSocket route and the CLOB's) and kill -9 of each appliance process at
//! random moments.
//!
//! The schedule is designed so that a gap is announced iff data was lost: connection-ending
//! faults (`drop`, `reset`, `corrupt_tls`, `blackhole`) cost the client its connection, so each
//! connection they hit must show up as exactly one `disconnected` status; the others (`stall`
//! shorter than the collector's stale threshold, `latency` + jitter, a `bandwidth` cap well above
//! the feed's rate) lose nothing and must show up as nothing. A route is not faulted again
//! before its last fault has resolved (reconnect included), and a kill waits until every
//! route is quiet and is followed by a quiet period, so a fault never races a restart.

use std::time::Duration;

use ringbolt_sim::proxy::ProxyFault;

/// What happens at one moment of the soak.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// A proxy fault on a route.
    Proxy(String, ProxyFault),
    /// SIGKILL of a supervised child.
    Kill(&'static str),
}

/// One scheduled action.
#[derive(Clone, Debug)]
pub struct Event {
    /// Offset from the start of the soak.
    pub at: Duration,
    /// What to do.
    pub action: Action,
}

/// Processes the soak kills.
pub const KILLED: [&str; 3] = ["feeds", "trade", "archive"];

/// Seconds without faults at the start (every source connects) and at the end (the last
/// reconnects finish before the processes stop).
const WARM_UP_S: u64 = 40;
const TAIL_S: u64 = 35;
/// Seconds between two fault injections (on different routes).
const SPACING_S: u64 = 3;
/// Quiet seconds after a kill: the restart, every source's reconnect.
const KILL_QUIET_S: u64 = 20;

/// Connection-ending faults, in the order the first pass gives them to the routes.
const LOSS: [ProxyFault; 4] = [
    ProxyFault::Drop,
    ProxyFault::Reset,
    ProxyFault::CorruptTls,
    ProxyFault::BlackHole,
];

/// Faults that lose nothing.
const BENIGN: [ProxyFault; 3] = [
    ProxyFault::Stall { ms: 1500 },
    ProxyFault::Latency {
        ms: 20,
        jitter_ms: 15,
    },
    ProxyFault::Bandwidth {
        bytes_per_s: 4 << 20,
    },
];

/// How long a route stays busy after `fault` (resolution and reconnect): a black hole is only
/// noticed after the collector's `reconnect_after` (`blackhole_s`).
fn busy_s(fault: ProxyFault, blackhole_s: u64) -> u64 {
    match fault {
        ProxyFault::BlackHole => blackhole_s,
        ProxyFault::Latency { .. } | ProxyFault::Bandwidth { .. } => 15,
        _ => 8,
    }
}

/// A tiny seeded generator (xorshift64*), enough for picking moments.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeded; any seed works.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

/// The fault to give `route_index` on its `pass`-th turn: the first pass loses data on every
/// route (every venue and the CLOB see a reconnect early); later passes alternate benign and
/// loss faults, rotating kinds across routes.
fn fault_for(route_index: usize, pass: usize) -> ProxyFault {
    if pass.is_multiple_of(2) {
        LOSS[(route_index + pass / 2) % LOSS.len()]
    } else {
        BENIGN[(route_index + pass / 2) % BENIGN.len()]
    }
}

/// The kill-free tail of a soak of `total_s` seconds: a third of runs of 30 minutes or more, so
/// each process's last incarnation runs long enough (≥ 10 min) to judge its RSS and fds flat;
/// none for shorter runs (the CI soak kills anywhere). Proxy faults go on through the tail.
#[must_use]
pub fn default_calm_tail_s(total_s: u64) -> u64 {
    if total_s >= 30 * 60 { total_s / 3 } else { 0 }
}

/// What a schedule is built from.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Run length (s).
    pub total_s: u64,
    /// Kills per process, at random moments.
    pub kills_each: u32,
    /// No kill starts in the last `calm_tail_s` seconds (proxy faults go on).
    pub calm_tail_s: u64,
    /// How long a black hole takes to be noticed (s).
    pub blackhole_s: u64,
    /// Seed of the random kill moments.
    pub seed: u64,
}

/// Builds the schedule of `plan` over `routes`.
#[must_use]
pub fn build(routes: &[String], plan: Plan) -> Vec<Event> {
    let Plan {
        total_s,
        kills_each,
        calm_tail_s,
        blackhole_s,
        seed,
    } = plan;
    let mut rng = Rng::new(seed);
    let end = total_s.saturating_sub(TAIL_S);
    // Kill moments leave room for every kill's quiet period and a black hole's wait before it,
    // and stay out of the calm tail.
    let n_kills = u64::from(kills_each) * KILLED.len() as u64;
    let span = end
        .saturating_sub(calm_tail_s)
        .saturating_sub(WARM_UP_S + n_kills * KILL_QUIET_S + blackhole_s)
        .max(1);
    let mut kills: Vec<(u64, &'static str)> = KILLED
        .iter()
        .flat_map(|c| (0..kills_each).map(move |_| *c))
        .map(|c| (WARM_UP_S + rng.below(span), c))
        .collect();
    kills.sort_unstable();
    let mut events = Vec::new();
    let mut busy_until = vec![0u64; routes.len()];
    let mut turns = vec![0usize; routes.len()];
    let mut next_route = 0usize;
    let mut t = WARM_UP_S;
    let mut k = 0;
    while t < end {
        if k < kills.len() && t >= kills[k].0 {
            // Wait for every route to be quiet, then kill and stay quiet.
            t = t.max(busy_until.iter().copied().max().unwrap_or(0));
            if t + KILL_QUIET_S > end {
                break;
            }
            events.push(Event {
                at: Duration::from_secs(t),
                action: Action::Kill(kills[k].1),
            });
            k += 1;
            t += KILL_QUIET_S;
            continue;
        }
        let i = next_route;
        next_route = (next_route + 1) % routes.len().max(1);
        if routes.is_empty() || busy_until[i] > t {
            t += 1;
            continue;
        }
        let fault = fault_for(i, turns[i]);
        let busy = busy_s(fault, blackhole_s);
        if t + busy > end {
            t += SPACING_S;
            continue;
        }
        turns[i] += 1;
        busy_until[i] = t + busy;
        events.push(Event {
            at: Duration::from_secs(t),
            action: Action::Proxy(routes[i].clone(), fault),
        });
        if matches!(
            fault,
            ProxyFault::Latency { .. } | ProxyFault::Bandwidth { .. }
        ) {
            events.push(Event {
                at: Duration::from_secs(t + busy - 3),
                action: Action::Proxy(routes[i].clone(), ProxyFault::Clear),
            });
        }
        t += SPACING_S;
    }
    events.sort_by_key(|e| e.at);
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes() -> Vec<String> {
        (0..15).map(|i| format!("r{i}")).collect()
    }

    fn plan(total_s: u64, kills_each: u32, calm_tail_s: u64, seed: u64) -> Plan {
        Plan {
            total_s,
            kills_each,
            calm_tail_s,
            blackhole_s: 22,
            seed,
        }
    }

    #[test]
    fn an_hour_leaves_its_last_third_without_kills_but_not_without_faults() {
        let r = routes();
        let calm_s = default_calm_tail_s(3600);
        assert_eq!(calm_s, 1200);
        assert_eq!(default_calm_tail_s(230), 0);
        for seed in 0..50 {
            let ev = build(&r, plan(3600, 3, calm_s, seed));
            let kills: Vec<u64> = ev
                .iter()
                .filter(|e| matches!(e.action, Action::Kill(_)))
                .map(|e| e.at.as_secs())
                .collect();
            assert_eq!(kills.len(), 9, "seed {seed}");
            // A kill may wait for busy routes (a black hole's reconnect) past its drawn moment.
            let last_allowed = 3600 - TAIL_S - calm_s + 22 + SPACING_S;
            assert!(
                kills.iter().all(|&t| t <= last_allowed),
                "seed {seed}: kills {kills:?} reach into the calm tail"
            );
            assert!(
                ev.iter().any(|e| e.at.as_secs() > 3600 - calm_s / 2
                    && matches!(&e.action, Action::Proxy(_, f) if f.ends_connection())),
                "seed {seed}: no connection-ending fault in the calm tail"
            );
        }
    }

    #[test]
    fn a_short_soak_hits_every_route_with_a_loss_and_kills_every_process() {
        let r = routes();
        let ev = build(&r, plan(230, 1, 0, 7));
        for route in &r {
            assert!(
                ev.iter().any(|e| matches!(&e.action,
                    Action::Proxy(x, f) if x == route && f.ends_connection())),
                "{route} never lost its connection"
            );
        }
        for c in KILLED {
            assert_eq!(
                ev.iter().filter(|e| e.action == Action::Kill(c)).count(),
                1,
                "{c}"
            );
        }
        assert!(
            ev.iter()
                .all(|e| e.at.as_secs() >= WARM_UP_S && e.at.as_secs() <= 230 - TAIL_S)
        );
    }

    #[test]
    fn kills_never_overlap_a_route_fault_and_routes_are_not_refaulted_while_busy() {
        let r = routes();
        let ev = build(&r, plan(3600, 3, 0, 11));
        let mut busy: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
        let mut quiet_until = 0;
        for e in &ev {
            let t = e.at.as_secs();
            match &e.action {
                Action::Kill(_) => {
                    assert!(
                        busy.values().all(|&b| b <= t),
                        "kill at {t} while a route is busy"
                    );
                    quiet_until = t + KILL_QUIET_S;
                }
                Action::Proxy(route, f) if *f != ProxyFault::Clear => {
                    assert!(
                        t >= quiet_until,
                        "fault at {t} inside a kill's quiet period"
                    );
                    let b = busy.entry(route.as_str()).or_insert(0);
                    assert!(*b <= t, "{route} refaulted at {t} while busy until {b}");
                    *b = t + busy_s(*f, 22);
                }
                Action::Proxy(..) => {}
            }
        }
        assert_eq!(
            ev.iter()
                .filter(|e| matches!(e.action, Action::Kill(_)))
                .count(),
            9
        );
        assert!(ev.len() > 300, "{}", ev.len());
    }
}
