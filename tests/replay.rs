#![allow(clippy::expect_used, clippy::unwrap_used)]
//! `ringbolt replay --check-parity` on a real archive of a real live run:
//! a `features synth --publish` producer process feeds a bus segment, `ringbolt trade` (native
//! model on its own thread: asynchronous probabilities) decides on it, the archiver (library, in
//! process) writes both segments to Parquet; replaying the archive must reproduce every live
//! decision exactly, and verify every recorded model probability against the ensemble's scores of
//! the replayed feature vectors. Then one archived fired decision is tampered with: replay must
//! exit non-zero naming that decision and the differing field.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{BIN, Unlink, archive_until, replay_check_parity, spawn_synth, tamper};
use ringbolt_archive::reader::ArchiveReader;
use ringbolt_archive::tables::Table;
use ringbolt_bus::Decision;
use ringbolt_testkit::fs;

fn replay(archive: &Path, config: &Path) -> (bool, serde_json::Value, String) {
    replay_check_parity(archive, Some(config))
}

/// `ringbolt replay --check-parity`, with `--config` when given (else the recorded config).
fn replay_with(archive: &Path, config: Option<&Path>) -> (bool, serde_json::Value, String) {
    replay_check_parity(archive, config)
}

#[test]
fn replay_of_a_live_archive_has_full_decision_parity_and_catches_a_tampered_decision() {
    let pid = std::process::id();
    let market = format!("rb-test-rp-mkt-{pid}");
    let decide = format!("rb-test-rp-dec-{pid}");
    let _unlink = Unlink(vec![market.clone(), decide.clone()]);
    let dir = fs::tempdir("rb-replay", "parity");
    let root = dir.join("archive");

    let (_producer, _published) = spawn_synth(&market, 2, 21, 262_144);
    let config = dir.join("trade.toml");
    std::fs::write(
        &config,
        format!(
            "[trade]\ninputs = [\"{market}\"]\noutput = \"{decide}\"\nevaluator = \"native\"\n\
             start = \"oldest\"\nexit_when_idle_ms = 3000\nopen_timeout_s = 60\n\
             output_capacity = 262144\n\n[decide]\nmodel_cadence_ms = 250\n"
        ),
    )
    .unwrap();
    let live = common::run_trade(&config, &[]);
    assert_eq!(live["lost_records"], 0, "{live}");
    assert!(live["model_decisions"].as_u64().unwrap() > 0, "{live}");

    // Archive both segments (the archiver library, exactly as `ringbolt archive` runs it).
    archive_until(&root, &[market.clone(), decide.clone()], &|| true);

    // Parity.
    let (ok, summary, stderr) = replay(&root, &config);
    assert!(ok, "replay failed: {summary}\n{stderr}");
    let p = &summary["parity"];
    assert_eq!(p["passed"], true, "{summary}");
    assert_eq!(
        p["decisions_live"].as_u64().unwrap(),
        live["decisions_published"].as_u64().unwrap()
    );
    assert_eq!(p["decisions_matched"], p["decisions_live"], "{summary}");
    assert_eq!(
        p["fires_live"].as_u64().unwrap(),
        live["fired"].as_u64().unwrap()
    );
    assert!(p["fires_live"].as_u64().unwrap() > 0, "{summary}");
    assert_eq!(
        summary["model_decisions"], live["model_decisions"],
        "{summary}"
    );
    let m = &summary["model"];
    assert_eq!(
        m["recorded_probabilities_matched"], live["model_decisions"],
        "every recorded model probability is the ensemble's score of a replayed vector: {summary}"
    );
    assert_eq!(m["recorded_probabilities_unmatched"], 0);
    assert_eq!(summary["events"], live["records"], "{summary}");

    // The archiver records the decision config of the file it loads (the live run's shared
    // `ringbolt.toml`); `ringbolt archive` does this at start-up, the in-process archiver here
    // does not, so record it the same way. Replay without --config then defaults to it.
    let sections = ringbolt_config::load(&config).unwrap().trade_sections();
    ringbolt_archive::recorded::record_decision_config(&root, &sections.decision_toml().unwrap())
        .unwrap();
    let (ok, summary, stderr) = replay_with(&root, None);
    assert!(ok, "replay without --config failed: {summary}\n{stderr}");
    assert_eq!(summary["parity"]["passed"], true, "{summary}");
    assert_eq!(
        summary["parity"]["decisions_matched"], p["decisions_live"],
        "{summary}"
    );
    assert!(
        stderr.contains("using the decision config the live run recorded"),
        "{stderr}"
    );
    // A --config that differs from the recorded one: a warning naming each differing key.
    let other = dir.join("other.toml");
    std::fs::write(
        &other,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("model_cadence_ms = 250", "model_cadence_ms = 500"),
    )
    .unwrap();
    let mut cmd = Command::new(BIN);
    let out = cmd
        .args(["replay", "--no-progress", "--archive"])
        .arg(&root)
        .arg("--config")
        .arg(&other)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("differs from the decision config the live run recorded")
            && stderr.contains("decide.model_cadence_ms")
            && !stderr.contains("trade.inputs"),
        "{stderr}"
    );
    let (_, _, stderr) = replay(&root, &config);
    assert!(!stderr.contains("differs"), "{stderr}");

    // Tamper with one fired decision's price.
    let mut reader = ArchiveReader::open(&root).unwrap();
    let rows = reader
        .read_all(&[Table::Decisions], None, &|_| true)
        .unwrap();
    let target = rows
        .rows
        .iter()
        .filter(|r| r.record.body_as::<Decision>().unwrap().fired == 1)
        .nth(1)
        .copied()
        .unwrap();
    tamper(&root, Table::Decisions, &decide, &rows.rows, target, |r| {
        let mut d = r.body_as::<Decision>().unwrap();
        d.price += 1_000_000; // one cent
        r.set_body(&d);
    });

    let (ok, summary, stderr) = replay(&root, &config);
    assert!(!ok, "tampered archive passed: {summary}");
    let n = target.record.venue_seq;
    assert!(
        stderr.contains(&format!("PARITY FAILED at decision #{n}")),
        "{stderr}"
    );
    assert!(stderr.contains("price"), "{stderr}");
    assert!(stderr.contains("events up to the trigger"), "{stderr}");
    assert_eq!(summary["parity"]["first_divergence"], n);
    assert_eq!(summary["parity"]["decisions_mismatched"], 1, "{summary}");
    assert_eq!(summary["parity"]["fire_sets_equal"], false);
    std::fs::remove_dir_all(&dir).ok();
}

