//! bincode encoding of Raft entries and messages, with bounded decoding.

use std::cell::RefCell;

use bytes::Bytes;
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

thread_local! {
    /// The buffer [`decode_shared`] is decoding on this thread, if any.
    static SHARED: RefCell<Option<Bytes>> = const { RefCell::new(None) };
}

/// Decodes `b` like [`decode`], except that the byte strings the value keeps as [`Bytes`]
/// (record chunks, see `records`) become slices of `b` instead of copies: a follower keeps the
/// records of an AppendEntries in the buffer they arrived in. The value then holds on to `b`'s
/// allocation for as long as it keeps any of them.
pub fn decode_shared<T: DeserializeOwned>(b: &Bytes) -> Result<T, bincode::Error> {
    /// Restores the previous source (decodes do not nest today; this keeps it correct if they
    /// ever do, and on unwinding).
    struct Restore(Option<Bytes>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            SHARED.with(|s| *s.borrow_mut() = prev);
        }
    }
    let _restore = Restore(SHARED.with(|s| s.borrow_mut().replace(b.clone())));
    decode(b)
}

/// `v` as a slice of the buffer [`decode_shared`] is decoding on this thread, if `v` lies inside
/// it (without copying); `None` otherwise.
pub(crate) fn shared_slice(v: &[u8]) -> Option<Bytes> {
    SHARED.with(|s| {
        let s = s.borrow();
        let src = s.as_ref()?;
        lies_within(src, v).then(|| src.slice_ref(v))
    })
}

/// Whether `v` is a part of `src`'s memory (not merely equal to a part of it).
fn lies_within(src: &[u8], v: &[u8]) -> bool {
    let start = src.as_ptr() as usize;
    let at = v.as_ptr() as usize;
    at >= start && at + v.len() <= start + src.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_decoding_slices_the_source_and_plain_decoding_copies() {
        let encoded = Bytes::from(encode(&(7u32, serde_bytes::ByteBuf::from(vec![1u8; 64]))));
        let inside = |b: &Bytes| lies_within(&encoded, b);
        // Decoded through `visit_bytes` as the record chunks are.
        struct Chunk(Bytes);
        impl<'de> serde::Deserialize<'de> for Chunk {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = Chunk;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("bytes")
                    }
                    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Chunk, E> {
                        Ok(Chunk(
                            shared_slice(v).unwrap_or_else(|| Bytes::copy_from_slice(v)),
                        ))
                    }
                }
                d.deserialize_bytes(V)
            }
        }
        let (n, shared): (u32, Chunk) = decode_shared(&encoded).expect("decode");
        assert_eq!((n, &shared.0[..]), (7, &[1u8; 64][..]));
        assert!(inside(&shared.0), "a shared decode slices its source");
        let (_, copied): (u32, Chunk) = decode(&encoded).expect("decode");
        assert_eq!(&copied.0[..], &[1u8; 64][..]);
        assert!(!inside(&copied.0), "a plain decode copies");
        assert!(
            shared_slice(&encoded).is_none(),
            "no source outside decode_shared"
        );
    }
}
