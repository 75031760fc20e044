//! The LightGBM configurations the recipe chooses from: each one's
//! parameters by the rows at hand, the features it reads, and where it may
//! be tried at all.

use serde_json::{Value, json};

#[cfg(doc)]
use super::Recipe;
use super::ranker::{MIN_ORDERED_QUERY_SHARE, RELEVANCE_LEVELS, fit_order, ordered_query_share};
use super::{TrainError, data_err, lightgbm};
use crate::{
    features::PROXY_FEATURE_PREFIX,
    model::blend,
    space::nb201::{ONEHOT_PREFIX, OPS_SENT_PREFIX},
};

/// One LightGBM configuration the recipe can choose.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub name: &'static str,
    params: Value,
    /// Splits only on the features whose names start with this (trained on
    /// those columns, [`blend::widen`]), or on every feature. A candidate
    /// whose features are absent from a table is not tried on it.
    pub(super) reads_only: Option<&'static str>,
    /// Tried only where those features determine the target: every two
    /// training rows that agree on them agree on the target
    /// ([`Candidate::usable_on`]).
    needs_determined_target: bool,
    /// Trained on the order of the rows, not their values
    /// ([`Candidate::boosted_pairwise`]), then mapped onto the target's
    /// scale.
    learns_order: bool,
}

/// The rounds of [`Candidate::boosted`]; [`Recipe::rounds`] scales every
/// candidate's rounds (trees, for the forest) by `rounds / DEFAULT_ROUNDS`.
pub const DEFAULT_ROUNDS: u32 = 600;

/// Bins per feature ([`Candidate::dataset_params`]).
const MAX_BIN: u32 = 63;

