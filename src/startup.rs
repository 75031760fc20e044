//! Wiring a server: listener, registry, health, reflection, middleware and
//! graceful shutdown.

use std::{future::Future, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use tokio::{net::TcpListener, sync::watch};
use tonic::transport::Server;
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    predict::Limits,
    proto::v1::models_server::ModelsServer,
    proto::{self, v1::predictor_server::PredictorServer},
    registry::Registry,
    registry::store_sync,
    retrain::{
        self, RetrainConfig, Scope,
        schedule::{self, Schedule},
    },
    service::PredictorService,
    service::models::ModelsService,
    service::store::StoreService,
    space::SearchSpaces,
    store::DEFAULT_STUDY,
    store::{DatabaseUrl, Store, StoreHandle},
};

/// The health service name of the predictor (`grpc.health.v1`).
pub const PREDICTOR_HEALTH_NAME: &str = "nasperf.v1.Predictor";
/// The health service name of the evaluation store: NOT_SERVING while the
/// database is unreachable, without making predictions unready.
pub const STORE_HEALTH_NAME: &str = "nasperf.v1.Store";

/// PEM files for TLS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Require client certificates signed by this CA (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    /// Reads the files into tonic's (rustls) server configuration.
    pub fn server_config(&self) -> anyhow::Result<tonic::transport::ServerTlsConfig> {
        use tonic::transport::{Certificate, Identity, ServerTlsConfig};
        let read = |path: &PathBuf, what: &str| {
            std::fs::read(path)
                .with_context(|| format!("reading the TLS {what} {}", path.display()))
        };
        let identity =
            Identity::from_pem(read(&self.cert, "certificate")?, read(&self.key, "key")?);
        let mut config = ServerTlsConfig::new().identity(identity);
        if let Some(ca) = &self.client_ca {
            config = config.client_ca_root(Certificate::from_pem(read(ca, "client CA")?));
        }
        Ok(config)
    }
}

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    /// Where Prometheus scrapes `/metrics`; `None`: no metrics port.
    pub metrics_listen: Option<SocketAddr>,
    /// Pooled PostgreSQL connections.
    pub database_max_connections: u32,
    /// Where bearer tokens come from; none configured: no authentication
    /// (allowed on loopback, or with `allow_unauthenticated`).
    pub tokens: crate::auth::TokenSources,
    pub allow_unauthenticated: bool,
    /// Serve over TLS (rustls); `None`: plaintext.
    pub tls: Option<TlsFiles>,
    /// Serve this model directory (read-only, watched). `None`: serve the
    /// versions in the store, retrained by the server.
    pub models_dir: Option<PathBuf>,
    /// Benchmark tables to import into the default study and train on
    /// before reporting ready, once per store (store mode only).
    pub bench: Option<PathBuf>,
    /// How retraining trains and judges (store mode only).
    pub retrain: RetrainConfig,
    /// When the server retrains on its own (store mode only).
    pub schedule: Schedule,
    /// How often the store is checked for new serving versions when no
    /// notification came (PostgreSQL notifications, or this process's own
    /// promotions, are picked up at once).
    pub model_poll_interval: Duration,
    pub reload_interval: Duration,
    pub limits: Limits,
    pub request_timeout: Duration,
    /// The largest request the server decodes.
    pub max_request_bytes: usize,
    /// How long in-flight calls may run after SIGTERM before the server exits.
    pub shutdown_grace: Duration,
    /// Concurrent requests per connection; more wait.
    pub concurrency_per_connection: usize,
    /// Concurrent requests over all connections; more wait, so that a burst
    /// from many workers queues instead of exhausting memory.
    pub max_concurrent_requests: usize,
    /// PostgreSQL for the evaluation store; `None` uses SQLite in `data_dir`.
    pub database_url: Option<DatabaseUrl>,
    /// Where the embedded SQLite store lives.
    pub data_dir: PathBuf,
}

impl ServeConfig {
    /// Serves the model directory `models_dir`.
    pub fn new(listen: SocketAddr, models_dir: impl Into<PathBuf>) -> Self {
        Self {
            models_dir: Some(models_dir.into()),
            ..Self::store_backed(listen)
        }
    }

