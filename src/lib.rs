//! nasperf: a performance-prediction service for neural architecture search.
//!
//! The layout follows the architecture: [`space`] parses and featurises
//! architectures; [`objectives`] is the catalogue of what can be predicted;
//! [`bench`] reads public benchmark tables; [`train`] fits models;
//! [`model`] evaluates a saved model; [`registry`] loads, validates and
//! hot-swaps models; [`service`] is the gRPC API; [`startup`] wires a server.

pub mod auth;
pub mod bench;
pub mod cli;
pub mod commands;
pub mod dataset;
pub mod features;
pub mod metrics;
pub mod middleware;
pub mod model;
pub mod objectives;
pub mod pareto;
pub mod predict;
pub mod proto;
pub mod registry;
pub mod retrain;
pub mod service;
pub mod shedding;
pub mod space;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod train;
