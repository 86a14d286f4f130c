//! Pure planning: where a new shard's replicas go, and which replica should lead it.
//! No IO, no clocks: the same inputs always give the same plan (it runs inside `apply`).

use std::collections::BTreeMap;

use braid_types::NodeId;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeRef {
    pub id: NodeId,
    pub zone: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// One replica per zone, ordered by zone.
    pub replicas: Vec<NodeId>,
    pub preferred_leader: NodeId,
}

/// Current load per node: replicas hosted and shards it is the preferred leader of.
#[derive(Clone, Debug, Default)]
pub struct Load {
    pub replicas: BTreeMap<NodeId, u32>,
    pub leaders: BTreeMap<NodeId, u32>,
}

/// Places `n` new shards: for each, the least-loaded node of every zone (ties by id), and as
/// preferred leader the replica that leads the fewest shards (ties by zone order rotated by
/// shard), so leaders spread evenly over nodes and zones. Returns `None` when fewer than
/// `replicas_per_shard` zones have nodes.
pub fn place_shards(
    nodes: &[NodeRef],
    load: &Load,
    n: usize,
    replicas_per_shard: usize,
) -> Option<Vec<Placement>> {
    let mut zones: BTreeMap<&str, Vec<NodeId>> = BTreeMap::new();
    for node in nodes {
        zones.entry(node.zone.as_str()).or_default().push(node.id);
    }
    if zones.len() < replicas_per_shard {
        return None;
    }
    let mut load = load.clone();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        // The `replicas_per_shard` zones with the fewest replicas, ties by name.
        let mut zone_order: Vec<(&str, u32)> = zones
            .iter()
            .map(|(z, ids)| {
                (
                    *z,
                    ids.iter()
                        .map(|id| load.replicas.get(id).copied().unwrap_or(0))
                        .sum(),
                )
            })
            .collect();
        zone_order.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(b.0)));
        let mut chosen_zones: Vec<&str> = zone_order
            .iter()
            .take(replicas_per_shard)
            .map(|z| z.0)
            .collect();
        chosen_zones.sort();
        let replicas: Vec<NodeId> = chosen_zones
            .iter()
            .map(|z| {
                let ids = &zones[z];
                *ids.iter()
                    .min_by_key(|id| (load.replicas.get(id).copied().unwrap_or(0), **id))
                    .expect("zone has nodes")
            })
            .collect();
        let rotate = i % replicas.len();
        let preferred_leader = *replicas
            .iter()
            .enumerate()
            .min_by_key(|(j, id)| {
                (
                    load.leaders.get(id).copied().unwrap_or(0),
                    (j + replicas.len() - rotate) % replicas.len(),
                )
            })
            .map(|(_, id)| id)
            .expect("replicas");
        for id in &replicas {
            *load.replicas.entry(*id).or_default() += 1;
        }
        *load.leaders.entry(preferred_leader).or_default() += 1;
        out.push(Placement {
            replicas,
            preferred_leader,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> Vec<NodeRef> {
        vec![
            NodeRef {
                id: 1,
                zone: "az-a".into(),
            },
            NodeRef {
                id: 2,
                zone: "az-b".into(),
            },
            NodeRef {
                id: 3,
                zone: "az-c".into(),
            },
        ]
    }

    #[test]
    fn one_replica_per_zone_and_leaders_spread() {
        let plan = place_shards(&three(), &Load::default(), 6, 3).unwrap();
        let mut leaders = BTreeMap::new();
        for p in &plan {
            assert_eq!(p.replicas, vec![1, 2, 3]);
            assert!(p.replicas.contains(&p.preferred_leader));
            *leaders.entry(p.preferred_leader).or_insert(0) += 1;
        }
        assert_eq!(leaders.values().copied().collect::<Vec<_>>(), vec![2, 2, 2]);
    }

    #[test]
    fn existing_load_is_balanced() {
        let mut load = Load::default();
        load.leaders.insert(1, 4);
        let plan = place_shards(&three(), &load, 4, 3).unwrap();
        let ones = plan.iter().filter(|p| p.preferred_leader == 1).count();
        assert_eq!(ones, 0);
    }

    #[test]
    fn too_few_zones() {
        let nodes = vec![
            NodeRef {
                id: 1,
                zone: "a".into(),
            },
            NodeRef {
                id: 2,
                zone: "a".into(),
            },
        ];
        assert!(place_shards(&nodes, &Load::default(), 1, 3).is_none());
    }

    #[test]
    fn six_nodes_spread_replicas() {
        let mut nodes = three();
        nodes.extend([
            NodeRef {
                id: 4,
                zone: "az-a".into(),
            },
            NodeRef {
                id: 5,
                zone: "az-b".into(),
            },
            NodeRef {
                id: 6,
                zone: "az-c".into(),
            },
        ]);
        let plan = place_shards(&nodes, &Load::default(), 4, 3).unwrap();
        let mut per_node = BTreeMap::new();
        for p in &plan {
            for r in &p.replicas {
                *per_node.entry(*r).or_insert(0) += 1;
            }
        }
        assert!(per_node.values().all(|c| *c == 2), "{per_node:?}");
    }
}
