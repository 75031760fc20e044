//! nasperf's domain core: everything that turns outside input into numbers
//! without a server, a database or LightGBM's C++.
//!
//! [`space`] parses and featurises architectures; [`dataset`] names the
//! datasets; [`objectives`] is the catalogue of what can be predicted;
//! [`features`] maps feature names to values (graph features and zero-cost
//! proxies); [`model`] evaluates a saved LightGBM model with our own tree
//! evaluator; [`bench`] reads the public benchmark tables.
//!
//! It is a crate of its own so that the fuzz targets (`fuzz/`) can build
//! every parser of outside input without compiling LightGBM, tonic or sqlx.

pub mod bench;
pub mod dataset;
pub mod features;
pub mod model;
pub mod objectives;
pub mod space;
