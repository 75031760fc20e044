//! Bearer tokens and roles on a real server: who may call what, tokens
//! rotated without a restart, and no unauthenticated listening beyond
//! loopback unless asked for.

use std::time::Duration;

use nasperf::{
    auth::TokenSources,
    proto::v1::{
        ListModelsRequest, RecordEvaluationsRequest, RetrainRequest, models_client::ModelsClient,
        store_client::StoreClient,
    },
    startup::{Application, ServeConfig},
};
use tonic::{Code, Request};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::helpers::{
    BEST_CELL, best_cell_evaluation, candidate, request, spawn_app, spawn_app_with,
};

const ADMIN: &str = "admin-7f3c2a9e51d84b06";
const RECORD: &str = "record-c41e99b2f0a7d365";
const PREDICT: &str = "predict-0b8d6e2c7a91f453";
const ROTATED: &str = "predict-rotated-5e2f8c1a9d";

fn with_token<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut r = Request::new(message);
    if let Some(t) = token {
        r.metadata_mut().insert(
            "authorization",
            format!("Bearer {t}").parse().expect("ascii metadata"),
        );
    }
    r
}

fn record_request(key: &str) -> RecordEvaluationsRequest {
    RecordEvaluationsRequest {
        evaluations: vec![best_cell_evaluation(key, 91.0)],
    }
}

#[tokio::test]
async fn each_role_may_do_its_calls_and_no_more_and_tokens_rotate_without_a_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("tokens");
    std::fs::write(
        &file,
        format!("# role token\nadmin {ADMIN}\nrecord {RECORD}\npredict {PREDICT}\n"),
    )
    .expect("write tokens");
    let app = {
        let file = file.clone();
        spawn_app_with(move |c| {
            c.tokens = TokenSources {
                file: Some(file),
                inline: None,
            }
        })
        .await
    };
    let mut predictor = app.client.clone();
    let mut store = StoreClient::new(app.channel.clone());
    let mut models = ModelsClient::new(app.channel.clone());
    let predict = || request(vec![candidate(BEST_CELL)], &[]);

    // Probes need no token.
    HealthClient::new(app.channel.clone())
        .check(HealthCheckRequest {
            service: "nasperf.v1.Predictor".to_owned(),
        })
        .await
        .expect("health is open");

    // No token, or a wrong one: UNAUTHENTICATED.
    for token in [None, Some("predict-0b8d6e2c7a91f45X")] {
        let e = predictor
            .predict(with_token(predict(), token))
            .await
            .expect_err("refused");
        assert_eq!(e.code(), Code::Unauthenticated, "{token:?}: {e:?}");
    }

    // predict: reads only.
    predictor
        .predict(with_token(predict(), Some(PREDICT)))
        .await
        .expect("predict with the predict role");
    models
        .list_models(with_token(ListModelsRequest::default(), Some(PREDICT)))
        .await
        .expect("listing models is a read");
    let e = store
        .record_evaluation_batch(with_token(record_request("a-1"), Some(PREDICT)))
        .await
        .expect_err("predict cannot record");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("record"), "{}", e.message());

    // record: also reports evaluations, not retraining.
    let r = store
        .record_evaluation_batch(with_token(record_request("a-1"), Some(RECORD)))
        .await
        .expect("record with the record role")
        .into_inner();
    assert_eq!(r.stored, 1);
    let retrain = || RetrainRequest::default();
    let e = models
        .retrain(with_token(retrain(), Some(RECORD)))
        .await
        .expect_err("record cannot retrain");
    assert_eq!(e.code(), Code::PermissionDenied);

    // admin: past the gate (this server serves a model directory, so the
    // service itself then says retraining is not available here).
    let e = models.retrain(with_token(retrain(), Some(ADMIN))).await;
    if let Err(e) = e {
        assert!(
            ![Code::Unauthenticated, Code::PermissionDenied].contains(&e.code()),
            "{e:?}"
        );
    }

    // The command-line client passes its token.
    let server = format!("http://{}", app.channel_addr());
    let cli = |token: Option<&'static str>| {
        let server = server.clone();
        tokio::task::spawn_blocking(move || {
            let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_nasperf"));
            command
                .args(["predict", "--server", &server, "--arch", BEST_CELL])
                .env_remove("NASPERF_TOKEN");
            if let Some(t) = token {
                command.args(["--token", t]);
            }
            command.output().expect("run nasperf predict")
        })
    };
    let with = cli(Some(PREDICT)).await.expect("cli");
    assert!(
        with.status.success(),
        "{}",
        String::from_utf8_lossy(&with.stderr)
    );
    let without = cli(None).await.expect("cli");
    assert!(!without.status.success());
    assert!(
        String::from_utf8_lossy(&without.stderr).contains("Unauthenticated"),
        "{}",
        String::from_utf8_lossy(&without.stderr)
    );

    // Rotation: the file changes, the old predict token stops working and
    // the new one works, without a restart.
    std::fs::write(
        &file,
        format!("admin {ADMIN}\nrecord {RECORD}\npredict {ROTATED}\n"),
    )
    .expect("rotate");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let old = predictor
            .predict(with_token(predict(), Some(PREDICT)))
            .await;
        let new = predictor
            .predict(with_token(predict(), Some(ROTATED)))
            .await;
        if old
            .as_ref()
            .is_err_and(|e| e.code() == Code::Unauthenticated)
            && new.is_ok()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "tokens never rotated"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A broken file keeps the tokens in force.
    std::fs::write(&file, "admin\n").expect("break");
    tokio::time::sleep(Duration::from_secs(3)).await;
    predictor
        .predict(with_token(predict(), Some(ROTATED)))
        .await
        .expect("the last good tokens still hold");
    app.stop().await;
}

