//! The command line. Every option can also come from the environment.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

use crate::telemetry::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "nasperf",
    version,
    about = "Performance prediction for neural architecture search"
)]
pub struct Cli {
    /// Log format: `text` for people, `json` for log collectors.
    #[arg(
        long,
        env = "NASPERF_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve predictions over gRPC from the models in a directory.
    Serve(ServeArgs),
    /// Train one model per objective from benchmark tables.
    Train(TrainArgs),
    /// Ask a running server for predictions and print a table.
    Predict(PredictArgs),
    /// List the objectives nasperf knows.
    Objectives(ObjectivesArgs),
    /// Load benchmark tables into the evaluation store (twice changes nothing).
    Import(ImportArgs),
    /// Retrain from the evaluation store once, through the quality gate.
    Retrain(RetrainArgs),
    /// List, export or import the model versions in the evaluation store.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Measure every hot path beside its baseline from the same run
    /// (docs/performance.md).
    Bench(BenchArgs),
    /// Measure prediction quality on the benchmark tables beside reference
    /// predictors run on the same splits (docs/quality.md).
    Eval(EvalArgs),
}

/// Where the evaluation store is.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// PostgreSQL URL of the store (never logged); SQLite in `--data-dir`
    /// without it.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Where the embedded SQLite store lives.
    #[arg(long, env = "NASPERF_DATA_DIR", default_value = "./nasperf-data")]
    pub data_dir: PathBuf,

    /// Pooled PostgreSQL connections per process (a `serve` replica uses
    /// up to this plus 2; keep replicas x that under the server's
    /// max_connections).
    #[arg(long, env = "NASPERF_DATABASE_MAX_CONNECTIONS", default_value_t = crate::store::DEFAULT_POSTGRES_CONNECTIONS)]
    pub database_max_connections: u32,
}

/// How retraining trains and judges.
#[derive(Debug, Clone, Args)]
pub struct RetrainOptions {
    /// A new version is promoted unless its held-out Kendall tau is lower
    /// than the serving version's by more than this.
    #[arg(long, env = "NASPERF_RETRAIN_TOLERANCE", default_value_t = 0.01)]
    pub retrain_tolerance: f64,

    /// Fewer training rows than this: nothing is trained.
    #[arg(long, env = "NASPERF_RETRAIN_MIN_ROWS", default_value_t = 20)]
    pub retrain_min_rows: usize,

    /// Fewer held-out rows than this: nothing is trained (the gate would
    /// judge on noise). A fifth of the rows is held out.
    #[arg(long, env = "NASPERF_RETRAIN_MIN_HELDOUT", default_value_t = 10)]
    pub retrain_min_heldout: usize,

    /// Rounds of the recipe's largest booster per retrained model; the
    /// other candidates' rounds scale with it (600 is the recipe as
    /// measured in docs/quality.md).
    #[arg(long, env = "NASPERF_RETRAIN_ITERATIONS", default_value_t = 600)]
    pub retrain_iterations: u32,

    /// Objectives trained in parallel.
    #[arg(long, env = "NASPERF_RETRAIN_JOBS", default_value_t = std::thread::available_parallelism().map_or(1, |n| n.get()))]
    pub retrain_jobs: usize,
}

#[derive(Debug, Args)]
pub struct RetrainArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    #[command(flatten)]
    pub options: RetrainOptions,

    /// Only this study; every study by default.
    #[arg(long, default_value = "")]
    pub study: String,

    /// Only these objective IDs (repeatable); every objective with
    /// evaluations by default.
    #[arg(long = "objective")]
    pub objectives: Vec<String>,

    /// Train even when the data did not change since the last attempt.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Every version per study and objective, with status and figures.
    List(ModelsListArgs),
    /// Write a study's serving versions as a model directory (the format
    /// `serve --models DIR` and `train --out DIR` use).
    Export(ModelsExportArgs),
    /// Load a model directory into a study; its versions serve at once.
    Import(ModelsImportArgs),
}

#[derive(Debug, Args)]
pub struct ModelsListArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Only this study.
    #[arg(long, default_value = "")]
    pub study: String,
    /// Only this objective.
    #[arg(long, default_value = "")]
    pub objective: String,
}

