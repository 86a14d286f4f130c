//! `braid node` and `braid dev`: configuration layering and startup of server nodes.
//!
//! Layers, later wins: the TOML file (`--config`), then `BRAID_*` environment variables, then
//! flags (clap reads both; a flag beats its variable).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use braid_node::{AccessKey, Api, Node, NodeConfig, PeerConfig};
use braid_types::limits;

/// Arguments of `braid node`.
#[derive(clap::Args, Debug, Clone)]
pub struct NodeArgs {
    /// TOML config file (see deploy/local/node-a.toml).
    #[arg(long, env = "BRAID_CONFIG")]
    pub config: Option<PathBuf>,
    /// This node's id (unique, never reused for a node that lost its disk).
    #[arg(long, env = "BRAID_NODE_ID")]
    pub node_id: Option<u64>,
    /// This node's zone label, e.g. az-a.
    #[arg(long, env = "BRAID_ZONE")]
    pub zone: Option<String>,
    #[arg(long, env = "BRAID_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// host:port the gRPC server binds.
    #[arg(long, env = "BRAID_LISTEN")]
    pub listen: Option<String>,
    /// host:port other nodes use to reach this one.
    #[arg(long, env = "BRAID_ADVERTISE")]
    pub advertise: Option<String>,
    /// Every node as ID=ZONE=HOST:PORT, comma-separated.
    #[arg(long, env = "BRAID_PEERS")]
    pub peers: Option<String>,
    /// host:port of the plain-HTTP health endpoint (GET /health, GET /live) for probes.
    #[arg(long, env = "BRAID_HEALTH_LISTEN")]
    pub health_listen: Option<String>,
    /// host:port the Kinesis Data Streams HTTP API binds (AWS SDKs, boto3, the AWS CLI).
    #[arg(long, env = "BRAID_KINESIS_LISTEN")]
    pub kinesis_listen: Option<String>,
    /// Credentials the Kinesis API verifies SigV4 signatures against, as
    /// ACCESS_KEY_ID:SECRET_ACCESS_KEY, comma-separated. Unset: any credentials are accepted.
    #[arg(long, env = "BRAID_KINESIS_ACCESS_KEYS", hide_env_values = true)]
    pub kinesis_access_keys: Option<String>,
    /// PEM certificate chain for the Kinesis HTTP API: with --kinesis-tls-key it serves HTTPS
    /// (ALPN h2 and http/1.1) instead of plain HTTP.
    #[arg(long, env = "BRAID_KINESIS_TLS_CERT")]
    pub kinesis_tls_cert: Option<PathBuf>,
    /// PEM private key of --kinesis-tls-cert.
    #[arg(long, env = "BRAID_KINESIS_TLS_KEY")]
    pub kinesis_tls_key: Option<PathBuf>,
    /// Do not run the node: ask the health endpoint of the node this configuration describes
    /// and exit 0 if it answers 200 (a container health check that needs no curl).
    #[arg(long)]
    pub probe: bool,
}

/// Arguments of `braid dev`.
#[derive(clap::Args, Debug, Clone)]
pub struct DevArgs {
    /// Where the three nodes keep their data (one subdirectory per node).
    #[arg(long, default_value = "./braid-data", env = "BRAID_DATA_DIR")]
    pub data_dir: PathBuf,
    /// gRPC port of the first node; the others use the next two.
    #[arg(long, default_value_t = 7401)]
    pub base_port: u16,
    /// Kinesis HTTP API port of the first node; the others use the next two. 0 serves no
    /// Kinesis API.
    #[arg(long, default_value_t = 4567)]
    pub kinesis_base_port: u16,
    /// A credential the Kinesis API accepts, as ACCESS_KEY_ID:SECRET_ACCESS_KEY (repeatable).
    /// None given: any credentials are accepted.
    #[arg(long = "kinesis-access-key", value_name = "AKID:SECRET")]
    pub kinesis_access_keys: Vec<String>,
    /// PEM certificate chain: with --kinesis-tls-key, all three nodes serve the Kinesis API
    /// over HTTPS (ALPN h2 and http/1.1) instead of plain HTTP.
    #[arg(long, requires = "kinesis_tls_key")]
    pub kinesis_tls_cert: Option<PathBuf>,
    /// PEM private key of --kinesis-tls-cert.
    #[arg(long, requires = "kinesis_tls_cert")]
    pub kinesis_tls_key: Option<PathBuf>,
}

