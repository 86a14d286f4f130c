//! Kinesis "v2" sequence numbers.
//!
//! A sequence number is a 188-bit integer printed in decimal. Its 47 hex digits are
//! `2 | shard_create_secs(9) | shard_index low nibble(1) | seq_ix(16) | 00 | seq_time_secs(9) |
//! shard_index(8) | 2` (shared/reference/kinesis-api.md §3.4), which is what KCL's
//! `SequenceNumberValidator` parses: version nibble at bits 184..188 and the shard index at bits
//! 4..36. Braid's `seq_ix` is `(raft log index << 16) | position in the entry`, so within a shard
//! numeric order equals log order: the fields above `seq_ix` are constant per shard, and the ones
//! below cannot overturn a difference in `seq_ix`.

use std::cmp::Ordering;
use std::fmt;

use crate::error::BraidError;

const SECS_MASK: u64 = (1 << 36) - 1;

/// A record's position within its shard's log: the Raft log index of the entry that carries it,
/// and its place within that entry.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Position {
    pub index: u64,
    pub sub: u16,
}

impl Position {
    pub const ZERO: Position = Position { index: 0, sub: 0 };

    pub fn new(index: u64, sub: u16) -> Position {
        assert!(index < (1 << 48), "log index {index} beyond 48 bits");
        Position { index, sub }
    }
    pub fn seq_ix(self) -> u64 {
        (self.index << 16) | self.sub as u64
    }
    pub fn from_seq_ix(seq_ix: u64) -> Position {
        Position {
            index: seq_ix >> 16,
            sub: (seq_ix & 0xffff) as u16,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SequenceNumber {
    /// Creation time of the shard's stream, seconds since the epoch (36 bits).
    pub shard_create_secs: u64,
    pub shard_index: u32,
    pub position: Position,
    /// Arrival time of the record, seconds since the epoch (36 bits). Informational only.
    pub seq_time_secs: u64,
}

/// 192-bit little-endian limbs, enough for the 188-bit value.
type U192 = [u64; 3];

fn shl_or(v: &mut U192, bits: u32, value: u64) {
    // v = (v << bits) | value, with bits <= 64 and value < 2^bits.
    debug_assert!(bits <= 64);
    if bits == 64 {
        v[2] = v[1];
        v[1] = v[0];
        v[0] = value;
        return;
    }
    v[2] = (v[2] << bits) | (v[1] >> (64 - bits));
    v[1] = (v[1] << bits) | (v[0] >> (64 - bits));
    v[0] = (v[0] << bits) | value;
}

fn bits_at(v: &U192, lo: u32, n: u32) -> u64 {
    debug_assert!(n <= 64);
    let mut out: u128 = 0;
    let limb = (lo / 64) as usize;
    let off = lo % 64;
    let low = v[limb] as u128;
    let high = if limb + 1 < 3 { v[limb + 1] as u128 } else { 0 };
    out |= (low | (high << 64)) >> off;
    let mask = if n == 64 {
        u64::MAX as u128
    } else {
        (1u128 << n) - 1
    };
    (out & mask) as u64
}

/// Room for the decimal digits of any [`U192`] (2^192 < 10^58), with slack for the last chunk.
const DECIMAL_BUF: usize = 4 * 19;

/// Writes the decimal digits of `v` into the end of `buf` (no allocation: sequence numbers are
/// printed once per record written) and returns where they start.
fn write_decimal(mut v: U192, buf: &mut [u8; DECIMAL_BUF]) -> usize {
    // Peel off 19 decimal digits at a time (10^19 < 2^64): 3 chunks instead of 57 divisions.
    const CHUNK: u128 = 10_000_000_000_000_000_000;
    let mut at = buf.len();
    loop {
        let mut rem: u128 = 0;
        for i in (0..3).rev() {
            let cur = (rem << 64) | v[i] as u128;
            v[i] = (cur / CHUNK) as u64;
            rem = cur % CHUNK;
        }
        let leading = v == [0, 0, 0];
        let mut c = rem as u64;
        // A chunk below the leading one keeps its leading zeros (19 digits).
        for _ in 0..19 {
            at -= 1;
            buf[at] = b'0' + (c % 10) as u8;
            c /= 10;
            if leading && c == 0 {
                break;
            }
        }
        if leading {
            return at;
        }
    }
}

#[cfg(test)]
fn to_decimal(v: U192) -> String {
    let mut buf = [0u8; DECIMAL_BUF];
    let at = write_decimal(v, &mut buf);
    String::from_utf8(buf[at..].to_vec()).expect("ASCII digits")
}

fn from_decimal(s: &str) -> Option<U192> {
    if s.is_empty() || s.len() > 60 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut v: U192 = [0, 0, 0];
    for b in s.bytes() {
        let mut carry = (b - b'0') as u128;
        for limb in v.iter_mut() {
            let cur = (*limb as u128) * 10 + carry;
            *limb = cur as u64;
            carry = cur >> 64;
        }
        if carry != 0 {
            return None;
        }
    }
    Some(v)
}

impl SequenceNumber {
    pub fn new(
        shard_create_secs: u64,
        shard_index: u32,
        position: Position,
        seq_time_secs: u64,
    ) -> Self {
        SequenceNumber {
            shard_create_secs: shard_create_secs & SECS_MASK,
            shard_index,
            position,
            seq_time_secs: seq_time_secs & SECS_MASK,
        }
    }

    fn to_bits(self) -> U192 {
        let mut v: U192 = [0, 0, 0];
        shl_or(&mut v, 4, 2);
        shl_or(&mut v, 36, self.shard_create_secs & SECS_MASK);
        shl_or(&mut v, 4, (self.shard_index & 0xf) as u64);
        shl_or(&mut v, 64, self.position.seq_ix());
        shl_or(&mut v, 8, 0);
        shl_or(&mut v, 36, self.seq_time_secs & SECS_MASK);
        shl_or(&mut v, 32, self.shard_index as u64);
        shl_or(&mut v, 4, 2);
        v
    }

    /// Parses a decimal sequence number. Only well-formed v2 numbers are accepted.
    pub fn parse(s: &str) -> Result<SequenceNumber, BraidError> {
        let bad = || {
            BraidError::invalid(format!(
                "StartingSequenceNumber {s} used in GetShardIterator on shard is invalid."
            ))
        };
        let v = from_decimal(s).ok_or_else(bad)?;
        if bits_at(&v, 184, 8) != 2 || bits_at(&v, 0, 4) != 2 || bits_at(&v, 72, 8) != 0 {
            return Err(bad());
        }
        let shard_index = bits_at(&v, 4, 32) as u32;
        if bits_at(&v, 144, 4) as u32 != shard_index & 0xf {
            return Err(bad());
        }
        Ok(SequenceNumber {
            shard_create_secs: bits_at(&v, 148, 36),
            shard_index,
            position: Position::from_seq_ix(bits_at(&v, 80, 64)),
            seq_time_secs: bits_at(&v, 36, 36),
        })
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; DECIMAL_BUF];
        let at = write_decimal(self.to_bits(), &mut buf);
        f.write_str(std::str::from_utf8(&buf[at..]).expect("ASCII digits"))
    }
}

impl PartialOrd for SequenceNumber {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SequenceNumber {
    /// Numeric order of the printed value.
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (self.to_bits(), other.to_bits());
        a[2].cmp(&b[2]).then(a[1].cmp(&b[1])).then(a[0].cmp(&b[0]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn big(s: &str) -> (usize, &str) {
        (s.len(), s)
    }

    #[test]
    fn layout_matches_kcl_expectations() {
        let s = SequenceNumber::new(1_700_000_000, 7, Position::new(42, 3), 1_700_000_100);
        let text = s.to_string();
        let v = from_decimal(&text).unwrap();
        // bit length 186: top set bit is bit 185.
        assert_eq!(v[2] >> 57, 1, "{text}");
        assert_eq!(bits_at(&v, 184, 4), 2);
        assert_eq!(bits_at(&v, 4, 32), 7);
        assert_eq!(SequenceNumber::parse(&text).unwrap(), s);
        assert!(big(&text).0 >= 56);
    }

    #[test]
    fn decimal_conversion_matches_u128_where_it_fits() {
        for v in [
            0u128,
            1,
            9,
            10,
            10_000_000_000_000_000_000,
            10_000_000_000_000_000_001,
            u64::MAX as u128 + 1,
            u128::MAX,
        ] {
            let limbs: U192 = [v as u64, (v >> 64) as u64, 0];
            assert_eq!(to_decimal(limbs), v.to_string());
            assert_eq!(from_decimal(&v.to_string()), Some(limbs));
        }
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "abc",
            "1",
            "0",
            "-5",
            "12345678901234567890123456789012345678901234567890123456789999",
        ] {
            assert!(SequenceNumber::parse(bad).is_err(), "{bad}");
        }
    }

    /// The obvious conversion: one digit per division of the whole number by ten.
    fn reference_decimal(mut v: U192) -> String {
        let mut digits = Vec::new();
        loop {
            let mut rem: u128 = 0;
            for i in (0..3).rev() {
                let cur = (rem << 64) | v[i] as u128;
                v[i] = (cur / 10) as u64;
                rem = cur % 10;
            }
            digits.push(b'0' + rem as u8);
            if v == [0, 0, 0] {
                break;
            }
        }
        digits.reverse();
        String::from_utf8(digits).expect("ASCII digits")
    }

    proptest! {
        #[test]
        fn decimal_conversion_matches_the_reference(a in any::<u64>(), b in any::<u64>(), c in any::<u64>(), shift in 0u32..192) {
            // Shifted right so that numbers of every length come up, not only 58-digit ones.
            let mut v: U192 = [a, b, c];
            for _ in 0..shift / 64 {
                v = [v[1], v[2], 0];
            }
            let s = shift % 64;
            if s > 0 {
                v = [(v[0] >> s) | (v[1] << (64 - s)), (v[1] >> s) | (v[2] << (64 - s)), v[2] >> s];
            }
            let d = to_decimal(v);
            prop_assert_eq!(&d, &reference_decimal(v));
            prop_assert_eq!(from_decimal(&d), Some(v));
        }

        #[test]
        fn round_trips(create in 0u64..(1 << 36), shard in any::<u32>(), index in 0u64..(1 << 48), sub in any::<u16>(), t in 0u64..(1 << 36)) {
            let s = SequenceNumber::new(create, shard, Position { index, sub }, t);
            prop_assert_eq!(SequenceNumber::parse(&s.to_string()).unwrap(), s);
        }

        #[test]
        fn numeric_order_is_log_order(create in 0u64..(1 << 36), shard in any::<u32>(),
            a in 0u64..(1 << 48), sa in any::<u16>(), ta in 0u64..(1 << 36),
            b in 0u64..(1 << 48), sb in any::<u16>(), tb in 0u64..(1 << 36)) {
            let x = SequenceNumber::new(create, shard, Position { index: a, sub: sa }, ta);
            let y = SequenceNumber::new(create, shard, Position { index: b, sub: sb }, tb);
            if x.position != y.position {
                prop_assert_eq!(x.cmp(&y), x.position.cmp(&y.position));
                // and the decimal strings compare the same way (same length for the same shard).
                let (xs, ys) = (x.to_string(), y.to_string());
                prop_assert_eq!(xs.len(), ys.len());
                prop_assert_eq!(xs.cmp(&ys), x.position.cmp(&y.position));
            }
        }
    }
}
