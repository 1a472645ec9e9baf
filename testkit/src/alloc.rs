//! A global allocator that counts the allocations (and reallocations) of each thread.
//!
//! ```ignore
//! #[global_allocator]
//! static GLOBAL: ringbolt_testkit::CountingAlloc = ringbolt_testkit::CountingAlloc;
//!
//! let before = ringbolt_testkit::thread_allocs();
//! hot_path();
//! assert_eq!(ringbolt_testkit::thread_allocs(), before);
//! ```
//!
//! Counts are per thread, so tests running in parallel threads of one process (and helper
//! threads such as a pool's refill thread) do not disturb each other.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

#[inline]
fn count() {
    // `try_with`: the allocator also runs while thread-locals are being torn down.
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

/// Allocations and reallocations made by the calling thread so far.
#[must_use]
pub fn thread_allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

/// Forwards to the system allocator and counts `alloc` / `realloc` calls per thread (see
/// [`thread_allocs`]). Install it with `#[global_allocator]` in a test binary.
#[derive(Clone, Copy, Debug, Default)]
pub struct CountingAlloc;

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; counting
// touches only a thread-local `Cell` (no allocation, no reentrancy into the allocator).
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
