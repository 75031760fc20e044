//! A family choice's combination of the target's own model and those of
//! its related objectives (the same attack at smaller strengths).

use serde_json::{Value, json};

#[cfg(doc)]
use super::Choice;
use super::{gather_y, rising_least_squares_line};

/// The values of an objective related to the target
/// ([`crate::objectives::related`]) on the same rows as the target's, NaN
/// where it was not measured.
#[derive(Debug, Clone, PartialEq)]
pub struct RelatedTarget {
    pub objective: String,
    pub values: Vec<f64>,
}

impl RelatedTarget {
    /// The values of the rows `idx`, in that order.
    pub fn rows(&self, idx: &[usize]) -> RelatedTarget {
        RelatedTarget {
            objective: self.objective.clone(),
            values: gather_y(&self.values, idx),
        }
    }
}

/// How a family choice ([`Choice::family`]) combines its models: the
/// prediction is `intercept + sum(weight * model)`, over the model of the
/// target itself and those of the related objectives.
///
/// The weights come from the models' out-of-fold predictions: each is
/// divided by its spread, so that every objective counts alike whatever its
/// scale (accuracy under a weak attack spreads over tens of points, under a
/// strong one over a few), and the mean is mapped onto the target by a
/// least-squares line. Only the line's slope and intercept are fitted to
/// the target, so the ranking is the standardized mean's.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub members: Vec<FamilyMember>,
    pub intercept: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FamilyMember {
    /// The index of the related target the model is fitted on, `None` for
    /// the target itself.
    pub related: Option<usize>,
    /// The objective's ID (the target's own is `None` above).
    pub objective: Option<String>,
    pub weight: f64,
}

/// Out-of-fold predictions of one of a family's models.
pub(super) struct FamilySeries {
    /// As [`FamilyMember::related`].
    related: Option<usize>,
    objective: Option<String>,
    predictions: Vec<f64>,
}

impl FamilySeries {
    pub(super) fn new(
        related: Option<usize>,
        objective: Option<&str>,
        predictions: Vec<f64>,
    ) -> Self {
        Self {
            related,
            objective: objective.map(str::to_owned),
            predictions,
        }
    }
}

impl Family {
    /// The family of the out-of-fold predictions `series` (the target's own,
    /// then each related target's) of `truth`, and its out-of-fold
    /// predictions on the target's scale. A series that does not vary is
    /// left out; `None` where nothing varies or the line's slope is not
    /// positive (the mean orders the rows against the truth).
    pub(super) fn from_out_of_fold(
        series: &[FamilySeries],
        truth: &[f64],
    ) -> Option<(Family, Vec<f64>)> {
        let spread = |v: &[f64]| {
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            (v.iter().map(|p| (p - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
        };
        let used: Vec<(&FamilySeries, f64)> = series
            .iter()
            .map(|s| (s, spread(&s.predictions)))
            .filter(|(_, sd)| sd.is_finite() && *sd > 0.0)
            .collect();
        if used.is_empty() || truth.is_empty() {
            return None;
        }
        let k = used.len() as f64;
        let mean: Vec<f64> = (0..truth.len())
            .map(|i| {
                used.iter()
                    .map(|(s, sd)| s.predictions[i] / sd)
                    .sum::<f64>()
                    / k
            })
            .collect();
        let (intercept, slope) = rising_least_squares_line(&mean, truth)?;
        let family = Family {
            members: used
                .iter()
                .map(|(s, sd)| FamilyMember {
                    related: s.related,
                    objective: s.objective.clone(),
                    weight: slope / (k * sd),
                })
                .collect(),
            intercept,
        };
        let on_target = mean.iter().map(|m| intercept + slope * m).collect();
        Some((family, on_target))
    }

    pub(super) fn describe(&self) -> Value {
        json!({
            "intercept": self.intercept,
            "members": self.members.iter().map(|m| json!({
                "objective": m.objective.as_deref().unwrap_or("(the target)"),
                "weight": m.weight,
            })).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_family_standardizes_its_models_and_maps_their_mean_onto_the_target() {
        let truth: Vec<f64> = (0..20).map(|i| f64::from(i).sin() * 3.0 + 1.0).collect();
        // Two exact linear views of the truth, on other scales, and one
        // that does not vary.
        let own: Vec<f64> = truth.iter().map(|t| 2.0 * t - 1.0).collect();
        let weaker: Vec<f64> = truth.iter().map(|t| 10.0 * t + 40.0).collect();
        let series = vec![
            FamilySeries::new(None, None, own),
            FamilySeries::new(Some(0), Some("weaker"), weaker),
            FamilySeries::new(Some(1), Some("flat"), vec![5.0; 20]),
        ];
        let (family, on_target) = Family::from_out_of_fold(&series, &truth).expect("a family");
        for (p, t) in on_target.iter().zip(&truth) {
            assert!((p - t).abs() < 1e-9, "{p} against {t}");
        }
        let used: Vec<Option<usize>> = family.members.iter().map(|m| m.related).collect();
        assert_eq!(used, [None, Some(0)], "the flat series is left out");
        // Standardized: each view counts alike, so the weights are in the
        // inverse ratio of the spreads (2 and 10).
        let (w0, w1) = (family.members[0].weight, family.members[1].weight);
        assert!(w0 > 0.0 && w1 > 0.0);
        assert!((w0 / w1 - 5.0).abs() < 1e-9, "{w0} / {w1}");
        // Ordered against the truth, or nothing that varies: no family.
        let reversed: Vec<f64> = truth.iter().map(|t| -t).collect();
        let alone = |p| [FamilySeries::new(None, None, p)];
        assert!(Family::from_out_of_fold(&alone(reversed), &truth).is_none());
        assert!(Family::from_out_of_fold(&alone(vec![1.0; 20]), &truth).is_none());
    }
}
