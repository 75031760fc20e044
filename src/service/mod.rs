//! The gRPC `nasperf.v1.Predictor` service. Handlers stay thin: convert,
//! call [`crate::predict`], convert back.

pub mod error;
pub mod models;
pub mod store;

use std::{pin::Pin, sync::Arc};

use futures::Stream;
use tokio_stream::{StreamExt, wrappers::ReceiverStream};
use tonic::{Request, Response, Status, Streaming};

use crate::{
    objectives, pareto,
    predict::{self, CandidateInput, Limits, PredictInput, PredictOutput},
    proto::v1::{
        CandidatePrediction, Direction, ListObjectivesRequest, ListObjectivesResponse,
        ObjectiveInfo, ObjectiveModel, ParetoRankRequest, ParetoRankResponse, PredictRequest,
        PredictResponse, RankedCandidate, predictor_server::Predictor,
    },
    registry::Registry,
    space::SearchSpaces,
    store::StoreHandle,
};

/// Batches with more candidate-objective predictions than this are computed
/// on a blocking thread, so that they do not stall the async workers.
const INLINE_PREDICTIONS: usize = 2_000;

#[derive(Debug, Clone)]
pub struct PredictorService {
    registry: Arc<Registry>,
    spaces: SearchSpaces,
    limits: Limits,
    store: StoreHandle,
}

impl PredictorService {
    pub fn new(
        registry: Arc<Registry>,
        spaces: SearchSpaces,
        limits: Limits,
        store: StoreHandle,
    ) -> Self {
        Self {
            registry,
            spaces,
            limits,
            store,
        }
    }

