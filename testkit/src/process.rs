//! Child processes of tests: the test binary re-run as a child role, commands that must
//! succeed, children killed on drop, waiting for files they write.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The name of the ignored test the child roles run in (by convention,
/// `child_process_entry`).
pub const CHILD_ENTRY: &str = "child_process_entry";

/// A command that re-runs this test binary's ignored [`CHILD_ENTRY`] test alone, with
/// `role_var=role` in its environment; stdout discarded, stderr inherited.
///
/// # Panics
/// When the test binary's path is unknown.
#[must_use]
pub fn child_test(role_var: &str, role: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            CHILD_ENTRY,
            "--exact",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(role_var, role)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    command
}

/// A child killed (and reaped) when dropped, however the test ends.
#[derive(Debug)]
pub struct Reaper(pub Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `command` to completion and asserts it succeeded (its stderr in the message).
///
/// # Panics
/// When it cannot run or exits unsuccessfully.
pub fn run_ok(command: &mut Command) -> Output {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs `command` with `input` on its stdin and captured stdout / stderr.
///
/// # Panics
/// When it cannot be spawned or fed.
pub fn run_with_stdin(command: &mut Command, input: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Reads the first line of a child's piped stdout as JSON (the start-up line of
/// `ringbolt emulate` and the like).
///
/// # Panics
/// When stdout is not piped, or the line is not JSON.
pub fn first_json_line(child: &mut Child) -> serde_json::Value {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
}

/// Waits until `path` exists.
///
/// # Panics
/// After `timeout`.
pub fn wait_for(path: &Path, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// An integer from the environment, `default` when unset or not a number.
#[must_use]
pub fn env_u64(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `command` to completion, asserts it failed, and returns its stderr (lossily decoded)
/// for the caller to check the error it names.
///
/// # Panics
/// When it cannot run or exits successfully.
pub fn run_fails(command: &mut Command) -> String {
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success(),
        "expected a failure; stderr: {stderr}"
    );
    stderr
}
