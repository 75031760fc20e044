//! One LightGBM model text out of several: the weighted mean of their
//! predictions, as a plain sum of trees.
//!
//! Why: the training recipe may choose the mean of a random forest and a
//! booster (`docs/quality.md`), and a served model is one model text with
//! one hash. A tree's output is its leaf value, so scaling every leaf of a
//! member by `weight` (divided by its tree count when it averages, as
//! LightGBM's random-forest mode does) and concatenating the trees gives a
//! model whose sum is the weighted mean. The result is ordinary model text:
//! our evaluator and LightGBM itself both load it.

use super::forest::{Forest, ForestError};

fn err<T>(msg: impl Into<String>) -> Result<T, ForestError> {
    Err(ForestError(msg.into()))
}

/// The value of `key=` in one tree's lines, trimmed.
fn tree_field<'a>(tree: &[&'a str], key: &str) -> Option<&'a str> {
    tree.iter()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .map(str::trim)
}

/// One member's text cut into its parts.
struct Parts<'a> {
    /// Header lines before the first tree, without `tree_sizes` and
    /// `average_output` (the blend has neither meaning).
    header: Vec<&'a str>,
    /// Each tree's lines, without the `Tree=` line.
    trees: Vec<Vec<&'a str>>,
    average_output: bool,
}

fn split(text: &str) -> Result<Parts<'_>, ForestError> {
    let mut parts = Parts {
        header: Vec::new(),
        trees: Vec::new(),
        average_output: false,
    };
    let mut saw_end = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("end of trees") {
            saw_end = true;
            break;
        }
        if trimmed.starts_with("Tree=") {
            parts.trees.push(Vec::new());
        } else if let Some(tree) = parts.trees.last_mut() {
            if !trimmed.is_empty() {
                tree.push(trimmed);
            }
        } else if trimmed == "average_output" {
            parts.average_output = true;
        } else if !trimmed.is_empty() && !trimmed.starts_with("tree_sizes=") {
            parts.header.push(trimmed);
        }
    }
    if !saw_end {
        return err("no 'end of trees' line: the file is truncated");
    }
    Ok(parts)
}

/// `key=v1 v2 ...` with every value multiplied by `scale`.
fn scaled(line: &str, key: &str, scale: f64) -> Result<String, ForestError> {
    let values = line.strip_prefix(key).unwrap_or_default();
    let mut out = String::with_capacity(line.len() + 16);
    out.push_str(key);
    for (i, v) in values.split_whitespace().enumerate() {
        let v: f64 = v
            .parse()
            .map_err(|_| ForestError(format!("{key}{v:?} is not a number")))?;
        if i > 0 {
            out.push(' ');
        }
        // `{:?}` is the shortest text that reads back to the same f64, with
        // an exponent for tiny values; LightGBM reads both forms.
        out.push_str(&format!("{:?}", v * scale));
    }
    Ok(out)
}

/// The weighted mean of `members` (`(weight, model text)`), as one model
/// text. Weights must be finite and positive; they are used as given (pass
/// weights that sum to 1 for a mean). Every member must be a valid model
/// over the same features with the same objective.
pub fn blend(members: &[(f64, &str)]) -> Result<String, ForestError> {
    let Some((_, first)) = members.first() else {
        return err("a blend needs at least one model");
    };
    let reference = Forest::parse(first)?;
    let first_parts = split(first)?;
    let header_key = |parts: &Parts<'_>, key: &str| {
        parts
            .header
            .iter()
            .find(|l| l.starts_with(key))
            .map(|l| l.to_string())
    };
    let mut out = String::new();
    for line in &first_parts.header {
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    let mut index = 0usize;
    for (m, &(weight, text)) in members.iter().enumerate() {
        if !(weight.is_finite() && weight > 0.0) {
            return err(format!("member {m} has weight {weight}"));
        }
        let forest =
            Forest::parse(text).map_err(|e| ForestError(format!("member {m}: {}", e.0)))?;
        if forest.feature_names() != reference.feature_names() {
            return err(format!("member {m} has other features than member 0"));
        }
        let parts = split(text)?;
        for key in ["objective=", "num_class=", "num_tree_per_iteration="] {
            if header_key(&parts, key) != header_key(&first_parts, key) {
                return err(format!("member {m} differs from member 0 in {key}"));
            }
        }
        let scale = if parts.average_output {
            weight / parts.trees.len() as f64
        } else {
            weight
        };
        for tree in &parts.trees {
            out.push_str(&format!("Tree={index}\n"));
            for line in tree {
                if line.starts_with("leaf_value=") {
                    out.push_str(&scaled(line, "leaf_value=", scale)?);
                } else if line.starts_with("internal_value=") {
                    out.push_str(&scaled(line, "internal_value=", scale)?);
                } else {
                    out.push_str(line);
                }
                out.push('\n');
            }
            out.push('\n');
            index += 1;
        }
    }
    out.push_str("end of trees\n");
    // Checked like any model text before it leaves.
    Forest::parse(&out)?;
    Ok(out)
}

