//! The evaluation store, one suite run against both backends: the embedded
//! SQLite default (a fresh file per test) and the real PostgreSQL server (a
//! fresh database per test, created by name and dropped afterwards).

#[macro_use]
mod common;

use std::{collections::BTreeMap, sync::Arc};

use nasperf::store::{
    EvaluationFilter, NewEvaluation, RecordOutcome, RejectionKind, Store, StoreError,
};

on_both_backends!(
    a_budget_may_be_missing_in_one_report_and_given_in_the_next,
    studies_are_created_listed_and_described,
    evaluations_are_stored_once_and_read_back,
    a_reused_key_with_another_payload_is_refused,
    bad_rows_are_rejected_and_good_ones_kept,
    studies_do_not_see_each_others_data,
    concurrent_duplicate_batches_store_each_row_once,
    listing_filters_and_pages,
    a_broken_workers_reports_are_excluded,
    importing_the_tables_twice_changes_nothing,
    measured_values_follow_the_objective_kind,
);

const CELLS: [&str; 4] = ["333133", "421211", "000100", "123412"];

fn eval(key: &str, arch: &str, value: f64) -> NewEvaluation {
    NewEvaluation {
        study: String::new(),
        search_space: "nb201".to_owned(),
        arch: arch.to_owned(),
        objective: "cifar10/val_acc_200ep".to_owned(),
        value,
        budget: Some(200.0),
        worker: "worker-1".to_owned(),
        idempotency_key: key.to_owned(),
        dataset: String::new(),
        proxies: BTreeMap::new(),
    }
}

async fn count(store: &Store, studies: &[&str]) -> usize {
    store
        .list_evaluations(&EvaluationFilter {
            studies: studies.iter().map(|s| (*s).to_owned()).collect(),
            limit: 10_000,
            ..Default::default()
        })
        .await
        .expect("list")
        .len()
}

async fn studies_are_created_listed_and_described(store: &Store) {
    let default = store
        .study("default")
        .await
        .expect("the default study exists");
    assert_eq!(default.evaluations, 0);
    let created = store
        .create_study("search-a", "first search")
        .await
        .expect("create");
    assert_eq!(created.name, "search-a");
    assert!(matches!(
        store.create_study("search-a", "again").await,
        Err(StoreError::StudyExists(_))
    ));
    assert!(matches!(
        store.create_study("no spaces", "").await,
        Err(StoreError::InvalidArgument { field: "name", .. })
    ));
    let names: Vec<String> = store
        .list_studies()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["default", "search-a"]);
    assert!(matches!(
        store.study("nope").await,
        Err(StoreError::UnknownStudy(_))
    ));
}

async fn evaluations_are_stored_once_and_read_back(store: &Store) {
    let mut with_proxies = eval("k3", CELLS[2], 70.0);
    with_proxies.dataset = "cifar10".to_owned();
    with_proxies.proxies.insert("synflow".to_owned(), 12.5);
    let batch = vec![
        eval("k1", CELLS[0], 91.5),
        eval("k2", CELLS[1], 82.0),
        with_proxies,
    ];
    let first = store.record(&batch).await.unwrap();
    assert_eq!(first, vec![RecordOutcome::Stored; 3]);
    // A retry (same keys, same payloads) is acknowledged again, not stored.
    let again = store.record(&batch).await.unwrap();
    assert_eq!(again, vec![RecordOutcome::AlreadyStored; 3]);
    assert_eq!(count(store, &["default"]).await, 3);
    assert_eq!(store.study("default").await.unwrap().evaluations, 3);

    let rows = store
        .list_evaluations(&EvaluationFilter::default())
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].idempotency_key, "k1");
    assert_eq!(rows[0].encoding, "333133");
    assert_eq!(rows[0].canonical_key, "333133");
    assert_eq!(rows[0].value, 91.5);
    assert_eq!(rows[0].budget, Some(200.0));
    assert_eq!(rows[0].worker, "worker-1");
    assert!(rows[0].recorded_at_ms > 0);
    // The same cell spelled as an arch string is the same architecture.
    let spelled = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|";
    let by_arch = store
        .list_evaluations(&EvaluationFilter {
            search_space: "nb201".to_owned(),
            arch: spelled.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_arch.len(), 1);
    assert_eq!(by_arch[0].idempotency_key, "k1");
}

