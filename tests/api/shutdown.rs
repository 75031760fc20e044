//! SIGTERM on the real binary: health turns NOT_SERVING, an in-flight
//! stream is still answered, and the process exits 0 once it is done.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use nasperf::{proto::v1::predictor_client::PredictorClient, train::write_model};
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::helpers::{BEST_CELL, candidate, fixture_models, request};

/// Kills the child if the test fails before it exits.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_calls_and_exits_zero() {
    let models = tokio::task::spawn_blocking(fixture_models).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    for m in models {
        write_model(dir.path(), m).unwrap();
    }
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_nasperf"))
            .args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0"])
            .arg("--models")
            .arg(dir.path())
            .args(["--shutdown-grace", "20s"])
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nasperf"),
    );
    // The bound address is in the JSON log line "nasperf listening".
    let stderr = child.0.stderr.take().unwrap();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && v["fields"]["message"] == "nasperf listening"
            {
                let _ = addr_tx.send(v["fields"]["addr"].as_str().unwrap_or_default().to_owned());
            }
        }
    });
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the server logs its address");
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel.clone());
    let service = || HealthCheckRequest {
        service: "nasperf.v1.Predictor".to_owned(),
    };
    let mut watch = health.watch(service()).await.unwrap().into_inner();
    loop {
        let status = watch.next().await.expect("watch").expect("status").status;
        if status == ServingStatus::Serving as i32 {
            break;
        }
    }

    // A stream in flight when the signal arrives.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut client = PredictorClient::new(channel.clone());
    let mut responses = client
        .predict_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    tx.send(request(vec![candidate(BEST_CELL)], &[]))
        .await
        .unwrap();
    responses.next().await.expect("first answer").expect("ok");

    let pid = child.0.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());

    let status = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .expect("health changes in time")
        .expect("watch")
        .expect("status")
        .status;
    assert_eq!(status, ServingStatus::NotServing as i32);
    drop(watch);

    // The in-flight stream is still answered.
    tx.send(request(vec![candidate(BEST_CELL)], &[]))
        .await
        .unwrap();
    let second = responses
        .next()
        .await
        .expect("answer after SIGTERM")
        .expect("ok");
    assert_eq!(second.predictions.len(), 1);
    drop(tx);
    assert!(
        responses.next().await.is_none(),
        "the stream ends when the client closes it"
    );
    drop(responses);
    drop(client);
    drop(health);
    drop(channel);

    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not exit after draining"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "exit status {exit:?}");
}
