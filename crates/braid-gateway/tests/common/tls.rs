//! TLS test support: a self-signed certificate and a rustls client that trusts only it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::client::TlsStream;

/// A self-signed certificate for `localhost` and 127.0.0.1, written as PEM files.
pub struct TestCert {
    _dir: tempfile::TempDir,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub pem: String,
}

pub fn test_cert() -> TestCert {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".into()])
        .expect("rcgen");
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let pem = ck.cert.pem();
    std::fs::write(&cert, &pem).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    TestCert {
        _dir: dir,
        cert,
        key,
        pem,
    }
}

/// A rustls client trusting only `cert_pem`, offering `alpn`.
pub fn client_config(cert_pem: &str, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(cert_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

pub async fn tls_connect(
    port: u16,
    cert_pem: &str,
    alpn: &[&[u8]],
) -> std::io::Result<TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let connector = tokio_rustls::TlsConnector::from(client_config(cert_pem, alpn));
    let name = ServerName::try_from("localhost").unwrap();
    tokio::time::timeout(Duration::from_secs(10), connector.connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake"))?
}

/// `braid dev` serving the Kinesis API over TLS with `cert` (plus `extra` flags) on fresh ports,
/// its log in a temporary directory; killed on drop. Callers wait for readiness themselves.
pub struct TlsDev {
    pub child: Child,
    dir: tempfile::TempDir,
    pub kinesis_base: u16,
}

impl Drop for TlsDev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TlsDev {
    pub fn spawn(bin: &Path, cert: &TestCert, extra: &[String]) -> TlsDev {
        let dir = tempfile::tempdir().expect("tempdir");
        let grpc_base = super::free_port_triple(&[]);
        let kinesis_base = super::free_port_triple(&[grpc_base]);
        let log = std::fs::File::create(dir.path().join("braid.log")).expect("log file");
        let child = Command::new(bin)
            .args([
                "dev",
                "--data-dir",
                &dir.path().join("data").display().to_string(),
                "--base-port",
                &grpc_base.to_string(),
                "--kinesis-base-port",
                &kinesis_base.to_string(),
                "--kinesis-tls-cert",
                &cert.cert.display().to_string(),
                "--kinesis-tls-key",
                &cert.key.display().to_string(),
            ])
            .args(extra)
            .env("RUST_LOG", "warn,braid_gateway=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn braid dev");
        TlsDev {
            child,
            dir,
            kinesis_base,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("braid.log")).unwrap_or_default()
    }
}