    /// Serves the versions in the evaluation store.
    pub fn store_backed(listen: SocketAddr) -> Self {
        Self {
            listen,
            metrics_listen: None,
            database_max_connections: crate::store::DEFAULT_POSTGRES_CONNECTIONS,
            tokens: crate::auth::TokenSources::default(),
            allow_unauthenticated: false,
            tls: None,
            models_dir: None,
            bench: None,
            retrain: RetrainConfig::default(),
            schedule: Schedule::default(),
            model_poll_interval: Duration::from_secs(5),
            reload_interval: Duration::from_secs(1),
            limits: Limits::default(),
            request_timeout: Duration::from_secs(30),
            max_request_bytes: 16 * 1024 * 1024,
            shutdown_grace: Duration::from_secs(25),
            concurrency_per_connection: 256,
            max_concurrent_requests: 1024,
            database_url: None,
            data_dir: PathBuf::from("./nasperf-data"),
        }
    }
}

/// A bound, not yet running server.
pub struct Application {
    auth: crate::auth::Authenticator,
    tls: Option<tonic::transport::ServerTlsConfig>,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    config: ServeConfig,
    registry: Arc<Registry>,
    health: HealthReporter,
    health_service:
        tonic_health::pb::health_server::HealthServer<tonic_health::server::HealthService>,
}

impl Application {
    /// Binds the listener (port 0 picks a free port) and prepares the
    /// registry; models load when the server runs.
    pub async fn build(config: ServeConfig) -> anyhow::Result<Self> {
        let auth = authenticator(&config)?;
        let tls = config
            .tls
            .as_ref()
            .map(TlsFiles::server_config)
            .transpose()?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(crate::metrics::bind(addr).await?),
            None => None,
        };
        let registry = Arc::new(match &config.models_dir {
            Some(dir) => Registry::new(dir, SearchSpaces::builtin()),
            None => Registry::for_store(SearchSpaces::builtin()),
        });
        let health = HealthReporter::new();
        let health_service = tonic_health::pb::health_server::HealthServer::new(
            tonic_health::server::HealthService::from_health_reporter(health.clone()),
        );
        Ok(Self {
            auth,
            tls,
            listener,
            metrics_listener,
            config,
            registry,
            health,
            health_service,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.listen)
    }

