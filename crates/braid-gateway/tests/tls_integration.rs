//! The Kinesis HTTP API over TLS: a real `braid dev --kinesis-tls-cert/--kinesis-tls-key`
//! process with a self-signed certificate for `localhost` and 127.0.0.1 (rcgen), and
//! - aws-sdk-kinesis trusting that certificate (and only it) doing a stream round trip, while
//!   a client that does not trust it is refused;
//! - a raw rustls client: ALPN `h2` negotiates HTTP/2 (a request over it answers 200 in
//!   HTTP/2), ALPN `http/1.1` alone gets HTTP/1.1;
//! - a plain-TCP request on the TLS port gets no HTTP answer and the listener keeps serving;
//! - in process, `serve_tls_with_keys` returns once its shutdown signal fires.

mod common;

use common::tls::{test_cert, tls_connect, TestCert, TlsDev};

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{ShardIteratorType, StreamStatus};
use aws_sdk_kinesis::Client;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider, TlsContext, TrustStore};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SIGNED_HEADERS: &str = "x-amz-date: 20260101T000000Z\r\nauthorization: AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=00\r\n";

/// A ListStreams request as HTTP/1.1 text (`connection: close`).
fn list_streams_http1(port: u16) -> String {
    format!(
        "POST / HTTP/1.1\r\nhost: localhost:{port}\r\nx-amz-target: Kinesis_20131202.ListStreams\r\ncontent-type: application/x-amz-json-1.1\r\n{SIGNED_HEADERS}content-length: 2\r\nconnection: close\r\n\r\n{{}}"
    )
}

/// Reads until EOF (or an error after some bytes: a peer closing without close_notify).
async fn read_all<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
            Err(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "read timed out",
                ))
            }
            Ok(Ok(0)) => return Ok(out),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Ok(Err(_)) if !out.is_empty() => return Ok(out),
            Ok(Err(e)) => return Err(e),
        }
    }
}

/// ListStreams over TLS with ALPN `http/1.1` only: (negotiated ALPN, raw HTTP/1.1 answer).
async fn list_streams_tls_http1(
    port: u16,
    cert_pem: &str,
) -> std::io::Result<(Option<Vec<u8>>, String)> {
    let mut tls = tls_connect(port, cert_pem, &[b"http/1.1"]).await?;
    let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    tls.write_all(list_streams_http1(port).as_bytes()).await?;
    tls.flush().await?;
    let answer = read_all(&mut tls).await?;
    Ok((alpn, String::from_utf8_lossy(&answer).into_owned()))
}

