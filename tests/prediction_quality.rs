//! Prediction quality on the real NB201 tables, and our tree evaluator
//! against LightGBM's own predict.

mod common;

use std::collections::HashMap;

use nasperf::{
    bench,
    dataset::Dataset,
    features::ProxyValues,
    model::Forest,
    objectives::catalogue,
    space::nb201::{Nb201, cell::Cell},
    train::{
        self, ProxySource, SplitMix64, TrainConfig, TrainingSet, build_training_set, fit,
        metrics::kendall_tau_b, recipe::Choice,
    },
};

fn objective(id: &str) -> nasperf::objectives::Objective {
    catalogue()
        .into_iter()
        .find(|o| o.id == id)
        .expect("objective in catalogue")
}

/// CIFAR-10 validation accuracy and the CIFAR-10 proxies, from the tables.
fn cifar10_val_acc_tables() -> (
    nasperf::objectives::Objective,
    Vec<bench::Measurement>,
    HashMap<Cell, ProxyValues>,
) {
    let dir = common::benchdata();
    let obj = objective("cifar10/val_acc_200ep");
    let measurements = bench::load_objective(&dir, &obj).unwrap();
    let proxies = bench::load_proxies(&dir, Dataset::Cifar10)
        .unwrap()
        .unwrap();
    (obj, measurements, proxies)
}

/// CIFAR-10's proxies as the source of a CIFAR-10 objective's.
fn cifar10_proxies(values: &HashMap<Cell, ProxyValues>) -> ProxySource<'_> {
    ProxySource {
        dataset: Dataset::Cifar10,
        values,
    }
}

/// Trains on `n_train` random rows and returns tau-b on all the others,
/// as sent and with every proxy column blanked (a worker without proxies).
fn tau_on_rest(set: &train::TrainingSet, n_train: usize, seed: u64) -> (f64, f64) {
    let order = SplitMix64(seed).permutation(set.len());
    let (train_idx, test_idx) = order.split_at(n_train);
    let forest = fit(set, train_idx, &TrainConfig::default())
        .expect("training succeeds")
        .forest;
    let truth: Vec<f64> = test_idx.iter().map(|&i| set.targets[i]).collect();
    let pred: Vec<f64> = test_idx
        .iter()
        .map(|&i| forest.predict(set.row(i)))
        .collect();
    // The row the feature map builds for the same cell sent without
    // proxies.
    let space = Nb201::new();
    let map = nasperf::features::FeatureMap::resolve(&space, &set.feature_names).unwrap();
    let mut row = Vec::new();
    let blanked: Vec<f64> = test_idx
        .iter()
        .map(|&i| {
            row.clear();
            map.push_row(&space.features(&set.cells[i]), None, &mut row);
            forest.predict(&row)
        })
        .collect();
    (
        kendall_tau_b(&pred, &truth),
        kendall_tau_b(&blanked, &truth),
    )
}

#[test]
fn cifar10_val_acc_from_1024_networks_ranks_the_rest() {
    let space = Nb201::new();
    let (obj, measurements, proxies) = cifar10_val_acc_tables();

    let with_proxies =
        build_training_set(&obj, &measurements, Some(cifar10_proxies(&proxies)), &space).unwrap();
    assert_eq!(with_proxies.len(), 9_445, "one row per canonical network");
    let graph_only = build_training_set(&obj, &measurements, None, &space).unwrap();

    let (tau_proxies, tau_proxies_unsent) = tau_on_rest(&with_proxies, 1024, 1);
    let (tau_graph, _) = tau_on_rest(&graph_only, 1024, 1);
    println!(
        "cifar10/val_acc_200ep, N=1024: tau-b {tau_proxies:.4} with proxies, {tau_graph:.4} graph only, \
         {tau_proxies_unsent:.4} from the proxy model when a worker sends no proxies"
    );
    assert!(tau_proxies >= 0.80, "tau-b with proxies {tau_proxies}");
    assert!(
        tau_graph >= 0.75,
        "tau-b from graph features alone {tau_graph}"
    );
    // A model trained with proxies still ranks candidates sent without them.
    assert!(
        tau_proxies_unsent >= 0.75,
        "tau-b of the proxy model without proxies {tau_proxies_unsent}"
    );
}

#[test]
fn our_evaluator_equals_lightgbm_on_every_cell() {
    let dir = common::benchdata();
    let space = Nb201::new();
    // A hardware objective: every one of the 15,625 cells is its own row.
    let obj = objective("cifar10/edgegpu_latency");
    let measurements = bench::load_objective(&dir, &obj).unwrap();
    let set = build_training_set(&obj, &measurements, None, &space).unwrap();
    assert_eq!(set.len(), 15_625);
    let train_idx: Vec<usize> = (0..set.len()).step_by(3).collect();
    // A forest (LightGBM averages its trees), a booster, the recipe's
    // blend of a forest and a booster (one model text made of two), and the
    // additive model (its stumps summed per split) alone and blended, also
    // with the one-hot booster and with the per-op costs.
    for choice in [
        "forest",
        "boosted",
        "forest+boosted_small",
        "additive",
        "additive+boosted_small",
        "additive+boosted_small+onehot_boosted",
        "op_costs+additive+boosted_small",
    ] {
        let mut config = TrainConfig::with_rounds(200);
        config.recipe.choices = vec![Choice::named(choice).unwrap()];
        let text = fit(&set, &train_idx, &config).unwrap().model_text;
        same_as_lightgbm(&text, &set, &space, None, choice);
    }
}

