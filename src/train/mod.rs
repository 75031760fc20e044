//! Training LightGBM regressors from benchmark tables.
//!
//! LightGBM's `Booster` is neither `Send` nor `Sync`: every booster is
//! created, trained, saved to text and dropped on the one thread that runs
//! [`fit`]. Only the model text leaves that thread; serving parses it into
//! our own evaluator ([`crate::model::Forest`]).

pub mod lightgbm;
pub mod metrics;
pub mod recipe;

pub use self::recipe::{Fitted, Recipe, RelatedTarget};

use std::{
    collections::{BTreeMap, HashMap},
    path::Path,
};

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{
    bench::{self, BenchError, Measurement},
    dataset::Dataset,
    features::{FeatureMap, PROXIES_SENT_FEATURE, ProxyValues, proxy_feature_names},
    model::{
        HeldoutMetrics, Interval, MANIFEST_SUFFIX, Manifest, manifest::MANIFEST_FORMAT,
        manifest_path, sha256_hex,
    },
    objectives::{Objective, ObjectiveKind},
    space::{
        SearchSpace,
        nb201::{Nb201, ONEHOT_PREFIX, OPS_SENT_PREFIX, cell::Cell},
    },
};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Bench(#[from] BenchError),
    #[error("LightGBM: {0}")]
    LightGbm(#[from] lightgbm3::Error),
    #[error(transparent)]
    Training(#[from] lightgbm::LightGbmError),
    /// Training data a fit cannot use; `objective` is empty where the
    /// error arises below the level that knows it (the recipe).
    #[error("{}", with_objective(objective, message))]
    Data { objective: String, message: String },
    #[error("writing {path}: {source}")]
    Write {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn with_objective(objective: &str, message: &str) -> String {
    if objective.is_empty() {
        message.to_owned()
    } else {
        format!("{objective}: {message}")
    }
}

/// How `nasperf train` and retraining train: the recipe (which chooses the
/// LightGBM configuration from the data), the held-out share that the
/// manifest's figures come from, and whether proxies are fed.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    pub recipe: Recipe,
    pub seed: u64,
    /// Share of rows held out for the manifest's quality figures.
    pub holdout_fraction: f64,
    /// Feed the objective's dataset's zero-cost proxies where the tables
    /// have them.
    pub use_proxies: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            recipe: Recipe::default(),
            seed: 42,
            holdout_fraction: 0.2,
            use_proxies: true,
        }
    }
}

impl TrainConfig {
    /// The default configuration with the recipe's rounds scaled to
    /// `rounds` for its largest booster.
    pub fn with_rounds(rounds: u32) -> Self {
        Self {
            recipe: Recipe::with_rounds(rounds),
            ..Self::default()
        }
    }
}

/// Rows ready for LightGBM.
#[derive(Debug, Clone)]
pub struct TrainingSet {
    pub feature_names: Vec<String>,
    /// The dataset the rows' proxies were computed on; `None` for a set
    /// without proxies.
    pub proxy_dataset: Option<Dataset>,
    /// Row-major, `feature_names.len()` values per row.
    pub rows: Vec<f64>,
    pub targets: Vec<f64>,
    /// The cell each row stands for (canonical for canonical objectives).
    pub cells: Vec<Cell>,
    /// The values of related objectives ([`crate::objectives::related`])
    /// for the same rows, which the recipe's family choices learn from.
    pub related: Vec<RelatedTarget>,
}

impl TrainingSet {
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    pub fn row(&self, i: usize) -> &[f64] {
        let w = self.feature_names.len();
        &self.rows[i * w..(i + 1) * w]
    }

    /// The rows `idx` (row-major) and their targets.
    pub fn subset(&self, idx: &[usize]) -> (Vec<f64>, Vec<f64>) {
        let width = self.feature_names.len();
        (
            recipe::gather(&self.rows, width, idx),
            idx.iter().map(|&i| self.targets[i]).collect(),
        )
    }

    /// The related objectives' values of the rows `idx`.
    pub fn related_subset(&self, idx: &[usize]) -> Vec<RelatedTarget> {
        self.related.iter().map(|r| r.rows(idx)).collect()
    }

    /// Adds `objective`'s values for this set's rows: the mean of its
    /// measurements (`(cell, sum of values, how many)`, as
    /// [`build_training_set_from_sums`] takes them) of each row's network,
    /// canonical where the objective depends on the canonical cell; NaN
    /// for a row it has none of.
    pub fn attach_related(
        &mut self,
        objective: &Objective,
        sums: impl IntoIterator<Item = (Cell, f64, u64)>,
    ) {
        let key = |cell: Cell| {
            if objective.kind.depends_on_canonical_cell() {
                cell.canonical()
            } else {
                cell
            }
        };
        let mut groups: HashMap<Cell, (f64, u64)> = HashMap::new();
        for (cell, sum, n) in sums {
            let e = groups.entry(key(cell)).or_insert((0.0, 0));
            e.0 += sum;
            e.1 += n;
        }
        let values = self
            .cells
            .iter()
            .map(|&cell| match groups.get(&key(cell)) {
                Some(&(sum, n)) if n > 0 => sum / n as f64,
                _ => f64::NAN,
            })
            .collect();
        self.related.push(RelatedTarget {
            objective: objective.id.clone(),
            values,
        });
    }

    /// SHA-256 over names, rows, targets and related objectives' values:
    /// a model learns from all of them.
    pub fn sha256(&self) -> String {
        let mut h = Sha256::new();
        for n in &self.feature_names {
            h.update(n.as_bytes());
            h.update([0]);
        }
        for v in self.rows.iter().chain(&self.targets) {
            h.update(v.to_le_bytes());
        }
        for r in &self.related {
            h.update(r.objective.as_bytes());
            h.update([0]);
            for v in &r.values {
                h.update(v.to_le_bytes());
            }
        }
        hex::encode(h.finalize())
    }
}

/// Zero-cost proxies by canonical cell, with the dataset they were
/// computed on.
#[derive(Debug, Clone, Copy)]
pub struct ProxySource<'a> {
    pub dataset: Dataset,
    pub values: &'a HashMap<Cell, ProxyValues>,
}

