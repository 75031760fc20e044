//! Prediction over one model snapshot: validation of a batch, features,
//! and every requested objective. Transport-free; the gRPC service converts
//! to and from the wire types.

use std::{collections::HashMap, sync::Arc};

use crate::{
    dataset::Dataset,
    features::{ProxyError, ProxyValues},
    model::Model,
    objectives,
    registry::ModelSet,
    space::{ParsedArch, SearchSpaces},
};

/// Limits that keep one request from monopolising the server or producing
/// a response clients cannot receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most candidates one request may carry.
    pub max_batch: usize,
    /// The largest response, in bytes, the server will build. The default
    /// stays under the 4 MiB receive limit of grpcio and tonic clients.
    pub max_response_bytes: usize,
}

/// gRPC clients' default receive limit.
pub const CLIENT_RECEIVE_LIMIT: usize = 4 * 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_batch: 10_000,
            // Leave room for framing and the per-objective header.
            max_response_bytes: CLIENT_RECEIVE_LIMIT - 64 * 1024,
        }
    }
}

/// A candidate as received.
#[derive(Debug, Clone, Default)]
pub struct CandidateInput {
    pub search_space: String,
    pub arch: String,
    pub proxies: HashMap<String, f64>,
}

#[derive(Debug, Clone, Default)]
pub struct PredictInput {
    pub candidates: Vec<CandidateInput>,
    pub dataset: String,
    pub objectives: Vec<String>,
    /// Whose models serve ("" is the default study).
    pub study: String,
    /// Also answer each predicted value's interval half-width.
    pub intervals: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObjectiveOutput {
    pub objective: String,
    pub model_version: String,
    /// The study whose version served.
    pub model_study: String,
    /// The nominal coverage of the model's intervals, if it has them.
    pub interval_coverage: Option<f64>,
}

/// One candidate's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct CandidateOutput {
    pub canonical_key: String,
    /// The architecture as sent, normalised (what the store keys on).
    pub encoding: String,
    pub search_space: &'static str,
    /// In `PredictOutput::objectives` order.
    pub values: Vec<f64>,
    /// Each value's interval half-width (0 for a model without intervals),
    /// when the request asked for them; empty otherwise.
    pub interval_half_widths: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PredictOutput {
    pub objectives: Vec<ObjectiveOutput>,
    pub predictions: Vec<CandidateOutput>,
}

/// Why a prediction request failed. Every client error names the field and,
/// where there is one, the candidate index.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PredictError {
    #[error("candidates: the batch is empty; send at least one candidate")]
    EmptyBatch,
    #[error(
        "candidates: {count} candidates exceed the limit of {max} per request; split the batch or use PredictStream"
    )]
    BatchTooLarge { count: usize, max: usize },
    #[error(
        "candidates: {candidates} candidates x {objectives} objectives would make a response of about {bytes} bytes, \
         over the {limit}-byte limit clients accept; split the batch into requests of at most {max_candidates} \
         candidates or use PredictStream"
    )]
    ResponseTooLarge {
        candidates: usize,
        objectives: usize,
        bytes: usize,
        limit: usize,
        max_candidates: usize,
    },
    #[error(
        "candidates[{index}].search_space: unknown search space {name:?}; supported: {supported}"
    )]
    UnknownSearchSpace {
        index: usize,
        name: String,
        supported: String,
    },
    #[error("candidates[{index}].arch: {message}")]
    InvalidArch { index: usize, message: String },
    #[error("candidates[{index}].proxies{}: {error}", error.key())]
    InvalidProxy { index: usize, error: ProxyError },
    #[error(
        "candidates[{index}].proxies: proxies were sent but the request names no dataset; set dataset to one of {known}"
    )]
    MissingDataset { index: usize, known: String },
    #[error("dataset: unknown dataset {name:?}; known: {known}")]
    UnknownDataset { name: String, known: String },
    #[error("objectives[{index}]: unknown objective {name:?}; see ListObjectives")]
    UnknownObjective { index: usize, name: String },
    #[error("objectives[{index}]: {name:?} is listed twice")]
    DuplicateObjective { index: usize, name: String },
    #[error("objectives[{index}]: no model is serving {name:?}{}", reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default())]
    NoModel {
        index: usize,
        name: String,
        reason: Option<String>,
    },
    #[error("objectives: no model is loaded yet")]
    NoModels,
    #[error(
        "candidates[{index}].search_space: objective {objective:?} is served for search space {expected:?}, not {got:?}"
    )]
    SpaceMismatch {
        index: usize,
        objective: String,
        expected: String,
        got: String,
    },
}

