//! The replicated catalog and how control-plane entries change it.
//!
//! Invariants (asserted after every change):
//! - the open shards of a stream exactly tile the hash-key space;
//! - every shard has one replica per zone and its preferred leader is one of them;
//! - group ids are unique and never reused (deleted ones are remembered as tombstones).

use std::collections::{BTreeMap, BTreeSet};

use braid_raft::LogId;
use braid_types::error::{BraidError, ErrorCode};
use braid_types::hash::{ranges_tile_keyspace, HashKeyRange};
use braid_types::limits::*;
use braid_types::names::{stream_arn, validate_stream_name};
use braid_types::seqnum::Position;
use braid_types::{GroupId, NodeId};
use serde::{Deserialize, Serialize};

use crate::planner::{place_shards, Load, NodeRef};
use crate::ControlTypeConfig;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamStatus {
    Creating,
    Active,
    Updating,
    Deleting,
}

impl StreamStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamStatus::Creating => "CREATING",
            StreamStatus::Active => "ACTIVE",
            StreamStatus::Updating => "UPDATING",
            StreamStatus::Deleting => "DELETING",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardMeta {
    pub index: u32,
    pub group: GroupId,
    pub range: HashKeyRange,
    pub parent: Option<u32>,
    pub adjacent_parent: Option<u32>,
    /// Set when the shard is sealed: the position after its last record.
    pub ending_position: Option<Position>,
    pub replicas: Vec<NodeId>,
    pub preferred_leader: NodeId,
    pub created_ms: u64,
}

impl ShardMeta {
    pub fn is_open(&self) -> bool {
        self.ending_position.is_none()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamMeta {
    pub name: String,
    pub arn: String,
    pub status: StreamStatus,
    pub created_ms: u64,
    pub retention_hours: u32,
    pub shards: Vec<ShardMeta>,
    pub next_shard_index: u32,
    /// Tags (Kinesis AddTagsToStream / TagResource); at most [`STREAM_TAGS_MAX`].
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Shard-level metrics enabled by EnableEnhancedMonitoring (recorded and reported).
    #[serde(default)]
    pub shard_level_metrics: BTreeSet<String>,
    /// Largest data blob of one record, in KiB (Kinesis `MaxRecordSizeInKiB`).
    #[serde(default = "default_max_record_size_kib")]
    pub max_record_size_kib: u32,
    /// The stream's resource policy (a JSON document), stored and returned as given.
    #[serde(default)]
    pub resource_policy: Option<String>,
}

fn default_max_record_size_kib() -> u32 {
    (RECORD_DATA_BYTES_MAX / 1024) as u32
}

/// Tags one stream may carry.
pub const STREAM_TAGS_MAX: usize = 50;
pub use braid_types::limits::{MAX_RECORD_SIZE_KIB_MAX, MAX_RECORD_SIZE_KIB_MIN};

/// Stream attributes that can be set at creation (Kinesis CreateStream `Tags`,
/// `MaxRecordSizeInKiB`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamOptions {
    pub tags: BTreeMap<String, String>,
    /// None: the default, 1024 KiB.
    pub max_record_size_kib: Option<u32>,
}

/// The account-level MinimumThroughputBillingCommitment setting (Kinesis
/// Describe/UpdateAccountSettings): recorded and reported; it changes nothing else in Braid.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSettings {
    pub commitment_enabled: bool,
    pub commitment_started_ms: Option<u64>,
    pub commitment_ended_ms: Option<u64>,
}

