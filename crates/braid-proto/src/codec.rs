//! The gRPC codec of every Braid service: prost, with the encode buffer sized once.
//!
//! tonic's stock `ProstCodec` lets prost write a message into an 8 KiB buffer that then
//! doubles as it fills. A message written in many small parts (a client's PutRecords of 500
//! records, a GetRecords answer, a RaftBatch of small Raft messages) is reallocated at every
//! doubling, which copies about its own size again in all. [`SizedProstCodec`] reserves the
//! message's encoded length first, so it is written once. (A message with one big `bytes`
//! field, like a large AppendEntries, was already reserved in one step by prost's `put`.)
//! Decoding is tonic-prost's own: tonic reserves a message's length once its header arrived.

use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{Codec, EncodeBuf, Encoder};
use tonic::Status;
use tonic_prost::ProstDecoder;

/// A prost codec whose encoder reserves each message's length before writing it.
#[derive(Debug, Clone, Copy)]
pub struct SizedProstCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for SizedProstCodec<T, U> {
    fn default() -> Self {
        SizedProstCodec(PhantomData)
    }
}

impl<T, U> Codec for SizedProstCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = SizedProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        SizedProstEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::default()
    }
}

/// Encodes a prost message into a buffer reserved to its encoded length.
#[derive(Debug, Clone, Copy)]
pub struct SizedProstEncoder<T>(PhantomData<T>);

impl<T: Message> Encoder for SizedProstEncoder<T> {
    type Item = T;
    type Error = Status;

    fn encode(&mut self, item: T, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.reserve(item.encoded_len());
        item.encode(buf)
            .map_err(|e| Status::internal(format!("encoding a message: {e}")))
    }
}
