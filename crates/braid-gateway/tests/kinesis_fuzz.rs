//! Random, structured and truncated bodies with random `X-Amz-Target` and `Content-Type`
//! headers, thrown at the Kinesis router in-process over the fake backend: never a panic,
//! never a 5xx, always a well-formed AWS answer (a map in the request's format, with
//! `__type` and `message` on errors) carrying `x-amzn-RequestId`.

mod common;

use axum::body::Body;
use axum::http::Request;
use braid_gateway::kinesis::ops::{IMPLEMENTED, UNSUPPORTED};
use common::fake::Fake;
use proptest::prelude::*;
use serde_json::Value as J;

const MEMBERS: &[&str] = &[
    "StreamName",
    "StreamARN",
    "ShardCount",
    "Limit",
    "ExclusiveStartShardId",
    "ExclusiveStartStreamName",
    "NextToken",
    "MaxResults",
    "ShardFilter",
    "Type",
    "Timestamp",
    "Data",
    "PartitionKey",
    "ExplicitHashKey",
    "SequenceNumberForOrdering",
    "Records",
    "ShardId",
    "ShardIteratorType",
    "StartingSequenceNumber",
    "ShardIterator",
    "RetentionPeriodHours",
    "Tags",
    "TagKeys",
    "ResourceARN",
    "Policy",
    "ShardLevelMetrics",
    "MaxRecordSizeInKiB",
    "StreamModeDetails",
    "StreamMode",
    "MinimumThroughputBillingCommitment",
    "Status",
    "DryRun",
    "EnforceConsumerDeletion",
    "StreamCreationTimestamp",
    "ExclusiveStartTagKey",
];

fn target() -> impl Strategy<Value = String> {
    let known: Vec<String> = IMPLEMENTED
        .iter()
        .copied()
        .chain(UNSUPPORTED.iter().map(|(o, _)| *o))
        .map(|o| format!("Kinesis_20131202.{o}"))
        .collect();
    prop_oneof![
        8 => proptest::sample::select(known),
        1 => "[ -~]{0,40}",
        1 => "Kinesis_20131202\\.[A-Za-z]{0,20}",
    ]
}

fn content_type() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        4 => Just(Some("application/x-amz-json-1.1".to_string())),
        4 => Just(Some("application/x-amz-cbor-1.1".to_string())),
        1 => Just(None),
        1 => Just(Some("application/json".to_string())),
        1 => "[ -~]{0,30}".prop_map(Some),
    ]
}

/// JSON values built from Kinesis member names and plausible (and implausible) leaves.
fn json_value() -> impl Strategy<Value = J> {
    let leaf = prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::Bool),
        any::<i64>().prop_map(J::from),
        (-1e12f64..1e12).prop_map(J::from),
        "[a-zA-Z0-9_.-]{0,12}".prop_map(J::String),
        "[ -~]{0,40}".prop_map(J::String),
        proptest::sample::select(vec![
            "orders",
            "TRIM_HORIZON",
            "AT_TIMESTAMP",
            "LATEST",
            "ALL",
            "ENABLED",
            "PROVISIONED",
            "ON_DEMAND",
            "AFTER_SHARD_ID",
            "AT_LATEST",
            "shardId-000000000000",
            "AAAA",
            "aGVsbG8=",
            "arn:aws:kinesis:us-east-1:000000000000:stream/orders",
            "orders/1",
            "340282366920938463463374607431768211455",
            "340282366920938463463374607431768211456",
            "missing",
        ])
        .prop_map(|s| J::String(s.to_string())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(J::Array),
            proptest::collection::vec((proptest::sample::select(MEMBERS.to_vec()), inner), 0..8)
                .prop_map(|kv| J::Object(
                    kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
                )),
        ]
    })
}

fn to_cbor(v: &J, blobs: bool) -> ciborium::Value {
    use ciborium::Value as C;
    match v {
        J::Null => C::Null,
        J::Bool(b) => C::Bool(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) if i % 7 == 0 => C::Tag(1, Box::new(C::Integer(i.into()))),
            Some(i) => C::Integer(i.into()),
            None => C::Float(n.as_f64().unwrap_or(0.0)),
        },
        J::String(s) if blobs && s.len() % 3 == 0 => C::Bytes(s.as_bytes().to_vec()),
        J::String(s) => C::Text(s.clone()),
        J::Array(a) => C::Array(a.iter().map(|x| to_cbor(x, blobs)).collect()),
        J::Object(o) => C::Map(
            o.iter()
                .map(|(k, v)| (C::Text(k.clone()), to_cbor(v, blobs)))
                .collect(),
        ),
    }
}

/// Well-formed requests to start mutations from.
fn seeds() -> Vec<(&'static str, J)> {
    use serde_json::json;
    vec![
        (
            "PutRecord",
            json!({"StreamName": "orders", "Data": "aGVsbG8=", "PartitionKey": "k"}),
        ),
        (
            "PutRecords",
            json!({"StreamName": "orders", "Records": [{"Data": "aGk=", "PartitionKey": "a"}]}),
        ),
        (
            "GetShardIterator",
            json!({"StreamName": "orders", "ShardId": "shardId-000000000000", "ShardIteratorType": "AT_TIMESTAMP", "Timestamp": 1602553946.447}),
        ),
        ("GetRecords", json!({"ShardIterator": "AAAA", "Limit": 5})),
        (
            "ListShards",
            json!({"StreamName": "orders", "ShardFilter": {"Type": "AT_LATEST"}}),
        ),
        (
            "CreateStream",
            json!({"StreamName": "orders", "ShardCount": 2, "Tags": {"a": "b"}}),
        ),
        (
            "UpdateAccountSettings",
            json!({"MinimumThroughputBillingCommitment": {"Status": "ENABLED"}}),
        ),
        (
            "AddTagsToStream",
            json!({"StreamName": "orders", "Tags": {"a": "b"}}),
        ),
    ]
}

