//! Retraining from the store, behind a quality gate.
//!
//! Per study and objective: read what workers reported, form one training
//! row per canonical network (accuracy, robustness; repeated measurements
//! averaged) or per cell as sent (hardware), hold out a fixed fifth of the
//! rows, train LightGBM on a blocking thread, and compare the new model
//! with the serving one on the same held-out rows. The new version serves
//! only if its Kendall tau is not worse than the serving version's by more
//! than the tolerance; otherwise it is kept as a candidate with the reason.
//!
//! The held-out rows are chosen by a hash of the row's architecture, not
//! by position: as a study grows, a network held out once stays held out,
//! so a version trained here never trained on the rows it is judged on.
//!
//! One trainer at a time: [`Store::try_trainer_lock`] (a PostgreSQL
//! advisory lock across replicas). The only write that changes what serves
//! is one transaction at the end, so a trainer that dies mid-way leaves the
//! previous version serving.

pub mod schedule;

use std::{collections::HashMap, sync::Arc, time::Instant};

use futures::StreamExt;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{
    dataset::Dataset,
    features::ProxyValues,
    model::{HeldoutMetrics, Model},
    objectives::{self, Objective, ObjectiveKind},
    space::{
        SearchSpaces,
        nb201::{self, Nb201, cell::Cell},
    },
    store::{
        DEFAULT_STUDY, Store, StoreError,
        models::{ModelStatus, NewModel, TrainingArchitecture, TrainingState},
    },
    train::{self, ProxySource, TrainConfig, TrainingSet, metrics},
};

/// How retraining trains and judges.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrainConfig {
    pub train: TrainConfig,
    /// Fewer training rows than this: nothing is trained.
    pub min_training_rows: usize,
    /// Fewer held-out rows than this: nothing is trained (the gate would
    /// judge on noise).
    pub min_heldout_rows: usize,
    /// Percent of rows held out, chosen by a hash of the architecture.
    pub holdout_percent: u8,
    /// A new version may be this much worse in Kendall tau than the
    /// serving one and still be promoted (retraining noise).
    pub tolerance: f64,
    /// Objectives trained in parallel (LightGBM runs one thread each).
    pub jobs: usize,
}

impl Default for RetrainConfig {
    fn default() -> Self {
        Self {
            train: TrainConfig::default(),
            min_training_rows: 20,
            min_heldout_rows: 10,
            holdout_percent: 20,
            tolerance: 0.01,
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// Which study and objectives a pass looks at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scope {
    /// Empty: every study.
    pub study: String,
    /// Empty: every objective with evaluations.
    pub objectives: Vec<String>,
    /// Train even when the training data did not change since the last
    /// attempt.
    pub force: bool,
    /// Only pairs with at least this many evaluations newer than their
    /// last attempt (the `--retrain-after` trigger).
    pub min_new_evaluations: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The new version serves.
    Promoted { replaced: Option<String> },
    /// Trained and stored, not serving; `reason` says why.
    Candidate { reason: String },
    /// Too few rows to train or to hold out; what serves is unchanged.
    TooLittleData,
    /// The training data is what the last attempt saw.
    Unchanged,
    /// Something went wrong; what serves is unchanged.
    Failed,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Promoted { .. } => "promoted",
            Outcome::Candidate { .. } => "candidate",
            Outcome::TooLittleData => "too_little_data",
            Outcome::Unchanged => "unchanged",
            Outcome::Failed => "failed",
        }
    }
}

/// What retraining did for one study and objective.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectiveReport {
    pub study: String,
    pub objective: String,
    pub outcome: Outcome,
    /// The version trained, if one was.
    pub version: Option<String>,
    pub training_rows: usize,
    pub heldout_rows: usize,
    pub kendall_tau: Option<f64>,
    /// The serving version's tau on the same held-out rows.
    pub baseline_kendall_tau: Option<f64>,
    /// For people: what happened and why.
    pub message: String,
    pub seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum RetrainError {
    #[error("another replica is retraining now; try again when it is done")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("objectives[{index}]: unknown objective {name:?}")]
    UnknownObjective { index: usize, name: String },
}

