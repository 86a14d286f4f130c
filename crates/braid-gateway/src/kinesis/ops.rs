//! The operations: each checks its input shape, calls the backend once or twice, and builds
//! the output shape of the botocore model. Operations Braid cannot perform yet answer with an
//! AWS-shaped error that says so; none pretends to succeed.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use braid_control::StreamOptions;
use braid_proto::v1;

use super::backend::Backend;
use super::error::WireError;
use super::schema::{check, Input, Typed};
use super::shapes::*;
use super::value::{Format, Value};

type Out = Result<Value, WireError>;

/// The service prefix of `X-Amz-Target`.
pub const TARGET_PREFIX: &str = "Kinesis_20131202";

/// The operations Braid implements.
pub const IMPLEMENTED: &[&str] = &[
    "AddTagsToStream",
    "CreateStream",
    "DecreaseStreamRetentionPeriod",
    "DeleteResourcePolicy",
    "DeleteStream",
    "DescribeAccountSettings",
    "DescribeLimits",
    "DescribeStream",
    "DescribeStreamSummary",
    "DisableEnhancedMonitoring",
    "EnableEnhancedMonitoring",
    "GetRecords",
    "GetResourcePolicy",
    "GetShardIterator",
    "IncreaseStreamRetentionPeriod",
    "ListShards",
    "ListStreams",
    "ListTagsForResource",
    "ListTagsForStream",
    "PutRecord",
    "PutRecords",
    "PutResourcePolicy",
    "RemoveTagsFromStream",
    "TagResource",
    "UntagResource",
    "UpdateAccountSettings",
    "UpdateMaxRecordSize",
];

/// Operations of the Kinesis API that Braid does not implement yet, and why.
pub const UNSUPPORTED: &[(&str, &str)] = &[
    ("SplitShard", "resharding is not implemented"),
    ("MergeShards", "resharding is not implemented"),
    ("UpdateShardCount", "resharding is not implemented"),
    (
        "RegisterStreamConsumer",
        "enhanced fan-out consumers are not implemented",
    ),
    (
        "DeregisterStreamConsumer",
        "enhanced fan-out consumers are not implemented",
    ),
    (
        "DescribeStreamConsumer",
        "enhanced fan-out consumers are not implemented",
    ),
    (
        "ListStreamConsumers",
        "enhanced fan-out consumers are not implemented",
    ),
    (
        "SubscribeToShard",
        "enhanced fan-out consumers are not implemented; use GetRecords",
    ),
    (
        "StartStreamEncryption",
        "server-side encryption is not implemented",
    ),
    (
        "StopStreamEncryption",
        "server-side encryption is not implemented",
    ),
    ("UpdateStreamMode", "only PROVISIONED streams exist"),
    (
        "UpdateStreamWarmThroughput",
        "warm throughput needs ON_DEMAND streams, which do not exist",
    ),
    (
        "UpdateStreamRecordDistributionStrategy",
        "records are always routed by partition key",
    ),
    ("CreateChannel", "channels are not implemented"),
    ("DeleteChannel", "channels are not implemented"),
    ("DescribeChannel", "channels are not implemented"),
    ("ListChannels", "channels are not implemented"),
    ("UpdateChannel", "channels are not implemented"),
    ("CreateQueue", "queues are not implemented"),
    ("DeleteQueue", "queues are not implemented"),
    ("DescribeQueue", "queues are not implemented"),
    ("ListQueues", "queues are not implemented"),
    ("UpdateQueue", "queues are not implemented"),
    ("ReceiveQueueRecords", "queues are not implemented"),
    ("AcknowledgeQueueRecords", "queues are not implemented"),
    ("UpdateQueueRecordsVisibility", "queues are not implemented"),
    (
        "ReceiveDeadLetterQueueRecords",
        "queues are not implemented",
    ),
    (
        "AcknowledgeDeadLetterQueueRecords",
        "queues are not implemented",
    ),
    (
        "RestoreDeadLetterQueueRecords",
        "queues are not implemented",
    ),
    (
        "UpdateDeadLetterQueueRecordsVisibility",
        "queues are not implemented",
    ),
];

/// Whether `op` is an operation of the Kinesis API (implemented or not).
pub fn is_known(op: &str) -> bool {
    IMPLEMENTED.contains(&op) || UNSUPPORTED.iter().any(|(o, _)| *o == op)
}

