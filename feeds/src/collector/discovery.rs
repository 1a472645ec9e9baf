//! Polymarket market discovery for the BTC Up/Down windows, sans-IO.
//!
//! Windows start at multiples of the window length (`window_s`, 300 s live) and are named
//! `btc-updown-5m-<start_s>`. The collector asks Gamma (`GET /markets?slug=…&slug=…`, or
//! `/events?slug=…`) for the current and the next window off the hot path, parses the answer
//! with [`parse_gamma`], and feeds it to a [`Tracker`], which says which outcome tokens to
//! subscribe and which to unsubscribe at each rollover (without reconnecting). Instruments are
//! registered on the bus as `<slug>/<up|down>/<token_id>` ([`WindowMarket::instrument_name`],
//! the market crate's formatter). The slug grammar and window arithmetic are the market crate's;
//! window lengths other than 300 s (the emulator's short demo windows) are accepted here.

use ringbolt_market::{
    GammaParams, NameError, Outcome, instrument_name, parse_slug, slug, window_start_s,
};
use serde::Deserialize;
use thiserror::Error;

use crate::time::iso8601_ns;

/// Why a Gamma response could not be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DiscoveryError {
    /// Not the JSON shape Gamma serves.
    #[error("gamma response: {0}")]
    Json(String),
    /// A market object lacks a field or holds a bad value.
    #[error("gamma market `{slug}`: {reason}")]
    Market {
        /// The market's slug.
        slug: String,
        /// What is wrong.
        reason: &'static str,
    },
}

/// The Gamma request path for these window starts: `/markets?slug=a&slug=b` (or `/events?…`
/// when `events`).
#[must_use]
pub fn gamma_path(starts: &[i64], events: bool) -> String {
    let mut path = String::from(if events { "/events" } else { "/markets" });
    for (i, s) in starts.iter().enumerate() {
        path.push(if i == 0 { '?' } else { '&' });
        path.push_str("slug=");
        path.push_str(&slug(*s));
    }
    path
}

/// One discovered window market.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowMarket {
    /// `btc-updown-5m-<start>`.
    pub slug: String,
    /// Window start, unix s (from the slug).
    pub start_s: i64,
    /// Window end, unix s (`endDate`), when given.
    pub end_s: Option<i64>,
    /// Outcome token ids: `[up, down]`.
    pub tokens: [String; 2],
    /// Gamma's `closed`.
    pub closed: bool,
    /// The market parameters Gamma states (tick, minimum size, fees), for
    /// [`ringbolt_market::MarketParams::updated_from_gamma`].
    pub params: GammaParams,
}

impl WindowMarket {
    /// The bus instrument name of outcome `idx` (0 Up, 1 Down): `<slug>/<up|down>/<token_id>`.
    #[must_use]
    pub fn instrument_name(&self, idx: usize) -> String {
        let outcome = Outcome::from_index(idx);
        instrument_name(self.start_s, outcome, &self.tokens[outcome.index()])
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMarket {
    slug: Option<String>,
    clob_token_ids: Option<String>,
    outcomes: Option<String>,
    end_date: Option<String>,
    #[serde(default)]
    closed: bool,
    #[serde(flatten)]
    params: GammaParams,
}

#[derive(Deserialize)]
struct RawEvent {
    markets: Vec<RawMarket>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawItem {
    Event(RawEvent),
    Market(RawMarket),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawBody {
    Many(Vec<RawItem>),
    One(RawItem),
}

fn market(raw: RawMarket) -> Result<Option<WindowMarket>, DiscoveryError> {
    let Some(slug) = raw.slug else {
        return Ok(None);
    };
    let bad = |reason| DiscoveryError::Market {
        slug: slug.clone(),
        reason,
    };
    let start_s = match parse_slug(&slug) {
        Ok(start_s) => start_s,
        // Not a BTC Up/Down window market (an event may list others).
        Err(NameError::Prefix) => return Ok(None),
        Err(_) => return Err(bad("slug suffix is not a unix time")),
    };
    let ids: Vec<String> = serde_json::from_str(
        raw.clob_token_ids
            .as_deref()
            .ok_or_else(|| bad("missing clobTokenIds"))?,
    )
    .map_err(|_| bad("clobTokenIds is not a JSON array of strings"))?;
    let outcomes: Vec<String> = serde_json::from_str(
        raw.outcomes
            .as_deref()
            .ok_or_else(|| bad("missing outcomes"))?,
    )
    .map_err(|_| bad("outcomes is not a JSON array of strings"))?;
    if ids.len() != 2 || outcomes.len() != 2 {
        return Err(bad("expected two outcomes and two token ids"));
    }
    let up = outcomes
        .iter()
        .position(|o| o.eq_ignore_ascii_case("up"))
        .ok_or_else(|| bad("no `Up` outcome"))?;
    let down = 1 - up;
    if !outcomes[down].eq_ignore_ascii_case("down") {
        return Err(bad("no `Down` outcome"));
    }
    for id in &ids {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("token id is not a decimal integer"));
        }
    }
    let end_s = match raw.end_date.as_deref() {
        Some(t) => Some(
            iso8601_ns(t.as_bytes()).map_err(|_| bad("endDate is not ISO 8601"))? / 1_000_000_000,
        ),
        None => None,
    };
    Ok(Some(WindowMarket {
        slug: slug.clone(),
        start_s,
        end_s,
        tokens: [ids[up].clone(), ids[down].clone()],
        closed: raw.closed,
        params: raw.params,
    }))
}

/// Parses a Gamma answer: an array of markets (`/markets?slug=`), an array of events with
/// their `markets` (`/events?slug=`), or one event / market object (`/events/slug/<slug>`).
/// Markets that are not BTC Up/Down windows are ignored.
///
/// # Errors
/// [`DiscoveryError`] for another JSON shape or a window market with bad fields.
pub fn parse_gamma(body: &[u8]) -> Result<Vec<WindowMarket>, DiscoveryError> {
    let raw: RawBody =
        serde_json::from_slice(body).map_err(|e| DiscoveryError::Json(e.to_string()))?;
    let items = match raw {
        RawBody::Many(v) => v,
        RawBody::One(i) => vec![i],
    };
    let mut out = Vec::new();
    for item in items {
        let markets = match item {
            RawItem::Event(e) => e.markets,
            RawItem::Market(m) => vec![m],
        };
        for m in markets {
            if let Some(w) = market(m)? {
                out.push(w);
            }
        }
    }
    Ok(out)
}

/// What to change on the market-channel connection.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Windows to subscribe (register their instruments first).
    pub subscribe: Vec<WindowMarket>,
    /// Windows to unsubscribe.
    pub unsubscribe: Vec<WindowMarket>,
}

impl Plan {
    /// Nothing to do.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.subscribe.is_empty() && self.unsubscribe.is_empty()
    }
}