/// Runs one retraining pass over `scope`, as the one trainer. Waits for
/// nothing: when another trainer holds the lock it returns `Busy`.
pub async fn retrain(
    store: &Store,
    config: &RetrainConfig,
    scope: &Scope,
) -> Result<Vec<ObjectiveReport>, RetrainError> {
    for (index, name) in scope.objectives.iter().enumerate() {
        if objectives::get(name).is_none() {
            return Err(RetrainError::UnknownObjective {
                index,
                name: name.clone(),
            });
        }
    }
    if !scope.study.is_empty() {
        store.require_study(&scope.study).await?;
    }
    let Some(lock) = store.try_trainer_lock().await? else {
        return Err(RetrainError::Busy);
    };
    // Decided under the lock: another replica may have just trained.
    let result = due_pairs(store, scope).await;
    let reports = match result {
        Ok(pairs) => {
            let proxies = ProxyCache::default();
            futures::stream::iter(pairs)
                .map(|(study, objective)| {
                    let proxies = &proxies;
                    async move { retrain_one(store, config, scope, proxies, study, objective).await }
                })
                .buffer_unordered(config.jobs.max(1))
                .collect::<Vec<_>>()
                .await
        }
        Err(e) => {
            lock.release().await;
            return Err(e.into());
        }
    };
    lock.release().await;
    // The pass's training sets and LightGBM buffers are freed by now.
    crate::memory::release_free_memory();
    let mut reports = reports;
    reports.sort_by(|a, b| (&a.study, &a.objective).cmp(&(&b.study, &b.objective)));
    Ok(reports)
}

async fn due_pairs(store: &Store, scope: &Scope) -> Result<Vec<(String, String)>, StoreError> {
    let wanted = |study: &str, objective: &str| {
        (scope.study.is_empty() || scope.study == study)
            && (scope.objectives.is_empty() || scope.objectives.iter().any(|o| o == objective))
    };
    Ok(match scope.min_new_evaluations {
        Some(min) => store
            .new_evaluation_counts()
            .await?
            .into_iter()
            .filter(|(s, o, n)| *n >= min && wanted(s, o))
            .map(|(s, o, _)| (s, o))
            .collect(),
        None => store
            .trainable_objectives()
            .await?
            .into_iter()
            .filter(|(s, o)| wanted(s, o))
            .collect(),
    })
}

/// Proxies per (study, dataset), read once per pass.
#[derive(Default)]
struct ProxyCache(tokio::sync::Mutex<HashMap<(String, String), Arc<CellProxies>>>);

/// Proxies by canonical cell.
type CellProxies = HashMap<Cell, ProxyValues>;

/// A study's proxies by the dataset they were computed on.
type ProxySources = Vec<(Dataset, Arc<CellProxies>)>;

impl ProxyCache {
    async fn get(
        &self,
        store: &Store,
        study: &str,
        dataset: &str,
    ) -> Result<Arc<CellProxies>, StoreError> {
        let mut cache = self.0.lock().await;
        let key = (study.to_owned(), dataset.to_owned());
        if let Some(p) = cache.get(&key) {
            return Ok(Arc::clone(p));
        }
        let by_key = store.study_proxies(study, dataset).await?;
        let by_cell: HashMap<Cell, ProxyValues> = by_key
            .into_iter()
            .filter_map(|(k, v)| Cell::parse(&k).ok().map(|c| (c, v)))
            .collect();
        let p = Arc::new(by_cell);
        cache.insert(key, Arc::clone(&p));
        Ok(p)
    }
}

async fn retrain_one(
    store: &Store,
    config: &RetrainConfig,
    scope: &Scope,
    proxies: &ProxyCache,
    study: String,
    objective_id: String,
) -> ObjectiveReport {
    let started = Instant::now();
    let mut report = ObjectiveReport {
        study: study.clone(),
        objective: objective_id.clone(),
        outcome: Outcome::Failed,
        version: None,
        training_rows: 0,
        heldout_rows: 0,
        kendall_tau: None,
        baseline_kendall_tau: None,
        message: String::new(),
        seconds: 0.0,
    };
    if let Err(message) = attempt(store, config, scope, proxies, &mut report).await {
        report.outcome = Outcome::Failed;
        report.message = message;
    }
    report.seconds = started.elapsed().as_secs_f64();
    crate::metrics::global().retraining(report.outcome.as_str());
    log(&report);
    report
}

