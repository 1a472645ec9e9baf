//! Temporary directories and names unique to this test process.

use std::path::PathBuf;

/// `<prefix>-<pid>-<name>`: a name no other test process uses (shared-memory segments,
/// directories).
#[must_use]
pub fn unique(prefix: &str, name: &str) -> String {
    format!("{prefix}-{}-{name}", std::process::id())
}

/// A fresh, empty directory `<tmp>/<prefix>-<pid>-<name>` (an older one is removed first).
///
/// # Panics
/// When the directory cannot be created.
#[must_use]
pub fn tempdir(prefix: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique(prefix, name));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `contents` to `dir/name` (a config file, a fixture); its path.
///
/// # Panics
/// When the file cannot be written.
pub fn write(dir: &std::path::Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}