async fn a_reused_key_with_another_payload_is_refused(store: &Store) {
    store.record(&[eval("key", CELLS[0], 91.5)]).await.unwrap();
    let outcomes = store.record(&[eval("key", CELLS[0], 50.0)]).await.unwrap();
    let RecordOutcome::Rejected(r) = &outcomes[0] else {
        panic!("expected a rejection, got {outcomes:?}");
    };
    assert_eq!(r.kind, RejectionKind::AlreadyExists);
    assert!(
        r.message.contains("idempotency_key") && r.message.contains("\"key\""),
        "{}",
        r.message
    );
    // Within one batch too.
    let outcomes = store
        .record(&[
            eval("dup", CELLS[1], 1.0),
            eval("dup", CELLS[1], 1.0),
            eval("dup", CELLS[1], 2.0),
        ])
        .await
        .unwrap();
    assert_eq!(outcomes[0], RecordOutcome::Stored);
    assert_eq!(outcomes[1], RecordOutcome::AlreadyStored);
    assert!(
        matches!(&outcomes[2], RecordOutcome::Rejected(r) if r.kind == RejectionKind::AlreadyExists && r.message.contains("row 0"))
    );
    let rows = store
        .list_evaluations(&EvaluationFilter::default())
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].value, 91.5, "the first payload stands");
}

async fn bad_rows_are_rejected_and_good_ones_kept(store: &Store) {
    let mut bad_arch = eval("b1", CELLS[0], 1.0);
    bad_arch.arch = "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|".to_owned();
    let bad_value = eval("b2", CELLS[0], f64::NAN);
    let mut bad_objective = eval("b3", CELLS[0], 1.0);
    bad_objective.objective = "cifar10/nonsense".to_owned();
    let mut bad_study = eval("b4", CELLS[0], 1.0);
    bad_study.study = "never-created".to_owned();
    let mut bad_space = eval("b5", CELLS[0], 1.0);
    bad_space.search_space = "darts".to_owned();
    let mut bad_proxy = eval("b6", CELLS[0], 1.0);
    bad_proxy.dataset = "cifar10".to_owned();
    bad_proxy
        .proxies
        .insert("synflow".to_owned(), f64::INFINITY);
    let no_key = eval("", CELLS[0], 1.0);
    let batch = vec![
        eval("g1", CELLS[0], 90.0),
        bad_arch,
        eval("g2", CELLS[1], 80.0),
        bad_value,
        bad_objective,
        bad_study,
        bad_space,
        bad_proxy,
        no_key,
        eval("g3", CELLS[2], 70.0),
    ];
    let outcomes = store.record(&batch).await.unwrap();
    let expect = |i: usize, kind: RejectionKind, needle: &str| match &outcomes[i] {
        RecordOutcome::Rejected(r) => {
            assert_eq!(r.kind, kind, "row {i}: {}", r.message);
            assert!(
                r.message.contains(needle),
                "row {i}: {:?} lacks {needle:?}",
                r.message
            );
        }
        other => panic!("row {i}: expected a rejection, got {other:?}"),
    };
    expect(
        1,
        RejectionKind::InvalidArgument,
        "arch: unknown op \"conv\"",
    );
    expect(3, RejectionKind::InvalidArgument, "value: NaN");
    expect(4, RejectionKind::NotFound, "objective: unknown objective");
    expect(
        5,
        RejectionKind::NotFound,
        "study: unknown study \"never-created\"",
    );
    expect(6, RejectionKind::NotFound, "search_space");
    expect(7, RejectionKind::InvalidArgument, "proxies[\"synflow\"]");
    expect(8, RejectionKind::InvalidArgument, "idempotency_key");
    for i in [0, 2, 9] {
        assert_eq!(outcomes[i], RecordOutcome::Stored, "row {i}");
    }
    assert_eq!(count(store, &["default"]).await, 3);
}