fn log(r: &ObjectiveReport) {
    let tau = r.kendall_tau.map(|t| format!("{t:.3}")).unwrap_or_default();
    let baseline = r
        .baseline_kendall_tau
        .map(|t| format!("{t:.3}"))
        .unwrap_or_default();
    match &r.outcome {
        Outcome::Promoted { .. } => tracing::info!(
            study = %r.study, objective = %r.objective, version = r.version.as_deref().unwrap_or(""),
            kendall_tau = %tau, baseline = %baseline, rows = r.training_rows, seconds = r.seconds,
            "retrained model promoted: {}", r.message
        ),
        Outcome::Candidate { .. } => tracing::warn!(
            study = %r.study, objective = %r.objective, version = r.version.as_deref().unwrap_or(""),
            kendall_tau = %tau, baseline = %baseline, rows = r.training_rows,
            "retrained model not promoted: {}", r.message
        ),
        Outcome::TooLittleData | Outcome::Unchanged => tracing::info!(
            study = %r.study, objective = %r.objective, outcome = r.outcome.as_str(), "{}", r.message
        ),
        Outcome::Failed => tracing::error!(
            study = %r.study, objective = %r.objective, "retraining failed: {}", r.message
        ),
    }
}

/// Everything the blocking part needs, and what it returns.
struct Trained {
    model: train::TrainedModel,
    heldout: HeldoutMetrics,
    baseline: Option<f64>,
}

