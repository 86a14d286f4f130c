//! Leader routing: which endpoint leads each open shard of a stream.
//!
//! Any node accepts any put or read and forwards it to the shard's leader, so a route is only a
//! hint: a stale or missing route costs one forward hop, never a wrong answer. Routes are learned in
//! the background (DescribeStream for the shards and their leaders, ClusterStatus for the
//! nodes' addresses) and refreshed every [`limits::CLIENT_ROUTES_REFRESH_MS`]; a call never
//! waits for them.
//!
//! A leader is routed to only when its node's address is one of the client's own endpoints (a
//! client behind a load balancer, or given other names for the nodes, keeps the plain failover
//! order).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use braid_proto::v1;
use braid_types::{hash, limits};

use crate::client::normalize_endpoint;

/// One open shard: its hash-key range and the endpoint index of its leader, if known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ShardRoute {
    pub start: u128,
    pub end: u128,
    pub shard_id: String,
    pub leader: Option<usize>,
}

/// The open shards of one stream, sorted by the start of their hash-key range.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct StreamRoutes {
    pub shards: Vec<ShardRoute>,
}

impl StreamRoutes {
    /// The routes of `description`'s open shards, given which endpoint each node answers on.
    pub fn from_description(
        description: &v1::StreamDescription,
        node_endpoint: &HashMap<u64, usize>,
    ) -> StreamRoutes {
        let mut shards: Vec<ShardRoute> = description
            .shards
            .iter()
            .filter(|s| {
                s.sequence_number_range
                    .as_ref()
                    .is_some_and(|r| r.ending_sequence_number.is_empty())
            })
            .filter_map(|s| {
                let r = s.hash_key_range.as_ref()?;
                let start = r.starting_hash_key.parse::<u128>().ok()?;
                let end = r.ending_hash_key.parse::<u128>().ok()?;
                let leader = s
                    .replicas
                    .iter()
                    .find(|r| r.leader)
                    .and_then(|r| node_endpoint.get(&r.node_id).copied());
                Some(ShardRoute {
                    start,
                    end,
                    shard_id: s.shard_id.clone(),
                    leader,
                })
            })
            .collect();
        shards.sort_by_key(|s| s.start);
        StreamRoutes { shards }
    }

    /// The open shard whose range holds `key`.
    pub fn shard_of(&self, key: u128) -> Option<&ShardRoute> {
        let i = self.shards.partition_point(|s| s.start <= key);
        let s = self.shards.get(i.checked_sub(1)?)?;
        (key <= s.end).then_some(s)
    }

    /// The endpoint leading the shard of a record, if known. `None` for a record the server
    /// will refuse (a bad key): such a record is never routed.
    pub fn endpoint_of(&self, partition_key: &str, explicit_hash_key: &str) -> Option<usize> {
        let chars = partition_key.chars().count();
        if !(limits::PARTITION_KEY_CHARS_MIN..=limits::PARTITION_KEY_CHARS_MAX).contains(&chars) {
            return None;
        }
        let key = if explicit_hash_key.is_empty() {
            hash::partition_key_hash(partition_key)
        } else {
            hash::parse_explicit_hash_key(explicit_hash_key).ok()?
        };
        self.shard_of(key)?.leader
    }

    /// The endpoint leading `shard_id`, if known.
    pub fn endpoint_of_shard(&self, shard_id: &str) -> Option<usize> {
        self.shards
            .iter()
            .find(|s| s.shard_id == shard_id)
            .and_then(|s| s.leader)
    }
}

/// Maps each node id to the index of the client endpoint it answers on, from ClusterStatus.
pub(crate) fn node_endpoints(
    status: &v1::ClusterStatusResponse,
    endpoints: &[String],
) -> HashMap<u64, usize> {
    status
        .nodes
        .iter()
        .filter_map(|n| {
            let addr = normalize_endpoint(&n.address).ok()?;
            let idx = endpoints.iter().position(|e| *e == addr)?;
            Some((n.node_id, idx))
        })
        .collect()
}

struct Entry {
    routes: Option<std::sync::Arc<StreamRoutes>>,
    /// When the last refresh began; none is started again before
    /// [`limits::CLIENT_ROUTES_REFRESH_MS`] has passed.
    refreshed: Instant,
    /// A refresh is running (at most one per stream).
    refreshing: bool,
}

/// The routes of every stream a client wrote to, with the time of their last refresh.
#[derive(Default)]
pub(crate) struct RouteCache {
    streams: Mutex<HashMap<String, Entry>>,
}

/// Streams whose routes are kept; past it, the cache starts over.
const ROUTED_STREAMS_MAX: usize = 1024;

impl RouteCache {
    /// The stream's routes as known now, and whether the caller should refresh them (at most one
    /// caller is told so per refresh interval).
    pub fn get(&self, stream: &str) -> (Option<std::sync::Arc<StreamRoutes>>, bool) {
        let mut streams = self.streams.lock().expect("route cache lock");
        let now = Instant::now();
        let interval = Duration::from_millis(limits::CLIENT_ROUTES_REFRESH_MS);
        match streams.get_mut(stream) {
            Some(e) => {
                let due = !e.refreshing && now.duration_since(e.refreshed) >= interval;
                if due {
                    e.refreshed = now;
                    e.refreshing = true;
                }
                (e.routes.clone(), due)
            }
            None => {
                if streams.len() >= ROUTED_STREAMS_MAX {
                    streams.clear();
                }
                streams.insert(
                    stream.to_string(),
                    Entry {
                        routes: None,
                        refreshed: now,
                        refreshing: true,
                    },
                );
                (None, true)
            }
        }
    }

