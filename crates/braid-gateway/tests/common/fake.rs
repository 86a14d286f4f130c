//! A fake [`Backend`]: records every call and answers with fixed values, so the wire layer
//! can be tested in-process without a cluster. Stream names steer errors: `missing` → not
//! found, `boom` → internal failure, `busy` → unavailable, `panic` → a panic.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, Response};
use braid_control::{AccountSettings, StreamOptions};
use braid_gateway::kinesis::{router, Backend};
use braid_node::api::{Limits, MetricsChange, StreamAttributes};
use braid_proto::v1;
use braid_types::{BraidError, ErrorCode};
use tower::ServiceExt;

type R<T> = Result<T, BraidError>;

/// One backend call, with its arguments.
#[derive(Clone, Debug, PartialEq)]
pub enum Call {
    CreateStream(v1::CreateStreamRequest, StreamOptions),
    DeleteStream(v1::DeleteStreamRequest),
    ListStreams(v1::ListStreamsRequest),
    DescribeStream(v1::DescribeStreamRequest),
    DescribeStreamSummary(v1::DescribeStreamSummaryRequest),
    ListShards(v1::ListShardsRequest),
    PutRecord(v1::PutRecordRequest),
    PutRecords(v1::PutRecordsRequest),
    GetShardIterator(v1::GetShardIteratorRequest),
    GetRecords(v1::GetRecordsRequest),
    ChangeRetention(v1::ChangeRetentionRequest, bool),
    StreamAttributes(String, String),
    ChangeTags(String, String, BTreeMap<String, String>, Vec<String>),
    ChangeShardLevelMetrics(String, String, bool, Vec<String>),
    UpdateMaxRecordSize(String, String, u32),
    SetResourcePolicy(String, Option<String>),
    ResourcePolicy(String),
    DescribeLimits,
    AccountSettings,
    UpdateAccountSettings(bool),
}

#[derive(Clone, Default)]
pub struct Fake {
    pub calls: Arc<Mutex<Vec<Call>>>,
}

pub const ARRIVAL_MS: i64 = 1_602_553_946_447;
pub const CREATED_MS: i64 = 1_600_000_000_123;
pub const ARN: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/orders";

impl Fake {
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
    pub fn last(&self) -> Option<Call> {
        self.calls.lock().unwrap().last().cloned()
    }
    fn log(&self, c: Call) {
        self.calls.lock().unwrap().push(c);
    }
    /// Answers `Ok(v)` unless the stream name asks for a failure.
    fn steer<T>(name: &str, v: T) -> R<T> {
        match name {
            "missing" => Err(BraidError::stream_not_found("missing")),
            "boom" => Err(BraidError::internal("boom")),
            "busy" => Err(BraidError::unavailable("The cluster is still starting.")),
            "panic" => panic!("the fake backend was asked to panic"),
            _ => Ok(v),
        }
    }

    /// Sends one request through the router.
    pub async fn send(&self, req: Request<Body>) -> Response<Body> {
        router(self.clone()).oneshot(req).await.expect("infallible")
    }
}

pub fn shard(i: u32) -> v1::Shard {
    v1::Shard {
        shard_id: format!("shardId-{i:012}"),
        parent_shard_id: String::new(),
        adjacent_parent_shard_id: if i == 1 {
            "shardId-000000000000".into()
        } else {
            String::new()
        },
        hash_key_range: Some(v1::HashKeyRange {
            starting_hash_key: (i as u128 * (u128::MAX / 2)).to_string(),
            ending_hash_key: if i == 0 {
                (u128::MAX / 2 - 1).to_string()
            } else {
                u128::MAX.to_string()
            },
        }),
        sequence_number_range: Some(v1::SequenceNumberRange {
            starting_sequence_number: "49600000000000000000000000000000000000000000000000000000"
                .into(),
            ending_sequence_number: if i == 0 {
                "49600000000000000000000000000000000000000000000000000099".into()
            } else {
                String::new()
            },
        }),
        replicas: vec![],
        group_id: i as u64 + 1,
    }
}

fn description(name: &str) -> v1::StreamDescription {
    v1::StreamDescription {
        stream_name: name.into(),
        stream_arn: ARN.into(),
        stream_status: "ACTIVE".into(),
        shards: vec![shard(0), shard(1)],
        has_more_shards: false,
        retention_period_hours: 24,
        stream_creation_timestamp_ms: CREATED_MS,
        open_shard_count: 1,
    }
}

