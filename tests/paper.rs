#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Paper truth end to end: decide's synthetic market (a `features synth --publish` producer
//! process) → `ringbolt trade` in paper mode (the paper exchange as its order sink) → the archiver
//! → `ringbolt replay --check-parity` reproduces every paper order transition, fill and
//! settlement byte for byte and the P&L → `ringbolt report pnl` equals the P&L recomputed from
//! the archive's `fills` and `settlements` with the plain SQL of docs/analysis.md (DuckDB) to the
//! cent. A tampered archived fill makes replay fail naming it.

mod common;

use std::path::Path;
use std::process::Command;

use common::{BIN, Unlink, archive_until, replay_check_parity, spawn_synth, tamper};
use ringbolt_archive::reader::ArchiveReader;
use ringbolt_archive::tables::Table;
use ringbolt_bus::Fill;
use ringbolt_testkit::fs;

fn replay(archive: &Path, config: &Path) -> (bool, serde_json::Value, String) {
    replay_check_parity(archive, Some(config))
}

/// The P&L query of docs/analysis.md (the ```sql block after `<!-- pnl-sql -->`).
fn pnl_sql(root: &Path) -> String {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/analysis.md"))
            .unwrap();
    let after = doc
        .split("<!-- pnl-sql -->")
        .nth(1)
        .expect("pnl-sql marker");
    let block = after
        .split("```sql")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    block.replace("{root}", &root.display().to_string())
}

/// Runs `sql` with DuckDB through the project's Python: rows of (window, orders, fills, pnl).
fn duckdb_rows(sql: &str) -> Vec<(i64, u64, u64, f64)> {
    let python = std::env::var("RINGBOLT_PYTHON")
        .unwrap_or_else(|_| format!("{}/.venv/bin/python", env!("CARGO_MANIFEST_DIR")));
    let script = "import duckdb, json, sys\n\
                  rows = duckdb.connect().execute(sys.stdin.read()).fetchall()\n\
                  print(json.dumps([[int(w), int(o), int(f), str(p)] for w, o, f, p in rows]))\n";
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(sql.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "duckdb query failed");
    let v: Vec<(i64, u64, u64, String)> = serde_json::from_slice(&out.stdout).unwrap();
    v.into_iter()
        .map(|(w, o, f, p)| (w, o, f, p.parse().unwrap()))
        .collect()
}

#[test]
fn paper_fills_settle_replay_with_parity_and_the_pnl_is_plain_sql() {
    let pid = std::process::id();
    let market = format!("rb-test-pp-mkt-{pid}");
    let decide = format!("rb-test-pp-dec-{pid}");
    let _unlink = Unlink(vec![market.clone(), decide.clone()]);
    let dir = fs::tempdir("rb-paper", "e2e");
    let root = dir.join("archive");

    let (_producer, _published) = spawn_synth(&market, 3, 33, 524_288);
    let config = dir.join("trade.toml");
    std::fs::write(
        &config,
        format!(
            "[trade]\ninputs = [\"{market}\"]\noutput = \"{decide}\"\nevaluator = \"baseline\"\n\
             start = \"oldest\"\nexit_when_idle_ms = 3000\nopen_timeout_s = 60\n\
             output_capacity = 262144\n\n[trade.paper_exchange]\nseed = 7\n"
        ),
    )
    .unwrap();
    let live = common::run_trade(&config, &[]);
    assert_eq!(live["lost_records"], 0, "{live}");
    let px = &live["paper_exchange"];
    assert!(
        px["taker_fills"].as_u64().unwrap() > 0,
        "the paper exchange fills: {live}"
    );
    assert!(
        px["settlements"].as_u64().unwrap() >= 4,
        "two windows settle: {live}"
    );
    assert_eq!(px["unknown_token"], 0, "{live}");

    archive_until(&root, &[market.clone(), decide.clone()], &|| true);

    // Replay reproduces the decisions and every paper record, and the P&L.
    let (ok, summary, stderr) = replay(&root, &config);
    assert!(ok, "replay failed: {summary}\n{stderr}");
    assert_eq!(summary["parity"]["passed"], true, "{summary}");
    let pp = &summary["paper_parity"];
    assert_eq!(pp["passed"], true, "{summary}");
    assert!(pp["paper_records_archived"].as_u64().unwrap() > 0);
    assert_eq!(
        pp["paper_records_matched"], pp["paper_records_archived"],
        "{summary}"
    );
    assert_eq!(pp["pnl_live_usdc"], pp["pnl_replay_usdc"]);
    assert_eq!(
        summary["paper_exchange"], live["paper_exchange"],
        "{summary}"
    );
    // Positions came from fills: the replayed engine applied every taker fill.
    assert_eq!(summary["fills_applied"], px["taker_fills"], "{summary}");

    // `ringbolt report pnl --json` equals the plain SQL, window by window, to the cent.
    let out = Command::new(BIN)
        .args(["report", "pnl", "--json", "--archive"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["total"]["pnl_usdc"], pp["pnl_live_usdc"], "{report}");
    let windows = report["windows"].as_array().unwrap();
    let sql = duckdb_rows(&pnl_sql(&root));
    assert_eq!(sql.len(), windows.len(), "{report}\n{sql:?}");
    for ((w, orders, fills, pnl), row) in sql.iter().zip(windows) {
        assert_eq!(*w, row["window_start_s"].as_i64().unwrap());
        assert_eq!(*orders, row["orders"].as_u64().unwrap());
        assert_eq!(*fills, row["fills"].as_u64().unwrap());
        let reported = row["pnl_usdc"].as_f64().unwrap();
        assert!(
            (pnl - reported).abs() < 0.005,
            "window {w}: sql {pnl} report {reported}"
        );
    }
    let sql_total: f64 = sql.iter().map(|r| r.3).sum();
    let total = report["total"]["pnl_usdc"].as_f64().unwrap();
    assert!(
        (sql_total - total).abs() < 0.005,
        "sql {sql_total} report {total}"
    );
    assert!(report["total"]["fills"].as_u64().unwrap() > 0);
    eprintln!(
        "paper exchange {px}\nreplay paper parity {pp}\npnl total {}",
        report["total"]
    );

    // Tamper with one archived fill's price: replay must fail naming that paper record.
    let mut reader = ArchiveReader::open(&root).unwrap();
    let rows = reader.read_all(&[Table::Fills], None, &|_| true).unwrap();
    let target = rows.rows[0];
    tamper(&root, Table::Fills, &decide, &rows.rows, target, |r| {
        let mut f = r.body_as::<Fill>().unwrap();
        f.price += 1_000_000;
        r.set_body(&f);
    });
    let (ok, summary, stderr) = replay(&root, &config);
    assert!(!ok, "tampered fill passed: {summary}");
    let n = target.record.venue_seq;
    assert!(
        stderr.contains(&format!("PAPER PARITY FAILED at paper record #{n}")),
        "{stderr}"
    );
}
