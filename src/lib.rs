//! nasperf: a performance-prediction service for neural architecture search.
//!
//! The layout follows the architecture: [`space`] parses and featurises
//! architectures; [`objectives`] is the catalogue of what can be predicted;
//! [`bench`] reads public benchmark tables; [`train`] fits models;
//! [`model`] evaluates a saved model; [`registry`] loads, validates and
//! hot-swaps models; [`service`] is the gRPC API; [`startup`] wires a server; [`perf`] is
//! `nasperf bench`, the performance suite; [`eval`] is `nasperf eval`, the
//! prediction-quality protocol.

pub use nasperf_core::{bench, dataset, features, model, objectives, space};

pub mod auth;
pub mod cli;
pub mod commands;
pub mod eval;
pub mod memory;
pub mod metrics;
pub mod middleware;
pub mod pareto;
pub mod perf;
pub mod predict;
pub mod proto;
pub mod registry;
pub mod retrain;
pub mod service;
pub mod shedding;
pub mod startup;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod train;
