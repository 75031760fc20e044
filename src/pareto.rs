//! Multi-objective ranking: non-dominated fronts, crowding distance and
//! exact hypervolume with each point's exclusive contribution.
//!
//! Everything here minimises; callers negate objectives they maximise.
//! Points are rows of `m` values in one flat slice.
//!
//! - Fronts: efficient non-dominated sort with binary search (Zhang et
//!   al., "An Efficient Approach to Nondominated Sorting", IEEE TEC 2015):
//!   points in lexicographic order can only be dominated by earlier ones,
//!   so each point goes to the first front none of whose members dominates
//!   it, found by binary search over the fronts.
//! - Crowding distance as in NSGA-II (Deb et al. 2002), per front.
//! - Hypervolume: exact, in 2 dimensions by a sweep, in 3 by a sweep over
//!   the third objective that keeps the 2-dimensional staircase in a
//!   B-tree (the dimension-sweep of Beume et al. 2009), O(n log n).
//!   Exclusive contributions are the hypervolume lost without the point.

use std::{cmp::Ordering, collections::BTreeMap};

/// Whether `a` dominates `b` (minimisation): no worse anywhere, better
/// somewhere.
pub fn dominates(a: &[f64], b: &[f64]) -> bool {
    let mut better = false;
    for (x, y) in a.iter().zip(b) {
        if x > y {
            return false;
        }
        if x < y {
            better = true;
        }
    }
    better
}

fn lexicographic(a: &[f64], b: &[f64]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        match x.total_cmp(y) {
            Ordering::Equal => continue,
            other => return other,
        }
    }
    Ordering::Equal
}

/// The front of every point (0 = non-dominated). `values` holds `m`
/// finite values per point.
pub fn fronts(values: &[f64], m: usize) -> Vec<u32> {
    let n = values.len().checked_div(m).unwrap_or(0);
    let row = |i: usize| &values[i * m..(i + 1) * m];
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| lexicographic(row(a), row(b)));
    let mut front_of = vec![0u32; n];
    let mut members: Vec<FrontIndex> = Vec::new();
    for (k, &i) in order.iter().enumerate() {
        // A duplicate of the previous point shares its front.
        if k > 0 && lexicographic(row(order[k - 1]), row(i)) == Ordering::Equal {
            let f = front_of[order[k - 1]];
            front_of[i] = f;
            members[f as usize].insert(values, m, i);
            continue;
        }
        // The first front with no member dominating `i`: if front f has
        // one, every front before f has one too, so binary search works.
        let (mut lo, mut hi) = (0usize, members.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if members[mid].dominates(values, m, i) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo == members.len() {
            members.push(FrontIndex::new(m));
        }
        members[lo].insert(values, m, i);
        front_of[i] = lo as u32;
    }
    front_of
}

/// The members of one front, arranged to answer "does a member dominate
/// this later point?". Points arrive in lexicographic order, so every
/// member is no worse in the first objective than the point asked about,
/// and only the others need checking: in 2 objectives, the smallest
/// second value so far; in 3, the 2-dimensional staircase of the second
/// and third values (O(log n) per question, where a scan of a large front
/// is O(n)); beyond, the members themselves.
enum FrontIndex {
    Two { min: f64 },
    Three { stairs: BTreeMap<Key, f64> },
    Many { members: Vec<usize> },
}

impl FrontIndex {
    fn new(m: usize) -> Self {
        match m {
            2 => FrontIndex::Two { min: f64::INFINITY },
            3 => FrontIndex::Three {
                stairs: BTreeMap::new(),
            },
            _ => FrontIndex::Many {
                members: Vec::new(),
            },
        }
    }

    /// Whether a member dominates point `i`, which is lexicographically
    /// after every member and equal to none.
    fn dominates(&self, values: &[f64], m: usize, i: usize) -> bool {
        let p = &values[i * m..(i + 1) * m];
        match self {
            FrontIndex::Two { min } => *min <= p[1],
            FrontIndex::Three { stairs } => stairs
                .range(..=Key(p[1]))
                .next_back()
                .is_some_and(|(_, &z)| z <= p[2]),
            FrontIndex::Many { members } => members
                .iter()
                .rev()
                .any(|&j| dominates(&values[j * m..(j + 1) * m], p)),
        }
    }