/// The proxies for `objective`'s networks, from the proxies at hand by
/// dataset: the first of its dataset's [`Dataset::proxy_sources`] that
/// `available` holds. (Hardware models read none, whatever they are
/// given: [`feature_names_for`].)
pub fn proxy_source<'a>(
    objective: &Objective,
    available: &'a HashMap<Dataset, HashMap<Cell, ProxyValues>>,
) -> Option<ProxySource<'a>> {
    objective
        .dataset
        .proxy_sources()
        .iter()
        .find_map(|&dataset| {
            available
                .get(&dataset)
                .map(|values| ProxySource { dataset, values })
        })
}

/// Which features a model of `objective` is fed.
///
/// Every model gets the canonical view of the architecture (op counts,
/// graph features, its dataset's parameter count and FLOPs). Hardware models
/// also get the cell as sent (op counts, costs, and which op is on which
/// edge: `docs/quality.md` shows the one-hot view lifting edge-GPU latency
/// from 0.74 to 0.77 at N=128), since a dead operation still runs on the
/// device; they get no proxies, because the tables hold proxies only for
/// canonical networks and cost is a function of the cell. Accuracy and
/// robustness models get proxies when `with_proxies` ([`proxy_source`]
/// says whose).
pub fn feature_names_for(objective: &Objective, space: &Nb201, with_proxies: bool) -> Vec<String> {
    let ds = objective.dataset.name();
    let own_costs = [format!("params_m.{ds}"), format!("flops_m.{ds}")];
    let sent_costs = [format!("params_m_sent.{ds}"), format!("flops_m_sent.{ds}")];
    let mut names: Vec<String> = space
        .feature_names()
        .iter()
        .filter(|n| {
            n.starts_with("ops.")
                || n.starts_with("graph.")
                || own_costs.contains(n)
                || (objective.kind == ObjectiveKind::Hardware
                    && (n.starts_with(OPS_SENT_PREFIX)
                        || n.starts_with(ONEHOT_PREFIX)
                        || sent_costs.contains(n)))
        })
        .cloned()
        .collect();
    if with_proxies && objective.kind != ObjectiveKind::Hardware {
        names.extend(proxy_feature_names());
        // The recipe answers candidates without every proxy from trees of
        // their own, split on this count.
        names.push(PROXIES_SENT_FEATURE.to_owned());
    }
    names
}

