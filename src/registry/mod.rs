//! The model registry: loads every model in a directory, watches it, and
//! swaps new versions in without dropping a request.
//!
//! Serving state is an immutable [`ModelSet`] behind an [`ArcSwap`]. A
//! request takes one snapshot ([`Registry::snapshot`]) and uses it from
//! start to end, so it never sees half of a reload. A reload builds and
//! validates the next snapshot off the request path (on a blocking thread),
//! reusing every unchanged model, and then swaps it in with one atomic
//! store. A model that fails to load or validate is refused with a log line;
//! the version it would have replaced keeps serving, and the failure is
//! shown in `ListObjectives`.
//!
//! Models come from one of two sources. A model directory
//! ([`Registry::reload`]) holds one version per objective, served for every
//! study. The store ([`store_sync`]) holds versions per study and
//! objective; a request naming a study is served by that study's model of
//! an objective, or the default study's when the study has none yet.
//!
//! The directory is polled rather than watched with inotify: polling works
//! the same on every filesystem and on Kubernetes volumes, where files are
//! swapped through symlinks, and a poll of small manifests costs little.

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use arc_swap::ArcSwap;
use tokio::sync::watch;

pub mod store_sync;

use crate::{
    model::{MANIFEST_SUFFIX, Manifest, Model, ModelError, sha256_hex},
    space::SearchSpaces,
    store::DEFAULT_STUDY,
    sync::lock,
};

/// What the registry knows about one objective.
#[derive(Debug, Clone, Default)]
pub struct ObjectiveEntry {
    /// The model serving the objective, if any loaded.
    pub model: Option<Arc<Model>>,
    /// Why the newest model file for the objective was refused, if it was.
    pub load_error: Option<String>,
}

/// One consistent set of models: by study, then objective.
#[derive(Debug, Clone, Default)]
pub struct ModelSet {
    pub studies: BTreeMap<String, BTreeMap<String, ObjectiveEntry>>,
    /// Increases with every swap.
    pub generation: u64,
}

/// An objective as a request for one study sees it.
#[derive(Debug, Clone, Copy)]
pub struct Resolved<'a> {
    /// The study whose model serves: the one asked for, or the default.
    pub study: &'a str,
    pub entry: &'a ObjectiveEntry,
}

impl ModelSet {
    /// The entry serving `objective` for `study` ("" is the default
    /// study): the study's own, else the default study's.
    pub fn resolve<'a>(&'a self, study: &str, objective: &str) -> Option<Resolved<'a>> {
        let own = (!study.is_empty() && study != DEFAULT_STUDY)
            .then(|| self.studies.get_key_value(study))
            .flatten()
            .and_then(|(s, m)| m.get(objective).map(|e| (s, e)))
            .filter(|(_, e)| e.model.is_some());
        own.or_else(|| {
            self.studies
                .get_key_value(DEFAULT_STUDY)
                .and_then(|(s, m)| m.get(objective).map(|e| (s, e)))
        })
        .map(|(study, entry)| Resolved { study, entry })
    }

    /// Every objective `study` can be served, resolved as [`ModelSet::resolve`] does.
    pub fn objectives<'a>(&'a self, study: &str) -> BTreeMap<&'a str, Resolved<'a>> {
        let mut out = BTreeMap::new();
        let mut names: Vec<&str> = Vec::new();
        for s in [DEFAULT_STUDY, study] {
            if let Some(m) = self.studies.get(s) {
                names.extend(m.keys().map(String::as_str));
            }
        }
        for name in names {
            if let Some(r) = self.resolve(study, name) {
                out.insert(name, r);
            }
        }
        out
    }

    /// The default study's model of `objective`.
    pub fn model(&self, objective: &str) -> Option<&Arc<Model>> {
        self.resolve(DEFAULT_STUDY, objective)
            .and_then(|r| r.entry.model.as_ref())
    }

    fn default_study(&self) -> Option<&BTreeMap<String, ObjectiveEntry>> {
        self.studies.get(DEFAULT_STUDY)
    }
}

