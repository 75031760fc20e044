//! What the tower layers around every call share (metrics, auth, load
//! shedding): their boxed response future, and answering a call with a
//! status without reaching the service.

use std::pin::Pin;

use tonic::codegen::http;

/// The response future of a layer that may answer by itself.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Answers a call with `status` at once (a gRPC "trailers only" response).
pub fn answer_now<B: Default + Send + 'static, E: Send + 'static>(
    status: tonic::Status,
) -> BoxFuture<Result<http::Response<B>, E>> {
    Box::pin(async move { Ok(status.into_http()) })
}
