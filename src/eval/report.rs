//! The protocol's figures side by side: our recipe against the best
//! reference model and feature set, per objective and train size.

use std::{collections::BTreeMap, fmt::Write};

use serde::Serialize;

use super::{ObjectiveData, Run, reference::ReferenceRun};

/// Mean and standard deviation (n - 1) over seeds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Spread {
    pub mean: f64,
    pub std: f64,
    pub n: usize,
}

impl Spread {
    pub fn of(values: impl IntoIterator<Item = f64>) -> Spread {
        let v: Vec<f64> = values.into_iter().collect();
        let n = v.len();
        if n == 0 {
            return Spread {
                mean: f64::NAN,
                std: f64::NAN,
                n,
            };
        }
        let mean = v.iter().sum::<f64>() / n as f64;
        let std = if n > 1 {
            (v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        Spread { mean, std, n }
    }
}

/// Where the reference is 0.99 or more, being within this of it counts as
/// level (there is no room left to be ahead).
pub const CEILING: f64 = 0.99;
pub const CEILING_TOLERANCE: f64 = 0.003;

/// One objective at one train size.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    pub objective: String,
    pub train_size: usize,
    pub feature_set: String,
    pub kendall_tau: Spread,
    pub spearman_rho: Spread,
    pub top_precision: Spread,
    pub coverage: Spread,
    /// What the recipe chose, and how often.
    pub chosen: BTreeMap<String, usize>,
    /// The best reference model and feature set by mean Kendall tau.
    pub reference: Option<ReferenceCell>,
    /// The test networks sent without their proxies, where the runs
    /// scored them ([`super::Protocol::without_proxies`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub without_proxies: Option<WithoutProxiesCell>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WithoutProxiesCell {
    pub kendall_tau: Spread,
    pub top_precision: Spread,
    pub coverage: Spread,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReferenceCell {
    pub model: String,
    pub feature_set: String,
    pub kendall_tau: Spread,
    pub spearman_rho: Spread,
    /// The best top-5% precision of any reference model and feature set.
    pub top_precision: Spread,
    /// Split by split: ours minus the best reference model's Kendall tau.
    pub same_split: SameSplit,
}

/// The comparison made on each split: both sides saw the same training
/// networks, so the split's luck, which moves both taus alike, drops out of
/// the difference. The bar of the report ("clearly") stays on the two
/// sides' spreads; this is what a reader needs to tell a steady small lead
/// from a lucky one.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct SameSplit {
    /// Ours minus the reference's tau, over the seeds both sides ran.
    pub difference: Spread,
    /// Seeds on whose split ours was higher.
    pub wins: usize,
}

impl SameSplit {
    /// Pairs the two sides' taus by seed; seeds only one side ran are left
    /// out rather than compared with another split.
    pub fn of(ours: &BTreeMap<u64, f64>, reference: &[(u64, f64)]) -> SameSplit {
        let differences: Vec<f64> = reference
            .iter()
            .filter_map(|(seed, theirs)| ours.get(seed).map(|o| o - theirs))
            .collect();
        SameSplit {
            wins: differences.iter().filter(|d| **d > 0.0).count(),
            difference: Spread::of(differences),
        }
    }

    /// Whether ours was higher on every split both sides ran (and there
    /// was at least one).
    pub fn on_every_split(&self) -> bool {
        self.difference.n > 0 && self.wins == self.difference.n
    }
}

impl Cell {
    /// Ahead of the reference (or level with it near the ceiling).
    pub fn ahead(&self) -> Option<bool> {
        let r = self.reference.as_ref()?;
        let ours = self.kendall_tau.mean;
        Some(if r.kendall_tau.mean >= CEILING {
            ours >= r.kendall_tau.mean - CEILING_TOLERANCE
        } else {
            ours > r.kendall_tau.mean
        })
    }

