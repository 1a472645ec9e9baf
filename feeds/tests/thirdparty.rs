#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Every third-party message (`tests/fixtures/thirdparty/`, origins in its `MANIFEST.tsv`: test
//! data of nautilus_trader, cryptofeed and the JKorf client libraries) either parses to values
//! that are in the message, or is skipped with a counted, named reason; none crashes.
//!
//! The check is independent of the crate's lexer and decimal parser: each line is also parsed
//! with `serde_json`, every scalar leaf (strings and numbers) is converted to fixed point by
//! [`fixed`] below, and every record must find its values in ONE node of that tree (a level's
//! price and size side by side, a trade's price, size and id side by side), its side in that
//! node (`"side":"buy"`, `"m":true`, …) or in the key of an enclosing array (`bids`, `a`, …),
//! and its instrument's name in the message.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use ringbolt_bus::{
    BookLevel, FLAG_SNAPSHOT, Funding, IndexPrice, Liquidation, Record, RecordKind, Side,
    TopOfBook, Trade, Venue,
};
use ringbolt_feeds::venues::IMPLEMENTED;
use ringbolt_feeds::{FrameDriver, StreamCounters, SyncMode};
use serde_json::Value;

/// Exact decimal text (`-12.50`, `1e-5`, `3.2E+2`) → integer units of `10^-scale`; `None` if
/// not a decimal or not exact at `scale`.
fn fixed(text: &str, scale: u32) -> Option<i128> {
    let (mantissa, exp) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (neg, digits) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // value = int.frac × 10^exp; shift so the result is in units of 10^-scale.
    let mut all: String = format!("{int}{frac}");
    let shift = i64::from(scale) + i64::from(exp) - frac.len() as i64;
    if shift >= 0 {
        all.extend(std::iter::repeat_n('0', usize::try_from(shift).ok()?));
    } else {
        let cut = usize::try_from(-shift).ok()?;
        let keep = all.len().saturating_sub(cut);
        if all[keep.min(all.len())..].bytes().any(|b| b != b'0') {
            return None;
        }
        all.truncate(keep);
    }
    let trimmed = all.trim_start_matches('0');
    let v: i128 = if trimmed.is_empty() {
        0
    } else {
        trimmed.parse().ok()?
    };
    Some(if neg { -v } else { v })
}

/// A scalar leaf: its key (or array index), its text, and the keys enclosing its node.
#[derive(Debug)]
struct Leaf {
    key: String,
    text: String,
    /// The text at scale 8, if it is such a decimal.
    e8: Option<i128>,
}

/// An object or array with its direct scalar children and the keys on the path to it.
#[derive(Debug)]
struct Node {
    path: Vec<String>,
    leaves: Vec<Leaf>,
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if n.is_f64() => n.as_f64().map(|f| format!("{f}")),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn flatten(v: &Value, path: &mut Vec<String>, out: &mut Vec<Node>) {
    let children: Vec<(String, &Value)> = match v {
        Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => return,
    };
    let mut leaves = Vec::new();
    for (key, child) in &children {
        if let Some(text) = scalar_text(child) {
            leaves.push(Leaf {
                key: key.clone(),
                e8: fixed(&text, 8),
                text,
            });
        } else if let Value::String(s) = child {
            // A JSON document inside a string (Polymarket RTDS payloads are objects already).
            if let Ok(inner) = serde_json::from_str::<Value>(s) {
                path.push(key.clone());
                flatten(&inner, path, out);
                path.pop();
            }
        } else {
            path.push(key.clone());
            flatten(child, path, out);
            path.pop();
        }
    }
    out.push(Node {
        path: path.clone(),
        leaves,
    });
}

/// Side named by a token (a value such as `"BUY"` or a key such as `bids`).
fn side_token(t: &str) -> Option<Side> {
    match t.to_ascii_lowercase().as_str() {
        "b" | "bid" | "bids" | "buy" | "buys" | "bs" => Some(Side::Buy),
        "a" | "s" | "ask" | "asks" | "sell" | "sells" | "as" | "offer" => Some(Side::Sell),
        _ => None,
    }
}

impl Node {
    /// Indices of leaves equal to `v` at `scale`.
    fn find(&self, v: i128, scale: u32) -> impl Iterator<Item = usize> + '_ {
        self.leaves
            .iter()
            .enumerate()
            .filter(move |(_, l)| {
                if scale == 8 {
                    l.e8 == Some(v)
                } else {
                    fixed(&l.text, scale) == Some(v)
                }
            })
            .map(|(i, _)| i)
    }