/// Which windows are subscribed; decides rollovers.
///
/// Wanted: the current window and the next one. A window is kept until `linger_s` after its
/// end (late `price_change` / `market_resolved` frames), then unsubscribed.
#[derive(Clone, Debug)]
pub struct Tracker {
    window_s: i64,
    linger_s: i64,
    active: Vec<WindowMarket>,
}

impl Tracker {
    /// A tracker for windows of `window_s` seconds.
    #[must_use]
    pub fn new(window_s: i64, linger_s: i64) -> Self {
        Tracker {
            window_s: window_s.max(1),
            linger_s: linger_s.max(0),
            active: Vec::new(),
        }
    }

    /// Window length, s.
    #[must_use]
    pub const fn window_s(&self) -> i64 {
        self.window_s
    }

    /// Starts of the windows to look up now: the current and the next.
    #[must_use]
    pub fn wanted(&self, now_s: i64) -> [i64; 2] {
        let cur = window_start_s(now_s, self.window_s);
        [cur, cur + self.window_s]
    }

    /// Starts of wanted windows that are not subscribed yet (nothing to look up when empty).
    #[must_use]
    pub fn missing(&self, now_s: i64) -> Vec<i64> {
        self.wanted(now_s)
            .into_iter()
            .filter(|s| !self.active.iter().any(|w| w.start_s == *s))
            .collect()
    }

    /// Subscribed windows.
    #[must_use]
    pub fn active(&self) -> &[WindowMarket] {
        &self.active
    }

    fn end_s(&self, w: &WindowMarket) -> i64 {
        w.end_s.unwrap_or(w.start_s + self.window_s)
    }

    /// Takes the markets Gamma returned at `now_s` and returns what to (un)subscribe. Markets
    /// that are already over, already subscribed or not wanted are ignored.
    pub fn update(&mut self, now_s: i64, discovered: &[WindowMarket]) -> Plan {
        let wanted = self.wanted(now_s);
        let mut plan = Plan::default();
        for w in discovered {
            if wanted.contains(&w.start_s)
                && !w.closed
                && self.end_s(w) > now_s
                && !self.active.iter().any(|a| a.slug == w.slug)
                && !plan.subscribe.iter().any(|a| a.slug == w.slug)
            {
                plan.subscribe.push(w.clone());
            }
        }
        plan.unsubscribe = self.expire(now_s);
        self.active.extend(plan.subscribe.iter().cloned());
        plan
    }

