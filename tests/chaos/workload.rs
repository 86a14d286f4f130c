//! The chaos workload: producers, per-shard probe writers and consumers, all recording what
//! they did in `braid_tests::Ledger`s (what was sent, acknowledged, failed, unknown) and in
//! consumer logs (what was read, in order).
//!
//! * Producers: sequential calls through a preferred node (a quarter single `PutRecord`, the
//!   rest `PutRecords` of 1..=50), hot and cold partition keys, unique record ids, at most one
//!   outstanding record per key (so per-key order is checkable), retries of their own (clients
//!   without retries, so the ledger knows every attempt), moving to the next node after an error
//!   and avoiding a node that did not answer for a few seconds ([`Endpoints`]).
//! * Probe writers: one per shard, single `PutRecord`s on a key of that shard, back to back,
//!   moving to the next node at the first error. Their acknowledgement times measure, shard by
//!   shard, how long writes were unavailable during each fault.
//! * Consumers: one per shard, following it from `TRIM_HORIZON` with `ShardReader` for the whole
//!   run; what they saw must be a prefix of the shard's final history.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use braid_client::{v1, Client, ClientOptions, ShardReader};
use braid_tests::ledger::{record_data, record_id};
use braid_tests::verify::{hash_range, partition_key_hash};
use braid_tests::{Clock, Ledger};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub const STREAM: &str = "chaos";
/// Attempts of one record before a writer gives up on it.
const ATTEMPTS_MAX: u32 = 20;
const HOT_KEYS: usize = 5;
const COLD_KEYS: usize = 45;
const HOT_WEIGHT: u32 = 15;
const BATCH_MAX: usize = 50;
/// Pause between two acknowledged probe records.
const PROBE_INTERVAL: Duration = Duration::from_millis(40);

/// Per-call deadline of the producers' clients: a node that does not answer (paused, cut off)
/// costs a producer this long before it moves on.
pub const WRITE_TIMEOUT: Duration = Duration::from_millis(1_000);
/// The probe writers' deadline: shorter, so that their gaps measure the cluster's failover more
/// than their own timeouts (a normal single put takes milliseconds).
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// What the workload tasks share.
pub struct Shared {
    pub clock: Clock,
    /// Stops producers and probes.
    pub stop: AtomicBool,
    /// Stops consumers.
    pub stop_consumers: AtomicBool,
    pub acked: AtomicU64,
}

impl Shared {
    pub fn new() -> Arc<Shared> {
        Arc::new(Shared {
            clock: Clock::new(),
            stop: AtomicBool::new(false),
            stop_consumers: AtomicBool::new(false),
            acked: AtomicU64::new(0),
        })
    }
}

/// One client per node, without retries: the writers retry themselves and account for it.
pub fn writer_clients(endpoints: &[String], timeout: Duration) -> Vec<Client> {
    let options = ClientOptions {
        retries: 0,
        retry_backoff_ms: 0,
        timeout_ms: timeout.as_millis() as u64,
        ..ClientOptions::default()
    };
    endpoints
        .iter()
        .map(|e| Client::new(std::slice::from_ref(e), options.clone()).expect("client"))
        .collect()
}

/// Which node a writer sends to: it stays with a node while calls succeed, moves to the next one
/// after a failed call, and avoids a node that did not answer at all for a while (a client-side
/// circuit breaker, so a paused or cut-off node costs one timeout, not one per round).
pub struct Endpoints {
    n: usize,
    current: usize,
    avoid_until: Vec<Option<Instant>>,
}

/// How long a writer avoids a node that did not answer.
const AVOID_SILENT_NODE: Duration = Duration::from_secs(3);

impl Endpoints {
    pub fn new(n: usize, first: usize) -> Endpoints {
        Endpoints {
            n,
            current: first % n,
            avoid_until: vec![None; n],
        }
    }

    pub fn current(&self) -> usize {
        self.current
    }