async fn attempt(
    store: &Store,
    config: &RetrainConfig,
    scope: &Scope,
    proxies: &ProxyCache,
    report: &mut ObjectiveReport,
) -> Result<(), String> {
    let (study, objective_id) = (report.study.clone(), report.objective.clone());
    let objective = objectives::get(&objective_id)
        .ok_or_else(|| format!("unknown objective {objective_id:?}"))?
        .clone();
    if objective.search_space != nb201::NAME {
        return Err(format!(
            "retraining supports search space {:?} only",
            nb201::NAME
        ));
    }
    let store_err = |e: StoreError| e.to_string();
    let evaluations = store
        .training_architectures(&study, &objective_id)
        .await
        .map_err(store_err)?;
    let max_evaluation_id = evaluations
        .iter()
        .map(|e| e.max_evaluation_id)
        .max()
        .unwrap_or(0);
    // What the study measured of the related objectives (the same attack
    // at smaller strengths, or the clean accuracy), for the recipe's
    // family choice.
    let mut related = Vec::new();
    for r in objectives::related(&objective) {
        let measured = store
            .training_architectures(&study, &r.id)
            .await
            .map_err(store_err)?;
        if !measured.is_empty() {
            related.push((r, measured));
        }
    }
    // The study's proxies of every dataset the objective's models may read
    // them from, best first; `prepare` takes the first that most rows have.
    let mut proxy_sources: ProxySources = Vec::new();
    if objective.kind != ObjectiveKind::Hardware {
        for &dataset in objective.dataset.proxy_sources() {
            let found = proxies
                .get(store, &study, dataset.name())
                .await
                .map_err(store_err)?;
            if !found.is_empty() {
                proxy_sources.push((dataset, found));
            }
        }
    }
    let previous = store
        .training_state(&study, &objective_id)
        .await
        .map_err(store_err)?;
    let serving = store
        .serving_versions()
        .await
        .map_err(store_err)?
        .into_iter()
        .find(|v| v.study == study && v.objective == objective_id);
    let serving_model = match &serving {
        Some(v) => Some(
            store
                .model_text(&v.study, &v.objective, &v.version)
                .await
                .map_err(store_err)?,
        ),
        None => None,
    };

    let prepared = {
        let objective = objective.clone();
        let config = config.clone();
        let proxies = proxy_sources.clone();
        tokio::task::spawn_blocking(move || {
            prepare(&objective, &evaluations, &related, &proxies, &config)
        })
        .await
        .map_err(|e| format!("training task: {e}"))??
    };
    let Prepared {
        set,
        train_idx,
        test_idx,
    } = prepared;
    report.training_rows = train_idx.len();
    report.heldout_rows = test_idx.len();
    let sha = set.sha256();
    let mut state = TrainingState {
        max_evaluation_id,
        training_data_sha256: sha.clone(),
        outcome: String::new(),
        message: String::new(),
        updated_at_ms: crate::store::now_ms(),
    };
    let finish = |state: &mut TrainingState, report: &mut ObjectiveReport| {
        state.outcome = report.outcome.as_str().to_owned();
        state.message = report.message.clone();
    };

    if !scope.force
        && previous
            .as_ref()
            .is_some_and(|p| p.training_data_sha256 == sha)
    {
        report.outcome = Outcome::Unchanged;
        report.message = format!(
            "the {} training rows are those the last attempt saw; nothing to do",
            set.len()
        );
        // Keep the last real outcome; move the watermark only.
        if let Some(p) = previous {
            state.outcome = p.outcome;
            state.message = p.message;
        }
        store
            .set_training_state(&study, &objective_id, &state)
            .await
            .map_err(store_err)?;
        return Ok(());
    }
    if train_idx.len() < config.min_training_rows || test_idx.len() < config.min_heldout_rows {
        report.outcome = Outcome::TooLittleData;
        report.message = format!(
            "{} distinct {} give {} training and {} held-out rows; at least {} and {} are needed, so what serves stays",
            set.len(),
            if objective.kind.depends_on_canonical_cell() {
                "networks"
            } else {
                "cells"
            },
            train_idx.len(),
            test_idx.len(),
            config.min_training_rows,
            config.min_heldout_rows
        );
        finish(&mut state, report);
        store
            .set_training_state(&study, &objective_id, &state)
            .await
            .map_err(store_err)?;
        return Ok(());
    }

    let trained = {
        let objective = objective.clone();
        let config = config.clone();
        let study = study.clone();
        tokio::task::spawn_blocking(move || {
            fit_and_judge(
                &objective,
                &study,
                set,
                &train_idx,
                &test_idx,
                &proxy_sources,
                serving_model,
                &config,
            )
        })
        .await
        .map_err(|e| format!("training task: {e}"))??
    };
    report.version = Some(trained.model.manifest.version.clone());
    report.kendall_tau = Some(trained.heldout.kendall_tau);
    report.baseline_kendall_tau = trained.baseline;
    let new_tau = trained.heldout.kendall_tau;
    let (promote, decision) = match trained.baseline {
        // A model whose held-out ranking is undefined (it predicts one value
        // for every held-out row, or the truth is all ties) shows nothing
        // it learned: it never serves.
        _ if !new_tau.is_finite() => (
            false,
            format!(
                "held-out Kendall tau is undefined on {} rows (the predictions or the measured values are all ties)",
                trained.heldout.rows
            ),
        ),
        None => (
            true,
            format!(
                "held-out Kendall tau {new_tau:.4} on {} rows; {}",
                trained.heldout.rows,
                if serving.is_some() {
                    "the serving version does not load, so there is nothing to compare with"
                } else {
                    "no serving version to compare with"
                }
            ),
        ),
        Some(base) if !base.is_finite() => (
            true,
            format!(
                "held-out Kendall tau {new_tau:.4}; the serving version's is undefined on these rows"
            ),
        ),
        Some(base) => {
            let ok = new_tau.is_finite() && new_tau >= base - config.tolerance;
            (
                ok,
                format!(
                    "held-out Kendall tau {new_tau:.4} against the serving version's {base:.4} on the same {} rows (tolerance {})",
                    trained.heldout.rows, config.tolerance
                ),
            )
        }
    };
    let saved = store
        .save_model(NewModel {
            study: &study,
            manifest: &trained.model.manifest,
            model_text: &trained.model.model_text,
            baseline_kendall_tau: trained.baseline,
            promote,
            pin: false,
            decision: if promote || !new_tau.is_finite() {
                decision
            } else {
                format!("{decision}: worse than the serving version")
            },
            max_evaluation_id,
        })
        .await
        .map_err(store_err)?;
    report.message = saved.decision.clone();
    report.outcome = if saved.status.serves() {
        Outcome::Promoted {
            replaced: saved.replaced,
        }
    } else {
        Outcome::Candidate {
            reason: saved.decision,
        }
    };
    debug_assert!(saved.status != ModelStatus::Retired);
    finish(&mut state, report);
    store
        .set_training_state(&study, &objective_id, &state)
        .await
        .map_err(store_err)?;
    Ok(())
}

struct Prepared {
    set: TrainingSet,
    train_idx: Vec<usize>,
    test_idx: Vec<usize>,
}

