//! The loop from an empty store: a first start serves nothing, workers
//! record evaluations of 200 networks through the API, retraining fires on
//! its own (`--retrain-after`), and the new model ranks the other networks
//! well.

use std::time::Duration;

use nasperf::{
    proto::v1::{
        Candidate, CreateStudyRequest, Evaluation, ListModelsRequest, PredictRequest,
        RecordEvaluationsRequest, models_client::ModelsClient, record_result::Outcome,
        store_client::StoreClient,
    },
    retrain::schedule::Schedule,
};
use tonic::Code;

use crate::helpers::{networks, spawn_app_with};

const OBJECTIVE: &str = "cifar10/val_acc_200ep";
const STUDY: &str = "loop";
const RECORDED: usize = 200;

fn candidate(n: &crate::helpers::Network) -> Candidate {
    Candidate {
        search_space: "nb201".to_owned(),
        arch: n.arch.clone(),
        proxies: n.proxies.iter().map(|(k, v)| (k.clone(), *v)).collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_evaluations_train_a_model_that_ranks_unseen_networks() {
    let nets = tokio::task::spawn_blocking(|| networks(OBJECTIVE))
        .await
        .expect("tables");
    assert_eq!(nets.len(), 9_445, "every canonical network");
    let mut app = spawn_app_with(|c| {
        c.models_dir = None;
        c.schedule = Schedule {
            interval: None,
            after: Some(RECORDED as i64),
            check_every: Duration::from_millis(100),
        };
    })
    .await;

    // A first start holds no models: predictions say so, per objective.
    let ask = |candidates: Vec<Candidate>| PredictRequest {
        candidates,
        dataset: "cifar10".to_owned(),
        objectives: vec![OBJECTIVE.to_owned()],
        study: STUDY.to_owned(),
        ..Default::default()
    };
    let err = app
        .client
        .predict(ask(vec![candidate(&nets[0])]))
        .await
        .expect_err("no model yet");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("objectives[0]"), "{}", err.message());

    // Workers report 200 networks, with the proxies they computed.
    let mut store = StoreClient::new(app.channel.clone());
    store
        .create_study(CreateStudyRequest {
            name: STUDY.to_owned(),
            description: "learning loop test".to_owned(),
        })
        .await
        .expect("create study");
    for (w, chunk) in nets[..RECORDED].chunks(50).enumerate() {
        let evaluations = chunk
            .iter()
            .map(|n| Evaluation {
                study: STUDY.to_owned(),
                search_space: "nb201".to_owned(),
                arch: n.arch.clone(),
                objective: OBJECTIVE.to_owned(),
                value: n.value,
                worker: format!("gpu-{w}"),
                idempotency_key: format!("{STUDY}:{}", n.arch),
                dataset: "cifar10".to_owned(),
                proxies: n.proxies.iter().map(|(k, v)| (k.clone(), *v)).collect(),
                ..Default::default()
            })
            .collect();
        let response = store
            .record_evaluation_batch(RecordEvaluationsRequest { evaluations })
            .await
            .expect("record")
            .into_inner();
        assert!(
            response
                .results
                .iter()
                .all(|r| r.outcome == Outcome::Stored as i32),
            "{response:?}"
        );
    }

    // Retraining fires by itself; the study's own model then serves.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let version = loop {
        match app.client.predict(ask(vec![candidate(&nets[0])])).await {
            Ok(r) => {
                let r = r.into_inner();
                assert_eq!(r.objectives[0].model_study, STUDY);
                break r.objectives[0].model_version.clone();
            }
            Err(e) => assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no model after recording {RECORDED} networks"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let listed = ModelsClient::new(app.channel.clone())
        .list_models(ListModelsRequest {
            study: STUDY.to_owned(),
            objective: OBJECTIVE.to_owned(),
        })
        .await
        .expect("list models")
        .into_inner();
    assert_eq!(listed.models.len(), 1);
    assert_eq!(listed.models[0].version, version);
    assert_eq!(listed.models[0].status, "active");
    assert_eq!(
        listed.models[0].training_rows + listed.models[0].heldout_rows,
        RECORDED as u64
    );
    assert_eq!(listed.last_attempts[0].outcome, "promoted");

    // Every network it never saw, ranked.
    let rest = &nets[RECORDED..];
    let mut predicted = Vec::with_capacity(rest.len());
    for chunk in rest.chunks(2_000) {
        let r = app
            .client
            .predict(ask(chunk.iter().map(candidate).collect()))
            .await
            .expect("predict")
            .into_inner();
        assert_eq!(r.objectives[0].model_version, version);
        predicted.extend(r.predictions.iter().map(|p| p.values[0]));
    }
    let truth: Vec<f64> = rest.iter().map(|n| n.value).collect();
    let tau = nasperf::train::metrics::kendall_tau_b(&predicted, &truth);
    println!(
        "learning loop: {RECORDED} recorded networks, Kendall tau-b {tau:.3} on the other {}",
        rest.len()
    );
    assert!(tau >= 0.6, "Kendall tau-b {tau:.3} on unseen networks");
    app.stop().await;
}