/// Approximate encoded size of a response, generous enough to be an upper
/// bound: 8 bytes per value, per-candidate framing and key, per-objective
/// header.
fn response_bytes(candidates: usize, objectives: usize, intervals: bool) -> usize {
    const PER_CANDIDATE: usize = 32;
    const PER_OBJECTIVE: usize = 128;
    // 8 bytes per value, 1 per `measured` flag, 8 per interval half-width.
    let per_value = if intervals { 17 } else { 9 };
    candidates * (objectives * per_value + PER_CANDIDATE) + objectives * PER_OBJECTIVE
}

/// A model chosen for a request, with the study whose version it is.
struct Chosen {
    objective: String,
    study: String,
    model: Arc<Model>,
}

/// The models a request asks for, resolved against one snapshot for the
/// request's study.
fn resolve_objectives(
    set: &ModelSet,
    study: &str,
    wanted: &[String],
) -> Result<Vec<Chosen>, PredictError> {
    if wanted.is_empty() {
        let all: Vec<_> = set
            .objectives(study)
            .into_iter()
            .filter_map(|(id, r)| {
                r.entry.model.clone().map(|model| Chosen {
                    objective: id.to_owned(),
                    study: r.study.to_owned(),
                    model,
                })
            })
            .collect();
        if all.is_empty() {
            return Err(PredictError::NoModels);
        }
        return Ok(all);
    }
    let mut out = Vec::with_capacity(wanted.len());
    for (index, name) in wanted.iter().enumerate() {
        if wanted[..index].contains(name) {
            return Err(PredictError::DuplicateObjective {
                index,
                name: name.clone(),
            });
        }
        match set.resolve(study, name) {
            Some(r) => match &r.entry.model {
                Some(model) => out.push(Chosen {
                    objective: name.clone(),
                    study: r.study.to_owned(),
                    model: Arc::clone(model),
                }),
                None => {
                    return Err(PredictError::NoModel {
                        index,
                        name: name.clone(),
                        reason: r.entry.load_error.clone(),
                    });
                }
            },
            None if objectives::get(name).is_some() => {
                return Err(PredictError::NoModel {
                    index,
                    name: name.clone(),
                    reason: None,
                });
            }
            None => {
                return Err(PredictError::UnknownObjective {
                    index,
                    name: name.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// Predicts every requested objective for every candidate from one
/// snapshot. CPU-bound: large batches belong on a blocking thread.
pub fn predict(
    set: &ModelSet,
    spaces: &SearchSpaces,
    limits: &Limits,
    input: &PredictInput,
) -> Result<PredictOutput, PredictError> {
    let n = input.candidates.len();
    if n == 0 {
        return Err(PredictError::EmptyBatch);
    }
    if n > limits.max_batch {
        return Err(PredictError::BatchTooLarge {
            count: n,
            max: limits.max_batch,
        });
    }
    let dataset = if input.dataset.is_empty() {
        None
    } else {
        Some(
            Dataset::from_name(&input.dataset).ok_or_else(|| PredictError::UnknownDataset {
                name: input.dataset.clone(),
                known: Dataset::names(),
            })?,
        )
    };
    let models = resolve_objectives(set, &input.study, &input.objectives)?;
    let size = |candidates| response_bytes(candidates, models.len(), input.intervals);
    let bytes = size(n);
    if bytes > limits.max_response_bytes {
        let per_candidate = size(1) - size(0);
        return Err(PredictError::ResponseTooLarge {
            candidates: n,
            objectives: models.len(),
            bytes,
            limit: limits.max_response_bytes,
            max_candidates: limits
                .max_batch
                .min((limits.max_response_bytes.saturating_sub(size(0))) / per_candidate),
        });
    }

    // Parse and validate every candidate before predicting anything, so
    // that the error reported is the first bad candidate's, however the
    // batch is split.
    let chunk = chunk_size(n, models.len());
    let parsed: Vec<Parsed> = in_parallel(input.candidates.chunks(chunk), |k, candidates| {
        parse_candidates(spaces, dataset, candidates, k * chunk)
    })?
    .into_iter()
    .flatten()
    .collect();
    for Chosen {
        objective, model, ..
    } in &models
    {
        let model_space = model.space.name();
        if let Some(index) = parsed.iter().position(|p| p.space != model_space) {
            return Err(PredictError::SpaceMismatch {
                index,
                objective: objective.clone(),
                expected: model_space.to_owned(),
                got: parsed[index].space.to_owned(),
            });
        }
    }
    let predictions: Vec<CandidateOutput> = in_parallel(parsed.chunks(chunk), |_, parsed| {
        Ok::<_, PredictError>(evaluate(&models, dataset, parsed, input.intervals))
    })?
    .into_iter()
    .flatten()
    .collect();
    Ok(PredictOutput {
        objectives: models
            .iter()
            .map(|c| ObjectiveOutput {
                objective: c.objective.clone(),
                model_version: c.model.manifest.version.clone(),
                model_study: c.study.clone(),
                interval_coverage: c.model.manifest.interval.map(|i| i.coverage),
            })
            .collect(),
        predictions,
    })
}

/// A candidate parsed and validated.
struct Parsed {
    space: &'static str,
    arch: ParsedArch,
    proxies: Option<ProxyValues>,
}

fn parse_candidates(
    spaces: &SearchSpaces,
    dataset: Option<Dataset>,
    candidates: &[CandidateInput],
    first_index: usize,
) -> Result<Vec<Parsed>, PredictError> {
    candidates
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let index = first_index + k;
            let space =
                spaces
                    .get(&c.search_space)
                    .ok_or_else(|| PredictError::UnknownSearchSpace {
                        index,
                        name: c.search_space.clone(),
                        supported: spaces.names().join(", "),
                    })?;
            let arch = space
                .parse(&c.arch)
                .map_err(|e| PredictError::InvalidArch {
                    index,
                    message: e.0,
                })?;
            let proxies = parse_proxies(index, &c.proxies, dataset)?;
            Ok(Parsed {
                space: space.name(),
                arch,
                proxies,
            })
        })
        .collect()
}

impl Parsed {
    /// The candidate's proxies, when they apply to the model at hand.
    fn proxies_if(&self, apply: bool) -> Option<&ProxyValues> {
        self.proxies.as_ref().filter(|_| apply)
    }
}

/// Every model over `parsed`, one model at a time: its trees stay in cache
/// while every candidate goes through them.
fn evaluate(
    models: &[Chosen],
    dataset: Option<Dataset>,
    parsed: &[Parsed],
    intervals: bool,
) -> Vec<CandidateOutput> {
    let mut predictions: Vec<CandidateOutput> = parsed
        .iter()
        .map(|p| CandidateOutput {
            canonical_key: p.arch.canonical_key.clone(),
            encoding: p.arch.encoding.clone(),
            search_space: p.space,
            values: Vec::with_capacity(models.len()),
            interval_half_widths: Vec::with_capacity(if intervals { models.len() } else { 0 }),
        })
        .collect();
    let (mut rows, mut values) = (Vec::new(), Vec::new());
    for Chosen { model, .. } in models {
        // A model uses proxies only when they were computed on the dataset
        // its own were.
        let proxies_apply = dataset == Some(model.proxy_dataset);
        model.predict_batch(
            parsed
                .iter()
                .map(|p| (p.arch.features.as_slice(), p.proxies_if(proxies_apply))),
            &mut rows,
            &mut values,
        );
        for (prediction, &value) in predictions.iter_mut().zip(&values) {
            prediction.values.push(value);
        }
        if intervals {
            for (prediction, p) in predictions.iter_mut().zip(parsed) {
                let width = model
                    .interval(p.proxies_if(proxies_apply))
                    .map_or(0.0, |i| i.half_width);
                prediction.interval_half_widths.push(width);
            }
        }
    }
    predictions
}

/// Below this many candidate-objective predictions a request runs on one
/// thread: starting threads would cost more than it saves.
const PARALLEL_MIN_PREDICTIONS: usize = 8_192;

/// How many candidates each thread takes: all of them for small requests,
/// an equal share per core for large ones.
fn chunk_size(candidates: usize, objectives: usize) -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cores = *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from));
    if cores == 1 || candidates.saturating_mul(objectives) < PARALLEL_MIN_PREDICTIONS {
        candidates.max(1)
    } else {
        candidates.div_ceil(cores).max(1)
    }
}

/// Runs `f` on each chunk, on scoped threads when there is more than one,
/// and returns the results in chunk order, or the first chunk's error.
fn in_parallel<'a, T: Sync + 'a, R: Send, E: Send>(
    chunks: impl Iterator<Item = &'a [T]>,
    f: impl Fn(usize, &'a [T]) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E> {
    let chunks: Vec<&[T]> = chunks.collect();
    if chunks.len() <= 1 {
        return chunks
            .into_iter()
            .enumerate()
            .map(|(k, c)| f(k, c))
            .collect();
    }
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .enumerate()
            .map(|(k, c)| scope.spawn(move || f(k, c)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

fn parse_proxies(
    index: usize,
    proxies: &HashMap<String, f64>,
    dataset: Option<Dataset>,
) -> Result<Option<ProxyValues>, PredictError> {
    if proxies.is_empty() {
        return Ok(None);
    }
    if dataset.is_none() {
        return Err(PredictError::MissingDataset {
            index,
            known: Dataset::names(),
        });
    }
    let values = ProxyValues::from_named(proxies.iter().map(|(n, &v)| (n.as_str(), v)))
        .map_err(|error| PredictError::InvalidProxy { index, error })?;
    Ok(Some(values))
}