    fn insert(&mut self, values: &[f64], m: usize, i: usize) {
        let p = &values[i * m..(i + 1) * m];
        match self {
            FrontIndex::Two { min } => *min = min.min(p[1]),
            FrontIndex::Three { stairs } => {
                let covered = stairs
                    .range(..=Key(p[1]))
                    .next_back()
                    .is_some_and(|(_, &z)| z <= p[2]);
                if covered {
                    return;
                }
                let stale: Vec<Key> = stairs
                    .range(Key(p[1])..)
                    .take_while(|(_, z)| **z >= p[2])
                    .map(|(k, _)| *k)
                    .collect();
                for k in stale {
                    stairs.remove(&k);
                }
                stairs.insert(Key(p[1]), p[2]);
            }
            FrontIndex::Many { members } => members.push(i),
        }
    }
}

/// NSGA-II crowding distance of every point within its front; the extreme
/// points of a front in any objective get infinity.
pub fn crowding_distances(values: &[f64], m: usize, front_of: &[u32]) -> Vec<f64> {
    let n = front_of.len();
    let mut distance = vec![0.0f64; n];
    let mut by_front: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, &f) in front_of.iter().enumerate() {
        by_front.entry(f).or_default().push(i);
    }
    for members in by_front.values_mut() {
        if members.len() <= 2 {
            for &i in members.iter() {
                distance[i] = f64::INFINITY;
            }
            continue;
        }
        for k in 0..m {
            let v = |i: usize| values[i * m + k];
            members.sort_by(|&a, &b| v(a).total_cmp(&v(b)));
            let (first, last) = (members[0], members[members.len() - 1]);
            distance[first] = f64::INFINITY;
            distance[last] = f64::INFINITY;
            let span = v(last) - v(first);
            if span <= 0.0 {
                continue;
            }
            for w in members.windows(3) {
                distance[w[1]] += (v(w[2]) - v(w[0])) / span;
            }
        }
    }
    distance
}

/// Hypervolume of the points (2 or 3 objectives) with respect to
/// `reference`; points not strictly better than the reference in every
/// objective add nothing. `None` for other dimensions.
pub fn hypervolume(values: &[f64], m: usize, reference: &[f64]) -> Option<f64> {
    let inside: Vec<&[f64]> = values
        .chunks_exact(m)
        .filter(|p| p.iter().zip(reference).all(|(x, r)| x < r))
        .collect();
    match m {
        2 => Some(hv2(&inside, reference)),
        3 => Some(hv3(&inside, reference)),
        _ => None,
    }
}

/// Each point's exclusive contribution: the hypervolume lost without it.
/// `None` for dimensions other than 2 and 3.
pub fn exclusive_contributions(values: &[f64], m: usize, reference: &[f64]) -> Option<Vec<f64>> {
    let n = values.len() / m.max(1);
    let total = hypervolume(values, m, reference)?;
    let mut without = Vec::with_capacity(values.len());
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        without.clear();
        without.extend_from_slice(&values[..i * m]);
        without.extend_from_slice(&values[(i + 1) * m..]);
        let rest = hypervolume(&without, m, reference)?;
        // Rounding can leave a tiny negative for a point that adds nothing.
        out.push((total - rest).max(0.0));
    }
    Some(out)
}

fn hv2(points: &[&[f64]], r: &[f64]) -> f64 {
    let mut p: Vec<(f64, f64)> = points.iter().map(|p| (p[0], p[1])).collect();
    p.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let mut area = 0.0;
    let mut ceiling = r[1];
    for (x, y) in p {
        if y < ceiling {
            area += (r[0] - x) * (ceiling - y);
            ceiling = y;
        }
    }
    area
}

