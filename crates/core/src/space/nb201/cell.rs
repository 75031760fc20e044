//! The NAS-Bench-201 cell: four nodes, one operation on each of the six edges
//! `j <- i` (i < j), node 0 the input and node 3 the output.
//!
//! Three encodings exist (see `../shared/benchdata/PROVENANCE.md`):
//! - the arch string, edges in *string order* 1<-0 | 2<-0, 2<-1 | 3<-0, 3<-1, 3<-2;
//! - six op codes in string order, with NB201's op numbering (`none=0 …
//!   avg_pool_3x3=4`), e.g. `"421211"`;
//! - NASLib's tuple `(4, 3, 3, 0, 0, 0)`, with *another* op numbering
//!   (`0=skip_connect 1=none 2=nor_conv_3x3 3=nor_conv_1x1 4=avg_pool_3x3`) and
//!   edge order (1<-0, 2<-0, 3<-0, 2<-1, 3<-1, 3<-2): positions 3 and 4 of the
//!   string order are swapped. Only the benchmark-table importers read it.

use crate::space::ArchError;

/// An operation on an edge, numbered as NAS-Bench-201 numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Op {
    None = 0,
    SkipConnect = 1,
    NorConv1x1 = 2,
    NorConv3x3 = 3,
    AvgPool3x3 = 4,
}

impl Op {
    pub const ALL: [Op; 5] = [
        Op::None,
        Op::SkipConnect,
        Op::NorConv1x1,
        Op::NorConv3x3,
        Op::AvgPool3x3,
    ];

    /// The name in NB201 arch strings.
    pub fn nb201_name(self) -> &'static str {
        match self {
            Op::None => "none",
            Op::SkipConnect => "skip_connect",
            Op::NorConv1x1 => "nor_conv_1x1",
            Op::NorConv3x3 => "nor_conv_3x3",
            Op::AvgPool3x3 => "avg_pool_3x3",
        }
    }

    /// A short name for feature names.
    pub fn short_name(self) -> &'static str {
        match self {
            Op::None => "none",
            Op::SkipConnect => "skip",
            Op::NorConv1x1 => "conv1x1",
            Op::NorConv3x3 => "conv3x3",
            Op::AvgPool3x3 => "avgpool",
        }
    }

    fn from_nb201_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.nb201_name() == name)
    }

    fn from_nb201_code(code: u8) -> Option<Op> {
        Op::ALL.get(usize::from(code)).copied()
    }

    fn from_naslib_code(code: u8) -> Option<Op> {
        match code {
            0 => Some(Op::SkipConnect),
            1 => Some(Op::None),
            2 => Some(Op::NorConv3x3),
            3 => Some(Op::NorConv1x1),
            4 => Some(Op::AvgPool3x3),
            _ => None,
        }
    }
}

/// The edges `(from, to)` in string order.
pub const EDGES: [(usize, usize); 6] = [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)];
/// The number of nodes; node 0 is the input, the last the output.
pub const NODES: usize = 4;
const OUTPUT: usize = NODES - 1;
/// For each position of NASLib's tuple, the position in string order.
const NASLIB_TO_STRING_ORDER: [usize; 6] = [0, 1, 3, 2, 4, 5];

/// A cell: the op on each edge, in string order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cell(pub [Op; 6]);

impl Cell {
    /// Parses what a client may send: an arch string (starts with `|`) or
    /// six NB201 op codes in string order.
    pub fn parse(encoding: &str) -> Result<Cell, ArchError> {
        let encoding = encoding.trim();
        if encoding.starts_with('|') {
            Self::parse_arch_string(encoding)
        } else if !encoding.is_empty() && encoding.bytes().all(|b| b.is_ascii_digit()) {
            Self::parse_op_codes(encoding)
        } else {
            Err(ArchError(format!(
                "expected an NB201 arch string such as \
                 '|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|' \
                 or six op codes such as '304121', got {:?}",
                truncate(encoding)
            )))
        }
    }

