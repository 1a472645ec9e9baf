//! Thread placement: pinning the calling thread to one core, and the real-time scheduling class
//! of hot threads. Every hot thread of every process (ring threads, the reflex and model
//! threads, bench threads) pins through [`pin`]; ring threads and the reflex thread take
//! `SCHED_FIFO` through [`realtime`] when configured (ADR 0030).

/// Pins the calling thread to `core` when asked and possible; returns whether it did.
/// (A thread already confined to the housekeeping cores can still move to its role's core: the
/// mask is set directly, not looked up among the cores the thread may use now.)
pub fn pin(core: Option<usize>) -> bool {
    core.is_some_and(|core| pin_set(&[core]))
}

/// Confines the calling thread to the set `cpus` (a role's whole cpulist, e.g. the housekeeping
/// cores for a process's non-hot threads, which its later threads inherit); an empty set is a
/// no-op. Returns whether it did.
pub fn pin_set(cpus: &[usize]) -> bool {
    if cpus.is_empty() {
        return false;
    }
    // SAFETY: cpu_set_t is plain data; all-zero is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    for &c in cpus.iter().filter(|&&c| c < max) {
        // SAFETY: `c` is below CPU_SETSIZE, so CPU_SET writes inside `set`.
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: `set` is a valid cpu_set_t of the size passed; 0 = the calling thread.
    unsafe {
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &raw const set) == 0
    }
}

/// Confines the calling thread to the cpulist in `var` (see [`pin_set`]); `false` when the
/// variable is unset or unparsable.
pub fn pin_env_set(var: &str) -> bool {
    env_cpus(var).is_some_and(|cpus| pin_set(&cpus))
}

/// The cpulist in environment variable `var`; `None` when unset, empty or unparsable.
#[must_use]
pub fn env_cpus(var: &str) -> Option<Vec<usize>> {
    let cpus = parse_cpulist(&std::env::var(var).ok()?).ok()?;
    (!cpus.is_empty()).then_some(cpus)
}

/// Ids of the cores this thread may run on (its affinity mask), in ascending order.
#[must_use]
pub fn core_ids() -> Vec<usize> {
    let mut ids: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    ids.sort_unstable();
    ids
}

/// Environment variable with the `SCHED_FIFO` priority of hot threads (1-99), used when the
/// configuration does not name one: set by `ringbolt demo --rt-priority` for its children and by
/// the unit's drop-in. Unset, empty or `0` = the normal scheduling class.
pub const RT_PRIORITY_ENV: &str = "RINGBOLT_RT_PRIORITY";

/// The real-time priority a hot thread should take: `configured` (0 = explicitly off), else
/// [`RT_PRIORITY_ENV`]; `None` = stay in the normal class.
///
/// # Errors
/// A value outside 0-99, in the configuration or the variable, as a sentence naming it.
pub fn rt_priority_or_env(configured: Option<u8>) -> Result<Option<u8>, String> {
    let value = match configured {
        Some(p) => p,
        None => match std::env::var(RT_PRIORITY_ENV) {
            Ok(text) if !text.trim().is_empty() => text
                .trim()
                .parse::<u8>()
                .map_err(|e| format!("{RT_PRIORITY_ENV}=`{text}`: not a priority 0-99 ({e})"))?,
            _ => 0,
        },
    };
    match value {
        0 => Ok(None),
        1..=99 => Ok(Some(value)),
        _ => Err(format!(
            "real-time priority {value} is outside 1-99 (0 = normal scheduling)"
        )),
    }
}

