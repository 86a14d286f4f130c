//! Reading a whole stream back ([`read_stream`]) and checking it against a [`Ledger`]
//! ([`verify`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use braid_client::{v1, Client};
use braid_types::seqnum::SequenceNumber;
use md5::{Digest, Md5};

use crate::ledger::{record_id, Ledger};

/// Everything read from one shard, in read order.
#[derive(Clone, Debug)]
pub struct ShardRead {
    pub shard_id: String,
    /// Inclusive hash key range of the shard.
    pub hash_range: (u128, u128),
    pub records: Vec<v1::Record>,
}

/// Parses a shard's hash key range.
pub fn hash_range(shard: &v1::Shard) -> (u128, u128) {
    let r = shard
        .hash_key_range
        .as_ref()
        .unwrap_or_else(|| panic!("{} has no hash key range", shard.shard_id));
    let parse = |s: &str| {
        s.parse::<u128>()
            .unwrap_or_else(|e| panic!("bad hash key {s:?} of {}: {e}", shard.shard_id))
    };
    (parse(&r.starting_hash_key), parse(&r.ending_hash_key))
}

/// The hash key of a partition key as Kinesis defines it: MD5 of the UTF-8 bytes, big-endian.
pub fn partition_key_hash(key: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(key.as_bytes()).into())
}

/// Compares two sequence numbers of one shard (decimal strings without leading zeros).
pub fn seq_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// `log entry I, record S` for a Braid sequence number (the raw text if it does not parse).
pub fn describe_seq(seq: &str) -> String {
    match SequenceNumber::parse(seq) {
        Ok(s) => format!("log entry {}, record {}", s.position.index, s.position.sub),
        Err(_) => format!("unparsable sequence number {seq}"),
    }
}

/// Reads every shard of `stream` from `TRIM_HORIZON` until a `GetRecords` answers no record
/// and `millis_behind_latest == 0` (or the shard is closed). Fails after `timeout`.
pub async fn read_stream(
    client: &Client,
    stream: &str,
    timeout: Duration,
) -> Result<Vec<ShardRead>, String> {
    let deadline = Instant::now() + timeout;
    let shards = client
        .list_shards(stream)
        .await
        .map_err(|e| format!("ListShards {stream}: {e}"))?;
    let mut out = Vec::new();
    for shard in shards {
        let mut iterator = client
            .get_shard_iterator(
                stream,
                &shard.shard_id,
                v1::ShardIteratorType::TrimHorizon,
                None,
                None,
            )
            .await
            .map_err(|e| format!("GetShardIterator {}: {e}", shard.shard_id))?;
        let mut records = Vec::new();
        loop {
            if Instant::now() >= deadline {
                return Err(format!(
                    "reading {stream} did not finish within {timeout:?} ({} at {} records)",
                    shard.shard_id,
                    records.len()
                ));
            }
            let resp = client
                .get_records(&iterator, 0)
                .await
                .map_err(|e| format!("GetRecords {}: {e}", shard.shard_id))?;
            let done = resp.records.is_empty() && resp.millis_behind_latest == 0;
            records.extend(resp.records);
            if done || resp.next_shard_iterator.is_empty() {
                break;
            }
            iterator = resp.next_shard_iterator;
        }
        out.push(ShardRead {
            hash_range: hash_range(&shard),
            shard_id: shard.shard_id,
            records,
        });
    }
    Ok(out)
}

/// Examples kept per kind of violation.
const EXAMPLES_MAX: usize = 8;

/// The result of [`verify`].
#[derive(Debug, Default)]
pub struct Verdict {
    /// Records read in total (copies included).
    pub read: usize,
    /// Extra copies: records read `k > 1` times count `k - 1`.
    pub duplicates: usize,
    /// Records never acknowledged that were nevertheless stored (an ambiguous attempt landed).
    pub unacked_present: usize,
    /// Violations by kind: count and a few examples.
    pub violations: BTreeMap<&'static str, (usize, Vec<String>)>,
    /// Diagnostics that summarise violations (e.g. where lost records were in each shard).
    pub notes: Vec<String>,
}

impl Verdict {
    fn violation(&mut self, kind: &'static str, example: String) {
        let e = self.violations.entry(kind).or_default();
        e.0 += 1;
        if e.1.len() < EXAMPLES_MAX {
            e.1.push(example);
        }
    }

    pub fn violation_count(&self) -> usize {
        self.violations.values().map(|(n, _)| n).sum()
    }

    /// Every violation kind with its count and examples.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        for (kind, (n, examples)) in &self.violations {
            let _ = writeln!(s, "  {kind}: {n}");
            for e in examples {
                let _ = writeln!(s, "    - {e}");
            }
        }
        for n in &self.notes {
            let _ = writeln!(s, "  note: {n}");
        }
        s
    }

    /// Panics with every violation if there is any.
    pub fn assert_ok(&self, context: &str) {
        assert!(
            self.violations.is_empty(),
            "{context}: {} violation(s) of the stream's guarantees:\n{}",
            self.violation_count(),
            self.describe()
        );
    }
}

