//! Shard iterator tokens: opaque, tamper-proof (HMAC-SHA256 over the contents with a
//! cluster-wide secret) and valid for [`ITERATOR_TTL_MS`].

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{BraidError, ErrorCode};
use crate::limits::{ITERATOR_CHARS_MAX, ITERATOR_TTL_MS};
use crate::seqnum::Position;

const VERSION: u8 = 1;
const TAG_BYTES: usize = 16;

/// What an iterator points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IteratorToken {
    pub stream: String,
    /// Distinguishes a stream from an earlier stream of the same name.
    pub stream_created_ms: u64,
    pub shard_index: u32,
    /// The next record to return is the first one at or after this position.
    pub position: Position,
    pub issued_ms: u64,
}

fn mac(secret: &[u8], body: &[u8]) -> [u8; TAG_BYTES] {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("hmac accepts any key length");
    m.update(body);
    let full = m.finalize().into_bytes();
    let mut tag = [0u8; TAG_BYTES];
    tag.copy_from_slice(&full[..TAG_BYTES]);
    tag
}

impl IteratorToken {
    pub fn encode(&self, secret: &[u8]) -> String {
        let mut body = Vec::with_capacity(64 + self.stream.len());
        body.push(VERSION);
        body.extend_from_slice(&self.stream_created_ms.to_be_bytes());
        body.extend_from_slice(&self.shard_index.to_be_bytes());
        body.extend_from_slice(&self.position.index.to_be_bytes());
        body.extend_from_slice(&self.position.sub.to_be_bytes());
        body.extend_from_slice(&self.issued_ms.to_be_bytes());
        body.push(self.stream.len() as u8);
        body.extend_from_slice(self.stream.as_bytes());
        let tag = mac(secret, &body);
        body.extend_from_slice(&tag);
        let s = URL_SAFE_NO_PAD.encode(&body);
        debug_assert!(s.len() <= ITERATOR_CHARS_MAX);
        s
    }

    /// Decodes and verifies a token; `now_ms` decides expiry.
    pub fn decode(token: &str, secret: &[u8], now_ms: u64) -> Result<IteratorToken, BraidError> {
        let invalid = || BraidError::invalid("Invalid ShardIterator.");
        if token.is_empty() || token.len() > ITERATOR_CHARS_MAX {
            return Err(invalid());
        }
        let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
        const FIXED: usize = 1 + 8 + 4 + 8 + 2 + 8 + 1;
        if raw.len() < FIXED + TAG_BYTES {
            return Err(invalid());
        }
        let (body, tag) = raw.split_at(raw.len() - TAG_BYTES);
        // Constant-time comparison through the hmac crate.
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("any key length");
        m.update(body);
        m.verify_truncated_left(tag).map_err(|_| invalid())?;
        if body[0] != VERSION {
            return Err(invalid());
        }
        let u64_at = |o: usize| u64::from_be_bytes(body[o..o + 8].try_into().expect("8 bytes"));
        let stream_created_ms = u64_at(1);
        let shard_index = u32::from_be_bytes(body[9..13].try_into().expect("4 bytes"));
        let index = u64_at(13);
        let sub = u16::from_be_bytes(body[21..23].try_into().expect("2 bytes"));
        let issued_ms = u64_at(23);
        let name_len = body[31] as usize;
        if body.len() != FIXED + name_len {
            return Err(invalid());
        }
        let stream = String::from_utf8(body[FIXED..].to_vec()).map_err(|_| invalid())?;
        if now_ms > issued_ms.saturating_add(ITERATOR_TTL_MS) {
            return Err(BraidError::new(
                ErrorCode::ExpiredIterator,
                format!("Iterator expired. The iterator was created at time {issued_ms} while right now it is {now_ms} which is further in the future than the tolerated delay of {ITERATOR_TTL_MS} milliseconds."),
            ));
        }
        Ok(IteratorToken {
            stream,
            stream_created_ms,
            shard_index,
            position: Position { index, sub },
            issued_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn token() -> IteratorToken {
        IteratorToken {
            stream: "orders".into(),
            stream_created_ms: 1_700_000_000_000,
            shard_index: 3,
            position: Position { index: 99, sub: 7 },
            issued_ms: 1_700_000_001_000,
        }
    }

    #[test]
    fn round_trip_and_expiry() {
        let t = token();
        let s = t.encode(b"secret");
        assert_eq!(
            IteratorToken::decode(&s, b"secret", t.issued_ms + 1000).unwrap(),
            t
        );
        let e =
            IteratorToken::decode(&s, b"secret", t.issued_ms + ITERATOR_TTL_MS + 1).unwrap_err();
        assert_eq!(e.code, ErrorCode::ExpiredIterator);
        let e = IteratorToken::decode(&s, b"other", t.issued_ms).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument);
        assert!(s.len() < 200);
    }

    proptest! {
        #[test]
        fn any_single_byte_change_is_rejected(pos in 0usize..60, flip in 1u8..=255) {
            let t = token();
            let s = t.encode(b"secret");
            let mut raw = URL_SAFE_NO_PAD.decode(&s).unwrap();
            let pos = pos % raw.len();
            raw[pos] ^= flip;
            let tampered = URL_SAFE_NO_PAD.encode(&raw);
            prop_assert!(IteratorToken::decode(&tampered, b"secret", t.issued_ms).is_err());
        }

        #[test]
        fn garbage_never_panics(s in ".{0,600}") {
            let _ = IteratorToken::decode(&s, b"secret", 0);
        }
    }
}