/// A ListStreams / pagination token lives this long (ExpiredNextTokenException after).
pub const NEXT_TOKEN_TTL_MS: i64 = braid_types::limits::NEXT_TOKEN_TTL_MS as i64;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Runs one operation on a decoded body.
pub async fn dispatch<B: Backend>(b: &B, op: &str, format: Format, body: &Value) -> Out {
    match op {
        "CreateStream" => create_stream(b, check(format, body, CREATE_STREAM)?).await,
        "DeleteStream" => delete_stream(b, check(format, body, DELETE_STREAM)?).await,
        "DescribeStream" => describe_stream(b, check(format, body, DESCRIBE_STREAM)?).await,
        "DescribeStreamSummary" => {
            describe_stream_summary(b, check(format, body, STREAM_ONLY)?).await
        }
        "ListStreams" => list_streams(b, check(format, body, LIST_STREAMS)?).await,
        "ListShards" => list_shards(b, check(format, body, LIST_SHARDS)?).await,
        "PutRecord" => put_record(b, check(format, body, PUT_RECORD)?).await,
        "PutRecords" => put_records(b, check(format, body, PUT_RECORDS)?).await,
        "GetShardIterator" => get_shard_iterator(b, check(format, body, GET_SHARD_ITERATOR)?).await,
        "GetRecords" => get_records(b, check(format, body, GET_RECORDS)?).await,
        "IncreaseStreamRetentionPeriod" => {
            change_retention(b, check(format, body, CHANGE_RETENTION)?, true).await
        }
        "DecreaseStreamRetentionPeriod" => {
            change_retention(b, check(format, body, CHANGE_RETENTION)?, false).await
        }
        "AddTagsToStream" => {
            let i = check(format, body, ADD_TAGS_TO_STREAM)?;
            let (name, arn) = stream_ref(&i);
            b.change_tags(name, arn, i.string_map("Tags"), vec![])
                .await?;
            Ok(empty())
        }
        "RemoveTagsFromStream" => {
            let i = check(format, body, REMOVE_TAGS_FROM_STREAM)?;
            let (name, arn) = stream_ref(&i);
            b.change_tags(name, arn, Default::default(), i.strings("TagKeys"))
                .await?;
            Ok(empty())
        }
        "ListTagsForStream" => {
            list_tags_for_stream(b, check(format, body, LIST_TAGS_FOR_STREAM)?).await
        }
        "TagResource" => {
            let i = check(format, body, TAG_RESOURCE)?;
            let name = b.stream_of_resource_arn(i.str("ResourceARN").unwrap_or_default())?;
            b.change_tags(name, String::new(), i.string_map("Tags"), vec![])
                .await?;
            Ok(empty())
        }
        "UntagResource" => {
            let i = check(format, body, UNTAG_RESOURCE)?;
            let name = b.stream_of_resource_arn(i.str("ResourceARN").unwrap_or_default())?;
            b.change_tags(
                name,
                String::new(),
                Default::default(),
                i.strings("TagKeys"),
            )
            .await?;
            Ok(empty())
        }
        "ListTagsForResource" => {
            let i = check(format, body, RESOURCE_ONLY)?;
            let name = b.stream_of_resource_arn(i.str("ResourceARN").unwrap_or_default())?;
            let attrs = b.stream_attributes(name, String::new()).await?;
            Ok(Value::map([("Tags", tag_list(attrs.tags.iter()))]))
        }
        "EnableEnhancedMonitoring" | "DisableEnhancedMonitoring" => {
            let i = check(format, body, ENHANCED_MONITORING)?;
            let (name, arn) = stream_ref(&i);
            let c = b
                .change_shard_level_metrics(
                    name,
                    arn,
                    op == "EnableEnhancedMonitoring",
                    i.strings("ShardLevelMetrics"),
                )
                .await?;
            Ok(Value::map([
                ("StreamName", Value::str(c.name)),
                ("StreamARN", Value::str(c.arn)),
                ("CurrentShardLevelMetrics", str_list(c.current)),
                ("DesiredShardLevelMetrics", str_list(c.desired)),
            ]))
        }
        "UpdateMaxRecordSize" => {
            let i = check(format, body, UPDATE_MAX_RECORD_SIZE)?;
            let kib = i
                .int("MaxRecordSizeInKiB")
                .unwrap_or(0)
                .clamp(0, u32::MAX as i64) as u32;
            b.update_max_record_size(String::new(), i.string("StreamARN"), kib)
                .await?;
            Ok(empty())
        }
        "PutResourcePolicy" => {
            let i = check(format, body, PUT_RESOURCE_POLICY)?;
            b.set_resource_policy(i.string("ResourceARN"), Some(i.string("Policy")))
                .await?;
            Ok(empty())
        }
        "GetResourcePolicy" => {
            let i = check(format, body, RESOURCE_ONLY)?;
            let p = b.resource_policy(i.string("ResourceARN")).await?;
            // No policy reads as the empty policy document.
            Ok(Value::map([(
                "Policy",
                Value::str(p.unwrap_or_else(|| "{}".into())),
            )]))
        }
        "DeleteResourcePolicy" => {
            let i = check(format, body, RESOURCE_ONLY)?;
            b.set_resource_policy(i.string("ResourceARN"), None).await?;
            Ok(empty())
        }
        "DescribeLimits" => {
            check(format, body, NO_INPUT)?;
            let l = b.describe_limits().await?;
            Ok(Value::map([
                ("ShardLimit", Value::Int(l.shard_limit.into())),
                ("OpenShardCount", Value::Int(l.open_shard_count.into())),
                ("OnDemandStreamCount", Value::Int(0)),
                ("OnDemandStreamCountLimit", Value::Int(0)),
            ]))
        }
        "DescribeAccountSettings" => {
            check(format, body, NO_INPUT)?;
            Ok(account_settings(b.account_settings().await?))
        }
        "UpdateAccountSettings" => {
            let i = check(format, body, UPDATE_ACCOUNT_SETTINGS)?;
            let enabled = i
                .structure("MinimumThroughputBillingCommitment")
                .and_then(|c| c.str("Status"))
                == Some("ENABLED");
            Ok(account_settings(b.update_account_settings(enabled).await?))
        }
        _ => match UNSUPPORTED.iter().find(|(o, _)| *o == op) {
            Some((o, why)) => Err(WireError::unsupported(o, why)),
            None => Err(WireError::unknown_operation(format!(
                "Unknown operation {TARGET_PREFIX}.{op}"
            ))),
        },
    }
}

