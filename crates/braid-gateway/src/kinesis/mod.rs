//! The Amazon Kinesis Data Streams HTTP API over [`braid_node::Api`], so that boto3, the AWS
//! CLI, the AWS SDKs (Rust, Go, JS, Java with its CBOR default) and the tools built on them
//! work against Braid unchanged.
//!
//! - `POST /` with `X-Amz-Target: Kinesis_20131202.<Operation>`; bodies in AWS JSON 1.1 or
//!   CBOR (`application/x-amz-cbor-1.1`), answered in the request's content type
//!   ([`value`]); HTTP/1.1 and HTTP/2 with prior knowledge (h2c) ([`http`]), or HTTPS with
//!   ALPN h2/http1.1 from an operator's PEM certificate and key ([`tls`]).
//! - Each request is checked against its input shape from the botocore model, with AWS's
//!   SerializationException and ValidationException messages ([`schema`], [`shapes`]), then
//!   runs as one or two [`backend::Backend`] calls ([`ops`]).
//!   PutRecords and PutRecord bodies that are plainly valid skip the generic document trees:
//!   they go straight into the backend's request and the answer is written directly
//!   (`put_fast.rs`); every other body, and every error, takes the generic path.
//! - With access keys configured, every request's AWS SigV4 signature (header or presigned
//!   query) is verified ([`sigv4`]); without, any well-formed signature passes.
//! - Errors are AWS-shaped (`{"__type", "message"}`, status 400/500/503, `x-amzn-RequestId`
//!   on every answer); [`error::WireError::from_braid`] is the one `ErrorCode` match.
//! - Operations Braid cannot perform yet (resharding, enhanced fan-out, encryption, on-demand
//!   streams, ...) answer `InvalidArgumentException` saying so ([`ops::UNSUPPORTED`]).

pub mod backend;
pub mod error;
pub mod http;
pub mod ops;
mod put_fast;
pub mod schema;
pub mod shapes;
pub mod sigv4;
pub mod tls;
pub mod value;

pub use backend::Backend;
pub use error::WireError;
pub use http::{
    router, router_with_keys, serve, serve_tls_with_keys, serve_with_keys, REQUEST_BYTES_MAX,
};
pub use value::{Format, Value};
