//! Model versions in the store: every trained model with its manifest, its
//! held-out figures and the gate's decision, and which version serves.
//!
//! A study and objective has at most one serving version, `active` or
//! `pinned` (a partial unique index enforces it). Every change of the
//! serving version happens in one transaction: a trainer that dies before
//! the commit leaves the previous version serving and nothing half-done.
//! On PostgreSQL the same transaction sends a `NOTIFY` on
//! [`MODELS_CHANNEL`], delivered to every replica at commit; in one process
//! (SQLite) the store's own change counter wakes the loader.

use std::collections::HashMap;

use sqlx::{Any, Connection, Row, Transaction};

use super::{Backend, DEFAULT_STUDY, Store, StoreError, now_ms};
use crate::{
    features::{PROXY_NAMES, ProxyValues, proxy_index},
    model::Manifest,
};

/// The PostgreSQL channel that announces a changed serving version.
pub const MODELS_CHANNEL: &str = "nasperf_models";

/// The advisory lock key of the one trainer (any fixed 64-bit number;
/// this one spells "nasperf" in ASCII).
const TRAINER_LOCK_KEY: i64 = 0x006e_6173_7065_7266;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelStatus {
    /// Trained, not serving: refused by the gate or replaced by a pin.
    Candidate,
    /// Serving; automatic promotion may replace it.
    Active,
    /// Served once, replaced since.
    Retired,
    /// Serving, chosen by an operator; automatic promotion leaves it alone.
    Pinned,
}

impl ModelStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelStatus::Candidate => "candidate",
            ModelStatus::Active => "active",
            ModelStatus::Retired => "retired",
            ModelStatus::Pinned => "pinned",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "candidate" => ModelStatus::Candidate,
            "active" => ModelStatus::Active,
            "retired" => ModelStatus::Retired,
            "pinned" => ModelStatus::Pinned,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "unknown model status {other:?}"
                )));
            }
        })
    }

    pub fn serves(self) -> bool {
        matches!(self, ModelStatus::Active | ModelStatus::Pinned)
    }
}

/// A model version as the store lists it (without its text).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredModel {
    pub study: String,
    pub objective: String,
    pub version: String,
    pub status: ModelStatus,
    pub manifest: Manifest,
    /// The serving version's Kendall tau on this version's held-out rows,
    /// when one was serving at training time.
    pub baseline_kendall_tau: Option<f64>,
    /// Why the version was or was not promoted.
    pub decision: String,
    pub created_at_ms: i64,
    pub activated_at_ms: Option<i64>,
    pub max_evaluation_id: i64,
}

/// The serving version of one study and objective.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServingVersion {
    pub study: String,
    pub objective: String,
    pub version: String,
}

/// A model to store, with the gate's verdict.
#[derive(Debug, Clone)]
pub struct NewModel<'a> {
    pub study: &'a str,
    pub manifest: &'a Manifest,
    pub model_text: &'a str,
    pub baseline_kendall_tau: Option<f64>,
    /// Serve it (unless a pinned version serves), or keep it a candidate.
    pub promote: bool,
    /// Serve it pinned (an operator's import).
    pub pin: bool,
    pub decision: String,
    pub max_evaluation_id: i64,
}

/// What storing a model did.
#[derive(Debug, Clone, PartialEq)]
pub struct SaveOutcome {
    pub status: ModelStatus,
    /// The version it replaced, when it now serves.
    pub replaced: Option<String>,
    /// The decision as stored (a pin can turn a promotion down).
    pub decision: String,
}

/// The last training attempt of a study and objective.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingState {
    pub max_evaluation_id: i64,
    pub training_data_sha256: String,
    pub outcome: String,
    pub message: String,
    pub updated_at_ms: i64,
}

/// The evaluations of one architecture, as training reads them: summed by
/// the database, so what a retraining reads grows with the architectures a
/// study evaluated, not with its evaluations (workers measure the same
/// networks again and again; a 10-minute soak showed resident memory
/// climbing with every retraining while rows were read one by one).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingArchitecture {
    pub encoding: String,
    pub value_sum: f64,
    pub count: i64,
    /// The newest evaluation among them.
    pub max_evaluation_id: i64,
}

