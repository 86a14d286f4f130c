//! The 128-bit hash-key space and how shards divide it.

use md5::{Digest, Md5};

use crate::error::BraidError;

/// The hash key of a partition key: MD5 of its UTF-8 bytes read as a big-endian u128.
pub fn partition_key_hash(partition_key: &str) -> u128 {
    let digest = Md5::digest(partition_key.as_bytes());
    u128::from_be_bytes(digest.into())
}

/// Parses an ExplicitHashKey: a decimal string in [0, 2^128 - 1].
pub fn parse_explicit_hash_key(s: &str) -> Result<u128, BraidError> {
    let bad = || {
        BraidError::invalid(format!(
            "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was {s}"
        ))
    };
    if s.is_empty() || s.len() > 39 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    s.parse::<u128>().map_err(|_| bad())
}

/// An inclusive range of hash keys, `[start, end]`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct HashKeyRange {
    pub start: u128,
    pub end: u128,
}

impl HashKeyRange {
    pub const FULL: HashKeyRange = HashKeyRange {
        start: 0,
        end: u128::MAX,
    };

    pub fn new(start: u128, end: u128) -> HashKeyRange {
        assert!(start <= end, "empty hash key range {start}..={end}");
        HashKeyRange { start, end }
    }

    pub fn contains(&self, key: u128) -> bool {
        self.start <= key && key <= self.end
    }

    /// Divides [0, 2^128) into `n` ranges as Kinesis does: shard i starts at i * floor(2^128 / n),
    /// and the last shard ends at 2^128 - 1.
    pub fn divide_evenly(n: u32) -> Vec<HashKeyRange> {
        assert!(n >= 1);
        let n = n as u128;
        // floor(2^128 / n) computed without overflow: (2^128 - 1) / n, plus one when n divides 2^128.
        let mut width = u128::MAX / n;
        if n.is_power_of_two() && n > 1 {
            width += 1;
        }
        if n == 1 {
            return vec![HashKeyRange::FULL];
        }
        (0..n)
            .map(|i| {
                let start = i * width;
                let end = if i == n - 1 {
                    u128::MAX
                } else {
                    (i + 1) * width - 1
                };
                HashKeyRange::new(start, end)
            })
            .collect()
    }
}

/// Checks that `ranges` exactly tile [0, 2^128 - 1] when sorted by start.
pub fn ranges_tile_keyspace(ranges: &[HashKeyRange]) -> bool {
    let mut sorted = ranges.to_vec();
    sorted.sort();
    let Some(first) = sorted.first() else {
        return false;
    };
    if first.start != 0 || sorted.last().map(|r| r.end) != Some(u128::MAX) {
        return false;
    }
    sorted
        .windows(2)
        .all(|w| w[0].end.checked_add(1) == Some(w[1].start))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn md5_matches_known_vectors() {
        // md5("a") = 0cc175b9c0f1b6a831c399e269772661
        assert_eq!(partition_key_hash("a"), 0x0cc175b9c0f1b6a831c399e269772661);
        assert_eq!(partition_key_hash(""), 0xd41d8cd98f00b204e9800998ecf8427e);
    }

    #[test]
    fn kinesis_divisions() {
        let two = HashKeyRange::divide_evenly(2);
        assert_eq!(two[0], HashKeyRange::new(0, (1u128 << 127) - 1));
        assert_eq!(two[1], HashKeyRange::new(1u128 << 127, u128::MAX));
        // Kinesis' 3-shard split: 113427455640312821154458202477256070485 = floor(2^128/3)
        let three = HashKeyRange::divide_evenly(3);
        assert_eq!(three[1].start, 113427455640312821154458202477256070485);
        assert_eq!(three[2].start, 226854911280625642308916404954512140970);
        assert_eq!(three[2].end, u128::MAX);
        assert_eq!(HashKeyRange::divide_evenly(1), vec![HashKeyRange::FULL]);
    }

    #[test]
    fn explicit_hash_key_bounds() {
        assert_eq!(parse_explicit_hash_key("0").unwrap(), 0);
        assert_eq!(
            parse_explicit_hash_key("340282366920938463463374607431768211455").unwrap(),
            u128::MAX
        );
        assert!(parse_explicit_hash_key("340282366920938463463374607431768211456").is_err());
        assert!(parse_explicit_hash_key("-1").is_err());
        assert!(parse_explicit_hash_key("").is_err());
        assert!(parse_explicit_hash_key("12a").is_err());
    }

    proptest! {
        #[test]
        fn divisions_tile_and_route_uniquely(n in 1u32..=1024, key in any::<u128>()) {
            let ranges = HashKeyRange::divide_evenly(n);
            prop_assert_eq!(ranges.len(), n as usize);
            prop_assert!(ranges_tile_keyspace(&ranges));
            prop_assert_eq!(ranges.iter().filter(|r| r.contains(key)).count(), 1);
        }
    }
}
