//! `ringbolt demo|bench|emulate`: the lab's commands, forwarded to the sibling `ringbolt-lab`
//! binary so the appliance links no emulator, bench peer or demo code (no iceoryx2, hyper
//! server, tokio-tungstenite, rcgen or tokio-rustls in its dependency tree).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// File name of the lab binary, installed next to `ringbolt`.
pub const LAB_BIN: &str = "ringbolt-lab";

/// `ringbolt-lab` next to this executable.
fn lab_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the ringbolt binary")?;
    let lab = exe.with_file_name(LAB_BIN);
    if !lab.is_file() {
        bail!(
            "`{LAB_BIN}` not found next to {}: benches, emulators and the demo live in the lab \
             binary; build it with `cargo build --bin {LAB_BIN}` (add --release for a release \
             build) or run it directly",
            exe.display()
        );
    }
    Ok(lab)
}

/// Replaces this process with `ringbolt-lab <command> <args…>` (the log filter goes along in
/// `RINGBOLT_LOG`); returns only on failure.
pub fn forward(command: &str, args: &[OsString], log: &str) -> Result<()> {
    let lab = lab_binary()?;
    let err = Command::new(&lab)
        .arg(command)
        .args(args)
        .env("RINGBOLT_LOG", log)
        .exec();
    Err(err).with_context(|| format!("running {}", lab.display()))
}
