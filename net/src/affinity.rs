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
