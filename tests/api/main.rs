//! The gRPC API, end to end: a real server on a real socket, real models,
//! the generated client.

mod auth;
mod bad_input;
mod bench_start;
mod health;
mod helpers;
mod hostile;
mod hot_reload;
mod learning_loop;
mod metrics;
mod models;
mod pareto;
mod predict;
mod raw_grpc;
mod shutdown;
mod store;
mod store_outage;
mod tls;
