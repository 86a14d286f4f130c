//! The braid.v1 gRPC service. Errors carry the Kinesis exception name in `x-braid-error`.

use braid_node::Api;
use braid_proto::v1::braid_server::{Braid, BraidServer};
use braid_proto::v1::*;
use braid_proto::ERROR_METADATA_KEY;
use braid_types::error::ErrorCode;
use braid_types::limits::GRPC_MESSAGE_BYTES_MAX;
use braid_types::BraidError;
use tonic::{Code, Request, Response, Status};

pub struct GrpcService {
    api: Api,
}

pub fn braid_server(api: Api) -> BraidServer<GrpcService> {
    BraidServer::new(GrpcService { api })
        .max_decoding_message_size(GRPC_MESSAGE_BYTES_MAX)
        .max_encoding_message_size(GRPC_MESSAGE_BYTES_MAX)
}

/// The gRPC status code for each error code.
pub fn status_code(code: ErrorCode) -> Code {
    match code {
        ErrorCode::InvalidArgument | ErrorCode::Validation => Code::InvalidArgument,
        ErrorCode::ResourceNotFound => Code::NotFound,
        ErrorCode::ResourceInUse => Code::FailedPrecondition,
        ErrorCode::LimitExceeded | ErrorCode::ProvisionedThroughputExceeded => {
            Code::ResourceExhausted
        }
        ErrorCode::ExpiredIterator => Code::OutOfRange,
        ErrorCode::InternalFailure => Code::Internal,
        ErrorCode::Unavailable => Code::Unavailable,
        ErrorCode::NotImplemented => Code::Unimplemented,
    }
}

pub fn to_status(e: BraidError) -> Status {
    let mut s = Status::new(status_code(e.code), e.message);
    if let Ok(v) = e.code.kinesis_name().parse() {
        s.metadata_mut().insert(ERROR_METADATA_KEY, v);
    }
    s
}

type Res<T> = Result<Response<T>, Status>;

fn done<T>(r: Result<T, BraidError>) -> Res<T> {
    r.map(Response::new).map_err(to_status)
}

#[tonic::async_trait]
impl Braid for GrpcService {
    async fn create_stream(&self, r: Request<CreateStreamRequest>) -> Res<CreateStreamResponse> {
        done(self.api.create_stream(r.into_inner()).await)
    }
    async fn delete_stream(&self, r: Request<DeleteStreamRequest>) -> Res<DeleteStreamResponse> {
        done(self.api.delete_stream(r.into_inner()).await)
    }
    async fn list_streams(&self, r: Request<ListStreamsRequest>) -> Res<ListStreamsResponse> {
        done(self.api.list_streams(r.into_inner()).await)
    }
    async fn describe_stream(
        &self,
        r: Request<DescribeStreamRequest>,
    ) -> Res<DescribeStreamResponse> {
        done(self.api.describe_stream(r.into_inner()).await)
    }
    async fn describe_stream_summary(
        &self,
        r: Request<DescribeStreamSummaryRequest>,
    ) -> Res<DescribeStreamSummaryResponse> {
        done(self.api.describe_stream_summary(r.into_inner()).await)
    }
    async fn list_shards(&self, r: Request<ListShardsRequest>) -> Res<ListShardsResponse> {
        done(self.api.list_shards(r.into_inner()).await)
    }
    async fn put_record(&self, r: Request<PutRecordRequest>) -> Res<PutRecordResponse> {
        done(self.api.put_record(r.into_inner()).await)
    }
    async fn put_records(&self, r: Request<PutRecordsRequest>) -> Res<PutRecordsResponse> {
        done(self.api.put_records(r.into_inner()).await)
    }
    async fn get_shard_iterator(
        &self,
        r: Request<GetShardIteratorRequest>,
    ) -> Res<GetShardIteratorResponse> {
        done(self.api.get_shard_iterator(r.into_inner()).await)
    }
    async fn get_records(&self, r: Request<GetRecordsRequest>) -> Res<GetRecordsResponse> {
        done(self.api.get_records(r.into_inner()).await)
    }
    async fn increase_stream_retention_period(
        &self,
        r: Request<ChangeRetentionRequest>,
    ) -> Res<ChangeRetentionResponse> {
        done(self.api.change_retention(r.into_inner(), true).await)
    }
    async fn decrease_stream_retention_period(
        &self,
        r: Request<ChangeRetentionRequest>,
    ) -> Res<ChangeRetentionResponse> {
        done(self.api.change_retention(r.into_inner(), false).await)
    }
    async fn cluster_status(
        &self,
        _r: Request<ClusterStatusRequest>,
    ) -> Res<ClusterStatusResponse> {
        done(self.api.cluster_status().await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_maps_and_carries_its_name() {
        for c in braid_types::error::ALL {
            let s = to_status(BraidError::new(c, "m"));
            assert_eq!(
                s.metadata()
                    .get(ERROR_METADATA_KEY)
                    .unwrap()
                    .to_str()
                    .unwrap(),
                c.kinesis_name()
            );
            assert_eq!(s.code(), status_code(c));
        }
    }
}
