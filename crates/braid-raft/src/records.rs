//! The records of one `Put` entry, as bytes.
//!
//! A batch is built once, where a call enters the node (the API encodes each shard's part of a
//! PutRecord/PutRecords call), and from then on the write path only moves it: the leader's
//! proposer merges calls by appending their chunks (no copy), the log encodes it with one
//! `memcpy` per chunk, replication and apply clone it by reference count. Only readers parse it,
//! and a reader skips records it does not return by their lengths alone.
//!
//! Layout of a chunk, per record: `key_len: u16 LE | key (UTF-8) | data_len: u32 LE | data`.
//! The serialized form is `count: u32`, then the chunks as a sequence of byte strings.
//!
//! Invariant: `count` is the number of records in the chunks, and every chunk parses. Batches
//! built by [`RecordBatchBuilder`] hold it by construction; batches decoded from disk or from a
//! peer are checked on decode (a frame's CRC protects the bytes, but a peer could be buggy), so
//! [`RecordBatch::iter`] never meets a malformed record.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const KEY_LEN_BYTES: usize = 2;
const DATA_LEN_BYTES: usize = 4;
/// Framing bytes per record on top of its key and data.
pub const RECORD_OVERHEAD_BYTES: usize = KEY_LEN_BYTES + DATA_LEN_BYTES;

#[derive(Clone, Default, PartialEq, Eq)]
pub struct RecordBatch {
    count: u32,
    chunks: Vec<Bytes>,
}

/// One record of a batch, borrowed from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub partition_key: &'a str,
    pub data: &'a [u8],
}

impl fmt::Debug for RecordBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RecordBatch({} records, {} bytes)",
            self.count,
            self.bytes()
        )
    }
}

impl RecordBatch {
    pub fn len(&self) -> u32 {
        self.count
    }
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    /// Encoded size: keys, data and per-record framing.
    pub fn bytes(&self) -> usize {
        self.chunks.iter().map(|c| c.len()).sum()
    }
    /// Appends `other`'s records after this batch's, without copying them.
    pub fn extend(&mut self, other: RecordBatch) {
        self.count += other.count;
        self.chunks.extend(other.chunks);
    }
    /// The records, in order.
    pub fn iter(&self) -> impl Iterator<Item = RecordRef<'_>> + '_ {
        self.chunks.iter().flat_map(|c| ChunkIter { rest: c })
    }
    /// The records from the `skip`th on; skipped records cost only their length fields.
    pub fn iter_from(&self, skip: usize) -> impl Iterator<Item = RecordRef<'_>> + '_ {
        self.iter().skip(skip)
    }

    /// Checks a decoded batch: every chunk parses and the records add up to `count`.
    fn validate(&self) -> Result<(), String> {
        if self.count as usize > braid_types::limits::ENTRY_RECORDS_MAX {
            return Err(format!(
                "record batch of {} records is above the entry limit of {}",
                self.count,
                braid_types::limits::ENTRY_RECORDS_MAX
            ));
        }
        let mut n = 0u64;
        for c in &self.chunks {
            let mut rest: &[u8] = c;
            while !rest.is_empty() {
                rest = split_record(rest)
                    .ok_or_else(|| format!("malformed record {n} in a record batch"))?
                    .1;
                n += 1;
            }
        }
        if n != u64::from(self.count) {
            return Err(format!(
                "record batch says {} records but holds {n}",
                self.count
            ));
        }
        Ok(())
    }
}

/// Splits the first record off `b`: (record, rest), or `None` if it is cut short or its key is
/// not UTF-8.
fn split_record(b: &[u8]) -> Option<(RecordRef<'_>, &[u8])> {
    let key_len = u16::from_le_bytes(b.get(..KEY_LEN_BYTES)?.try_into().ok()?) as usize;
    let b = &b[KEY_LEN_BYTES..];
    let key = std::str::from_utf8(b.get(..key_len)?).ok()?;
    let b = &b[key_len..];
    let data_len = u32::from_le_bytes(b.get(..DATA_LEN_BYTES)?.try_into().ok()?) as usize;
    let b = &b[DATA_LEN_BYTES..];
    let data = b.get(..data_len)?;
    Some((
        RecordRef {
            partition_key: key,
            data,
        },
        &b[data_len..],
    ))
}

struct ChunkIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for ChunkIter<'a> {
    type Item = RecordRef<'a>;
    fn next(&mut self) -> Option<RecordRef<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        let (r, rest) = split_record(self.rest).expect("record batches are validated");
        self.rest = rest;
        Some(r)
    }
}

/// Builds a [`RecordBatch`] in one buffer.
pub struct RecordBatchBuilder {
    count: u32,
    buf: BytesMut,
}

