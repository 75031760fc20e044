//! `nasperf eval`: the prediction-quality protocol.
//!
//! On the 9,445 canonical NB201 networks, draw N training networks at
//! random, train with the recipe (`crate::train::recipe`), predict every
//! other network, and score the ranking (Kendall tau-b, Spearman rho, the
//! precision of the predicted top 5%) and the interval (how often the true
//! value falls inside it). Repeat over seeds, train sizes, feature sets and
//! objectives. The reference predictors (`scripts/reference_runner.py`)
//! get the same networks, feature sets and splits, so both columns of the
//! report come from one run.

pub mod data;
pub mod plot;
pub mod reference;
pub mod report;

use std::{
    collections::{BTreeMap, HashMap},
    path::Path,
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

pub use self::data::{Block, FeatureSet, Matrix, ObjectiveData, lower_is_better};
use crate::{
    features::PROXIES_SENT_FEATURE,
    model::Floor,
    objectives::{Objective, ObjectiveKind},
    sync::{self, lock},
    train::{
        Fitted, RelatedTarget, SplitMix64, TrainError, load_all_proxies, metrics, proxy_source,
        recipe::{IntervalCalibration, Recipe},
    },
};

/// The share of networks whose ranking matters most to a search.
pub const TOP_FRACTION: f64 = 0.05;

/// What to evaluate.
#[derive(Debug, Clone)]
pub struct Protocol {
    pub objectives: Vec<Objective>,
    pub train_sizes: Vec<usize>,
    pub seeds: Vec<u64>,
    /// The feature sets our recipe is trained on; empty means the one the
    /// served models use ([`serving_feature_set`]).
    pub feature_sets: Vec<FeatureSet>,
    pub recipe: Recipe,
    /// Worker threads (each LightGBM fit is single-threaded).
    pub jobs: usize,
    /// Fit feature sets with proxies in the served layout (a
    /// [`PROXIES_SENT_FEATURE`] column), which adds the trees the service
    /// answers candidates without proxies with, and score those on the
    /// test networks sent without their proxies ([`Run::without_proxies`]).
    pub without_proxies: bool,
}

/// The feature set a served model of `objective` is trained on, the same
/// columns in the same order: for a hardware cost the graph view and the
/// one-hot of the cell (no proxies: a device runs the cell, whatever its
/// proxies say); otherwise the graph view, plus the proxies where its
/// dataset's tables have them.
pub fn serving_feature_set(objective: &Objective, has_proxies: bool) -> FeatureSet {
    if objective.kind == ObjectiveKind::Hardware {
        FeatureSet(vec![Block::Graph, Block::OneHot])
    } else if has_proxies {
        FeatureSet(vec![Block::Graph, Block::Proxies])
    } else {
        FeatureSet(vec![Block::Graph])
    }
}

/// The training networks of one split: the first `train_size` of a
/// permutation of `0..n` drawn from `seed`. The test networks are all the
/// others. The same `(n, train_size, seed)` always gives the same split.
pub fn split(n: usize, train_size: usize, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let order = SplitMix64(seed).permutation(n);
    let (train, test) = order.split_at(train_size.min(n));
    let mut train = train.to_vec();
    let mut test = test.to_vec();
    train.sort_unstable();
    test.sort_unstable();
    (train, test)
}

/// How many of the truly best `fraction` of networks are among the
/// predicted best `fraction`. Ties are broken by position, as the reference
/// runner's stable sort does.
pub fn top_precision(pred: &[f64], truth: &[f64], fraction: f64, lower_is_better: bool) -> f64 {
    let k = ((fraction * truth.len() as f64).round() as usize).max(1);
    let best = |v: &[f64]| -> Vec<usize> {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        if lower_is_better {
            idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
        } else {
            idx.sort_by(|&a, &b| v[b].total_cmp(&v[a]));
        }
        idx.truncate(k);
        idx.sort_unstable();
        idx
    };
    let (t, p) = (best(truth), best(pred));
    let hits = t.iter().filter(|i| p.binary_search(i).is_ok()).count();
    hits as f64 / k as f64
}

/// A rank correlation of predictions with the truth; 0 when every
/// prediction is the same (no ranking at all, where the correlation itself
/// is undefined), as the reference runner scores it.
pub fn ranking(correlation: fn(&[f64], &[f64]) -> f64, pred: &[f64], truth: &[f64]) -> f64 {
    if pred.iter().all(|p| *p == pred[0]) {
        0.0
    } else {
        correlation(pred, truth)
    }
}

/// One trained and scored model: an objective, a feature set, a train size
/// and a seed.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub objective: String,
    pub feature_set: String,
    pub train_size: usize,
    pub seed: u64,
    pub kendall_tau: f64,
    pub spearman_rho: f64,
    pub top_precision: f64,
    /// Share of test networks whose true value is inside the interval.
    pub coverage: f64,
    /// The interval the recipe calibrated: its half-width and what it was
    /// calibrated from.
    pub interval: IntervalCalibration,
    /// The half-width that would have held exactly the nominal share of
    /// the test networks: the interval's target, to tell a calibration
    /// that is off by a little width from one that is off by much.
    pub held_out_half_width: f64,
    /// The half-widths that would have held 50%, 51%, ... 99% of the test
    /// networks ([`held_out_shares`]): how coverage moves with the width,
    /// so that another calibration rule can be scored on the same fits.
    pub held_out_half_widths: Vec<f64>,
    pub chosen: String,
    /// Each choice's out-of-fold Kendall tau in the recipe's inner
    /// cross-validation (null where it could not be tried), to see why a
    /// choice was made.
    pub inner_cv_kendall_tau: BTreeMap<String, Option<f64>>,
    /// The floor the recipe clamped predictions to, if any.
    pub floor: Option<Floor>,
    /// The same test networks sent without their proxies, where the
    /// protocol asked for it ([`Protocol::without_proxies`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub without_proxies: Option<WithoutProxies>,
    pub seconds: f64,
}

