//! Generated protobuf and gRPC code. `v1` is the public API; `internal` is node-to-node RPC.

pub mod codec;

pub mod v1 {
    tonic::include_proto!("braid.v1");
}

pub mod internal {
    tonic::include_proto!("braid.internal.v1");
}

/// gRPC metadata key that carries the Kinesis exception name of an error.
pub const ERROR_METADATA_KEY: &str = "x-braid-error";
