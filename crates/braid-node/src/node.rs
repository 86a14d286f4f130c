//! The node: opens its disk, runs the control group and its shard groups, and executes
//! forwarded operations. `Node::route` is how every caller reaches a group's leader.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use braid_control::planner::NodeRef;
use braid_control::{
    ControlRaft, ControlRequest, ControlResponse, ControlState, ControlTypeConfig, StreamStatus,
};
use braid_raft::log_store::{CacheBudget, CommittedIndex, EntryCache, LogStore};
use braid_raft::meta::MetaStore;
use braid_raft::network::GroupNetworkFactory;
use braid_raft::shard::{ShardRaft, ShardRequest, ShardResponse, ShardState, ShardTypeConfig};
use braid_raft::state_machine::{SmHandle, SmStore};
use braid_raft::{codec, NodeInfo};
use braid_storage::{LogConfig, SegmentLog};
use braid_types::limits::{
    CATALOG_REPLAY_WAIT_MS, LEADER_WAIT_MS_MAX, LOG_CACHE_GROUP_BYTES_MAX, LOG_CACHE_NODE_BYTES_MAX,
};
use braid_types::seqnum::Position;
use braid_types::{BraidError, GroupId, NodeId, CONTROL_GROUP};
use openraft::async_runtime::WatchReceiver;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{EntryPayload, ServerState};
use tokio::sync::watch;

use crate::config::NodeConfig;
use crate::forward::{ForwardOp, ForwardReply, GroupStatus, LocalStatus, ReadBatch, ReadRecord};
use crate::leadership::WriteGate;
use crate::propose::{Outcome, Proposer};
use crate::quiesce::Quiet;
use crate::transport::{ForwardError, GrpcTransport};

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// One shard replica hosted by this node.
pub struct ShardGroup {
    pub group: GroupId,
    pub raft: ShardRaft,
    pub sm: SmHandle<ShardState>,
    pub log: Arc<SegmentLog>,
    meta: MetaStore,
    dir: PathBuf,
    /// (term, last log index when this node was first seen leading in that term).
    office: std::sync::Mutex<Option<(u64, u64)>>,
    /// Closed while leadership moves to another replica (see `leadership`).
    pub gate: WriteGate,
    /// Whether the group's Raft timers are stopped because it is idle (see `quiesce`).
    pub quiet: Quiet,
    /// Set while this replica, leading, abdicates after a stalled transfer (see `leadership`).
    pub abdicated: Arc<crate::leadership::Abdicated>,
    /// Merges concurrent writes into one entry while this replica leads (see `propose`).
    proposer: Proposer,
    /// The latest entries, for replication and apply; emptied when the group goes quiet.
    pub cache: Arc<EntryCache<ShardTypeConfig>>,
    /// What this replica knows to be committed.
    pub committed: CommittedIndex,
}

pub struct Node {
    pub config: NodeConfig,
    pub id: NodeId,
    db: sled::Db,
    pub transport: Arc<GrpcTransport>,
    pub control: ControlRaft,
    pub control_sm: SmHandle<ControlState>,
    pub(crate) groups: RwLock<HashMap<GroupId, Arc<ShardGroup>>>,
    /// The bound on all groups' entry caches together.
    pub log_cache: Arc<CacheBudget>,
    control_committed: CommittedIndex,
    pub(crate) shutdown: watch::Sender<bool>,
    started: Instant,
    /// Added to the wall clock by retention only: the seam tests use to age data.
    retention_clock_offset_ms: std::sync::atomic::AtomicU64,
    /// Shard operations (writes, reads, tips) this node sent on to another node since it
    /// started: what clients that do not call the leader cost.
    forwarded_ops: std::sync::atomic::AtomicU64,
}

fn internal(e: impl std::fmt::Display) -> BraidError {
    BraidError::internal(e.to_string())
}

