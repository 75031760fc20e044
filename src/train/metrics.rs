//! Rank and error metrics for held-out evaluation. Kendall tau is tau-b (the
//! variant that corrects for ties, scipy's default), computed in
//! O(n log n) with Knight's algorithm; Spearman rho is the Pearson
//! correlation of average ranks.

/// Kendall tau-b of `x` against `y`. NaN when either side is constant or
/// the inputs are shorter than 2.
pub fn kendall_tau_b(x: &[f64], y: &[f64]) -> f64 {
    assert_eq!(x.len(), y.len(), "kendall_tau_b needs paired samples");
    let n = x.len();
    if n < 2 {
        return f64::NAN;
    }
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]).then(y[a].total_cmp(&y[b])));
    let pairs = |t: u64| t * (t.saturating_sub(1)) / 2;

    // Ties in x, and joint ties in (x, y).
    let (mut ties_x, mut ties_xy) = (0u64, 0u64);
    let (mut run_x, mut run_xy) = (1u64, 1u64);
    for w in idx.windows(2) {
        let (a, b) = (w[0], w[1]);
        if x[a] == x[b] {
            run_x += 1;
            if y[a] == y[b] {
                run_xy += 1;
            } else {
                ties_xy += pairs(run_xy);
                run_xy = 1;
            }
        } else {
            ties_x += pairs(run_x);
            ties_xy += pairs(run_xy);
            run_x = 1;
            run_xy = 1;
        }
    }
    ties_x += pairs(run_x);
    ties_xy += pairs(run_xy);

    // Discordant pairs = swaps a merge sort by y needs.
    let mut ys: Vec<f64> = idx.iter().map(|&i| y[i]).collect();
    let mut buf = vec![0.0; n];
    let swaps = merge_count(&mut ys, &mut buf);

    // Ties in y (ys is now sorted).
    let mut ties_y = 0u64;
    let mut run_y = 1u64;
    for w in ys.windows(2) {
        if w[0] == w[1] {
            run_y += 1;
        } else {
            ties_y += pairs(run_y);
            run_y = 1;
        }
    }
    ties_y += pairs(run_y);

    let total = pairs(n as u64);
    let concordant_minus_discordant =
        total as f64 - ties_x as f64 - ties_y as f64 + ties_xy as f64 - 2.0 * swaps as f64;
    let denom = ((total - ties_x) as f64 * (total - ties_y) as f64).sqrt();
    if denom == 0.0 {
        f64::NAN
    } else {
        concordant_minus_discordant / denom
    }
}

/// Sorts `v` and returns the number of inversions (strictly greater before
/// smaller).
fn merge_count(v: &mut [f64], buf: &mut [f64]) -> u64 {
    let n = v.len();
    if n < 2 {
        return 0;
    }
    let mid = n / 2;
    let mut count =
        merge_count(&mut v[..mid], &mut buf[..mid]) + merge_count(&mut v[mid..], &mut buf[mid..]);
    let (mut i, mut j, mut k) = (0, mid, 0);
    while i < mid && j < n {
        if v[j] < v[i] {
            buf[k] = v[j];
            count += (mid - i) as u64;
            j += 1;
        } else {
            buf[k] = v[i];
            i += 1;
        }
        k += 1;
    }
    buf[k..k + mid - i].copy_from_slice(&v[i..mid]);
    k += mid - i;
    buf[k..k + n - j].copy_from_slice(&v[j..n]);
    v.copy_from_slice(&buf[..n]);
    count
}

/// Average ranks (1-based), ties sharing the mean of their ranks.
fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut out = vec![0.0; v.len()];
    let mut start = 0;
    while start < idx.len() {
        let mut end = start + 1;
        while end < idx.len() && v[idx[end]] == v[idx[start]] {
            end += 1;
        }
        let avg = (start + end + 1) as f64 / 2.0;
        for &i in &idx[start..end] {
            out[i] = avg;
        }
        start = end;
    }
    out
}

