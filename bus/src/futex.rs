//! Thin wrappers over Linux futexes on **shared** (non-private) 32-bit words in a bus segment.
//!
//! The words live in `MAP_SHARED` memory mapped by several processes, so the operations never
//! carry `FUTEX_PRIVATE_FLAG`: the kernel keys them by the backing page, not the address space.
//! Every wait is bounded by a timeout; a spurious or interrupted return is harmless because the
//! callers re-check the rings before and after sleeping.

use core::sync::atomic::AtomicU32;
use std::time::Duration;

/// Most words one [`wait_any`] can sleep on (the kernel's `FUTEX_WAITV_MAX`).
pub const WAITV_MAX: usize = 128;

/// Why a wait returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Woke {
    /// Woken by a `FUTEX_WAKE`, or the word already differed from the expected value.
    Signalled,
    /// The timeout passed.
    TimedOut,
    /// A signal handler ran (or another transient error): re-check and wait again if needed.
    Interrupted,
}

fn timespec(timeout: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(timeout.subsec_nanos()),
    }
}

fn errno_to_woke(rc: libc::c_long) -> Woke {
    if rc >= 0 {
        return Woke::Signalled;
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::EAGAIN) => Woke::Signalled,
        Some(libc::ETIMEDOUT) => Woke::TimedOut,
        _ => Woke::Interrupted,
    }
}

/// Sleeps while `word == expected`, at most `timeout` (`FUTEX_WAIT`, shared).
pub fn wait(word: &AtomicU32, expected: u32, timeout: Duration) -> Woke {
    let ts = timespec(timeout);
    // SAFETY: `word` is a live, aligned 32-bit atomic for the duration of the call; the kernel
    // only reads it. `ts` outlives the call. The unused uaddr2/val3 arguments are null/0.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &raw const ts,
            core::ptr::null::<u32>(),
            0u32,
        )
    };
    errno_to_woke(rc)
}

/// Wakes every process sleeping on `word` (`FUTEX_WAKE`, shared); returns how many woke.
pub fn wake_all(word: &AtomicU32) -> usize {
    // SAFETY: `word` is a live, aligned 32-bit atomic; FUTEX_WAKE does not dereference the
    // timeout/uaddr2 arguments.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            i32::MAX,
            core::ptr::null::<libc::timespec>(),
            core::ptr::null::<u32>(),
            0u32,
        )
    };
    usize::try_from(rc).unwrap_or(0)
}

/// One entry of `futex_waitv(2)` (`struct futex_waitv` of the kernel UAPI).
#[repr(C)]
#[derive(Clone, Copy)]
struct WaitvEntry {
    val: u64,
    uaddr: u64,
    flags: u32,
    reserved: u32,
}

/// `FUTEX2_SIZE_U32` (shared: no `FUTEX2_PRIVATE`).
const FUTEX2_SIZE_U32: u32 = 0x02;

/// Sleeps until any of `words` (word, expected value) differs from its expected value or is
/// woken, at most `timeout` (`futex_waitv`, Linux ≥ 5.16). With one word, or where the kernel
/// lacks `futex_waitv`, it waits on the first word only (the timeout still bounds it). Takes the
/// first [`WAITV_MAX`] words; no allocation.
pub fn wait_any<'a>(
    words: impl IntoIterator<Item = (&'a AtomicU32, u32)>,
    timeout: Duration,
) -> Woke {
    let mut entries = [WaitvEntry {
        val: 0,
        uaddr: 0,
        flags: 0,
        reserved: 0,
    }; WAITV_MAX];
    let mut first = None;
    let mut n = 0;
    for (entry, (word, expected)) in entries.iter_mut().zip(words) {
        first.get_or_insert((word, expected));
        entry.val = u64::from(expected);
        entry.uaddr = word.as_ptr() as u64;
        entry.flags = FUTEX2_SIZE_U32;
        n += 1;
    }
    let Some((word, expected)) = first else {
        std::thread::sleep(timeout);
        return Woke::TimedOut;
    };
    if n == 1 {
        return wait(word, expected, timeout);
    }
    waitv(&entries[..n], timeout).unwrap_or_else(|| wait(word, expected, timeout))
}

/// `futex_waitv` over `entries`; `None` when the kernel does not have it.
fn waitv(entries: &[WaitvEntry], timeout: Duration) -> Option<Woke> {
    // futex_waitv takes an absolute timeout on the given clock.
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid out-pointer for clock_gettime.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut now) };
    let total_ns = u128::try_from(now.tv_nsec).unwrap_or(0) + timeout.as_nanos();
    let abs = libc::timespec {
        tv_sec: now
            .tv_sec
            .saturating_add(libc::time_t::try_from(total_ns / 1_000_000_000).unwrap_or(0)),
        tv_nsec: libc::c_long::try_from(total_ns % 1_000_000_000).unwrap_or(0),
    };
    // SAFETY: `entries` are initialised `struct futex_waitv`s naming live, aligned 32-bit atomics
    // (the caller's borrows keep them mapped); `abs` outlives the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_futex_waitv,
            entries.as_ptr(),
            entries.len() as libc::c_uint,
            0u32,
            &raw const abs,
            libc::CLOCK_MONOTONIC,
        )
    };
    if rc < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS) {
        return None;
    }
    Some(errno_to_woke(rc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn wait_returns_at_once_when_the_word_already_changed() {
        let word = AtomicU32::new(5);
        assert_eq!(wait(&word, 4, Duration::from_secs(5)), Woke::Signalled);
        assert_eq!(
            wait_any([(&word, 4), (&word, 5)], Duration::from_secs(5)),
            Woke::Signalled
        );
    }

    #[test]
    fn wait_times_out_when_nobody_wakes() {
        let word = AtomicU32::new(1);
        let t0 = Instant::now();
        assert_eq!(wait(&word, 1, Duration::from_millis(20)), Woke::TimedOut);
        let other = AtomicU32::new(2);
        assert_eq!(
            wait_any([(&word, 1), (&other, 2)], Duration::from_millis(20)),
            Woke::TimedOut
        );
        assert!(t0.elapsed() >= Duration::from_millis(40));
    }

    #[test]
    fn wake_all_wakes_a_sleeper_on_any_word() {
        let words = Arc::new([AtomicU32::new(0), AtomicU32::new(0)]);
        let w = Arc::clone(&words);
        let sleeper = std::thread::spawn(move || {
            let t0 = Instant::now();
            let woke = wait_any([(&w[0], 0), (&w[1], 0)], Duration::from_secs(10));
            (woke, t0.elapsed())
        });
        // Wake until the sleeper reports (it may not be asleep yet on the first wake).
        while !sleeper.is_finished() {
            words[1].fetch_add(1, core::sync::atomic::Ordering::SeqCst);
            wake_all(&words[1]);
            std::thread::sleep(Duration::from_millis(5));
        }
        let (woke, took) = sleeper.join().expect("sleeper");
        assert_eq!(woke, Woke::Signalled);
        assert!(took < Duration::from_secs(5), "woke after {took:?}");
    }
}
