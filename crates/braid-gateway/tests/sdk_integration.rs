//! aws-sdk-kinesis (the official Rust SDK, AWS JSON 1.1 over HTTP/1.1) against a real
//! `braid dev` process: streams, records, every iterator type, pagination, retention, the
//! Kinesis-only attributes, and the error paths.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::primitives::{Blob, DateTime};
use aws_sdk_kinesis::types::{
    MetricsName, PutRecordsRequestEntry, ShardFilter, ShardFilterType, ShardIteratorType,
    StreamStatus,
};
use aws_sdk_kinesis::Client;
use md5::{Digest, Md5};

fn client(endpoint: &str) -> Client {
    let conf = aws_sdk_kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("AKID", "SECRET", None, None, "static"))
        .build();
    Client::from_conf(conf)
}

/// The exception name of a failed call.
fn code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> String {
    e.as_service_error()
        .and_then(|s| s.code())
        .map(str::to_string)
        .unwrap_or_else(|| "not a service error".to_string())
}

fn message<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> String {
    e.as_service_error()
        .and_then(|s| s.message())
        .unwrap_or_default()
        .to_string()
}

async fn wait_active(k: &Client, name: &str) {
    for _ in 0..300 {
        let d = k
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .unwrap();
        if d.stream_description_summary().map(|s| s.stream_status()) == Some(&StreamStatus::Active)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("stream {name} never became ACTIVE");
}

fn md5_hash(key: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(key.as_bytes()).into())
}

