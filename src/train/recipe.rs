//! The training recipe: which LightGBM configuration a model gets, chosen
//! from the data at hand by inner cross-validation, and the interval its
//! predictions carry.
//!
//! Why a choice at all: with a few dozen rows, boosting overfits and a
//! bagged forest of deep trees ranks networks better; with a thousand,
//! boosting wins (`docs/quality.md` has the figures). Rather than a
//! threshold on the row count, every choice (one configuration, or the mean
//! of two) is scored by the Kendall tau of its out-of-fold predictions, the
//! figure a search relies on; a default is kept unless another choice is
//! clearly better on the folds (`Recipe::select`), and the choice is
//! refitted on every row. Hardware costs get an additive model besides
//! ([`Candidate::additive`]): they are close to a sum of one cost per edge
//! and op; where the op counts determine a cost, models of the counts alone
//! ([`Candidate::counts_additive`]). Tables with zero-cost proxies get a
//! forest on the proxies alone in their default mean
//! ([`Candidate::proxies_forest`]). Where many rows sit on the target's
//! minimum (0% accuracy under a strong attack), predictions below a
//! threshold are that minimum ([`Floor`], chosen like the rest on the
//! out-of-fold rows). Where the values of the same attack at smaller
//! strengths are given for the same rows, the proxy default fitted on each
//! of them and averaged with the target's own is an option too
//! ([`Choice::family`], [`Family`]). The same recipe serves `nasperf eval`,
//! `nasperf train` and retraining.
//!
//! The interval is split-conformal: the half-width is the `coverage`
//! quantile (with the finite-sample correction) of absolute residuals on
//! rows the model did not see, so on networks drawn like the training ones
//! the true value falls inside about `coverage` of the time, whatever the
//! model. Up to [`Recipe::fresh_calibration_max_rows`] rows, those are of
//! a fresh cross-validation of the choice (the one it was chosen by
//! flatters it), for the trees with proxies and those without alike. Above
//! it, up to [`Recipe::max_cv_rows`], they are the choice's out-of-fold
//! residuals; beyond that, and for the trees without proxies (which the
//! inner cross-validation did not fit), those of one split of every row.
//! Either way the
//! models that erred saw fewer rows than the one served, so the quantile is
//! carried to all the rows along the learning curve that the same choice
//! fitted on half of them draws ([`learning_curve_shrink`]); the trees
//! without proxies only from [`WITHOUT_PROXIES_LEARNING_CURVE_MIN_ROWS`]
//! rows on.

use serde::Serialize;
use serde_json::{Value, json};

use super::{SplitMix64, TrainError, lightgbm, metrics};
use crate::{
    features::{PROXIES_SENT_FEATURE, PROXY_FEATURE_PREFIX, PROXY_NAMES},
    model::{Floor, Forest, blend},
    space::nb201::{ONEHOT_PREFIX, OPS_SENT_PREFIX},
};

/// The value of the [`PROXIES_SENT_FEATURE`] column when every proxy was
/// sent: such a row is answered by the trees trained with proxies, any
/// other by the trees trained on the architecture alone.
const EVERY_PROXY: f64 = PROXY_NAMES.len() as f64;

/// Whether `row` (with the sent-count column at `sent`) is answered by the
/// trees trained with proxies.
pub fn sends_every_proxy(row: &[f64], sent: usize) -> bool {
    row[sent] == EVERY_PROXY
}

fn data_err(message: String) -> TrainError {
    TrainError::Data {
        objective: String::new(),
        message,
    }
}

/// One LightGBM configuration the recipe can choose.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub name: &'static str,
    params: Value,
    /// Splits only on the features whose names start with this (trained on
    /// those columns, [`blend::widen`]), or on every feature. A candidate
    /// whose features are absent from a table is not tried on it.
    reads_only: Option<&'static str>,
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
    /// every network like them, where a forest's bagging averages them
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
    /// [`PAIRWISE_GROUP`] rows drawn at random, [`PAIRWISE_REPEATS`]
    /// shuffles of the rows, each row's relevance its rank in
    /// [`RELEVANCE_LEVELS`] levels and the gain linear in it (no top-heavy
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
    /// ([`MIN_ORDERED_QUERY_SHARE`]): a query of tied rows teaches a
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

/// One option of the recipe: a single candidate, or the mean of several
/// (served as one blended model text, [`crate::model::blend`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub members: Vec<Candidate>,
    /// Whether the mean of the members is also fitted on each related
    /// objective's values of the same rows ([`RelatedTarget`]), and those
    /// models' predictions averaged with the target's own ([`Family`]).
    /// Tried only where related values are given.
    pub family: bool,
}

impl Choice {
    pub fn single(candidate: Candidate) -> Self {
        Self {
            members: vec![candidate],
            family: false,
        }
    }

    /// The mean of `members`.
    pub fn mean(members: Vec<Candidate>) -> Self {
        Self {
            members,
            family: false,
        }
    }

    /// The mean of `members`, fitted on the target and on each related
    /// objective, averaged over them ([`Family`]).
    pub fn family(members: Vec<Candidate>) -> Self {
        Self {
            members,
            family: true,
        }
    }

    /// The members' names joined by `+`, e.g. `forest+boosted_small`, in
    /// `family(...)` for a family choice.
    pub fn name(&self) -> String {
        let names: Vec<&str> = self.members.iter().map(|c| c.name).collect();
        if self.family {
            format!("family({})", names.join("+"))
        } else {
            names.join("+")
        }
    }

    /// This choice for rows whose proxies are blanked: without the members
    /// that read only the proxies, which would learn a constant there and
    /// pull the mean toward it. A choice of such members alone becomes the
    /// forest, the recipe's model for rows that are few and unlike. A
    /// family choice becomes the plain mean of its members: the family's
    /// weights are those of models with proxies, which the trees without
    /// them are not.
    pub fn without_proxy_only_members(&self) -> Choice {
        let members: Vec<Candidate> = self
            .members
            .iter()
            .filter(|m| m.reads_only != Some(PROXY_FEATURE_PREFIX))
            .cloned()
            .collect();
        if members.is_empty() {
            Choice::single(Candidate::forest())
        } else {
            Choice::mean(members)
        }
    }

    /// Parses a name as [`Choice::name`] writes it.
    pub fn named(name: &str) -> Option<Choice> {
        let (inner, family) = match name
            .trim()
            .strip_prefix("family(")
            .and_then(|r| r.strip_suffix(')'))
        {
            Some(inner) => (inner, true),
            None => (name, false),
        };
        let members = inner
            .split('+')
            .map(|m| Candidate::named(m.trim()))
            .collect::<Option<Vec<_>>>()?;
        (!members.is_empty()).then_some(Choice { members, family })
    }

    /// Every option the default recipe chooses from, the defaults first.
    /// The default is the first option a table can be trained on:
    ///
    /// - where the op counts of the cell as sent determine the target (the
    ///   Eyeriss and FPGA costs), the mean of the count models: a sum of
    ///   per-op costs and a small booster for what the sum misses, both
    ///   functions of the counts alone, so they tie where the truth does;
    /// - with the one-hot of the cell as sent (other hardware costs), the
    ///   mean of a cost per op, a cost per op and edge and a small booster:
    ///   costs are close to additive over the ops, the per-op sum learns
    ///   from few rows what the per-edge one needs many for, and the
    ///   booster adds what both miss;
    /// - with the zero-cost proxies (accuracy and robustness), the mean of
    ///   a forest, a forest on the proxies alone, a small booster and the
    ///   same booster trained on the order of the rows
    ///   ([`Candidate::boosted_pairwise`]): models whose errors differ,
    ///   which rank better together than any of them where rows are few.
    ///   The ranker lifts the strongest attacks, where a regression spends
    ///   its splits on the few networks far from zero; where nearly every
    ///   row ties (APGD-CE at eps 8/255) it has nothing to learn from
    ///   ([`MIN_ORDERED_QUERY_SHARE`]) and the same mean without it is the
    ///   default;
    /// - otherwise the mean of a forest and a small booster.
    ///
    /// Besides the single candidates, the one-hot booster and its mean with
    /// the hardware default are options where a thousand rows show the
    /// interactions of ops, and the small booster's mean with the ranker
    /// one for the strongest attacks at a hundred rows and more. The proxy forest alone is not an option: at 32
    /// rows it switched in on noise and lost (`docs/quality.md`).
    ///
    /// Where the values of related objectives are given (the same attack
    /// at smaller strengths, [`crate::objectives::related`]), the proxy
    /// default fitted on each of them and averaged with the target's own
    /// ([`Family`]) is an option: it ranks the strongest attacks better at
    /// 32 and 128 rows, but not everywhere (Square at eps 8/255 and 128
    /// rows: 0.380 -> 0.354 as the default), so the inner cross-validation
    /// decides, except where many rows sit on the target's minimum or the
    /// default's own out-of-fold order is chance: there it is the default
    /// ([`Recipe::family_default_floor_share`], [`own_order_is_chance`]). Where
    /// the ranker is not tried, the same family without it stands in.
    ///
    /// `docs/quality.md` has the figures. Neither default is chosen by the
    /// inner cross-validation where rows are few: at 32 rows its figures
    /// are noise of ±0.12 (see `Recipe::select`).
    pub fn all() -> Vec<Choice> {
        use Candidate as C;
        let mean = Choice::mean;
        vec![
            mean(vec![C::counts_additive(), C::counts_boosted()]),
            mean(vec![C::op_costs(), C::additive(), C::boosted_small()]),
            mean(vec![C::additive(), C::boosted_small()]),
            mean(vec![
                C::forest(),
                C::proxies_forest(),
                C::boosted_small(),
                C::boosted_pairwise(),
            ]),
            mean(vec![C::forest(), C::proxies_forest(), C::boosted_small()]),
            mean(vec![C::forest(), C::boosted_small()]),
            Choice::single(C::forest()),
            Choice::single(C::boosted_small()),
            Choice::single(C::boosted()),
            Choice::single(C::additive()),
            Choice::single(C::onehot_boosted()),
            mean(vec![C::additive(), C::boosted_small(), C::onehot_boosted()]),
            Choice::single(C::counts_additive()),
            Choice::single(C::counts_boosted()),
            Choice::single(C::counts_forest()),
            Choice::single(C::boosted_sharp()),
            Choice::single(C::boosted_pairwise()),
            mean(vec![C::boosted_small(), C::boosted_pairwise()]),
            Choice::family(vec![
                C::forest(),
                C::proxies_forest(),
                C::boosted_small(),
                C::boosted_pairwise(),
            ]),
            Choice::family(vec![C::forest(), C::proxies_forest(), C::boosted_small()]),
        ]
    }
}

/// The values of an objective related to the target
/// ([`crate::objectives::related`]) on the same rows as the target's, NaN
/// where it was not measured.
#[derive(Debug, Clone, PartialEq)]
pub struct RelatedTarget {
    pub objective: String,
    pub values: Vec<f64>,
}

impl RelatedTarget {
    /// The values of the rows `idx`, in that order.
    pub fn rows(&self, idx: &[usize]) -> RelatedTarget {
        RelatedTarget {
            objective: self.objective.clone(),
            values: gather_y(&self.values, idx),
        }
    }
}

/// How a family choice ([`Choice::family`]) combines its models: the
/// prediction is `intercept + sum(weight * model)`, over the model of the
/// target itself and those of the related objectives.
///
/// The weights come from the models' out-of-fold predictions: each is
/// divided by its spread, so that every objective counts alike whatever its
/// scale (accuracy under a weak attack spreads over tens of points, under a
/// strong one over a few), and the mean is mapped onto the target by a
/// least-squares line. Only the line's slope and intercept are fitted to
/// the target, so the ranking is the standardized mean's.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub members: Vec<FamilyMember>,
    pub intercept: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FamilyMember {
    /// The index of the related target the model is fitted on, `None` for
    /// the target itself.
    pub related: Option<usize>,
    /// The objective's ID (the target's own is `None` above).
    pub objective: Option<String>,
    pub weight: f64,
}

/// Out-of-fold predictions of one of a family's models.
struct FamilySeries {
    /// As [`FamilyMember::related`].
    related: Option<usize>,
    objective: Option<String>,
    predictions: Vec<f64>,
}

impl FamilySeries {
    fn new(related: Option<usize>, objective: Option<&str>, predictions: Vec<f64>) -> Self {
        Self {
            related,
            objective: objective.map(str::to_owned),
            predictions,
        }
    }
}