/// `text` predicting `shift` more for every row: `shift` added to every
/// leaf of its first tree. With [`blend`], an affine map of members'
/// predictions (positive weights, any intercept) as one model text, which
/// the recipe's mean over related objectives needs to land on the target's
/// scale. A text that averages its trees (random-forest mode) is refused:
/// there one tree's leaves count a fraction; blend it first.
pub fn offset(text: &str, shift: f64) -> Result<String, ForestError> {
    if !shift.is_finite() {
        return err(format!("an offset of {shift}"));
    }
    let parts = split(text)?;
    if parts.average_output {
        return err("an averaging model cannot be offset through one tree; blend it first");
    }
    if parts.trees.is_empty() {
        return err("a model without trees cannot be offset");
    }
    let mut out = String::with_capacity(text.len() + 64);
    let mut tree = 0usize;
    let mut in_first = false;
    let mut shifted = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("Tree=") {
            in_first = tree == 0;
            tree += 1;
        } else if trimmed.starts_with("end of trees") {
            in_first = false;
        }
        if in_first && !shifted && trimmed.starts_with("leaf_value=") {
            let values = trimmed.strip_prefix("leaf_value=").unwrap_or_default();
            let mut line = String::from("leaf_value=");
            for (i, v) in values.split_whitespace().enumerate() {
                let v: f64 = v
                    .parse()
                    .map_err(|_| ForestError(format!("leaf_value={v:?} is not a number")))?;
                if i > 0 {
                    line.push(' ');
                }
                line.push_str(&format!("{:?}", v + shift));
            }
            out.push_str(&line);
            shifted = true;
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    if !shifted {
        return err("the first tree has no leaf_value line");
    }
    Forest::parse(&out)?;
    Ok(out)
}

/// `text` with its stumps (trees of one split) that split the same way
/// summed into one tree each: the same predictions (up to the order of
/// floating-point additions) from at most one stump per split.
///
/// Why: the recipe's additive model is a thousand boosted stumps on
/// binary one-hot features, each of which has one possible split, so a
/// thousand trees collapse to at most one per feature. Serving walks every
/// tree of every model for every candidate; a served additive model costs
/// a few dozen trees instead of a thousand. Trees with more than one
/// split are kept as they are.
pub fn merge_stumps(text: &str) -> Result<String, ForestError> {
    Forest::parse(text)?;
    let parts = split(text)?;
    if parts.average_output {
        return err("a model that averages its trees cannot have them summed");
    }
    /// A tree to write: a merged stump (its lines, where leaf and internal
    /// values are replaced by the sums) or a tree kept as it is.
    struct Out<'a> {
        lines: Vec<&'a str>,
        stump_key: Option<String>,
        leaves: [f64; 2],
        internal: f64,
    }
    let number = |v: &str, what: &str| -> Result<f64, ForestError> {
        v.parse()
            .map_err(|_| ForestError(format!("{what}: {v:?} is not a number")))
    };
    let mut out: Vec<Out<'_>> = Vec::new();
    for tree in &parts.trees {
        let is_stump =
            tree_field(tree, "num_leaves") == Some("2") && tree_field(tree, "num_cat") == Some("0");
        if !is_stump {
            out.push(Out {
                lines: tree.clone(),
                stump_key: None,
                leaves: [0.0; 2],
                internal: 0.0,
            });
            continue;
        }
        let key = [
            "split_feature",
            "threshold",
            "decision_type",
            "left_child",
            "right_child",
        ]
        .map(|k| tree_field(tree, k).unwrap_or_default())
        .join(";");
        let leaf_text = tree_field(tree, "leaf_value").unwrap_or_default();
        let leaves: Vec<f64> = leaf_text
            .split_whitespace()
            .map(|v| number(v, "leaf_value"))
            .collect::<Result<_, _>>()?;
        let [left, right] = leaves[..] else {
            return err(format!("a stump with leaf values {leaf_text:?}"));
        };
        let internal = match tree_field(tree, "internal_value") {
            Some(v) => number(v, "internal_value")?,
            None => 0.0,
        };
        match out
            .iter_mut()
            .find(|o| o.stump_key.as_deref() == Some(key.as_str()))
        {
            Some(o) => {
                o.leaves[0] += left;
                o.leaves[1] += right;
                o.internal += internal;
            }
            None => out.push(Out {
                lines: tree.clone(),
                stump_key: Some(key),
                leaves: [left, right],
                internal,
            }),
        }
    }
    let mut text_out = String::new();
    for line in &parts.header {
        text_out.push_str(line);
        text_out.push('\n');
    }
    text_out.push('\n');
    for (index, tree) in out.iter().enumerate() {
        text_out.push_str(&format!("Tree={index}\n"));
        for line in &tree.lines {
            let line = match tree.stump_key {
                Some(_) if line.starts_with("leaf_value=") => {
                    format!("leaf_value={:?} {:?}", tree.leaves[0], tree.leaves[1])
                }
                Some(_) if line.starts_with("internal_value=") => {
                    format!("internal_value={:?}", tree.internal)
                }
                // The leaf values already include every stump's shrinkage.
                Some(_) if line.starts_with("shrinkage=") => "shrinkage=1".to_owned(),
                _ => (*line).to_owned(),
            };
            text_out.push_str(&line);
            text_out.push('\n');
        }
        text_out.push('\n');
    }
    text_out.push_str("end of trees\n");
    Forest::parse(&text_out)?;
    Ok(text_out)
}

