//! What the protocol evaluates on: an objective's value for every network
//! of the 9,445 canonical NB201 networks the tables measure, and each
//! feature set's row for every one of them.

use std::{collections::HashMap, fmt, path::Path, str::FromStr};

use crate::{
    bench,
    dataset::Dataset,
    features::{PROXIES_SENT_FEATURE, PROXY_FEATURE_PREFIX, PROXY_NAMES, ProxyValues},
    objectives::{Objective, ObjectiveKind},
    space::nb201::{
        Nb201, ONEHOT_PREFIX,
        cell::{Cell, Op},
        onehot_name,
    },
    train::{self, ProxySource, TrainError},
};

/// A block of features the protocol can combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Block {
    /// What every served model sees of the architecture: op counts, the
    /// graph features, and the dataset's parameter count and FLOPs.
    Graph,
    /// The 13 zero-cost proxies its models read: of the objective's dataset,
    /// or of a stand-in where the tables have none of its own
    /// ([`crate::train::proxy_source`]).
    Proxies,
    /// One indicator per edge and operation (6 x 5); served hardware
    /// models see it too.
    OneHot,
}

impl Block {
    pub const ALL: [Block; 3] = [Block::Graph, Block::Proxies, Block::OneHot];

    pub fn name(self) -> &'static str {
        match self {
            Block::Graph => "graph",
            Block::Proxies => "proxies",
            Block::OneHot => "onehot",
        }
    }
}

/// A union of blocks, written `graph+proxies`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FeatureSet(pub Vec<Block>);

impl FeatureSet {
    /// The sets the reference is run on by default: each block and the
    /// unions with proxies.
    pub fn reference_defaults() -> Vec<FeatureSet> {
        [
            "graph",
            "proxies",
            "onehot",
            "graph+proxies",
            "onehot+proxies",
        ]
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect()
    }

    pub fn has(&self, block: Block) -> bool {
        self.0.contains(&block)
    }
}

impl fmt::Display for FeatureSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|b| b.name()).collect();
        f.write_str(&names.join("+"))
    }
}

impl FromStr for FeatureSet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut blocks = Vec::new();
        for part in s.split('+') {
            let block = Block::ALL
                .into_iter()
                .find(|b| b.name() == part.trim())
                .ok_or_else(|| {
                    format!(
                        "unknown feature block {part:?} in {s:?}; known: graph, proxies, onehot"
                    )
                })?;
            if blocks.contains(&block) {
                return Err(format!("feature block {part:?} named twice in {s:?}"));
            }
            blocks.push(block);
        }
        blocks.sort();
        Ok(FeatureSet(blocks))
    }
}

/// One objective on the canonical networks: `targets[i]` is the value of
/// `cells[i]`, cells in ascending order, so the same seed draws the same
/// networks for every objective that measures the same ones.
#[derive(Debug, Clone)]
pub struct ObjectiveData {
    pub objective: Objective,
    pub cells: Vec<Cell>,
    pub targets: Vec<f64>,
    graph_names: Vec<String>,
    graph: Vec<f64>,
    /// NaN where the proxy table lacks a network.
    proxies: Vec<ProxyValues>,
    /// The dataset the proxies were computed on; `None` where the tables
    /// have none for the objective.
    pub proxy_dataset: Option<Dataset>,
    /// Related objectives' values of `cells[i]` ([`ObjectiveData::relate`]).
    pub related: Vec<train::RelatedTarget>,
}

/// The columns and row-major values of one feature set.
#[derive(Debug, Clone)]
pub struct Matrix {
    pub names: Vec<String>,
    pub values: Vec<f64>,
}

impl Matrix {
    pub fn width(&self) -> usize {
        self.names.len()
    }

    pub fn row(&self, i: usize) -> &[f64] {
        let w = self.width();
        &self.values[i * w..(i + 1) * w]
    }

    /// The rows `idx`, in that order.
    pub fn rows(&self, idx: &[usize]) -> Vec<f64> {
        train::recipe::gather(&self.values, self.width(), idx)
    }

    /// The matrix with the served models' [`PROXIES_SENT_FEATURE`] column
    /// appended (how many proxies each row has), so that the recipe also
    /// fits the trees the service answers candidates without proxies with.
    pub fn with_proxies_sent(self) -> Matrix {
        let proxy_columns: Vec<usize> = self.proxy_columns().collect();
        let mut names = self.names.clone();
        names.push(PROXIES_SENT_FEATURE.to_owned());
        let mut values = Vec::with_capacity(self.values.len() + self.values.len() / self.width());
        for row in self.values.chunks_exact(self.width()) {
            values.extend_from_slice(row);
            let sent = proxy_columns.iter().filter(|&&c| !row[c].is_nan()).count();
            values.push(sent as f64);
        }
        Matrix { names, values }
    }

    /// `rows` (row-major, in this matrix's columns) as candidates that send
    /// no proxy: every proxy missing and the sent count, where there is
    /// one, 0.
    pub fn without_proxies(&self, rows: &[f64]) -> Vec<f64> {
        let proxy_columns: Vec<usize> = self.proxy_columns().collect();
        let sent = self.names.iter().position(|n| n == PROXIES_SENT_FEATURE);
        let mut out = rows.to_vec();
        for row in out.chunks_exact_mut(self.width()) {
            for &c in &proxy_columns {
                row[c] = f64::NAN;
            }
            if let Some(c) = sent {
                row[c] = 0.0;
            }
        }
        out
    }

