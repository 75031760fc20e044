//! Training and model evaluation, in process.
//!
//! - Retraining: our whole path per objective (read the tables, build the
//!   rows, fit, score the held-out rows, package) against LightGBM's fit
//!   alone on the same rows: the floor, since fitting is what cannot be
//!   skipped.
//! - Evaluation: LightGBM's own batch predict (lightgbm3) on feature
//!   matrices built beforehand, against nasperf's whole prediction path
//!   (encodings and proxy maps parsed, features computed, every model
//!   evaluated) for the same candidates. LightGBM is given its best case:
//!   no parsing, no features, its fast single-row path at batch size 1.
//! - Equality: our outputs against LightGBM's on all 15,625 cells for
//!   every model, through the whole path.

use std::{
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use indicatif::ProgressBar;

use super::report::Figure;
use crate::{
    bench,
    dataset::Dataset,
    features::ProxyValues,
    objectives::Objective,
    predict::{self, CandidateInput, Limits, PredictInput},
    registry::{ModelSet, Registry},
    space::{
        SearchSpace, SearchSpaces,
        nb201::{Nb201, cell::Cell},
    },
    sync::{self, lock},
    train::{self, SplitMix64, TrainConfig},
};

/// The dataset whose proxies the benchmark's candidates carry: the one
/// with the most objectives.
pub const PROXY_DATASET: Dataset = Dataset::Cifar10;

/// The objective of the one-objective latency figures.
pub const LATENCY_OBJECTIVE: &str = "cifar10/val_acc_200ep";

/// Trains `objectives` into `out` on `threads` threads, timing each, and
/// times LightGBM's fit alone for `reference` objectives.
pub fn retrain(
    bench_dir: &Path,
    objectives: &[Objective],
    reference: &[&str],
    config: &TrainConfig,
    threads: usize,
    out: &Path,
    bar: &ProgressBar,
) -> anyhow::Result<Vec<Figure>> {
    let proxies = train::load_all_proxies(bench_dir).context("reading the proxy tables")?;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let times: Mutex<Vec<(String, f64)>> = Mutex::new(Vec::new());
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                while let Some(objective) =
                    objectives.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                {
                    bar.set_message(format!("retraining {}", objective.id));
                    let t = Instant::now();
                    let outcome = train::train_objective(
                        bench_dir,
                        objective,
                        train::proxy_source(objective, &proxies),
                        config,
                    )
                    .and_then(|m| train::write_model(out, &m));
                    let seconds = t.elapsed().as_secs_f64();
                    match outcome {
                        Ok(()) => lock(&times).push((objective.id.clone(), seconds)),
                        Err(e) => lock(&failures).push(format!("{}: {e}", objective.id)),
                    }
                    bar.inc(1);
                }
            });
        }
    });
    let wall = started.elapsed().as_secs_f64();
    let failures = sync::into_inner(failures);
    if !failures.is_empty() {
        bail!("training failed:\n{}", failures.join("\n"));
    }
    let times = sync::into_inner(times);

    let mut figures = Vec::new();
    for id in reference {
        let Some(&(_, ours)) = times.iter().find(|(o, _)| o == id) else {
            continue;
        };
        let objective =
            crate::objectives::get(id).with_context(|| format!("{id} is not an objective"))?;
        bar.set_message(format!("LightGBM fit alone: {id}"));
        let (rows, fit_seconds) = fit_alone(
            bench_dir,
            objective,
            train::proxy_source(objective, &proxies),
            config,
        )?;
        figures.push(
            Figure::new(
                "retrain",
                format!("{id} ({rows} networks), whole path"),
                ours,
                "s",
            )
            .lower_is_better()
            .against("LightGBM fit alone", fit_seconds)
            .value_target(5.0),
        );
    }
    let (slowest, slowest_seconds) = times
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .cloned()
        .context("no objective trained")?;
    let sum: f64 = times.iter().map(|(_, s)| s).sum();
    figures.push(
        Figure::new(
            "retrain",
            format!("slowest objective ({slowest})"),
            slowest_seconds,
            "s",
        )
        .lower_is_better()
        .against("mean objective", sum / times.len() as f64)
        .value_target(5.0),
    );
    figures.push(
        Figure::new(
            "retrain",
            format!("all {} objectives, {threads} threads", times.len()),
            wall,
            "s",
        )
        .lower_is_better()
        .against("sum of per-objective times", sum)
        .value_target(300.0),
    );
    Ok(figures)
}

/// LightGBM's fit on the rows [`train::train_objective`] fits, built
/// beforehand: (rows, seconds).
fn fit_alone(
    bench_dir: &Path,
    objective: &Objective,
    proxies: Option<train::ProxySource<'_>>,
    config: &TrainConfig,
) -> anyhow::Result<(usize, f64)> {
    let measurements = bench::load_objective(bench_dir, objective)?;
    let proxies = if config.use_proxies { proxies } else { None };
    let set = train::build_training_set(objective, &measurements, proxies, &Nb201::new())?;
    let order = SplitMix64(config.seed).permutation(set.len());
    let n_test =
        ((set.len() as f64 * config.holdout_fraction).round() as usize).clamp(1, set.len() - 1);
    let t = Instant::now();
    train::fit(&set, &order[n_test..], config)?;
    Ok((set.len(), t.elapsed().as_secs_f64()))
}

