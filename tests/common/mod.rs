//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The benchmark tables: `$NASPERF_BENCHDATA`, or `../shared/benchdata`
/// beside the repository.
pub fn benchdata() -> PathBuf {
    std::env::var_os(nasperf::bench::BENCHDATA_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/benchdata"))
}
