//! The bus instrument name of a Polymarket outcome token:
//! `btc-updown-5m-<start_s>/<up|down>/<token_id>`.
//!
//! The collector registers one name per outcome token ([`instrument_name`]); the decision core
//! and exec learn the window, the outcome and the CLOB token id back from it
//! ([`InstrumentName::parse`]). The grammar is a contract between processes, pinned like the bus
//! layout: [`describe`] renders it (with worked examples run through the parser) and a test
//! compares the text with the committed `market/schema/instrument-name-v<N>.txt`.

use core::fmt;
use core::fmt::Write as _;

use thiserror::Error;

use crate::window::{SLUG_PREFIX, WINDOW_S, check_window_start, parse_slug};

/// Version of the instrument-name grammar (the committed description's file name).
pub const NAME_VERSION: u32 = 1;

/// Which outcome token of a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// The "Up" token (pays 1 if Chainlink end ≥ start).
    Up = 0,
    /// The "Down" token.
    Down = 1,
}

impl Outcome {
    /// Both outcomes, in index order (Gamma's `outcomes` order for these markets).
    pub const ALL: [Outcome; 2] = [Outcome::Up, Outcome::Down];

    /// The name component: `up` or `down`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Up => "up",
            Outcome::Down => "down",
        }
    }

    /// Index 0 (Up) or 1 (Down).
    #[must_use]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The outcome of index `idx` (0 Up, anything else Down).
    #[must_use]
    pub const fn from_index(idx: usize) -> Outcome {
        if idx == 0 { Outcome::Up } else { Outcome::Down }
    }

    /// The other outcome.
    #[must_use]
    pub const fn other(self) -> Outcome {
        match self {
            Outcome::Up => Outcome::Down,
            Outcome::Down => Outcome::Up,
        }
    }
}

/// Why a name (or slug) is not a Polymarket outcome-token name.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum NameError {
    /// It does not start with `btc-updown-5m-`.
    #[error("does not start with `btc-updown-5m-`")]
    Prefix,
    /// The window start is not a positive decimal (digits only).
    #[error("the window start is not a positive decimal unix time")]
    Start,
    /// The window start is not a positive multiple of the window length.
    #[error("the window start {0} is not a positive multiple of 300 s")]
    Unaligned(i64),
    /// Not three `/`-separated parts.
    #[error("expected three parts <slug>/<up|down>/<token_id>")]
    Parts,
    /// The outcome part is neither `up` nor `down`.
    #[error("the outcome is neither `up` nor `down`")]
    Outcome,
    /// The token id is empty or not decimal digits.
    #[error("the token id is not a non-empty decimal")]
    Token,
}

/// A parsed outcome-token instrument name (borrows the token id from the name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstrumentName<'a> {
    /// Window start (unix s), a positive multiple of [`WINDOW_S`].
    pub window_start_s: i64,
    /// Up or Down.
    pub outcome: Outcome,
    /// The CLOB token id (decimal digits).
    pub token_id: &'a str,
}

impl<'a> InstrumentName<'a> {
    /// Parses `btc-updown-5m-<start_s>/<up|down>/<token_id>` strictly: the prefix, a window start
    /// aligned to [`WINDOW_S`], a lowercase outcome, a non-empty decimal token id, nothing more.
    ///
    /// # Errors
    /// [`NameError`] naming the first part that is wrong.
    pub fn parse(name: &'a str) -> Result<Self, NameError> {
        let mut parts = name.split('/');
        let (Some(slug), Some(outcome), Some(token_id), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(NameError::Parts);
        };
        let window_start_s = check_window_start(parse_slug(slug)?)?;
        let outcome = match outcome {
            "up" => Outcome::Up,
            "down" => Outcome::Down,
            _ => return Err(NameError::Outcome),
        };
        if token_id.is_empty() || !token_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(NameError::Token);
        }
        Ok(Self {
            window_start_s,
            outcome,
            token_id,
        })
    }
}

impl fmt::Display for InstrumentName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{SLUG_PREFIX}{}/{}/{}",
            self.window_start_s,
            self.outcome.as_str(),
            self.token_id
        )
    }
}

/// The instrument name of `outcome`'s token `token_id` in the window starting at
/// `window_start_s`. Formats any start (emulated short windows too); only live-aligned names
/// parse back.
#[must_use]
pub fn instrument_name(window_start_s: i64, outcome: Outcome, token_id: &str) -> String {
    InstrumentName {
        window_start_s,
        outcome,
        token_id,
    }
    .to_string()
}

