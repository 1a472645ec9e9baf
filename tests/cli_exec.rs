#![allow(clippy::expect_used, clippy::unwrap_used)]
//! `ringbolt exec …` end to end: the built binary signs every reference vector's input and
//! prints the reference's amounts, signatures, digests and bodies; `l1-headers`/`l2-headers`
//! print the reference's headers; key files open to group/others are refused; bad lines are
//! reported and skipped.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use ringbolt_testkit::{fs, process};
use serde_json::Value;

fn vectors() -> Value {
    serde_json::from_str(include_str!("../exec/vectors/vectors.json")).unwrap()
}

fn tmpdir(name: &str) -> PathBuf {
    fs::tempdir("ringbolt-cli-exec", name)
}

fn key_file(dir: &Path, key: &str, mode: u32) -> PathBuf {
    let p = dir.join(format!("key-{mode:o}"));
    if p.exists() {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    std::fs::write(&p, format!("{key}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

fn run(args: &[&str], stdin: &str) -> (bool, String, String) {
    let out = process::run_with_stdin(
        Command::new(env!("CARGO_BIN_EXE_ringbolt")).args(args),
        stdin,
    );
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// `ringbolt exec <command> --key-file <key_file> <extra…>` with `stdin`.
fn run_keyed(
    command: &str,
    key_file: &Path,
    extra: &[&str],
    stdin: &str,
) -> (bool, String, String) {
    let mut args = vec!["exec", command, "--key-file", key_file.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(&args, stdin)
}

#[test]
fn sign_matches_reference_vectors() {
    let v = vectors();
    let dir = tmpdir("sign");
    let api_key = v["creds"]["api_key"].as_str().unwrap();
    let mut checked = 0;
    for (ki, key) in v["keys"].as_array().unwrap().iter().enumerate() {
        let kf = key_file(&dir, key.as_str().unwrap(), 0o600);
        let cases: Vec<&Value> = v["orders"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["key_index"].as_u64() == Some(ki as u64))
            .collect();
        let stdin: String = cases.iter().map(|o| format!("{}\n", o["input"])).collect();
        let (ok, out, err) = run_keyed("sign", &kf, &["--api-key", api_key], &stdin);
        assert!(ok, "{err}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), cases.len());
        for (line, case) in lines.iter().zip(&cases) {
            let got: Value = serde_json::from_str(line).unwrap();
            assert_eq!(got, case["expected"], "input {}", case["input"]);
            checked += 1;
        }
    }
    assert_eq!(checked, v["orders"].as_array().unwrap().len());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn key_file_open_to_others_is_refused_and_bad_lines_are_reported() {
    let v = vectors();
    let dir = tmpdir("perm");
    let key = v["keys"][0].as_str().unwrap();
    for mode in [0o644, 0o640, 0o604] {
        let kf = key_file(&dir, key, mode);
        let (ok, out, err) = run_keyed("sign", &kf, &[], "");
        assert!(!ok && out.is_empty());
        assert!(err.contains("chmod 600"), "{err}");
        assert!(!err.contains(&key[4..20]), "the key must never be printed");
    }
    let kf = key_file(&dir, key, 0o400);
    let good = v["orders"][0]["input"].to_string();
    let stdin = format!("{good}\nnot json\n\n{{\"side\":\"BUY\"}}\n{good}\n");
    let (ok, out, err) = run_keyed("sign", &kf, &[], &stdin);
    assert!(!ok, "failed lines give a non-zero exit");
    assert!(err.contains("2 of 4 order lines failed"), "{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[0]["signature"].is_string());
    assert_eq!(lines[1]["line"], 2);
    assert_eq!(lines[2]["line"], 4);
    assert!(
        lines[2]["error"]
            .as_str()
            .unwrap()
            .contains("missing field")
    );
    assert_eq!(lines[3], lines[0]);
    std::fs::set_permissions(&kf, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn header_commands_match_reference_vectors() {
    let v = vectors();
    let dir = tmpdir("hdr");
    let c = &v["creds"];
    for (i, case) in v["l2_headers"].as_array().unwrap().iter().enumerate() {
        let mut args: Vec<String> = vec![
            "exec".into(),
            "l2-headers".into(),
            "--address".into(),
            case["headers"]["POLY_ADDRESS"]
                .as_str()
                .unwrap()
                .to_lowercase(),
            "--api-key".into(),
            c["api_key"].as_str().unwrap().into(),
            "--secret".into(),
            c["secret"].as_str().unwrap().into(),
            "--passphrase".into(),
            c["passphrase"].as_str().unwrap().into(),
            "--timestamp".into(),
            case["timestamp"].to_string(),
            "--method".into(),
            case["method"].as_str().unwrap().into(),
            "--path".into(),
            case["path"].as_str().unwrap().into(),
        ];
        if let Some(body) = case["body"].as_str() {
            let f = dir.join(format!("body-{i}"));
            std::fs::write(&f, body).unwrap();
            args.push("--body-file".into());
            args.push(f.to_str().unwrap().into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, out, err) = run(&args, "");
        assert!(ok, "{err}");
        let got: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(got, case["headers"], "case {i}");
        // Header order as the reference builds it.
        assert!(out.find("POLY_ADDRESS").unwrap() < out.find("POLY_PASSPHRASE").unwrap());
    }
    for case in v["l1_headers"].as_array().unwrap() {
        let key = v["keys"][case["key_index"].as_u64().unwrap() as usize]
            .as_str()
            .unwrap();
        let kf = key_file(&dir, key, 0o600);
        let (ok, out, err) = run_keyed(
            "l1-headers",
            &kf,
            &[
                "--timestamp",
                &case["timestamp"].to_string(),
                "--nonce",
                &case["nonce"].to_string(),
                "--chain-id",
                &case["chain_id"].to_string(),
            ],
            "",
        );
        assert!(ok, "{err}");
        let got: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(got, case["headers"]);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
