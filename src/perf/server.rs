//! A `nasperf serve` child process for the benchmarks and the tests: the
//! real binary on a real loopback socket, so that latency includes the
//! transport and memory is the server's alone, not the load generator's.

use std::{
    ffi::OsStr,
    io::BufRead,
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::Duration,
};

use anyhow::{Context, bail};
use tonic::transport::Channel;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::startup::{PREDICTOR_HEALTH_NAME, STORE_HEALTH_NAME};

/// A running server; killed when dropped.
pub struct ServerProcess {
    /// The process itself, for tests that kill it or wait for its exit.
    pub child: Child,
    pub addr: String,
    pub channel: Channel,
    /// Every JSON line the server logged so far.
    pub logs: Arc<Mutex<Vec<serde_json::Value>>>,
    _data_dir: tempfile::TempDir,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServerProcess {
    /// Starts `exe serve` on 127.0.0.1:0 with a data folder of its own and
    /// `args` added, and waits until health says SERVING.
    pub async fn start(exe: &Path, args: &[impl AsRef<OsStr>]) -> anyhow::Result<ServerProcess> {
        Self::start_with_env(exe, args, &[]).await
    }

    /// [`ServerProcess::start`] with environment variables set.
    pub async fn start_with_env(
        exe: &Path,
        args: &[impl AsRef<OsStr>],
        env: &[(&str, &str)],
    ) -> anyhow::Result<ServerProcess> {
        let data_dir = tempfile::tempdir().context("a data folder for the server")?;
        let mut child = Command::new(exe)
            .args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(data_dir.path())
            .args(args)
            // An inherited NASPERF_SERVE_BENCH would import and train the
            // tables at start: the benchmarks choose what the server loads.
            .env_remove("NASPERF_SERVE_BENCH")
            // The address is read from the info-level start-up line, whatever
            // filter the benchmark itself runs with.
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let stderr = child.stderr.take().context("the server's stderr")?;
        let (addr_tx, addr_rx) = mpsc::channel();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&logs);
        // Reads every log line until the server exits, so that it never
        // blocks on a full pipe.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if v["fields"]["message"] == "nasperf listening"
                    && let Some(addr) = v["fields"]["addr"].as_str()
                {
                    let _ = addr_tx.send(addr.to_owned());
                }
                crate::sync::lock(&sink).push(v);
            }
        });
        let addr = match addr_rx.recv_timeout(Duration::from_secs(120)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                bail!("the server never logged its address (exit status {status:?})");
            }
        };
        let channel = Channel::from_shared(format!("http://{addr}"))?
            .connect()
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        let mut server = ServerProcess {
            child,
            addr,
            channel,
            logs,
            _data_dir: data_dir,
        };
        server
            .wait_until_serving(PREDICTOR_HEALTH_NAME, Duration::from_secs(120))
            .await?;
        // The store connects after the predictor is ready (predictions do
        // not wait for it), so a first RecordEvaluations right after start
        // could meet UNAVAILABLE "not connected yet" on a busy machine (seen
        // in CI). Every caller here starts the server with a store it can
        // reach, the embedded one or a live PostgreSQL, and records or reads
        // through it.
        server
            .wait_until_serving(STORE_HEALTH_NAME, Duration::from_secs(60))
            .await?;
        Ok(server)
    }

    async fn wait_until_serving(&mut self, service: &str, timeout: Duration) -> anyhow::Result<()> {
        let mut health = HealthClient::new(self.channel.clone());
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let status = health
                .check(HealthCheckRequest {
                    service: service.to_owned(),
                })
                .await
                .map(|r| r.into_inner().status);
            if matches!(status, Ok(s) if s == ServingStatus::Serving as i32) {
                return Ok(());
            }
            if let Ok(Some(exit)) = self.child.try_wait() {
                bail!("the server exited before it was ready: {exit}");
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "{service} at {} was not SERVING after {timeout:?}",
                    self.addr
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory, in bytes.
    pub fn resident_bytes(&self) -> anyhow::Result<u64> {
        resident_bytes(self.child.id())
    }
}

/// A process's resident memory (VmRSS), in bytes.
pub fn resident_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .context("no VmRSS in /proc status")
}
