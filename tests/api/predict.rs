use std::collections::HashMap;

use nasperf::{
    bench,
    dataset::Dataset,
    proto::v1::{ListObjectivesRequest, PredictRequest},
};
use tokio_stream::StreamExt;

use crate::helpers::{BEST_CELL, OBJECTIVES, benchdata, candidate, nb201_cell, request, spawn_app};

#[tokio::test]
async fn predicts_every_objective_for_real_cells() {
    let mut app = spawn_app().await;
    // The best CIFAR-10 cell against one of all-pooling and a cell whose
    // output is disconnected (every edge into node 3 is `none`).
    let cells = [BEST_CELL, "444444", "333000"];
    let response = app
        .client
        .predict(request(cells.iter().map(|c| candidate(c)).collect(), &[]))
        .await
        .expect("predict")
        .into_inner();
    let served: Vec<&str> = response
        .objectives
        .iter()
        .map(|o| o.objective.as_str())
        .collect();
    let mut expected = OBJECTIVES.to_vec();
    expected.sort();
    assert_eq!(
        served, expected,
        "empty objectives = every served objective"
    );
    assert!(
        response
            .objectives
            .iter()
            .all(|o| !o.model_version.is_empty())
    );
    assert_eq!(response.predictions.len(), 3);
    for p in &response.predictions {
        assert_eq!(p.values.len(), OBJECTIVES.len());
        assert!(p.values.iter().all(|v| v.is_finite()));
    }
    let acc = served
        .iter()
        .position(|o| *o == "cifar10/val_acc_200ep")
        .expect("served");
    let (best, pool, dead) = (
        response.predictions[0].values[acc],
        response.predictions[1].values[acc],
        response.predictions[2].values[acc],
    );
    assert!(
        best > 85.0,
        "the best NB201 cell is predicted accurate: {best}"
    );
    assert!(
        best > pool && pool > dead,
        "ranking best {best} > pool {pool} > disconnected {dead}"
    );
    assert_eq!(response.predictions[2].canonical_key, "000000");
    app.client
        .list_objectives(ListObjectivesRequest::default())
        .await
        .expect("list");
    app.stop().await;
}

