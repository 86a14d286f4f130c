//! Input shapes of the implemented operations, from the botocore model
//! (`botocore/data/kinesis/2013-12-02/service-2.json`): member names, types and constraints.
//!
//! Two deliberate differences: `PartitionKey` is required (the model made it optional for
//! AWS's `RecordDistributionStrategy=AUTO`, which Braid does not have), and the `Data` limit
//! here is the model's 10 MiB; each stream's own `MaxRecordSizeInKiB` is enforced by the node.

use super::schema::{Field, StrRule, Ty};

const fn s(min: Option<usize>, max: Option<usize>, pattern: Option<&'static str>) -> Ty {
    Ty::Str(StrRule {
        min,
        max,
        pattern,
        one_of: None,
    })
}

const fn one_of(values: &'static [&'static str]) -> Ty {
    Ty::Str(StrRule {
        min: None,
        max: None,
        pattern: None,
        one_of: Some(values),
    })
}

const fn f(name: &'static str, ty: &'static Ty) -> Field {
    Field {
        name,
        ty,
        required: false,
    }
}

const fn req(name: &'static str, ty: &'static Ty) -> Field {
    Field {
        name,
        ty,
        required: true,
    }
}

pub static STREAM_NAME: Ty = s(Some(1), Some(128), Some("[a-zA-Z0-9_.-]+"));
pub static STREAM_ARN: Ty = s(
    Some(1),
    Some(2048),
    Some("arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+"),
);
pub static STREAM_ID: Ty = s(Some(1), Some(24), Some("[a-z0-9]{20}-[a-z0-9]{3}"));
pub static SHARD_ID: Ty = s(Some(1), Some(128), Some("[a-zA-Z0-9_.-]+"));
pub static RESOURCE_ARN: Ty = s(
    Some(1),
    Some(2048),
    Some("arn:aws.*:kinesis:.*:\\d{12}:.*(stream|channel|queue)/\\S+"),
);
pub static HASH_KEY: Ty = s(None, None, Some("^(0|([1-9]\\d{0,38}))$"));
pub static SEQUENCE_NUMBER: Ty = s(None, None, Some("^(0|([1-9]\\d{0,128}))$"));
pub static PARTITION_KEY: Ty = s(Some(1), Some(256), None);
pub static DATA: Ty = Ty::Blob { max: 10_485_760 };
pub static BOOLEAN: Ty = Ty::Bool;
pub static TIMESTAMP: Ty = Ty::Timestamp;
pub static NEXT_TOKEN: Ty = s(Some(1), Some(1_048_576), None);
pub static SHARD_ITERATOR: Ty = s(Some(1), Some(512), None);
pub static TAG_KEY: Ty = s(Some(1), Some(128), None);
pub static TAG_VALUE: Ty = s(Some(0), Some(256), None);
pub static TAG_MAP: Ty = Ty::Map {
    min: Some(1),
    max: Some(200),
    key: &TAG_KEY,
    value: &TAG_VALUE,
};
pub static TAG_KEY_LIST: Ty = Ty::List {
    min: Some(1),
    max: Some(50),
    member: &TAG_KEY,
    member_str: "",
};
pub static METRICS_NAME: Ty = one_of(&[
    "IncomingBytes",
    "IncomingRecords",
    "OutgoingBytes",
    "OutgoingRecords",
    "WriteProvisionedThroughputExceeded",
    "ReadProvisionedThroughputExceeded",
    "IteratorAgeMilliseconds",
    "ALL",
]);
pub static METRICS_LIST: Ty = Ty::List {
    min: Some(1),
    max: Some(7),
    member: &METRICS_NAME,
    member_str: "",
};
pub static POLICY: Ty = s(None, None, None);
pub static ANY_INT: Ty = Ty::Int {
    min: None,
    max: None,
};
pub static POSITIVE_INT: Ty = Ty::Int {
    min: Some(1),
    max: None,
};
pub static NATURAL_INT: Ty = Ty::Int {
    min: Some(0),
    max: None,
};
pub static LIMIT_10000: Ty = Ty::Int {
    min: Some(1),
    max: Some(10_000),
};
pub static LIMIT_50: Ty = Ty::Int {
    min: Some(1),
    max: Some(50),
};
pub static MAX_RECORD_SIZE_KIB: Ty = Ty::Int {
    min: Some(1024),
    max: Some(10_240),
};
pub static STREAM_MODE: Ty = one_of(&["PROVISIONED", "ON_DEMAND"]);
pub static STREAM_MODE_DETAILS: Ty = Ty::Struct(&[req("StreamMode", &STREAM_MODE)]);
pub static RECORD_DISTRIBUTION_STRATEGY: Ty = one_of(&["AUTO", "USER_PARTITION_KEY"]);
pub static SHARD_ITERATOR_TYPE: Ty = one_of(&[
    "AT_SEQUENCE_NUMBER",
    "AFTER_SEQUENCE_NUMBER",
    "TRIM_HORIZON",
    "LATEST",
    "AT_TIMESTAMP",
]);
pub static SHARD_FILTER_TYPE: Ty = one_of(&[
    "AFTER_SHARD_ID",
    "AT_TRIM_HORIZON",
    "FROM_TRIM_HORIZON",
    "AT_LATEST",
    "AT_TIMESTAMP",
    "FROM_TIMESTAMP",
]);
pub static SHARD_FILTER: Ty = Ty::Struct(&[
    req("Type", &SHARD_FILTER_TYPE),
    f("ShardId", &SHARD_ID),
    f("Timestamp", &TIMESTAMP),
]);
pub static PUT_RECORDS_ENTRY: Ty = Ty::Struct(&[
    req("Data", &DATA),
    f("ExplicitHashKey", &HASH_KEY),
    req("PartitionKey", &PARTITION_KEY),
]);
pub static PUT_RECORDS_ENTRIES: Ty = Ty::List {
    min: Some(1),
    max: Some(500),
    member: &PUT_RECORDS_ENTRY,
    member_str: "com.amazonaws.kinesis.v20131202.PutRecordsRequestEntry",
};
pub static COMMITMENT_STATUS: Ty = one_of(&["ENABLED", "DISABLED"]);
pub static COMMITMENT_INPUT: Ty = Ty::Struct(&[req("Status", &COMMITMENT_STATUS)]);