/// The 2-dimensional staircase of a sweep: non-dominated points by x (y
/// strictly falling as x grows) and the area they dominate.
struct Staircase {
    /// x → y, as `f64` bits ordered through `Key`.
    steps: BTreeMap<Key, f64>,
    area: f64,
    r: (f64, f64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Key(f64);
impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl Staircase {
    fn new(r: (f64, f64)) -> Self {
        Self {
            steps: BTreeMap::new(),
            area: 0.0,
            r,
        }
    }

    /// Adds (x, y) and updates the dominated area.
    fn insert(&mut self, x: f64, y: f64) {
        // The lowest y among points with x' <= x: (x, y) adds nothing if
        // that is already <= y.
        let ceiling = match self.steps.range(..=Key(x)).next_back() {
            Some((_, &py)) => py,
            None => self.r.1,
        };
        if ceiling <= y {
            return;
        }
        // Points from x on with y' >= y are dominated by (x, y): walk them,
        // adding the area between the old staircase and y.
        let mut added = 0.0;
        let mut cursor_x = x;
        let mut height = ceiling;
        let dominated: Vec<Key> = self
            .steps
            .range(Key(x)..)
            .take_while(|(_, py)| **py >= y)
            .map(|(k, _)| *k)
            .collect();
        for k in &dominated {
            added += (k.0 - cursor_x) * (height - y);
            cursor_x = k.0;
            height = self.steps[k];
            self.steps.remove(k);
        }
        let next_x = self
            .steps
            .range(Key(x)..)
            .next()
            .map_or(self.r.0, |(k, _)| k.0);
        added += (next_x - cursor_x) * (height - y);
        self.area += added;
        self.steps.insert(Key(x), y);
    }
}

fn hv3(points: &[&[f64]], r: &[f64]) -> f64 {
    let mut p: Vec<&[f64]> = points.to_vec();
    p.sort_by(|a, b| a[2].total_cmp(&b[2]));
    let mut stairs = Staircase::new((r[0], r[1]));
    let mut volume = 0.0;
    for (k, q) in p.iter().enumerate() {
        stairs.insert(q[0], q[1]);
        let next_z = p.get(k + 1).map_or(r[2], |n| n[2]);
        volume += stairs.area * (next_z - q[2]);
    }
    volume
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::SplitMix64;

    fn random_points(rng: &mut SplitMix64, n: usize, m: usize, grid: u64) -> Vec<f64> {
        // A coarse grid makes ties and duplicates common.
        (0..n * m)
            .map(|_| (rng.next_u64() % grid) as f64 / grid as f64)
            .collect()
    }

    /// Fronts by repeatedly peeling the non-dominated points.
    fn brute_fronts(values: &[f64], m: usize) -> Vec<u32> {
        let n = values.len() / m;
        let row = |i: usize| &values[i * m..(i + 1) * m];
        let mut front = vec![u32::MAX; n];
        let mut level = 0;
        while front.contains(&u32::MAX) {
            let current: Vec<usize> = (0..n)
                .filter(|&i| front[i] == u32::MAX)
                .filter(|&i| !(0..n).any(|j| front[j] == u32::MAX && dominates(row(j), row(i))))
                .collect();
            for i in current {
                front[i] = level;
            }
            level += 1;
        }
        front
    }

    /// Hypervolume by counting the cells of the grid the coordinates span
    /// that some point dominates.
    fn brute_hypervolume(values: &[f64], m: usize, r: &[f64]) -> f64 {
        let pts: Vec<&[f64]> = values.chunks_exact(m).collect();
        let mut axes: Vec<Vec<f64>> = (0..m)
            .map(|k| {
                let mut a: Vec<f64> = pts.iter().map(|p| p[k]).filter(|&x| x < r[k]).collect();
                a.push(r[k]);
                a.sort_by(f64::total_cmp);
                a.dedup();
                a
            })
            .collect();
        for a in &mut axes {
            a.dedup();
        }
        let mut total = 0.0;
        let mut index = vec![0usize; m];
        'cells: loop {
            let corner: Vec<f64> = (0..m).map(|k| axes[k][index[k]]).collect();
            let inside = (0..m).all(|k| index[k] + 1 < axes[k].len());
            if inside && pts.iter().any(|p| (0..m).all(|k| p[k] <= corner[k])) {
                total += (0..m)
                    .map(|k| axes[k][index[k] + 1] - axes[k][index[k]])
                    .product::<f64>();
            }
            for k in 0..m {
                index[k] += 1;
                if index[k] < axes[k].len() {
                    continue 'cells;
                }
                index[k] = 0;
            }
            break;
        }
        total
    }

    #[test]
    fn fronts_match_brute_force_on_random_sets() {
        let mut rng = SplitMix64(7);
        for m in [2, 3, 4] {
            for trial in 0..200 {
                let n = 1 + trial % 60;
                let grid = if trial % 2 == 0 { 5 } else { 1000 };
                let v = random_points(&mut rng, n, m, grid);
                assert_eq!(fronts(&v, m), brute_fronts(&v, m), "m={m} trial={trial}");
            }
        }
    }

    #[test]
    fn hypervolume_matches_brute_force_on_random_sets() {
        let mut rng = SplitMix64(11);
        for m in [2, 3] {
            for trial in 0..300 {
                let n = 1 + trial % 25;
                let grid = if trial % 3 == 0 { 4 } else { 97 };
                let v = random_points(&mut rng, n, m, grid);
                // Some points outside the reference box, some on its edge.
                let r = vec![0.9; m];
                let fast = hypervolume(&v, m, &r).expect("2 or 3 objectives");
                let slow = brute_hypervolume(&v, m, &r);
                assert!(
                    (fast - slow).abs() <= 1e-12 * slow.max(1.0),
                    "m={m} trial={trial}: {fast} vs {slow}"
                );
                // Exclusive contributions, by leaving each point out.
                let contributions = exclusive_contributions(&v, m, &r).expect("2 or 3");
                for (i, c) in contributions.iter().enumerate() {
                    let mut rest = v.clone();
                    rest.drain(i * m..(i + 1) * m);
                    let expected = slow - brute_hypervolume(&rest, m, &r);
                    assert!(
                        (c - expected).abs() <= 1e-12 * slow.max(1.0),
                        "m={m} trial={trial} point {i}: {c} vs {expected}"
                    );
                }
            }
        }
        assert_eq!(hypervolume(&[0.1; 4], 4, &[1.0; 4]), None);
    }

    #[test]
    fn crowding_follows_nsga2() {
        // One front of four points on a line: the ends are infinite, the
        // middle ones get the sum of normalised neighbour gaps.
        let v = [0.0, 3.0, 1.0, 2.0, 2.0, 1.0, 3.0, 0.0];
        let f = fronts(&v, 2);
        assert_eq!(f, vec![0; 4]);
        let d = crowding_distances(&v, 2, &f);
        assert!(d[0].is_infinite() && d[3].is_infinite());
        assert!((d[1] - (2.0 / 3.0 + 2.0 / 3.0)).abs() < 1e-12, "{d:?}");
        assert!((d[2] - (2.0 / 3.0 + 2.0 / 3.0)).abs() < 1e-12, "{d:?}");
        // Two-point fronts are all boundary.
        let d = crowding_distances(&[0.0, 1.0, 1.0, 0.0], 2, &[0, 0]);
        assert!(d.iter().all(|x| x.is_infinite()));
    }
}

/// Whether an objective is maximised or minimised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Maximize,
    Minimize,
}

