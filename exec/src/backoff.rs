//! Back-off after the venue says "not now" (sans-IO): HTTP 425 (matching engine restarting),
//! 429 (rate limited), 503 (trading disabled / cancel-only).
//!
//! The delay is `Retry-After` (delta-seconds) when the venue gives one, else exponential:
//! `base × 2^(n−1)` for the n-th refusal in a row, capped at `max`. Any other response resets
//! the streak. While backing off the risk gate refuses new orders
//! ([`crate::risk::RiskGate::back_off_until`]); nothing is resent: a refused order was refused,
//! and an order whose outcome is unknown is looked up by its hash, never sent again.

/// Exponential back-off state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// First delay, ms.
    pub base_ms: u64,
    /// Largest delay, ms.
    pub max_ms: u64,
    streak: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(250, 30_000)
    }
}

/// Whether `status` asks us to back off.
#[must_use]
pub const fn is_backoff_status(status: u16) -> bool {
    matches!(status, 425 | 429 | 503)
}

/// `Retry-After` as delta-seconds → ms (an HTTP-date is not used: `None`).
#[must_use]
pub fn retry_after_ms(value: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(value).ok()?.trim();
    s.parse::<u64>().ok().map(|v| v.saturating_mul(1000))
}

impl Backoff {
    /// A back-off from `base_ms` up to `max_ms`.
    #[must_use]
    pub const fn new(base_ms: u64, max_ms: u64) -> Self {
        Backoff {
            base_ms,
            max_ms,
            streak: 0,
        }
    }

    /// Refusals in a row so far.
    #[must_use]
    pub const fn streak(&self) -> u32 {
        self.streak
    }

    /// A response arrived: returns how long to back off (ms) for 425/429/503, `None` otherwise
    /// (and the streak resets).
    pub fn on_status(&mut self, status: u16, retry_after: Option<&[u8]>) -> Option<u64> {
        if !is_backoff_status(status) {
            self.streak = 0;
            return None;
        }
        self.streak = self.streak.saturating_add(1);
        if let Some(ms) = retry_after.and_then(retry_after_ms) {
            return Some(ms.min(self.max_ms.max(ms.min(300_000))));
        }
        let shift = (self.streak - 1).min(20);
        Some(self.base_ms.saturating_mul(1 << shift).min(self.max_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_then_retry_after_then_reset() {
        let mut b = Backoff::new(100, 1000);
        assert_eq!(b.on_status(425, None), Some(100));
        assert_eq!(b.on_status(503, None), Some(200));
        assert_eq!(b.on_status(429, None), Some(400));
        assert_eq!(b.on_status(429, None), Some(800));
        assert_eq!(b.on_status(429, None), Some(1000), "capped");
        assert_eq!(b.on_status(429, Some(b"3")), Some(3000), "Retry-After wins");
        assert_eq!(b.on_status(429, Some(b"Wed, 21 Oct 2026")), Some(1000));
        assert_eq!(b.streak(), 7);
        assert_eq!(b.on_status(200, None), None);
        assert_eq!(b.on_status(400, None), None);
        assert_eq!(b.on_status(425, None), Some(100), "streak reset");
        assert_eq!(
            b.on_status(429, Some(b"100000")),
            Some(300_000),
            "at most 5 min"
        );
    }
}