fn empty() -> Value {
    Value::Map(vec![])
}

fn str_list(items: impl IntoIterator<Item = String>) -> Value {
    Value::List(items.into_iter().map(Value::Str).collect())
}

fn tag_list<'a>(tags: impl Iterator<Item = (&'a String, &'a String)>) -> Value {
    Value::List(
        tags.map(|(k, v)| {
            Value::map([
                ("Key", Value::str(k.clone())),
                ("Value", Value::str(v.clone())),
            ])
        })
        .collect(),
    )
}

fn account_settings(a: braid_control::AccountSettings) -> Value {
    let mut c = vec![(
        "Status".to_string(),
        Value::str(if a.commitment_enabled {
            "ENABLED"
        } else {
            "DISABLED"
        }),
    )];
    if let Some(t) = a.commitment_started_ms {
        c.push(("StartedAt".into(), Value::Timestamp(t as i64)));
    }
    if let Some(t) = a.commitment_ended_ms {
        c.push(("EndedAt".into(), Value::Timestamp(t as i64)));
    }
    Value::map([("MinimumThroughputBillingCommitment", Value::Map(c))])
}

/// (StreamName, StreamARN), empty when absent.
fn stream_ref(i: &Input) -> (String, String) {
    (i.string("StreamName"), i.string("StreamARN"))
}

fn u32_of(i: Option<i64>) -> u32 {
    i.unwrap_or(0).clamp(0, u32::MAX as i64) as u32
}

fn stream_mode() -> Value {
    Value::map([("StreamMode", Value::str("PROVISIONED"))])
}

fn enhanced_monitoring(metrics: Vec<String>) -> Value {
    Value::List(vec![Value::map([("ShardLevelMetrics", str_list(metrics))])])
}

fn hash_key_range(r: Option<v1::HashKeyRange>) -> Value {
    let r = r.unwrap_or_default();
    Value::map([
        ("StartingHashKey", Value::str(r.starting_hash_key)),
        ("EndingHashKey", Value::str(r.ending_hash_key)),
    ])
}

