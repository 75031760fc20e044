//! Spawning a real server on 127.0.0.1:0 with real models trained from the
//! benchmark tables, and calling it through the generated client.

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
    time::Duration,
};

use nasperf::{
    objectives::catalogue,
    predict::Limits,
    proto::v1::{Candidate, Evaluation, PredictRequest, predictor_client::PredictorClient},
    startup::{Application, ServeConfig},
    train::{
        TrainConfig, TrainedModel, load_all_proxies, proxy_source, train_objective, write_model,
    },
};
use tonic::transport::Channel;

#[path = "../common/mod.rs"]
mod common;
pub use common::{Network, ServerProcess, TestDatabase, benchdata, networks};

/// Objectives the API tests serve: one of each kind, one without proxies.
pub const OBJECTIVES: [&str; 4] = [
    "cifar10/val_acc_200ep",
    "cifar10/edgegpu_latency",
    "cifar10/pgd_eps1",
    "cifar100/test_acc_200ep",
];

pub const BEST_CELL: &str = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|";

/// Models trained once per test binary (small, for speed), by objective.
pub fn fixture_models() -> &'static Vec<TrainedModel> {
    static MODELS: OnceLock<Vec<TrainedModel>> = OnceLock::new();
    MODELS.get_or_init(|| train_fixture(300, 7))
}

/// A second, different version of `cifar10/val_acc_200ep`.
pub fn alternative_val_acc_model() -> &'static TrainedModel {
    static MODEL: OnceLock<TrainedModel> = OnceLock::new();
    MODEL.get_or_init(|| {
        let config = TrainConfig {
            seed: 99,
            ..TrainConfig::with_rounds(40)
        };
        let dir = benchdata();
        let proxies = load_all_proxies(&dir).expect("proxy tables");
        let obj = catalogue()
            .into_iter()
            .find(|o| o.id == OBJECTIVES[0])
            .expect("objective");
        train_objective(&dir, &obj, proxy_source(&obj, &proxies), &config).expect("training")
    })
}

fn train_fixture(iterations: u32, seed: u64) -> Vec<TrainedModel> {
    let dir = benchdata();
    let proxies = load_all_proxies(&dir).expect("proxy tables");
    let config = TrainConfig {
        seed,
        ..TrainConfig::with_rounds(iterations)
    };
    OBJECTIVES
        .iter()
        .map(|id| {
            let obj = catalogue()
                .into_iter()
                .find(|o| &o.id == id)
                .expect("objective");
            train_objective(&dir, &obj, proxy_source(&obj, &proxies), &config).expect("training")
        })
        .collect()
}

pub struct TestApp {
    addr: std::net::SocketAddr,
    /// Where `/metrics` is served, when the test asked for it.
    pub metrics_addr: Option<std::net::SocketAddr>,
    pub models_dir: tempfile::TempDir,
    _data_dir: tempfile::TempDir,
    pub client: PredictorClient<Channel>,
    pub channel: Channel,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// The address the server listens on.
    pub fn channel_addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    pub fn models_path(&self) -> &Path {
        self.models_dir.path()
    }

    /// Stops the server as SIGTERM would and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task")
                .expect("server exits cleanly");
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A fresh model directory holding the fixture models.
pub async fn fixture_models_dir() -> tempfile::TempDir {
    let models = tokio::task::spawn_blocking(fixture_models)
        .await
        .expect("fixture");
    let models_dir = tempfile::tempdir().expect("temp dir");
    for m in models {
        write_model(models_dir.path(), m).expect("write model");
    }
    models_dir
}

/// Starts a server over a fresh copy of the fixture models, waits until it
/// has loaded them, and connects a client.
pub async fn spawn_app_with(configure: impl FnOnce(&mut ServeConfig)) -> TestApp {
    let models_dir = fixture_models_dir().await;
    let mut config = ServeConfig::new("127.0.0.1:0".parse().expect("addr"), models_dir.path());
    config.reload_interval = Duration::from_millis(20);
    // The embedded store, in this test's own folder.
    let data_dir = tempfile::tempdir().expect("temp dir");
    config.data_dir = data_dir.path().to_owned();
    config.limits = Limits::default();
    configure(&mut config);
    let embedded_store = config.database_url.is_none();
    let app = Application::build(config).await.expect("build");
    let addr = app.local_addr();
    let metrics_addr = app.metrics_addr();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = rx.await;
    }));
    // Ready as Kubernetes would see it: the predictor reports SERVING once
    // the initial model load has finished. Generous: a `--bench` start
    // imports and trains before it is ready.
    let channel = common::connect_when_ready(&addr.to_string(), Duration::from_secs(300)).await;
    // The store connects after the predictor is ready (predictions do not
    // wait for it). The embedded one always connects: wait for it, so that
    // a test's first store call does not race it on a busy machine (seen in
    // CI with a soak on the same cores: UNAVAILABLE "not connected yet").
    if embedded_store {
        common::wait_until_serving(
            &channel,
            nasperf::startup::STORE_HEALTH_NAME,
            Duration::from_secs(60),
        )
        .await;
    }
    TestApp {
        addr,
        metrics_addr,
        models_dir,
        _data_dir: data_dir,
        client: PredictorClient::new(channel.clone()),
        channel,
        shutdown: Some(tx),
        server: Some(server),
    }
}

pub fn candidate(arch: &str) -> Candidate {
    Candidate {
        search_space: "nb201".to_owned(),
        arch: arch.to_owned(),
        proxies: Default::default(),
    }
}

pub fn request(candidates: Vec<Candidate>, objectives: &[&str]) -> PredictRequest {
    PredictRequest {
        candidates,
        dataset: String::new(),
        objectives: objectives.iter().map(|s| (*s).to_owned()).collect(),
        request_id: String::new(),
        study: String::new(),
        intervals: false,
    }
}

pub fn manifest_path_of(dir: &Path, objective: &str) -> PathBuf {
    nasperf::model::manifest_path(dir, objective)
}

/// The op codes of NB201 cell `n` (modulo 15,625) in op-code order: a
/// cheap way to spread test rows over many architectures.
pub fn nb201_cell(n: usize) -> String {
    nasperf::space::nb201::cell::Cell::all()
        .nth(n % 15_625)
        .map(|c| c.to_op_codes())
        .unwrap_or_default()
}

/// A measurement of `BEST_CELL` on the first objective, in the default
/// study, under `key`.
pub fn best_cell_evaluation(key: &str, value: f64) -> Evaluation {
    Evaluation {
        search_space: "nb201".to_owned(),
        arch: BEST_CELL.to_owned(),
        objective: OBJECTIVES[0].to_owned(),
        value,
        idempotency_key: key.to_owned(),
        ..Default::default()
    }
}
