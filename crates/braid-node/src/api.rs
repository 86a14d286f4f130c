//! The public operations, over braid.v1 messages, with Kinesis semantics. Protocol front ends
//! (gRPC in braid-gateway, and the Kinesis HTTP API) call these and only translate shapes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use braid_control::catalog::{MAX_RECORD_SIZE_KIB_MAX, MAX_RECORD_SIZE_KIB_MIN, STREAM_TAGS_MAX};
use braid_control::{
    AccountSettings, ControlRequest, ShardMeta, StreamMeta, StreamOptions, StreamStatus,
};
use braid_proto::v1;
use braid_raft::records::{RecordBatch, RecordBatchBuilder};
use braid_raft::shard::{ShardRequest, ShardResponse};
use braid_types::error::ErrorCode;
use braid_types::hash::{parse_explicit_hash_key, partition_key_hash};
use braid_types::iterator::IteratorToken;
use braid_types::limits::*;
use braid_types::names::{
    parse_shard_id, shard_id, stream_name_from_arn, validate_partition_key, validate_stream_name,
};
use braid_types::seqnum::{Position, SequenceNumber};
use braid_types::{BraidError, GroupId};
use futures::future::join_all;

use crate::forward::{ForwardOp, ForwardReply, LocalStatus};
use crate::node::{now_ms, Node};

#[derive(Clone)]
pub struct Api {
    pub node: Arc<Node>,
}

type R<T> = Result<T, BraidError>;

fn validation(msg: impl Into<String>) -> BraidError {
    BraidError::new(ErrorCode::Validation, msg)
}

/// The AWS message for a data blob over its size limit.
fn data_too_long(path: &str, len: usize, max: usize) -> BraidError {
    validation(format!(
        "1 validation error detected: Value 'java.nio.HeapByteBuffer[pos=0 lim={len} cap={len}]' at '{path}' failed to satisfy constraint: Member must have length less than or equal to {max}"
    ))
}

/// A record's position from its entry and its place in it (below 2^16: `ENTRY_RECORDS_MAX`).
fn position(index: u64, sub: u32) -> Position {
    Position::new(
        index,
        u16::try_from(sub).expect("entry sub-index fits 16 bits"),
    )
}

fn seq(shard: &ShardMeta, pos: Position, arrival_ms: u64) -> String {
    SequenceNumber::new(shard.created_ms / 1000, shard.index, pos, arrival_ms / 1000).to_string()
}

fn pb_shard(s: &ShardMeta, leader: Option<u64>, zones: &BTreeMap<u64, String>) -> v1::Shard {
    v1::Shard {
        shard_id: shard_id(s.index),
        parent_shard_id: s.parent.map(shard_id).unwrap_or_default(),
        adjacent_parent_shard_id: s.adjacent_parent.map(shard_id).unwrap_or_default(),
        hash_key_range: Some(v1::HashKeyRange {
            starting_hash_key: s.range.start.to_string(),
            ending_hash_key: s.range.end.to_string(),
        }),
        sequence_number_range: Some(v1::SequenceNumberRange {
            starting_sequence_number: seq(s, Position::ZERO, s.created_ms),
            ending_sequence_number: s
                .ending_position
                .map(|p| seq(s, p, s.created_ms))
                .unwrap_or_default(),
        }),
        replicas: s
            .replicas
            .iter()
            .map(|r| v1::Replica {
                node_id: *r,
                zone: zones.get(r).cloned().unwrap_or_default(),
                leader: leader == Some(*r),
                matched_index: 0,
                failed: String::new(),
            })
            .collect(),
        group_id: s.group,
    }
}

impl Api {
    pub fn new(node: Arc<Node>) -> Api {
        Api { node }
    }

    fn zones(&self) -> BTreeMap<u64, String> {
        self.node
            .config
            .peers
            .iter()
            .map(|p| (p.id, p.zone.clone()))
            .collect()
    }

    fn resolve_name(name: &str, arn: &str) -> R<String> {
        if !name.is_empty() {
            validate_stream_name(name)?;
            return Ok(name.to_string());
        }
        if !arn.is_empty() {
            return stream_name_from_arn(arn);
        }
        Err(BraidError::invalid(
            "Either StreamName or StreamARN should be provided.",
        ))
    }

    /// The stream as this node knows it, catching up with the control leader on a miss.
    async fn stream(&self, name: &str) -> R<StreamMeta> {
        let local = self
            .node
            .control_sm
            .read(|st| st.streams.get(name).cloned());
        if let Some(s) = local {
            return Ok(s);
        }
        self.node.catch_up_control().await;
        self.node.control_sm.read(|st| st.stream(name).cloned())
    }

    async fn active_stream(&self, name: &str) -> R<StreamMeta> {
        let s = self.stream(name).await?;
        match s.status {
            StreamStatus::Active | StreamStatus::Updating => Ok(s),
            _ => Err(BraidError::stream_not_found(name)),
        }
    }

    fn secret(&self) -> R<Vec<u8>> {
        let s = self.node.control_sm.read(|st| st.iterator_secret.clone());
        if s.is_empty() {
            return Err(BraidError::unavailable("The cluster is still starting."));
        }
        Ok(s)
    }

    pub async fn create_stream(&self, req: v1::CreateStreamRequest) -> R<v1::CreateStreamResponse> {
        self.create_stream_with(req, StreamOptions::default()).await
    }

