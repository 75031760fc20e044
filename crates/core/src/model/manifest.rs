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

/// A floor that many networks sit on exactly, e.g. 0% accuracy under a
/// strong attack: a prediction at or below `at_or_below` is reported as
/// the floor `value` itself. Why: a search cannot tell such networks apart
/// and neither can the truth (they are ties), and a model that says so
/// ranks the rest better than one that orders them by noise (Kendall tau-b
/// counts a pair the truth ties as neither right nor wrong, and a pair the
/// predictions tie too as no pair at all). `value <= at_or_below`, so the
/// mapping keeps the order of every other prediction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Floor {
    pub at_or_below: f64,
    pub value: f64,
}

impl Floor {
    pub fn apply(&self, prediction: f64) -> f64 {
        if prediction <= self.at_or_below {
            self.value
        } else {
            prediction
        }
    }

    /// `prediction` through `floor`, or unchanged without one.
    pub fn apply_if_any(floor: Option<Floor>, prediction: f64) -> f64 {
        floor.map_or(prediction, |f| f.apply(prediction))
    }

    /// Every prediction of `predictions` through `floor`, in place.
    pub fn apply_to_all(floor: Option<Floor>, predictions: &mut [f64]) {
        if let Some(floor) = floor {
            for p in predictions {
                *p = floor.apply(*p);
            }
        }
    }

    /// Whether both bounds are finite and the value is not above the
    /// threshold (so the mapping is monotone).
    pub fn is_valid(&self) -> bool {
        self.at_or_below.is_finite() && self.value.is_finite() && self.value <= self.at_or_below
    }
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
    /// The dataset the proxies the model reads were computed on, where it
    /// reads any: its own, or a stand-in where the data had none of its
    /// own (`Dataset::proxy_sources`). Absent in models trained before it
    /// was recorded, which read their own dataset's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_dataset: Option<String>,
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
    /// The floor predictions are clamped to; absent for most objectives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor: Option<Floor>,
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

    #[test]
    fn a_floor_maps_what_is_at_or_below_it_and_keeps_the_order_of_the_rest() {
        let floor = Floor {
            at_or_below: 0.3,
            value: 0.0,
        };
        assert!(floor.is_valid());
        let mapped: Vec<f64> = [-1.0, 0.0, 0.3, 0.30001, 2.0]
            .iter()
            .map(|&p| floor.apply(p))
            .collect();
        assert_eq!(mapped, [0.0, 0.0, 0.0, 0.30001, 2.0]);
        let inverted = Floor {
            at_or_below: 0.0,
            value: 0.3,
        };
        assert!(!inverted.is_valid(), "would put 0.1 above 0.0's image");
        assert!(
            !Floor {
                at_or_below: f64::NAN,
                value: 0.0
            }
            .is_valid()
        );
    }
}