fn parse_peers(s: &str) -> anyhow::Result<Vec<PeerConfig>> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let mut it = p.trim().splitn(3, '=');
            let (id, zone, addr) = (it.next(), it.next(), it.next());
            match (id, zone, addr) {
                (Some(id), Some(zone), Some(addr)) => Ok(PeerConfig {
                    id: id
                        .parse()
                        .with_context(|| format!("bad peer id in {p:?}"))?,
                    zone: zone.into(),
                    addr: addr.into(),
                }),
                _ => anyhow::bail!("peer {p:?} is not ID=ZONE=HOST:PORT"),
            }
        })
        .collect()
}

pub fn load_config(args: &NodeArgs) -> anyhow::Result<NodeConfig> {
    let mut table: toml::Table = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("read {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("parse {}", path.display()))?
        }
        None => toml::Table::new(),
    };
    let mut set = |k: &str, v: toml::Value| {
        table.insert(k.to_string(), v);
    };
    if let Some(v) = args.node_id {
        set("node_id", toml::Value::Integer(v as i64));
    }
    if let Some(v) = &args.zone {
        set("zone", v.clone().into());
    }
    if let Some(v) = &args.data_dir {
        set("data_dir", v.display().to_string().into());
    }
    if let Some(v) = &args.listen {
        set("listen", v.clone().into());
    }
    if let Some(v) = &args.advertise {
        set("advertise", v.clone().into());
    }
    if let Some(v) = &args.peers {
        let peers = parse_peers(v)?;
        set("peers", toml::Value::try_from(peers)?);
    }
    if let Some(v) = &args.health_listen {
        set("health_listen", v.clone().into());
    }
    if let Some(v) = &args.kinesis_listen {
        set("kinesis_listen", v.clone().into());
    }
    if let Some(v) = &args.kinesis_access_keys {
        let keys = AccessKey::parse_list(v).context("BRAID_KINESIS_ACCESS_KEYS")?;
        set("kinesis_access_keys", toml::Value::try_from(keys)?);
    }
    if let Some(v) = &args.kinesis_tls_cert {
        set("kinesis_tls_cert", v.display().to_string().into());
    }
    if let Some(v) = &args.kinesis_tls_key {
        set("kinesis_tls_key", v.display().to_string().into());
    }
    let config: NodeConfig = toml::Value::Table(table)
        .try_into()
        .context("invalid node configuration")?;
    config.validate()
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,openraft=error,sled=warn,h2=warn,tower=warn")
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("braid")
        .build()?)
}

/// A started node and its servers' tasks (which end once `stop` resolved and the requests in
/// flight were answered).
struct Served {
    node: Arc<Node>,
    servers: Vec<tokio::task::JoinHandle<()>>,
}