impl Family {
    /// The family of the out-of-fold predictions `series` (the target's own,
    /// then each related target's) of `truth`, and its out-of-fold
    /// predictions on the target's scale. A series that does not vary is
    /// left out; `None` where nothing varies or the line's slope is not
    /// positive (the mean orders the rows against the truth).
    fn from_out_of_fold(series: &[FamilySeries], truth: &[f64]) -> Option<(Family, Vec<f64>)> {
        let spread = |v: &[f64]| {
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            (v.iter().map(|p| (p - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
        };
        let used: Vec<(&FamilySeries, f64)> = series
            .iter()
            .map(|s| (s, spread(&s.predictions)))
            .filter(|(_, sd)| sd.is_finite() && *sd > 0.0)
            .collect();
        if used.is_empty() || truth.is_empty() {
            return None;
        }
        let k = used.len() as f64;
        let mean: Vec<f64> = (0..truth.len())
            .map(|i| {
                used.iter()
                    .map(|(s, sd)| s.predictions[i] / sd)
                    .sum::<f64>()
                    / k
            })
            .collect();
        let (intercept, slope) = rising_least_squares_line(&mean, truth)?;
        let family = Family {
            members: used
                .iter()
                .map(|(s, sd)| FamilyMember {
                    related: s.related,
                    objective: s.objective.clone(),
                    weight: slope / (k * sd),
                })
                .collect(),
            intercept,
        };
        let on_target = mean.iter().map(|m| intercept + slope * m).collect();
        Some((family, on_target))
    }

    fn describe(&self) -> Value {
        json!({
            "intercept": self.intercept,
            "members": self.members.iter().map(|m| json!({
                "objective": m.objective.as_deref().unwrap_or("(the target)"),
                "weight": m.weight,
            })).collect::<Vec<_>>(),
        })
    }
}

/// What the recipe chooses from and how.
#[derive(Debug, Clone, PartialEq)]
pub struct Recipe {
    pub choices: Vec<Choice>,
    /// Folds of the inner cross-validation.
    pub folds: usize,
    /// The nominal coverage of the interval, e.g. 0.8.
    pub coverage: f64,
    /// The inner cross-validation runs on at most this many rows (a seeded
    /// sample): beyond a few thousand rows the choice no longer changes,
    /// and the full table would cost five fits of every candidate.
    pub max_cv_rows: usize,
    /// The rounds of the largest booster; every candidate's rounds scale
    /// with it ([`DEFAULT_ROUNDS`] is the recipe as measured).
    pub rounds: u32,
    /// How many standard errors of its concordance advantage
    /// ([`metrics::concordance_advantage`]) another choice must beat the default by
    /// to be chosen instead; 0 takes any choice that orders the out-of-fold
    /// rows better at all. The default, 2, is a one-sided test at about
    /// 98% for each of the dozen choices.
    pub selection_margin: f64,
    /// The same margin for the family choices ([`Choice::family`]), 1.5 by
    /// default. They are one alternative fixed in advance, not the best of
    /// a dozen, so the guard against picking the noise of many does not
    /// apply with the same force; and where a weaker attack holds the
    /// signal, their out-of-fold advantage is large but, on 32 rows,
    /// within two standard errors in most seeds. Measured on the 28
    /// robustness objectives with a weaker strength (10 seeds,
    /// `docs/quality.md`): at N = 32, ahead of the reference in 25 of 28
    /// with a margin of 2, 27 with 1, 23 with 0 (noise switched: Square
    /// eps 4 0.394 -> 0.373). But at N = 128 a margin of 1 took the family
    /// in 6 of 10 seeds on APGD-CE eps 8, where 97% of the networks are at
    /// zero and the family of weaker attacks misses the few that are not
    /// (0.304 -> 0.189); 1.5 keeps it at 0.304 and most of the gains
    /// elsewhere (APGD-CE eps 3 0.409 -> 0.490 at N = 128, 0.262 -> 0.313
    /// at N = 32).
    pub family_selection_margin: f64,
    /// The family choices ([`Choice::family`]) are tried on at most this
    /// many rows. A family costs the fits of its members once per related
    /// objective (up to ten), in every fold and the refit; tried at 1,024
    /// rows too, it kept our side of the six-objective report running for
    /// over 20 minutes (stopped there) where it had taken 305 s, past the
    /// bar of issue 5 (`docs/quality.md`). Where it was measured to win is
    /// at 32 and 128 rows, where the target's own rows hold the least
    /// signal.
    pub family_max_rows: usize,
    /// Up to this many rows, the interval is calibrated on a fresh
    /// cross-validation of the chosen option, not on the out-of-fold
    /// residuals it was chosen by. Those are the best of a dozen options'
    /// and flatter it: the winner's residuals are partly luck, and on a few
    /// dozen rows that luck is large. Measured on all 74 objectives (10
    /// seeds each, `docs/quality-all-objectives.md`, session 25): mean
    /// coverage of the nominal 80% 78.9 -> 80.6% at N = 32 and 79.1 ->
    /// 80.1% at N = 128, cells more than 5 points off 8 -> 9 and 7 -> 1.
    /// At 1,024 rows it did not bring the two costs still off inside
    /// (FPGA latency 56.6 -> 71.3%) and would cost five more fits at the
    /// report's costliest size, so the bar is 128.
    pub fresh_calibration_max_rows: usize,
    /// Where at least this share of the rows sit on the target's minimum,
    /// the first family choice that can be formed is the default and the
    /// others must beat it. There the target's own rows hold least of the
    /// order (many tie at 0% accuracy under a strong attack), and the
    /// same networks' values under weaker attacks hold more, which the
    /// inner cross-validation, on 32 rows, cannot show in most seeds.
    /// Measured on CIFAR-10's attacks (`docs/quality.md`): from 0.05, the
    /// family default lifted every cell with a fifth of the networks or
    /// more at zero (PGD eps 8/255 at N = 32: 0.306 -> 0.399), but it
    /// lost on Square eps 8/255 (4.6% at zero; 0.380 -> 0.354 at N = 128).
    /// 0.1 sits in the gap between the shares of 4.6 to 6.5% and of
    /// 22%. Above 1, never by this rule (the family is also the default
    /// where the default's own order is chance: [`own_order_is_chance`]).
    pub family_default_floor_share: f64,
}

impl Recipe {
    /// The default recipe with every candidate's rounds scaled to `rounds`
    /// for the largest booster: fewer for quick tests, more to be slow.
    pub fn with_rounds(rounds: u32) -> Self {
        Self {
            rounds,
            ..Self::default()
        }
    }

    /// What trained a model, for its manifest.
    pub fn describe(&self, fitted: &Fitted, rows: usize, seed: u64) -> Value {
        let chosen = self.choices.iter().find(|c| c.name() == fitted.chosen);
        let members: Vec<Value> = chosen
            .map(|c| {
                c.members
                    .iter()
                    .map(|m| {
                        json!({
                            "name": m.name,
                            "params": m.params(rows, seed, self.rounds),
                            "dataset_params": m.dataset_params(rows),
                            "reads_only": m.reads_only.map(|p| format!("{p}*")),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let scores: serde_json::Map<String, Value> = self
            .choices
            .iter()
            .zip(&fitted.cv_kendall_tau)
            .map(|(c, &tau)| {
                (
                    c.name(),
                    if tau.is_finite() {
                        json!(tau)
                    } else {
                        Value::Null
                    },
                )
            })
            .collect();
        json!({
            "chosen": fitted.chosen,
            "members": members,
            "family": fitted.family.as_ref().map(Family::describe),
            // The trees for candidates without every proxy
            // (`Choice::without_proxy_only_members`), where a model reads them.
            "chosen_without_proxies": fitted
                .interval_without_proxies
                .and(chosen)
                .map(|c| c.without_proxy_only_members().name()),
            "inner_cv": {
                "folds": self.folds,
                "rows": fitted.cv_rows,
                "kendall_tau": scores,
            },
            "interval": {
                "coverage": self.coverage,
                "half_width": fitted.interval.half_width,
                "half_width_without_proxies": fitted.interval_without_proxies.map(|i| i.half_width),
                "learning_curve": fitted.interval,
                "learning_curve_without_proxies": fitted.interval_without_proxies,
                "method": "split conformal: residuals of a fresh cross-validation of the chosen option \
                           up to fresh_calibration_max_rows (with and without proxies), else out-of-fold \
                           residuals of the inner cross-validation, or one split of every row beyond \
                           max_cv_rows and for the trees without proxies; the quantile carried to all \
                           the rows along the learning curve from half of them (for the trees without \
                           proxies, from without_proxies_learning_curve_min_rows rows on)",
                "without_proxies_learning_curve_min_rows": WITHOUT_PROXIES_LEARNING_CURVE_MIN_ROWS,
            },
        })
    }
}

impl Default for Recipe {
    fn default() -> Self {
        Self {
            choices: Choice::all(),
            folds: 5,
            coverage: 0.8,
            max_cv_rows: 2048,
            rounds: DEFAULT_ROUNDS,
            selection_margin: 2.0,
            family_selection_margin: 1.5,
            family_max_rows: 512,
            fresh_calibration_max_rows: FRESH_CALIBRATION_MAX_ROWS,
            family_default_floor_share: 0.1,
        }
    }
}

/// A fitted model with what the recipe learned on the way.
#[derive(Debug, Clone)]
pub struct Fitted {
    pub model_text: String,
    pub forest: Forest,
    /// The name of the choice refitted on every row.
    pub chosen: String,
    /// Each choice's out-of-fold Kendall tau, in choice order.
    pub cv_kendall_tau: Vec<f64>,
    /// Rows the inner cross-validation ran on.
    pub cv_rows: usize,
    /// The `coverage` interval around a prediction (of a candidate with
    /// every proxy, for a model that reads them) and how it was calibrated.
    pub interval: IntervalCalibration,
    /// The same for a candidate without every proxy, answered by the trees
    /// trained on the architecture alone; `None` for a model without
    /// proxies.
    pub interval_without_proxies: Option<IntervalCalibration>,
    /// The floor predictions are clamped to, where the target has many
    /// rows on its minimum and clamping ranked the out-of-fold rows better
    /// (`choose_floor`).
    pub floor: Option<Floor>,
    /// How the models of the target and of its related objectives are
    /// combined, where a family choice was made.
    pub family: Option<Family>,
}

impl Fitted {
    pub fn predict(&self, row: &[f64]) -> f64 {
        Floor::apply_if_any(self.floor, self.forest.predict(row))
    }

    pub fn predict_batch(&self, x: &[f64], out: &mut [f64]) {
        self.forest.predict_batch(x, out);
        Floor::apply_to_all(self.floor, out);
    }

    /// The half-width of the interval around the prediction of `row`: the
    /// one of the trees that answer it, with every proxy or without, where
    /// `sent` is the column of [`PROXIES_SENT_FEATURE`] in the rows.
    pub fn interval_half_width_for(&self, row: &[f64], sent: Option<usize>) -> f64 {
        match (sent, self.interval_without_proxies) {
            (Some(column), Some(without)) if !sends_every_proxy(row, column) => without.half_width,
            _ => self.interval.half_width,
        }
    }
}

impl Recipe {
    /// Chooses by inner cross-validation, refits the choice on every row,
    /// and calibrates its interval.
    ///
    /// With a [`PROXIES_SENT_FEATURE`] column, the model is two in one
    /// text: trees trained on the rows with every proxy answer candidates
    /// that send every proxy, and trees of the same choice trained on every
    /// row with its proxies blanked answer the others (each behind a split
    /// on that column, [`blend::guard`]). Why not one model trained on both
    /// (each row once with and once without its proxies): at 32 rows that
    /// cost 0.04 to 0.08 of Kendall tau on the candidates with proxies
    /// (`docs/quality.md`).
    pub fn fit(
        &self,
        x: &[f64],
        names: &[String],
        y: &[f64],
        seed: u64,
    ) -> Result<Fitted, TrainError> {
        self.fit_related(x, names, y, &[], seed)
    }

    /// [`Recipe::fit`] with the values of objectives related to the target
    /// on the same rows, which the family choices learn from
    /// ([`Choice::family`]), up to [`Recipe::family_max_rows`] rows. Only a
    /// related objective measured on every row is used: then every fit of
    /// the family, in the folds, the calibration's splits and the final
    /// one, sees the same rows for each of its models.
    pub fn fit_related(
        &self,
        x: &[f64],
        names: &[String],
        y: &[f64],
        related: &[RelatedTarget],
        seed: u64,
    ) -> Result<Fitted, TrainError> {
        if let Some(r) = related.iter().find(|r| r.values.len() != y.len()) {
            return Err(data_err(format!(
                "{} values of the related objective {} for {} rows",
                r.values.len(),
                r.objective,
                y.len()
            )));
        }
        let related: Vec<RelatedTarget> = if y.len() <= self.family_max_rows {
            related
                .iter()
                .filter(|r| r.values.iter().all(|v| v.is_finite()))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        let width = names.len();
        let Some(sent) = names.iter().position(|n| n == PROXIES_SENT_FEATURE) else {
            return self.fit_rows(x, names, y, &related, seed);
        };
        if x.len() != y.len() * width {
            return Err(data_err(format!(
                "{} values for {} rows of {width} features",
                x.len(),
                y.len()
            )));
        }
        let complete: Vec<usize> = (0..y.len())
            .filter(|&i| sends_every_proxy(&x[i * width..(i + 1) * width], sent))
            .collect();
        if complete.len() < 4 {
            return Err(data_err(format!(
                "only {} of {} rows have every proxy; train without proxies",
                complete.len(),
                y.len()
            )));
        }
        let related_complete: Vec<RelatedTarget> =
            related.iter().map(|r| r.rows(&complete)).collect();
        let with = self.fit_rows(
            &gather(x, width, &complete),
            names,
            &gather_y(y, &complete),
            &related_complete,
            seed,
        )?;
        let choice = self
            .choices
            .iter()
            .find(|c| c.name() == with.chosen)
            .ok_or_else(|| data_err(format!("chose {:?}, which is not a choice", with.chosen)))?;
        let mut blank = x.to_vec();
        for row in blank.chunks_exact_mut(width) {
            for (value, name) in row.iter_mut().zip(names) {
                if name.starts_with(PROXY_FEATURE_PREFIX) {
                    *value = f64::NAN;
                }
            }
            row[sent] = 0.0;
        }
        let choice = choice.without_proxy_only_members();
        let without_text = self.fit_choice(&choice, &blank, names, y, &[], None, seed)?;
        let without_interval = Calibration {
            choice: &choice,
            x: &blank,
            names,
            y,
            related: &[],
            family: None,
            seed,
            floor: with.floor,
            learning_curve: y.len() >= WITHOUT_PROXIES_LEARNING_CURVE_MIN_ROWS,
        }
        .half_width(self, None)?;
        let threshold = EVERY_PROXY - 0.5;
        let guard = |text: &str, side| {
            blend::guard(text, sent, threshold, side).map_err(|e| data_err(e.to_string()))
        };
        let model_text = blend::blend(&[
            (1.0, &guard(&with.model_text, blend::Side::Above)?),
            (1.0, &guard(&without_text, blend::Side::AtMost)?),
        ])
        .map_err(|e| data_err(e.to_string()))?;
        let forest = Forest::parse(&model_text).map_err(|e| data_err(e.to_string()))?;
        Ok(Fitted {
            model_text,
            forest,
            interval_without_proxies: Some(without_interval),
            ..with
        })
    }

    /// [`Recipe::fit_related`] on rows that are all alike (no switch), with
    /// related objectives measured on every row.
    fn fit_rows(
        &self,
        x: &[f64],
        names: &[String],
        y: &[f64],
        related: &[RelatedTarget],
        seed: u64,
    ) -> Result<Fitted, TrainError> {
        let n = y.len();
        let width = names.len();
        if n < 4 || x.len() != n * width {
            return Err(data_err(format!(
                "{} values for {n} rows of {width} features; the recipe needs at least 4 rows",
                x.len()
            )));
        }
        if self.choices.is_empty() || self.choices.iter().any(|c| c.members.is_empty()) {
            return Err(data_err("the recipe has nothing to choose from".to_owned()));
        }
        let order = SplitMix64(seed ^ 0x5eed_f01d).permutation(n);
        // The rows of the inner cross-validation and their folds.
        let cv: Vec<usize> = order
            .iter()
            .copied()
            .take(self.max_cv_rows.max(4))
            .collect();
        let folds = self.folds.clamp(2, cv.len());
        let mut fold_of = vec![0; cv.len()];
        for (position, fold) in fold_of.iter_mut().enumerate() {
            *fold = position % folds;
        }
        let cv_y = gather_y(y, &cv);
        // The positions in `cv` each fold holds out.
        let held_out: Vec<Vec<usize>> = (0..folds)
            .map(|fold| (0..cv.len()).filter(|&k| fold_of[k] == fold).collect())
            .collect();
        // Each distinct member is fitted once per fold, whatever the
        // choices that share it. Members that cannot read this table are
        // left out, and so are the choices that hold them.
        let mut members: Vec<&Candidate> = Vec::new();
        for member in self.choices.iter().flat_map(|c| &c.members) {
            if !members.iter().any(|m| m.name == member.name) && member.usable_on(x, names, y) {
                members.push(member);
            }
        }
        // Each fold's training rows (of the table) and their values, and
        // the held-out rows' values: gathered once, for every member and
        // every related target.
        let fold_rows: Vec<FoldRows> = held_out
            .iter()
            .enumerate()
            .map(|(fold, test)| {
                let train: Vec<usize> = (0..cv.len())
                    .filter(|&k| fold_of[k] != fold)
                    .map(|k| cv[k])
                    .collect();
                let test_rows: Vec<usize> = test.iter().map(|&k| cv[k]).collect();
                FoldRows {
                    train_x: gather(x, width, &train),
                    train,
                    test_x: gather(x, width, &test_rows),
                }
            })
            .collect();
        let mut out_of_fold = vec![vec![f64::NAN; cv.len()]; members.len()];
        for (fold, test) in fold_rows.iter().zip(&held_out) {
            let train_y = gather_y(y, &fold.train);
            for (m, member) in members.iter().enumerate() {
                let text = member.fit(&fold.train_x, names, &train_y, seed, self.rounds)?;
                predict_held_out(&text, &fold.test_x, test, &mut out_of_fold[m])?;
            }
        }
        let member_index = |c: &Candidate| members.iter().position(|m| m.name == c.name);
        let mean_oof = |choice: &Choice| -> Option<Vec<f64>> {
            let idx = choice
                .members
                .iter()
                .map(member_index)
                .collect::<Option<Vec<usize>>>()?;
            Some(
                (0..cv.len())
                    .map(|k| idx.iter().map(|&m| out_of_fold[m][k]).sum::<f64>() / idx.len() as f64)
                    .collect(),
            )
        };
        // A family choice's mean fitted on each related target, out of fold.
        let mut families: Vec<Option<(Family, Vec<f64>)>> = vec![None; self.choices.len()];
        for (c, choice) in self.choices.iter().enumerate() {
            let Some(own) = mean_oof(choice).filter(|_| choice.family && !related.is_empty())
            else {
                continue;
            };
            let mut series = vec![FamilySeries::new(None, None, own)];
            for (r, target) in related.iter().enumerate() {
                let mut oof = vec![f64::NAN; cv.len()];
                for (fold, test) in fold_rows.iter().zip(&held_out) {
                    let text = self.fit_mean(
                        &choice.members,
                        &fold.train_x,
                        names,
                        &gather_y(&target.values, &fold.train),
                        seed,
                    )?;
                    predict_held_out(&text, &fold.test_x, test, &mut oof)?;
                }
                series.push(FamilySeries::new(Some(r), Some(&target.objective), oof));
            }
            families[c] = Family::from_out_of_fold(&series, &cv_y);
            // The later family choices are fallbacks for the first one
            // (without the ranker, where it is not tried): a family costs
            // its members' fits once per related objective.
            if families[c].is_some() {
                break;
            }
        }
        let choice_oof: Vec<Vec<f64>> = self
            .choices
            .iter()
            .zip(&families)
            .map(|(choice, family)| {
                let oof = if choice.family {
                    family.as_ref().map(|(_, oof)| oof.clone())
                } else {
                    mean_oof(choice)
                };
                oof.unwrap_or_else(|| vec![f64::NAN; cv.len()])
            })
            .collect();
        let cv_kendall_tau: Vec<f64> = choice_oof
            .iter()
            .map(|p| tau_unless_untried(p, &cv_y))
            .collect();
        // Where no choice ranks at all (a constant target), the first one
        // that can read the table.
        // A family choice counts only where it could be formed: a constant
        // target has no line to map its models onto.
        let readable = self
            .choices
            .iter()
            .zip(&families)
            .position(|(c, family)| {
                c.members
                    .iter()
                    .all(|m| members.iter().any(|u| u.name == m.name))
                    && (!c.family || family.is_some())
            })
            .ok_or_else(|| data_err("no choice of the recipe can read this table".to_owned()))?;
        let preferred = (share_on_minimum(&cv_y) >= self.family_default_floor_share
            || own_order_is_chance(&self.choices, &cv_kendall_tau, cv.len()))
        .then(|| {
            self.choices
                .iter()
                .zip(&cv_kendall_tau)
                .position(|(c, tau)| c.family && !tau.is_nan())
        })
        .flatten();
        let best = self
            .select(&cv_kendall_tau, &choice_oof, &cv_y, preferred)
            .unwrap_or(readable);
        let choice = &self.choices[best];
        let family = families[best].take().map(|(family, _)| family);
        let floor = choose_floor(&choice_oof[best], &cv_y);
        // Models of a sampled cross-validation saw a fraction of the rows
        // and err more than the final one: calibrating on them would make
        // the interval too wide, so beyond `max_cv_rows` a split of every
        // row calibrates instead; up to `fresh_calibration_max_rows`, a
        // fresh cross-validation does.
        let out_of_fold = (cv.len() == n && n > self.fresh_calibration_max_rows).then(|| {
            choice_oof[best]
                .iter()
                .zip(&cv_y)
                .map(|(&p, t)| (Floor::apply_if_any(floor, p) - t).abs())
                .collect()
        });
        let interval = Calibration {
            choice,
            x,
            names,
            y,
            related,
            family: family.as_ref(),
            seed,
            floor,
            learning_curve: true,
        }
        .half_width(self, out_of_fold)?;
        let model_text = self.fit_choice(choice, x, names, y, related, family.as_ref(), seed)?;
        let forest = Forest::parse(&model_text).map_err(|e| data_err(e.to_string()))?;
        Ok(Fitted {
            model_text,
            forest,
            chosen: choice.name(),
            cv_kendall_tau,
            cv_rows: cv.len(),
            interval,
            interval_without_proxies: None,
            floor,
            family,
        })
    }

    /// The choice to refit, from each choice's out-of-fold Kendall tau
    /// (`pooled`, NaN for a choice that could not be tried or predicted a
    /// constant) and its out-of-fold predictions (`oof[choice][row]`) of
    /// `truth`: the first choice with a tau (the default), unless another
    /// orders the out-of-fold rows better by more than
    /// [`Recipe::selection_margin`] standard errors of its advantage
    /// ([`metrics::concordance_advantage`]), in which case the best of those by
    /// pooled tau. `None` when no choice has a tau.
    ///
    /// Why not simply the best: on a few dozen rows the out-of-fold tau is
    /// noise of ±0.12, and picking the largest of a dozen noisy figures
    /// picks noise (`docs/quality.md`: the mean of forest and small booster
    /// alone beat choosing at N = 32). Why paired: two choices' predictions
    /// of the same rows err together, so their difference is known far
    /// better than either tau. Why over every pair of rows rather than
    /// each fold's tau: at 32 rows a fold holds 6 or 7 rows, 15 to 21 pairs,
    /// whose taus swing too widely to show what the pairs show
    /// (`docs/quality.md`).
    fn select(
        &self,
        pooled: &[f64],
        oof: &[Vec<f64>],
        truth: &[f64],
        preferred: Option<usize>,
    ) -> Option<usize> {
        let default = preferred
            .filter(|&c| pooled.get(c).is_some_and(|t| !t.is_nan()))
            .or_else(|| pooled.iter().position(|t| !t.is_nan()))?;
        let mut best = default;
        for c in 0..pooled.len() {
            if c == default || pooled[c].is_nan() {
                continue;
            }
            let margin = match self.choices.get(c) {
                Some(choice) if choice.family => self.family_selection_margin,
                _ => self.selection_margin,
            };
            let (advantage, se) = metrics::concordance_advantage(&oof[c], &oof[default], truth);
            let beats_default = advantage > 0.0 && advantage > margin * se;
            if beats_default && (best == default || pooled[c] > pooled[best]) {
                best = c;
            }
        }
        Some(best)
    }

    /// Fits `choice` as one model text: the mean of its members, or for a
    /// family choice, that mean fitted on the target and on each related
    /// target `family` uses, combined as it says.
    #[allow(clippy::too_many_arguments)]
    fn fit_choice(
        &self,
        choice: &Choice,
        x: &[f64],
        names: &[String],
        y: &[f64],
        related: &[RelatedTarget],
        family: Option<&Family>,
        seed: u64,
    ) -> Result<String, TrainError> {
        if !choice.family {
            return self.fit_mean(&choice.members, x, names, y, seed);
        }
        let family =
            family.ok_or_else(|| data_err(format!("{} without its weights", choice.name())))?;
        let mut texts = Vec::with_capacity(family.members.len());
        for member in &family.members {
            let target = match member.related {
                None => y,
                Some(r) => {
                    &related
                        .get(r)
                        .ok_or_else(|| {
                            data_err(format!("related target {r} of {}", related.len()))
                        })?
                        .values
                }
            };
            let text = self.fit_mean(&choice.members, x, names, target, seed)?;
            texts.push((member.weight, text));
        }
        let weighted: Vec<(f64, &str)> = texts.iter().map(|(w, t)| (*w, t.as_str())).collect();
        let blended = blend::blend(&weighted).map_err(|e| data_err(e.to_string()))?;
        blend::offset(&blended, family.intercept).map_err(|e| data_err(e.to_string()))
    }

    /// Fits every one of `members` and blends them into one model text,
    /// their mean.
    fn fit_mean(
        &self,
        members: &[Candidate],
        x: &[f64],
        names: &[String],
        y: &[f64],
        seed: u64,
    ) -> Result<String, TrainError> {
        let texts = members
            .iter()
            .map(|m| m.fit(x, names, y, seed, self.rounds))
            .collect::<Result<Vec<String>, _>>()?;
        match texts.as_slice() {
            [one] => Ok(one.clone()),
            many => {
                let weight = 1.0 / many.len() as f64;
                let members: Vec<(f64, &str)> = many.iter().map(|t| (weight, t.as_str())).collect();
                blend::blend(&members).map_err(|e| data_err(e.to_string()))
            }
        }
    }
}

/// Half the width of an interval around a prediction, and what it was
/// calibrated from (`Calibration::half_width`): the error quantile of
/// models of `far_rows` and of `near_rows` rows on rows they did not see,
/// carried along the learning curve through the two to the model of all
/// `rows` rows, not below the numerical floor. Kept beside the width to
/// tell, in a report, a width off because the quantile was from the one
/// off because the curve carried it too far or not far enough.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct IntervalCalibration {
    pub half_width: f64,
    pub far_rows: f64,
    /// NaN where the quantile was not carried (`Calibration::learning_curve`),
    /// so not measured.
    pub far_quantile: f64,
    pub near_rows: f64,
    pub near_quantile: f64,
    pub rows: f64,
    pub numerical_floor: f64,
}

/// What calibrates the interval of one choice: the choice, the rows it is
/// refitted on, and the floor its predictions are clamped to.
#[derive(Clone, Copy)]
struct Calibration<'a> {
    choice: &'a Choice,
    x: &'a [f64],
    names: &'a [String],
    y: &'a [f64],
    related: &'a [RelatedTarget],
    family: Option<&'a Family>,
    seed: u64,
    floor: Option<Floor>,
    /// Whether the quantile is carried along the learning curve to all
    /// the rows ([`Calibration::half_width`]) or taken as it is.
    learning_curve: bool,
}

impl Calibration<'_> {
    /// Half the width of the `coverage` interval of the choice refitted on
    /// all `n` rows, from residuals on rows its models did not see: up to
    /// [`Recipe::fresh_calibration_max_rows`] rows, a fresh
    /// cross-validation's of the choice alone; beyond, `out_of_fold`, those
    /// of the inner cross-validation the choice was made by (every row, by
    /// models of `(folds - 1) / folds` of them), where there are any, or
    /// else one split's.
    ///
    /// Why not their quantile alone: a model of four fifths of the rows
    /// errs more than the one refitted on all of them, and where error
    /// falls fast with rows (per-op costs at N = 32, costs the op counts
    /// determine, whose error is nil wherever a network's counts were
    /// seen) that interval held 86 to 94% instead of 80 (`docs/quality.md`).
    /// The same choice fitted on half the rows tells how fast its error
    /// falls, and the quantile is carried along that learning curve from
    /// the folds' rows to all of them ([`learning_curve_shrink`]), where
    /// `learning_curve` says so (not for the trees without proxies on few
    /// rows: [`WITHOUT_PROXIES_LEARNING_CURVE_MIN_ROWS`]).
    fn half_width(
        &self,
        recipe: &Recipe,
        out_of_fold: Option<Vec<f64>>,
    ) -> Result<IntervalCalibration, TrainError> {
        let n = self.y.len();
        let folds = recipe.folds.clamp(2, n);
        // Up to the bar, every row is held out once, whatever residuals are
        // at hand. One split of 32 rows holds out 7, whose largest is the
        // quantile: the trees without proxies, calibrated so before session
        // 27, got intervals 0.37 to 8.4 times the width that held 80% of the
        // test networks at N = 32 (five objectives, ten seeds), 0.45 to 1.6
        // with every row held out (`docs/quality.md`).
        let (mut near, near_fits) = match out_of_fold {
            _ if n <= recipe.fresh_calibration_max_rows => {
                (self.cross_residuals(recipe, folds, folds)?, folds)
            }
            Some(residuals) => (residuals, folds),
            None => (self.cross_residuals(recipe, folds, 1)?, 1),
        };
        let near_q = conformal_quantile(&mut near, recipe.coverage);
        let near_rows = (n - n.div_ceil(folds)) as f64;
        let far_rows = (n - n.div_ceil(2)) as f64;
        let floor = numerical_floor(self.y);
        let mut interval = IntervalCalibration {
            half_width: near_q,
            far_rows,
            far_quantile: f64::NAN,
            near_rows,
            near_quantile: near_q,
            rows: n as f64,
            numerical_floor: floor,
        };
        if self.learning_curve {
            // Halves of the same rows: both halves where every row was held
            // out once above, so both quantiles are of as many residuals.
            let mut far = self.cross_residuals(recipe, 2, near_fits.min(2))?;
            interval.far_quantile = conformal_quantile(&mut far, recipe.coverage);
            interval.half_width = carry_along_learning_curve(
                (far_rows, interval.far_quantile),
                (near_rows, near_q),
                n as f64,
                floor,
            );
        }
        Ok(interval)
    }

    /// Absolute residuals of the choice on rows it did not see: the rows are
    /// dealt into `folds` folds (a seeded draw), and for each of the first
    /// `fits` folds the choice is fitted on the other folds and scored on
    /// it. `fits == folds` scores every row once; 1 is a single split.
    fn cross_residuals(
        &self,
        recipe: &Recipe,
        folds: usize,
        fits: usize,
    ) -> Result<Vec<f64>, TrainError> {
        let Self {
            choice,
            x,
            names,
            y,
            related,
            family,
            seed,
            floor,
            learning_curve: _,
        } = *self;
        let width = names.len();
        let n = y.len();
        let order = SplitMix64(seed ^ 0xca11_b4a7e).permutation(n);
        let fold_len = n.div_ceil(folds);
        let mut residuals = Vec::with_capacity(n);
        for (fold, held) in order.chunks(fold_len).take(fits).enumerate() {
            // The other folds, in the draw's order.
            let (before, rest) = order.split_at(fold * fold_len);
            let fit_rows = [before, &rest[held.len()..]].concat();
            let related: Vec<RelatedTarget> = related.iter().map(|r| r.rows(&fit_rows)).collect();
            let text = recipe.fit_choice(
                choice,
                &gather(x, width, &fit_rows),
                names,
                &gather_y(y, &fit_rows),
                &related,
                family,
                seed,
            )?;
            let forest = Forest::parse(&text).map_err(|e| data_err(e.to_string()))?;
            let mut pred = vec![0.0; held.len()];
            forest.predict_batch(&gather(x, width, held), &mut pred);
            residuals.extend(
                pred.iter()
                    .zip(held)
                    .map(|(&p, &i)| (Floor::apply_if_any(floor, p) - y[i]).abs()),
            );
        }
        Ok(residuals)
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

/// The least share of rows on the target's minimum for a floor to be tried.
const FLOOR_MIN_SHARE: f64 = 0.05;
/// The share of rows on the target's minimum from which the floor is no
/// longer chosen but set where that share of the out-of-fold predictions
/// falls. There the out-of-fold tau that chooses it is decided by the few
/// rows above the floor (one to three of 128 under APGD-CE at eps 8/255)
/// and picks noise: outside the recipe (a LightGBM forest on the proxies,
/// 20 splits), the fixed floor ranked the test networks at 0.355 against
/// 0.173 for the chosen one at eps 8/255 and 128 rows, and as well or
/// better at eps 4/255 and PGD eps 8/255 at 32 and 128 rows; at APGD-CE eps
/// 3/255 (half the rows at zero) choosing was better. In the recipe, on 20
/// fresh splits: APGD-CE eps 4 +0.020 / +0.019 at 32 / 128 rows, PGD eps 8
/// +0.011 / +0.003 (`docs/quality.md`).
const FLOOR_FIXED_SHARE: f64 = 2.0 / 3.0;
/// The thresholds tried: the out-of-fold prediction below which this
/// multiple of the share of rows on the floor falls.
const FLOOR_SHARE_MULTIPLES: [f64; 5] = [0.5, 0.75, 1.0, 1.25, 1.5];

/// Rows in each drawn query of a candidate that learns order
/// ([`Candidate::boosted_pairwise`]): four rows, six pairs, so the ranking
/// loss is nearly the pairwise one (measured in the proxy mean at N = 32:
/// queries of 2, 4 and 8 rows within 0.007 of each other).
const PAIRWISE_GROUP: usize = 4;
/// Shuffles of the training rows into queries, at most: every row in this
/// many queries, each with other rows.
const PAIRWISE_REPEATS: usize = 8;
/// Fewer shuffles where rows are many: enough for this many rows in all
/// (at least one shuffle). A thousand rows hold half a million pairs;
/// eight shuffles of them would cost eight boosters' time for pairs that
/// two already sample well.
const PAIRWISE_ROWS: usize = 2048;
/// The least share of a ranker's drawn queries that must hold rows of
/// different values for it to be tried ([`Candidate::usable_on`]). Under
/// APGD-CE at eps 8/255, 99% of the 9,445 networks are at 0% accuracy:
/// 96% of the queries of four are all zeros, and the proxy mean with the
/// ranker fell from 0.304 to 0.191 at 128 rows (`docs/quality.md`). At
/// eps 4/255 (86% at zero, 44% of the queries ordered) the ranker lifted
/// it. The bar lies between the two; a sample of 32 rows at eps 4/255
/// falls beyond it one time in six, and then the mean without the ranker
/// serves (one seed of the report's ten: the cell moved 0.247 -> 0.246).
const MIN_ORDERED_QUERY_SHARE: f64 = 0.3;
/// Relevance levels of a row's rank, and the length of LightGBM's
/// `label_gain` (its default is 31 levels).
const RELEVANCE_LEVELS: usize = 31;
/// The weight of a ranker's scores that do not rise with the target: not
/// zero, which a blend refuses.
const NEGLIGIBLE_SLOPE: f64 = 1e-12;

/// Each row's rank among `y` in [`RELEVANCE_LEVELS`] levels, 0 the
/// lowest: the rows below it, scaled. Tied rows share a level.
fn relevance_levels(y: &[f64]) -> Vec<f32> {
    let mut sorted: Vec<f64> = y.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = y.len().max(1);
    y.iter()
        .map(|v| {
            let below = sorted.partition_point(|s| s.total_cmp(v).is_lt());
            ((below * RELEVANCE_LEVELS) / n).min(RELEVANCE_LEVELS - 1) as f32
        })
        .collect()
}

/// The expected share of queries of [`PAIRWISE_GROUP`] rows drawn from
/// `y` that hold two different values: one minus the chance that all the
/// rows of a query share a value, summed over the values (drawn with
/// replacement, which is close where rows are many and errs towards
/// fewer ordered queries where they are few).
fn ordered_query_share(y: &[f64]) -> f64 {
    if y.is_empty() {
        return 0.0;
    }
    let mut sorted: Vec<f64> = y.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    let all_tied: f64 = sorted
        .chunk_by(|a, b| a.total_cmp(b).is_eq())
        .map(|run| (run.len() as f64 / n).powi(PAIRWISE_GROUP as i32))
        .sum();
    1.0 - all_tied
}

/// Trains a ranking booster on the rows drawn into random queries
/// ([`Candidate::boosted_pairwise`]) and maps its scores onto the target
/// by the least-squares line through the training rows: a model text with
/// an identity objective whose predictions are on the target's scale.
fn fit_order(
    x: &[f64],
    names: &[String],
    y: &[f64],
    seed: u64,
    dataset_params: &Value,
    params: &Value,
) -> Result<String, TrainError> {
    let width = names.len();
    let n = y.len();
    if n == 0 || x.len() != n * width {
        return Err(data_err(format!(
            "{} values for {n} rows of {width} features",
            x.len()
        )));
    }
    let relevance = relevance_levels(y);
    let group = PAIRWISE_GROUP.min(n);
    let per_shuffle = n / group * group;
    let shuffles = (PAIRWISE_ROWS / n).clamp(1, PAIRWISE_REPEATS);
    let mut rng = SplitMix64(seed ^ 0x0de2_5a1e);
    let mut rows = Vec::with_capacity(shuffles * per_shuffle * width);
    let mut labels = Vec::with_capacity(shuffles * per_shuffle);
    for _ in 0..shuffles {
        for &i in &rng.permutation(n)[..per_shuffle] {
            rows.extend_from_slice(&x[i * width..(i + 1) * width]);
            labels.push(relevance[i]);
        }
    }
    let group_size = i32::try_from(group).map_err(|_| data_err(format!("a query of {group}")))?;
    let groups = vec![group_size; labels.len() / group];
    let ranked =
        lightgbm::train_grouped(&rows, &labels, Some(&groups), names, dataset_params, params)?;
    // LightGBM's ranking output is its raw score, as a regression's is; the
    // affine map below makes it a prediction of the target, which is what
    // the text is then served, blended and calibrated as.
    let text = ranked.replacen("objective=lambdarank", "objective=regression", 1);
    let forest = Forest::parse(&text).map_err(|e| data_err(e.to_string()))?;
    let mut scores = vec![0.0; n];
    forest.predict_batch(x, &mut scores);
    // A ranker whose scores do not rise with the target on its own
    // training rows (all tied, or no order learned) becomes a model of the
    // mean that keeps their order at a negligible weight, so a blend of it
    // with others is the others'.
    let (intercept, slope) = rising_least_squares_line(&scores, y).unwrap_or_else(|| {
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        (mean(y) - NEGLIGIBLE_SLOPE * mean(&scores), NEGLIGIBLE_SLOPE)
    });
    let scaled = blend::blend(&[(slope, &text)]).map_err(|e| data_err(e.to_string()))?;
    blend::offset(&scaled, intercept).map_err(|e| data_err(e.to_string()))
}

/// The line `y = intercept + slope * s` of least squares through the
/// points, or `None` unless its slope is finite and positive (scores that
/// do not rise with the target, or do not vary).
fn rising_least_squares_line(s: &[f64], y: &[f64]) -> Option<(f64, f64)> {
    let n = s.len() as f64;
    let (ms, my) = (s.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let var: f64 = s.iter().map(|a| (a - ms).powi(2)).sum();
    let cov: f64 = s.iter().zip(y).map(|(a, b)| (a - ms) * (b - my)).sum();
    let slope = cov / var;
    (slope.is_finite() && slope > 0.0).then_some((my - slope * ms, slope))
}

/// From this many out-of-fold rows on, a default whose order is
/// indistinguishable from chance gives way to the family.
const CHANCE_MIN_ROWS: usize = 64;

/// How many standard errors of Kendall's tau under independence the
/// default's out-of-fold tau must reach to count as an order at all.
const CHANCE_STANDARD_ERRORS: f64 = 2.0;

/// Whether the default (the first choice that is not a family and has a
/// tau) orders the out-of-fold rows no better than chance would, on
/// enough rows to tell: then the target's own rows hold too little signal
/// for its models, and the same networks' values under weaker attacks,
/// which the family learns from, hold more. Measured on FGSM at eps
/// 255/255, where every network is near chance accuracy (30 seeds,
/// `docs/quality.md`): at 128 rows the default's out-of-fold tau is under
/// two standard errors (0.12) in 25 of 30 seeds, and with this rule the
/// test tau rises from 0.051 to 0.056 (0.048 to 0.054 on the report's ten
/// seeds, the family chosen in 8; the reference's best 0.050). Not below
/// 64 rows: at 32 two standard errors are 0.25, and the default's
/// out-of-fold tau of weak attacks whose own models do rank (Square eps
/// 8/255, PGD eps 1/255: test tau 0.27, 0.38) falls under it in two to
/// six seeds of ten.
fn own_order_is_chance(choices: &[Choice], cv_kendall_tau: &[f64], rows: usize) -> bool {
    rows >= CHANCE_MIN_ROWS
        && choices
            .iter()
            .zip(cv_kendall_tau)
            .find(|(c, tau)| !c.family && !tau.is_nan())
            .is_some_and(|(_, tau)| {
                *tau < CHANCE_STANDARD_ERRORS * metrics::kendall_tau_standard_error(rows)
            })
}

/// The minimum of `values` and how many of them are equal to it
/// (infinity and 0 for none).
fn minimum_and_ties(values: &[f64]) -> (f64, usize) {
    let value = values.iter().copied().fold(f64::INFINITY, f64::min);
    (value, values.iter().filter(|&&t| t == value).count())
}

/// The share of `values` equal to their minimum; 0 for none.
fn share_on_minimum(values: &[f64]) -> f64 {
    let (_, on_floor) = minimum_and_ties(values);
    on_floor as f64 / values.len().max(1) as f64
}

/// The floor to clamp predictions to, from the chosen option's
/// out-of-fold predictions `oof` of the targets `truth`: `None` unless at
/// least [`FLOOR_MIN_SHARE`] of the rows (and 3) sit exactly on the
/// minimum, as most networks do under a strong attack (0% accuracy). The
/// threshold is the out-of-fold prediction below which some multiple of
/// that share of the rows falls ([`FLOOR_SHARE_MULTIPLES`]): the multiple
/// whose floor ranks the rows best, if it ranks them better than no floor.
/// Where at least [`FLOOR_FIXED_SHARE`] of the rows are on the minimum,
/// the multiple is 1, not chosen.
///
/// Why the pooled tau and not the paired rule of [`Recipe::select`]: the
/// paired rule kept no floor where one won on the test networks (APGD-CE
/// at eps 4/255 and N = 128: 0.340 against 0.373, `docs/quality.md`).
fn choose_floor(oof: &[f64], truth: &[f64]) -> Option<Floor> {
    let (value, on_floor) = minimum_and_ties(truth);
    let share = on_floor as f64 / truth.len() as f64;
    if on_floor < 3 || share < FLOOR_MIN_SHARE || oof.iter().any(|p| !p.is_finite()) {
        return None;
    }
    let mut sorted = oof.to_vec();
    sorted.sort_by(f64::total_cmp);
    let floor_at = |multiple: f64| {
        let below =
            ((share * multiple * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        Floor {
            at_or_below: sorted[below - 1].max(value),
            value,
        }
    };
    if share >= FLOOR_FIXED_SHARE {
        return Some(floor_at(1.0));
    }
    let tau_with = |floor: Option<Floor>| {
        let pred: Vec<f64> = oof.iter().map(|&p| Floor::apply_if_any(floor, p)).collect();
        metrics::kendall_tau_b(&pred, truth)
    };
    let (mut best, mut best_tau) = (None, tau_with(None));
    for multiple in FLOOR_SHARE_MULTIPLES {
        let floor = floor_at(multiple);
        let tau = tau_with(Some(floor));
        if tau > best_tau {
            (best, best_tau) = (Some(floor), tau);
        }
    }
    best
}

/// [`Recipe::fresh_calibration_max_rows`] by default.
pub const FRESH_CALIBRATION_MAX_ROWS: usize = 128;

/// The fewest rows from which the interval of the trees without proxies
/// is carried along the learning curve; below, the fresh
/// cross-validation's quantile is taken as it is. Those trees, fitted on
/// the architecture alone, learn fast from the first rows and then slowly:
/// a power law through their error at half and four fifths of the rows
/// promises more fall to all of them than there is. On all 40 objectives
/// with proxies at N = 32 (10 seeds, session 28) the carried interval
/// covered 78.1% on average with seven cells under 75% (72.1% at worst);
/// the quantile as it is 81.0% with none off (76.9 to 84.8%; APGD-CE eps
/// 8/255, a point mass, 95.6% either way). At N = 64 (eight of them)
/// 78.0% carried, PGD eps 1/255 at 73.9%, against 80.3% with none off. At
/// N = 128 the curve is right: 80.6% (79.5 to 82.1%) carried, 82.3% (81.4
/// to 83.5%) not. The trees with proxies are carried at every size
/// (without the curve 85.0% at N = 32, 30 cells over 85%).
pub const WITHOUT_PROXIES_LEARNING_CURVE_MIN_ROWS: usize = 128;

/// The largest power of the rows the error quantile is taken to fall with
/// in [`learning_curve_shrink`].
const MAX_LEARNING_CURVE_POWER: f64 = 8.0;

/// The factor (at most 1) by which an error quantile measured on models of
/// `near.0` rows (`near.1`) falls for a model of `n` rows, from the same
/// quantile on models of `far.0 < near.0` rows: a power law through the
/// two, `q ∝ rows^-b`, with `b` in `[0, MAX_LEARNING_CURVE_POWER]`. 1 where
/// the error did not fall with rows (noise, or nothing to learn) or
/// there is none.
pub fn learning_curve_shrink(far: (f64, f64), near: (f64, f64), n: f64) -> f64 {
    let ((far_rows, far_q), (near_rows, near_q)) = (far, near);
    let measured = near_q > 0.0 && far_q.is_finite() && far_rows > 0.0;
    if !(measured && far_q > near_q && near_rows > far_rows && n > near_rows) {
        return 1.0;
    }
    let power = ((far_q / near_q).ln() / (near_rows / far_rows).ln()).min(MAX_LEARNING_CURVE_POWER);
    (near_rows / n).powf(power)
}

/// An error quantile measured on models of `near.0` rows (`near.1`),
/// carried to a model of `n` rows along the learning curve through `far`
/// ([`learning_curve_shrink`]), but not below `floor`, the error a model
/// that determines its target still makes ([`numerical_floor`]): more
/// rows do not reduce that. A quantile already below it is kept as it is,
/// and one that was not measured (NaN) stays NaN: `f64::max` would replace
/// it.
pub fn carry_along_learning_curve(far: (f64, f64), near: (f64, f64), n: f64, floor: f64) -> f64 {
    if near.1.is_nan() {
        return near.1;
    }
    let carried = near.1 * learning_curve_shrink(far, near, n);
    carried.max(near.1.min(floor))
}

/// How many single-precision spacings of the labels (their median) a
/// model that determines its target may still miss it by whatever its
/// rows. Where the op counts determine a cost (the FPGA costs, exactly
/// linear in them), a thousand boosting rounds of stumps stop short of the
/// exact sum by tens to hundreds of spacings, and by as much with all the
/// rows as with four fifths of them: outside the recipe (Python LightGBM,
/// FPGA latency on CIFAR-10, three splits), the held-out 80% quantile was
/// 4 to 695 spacings with 1,000 rounds at 819 and 1,024 rows alike, 0.3 to
/// 0.4 with 4,000. Carried along the learning curve from the halves (which
/// had not seen every count and erred far more), that error shrank below
/// what the refitted model makes: 56.6 to 57.9% coverage at N = 1024. Not
/// below 32 spacings, scored on the recorded fits of the 15 costs the
/// counts determine (10 seeds, session 26) and rerun on the five it moved:
/// the four FPGA costs on CIFAR-10 and CIFAR-100 at N = 1024 57.9 / 56.6%
/// -> 79.4 / 79.6%, ImageNet16-120 Eyeriss energy 86.3 -> 86.5%, the other
/// 40 cells (N = 32 and 128 among them) the same. 16 spacings left the FPGA
/// costs at 78.0 / 76.3%; 64 to 256 gave them the same as 32 but Eyeriss
/// energy 88.0 to 89.2%; 4, the labels' rounding alone, was the rule before.
const NUMERICAL_FLOOR_SPACINGS: f64 = 32.0;

/// The error a model that determines `y` may still make on rows it did
/// not see, however many rows it learns from: [`NUMERICAL_FLOOR_SPACINGS`]
/// times the median spacing of single-precision floats at the labels
/// (LightGBM's labels are `f32`). 0 without labels.
pub fn numerical_floor(y: &[f64]) -> f64 {
    let mut spacings: Vec<f64> = y
        .iter()
        .map(|&v| {
            let label = (v as f32).abs();
            f64::from(label.next_up() - label)
        })
        .filter(|s| s.is_finite())
        .collect();
    if spacings.is_empty() {
        return 0.0;
    }
    let middle = spacings.len().div_ceil(2);
    let median = metrics::kth_smallest(&mut spacings, middle);
    NUMERICAL_FLOOR_SPACINGS * median
}

/// The `ceil((n + 1) * coverage)`-th smallest residual: split conformal's
/// quantile, which covers at least `coverage` of exchangeable new points.
/// The largest residual when `n` is too small for that; NaN without any.
pub fn conformal_quantile(residuals: &mut [f64], coverage: f64) -> f64 {
    let rank = ((residuals.len() + 1) as f64 * coverage).ceil() as usize;
    metrics::kth_smallest(residuals, rank)
}

/// One fold of the inner cross-validation: the rows it trains on and
/// their features, and the features of the rows it holds out.
struct FoldRows {
    train: Vec<usize>,
    train_x: Vec<f64>,
    test_x: Vec<f64>,
}

/// Predicts the held-out rows `test_x` with model `text` and writes each
/// prediction to `out_of_fold` at the row's position in `held_out`.
fn predict_held_out(
    text: &str,
    test_x: &[f64],
    held_out: &[usize],
    out_of_fold: &mut [f64],
) -> Result<(), TrainError> {
    let forest = Forest::parse(text).map_err(|e| data_err(e.to_string()))?;
    let mut pred = vec![0.0; held_out.len()];
    forest.predict_batch(test_x, &mut pred);
    for (&k, p) in held_out.iter().zip(pred) {
        out_of_fold[k] = p;
    }
    Ok(())
}

/// The rows `idx` of row-major `x` (`width` values per row), in that order.
pub fn gather(x: &[f64], width: usize, idx: &[usize]) -> Vec<f64> {
    let mut out = Vec::with_capacity(idx.len() * width);
    for &i in idx {
        out.extend_from_slice(&x[i * width..(i + 1) * width]);
    }
    out
}

/// Kendall tau-b of `pred` against `truth`, or NaN where the predictions
/// are NaN: a choice that could not be tried on the table.
fn tau_unless_untried(pred: &[f64], truth: &[f64]) -> f64 {
    if pred.iter().any(|v| v.is_nan()) {
        f64::NAN
    } else {
        metrics::kendall_tau_b(pred, truth)
    }
}

fn gather_y(y: &[f64], idx: &[usize]) -> Vec<f64> {
    idx.iter().map(|&i| y[i]).collect()
}

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
    use super::*;

    #[test]
    fn the_learning_curve_carries_a_quantile_along_a_power_law() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        // Error ∝ 1 / rows: half the error for twice the rows.
        assert!(close(
            learning_curve_shrink((10.0, 0.1), (20.0, 0.05), 40.0),
            0.5
        ));
        // Error ∝ rows^-1/2.
        let q = |rows: f64| rows.powf(-0.5);
        let shrink = learning_curve_shrink((16.0, q(16.0)), (25.6, q(25.6)), 32.0);
        assert!(close(25.6f64.powf(-0.5) * shrink, q(32.0)), "{shrink}");
        // No fall, a rise, nothing to shrink, or no rows beyond: as measured.
        assert_eq!(learning_curve_shrink((10.0, 1.0), (20.0, 1.0), 40.0), 1.0);
        assert_eq!(learning_curve_shrink((10.0, 0.5), (20.0, 1.0), 40.0), 1.0);
        assert_eq!(learning_curve_shrink((10.0, 1.0), (20.0, 0.0), 40.0), 1.0);
        assert_eq!(
            learning_curve_shrink((10.0, f64::NAN), (20.0, 1.0), 40.0),
            1.0
        );
        assert_eq!(learning_curve_shrink((10.0, 2.0), (20.0, 1.0), 20.0), 1.0);
        // A cliff (costs the counts determine, once the counts are seen)
        // falls at most by the largest power.
        let cliff = learning_curve_shrink((10.0, 1e6), (20.0, 1.0), 40.0);
        assert!(
            close(cliff, 0.5f64.powf(MAX_LEARNING_CURVE_POWER)),
            "{cliff}"
        );
    }

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

    /// `n` rows of 3 uniform features; the target is 10 × the first plus
    /// standard normal noise, so an 80% interval has a half-width of about
    /// 1.28 and covers 80% of fresh rows.
    fn noisy(n: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
        let mut rng = SplitMix64(seed);
        let mut uniform = || rng.next_f64();
        let mut x = Vec::with_capacity(3 * n);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let row = [uniform(), uniform(), uniform()];
            // Box-Muller.
            let (u1, u2) = (uniform().max(1e-12), uniform());
            let noise = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            x.extend(row);
            y.push(10.0 * row[0] + noise);
        }
        (x, y)
    }

    #[test]
    fn the_interval_covers_its_nominal_share_of_fresh_rows() {
        let names: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let (x, y) = noisy(1_200, 1);
        let (fresh_x, fresh_y) = noisy(4_000, 2);
        // Calibrated on out-of-fold residuals, and (a cross-validation on a
        // sample of 300 rows) on one split of every row.
        for max_cv_rows in [usize::MAX, 300] {
            let recipe = Recipe {
                max_cv_rows,
                ..Recipe::with_rounds(120)
            };
            let fitted = recipe.fit(&x, &names, &y, 7).expect("fit");
            let mut pred = vec![0.0; fresh_y.len()];
            fitted.predict_batch(&fresh_x, &mut pred);
            let covered = metrics::coverage(&pred, &fresh_y, fitted.interval.half_width);
            assert!(
                (0.75..=0.85).contains(&covered),
                "max_cv_rows {max_cv_rows}: {covered} of fresh rows inside ±{} ({})",
                fitted.interval.half_width,
                fitted.chosen
            );
            let expected_cv_rows = max_cv_rows.min(y.len());
            assert_eq!(fitted.cv_rows, expected_cv_rows);
        }
    }

    /// `n` rows of 3 features of 10 levels each and a noiseless target,
    /// a cost per level summed over the features (like a cost per op):
    /// every error is the model's, and it falls fast with rows.
    fn noiseless(n: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
        let mut rng = SplitMix64(seed);
        let mut uniform = || rng.next_f64();
        let mut x = Vec::with_capacity(3 * n);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let row = [uniform(), uniform(), uniform()].map(|u| (u * 10.0).floor());
            x.extend(row);
            // A cost per level of each feature, like a cost per op.
            let cost =
                |feature: usize, level: f64| ((feature * 10 + level as usize) * 7 % 11) as f64;
            y.push((0..3).map(|j| cost(j, row[j])).sum());
        }
        (x, y)
    }

    /// Residuals of models of four fifths of 32 rows overstate the error
    /// of the one refitted on all 32 where error falls fast with rows; the
    /// learning curve brings the interval back to its nominal share (on
    /// average over 32 draws: one draw's 32 residuals leave its coverage
    /// several points either way).
    #[test]
    fn the_interval_of_few_rows_holds_its_share_where_error_falls_fast_with_rows() {
        let names: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let (fresh_x, fresh_y) = noiseless(4_000, 1_000);
        let recipe = Recipe::with_rounds(120);
        let draws = 32;
        let mut covered = 0.0;
        for seed in 0..draws {
            let (x, y) = noiseless(32, seed);
            let fitted = recipe.fit(&x, &names, &y, seed).expect("fit");
            let mut pred = vec![0.0; fresh_y.len()];
            fitted.predict_batch(&fresh_x, &mut pred);
            covered += metrics::coverage(&pred, &fresh_y, fitted.interval.half_width);
        }
        let mean = covered / draws as f64;
        // 0.811 here (0.814 on the residuals the choice was made by); the
        // folds' quantile alone held 0.839.
        assert!(
            (0.77..=0.83).contains(&mean),
            "{mean} of fresh rows inside on average"
        );
    }

    #[test]
    fn few_rows_calibrate_on_a_fresh_cross_validation_not_on_the_residuals_they_were_chosen_by() {
        let names: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let (x, y) = noisy(64, 5);
        let choice = Choice::named("forest+boosted_small").expect("known");
        let calibration = Calibration {
            choice: &choice,
            x: &x,
            names: &names,
            y: &y,
            related: &[],
            family: None,
            seed: 3,
            floor: None,
            learning_curve: true,
        };
        // Residuals that flatter the choice as much as can be (nil): kept
        // beyond the bar, replaced by the choice's own up to it.
        let flattering = || Some(vec![0.0; y.len()]);
        let beyond = Recipe {
            fresh_calibration_max_rows: y.len() - 1,
            ..Recipe::with_rounds(60)
        };
        let up_to = Recipe {
            fresh_calibration_max_rows: y.len(),
            ..beyond.clone()
        };
        assert_eq!(
            calibration
                .half_width(&beyond, flattering())
                .expect("width")
                .half_width,
            0.0
        );
        let fresh = calibration
            .half_width(&up_to, flattering())
            .expect("width")
            .half_width;
        // Unit noise: the 80% half-width is about 1.28, more for models of
        // 64 rows.
        assert!((1.0..4.0).contains(&fresh), "{fresh}");
        // The same rows and seed give the same width.
        assert_eq!(
            calibration
                .half_width(&up_to, flattering())
                .expect("width")
                .half_width,
            fresh
        );
    }

    #[test]
    fn the_numerical_floor_counts_single_precision_spacings_at_the_labels() {
        // f32 spacing: 2^-23 on [1, 2), 2^-20 on [8, 16).
        let spacing_at_one = f64::from(f32::EPSILON);
        assert_eq!(
            numerical_floor(&[1.0, 1.5, 10.0]),
            NUMERICAL_FLOOR_SPACINGS * spacing_at_one
        );
        assert_eq!(
            numerical_floor(&[-10.0, 12.0, 1.0]),
            NUMERICAL_FLOOR_SPACINGS * spacing_at_one * 8.0
        );
        // Labels beyond f32 have no spacing to count; none leaves nothing.
        assert_eq!(
            numerical_floor(&[f64::NAN, f64::INFINITY, 1.0]),
            NUMERICAL_FLOOR_SPACINGS * spacing_at_one
        );
        assert_eq!(numerical_floor(&[]), 0.0);
    }

    #[test]
    fn the_learning_curve_stops_at_the_numerical_floor() {
        let floor = 4e-6;
        // A model exact up to its numerical floor on four fifths of the rows
        // that erred on half of them (rarer op counts unseen): the quantile
        // is that floor's, which more rows keep.
        let exact = carry_along_learning_curve((512.0, 0.3), (819.0, 2e-6), 1024.0, floor);
        assert_eq!(exact, 2e-6);
        // Just above the floor, it shrinks to the floor at most.
        let above = carry_along_learning_curve((512.0, 0.3), (819.0, 5e-6), 1024.0, floor);
        assert_eq!(above, floor);
        // A learnable error is carried along the curve as before.
        let learnable = carry_along_learning_curve((512.0, 2.0), (819.0, 1.0), 1024.0, floor);
        assert_eq!(
            learnable,
            learning_curve_shrink((512.0, 2.0), (819.0, 1.0), 1024.0)
        );
        assert!(learnable < 1.0);
        // No residuals to measure the error on: no interval, not the floor.
        let unmeasured = carry_along_learning_curve((512.0, 0.3), (819.0, f64::NAN), 1024.0, floor);
        assert!(unmeasured.is_nan());
    }

    #[test]
    fn a_blend_is_chosen_by_name_and_served_as_one_model() {
        let names: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let (x, y) = noisy(200, 3);
        let recipe = Recipe {
            choices: vec![Choice::named("forest+boosted_small").expect("known")],
            ..Recipe::with_rounds(60)
        };
        let fitted = recipe.fit(&x, &names, &y, 1).expect("fit");
        assert_eq!(fitted.chosen, "forest+boosted_small");
        // The forest's trees (60 × 300 / 600) and the booster's.
        assert_eq!(fitted.forest.num_trees(), 30 + 30);
        assert!(Choice::named("forest+nothing").is_none());
        let described = recipe.describe(&fitted, 200, 1);
        assert_eq!(described["members"].as_array().map(Vec::len), Some(2));
    }

    /// Rows of a two-edge cell as one-hot features (edge 0: op a or b;
    /// edge 1: a, b or c) with an additive cost, and a `flops` column that
    /// ranks the cost perfectly but is not additive in the ops.
    fn additive_costs(n: usize) -> (Vec<String>, Vec<f64>, Vec<f64>) {
        let names: Vec<String> = [
            "flops",
            "onehot.edge0.a",
            "onehot.edge0.b",
            "onehot.edge1.a",
            "onehot.edge1.b",
            "onehot.edge1.c",
        ]
        .map(String::from)
        .to_vec();
        let (edge0_cost, edge1_cost): ([f64; 2], [f64; 3]) = ([1.0, 4.0], [0.0, 2.0, 7.0]);
        let mut rng = SplitMix64(5);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let (e0, e1) = ((rng.next_u64() % 2) as usize, (rng.next_u64() % 3) as usize);
            let cost = edge0_cost[e0] + edge1_cost[e1];
            x.push(cost.exp());
            x.extend((0..2).map(|op| f64::from(u8::from(op == e0))));
            x.extend((0..3).map(|op| f64::from(u8::from(op == e1))));
            y.push(cost);
        }
        (names, x, y)
    }

    /// The features each tree of a model text splits on, tree by tree.
    fn split_features(text: &str) -> Vec<Vec<usize>> {
        text.lines()
            .filter_map(|line| line.strip_prefix("split_feature="))
            .map(|features| {
                features
                    .split_whitespace()
                    .map(|f| f.parse().expect("feature index"))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn the_additive_candidate_splits_only_on_the_one_hot_features() {
        let (names, x, y) = additive_costs(48);
        let text = Candidate::additive()
            .fit(&x, &names, &y, 1, 60)
            .expect("fit");
        let mut splits = 0;
        for features in split_features(&text) {
            assert_eq!(features.len(), 1, "a stump has one split: {features:?}");
            assert!(
                names[features[0]].starts_with(ONEHOT_PREFIX),
                "split on {}",
                names[features[0]]
            );
            splits += 1;
        }
        // Merged: at most one stump per one-hot feature (the thousand
        // boosted stumps, 60 here, split on 5 features).
        assert!((2..=5).contains(&splits), "{splits} stumps");
        // The sum of per-edge costs is learned exactly enough to rank.
        let forest = Forest::parse(&text).expect("parse");
        let mut pred = vec![0.0; y.len()];
        forest.predict_batch(&x, &mut pred);
        assert!(metrics::kendall_tau_b(&pred, &y) > 0.999);
    }

    /// Rows of two proxies, one graph feature and `proxies.sent` (every
    /// proxy sent); the target follows the graph feature and the first
    /// proxy.
    fn proxy_rows(n: usize) -> (Vec<String>, Vec<f64>, Vec<f64>) {
        let names: Vec<String> = vec![
            format!("{PROXY_FEATURE_PREFIX}synflow"),
            format!("{PROXY_FEATURE_PREFIX}jacov"),
            "flops".into(),
            PROXIES_SENT_FEATURE.into(),
        ];
        let (x3, y) = noisy(n, 11);
        let mut x = Vec::with_capacity(4 * n);
        for (row, &target) in x3.chunks_exact(3).zip(&y) {
            x.extend([target + row[1], row[2], row[0], EVERY_PROXY]);
        }
        (names, x, y)
    }

    #[test]
    fn the_proxy_forest_reads_only_the_proxies_and_is_left_out_without_them() {
        let (names, x, y) = proxy_rows(64);
        let text = Candidate::proxies_forest()
            .fit(&x, &names, &y, 3, 60)
            .expect("fit");
        let mut splits = 0;
        for feature in split_features(&text).into_iter().flatten() {
            let name = &names[feature];
            assert!(name.starts_with(PROXY_FEATURE_PREFIX), "split on {name}");
            splits += 1;
        }
        assert!(splits > 0, "the proxies rank the rows: the forest splits");

        let three = Choice::named("forest+proxies_forest+boosted_small").expect("a choice");
        assert_eq!(
            three.without_proxy_only_members().name(),
            "forest+boosted_small"
        );
        let alone = Choice::named("proxies_forest").expect("a choice");
        assert_eq!(alone.without_proxy_only_members().name(), "forest");

        // The served model's trees for candidates without proxies are the
        // forest and the booster's, unshrunk by a proxy forest that learned
        // a constant from blanked rows.
        let recipe = Recipe {
            choices: vec![three],
            ..Recipe::with_rounds(60)
        };
        let fitted = recipe.fit(&x, &names, &y, 3).expect("fit");
        let description = recipe.describe(&fitted, y.len(), 3);
        assert_eq!(
            description["chosen_without_proxies"],
            json!("forest+boosted_small")
        );
        let mut blank = x.clone();
        for row in blank.chunks_exact_mut(names.len()) {
            row[0] = f64::NAN;
            row[1] = f64::NAN;
            row[3] = 0.0;
        }
        let two = Choice::named("forest+boosted_small").expect("a choice");
        let direct = Forest::parse(
            &recipe
                .fit_choice(&two, &blank, &names, &y, &[], None, 3)
                .expect("fit"),
        )
        .expect("parse");
        for row in blank.chunks_exact(names.len()) {
            let (served, expected) = (fitted.predict(row), direct.predict(row));
            assert!(
                (served - expected).abs() <= 1e-9 * expected.abs().max(1.0),
                "{served} against {expected}"
            );
        }
    }

    #[test]
    fn the_family_standardizes_its_models_and_maps_their_mean_onto_the_target() {
        let truth: Vec<f64> = (0..20).map(|i| f64::from(i).sin() * 3.0 + 1.0).collect();
        // Two exact linear views of the truth, on other scales, and one
        // that does not vary.
        let own: Vec<f64> = truth.iter().map(|t| 2.0 * t - 1.0).collect();
        let weaker: Vec<f64> = truth.iter().map(|t| 10.0 * t + 40.0).collect();
        let series = vec![
            FamilySeries::new(None, None, own),
            FamilySeries::new(Some(0), Some("weaker"), weaker),
            FamilySeries::new(Some(1), Some("flat"), vec![5.0; 20]),
        ];
        let (family, on_target) = Family::from_out_of_fold(&series, &truth).expect("a family");
        for (p, t) in on_target.iter().zip(&truth) {
            assert!((p - t).abs() < 1e-9, "{p} against {t}");
        }
        let used: Vec<Option<usize>> = family.members.iter().map(|m| m.related).collect();
        assert_eq!(used, [None, Some(0)], "the flat series is left out");
        // Standardized: each view counts alike, so the weights are in the
        // inverse ratio of the spreads (2 and 10).
        let (w0, w1) = (family.members[0].weight, family.members[1].weight);
        assert!(w0 > 0.0 && w1 > 0.0);
        assert!((w0 / w1 - 5.0).abs() < 1e-9, "{w0} / {w1}");
        // Ordered against the truth, or nothing that varies: no family.
        let reversed: Vec<f64> = truth.iter().map(|t| -t).collect();
        let alone = |p| [FamilySeries::new(None, None, p)];
        assert!(Family::from_out_of_fold(&alone(reversed), &truth).is_none());
        assert!(Family::from_out_of_fold(&alone(vec![1.0; 20]), &truth).is_none());
    }

    #[test]
    fn a_family_choice_is_named_and_loses_its_family_without_proxies() {
        let family = Choice::named("family(forest+proxies_forest+boosted_small)").expect("named");
        assert!(family.family);
        assert_eq!(family.members.len(), 3);
        assert_eq!(family.name(), "family(forest+proxies_forest+boosted_small)");
        assert_eq!(
            family.without_proxy_only_members(),
            Choice::named("forest+boosted_small").expect("named")
        );
        assert!(Choice::named("family(forest+nothing)").is_none());
        assert!(Choice::all().iter().any(|c| c.family));
    }

    #[test]
    fn the_trees_without_proxies_take_their_quantile_as_it_is_below_the_curves_rows() {
        let recipe = Recipe {
            choices: vec![Choice::named("forest").expect("named")],
            ..Recipe::with_rounds(60)
        };
        for (n, carried) in [(32, false), (WITHOUT_PROXIES_LEARNING_CURVE_MIN_ROWS, true)] {
            let (names, x, y) = proxy_rows(n);
            let fitted = recipe.fit(&x, &names, &y, 3).expect("fit");
            let without = fitted
                .interval_without_proxies
                .expect("trees without proxies");
            assert_eq!(without.rows, n as f64);
            assert_eq!(without.far_quantile.is_finite(), carried, "{n} rows");
            if !carried {
                assert_eq!(without.half_width, without.near_quantile, "{n} rows");
            }
            // The trees with proxies are carried along the curve at every
            // size: their halves were fitted.
            assert!(fitted.interval.far_quantile.is_finite(), "{n} rows");
            assert!(fitted.interval.half_width <= fitted.interval.near_quantile);
        }
    }

    /// A related objective: the target's rows on another scale, with some
    /// order of its own.
    fn weaker_attack(y: &[f64]) -> RelatedTarget {
        RelatedTarget {
            objective: "cifar10/weaker".to_owned(),
            values: y
                .iter()
                .enumerate()
                .map(|(i, v)| 0.5 * v + (i % 7) as f64 * 0.3 + 20.0)
                .collect(),
        }
    }

    #[test]
    fn the_family_is_tried_only_with_related_values_measured_on_every_row() {
        let (names, x, y) = proxy_rows(48);
        let recipe = Recipe {
            choices: vec![
                Choice::named("forest+proxies_forest+boosted_small").expect("named"),
                Choice::named("family(forest+proxies_forest+boosted_small)").expect("named"),
            ],
            ..Recipe::with_rounds(60)
        };
        let alone = recipe.fit(&x, &names, &y, 3).expect("fit");
        assert!(alone.cv_kendall_tau[0].is_finite());
        assert!(alone.cv_kendall_tau[1].is_nan(), "no related values");
        assert!(alone.family.is_none());

        // A constant target ranks nothing, and no family can be formed on
        // it: the first other choice is refitted, whatever comes first.
        let family_first = Recipe {
            choices: recipe.choices.iter().rev().cloned().collect(),
            ..recipe.clone()
        };
        let flat = vec![0.0; y.len()];
        let fitted = family_first
            .fit_related(&x, &names, &flat, &[weaker_attack(&y)], 3)
            .expect("fit a constant");
        assert_eq!(fitted.chosen, "forest+proxies_forest+boosted_small");
        assert!(fitted.family.is_none());

        let mut partial = weaker_attack(&y);
        partial.objective = "cifar10/partly_measured".to_owned();
        partial.values[5] = f64::NAN;
        let fitted = recipe
            .fit_related(&x, &names, &y, &[weaker_attack(&y), partial.clone()], 3)
            .expect("fit");
        assert!(fitted.cv_kendall_tau[1].is_finite());
        // Beyond the family's row limit, not tried.
        let capped = Recipe {
            family_max_rows: y.len() - 1,
            ..recipe.clone()
        };
        let beyond = capped
            .fit_related(&x, &names, &y, &[weaker_attack(&y)], 3)
            .expect("fit");
        assert!(beyond.cv_kendall_tau[1].is_nan());
        // Only measured on every row is a related objective used.
        let only_partial = recipe
            .fit_related(&x, &names, &y, &[partial], 3)
            .expect("fit");
        assert!(only_partial.cv_kendall_tau[1].is_nan());

        let mut short = weaker_attack(&y);
        short.values.pop();
        let err = recipe
            .fit_related(&x, &names, &y, &[short], 3)
            .expect_err("a related objective with a row missing");
        assert!(err.to_string().contains("cifar10/weaker"), "{err}");
    }

    /// `y` under a strong attack: the rows below its value at `share` of
    /// the sorted rows at 0, the others shifted down by that value, so
    /// that their order is `y`'s.
    fn at_zero_below(y: &[f64], share: f64) -> Vec<f64> {
        let mut sorted = y.to_vec();
        sorted.sort_by(f64::total_cmp);
        let cut = sorted[(y.len() as f64 * share) as usize];
        y.iter().map(|v| (v - cut).max(0.0)).collect()
    }

    #[test]
    fn where_many_rows_are_on_the_minimum_the_family_is_the_default() {
        let (names, x, y) = proxy_rows(48);
        // Half the rows at 0, as under a strong attack; the unclamped
        // values are the weaker attack's.
        let strong = at_zero_below(&y, 0.5);
        let related = [weaker_attack(&y)];
        // Margins no choice can clear: what is chosen is the default.
        let recipe = Recipe {
            choices: vec![
                Choice::named("forest+proxies_forest+boosted_small").expect("named"),
                Choice::named("family(forest+proxies_forest+boosted_small)").expect("named"),
            ],
            selection_margin: 1e9,
            family_selection_margin: 1e9,
            ..Recipe::with_rounds(60)
        };
        let chosen = |recipe: &Recipe, y: &[f64]| {
            recipe
                .fit_related(&x, &names, y, &related, 3)
                .expect("fit")
                .chosen
        };
        let family = "family(forest+proxies_forest+boosted_small)";
        assert_eq!(chosen(&recipe, &strong), family);
        let never = Recipe {
            family_default_floor_share: 1.1,
            ..recipe.clone()
        };
        assert_eq!(
            chosen(&never, &strong),
            "forest+proxies_forest+boosted_small"
        );
        // Few rows on the minimum: the first choice stays the default.
        assert!(share_on_minimum(&y) < recipe.family_default_floor_share);
        assert_eq!(chosen(&recipe, &y), "forest+proxies_forest+boosted_small");
    }

    #[test]
    fn a_default_whose_order_is_chance_gives_way_to_the_family_on_enough_rows() {
        // The textbook figures: sqrt(2 (2n + 5) / (9 n (n - 1))).
        assert!((metrics::kendall_tau_standard_error(128) - 0.059_73).abs() < 1e-4);
        assert!((metrics::kendall_tau_standard_error(32) - 0.124_3).abs() < 1e-3);
        let choices = [
            Choice::named("forest+proxies_forest+boosted_small+boosted_pairwise").expect("named"),
            Choice::named("family(forest+proxies_forest+boosted_small+boosted_pairwise)")
                .expect("named"),
            Choice::named("boosted").expect("named"),
        ];
        // Two standard errors at 128 rows are 0.119.
        assert!(own_order_is_chance(&choices, &[0.05, 0.4, 0.3], 128));
        assert!(!own_order_is_chance(&choices, &[0.13, 0.4, 0.3], 128));
        // The family's own tau is not the default's.
        assert!(!own_order_is_chance(&choices, &[0.2, 0.01, 0.3], 128));
        // On 32 rows chance reaches 0.25, where weak attacks' own models
        // often fall: never there.
        assert!(!own_order_is_chance(&choices, &[0.05, 0.4, 0.3], 32));
        // Where the first choice was not tried, the next one is the default.
        assert!(own_order_is_chance(&choices, &[f64::NAN, 0.4, 0.1], 128));
        assert!(!own_order_is_chance(
            &choices,
            &[f64::NAN, f64::NAN, f64::NAN],
            128
        ));
    }

    #[test]
    fn where_the_ranker_is_not_tried_the_family_without_it_stands_in() {
        let (names, x, y) = proxy_rows(48);
        // Nearly every row at 0, as under APGD-CE at eps 8/255: too many
        // ties for the ranker.
        let strong = at_zero_below(&y, 0.9);
        assert!(ordered_query_share(&strong) < MIN_ORDERED_QUERY_SHARE);
        let named = |n: &str| Choice::named(n).expect("named");
        let recipe = Recipe {
            choices: vec![
                named("forest+proxies_forest+boosted_small+boosted_pairwise"),
                named("forest+proxies_forest+boosted_small"),
                named("family(forest+proxies_forest+boosted_small+boosted_pairwise)"),
                named("family(forest+proxies_forest+boosted_small)"),
            ],
            selection_margin: 1e9,
            family_selection_margin: 1e9,
            ..Recipe::with_rounds(60)
        };
        let fitted = recipe
            .fit_related(&x, &names, &strong, &[weaker_attack(&y)], 3)
            .expect("fit");
        assert_eq!(fitted.chosen, "family(forest+proxies_forest+boosted_small)");
        assert!(fitted.cv_kendall_tau[0].is_nan() && fitted.cv_kendall_tau[2].is_nan());
        // Where the ranker is tried, its family is formed and the other
        // is not fitted at all (a family costs a fit per related target).
        let fitted = recipe
            .fit_related(&x, &names, &y, &[weaker_attack(&y)], 3)
            .expect("fit");
        assert!(fitted.cv_kendall_tau[2].is_finite());
        assert!(fitted.cv_kendall_tau[3].is_nan());
    }

    #[test]
    fn a_family_serves_the_weighted_sum_of_its_models_of_each_objective() {
        let (names, x, y) = proxy_rows(64);
        let choice = Choice::named("family(forest+proxies_forest+boosted_small)").expect("named");
        let recipe = Recipe {
            choices: vec![choice.clone()],
            ..Recipe::with_rounds(60)
        };
        let related = [weaker_attack(&y)];
        let fitted = recipe
            .fit_related(&x, &names, &y, &related, 3)
            .expect("fit");
        assert_eq!(fitted.chosen, choice.name());
        let family = fitted.family.clone().expect("a family was chosen");
        let objectives: Vec<Option<&str>> = family
            .members
            .iter()
            .map(|m| m.objective.as_deref())
            .collect();
        assert_eq!(objectives, [None, Some("cifar10/weaker")]);
        let description = recipe.describe(&fitted, y.len(), 3);
        assert_eq!(
            description["family"]["members"][1]["objective"],
            json!("cifar10/weaker")
        );
        // Each model refitted on every row of its objective, by itself.
        let model = |target: &[f64]| {
            Forest::parse(
                &recipe
                    .fit_mean(&choice.members, &x, &names, target, 3)
                    .expect("fit"),
            )
            .expect("parse")
        };
        let (own, weaker) = (model(&y), model(&related[0].values));
        for row in x.chunks_exact(names.len()) {
            let expected = family.intercept
                + family.members[0].weight * own.predict(row)
                + family.members[1].weight * weaker.predict(row);
            let served = fitted.forest.predict(row);
            assert!(
                (served - expected).abs() <= 1e-9 * expected.abs().max(1.0),
                "{served} against {expected}"
            );
        }
        // The interval is on the target's scale: most training rows fall
        // inside it, as they would for any choice.
        let inside = x
            .chunks_exact(names.len())
            .zip(&y)
            .filter(|(row, t)| (fitted.predict(row) - *t).abs() <= fitted.interval.half_width)
            .count();
        assert!(inside * 10 >= y.len() * 7, "{inside} of {}", y.len());
    }

    #[test]
    fn relevance_levels_are_ranks_scaled_to_the_levels_with_ties_shared() {
        assert_eq!(
            relevance_levels(&[5.0, 1.0, 1.0, 9.0]),
            vec![15.0, 0.0, 0.0, 23.0]
        );
        let many: Vec<f64> = (0..100).map(f64::from).collect();
        let levels = relevance_levels(&many);
        assert_eq!((levels[0], levels[99]), (0.0, 30.0));
        assert!(levels.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn the_pairwise_candidate_ranks_on_the_targets_scale_and_serves_as_a_regression() {
        // The target is steep in feature 0 (a few rows far above the rest,
        // as under a strong attack), feature 1 is noise.
        let mut rng = SplitMix64(3);
        let names = vec!["a".to_owned(), "noise".to_owned()];
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for _ in 0..64 {
            let (a, noise) = (rng.next_f64(), rng.next_f64());
            x.extend([a, noise]);
            y.push((8.0 * a).exp());
        }
        let text = Candidate::boosted_pairwise()
            .fit(&x, &names, &y, 1, 300)
            .expect("fits");
        assert!(
            text.contains("objective=regression"),
            "served as a regression"
        );
        let forest = Forest::parse(&text).expect("parses");
        let mut pred = vec![0.0; y.len()];
        forest.predict_batch(&x, &mut pred);
        let tau = metrics::kendall_tau_b(&pred, &y);
        assert!(tau > 0.8, "ranks the rows: tau {tau}");
        // On the target's scale: the least-squares line through the
        // training rows keeps the mean.
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        assert!(
            (mean(&pred) - mean(&y)).abs() < 1e-6 * mean(&y),
            "{} vs {}",
            mean(&pred),
            mean(&y)
        );
        // Blends with a regression member (same objective in the header).
        let other = Candidate::boosted_small()
            .fit(&x, &names, &y, 1, 300)
            .expect("fits");
        blend::blend(&[(0.5, &text), (0.5, &other)]).expect("blends");

        // A target without order (every row the same) gives a model of the
        // mean, not an error.
        let flat = vec![2.5; y.len()];
        let text = Candidate::boosted_pairwise()
            .fit(&x, &names, &flat, 1, 300)
            .expect("fits");
        let forest = Forest::parse(&text).expect("parses");
        assert!((forest.predict(&[0.3, 0.3]) - 2.5).abs() < 1e-9);
    }

    #[test]
    fn the_ordered_query_share_counts_the_queries_whose_rows_differ() {
        assert_eq!(ordered_query_share(&[]), 0.0);
        assert_eq!(ordered_query_share(&[1.0; 10]), 0.0);
        // Half the rows on each of two values: a query of four is tied with
        // chance 2 * 0.5^4 = 1/8.
        let halves = [0.0, 0.0, 1.0, 1.0];
        assert!((ordered_query_share(&halves) - 0.875).abs() < 1e-12);
        let distinct: Vec<f64> = (0..100).map(f64::from).collect();
        assert!((ordered_query_share(&distinct) - (1.0 - 100f64.powi(-3))).abs() < 1e-12);
    }

    #[test]
    fn the_ranker_is_left_out_where_nearly_every_row_ties() {
        let names: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let (x, y) = noisy(64, 2);
        let ranker = Candidate::boosted_pairwise();
        assert!(ranker.usable_on(&x, &names, &y));
        // As under APGD-CE at eps 8/255: all but two rows at zero.
        let mut tied = vec![0.0; y.len()];
        tied[3] = 4.0;
        tied[10] = 1.5;
        assert!(!ranker.usable_on(&x, &names, &tied));
        assert!(Candidate::boosted_small().usable_on(&x, &names, &tied));
        // As at eps 4/255: four in five at zero, the rest ordered.
        let mostly_zero: Vec<f64> = y
            .iter()
            .enumerate()
            .map(|(i, v)| if i % 5 == 0 { v.abs() + 1.0 } else { 0.0 })
            .collect();
        assert!(ranker.usable_on(&x, &names, &mostly_zero));
    }

    #[test]
    fn a_candidate_without_its_features_is_not_tried() {
        let names: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let (x, y) = noisy(64, 4);
        assert!(!Candidate::additive().applies_to(&names));
        let recipe = Recipe::with_rounds(30);
        let fitted = recipe.fit(&x, &names, &y, 1).expect("fit");
        let additive = recipe
            .choices
            .iter()
            .position(|c| c.name() == "additive")
            .expect("a choice");
        // Neither the additive model nor the default that holds it, nor the
        // count models (the table has no counts).
        assert_eq!(recipe.choices[0].name(), "counts_additive+counts_boosted");
        assert_eq!(recipe.choices[1].name(), "op_costs+additive+boosted_small");
        assert_eq!(recipe.choices[2].name(), "additive+boosted_small");
        for (choice, tau) in recipe.choices.iter().zip(&fitted.cv_kendall_tau) {
            let reads_features_absent = ["additive", "counts", "proxies", "onehot"]
                .iter()
                .any(|reads| choice.name().contains(reads));
            assert_eq!(
                tau.is_nan(),
                reads_features_absent,
                "{}: {tau}",
                choice.name()
            );
        }
        assert!(!fitted.chosen.contains("additive"), "{}", fitted.chosen);
        assert!(
            Candidate::additive()
                .fit(&x, &names, &y, 1, 30)
                .is_err_and(|e| e.to_string().contains("onehot.")),
        );
        // A constant target ranks nothing: the first choice that reads the
        // table is refitted, not the default it cannot read.
        let flat = vec![50.0; y.len()];
        let fitted = recipe.fit(&x, &names, &flat, 1).expect("fit a constant");
        assert_eq!(fitted.chosen, "forest+boosted_small");
        // On a table it reads, it is chosen where the cost is additive.
        let (names, x, y) = additive_costs(64);
        let fitted = recipe.fit(&x, &names, &y, 1).expect("fit");
        assert!(fitted.cv_kendall_tau[additive].is_finite());
    }

    /// `n` rows of op counts (`ops_sent.*`, three ops on four edges) and
    /// a target of `cost(counts, row index)`.
    fn counted(n: usize, cost: impl Fn(&[f64], usize) -> f64) -> (Vec<String>, Vec<f64>, Vec<f64>) {
        let names: Vec<String> = ["flops", "ops_sent.a", "ops_sent.b", "ops_sent.c"]
            .map(String::from)
            .to_vec();
        let mut rng = SplitMix64(9);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for i in 0..n {
            let mut counts = [0.0; 3];
            for _ in 0..4 {
                counts[(rng.next_u64() % 3) as usize] += 1.0;
            }
            x.push((rng.next_u64() % 1000) as f64);
            x.extend(counts);
            y.push(cost(&counts, i));
        }
        (names, x, y)
    }

    #[test]
    fn count_models_are_tried_only_where_the_counts_determine_the_target() {
        let linear = |c: &[f64], _: usize| 1.5 * c[0] + 4.0 * c[1] + 0.25 * c[2];
        let counts_additive = Candidate::counts_additive();
        let (names, x, y) = counted(40, linear);
        assert!(counts_additive.usable_on(&x, &names, &y));
        // A ratio is no sum, but still determined by the counts.
        let ratio = |c: &[f64], _: usize| (1.0 + c[0]) / (1.0 + c[2]);
        let (names, x, ratio_y) = counted(40, ratio);
        assert!(Candidate::counts_boosted().usable_on(&x, &names, &ratio_y));
        // One row in forty off: not determined.
        let (names, x, off) = counted(40, |c, i| linear(c, i) + if i == 17 { 0.5 } else { 0.0 });
        let repeated_17 =
            (0..40).any(|k| k != 17 && x[k * 4 + 1..k * 4 + 4] == x[17 * 4 + 1..17 * 4 + 4]);
        assert!(repeated_17, "row 17's counts repeat, so the check sees it");
        assert!(!counts_additive.usable_on(&x, &names, &off));
        // Too few rows repeat another's counts to tell.
        let (names, x, y) = counted(2, linear);
        assert!(!counts_additive.usable_on(&x, &names, &y));
        // Candidates without the condition are usable wherever they read.
        assert!(Candidate::forest().usable_on(&x, &names, &off));

        // The recipe: a linear cost in the counts is learned by the count
        // models, whose predictions tie where the counts do.
        let (names, x, y) = counted(64, linear);
        let recipe = Recipe::with_rounds(60);
        let fitted = recipe.fit(&x, &names, &y, 3).expect("fit");
        assert_eq!(fitted.chosen, "counts_additive+counts_boosted");
        let mut pred = vec![0.0; y.len()];
        fitted.predict_batch(&x, &mut pred);
        for i in 0..y.len() {
            for j in 0..i {
                if x[i * 4 + 1..i * 4 + 4] == x[j * 4 + 1..j * 4 + 4] {
                    assert_eq!(pred[i], pred[j], "rows {i} and {j} have the same counts");
                }
            }
        }
        assert!(metrics::kendall_tau_b(&pred, &y) > 0.95);
        // Off by a little in one row: the default for one-hot tables (or
        // the forest's mean, here) instead.
        let (names, x, off) = counted(64, |c, i| linear(c, i) + if i == 5 { 0.01 } else { 0.0 });
        let fitted = recipe.fit(&x, &names, &off, 3).expect("fit");
        assert!(!fitted.chosen.contains("counts"), "{}", fitted.chosen);
    }

    #[test]
    fn a_target_the_counts_determine_without_a_pattern_is_looked_up_by_the_count_forest() {
        // Each of the 15 ways to count three ops on four edges has a value
        // of its own, no sum and no smooth function of the counts: with
        // every way seen many times, the answer is a lookup.
        let lookup = |c: &[f64], _: usize| ((c[0] * 25.0 + c[1] * 5.0 + c[2]) * 37.0) % 101.0;
        let (names, x, y) = counted(300, lookup);
        assert!(Candidate::counts_forest().usable_on(&x, &names, &y));
        let recipe = Recipe::with_rounds(60);
        let fitted = recipe.fit(&x, &names, &y, 4).expect("fit");
        assert_eq!(fitted.chosen, "counts_forest");
        let out_of_fold = |name: &str| {
            let at = recipe.choices.iter().position(|c| c.name() == name);
            fitted.cv_kendall_tau[at.expect(name)]
        };
        for smoother in ["counts_boosted", "counts_additive+counts_boosted"] {
            assert!(
                out_of_fold("counts_forest") > out_of_fold(smoother),
                "{smoother}: {:?}",
                fitted.cv_kendall_tau
            );
        }
        // Twice the rows drawn the same way (the first 300 are the training rows).
        let (_, more_x, more_y) = counted(600, lookup);
        let mut pred = vec![0.0; more_y.len()];
        fitted.predict_batch(&more_x, &mut pred);
        let tau = metrics::kendall_tau_b(&pred, &more_y);
        assert!(tau > 0.98, "{tau}");
    }

    /// `n` targets, the first `zeros` on the floor at 0 and the others at
    /// their position: a target under a strong attack, in order.
    fn zeros_then_positions(n: u32, zeros: u32) -> Vec<f64> {
        (0..n)
            .map(|i| if i < zeros { 0.0 } else { f64::from(i) })
            .collect()
    }

    #[test]
    fn a_floor_is_kept_where_it_ranks_the_out_of_fold_rows_better() {
        // Half the rows on 0; the predictions order them by noise.
        let truth = zeros_then_positions(40, 20);
        let oof: Vec<f64> = (0..40)
            .map(|i| {
                if i < 20 {
                    f64::from((i * 7) % 20) / 10.0
                } else {
                    f64::from(i)
                }
            })
            .collect();
        let floor = choose_floor(&oof, &truth).expect("a floor");
        assert_eq!(floor.value, 0.0);
        let floored: Vec<f64> = oof.iter().map(|&p| floor.apply(p)).collect();
        assert!(
            metrics::kendall_tau_b(&floored, &truth) > metrics::kendall_tau_b(&oof, &truth),
            "{floor:?}"
        );
        assert_eq!(
            floored.iter().filter(|&&p| p == 0.0).count(),
            20,
            "{floor:?}"
        );
        // Predictions that already rank every row: no floor can help.
        assert_eq!(choose_floor(&truth, &truth), None);
        // Too few rows on the minimum (2 of 40) to try.
        let mut rare = truth.clone();
        for (i, t) in rare.iter_mut().enumerate().skip(2).take(18) {
            *t = 0.5 + f64::from(u8::try_from(i).expect("small"));
        }
        assert_eq!(choose_floor(&oof, &rare), None);
        // A fitted model keeps its floor: nothing below it, ties on it.
        let names: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let (x, y) = noisy(200, 11);
        let y: Vec<f64> = y.iter().map(|&v| (v - 4.0).max(0.0)).collect();
        let fitted = Recipe::with_rounds(60).fit(&x, &names, &y, 2).expect("fit");
        let floor = fitted.floor.expect("a third of the rows on 0: a floor");
        let mut pred = vec![0.0; y.len()];
        fitted.predict_batch(&x, &mut pred);
        assert!(pred.iter().all(|&p| p >= floor.value));
        assert!(pred.contains(&floor.value));
        assert_eq!(fitted.predict(&x[..3]), pred[0]);
    }

    #[test]
    fn where_most_rows_are_on_the_minimum_the_floor_is_set_at_their_share_not_chosen() {
        // 36 of 40 rows at 0, as under the strongest attacks; the
        // out-of-fold predictions order the zeros by noise and put one of
        // the four rows above 0 among them.
        let truth = zeros_then_positions(40, 36);
        let oof: Vec<f64> = (0..40)
            .map(|i| match i {
                36 => 0.105,
                i if i < 36 => f64::from(i) / 100.0,
                i => f64::from(i),
            })
            .collect();
        let floor = choose_floor(&oof, &truth).expect("a floor");
        assert_eq!(floor.value, 0.0);
        // At the 36th smallest prediction: 36 of 40 rows on the floor.
        assert_eq!(floor.at_or_below, 0.34);
        let floored: Vec<f64> = oof.iter().map(|&p| floor.apply(p)).collect();
        assert_eq!(floored.iter().filter(|&&p| p == 0.0).count(), 36);
        // Not chosen: predictions that rank every row, which no floor
        // can improve, get it as well, where below that share of rows on
        // the minimum they get none.
        assert!(choose_floor(&truth, &truth).is_some());
        let half = zeros_then_positions(40, 20);
        assert_eq!(choose_floor(&half, &half), None);
    }

    #[test]
    fn another_choice_replaces_the_default_only_when_it_orders_the_rows_clearly_better() {
        let recipe = Recipe::default();
        let n = 60;
        let truth: Vec<f64> = (0..n).map(|i| i as f64).collect();
        let mut rng = SplitMix64(7);
        let mut noisy = |scale: f64| -> Vec<f64> {
            truth
                .iter()
                .map(|&t| t + scale * (rng.next_f64() - 0.5))
                .collect()
        };
        let default = noisy(60.0);
        let clearly_better = noisy(10.0);
        let pooled = |oof: &[Vec<f64>]| -> Vec<f64> {
            oof.iter().map(|p| tau_unless_untried(p, &truth)).collect()
        };
        // Better on most pairs of rows: chosen.
        let two = [default.clone(), clearly_better.clone()];
        assert_eq!(recipe.select(&pooled(&two), &two, &truth, None), Some(1));
        // The default with two rows swapped into place: better, but on a
        // handful of pairs, well within the noise. The default stays.
        let mut slightly = default.clone();
        let (worst, _) = (0..n - 1)
            .map(|i| (i, default[i] - default[i + 1]))
            .fold((0, f64::MIN), |a, b| if b.1 > a.1 { b } else { a });
        slightly.swap(worst, worst + 1);
        let swing = [default.clone(), slightly];
        let taus = pooled(&swing);
        assert!(taus[1] > taus[0], "{taus:?}");
        assert_eq!(recipe.select(&taus, &swing, &truth, None), Some(0));
        // Without a margin, better at all is enough.
        let any = Recipe {
            selection_margin: 0.0,
            ..Recipe::default()
        };
        assert_eq!(any.select(&taus, &swing, &truth, None), Some(1));
        // The family choices have their own margin: the same small
        // advantage replaces the default when the second choice is a
        // family and its margin is 0, not when the margin is the others'.
        let members = || vec![Candidate::forest(), Candidate::boosted_small()];
        let family_second = Recipe {
            choices: vec![Choice::mean(members()), Choice::family(members())],
            family_selection_margin: 0.0,
            ..Recipe::default()
        };
        assert_eq!(family_second.select(&taus, &swing, &truth, None), Some(1));
        let plain_second = Recipe {
            choices: vec![Choice::mean(members()), Choice::mean(members())],
            ..family_second.clone()
        };
        assert_eq!(plain_second.select(&taus, &swing, &truth, None), Some(0));
        // Several beat the default: the best pooled tau of those.
        let best = noisy(2.0);
        let three = [default.clone(), clearly_better.clone(), best];
        assert_eq!(
            recipe.select(&pooled(&three), &three, &truth, None),
            Some(2)
        );
        // A default that could not be tried or predicts a constant: the
        // next choice with a tau is the default, by the same rule.
        let nan = vec![f64::NAN; n];
        let with_nan = [nan.clone(), default.clone(), clearly_better.clone()];
        assert_eq!(
            recipe.select(&pooled(&with_nan), &with_nan, &truth, None),
            Some(2)
        );
        let none = [nan.clone(), nan];
        assert_eq!(recipe.select(&pooled(&none), &none, &truth, None), None);
        // A preferred default (the family, where most rows are on the
        // minimum) stays unless an earlier choice beats it by the margin;
        // one that could not be tried falls back to the first.
        let reversed = [clearly_better.clone(), default.clone()];
        assert_eq!(
            recipe.select(&pooled(&reversed), &reversed, &truth, Some(1)),
            Some(0)
        );
        let swapped = [swing[1].clone(), swing[0].clone()];
        assert_eq!(
            recipe.select(&pooled(&swapped), &swapped, &truth, Some(1)),
            Some(1)
        );
        assert_eq!(
            recipe.select(&pooled(&with_nan), &with_nan, &truth, Some(0)),
            Some(2)
        );
    }
}