    /// CreateStream with the Kinesis-only attributes (tags, `MaxRecordSizeInKiB`).
    pub async fn create_stream_with(
        &self,
        req: v1::CreateStreamRequest,
        options: StreamOptions,
    ) -> R<v1::CreateStreamResponse> {
        validate_stream_name(&req.stream_name)?;
        validate_tags(
            options
                .tags
                .iter()
                .map(|(k, v)| (k.as_str(), Some(v.as_str()))),
        )?;
        if let Some(kib) = options.max_record_size_kib {
            check_max_record_size_kib(kib)?;
        }
        if req.shard_count < 1 {
            return Err(validation("1 validation error detected: Value '0' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1"));
        }
        let node = &self.node;
        node.control_write(ControlRequest::CreateStream {
            name: req.stream_name,
            shard_count: req.shard_count,
            now_ms: now_ms(),
            region: node.config.region.clone(),
            account: node.config.account.clone(),
            nodes: node.control_nodes(),
            options,
        })
        .await?;
        Ok(v1::CreateStreamResponse {})
    }

    pub async fn delete_stream(&self, req: v1::DeleteStreamRequest) -> R<v1::DeleteStreamResponse> {
        let name = Self::resolve_name(&req.stream_name, &req.stream_arn)?;
        self.stream(&name).await?;
        self.node
            .control_write(ControlRequest::DeleteStream { name })
            .await?;
        Ok(v1::DeleteStreamResponse {})
    }

    pub async fn list_streams(&self, req: v1::ListStreamsRequest) -> R<v1::ListStreamsResponse> {
        if req.limit > LIST_STREAMS_PAGE_MAX {
            return Err(validation(format!("1 validation error detected: Value '{}' at 'limit' failed to satisfy constraint: Member must have value less than or equal to {LIST_STREAMS_PAGE_MAX}", req.limit)));
        }
        self.node.catch_up_control().await;
        let limit = if req.limit == 0 { 100 } else { req.limit } as usize;
        let all: Vec<StreamMeta> = self.node.control_sm.read(|st| {
            st.streams
                .values()
                .filter(|s| {
                    req.exclusive_start_stream_name.is_empty()
                        || s.name > req.exclusive_start_stream_name
                })
                .cloned()
                .collect()
        });
        let has_more = all.len() > limit;
        let page = &all[..all.len().min(limit)];
        Ok(v1::ListStreamsResponse {
            stream_names: page.iter().map(|s| s.name.clone()).collect(),
            has_more_streams: has_more,
            stream_summaries: page
                .iter()
                .map(|s| v1::StreamSummary {
                    stream_name: s.name.clone(),
                    stream_arn: s.arn.clone(),
                    stream_status: s.status.as_str().into(),
                    stream_creation_timestamp_ms: s.created_ms as i64,
                })
                .collect(),
        })
    }

    fn description(
        &self,
        s: &StreamMeta,
        shards: Vec<v1::Shard>,
        has_more: bool,
    ) -> v1::StreamDescription {
        v1::StreamDescription {
            stream_name: s.name.clone(),
            stream_arn: s.arn.clone(),
            stream_status: s.status.as_str().into(),
            shards,
            has_more_shards: has_more,
            retention_period_hours: s.retention_hours,
            stream_creation_timestamp_ms: s.created_ms as i64,
            open_shard_count: s.shards.iter().filter(|x| x.is_open()).count() as u32,
        }
    }

    fn pb_shards(
        &self,
        s: &StreamMeta,
        after: Option<u32>,
        limit: usize,
    ) -> (Vec<v1::Shard>, bool) {
        let zones = self.zones();
        let all: Vec<&ShardMeta> = s
            .shards
            .iter()
            .filter(|x| after.map(|a| x.index > a).unwrap_or(true))
            .collect();
        let has_more = all.len() > limit;
        let shards = all
            .into_iter()
            .take(limit)
            .map(|x| pb_shard(x, self.node.leader_of(x.group), &zones))
            .collect();
        (shards, has_more)
    }

    pub async fn describe_stream(
        &self,
        req: v1::DescribeStreamRequest,
    ) -> R<v1::DescribeStreamResponse> {
        let name = Self::resolve_name(&req.stream_name, &req.stream_arn)?;
        let s = self.stream(&name).await?;
        if req.limit > 10_000 {
            return Err(validation("1 validation error detected: Value at 'limit' failed to satisfy constraint: Member must have value less than or equal to 10000"));
        }
        let limit = if req.limit == 0 {
            100
        } else {
            req.limit as usize
        };
        let after = if req.exclusive_start_shard_id.is_empty() {
            None
        } else {
            Some(parse_shard_id(&req.exclusive_start_shard_id)?)
        };
        let (shards, has_more) = self.pb_shards(&s, after, limit);
        Ok(v1::DescribeStreamResponse {
            stream_description: Some(self.description(&s, shards, has_more)),
        })
    }

    pub async fn describe_stream_summary(
        &self,
        req: v1::DescribeStreamSummaryRequest,
    ) -> R<v1::DescribeStreamSummaryResponse> {
        let name = Self::resolve_name(&req.stream_name, &req.stream_arn)?;
        let s = self.stream(&name).await?;
        Ok(v1::DescribeStreamSummaryResponse {
            stream_description_summary: Some(self.description(&s, vec![], false)),
        })
    }