    /// What `study` has measured of `output`'s candidates. An unknown
    /// study is the client's error; an unreachable store is not: the
    /// predictions are served and the response says so.
    async fn measured(&self, study: &str, output: &PredictOutput) -> Result<Measured, Status> {
        let Some(store) = self.store.get() else {
            return Ok(Measured::Unavailable);
        };
        let candidates: Vec<(&str, &str, &str)> = output
            .predictions
            .iter()
            .map(|c| {
                (
                    c.search_space,
                    c.encoding.as_str(),
                    c.canonical_key.as_str(),
                )
            })
            .collect();
        let objectives: Vec<&str> = output
            .objectives
            .iter()
            .map(|o| o.objective.as_str())
            .collect();
        match store.measured_values(study, &candidates, &objectives).await {
            Ok(values) => Ok(Measured::Values(values)),
            Err(e) if e.is_unavailable() => {
                tracing::warn!(error = %e, "measured values unavailable; answering with predictions");
                Ok(Measured::Unavailable)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Answers one request from one snapshot.
    async fn answer(&self, request: PredictRequest) -> Result<PredictResponse, Status> {
        let request_id = request.request_id.clone();
        let study = request.study.clone();
        let input = PredictInput::from(request);
        let snapshot = self.registry.snapshot();
        let objectives = if input.objectives.is_empty() {
            snapshot.objectives(&input.study).len()
        } else {
            input.objectives.len()
        };
        let output = if input.candidates.len().saturating_mul(objectives) <= INLINE_PREDICTIONS {
            predict::predict(&snapshot, &self.spaces, &self.limits, &input)?
        } else {
            let (spaces, limits) = (self.spaces.clone(), self.limits);
            tokio::task::spawn_blocking(move || {
                predict::predict(&snapshot, &spaces, &limits, &input)
            })
            .await
            .map_err(|e| error::internal("prediction task failed", &e))??
        };
        crate::metrics::global().candidates_predicted(output.predictions.len());
        let measured = if study.is_empty() {
            None
        } else {
            Some(self.measured(&study, &output).await?)
        };
        Ok(to_response(output, request_id, measured.as_ref()))
    }
}

impl From<PredictRequest> for PredictInput {
    fn from(r: PredictRequest) -> Self {
        PredictInput {
            candidates: r
                .candidates
                .into_iter()
                .map(|c| CandidateInput {
                    search_space: c.search_space,
                    arch: c.arch,
                    proxies: c.proxies,
                })
                .collect(),
            dataset: r.dataset,
            intervals: r.intervals,
            objectives: r.objectives,
            study: r.study,
        }
    }
}

fn to_response(
    output: PredictOutput,
    request_id: String,
    measured: Option<&Measured>,
) -> PredictResponse {
    let n_objectives = output.objectives.len();
    PredictResponse {
        objectives: output
            .objectives
            .into_iter()
            .map(|o| ObjectiveModel {
                objective: o.objective,
                model_version: o.model_version,
                model_study: o.model_study,
                interval_coverage: o.interval_coverage.unwrap_or(0.0),
            })
            .collect(),
        predictions: output
            .predictions
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                let mut values = c.values;
                let mut widths = c.interval_half_widths;
                let mut flags = Vec::new();
                if let Some(Measured::Values(found)) = measured {
                    flags = vec![false; n_objectives];
                    for (j, value) in values.iter_mut().enumerate() {
                        if let Some(v) = found.get(&(i, j)) {
                            *value = *v;
                            flags[j] = true;
                            // A measurement is not a prediction.
                            if let Some(w) = widths.get_mut(j) {
                                *w = 0.0;
                            }
                        }
                    }
                }
                CandidatePrediction {
                    values,
                    canonical_key: c.canonical_key,
                    measured: flags,
                    interval_half_widths: widths,
                }
            })
            .collect(),
        request_id,
        measurements_unavailable: matches!(measured, Some(Measured::Unavailable)),
    }
}

/// What a study has measured for a request's candidates.
enum Measured {
    Values(std::collections::HashMap<(usize, usize), f64>),
    /// The store could not be reached; every value is a prediction.
    Unavailable,
}

type PredictStreamOut = Pin<Box<dyn Stream<Item = Result<PredictResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Predictor for PredictorService {
    #[tracing::instrument(skip_all, fields(candidates = request.get_ref().candidates.len()), err)]
    async fn predict(
        &self,
        request: Request<PredictRequest>,
    ) -> Result<Response<PredictResponse>, Status> {
        Ok(Response::new(self.answer(request.into_inner()).await?))
    }

    type PredictStreamStream = PredictStreamOut;

    #[tracing::instrument(skip_all)]
    async fn predict_stream(
        &self,
        request: Request<Streaming<PredictRequest>>,
    ) -> Result<Response<Self::PredictStreamStream>, Status> {
        let mut inbound = request.into_inner();
        // A small buffer: a client that stops reading slows its own stream
        // down rather than growing the server's memory.
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let service = self.clone();
        tokio::spawn(async move {
            while let Some(message) = inbound.next().await {
                let reply = match message {
                    Ok(request) => service.answer(request).await,
                    Err(status) => Err(status),
                };
                let failed = reply.is_err();
                if tx.send(reply).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    #[tracing::instrument(skip_all, fields(candidates = request.get_ref().candidates.len()), err)]
    async fn pareto_rank(
        &self,
        request: Request<ParetoRankRequest>,
    ) -> Result<Response<ParetoRankResponse>, Status> {
        let r = request.into_inner();
        let directions = pareto_directions(&r)?;
        let reference = (!r.reference_point.is_empty()).then_some(r.reference_point.clone());
        let predicted = self
            .answer(PredictRequest {
                candidates: r.candidates,
                dataset: r.dataset,
                objectives: r.objectives.into_iter().map(|o| o.objective).collect(),
                request_id: String::new(),
                study: r.study,
                intervals: false,
            })
            .await?;
        let m = directions.len();
        let values: Vec<f64> = predicted
            .predictions
            .iter()
            .flat_map(|p| p.values.iter().copied())
            .collect();
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(error::internal(
                "a non-finite value reached ranking",
                &format!("candidate {} objective {}", i / m, i % m),
            ));
        }
        let ranking = if predicted.predictions.len() > INLINE_PREDICTIONS / m {
            tokio::task::spawn_blocking(move || {
                pareto::rank(&values, &directions, reference.as_deref())
            })
            .await
            .map_err(|e| error::internal("ranking task failed", &e))?
        } else {
            pareto::rank(&values, &directions, reference.as_deref())
        };
        let candidates = predicted
            .predictions
            .into_iter()
            .enumerate()
            .map(|(i, p)| RankedCandidate {
                values: p.values,
                front: ranking.fronts[i],
                crowding_distance: ranking.crowding[i],
                hypervolume_contribution: ranking.contributions[i],
                canonical_key: p.canonical_key,
                measured: p.measured,
            })
            .collect();
        Ok(Response::new(ParetoRankResponse {
            objectives: predicted.objectives,
            candidates,
            hypervolume: ranking.hypervolume,
            measurements_unavailable: predicted.measurements_unavailable,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_objectives(
        &self,
        request: Request<ListObjectivesRequest>,
    ) -> Result<Response<ListObjectivesResponse>, Status> {
        let snapshot = self.registry.snapshot();
        let study = request.into_inner().study;
        let objectives = snapshot
            .objectives(&study)
            .into_iter()
            .map(|(id, resolved)| {
                let entry = resolved.entry;
                let mut info = ObjectiveInfo {
                    objective: id.to_owned(),
                    dataset: id.split('/').next().unwrap_or_default().to_owned(),
                    load_error: entry.load_error.clone().unwrap_or_default(),
                    model_study: resolved.study.to_owned(),
                    ..Default::default()
                };
                // Without a model, what the catalogue says of the objective.
                if let Some(known) = objectives::get(id) {
                    info.search_space = known.search_space.to_owned();
                    info.unit = known.unit.to_owned();
                }
                if let Some(model) = &entry.model {
                    let m = &model.manifest;
                    info.search_space = m.search_space.clone();
                    info.unit = m.unit.clone();
                    info.model_version = m.version.clone();
                    info.training_rows = m.training_rows;
                    info.feature_names = m.feature_names.clone();
                    info.heldout_kendall_tau = m.heldout.kendall_tau;
                    info.heldout_spearman_rho = m.heldout.spearman_rho;
                    info.heldout_rmse = m.heldout.rmse;
                    info.heldout_rows = m.heldout.rows;
                    info.created_at = m.created_at.clone();
                    info.training_data_sha256 = m.training_data_sha256.clone();
                    if model.feature_map().uses_proxies() {
                        info.proxy_dataset = model.proxy_dataset.name().to_owned();
                    }
                    if let Some(interval) = m.interval {
                        info.interval_half_width = interval.half_width;
                        info.interval_coverage = interval.coverage;
                        info.heldout_interval_coverage = m.heldout.interval_coverage;
                        info.interval_half_width_without_proxies =
                            m.interval_without_proxies.map(|i| i.half_width);
                    }
                }
                info
            })
            .collect();
        Ok(Response::new(ListObjectivesResponse { objectives }))
    }
}

/// The directions of a ranking request, with its reference point checked.
fn pareto_directions(r: &ParetoRankRequest) -> Result<Vec<pareto::Direction>, Status> {
    if r.objectives.len() < 2 {
        return Err(Status::invalid_argument(format!(
            "objectives: rank at least 2 objectives, got {}",
            r.objectives.len()
        )));
    }
    let mut directions = Vec::with_capacity(r.objectives.len());
    for (i, o) in r.objectives.iter().enumerate() {
        directions.push(match Direction::try_from(o.direction) {
            Ok(Direction::Maximize) => pareto::Direction::Maximize,
            Ok(Direction::Minimize) => pareto::Direction::Minimize,
            _ => {
                return Err(Status::invalid_argument(format!(
                    "objectives[{i}].direction: set MAXIMIZE or MINIMIZE for {:?}",
                    o.objective
                )));
            }
        });
    }
    if !r.reference_point.is_empty() {
        if r.reference_point.len() != r.objectives.len() {
            return Err(Status::invalid_argument(format!(
                "reference_point: {} values for {} objectives; give one per objective",
                r.reference_point.len(),
                r.objectives.len()
            )));
        }
        if r.objectives.len() > 3 {
            return Err(Status::invalid_argument(format!(
                "reference_point: exact hypervolume is computed for 2 or 3 objectives, not {}; rank without a reference point",
                r.objectives.len()
            )));
        }
        if let Some(k) = r.reference_point.iter().position(|v| !v.is_finite()) {
            return Err(Status::invalid_argument(format!(
                "reference_point[{k}]: {} is not a finite number",
                r.reference_point[k]
            )));
        }
    }
    Ok(directions)
}
