//! The gRPC `nasperf.v1.Store` service: studies and evaluations.

use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use crate::{
    proto::v1::{
        self as pb, CreateStudyRequest, ExcludeEvaluationsRequest, ExcludeEvaluationsResponse,
        GetStudyRequest, ListEvaluationsRequest, ListEvaluationsResponse, ListStudiesRequest,
        ListStudiesResponse, RecordEvaluationsRequest, RecordEvaluationsResponse, RecordResult,
        record_result::Outcome, store_server,
    },
    store::{EvaluationFilter, NewEvaluation, RecordOutcome, RejectionKind, Store, StoreHandle},
};

#[derive(Debug, Clone)]
pub struct StoreService {
    store: StoreHandle,
    max_batch: usize,
}

impl StoreService {
    pub fn new(store: StoreHandle, max_batch: usize) -> Self {
        Self { store, max_batch }
    }

    fn store(&self) -> Result<std::sync::Arc<Store>, Status> {
        self.store.get().ok_or_else(|| {
            Status::unavailable(
                "the evaluation store is not connected yet; retry with the same idempotency keys",
            )
        })
    }

    /// Records one message's rows, appending their results.
    async fn record_batch(
        &self,
        store: &Store,
        batch: Vec<pb::Evaluation>,
        first_index: u64,
        response: &mut RecordEvaluationsResponse,
    ) -> Result<(), Status> {
        if batch.len() > self.max_batch {
            return Err(Status::invalid_argument(format!(
                "evaluations: {} rows exceed the limit of {} per message; split the batch",
                batch.len(),
                self.max_batch
            )));
        }
        let rows: Vec<NewEvaluation> = batch.into_iter().map(NewEvaluation::from).collect();
        let outcomes = store.record(&rows).await?;
        let before = (response.stored, response.already_stored, response.rejected);
        for (i, (row, outcome)) in rows.into_iter().zip(outcomes).enumerate() {
            let mut result = RecordResult {
                index: first_index + i as u64,
                idempotency_key: row.idempotency_key,
                ..Default::default()
            };
            match outcome {
                RecordOutcome::Stored => {
                    result.set_outcome(Outcome::Stored);
                    response.stored += 1;
                }
                RecordOutcome::AlreadyStored => {
                    result.set_outcome(Outcome::AlreadyStored);
                    response.already_stored += 1;
                }
                RecordOutcome::Rejected(r) => {
                    result.set_outcome(Outcome::Rejected);
                    result.code = match r.kind {
                        RejectionKind::InvalidArgument => tonic::Code::InvalidArgument,
                        RejectionKind::NotFound => tonic::Code::NotFound,
                        RejectionKind::AlreadyExists => tonic::Code::AlreadyExists,
                    } as i32;
                    result.message = super::error::bounded(format!(
                        "evaluations[{}].{}",
                        result.index, r.message
                    ));
                    response.rejected += 1;
                }
            }
            response.results.push(result);
        }
        let metrics = crate::metrics::global();
        metrics.evaluations("stored", response.stored - before.0);
        metrics.evaluations("already_stored", response.already_stored - before.1);
        metrics.evaluations("rejected", response.rejected - before.2);
        Ok(())
    }
}

impl From<pb::Evaluation> for NewEvaluation {
    fn from(e: pb::Evaluation) -> Self {
        NewEvaluation {
            study: e.study,
            search_space: e.search_space,
            arch: e.arch,
            objective: e.objective,
            value: e.value,
            budget: e.budget,
            worker: e.worker,
            idempotency_key: e.idempotency_key,
            dataset: e.dataset,
            proxies: e.proxies.into_iter().collect(),
        }
    }
}

fn study_to_proto(s: crate::store::Study) -> pb::Study {
    pb::Study {
        name: s.name,
        description: s.description,
        created_at_unix_ms: s.created_at_ms,
        evaluations: s.evaluations,
    }
}

#[tonic::async_trait]
impl store_server::Store for StoreService {
    #[tracing::instrument(skip_all, fields(study = %request.get_ref().name), err)]
    async fn create_study(
        &self,
        request: Request<CreateStudyRequest>,
    ) -> Result<Response<pb::Study>, Status> {
        let r = request.into_inner();
        let study = self.store()?.create_study(&r.name, &r.description).await?;
        Ok(Response::new(study_to_proto(study)))
    }