    pub async fn list_shards(&self, req: v1::ListShardsRequest) -> R<v1::ListShardsResponse> {
        let max = if req.max_results == 0 {
            1000
        } else {
            req.max_results
        } as usize;
        if max > LIST_SHARDS_PAGE_MAX as usize {
            return Err(validation("1 validation error detected: Value at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 10000"));
        }
        let (name, after) = if !req.next_token.is_empty() {
            let (n, a) = req
                .next_token
                .rsplit_once('/')
                .ok_or_else(|| BraidError::invalid("Invalid NextToken."))?;
            let a: u32 = a
                .parse()
                .map_err(|_| BraidError::invalid("Invalid NextToken."))?;
            validate_stream_name(n).map_err(|_| BraidError::invalid("Invalid NextToken."))?;
            // SDK paginators send the first page's StreamName (or StreamARN) again with the
            // token: accept it when it names the token's stream.
            if !req.stream_name.is_empty() || !req.stream_arn.is_empty() {
                let named = Self::resolve_name(&req.stream_name, &req.stream_arn)?;
                if named != n {
                    return Err(BraidError::invalid(
                        "NextToken and StreamName cannot be provided together.",
                    ));
                }
            }
            (n.to_string(), Some(a))
        } else {
            let name = Self::resolve_name(&req.stream_name, &req.stream_arn)?;
            let after = if req.exclusive_start_shard_id.is_empty() {
                None
            } else {
                Some(parse_shard_id(&req.exclusive_start_shard_id)?)
            };
            (name, after)
        };
        let s = self.stream(&name).await?;
        let (shards, has_more) = self.pb_shards(&s, after, max);
        let next_token = if has_more {
            let last = shards
                .last()
                .map(|x| parse_shard_id(&x.shard_id).unwrap_or(0))
                .unwrap_or(0);
            format!("{name}/{last}")
        } else {
            String::new()
        };
        Ok(v1::ListShardsResponse { shards, next_token })
    }

    /// Checks one record against the largest size any stream may accept; the stream's own
    /// `MaxRecordSizeInKiB` is checked by [`Api::check_record_sizes`] once the stream is known.
    fn validate_record(key: &str, data_len: usize, ehk: &str) -> R<u128> {
        validate_partition_key(key)?;
        let max = MAX_RECORD_SIZE_KIB_MAX as usize * 1024;
        if data_len > max {
            return Err(data_too_long("data", data_len, max));
        }
        if ehk.is_empty() {
            Ok(partition_key_hash(key))
        } else {
            parse_explicit_hash_key(ehk)
        }
    }

    /// Checks record data sizes against the stream's `MaxRecordSizeInKiB`.
    fn check_record_sizes(
        s: &StreamMeta,
        sizes: impl Iterator<Item = usize>,
        batch: bool,
    ) -> R<()> {
        let max = s.max_record_size_kib as usize * 1024;
        for (i, len) in sizes.enumerate() {
            if len > max {
                let path = if batch {
                    format!("records.{}.member.data", i + 1)
                } else {
                    "data".to_string()
                };
                return Err(data_too_long(&path, len, max));
            }
        }
        Ok(())
    }

    pub async fn put_record(&self, req: v1::PutRecordRequest) -> R<v1::PutRecordResponse> {
        let name = Self::resolve_name(&req.stream_name, &req.stream_arn)?;
        let hash =
            Self::validate_record(&req.partition_key, req.data.len(), &req.explicit_hash_key)?;
        if !req.sequence_number_for_ordering.is_empty() {
            SequenceNumber::parse(&req.sequence_number_for_ordering).map_err(|_| {
                BraidError::invalid(format!(
                    "ExclusiveMinimumSequenceNumber {} used in PutRecord on stream {name} under account {} is invalid.",
                    req.sequence_number_for_ordering, self.node.config.account
                ))
            })?;
        }
        let s = self.active_stream(&name).await?;
        Self::check_record_sizes(&s, [req.data.len()].into_iter(), false)?;
        let shard = s
            .route(hash)
            .ok_or_else(|| BraidError::internal("no open shard for hash key"))?
            .clone();
        let put = ShardRequest::Put {
            // The leader's proposer stamps the entry's own arrival time.
            arrival_ms: now_ms(),
            records: {
                let mut b =
                    RecordBatchBuilder::with_capacity(1, req.partition_key.len() + req.data.len());
                b.push(&req.partition_key, &req.data);
                b.finish()
            },
        };
        match self.node.shard_write(shard.group, put).await? {
            ShardResponse::Appended {
                index,
                first,
                count: 1,
                arrival_ms,
            } => Ok(v1::PutRecordResponse {
                shard_id: shard_id(shard.index),
                sequence_number: seq(&shard, position(index, first), arrival_ms),
            }),
            ShardResponse::Sealed => Err(BraidError::unavailable("The shard was closed; retry.")),
            other => Err(BraidError::internal(format!(
                "unexpected write result {other:?}"
            ))),
        }
    }

