//! Domain errors to gRPC statuses, in one exhaustive match: a new error kind
//! cannot silently become INTERNAL.

use tonic::Status;

use crate::predict::PredictError;

/// The longest status message sent. Messages quote what the client sent,
/// which can be megabytes; gRPC carries the message in an HTTP/2 header, and
/// one over the peer's header limit breaks the connection instead of
/// reporting the error.
pub const MAX_MESSAGE_BYTES: usize = 1_024;

/// `message`, cut at [`MAX_MESSAGE_BYTES`] on a character boundary with
/// the original length said.
pub fn bounded(message: String) -> String {
    if message.len() <= MAX_MESSAGE_BYTES {
        return message;
    }
    let mut end = MAX_MESSAGE_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &message[..end], message.len())
}

impl From<PredictError> for Status {
    fn from(e: PredictError) -> Self {
        let message = bounded(e.to_string());
        match e {
            PredictError::EmptyBatch
            | PredictError::BatchTooLarge { .. }
            | PredictError::ResponseTooLarge { .. }
            | PredictError::InvalidArch { .. }
            | PredictError::InvalidProxy { .. }
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
        let message = bounded(e.to_string());
        match e {
            StoreError::StudyExists(_) => Status::already_exists(message),
            StoreError::UnknownStudy(_) | StoreError::UnknownModel { .. } => {
                Status::not_found(message)
            }
            StoreError::NotPinned { .. } => Status::failed_precondition(message),
            StoreError::InvalidArgument { .. } => Status::invalid_argument(message),
            StoreError::Database(_)
            | StoreError::Migrate(_)
            | StoreError::UnsupportedUrl(_)
            | StoreError::Corrupt(_)
            | StoreError::DataDir { .. } => internal("evaluation store error", &e),
        }
    }
}
