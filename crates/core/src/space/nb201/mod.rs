//! NAS-Bench-201: a cell of 4 nodes with one of 5 operations on each of its 6
//! edges (15,625 cells, 9,445 distinct networks), stacked into a fixed
//! network.

pub mod cell;
pub mod cost;
pub mod graph;

use self::cell::{Cell, Op};
use crate::{
    dataset::Dataset,
    space::{ArchError, ParsedArch, SearchSpace},
};

pub const NAME: &str = "nb201";

/// The NB201 search space and its features.
///
/// Features come in two views. What the network *computes* (accuracy,
/// robustness) depends only on the canonical cell, so `ops.*`, `graph.*`,
/// `params_m.*` and `flops_m.*` are computed from it and are equal for every
/// cell of a canonical group. What the device *runs* (latency, energy)
/// includes dead operations, so `ops_sent.*`, `params_m_sent.*`,
/// `flops_m_sent.*` and `onehot.*` (which op is on which edge) describe the
/// cell as sent; hardware models use both.
#[derive(Debug)]
pub struct Nb201 {
    feature_names: Vec<String>,
}

impl Nb201 {
    pub fn new() -> Self {
        let mut names = Vec::new();
        for op in Op::ALL {
            names.push(format!("ops.{}", op.short_name()));
        }
        names.extend(graph::subset_feature_names());
        for ds in Dataset::ALL {
            names.push(format!("params_m.{ds}"));
            names.push(format!("flops_m.{ds}"));
        }
        for op in Op::ALL {
            names.push(format!("{OPS_SENT_PREFIX}{}", op.short_name()));
        }
        for ds in Dataset::ALL {
            names.push(format!("params_m_sent.{ds}"));
            names.push(format!("flops_m_sent.{ds}"));
        }
        for edge in 0..6 {
            for op in Op::ALL {
                names.push(onehot_name(edge, op));
            }
        }
        Self {
            feature_names: names,
        }
    }

    /// The features of a cell, in `feature_names` order.
    pub fn features(&self, cell: &Cell) -> Vec<f64> {
        let canonical = cell.canonical();
        let mut out = Vec::with_capacity(self.feature_names.len());
        out.extend(canonical.op_counts().map(f64::from));
        graph::push_subset_features(&canonical, &mut out);
        push_costs(&canonical, &mut out);
        out.extend(cell.op_counts().map(f64::from));
        push_costs(cell, &mut out);
        for op in cell.0 {
            out.extend(Op::ALL.iter().map(|&o| f64::from(u8::from(o == op))));
        }
        debug_assert_eq!(out.len(), self.feature_names.len());
        out
    }
}

impl Default for Nb201 {
    fn default() -> Self {
        Self::new()
    }
}

/// The prefix of the op counts of the cell as sent.
pub const OPS_SENT_PREFIX: &str = "ops_sent.";

/// The prefix of every [`onehot_name`].
pub const ONEHOT_PREFIX: &str = "onehot.";

/// The indicator of `op` on `edge` (string order) of the cell as sent:
/// which op sits where, which a device's latency depends on beyond counts.
pub fn onehot_name(edge: usize, op: Op) -> String {
    format!("{ONEHOT_PREFIX}edge{edge}.{}", op.short_name())
}

fn push_costs(cell: &Cell, out: &mut Vec<f64>) {
    for ds in Dataset::ALL {
        let cost = cost::network_cost(cell, ds);
        out.push(cost.params_m);
        out.push(cost.flops_m);
    }
}

impl SearchSpace for Nb201 {
    fn name(&self) -> &'static str {
        NAME
    }

    fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    fn parse(&self, encoding: &str) -> Result<ParsedArch, ArchError> {
        let cell = Cell::parse(encoding)?;
        Ok(ParsedArch {
            canonical_key: cell.canonical().to_op_codes(),
            encoding: cell.to_op_codes(),
            features: self.features(&cell),
        })
    }

    fn identify(&self, encoding: &str) -> Result<(String, String), ArchError> {
        let cell = Cell::parse(encoding)?;
        Ok((cell.to_op_codes(), cell.canonical().to_op_codes()))
    }

    fn probe_encoding(&self) -> String {
        // The best CIFAR-10 cell of NAS-Bench-201.
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identify_agrees_with_parse_on_every_cell() {
        let space = Nb201::new();
        for cell in Cell::all() {
            let text = cell.to_arch_string();
            let parsed = space.parse(&text).unwrap();
            assert_eq!(
                space.identify(&text).unwrap(),
                (parsed.encoding, parsed.canonical_key)
            );
        }
        assert_eq!(
            space.identify("nope").unwrap_err(),
            space.parse("nope").unwrap_err()
        );
    }

    #[test]
    fn canonical_twins_share_key_and_canonical_features() {
        let space = Nb201::new();
        // 2<-1 conv3x3 is dead (node 1 has only a `none` input) in the first.
        let a = space.parse("003110").unwrap();
        let b = space.parse("000100").unwrap();
        assert_eq!(a.canonical_key, b.canonical_key);
        let names = space.feature_names();
        for (i, name) in names.iter().enumerate() {
            let sent_view = name.starts_with("ops_sent.")
                || name.contains("_sent.")
                || name.starts_with(ONEHOT_PREFIX);
            if !sent_view {
                assert_eq!(a.features[i], b.features[i], "{name}");
            }
        }
        let conv = names.iter().position(|n| n == "ops_sent.conv3x3").unwrap();
        assert_eq!((a.features[conv], b.features[conv]), (1.0, 0.0));
        assert_eq!(names.len(), a.features.len());
    }
}
