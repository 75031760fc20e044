//! The gRPC path over loopback, against the in-process path on the same
//! candidates: latency of one candidate, throughput in batches of 1,000
//! (unary and `PredictStream`), latency while models are swapped every
//! second, and the server's resident memory.

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use indicatif::ProgressBar;
use tonic::transport::Channel;

use super::{models::Workload, report::Figure, server::ServerProcess};
use crate::{
    predict::PredictInput,
    proto::v1::{Candidate, PredictRequest, predictor_client::PredictorClient},
};

/// Large batches of this many candidates.
pub const LARGE_BATCH: usize = 1_000;

pub fn to_request(input: &PredictInput) -> PredictRequest {
    PredictRequest {
        candidates: input
            .candidates
            .iter()
            .map(|c| Candidate {
                search_space: c.search_space.clone(),
                arch: c.arch.clone(),
                proxies: c.proxies.clone(),
            })
            .collect(),
        dataset: input.dataset.clone(),
        objectives: input.objectives.clone(),
        request_id: String::new(),
        study: input.study.clone(),
        intervals: input.intervals,
    }
}

/// Latency quantiles of a set of samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantiles {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub samples: usize,
}

impl Quantiles {
    /// Nearest-rank quantiles, in milliseconds.
    pub fn of(mut samples: Vec<Duration>) -> Quantiles {
        samples.sort_unstable();
        let at = |q: f64| {
            if samples.is_empty() {
                return f64::NAN;
            }
            let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            samples[rank - 1].as_secs_f64() * 1e3
        };
        Quantiles {
            p50: at(0.5),
            p99: at(0.99),
            p999: at(0.999),
            samples: samples.len(),
        }
    }
}

/// `concurrency` callers, each sending one of `requests` after the other
/// until `budget` has passed; every call's latency. A failed call is an
/// error: the benchmark never drops one quietly.
async fn call_latencies(
    channel: &Channel,
    concurrency: usize,
    budget: Duration,
    requests: Arc<Vec<PredictRequest>>,
) -> anyhow::Result<Vec<Duration>> {
    let deadline = Instant::now() + budget;
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..concurrency {
        let mut client = PredictorClient::new(channel.clone()).max_decoding_message_size(64 << 20);
        let requests = Arc::clone(&requests);
        tasks.spawn(async move {
            let mut out = Vec::new();
            let mut i = t;
            while Instant::now() < deadline {
                let request = requests[i % requests.len()].clone();
                i += concurrency;
                let started = Instant::now();
                client
                    .predict(request)
                    .await
                    .context("Predict failed under load")?;
                out.push(started.elapsed());
            }
            anyhow::Ok(out)
        });
    }
    let mut all = Vec::new();
    while let Some(done) = tasks.join_next().await {
        all.extend(done??);
    }
    Ok(all)
}

/// In-process latency of the same single-candidate requests, one after
/// the other on one thread: the floor the transport adds to.
fn in_process_latencies(
    workload: &Workload,
    budget: Duration,
    requests: &[PredictInput],
) -> anyhow::Result<Vec<Duration>> {
    let deadline = Instant::now() + budget;
    let mut out = Vec::new();
    let mut i = 0;
    while Instant::now() < deadline || out.len() < 100 {
        let started = Instant::now();
        std::hint::black_box(workload.predict(&requests[i % requests.len()])?);
        out.push(started.elapsed());
        i += 1;
    }
    Ok(out)
}