async fn studies_do_not_see_each_others_data(store: &Store) {
    store.create_study("a", "").await.unwrap();
    store.create_study("b", "").await.unwrap();
    let mut in_a = eval("a1", CELLS[0], 91.0);
    in_a.study = "a".to_owned();
    let mut in_b = eval("b1", CELLS[0], 60.0);
    in_b.study = "b".to_owned();
    let outcomes = store.record(&[in_a, in_b]).await.unwrap();
    assert_eq!(outcomes, vec![RecordOutcome::Stored; 2]);
    assert_eq!(count(store, &["a"]).await, 1);
    assert_eq!(count(store, &["b"]).await, 1);
    assert_eq!(count(store, &["default"]).await, 0);
    assert_eq!(count(store, &["a", "b"]).await, 2, "pooled on request");
    let a = store
        .list_evaluations(&EvaluationFilter {
            studies: vec!["a".to_owned()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((a[0].study.as_str(), a[0].value), ("a", 91.0));
    let err = store
        .list_evaluations(&EvaluationFilter {
            studies: vec!["c".to_owned()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownStudy(_)));
}

async fn concurrent_duplicate_batches_store_each_row_once(store: &Store) {
    // Eight workers send the same 200 evaluations at once (a retry storm).
    let batch: Arc<Vec<NewEvaluation>> = Arc::new(
        (0..200)
            .map(|i| eval(&format!("storm-{i}"), CELLS[i % CELLS.len()], i as f64))
            .collect(),
    );
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, batch) = (store.clone(), Arc::clone(&batch));
            tokio::spawn(async move { store.record(&batch).await })
        })
        .collect();
    let mut stored = 0;
    for t in tasks {
        for outcome in t.await.unwrap().expect("record") {
            match outcome {
                RecordOutcome::Stored => stored += 1,
                RecordOutcome::AlreadyStored => {}
                RecordOutcome::Rejected(r) => panic!("rejected: {}", r.message),
            }
        }
    }
    assert_eq!(stored, 200, "each evaluation stored by exactly one worker");
    assert_eq!(count(store, &["default"]).await, 200);
}

async fn listing_filters_and_pages(store: &Store) {
    let mut batch = Vec::new();
    for i in 0..25 {
        let mut e = eval(&format!("p{i}"), CELLS[i % CELLS.len()], i as f64);
        e.worker = format!("w{}", i % 2);
        if i % 5 == 0 {
            e.objective = "cifar10/edgegpu_latency".to_owned();
        }
        batch.push(e);
    }
    store.record(&batch).await.unwrap();
    let list = |f: EvaluationFilter| async move { store.list_evaluations(&f).await.unwrap() };
    assert_eq!(
        list(EvaluationFilter {
            worker: "w0".to_owned(),
            ..Default::default()
        })
        .await
        .len(),
        13
    );
    let latency = list(EvaluationFilter {
        objective: "cifar10/edgegpu_latency".to_owned(),
        ..Default::default()
    })
    .await;
    assert_eq!(latency.len(), 5);
    // Pages of 10 cover every row once, in order.
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = list(EvaluationFilter {
            after_id: after,
            limit: 10,
            ..Default::default()
        })
        .await;
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 10);
        after = page.last().unwrap().id;
        seen.extend(page.into_iter().map(|e| e.idempotency_key));
    }
    assert_eq!(seen, (0..25).map(|i| format!("p{i}")).collect::<Vec<_>>());
    // Time range: everything was recorded within the last minute.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert_eq!(
        list(EvaluationFilter {
            since_ms: now - 60_000,
            ..Default::default()
        })
        .await
        .len(),
        25
    );
    assert_eq!(
        list(EvaluationFilter {
            until_ms: now - 60_000,
            ..Default::default()
        })
        .await
        .len(),
        0
    );
}