/// Forms training rows: one per canonical network (measurements averaged)
/// for accuracy and robustness, one per cell for hardware objectives.
pub fn build_training_set(
    objective: &Objective,
    measurements: &[Measurement],
    proxies: Option<ProxySource<'_>>,
    space: &Nb201,
) -> Result<TrainingSet, TrainError> {
    build_training_set_from_sums(
        objective,
        measurements.iter().map(|m| (m.cell, m.value, 1)),
        proxies,
        space,
    )
}

/// [`build_training_set`] from measurements already summed per cell:
/// `(cell, sum of values, how many)`. Rows are the mean per canonical
/// network (accuracy, robustness) or per cell as sent (hardware).
pub fn build_training_set_from_sums(
    objective: &Objective,
    sums: impl IntoIterator<Item = (Cell, f64, u64)>,
    proxies: Option<ProxySource<'_>>,
    space: &Nb201,
) -> Result<TrainingSet, TrainError> {
    // Hardware models read no proxies, whatever is passed.
    let proxies = proxies.filter(|_| objective.kind != ObjectiveKind::Hardware);
    let feature_names = feature_names_for(objective, space, proxies.is_some());
    let map = FeatureMap::resolve(space, &feature_names).map_err(|e| TrainError::Data {
        objective: objective.id.clone(),
        message: e.to_string(),
    })?;
    // Deterministic order: BTreeMap by cell.
    let mut groups: BTreeMap<Cell, (f64, u64)> = BTreeMap::new();
    for (cell, sum, n) in sums {
        let key = if objective.kind.depends_on_canonical_cell() {
            cell.canonical()
        } else {
            cell
        };
        let e = groups.entry(key).or_insert((0.0, 0));
        e.0 += sum;
        e.1 += n;
    }
    let mut set = TrainingSet {
        feature_names,
        proxy_dataset: proxies.map(|p| p.dataset),
        rows: Vec::with_capacity(groups.len() * map.len()),
        targets: Vec::with_capacity(groups.len()),
        cells: Vec::with_capacity(groups.len()),
        related: Vec::new(),
    };
    for (cell, (sum, n)) in groups {
        let features = space.features(&cell);
        // Proxy tables are keyed by canonical network.
        let p = proxies.map(|p| {
            p.values
                .get(&cell.canonical())
                .copied()
                .unwrap_or(ProxyValues::MISSING)
        });
        map.push_row(&features, p.as_ref(), &mut set.rows);
        // Counts stay far below 2^53, where u64 -> f64 is exact.
        set.targets.push(sum / n as f64);
        set.cells.push(cell);
    }
    Ok(set)
}

/// A small, seedable generator (SplitMix64) so splits are reproducible
/// across platforms and releases without a dependency.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform on [0, 1), from the top 53 bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A random permutation of `0..n` (Fisher-Yates).
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            idx.swap(i, j);
        }
        idx
    }
}

/// Trains on the rows `train` of `set` with the recipe, with the related
/// objectives' values of those rows.
pub fn fit(set: &TrainingSet, train: &[usize], config: &TrainConfig) -> Result<Fitted, TrainError> {
    let (rows, targets) = set.subset(train);
    config.recipe.fit_related(
        &rows,
        &set.feature_names,
        &targets,
        &set.related_subset(train),
        config.seed,
    )
}

