//! Every kind of bad input gets a precise status naming the field and the
//! candidate index, and the server keeps serving.

use nasperf::proto::v1::PredictRequest;
use tonic::Code;

use crate::helpers::{BEST_CELL, candidate, request, spawn_app, spawn_app_with};

fn good() -> nasperf::proto::v1::Candidate {
    candidate(BEST_CELL)
}

async fn expect_status(
    client: &mut nasperf::proto::v1::predictor_client::PredictorClient<tonic::transport::Channel>,
    req: PredictRequest,
    code: Code,
    needles: &[&str],
) {
    let status = client
        .predict(req)
        .await
        .expect_err("the request must fail");
    assert_eq!(status.code(), code, "{}", status.message());
    for needle in needles {
        assert!(
            status.message().contains(needle),
            "{:?} lacks {needle:?}",
            status.message()
        );
    }
}

#[tokio::test]
async fn bad_input_gets_a_precise_status() {
    let mut app = spawn_app().await;
    let c = &mut app.client;
    let acc = ["cifar10/val_acc_200ep"];

    let mut space = good();
    space.search_space = "darts".to_owned();
    expect_status(
        c,
        request(vec![good(), space], &acc),
        Code::NotFound,
        &["candidates[1].search_space", "darts", "nb201"],
    )
    .await;

    let mut op = good();
    op.arch = BEST_CELL.replace("skip_connect", "conv_5x5");
    expect_status(
        c,
        request(vec![op], &acc),
        Code::InvalidArgument,
        &["candidates[0].arch", "unknown op \"conv_5x5\""],
    )
    .await;

    let mut malformed = good();
    malformed.arch = "nor_conv_3x3".to_owned();
    expect_status(
        c,
        request(vec![good(), good(), malformed], &acc),
        Code::InvalidArgument,
        &["candidates[2].arch"],
    )
    .await;

    let mut edges = good();
    edges.arch = "|nor_conv_3x3~0|+|none~0|+|none~0|none~1|none~2|".to_owned();
    expect_status(
        c,
        request(vec![edges], &acc),
        Code::InvalidArgument,
        &["candidates[0].arch", "node 2 must have 2 incoming edges"],
    )
    .await;

    let mut codes = good();
    codes.arch = "3333".to_owned();
    expect_status(
        c,
        request(vec![codes], &acc),
        Code::InvalidArgument,
        &["candidates[0].arch", "6 op codes"],
    )
    .await;

    let mut nan = good();
    nan.proxies.insert("synflow".to_owned(), f64::NAN);
    let mut req = request(vec![good(), good(), nan], &acc);
    req.dataset = "cifar10".to_owned();
    expect_status(
        c,
        req,
        Code::InvalidArgument,
        &["candidates[2].proxies[\"synflow\"]", "not a finite number"],
    )
    .await;

    let mut inf = good();
    inf.proxies.insert("snip".to_owned(), f64::INFINITY);
    let mut req = request(vec![inf], &acc);
    req.dataset = "cifar10".to_owned();
    expect_status(
        c,
        req,
        Code::InvalidArgument,
        &["candidates[0].proxies[\"snip\"]"],
    )
    .await;

    let mut unknown_proxy = good();
    unknown_proxy.proxies.insert("magic".to_owned(), 1.0);
    let mut req = request(vec![unknown_proxy], &acc);
    req.dataset = "cifar10".to_owned();
    expect_status(
        c,
        req,
        Code::InvalidArgument,
        &["candidates[0].proxies", "unknown proxy \"magic\""],
    )
    .await;

    let mut no_dataset = good();
    no_dataset.proxies.insert("synflow".to_owned(), 1.0);
    expect_status(
        c,
        request(vec![no_dataset], &acc),
        Code::InvalidArgument,
        &["candidates[0].proxies", "dataset"],
    )
    .await;

    let mut req = request(vec![good()], &acc);
    req.dataset = "mnist".to_owned();
    expect_status(c, req, Code::NotFound, &["dataset", "mnist"]).await;

    expect_status(
        c,
        request(vec![good()], &["cifar10/val_acc_200ep", "cifar10/bogus"]),
        Code::NotFound,
        &["objectives[1]", "cifar10/bogus"],
    )
    .await;
    expect_status(
        c,
        request(
            vec![good()],
            &["cifar10/val_acc_200ep", "cifar10/val_acc_200ep"],
        ),
        Code::InvalidArgument,
        &["objectives[1]", "twice"],
    )
    .await;
    // Known objective, but no model in this directory.
    expect_status(
        c,
        request(vec![good()], &["cifar10/fgsm_eps8"]),
        Code::FailedPrecondition,
        &["objectives[0]", "cifar10/fgsm_eps8"],
    )
    .await;

    expect_status(
        c,
        request(vec![], &acc),
        Code::InvalidArgument,
        &["candidates", "empty"],
    )
    .await;
    expect_status(
        c,
        request(vec![good(); 10_001], &acc),
        Code::InvalidArgument,
        &["10001 candidates exceed the limit of 10000"],
    )
    .await;

    // After all that, it still serves.
    c.predict(request(vec![good()], &acc))
        .await
        .expect("still serving");
    app.stop().await;
}

