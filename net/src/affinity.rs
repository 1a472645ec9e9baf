//! Thread placement: pinning the calling thread to one core. Every hot thread of every process
//! (ring threads, the reflex and model threads, bench threads) pins through this one function.

/// Pins the calling thread to `core` when asked and possible; returns whether it did.
pub fn pin(core: Option<usize>) -> bool {
    let Some(core) = core else { return false };
    core_affinity::get_core_ids()
        .and_then(|ids| ids.into_iter().find(|id| id.id == core))
        .is_some_and(core_affinity::set_for_current)
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
