//! A served model: LightGBM model text plus a manifest, checked against each
//! other and against the server's feature names before it may serve.
//!
//! On disk (the model-directory format): `<dir>/<dataset>/<metric>.manifest.json`
//! names its model text, `<dir>/<dataset>/<metric>.<sha-prefix>.model.txt`.
//! Model files are content-addressed and written before the manifest, so
//! replacing the manifest (one atomic rename) is the whole swap: a reader
//! never pairs a manifest with the wrong model text. The manifest also
//! carries the SHA-256 of the text, which catches a pair copied by hand.

pub mod blend;
pub mod forest;
pub mod manifest;

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use sha2::{Digest, Sha256};

pub use self::{
    forest::Forest,
    manifest::{Floor, HeldoutMetrics, Interval, Manifest},
};
use crate::{
    dataset::Dataset,
    features::{FeatureMap, ProxyValues},
    space::{SearchSpace, SearchSpaces},
};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: invalid manifest: {source}")]
    Manifest {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

/// A validated model, ready to serve. Immutable; shared through `Arc`.
#[derive(Debug)]
pub struct Model {
    pub manifest: Manifest,
    pub dataset: Dataset,
    /// The dataset a candidate's proxies must be computed on for this model
    /// to read them: the manifest's `proxy_dataset`, else its own.
    pub proxy_dataset: Dataset,
    pub space: Arc<dyn SearchSpace>,
    forest: Forest,
    features: FeatureMap,
}

/// The suffix of manifest files.
pub const MANIFEST_SUFFIX: &str = ".manifest.json";

/// The manifest path of an objective under a model directory.
pub fn manifest_path(dir: &Path, objective: &str) -> PathBuf {
    let mut path = dir.join(objective).into_os_string();
    path.push(MANIFEST_SUFFIX);
    PathBuf::from(path)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Model {
    /// Reads a manifest and the model text it names, and validates both.
    pub fn load(manifest_path: &Path, spaces: &SearchSpaces) -> Result<Model, ModelError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| ModelError::Io { path, source }
        };
        let text = std::fs::read_to_string(manifest_path).map_err(io(manifest_path))?;
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|source| ModelError::Manifest {
                path: manifest_path.to_owned(),
                source,
            })?;
        // Checked before reading: a manifest must not point outside its
        // directory.
        if manifest.model_file.is_empty()
            || manifest.model_file.contains(['/', '\\'])
            || manifest.model_file.starts_with('.')
        {
            return Err(ModelError::Invalid(format!(
                "{}: model_file {:?} must be a plain file name",
                manifest_path.display(),
                manifest.model_file
            )));
        }
        let model_path = manifest_path.with_file_name(&manifest.model_file);
        let model_text = std::fs::read_to_string(&model_path).map_err(io(&model_path))?;
        Model::from_parts(manifest, &model_text, spaces)
    }

    /// Validates a manifest against model text: the hash matches, the text
    /// parses, the feature names agree and are known, and a probe row
    /// predicts a finite value.
    pub fn from_parts(
        manifest: Manifest,
        model_text: &str,
        spaces: &SearchSpaces,
    ) -> Result<Model, ModelError> {
        let label = format!("model {} {}", manifest.objective, manifest.version);
        let invalid = |m: String| ModelError::Invalid(format!("{label}: {m}"));
        let actual = sha256_hex(model_text.as_bytes());
        if actual != manifest.model_sha256 {
            return Err(invalid(format!(
                "model text has SHA-256 {actual}, the manifest expects {} (a partial write, or a mismatched pair)",
                manifest.model_sha256
            )));
        }
        let dataset = Dataset::from_name(&manifest.dataset)
            .ok_or_else(|| invalid(format!("unknown dataset {:?}", manifest.dataset)))?;
        let proxy_dataset = match &manifest.proxy_dataset {
            None => dataset,
            Some(name) => Dataset::from_name(name)
                .ok_or_else(|| invalid(format!("unknown proxy_dataset {name:?}")))?,
        };
        let space = spaces
            .get(&manifest.search_space)
            .cloned()
            .ok_or_else(|| invalid(format!("unknown search space {:?}", manifest.search_space)))?;
        for interval in [manifest.interval, manifest.interval_without_proxies]
            .into_iter()
            .flatten()
        {
            if !(interval.half_width.is_finite()
                && interval.half_width >= 0.0
                && interval.coverage > 0.0
                && interval.coverage < 1.0)
            {
                return Err(invalid(format!(
                    "interval {interval:?}: the half-width must be finite and not negative, the coverage between 0 and 1"
                )));
            }
        }
        if let Some(floor) = manifest.floor.filter(|f| !f.is_valid()) {
            return Err(invalid(format!(
                "floor {floor:?}: both bounds must be finite and the value not above the threshold"
            )));
        }
        let forest = Forest::parse(model_text).map_err(|e| invalid(e.to_string()))?;
        if forest.feature_names() != manifest.feature_names.as_slice() {
            return Err(invalid(
                "the model text and the manifest list different features".to_owned(),
            ));
        }
        let features = FeatureMap::resolve(space.as_ref(), &manifest.feature_names)
            .map_err(|e| invalid(e.to_string()))?;
        let model = Model {
            manifest,
            dataset,
            proxy_dataset,
            space,
            forest,
            features,
        };
        let probe = model
            .space
            .parse(&model.space.probe_encoding())
            .map_err(|e| invalid(e.to_string()))?;
        let value = model.predict(&probe.features, None, &mut Vec::new());
        if !value.is_finite() {
            return Err(invalid(format!("predicts {value} on the probe row")));
        }
        Ok(model)
    }

    /// Predicts one candidate. `proxies` is `None` when the candidate's
    /// proxies were not computed on this model's `proxy_dataset`. `row` is scratch
    /// space, reused across calls to avoid allocating per prediction.
    pub fn predict(
        &self,
        space_features: &[f64],
        proxies: Option<&ProxyValues>,
        row: &mut Vec<f64>,
    ) -> f64 {
        row.clear();
        self.features.push_row(space_features, proxies, row);
        Floor::apply_if_any(self.manifest.floor, self.forest.predict(row))
    }

    /// Predicts many candidates: `rows` is scratch space for their feature
    /// rows, `out` gets one value per candidate. Equal to [`Model::predict`]
    /// on each, bit for bit, and faster: each tree is walked by a block of
    /// rows at a time while it is in cache.
    pub fn predict_batch<'a>(
        &self,
        candidates: impl IntoIterator<Item = (&'a [f64], Option<&'a ProxyValues>)>,
        rows: &mut Vec<f64>,
        out: &mut Vec<f64>,
    ) {
        rows.clear();
        for (space_features, proxies) in candidates {
            self.features.push_row(space_features, proxies, rows);
        }
        out.clear();
        out.resize(rows.len() / self.features.len().max(1), 0.0);
        self.forest.predict_batch(rows, out);
        Floor::apply_to_all(self.manifest.floor, out);
    }

    /// The interval of a prediction for a candidate with `proxies` (as
    /// given to [`Model::predict`]): a model that switches on proxies
    /// answers a candidate without every proxy from other trees, with their
    /// own interval.
    pub fn interval(&self, proxies: Option<&ProxyValues>) -> Option<Interval> {
        if self.features.switches_on_proxies() && !proxies.is_some_and(ProxyValues::all_sent) {
            self.manifest.interval_without_proxies
        } else {
            self.manifest.interval
        }
    }

    pub fn feature_map(&self) -> &FeatureMap {
        &self.features
    }
}
