//! Moving leadership between replicas: back to a shard's preferred leader when its node returns
//! (rebalance), and away from a node that is stopping (hand-over on SIGTERM).
//!
//! A transfer uses openraft's own: the leader stops proposing, tells every voter that it hands
//! over to the target (they drop their vote leases), and the target, once its log holds all the
//! leader's entries, runs an election that the voters grant although the leader's leases run.
//!
//! A transfer: closes the group's [`WriteGate`] so that no new entry starts (callers wait and
//! retry, see `Node::route`); waits for writes in flight to finish and for the target to hold
//! every entry; triggers the transfer; and waits for this node to step down. The gate reopens in
//! every case. Nothing is lost if a step fails: the gate only delays writes, and the target's
//! election is an ordinary Raft election.
//!
//! One hazard: openraft's leader refuses writes from the moment it starts a transfer until it
//! steps down, and it never cancels a transfer. If the target never takes over (it died right
//! then), this leader *abdicates*: it stops its heartbeats, so that its followers' election
//! timers run out and one of them is elected (`Abdicated` wakes the group if it was quiesced and
//! keeps it from quiescing, so that no follower is held), and it restarts them once it is not
//! leading in that term any more.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use braid_raft::BraidTypeConfig;
use braid_types::limits::{HANDOVER_CONCURRENCY, HANDOVER_MS_MAX, TRANSFER_GATE_MS_MAX};
use braid_types::{GroupId, NodeId, CONTROL_GROUP};
use futures::StreamExt;
use openraft::async_runtime::WatchReceiver;
use openraft::storage::RaftStateMachine;
use openraft::ServerState;
use tokio::time::Instant;

use crate::forward::ForwardOp;
use crate::node::{Node, ShardGroup};

/// Admission of new writes to one shard group on its leader. Writers hold a [`GatePass`] while
/// their entry is proposed and committed; a transfer closes the gate and waits for the passes
/// to drain, so the log stops growing before the target is checked for completeness.
#[derive(Default)]
pub struct WriteGate {
    closed: AtomicBool,
    inflight: AtomicUsize,
}

/// A write admitted by a [`WriteGate`]; dropping it ends the write.
pub struct GatePass<'a>(&'a WriteGate);

impl Drop for GatePass<'_> {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, SeqCst);
    }
}

/// The gate held closed by a transfer; dropping it reopens the gate.
struct Closed<'a>(&'a WriteGate);

impl Drop for Closed<'_> {
    fn drop(&mut self) {
        self.0.closed.store(false, SeqCst);
    }
}

impl WriteGate {
    /// Admits a write, unless a transfer has closed the gate. (Counting before checking, with
    /// the closer setting the flag before counting, means no write slips past a closed gate.)
    pub fn enter(&self) -> Option<GatePass<'_>> {
        self.inflight.fetch_add(1, SeqCst);
        if self.closed.load(SeqCst) {
            self.inflight.fetch_sub(1, SeqCst);
            return None;
        }
        Some(GatePass(self))
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(SeqCst)
    }

    fn close(&self) -> Closed<'_> {
        self.closed.store(true, SeqCst);
        Closed(self)
    }

    fn drained(&self) -> bool {
        self.inflight.load(SeqCst) == 0
    }
}