impl Node {
    /// Opens the node's disk and starts its Raft groups and background tasks.
    pub async fn start(config: NodeConfig) -> anyhow::Result<Arc<Node>> {
        let config = config.validate()?;
        std::fs::create_dir_all(&config.data_dir)?;
        let db = sled::Config::new()
            .path(config.data_dir.join("meta"))
            .cache_capacity(braid_types::limits::SLED_CACHE_BYTES)
            .mode(sled::Mode::LowSpace)
            .open()?;
        crate::format::check_or_init(&db, &config.data_dir)?;
        let transport = GrpcTransport::new(&config.peers);
        let id = config.node_id;

        let control_log = Arc::new(SegmentLog::open(
            &config.data_dir.join("control"),
            LogConfig::default(),
        )?);
        let meta = MetaStore::new(&db, "control", CONTROL_GROUP)?;
        // What this node knew to be committed when it stopped: the catalog is served only once
        // it has been replayed that far (else a restarted node would not know existing streams).
        let known_committed = meta
            .get::<Option<braid_raft::LogId>>("committed")?
            .flatten()
            .map(|l| l.index);
        let log_cache = CacheBudget::new(LOG_CACHE_NODE_BYTES_MAX, LOG_CACHE_GROUP_BYTES_MAX);
        let log_store =
            LogStore::<ControlTypeConfig>::open(control_log, meta.clone(), log_cache.clone())?;
        let control_committed = log_store.committed().clone();
        let (sm, control_sm) =
            SmStore::<ControlTypeConfig, ControlState>::open(meta, log_store.durable())?;
        let raft_config = Arc::new(braid_raft::control_raft_config(&config.timing()));
        let control = ControlRaft::new(
            id,
            raft_config,
            GroupNetworkFactory::new(CONTROL_GROUP, transport.clone()),
            log_store,
            sm,
        )
        .await?;

        if known_committed.is_some() {
            let replayed = control
                .wait(Some(Duration::from_millis(CATALOG_REPLAY_WAIT_MS)))
                .applied_index_at_least(known_committed, "catalog replayed")
                .await;
            if replayed.is_err() {
                tracing::warn!(
                    ?known_committed,
                    "the catalog was not replayed in time; serving what is applied"
                );
            }
        }

        let (shutdown, _) = watch::channel(false);
        let node = Arc::new(Node {
            config,
            id,
            db,
            transport,
            control,
            control_sm,
            groups: RwLock::new(HashMap::new()),
            log_cache,
            control_committed,
            shutdown,
            started: Instant::now(),
            retention_clock_offset_ms: std::sync::atomic::AtomicU64::new(0),
            forwarded_ops: std::sync::atomic::AtomicU64::new(0),
        });
        node.clone().spawn_bootstrap();
        node.clone().spawn_reconciler();
        node.clone().spawn_control_duties();
        node.clone().spawn_retention();
        node.clone().spawn_rebalancer();
        node.clone().spawn_quiescer();
        tracing::info!(node_id = id, zone = %node.config.zone, "node started");
        Ok(node)
    }

    fn members(&self) -> BTreeMap<NodeId, NodeInfo> {
        self.config
            .peers
            .iter()
            .map(|p| {
                (
                    p.id,
                    NodeInfo {
                        addr: p.addr.clone(),
                        zone: p.zone.clone(),
                    },
                )
            })
            .collect()
    }

    /// Forms the control group on first start: the lowest id initializes at once, the others
    /// after a delay if nobody contacted them (initializing with the same membership on
    /// several nodes is safe in openraft).
    fn spawn_bootstrap(self: Arc<Self>) {
        tokio::spawn(async move {
            let lowest = self
                .config
                .peers
                .iter()
                .map(|p| p.id)
                .min()
                .unwrap_or(self.id);
            let delay = if lowest == self.id {
                Duration::ZERO
            } else {
                Duration::from_secs(3)
            };
            tokio::time::sleep(delay).await;
            match self.control.is_initialized().await {
                Ok(false) => match self.control.initialize(self.members()).await {
                    Ok(()) => tracing::info!("bootstrapped the control plane"),
                    Err(e) => tracing::debug!(error = %e, "control plane initialize not needed"),
                },
                Ok(true) => {}
                Err(e) => tracing::error!(error = %e, "control raft stopped"),
            }
        });
    }

    pub fn group(&self, group: GroupId) -> Option<Arc<ShardGroup>> {
        self.groups.read().expect("lock").get(&group).cloned()
    }

    fn shard_dir(&self, group: GroupId) -> PathBuf {
        self.config
            .data_dir
            .join("shards")
            .join(format!("{group:020}"))
    }

