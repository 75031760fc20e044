//! Recording evaluations exactly once.
//!
//! Every evaluation carries an idempotency key chosen by the client. A batch
//! is validated row by row, then written in one transaction with multi-row
//! statements: `INSERT ... ON CONFLICT (idempotency_key) DO NOTHING
//! RETURNING` tells which rows are new; for the others the stored payload
//! hash tells a retry (acknowledged again) from a different evaluation that
//! reuses the key (refused). Under concurrent duplicates, PostgreSQL makes
//! the second insert wait for the first transaction and then skip it; SQLite
//! has one writer. Outcomes are returned only after the commit.

use std::collections::{BTreeMap, HashMap};

use sha2::{Digest, Sha256};
use sqlx::{Any, AnyPool, Row, Transaction};

use super::{DEFAULT_STUDY, StoreError, now_ms};
use crate::{dataset::Dataset, features::ProxyValues, objectives, space::SearchSpaces};

/// Rows per statement: well under SQLite's and PostgreSQL's bind limits.
const CHUNK: usize = 500;

/// An evaluation as a worker reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewEvaluation {
    /// Empty means the default study.
    pub study: String,
    pub search_space: String,
    pub arch: String,
    pub objective: String,
    pub value: f64,
    /// Training budget or fidelity (e.g. epochs), when the worker knows it.
    pub budget: Option<f64>,
    pub worker: String,
    pub idempotency_key: String,
    /// The dataset `proxies` were computed on; required with proxies.
    pub dataset: String,
    pub proxies: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectionKind {
    InvalidArgument,
    NotFound,
    AlreadyExists,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub kind: RejectionKind,
    /// Names the field, e.g. `arch: unknown op "conv"`.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    Stored,
    AlreadyStored,
    Rejected(Rejection),
}

fn reject(kind: RejectionKind, message: String) -> RecordOutcome {
    RecordOutcome::Rejected(Rejection { kind, message })
}

