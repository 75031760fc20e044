//! The `nasperf.v1.Models` service's errors: each names what is wrong.

use nasperf::proto::v1::{
    ActivateModelRequest, ListModelsRequest, RetrainRequest, UnpinModelRequest,
    models_client::ModelsClient,
};
use tonic::Code;

use crate::helpers::spawn_app_with;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_model_operations_get_precise_statuses() {
    let app = spawn_app_with(|c| c.models_dir = None).await;
    let mut models = ModelsClient::new(app.channel.clone());

    let e = models
        .retrain(RetrainRequest {
            objectives: vec![
                "cifar10/val_acc_200ep".to_owned(),
                "cifar10/bogus".to_owned(),
            ],
            ..Default::default()
        })
        .await
        .expect_err("unknown objective");
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("objectives[1]"), "{}", e.message());

    let e = models
        .retrain(RetrainRequest {
            study: "nope".to_owned(),
            ..Default::default()
        })
        .await
        .expect_err("unknown study");
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("nope"), "{}", e.message());

    // Nothing recorded: nothing to do, and that is an answer, not an error.
    let done = models
        .retrain(RetrainRequest::default())
        .await
        .expect("retrain")
        .into_inner();
    assert!(done.results.is_empty());

    let e = models
        .activate_model(ActivateModelRequest {
            objective: "cifar10/val_acc_200ep".to_owned(),
            ..Default::default()
        })
        .await
        .expect_err("no version");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("version"), "{}", e.message());

    let e = models
        .activate_model(ActivateModelRequest {
            objective: "cifar10/val_acc_200ep".to_owned(),
            version: "20990101T000000000Z-deadbeef".to_owned(),
            ..Default::default()
        })
        .await
        .expect_err("unknown version");
    assert_eq!(e.code(), Code::NotFound);
    assert!(
        e.message().contains("20990101T000000000Z-deadbeef"),
        "{}",
        e.message()
    );

    let e = models
        .unpin_model(UnpinModelRequest {
            objective: "cifar10/val_acc_200ep".to_owned(),
            ..Default::default()
        })
        .await
        .expect_err("nothing pinned");
    assert_eq!(e.code(), Code::FailedPrecondition);

    let e = models
        .list_models(ListModelsRequest {
            study: "nope".to_owned(),
            ..Default::default()
        })
        .await
        .expect_err("unknown study");
    assert_eq!(e.code(), Code::NotFound);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_directory_server_does_not_manage_versions() {
    let app = spawn_app_with(|_| {}).await;
    let mut models = ModelsClient::new(app.channel.clone());
    let e = models
        .retrain(RetrainRequest::default())
        .await
        .expect_err("directory mode");
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("--models"), "{}", e.message());
    let e = models
        .activate_model(ActivateModelRequest {
            objective: "cifar10/val_acc_200ep".to_owned(),
            version: "v".to_owned(),
            ..Default::default()
        })
        .await
        .expect_err("directory mode");
    assert_eq!(e.code(), Code::FailedPrecondition);
    app.stop().await;
}
