//! The database goes away while workers record and predict: predictions
//! never stop, recording answers UNAVAILABLE, the store's health turns
//! NOT_SERVING, and after recovery every acknowledged evaluation is stored
//! exactly once. The outage is a TCP proxy in front of the real PostgreSQL
//! that the test cuts and restores, so the server itself keeps running for
//! the other tests.

use std::{
    collections::BTreeSet,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use nasperf::{
    proto::v1::{
        Evaluation, ListEvaluationsRequest, RecordEvaluationsRequest, record_result::Outcome,
        store_client::StoreClient,
    },
    store::DatabaseUrl,
};
use tokio::{net::TcpListener, task::JoinSet};
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::helpers::{BEST_CELL, TestDatabase, candidate, nb201_cell, request, spawn_app_with};

/// Forwards a local port to `target` until cut; cutting closes every open
/// connection at once.
struct Proxy {
    addr: SocketAddr,
    target: SocketAddr,
    accept: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Proxy {
        let mut proxy = Proxy {
            addr: "127.0.0.1:0".parse().unwrap(),
            target,
            accept: None,
        };
        proxy.restore().await;
        proxy
    }

    /// (Re)opens the port; the first call picks a free one.
    async fn restore(&mut self) {
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("bind the proxy port");
        self.addr = listener.local_addr().unwrap();
        let target = self.target;
        self.accept = Some(tokio::spawn(async move {
            // Owned here: aborting the accept task drops every connection.
            let mut connections = JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut upstream) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                });
            }
        }));
    }

    async fn cut(&mut self) {
        if let Some(task) = self.accept.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

fn evaluation(i: usize) -> Evaluation {
    Evaluation {
        search_space: "nb201".to_owned(),
        arch: nb201_cell(i),
        objective: "cifar10/val_acc_200ep".to_owned(),
        value: i as f64 / 10.0,
        worker: "outage-test".to_owned(),
        idempotency_key: format!("outage-{i}"),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_loses_and_doubles_nothing() {
    let database = TestDatabase::create().await;

    let mut proxy = Proxy::start("127.0.0.1:5432".parse().unwrap()).await;
    // The same database, reached through the proxy.
    let url = format!("postgres://postgres@{}/{}", proxy.addr, database.name);
    let app = spawn_app_with(|c| c.database_url = Some(DatabaseUrl(url))).await;
    let health = |channel: tonic::transport::Channel| async move {
        HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: "nasperf.v1.Store".to_owned(),
            })
            .await
            .map(|r| r.into_inner().status)
            .unwrap_or(-1)
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while health(app.channel.clone()).await != ServingStatus::Serving as i32 {
        assert!(tokio::time::Instant::now() < deadline, "store never ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A predictor that must never fail.
    let stop = Arc::new(AtomicBool::new(false));
    let predictor = {
        let (mut client, stop) = (app.client.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let (mut calls, mut failures) = (0u32, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                if let Err(s) = client
                    .predict(request(vec![candidate(BEST_CELL)], &[]))
                    .await
                {
                    failures.push(format!("{:?}: {}", s.code(), s.message()));
                }
                calls += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (calls, failures)
        })
    };
    // A worker that records 400 evaluations in batches of 10, retrying each
    // batch with the same keys until it is acknowledged.
    let batches_acknowledged = Arc::new(AtomicUsize::new(0));
    let worker = {
        let mut store = StoreClient::new(app.channel.clone());
        let batches_acknowledged = Arc::clone(&batches_acknowledged);
        tokio::spawn(async move {
            let (mut acknowledged, mut errors) = (BTreeSet::new(), Vec::new());
            for chunk in (0..400).collect::<Vec<_>>().chunks(10) {
                let batch = RecordEvaluationsRequest {
                    evaluations: chunk.iter().map(|&i| evaluation(i)).collect(),
                };
                loop {
                    match store.record_evaluation_batch(batch.clone()).await {
                        Ok(r) => {
                            for result in r.into_inner().results {
                                assert!(
                                    matches!(
                                        result.outcome(),
                                        Outcome::Stored | Outcome::AlreadyStored
                                    ),
                                    "{}",
                                    result.message
                                );
                                acknowledged.insert(result.idempotency_key);
                            }
                            batches_acknowledged.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        Err(s) => {
                            errors.push(s.code());
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (acknowledged, errors)
        })
    };

    // Let a few batches through, then cut the database off for a while:
    // counted, not timed, so that a fast worker cannot finish before the
    // cut (40 batches at 10 ms apart outlast the few it takes to see 3).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while batches_acknowledged.load(Ordering::Relaxed) < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no batch was acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    proxy.cut().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while health(app.channel.clone()).await != ServingStatus::NotServing as i32 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the store never reported NOT_SERVING"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.restore().await;

    let (acknowledged, errors) = tokio::time::timeout(Duration::from_secs(120), worker)
        .await
        .expect("the worker finishes after recovery")
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    let (calls, failures) = predictor.await.unwrap();
    assert!(
        failures.is_empty(),
        "{} of {calls} predictions failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    assert!(!errors.is_empty(), "the outage was seen by the worker");
    assert!(
        errors.iter().all(|c| *c == Code::Unavailable),
        "only UNAVAILABLE, got {errors:?}"
    );
    assert_eq!(acknowledged.len(), 400);

    // Exactly once: 400 rows, one per key.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while health(app.channel.clone()).await != ServingStatus::Serving as i32 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the store never recovered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rows = StoreClient::new(app.channel.clone())
        .list_evaluations(ListEvaluationsRequest {
            page_size: 10_000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .evaluations;
    let keys: BTreeSet<String> = rows.iter().map(|e| e.idempotency_key.clone()).collect();
    assert_eq!(rows.len(), 400, "no evaluation doubled");
    assert_eq!(
        keys, acknowledged,
        "every acknowledged evaluation is stored"
    );

    app.stop().await;
    proxy.cut().await;
    database.drop().await;
}