    pub async fn put_records(&self, req: v1::PutRecordsRequest) -> R<v1::PutRecordsResponse> {
        let name = Self::resolve_name(&req.stream_name, &req.stream_arn)?;
        let n = req.records.len();
        if n == 0 || n > PUT_RECORDS_COUNT_MAX {
            return Err(validation(format!("1 validation error detected: Value at 'records' failed to satisfy constraint: Member must have length less than or equal to {PUT_RECORDS_COUNT_MAX} and greater than or equal to 1 (was {n})")));
        }
        let mut hashes = Vec::with_capacity(n);
        let mut total = 0usize;
        for r in &req.records {
            hashes.push(Self::validate_record(
                &r.partition_key,
                r.data.len(),
                &r.explicit_hash_key,
            )?);
            total += r.data.len() + r.partition_key.len();
        }
        if total > PUT_RECORDS_BYTES_MAX {
            return Err(BraidError::invalid(format!(
                "Records size exceeds {} MB limit",
                PUT_RECORDS_BYTES_MAX >> 20
            )));
        }
        let s = self.active_stream(&name).await?;
        Self::check_record_sizes(&s, req.records.iter().map(|r| r.data.len()), true)?;
        // Group by shard, remembering each record's place in the request.
        let mut by_shard: BTreeMap<u32, (ShardMeta, Vec<usize>)> = BTreeMap::new();
        for (i, h) in hashes.into_iter().enumerate() {
            let shard = s
                .route(h)
                .ok_or_else(|| BraidError::internal("no open shard for hash key"))?;
            by_shard
                .entry(shard.index)
                .or_insert_with(|| (shard.clone(), vec![]))
                .1
                .push(i);
        }
        let by_shard: Vec<(ShardMeta, Vec<usize>, RecordBatch)> = by_shard
            .into_values()
            .map(|(shard, places)| {
                let bytes = places
                    .iter()
                    .map(|i| req.records[*i].partition_key.len() + req.records[*i].data.len())
                    .sum();
                let mut b = RecordBatchBuilder::with_capacity(places.len(), bytes);
                for i in &places {
                    b.push(&req.records[*i].partition_key, &req.records[*i].data);
                }
                (shard, places, b.finish())
            })
            .collect();
        drop(req.records);
        // The leader's proposer stamps each entry's own arrival time.
        let arrival_ms = now_ms();
        let writes = by_shard.into_iter().map(|(shard, places, records)| {
            let node = self.node.clone();
            async move {
                let res = node
                    .shard_write(
                        shard.group,
                        ShardRequest::Put {
                            arrival_ms,
                            records,
                        },
                    )
                    .await;
                (shard, places, res)
            }
        });
        let mut out = vec![v1::PutRecordsResultEntry::default(); n];
        let mut failed = 0u32;
        for (shard, places, res) in join_all(writes).await {
            let id = shard_id(shard.index);
            for (sub, i) in places.iter().enumerate() {
                out[*i] = match &res {
                    Ok(ShardResponse::Appended {
                        index,
                        first,
                        count,
                        arrival_ms,
                    }) if *count as usize == places.len() => v1::PutRecordsResultEntry {
                        shard_id: id.clone(),
                        sequence_number: seq(
                            &shard,
                            position(*index, first + sub as u32),
                            *arrival_ms,
                        ),
                        ..Default::default()
                    },
                    Ok(other) => {
                        failed += 1;
                        v1::PutRecordsResultEntry {
                            error_code: "InternalFailure".into(),
                            error_message: format!("Internal service failure ({other:?})."),
                            ..Default::default()
                        }
                    }
                    Err(e) => {
                        failed += 1;
                        let code = if e.code == ErrorCode::ProvisionedThroughputExceeded {
                            ErrorCode::ProvisionedThroughputExceeded
                        } else {
                            ErrorCode::InternalFailure
                        };
                        v1::PutRecordsResultEntry {
                            error_code: code.kinesis_name().into(),
                            error_message: if code == ErrorCode::InternalFailure {
                                "Internal service failure.".into()
                            } else {
                                e.message.clone()
                            },
                            ..Default::default()
                        }
                    }
                };
            }
        }
        Ok(v1::PutRecordsResponse {
            failed_record_count: failed,
            records: out,
        })
    }

    async fn tip(&self, group: GroupId) -> R<(Option<u64>, Option<u64>)> {
        match self.node.route(ForwardOp::ShardTip { group }).await? {
            ForwardReply::ShardTip { applied, first } => Ok((applied, first)),
            ForwardReply::Error(e) => Err(e),
            other => Err(BraidError::internal(format!("unexpected reply {other:?}"))),
        }
    }