#[tokio::test]
async fn proxies_are_used_only_on_their_dataset_and_canonical_twins_agree() {
    let mut app = spawn_app().await;
    let proxies = bench::load_proxies(&benchdata(), Dataset::Cifar10)
        .unwrap()
        .unwrap();
    let (cell, values) = proxies.iter().next().map(|(c, v)| (*c, *v)).unwrap();
    let map: HashMap<String, f64> = nasperf::features::PROXY_NAMES
        .iter()
        .zip(values.0)
        .map(|(n, v)| ((*n).to_owned(), v))
        .collect();
    let with = |dataset: &str| {
        let mut c = candidate(&cell.to_arch_string());
        c.proxies = map.clone();
        PredictRequest {
            candidates: vec![c],
            dataset: dataset.to_owned(),
            objectives: vec![
                "cifar10/val_acc_200ep".to_owned(),
                "cifar100/test_acc_200ep".to_owned(),
            ],
            request_id: "r1".to_owned(),
            study: String::new(),
            intervals: true,
        }
    };
    // The same proxies, said to be computed on each dataset in turn.
    let mut answers = Vec::new();
    for dataset in ["cifar10", "ImageNet16-120", "cifar100"] {
        answers.push(
            app.client
                .predict(with(dataset))
                .await
                .unwrap()
                .into_inner(),
        );
    }
    let [on_cifar10, on_imagenet, on_cifar100] = <[_; 3]>::try_from(answers).unwrap();
    let without = app
        .client
        .predict(request(
            vec![candidate(&cell.to_arch_string())],
            &["cifar10/val_acc_200ep", "cifar100/test_acc_200ep"],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(on_cifar10.request_id, "r1");
    // CIFAR-10 proxies change the CIFAR-10 model's input...
    assert_ne!(
        on_cifar10.predictions[0].values[0],
        without.predictions[0].values[0]
    );
    // ...but proxies from another dataset are treated as missing.
    assert_eq!(
        on_imagenet.predictions[0].values[0],
        without.predictions[0].values[0]
    );
    // The tables have no CIFAR-100 proxies, so the CIFAR-100 model was
    // trained on those of its stand-in, CIFAR-10 (`Dataset::proxy_sources`):
    // it reads proxies sent as CIFAR-10's...
    assert_ne!(
        on_cifar10.predictions[0].values[1],
        without.predictions[0].values[1]
    );
    // ...and no others, not even proxies said to be computed on CIFAR-100,
    // which it never learned from; nor does the CIFAR-10 model read those.
    assert_eq!(
        on_cifar100.predictions[0].values[1],
        without.predictions[0].values[1]
    );
    assert_eq!(
        on_cifar100.predictions[0].values[0],
        without.predictions[0].values[0]
    );
    // A candidate missing one proxy is answered by the trees trained on
    // the architecture alone, exactly as one that sends none.
    let mut partial = with("cifar10");
    partial.candidates[0].proxies.remove("synflow");
    let partial = app.client.predict(partial).await.unwrap().into_inner();
    assert_eq!(
        partial.predictions[0].values[0],
        without.predictions[0].values[0]
    );

    // Each value carries the half-width of its model's 80% interval: the
    // proxy trees' for a candidate with every proxy, the wider one of the
    // architecture's trees otherwise; none unless asked for.
    let listed = app
        .client
        .list_objectives(ListObjectivesRequest::default())
        .await
        .unwrap()
        .into_inner();
    let info = |id: &str| {
        listed
            .objectives
            .iter()
            .find(|o| o.objective == id)
            .expect("listed")
            .clone()
    };
    let (acc, c100) = (
        info("cifar10/val_acc_200ep"),
        info("cifar100/test_acc_200ep"),
    );
    let acc_without = acc
        .interval_half_width_without_proxies
        .expect("a model that reads proxies has a second interval");
    assert!(acc.interval_half_width > 0.0 && acc_without > acc.interval_half_width);
    let c100_without = c100
        .interval_half_width_without_proxies
        .expect("the CIFAR-100 model reads its stand-in's proxies");
    assert!(c100.interval_half_width > 0.0 && c100_without > c100.interval_half_width);
    // Whose proxies each model reads, as a client learns it.
    assert_eq!(acc.proxy_dataset, "cifar10");
    assert_eq!(c100.proxy_dataset, "cifar10");
    assert_eq!(info("cifar10/edgegpu_latency").proxy_dataset, "");
    for held in [
        acc.heldout_interval_coverage,
        c100.heldout_interval_coverage,
    ] {
        let held = held.expect("measured on held-out rows");
        assert!((0.6..=0.95).contains(&held), "{held}");
    }
    for o in &on_cifar10.objectives {
        assert!((o.interval_coverage - 0.8).abs() < 1e-12, "{o:?}");
    }
    let widths =
        |r: &nasperf::proto::v1::PredictResponse| r.predictions[0].interval_half_widths.clone();
    assert_eq!(
        widths(&on_cifar10),
        [acc.interval_half_width, c100.interval_half_width]
    );
    assert_eq!(widths(&on_imagenet), [acc_without, c100_without]);
    assert_eq!(widths(&on_cifar100), [acc_without, c100_without]);
    assert_eq!(widths(&partial), [acc_without, c100_without]);
    assert!(widths(&without).is_empty(), "not asked for");

    // A dead op changes neither the key nor accuracy, but does change latency.
    let live = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|";
    let dead = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|";
    let r = app
        .client
        .predict(request(
            vec![candidate(live), candidate(dead)],
            &["cifar10/val_acc_200ep", "cifar10/edgegpu_latency"],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.predictions[0].canonical_key,
        r.predictions[1].canonical_key
    );
    assert_eq!(
        r.predictions[0].values[0], r.predictions[1].values[0],
        "same network, same accuracy"
    );
    assert_ne!(
        r.predictions[0].values[1], r.predictions[1].values[1],
        "a dead conv still costs latency"
    );
    app.stop().await;
}

/// A large batch is split across cores: its answers equal one-candidate
/// requests bit for bit, and its first bad candidate is still the one named.
#[tokio::test]
async fn a_batch_split_across_cores_answers_as_one_candidate_at_a_time() {
    let mut app = spawn_app().await;
    let cells: Vec<String> = (0..10_000).map(|i| nb201_cell(i * 7)).collect();
    let batch = app
        .client
        .predict(request(cells.iter().map(|c| candidate(c)).collect(), &[]))
        .await
        .expect("predict 10,000")
        .into_inner();
    assert_eq!(batch.predictions.len(), cells.len());
    for i in (0..cells.len()).step_by(997).chain([cells.len() - 1]) {
        let single = app
            .client
            .predict(request(vec![candidate(&cells[i])], &[]))
            .await
            .expect("predict one")
            .into_inner();
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&batch.predictions[i].values),
            bits(&single.predictions[0].values),
            "candidate {i}"
        );
        assert_eq!(
            batch.predictions[i].canonical_key,
            single.predictions[0].canonical_key
        );
    }

    // Two bad candidates in different halves: the first is reported.
    let mut candidates: Vec<_> = cells.iter().map(|c| candidate(c)).collect();
    candidates[9_000].arch = "bogus".to_owned();
    candidates[6_000].arch = "12345".to_owned();
    let status = app
        .client
        .predict(request(candidates, &[]))
        .await
        .expect_err("invalid candidates");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().starts_with("candidates[6000].arch:"),
        "{}",
        status.message()
    );
    app.stop().await;
}