/// What a reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    pub loaded: Vec<String>,
    pub refused: Vec<String>,
    pub removed: Vec<String>,
    pub unchanged: usize,
}

impl ReloadReport {
    pub fn changed(&self) -> bool {
        !(self.loaded.is_empty() && self.refused.is_empty() && self.removed.is_empty())
    }
}

/// Identifies the files behind one objective, to skip re-reading what did
/// not change. The manifest is hashed (it is small); the model file it names
/// is identified by size and mtime, so that a model file that arrives after
/// its manifest (a hand copy) is retried.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    manifest_sha256: String,
    model_len: Option<u64>,
    model_modified: Option<std::time::SystemTime>,
}

pub struct Registry {
    /// The model directory, when models come from one.
    dir: Option<PathBuf>,
    spaces: SearchSpaces,
    current: ArcSwap<ModelSet>,
    /// Fingerprints of what the current snapshot was built from, and of
    /// refused files; only the reloader touches it (never across `.await`).
    seen: Mutex<HashMap<String, Fingerprint>>,
    /// Store versions that failed to load, so they are not fetched again.
    refused: Mutex<HashMap<(String, String), String>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// An empty registry over `dir`; call [`Registry::reload`] to load.
    pub fn new(dir: impl Into<PathBuf>, spaces: SearchSpaces) -> Self {
        Self::with_source(Some(dir.into()), spaces)
    }

    /// An empty registry filled from the store ([`store_sync`]).
    pub fn for_store(spaces: SearchSpaces) -> Self {
        Self::with_source(None, spaces)
    }

