//! Quiescence: idle shard groups stop their Raft timers, and one message per peer stands in for
//! all of their heartbeats.
//!
//! With one Raft group per shard, a node with hundreds of idle shards would spend its CPU on
//! heartbeats and election timers that say nothing new. So every `heartbeat_interval_ms` each
//! node looks at the groups it leads: a group whose log has not grown for
//! QUIESCE_AFTER_HEARTBEATS intervals, and whose followers hold every entry and have been told
//! the commit index by those heartbeats, is *quiesced*: its openraft ticks stop (no heartbeats).
//! Each node then sends each peer one `Quiesced` message listing the quiesced groups it leads
//! there, with their terms. A follower that finds the sender is its leader in that term stops
//! the group's ticks too (no election timer) until a random point between the election timeouts
//! from now. The next message, one interval later, extends that hold.
//!
//! Any change ends it: a write grows the leader's log, so the leader restarts its ticks and
//! leaves the group off its list; followers get the entry by replication (which does not need
//! ticks) and their hold expires within an election timeout, after which their election timers
//! run as usual against the leader's heartbeats. If the leader dies, the messages stop, the
//! holds expire and the followers elect; their vote leases lapsed long ago (nothing renewed them
//! while quiet), so the first candidate wins at once. Raft safety never depends on any of this:
//! only when elections may start changes, never who may win one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use braid_types::limits::{QUIESCED_MESSAGE_GROUPS_MAX, QUIESCE_AFTER_HEARTBEATS};
use braid_types::{GroupId, NodeId};
use openraft::async_runtime::WatchReceiver;
use openraft::ServerState;
use rand::Rng;
use tokio::time::Instant;

use crate::forward::ForwardOp;
use crate::node::{Node, ShardGroup};

/// A shard group's quiescence, on this node.
#[derive(Default)]
pub struct Quiet(Mutex<QuietState>);

#[derive(Default)]
struct QuietState {
    /// Leader: the last log index seen, and since when.
    last_index: Option<u64>,
    since: Option<Instant>,
    /// Leader: ticks stopped because the group is idle.
    quiesced: bool,
    /// Follower: ticks stopped, on the leader's word, until then.
    held_until: Option<Instant>,
}

impl Quiet {
    /// Whether this replica's Raft timers are stopped (leader quiesced, or follower held).
    pub fn is_quiet(&self) -> bool {
        let q = self.0.lock().expect("lock");
        q.quiesced || q.held_until.is_some()
    }
}

impl Node {
    /// One pass over the hosted groups: quiesce idle groups this node leads, wake groups that
    /// changed, release expired follower holds, and tell each peer which of the groups it
    /// follows here are quiesced.
    pub(crate) fn quiesce_pass(&self, now: Instant) -> HashMap<NodeId, Vec<(GroupId, u64)>> {
        let idle_for =
            Duration::from_millis(self.config.heartbeat_interval_ms * QUIESCE_AFTER_HEARTBEATS);
        let mut lists: HashMap<NodeId, Vec<(GroupId, u64)>> = HashMap::new();
        for g in self.hosted() {
            let (state, term, last, applied, followers_done, followers) = {
                let m = g.raft.metrics();
                let m = m.borrow_watched();
                if m.running_state.is_err() {
                    // A stopped replica's frozen "leader, all caught up" must not keep its
                    // followers quiet: they have to elect a new leader.
                    continue;
                }
                let last = m.last_log_index;
                let followers: Vec<NodeId> = m
                    .replication
                    .as_ref()
                    .map(|r| r.keys().copied().filter(|id| *id != self.id).collect())
                    .unwrap_or_default();
                let done = m
                    .replication
                    .as_ref()
                    .is_some_and(|r| r.iter().all(|(_, l)| l.as_ref().map(|l| l.index) == last));
                (
                    m.state,
                    m.current_term,
                    last,
                    m.last_applied.map(|l| l.index),
                    done,
                    followers,
                )
            };
            let mut q = g.quiet.0.lock().expect("lock");
            if state == ServerState::Leader {
                if g.abdicated.is_set() {
                    // Abdicating (see `leadership`): its followers must be free to elect.
                    if q.quiesced {
                        q.quiesced = false;
                        g.raft.runtime_config().tick(true);
                    }
                    q.since = None;
                    continue;
                }
                if q.held_until.take().is_some() {
                    // Elected while held (a transfer): a leader needs its ticks.
                    g.raft.runtime_config().tick(true);
                }
                if q.last_index != last || q.since.is_none() {
                    q.last_index = last;
                    q.since = Some(now);
                    if q.quiesced {
                        q.quiesced = false;
                        g.raft.runtime_config().tick(true);
                    }
                } else if !q.quiesced
                    && q.since.is_some_and(|s| now.duration_since(s) >= idle_for)
                    && followers_done
                    && applied == last
                {
                    q.quiesced = true;
                    g.raft.runtime_config().tick(false);
                    g.cache.clear();
                }
                if q.quiesced {
                    for f in followers {
                        lists.entry(f).or_default().push((g.group, term));
                    }
                }
            } else {
                q.last_index = None;
                q.since = None;
                if q.quiesced {
                    q.quiesced = false;
                    g.raft.runtime_config().tick(true);
                }
                if q.held_until.is_some_and(|t| now >= t) {
                    q.held_until = None;
                    g.raft.runtime_config().tick(true);
                }
            }
        }
        lists
    }

