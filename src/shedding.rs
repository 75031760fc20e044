//! Load shedding: a bound on calls in flight and on each call's time,
//! answered at once rather than queued.
//!
//! Beyond `max_in_flight` calls a new one gets RESOURCE_EXHAUSTED
//! immediately (a client retries with backoff, or on another replica);
//! nothing waits in an unbounded queue. A call that takes longer than the
//! server's limit, or than the deadline the client sent (`grpc-timeout`),
//! whichever is shorter, gets DEADLINE_EXCEEDED. Both bound the time until
//! the response starts: a stream's messages after that are bounded by the
//! stream itself.

use std::{
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use tokio::sync::Semaphore;
use tonic::codegen::http;

use crate::middleware::{BoxFuture, answer_now};

/// The tower layer; one per server, shared by every connection.
#[derive(Debug, Clone)]
pub struct LoadShedLayer {
    permits: Arc<Semaphore>,
    max_in_flight: usize,
    timeout: Duration,
}

impl LoadShedLayer {
    pub fn new(max_in_flight: usize, timeout: Duration) -> Self {
        let max_in_flight = max_in_flight.max(1);
        Self {
            permits: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
            timeout,
        }
    }
}

impl<S> tower::Layer<S> for LoadShedLayer {
    type Service = LoadShed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LoadShed {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct LoadShed<S> {
    inner: S,
    layer: LoadShedLayer,
}

/// The deadline a client sent, from `grpc-timeout` (`<digits><unit>`,
/// units H, M, S, m, u, n).
pub fn client_deadline(value: &[u8]) -> Option<Duration> {
    let text = std::str::from_utf8(value).ok()?;
    if text.len() < 2 || text.len() > 9 {
        return None;
    }
    let (digits, unit) = text.split_at(text.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for LoadShed<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let Ok(permit) = Arc::clone(&self.layer.permits).try_acquire_owned() else {
            let status = tonic::Status::resource_exhausted(format!(
                "the server is at its limit of {} calls in flight; retry with backoff",
                self.layer.max_in_flight
            ));
            return answer_now(status);
        };
        // tonic enforces the client's deadline too, and answers CANCELLED
        // when it expires. Ending one timer tick (1 ms) earlier makes the
        // answer DEADLINE_EXCEEDED, and it reaches the client in time.
        let client = request
            .headers()
            .get("grpc-timeout")
            .and_then(|v| client_deadline(v.as_bytes()))
            .map(|d| d.saturating_sub(Duration::from_millis(1)));
        let limit = client.map_or(self.layer.timeout, |d| d.min(self.layer.timeout));
        if limit.is_zero() {
            let status = tonic::Status::deadline_exceeded(
                "the client's deadline had passed when the call arrived",
            );
            return answer_now(status);
        }
        let call = self.inner.call(request);
        Box::pin(async move {
            let result = tokio::time::timeout(limit, call).await;
            drop(permit);
            match result {
                Ok(response) => response,
                Err(_) => Ok(tonic::Status::deadline_exceeded(format!(
                    "the call took longer than its limit of {limit:?}"
                ))
                .into_http()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::{convert::Infallible, time::Instant};

    use tokio::sync::Notify;
    use tower::{Layer, Service, ServiceExt};

    use super::*;

    type Response = http::Response<tonic::body::Body>;

    /// A service whose calls finish only when `release` is notified.
    fn blocking(
        release: Arc<Notify>,
    ) -> impl Service<
        http::Request<()>,
        Response = Response,
        Error = Infallible,
        Future: Send + 'static,
    > + Clone {
        tower::service_fn(move |_req: http::Request<()>| {
            let release = Arc::clone(&release);
            async move {
                release.notified().await;
                Ok::<_, Infallible>(http::Response::new(tonic::body::Body::default()))
            }
        })
    }

    fn status_of(r: &Response) -> Option<&str> {
        r.headers().get("grpc-status").and_then(|v| v.to_str().ok())
    }

    #[tokio::test]
    async fn a_call_beyond_the_limit_is_refused_at_once_and_a_freed_slot_is_reused() {
        let release = Arc::new(Notify::new());
        let layer = LoadShedLayer::new(1, Duration::from_secs(30));
        let service = layer.layer(blocking(Arc::clone(&release)));
        let first = service.clone().oneshot(http::Request::new(()));
        let held = tokio::spawn(first);
        tokio::task::yield_now().await;

        let started = Instant::now();
        let second = service
            .clone()
            .oneshot(http::Request::new(()))
            .await
            .expect("a response");
        assert_eq!(status_of(&second), Some("8"), "RESOURCE_EXHAUSTED");
        assert!(started.elapsed() < Duration::from_millis(100), "not queued");

        release.notify_one();
        let first = held.await.expect("task").expect("response");
        assert_eq!(status_of(&first), None, "the first call completed");
        let third = service.clone().oneshot(http::Request::new(()));
        let third = tokio::spawn(third);
        tokio::task::yield_now().await;
        release.notify_one();
        let third = third.await.expect("task").expect("response");
        assert_eq!(status_of(&third), None, "the slot was given back");
    }

    #[tokio::test]
    async fn a_call_past_its_limit_or_the_clients_deadline_is_deadline_exceeded() {
        let release = Arc::new(Notify::new());
        let layer = LoadShedLayer::new(4, Duration::from_millis(100));
        let service = layer.layer(blocking(release));
        let started = Instant::now();
        let r = service
            .clone()
            .oneshot(http::Request::new(()))
            .await
            .expect("a response");
        assert_eq!(status_of(&r), Some("4"), "DEADLINE_EXCEEDED");
        assert!(started.elapsed() >= Duration::from_millis(100));

        // The client's shorter deadline wins.
        let mut request = http::Request::new(());
        request
            .headers_mut()
            .insert("grpc-timeout", http::HeaderValue::from_static("20m"));
        let started = Instant::now();
        let r = service.clone().oneshot(request).await.expect("a response");
        assert_eq!(status_of(&r), Some("4"));
        assert!(
            started.elapsed() < Duration::from_millis(90),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn grpc_timeout_headers_parse_and_nonsense_is_ignored() {
        assert_eq!(client_deadline(b"20m"), Some(Duration::from_millis(20)));
        assert_eq!(client_deadline(b"3S"), Some(Duration::from_secs(3)));
        assert_eq!(client_deadline(b"1H"), Some(Duration::from_secs(3600)));
        assert_eq!(client_deadline(b"500u"), Some(Duration::from_micros(500)));
        for bad in [
            &b""[..],
            b"m",
            b"12",
            b"12x",
            b"-1S",
            b"1234567890S",
            &[0xff, b'S'],
        ] {
            assert_eq!(client_deadline(bad), None, "{bad:?}");
        }
    }
}