/// Names the description runs through the parser (accepted and refused ones).
const EXAMPLES: &[&str] = &[
    "btc-updown-5m-1773307200/up/104239898038807136052399800151408521467737075933964991162589336683346093173875",
    "btc-updown-5m-1773307200/down/9",
    "btc-updown-5m-1773307201/up/1",
    "btc-updown-5m-0/up/1",
    "btc-updown-5m-+1773307200/up/1",
    "eth-updown-5m-1773307200/up/1",
    "btc-updown-5m-1773307200/Up/1",
    "btc-updown-5m-1773307200/up/",
    "btc-updown-5m-1773307200/up/0x1f",
    "btc-updown-5m-1773307200/up/1/extra",
    "btc-updown-5m-1773307200",
];

/// The pinned description of the grammar: version, rules, limits and every example with the
/// parser's verdict. Committed as `market/schema/instrument-name-v<NAME_VERSION>.txt`;
/// regenerate with `cargo run -q -p ringbolt-market --example instrument-name-grammar`.
#[must_use]
pub fn describe() -> String {
    let mut out = String::new();
    let _ = writeln!(out, "instrument_name_version={NAME_VERSION}");
    let _ = writeln!(out, "venue=polymarket");
    let _ = writeln!(out, "rule name = slug \"/\" outcome \"/\" token_id");
    let _ = writeln!(out, "rule slug = \"{SLUG_PREFIX}\" window_start_s");
    let _ = writeln!(
        out,
        "rule window_start_s = 1*DIGIT ; unix s, > 0, a multiple of window_s"
    );
    let _ = writeln!(
        out,
        "rule outcome = \"{}\" | \"{}\"",
        Outcome::Up.as_str(),
        Outcome::Down.as_str()
    );
    let _ = writeln!(out, "rule token_id = 1*DIGIT ; the CLOB token id");
    let _ = writeln!(out, "window_s={WINDOW_S}");
    let _ = writeln!(
        out,
        "max_bytes={} ; bus instrument table entry",
        ringbolt_bus::layout::INSTRUMENT_NAME_MAX
    );
    for name in EXAMPLES {
        match InstrumentName::parse(name) {
            Ok(n) => {
                let _ = writeln!(
                    out,
                    "example {name} -> ok window_start_s={} outcome={} token_id={}",
                    n.window_start_s,
                    n.outcome.as_str(),
                    n.token_id
                );
            }
            Err(e) => {
                let _ = writeln!(out, "example {name} -> error {e}");
            }
        }
    }
    out
}

/// Path of the committed description, relative to the market crate.
#[must_use]
pub fn committed_file_name() -> String {
    format!("schema/instrument-name-v{NAME_VERSION}.txt")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_parse_strictly_and_round_trip() {
        let n = InstrumentName::parse("btc-updown-5m-1773307200/up/123456").unwrap();
        assert_eq!(
            (n.window_start_s, n.outcome, n.token_id),
            (1_773_307_200, Outcome::Up, "123456")
        );
        assert_eq!(n.to_string(), "btc-updown-5m-1773307200/up/123456");
        assert_eq!(
            instrument_name(1_773_307_200, Outcome::Down, "9"),
            "btc-updown-5m-1773307200/down/9"
        );
        let bad = |s: &str| InstrumentName::parse(s).unwrap_err();
        assert_eq!(
            bad("btc-updown-5m-1773307201/up/1"),
            NameError::Unaligned(1_773_307_201)
        );
        assert_eq!(bad("btc-updown-5m-1773307200/left/1"), NameError::Outcome);
        assert_eq!(bad("btc-updown-5m-1773307200/up/x1"), NameError::Token);
        assert_eq!(bad("eth-updown-5m-1773307200/up/1"), NameError::Prefix);
        assert_eq!(bad("btc-updown-5m-17/up/1"), NameError::Unaligned(17));
        assert_eq!(bad("BTC-USD"), NameError::Parts);
        assert_eq!(bad("btc-updown-5m-x/up/9"), NameError::Start);
    }

    /// The drift check: the grammar must equal the committed description of its version.
    #[test]
    fn grammar_matches_committed_description() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(committed_file_name());
        let current = describe();
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == current,
            "the instrument-name grammar differs from market/{file} (v{NAME_VERSION}).\n\
             Every process must agree on it: if the change is intended, bump NAME_VERSION in \
             market/src/name.rs when old names no longer parse, then regenerate with\n  \
             cargo run -q -p ringbolt-market --example instrument-name-grammar > market/{file}\n\
             and commit it.\n--- committed\n{committed}\n--- current\n{current}",
            file = committed_file_name()
        );
    }
}
