//! The ONNX Runtime reference evaluator (`ort` with `load-dynamic`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::Tensor;

use super::ModelError;

static ENV: OnceLock<Result<Environment, String>> = OnceLock::new();

/// The library the process's configuration names (`[trade] ort_library`), set once at start-up.
static CONFIGURED: OnceLock<PathBuf> = OnceLock::new();

/// Names the library to load (the configured `[trade] ort_library`); must be called before the
/// first ORT model loads. Returns false when a library was already named.
pub fn use_library(path: &Path) -> bool {
    CONFIGURED.set(path.to_path_buf()).is_ok()
}

/// The environment variable naming libonnxruntime.so.
pub const DYLIB_ENV: &str = "ORT_DYLIB_PATH";

/// Candidate locations of `libonnxruntime.so*` when none is configured and [`DYLIB_ENV`] is
/// unset: the release's own `<release>/lib/libonnxruntime.so*` (the executable is
/// `<release>/bin/ringbolt`), then the PyPI `onnxruntime` wheel inside
/// `<workspace>/.venv/lib/python3*/site-packages/onnxruntime/capi/` for every ancestor of the
/// current directory and of the executable (a workspace checkout: development and tests).
/// Never a build-time path.
#[must_use]
pub fn candidate_libraries() -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Some(release) = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.to_path_buf()))
    {
        found.extend(entries_starting_with(
            &release.join("lib"),
            "libonnxruntime.so",
        ));
    }
    let mut roots: Vec<PathBuf> = Vec::new();
    let mut push_ancestors = |p: &Path| {
        for a in p.ancestors() {
            if !roots.iter().any(|r| r == a) {
                roots.push(a.to_path_buf());
            }
        }
    };
    if let Ok(cwd) = std::env::current_dir() {
        push_ancestors(&cwd);
    }
    if let Ok(exe) = std::env::current_exe() {
        push_ancestors(&exe);
    }
    for root in roots {
        for py in entries_starting_with(&root.join(".venv").join("lib"), "python3") {
            let capi = py.join("site-packages").join("onnxruntime").join("capi");
            // Prefer the fully versioned name (libonnxruntime.so.1.31.1).
            found.extend(
                entries_starting_with(&capi, "libonnxruntime.so")
                    .into_iter()
                    .rev(),
            );
        }
    }
    found
}

/// Sorted entries of `dir` whose file name starts with `prefix` (empty if unreadable).
fn entries_starting_with(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    v.sort();
    v
}

/// Locates the library: the configured one ([`use_library`]), else [`DYLIB_ENV`] if set, else
/// the first candidate.
///
/// # Errors
/// [`ModelError::OrtMissing`] naming the fix.
pub fn locate_library() -> Result<PathBuf, ModelError> {
    if let Some(p) = CONFIGURED.get() {
        if p.is_file() {
            return Ok(p.clone());
        }
        return Err(ModelError::OrtMissing(format!(
            "[trade] ort_library = {} does not name a file",
            p.display()
        )));
    }
    if let Some(p) = std::env::var_os(DYLIB_ENV) {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        return Err(ModelError::OrtMissing(format!(
            "{DYLIB_ENV}={} does not name a file",
            p.display()
        )));
    }
    candidate_libraries().into_iter().next().ok_or_else(|| {
        ModelError::OrtMissing(format!(
            "{DYLIB_ENV} is unset and no <workspace>/.venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so* was found"
        ))
    })
}

/// The process-wide ONNX Runtime environment (loaded once).
///
/// # Errors
/// [`ModelError::OrtMissing`] when the library cannot be found or loaded.
pub fn environment() -> Result<&'static Environment, ModelError> {
    let env = ENV.get_or_init(|| {
        let path = locate_library().map_err(|e| e.to_string())?;
        let builder =
            ort::init_from(&path).map_err(|e| format!("loading {}: {e}", path.display()))?;
        builder.with_name("ringbolt-decide").build().map_err(|e| {
            format!(
                "creating the ONNX Runtime environment from {}: {e}",
                path.display()
            )
        })
    });
    env.as_ref().map_err(|e| ModelError::OrtMissing(e.clone()))
}

/// One ONNX model in an ORT session, scored one row at a time.
#[derive(Debug)]
pub struct OrtModel {
    session: Session,
    input: Tensor<f32>,
    output_index: usize,
    columns_positive: usize,
}

impl OrtModel {
    /// Loads `bytes` into a single-threaded session with a reusable `[1, n_features]` input.
    ///
    /// # Errors
    /// [`ModelError::OrtMissing`] or [`ModelError::Ort`].
    pub fn load(bytes: &[u8], n_features: usize) -> Result<Self, ModelError> {
        let env = environment()?;
        let ort_err = |e: ort::Error| ModelError::Ort(e.to_string());
        let session = Session::builder(env)
            .map_err(ort_err)?
            .with_intra_threads(1)
            .map_err(|e| ModelError::Ort(e.to_string()))?
            .with_inter_threads(1)
            .map_err(|e| ModelError::Ort(e.to_string()))?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(|e| ModelError::Ort(e.to_string()))?
            .commit_from_memory(bytes)
            .map_err(ort_err)?;
        let input = Tensor::<f32>::from_array(([1usize, n_features], vec![0f32; n_features]))
            .map_err(ort_err)?;
        let outputs = session.outputs();
        // Classifiers: (label, probabilities); regressors: (variable).
        let output_index = if outputs.len() >= 2 { 1 } else { 0 };
        let columns_positive = usize::from(outputs.len() >= 2);
        Ok(Self {
            session,
            input,
            output_index,
            columns_positive,
        })
    }

    /// P(positive class) for one feature row.
    ///
    /// # Errors
    /// [`ModelError::Ort`] on a runtime failure or an unexpected output.
    pub fn predict(&mut self, x: &[f32]) -> Result<f64, ModelError> {
        let (_, data) = self
            .input
            .try_extract_tensor_mut::<f32>()
            .map_err(|e| ModelError::Ort(e.to_string()))?;
        data.copy_from_slice(x);
        let outputs = self
            .session
            .run(ort::inputs![&self.input])
            .map_err(|e| ModelError::Ort(e.to_string()))?;
        let (_, probs) = outputs[self.output_index]
            .try_extract_tensor::<f32>()
            .map_err(|e| ModelError::Ort(e.to_string()))?;
        probs
            .get(self.columns_positive)
            .map(|p| f64::from(*p))
            .ok_or_else(|| ModelError::Ort(format!("output has {} values", probs.len())))
    }
}
