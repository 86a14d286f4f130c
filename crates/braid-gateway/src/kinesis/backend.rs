//! What the Kinesis front end needs from a node: [`braid_node::Api`] implements it; tests use
//! fakes. Every method is one `Api` call.

use std::collections::BTreeMap;
use std::future::Future;

use braid_control::{AccountSettings, StreamOptions};
use braid_node::api::{Limits, MetricsChange, StreamAttributes};
use braid_node::Api;
use braid_proto::v1;
use braid_types::BraidError;

type R<T> = Result<T, BraidError>;

pub trait Backend: Clone + Send + Sync + 'static {
    fn create_stream(
        &self,
        req: v1::CreateStreamRequest,
        options: StreamOptions,
    ) -> impl Future<Output = R<()>> + Send;
    fn delete_stream(&self, req: v1::DeleteStreamRequest) -> impl Future<Output = R<()>> + Send;
    fn list_streams(
        &self,
        req: v1::ListStreamsRequest,
    ) -> impl Future<Output = R<v1::ListStreamsResponse>> + Send;
    fn describe_stream(
        &self,
        req: v1::DescribeStreamRequest,
    ) -> impl Future<Output = R<v1::DescribeStreamResponse>> + Send;
    fn describe_stream_summary(
        &self,
        req: v1::DescribeStreamSummaryRequest,
    ) -> impl Future<Output = R<v1::DescribeStreamSummaryResponse>> + Send;
    fn list_shards(
        &self,
        req: v1::ListShardsRequest,
    ) -> impl Future<Output = R<v1::ListShardsResponse>> + Send;
    fn put_record(
        &self,
        req: v1::PutRecordRequest,
    ) -> impl Future<Output = R<v1::PutRecordResponse>> + Send;
    fn put_records(
        &self,
        req: v1::PutRecordsRequest,
    ) -> impl Future<Output = R<v1::PutRecordsResponse>> + Send;
    fn get_shard_iterator(
        &self,
        req: v1::GetShardIteratorRequest,
    ) -> impl Future<Output = R<v1::GetShardIteratorResponse>> + Send;
    fn get_records(
        &self,
        req: v1::GetRecordsRequest,
    ) -> impl Future<Output = R<v1::GetRecordsResponse>> + Send;
    fn change_retention(
        &self,
        req: v1::ChangeRetentionRequest,
        increase: bool,
    ) -> impl Future<Output = R<()>> + Send;
    fn stream_attributes(
        &self,
        name: String,
        arn: String,
    ) -> impl Future<Output = R<StreamAttributes>> + Send;
    fn stream_of_resource_arn(&self, arn: &str) -> R<String>;
    fn change_tags(
        &self,
        name: String,
        arn: String,
        set: BTreeMap<String, String>,
        remove: Vec<String>,
    ) -> impl Future<Output = R<()>> + Send;
    fn change_shard_level_metrics(
        &self,
        name: String,
        arn: String,
        enable: bool,
        metrics: Vec<String>,
    ) -> impl Future<Output = R<MetricsChange>> + Send;
    fn update_max_record_size(
        &self,
        name: String,
        arn: String,
        kib: u32,
    ) -> impl Future<Output = R<()>> + Send;
    fn set_resource_policy(
        &self,
        resource_arn: String,
        policy: Option<String>,
    ) -> impl Future<Output = R<()>> + Send;
    fn resource_policy(
        &self,
        resource_arn: String,
    ) -> impl Future<Output = R<Option<String>>> + Send;
    fn describe_limits(&self) -> impl Future<Output = R<Limits>> + Send;
    fn account_settings(&self) -> impl Future<Output = R<AccountSettings>> + Send;
    fn update_account_settings(
        &self,
        commitment_enabled: bool,
    ) -> impl Future<Output = R<AccountSettings>> + Send;
    /// The account id stream ARNs carry (for messages).
    fn account(&self) -> String;
}

impl Backend for Api {
    async fn create_stream(&self, req: v1::CreateStreamRequest, options: StreamOptions) -> R<()> {
        Api::create_stream_with(self, req, options)
            .await
            .map(|_| ())
    }
    async fn delete_stream(&self, req: v1::DeleteStreamRequest) -> R<()> {
        Api::delete_stream(self, req).await.map(|_| ())
    }
    async fn list_streams(&self, req: v1::ListStreamsRequest) -> R<v1::ListStreamsResponse> {
        Api::list_streams(self, req).await
    }
    async fn describe_stream(
        &self,
        req: v1::DescribeStreamRequest,
    ) -> R<v1::DescribeStreamResponse> {
        Api::describe_stream(self, req).await
    }
    async fn describe_stream_summary(
        &self,
        req: v1::DescribeStreamSummaryRequest,
    ) -> R<v1::DescribeStreamSummaryResponse> {
        Api::describe_stream_summary(self, req).await
    }
    async fn list_shards(&self, req: v1::ListShardsRequest) -> R<v1::ListShardsResponse> {
        Api::list_shards(self, req).await
    }
    async fn put_record(&self, req: v1::PutRecordRequest) -> R<v1::PutRecordResponse> {
        Api::put_record(self, req).await
    }
    async fn put_records(&self, req: v1::PutRecordsRequest) -> R<v1::PutRecordsResponse> {
        Api::put_records(self, req).await
    }
    async fn get_shard_iterator(
        &self,
        req: v1::GetShardIteratorRequest,
    ) -> R<v1::GetShardIteratorResponse> {
        Api::get_shard_iterator(self, req).await
    }
    async fn get_records(&self, req: v1::GetRecordsRequest) -> R<v1::GetRecordsResponse> {
        Api::get_records(self, req).await
    }
    async fn change_retention(&self, req: v1::ChangeRetentionRequest, increase: bool) -> R<()> {
        Api::change_retention(self, req, increase).await.map(|_| ())
    }
    async fn stream_attributes(&self, name: String, arn: String) -> R<StreamAttributes> {
        Api::stream_attributes(self, &name, &arn).await
    }
    fn stream_of_resource_arn(&self, arn: &str) -> R<String> {
        Api::stream_of_resource_arn(self, arn)
    }
    async fn change_tags(
        &self,
        name: String,
        arn: String,
        set: BTreeMap<String, String>,
        remove: Vec<String>,
    ) -> R<()> {
        Api::change_tags(self, &name, &arn, set, remove).await
    }
    async fn change_shard_level_metrics(
        &self,
        name: String,
        arn: String,
        enable: bool,
        metrics: Vec<String>,
    ) -> R<MetricsChange> {
        Api::change_shard_level_metrics(self, &name, &arn, enable, metrics).await
    }
    async fn update_max_record_size(&self, name: String, arn: String, kib: u32) -> R<()> {
        Api::update_max_record_size(self, &name, &arn, kib).await
    }
    async fn set_resource_policy(&self, resource_arn: String, policy: Option<String>) -> R<()> {
        Api::set_resource_policy(self, &resource_arn, policy).await
    }
    async fn resource_policy(&self, resource_arn: String) -> R<Option<String>> {
        Api::resource_policy(self, &resource_arn).await
    }
    async fn describe_limits(&self) -> R<Limits> {
        Api::describe_limits(self).await
    }
    async fn account_settings(&self) -> R<AccountSettings> {
        Api::account_settings(self).await
    }
    async fn update_account_settings(&self, commitment_enabled: bool) -> R<AccountSettings> {
        Api::update_account_settings(self, commitment_enabled).await
    }
    fn account(&self) -> String {
        self.node.config.account.clone()
    }
}