    /// `true` if two distinct leaves hold `a` and `b` (scale 8).
    fn pair(&self, a: i64, b: i64) -> bool {
        self.find(a.into(), 8)
            .any(|i| self.find(b.into(), 8).any(|j| j != i))
    }

    /// The side this node states for a level: a side-valued leaf, else the innermost side key
    /// of its path.
    fn level_side(&self) -> Option<Side> {
        self.leaves
            .iter()
            .filter(|l| !l.key.chars().all(|c| c.is_ascii_digit()) || l.text.len() > 1)
            .find_map(|l| side_token(&l.text))
            .or_else(|| self.path.iter().rev().find_map(|k| side_token(k)))
    }

    /// The aggressor side this node states for a trade, in the venue's convention.
    fn trade_side(&self, maker_side: bool) -> Option<Side> {
        let leaf = |k: &str| self.leaves.iter().find(|l| l.key == k);
        if let Some(m) = leaf("m") {
            // Binance: buyer is the maker → the seller took.
            return Some(if m.text == "true" {
                Side::Sell
            } else {
                Side::Buy
            });
        }
        if let Some(t) = leaf("type").filter(|t| t.text == "0" || t.text == "1") {
            // Bitstamp: 0 buy, 1 sell.
            return Some(if t.text == "0" { Side::Buy } else { Side::Sell });
        }
        let stated = ["side", "S", "direction", "taker_side", "3"]
            .iter()
            .find_map(|k| leaf(k).and_then(|l| side_token(&l.text)))?;
        Some(match (maker_side, stated) {
            (true, Side::Buy) => Side::Sell,
            (true, Side::Sell) => Side::Buy,
            (_, s) => s,
        })
    }
}

/// A message's nodes and, per scale-8 value, the nodes holding it.
struct Tree {
    nodes: Vec<Node>,
    by_e8: HashMap<i128, Vec<usize>>,
}

impl Tree {
    fn new(line: &str) -> Self {
        let value: Value = serde_json::from_str(line).expect("serde_json parses what we parsed");
        let mut nodes = Vec::new();
        flatten(&value, &mut Vec::new(), &mut nodes);
        let mut by_e8: HashMap<i128, Vec<usize>> = HashMap::new();
        for (i, n) in nodes.iter().enumerate() {
            for v in n.leaves.iter().filter_map(|l| l.e8) {
                by_e8.entry(v).or_default().push(i);
            }
        }
        Tree { nodes, by_e8 }
    }

    /// Nodes holding `v` (scale 8) as a leaf.
    fn holding(&self, v: i64) -> impl Iterator<Item = &Node> {
        self.by_e8
            .get(&i128::from(v))
            .into_iter()
            .flatten()
            .map(|&i| &self.nodes[i])
    }
}