impl Backend for Fake {
    async fn create_stream(&self, req: v1::CreateStreamRequest, options: StreamOptions) -> R<()> {
        let name = req.stream_name.clone();
        self.log(Call::CreateStream(req, options));
        Fake::steer(&name, ())
    }
    async fn delete_stream(&self, req: v1::DeleteStreamRequest) -> R<()> {
        let name = req.stream_name.clone();
        self.log(Call::DeleteStream(req));
        Fake::steer(&name, ())
    }
    async fn list_streams(&self, req: v1::ListStreamsRequest) -> R<v1::ListStreamsResponse> {
        self.log(Call::ListStreams(req));
        Ok(v1::ListStreamsResponse {
            stream_names: vec!["a".into(), "b".into()],
            has_more_streams: true,
            stream_summaries: ["a", "b"]
                .iter()
                .map(|n| v1::StreamSummary {
                    stream_name: n.to_string(),
                    stream_arn: format!("arn:aws:kinesis:us-east-1:000000000000:stream/{n}"),
                    stream_status: "ACTIVE".into(),
                    stream_creation_timestamp_ms: CREATED_MS,
                })
                .collect(),
        })
    }
    async fn describe_stream(
        &self,
        req: v1::DescribeStreamRequest,
    ) -> R<v1::DescribeStreamResponse> {
        let name = req.stream_name.clone();
        self.log(Call::DescribeStream(req));
        Fake::steer(
            &name,
            v1::DescribeStreamResponse {
                stream_description: Some(description(&name)),
            },
        )
    }
    async fn describe_stream_summary(
        &self,
        req: v1::DescribeStreamSummaryRequest,
    ) -> R<v1::DescribeStreamSummaryResponse> {
        let name = req.stream_name.clone();
        self.log(Call::DescribeStreamSummary(req));
        let mut d = description(&name);
        d.shards.clear();
        Fake::steer(
            &name,
            v1::DescribeStreamSummaryResponse {
                stream_description_summary: Some(d),
            },
        )
    }
    async fn list_shards(&self, req: v1::ListShardsRequest) -> R<v1::ListShardsResponse> {
        let name = req.stream_name.clone();
        self.log(Call::ListShards(req));
        Fake::steer(
            &name,
            v1::ListShardsResponse {
                shards: vec![shard(0), shard(1)],
                next_token: "orders/1".into(),
            },
        )
    }
    async fn put_record(&self, req: v1::PutRecordRequest) -> R<v1::PutRecordResponse> {
        let name = req.stream_name.clone();
        self.log(Call::PutRecord(req));
        Fake::steer(
            &name,
            v1::PutRecordResponse {
                shard_id: "shardId-000000000001".into(),
                sequence_number: "49600000000000000000000000000000000000000000000000000007".into(),
            },
        )
    }
    async fn put_records(&self, req: v1::PutRecordsRequest) -> R<v1::PutRecordsResponse> {
        let name = req.stream_name.clone();
        let n = req.records.len();
        self.log(Call::PutRecords(req));
        let records = (0..n)
            .map(|i| {
                if i % 2 == 0 {
                    v1::PutRecordsResultEntry {
                        shard_id: "shardId-000000000000".into(),
                        sequence_number: format!(
                            "4960000000000000000000000000000000000000000000000000000{i}"
                        ),
                        ..Default::default()
                    }
                } else {
                    v1::PutRecordsResultEntry {
                        error_code: "ProvisionedThroughputExceededException".into(),
                        error_message: "Rate exceeded for shard shardId-000000000000".into(),
                        ..Default::default()
                    }
                }
            })
            .collect();
        Fake::steer(
            &name,
            v1::PutRecordsResponse {
                failed_record_count: (n / 2) as u32,
                records,
            },
        )
    }
    async fn get_shard_iterator(
        &self,
        req: v1::GetShardIteratorRequest,
    ) -> R<v1::GetShardIteratorResponse> {
        let name = req.stream_name.clone();
        self.log(Call::GetShardIterator(req));
        Fake::steer(
            &name,
            v1::GetShardIteratorResponse {
                shard_iterator: "AAAAiterator".into(),
            },
        )
    }
    async fn get_records(&self, req: v1::GetRecordsRequest) -> R<v1::GetRecordsResponse> {
        let it = req.shard_iterator.clone();
        self.log(Call::GetRecords(req));
        if it == "expired" {
            return Err(BraidError::new(
                ErrorCode::ExpiredIterator,
                "Iterator expired.",
            ));
        }
        if it == "closed" {
            return Ok(v1::GetRecordsResponse {
                records: vec![],
                next_shard_iterator: String::new(),
                millis_behind_latest: 0,
                child_shards: vec![v1::ChildShard {
                    shard_id: "shardId-000000000002".into(),
                    parent_shards: vec!["shardId-000000000000".into()],
                    hash_key_range: Some(v1::HashKeyRange {
                        starting_hash_key: "0".into(),
                        ending_hash_key: "10".into(),
                    }),
                }],
            });
        }
        Fake::steer(
            &it,
            v1::GetRecordsResponse {
                records: vec![v1::Record {
                    sequence_number: "49600000000000000000000000000000000000000000000000000001"
                        .into(),
                    approximate_arrival_timestamp_ms: ARRIVAL_MS,
                    data: vec![0, 1, 2, 255].into(),
                    partition_key: "pk".into(),
                }],
                next_shard_iterator: "AAAAnext".into(),
                millis_behind_latest: 42,
                child_shards: vec![],
            },
        )
    }
    async fn change_retention(&self, req: v1::ChangeRetentionRequest, increase: bool) -> R<()> {
        let name = req.stream_name.clone();
        self.log(Call::ChangeRetention(req, increase));
        Fake::steer(&name, ())
    }
    async fn stream_attributes(&self, name: String, arn: String) -> R<StreamAttributes> {
        self.log(Call::StreamAttributes(name.clone(), arn.clone()));
        Fake::steer(
            &name,
            StreamAttributes {
                name: if name.is_empty() {
                    "orders".into()
                } else {
                    name.clone()
                },
                arn: ARN.into(),
                tags: BTreeMap::from([
                    ("a".to_string(), "1".to_string()),
                    ("b".to_string(), String::new()),
                    ("c".to_string(), "3".to_string()),
                ]),
                shard_level_metrics: vec!["IncomingBytes".into()],
                max_record_size_kib: 2048,
            },
        )
    }
    fn stream_of_resource_arn(&self, arn: &str) -> R<String> {
        arn.rsplit_once("stream/")
            .map(|(_, n)| n.to_string())
            .ok_or_else(|| BraidError::not_found(format!("Resource {arn} not found.")))
    }
    async fn change_tags(
        &self,
        name: String,
        arn: String,
        set: BTreeMap<String, String>,
        remove: Vec<String>,
    ) -> R<()> {
        self.log(Call::ChangeTags(name.clone(), arn, set, remove));
        Fake::steer(&name, ())
    }
    async fn change_shard_level_metrics(
        &self,
        name: String,
        arn: String,
        enable: bool,
        metrics: Vec<String>,
    ) -> R<MetricsChange> {
        self.log(Call::ChangeShardLevelMetrics(
            name.clone(),
            arn,
            enable,
            metrics.clone(),
        ));
        Fake::steer(
            &name,
            MetricsChange {
                name: name.clone(),
                arn: ARN.into(),
                current: vec![],
                desired: metrics,
            },
        )
    }
    async fn update_max_record_size(&self, name: String, arn: String, kib: u32) -> R<()> {
        self.log(Call::UpdateMaxRecordSize(name, arn, kib));
        Ok(())
    }
    async fn set_resource_policy(&self, resource_arn: String, policy: Option<String>) -> R<()> {
        self.log(Call::SetResourcePolicy(resource_arn, policy));
        Ok(())
    }
    async fn resource_policy(&self, resource_arn: String) -> R<Option<String>> {
        self.log(Call::ResourcePolicy(resource_arn));
        Ok(Some("{\"Version\":\"2012-10-17\"}".into()))
    }
    async fn describe_limits(&self) -> R<Limits> {
        self.log(Call::DescribeLimits);
        Ok(Limits {
            shard_limit: 4096,
            open_shard_count: 7,
        })
    }
    async fn account_settings(&self) -> R<AccountSettings> {
        self.log(Call::AccountSettings);
        Ok(AccountSettings::default())
    }
    async fn update_account_settings(&self, commitment_enabled: bool) -> R<AccountSettings> {
        self.log(Call::UpdateAccountSettings(commitment_enabled));
        Ok(AccountSettings {
            commitment_enabled,
            commitment_started_ms: Some(CREATED_MS as u64),
            commitment_ended_ms: None,
        })
    }
    fn account(&self) -> String {
        "000000000000".into()
    }
}