    async fn open_group(
        &self,
        group: GroupId,
        replicas: &[NodeId],
        preferred: NodeId,
    ) -> anyhow::Result<Arc<ShardGroup>> {
        let dir = self.shard_dir(group);
        let log = Arc::new(SegmentLog::open(
            &dir,
            LogConfig {
                segment_bytes_max: self.config.segment_bytes_max,
            },
        )?);
        let meta = MetaStore::new(&self.db, "shard", group)?;
        let log_store =
            LogStore::<ShardTypeConfig>::open(log.clone(), meta.clone(), self.log_cache.clone())?;
        let cache = log_store.cache().clone();
        let committed = log_store.committed().clone();
        let (sm_store, sm) =
            SmStore::<ShardTypeConfig, ShardState>::open(meta.clone(), log_store.durable())?;
        // The shard state is tiny and derived from the log: persist it lazily.
        let sm_store = sm_store.with_persist_interval(Duration::from_millis(200));
        let raft = ShardRaft::new(
            self.id,
            Arc::new(braid_raft::shard_raft_config(&self.config.timing())),
            GroupNetworkFactory::new(group, self.transport.clone()),
            log_store,
            sm_store,
        )
        .await?;
        if !raft.is_initialized().await? {
            let all = self.members();
            let members: BTreeMap<NodeId, NodeInfo> = replicas
                .iter()
                .filter_map(|r| all.get(r).map(|n| (*r, n.clone())))
                .collect();
            let r2 = raft.clone();
            let delay = if preferred == self.id {
                Duration::ZERO
            } else {
                Duration::from_secs(3)
            };
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                if let Ok(false) = r2.is_initialized().await {
                    if let Err(e) = r2.initialize(members).await {
                        tracing::debug!(group, error = %e, "shard initialize not needed");
                    }
                }
            });
        }
        let proposer = Proposer::spawn(
            group,
            raft.clone(),
            sm.clone(),
            log.clone(),
            Duration::from_millis(self.config.election_timeout_max_ms),
        );
        Ok(Arc::new(ShardGroup {
            group,
            proposer,
            cache,
            committed,
            raft,
            sm,
            log,
            meta,
            dir,
            office: std::sync::Mutex::new(None),
            gate: WriteGate::default(),
            quiet: Quiet::default(),
            abdicated: Arc::default(),
        }))
    }

    /// Makes the hosted groups match the catalog: opens groups placed here, and removes the
    /// groups of deleted streams.
    async fn reconcile(&self) {
        let (wanted, deleted) = self.control_sm.read(|st| {
            let wanted: Vec<(GroupId, Vec<NodeId>, NodeId)> = st
                .streams
                .values()
                .flat_map(|s| s.shards.iter())
                .filter(|sh| sh.replicas.contains(&self.id))
                .map(|sh| (sh.group, sh.replicas.clone(), sh.preferred_leader))
                .collect();
            (wanted, st.deleted_groups.clone())
        });
        for (group, replicas, preferred) in wanted {
            if self.group(group).is_some() {
                continue;
            }
            match self.open_group(group, &replicas, preferred).await {
                Ok(g) => {
                    self.groups.write().expect("lock").insert(group, g);
                    tracing::info!(group, "shard replica opened");
                }
                Err(e) => tracing::error!(group, error = %e, "cannot open shard replica"),
            }
        }
        let doomed: Vec<Arc<ShardGroup>> = {
            let mut groups = self.groups.write().expect("lock");
            let ids: Vec<GroupId> = groups
                .keys()
                .copied()
                .filter(|g| deleted.contains(g))
                .collect();
            ids.into_iter().filter_map(|g| groups.remove(&g)).collect()
        };
        for g in doomed {
            let _ = g.raft.shutdown().await;
            let _ = g.meta.clear();
            let _ = std::fs::remove_dir_all(&g.dir);
            tracing::info!(group = g.group, "shard replica deleted");
        }
        // Leftover directories of deleted groups (deleted while this node was down).
        if let Ok(rd) = std::fs::read_dir(self.config.data_dir.join("shards")) {
            for e in rd.flatten() {
                if let Some(g) = e.file_name().to_str().and_then(|s| s.parse::<u64>().ok()) {
                    if deleted.contains(&g) && self.group(g).is_none() {
                        let _ = std::fs::remove_dir_all(e.path());
                        if let Ok(m) = MetaStore::new(&self.db, "shard", g) {
                            let _ = m.clear();
                        }
                    }
                }
            }
        }
    }

    fn spawn_reconciler(self: Arc<Self>) {
        tokio::spawn(async move {
            let mut rx = self.control_sm.subscribe();
            let mut stop = self.shutdown.subscribe();
            loop {
                self.reconcile().await;
                tokio::select! {
                    r = rx.changed() => if r.is_err() { return },
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
            }
        });
    }

    /// Work only the control leader does: set the cluster identity once, and mark streams
    /// ACTIVE once every shard group has a leader.
    fn spawn_control_duties(self: Arc<Self>) {
        tokio::spawn(async move {
            let mut stop = self.shutdown.subscribe();
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
                if self.control.metrics().borrow_watched().current_leader != Some(self.id) {
                    continue;
                }
                if self.control_sm.read(|st| st.cluster_id.is_none()) {
                    let mut secret = vec![0u8; 32];
                    rand::Rng::fill(&mut rand::thread_rng(), &mut secret[..]);
                    let cluster_id = format!("braid-{:016x}", rand::random::<u64>());
                    let _ = self
                        .control
                        .client_write(ControlRequest::InitCluster {
                            cluster_id,
                            iterator_secret: secret,
                        })
                        .await;
                }
                let creating: Vec<(String, u64, Vec<GroupId>)> = self.control_sm.read(|st| {
                    st.streams
                        .values()
                        .filter(|s| s.status == StreamStatus::Creating)
                        .map(|s| {
                            (
                                s.name.clone(),
                                s.created_ms,
                                s.shards.iter().map(|x| x.group).collect(),
                            )
                        })
                        .collect()
                });
                for (name, created_ms, groups) in creating {
                    let ready = groups.iter().all(|g| {
                        self.group(*g)
                            .map(|sg| sg.raft.metrics().borrow_watched().current_leader.is_some())
                            .unwrap_or(false)
                    });
                    if ready {
                        let req = ControlRequest::SetStreamStatus {
                            name,
                            created_ms,
                            status: StreamStatus::Active,
                        };
                        let _ = self.control.client_write(req).await;
                    }
                }
            }
        });
    }

    /// Ages every record by `ms` as far as retention is concerned (tests).
    pub fn advance_retention_clock(&self, ms: u64) {
        self.retention_clock_offset_ms
            .fetch_add(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// Deletes whole segments whose records are all past their stream's retention. Purging goes
    /// through openraft (snapshot, then purge), so openraft never asks for an entry that is gone.
    pub async fn enforce_retention(&self) {
        let hosted: Vec<Arc<ShardGroup>> = self
            .groups
            .read()
            .expect("lock")
            .values()
            .cloned()
            .collect();
        let now = now_ms()
            + self
                .retention_clock_offset_ms
                .load(std::sync::atomic::Ordering::Relaxed);
        for g in hosted {
            let hours = self.control_sm.read(|st| {
                st.streams
                    .values()
                    .find(|s| s.shards.iter().any(|x| x.group == g.group))
                    .map(|s| s.retention_hours)
            });
            let Some(hours) = hours else { continue };
            let cutoff = now.saturating_sub(hours as u64 * 3_600_000);
            let Some(upto) = braid_storage::retention_upto(&g.log.segments(), cutoff) else {
                continue;
            };
            if g.sm.applied_index().map(|a| a < upto).unwrap_or(true) {
                continue;
            }
            if g.raft.trigger().snapshot().await.is_err() {
                continue;
            }
            let snap = g
                .raft
                .wait(Some(Duration::from_secs(10)))
                .metrics(
                    |m| m.snapshot.map(|s| s.index >= upto).unwrap_or(false),
                    "snapshot for retention",
                )
                .await;
            if snap.is_err() {
                tracing::warn!(group = g.group, upto, "no snapshot for retention in time");
                continue;
            }
            match g.raft.trigger().purge_log(upto).await {
                Ok(()) => {
                    tracing::info!(group = g.group, upto, "retention: purging expired segments")
                }
                Err(e) => tracing::warn!(group = g.group, error = %e, "retention purge failed"),
            }
        }
    }

    fn spawn_rebalancer(self: Arc<Self>) {
        tokio::spawn(async move {
            let mut stop = self.shutdown.subscribe();
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
                // Give a returning node time to catch up before moving work to it.
                if self.uptime() < Duration::from_secs(10) {
                    continue;
                }
                while self.rebalance_once().await {}
            }
        });
    }

    fn spawn_retention(self: Arc<Self>) {
        tokio::spawn(async move {
            let mut stop = self.shutdown.subscribe();
            let every = Duration::from_millis(self.config.retention_check_interval_ms);
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                self.enforce_retention().await;
            }
        });
    }

    pub async fn shutdown(&self) {
        let _ = self.shutdown.send(true);
        let groups: Vec<Arc<ShardGroup>> = self
            .groups
            .write()
            .expect("lock")
            .drain()
            .map(|(_, g)| g)
            .collect();
        for g in groups {
            let _ = g.raft.shutdown().await;
        }
        let _ = self.control.shutdown().await;
        let db = self.db.clone();
        let _ = tokio::task::spawn_blocking(move || db.flush()).await;
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// The node this one believes leads `group`.
    pub fn leader_of(&self, group: GroupId) -> Option<NodeId> {
        if group == CONTROL_GROUP {
            return self.control.metrics().borrow_watched().current_leader;
        }
        // A replica stopped on a storage error keeps the metrics it had when it stopped (often
        // "I lead"): its view of the leader is stale, so this node knows none.
        self.group(group).and_then(|g| {
            let m = g.raft.metrics();
            let m = m.borrow_watched();
            m.running_state
                .is_ok()
                .then_some(m.current_leader)
                .flatten()
        })
    }

    /// Whether this node's replica of `group` stopped on an error (until the node restarts).
    fn replica_failed(&self, group: GroupId) -> bool {
        group != CONTROL_GROUP
            && self
                .group(group)
                .is_some_and(|g| g.raft.metrics().borrow_watched().running_state.is_err())
    }

    /// Candidate nodes for a group when no leader is known: its replicas per the catalog, but
    /// not this node's if it failed.
    fn replicas_of(&self, group: GroupId) -> Vec<NodeId> {
        if group == CONTROL_GROUP {
            return self.config.peers.iter().map(|p| p.id).collect();
        }
        let failed_here = self.replica_failed(group);
        self.control_sm.read(|st| {
            st.streams
                .values()
                .flat_map(|s| s.shards.iter())
                .find(|sh| sh.group == group)
                .map(|sh| {
                    sh.replicas
                        .iter()
                        .copied()
                        .filter(|r| !(failed_here && *r == self.id))
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    /// Runs `op` on the leader of its group (here or on another node), following leader hints
    /// and retrying through elections for up to LEADER_WAIT_MS_MAX.
    pub async fn route(&self, op: ForwardOp) -> Result<ForwardReply, BraidError> {
        let Some(group) = op.group() else {
            return Ok(self.exec_local(op).await);
        };
        let deadline = Instant::now() + Duration::from_millis(LEADER_WAIT_MS_MAX);
        let mut hint: Option<NodeId> = None;
        let mut round = 0usize;
        loop {
            let target = hint.take().or_else(|| self.leader_of(group)).or_else(|| {
                let r = self.replicas_of(group);
                (!r.is_empty()).then(|| r[round % r.len()])
            });
            round += 1;
            let reply = match target {
                // A local write takes the op itself (no copy of the records); if leadership moved
                // meanwhile, the caller retries (nothing was written).
                Some(t)
                    if t == self.id
                        && op.is_write()
                        && self.group(group).is_some_and(|g| g.gate.is_closed()) =>
                {
                    if Instant::now() >= deadline {
                        return Err(BraidError::unavailable(format!(
                            "leadership of group {group} is moving; retry"
                        )));
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                Some(t) if t == self.id && op.is_write() => {
                    return match self.exec_local(op).await {
                        ForwardReply::NotLeader { .. } => Err(BraidError::unavailable(format!(
                            "leadership of group {group} moved; retry"
                        ))),
                        other => Ok(other),
                    };
                }
                Some(t) if t == self.id => self.exec_local(op.clone()).await,
                // A forward to a leader that died or froze would wait out its deadline; once
                // this node's replica knows a new leader, stop waiting (the outcome is then
                // unknown for a write, and the caller retries at the new leader).
                Some(t) => match tokio::select! {
                    r = async {
                        if group != braid_types::CONTROL_GROUP {
                            self.forwarded_ops
                                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        self.transport.forward(
                        t,
                        &op,
                        Duration::from_millis(braid_types::limits::FORWARD_TIMEOUT_MS),
                    ).await
                    } => r,
                    _ = self.leader_moved_from(group, t) => Err(ForwardError::Unknown(
                        BraidError::unavailable(format!(
                            "node {t} lost the leadership of group {group} during the call"
                        )),
                    )),
                } {
                    Ok(r) => r,
                    Err(ForwardError::NotDelivered(e)) => {
                        tracing::debug!(group, target = t, error = %e, "forward not delivered");
                        ForwardReply::NotLeader { leader: None }
                    }
                    Err(ForwardError::Unknown(e)) if op.is_write() => {
                        // The leader may have appended it: resending could store it twice.
                        // The client decides whether to retry (Kinesis' at-least-once).
                        tracing::debug!(group, target = t, error = %e, "forward outcome unknown");
                        return Err(BraidError::internal(format!(
                            "The outcome of the write is unknown (the leader failed during the call): {}",
                            e.message
                        )));
                    }
                    Err(ForwardError::Unknown(e)) => {
                        tracing::debug!(group, target = t, error = %e, "forward failed");
                        ForwardReply::NotLeader { leader: None }
                    }
                },
                None => ForwardReply::NotLeader { leader: None },
            };
            match reply {
                ForwardReply::NotLeader { leader } => {
                    if Instant::now() >= deadline {
                        return Err(BraidError::unavailable(format!(
                            "no leader for group {group}"
                        )));
                    }
                    // A hint naming this node is stale when its replica stopped.
                    let stale = leader == Some(self.id) && self.replica_failed(group);
                    if leader.is_some() && leader != target && !stale {
                        hint = leader;
                    } else {
                        tokio::time::sleep(Duration::from_millis(25)).await;
                    }
                }
                other => return Ok(other),
            }
        }
    }

    /// Resolves once this node's replica of `group` knows a leader other than `from` (never,
    /// if this node has no replica of it).
    async fn leader_moved_from(&self, group: GroupId, from: NodeId) {
        if group == CONTROL_GROUP {
            leader_moved::<ControlTypeConfig>(self.control.metrics(), from).await
        } else {
            match self.group(group) {
                Some(g) => leader_moved::<ShardTypeConfig>(g.raft.metrics(), from).await,
                None => std::future::pending().await,
            }
        }
    }

    /// Executes an op on this node, if this node is the right one for it.
    pub async fn exec_local(&self, op: ForwardOp) -> ForwardReply {
        match op {
            ForwardOp::LocalStatus => ForwardReply::LocalStatus(self.local_status()),
            ForwardOp::Quiesced { from, groups } => {
                self.hold_quiesced(from, &groups);
                ForwardReply::Done
            }
            ForwardOp::ControlApplied => {
                ForwardReply::ControlApplied(self.control_sm.applied_index())
            }
            ForwardOp::ControlWrite(req) => match self.control.client_write(req).await {
                Ok(r) => ForwardReply::ControlWritten {
                    resp: r.data,
                    applied: Some(r.log_id.index),
                },
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                    ForwardReply::NotLeader {
                        leader: f.leader_id,
                    }
                }
                Err(e) => ForwardReply::Error(internal(e)),
            },
            ForwardOp::ShardWrite { group, req } => {
                let Some(g) = self.group(group) else {
                    return ForwardReply::NotLeader { leader: None };
                };
                // Leadership is moving: the caller waits and asks again.
                let Some(_pass) = g.gate.enter() else {
                    return ForwardReply::NotLeader { leader: None };
                };
                match g.proposer.write(req).await {
                    Outcome::Written(r) => ForwardReply::ShardWritten(r),
                    Outcome::NotLeader(leader) => ForwardReply::NotLeader { leader },
                    Outcome::Failed(e) => ForwardReply::Error(internal(e)),
                }
            }
            ForwardOp::ShardRead {
                group,
                from,
                limit,
                bytes_max,
                wait_ms,
            } => {
                let Some(g) = self.leading(group) else {
                    return self.not_leader(group);
                };
                // Subscribe before reading, so that an entry applied in between wakes the wait.
                let mut applied = g.sm.subscribe();
                let deadline = tokio::time::Instant::now()
                    + Duration::from_millis(u64::from(
                        wait_ms.min(braid_types::limits::GET_RECORDS_WAIT_MS_MAX),
                    ));
                loop {
                    let batch = match read_shard(&g, from, limit, bytes_max as usize) {
                        Ok(b) => b,
                        Err(e) => return ForwardReply::Error(e),
                    };
                    let at_tip = batch.records.is_empty() && batch.caught_up && !batch.closed;
                    if !at_tip || tokio::time::Instant::now() >= deadline {
                        return ForwardReply::ShardRead(batch);
                    }
                    // Wait for the next applied entry (or the deadline), then read again, as
                    // long as this replica still leads.
                    tokio::select! {
                        changed = applied.changed() => if changed.is_err() {
                            return ForwardReply::ShardRead(batch);
                        },
                        _ = tokio::time::sleep_until(deadline) => {}
                    }
                    if self.leading(group).is_none() {
                        return ForwardReply::ShardRead(batch);
                    }
                }
            }
            ForwardOp::ShardTip { group } => {
                let Some(g) = self.leading(group) else {
                    return self.not_leader(group);
                };
                ForwardReply::ShardTip {
                    applied: g.sm.applied_index(),
                    first: g.log.first_index(),
                }
            }
            ForwardOp::ShardSeekTime { group, ts_ms } => {
                let Some(g) = self.leading(group) else {
                    return self.not_leader(group);
                };
                match seek_time(&g, ts_ms) {
                    Ok(i) => ForwardReply::ShardSeek(i),
                    Err(e) => ForwardReply::Error(e),
                }
            }
        }
    }

    /// The group if this node leads it *and* may serve reads: a new leader first applies every
    /// entry its log held when it took office (earlier terms' entries become committed only
    /// then), so reads, LATEST and AT_TIMESTAMP never miss acknowledged records.
    fn leading(&self, group: GroupId) -> Option<Arc<ShardGroup>> {
        let g = self.group(group)?;
        let (term, last_log, applied) = {
            let m = g.raft.metrics();
            let m = m.borrow_watched();
            if m.state != ServerState::Leader || m.running_state.is_err() {
                return None;
            }
            (
                m.current_term,
                m.last_log_index,
                m.last_applied.map(|l| l.index),
            )
        };
        let target = {
            let mut office = g.office.lock().expect("lock");
            match *office {
                Some((t, target)) if t == term => target,
                _ => {
                    let target = last_log.unwrap_or(0);
                    *office = Some((term, target));
                    target
                }
            }
        };
        (applied.unwrap_or(0) >= target).then_some(g)
    }

    fn not_leader(&self, group: GroupId) -> ForwardReply {
        ForwardReply::NotLeader {
            leader: self.leader_of(group).filter(|l| *l != self.id),
        }
    }

    /// The control group's leader as this node sees it, and, if this node leads it, how long
    /// ago a quorum last acknowledged it (ms).
    pub fn control_leadership(&self) -> (Option<NodeId>, Option<u64>) {
        let m = self.control.metrics();
        let m = m.borrow_watched();
        (
            m.current_leader,
            m.last_quorum_acked
                .as_ref()
                .map(|at| openraft::Instant::elapsed(&**at).as_millis() as u64),
        )
    }

    pub fn local_status(&self) -> LocalStatus {
        let mut groups: Vec<GroupStatus> = Vec::new();
        fn status<C: braid_raft::BraidTypeConfig>(
            group: GroupId,
            m: &openraft::RaftMetrics<C>,
            committed: Option<u64>,
            quiesced: bool,
        ) -> GroupStatus {
            GroupStatus {
                group,
                // A stopped replica's view of the leader is frozen, not current.
                leader: m
                    .running_state
                    .is_ok()
                    .then_some(m.current_leader)
                    .flatten(),
                term: m.current_term,
                last_log_index: m.last_log_index,
                committed,
                applied: m.last_applied.map(|l| l.index),
                matched: m
                    .replication
                    .as_ref()
                    .map(|r| r.iter().map(|(id, l)| (*id, l.map(|l| l.index))).collect())
                    .unwrap_or_default(),
                quiesced,
                failed: m.running_state.as_ref().err().map(|e| e.to_string()),
            }
        }
        groups.push(status(
            CONTROL_GROUP,
            &self.control.metrics().borrow_watched(),
            self.control_committed.get(),
            false,
        ));
        let hosted: Vec<Arc<ShardGroup>> = self
            .groups
            .read()
            .expect("lock")
            .values()
            .cloned()
            .collect();
        for g in hosted {
            groups.push(status(
                g.group,
                &g.raft.metrics().borrow_watched(),
                g.committed.get(),
                g.is_quiet(),
            ));
        }
        groups.sort_by_key(|g| g.group);
        LocalStatus {
            node_id: self.id,
            zone: self.config.zone.clone(),
            groups,
            forwarded_ops: self
                .forwarded_ops
                .load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// With `follower_reads`, reads a shard from this node's own replica (leader or follower).
    /// Only committed records: `read_shard` stops at the replica's applied index.
    pub fn read_local(
        &self,
        group: GroupId,
        from: Position,
        limit: u32,
        bytes_max: usize,
    ) -> Option<Result<ReadBatch, BraidError>> {
        if !self.config.follower_reads {
            return None;
        }
        let g = self.group(group)?;
        Some(read_shard(&g, from, limit, bytes_max))
    }

    /// Proposes a control-plane change on the control leader and waits until this node has
    /// applied it too, so a follow-up read here sees it.
    pub async fn control_write(&self, req: ControlRequest) -> Result<(), BraidError> {
        match self.route(ForwardOp::ControlWrite(req)).await? {
            ForwardReply::ControlWritten { resp, applied } => {
                self.wait_control_applied(applied).await;
                match resp {
                    ControlResponse::Ok => Ok(()),
                    ControlResponse::Err(e) => Err(e),
                }
            }
            ForwardReply::Error(e) => Err(e),
            other => Err(internal(format!("unexpected reply {other:?}"))),
        }
    }

    async fn wait_control_applied(&self, index: Option<u64>) {
        let Some(index) = index else { return };
        let mut rx = self.control_sm.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                if rx.borrow_and_update().map(|i| i >= index).unwrap_or(false) {
                    return;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
    }

    /// Brings this node's catalog up to the control leader's (used when a name is not found
    /// locally, so a stream created through another node is visible at once).
    pub async fn catch_up_control(&self) {
        if let Ok(ForwardReply::ControlApplied(i)) = self.route(ForwardOp::ControlApplied).await {
            self.wait_control_applied(i).await;
        }
    }

    pub fn control_nodes(&self) -> Vec<NodeRef> {
        self.config
            .peers
            .iter()
            .map(|p| NodeRef {
                id: p.id,
                zone: p.zone.clone(),
            })
            .collect()
    }

    /// Writes one batch to a shard through its leader.
    pub async fn shard_write(
        &self,
        group: GroupId,
        req: ShardRequest,
    ) -> Result<ShardResponse, BraidError> {
        match self.route(ForwardOp::ShardWrite { group, req }).await? {
            ForwardReply::ShardWritten(r) => Ok(r),
            ForwardReply::Error(e) => Err(e),
            other => Err(internal(format!("unexpected reply {other:?}"))),
        }
    }
}

/// Reads committed records of a shard from `from`, at most `limit` records / `bytes_max` bytes.
fn read_shard(
    g: &ShardGroup,
    from: Position,
    limit: u32,
    bytes_max: usize,
) -> Result<ReadBatch, BraidError> {
    let (applied, sealed_at, tip_arrival_ms) = {
        let applied = g.sm.applied_index();
        let (sealed, tip) = g.sm.read(|s| (s.sealed_at, s.last_arrival_ms));
        (applied, sealed, tip)
    };
    let Some(applied) = applied else {
        return Ok(ReadBatch {
            records: vec![],
            next: from,
            tip_arrival_ms,
            caught_up: true,
            closed: false,
        });
    };
    // Never read past what is applied (committed), nor past the seal.
    let end = sealed_at.map(|s| s.min(applied)).unwrap_or(applied);
    let first = g.log.first_index().unwrap_or(applied + 1);
    let mut next = if from.index < first {
        Position {
            index: first,
            sub: 0,
        }
    } else {
        from
    };
    let mut records = Vec::new();
    let mut bytes = 0usize;
    let mut full = false;
    while next.index <= end && !full {
        let chunk = g
            .log
            .read_range(next.index, end + 1, bytes_max.max(1))
            .map_err(internal)?;
        if chunk.is_empty() {
            break;
        }
        for (index, _, payload) in chunk {
            // Records stay in the read buffer (no copy per chunk).
            let entry: braid_raft::shard::ShardEntry =
                codec::decode_shared(&payload.into()).map_err(internal)?;
            assert_eq!(entry.log_id.index, index);
            if let EntryPayload::Normal(ShardRequest::Put {
                arrival_ms,
                records: recs,
            }) = entry.payload
            {
                let start = if index == next.index {
                    next.sub as usize
                } else {
                    0
                };
                for (sub, r) in recs.iter().enumerate().skip(start) {
                    if records.len() as u32 >= limit
                        || (bytes + r.data.len() > bytes_max && !records.is_empty())
                    {
                        full = true;
                        next = Position {
                            index,
                            sub: sub as u16,
                        };
                        break;
                    }
                    bytes += r.data.len() + r.partition_key.len();
                    records.push(ReadRecord {
                        position: Position {
                            index,
                            sub: sub as u16,
                        },
                        arrival_ms,
                        partition_key: r.partition_key.to_owned(),
                        data: r.data.to_vec(),
                    });
                }
            }
            if full {
                break;
            }
            next = Position {
                index: index + 1,
                sub: 0,
            };
        }
    }
    let caught_up = next.index > end;
    let closed = caught_up && sealed_at.map(|s| s <= applied).unwrap_or(false);
    Ok(ReadBatch {
        records,
        next,
        tip_arrival_ms,
        caught_up,
        closed,
    })
}

/// The index of the first entry whose timestamp is at or after `ts_ms` (binary search; entry
/// timestamps are the leader's clock and nearly monotonic).
fn seek_time(g: &ShardGroup, ts_ms: u64) -> Result<u64, BraidError> {
    let applied = g.sm.applied_index().unwrap_or(0);
    let (Some(mut lo), Some(last)) = (g.log.first_index(), g.log.last_index()) else {
        return Ok(applied + 1);
    };
    let mut hi = last.min(applied) + 1;
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let ts = g
            .log
            .read(mid)
            .map_err(internal)?
            .map(|(ts, _)| ts)
            .unwrap_or(u64::MAX);
        if ts < ts_ms {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}

/// Resolves once a replica's metrics name a leader other than `from` (never, if the replica
/// stopped: a stopped replica learns nothing more, and the caller's own timeout decides).
async fn leader_moved<C: braid_raft::BraidTypeConfig>(
    mut rx: openraft::type_config::alias::WatchReceiverOf<C, openraft::RaftMetrics<C>>,
    from: NodeId,
) {
    loop {
        let (stopped, leader) = {
            let m = rx.borrow_watched();
            (m.running_state.is_err(), m.current_leader)
        };
        if stopped {
            return std::future::pending().await;
        }
        if matches!(leader, Some(l) if l != from) {
            return;
        }
        if rx.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}