    /// After a failed call: `silent` when it got no answer (timeout, connection error).
    pub fn failed(&mut self, silent: bool) {
        let now = Instant::now();
        if silent {
            self.avoid_until[self.current] = Some(now + AVOID_SILENT_NODE);
        }
        let next = (1..=self.n)
            .map(|k| (self.current + k) % self.n)
            .find(|&i| self.avoid_until[i].is_none_or(|t| t <= now))
            .unwrap_or((self.current + 1) % self.n);
        self.current = next;
    }
}

/// A shard of the stream under test.
#[derive(Clone, Debug)]
pub struct ShardInfo {
    pub shard_id: String,
    pub range: (u128, u128),
}

impl ShardInfo {
    pub fn from_shards(shards: &[v1::Shard]) -> Vec<ShardInfo> {
        shards
            .iter()
            .map(|s| ShardInfo {
                shard_id: s.shard_id.clone(),
                range: hash_range(s),
            })
            .collect()
    }

    fn holds(&self, key: &str) -> bool {
        let h = partition_key_hash(key);
        self.range.0 <= h && h <= self.range.1
    }
}

fn keys() -> Vec<(String, u32)> {
    (0..HOT_KEYS)
        .map(|i| (format!("hot-{i}"), HOT_WEIGHT))
        .chain((0..COLD_KEYS).map(|i| (format!("cold-{i}"), 1)))
        .collect()
}

/// Producer `p`: see the module docs. Offers about `rate` records per second.
pub async fn produce(p: usize, clients: Vec<Client>, shared: Arc<Shared>, rate: f64) -> Ledger {
    let mut rng = StdRng::seed_from_u64(0xc4a05 + p as u64);
    let keys = keys();
    let mut ledger = Ledger::new();
    // key index -> record index of the key's outstanding record
    let mut pending: BTreeMap<usize, usize> = BTreeMap::new();
    let mut next_in_key = vec![0u64; keys.len()];
    let mut created = 0usize;
    let mut nodes = Endpoints::new(clients.len(), p);
    let mut failures_in_row = 0u32;
    let started = Instant::now();
    while !shared.stop.load(Ordering::SeqCst) {
        let allowed = (started.elapsed().as_secs_f64() * rate) as usize + BATCH_MAX;
        let fresh_budget = allowed.saturating_sub(created);
        let single = rng.gen_bool(0.25);
        let size = if single {
            1
        } else {
            rng.gen_range(1..=BATCH_MAX)
        };
        // Retries first, then new records on keys without an outstanding record.
        let mut batch: Vec<usize> = pending.values().take(size).copied().collect();
        let mut free: Vec<usize> = (0..keys.len())
            .filter(|k| !pending.contains_key(k))
            .collect();
        let mut fresh = 0;
        while batch.len() < size && fresh < fresh_budget && !free.is_empty() {
            let free_weight: u32 = free.iter().map(|k| keys[*k].1).sum();
            let mut pick = rng.gen_range(0..free_weight);
            let mut j = 0;
            while pick >= keys[free[j]].1 {
                pick -= keys[free[j]].1;
                j += 1;
            }
            let k = free.swap_remove(j);
            let id = format!("p{p}-{created}");
            created += 1;
            let key = keys[k].0.clone();
            let data = record_data(&id, &key, rng.gen_range(0..200));
            let order = Some((format!("p{p}/{key}"), next_in_key[k]));
            next_in_key[k] += 1;
            let ix = ledger.add(id, key, data, order);
            pending.insert(k, ix);
            batch.push(ix);
            fresh += 1;
        }
        if batch.is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        let outcome = ledger
            .put(
                &clients[nodes.current()],
                STREAM,
                &batch,
                single && batch.len() == 1,
                &shared.clock,
            )
            .await;
        shared
            .acked
            .fetch_add(outcome.acked as u64, Ordering::SeqCst);
        pending.retain(|_, ix| {
            let r = &ledger.records[*ix];
            r.ack.is_none() && r.attempts < ATTEMPTS_MAX
        });
        if outcome.not_acked > 0 {
            nodes.failed(outcome.transport_error);
            failures_in_row += 1;
            let backoff = 50u64 << (failures_in_row - 1).min(4);
            tokio::time::sleep(Duration::from_millis(backoff)).await;
        } else {
            failures_in_row = 0;
        }
    }
    ledger
}

