//! Thread placement: pinning the calling thread to one core. Every hot thread of every process
//! (ring threads, the reflex and model threads, bench threads) pins through this one function.

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