/// Forms the training rows and the fixed split.
fn prepare(
    objective: &Objective,
    evaluations: &[TrainingArchitecture],
    related: &[(&Objective, Vec<TrainingArchitecture>)],
    proxies: &[(Dataset, Arc<CellProxies>)],
    config: &RetrainConfig,
) -> Result<Prepared, String> {
    let space = Nb201::new();
    let sums = cell_sums(evaluations)?;
    // Proxies help only when most rows have them; with proxy dropout a
    // model also learns the rows without. The first source (the
    // objective's own dataset before a stand-in) that most rows have.
    let keys: std::collections::HashSet<Cell> =
        sums.iter().map(|(cell, _, _)| cell.canonical()).collect();
    let source = proxies
        .iter()
        .filter(|_| config.train.use_proxies)
        .find(|(_, p)| {
            let with = keys.iter().filter(|k| p.contains_key(k)).count();
            with * 2 >= keys.len().max(1)
        })
        .map(|(dataset, p)| ProxySource {
            dataset: *dataset,
            values: p,
        });
    let mut set = train::build_training_set_from_sums(objective, sums, source, &space)
        .map_err(|e| e.to_string())?;
    for (r, measured) in related {
        set.attach_related(r, cell_sums(measured)?);
    }
    let (mut train_idx, mut test_idx) = (Vec::new(), Vec::new());
    for (i, cell) in set.cells.iter().enumerate() {
        if held_out(cell, config.holdout_percent) {
            test_idx.push(i);
        } else {
            train_idx.push(i);
        }
    }
    Ok(Prepared {
        set,
        train_idx,
        test_idx,
    })
}

/// Stored evaluations as `(cell, sum of values, how many)`.
fn cell_sums(evaluations: &[TrainingArchitecture]) -> Result<Vec<(Cell, f64, u64)>, String> {
    evaluations
        .iter()
        .map(|e| {
            let cell = Cell::parse(&e.encoding)
                .map_err(|err| format!("stored architecture {:?}: {}", e.encoding, err.0))?;
            let count = u64::try_from(e.count).map_err(|_| format!("a count of {}", e.count))?;
            Ok((cell, e.value_sum, count))
        })
        .collect()
}

/// Whether a row is held out: a hash of its cell, so the same rows stay
/// held out as a study grows.
pub fn held_out(cell: &Cell, percent: u8) -> bool {
    let digest = Sha256::digest(cell.to_op_codes().as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first) % 100 < u64::from(percent)
}

#[allow(clippy::too_many_arguments)]
fn fit_and_judge(
    objective: &Objective,
    study: &str,
    set: TrainingSet,
    train_idx: &[usize],
    test_idx: &[usize],
    proxies: &[(Dataset, Arc<CellProxies>)],
    serving: Option<(crate::model::Manifest, String)>,
    config: &RetrainConfig,
) -> Result<Trained, String> {
    // Whether the set was formed with proxies (`prepare`) is what it says.
    let use_proxies = set.proxy_dataset.is_some();
    let fitted = train::fit(&set, train_idx, &config.train).map_err(|e| e.to_string())?;
    let heldout = train::evaluate(&fitted, &set, test_idx);
    let spaces = SearchSpaces::builtin();
    // The serving version on the same rows, through the serving path, so
    // that a version with other features is judged as it serves.
    let baseline = match serving {
        Some((manifest, text)) => match Model::from_parts(manifest, &text, &spaces) {
            Ok(model) => {
                let space = Nb201::new();
                let mut row = Vec::new();
                // The serving version reads the proxies it was trained
                // with, which may come from another dataset than the new
                // version's.
                let served_proxies = proxies
                    .iter()
                    .find(|(dataset, _)| *dataset == model.proxy_dataset)
                    .map(|(_, p)| p);
                let pred: Vec<f64> = test_idx
                    .iter()
                    .map(|&i| {
                        let cell = &set.cells[i];
                        let features = space.features(cell);
                        let p = served_proxies.and_then(|p| p.get(&cell.canonical()));
                        model.predict(&features, p, &mut row)
                    })
                    .collect();
                let truth: Vec<f64> = test_idx.iter().map(|&i| set.targets[i]).collect();
                Some(metrics::kendall_tau_b(&pred, &truth))
            }
            Err(e) => {
                tracing::warn!(objective = %objective.id, error = %e, "the serving version does not load; judging the new one alone");
                None
            }
        },
        None => None,
    };
    let trained = train::package(
        objective,
        &set,
        train_idx.len(),
        heldout.clone(),
        fitted,
        &TrainConfig {
            use_proxies,
            ..config.train.clone()
        },
        json!({
            "study": if study.is_empty() { DEFAULT_STUDY } else { study },
            "holdout": format!("sha256(cell) % 100 < {}", config.holdout_percent),
            "use_proxies": use_proxies,
        }),
    );
    Ok(Trained {
        model: trained,
        heldout,
        baseline,
    })
}
