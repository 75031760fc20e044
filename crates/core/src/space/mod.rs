//! Search spaces: how an architecture encoding is parsed, canonicalised and
//! turned into features.
//!
//! Everything specific to one search space lives behind [`SearchSpace`], so
//! that adding one (NAS-Bench-101, DARTS, transformer configurations) touches
//! this folder only: the registry, the service and training see a space name,
//! a canonical key and a named feature vector, never a cell.

pub mod nb201;

use std::{collections::BTreeMap, sync::Arc};

/// A parsed architecture, ready to be predicted.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedArch {
    /// Identifies what the network computes: two encodings with the same key
    /// are the same network (accuracy and robustness cannot differ).
    pub canonical_key: String,
    /// The architecture as sent, in the space's normalised encoding: two
    /// spellings of one cell get the same encoding (the store keys on it).
    pub encoding: String,
    /// One value per name in [`SearchSpace::feature_names`], in that order.
    pub features: Vec<f64>,
}

/// Why an encoding was rejected. The message is shown to the client after
/// the field name, so it must say what was wrong and what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ArchError(pub String);

/// One search space.
pub trait SearchSpace: Send + Sync + 'static {
    /// The name clients put in `Candidate.search_space`.
    fn name(&self) -> &'static str;

    /// The names of every feature [`SearchSpace::parse`] computes, in order.
    /// Names are stable: models store them and are fed by name.
    fn feature_names(&self) -> &[String];

    /// Parses an encoding as a client sends it.
    fn parse(&self, encoding: &str) -> Result<ParsedArch, ArchError>;

    /// What [`SearchSpace::parse`] says of an encoding's identity, without
    /// computing features: `(encoding, canonical_key)`. The store needs
    /// only this, for every row it records.
    fn identify(&self, encoding: &str) -> Result<(String, String), ArchError>;

    /// A valid encoding of a typical architecture, used to check that a
    /// newly loaded model predicts a finite value before it may serve.
    fn probe_encoding(&self) -> String;
}

impl std::fmt::Debug for dyn SearchSpace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The search spaces this build knows, by name.
#[derive(Clone)]
pub struct SearchSpaces {
    by_name: BTreeMap<&'static str, Arc<dyn SearchSpace>>,
}

impl SearchSpaces {
    /// Every search space nasperf supports.
    pub fn builtin() -> Self {
        let mut by_name: BTreeMap<&'static str, Arc<dyn SearchSpace>> = BTreeMap::new();
        let nb201: Arc<dyn SearchSpace> = Arc::new(nb201::Nb201::new());
        by_name.insert(nb201.name(), nb201);
        Self { by_name }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn SearchSpace>> {
        self.by_name.get(name)
    }

    /// The supported names, for error messages.
    pub fn names(&self) -> Vec<&'static str> {
        self.by_name.keys().copied().collect()
    }
}

impl std::fmt::Debug for SearchSpaces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_name.keys()).finish()
    }
}
