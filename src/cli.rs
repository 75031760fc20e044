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

    /// PostgreSQL URL of the store (never logged); SQLite in `--data-dir`
    /// without it.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Where the embedded SQLite store lives.
    #[arg(long, env = "NASPERF_DATA_DIR", default_value = "./nasperf-data")]
    pub data_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Directory of models (`<dataset>/<metric>.model.txt` + `.manifest.json`),
    /// watched for new versions.
    #[arg(long, env = "NASPERF_MODELS", default_value = "./nasperf-models")]
    pub models: PathBuf,

    /// Address to listen on. Loopback by default: binding other addresses is
    /// a deliberate choice.
    #[arg(long, env = "NASPERF_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

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

    /// Requests served at once over all connections; more wait in line.
    #[arg(long, env = "NASPERF_MAX_CONCURRENT_REQUESTS", default_value_t = 1024)]
    pub max_concurrent_requests: usize,

    /// PostgreSQL for the evaluation store, shared by every replica, e.g.
    /// `postgres://user:pass@db:5432/nasperf`. Never logged. Without it, an
    /// embedded SQLite file in `--data-dir` is used.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Where the embedded SQLite store lives when no database URL is given.
    #[arg(long, env = "NASPERF_DATA_DIR", default_value = "./nasperf-data")]
    pub data_dir: PathBuf,

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

    /// Boosting rounds per model.
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
