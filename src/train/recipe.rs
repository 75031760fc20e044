//! The training recipe: which LightGBM configuration a model gets, chosen
//! from the data at hand by inner cross-validation, and the interval its
//! predictions carry.
//!
//! Why a choice at all: with a few dozen rows, boosting overfits and a
//! bagged forest of deep trees ranks networks better; with a thousand,
//! boosting wins (`docs/quality.md` has the figures). Rather than a
//! threshold on the row count, every candidate configuration is scored by
//! the Kendall tau of its out-of-fold predictions, the figure a search
//! relies on, and the best one is refitted on every row.
//!
//! The interval is split-conformal on the same out-of-fold residuals: the
//! half-width is their `coverage` quantile (with the finite-sample
//! correction), so on networks drawn like the training ones the true value
//! falls inside about `coverage` of the time, whatever the model.

use serde_json::{Value, json};

use super::{SplitMix64, TrainError, lightgbm, metrics};
use crate::model::Forest;

/// One LightGBM configuration the recipe can choose.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub name: &'static str,
    params: Value,
}

impl Candidate {
    /// Gradient boosting with small leaves and a slow learning rate: the
    /// configuration `nasperf train` used before the recipe.
    pub fn boosted() -> Self {
        Self {
            name: "boosted",
            params: json!({
                "objective": "regression",
                "num_iterations": 600,
                "learning_rate": 0.04,
                "num_leaves": 31,
                "min_data_in_leaf": 5,
                "feature_fraction": 0.7,
                "lambda_l2": 1.0,
            }),
        }
    }

    /// Boosting with few, small leaves, strong row and column sampling and
    /// fewer rounds: less variance where rows are few.
    pub fn boosted_small() -> Self {
        Self {
            name: "boosted_small",
            params: json!({
                "objective": "regression",
                "num_iterations": 300,
                "learning_rate": 0.05,
                "num_leaves": 8,
                "min_data_in_leaf": 2,
                "feature_fraction": 0.5,
                "bagging_fraction": 0.7,
                "bagging_freq": 1,
                "lambda_l2": 1.0,
            }),
        }
    }

    /// Every candidate by name, for `nasperf eval --candidates`.
    pub fn all() -> Vec<Candidate> {
        vec![Self::forest(), Self::boosted_small(), Self::boosted()]
    }

    pub fn named(name: &str) -> Option<Candidate> {
        Self::all().into_iter().find(|c| c.name == name)
    }

    /// LightGBM's random-forest mode: deep trees on bootstrap-like row
    /// samples, averaged.
    pub fn forest() -> Self {
        Self {
            name: "forest",
            params: json!({
                "objective": "regression",
                "boosting": "rf",
                "num_iterations": 300,
                "num_leaves": 256,
                "min_data_in_leaf": 1,
                "bagging_fraction": 0.632,
                "bagging_freq": 1,
                "feature_fraction": 0.6,
            }),
        }
    }

    fn params(&self, rows: usize, seed: u64) -> Value {
        let mut p = self.params.clone();
        if let Some(map) = p.as_object_mut() {
            // A leaf needs a handful of rows at most, fewer when there are
            // only a few dozen (a search's first models).
            let leaf = map
                .get("min_data_in_leaf")
                .and_then(Value::as_u64)
                .unwrap_or(1);
            map.insert("min_data_in_leaf".into(), json!(leaf.min(leaf_cap(rows))));
            map.insert("seed".into(), json!(seed));
            map.insert("deterministic".into(), json!(true));
            map.insert("num_threads".into(), json!(1));
            map.insert("verbosity".into(), json!(-1));
        }
        p
    }

    fn dataset_params(&self, rows: usize) -> Value {
        json!({
            "min_data_in_leaf": leaf_cap(rows).min(5),
            "feature_pre_filter": false,
            "min_data_in_bin": 1,
            "verbosity": -1,
        })
    }

    /// Trains on row-major `x` and returns LightGBM's model text.
    pub fn fit(
        &self,
        x: &[f64],
        names: &[String],
        y: &[f64],
        seed: u64,
    ) -> Result<String, TrainError> {
        let labels: Vec<f32> = y.iter().map(|&v| v as f32).collect();
        Ok(lightgbm::train(
            x,
            &labels,
            names,
            &self.dataset_params(y.len()),
            &self.params(y.len(), seed),
        )?)
    }
}

/// What the recipe chooses from and how.
#[derive(Debug, Clone, PartialEq)]
pub struct Recipe {
    pub candidates: Vec<Candidate>,
    /// Folds of the inner cross-validation.
    pub folds: usize,
    /// The nominal coverage of the interval, e.g. 0.8.
    pub coverage: f64,
}

impl Default for Recipe {
    fn default() -> Self {
        Self {
            candidates: Candidate::all(),
            folds: 5,
            coverage: 0.8,
        }
    }
}

/// A fitted model with what the recipe learned on the way.
#[derive(Debug, Clone)]
pub struct Fitted {
    pub model_text: String,
    pub forest: Forest,
    /// The candidate refitted on every row.
    pub chosen: &'static str,
    /// Each candidate's out-of-fold Kendall tau, in candidate order.
    pub cv_kendall_tau: Vec<f64>,
    /// Half the width of the `coverage` interval around a prediction.
    pub interval_half_width: f64,
}

