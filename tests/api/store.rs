//! The `nasperf.v1.Store` service over gRPC, on both backends.

use std::time::Duration;

use nasperf::proto::v1::{
    CreateStudyRequest, Evaluation, ExcludeEvaluationsRequest, GetStudyRequest,
    ListEvaluationsRequest, ListStudiesRequest, RecordEvaluationsRequest, record_result::Outcome,
    store_client::StoreClient,
};
use nasperf::store::DatabaseUrl;
use tonic::{Code, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::helpers::{BEST_CELL, TestDatabase, candidate, nb201_cell, request, spawn_app_with};

fn evaluation(key: &str, arch: &str, value: f64) -> Evaluation {
    Evaluation {
        study: String::new(),
        search_space: "nb201".to_owned(),
        arch: arch.to_owned(),
        objective: "cifar10/val_acc_200ep".to_owned(),
        value,
        budget: Some(200.0),
        worker: "gpu-7".to_owned(),
        idempotency_key: key.to_owned(),
        dataset: String::new(),
        proxies: Default::default(),
    }
}

async fn store_health(channel: &Channel) -> i32 {
    HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "nasperf.v1.Store".to_owned(),
        })
        .await
        .expect("health")
        .into_inner()
        .status
}

async fn wait_store_ready(channel: &Channel) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while store_health(channel).await != ServingStatus::Serving as i32 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the store never became ready"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Studies, streamed recording with bad rows and retries, and paged reads.
async fn record_and_read_back(database_url: Option<String>) {
    let app = spawn_app_with(|c| c.database_url = database_url.map(DatabaseUrl)).await;
    wait_store_ready(&app.channel).await;
    let mut store = StoreClient::new(app.channel.clone());

    let created = store
        .create_study(CreateStudyRequest {
            name: "search-a".to_owned(),
            description: "a search".to_owned(),
        })
        .await
        .expect("create")
        .into_inner();
    assert_eq!(created.name, "search-a");
    let again = store
        .create_study(CreateStudyRequest {
            name: "search-a".to_owned(),
            description: String::new(),
        })
        .await
        .expect_err("taken");
    assert_eq!(again.code(), Code::AlreadyExists);
    let bad_name = store
        .create_study(CreateStudyRequest {
            name: "a b".to_owned(),
            description: String::new(),
        })
        .await
        .expect_err("bad name");
    assert_eq!(bad_name.code(), Code::InvalidArgument);
    assert!(
        bad_name.message().contains("name"),
        "{}",
        bad_name.message()
    );

    // Two messages on one stream; a bad row in the middle of the second.
    let mut in_a = evaluation("a-1", BEST_CELL, 91.2);
    in_a.study = "search-a".to_owned();
    let mut bad = evaluation("bad", "|nope|", 50.0);
    bad.study = "search-a".to_owned();
    let messages = vec![
        RecordEvaluationsRequest {
            evaluations: vec![
                evaluation("d-1", BEST_CELL, 91.5),
                evaluation("d-2", "421211", 82.0),
            ],
        },
        RecordEvaluationsRequest {
            evaluations: vec![in_a, bad, evaluation("d-3", "000100", 40.0)],
        },
    ];
    let response = store
        .record_evaluations(tokio_stream::iter(messages.clone()))
        .await
        .expect("record")
        .into_inner();
    assert_eq!(
        (response.stored, response.already_stored, response.rejected),
        (4, 0, 1)
    );
    let rejected = &response.results[3];
    assert_eq!(rejected.index, 3, "rows are numbered across the stream");
    assert_eq!(rejected.outcome(), Outcome::Rejected);
    assert_eq!(rejected.code, Code::InvalidArgument as i32);
    assert!(
        rejected.message.starts_with("evaluations[3].arch:"),
        "{}",
        rejected.message
    );

    // The worker retries the whole stream: nothing is stored twice.
    let retry = store
        .record_evaluations(tokio_stream::iter(messages))
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(
        (retry.stored, retry.already_stored, retry.rejected),
        (0, 4, 1)
    );

    // A reused key with a different payload.
    let clash = store
        .record_evaluation_batch(RecordEvaluationsRequest {
            evaluations: vec![evaluation("d-1", BEST_CELL, 10.0)],
        })
        .await
        .expect("batch")
        .into_inner();
    assert_eq!(clash.results[0].outcome(), Outcome::Rejected);
    assert_eq!(clash.results[0].code, Code::AlreadyExists as i32);

    let default = store
        .get_study(GetStudyRequest {
            name: "default".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(default.evaluations, 3);
    let names: Vec<String> = store
        .list_studies(ListStudiesRequest {})
        .await
        .unwrap()
        .into_inner()
        .studies
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["default", "search-a"]);

    // Paged reads, pooled over both studies.
    let mut keys = Vec::new();
    let mut token = String::new();
    loop {
        let page = store
            .list_evaluations(ListEvaluationsRequest {
                studies: vec!["default".to_owned(), "search-a".to_owned()],
                page_size: 2,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        keys.extend(page.evaluations.iter().map(|e| e.idempotency_key.clone()));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(keys, ["d-1", "d-2", "a-1", "d-3"]);
    let bad_token = store
        .list_evaluations(ListEvaluationsRequest {
            page_token: "xyz".to_owned(),
            ..Default::default()
        })
        .await
        .expect_err("bad token");
    assert_eq!(bad_token.code(), Code::InvalidArgument);
    let unknown = store
        .list_evaluations(ListEvaluationsRequest {
            studies: vec!["nope".to_owned()],
            ..Default::default()
        })
        .await
        .expect_err("unknown study");
    assert_eq!(unknown.code(), Code::NotFound);

    // The worker turns out broken: its reports in the default study go.
    let excluded = store
        .exclude_evaluations(ExcludeEvaluationsRequest {
            study: String::new(),
            worker: "gpu-7".to_owned(),
            ..Default::default()
        })
        .await
        .expect("exclude")
        .into_inner()
        .excluded;
    assert_eq!(excluded, 3);
    let left = store
        .list_evaluations(ListEvaluationsRequest {
            studies: vec!["default".to_owned(), "search-a".to_owned()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .evaluations;
    assert_eq!(left.len(), 1, "only search-a's row is left");
    let refused = store
        .exclude_evaluations(ExcludeEvaluationsRequest::default())
        .await
        .expect_err("needs a worker or a time range");
    assert_eq!(refused.code(), Code::InvalidArgument);
    app.stop().await;
}

#[tokio::test]
async fn record_and_read_back_on_sqlite() {
    record_and_read_back(None).await;
}

#[tokio::test]
async fn record_and_read_back_on_postgres() {
    let database = TestDatabase::create().await;
    record_and_read_back(Some(database.url.clone())).await;
    database.drop().await;
}

#[tokio::test]
async fn an_unreachable_database_leaves_predictions_serving() {
    // Nothing listens on port 1: the store cannot connect.
    let mut app = spawn_app_with(|c| {
        c.database_url = Some(DatabaseUrl(
            "postgres://nasperf@127.0.0.1:1/nasperf".to_owned(),
        ))
    })
    .await;
    assert_eq!(
        store_health(&app.channel).await,
        ServingStatus::NotServing as i32
    );
    app.client
        .predict(request(
            vec![candidate(BEST_CELL)],
            &["cifar10/val_acc_200ep"],
        ))
        .await
        .expect("predictions keep being served");
    let status = StoreClient::new(app.channel.clone())
        .record_evaluation_batch(RecordEvaluationsRequest {
            evaluations: vec![evaluation("k", BEST_CELL, 90.0)],
        })
        .await
        .expect_err("the store is down");
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status
            .message()
            .contains("retry with the same idempotency keys"),
        "{}",
        status.message()
    );
    // Asking for measured values still gets predictions, flagged.
    let mut req = request(vec![candidate(BEST_CELL)], &["cifar10/val_acc_200ep"]);
    req.study = "default".to_owned();
    let r = app
        .client
        .predict(req)
        .await
        .expect("predictions keep being served")
        .into_inner();
    assert!(r.measurements_unavailable);
    app.stop().await;
}

#[tokio::test]
async fn predict_answers_what_the_study_measured() {
    let mut app = spawn_app_with(|_| {}).await;
    wait_store_ready(&app.channel).await;
    let mut store = StoreClient::new(app.channel.clone());
    let mut latency = evaluation("lat-1", "000100", 1.5);
    latency.objective = "cifar10/edgegpu_latency".to_owned();
    let recorded = store
        .record_evaluation_batch(RecordEvaluationsRequest {
            evaluations: vec![
                // Two reports of one network average.
                evaluation("acc-1", BEST_CELL, 93.0),
                evaluation("acc-2", "333133", 91.0),
                evaluation("acc-3", "000100", 40.0),
                latency,
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(recorded.stored, 4);

    // "003100" has a dead conv: the same network as "000100", another cell.
    let objectives = ["cifar10/val_acc_200ep", "cifar10/edgegpu_latency"];
    let mut req = request(
        vec![
            candidate(BEST_CELL),
            candidate("000100"),
            candidate("003100"),
        ],
        &objectives,
    );
    req.study = "default".to_owned();
    let r = app
        .client
        .predict(req.clone())
        .await
        .expect("predict")
        .into_inner();
    assert!(!r.measurements_unavailable);
    let p = &r.predictions;
    assert_eq!(
        (p[0].values[0], &p[0].measured[..]),
        (92.0, &[true, false][..])
    );
    assert_eq!(
        (p[1].values[0], p[1].values[1], &p[1].measured[..]),
        (40.0, 1.5, &[true, true][..])
    );
    assert_eq!(
        p[2].values[0], 40.0,
        "accuracy follows the canonical network"
    );
    assert_eq!(
        &p[2].measured[..],
        &[true, false],
        "latency is per cell as sent"
    );

    // Without a study: predictions only.
    req.study.clear();
    let plain = app.client.predict(req.clone()).await.unwrap().into_inner();
    assert!(plain.predictions.iter().all(|p| p.measured.is_empty()));
    assert_ne!(plain.predictions[0].values[0], 92.0);

    req.study = "nope".to_owned();
    let status = app.client.predict(req).await.expect_err("unknown study");
    assert_eq!(status.code(), Code::NotFound);
    app.stop().await;
}

/// Six workers stream the same 300 evaluations at once.
async fn concurrent_duplicate_streams(database_url: Option<String>) {
    let app = spawn_app_with(|c| c.database_url = database_url.map(DatabaseUrl)).await;
    wait_store_ready(&app.channel).await;
    let messages: Vec<RecordEvaluationsRequest> = (0..300)
        .collect::<Vec<usize>>()
        .chunks(50)
        .map(|chunk| RecordEvaluationsRequest {
            evaluations: chunk
                .iter()
                .map(|&i| evaluation(&format!("dup-{i}"), &nb201_cell(i * 7), i as f64))
                .collect(),
        })
        .collect();
    let streams: Vec<_> = (0..6)
        .map(|_| {
            let (mut client, messages) = (StoreClient::new(app.channel.clone()), messages.clone());
            tokio::spawn(async move {
                client
                    .record_evaluations(tokio_stream::iter(messages))
                    .await
            })
        })
        .collect();
    let (mut stored, mut already) = (0, 0);
    for s in streams {
        let r = s.await.unwrap().expect("stream").into_inner();
        assert_eq!(r.rejected, 0);
        stored += r.stored;
        already += r.already_stored;
    }
    assert_eq!(
        (stored, already),
        (300, 5 * 300),
        "each row stored by exactly one stream"
    );
    let rows = StoreClient::new(app.channel.clone())
        .list_evaluations(ListEvaluationsRequest {
            page_size: 10_000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .evaluations;
    assert_eq!(rows.len(), 300);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicate_streams_on_sqlite() {
    concurrent_duplicate_streams(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicate_streams_on_postgres() {
    let database = TestDatabase::create().await;
    concurrent_duplicate_streams(Some(database.url.clone())).await;
    database.drop().await;
}