/// What the in-process and gRPC benchmarks share: the loaded models and
/// every NB201 cell as a worker would send it.
pub struct Workload {
    pub models: Arc<ModelSet>,
    pub spaces: SearchSpaces,
    /// Every cell, in a fixed random order, with its proxies on
    /// [`PROXY_DATASET`] where the tables have them.
    pub candidates: Vec<CandidateInput>,
    /// The same cells, parsed: what the feature matrices are built from.
    cells: Vec<(Vec<f64>, Option<ProxyValues>)>,
    /// Seconds the registry took to read, parse and validate every model.
    pub load_seconds: f64,
}

impl Workload {
    pub fn load(models_dir: &Path, bench_dir: &Path) -> anyhow::Result<Workload> {
        let spaces = SearchSpaces::builtin();
        let registry = Registry::new(models_dir, spaces.clone());
        let started = Instant::now();
        let report = registry.reload().context("loading the trained models")?;
        let load_seconds = started.elapsed().as_secs_f64();
        if !report.refused.is_empty() {
            bail!("models refused at load: {:?}", report.refused);
        }
        let proxies = bench::load_proxies(bench_dir, PROXY_DATASET)?.unwrap_or_default();
        let space = Nb201::new();
        let all: Vec<Cell> = Cell::all().collect();
        let order = SplitMix64(2026).permutation(all.len());
        let mut candidates = Vec::with_capacity(all.len());
        let mut cells = Vec::with_capacity(all.len());
        for i in order {
            let cell = all[i];
            let arch = cell.to_op_codes();
            // The tables key proxies by canonical cell.
            let p = proxies.get(&cell.canonical()).copied();
            candidates.push(CandidateInput {
                search_space: space.name().to_owned(),
                arch: arch.clone(),
                proxies: p
                    .map(|p| p.sent().map(|(n, v)| (n.to_owned(), v)).collect())
                    .unwrap_or_default(),
            });
            let parsed = space
                .parse(&arch)
                .map_err(|e| anyhow::anyhow!("cell {arch}: {e}"))?;
            cells.push((parsed.features, p));
        }
        Ok(Workload {
            models: registry.snapshot(),
            spaces,
            candidates,
            cells,
            load_seconds,
        })
    }

    /// Served models, in the order [`predict::predict`] answers them.
    pub fn objectives(&self) -> Vec<(String, Arc<crate::model::Model>)> {
        self.models
            .objectives("")
            .into_iter()
            .filter_map(|(id, r)| r.entry.model.clone().map(|m| (id.to_owned(), m)))
            .collect()
    }

    /// A request for `candidates[start..start + n]` (wrapping), every objective.
    pub fn request(&self, start: usize, n: usize) -> PredictInput {
        let len = self.candidates.len();
        PredictInput {
            candidates: (0..n)
                .map(|k| self.candidates[(start + k) % len].clone())
                .collect(),
            dataset: PROXY_DATASET.name().to_owned(),
            objectives: Vec::new(),
            study: String::new(),
            intervals: false,
        }
    }

    /// The in-process path on one request, as the service runs it.
    pub fn predict(&self, input: &PredictInput) -> anyhow::Result<predict::PredictOutput> {
        let limits = Limits {
            max_batch: usize::MAX,
            max_response_bytes: usize::MAX,
        };
        predict::predict(&self.models, &self.spaces, &limits, input)
            .map_err(|e| anyhow::anyhow!("{e}"))
    }
}

/// A model with LightGBM's booster and its feature matrix over every cell.
struct Reference {
    objective: String,
    booster: lightgbm3::Booster,
    width: usize,
    matrix: Vec<f64>,
}