async fn read_all(k: &Client, iterator: String) -> Vec<aws_sdk_kinesis::types::Record> {
    let mut out = Vec::new();
    let mut it = Some(iterator);
    while let Some(i) = it {
        let r = k
            .get_records()
            .shard_iterator(i)
            .limit(1000)
            .send()
            .await
            .unwrap();
        let n = r.records().len();
        out.extend(r.records().iter().cloned());
        it = r.next_shard_iterator().map(str::to_string);
        if n == 0 && r.millis_behind_latest() == Some(0) {
            break;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_sdk_kinesis_against_braid_dev() {
    let dev = common::BraidDev::start();
    let k = client(&dev.endpoint(0));
    // Another node's endpoint sees the same cluster.
    let k2 = client(&dev.endpoint(2));

    // --- streams: create, duplicate, describe, list with pagination ---
    k.create_stream()
        .stream_name("orders")
        .shard_count(4)
        .tags("team", "core")
        .send()
        .await
        .unwrap();
    let e = k
        .create_stream()
        .stream_name("orders")
        .shard_count(1)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceInUseException", "{e:?}");
    for name in ["a-1", "b-2"] {
        k.create_stream()
            .stream_name(name)
            .shard_count(1)
            .send()
            .await
            .unwrap();
    }
    wait_active(&k, "orders").await;

    let d = k2
        .describe_stream()
        .stream_name("orders")
        .send()
        .await
        .unwrap();
    let desc = d.stream_description().unwrap();
    assert_eq!(desc.stream_name(), "orders");
    assert_eq!(
        desc.stream_arn(),
        "arn:aws:kinesis:us-east-1:000000000000:stream/orders"
    );
    assert_eq!(desc.stream_status(), &StreamStatus::Active);
    assert_eq!(desc.shards().len(), 4);
    assert!(!desc.has_more_shards());
    assert_eq!(desc.retention_period_hours(), 24);
    assert_eq!(
        desc.stream_mode_details().map(|m| m.stream_mode().as_str()),
        Some("PROVISIONED")
    );
    assert_eq!(desc.encryption_type().map(|e| e.as_str()), Some("NONE"));
    assert_eq!(desc.shards()[0].shard_id(), "shardId-000000000000");
    assert_eq!(
        desc.shards()[0]
            .hash_key_range()
            .unwrap()
            .starting_hash_key(),
        "0"
    );
    assert_eq!(
        desc.shards()[3].hash_key_range().unwrap().ending_hash_key(),
        u128::MAX.to_string()
    );
    let created = desc.stream_creation_timestamp().to_millis().unwrap();
    assert!(created > 1_600_000_000_000);
    // By ARN too.
    let by_arn = k
        .describe_stream_summary()
        .stream_arn(desc.stream_arn())
        .send()
        .await
        .unwrap();
    let sum = by_arn.stream_description_summary().unwrap();
    assert_eq!(sum.open_shard_count(), 4);
    assert_eq!(sum.max_record_size_in_kib(), Some(1024));

    // DescribeStream paging by ExclusiveStartShardId.
    let page = k
        .describe_stream()
        .stream_name("orders")
        .limit(3)
        .send()
        .await
        .unwrap();
    let page = page.stream_description().unwrap();
    assert_eq!(page.shards().len(), 3);
    assert!(page.has_more_shards());
    let rest = k
        .describe_stream()
        .stream_name("orders")
        .exclusive_start_shard_id(page.shards()[2].shard_id())
        .send()
        .await
        .unwrap();
    assert_eq!(rest.stream_description().unwrap().shards().len(), 1);

    // ListStreams, one per page, through the SDK's paginator (NextToken).
    let mut names = Vec::new();
    let mut pages = k.list_streams().limit(1).into_paginator().send();
    while let Some(p) = pages.next().await {
        let p = p.unwrap();
        assert!(p.stream_names().len() <= 1);
        names.extend(p.stream_names().iter().cloned());
        assert_eq!(p.stream_summaries().len(), p.stream_names().len());
    }
    assert_eq!(names, ["a-1", "b-2", "orders"]);

    // ListShards pagination: NextToken, with and without the StreamName sent again.
    let mut ids = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut req = k.list_shards().max_results(1);
        req = match &token {
            Some(t) if ids.len() % 2 == 0 => req.next_token(t),
            Some(t) => req.next_token(t).stream_name("orders"),
            None => req.stream_name("orders"),
        };
        let r = req.send().await.unwrap();
        ids.extend(r.shards().iter().map(|s| s.shard_id().to_string()));
        match r.next_token() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(
        ids,
        (0..4)
            .map(|i| format!("shardId-{i:012}"))
            .collect::<Vec<_>>()
    );
    let filtered = k
        .list_shards()
        .stream_name("orders")
        .shard_filter(
            ShardFilter::builder()
                .r#type(ShardFilterType::AfterShardId)
                .shard_id("shardId-000000000001")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(filtered.shards().len(), 2);
    let e = k
        .list_shards()
        .stream_name("a-1")
        .next_token(token.clone().unwrap_or_else(|| "orders/0".into()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidArgumentException");

    // --- records: put_record routing, put_records, every iterator type ---
    let shards: Vec<(String, u128, u128)> = desc
        .shards()
        .iter()
        .map(|s| {
            let r = s.hash_key_range().unwrap();
            (
                s.shard_id().to_string(),
                r.starting_hash_key().parse().unwrap(),
                r.ending_hash_key().parse().unwrap(),
            )
        })
        .collect();
    let shard_of = |h: u128| {
        shards
            .iter()
            .find(|(_, a, b)| *a <= h && h <= *b)
            .unwrap()
            .0
            .clone()
    };
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    let first = k
        .put_record()
        .stream_name("orders")
        .partition_key("customer-17")
        .data(Blob::new(all_bytes.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(first.shard_id(), shard_of(md5_hash("customer-17")));
    let second = k
        .put_record()
        .stream_name("orders")
        .partition_key("customer-17")
        .data(Blob::new(b"second".to_vec()))
        .sequence_number_for_ordering(first.sequence_number())
        .send()
        .await
        .unwrap();
    assert_eq!(second.shard_id(), first.shard_id());
    let (a, b): (SeqNum, SeqNum) = (
        first.sequence_number().parse().unwrap(),
        second.sequence_number().parse().unwrap(),
    );
    assert!(a < b);
    // ExplicitHashKey wins over the partition key.
    let explicit = k
        .put_record()
        .stream_name("orders")
        .partition_key("customer-17")
        .explicit_hash_key(u128::MAX.to_string())
        .data(Blob::new(b"last shard".to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(explicit.shard_id(), "shardId-000000000003");

    let entries: Vec<PutRecordsRequestEntry> = (0..100)
        .map(|i| {
            PutRecordsRequestEntry::builder()
                .partition_key(format!("key-{i}"))
                .data(Blob::new(format!("value-{i}").into_bytes()))
                .build()
                .unwrap()
        })
        .collect();
    let put = k
        .put_records()
        .stream_name("orders")
        .set_records(Some(entries))
        .send()
        .await
        .unwrap();
    assert_eq!(put.failed_record_count(), Some(0));
    assert_eq!(put.records().len(), 100);
    for (i, r) in put.records().iter().enumerate() {
        assert_eq!(
            r.shard_id(),
            Some(shard_of(md5_hash(&format!("key-{i}"))).as_str())
        );
        assert!(r.sequence_number().is_some() && r.error_code().is_none());
    }

    // TRIM_HORIZON on the first record's shard reads it back byte for byte.
    let it = k
        .get_shard_iterator()
        .stream_name("orders")
        .shard_id(first.shard_id())
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap()
        .shard_iterator()
        .unwrap()
        .to_string();
    let recs = read_all(&k, it).await;
    assert_eq!(recs[0].data().as_ref(), &all_bytes[..]);
    assert_eq!(recs[0].partition_key(), Some("customer-17"));
    assert_eq!(recs[0].sequence_number(), first.sequence_number());
    assert_eq!(recs[1].data().as_ref(), b"second");
    let arrival = recs[0]
        .approximate_arrival_timestamp()
        .unwrap()
        .to_millis()
        .unwrap();
    assert!(arrival >= created);
    let expected_here = 2
        + (0..100)
            .filter(|i| shard_of(md5_hash(&format!("key-{i}"))) == first.shard_id())
            .count()
        + usize::from(first.shard_id() == "shardId-000000000003");
    assert_eq!(recs.len(), expected_here);

    // AT_SEQUENCE_NUMBER / AFTER_SEQUENCE_NUMBER.
    for (kind, want) in [
        (ShardIteratorType::AtSequenceNumber, &b"\x00\x01"[..]),
        (ShardIteratorType::AfterSequenceNumber, &b"second"[..]),
    ] {
        let it = k
            .get_shard_iterator()
            .stream_name("orders")
            .shard_id(first.shard_id())
            .shard_iterator_type(kind)
            .starting_sequence_number(first.sequence_number())
            .send()
            .await
            .unwrap();
        let r = k
            .get_records()
            .shard_iterator(it.shard_iterator().unwrap())
            .limit(1)
            .send()
            .await
            .unwrap();
        assert!(r.records()[0].data().as_ref().starts_with(want));
    }
    // AT_TIMESTAMP at the first arrival finds the first record; LATEST finds nothing old.
    let it = k
        .get_shard_iterator()
        .stream_name("orders")
        .shard_id(first.shard_id())
        .shard_iterator_type(ShardIteratorType::AtTimestamp)
        .timestamp(DateTime::from_millis(arrival))
        .send()
        .await
        .unwrap();
    let r = k
        .get_records()
        .shard_iterator(it.shard_iterator().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.records()[0].sequence_number(), first.sequence_number());
    let latest = k
        .get_shard_iterator()
        .stream_name("orders")
        .shard_id(first.shard_id())
        .shard_iterator_type(ShardIteratorType::Latest)
        .send()
        .await
        .unwrap()
        .shard_iterator()
        .unwrap()
        .to_string();
    let r = k
        .get_records()
        .shard_iterator(&latest)
        .send()
        .await
        .unwrap();
    assert!(r.records().is_empty());
    assert!(r.next_shard_iterator().is_some());
    let fresh = k
        .put_record()
        .stream_name("orders")
        .partition_key("customer-17")
        .data(Blob::new(b"after latest".to_vec()))
        .send()
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut it = latest;
    for _ in 0..50 {
        let r = k.get_records().shard_iterator(&it).send().await.unwrap();
        seen.extend(r.records().iter().map(|x| x.sequence_number().to_string()));
        if !seen.is_empty() {
            break;
        }
        it = r.next_shard_iterator().unwrap().to_string();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen, [fresh.sequence_number()]);

    // --- retention ---
    k.increase_stream_retention_period()
        .stream_name("orders")
        .retention_period_hours(48)
        .send()
        .await
        .unwrap();
    let e = k
        .decrease_stream_retention_period()
        .stream_name("orders")
        .retention_period_hours(72)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidArgumentException");
    let e = k
        .increase_stream_retention_period()
        .stream_name("orders")
        .retention_period_hours(9000)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidArgumentException");
    k.decrease_stream_retention_period()
        .stream_arn(desc.stream_arn())
        .retention_period_hours(24)
        .send()
        .await
        .unwrap();
    k.increase_stream_retention_period()
        .stream_name("orders")
        .retention_period_hours(36)
        .send()
        .await
        .unwrap();
    let d = k
        .describe_stream_summary()
        .stream_name("orders")
        .send()
        .await
        .unwrap();
    assert_eq!(
        d.stream_description_summary()
            .unwrap()
            .retention_period_hours(),
        36
    );

    // --- tags, enhanced monitoring, limits, record size, policies, account settings ---
    k.add_tags_to_stream()
        .stream_name("orders")
        .tags("env", "dev")
        .send()
        .await
        .unwrap();
    let tags = k
        .list_tags_for_stream()
        .stream_name("orders")
        .send()
        .await
        .unwrap();
    let tags: BTreeMap<String, String> = tags
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        tags,
        BTreeMap::from([
            ("env".to_string(), "dev".to_string()),
            ("team".to_string(), "core".to_string())
        ])
    );
    k.untag_resource()
        .resource_arn(desc.stream_arn())
        .tag_keys("env")
        .send()
        .await
        .unwrap();
    let tags = k
        .list_tags_for_resource()
        .resource_arn(desc.stream_arn())
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags().len(), 1);
    let m = k
        .enable_enhanced_monitoring()
        .stream_name("orders")
        .shard_level_metrics(MetricsName::IncomingBytes)
        .send()
        .await
        .unwrap();
    assert!(m.current_shard_level_metrics().is_empty());
    assert_eq!(
        m.desired_shard_level_metrics(),
        [MetricsName::IncomingBytes]
    );
    let d = k
        .describe_stream()
        .stream_name("orders")
        .send()
        .await
        .unwrap();
    assert_eq!(
        d.stream_description().unwrap().enhanced_monitoring()[0].shard_level_metrics(),
        [MetricsName::IncomingBytes]
    );
    let limits = k.describe_limits().send().await.unwrap();
    assert_eq!(limits.open_shard_count(), 6);
    k.update_max_record_size()
        .stream_arn(desc.stream_arn())
        .max_record_size_in_kib(2048)
        .send()
        .await
        .unwrap();
    let big = vec![7u8; 1024 * 1024 + 1];
    k.put_record()
        .stream_name("orders")
        .partition_key("big")
        .data(Blob::new(big.clone()))
        .send()
        .await
        .unwrap();
    let policy = r#"{"Version":"2012-10-17","Statement":[]}"#;
    k.put_resource_policy()
        .resource_arn(desc.stream_arn())
        .policy(policy)
        .send()
        .await
        .unwrap();
    let got = k
        .get_resource_policy()
        .resource_arn(desc.stream_arn())
        .send()
        .await
        .unwrap();
    assert_eq!(got.policy(), policy);

    // --- error paths ---
    let e = k
        .describe_stream()
        .stream_name("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
    let e = k
        .put_record()
        .stream_name("nope")
        .partition_key("k")
        .data(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
    let e = k
        .put_record()
        .stream_name("a-1")
        .partition_key("k".repeat(257))
        .data(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ValidationException");
    assert!(message(&e).contains("at 'partitionKey' failed to satisfy constraint: Member must have length less than or equal to 256"), "{}", message(&e));
    let e = k
        .put_record()
        .stream_name("a-1")
        .partition_key("k")
        .data(Blob::new(big))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ValidationException");
    assert!(message(&e).contains("1048576"), "{}", message(&e));
    let many: Vec<PutRecordsRequestEntry> = (0..501)
        .map(|_| {
            PutRecordsRequestEntry::builder()
                .partition_key("k")
                .data(Blob::new(b"x".to_vec()))
                .build()
                .unwrap()
        })
        .collect();
    let e = k
        .put_records()
        .stream_name("a-1")
        .set_records(Some(many))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ValidationException");
    assert!(message(&e).contains("Member must have length less than or equal to 500"));
    let e = k
        .create_stream()
        .stream_name("bad name!")
        .shard_count(1)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ValidationException");
    let mut tampered = it.into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let e = k
        .get_records()
        .shard_iterator(String::from_utf8(tampered).unwrap())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidArgumentException");
    let e = k
        .get_shard_iterator()
        .stream_name("orders")
        .shard_id("shardId-000000000009")
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
    let e = k
        .split_shard()
        .stream_name("orders")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key("1000")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidArgumentException");
    assert!(message(&e).contains("does not support SplitShard"));

    // --- delete ---
    k.delete_stream().stream_name("a-1").send().await.unwrap();
    let e = k
        .describe_stream()
        .stream_name("a-1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
    // Other nodes learn of the deletion through the control plane shortly after (what the
    // StreamNotExists waiter polls for).
    let mut gone = false;
    for _ in 0..100 {
        if let Err(e) = k2.describe_stream().stream_name("a-1").send().await {
            assert_eq!(code(&e), "ResourceNotFoundException");
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "node 3 still describes a deleted stream after 5 s");
    let e = k
        .delete_stream()
        .stream_name("a-1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
}

/// Sequence numbers are up to 129 decimal digits: compare them as big numbers by length,
/// then lexically.
#[derive(PartialEq, Eq, PartialOrd, Ord, Debug)]
struct SeqNum(usize, String);

impl std::str::FromStr for SeqNum {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(());
        }
        Ok(SeqNum(s.len(), s.to_string()))
    }
}
