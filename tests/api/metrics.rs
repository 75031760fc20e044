//! `/metrics` on its own port: what a Prometheus scrape sees after real
//! calls.

use nasperf::proto::v1::{RecordEvaluationsRequest, store_client::StoreClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{
    BEST_CELL, OBJECTIVES, best_cell_evaluation, candidate, request, spawn_app_with,
};

/// One plain HTTP/1.1 GET, as a scraper does it; returns (status line, body).
async fn get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the metrics port");
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: nasperf\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .expect("send");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}

/// The value of the first sample line that starts with `series`.
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn a_scrape_shows_calls_by_code_candidates_evaluations_models_and_store_health() {
    let mut app =
        spawn_app_with(|c| c.metrics_listen = Some("127.0.0.1:0".parse().expect("addr"))).await;
    let metrics = app.metrics_addr.expect("metrics port bound");

    app.client
        .predict(request(
            vec![candidate(BEST_CELL), candidate(BEST_CELL)],
            &[],
        ))
        .await
        .expect("predict");
    let bad = app
        .client
        .predict(request(vec![candidate("not a cell")], &[]))
        .await
        .expect_err("a bad architecture");
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    let mut store = StoreClient::new(app.channel.clone());
    let row = best_cell_evaluation;
    store
        .record_evaluation_batch(RecordEvaluationsRequest {
            evaluations: vec![row("m-1", 91.0), row("m-1", 91.0), row("m-2", f64::NAN)],
        })
        .await
        .expect("record");

    let (status, body) = get(metrics, "/metrics").await;
    assert!(status.contains("200"), "{status}");
    // Counters are process-wide and other tests run beside this one: at
    // least what this test did.
    let predict_ok = r#"nasperf_rpc_calls_total{method="/nasperf.v1.Predictor/Predict",code="OK"}"#;
    let predict_bad = r#"nasperf_rpc_calls_total{method="/nasperf.v1.Predictor/Predict",code="INVALID_ARGUMENT"}"#;
    assert!(
        sample(&body, predict_ok).is_some_and(|v| v >= 1.0),
        "{body}"
    );
    assert!(
        sample(&body, predict_bad).is_some_and(|v| v >= 1.0),
        "{body}"
    );
    assert!(
        body.contains(r#"nasperf_rpc_duration_seconds_bucket{le="+Inf",method="/nasperf.v1.Predictor/Predict"}"#)
            || body.contains(r#"nasperf_rpc_duration_seconds_bucket{method="/nasperf.v1.Predictor/Predict",le="+Inf"}"#),
        "a latency histogram per method: {body}"
    );
    assert!(sample(&body, "nasperf_candidates_predicted_total").is_some_and(|v| v >= 2.0));
    for (outcome, at_least) in [("stored", 1.0), ("already_stored", 1.0), ("rejected", 1.0)] {
        let series = format!(r#"nasperf_evaluations_recorded_total{{outcome="{outcome}"}}"#);
        assert!(
            sample(&body, &series).is_some_and(|v| v >= at_least),
            "{series}: {body}"
        );
    }
    for objective in OBJECTIVES {
        let tau = format!(
            r#"nasperf_model_heldout_kendall_tau{{study="default",objective="{objective}"}}"#
        );
        assert!(
            sample(&body, &tau).is_some_and(|v| v > 0.0 && v <= 1.0),
            "{tau}: {body}"
        );
        assert!(
            body.contains(&format!(
                r#"nasperf_model_serving{{study="default",objective="{objective}",version=""#
            )),
            "{body}"
        );
    }
    assert_eq!(sample(&body, "nasperf_store_up"), Some(1.0), "{body}");
    assert!(
        body.trim_end().ends_with("# EOF"),
        "OpenMetrics ends with # EOF"
    );

    // A method the API does not define is counted as "other": a client
    // cannot mint series.
    let mut grpc = tonic::client::Grpc::new(app.channel.clone());
    grpc.ready().await.expect("ready");
    let path =
        tonic::codegen::http::uri::PathAndQuery::from_static("/nasperf.v1.Predictor/NoSuchMethod");
    let unknown: Result<tonic::Response<()>, _> = grpc
        .unary(
            tonic::Request::new(()),
            path,
            tonic_prost::ProstCodec::<(), ()>::default(),
        )
        .await;
    assert_eq!(
        unknown.expect_err("unimplemented").code(),
        tonic::Code::Unimplemented
    );
    let (_, body) = get(metrics, "/metrics").await;
    assert!(!body.contains("NoSuchMethod"), "{body}");
    assert!(
        body.contains(r#"method="other",code="UNIMPLEMENTED""#),
        "{body}"
    );

    let (status, _) = get(metrics, "/").await;
    assert!(status.contains("404"), "{status}");
    app.stop().await;
}
