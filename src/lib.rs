//! nasperf: a performance-prediction service for neural architecture search.
//!
//! The layout follows the architecture: [`space`] parses and featurises
//! architectures; [`objectives`] is the catalogue of what can be predicted;
//! [`bench`] reads public benchmark tables; [`train`] fits models;
//! [`model`] evaluates a saved model; [`registry`] loads, validates and
//! hot-swaps models; [`service`] is the gRPC API; [`startup`] wires a server.

pub mod bench;
pub mod dataset;
pub mod features;
pub mod model;
pub mod objectives;
pub mod space;
pub mod train;