    #[tracing::instrument(skip_all, err)]
    async fn list_studies(
        &self,
        _: Request<ListStudiesRequest>,
    ) -> Result<Response<ListStudiesResponse>, Status> {
        let studies = self.store()?.list_studies().await?;
        Ok(Response::new(ListStudiesResponse {
            studies: studies.into_iter().map(study_to_proto).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(study = %request.get_ref().name), err)]
    async fn get_study(
        &self,
        request: Request<GetStudyRequest>,
    ) -> Result<Response<pb::Study>, Status> {
        let study = self.store()?.study(&request.into_inner().name).await?;
        Ok(Response::new(study_to_proto(study)))
    }

    #[tracing::instrument(skip_all, err)]
    async fn record_evaluations(
        &self,
        request: Request<Streaming<RecordEvaluationsRequest>>,
    ) -> Result<Response<RecordEvaluationsResponse>, Status> {
        let store = self.store()?;
        let mut inbound = request.into_inner();
        let mut response = RecordEvaluationsResponse::default();
        let mut next_index = 0u64;
        while let Some(message) = inbound.next().await {
            let batch = message?.evaluations;
            let n = batch.len() as u64;
            self.record_batch(&store, batch, next_index, &mut response)
                .await?;
            next_index += n;
        }
        Ok(Response::new(response))
    }

    #[tracing::instrument(skip_all, fields(rows = request.get_ref().evaluations.len()), err)]
    async fn record_evaluation_batch(
        &self,
        request: Request<RecordEvaluationsRequest>,
    ) -> Result<Response<RecordEvaluationsResponse>, Status> {
        let evaluations = request.into_inner().evaluations;
        if evaluations.is_empty() {
            return Err(Status::invalid_argument(
                "evaluations: the batch is empty; send at least one evaluation",
            ));
        }
        let store = self.store()?;
        let mut response = RecordEvaluationsResponse::default();
        self.record_batch(&store, evaluations, 0, &mut response)
            .await?;
        Ok(Response::new(response))
    }

    #[tracing::instrument(skip_all, fields(study = %request.get_ref().study, worker = %request.get_ref().worker), err)]
    async fn exclude_evaluations(
        &self,
        request: Request<ExcludeEvaluationsRequest>,
    ) -> Result<Response<ExcludeEvaluationsResponse>, Status> {
        let r = request.into_inner();
        let excluded = self
            .store()?
            .exclude_evaluations(&r.study, &r.worker, r.since_unix_ms, r.until_unix_ms)
            .await?;
        tracing::warn!(excluded, "evaluations excluded by an admin call");
        Ok(Response::new(ExcludeEvaluationsResponse { excluded }))
    }

    #[tracing::instrument(skip_all, err)]
    async fn list_evaluations(
        &self,
        request: Request<ListEvaluationsRequest>,
    ) -> Result<Response<ListEvaluationsResponse>, Status> {
        let r = request.into_inner();
        let after_id = if r.page_token.is_empty() {
            0
        } else {
            r.page_token
                .parse::<i64>()
                .ok()
                .filter(|id| *id >= 0)
                .ok_or_else(|| {
                    Status::invalid_argument("page_token: not a token this server issued")
                })?
        };
        let filter = EvaluationFilter {
            studies: r.studies,
            objective: r.objective,
            worker: r.worker,
            search_space: r.search_space,
            arch: r.arch,
            since_ms: r.since_unix_ms,
            until_ms: r.until_unix_ms,
            after_id,
            limit: if r.page_size > crate::store::MAX_PAGE {
                return Err(Status::invalid_argument(format!(
                    "page_size: {} is over the limit of {}",
                    r.page_size,
                    crate::store::MAX_PAGE
                )));
            } else {
                r.page_size
            },
        };
        let limit = crate::store::page_size(filter.limit);
        let rows = self.store()?.list_evaluations(&filter).await?;
        let next_page_token = if rows.len() as u32 == limit {
            rows.last().map(|e| e.id.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(ListEvaluationsResponse {
            evaluations: rows
                .into_iter()
                .map(|e| pb::StoredEvaluation {
                    id: u64::try_from(e.id).unwrap_or_default(),
                    study: e.study,
                    search_space: e.search_space,
                    encoding: e.encoding,
                    canonical_key: e.canonical_key,
                    objective: e.objective,
                    value: e.value,
                    budget: e.budget,
                    worker: e.worker,
                    recorded_at_unix_ms: e.recorded_at_ms,
                    idempotency_key: e.idempotency_key,
                })
                .collect(),
            next_page_token,
        }))
    }
}
