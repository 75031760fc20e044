//! `nasperf train`: one model per objective from benchmark tables.

use std::sync::{
    Mutex,
    atomic::{AtomicUsize, Ordering},
};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};

use crate::{
    cli::TrainArgs,
    objectives::{Objective, catalogue},
    sync,
    train::{TrainConfig, load_all_proxies, proxy_source, train_objective, write_model},
};

/// The objectives named on the command line, or all of them.
pub fn select_objectives(ids: &[String]) -> anyhow::Result<Vec<Objective>> {
    if ids.is_empty() {
        return Ok(catalogue());
    }
    ids.iter()
        .map(|id| match crate::objectives::get(id) {
            Some(o) => Ok(o.clone()),
            None => bail!("unknown objective {id:?}; `nasperf objectives` lists them"),
        })
        .collect()
}

pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let selected = select_objectives(&args.objectives)?;
    let config = TrainConfig {
        use_proxies: !args.no_proxies,
        ..TrainConfig::with_rounds(args.iterations)
    };
    let proxies = load_all_proxies(&args.bench).context("reading the proxy tables")?;

    let bar = ProgressBar::new(selected.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..args.jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(objective) = selected.get(i) else {
                        break;
                    };
                    bar.set_message(objective.id.clone());
                    let outcome = train_objective(
                        &args.bench,
                        objective,
                        proxy_source(objective, &proxies),
                        &config,
                    )
                    .and_then(|model| write_model(&args.out, &model).map(|()| model));
                    match outcome {
                        Ok(model) => sync::lock(&results).push(model.manifest),
                        Err(e) => sync::lock(&failures).push(format!("{}: {e}", objective.id)),
                    }
                    bar.inc(1);
                }
            });
        }
    });
    bar.finish_with_message("done");

    let mut results = sync::into_inner(results);
    results.sort_by(|a, b| a.objective.cmp(&b.objective));
    println!(
        "{:<40} {:>7} {:>9} {:>9} {:>10}",
        "objective", "rows", "tau-b", "spearman", "rmse"
    );
    for m in &results {
        println!(
            "{:<40} {:>7} {:>9.4} {:>9.4} {:>10.4}",
            m.objective,
            m.training_rows,
            m.heldout.kendall_tau,
            m.heldout.spearman_rho,
            m.heldout.rmse
        );
    }
    println!("{} models written to {}", results.len(), args.out.display());
    let failures = sync::into_inner(failures);
    if !failures.is_empty() {
        bail!(
            "{} objectives failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
    Ok(())
}