    /// Removes and returns windows that ended more than `linger_s` before `now_s`.
    pub fn expire(&mut self, now_s: i64) -> Vec<WindowMarket> {
        let (linger, len) = (self.linger_s, self.window_s);
        let mut gone = Vec::new();
        self.active.retain(|w| {
            let end = w.end_s.unwrap_or(w.start_s + len);
            let keep = end + linger > now_s;
            if !keep {
                gone.push(w.clone());
            }
            keep
        });
        gone
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const REAL: &str =
        include_str!("../../tests/fixtures/gamma/gamma_market_btc_updown_5m_1773307200.json");

    #[test]
    fn real_gamma_market_object() {
        let body = format!("[{REAL}]");
        let got = parse_gamma(body.as_bytes()).unwrap();
        assert_eq!(got.len(), 1);
        let w = &got[0];
        assert_eq!(w.slug, "btc-updown-5m-1773307200");
        assert_eq!(w.start_s, 1_773_307_200);
        // endDate 2026-03-12T09:25:00Z = start + 300.
        assert_eq!(w.end_s, Some(1_773_307_500));
        assert!(w.tokens[0].starts_with("10423989803880713605"));
        assert!(w.tokens[1].starts_with("71183960810705820955"));
        assert!(!w.closed);
        // Gamma states the market's parameters: tick 0.01, minimum 5 shares.
        let p = ringbolt_market::MarketParams {
            min_size_shares: 1.0,
            tick_size: ringbolt_market::Tick::T0_001,
            ..Default::default()
        }
        .updated_from_gamma(&w.params)
        .unwrap();
        assert_eq!(
            (p.tick_size, p.min_size_shares),
            (ringbolt_market::Tick::T0_01, 5.0)
        );
        assert_eq!(
            w.instrument_name(1),
            format!("btc-updown-5m-1773307200/down/{}", w.tokens[1])
        );
        // The same market as an event (`/events?slug=`) and as one object.
        let event = format!("[{{\"id\":\"1\",\"markets\":[{REAL}]}}]");
        assert_eq!(parse_gamma(event.as_bytes()).unwrap(), got);
        assert_eq!(parse_gamma(REAL.as_bytes()).unwrap(), got);
        assert_eq!(parse_gamma(b"[]").unwrap(), vec![]);
    }

    #[test]
    fn outcome_order_and_bad_markets() {
        let m = |ids: &str, outcomes: &str| {
            format!(
                r#"[{{"slug":"btc-updown-5m-600","clobTokenIds":{ids},"outcomes":{outcomes}}}]"#
            )
        };
        let swapped =
            parse_gamma(m(r#""[\"1\", \"2\"]""#, r#""[\"Down\", \"Up\"]""#).as_bytes()).unwrap();
        assert_eq!(swapped[0].tokens, ["2".to_string(), "1".to_string()]);
        assert_eq!(swapped[0].end_s, None);
        for (ids, outcomes) in [
            (r#""[\"1\"]""#, r#""[\"Up\", \"Down\"]""#),
            (r#""[\"1\", \"x\"]""#, r#""[\"Up\", \"Down\"]""#),
            (r#""[\"1\", \"2\"]""#, r#""[\"Yes\", \"No\"]""#),
            (r#""not json""#, r#""[\"Up\", \"Down\"]""#),
        ] {
            assert!(
                parse_gamma(m(ids, outcomes).as_bytes()).is_err(),
                "{ids} {outcomes}"
            );
        }
        assert!(parse_gamma(b"{\"error\":").is_err());
        // Other markets are ignored.
        let other = r#"[{"slug":"will-it-rain","clobTokenIds":"[]","outcomes":"[]"}]"#;
        assert_eq!(parse_gamma(other.as_bytes()).unwrap(), vec![]);
    }

    fn w(start_s: i64) -> WindowMarket {
        WindowMarket {
            slug: slug(start_s),
            start_s,
            end_s: Some(start_s + 300),
            tokens: [format!("{start_s}1"), format!("{start_s}2")],
            closed: false,
            params: GammaParams::default(),
        }
    }

    #[test]
    fn rollover_plan() {
        assert_eq!(window_start_s(1_773_307_299, 300), 1_773_307_200);
        assert_eq!(window_start_s(-1, 300), -300);
        assert_eq!(
            gamma_path(&[600, 900], false),
            "/markets?slug=btc-updown-5m-600&slug=btc-updown-5m-900"
        );
        let mut t = Tracker::new(300, 5);
        assert_eq!(t.wanted(610), [600, 900]);
        assert_eq!(t.missing(610), vec![600, 900]);
        // Gamma knows the current and the next window (and an old one, ignored).
        let plan = t.update(610, &[w(300), w(600), w(900)]);
        assert_eq!(plan.subscribe, vec![w(600), w(900)]);
        assert!(plan.unsubscribe.is_empty());
        assert!(t.missing(610).is_empty());
        // Same answer again: nothing to do.
        assert!(t.update(700, &[w(600), w(900)]).is_empty());
        // Rollover at 900: 1200 is wanted; 600 lingers until 905.
        assert_eq!(t.missing(901), vec![1200]);
        let plan = t.update(901, &[w(1200)]);
        assert_eq!(plan.subscribe, vec![w(1200)]);
        assert!(plan.unsubscribe.is_empty());
        let plan = t.update(906, &[]);
        assert_eq!(plan.unsubscribe, vec![w(600)]);
        assert_eq!(
            t.active().iter().map(|w| w.start_s).collect::<Vec<_>>(),
            vec![900, 1200]
        );
        // A closed market is not subscribed.
        let mut closed = w(1500);
        closed.closed = true;
        assert!(t.update(1201, &[closed]).subscribe.is_empty());
    }
}
