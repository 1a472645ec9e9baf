//! The model path: an XGBoost + CatBoost ensemble exported to ONNX, scored either by ONNX Runtime
//! (`ort`, the reference) or by the native flat-array evaluator, chosen by configuration.
//!
//! A model directory holds `model.json` (the manifest written by `decide/training/train.py`:
//! feature schema hash and names, members with weights) and the member `.onnx` files.

pub mod native;
pub mod onnx;
pub mod ort_eval;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::features::{CATALOGUE, N_FEATURES, schema_hash};

/// Model errors.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// ONNX Runtime's library is not available.
    #[error(
        "ONNX Runtime library not available: {0}. Fix: run scripts/setup (creates .venv with onnxruntime==1.31.1) \
         or `pip install onnxruntime==1.31.1` and set ORT_DYLIB_PATH=<venv>/lib/python3.11/site-packages/onnxruntime/capi/libonnxruntime.so.1.31.1; \
         or set `evaluator = \"native\"` (or \"baseline\") in the [trade] config"
    )]
    OrtMissing(String),
    /// ONNX Runtime failed.
    #[error("ONNX Runtime: {0}")]
    Ort(String),
    /// The ONNX file could not be understood.
    #[error("ONNX model: {0}")]
    Onnx(String),
    /// Manifest problems.
    #[error("model manifest {path}: {what}")]
    Manifest {
        /// Manifest path.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// I/O.
    #[error("reading {path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// One ensemble member in the manifest.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Member {
    /// Member name (`xgboost`, `catboost`).
    pub name: String,
    /// ONNX file, relative to the manifest.
    pub file: String,
    /// Weight in the probability average.
    pub weight: f64,
}

/// `model.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// Feature schema hash the models were trained on (hex string `0x…` or decimal).
    pub feature_schema_hash: String,
    /// Feature names in input order.
    pub features: Vec<String>,
    /// Members.
    pub members: Vec<Member>,
}

/// Which evaluator scores the ensemble.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvaluatorKind {
    /// ONNX Runtime through `ort` (reference).
    Ort,
    /// The native flat-array evaluator.
    Native,
    /// No model: the reflex path runs on the lognormal baseline alone.
    Baseline,
}

/// A loaded model directory.
#[derive(Debug)]
pub struct ModelDir {
    /// Manifest.
    pub manifest: Manifest,
    /// (member, ONNX bytes).
    pub members: Vec<(Member, Vec<u8>)>,
    /// Directory.
    pub dir: PathBuf,
}

impl ModelDir {
    /// Loads and validates `dir/model.json` against the compiled feature catalogue.
    ///
    /// # Errors
    /// [`ModelError::Manifest`] on a schema mismatch or bad manifest, [`ModelError::Io`].
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let path = dir.join("model.json");
        let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Io {
            path: path.clone(),
            source,
        })?;
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| ModelError::Manifest {
            path: path.clone(),
            what: e.to_string(),
        })?;
        let h = manifest.feature_schema_hash.trim();
        let hash = match h.strip_prefix("0x") {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => h.parse().ok(),
        };
        if hash != Some(schema_hash()) {
            return Err(ModelError::Manifest {
                path,
                what: format!(
                    "trained on feature schema {h}, this build computes {:#010x}: retrain (python decide/training/train.py)",
                    schema_hash()
                ),
            });
        }
        let names: Vec<&str> = CATALOGUE.iter().map(|f| f.name).collect();
        if manifest
            .features
            .iter()
            .map(String::as_str)
            .ne(names.iter().copied())
        {
            return Err(ModelError::Manifest {
                path,
                what: "feature names differ from the catalogue".into(),
            });
        }
        if manifest.members.is_empty() {
            return Err(ModelError::Manifest {
                path,
                what: "no members".into(),
            });
        }
        let mut members = Vec::new();
        for m in &manifest.members {
            let p = dir.join(&m.file);
            let bytes = std::fs::read(&p).map_err(|source| ModelError::Io { path: p, source })?;
            members.push((m.clone(), bytes));
        }
        Ok(Self {
            manifest,
            members,
            dir: dir.to_path_buf(),
        })
    }
}

/// The ensemble with one evaluator.
#[derive(Debug)]
pub enum Ensemble {
    /// Native evaluator per member.
    Native(Vec<(f64, native::TreeEnsemble)>),
    /// ORT session per member.
    Ort(Vec<(f64, ort_eval::OrtModel)>),
}

