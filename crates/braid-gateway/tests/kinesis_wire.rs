//! The Kinesis wire layer in-process, over a fake backend: JSON and CBOR decoding of every
//! implemented request and encoding of every response, timestamps in both formats, the error
//! shapes, and HTTP/1.1 plus h2c on a real socket.

mod common;

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{HeaderMap, Request};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use braid_control::StreamOptions;
use braid_proto::v1;
use ciborium::Value as C;
use common::fake::{Call, Fake, ARN, ARRIVAL_MS, CREATED_MS};
use serde_json::{json, Value as J};

const JSON: &str = "application/x-amz-json-1.1";
const CBOR: &str = "application/x-amz-cbor-1.1";

fn request(op: &str, content_type: &str, body: Vec<u8>) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri("/")
        .header("x-amz-target", format!("Kinesis_20131202.{op}"))
        .header("content-type", content_type)
        .header("x-amz-date", "20260101T000000Z")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=0f",
        )
        .body(Body::from(body))
        .unwrap()
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> J {
        assert_eq!(self.headers["content-type"], JSON);
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    fn cbor(&self) -> C {
        assert_eq!(self.headers["content-type"], CBOR);
        ciborium::de::from_reader(&self.body[..]).expect("CBOR body")
    }
    fn request_id(&self) -> &str {
        self.headers["x-amzn-requestid"].to_str().unwrap()
    }
}

async fn send(fake: &Fake, req: Request<Body>) -> Answer {
    let r = fake.send(req).await;
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = axum::body::to_bytes(r.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    let a = Answer {
        status,
        headers,
        body,
    };
    assert_eq!(
        a.request_id().len(),
        36,
        "every answer carries x-amzn-RequestId"
    );
    a
}

async fn json_call(fake: &Fake, op: &str, body: J) -> (u16, J) {
    let a = send(fake, request(op, JSON, serde_json::to_vec(&body).unwrap())).await;
    (a.status, a.json())
}

fn cbor_bytes(v: &C) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(v, &mut out).unwrap();
    out
}

async fn cbor_call(fake: &Fake, op: &str, body: C) -> (u16, C) {
    let a = send(fake, request(op, CBOR, cbor_bytes(&body))).await;
    (a.status, a.cbor())
}

fn cmap(pairs: Vec<(&str, C)>) -> C {
    C::Map(
        pairs
            .into_iter()
            .map(|(k, v)| (C::Text(k.into()), v))
            .collect(),
    )
}

fn cget<'a>(v: &'a C, key: &str) -> &'a C {
    match v {
        C::Map(m) => m
            .iter()
            .find(|(k, _)| k.as_text() == Some(key))
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("no {key} in {v:?}")),
        _ => panic!("not a map: {v:?}"),
    }
}

fn text(s: &str) -> C {
    C::Text(s.into())
}

fn tag1(ms: i64) -> C {
    C::Tag(1, Box::new(C::Integer(ms.into())))
}

fn assert_error(status: u16, body: &J, want_status: u16, want_type: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["__type"], want_type, "{body}");
    assert!(body["message"].is_string(), "{body}");
}

// --- streams ------------------------------------------------------------------------------

