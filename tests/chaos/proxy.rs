//! TCP proxies between `braid node` processes, so that process mode can cut a zone off.
//!
//! Every ordered pair of nodes (from, to) gets its own proxy: node `from` is configured to reach
//! node `to` through it (see `Cluster::spawn_with_peer_addrs`), while clients still connect to
//! each node directly. Cutting a link behaves like a network partition under TCP: nothing is
//! forwarded in either direction (bytes wait in socket buffers, so senders stall and time out),
//! new connections are accepted but not connected through, and everything resumes on healing.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// One bound listener for the path `from` → `to`, before the proxies run.
pub struct PendingLink {
    pub from: u64,
    pub to: u64,
    pub listener: std::net::TcpListener,
    /// The real address of node `to`.
    pub target: String,
}

impl PendingLink {
    /// Binds a loopback listener for the path `from` → `to` (real address `target`).
    pub fn bind(from: u64, to: u64, target: &str) -> PendingLink {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy listener");
        PendingLink {
            from,
            to,
            listener,
            target: target.to_string(),
        }
    }

    pub fn addr(&self) -> String {
        self.listener
            .local_addr()
            .expect("proxy listener address")
            .to_string()
    }
}

struct Link {
    from: u64,
    to: u64,
    cut: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// The running proxies. Dropping them stops every proxy task.
pub struct Proxies {
    links: Vec<Link>,
}

impl Proxies {
    /// Starts a proxy task for every pending link. Must run inside a Tokio runtime.
    pub fn start(pending: Vec<PendingLink>) -> Proxies {
        let links = pending
            .into_iter()
            .map(|p| {
                p.listener
                    .set_nonblocking(true)
                    .expect("nonblocking listener");
                let listener = TcpListener::from_std(p.listener).expect("tokio listener");
                let (cut, rx) = watch::channel(false);
                let task = tokio::spawn(accept_loop(listener, Arc::new(p.target), rx));
                Link {
                    from: p.from,
                    to: p.to,
                    cut,
                    task,
                }
            })
            .collect();
        Proxies { links }
    }

    /// Cuts (or heals) every path from and to node `id`.
    pub fn isolate(&self, id: u64, cut: bool) {
        for l in self.links.iter().filter(|l| l.from == id || l.to == id) {
            l.cut.send_replace(cut);
        }
    }
}

impl Drop for Proxies {
    fn drop(&mut self) {
        for l in &self.links {
            l.task.abort();
        }
    }
}

async fn wait_open(cut: &mut watch::Receiver<bool>) -> bool {
    while *cut.borrow_and_update() {
        if cut.changed().await.is_err() {
            return false;
        }
    }
    true
}

async fn accept_loop(listener: TcpListener, target: Arc<String>, cut: watch::Receiver<bool>) {
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            continue;
        };
        let target = target.clone();
        let mut cut = cut.clone();
        tokio::spawn(async move {
            // Like a dropped SYN: nothing reaches the target while the link is cut.
            if !wait_open(&mut cut).await {
                return;
            }
            let Ok(outbound) = TcpStream::connect(target.as_str()).await else {
                return; // the target is down: the inbound side sees the connection close
            };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let (ir, iw) = inbound.into_split();
            let (or, ow) = outbound.into_split();
            let up = tokio::spawn(pump(ir, ow, cut.clone()));
            let down = tokio::spawn(pump(or, iw, cut));
            let _ = up.await;
            let _ = down.await;
        });
    }
}

/// Copies `r` to `w` while the link is open; stops reading while it is cut.
async fn pump(mut r: OwnedReadHalf, mut w: OwnedWriteHalf, mut cut: watch::Receiver<bool>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if !wait_open(&mut cut).await {
            return;
        }
        tokio::select! {
            n = r.read(&mut buf) => match n {
                Ok(0) | Err(_) => {
                    let _ = w.shutdown().await;
                    return;
                }
                Ok(n) => {
                    if w.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            },
            changed = cut.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}