    /// Parses `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`.
    pub fn parse_arch_string(s: &str) -> Result<Cell, ArchError> {
        let nodes: Vec<&str> = s.split('+').collect();
        if nodes.len() != NODES - 1 {
            return Err(ArchError(format!(
                "expected {} nodes separated by '+', found {}",
                NODES - 1,
                nodes.len()
            )));
        }
        let mut ops = [Op::None; 6];
        let mut edge = 0;
        for (k, node) in nodes.iter().enumerate() {
            let to = k + 1;
            let inner = node
                .strip_prefix('|')
                .and_then(|n| n.strip_suffix('|'))
                .ok_or_else(|| {
                    ArchError(format!(
                        "node {to} must be written as |op~i|...|, got {:?}",
                        truncate(node)
                    ))
                })?;
            let entries: Vec<&str> = inner.split('|').collect();
            if entries.len() != to {
                return Err(ArchError(format!(
                    "node {to} must have {to} incoming edges, found {}",
                    entries.len()
                )));
            }
            for (from, entry) in entries.iter().enumerate() {
                let (name, input) = entry.split_once('~').ok_or_else(|| {
                    ArchError(format!(
                        "edge {to}<-{from} must be written as op~{from}, got {:?}",
                        truncate(entry)
                    ))
                })?;
                if input != from.to_string() {
                    return Err(ArchError(format!(
                        "edge {edge} of node {to} must read from node {from} (op~{from}), got {:?}",
                        truncate(entry)
                    )));
                }
                ops[edge] = Op::from_nb201_name(name).ok_or_else(|| {
                    ArchError(format!(
                        "unknown op {:?} on edge {to}<-{from}; expected one of {}",
                        truncate(name),
                        op_names()
                    ))
                })?;
                edge += 1;
            }
        }
        Ok(Cell(ops))
    }

    /// Parses six NB201 op codes in string order, e.g. `"304121"`.
    pub fn parse_op_codes(s: &str) -> Result<Cell, ArchError> {
        if s.len() != EDGES.len() {
            return Err(ArchError(format!(
                "expected 6 op codes (one per edge), found {}",
                s.chars().count()
            )));
        }
        let mut ops = [Op::None; 6];
        for (i, b) in s.bytes().enumerate() {
            ops[i] = b
                .checked_sub(b'0')
                .and_then(Op::from_nb201_code)
                .ok_or_else(|| {
                    ArchError(format!(
                        "op code {:?} at position {i} is not one of 0=none 1=skip_connect \
                         2=nor_conv_1x1 3=nor_conv_3x3 4=avg_pool_3x3",
                        char::from(b)
                    ))
                })?;
        }
        Ok(Cell(ops))
    }

    /// Parses NASLib's tuple, e.g. `"(4, 3, 3, 0, 0, 0)"` (benchmark tables).
    pub fn parse_naslib_tuple(s: &str) -> Result<Cell, ArchError> {
        let inner = s
            .trim()
            .strip_prefix('(')
            .and_then(|t| t.strip_suffix(')'))
            .ok_or_else(|| {
                ArchError(format!(
                    "expected a tuple '(a, b, ...)', got {:?}",
                    truncate(s)
                ))
            })?;
        let codes: Vec<&str> = inner.split(',').map(str::trim).collect();
        if codes.len() != EDGES.len() {
            return Err(ArchError(format!(
                "expected 6 NASLib op codes, found {}",
                codes.len()
            )));
        }
        let mut ops = [Op::None; 6];
        for (pos, code) in codes.iter().enumerate() {
            let op = code
                .parse::<u8>()
                .ok()
                .and_then(Op::from_naslib_code)
                .ok_or_else(|| {
                    ArchError(format!(
                        "NASLib op code {:?} at position {pos} is not 0..=4",
                        truncate(code)
                    ))
                })?;
            ops[NASLIB_TO_STRING_ORDER[pos]] = op;
        }
        Ok(Cell(ops))
    }

    pub fn op(&self, from: usize, to: usize) -> Op {
        EDGES
            .iter()
            .position(|&e| e == (from, to))
            .map_or(Op::None, |i| self.0[i])
    }

    /// The arch string.
    pub fn to_arch_string(&self) -> String {
        let mut s = String::with_capacity(96);
        let mut edge = 0;
        for to in 1..NODES {
            s.push('|');
            for from in 0..to {
                s.push_str(self.0[edge].nb201_name());
                s.push('~');
                s.push(char::from(b'0' + from as u8));
                s.push('|');
                edge += 1;
            }
            if to != OUTPUT {
                s.push('+');
            }
        }
        s
    }

    /// Six NB201 op codes in string order.
    pub fn to_op_codes(&self) -> String {
        self.0
            .iter()
            .map(|&op| char::from(b'0' + op as u8))
            .collect()
    }

    /// NASLib's tuple, as the benchmark tables write it.
    pub fn to_naslib_tuple(&self) -> String {
        let codes: Vec<String> = NASLIB_TO_STRING_ORDER
            .iter()
            .map(|&i| {
                let code = match self.0[i] {
                    Op::SkipConnect => 0,
                    Op::None => 1,
                    Op::NorConv3x3 => 2,
                    Op::NorConv1x1 => 3,
                    Op::AvgPool3x3 => 4,
                };
                code.to_string()
            })
            .collect();
        format!("({})", codes.join(", "))
    }