/// Held-out metrics of a fitted model on the rows `test` of `set`, with how
/// often the true value fell inside each row's interval (the one of the
/// trees that answered it: with or without proxies).
pub fn evaluate(fitted: &Fitted, set: &TrainingSet, test: &[usize]) -> HeldoutMetrics {
    let sent = set
        .feature_names
        .iter()
        .position(|n| n == PROXIES_SENT_FEATURE);
    let (mut pred, mut truth, mut half_widths) = (Vec::new(), Vec::new(), Vec::new());
    for &i in test {
        let row = set.row(i);
        pred.push(fitted.predict(row));
        truth.push(set.targets[i]);
        half_widths.push(fitted.interval_half_width_for(row, sent));
    }
    // Undefined (None) where a row's interval is: not counted as a miss.
    let coverage = metrics::coverage_of_each(&pred, &truth, &half_widths);
    HeldoutMetrics {
        rows: test.len() as u64,
        kendall_tau: metrics::kendall_tau_b(&pred, &truth),
        spearman_rho: metrics::spearman_rho(&pred, &truth),
        rmse: metrics::rmse(&pred, &truth),
        interval_coverage: Some(coverage).filter(|c| c.is_finite()),
    }
}

/// A trained model, ready to be written.
#[derive(Debug, Clone)]
pub struct TrainedModel {
    pub manifest: Manifest,
    pub model_text: String,
}

/// Trains one objective from the tables under `bench_dir`, holding out
/// `config.holdout_fraction` of the rows for the manifest's metrics.
pub fn train_objective(
    bench_dir: &Path,
    objective: &Objective,
    proxies: Option<ProxySource<'_>>,
    config: &TrainConfig,
) -> Result<TrainedModel, TrainError> {
    let space = Nb201::new();
    let measurements = bench::load_objective(bench_dir, objective)?;
    let proxies = if config.use_proxies { proxies } else { None };
    let mut set = build_training_set(objective, &measurements, proxies, &space)?;
    for related in crate::objectives::related(objective) {
        let measured = bench::load_objective(bench_dir, related)?;
        set.attach_related(related, measured.iter().map(|m| (m.cell, m.value, 1)));
    }
    let data_err = |message: String| TrainError::Data {
        objective: objective.id.clone(),
        message,
    };
    if set.len() < 20 {
        return Err(data_err(format!(
            "only {} rows; at least 20 are needed to train and hold out",
            set.len()
        )));
    }
    let order = SplitMix64(config.seed).permutation(set.len());
    let n_test =
        ((set.len() as f64 * config.holdout_fraction).round() as usize).clamp(1, set.len() - 1);
    let (test, train) = order.split_at(n_test);
    let fitted = fit(&set, train, config).map_err(|e| match e {
        TrainError::Data { message, .. } => data_err(message),
        other => other,
    })?;
    let heldout = evaluate(&fitted, &set, test);
    let source = json!(format!(
        "{}:{}",
        objective.source.file, objective.source.column
    ));
    Ok(package(
        objective,
        &set,
        train.len(),
        heldout,
        fitted,
        config,
        source,
    ))
}