    /// Where `/metrics` is served, if it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// Serves until `shutdown` resolves, then reports NOT_SERVING, stops
    /// accepting, and waits up to the grace period for in-flight calls.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            auth,
            tls,
            listener,
            metrics_listener,
            config,
            registry,
            health,
            health_service,
        } = self;
        health
            .set_service_status(PREDICTOR_HEALTH_NAME, ServingStatus::NotServing)
            .await;

        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .context("building the reflection service")?;
        let store = StoreHandle::default();
        health
            .set_service_status(STORE_HEALTH_NAME, ServingStatus::NotServing)
            .await;
        let connector = tokio::spawn(connect_store(
            store.clone(),
            config.database_url.clone(),
            config.data_dir.clone(),
            config.database_max_connections,
            health.clone(),
        ));
        let store_service = crate::proto::v1::store_server::StoreServer::new(StoreService::new(
            store.clone(),
            config.limits.max_batch,
        ))
        .max_decoding_message_size(config.max_request_bytes)
        .max_encoding_message_size(config.limits.max_response_bytes + 64 * 1024);
        let predictor = PredictorServer::new(PredictorService::new(
            Arc::clone(&registry),
            SearchSpaces::builtin(),
            config.limits,
            store.clone(),
        ))
        .max_decoding_message_size(config.max_request_bytes)
        .max_encoding_message_size(config.limits.max_response_bytes + 64 * 1024);

        let models_service = ModelsServer::new(ModelsService::new(
            store.clone(),
            config.models_dir.is_none().then(|| config.retrain.clone()),
        ));
        let (stop_tx, stop_rx) = watch::channel(false);
        // A failure that makes serving pointless (tables that cannot be
        // imported) stops the server with that error.
        let (fatal_tx, fatal_rx) = tokio::sync::oneshot::channel::<anyhow::Error>();
        let loader = spawn_model_loading(&config, &registry, &store, &health, &stop_rx, fatal_tx);
        let token_watch = tokio::spawn(auth.clone().watch(
            config.tokens.clone(),
            Duration::from_secs(2),
            stop_rx.clone(),
        ));
        let metrics_server = metrics_listener.map(|listener| {
            tracing::info!(addr = ?listener.local_addr().ok(), "metrics at /metrics");
            tokio::spawn(crate::metrics::serve(
                listener,
                Arc::clone(&registry),
                store.clone(),
                stop_rx.clone(),
            ))
        });
        let (drain_tx, drain_rx) = tokio::sync::oneshot::channel::<()>();
        let shutdown_health = health.clone();
        let (fatal_seen_tx, mut fatal_seen_rx) = tokio::sync::oneshot::channel::<anyhow::Error>();
        let signal = async move {
            let fatal = tokio::select! {
                _ = shutdown => None,
                Ok(e) = fatal_rx => Some(e),
            };
            if let Some(e) = fatal {
                let _ = fatal_seen_tx.send(e);
            }
            tracing::info!(
                "shutdown requested: reporting NOT_SERVING and draining in-flight calls"
            );
            shutdown_health
                .set_service_status("", ServingStatus::NotServing)
                .await;
            for name in [PREDICTOR_HEALTH_NAME, STORE_HEALTH_NAME] {
                shutdown_health
                    .set_service_status(name, ServingStatus::NotServing)
                    .await;
            }
            let _ = stop_tx.send(true);
            let _ = drain_tx.send(());
        };

        let addr = listener.local_addr()?;
        match &config.models_dir {
            Some(dir) => tracing::info!(%addr, models = %dir.display(), "nasperf listening"),
            None => tracing::info!(%addr, models = "the evaluation store", "nasperf listening"),
        }
        // Calls beyond the limits are answered at once (RESOURCE_EXHAUSTED,
        // DEADLINE_EXCEEDED), never queued; a connection may open at most
        // `concurrency_per_connection` streams (HTTP/2 tells the client).
        let mut builder = Server::builder();
        if let Some(tls) = tls {
            builder = builder
                .tls_config(tls)
                .context("the TLS certificate or key is not valid PEM")?;
        }
        let server = builder
            .max_concurrent_streams(
                u32::try_from(config.concurrency_per_connection).unwrap_or(u32::MAX),
            )
            .layer(
                tower::ServiceBuilder::new()
                    .layer(crate::metrics::RpcMetricsLayer)
                    .layer(crate::auth::AuthLayer::new(auth.clone()))
                    .layer(crate::shedding::LoadShedLayer::new(
                        config.max_concurrent_requests,
                        config.request_timeout,
                    )),
            )
            .trace_fn(|request| tracing::info_span!("grpc", method = %request.uri().path()))
            .add_service(health_service)
            .add_service(reflection)
            .add_service(predictor)
            .add_service(store_service)
            .add_service(models_service)
            // TCP_NODELAY: a response written in more than one segment
            // (headers, a message of a few kilobytes, trailers) otherwise
            // waits for the client's delayed ACK, 40 ms on Linux. Seen in
            // `nasperf bench`: one candidate x 74 objectives took 50 ms over
            // loopback for 9 ms of work.
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                signal,
            );
        let mut server = tokio::spawn(server);

        // Wait for the signal, then give in-flight calls the grace period.
        tokio::select! {
            result = &mut server => {
                result.context("server task")?.context("server")?;
            }
            _ = drain_rx => {
                match tokio::time::timeout(config.shutdown_grace, &mut server).await {
                    Ok(result) => result.context("server task")?.context("server")?,
                    Err(_) => {
                        tracing::warn!(grace = ?config.shutdown_grace, "grace period over; closing remaining calls");
                        server.abort();
                    }
                }
            }
        }
        for task in loader
            .into_iter()
            .chain(metrics_server)
            .chain(std::iter::once(token_watch))
        {
            task.abort();
        }
        connector.abort();
        if let Ok(e) = fatal_seen_rx.try_recv() {
            return Err(e);
        }
        tracing::info!("nasperf stopped");
        Ok(())
    }
}