/// `text`, a model trained on some of the columns of a table, as a model of
/// every column: `columns[i]` is the column of the table that the model's
/// feature `i` was, and `names` are the table's feature names. The trees
/// are the same; their splits name the table's columns, and the columns
/// the model never saw are unused features (`none` in `feature_infos`, as
/// LightGBM writes for a feature no tree can split on).
///
/// Why: a candidate that may split on a few columns only (the one-hot of
/// the cell, the op counts, the proxies) trains several times faster on
/// those columns than on all of them with the others' gain zeroed, and the
/// served model still reads the table's rows as they are.
pub fn widen(text: &str, columns: &[usize], names: &[String]) -> Result<String, ForestError> {
    let narrow = Forest::parse(text)?;
    if narrow.feature_names().len() != columns.len() {
        return err(format!(
            "a model of {} features widened by {} columns",
            narrow.feature_names().len(),
            columns.len()
        ));
    }
    if let Some(&c) = columns.iter().find(|&&c| c >= names.len()) {
        return err(format!("column {c} of a table of {}", names.len()));
    }
    let mut out = String::with_capacity(text.len() + 16 * names.len());
    let mut in_trees = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("Tree=") {
            in_trees = true;
        } else if trimmed.starts_with("end of trees") {
            // What follows (importances, parameters) names features by
            // name, which are the table's names too.
            in_trees = false;
        }
        let widened = if let Some(features) = trimmed.strip_prefix("split_feature=") {
            let mapped = features
                .split_whitespace()
                .map(|f| {
                    f.parse::<usize>()
                        .ok()
                        .and_then(|i| columns.get(i))
                        .map(usize::to_string)
                        .ok_or_else(|| ForestError(format!("split_feature {f:?} is not a feature")))
                })
                .collect::<Result<Vec<String>, _>>()?;
            Some(format!("split_feature={}", mapped.join(" ")))
        } else if in_trees {
            None
        } else if trimmed.starts_with("max_feature_idx=") {
            Some(format!("max_feature_idx={}", names.len().saturating_sub(1)))
        } else if trimmed.starts_with("feature_names=") {
            Some(format!("feature_names={}", names.join(" ")))
        } else if let Some(infos) = trimmed.strip_prefix("feature_infos=") {
            let infos: Vec<&str> = infos.split_whitespace().collect();
            let mut wide = vec!["none"; names.len()];
            for (&column, info) in columns.iter().zip(infos) {
                wide[column] = info;
            }
            Some(format!("feature_infos={}", wide.join(" ")))
        } else if trimmed.starts_with("tree_sizes=") {
            // The trees' byte sizes change with their split features.
            continue;
        } else {
            None
        };
        out.push_str(widened.as_deref().unwrap_or(line));
        out.push('\n');
    }
    Forest::parse(&out)?;
    Ok(out)
}

