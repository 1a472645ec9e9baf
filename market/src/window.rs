//! The 5-minute windows and their slugs.
//!
//! A Polymarket "Bitcoin Up or Down" market covers one window of [`WINDOW_S`] seconds starting
//! at a multiple of [`WINDOW_S`] (unix time); its Gamma slug is `btc-updown-5m-<start_s>`. The
//! emulator can run shorter windows for demos: they keep the slug prefix, so [`parse_slug`]
//! checks the grammar only, while [`check_window_start`] (and the instrument-name parser, which
//! the trading processes use) also requires the live alignment.

use crate::name::NameError;

/// Window length (s).
pub const WINDOW_S: i64 = 300;
/// Nanoseconds per second.
pub const NS: i64 = 1_000_000_000;
/// Slug prefix of the BTC Up/Down windows (kept for every window length).
pub const SLUG_PREFIX: &str = "btc-updown-5m-";

/// Start (unix s) of the window of `window_s` seconds containing `now_s` (a length ≤ 0 is
/// treated as 1).
#[must_use]
pub const fn window_start_s(now_s: i64, window_s: i64) -> i64 {
    let len = if window_s > 0 { window_s } else { 1 };
    now_s.div_euclid(len) * len
}

/// Start (unix s) of the live [`WINDOW_S`] window containing `ts_ns` (ns since the epoch).
#[must_use]
pub const fn window_of_ns(ts_ns: i64) -> i64 {
    window_start_s(ts_ns.div_euclid(NS), WINDOW_S)
}

/// The slug of the window starting at `start_s`: `btc-updown-5m-<start_s>`.
#[must_use]
pub fn slug(start_s: i64) -> String {
    format!("{SLUG_PREFIX}{start_s}")
}

/// Parses a slug `btc-updown-5m-<start_s>` into its window start: the prefix, then a positive
/// decimal without sign or padding characters. The start is *not* checked against
/// [`WINDOW_S`] (emulated short windows use the same prefix); see [`check_window_start`].
///
/// # Errors
/// [`NameError::Prefix`] or [`NameError::Start`].
pub fn parse_slug(slug: &str) -> Result<i64, NameError> {
    let digits = slug.strip_prefix(SLUG_PREFIX).ok_or(NameError::Prefix)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NameError::Start);
    }
    match digits.parse::<i64>() {
        Ok(start) if start > 0 => Ok(start),
        _ => Err(NameError::Start),
    }
}

/// `start_s` if it is a live window start: positive and a multiple of [`WINDOW_S`].
///
/// # Errors
/// [`NameError::Unaligned`] otherwise.
pub const fn check_window_start(start_s: i64) -> Result<i64, NameError> {
    if start_s > 0 && start_s % WINDOW_S == 0 {
        Ok(start_s)
    } else {
        Err(NameError::Unaligned(start_s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_slugs() {
        assert_eq!(window_start_s(1_773_307_299, WINDOW_S), 1_773_307_200);
        assert_eq!(window_start_s(-1, WINDOW_S), -300);
        assert_eq!(window_start_s(17, 0), 17);
        assert_eq!(window_of_ns(1_773_307_499 * NS + 999), 1_773_307_200);
        assert_eq!(slug(1_773_307_200), "btc-updown-5m-1773307200");
        assert_eq!(parse_slug("btc-updown-5m-1773307200"), Ok(1_773_307_200));
        assert_eq!(parse_slug("btc-updown-5m-8"), Ok(8));
        assert_eq!(parse_slug("eth-updown-5m-300"), Err(NameError::Prefix));
        for bad in [
            "",
            "+300",
            "-300",
            "0",
            "3e2",
            "300 ",
            "99999999999999999999",
        ] {
            assert_eq!(
                parse_slug(&format!("{SLUG_PREFIX}{bad}")),
                Err(NameError::Start),
                "{bad:?}"
            );
        }
        assert_eq!(check_window_start(1_773_307_200), Ok(1_773_307_200));
        assert_eq!(check_window_start(8), Err(NameError::Unaligned(8)));
        assert_eq!(check_window_start(0), Err(NameError::Unaligned(0)));
    }
}
