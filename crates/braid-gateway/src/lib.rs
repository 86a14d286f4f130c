//! Public front ends. Each translates wire shapes to [`braid_node::Api`] calls and
//! [`braid_types::BraidError`] to wire errors with one exhaustive match; none holds logic of its own.
//!
//! - [`grpc`]: the braid.v1 gRPC service.
//! - [`kinesis`]: the Amazon Kinesis Data Streams HTTP API (AWS JSON 1.1 and CBOR), so that
//!   existing AWS SDKs, the AWS CLI and boto3 work against Braid unchanged.

pub mod grpc;
pub mod kinesis;
