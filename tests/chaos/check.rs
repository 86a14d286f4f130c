//! What the chaos checker adds to `braid_tests::verify`: consumers' views against the final
//! history, and write availability from acknowledgement times.

use std::time::{Duration, Instant};

use braid_tests::ledger::record_id;
use braid_tests::verify::ShardRead;

/// How a consumer's view of a shard differs from the shard's final history, if it does.
///
/// A consumer reads in order and never re-reads, so what it saw must be exactly the first
/// records of the final read: the same sequence numbers carrying the same record ids, in the same
/// order. Anything else is a record that was served and later vanished or moved (a read of
/// uncommitted data), or a reordering.
pub fn consumer_divergence(seen: &[(String, String)], fin: &ShardRead) -> Option<String> {
    for (i, (seq, id)) in seen.iter().enumerate() {
        let Some(r) = fin.records.get(i) else {
            return Some(format!(
                "{}: the consumer read {} records, the final history has only {}; its record #{i} was {id} at seq {seq}",
                fin.shard_id,
                seen.len(),
                fin.records.len()
            ));
        };
        let fid = record_id(&r.data).unwrap_or("?");
        if r.sequence_number != *seq || fid != id {
            return Some(format!(
                "{}: record #{i} was {id} at seq {seq} for the consumer but is {fid} at seq {} in the final history",
                fin.shard_id, r.sequence_number
            ));
        }
    }
    None
}

/// The longest time without an acknowledgement in `[from, to]`: gaps between consecutive
/// acknowledgements that overlap the window, clipped to it (the gap is measured from the last
/// acknowledgement before `from`, if any, so a fault right after an acknowledgement counts whole).
pub fn longest_gap(acks: &[Instant], from: Instant, to: Instant) -> Duration {
    let mut prev = acks
        .iter()
        .copied()
        .filter(|t| *t <= from)
        .max()
        .unwrap_or(from);
    let mut longest = Duration::ZERO;
    for &t in acks.iter().filter(|t| **t > from && **t <= to) {
        longest = longest.max(t - prev);
        prev = t;
    }
    longest.max(to.saturating_duration_since(prev))
}

/// The first acknowledgement after `t`, if any.
pub fn first_ack_after(acks: &[Instant], t: Instant) -> Option<Instant> {
    acks.iter().copied().filter(|a| *a > t).min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use braid_client::v1;
    use braid_tests::ledger::record_data;

    fn fin(ids: &[(&str, &str)]) -> ShardRead {
        ShardRead {
            shard_id: "s".into(),
            hash_range: (0, u128::MAX),
            records: ids
                .iter()
                .map(|(seq, id)| v1::Record {
                    sequence_number: seq.to_string(),
                    approximate_arrival_timestamp_ms: 0,
                    data: record_data(id, "k", 4).into(),
                    partition_key: "k".into(),
                })
                .collect(),
        }
    }

    fn seen(ids: &[(&str, &str)]) -> Vec<(String, String)> {
        ids.iter()
            .map(|(s, i)| (s.to_string(), i.to_string()))
            .collect()
    }

    #[test]
    fn a_prefix_is_consistent() {
        let f = fin(&[("1", "a"), ("2", "b"), ("3", "c")]);
        assert_eq!(consumer_divergence(&seen(&[]), &f), None);
        assert_eq!(
            consumer_divergence(&seen(&[("1", "a"), ("2", "b")]), &f),
            None
        );
        assert_eq!(
            consumer_divergence(&seen(&[("1", "a"), ("2", "b"), ("3", "c")]), &f),
            None
        );
    }

    #[test]
    fn vanished_reordered_and_extra_records_are_divergences() {
        let f = fin(&[("1", "a"), ("3", "c")]);
        // b was served at seq 2 and is gone from the final history.
        assert!(consumer_divergence(&seen(&[("1", "a"), ("2", "b")]), &f).is_some());
        // Same records, other order.
        assert!(consumer_divergence(&seen(&[("3", "c"), ("1", "a")]), &f).is_some());
        // Same seq, other record.
        assert!(consumer_divergence(&seen(&[("1", "x")]), &f).is_some());
        // More than the final history.
        assert!(consumer_divergence(&seen(&[("1", "a"), ("3", "c"), ("4", "d")]), &f).is_some());
    }

    #[test]
    fn gaps_are_measured_across_the_window() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let acks = [ms(0), ms(100), ms(1_100), ms(1_200)];
        // The fault starts at 150: the gap 100..1100 overlaps it.
        assert_eq!(
            longest_gap(&acks, ms(150), ms(1_500)),
            Duration::from_millis(1_000)
        );
        // No acknowledgement after the window start: the gap runs to its end.
        assert_eq!(
            longest_gap(&acks, ms(1_300), ms(2_000)),
            Duration::from_millis(800)
        );
        // No acknowledgement at all.
        assert_eq!(longest_gap(&[], ms(0), ms(500)), Duration::from_millis(500));
        assert_eq!(first_ack_after(&acks, ms(150)), Some(ms(1_100)));
        assert_eq!(first_ack_after(&acks, ms(1_200)), None);
    }
}
