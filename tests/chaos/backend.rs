//! Where the cluster under test runs, and how faults are injected into it.
//!
//! * [`crate::docker::Compose`]: the three containers of `deploy/compose/compose.yaml` (the
//!   image built by `deploy/build-image.sh`), faults by `docker kill/start/stop/pause/unpause`
//!   and `docker network disconnect/connect` of a zone's inter-zone network.
//! * [`Processes`]: three `braid node` processes of the integration harness
//!   (`braid_tests::Cluster`), faults by SIGKILL/SIGTERM/SIGSTOP/SIGCONT and by cutting the TCP
//!   proxies every node reaches the others through ([`crate::proxy`]).

use std::time::Duration;

use braid_tests::Cluster;

use crate::proxy::{PendingLink, Proxies};

/// A three-node cluster the chaos workload runs against. Every method blocks (it runs a
/// command or signals a process): call it from `tokio::task::block_in_place`.
pub trait Backend: Send + Sync {
    /// "docker" or "process".
    fn kind(&self) -> &'static str;
    fn node_ids(&self) -> Vec<u64>;
    fn zone(&self, id: u64) -> String;
    /// The node's gRPC endpoint as clients on this machine reach it.
    fn endpoint(&self, id: u64) -> String;
    /// SIGKILL (docker kill): the zone is gone at once, nothing is flushed.
    fn kill(&self, id: u64);
    /// Starts a killed or stopped node again on its data.
    fn start(&self, id: u64);
    /// SIGTERM and wait for the exit (docker stop); returns how long the node took to exit.
    fn stop(&self, id: u64) -> Duration;
    /// SIGSTOP (docker pause): the node keeps its sockets but does nothing.
    fn pause(&self, id: u64);
    fn resume(&self, id: u64);
    /// Cuts the node's zone off from the other zones; clients still reach it.
    fn partition(&self, id: u64);
    fn heal(&self, id: u64);
    /// Panics with the node logs if a node that should run has exited.
    fn assert_alive(&self);
    /// Prints the tail of every node's log.
    fn dump_logs(&self);
    /// Where the nodes keep their data and logs, for the summary.
    fn describe(&self) -> String;
}

/// Three `braid node` processes with a proxy on every path between two of them.
pub struct Processes {
    cluster: Cluster,
    proxies: Proxies,
}

impl Processes {
    /// Spawns the processes (does not wait for them). Must run inside a Tokio runtime.
    pub fn start() -> Processes {
        let mut pending = Vec::new();
        let cluster = Cluster::spawn_with_peer_addrs(3, |from, to, target| {
            let link = PendingLink::bind(from, to, target);
            let addr = link.addr();
            pending.push(link);
            addr
        });
        let proxies = Proxies::start(pending);
        Processes { cluster, proxies }
    }
}

impl Backend for Processes {
    fn kind(&self) -> &'static str {
        "process"
    }

    fn node_ids(&self) -> Vec<u64> {
        self.cluster.node_ids()
    }

    fn zone(&self, id: u64) -> String {
        self.cluster.node(id).zone.clone()
    }

    fn endpoint(&self, id: u64) -> String {
        self.cluster.endpoint(id)
    }

    fn kill(&self, id: u64) {
        self.cluster.kill9(id);
    }

    fn start(&self, id: u64) {
        self.cluster.restart(id);
    }

    fn stop(&self, id: u64) -> Duration {
        let (took, clean) = self.cluster.terminate(id, Duration::from_secs(30));
        assert!(
            clean,
            "node {id} did not exit within 30 s of SIGTERM\n{}",
            self.cluster.log_tail(id, 60)
        );
        took
    }

    fn pause(&self, id: u64) {
        self.cluster.signal(id, "STOP");
    }

    fn resume(&self, id: u64) {
        self.cluster.signal(id, "CONT");
    }

    fn partition(&self, id: u64) {
        self.proxies.isolate(id, true);
    }

    fn heal(&self, id: u64) {
        self.proxies.isolate(id, false);
    }

    fn assert_alive(&self) {
        self.cluster.assert_alive();
    }

    fn dump_logs(&self) {
        self.cluster.dump_logs();
    }

    fn describe(&self) -> String {
        format!(
            "three braid node processes ({}), data and logs in {}",
            braid_tests::cluster::braid_binary().display(),
            self.cluster.dir().display()
        )
    }
}
