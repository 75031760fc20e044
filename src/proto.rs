//! Generated protobuf and gRPC code for `proto/nasperf/v1`.
#![allow(clippy::all, clippy::pedantic, missing_docs, unreachable_pub)]

pub mod v1 {
    tonic::include_proto!("nasperf.v1");
}

/// The encoded file descriptor set, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("nasperf_v1_descriptor");

/// Every `/package.Service/Method` of the API, health and reflection,
/// from the compiled descriptors.
pub fn api_methods() -> std::collections::HashSet<String> {
    let mut out = std::collections::HashSet::new();
    for bytes in [FILE_DESCRIPTOR_SET, tonic_health::pb::FILE_DESCRIPTOR_SET] {
        let Ok(set) = <prost_types::FileDescriptorSet as prost::Message>::decode(bytes) else {
            continue;
        };
        for file in set.file {
            let package = file.package.unwrap_or_default();
            for service in file.service {
                let service_name = service.name.unwrap_or_default();
                for method in service.method {
                    out.insert(format!(
                        "/{package}.{service_name}/{}",
                        method.name.unwrap_or_default()
                    ));
                }
            }
        }
    }
    out.insert("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo".to_owned());
    out
}