/// What is wrong with `r` against the message's tree, if anything.
fn mismatch(venue: Venue, r: &Record, tree: &Tree, name: &str, line: &str) -> Option<String> {
    let nodes = &tree.nodes;
    let norm = |s: &str| {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase()
    };
    if !norm(line).contains(&norm(name)) {
        return Some(format!("instrument {name:?} not in the message"));
    }
    // Coinbase Exchange `match` and Advanced Trade `market_trades`: `side` is the MAKER's side
    // (venue docs; corpus/venues/SOURCES.md).
    let maker_side = venue == Venue::Coinbase
        && ["\"match\"", "\"last_match\"", "\"market_trades\""]
            .iter()
            .any(|t| line.contains(t));
    let anywhere = |v: i128, scale: u32| nodes.iter().any(|n| n.find(v, scale).next().is_some());
    match r.record_kind()? {
        RecordKind::BookLevel => {
            let l = r.body_as::<BookLevel>()?;
            let side = Side::from_u8(l.side);
            if side == Some(Side::None) && l.price == 0 && l.size == 0 {
                // The documented empty-snapshot record: the message must hold an empty snapshot.
                let empty = r.flags & FLAG_SNAPSHOT != 0
                    && nodes.iter().all(|n| {
                        n.leaves.iter().all(|l| {
                            l.e8.is_none() || !n.path.iter().any(|k| side_token(k).is_some())
                        })
                    });
                return (!empty).then(|| "empty-snapshot record for a non-empty book".into());
            }
            let ok = tree
                .holding(l.price)
                .any(|n| n.pair(l.price, l.size) && n.level_side() == side);
            (!ok).then(|| format!("level {side:?} {} x {} not in one node", l.price, l.size))
        }
        RecordKind::Trade => {
            let t = r.body_as::<Trade>()?;
            let side = Side::from_u8(t.side).unwrap_or(Side::None);
            let ok = tree.holding(t.price).any(|n| {
                n.pair(t.price, t.size)
                    && (t.trade_id == 0
                        || n.leaves.iter().any(|l| l.text == t.trade_id.to_string()))
                    && (side == Side::None || n.trade_side(maker_side) == Some(side))
            });
            (!ok).then(|| {
                format!(
                    "trade {side:?} {} x {} id {} not in one node",
                    t.price, t.size, t.trade_id
                )
            })
        }
        RecordKind::TopOfBook => {
            let t = r.body_as::<TopOfBook>()?;
            let vals = [t.bid_price, t.bid_size, t.ask_price, t.ask_size];
            let ok = vals.iter().all(|&v| v == 0 || anywhere(v.into(), 8));
            (!ok).then(|| format!("top {vals:?} not in the message"))
        }
        RecordKind::IndexPrice => {
            let p = r.body_as::<IndexPrice>()?;
            let ok = anywhere(p.price.into(), 8) && (p.value_e18 == 0 || anywhere(p.value_e18, 18));
            (!ok).then(|| format!("index {} / {}e-18 not in the message", p.price, p.value_e18))
        }
        RecordKind::Funding => {
            let f = r.body_as::<Funding>()?;
            // `Funding.rate` holds 12 decimals; longer rates are truncated toward zero (okx.rs).
            let truncated = |n: &Node| {
                n.leaves.iter().any(|l| {
                    fixed(&l.text, 18).is_some_and(|v| v / 1_000_000 == i128::from(f.rate))
                })
            };
            let ok = nodes.iter().any(truncated)
                && (f.mark_price == 0 || anywhere(f.mark_price.into(), 8));
            (!ok).then(|| {
                format!(
                    "funding {} mark {} not in the message",
                    f.rate, f.mark_price
                )
            })
        }
        RecordKind::Liquidation => {
            let l = r.body_as::<Liquidation>()?;
            let ok = tree.holding(l.price).any(|n| n.pair(l.price, l.size));
            (!ok).then(|| format!("liquidation {} x {} not in one node", l.price, l.size))
        }
        _ => None,
    }
}

/// The named reason a line that parsed produced no record, from the counters it moved.
fn quiet_reason(
    before: &StreamCounters,
    after: &StreamCounters,
    data_stream: bool,
) -> &'static str {
    if after.unknown_instrument > before.unknown_instrument {
        "unknown_instrument"
    } else if after.dropped_unsynced > before.dropped_unsynced {
        "dropped_unsynced"
    } else if after.checksum_errors > before.checksum_errors {
        "checksum_mismatch"
    } else if data_stream {
        "counted_no_bus_kind"
    } else {
        "control"
    }
}

#[derive(Default)]
struct Tally {
    lines: usize,
    parsed: usize,
    records: usize,
    skipped: BTreeMap<String, usize>,
    /// Every skipped line: `file:line reason`.
    skipped_lines: Vec<String>,
    wrong: Vec<String>,
}

