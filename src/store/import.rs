//! Loading the public benchmark tables into the store as evaluations and
//! proxies. Keys are derived from the study, objective and cell, so a second
//! import of the same tables into the same study stores nothing new.

use std::{collections::BTreeMap, path::Path};

use super::{DEFAULT_STUDY, NewEvaluation, RecordOutcome, Store, StoreError};
use crate::{
    bench::{self, BenchError},
    features::PROXY_NAMES,
    objectives::{Objective, ObjectiveKind},
    space::nb201,
    train::{self, load_all_proxies},
};

/// Rows per store call: large enough to amortise a transaction, small
/// enough to show progress.
const IMPORT_BATCH: usize = 5_000;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Bench(#[from] BenchError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Tables(String),
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub stored: u64,
    pub already_stored: u64,
    /// Rejections, by message (a table row the store refused).
    pub rejected: Vec<String>,
}

/// The training budget an objective was measured at, from its fidelity.
fn budget(objective: &Objective) -> Option<f64> {
    match objective.kind {
        ObjectiveKind::Hardware => None,
        ObjectiveKind::Accuracy | ObjectiveKind::Robustness => objective
            .fidelity
            .strip_suffix(" epochs")
            .and_then(|n| n.parse().ok()),
    }
}

/// Imports `objectives` from the tables under `bench_dir` into `study`
/// (created if missing). `progress` is told how many rows each step
/// handled, out of `total` (known once the tables are read).
pub async fn import_tables(
    store: &Store,
    bench_dir: &Path,
    study: &str,
    objectives: &[Objective],
    mut progress: impl FnMut(u64, u64),
) -> Result<ImportReport, ImportError> {
    let study = if study.is_empty() {
        DEFAULT_STUDY
    } else {
        study
    };
    match store.study(study).await {
        Ok(_) => {}
        Err(StoreError::UnknownStudy(_)) => {
            store
                .create_study(
                    study,
                    &format!("imported from benchmark tables in {}", bench_dir.display()),
                )
                .await?;
        }
        Err(e) => return Err(e.into()),
    }
    // Reading and parsing the tables is blocking work.
    let dir = bench_dir.to_owned();
    let wanted = objectives.to_vec();
    let (tables, proxies) = tokio::task::spawn_blocking(move || {
        let proxies = load_all_proxies(&dir).map_err(|e| ImportError::Tables(e.to_string()))?;
        let tables = wanted
            .iter()
            .map(|o| bench::load_objective(&dir, o).map(|rows| (o.clone(), rows)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok::<_, ImportError>((tables, proxies))
    })
    .await
    .map_err(|e| ImportError::Tables(format!("reading the tables: {e}")))??;

    let total: u64 = tables.iter().map(|(_, rows)| rows.len() as u64).sum();
    let mut report = ImportReport::default();
    let mut batch = Vec::with_capacity(IMPORT_BATCH);
    for (objective, rows) in &tables {
        let worker = format!("import:{}", objective.source.file);
        // Each network's proxies go with the dataset they were computed on,
        // which for an objective without proxies of its own is its stand-in's.
        let source = train::proxy_source(objective, &proxies);
        for m in rows {
            let encoding = m.cell.to_op_codes();
            // The proxy tables hold canonical networks; a cell with dead
            // operations is a different network to the device.
            let cell_proxies: BTreeMap<String, f64> = source
                .and_then(|p| p.values.get(&m.cell))
                .map(|values| {
                    PROXY_NAMES
                        .iter()
                        .map(|n| (*n).to_owned())
                        .zip(values.0)
                        .collect()
                })
                .unwrap_or_default();
            batch.push(NewEvaluation {
                study: study.to_owned(),
                search_space: nb201::NAME.to_owned(),
                idempotency_key: format!("import:{study}:{}:{encoding}", objective.id),
                arch: encoding,
                objective: objective.id.clone(),
                value: m.value,
                budget: budget(objective),
                worker: worker.clone(),
                dataset: match source {
                    Some(p) if !cell_proxies.is_empty() => p.dataset.name().to_owned(),
                    _ => String::new(),
                },
                proxies: cell_proxies,
            });
            if batch.len() == IMPORT_BATCH {
                flush(store, &mut batch, &mut report, &mut progress, total).await?;
            }
        }
    }
    flush(store, &mut batch, &mut report, &mut progress, total).await?;
    Ok(report)
}

async fn flush(
    store: &Store,
    batch: &mut Vec<NewEvaluation>,
    report: &mut ImportReport,
    progress: &mut impl FnMut(u64, u64),
    total: u64,
) -> Result<(), ImportError> {
    if batch.is_empty() {
        return Ok(());
    }
    for (row, outcome) in batch.iter().zip(store.record(batch).await?) {
        match outcome {
            RecordOutcome::Stored => report.stored += 1,
            RecordOutcome::AlreadyStored => report.already_stored += 1,
            RecordOutcome::Rejected(r) => report
                .rejected
                .push(format!("{} {}: {}", row.objective, row.arch, r.message)),
        }
    }
    progress(batch.len() as u64, total);
    batch.clear();
    Ok(())
}

/// SHA-256 over every file under `dir` (relative path and contents, in
/// path order): what tells one set of tables from another.
pub fn tables_fingerprint(dir: &Path) -> Result<String, ImportError> {
    use sha2::{Digest, Sha256};
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                walk(&path, out)?;
            } else {
                out.push(path);
            }
        }
        Ok(())
    }
    let io = |e: std::io::Error| ImportError::Tables(format!("reading {}: {e}", dir.display()));
    let mut files = Vec::new();
    walk(dir, &mut files).map_err(io)?;
    files.sort();
    let mut h = Sha256::new();
    for f in files {
        let rel = f.strip_prefix(dir).unwrap_or(&f);
        h.update(rel.to_string_lossy().as_bytes());
        h.update([0]);
        h.update(std::fs::read(&f).map_err(io)?);
    }
    Ok(hex::encode(h.finalize()))
}