/// LightGBM's boosters for every served model, and the seconds its
/// `Booster::from_string` took over all of them.
fn references(workload: &Workload, models_dir: &Path) -> anyhow::Result<(Vec<Reference>, f64)> {
    let mut load_seconds = 0.0;
    let refs = workload
        .objectives()
        .into_iter()
        .map(|(objective, model)| {
            let text_path = crate::model::manifest_path(models_dir, &objective)
                .with_file_name(&model.manifest.model_file);
            let text = std::fs::read_to_string(&text_path)
                .with_context(|| format!("reading {}", text_path.display()))?;
            let started = Instant::now();
            let mut booster = lightgbm3::Booster::from_string(&text)
                .map_err(|e| anyhow::anyhow!("LightGBM loading {objective}: {e}"))?;
            load_seconds += started.elapsed().as_secs_f64();
            booster
                .single_row_fast_init::<f64>(None)
                .map_err(|e| anyhow::anyhow!("LightGBM fast predict for {objective}: {e}"))?;
            let map = model.feature_map();
            let uses_proxies = model.proxy_dataset == PROXY_DATASET;
            let mut matrix = Vec::with_capacity(workload.cells.len() * map.len());
            for (features, proxies) in &workload.cells {
                map.push_row(
                    features,
                    proxies.as_ref().filter(|_| uses_proxies),
                    &mut matrix,
                );
            }
            Ok(Reference {
                objective,
                booster,
                width: map.len(),
                matrix,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((refs, load_seconds))
}

/// The largest relative difference between our whole path and LightGBM's
/// predict over every cell and model; an error above 1e-9.
pub fn equality(
    workload: &Workload,
    models_dir: &Path,
    bar: &ProgressBar,
) -> anyhow::Result<Vec<Figure>> {
    let (refs, lightgbm_load) = references(workload, models_dir)?;
    bar.set_message("our outputs against LightGBM's on every cell");
    let ours = workload.predict(&workload.request(0, workload.candidates.len()))?;
    let mut worst = (0.0_f64, String::new());
    for (j, r) in refs.iter().enumerate() {
        if ours.objectives[j].objective != r.objective {
            bail!(
                "objective order differs: {} vs {}",
                ours.objectives[j].objective,
                r.objective
            );
        }
        let theirs = r
            .booster
            .predict(&r.matrix, r.width as i32, true)
            .map_err(|e| anyhow::anyhow!("LightGBM predict {}: {e}", r.objective))?;
        for (i, (p, t)) in ours
            .predictions
            .iter()
            .map(|p| p.values[j])
            .zip(&theirs)
            .enumerate()
        {
            let rel = (p - t).abs() / t.abs().max(1e-12);
            // A NaN on either side counts as the worst possible difference.
            let rel = if rel.is_nan() { f64::INFINITY } else { rel };
            if rel > worst.0 {
                worst = (
                    rel,
                    format!("{} on {}", r.objective, workload.candidates[i].arch),
                );
            }
        }
    }
    if worst.0 > 1e-9 {
        bail!(
            "our evaluator differs from LightGBM by {:.3e} (relative) on {}",
            worst.0,
            worst.1
        );
    }
    Ok(vec![
        // What a hot reload of every model costs: the registry also hashes
        // each text and checks it against its manifest and a probe row.
        Figure::new(
            "load",
            format!("read, parse and validate {} models", refs.len()),
            workload.load_seconds,
            "s",
        )
        .lower_is_better()
        .against("LightGBM Booster::from_string alone", lightgbm_load),
        Figure::new(
            "equality",
            format!(
                "{} models x {} cells, max relative difference",
                refs.len(),
                workload.candidates.len()
            ),
            worst.0,
            "",
        )
        .lower_is_better()
        .target("<= 1e-9", worst.0 <= 1e-9),
    ])
}

/// Rows per second of LightGBM's predict against our whole path at each
/// batch size; `budget` is the time spent on each figure.
pub fn evaluation(
    workload: &Workload,
    models_dir: &Path,
    batch_sizes: &[usize],
    budget: Duration,
    bar: &ProgressBar,
) -> anyhow::Result<Vec<Figure>> {
    let (refs, _) = references(workload, models_dir)?;
    let n_models = refs.len();
    let cells = workload.candidates.len();
    let mut figures = Vec::new();
    for &batch in batch_sizes {
        bar.set_message(format!("model evaluation, batch {batch}"));
        let chunks = cells / batch;
        let mut k = 0;
        let theirs = rate(budget, || {
            let start = (k % chunks) * batch;
            k += 1;
            for r in &refs {
                let rows = &r.matrix[start * r.width..(start + batch) * r.width];
                let out = if batch == 1 {
                    r.booster.predict_single_row_fast(rows)
                } else {
                    r.booster.predict(rows, r.width as i32, true)
                };
                std::hint::black_box(out.map_err(|e| anyhow::anyhow!("LightGBM predict: {e}"))?);
            }
            Ok(batch * n_models)
        })?;
        // Requests are built beforehand: cloning strings is the client's work.
        let requests: Vec<PredictInput> = (0..chunks.min(64))
            .map(|c| workload.request(c * batch, batch))
            .collect();
        let mut k = 0;
        let ours = rate(budget, || {
            let input = &requests[k % requests.len()];
            k += 1;
            std::hint::black_box(workload.predict(input)?);
            Ok(batch * n_models)
        })?;
        figures.push(
            Figure::new(
                "evaluation",
                format!("batch {batch}, {n_models} models: nasperf whole path"),
                ours,
                "predictions/s",
            )
            .against("LightGBM predict alone", theirs)
            .ratio_target(1.0),
        );
        bar.inc(1);
    }
    Ok(figures)
}

/// Calls `f` (which returns how many items it did) until `budget` has
/// passed and at least three calls were made, after one warm-up call;
/// returns items per second.
pub fn rate(budget: Duration, mut f: impl FnMut() -> anyhow::Result<usize>) -> anyhow::Result<f64> {
    f()?;
    let started = Instant::now();
    let mut items = 0;
    let mut calls = 0;
    while calls < 3 || started.elapsed() < budget {
        items += f()?;
        calls += 1;
    }
    Ok(items as f64 / started.elapsed().as_secs_f64())
}
