//! Prometheus metrics on a port of their own (`serve --metrics-listen`):
//! what the service did (calls, candidates, evaluations, retrainings) and
//! what it serves (model versions and their held-out Kendall tau, the
//! store's health).
//!
//! Counters live in one process-wide set, because the services, the
//! retraining loop and the gRPC layer all add to them; what the service
//! serves is read from the registry and the store at each scrape, so it is
//! never stale.

use std::{
    collections::HashSet,
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, LazyLock, atomic::AtomicU64},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use http_body_util::Full;
use hyper::{Request, Response, body::Bytes, service::service_fn};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry as MetricsRegistry,
};
use tokio::{net::TcpListener, sync::watch};
use tonic::codegen::http;

use crate::{middleware::BoxFuture, registry::Registry, store::StoreHandle};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    method: String,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    study: String,
    objective: String,
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ObjectiveLabels {
    study: String,
    objective: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Every metric nasperf exports.
pub struct Metrics {
    registry: MetricsRegistry,
    rpc_calls: Family<RpcLabels, Counter>,
    rpc_seconds: Family<MethodLabels, Histogram, fn() -> Histogram>,
    candidates_predicted: Counter,
    evaluations: Family<OutcomeLabels, Counter>,
    retrainings: Family<OutcomeLabels, Counter>,
    model_info: Family<ModelLabels, Gauge>,
    model_tau: Family<ObjectiveLabels, FloatGauge>,
    model_training_rows: Family<ObjectiveLabels, Gauge>,
    models_load_errors: Gauge,
    store_up: Gauge,
    /// Method paths the API defines: a label for anything else would let
    /// a client create series at will.
    known_methods: HashSet<String>,
}

fn latency_histogram() -> Histogram {
    // 50 µs to about 52 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 21))
}

impl Metrics {
    fn new() -> Self {
        let mut registry = MetricsRegistry::with_prefix("nasperf");
        let rpc_calls = Family::<RpcLabels, Counter>::default();
        registry.register(
            "rpc_calls",
            "gRPC calls by method and status code",
            rpc_calls.clone(),
        );
        let rpc_seconds =
            Family::<MethodLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        registry.register(
            "rpc_duration_seconds",
            "gRPC call latency until the response headers (unary: the whole call)",
            rpc_seconds.clone(),
        );
        let candidates_predicted = Counter::default();
        registry.register(
            "candidates_predicted",
            "Candidates answered by Predict, PredictStream and ParetoRank",
            candidates_predicted.clone(),
        );
        let evaluations = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "evaluations_recorded",
            "Evaluations reported, by outcome (stored, already_stored, rejected)",
            evaluations.clone(),
        );
        let retrainings = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "retrainings",
            "Retraining attempts of one study and objective, by outcome",
            retrainings.clone(),
        );
        let model_info = Family::<ModelLabels, Gauge>::default();
        registry.register(
            "model_serving",
            "1 for each model version serving, by study and objective",
            model_info.clone(),
        );
        let model_tau = Family::<ObjectiveLabels, FloatGauge>::default();
        registry.register(
            "model_heldout_kendall_tau",
            "Held-out Kendall tau-b of the serving model",
            model_tau.clone(),
        );
        let model_training_rows = Family::<ObjectiveLabels, Gauge>::default();
        registry.register(
            "model_training_rows",
            "Training rows of the serving model",
            model_training_rows.clone(),
        );
        let models_load_errors = Gauge::default();
        registry.register(
            "model_load_errors",
            "Objectives whose model could not be loaded",
            models_load_errors.clone(),
        );
        let store_up = Gauge::default();
        registry.register(
            "store_up",
            "1 if the evaluation store answered a query at scrape time",
            store_up.clone(),
        );
        Self {
            registry,
            rpc_calls,
            rpc_seconds,
            candidates_predicted,
            evaluations,
            retrainings,
            model_info,
            model_tau,
            model_training_rows,
            models_load_errors,
            store_up,
            known_methods: crate::proto::api_methods(),
        }
    }

    fn observe_rpc(&self, path: &str, code: &'static str, elapsed: Duration) {
        let method = if self.known_methods.contains(path) {
            path.to_owned()
        } else {
            "other".to_owned()
        };
        self.rpc_calls
            .get_or_create(&RpcLabels {
                method: method.clone(),
                code,
            })
            .inc();
        self.rpc_seconds
            .get_or_create(&MethodLabels { method })
            .observe(elapsed.as_secs_f64());
    }

    pub fn candidates_predicted(&self, n: usize) {
        self.candidates_predicted.inc_by(n as u64);
    }

    /// `outcome`: "stored", "already_stored" or "rejected".
    pub fn evaluations(&self, outcome: &'static str, n: u64) {
        if n > 0 {
            self.evaluations
                .get_or_create(&OutcomeLabels { outcome })
                .inc_by(n);
        }
    }

    pub fn retraining(&self, outcome: &'static str) {
        self.retrainings
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Refreshes what is served, then renders the text format.
    async fn render(&self, registry: &Registry, store: &StoreHandle) -> String {
        let snapshot = registry.snapshot();
        self.model_info.clear();
        self.model_tau.clear();
        self.model_training_rows.clear();
        let mut load_errors = 0;
        for (study, objectives) in &snapshot.studies {
            for (objective, entry) in objectives {
                if entry.load_error.is_some() {
                    load_errors += 1;
                }
                let Some(model) = &entry.model else { continue };
                let m = &model.manifest;
                self.model_info
                    .get_or_create(&ModelLabels {
                        study: study.clone(),
                        objective: objective.clone(),
                        version: m.version.clone(),
                    })
                    .set(1);
                let labels = ObjectiveLabels {
                    study: study.clone(),
                    objective: objective.clone(),
                };
                self.model_tau
                    .get_or_create(&labels)
                    .set(m.heldout.kendall_tau);
                self.model_training_rows
                    .get_or_create(&labels)
                    .set(i64::try_from(m.training_rows).unwrap_or(i64::MAX));
            }
        }
        self.models_load_errors.set(load_errors);
        let up = match store.get() {
            Some(s) => tokio::time::timeout(Duration::from_secs(2), s.ping())
                .await
                .is_ok_and(|r| r.is_ok()),
            None => false,
        };
        self.store_up.set(i64::from(up));
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot render metrics");
        }
        out
    }
}

