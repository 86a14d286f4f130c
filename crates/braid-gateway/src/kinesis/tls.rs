//! TLS on the Kinesis HTTP API: the operator's certificate chain and private key (PEM files),
//! a rustls server (ring provider, TLS 1.2 and 1.3) advertising ALPN `h2` and `http/1.1`, and
//! the accept loop serving each TLS connection with the same axum router as plain HTTP
//! (HTTP/1.1 or HTTP/2, whichever the client speaks).
//!
//! A failed or slow handshake (a plain-HTTP client on the TLS port, a client that does not
//! trust the certificate, a stalled peer) is logged at debug and closes only that connection.
//! At most [`HANDSHAKES_MAX`] handshakes run at once, each for at most [`HANDSHAKE_TIMEOUT`];
//! beyond that, new connections wait in the listen backlog.

use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

pub use rustls::ServerConfig;

/// Most TLS handshakes in progress at once on one listener.
pub const HANDSHAKES_MAX: usize = 256;

/// Longest a client may take to complete its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// ALPN protocols offered, in order of preference.
pub const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Every certificate (`BEGIN CERTIFICATE`) in the PEM file `path`: the server's own first, then
/// its intermediates.
pub fn load_certs(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("read TLS certificate file {}: {e}", path.display()),
        )
    })?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("TLS certificate file {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(invalid(format!(
            "TLS certificate file {} holds no PEM CERTIFICATE block",
            path.display()
        )));
    }
    Ok(certs)
}

/// The first private key (PKCS#8 `PRIVATE KEY`, PKCS#1 `RSA PRIVATE KEY` or SEC1 `EC PRIVATE
/// KEY`) in the PEM file `path`.
pub fn load_key(path: &Path) -> io::Result<PrivateKeyDer<'static>> {
    let pem = std::fs::read(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("read TLS private key file {}: {e}", path.display()),
        )
    })?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => invalid(format!(
            "TLS private key file {} holds no PEM PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block",
            path.display()
        )),
        e => invalid(format!("TLS private key file {}: {e}", path.display())),
    })
}

/// The rustls server configuration for certificate chain `cert` and private key `key` (PEM
/// files), with ALPN `h2` and `http/1.1`. Errors name the file at fault.
pub fn server_config(cert: &Path, key: &Path) -> io::Result<Arc<ServerConfig>> {
    let certs = load_certs(cert)?;
    let key_der = load_key(key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("TLS protocol versions: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| {
            invalid(format!(
                "TLS certificate {} with private key {}: {e}",
                cert.display(),
                key.display()
            ))
        })?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Serves `router` over TLS on `listener` until `shutdown` resolves, then stops accepting,
/// lets open connections finish their requests, and returns once they have closed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    config: Arc<ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let acceptor = TlsAcceptor::from(config);
    let handshakes = Arc::new(Semaphore::new(HANDSHAKES_MAX));
    // Shutdown is signalled by dropping `signal_rx`; every connection task holds a `close_rx`
    // and the loop waits for all of them to be dropped.
    let (signal_tx, signal_rx) = watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(signal_rx);
    });
    let (close_tx, close_rx) = watch::channel(());
    loop {
        let permit = tokio::select! {
            p = handshakes.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = signal_tx.closed() => break,
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
            _ = signal_tx.closed() => break,
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, router, signal_tx, close_rx) = (
            acceptor.clone(),
            router.clone(),
            signal_tx.clone(),
            close_rx.clone(),
        );
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
            let tls = tokio::select! {
                r = handshake => match r {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "Kinesis API TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "Kinesis API TLS handshake timed out");
                        return;
                    }
                },
                _ = signal_tx.closed() => return,
            };
            drop(permit);
            let service = TowerToHyperService::new(router);
            let builder = Builder::new(TokioExecutor::new());
            let mut conn = pin!(builder.serve_connection_with_upgrades(TokioIo::new(tls), service));
            let mut signal = pin!(signal_tx.closed());
            loop {
                tokio::select! {
                    r = conn.as_mut() => {
                        if let Err(e) = r {
                            tracing::trace!(%peer, error = %e, "Kinesis API TLS connection ended");
                        }
                        break;
                    }
                    _ = &mut signal => conn.as_mut().graceful_shutdown(),
                }
            }
            drop(close_rx);
        });
    }
    drop(close_rx);
    drop(listener);
    close_tx.closed().await;
    Ok(())
}

/// An `accept` failure: a connection reset before it was accepted is the peer's business;
/// anything else (out of file descriptors, ...) is logged and retried after a pause, as
/// `axum::serve` does for the plain-HTTP listener.
async fn accept_error(e: io::Error) {
    use io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(error = %e, "Kinesis API TLS listener: accept failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn loads_rcgen_pems_with_alpn() {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cert = write(dir.path(), "cert.pem", &ck.cert.pem());
        let key = write(dir.path(), "key.pem", &ck.signing_key.serialize_pem());
        let config = server_config(&cert, &key).unwrap();
        assert_eq!(
            config.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }

    #[test]
    fn errors_name_the_file() {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cert = write(dir.path(), "cert.pem", &ck.cert.pem());
        let key = write(dir.path(), "key.pem", &ck.signing_key.serialize_pem());
        let other_key = write(dir.path(), "other.pem", &other.signing_key.serialize_pem());
        let empty = write(dir.path(), "empty.pem", "not a pem file\n");
        let missing = dir.path().join("missing.pem");

        let e = server_config(&missing, &key).unwrap_err().to_string();
        assert!(
            e.contains("certificate") && e.contains("missing.pem"),
            "{e}"
        );
        let e = server_config(&cert, &missing).unwrap_err().to_string();
        assert!(
            e.contains("private key") && e.contains("missing.pem"),
            "{e}"
        );
        let e = server_config(&empty, &key).unwrap_err().to_string();
        assert!(
            e.contains("no PEM CERTIFICATE") && e.contains("empty.pem"),
            "{e}"
        );
        // A certificate is not a key.
        let e = server_config(&cert, &cert).unwrap_err().to_string();
        assert!(
            e.contains("no PEM PRIVATE KEY") && e.contains("cert.pem"),
            "{e}"
        );
        // A key that does not match the certificate.
        let e = server_config(&cert, &other_key).unwrap_err().to_string();
        assert!(e.contains("cert.pem") && e.contains("other.pem"), "{e}");
    }
}