/// Why a transfer did not happen (logged; the caller retries later or gives up).
#[derive(Debug)]
#[allow(dead_code)] // the fields are read through Debug, in logs
enum Refused {
    Unreachable,
    NotLeader,
    Timeout(&'static str),
}

/// Set while a leader abdicates (see the module doc): the group must not quiesce then.
#[derive(Default)]
pub struct Abdicated(AtomicBool);

impl Abdicated {
    pub fn is_set(&self) -> bool {
        self.0.load(SeqCst)
    }
}

impl Node {
    /// Moves leadership of `raft` (group `group`) from this node to `target`. Returns once this
    /// node has stepped down, or with the reason it did not. Writes wait at most `gate_for`.
    #[allow(clippy::too_many_arguments)]
    async fn transfer<C, SM>(
        &self,
        raft: &openraft::Raft<C, SM>,
        gate: Option<&WriteGate>,
        abdicated: Option<Arc<Abdicated>>,
        target: NodeId,
        gate_for: Duration,
        deadline: Instant,
    ) -> Result<(), Refused>
    where
        C: BraidTypeConfig,
        SM: RaftStateMachine<C>,
    {
        // The target must answer at all before writes are held for it.
        self.transport
            .forward(
                target,
                &ForwardOp::ControlApplied,
                Duration::from_millis(500),
            )
            .await
            .map_err(|_| Refused::Unreachable)?;
        let gate_deadline = deadline.min(Instant::now() + gate_for);
        let _closed = gate.map(|g| g.close());
        if let Some(g) = gate {
            while !g.drained() {
                if Instant::now() >= gate_deadline {
                    return Err(Refused::Timeout("writes in flight"));
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        let me = self.id;
        let left = gate_deadline.saturating_duration_since(Instant::now());
        let caught_up = raft
            .wait(Some(left))
            .metrics(
                |m| {
                    m.state != ServerState::Leader
                        || m.replication
                            .as_ref()
                            .and_then(|r| r.get(&target).cloned().flatten())
                            .map(|l| l.index)
                            == m.last_log_index
                },
                "target holds every entry",
            )
            .await
            .map_err(|_| Refused::Timeout("target catching up"))?;
        if caught_up.state != ServerState::Leader {
            return match caught_up.current_leader {
                Some(l) if l == me => Err(Refused::NotLeader),
                _ => Ok(()),
            };
        }
        raft.trigger()
            .transfer_leader(target)
            .await
            .map_err(|_| Refused::NotLeader)?;
        // From here on this leader refuses writes until it steps down.
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(TRANSFER_GATE_MS_MAX));
        let stepped_down = raft
            .wait(Some(left))
            .metrics(|m| m.state != ServerState::Leader, "stepped down")
            .await
            .is_ok();
        if stepped_down {
            return Ok(());
        }
        self.abdicate(raft, abdicated);
        Err(Refused::Timeout("target did not take over"))
    }

    /// Lets the followers of a leader whose transfer stalled elect someone else: stops its
    /// heartbeats until it is not leading in this term any more.
    fn abdicate<C, SM>(&self, raft: &openraft::Raft<C, SM>, abdicated: Option<Arc<Abdicated>>)
    where
        C: BraidTypeConfig,
        SM: RaftStateMachine<C>,
    {
        tracing::warn!("leadership transfer stalled; abdicating");
        if let Some(a) = &abdicated {
            a.0.store(true, SeqCst);
        }
        let term = raft.metrics().borrow_watched().current_term;
        raft.runtime_config().tick(true);
        raft.runtime_config().heartbeat(false);
        let raft = raft.clone();
        tokio::spawn(async move {
            // Ends when another replica is elected (or this Raft instance stops).
            let _ = raft
                .wait(None)
                .metrics(
                    |m| m.state != ServerState::Leader || m.current_term != term,
                    "abdicated",
                )
                .await;
            raft.runtime_config().heartbeat(true);
            if let Some(a) = &abdicated {
                a.0.store(false, SeqCst);
            }
        });
    }

    async fn transfer_shard(
        &self,
        g: &ShardGroup,
        target: NodeId,
        gate_for: Duration,
        deadline: Instant,
    ) -> bool {
        let started = Instant::now();
        let r = self
            .transfer(
                &g.raft,
                Some(&g.gate),
                Some(g.abdicated.clone()),
                target,
                gate_for,
                deadline,
            )
            .await;
        match r {
            Ok(()) => {
                tracing::info!(group = g.group, to = target, took = ?started.elapsed(), "leadership transferred");
                true
            }
            Err(why) => {
                tracing::info!(
                    group = g.group,
                    to = target,
                    ?why,
                    "leadership not transferred"
                );
                false
            }
        }
    }

    /// Moves leadership of one shard this node leads back to its preferred leader (the
    /// planner's choice, spread over nodes and zones) once that replica is back and close to
    /// caught up. Returns whether a leadership moved (the rebalancer then looks again).
    pub async fn rebalance_once(&self) -> bool {
        for g in self.hosted() {
            let preferred = self.control_sm.read(|st| {
                st.streams
                    .values()
                    .flat_map(|s| s.shards.iter())
                    .find(|x| x.group == g.group && x.is_open())
                    .map(|x| x.preferred_leader)
            });
            let Some(preferred) = preferred else {
                continue;
            };
            let near = {
                let m = g.raft.metrics();
                let m = m.borrow_watched();
                let matched = m
                    .replication
                    .as_ref()
                    .and_then(|r| r.get(&preferred).cloned().flatten())
                    .map(|l| l.index);
                m.state == ServerState::Leader
                    && preferred != self.id
                    && matched.is_some()
                    && m.last_log_index
                        .unwrap_or(0)
                        .saturating_sub(matched.unwrap_or(0))
                        <= braid_types::limits::RAFT_PAYLOAD_ENTRIES_MAX * 4
            };
            if !near {
                continue;
            }
            let gate_for = Duration::from_millis(TRANSFER_GATE_MS_MAX);
            let deadline = Instant::now() + gate_for;
            return self.transfer_shard(&g, preferred, gate_for, deadline).await;
        }
        false
    }

    /// Graceful shutdown, step one: stops starting elections here and hands every leadership
    /// this node holds (shard groups and the control group) to the most caught-up other
    /// replica, the preferred leader first among equals. Returns (moved, held). Takes at most
    /// HANDOVER_MS_MAX; whatever is not moved by then fails over by election after exit.
    pub async fn hand_over_leadership(self: &Arc<Self>) -> (usize, usize) {
        let started = Instant::now();
        let deadline = started + Duration::from_millis(HANDOVER_MS_MAX);
        let hosted = self.hosted();
        for g in &hosted {
            g.raft.runtime_config().elect(false);
        }
        self.control.runtime_config().elect(false);
        let led: Vec<(Arc<ShardGroup>, NodeId)> = hosted
            .into_iter()
            .filter_map(|g| {
                let target = self.successor(g.group, &g.raft.metrics().borrow_watched())?;
                Some((g, target))
            })
            .collect();
        let control_target =
            self.successor(CONTROL_GROUP, &self.control.metrics().borrow_watched());
        let held = led.len() + usize::from(control_target.is_some());
        let gate_for = Duration::from_millis(HANDOVER_MS_MAX);
        let mut moved =
            futures::stream::iter(led)
                .map(|(g, target)| async move {
                    self.transfer_shard(&g, target, gate_for, deadline).await
                })
                .buffer_unordered(HANDOVER_CONCURRENCY)
                .filter(|ok| futures::future::ready(*ok))
                .count()
                .await;
        if let Some(target) = control_target {
            match self
                .transfer(&self.control, None, None, target, gate_for, deadline)
                .await
            {
                Ok(()) => moved += 1,
                Err(why) => tracing::info!(to = target, ?why, "control leadership not transferred"),
            }
        }
        tracing::info!(moved, held, took = ?started.elapsed(), "leadership handed over");
        (moved, held)
    }

    /// Where leadership of a group this node leads should go: the other replica with the
    /// longest matched log, the preferred leader first among equals. None if not leading.
    fn successor<C: BraidTypeConfig>(
        &self,
        group: GroupId,
        m: &openraft::RaftMetrics<C>,
    ) -> Option<NodeId> {
        if m.state != ServerState::Leader {
            return None;
        }
        let preferred = self.control_sm.read(|st| {
            st.streams
                .values()
                .flat_map(|s| s.shards.iter())
                .find(|x| x.group == group)
                .map(|x| x.preferred_leader)
        });
        m.replication
            .as_ref()?
            .iter()
            .filter(|(id, _)| **id != self.id)
            .max_by_key(|(id, l)| (l.map(|l| l.index), Some(**id) == preferred, **id))
            .map(|(id, _)| *id)
    }

    pub(crate) fn hosted(&self) -> Vec<Arc<ShardGroup>> {
        self.groups
            .read()
            .expect("lock")
            .values()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::WriteGate;

    #[test]
    fn closed_gate_admits_nothing_and_counts_passes() {
        let g = WriteGate::default();
        let a = g.enter().expect("open gate admits");
        assert!(!g.drained());
        {
            let _closed = g.close();
            assert!(g.is_closed());
            assert!(g.enter().is_none(), "closed gate admits nothing");
            assert!(!g.drained(), "the pass from before closing still counts");
            drop(a);
            assert!(g.drained());
        }
        assert!(!g.is_closed(), "dropping the closer reopens");
        assert!(g.enter().is_some());
    }
}