/// Where one copy of a record was read: shard (index into the reads), place in read order, and
/// sequence number.
#[derive(Clone, Debug)]
struct Copy<'a> {
    shard: usize,
    pos: usize,
    seq: &'a str,
    arrival_ms: i64,
}

/// Checks what was read (every shard of the stream, complete) against the ledger:
///
/// * every record read is one that was sent (known id, same data and partition key), in the
///   shard whose hash key range holds the MD5 of its partition key;
/// * within each shard, sequence numbers strictly increase in read order;
/// * every acknowledged record is present, with the acknowledged shard and sequence number;
/// * a record is present more than once only if it was sent more than once;
/// * per order group (see [`crate::ledger::SentRecord::order`]), acknowledged records first
///   appear in send order;
/// * real-time order: if A was acknowledged before B was first sent, and both are in the same
///   shard, A first appears before B.
pub fn verify(ledger: &Ledger, reads: &[ShardRead]) -> Verdict {
    let mut v = Verdict::default();
    let mut by_id: HashMap<&str, usize> = HashMap::with_capacity(ledger.records.len());
    for (i, r) in ledger.records.iter().enumerate() {
        assert!(
            by_id.insert(r.id.as_str(), i).is_none(),
            "the test sent two records with id {}",
            r.id
        );
    }
    let mut copies: Vec<Vec<Copy>> = vec![Vec::new(); ledger.records.len()];
    for (s, shard) in reads.iter().enumerate() {
        let mut prev: Option<&str> = None;
        for (pos, rec) in shard.records.iter().enumerate() {
            v.read += 1;
            if let Some(p) = prev {
                if seq_cmp(p, &rec.sequence_number) != std::cmp::Ordering::Less {
                    v.violation(
                        "sequence numbers not strictly increasing within a shard",
                        format!(
                            "{} record #{pos}: {} follows {p}",
                            shard.shard_id, rec.sequence_number
                        ),
                    );
                }
            }
            prev = Some(&rec.sequence_number);
            let Some(&i) = record_id(&rec.data).and_then(|id| by_id.get(id)) else {
                v.violation(
                    "record read that was never sent",
                    format!(
                        "{} record #{pos} seq {}: data {:?}",
                        shard.shard_id,
                        rec.sequence_number,
                        String::from_utf8_lossy(&rec.data[..rec.data.len().min(60)])
                    ),
                );
                continue;
            };
            let sent = &ledger.records[i];
            if rec.data != sent.data || rec.partition_key != sent.partition_key {
                v.violation(
                    "record read with other data or partition key than sent",
                    format!(
                        "{} seq {}: id {} key {:?} (sent {:?}), {} data bytes (sent {})",
                        shard.shard_id,
                        rec.sequence_number,
                        sent.id,
                        rec.partition_key,
                        sent.partition_key,
                        rec.data.len(),
                        sent.data.len()
                    ),
                );
            }
            let h = partition_key_hash(&rec.partition_key);
            if h < shard.hash_range.0 || h > shard.hash_range.1 {
                v.violation(
                    "record in a shard whose hash key range does not hold its partition key",
                    format!(
                        "{} in {} ({}..={}), hash {h}",
                        sent.id, shard.shard_id, shard.hash_range.0, shard.hash_range.1
                    ),
                );
            }
            copies[i].push(Copy {
                shard: s,
                pos,
                seq: &rec.sequence_number,
                arrival_ms: rec.approximate_arrival_timestamp_ms,
            });
        }
    }

    let mut lost: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (i, r) in ledger.records.iter().enumerate() {
        let c = &copies[i];
        v.duplicates += c.len().saturating_sub(1);
        if c.len() > 1 && r.attempts <= 1 {
            let acked = |x: &Copy| {
                r.ack.as_ref().is_some_and(|a| {
                    a.shard_id == reads[x.shard].shard_id && a.sequence_number == x.seq
                })
            };
            let same_arrival = c.iter().all(|x| x.arrival_ms == c[0].arrival_ms);
            v.violation(
                "record stored more than once although sent once",
                format!(
                    "{} (partition key {}, one attempt, {}) stored {} times: {}{}",
                    r.id,
                    r.partition_key,
                    if r.ack.is_some() {
                        "acknowledged"
                    } else {
                        "not acknowledged"
                    },
                    c.len(),
                    c.iter()
                        .map(|x| format!(
                            "[{} #{} seq {} arrival_ms {}{}]",
                            reads[x.shard].shard_id,
                            x.pos,
                            x.seq,
                            x.arrival_ms,
                            if acked(x) {
                                ", the acknowledged copy"
                            } else {
                                ""
                            }
                        ))
                        .collect::<Vec<_>>()
                        .join(" "),
                    if same_arrival {
                        "; equal arrival timestamps: the server appended one request twice"
                    } else {
                        ""
                    }
                ),
            );
        }
        match &r.ack {
            Some(ack) => {
                if c.is_empty() {
                    lost.entry(ack.shard_id.as_str())
                        .or_default()
                        .push(ack.sequence_number.as_str());
                    v.violation(
                        "acknowledged record missing from the read",
                        format!(
                            "{} (key {}) acknowledged as {} seq {} after {} attempt(s)",
                            r.id, r.partition_key, ack.shard_id, ack.sequence_number, r.attempts
                        ),
                    );
                } else if !c.iter().any(|x| {
                    reads[x.shard].shard_id == ack.shard_id && x.seq == ack.sequence_number
                }) {
                    v.violation(
                        "acknowledged record read at another shard or sequence number",
                        format!(
                            "{} acknowledged as {} seq {}, read as {}",
                            r.id,
                            ack.shard_id,
                            ack.sequence_number,
                            c.iter()
                                .map(|x| format!("{} seq {}", reads[x.shard].shard_id, x.seq))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                }
            }
            None => {
                if !c.is_empty() {
                    v.unacked_present += 1;
                }
            }
        }
    }

    for (shard_id, seqs) in lost {
        let mut entries: Vec<u64> = seqs
            .iter()
            .filter_map(|s| SequenceNumber::parse(s).ok())
            .map(|s| s.position.index)
            .collect();
        entries.sort();
        entries.dedup();
        let read = reads.iter().find(|r| r.shard_id == shard_id);
        let got = match read.and_then(|r| r.records.last().map(|last| (r.records.len(), last))) {
            Some((n, last)) => format!(
                "after {n} records, the last at {}",
                describe_seq(&last.sequence_number)
            ),
            None => "without any record".into(),
        };
        v.notes.push(format!(
            "{shard_id}: {} acknowledged records missing, acknowledged in {} log entries {:?}; \
             reading the shard from TRIM_HORIZON ended (no record, millis_behind_latest 0) {got}",
            seqs.len(),
            entries.len(),
            entries,
        ));
    }

    // Send order per order group, over acknowledged records.
    let mut groups: BTreeMap<&str, Vec<(u64, usize)>> = BTreeMap::new();
    for (i, r) in ledger.records.iter().enumerate() {
        if let (Some((g, ix)), Some(_)) = (&r.order, &r.ack) {
            groups.entry(g.as_str()).or_default().push((*ix, i));
        }
    }
    for (g, mut members) in groups {
        members.sort();
        let mut prev: Option<(usize, &Copy)> = None;
        for (_, i) in members {
            let Some(first) = copies[i].first() else {
                continue; // lost: reported above
            };
            if let Some((pi, p)) = prev {
                if p.shard != first.shard || p.pos >= first.pos {
                    v.violation(
                        "per-key order broken (first appearances out of send order)",
                        format!(
                            "group {g}: {} (sent first) at {} #{} seq {}, {} (sent next) at {} #{} seq {}",
                            ledger.records[pi].id,
                            reads[p.shard].shard_id,
                            p.pos,
                            p.seq,
                            ledger.records[i].id,
                            reads[first.shard].shard_id,
                            first.pos,
                            first.seq
                        ),
                    );
                }
            }
            prev = Some((i, first));
        }
    }

    // Real-time order per shard: A acknowledged before B was first sent => A before B.
    for (s, shard) in reads.iter().enumerate() {
        // (first position, record) of records whose first copy is in this shard, by position.
        let mut firsts: Vec<(usize, usize)> = copies
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.first().filter(|x| x.shard == s).map(|x| (x.pos, i)))
            .collect();
        firsts.sort();
        // Walking backwards: the acknowledged record with the smallest ack tick seen so far.
        let mut earliest_later: Option<(u64, usize)> = None;
        for &(pos, b) in firsts.iter().rev() {
            let rb = &ledger.records[b];
            if let (Some((tick, a)), Some(sent)) = (earliest_later, rb.first_sent_tick) {
                if tick < sent {
                    let ra = &ledger.records[a];
                    v.violation(
                        "real-time order broken (a record acknowledged earlier appears after one sent later)",
                        format!(
                            "{}: {} (acknowledged at tick {tick}) appears after {} at #{pos} (first sent at tick {sent})",
                            shard.shard_id, ra.id, rb.id
                        ),
                    );
                }
            }
            if let Some(ack) = &rb.ack {
                if earliest_later.is_none_or(|(t, _)| ack.tick < t) {
                    earliest_later = Some((ack.tick, b));
                }
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{record_data, Ack};

    const FULL: (u128, u128) = (0, u128::MAX);

    /// A ledger of records `ids` (key `k`, order group `g`), each sent once at tick 2i+1 and
    /// acknowledged at tick 2i+2 as seq `100 + i` in shard `s`.
    fn ledger(ids: &[&str]) -> Ledger {
        let mut l = Ledger::new();
        for (i, id) in ids.iter().enumerate() {
            let ix = l.add(
                id.to_string(),
                "k".into(),
                record_data(id, "k", 3),
                Some(("g".into(), i as u64)),
            );
            let r = &mut l.records[ix];
            r.attempts = 1;
            r.first_sent_tick = Some(2 * i as u64 + 1);
            r.ack = Some(Ack {
                shard_id: "s".into(),
                sequence_number: (100 + i).to_string(),
                tick: 2 * i as u64 + 2,
            });
        }
        l
    }

    fn rec(id: &str, seq: u64) -> v1::Record {
        v1::Record {
            sequence_number: seq.to_string(),
            approximate_arrival_timestamp_ms: 1,
            data: record_data(id, "k", 3).into(),
            partition_key: "k".into(),
        }
    }

    fn shard(records: Vec<v1::Record>) -> Vec<ShardRead> {
        vec![ShardRead {
            shard_id: "s".into(),
            hash_range: FULL,
            records,
        }]
    }

    fn kinds(v: &Verdict) -> Vec<&'static str> {
        v.violations.keys().copied().collect()
    }

    #[test]
    fn a_faithful_read_passes() {
        let l = ledger(&["a", "b", "c"]);
        let v = verify(
            &l,
            &shard(vec![rec("a", 100), rec("b", 101), rec("c", 102)]),
        );
        assert!(v.violations.is_empty(), "{}", v.describe());
        assert_eq!((v.read, v.duplicates), (3, 0));
    }

    #[test]
    fn a_missing_acknowledged_record_is_reported() {
        let l = ledger(&["a", "b"]);
        let v = verify(&l, &shard(vec![rec("a", 100)]));
        assert_eq!(kinds(&v), ["acknowledged record missing from the read"]);
        assert_eq!(v.notes.len(), 1);
    }

    #[test]
    fn duplicates_need_a_retry() {
        let mut l = ledger(&["a", "b"]);
        let read = shard(vec![rec("a", 100), rec("a", 101), rec("b", 102)]);
        // b's acknowledged sequence number must match where it was read.
        l.records[1].ack.as_mut().unwrap().sequence_number = "102".into();
        let v = verify(&l, &read);
        assert_eq!(
            kinds(&v),
            ["record stored more than once although sent once"]
        );
        l.records[0].attempts = 2;
        let v = verify(&l, &read);
        assert!(v.violations.is_empty(), "{}", v.describe());
        assert_eq!(v.duplicates, 1);
    }

    #[test]
    fn order_and_sequence_violations_are_reported() {
        let l = ledger(&["a", "b"]);
        let v = verify(&l, &shard(vec![rec("b", 101), rec("a", 100)]));
        assert!(v
            .violations
            .contains_key("per-key order broken (first appearances out of send order)"));
        assert!(v.violations.contains_key(
            "real-time order broken (a record acknowledged earlier appears after one sent later)"
        ));
        let v = verify(&l, &shard(vec![rec("a", 100), rec("b", 100)]));
        assert!(v
            .violations
            .contains_key("sequence numbers not strictly increasing within a shard"));
    }

    #[test]
    fn foreign_altered_and_misplaced_records_are_reported() {
        let l = ledger(&["a"]);
        let mut altered = rec("a", 100);
        altered.data = [&altered.data[..], b"!"].concat().into();
        let v = verify(&l, &shard(vec![altered, rec("zz", 101)]));
        assert!(v.violations.contains_key("record read that was never sent"));
        assert!(v
            .violations
            .contains_key("record read with other data or partition key than sent"));
        let h = partition_key_hash("k");
        let elsewhere = if h == u128::MAX {
            (0, h - 1)
        } else {
            (h + 1, u128::MAX)
        };
        let read = vec![ShardRead {
            shard_id: "s".into(),
            hash_range: elsewhere,
            records: vec![rec("a", 100)],
        }];
        let v = verify(&l, &read);
        assert_eq!(
            kinds(&v),
            ["record in a shard whose hash key range does not hold its partition key"]
        );
    }

    #[test]
    fn sequence_numbers_compare_numerically() {
        use std::cmp::Ordering::*;
        assert_eq!(seq_cmp("99", "100"), Less);
        assert_eq!(seq_cmp("100", "100"), Equal);
        assert_eq!(seq_cmp("101", "100"), Greater);
        // md5("a") = 0cc175b9c0f1b6a831c399e269772661
        assert_eq!(partition_key_hash("a"), 0x0cc175b9c0f1b6a831c399e269772661);
    }
}
