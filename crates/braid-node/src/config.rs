//! A node's configuration: identity, zone, disk, addresses and peers.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerConfig {
    pub id: u64,
    pub zone: String,
    /// host:port of the peer's gRPC listener.
    pub addr: String,
}

/// A credential the Kinesis HTTP API accepts: requests must carry an AWS SigV4 signature made
/// with this secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

impl AccessKey {
    /// Parses `AKID:SECRET` pairs, comma-separated (`BRAID_KINESIS_ACCESS_KEYS`).
    pub fn parse_list(s: &str) -> anyhow::Result<Vec<AccessKey>> {
        s.split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| AccessKey::parse(p.trim()))
            .collect()
    }

    /// Parses one `AKID:SECRET` pair (the secret may itself contain ':').
    pub fn parse(s: &str) -> anyhow::Result<AccessKey> {
        match s.split_once(':') {
            Some((id, secret)) if !id.is_empty() && !secret.is_empty() => Ok(AccessKey {
                access_key_id: id.to_string(),
                secret_access_key: secret.to_string(),
            }),
            _ => anyhow::bail!("access key is not ACCESS_KEY_ID:SECRET_ACCESS_KEY"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub node_id: u64,
    pub zone: String,
    pub data_dir: PathBuf,
    /// Address the gRPC server (public API and node-to-node RPC) binds.
    pub listen: String,
    /// Address other nodes and clients use to reach this node (defaults to `listen`).
    #[serde(default)]
    pub advertise: Option<String>,
    /// host:port the Kinesis Data Streams HTTP API (AWS JSON 1.1 and CBOR, HTTP/1.1 and h2c)
    /// binds; None serves no Kinesis API.
    #[serde(default)]
    pub kinesis_listen: Option<String>,
    /// Credentials the Kinesis HTTP API verifies AWS SigV4 signatures against. Empty: any
    /// well-formed signature is accepted, whatever its key.
    #[serde(default)]
    pub kinesis_access_keys: Vec<AccessKey>,
    /// PEM file with the certificate chain (the server's certificate first) the Kinesis HTTP
    /// API presents: set with `kinesis_tls_key`, `kinesis_listen` serves HTTPS only (ALPN h2
    /// and http/1.1) instead of plain HTTP/1.1 and h2c. None with `kinesis_tls_key`: plain HTTP.
    #[serde(default)]
    pub kinesis_tls_cert: Option<PathBuf>,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1) of `kinesis_tls_cert`; the two
    /// are given together or not at all.
    #[serde(default)]
    pub kinesis_tls_key: Option<PathBuf>,
    /// Every node of the cluster, this one included.
    pub peers: Vec<PeerConfig>,
    #[serde(default = "default_region")]
    pub region: String,
    #[serde(default = "default_account")]
    pub account: String,
    #[serde(default = "default_heartbeat")]
    pub heartbeat_interval_ms: u64,
    #[serde(default = "default_election_min")]
    pub election_timeout_min_ms: u64,
    #[serde(default = "default_election_max")]
    pub election_timeout_max_ms: u64,
    /// Segment files of shard logs are rolled at this size.
    #[serde(default = "default_segment_bytes")]
    pub segment_bytes_max: u64,
    /// How often expired segments are looked for.
    #[serde(default = "default_retention_check")]
    pub retention_check_interval_ms: u64,
    /// host:port of the plain-HTTP health endpoint for probes (`GET /health`: 200 when this
    /// node knows a control-plane leader, else 503; `GET /live`: 200 while the process serves).
    /// None: no health listener.
    #[serde(default)]
    pub health_listen: Option<String>,
    /// Serve GetRecords from this node's own replica, follower or leader, instead of the
    /// shard leader's: reads stay in the zone, return only committed records, and may trail the
    /// leader by the replication delay (MillisBehindLatest is then relative to this replica).
    #[serde(default)]
    pub follower_reads: bool,
}

fn default_segment_bytes() -> u64 {
    braid_types::limits::SEGMENT_BYTES_MAX
}
fn default_retention_check() -> u64 {
    braid_types::limits::RETENTION_CHECK_INTERVAL_MS
}

fn default_region() -> String {
    braid_types::names::DEFAULT_REGION.into()
}
fn default_account() -> String {
    braid_types::names::DEFAULT_ACCOUNT.into()
}
// Raft timing: a failed leader's shards elect after the lease (election_timeout_max) plus a
// random election timeout, 1.2-1.6 s with these. Idle groups cost nothing at any interval
// (quiescence), so only busy groups pay for the 100 ms heartbeats.
fn default_heartbeat() -> u64 {
    100
}
fn default_election_min() -> u64 {
    400
}
fn default_election_max() -> u64 {
    800
}

impl NodeConfig {
    pub fn advertise_addr(&self) -> &str {
        self.advertise.as_deref().unwrap_or(&self.listen)
    }

    pub fn validate(self) -> anyhow::Result<NodeConfig> {
        anyhow::ensure!(self.node_id != 0, "node_id must be at least 1");
        anyhow::ensure!(!self.zone.is_empty(), "zone must not be empty");
        let me = self.peers.iter().find(|p| p.id == self.node_id);
        anyhow::ensure!(
            me.is_some(),
            "peers must include this node (id {})",
            self.node_id
        );
        anyhow::ensure!(
            me.map(|p| p.zone == self.zone) == Some(true),
            "this node's zone differs from its peers entry"
        );
        let mut ids: Vec<u64> = self.peers.iter().map(|p| p.id).collect();
        ids.sort();
        ids.dedup();
        anyhow::ensure!(ids.len() == self.peers.len(), "peer ids must be unique");
        let zones: std::collections::BTreeSet<&str> =
            self.peers.iter().map(|p| p.zone.as_str()).collect();
        anyhow::ensure!(
            zones.len() >= braid_types::limits::REPLICAS_PER_SHARD,
            "peers span {} zones; shards need {}",
            zones.len(),
            braid_types::limits::REPLICAS_PER_SHARD
        );
        anyhow::ensure!(
            self.segment_bytes_max >= 4096
                && self.segment_bytes_max <= braid_storage::SEGMENT_BYTES_MAX_LIMIT,
            "segment_bytes_max must be between 4096 and {}",
            braid_storage::SEGMENT_BYTES_MAX_LIMIT
        );
        anyhow::ensure!(
            self.retention_check_interval_ms >= 10,
            "retention_check_interval_ms must be at least 10"
        );
        match (&self.kinesis_tls_cert, &self.kinesis_tls_key) {
            (Some(_), None) => {
                anyhow::bail!("kinesis_tls_cert is set but kinesis_tls_key is not: give both")
            }
            (None, Some(_)) => {
                anyhow::bail!("kinesis_tls_key is set but kinesis_tls_cert is not: give both")
            }
            _ => {}
        }
        anyhow::ensure!(
            self.heartbeat_interval_ms * 3 <= self.election_timeout_min_ms
                && self.election_timeout_min_ms < self.election_timeout_max_ms,
            "need heartbeat_interval_ms * 3 <= election_timeout_min_ms < election_timeout_max_ms"
        );
        Ok(self)
    }

    pub fn timing(&self) -> braid_raft::RaftTiming {
        use std::time::Duration;
        braid_raft::RaftTiming {
            heartbeat_interval: Duration::from_millis(self.heartbeat_interval_ms),
            election_timeout_min: Duration::from_millis(self.election_timeout_min_ms),
            election_timeout_max: Duration::from_millis(self.election_timeout_max_ms),
        }
    }

    /// The configuration of node `i` (0, 1, 2) of a three-zone cluster on one machine.
    pub fn local_three(i: usize, data_root: &std::path::Path, base_port: u16) -> NodeConfig {
        let letters = ["a", "b", "c"];
        let peers = (0..3)
            .map(|j| PeerConfig {
                id: j as u64 + 1,
                zone: format!("az-{}", letters[j]),
                addr: format!("127.0.0.1:{}", base_port + j as u16),
            })
            .collect::<Vec<_>>();
        NodeConfig {
            node_id: i as u64 + 1,
            zone: format!("az-{}", letters[i]),
            data_dir: data_root.join(format!("node-{}", letters[i])),
            listen: peers[i].addr.clone(),
            advertise: None,
            kinesis_listen: None,
            kinesis_access_keys: Vec::new(),
            kinesis_tls_cert: None,
            kinesis_tls_key: None,
            peers,
            region: default_region(),
            account: default_account(),
            heartbeat_interval_ms: default_heartbeat(),
            election_timeout_min_ms: default_election_min(),
            election_timeout_max_ms: default_election_max(),
            segment_bytes_max: default_segment_bytes(),
            retention_check_interval_ms: default_retention_check(),
            health_listen: None,
            follower_reads: false,
        }
    }

    /// [`NodeConfig::local_three`] with the Kinesis HTTP API on `kinesis_base_port + i`
    /// (`braid dev` uses 4567, 4568 and 4569 for nodes a, b and c).
    pub fn local_three_kinesis(
        i: usize,
        data_root: &std::path::Path,
        base_port: u16,
        kinesis_base_port: u16,
    ) -> NodeConfig {
        NodeConfig {
            kinesis_listen: Some(format!("127.0.0.1:{}", kinesis_base_port + i as u16)),
            ..NodeConfig::local_three(i, data_root, base_port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_three_kinesis_ports() {
        let root = std::path::Path::new("/tmp/x");
        let ports: Vec<Option<String>> = (0..3)
            .map(|i| NodeConfig::local_three_kinesis(i, root, 7401, 4567).kinesis_listen)
            .collect();
        assert_eq!(
            ports,
            ["127.0.0.1:4567", "127.0.0.1:4568", "127.0.0.1:4569"].map(|p| Some(p.to_string()))
        );
        assert_eq!(NodeConfig::local_three(0, root, 7401).kinesis_listen, None);
        let c = NodeConfig::local_three_kinesis(1, root, 7401, 4567);
        assert_eq!(c.listen, "127.0.0.1:7402");
        assert!(c.validate().is_ok());
    }

    #[test]
    fn kinesis_tls_cert_and_key_together() {
        let root = std::path::Path::new("/tmp/x");
        let c = NodeConfig::local_three_kinesis(0, root, 7401, 4567);
        let both = NodeConfig {
            kinesis_tls_cert: Some("cert.pem".into()),
            kinesis_tls_key: Some("key.pem".into()),
            ..c.clone()
        };
        assert!(both.validate().is_ok());
        let e = NodeConfig {
            kinesis_tls_cert: Some("cert.pem".into()),
            ..c.clone()
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("kinesis_tls_key is not"), "{e}");
        let e = NodeConfig {
            kinesis_tls_key: Some("key.pem".into()),
            ..c
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("kinesis_tls_cert is not"), "{e}");
    }

    #[test]
    fn access_keys_parse() {
        let k = AccessKey::parse_list("AKID:SECRET, AK2:a:b,").unwrap();
        assert_eq!(k.len(), 2);
        assert_eq!(k[0].access_key_id, "AKID");
        assert_eq!(k[0].secret_access_key, "SECRET");
        assert_eq!(k[1].secret_access_key, "a:b");
        assert!(AccessKey::parse("nocolon").is_err());
        assert!(AccessKey::parse(":x").is_err());
        assert!(!format!("{:?}", k[0]).contains("SECRET"));
    }
}