    fn proxy_columns(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.width()).filter(|&c| self.names[c].starts_with(PROXY_FEATURE_PREFIX))
    }
}

/// Whether a smaller value is better: costs are minimised, accuracies not.
pub fn lower_is_better(objective: &Objective) -> bool {
    objective.kind == ObjectiveKind::Hardware
}

impl ObjectiveData {
    /// Reads the objective's table and the proxies its models read
    /// ([`crate::train::proxy_source`]). Values of a
    /// network measured several times are averaged, as training does; cells
    /// with dead operations are left out (they are not among the canonical
    /// networks, whatever the objective; the network with no operation at
    /// all is one of them, as in the tables).
    pub fn load(
        bench_dir: &Path,
        objective: &Objective,
        proxies: Option<ProxySource<'_>>,
    ) -> Result<Self, TrainError> {
        let space = Nb201::new();
        let measurements = bench::load_objective(bench_dir, objective)?;
        let set = train::build_training_set(objective, &measurements, None, &space)?;
        // Served hardware models also see the one-hot view; here it is a
        // block of its own, so the graph block is the same for every
        // objective and the reference can be run on each apart.
        let graph_columns: Vec<usize> = (0..set.feature_names.len())
            .filter(|&i| !set.feature_names[i].starts_with(ONEHOT_PREFIX))
            .collect();
        let graph_names = graph_columns
            .iter()
            .map(|&i| set.feature_names[i].clone())
            .collect();
        let mut cells = Vec::new();
        let mut targets = Vec::new();
        let mut graph = Vec::new();
        for (i, cell) in set.cells.iter().enumerate() {
            if cell.canonical() != *cell {
                continue;
            }
            cells.push(*cell);
            targets.push(set.targets[i]);
            let row = set.row(i);
            graph.extend(graph_columns.iter().map(|&c| row[c]));
        }
        let proxy_values = cells
            .iter()
            .map(|c| {
                proxies
                    .and_then(|p| p.values.get(c).copied())
                    .unwrap_or(ProxyValues::MISSING)
            })
            .collect();
        Ok(Self {
            objective: objective.clone(),
            cells,
            targets,
            graph_names,
            graph,
            proxies: proxy_values,
            proxy_dataset: proxies.map(|p| p.dataset),
            related: Vec::new(),
        })
    }

    /// Adds `other`'s values of this objective's networks as a related
    /// objective's (NaN where it lacks one), for the recipe's family
    /// choice.
    pub fn relate(&mut self, other: &ObjectiveData) {
        let by_cell: HashMap<Cell, f64> = other
            .cells
            .iter()
            .copied()
            .zip(other.targets.iter().copied())
            .collect();
        let values = self
            .cells
            .iter()
            .map(|c| by_cell.get(c).copied().unwrap_or(f64::NAN))
            .collect();
        self.related.push(train::RelatedTarget {
            objective: other.objective.id.clone(),
            values,
        });
    }

    pub fn len(&self) -> usize {
        self.cells.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// The feature set's matrix over every network. Graph and proxy
    /// columns carry the names served models use, so a model trained on a
    /// matrix with `graph` or `proxies` can be served as it is.
    pub fn matrix(&self, set: &FeatureSet) -> Matrix {
        let mut names = Vec::new();
        for block in &set.0 {
            match block {
                Block::Graph => names.extend(self.graph_names.iter().cloned()),
                Block::Proxies => names.extend(
                    PROXY_NAMES
                        .iter()
                        .map(|p| format!("{PROXY_FEATURE_PREFIX}{p}")),
                ),
                Block::OneHot => {
                    for edge in 0..6 {
                        names.extend(Op::ALL.iter().map(|&op| onehot_name(edge, op)));
                    }
                }
            }
        }
        let gw = self.graph_names.len();
        let mut values = Vec::with_capacity(self.len() * names.len());
        for (i, cell) in self.cells.iter().enumerate() {
            for block in &set.0 {
                match block {
                    Block::Graph => values.extend_from_slice(&self.graph[i * gw..(i + 1) * gw]),
                    Block::Proxies => values.extend_from_slice(&self.proxies[i].0),
                    Block::OneHot => {
                        for op in cell.0 {
                            values.extend(Op::ALL.iter().map(|&o| f64::from(u8::from(o == op))));
                        }
                    }
                }
            }
        }
        Matrix { names, values }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_served_layout_counts_each_rows_proxies_and_blanks_them_on_request() {
        let names = ["ops.conv3x3", "zc.synflow", "zc.snip", "graph.depth"];
        let m = Matrix {
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            values: [[1.0, 0.5, 0.25, 3.0], [2.0, f64::NAN, 0.75, 4.0]].concat(),
        }
        .with_proxies_sent();
        assert_eq!(
            m.names.last().map(String::as_str),
            Some(PROXIES_SENT_FEATURE)
        );
        assert_eq!(m.row(0)[4], 2.0);
        assert_eq!(m.row(1)[4], 1.0, "a missing proxy is not counted");
        let blank = m.without_proxies(&m.rows(&[1, 0]));
        for row in blank.chunks_exact(m.width()) {
            assert!(row[1].is_nan() && row[2].is_nan());
            assert_eq!(row[4], 0.0);
        }
        assert_eq!((blank[0], blank[3]), (2.0, 4.0), "the rest is kept");
        assert_eq!((blank[5], blank[8]), (1.0, 3.0));
    }
}
