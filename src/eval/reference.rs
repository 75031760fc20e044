//! The reference predictors, run by `scripts/reference_runner.py` on the
//! exact networks, feature sets and splits of the protocol: scikit-learn's
//! random forest, XGBoost and LightGBM, default settings.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::Command,
};

use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};

use super::{FeatureSet, ObjectiveData, TOP_FRACTION, lower_is_better, split};

/// How to run the reference.
#[derive(Debug, Clone)]
pub struct Reference {
    /// A Python with numpy, scipy, scikit-learn, xgboost and lightgbm.
    pub python: PathBuf,
    pub script: PathBuf,
    pub feature_sets: Vec<FeatureSet>,
    pub models: Vec<String>,
}

/// One reference model scored on one split, as the runner reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReferenceRun {
    #[serde(default)]
    pub objective: String,
    pub train_size: usize,
    pub seed: u64,
    pub model: String,
    pub feature_set: String,
    pub kendall_tau: f64,
    pub spearman_rho: f64,
    pub top_precision: f64,
    /// The model predicted one value for every network; its correlations
    /// are scored 0.
    #[serde(default)]
    pub constant_prediction: bool,
    pub seconds: f64,
}

#[derive(Debug, Deserialize)]
struct RunnerOutput {
    results: Vec<ReferenceRun>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error("{objective}: writing the reference job {path}: {source}")]
    Io {
        objective: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{objective}: could not start {python} {script}: {source} (set --reference-python to a Python with `pip install -r scripts/reference-requirements.txt`, or pass --no-reference)"
    )]
    Spawn {
        objective: String,
        python: String,
        script: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{objective}: the reference runner failed ({status}): {stderr}")]
    Failed {
        objective: String,
        status: String,
        stderr: String,
    },
    #[error("{objective}: the reference runner's results do not parse: {message}")]
    Output { objective: String, message: String },
}

#[derive(Serialize)]
struct JobFeatureSet<'a> {
    names: &'a [String],
    rows: Vec<&'a [f64]>,
}

#[derive(Serialize)]
struct JobSplit {
    train_size: usize,
    seed: u64,
    train: Vec<usize>,
}

/// Runs the reference for one objective in `work_dir`, on every train size
/// and seed of the protocol.
pub fn run_objective(
    reference: &Reference,
    data: &ObjectiveData,
    train_sizes: &[usize],
    seeds: &[u64],
    work_dir: &Path,
) -> Result<Vec<ReferenceRun>, ReferenceError> {
    let objective = data.objective.id.clone();
    let matrices: Vec<(String, super::Matrix)> = reference
        .feature_sets
        .iter()
        .map(|fs| (fs.to_string(), data.matrix(fs)))
        .collect();
    let mut feature_sets = serde_json::Map::new();
    for (name, m) in &matrices {
        let set = JobFeatureSet {
            names: &m.names,
            rows: (0..data.len()).map(|i| m.row(i)).collect(),
        };
        feature_sets.insert(
            name.clone(),
            serde_json::to_value(set).map_err(|e| ReferenceError::Output {
                objective: objective.clone(),
                message: e.to_string(),
            })?,
        );
    }
    let splits: Vec<JobSplit> = train_sizes
        .iter()
        .flat_map(|&train_size| {
            seeds.iter().map(move |&seed| JobSplit {
                train_size,
                seed,
                train: split(data.len(), train_size, seed).0,
            })
        })
        .collect();
    // JSON has no NaN: a proxy the tables lack is written as null, which
    // the runner reads back as NaN.
    let job = serde_json::json!({
        "objective": objective,
        "higher_is_better": !lower_is_better(&data.objective),
        "targets": data.targets,
        "feature_sets": feature_sets,
        "splits": splits,
        "models": reference.models,
        "top_fraction": TOP_FRACTION,
    });
    let stem = objective.replace('/', "__");
    let job_path = work_dir.join(format!("{stem}.job.json"));
    let out_path = work_dir.join(format!("{stem}.results.json"));
    let io = |source| ReferenceError::Io {
        objective: objective.clone(),
        path: job_path.clone(),
        source,
    };
    let job_bytes = serde_json::to_vec(&job).map_err(|e| io(e.into()))?;
    let expected = splits.len() * reference.models.len() * reference.feature_sets.len();
    // The reference is deterministic in its job: results of the very same
    // job (same networks, values, columns, splits and models) are reused.
    let same_job = std::fs::read(&job_path).is_ok_and(|old| old == job_bytes);
    if let Some(runs) = same_job
        .then(|| std::fs::read(&out_path).ok())
        .flatten()
        .and_then(|b| serde_json::from_slice::<RunnerOutput>(&b).ok())
        .filter(|o| o.results.len() == expected)
    {
        return Ok(with_objective(runs.results, &objective));
    }
    let mut file = std::io::BufWriter::new(std::fs::File::create(&job_path).map_err(io)?);
    file.write_all(&job_bytes).map_err(io)?;
    file.flush().map_err(io)?;
    drop(file);

    let output = Command::new(&reference.python)
        .arg(&reference.script)
        .arg(&job_path)
        .arg(&out_path)
        .output()
        .map_err(|source| ReferenceError::Spawn {
            objective: objective.clone(),
            python: reference.python.display().to_string(),
            script: reference.script.display().to_string(),
            source,
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(8).collect();
        return Err(ReferenceError::Failed {
            objective,
            status: output.status.to_string(),
            stderr: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        });
    }
    let bytes = std::fs::read(&out_path).map_err(|source| ReferenceError::Io {
        objective: objective.clone(),
        path: out_path.clone(),
        source,
    })?;
    let parsed: RunnerOutput =
        serde_json::from_slice(&bytes).map_err(|e| ReferenceError::Output {
            objective: objective.clone(),
            message: e.to_string(),
        })?;
    if parsed.results.len() != expected {
        return Err(ReferenceError::Output {
            objective,
            message: format!(
                "{} results for {expected} (split, model, feature set) combinations",
                parsed.results.len()
            ),
        });
    }
    Ok(with_objective(parsed.results, &objective))
}

fn with_objective(runs: Vec<ReferenceRun>, objective: &str) -> Vec<ReferenceRun> {
    runs.into_iter()
        .map(|mut r| {
            r.objective = objective.to_owned();
            r
        })
        .collect()
}

/// Runs the reference for every objective, one after the other (each run
/// uses every core itself). Each objective's job and results stay in
/// `work_dir`, so `scripts/reference_runner.py JOB RESULTS` repeats them.
pub fn run(
    reference: &Reference,
    data: &[ObjectiveData],
    train_sizes: &[usize],
    seeds: &[u64],
    work_dir: &Path,
    bar: &ProgressBar,
) -> Result<Vec<ReferenceRun>, ReferenceError> {
    std::fs::create_dir_all(work_dir).map_err(|source| ReferenceError::Io {
        objective: String::new(),
        path: work_dir.to_owned(),
        source,
    })?;
    bar.set_length(data.len() as u64);
    let mut out = Vec::new();
    for d in data {
        bar.set_message(format!("reference: {}", d.objective.id));
        out.extend(run_objective(reference, d, train_sizes, seeds, work_dir)?);
        bar.inc(1);
    }
    Ok(out)
}
