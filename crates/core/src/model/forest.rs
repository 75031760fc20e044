//! Our own evaluator of LightGBM's saved model text.
//!
//! Why not serve with `lightgbm3::Booster`: it wraps a raw C handle and is
//! neither `Send` nor `Sync`, so sharing one across tokio's worker threads
//! would need an `unsafe impl` resting on LightGBM's internal locking, and
//! every call would cross FFI (and, at batch size 1, pay LightGBM's per-call
//! set-up). A parsed forest is plain data: `Send + Sync` by construction,
//! shared through `Arc` by every request with no lock and no `unsafe`.
//! LightGBM remains the trainer and the reference; tests check that our
//! outputs equal `Booster::predict` on every NB201 cell.
//!
//! Supported: single-output models with an identity output transform
//! (`regression`, `regression_l1`, `huber`, `fair`, `quantile`, `mape`),
//! numerical splits with LightGBM's missing-value handling, and
//! `average_output` (random-forest mode). Anything else is refused at load,
//! never evaluated wrongly.

use std::collections::HashMap;

/// LightGBM's `kZeroThreshold` (a `float` in C++): values within it count as
/// zero for `missing_type=Zero` splits.
const ZERO_THRESHOLD: f64 = 1.000_000_018_002_509_5e-35;
const DEFAULT_LEFT_MASK: u8 = 2;
const CATEGORICAL_MASK: u8 = 1;
const MISSING_ZERO: u8 = 1;
const MISSING_NAN: u8 = 2;

const IDENTITY_OBJECTIVES: [&str; 6] = [
    "regression",
    "regression_l1",
    "huber",
    "fair",
    "quantile",
    "mape",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("LightGBM model text: {0}")]
pub struct ForestError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, ForestError> {
    Err(ForestError(msg.into()))
}

/// One split. Every tree's nodes live in one array ([`Forest::nodes`]), so
/// a node is one 24-byte read, not one read per field.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Node {
    threshold: f64,
    feature: u32,
    /// Where to go: >= 0 an index into [`Forest::nodes`], < 0 `!index`
    /// into [`Forest::leaves`].
    left: i32,
    right: i32,
    missing: Missing,
}

/// LightGBM's missing-value handling of one split, decoded at parse time
/// from `decision_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Missing {
    /// NaN counts as 0.0; no default branch.
    None,
    /// Zero (and NaN, counted as zero) takes the default branch.
    Zero { default_left: bool },
    /// NaN takes the default branch.
    Nan { default_left: bool },
}

impl Node {
    #[inline(always)]
    fn next(&self, row: &[f64]) -> i32 {
        let value = row[self.feature as usize];
        let go_left = match self.missing {
            Missing::None => {
                let value = if value.is_nan() { 0.0 } else { value };
                value <= self.threshold
            }
            Missing::Zero { default_left } => {
                let value = if value.is_nan() { 0.0 } else { value };
                if (-ZERO_THRESHOLD..=ZERO_THRESHOLD).contains(&value) {
                    default_left
                } else {
                    value <= self.threshold
                }
            }
            Missing::Nan { default_left } => {
                if value.is_nan() {
                    default_left
                } else {
                    value <= self.threshold
                }
            }
        };
        if go_left { self.left } else { self.right }
    }
}

/// A parsed model.
#[derive(Debug, Clone, PartialEq)]
pub struct Forest {
    feature_names: Vec<String>,
    /// Every tree's splits; a tree's children come after it.
    nodes: Vec<Node>,
    /// Every tree's leaf values.
    leaves: Vec<f64>,
    /// Where each tree starts: a node index (>= 0), or `!leaf` for a tree
    /// that is a single leaf.
    roots: Vec<i32>,
    average_output: bool,
}

/// Rows evaluated together by [`Forest::predict_batch`]: each tree is read
/// once per block and stays in cache while the block's rows go through it.
const BLOCK_ROWS: usize = 64;

impl Forest {
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    pub fn num_trees(&self) -> usize {
        self.roots.len()
    }

    #[inline(always)]
    fn tree_output(&self, root: i32, row: &[f64]) -> f64 {
        let mut at = root;
        while at >= 0 {
            at = self.nodes[at as usize].next(row);
        }
        self.leaves[!at as usize]
    }

    fn finish(&self, sum: f64) -> f64 {
        if self.average_output {
            sum / self.roots.len() as f64
        } else {
            sum
        }
    }