fn status_of(http1_answer: &str) -> u16 {
    http1_answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Starting the shared [`TlsDev`] and waiting until every node answers ListStreams over TLS.
trait Start: Sized {
    async fn start(cert: &TestCert) -> Self;
    async fn start_once(bin: &Path, cert: &TestCert) -> Result<Self, String>;
}

impl Start for TlsDev {
    /// Starts `braid dev` with the certificate and waits until every node answers ListStreams
    /// over TLS; retries on fresh ports if another process took them in between.
    async fn start(cert: &TestCert) -> TlsDev {
        let bin = common::braid_bin();
        let mut last_log = String::new();
        for _ in 0..3 {
            match TlsDev::start_once(&bin, cert).await {
                Ok(dev) => return dev,
                Err(log) => last_log = log,
            }
        }
        panic!("braid dev over TLS did not become ready; last log:\n{last_log}");
    }

    async fn start_once(bin: &Path, cert: &TestCert) -> Result<TlsDev, String> {
        let mut dev = TlsDev::spawn(bin, cert, &[]);
        let kinesis_base = dev.kinesis_base;
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut ready = [false; 3];
        while Instant::now() < deadline {
            if let Ok(Some(_)) = dev.child.try_wait() {
                return Err(dev.log());
            }
            for (i, r) in ready.iter_mut().enumerate() {
                if !*r {
                    *r = list_streams_tls_http1(kinesis_base + i as u16, &cert.pem)
                        .await
                        .map(|(_, answer)| status_of(&answer) == 200)
                        .unwrap_or(false);
                }
            }
            if ready.iter().all(|r| *r) {
                return Ok(dev);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(dev.log())
    }
}

fn sdk_client(endpoint: &str, http_client: aws_sdk_kinesis::config::SharedHttpClient) -> Client {
    let conf = aws_sdk_kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("AKID", "SECRET", None, None, "static"))
        .http_client(http_client)
        .build();
    Client::from_conf(conf)
}

/// An HTTPS client trusting `cert_pem` alone (no platform roots).
fn trusting(cert_pem: &str) -> aws_sdk_kinesis::config::SharedHttpClient {
    let tls = TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_pem_certificate(cert_pem.as_bytes()))
        .build()
        .expect("TLS context");
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(tls)
        .build_https()
}

/// (1) aws-sdk-kinesis over HTTPS: CreateStream, PutRecord, GetShardIterator, GetRecords.
async fn sdk_round_trip(dev: &TlsDev, cert: &TestCert) {
    let k = sdk_client(
        &format!("https://localhost:{}", dev.kinesis_base),
        trusting(&cert.pem),
    );
    k.create_stream()
        .stream_name("secure")
        .shard_count(1)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateStream over TLS: {e:?}\n{}", dev.log()));
    let mut active = false;
    for _ in 0..300 {
        let d = k
            .describe_stream_summary()
            .stream_name("secure")
            .send()
            .await
            .unwrap();
        if d.stream_description_summary().map(|s| s.stream_status()) == Some(&StreamStatus::Active)
        {
            active = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(active, "stream never became ACTIVE");
    let put = k
        .put_record()
        .stream_name("secure")
        .partition_key("k")
        .data(Blob::new(&b"over tls"[..]))
        .send()
        .await
        .unwrap();
    // Another node, addressed by IP (the certificate's IP SAN).
    let k3 = sdk_client(
        &format!("https://127.0.0.1:{}", dev.kinesis_base + 2),
        trusting(&cert.pem),
    );
    let it = k3
        .get_shard_iterator()
        .stream_name("secure")
        .shard_id(put.shard_id())
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap();
    let r = k3
        .get_records()
        .shard_iterator(it.shard_iterator().unwrap())
        .send()
        .await
        .unwrap();
    let records = r.records();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].data().as_ref(), b"over tls");
    assert_eq!(records[0].sequence_number(), put.sequence_number());

    // A client that does not trust the certificate (platform roots only) is refused.
    let untrusting = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .build_https();
    let e = sdk_client(
        &format!("https://localhost:{}", dev.kinesis_base),
        untrusting,
    )
    .list_streams()
    .send()
    .await
    .expect_err("a client not trusting the certificate must fail");
    assert!(
        e.as_service_error().is_none(),
        "expected a connection (TLS) error: {e:?}"
    );
}

/// (2) ALPN: `h2` is negotiated when offered first and a request over it is HTTP/2;
/// `http/1.1` alone gets HTTP/1.1.
async fn alpn(dev: &TlsDev, cert: &TestCert) {
    let port = dev.kinesis_base + 1;
    let tls = tls_connect(port, &cert.pem, &[b"h2", b"http/1.1"])
        .await
        .expect("TLS handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .expect("HTTP/2 handshake over TLS");
    tokio::spawn(conn);
    let mut req = hyper::Request::post(format!("https://localhost:{port}/"))
        .header("x-amz-target", "Kinesis_20131202.ListStreams")
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-date", "20260101T000000Z")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    req.headers_mut().insert(
        "authorization",
        SIGNED_HEADERS
            .lines()
            .find_map(|l| l.strip_prefix("authorization: "))
            .unwrap()
            .parse()
            .unwrap(),
    );
    let resp = sender.send_request(req).await.expect("HTTP/2 request");
    assert_eq!(resp.version(), hyper::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-amzn-requestid"));
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(
        v["StreamNames"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "secure"),
        "{v}"
    );

    let (alpn, answer) = list_streams_tls_http1(port, &cert.pem)
        .await
        .expect("HTTP/1.1 over TLS");
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("secure"), "{answer}");
}

/// (3) A plain-HTTP request on the TLS port gets no HTTP answer and its connection is closed;
/// the listener goes on serving TLS.
async fn plain_tcp_rejected(dev: &TlsDev, cert: &TestCert) {
    let port = dev.kinesis_base;
    for _ in 0..3 {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(list_streams_http1(port).as_bytes()).unwrap();
        let mut out = Vec::new();
        let r = s.read_to_end(&mut out);
        if let Err(e) = &r {
            assert!(
                !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "the server kept a failed handshake's connection open: {e}"
            );
        }
        assert!(
            !out.starts_with(b"HTTP/"),
            "plain HTTP answered on the TLS port: {}",
            String::from_utf8_lossy(&out)
        );
    }
    let (_, answer) = list_streams_tls_http1(port, &cert.pem)
        .await
        .expect("TLS after a plain-TCP request");
    assert_eq!(status_of(&answer), 200, "{answer}");
    // And the SDK still gets through.
    let k = sdk_client(&format!("https://localhost:{port}"), trusting(&cert.pem));
    k.list_streams().send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinesis_api_over_tls_against_braid_dev() {
    let cert = test_cert();
    let dev = TlsDev::start(&cert).await;
    sdk_round_trip(&dev, &cert).await;
    alpn(&dev, &cert).await;
    plain_tcp_rejected(&dev, &cert).await;
    assert!(
        dev.log().contains("TLS handshake failed"),
        "no debug log of the failed handshake:\n{}",
        dev.log()
    );
}

/// In process, with the fake backend: TLS serving works and `serve_tls_with_keys` returns
/// once its shutdown signal fires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_tls_stops_on_shutdown() {
    let cert = test_cert();
    let config =
        braid_gateway::kinesis::tls::server_config(&cert.cert, &cert.key).expect("TLS config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(braid_gateway::kinesis::serve_tls_with_keys(
        listener,
        common::fake::Fake::default(),
        Vec::new(),
        config,
        async move {
            let _ = rx.await;
        },
    ));
    let (alpn, answer) = list_streams_tls_http1(port, &cert.pem).await.unwrap();
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(status_of(&answer), 200, "{answer}");
    // A client that trusts another certificate fails its handshake; the server goes on.
    let other = test_cert();
    assert!(tls_connect(port, &other.pem, &[b"h2"]).await.is_err());
    let (_, answer) = list_streams_tls_http1(port, &cert.pem).await.unwrap();
    assert_eq!(status_of(&answer), 200, "{answer}");

    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("serve_tls_with_keys did not return after shutdown")
        .unwrap()
        .unwrap();
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err());
}