/// Imports every catalogued objective from the tables under `bench_dir`
/// into `study`, unless this store already holds these exact tables there.
pub async fn import_bench_once(
    store: &Store,
    bench_dir: &Path,
    study: &str,
) -> Result<(), ImportError> {
    let dir = bench_dir.to_owned();
    let fingerprint = tokio::task::spawn_blocking(move || tables_fingerprint(&dir))
        .await
        .map_err(|e| ImportError::Tables(format!("hashing the tables: {e}")))??;
    if store.bench_imported(study, &fingerprint).await? {
        tracing::info!(bench = %bench_dir.display(), study, "benchmark tables already imported");
        return Ok(());
    }
    // The objectives whose tables are there: a directory may hold part of
    // the benchmark (say, only CIFAR-10's tables).
    let (present, missing): (Vec<_>, Vec<_>) = crate::objectives::catalogue()
        .into_iter()
        .partition(|o| bench_dir.join(o.source.file).is_file());
    if present.is_empty() {
        return Err(ImportError::Tables(format!(
            "{} holds none of the benchmark tables nasperf reads (see the README)",
            bench_dir.display()
        )));
    }
    tracing::info!(
        bench = %bench_dir.display(),
        study,
        objectives = present.len(),
        without_tables = missing.len(),
        "importing benchmark tables"
    );
    let started = std::time::Instant::now();
    let mut done = 0u64;
    let mut last_logged = std::time::Instant::now();
    let report = import_tables(store, bench_dir, study, &present, |n, total| {
        done += n;
        if last_logged.elapsed() >= std::time::Duration::from_secs(5) {
            last_logged = std::time::Instant::now();
            tracing::info!(done, total, "importing benchmark tables");
        }
    })
    .await?;
    if !report.rejected.is_empty() {
        return Err(ImportError::Tables(format!(
            "{} table rows were refused, e.g. {}",
            report.rejected.len(),
            report.rejected[0]
        )));
    }
    let rows = i64::try_from(report.stored + report.already_stored).unwrap_or(i64::MAX);
    store.mark_bench_imported(study, &fingerprint, rows).await?;
    tracing::info!(
        stored = report.stored,
        already_stored = report.already_stored,
        seconds = started.elapsed().as_secs_f64(),
        "benchmark tables imported"
    );
    Ok(())
}
