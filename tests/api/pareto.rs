//! `ParetoRank` on a real server: the ranks agree with the values the
//! server predicts, front 0 is exactly the non-dominated set, the
//! hypervolume is that of front 0, and bad requests name the field.

use nasperf::{
    pareto::{self, dominates},
    proto::v1::{Direction, ParetoRankRequest, PredictRequest, RankedObjective},
};
use tonic::Code;

use crate::helpers::{candidate, nb201_cell, spawn_app};

fn objectives(spec: &[(&str, Direction)]) -> Vec<RankedObjective> {
    spec.iter()
        .map(|(o, d)| RankedObjective {
            objective: (*o).to_owned(),
            direction: *d as i32,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranks_fronts_crowding_and_hypervolume_of_predictions() {
    let mut app = spawn_app().await;
    let cells: Vec<_> = (0..400).map(|i| candidate(&nb201_cell(i * 37))).collect();
    for spec in [
        vec![
            ("cifar10/val_acc_200ep", Direction::Maximize),
            ("cifar10/edgegpu_latency", Direction::Minimize),
        ],
        vec![
            ("cifar10/val_acc_200ep", Direction::Maximize),
            ("cifar10/edgegpu_latency", Direction::Minimize),
            ("cifar10/pgd_eps1", Direction::Maximize),
        ],
    ] {
        let m = spec.len();
        let reference: Vec<f64> = spec
            .iter()
            .map(|(o, _)| match *o {
                "cifar10/edgegpu_latency" => 100.0,
                _ => 0.0,
            })
            .collect();
        let ranked = app
            .client
            .pareto_rank(ParetoRankRequest {
                candidates: cells.clone(),
                objectives: objectives(&spec),
                reference_point: reference.clone(),
                ..Default::default()
            })
            .await
            .expect("rank")
            .into_inner();
        let predicted = app
            .client
            .predict(PredictRequest {
                candidates: cells.clone(),
                objectives: spec.iter().map(|(o, _)| (*o).to_owned()).collect(),
                ..Default::default()
            })
            .await
            .expect("predict")
            .into_inner();
        assert_eq!(ranked.candidates.len(), cells.len());
        // The values ranked are the server's predictions.
        for (r, p) in ranked.candidates.iter().zip(&predicted.predictions) {
            assert_eq!(r.values, p.values);
        }
        // Front 0 is exactly the set nobody dominates, in minimised form.
        let sign: Vec<f64> = spec
            .iter()
            .map(|(_, d)| if *d == Direction::Maximize { -1.0 } else { 1.0 })
            .collect();
        let min: Vec<Vec<f64>> = ranked
            .candidates
            .iter()
            .map(|c| c.values.iter().zip(&sign).map(|(v, s)| v * s).collect())
            .collect();
        for (i, c) in ranked.candidates.iter().enumerate() {
            let dominated = min.iter().any(|o| dominates(o, &min[i]));
            assert_eq!(c.front == 0, !dominated, "candidate {i}");
            assert_eq!(c.hypervolume_contribution.is_some(), c.front == 0);
            assert!(c.crowding_distance >= 0.0);
        }
        let fronts = ranked.candidates.iter().map(|c| c.front).max().unwrap_or(0);
        assert!(
            fronts >= 2,
            "{m} objectives over 400 cells give several fronts"
        );
        // The hypervolume is front 0's, computed independently here.
        let first: Vec<f64> = ranked
            .candidates
            .iter()
            .filter(|c| c.front == 0)
            .flat_map(|c| c.values.iter().copied())
            .collect();
        let expected = pareto::rank(
            &first,
            &spec
                .iter()
                .map(|(_, d)| {
                    if *d == Direction::Maximize {
                        pareto::Direction::Maximize
                    } else {
                        pareto::Direction::Minimize
                    }
                })
                .collect::<Vec<_>>(),
            Some(&reference),
        )
        .hypervolume
        .expect("2 or 3 objectives");
        let hv = ranked.hypervolume.expect("hypervolume");
        assert!(
            hv > 0.0 && (hv - expected).abs() <= 1e-9 * hv,
            "{hv} vs {expected}"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ranking_requests_name_the_field() {
    let mut app = spawn_app().await;
    let base = ParetoRankRequest {
        candidates: vec![candidate(&nb201_cell(1)), candidate(&nb201_cell(2))],
        objectives: objectives(&[
            ("cifar10/val_acc_200ep", Direction::Maximize),
            ("cifar10/edgegpu_latency", Direction::Minimize),
        ]),
        ..Default::default()
    };
    let cases: Vec<(ParetoRankRequest, Code, &str)> = vec![
        (
            ParetoRankRequest {
                objectives: base.objectives[..1].to_vec(),
                ..base.clone()
            },
            Code::InvalidArgument,
            "objectives: rank at least 2",
        ),
        (
            ParetoRankRequest {
                objectives: objectives(&[
                    ("cifar10/val_acc_200ep", Direction::Maximize),
                    ("cifar10/edgegpu_latency", Direction::Unspecified),
                ]),
                ..base.clone()
            },
            Code::InvalidArgument,
            "objectives[1].direction",
        ),
        (
            ParetoRankRequest {
                reference_point: vec![0.0],
                ..base.clone()
            },
            Code::InvalidArgument,
            "reference_point: 1 values for 2",
        ),
        (
            ParetoRankRequest {
                reference_point: vec![0.0, f64::NAN],
                ..base.clone()
            },
            Code::InvalidArgument,
            "reference_point[1]",
        ),
        (
            ParetoRankRequest {
                objectives: objectives(&[
                    ("cifar10/val_acc_200ep", Direction::Maximize),
                    ("cifar10/edgegpu_latency", Direction::Minimize),
                    ("cifar10/pgd_eps1", Direction::Maximize),
                    ("cifar100/test_acc_200ep", Direction::Maximize),
                ]),
                reference_point: vec![0.0, 100.0, 0.0, 0.0],
                ..base.clone()
            },
            Code::InvalidArgument,
            "2 or 3 objectives, not 4",
        ),
        (
            ParetoRankRequest {
                objectives: objectives(&[
                    ("cifar10/val_acc_200ep", Direction::Maximize),
                    ("cifar10/bogus", Direction::Minimize),
                ]),
                ..base.clone()
            },
            Code::NotFound,
            "objectives[1]",
        ),
        (
            ParetoRankRequest {
                candidates: vec![candidate(&nb201_cell(1)), candidate("|conv~0|")],
                ..base.clone()
            },
            Code::InvalidArgument,
            "candidates[1].arch",
        ),
    ];
    for (i, (request, code, needle)) in cases.into_iter().enumerate() {
        let e = app.client.pareto_rank(request).await.expect_err("refused");
        assert_eq!(e.code(), code, "case {i}: {e:?}");
        assert!(e.message().contains(needle), "case {i}: {}", e.message());
    }
    // Four objectives rank fine without a hypervolume.
    let ok = app
        .client
        .pareto_rank(ParetoRankRequest {
            objectives: objectives(&[
                ("cifar10/val_acc_200ep", Direction::Maximize),
                ("cifar10/edgegpu_latency", Direction::Minimize),
                ("cifar10/pgd_eps1", Direction::Maximize),
                ("cifar100/test_acc_200ep", Direction::Maximize),
            ]),
            ..base
        })
        .await
        .expect("rank")
        .into_inner();
    assert_eq!(ok.hypervolume, None);
    app.stop().await;
}