/// Wraps trained model text with its manifest.
pub fn package(
    objective: &Objective,
    set: &TrainingSet,
    training_rows: usize,
    heldout: HeldoutMetrics,
    fitted: Fitted,
    config: &TrainConfig,
    source: serde_json::Value,
) -> TrainedModel {
    let trainer = json!({
        "library": "LightGBM (lightgbm3 crate)",
        "recipe": config.recipe.describe(&fitted, training_rows, config.seed),
        "seed": config.seed,
        "holdout_fraction": config.holdout_fraction,
        "use_proxies": config.use_proxies,
        "source": source,
    });
    let interval = |half_width: f64| {
        half_width.is_finite().then_some(Interval {
            coverage: config.recipe.coverage,
            half_width,
        })
    };
    let interval_without_proxies = fitted
        .interval_without_proxies
        .and_then(|i| interval(i.half_width));
    let interval = interval(fitted.interval.half_width);
    let floor = fitted.floor;
    let model_text = fitted.model_text;
    let model_sha256 = sha256_hex(model_text.as_bytes());
    let now = std::time::SystemTime::now();
    let created_at = humantime::format_rfc3339_millis(now).to_string();
    let version = format!(
        "{}-{}",
        created_at.replace(['-', ':', '.'], ""),
        &model_sha256[..8]
    );
    let mut manifest = Manifest {
        format: MANIFEST_FORMAT,
        objective: objective.id.clone(),
        search_space: objective.search_space.to_owned(),
        dataset: objective.dataset.name().to_owned(),
        proxy_dataset: set.proxy_dataset.map(|d| d.name().to_owned()),
        unit: objective.unit.to_owned(),
        version,
        feature_names: set.feature_names.clone(),
        training_rows: training_rows as u64,
        heldout,
        created_at,
        training_data_sha256: set.sha256(),
        model_sha256,
        model_file: String::new(),
        interval,
        interval_without_proxies,
        floor,
        trainer,
    };
    manifest.model_file = manifest.content_addressed_file_name();
    TrainedModel {
        manifest,
        model_text,
    }
}

/// Writes a model so that a concurrent reader sees either the old or the
/// new version, never a mix: the content-addressed model text first, then
/// the manifest that names it, each through a rename. Model files that
/// neither the new nor the replaced manifest names are removed; the replaced
/// one stays, for a reader that read the old manifest a moment ago.
pub fn write_model(dir: &Path, model: &TrainedModel) -> Result<(), TrainError> {
    let manifest_path = manifest_path(dir, &model.manifest.objective);
    let manifest_text =
        serde_json::to_string_pretty(&model.manifest).map_err(|e| TrainError::Data {
            objective: model.manifest.objective.clone(),
            message: e.to_string(),
        })?;
    let replaced: Option<String> = std::fs::read(&manifest_path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Manifest>(&bytes).ok())
        .map(|m| m.model_file);
    write_atomic(
        &manifest_path.with_file_name(&model.manifest.model_file),
        model.model_text.as_bytes(),
    )?;
    write_atomic(&manifest_path, manifest_text.as_bytes())?;
    remove_stale_model_files(
        &manifest_path,
        &model.manifest.model_file,
        replaced.as_deref(),
    );
    Ok(())
}

/// Best effort: a file left behind costs disk space, not correctness. Only
/// `<metric>.<hex>.model.txt` files of this manifest's metric are touched.
fn remove_stale_model_files(manifest_path: &Path, current: &str, replaced: Option<&str>) {
    let (Some(dir), Some(name)) = (
        manifest_path.parent(),
        manifest_path.file_name().and_then(|n| n.to_str()),
    ) else {
        return;
    };
    let Some(metric) = name.strip_suffix(MANIFEST_SUFFIX) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(file) = file.to_str() else { continue };
        let Some(hash) = file
            .strip_prefix(metric)
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|rest| rest.strip_suffix(".model.txt"))
        else {
            continue;
        };
        let ours = !hash.is_empty() && hash.bytes().all(|b| b.is_ascii_hexdigit());
        if ours && file != current && Some(file) != replaced {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let wrap = |source| TrainError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(wrap)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, bytes).map_err(wrap)?;
    std::fs::rename(&tmp, path).map_err(wrap)?;
    Ok(())
}