pub(crate) fn shard_value(s: v1::Shard) -> Value {
    let mut m = vec![("ShardId".to_string(), Value::str(s.shard_id))];
    if !s.parent_shard_id.is_empty() {
        m.push(("ParentShardId".into(), Value::str(s.parent_shard_id)));
    }
    if !s.adjacent_parent_shard_id.is_empty() {
        m.push((
            "AdjacentParentShardId".into(),
            Value::str(s.adjacent_parent_shard_id),
        ));
    }
    m.push(("HashKeyRange".into(), hash_key_range(s.hash_key_range)));
    let seq = s.sequence_number_range.unwrap_or_default();
    let mut r = vec![(
        "StartingSequenceNumber".to_string(),
        Value::str(seq.starting_sequence_number),
    )];
    if !seq.ending_sequence_number.is_empty() {
        r.push((
            "EndingSequenceNumber".into(),
            Value::str(seq.ending_sequence_number),
        ));
    }
    m.push(("SequenceNumberRange".into(), Value::Map(r)));
    Value::Map(m)
}

async fn create_stream<B: Backend>(b: &B, i: Input) -> Out {
    let mode = i
        .structure("StreamModeDetails")
        .and_then(|m| m.str("StreamMode"))
        .unwrap_or("PROVISIONED");
    if mode == "ON_DEMAND" {
        return Err(WireError::unsupported(
            "ON_DEMAND streams",
            "create a PROVISIONED stream with a ShardCount",
        ));
    }
    if i.has("WarmThroughputMiBps") {
        return Err(WireError::unsupported(
            "WarmThroughputMiBps",
            "warm throughput needs ON_DEMAND streams, which do not exist",
        ));
    }
    if i.str("RecordDistributionStrategy") == Some("AUTO") {
        return Err(WireError::unsupported(
            "RecordDistributionStrategy AUTO",
            "records are always routed by partition key",
        ));
    }
    let Some(shards) = i.int("ShardCount") else {
        return Err(WireError::invalid_argument(
            "ShardCount is required for a PROVISIONED stream.",
        ));
    };
    let options = StreamOptions {
        tags: i.string_map("Tags"),
        max_record_size_kib: i.int("MaxRecordSizeInKiB").map(|k| u32_of(Some(k))),
    };
    b.create_stream(
        v1::CreateStreamRequest {
            stream_name: i.string("StreamName"),
            shard_count: u32_of(Some(shards)),
        },
        options,
    )
    .await?;
    Ok(empty())
}

async fn delete_stream<B: Backend>(b: &B, i: Input) -> Out {
    let (stream_name, stream_arn) = stream_ref(&i);
    b.delete_stream(v1::DeleteStreamRequest {
        stream_name,
        stream_arn,
        enforce_consumer_deletion: i.bool("EnforceConsumerDeletion").unwrap_or(false),
    })
    .await?;
    Ok(empty())
}

async fn describe_stream<B: Backend>(b: &B, i: Input) -> Out {
    let (stream_name, stream_arn) = stream_ref(&i);
    let d = b
        .describe_stream(v1::DescribeStreamRequest {
            stream_name: stream_name.clone(),
            stream_arn: stream_arn.clone(),
            limit: u32_of(i.int("Limit")),
            exclusive_start_shard_id: i.string("ExclusiveStartShardId"),
        })
        .await?
        .stream_description
        .unwrap_or_default();
    let attrs = b.stream_attributes(stream_name, stream_arn).await?;
    Ok(Value::map([(
        "StreamDescription",
        Value::map([
            ("StreamName", Value::str(d.stream_name)),
            ("StreamARN", Value::str(d.stream_arn)),
            ("StreamStatus", Value::str(d.stream_status)),
            ("StreamModeDetails", stream_mode()),
            (
                "Shards",
                Value::List(d.shards.into_iter().map(shard_value).collect()),
            ),
            ("HasMoreShards", Value::Bool(d.has_more_shards)),
            (
                "RetentionPeriodHours",
                Value::Int(d.retention_period_hours.into()),
            ),
            (
                "StreamCreationTimestamp",
                Value::Timestamp(d.stream_creation_timestamp_ms),
            ),
            (
                "EnhancedMonitoring",
                enhanced_monitoring(attrs.shard_level_metrics),
            ),
            ("EncryptionType", Value::str("NONE")),
        ]),
    )]))
}

