//! The catalogue of objectives: stable IDs `<dataset>/<metric>`, what each
//! measures, and where the benchmark tables hold it. `docs/objectives.md`
//! is generated from this table (`nasperf objectives --markdown`) and is the
//! contract other components rely on.

use crate::{dataset::Dataset, space::nb201};

/// What an objective depends on, which decides how training rows are formed
/// and which features a model sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectiveKind {
    /// Accuracy of the trained network: a function of what the network
    /// computes, so of the canonical cell.
    Accuracy,
    /// Accuracy under adversarial attack: also of the canonical cell.
    Robustness,
    /// Latency, energy and other costs of running the cell on a device: a
    /// dead operation still runs, so of the cell as sent.
    Hardware,
}

impl ObjectiveKind {
    /// Whether cells of one canonical group share the objective's value
    /// (their measurements are averaged into one training row).
    pub fn depends_on_canonical_cell(self) -> bool {
        matches!(self, ObjectiveKind::Accuracy | ObjectiveKind::Robustness)
    }

    pub fn name(self) -> &'static str {
        match self {
            ObjectiveKind::Accuracy => "accuracy",
            ObjectiveKind::Robustness => "robustness",
            ObjectiveKind::Hardware => "hardware",
        }
    }
}

/// Where a benchmark table keeps an objective's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableColumn {
    /// The file, relative to the benchmark directory.
    pub file: &'static str,
    /// The column holding the architecture key.
    pub key_column: &'static str,
    /// The column holding the value.
    pub column: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Objective {
    /// The stable ID, `<dataset>/<metric>`.
    pub id: String,
    pub dataset: Dataset,
    pub search_space: &'static str,
    pub kind: ObjectiveKind,
    /// Unit of the values: `%`, `ms`, `mJ`, `s`, `FLOP/B`.
    pub unit: &'static str,
    /// The training budget the value was measured with, e.g. `200 epochs`.
    pub fidelity: &'static str,
    /// A value that means "not measured" in the table, skipped in training.
    pub missing_sentinel: Option<f64>,
    pub source: TableColumn,
    /// One line for people.
    pub description: String,
}

pub const ACC_200EP_FILE: &str = "nb201-groundtruth/robot_nb201_test_acc_200ep.csv";
pub const ACC_12EP_FILE: &str = "nb201-groundtruth/bayeswatch_mini-bench-arch-cell-accs_12ep.csv";
pub const COST_12EP_FILE: &str = "nb201-groundtruth/robot_nb201_cifar10_hp12_info.csv";
pub const ROBUSTNESS_FILE: &str = "nb201-robustness/zccombine_robustness_targets_cifar10.csv";

/// The validation-accuracy file of a dataset, 9,445 canonical networks.
pub fn valid_nets_file(ds: Dataset) -> Option<&'static str> {
    match ds {
        Dataset::Cifar10 => Some("nb201-groundtruth/zccombine_nb201_cifar10_valid_nets.csv"),
        Dataset::ImageNet16_120 => {
            Some("nb201-groundtruth/zccombine_nb201_ImageNet16-120_valid_nets.csv")
        }
        Dataset::Cifar100 => None,
    }
}

pub fn hardware_file(ds: Dataset) -> &'static str {
    match ds {
        Dataset::Cifar10 => "hw-nas-bench/zccombine_hw_cifar10.csv",
        Dataset::Cifar100 => "hw-nas-bench/zccombine_hw_cifar100.csv",
        Dataset::ImageNet16_120 => "hw-nas-bench/zccombine_hw_ImageNet16-120.csv",
    }
}