/// Spearman rank correlation.
pub fn spearman_rho(x: &[f64], y: &[f64]) -> f64 {
    assert_eq!(x.len(), y.len(), "spearman_rho needs paired samples");
    pearson(&ranks(x), &ranks(y))
}

fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    if x.len() < 2 {
        return f64::NAN;
    }
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    sxy / (sxx * syy).sqrt()
}

pub fn rmse(pred: &[f64], truth: &[f64]) -> f64 {
    assert_eq!(pred.len(), truth.len(), "rmse needs paired samples");
    let sum: f64 = pred.iter().zip(truth).map(|(p, t)| (p - t) * (p - t)).sum();
    (sum / pred.len() as f64).sqrt()
}

/// The standard error of Kendall's tau between `n` independent pairs:
/// `sqrt(2 (2n + 5) / (9 n (n - 1)))`, about 0.12 at 32 rows and 0.02 at
/// 1,024. Infinite below 2 rows.
pub fn kendall_tau_standard_error(n: usize) -> f64 {
    if n < 2 {
        return f64::INFINITY;
    }
    let n = n as f64;
    (2.0 * (2.0 * n + 5.0) / (9.0 * n * (n - 1.0))).sqrt()
}

/// The share of `truth` within `half_width` of `pred`: the coverage of the
/// interval `pred ± half_width`. NaN for no rows or an undefined width.
pub fn coverage(pred: &[f64], truth: &[f64], half_width: f64) -> f64 {
    coverage_of_each(pred, truth, &vec![half_width; pred.len()])
}

/// [`coverage`] with a half-width of its own for each row (a model whose
/// rows are answered by different trees, each with its interval). NaN for
/// no rows or any undefined width.
pub fn coverage_of_each(pred: &[f64], truth: &[f64], half_widths: &[f64]) -> f64 {
    assert_eq!(pred.len(), truth.len(), "coverage needs paired samples");
    assert_eq!(
        pred.len(),
        half_widths.len(),
        "coverage needs a width per row"
    );
    if pred.is_empty() || half_widths.iter().any(|h| !h.is_finite()) {
        return f64::NAN;
    }
    let inside = pred
        .iter()
        .zip(truth)
        .zip(half_widths)
        .filter(|((p, t), h)| (*p - *t).abs() <= **h)
        .count();
    inside as f64 / pred.len() as f64
}

/// The least half-width whose interval around `pred` holds at least
/// `coverage` of `truth` (the nominal quantile of the absolute residuals),
/// at each of `coverages`, in that order; NaN without samples. The
/// residuals are sorted once and read at every rank: `nasperf eval` asks
/// for 51 shares of some 9,400 test networks in every run.
pub fn nominal_half_widths(
    pred: &[f64],
    truth: &[f64],
    coverages: impl IntoIterator<Item = f64>,
) -> Vec<f64> {
    assert_eq!(pred.len(), truth.len(), "a half-width needs paired samples");
    let mut residuals: Vec<f64> = pred.iter().zip(truth).map(|(p, t)| (p - t).abs()).collect();
    residuals.sort_unstable_by(f64::total_cmp);
    let n = residuals.len();
    coverages
        .into_iter()
        .map(|coverage| {
            let rank = (n as f64 * coverage).ceil() as usize;
            residuals
                .get(rank.clamp(1, n.max(1)) - 1)
                .copied()
                .unwrap_or(f64::NAN)
        })
        .collect()
}

/// The `k`-th smallest of `values` (1-based, clamped to `1..=len`; NaN when
/// empty), in linear time; `values` is left partly reordered. Behind the
/// recipe's conformal quantile, which asks for the rank
/// `ceil((n + 1) * coverage)` where [`nominal_half_widths`] reads
/// `ceil(n * coverage)`.
pub fn kth_smallest(values: &mut [f64], k: usize) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let index = k.clamp(1, values.len()) - 1;
    *values.select_nth_unstable_by(index, f64::total_cmp).1
}

