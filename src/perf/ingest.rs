//! Ingest: evaluations per second through `RecordEvaluationBatch` and the
//! streaming `RecordEvaluations` into PostgreSQL, against a plain `COPY` of
//! the same rows into the same schema (tables, keys and indexes made by
//! our migrations) in the same run. COPY is PostgreSQL's fastest way in:
//! what is left above it is our validation, idempotency and transport.

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use indicatif::ProgressBar;
use sqlx::Connection;

use super::{report::Figure, server::ServerProcess};
use crate::{
    bench,
    proto::v1::{Evaluation, RecordEvaluationsRequest, store_client::StoreClient},
    space::{SearchSpace, nb201::Nb201},
};

/// Rows per request message.
const MESSAGE_ROWS: usize = 500;

/// The objectives whose tables give the rows: hardware metrics, one row
/// per cell each.
const OBJECTIVES: [&str; 4] = [
    "cifar10/edgegpu_latency",
    "cifar10/edgegpu_energy",
    "cifar10/raspi4_latency",
    "cifar10/eyeriss_latency",
];

/// A fresh database on `admin_url`'s server, dropped when [`Database::drop`] runs.
struct Database {
    admin_url: String,
    name: String,
    url: String,
}

impl Database {
    async fn create(admin_url: &str) -> anyhow::Result<Database> {
        let name = format!("nasperf_bench_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(admin_url)
            .await
            .context("connecting to PostgreSQL to create the benchmark databases")?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await?;
        let base = admin_url
            .rsplit_once('/')
            .context("the PostgreSQL URL must name a database")?
            .0;
        Ok(Database {
            admin_url: admin_url.to_owned(),
            url: format!("{base}/{name}"),
            name,
        })
    }

    async fn drop(self) {
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin_url).await {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn)
            .await;
        }
    }

    async fn count(&self) -> anyhow::Result<i64> {
        let mut conn = sqlx::PgConnection::connect(&self.url).await?;
        Ok(sqlx::query_scalar("SELECT count(*) FROM evaluations")
            .fetch_one(&mut conn)
            .await?)
    }
}

/// Up to `limit` real evaluations, each under a key of its own.
fn rows(bench_dir: &Path, limit: usize) -> anyhow::Result<Vec<Evaluation>> {
    let mut out = Vec::with_capacity(limit);
    for id in OBJECTIVES {
        let objective =
            crate::objectives::get(id).with_context(|| format!("{id} is not an objective"))?;
        for m in bench::load_objective(bench_dir, objective)? {
            if out.len() == limit {
                return Ok(out);
            }
            out.push(Evaluation {
                study: String::new(),
                search_space: "nb201".to_owned(),
                arch: m.cell.to_op_codes(),
                objective: id.to_owned(),
                value: m.value,
                budget: None,
                worker: format!("bench-{}", out.len() % 16),
                idempotency_key: format!("bench-{}", out.len()),
                dataset: String::new(),
                proxies: Default::default(),
            });
        }
    }
    Ok(out)
}

pub async fn run(
    exe: &Path,
    bench_dir: &Path,
    admin_url: &str,
    limit: usize,
    bar: &ProgressBar,
) -> anyhow::Result<Vec<Figure>> {
    let rows = Arc::new(rows(bench_dir, limit)?);
    let mut databases = Vec::new();
    let result = async {
        bar.set_message(format!("ingest: COPY of {} rows", rows.len()));
        let db = Database::create(admin_url).await?;
        let copy = copy_rate(&db.url, &rows).await;
        databases.push(db);
        let copy = copy?;
        bar.inc(1);

        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let in_flight = 2 * cores;
        let mut figures = Vec::new();
        for streaming in [false, true] {
            let form = if streaming {
                "RecordEvaluations (stream)"
            } else {
                "RecordEvaluationBatch"
            };
            bar.set_message(format!("ingest: {form}"));
            let db = Database::create(admin_url).await?;
            let server = ServerProcess::start(
                exe,
                &[
                    "--database-url".into(),
                    db.url.clone(),
                    // Ingest alone: no retraining while rows arrive.
                    "--retrain-interval".into(),
                    "0s".into(),
                    "--retrain-after".into(),
                    "0".into(),
                ],
            )
            .await?;
            let started = Instant::now();
            let sent = record(&server, &rows, in_flight, streaming).await;
            let seconds = started.elapsed().as_secs_f64();
            drop(server);
            let stored = db.count().await;
            databases.push(db);
            let (sent, stored) = (sent?, stored?);
            if stored != rows.len() as i64 || sent != rows.len() {
                bail!(
                    "{form}: {} rows sent, {sent} acknowledged as stored, {stored} in the database",
                    rows.len()
                );
            }
            figures.push(
                Figure::new(
                    "ingest",
                    format!(
                        "{form}, {} rows, {MESSAGE_ROWS} per message, {in_flight} in flight",
                        rows.len()
                    ),
                    rows.len() as f64 / seconds,
                    "rows/s",
                )
                .against("COPY into the same schema", copy)
                .ratio_target(0.5),
            );
            bar.inc(1);
        }
        anyhow::Ok(figures)
    }
    .await;
    for db in databases {
        db.drop().await;
    }
    result
}

