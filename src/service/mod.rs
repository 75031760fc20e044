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
    objectives,
    predict::{self, CandidateInput, Limits, PredictInput, PredictOutput},
    proto::v1::{
        CandidatePrediction, ListObjectivesRequest, ListObjectivesResponse, ObjectiveInfo,
        ObjectiveModel, PredictRequest, PredictResponse, predictor_server::Predictor,
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
            })
            .collect(),
        predictions: output
            .predictions
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                let mut values = c.values;
                let mut flags = Vec::new();
                if let Some(Measured::Values(found)) = measured {
                    flags = vec![false; n_objectives];
                    for (j, value) in values.iter_mut().enumerate() {
                        if let Some(v) = found.get(&(i, j)) {
                            *value = *v;
                            flags[j] = true;
                        }
                    }
                }
                CandidatePrediction {
                    values,
                    canonical_key: c.canonical_key,
                    measured: flags,
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
                }
                info
            })
            .collect();
        Ok(Response::new(ListObjectivesResponse { objectives }))
    }
}
