//! Retraining from the store, on SQLite and on PostgreSQL: the quality
//! gate promotes and refuses, too little data trains nothing, an operator
//! rolls back and pins, and a study's models move as files with identical
//! predictions. Models are trained by real LightGBM on real table rows.

#[macro_use]
mod common;

use common::{Network, networks};
use nasperf::{
    registry::Registry,
    retrain::{Outcome, RetrainConfig, Scope, retrain},
    space::SearchSpaces,
    store::{NewEvaluation, RecordOutcome, Store, models::ModelStatus},
    train::{
        TrainConfig,
        recipe::{Candidate, Choice, DEFAULT_ROUNDS},
    },
};

const OBJECTIVE: &str = "cifar10/val_acc_200ep";

on_both_backends!(
    a_first_model_is_promoted_and_served,
    a_worse_model_is_kept_as_a_candidate,
    too_little_data_trains_nothing,
    an_operator_rolls_back_and_pins,
    exported_models_import_with_identical_predictions,
    hardware_objectives_train_on_cells_as_sent,
    a_model_with_an_undefined_held_out_ranking_never_serves,
    pinning_while_a_promotion_lands_never_fails,
    a_strong_attack_learns_from_the_weaker_ones_the_study_measured,
    a_cifar100_objective_learns_from_the_cifar10_proxies_the_study_holds,
);

/// Small and quick, with the production recipe's shape.
fn config(iterations: u32) -> RetrainConfig {
    RetrainConfig {
        train: TrainConfig::with_rounds(iterations),
        jobs: 2,
        ..RetrainConfig::default()
    }
}

async fn record(store: &Store, study: &str, objective: &str, nets: &[Network]) {
    let batch: Vec<NewEvaluation> = nets
        .iter()
        .map(|n| NewEvaluation {
            study: study.to_owned(),
            search_space: "nb201".to_owned(),
            arch: n.arch.clone(),
            objective: objective.to_owned(),
            value: n.value,
            worker: "test".to_owned(),
            idempotency_key: format!("{study}:{objective}:{}", n.arch),
            dataset: if n.proxies.is_empty() {
                String::new()
            } else {
                "cifar10".to_owned()
            },
            proxies: n.proxies.clone(),
            ..Default::default()
        })
        .collect();
    for outcome in store.record(&batch).await.expect("record") {
        assert!(
            matches!(
                outcome,
                RecordOutcome::Stored | RecordOutcome::AlreadyStored
            ),
            "{outcome:?}"
        );
    }
}

async fn study_with(store: &Store, study: &str, n: usize) -> Vec<Network> {
    store.create_study(study, "").await.expect("study");
    let nets = networks(OBJECTIVE);
    record(store, study, OBJECTIVE, &nets[..n]).await;
    nets
}

fn scope(study: &str, force: bool) -> Scope {
    Scope {
        study: study.to_owned(),
        objectives: vec![OBJECTIVE.to_owned()],
        force,
        min_new_evaluations: None,
    }
}

async fn a_first_model_is_promoted_and_served(store: &Store) {
    let nets = study_with(store, "s", 400).await;
    let reports = retrain(store, &config(150), &scope("s", false))
        .await
        .expect("retrain");
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert_eq!(r.outcome, Outcome::Promoted { replaced: None }, "{r:?}");
    // The fixed split holds out about a fifth.
    assert_eq!(r.training_rows + r.heldout_rows, 400);
    assert!((60..=100).contains(&r.heldout_rows), "{r:?}");
    assert!(r.kendall_tau.expect("tau") > 0.5, "{r:?}");

    // Every replica's loader sees it and serves it for the study.
    let registry = Registry::for_store(SearchSpaces::builtin());
    let report = registry.sync_from_store(store).await.expect("sync");
    assert_eq!(report.loaded, vec![format!("s/{OBJECTIVE}")]);
    let snapshot = registry.snapshot();
    let served = snapshot.resolve("s", OBJECTIVE).expect("served");
    assert_eq!(served.study, "s");
    let model = served.entry.model.as_ref().expect("model");
    assert_eq!(Some(&model.manifest.version), r.version.as_ref());
    // And predicts networks it never saw in the right order, mostly.
    let space = SearchSpaces::builtin();
    let nb201 = space.get("nb201").expect("nb201");
    let unseen = &nets[400..1400];
    let mut row = Vec::new();
    let pred: Vec<f64> = unseen
        .iter()
        .map(|n| {
            let parsed = nb201.parse(&n.arch).expect("arch");
            model.predict(&parsed.features, None, &mut row)
        })
        .collect();
    let truth: Vec<f64> = unseen.iter().map(|n| n.value).collect();
    let tau = nasperf::train::metrics::kendall_tau_b(&pred, &truth);
    assert!(tau > 0.5, "tau on unseen networks {tau}");

    // Unchanged data is not trained again; the watermark still moves.
    let again = retrain(store, &config(150), &scope("s", false))
        .await
        .expect("retrain");
    assert_eq!(again[0].outcome, Outcome::Unchanged, "{:?}", again[0]);
    let listed = store.list_models("s", OBJECTIVE).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, ModelStatus::Active);
    assert!(
        listed[0].decision.contains("no serving version"),
        "{}",
        listed[0].decision
    );
}