async fn a_broken_workers_reports_are_excluded(store: &Store) {
    let mut batch = Vec::new();
    for i in 0..10 {
        let mut e = eval(&format!("x{i}"), CELLS[i % CELLS.len()], i as f64);
        e.worker = if i < 4 {
            "broken".to_owned()
        } else {
            "good".to_owned()
        };
        batch.push(e);
    }
    store.record(&batch).await.unwrap();
    assert!(matches!(
        store.exclude_evaluations("default", "", 0, 0).await,
        Err(StoreError::InvalidArgument { .. })
    ));
    assert!(matches!(
        store.exclude_evaluations("nope", "broken", 0, 0).await,
        Err(StoreError::UnknownStudy(_))
    ));
    assert_eq!(
        store
            .exclude_evaluations("default", "broken", 0, 0)
            .await
            .unwrap(),
        4
    );
    assert_eq!(
        store
            .exclude_evaluations("default", "broken", 0, 0)
            .await
            .unwrap(),
        0,
        "already excluded"
    );
    assert_eq!(count(store, &["default"]).await, 6);
    assert_eq!(store.study("default").await.unwrap().evaluations, 6);
    // A late retry of an excluded report is not stored again.
    let retry = store.record(&batch[..1]).await.unwrap();
    assert_eq!(retry, vec![RecordOutcome::AlreadyStored]);
    assert_eq!(count(store, &["default"]).await, 6);
    // A time range in the future excludes nothing.
    let later = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + 60_000;
    assert_eq!(
        store
            .exclude_evaluations("default", "", later, 0)
            .await
            .unwrap(),
        0
    );
}