/// How the trees for candidates without proxies rank the test networks
/// and how often their interval holds the true value.
#[derive(Debug, Clone, Serialize)]
pub struct WithoutProxies {
    pub kendall_tau: f64,
    pub top_precision: f64,
    pub coverage: f64,
    pub interval: IntervalCalibration,
    pub held_out_half_width: f64,
    pub held_out_half_widths: Vec<f64>,
}

/// The shares of the test networks [`Run::held_out_half_widths`] gives
/// the holding half-width of: 50% to 99% in steps of one point.
pub fn held_out_shares() -> impl Iterator<Item = f64> {
    (50..100).map(|percent| f64::from(percent) / 100.0)
}

/// The half-width that held `coverage` of the test networks
/// ([`Run::held_out_half_width`]) and those at each of [`held_out_shares`]
/// ([`Run::held_out_half_widths`]), from one sort of the residuals.
fn held_out_half_widths(pred: &[f64], truth: &[f64], coverage: f64) -> (f64, Vec<f64>) {
    let mut widths = metrics::nominal_half_widths(
        pred,
        truth,
        std::iter::once(coverage).chain(held_out_shares()),
    );
    let nominal = widths.remove(0);
    (nominal, widths)
}

/// Share of `truth` inside the interval of each row of `x` (row-major,
/// `width` columns) around its prediction `pred`: the interval of the trees
/// that answer the row ([`Fitted::interval_half_width_for`]).
fn coverage_by_row(
    fitted: &Fitted,
    x: &[f64],
    width: usize,
    sent: Option<usize>,
    pred: &[f64],
    truth: &[f64],
) -> f64 {
    let half_widths: Vec<f64> = x
        .chunks_exact(width)
        .map(|row| fitted.interval_half_width_for(row, sent))
        .collect();
    metrics::coverage_of_each(pred, truth, &half_widths)
}

/// Predicted against true values of one run, for the figure.
#[derive(Debug, Clone)]
pub struct Scatter {
    pub objective: String,
    pub unit: String,
    pub train_size: usize,
    pub seed: u64,
    pub predicted: Vec<f64>,
    pub truth: Vec<f64>,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub runs: Vec<Run>,
    pub scatters: Vec<Scatter>,
    pub seconds: f64,
}

