#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Property tests / fuzzing of the parsers, seeded from the corpus fixtures. The default run is
//! short; set `RINGBOLT_FUZZ_CASES` (e.g. 100000) for a longer run by hand.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use ringbolt_bus::{Record, Venue};
use ringbolt_feeds::decimal::{DecimalError, format_fixed, parse_e8, parse_fixed_i128};
use ringbolt_feeds::json::Lexer;
use ringbolt_feeds::venues::IMPLEMENTED;
use ringbolt_feeds::{FrameDriver, SyncMode};

fn cases(default: u32) -> u32 {
    std::env::var("RINGBOLT_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn runner(default: u32) -> TestRunner {
    TestRunner::new(Config {
        cases: cases(default),
        failure_persistence: None,
        ..Config::default()
    })
}

/// Corpus lines that are expected NOT to parse (documented in tests/fixtures/SOURCES.md):
/// a Bybit fixture with a topic name that is not a real v5 topic.
const KNOWN_INVALID: &[&str] = &[
    "\"topic\":\"trade.linear.BTCUSDT\"",
    // PolyBolt error acknowledgements are named skips (`error_ack`).
    "\"op\":\"error\"",
];

/// (venue, corpus lines) for every implemented venue.
fn corpus() -> Vec<(Venue, Vec<Vec<u8>>)> {
    let root = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for (venue, dir) in [
        (Venue::Polymarket, "polymarket"),
        (Venue::ChainlinkRtds, "polymarket"),
        (Venue::ChainlinkRtds, "chainlink_rtds"),
        (Venue::BinanceSpot, "binance_spot"),
        (Venue::BinanceFutures, "binance_futures"),
        (Venue::Coinbase, "coinbase"),
        (Venue::Okx, "okx"),
        (Venue::Kraken, "kraken"),
        (Venue::Bybit, "bybit"),
        (Venue::Gemini, "gemini"),
        (Venue::Bitstamp, "bitstamp"),
        (Venue::Deribit, "deribit"),
        (Venue::PolyBolt, "polybolt"),
    ] {
        let mut lines = Vec::new();
        let mut entries: Vec<_> = std::fs::read_dir(format!("{root}/{dir}"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            // Polymarket's folder also holds the RTDS copies: route them to the RTDS adapter.
            let rtds = name.starts_with("rtds_");
            if (venue == Venue::Polymarket && rtds)
                || (venue == Venue::ChainlinkRtds && dir == "polymarket" && !rtds)
            {
                continue;
            }
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                lines.push(line.as_bytes().to_vec());
            }
        }
        out.push((venue, lines));
    }
    out
}

fn drivers() -> Vec<FrameDriver> {
    [SyncMode::Observe, SyncMode::Enforce]
        .into_iter()
        .flat_map(|mode| {
            IMPLEMENTED
                .iter()
                .map(move |&v| FrameDriver::new(v, mode, true).unwrap())
        })
        .collect()
}

#[test]
fn every_corpus_line_parses_and_every_truncation_fails_cleanly() {
    let mut total = 0;
    for (venue, lines) in corpus() {
        for mode in [SyncMode::Observe, SyncMode::Enforce] {
            let mut d = FrameDriver::new(venue, mode, true).unwrap();
            for line in &lines {
                let mut out = Vec::new();
                if let Err(e) = d.frame(line, 1, &mut out) {
                    let text = String::from_utf8_lossy(line);
                    assert!(
                        KNOWN_INVALID.iter().any(|m| text.contains(m)),
                        "{venue} {text}: {e}"
                    );
                }
                total += 1;
                // Strict prefixes of a JSON object/array can never be complete messages.
                let step = (line.len() / 97).max(1);
                for cut in (1..line.len()).step_by(step) {
                    let prefix = &line[..cut];
                    let mut sink = Vec::new();
                    let r = d.frame(prefix, 1, &mut sink);
                    assert!(
                        r.is_err(),
                        "{venue}: prefix {cut} of {} accepted",
                        String::from_utf8_lossy(line)
                    );
                    let is_array = line.first() == Some(&b'[');
                    assert!(
                        is_array || sink.iter().all(|r: &Record| r.kind == 7),
                        "{venue}: truncated frame emitted records"
                    );
                }
            }
        }
    }
    assert!(total >= 2 * 150, "{total}");
}

#[test]
fn garbled_corpus_lines_never_panic() {
    let corpus = corpus();
    let drivers = std::cell::RefCell::new(drivers());
    let all: Vec<(usize, Vec<u8>)> = corpus
        .iter()
        .enumerate()
        .flat_map(|(i, (_, lines))| lines.iter().map(move |l| (i, l.clone())))
        .collect();
    let strategy = (
        proptest::sample::select(all),
        proptest::collection::vec((any::<u16>(), any::<u8>(), 0u8..4), 1..8),
    );
    runner(300)
        .run(&strategy, |((venue_index, mut line), edits)| {
            for (pos, byte, op) in edits {
                if line.is_empty() {
                    break;
                }
                let at = usize::from(pos) % line.len();
                match op {
                    0 => line[at] = byte,
                    1 => line.insert(at, byte),
                    2 => {
                        line.remove(at);
                    }
                    _ => line[at] = b"{}[]\",:0.-e"[usize::from(byte) % 11],
                }
            }
            let venue = corpus[venue_index].0;
            for d in drivers
                .borrow_mut()
                .iter_mut()
                .filter(|d| d.adapter.venue() == venue)
            {
                let mut sink = Vec::new();
                let _ = d.frame(&line, 1, &mut sink);
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn arbitrary_bytes_never_panic() {
    let drivers = std::cell::RefCell::new(drivers());
    runner(300)
        .run(&proptest::collection::vec(any::<u8>(), 0..256), |bytes| {
            for d in drivers.borrow_mut().iter_mut() {
                let mut sink = Vec::new();
                let _ = d.frame(&bytes, 1, &mut sink);
            }
            Ok(())
        })
        .unwrap();
}

/// Reference: scale by padding the fraction with zeros, then integer-parse.
fn reference_e8(int: &str, frac: &str, negative: bool) -> Option<i64> {
    if frac.len() > 8 && frac[8..].bytes().any(|b| b != b'0') {
        return None;
    }
    let mut f: String = frac.chars().take(8).collect();
    while f.len() < 8 {
        f.push('0');
    }
    let v: i128 = format!("{int}{f}").parse().ok()?;
    let v = if negative { -v } else { v };
    i64::try_from(v).ok()
}

#[test]
fn decimal_matches_reference() {
    let strategy = (
        "[0-9]{0,13}",
        proptest::option::of("[0-9]{0,12}"),
        any::<bool>(),
    );
    runner(2000)
        .run(&strategy, |(int, frac, negative)| {
            let text = format!(
                "{}{int}{}",
                if negative { "-" } else { "" },
                frac.as_ref().map(|f| format!(".{f}")).unwrap_or_default()
            );
            let frac = frac.unwrap_or_default();
            let got = parse_e8(text.as_bytes());
            if int.is_empty() && frac.is_empty() {
                prop_assert_eq!(got, Err(DecimalError::Empty));
                return Ok(());
            }
            let int_ref = if int.is_empty() { "0" } else { &int };
            match reference_e8(int_ref, &frac, negative) {
                Some(v) => {
                    prop_assert_eq!(got, Ok(v), "{}", text);
                    // Round trip through the exact formatter.
                    let back = format_fixed(i128::from(v), 8);
                    prop_assert_eq!(parse_e8(back.as_bytes()), Ok(v));
                }
                None => prop_assert!(
                    matches!(got, Err(DecimalError::Precision | DecimalError::Overflow)),
                    "{} -> {:?}",
                    text,
                    got
                ),
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn decimal_arbitrary_text_never_panics_and_e18_is_exact() {
    runner(2000)
        .run(&"[-+0-9.eE]{0,48}", |text| {
            let _ = parse_e8(text.as_bytes());
            let _ = parse_fixed_i128(text.as_bytes(), 18);
            Ok(())
        })
        .unwrap();
    runner(1000)
        .run(
            &(any::<u64>(), 0u64..1_000_000_000_000_000_000),
            |(int, frac)| {
                let text = format!("{int}.{frac:018}");
                let v = parse_fixed_i128(text.as_bytes(), 18).unwrap();
                prop_assert_eq!(
                    v,
                    i128::from(int) * 1_000_000_000_000_000_000 + i128::from(frac)
                );
                Ok(())
            },
        )
        .unwrap();
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|v| serde_json::json!(v)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|v| serde_json::json!(v)),
        ".{0,12}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map(".{0,8}", inner, 0..8)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn lexer_accepts_what_serde_json_writes() {
    runner(500)
        .run(&(json_value(), any::<bool>()), |(value, pretty)| {
            let text = if pretty {
                serde_json::to_string_pretty(&value).unwrap()
            } else {
                serde_json::to_string(&value).unwrap()
            };
            let mut j = Lexer::new(text.as_bytes());
            prop_assert!(j.skip_value().is_ok(), "{}", text);
            prop_assert!(j.end().is_ok());
            Ok(())
        })
        .unwrap();
}

#[test]
fn lexer_never_accepts_what_serde_json_rejects_structurally() {
    // Random JSON-ish byte soup: when serde_json rejects it, our lexer must not panic; when
    // our lexer accepts a whole value, serde_json must accept it too unless it is one of the
    // documented leniencies (leading zeros in numbers).
    runner(2000)
        .run(&"[\\[\\]{}\",:0-9a-z \\\\.-]{0,40}", |text| {
            let mut j = Lexer::new(text.as_bytes());
            let ours = j.skip_value().and_then(|()| j.end()).is_ok();
            let theirs = serde_json::from_str::<serde_json::Value>(&text).is_ok();
            if ours && !theirs {
                let lenient = text.contains("0") || text.contains('\\');
                prop_assert!(lenient, "accepted invalid JSON: {}", text);
            }
            Ok(())
        })
        .unwrap();
}

/// The SWAR fast path (plain decimal text, and the lexer's fused quoted-decimal conversion)
/// agrees with the general parser on everything: same value, same error.
#[test]
fn decimal_fast_paths_agree_with_the_general_parser() {
    use ringbolt_feeds::decimal::{parse_fixed_i64, parse_fixed_i64_general};
    // Venue-shaped text (long zero tails, leading zeros, 8-digit runs) and arbitrary text.
    let shaped = (
        proptest::option::of("-"),
        "[0-9]{0,21}",
        proptest::option::of("[0-9]{0,21}"),
        "0{0,30}",
        0u32..=19,
    )
        .prop_map(|(sign, int, frac, zeros, scale)| {
            let frac = frac.map(|f| format!(".{f}{zeros}")).unwrap_or_default();
            (format!("{}{int}{frac}", sign.unwrap_or_default()), scale)
        });
    let arbitrary = ("[-+0-9.eE\"\\\\ ]{0,40}", 0u32..=19);
    for strategy in [shaped.boxed(), arbitrary.boxed()] {
        runner(3000)
            .run(&strategy, |(text, scale)| {
                let want = parse_fixed_i64_general(text.as_bytes(), scale);
                prop_assert_eq!(parse_fixed_i64(text.as_bytes(), scale), want, "{}", text);
                // The same text as a JSON string value, through the fused lexer path.
                let quoted = format!("[\"{text}\"]");
                let mut strict = Lexer::new(quoted.as_bytes());
                let mut fused = Lexer::new(quoted.as_bytes());
                strict.begin_array().unwrap();
                fused.begin_array().unwrap();
                prop_assert!(strict.next_element().unwrap() && fused.next_element().unwrap());
                // The error-free row reader: the string the strict lexer reads, and only a value
                // the general parser gives for it.
                let q = quoted.as_bytes();
                if let Some([(t, v)]) = Lexer::new(q).quoted_fixed_row_ok([scale]) {
                    let mut l = Lexer::new(q);
                    l.begin_array().unwrap();
                    prop_assert!(l.next_element().unwrap());
                    let s = l.str().unwrap();
                    prop_assert_eq!(t, s);
                    prop_assert_eq!(Ok(v), parse_fixed_i64_general(s, scale), "{}", text);
                }
                match strict.str() {
                    Ok(s) => {
                        let (t, v) = fused.scalar_fixed_i64(scale).unwrap();
                        prop_assert_eq!(t, s);
                        prop_assert_eq!(v, parse_fixed_i64_general(s, scale), "{}", text);
                        prop_assert_eq!(fused.pos(), strict.pos());
                    }
                    Err(_) => prop_assert!(fused.scalar_fixed_i64(scale).is_err()),
                }
                // The same text as a bare JSON value (numbers: the fused number path).
                let bare = format!("[{text}]");
                let mut strict = Lexer::new(bare.as_bytes());
                let mut fused = Lexer::new(bare.as_bytes());
                strict.begin_array().unwrap();
                fused.begin_array().unwrap();
                if strict.next_element().is_ok() && fused.next_element().is_ok() {
                    match strict.scalar() {
                        Ok(s) => {
                            let (t, v) = fused.scalar_fixed_i64(scale).unwrap();
                            prop_assert_eq!(t, s);
                            prop_assert_eq!(v, parse_fixed_i64_general(s, scale), "{}", text);
                            prop_assert_eq!(fused.pos(), strict.pos());
                        }
                        Err(_) => prop_assert!(fused.scalar_fixed_i64(scale).is_err()),
                    }
                }
                Ok(())
            })
            .unwrap();
    }
}

/// The fused e18 + e8 conversion (Chainlink RTDS values) equals `parse_fixed_i128` at 18 and
/// its division by 10^10 (truncation toward zero), errors included.
#[test]
fn e18_and_e8_fast_path_agrees_with_the_general_parser() {
    use ringbolt_feeds::decimal::fast_e18_and_e8;
    let shaped = (
        proptest::option::of("-"),
        "[0-9]{0,21}",
        proptest::option::of("[0-9]{0,21}"),
        "0{0,4}",
    )
        .prop_map(|(sign, int, frac, zeros)| {
            let frac = frac.map(|f| format!(".{f}{zeros}")).unwrap_or_default();
            format!("{}{int}{frac}", sign.unwrap_or_default())
        });
    let arbitrary = "[-+0-9.eE ]{0,30}";
    for strategy in [shaped.boxed(), arbitrary.boxed()] {
        runner(5000)
            .run(&strategy, |text| {
                if let Some(fast) = fast_e18_and_e8(text.as_bytes()) {
                    let want =
                        parse_fixed_i128(text.as_bytes(), 18).map(|v| (v, v / 10_000_000_000));
                    prop_assert_eq!(fast, want, "{}", text);
                }
                Ok(())
            })
            .unwrap();
    }
    for text in [
        "79697.73000000",
        "79696.94817428796",
        "-0.00000000001",
        "-0",
        "1.000000000000000001",
        ".1234567891234567891",
        ".1234567891234567890",
    ] {
        let want = parse_fixed_i128(text.as_bytes(), 18).map(|v| (v, v / 10_000_000_000));
        assert_eq!(fast_e18_and_e8(text.as_bytes()), Some(want), "{text}");
    }
}

/// Deribit book, ticker, quote, price-index and trades frames are read in place when `method` precedes
/// `params` (Deribit's order) and by the general path otherwise: both give the same records and
/// counters, also on garbled frames.
#[test]
fn deribit_in_place_and_general_paths_agree() {
    let lines: Vec<Vec<u8>> = corpus()
        .into_iter()
        .filter(|(v, _)| *v == Venue::Deribit)
        .flat_map(|(_, l)| l)
        .filter(|l| {
            let head = br#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":""#;
            l.starts_with(head)
                && [
                    "book.",
                    "ticker.",
                    "quote.",
                    "deribit_price_index.",
                    "trades.",
                ]
                .iter()
                .any(|c| l[head.len()..].starts_with(c.as_bytes()))
        })
        .collect();
    assert!(lines.len() >= 20, "{}", lines.len());
    // `{"jsonrpc":"2.0","method":"subscription","params":P}` →
    // `{"jsonrpc":"2.0","params":P,"method":"subscription"}` (same length).
    let reorder = |l: &[u8]| -> Vec<u8> {
        let head = br#"{"jsonrpc":"2.0","method":"subscription","params":"#;
        let params = &l[head.len()..l.len() - 1];
        [
            br#"{"jsonrpc":"2.0","params":"#.as_slice(),
            params,
            br#","method":"subscription"}"#,
        ]
        .concat()
    };
    let strategy = (
        proptest::sample::select(lines),
        proptest::collection::vec((any::<u16>(), 0u8..11), 0..4),
    );
    runner(300)
        .run(&strategy, |(mut line, edits)| {
            let head = br#"{"jsonrpc":"2.0","method":"subscription","params":"#.len();
            for (pos, b) in edits {
                // Garble inside `params` only, so both framings stay comparable.
                let span = line.len() - 1 - head;
                let at = head + usize::from(pos) % span;
                line[at] = b"{}[]\",:0.-e"[usize::from(b)];
            }
            let mut outs = Vec::new();
            for frame in [line.clone(), reorder(&line)] {
                for mode in [SyncMode::Observe, SyncMode::Enforce] {
                    let mut d = FrameDriver::new(Venue::Deribit, mode, true).unwrap();
                    let mut out = Vec::new();
                    let ok = d.frame(&frame, 1, &mut out).is_ok();
                    outs.push((mode, ok, out, d.counters.total()));
                }
            }
            prop_assert_eq!(&outs[0], &outs[2]);
            prop_assert_eq!(&outs[1], &outs[3]);
            Ok(())
        })
        .unwrap();
}

/// Kraken v1 book frames are read in place when the channel id is a number and by the general
/// path otherwise (a quoted id of the same length): same records and counters, also garbled.
#[test]
fn kraken_v1_in_place_and_general_paths_agree() {
    let lines: Vec<Vec<u8>> = corpus()
        .into_iter()
        .filter(|(v, _)| *v == Venue::Kraken)
        .flat_map(|(_, l)| l)
        .filter(|l| {
            l.first() == Some(&b'[')
                && l.windows(6).any(|w| w == b"\"book-")
                && l.iter().skip(1).take_while(|b| b.is_ascii_digit()).count() >= 3
        })
        .collect();
    assert!(lines.len() >= 20, "{}", lines.len());
    // `[1234,…` → `["12",…`: the general path, same frame length.
    let quoted = |l: &[u8]| -> Vec<u8> {
        let digits = l.iter().skip(1).take_while(|b| b.is_ascii_digit()).count();
        let mut q = l.to_vec();
        q[1] = b'"';
        q[digits] = b'"';
        q
    };
    let strategy = (
        proptest::sample::select(lines),
        proptest::collection::vec((any::<u16>(), 0u8..11), 0..4),
    );
    runner(300)
        .run(&strategy, |(mut line, edits)| {
            let head = 1 + line
                .iter()
                .skip(1)
                .take_while(|b| b.is_ascii_digit())
                .count();
            for (pos, b) in edits {
                let span = line.len() - 1 - head;
                let at = head + usize::from(pos) % span;
                line[at] = b"{}[]\",:0.-e"[usize::from(b)];
            }
            let mut outs = Vec::new();
            for frame in [line.clone(), quoted(&line)] {
                for mode in [SyncMode::Observe, SyncMode::Enforce] {
                    let mut d = FrameDriver::new(Venue::Kraken, mode, true).unwrap();
                    let mut out = Vec::new();
                    let ok = d.frame(&frame, 1, &mut out).is_ok();
                    outs.push((mode, ok, out, d.counters.total(), d.actions.len()));
                }
            }
            prop_assert_eq!(&outs[0], &outs[2]);
            prop_assert_eq!(&outs[1], &outs[3]);
            Ok(())
        })
        .unwrap();
}

/// Bybit ticker and order-book `data` is read in the envelope's pass when `topic` precedes it
/// (Bybit's order) and afterwards from its raw text otherwise (`topic` moved to the end): same
/// records and counters, also on garbled frames.
#[test]
fn bybit_in_place_and_general_paths_agree() {
    let lines: Vec<Vec<u8>> = corpus()
        .into_iter()
        .filter(|(v, _)| *v == Venue::Bybit)
        .flat_map(|(_, l)| l)
        .filter(|l| {
            (l.starts_with(br#"{"topic":"tickers."#) || l.starts_with(br#"{"topic":"orderbook."#))
                && l.ends_with(b"}")
        })
        .collect();
    assert!(lines.len() >= 8, "{}", lines.len());
    // `{"topic":"T",REST}` → `{REST,"topic":"T"}` (same length).
    let topic_len = |l: &[u8]| {
        let from = br#"{"topic":""#.len();
        from + l[from..].iter().position(|&b| b == b'"').unwrap() + 2
    };
    let moved = |l: &[u8]| -> Vec<u8> {
        let t = topic_len(l);
        [&b"{"[..], &l[t..l.len() - 1], b",", &l[1..t - 1], b"}"].concat()
    };
    let strategy = (
        proptest::sample::select(lines),
        proptest::collection::vec((any::<u16>(), 0u8..11), 0..4),
    );
    runner(300)
        .run(&strategy, |(mut line, edits)| {
            let head = topic_len(&line);
            for (pos, b) in edits {
                // Garble after the topic only, so both framings stay comparable.
                let span = line.len() - 1 - head;
                let at = head + usize::from(pos) % span;
                line[at] = b"{}[]\",:0.-e"[usize::from(b)];
            }
            let mut outs = Vec::new();
            for frame in [line.clone(), moved(&line)] {
                for mode in [SyncMode::Observe, SyncMode::Enforce] {
                    let mut d = FrameDriver::new(Venue::Bybit, mode, true).unwrap();
                    let mut out = Vec::new();
                    let ok = d.frame(&frame, 1, &mut out).is_ok();
                    outs.push((mode, ok, out, d.counters.total(), d.actions.len()));
                }
            }
            prop_assert_eq!(&outs[0], &outs[2]);
            prop_assert_eq!(&outs[1], &outs[3]);
            Ok(())
        })
        .unwrap();
}

/// OKX one-row pushes are read in the envelope's pass when `arg` precedes `data` (OKX's order)
/// and by the general path otherwise (`arg` moved to the end): same records, counters and
/// actions, also on garbled frames.
#[test]
fn okx_in_place_and_general_paths_agree() {
    let lines: Vec<Vec<u8>> = corpus()
        .into_iter()
        .filter(|(v, _)| *v == Venue::Okx)
        .flat_map(|(_, l)| l)
        .filter(|l| l.starts_with(br#"{"arg":{"#) && l.ends_with(b"}"))
        .collect();
    assert!(lines.len() >= 20, "{}", lines.len());
    // `{"arg":{…},REST}` → `{REST,"arg":{…}}` (same length).
    let arg_len = |l: &[u8]| l.iter().position(|&b| b == b'}').unwrap() + 1;
    let moved = |l: &[u8]| -> Vec<u8> {
        let a = arg_len(l);
        [&b"{"[..], &l[a + 1..l.len() - 1], b",", &l[1..a], b"}"].concat()
    };
    let strategy = (
        proptest::sample::select(lines),
        proptest::collection::vec((any::<u16>(), 0u8..11), 0..4),
    );
    runner(300)
        .run(&strategy, |(mut line, edits)| {
            let head = arg_len(&line) + 1;
            for (pos, b) in edits {
                // Garble after `arg` only, so both framings stay comparable.
                let span = line.len() - 1 - head;
                let at = head + usize::from(pos) % span;
                line[at] = b"{}[]\",:0.-e"[usize::from(b)];
            }
            let mut outs = Vec::new();
            for frame in [line.clone(), moved(&line)] {
                for mode in [SyncMode::Observe, SyncMode::Enforce] {
                    let mut d = FrameDriver::new(Venue::Okx, mode, true).unwrap();
                    let mut out = Vec::new();
                    let ok = d.frame(&frame, 1, &mut out).is_ok();
                    outs.push((mode, ok, out, d.counters.total(), d.actions.len()));
                }
            }
            prop_assert_eq!(&outs[0], &outs[2]);
            prop_assert_eq!(&outs[1], &outs[3]);
            Ok(())
        })
        .unwrap();
}

/// Frames of `venue` (the corpus lines, garbled, truncated, in short sequences) through two
/// adapters, `make(mode, true)` (the one-pass reader) and `make(mode, false)` (the general path
/// only): the same results, records, counters and actions.
fn in_place_matches_general(
    venue: Venue,
    make: fn(SyncMode, bool) -> Box<dyn ringbolt_feeds::VenueAdapter>,
) {
    let lines: Vec<Vec<u8>> = corpus()
        .into_iter()
        .filter(|(v, _)| *v == venue)
        .flat_map(|(_, l)| l)
        .filter(|l| !l.is_empty())
        .collect();
    assert!(lines.len() >= 10, "{}", lines.len());
    let strategy = proptest::collection::vec(
        (
            proptest::sample::select(lines),
            proptest::collection::vec((any::<u16>(), 0u8..12), 0..4),
            any::<u16>(),
        ),
        1..4,
    );
    runner(300)
        .run(&strategy, |frames| {
            for mode in [SyncMode::Observe, SyncMode::Enforce] {
                let mut drivers = [true, false].map(|in_place| {
                    let mut d = FrameDriver::new(venue, mode, true).unwrap();
                    d.adapter = make(mode, in_place);
                    d
                });
                for (line, edits, cut) in &frames {
                    let mut line = line.clone();
                    for &(pos, b) in edits {
                        let at = usize::from(pos) % line.len();
                        line[at] = b"{}[]\",:0.-e "[usize::from(b)];
                    }
                    // Sometimes a truncated frame.
                    if cut % 4 == 0 {
                        line.truncate(usize::from(*cut) % line.len());
                    }
                    let mut outs = Vec::new();
                    for d in &mut drivers {
                        let mut out = Vec::new();
                        let r = d.frame(&line, 1, &mut out);
                        let counters: Vec<_> = (0..16).map(|s| d.counters.stream(s)).collect();
                        outs.push((r, out, counters, core::mem::take(&mut d.actions)));
                    }
                    prop_assert_eq!(&outs[0], &outs[1]);
                }
            }
            Ok(())
        })
        .unwrap();
}

/// Binance frames are read in one pass with their level arrays converted as they are lexed,
/// and by the general path (raw arrays converted afterwards) when that pass refuses them: the
/// two agree (depth buffering, snapshots and gaps included, through the frame sequences).
#[test]
fn binance_in_place_and_general_paths_agree() {
    use ringbolt_feeds::venues::binance::Binance;
    in_place_matches_general(Venue::BinanceSpot, |mode, in_place| {
        let a = Binance::spot(mode);
        Box::new(if in_place { a } else { a.general_path_only() })
    });
    in_place_matches_general(Venue::BinanceFutures, |mode, in_place| {
        let a = Binance::futures(mode);
        Box::new(if in_place { a } else { a.general_path_only() })
    });
}

/// Chainlink RTDS backfill rows are read in the envelope's pass (kept as spans until the
/// stream is known) and by the general path otherwise: the two agree.
#[test]
fn chainlink_rtds_in_place_and_general_paths_agree() {
    use ringbolt_feeds::venues::chainlink_rtds::ChainlinkRtds;
    in_place_matches_general(Venue::ChainlinkRtds, |mode, in_place| {
        let a = ChainlinkRtds::new(mode);
        Box::new(if in_place { a } else { a.general_path_only() })
    });
}

/// `Lexer::skip_rest_of_array` (the compact-string scan over a level row's trailing fields)
/// ends where the general `next_element` / `skip_value` loop ends, with the same result, on
/// rows assembled from venue-like and malformed fragments, also cut short.
#[test]
fn skip_rest_of_array_agrees_with_the_general_loop() {
    let fragments = [
        ",\"0\"",
        ",\"13\"",
        ",\"\"",
        ", \"1\"",
        ",1",
        ",-2.5e3",
        ",\"a\\\"b\"",
        ",\"\\u0041\"",
        ",\"\\x\"",
        ",\"\u{1}\"",
        ",{}",
        ",{\"a\":[1]}",
        ",[1,[2]]",
        ",null",
        ",true",
        ",",
        "]",
        " ]",
        "}",
        "\"",
        ",\"0\"]",
        "]]",
    ];
    let strategy = (
        proptest::collection::vec(0..fragments.len(), 0..6),
        any::<u16>(),
    );
    runner(3000)
        .run(&strategy, |(picks, cut)| {
            let mut row = String::from("[\"1.5\",\"2\"");
            for p in picks {
                row.push_str(fragments[p]);
            }
            row.push_str("],[\"3\"]");
            let bytes = row.as_bytes();
            let head = "[\"1.5\",\"2\"".len();
            let end = head + usize::from(cut) % (bytes.len() - head + 1);
            let frame = &bytes[..end];
            let run = |fast: bool| {
                let mut j = Lexer::new(frame);
                j.begin_array().unwrap();
                for _ in 0..2 {
                    assert!(j.next_element().unwrap());
                    j.str().unwrap();
                }
                let r = if fast {
                    j.skip_rest_of_array()
                } else {
                    (|| {
                        while j.next_element()? {
                            j.skip_value()?;
                        }
                        Ok(())
                    })()
                };
                (r, j.pos(), j.next_element())
            };
            prop_assert_eq!(run(true), run(false), "{}", String::from_utf8_lossy(frame));
            Ok(())
        })
        .unwrap();
}
