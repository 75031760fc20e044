//! A catalogue of malformed and abusive requests, each with the status it
//! must get. Afterwards the server is healthy and answers as before, and
//! no stored row changed except the one valid row the catalogue records.

use nasperf::proto::v1::{
    ActivateModelRequest, CreateStudyRequest, Direction, Evaluation, GetStudyRequest,
    ListEvaluationsRequest, ParetoRankRequest, PredictRequest, RankedObjective,
    RecordEvaluationsRequest, RetrainRequest, models_client::ModelsClient,
    store_client::StoreClient,
};
use tonic::{Code, Request, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::helpers::{BEST_CELL, OBJECTIVES, best_cell_evaluation, candidate, request, spawn_app};

const NB201_ARCH: &str = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|";

fn with_arch(arch: &str) -> PredictRequest {
    request(vec![candidate(arch)], &[OBJECTIVES[0]])
}

fn with_proxy(name: &str, value: f64) -> PredictRequest {
    let mut c = candidate(BEST_CELL);
    c.proxies.insert(name.to_owned(), value);
    PredictRequest {
        candidates: vec![c],
        dataset: "cifar10".to_owned(),
        objectives: vec![OBJECTIVES[0].to_owned()],
        ..Default::default()
    }
}

fn evaluation(key: &str) -> Evaluation {
    best_cell_evaluation(key, 91.0)
}

fn rank(objectives: Vec<RankedObjective>, reference: Vec<f64>) -> ParetoRankRequest {
    ParetoRankRequest {
        candidates: vec![candidate(BEST_CELL), candidate("000100")],
        objectives,
        reference_point: reference,
        ..Default::default()
    }
}

fn ranked(objective: &str, direction: Direction) -> RankedObjective {
    RankedObjective {
        objective: objective.to_owned(),
        direction: direction as i32,
    }
}

/// What a case does; each returns the status (OK for success).
enum Case {
    Predict(PredictRequest),
    PredictWithDeadline(PredictRequest, &'static str),
    Rank(ParetoRankRequest),
    /// Expected status of the call, and of each row when it succeeds.
    Record(RecordEvaluationsRequest),
    CreateStudy(String),
    GetStudy(String),
    List(ListEvaluationsRequest),
    Activate(ActivateModelRequest),
    Retrain(RetrainRequest),
}

async fn run(channel: &Channel, case: Case) -> (Code, String, Vec<i32>) {
    let result: Result<Vec<i32>, tonic::Status> = match case {
        Case::Predict(r) => {
            nasperf::proto::v1::predictor_client::PredictorClient::new(channel.clone())
                .max_encoding_message_size(64 << 20)
                .predict(r)
                .await
                .map(|_| vec![])
        }
        Case::PredictWithDeadline(r, timeout) => {
            let mut req = Request::new(r);
            req.metadata_mut()
                .insert("grpc-timeout", timeout.parse().expect("ascii"));
            nasperf::proto::v1::predictor_client::PredictorClient::new(channel.clone())
                .predict(req)
                .await
                .map(|_| vec![])
        }
        Case::Rank(r) => {
            nasperf::proto::v1::predictor_client::PredictorClient::new(channel.clone())
                .pareto_rank(r)
                .await
                .map(|_| vec![])
        }
        Case::Record(r) => StoreClient::new(channel.clone())
            .max_encoding_message_size(64 << 20)
            .record_evaluation_batch(r)
            .await
            .map(|r| r.into_inner().results.iter().map(|x| x.outcome).collect()),
        Case::CreateStudy(name) => StoreClient::new(channel.clone())
            .create_study(CreateStudyRequest {
                name,
                description: String::new(),
            })
            .await
            .map(|_| vec![]),
        Case::GetStudy(name) => StoreClient::new(channel.clone())
            .get_study(GetStudyRequest { name })
            .await
            .map(|_| vec![]),
        Case::List(r) => StoreClient::new(channel.clone())
            .list_evaluations(r)
            .await
            .map(|_| vec![]),
        Case::Activate(r) => ModelsClient::new(channel.clone())
            .activate_model(r)
            .await
            .map(|_| vec![]),
        Case::Retrain(r) => ModelsClient::new(channel.clone())
            .retrain(r)
            .await
            .map(|_| vec![]),
    };
    match result {
        Ok(outcomes) => (Code::Ok, String::new(), outcomes),
        Err(s) => (s.code(), s.message().to_owned(), vec![]),
    }
}

async fn stored_rows(channel: &Channel) -> Vec<(String, f64)> {
    let r = StoreClient::new(channel.clone())
        .list_evaluations(ListEvaluationsRequest {
            page_size: 10_000,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    r.evaluations
        .into_iter()
        .map(|e| (e.idempotency_key, e.value))
        .collect()
}

#[tokio::test]
async fn the_hostile_input_catalogue() {
    let app = spawn_app().await;
    let channel = app.channel.clone();
    // One valid row first, so "no row changed" has something to guard.
    let (code, message, _) = run(
        &channel,
        Case::Record(RecordEvaluationsRequest {
            evaluations: vec![evaluation("the-valid-row")],
        }),
    )
    .await;
    assert_eq!(code, Code::Ok, "{message}");
    let before = stored_rows(&channel).await;

    let huge = "x".repeat(1 << 20);
    let mut too_many = request(vec![candidate(BEST_CELL); 10_001], &[OBJECTIVES[0]]);
    too_many.request_id = "too-many".to_owned();
    let mut oversized = with_arch(BEST_CELL);
    oversized.request_id = "y".repeat(20 << 20);
    let mut huge_space = with_arch(BEST_CELL);
    huge_space.candidates[0].search_space = huge.clone();
    let mut unknown_dataset = with_proxy("synflow", 1.0);
    unknown_dataset.dataset = "mnist".to_owned();
    let mut empty_objective = with_arch(BEST_CELL);
    empty_objective.objectives = vec![String::new()];
    let mut unknown_objective = with_arch(BEST_CELL);
    unknown_objective.objectives = vec!["cifar10/no_such_metric".to_owned()];
    let mut absurd_study = with_arch(BEST_CELL);
    absurd_study.study = "../../etc/passwd".to_owned();
    let mut unknown_study = with_arch(BEST_CELL);
    unknown_study.study = "no-such-study".to_owned();
    let mut null_study = with_arch(BEST_CELL);
    null_study.study = "a\u{0}b".to_owned();

    let rejected_row = |f: &dyn Fn(&mut Evaluation)| {
        let mut e = evaluation("hostile-row");
        f(&mut e);
        Case::Record(RecordEvaluationsRequest {
            evaluations: vec![e],
        })
    };
    let catalogue: Vec<(&str, Case, Code)> = vec![
        (
            "no candidates",
            Case::Predict(request(vec![], &[OBJECTIVES[0]])),
            Code::InvalidArgument,
        ),
        (
            "empty arch",
            Case::Predict(with_arch("")),
            Code::InvalidArgument,
        ),
        (
            "one word",
            Case::Predict(with_arch("x")),
            Code::InvalidArgument,
        ),
        (
            "seven op codes",
            Case::Predict(with_arch("0123401")),
            Code::InvalidArgument,
        ),
        (
            "five op codes",
            Case::Predict(with_arch("01234")),
            Code::InvalidArgument,
        ),
        (
            "op code 9",
            Case::Predict(with_arch("000009")),
            Code::InvalidArgument,
        ),
        (
            "a megabyte arch",
            Case::Predict(with_arch(&huge)),
            Code::InvalidArgument,
        ),
        (
            "NUL in arch",
            Case::Predict(with_arch("00\u{0}001")),
            Code::InvalidArgument,
        ),
        (
            "unicode arch",
            Case::Predict(with_arch("ΩΩΩΩΩΩ")),
            Code::InvalidArgument,
        ),
        (
            "unknown op",
            Case::Predict(with_arch(&NB201_ARCH.replace("skip_connect", "conv_9x9"))),
            Code::InvalidArgument,
        ),
        (
            "one node",
            Case::Predict(with_arch("|nor_conv_3x3~0|")),
            Code::InvalidArgument,
        ),
        (
            "wrong input node",
            Case::Predict(with_arch(&NB201_ARCH.replace("~2|", "~7|"))),
            Code::InvalidArgument,
        ),
        (
            "four nodes",
            Case::Predict(with_arch(&format!("{NB201_ARCH}+|none~0|"))),
            Code::InvalidArgument,
        ),
        (
            "negative op code",
            Case::Predict(with_arch("-00001")),
            Code::InvalidArgument,
        ),
        (
            "unknown search space",
            Case::Predict({
                let mut r = with_arch(BEST_CELL);
                r.candidates[0].search_space = "nb999".to_owned();
                r
            }),
            Code::NotFound,
        ),
        (
            "a megabyte search space (echoed, bounded)",
            Case::Predict(huge_space),
            Code::NotFound,
        ),
        (
            "unknown objective",
            Case::Predict(unknown_objective),
            Code::NotFound,
        ),
        (
            "empty objective",
            Case::Predict(empty_objective),
            Code::NotFound,
        ),
        (
            "NaN proxy",
            Case::Predict(with_proxy("synflow", f64::NAN)),
            Code::InvalidArgument,
        ),
        (
            "+inf proxy",
            Case::Predict(with_proxy("synflow", f64::INFINITY)),
            Code::InvalidArgument,
        ),
        (
            "-inf proxy",
            Case::Predict(with_proxy("synflow", f64::NEG_INFINITY)),
            Code::InvalidArgument,
        ),
        (
            "unknown proxy",
            Case::Predict(with_proxy("telepathy", 1.0)),
            Code::InvalidArgument,
        ),
        (
            "empty proxy name",
            Case::Predict(with_proxy("", 1.0)),
            Code::InvalidArgument,
        ),
        (
            "unknown dataset",
            Case::Predict(unknown_dataset),
            Code::NotFound,
        ),
        ("absurd study", Case::Predict(absurd_study), Code::NotFound),
        ("NUL in study", Case::Predict(null_study), Code::NotFound),
        (
            "unknown study",
            Case::Predict(unknown_study),
            Code::NotFound,
        ),
        (
            "10,001 candidates",
            Case::Predict(too_many),
            Code::InvalidArgument,
        ),
        ("20 MB message", Case::Predict(oversized), Code::OutOfRange),
        (
            "100 duplicate candidates",
            Case::Predict(request(vec![candidate(BEST_CELL); 100], &[OBJECTIVES[0]])),
            Code::Ok,
        ),
        // tonic's client enforces the deadline it sends and reports
        // CANCELLED itself; what the server answers (DEADLINE_EXCEEDED) is
        // tested in src/shedding.rs. Here: the server survives both.
        (
            "a 5 ms deadline for a long call",
            Case::PredictWithDeadline(request(vec![candidate(BEST_CELL); 10_000], &[]), "5m"),
            Code::Cancelled,
        ),
        (
            "a deadline that has passed on arrival",
            Case::PredictWithDeadline(request(vec![candidate(BEST_CELL); 10_000], &[]), "1000u"),
            Code::Cancelled,
        ),
        (
            "rank: no objectives",
            Case::Rank(rank(vec![], vec![])),
            Code::InvalidArgument,
        ),
        (
            "rank: direction unspecified",
            Case::Rank(rank(
                vec![ranked(OBJECTIVES[0], Direction::Unspecified)],
                vec![],
            )),
            Code::InvalidArgument,
        ),
        (
            "rank: reference of the wrong length",
            Case::Rank(rank(
                vec![ranked(OBJECTIVES[0], Direction::Maximize)],
                vec![1.0, 2.0],
            )),
            Code::InvalidArgument,
        ),
        (
            "rank: NaN reference",
            Case::Rank(rank(
                vec![ranked(OBJECTIVES[0], Direction::Maximize)],
                vec![f64::NAN],
            )),
            Code::InvalidArgument,
        ),
        (
            "rank: the same objective twice",
            Case::Rank(rank(
                vec![
                    ranked(OBJECTIVES[0], Direction::Maximize),
                    ranked(OBJECTIVES[0], Direction::Minimize),
                ],
                vec![],
            )),
            Code::InvalidArgument,
        ),
        (
            "rank: one objective",
            Case::Rank(rank(
                vec![ranked(OBJECTIVES[0], Direction::Maximize)],
                vec![],
            )),
            Code::InvalidArgument,
        ),
        (
            "rank: unknown objective",
            Case::Rank(rank(
                vec![
                    ranked(OBJECTIVES[0], Direction::Maximize),
                    ranked("x/y", Direction::Maximize),
                ],
                vec![],
            )),
            Code::NotFound,
        ),
        (
            "record: no rows",
            Case::Record(RecordEvaluationsRequest {
                evaluations: vec![],
            }),
            Code::InvalidArgument,
        ),
        (
            "record: 20 MB message",
            Case::Record(RecordEvaluationsRequest {
                evaluations: vec![{
                    let mut e = evaluation("big");
                    e.worker = "w".repeat(20 << 20);
                    e
                }],
            }),
            Code::OutOfRange,
        ),
        (
            "record: NaN value",
            rejected_row(&|e| e.value = f64::NAN),
            Code::Ok,
        ),
        (
            "record: infinite value",
            rejected_row(&|e| e.value = f64::INFINITY),
            Code::Ok,
        ),
        (
            "record: unknown objective",
            rejected_row(&|e| e.objective = "nope".to_owned()),
            Code::Ok,
        ),
        (
            "record: bad arch",
            rejected_row(&|e| e.arch = "999999".to_owned()),
            Code::Ok,
        ),
        (
            "record: empty idempotency key",
            rejected_row(&|e| e.idempotency_key.clear()),
            Code::Ok,
        ),
        (
            "record: megabyte idempotency key",
            rejected_row(&|e| e.idempotency_key = huge.clone()),
            Code::Ok,
        ),
        (
            "record: negative budget",
            rejected_row(&|e| e.budget = Some(-1.0)),
            Code::Ok,
        ),
        (
            "record: NaN budget",
            rejected_row(&|e| e.budget = Some(f64::NAN)),
            Code::Ok,
        ),
        (
            "record: absurd study",
            rejected_row(&|e| e.study = "../../x".to_owned()),
            Code::Ok,
        ),
        (
            "record: unknown study",
            rejected_row(&|e| e.study = "never-created".to_owned()),
            Code::Ok,
        ),
        (
            "record: NaN proxy",
            rejected_row(&|e| {
                e.dataset = "cifar10".to_owned();
                e.proxies.insert("synflow".to_owned(), f64::NAN);
            }),
            Code::Ok,
        ),
        (
            "record: megabyte worker",
            rejected_row(&|e| e.worker = huge.clone()),
            Code::Ok,
        ),
        (
            "record: a key reused for another value",
            rejected_row(&|e| {
                e.idempotency_key = "the-valid-row".to_owned();
                e.value = 1.0;
            }),
            Code::Ok,
        ),
        (
            "create study: empty name",
            Case::CreateStudy(String::new()),
            Code::InvalidArgument,
        ),
        (
            "create study: absurd name",
            Case::CreateStudy("a/b\u{0}c".to_owned()),
            Code::InvalidArgument,
        ),
        (
            "create study: megabyte name (echoed, bounded)",
            Case::CreateStudy(huge.clone()),
            Code::InvalidArgument,
        ),
        (
            "get study: unknown",
            Case::GetStudy("nobody".to_owned()),
            Code::NotFound,
        ),
        (
            "list: garbage page token",
            Case::List(ListEvaluationsRequest {
                page_token: "%%%garbage".to_owned(),
                ..Default::default()
            }),
            Code::InvalidArgument,
        ),
        (
            "list: page size over the limit",
            Case::List(ListEvaluationsRequest {
                page_size: 1_000_000,
                ..Default::default()
            }),
            Code::InvalidArgument,
        ),
        (
            "list: bad arch filter",
            Case::List(ListEvaluationsRequest {
                arch: "x".to_owned(),
                search_space: "nb201".to_owned(),
                ..Default::default()
            }),
            Code::InvalidArgument,
        ),
        (
            "activate: unknown version",
            Case::Activate(ActivateModelRequest {
                study: String::new(),
                objective: OBJECTIVES[0].to_owned(),
                version: "v-none".to_owned(),
            }),
            Code::FailedPrecondition,
        ),
        (
            "retrain: unknown objective",
            Case::Retrain(RetrainRequest {
                objectives: vec!["x/y".to_owned()],
                ..Default::default()
            }),
            Code::FailedPrecondition,
        ),
    ];
    assert!(catalogue.len() >= 50, "{} cases", catalogue.len());
    let mut wrong = Vec::new();
    for (name, case, expected) in catalogue {
        let (code, message, outcomes) = run(&channel, case).await;
        let row_rejected = name.starts_with("record: ") && expected == Code::Ok;
        let ok = code == expected
            && (!row_rejected
                || outcomes == vec![nasperf::proto::v1::record_result::Outcome::Rejected as i32]);
        println!(
            "{name}: {code:?} {outcomes:?} {}",
            message.chars().take(120).collect::<String>()
        );
        if !ok {
            wrong.push(format!(
                "{name}: expected {expected:?}, got {code:?} {outcomes:?}: {message:.200}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // Still healthy, still answering, and the store unchanged.
    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "nasperf.v1.Predictor".to_owned(),
        })
        .await
        .expect("health")
        .into_inner();
    assert_eq!(health.status, ServingStatus::Serving as i32);
    let (code, message, _) = run(&channel, Case::Predict(with_arch(BEST_CELL))).await;
    assert_eq!(code, Code::Ok, "{message}");
    assert_eq!(stored_rows(&channel).await, before, "no stored row changed");
    app.stop().await;
}