/// Loads every objective of the protocol (proxies once per dataset), each
/// with its related objectives' values ([`crate::objectives::related`]),
/// every table read once.
pub fn load(bench_dir: &Path, objectives: &[Objective]) -> Result<Vec<ObjectiveData>, TrainError> {
    let proxies = load_all_proxies(bench_dir)?;
    let mut loaded: HashMap<&str, ObjectiveData> = HashMap::new();
    let related: Vec<Vec<&Objective>> = objectives
        .iter()
        .map(|o| crate::objectives::related(o))
        .collect();
    for o in objectives.iter().chain(related.iter().flatten().copied()) {
        if !loaded.contains_key(o.id.as_str()) {
            let data = ObjectiveData::load(bench_dir, o, proxy_source(o, &proxies))?;
            loaded.insert(&o.id, data);
        }
    }
    let mut out = Vec::with_capacity(objectives.len());
    for (o, related) in objectives.iter().zip(&related) {
        let mut data = loaded[o.id.as_str()].clone();
        for r in related {
            data.relate(&loaded[r.id.as_str()]);
        }
        out.push(data);
    }
    Ok(out)
}

/// Whether the tables have proxies for this objective's networks.
pub fn has_proxies(data: &ObjectiveData) -> bool {
    let m = data.matrix(&FeatureSet(vec![Block::Proxies]));
    m.values.iter().any(|v| !v.is_nan())
}

