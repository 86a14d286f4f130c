//! Rust client for Braid's public gRPC API (`braid.v1.Braid`).
//!
//! * [`Client`]: one method per API call. Every call retries on transport errors and on
//!   retryable API errors ([`braid_types::ErrorCode::is_retryable`]), failing over round-robin
//!   across the configured endpoints with exponential backoff and jitter.
//! * [`Producer`]: a batching producer that packs single records into `PutRecords` calls and
//!   resolves each record with its own result.
//! * [`ShardReader`]: follows one shard with `GetRecords`, renewing expired iterators.
//!
//! Everything that does IO must run inside a Tokio runtime.

mod batcher;
mod client;
mod error;
mod producer;
mod reader;
mod routes;

pub use batcher::{entry_bytes, BatchLimits, Batcher};
pub use braid_proto::v1;
pub use client::{normalize_endpoint, Client, ClientOptions};
pub use error::{status_to_error, ClientError};
pub use producer::{Producer, ProducerConfig, PutOutcome, PutTicket};
pub use reader::{ShardReader, StartingPosition};