async fn importing_the_tables_twice_changes_nothing(store: &Store) {
    let dir = common::benchdata();
    // An accuracy table with proxies (9,445 canonical networks) and a
    // hardware table with "not measured" rows (15,625 cells, 4,699 skipped).
    let objectives: Vec<_> = ["cifar10/val_acc_200ep", "cifar10/edgetpu_latency"]
        .iter()
        .map(|id| nasperf::objectives::get(id).expect("known").clone())
        .collect();
    let expected = 9_445 + 15_625 - 4_699;
    let mut seen = 0;
    let first =
        nasperf::store::import::import_tables(store, &dir, "bench", &objectives, |n, total| {
            assert_eq!(total, expected as u64);
            seen += n;
        })
        .await
        .expect("import");
    assert_eq!(seen, expected as u64, "progress covers every row");
    assert_eq!((first.stored, first.already_stored), (expected as u64, 0));
    assert!(
        first.rejected.is_empty(),
        "{:?}",
        &first.rejected[..first.rejected.len().min(3)]
    );
    let second =
        nasperf::store::import::import_tables(store, &dir, "bench", &objectives, |_, _| {})
            .await
            .expect("import again");
    assert_eq!((second.stored, second.already_stored), (0, expected as u64));
    assert_eq!(
        store.study("bench").await.unwrap().evaluations,
        expected as i64
    );
    assert_eq!(count(store, &["default"]).await, 0, "only the named study");
    let best = store
        .list_evaluations(&EvaluationFilter {
            studies: vec!["bench".to_owned()],
            objective: "cifar10/val_acc_200ep".to_owned(),
            search_space: "nb201".to_owned(),
            arch: CELLS[0].to_owned(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(best.len(), 1);
    // zccombine_nb201_cifar10_valid_nets.csv, net (2, 2, 0, 2, 2, 2).
    assert_eq!(best[0].value, 90.93);
    assert_eq!(best[0].budget, Some(200.0));
}

async fn measured_values_follow_the_objective_kind(store: &Store) {
    let mut latency = eval("lat", "000100", 1.5);
    latency.objective = "cifar10/edgegpu_latency".to_owned();
    let mut excluded = eval("bad", "000100", 0.0);
    excluded.worker = "broken".to_owned();
    store
        .record(&[
            eval("a", "000100", 40.0),
            eval("b", "000100", 42.0),
            latency,
            excluded,
        ])
        .await
        .unwrap();
    store
        .exclude_evaluations("default", "broken", 0, 0)
        .await
        .unwrap();
    // 003100 is 000100 with a dead conv.
    let candidates = [
        ("nb201", "000100", "000100"),
        ("nb201", "003100", "000100"),
        ("nb201", "333133", "333133"),
    ];
    let objectives = ["cifar10/val_acc_200ep", "cifar10/edgegpu_latency"];
    let m = store
        .measured_values("default", &candidates, &objectives)
        .await
        .unwrap();
    assert_eq!(
        m.get(&(0, 0)),
        Some(&41.0),
        "mean, without the excluded report"
    );
    assert_eq!(m.get(&(0, 1)), Some(&1.5));
    assert_eq!(m.get(&(1, 0)), Some(&41.0), "same network");
    assert_eq!(m.get(&(1, 1)), None, "hardware is per cell");
    assert_eq!(m.get(&(2, 0)), None);
    assert_eq!(m.len(), 3);
    assert!(matches!(
        store
            .measured_values("nope", &candidates, &objectives)
            .await,
        Err(StoreError::UnknownStudy(_))
    ));
}

/// A worker that knows no budget and one that does, one after the other on
/// the same pooled connection: the statement prepared for a missing budget
/// must take a number next time.
async fn a_budget_may_be_missing_in_one_report_and_given_in_the_next(store: &Store) {
    for (i, budget) in [None, Some(12.0), None, Some(200.0)]
        .into_iter()
        .enumerate()
    {
        let mut e = eval(&format!("b{i}"), CELLS[i % CELLS.len()], 50.0 + i as f64);
        e.budget = budget;
        assert_eq!(
            store.record(&[e]).await.expect("record"),
            vec![RecordOutcome::Stored],
            "report {i}"
        );
    }
    let rows = store
        .list_evaluations(&EvaluationFilter::default())
        .await
        .expect("list");
    let budgets: Vec<Option<f64>> = rows.iter().map(|r| r.budget).collect();
    assert_eq!(budgets, vec![None, Some(12.0), None, Some(200.0)]);
}

/// The same on one pooled PostgreSQL connection, so that the statement
/// prepared for a report without a budget is the one the next report with
/// a budget runs through. (With a pool of 16 the test above may hand the
/// two reports to different connections; importing the tables twice hit
/// this once: 22P03, "incorrect binary data format in bind parameter 5".)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_postgres_connection_takes_a_budget_after_a_report_without_one() {
    let database = common::TestDatabase::create().await;
    let store = Store::open_with_pool(Some(&database.url), std::path::Path::new("unused"), 1)
        .await
        .expect("open postgres store");
    a_budget_may_be_missing_in_one_report_and_given_in_the_next(&store).await;
    store.close().await;
    database.drop().await;
}

/// PostgreSQL ending the store's sessions (pg_terminate_backend, as an
/// administrator, a restart or a failover does) is an outage the caller
/// may retry, not an internal error; and the pool reconnects afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_postgres_sessions_are_unavailable_then_recovered() {
    use sqlx::Connection;
    let t = common::TestStore::postgres().await;
    let store = &t.store;
    store
        .record(&[eval("before", "000100", 40.0)])
        .await
        .unwrap();
    let name = t
        .postgres_database()
        .expect("a PostgreSQL store")
        .to_owned();
    let mut admin = sqlx::PgConnection::connect(&common::postgres_admin_url())
        .await
        .expect("admin connection");
    // Keep the pool's connections busy in a query, then end them.
    let busy = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut errors = Vec::new();
            for _ in 0..200 {
                if let Err(e) = store
                    .measured_values(
                        "default",
                        &[("nb201", "000100", "000100")],
                        &["cifar10/val_acc_200ep"],
                    )
                    .await
                {
                    errors.push(e);
                }
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            errors
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    for _ in 0..5 {
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&name)
        .execute(&mut admin)
        .await
        .expect("terminate");
        tokio::time::sleep(std::time::Duration::from_millis(40)).await;
    }
    let errors = busy.await.expect("task");
    println!("{} lookups met the outage", errors.len());
    for e in &errors {
        assert!(e.is_unavailable(), "not an outage: {e}");
    }
    // Afterwards the pool reconnects and nothing was lost.
    store
        .record(&[eval("after", "000100", 41.0)])
        .await
        .unwrap();
    assert_eq!(count(store, &["default"]).await, 2);
    admin.close().await.expect("close");
    t.cleanup().await;
}