/// The tokens in force, or none; refuses to serve a non-loopback address
/// unauthenticated unless told to.
fn authenticator(config: &ServeConfig) -> anyhow::Result<crate::auth::Authenticator> {
    if config.tokens.is_configured() {
        let tokens = config.tokens.load().context("loading tokens")?;
        if tokens.is_empty() {
            anyhow::bail!("the token sources hold no token; every call would be refused");
        }
        tracing::info!(tokens = tokens.len(), "bearer tokens required");
        return Ok(crate::auth::Authenticator::with_tokens(tokens));
    }
    if !config.listen.ip().is_loopback() {
        if !config.allow_unauthenticated {
            anyhow::bail!(
                "refusing to listen on {} without tokens: anyone who reaches it could record \
                 evaluations and retrain models. Give --tokens-file (or NASPERF_TOKENS), or \
                 --allow-unauthenticated",
                config.listen
            );
        }
        let warning = format!(
            "listening on {} WITHOUT authentication (--allow-unauthenticated): anyone who \
             reaches it can record evaluations and retrain models",
            config.listen
        );
        tracing::warn!(addr = %config.listen, "{warning}");
        return Ok(crate::auth::Authenticator::off().with_warning(&warning));
    }
    Ok(crate::auth::Authenticator::off())
}

/// Starts what keeps the registry current, and reports the predictor
/// SERVING after the first load. From a directory: a poll of its
/// manifests. From the store: the benchmark import and first training when
/// asked for, a loader woken by every change of a serving version (and,
/// on PostgreSQL, a listener for other replicas' changes), and the
/// retraining schedule.
fn spawn_model_loading(
    config: &ServeConfig,
    registry: &Arc<Registry>,
    store: &StoreHandle,
    health: &HealthReporter,
    stop: &watch::Receiver<bool>,
    fatal: tokio::sync::oneshot::Sender<anyhow::Error>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let ready = {
        let health = health.clone();
        async move {
            health
                .set_service_status(PREDICTOR_HEALTH_NAME, ServingStatus::Serving)
                .await;
        }
    };
    let Some(dir) = config.models_dir.clone() else {
        let mut tasks = Vec::new();
        if let Some(url) = &config.database_url {
            tasks.push(tokio::spawn(store_sync::listen(
                url.0.clone(),
                store.clone(),
                stop.clone(),
            )));
        }
        let (registry, handle, stop_rx) = (Arc::clone(registry), store.clone(), stop.clone());
        let (bench, retrain, schedule, poll) = (
            config.bench.clone(),
            config.retrain.clone(),
            config.schedule.clone(),
            config.model_poll_interval,
        );
        tasks.push(tokio::spawn(async move {
            if let Some(bench) = bench {
                match prepare_bench(&handle, &bench, &retrain, stop_rx.clone()).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot start");
                        let _ = fatal.send(e);
                        return;
                    }
                }
            }
            // Scheduled retraining starts once the tables are in: during the
            // import it would train on half-imported objectives.
            let scheduled = tokio::spawn(schedule::run(
                handle.clone(),
                retrain,
                schedule,
                stop_rx.clone(),
            ));
            store_sync::watch_store(registry, handle, poll, stop_rx, ready).await;
            scheduled.abort();
        }));
        return tasks;
    };
    let registry = Arc::clone(registry);
    let interval = config.reload_interval;
    let stop = stop.clone();
    vec![tokio::spawn(async move {
        let r = Arc::clone(&registry);
        match tokio::task::spawn_blocking(move || r.reload()).await {
            Ok(Ok(report)) => tracing::info!(
                models = report.loaded.len(),
                refused = report.refused.len(),
                dir = %dir.display(),
                "initial model load finished"
            ),
            Ok(Err(e)) => {
                tracing::error!(dir = %dir.display(), error = %e, "cannot read the model directory; serving no models until it can")
            }
            Err(e) => tracing::error!(error = %e, "initial model load failed"),
        }
        // A failed initial load of one model is reported in
        // ListObjectives, not a reason to stay unready.
        ready.await;
        registry.watch(interval, stop).await;
    })]
}

