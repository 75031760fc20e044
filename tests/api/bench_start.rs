//! `serve --bench DIR`: the first start imports the tables into the store
//! and trains before it reports ready; a second start on the same store
//! imports and trains nothing and serves the same versions at once.
//!
//! The directory holds links to part of the real tables (CIFAR-10
//! validation accuracy and proxies), made at test time, so that a debug
//! build imports it in seconds.

use nasperf::{
    proto::v1::{ListModelsRequest, ListObjectivesRequest, models_client::ModelsClient},
    retrain::schedule::Schedule,
    train::TrainConfig,
};

use crate::helpers::{BEST_CELL, benchdata, candidate, request, spawn_app_with};

const TABLES: [&str; 3] = [
    "nb201_arch_index.csv",
    "nas-bench-suite-zero/zccombine_nb201_cifar10_zc_proxies.csv",
    "nb201-groundtruth/zccombine_nb201_cifar10_valid_nets.csv",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_start_imports_and_trains_and_a_second_reuses_it() {
    let bench = tempfile::tempdir().expect("dir");
    for table in TABLES {
        let link = bench.path().join(table);
        std::fs::create_dir_all(link.parent().expect("parent")).expect("mkdir");
        std::os::unix::fs::symlink(benchdata().join(table), &link).expect("link");
    }
    let data = tempfile::tempdir().expect("dir");
    let start = || {
        let (bench, data) = (bench.path().to_owned(), data.path().to_owned());
        spawn_app_with(move |c| {
            c.models_dir = None;
            c.bench = Some(bench);
            c.data_dir = data;
            c.retrain.train = TrainConfig::with_rounds(200);
            c.schedule = Schedule {
                interval: None,
                after: None,
                ..Schedule::default()
            };
        })
    };

    // Ready means trained: the first call is already answered.
    let mut app = start().await;
    let served = app
        .client
        .list_objectives(ListObjectivesRequest::default())
        .await
        .expect("list")
        .into_inner();
    let ids: Vec<&str> = served
        .objectives
        .iter()
        .map(|o| o.objective.as_str())
        .collect();
    assert_eq!(ids, vec!["cifar10/val_acc_200ep"]);
    assert_eq!(served.objectives[0].model_study, "default");
    let version = served.objectives[0].model_version.clone();
    let answer = app
        .client
        .predict(request(
            vec![candidate(BEST_CELL)],
            &["cifar10/val_acc_200ep"],
        ))
        .await
        .expect("predict")
        .into_inner();
    assert_eq!(answer.objectives[0].model_version, version);
    let value = answer.predictions[0].values[0];
    assert!(value > 88.0, "the best cell predicted at {value}");
    let models = ModelsClient::new(app.channel.clone())
        .list_models(ListModelsRequest::default())
        .await
        .expect("models")
        .into_inner();
    assert_eq!(models.models.len(), 1);
    // 9,445 networks, a fifth held out by hash.
    let m = &models.models[0];
    assert_eq!(m.training_rows + m.heldout_rows, 9_445);
    assert!(m.heldout_kendall_tau > 0.8, "{m:?}");
    app.stop().await;

    // Second start: nothing imported or trained again.
    let app = start().await;
    let served = app
        .client
        .clone()
        .list_objectives(ListObjectivesRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert_eq!(served.objectives[0].model_version, version);
    let models = ModelsClient::new(app.channel.clone())
        .list_models(ListModelsRequest::default())
        .await
        .expect("models")
        .into_inner();
    assert_eq!(models.models.len(), 1, "no second version");
    assert_eq!(models.last_attempts[0].outcome, "promoted");
    app.stop().await;
}