#[derive(Debug, Args)]
pub struct ModelsExportArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The study whose serving versions are written.
    #[arg(long, default_value = "default")]
    pub study: String,
    /// The directory to write.
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct ModelsImportArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The study the versions are for; created if missing.
    #[arg(long, default_value = "default")]
    pub study: String,
    /// Pin the imported versions, so that retraining does not replace them.
    #[arg(long)]
    pub pin: bool,
    /// The model directory to read.
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Directory of benchmark tables, as for `nasperf train`.
    #[arg(long, env = "NASPERF_BENCHDATA")]
    pub bench: PathBuf,

    /// The study to import into; created if missing.
    #[arg(long, default_value = "default")]
    pub study: String,

    /// Import only these objective IDs (repeatable); all by default.
    #[arg(long = "objective")]
    pub objectives: Vec<String>,

    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Serve this model directory (`<dataset>/<metric>.manifest.json` and
    /// the model text it names), read-only and watched for new versions,
    /// instead of the versions in the store. No retraining then.
    #[arg(long, env = "NASPERF_MODELS")]
    pub models: Option<PathBuf>,

    /// Benchmark tables to import into the default study and train on
    /// before reporting ready; done once per store, a second start reuses
    /// what it stored.
    #[arg(long, env = "NASPERF_SERVE_BENCH", conflicts_with = "models")]
    pub bench: Option<PathBuf>,

    /// Retrain every study and objective whose data changed this often
    /// (`0s`: never on a timer).
    #[arg(long, env = "NASPERF_RETRAIN_INTERVAL", default_value = "30m", value_parser = humantime::parse_duration)]
    pub retrain_interval: Duration,

    /// Retrain a study and objective once it has this many evaluations
    /// newer than its last training (0: never on a count).
    #[arg(long, env = "NASPERF_RETRAIN_AFTER", default_value_t = 100)]
    pub retrain_after: i64,

    /// How often the count of new evaluations is checked.
    #[arg(long, env = "NASPERF_RETRAIN_CHECK_EVERY", default_value = "2s", value_parser = humantime::parse_duration)]
    pub retrain_check_every: Duration,

    #[command(flatten)]
    pub retrain: RetrainOptions,

    /// How often the store is checked for new model versions when no
    /// notification arrives (the fallback after a lost connection).
    #[arg(long, env = "NASPERF_MODEL_POLL_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub model_poll_interval: Duration,

    /// Address to listen on. Loopback by default: binding other addresses is
    /// a deliberate choice.
    #[arg(long, env = "NASPERF_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// Bearer tokens, one `ROLE TOKEN` per line (roles: predict, record,
    /// admin); re-read when the file changes.
    #[arg(long, env = "NASPERF_TOKENS_FILE")]
    pub tokens_file: Option<PathBuf>,

    /// Bearer tokens as `ROLE:TOKEN,ROLE:TOKEN` (never logged).
    #[arg(long, env = "NASPERF_TOKENS", hide_env_values = true)]
    pub tokens: Option<String>,

    /// Listen on a non-loopback address without tokens (anyone who can
    /// reach the port may record evaluations and retrain models).
    #[arg(long, env = "NASPERF_ALLOW_UNAUTHENTICATED")]
    pub allow_unauthenticated: bool,

    /// Serve over TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "NASPERF_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The TLS private key (PEM).
    #[arg(long, env = "NASPERF_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Require client certificates signed by this CA (PEM): mutual TLS.
    #[arg(long, env = "NASPERF_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,

    /// Serve Prometheus metrics at `http://ADDR/metrics` (off unless given).
    #[arg(long, env = "NASPERF_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// How often the model directory is checked for new versions.
    #[arg(long, env = "NASPERF_RELOAD_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub reload_interval: Duration,

    /// Most candidates per request; larger batches are refused with a hint
    /// to split them or to stream.
    #[arg(long, env = "NASPERF_MAX_BATCH", default_value_t = 10_000)]
    pub max_batch: usize,

    /// Requests running longer than this are cancelled (DEADLINE_EXCEEDED).
    #[arg(long, env = "NASPERF_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// Calls in flight at once over all connections; beyond it a call gets
    /// RESOURCE_EXHAUSTED at once (never a queue).
    #[arg(long, env = "NASPERF_MAX_CONCURRENT_REQUESTS", default_value_t = 1024)]
    pub max_concurrent_requests: usize,

    /// The evaluation store: PostgreSQL shared by every replica
    /// (`--database-url`), or SQLite in `--data-dir`.
    #[command(flatten)]
    pub store: StoreArgs,

    /// Largest request message accepted, in bytes.
    #[arg(long, env = "NASPERF_MAX_REQUEST_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_request_bytes: usize,

    /// After SIGTERM, how long in-flight calls may finish before exit. Keep it
    /// below Kubernetes' terminationGracePeriodSeconds.
    #[arg(long, env = "NASPERF_SHUTDOWN_GRACE", default_value = "25s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Directory of benchmark tables, in the layout of NAS-Bench-201 /
    /// NAS-Bench-Suite-Zero / HW-NAS-Bench exports described in the README.
    #[arg(long, env = "NASPERF_BENCHDATA")]
    pub bench: PathBuf,

    /// Where models are written (a running server picks them up).
    #[arg(long, env = "NASPERF_MODELS", default_value = "./nasperf-models")]
    pub out: PathBuf,

    /// Train only these objective IDs (repeatable); all by default.
    #[arg(long = "objective")]
    pub objectives: Vec<String>,

    /// Rounds of the recipe's largest booster; the other candidates'
    /// rounds scale with it (600 is the recipe as measured in
    /// docs/quality.md; fewer trains faster and worse).
    #[arg(long, default_value_t = 600)]
    pub iterations: u32,

    /// Train on the architecture alone, without zero-cost proxies.
    #[arg(long)]
    pub no_proxies: bool,

    /// Parallel training jobs (LightGBM runs one thread per job).
    #[arg(long, default_value_t = std::thread::available_parallelism().map_or(1, |n| n.get()))]
    pub jobs: usize,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The server, e.g. `http://127.0.0.1:50051`.
    #[arg(long, env = "NASPERF_SERVER", default_value = "http://127.0.0.1:50051")]
    pub server: String,

    /// A bearer token with the predict role, when the server requires one.
    #[arg(long, env = "NASPERF_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Trust this CA (PEM) for an `https://` server.
    #[arg(long, env = "NASPERF_TLS_CA")]
    pub tls_ca: Option<PathBuf>,

    /// Present this client certificate (PEM) to a server that requires one.
    #[arg(long, env = "NASPERF_TLS_CLIENT_CERT", requires = "tls_client_key")]
    pub tls_client_cert: Option<PathBuf>,

    /// The client certificate's key (PEM).
    #[arg(long, env = "NASPERF_TLS_CLIENT_KEY", requires = "tls_client_cert")]
    pub tls_client_key: Option<PathBuf>,

    /// An architecture encoding (repeatable).
    #[arg(long = "arch", required = true)]
    pub archs: Vec<String>,

    /// The search space of the encodings.
    #[arg(long, default_value = "nb201")]
    pub search_space: String,

    /// Objective IDs (repeatable); all served objectives by default.
    #[arg(long = "objective")]
    pub objectives: Vec<String>,

    /// Proxy values as `name=value` (repeatable), computed on `--dataset`.
    #[arg(long = "proxy", value_parser = parse_proxy)]
    pub proxies: Vec<(String, f64)>,

    /// The dataset the proxies were computed on.
    #[arg(long, default_value = "")]
    pub dataset: String,

    /// Answer what this study has measured with the measured value.
    #[arg(long, default_value = "")]
    pub study: String,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Benchmark tables to train the measured models on and draw
    /// candidates from.
    #[arg(long, env = "NASPERF_BENCHDATA")]
    pub bench: PathBuf,

    /// A smoke run: three objectives, short measurements (what CI runs;
    /// its timings mean little).
    #[arg(long)]
    pub quick: bool,

    /// Also write the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,

    /// Also write the report as a Markdown table here.
    #[arg(long)]
    pub markdown: Option<PathBuf>,

    /// Keep the models the retraining section trains in this folder
    /// (a temporary one otherwise).
    #[arg(long)]
    pub models: Option<PathBuf>,

    /// Measure the models already in `--models` instead of training them
    /// (no retraining figures then).
    #[arg(long, requires = "models")]
    pub reuse_models: bool,

    /// PostgreSQL URL on whose server the ingest benchmark creates (and
    /// drops) databases of its own; without it, no ingest figures.
    #[arg(long, env = "NASPERF_BENCH_POSTGRES", hide_env_values = true)]
    pub postgres: Option<String>,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Benchmark tables: the networks, their measured values and proxies.
    #[arg(long, env = "NASPERF_BENCHDATA")]
    pub bench: PathBuf,

    /// Objectives to evaluate (repeatable); the six of docs/quality.md by
    /// default.
    #[arg(long = "objective")]
    pub objectives: Vec<String>,

    /// Training-set sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "32,128,1024")]
    pub train_sizes: Vec<usize>,

    /// How many seeds, from --first-seed on: one random split per seed
    /// and train size.
    #[arg(long, default_value_t = 10)]
    pub seeds: u64,

    /// The first seed: other seeds draw other splits, to check on fresh
    /// ones a setting chosen on the report's (0 by default).
    #[arg(long, default_value_t = 0)]
    pub first_seed: u64,

    /// Feature sets our recipe is trained on, comma-separated unions of
    /// graph, proxies and onehot (e.g. `graph+proxies,onehot`); by default
    /// the one served models use.
    #[arg(long, value_delimiter = ',')]
    pub feature_sets: Vec<crate::eval::FeatureSet>,

    /// Feature sets the reference models are run on.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "graph,proxies,onehot,graph+proxies,onehot+proxies"
    )]
    pub reference_feature_sets: Vec<crate::eval::FeatureSet>,

    /// Reference models: random_forest, xgboost, lightgbm.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "random_forest,xgboost,lightgbm"
    )]
    pub reference_models: Vec<String>,

    /// The Python that runs the reference (needs
    /// scripts/reference-requirements.txt).
    #[arg(long, env = "NASPERF_REFERENCE_PYTHON", default_value = "python3")]
    pub reference_python: PathBuf,

    /// The reference runner script.
    #[arg(long, default_value = "scripts/reference_runner.py")]
    pub reference_script: PathBuf,

    #[arg(long, value_delimiter = ',', help = candidates_help())]
    pub candidates: Vec<String>,

    /// Standard errors of its advantage in ordering the out-of-fold rows by
    /// which a choice must beat the default to replace it (the recipe's own
    /// margin by default; 0 takes any choice that orders them better).
    #[arg(long)]
    pub selection_margin: Option<f64>,

    /// The same margin for the family choices (the recipe's own by default).
    #[arg(long)]
    pub family_selection_margin: Option<f64>,

    /// The most training rows the family choices (the same attack at
    /// smaller strengths) are tried on (the recipe's own limit by default).
    #[arg(long)]
    pub family_max_rows: Option<usize>,

    /// The most training rows whose interval is calibrated on a fresh
    /// cross-validation of the chosen option rather than on the residuals
    /// it was chosen by (the recipe's own limit by default).
    #[arg(long)]
    pub fresh_calibration_max_rows: Option<usize>,

    /// The share of training rows on the target's minimum from which the
    /// family choice is the default (the recipe's own by default; above 1,
    /// never by this rule: from 64 rows on, the family is also the default
    /// where the default's out-of-fold order is no better than chance).
    #[arg(long)]
    pub family_default_floor_share: Option<f64>,

    /// Also fit feature sets with proxies as served models are (with the
    /// count of proxies sent as a column), which adds the trees that answer
    /// candidates sent without proxies, and report how those rank the test
    /// networks without their proxies and how often their interval holds.
    #[arg(long)]
    pub without_proxies: bool,

    /// Our side only.
    #[arg(long)]
    pub no_reference: bool,

    /// Worker threads for our side (default: every core).
    #[arg(long)]
    pub jobs: Option<usize>,

    /// Folder for the report: quality.md, quality.json and the figures.
    #[arg(long, default_value = "eval-report")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ObjectivesArgs {
    /// Print the Markdown table of docs/objectives.md.
    #[arg(long)]
    pub markdown: bool,
}

fn parse_proxy(s: &str) -> Result<(String, f64), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("expected name=value, got {s:?}"))?;
    let value = value
        .trim()
        .parse::<f64>()
        .map_err(|_| format!("{value:?} is not a number"))?;
    Ok((name.trim().to_owned(), value))
}

/// The help of `nasperf eval --candidates`, with the candidate names from
/// the recipe itself, so that it cannot fall behind it.
fn candidates_help() -> String {
    let names: Vec<&str> = crate::train::recipe::Candidate::all()
        .iter()
        .map(|c| c.name)
        .collect();
    format!(
        "What the recipe chooses from by inner cross-validation, the default first: \
         candidates ({}) or the mean of several, joined by `+` (forest+boosted_small); \
         the recipe's own list by default. One name fixes the choice.",
        names.join(", ")
    )
}