/// `serve --bench`: imports the tables into the default study unless this
/// store already holds them, and trains what needs training, before the
/// server reports ready. Returns false if shut down meanwhile, and an
/// error if the tables cannot be imported.
async fn prepare_bench(
    handle: &StoreHandle,
    bench: &std::path::Path,
    config: &RetrainConfig,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<bool> {
    let work = async {
        let store = loop {
            if let Some(s) = handle.get() {
                break s;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        loop {
            match crate::store::import::import_bench_once(&store, bench, DEFAULT_STUDY).await {
                Ok(()) => break,
                // The database went away: worth waiting for.
                Err(crate::store::import::ImportError::Store(e)) if e.is_unavailable() => {
                    tracing::error!(error = %e, "cannot import the benchmark tables; retrying in 10 s");
                    tokio::time::sleep(Duration::from_secs(10)).await;
                }
                // The tables are wrong: retrying changes nothing.
                Err(e) => {
                    return Err(anyhow::anyhow!(
                        "importing the benchmark tables in {}: {e}",
                        bench.display()
                    ));
                }
            }
        }
        // What has no training attempt yet, or new evaluations since: on a
        // second start, one grouped count and nothing to train.
        let scope = Scope {
            study: DEFAULT_STUDY.to_owned(),
            min_new_evaluations: Some(1),
            ..Scope::default()
        };
        loop {
            match retrain::retrain(&store, config, &scope).await {
                Ok(reports) => {
                    let promoted = reports
                        .iter()
                        .filter(|r| matches!(r.outcome, retrain::Outcome::Promoted { .. }))
                        .count();
                    tracing::info!(
                        objectives = reports.len(),
                        promoted,
                        "benchmark models ready"
                    );
                    return Ok(());
                }
                Err(retrain::RetrainError::Busy) => {
                    tracing::info!("another replica is training on the tables; waiting for it");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "training on the benchmark tables failed; retrying in 10 s");
                    tokio::time::sleep(Duration::from_secs(10)).await;
                }
            }
        }
    };
    tokio::select! {
        r = work => r.map(|()| true),
        _ = stop.changed() => Ok(false),
    }
}

/// Opens the store, retrying with backoff while the database is
/// unreachable, then keeps its health current by pinging it every second.
/// Predictions never wait for it.
async fn connect_store(
    handle: StoreHandle,
    url: Option<DatabaseUrl>,
    data_dir: PathBuf,
    postgres_connections: u32,
    health: HealthReporter,
) {
    let mut delay = Duration::from_millis(250);
    loop {
        match Store::open_with_pool(
            url.as_ref().map(|u| u.0.as_str()),
            &data_dir,
            postgres_connections,
        )
        .await
        {
            Ok(store) => {
                // The URL is never logged: only which backend serves.
                tracing::info!(backend = ?store.backend(), "evaluation store ready");
                handle.set(store.clone());
                health
                    .set_service_status(STORE_HEALTH_NAME, ServingStatus::Serving)
                    .await;
                watch_store_health(store, health).await;
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, retry_in = ?delay, "cannot open the evaluation store");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Reports NOT_SERVING while the database does not answer, SERVING again
/// once it does; the pool reconnects by itself.
async fn watch_store_health(store: Store, health: HealthReporter) {
    let mut serving = true;
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let answer = tokio::time::timeout(Duration::from_secs(5), store.ping()).await;
        let ok = matches!(answer, Ok(Ok(())));
        if ok == serving {
            continue;
        }
        serving = ok;
        if ok {
            tracing::info!("the evaluation store answers again");
            health
                .set_service_status(STORE_HEALTH_NAME, ServingStatus::Serving)
                .await;
        } else {
            match answer {
                Ok(Err(e)) => tracing::error!(error = %e, "the evaluation store stopped answering"),
                _ => tracing::error!("the evaluation store stopped answering (ping timed out)"),
            }
            health
                .set_service_status(STORE_HEALTH_NAME, ServingStatus::NotServing)
                .await;
        }
    }
}

/// Resolves on SIGTERM (what Kubernetes sends) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