/// Fronts, crowding and hypervolume of a batch, in the caller's units.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    pub fronts: Vec<u32>,
    pub crowding: Vec<f64>,
    /// Of front 0, with a reference point.
    pub hypervolume: Option<f64>,
    /// For front-0 points, with a reference point.
    pub contributions: Vec<Option<f64>>,
}

/// Ranks `values` (`directions.len()` per point, finite) by the given
/// directions. A reference point, in the same units and directions, asks
/// for the hypervolume of front 0; it must have 2 or 3 values (callers
/// check).
pub fn rank(values: &[f64], directions: &[Direction], reference: Option<&[f64]>) -> Ranking {
    let m = directions.len();
    let n = values.len().checked_div(m).unwrap_or(0);
    // Minimise everything: negate what is maximised.
    let sign: Vec<f64> = directions
        .iter()
        .map(|d| match d {
            Direction::Maximize => -1.0,
            Direction::Minimize => 1.0,
        })
        .collect();
    let minimised: Vec<f64> = values
        .iter()
        .enumerate()
        .map(|(i, v)| v * sign[i % m])
        .collect();
    let front_of = fronts(&minimised, m);
    let crowding = crowding_distances(&minimised, m, &front_of);
    let mut contributions = vec![None; n];
    let mut hv = None;
    if let Some(reference) = reference {
        let r: Vec<f64> = reference.iter().zip(&sign).map(|(x, s)| x * s).collect();
        let first: Vec<usize> = (0..n).filter(|&i| front_of[i] == 0).collect();
        let points: Vec<f64> = first
            .iter()
            .flat_map(|&i| minimised[i * m..(i + 1) * m].iter().copied())
            .collect();
        hv = hypervolume(&points, m, &r);
        if let Some(c) = exclusive_contributions(&points, m, &r) {
            for (k, &i) in first.iter().enumerate() {
                contributions[i] = Some(c[k]);
            }
        }
    }
    Ranking {
        fronts: front_of,
        crowding,
        hypervolume: hv,
        contributions,
    }
}