/// HW-NAS-Bench columns: (column, unit, description).
const HARDWARE_METRICS: [(&str, &str, &str); 10] = [
    (
        "edgegpu_latency",
        "ms",
        "latency on an NVIDIA edge GPU (Jetson TX2)",
    ),
    (
        "edgegpu_energy",
        "mJ",
        "energy on an NVIDIA edge GPU (Jetson TX2)",
    ),
    ("raspi4_latency", "ms", "latency on a Raspberry Pi 4"),
    ("edgetpu_latency", "ms", "latency on a Google Edge TPU"),
    ("pixel3_latency", "ms", "latency on a Pixel 3 phone"),
    ("eyeriss_latency", "ms", "latency on the Eyeriss ASIC"),
    ("eyeriss_energy", "mJ", "energy on the Eyeriss ASIC"),
    (
        "eyeriss_arithmetic_intensity",
        "FLOP/B",
        "arithmetic intensity on the Eyeriss ASIC",
    ),
    ("fpga_latency", "ms", "latency on an FPGA"),
    ("fpga_energy", "mJ", "energy on an FPGA"),
];

/// Robustness attacks: (column prefix, ID prefix, description, strengths).
const ATTACKS: [(&str, &str, &str, &[&str]); 4] = [
    (
        "aa_apgd-ce",
        "apgd_ce",
        "AutoAttack APGD-CE",
        &["0.1", "0.5", "1.0", "2.0", "3.0", "4.0", "8.0"],
    ),
    (
        "aa_square",
        "square",
        "AutoAttack Square",
        &["0.1", "0.5", "1.0", "2.0", "3.0", "4.0", "8.0"],
    ),
    (
        "fgsm",
        "fgsm",
        "FGSM",
        &[
            "0.1", "0.5", "1.0", "2.0", "3.0", "4.0", "5.0", "6.0", "7.0", "8.0", "255.0",
        ],
    ),
    (
        "pgd",
        "pgd",
        "PGD",
        &["0.1", "0.5", "1.0", "2.0", "3.0", "4.0", "8.0"],
    ),
];

/// Every objective nasperf knows, in a stable order.
pub fn catalogue() -> Vec<Objective> {
    let mut out = Vec::new();
    let mut push = |dataset: Dataset,
                    metric: &str,
                    kind: ObjectiveKind,
                    unit: &'static str,
                    fidelity: &'static str,
                    file: &'static str,
                    key_column: &'static str,
                    column: &str,
                    description: String| {
        out.push(Objective {
            id: format!("{dataset}/{metric}"),
            dataset,
            search_space: nb201::NAME,
            kind,
            unit,
            fidelity,
            missing_sentinel: if column == "edgetpu_latency" {
                Some(-1.0)
            } else {
                None
            },
            source: TableColumn {
                file,
                key_column,
                column: column.to_owned(),
            },
            description,
        });
    };
    use Dataset::*;
    use ObjectiveKind::*;

    for (ds, column) in [
        (Cifar10, "cifar10_test_acc"),
        (Cifar100, "cifar100_test_acc"),
        (ImageNet16_120, "imagenet16_120_test_acc"),
    ] {
        push(
            ds,
            "test_acc_200ep",
            Accuracy,
            "%",
            "200 epochs",
            ACC_200EP_FILE,
            "arch_str",
            column,
            format!("{ds} test accuracy after 200 epochs"),
        );
    }
    for ds in [Cifar10, ImageNet16_120] {
        if let Some(file) = valid_nets_file(ds) {
            push(
                ds,
                "val_acc_200ep",
                Accuracy,
                "%",
                "200 epochs",
                file,
                "net",
                "val_accs",
                format!("{ds} validation accuracy after 200 epochs (NAS-Bench-Suite-Zero)"),
            );
        }
    }
    for (ds, prefix) in [
        (Cifar10, "cifar10"),
        (Cifar100, "cifar100"),
        (ImageNet16_120, "imagenet"),
    ] {
        for (split, metric) in [("test", "test_acc_12ep"), ("val", "val_acc_12ep")] {
            push(
                ds,
                metric,
                Accuracy,
                "%",
                "12 epochs",
                ACC_12EP_FILE,
                "cellstr",
                &format!("{prefix}-{split}"),
                format!("{ds} {split} accuracy after 12 epochs (low fidelity)"),
            );
        }
    }
    push(
        Cifar10,
        "train_time_12ep",
        Hardware,
        "s",
        "12 epochs",
        COST_12EP_FILE,
        "arch_str",
        "cost_12ep",
        "CIFAR-10 training time of the 12-epoch schedule, as NAS-Bench-201 reports it".to_owned(),
    );
    for ds in Dataset::ALL {
        for (column, unit, what) in HARDWARE_METRICS {
            push(
                ds,
                column,
                Hardware,
                unit,
                "measured",
                hardware_file(ds),
                "net",
                column,
                format!("{what}, {ds} network (HW-NAS-Bench)"),
            );
        }
    }
    for (prefix, id, name, strengths) in ATTACKS {
        for eps in strengths {
            let eps_id = eps.trim_end_matches(".0");
            push(
                Cifar10,
                &format!("{id}_eps{eps_id}"),
                Robustness,
                "%",
                "200 epochs",
                ROBUSTNESS_FILE,
                "net",
                &format!("{prefix}@Linf_eps-{eps}"),
                format!("CIFAR-10 accuracy under {name}, L-inf eps {eps_id}/255"),
            );
        }
    }
    out
}