/// Starts a node and serves its gRPC port (and its Kinesis HTTP API when `kinesis_listen` is
/// set) until `stop` resolves.
async fn serve(
    config: NodeConfig,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Served> {
    let addr: std::net::SocketAddr = tokio::net::lookup_host(&config.listen)
        .await
        .with_context(|| format!("resolve {}", config.listen))?
        .next()
        .with_context(|| format!("no address for {}", config.listen))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("bind {addr}"))?;
    let health = match &config.health_listen {
        Some(a) => Some(health::bind(a).await?),
        None => None,
    };
    let kinesis = match &config.kinesis_listen {
        Some(a) => Some(
            tokio::net::TcpListener::bind(a)
                .await
                .with_context(|| format!("bind the Kinesis API on {a}"))?,
        ),
        None => None,
    };
    let kinesis_keys = config.kinesis_access_keys.clone();
    // Loaded before the node starts, so a bad certificate or key stops startup.
    let kinesis_tls = match (&config.kinesis_tls_cert, &config.kinesis_tls_key) {
        (Some(cert), Some(key)) if kinesis.is_some() => Some(
            braid_gateway::kinesis::tls::server_config(cert, key)
                .context("Kinesis API TLS configuration")?,
        ),
        (Some(_), _) | (_, Some(_)) => {
            tracing::warn!("kinesis_tls_cert/kinesis_tls_key are set but kinesis_listen is not: no Kinesis API to serve over TLS");
            None
        }
        _ => None,
    };
    let node = Node::start(config).await?;
    if let Some(l) = health {
        tokio::spawn(health::serve(l, node.clone()));
    }
    let stop = futures::FutureExt::shared(Box::pin(stop));
    let mut servers = Vec::new();
    if let Some(l) = kinesis {
        let (api, id, addr, stop) = (
            Api::new(node.clone()),
            node.id,
            l.local_addr().ok(),
            stop.clone(),
        );
        servers.push(tokio::spawn(async move {
            tracing::info!(
                node_id = id,
                ?addr,
                tls = kinesis_tls.is_some(),
                "Kinesis HTTP API listening"
            );
            let served = match kinesis_tls {
                Some(tls) => {
                    braid_gateway::kinesis::serve_tls_with_keys(l, api, kinesis_keys, tls, stop)
                        .await
                }
                None => braid_gateway::kinesis::serve_with_keys(l, api, kinesis_keys, stop).await,
            };
            if let Err(e) = served {
                tracing::error!(node_id = id, error = %e, "Kinesis HTTP server stopped");
            }
        }));
    }
    let router = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .initial_connection_window_size(Some(8 * 1024 * 1024))
        .initial_stream_window_size(Some(4 * 1024 * 1024))
        .max_frame_size(Some(braid_types::limits::GRPC_FRAME_BYTES_MAX))
        .add_service(braid_node::internal::internal_server(node.clone()))
        .add_service(braid_gateway::grpc::braid_server(Api::new(node.clone())));
    let incoming = tokio_stream_wrapper(listener);
    let id = node.id;
    servers.push(tokio::spawn(async move {
        if let Err(e) = router.serve_with_incoming_shutdown(incoming, stop).await {
            tracing::error!(node_id = id, error = %e, "gRPC server stopped");
        }
    }));
    Ok(Served { node, servers })
}

