//! The plumbing of `nasperf eval` on the real tables, small: one
//! objective, N=32, two seeds. Quality itself is measured by the full run
//! (docs/quality.md), not asserted here.

mod common;

use nasperf::{
    eval::{self, FeatureSet},
    objectives,
    train::{SplitMix64, metrics::kendall_tau_b, recipe::Recipe},
};

const OBJECTIVE: &str = "cifar10/val_acc_200ep";

fn protocol(jobs: usize) -> eval::Protocol {
    eval::Protocol {
        objectives: vec![
            objectives::get(OBJECTIVE)
                .expect("in the catalogue")
                .clone(),
        ],
        train_sizes: vec![32],
        seeds: vec![0, 1],
        feature_sets: Vec::new(),
        recipe: Recipe::default(),
        jobs,
        without_proxies: false,
    }
}

#[test]
fn splits_partition_the_networks_and_the_same_seed_gives_the_same_numbers() {
    let p = protocol(2);
    let data = eval::load(&common::benchdata(), &p.objectives).expect("tables load");
    assert_eq!(data[0].len(), 9_445, "the canonical NB201 networks");
    for &seed in &p.seeds {
        let (train, test) = eval::split(data[0].len(), 32, seed);
        assert_eq!(train.len(), 32);
        assert_eq!(train.len() + test.len(), data[0].len());
        assert!(
            train.iter().all(|i| test.binary_search(i).is_err()),
            "seed {seed}: a network is in both the training and the test split"
        );
    }
    let bar = indicatif::ProgressBar::hidden();
    let first = eval::run(&p, &data, &bar).expect("the protocol runs");
    // One thread instead of two: the order of work changes, not the numbers.
    let second = eval::run(&protocol(1), &data, &bar).expect("the protocol runs");
    assert_eq!(first.runs.len(), 2);
    for (a, b) in first.runs.iter().zip(&second.runs) {
        assert_eq!((a.seed, a.train_size), (b.seed, b.train_size));
        assert_eq!(
            a.kendall_tau.to_bits(),
            b.kendall_tau.to_bits(),
            "seed {}",
            a.seed
        );
        assert_eq!(
            a.coverage.to_bits(),
            b.coverage.to_bits(),
            "seed {}",
            a.seed
        );
        assert_eq!(a.top_precision.to_bits(), b.top_precision.to_bits());
    }
    for r in &first.runs {
        assert_eq!(
            r.feature_set, "graph+proxies",
            "the served models' features"
        );
        // 32 networks of CIFAR-10 accuracy rank the rest far better than
        // chance (the reference forest reaches about 0.7).
        assert!(
            r.kendall_tau > 0.4,
            "seed {}: tau {}",
            r.seed,
            r.kendall_tau
        );
        assert!((0.0..=1.0).contains(&r.coverage) && (0.0..=1.0).contains(&r.top_precision));
        // The widths that hold 50% to 99% of the test networks grow with the
        // share, and the one of the interval's own share is the held-out
        // width beside it; what the interval was calibrated from is the
        // fresh cross-validation of 32 rows (five folds of 6 or 7, halves
        // of 16).
        let shares: Vec<f64> = eval::held_out_shares().collect();
        assert_eq!(r.held_out_half_widths.len(), shares.len());
        assert!(r.held_out_half_widths.windows(2).all(|w| w[0] <= w[1]));
        let own = shares.iter().position(|&s| s == 0.8).expect("80% listed");
        assert_eq!(r.held_out_half_widths[own], r.held_out_half_width);
        let interval = r.interval;
        assert_eq!(
            (interval.rows, interval.near_rows, interval.far_rows),
            (32.0, 25.0, 16.0)
        );
        assert!(
            interval.half_width <= interval.near_quantile && interval.near_quantile > 0.0,
            "seed {}: the curve only narrows the quantile: {interval:?}",
            r.seed
        );
    }
    // The seeds draw different networks, so different numbers.
    assert_ne!(first.runs[0].kendall_tau, first.runs[1].kendall_tau);
}

#[test]
fn the_served_layout_also_scores_the_test_networks_sent_without_proxies() {
    // Seeds 0 and 6: on these draws, one split's residuals (how the trees
    // without proxies were calibrated before session 27) gave an interval
    // 6.1 and 8.4 times as wide as the one that holds 80% of the test
    // networks.
    let p = eval::Protocol {
        without_proxies: true,
        seeds: vec![0, 6],
        ..protocol(2)
    };
    let data = eval::load(&common::benchdata(), &p.objectives).expect("tables load");
    let bar = indicatif::ProgressBar::hidden();
    let served = eval::run(&p, &data, &bar).expect("the protocol runs");
    let plain = eval::run(
        &eval::Protocol {
            seeds: vec![0],
            ..protocol(2)
        },
        &data,
        &bar,
    )
    .expect("the protocol runs");
    assert!(
        plain.runs[0].without_proxies.is_none(),
        "asked for only with the flag"
    );
    for run in &served.runs {
        let without = run
            .without_proxies
            .as_ref()
            .expect("scored without proxies");
        // The architecture alone ranks 32 networks' accuracy above chance,
        // but below what the proxies add.
        assert!(
            (0.2..run.kendall_tau).contains(&without.kendall_tau),
            "seed {}: tau {} without proxies, {} with",
            run.seed,
            without.kendall_tau,
            run.kendall_tau
        );
        assert!((0.0..=1.0).contains(&without.coverage));
        assert_ne!(
            without.interval.half_width, run.interval.half_width,
            "each set of trees has its own interval"
        );
        // Calibrated on every training row held out once, the interval is
        // of the order of the one that holds 80% of the test networks.
        let ratio = without.interval.half_width / without.held_out_half_width;
        assert!(
            (1.0 / 3.0..=3.0).contains(&ratio),
            "seed {}: ±{} without proxies, where ±{} holds 80% of the test networks",
            run.seed,
            without.interval.half_width,
            without.held_out_half_width
        );
    }
}

