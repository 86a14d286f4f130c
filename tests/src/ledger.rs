//! [`Ledger`]: the record of every record a test puts and of what the cluster answered.
//!
//! Every record carries a unique id at the start of its data (`{id}|{partition key}|padding`),
//! so that [`crate::verify`] can match what is read back against what was sent. For each record
//! the ledger keeps its attempts (a record may be sent again after an error, which can store it
//! twice), its acknowledgement (shard id and sequence number) if any, and its last error.
//!
//! Time is a logical [`Clock`]: a tick is taken just before a call is sent and just after its
//! answer arrives, so "A was acknowledged before B was first sent" is `ack.tick < first_sent_tick`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use braid_client::{v1, Client, ClientError};
use braid_types::ErrorCode;

/// A logical clock shared by the tasks of one test.
#[derive(Debug, Default)]
pub struct Clock {
    now: AtomicU64,
}

impl Clock {
    pub fn new() -> Clock {
        Clock::default()
    }

    /// A tick strictly greater than every tick taken before it.
    pub fn tick(&self) -> u64 {
        self.now.fetch_add(1, Ordering::SeqCst) + 1
    }
}

/// Where the cluster said it stored a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    pub shard_id: String,
    pub sequence_number: String,
    /// Clock tick taken after the acknowledging answer arrived.
    pub tick: u64,
}

/// Why an attempt was not acknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptError {
    /// A definite answer: the call, or this record's entry of a PutRecords answer, failed with
    /// this Kinesis error name.
    Api { code: String, message: String },
    /// No answer (connection error, timeout): the record may or may not be stored.
    Transport(String),
}

impl AttemptError {
    fn label(&self) -> String {
        match self {
            AttemptError::Api { code, .. } => code.clone(),
            AttemptError::Transport(_) => "transport".into(),
        }
    }
}

/// One record a test put (or tried to).
#[derive(Clone, Debug)]
pub struct SentRecord {
    pub id: String,
    pub partition_key: String,
    pub data: Vec<u8>,
    /// `(group, index)`: records of one group are sent one after the other, the next only once
    /// the previous one was acknowledged or given up, so their first appearances in the shard
    /// must follow `index`. `None` for records without such a discipline.
    pub order: Option<(String, u64)>,
    /// Clock tick taken before the first attempt was sent.
    pub first_sent_tick: Option<u64>,
    pub attempts: u32,
    pub ack: Option<Ack>,
    pub last_error: Option<AttemptError>,
}

/// One record's result in an answer: `(shard id, sequence number)` or why not.
type RecordResult = Result<(String, String), AttemptError>;

/// What became of the records of one call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallOutcome {
    pub acked: usize,
    pub not_acked: usize,
    /// The call as a whole got no answer.
    pub transport_error: bool,
}

/// The data of a record: its id, its partition key, then `pad` filler bytes derived from the id.
pub fn record_data(id: &str, partition_key: &str, pad: usize) -> Vec<u8> {
    let mut data = format!("{id}|{partition_key}|").into_bytes();
    let seed = id
        .bytes()
        .fold(7u8, |a, b| a.wrapping_mul(31).wrapping_add(b));
    data.extend((0..pad).map(|i| b'a' + (seed.wrapping_add(i as u8) % 26)));
    data
}

/// The id at the start of a record's data, if it has the [`record_data`] shape.
pub fn record_id(data: &[u8]) -> Option<&str> {
    let end = data.iter().position(|b| *b == b'|')?;
    std::str::from_utf8(&data[..end])
        .ok()
        .filter(|s| !s.is_empty())
}

/// Every record sent and every answer received. See the module docs.
#[derive(Debug, Default)]
pub struct Ledger {
    pub records: Vec<SentRecord>,
    pub calls: u64,
    pub attempts_acked: u64,
    /// Attempts answered with a definite error.
    pub attempts_failed: u64,
    /// Attempts without an answer.
    pub attempts_unknown: u64,
    /// Attempts per error label (Kinesis error name, or `transport`).
    pub errors: BTreeMap<String, u64>,
    /// Answers that break the API contract (malformed responses, non-retryable errors for
    /// valid requests). Tests assert there are none.
    pub anomalies: Vec<String>,
    /// When each call that acknowledged at least one record returned.
    pub ack_times: Vec<Instant>,
}

/// Record counts by final outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub sent: usize,
    pub acked: usize,
    /// Never acknowledged; the last attempt got a definite error.
    pub failed: usize,
    /// Never acknowledged; the last attempt got no answer.
    pub unknown: usize,
    /// Records sent more than once.
    pub retried: usize,
}

impl Ledger {
    pub fn new() -> Ledger {
        Ledger::default()
    }

    /// Adds a record (not sent yet) and returns its index.
    pub fn add(
        &mut self,
        id: String,
        partition_key: String,
        data: Vec<u8>,
        order: Option<(String, u64)>,
    ) -> usize {
        self.records.push(SentRecord {
            id,
            partition_key,
            data,
            order,
            first_sent_tick: None,
            attempts: 0,
            ack: None,
            last_error: None,
        });
        self.records.len() - 1
    }