#[tokio::test]
async fn oversized_responses_are_refused_with_advice() {
    // A limit small enough to reach with a modest batch.
    let mut app = spawn_app_with(|config| config.limits.max_response_bytes = 20_000).await;
    let status = app
        .client
        .predict(request(vec![good(); 1_000], &[]))
        .await
        .expect_err("too large");
    assert_eq!(status.code(), Code::InvalidArgument);
    for needle in [
        "1000 candidates x 4 objectives",
        "split the batch",
        "PredictStream",
    ] {
        assert!(status.message().contains(needle), "{}", status.message());
    }
    // The advised size works.
    let advised: usize = status
        .message()
        .split("at most ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("the message names a batch size");
    assert!(advised > 0);
    app.client
        .predict(request(vec![good(); advised], &[]))
        .await
        .expect("advised batch size fits");
    app.stop().await;
}

#[tokio::test]
async fn default_limits_keep_the_largest_batch_under_the_client_limit() {
    // 10,000 candidates with every served objective: accepted, and the
    // response decodes within the client's default 4 MiB limit.
    let mut app = spawn_app().await;
    let r = app
        .client
        .predict(request(vec![good(); 10_000], &[]))
        .await
        .expect("fits");
    assert_eq!(r.into_inner().predictions.len(), 10_000);
    app.stop().await;
}

#[tokio::test]
async fn requests_over_the_timeout_get_deadline_exceeded() {
    // A batch this size takes far longer than a millisecond to predict.
    let mut app =
        spawn_app_with(|config| config.request_timeout = std::time::Duration::from_millis(1)).await;
    let status = app
        .client
        .predict(request(vec![good(); 10_000], &[]))
        .await
        .expect_err("over the timeout");
    assert_eq!(
        status.code(),
        Code::DeadlineExceeded,
        "{:?}: {}",
        status.code(),
        status.message()
    );
    app.stop().await;
}

#[tokio::test]
async fn calls_beyond_the_in_flight_limit_are_refused_at_once_not_queued() {
    let app = spawn_app_with(|config| config.max_concurrent_requests = 1).await;
    // Eight large batches at once over one connection: one holds the only
    // slot, the others arrive while it predicts.
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let mut client = app.client.clone();
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                let r = client.predict(request(vec![good(); 10_000], &[])).await;
                (r.map(|_| ()), started.elapsed())
            })
        })
        .collect();
    let (mut ok, mut refused) = (0, 0);
    for call in calls {
        let (result, elapsed) = call.await.expect("task");
        match result {
            Ok(()) => ok += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert!(
                    status.message().contains("limit of 1 calls"),
                    "{}",
                    status.message()
                );
                assert!(
                    elapsed < std::time::Duration::from_secs(5),
                    "answered at once"
                );
                refused += 1;
            }
        }
    }
    assert!(ok >= 1 && refused >= 1, "{ok} answered, {refused} refused");
    // Once the load is gone, calls go through again.
    let mut client = app.client.clone();
    client
        .predict(request(vec![good()], &[]))
        .await
        .expect("a slot is free again");
    app.stop().await;
}