pub static CREATE_STREAM: &[Field] = &[
    req("StreamName", &STREAM_NAME),
    f("ShardCount", &POSITIVE_INT),
    f("StreamModeDetails", &STREAM_MODE_DETAILS),
    f("Tags", &TAG_MAP),
    f("WarmThroughputMiBps", &NATURAL_INT),
    f("MaxRecordSizeInKiB", &MAX_RECORD_SIZE_KIB),
    f("RecordDistributionStrategy", &RECORD_DISTRIBUTION_STRATEGY),
];
pub static DELETE_STREAM: &[Field] = &[
    f("StreamName", &STREAM_NAME),
    f("EnforceConsumerDeletion", &BOOLEAN),
    f("StreamARN", &STREAM_ARN),
    f("StreamId", &STREAM_ID),
];
pub static DESCRIBE_STREAM: &[Field] = &[
    f("StreamName", &STREAM_NAME),
    f("Limit", &LIMIT_10000),
    f("ExclusiveStartShardId", &SHARD_ID),
    f("StreamARN", &STREAM_ARN),
    f("StreamId", &STREAM_ID),
];
pub static STREAM_ONLY: &[Field] = &[
    f("StreamName", &STREAM_NAME),
    f("StreamARN", &STREAM_ARN),
    f("StreamId", &STREAM_ID),
];
pub static LIST_STREAMS: &[Field] = &[
    f("Limit", &LIMIT_10000),
    f("ExclusiveStartStreamName", &STREAM_NAME),
    f("NextToken", &NEXT_TOKEN),
];
pub static LIST_SHARDS: &[Field] = &[
    f("StreamName", &STREAM_NAME),
    f("NextToken", &NEXT_TOKEN),
    f("ExclusiveStartShardId", &SHARD_ID),
    f("MaxResults", &LIMIT_10000),
    f("StreamCreationTimestamp", &TIMESTAMP),
    f("ShardFilter", &SHARD_FILTER),
    f("StreamARN", &STREAM_ARN),
    f("StreamId", &STREAM_ID),
];
pub static PUT_RECORD: &[Field] = &[
    f("StreamName", &STREAM_NAME),
    req("Data", &DATA),
    req("PartitionKey", &PARTITION_KEY),
    f("ExplicitHashKey", &HASH_KEY),
    f("SequenceNumberForOrdering", &SEQUENCE_NUMBER),
    f("StreamARN", &STREAM_ARN),
    f("StreamId", &STREAM_ID),
    f("DryRun", &BOOLEAN),
];
pub static PUT_RECORDS: &[Field] = &[
    req("Records", &PUT_RECORDS_ENTRIES),
    f("StreamName", &STREAM_NAME),
    f("StreamARN", &STREAM_ARN),
    f("StreamId", &STREAM_ID),
    f("DryRun", &BOOLEAN),
];
pub static GET_SHARD_ITERATOR: &[Field] = &[
    f("StreamName", &STREAM_NAME),
    req("ShardId", &SHARD_ID),
    req("ShardIteratorType", &SHARD_ITERATOR_TYPE),
    f("StartingSequenceNumber", &SEQUENCE_NUMBER),
    f("Timestamp", &TIMESTAMP),
    f("StreamARN", &STREAM_ARN),
    f("StreamId", &STREAM_ID),
    f("DryRun", &BOOLEAN),
];
pub static GET_RECORDS: &[Field] = &[
    req("ShardIterator", &SHARD_ITERATOR),
    f("Limit", &LIMIT_10000),
    f("StreamARN", &STREAM_ARN),
    f("StreamId", &STREAM_ID),
    f("DryRun", &BOOLEAN),
];
pub static CHANGE_RETENTION: &[Field] = &[
    f("StreamName", &STREAM_NAME),
    req("RetentionPeriodHours", &ANY_INT),
    f("StreamARN", &STREAM_ARN),
    f("StreamId", &STREAM_ID),
];
pub static ADD_TAGS_TO_STREAM: &[Field] = &[
    f("StreamName", &STREAM_NAME),
    req("Tags", &TAG_MAP),
    f("StreamARN", &STREAM_ARN),
    f("StreamId", &STREAM_ID),
];
pub static LIST_TAGS_FOR_STREAM: &[Field] = &[
    f("StreamName", &STREAM_NAME),
    f("ExclusiveStartTagKey", &TAG_KEY),
    f("Limit", &LIMIT_50),
    f("StreamARN", &STREAM_ARN),
    f("StreamId", &STREAM_ID),
];
pub static REMOVE_TAGS_FROM_STREAM: &[Field] = &[
    f("StreamName", &STREAM_NAME),
    req("TagKeys", &TAG_KEY_LIST),
    f("StreamARN", &STREAM_ARN),
    f("StreamId", &STREAM_ID),
];
pub static TAG_RESOURCE: &[Field] = &[
    req("Tags", &TAG_MAP),
    req("ResourceARN", &RESOURCE_ARN),
    f("StreamId", &STREAM_ID),
];
pub static UNTAG_RESOURCE: &[Field] = &[
    req("TagKeys", &TAG_KEY_LIST),
    req("ResourceARN", &RESOURCE_ARN),
    f("StreamId", &STREAM_ID),
];
pub static RESOURCE_ONLY: &[Field] =
    &[req("ResourceARN", &RESOURCE_ARN), f("StreamId", &STREAM_ID)];
pub static PUT_RESOURCE_POLICY: &[Field] = &[
    req("ResourceARN", &RESOURCE_ARN),
    f("StreamId", &STREAM_ID),
    req("Policy", &POLICY),
];
pub static ENHANCED_MONITORING: &[Field] = &[
    f("StreamName", &STREAM_NAME),
    req("ShardLevelMetrics", &METRICS_LIST),
    f("StreamARN", &STREAM_ARN),
    f("StreamId", &STREAM_ID),
];
pub static UPDATE_MAX_RECORD_SIZE: &[Field] = &[
    f("StreamARN", &STREAM_ARN),
    f("StreamId", &STREAM_ID),
    req("MaxRecordSizeInKiB", &MAX_RECORD_SIZE_KIB),
];
pub static UPDATE_ACCOUNT_SETTINGS: &[Field] =
    &[req("MinimumThroughputBillingCommitment", &COMMITMENT_INPUT)];
pub static NO_INPUT: &[Field] = &[];