    /// A peer's list of the quiesced groups it leads: hold the matching followers here.
    pub(crate) fn hold_quiesced(&self, from: NodeId, groups: &[(GroupId, u64)]) {
        let now = Instant::now();
        let (lo, hi) = (
            self.config.election_timeout_min_ms,
            self.config
                .election_timeout_max_ms
                .max(self.config.election_timeout_min_ms + 1),
        );
        let mut rng = rand::thread_rng();
        for (group, term) in groups {
            let Some(g) = self.group(*group) else {
                continue;
            };
            let follows = {
                let m = g.raft.metrics();
                let m = m.borrow_watched();
                m.state == ServerState::Follower
                    && m.current_leader == Some(from)
                    && m.current_term == *term
            };
            if !follows {
                continue;
            }
            let until = now + Duration::from_millis(rng.gen_range(lo..hi));
            let mut q = g.quiet.0.lock().expect("lock");
            if q.held_until.is_none() {
                g.raft.runtime_config().tick(false);
                g.cache.clear();
            }
            q.held_until = Some(until);
        }
    }

    pub(crate) fn spawn_quiescer(self: Arc<Self>) {
        tokio::spawn(async move {
            let mut stop = self.shutdown.subscribe();
            let every = Duration::from_millis(self.config.heartbeat_interval_ms);
            // One message in flight per peer: a slow or dead peer is skipped, not queued for.
            let busy: Arc<HashMap<NodeId, AtomicBool>> = Arc::new(
                self.config
                    .peers
                    .iter()
                    .map(|p| (p.id, AtomicBool::new(false)))
                    .collect(),
            );
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                let lists = self.quiesce_pass(Instant::now());
                for (peer, mut groups) in lists {
                    let Some(flag) = busy.get(&peer) else {
                        continue;
                    };
                    if flag.swap(true, Ordering::AcqRel) {
                        continue;
                    }
                    groups.truncate(QUIESCED_MESSAGE_GROUPS_MAX);
                    let node = self.clone();
                    let busy = busy.clone();
                    tokio::spawn(async move {
                        let op = ForwardOp::Quiesced {
                            from: node.id,
                            groups,
                        };
                        let _ = node.transport.forward(peer, &op, every * 4).await;
                        if let Some(f) = busy.get(&peer) {
                            f.store(false, Ordering::Release);
                        }
                    });
                }
            }
        });
    }
}

impl ShardGroup {
    /// Whether this replica's Raft timers are stopped by quiescence.
    pub fn is_quiet(&self) -> bool {
        self.quiet.is_quiet()
    }
}