async fn a_worse_model_is_kept_as_a_candidate(store: &Store) {
    study_with(store, "s", 400).await;
    let first = retrain(store, &config(200), &scope("s", false))
        .await
        .expect("retrain");
    let good = first[0].version.clone().expect("version");
    // Two rounds of stumps at a tiny learning rate: a real model, and a
    // much worse one on the same held-out rows.
    let mut weak = config(DEFAULT_ROUNDS);
    weak.train.recipe.choices = vec![Choice::single(Candidate::new(
        "stumps",
        serde_json::json!({
            "objective": "regression",
            "num_iterations": 2,
            "learning_rate": 0.001,
            "num_leaves": 2,
        }),
    ))];
    weak.train.use_proxies = false;
    let second = retrain(store, &weak, &scope("s", true))
        .await
        .expect("retrain");
    let r = &second[0];
    let Outcome::Candidate { reason } = &r.outcome else {
        panic!("expected a refusal, got {r:?}");
    };
    assert!(
        reason.contains("worse than the serving version"),
        "{reason}"
    );
    assert!(r.kendall_tau.expect("tau") < r.baseline_kendall_tau.expect("baseline"));
    // The baseline is the serving version's figure on the same rows.
    let base = r.baseline_kendall_tau.expect("baseline");
    assert!(
        (base - first[0].kendall_tau.expect("tau")).abs() < 1e-9,
        "{base} vs {:?}",
        first[0].kendall_tau
    );

    let serving = store.serving_versions().await.expect("serving");
    assert_eq!(serving.len(), 1);
    assert_eq!(serving[0].version, good, "the good version still serves");
    let listed = store.list_models("s", OBJECTIVE).await.expect("list");
    let candidate = listed
        .iter()
        .find(|m| Some(&m.version) == r.version.as_ref())
        .expect("candidate listed");
    assert_eq!(candidate.status, ModelStatus::Candidate);
    assert!(
        candidate.decision.contains("worse"),
        "{}",
        candidate.decision
    );
    let attempts = store.training_states("s").await.expect("states");
    assert_eq!(attempts[0].2.outcome, "candidate");
}

async fn too_little_data_trains_nothing(store: &Store) {
    study_with(store, "small", 15).await;
    let reports = retrain(store, &config(50), &scope("small", false))
        .await
        .expect("retrain");
    let r = &reports[0];
    assert_eq!(r.outcome, Outcome::TooLittleData, "{r:?}");
    assert!(
        r.message.contains("at least 20 and 10 are needed"),
        "{}",
        r.message
    );
    assert!(
        store
            .list_models("small", "")
            .await
            .expect("list")
            .is_empty()
    );
    assert!(store.serving_versions().await.expect("serving").is_empty());
    // The reason is kept for ListModels.
    let attempts = store.training_states("small").await.expect("states");
    assert_eq!(attempts[0].2.outcome, "too_little_data");
}