    /// The same network with every op that computes nothing replaced by
    /// `none`: an op on an edge `j <- i` matters only if node `i` can be
    /// reached from the input and node `j` reaches the output through
    /// non-`none` edges. Cells with the same canonical form compute the same
    /// function.
    pub fn canonical(&self) -> Cell {
        let mut from_input = [false; NODES];
        from_input[0] = true;
        for (e, &(from, to)) in EDGES.iter().enumerate() {
            // EDGES is sorted by `to`, so `from_input[from]` is final here.
            if self.0[e] != Op::None && from_input[from] {
                from_input[to] = true;
            }
        }
        let mut to_output = [false; NODES];
        to_output[OUTPUT] = true;
        for (e, &(from, to)) in EDGES.iter().enumerate().rev() {
            if self.0[e] != Op::None && to_output[to] {
                to_output[from] = true;
            }
        }
        let mut ops = self.0;
        for (e, &(from, to)) in EDGES.iter().enumerate() {
            if !(from_input[from] && to_output[to]) {
                ops[e] = Op::None;
            }
        }
        Cell(ops)
    }

    /// How often each op occurs, indexed by `Op as usize`.
    pub fn op_counts(&self) -> [u32; 5] {
        let mut counts = [0; 5];
        for op in self.0 {
            counts[op as usize] += 1;
        }
        counts
    }

    /// Every one of the 5^6 cells, in op-code order (not the official NB201
    /// index order, which only the benchmark tables carry).
    pub fn all() -> impl Iterator<Item = Cell> {
        (0..5usize.pow(6)).map(|mut n| {
            let mut ops = [Op::None; 6];
            for slot in ops.iter_mut().rev() {
                *slot = Op::ALL[n % 5];
                n /= 5;
            }
            Cell(ops)
        })
    }
}

fn op_names() -> String {
    Op::ALL
        .iter()
        .map(|op| op.nb201_name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Keeps client-controlled text in error messages short.
fn truncate(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|";

    #[test]
    fn encodings_agree_on_the_provenance_example() {
        // nb201_arch_index.csv row 0: codes 421211, NASLib (4, 3, 3, 0, 0, 0).
        let cell = Cell::parse(EXAMPLE).unwrap();
        assert_eq!(cell.to_op_codes(), "421211");
        assert_eq!(cell.to_naslib_tuple(), "(4, 3, 3, 0, 0, 0)");
        assert_eq!(Cell::parse("421211").unwrap(), cell);
        assert_eq!(
            Cell::parse_naslib_tuple("(4, 3, 3, 0, 0, 0)").unwrap(),
            cell
        );
        assert_eq!(cell.to_arch_string(), EXAMPLE);
    }

    #[test]
    fn every_cell_round_trips_and_9445_are_canonical() {
        let mut canonical = std::collections::HashSet::new();
        let mut count = 0;
        for cell in Cell::all() {
            count += 1;
            assert_eq!(Cell::parse(&cell.to_arch_string()).unwrap(), cell);
            assert_eq!(Cell::parse(&cell.to_op_codes()).unwrap(), cell);
            assert_eq!(
                Cell::parse_naslib_tuple(&cell.to_naslib_tuple()).unwrap(),
                cell
            );
            let c = cell.canonical();
            assert_eq!(c.canonical(), c, "canonical form is a fixed point");
            canonical.insert(c);
        }
        assert_eq!(count, 15_625);
        assert_eq!(canonical.len(), 9_445);
    }

    #[test]
    fn dead_ops_are_removed() {
        // Node 1 is fed only by `none`, so 2<-1 and 3<-1 compute nothing;
        // node 2 does not reach the output, so 2<-0 is dead too; 3<-0 lives.
        let cell = Cell::parse("033110").unwrap();
        assert_eq!(cell.canonical().to_op_codes(), "000100");
        // Everything `none` into the output: nothing is live.
        assert_eq!(
            Cell::parse("333000").unwrap().canonical().to_op_codes(),
            "000000"
        );
    }

    #[test]
    fn malformed_encodings_say_what_is_wrong() {
        let err = |s: &str| Cell::parse(s).unwrap_err().0;
        assert!(err("|nor_conv_3x3~0|+|none~0|").contains("expected 3 nodes"));
        assert!(
            err("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|").contains("unknown op \"conv\"")
        );
        assert!(
            err("|none~0|+|none~0|+|none~0|none~1|none~2|")
                .contains("node 2 must have 2 incoming edges")
        );
        assert!(
            err("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|")
                .contains("must read from node 0")
        );
        assert!(err("30412").contains("expected 6 op codes"));
        assert!(err("304129").contains("op code '9' at position 5"));
        assert!(err("resnet").contains("expected an NB201 arch string"));
        assert!(err("").contains("expected an NB201 arch string"));
    }
}