/// Which side of a guard's threshold a guarded tree answers on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Feature value at most the threshold.
    AtMost,
    /// Feature value above the threshold.
    Above,
}

/// `text` with every tree behind a split on `feature` at `threshold`: on
/// `side` the tree answers as before, on the other it outputs 0. Blending
/// (weights 1) a model guarded `Above` with one guarded `AtMost` on the same
/// split gives one model that answers each row from one of them, e.g. from
/// trees trained with proxies when every proxy was sent and from trees
/// trained without them otherwise. A missing (NaN) feature value counts as
/// 0, as LightGBM's `missing_type=None` splits do.
pub fn guard(
    text: &str,
    feature: usize,
    threshold: f64,
    side: Side,
) -> Result<String, ForestError> {
    let forest = Forest::parse(text)?;
    if feature >= forest.feature_names().len() {
        return err(format!(
            "guard feature {feature} of {}",
            forest.feature_names().len()
        ));
    }
    if !threshold.is_finite() {
        return err("the guard's threshold must be finite");
    }
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    let mut in_tree = false;
    let mut tree: Vec<&str> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("Tree=") || trimmed.starts_with("end of trees") {
            if in_tree {
                out.push_str(&guard_tree(&tree, feature, threshold, side)?);
                tree.clear();
            }
            in_tree = trimmed.starts_with("Tree=");
            out.push_str(line);
            out.push('\n');
        } else if in_tree {
            if !trimmed.is_empty() {
                tree.push(trimmed);
            }
        } else if !trimmed.starts_with("tree_sizes=") {
            out.push_str(line);
            out.push('\n');
        }
    }
    Forest::parse(&out)?;
    Ok(out)
}