/// Puts the calling thread in `SCHED_FIFO` at `priority` (1-99): a woken hot thread then runs
/// at once instead of queueing behind the normal threads on its core (on a 2-vCPU host this is
/// most of a blocking hop's latency; ADR 0030). The kernel's real-time throttling
/// (`kernel.sched_rt_runtime_us`) still leaves the other threads 5 % of each core. The class is
/// set with `SCHED_RESET_ON_FORK`: threads the hot thread spawns later (the pre-signing pool's
/// refill, resolvers) start in the normal class.
///
/// # Errors
/// The kernel's refusal (`EPERM` without `CAP_SYS_NICE` or an `RLIMIT_RTPRIO` allowance).
pub fn realtime(priority: u8) -> std::io::Result<()> {
    assert!(
        (1..=99).contains(&priority),
        "SCHED_FIFO priority {priority}"
    );
    let param = libc::sched_param {
        sched_priority: i32::from(priority),
    };
    // SAFETY: `param` is a valid sched_param that outlives the call; 0 = the calling thread.
    let rc = unsafe {
        libc::sched_setscheduler(
            0,
            libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK,
            &raw const param,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The calling thread's scheduling class as the report spells it: `fifo:<priority>`,
/// `rr:<priority>` or `other`.
#[must_use]
pub fn sched_class() -> String {
    // SAFETY: sched_getscheduler takes a pid only; 0 = the calling thread.
    let policy = unsafe { libc::sched_getscheduler(0) } & !libc::SCHED_RESET_ON_FORK;
    let mut param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid, writable sched_param; 0 = the calling thread.
    let _ = unsafe { libc::sched_getparam(0, &raw mut param) };
    match policy {
        libc::SCHED_FIFO => format!("fifo:{}", param.sched_priority),
        libc::SCHED_RR => format!("rr:{}", param.sched_priority),
        _ => "other".to_owned(),
    }
}

/// [`realtime`] for a hot thread named `role` when `priority` is set: a refusal is logged with
/// the fix and the thread runs on in the normal class. Returns the class the thread is in.
pub fn enter_realtime(role: &str, priority: Option<u8>) -> String {
    if let Some(p) = priority
        && let Err(error) = realtime(p)
    {
        tracing::warn!(
            role,
            priority = p,
            %error,
            "could not enter SCHED_FIFO (needs CAP_SYS_NICE or an RLIMIT_RTPRIO allowance); \
             running in the normal scheduling class"
        );
    }
    sched_class()
}

/// Parses a Linux cpulist (`2-3`, `0,4`, `0-3,8,10-11`), the syntax of the core map's
/// `RINGBOLT_*_CPUS` variables.
///
/// # Errors
/// A part that is not a number or an ascending range, as a sentence naming the list.
pub fn parse_cpulist(text: &str) -> Result<Vec<usize>, String> {
    let num = |s: &str| {
        s.trim()
            .parse::<usize>()
            .map_err(|e| format!("cpulist `{text}`: `{}`: {e}", s.trim()))
    };
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(format!("cpulist `{text}`: descending range `{part}`"));
                }
                out.extend(a..=b);
            }
            None => out.push(num(part)?),
        }
    }
    Ok(out)
}

/// The `index`-th cpu of the cpulist in environment variable `var` (e.g. `RINGBOLT_FEED_CPUS`,
/// exported by the unit's affinity drop-in from the core map); `None` when unset, unparsable
/// or too short.
#[must_use]
pub fn env_cpu(var: &str, index: usize) -> Option<usize> {
    let text = std::env::var(var).ok()?;
    parse_cpulist(&text).ok()?.get(index).copied()
}

#[cfg(test)]
mod cpulist_tests {
    use super::parse_cpulist;

    #[test]
    fn a_thread_confines_itself_to_a_set_it_may_use() {
        let mine = super::core_ids();
        assert!(!super::pin_set(&[]), "an empty set is refused");
        std::thread::spawn(move || {
            assert!(super::pin_set(&mine[..1]));
            assert_eq!(super::core_ids(), mine[..1].to_vec());
        })
        .join()
        .unwrap();
    }

    #[test]
    fn real_time_priorities_come_from_the_config_else_the_environment() {
        assert_eq!(super::rt_priority_or_env(Some(0)), Ok(None));
        assert_eq!(super::rt_priority_or_env(Some(20)), Ok(Some(20)));
        assert!(super::rt_priority_or_env(Some(100)).is_err());
    }

    #[test]
    fn a_thread_enters_sched_fifo_or_says_why_not() {
        std::thread::spawn(|| {
            assert_eq!(super::sched_class(), "other");
            match super::realtime(5) {
                Ok(()) => {
                    assert_eq!(super::sched_class(), "fifo:5");
                    let child = std::thread::spawn(super::sched_class).join().unwrap();
                    assert_eq!(
                        child, "other",
                        "threads it spawns start in the normal class"
                    );
                }
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
                    assert_eq!(super::enter_realtime("test", Some(5)), "other");
                }
            }
        })
        .join()
        .unwrap();
    }

    #[test]
    fn cpulists_parse_as_the_core_map_writes_them() {
        assert_eq!(parse_cpulist("2-3"), Ok(vec![2, 3]));
        assert_eq!(parse_cpulist("0,4"), Ok(vec![0, 4]));
        assert_eq!(parse_cpulist("0,4-5, 8"), Ok(vec![0, 4, 5, 8]));
        assert_eq!(parse_cpulist(""), Ok(vec![]));
        assert!(parse_cpulist("3-1").is_err());
        assert!(parse_cpulist("a").is_err());
        assert!(parse_cpulist("1-x").is_err());
    }
}