async fn describe_stream_summary<B: Backend>(b: &B, i: Input) -> Out {
    let (stream_name, stream_arn) = stream_ref(&i);
    let d = b
        .describe_stream_summary(v1::DescribeStreamSummaryRequest {
            stream_name: stream_name.clone(),
            stream_arn: stream_arn.clone(),
        })
        .await?
        .stream_description_summary
        .unwrap_or_default();
    let attrs = b.stream_attributes(stream_name, stream_arn).await?;
    Ok(Value::map([(
        "StreamDescriptionSummary",
        Value::map([
            ("StreamName", Value::str(d.stream_name)),
            ("StreamARN", Value::str(d.stream_arn)),
            ("StreamStatus", Value::str(d.stream_status)),
            ("StreamModeDetails", stream_mode()),
            (
                "RetentionPeriodHours",
                Value::Int(d.retention_period_hours.into()),
            ),
            (
                "StreamCreationTimestamp",
                Value::Timestamp(d.stream_creation_timestamp_ms),
            ),
            (
                "EnhancedMonitoring",
                enhanced_monitoring(attrs.shard_level_metrics),
            ),
            ("EncryptionType", Value::str("NONE")),
            ("OpenShardCount", Value::Int(d.open_shard_count.into())),
            ("ConsumerCount", Value::Int(0)),
            (
                "MaxRecordSizeInKiB",
                Value::Int(attrs.max_record_size_kib.into()),
            ),
        ]),
    )]))
}

/// ListStreams tokens: `ls1.<issued ms>.<last stream name>`, base64url. Stream names are
/// not secret, so the token is not signed; it only carries where the next page starts.
fn list_streams_token(last: &str, issued_ms: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("ls1.{issued_ms}.{last}"))
}

fn parse_list_streams_token(token: &str, now: i64) -> Result<String, WireError> {
    let bad = || WireError::invalid_argument(format!("Invalid NextToken: {token}"));
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let mut it = text.splitn(3, '.');
    let (Some("ls1"), Some(ms), Some(last)) = (it.next(), it.next(), it.next()) else {
        return Err(bad());
    };
    let issued: i64 = ms.parse().map_err(|_| bad())?;
    if now - issued > NEXT_TOKEN_TTL_MS {
        return Err(WireError::new(
            400,
            "ExpiredNextTokenException",
            format!(
                "The NextToken has expired: it was issued more than {NEXT_TOKEN_TTL_MS} ms ago."
            ),
        ));
    }
    Ok(last.to_string())
}

async fn list_streams<B: Backend>(b: &B, i: Input) -> Out {
    let start = match i.str("NextToken") {
        Some(t) => {
            if i.has("ExclusiveStartStreamName") {
                return Err(WireError::invalid_argument(
                    "NextToken and ExclusiveStartStreamName cannot be provided together.",
                ));
            }
            parse_list_streams_token(t, now_ms())?
        }
        None => i.string("ExclusiveStartStreamName"),
    };
    let r = b
        .list_streams(v1::ListStreamsRequest {
            limit: u32_of(i.int("Limit")),
            exclusive_start_stream_name: start,
        })
        .await?;
    let mut out = vec![
        (
            "StreamNames".to_string(),
            str_list(r.stream_names.iter().cloned()),
        ),
        (
            "HasMoreStreams".to_string(),
            Value::Bool(r.has_more_streams),
        ),
    ];
    if r.has_more_streams {
        if let Some(last) = r.stream_names.last() {
            out.push((
                "NextToken".into(),
                Value::str(list_streams_token(last, now_ms())),
            ));
        }
    }
    out.push((
        "StreamSummaries".into(),
        Value::List(
            r.stream_summaries
                .into_iter()
                .map(|s| {
                    Value::map([
                        ("StreamName", Value::str(s.stream_name)),
                        ("StreamARN", Value::str(s.stream_arn)),
                        ("StreamStatus", Value::str(s.stream_status)),
                        ("StreamModeDetails", stream_mode()),
                        (
                            "StreamCreationTimestamp",
                            Value::Timestamp(s.stream_creation_timestamp_ms),
                        ),
                    ])
                })
                .collect(),
        ),
    ));
    Ok(Value::Map(out))
}