/// One tree's lines (after `Tree=`) behind a new root split.
fn guard_tree(
    lines: &[&str],
    feature: usize,
    threshold: f64,
    side: Side,
) -> Result<String, ForestError> {
    let field = |key: &str| tree_field(lines, key).unwrap_or_default();
    let num_leaves: usize = field("num_leaves")
        .trim()
        .parse()
        .map_err(|_| ForestError("num_leaves is not a number".to_owned()))?;
    let ints = |key: &str| -> Result<Vec<i64>, ForestError> {
        field(key)
            .split_whitespace()
            .map(|v| {
                v.parse()
                    .map_err(|_| ForestError(format!("{key}: {v:?} is not an integer")))
            })
            .collect()
    };
    // Children: internal nodes shift by one (the new root is node 0), old
    // leaves keep their index, the new zero leaf is leaf `num_leaves`.
    let shift = |children: Vec<i64>| -> Vec<String> {
        children
            .into_iter()
            .map(|c| if c >= 0 { c + 1 } else { c }.to_string())
            .collect()
    };
    let old_root = if num_leaves == 1 {
        "-1".to_owned()
    } else {
        "1".to_owned()
    };
    let zero_leaf = (-(num_leaves as i64) - 1).to_string();
    let (left, right) = match side {
        Side::AtMost => (old_root, zero_leaf),
        Side::Above => (zero_leaf, old_root),
    };
    let prepend = |first: String, rest: &str| {
        if rest.trim().is_empty() {
            first
        } else {
            format!("{first} {}", rest.trim())
        }
    };
    // Per-leaf arrays LightGBM may leave out of a one-leaf tree.
    let per_leaf = |key: &str| {
        let values = field(key).trim();
        if values.split_whitespace().count() == num_leaves {
            format!("{values} 0")
        } else {
            vec!["0"; num_leaves + 1].join(" ")
        }
    };
    let total_count: f64 = field("leaf_count")
        .split_whitespace()
        .filter_map(|v| v.parse::<f64>().ok())
        .sum();
    let total_weight: f64 = field("leaf_weight")
        .split_whitespace()
        .filter_map(|v| v.parse::<f64>().ok())
        .sum();
    let mut out = String::new();
    let mut push = |key: &str, value: String| {
        out.push_str(key);
        out.push('=');
        out.push_str(&value);
        out.push('\n');
    };
    push("num_leaves", (num_leaves + 1).to_string());
    push("num_cat", "0".to_owned());
    push(
        "split_feature",
        prepend(feature.to_string(), field("split_feature")),
    );
    push("split_gain", prepend("0".to_owned(), field("split_gain")));
    push(
        "threshold",
        prepend(format!("{threshold:?}"), field("threshold")),
    );
    // decision_type 0: numerical, no default branch, missing as zero value.
    push(
        "decision_type",
        prepend("0".to_owned(), field("decision_type")),
    );
    push(
        "left_child",
        prepend(left, &shift(ints("left_child")?).join(" ")),
    );
    push(
        "right_child",
        prepend(right, &shift(ints("right_child")?).join(" ")),
    );
    push("leaf_value", per_leaf("leaf_value"));
    push("leaf_weight", per_leaf("leaf_weight"));
    push("leaf_count", per_leaf("leaf_count"));
    push(
        "internal_value",
        prepend("0".to_owned(), field("internal_value")),
    );
    push(
        "internal_weight",
        prepend(format!("{total_weight:?}"), field("internal_weight")),
    );
    push(
        "internal_count",
        prepend(format!("{}", total_count as u64), field("internal_count")),
    );
    push("is_linear", "0".to_owned());
    push("shrinkage", field("shrinkage").trim().to_owned());
    out.push_str("\n\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_widened_model_reads_the_table_and_predicts_as_the_narrow_one() {
        let narrow = model(false, ["1 2", "10 20"]);
        let names: Vec<String> = ["x", "a", "y", "b"].map(String::from).to_vec();
        let wide = widen(&narrow, &[1, 3], &names).expect("widen");
        assert!(!wide.contains("tree_sizes"));
        assert!(
            wide.contains("feature_infos=none [0:1] none [0:1]"),
            "{wide}"
        );
        let (narrow, wide) = (
            Forest::parse(&narrow).expect("parse"),
            Forest::parse(&wide).expect("parse"),
        );
        assert_eq!(wide.feature_names(), &names[..]);
        for (a, b) in [(0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0)] {
            // The columns the narrow model never saw change nothing.
            for other in [-5.0, f64::NAN] {
                assert_eq!(
                    wide.predict(&[other, a, other, b]),
                    narrow.predict(&[a, b]),
                    "a={a} b={b}"
                );
            }
        }
        let two: Vec<String> = ["a", "b"].map(String::from).to_vec();
        let text = model(false, ["1 2", "10 20"]);
        assert!(
            widen(&text, &[0], &names).is_err(),
            "one column for two features"
        );
        assert!(
            widen(&text, &[0, 2], &two).is_err(),
            "a column beyond the table"
        );
    }

    fn model(average: bool, leaves: [&str; 2]) -> String {
        format!(
            "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\n\
             max_feature_idx=1\nobjective=regression\n{}feature_names=a b\n\
             feature_infos=[0:1] [0:1]\ntree_sizes=1 1\n\n\
             Tree=0\nnum_leaves=2\nnum_cat=0\nsplit_feature=0\nsplit_gain=1\nthreshold=0.5\n\
             decision_type=2\nleft_child=-1\nright_child=-2\nleaf_value={}\n\
             leaf_weight=1 1\nleaf_count=1 1\ninternal_value=0\ninternal_weight=2\n\
             internal_count=2\nis_linear=0\nshrinkage=1\n\n\n\
             Tree=1\nnum_leaves=2\nnum_cat=0\nsplit_feature=1\nsplit_gain=1\nthreshold=0.5\n\
             decision_type=2\nleft_child=-1\nright_child=-2\nleaf_value={}\n\
             leaf_weight=1 1\nleaf_count=1 1\ninternal_value=0\ninternal_weight=2\n\
             internal_count=2\nis_linear=0\nshrinkage=1\n\n\n\
             end of trees\n\nfeature_importances:\na=1\n",
            if average { "average_output\n" } else { "" },
            leaves[0],
            leaves[1]
        )
    }

    #[test]
    fn merged_stumps_predict_as_the_stumps_did() {
        // Two stumps on feature 0 and one on feature 1 (the model's own
        // tree 1), then a tree of two splits that is kept as it is.
        let stumps = model(false, ["0.5 -0.5", "2 4"]);
        let tree0 = stumps
            .split("Tree=1")
            .next()
            .and_then(|h| h.split("Tree=0").nth(1))
            .expect("tree 0");
        let deeper = "num_leaves=3\nnum_cat=0\nsplit_feature=0 1\nsplit_gain=1 1\n\
                      threshold=0.5 0.5\ndecision_type=2 2\nleft_child=-1 -2\n\
                      right_child=1 -3\nleaf_value=1 2 3\nleaf_weight=1 1 1\n\
                      leaf_count=1 1 1\ninternal_value=0 0\ninternal_weight=3 2\n\
                      internal_count=3 2\nis_linear=0\nshrinkage=1\n\n";
        let text = stumps.replace(
            "end of trees",
            &format!("Tree=2{tree0}Tree=3\n{deeper}end of trees"),
        );
        let merged = merge_stumps(&text).expect("merge");
        let (before, after) = (
            Forest::parse(&text).expect("stumps"),
            Forest::parse(&merged).expect("merged"),
        );
        assert_eq!((before.num_trees(), after.num_trees()), (4, 3));
        for row in [
            [0.0, 0.0],
            [1.0, 0.0],
            [0.0, 1.0],
            [1.0, 1.0],
            [f64::NAN, 1.0],
        ] {
            let (b, a) = (before.predict(&row), after.predict(&row));
            assert!((a - b).abs() < 1e-12, "{row:?}: {b} -> {a}");
        }
        assert!(merged.contains("leaf_value=1.0 -1.0"), "{merged}");
        assert!(merge_stumps(&model(true, ["1 3", "10 30"])).is_err());
    }

    #[test]
    fn a_blend_predicts_the_weighted_mean_of_its_members() {
        let forest = model(true, ["1 3", "10 30"]);
        let boosted = model(false, ["0.5 -0.5", "2 4"]);
        let blended = blend(&[(0.25, &forest), (0.75, &boosted)]).expect("blend");
        let (f, b, m) = (
            Forest::parse(&forest).expect("forest"),
            Forest::parse(&boosted).expect("booster"),
            Forest::parse(&blended).expect("blend parses"),
        );
        assert_eq!(m.num_trees(), 4);
        for row in [
            [0.0, 0.0],
            [1.0, 0.0],
            [0.0, 1.0],
            [1.0, 1.0],
            [f64::NAN, 0.2],
        ] {
            let want = 0.25 * f.predict(&row) + 0.75 * b.predict(&row);
            let got = m.predict(&row);
            assert!(
                (got - want).abs() <= 1e-12 * want.abs().max(1.0),
                "{row:?}: {got} vs {want}"
            );
        }
        assert!(!blended.contains("average_output") && !blended.contains("tree_sizes"));
    }

    #[test]
    fn an_offset_model_predicts_its_shift_more_everywhere() {
        let boosted = model(false, ["0.5 -0.5", "2 4"]);
        let shifted = offset(&boosted, -7.25).expect("offset");
        let (b, s) = (
            Forest::parse(&boosted).expect("booster"),
            Forest::parse(&shifted).expect("offset parses"),
        );
        for row in [
            [0.0, 0.0],
            [1.0, 0.0],
            [0.0, 1.0],
            [1.0, 1.0],
            [f64::NAN, 0.2],
        ] {
            let (want, got) = (b.predict(&row) - 7.25, s.predict(&row));
            assert!((got - want).abs() < 1e-12, "{row:?}: {got} vs {want}");
        }
        // Only tree 0 changes.
        assert!(shifted.contains("leaf_value=-6.75 -7.75") && shifted.contains("leaf_value=2 4"));
        let averaged = model(true, ["1 3", "10 30"]);
        assert!(offset(&averaged, 1.0).is_err(), "an averaging model");
        assert!(offset(&boosted, f64::NAN).is_err());
        // Through a blend it works on the forest too.
        let blended = blend(&[(1.0, &averaged)]).expect("blend");
        let f = Forest::parse(&averaged).expect("forest");
        let o = Forest::parse(&offset(&blended, 1.0).expect("offset")).expect("parses");
        assert!((o.predict(&[1.0, 1.0]) - f.predict(&[1.0, 1.0]) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn two_guarded_models_answer_each_row_from_one_of_them() {
        let with = model(false, ["1 3", "10 30"]);
        let without = model(true, ["-1 -3", "-10 -30"]);
        // Feature 1 decides: at most 0.25 -> `without`, above -> `with`.
        let switched = blend(&[
            (1.0, &guard(&with, 1, 0.25, Side::Above).expect("guard")),
            (1.0, &guard(&without, 1, 0.25, Side::AtMost).expect("guard")),
        ])
        .expect("blend");
        let (w, wo, s) = (
            Forest::parse(&with).expect("with"),
            Forest::parse(&without).expect("without"),
            Forest::parse(&switched).expect("switched"),
        );
        for row in [
            [0.0, 0.0],
            [1.0, 0.1],
            [0.0, 0.9],
            [1.0, 1.0],
            [f64::NAN, 0.7],
        ] {
            let want = if row[1] > 0.25 {
                w.predict(&row)
            } else {
                wo.predict(&row)
            };
            assert_eq!(s.predict(&row), want, "{row:?}");
        }
        // A one-leaf tree gets a root of its own too.
        let stump = model(false, ["1 3", "10 30"]).replacen(
            "num_leaves=2\nnum_cat=0\nsplit_feature=0\nsplit_gain=1\nthreshold=0.5\n\
             decision_type=2\nleft_child=-1\nright_child=-2\nleaf_value=1 3\n\
             leaf_weight=1 1\nleaf_count=1 1\ninternal_value=0\ninternal_weight=2\n\
             internal_count=2\n",
            "num_leaves=1\nnum_cat=0\nsplit_feature=\nsplit_gain=\nthreshold=\n\
             decision_type=\nleft_child=\nright_child=\nleaf_value=7\n\
             leaf_weight=2\nleaf_count=2\ninternal_value=\ninternal_weight=\n\
             internal_count=\n",
            1,
        );
        let guarded =
            Forest::parse(&guard(&stump, 0, 0.5, Side::AtMost).expect("guard")).expect("parses");
        let plain = Forest::parse(&stump).expect("parses");
        assert_eq!(guarded.predict(&[0.2, 0.0]), plain.predict(&[0.2, 0.0]));
        assert_eq!(plain.predict(&[0.2, 0.0]), 7.0 + 10.0);
        assert_eq!(guarded.predict(&[0.9, 0.0]), 0.0, "every tree is off above");
        assert!(guard(&with, 2, 0.5, Side::Above).is_err());
        assert!(guard(&with, 0, f64::NAN, Side::Above).is_err());
    }

    #[test]
    fn refuses_members_that_do_not_fit_together() {
        let a = model(false, ["1 2", "3 4"]);
        let other_features = a.replace("feature_names=a b", "feature_names=a c");
        assert!(blend(&[(0.5, &a), (0.5, &other_features)]).is_err());
        let other_objective = a.replace("objective=regression", "objective=huber");
        assert!(blend(&[(0.5, &a), (0.5, &other_objective)]).is_err());
        assert!(blend(&[(0.0, &a)]).is_err());
        assert!(blend(&[(f64::NAN, &a)]).is_err());
        assert!(blend(&[]).is_err());
        assert!(blend(&[(1.0, &a[..a.len() / 2])]).is_err());
    }
}