/// The process's metrics.
pub fn global() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

/// The name of a gRPC status code, for the `code` label.
fn code_name(code: &[u8]) -> &'static str {
    let n = std::str::from_utf8(code)
        .ok()
        .and_then(|s| s.parse::<i32>().ok());
    match n.map(tonic::Code::from_i32) {
        Some(code) => match code {
            tonic::Code::Ok => "OK",
            tonic::Code::Cancelled => "CANCELLED",
            tonic::Code::Unknown => "UNKNOWN",
            tonic::Code::InvalidArgument => "INVALID_ARGUMENT",
            tonic::Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            tonic::Code::NotFound => "NOT_FOUND",
            tonic::Code::AlreadyExists => "ALREADY_EXISTS",
            tonic::Code::PermissionDenied => "PERMISSION_DENIED",
            tonic::Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            tonic::Code::FailedPrecondition => "FAILED_PRECONDITION",
            tonic::Code::Aborted => "ABORTED",
            tonic::Code::OutOfRange => "OUT_OF_RANGE",
            tonic::Code::Unimplemented => "UNIMPLEMENTED",
            tonic::Code::Internal => "INTERNAL",
            tonic::Code::Unavailable => "UNAVAILABLE",
            tonic::Code::DataLoss => "DATA_LOSS",
            tonic::Code::Unauthenticated => "UNAUTHENTICATED",
        },
        None => "UNKNOWN",
    }
}

/// A tower layer that counts and times every gRPC call. The status is
/// read from the response headers: tonic sends a failed unary call as
/// "trailers only", so its code is there; a call whose headers carry no
/// status succeeded (or, for a stream, has not failed before its first
/// message).
#[derive(Debug, Clone, Copy, Default)]
pub struct RpcMetricsLayer;

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcMetrics { inner }
    }
}

#[derive(Debug, Clone)]
pub struct RpcMetrics<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for RpcMetrics<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let started = Instant::now();
        let call = self.inner.call(request);
        Box::pin(async move {
            let result = call.await;
            let code = match &result {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .map_or("OK", |v| code_name(v.as_bytes())),
                Err(_) => "INTERNAL",
            };
            global().observe_rpc(&path, code, started.elapsed());
            result
        })
    }
}

/// Serves `GET /metrics` (anything else: 404) until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    store: StoreHandle,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let (stream, _) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "metrics: accept failed");
                continue;
            }
        };
        let (registry, store) = (Arc::clone(&registry), store.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                let (registry, store) = (Arc::clone(&registry), store.clone());
                async move {
                    let response = if request.uri().path() == "/metrics" {
                        let body = global().render(&registry, &store).await;
                        Response::builder()
                            .header(
                                "content-type",
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            )
                            .body(Full::new(Bytes::from(body)))
                    } else {
                        Response::builder()
                            .status(404)
                            .body(Full::new(Bytes::from_static(b"metrics are at /metrics\n")))
                    };
                    Ok::<_, Infallible>(response.unwrap_or_else(|_| Response::new(Full::default())))
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                tracing::debug!(error = %e, "metrics connection ended");
            }
        });
    }
}

/// Binds the metrics port.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    use anyhow::Context as _;
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the metrics port {addr}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rpc_of_the_api_is_a_known_method_and_nothing_else_is() {
        let methods = crate::proto::api_methods();
        for m in [
            "/nasperf.v1.Predictor/Predict",
            "/nasperf.v1.Predictor/ParetoRank",
            "/nasperf.v1.Store/RecordEvaluationBatch",
            "/nasperf.v1.Models/Retrain",
            "/grpc.health.v1.Health/Check",
        ] {
            assert!(methods.contains(m), "{m} missing from {methods:?}");
        }
        assert!(!methods.contains("/nasperf.v1.Predictor/DropTables"));
    }

    #[test]
    fn status_codes_are_named() {
        assert_eq!(code_name(b"0"), "OK");
        assert_eq!(code_name(b"3"), "INVALID_ARGUMENT");
        assert_eq!(code_name(b"14"), "UNAVAILABLE");
        assert_eq!(code_name(b"99"), "UNKNOWN");
        assert_eq!(code_name(b"x"), "UNKNOWN");
    }
}
