//! Several `nasperf serve` processes on one PostgreSQL database, as on
//! Kubernetes: workers stream evaluations into both, one replica trains at
//! a time, every replica serves a promoted version within a second (by
//! notification; the fallback poll is set to 30 s so it cannot be what
//! delivers), no prediction fails during the swap, and a trainer killed
//! with SIGKILL leaves the previous version serving and the lock free.
//! And the rehearsal of a Kubernetes deployment: three replicas behind a
//! client-side round-robin balancer, workers recording while predictions
//! flow, one replica killed with SIGKILL mid-stream and another restarted
//! as a rollout does it; every acknowledged evaluation is stored exactly
//! once, the survivors serve the promoted retraining, and only the killed
//! replica's in-flight calls failed (retried on another).

mod common;

use std::{
    process::Command,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use common::{Network, ServerProcess, TestDatabase, networks};
use nasperf::proto::v1::{
    Candidate, CreateStudyRequest, Evaluation, ListModelsRequest, ListModelsResponse,
    PredictRequest, RecordEvaluationsRequest, RetrainRequest, models_client::ModelsClient,
    predictor_client::PredictorClient, store_client::StoreClient,
};
use tonic::transport::Channel;

const OBJECTIVE: &str = "cifar10/val_acc_200ep";
const STUDY: &str = "fleet";

/// A replica: `nasperf serve` on the test's PostgreSQL database.
struct Replica(ServerProcess);

impl std::ops::Deref for Replica {
    type Target = ServerProcess;
    fn deref(&self) -> &ServerProcess {
        &self.0
    }
}

impl std::ops::DerefMut for Replica {
    fn deref_mut(&mut self) -> &mut ServerProcess {
        &mut self.0
    }
}

impl Replica {
    async fn start(database_url: &str, args: &[&str]) -> Replica {
        let mut all = vec![
            "--database-url",
            database_url,
            "--model-poll-interval",
            "30s",
            "--retrain-jobs",
            "1",
        ];
        all.extend(args);
        Replica(ServerProcess::start(&all).await)
    }

    /// The versions this replica's log says it promoted.
    fn promoted(&self) -> Vec<String> {
        self.logs
            .lock()
            .expect("logs")
            .iter()
            .filter(|v| {
                v["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("retrained model promoted"))
            })
            .map(|v| {
                v["fields"]["version"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    }
}

fn evaluation(n: &Network, worker: &str) -> Evaluation {
    Evaluation {
        study: STUDY.to_owned(),
        search_space: "nb201".to_owned(),
        arch: n.arch.clone(),
        objective: OBJECTIVE.to_owned(),
        value: n.value,
        worker: worker.to_owned(),
        idempotency_key: format!("{STUDY}:{}", n.arch),
        dataset: "cifar10".to_owned(),
        proxies: n.proxies.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        ..Default::default()
    }
}

/// A worker streaming `nets` to one replica in messages of 25.
async fn stream_evaluations(channel: Channel, nets: Vec<Network>, worker: String) {
    let messages: Vec<RecordEvaluationsRequest> = nets
        .chunks(25)
        .map(|c| RecordEvaluationsRequest {
            evaluations: c.iter().map(|n| evaluation(n, &worker)).collect(),
        })
        .collect();
    let n = nets.len();
    let response = StoreClient::new(channel)
        .record_evaluations(tokio_stream::iter(messages))
        .await
        .expect("record")
        .into_inner();
    assert_eq!(response.results.len(), n);
}

async fn create_study(replica: &Replica) {
    StoreClient::new(replica.channel.clone())
        .create_study(CreateStudyRequest {
            name: STUDY.to_owned(),
            description: String::new(),
        })
        .await
        .expect("study");
}

/// The study's versions of the objective, as a replica lists them.
async fn list_models(replica: &Replica) -> ListModelsResponse {
    ModelsClient::new(replica.channel.clone())
        .list_models(ListModelsRequest {
            study: STUDY.to_owned(),
            objective: OBJECTIVE.to_owned(),
        })
        .await
        .expect("list")
        .into_inner()
}

fn predict_request(n: &Network) -> PredictRequest {
    PredictRequest {
        candidates: vec![Candidate {
            search_space: "nb201".to_owned(),
            arch: n.arch.clone(),
            proxies: n.proxies.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        }],
        dataset: "cifar10".to_owned(),
        objectives: vec![OBJECTIVE.to_owned()],
        study: STUDY.to_owned(),
        ..Default::default()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

async fn wait_for_version(replica: &Replica, probe: &Network, not: Option<&str>) -> String {
    let mut client = PredictorClient::new(replica.channel.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(r) = client.predict(predict_request(probe)).await {
            let v = r.into_inner().objectives[0].model_version.clone();
            if Some(v.as_str()) != not {
                return v;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "no new version");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Predicts on one replica until stopped; records failures and the first
/// time (Unix ms) each version answered.
struct PredictLoop {
    stop: Arc<AtomicBool>,
    failures: Arc<AtomicU64>,
    calls: Arc<AtomicU64>,
    first_seen: Arc<Mutex<Vec<(String, i64)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl PredictLoop {
    fn start(replica: &Replica, probe: Network) -> PredictLoop {
        let (stop, failures, calls) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
        let first_seen = Arc::new(Mutex::new(Vec::<(String, i64)>::new()));
        let mut client = PredictorClient::new(replica.channel.clone());
        let task = {
            let (stop, failures, calls, first_seen) = (
                Arc::clone(&stop),
                Arc::clone(&failures),
                Arc::clone(&calls),
                Arc::clone(&first_seen),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    calls.fetch_add(1, Ordering::Relaxed);
                    match client.predict(predict_request(&probe)).await {
                        Ok(r) => {
                            let v = r.into_inner().objectives[0].model_version.clone();
                            let mut seen = first_seen.lock().expect("seen");
                            if !seen.iter().any(|(s, _)| *s == v) {
                                seen.push((v, now_ms()));
                            }
                        }
                        Err(e) => {
                            eprintln!("prediction failed: {e:?}");
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
        };
        PredictLoop {
            stop,
            failures,
            calls,
            first_seen,
            task,
        }
    }

    async fn finish(self) -> (u64, u64, Vec<(String, i64)>) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("loop");
        let seen = self.first_seen.lock().expect("seen").clone();
        (
            self.calls.load(Ordering::Relaxed),
            self.failures.load(Ordering::Relaxed),
            seen,
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_train_once_and_both_swap_within_a_second() {
    let nets = tokio::task::spawn_blocking(|| networks(OBJECTIVE))
        .await
        .expect("tables");
    let db = TestDatabase::create().await;
    // The gate's tolerance is wide: this test is about the fleet, not the
    // gate (tests/retrain.rs is).
    let args = [
        "--retrain-after",
        "150",
        "--retrain-interval",
        "0s",
        "--retrain-iterations",
        "150",
        "--retrain-tolerance",
        "1",
    ];
    let a = Replica::start(&db.url, &args).await;
    let b = Replica::start(&db.url, &args).await;
    create_study(&a).await;

    // Round one: two workers, one per replica.
    tokio::join!(
        stream_evaluations(a.channel.clone(), nets[..150].to_vec(), "w-a".to_owned()),
        stream_evaluations(b.channel.clone(), nets[150..300].to_vec(), "w-b".to_owned()),
    );
    let probe = nets[9_000].clone();
    let v1 = wait_for_version(&a, &probe, None).await;
    assert_eq!(wait_for_version(&b, &probe, None).await, v1);

    // Round two, with both replicas under prediction load meanwhile.
    let (la, lb) = (
        PredictLoop::start(&a, probe.clone()),
        PredictLoop::start(&b, probe.clone()),
    );
    tokio::join!(
        stream_evaluations(a.channel.clone(), nets[300..600].to_vec(), "w-a".to_owned()),
        stream_evaluations(b.channel.clone(), nets[600..900].to_vec(), "w-b".to_owned()),
    );
    let v2 = wait_for_version(&a, &probe, Some(&v1)).await;
    wait_for_version(&b, &probe, Some(&v1)).await;
    // Let any round still due finish, so the logs below are complete.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ((calls_a, fail_a, seen_a), (calls_b, fail_b, seen_b)) =
        (la.finish().await, lb.finish().await);
    assert_eq!(
        (fail_a, fail_b),
        (0, 0),
        "no failed prediction during swaps"
    );
    assert!(calls_a > 50 && calls_b > 50, "{calls_a} {calls_b} calls");

    // Within a second of promotion, on both replicas, by notification.
    let listed = list_models(&b).await;
    for m in &listed.models {
        if m.version == v1 || m.activated_at_unix_ms == 0 {
            continue;
        }
        for (replica, seen) in [("a", &seen_a), ("b", &seen_b)] {
            let (_, at) = seen
                .iter()
                .find(|(v, _)| *v == m.version)
                .unwrap_or_else(|| panic!("replica {replica} never served {}", m.version));
            let lag = at - m.activated_at_unix_ms;
            println!(
                "replica {replica} served {} {lag} ms after promotion",
                m.version
            );
            assert!(lag < 1_000, "replica {replica} took {lag} ms");
        }
    }
    assert!(listed.models.iter().any(|m| m.version == v2));

    // One trainer per round: every promotion logged once, by one replica,
    // and no training data trained twice.
    let mut promoted = a.promoted();
    promoted.extend(b.promoted());
    let mut unique = promoted.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), promoted.len(), "{promoted:?}");
    assert_eq!(promoted.len(), listed.models.len(), "{promoted:?}");
    let mut shas: Vec<&str> = listed
        .models
        .iter()
        .map(|m| m.training_data_sha256.as_str())
        .collect();
    shas.sort_unstable();
    shas.dedup();
    assert_eq!(shas.len(), listed.models.len());
    drop((a, b));
    db.drop().await;
}

async fn advisory_locks(admin: &mut sqlx::PgConnection, database: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
         WHERE l.locktype = 'advisory' AND l.granted AND d.datname = $1",
    )
    .bind(database)
    .fetch_one(admin)
    .await
    .expect("pg_locks")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trainer_killed_mid_training_leaves_the_previous_model_serving() {
    use sqlx::Connection;
    let nets = tokio::task::spawn_blocking(|| networks(OBJECTIVE))
        .await
        .expect("tables");
    let db = TestDatabase::create().await;
    let manual = ["--retrain-after", "0", "--retrain-interval", "0s"];
    // A trains slowly (many rounds), B quickly.
    let mut a = Replica::start(
        &db.url,
        &[&manual[..], &["--retrain-iterations", "20000"]].concat(),
    )
    .await;
    let b = Replica::start(
        &db.url,
        &[&manual[..], &["--retrain-iterations", "100"]].concat(),
    )
    .await;
    create_study(&b).await;
    stream_evaluations(b.channel.clone(), nets[..3_000].to_vec(), "w".to_owned()).await;
    let retrain = |force| RetrainRequest {
        study: STUDY.to_owned(),
        objectives: vec![OBJECTIVE.to_owned()],
        force,
    };
    let first = ModelsClient::new(b.channel.clone())
        .retrain(retrain(false))
        .await
        .expect("retrain on b")
        .into_inner();
    assert_eq!(first.results[0].outcome, "promoted", "{first:?}");
    let v1 = first.results[0].version.clone();
    let probe = nets[9_000].clone();
    assert_eq!(wait_for_version(&a, &probe, None).await, v1);

    // A starts training; it is killed while it holds the trainer lock.
    let mut admin = sqlx::PgConnection::connect(&common::postgres_admin_url())
        .await
        .expect("admin");
    assert_eq!(advisory_locks(&mut admin, &db.name).await, 0);
    let mut client_a = ModelsClient::new(a.channel.clone());
    let call = tokio::spawn(async move { client_a.retrain(retrain(true)).await });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while advisory_locks(&mut admin, &db.name).await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a never took the lock"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // While A holds the lock, B cannot train.
    let busy = ModelsClient::new(b.channel.clone())
        .retrain(retrain(true))
        .await
        .expect_err("b must wait its turn");
    assert_eq!(busy.code(), tonic::Code::Aborted, "{busy:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.child.kill().expect("SIGKILL");
    a.child.wait().expect("reaped");
    assert!(call.await.expect("task").is_err(), "the killed call fails");

    // Nothing half-promoted: v1 serves, nothing else was stored.
    let listed = list_models(&b).await;
    assert_eq!(listed.models.len(), 1, "{listed:?}");
    assert_eq!(listed.models[0].version, v1);
    assert_eq!(listed.models[0].status, "active");
    // The dead session's lock is gone once PostgreSQL sees the socket close.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while advisory_locks(&mut admin, &db.name).await != 0 {
        assert!(tokio::time::Instant::now() < deadline, "lock still held");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // B takes over the next retraining.
    let next = ModelsClient::new(b.channel.clone())
        .retrain(retrain(true))
        .await
        .expect("b retrains")
        .into_inner();
    assert_eq!(next.results[0].outcome, "promoted", "{next:?}");
    let v2 = next.results[0].version.clone();
    assert_ne!(v2, v1);
    assert_eq!(wait_for_version(&b, &probe, Some(&v1)).await, v2);
    drop((a, b));
    let _ = admin.close().await;
    db.drop().await;
}

/// Client-side round-robin over the replicas (what a gRPC client with the
/// round_robin policy does over a headless Service), with the fleet's
/// membership changed as Kubernetes endpoints change. Every call is
/// retried on the next replica when one fails; failures are recorded with
/// the replica that gave them.
#[derive(Clone, Default)]
struct Balancer {
    members: Arc<Mutex<Vec<(String, Channel)>>>,
    next: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<CallFailure>>>,
}

/// A call that failed: on which replica, which call, its status, when.
type CallFailure = (String, &'static str, String, std::time::Instant);

impl Balancer {
    fn add(&self, name: &str, channel: Channel) {
        self.members
            .lock()
            .expect("members")
            .push((name.to_owned(), channel));
    }

    fn remove(&self, name: &str) {
        self.members
            .lock()
            .expect("members")
            .retain(|(n, _)| n != name);
    }

    fn pick(&self) -> (String, Channel) {
        let members = self.members.lock().expect("members");
        let i = self.next.fetch_add(1, Ordering::Relaxed) as usize % members.len();
        members[i].clone()
    }

    fn failed(&self, replica: String, call: &'static str, status: &tonic::Status) {
        self.failures.lock().expect("failures").push((
            replica,
            call,
            format!("{:?}: {}", status.code(), status.message()),
            std::time::Instant::now(),
        ));
    }

    async fn predict(&self, request: PredictRequest) -> String {
        for _ in 0..20 {
            let (name, channel) = self.pick();
            match PredictorClient::new(channel).predict(request.clone()).await {
                Ok(r) => return r.into_inner().objectives[0].model_version.clone(),
                Err(e) => self.failed(name, "predict", &e),
            }
        }
        panic!("no replica answered a prediction in 20 attempts");
    }

    /// Records one message, again on the next replica until one
    /// acknowledges it; returns the idempotency keys acknowledged.
    async fn record(&self, request: RecordEvaluationsRequest) -> Vec<String> {
        for _ in 0..50 {
            let (name, channel) = self.pick();
            match StoreClient::new(channel)
                .record_evaluation_batch(request.clone())
                .await
            {
                Ok(r) => {
                    let r = r.into_inner();
                    assert_eq!(r.rejected, 0, "{r:?}");
                    return r.results.into_iter().map(|x| x.idempotency_key).collect();
                }
                Err(e) => {
                    self.failed(name, "record", &e);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        panic!("no replica acknowledged a batch in 50 attempts");
    }
}

/// SIGTERM, as Kubernetes sends it, and the exit status.
fn terminate(replica: &mut Replica) -> std::process::ExitStatus {
    let pid = replica.pid().to_string();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(sent.success());
    replica.child.wait().expect("exit")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_survive_a_sigkill_and_a_restart_while_workers_record_and_predictions_flow()
{
    use sqlx::Connection;
    let nets = tokio::task::spawn_blocking(|| networks(OBJECTIVE))
        .await
        .expect("tables");
    let db = TestDatabase::create().await;
    let args = [
        "--retrain-after",
        "1000",
        "--retrain-interval",
        "0s",
        "--retrain-iterations",
        "150",
        "--retrain-tolerance",
        "1",
        "--retrain-check-every",
        "200ms",
        "--shutdown-grace",
        "10s",
    ];
    let mut a = Replica::start(&db.url, &args).await;
    let b = Replica::start(&db.url, &args).await;
    let mut c = Replica::start(&db.url, &args).await;
    let fleet = Balancer::default();
    for (name, r) in [("a", &a), ("b", &b), ("c", &c)] {
        fleet.add(name, r.channel.clone());
    }
    create_study(&b).await;

    // A first model, from 300 evaluations and an explicit retraining.
    stream_evaluations(
        b.channel.clone(),
        nets[2_400..2_700].to_vec(),
        "seed".to_owned(),
    )
    .await;
    let first = ModelsClient::new(b.channel.clone())
        .retrain(RetrainRequest {
            study: STUDY.to_owned(),
            objectives: vec![OBJECTIVE.to_owned()],
            force: false,
        })
        .await
        .expect("first retraining")
        .into_inner();
    assert_eq!(first.results[0].outcome, "promoted", "{first:?}");
    let v1 = first.results[0].version.clone();
    let probe = nets[9_000].clone();
    for r in [&a, &b, &c] {
        assert_eq!(wait_for_version(r, &probe, None).await, v1);
    }

    // Predictions flow through the balancer the whole time.
    let stop = Arc::new(AtomicBool::new(false));
    let predictions = {
        let (fleet, stop, probe) = (fleet.clone(), Arc::clone(&stop), probe.clone());
        tokio::spawn(async move {
            let mut answered = 0u64;
            while !stop.load(Ordering::Relaxed) {
                fleet.predict(predict_request(&probe)).await;
                answered += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            answered
        })
    };
    // 2,400 evaluations from three workers, 20 per message; some messages
    // are sent twice, as a worker that lost an acknowledgement would.
    let progress = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..3)
        .map(|w| {
            let (fleet, progress) = (fleet.clone(), Arc::clone(&progress));
            let share: Vec<Network> = nets[w * 800..(w + 1) * 800].to_vec();
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                for (i, chunk) in share.chunks(20).enumerate() {
                    let request = RecordEvaluationsRequest {
                        evaluations: chunk
                            .iter()
                            .map(|n| evaluation(n, &format!("w{w}")))
                            .collect(),
                    };
                    acknowledged.extend(fleet.record(request.clone()).await);
                    if i % 7 == 3 {
                        acknowledged.extend(fleet.record(request).await);
                    }
                    progress.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                acknowledged
            })
        })
        .collect();

    let wait_progress = |n: u64| {
        let progress = Arc::clone(&progress);
        async move {
            while progress.load(Ordering::Relaxed) < n {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    // Mid-stream: a replica dies (SIGKILL: no drain, calls in flight fail).
    wait_progress(600).await;
    let killed_at = std::time::Instant::now();
    a.child.kill().expect("SIGKILL");
    a.child.wait().expect("reaped");
    // The endpoints controller notices a while later.
    tokio::time::sleep(Duration::from_millis(300)).await;
    fleet.remove("a");

    // Later: another is restarted the way a rollout does it: out of the
    // endpoints first, then SIGTERM, drain, a new pod, back in.
    wait_progress(1_300).await;
    fleet.remove("c");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let status = terminate(&mut c);
    assert!(
        status.success(),
        "a drained replica exits cleanly: {status:?}"
    );
    let c2 = Replica::start(&db.url, &args).await;
    fleet.add("c2", c2.channel.clone());

    let mut acknowledged = Vec::new();
    for w in workers {
        acknowledged.extend(w.await.expect("worker"));
    }
    // 2,400 more evaluations: a retraining is due and promoted.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut versions;
    loop {
        versions = (
            wait_for_version(&b, &probe, Some("")).await,
            wait_for_version(&c2, &probe, Some("")).await,
        );
        let listed = list_models(&b).await;
        let serving: Vec<&str> = listed
            .models
            .iter()
            .filter(|m| m.status == "active")
            .map(|m| m.version.as_str())
            .collect();
        // Retrained on the workers' evaluations, not only the first 300.
        let retrained = serving.len() == 1
            && serving[0] != v1
            && listed
                .models
                .iter()
                .any(|m| m.version == serving[0] && m.training_rows > 1_000);
        if retrained && versions.0 == serving[0] && versions.1 == serving[0] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "survivors serve {versions:?}, the store says {serving:?} (first {v1})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let answered = predictions.await.expect("predictions");
    assert!(answered > 100, "{answered} predictions");

    // Every acknowledged evaluation stored exactly once.
    let mut unique = acknowledged.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 2_400, "every worker evaluation acknowledged");
    let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("db");
    let (rows, keys): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT idempotency_key) FROM evaluations")
            .fetch_one(&mut conn)
            .await
            .expect("count");
    assert_eq!(
        (rows, keys),
        (2_700, 2_700),
        "the first 300 and the workers' 2,400"
    );
    let _ = conn.close().await;

    // No call failed except on the killed replica, and only from its death.
    let failures = fleet.failures.lock().expect("failures").clone();
    println!(
        "{answered} predictions; {} calls failed, on the killed replica, and were retried on another",
        failures.len()
    );
    for (replica, call, status, at) in &failures {
        assert_eq!(replica, "a", "{call} failed on {replica}: {status}");
        assert!(
            *at >= killed_at,
            "{call} failed on a before it was killed: {status}"
        );
    }
    drop((a, b, c, c2));
    db.drop().await;
}
