#![allow(clippy::expect_used, clippy::unwrap_used)]
//! `ringbolt feeds parse` end to end: the real binary on corpus fixtures, file and stdin input.

use std::process::Command;

use ringbolt_testkit::process::{run_fails, run_ok, run_with_stdin};

fn fixture(path: &str) -> String {
    format!("{}/feeds/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"))
}

fn ringbolt() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ringbolt"));
    c.env("RUST_BACKTRACE", "0");
    c
}

fn json_lines(stdout: Vec<u8>) -> Vec<serde_json::Value> {
    String::from_utf8(stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn parse_prints_exact_records_and_a_summary() {
    let out = run_ok(
        ringbolt()
            .args(["feeds", "parse", "--venue", "polymarket"])
            .arg(fixture("polymarket/book.jsonl")),
    );
    let lines = json_lines(out.stdout);
    assert_eq!(lines.len(), 185 + 1);
    let first = &lines[0];
    assert_eq!(first["venue"], "polymarket");
    assert_eq!(first["stream"], "book");
    assert_eq!(first["kind"], "book_level");
    assert_eq!(
        first["instrument"],
        "65818619657568813474341868652308942079804919287380422192892211131408793125422"
    );
    assert_eq!(first["side"], "buy");
    assert_eq!(first["price"], "0.48");
    assert_eq!(first["size"], "30");
    assert_eq!(first["exchange_ts_ns"], 1_757_908_892_351_000_000_i64);
    let summary = lines.last().unwrap();
    assert_eq!(summary["summary"], true);
    assert_eq!(summary["parsed"], 6);
    assert_eq!(summary["skipped"], 0);
    assert_eq!(summary["records"], 185);
}

#[test]
fn parse_skips_bad_lines_from_stdin_with_errors_on_stderr() {
    let good =
        std::fs::read_to_string(fixture("chainlink_rtds/crypto_prices_chainlink.jsonl")).unwrap();
    let first = good.lines().next().unwrap();
    let input = format!(
        "{first}\n{}\nnot json\n\n{first}\n",
        &first[..first.len() / 2]
    );
    let out = run_with_stdin(
        ringbolt().args(["feeds", "parse", "--venue", "chainlink_rtds", "-"]),
        &input,
    );
    assert!(out.status.success());
    let err = String::from_utf8(out.stderr.clone()).unwrap();
    let lines = json_lines(out.stdout);
    assert_eq!(lines[0]["price"], "79696.94817428796");
    assert_eq!(lines[0]["value_e18"], "79696948174287960000000");
    let summary = lines.last().unwrap();
    assert_eq!(summary["parsed"], 2);
    assert_eq!(summary["skipped"], 3, "truncated, garbage, empty");
    assert_eq!(summary["parse_errors"], 2);
    assert!(err.contains("line 2: skipped:"), "{err}");
    assert!(err.contains("line 3: skipped:"), "{err}");
}

#[test]
fn every_venue_parses_and_a_missing_collector_config_is_reported() {
    for venue in [
        "polymarket",
        "chainlink_rtds",
        "coinbase",
        "binance_spot",
        "binance_futures",
        "kraken",
        "gemini",
        "bybit",
        "okx",
        "deribit",
        "bitstamp",
    ] {
        let dir = if venue == "polymarket" {
            fixture("polymarket")
        } else {
            fixture(venue)
        };
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.extension().is_some_and(|e| e == "jsonl")
                    && !p.to_string_lossy().contains("rtds_")
            })
            .collect();
        files.sort();
        let mut records = 0;
        for file in files {
            let out = ringbolt()
                .args(["feeds", "parse", "--venue", venue])
                .arg(&file)
                .output()
                .unwrap();
            assert!(out.status.success(), "{venue} {}", file.display());
            let lines = json_lines(out.stdout);
            records += lines.last().unwrap()["records"].as_u64().unwrap();
        }
        assert!(records > 0, "{venue}");
    }
    let err = run_fails(ringbolt().args(["feeds", "parse", "--venue", "nasdaq", "x"]));
    assert!(err.contains("unknown venue `nasdaq`"), "{err}");
    // The collector runs from a config file (tests/feeds_collector.rs); a missing one is named.
    let err = run_fails(ringbolt().args(["feeds", "--config", "no-such-ringbolt.toml"]));
    assert!(
        err.contains("cannot read config no-such-ringbolt.toml"),
        "{err}"
    );
}

#[test]
fn streams_lists_the_selectable_catalogue() {
    let out = run_ok(ringbolt().args(["feeds", "streams"]));
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(
        rows.len(),
        ringbolt_feeds::venues::streams::SUBSCRIPTIONS.len()
    );
    assert!(text.contains("binance_futures  depth"), "{text}");
    let out = run_ok(ringbolt().args(["feeds", "streams", "--venue", "coinbase"]));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines().skip(1).all(|l| l.starts_with("coinbase ")),
        "{text}"
    );
    assert!(text.contains("adv_level2"), "{text}");
    run_fails(ringbolt().args(["feeds", "streams", "--venue", "nasdaq"]));
}