fn files(venue: Venue) -> Vec<std::path::PathBuf> {
    let dir = format!(
        "{}/tests/fixtures/thirdparty/{}",
        env!("CARGO_MANIFEST_DIR"),
        venue.as_str()
    );
    let mut f: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    f.sort();
    f
}

/// Runs one file through a fresh driver (continuity state does not leak between files).
fn run_file(venue: Venue, path: &std::path::Path, t: &mut Tally) {
    let text = std::fs::read_to_string(path).unwrap();
    let file = path.file_name().unwrap().to_string_lossy().into_owned();
    let mut d = FrameDriver::new(venue, SyncMode::Observe, true).unwrap();
    // Crash check in the other mode too (Enforce drops and resyncs instead).
    let mut enforce = FrameDriver::new(venue, SyncMode::Enforce, true).unwrap();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        t.lines += 1;
        let _ = enforce.frame(line.as_bytes(), 1, &mut Vec::new());
        enforce.actions.clear();
        let before = d.counters.total();
        let data_before: u64 = (1..16).map(|s| d.counters.stream(s).messages).sum();
        let mut out = Vec::new();
        let r = d.frame(line.as_bytes(), 1, &mut out);
        d.actions.clear();
        let records: Vec<&Record> = out
            .iter()
            .filter(|r| r.kind != RecordKind::FeedStatus as u8)
            .collect();
        let skip = match r {
            Err(e) => Some(format!("error: {e}")),
            Ok(()) if records.is_empty() => {
                let data =
                    (1..16).map(|s| d.counters.stream(s).messages).sum::<u64>() > data_before;
                Some(quiet_reason(&before, &d.counters.total(), data).to_owned())
            }
            Ok(()) => None,
        };
        if let Some(reason) = skip {
            t.skipped_lines.push(format!("{file}:{} {reason}", n + 1));
            *t.skipped.entry(reason).or_default() += 1;
            continue;
        }
        t.parsed += 1;
        t.records += records.len();
        let tree = Tree::new(line);
        for r in records {
            let name = d.instrument_name(r.instrument).to_owned();
            if let Some(w) = mismatch(venue, r, &tree, &name, line) {
                t.wrong.push(format!("{file}:{}: {w}", n + 1));
            }
        }
    }
}

#[test]
fn decimal_reference_converter() {
    assert_eq!(fixed("12.5", 8), Some(1_250_000_000));
    assert_eq!(fixed("-0.00000001", 8), Some(-1));
    assert_eq!(fixed("1e-5", 8), Some(1000));
    assert_eq!(fixed("3.2E+2", 0), Some(320));
    assert_eq!(fixed("0.000000001", 8), None);
    assert_eq!(fixed("0.0000000010", 9), Some(1));
    assert_eq!(fixed("abc", 8), None);
    assert_eq!(fixed("", 8), None);
}

#[test]
fn every_thirdparty_message_parses_to_its_values_or_is_skipped_with_a_reason() {
    let mut table = String::from(
        "| venue | lines | parsed (records) | skipped: reason × n |\n|---|---|---|---|\n",
    );
    let mut wrong = Vec::new();
    for &venue in IMPLEMENTED {
        let mut t = Tally::default();
        for f in files(venue) {
            run_file(venue, &f, &mut t);
        }
        let skips: Vec<String> = t
            .skipped
            .iter()
            .map(|(k, v)| format!("{k} × {v}"))
            .collect();
        writeln!(
            table,
            "| {} | {} | {} ({}) | {} |",
            venue.as_str(),
            t.lines,
            t.parsed,
            t.records,
            skips.join("; ")
        )
        .unwrap();
        assert!(t.lines > 0, "{venue:?}: no third-party lines");
        assert_eq!(t.lines, t.parsed + t.skipped.values().sum::<usize>());
        for s in &t.skipped_lines {
            println!("skipped {}/{s}", venue.as_str());
        }
        wrong.extend(
            t.wrong
                .into_iter()
                .map(|w| format!("{}: {w}", venue.as_str())),
        );
    }
    println!("{table}");
    assert!(
        wrong.is_empty(),
        "{} wrong values:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
