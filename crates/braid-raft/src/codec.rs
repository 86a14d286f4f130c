//! bincode encoding of Raft entries and messages, with bounded decoding.

use serde::de::DeserializeOwned;
use serde::Serialize;

use bincode::Options;

fn opts() -> impl bincode::Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .allow_trailing_bytes()
}

/// Encodes an in-memory value. Sizes are bounded by the callers' limits, not here.
/// The buffer is sized exactly first (a cheap pass: record chunks count by their lengths), so
/// large entries are never copied by the buffer's growth.
pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    let size = opts()
        .serialized_size(v)
        .expect("bincode sizing of in-memory values cannot fail");
    let mut out = Vec::with_capacity(size as usize);
    opts()
        .serialize_into(&mut out, v)
        .expect("bincode serialization of in-memory values cannot fail");
    out
}

/// Decodes untrusted bytes; a length prefix can never make it allocate more than one message.
pub fn decode<T: DeserializeOwned>(b: &[u8]) -> Result<T, bincode::Error> {
    opts()
        .with_limit(braid_types::limits::GRPC_MESSAGE_BYTES_MAX as u64)
        .deserialize(b)
}