/// Tau-b by its definition, O(n^2).
/// An objective whose dataset has no proxies in the tables is given its
/// stand-in's (CIFAR-100's get CIFAR-10's, the networks' own), and the
/// report says so; one with its own keeps them.
#[test]
fn cifar100_reads_cifar10_proxies_and_the_report_names_the_stand_in() {
    use nasperf::{dataset::Dataset, eval::report};

    let objectives: Vec<_> = ["cifar100/test_acc_200ep", OBJECTIVE]
        .iter()
        .map(|id| objectives::get(id).expect("in the catalogue").clone())
        .collect();
    let data = eval::load(&common::benchdata(), &objectives).expect("tables load");
    let (c100, c10) = (&data[0], &data[1]);
    assert_eq!(c100.proxy_dataset, Some(Dataset::Cifar10));
    assert_eq!(c10.proxy_dataset, Some(Dataset::Cifar10));
    assert!(eval::has_proxies(c100));
    // The same networks get the same proxies, whichever objective reads them.
    let proxies = FeatureSet(vec![eval::Block::Proxies]);
    let (m100, m10) = (c100.matrix(&proxies), c10.matrix(&proxies));
    let width = m10.names.len();
    let row = |m: &eval::Matrix, cells: &[nasperf::space::nb201::cell::Cell], cell| {
        let i = cells
            .iter()
            .position(|c| *c == cell)
            .expect("a canonical network");
        m.values[i * width..(i + 1) * width].to_vec()
    };
    for &cell in c10.cells.iter().take(50) {
        assert_eq!(row(&m100, &c100.cells, cell), row(&m10, &c10.cells, cell));
    }
    let notes = report::proxy_stand_ins(&data);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("cifar100/test_acc_200ep") && notes[0].contains("cifar10"));
}

fn brute_force_tau_b(x: &[f64], y: &[f64]) -> f64 {
    let (mut concordant, mut discordant, mut only_x, mut only_y) = (0i64, 0i64, 0i64, 0i64);
    for i in 0..x.len() {
        for j in i + 1..x.len() {
            let dx = x[i].total_cmp(&x[j]) as i64;
            let dy = y[i].total_cmp(&y[j]) as i64;
            match (dx, dy) {
                (0, 0) => {}
                (0, _) => only_y += 1,
                (_, 0) => only_x += 1,
                _ if dx == dy => concordant += 1,
                _ => discordant += 1,
            }
        }
    }
    let n1 = (concordant + discordant + only_x) as f64;
    let n2 = (concordant + discordant + only_y) as f64;
    (concordant - discordant) as f64 / (n1 * n2).sqrt()
}

#[test]
fn kendall_tau_matches_its_definition_on_small_inputs_with_ties() {
    let mut rng = SplitMix64(11);
    for case in 0..300 {
        let n = 2 + (rng.next_u64() % 30) as usize;
        // Few distinct values, so ties in x, in y and in both are common.
        let levels = 1 + rng.next_u64() % 6;
        let x: Vec<f64> = (0..n).map(|_| (rng.next_u64() % levels) as f64).collect();
        let y: Vec<f64> = (0..n).map(|_| (rng.next_u64() % 7) as f64).collect();
        let fast = kendall_tau_b(&x, &y);
        let slow = brute_force_tau_b(&x, &y);
        assert!(
            (fast.is_nan() && slow.is_nan()) || (fast - slow).abs() < 1e-12,
            "case {case}: {fast} vs {slow} for {x:?} / {y:?}"
        );
        // Undefined (NaN) for a constant side; eval scores a constant
        // prediction 0.
        if x.iter().all(|v| *v == x[0]) {
            assert_eq!(eval::ranking(kendall_tau_b, &x, &y), 0.0);
        }
    }
}

