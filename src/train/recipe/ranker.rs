//! The candidate that learns the order of the rows
//! ([`Candidate::boosted_pairwise`]): a LightGBM ranker on drawn queries,
//! mapped onto the target's scale.

use serde_json::Value;

#[cfg(doc)]
use super::Candidate;
use super::{SplitMix64, TrainError, data_err, lightgbm, rising_least_squares_line};
use crate::model::{Forest, blend};

/// Rows in each drawn query of a candidate that learns order
/// ([`Candidate::boosted_pairwise`]): four rows, six pairs, so the ranking
/// loss is nearly the pairwise one (measured in the proxy mean at N = 32:
/// queries of 2, 4 and 8 rows within 0.007 of each other).
const PAIRWISE_GROUP: usize = 4;
/// Shuffles of the training rows into queries, at most: every row in this
/// many queries, each with other rows.
const PAIRWISE_REPEATS: usize = 8;
/// Fewer shuffles where rows are many: enough for this many rows in all
/// (at least one shuffle). A thousand rows hold half a million pairs;
/// eight shuffles of them would cost eight boosters' time for pairs that
/// two already sample well.
const PAIRWISE_ROWS: usize = 2048;
/// The least share of a ranker's drawn queries that must hold rows of
/// different values for it to be tried ([`Candidate::usable_on`]). Under
/// APGD-CE at eps 8/255, 99% of the 9,445 networks are at 0% accuracy:
/// 96% of the queries of four are all zeros, and the proxy mean with the
/// ranker fell from 0.304 to 0.191 at 128 rows (`docs/quality.md`). At
/// eps 4/255 (86% at zero, 44% of the queries ordered) the ranker lifted
/// it. The bar lies between the two; a sample of 32 rows at eps 4/255
/// falls beyond it one time in six, and then the mean without the ranker
/// serves (one seed of the report's ten: the cell moved 0.247 -> 0.246).
pub(super) const MIN_ORDERED_QUERY_SHARE: f64 = 0.3;
/// Relevance levels of a row's rank, and the length of LightGBM's
/// `label_gain` (its default is 31 levels).
pub(super) const RELEVANCE_LEVELS: usize = 31;
/// The weight of a ranker's scores that do not rise with the target: not
/// zero, which a blend refuses.
const NEGLIGIBLE_SLOPE: f64 = 1e-12;

/// Each row's rank among `y` in [`RELEVANCE_LEVELS`] levels, 0 the
/// lowest: the rows below it, scaled. Tied rows share a level.
fn relevance_levels(y: &[f64]) -> Vec<f32> {
    let mut sorted: Vec<f64> = y.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = y.len().max(1);
    y.iter()
        .map(|v| {
            let below = sorted.partition_point(|s| s.total_cmp(v).is_lt());
            ((below * RELEVANCE_LEVELS) / n).min(RELEVANCE_LEVELS - 1) as f32
        })
        .collect()
}

/// The expected share of queries of [`PAIRWISE_GROUP`] rows drawn from
/// `y` that hold two different values: one minus the chance that all the
/// rows of a query share a value, summed over the values (drawn with
/// replacement, which is close where rows are many and errs towards
/// fewer ordered queries where they are few).
pub(super) fn ordered_query_share(y: &[f64]) -> f64 {
    if y.is_empty() {
        return 0.0;
    }
    let mut sorted: Vec<f64> = y.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    let all_tied: f64 = sorted
        .chunk_by(|a, b| a.total_cmp(b).is_eq())
        .map(|run| (run.len() as f64 / n).powi(PAIRWISE_GROUP as i32))
        .sum();
    1.0 - all_tied
}

/// Trains a ranking booster on the rows drawn into random queries
/// ([`Candidate::boosted_pairwise`]) and maps its scores onto the target
/// by the least-squares line through the training rows: a model text with
/// an identity objective whose predictions are on the target's scale.
pub(super) fn fit_order(
    x: &[f64],
    names: &[String],
    y: &[f64],
    seed: u64,
    dataset_params: &Value,
    params: &Value,
) -> Result<String, TrainError> {
    let width = names.len();
    let n = y.len();
    if n == 0 || x.len() != n * width {
        return Err(data_err(format!(
            "{} values for {n} rows of {width} features",
            x.len()
        )));
    }
    let relevance = relevance_levels(y);
    let group = PAIRWISE_GROUP.min(n);
    let per_shuffle = n / group * group;
    let shuffles = (PAIRWISE_ROWS / n).clamp(1, PAIRWISE_REPEATS);
    let mut rng = SplitMix64(seed ^ 0x0de2_5a1e);
    let mut rows = Vec::with_capacity(shuffles * per_shuffle * width);
    let mut labels = Vec::with_capacity(shuffles * per_shuffle);
    for _ in 0..shuffles {
        for &i in &rng.permutation(n)[..per_shuffle] {
            rows.extend_from_slice(&x[i * width..(i + 1) * width]);
            labels.push(relevance[i]);
        }
    }
    let group_size = i32::try_from(group).map_err(|_| data_err(format!("a query of {group}")))?;
    let groups = vec![group_size; labels.len() / group];
    let ranked =
        lightgbm::train_grouped(&rows, &labels, Some(&groups), names, dataset_params, params)?;
    // LightGBM's ranking output is its raw score, as a regression's is; the
    // affine map below makes it a prediction of the target, which is what
    // the text is then served, blended and calibrated as.
    let text = ranked.replacen("objective=lambdarank", "objective=regression", 1);
    let forest = Forest::parse(&text).map_err(|e| data_err(e.to_string()))?;
    let mut scores = vec![0.0; n];
    forest.predict_batch(x, &mut scores);
    // A ranker whose scores do not rise with the target on its own
    // training rows (all tied, or no order learned) becomes a model of the
    // mean that keeps their order at a negligible weight, so a blend of it
    // with others is the others'.
    let (intercept, slope) = rising_least_squares_line(&scores, y).unwrap_or_else(|| {
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        (mean(y) - NEGLIGIBLE_SLOPE * mean(&scores), NEGLIGIBLE_SLOPE)
    });
    let scaled = blend::blend(&[(slope, &text)]).map_err(|e| data_err(e.to_string()))?;
    blend::offset(&scaled, intercept).map_err(|e| data_err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relevance_levels_are_ranks_scaled_to_the_levels_with_ties_shared() {
        assert_eq!(
            relevance_levels(&[5.0, 1.0, 1.0, 9.0]),
            vec![15.0, 0.0, 0.0, 23.0]
        );
        let many: Vec<f64> = (0..100).map(f64::from).collect();
        let levels = relevance_levels(&many);
        assert_eq!((levels[0], levels[99]), (0.0, 30.0));
        assert!(levels.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn the_ordered_query_share_counts_the_queries_whose_rows_differ() {
        assert_eq!(ordered_query_share(&[]), 0.0);
        assert_eq!(ordered_query_share(&[1.0; 10]), 0.0);
        // Half the rows on each of two values: a query of four is tied with
        // chance 2 * 0.5^4 = 1/8.
        let halves = [0.0, 0.0, 1.0, 1.0];
        assert!((ordered_query_share(&halves) - 0.875).abs() < 1e-12);
        let distinct: Vec<f64> = (0..100).map(f64::from).collect();
        assert!((ordered_query_share(&distinct) - (1.0 - 100f64.powi(-3))).abs() < 1e-12);
    }
}