    pub async fn get_shard_iterator(
        &self,
        req: v1::GetShardIteratorRequest,
    ) -> R<v1::GetShardIteratorResponse> {
        use v1::ShardIteratorType as T;
        let name = Self::resolve_name(&req.stream_name, &req.stream_arn)?;
        let index = parse_shard_id(&req.shard_id)?;
        let s = self.active_stream(&name).await?;
        let shard = s.shard(index).cloned().ok_or_else(|| {
            BraidError::not_found(format!(
                "Shard {} in stream {name} under account {} does not exist",
                req.shard_id, self.node.config.account
            ))
        })?;
        let kind = T::try_from(req.shard_iterator_type).unwrap_or(T::Unspecified);
        let has_seq = !req.starting_sequence_number.is_empty();
        if matches!(kind, T::TrimHorizon | T::Latest | T::AtTimestamp) && has_seq {
            return Err(BraidError::invalid(
                "Request should not contain a StartingSequenceNumber for this iterator type.",
            ));
        }
        let at_seq = |s: &str| -> R<Position> {
            let parsed = SequenceNumber::parse(s)?;
            if parsed.shard_index != shard.index {
                return Err(BraidError::invalid(format!(
                    "Invalid StartingSequenceNumber. It encodes {}, while it was used in a call to a shard with {}",
                    shard_id(parsed.shard_index),
                    shard_id(shard.index)
                )));
            }
            Ok(parsed.position)
        };
        let position = match kind {
            T::TrimHorizon => Position::ZERO,
            T::Latest => {
                let (applied, _) = self.tip(shard.group).await?;
                Position {
                    index: applied.map(|a| a + 1).unwrap_or(0),
                    sub: 0,
                }
            }
            T::AtSequenceNumber | T::AfterSequenceNumber => {
                if !has_seq {
                    return Err(BraidError::invalid(
                        "Must specify StartingSequenceNumber for this iterator type.",
                    ));
                }
                let p = at_seq(&req.starting_sequence_number)?;
                if kind == T::AtSequenceNumber {
                    p
                } else if p.sub == u16::MAX {
                    Position {
                        index: p.index + 1,
                        sub: 0,
                    }
                } else {
                    Position {
                        index: p.index,
                        sub: p.sub + 1,
                    }
                }
            }
            T::AtTimestamp => {
                let ts = req.timestamp_ms;
                if ts <= 0 && req.timestamp_ms != 0 {
                    return Err(BraidError::invalid("Timestamp must be non-negative."));
                }
                if ts as u64 > now_ms() + 1000 {
                    return Err(BraidError::invalid(
                        "The timestamp provided is in the future.",
                    ));
                }
                match self
                    .node
                    .route(ForwardOp::ShardSeekTime {
                        group: shard.group,
                        ts_ms: ts as u64,
                    })
                    .await?
                {
                    ForwardReply::ShardSeek(i) => Position { index: i, sub: 0 },
                    ForwardReply::Error(e) => return Err(e),
                    other => {
                        return Err(BraidError::internal(format!("unexpected reply {other:?}")))
                    }
                }
            }
            T::Unspecified => {
                return Err(validation("1 validation error detected: Value at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value set: [AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, TRIM_HORIZON, LATEST, AT_TIMESTAMP]"));
            }
        };
        let token = IteratorToken {
            stream: name,
            stream_created_ms: s.created_ms,
            shard_index: shard.index,
            position,
            issued_ms: now_ms(),
        };
        Ok(v1::GetShardIteratorResponse {
            shard_iterator: token.encode(&self.secret()?),
        })
    }

    pub async fn get_records(&self, req: v1::GetRecordsRequest) -> R<v1::GetRecordsResponse> {
        if req.limit > GET_RECORDS_COUNT_MAX {
            return Err(validation(format!("1 validation error detected: Value '{}' at 'limit' failed to satisfy constraint: Member must have value less than or equal to {GET_RECORDS_COUNT_MAX}", req.limit)));
        }
        let limit = if req.limit == 0 {
            GET_RECORDS_COUNT_MAX
        } else {
            req.limit
        };
        let secret = self.secret()?;
        let now = now_ms();
        let token = IteratorToken::decode(&req.shard_iterator, &secret, now)?;
        let s = self.stream(&token.stream).await?;
        if s.created_ms != token.stream_created_ms {
            return Err(BraidError::stream_not_found(&token.stream));
        }
        let shard = s
            .shard(token.shard_index)
            .cloned()
            .ok_or_else(|| BraidError::invalid("Invalid ShardIterator."))?;
        if req.wait_ms > GET_RECORDS_WAIT_MS_MAX {
            return Err(BraidError::invalid(format!(
                "WaitMs {} is above the maximum of {GET_RECORDS_WAIT_MS_MAX} ms.",
                req.wait_ms
            )));
        }
        let op = ForwardOp::ShardRead {
            group: shard.group,
            from: token.position,
            limit,
            bytes_max: GET_RECORDS_BYTES_MAX as u64,
            wait_ms: req.wait_ms,
        };
        let local = match &op {
            ForwardOp::ShardRead {
                group,
                from,
                limit,
                bytes_max,
                ..
            } => self
                .node
                .read_local(*group, *from, *limit, *bytes_max as usize),
            _ => None,
        };
        let batch = match local {
            Some(r) => r?,
            None => match self.node.route(op).await? {
                ForwardReply::ShardRead(b) => b,
                ForwardReply::Error(e) => return Err(e),
                other => return Err(BraidError::internal(format!("unexpected reply {other:?}"))),
            },
        };
        let last_arrival = batch.records.last().map(|r| r.arrival_ms);
        let records = batch
            .records
            .into_iter()
            .map(|r| v1::Record {
                sequence_number: seq(&shard, r.position, r.arrival_ms),
                approximate_arrival_timestamp_ms: r.arrival_ms as i64,
                data: r.data.into(),
                partition_key: r.partition_key,
            })
            .collect();
        let millis_behind_latest = if batch.caught_up {
            0
        } else {
            batch
                .tip_arrival_ms
                .saturating_sub(last_arrival.unwrap_or(batch.tip_arrival_ms)) as i64
        };
        let next_shard_iterator = if batch.closed {
            String::new()
        } else {
            IteratorToken {
                position: batch.next,
                issued_ms: now,
                ..token
            }
            .encode(&secret)
        };
        Ok(v1::GetRecordsResponse {
            records,
            next_shard_iterator,
            millis_behind_latest,
            child_shards: vec![],
        })
    }

