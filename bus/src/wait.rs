//! Wait strategies for consumers: how to idle when a ring is empty.
//!
//! The producer never signals (no futex wake, no syscall on the hot path), so every strategy is
//! a form of polling; they differ in what they do between polls.

use std::time::{Duration, Instant};

use crate::record::Record;
use crate::segment::{Consumer, Poll};

/// How a consumer idles between empty polls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitStrategy {
    /// Never sleep: for hot consumers pinned to isolated cores.
    Spin,
    /// Spin `spins` empty polls, then sleep `park` between polls until data arrives.
    SpinThenPark {
        /// Empty polls before parking.
        spins: u32,
        /// Sleep per parked poll.
        park: Duration,
    },
    /// Sleep `interval` between polls: for the archiver and monitoring.
    Sleep {
        /// Sleep per empty poll.
        interval: Duration,
    },
}

impl Default for WaitStrategy {
    fn default() -> Self {
        WaitStrategy::SpinThenPark {
            spins: 10_000,
            park: Duration::from_micros(50),
        }
    }
}

impl Consumer {
    /// Polls until something other than [`Poll::Empty`] happens or `deadline` passes (then
    /// returns `Poll::Empty`). The loop is bounded by the deadline when one is given.
    pub fn wait(
        &mut self,
        out: &mut Record,
        strategy: WaitStrategy,
        deadline: Option<Instant>,
    ) -> Poll {
        let mut empty_polls: u32 = 0;
        loop {
            let poll = self.poll(out);
            if poll != Poll::Empty {
                return poll;
            }
            empty_polls = empty_polls.saturating_add(1);
            match strategy {
                WaitStrategy::Spin => core::hint::spin_loop(),
                WaitStrategy::SpinThenPark { spins, park } => {
                    if empty_polls < spins {
                        core::hint::spin_loop();
                    } else {
                        std::thread::sleep(park);
                    }
                }
                WaitStrategy::Sleep { interval } => std::thread::sleep(interval),
            }
            // Reading the clock costs ~20 ns; in spin mode do it every 64 polls.
            if let Some(deadline) = deadline {
                let check =
                    !matches!(strategy, WaitStrategy::Spin) || empty_polls.is_multiple_of(64);
                if check && Instant::now() >= deadline {
                    return Poll::Empty;
                }
            }
        }
    }
}
