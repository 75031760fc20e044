//! The evaluation store: studies, architectures, proxies and the true
//! evaluations workers report, kept exactly once.
//!
//! Two backends behind one type: PostgreSQL, shared by every replica, and an
//! embedded SQLite file, the zero-set-up default. Both run the same SQL
//! through sqlx's `Any` driver (`$N` placeholders, times as Unix
//! milliseconds set here), so they cannot drift apart in behaviour; each has
//! its own migrations (`migrations/postgres`, `migrations/sqlite`), embedded
//! in the binary and applied at start. sqlx's migrator takes a PostgreSQL
//! advisory lock, so replicas starting together are safe.

pub mod import;
pub mod models;
mod record;

use std::{
    collections::HashMap,
    path::Path,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use sqlx::{
    AnyPool, Row,
    any::{AnyConnectOptions, AnyPoolOptions},
    migrate::Migrator,
};

pub use self::record::{NewEvaluation, RecordOutcome, Rejection, RejectionKind};
use crate::space::SearchSpaces;

/// Pooled PostgreSQL connections per process unless told otherwise. Each
/// `serve` replica also holds one for notifications and, while it
/// retrains, one for the trainer lock.
pub const DEFAULT_POSTGRES_CONNECTIONS: u32 = 16;

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");

/// The study evaluations go to when a request names none.
pub const DEFAULT_STUDY: &str = "default";

/// A database URL. It may hold a password, so `Debug` shows only the scheme.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(pub String);

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = self.0.split(':').next().unwrap_or_default();
        write!(f, "{scheme}://[redacted]")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("applying migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL scheme {0:?}; use postgres://... or sqlite://...")]
    UnsupportedUrl(String),
    #[error("study {0:?} already exists")]
    StudyExists(String),
    #[error("study {0:?} does not exist")]
    UnknownStudy(String),
    #[error("{field}: {message}")]
    InvalidArgument {
        field: &'static str,
        message: String,
    },
    #[error("no model version {version:?} of {objective:?} in study {study:?}; see ListModels")]
    UnknownModel {
        study: String,
        objective: String,
        version: String,
    },
    #[error("no version of {objective:?} is pinned in study {study:?}")]
    NotPinned { study: String, objective: String },
    #[error("the store holds data it cannot read: {0}")]
    Corrupt(String),
    #[error("creating the data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// Whether the database could not be reached (as opposed to refusing a
    /// request): the client should retry with the same idempotency keys.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Database(
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed,
            ) => true,
            // The server ended the session (an administrator's
            // pg_terminate_backend, a restart, a failover) or cannot take
            // one now: the soak test's outage hit a prediction's
            // measured-values lookup with 57P01, answered INTERNAL.
            StoreError::Database(sqlx::Error::Database(e)) => {
                e.code().is_some_and(|code| is_unavailable_sqlstate(&code))
            }
            _ => false,
        }
    }
}

/// SQLSTATEs that mean "the database is away", not "the request is wrong":
/// class 08 (connection exceptions), 57P01-57P03 (shutdown, crash, not
/// accepting connections yet) and 53300 (too many connections).
fn is_unavailable_sqlstate(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_of_a_departed_server_are_unavailable_and_others_are_not() {
        for code in ["08006", "08003", "57P01", "57P02", "57P03", "53300"] {
            assert!(is_unavailable_sqlstate(code), "{code}");
        }
        for code in ["23505", "22P02", "42P01", "40001", "57014"] {
            assert!(!is_unavailable_sqlstate(code), "{code}");
        }
    }
}

/// A study and how much it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Study {
    pub name: String,
    pub description: String,
    pub created_at_ms: i64,
    pub evaluations: i64,
}

/// What `list_evaluations` returns, newest last.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvaluation {
    pub id: i64,
    pub study: String,
    pub search_space: String,
    pub encoding: String,
    pub canonical_key: String,
    pub objective: String,
    pub value: f64,
    pub budget: Option<f64>,
    pub worker: String,
    pub recorded_at_ms: i64,
    pub idempotency_key: String,
}