/// Sends every row in messages of [`MESSAGE_ROWS`], `in_flight` calls (or
/// streams) at a time; how many the server said it stored.
async fn record(
    server: &ServerProcess,
    rows: &Arc<Vec<Evaluation>>,
    in_flight: usize,
    streaming: bool,
) -> anyhow::Result<usize> {
    let messages: Vec<RecordEvaluationsRequest> = rows
        .chunks(MESSAGE_ROWS)
        .map(|c| RecordEvaluationsRequest {
            evaluations: c.to_vec(),
        })
        .collect();
    let messages = Arc::new(messages);
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..in_flight {
        let mut client = StoreClient::new(server.channel.clone());
        let messages = Arc::clone(&messages);
        tasks.spawn(async move {
            let mine: Vec<RecordEvaluationsRequest> = messages
                .iter()
                .skip(t)
                .step_by(in_flight)
                .cloned()
                .collect();
            let stored = if streaming {
                client
                    .record_evaluations(tokio_stream::iter(mine))
                    .await
                    .context("RecordEvaluations")?
                    .into_inner()
                    .stored
            } else {
                let mut stored = 0;
                for m in mine {
                    stored += client
                        .record_evaluation_batch(m)
                        .await
                        .context("RecordEvaluationBatch")?
                        .into_inner()
                        .stored;
                }
                stored
            };
            anyhow::Ok(stored as usize)
        });
    }
    let mut stored = 0;
    while let Some(done) = tasks.join_next().await {
        stored += done??;
    }
    Ok(stored)
}

/// Rows per second of COPY into a database our migrations made: the
/// distinct architectures, then the evaluations, with everything the
/// server would compute (canonical keys, payload hashes) done beforehand.
async fn copy_rate(url: &str, rows: &[Evaluation]) -> anyhow::Result<f64> {
    // Our migrations, so the schema is the server's.
    let store = crate::store::Store::open(Some(url), Path::new("unused")).await?;
    store.close().await;
    let space = Nb201::new();
    let mut architectures = String::new();
    let mut ids = std::collections::HashMap::new();
    let mut evaluations = String::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    for e in rows {
        let (encoding, canonical) = space
            .identify(&e.arch)
            .map_err(|err| anyhow::anyhow!("{}: {err}", e.arch))?;
        let next = ids.len() + 1;
        let id = *ids.entry(encoding.clone()).or_insert_with(|| {
            architectures.push_str(&format!("{next}\tnb201\t{encoding}\t{canonical}\n"));
            next
        });
        let hash = crate::model::sha256_hex(e.idempotency_key.as_bytes());
        evaluations.push_str(&format!(
            "1\t{id}\t{}\t{}\t\\N\t{}\t{now}\t{}\t{hash}\n",
            e.objective, e.value, e.worker, e.idempotency_key
        ));
    }
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let started = Instant::now();
    let mut tx = conn.begin().await?;
    let mut copy = tx
        .copy_in_raw("COPY architectures (id, search_space, encoding, canonical_key) FROM STDIN")
        .await?;
    copy.send(architectures.as_bytes()).await?;
    copy.finish().await?;
    let mut copy = tx
        .copy_in_raw(
            "COPY evaluations (study_id, architecture_id, objective, value, budget, worker, recorded_at, \
             idempotency_key, payload_sha256) FROM STDIN",
        )
        .await?;
    copy.send(evaluations.as_bytes()).await?;
    let copied = copy.finish().await?;
    tx.commit().await?;
    let seconds = started.elapsed().as_secs_f64();
    if copied != rows.len() as u64 {
        bail!("COPY stored {copied} of {} rows", rows.len());
    }
    Ok(rows.len() as f64 / seconds.max(Duration::from_micros(1).as_secs_f64()))
}
