//! Generates the gRPC code for `proto/nasperf/v1/*.proto` and a file
//! descriptor set for server reflection.
use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/nasperf/v1/predictor.proto",
        "proto/nasperf/v1/store.proto",
        "proto/nasperf/v1/models.proto",
    ];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("nasperf_v1_descriptor.bin"))
        .compile_protos(&protos, &["proto"])?;
    Ok(())
}
