//! Helpers shared by the integration tests.
#![allow(dead_code, unused_macros)]

use std::path::PathBuf;

/// The benchmark tables: `$NASPERF_BENCHDATA`, or `../shared/benchdata`
/// beside the repository.
pub fn benchdata() -> PathBuf {
    std::env::var_os(nasperf::bench::BENCHDATA_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/benchdata"))
}

/// The PostgreSQL server tests create their databases on:
/// `$NASPERF_TEST_POSTGRES`, or the machine's server with trust auth.
pub fn postgres_admin_url() -> String {
    std::env::var("NASPERF_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A fresh database on the real PostgreSQL server, named by a UUID, for
/// one test; [`TestDatabase::drop`] removes it.
pub struct TestDatabase {
    pub name: String,
    /// The database's URL, on the admin URL's server and user.
    pub url: String,
    /// Set by [`TestDatabase::drop`]; otherwise (a test that panicked) the
    /// `Drop` guard removes the database.
    dropped: bool,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // No async here: psql, best effort, so a failed test leaves no
        // database behind.
        let _ = std::process::Command::new("psql")
            .arg(postgres_admin_url())
            .arg("-qc")
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

impl TestDatabase {
    pub async fn create() -> TestDatabase {
        use sqlx::Connection;
        let admin = postgres_admin_url();
        let name = format!("nasperf_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .expect("PostgreSQL is running");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create database");
        let base = admin
            .rsplit_once('/')
            .expect("the admin URL names a database")
            .0;
        TestDatabase {
            url: format!("{base}/{name}"),
            name,
            dropped: false,
        }
    }

    /// Best effort: a leftover database costs space, not correctness.
    pub async fn drop(mut self) {
        use sqlx::Connection;
        self.dropped = true;
        if let Ok(mut conn) = sqlx::PgConnection::connect(&postgres_admin_url()).await {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn)
            .await;
        }
    }
}

/// A store and what must be cleaned up after it.
pub struct TestStore {
    pub store: nasperf::store::Store,
    _dir: Option<tempfile::TempDir>,
    database: Option<TestDatabase>,
}

impl TestStore {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = nasperf::store::Store::open(None, dir.path())
            .await
            .expect("open sqlite store");
        Self {
            store,
            _dir: Some(dir),
            database: None,
        }
    }

    pub async fn postgres() -> Self {
        let database = TestDatabase::create().await;
        let store =
            nasperf::store::Store::open(Some(&database.url), std::path::Path::new("unused"))
                .await
                .expect("open postgres store");
        Self {
            store,
            _dir: None,
            database: Some(database),
        }
    }

    /// The test database's name, on PostgreSQL.
    pub fn postgres_database(&self) -> Option<&str> {
        self.database.as_ref().map(|d| d.name.as_str())
    }

    pub async fn cleanup(self) {
        self.store.close().await;
        if let Some(database) = self.database {
            database.drop().await;
        }
    }
}

/// Runs one test body against both backends.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            pub async fn sqlite() {
                let t = crate::common::TestStore::sqlite().await;
                super::$name(&t.store).await;
                t.cleanup().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let t = crate::common::TestStore::postgres().await;
                super::$name(&t.store).await;
                t.cleanup().await;
            }
        }
    )*};
}

/// One network of the benchmark tables as a worker would report it.
#[derive(Debug, Clone)]
pub struct Network {
    /// Op-code encoding of the canonical cell.
    pub arch: String,
    pub value: f64,
    /// Zero-cost proxies on the objective's dataset, when the tables hold them.
    pub proxies: std::collections::BTreeMap<String, f64>,
}

/// Every canonical network measured for `objective`, in a fixed random
/// order, with its proxies: read once per test binary.
pub fn networks(objective: &str) -> Vec<Network> {
    use nasperf::{features::PROXY_NAMES, train::SplitMix64};
    let dir = benchdata();
    let o = nasperf::objectives::get(objective).expect("known objective");
    let rows = nasperf::bench::load_objective(&dir, o).expect("objective table");
    let proxies = nasperf::bench::load_proxies(&dir, o.dataset)
        .expect("proxy table")
        .unwrap_or_default();
    let mut seen = std::collections::BTreeMap::new();
    for m in rows {
        // The tables hold each canonical network's own cell once.
        if m.cell == m.cell.canonical() {
            seen.insert(m.cell, m.value);
        }
    }
    let all: Vec<_> = seen.into_iter().collect();
    let order = SplitMix64(2026).permutation(all.len());
    order
        .into_iter()
        .map(|i| {
            let (cell, value) = &all[i];
            Network {
                arch: cell.to_op_codes(),
                value: *value,
                proxies: proxies
                    .get(cell)
                    .map(|p| {
                        PROXY_NAMES
                            .iter()
                            .map(|n| (*n).to_owned())
                            .zip(p.0)
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// Connects to `addr` and waits, up to `timeout`, until the predictor
/// reports SERVING on grpc.health.v1, as Kubernetes' readiness probe would.
pub async fn connect_when_ready(
    addr: &str,
    timeout: std::time::Duration,
) -> tonic::transport::Channel {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    wait_until_serving(&channel, "nasperf.v1.Predictor", timeout).await;
    channel
}

/// Waits, up to `timeout`, until `service` reports SERVING on
/// grpc.health.v1.
pub async fn wait_until_serving(
    channel: &tonic::transport::Channel,
    service: &str,
    timeout: std::time::Duration,
) {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let mut health = HealthClient::new(channel.clone());
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let status = health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .map(|r| r.into_inner().status);
        if matches!(status, Ok(s) if s == ServingStatus::Serving as i32) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{service} never became SERVING"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// A `nasperf serve` process (the binary under test) on 127.0.0.1:0 with
/// JSON logs and a data folder of its own; killed when dropped. The
/// benchmarks' own, which panics where they would return an error.
pub struct ServerProcess(nasperf::perf::server::ServerProcess);

impl std::ops::Deref for ServerProcess {
    type Target = nasperf::perf::server::ServerProcess;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for ServerProcess {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl ServerProcess {
    /// Starts `nasperf serve` with `args` added and waits until it is ready.
    pub async fn start(args: &[&str]) -> ServerProcess {
        Self::start_with_env(args, &[]).await
    }

    /// [`ServerProcess::start`] with environment variables set.
    pub async fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> ServerProcess {
        let exe = std::path::Path::new(env!("CARGO_BIN_EXE_nasperf"));
        ServerProcess(
            nasperf::perf::server::ServerProcess::start_with_env(exe, args, env)
                .await
                .expect("nasperf serve starts and becomes SERVING"),
        )
    }

    /// The server's resident memory (VmRSS), in KiB.
    pub fn resident_kib(&self) -> u64 {
        self.0.resident_bytes().expect("VmRSS of the server") / 1024
    }
}