/// The objective with this ID, from a catalogue built once: validation
/// looks objectives up per row.
pub fn get(id: &str) -> Option<&'static Objective> {
    CATALOGUE.iter().find(|o| o.id == id)
}

static CATALOGUE: std::sync::LazyLock<Vec<Objective>> = std::sync::LazyLock::new(catalogue);

/// The objectives whose measured values a model of `objective` may learn
/// from besides its own: the same attack at smaller strengths, weakest
/// first, and for the weakest strength the attack at none, the clean
/// accuracy of the same networks (none for any other objective). They are
/// measured on the same networks, and a network that resists a weak attack
/// tends to resist a stronger one, so their models rank the networks a
/// strong attack leaves few of, where few training rows hold any signal
/// of their own (`docs/quality.md`, "the same attack at smaller
/// epsilons"). Only values of the training networks are used, as for the
/// target itself: a served model never reads another objective's truth.
pub fn related(objective: &Objective) -> Vec<&'static Objective> {
    let Some((attack, strength)) = attack_and_strength(objective) else {
        return Vec::new();
    };
    let mut out: Vec<(&'static Objective, f64)> = CATALOGUE
        .iter()
        .filter(|o| o.source.file == objective.source.file && o.dataset == objective.dataset)
        .filter_map(|o| {
            let (a, s) = attack_and_strength(o)?;
            (a == attack && s < strength).then_some((o, s))
        })
        .collect();
    out.sort_by(|a, b| a.1.total_cmp(&b.1));
    if out.is_empty() {
        // The weakest strength: the attack at none, the clean accuracy.
        return clean_accuracy_of_attacked(objective).into_iter().collect();
    }
    out.into_iter().map(|(o, _)| o).collect()
}

/// The clean accuracy of the networks a robustness objective attacked:
/// Jung et al. attacked NAS-Bench-201's own CIFAR-10 networks, whose test
/// accuracy after 200 epochs ranks the 9,445 networks as the weakest
/// attacks (eps 0.1/255) do, to Spearman 0.96 to 0.98.
fn clean_accuracy_of_attacked(objective: &Objective) -> Option<&'static Objective> {
    (objective.kind == ObjectiveKind::Robustness && objective.dataset == Dataset::Cifar10)
        .then(|| get("cifar10/test_acc_200ep"))
        .flatten()
}

/// A robustness objective's attack (its column's prefix) and strength
/// (eps in 1/255), from its column `<attack>@Linf_eps-<eps>`.
fn attack_and_strength(objective: &Objective) -> Option<(&str, f64)> {
    if objective.kind != ObjectiveKind::Robustness {
        return None;
    }
    let (attack, eps) = objective.source.column.split_once("@Linf_eps-")?;
    Some((attack, eps.parse().ok()?))
}