#[tokio::test]
async fn predict_stream_answers_each_request_in_order() {
    let mut app = spawn_app().await;
    let requests: Vec<PredictRequest> = (0..20)
        .map(|i| {
            let mut r = request(
                vec![candidate(BEST_CELL), candidate("123412")],
                &["cifar10/val_acc_200ep"],
            );
            r.request_id = format!("req-{i}");
            r
        })
        .collect();
    let mut responses = app
        .client
        .predict_stream(tokio_stream::iter(requests))
        .await
        .expect("stream")
        .into_inner();
    let mut ids = Vec::new();
    while let Some(r) = responses.next().await {
        let r = r.expect("stream item");
        assert_eq!(r.predictions.len(), 2);
        ids.push(r.request_id);
    }
    assert_eq!(ids, (0..20).map(|i| format!("req-{i}")).collect::<Vec<_>>());
    app.stop().await;
}

#[tokio::test]
async fn an_invalid_message_ends_the_stream_with_its_status() {
    let mut app = spawn_app().await;
    let good = request(vec![candidate(BEST_CELL)], &["cifar10/val_acc_200ep"]);
    let bad = request(
        vec![candidate(BEST_CELL), candidate("|bogus|")],
        &["cifar10/val_acc_200ep"],
    );
    let mut responses = app
        .client
        .predict_stream(tokio_stream::iter(vec![good.clone(), bad, good]))
        .await
        .expect("stream")
        .into_inner();
    responses
        .next()
        .await
        .expect("first answer")
        .expect("the valid request is answered");
    let status = responses
        .next()
        .await
        .expect("an error")
        .expect_err("the invalid request fails");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("candidates[1].arch"),
        "{}",
        status.message()
    );
    assert!(responses.next().await.is_none(), "the stream has ended");
    app.stop().await;
}

#[tokio::test]
async fn the_command_line_client_prints_a_table() {
    let app = spawn_app().await;
    let server = format!("http://{}", app.channel_addr());
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_nasperf"))
            .args([
                "predict", "--server", &server, "--arch", BEST_CELL, "--arch", "000100",
            ])
            .args([
                "--objective",
                "cifar10/val_acc_200ep",
                "--objective",
                "cifar10/edgegpu_latency",
            ])
            .output()
            .expect("run nasperf predict")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("canonical key 333133"), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("cifar10/val_acc_200ep"))
        .expect("a row per objective");
    // `value ± half-width` per candidate.
    let words: Vec<&str> = line.split_whitespace().collect();
    let number = |i: usize| -> f64 { words[i].parse().expect("a number") };
    let (best, skip) = (number(1), number(4));
    assert_eq!((words[2], words[5]), ("±", "±"), "{line}");
    assert!(number(3) > 0.0 && number(6) > 0.0, "{line}");
    assert!(best > skip, "the best cell beats a lone skip: {line}");
    assert!(
        stdout.contains("± half-width of the model's 80% interval"),
        "{stdout}"
    );
    app.stop().await;
}