fn check(
    rt: &tokio::runtime::Runtime,
    fake: &Fake,
    target: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Result<(), TestCaseError> {
    let mut b = Request::builder()
        .method("POST")
        .uri("/")
        .header("x-amz-date", "20260101T000000Z")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=00",
        );
    if let Ok(v) = axum::http::HeaderValue::from_str(target) {
        b = b.header("x-amz-target", v);
    }
    if let Some(ct) = content_type {
        if let Ok(v) = axum::http::HeaderValue::from_str(ct) {
            b = b.header("content-type", v);
        }
    }
    let req = b.body(Body::from(body)).unwrap();
    let (status, headers, bytes) = rt.block_on(async {
        let r = fake.send(req).await;
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let bytes = axum::body::to_bytes(r.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, headers, bytes)
    });
    prop_assert!(
        headers
            .get("x-amzn-requestid")
            .map(|v| v.len() == 36)
            .unwrap_or(false),
        "no request id"
    );
    prop_assert!(
        status == 200 || (400..500).contains(&status),
        "status {status}: {}",
        String::from_utf8_lossy(&bytes)
    );
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let map: Vec<(String, String)> = if ct == "application/x-amz-cbor-1.1" {
        let v: ciborium::Value = ciborium::de::from_reader(&bytes[..])
            .map_err(|e| TestCaseError::fail(format!("bad CBOR answer: {e}")))?;
        let ciborium::Value::Map(m) = v else {
            return Err(TestCaseError::fail("CBOR answer is not a map"));
        };
        m.into_iter()
            .map(|(k, v)| {
                (
                    k.as_text().unwrap_or("").to_string(),
                    v.as_text().unwrap_or("").to_string(),
                )
            })
            .collect()
    } else {
        prop_assert_eq!(ct, "application/x-amz-json-1.1");
        let v: J = serde_json::from_slice(&bytes)
            .map_err(|e| TestCaseError::fail(format!("bad JSON answer: {e}")))?;
        let J::Object(o) = v else {
            return Err(TestCaseError::fail("JSON answer is not an object"));
        };
        o.into_iter()
            .map(|(k, v)| (k, v.as_str().unwrap_or("").to_string()))
            .collect()
    };
    if status != 200 {
        let get = |k: &str| map.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone());
        let t = get("__type").unwrap_or_default();
        prop_assert!(
            !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric()),
            "bad __type {t:?}"
        );
        prop_assert!(get("message").is_some(), "no message");
    }
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn random_bytes(target in target(), ct in content_type(), body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let rt = runtime();
        check(&rt, &Fake::default(), &target, ct.as_deref(), body)?;
    }

    #[test]
    fn structured_bodies(target in target(), v in json_value(), cbor in any::<bool>(), blobs in any::<bool>(), cut in proptest::option::of(any::<prop::sample::Index>())) {
        let rt = runtime();
        let (ct, mut body) = if cbor {
            let mut out = Vec::new();
            ciborium::ser::into_writer(&to_cbor(&v, blobs), &mut out).unwrap();
            ("application/x-amz-cbor-1.1", out)
        } else {
            ("application/x-amz-json-1.1", serde_json::to_vec(&v).unwrap())
        };
        if let Some(i) = cut {
            let n = i.index(body.len() + 1);
            body.truncate(n);
        }
        check(&rt, &Fake::default(), &target, Some(ct), body)?;
    }

    #[test]
    fn mutated_valid_requests(seed in proptest::sample::select(seeds()), cbor in any::<bool>(), cut in any::<prop::sample::Index>(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4)) {
        let rt = runtime();
        let (op, v) = seed;
        let (ct, mut body) = if cbor {
            let mut out = Vec::new();
            ciborium::ser::into_writer(&to_cbor(&v, true), &mut out).unwrap();
            ("application/x-amz-cbor-1.1", out)
        } else {
            ("application/x-amz-json-1.1", serde_json::to_vec(&v).unwrap())
        };
        // The unmutated request succeeds.
        check(&rt, &Fake::default(), &format!("Kinesis_20131202.{op}"), Some(ct), body.clone())?;
        for (i, b) in flips {
            let n = body.len();
            if n > 0 {
                body[i.index(n)] = b;
            }
        }
        let n = cut.index(body.len() + 1);
        body.truncate(n);
        check(&rt, &Fake::default(), &format!("Kinesis_20131202.{op}"), Some(ct), body)?;
    }
}

#[test]
fn deep_nesting_and_huge_claims_are_refused_cleanly() {
    let rt = runtime();
    let fake = Fake::default();
    // 10,000 nested arrays/maps: the decoders' recursion limits answer SerializationException.
    let deep_json = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let mut deep_cbor = vec![0x81u8; 10_000];
    deep_cbor.push(0xa0);
    // A CBOR byte string claiming 2^62 bytes, and a map claiming 2^32 entries.
    let huge_bytes = vec![
        0xa1, 0x64, b'D', b'a', b't', b'a', 0x5b, 0x40, 0, 0, 0, 0, 0, 0, 0,
    ];
    let huge_map = vec![0xba, 0xff, 0xff, 0xff, 0xff];
    for (ct, body) in [
        ("application/x-amz-json-1.1", deep_json.into_bytes()),
        ("application/x-amz-cbor-1.1", deep_cbor),
        ("application/x-amz-cbor-1.1", huge_bytes),
        ("application/x-amz-cbor-1.1", huge_map),
    ] {
        check(&rt, &fake, "Kinesis_20131202.PutRecord", Some(ct), body).unwrap();
    }
}