/// Loads every dataset's proxies once.
pub fn load_all_proxies(
    bench_dir: &Path,
) -> Result<HashMap<Dataset, HashMap<Cell, ProxyValues>>, TrainError> {
    let mut out = HashMap::new();
    for ds in Dataset::ALL {
        if let Some(p) = bench::load_proxies(bench_dir, ds)? {
            out.insert(ds, p);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objectives::catalogue;

    #[test]
    fn a_data_error_names_its_objective_only_where_it_knows_it() {
        let named = TrainError::Data {
            objective: "cifar10/pgd_eps8".into(),
            message: "too few rows".into(),
        };
        assert_eq!(named.to_string(), "cifar10/pgd_eps8: too few rows");
        let unnamed = TrainError::Data {
            objective: String::new(),
            message: "too few rows".into(),
        };
        assert_eq!(unnamed.to_string(), "too few rows");
    }

    #[test]
    fn rows_from_sums_equal_rows_from_the_measurements_they_sum() {
        let space = Nb201::new();
        let cells: Vec<Cell> = Cell::all().take(40).collect();
        for id in ["cifar10/val_acc_200ep", "cifar10/edgegpu_latency"] {
            let objective = catalogue()
                .into_iter()
                .find(|o| o.id == id)
                .expect("in the catalogue");
            // Each cell measured 1 to 3 times, with different values.
            let measurements: Vec<Measurement> = cells
                .iter()
                .enumerate()
                .flat_map(|(i, &cell)| {
                    (0..=i % 3).map(move |k| Measurement {
                        cell,
                        value: (i * 7 + k) as f64 * 0.25,
                    })
                })
                .collect();
            let mut sums: BTreeMap<Cell, (f64, u64)> = BTreeMap::new();
            for m in &measurements {
                let e = sums.entry(m.cell).or_default();
                e.0 += m.value;
                e.1 += 1;
            }
            let direct = build_training_set(&objective, &measurements, None, &space).expect("set");
            let summed = build_training_set_from_sums(
                &objective,
                sums.into_iter().map(|(c, (s, n))| (c, s, n)),
                None,
                &space,
            )
            .expect("set");
            assert_eq!(direct.cells, summed.cells, "{id}");
            assert_eq!(direct.rows, summed.rows, "{id}");
            for (a, b) in direct.targets.iter().zip(&summed.targets) {
                assert!(
                    (a - b).abs() <= 1e-12 * a.abs().max(1.0),
                    "{id}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn related_values_are_the_mean_per_row_and_change_the_data_hash() {
        let space = Nb201::new();
        let target = crate::objectives::get("cifar10/pgd_eps2").expect("in the catalogue");
        let weaker = crate::objectives::get("cifar10/pgd_eps1").expect("in the catalogue");
        // Canonical networks: each its own row.
        let cells: Vec<Cell> = Cell::all()
            .filter(|c| c.canonical() == *c)
            .take(6)
            .collect();
        let mut set = build_training_set_from_sums(
            target,
            cells.iter().enumerate().map(|(i, &c)| (c, i as f64, 1)),
            None,
            &space,
        )
        .expect("set");
        let before = set.sha256();
        // The weaker attack measured twice on the first network (sum 30 of
        // 2), once on the others but the last, which it never measured.
        let sums = cells[..5].iter().enumerate().map(|(i, &c)| {
            (
                c,
                if i == 0 { 30.0 } else { 10.0 + i as f64 },
                if i == 0 { 2 } else { 1 },
            )
        });
        set.attach_related(weaker, sums);
        assert_eq!(set.related.len(), 1);
        assert_eq!(set.related[0].objective, "cifar10/pgd_eps1");
        let values = &set.related[0].values;
        assert_eq!(&values[..5], &[15.0, 11.0, 12.0, 13.0, 14.0]);
        assert!(values[5].is_nan());
        assert_ne!(
            set.sha256(),
            before,
            "a model learns from related values too"
        );
        let subset = set.related_subset(&[4, 1]);
        assert_eq!(subset[0].values, [14.0, 11.0]);
    }

    #[test]
    fn an_objective_reads_its_own_datasets_proxies_else_its_stand_ins() {
        let space = Nb201::new();
        let cells: Vec<Cell> = Cell::all()
            .filter(|c| c.canonical() == *c)
            .take(30)
            .collect();
        let values: HashMap<Cell, ProxyValues> = cells
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                (
                    c,
                    ProxyValues([i as f64; crate::features::PROXY_NAMES.len()]),
                )
            })
            .collect();
        let get = |id| crate::objectives::get(id).expect("in the catalogue");
        let (c10, c100, imagenet, latency) = (
            get("cifar10/val_acc_200ep"),
            get("cifar100/test_acc_200ep"),
            get("ImageNet16-120/val_acc_200ep"),
            get("cifar100/edgegpu_latency"),
        );
        // The tables' case: proxies of CIFAR-10 and ImageNet16-120 only.
        let available: HashMap<Dataset, HashMap<Cell, ProxyValues>> = [
            (Dataset::Cifar10, values.clone()),
            (Dataset::ImageNet16_120, values.clone()),
        ]
        .into();
        let source = |o| proxy_source(o, &available).map(|p| p.dataset);
        assert_eq!(source(c10), Some(Dataset::Cifar10));
        assert_eq!(source(c100), Some(Dataset::Cifar10), "the stand-in");
        assert_eq!(source(imagenet), Some(Dataset::ImageNet16_120));
        // A dataset's own proxies come first once they are at hand.
        let mut with_own = available.clone();
        with_own.insert(Dataset::Cifar100, values.clone());
        assert_eq!(
            proxy_source(c100, &with_own).map(|p| p.dataset),
            Some(Dataset::Cifar100)
        );
        // ImageNet16-120's inputs are another size: no stand-in.
        let cifar_only: HashMap<_, _> = [(Dataset::Cifar10, values.clone())].into();
        assert!(proxy_source(imagenet, &cifar_only).is_none());

        // The set and the manifest say whose proxies the model reads;
        // hardware models read none, whatever they are given.
        let sums = || cells.iter().enumerate().map(|(i, &c)| (c, i as f64, 1));
        let set =
            build_training_set_from_sums(c100, sums(), proxy_source(c100, &available), &space)
                .expect("set");
        assert_eq!(set.proxy_dataset, Some(Dataset::Cifar10));
        assert!(set.feature_names.iter().any(|n| n == PROXIES_SENT_FEATURE));
        let hardware = build_training_set_from_sums(
            latency,
            sums(),
            proxy_source(latency, &available),
            &space,
        )
        .expect("set");
        assert_eq!(hardware.proxy_dataset, None);
        assert!(
            !hardware
                .feature_names
                .iter()
                .any(|n| n == PROXIES_SENT_FEATURE)
        );

        let config = TrainConfig::with_rounds(20);
        let all: Vec<usize> = (0..set.len()).collect();
        let fitted = fit(&set, &all, &config).expect("fit");
        let heldout = evaluate(&fitted, &set, &all);
        let packaged = package(c100, &set, set.len(), heldout, fitted, &config, json!(null));
        assert_eq!(packaged.manifest.proxy_dataset.as_deref(), Some("cifar10"));
        let model = crate::model::Model::from_parts(
            packaged.manifest.clone(),
            &packaged.model_text,
            &crate::space::SearchSpaces::builtin(),
        )
        .expect("loads");
        assert_eq!(model.dataset, Dataset::Cifar100);
        assert_eq!(model.proxy_dataset, Dataset::Cifar10);
        // A manifest without the field (older models) reads its own
        // dataset's proxies; an unknown one does not load.
        let mut older = packaged.manifest.clone();
        older.proxy_dataset = None;
        let older = crate::model::Model::from_parts(
            older,
            &packaged.model_text,
            &crate::space::SearchSpaces::builtin(),
        )
        .expect("loads");
        assert_eq!(older.proxy_dataset, Dataset::Cifar100);
        let mut unknown = packaged.manifest;
        unknown.proxy_dataset = Some("mnist".into());
        let err = crate::model::Model::from_parts(
            unknown,
            &packaged.model_text,
            &crate::space::SearchSpaces::builtin(),
        )
        .expect_err("an unknown proxy dataset");
        assert!(err.to_string().contains("proxy_dataset"), "{err}");
    }
}