async fn an_operator_rolls_back_and_pins(store: &Store) {
    let nets = study_with(store, "s", 300).await;
    let first = retrain(store, &config(100), &scope("s", false))
        .await
        .expect("retrain")[0]
        .version
        .clone()
        .expect("v1");
    record(store, "s", OBJECTIVE, &nets[300..600]).await;
    let second = retrain(store, &config(100), &scope("s", false))
        .await
        .expect("retrain");
    assert!(
        matches!(second[0].outcome, Outcome::Promoted { .. }),
        "{:?}",
        second[0]
    );
    let v2 = second[0].version.clone().expect("v2");

    // Roll back to v1: it serves, pinned.
    let replaced = store
        .activate_model("s", OBJECTIVE, &first)
        .await
        .expect("activate");
    assert_eq!(replaced.as_deref(), Some(v2.as_str()));
    let status = |models: &[nasperf::store::models::StoredModel], v: &str| {
        models
            .iter()
            .find(|m| m.version == v)
            .expect("listed")
            .status
    };
    let listed = store.list_models("s", OBJECTIVE).await.expect("list");
    assert_eq!(status(&listed, &first), ModelStatus::Pinned);
    assert_eq!(status(&listed, &v2), ModelStatus::Retired);

    // A better model does not replace a pin.
    let third = retrain(store, &config(100), &scope("s", true))
        .await
        .expect("retrain");
    let Outcome::Candidate { reason } = &third[0].outcome else {
        panic!("expected the pin to hold, got {:?}", third[0]);
    };
    assert!(reason.contains("is pinned"), "{reason}");
    assert_eq!(
        store.serving_versions().await.expect("serving")[0].version,
        first
    );

    // Unpinned, promotion resumes.
    assert_eq!(
        store.unpin_model("s", OBJECTIVE).await.expect("unpin"),
        first
    );
    assert!(
        store.unpin_model("s", OBJECTIVE).await.is_err(),
        "nothing pinned now"
    );
    let fourth = retrain(store, &config(100), &scope("s", true))
        .await
        .expect("retrain");
    assert!(
        matches!(fourth[0].outcome, Outcome::Promoted { .. }),
        "{:?}",
        fourth[0]
    );
    assert!(
        store
            .activate_model("s", OBJECTIVE, "no-such-version")
            .await
            .is_err()
    );
}

async fn exported_models_import_with_identical_predictions(store: &Store) {
    study_with(store, "s", 300).await;
    retrain(store, &config(100), &scope("s", false))
        .await
        .expect("retrain");
    let dir = tempfile::tempdir().expect("dir");
    let exported = nasperf::commands::models::export(store, "s", dir.path())
        .await
        .expect("export");
    assert_eq!(exported, 1);

    // Into a fresh SQLite store, under another study name.
    let other_dir = tempfile::tempdir().expect("dir");
    let other = Store::open(None, other_dir.path()).await.expect("store");
    let imported = nasperf::commands::models::import(&other, "copy", dir.path(), false)
        .await
        .expect("import");
    assert_eq!(imported, 1);

    let a = Registry::for_store(SearchSpaces::builtin());
    a.sync_from_store(store).await.expect("sync");
    let b = Registry::for_store(SearchSpaces::builtin());
    b.sync_from_store(&other).await.expect("sync");
    let (sa, sb) = (a.snapshot(), b.snapshot());
    let ma = sa
        .resolve("s", OBJECTIVE)
        .and_then(|r| r.entry.model.clone())
        .expect("a");
    let mb = sb
        .resolve("copy", OBJECTIVE)
        .and_then(|r| r.entry.model.clone())
        .expect("b");
    assert_eq!(ma.manifest, mb.manifest);
    let spaces = SearchSpaces::builtin();
    let nb201 = spaces.get("nb201").expect("nb201");
    let mut row = Vec::new();
    for cell in nasperf::space::nb201::cell::Cell::all() {
        let parsed = nb201.parse(&cell.to_op_codes()).expect("cell");
        let (x, y) = (
            ma.predict(&parsed.features, None, &mut row),
            mb.predict(&parsed.features, None, &mut row),
        );
        assert_eq!(x.to_bits(), y.to_bits(), "{}", cell.to_op_codes());
    }
    other.close().await;
}

