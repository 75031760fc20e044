//! Keeping the registry in step with the serving versions in the store.
//!
//! [`Registry::sync_from_store`] compares the store's serving versions
//! with the snapshot, fetches only what changed, validates it on a
//! blocking thread and swaps the next snapshot in. [`watch_store`] runs it
//! whenever the store says a serving version changed (a promotion in this
//! process, or a PostgreSQL notification from another replica through
//! [`listen`]) and on a slow timer as the fallback for notifications lost
//! with a connection.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use tokio::sync::watch;

use super::{ModelSet, ObjectiveEntry, Registry, ReloadReport};
use crate::{
    model::Model,
    store::{Store, StoreError, StoreHandle, models::MODELS_CHANNEL},
    sync::lock,
};

impl Registry {
    /// Loads what the store says serves. A version that fails to load is
    /// refused with a log line and shown in `ListObjectives`; the version
    /// it would have replaced keeps serving.
    pub async fn sync_from_store(&self, store: &Store) -> Result<ReloadReport, StoreError> {
        let serving = store.serving_versions().await?;
        let old = self.snapshot();
        let mut next: BTreeMap<String, BTreeMap<String, ObjectiveEntry>> = BTreeMap::new();
        let mut report = ReloadReport::default();
        for v in &serving {
            let previous = old
                .studies
                .get(&v.study)
                .and_then(|m| m.get(&v.objective))
                .cloned()
                .unwrap_or_default();
            let key = (v.study.clone(), v.objective.clone());
            let label = format!("{}/{}", v.study, v.objective);
            let same = previous
                .model
                .as_ref()
                .is_some_and(|m| m.manifest.version == v.version);
            let refused_before = lock(&self.refused)
                .get(&key)
                .is_some_and(|r| *r == v.version);
            if same || refused_before {
                report.unchanged += 1;
                next.entry(v.study.clone())
                    .or_default()
                    .insert(v.objective.clone(), previous);
                continue;
            }
            let (manifest, text) = store.model_text(&v.study, &v.objective, &v.version).await?;
            let spaces = self.spaces.clone();
            let loaded = tokio::task::spawn_blocking(move || {
                Model::from_parts(manifest, &text, &spaces).map_err(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|e| Err(format!("loading task failed: {e}")));
            let entry = match loaded {
                Ok(model) => {
                    tracing::info!(
                        study = %v.study,
                        objective = %v.objective,
                        version = %v.version,
                        previous = previous.model.as_ref().map(|m| m.manifest.version.as_str()).unwrap_or("none"),
                        "model loaded from the store"
                    );
                    lock(&self.refused).remove(&key);
                    report.loaded.push(label);
                    ObjectiveEntry {
                        model: Some(Arc::new(model)),
                        load_error: None,
                    }
                }
                Err(message) => {
                    tracing::error!(
                        study = %v.study,
                        objective = %v.objective,
                        version = %v.version,
                        error = %message,
                        "model refused; the previous version keeps serving"
                    );
                    lock(&self.refused).insert(key, v.version.clone());
                    report.refused.push(label);
                    ObjectiveEntry {
                        model: previous.model,
                        load_error: Some(message),
                    }
                }
            };
            next.entry(v.study.clone())
                .or_default()
                .insert(v.objective.clone(), entry);
        }
        for (study, objectives) in &old.studies {
            for objective in objectives.keys() {
                let still = next.get(study).is_some_and(|m| m.contains_key(objective));
                if !still {
                    tracing::warn!(%study, %objective, "no version serves any more");
                    report.removed.push(format!("{study}/{objective}"));
                }
            }
        }
        if report.changed() {
            self.current.store(Arc::new(ModelSet {
                studies: next,
                generation: old.generation + 1,
            }));
        }
        Ok(report)
    }
}

/// Syncs once the store is open, then on every change the store reports
/// and every `poll` as the fallback, until `shutdown`. `ready` is called
/// once, after the first sync (whether or not it found models).
pub async fn watch_store(
    registry: Arc<Registry>,
    store: StoreHandle,
    poll: Duration,
    mut shutdown: watch::Receiver<bool>,
    ready: impl std::future::Future<Output = ()>,
) {
    let store = loop {
        if let Some(s) = store.get() {
            break s;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = shutdown.changed() => return,
        }
    };
    let mut changes = store.model_changes();
    let mut ready = Some(ready);
    let mut ticker = tokio::time::interval(poll);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        changes.borrow_and_update();
        match registry.sync_from_store(&store).await {
            Ok(report) => {
                if failing {
                    tracing::info!("loading models from the store works again");
                }
                failing = false;
                if report.changed() {
                    tracing::info!(
                        loaded = report.loaded.len(),
                        refused = report.refused.len(),
                        removed = report.removed.len(),
                        "models synced from the store"
                    );
                }
                if let Some(r) = ready.take() {
                    r.await;
                }
            }
            Err(e) => {
                if !failing {
                    tracing::error!(error = %e, "cannot load models from the store; serving what is loaded");
                }
                failing = true;
            }
        }
        tokio::select! {
            _ = ticker.tick() => {}
            r = changes.changed() => if r.is_err() { return },
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

/// Listens for PostgreSQL notifications of changed serving versions and
/// passes them to the store's change counter. After a lost connection it
/// reconnects and reports a change, since notifications sent meanwhile are
/// gone.
pub async fn listen(url: String, store: StoreHandle, mut shutdown: watch::Receiver<bool>) {
    let mut delay = Duration::from_millis(250);
    loop {
        let attempt = async {
            let mut listener = sqlx::postgres::PgListener::connect(&url).await?;
            listener.listen(MODELS_CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = tokio::select! {
            r = attempt => match r {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?delay, "cannot listen for model changes; polling meanwhile");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.changed() => return,
                    }
                    delay = (delay * 2).min(Duration::from_secs(30));
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        delay = Duration::from_millis(250);
        tracing::debug!(channel = MODELS_CHANNEL, "listening for model changes");
        // Whatever changed while we were not listening.
        if let Some(s) = store.get() {
            s.note_model_change();
        }
        loop {
            let next = tokio::select! {
                n = listener.try_recv() => n,
                _ = shutdown.changed() => return,
            };
            match next {
                Ok(Some(_)) => {
                    if let Some(s) = store.get() {
                        s.note_model_change();
                    }
                }
                // The connection dropped; the next call reconnects.
                Ok(None) => {
                    tracing::warn!("model-change connection lost; reconnecting");
                    if let Some(s) = store.get() {
                        s.note_model_change();
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "model-change listener failed; reconnecting");
                    break;
                }
            }
        }
    }
}