impl RecordBatchBuilder {
    /// `bytes`: the keys and data to come (the per-record framing is added).
    pub fn with_capacity(records: usize, bytes: usize) -> RecordBatchBuilder {
        RecordBatchBuilder {
            count: 0,
            buf: BytesMut::with_capacity(bytes + records * RECORD_OVERHEAD_BYTES),
        }
    }
    /// Adds a record. The caller has validated it: a key of at most 256 characters (so at most
    /// 1 KiB of UTF-8) and data far below 4 GiB.
    pub fn push(&mut self, partition_key: &str, data: &[u8]) {
        let key_len = u16::try_from(partition_key.len()).expect("partition key below 64 KiB");
        let data_len = u32::try_from(data.len()).expect("record data below 4 GiB");
        self.buf.put_u16_le(key_len);
        self.buf.put_slice(partition_key.as_bytes());
        self.buf.put_u32_le(data_len);
        self.buf.put_slice(data);
        self.count += 1;
    }
    pub fn finish(self) -> RecordBatch {
        RecordBatch {
            count: self.count,
            chunks: if self.buf.is_empty() {
                vec![]
            } else {
                vec![self.buf.freeze()]
            },
        }
    }
}

struct ChunkRef<'a>(&'a [u8]);

impl Serialize for ChunkRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

struct Chunks<'a>(&'a [Bytes]);

impl Serialize for Chunks<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|c| ChunkRef(c)))
    }
}

impl Serialize for RecordBatch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(&self.count)?;
        t.serialize_element(&Chunks(&self.chunks))?;
        t.end()
    }
}

struct ChunkOwned(Bytes);

impl<'de> Deserialize<'de> for ChunkOwned {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ChunkOwned;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a chunk of records")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<ChunkOwned, E> {
                // Inside `codec::decode_shared` a chunk is a slice of the buffer being decoded.
                Ok(ChunkOwned(
                    crate::codec::shared_slice(v).unwrap_or_else(|| Bytes::copy_from_slice(v)),
                ))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<ChunkOwned, E> {
                Ok(ChunkOwned(Bytes::from(v)))
            }
        }
        d.deserialize_bytes(V)
    }
}

impl<'de> Deserialize<'de> for RecordBatch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RecordBatch;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a record batch")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<RecordBatch, A::Error> {
                let count: u32 = a
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let chunks: Vec<ChunkOwned> = a
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                let b = RecordBatch {
                    count,
                    chunks: chunks.into_iter().map(|c| c.0).collect(),
                };
                b.validate().map_err(de::Error::custom)?;
                Ok(b)
            }
        }
        d.deserialize_tuple(2, V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(recs: &[(&str, &[u8])]) -> RecordBatch {
        let mut b = RecordBatchBuilder::with_capacity(recs.len(), 0);
        for (k, d) in recs {
            b.push(k, d);
        }
        b.finish()
    }

    #[test]
    fn merge_and_round_trip_keep_every_record_in_order() {
        let mut a = batch(&[("k1", b"one"), ("κλειδί", b"")]);
        a.extend(batch(&[]));
        a.extend(batch(&[("k3", &[0u8; 1000][..])]));
        assert_eq!(a.len(), 3);
        let bytes = crate::codec::encode(&a);
        let b: RecordBatch = crate::codec::decode(&bytes).unwrap();
        assert_eq!(a, b);
        let got: Vec<(String, usize)> = b
            .iter()
            .map(|r| (r.partition_key.to_string(), r.data.len()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("k1".to_string(), 3),
                ("κλειδί".to_string(), 0),
                ("k3".to_string(), 1000)
            ]
        );
        assert_eq!(b.iter_from(2).next().unwrap().partition_key, "k3");
        assert_eq!(b.iter_from(3).count(), 0);
    }

    #[test]
    fn decode_refuses_batches_that_do_not_parse() {
        let good = crate::codec::encode(&batch(&[("k", b"data")]));
        // The count does not match.
        let mut wrong_count = good.clone();
        wrong_count[0] = 2;
        assert!(crate::codec::decode::<RecordBatch>(&wrong_count).is_err());
        // Every cut of the chunk, with its length prefix adjusted, is refused.
        let chunk = &good[4 + 8 + 8..];
        for cut in 0..chunk.len() {
            let mut b = Vec::new();
            b.extend_from_slice(&1u32.to_le_bytes());
            b.extend_from_slice(&1u64.to_le_bytes());
            b.extend_from_slice(&(cut as u64).to_le_bytes());
            b.extend_from_slice(&chunk[..cut]);
            assert!(
                crate::codec::decode::<RecordBatch>(&b).is_err(),
                "cut at {cut}"
            );
        }
        // A key that is not UTF-8.
        let mut bad_key = good.clone();
        let key_at = 4 + 8 + 8 + 2;
        bad_key[key_at] = 0xff;
        assert!(crate::codec::decode::<RecordBatch>(&bad_key).is_err());
        assert!(crate::codec::decode::<RecordBatch>(&good).is_ok());
    }
}