/// How much more often `a` than `b` orders a pair of rows as `truth` does,
/// over every pair (a concordant pair counts 1, a discordant one -1, a tie
/// 0), and the standard error of that mean: a U-statistic, whose variance
/// is about 4/n times the variance of its rows' projections (each row's
/// mean advantage over its pairs with every other row; Hoeffding). Both
/// orderings are of the same rows, so their errors cancel in the difference,
/// and every pair counts, not only the pairs within a fold.
pub fn concordance_advantage(a: &[f64], b: &[f64], truth: &[f64]) -> (f64, f64) {
    let n = truth.len();
    if n < 3 || a.len() != n || b.len() != n {
        return (0.0, f64::INFINITY);
    }
    let sign = |d: f64| f64::from(i8::from(d > 0.0) - i8::from(d < 0.0));
    let mut projection = vec![0.0; n];
    for i in 0..n {
        for j in i + 1..n {
            let t = sign(truth[i] - truth[j]);
            let edge = t * (sign(a[i] - a[j]) - sign(b[i] - b[j]));
            projection[i] += edge;
            projection[j] += edge;
        }
    }
    let others = (n - 1) as f64;
    for h in &mut projection {
        *h /= others;
    }
    let mean = projection.iter().sum::<f64>() / n as f64;
    let var = projection.iter().map(|h| (h - mean).powi(2)).sum::<f64>() / others;
    (mean, 2.0 * (var / n as f64).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tau-b by definition, O(n^2).
    fn brute_tau_b(x: &[f64], y: &[f64]) -> f64 {
        let (mut c, mut d, mut tx, mut ty) = (0f64, 0f64, 0f64, 0f64);
        for i in 0..x.len() {
            for j in i + 1..x.len() {
                let (dx, dy) = (x[i] - x[j], y[i] - y[j]);
                if dx == 0.0 && dy == 0.0 {
                } else if dx == 0.0 {
                    tx += 1.0;
                } else if dy == 0.0 {
                    ty += 1.0;
                } else if dx * dy > 0.0 {
                    c += 1.0;
                } else {
                    d += 1.0;
                }
            }
        }
        (c - d) / ((c + d + tx) * (c + d + ty)).sqrt()
    }

    #[test]
    fn tau_b_matches_the_definition_with_ties() {
        let mut state = 0x9e3779b97f4a7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 7) as f64
        };
        for n in [2, 3, 10, 57, 300] {
            let x: Vec<f64> = (0..n).map(|_| next()).collect();
            let y: Vec<f64> = (0..n).map(|_| next()).collect();
            let (fast, slow) = (kendall_tau_b(&x, &y), brute_tau_b(&x, &y));
            assert!(
                (fast - slow).abs() < 1e-12 || (fast.is_nan() && slow.is_nan()),
                "n={n}: {fast} vs {slow}"
            );
        }
        // scipy.stats.kendalltau([1, 2, 2, 3], [1, 3, 2, 3]).statistic = 0.8
        let t = kendall_tau_b(&[1.0, 2.0, 2.0, 3.0], &[1.0, 3.0, 2.0, 3.0]);
        assert!((t - 0.8).abs() < 1e-12, "{t}");
    }

    #[test]
    fn spearman_uses_average_ranks() {
        // scipy.stats.spearmanr([1, 2, 2, 3], [1, 3, 2, 3]) = 0.8333333333333334
        let r = spearman_rho(&[1.0, 2.0, 2.0, 3.0], &[1.0, 3.0, 2.0, 3.0]);
        assert!((r - 0.8333333333333334).abs() < 1e-12, "{r}");
        assert_eq!(rmse(&[1.0, 3.0], &[1.0, 1.0]), 2f64.sqrt());
    }

    #[test]
    fn the_kth_smallest_is_the_order_statistic_clamped_to_the_values() {
        let mut v = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(kth_smallest(&mut v, 1), 1.0);
        assert_eq!(kth_smallest(&mut v, 4), 4.0);
        assert_eq!(kth_smallest(&mut v, 0), 1.0);
        assert_eq!(kth_smallest(&mut v, 9), 5.0);
        assert!(kth_smallest(&mut [], 1).is_nan());
    }

    #[test]
    fn the_nominal_half_width_is_the_least_that_covers_the_share() {
        let truth: Vec<f64> = (0..10).map(f64::from).collect();
        // Residuals 0, 1, ..., 9: 8 of 10 within 7, only 7 within 6.
        let pred = vec![0.0; 10];
        let width = nominal_half_widths(&pred, &truth, [0.8])[0];
        assert_eq!(width, 7.0);
        assert_eq!(coverage(&pred, &truth, width), 0.8);
        assert!(coverage(&pred, &truth, width - 0.5) < 0.8);
        assert!(nominal_half_widths(&[], &[], [0.8])[0].is_nan());
    }

    #[test]
    fn the_half_widths_at_many_shares_are_each_shares_own() {
        let mut rng = crate::train::SplitMix64(5);
        let truth: Vec<f64> = (0..97).map(|_| rng.next_f64() * 10.0).collect();
        let mut pred: Vec<f64> = truth.iter().map(|t| t + rng.next_f64() - 0.5).collect();
        // A tie and a NaN, which sort last either way.
        pred[3] = pred[4] - truth[4] + truth[3];
        pred[7] = f64::NAN;
        let shares = [0.0, 0.01, 0.5, 0.8, 0.83, 0.99, 1.0];
        let widths = nominal_half_widths(&pred, &truth, shares);
        let residuals: Vec<f64> = pred
            .iter()
            .zip(&truth)
            .map(|(p, t)| (p - t).abs())
            .collect();
        for (&share, &width) in shares.iter().zip(&widths) {
            // Each share by a selection of its own, not the shared sort.
            let rank = (residuals.len() as f64 * share).ceil() as usize;
            let one = kth_smallest(&mut residuals.clone(), rank);
            assert!(
                one == width || one.is_nan() && width.is_nan(),
                "{share}: {one} against {width}"
            );
        }
        assert!(widths[6].is_nan(), "every residual, the NaN among them");
        assert!(nominal_half_widths(&[], &[], [0.8])[0].is_nan());
    }

    #[test]
    fn coverage_of_each_row_uses_that_rows_width() {
        let truth = [0.0, 1.0, 2.0, 3.0];
        let pred = [0.0; 4];
        // Residuals 0, 1, 2, 3 against widths 0, 0.5, 2, 3: rows 0, 2, 3 inside.
        assert_eq!(coverage_of_each(&pred, &truth, &[0.0, 0.5, 2.0, 3.0]), 0.75);
        assert_eq!(coverage(&pred, &truth, 2.0), 0.75);
        assert!(coverage_of_each(&pred, &truth, &[1.0, f64::NAN, 1.0, 1.0]).is_nan());
        assert!(coverage(&[], &[], 1.0).is_nan());
    }

    #[test]
    fn the_concordance_advantage_is_the_difference_of_kendall_taus_with_its_error() {
        let truth: Vec<f64> = (0..30).map(|i| f64::from(i) * 0.5).collect();
        let mut rng = crate::train::SplitMix64(11);
        let mut noisy = |scale: f64| -> Vec<f64> {
            truth.iter().map(|&t| t + scale * rng.next_f64()).collect()
        };
        let (a, b) = (noisy(4.0), noisy(12.0));
        let (advantage, se) = concordance_advantage(&a, &b, &truth);
        // Without ties, the mean over pairs is tau-a's difference, which is
        // tau-b's.
        let difference = kendall_tau_b(&a, &truth) - kendall_tau_b(&b, &truth);
        assert!(
            (advantage - difference).abs() < 1e-12,
            "{advantage} {difference}"
        );
        assert!(se > 0.0 && se < advantage, "{se} {advantage}");
        // Antisymmetric, and nil against itself.
        let (back, back_se) = concordance_advantage(&b, &a, &truth);
        assert!((advantage + back).abs() < 1e-12 && (se - back_se).abs() < 1e-12);
        assert_eq!(concordance_advantage(&a, &a, &truth), (0.0, 0.0));
        // Too few rows to tell: no advantage, an infinite error.
        assert_eq!(
            concordance_advantage(&a[..2], &b[..2], &truth[..2]),
            (0.0, f64::INFINITY)
        );
    }
}