/// Eyeriss energy is determined by the op counts of the cell as sent, so
/// the recipe may choose the count models: LightGBM agrees with us on
/// their (merged) stumps and blend, and cells with the same counts get the
/// same prediction, as they have the same energy.
#[test]
fn count_models_agree_with_lightgbm_and_tie_where_the_counts_do() {
    let dir = common::benchdata();
    let space = Nb201::new();
    let obj = objective("cifar10/eyeriss_energy");
    let measurements = bench::load_objective(&dir, &obj).unwrap();
    let set = build_training_set(&obj, &measurements, None, &space).unwrap();
    let train_idx: Vec<usize> = (0..set.len()).step_by(40).collect();
    let counts: Vec<usize> = set
        .feature_names
        .iter()
        .enumerate()
        .filter(|(_, n)| n.starts_with(nasperf::space::nb201::OPS_SENT_PREFIX))
        .map(|(j, _)| j)
        .collect();
    assert_eq!(counts.len(), 5);
    for choice in [
        "counts_additive",
        "counts_boosted",
        "counts_additive+counts_boosted",
    ] {
        let mut config = TrainConfig::with_rounds(200);
        config.recipe.choices = vec![Choice::named(choice).unwrap()];
        let fitted = fit(&set, &train_idx, &config).unwrap();
        assert_eq!(fitted.chosen, choice);
        same_as_lightgbm(&fitted.model_text, &set, &space, None, choice);
        let mut by_counts: HashMap<Vec<u64>, f64> = HashMap::new();
        for i in 0..set.len() {
            let row = set.row(i);
            let key: Vec<u64> = counts.iter().map(|&j| row[j].to_bits()).collect();
            let p = fitted.predict(row);
            let first = *by_counts.entry(key).or_insert(p);
            assert_eq!(p.to_bits(), first.to_bits(), "{choice}, row {i}");
        }
        assert!(by_counts.len() > 50, "{} count vectors", by_counts.len());
    }
    // Latency on the edge GPU depends on where each op sits: the count
    // models are not tried, so a recipe of them alone has nothing to fit.
    let edge = objective("cifar10/edgegpu_latency");
    let measurements = bench::load_objective(&dir, &edge).unwrap();
    let set = build_training_set(&edge, &measurements, None, &space).unwrap();
    let mut config = TrainConfig::with_rounds(50);
    config.recipe.choices = vec![Choice::named("counts_additive").unwrap()];
    let err = fit(&set, &train_idx, &config).unwrap_err();
    assert!(err.to_string().contains("no choice"), "{err}");
}

/// Under APGD-CE at eps 8/255 nearly every network is at 0% accuracy: the
/// served model says so with a floor, which the manifest carries and the
/// served type applies, one candidate or a batch at a time.
#[test]
fn a_robustness_model_serves_the_floor_most_networks_sit_on() {
    use nasperf::{model::Model, space::SearchSpaces, train::train_objective};

    let dir = common::benchdata();
    let obj = objective("cifar10/pgd_eps8");
    let proxies = bench::load_proxies(&dir, Dataset::Cifar10).unwrap();
    let trained = train_objective(
        &dir,
        &obj,
        proxies.as_ref().map(cifar10_proxies),
        &TrainConfig::with_rounds(100),
    )
    .unwrap();
    let floor = trained.manifest.floor.expect("a floor");
    assert_eq!(floor.value, 0.0, "{floor:?}");
    assert!(floor.at_or_below >= floor.value);
    let model = Model::from_parts(
        trained.manifest.clone(),
        &trained.model_text,
        &SearchSpaces::builtin(),
    )
    .unwrap();
    let space = Nb201::new();
    let features: Vec<Vec<f64>> = Cell::all().map(|c| space.features(&c)).collect();
    let mut row = Vec::new();
    let one_by_one: Vec<f64> = features
        .iter()
        .map(|f| model.predict(f, None, &mut row))
        .collect();
    let (mut rows, mut batch) = (Vec::new(), Vec::new());
    model.predict_batch(
        features.iter().map(|f| (f.as_slice(), None)),
        &mut rows,
        &mut batch,
    );
    assert_eq!(one_by_one, batch);
    let on_floor = batch.iter().filter(|&&p| p == floor.value).count();
    assert!(batch.iter().all(|&p| p >= floor.value));
    assert!(
        on_floor > batch.len() / 10 && on_floor < batch.len(),
        "{on_floor} of {} on the floor",
        batch.len()
    );
    // A manifest whose floor would reorder predictions is refused.
    let mut bad = trained.manifest;
    bad.floor = Some(nasperf::model::Floor {
        at_or_below: -1.0,
        value: 0.0,
    });
    let err = Model::from_parts(bad, &trained.model_text, &SearchSpaces::builtin()).unwrap_err();
    assert!(err.to_string().contains("floor"), "{err}");
}

