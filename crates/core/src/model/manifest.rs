//! The manifest stored beside every model.

use serde::{Deserialize, Serialize};

/// Quality on rows the model never trained on. A rank correlation is
/// undefined (NaN) when the predictions or the truth are all ties; JSON has
/// no NaN, so it is written as `null` and read back as NaN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldoutMetrics {
    pub rows: u64,
    #[serde(deserialize_with = "nan_if_null")]
    pub kendall_tau: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub spearman_rho: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub rmse: f64,
    /// How often the true value fell inside the manifest's interval on
    /// these rows; absent for a model without an interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_coverage: Option<f64>,
}

/// The interval every prediction of a model carries: the prediction plus
/// or minus `half_width`, which held the true value for about `coverage`
/// of networks drawn like the training ones (split conformal).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub coverage: f64,
    pub half_width: f64,
}

fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The format of this file; bumped on incompatible changes.
    pub format: u32,
    pub objective: String,
    pub search_space: String,
    pub dataset: String,
    pub unit: String,
    /// Unique and sortable by creation: `<UTC time>-<model hash prefix>`.
    pub version: String,
    /// The exact ordered feature names the model was trained on.
    pub feature_names: Vec<String>,
    pub training_rows: u64,
    pub heldout: HeldoutMetrics,
    /// The interval of a prediction; for a model that reads proxies, of a
    /// candidate that sent every proxy. Absent in models trained before
    /// intervals existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Interval>,
    /// For a model that reads proxies: the interval of a candidate without
    /// every proxy, answered by the trees trained on the architecture alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_without_proxies: Option<Interval>,
    /// RFC 3339.
    pub created_at: String,
    /// SHA-256 of the training rows (features and targets), hex.
    pub training_data_sha256: String,
    /// SHA-256 of the model text, hex.
    pub model_sha256: String,
    /// The model text's file name, in the manifest's directory.
    pub model_file: String,
    /// What trained the model, with its parameters, for reproducibility.
    pub trainer: serde_json::Value,
}

pub const MANIFEST_FORMAT: u32 = 1;

impl Manifest {
    /// The content-addressed file name for model text with this manifest's
    /// objective and hash.
    pub fn content_addressed_file_name(&self) -> String {
        let metric = self.objective.rsplit('/').next().unwrap_or(&self.objective);
        let prefix = self.model_sha256.get(..12).unwrap_or(&self.model_sha256);
        format!("{metric}.{prefix}.model.txt")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_undefined_correlation_survives_a_round_trip() {
        let m = HeldoutMetrics {
            rows: 12,
            kendall_tau: f64::NAN,
            spearman_rho: 0.5,
            rmse: 1.0,
            interval_coverage: None,
        };
        let json = serde_json::to_string(&m).expect("serialise");
        assert!(json.contains("\"kendall_tau\":null"), "{json}");
        let back: HeldoutMetrics = serde_json::from_str(&json).expect("read back");
        assert!(back.kendall_tau.is_nan());
        assert_eq!((back.rows, back.spearman_rho, back.rmse), (12, 0.5, 1.0));
    }
}