#[tokio::test]
async fn create_and_delete_stream() {
    let fake = Fake::default();
    let (s, body) = json_call(
        &fake,
        "CreateStream",
        json!({"StreamName": "orders", "ShardCount": 2, "Tags": {"team": "core"}, "MaxRecordSizeInKiB": 2048,
               "StreamModeDetails": {"StreamMode": "PROVISIONED"}, "Unknown": [1, 2]}),
    )
    .await;
    assert_eq!((s, body), (200, json!({})));
    assert_eq!(
        fake.last(),
        Some(Call::CreateStream(
            v1::CreateStreamRequest {
                stream_name: "orders".into(),
                shard_count: 2
            },
            StreamOptions {
                tags: BTreeMap::from([("team".into(), "core".into())]),
                max_record_size_kib: Some(2048)
            }
        ))
    );
    let (s, body) = cbor_call(
        &fake,
        "CreateStream",
        cmap(vec![
            ("StreamName", text("c")),
            ("ShardCount", C::Integer(1.into())),
        ]),
    )
    .await;
    assert_eq!((s, body), (200, C::Map(vec![])));

    let (s, _) = json_call(
        &fake,
        "DeleteStream",
        json!({"StreamARN": ARN, "EnforceConsumerDeletion": true}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        fake.last(),
        Some(Call::DeleteStream(v1::DeleteStreamRequest {
            stream_name: String::new(),
            stream_arn: ARN.into(),
            enforce_consumer_deletion: true
        }))
    );
}

#[tokio::test]
async fn create_stream_refuses_what_braid_cannot_do() {
    let fake = Fake::default();
    for body in [
        json!({"StreamName": "s", "StreamModeDetails": {"StreamMode": "ON_DEMAND"}}),
        json!({"StreamName": "s", "ShardCount": 1, "WarmThroughputMiBps": 10}),
        json!({"StreamName": "s", "ShardCount": 1, "RecordDistributionStrategy": "AUTO"}),
        json!({"StreamName": "s"}),
    ] {
        let (s, e) = json_call(&fake, "CreateStream", body.clone()).await;
        assert_error(s, &e, 400, "InvalidArgumentException");
    }
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn describe_stream_json_and_cbor() {
    let fake = Fake::default();
    let (s, body) = json_call(
        &fake,
        "DescribeStream",
        json!({"StreamName": "orders", "Limit": 2, "ExclusiveStartShardId": "shardId-000000000000"}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        fake.calls()[0],
        Call::DescribeStream(v1::DescribeStreamRequest {
            stream_name: "orders".into(),
            stream_arn: String::new(),
            limit: 2,
            exclusive_start_shard_id: "shardId-000000000000".into()
        })
    );
    let d = &body["StreamDescription"];
    assert_eq!(d["StreamName"], "orders");
    assert_eq!(d["StreamARN"], ARN);
    assert_eq!(d["StreamStatus"], "ACTIVE");
    assert_eq!(d["StreamModeDetails"], json!({"StreamMode": "PROVISIONED"}));
    assert_eq!(d["HasMoreShards"], false);
    assert_eq!(d["RetentionPeriodHours"], 24);
    assert_eq!(d["StreamCreationTimestamp"], json!(1_600_000_000.123));
    assert_eq!(
        d["EnhancedMonitoring"],
        json!([{"ShardLevelMetrics": ["IncomingBytes"]}])
    );
    assert_eq!(d["EncryptionType"], "NONE");
    let shards = d["Shards"].as_array().unwrap();
    assert_eq!(shards.len(), 2);
    assert_eq!(shards[0]["ShardId"], "shardId-000000000000");
    assert!(shards[0].get("ParentShardId").is_none());
    assert!(shards[0].get("AdjacentParentShardId").is_none());
    assert_eq!(
        shards[0]["SequenceNumberRange"]["EndingSequenceNumber"],
        "49600000000000000000000000000000000000000000000000000099"
    );
    assert_eq!(shards[1]["AdjacentParentShardId"], "shardId-000000000000");
    assert!(shards[1]["SequenceNumberRange"]
        .get("EndingSequenceNumber")
        .is_none());
    assert_eq!(
        shards[1]["HashKeyRange"]["EndingHashKey"],
        u128::MAX.to_string()
    );

    let (s, body) = cbor_call(
        &fake,
        "DescribeStream",
        cmap(vec![("StreamName", text("orders"))]),
    )
    .await;
    assert_eq!(s, 200);
    let d = cget(&body, "StreamDescription");
    assert_eq!(cget(d, "StreamCreationTimestamp"), &tag1(CREATED_MS));
    assert_eq!(cget(d, "HasMoreShards"), &C::Bool(false));
    assert_eq!(cget(d, "RetentionPeriodHours"), &C::Integer(24.into()));
}

#[tokio::test]
async fn describe_stream_summary_shape() {
    let fake = Fake::default();
    let (s, body) = json_call(&fake, "DescribeStreamSummary", json!({"StreamARN": ARN})).await;
    assert_eq!(s, 200);
    assert_eq!(
        fake.calls()[0],
        Call::DescribeStreamSummary(v1::DescribeStreamSummaryRequest {
            stream_name: String::new(),
            stream_arn: ARN.into()
        })
    );
    let d = &body["StreamDescriptionSummary"];
    for (k, v) in [
        ("OpenShardCount", json!(1)),
        ("ConsumerCount", json!(0)),
        ("MaxRecordSizeInKiB", json!(2048)),
        ("EncryptionType", json!("NONE")),
        ("StreamCreationTimestamp", json!(1_600_000_000.123)),
    ] {
        assert_eq!(d[k], v, "{k}");
    }
    assert!(d.get("Shards").is_none());
}

#[tokio::test]
async fn list_streams_with_next_token() {
    let fake = Fake::default();
    let (s, body) = json_call(&fake, "ListStreams", json!({"Limit": 2})).await;
    assert_eq!(s, 200);
    assert_eq!(body["StreamNames"], json!(["a", "b"]));
    assert_eq!(body["HasMoreStreams"], true);
    assert_eq!(
        body["StreamSummaries"][1]["StreamARN"],
        "arn:aws:kinesis:us-east-1:000000000000:stream/b"
    );
    assert_eq!(
        body["StreamSummaries"][0]["StreamModeDetails"]["StreamMode"],
        "PROVISIONED"
    );
    assert_eq!(
        body["StreamSummaries"][0]["StreamCreationTimestamp"],
        json!(1_600_000_000.123)
    );
    let token = body["NextToken"].as_str().unwrap().to_string();
    let (s, _) = json_call(
        &fake,
        "ListStreams",
        json!({"NextToken": token, "Limit": 2}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        fake.last(),
        Some(Call::ListStreams(v1::ListStreamsRequest {
            limit: 2,
            exclusive_start_stream_name: "b".into()
        }))
    );
    let (s, e) = json_call(&fake, "ListStreams", json!({"NextToken": "garbage"})).await;
    assert_error(s, &e, 400, "InvalidArgumentException");
    let (s, e) = json_call(
        &fake,
        "ListStreams",
        json!({"NextToken": token, "ExclusiveStartStreamName": "a"}),
    )
    .await;
    assert_error(s, &e, 400, "InvalidArgumentException");
}

#[tokio::test]
async fn list_shards_tokens_and_filters() {
    let fake = Fake::default();
    let (s, body) = json_call(
        &fake,
        "ListShards",
        json!({"StreamName": "orders", "MaxResults": 5}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(body["NextToken"], "orders/1");
    assert_eq!(body["Shards"].as_array().unwrap().len(), 2);
    let (s, _) = json_call(&fake, "ListShards", json!({"NextToken": "orders/1"})).await;
    assert_eq!(s, 200);
    assert_eq!(
        fake.last(),
        Some(Call::ListShards(v1::ListShardsRequest {
            next_token: "orders/1".into(),
            ..Default::default()
        }))
    );
    // AT_LATEST lists open shards only (shard 0 of the fake is closed).
    let (_, body) = json_call(
        &fake,
        "ListShards",
        json!({"StreamName": "orders", "ShardFilter": {"Type": "AT_LATEST"}}),
    )
    .await;
    assert_eq!(body["Shards"].as_array().unwrap().len(), 1);
    assert_eq!(body["Shards"][0]["ShardId"], "shardId-000000000001");
    let (_, _) = json_call(
        &fake,
        "ListShards",
        json!({"StreamName": "orders", "ShardFilter": {"Type": "AFTER_SHARD_ID", "ShardId": "shardId-000000000004"}}),
    )
    .await;
    match fake.last() {
        Some(Call::ListShards(r)) => assert_eq!(r.exclusive_start_shard_id, "shardId-000000000004"),
        other => panic!("{other:?}"),
    }
    for filter in [
        json!({"Type": "AFTER_SHARD_ID"}),
        json!({"Type": "AT_TIMESTAMP"}),
    ] {
        let (s, e) = json_call(
            &fake,
            "ListShards",
            json!({"StreamName": "orders", "ShardFilter": filter}),
        )
        .await;
        assert_error(s, &e, 400, "InvalidArgumentException");
    }
    // Timestamps in the filter, JSON seconds and CBOR tag-1 millis.
    let (s, _) = json_call(
        &fake,
        "ListShards",
        json!({"StreamName": "orders", "ShardFilter": {"Type": "FROM_TIMESTAMP", "Timestamp": 1_600_000_000.5}}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, body) = cbor_call(
        &fake,
        "ListShards",
        cmap(vec![
            ("StreamName", text("orders")),
            (
                "ShardFilter",
                cmap(vec![
                    ("Type", text("AT_TIMESTAMP")),
                    ("Timestamp", tag1(CREATED_MS)),
                ]),
            ),
        ]),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(cget(&body, "NextToken"), &text("orders/1"));
    // StreamCreationTimestamp must name this incarnation of the stream.
    let (s, _) = json_call(
        &fake,
        "ListShards",
        json!({"StreamName": "orders", "StreamCreationTimestamp": 1_600_000_000.123}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, e) = json_call(
        &fake,
        "ListShards",
        json!({"StreamName": "orders", "StreamCreationTimestamp": 1_500_000_000}),
    )
    .await;
    assert_error(s, &e, 400, "ResourceNotFoundException");
}

// --- records ------------------------------------------------------------------------------

#[tokio::test]
async fn put_record_json_and_cbor() {
    let fake = Fake::default();
    let (s, body) = json_call(
        &fake,
        "PutRecord",
        json!({"StreamName": "orders", "Data": "AAH/", "PartitionKey": "k", "ExplicitHashKey": "42",
               "SequenceNumberForOrdering": "1"}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        body,
        json!({"ShardId": "shardId-000000000001",
               "SequenceNumber": "49600000000000000000000000000000000000000000000000000007",
               "EncryptionType": "NONE"})
    );
    assert_eq!(
        fake.last(),
        Some(Call::PutRecord(v1::PutRecordRequest {
            stream_name: "orders".into(),
            stream_arn: String::new(),
            data: vec![0, 1, 255].into(),
            partition_key: "k".into(),
            explicit_hash_key: "42".into(),
            sequence_number_for_ordering: "1".into()
        }))
    );
    let all: Vec<u8> = (0..=255).collect();
    let (s, body) = cbor_call(
        &fake,
        "PutRecord",
        cmap(vec![
            ("StreamARN", text(ARN)),
            ("Data", C::Bytes(all.clone())),
            ("PartitionKey", text("k")),
        ]),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(cget(&body, "ShardId"), &text("shardId-000000000001"));
    match fake.last() {
        Some(Call::PutRecord(r)) => {
            assert_eq!(r.data, all);
            assert_eq!(r.stream_arn, ARN);
        }
        other => panic!("{other:?}"),
    }
    // Empty data is a valid record; an unpadded base64 blob is accepted too.
    let (s, _) = json_call(
        &fake,
        "PutRecord",
        json!({"StreamName": "o", "Data": "", "PartitionKey": "k"}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = json_call(
        &fake,
        "PutRecord",
        json!({"StreamName": "o", "Data": "AAE", "PartitionKey": "k"}),
    )
    .await;
    assert_eq!(s, 200);
    match fake.last() {
        Some(Call::PutRecord(r)) => assert_eq!(r.data, vec![0, 1]),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn put_records_json_and_cbor() {
    let fake = Fake::default();
    let (s, body) = json_call(
        &fake,
        "PutRecords",
        json!({"StreamName": "orders", "Records": [
            {"Data": STANDARD.encode(b"one"), "PartitionKey": "a"},
            {"Data": STANDARD.encode(b"two"), "PartitionKey": "b", "ExplicitHashKey": "7"}]}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(body["FailedRecordCount"], 1);
    assert_eq!(body["EncryptionType"], "NONE");
    assert_eq!(
        body["Records"],
        json!([
            {"SequenceNumber": "49600000000000000000000000000000000000000000000000000000", "ShardId": "shardId-000000000000"},
            {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded for shard shardId-000000000000"}
        ])
    );
    assert_eq!(
        fake.last(),
        Some(Call::PutRecords(v1::PutRecordsRequest {
            stream_name: "orders".into(),
            stream_arn: String::new(),
            records: vec![
                v1::PutRecordsRequestEntry {
                    data: b"one".to_vec().into(),
                    partition_key: "a".into(),
                    explicit_hash_key: String::new()
                },
                v1::PutRecordsRequestEntry {
                    data: b"two".to_vec().into(),
                    partition_key: "b".into(),
                    explicit_hash_key: "7".into()
                },
            ]
        }))
    );
    let (s, body) = cbor_call(
        &fake,
        "PutRecords",
        cmap(vec![
            ("StreamName", text("orders")),
            (
                "Records",
                C::Array(vec![cmap(vec![
                    ("Data", C::Bytes(vec![9])),
                    ("PartitionKey", text("a")),
                ])]),
            ),
        ]),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(cget(&body, "FailedRecordCount"), &C::Integer(0.into()));
}

#[tokio::test]
async fn get_shard_iterator_types_and_timestamps() {
    let fake = Fake::default();
    for (kind, want) in [
        ("TRIM_HORIZON", v1::ShardIteratorType::TrimHorizon),
        ("LATEST", v1::ShardIteratorType::Latest),
        (
            "AT_SEQUENCE_NUMBER",
            v1::ShardIteratorType::AtSequenceNumber,
        ),
        (
            "AFTER_SEQUENCE_NUMBER",
            v1::ShardIteratorType::AfterSequenceNumber,
        ),
    ] {
        let (s, body) = json_call(
            &fake,
            "GetShardIterator",
            json!({"StreamName": "orders", "ShardId": "shardId-000000000001", "ShardIteratorType": kind,
                   "StartingSequenceNumber": "123"}),
        )
        .await;
        assert_eq!((s, body), (200, json!({"ShardIterator": "AAAAiterator"})));
        match fake.last() {
            Some(Call::GetShardIterator(r)) => {
                assert_eq!(r.shard_iterator_type, want as i32);
                assert_eq!(r.shard_id, "shardId-000000000001");
                assert_eq!(r.starting_sequence_number, "123");
                assert_eq!(r.timestamp_ms, 0);
            }
            other => panic!("{other:?}"),
        }
    }
    // AT_TIMESTAMP: JSON epoch seconds (fractional or whole), CBOR tag 1 + integer millis
    // (the Java SDK), CBOR tag 1 + float seconds (RFC 8949) and untagged CBOR millis.
    let cases: Vec<(&str, Vec<u8>, i64)> = vec![
        (JSON, br#"{"StreamName":"o","ShardId":"1","ShardIteratorType":"AT_TIMESTAMP","Timestamp":1602553946.447}"#.to_vec(), ARRIVAL_MS),
        (JSON, br#"{"StreamName":"o","ShardId":"1","ShardIteratorType":"AT_TIMESTAMP","Timestamp":1602553946}"#.to_vec(), 1_602_553_946_000),
        (JSON, br#"{"StreamName":"o","ShardId":"1","ShardIteratorType":"AT_TIMESTAMP","Timestamp":1.602553946447E9}"#.to_vec(), ARRIVAL_MS),
        (CBOR, cbor_bytes(&cmap(vec![("StreamName", text("o")), ("ShardId", text("1")), ("ShardIteratorType", text("AT_TIMESTAMP")), ("Timestamp", tag1(ARRIVAL_MS))])), ARRIVAL_MS),
        (CBOR, cbor_bytes(&cmap(vec![("StreamName", text("o")), ("ShardId", text("1")), ("ShardIteratorType", text("AT_TIMESTAMP")), ("Timestamp", C::Tag(1, Box::new(C::Float(1_602_553_946.447))))])), ARRIVAL_MS),
        (CBOR, cbor_bytes(&cmap(vec![("StreamName", text("o")), ("ShardId", text("1")), ("ShardIteratorType", text("AT_TIMESTAMP")), ("Timestamp", C::Integer(ARRIVAL_MS.into()))])), ARRIVAL_MS),
    ];
    for (ct, body, want) in cases {
        let a = send(&fake, request("GetShardIterator", ct, body)).await;
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        match fake.last() {
            Some(Call::GetShardIterator(r)) => {
                assert_eq!(r.timestamp_ms, want, "{ct}");
                assert_eq!(
                    r.shard_iterator_type,
                    v1::ShardIteratorType::AtTimestamp as i32
                );
            }
            other => panic!("{other:?}"),
        }
    }
    let n = fake.calls().len();
    for body in [
        json!({"StreamName": "o", "ShardId": "1", "ShardIteratorType": "AT_TIMESTAMP"}),
        json!({"StreamName": "o", "ShardId": "1", "ShardIteratorType": "AT_TIMESTAMP", "Timestamp": -5}),
        json!({"StreamName": "o", "ShardId": "1", "ShardIteratorType": "LATEST", "Timestamp": 5}),
    ] {
        let (s, e) = json_call(&fake, "GetShardIterator", body).await;
        assert_error(s, &e, 400, "InvalidArgumentException");
    }
    let (s, e) = json_call(
        &fake,
        "GetShardIterator",
        json!({"StreamName": "o", "ShardId": "1", "ShardIteratorType": "SOMEWHERE"}),
    )
    .await;
    assert_error(s, &e, 400, "ValidationException");
    assert_eq!(
        e["message"],
        "1 validation error detected: Value 'SOMEWHERE' at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value set: [AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, TRIM_HORIZON, LATEST, AT_TIMESTAMP]"
    );
    assert_eq!(
        fake.calls().len(),
        n,
        "refused requests never reach the backend"
    );
}

#[tokio::test]
async fn get_records_json_and_cbor() {
    let fake = Fake::default();
    let (s, body) = json_call(
        &fake,
        "GetRecords",
        json!({"ShardIterator": "AAAA", "Limit": 10}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        body,
        json!({"Records": [{"SequenceNumber": "49600000000000000000000000000000000000000000000000000001",
                            "ApproximateArrivalTimestamp": 1602553946.447,
                            "Data": "AAEC/w==", "PartitionKey": "pk"}],
               "NextShardIterator": "AAAAnext", "MillisBehindLatest": 42})
    );
    assert_eq!(
        fake.last(),
        Some(Call::GetRecords(v1::GetRecordsRequest {
            shard_iterator: "AAAA".into(),
            limit: 10,
            stream_arn: String::new(),
            wait_ms: 0,
        }))
    );
    let (s, body) = cbor_call(
        &fake,
        "GetRecords",
        cmap(vec![("ShardIterator", text("AAAA"))]),
    )
    .await;
    assert_eq!(s, 200);
    let C::Array(recs) = cget(&body, "Records") else {
        panic!()
    };
    assert_eq!(cget(&recs[0], "Data"), &C::Bytes(vec![0, 1, 2, 255]));
    assert_eq!(
        cget(&recs[0], "ApproximateArrivalTimestamp"),
        &tag1(ARRIVAL_MS)
    );
    assert_eq!(cget(&body, "MillisBehindLatest"), &C::Integer(42.into()));

    // The end of a closed shard: no NextShardIterator, ChildShards instead.
    let (s, body) = json_call(&fake, "GetRecords", json!({"ShardIterator": "closed"})).await;
    assert_eq!(s, 200);
    assert!(body.get("NextShardIterator").is_none());
    assert_eq!(
        body["ChildShards"],
        json!([{"ShardId": "shardId-000000000002", "ParentShards": ["shardId-000000000000"],
                "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": "10"}}])
    );
    let (s, e) = json_call(&fake, "GetRecords", json!({"ShardIterator": "expired"})).await;
    assert_error(s, &e, 400, "ExpiredIteratorException");
    let (s, e) = json_call(
        &fake,
        "GetRecords",
        json!({"ShardIterator": "AAAA", "DryRun": true}),
    )
    .await;
    assert_error(s, &e, 400, "DryRunOperationException");
}

#[tokio::test]
async fn retention_changes() {
    let fake = Fake::default();
    for (op, increase) in [
        ("IncreaseStreamRetentionPeriod", true),
        ("DecreaseStreamRetentionPeriod", false),
    ] {
        let (s, body) = json_call(
            &fake,
            op,
            json!({"StreamName": "orders", "RetentionPeriodHours": 48}),
        )
        .await;
        assert_eq!((s, body), (200, json!({})));
        assert_eq!(
            fake.last(),
            Some(Call::ChangeRetention(
                v1::ChangeRetentionRequest {
                    stream_name: "orders".into(),
                    stream_arn: String::new(),
                    retention_period_hours: 48
                },
                increase
            ))
        );
    }
    let (s, e) = json_call(
        &fake,
        "IncreaseStreamRetentionPeriod",
        json!({"StreamName": "orders"}),
    )
    .await;
    assert_error(s, &e, 400, "ValidationException");
    assert_eq!(e["message"], "1 validation error detected: Value null at 'retentionPeriodHours' failed to satisfy constraint: Member must not be null");
}

// --- tags, monitoring, policies, limits, account ------------------------------------------

#[tokio::test]
async fn tags_by_name_and_by_arn() {
    let fake = Fake::default();
    let (s, _) = json_call(
        &fake,
        "AddTagsToStream",
        json!({"StreamName": "orders", "Tags": {"k": "v"}}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        fake.last(),
        Some(Call::ChangeTags(
            "orders".into(),
            String::new(),
            BTreeMap::from([("k".into(), "v".into())]),
            vec![]
        ))
    );
    let (s, _) = json_call(
        &fake,
        "RemoveTagsFromStream",
        json!({"StreamARN": ARN, "TagKeys": ["k"]}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        fake.last(),
        Some(Call::ChangeTags(
            String::new(),
            ARN.into(),
            BTreeMap::new(),
            vec!["k".into()]
        ))
    );
    let (s, body) = json_call(
        &fake,
        "ListTagsForStream",
        json!({"StreamName": "orders", "ExclusiveStartTagKey": "a", "Limit": 1}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        body,
        json!({"Tags": [{"Key": "b", "Value": ""}], "HasMoreTags": true})
    );
    let (_, body) = json_call(&fake, "ListTagsForStream", json!({"StreamName": "orders"})).await;
    assert_eq!(body["Tags"].as_array().unwrap().len(), 3);
    assert_eq!(body["HasMoreTags"], false);

    let (s, _) = json_call(
        &fake,
        "TagResource",
        json!({"ResourceARN": ARN, "Tags": {"x": "y"}}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        fake.last(),
        Some(Call::ChangeTags(
            "orders".into(),
            String::new(),
            BTreeMap::from([("x".into(), "y".into())]),
            vec![]
        ))
    );
    let (s, _) = json_call(
        &fake,
        "UntagResource",
        json!({"ResourceARN": ARN, "TagKeys": ["x"]}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, body) = json_call(&fake, "ListTagsForResource", json!({"ResourceARN": ARN})).await;
    assert_eq!(s, 200);
    assert_eq!(body["Tags"][0], json!({"Key": "a", "Value": "1"}));

    let (s, e) = json_call(
        &fake,
        "AddTagsToStream",
        json!({"StreamName": "orders", "Tags": {}}),
    )
    .await;
    assert_error(s, &e, 400, "ValidationException");
    let (s, e) = json_call(
        &fake,
        "AddTagsToStream",
        json!({"StreamName": "orders", "Tags": {"k": "v".repeat(257)}}),
    )
    .await;
    assert_error(s, &e, 400, "ValidationException");
    assert!(e["message"].as_str().unwrap().contains(
        "Map value must satisfy constraint: [Member must have length less than or equal to 256]"
    ));
    let (s, e) = json_call(
        &fake,
        "RemoveTagsFromStream",
        json!({"StreamName": "orders", "TagKeys": [""]}),
    )
    .await;
    assert_error(s, &e, 400, "ValidationException");
    assert!(e["message"].as_str().unwrap().contains(
        "Member must satisfy constraint: [Member must have length greater than or equal to 1]"
    ));
}

#[tokio::test]
async fn monitoring_record_size_policies_limits_and_account() {
    let fake = Fake::default();
    let (s, body) = json_call(
        &fake,
        "EnableEnhancedMonitoring",
        json!({"StreamName": "orders", "ShardLevelMetrics": ["IncomingBytes", "ALL"]}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        body,
        json!({"StreamName": "orders", "StreamARN": ARN, "CurrentShardLevelMetrics": [],
               "DesiredShardLevelMetrics": ["IncomingBytes", "ALL"]})
    );
    let (s, _) = json_call(
        &fake,
        "DisableEnhancedMonitoring",
        json!({"StreamName": "orders", "ShardLevelMetrics": ["IncomingBytes"]}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        fake.last(),
        Some(Call::ChangeShardLevelMetrics(
            "orders".into(),
            String::new(),
            false,
            vec!["IncomingBytes".into()]
        ))
    );
    let (s, e) = json_call(
        &fake,
        "EnableEnhancedMonitoring",
        json!({"StreamName": "orders", "ShardLevelMetrics": ["Nope"]}),
    )
    .await;
    assert_error(s, &e, 400, "ValidationException");

    let (s, _) = json_call(
        &fake,
        "UpdateMaxRecordSize",
        json!({"StreamARN": ARN, "MaxRecordSizeInKiB": 4096}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        fake.last(),
        Some(Call::UpdateMaxRecordSize(String::new(), ARN.into(), 4096))
    );
    let (s, e) = json_call(
        &fake,
        "UpdateMaxRecordSize",
        json!({"StreamARN": ARN, "MaxRecordSizeInKiB": 100}),
    )
    .await;
    assert_error(s, &e, 400, "ValidationException");

    let (s, _) = json_call(
        &fake,
        "PutResourcePolicy",
        json!({"ResourceARN": ARN, "Policy": "{}"}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        fake.last(),
        Some(Call::SetResourcePolicy(ARN.into(), Some("{}".into())))
    );
    let (s, body) = json_call(&fake, "GetResourcePolicy", json!({"ResourceARN": ARN})).await;
    assert_eq!(
        (s, body),
        (200, json!({"Policy": "{\"Version\":\"2012-10-17\"}"}))
    );
    let (s, _) = json_call(&fake, "DeleteResourcePolicy", json!({"ResourceARN": ARN})).await;
    assert_eq!(s, 200);
    assert_eq!(fake.last(), Some(Call::SetResourcePolicy(ARN.into(), None)));
    let (s, e) = json_call(
        &fake,
        "GetResourcePolicy",
        json!({"ResourceARN": "arn:aws:s3:::bucket"}),
    )
    .await;
    assert_error(s, &e, 400, "ValidationException");

    let (s, body) = json_call(&fake, "DescribeLimits", json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(
        body,
        json!({"ShardLimit": 4096, "OpenShardCount": 7, "OnDemandStreamCount": 0, "OnDemandStreamCountLimit": 0})
    );
    let (s, body) = json_call(&fake, "DescribeAccountSettings", json!({})).await;
    assert_eq!(
        (s, body),
        (
            200,
            json!({"MinimumThroughputBillingCommitment": {"Status": "DISABLED"}})
        )
    );
    let (s, body) = cbor_call(
        &fake,
        "UpdateAccountSettings",
        cmap(vec![(
            "MinimumThroughputBillingCommitment",
            cmap(vec![("Status", text("ENABLED"))]),
        )]),
    )
    .await;
    assert_eq!(s, 200);
    let c = cget(&body, "MinimumThroughputBillingCommitment");
    assert_eq!(cget(c, "Status"), &text("ENABLED"));
    assert_eq!(cget(c, "StartedAt"), &tag1(CREATED_MS));
}

#[tokio::test]
async fn unsupported_operations_answer_invalid_argument() {
    let fake = Fake::default();
    for (op, _) in braid_gateway::kinesis::ops::UNSUPPORTED {
        let (s, e) = json_call(&fake, op, json!({})).await;
        assert_error(s, &e, 400, "InvalidArgumentException");
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .contains(&format!("Braid does not support {op}")),
            "{e}"
        );
    }
    assert!(fake.calls().is_empty());
}

// --- errors -------------------------------------------------------------------------------

#[tokio::test]
async fn framework_errors() {
    let fake = Fake::default();
    // Unknown operation, wrong service prefix, no target.
    for target in [
        "Kinesis_20131202.Nope",
        "DynamoDB_20120810.ListTables",
        "",
        "Kinesis_20131202",
    ] {
        let mut r = request("ListStreams", JSON, b"{}".to_vec());
        r.headers_mut()
            .insert("x-amz-target", target.parse().unwrap());
        let a = send(&fake, r).await;
        assert_error(a.status, &a.json(), 400, "UnknownOperationException");
    }
    // No signature at all, an incomplete one.
    let mut r = request("ListStreams", JSON, b"{}".to_vec());
    r.headers_mut().remove("authorization");
    let a = send(&fake, r).await;
    assert_error(
        a.status,
        &a.json(),
        400,
        "MissingAuthenticationTokenException",
    );
    assert_eq!(a.json()["message"], "Missing Authentication Token");
    let mut r = request("ListStreams", CBOR, cbor_bytes(&C::Map(vec![])));
    r.headers_mut().insert(
        "authorization",
        "AWS4-HMAC-SHA256 Credential=x".parse().unwrap(),
    );
    let a = send(&fake, r).await;
    assert_eq!(a.status, 400);
    assert_eq!(
        cget(&a.cbor(), "__type"),
        &text("IncompleteSignatureException")
    );
    // Bodies that are not the input shape.
    for (body, msg) in [
        (&b"{"[..], None),
        (b"", None),
        (b"[]", Some("Start of list found where not expected")),
        (br#"{"StreamName": 5}"#, Some("class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String")),
        (br#"{"StreamName": "s", "Limit": "5"}"#, Some("class java.lang.String can not be converted to an Integer")),
        (br#"{"StreamName": {"a": 1}}"#, Some("Start of structure or map found where not expected.")),
    ] {
        let a = send(&fake, request("DescribeStream", JSON, body.to_vec())).await;
        let e = a.json();
        assert_error(a.status, &e, 400, "SerializationException");
        if let Some(m) = msg {
            assert_eq!(e["message"], m);
        }
    }
    let (s, e) = json_call(
        &fake,
        "PutRecord",
        json!({"StreamName": "s", "PartitionKey": "k", "Data": "not base64!"}),
    )
    .await;
    assert_error(s, &e, 400, "SerializationException");
    let (s, e) = json_call(
        &fake,
        "DeleteStream",
        json!({"StreamName": "s", "EnforceConsumerDeletion": "yes"}),
    )
    .await;
    assert_error(s, &e, 400, "SerializationException");
    assert_eq!(e["message"], "'YES' can not be converted to an Boolean");
    // CBOR errors are CBOR.
    let a = send(&fake, request("DescribeStream", CBOR, vec![0xbf, 0x61])).await;
    assert_eq!(a.status, 400);
    assert_eq!(cget(&a.cbor(), "__type"), &text("SerializationException"));
    // Not POST, CORS.
    let mut r = request("ListStreams", JSON, vec![]);
    *r.method_mut() = axum::http::Method::GET;
    let a = send(&fake, r).await;
    assert_error(a.status, &a.json(), 403, "AccessDeniedException");
    let r = Request::builder()
        .method("OPTIONS")
        .uri("/")
        .header("origin", "http://example.test")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "x-amz-target")
        .body(Body::empty())
        .unwrap();
    let a = send(&fake, r).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.headers["access-control-allow-origin"], "*");
    assert_eq!(a.headers["access-control-allow-headers"], "x-amz-target");
    // Too large.
    let mut r = request("ListStreams", JSON, b"{}".to_vec());
    r.headers_mut().insert(
        "content-length",
        (braid_gateway::kinesis::REQUEST_BYTES_MAX + 1)
            .to_string()
            .parse()
            .unwrap(),
    );
    let a = send(&fake, r).await;
    assert_eq!(a.status, 413);
    assert_eq!(a.json()["__type"], "RequestEntityTooLargeException");
    let big = vec![b' '; braid_gateway::kinesis::REQUEST_BYTES_MAX + 1];
    let a = send(&fake, request("ListStreams", JSON, big)).await;
    assert_eq!(a.status, 413);
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn validation_messages_match_aws() {
    let fake = Fake::default();
    let (s, e) = json_call(
        &fake,
        "CreateStream",
        json!({"StreamName": "", "ShardCount": 0}),
    )
    .await;
    assert_error(s, &e, 400, "ValidationException");
    assert_eq!(
        e["message"],
        "3 validation errors detected: Value '' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; Value '' at 'streamName' failed to satisfy constraint: Member must have length greater than or equal to 1; Value '0' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1"
    );
    let (s, e) = json_call(&fake, "PutRecord", json!({"StreamName": "s", "Data": ""})).await;
    assert_error(s, &e, 400, "ValidationException");
    assert_eq!(
        e["message"],
        "1 validation error detected: Value null at 'partitionKey' failed to satisfy constraint: Member must not be null"
    );
    let key = "k".repeat(257);
    let (_, e) = json_call(
        &fake,
        "PutRecord",
        json!({"StreamName": "s", "Data": "", "PartitionKey": key}),
    )
    .await;
    assert_eq!(
        e["message"],
        format!("1 validation error detected: Value '{key}' at 'partitionKey' failed to satisfy constraint: Member must have length less than or equal to 256")
    );
    let records: Vec<J> = (0..501)
        .map(|_| json!({"Data": "", "PartitionKey": "k"}))
        .collect();
    let (_, e) = json_call(
        &fake,
        "PutRecords",
        json!({"StreamName": "s", "Records": records}),
    )
    .await;
    let m = e["message"].as_str().unwrap();
    assert!(m.starts_with("1 validation error detected: Value '[com.amazonaws.kinesis.v20131202.PutRecordsRequestEntry, "));
    assert!(m.ends_with("]' at 'records' failed to satisfy constraint: Member must have length less than or equal to 500"));
    let (_, e) = json_call(
        &fake,
        "PutRecords",
        json!({"StreamName": "s", "Records": [{"Data": "", "PartitionKey": "k"}, {"Data": "", "PartitionKey": "", "ExplicitHashKey": "x"}]}),
    )
    .await;
    assert_eq!(
        e["message"],
        "2 validation errors detected: Value 'x' at 'records.2.member.explicitHashKey' failed to satisfy constraint: Member must satisfy regular expression pattern: ^(0|([1-9]\\d{0,38}))$; Value '' at 'records.2.member.partitionKey' failed to satisfy constraint: Member must have length greater than or equal to 1"
    );
    let blob = STANDARD.encode(vec![0u8; 10_485_761]);
    let (_, e) = json_call(
        &fake,
        "PutRecord",
        json!({"StreamName": "s", "Data": blob, "PartitionKey": "k"}),
    )
    .await;
    assert_eq!(
        e["message"],
        "1 validation error detected: Value 'java.nio.HeapByteBuffer[pos=0 lim=10485761 cap=10485761]' at 'data' failed to satisfy constraint: Member must have length less than or equal to 10485760"
    );
    let (_, e) = json_call(
        &fake,
        "DescribeStream",
        json!({"StreamARN": "arn:aws:kinesis:us-east-1:12:stream/x"}),
    )
    .await;
    assert!(e["message"].as_str().unwrap().contains("at 'streamARN' failed to satisfy constraint: Member must satisfy regular expression pattern"));
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn backend_errors_map_to_aws_statuses() {
    let fake = Fake::default();
    let (s, e) = json_call(&fake, "DescribeStream", json!({"StreamName": "missing"})).await;
    assert_error(s, &e, 400, "ResourceNotFoundException");
    assert_eq!(
        e["message"],
        "Stream missing under account 000000000000 not found."
    );
    let (s, e) = json_call(&fake, "DescribeStream", json!({"StreamName": "boom"})).await;
    assert_error(s, &e, 500, "InternalFailure");
    let (s, e) = json_call(&fake, "DescribeStream", json!({"StreamName": "busy"})).await;
    assert_error(s, &e, 503, "ServiceUnavailable");
    // A panic inside an operation is an InternalFailure answer, not a dropped connection.
    let (s, e) = json_call(&fake, "DescribeStream", json!({"StreamName": "panic"})).await;
    assert_error(s, &e, 500, "InternalFailure");
    let (s, e) = cbor_call(
        &fake,
        "PutRecord",
        cmap(vec![
            ("StreamName", text("panic")),
            ("Data", C::Bytes(vec![])),
            ("PartitionKey", text("k")),
        ]),
    )
    .await;
    assert_eq!(s, 500);
    assert_eq!(cget(&e, "__type"), &text("InternalFailure"));
    // DryRun checks the stream and writes nothing.
    let (s, e) = json_call(
        &fake,
        "PutRecord",
        json!({"StreamName": "orders", "Data": "", "PartitionKey": "k", "DryRun": true}),
    )
    .await;
    assert_error(s, &e, 400, "DryRunOperationException");
    let (s, e) = json_call(
        &fake,
        "PutRecord",
        json!({"StreamName": "missing", "Data": "", "PartitionKey": "k", "DryRun": true}),
    )
    .await;
    assert_error(s, &e, 400, "ResourceNotFoundException");
    assert!(!fake
        .calls()
        .iter()
        .any(|c| matches!(c, Call::PutRecord(r) if r.stream_name != "panic")));
}

// --- real sockets: HTTP/1.1 and h2c --------------------------------------------------------

#[tokio::test]
async fn serves_http1_and_h2c() {
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let fake = Fake::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(braid_gateway::kinesis::serve(
        listener,
        fake.clone(),
        async {
            let _ = rx.await;
        },
    ));
    for h2 in [false, true] {
        let client = Client::builder(TokioExecutor::new())
            .http2_only(h2)
            .build_http::<Full<bytes_body::Bytes>>();
        let req = hyper::Request::builder()
            .method("POST")
            .uri(format!("http://{addr}/"))
            .header("x-amz-target", "Kinesis_20131202.DescribeLimits")
            .header("content-type", JSON)
            .header("x-amz-date", "20260101T000000Z")
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=a/b, SignedHeaders=host, Signature=c",
            )
            .body(Full::new(bytes_body::Bytes::from_static(b"{}")))
            .unwrap();
        let resp = client.request(req).await.unwrap();
        assert_eq!(
            resp.version(),
            if h2 {
                hyper::Version::HTTP_2
            } else {
                hyper::Version::HTTP_11
            }
        );
        assert_eq!(resp.status(), 200);
        assert!(resp.headers().contains_key("x-amzn-requestid"));
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let v: J = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["OpenShardCount"], 7);
    }
    let _ = tx.send(());
    server.await.unwrap().unwrap();
}

/// `bytes` through axum's re-export, so the test needs no extra dependency.
mod bytes_body {
    pub use axum::body::Bytes;
}