impl Ensemble {
    /// Builds the ensemble of `dir` with `kind` (must not be `Baseline`).
    ///
    /// # Errors
    /// Loading errors; [`ModelError::OrtMissing`] for `Ort` without the library.
    pub fn load(dir: &ModelDir, kind: EvaluatorKind) -> Result<Self, ModelError> {
        let total: f64 = dir.members.iter().map(|(m, _)| m.weight).sum();
        if total <= 0.0 {
            return Err(ModelError::Manifest {
                path: dir.dir.join("model.json"),
                what: "weights sum to ≤ 0".into(),
            });
        }
        match kind {
            EvaluatorKind::Native => {
                let mut v = Vec::new();
                for (m, bytes) in &dir.members {
                    let t = native::TreeEnsemble::from_onnx(bytes)?;
                    if t.n_features_used > N_FEATURES {
                        return Err(ModelError::Onnx(format!(
                            "{} uses feature {} ≥ {N_FEATURES}",
                            m.name, t.n_features_used
                        )));
                    }
                    v.push((m.weight / total, t));
                }
                Ok(Self::Native(v))
            }
            EvaluatorKind::Ort => {
                let mut v = Vec::new();
                for (m, bytes) in &dir.members {
                    v.push((
                        m.weight / total,
                        ort_eval::OrtModel::load(bytes, N_FEATURES)?,
                    ));
                }
                Ok(Self::Ort(v))
            }
            EvaluatorKind::Baseline => Err(ModelError::Manifest {
                path: dir.dir.join("model.json"),
                what: "the baseline evaluator has no ensemble".into(),
            }),
        }
    }

    /// Ensemble P(Up): the weighted mean of the members' probabilities.
    ///
    /// # Errors
    /// ORT runtime errors.
    pub fn predict(&mut self, x: &[f32; N_FEATURES]) -> Result<f64, ModelError> {
        match self {
            Self::Native(v) => Ok(v.iter().map(|(w, t)| w * t.predict(x)).sum()),
            Self::Ort(v) => {
                let mut p = 0.0;
                for (w, m) in v.iter_mut() {
                    p += *w * m.predict(x)?;
                }
                Ok(p)
            }
        }
    }

    /// Per-member probabilities (for equality tests and model cards).
    ///
    /// # Errors
    /// ORT runtime errors.
    pub fn member_predictions(
        &mut self,
        x: &[f32; N_FEATURES],
        out: &mut Vec<f64>,
    ) -> Result<(), ModelError> {
        out.clear();
        match self {
            Self::Native(v) => out.extend(v.iter().map(|(_, t)| t.predict(x))),
            Self::Ort(v) => {
                for (_, m) in v.iter_mut() {
                    out.push(m.predict(x)?);
                }
            }
        }
        Ok(())
    }
}

/// The model directory the appliance uses when `[trade] model_dir` is unset, found from the
/// executable `exe`: the release's `<release>/models` (the executable is
/// `<release>/bin/ringbolt`), else the `decide/models` of the nearest ancestor that is a
/// workspace checkout (development and test builds under `target/`). Never a build-time path.
#[must_use]
pub fn model_dir_near(exe: &Path) -> Option<PathBuf> {
    let has_manifest = |d: &Path| d.join("model.json").is_file();
    let release = exe.parent()?.parent()?.join("models");
    if has_manifest(&release) {
        return Some(release);
    }
    exe.ancestors()
        .map(|a| a.join("decide").join("models"))
        .find(|d| has_manifest(d))
}

/// [`model_dir_near`] of the running executable.
///
/// # Errors
/// [`ModelError::Manifest`] naming the places looked at and the config key.
pub fn default_model_dir() -> Result<PathBuf, ModelError> {
    let exe = std::env::current_exe().map_err(|source| ModelError::Io {
        path: "/proc/self/exe".into(),
        source,
    })?;
    model_dir_near(&exe).ok_or_else(|| ModelError::Manifest {
        path: exe.join("../../models/model.json"),
        what: "no model directory next to the executable (<release>/models) or in a workspace \
               checkout above it (decide/models): set [trade] model_dir"
            .into(),
    })
}

/// The model directory of this source tree (`decide/models`): tests and the lab only. The
/// appliance finds its model at run time ([`default_model_dir`], `[trade] model_dir`).
#[must_use]
pub fn shipped_model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_model_is_found_next_to_the_executable_of_a_release() {
        let root = std::env::temp_dir().join(format!("rb-release-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let release = root.join("releases").join("r1");
        std::fs::create_dir_all(release.join("bin")).unwrap();
        std::fs::create_dir_all(release.join("models")).unwrap();
        let exe = release.join("bin").join("ringbolt");
        assert_eq!(model_dir_near(&exe), None, "no model.json yet");
        std::fs::write(release.join("models").join("model.json"), "{}").unwrap();
        assert_eq!(model_dir_near(&exe), Some(release.join("models")));
        // A build under a workspace checkout finds the checkout's decide/models.
        let checkout = root.join("ws");
        std::fs::create_dir_all(checkout.join("decide").join("models")).unwrap();
        std::fs::write(checkout.join("decide/models/model.json"), "{}").unwrap();
        let built = checkout.join("target").join("release").join("ringbolt");
        assert_eq!(model_dir_near(&built), Some(checkout.join("decide/models")));
        let _ = std::fs::remove_dir_all(&root);
    }
}