    /// Stores a refresh's result; `None` (the stream is gone, or the refresh failed) forgets the
    /// routes.
    pub fn set(&self, stream: &str, routes: Option<StreamRoutes>) {
        let mut streams = self.streams.lock().expect("route cache lock");
        if let Some(e) = streams.get_mut(stream) {
            e.routes = routes.map(std::sync::Arc::new);
            e.refreshing = false;
        }
    }

    /// Drops the stream's routes after a routed call failed (its leader may be down) and makes
    /// the next call start a refresh, unless one is running.
    pub fn forget(&self, stream: &str) {
        let mut streams = self.streams.lock().expect("route cache lock");
        if let Some(e) = streams.get_mut(stream) {
            e.routes = None;
            if let Some(t) =
                Instant::now().checked_sub(Duration::from_millis(limits::CLIENT_ROUTES_REFRESH_MS))
            {
                e.refreshed = t;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(id: &str, start: u128, end: u128, leader: Option<u64>, closed: bool) -> v1::Shard {
        v1::Shard {
            shard_id: id.into(),
            hash_key_range: Some(v1::HashKeyRange {
                starting_hash_key: start.to_string(),
                ending_hash_key: end.to_string(),
            }),
            sequence_number_range: Some(v1::SequenceNumberRange {
                starting_sequence_number: "1".into(),
                ending_sequence_number: if closed { "2".into() } else { String::new() },
            }),
            replicas: (1..=3)
                .map(|n| v1::Replica {
                    node_id: n,
                    leader: Some(n) == leader,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn routes_follow_ranges_leaders_and_known_endpoints() {
        let half = u128::MAX / 2;
        let d = v1::StreamDescription {
            shards: vec![
                shard("shardId-000000000002", half + 1, u128::MAX, Some(3), false),
                shard("shardId-000000000000", 0, u128::MAX, Some(1), true),
                shard("shardId-000000000001", 0, half, Some(2), false),
            ],
            ..Default::default()
        };
        // Node 3 answers on no endpoint of this client.
        let nodes = HashMap::from([(1, 0), (2, 1)]);
        let r = StreamRoutes::from_description(&d, &nodes);
        assert_eq!(r.shards.len(), 2, "the closed parent is not routed to");
        assert_eq!(r.shard_of(0).unwrap().shard_id, "shardId-000000000001");
        assert_eq!(r.shard_of(half).unwrap().shard_id, "shardId-000000000001");
        assert_eq!(
            r.shard_of(half + 1).unwrap().shard_id,
            "shardId-000000000002"
        );
        assert_eq!(r.shard_of(u128::MAX).unwrap().leader, None);
        assert_eq!(r.endpoint_of("k", "0"), Some(1));
        assert_eq!(r.endpoint_of("k", &u128::MAX.to_string()), None);
        let key = "customer-17";
        let expected = if hash::partition_key_hash(key) <= half {
            Some(1)
        } else {
            None
        };
        assert_eq!(r.endpoint_of(key, ""), expected);
        // Records the server refuses are never routed.
        assert_eq!(r.endpoint_of("", "0"), None);
        assert_eq!(r.endpoint_of(&"x".repeat(257), "0"), None);
        assert_eq!(r.endpoint_of("k", "-1"), None);
        assert_eq!(r.endpoint_of_shard("shardId-000000000001"), Some(1));
        assert_eq!(r.endpoint_of_shard("shardId-000000000000"), None);
    }

    #[test]
    fn a_gap_in_the_ranges_routes_nowhere() {
        let d = v1::StreamDescription {
            shards: vec![shard("shardId-000000000000", 10, 20, Some(1), false)],
            ..Default::default()
        };
        let r = StreamRoutes::from_description(&d, &HashMap::from([(1, 0)]));
        assert!(r.shard_of(9).is_none());
        assert!(r.shard_of(21).is_none());
        assert_eq!(r.shard_of(10).unwrap().leader, Some(0));
    }

    #[test]
    fn node_addresses_match_normalised_endpoints() {
        let status = v1::ClusterStatusResponse {
            nodes: vec![
                v1::NodeStatus {
                    node_id: 1,
                    address: "127.0.0.1:7401".into(),
                    ..Default::default()
                },
                v1::NodeStatus {
                    node_id: 2,
                    address: "http://127.0.0.1:7402/".into(),
                    ..Default::default()
                },
                v1::NodeStatus {
                    node_id: 3,
                    address: "braid-c:7401".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let endpoints = vec![
            "http://127.0.0.1:7402".to_string(),
            "http://127.0.0.1:7401".to_string(),
        ];
        assert_eq!(
            node_endpoints(&status, &endpoints),
            HashMap::from([(1, 1), (2, 0)])
        );
    }

    #[test]
    fn one_refresh_at_a_time_and_per_interval() {
        let c = RouteCache::default();
        assert_eq!(c.get("s"), (None, true));
        assert_eq!(c.get("s"), (None, false));
        c.set("s", Some(StreamRoutes::default()));
        assert_eq!(
            c.get("s"),
            (Some(std::sync::Arc::new(StreamRoutes::default())), false),
            "not due again within the interval"
        );
        // A failed routed call forgets the routes and makes a refresh due at once.
        c.forget("s");
        assert_eq!(c.get("s"), (None, true));
        // While that refresh runs, no other starts.
        assert_eq!(c.get("s"), (None, false));
        c.set("s", None);
        assert_eq!(c.get("s").0, None);
    }
}