/// A row that passed validation.
#[derive(Debug, Clone)]
struct Valid {
    index: usize,
    study: String,
    search_space: &'static str,
    encoding: String,
    canonical_key: String,
    objective: String,
    value: f64,
    budget: Option<f64>,
    worker: String,
    key: String,
    payload_sha256: String,
    dataset: Option<Dataset>,
    proxies: Vec<(&'static str, f64)>,
}

fn validate(
    index: usize,
    e: &NewEvaluation,
    spaces: &SearchSpaces,
) -> Result<Valid, RecordOutcome> {
    use RejectionKind::*;
    if e.idempotency_key.is_empty() || e.idempotency_key.len() > 256 {
        return Err(reject(
            InvalidArgument,
            "idempotency_key: required, at most 256 bytes".to_owned(),
        ));
    }
    if e.worker.len() > 256 {
        return Err(reject(
            InvalidArgument,
            format!("worker: at most 256 bytes, got {}", e.worker.len()),
        ));
    }
    let space = spaces.get(&e.search_space).ok_or_else(|| {
        reject(
            NotFound,
            format!(
                "search_space: unknown search space {:?}; supported: {}",
                e.search_space,
                spaces.names().join(", ")
            ),
        )
    })?;
    let (encoding, canonical_key) = space
        .identify(&e.arch)
        .map_err(|err| reject(InvalidArgument, format!("arch: {}", err.0)))?;
    let objective = objectives::get(&e.objective).ok_or_else(|| {
        reject(
            NotFound,
            format!("objective: unknown objective {:?}", e.objective),
        )
    })?;
    if objective.search_space != space.name() {
        return Err(reject(
            InvalidArgument,
            format!(
                "objective: {:?} belongs to search space {:?}",
                e.objective, objective.search_space
            ),
        ));
    }
    if !e.value.is_finite() {
        return Err(reject(
            InvalidArgument,
            format!("value: {} is not a finite number", e.value),
        ));
    }
    if let Some(b) = e.budget
        && !(b.is_finite() && b >= 0.0)
    {
        return Err(reject(
            InvalidArgument,
            format!("budget: {b} is not a finite, non-negative number"),
        ));
    }
    let dataset = if e.dataset.is_empty() {
        None
    } else {
        Some(Dataset::from_name(&e.dataset).ok_or_else(|| {
            reject(
                NotFound,
                format!(
                    "dataset: unknown dataset {:?}; known: {}",
                    e.dataset,
                    Dataset::names()
                ),
            )
        })?)
    };
    if !e.proxies.is_empty() && dataset.is_none() {
        return Err(reject(
            InvalidArgument,
            "dataset: required when proxies are sent".to_owned(),
        ));
    }
    let proxies: Vec<(&'static str, f64)> =
        ProxyValues::from_named(e.proxies.iter().map(|(n, &v)| (n.as_str(), v)))
            .map_err(|error| reject(InvalidArgument, format!("proxies{}: {error}", error.key())))?
            .sent()
            .collect();
    let study = if e.study.is_empty() {
        DEFAULT_STUDY.to_owned()
    } else {
        e.study.clone()
    };

    // Everything that makes the evaluation what it is, so that a retry
    // matches and a different evaluation under the same key does not.
    let mut h = Sha256::new();
    for part in [
        study.as_str(),
        space.name(),
        &encoding,
        &e.objective,
        &e.worker,
        &e.dataset,
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.update(e.value.to_bits().to_le_bytes());
    h.update(e.budget.map_or([0xff; 8], |b| b.to_bits().to_le_bytes()));
    // In name order (PROXY_NAMES is sorted, a core test says so), as when
    // this read a BTreeMap: keys stored earlier still match.
    for (name, v) in &proxies {
        h.update(name.as_bytes());
        h.update(v.to_bits().to_le_bytes());
    }
    Ok(Valid {
        index,
        study,
        search_space: space.name(),
        encoding,
        canonical_key,
        objective: e.objective.clone(),
        value: e.value,
        budget: e.budget,
        worker: e.worker.clone(),
        key: e.idempotency_key.clone(),
        payload_sha256: hex::encode(h.finalize()),
        dataset,
        proxies,
    })
}

/// `($a, $b, ...), (...)` for `rows` rows of `cols` columns, numbered from
/// `$1`. sqlx's `Any` driver passes SQL through unchanged, and both backends
/// read `$N`.
fn values(rows: usize, cols: usize) -> String {
    rows_of(rows, &vec!["?"; cols])
}

/// `rows` rows of the column expressions in `columns`, each `?` in them
/// replaced by the next placeholder, `$1` onwards, row by row.
fn rows_of(rows: usize, columns: &[&str]) -> String {
    let mut s = String::with_capacity(rows * columns.len() * 6);
    let mut n = 0;
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for (c, column) in columns.iter().enumerate() {
            if c > 0 {
                s.push_str(", ");
            }
            for (i, part) in column.split('?').enumerate() {
                if i > 0 {
                    n += 1;
                    s.push_str(&format!("${n}"));
                }
                s.push_str(part);
            }
        }
        s.push(')');
    }
    s
}

/// The budget column: a flag and a number rather than an optional number.
/// sqlx's Any driver (0.8.6) sends a missing `f64` as a NULL `float4`; a
/// statement prepared with that, and cached by its text, then fails the
/// next row that has a budget (22P03, "incorrect binary data format").
/// Both placeholders here always carry the same types.
const BUDGET: &str = "CASE WHEN ? THEN ? END";

/// `$k, $k+1, ...` for an `IN (...)` list of `n` binds starting at `$start`.
fn list(start: usize, n: usize) -> String {
    (start..start + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) async fn record(
    pool: &AnyPool,
    spaces: &SearchSpaces,
    batch: &[NewEvaluation],
) -> Result<Vec<RecordOutcome>, StoreError> {
    let mut outcomes: Vec<Option<RecordOutcome>> = vec![None; batch.len()];
    let mut valid: Vec<Valid> = Vec::with_capacity(batch.len());
    // Within a batch, a repeated key is judged against its first occurrence.
    let mut first_by_key: HashMap<String, (usize, String)> = HashMap::new();
    for (i, e) in batch.iter().enumerate() {
        match validate(i, e, spaces) {
            Err(outcome) => outcomes[i] = Some(outcome),
            Ok(v) => match first_by_key.get(&v.key) {
                Some((_, sha)) if *sha == v.payload_sha256 => {
                    outcomes[i] = Some(RecordOutcome::AlreadyStored);
                }
                Some((first, _)) => {
                    outcomes[i] = Some(reject(
                        RejectionKind::AlreadyExists,
                        format!(
                            "idempotency_key: {:?} is used by row {first} of this batch with a different payload",
                            v.key
                        ),
                    ));
                }
                None => {
                    first_by_key.insert(v.key.clone(), (i, v.payload_sha256.clone()));
                    valid.push(v);
                }
            },
        }
    }

    if !valid.is_empty() {
        let mut tx = pool.begin().await?;
        let study_ids = study_ids(&mut tx, &valid).await?;
        valid.retain(|v| {
            if study_ids.contains_key(&v.study) {
                true
            } else {
                outcomes[v.index] = Some(reject(
                    RejectionKind::NotFound,
                    format!("study: unknown study {:?}; create it first", v.study),
                ));
                false
            }
        });
        let arch_ids = architecture_ids(&mut tx, &valid).await?;
        insert_proxies(&mut tx, &valid, &arch_ids).await?;
        let recorded_at = now_ms();
        for chunk in valid.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO evaluations (study_id, architecture_id, objective, value, budget, worker, recorded_at, \
                 idempotency_key, payload_sha256, excluded) VALUES {} \
                 ON CONFLICT (idempotency_key) DO NOTHING RETURNING idempotency_key",
                rows_of(
                    chunk.len(),
                    &["?", "?", "?", "?", BUDGET, "?", "?", "?", "?", "?"]
                )
            );
            let mut q = sqlx::query(&sql);
            for v in chunk {
                let arch = arch_ids[&(v.search_space, v.encoding.clone())];
                q = q
                    .bind(study_ids[&v.study])
                    .bind(arch)
                    .bind(v.objective.as_str())
                    .bind(v.value)
                    .bind(v.budget.is_some())
                    .bind(v.budget.unwrap_or_default())
                    .bind(v.worker.as_str())
                    .bind(recorded_at)
                    .bind(v.key.as_str())
                    .bind(v.payload_sha256.as_str())
                    .bind(false);
            }
            let inserted: std::collections::HashSet<String> = q
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| r.try_get::<String, _>(0))
                .collect::<Result<_, _>>()?;
            let existing: Vec<&Valid> = chunk
                .iter()
                .filter(|v| !inserted.contains(&v.key))
                .collect();
            let stored = stored_payloads(&mut tx, &existing).await?;
            for v in chunk {
                outcomes[v.index] = Some(if inserted.contains(&v.key) {
                    RecordOutcome::Stored
                } else {
                    match stored.get(&v.key) {
                        Some((_, sha)) if *sha == v.payload_sha256 => RecordOutcome::AlreadyStored,
                        Some((id, _)) => reject(
                            RejectionKind::AlreadyExists,
                            format!(
                                "idempotency_key: {:?} is already used by evaluation {id} with a different payload",
                                v.key
                            ),
                        ),
                        // Conflicted but not visible: only possible if the
                        // row vanished mid-transaction; let the client retry.
                        None => return Err(StoreError::Database(sqlx::Error::RowNotFound)),
                    }
                });
            }
        }
        tx.commit().await?;
    }
    // Every row was judged above; a gap would be a bug, reported as one.
    outcomes
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| {
            StoreError::Database(sqlx::Error::Protocol(
                "an evaluation got no outcome".to_owned(),
            ))
        })
}

