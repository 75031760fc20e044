//! `nasperf bench`: the performance suite.
//!
//! These machines are noisy, so no figure stands alone: each is measured
//! beside a baseline in the same run (LightGBM's own predict, the
//! in-process path, a plain COPY, the same load without model swaps) and
//! reported as a ratio to it. Sections:
//! - [`models::retrain`]: retraining time per objective and for all;
//! - [`models::equality`] and [`models::evaluation`]: our evaluator against
//!   LightGBM's, for correctness and speed;
//! - [`grpc::serving`]: latency, throughput and memory over loopback;
//! - [`grpc::hot_reload`]: latency while models are swapped;
//! - [`ingest::run`]: recording into PostgreSQL against COPY.

pub mod grpc;
pub mod ingest;
pub mod models;
pub mod report;
pub mod server;

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

pub use self::report::{Figure, Report};
use crate::{objectives::Objective, train::TrainConfig};

/// What a run measures and how long it spends.
#[derive(Debug, Clone)]
pub struct Options {
    /// The benchmark tables models are trained on and candidates drawn from.
    pub bench_dir: PathBuf,
    /// The `nasperf` binary to run as the server.
    pub exe: PathBuf,
    /// A PostgreSQL URL whose server the ingest benchmark may create
    /// databases on; no ingest section without it.
    pub postgres_admin_url: Option<String>,
    /// A smoke run: few objectives, short budgets.
    pub quick: bool,
    /// Where trained models are kept; a temporary folder when `None`.
    pub models_dir: Option<PathBuf>,
    /// Measure the models in `models_dir` instead of training.
    pub reuse_models: bool,
}

impl Options {
    fn budget(&self) -> Duration {
        if self.quick {
            Duration::from_millis(300)
        } else {
            Duration::from_secs(3)
        }
    }

    fn objectives(&self) -> Vec<Objective> {
        let all = crate::objectives::catalogue();
        if !self.quick {
            return all;
        }
        all.into_iter()
            .filter(|o| QUICK_OBJECTIVES.contains(&o.id.as_str()))
            .collect()
    }

    fn train_config(&self) -> TrainConfig {
        if self.quick {
            TrainConfig::with_rounds(40)
        } else {
            TrainConfig::default()
        }
    }

    fn ingest_rows(&self) -> usize {
        if self.quick { 2_000 } else { 60_000 }
    }
}

/// One accuracy, one robustness and one hardware objective: every kind of
/// table and feature set, in seconds.
const QUICK_OBJECTIVES: [&str; 3] = [
    "cifar10/val_acc_200ep",
    "cifar10/pgd_eps1",
    "cifar10/edgegpu_latency",
];

/// The objectives whose retraining is compared with LightGBM's fit alone:
/// one over the 9,445 canonical networks, one over all 15,625 cells.
const RETRAIN_REFERENCE: [&str; 2] = ["cifar10/val_acc_200ep", "cifar10/edgegpu_latency"];

const BATCH_SIZES: [usize; 3] = [1, 100, 10_000];

/// Runs every section into `report`, which keeps what was measured even
/// when a later section fails. Fails when a section cannot run or a
/// correctness check fails, never on a timing.
pub async fn run(options: &Options, report: &mut Report) -> anyhow::Result<()> {
    let objectives = options.objectives();
    let steps = objectives.len() + 1 + BATCH_SIZES.len() + 6 + 2 + 3;
    let bar = ProgressBar::new(steps as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let scratch = tempfile::tempdir().context("a folder for the trained models")?;
    let models_dir = options
        .models_dir
        .clone()
        .unwrap_or_else(|| scratch.path().to_owned());
    let cores = std::thread::available_parallelism().map_or(1, usize::from);

    if options.reuse_models {
        report.skipped.push(format!(
            "retrain: measuring the models in {}",
            models_dir.display()
        ));
    } else {
        std::fs::create_dir_all(&models_dir)
            .with_context(|| format!("creating {}", models_dir.display()))?;
        let (bench_dir, dir, config, b) = (
            options.bench_dir.clone(),
            models_dir.clone(),
            options.train_config(),
            bar.clone(),
        );
        let reference: Vec<&str> = RETRAIN_REFERENCE
            .into_iter()
            .filter(|id| objectives.iter().any(|o| o.id == *id))
            .collect();
        report.figures.extend(
            tokio::task::spawn_blocking(move || {
                models::retrain(
                    &bench_dir,
                    &objectives,
                    &reference,
                    &config,
                    cores,
                    &dir,
                    &b,
                )
            })
            .await??,
        );
    }

    let (bench_dir, dir, b) = (options.bench_dir.clone(), models_dir.clone(), bar.clone());
    let budget = options.budget();
    let (workload, figures) = tokio::task::spawn_blocking(move || {
        let workload = models::Workload::load(&dir, &bench_dir)?;
        let mut figures = models::equality(&workload, &dir, &b)?;
        b.inc(1);
        figures.extend(models::evaluation(
            &workload,
            &dir,
            &BATCH_SIZES,
            budget,
            &b,
        )?);
        anyhow::Ok((workload, figures))
    })
    .await??;
    report.figures.extend(figures);
    let workload = Arc::new(workload);

    report.figures.extend(
        grpc::serving(
            &options.exe,
            &models_dir,
            Arc::clone(&workload),
            budget,
            &bar,
        )
        .await?,
    );
    report
        .figures
        .extend(grpc::hot_reload(&options.exe, &models_dir, workload, budget * 2, &bar).await?);

    match &options.postgres_admin_url {
        Some(url) => report.figures.extend(
            ingest::run(
                &options.exe,
                &options.bench_dir,
                url,
                options.ingest_rows(),
                &bar,
            )
            .await?,
        ),
        None => report
            .skipped
            .push("ingest: no PostgreSQL given (--postgres or NASPERF_BENCH_POSTGRES)".to_owned()),
    }
    bar.finish_with_message("done");
    Ok(())
}