    pub async fn change_retention(
        &self,
        req: v1::ChangeRetentionRequest,
        increase: bool,
    ) -> R<v1::ChangeRetentionResponse> {
        let name = Self::resolve_name(&req.stream_name, &req.stream_arn)?;
        let s = self.active_stream(&name).await?;
        let h = req.retention_period_hours;
        if !(RETENTION_HOURS_MIN..=RETENTION_HOURS_MAX).contains(&h) {
            return Err(BraidError::invalid(format!(
                "Minimum allowed retention period is {RETENTION_HOURS_MIN} hours. Maximum allowed retention period is {RETENTION_HOURS_MAX} hours. Requested retention period ({h} hours) is out of range."
            )));
        }
        if increase && h < s.retention_hours {
            return Err(BraidError::invalid(format!(
                "Requested retention period ({h} hours) for stream {name} can not be shorter than existing retention period ({} hours). Use DecreaseRetentionPeriod API.",
                s.retention_hours
            )));
        }
        if !increase && h > s.retention_hours {
            return Err(BraidError::invalid(format!(
                "Requested retention period ({h} hours) for stream {name} can not be longer than existing retention period ({} hours). Use IncreaseRetentionPeriod API.",
                s.retention_hours
            )));
        }
        self.node
            .control_write(ControlRequest::SetRetention { name, hours: h })
            .await?;
        Ok(v1::ChangeRetentionResponse {})
    }

    pub async fn cluster_status(&self) -> R<v1::ClusterStatusResponse> {
        let node = &self.node;
        let asks = node.transport.peers().map(|p| {
            let node = node.clone();
            let id = p.id;
            async move {
                if id == node.id {
                    return (id, Some(node.local_status()));
                }
                match node
                    .transport
                    .forward(id, &ForwardOp::LocalStatus, Duration::from_secs(1))
                    .await
                {
                    Ok(ForwardReply::LocalStatus(s)) => (id, Some(s)),
                    _ => (id, None),
                }
            }
        });
        let reports: Vec<(u64, Option<LocalStatus>)> = join_all(asks).await;
        let (streams, cluster_id) = node
            .control_sm
            .read(|st| (st.streams.clone(), st.cluster_id.clone()));
        let mut best: BTreeMap<GroupId, (u64, crate::forward::GroupStatus)> = BTreeMap::new();
        // Replicas whose Raft instance stopped on an error, by (group, node).
        let mut failed: BTreeMap<(GroupId, u64), String> = BTreeMap::new();
        for (id, rep) in reports.iter() {
            let Some(rep) = rep else { continue };
            for g in &rep.groups {
                if let Some(e) = &g.failed {
                    failed.insert((g.group, *id), e.clone());
                }
                let is_leader_report = g.leader == Some(*id);
                let replace = match best.get(&g.group) {
                    None => true,
                    Some((bid, b)) => is_leader_report && b.leader != Some(*bid),
                };
                if replace {
                    best.insert(g.group, (*id, g.clone()));
                }
            }
        }
        let zones = self.zones();
        let nodes = node
            .transport
            .peers()
            .map(|p| {
                let rep = reports
                    .iter()
                    .find(|(id, _)| *id == p.id)
                    .and_then(|(_, r)| r.as_ref());
                let (leaders, replicas) = rep
                    .map(|r| {
                        let shards: Vec<_> = r
                            .groups
                            .iter()
                            .filter(|g| g.group != braid_types::CONTROL_GROUP)
                            .collect();
                        (
                            shards.iter().filter(|g| g.leader == Some(p.id)).count() as u32,
                            shards.len() as u32,
                        )
                    })
                    .unwrap_or((0, 0));
                v1::NodeStatus {
                    node_id: p.id,
                    zone: p.zone.clone(),
                    address: p.addr.clone(),
                    reachable: rep.is_some(),
                    leader_count: leaders,
                    replica_count: replicas,
                    forwarded_ops: rep.map(|r| r.forwarded_ops).unwrap_or(0),
                }
            })
            .collect();
        let mut shards = Vec::new();
        for s in streams.values() {
            for sh in &s.shards {
                let st = best
                    .get(&sh.group)
                    .map(|(_, g)| g.clone())
                    .unwrap_or_default();
                let matched: BTreeMap<u64, Option<u64>> = st.matched.iter().cloned().collect();
                shards.push(v1::ShardStatus {
                    stream_name: s.name.clone(),
                    shard_id: shard_id(sh.index),
                    group_id: sh.group,
                    leader_node_id: st.leader.unwrap_or(0),
                    term: st.term,
                    last_log_index: st.last_log_index.unwrap_or(0),
                    committed_index: st.committed.unwrap_or(0),
                    quiesced: st.quiesced,
                    replicas: sh
                        .replicas
                        .iter()
                        .map(|r| v1::Replica {
                            node_id: *r,
                            zone: zones.get(r).cloned().unwrap_or_default(),
                            leader: st.leader == Some(*r),
                            matched_index: matched.get(r).copied().flatten().unwrap_or(0),
                            failed: failed.get(&(sh.group, *r)).cloned().unwrap_or_default(),
                        })
                        .collect(),
                });
            }
        }
        let control_leader = best
            .get(&braid_types::CONTROL_GROUP)
            .and_then(|(_, g)| g.leader)
            .unwrap_or(0);
        Ok(v1::ClusterStatusResponse {
            cluster_id: cluster_id.unwrap_or_default(),
            answering_node_id: node.id,
            control_leader_node_id: control_leader,
            nodes,
            shards,
        })
    }
}

