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