/// Which evaluations to list. Empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvaluationFilter {
    /// Studies to read; several pool their data. Empty means the default.
    pub studies: Vec<String>,
    pub objective: String,
    pub worker: String,
    /// The architecture in any accepted encoding, with its search space.
    pub search_space: String,
    pub arch: String,
    /// Recorded at or after, Unix milliseconds (0: no bound).
    pub since_ms: i64,
    /// Recorded before, Unix milliseconds (0: no bound).
    pub until_ms: i64,
    /// Return rows with `id` greater than this (the previous page's token).
    pub after_id: i64,
    pub limit: u32,
}

/// The most rows one page returns.
pub const MAX_PAGE: u32 = 10_000;

/// The rows a page holds for a requested size (0: the default of 1,000).
pub fn page_size(requested: u32) -> u32 {
    if requested == 0 {
        1_000
    } else {
        requested.min(MAX_PAGE)
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    spaces: SearchSpaces,
    /// One trainer per process; across replicas, an advisory lock.
    trainer: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Bumped whenever a serving model version may have changed.
    model_changes: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
}

impl Store {
    /// Opens the store a server is configured with: PostgreSQL when a URL
    /// is given, otherwise SQLite in `data_dir/nasperf.db`, created if
    /// missing. Applies pending migrations.
    pub async fn open(database_url: Option<&str>, data_dir: &Path) -> Result<Store, StoreError> {
        Self::open_with_pool(database_url, data_dir, DEFAULT_POSTGRES_CONNECTIONS).await
    }

    /// [`Store::open`] with at most `postgres_connections` pooled
    /// connections to PostgreSQL (SQLite always uses one).
    pub async fn open_with_pool(
        database_url: Option<&str>,
        data_dir: &Path,
        postgres_connections: u32,
    ) -> Result<Store, StoreError> {
        match database_url {
            Some(url) => Self::connect_with_pool(url, postgres_connections).await,
            None => {
                std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
                    path: data_dir.to_owned(),
                    source,
                })?;
                let path = data_dir.join("nasperf.db");
                Self::connect(&format!("sqlite://{}?mode=rwc", path.display())).await
            }
        }
    }

    /// Connects to `url` (`postgres://` or `sqlite://`) and migrates.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Self::connect_with_pool(url, DEFAULT_POSTGRES_CONNECTIONS).await
    }

    async fn connect_with_pool(url: &str, postgres_connections: u32) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            let scheme = url.split(':').next().unwrap_or_default().to_owned();
            return Err(StoreError::UnsupportedUrl(scheme));
        };
        let options: AnyConnectOptions = url.parse()?;
        let pool_options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(5));
        let pool = match backend {
            Backend::Postgres => pool_options.max_connections(postgres_connections.max(1)),
            // One writer at a time is what SQLite allows anyway; a single
            // connection also serialises our read-modify-write batches.
            Backend::Sqlite => pool_options.max_connections(1).after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::query("PRAGMA foreign_keys = ON")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA journal_mode = WAL")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA busy_timeout = 5000")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            }),
        }
        .connect_with(options)
        .await?;
        let store = Store {
            pool,
            backend,
            spaces: SearchSpaces::builtin(),
            trainer: Default::default(),
            model_changes: std::sync::Arc::new(tokio::sync::watch::Sender::new(0)),
        };
        store.migrate().await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
        }
        Ok(())
    }

    /// Whether the database answers now (for health reporting).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    // === Studies ===

    pub async fn create_study(&self, name: &str, description: &str) -> Result<Study, StoreError> {
        validate_study_name(name)?;
        let created_at_ms = now_ms();
        let inserted = sqlx::query(
            "INSERT INTO studies (name, description, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING RETURNING id",
        )
        .bind(name)
        .bind(description)
        .bind(created_at_ms)
        .fetch_optional(&self.pool)
        .await?;
        if inserted.is_none() {
            return Err(StoreError::StudyExists(name.to_owned()));
        }
        Ok(Study {
            name: name.to_owned(),
            description: description.to_owned(),
            created_at_ms,
            evaluations: 0,
        })
    }

    pub async fn list_studies(&self) -> Result<Vec<Study>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.name, s.description, s.created_at, \
                    (SELECT COUNT(*) FROM evaluations e WHERE e.study_id = s.id AND e.excluded = $1) AS n \
             FROM studies s ORDER BY s.name",
        )
        .bind(false)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(study_from_row).collect()
    }

    pub async fn study(&self, name: &str) -> Result<Study, StoreError> {
        let row = sqlx::query(
            "SELECT s.name, s.description, s.created_at, \
                    (SELECT COUNT(*) FROM evaluations e WHERE e.study_id = s.id AND e.excluded = $1) AS n \
             FROM studies s WHERE s.name = $2",
        )
        .bind(false)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref()
            .map(study_from_row)
            .transpose()?
            .ok_or_else(|| StoreError::UnknownStudy(name.to_owned()))
    }

    /// Fails with `UnknownStudy` unless the study exists. Cheaper than
    /// [`Store::study`], which also counts its evaluations: this runs on
    /// every read, exclusion and `Predict` that names a study.
    pub(crate) async fn require_study(&self, name: &str) -> Result<(), StoreError> {
        self.study_id(name).await.map(|_| ())
    }

    /// The study's row id; `UnknownStudy` if there is none.
    pub(crate) async fn study_id(&self, study: &str) -> Result<i64, StoreError> {
        sqlx::query("SELECT id FROM studies WHERE name = $1")
            .bind(study)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?
            .ok_or_else(|| StoreError::UnknownStudy(study.to_owned()))
    }

    // === Evaluations ===

    /// Records a batch in one transaction and says, per row, what happened.
    /// Rows that fail validation are rejected; the others are kept.
    pub async fn record(&self, batch: &[NewEvaluation]) -> Result<Vec<RecordOutcome>, StoreError> {
        record::record(&self.pool, &self.spaces, batch).await
    }

    /// Marks the evaluations of one worker and/or one time range of a study
    /// as excluded: reads and training no longer see them, and their keys
    /// stay taken, so a late retry of an excluded report is not stored
    /// again. Returns how many rows it excluded now. A worker or a time
    /// range is required, so that a whole study is never excluded by an
    /// empty request.
    pub async fn exclude_evaluations(
        &self,
        study: &str,
        worker: &str,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<u64, StoreError> {
        if worker.is_empty() && since_ms <= 0 && until_ms <= 0 {
            return Err(StoreError::InvalidArgument {
                field: "worker",
                message: "name a worker or a time range (since/until) to exclude".to_owned(),
            });
        }
        let study = if study.is_empty() {
            DEFAULT_STUDY
        } else {
            study
        };
        self.require_study(study).await?;
        let mut sql = String::from(
            "UPDATE evaluations SET excluded = $1 WHERE excluded = $2 \
             AND study_id = (SELECT id FROM studies WHERE name = $3)",
        );
        let mut n = 3;
        if !worker.is_empty() {
            n += 1;
            sql.push_str(&format!(" AND worker = ${n}"));
        }
        if since_ms > 0 {
            n += 1;
            sql.push_str(&format!(" AND recorded_at >= ${n}"));
        }
        if until_ms > 0 {
            n += 1;
            sql.push_str(&format!(" AND recorded_at < ${n}"));
        }
        let mut q = sqlx::query(&sql).bind(true).bind(false).bind(study);
        if !worker.is_empty() {
            q = q.bind(worker);
        }
        if since_ms > 0 {
            q = q.bind(since_ms);
        }
        if until_ms > 0 {
            q = q.bind(until_ms);
        }
        Ok(q.execute(&self.pool).await?.rows_affected())
    }

    /// The mean measured value of each (candidate, objective) this study
    /// has evaluated, keyed by their positions in `candidates` and
    /// `objectives`. Objectives that depend on the canonical network match
    /// any cell with the candidate's canonical key; hardware objectives
    /// match the cell as sent. `candidates` are (search space, encoding,
    /// canonical key).
    pub async fn measured_values(
        &self,
        study: &str,
        candidates: &[(&str, &str, &str)],
        objectives: &[&str],
    ) -> Result<HashMap<(usize, usize), f64>, StoreError> {
        self.require_study(study).await?;
        let mut sums: HashMap<(usize, usize), (f64, u32)> = HashMap::new();
        if candidates.is_empty() || objectives.is_empty() {
            return Ok(HashMap::new());
        }
        // Candidates by (space, canonical key), to fan rows back out.
        let mut by_key: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
        for (i, (space, _, key)) in candidates.iter().enumerate() {
            by_key.entry((space, key)).or_default().push(i);
        }
        let objective_index: HashMap<&str, usize> = objectives
            .iter()
            .enumerate()
            .map(|(j, o)| (*o, j))
            .collect();
        let keys: Vec<(&str, &str)> = by_key.keys().copied().collect();
        for chunk in keys.chunks(512) {
            let mut sql = String::from(
                "SELECT a.search_space, a.encoding, a.canonical_key, e.objective, e.value \
                 FROM evaluations e JOIN studies s ON s.id = e.study_id JOIN architectures a ON a.id = e.architecture_id \
                 WHERE s.name = $1 AND e.excluded = $2",
            );
            let mut n = 2;
            sql.push_str(" AND e.objective IN (");
            for j in 0..objectives.len() {
                n += 1;
                sql.push_str(&format!("{}${n}", if j > 0 { ", " } else { "" }));
            }
            // The key list is padded to a power of two (repeating the last
            // key changes no result), so that batches of every size share
            // a handful of statement texts: each text is prepared and
            // cached on every pooled connection, and one text per batch
            // size kept a soak's memory creeping up.
            let slots = chunk.len().next_power_of_two();
            sql.push_str(") AND a.canonical_key IN (");
            for k in 0..slots {
                n += 1;
                sql.push_str(&format!("{}${n}", if k > 0 { ", " } else { "" }));
            }
            sql.push(')');
            let mut q = sqlx::query(&sql).bind(study).bind(false);
            for o in objectives {
                q = q.bind(*o);
            }
            for k in 0..slots {
                q = q.bind(chunk[k.min(chunk.len() - 1)].1);
            }
            for r in q.fetch_all(&self.pool).await? {
                let space: String = r.try_get(0)?;
                let encoding: String = r.try_get(1)?;
                let key: String = r.try_get(2)?;
                let objective: String = r.try_get(3)?;
                let value: f64 = r.try_get(4)?;
                let (Some(&j), Some(known)) = (
                    objective_index.get(objective.as_str()),
                    crate::objectives::get(&objective),
                ) else {
                    continue;
                };
                let per_cell = !known.kind.depends_on_canonical_cell();
                for &i in by_key
                    .get(&(space.as_str(), key.as_str()))
                    .into_iter()
                    .flatten()
                {
                    if per_cell && candidates[i].1 != encoding {
                        continue;
                    }
                    let e = sums.entry((i, j)).or_insert((0.0, 0));
                    e.0 += value;
                    e.1 += 1;
                }
            }
        }
        Ok(sums
            .into_iter()
            .map(|(k, (sum, n))| (k, sum / f64::from(n)))
            .collect())
    }

    /// Evaluations matching `filter`, in id order, at most `filter.limit`.
    pub async fn list_evaluations(
        &self,
        filter: &EvaluationFilter,
    ) -> Result<Vec<StoredEvaluation>, StoreError> {
        let studies: Vec<String> = if filter.studies.is_empty() {
            vec![DEFAULT_STUDY.to_owned()]
        } else {
            filter.studies.clone()
        };
        for s in &studies {
            // An unknown study is an error, not an empty page.
            self.require_study(s).await?;
        }
        let limit = page_size(filter.limit);
        let mut sql = String::from(
            "SELECT e.id, s.name, a.search_space, a.encoding, a.canonical_key, e.objective, e.value, e.budget, \
                    e.worker, e.recorded_at, e.idempotency_key \
             FROM evaluations e JOIN studies s ON s.id = e.study_id JOIN architectures a ON a.id = e.architecture_id \
             WHERE e.excluded = $1 AND e.id > $2",
        );
        let mut n = 2;
        let mut next = |sql: &mut String, clause: &str| {
            n += 1;
            sql.push_str(&clause.replace("{}", &format!("${n}")));
        };
        sql.push_str(" AND s.name IN (");
        for (i, _) in studies.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            next(&mut sql, "{}");
        }
        sql.push(')');
        let arch = if filter.arch.is_empty() {
            None
        } else {
            let space = self.spaces.get(&filter.search_space).ok_or_else(|| {
                StoreError::InvalidArgument {
                    field: "search_space",
                    message: format!("unknown search space {:?}", filter.search_space),
                }
            })?;
            let (encoding, _) =
                space
                    .identify(&filter.arch)
                    .map_err(|e| StoreError::InvalidArgument {
                        field: "arch",
                        message: e.0,
                    })?;
            Some((space.name(), encoding))
        };
        if !filter.objective.is_empty() {
            next(&mut sql, " AND e.objective = {}");
        }
        if !filter.worker.is_empty() {
            next(&mut sql, " AND e.worker = {}");
        }
        if arch.is_some() {
            next(&mut sql, " AND a.search_space = {}");
            next(&mut sql, " AND a.encoding = {}");
        }
        if filter.since_ms > 0 {
            next(&mut sql, " AND e.recorded_at >= {}");
        }
        if filter.until_ms > 0 {
            next(&mut sql, " AND e.recorded_at < {}");
        }
        next(&mut sql, " ORDER BY e.id LIMIT {}");

        let mut query = sqlx::query(&sql).bind(false).bind(filter.after_id);
        for s in &studies {
            query = query.bind(s.as_str());
        }
        if !filter.objective.is_empty() {
            query = query.bind(filter.objective.as_str());
        }
        if !filter.worker.is_empty() {
            query = query.bind(filter.worker.as_str());
        }
        if let Some((space, encoding)) = &arch {
            query = query.bind(*space).bind(encoding.as_str());
        }
        if filter.since_ms > 0 {
            query = query.bind(filter.since_ms);
        }
        if filter.until_ms > 0 {
            query = query.bind(filter.until_ms);
        }
        query = query.bind(i64::from(limit));
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(StoredEvaluation {
                    id: r.try_get(0)?,
                    study: r.try_get(1)?,
                    search_space: r.try_get(2)?,
                    encoding: r.try_get(3)?,
                    canonical_key: r.try_get(4)?,
                    objective: r.try_get(5)?,
                    value: r.try_get(6)?,
                    budget: r.try_get(7)?,
                    worker: r.try_get(8)?,
                    recorded_at_ms: r.try_get(9)?,
                    idempotency_key: r.try_get(10)?,
                })
            })
            .collect()
    }
}

fn study_from_row(r: &sqlx::any::AnyRow) -> Result<Study, StoreError> {
    Ok(Study {
        name: r.try_get(0)?,
        description: r.try_get(1)?,
        created_at_ms: r.try_get(2)?,
        evaluations: r.try_get(3)?,
    })
}

/// Study names appear in logs, URLs and file names: keep them plain.
pub fn validate_study_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidArgument {
            field: "name",
            message: format!(
                "study name {name:?} must be 1-128 characters of letters, digits, '-', '_' or '.'"
            ),
        })
    }
}

/// The store once it could be opened. Empty while the server is still
/// connecting, so that predictions are served even when the database is
/// down at start; store calls then answer UNAVAILABLE.
#[derive(Debug, Clone, Default)]
pub struct StoreHandle(std::sync::Arc<arc_swap::ArcSwapOption<Store>>);

impl StoreHandle {
    pub fn get(&self) -> Option<std::sync::Arc<Store>> {
        self.0.load_full()
    }

    pub fn set(&self, store: Store) {
        self.0.store(Some(std::sync::Arc::new(store)));
    }
}
