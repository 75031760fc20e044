//! Graph features in the spirit of GRAF (Kadlecová et al., ICML 2024): for
//! every non-empty subset of the operations that compute something (skip,
//! conv1x1, conv3x3, avgpool), the shortest and the longest input-to-output
//! path that uses only operations of the subset (so "the shortest path that
//! avoids X" is the subset without X), and the input's out-degree and the
//! output's in-degree counting only those operations.
//!
//! A missing path is encoded as 0 (every real path has length >= 1), so a
//! tree can separate "no path" from any length.

use super::cell::{Cell, EDGES, NODES, Op};

/// The operations that can be in a subset (`none` is the absence of an edge).
pub const SUBSET_OPS: [Op; 4] = [
    Op::SkipConnect,
    Op::NorConv1x1,
    Op::NorConv3x3,
    Op::AvgPool3x3,
];
/// The number of non-empty subsets of [`SUBSET_OPS`].
pub const SUBSETS: usize = (1 << SUBSET_OPS.len()) - 1;
/// Features per subset, in [`subset_feature_names`] order.
pub const FEATURES_PER_SUBSET: usize = 4;

/// The subset with bit i set for `SUBSET_OPS[i]`, as `skip+conv3x3`.
pub fn subset_name(mask: usize) -> String {
    SUBSET_OPS
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, op)| op.short_name())
        .collect::<Vec<_>>()
        .join("+")
}

/// The feature names, subset by subset (mask 1..=15).
pub fn subset_feature_names() -> Vec<String> {
    let mut names = Vec::with_capacity(SUBSETS * FEATURES_PER_SUBSET);
    for mask in 1..=SUBSETS {
        let s = subset_name(mask);
        names.push(format!("graph.min_path.{s}"));
        names.push(format!("graph.max_path.{s}"));
        names.push(format!("graph.input_out_degree.{s}"));
        names.push(format!("graph.output_in_degree.{s}"));
    }
    names
}

/// Appends the features of `cell` in [`subset_feature_names`] order.
pub fn push_subset_features(cell: &Cell, out: &mut Vec<f64>) {
    // Bit of each edge's op in the subset masks; `none` is in no subset.
    let edge_bits: [usize; 6] = std::array::from_fn(|e| {
        SUBSET_OPS
            .iter()
            .position(|&op| op == cell.0[e])
            .map_or(0, |i| 1 << i)
    });
    for mask in 1..=SUBSETS {
        let allowed = |e: usize| edge_bits[e] & mask != 0;
        // Longest and shortest path lengths from the input to each node; the
        // edges are in topological order, so one pass suffices.
        let mut shortest = [u32::MAX; NODES];
        let mut longest = [None::<u32>; NODES];
        shortest[0] = 0;
        longest[0] = Some(0);
        let (mut input_out, mut output_in) = (0u32, 0u32);
        for (e, &(from, to)) in EDGES.iter().enumerate() {
            if !allowed(e) {
                continue;
            }
            if from == 0 {
                input_out += 1;
            }
            if to == NODES - 1 {
                output_in += 1;
            }
            if shortest[from] != u32::MAX {
                shortest[to] = shortest[to].min(shortest[from] + 1);
            }
            if let Some(l) = longest[from] {
                longest[to] = Some(longest[to].map_or(l + 1, |cur| cur.max(l + 1)));
            }
        }
        let out_node = NODES - 1;
        let min_path = if shortest[out_node] == u32::MAX {
            0
        } else {
            shortest[out_node]
        };
        out.push(f64::from(min_path));
        out.push(f64::from(longest[out_node].unwrap_or(0)));
        out.push(f64::from(input_out));
        out.push(f64::from(output_in));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(codes: &str) -> Vec<f64> {
        let mut out = Vec::new();
        push_subset_features(&Cell::parse(codes).unwrap(), &mut out);
        out
    }

    fn get(codes: &str, name: &str) -> f64 {
        let names = subset_feature_names();
        let i = names.iter().position(|n| n == name).unwrap();
        features(codes)[i]
    }

    #[test]
    fn paths_and_degrees() {
        // String order 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2.
        // 3<-0 skip; 1<-0 conv3x3, 3<-1 conv3x3; 2<-0 conv1x1, 2<-1 avgpool, 3<-2 conv1x1.
        let cell = "324132";
        assert_eq!(get(cell, "graph.min_path.skip"), 1.0);
        assert_eq!(get(cell, "graph.max_path.skip"), 1.0);
        assert_eq!(get(cell, "graph.min_path.conv3x3"), 2.0);
        assert_eq!(get(cell, "graph.min_path.conv1x1"), 2.0);
        assert_eq!(get(cell, "graph.min_path.avgpool"), 0.0, "no path");
        assert_eq!(get(cell, "graph.max_path.conv1x1+conv3x3+avgpool"), 3.0);
        assert_eq!(get(cell, "graph.min_path.conv1x1+conv3x3+avgpool"), 2.0);
        assert_eq!(
            get(cell, "graph.input_out_degree.skip+conv1x1+conv3x3+avgpool"),
            3.0
        );
        assert_eq!(get(cell, "graph.output_in_degree.conv3x3"), 1.0);
        assert_eq!(subset_feature_names().len(), SUBSETS * FEATURES_PER_SUBSET);
        assert_eq!(features(cell).len(), SUBSETS * FEATURES_PER_SUBSET);
    }
}
