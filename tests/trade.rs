#![allow(clippy::expect_used, clippy::unwrap_used)]
//! `ringbolt trade` against a real synthetic producer process on the shared-memory bus: the
//! decisions it publishes must equal, one for one, an in-process replay of the same stream through
//! the decision core (baseline evaluator: fully deterministic), and the threaded model path must
//! run with the native evaluator. A missing ONNX Runtime is a clear start-up error.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use ringbolt_bus::{Consumer, Decision, Poll, Record, Segment, Start};
use ringbolt_decide::DecideConfig;
use ringbolt_decide::engine::Engine;
use ringbolt_decide::synth::{SynthConfig, SynthItem, SynthStream};
use ringbolt_testkit::fs;
use ringbolt_testkit::process::{Reaper, run_fails};

mod common;

use common::{BIN, Unlink};

fn config(
    dir: &std::path::Path,
    name: &str,
    input: &str,
    output: &str,
    evaluator: &str,
) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "[trade]\ninputs = [\"{input}\"]\noutput = \"{output}\"\nevaluator = \"{evaluator}\"\n\
             start = \"oldest\"\nexit_when_idle_ms = 3000\nopen_timeout_s = 60\noutput_capacity = 262144\n\n\
             [trade.paper_exchange]\nenabled = false\n\n\
             [decide]\nmodel_cadence_ms = 250\n"
        ),
    )
    .unwrap();
    path
}

fn run_trade(cfg: &std::path::Path) -> serde_json::Value {
    common::run_trade(cfg, &[])
}

/// The decision records of segment `name` (the paper exchange is off here: the in-process
/// reference below is the engine alone, with no fills fed back).
fn read_all(name: &str) -> Vec<Record> {
    let seg = Segment::open(name).unwrap();
    let mut c = Consumer::new(&seg, 0, Start::Oldest).unwrap();
    let mut rec = Record::zeroed();
    let mut v = Vec::new();
    while let Poll::Ready = c.poll(&mut rec) {
        v.push(rec);
    }
    v
}

/// The fields that do not depend on bus sequence numbering or wall-clock stamps.
fn key(r: &Record) -> (i64, u32, i64, i64, i64, i64, u8, u8, u8, u16) {
    let d = r.body_as::<Decision>().unwrap();
    (
        r.exchange_ts_ns,
        r.instrument,
        d.probability,
        d.edge,
        d.price,
        d.size,
        d.fired,
        d.reason,
        d.outcome,
        d.slot,
    )
}