async fn list_shards<B: Backend>(b: &B, i: Input) -> Out {
    let (stream_name, stream_arn) = stream_ref(&i);
    let mut exclusive_start = i.string("ExclusiveStartShardId");
    let mut only_open = false;
    if let Some(filter) = i.structure("ShardFilter") {
        match filter.str("Type").unwrap_or_default() {
            "AFTER_SHARD_ID" => match filter.str("ShardId") {
                Some(id) => exclusive_start = id.to_string(),
                None => {
                    return Err(WireError::invalid_argument(
                        "Must specify ShardId in ShardFilter when the type is AFTER_SHARD_ID.",
                    ))
                }
            },
            // Braid has no resharding yet: every shard ever created is still open, so every
            // shard was open at any time since the stream was created.
            t @ ("AT_TIMESTAMP" | "FROM_TIMESTAMP")
                if filter.timestamp_ms("Timestamp").is_none() =>
            {
                return Err(WireError::invalid_argument(format!(
                    "Must specify Timestamp in ShardFilter when the type is {t}."
                )));
            }
            // AT_LATEST: the open shards only.
            "AT_LATEST" => only_open = true,
            // AT_TRIM_HORIZON / FROM_TRIM_HORIZON: every shard not yet expired.
            _ => {}
        }
    }
    if let Some(ts) = i.timestamp_ms("StreamCreationTimestamp") {
        if !i.has("NextToken") {
            let d = b
                .describe_stream_summary(v1::DescribeStreamSummaryRequest {
                    stream_name: stream_name.clone(),
                    stream_arn: stream_arn.clone(),
                })
                .await?
                .stream_description_summary
                .unwrap_or_default();
            if d.stream_creation_timestamp_ms / 1000 != ts / 1000 {
                return Err(WireError::new(
                    400,
                    "ResourceNotFoundException",
                    format!(
                        "Stream {} with creation time {ts} under account {} not found.",
                        d.stream_name,
                        b.account()
                    ),
                ));
            }
        }
    }
    let r = b
        .list_shards(v1::ListShardsRequest {
            stream_name,
            stream_arn,
            exclusive_start_shard_id: exclusive_start,
            max_results: u32_of(i.int("MaxResults")),
            next_token: i.string("NextToken"),
        })
        .await?;
    let shards = r
        .shards
        .into_iter()
        .filter(|s| {
            !only_open
                || s.sequence_number_range
                    .as_ref()
                    .map(|r| r.ending_sequence_number.is_empty())
                    .unwrap_or(true)
        })
        .map(shard_value)
        .collect();
    let mut out = vec![("Shards".to_string(), Value::List(shards))];
    if !r.next_token.is_empty() {
        out.push(("NextToken".into(), Value::str(r.next_token)));
    }
    Ok(Value::Map(out))
}

/// DryRun: the input was valid and the stream exists; nothing is written.
async fn dry_run<B: Backend>(b: &B, name: String, arn: String) -> Out {
    b.describe_stream_summary(v1::DescribeStreamSummaryRequest {
        stream_name: name,
        stream_arn: arn,
    })
    .await?;
    Err(WireError::new(
        400,
        "DryRunOperationException",
        "The request would have succeeded, but the DryRun flag is set.",
    ))
}

async fn put_record<B: Backend>(b: &B, mut i: Input) -> Out {
    if i.bool("DryRun") == Some(true) {
        let (stream_name, stream_arn) = stream_ref(&i);
        return dry_run(b, stream_name, stream_arn).await;
    }
    let r = b.put_record(put_record_request(&mut i)).await?;
    Ok(put_record_output(r))
}

/// The backend request of a checked PutRecord input.
pub(crate) fn put_record_request(i: &mut Input) -> v1::PutRecordRequest {
    let (stream_name, stream_arn) = stream_ref(i);
    v1::PutRecordRequest {
        stream_name,
        stream_arn,
        data: i.take_blob("Data").into(),
        partition_key: i.string("PartitionKey"),
        explicit_hash_key: i.string("ExplicitHashKey"),
        sequence_number_for_ordering: i.string("SequenceNumberForOrdering"),
    }
}