#[test]
fn the_reference_runner_scores_the_same_splits_and_the_report_is_written() {
    let out = tempfile::tempdir().expect("dir");
    let python = std::env::var("NASPERF_REFERENCE_PYTHON").unwrap_or_else(|_| "python3".into());
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/reference_runner.py");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_nasperf"))
        .args([
            "eval",
            "--objective",
            OBJECTIVE,
            "--train-sizes",
            "32",
            "--seeds",
            "2",
        ])
        .args(["--reference-models", "random_forest,lightgbm"])
        .args(["--reference-feature-sets", "graph+proxies"])
        .arg("--bench")
        .arg(common::benchdata())
        .arg("--reference-python")
        .arg(&python)
        .arg("--reference-script")
        .arg(&script)
        .arg("--out")
        .arg(out.path())
        .output()
        .expect("run nasperf eval");
    assert!(
        output.status.success(),
        "nasperf eval failed (the reference needs `pip install -r scripts/reference-requirements.txt` \
         in $NASPERF_REFERENCE_PYTHON, here {python}): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let job: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.path().join("reference/cifar10__val_acc_200ep.job.json")).expect("job"),
    )
    .expect("JSON");
    let splits = job["splits"].as_array().expect("splits");
    assert_eq!(splits.len(), 2);
    for s in splits {
        let seed = s["seed"].as_u64().expect("seed");
        let train: Vec<usize> = s["train"]
            .as_array()
            .expect("train")
            .iter()
            .map(|v| v.as_u64().expect("index") as usize)
            .collect();
        assert_eq!(
            train,
            eval::split(9_445, 32, seed).0,
            "seed {seed}: the reference got another split"
        );
    }
    let set: FeatureSet = "graph+proxies".parse().expect("feature set");
    let data = eval::load(
        &common::benchdata(),
        &[objectives::get(OBJECTIVE).expect("known").clone()],
    )
    .expect("tables");
    assert_eq!(
        job["feature_sets"]["graph+proxies"]["names"],
        serde_json::json!(data[0].matrix(&set).names),
        "the reference sees the columns our side does"
    );

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("quality.json")).expect("report"))
            .expect("JSON");
    let reference = report["reference_runs"].as_array().expect("reference runs");
    assert_eq!(
        reference.len(),
        2 * 2,
        "two seeds, two models, one feature set"
    );
    for r in reference {
        let tau = r["kendall_tau"].as_f64().expect("tau");
        match r["model"].as_str() {
            // A forest of 32 networks ranks the rest well.
            Some("random_forest") => assert!(tau > 0.5, "{r}"),
            // LightGBM's defaults (leaves of 20 rows) cannot split 32 rows.
            Some("lightgbm") => {
                assert_eq!(r["constant_prediction"], true, "{r}");
                assert_eq!(tau, 0.0);
            }
            other => panic!("unexpected model {other:?}"),
        }
    }
    // The same-split comparison is ours minus the best reference model's
    // tau on each seed's split, recomputed here from the runs themselves.
    let cell = &report["cells"][0];
    let best = cell["reference"]["model"].as_str().expect("best model");
    let tau_of = |runs: &serde_json::Value, seed: u64, model: Option<&str>| {
        runs.as_array()
            .expect("runs")
            .iter()
            .find(|r| {
                r["seed"].as_u64() == Some(seed)
                    && model.is_none_or(|m| r["model"].as_str() == Some(m))
            })
            .and_then(|r| r["kendall_tau"].as_f64())
            .expect("a run of this seed")
    };
    let differences: Vec<f64> = (0..2)
        .map(|seed| {
            tau_of(&report["runs"], seed, None)
                - tau_of(&report["reference_runs"], seed, Some(best))
        })
        .collect();
    let same_split = &cell["reference"]["same_split"];
    assert_eq!(same_split["difference"]["n"], 2, "{same_split}");
    let mean = same_split["difference"]["mean"].as_f64().expect("mean");
    assert!(
        (mean - (differences[0] + differences[1]) / 2.0).abs() < 1e-12,
        "{same_split} against {differences:?}"
    );
    assert_eq!(
        same_split["wins"].as_u64(),
        Some(differences.iter().filter(|d| **d > 0.0).count() as u64)
    );
    let markdown = std::fs::read_to_string(out.path().join("quality.md")).expect("quality.md");
    assert!(
        markdown.contains("| cifar10/val_acc_200ep | 32 |") && markdown.contains("random_forest"),
        "{markdown}"
    );
    for png in ["quality-tau.png", "quality-scatter.png"] {
        let bytes = std::fs::read(out.path().join(png)).unwrap_or_default();
        assert!(
            bytes.starts_with(b"\x89PNG"),
            "{png} is not a PNG (is a font installed? set NASPERF_FONT)"
        );
    }
}

#[test]
fn a_missing_reference_runner_is_reported_before_our_side_runs() {
    let out = tempfile::tempdir().expect("dir");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_nasperf"))
        .args(["eval", "--objective", OBJECTIVE, "--train-sizes", "32"])
        .arg("--bench")
        .arg(common::benchdata())
        .arg("--reference-script")
        .arg(out.path().join("no-such-runner.py"))
        .arg("--out")
        .arg(out.path().join("report"))
        .output()
        .expect("run nasperf eval");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no-such-runner.py") && stderr.contains("--reference-script"),
        "{stderr}"
    );
    // Nothing of our side was fitted: no report, no progress line.
    assert!(!stderr.contains("our side:"), "{stderr}");
    assert!(!out.path().join("report").exists());
}