    /// Appends another ledger's records and counters.
    pub fn merge(&mut self, other: Ledger) {
        self.records.extend(other.records);
        self.calls += other.calls;
        self.attempts_acked += other.attempts_acked;
        self.attempts_failed += other.attempts_failed;
        self.attempts_unknown += other.attempts_unknown;
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.anomalies.extend(other.anomalies);
        self.ack_times.extend(other.ack_times);
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts {
            sent: self.records.iter().filter(|r| r.attempts > 0).count(),
            ..Counts::default()
        };
        for r in &self.records {
            if r.attempts > 1 {
                c.retried += 1;
            }
            match (&r.ack, &r.last_error) {
                (Some(_), _) => c.acked += 1,
                (None, Some(AttemptError::Api { .. })) => c.failed += 1,
                (None, Some(AttemptError::Transport(_))) => c.unknown += 1,
                (None, None) => {}
            }
        }
        c
    }

    /// Sends the records `ixs` (not yet acknowledged) in one call: `PutRecord` when `single`
    /// (then `ixs` must hold exactly one record), else `PutRecords`. Updates the records and
    /// the counters from the answer.
    pub async fn put(
        &mut self,
        client: &Client,
        stream: &str,
        ixs: &[usize],
        single: bool,
        clock: &Clock,
    ) -> CallOutcome {
        assert!(!ixs.is_empty(), "put of no record");
        assert!(!single || ixs.len() == 1, "PutRecord sends one record");
        let sent_tick = clock.tick();
        for &i in ixs {
            let r = &mut self.records[i];
            assert!(r.ack.is_none(), "record {} is already acknowledged", r.id);
            r.attempts += 1;
            r.first_sent_tick.get_or_insert(sent_tick);
        }
        self.calls += 1;
        let answer: Result<Vec<RecordResult>, ClientError> = if single {
            let r = &self.records[ixs[0]];
            client
                .put_record(stream, &r.partition_key, r.data.clone(), None)
                .await
                .map(|resp| vec![Ok((resp.shard_id, resp.sequence_number))])
        } else {
            let entries = ixs
                .iter()
                .map(|&i| v1::PutRecordsRequestEntry {
                    data: self.records[i].data.clone().into(),
                    partition_key: self.records[i].partition_key.clone(),
                    explicit_hash_key: String::new(),
                })
                .collect();
            client
                .put_records(stream, entries)
                .await
                .map(|resp| self.per_record_results(ixs.len(), resp))
        };
        let ack_tick = clock.tick();
        let results = match answer {
            Ok(results) => results,
            Err(e) => {
                let err = match &e {
                    ClientError::Api(b) => {
                        if !b.code.is_retryable() {
                            self.anomalies.push(format!(
                                "{} of {} record(s) failed with non-retryable {}: {}",
                                if single { "PutRecord" } else { "PutRecords" },
                                ixs.len(),
                                b.code.kinesis_name(),
                                b.message
                            ));
                        }
                        AttemptError::Api {
                            code: b.code.kinesis_name().to_string(),
                            message: b.message.clone(),
                        }
                    }
                    ClientError::Transport(m) => AttemptError::Transport(m.clone()),
                };
                vec![Err(err); ixs.len()]
            }
        };
        let mut outcome = CallOutcome {
            transport_error: matches!(results.first(), Some(Err(AttemptError::Transport(_)))),
            ..CallOutcome::default()
        };
        for (&i, result) in ixs.iter().zip(results) {
            match result {
                Ok((shard_id, sequence_number)) => {
                    outcome.acked += 1;
                    self.attempts_acked += 1;
                    let r = &mut self.records[i];
                    r.ack = Some(Ack {
                        shard_id,
                        sequence_number,
                        tick: ack_tick,
                    });
                }
                Err(e) => {
                    outcome.not_acked += 1;
                    match e {
                        AttemptError::Api { .. } => self.attempts_failed += 1,
                        AttemptError::Transport(_) => self.attempts_unknown += 1,
                    }
                    *self.errors.entry(e.label()).or_default() += 1;
                    self.records[i].last_error = Some(e);
                }
            }
        }
        if outcome.acked > 0 {
            self.ack_times.push(Instant::now());
        }
        outcome
    }

    /// Checks a PutRecords answer's shape and splits it into per-record results.
    fn per_record_results(&mut self, n: usize, resp: v1::PutRecordsResponse) -> Vec<RecordResult> {
        if resp.records.len() != n {
            self.anomalies.push(format!(
                "PutRecords of {n} records answered {} entries",
                resp.records.len()
            ));
            return vec![
                Err(AttemptError::Api {
                    code: "MalformedAnswer".into(),
                    message: "wrong entry count".into(),
                });
                n
            ];
        }
        let failed = resp
            .records
            .iter()
            .filter(|e| !e.error_code.is_empty())
            .count();
        if failed as u32 != resp.failed_record_count {
            self.anomalies.push(format!(
                "PutRecords answered failed_record_count {} but {failed} entries have an error",
                resp.failed_record_count
            ));
        }
        resp.records
            .into_iter()
            .map(|e| {
                if e.error_code.is_empty() {
                    if e.shard_id.is_empty() || e.sequence_number.is_empty() {
                        self.anomalies.push(format!(
                            "PutRecords entry without error but with shard id {:?} and sequence number {:?}",
                            e.shard_id, e.sequence_number
                        ));
                    }
                    Ok((e.shard_id, e.sequence_number))
                } else {
                    match ErrorCode::from_kinesis_name(&e.error_code) {
                        Some(c) if c.is_retryable() => {}
                        _ => self.anomalies.push(format!(
                            "PutRecords entry failed with {}: {}",
                            e.error_code, e.error_message
                        )),
                    }
                    Err(AttemptError::Api {
                        code: e.error_code,
                        message: e.error_message,
                    })
                }
            })
            .collect()
    }
}
