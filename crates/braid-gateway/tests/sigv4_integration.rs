//! SigV4 verification end to end: `braid dev --kinesis-access-key AKID:SECRET` and
//! aws-sdk-kinesis (whose signer is AWS's own) with the right key, a wrong secret, an unknown
//! access key id, and a clock ten minutes off the node's.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_kinesis::config::retry::RetryConfig;
use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kinesis::error::ProvideErrorMetadata;
use aws_sdk_kinesis::primitives::{DateTime, DateTimeFormat};
use aws_sdk_kinesis::Client;

fn client(endpoint: &str, akid: &str, secret: &str) -> Client {
    let conf = aws_sdk_kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(akid, secret, None, None, "static"))
        .build();
    Client::from_conf(conf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv4_verified_against_configured_keys() {
    let dev = common::BraidDev::start_with(&[
        "--kinesis-access-key",
        "AKID:SECRET",
        "--kinesis-access-key",
        "AKID2:other/secret+2",
    ]);
    let good = client(&dev.endpoint(0), "AKID", "SECRET");
    // The right credentials: ListStreams answers (retried until the cluster has a leader).
    let mut last = String::new();
    let mut ok = false;
    for _ in 0..300 {
        match good.list_streams().send().await {
            Ok(r) => {
                assert!(r.stream_names().is_empty());
                ok = true;
                break;
            }
            Err(e) => {
                let code = e.as_service_error().and_then(|s| s.code()).unwrap_or("");
                assert_ne!(code, "InvalidSignatureException", "{e:?}");
                assert_ne!(code, "UnrecognizedClientException", "{e:?}");
                last = format!("{e:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert!(ok, "ListStreams never succeeded: {last}\n{}", dev.log());

    // Signed writes (a body) and the second key, on another node.
    let second = client(&dev.endpoint(1), "AKID2", "other/secret+2");
    second
        .create_stream()
        .stream_name("signed")
        .shard_count(1)
        .send()
        .await
        .unwrap();
    let names = good.list_streams().send().await.unwrap();
    assert_eq!(names.stream_names(), ["signed"]);

    // A wrong secret.
    let wrong = client(&dev.endpoint(0), "AKID", "NOT-THE-SECRET");
    let e = wrong.list_streams().send().await.unwrap_err();
    let se = e.as_service_error().expect("service error");
    assert_eq!(se.code(), Some("InvalidSignatureException"), "{e:?}");
    assert_eq!(
        se.message(),
        Some("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
    );

    // An unknown access key id.
    let unknown = client(&dev.endpoint(2), "NOBODY", "SECRET");
    let e = unknown.list_streams().send().await.unwrap_err();
    let se = e.as_service_error().expect("service error");
    assert_eq!(se.code(), Some("UnrecognizedClientException"), "{e:?}");
    assert_eq!(
        se.message(),
        Some("The security token included in the request is invalid.")
    );

    // No signature at all.
    let (status, body) = {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", dev.kinesis_base)).unwrap();
        s.write_all(b"POST / HTTP/1.1\r\nhost: x\r\nx-amz-target: Kinesis_20131202.ListStreams\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        (out.split_whitespace().nth(1).unwrap_or("").to_string(), out)
    };
    assert_eq!(status, "400");
    assert!(
        body.contains("MissingAuthenticationTokenException"),
        "{body}"
    );
}

/// A reverse proxy to `upstream` that passes requests through unchanged and moves every
/// response's `Date` header `offset_secs` away from the real time, counting the requests.
struct SkewingProxy {
    endpoint: String,
    requests: Arc<AtomicUsize>,
}

impl SkewingProxy {
    async fn start(upstream: String, offset_secs: i64) -> SkewingProxy {
        use axum::body::{Body, Bytes};
        use http_body_util::{BodyExt, Full};
        use hyper_util::client::legacy::Client as HttpClient;
        use hyper_util::rt::TokioExecutor;

        let http = HttpClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let (http, upstream, counter) = (http.clone(), upstream.clone(), counter.clone());
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                let (mut parts, body) = req.into_parts();
                let body = body.collect().await.unwrap().to_bytes();
                let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                parts.uri = format!("{upstream}{path}").parse().unwrap();
                // The `host` header (signed) is kept as the client sent it.
                let resp = http
                    .request(hyper::Request::from_parts(parts, Full::new(body)))
                    .await
                    .unwrap();
                let (mut parts, body) = resp.into_parts();
                let body = body.collect().await.unwrap().to_bytes();
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let date = DateTime::from_secs(now as i64 + offset_secs)
                    .fmt(DateTimeFormat::HttpDate)
                    .unwrap();
                parts
                    .headers
                    .insert(axum::http::header::DATE, date.parse().unwrap());
                axum::response::Response::from_parts(parts, Body::from(body))
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        SkewingProxy { endpoint, requests }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn client_with_retries(endpoint: &str, retry: RetryConfig) -> Client {
    let conf = aws_sdk_kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("AKID", "SECRET", None, None, "static"))
        .retry_config(retry)
        .build();
    Client::from_conf(conf)
}

/// Epoch seconds of `YYYYMMDD'T'HHMMSS'Z'`.
fn amz_secs(t: &str) -> i64 {
    let iso = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &t[0..4],
        &t[4..6],
        &t[6..8],
        &t[9..11],
        &t[11..13],
        &t[13..15]
    );
    DateTime::from_str(&iso, DateTimeFormat::DateTime)
        .unwrap()
        .secs()
}

/// The InvalidSignatureException of a call, checked to be HTTP 400 with a message matching
/// `pattern` (whose three groups are the request's time, the bound it broke and the node's
/// time): (request time, bound, node time) in epoch seconds.
fn clock_error<E: ProvideErrorMetadata + std::fmt::Debug>(
    e: &aws_sdk_kinesis::error::SdkError<E, aws_sdk_kinesis::config::http::HttpResponse>,
    pattern: &str,
) -> (i64, i64, i64) {
    let status = e.raw_response().map(|r| r.status().as_u16());
    let se = e.as_service_error().expect("a service error");
    assert_eq!(se.code(), Some("InvalidSignatureException"), "{e:?}");
    assert_eq!(status, Some(400), "{e:?}");
    let message = se.message().unwrap_or_default();
    let caps = regex::Regex::new(pattern)
        .unwrap()
        .captures(message)
        .unwrap_or_else(|| panic!("{message:?} does not match {pattern}"));
    (amz_secs(&caps[1]), amz_secs(&caps[2]), amz_secs(&caps[3]))
}

/// A request signed with a clock ten minutes behind the node's is refused with AWS's
/// InvalidSignatureException "Signature expired: ..." (and ten minutes ahead, "Signature not
/// yet current: ...").
///
/// How the signing clock is moved: aws-sdk-kinesis signs at its time source's `now()` plus the
/// clock skew it has measured, and it measures the skew from every response's `Date` header
/// (aws-runtime's `ServiceClockSkewInterceptor`, kept per client across operations). Setting
/// the SDK's time source needs `aws_smithy_async::time::StaticTimeSource`, a crate that is not
/// a dependency of these tests, so instead the node's `Date` is moved: behind a proxy that
/// reports the time ten minutes back, the SDK's first call (signed with the true time) succeeds
/// and teaches it a -10 min skew, and its next calls are signed ten minutes in the past, by
/// AWS's own signer, exactly as from a client whose clock is ten minutes slow.
///
/// The SDK retries clock-skew errors (aws-runtime 1.10.2, `service_clock_skew.rs`):
/// InvalidSignatureException, like SignatureDoesNotMatch or RequestTimeTooSkewed, is retried
/// when the skew measured from that response is over 4 minutes, each attempt signed with the
/// newly measured skew. Against a node whose `Date` is true, a client whose own clock is ten
/// minutes off therefore fails its first attempt and, by that code, succeeds on the retry (with
/// retries disabled the call fails, but the client keeps the skew for its next call); that
/// case needs a settable time source and is not run here. What this test observes: the proxy
/// keeps reporting the false time, so every attempt fails the same way, one request with
/// `RetryConfig::disabled()` and three (the standard mode's attempts) without.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv4_clock_skew_is_refused() {
    let dev = common::BraidDev::start_with(&["--kinesis-access-key", "AKID:SECRET"]);
    let direct = client(&dev.endpoint(0), "AKID", "SECRET");
    let mut ready = false;
    let mut last = String::new();
    for _ in 0..300 {
        match direct.list_streams().send().await {
            Ok(_) => {
                ready = true;
                break;
            }
            Err(e) => {
                last = format!("{e:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert!(ready, "ListStreams never succeeded: {last}\n{}", dev.log());

    let expired = r"^Signature expired: (\d{8}T\d{6}Z) is now earlier than (\d{8}T\d{6}Z) \((\d{8}T\d{6}Z) - 5 min\.\)$";
    let behind = SkewingProxy::start(dev.endpoint(0), -600).await;

    // Retries off: the first call teaches the SDK the skew, the second is refused.
    let sdk = client_with_retries(&behind.endpoint, RetryConfig::disabled());
    sdk.list_streams().send().await.unwrap();
    let e = sdk.list_streams().send().await.unwrap_err();
    let (signed_at, bound, node_now) = clock_error(&e, expired);
    assert!(
        (595..=610).contains(&(node_now - signed_at)),
        "signed {signed_at}, node {node_now}"
    );
    assert_eq!(bound, node_now - 300);
    assert_eq!(behind.requests(), 2);

    // Standard retries: the SDK retries the clock-skew error with the skew it measured (the
    // proxy's), and gives up after three attempts.
    let sdk = client_with_retries(&behind.endpoint, RetryConfig::standard());
    sdk.list_streams().send().await.unwrap();
    let before = behind.requests();
    let e = sdk.list_streams().send().await.unwrap_err();
    clock_error(&e, expired);
    assert_eq!(behind.requests() - before, 3);

    // Ten minutes ahead.
    let ahead = SkewingProxy::start(dev.endpoint(1), 600).await;
    let sdk = client_with_retries(&ahead.endpoint, RetryConfig::disabled());
    sdk.list_streams().send().await.unwrap();
    let e = sdk.list_streams().send().await.unwrap_err();
    let (signed_at, bound, node_now) = clock_error(
        &e,
        r"^Signature not yet current: (\d{8}T\d{6}Z) is still later than (\d{8}T\d{6}Z) \((\d{8}T\d{6}Z) \+ 5 min\.\)$",
    );
    assert!(
        (590..=605).contains(&(signed_at - node_now)),
        "signed {signed_at}, node {node_now}"
    );
    assert_eq!(bound, node_now + 300);
}