/// A model that reads proxies is two models behind guard splits on
/// `proxies.sent`: LightGBM loads it and agrees with us on cells sent with
/// every proxy, with none, and with one missing.
#[test]
fn our_evaluator_equals_lightgbm_on_a_model_switched_by_proxies() {
    let space = Nb201::new();
    let (obj, measurements, proxies) = cifar10_val_acc_tables();
    let set =
        build_training_set(&obj, &measurements, Some(cifar10_proxies(&proxies)), &space).unwrap();
    assert!(
        set.feature_names
            .iter()
            .any(|n| n == nasperf::features::PROXIES_SENT_FEATURE)
    );
    let train_idx: Vec<usize> = (0..set.len()).step_by(8).collect();
    for choice in ["boosted", "forest+proxies_forest+boosted_small"] {
        let mut config = TrainConfig::with_rounds(100);
        config.recipe.choices = vec![Choice::named(choice).unwrap()];
        let fitted = fit(&set, &train_idx, &config).unwrap();
        assert!(fitted.interval_without_proxies.is_some());
        same_as_lightgbm(&fitted.model_text, &set, &space, Some(&proxies), choice);
    }
}

fn same_as_lightgbm(
    text: &str,
    set: &TrainingSet,
    space: &Nb201,
    proxies: Option<&HashMap<Cell, ProxyValues>>,
    choice: &str,
) {
    let forest = Forest::parse(text).unwrap();
    let booster = lightgbm3::Booster::from_string(text).unwrap();

    // Every cell, plus rows with missing values to exercise default branches.
    let width = set.feature_names.len();
    let map = nasperf::features::FeatureMap::resolve(space, &set.feature_names).unwrap();
    // With proxies: every proxy for two cells in three, one missing for the
    // third; and none for every cell.
    let mut rows: Vec<f64> = Vec::new();
    for (k, c) in Cell::all().enumerate() {
        let f = space.features(&c);
        let mut sent = proxies.and_then(|p| p.get(&c.canonical()).copied());
        if k % 3 == 2
            && let Some(p) = sent.as_mut()
        {
            p.0[0] = f64::NAN;
        }
        if sent.is_some() {
            map.push_row(&f, sent.as_ref(), &mut rows);
        }
        map.push_row(&f, None, &mut rows);
    }
    let mut nan_row = rows[..width].to_vec();
    for v in nan_row.iter_mut().step_by(2) {
        *v = f64::NAN;
    }
    rows.extend(nan_row);
    let theirs = booster.predict(&rows, width as i32, true).unwrap();
    for (i, row) in rows.chunks(width).enumerate() {
        let ours = forest.predict(row);
        let rel = (ours - theirs[i]).abs() / theirs[i].abs().max(1e-12);
        assert!(
            rel <= 1e-9,
            "{choice}, row {i}: ours {ours} vs LightGBM {}",
            theirs[i]
        );
    }
}

/// The served type is plain data shared through `Arc`: many threads
/// predicting at once get exactly what one thread gets.
#[test]
fn one_model_serves_many_threads_identically() {
    use std::sync::Arc;

    use nasperf::{model::Model, space::SearchSpaces, train::train_objective};

    let dir = common::benchdata();
    let obj = objective("cifar10/val_acc_200ep");
    let proxies = bench::load_proxies(&dir, Dataset::Cifar10).unwrap();
    let config = TrainConfig::with_rounds(100);
    let trained =
        train_objective(&dir, &obj, proxies.as_ref().map(cifar10_proxies), &config).unwrap();
    let model = Arc::new(
        Model::from_parts(
            trained.manifest,
            &trained.model_text,
            &SearchSpaces::builtin(),
        )
        .unwrap(),
    );
    let space = Nb201::new();
    let features: Arc<Vec<Vec<f64>>> = Arc::new(Cell::all().map(|c| space.features(&c)).collect());
    let sequential: Vec<f64> = {
        let mut row = Vec::new();
        features
            .iter()
            .map(|f| model.predict(f, None, &mut row))
            .collect()
    };
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (model, features) = (Arc::clone(&model), Arc::clone(&features));
            std::thread::spawn(move || {
                let mut row = Vec::new();
                // Each thread walks the cells in a different order.
                let n = features.len();
                (0..n)
                    .map(|k| {
                        let i = (k * 7 + t * 1_000) % n;
                        (i, model.predict(&features[i], None, &mut row))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for t in threads {
        for (i, v) in t.join().unwrap() {
            assert_eq!(v.to_bits(), sequential[i].to_bits(), "cell {i}");
        }
    }
}