/// The shard-level metric names of EnableEnhancedMonitoring (`ALL` stands for all of them).
pub const SHARD_LEVEL_METRICS: [&str; 7] = [
    "IncomingBytes",
    "IncomingRecords",
    "OutgoingBytes",
    "OutgoingRecords",
    "WriteProvisionedThroughputExceeded",
    "ReadProvisionedThroughputExceeded",
    "IteratorAgeMilliseconds",
];

/// Stream attributes that only the Kinesis API shows (no braid.v1 message carries them yet).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamAttributes {
    pub name: String,
    pub arn: String,
    pub tags: BTreeMap<String, String>,
    /// Enabled shard-level metrics, in [`SHARD_LEVEL_METRICS`] order.
    pub shard_level_metrics: Vec<String>,
    pub max_record_size_kib: u32,
}

/// The answer of Enable/DisableEnhancedMonitoring.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricsChange {
    pub name: String,
    pub arn: String,
    pub current: Vec<String>,
    pub desired: Vec<String>,
}

/// What DescribeLimits reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub shard_limit: u32,
    pub open_shard_count: u32,
}

fn check_max_record_size_kib(kib: u32) -> R<()> {
    if (MAX_RECORD_SIZE_KIB_MIN..=MAX_RECORD_SIZE_KIB_MAX).contains(&kib) {
        Ok(())
    } else {
        Err(BraidError::invalid(format!(
            "MaxRecordSizeInKiB {kib} is not supported: Braid accepts {MAX_RECORD_SIZE_KIB_MIN} to {MAX_RECORD_SIZE_KIB_MAX} KiB."
        )))
    }
}

/// Tag keys and values: Unicode letters, digits, white space and `_ . : / = + - @`; keys
/// 1..=128 characters and not starting with `aws:`, values 0..=256 characters.
fn validate_tags<'a>(tags: impl Iterator<Item = (&'a str, Option<&'a str>)>) -> R<()> {
    let ok_chars = |s: &str| {
        s.chars()
            .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c))
    };
    for (k, v) in tags {
        let klen = k.chars().count();
        if !(1..=128).contains(&klen) {
            return Err(validation(format!("1 validation error detected: Value '{k}' at 'tags' failed to satisfy constraint: Map keys must satisfy constraint: [Member must have length less than or equal to 128, Member must have length greater than or equal to 1]")));
        }
        if v.map(|v| v.chars().count() > 256).unwrap_or(false) {
            return Err(validation("1 validation error detected: Value at 'tags' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to 256, Member must have length greater than or equal to 0]"));
        }
        if !ok_chars(k) || !v.map(ok_chars).unwrap_or(true) {
            return Err(BraidError::invalid(
                "Some tags contain invalid characters. Valid characters: Unicode letters, digits, white space, _ . : / = + - @.",
            ));
        }
        if k.to_ascii_lowercase().starts_with("aws:") {
            return Err(BraidError::invalid(format!(
                "Tag key {k} uses the reserved prefix aws:."
            )));
        }
    }
    Ok(())
}

/// Kinesis-only operations: tags, enhanced-monitoring flags, record size, resource policies,
/// limits and account settings. They take plain Rust values (no braid.v1 messages yet).
impl Api {
    fn account(&self) -> &str {
        &self.node.config.account
    }

    /// The stream a resource ARN names (TagResource, PutResourcePolicy, ...). Braid has no
    /// consumers, channels or queues, so their ARNs name nothing.
    pub fn stream_of_resource_arn(&self, arn: &str) -> R<String> {
        if arn.contains("/consumer/") {
            return Err(BraidError::not_found(format!(
                "Consumer {arn} under account {} not found.",
                self.account()
            )));
        }
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        if parts.len() == 6 && parts[0] == "arn" && parts[2] == "kinesis" {
            if parts[5].starts_with("stream/") {
                return stream_name_from_arn(arn);
            }
            return Err(BraidError::not_found(format!(
                "Resource {arn} under account {} not found.",
                self.account()
            )));
        }
        Err(BraidError::invalid(format!("Invalid ResourceARN: {arn}")))
    }

    fn attributes(s: &StreamMeta) -> StreamAttributes {
        StreamAttributes {
            name: s.name.clone(),
            arn: s.arn.clone(),
            tags: s.tags.clone(),
            shard_level_metrics: SHARD_LEVEL_METRICS
                .iter()
                .filter(|m| s.shard_level_metrics.contains(**m))
                .map(|m| m.to_string())
                .collect(),
            max_record_size_kib: s.max_record_size_kib,
        }
    }

    pub async fn stream_attributes(
        &self,
        stream_name: &str,
        stream_arn: &str,
    ) -> R<StreamAttributes> {
        let name = Self::resolve_name(stream_name, stream_arn)?;
        Ok(Self::attributes(&self.stream(&name).await?))
    }