    fn with_source(dir: Option<PathBuf>, spaces: SearchSpaces) -> Self {
        Self {
            dir,
            spaces,
            current: ArcSwap::from_pointee(ModelSet::default()),
            seen: Mutex::new(HashMap::new()),
            refused: Mutex::new(HashMap::new()),
        }
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The current models. Hold the returned `Arc` for the whole request.
    pub fn snapshot(&self) -> Arc<ModelSet> {
        self.current.load_full()
    }

    /// Scans the directory and swaps in a new snapshot if anything changed.
    /// Blocking (file I/O and parsing): call it from a blocking thread.
    pub fn reload(&self) -> Result<ReloadReport, std::io::Error> {
        let Some(dir) = &self.dir else {
            return Err(std::io::Error::other(
                "models come from the store, not a directory",
            ));
        };
        let manifests = find_manifests(dir)?;
        let old = self.snapshot();
        let mut seen = lock(&self.seen);
        let mut next = BTreeMap::new();
        let mut report = ReloadReport::default();

        for (objective, manifest_path) in &manifests {
            let previous = old
                .default_study()
                .and_then(|m| m.get(objective))
                .cloned()
                .unwrap_or_default();
            let fingerprint = match fingerprint(manifest_path) {
                Ok(f) => f,
                Err(e) => {
                    // The manifest vanished between the scan and the read:
                    // keep what serves, try again on the next poll.
                    tracing::debug!(objective, error = %e, "manifest unreadable, retrying later");
                    next.insert(objective.clone(), previous);
                    continue;
                }
            };
            if seen.get(objective) == Some(&fingerprint) {
                report.unchanged += 1;
                next.insert(objective.clone(), previous);
                continue;
            }
            let entry = match self.load_one(objective, manifest_path) {
                Ok(model) => {
                    tracing::info!(
                        objective,
                        version = %model.manifest.version,
                        previous = previous.model.as_ref().map(|m| m.manifest.version.as_str()).unwrap_or("none"),
                        "model loaded"
                    );
                    report.loaded.push(objective.clone());
                    ObjectiveEntry {
                        model: Some(Arc::new(model)),
                        load_error: None,
                    }
                }
                Err(e) => {
                    let message = e.to_string();
                    tracing::error!(
                        objective,
                        error = %message,
                        serving = previous.model.as_ref().map(|m| m.manifest.version.as_str()).unwrap_or("nothing"),
                        "model refused; the previous version keeps serving"
                    );
                    report.refused.push(objective.clone());
                    ObjectiveEntry {
                        model: previous.model,
                        load_error: Some(message),
                    }
                }
            };
            seen.insert(objective.clone(), fingerprint);
            next.insert(objective.clone(), entry);
        }
        for objective in old.default_study().into_iter().flat_map(BTreeMap::keys) {
            if !manifests.contains_key(objective) {
                tracing::warn!(
                    objective,
                    "model files removed; the objective is no longer served"
                );
                seen.remove(objective);
                report.removed.push(objective.clone());
            }
        }
        if report.changed() {
            let generation = old.generation + 1;
            let mut studies = BTreeMap::new();
            studies.insert(DEFAULT_STUDY.to_owned(), next);
            self.current.store(Arc::new(ModelSet {
                studies,
                generation,
            }));
        }
        Ok(report)
    }

    fn load_one(&self, objective: &str, manifest_path: &Path) -> Result<Model, ModelError> {
        let model = Model::load(manifest_path, &self.spaces)?;
        let manifest = &model.manifest;
        if manifest.objective != objective {
            return Err(ModelError::Invalid(format!(
                "{}: the manifest is for objective {:?}, but its path says {objective:?}",
                manifest_path.display(),
                manifest.objective
            )));
        }
        Ok(model)
    }

    /// Reloads every `interval` until `shutdown` turns true. Reload errors
    /// (an unreadable directory) are logged and retried.
    pub async fn watch(self: Arc<Self>, interval: Duration, mut shutdown: watch::Receiver<bool>) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A directory that stays unreadable is logged once, not every poll.
        let mut failing: Option<String> = None;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
            let registry = Arc::clone(&self);
            let error = match tokio::task::spawn_blocking(move || registry.reload()).await {
                Ok(Ok(_)) => None,
                Ok(Err(e)) => Some(format!("cannot scan the model directory: {e}")),
                Err(e) => Some(format!("model reload task failed: {e}")),
            };
            match (&failing, &error) {
                (None, Some(e)) => {
                    tracing::error!(dir = ?self.dir, error = %e, "model reload failing")
                }
                (Some(_), None) => {
                    tracing::info!(dir = ?self.dir, "model reload works again")
                }
                (Some(old), Some(e)) if old != e => {
                    tracing::error!(dir = ?self.dir, error = %e, "model reload failing")
                }
                _ => {}
            }
            failing = error;
        }
    }
}

/// `<dir>/<dataset>/<metric>.manifest.json` for every objective under `dir`,
/// by objective ID `<dataset>/<metric>`.
pub fn find_manifests(dir: &Path) -> Result<BTreeMap<String, PathBuf>, std::io::Error> {
    let mut out = BTreeMap::new();
    for dataset in std::fs::read_dir(dir)? {
        let dataset = dataset?;
        if !dataset.file_type()?.is_dir() && !dataset.path().is_dir() {
            continue;
        }
        let Some(ds_name) = dataset.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        for file in std::fs::read_dir(dataset.path())? {
            let file = file?;
            let name = file.file_name();
            let Some(metric) = name.to_str().and_then(|n| n.strip_suffix(MANIFEST_SUFFIX)) else {
                continue;
            };
            out.insert(format!("{ds_name}/{metric}"), file.path());
        }
    }
    Ok(out)
}

fn fingerprint(manifest_path: &Path) -> Result<Fingerprint, std::io::Error> {
    let manifest = std::fs::read(manifest_path)?;
    let meta = serde_json::from_slice::<Manifest>(&manifest)
        .ok()
        .filter(|m| !m.model_file.contains(['/', '\\']))
        .and_then(|m| std::fs::metadata(manifest_path.with_file_name(m.model_file)).ok());
    Ok(Fingerprint {
        manifest_sha256: sha256_hex(&manifest),
        model_len: meta.as_ref().map(std::fs::Metadata::len),
        model_modified: meta.and_then(|m| m.modified().ok()),
    })
}