/// Runs our recipe over every (objective, feature set, train size, seed),
/// on `protocol.jobs` threads. The scatter kept per objective is the first
/// seed at the middle train size.
pub fn run(
    protocol: &Protocol,
    data: &[ObjectiveData],
    bar: &ProgressBar,
) -> Result<Outcome, TrainError> {
    let started = Instant::now();
    struct Job<'a> {
        data: &'a ObjectiveData,
        matrix: std::sync::Arc<Matrix>,
        feature_set: FeatureSet,
        train_size: usize,
        seed: u64,
    }
    let mut jobs = Vec::new();
    for d in data {
        let sets = if protocol.feature_sets.is_empty() {
            vec![serving_feature_set(&d.objective, has_proxies(d))]
        } else {
            protocol.feature_sets.clone()
        };
        for fs in sets {
            let mut matrix = d.matrix(&fs);
            if protocol.without_proxies && fs.has(Block::Proxies) {
                matrix = matrix.with_proxies_sent();
            }
            let matrix = std::sync::Arc::new(matrix);
            for &train_size in &protocol.train_sizes {
                if train_size >= d.len() {
                    return Err(TrainError::Data {
                        objective: d.objective.id.clone(),
                        message: format!(
                            "train size {train_size} leaves no test network of {}",
                            d.len()
                        ),
                    });
                }
                for &seed in &protocol.seeds {
                    jobs.push(Job {
                        data: d,
                        matrix: matrix.clone(),
                        feature_set: fs.clone(),
                        train_size,
                        seed,
                    });
                }
            }
        }
    }
    // Largest first, so the last threads do not wait on one long fit.
    jobs.sort_by_key(|j| std::cmp::Reverse(j.train_size));
    let scatter_size = {
        let mut sizes = protocol.train_sizes.clone();
        sizes.sort_unstable();
        sizes.get(sizes.len() / 2).copied()
    };
    let scatter_seed = protocol.seeds.first().copied();
    bar.set_length(jobs.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} fits, eta {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let next = AtomicUsize::new(0);
    let runs = Mutex::new(Vec::with_capacity(jobs.len()));
    let scatters = Mutex::new(HashMap::new());
    let failure = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..protocol.jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    if lock(&failure).is_some() {
                        break;
                    }
                    let t0 = Instant::now();
                    let (train, test) = split(job.data.len(), job.train_size, job.seed);
                    let x = job.matrix.rows(&train);
                    let y: Vec<f64> = train.iter().map(|&i| job.data.targets[i]).collect();
                    let related: Vec<RelatedTarget> =
                        job.data.related.iter().map(|r| r.rows(&train)).collect();
                    let fitted = match protocol.recipe.fit_related(
                        &x,
                        &job.matrix.names,
                        &y,
                        &related,
                        job.seed,
                    ) {
                        Ok(f) => f,
                        Err(e) => {
                            *lock(&failure) = Some(TrainError::Data {
                                objective: job.data.objective.id.clone(),
                                message: format!("N={} seed {}: {e}", job.train_size, job.seed),
                            });
                            break;
                        }
                    };
                    let test_x = job.matrix.rows(&test);
                    let mut pred = vec![0.0; test.len()];
                    fitted.predict_batch(&test_x, &mut pred);
                    let truth: Vec<f64> = test.iter().map(|&i| job.data.targets[i]).collect();
                    let width = job.matrix.width();
                    let sent = job
                        .matrix
                        .names
                        .iter()
                        .position(|n| n == PROXIES_SENT_FEATURE);
                    let lower = lower_is_better(&job.data.objective);
                    let without_proxies = fitted.interval_without_proxies.map(|interval| {
                        let blank = job.matrix.without_proxies(&test_x);
                        let mut pred = vec![0.0; test.len()];
                        fitted.predict_batch(&blank, &mut pred);
                        let (held_out_half_width, held_out_half_widths) =
                            held_out_half_widths(&pred, &truth, protocol.recipe.coverage);
                        WithoutProxies {
                            kendall_tau: ranking(metrics::kendall_tau_b, &pred, &truth),
                            top_precision: top_precision(&pred, &truth, TOP_FRACTION, lower),
                            coverage: metrics::coverage(&pred, &truth, interval.half_width),
                            interval,
                            held_out_half_width,
                            held_out_half_widths,
                        }
                    });
                    let (held_out_half_width, held_out_half_widths) =
                        held_out_half_widths(&pred, &truth, protocol.recipe.coverage);
                    let run = Run {
                        objective: job.data.objective.id.clone(),
                        feature_set: job.feature_set.to_string(),
                        train_size: job.train_size,
                        seed: job.seed,
                        kendall_tau: ranking(metrics::kendall_tau_b, &pred, &truth),
                        spearman_rho: ranking(metrics::spearman_rho, &pred, &truth),
                        top_precision: top_precision(&pred, &truth, TOP_FRACTION, lower),
                        coverage: coverage_by_row(&fitted, &test_x, width, sent, &pred, &truth),
                        interval: fitted.interval,
                        held_out_half_width,
                        held_out_half_widths,
                        inner_cv_kendall_tau: protocol
                            .recipe
                            .choices
                            .iter()
                            .zip(&fitted.cv_kendall_tau)
                            .map(|(c, &tau)| (c.name(), tau.is_finite().then_some(tau)))
                            .collect(),
                        floor: fitted.floor,
                        without_proxies,
                        chosen: fitted.chosen,
                        seconds: t0.elapsed().as_secs_f64(),
                    };
                    if Some(job.train_size) == scatter_size && Some(job.seed) == scatter_seed {
                        lock(&scatters)
                            .entry((run.objective.clone(), run.feature_set.clone()))
                            .or_insert(Scatter {
                                objective: run.objective.clone(),
                                unit: job.data.objective.unit.to_owned(),
                                train_size: job.train_size,
                                seed: job.seed,
                                predicted: pred,
                                truth,
                            });
                    }
                    bar.set_message(format!("{} N={}", run.objective, run.train_size));
                    lock(&runs).push(run);
                    bar.inc(1);
                }
            });
        }
    });
    if let Some(e) = lock(&failure).take() {
        return Err(e);
    }
    let mut runs = sync::into_inner(runs);
    runs.sort_by(|a, b| {
        (&a.objective, &a.feature_set, a.train_size, a.seed).cmp(&(
            &b.objective,
            &b.feature_set,
            b.train_size,
            b.seed,
        ))
    });
    let mut scatters: Vec<Scatter> = sync::into_inner(scatters).into_values().collect();
    scatters.sort_by(|a, b| a.objective.cmp(&b.objective));
    Ok(Outcome {
        runs,
        scatters,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_is_a_partition_and_depends_only_on_its_seed() {
        let (train, test) = split(100, 32, 7);
        assert_eq!(train.len(), 32);
        assert_eq!(test.len(), 68);
        let mut all: Vec<usize> = train.iter().chain(&test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(split(100, 32, 7), (train.clone(), test));
        assert_ne!(split(100, 32, 8).0, train);
    }

    #[test]
    fn top_precision_counts_the_true_best_among_the_predicted_best() {
        let truth = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        // Top 20% = 2 networks: truth's best are 9 and 10 (indices 8, 9).
        let pred = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, -1.0];
        let p = [9.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 5.0, 0.0];
        assert_eq!(top_precision(&truth, &truth, 0.2, false), 1.0);
        assert_eq!(top_precision(&p, &truth, 0.2, false), 0.5);
        // Lower is better: the best are indices 0 and 1.
        assert_eq!(top_precision(&pred, &truth, 0.2, true), 0.5);
    }
}
