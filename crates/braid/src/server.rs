//! `braid node` and `braid dev`: configuration layering and startup of server nodes.
//!
//! Layers, later wins: the TOML file (`--config`), then `BRAID_*` environment variables, then
//! flags (clap reads both; a flag beats its variable).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use braid_node::{Api, Node, NodeConfig, PeerConfig};

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

/// Starts a node and serves its gRPC port until `stop` resolves.
async fn serve(
    config: NodeConfig,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Arc<Node>> {
    let addr: std::net::SocketAddr = tokio::net::lookup_host(&config.listen)
        .await
        .with_context(|| format!("resolve {}", config.listen))?
        .next()
        .with_context(|| format!("no address for {}", config.listen))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("bind {addr}"))?;
    let node = Node::start(config).await?;
    let router = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .initial_connection_window_size(Some(8 * 1024 * 1024))
        .initial_stream_window_size(Some(4 * 1024 * 1024))
        .add_service(braid_node::internal::internal_server(node.clone()))
        .add_service(braid_gateway::grpc::braid_server(Api::new(node.clone())));
    let incoming = tokio_stream_wrapper(listener);
    let id = node.id;
    tokio::spawn(async move {
        if let Err(e) = router.serve_with_incoming_shutdown(incoming, stop).await {
            tracing::error!(node_id = id, error = %e, "gRPC server stopped");
        }
    });
    Ok(node)
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
    init_tracing();
    let config = load_config(&args)?;
    tracing::info!(?config, "effective configuration");
    runtime()?.block_on(async move {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let node = serve(config, async move {
            let _ = rx.await;
        })
        .await?;
        shutdown_signal().await;
        tracing::info!("shutting down");
        node.shutdown().await;
        let _ = tx.send(());
        Ok(())
    })
}

pub fn run_dev(args: DevArgs) -> anyhow::Result<()> {
    init_tracing();
    std::fs::create_dir_all(&args.data_dir)?;
    runtime()?.block_on(async move {
        let mut nodes = Vec::new();
        let mut stops = Vec::new();
        for i in 0..3 {
            let config = NodeConfig::local_three(i, &args.data_dir, args.base_port);
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            nodes.push(serve(config, async move {
                let _ = rx.await;
            })
            .await?);
            stops.push(tx);
        }
        let endpoints: Vec<String> = (0..3).map(|i| format!("127.0.0.1:{}", args.base_port + i)).collect();
        eprintln!(
            "braid dev: three nodes (zones az-a, az-b, az-c) on {} with data in {}\n  try: braid stream create orders --shards 4",
            endpoints.join(", "),
            args.data_dir.display()
        );
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
            };
            let c = load_config(&args).unwrap();
            assert_eq!(c.peers.len(), 3);
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
        };
        let c = load_config(&args).unwrap();
        assert_eq!(c.listen, "127.0.0.1:9999");
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.peers[0].addr, "127.0.0.1:9999");
        assert!(parse_peers("1=az-a").is_err());
    }
}