/// `features export --archive` (the training input) yields exactly the feature matrix and labels
/// of the same stream exported straight from the generator: the archive round trip and the bus
/// id mapping change nothing the features see.
#[test]
fn features_export_from_an_archive_equals_the_export_of_the_same_stream() {
    let pid = std::process::id();
    let market = format!("rb-test-fx-mkt-{pid}");
    let _unlink = Unlink(vec![market.clone()]);
    let dir = fs::tempdir("rb-fx", "export");
    let root = dir.join("archive");
    let (_producer, published) = spawn_synth(&market, 4, 5, 262_144);
    archive_until(&root, std::slice::from_ref(&market), &published);
    let export = |args: &[&str], out: &Path| -> serde_json::Value {
        let o = Command::new(BIN)
            .args(["features", "export", "--every-ms", "1000", "--out-dir"])
            .arg(out)
            .args(args)
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        assert!(o.status.success());
        serde_json::from_slice(&std::fs::read(out.join("meta.json")).unwrap()).unwrap()
    };
    let from_archive = export(&["--archive", root.to_str().unwrap()], &dir.join("a"));
    let direct = export(&["--windows", "4", "--seed", "5"], &dir.join("d"));
    assert_eq!(from_archive["records"], direct["records"]);
    assert_eq!(from_archive["rows"], direct["rows"]);
    assert!(
        from_archive["windows"].as_u64().unwrap() >= 2,
        "{from_archive}"
    );
    assert_eq!(from_archive["registration_errors"], 0);
    for f in ["features.npy", "rows.npy"] {
        let a = std::fs::read(dir.join("a").join(f)).unwrap();
        let d = std::fs::read(dir.join("d").join(f)).unwrap();
        assert!(
            a == d,
            "{f} differs between the archive and the direct export"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
