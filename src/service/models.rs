//! The gRPC `nasperf.v1.Models` service: model versions, retraining on
//! demand, activation and pinning.

use tonic::{Request, Response, Status};

use crate::{
    proto::v1::{
        ActivateModelRequest, ActivateModelResponse, ListModelsRequest, ListModelsResponse,
        ModelVersion, RetrainRequest, RetrainResponse, RetrainResult, TrainingAttempt,
        UnpinModelRequest, UnpinModelResponse, models_server,
    },
    retrain::{self, RetrainConfig, RetrainError, Scope},
    store::{Store, StoreHandle, models::StoredModel},
};

#[derive(Debug, Clone)]
pub struct ModelsService {
    store: StoreHandle,
    /// `None` when models come from a directory: the store's versions are
    /// listed, but nothing is trained or activated.
    retrain: Option<RetrainConfig>,
}

impl ModelsService {
    pub fn new(store: StoreHandle, retrain: Option<RetrainConfig>) -> Self {
        Self { store, retrain }
    }

    fn store(&self) -> Result<std::sync::Arc<Store>, Status> {
        self.store
            .get()
            .ok_or_else(|| Status::unavailable("the evaluation store is not connected yet; retry"))
    }

    fn managed(&self) -> Result<&RetrainConfig, Status> {
        self.retrain.as_ref().ok_or_else(|| {
            Status::failed_precondition(
                "this server serves a model directory (--models); its versions are files, not managed here",
            )
        })
    }
}

fn required(field: &str, value: &str) -> Result<(), Status> {
    if value.is_empty() {
        Err(Status::invalid_argument(format!("{field}: required")))
    } else {
        Ok(())
    }
}

impl From<StoredModel> for ModelVersion {
    fn from(m: StoredModel) -> Self {
        let h = &m.manifest.heldout;
        ModelVersion {
            training_rows: m.manifest.training_rows,
            heldout_rows: h.rows,
            heldout_kendall_tau: h.kendall_tau,
            heldout_spearman_rho: h.spearman_rho,
            heldout_rmse: h.rmse,
            baseline_kendall_tau: m.baseline_kendall_tau,
            decision: m.decision,
            created_at: m.manifest.created_at.clone(),
            activated_at_unix_ms: m.activated_at_ms.unwrap_or(0),
            training_data_sha256: m.manifest.training_data_sha256.clone(),
            interval_half_width: m.manifest.interval.map_or(0.0, |i| i.half_width),
            interval_coverage: m.manifest.interval.map_or(0.0, |i| i.coverage),
            heldout_interval_coverage: m
                .manifest
                .interval
                .and(m.manifest.heldout.interval_coverage),
            feature_names: m.manifest.feature_names,
            status: m.status.as_str().to_owned(),
            study: m.study,
            objective: m.objective,
            version: m.version,
        }
    }
}

impl From<retrain::ObjectiveReport> for RetrainResult {
    fn from(r: retrain::ObjectiveReport) -> Self {
        RetrainResult {
            outcome: r.outcome.as_str().to_owned(),
            study: r.study,
            objective: r.objective,
            version: r.version.unwrap_or_default(),
            training_rows: r.training_rows as u64,
            heldout_rows: r.heldout_rows as u64,
            kendall_tau: r.kendall_tau,
            baseline_kendall_tau: r.baseline_kendall_tau,
            message: r.message,
            seconds: r.seconds,
        }
    }
}

impl From<RetrainError> for Status {
    fn from(e: RetrainError) -> Self {
        match e {
            RetrainError::Busy => Status::aborted(e.to_string()),
            RetrainError::UnknownObjective { .. } => Status::not_found(e.to_string()),
            RetrainError::Store(e) => e.into(),
        }
    }
}

#[tonic::async_trait]
impl models_server::Models for ModelsService {
    #[tracing::instrument(skip_all, err)]
    async fn list_models(
        &self,
        request: Request<ListModelsRequest>,
    ) -> Result<Response<ListModelsResponse>, Status> {
        let r = request.into_inner();
        let store = self.store()?;
        let models = store.list_models(&r.study, &r.objective).await?;
        let last_attempts = store
            .training_states(&r.study)
            .await?
            .into_iter()
            .filter(|(_, o, _)| r.objective.is_empty() || *o == r.objective)
            .map(|(study, objective, t)| TrainingAttempt {
                study,
                objective,
                outcome: t.outcome,
                message: t.message,
                updated_at_unix_ms: t.updated_at_ms,
            })
            .collect();
        Ok(Response::new(ListModelsResponse {
            models: models.into_iter().map(ModelVersion::from).collect(),
            last_attempts,
        }))
    }

    #[tracing::instrument(skip_all, err)]
    async fn retrain(
        &self,
        request: Request<RetrainRequest>,
    ) -> Result<Response<RetrainResponse>, Status> {
        let config = self.managed()?.clone();
        let r = request.into_inner();
        let store = self.store()?;
        let scope = Scope {
            study: r.study,
            objectives: r.objectives,
            force: r.force,
            min_new_evaluations: None,
        };
        // Its own task: a call that times out or is cancelled does not
        // stop a pass half-way; its results stay in the store.
        let pass = tokio::spawn(async move { retrain::retrain(&store, &config, &scope).await });
        let reports = pass
            .await
            .map_err(|e| super::error::internal("retraining task failed", &e))??;
        Ok(Response::new(RetrainResponse {
            results: reports.into_iter().map(RetrainResult::from).collect(),
        }))
    }

    #[tracing::instrument(skip_all, err)]
    async fn activate_model(
        &self,
        request: Request<ActivateModelRequest>,
    ) -> Result<Response<ActivateModelResponse>, Status> {
        self.managed()?;
        let r = request.into_inner();
        required("objective", &r.objective)?;
        required("version", &r.version)?;
        let replaced = self
            .store()?
            .activate_model(&r.study, &r.objective, &r.version)
            .await?;
        tracing::info!(study = %r.study, objective = %r.objective, version = %r.version, "model activated and pinned");
        Ok(Response::new(ActivateModelResponse {
            replaced_version: replaced.unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all, err)]
    async fn unpin_model(
        &self,
        request: Request<UnpinModelRequest>,
    ) -> Result<Response<UnpinModelResponse>, Status> {
        self.managed()?;
        let r = request.into_inner();
        required("objective", &r.objective)?;
        let version = self.store()?.unpin_model(&r.study, &r.objective).await?;
        tracing::info!(study = %r.study, objective = %r.objective, %version, "model unpinned");
        Ok(Response::new(UnpinModelResponse { version }))
    }
}
