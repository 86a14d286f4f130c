//! SigV4 verification end to end: `braid dev --kinesis-access-key AKID:SECRET` and
//! aws-sdk-kinesis (whose signer is AWS's own) with the right key, a wrong secret and an
//! unknown access key id.

mod common;

use std::time::Duration;

use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kinesis::error::ProvideErrorMetadata;
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