fn tokio_stream_wrapper(
    listener: tokio::net::TcpListener,
) -> impl futures::Stream<Item = Result<tokio::net::TcpStream, std::io::Error>> {
    futures::stream::unfold(listener, |l| async move {
        let r = l.accept().await.map(|(s, _)| {
            let _ = s.set_nodelay(true);
            s
        });
        Some((r, l))
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("signal handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

pub fn run_node(args: NodeArgs) -> anyhow::Result<()> {
    if args.probe {
        return health::probe(&args);
    }
    init_tracing();
    let config = load_config(&args)?;
    tracing::info!(?config, "effective configuration");
    runtime()?.block_on(async move {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let Served { node, servers } = serve(config, async move {
            let _ = rx.await;
        })
        .await?;
        shutdown_signal().await;
        // Leaderships first (writes pause for milliseconds instead of a failover), then the
        // servers stop accepting and answer what is in flight (forwarding to the new leaders),
        // then the Raft groups stop.
        tracing::info!("shutting down: handing leadership over");
        node.hand_over_leadership().await;
        let _ = tx.send(());
        let drained = tokio::time::timeout(
            Duration::from_millis(limits::SHUTDOWN_DRAIN_MS_MAX),
            futures::future::join_all(servers),
        )
        .await;
        if drained.is_err() {
            tracing::warn!("requests still in flight after the drain deadline; stopping anyway");
        }
        node.shutdown().await;
        Ok(())
    })
}

pub fn run_dev(args: DevArgs) -> anyhow::Result<()> {
    init_tracing();
    std::fs::create_dir_all(&args.data_dir)?;
    let keys = args
        .kinesis_access_keys
        .iter()
        .map(|k| AccessKey::parse(k).context("--kinesis-access-key"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    runtime()?.block_on(async move {
        let mut nodes = Vec::new();
        let mut stops = Vec::new();
        for i in 0..3 {
            let mut config = if args.kinesis_base_port == 0 {
                NodeConfig::local_three(i, &args.data_dir, args.base_port)
            } else {
                NodeConfig::local_three_kinesis(i, &args.data_dir, args.base_port, args.kinesis_base_port)
            };
            config.kinesis_access_keys = keys.clone();
            config.kinesis_tls_cert = args.kinesis_tls_cert.clone();
            config.kinesis_tls_key = args.kinesis_tls_key.clone();
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            nodes.push(
                serve(config, async move {
                    let _ = rx.await;
                })
                .await?
                .node,
            );
            stops.push(tx);
        }
        let endpoints: Vec<String> = (0..3).map(|i| format!("127.0.0.1:{}", args.base_port + i)).collect();
        eprintln!(
            "braid dev: three nodes (zones az-a, az-b, az-c) on {} with data in {}\n  try: braid stream create orders --shards 4",
            endpoints.join(", "),
            args.data_dir.display()
        );
        if args.kinesis_base_port != 0 {
            let scheme = if args.kinesis_tls_cert.is_some() { "https" } else { "http" };
            let k: Vec<String> = (0..3)
                .map(|i| format!("{scheme}://127.0.0.1:{}", args.kinesis_base_port + i))
                .collect();
            eprintln!(
                "  Kinesis API on {}\n  try: aws kinesis list-streams --endpoint-url {}",
                k.join(", "),
                k[0]
            );
        }
        shutdown_signal().await;
        for n in &nodes {
            n.shutdown().await;
        }
        for s in stops {
            let _ = s.send(());
        }
        Ok(())
    })
}

/// The health endpoint: a minimal HTTP/1.1 responder (one request per connection) so that
/// container and Kubernetes probes need neither gRPC nor a shell in the image.
///
/// * `GET /health`: 200 when this node knows a control-plane leader (it can serve requests) and,
///   if it is that leader, a quorum acknowledged it within the election timeout; 503 otherwise.
///   The body is a JSON line with the node id, zone and control leader.
/// * `GET /live`: 200 while the process serves at all (a liveness probe that must not fail
///   just because a quorum is down).
mod health {
    use std::io::{Read, Write};
    use std::sync::Arc;
    use std::time::Duration;

    use anyhow::Context;
    use braid_node::Node;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const REQUEST_BYTES_MAX: usize = 4096;
    const IO_TIMEOUT: Duration = Duration::from_secs(2);

    pub async fn bind(addr: &str) -> anyhow::Result<tokio::net::TcpListener> {
        tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("bind health_listen {addr}"))
    }

    pub async fn serve(listener: tokio::net::TcpListener, node: Arc<Node>) {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let node = node.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(IO_TIMEOUT, answer(stream, &node)).await;
            });
        }
    }

    async fn answer(mut stream: tokio::net::TcpStream, node: &Node) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(512);
        let mut chunk = [0u8; 512];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < REQUEST_BYTES_MAX {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let line = buf.split(|b| *b == b'\n').next().unwrap_or_default();
        let mut parts = std::str::from_utf8(line).unwrap_or("").split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let (leader, quorum_ack_ms) = node.control_leadership();
        // A leader cut off from the others keeps believing it leads: it is healthy only while a
        // quorum acknowledged it within an election timeout.
        let cut_off = leader == Some(node.id)
            && quorum_ack_ms.is_none_or(|ms| ms > node.config.election_timeout_max_ms);
        let (code, body) = match (method, path) {
            ("GET" | "HEAD", "/live") => (200, "{\"live\":true}".to_string()),
            ("GET" | "HEAD", "/health") => {
                let body = serde_json::json!({
                    "node_id": node.id,
                    "zone": node.config.zone,
                    "control_leader": leader,
                    "leader_quorum_ack_ms": quorum_ack_ms,
                    "uptime_ms": node.uptime().as_millis() as u64,
                })
                .to_string();
                (
                    if leader.is_some() && !cut_off {
                        200
                    } else {
                        503
                    },
                    body,
                )
            }
            ("GET" | "HEAD", _) => (404, "{\"error\":\"not found\"}".to_string()),
            _ => (405, "{\"error\":\"method not allowed\"}".to_string()),
        };
        let reason = match code {
            200 => "OK",
            404 => "Not Found",
            405 => "Method Not Allowed",
            _ => "Service Unavailable",
        };
        let mut out = format!(
            "HTTP/1.1 {code} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len() + 1
        );
        if method != "HEAD" {
            out.push_str(&body);
            out.push('\n');
        }
        stream.write_all(out.as_bytes()).await?;
        stream.shutdown().await
    }

    /// `braid node --probe`: GET /health from the health listener (`--health-listen`,
    /// `BRAID_HEALTH_LISTEN` or `health_listen` in the config file; an unspecified bind address
    /// is asked on loopback); Ok only on a 200 answer. Nothing else of the configuration is
    /// needed, so the probe works however the node itself was configured.
    pub fn probe(args: &super::NodeArgs) -> anyhow::Result<()> {
        let from_file = match (&args.health_listen, &args.config) {
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("read {}", path.display()))?;
                let table: toml::Table =
                    toml::from_str(&text).with_context(|| format!("parse {}", path.display()))?;
                table
                    .get("health_listen")
                    .and_then(|v| v.as_str())
                    .map(String::from)
            }
            _ => None,
        };
        let listen = args.health_listen.clone().or(from_file).context(
            "--probe needs health_listen (--health-listen, BRAID_HEALTH_LISTEN or the config file)",
        )?;
        let mut addr: std::net::SocketAddr = listen
            .parse()
            .with_context(|| format!("health_listen {listen:?} is not an IP:port"))?;
        if addr.ip().is_unspecified() {
            addr.set_ip(if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        let mut s = std::net::TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .with_context(|| format!("connect {addr}"))?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        write!(
            s,
            "GET /health HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
        )?;
        let mut answer = String::new();
        s.take(REQUEST_BYTES_MAX as u64)
            .read_to_string(&mut answer)?;
        let status = answer.lines().next().unwrap_or("");
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or("").trim();
        println!("{status} {body}");
        anyhow::ensure!(
            status.split_whitespace().nth(1) == Some("200"),
            "unhealthy: {status}"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deploy_local_configs_parse() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/local");
        for n in ["a", "b", "c"] {
            let args = NodeArgs {
                config: Some(root.join(format!("node-{n}.toml"))),
                node_id: None,
                zone: None,
                data_dir: None,
                listen: None,
                advertise: None,
                peers: None,
                health_listen: None,
                probe: false,
                kinesis_listen: None,
                kinesis_access_keys: None,
                kinesis_tls_cert: None,
                kinesis_tls_key: None,
            };
            let c = load_config(&args).unwrap();
            assert_eq!(c.peers.len(), 3);
            let kinesis_port = 4567 + u16::from(n.as_bytes()[0] - b'a');
            assert_eq!(c.kinesis_listen, Some(format!("127.0.0.1:{kinesis_port}")));
            assert_eq!(c.zone, format!("az-{n}"));
        }
    }

    #[test]
    fn flags_override_file() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/local");
        let args = NodeArgs {
            config: Some(root.join("node-a.toml")),
            node_id: None,
            zone: None,
            data_dir: Some("/tmp/x".into()),
            listen: Some("127.0.0.1:9999".into()),
            advertise: None,
            peers: Some("1=az-a=127.0.0.1:9999,2=az-b=127.0.0.1:7402,3=az-c=127.0.0.1:7403".into()),
            health_listen: Some("0.0.0.0:8080".into()),
            probe: false,
            kinesis_listen: Some("127.0.0.1:9998".into()),
            kinesis_access_keys: Some("AKID:SECRET,AK2:S2".into()),
            kinesis_tls_cert: Some("/etc/braid/tls/cert.pem".into()),
            kinesis_tls_key: Some("/etc/braid/tls/key.pem".into()),
        };
        let c = load_config(&args).unwrap();
        assert_eq!(c.listen, "127.0.0.1:9999");
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.peers[0].addr, "127.0.0.1:9999");
        assert_eq!(c.kinesis_listen.as_deref(), Some("127.0.0.1:9998"));
        assert_eq!(c.kinesis_access_keys.len(), 2);
        assert_eq!(c.kinesis_access_keys[1].access_key_id, "AK2");
        assert_eq!(
            c.kinesis_tls_cert,
            Some(PathBuf::from("/etc/braid/tls/cert.pem"))
        );
        assert_eq!(
            c.kinesis_tls_key,
            Some(PathBuf::from("/etc/braid/tls/key.pem"))
        );
        let only_cert = NodeArgs {
            kinesis_tls_key: None,
            ..args.clone()
        };
        let e = load_config(&only_cert).unwrap_err();
        assert!(format!("{e:#}").contains("kinesis_tls_key"), "{e:#}");
        assert_eq!(c.health_listen.as_deref(), Some("0.0.0.0:8080"));
        assert!(parse_peers("1=az-a").is_err());
    }
}