    /// Predicts one row of `feature_names().len()` values, NaN for missing.
    ///
    /// # Panics
    /// If `row` is shorter than the model's feature count; callers build
    /// rows with the model's own feature map.
    pub fn predict(&self, row: &[f64]) -> f64 {
        assert!(
            row.len() >= self.feature_names.len(),
            "row too short for the model"
        );
        let mut sum = 0.0;
        for &root in &self.roots {
            sum += self.tree_output(root, row);
        }
        self.finish(sum)
    }

    /// Predicts rows of `feature_names().len()` values each, stored one
    /// after the other in `rows`, into `out` (one value per row). Equal to
    /// [`Forest::predict`] row by row, bit for bit: each row's tree outputs
    /// are added in the same order.
    ///
    /// # Panics
    /// If `rows` is not a whole number of rows or `out` has not one slot
    /// per row.
    pub fn predict_batch(&self, rows: &[f64], out: &mut [f64]) {
        let width = self.feature_names.len();
        assert!(
            width > 0 && rows.len() == out.len() * width,
            "{} values for {} rows of {width}",
            rows.len(),
            out.len()
        );
        for (block, sums) in rows
            .chunks(BLOCK_ROWS * width)
            .zip(out.chunks_mut(BLOCK_ROWS))
        {
            sums.fill(0.0);
            for &root in &self.roots {
                for (sum, row) in sums.iter_mut().zip(block.chunks_exact(width)) {
                    *sum += self.tree_output(root, row);
                }
            }
            for sum in sums.iter_mut() {
                *sum = self.finish(*sum);
            }
        }
    }

