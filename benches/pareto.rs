//! Ranking speed: `cargo bench --bench pareto`. 10,000 candidates with 3
//! objectives (random, and on a concave front where every point is
//! Pareto-optimal), fronts and crowding, on one core; the baseline in the
//! same run is the textbook O(M N²) fast non-dominated sort of NSGA-II.
//! Also the hypervolume of the first front with exclusive contributions.

use std::time::{Duration, Instant};

use nasperf::{pareto, train::SplitMix64};

fn naive_fronts(values: &[f64], m: usize) -> Vec<u32> {
    // Deb et al. 2002: domination counts and dominated sets.
    let n = values.len() / m;
    let row = |i: usize| &values[i * m..(i + 1) * m];
    let mut count = vec![0u32; n];
    let mut dominated: Vec<Vec<usize>> = vec![Vec::new(); n];
    for i in 0..n {
        for j in 0..n {
            if pareto::dominates(row(i), row(j)) {
                dominated[i].push(j);
            } else if pareto::dominates(row(j), row(i)) {
                count[i] += 1;
            }
        }
    }
    let mut front = vec![0u32; n];
    let mut current: Vec<usize> = (0..n).filter(|&i| count[i] == 0).collect();
    let mut level = 0;
    while !current.is_empty() {
        let mut next = Vec::new();
        for &i in &current {
            front[i] = level;
            for &j in &dominated[i] {
                count[j] -= 1;
                if count[j] == 0 {
                    next.push(j);
                }
            }
        }
        level += 1;
        current = next;
    }
    front
}

/// The best of `runs` timings.
fn best<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut out = None;
    for _ in 0..runs {
        let t = Instant::now();
        let r = f();
        best = best.min(t.elapsed());
        out = Some(r);
    }
    (best, out.expect("at least one run"))
}

fn main() {
    let n = 10_000;
    let m = 3;
    let mut rng = SplitMix64(1);
    let random: Vec<f64> = (0..n * m)
        .map(|_| (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
        .collect();
    // Points on the unit sphere's positive octant: one front of 10,000.
    let sphere: Vec<f64> = (0..n)
        .flat_map(|_| {
            let v: Vec<f64> = (0..m)
                .map(|_| (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 + 1e-9)
                .collect();
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            v.into_iter().map(move |x| x / norm)
        })
        .collect();
    let directions = vec![pareto::Direction::Minimize; m];
    println!(
        "{:<34} {:>12} {:>14} {:>8}",
        "case (10,000 x 3)", "nasperf", "NSGA-II sort", "ratio"
    );
    for (name, values) in [("random", &random), ("one front (sphere)", &sphere)] {
        let (ours, ranking) = best(5, || pareto::rank(values, &directions, None));
        let (naive, fronts) = best(1, || naive_fronts(values, m));
        assert_eq!(ranking.fronts, fronts, "{name}: both sorts agree");
        println!(
            "{:<34} {:>9.1} ms {:>11.1} ms {:>7.1}x",
            format!("{name}: fronts + crowding"),
            ours.as_secs_f64() * 1e3,
            naive.as_secs_f64() * 1e3,
            naive.as_secs_f64() / ours.as_secs_f64()
        );
    }
    let reference = vec![1.1; m];
    let (t, ranking) = best(3, || pareto::rank(&random, &directions, Some(&reference)));
    let first = ranking.fronts.iter().filter(|&&f| f == 0).count();
    println!(
        "random, + hypervolume and exclusive contributions of front 0 ({first} points): {:.1} ms",
        t.as_secs_f64() * 1e3
    );
}