#[test]
fn trade_decides_on_a_live_synthetic_market_like_the_replay() {
    let pid = std::process::id();
    let market = format!("rb-test-mkt-{pid}");
    let dec_base = format!("rb-test-dec-base-{pid}");
    let dec_native = format!("rb-test-dec-nat-{pid}");
    let dir = fs::tempdir("rb-trade", "live");
    let _unlink = Unlink(vec![market.clone(), dec_base.clone(), dec_native.clone()]);
    let synth = SynthConfig {
        windows: 2,
        seed: 21,
        ..SynthConfig::default()
    };
    let _producer = Reaper(
        Command::new(BIN)
            .args([
                "features",
                "synth",
                "--publish",
                &market,
                "--windows",
                "2",
                "--seed",
                "21",
            ])
            .args(["--capacity", "262144", "--linger-ms", "600000"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    Segment::open_wait(&market, Duration::from_secs(60)).unwrap();

    // Baseline evaluator: deterministic, must equal the in-process replay.
    let summary = run_trade(&config(&dir, "base", &market, &dec_base, "baseline"));
    assert_eq!(summary["lost_records"], 0, "{summary}");
    let live = read_all(&dec_base);
    assert_eq!(
        summary["decisions_published"].as_u64().unwrap(),
        live.len() as u64
    );
    let mut engine = Engine::new(DecideConfig {
        model_cadence_ms: 250,
        ..DecideConfig::default()
    });
    let mut replayed = Vec::new();
    for item in SynthStream::new(synth) {
        match item {
            SynthItem::Instrument { id, venue, name } => {
                engine.register_instrument(id, venue, &name).unwrap()
            }
            SynthItem::Record(r) => {
                if let Some(d) = engine.on_record(&r, None).decision {
                    replayed.push(d);
                }
            }
        }
    }
    assert!(live.len() > 1_000, "{} decisions", live.len());
    assert_eq!(live.len(), replayed.len());
    let fired = live
        .iter()
        .filter(|r| r.body_as::<Decision>().unwrap().fired == 1)
        .count();
    assert!(fired > 0, "{summary}");
    for (i, (a, b)) in live.iter().zip(&replayed).enumerate() {
        assert_eq!(
            key(a),
            key(b),
            "decision {i} differs between trade and replay"
        );
        assert!(a.publish_ts_ns > 0);
    }

    // Native model on its own thread: probabilities flow through the seqlock.
    let summary = run_trade(&config(&dir, "native", &market, &dec_native, "native"));
    assert!(summary["model_scores"].as_u64().unwrap() > 10, "{summary}");
    assert!(
        summary["model_decisions"].as_u64().unwrap() > 0,
        "{summary}"
    );
    assert!(summary["reflex_pass_ns"]["p50_ns"].as_u64().unwrap() > 0);
    let hash = ringbolt_decide::schema_hash();
    let with_model = read_all(&dec_native)
        .iter()
        .filter(|r| r.body_as::<Decision>().unwrap().feature_schema_hash == hash)
        .count();
    assert!(with_model > 0);

    // ort, when its library is available (always in CI): the reference evaluator drives the
    // model thread the same way.
    let ort_ok = ringbolt_decide::model::ort_eval::environment().is_ok();
    assert!(
        ort_ok || std::env::var("CI").map_or(true, |v| v != "true"),
        "CI=true and ONNX Runtime is unavailable"
    );
    if ort_ok {
        let dec_ort = format!("rb-test-dec-ortok-{pid}");
        let summary = run_trade(&config(&dir, "ortok", &market, &dec_ort, "ort"));
        let _ = Segment::unlink(&dec_ort);
        assert!(summary["model_scores"].as_u64().unwrap() > 10, "{summary}");
        assert!(
            summary["model_decisions"].as_u64().unwrap() > 0,
            "{summary}"
        );
    } else {
        eprintln!("SKIPPED the ort trade run: ONNX Runtime unavailable");
    }

    // ort with a missing library: a start-up error that names the fix.
    let err = run_fails(
        Command::new(BIN)
            .args(["trade", "--config"])
            .arg(config(
                &dir,
                "ort",
                &market,
                &format!("rb-test-dec-ort-{pid}"),
                "ort",
            ))
            .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so"),
    );
    assert!(
        err.contains("ORT_DYLIB_PATH") && err.contains("onnxruntime==1.31.1"),
        "{err}"
    );

    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn example_config_parses() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("decide/ringbolt.example.toml");
    // The example names a segment that does not exist here: it must get past config parsing and
    // model loading (native) and fail on opening the input segment.
    let err = run_fails(
        Command::new(BIN)
            .args(["trade", "--config"])
            .arg(&path)
            .env("ORT_DYLIB_PATH", "/nonexistent"),
    );
    assert!(err.contains("opening input segment"), "{err}");
}

#[test]
fn features_export_from_a_dump_equals_export_from_the_generator() {
    let dir = fs::tempdir("rb-export", "dump");
    let dump = dir.join("stream.rbdump");
    let ok = |args: &[&str]| {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let common = ["--windows", "3", "--seed", "17"];
    ok(&[
        &["features", "synth", "--out", dump.to_str().unwrap()][..],
        &common[..],
    ]
    .concat());
    let (a, b) = (dir.join("a"), dir.join("b"));
    let export_dump = [
        "features",
        "export",
        "--input",
        dump.to_str().unwrap(),
        "--out-dir",
        a.to_str().unwrap(),
    ];
    ok(&export_dump);
    ok(&[
        &["features", "export", "--out-dir", b.to_str().unwrap()][..],
        &common[..],
    ]
    .concat());
    for f in ["features.npy", "rows.npy"] {
        let (x, y) = (
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
        );
        assert!(x.len() > 1_000, "{f}: {} bytes", x.len());
        assert!(x == y, "{f} differs between dump and generator input");
    }
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("meta.json")).unwrap()).unwrap();
    assert_eq!(
        meta["feature_schema_hash"],
        format!("{:#010x}", ringbolt_decide::schema_hash())
    );
    assert!(meta["windows"].as_u64().unwrap() >= 2);
    // A truncated dump is an error naming the offset, not a crash.
    let bytes = std::fs::read(&dump).unwrap();
    std::fs::write(&dump, &bytes[..bytes.len() - 5]).unwrap();
    let err = run_fails(Command::new(BIN).args(export_dump));
    assert!(err.contains("corrupt dump frame at byte"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