/// What a probe writer did.
pub struct ProbeLog {
    pub shard_id: String,
    pub ledger: Ledger,
    /// When each acknowledgement arrived.
    pub acks: Vec<Instant>,
}

/// A partition key whose hash falls in `shard`.
pub fn key_in(shard: &ShardInfo, salt: &str) -> String {
    (0..)
        .map(|n| format!("probe-{salt}-{n}"))
        .find(|k| shard.holds(k))
        .expect("some key hashes into every shard")
}

/// The probe writer of shard `s`: see the module docs.
pub async fn probe(
    s: usize,
    shard: ShardInfo,
    clients: Vec<Client>,
    shared: Arc<Shared>,
) -> ProbeLog {
    let key = key_in(&shard, &s.to_string());
    let mut log = ProbeLog {
        shard_id: shard.shard_id.clone(),
        ledger: Ledger::new(),
        acks: Vec::new(),
    };
    let mut nodes = Endpoints::new(clients.len(), s);
    let mut failures_in_row = 0usize;
    let mut n = 0u64;
    let mut current: Option<usize> = None;
    while !shared.stop.load(Ordering::SeqCst) {
        let ix = match current {
            Some(ix) => ix,
            None => {
                let id = format!("s{s}-{n}");
                let data = record_data(&id, &key, 16);
                let ix = log
                    .ledger
                    .add(id, key.clone(), data, Some((format!("probe/{s}"), n)));
                n += 1;
                current = Some(ix);
                ix
            }
        };
        let outcome = log
            .ledger
            .put(
                &clients[nodes.current()],
                STREAM,
                &[ix],
                true,
                &shared.clock,
            )
            .await;
        if outcome.acked == 1 {
            log.acks.push(Instant::now());
            shared.acked.fetch_add(1, Ordering::SeqCst);
            current = None;
            failures_in_row = 0;
            tokio::time::sleep(PROBE_INTERVAL).await;
        } else {
            if log.ledger.records[ix].attempts >= ATTEMPTS_MAX {
                current = None;
            }
            nodes.failed(outcome.transport_error);
            failures_in_row += 1;
            // Every node was tried once: back off a little before the next round.
            if failures_in_row.is_multiple_of(clients.len()) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    log
}

/// What a consumer saw of one shard: `(sequence number, record id)` in read order.
pub struct ConsumerLog {
    pub shard_id: String,
    pub seen: Mutex<Vec<(String, String)>>,
    pub errors: AtomicU64,
}

/// The consumer of one shard: follows it from TRIM_HORIZON until `stop_consumers`.
pub async fn consume(client: Client, shard_id: String, log: Arc<ConsumerLog>, shared: Arc<Shared>) {
    let mut reader = loop {
        match ShardReader::new(
            client.clone(),
            STREAM,
            &shard_id,
            v1::ShardIteratorType::TrimHorizon,
            None,
        )
        .await
        {
            Ok(r) => break r,
            Err(_) => {
                log.errors.fetch_add(1, Ordering::SeqCst);
                if shared.stop_consumers.load(Ordering::SeqCst) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    };
    while !shared.stop_consumers.load(Ordering::SeqCst) {
        match reader.next_batch(0).await {
            Ok(records) => {
                let empty = records.is_empty();
                {
                    let mut seen = log.seen.lock().expect("lock");
                    for r in records {
                        let id = record_id(&r.data).unwrap_or("?").to_string();
                        seen.push((r.sequence_number, id));
                    }
                }
                if empty {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            Err(_) => {
                log.errors.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Endpoints;

    #[test]
    fn writers_skip_nodes_that_did_not_answer() {
        let mut e = Endpoints::new(3, 0);
        e.failed(true); // node 0 silent
        assert_eq!(e.current(), 1);
        e.failed(false); // node 1 answered with an error: not avoided
        assert_eq!(e.current(), 2);
        e.failed(false);
        assert_eq!(e.current(), 1, "node 0 is skipped while it is avoided");
        e.failed(true);
        e.failed(true);
        // Everything is avoided: plain rotation.
        assert_eq!(e.current(), 0);
    }
}