impl Fitted {
    pub fn predict_batch(&self, x: &[f64], out: &mut [f64]) {
        self.forest.predict_batch(x, out);
    }
}

impl Recipe {
    /// Chooses a candidate by inner cross-validation, refits it on every
    /// row, and calibrates its interval on the out-of-fold residuals.
    pub fn fit(
        &self,
        x: &[f64],
        names: &[String],
        y: &[f64],
        seed: u64,
    ) -> Result<Fitted, TrainError> {
        let n = y.len();
        let width = names.len();
        let data_err = |message: String| TrainError::Data {
            objective: String::new(),
            message,
        };
        if n < 4 || x.len() != n * width {
            return Err(data_err(format!(
                "{} values for {n} rows of {width} features; the recipe needs at least 4 rows",
                x.len()
            )));
        }
        let folds = self.folds.clamp(2, n);
        let fold_of = {
            let order = SplitMix64(seed ^ 0x5eed_f01d).permutation(n);
            let mut fold_of = vec![0; n];
            for (position, &i) in order.iter().enumerate() {
                fold_of[i] = position % folds;
            }
            fold_of
        };
        let mut out_of_fold = vec![vec![f64::NAN; n]; self.candidates.len()];
        for fold in 0..folds {
            let train: Vec<usize> = (0..n).filter(|&i| fold_of[i] != fold).collect();
            let test: Vec<usize> = (0..n).filter(|&i| fold_of[i] == fold).collect();
            let train_x = gather(x, width, &train);
            let train_y: Vec<f64> = train.iter().map(|&i| y[i]).collect();
            let test_x = gather(x, width, &test);
            for (c, candidate) in self.candidates.iter().enumerate() {
                let text = candidate.fit(&train_x, names, &train_y, seed)?;
                let forest = Forest::parse(&text).map_err(|e| data_err(e.to_string()))?;
                let mut pred = vec![0.0; test.len()];
                forest.predict_batch(&test_x, &mut pred);
                for (&i, p) in test.iter().zip(pred) {
                    out_of_fold[c][i] = p;
                }
            }
        }
        let cv_kendall_tau: Vec<f64> = out_of_fold
            .iter()
            .map(|p| metrics::kendall_tau_b(p, y))
            .collect();
        // The first candidate wins ties and NaN (a constant prediction).
        let mut best = 0;
        for (c, &tau) in cv_kendall_tau.iter().enumerate() {
            if tau > cv_kendall_tau[best] || cv_kendall_tau[best].is_nan() && !tau.is_nan() {
                best = c;
            }
        }
        let mut residuals: Vec<f64> = out_of_fold[best]
            .iter()
            .zip(y)
            .map(|(p, t)| (p - t).abs())
            .collect();
        let interval_half_width = conformal_quantile(&mut residuals, self.coverage);
        let candidate = &self.candidates[best];
        let model_text = candidate.fit(x, names, y, seed)?;
        let forest = Forest::parse(&model_text).map_err(|e| data_err(e.to_string()))?;
        Ok(Fitted {
            model_text,
            forest,
            chosen: candidate.name,
            cv_kendall_tau,
            interval_half_width,
        })
    }
}

/// The `ceil((n + 1) * coverage)`-th smallest residual: split conformal's
/// quantile, which covers at least `coverage` of exchangeable new points.
/// The largest residual when `n` is too small for that.
pub fn conformal_quantile(residuals: &mut [f64], coverage: f64) -> f64 {
    if residuals.is_empty() {
        return f64::NAN;
    }
    residuals.sort_by(f64::total_cmp);
    let n = residuals.len();
    let rank = ((n + 1) as f64 * coverage).ceil() as usize;
    residuals[rank.clamp(1, n) - 1]
}

/// The rows `idx` of row-major `x` (`width` values per row), in that order.
pub fn gather(x: &[f64], width: usize, idx: &[usize]) -> Vec<f64> {
    let mut out = Vec::with_capacity(idx.len() * width);
    for &i in idx {
        out.extend_from_slice(&x[i * width..(i + 1) * width]);
    }
    out
}

/// The largest useful leaf size for `rows` training rows: an eighth of
/// them, at least 1.
fn leaf_cap(rows: usize) -> u64 {
    u64::try_from((rows / 8).max(1)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_conformal_quantile_is_the_corrected_order_statistic() {
        let mut r: Vec<f64> = (1..=9).map(f64::from).rev().collect();
        // (9 + 1) * 0.8 = 8: the 8th smallest.
        assert_eq!(conformal_quantile(&mut r, 0.8), 8.0);
        let mut r = vec![3.0, 1.0];
        // (2 + 1) * 0.8 = 2.4 -> 3rd smallest: beyond the data, so the largest.
        assert_eq!(conformal_quantile(&mut r, 0.8), 3.0);
        assert!(conformal_quantile(&mut [], 0.8).is_nan());
    }
}
