//! The floor predictions are clamped to where many rows sit on the
//! target's minimum (0% accuracy under a strong attack).

use super::metrics;
use crate::model::Floor;

/// The least share of rows on the target's minimum for a floor to be tried.
const FLOOR_MIN_SHARE: f64 = 0.05;
/// The share of rows on the target's minimum from which the floor is no
/// longer chosen but set where that share of the out-of-fold predictions
/// falls. There the out-of-fold tau that chooses it is decided by the few
/// rows above the floor (one to three of 128 under APGD-CE at eps 8/255)
/// and picks noise: outside the recipe (a LightGBM forest on the proxies,
/// 20 splits), the fixed floor ranked the test networks at 0.355 against
/// 0.173 for the chosen one at eps 8/255 and 128 rows, and as well or
/// better at eps 4/255 and PGD eps 8/255 at 32 and 128 rows; at APGD-CE eps
/// 3/255 (half the rows at zero) choosing was better. In the recipe, on 20
/// fresh splits: APGD-CE eps 4 +0.020 / +0.019 at 32 / 128 rows, PGD eps 8
/// +0.011 / +0.003 (`docs/quality.md`).
const FLOOR_FIXED_SHARE: f64 = 2.0 / 3.0;
/// The thresholds tried: the out-of-fold prediction below which this
/// multiple of the share of rows on the floor falls.
const FLOOR_SHARE_MULTIPLES: [f64; 5] = [0.5, 0.75, 1.0, 1.25, 1.5];

/// The minimum of `values` and how many of them are equal to it
/// (infinity and 0 for none).
fn minimum_and_ties(values: &[f64]) -> (f64, usize) {
    let value = values.iter().copied().fold(f64::INFINITY, f64::min);
    (value, values.iter().filter(|&&t| t == value).count())
}

/// The share of `values` equal to their minimum; 0 for none.
pub(super) fn share_on_minimum(values: &[f64]) -> f64 {
    let (_, on_floor) = minimum_and_ties(values);
    on_floor as f64 / values.len().max(1) as f64
}

/// The floor to clamp predictions to, from the chosen option's
/// out-of-fold predictions `oof` of the targets `truth`: `None` unless at
/// least [`FLOOR_MIN_SHARE`] of the rows (and 3) sit exactly on the
/// minimum, as most networks do under a strong attack (0% accuracy). The
/// threshold is the out-of-fold prediction below which some multiple of
/// that share of the rows falls ([`FLOOR_SHARE_MULTIPLES`]): the multiple
/// whose floor ranks the rows best, if it ranks them better than no floor.
/// Where at least [`FLOOR_FIXED_SHARE`] of the rows are on the minimum,
/// the multiple is 1, not chosen.
///
/// Why the pooled tau and not the paired rule of [`Recipe::select`]: the
/// paired rule kept no floor where one won on the test networks (APGD-CE
/// at eps 4/255 and N = 128: 0.340 against 0.373, `docs/quality.md`).
pub(super) fn choose_floor(oof: &[f64], truth: &[f64]) -> Option<Floor> {
    let (value, on_floor) = minimum_and_ties(truth);
    let share = on_floor as f64 / truth.len() as f64;
    if on_floor < 3 || share < FLOOR_MIN_SHARE || oof.iter().any(|p| !p.is_finite()) {
        return None;
    }
    let mut sorted = oof.to_vec();
    sorted.sort_by(f64::total_cmp);
    let floor_at = |multiple: f64| {
        let below =
            ((share * multiple * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        Floor {
            at_or_below: sorted[below - 1].max(value),
            value,
        }
    };
    if share >= FLOOR_FIXED_SHARE {
        return Some(floor_at(1.0));
    }
    let tau_with = |floor: Option<Floor>| {
        let pred: Vec<f64> = oof.iter().map(|&p| Floor::apply_if_any(floor, p)).collect();
        metrics::kendall_tau_b(&pred, truth)
    };
    let (mut best, mut best_tau) = (None, tau_with(None));
    for multiple in FLOOR_SHARE_MULTIPLES {
        let floor = floor_at(multiple);
        let tau = tau_with(Some(floor));
        if tau > best_tau {
            (best, best_tau) = (Some(floor), tau);
        }
    }
    best
}