impl Candidate {
    /// A configuration of one's own: LightGBM parameters for an identity
    /// objective (the recipe adds the seed, threads and determinism).
    pub fn new(name: &'static str, params: Value) -> Self {
        Self {
            name,
            params,
            reads_only: None,
            needs_determined_target: false,
            learns_order: false,
        }
    }

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
            reads_only: None,
            needs_determined_target: false,
            learns_order: false,
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
            reads_only: None,
            needs_determined_target: false,
            learns_order: false,
        }
    }

    /// Few fast-learning rounds of deep trees with leaves of single rows:
    /// the shape of XGBoost's defaults (100 rounds of depth 6 at a learning
    /// rate of 0.3), the reference's best under the strongest attacks.
    /// There the most robust networks are a small group with hardly any
    /// convolution (APGD-CE eps 3: the 346 of 9,445 at 4% or more have
    /// 0.6% of their ops 3x3 convolutions, the others 23%). Of 32 rows,
    /// one or two are of that group; leaves of a single row carry them to
    /// every network like them, where a forest's many trees average them
    /// away. Alone at N = 32: 0.296 against the default's 0.203 on APGD-CE
    /// eps 3, but 0.380 against 0.420 on PGD eps 3 (`docs/quality.md`), so
    /// it is an option for the inner cross-validation, not a default.
    pub fn boosted_sharp() -> Self {
        Self {
            name: "boosted_sharp",
            params: json!({
                "objective": "regression",
                "num_iterations": 100,
                "learning_rate": 0.3,
                "max_depth": 6,
                "num_leaves": 64,
                "min_data_in_leaf": 1,
                "min_sum_hessian_in_leaf": 1.0,
                "lambda_l2": 1.0,
            }),
            reads_only: None,
            needs_determined_target: false,
            learns_order: false,
        }
    }

    /// Boosted stumps (one split per tree) on which op sits on which edge
    /// of the cell as sent: a sum of one cost per edge and op, an additive
    /// model. Hardware costs are close to that (Eyeriss energy is exactly
    /// linear in the op counts), and an additive model learns them from far
    /// fewer rows than trees that must find every interaction. It reads
    /// only the one-hot features: on the graph features too, the first
    /// stumps split on FLOPs, which the costs are not additive in
    /// (`docs/quality.md`: 0.73 against 0.82 on Eyeriss energy at N = 32).
    pub fn additive() -> Self {
        Self {
            name: "additive",
            params: json!({
                "objective": "regression",
                "num_iterations": 1000,
                "learning_rate": 0.1,
                "num_leaves": 2,
                "min_data_in_leaf": 1,
            }),
            reads_only: Some(ONEHOT_PREFIX),
            needs_determined_target: false,
            learns_order: false,
        }
    }

    /// [`Candidate::additive`] on the op counts of the cell as sent
    /// instead of which op sits where: a sum of one cost per op. Tried only
    /// where the counts determine the target, as they do for the Eyeriss
    /// and FPGA models of HW-NAS-Bench (84 or fewer distinct values over
    /// 15,625 cells); there its predictions tie exactly where the truth
    /// does, and it needs no rows to learn that an op costs the same on
    /// every edge.
    pub fn counts_additive() -> Self {
        Self {
            name: "counts_additive",
            reads_only: Some(OPS_SENT_PREFIX),
            needs_determined_target: true,
            ..Self::additive()
        }
    }

    /// [`Candidate::counts_additive`] on any table with the counts, as one
    /// member of a mean: one cost per op wherever it sits. Where an op
    /// costs about the same on every edge (Raspberry Pi latency), 32 rows
    /// estimate five costs far better than thirty; where the edge matters
    /// (edge-GPU latency), the one-hot members of the mean carry that.
    pub fn op_costs() -> Self {
        Self {
            name: "op_costs",
            needs_determined_target: false,
            ..Self::counts_additive()
        }
    }

    /// [`Candidate::boosted_small`] on the op counts of the cell as sent
    /// only, tried where they determine the target: a function of the
    /// counts that need not be a sum (Eyeriss arithmetic intensity is a
    /// ratio of two). Without its row and column sampling: with five
    /// columns, a tree could draw none that matter (with it, Kendall tau
    /// swung by ±0.25 over seeds at N = 32, `docs/quality.md`).
    pub fn counts_boosted() -> Self {
        let mut params = Self::boosted_small().params;
        if let Some(map) = params.as_object_mut() {
            for sampling in ["feature_fraction", "bagging_fraction", "bagging_freq"] {
                map.remove(sampling);
            }
        }
        Self {
            name: "counts_boosted",
            params,
            reads_only: Some(OPS_SENT_PREFIX),
            needs_determined_target: true,
            learns_order: false,
        }
    }

    /// [`Candidate::forest`] on the op counts of the cell as sent, every
    /// count in every tree, tried where they determine the target: with a
    /// thousand rows most of the 210 ways to count six ops are in the
    /// training set, and a forest whose leaves hold single count
    /// combinations looks each one up, where [`Candidate::counts_boosted`]
    /// smooths across them. Alone on Eyeriss arithmetic intensity at
    /// N = 1024 (10 seeds, `docs/quality.md`): 0.996 to 0.997 against the
    /// recipe's 0.985 to 0.988 before it and the reference forest's 0.992
    /// to 0.994; [`Candidate::boosted_sharp`] on the counts reached 0.992.
    pub fn counts_forest() -> Self {
        let mut params = Self::forest().params;
        if let Some(map) = params.as_object_mut() {
            map.insert("feature_fraction".into(), json!(1.0));
            // The counts take few values and determine the cost, and the
            // figures above are with the best thresholds and bootstrap-like
            // row samples (every tree would be the same without both: it
            // draws every column); others were not measured here.
            map.remove("extra_trees");
            map.insert("bagging_fraction".into(), json!(0.632));
            map.insert("bagging_freq".into(), json!(1));
        }
        Self {
            name: "counts_forest",
            params,
            reads_only: Some(OPS_SENT_PREFIX),
            needs_determined_target: true,
            learns_order: false,
        }
    }

    /// [`Candidate::boosted_small`] trained on the order of the rows, not
    /// their values: LightGBM's `lambdarank` on queries of
    /// `PAIRWISE_GROUP` rows drawn at random, `PAIRWISE_REPEATS`
    /// shuffles of the rows, each row's relevance its rank in
    /// `RELEVANCE_LEVELS` levels and the gain linear in it (no top-heavy
    /// discount within four rows): close to a pairwise loss. Kendall tau
    /// counts pairs; a regression on 32 rows spends its few splits on the
    /// largest values (under a strong attack, the one or two networks far
    /// from zero), a ranker on every pair alike. The scores are mapped
    /// onto the target by least squares on the training rows, so the
    /// model serves, blends and carries an interval like any other.
    /// Measured outside the recipe first (Python LightGBM on the
    /// protocol's splits, 34 accuracy and robustness objectives, 10 seeds,
    /// `docs/quality.md`): beside the small booster in the proxy mean,
    /// APGD-CE eps 3 0.195 -> 0.256 at N = 32 and 0.399 -> 0.467 at
    /// N = 128, but down by up to 0.012 on weaker attacks at N = 32 (PGD
    /// eps 0.5 0.390 -> 0.379).
    pub fn boosted_pairwise() -> Self {
        let mut params = Self::boosted_small().params;
        if let Some(map) = params.as_object_mut() {
            // Bagging rows would break the drawn queries apart.
            map.remove("bagging_fraction");
            map.remove("bagging_freq");
            map.insert("objective".into(), json!("lambdarank"));
            let gains: Vec<String> = (0..RELEVANCE_LEVELS).map(|g| g.to_string()).collect();
            map.insert("label_gain".into(), json!(gains.join(",")));
        }
        Self {
            name: "boosted_pairwise",
            params,
            reads_only: None,
            needs_determined_target: false,
            learns_order: true,
        }
    }

    /// Whether every tree is a stump (boosting with two leaves per tree).
    fn grows_stumps(&self) -> bool {
        self.params.get("num_leaves").and_then(Value::as_u64) == Some(2)
            && self.params.get("boosting").is_none()
    }

    /// Whether the table with these feature names has what this candidate
    /// reads.
    pub fn applies_to(&self, names: &[String]) -> bool {
        self.reads_only
            .is_none_or(|prefix| names.iter().any(|n| n.starts_with(prefix)))
    }

    /// Whether this candidate may be tried on these rows: the table has
    /// what it reads and, for a candidate that needs it, those features
    /// determine the target. That takes evidence: at least
    /// `DETERMINED_MIN_REPEATS` (2) rows must repeat another row's values of
    /// them, and every such row's target must equal the other's (to a
    /// relative 1e-9: the tables' values are written with up to 17
    /// digits).
    ///
    /// A candidate that learns order is tried only where enough of its
    /// drawn queries hold rows of different values
    /// (`MIN_ORDERED_QUERY_SHARE`): a query of tied rows teaches a
    /// ranker nothing.
    pub fn usable_on(&self, x: &[f64], names: &[String], y: &[f64]) -> bool {
        if !self.applies_to(names) {
            return false;
        }
        if self.learns_order && ordered_query_share(y) < MIN_ORDERED_QUERY_SHARE {
            return false;
        }
        let Some(prefix) = self.reads_only.filter(|_| self.needs_determined_target) else {
            return true;
        };
        let width = names.len();
        let columns = columns_with_prefix(names, prefix);
        let mut first_target: std::collections::HashMap<Vec<u64>, f64> =
            std::collections::HashMap::with_capacity(y.len());
        let mut repeats = 0;
        for (row, &target) in x.chunks_exact(width).zip(y) {
            let key: Vec<u64> = columns.iter().map(|&j| row[j].to_bits()).collect();
            match first_target.get(&key) {
                Some(&seen) => {
                    if (seen - target).abs() > 1e-9 * seen.abs().max(target.abs()) {
                        return false;
                    }
                    repeats += 1;
                }
                None => {
                    first_target.insert(key, target);
                }
            }
        }
        repeats >= DETERMINED_MIN_REPEATS
    }

    /// Every candidate by name, for `nasperf eval --candidates`.
    pub fn all() -> Vec<Candidate> {
        vec![
            Self::forest(),
            Self::boosted_small(),
            Self::boosted(),
            Self::additive(),
            Self::counts_additive(),
            Self::counts_boosted(),
            Self::proxies_forest(),
            Self::onehot_boosted(),
            Self::op_costs(),
            Self::boosted_sharp(),
            Self::counts_forest(),
            Self::boosted_pairwise(),
        ]
    }

    pub fn named(name: &str) -> Option<Candidate> {
        Self::all().into_iter().find(|c| c.name == name)
    }

    /// [`Candidate::forest`] on the zero-cost proxies alone. With a few
    /// dozen rows, the 60-odd graph features dilute the forest's splits;
    /// under attack, accuracy follows the proxies more than the graph
    /// (the reference's best at N = 32 is often a forest on proxies).
    pub fn proxies_forest() -> Self {
        Self {
            name: "proxies_forest",
            reads_only: Some(PROXY_FEATURE_PREFIX),
            ..Self::forest()
        }
    }

    /// [`Candidate::boosted`] on which op sits on which edge alone. With a
    /// thousand rows, the one-hot describes a cell completely and a booster
    /// learns the interactions of its ops that a sum misses; FLOPs and the
    /// path features add only other ways to split the same cells (edge-GPU
    /// latency at N = 1024: 0.893 against 0.890 on every feature,
    /// `docs/quality.md`).
    pub fn onehot_boosted() -> Self {
        Self {
            name: "onehot_boosted",
            reads_only: Some(ONEHOT_PREFIX),
            ..Self::boosted()
        }
    }

    /// LightGBM's random-forest mode: deep trees, averaged; each split
    /// weighs one random threshold of each feature (`extra_trees`), not
    /// the best one, and every tree sees every row. With a few dozen rows,
    /// trees that split at the best thresholds make the same first cuts
    /// on the same few features whichever rows their bagging drew, so
    /// they err alike and their average is hardly steadier than one of
    /// them; random thresholds make them differ, and the average varies
    /// less with the rows drawn, which is what few rows need (Geurts et
    /// al.'s extremely randomised trees). Measured outside the recipe
    /// first (`scripts/lever_study.py`, the variant `xt`: both forests of
    /// the proxy default so; ten accuracy and robustness objectives, 10
    /// seeds): up in all ten at N = 32 (+0.003 to +0.035, PGD eps 1/255
    /// 0.387 -> 0.421) and in nine at N = 128 (+0.005 to +0.010; FGSM
    /// eps 4/255 -0.003). Cheaper too, weighing one threshold per feature
    /// instead of every bin: the report's fits took 20% less time.
    ///
    /// Once the thresholds are random, drawing rows as well only takes
    /// rows from each tree: a third of 32 is a third of what there is to
    /// learn from. Without row sampling (the variant `xtbf1.0`: bagging
    /// fraction 1; twelve accuracy and robustness objectives, 10 seeds,
    /// session 31) up in 12 of 12 at N = 32 (+0.000 to +0.015, PGD eps
    /// 1/255 0.421 -> 0.436) and at N = 128 (+0.003 to +0.007); a bagging
    /// fraction of 0.5 lost in all twelve at N = 32. The trees still
    /// differ by their thresholds and the 60% of columns each one draws.
    /// `docs/quality.md` has the recipe's figures.
    pub fn forest() -> Self {
        Self {
            name: "forest",
            params: json!({
                "objective": "regression",
                "boosting": "rf",
                "num_iterations": 300,
                "num_leaves": 256,
                "min_data_in_leaf": 1,
                "feature_fraction": 0.6,
                "extra_trees": true,
            }),
            reads_only: None,
            needs_determined_target: false,
            learns_order: false,
        }
    }

    /// The LightGBM parameters for `rows` training rows, with the rounds
    /// scaled by `rounds / DEFAULT_ROUNDS` (at least one).
    pub fn params(&self, rows: usize, seed: u64, rounds: u32) -> Value {
        let mut p = self.params.clone();
        if let Some(map) = p.as_object_mut() {
            if let Some(own) = map.get("num_iterations").and_then(Value::as_u64) {
                let scaled = (own * u64::from(rounds) / u64::from(DEFAULT_ROUNDS)).max(1);
                map.insert("num_iterations".into(), json!(scaled));
            }
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

    /// LightGBM's dataset parameters for `rows` training rows.
    ///
    /// 63 bins a feature instead of LightGBM's 255: with a thousand rows,
    /// finding splits over the bins is most of a tree's time (perf: the
    /// per-bin scans, histogram fixing and clearing, over half of a forest's
    /// fit), and coarser bins rank no worse. At N = 1024 on CIFAR-10
    /// accuracy, FGSM and PGD (4 seeds, `docs/quality.md`): the forest's
    /// time -37%, the proxy forest's -48%, the booster's -30%, and every
    /// Kendall tau equal or up to 0.002 higher. The whole report of
    /// `docs/quality.md` took 338 s instead of 680 s. Below 64 rows a
    /// feature has fewer distinct values than that anyway.
    pub fn dataset_params(&self, rows: usize) -> Value {
        json!({
            "min_data_in_leaf": leaf_cap(rows).min(5),
            "feature_pre_filter": false,
            "min_data_in_bin": 1,
            "max_bin": MAX_BIN,
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
        rounds: u32,
    ) -> Result<String, TrainError> {
        if !self.applies_to(names) {
            return Err(data_err(format!(
                "{} reads only {:?} features, and the table has none",
                self.name,
                self.reads_only.unwrap_or_default()
            )));
        }
        let params = self.params(y.len(), seed, rounds);
        let dataset_params = self.dataset_params(y.len());
        let train = |x: &[f64], names: &[String]| {
            if self.learns_order {
                fit_order(x, names, y, seed, &dataset_params, &params)
            } else {
                let labels: Vec<f32> = y.iter().map(|&v| v as f32).collect();
                Ok(lightgbm::train(
                    x,
                    &labels,
                    names,
                    &dataset_params,
                    &params,
                )?)
            }
        };
        let text = match self.reads_only {
            // Trained on its columns alone and widened to the table's: the
            // trees LightGBM grows with every other column's gain zeroed
            // (`feature_penalty`), up to which columns a tree samples, but
            // several times faster: histograms of a few columns, not of all.
            Some(prefix) => {
                let columns = columns_with_prefix(names, prefix);
                let narrow_names: Vec<String> = columns.iter().map(|&j| names[j].clone()).collect();
                let mut narrow = Vec::with_capacity(columns.len() * y.len());
                for row in x.chunks_exact(names.len()) {
                    narrow.extend(columns.iter().map(|&j| row[j]));
                }
                let text = train(&narrow, &narrow_names)?;
                blend::widen(&text, &columns, names).map_err(|e| data_err(e.to_string()))?
            }
            None => train(x, names)?,
        };
        if self.grows_stumps() {
            // Stumps on binary features repeat the same few splits; summed,
            // they serve from a few dozen trees instead of a thousand.
            return blend::merge_stumps(&text).map_err(|e| data_err(e.to_string()));
        }
        Ok(text)
    }
}

/// How many rows must repeat another's values of the features a
/// [`Candidate::counts_additive`]-like candidate reads before those
/// features are taken to determine the target. Two: a measured cost that
/// the counts do not determine differs between two cells with the same
/// counts in its last digits, so one repeat already tells; with 32 rows of
/// the 9,445 networks (210 distinct counts), fewer than 2 repeat in 3% of
/// draws and fewer than 3 in 14%.
const DETERMINED_MIN_REPEATS: usize = 2;

/// The indices of the features whose names start with `prefix`.
fn columns_with_prefix(names: &[String], prefix: &str) -> Vec<usize> {
    (0..names.len())
        .filter(|&j| names[j].starts_with(prefix))
        .collect()
}

/// The largest useful leaf size for `rows` training rows: an eighth of
/// them, at least 1.
fn leaf_cap(rows: usize) -> u64 {
    u64::try_from((rows / 8).max(1)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{split_features, split_thresholds};
    use super::*;
    use crate::train::SplitMix64;

    /// The threshold of each tree's first split, where it splits on
    /// feature 0 (the first entry of a tree's lists is its root).
    fn root_thresholds_on_first_feature(text: &str) -> Vec<f64> {
        split_features(text)
            .iter()
            .zip(split_thresholds(text))
            .filter(|(features, _)| features.first() == Some(&0))
            .map(|(_, thresholds)| thresholds[0])
            .collect()
    }

    fn interquartile_range(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        v[v.len() * 3 / 4] - v[v.len() / 4]
    }

    #[test]
    fn the_forest_splits_at_random_thresholds_where_the_best_would_agree() {
        // The target rises along feature 0; two more features are noise.
        // Trees that split at the best threshold all cut feature 0 near its
        // middle, up to which rows their bagging drew; at random thresholds
        // they cut it all along its range, which is what decorrelates them.
        let rows = 48;
        let mut noise = SplitMix64(7);
        let mut x = Vec::new();
        for i in 0..rows {
            x.extend([i as f64, noise.next_f64(), noise.next_f64()]);
        }
        let y: Vec<f64> = (0..rows).map(|i| i as f64).collect();
        let names: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();

        let forest = Candidate::forest();
        let mut best = forest.clone();
        if let Some(map) = best.params.as_object_mut() {
            map.remove("extra_trees");
        }
        let spread = |candidate: &Candidate| {
            let text = candidate.fit(&x, &names, &y, 1, 600).expect("fit");
            let roots = root_thresholds_on_first_feature(&text);
            assert!(roots.len() >= 50, "{} roots on feature 0", roots.len());
            interquartile_range(roots)
        };
        let (random, at_best) = (spread(&forest), spread(&best));
        assert!(
            random > 3.0 * at_best && random > 12.0,
            "root thresholds' interquartile range: {random} at random, {at_best} at the best"
        );
    }

    #[test]
    fn the_count_forest_keeps_the_best_thresholds_and_row_samples() {
        // Measured with the best thresholds and bagging
        // (`Candidate::counts_forest`); the forest has random thresholds
        // and every row in every tree.
        let forest = Candidate::forest();
        assert_eq!(forest.params["extra_trees"], json!(true));
        assert!(forest.params.get("bagging_fraction").is_none());
        let counts = Candidate::counts_forest().params;
        assert!(counts.get("extra_trees").is_none());
        assert_eq!(counts["bagging_fraction"], json!(0.632));
        assert_eq!(counts["bagging_freq"], json!(1));
        assert_eq!(counts["feature_fraction"], json!(1.0));
        assert_eq!(
            Candidate::proxies_forest().params,
            forest.params,
            "the proxy forest is the forest on fewer columns"
        );
    }
}