async fn hardware_objectives_train_on_cells_as_sent(store: &Store) {
    const HW: &str = "cifar10/edgegpu_latency";
    store.create_study("hw", "").await.expect("study");
    // Every cell of the table, twins included.
    let dir = common::benchdata();
    let objective = nasperf::objectives::get(HW).expect("objective");
    let rows = nasperf::bench::load_objective(&dir, objective).expect("table");
    let nets: Vec<Network> = rows
        .iter()
        .take(600)
        .map(|m| Network {
            arch: m.cell.to_op_codes(),
            value: m.value,
            proxies: Default::default(),
        })
        .collect();
    record(store, "hw", HW, &nets).await;
    let reports = retrain(
        store,
        &config(100),
        &Scope {
            study: "hw".to_owned(),
            objectives: vec![HW.to_owned()],
            ..Scope::default()
        },
    )
    .await
    .expect("retrain");
    let r = &reports[0];
    assert!(matches!(r.outcome, Outcome::Promoted { .. }), "{r:?}");
    // One row per cell as sent: no averaging over canonical twins.
    assert_eq!(r.training_rows + r.heldout_rows, 600);
}

/// Where a study holds no proxies of an objective's own dataset, its model
/// learns from those of a stand-in of the same input size (CIFAR-10's for
/// a CIFAR-100 objective), and says so: the server then reads proxies sent
/// as CIFAR-10's for it.
async fn a_cifar100_objective_learns_from_the_cifar10_proxies_the_study_holds(store: &Store) {
    const C100: &str = "cifar100/test_acc_200ep";
    store.create_study("c100", "").await.expect("study");
    let cifar10: std::collections::HashMap<String, _> = networks(OBJECTIVE)
        .into_iter()
        .map(|n| (n.arch, n.proxies))
        .collect();
    let nets: Vec<Network> = networks(C100)
        .into_iter()
        .take(400)
        .map(|mut n| {
            n.proxies = cifar10.get(&n.arch).cloned().unwrap_or_default();
            n
        })
        .collect();
    assert!(nets.iter().all(|n| !n.proxies.is_empty()));
    // `record` files them as computed on CIFAR-10.
    record(store, "c100", C100, &nets).await;
    let reports = retrain(
        store,
        &config(100),
        &Scope {
            study: "c100".to_owned(),
            objectives: vec![C100.to_owned()],
            ..Scope::default()
        },
    )
    .await
    .expect("retrain");
    let r = &reports[0];
    assert!(matches!(r.outcome, Outcome::Promoted { .. }), "{r:?}");
    let registry = Registry::for_store(SearchSpaces::builtin());
    registry.sync_from_store(store).await.expect("sync");
    let snapshot = registry.snapshot();
    let served = snapshot.resolve("c100", C100).expect("served");
    let model = served.entry.model.as_ref().expect("model");
    assert!(model.feature_map().uses_proxies());
    assert_eq!(model.manifest.proxy_dataset.as_deref(), Some("cifar10"));
    assert_eq!(model.proxy_dataset, nasperf::dataset::Dataset::Cifar10);
}