    /// Ahead by more than one standard deviation over seeds (the larger of
    /// the two sides').
    pub fn clearly_ahead(&self) -> Option<bool> {
        let r = self.reference.as_ref()?;
        let std = self.kendall_tau.std.max(r.kendall_tau.std);
        Some(self.kendall_tau.mean - r.kendall_tau.mean > std)
    }
}

/// Groups runs into cells, one per (objective, feature set, train size).
pub fn cells(runs: &[Run], reference: &[ReferenceRun]) -> Vec<Cell> {
    let mut groups: BTreeMap<(String, String, usize), Vec<&Run>> = BTreeMap::new();
    for r in runs {
        groups
            .entry((r.objective.clone(), r.feature_set.clone(), r.train_size))
            .or_default()
            .push(r);
    }
    // Reference runs by (objective, train size) then (model, feature set).
    type ByModel<'a> = BTreeMap<(String, String), Vec<&'a ReferenceRun>>;
    let mut refs: BTreeMap<(String, usize), ByModel> = BTreeMap::new();
    for r in reference {
        refs.entry((r.objective.clone(), r.train_size))
            .or_default()
            .entry((r.model.clone(), r.feature_set.clone()))
            .or_default()
            .push(r);
    }
    groups
        .into_iter()
        .map(|((objective, feature_set, train_size), rs)| {
            let mut chosen = BTreeMap::new();
            for r in &rs {
                *chosen.entry(r.chosen.clone()).or_insert(0) += 1;
            }
            let reference = refs.get(&(objective.clone(), train_size)).and_then(|by| {
                let best = by.iter().max_by(|a, b| {
                    let tau =
                        |v: &Vec<&ReferenceRun>| Spread::of(v.iter().map(|r| r.kendall_tau)).mean;
                    tau(a.1).total_cmp(&tau(b.1))
                })?;
                let ours: BTreeMap<u64, f64> = rs.iter().map(|r| (r.seed, r.kendall_tau)).collect();
                let theirs: Vec<(u64, f64)> =
                    best.1.iter().map(|r| (r.seed, r.kendall_tau)).collect();
                let top = by
                    .values()
                    .map(|v| Spread::of(v.iter().map(|r| r.top_precision)))
                    .max_by(|a, b| a.mean.total_cmp(&b.mean))?;
                Some(ReferenceCell {
                    model: best.0.0.clone(),
                    feature_set: best.0.1.clone(),
                    kendall_tau: Spread::of(best.1.iter().map(|r| r.kendall_tau)),
                    spearman_rho: Spread::of(best.1.iter().map(|r| r.spearman_rho)),
                    top_precision: top,
                    same_split: SameSplit::of(&ours, &theirs),
                })
            });
            Cell {
                objective,
                train_size,
                feature_set,
                kendall_tau: Spread::of(rs.iter().map(|r| r.kendall_tau)),
                spearman_rho: Spread::of(rs.iter().map(|r| r.spearman_rho)),
                top_precision: Spread::of(rs.iter().map(|r| r.top_precision)),
                coverage: Spread::of(rs.iter().map(|r| r.coverage)),
                chosen,
                reference,
                without_proxies: rs
                    .iter()
                    .map(|r| r.without_proxies.as_ref())
                    .collect::<Option<Vec<_>>>()
                    .map(|w| WithoutProxiesCell {
                        kendall_tau: Spread::of(w.iter().map(|r| r.kendall_tau)),
                        top_precision: Spread::of(w.iter().map(|r| r.top_precision)),
                        coverage: Spread::of(w.iter().map(|r| r.coverage)),
                    }),
            }
        })
        .collect()
}

fn pm(s: &Spread) -> String {
    format!("{:.3} ± {:.3}", s.mean, s.std)
}

/// A share's spread in percent: an interval's coverage.
fn percent(s: &Spread) -> String {
    format!("{:.1}% ± {:.1}", 100.0 * s.mean, 100.0 * s.std)
}

/// Which objectives' proxies were computed on another dataset (a stand-in
/// of the same input size, [`crate::dataset::Dataset::proxy_sources`]),
/// one sentence each, for the report.
pub fn proxy_stand_ins(data: &[ObjectiveData]) -> Vec<String> {
    data.iter()
        .filter_map(|d| {
            let source = d.proxy_dataset?;
            (source != d.objective.dataset).then(|| {
                format!(
                    "`{}` reads the proxies of {source}: the tables have none of {}'s. \
                     The reference gets the same.",
                    d.objective.id, d.objective.dataset
                )
            })
        })
        .collect()
}

/// The report as Markdown. `command` is what produced it; `figures` the
/// PNG file names written beside it; `notes` sentences on the data, such
/// as [`proxy_stand_ins`].
pub fn markdown(
    cells: &[Cell],
    command: &str,
    seconds: f64,
    figures: &[String],
    notes: &[String],
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Prediction quality\n");
    let _ = writeln!(
        out,
        "Made by `{command}` in {seconds:.0} s for our side (the reference runner excluded).\n"
    );
    let _ = writeln!(
        out,
        "Kendall tau-b on every network not drawn for training (mean ± standard deviation over \
         seeds). The reference is the best of scikit-learn's random forest, XGBoost and LightGBM \
         (default settings) over every feature set, chosen per cell by its mean, on the same \
         splits. \"ahead\" means a higher mean (within {CEILING_TOLERANCE} where the reference \
         is {CEILING} or more); \"clearly\" means by more than the larger standard deviation. \
         \"Same split\" compares the two on each seed's split, where both saw the same \
         training networks: the mean and standard deviation of ours minus theirs, and on how \
         many splits ours was higher.\n"
    );
    for note in notes {
        let _ = writeln!(out, "- {note}");
    }
    if !notes.is_empty() {
        let _ = writeln!(out);
    }
    let _ = writeln!(
        out,
        "| objective | N | ours (features) | reference (best model, features) | Δ | same split | ahead |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for c in cells {
        let (reference, delta, same_split) = match &c.reference {
            Some(r) => (
                format!("{} ({}, {})", pm(&r.kendall_tau), r.model, r.feature_set),
                format!("{:+.3}", c.kendall_tau.mean - r.kendall_tau.mean),
                format!(
                    "{:+.3} ± {:.3}, {} of {}",
                    r.same_split.difference.mean,
                    r.same_split.difference.std,
                    r.same_split.wins,
                    r.same_split.difference.n
                ),
            ),
            None => ("not run".to_owned(), String::new(), String::new()),
        };
        let verdict = match (c.ahead(), c.clearly_ahead()) {
            (Some(true), Some(true)) => "clearly",
            (Some(true), _) => "yes",
            (Some(false), _) => "**no**",
            (None, _) => "",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} ({}) | {reference} | {delta} | {same_split} | {verdict} |",
            c.objective,
            c.train_size,
            pm(&c.kendall_tau),
            c.feature_set
        );
    }
    let with_ref: Vec<&Cell> = cells.iter().filter(|c| c.reference.is_some()).collect();
    if !with_ref.is_empty() {
        let ahead = with_ref.iter().filter(|c| c.ahead() == Some(true)).count();
        let clearly = with_ref
            .iter()
            .filter(|c| c.clearly_ahead() == Some(true))
            .count();
        let every_split = with_ref
            .iter()
            .filter(|c| {
                c.reference
                    .as_ref()
                    .is_some_and(|r| r.same_split.on_every_split())
            })
            .count();
        let _ = writeln!(
            out,
            "\nAhead in {ahead} of {} cells, clearly ahead in {clearly}; higher on every \
             split in {every_split}.\n",
            with_ref.len()
        );
    }

