//! `nasperf retrain`: one retraining pass over the store, then a table of
//! what happened per study and objective.

use anyhow::bail;
use indicatif::{ProgressBar, ProgressStyle};

use crate::{
    cli::{RetrainArgs, RetrainOptions},
    retrain::{self, Outcome, RetrainConfig, Scope},
    train::TrainConfig,
};

pub fn config(options: &RetrainOptions) -> RetrainConfig {
    RetrainConfig {
        train: TrainConfig::with_rounds(options.retrain_iterations),
        min_training_rows: options.retrain_min_rows,
        min_heldout_rows: options.retrain_min_heldout.max(1),
        tolerance: options.retrain_tolerance,
        jobs: options.retrain_jobs.max(1),
        ..RetrainConfig::default()
    }
}

pub async fn run(args: RetrainArgs) -> anyhow::Result<()> {
    let store = super::open_store(&args.store).await?;
    let scope = Scope {
        study: args.study,
        objectives: args.objectives,
        force: args.force,
        min_new_evaluations: None,
    };
    let spinner = ProgressBar::new_spinner();
    spinner.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} retraining…")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    spinner.enable_steady_tick(std::time::Duration::from_millis(200));
    let result = retrain::retrain(&store, &config(&args.options), &scope).await;
    spinner.finish_and_clear();
    store.close().await;
    let reports = result?;
    if reports.is_empty() {
        println!("nothing to retrain: no evaluations match");
        return Ok(());
    }
    println!(
        "{:<12} {:<36} {:<16} {:>6} {:>6} {:>7} {:>7}  message",
        "study", "objective", "outcome", "train", "held", "tau", "serving"
    );
    let fmt = |t: Option<f64>| t.map_or_else(|| "-".to_owned(), |t| format!("{t:.3}"));
    for r in &reports {
        println!(
            "{:<12} {:<36} {:<16} {:>6} {:>6} {:>7} {:>7}  {}",
            r.study,
            r.objective,
            r.outcome.as_str(),
            r.training_rows,
            r.heldout_rows,
            fmt(r.kendall_tau),
            fmt(r.baseline_kendall_tau),
            r.message
        );
    }
    let failed = reports
        .iter()
        .filter(|r| r.outcome == Outcome::Failed)
        .count();
    if failed > 0 {
        bail!("{failed} objectives failed to retrain");
    }
    Ok(())
}