/// Retraining reads what the study measured of the same attack at smaller
/// strengths: the recipe's family choice is tried on it, and a weaker
/// attack's new measurement is new training data for the strong one.
async fn a_strong_attack_learns_from_the_weaker_ones_the_study_measured(store: &Store) {
    const TARGET: &str = "cifar10/pgd_eps2";
    store.create_study("attacks", "").await.expect("study");
    let nets = networks(TARGET);
    let measured: std::collections::BTreeSet<&str> =
        nets[..200].iter().map(|n| n.arch.as_str()).collect();
    record(store, "attacks", TARGET, &nets[..200]).await;
    let weaker = |objective: &str| -> Vec<Network> {
        networks(objective)
            .into_iter()
            .filter(|n| measured.contains(n.arch.as_str()))
            .collect()
    };
    let (eps_half, eps1) = (weaker("cifar10/pgd_eps0.5"), weaker("cifar10/pgd_eps1"));
    assert_eq!((eps_half.len(), eps1.len()), (200, 200));
    record(store, "attacks", "cifar10/pgd_eps0.5", &eps_half).await;
    // Eps 1 of one network is still missing.
    record(store, "attacks", "cifar10/pgd_eps1", &eps1[..199]).await;
    let scope = Scope {
        study: "attacks".to_owned(),
        objectives: vec![TARGET.to_owned()],
        ..Scope::default()
    };
    let first = retrain(store, &config(100), &scope).await.expect("retrain");
    assert!(
        matches!(first[0].outcome, Outcome::Promoted { .. }),
        "{:?}",
        first[0]
    );
    let models = store.list_models("attacks", TARGET).await.expect("list");
    let recipe = &models[0].manifest.trainer["recipe"];
    // The recipe's own family choice, whatever its members are.
    let family = Choice::all()
        .into_iter()
        .find(|c| c.family)
        .expect("the recipe has a family choice")
        .name();
    let family_tau = &recipe["inner_cv"]["kendall_tau"][family.as_str()];
    assert!(family_tau.is_number(), "the family was tried: {recipe}");

    // The missing measurement arrives: the strong attack has no new row of
    // its own, but new data to learn from.
    record(store, "attacks", "cifar10/pgd_eps1", &eps1[199..]).await;
    let second = retrain(store, &config(100), &scope).await.expect("retrain");
    assert_ne!(second[0].outcome, Outcome::Unchanged, "{:?}", second[0]);
    // Nothing new at all: unchanged.
    let third = retrain(store, &config(100), &scope).await.expect("retrain");
    assert_eq!(third[0].outcome, Outcome::Unchanged, "{:?}", third[0]);
}

async fn a_model_with_an_undefined_held_out_ranking_never_serves(store: &Store) {
    // Every network measured at the same value: any ranking of the
    // held-out rows is undefined.
    store.create_study("flat", "").await.expect("study");
    let nets: Vec<Network> = networks(OBJECTIVE)[..200]
        .iter()
        .map(|n| Network {
            value: 50.0,
            ..n.clone()
        })
        .collect();
    record(store, "flat", OBJECTIVE, &nets).await;
    let reports = retrain(store, &config(50), &scope("flat", false))
        .await
        .expect("retrain");
    let r = &reports[0];
    let Outcome::Candidate { reason } = &r.outcome else {
        panic!("expected a refusal, got {r:?}");
    };
    assert!(reason.contains("undefined"), "{reason}");
    assert!(store.serving_versions().await.expect("serving").is_empty());
    // The candidate's manifest, NaN and all, reads back from the store,
    // and a later retraining still works.
    let listed = store.list_models("flat", OBJECTIVE).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert!(listed[0].manifest.heldout.kendall_tau.is_nan());
    let again = retrain(store, &config(50), &scope("flat", true))
        .await
        .expect("retrain again");
    assert!(
        matches!(again[0].outcome, Outcome::Candidate { .. }),
        "{:?}",
        again[0]
    );
}

/// An operator's ActivateModel and UnpinModel racing promotions of new
/// versions (the soak hit this once as INTERNAL: two versions made to
/// serve at once). Every call must succeed and exactly one version serve.
async fn pinning_while_a_promotion_lands_never_fails(store: &Store) {
    study_with(store, "race", 300).await;
    let first = retrain(store, &config(20), &scope("race", false))
        .await
        .expect("retrain")[0]
        .version
        .clone()
        .expect("v1");
    let (manifest, text) = store
        .model_text("race", OBJECTIVE, &first)
        .await
        .expect("stored");
    let operator = async {
        for _ in 0..40 {
            store
                .activate_model("race", OBJECTIVE, &first)
                .await
                .expect("activate");
            store.unpin_model("race", OBJECTIVE).await.expect("unpin");
        }
    };
    let trainer = async {
        for k in 0..40 {
            let mut m = manifest.clone();
            m.version = format!("{first}-race{k}");
            store
                .save_model(nasperf::store::models::NewModel {
                    study: "race",
                    manifest: &m,
                    model_text: &text,
                    baseline_kendall_tau: None,
                    promote: true,
                    pin: false,
                    decision: "race".to_owned(),
                    max_evaluation_id: 0,
                })
                .await
                .expect("save");
        }
    };
    futures::join!(operator, trainer);
    let serving = store
        .list_models("race", OBJECTIVE)
        .await
        .expect("list")
        .into_iter()
        .filter(|m| m.status.serves())
        .count();
    assert_eq!(serving, 1);
}