/// The output shape of PutRecord.
pub(crate) fn put_record_output(r: v1::PutRecordResponse) -> Value {
    Value::map([
        ("ShardId", Value::str(r.shard_id)),
        ("SequenceNumber", Value::str(r.sequence_number)),
        ("EncryptionType", Value::str("NONE")),
    ])
}

async fn put_records<B: Backend>(b: &B, mut i: Input) -> Out {
    if i.bool("DryRun") == Some(true) {
        let (stream_name, stream_arn) = stream_ref(&i);
        return dry_run(b, stream_name, stream_arn).await;
    }
    let r = b.put_records(put_records_request(&mut i)).await?;
    Ok(put_records_output(r))
}

/// The backend request of a checked PutRecords input.
pub(crate) fn put_records_request(i: &mut Input) -> v1::PutRecordsRequest {
    let (stream_name, stream_arn) = stream_ref(i);
    let records = i
        .take_list("Records")
        .into_iter()
        .filter_map(|t| match t {
            Typed::Struct(mut e) => Some(v1::PutRecordsRequestEntry {
                data: e.take_blob("Data").into(),
                partition_key: e.string("PartitionKey"),
                explicit_hash_key: e.string("ExplicitHashKey"),
            }),
            _ => None,
        })
        .collect();
    v1::PutRecordsRequest {
        stream_name,
        stream_arn,
        records,
    }
}

/// The output shape of PutRecords (`put_fast` writes the same bytes without this tree).
pub(crate) fn put_records_output(r: v1::PutRecordsResponse) -> Value {
    Value::map([
        (
            "FailedRecordCount",
            Value::Int(r.failed_record_count.into()),
        ),
        (
            "Records",
            Value::List(
                r.records
                    .into_iter()
                    .map(|e| {
                        if e.error_code.is_empty() {
                            Value::map([
                                ("SequenceNumber", Value::str(e.sequence_number)),
                                ("ShardId", Value::str(e.shard_id)),
                            ])
                        } else {
                            Value::map([
                                ("ErrorCode", Value::str(e.error_code)),
                                ("ErrorMessage", Value::str(e.error_message)),
                            ])
                        }
                    })
                    .collect(),
            ),
        ),
        ("EncryptionType", Value::str("NONE")),
    ])
}

async fn get_shard_iterator<B: Backend>(b: &B, i: Input) -> Out {
    use v1::ShardIteratorType as T;
    let (stream_name, stream_arn) = stream_ref(&i);
    let kind = match i.str("ShardIteratorType").unwrap_or_default() {
        "TRIM_HORIZON" => T::TrimHorizon,
        "LATEST" => T::Latest,
        "AT_SEQUENCE_NUMBER" => T::AtSequenceNumber,
        "AFTER_SEQUENCE_NUMBER" => T::AfterSequenceNumber,
        "AT_TIMESTAMP" => T::AtTimestamp,
        _ => T::Unspecified,
    };
    let timestamp_ms = i.timestamp_ms("Timestamp");
    if kind == T::AtTimestamp {
        match timestamp_ms {
            None => {
                return Err(WireError::invalid_argument(
                    "Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current request has no timestamp parameter.",
                ))
            }
            Some(t) if t < 0 => {
                return Err(WireError::invalid_argument(format!(
                    "The timestampInMillis parameter cannot be negative ({t})."
                )))
            }
            _ => {}
        }
    } else if timestamp_ms.is_some() {
        return Err(WireError::invalid_argument(format!(
            "Request should not contain a timestamp parameter for iterator of type {}.",
            i.str("ShardIteratorType").unwrap_or_default()
        )));
    }
    if i.bool("DryRun") == Some(true) {
        return dry_run(b, stream_name, stream_arn).await;
    }
    let r = b
        .get_shard_iterator(v1::GetShardIteratorRequest {
            stream_name,
            stream_arn,
            shard_id: i.string("ShardId"),
            shard_iterator_type: kind as i32,
            starting_sequence_number: i.string("StartingSequenceNumber"),
            timestamp_ms: timestamp_ms.unwrap_or(0),
        })
        .await?;
    Ok(Value::map([(
        "ShardIterator",
        Value::str(r.shard_iterator),
    )]))
}