/// The catalogue as the Markdown table of `docs/objectives.md`.
pub fn markdown() -> String {
    let mut s = String::from(
        "# Objectives\n\n\
         Generated by `nasperf objectives --markdown`; do not edit by hand. Objective IDs are \
         stable: clients, stored evaluations and models refer to them.\n\n\
         - *kind* decides the training rows: `accuracy` and `robustness` depend on what the \
         network computes, so cells with the same canonical key are one row (measurements \
         averaged); `hardware` depends on the cell as sent (a dead operation still runs), so \
         every cell is its own row.\n\
         - Files are relative to the benchmark directory (`--bench`, on this machine \
         `../shared/benchdata`). A *sentinel* value means \"not measured\" and is skipped.\n\n\
         | ID | kind | unit | fidelity | file | column | sentinel | description |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for o in catalogue() {
        s.push_str(&format!(
            "| `{}` | {} | {} | {} | `{}` | `{}` | {} | {} |\n",
            o.id,
            o.kind.name(),
            o.unit,
            o.fidelity,
            o.source.file,
            o.source.column,
            o.missing_sentinel.map_or(String::new(), |v| v.to_string()),
            o.description
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_well_formed() {
        let cat = catalogue();
        let ids: std::collections::BTreeSet<_> = cat.iter().map(|o| o.id.clone()).collect();
        assert_eq!(ids.len(), cat.len());
        for id in [
            "cifar10/val_acc_200ep",
            "cifar10/pgd_eps1",
            "cifar10/edgegpu_latency",
            "cifar10/fgsm_eps0.5",
        ] {
            assert!(ids.contains(id), "{id}");
        }
        // 3 + 2 + 6 accuracies, 1 + 30 hardware, 32 robustness.
        assert_eq!(cat.len(), 74);
    }

    #[test]
    fn related_objectives_are_the_same_attack_at_smaller_strengths() {
        let ids = |id: &str| -> Vec<String> {
            related(get(id).expect("in the catalogue"))
                .iter()
                .map(|o| o.id.clone())
                .collect()
        };
        assert_eq!(
            ids("cifar10/apgd_ce_eps3"),
            [
                "cifar10/apgd_ce_eps0.1",
                "cifar10/apgd_ce_eps0.5",
                "cifar10/apgd_ce_eps1",
                "cifar10/apgd_ce_eps2"
            ]
        );
        assert_eq!(ids("cifar10/fgsm_eps255").len(), 10);
        // The weakest strength learns from the attack at none.
        assert_eq!(ids("cifar10/pgd_eps0.1"), ["cifar10/test_acc_200ep"]);
        assert_eq!(ids("cifar10/val_acc_200ep"), Vec::<String>::new());
        assert_eq!(ids("cifar10/eyeriss_energy"), Vec::<String>::new());
        // Every robustness objective has some: all of its own attack, or
        // the clean accuracy alone.
        for o in catalogue()
            .iter()
            .filter(|o| o.kind == ObjectiveKind::Robustness)
        {
            let related = related(o);
            assert!(!related.is_empty(), "{}", o.id);
            if related[0].kind == ObjectiveKind::Accuracy {
                assert_eq!(related.len(), 1);
                continue;
            }
            for r in related {
                assert_eq!(r.kind, ObjectiveKind::Robustness);
                let attack = |c: &str| c.split('@').next().map(str::to_owned);
                assert_eq!(attack(&r.source.column), attack(&o.source.column));
            }
        }
    }

    #[test]
    fn docs_are_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/objectives.md");
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == markdown(),
            "docs/objectives.md is stale: run `cargo run -- objectives --markdown > docs/objectives.md`"
        );
    }
}