/// Held while training: on PostgreSQL a session advisory lock on a
/// connection of its own (closing it, or the process dying, releases the
/// lock); in one process, a mutex guard.
pub struct TrainerLock {
    connection: Option<sqlx::AnyConnection>,
    _local: tokio::sync::OwnedMutexGuard<()>,
}

impl std::fmt::Debug for TrainerLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainerLock")
            .field("database_lock", &self.connection.is_some())
            .finish()
    }
}

impl TrainerLock {
    /// Releases the lock now. Dropping it also releases it, a moment later
    /// (when the connection is closed).
    pub async fn release(mut self) {
        if let Some(mut conn) = self.connection.take() {
            // Unlocked explicitly first: closing also releases the lock, but
            // the server does so after it has processed the disconnect, and a
            // retraining started right after could still find it held (a
            // test saw Busy that way).
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(TRAINER_LOCK_KEY)
                .execute(&mut conn)
                .await;
            let _ = conn.close().await;
        }
    }
}

fn study_or_default(study: &str) -> &str {
    if study.is_empty() {
        DEFAULT_STUDY
    } else {
        study
    }
}

impl Store {
    /// Tries to become the one trainer; `None` when another replica (or
    /// another task of this one) is training.
    pub async fn try_trainer_lock(&self) -> Result<Option<TrainerLock>, StoreError> {
        let Ok(local) = std::sync::Arc::clone(&self.trainer).try_lock_owned() else {
            return Ok(None);
        };
        let connection = match self.backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let mut conn = self.pool.acquire().await?.detach();
                let got: bool = sqlx::query("SELECT pg_try_advisory_lock($1)")
                    .bind(TRAINER_LOCK_KEY)
                    .fetch_one(&mut conn)
                    .await?
                    .try_get(0)?;
                if !got {
                    let _ = conn.close().await;
                    return Ok(None);
                }
                Some(conn)
            }
        };
        Ok(Some(TrainerLock {
            connection,
            _local: local,
        }))
    }

    /// Counts each time a serving version changes through this store; the
    /// loader waits on it (PostgreSQL notifications from other replicas
    /// are added by the listener).
    pub fn model_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.model_changes.subscribe()
    }

    /// Says that serving versions may have changed (a notification came).
    pub fn note_model_change(&self) {
        self.model_changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Every serving version, for the loader to compare with what it has.
    pub async fn serving_versions(&self) -> Result<Vec<ServingVersion>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.name, m.objective, m.version FROM models m JOIN studies s ON s.id = m.study_id \
             WHERE m.status IN ('active', 'pinned') ORDER BY s.name, m.objective",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ServingVersion {
                    study: r.try_get(0)?,
                    objective: r.try_get(1)?,
                    version: r.try_get(2)?,
                })
            })
            .collect()
    }

    /// The manifest and model text of one version.
    pub async fn model_text(
        &self,
        study: &str,
        objective: &str,
        version: &str,
    ) -> Result<(Manifest, String), StoreError> {
        let row = sqlx::query(
            "SELECT m.manifest, m.model_text FROM models m JOIN studies s ON s.id = m.study_id \
             WHERE s.name = $1 AND m.objective = $2 AND m.version = $3",
        )
        .bind(study)
        .bind(objective)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::UnknownModel {
            study: study.to_owned(),
            objective: objective.to_owned(),
            version: version.to_owned(),
        })?;
        let manifest: String = row.try_get(0)?;
        let manifest = serde_json::from_str(&manifest)
            .map_err(|e| StoreError::Corrupt(format!("manifest of {objective} {version}: {e}")))?;
        Ok((manifest, row.try_get(1)?))
    }

    /// Every version of a study (all studies when empty), optionally of one
    /// objective, newest first within each objective.
    pub async fn list_models(
        &self,
        study: &str,
        objective: &str,
    ) -> Result<Vec<StoredModel>, StoreError> {
        if !study.is_empty() {
            self.require_study(study).await?;
        }
        let mut sql = String::from(
            "SELECT s.name, m.objective, m.version, m.status, m.manifest, m.baseline_kendall_tau, \
                    m.decision, m.created_at, m.activated_at, m.max_evaluation_id \
             FROM models m JOIN studies s ON s.id = m.study_id WHERE 1 = 1",
        );
        let mut n = 0;
        if !study.is_empty() {
            n += 1;
            sql.push_str(&format!(" AND s.name = ${n}"));
        }
        if !objective.is_empty() {
            n += 1;
            sql.push_str(&format!(" AND m.objective = ${n}"));
        }
        sql.push_str(" ORDER BY s.name, m.objective, m.created_at DESC, m.id DESC");
        let mut q = sqlx::query(&sql);
        if !study.is_empty() {
            q = q.bind(study);
        }
        if !objective.is_empty() {
            q = q.bind(objective);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let manifest: String = r.try_get(4)?;
                let version: String = r.try_get(2)?;
                let status: String = r.try_get(3)?;
                Ok(StoredModel {
                    study: r.try_get(0)?,
                    objective: r.try_get(1)?,
                    manifest: serde_json::from_str(&manifest).map_err(|e| {
                        StoreError::Corrupt(format!("manifest of version {version}: {e}"))
                    })?,
                    version,
                    status: ModelStatus::parse(&status)?,
                    baseline_kendall_tau: r.try_get(5)?,
                    decision: r.try_get(6)?,
                    created_at_ms: r.try_get(7)?,
                    activated_at_ms: r.try_get(8)?,
                    max_evaluation_id: r.try_get(9)?,
                })
            })
            .collect()
    }

    /// Stores a trained model and, when it is promoted and no pinned
    /// version serves, makes it the serving version, all in one
    /// transaction.
    pub async fn save_model(&self, model: NewModel<'_>) -> Result<SaveOutcome, StoreError> {
        let study = study_or_default(model.study);
        let study_id = self.study_id(study).await?;
        let objective = model.manifest.objective.as_str();
        let manifest_json = serde_json::to_string(model.manifest)
            .map_err(|e| StoreError::Corrupt(format!("manifest: {e}")))?;
        let mut tx = self.pool.begin().await?;
        self.lock_serving_slot(&mut tx, study_id, objective).await?;
        let serving = serving_in(&mut tx, study_id, objective).await?;
        let mut decision = model.decision.clone();
        let serve = match &serving {
            Some((_, ModelStatus::Pinned)) if model.promote && !model.pin => {
                decision = format!(
                    "{decision}; not promoted: version {} is pinned (UnpinModel lets promotion resume)",
                    serving.as_ref().map(|s| s.0.as_str()).unwrap_or_default()
                );
                false
            }
            _ => model.promote || model.pin,
        };
        let now = now_ms();
        let status = match (serve, model.pin) {
            (true, true) => ModelStatus::Pinned,
            (true, false) => ModelStatus::Active,
            (false, _) => ModelStatus::Candidate,
        };
        let replaced = if serve {
            sqlx::query(
                "UPDATE models SET status = 'retired' WHERE study_id = $1 AND objective = $2 \
                 AND status IN ('active', 'pinned')",
            )
            .bind(study_id)
            .bind(objective)
            .execute(&mut *tx)
            .await?;
            serving.map(|s| s.0)
        } else {
            None
        };
        // Optional values are written as SQL literals, never bound as NULL:
        // through sqlx's Any driver a bound NULL carries no type, and
        // PostgreSQL's cached statement then rejects a later value in the
        // same position.
        let baseline = model
            .baseline_kendall_tau
            .filter(|t| t.is_finite())
            .map_or_else(|| "NULL".to_owned(), |_| "$9".to_owned());
        let activated = if serve { "$10" } else { "NULL" };
        let sql = format!(
            "INSERT INTO models (study_id, objective, version, status, manifest, model_text, \
                                 training_data_sha256, created_at, decision, max_evaluation_id, \
                                 baseline_kendall_tau, activated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $11, $12, {baseline}, {activated}) \
             ON CONFLICT (study_id, objective, version) DO NOTHING RETURNING id"
        );
        let inserted = sqlx::query(&sql)
            .bind(study_id)
            .bind(objective)
            .bind(model.manifest.version.as_str())
            .bind(status.as_str())
            .bind(manifest_json)
            .bind(model.model_text)
            .bind(model.manifest.training_data_sha256.as_str())
            .bind(now)
            .bind(model.baseline_kendall_tau.unwrap_or(0.0))
            .bind(now)
            .bind(decision.as_str())
            .bind(model.max_evaluation_id)
            .fetch_optional(&mut *tx)
            .await?;
        if inserted.is_none() {
            // The same version again (an import repeated): make that row
            // serve as asked, keeping its text, which the version names.
            if serve {
                sqlx::query(
                    "UPDATE models SET status = $1, activated_at = $2 \
                     WHERE study_id = $3 AND objective = $4 AND version = $5",
                )
                .bind(status.as_str())
                .bind(now)
                .bind(study_id)
                .bind(objective)
                .bind(model.manifest.version.as_str())
                .execute(&mut *tx)
                .await?;
            }
        }
        if serve {
            self.notify_in(&mut tx).await?;
        }
        tx.commit().await?;
        if serve {
            self.note_model_change();
        }
        Ok(SaveOutcome {
            status,
            replaced,
            decision,
        })
    }

    /// Makes `version` serve, pinned: automatic promotion leaves it alone
    /// until [`Store::unpin_model`]. Rolls back or forward alike.
    pub async fn activate_model(
        &self,
        study: &str,
        objective: &str,
        version: &str,
    ) -> Result<Option<String>, StoreError> {
        let study = study_or_default(study);
        let study_id = self.study_id(study).await?;
        let mut tx = self.pool.begin().await?;
        self.lock_serving_slot(&mut tx, study_id, objective).await?;
        let exists = sqlx::query(
            "SELECT id FROM models WHERE study_id = $1 AND objective = $2 AND version = $3",
        )
        .bind(study_id)
        .bind(objective)
        .bind(version)
        .fetch_optional(&mut *tx)
        .await?;
        if exists.is_none() {
            return Err(StoreError::UnknownModel {
                study: study.to_owned(),
                objective: objective.to_owned(),
                version: version.to_owned(),
            });
        }
        let serving = serving_in(&mut tx, study_id, objective).await?;
        sqlx::query(
            "UPDATE models SET status = 'retired' WHERE study_id = $1 AND objective = $2 \
             AND status IN ('active', 'pinned') AND version <> $3",
        )
        .bind(study_id)
        .bind(objective)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE models SET status = 'pinned', activated_at = $1 \
             WHERE study_id = $2 AND objective = $3 AND version = $4",
        )
        .bind(now_ms())
        .bind(study_id)
        .bind(objective)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        self.notify_in(&mut tx).await?;
        tx.commit().await?;
        self.note_model_change();
        Ok(serving.map(|s| s.0).filter(|v| v != version))
    }

    /// Lets automatic promotion replace the pinned version again. Returns
    /// the version that was pinned.
    pub async fn unpin_model(&self, study: &str, objective: &str) -> Result<String, StoreError> {
        let study = study_or_default(study);
        let study_id = self.study_id(study).await?;
        let row = sqlx::query(
            "UPDATE models SET status = 'active' WHERE study_id = $1 AND objective = $2 \
             AND status = 'pinned' RETURNING version",
        )
        .bind(study_id)
        .bind(objective)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => Ok(r.try_get(0)?),
            None => Err(StoreError::NotPinned {
                study: study.to_owned(),
                objective: objective.to_owned(),
            }),
        }
    }

    /// Serialises the transactions that change which version of an
    /// objective serves. Without it, an ActivateModel and a promotion
    /// racing on PostgreSQL (READ COMMITTED) each retired the versions
    /// they saw, then both made one serve, and the second commit hit the
    /// one-serving index as an INTERNAL error (the soak found it). The lock
    /// is transaction-scoped: commit or rollback releases it. SQLite needs
    /// none: it runs one writing transaction at a time.
    async fn lock_serving_slot(
        &self,
        tx: &mut Transaction<'_, Any>,
        study_id: i64,
        objective: &str,
    ) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            // The two-key form: its lock space is apart from the trainer's
            // one-key advisory lock.
            sqlx::query(
                "SELECT pg_advisory_xact_lock(1853845606, hashtext($1::text || '/' || $2::text))",
            )
            .bind(study_id.to_string())
            .bind(objective)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    async fn notify_in(&self, tx: &mut Transaction<'_, Any>) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            // Delivered to every listener when the transaction commits,
            // and not at all if it does not.
            sqlx::query(&format!("NOTIFY {MODELS_CHANNEL}"))
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    // === What training reads ===

    /// Every (study, objective) with evaluations that are not excluded.
    pub async fn trainable_objectives(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT s.name, e.objective FROM evaluations e JOIN studies s ON s.id = e.study_id \
             WHERE e.excluded = $1 ORDER BY s.name, e.objective",
        )
        .bind(false)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// How many evaluations of each (study, objective) are newer than its
    /// last training attempt.
    pub async fn new_evaluation_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.name, e.objective, COUNT(*) FROM evaluations e \
             JOIN studies s ON s.id = e.study_id \
             LEFT JOIN training_state t ON t.study_id = e.study_id AND t.objective = e.objective \
             WHERE e.excluded = $1 AND e.id > COALESCE(t.max_evaluation_id, 0) \
             GROUP BY s.name, e.objective ORDER BY s.name, e.objective",
        )
        .bind(false)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }

    /// What training reads for one study and objective: one summary per
    /// architecture evaluated, in architecture order.
    pub async fn training_architectures(
        &self,
        study: &str,
        objective: &str,
    ) -> Result<Vec<TrainingArchitecture>, StoreError> {
        let study_id = self.study_id(study_or_default(study)).await?;
        let rows = sqlx::query(
            "SELECT a.encoding, SUM(e.value), COUNT(*), MAX(e.id) FROM evaluations e \
             JOIN architectures a ON a.id = e.architecture_id \
             WHERE e.study_id = $1 AND e.objective = $2 AND e.excluded = $3 \
             GROUP BY a.id, a.encoding ORDER BY a.id",
        )
        .bind(study_id)
        .bind(objective)
        .bind(false)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TrainingArchitecture {
                    encoding: r.try_get(0)?,
                    value_sum: r.try_get(1)?,
                    count: r.try_get(2)?,
                    max_evaluation_id: r.try_get(3)?,
                })
            })
            .collect()
    }

    /// The proxies reported on `dataset` for the networks a study has
    /// evaluated, by canonical key. Where twins of one network were sent
    /// with different values, the lowest architecture id wins, so the
    /// choice is stable.
    pub async fn study_proxies(
        &self,
        study: &str,
        dataset: &str,
    ) -> Result<HashMap<String, ProxyValues>, StoreError> {
        let study_id = self.study_id(study_or_default(study)).await?;
        let rows = sqlx::query(
            "SELECT a.canonical_key, p.proxy, p.value FROM proxy_values p \
             JOIN architectures a ON a.id = p.architecture_id \
             WHERE p.dataset = $1 AND p.architecture_id IN \
                   (SELECT DISTINCT architecture_id FROM evaluations WHERE study_id = $2) \
             ORDER BY a.id DESC",
        )
        .bind(dataset)
        .bind(study_id)
        .fetch_all(&self.pool)
        .await?;
        let mut out: HashMap<String, ProxyValues> = HashMap::new();
        for r in &rows {
            let key: String = r.try_get(0)?;
            let proxy: String = r.try_get(1)?;
            let value: f64 = r.try_get(2)?;
            let Some(i) = proxy_index(&proxy) else {
                continue;
            };
            // Rows come newest architecture first; later (older) rows win.
            out.entry(key).or_insert(ProxyValues::MISSING).0[i] = value;
        }
        debug_assert!(PROXY_NAMES.len() == ProxyValues::MISSING.0.len());
        Ok(out)
    }

    pub async fn training_state(
        &self,
        study: &str,
        objective: &str,
    ) -> Result<Option<TrainingState>, StoreError> {
        let study_id = self.study_id(study_or_default(study)).await?;
        let row = sqlx::query(
            "SELECT max_evaluation_id, training_data_sha256, outcome, message, updated_at \
             FROM training_state WHERE study_id = $1 AND objective = $2",
        )
        .bind(study_id)
        .bind(objective)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(TrainingState {
                max_evaluation_id: r.try_get(0)?,
                training_data_sha256: r.try_get(1)?,
                outcome: r.try_get(2)?,
                message: r.try_get(3)?,
                updated_at_ms: r.try_get(4)?,
            })
        })
        .transpose()
    }

    /// The last attempt of every study and objective (of one study when
    /// `study` is not empty), with the study's name.
    pub async fn training_states(
        &self,
        study: &str,
    ) -> Result<Vec<(String, String, TrainingState)>, StoreError> {
        let mut sql = String::from(
            "SELECT s.name, t.objective, t.max_evaluation_id, t.training_data_sha256, t.outcome, \
                    t.message, t.updated_at \
             FROM training_state t JOIN studies s ON s.id = t.study_id",
        );
        if !study.is_empty() {
            sql.push_str(" WHERE s.name = $1");
        }
        sql.push_str(" ORDER BY s.name, t.objective");
        let mut q = sqlx::query(&sql);
        if !study.is_empty() {
            q = q.bind(study);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get(0)?,
                    r.try_get(1)?,
                    TrainingState {
                        max_evaluation_id: r.try_get(2)?,
                        training_data_sha256: r.try_get(3)?,
                        outcome: r.try_get(4)?,
                        message: r.try_get(5)?,
                        updated_at_ms: r.try_get(6)?,
                    },
                ))
            })
            .collect()
    }

    pub async fn set_training_state(
        &self,
        study: &str,
        objective: &str,
        state: &TrainingState,
    ) -> Result<(), StoreError> {
        let study_id = self.study_id(study_or_default(study)).await?;
        sqlx::query(
            "INSERT INTO training_state (study_id, objective, max_evaluation_id, training_data_sha256, \
                                         outcome, message, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (study_id, objective) DO UPDATE SET \
                 max_evaluation_id = excluded.max_evaluation_id, \
                 training_data_sha256 = excluded.training_data_sha256, \
                 outcome = excluded.outcome, message = excluded.message, updated_at = excluded.updated_at",
        )
        .bind(study_id)
        .bind(objective)
        .bind(state.max_evaluation_id)
        .bind(state.training_data_sha256.as_str())
        .bind(state.outcome.as_str())
        .bind(state.message.as_str())
        .bind(state.updated_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // === Benchmark imports ===

    pub async fn bench_imported(
        &self,
        study: &str,
        tables_sha256: &str,
    ) -> Result<bool, StoreError> {
        let Ok(study_id) = self.study_id(study_or_default(study)).await else {
            return Ok(false);
        };
        Ok(
            sqlx::query(
                "SELECT rows FROM bench_imports WHERE study_id = $1 AND tables_sha256 = $2",
            )
            .bind(study_id)
            .bind(tables_sha256)
            .fetch_optional(&self.pool)
            .await?
            .is_some(),
        )
    }

    pub async fn mark_bench_imported(
        &self,
        study: &str,
        tables_sha256: &str,
        rows: i64,
    ) -> Result<(), StoreError> {
        let study_id = self.study_id(study_or_default(study)).await?;
        sqlx::query(
            "INSERT INTO bench_imports (study_id, tables_sha256, rows, imported_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (study_id, tables_sha256) DO NOTHING",
        )
        .bind(study_id)
        .bind(tables_sha256)
        .bind(rows)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// The serving version of a study and objective, inside a transaction.
async fn serving_in(
    tx: &mut Transaction<'_, Any>,
    study_id: i64,
    objective: &str,
) -> Result<Option<(String, ModelStatus)>, StoreError> {
    let row = sqlx::query(
        "SELECT version, status FROM models WHERE study_id = $1 AND objective = $2 \
         AND status IN ('active', 'pinned')",
    )
    .bind(study_id)
    .bind(objective)
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|r| {
        let status: String = r.try_get(1)?;
        Ok((r.try_get(0)?, ModelStatus::parse(&status)?))
    })
    .transpose()
}
