//! `nasperf import`: benchmark tables into the evaluation store.

use anyhow::bail;
use indicatif::{ProgressBar, ProgressStyle};

use super::train::select_objectives;
use crate::{cli::ImportArgs, store::import::import_tables};

pub async fn run(args: ImportArgs) -> anyhow::Result<()> {
    let objectives = select_objectives(&args.objectives)?;
    let store = super::open_store(&args.store).await?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} rows")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let report = import_tables(
        &store,
        &args.bench,
        &args.study,
        &objectives,
        |done, total| {
            bar.set_length(total);
            bar.inc(done);
        },
    )
    .await?;
    bar.finish();
    println!(
        "study {}: {} evaluations stored, {} already stored, {} rejected",
        args.study,
        report.stored,
        report.already_stored,
        report.rejected.len()
    );
    store.close().await;
    if !report.rejected.is_empty() {
        let shown: Vec<&str> = report
            .rejected
            .iter()
            .take(10)
            .map(String::as_str)
            .collect();
        bail!(
            "{} rows were rejected, e.g.:\n{}",
            report.rejected.len(),
            shown.join("\n")
        );
    }
    Ok(())
}