#[tokio::test]
async fn beyond_loopback_it_needs_tokens_or_an_explicit_choice() {
    let dir = tempfile::tempdir().expect("dir");
    let mut config = ServeConfig::new("0.0.0.0:0".parse().expect("addr"), dir.path());
    config.data_dir = dir.path().join("data");
    let refused = Application::build(config.clone())
        .await
        .err()
        .expect("no tokens on 0.0.0.0 is refused");
    assert!(
        refused.to_string().contains("--allow-unauthenticated"),
        "{refused}"
    );

    let mut allowed = config.clone();
    allowed.allow_unauthenticated = true;
    Application::build(allowed)
        .await
        .expect("explicitly allowed");

    let mut with_tokens = config.clone();
    with_tokens.tokens = TokenSources {
        file: None,
        inline: Some(format!("admin:{ADMIN}")),
    };
    Application::build(with_tokens).await.expect("tokens given");

    // Tokens that cannot be read stop the start, naming the line but not
    // the token.
    let mut bad = config;
    bad.tokens = TokenSources {
        file: None,
        inline: Some("admin:tooshort".to_owned()),
    };
    let e = Application::build(bad).await.err().expect("a short token");
    let text = format!("{e:#}");
    assert!(text.contains("at least 16"), "{text}");
    assert!(!text.contains("tooshort"), "{text}");
}

/// Health checks of a server started with --allow-unauthenticated beyond
/// loopback carry the warning; a loopback server's do not.
#[tokio::test]
async fn an_unauthenticated_server_says_so_in_every_health_check() {
    let check = |channel: tonic::transport::Channel| async move {
        HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .expect("health is open")
            .metadata()
            .get(nasperf::auth::WARNING_HEADER)
            .map(|v| v.to_str().expect("ascii").to_owned())
    };
    let open = spawn_app_with(|config| {
        config.listen = "0.0.0.0:0".parse().expect("addr");
        config.allow_unauthenticated = true;
    })
    .await;
    let warning = check(open.channel.clone()).await.expect("a warning header");
    assert!(warning.contains("WITHOUT authentication"), "{warning}");
    assert!(warning.contains("0.0.0.0"), "{warning}");
    open.stop().await;

    let loopback = spawn_app().await;
    assert_eq!(check(loopback.channel.clone()).await, None);
    loopback.stop().await;
}