/// Samples a process's resident memory until stopped; the highest reading.
struct MemorySampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl MemorySampler {
    fn start(pid_rss: impl Fn() -> anyhow::Result<u64> + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let (s, p) = (Arc::clone(&stop), Arc::clone(&peak));
        let task = tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                if let Ok(rss) = pid_rss() {
                    p.fetch_max(rss, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Self { stop, peak, task }
    }

    async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.peak.load(Ordering::Relaxed)
    }
}

const MB: f64 = 1024.0 * 1024.0;

/// Latency, throughput and memory against a server loading `models_dir`.
pub async fn serving(
    exe: &Path,
    models_dir: &Path,
    workload: Arc<Workload>,
    budget: Duration,
    bar: &ProgressBar,
) -> anyhow::Result<Vec<Figure>> {
    let mut figures = Vec::new();
    let n_models = workload.objectives().len();

    bar.set_message("memory: a server with no models");
    let empty = tempfile::tempdir()?;
    let bare = ServerProcess::start(
        exe,
        &["--models".into(), empty.path().display().to_string()],
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let bare_rss = bare.resident_bytes()? as f64 / MB;
    drop(bare);

    let server =
        ServerProcess::start(exe, &["--models".into(), models_dir.display().to_string()]).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_rss = server.resident_bytes()? as f64 / MB;
    figures.push(
        Figure::new(
            "memory",
            format!("idle, {n_models} models loaded"),
            idle_rss,
            "MB",
        )
        .lower_is_better()
        .against("no models", bare_rss)
        .value_target(200.0),
    );
    let pid = server.pid();
    let sampler = MemorySampler::start(move || super::server::resident_bytes(pid));

    // One candidate: for one objective (what a worker asks while screening
    // for one metric) and for every served objective.
    let one = vec![super::models::LATENCY_OBJECTIVE.to_owned()];
    for (label, objectives) in [
        ("1 objective", one),
        (&*format!("{n_models} objectives"), Vec::new()),
    ] {
        let singles: Vec<PredictInput> = (0..512)
            .map(|i| PredictInput {
                objectives: objectives.clone(),
                ..workload.request(i * 7, 1)
            })
            .collect();
        let single_requests = Arc::new(singles.iter().map(to_request).collect::<Vec<_>>());
        bar.set_message(format!("latency: in process, {label}"));
        let w = Arc::clone(&workload);
        let local = Quantiles::of(
            tokio::task::spawn_blocking(move || in_process_latencies(&w, budget, &singles))
                .await??,
        );
        for concurrency in [1, 64] {
            bar.set_message(format!(
                "latency: Predict of one candidate, {label}, concurrency {concurrency}"
            ));
            let q = Quantiles::of(
                call_latencies(
                    &server.channel,
                    concurrency,
                    budget,
                    Arc::clone(&single_requests),
                )
                .await?,
            );
            for (name, ours, floor) in [
                ("p50", q.p50, local.p50),
                ("p99", q.p99, local.p99),
                ("p99.9", q.p999, local.p999),
            ] {
                let figure = Figure::new(
                    "grpc",
                    format!("Predict 1 candidate x {label}, concurrency {concurrency}, {name} ({} calls)", q.samples),
                    ours,
                    "ms",
                )
                .lower_is_better()
                .against("in process, one thread", floor);
                figures.push(if concurrency == 1 && name == "p99" {
                    figure.value_target(1.0)
                } else {
                    figure
                });
            }
            bar.inc(1);
        }
    }

    // Throughput in batches of 1,000.
    let large: Vec<PredictInput> = (0..8)
        .map(|i| workload.request(i * LARGE_BATCH, LARGE_BATCH))
        .collect();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    bar.set_message("throughput: in process");
    let w = Arc::clone(&workload);
    let local_large = large.clone();
    let local_rate =
        tokio::task::spawn_blocking(move || in_process_rate(&w, &local_large, cores, budget))
            .await??;
    let large_requests = Arc::new(large.iter().map(to_request).collect::<Vec<_>>());
    bar.set_message("throughput: Predict, batches of 1,000");
    let started = Instant::now();
    let calls = call_latencies(&server.channel, cores, budget, Arc::clone(&large_requests)).await?;
    let unary = (calls.len() * LARGE_BATCH * n_models) as f64 / started.elapsed().as_secs_f64();
    figures.push(
        Figure::new(
            "grpc",
            format!("Predict, batches of {LARGE_BATCH}, {cores} in flight"),
            unary,
            "predictions/s",
        )
        .against(format!("in process, {cores} threads"), local_rate)
        .ratio_target(0.8),
    );
    bar.inc(1);
    bar.set_message("throughput: PredictStream, batches of 1,000");
    let streamed = stream_rate(&server.channel, &large_requests, budget).await? * n_models as f64;
    figures.push(
        Figure::new(
            "grpc",
            format!("PredictStream, batches of {LARGE_BATCH}"),
            streamed,
            "predictions/s",
        )
        .against(format!("in process, {cores} threads"), local_rate)
        .ratio_target(0.8),
    );
    bar.inc(1);

    let peak = sampler.finish().await as f64 / MB;
    figures.push(
        Figure::new("memory", "peak under the gRPC load", peak, "MB")
            .lower_is_better()
            .against("idle", idle_rss)
            .value_target(200.0),
    );
    Ok(figures)
}

/// Candidates per second of the in-process path on `threads` threads.
fn in_process_rate(
    workload: &Workload,
    requests: &[PredictInput],
    threads: usize,
    budget: Duration,
) -> anyhow::Result<f64> {
    let n_models = workload.objectives().len();
    let started = Instant::now();
    let done = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut items = 0;
                    let mut i = t;
                    while started.elapsed() < budget {
                        let input = &requests[i % requests.len()];
                        i += threads;
                        items += workload.predict(input)?.predictions.len() * n_models;
                    }
                    anyhow::Ok(items)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a benchmark thread panicked"))?
            })
            .sum::<anyhow::Result<usize>>()
    })?;
    Ok(done as f64 / started.elapsed().as_secs_f64())
}