    /// Adds or overwrites `set`, then removes `remove` (AddTagsToStream, RemoveTagsFromStream,
    /// TagResource, UntagResource).
    pub async fn change_tags(
        &self,
        stream_name: &str,
        stream_arn: &str,
        set: BTreeMap<String, String>,
        remove: Vec<String>,
    ) -> R<()> {
        let name = Self::resolve_name(stream_name, stream_arn)?;
        validate_tags(
            set.iter()
                .map(|(k, v)| (k.as_str(), Some(v.as_str())))
                .chain(remove.iter().map(|k| (k.as_str(), None))),
        )?;
        let s = self.stream(&name).await?;
        let mut after: std::collections::BTreeSet<&String> = s.tags.keys().collect();
        after.extend(set.keys());
        for k in &remove {
            after.remove(k);
        }
        if after.len() > STREAM_TAGS_MAX {
            return Err(BraidError::invalid(format!(
                "Failed to add tags to stream {name} under account {} because a given stream cannot have more than {STREAM_TAGS_MAX} tags associated with it.",
                self.account()
            )));
        }
        self.node
            .control_write(ControlRequest::ChangeTags { name, set, remove })
            .await
    }

    /// Enable/DisableEnhancedMonitoring: records the flags; reports them before and after.
    pub async fn change_shard_level_metrics(
        &self,
        stream_name: &str,
        stream_arn: &str,
        enable: bool,
        metrics: Vec<String>,
    ) -> R<MetricsChange> {
        let name = Self::resolve_name(stream_name, stream_arn)?;
        let mut names = Vec::new();
        for m in &metrics {
            if m == "ALL" {
                names.extend(SHARD_LEVEL_METRICS.iter().map(|x| x.to_string()));
            } else if SHARD_LEVEL_METRICS.contains(&m.as_str()) {
                names.push(m.clone());
            } else {
                return Err(BraidError::invalid(format!(
                    "Unknown shard-level metric {m}."
                )));
            }
        }
        let before = Self::attributes(&self.active_stream_or_in_use(&name).await?);
        self.node
            .control_write(ControlRequest::ChangeShardLevelMetrics {
                name: name.clone(),
                enable,
                metrics: names,
            })
            .await?;
        let after = Self::attributes(&self.stream(&name).await?);
        Ok(MetricsChange {
            name: after.name,
            arn: after.arn,
            current: before.shard_level_metrics,
            desired: after.shard_level_metrics,
        })
    }

    /// A stream that must be ACTIVE for a control change (ResourceInUseException otherwise).
    async fn active_stream_or_in_use(&self, name: &str) -> R<StreamMeta> {
        let s = self.stream(name).await?;
        if s.status != StreamStatus::Active {
            return Err(BraidError::in_use(format!(
                "Stream {name} under account {} not ACTIVE, instead in state {}",
                self.account(),
                s.status.as_str()
            )));
        }
        Ok(s)
    }

    pub async fn update_max_record_size(
        &self,
        stream_name: &str,
        stream_arn: &str,
        kib: u32,
    ) -> R<()> {
        let name = Self::resolve_name(stream_name, stream_arn)?;
        check_max_record_size_kib(kib)?;
        self.active_stream_or_in_use(&name).await?;
        self.node
            .control_write(ControlRequest::SetMaxRecordSize { name, kib })
            .await
    }

    /// Put (Some) or delete (None) the resource policy of the stream `resource_arn` names.
    pub async fn set_resource_policy(&self, resource_arn: &str, policy: Option<String>) -> R<()> {
        let name = self.stream_of_resource_arn(resource_arn)?;
        if let Some(p) = &policy {
            let doc: Result<serde_json::Value, _> = serde_json::from_str(p);
            if !matches!(doc, Ok(serde_json::Value::Object(_))) {
                return Err(BraidError::invalid(
                    "Policy is not a valid JSON policy document.",
                ));
            }
        }
        let s = self.stream(&name).await?;
        if policy.is_none() && s.resource_policy.is_none() {
            return Err(BraidError::not_found(format!(
                "No resource policy found for resource {resource_arn}."
            )));
        }
        self.node
            .control_write(ControlRequest::SetResourcePolicy { name, policy })
            .await
    }

    /// The stored resource policy, if any.
    pub async fn resource_policy(&self, resource_arn: &str) -> R<Option<String>> {
        let name = self.stream_of_resource_arn(resource_arn)?;
        Ok(self.stream(&name).await?.resource_policy)
    }

    pub async fn describe_limits(&self) -> R<Limits> {
        self.node.catch_up_control().await;
        let open = self.node.control_sm.read(|st| {
            st.streams
                .values()
                .flat_map(|s| s.shards.iter())
                .filter(|x| x.is_open())
                .count()
        });
        Ok(Limits {
            shard_limit: CLUSTER_SHARDS_MAX,
            open_shard_count: open as u32,
        })
    }

    pub async fn account_settings(&self) -> R<AccountSettings> {
        self.node.catch_up_control().await;
        Ok(self.node.control_sm.read(|st| st.account.clone()))
    }

    pub async fn update_account_settings(&self, commitment_enabled: bool) -> R<AccountSettings> {
        self.node
            .control_write(ControlRequest::SetAccountCommitment {
                enabled: commitment_enabled,
                now_ms: now_ms(),
            })
            .await?;
        Ok(self.node.control_sm.read(|st| st.account.clone()))
    }
}
