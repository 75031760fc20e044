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
/// JSON logs and a data folder of its own; killed when dropped.
pub struct ServerProcess {
    pub child: std::process::Child,
    pub channel: tonic::transport::Channel,
    pub addr: String,
    /// Every JSON log line the server wrote to stderr.
    pub logs: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
    pub data_dir: tempfile::TempDir,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServerProcess {
    /// Starts `nasperf serve` with `args` added and waits until it is ready.
    pub async fn start(args: &[&str]) -> ServerProcess {
        Self::start_with_env(args, &[]).await
    }

    /// [`ServerProcess::start`] with environment variables set.
    pub async fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> ServerProcess {
        use std::io::BufRead;
        let data_dir = tempfile::tempdir().expect("dir");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_nasperf"))
            .args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(data_dir.path())
            .args(args)
            .envs(env.iter().copied())
            .env_remove("NASPERF_SERVE_BENCH")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start nasperf");
        let stderr = child.stderr.take().expect("stderr");
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let sink = std::sync::Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if v["fields"]["message"] == "nasperf listening" {
                    let _ =
                        addr_tx.send(v["fields"]["addr"].as_str().unwrap_or_default().to_owned());
                }
                sink.lock().expect("logs").push(v);
            }
        });
        let addr = addr_rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the server logs its address");
        let channel = connect_when_ready(&addr, std::time::Duration::from_secs(60)).await;
        ServerProcess {
            child,
            channel,
            addr,
            logs,
            data_dir,
        }
    }

    /// The server's resident memory (VmRSS), in KiB.
    pub fn resident_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }
}