/// Candidates per second through one `PredictStream`, requests sent as
/// fast as flow control lets them.
async fn stream_rate(
    channel: &Channel,
    requests: &[PredictRequest],
    budget: Duration,
) -> anyhow::Result<f64> {
    let mut client = PredictorClient::new(channel.clone()).max_decoding_message_size(64 << 20);
    // A small queue: the client stays a few requests ahead, no more.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let outgoing = requests.to_vec();
    let sender = tokio::spawn(async move {
        for request in outgoing.iter().cycle() {
            if tx.send(request.clone()).await.is_err() {
                break;
            }
        }
    });
    let mut responses = client
        .predict_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .context("opening PredictStream")?
        .into_inner();
    let started = Instant::now();
    let mut candidates = 0;
    while started.elapsed() < budget {
        match responses
            .message()
            .await
            .context("PredictStream failed under load")?
        {
            Some(r) => candidates += r.predictions.len(),
            None => bail!("PredictStream ended early"),
        }
    }
    let rate = candidates as f64 / started.elapsed().as_secs_f64();
    sender.abort();
    Ok(rate)
}

/// p99 of single-candidate Predict while one model, then every model, is
/// swapped each second, against the same load without swaps; every call
/// must succeed.
pub async fn hot_reload(
    exe: &Path,
    models_dir: &Path,
    workload: Arc<Workload>,
    budget: Duration,
    bar: &ProgressBar,
) -> anyhow::Result<Vec<Figure>> {
    // A copy the benchmark may rewrite.
    let dir = tempfile::tempdir()?;
    copy_tree(models_dir, dir.path())?;
    let server = ServerProcess::start(
        exe,
        &[
            "--models".into(),
            dir.path().display().to_string(),
            "--reload-interval".into(),
            "100ms".into(),
        ],
    )
    .await?;
    let requests = Arc::new(
        (0..512)
            .map(|i| to_request(&workload.request(i * 11, 1)))
            .collect::<Vec<_>>(),
    );
    const CONCURRENCY: usize = 4;
    bar.set_message("hot reload: load without swaps");
    let calm = Quantiles::of(
        call_latencies(&server.channel, CONCURRENCY, budget, Arc::clone(&requests)).await?,
    );

    let mut figures = Vec::new();
    for (label, swapped_per_second) in [("one model", Some(1)), ("every model", None)] {
        bar.set_message(format!(
            "hot reload: the same load, {label} swapped each second"
        ));
        let stop = Arc::new(AtomicBool::new(false));
        let swapper = {
            let (stop, root) = (Arc::clone(&stop), dir.path().to_owned());
            tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
                let mut swaps = 0;
                while !stop.load(Ordering::Relaxed) {
                    swaps += swap_versions(&root, swaps, swapped_per_second)?;
                    std::thread::sleep(Duration::from_secs(1));
                }
                Ok(swaps)
            })
        };
        let swapping =
            call_latencies(&server.channel, CONCURRENCY, budget, Arc::clone(&requests)).await;
        stop.store(true, Ordering::Relaxed);
        let swaps = swapper.await??;
        let swapping = Quantiles::of(swapping?);
        figures.push(
            Figure::new(
                "hot reload",
                format!(
                    "p99, Predict of 1 candidate, concurrency {CONCURRENCY}, {label} swapped each second: {swaps} swaps ({} calls, none failed)",
                    swapping.samples
                ),
                swapping.p99,
                "ms",
            )
            .lower_is_better()
            .against(format!("same load, no swaps ({} calls)", calm.samples), calm.p99)
            .ratio_target(1.1),
        );
        bar.inc(1);
    }
    // Wait for the last swap to load, then check the server served the new
    // versions, not ignored them.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let served = PredictorClient::new(server.channel.clone())
        .predict(requests[0].clone())
        .await?
        .into_inner();
    if !served
        .objectives
        .iter()
        .all(|o| o.model_version.contains("-swap"))
    {
        bail!("the server did not pick up the swapped versions");
    }
    Ok(figures)
}

/// Gives `limit` manifests under `root` (every one when `None`), taken in
/// turn, a new version (same model text): the server reloads, validates
/// and swaps each one as it would a retrained model. Returns how many it
/// rewrote.
fn swap_versions(root: &Path, round: u64, limit: Option<usize>) -> anyhow::Result<u64> {
    let manifests: Vec<_> = crate::registry::find_manifests(root)?
        .into_values()
        .collect();
    let take = limit.unwrap_or(manifests.len()).min(manifests.len());
    let start = if manifests.is_empty() {
        0
    } else {
        round as usize % manifests.len()
    };
    let mut swapped = 0;
    for path in manifests.iter().cycle().skip(start).take(take) {
        let text = std::fs::read_to_string(path)?;
        let mut manifest: crate::model::Manifest = serde_json::from_str(&text)?;
        let base = manifest
            .version
            .split("-swap")
            .next()
            .unwrap_or_default()
            .to_owned();
        manifest.version = format!("{base}-swap{round}");
        crate::train::write_atomic(path, serde_json::to_string_pretty(&manifest)?.as_bytes())?;
        swapped += 1;
    }
    Ok(swapped)
}

fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&target)?;
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
