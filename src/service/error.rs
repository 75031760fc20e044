//! Domain errors to gRPC statuses, in one exhaustive match: a new error kind
//! cannot silently become INTERNAL.

use tonic::Status;

use crate::predict::PredictError;

impl From<PredictError> for Status {
    fn from(e: PredictError) -> Self {
        let message = e.to_string();
        match e {
            PredictError::EmptyBatch
            | PredictError::BatchTooLarge { .. }
            | PredictError::ResponseTooLarge { .. }
            | PredictError::InvalidArch { .. }
            | PredictError::UnknownProxy { .. }
            | PredictError::NonFiniteProxy { .. }
            | PredictError::MissingDataset { .. }
            | PredictError::DuplicateObjective { .. }
            | PredictError::SpaceMismatch { .. } => Status::invalid_argument(message),
            PredictError::UnknownSearchSpace { .. }
            | PredictError::UnknownDataset { .. }
            | PredictError::UnknownObjective { .. } => Status::not_found(message),
            PredictError::NoModel { .. } | PredictError::NoModels => {
                Status::failed_precondition(message)
            }
        }
    }
}

/// An internal failure: the cause goes to the log, the client gets a
/// generic message.
pub fn internal(context: &str, cause: &dyn std::fmt::Display) -> Status {
    tracing::error!(error = %cause, "{context}");
    Status::internal("internal error; the server log has the details")
}

impl From<crate::store::StoreError> for Status {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        if e.is_unavailable() {
            tracing::warn!(error = %e, "the evaluation store is unreachable");
            return Status::unavailable(
                "the evaluation store is unreachable; retry with the same idempotency keys",
            );
        }
        match e {
            StoreError::StudyExists(_) => Status::already_exists(e.to_string()),
            StoreError::UnknownStudy(_) | StoreError::UnknownModel { .. } => {
                Status::not_found(e.to_string())
            }
            StoreError::NotPinned { .. } => Status::failed_precondition(e.to_string()),
            StoreError::InvalidArgument { .. } => Status::invalid_argument(e.to_string()),
            StoreError::Database(_)
            | StoreError::Migrate(_)
            | StoreError::UnsupportedUrl(_)
            | StoreError::Corrupt(_)
            | StoreError::DataDir { .. } => internal("evaluation store error", &e),
        }
    }
}