    let _ = writeln!(
        out,
        "\n## Where it matters: the top 5%, Spearman rho, the interval\n"
    );
    let _ = writeln!(
        out,
        "Top-5% precision: how many of the truly best 5% of the test networks are among the \
         predicted best 5% (the reference column is its best model and feature set by this \
         figure). Coverage: how often the true value falls inside the nominal 80% interval \
         (split-conformal on out-of-fold residuals of the chosen option, from a fresh \
         cross-validation of it on small training sets, carried along the learning curve to \
         all the training rows).\n"
    );
    let _ = writeln!(
        out,
        "| objective | N | top-5% ours | top-5% reference | Spearman ours | Spearman reference | 80% interval coverage | recipe chose |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
    for c in cells {
        let (top_ref, rho_ref) = c
            .reference
            .as_ref()
            .map(|r| (pm(&r.top_precision), pm(&r.spearman_rho)))
            .unwrap_or_default();
        let chosen: Vec<String> = c.chosen.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {top_ref} | {} | {rho_ref} | {} | {} |",
            c.objective,
            c.train_size,
            pm(&c.top_precision),
            pm(&c.spearman_rho),
            percent(&c.coverage),
            chosen.join(", ")
        );
    }
    let without: Vec<(&Cell, &WithoutProxiesCell)> = cells
        .iter()
        .filter_map(|c| c.without_proxies.as_ref().map(|w| (c, w)))
        .collect();
    if !without.is_empty() {
        let _ = writeln!(
            out,
            "\n## Candidates sent without proxies\n\nThe same test networks with their proxies \
             left out, answered by the trees the served model keeps for such candidates (trained \
             on the architecture alone, with their own interval).\n"
        );
        let _ = writeln!(
            out,
            "| objective | N | Kendall tau with proxies | Kendall tau without | top-5% without | 80% interval coverage without |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for (c, w) in without {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                c.objective,
                c.train_size,
                pm(&c.kendall_tau),
                pm(&w.kendall_tau),
                pm(&w.top_precision),
                percent(&w.coverage),
            );
        }
    }
    if !figures.is_empty() {
        let _ = writeln!(out, "\n## Figures\n");
        for f in figures {
            let _ = writeln!(out, "![{f}]({f})\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::recipe::IntervalCalibration;

    #[test]
    fn spread_is_the_sample_mean_and_standard_deviation() {
        let s = Spread::of([1.0, 2.0, 3.0, 4.0]);
        assert_eq!(s.mean, 2.5);
        assert!((s.std - 1.290_994_448_735_805_6).abs() < 1e-12);
        assert_eq!(Spread::of([5.0]).std, 0.0);
        assert!(Spread::of([]).mean.is_nan());
    }

    /// An interval of `half_width` as one cross-validation of 32 rows
    /// would calibrate it.
    fn interval(half_width: f64) -> IntervalCalibration {
        IntervalCalibration {
            half_width,
            far_rows: 16.0,
            far_quantile: half_width,
            near_rows: 25.0,
            near_quantile: half_width,
            rows: 32.0,
            numerical_floor: 0.0,
        }
    }

    fn ours(seed: u64, kendall_tau: f64) -> Run {
        Run {
            objective: "cifar10/val_acc_200ep".into(),
            feature_set: "graph+proxies".into(),
            train_size: 32,
            seed,
            kendall_tau,
            spearman_rho: kendall_tau,
            top_precision: 0.5,
            coverage: 0.8,
            interval: interval(1.0),
            held_out_half_width: 1.0,
            held_out_half_widths: vec![1.0; 50],
            chosen: "forest".into(),
            inner_cv_kendall_tau: BTreeMap::new(),
            floor: None,
            without_proxies: None,
            seconds: 0.0,
        }
    }

    #[test]
    fn the_report_tables_candidates_without_proxies_only_where_every_seed_scored_them() {
        let without = |coverage| crate::eval::WithoutProxies {
            kendall_tau: 0.5,
            top_precision: 0.2,
            coverage,
            interval: interval(2.0),
            held_out_half_width: 2.0,
            held_out_half_widths: vec![2.0; 50],
        };
        let mut runs = vec![ours(0, 0.7), ours(1, 0.6)];
        let plain = cells(&runs, &[]);
        assert!(plain[0].without_proxies.is_none());
        assert!(!markdown(&plain, "nasperf eval", 1.0, &[], &[]).contains("without proxies"));
        runs[0].without_proxies = Some(without(0.75));
        assert!(
            cells(&runs, &[])[0].without_proxies.is_none(),
            "a seed without the figure would make a mean of fewer seeds"
        );
        runs[1].without_proxies = Some(without(0.85));
        let scored = cells(&runs, &[]);
        let w = scored[0]
            .without_proxies
            .as_ref()
            .expect("every seed scored");
        assert!((w.coverage.mean - 0.8).abs() < 1e-12 && w.kendall_tau.n == 2);
        let text = markdown(&scored, "nasperf eval", 1.0, &[], &[]);
        assert!(
            text.contains("## Candidates sent without proxies"),
            "{text}"
        );
        assert!(
            text.contains("| cifar10/val_acc_200ep | 32 | 0.650 ± 0.071 | 0.500 ± 0.000 | 0.200 ± 0.000 | 80.0% ± 7.1 |"),
            "{text}"
        );
    }

    fn theirs(model: &str, seed: u64, kendall_tau: f64) -> ReferenceRun {
        ReferenceRun {
            objective: "cifar10/val_acc_200ep".into(),
            train_size: 32,
            seed,
            model: model.into(),
            feature_set: "proxies".into(),
            kendall_tau,
            spearman_rho: kendall_tau,
            top_precision: 0.4,
            constant_prediction: false,
            seconds: 0.0,
        }
    }

    #[test]
    fn the_same_split_comparison_pairs_by_seed_and_leaves_out_unmatched_seeds() {
        let ours: BTreeMap<u64, f64> = [(0, 0.70), (1, 0.60), (2, 0.50)].into();
        // Seed 7 ran on the reference's side only: no split to compare it on.
        let s = SameSplit::of(&ours, &[(2, 0.40), (0, 0.72), (1, 0.50), (7, 0.0)]);
        assert_eq!(s.difference.n, 3);
        assert_eq!(s.wins, 2);
        assert!(!s.on_every_split());
        assert!((s.difference.mean - (-0.02 + 0.10 + 0.10) / 3.0).abs() < 1e-12);
        assert!(SameSplit::of(&ours, &[(0, 0.1), (1, 0.1)]).on_every_split());
        // No split in common: not "higher on every split".
        assert!(!SameSplit::of(&ours, &[(7, 0.1)]).on_every_split());
    }

    #[test]
    fn the_same_split_comparison_is_against_the_best_reference_by_its_mean() {
        // The splits' luck moves both sides alike: seed 1 is hard for both.
        // The spreads overlap, yet ours is higher on every split.
        let runs = [ours(0, 0.70), ours(1, 0.50), ours(2, 0.62)];
        let reference = [
            theirs("random_forest", 0, 0.68),
            theirs("random_forest", 1, 0.47),
            theirs("random_forest", 2, 0.61),
            // Higher on one split, lower in the mean: not the best.
            theirs("xgboost", 0, 0.75),
            theirs("xgboost", 1, 0.30),
            theirs("xgboost", 2, 0.40),
        ];
        let cells = cells(&runs, &reference);
        let r = cells[0].reference.as_ref().expect("the reference ran");
        assert_eq!(r.model, "random_forest");
        assert_eq!((r.same_split.wins, r.same_split.difference.n), (3, 3));
        assert!((r.same_split.difference.mean - 0.02).abs() < 1e-12);
        assert_eq!(cells[0].ahead(), Some(true));
        assert_eq!(cells[0].clearly_ahead(), Some(false));
        let text = markdown(&cells, "nasperf eval", 1.0, &[], &[]);
        assert!(text.contains("| +0.020 ± 0.010, 3 of 3 | yes |"), "{text}");
        assert!(text.contains("higher on every split in 1."), "{text}");
    }
}