impl StreamMeta {
    pub fn created_secs(&self) -> u64 {
        self.created_ms / 1000
    }
    pub fn shard(&self, index: u32) -> Option<&ShardMeta> {
        self.shards.iter().find(|s| s.index == index)
    }
    /// The open shard whose range holds `hash_key`.
    pub fn route(&self, hash_key: u128) -> Option<&ShardMeta> {
        self.shards
            .iter()
            .find(|s| s.is_open() && s.range.contains(hash_key))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControlRequest {
    /// Sets the cluster's identity once; later proposals are ignored.
    InitCluster {
        cluster_id: String,
        iterator_secret: Vec<u8>,
    },
    CreateStream {
        name: String,
        shard_count: u32,
        now_ms: u64,
        region: String,
        account: String,
        /// The nodes that can host replicas, as the proposer saw the control membership.
        nodes: Vec<NodeRef>,
        #[serde(default)]
        options: StreamOptions,
    },
    /// Moves a stream between statuses; ignored if `created_ms` names an older incarnation.
    SetStreamStatus {
        name: String,
        created_ms: u64,
        status: StreamStatus,
    },
    DeleteStream {
        name: String,
    },
    SetRetention {
        name: String,
        hours: u32,
    },
    /// Adds or overwrites the tags in `set`, then removes the keys in `remove` (unknown keys
    /// are ignored). Fails, changing nothing, if the stream would carry more than
    /// [`STREAM_TAGS_MAX`] tags.
    ChangeTags {
        name: String,
        set: BTreeMap<String, String>,
        remove: Vec<String>,
    },
    /// Enables (or disables) shard-level metrics by name.
    ChangeShardLevelMetrics {
        name: String,
        enable: bool,
        metrics: Vec<String>,
    },
    SetMaxRecordSize {
        name: String,
        kib: u32,
    },
    /// Sets (Some) or deletes (None) a stream's resource policy.
    SetResourcePolicy {
        name: String,
        policy: Option<String>,
    },
    SetAccountCommitment {
        enabled: bool,
        now_ms: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControlResponse {
    Ok,
    Err(BraidError),
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlState {
    pub cluster_id: Option<String>,
    pub iterator_secret: Vec<u8>,
    pub next_group: GroupId,
    pub streams: BTreeMap<String, StreamMeta>,
    /// Groups of deleted streams; nodes delete their data.
    pub deleted_groups: BTreeSet<GroupId>,
    /// Bumped by every change, so watchers can tell.
    pub version: u64,
    #[serde(default)]
    pub account: AccountSettings,
}

impl ControlState {
    pub fn stream(&self, name: &str) -> Result<&StreamMeta, BraidError> {
        self.streams
            .get(name)
            .ok_or_else(|| BraidError::stream_not_found(name))
    }

    pub fn total_shards(&self) -> usize {
        self.streams.values().map(|s| s.shards.len()).sum()
    }

    fn load(&self) -> Load {
        let mut load = Load::default();
        for s in self.streams.values() {
            for sh in s.shards.iter().filter(|s| s.is_open()) {
                for r in &sh.replicas {
                    *load.replicas.entry(*r).or_default() += 1;
                }
                *load.leaders.entry(sh.preferred_leader).or_default() += 1;
            }
        }
        load
    }

    fn check_invariants(&self) {
        let mut groups = BTreeSet::new();
        for s in self.streams.values() {
            let open: Vec<HashKeyRange> = s
                .shards
                .iter()
                .filter(|x| x.is_open())
                .map(|x| x.range)
                .collect();
            assert!(
                ranges_tile_keyspace(&open),
                "open shards of {} do not tile the key space",
                s.name
            );
            assert!(
                s.tags.len() <= STREAM_TAGS_MAX,
                "{} has too many tags",
                s.name
            );
            assert!(
                (MAX_RECORD_SIZE_KIB_MIN..=MAX_RECORD_SIZE_KIB_MAX)
                    .contains(&s.max_record_size_kib),
                "{} has max record size {} KiB",
                s.name,
                s.max_record_size_kib
            );
            for sh in &s.shards {
                assert!(sh.replicas.contains(&sh.preferred_leader));
                assert!(sh.group < self.next_group && sh.group != braid_types::CONTROL_GROUP);
                assert!(groups.insert(sh.group), "group {} used twice", sh.group);
                assert!(!self.deleted_groups.contains(&sh.group));
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn create_stream(
        &mut self,
        name: &str,
        shard_count: u32,
        now_ms: u64,
        region: &str,
        account: &str,
        nodes: &[NodeRef],
        options: &StreamOptions,
    ) -> Result<(), BraidError> {
        validate_stream_name(name)?;
        if options.tags.len() > STREAM_TAGS_MAX {
            return Err(BraidError::invalid(format!(
                "Failed to create stream {name} under account {account} because a given stream cannot have more than {STREAM_TAGS_MAX} tags associated with it."
            )));
        }
        let max_record_size_kib = options
            .max_record_size_kib
            .unwrap_or_else(default_max_record_size_kib);
        check_max_record_size(max_record_size_kib)?;
        if self.streams.contains_key(name) {
            return Err(BraidError::in_use(format!(
                "Stream {name} under account {account} already exists."
            )));
        }
        if shard_count == 0 {
            return Err(BraidError::invalid("ShardCount must be at least 1."));
        }
        if shard_count > STREAM_SHARDS_MAX
            || self.total_shards() + shard_count as usize > CLUSTER_SHARDS_MAX as usize
        {
            return Err(BraidError::limit(format!(
                "This request would exceed the shard limit for the account 000000000000 in {region}. Current shard count for the account: {}. Limit: {CLUSTER_SHARDS_MAX}. Number of additional shards that would have resulted from this request: {shard_count}.",
                self.total_shards()
            )));
        }
        if self.streams.len() >= STREAMS_MAX {
            return Err(BraidError::limit(format!(
                "Streams limit of {STREAMS_MAX} reached."
            )));
        }
        let plan = place_shards(
            nodes,
            &self.load(),
            shard_count as usize,
            REPLICAS_PER_SHARD,
        )
        .ok_or_else(|| {
            BraidError::new(
                ErrorCode::LimitExceeded,
                format!(
                    "Need nodes in {REPLICAS_PER_SHARD} zones to place shards; have {}.",
                    nodes.len()
                ),
            )
        })?;
        let ranges = HashKeyRange::divide_evenly(shard_count);
        let shards = ranges
            .into_iter()
            .zip(plan)
            .enumerate()
            .map(|(i, (range, p))| {
                let group = self.next_group;
                self.next_group += 1;
                ShardMeta {
                    index: i as u32,
                    group,
                    range,
                    parent: None,
                    adjacent_parent: None,
                    ending_position: None,
                    replicas: p.replicas,
                    preferred_leader: p.preferred_leader,
                    created_ms: now_ms,
                }
            })
            .collect();
        self.streams.insert(
            name.to_string(),
            StreamMeta {
                name: name.to_string(),
                arn: stream_arn(region, account, name),
                status: StreamStatus::Creating,
                created_ms: now_ms,
                retention_hours: RETENTION_HOURS_DEFAULT,
                shards,
                next_shard_index: shard_count,
                tags: options.tags.clone(),
                shard_level_metrics: BTreeSet::new(),
                max_record_size_kib,
                resource_policy: None,
            },
        );
        Ok(())
    }

    /// Applies one request. Deterministic: depends only on the state and the request.
    pub fn apply_request(&mut self, req: &ControlRequest) -> ControlResponse {
        if self.next_group == 0 {
            self.next_group = 1; // group 0 is the control plane itself
        }
        let res = match req {
            ControlRequest::InitCluster {
                cluster_id,
                iterator_secret,
            } => {
                if self.cluster_id.is_none() {
                    self.cluster_id = Some(cluster_id.clone());
                    self.iterator_secret = iterator_secret.clone();
                }
                Ok(())
            }
            ControlRequest::CreateStream {
                name,
                shard_count,
                now_ms,
                region,
                account,
                nodes,
                options,
            } => self.create_stream(name, *shard_count, *now_ms, region, account, nodes, options),
            ControlRequest::SetStreamStatus {
                name,
                created_ms,
                status,
            } => match self.streams.get_mut(name) {
                Some(s) if s.created_ms == *created_ms => {
                    s.status = *status;
                    Ok(())
                }
                _ => Err(BraidError::stream_not_found(name)),
            },
            ControlRequest::DeleteStream { name } => match self.streams.remove(name) {
                Some(s) => {
                    self.deleted_groups.extend(s.shards.iter().map(|x| x.group));
                    Ok(())
                }
                None => Err(BraidError::stream_not_found(name)),
            },
            ControlRequest::SetRetention { name, hours } => match self.streams.get_mut(name) {
                Some(s) => {
                    s.retention_hours = *hours;
                    Ok(())
                }
                None => Err(BraidError::stream_not_found(name)),
            },
            ControlRequest::ChangeTags { name, set, remove } => match self.streams.get_mut(name) {
                Some(s) => {
                    let mut tags = s.tags.clone();
                    tags.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
                    for k in remove {
                        tags.remove(k);
                    }
                    if tags.len() > STREAM_TAGS_MAX {
                        Err(BraidError::invalid(format!(
                            "Failed to add tags to stream {name} under account {} because a given stream cannot have more than {STREAM_TAGS_MAX} tags associated with it.",
                            arn_account(&s.arn)
                        )))
                    } else {
                        s.tags = tags;
                        Ok(())
                    }
                }
                None => Err(BraidError::stream_not_found(name)),
            },
            ControlRequest::ChangeShardLevelMetrics {
                name,
                enable,
                metrics,
            } => match self.streams.get_mut(name) {
                Some(s) => {
                    for m in metrics {
                        if *enable {
                            s.shard_level_metrics.insert(m.clone());
                        } else {
                            s.shard_level_metrics.remove(m);
                        }
                    }
                    Ok(())
                }
                None => Err(BraidError::stream_not_found(name)),
            },
            ControlRequest::SetMaxRecordSize { name, kib } => match self.streams.get_mut(name) {
                Some(s) => check_max_record_size(*kib).map(|()| s.max_record_size_kib = *kib),
                None => Err(BraidError::stream_not_found(name)),
            },
            ControlRequest::SetResourcePolicy { name, policy } => {
                match self.streams.get_mut(name) {
                    Some(s) => {
                        s.resource_policy = policy.clone();
                        Ok(())
                    }
                    None => Err(BraidError::stream_not_found(name)),
                }
            }
            ControlRequest::SetAccountCommitment { enabled, now_ms } => {
                let a = &mut self.account;
                if *enabled && !a.commitment_enabled {
                    a.commitment_started_ms = Some(*now_ms);
                    a.commitment_ended_ms = None;
                } else if !*enabled && a.commitment_enabled {
                    a.commitment_ended_ms = Some(*now_ms);
                }
                a.commitment_enabled = *enabled;
                Ok(())
            }
        };
        self.version += 1;
        self.check_invariants();
        match res {
            Ok(()) => ControlResponse::Ok,
            Err(e) => ControlResponse::Err(e),
        }
    }
}

fn check_max_record_size(kib: u32) -> Result<(), BraidError> {
    if (MAX_RECORD_SIZE_KIB_MIN..=MAX_RECORD_SIZE_KIB_MAX).contains(&kib) {
        Ok(())
    } else {
        Err(BraidError::invalid(format!(
            "MaxRecordSizeInKiB {kib} is not supported: Braid accepts {MAX_RECORD_SIZE_KIB_MIN} to {MAX_RECORD_SIZE_KIB_MAX} KiB."
        )))
    }
}

/// The account id inside a stream ARN (`arn:aws:kinesis:<region>:<account>:stream/<name>`).
fn arn_account(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or("")
}

impl braid_raft::state_machine::AppState<ControlTypeConfig> for ControlState {
    fn apply(&mut self, _log_id: LogId, req: &ControlRequest) -> ControlResponse {
        self.apply_request(req)
    }
    fn blank_response(&self) -> ControlResponse {
        ControlResponse::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes() -> Vec<NodeRef> {
        (1..=3)
            .map(|i| NodeRef {
                id: i,
                zone: format!("az-{i}"),
            })
            .collect()
    }

    fn create(name: &str, n: u32) -> ControlRequest {
        ControlRequest::CreateStream {
            name: name.into(),
            shard_count: n,
            now_ms: 1_700_000_000_000,
            region: "us-east-1".into(),
            account: "000000000000".into(),
            nodes: nodes(),
            options: StreamOptions::default(),
        }
    }

    #[test]
    fn create_describe_delete() {
        let mut st = ControlState::default();
        assert_eq!(st.apply_request(&create("orders", 4)), ControlResponse::Ok);
        let s = st.stream("orders").unwrap();
        assert_eq!(s.shards.len(), 4);
        assert_eq!(s.status, StreamStatus::Creating);
        assert_eq!(
            s.arn,
            "arn:aws:kinesis:us-east-1:000000000000:stream/orders"
        );
        let groups: Vec<u64> = s.shards.iter().map(|x| x.group).collect();
        assert_eq!(groups, vec![1, 2, 3, 4]);
        match st.apply_request(&create("orders", 1)) {
            ControlResponse::Err(e) => assert_eq!(e.code, ErrorCode::ResourceInUse),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            st.apply_request(&ControlRequest::DeleteStream {
                name: "orders".into()
            }),
            ControlResponse::Ok
        );
        assert!(st.stream("orders").is_err());
        assert_eq!(st.deleted_groups.len(), 4);
        // Re-creating gets fresh group ids.
        st.apply_request(&create("orders", 1));
        assert_eq!(st.stream("orders").unwrap().shards[0].group, 5);
    }

    #[test]
    fn limits() {
        let mut st = ControlState::default();
        for (n, code) in [
            (0, ErrorCode::InvalidArgument),
            (STREAM_SHARDS_MAX + 1, ErrorCode::LimitExceeded),
        ] {
            match st.apply_request(&create("s", n)) {
                ControlResponse::Err(e) => assert_eq!(e.code, code),
                other => panic!("{other:?}"),
            }
        }
        match st.apply_request(&create("bad name", 1)) {
            ControlResponse::Err(e) => assert_eq!(e.code, ErrorCode::Validation),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn routing_covers_everything() {
        let mut st = ControlState::default();
        st.apply_request(&create("s", 7));
        let s = st.stream("s").unwrap();
        for key in [0u128, 1, u128::MAX / 7, u128::MAX / 2, u128::MAX] {
            assert!(s.route(key).is_some());
        }
    }

    #[test]
    fn tags_metrics_record_size_policy_and_account() {
        let mut st = ControlState::default();
        let mut req = create("t", 1);
        if let ControlRequest::CreateStream { options, .. } = &mut req {
            options.tags.insert("team".into(), "core".into());
            options.max_record_size_kib = Some(2048);
        }
        assert_eq!(st.apply_request(&req), ControlResponse::Ok);
        let s = st.stream("t").unwrap();
        assert_eq!(s.tags.get("team").map(String::as_str), Some("core"));
        assert_eq!(s.max_record_size_kib, 2048);
        assert_eq!(
            st.stream("orders").err().map(|e| e.code),
            Some(ErrorCode::ResourceNotFound)
        );

        let set: BTreeMap<String, String> = (0..STREAM_TAGS_MAX - 1)
            .map(|i| (format!("k{i}"), "v".to_string()))
            .collect();
        let change =
            |set: &BTreeMap<String, String>, remove: Vec<String>| ControlRequest::ChangeTags {
                name: "t".into(),
                set: set.clone(),
                remove,
            };
        assert_eq!(st.apply_request(&change(&set, vec![])), ControlResponse::Ok);
        assert_eq!(st.stream("t").unwrap().tags.len(), STREAM_TAGS_MAX);
        let one_more: BTreeMap<String, String> = [("x".to_string(), String::new())].into();
        match st.apply_request(&change(&one_more, vec![])) {
            ControlResponse::Err(e) => assert_eq!(e.code, ErrorCode::InvalidArgument),
            other => panic!("{other:?}"),
        }
        assert_eq!(st.stream("t").unwrap().tags.len(), STREAM_TAGS_MAX);
        // Replacing one tag by another in one request stays within the limit.
        assert_eq!(
            st.apply_request(&change(&one_more, vec!["team".into(), "nope".into()])),
            ControlResponse::Ok
        );
        assert!(!st.stream("t").unwrap().tags.contains_key("team"));

        for (enable, metrics, want) in [
            (true, vec!["IncomingBytes", "OutgoingBytes"], 2),
            (false, vec!["IncomingBytes"], 1),
        ] {
            let req = ControlRequest::ChangeShardLevelMetrics {
                name: "t".into(),
                enable,
                metrics: metrics.into_iter().map(String::from).collect(),
            };
            assert_eq!(st.apply_request(&req), ControlResponse::Ok);
            assert_eq!(st.stream("t").unwrap().shard_level_metrics.len(), want);
        }

        for (kib, ok) in [
            (1024, true),
            (MAX_RECORD_SIZE_KIB_MAX, true),
            (1023, false),
            (10241, false),
        ] {
            let r = st.apply_request(&ControlRequest::SetMaxRecordSize {
                name: "t".into(),
                kib,
            });
            assert_eq!(r == ControlResponse::Ok, ok, "{kib}");
        }
        assert_eq!(
            st.stream("t").unwrap().max_record_size_kib,
            MAX_RECORD_SIZE_KIB_MAX
        );

        let policy = Some("{\"Version\":\"2012-10-17\"}".to_string());
        st.apply_request(&ControlRequest::SetResourcePolicy {
            name: "t".into(),
            policy: policy.clone(),
        });
        assert_eq!(st.stream("t").unwrap().resource_policy, policy);
        st.apply_request(&ControlRequest::SetResourcePolicy {
            name: "t".into(),
            policy: None,
        });
        assert_eq!(st.stream("t").unwrap().resource_policy, None);

        st.apply_request(&ControlRequest::SetAccountCommitment {
            enabled: true,
            now_ms: 5,
        });
        assert!(st.account.commitment_enabled);
        assert_eq!(st.account.commitment_started_ms, Some(5));
        st.apply_request(&ControlRequest::SetAccountCommitment {
            enabled: false,
            now_ms: 9,
        });
        assert!(!st.account.commitment_enabled);
        assert_eq!(st.account.commitment_ended_ms, Some(9));
    }
}