async fn get_records<B: Backend>(b: &B, i: Input) -> Out {
    if i.bool("DryRun") == Some(true) {
        return Err(WireError::new(
            400,
            "DryRunOperationException",
            "The request would have succeeded, but the DryRun flag is set.",
        ));
    }
    let r = b
        .get_records(v1::GetRecordsRequest {
            shard_iterator: i.string("ShardIterator"),
            limit: u32_of(i.int("Limit")),
            stream_arn: i.string("StreamARN"),
            // Kinesis GetRecords answers at once.
            wait_ms: 0,
        })
        .await?;
    let mut out = vec![(
        "Records".to_string(),
        Value::List(
            r.records
                .into_iter()
                .map(|rec| {
                    Value::map([
                        ("SequenceNumber", Value::str(rec.sequence_number)),
                        (
                            "ApproximateArrivalTimestamp",
                            Value::Timestamp(rec.approximate_arrival_timestamp_ms),
                        ),
                        ("Data", Value::Bytes(rec.data.into())),
                        ("PartitionKey", Value::str(rec.partition_key)),
                    ])
                })
                .collect(),
        ),
    )];
    if !r.next_shard_iterator.is_empty() {
        out.push((
            "NextShardIterator".into(),
            Value::str(r.next_shard_iterator),
        ));
    }
    out.push((
        "MillisBehindLatest".into(),
        Value::Int(r.millis_behind_latest.max(0).into()),
    ));
    if !r.child_shards.is_empty() {
        out.push((
            "ChildShards".into(),
            Value::List(
                r.child_shards
                    .into_iter()
                    .map(|c| {
                        Value::map([
                            ("ShardId", Value::str(c.shard_id)),
                            ("ParentShards", str_list(c.parent_shards)),
                            ("HashKeyRange", hash_key_range(c.hash_key_range)),
                        ])
                    })
                    .collect(),
            ),
        ));
    }
    Ok(Value::Map(out))
}

async fn change_retention<B: Backend>(b: &B, i: Input, increase: bool) -> Out {
    let (stream_name, stream_arn) = stream_ref(&i);
    let hours = i.int("RetentionPeriodHours").unwrap_or(0);
    if hours < 0 || hours > u32::MAX as i64 {
        return Err(WireError::invalid_argument(format!(
            "Requested retention period ({hours} hours) is out of range."
        )));
    }
    b.change_retention(
        v1::ChangeRetentionRequest {
            stream_name,
            stream_arn,
            retention_period_hours: hours as u32,
        },
        increase,
    )
    .await?;
    Ok(empty())
}

async fn list_tags_for_stream<B: Backend>(b: &B, i: Input) -> Out {
    let (name, arn) = stream_ref(&i);
    let attrs = b.stream_attributes(name, arn).await?;
    let limit = i.int("Limit").unwrap_or(50).max(1) as usize;
    let after = i.str("ExclusiveStartTagKey");
    let rest: Vec<(&String, &String)> = attrs
        .tags
        .iter()
        .filter(|(k, _)| after.map(|a| k.as_str() > a).unwrap_or(true))
        .collect();
    let has_more = rest.len() > limit;
    Ok(Value::map([
        ("Tags", tag_list(rest.into_iter().take(limit))),
        ("HasMoreTags", Value::Bool(has_more)),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_of_the_model_is_known_once() {
        let mut all: Vec<&str> = IMPLEMENTED.to_vec();
        all.extend(UNSUPPORTED.iter().map(|(o, _)| *o));
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "an operation is listed twice");
        // The 39 operations of the 2013-12-02 API plus the 18 channel/queue operations of the
        // newest botocore model.
        assert_eq!(n, 57);
        assert!(is_known("PutRecords") && is_known("SplitShard"));
        assert!(!is_known("PutRecordz") && !is_known(""));
    }

    #[test]
    fn list_streams_tokens() {
        let t = list_streams_token("orders.v1", 1_000);
        assert_eq!(parse_list_streams_token(&t, 2_000).unwrap(), "orders.v1");
        let e = parse_list_streams_token(&t, 1_000 + NEXT_TOKEN_TTL_MS + 1).unwrap_err();
        assert_eq!(e.type_name, "ExpiredNextTokenException");
        for bad in ["", "!!", "bHMxLng", &URL_SAFE_NO_PAD.encode("ls2.1.x")] {
            let e = parse_list_streams_token(bad, 0).unwrap_err();
            assert_eq!(e.type_name, "InvalidArgumentException", "{bad}");
        }
    }
}
