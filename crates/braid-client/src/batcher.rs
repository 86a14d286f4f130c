//! Packing queued records into `PutRecords` batches. Pure: no IO, no clock.

use std::collections::VecDeque;

use braid_proto::v1;
use braid_types::limits;

/// The size limits of one batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLimits {
    /// Records per batch, `1..=500`.
    pub records_max: usize,
    /// Bytes (data plus partition key, as Kinesis counts them) per batch.
    pub bytes_max: usize,
}

impl Default for BatchLimits {
    fn default() -> BatchLimits {
        BatchLimits {
            records_max: limits::PUT_RECORDS_COUNT_MAX,
            bytes_max: limits::PUT_RECORDS_BYTES_MAX,
        }
    }
}

impl BatchLimits {
    /// Clamps the limits into what one `PutRecords` call accepts (and at least one record).
    pub fn clamped(self) -> BatchLimits {
        BatchLimits {
            records_max: self.records_max.clamp(1, limits::PUT_RECORDS_COUNT_MAX),
            bytes_max: self.bytes_max.clamp(1, limits::PUT_RECORDS_BYTES_MAX),
        }
    }
}

/// The bytes a record counts for against the `PutRecords` size limit.
pub fn entry_bytes(entry: &v1::PutRecordsRequestEntry) -> usize {
    entry.data.len() + entry.partition_key.len()
}

/// A FIFO of items with sizes, cut into batches that respect [`BatchLimits`].
///
/// A batch is the longest prefix of the queue within both limits; an item that alone exceeds the
/// byte limit travels alone (the server will reject it, with a per-record error).
#[derive(Debug)]
pub struct Batcher<T> {
    limits: BatchLimits,
    queue: VecDeque<(T, usize)>,
    bytes: usize,
}

impl<T> Batcher<T> {
    pub fn new(limits: BatchLimits) -> Batcher<T> {
        Batcher {
            limits: limits.clamped(),
            queue: VecDeque::new(),
            bytes: 0,
        }
    }

    pub fn limits(&self) -> BatchLimits {
        self.limits
    }

    /// Appends an item of `bytes` bytes.
    pub fn push_back(&mut self, item: T, bytes: usize) {
        self.bytes += bytes;
        self.queue.push_back((item, bytes));
    }

    /// Puts an item at the head of the queue (for retries, which go out first).
    pub fn push_front(&mut self, item: T, bytes: usize) {
        self.bytes += bytes;
        self.queue.push_front((item, bytes));
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Total bytes queued.
    pub fn queued_bytes(&self) -> usize {
        self.bytes
    }

    /// The oldest queued item.
    pub fn front(&self) -> Option<&T> {
        self.queue.front().map(|(t, _)| t)
    }

    /// Whether the queue holds at least one full batch, so that waiting for more records cannot
    /// make the next batch bigger.
    pub fn has_full_batch(&self) -> bool {
        self.queue.len() >= self.limits.records_max || self.bytes >= self.limits.bytes_max
    }

    /// Removes and returns the next batch: the longest prefix within both limits, and at least
    /// one item when the queue is not empty.
    pub fn take_batch(&mut self) -> Vec<T> {
        let mut batch = Vec::new();
        let mut batch_bytes = 0usize;
        while let Some((_, bytes)) = self.queue.front() {
            let bytes = *bytes;
            let fits = batch.len() < self.limits.records_max
                && batch_bytes + bytes <= self.limits.bytes_max;
            if !fits && !batch.is_empty() {
                break;
            }
            let (item, _) = self.queue.pop_front().expect("front exists");
            self.bytes -= bytes;
            batch_bytes += bytes;
            batch.push(item);
            if !fits {
                break; // an oversized item travels alone
            }
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn drain(limits: BatchLimits, sizes: &[usize]) -> Vec<Vec<(usize, usize)>> {
        let mut b = Batcher::new(limits);
        for (i, s) in sizes.iter().enumerate() {
            b.push_back((i, *s), *s);
        }
        let mut batches = Vec::new();
        while !b.is_empty() {
            batches.push(b.take_batch());
        }
        assert_eq!(b.queued_bytes(), 0);
        batches
    }

    #[test]
    fn record_count_limit() {
        let batches = drain(BatchLimits::default(), &vec![10; 1234]);
        let lens: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(lens, [500, 500, 234]);
    }

    #[test]
    fn byte_limit() {
        let limits = BatchLimits {
            records_max: 500,
            bytes_max: 100,
        };
        let batches = drain(limits, &[40, 40, 40, 100, 1, 99, 150, 5]);
        let sizes: Vec<Vec<usize>> = batches
            .iter()
            .map(|b| b.iter().map(|(_, s)| *s).collect())
            .collect();
        assert_eq!(
            sizes,
            vec![
                vec![40, 40],
                vec![40],
                vec![100],
                vec![1, 99],
                vec![150],
                vec![5]
            ]
        );
    }

    #[test]
    fn full_batch_and_front() {
        let mut b = Batcher::new(BatchLimits {
            records_max: 3,
            bytes_max: 100,
        });
        assert!(!b.has_full_batch());
        assert!(b.take_batch().is_empty());
        b.push_back("a", 10);
        b.push_back("b", 10);
        assert!(!b.has_full_batch());
        b.push_front("r", 10);
        assert!(b.has_full_batch());
        assert_eq!(b.front(), Some(&"r"));
        assert_eq!(b.take_batch(), vec!["r", "a", "b"]);
        b.push_back("big", 100);
        assert!(b.has_full_batch());
    }

    #[test]
    fn limits_are_clamped() {
        let b: Batcher<()> = Batcher::new(BatchLimits {
            records_max: 10_000,
            bytes_max: 0,
        });
        assert_eq!(
            b.limits(),
            BatchLimits {
                records_max: 500,
                bytes_max: 1
            }
        );
    }

    #[test]
    fn entry_bytes_counts_data_and_key() {
        let e = v1::PutRecordsRequestEntry {
            data: vec![0; 10].into(),
            partition_key: "key".into(),
            explicit_hash_key: "123".into(),
        };
        assert_eq!(entry_bytes(&e), 13);
    }

    proptest! {
        #[test]
        fn batches_respect_limits_and_keep_order(
            sizes in proptest::collection::vec(0usize..3_000, 0..2_000),
            records_max in 1usize..600,
            bytes_max in 1usize..20_000,
        ) {
            let limits = BatchLimits { records_max, bytes_max };
            let clamped = limits.clamped();
            let batches = drain(limits, &sizes);
            let mut next = 0;
            for batch in &batches {
                prop_assert!(!batch.is_empty());
                prop_assert!(batch.len() <= clamped.records_max);
                let bytes: usize = batch.iter().map(|(_, s)| s).sum();
                prop_assert!(bytes <= clamped.bytes_max || batch.len() == 1);
                for (i, _) in batch {
                    prop_assert_eq!(*i, next);
                    next += 1;
                }
            }
            prop_assert_eq!(next, sizes.len());
            // Greedy: a batch could not have taken the next item.
            for w in batches.windows(2) {
                let bytes: usize = w[0].iter().map(|(_, s)| s).sum();
                let (_, next_size) = w[1][0];
                prop_assert!(w[0].len() == clamped.records_max || bytes + next_size > clamped.bytes_max);
            }
        }
    }
}