    /// Parses LightGBM's text format and checks every index, so that
    /// [`Forest::predict`] cannot go out of bounds or loop.
    pub fn parse(text: &str) -> Result<Forest, ForestError> {
        let mut lines = text.lines().peekable();
        if lines.next().map(str::trim) != Some("tree") {
            return err("does not start with the line 'tree'");
        }
        let mut header = HashMap::new();
        let mut average_output = false;
        while let Some(line) = lines.peek() {
            if line.starts_with("Tree=") || line.starts_with("end of trees") {
                break;
            }
            let line = lines.next().unwrap_or_default().trim();
            if line == "average_output" {
                average_output = true;
            } else if let Some((k, v)) = line.split_once('=') {
                header.insert(k.to_owned(), v.to_owned());
            }
        }
        let num_class: usize = parse_scalar(&header, "num_class")?;
        if num_class != 1 {
            return err(format!(
                "num_class={num_class}: only single-output models are served"
            ));
        }
        let per_iteration: usize = parse_scalar(&header, "num_tree_per_iteration")?;
        if per_iteration != 1 {
            return err(format!(
                "num_tree_per_iteration={per_iteration} is not supported"
            ));
        }
        let objective = header
            .get("objective")
            .map(String::as_str)
            .unwrap_or_default();
        let mut words = objective.split_whitespace();
        let name = words.next().unwrap_or_default();
        if !IDENTITY_OBJECTIVES.contains(&name) || words.any(|w| w == "sqrt") {
            return err(format!(
                "objective {objective:?} transforms its output; only {} are served",
                IDENTITY_OBJECTIVES.join(", ")
            ));
        }
        let max_feature_idx: usize = parse_scalar(&header, "max_feature_idx")?;
        let feature_names: Vec<String> = header
            .get("feature_names")
            .map(|v| v.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        if feature_names.len() != max_feature_idx + 1 {
            return err(format!(
                "{} feature names for max_feature_idx={max_feature_idx}",
                feature_names.len()
            ));
        }

        let mut forest = Forest {
            feature_names,
            nodes: Vec::new(),
            leaves: Vec::new(),
            roots: Vec::new(),
            average_output,
        };
        let mut saw_end = false;
        while let Some(line) = lines.next() {
            let line = line.trim();
            if line.starts_with("end of trees") {
                saw_end = true;
                break;
            }
            if !line.starts_with("Tree=") {
                continue;
            }
            let mut fields = HashMap::new();
            while let Some(l) = lines.peek() {
                let l = l.trim();
                if l.is_empty() || l.starts_with("Tree=") || l.starts_with("end of trees") {
                    break;
                }
                if let Some((k, v)) = l.split_once('=') {
                    fields.insert(k.to_owned(), v.to_owned());
                }
                lines.next();
            }
            let index = forest.roots.len();
            forest
                .push_tree(&fields)
                .map_err(|e| ForestError(format!("{line}: {}", e.0)))?;
            if line != format!("Tree={index}") {
                return err(format!("expected Tree={index}, found {line}"));
            }
        }
        if !saw_end {
            return err("no 'end of trees' line: the file is truncated");
        }
        if forest.roots.is_empty() {
            return err("the model has no trees");
        }
        Ok(forest)
    }

    /// Checks one tree's arrays and appends it to the flat ones.
    fn push_tree(&mut self, fields: &HashMap<String, String>) -> Result<(), ForestError> {
        let tree = parse_tree(fields, self.feature_names.len())?;
        let too_big = || ForestError("the model has more than 2^31 nodes or leaves".to_owned());
        let node_base = i32::try_from(self.nodes.len()).map_err(|_| too_big())?;
        let leaf_base = i32::try_from(self.leaves.len()).map_err(|_| too_big())?;
        let (Some(_), Some(_)) = (
            node_base.checked_add(i32::try_from(tree.split_feature.len()).map_err(|_| too_big())?),
            leaf_base.checked_add(i32::try_from(tree.leaf_value.len()).map_err(|_| too_big())?),
        ) else {
            return Err(too_big());
        };
        // Child indices were checked against the tree's sizes, so the
        // shifted ones stay within the flat arrays.
        let shift = |child: i32| {
            if child >= 0 {
                child + node_base
            } else {
                !(!child + leaf_base)
            }
        };
        self.roots.push(if tree.split_feature.is_empty() {
            !leaf_base
        } else {
            node_base
        });
        for node in 0..tree.split_feature.len() {
            let decision = tree.decision_type[node];
            let default_left = decision & DEFAULT_LEFT_MASK != 0;
            let missing = match (decision >> 2) & 3 {
                MISSING_ZERO => Missing::Zero { default_left },
                MISSING_NAN => Missing::Nan { default_left },
                _ => Missing::None,
            };
            self.nodes.push(Node {
                threshold: tree.threshold[node],
                feature: tree.split_feature[node],
                left: shift(tree.left[node]),
                right: shift(tree.right[node]),
                missing,
            });
        }
        self.leaves.extend(tree.leaf_value);
        Ok(())
    }
}

/// One tree's arrays as LightGBM writes them, checked.
struct Tree {
    split_feature: Vec<u32>,
    threshold: Vec<f64>,
    decision_type: Vec<u8>,
    left: Vec<i32>,
    right: Vec<i32>,
    leaf_value: Vec<f64>,
}

fn parse_scalar<T: std::str::FromStr>(
    fields: &HashMap<String, String>,
    key: &str,
) -> Result<T, ForestError> {
    let v = fields
        .get(key)
        .ok_or_else(|| ForestError(format!("missing {key}")))?;
    v.trim()
        .parse()
        .map_err(|_| ForestError(format!("{key}={v:?} is not valid")))
}

fn parse_array<T: std::str::FromStr>(
    fields: &HashMap<String, String>,
    key: &str,
    len: usize,
) -> Result<Vec<T>, ForestError> {
    let v = fields
        .get(key)
        .ok_or_else(|| ForestError(format!("missing {key}")))?;
    let out: Vec<T> = v
        .split_whitespace()
        .map(|x| {
            x.parse()
                .map_err(|_| ForestError(format!("{key}: {x:?} is not valid")))
        })
        .collect::<Result<_, _>>()?;
    if out.len() != len {
        return err(format!("{key} has {} values, expected {len}", out.len()));
    }
    Ok(out)
}

fn parse_tree(fields: &HashMap<String, String>, num_features: usize) -> Result<Tree, ForestError> {
    let num_leaves: usize = parse_scalar(fields, "num_leaves")?;
    if num_leaves == 0 {
        return err("num_leaves=0");
    }
    if fields.get("num_cat").is_some_and(|v| v.trim() != "0") {
        return err("categorical splits are not supported");
    }
    if fields.get("is_linear").is_some_and(|v| v.trim() != "0") {
        return err("linear trees are not supported");
    }
    let leaf_value: Vec<f64> = parse_array(fields, "leaf_value", num_leaves)?;
    if leaf_value.iter().any(|v| !v.is_finite()) {
        return err("a leaf value is not finite");
    }
    if num_leaves == 1 {
        return Ok(Tree {
            split_feature: Vec::new(),
            threshold: Vec::new(),
            decision_type: Vec::new(),
            left: Vec::new(),
            right: Vec::new(),
            leaf_value,
        });
    }
    let internal = num_leaves - 1;
    let split_feature: Vec<u32> = parse_array(fields, "split_feature", internal)?;
    let threshold: Vec<f64> = parse_array(fields, "threshold", internal)?;
    let decision_type: Vec<u8> = parse_array(fields, "decision_type", internal)?;
    let left: Vec<i32> = parse_array(fields, "left_child", internal)?;
    let right: Vec<i32> = parse_array(fields, "right_child", internal)?;
    for node in 0..internal {
        if split_feature[node] as usize >= num_features {
            return err(format!(
                "node {node} splits on feature {} of {num_features}",
                split_feature[node]
            ));
        }
        if decision_type[node] & CATEGORICAL_MASK != 0 {
            return err(format!("node {node} is a categorical split"));
        }
        for child in [left[node], right[node]] {
            let ok = if child < 0 {
                (!child as usize) < num_leaves
            } else {
                // Children always have larger indices, which rules out cycles.
                (child as usize) < internal && child as usize > node
            };
            if !ok {
                return err(format!("node {node} has an invalid child {child}"));
            }
        }
    }
    Ok(Tree {
        split_feature,
        threshold,
        decision_type,
        left,
        right,
        leaf_value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two stumps: x0 <= 0.5 (NaN goes left), x1 <= 1 (missing as zero, default right).
    const MODEL: &str = "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\n\
        max_feature_idx=1\nobjective=regression\nfeature_names=a b\nfeature_infos=[0:1] [0:2]\n\n\
        Tree=0\nnum_leaves=2\nnum_cat=0\nsplit_feature=0\nthreshold=0.5\ndecision_type=10\n\
        left_child=-1\nright_child=-2\nleaf_value=1 2\nis_linear=0\nshrinkage=1\n\n\n\
        Tree=1\nnum_leaves=2\nnum_cat=0\nsplit_feature=1\nthreshold=1\ndecision_type=4\n\
        left_child=-1\nright_child=-2\nleaf_value=10 20\nis_linear=0\nshrinkage=1\n\n\n\
        end of trees\n";

    #[test]
    fn evaluates_splits_and_missing_values() {
        let f = Forest::parse(MODEL).unwrap();
        assert_eq!(f.feature_names(), ["a", "b"]);
        assert_eq!(f.predict(&[0.0, 0.5]), 1.0 + 10.0);
        // NaN on a NaN-missing split takes the default (left) branch.
        assert_eq!(f.predict(&[f64::NAN, 2.0]), 1.0 + 20.0);
        // Zero on a zero-missing split takes the default (right) branch...
        assert_eq!(f.predict(&[1.0, 0.0]), 2.0 + 20.0);
        // ...and so does NaN there, as LightGBM maps it to zero first.
        assert_eq!(f.predict(&[1.0, f64::NAN]), 2.0 + 20.0);
    }

    #[test]
    fn a_batch_equals_row_by_row_bit_for_bit() {
        let f = Forest::parse(MODEL).unwrap();
        // More rows than a block, not a multiple of it, with every kind of
        // missing value.
        let specials = [f64::NAN, 0.0, -0.0, 0.5, 1.0, 2.0, -3.0, 1e-40];
        let rows: Vec<f64> = (0..2 * BLOCK_ROWS + 5)
            .flat_map(|i| [specials[i % 8], specials[(i / 8) % 8]])
            .collect();
        let mut out = vec![f64::NAN; rows.len() / 2];
        f.predict_batch(&rows, &mut out);
        for (row, got) in rows.chunks(2).zip(&out) {
            assert_eq!(got.to_bits(), f.predict(row).to_bits(), "{row:?}");
        }
        // A forest in random-forest mode averages.
        let averaged = Forest::parse(&MODEL.replace(
            "objective=regression\n",
            "objective=regression\naverage_output\n",
        ))
        .unwrap();
        let mut out = [0.0];
        averaged.predict_batch(&[0.0, 0.5], &mut out);
        assert_eq!(out[0], (1.0 + 10.0) / 2.0);
    }

    #[test]
    fn refuses_what_it_cannot_evaluate() {
        let truncated = &MODEL[..MODEL.len() - 14];
        assert!(
            Forest::parse(truncated)
                .unwrap_err()
                .0
                .contains("truncated")
        );
        let bad_child = MODEL.replace(
            "left_child=-1\nright_child=-2\nleaf_value=1 2",
            "left_child=5\nright_child=-2\nleaf_value=1 2",
        );
        assert!(
            Forest::parse(&bad_child)
                .unwrap_err()
                .0
                .contains("invalid child")
        );
        let binary = MODEL.replace("objective=regression", "objective=binary sigmoid:1");
        assert!(
            Forest::parse(&binary)
                .unwrap_err()
                .0
                .contains("transforms its output")
        );
        let out_of_range = MODEL.replace("split_feature=1", "split_feature=7");
        assert!(
            Forest::parse(&out_of_range)
                .unwrap_err()
                .0
                .contains("splits on feature 7")
        );
        assert!(Forest::parse("").is_err());
    }
}