async fn study_ids(
    tx: &mut Transaction<'_, Any>,
    valid: &[Valid],
) -> Result<HashMap<String, i64>, StoreError> {
    let mut names: Vec<&str> = valid.iter().map(|v| v.study.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let sql = format!(
        "SELECT name, id FROM studies WHERE name IN ({})",
        list(1, names.len())
    );
    let mut q = sqlx::query(&sql);
    for n in &names {
        q = q.bind(*n);
    }
    q.fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

async fn architecture_ids(
    tx: &mut Transaction<'_, Any>,
    valid: &[Valid],
) -> Result<HashMap<(&'static str, String), i64>, StoreError> {
    let mut distinct: BTreeMap<(&'static str, String), &str> = BTreeMap::new();
    for v in valid {
        distinct
            .entry((v.search_space, v.encoding.clone()))
            .or_insert(v.canonical_key.as_str());
    }
    let archs: Vec<_> = distinct.into_iter().collect();
    let mut ids = HashMap::with_capacity(archs.len());
    for chunk in archs.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO architectures (search_space, encoding, canonical_key) VALUES {} \
             ON CONFLICT (search_space, encoding) DO NOTHING",
            values(chunk.len(), 3)
        );
        let mut q = sqlx::query(&sql);
        for ((space, encoding), key) in chunk {
            q = q.bind(*space).bind(encoding.as_str()).bind(*key);
        }
        q.execute(&mut **tx).await?;
        // Read the ids back per search space.
        let mut by_space: BTreeMap<&'static str, Vec<&str>> = BTreeMap::new();
        for ((space, encoding), _) in chunk {
            by_space.entry(*space).or_default().push(encoding.as_str());
        }
        for (space, encodings) in by_space {
            let sql = format!(
                "SELECT encoding, id FROM architectures WHERE search_space = $1 AND encoding IN ({})",
                list(2, encodings.len())
            );
            let mut q = sqlx::query(&sql).bind(space);
            for e in &encodings {
                q = q.bind(*e);
            }
            for r in q.fetch_all(&mut **tx).await? {
                ids.insert((space, r.try_get::<String, _>(0)?), r.try_get::<i64, _>(1)?);
            }
        }
    }
    Ok(ids)
}

async fn insert_proxies(
    tx: &mut Transaction<'_, Any>,
    valid: &[Valid],
    arch_ids: &HashMap<(&'static str, String), i64>,
) -> Result<(), StoreError> {
    let mut rows: BTreeMap<(i64, &str, &str), f64> = BTreeMap::new();
    for v in valid {
        let Some(ds) = v.dataset else { continue };
        let arch = arch_ids[&(v.search_space, v.encoding.clone())];
        for &(name, value) in &v.proxies {
            // The first value reported is kept.
            rows.entry((arch, ds.name(), name)).or_insert(value);
        }
    }
    let rows: Vec<_> = rows.into_iter().collect();
    for chunk in rows.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO proxy_values (architecture_id, dataset, proxy, value) VALUES {} \
             ON CONFLICT (architecture_id, dataset, proxy) DO NOTHING",
            values(chunk.len(), 4)
        );
        let mut q = sqlx::query(&sql);
        for ((arch, ds, name), value) in chunk {
            q = q.bind(*arch).bind(*ds).bind(*name).bind(*value);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

async fn stored_payloads(
    tx: &mut Transaction<'_, Any>,
    rows: &[&Valid],
) -> Result<HashMap<String, (i64, String)>, StoreError> {
    if rows.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!(
        "SELECT idempotency_key, id, payload_sha256 FROM evaluations WHERE idempotency_key IN ({})",
        list(1, rows.len())
    );
    let mut q = sqlx::query(&sql);
    for v in rows {
        q = q.bind(v.key.as_str());
    }
    q.fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, (r.try_get(1)?, r.try_get(2)?))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_row_by_row() {
        assert_eq!(values(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(list(2, 3), "$2, $3, $4");
        assert_eq!(
            rows_of(2, &["?", BUDGET]),
            "($1, CASE WHEN $2 THEN $3 END), ($4, CASE WHEN $5 THEN $6 END)"
        );
    }
}
