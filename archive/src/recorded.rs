//! The decision config a live run used, recorded in the archive so `ringbolt replay` can
//! re-decide with it by default.
//!
//! The archiver loads the same `ringbolt.toml` as the trade process and, at start-up, writes the
//! decision-relevant part (`[trade]` and `[decide]`, never `[exec]`: no key path, no key material)
//! to `<root>/_ringbolt/config/decide-<sha256 prefix>.toml`, then points
//! `<root>/_ringbolt/config/decide.current` at it. Both writes are atomic (hidden temporary file,
//! fsync, rename, directory fsync). A file is named by its content's hash, so it is never
//! overwritten by a different config: a later run with another config gets its own file and the
//! pointer moves to it. Replay uses the pointed-to file (the latest run's config) and says which
//! on stderr. `_ringbolt` is the archiver's hidden state directory: Hive readers (DuckDB, pyarrow)
//! and [`crate::reader`] skip it.

use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::layout::{self, STATE_DIR};

/// Directory of the recorded configs, under the archive root.
#[must_use]
pub fn config_dir(root: &Path) -> PathBuf {
    root.join(STATE_DIR).join("config")
}

/// The pointer file: the name of the latest recorded decision config.
const POINTER: &str = "decide.current";

/// A recorded decision config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedConfig {
    /// The file.
    pub path: PathBuf,
    /// Its TOML.
    pub text: String,
    /// How many decision configs the archive holds (more than one: runs with other configs).
    pub recorded: usize,
}

/// Records `text` (the decision config as TOML) in the archive at `root` and points the
/// `decide.current` pointer at it; returns the file. An identical earlier record is reused.
///
/// # Errors
/// The OS error of a failed write, or an existing file of that name with other content.
pub fn record_decision_config(root: &Path, text: &str) -> io::Result<PathBuf> {
    let dir = config_dir(root);
    layout::create_dir_durable(&dir)?;
    let digest = Sha256::digest(text.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    let name = format!("decide-{hex}.toml");
    let path = dir.join(&name);
    match std::fs::read_to_string(&path) {
        Ok(existing) if existing == text => {}
        Ok(_) => {
            return Err(io::Error::other(format!(
                "{}: exists with other content (hash prefix collision); not overwritten",
                path.display()
            )));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            layout::write_atomic(&path, text.as_bytes())?;
        }
        Err(e) => return Err(e),
    }
    let pointer = dir.join(POINTER);
    if std::fs::read_to_string(&pointer).ok().as_deref() != Some(name.as_str()) {
        layout::write_atomic(&pointer, name.as_bytes())?;
    }
    Ok(path)
}

/// The latest decision config recorded in the archive at `root` (`None`: the archive predates
/// recording, or its archiver ran with another version).
///
/// # Errors
/// An unreadable pointer or config file.
pub fn recorded_decision_config(root: &Path) -> io::Result<Option<RecordedConfig>> {
    let dir = config_dir(root);
    let name = match std::fs::read_to_string(dir.join(POINTER)) {
        Ok(n) => n.trim().to_owned(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if name.contains('/') || !name.starts_with("decide-") {
        return Err(io::Error::other(format!(
            "{}: bad pointer `{name}`",
            dir.join(POINTER).display()
        )));
    }
    let path = dir.join(&name);
    let text = std::fs::read_to_string(&path)?;
    let recorded = std::fs::read_dir(&dir)?
        .filter_map(Result::ok)
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.starts_with("decide-") && n.ends_with(".toml")
        })
        .count();
    Ok(Some(RecordedConfig {
        path,
        text,
        recorded,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn records_are_content_named_never_overwritten_and_the_pointer_follows_the_latest() {
        let root = std::env::temp_dir().join(format!("rb-recorded-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        assert_eq!(recorded_decision_config(&root).unwrap(), None);
        let a = record_decision_config(&root, "[trade]\noutput = \"a\"\n").unwrap();
        assert_eq!(
            record_decision_config(&root, "[trade]\noutput = \"a\"\n").unwrap(),
            a
        );
        let b = record_decision_config(&root, "[trade]\noutput = \"b\"\n").unwrap();
        assert_ne!(a, b);
        let got = recorded_decision_config(&root).unwrap().unwrap();
        assert_eq!((got.path, got.recorded), (b, 2));
        assert_eq!(
            std::fs::read_to_string(&a).unwrap(),
            "[trade]\noutput = \"a\"\n"
        );
        // The archive's part listing does not see the config directory.
        assert!(crate::report::list_parts(&root).unwrap().is_empty());
        std::fs::remove_dir_all(&root).ok();
    }
}
