//! Models are swapped while clients keep calling: no call fails, every
//! response comes from one consistent model, and each new version is seen.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use nasperf::{
    model::{Forest, sha256_hex},
    proto::v1::ListObjectivesRequest,
    space::{SearchSpace, nb201::Nb201},
    train::{TrainedModel, write_atomic, write_model},
};

use crate::helpers::{
    BEST_CELL, alternative_val_acc_model, candidate, fixture_models, manifest_path_of, request,
    spawn_app, spawn_app_with,
};

const OBJECTIVE: &str = "cifar10/val_acc_200ep";

fn predict_locally(model: &TrainedModel) -> f64 {
    let space = Nb201::new();
    let forest = Forest::parse(&model.model_text).unwrap();
    let map =
        nasperf::features::FeatureMap::resolve(&space, &model.manifest.feature_names).unwrap();
    let mut row = Vec::new();
    map.push_row(&space.parse(BEST_CELL).unwrap().features, None, &mut row);
    forest.predict(&row)
}

async fn served_version(app: &mut crate::helpers::TestApp) -> (String, String) {
    let list = app
        .client
        .list_objectives(ListObjectivesRequest::default())
        .await
        .unwrap()
        .into_inner();
    let info = list
        .objectives
        .into_iter()
        .find(|o| o.objective == OBJECTIVE)
        .unwrap();
    (info.model_version, info.load_error)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_swaps_under_load_drop_no_call() {
    let mut app = spawn_app().await;
    let a = fixture_models()
        .iter()
        .find(|m| m.manifest.objective == OBJECTIVE)
        .unwrap()
        .clone();
    let b = tokio::task::spawn_blocking(alternative_val_acc_model)
        .await
        .unwrap()
        .clone();
    let (value_a, value_b) = (predict_locally(&a), predict_locally(&b));
    assert_ne!(value_a, value_b, "the two versions must be distinguishable");

    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let mut client = app.client.clone();
        let (stop, calls) = (Arc::clone(&stop), Arc::clone(&calls));
        workers.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match client
                    .predict(request(vec![candidate(BEST_CELL)], &[OBJECTIVE]))
                    .await
                {
                    Ok(r) => {
                        let r = r.into_inner();
                        let version = &r.objectives[0].model_version;
                        let value = r.predictions[0].values[0];
                        // The value must come from the model the version names.
                        let expected = if version.starts_with("swap-") {
                            let i: usize = version.trim_start_matches("swap-").parse().unwrap();
                            if i.is_multiple_of(2) {
                                value_b
                            } else {
                                value_a
                            }
                        } else {
                            value_a
                        };
                        if value != expected {
                            failures.push(format!(
                                "version {version} answered {value}, expected {expected}"
                            ));
                        }
                    }
                    Err(status) => {
                        failures.push(format!("{:?}: {}", status.code(), status.message()))
                    }
                }
                calls.fetch_add(1, Ordering::Relaxed);
            }
            failures
        }));
    }

    for i in 0..50usize {
        // Even swaps serve model B, odd swaps model A, each under a new version.
        let mut next = if i.is_multiple_of(2) {
            b.clone()
        } else {
            a.clone()
        };
        next.manifest.version = format!("swap-{i}");
        write_model(app.models_path(), &next).unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (version, error) = served_version(&mut app).await;
            assert!(error.is_empty(), "swap {i} refused: {error}");
            if version == next.manifest.version {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "swap {i} not seen; serving {version}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Let the callers run against this version for a moment.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for w in workers {
        failures.extend(w.await.unwrap());
    }
    let calls = calls.load(Ordering::Relaxed);
    assert!(calls >= 100, "the callers kept calling ({calls} calls)");
    assert!(
        failures.is_empty(),
        "{} of {calls} calls failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    app.stop().await;
}

#[tokio::test]
async fn a_broken_model_is_refused_and_the_old_one_keeps_serving() {
    let mut app = spawn_app().await;
    let (good_version, _) = served_version(&mut app).await;
    let manifest_path = manifest_path_of(app.models_path(), OBJECTIVE);
    let good = fixture_models()
        .iter()
        .find(|m| m.manifest.objective == OBJECTIVE)
        .unwrap()
        .clone();

    let broken_cases: Vec<(&str, TrainedModel)> = vec![
        ("truncated model text", {
            let mut m = good.clone();
            m.model_text.truncate(m.model_text.len() / 2);
            m.manifest.model_sha256 = sha256_hex(m.model_text.as_bytes());
            m.manifest.model_file = m.manifest.content_addressed_file_name();
            m.manifest.version = "broken-truncated".to_owned();
            m
        }),
        ("hash mismatch", {
            let mut m = good.clone();
            m.manifest.model_sha256 = "0".repeat(64);
            m.manifest.version = "broken-hash".to_owned();
            m
        }),
        ("features differ from the model", {
            let mut m = good.clone();
            m.manifest.feature_names.reverse();
            m.manifest.version = "broken-features".to_owned();
            m
        }),
    ];
    for (what, broken) in broken_cases {
        write_model(app.models_path(), &broken).unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let error = loop {
            let (version, error) = served_version(&mut app).await;
            assert_eq!(
                version, good_version,
                "{what}: the old version keeps serving"
            );
            if !error.is_empty() {
                break error;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: never refused"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert!(error.contains("broken-"), "{what}: {error}");
        let r = app
            .client
            .predict(request(vec![candidate(BEST_CELL)], &[OBJECTIVE]))
            .await
            .expect("still serving");
        assert_eq!(r.into_inner().objectives[0].model_version, good_version);
        // Restore, and wait until the error clears.
        write_model(app.models_path(), &good).unwrap();
        loop {
            let (_, error) = served_version(&mut app).await;
            if error.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    // A manifest that is not JSON at all.
    write_atomic(&manifest_path, b"{ not json").unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (version, error) = served_version(&mut app).await;
        assert_eq!(version, good_version);
        if error.contains("invalid manifest") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "invalid manifest never reported: {error:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn objectives_come_and_go_with_their_files() {
    let mut app = spawn_app().await;
    let objective = "cifar10/pgd_eps1";
    let manifest = manifest_path_of(app.models_path(), objective);
    let listed = |list: nasperf::proto::v1::ListObjectivesResponse| {
        list.objectives.iter().any(|o| o.objective == objective)
    };
    let client = app.client.clone();
    let wait_until = |want: bool| {
        let mut client = client.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                let list = client
                    .list_objectives(ListObjectivesRequest::default())
                    .await
                    .unwrap()
                    .into_inner();
                if listed(list) == want {
                    return;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "never became listed={want}"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    std::fs::remove_file(&manifest).unwrap();
    wait_until(false).await;
    let status = app
        .client
        .predict(request(vec![candidate(BEST_CELL)], &[objective]))
        .await
        .expect_err("no model any more");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);

    let model = fixture_models()
        .iter()
        .find(|m| m.manifest.objective == objective)
        .unwrap();
    write_model(app.models_path(), model).unwrap();
    wait_until(true).await;
    app.client
        .predict(request(vec![candidate(BEST_CELL)], &[objective]))
        .await
        .expect("served again");
    app.stop().await;
}

#[tokio::test]
async fn models_that_arrive_after_start_are_served() {
    // The model directory does not exist yet (a volume still being filled).
    let mut app =
        spawn_app_with(|c| c.models_dir = c.models_dir.as_ref().map(|d| d.join("not-yet"))).await;
    let status = app
        .client
        .predict(request(vec![candidate(BEST_CELL)], &[OBJECTIVE]))
        .await
        .expect_err("no models yet");
    assert_eq!(
        status.code(),
        tonic::Code::FailedPrecondition,
        "{}",
        status.message()
    );

    let model = fixture_models()
        .iter()
        .find(|m| m.manifest.objective == OBJECTIVE)
        .unwrap();
    write_model(&app.models_path().join("not-yet"), model).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match app
            .client
            .predict(request(vec![candidate(BEST_CELL)], &[OBJECTIVE]))
            .await
        {
            Ok(r) => {
                assert_eq!(
                    r.into_inner().objectives[0].model_version,
                    model.manifest.version
                );
                break;
            }
            Err(_) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the models were never loaded"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    app.stop().await;
}
